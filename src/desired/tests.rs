//! Builder tests: whole objects, Curve config files, the cluster map.

use std::collections::BTreeMap;

use serde_json::json;

use super::common::config_hash;
use super::topology::{ObservedServer, PoolProgress, assign_zones, cluster_map};
use super::*;
use crate::api::CurveCluster;
use crate::names::TopologyStep;
use crate::validate::validate;

fn cluster_with(patch: serde_json::Value) -> ValidatedCluster {
    let mut value = json!({
        "apiVersion": "curve.opencurve.io/v1alpha1",
        "kind": "CurveCluster",
        "metadata": {"name": "demo", "namespace": "curve", "uid": "0b7c-uid"},
        "spec": {
            "image": "opencurvedocker/curvebs:v1.2.6",
            "chunkservers": {"replicas": 3, "storage": {"size": "100Gi"}}
        }
    });
    crate::util::merge_json(&mut value, &patch);
    let cluster: CurveCluster = serde_json::from_value(value).unwrap();
    validate(&cluster, "default").unwrap()
}

pub(super) fn minimal() -> ValidatedCluster {
    cluster_with(json!({}))
}

fn meta(name: &str, component: &str) -> serde_json::Value {
    json!({
        "name": name,
        "namespace": "curve",
        "labels": {
            "app.kubernetes.io/name": "curve",
            "app.kubernetes.io/instance": "demo",
            "app.kubernetes.io/component": component,
            "app.kubernetes.io/managed-by": "curve-operator"
        },
        "ownerReferences": [{
            "apiVersion": "curve.opencurve.io/v1alpha1",
            "kind": "CurveCluster",
            "name": "demo",
            "uid": "0b7c-uid",
            "controller": true,
            "blockOwnerDeletion": true
        }]
    })
}

fn selector(component: &str) -> serde_json::Value {
    json!({"app.kubernetes.io/name": "curve", "app.kubernetes.io/instance": "demo", "app.kubernetes.io/component": component})
}

#[test]
fn etcd_service_is_headless_and_publishes_unready_members() {
    let objects = build(&minimal(), &Observed::default());
    assert_eq!(
        typed_value(&objects.etcd.services[0]),
        json!({
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": meta("demo-etcd", "etcd"),
            "spec": {
                "clusterIP": "None",
                "publishNotReadyAddresses": true,
                "selector": selector("etcd"),
                "ports": [
                    {"name": "client", "port": 2379, "targetPort": 2379, "protocol": "TCP"},
                    {"name": "peer", "port": 2380, "targetPort": 2380, "protocol": "TCP"}
                ]
            }
        })
    );
}

#[test]
fn etcd_budget_keeps_quorum_for_every_size() {
    for (replicas, quorum) in [(1, 1), (3, 2), (5, 3), (7, 4)] {
        let objects = build(
            &cluster_with(json!({"spec": {"etcd": {"replicas": replicas}}})),
            &Observed::default(),
        );
        assert_eq!(
            typed_value(&objects.etcd.budgets[0]),
            json!({
                "apiVersion": "policy/v1",
                "kind": "PodDisruptionBudget",
                "metadata": meta("demo-etcd", "etcd"),
                "spec": {"minAvailable": quorum, "selector": {"matchLabels": selector("etcd")}}
            }),
            "{replicas} members"
        );
    }
}

#[test]
fn mds_and_chunkserver_budgets_allow_one_disruption() {
    let objects = build(&minimal(), &Observed::default());
    for (tier, component) in [
        (&objects.mds, "mds"),
        (&objects.chunkservers, "chunkserver"),
    ] {
        assert_eq!(
            typed_value(&tier.budgets[0]),
            json!({
                "apiVersion": "policy/v1",
                "kind": "PodDisruptionBudget",
                "metadata": meta(&format!("demo-{component}"), component),
                "spec": {"maxUnavailable": 1, "selector": {"matchLabels": selector(component)}}
            })
        );
    }
}

#[test]
fn etcd_initial_cluster_names_every_member_after_its_pod() {
    for replicas in [1, 3, 5, 7] {
        let cluster = cluster_with(json!({"spec": {"etcd": {"replicas": replicas}}}));
        let expected: Vec<String> = (0..replicas)
            .map(|i| format!("demo-etcd-{i}=http://demo-etcd-{i}.demo-etcd.curve.svc:2380"))
            .collect();
        assert_eq!(
            config::etcd_initial_cluster(&cluster, replicas),
            expected.join(",")
        );
        let conf = config::etcd_conf(&cluster);
        // From the membership ConfigMap, through the init container's environment.
        assert!(conf.contains("initial-cluster: ${CURVE_ETCD_INITIAL_CLUSTER}\n"));
        // The member's own name must be one of the initial-cluster names: it is its pod name.
        assert!(conf.starts_with("name: ${POD_NAME}\n"));
        let etcd = build(&cluster, &Observed::default()).etcd;
        assert_eq!(
            etcd.stateful_sets[0].spec.as_ref().unwrap().replicas,
            Some(replicas)
        );
        let membership = &etcd.config_maps[1];
        assert_eq!(
            membership.metadata.name.as_deref(),
            Some("demo-etcd-members")
        );
        assert_eq!(
            membership.data.clone().unwrap(),
            BTreeMap::from([
                ("initial-cluster".to_string(), expected.join(",")),
                ("initial-cluster-state".to_string(), "new".to_string()),
                ("joining".to_string(), String::new()),
            ])
        );
    }
}

#[test]
fn a_membership_change_changes_no_pod_template_and_lists_voters_only() {
    let cluster = cluster_with(json!({"spec": {"etcd": {"replicas": 5}}}));
    let bootstrap = build(&cluster, &Observed::default());
    // 3 voting members and a learner joining: 4 pods; Curve's daemons list the 3 voters.
    let growing = build(
        &cluster,
        &Observed {
            etcd: Some(config::EtcdLayout {
                pods: 4,
                endpoints: 3,
                existing: true,
                joining: Some("demo-etcd-3".into()),
            }),
            ..Observed::default()
        },
    );
    let template =
        |objects: &DesiredObjects| objects.etcd.stateful_sets[0].spec.clone().unwrap().template;
    assert_eq!(template(&bootstrap), template(&growing));
    assert_eq!(
        growing.etcd.stateful_sets[0]
            .spec
            .as_ref()
            .unwrap()
            .replicas,
        Some(4)
    );
    let data = growing.etcd.config_maps[1].data.clone().unwrap();
    assert_eq!(data["initial-cluster-state"], "existing");
    assert_eq!(data["joining"], "demo-etcd-3");
    assert_eq!(data["initial-cluster"].matches("=http://").count(), 4);
    let mds_conf = growing.mds.config_maps[0].data.clone().unwrap()["mds.conf"].clone();
    assert!(mds_conf.contains(
        "mds.etcd.endpoint=demo-etcd-0.demo-etcd.curve.svc:2379,demo-etcd-1.demo-etcd.curve.svc:2379,demo-etcd-2.demo-etcd.curve.svc:2379\n"
    ));
    // Quorum of the 4 pods: one may be disrupted.
    assert_eq!(
        serde_json::to_value(&growing.etcd.budgets[0].spec).unwrap()["minAvailable"],
        3
    );
}

#[test]
fn etcd_conf_holds_every_key_curve_needs() {
    let cluster = cluster_with(
        json!({"spec": {"etcd": {"clientPort": 12379, "peerPort": 12380, "replicas": 1}}}),
    );
    assert_eq!(
        config::etcd_conf(&cluster),
        "name: ${POD_NAME}\n\
         data-dir: /curvebs/etcd/data\n\
         wal-dir: /curvebs/etcd/data/wal\n\
         listen-peer-urls: http://${POD_IP}:12380\n\
         listen-client-urls: http://${POD_IP}:12379\n\
         initial-advertise-peer-urls: http://${POD_NAME}.demo-etcd.curve.svc:12380\n\
         advertise-client-urls: http://${POD_IP}:12379\n\
         initial-cluster: ${CURVE_ETCD_INITIAL_CLUSTER}\n\
         initial-cluster-token: curve-demo-etcd\n\
         initial-cluster-state: ${CURVE_ETCD_INITIAL_CLUSTER_STATE}\n\
         heartbeat-interval: 100\n\
         election-timeout: 1000\n\
         auto-compaction-mode: periodic\n\
         auto-compaction-retention: \"1\"\n\
         quota-backend-bytes: 5100273664\n\
         strict-reconfig-check: true\n"
    );
}

#[test]
fn etcd_quota_is_the_specs_or_the_largest_the_volume_holds() {
    let quota = |etcd: serde_json::Value| {
        let conf = config::etcd_conf(&cluster_with(json!({"spec": {"etcd": etcd}})));
        config::read_key(&conf, "quota-backend-bytes", config::YAML_DELIMITER)
    };
    // The default 10Gi volume: (10Gi − 512Mi) / 2 = 4.75Gi.
    assert_eq!(quota(json!({})), Some((19u64 << 28).to_string()));
    // A volume of 16.5Gi or more: etcd's 8Gi.
    assert_eq!(
        quota(json!({"storage": {"size": "100Gi"}})),
        Some((8u64 << 30).to_string())
    );
    // An odd size rounds down to a MiB.
    assert_eq!(
        quota(json!({"storage": {"size": "1000000000"}})),
        Some((((1_000_000_000u64 - (512 << 20)) / 2) >> 20 << 20).to_string())
    );
    assert_eq!(
        quota(json!({"quotaBackendBytes": "3Gi"})),
        Some((3u64 << 30).to_string())
    );
}

#[test]
fn mds_conf_listens_on_the_pod_ip_and_finds_every_etcd_member() {
    assert_eq!(
        config::mds_conf(&minimal(), 3),
        "mds.listen.addr=${POD_IP}:6700\n\
         mds.dummy.listen.port=7700\n\
         global.port=6700\n\
         mds.etcd.endpoint=demo-etcd-0.demo-etcd.curve.svc:2379,demo-etcd-1.demo-etcd.curve.svc:2379,demo-etcd-2.demo-etcd.curve.svc:2379\n\
         mds.snapshotcloneclient.addr=\n\
         mds.common.logDir=/curvebs/mds/logs\n\
         mds.leader.sessionInterSec=5\n\
         mds.leader.electionTimeoutMs=0\n\
         mds.auth.rootUserName=root\n\
         mds.auth.rootPassword=${CURVE_ROOT_PASSWORD}\n\
         mds.topology.PoolUsagePercentLimit=83\n\
         mds.chunkserver.failure.tolerance=3\n"
    );
}

/// The MDS stops allocating before a ChunkServer's pool runs dry (capacity.rs), the smallest
/// of uneven zones included, and recovers a whole lost node whatever its disk slots.
#[test]
fn mds_limits_follow_the_pool_the_zones_and_the_disk_slots() {
    let limits = |patch: serde_json::Value| {
        let conf = config::mds_conf(&cluster_with(json!({"spec": patch})), 3);
        (
            config::read_key(&conf, "mds.topology.PoolUsagePercentLimit", "=").unwrap(),
            config::read_key(&conf, "mds.chunkserver.failure.tolerance", "=").unwrap(),
        )
    };
    let pair = |a: &str, b: &str| (a.to_string(), b.to_string());
    assert_eq!(limits(json!({})), pair("83", "3"));
    assert_eq!(
        limits(json!({"chunkservers": {"storage": {"size": "2Ti"}}})),
        pair("85", "3")
    );
    assert_eq!(
        limits(json!({"chunkservers": {"formatPercent": 70}})),
        pair("63", "3")
    );
    // 4 servers in 3 zones: the single-server zones fill first.
    assert_eq!(
        limits(json!({"chunkservers": {"replicas": 4}})),
        pair("62", "3")
    );
    assert_eq!(
        limits(json!({"chunkservers": {"replicas": 6, "disksPerNode": 2}})),
        pair("83", "3")
    );
    assert_eq!(
        limits(json!({"chunkservers": {"replicas": 6, "disksPerNode": 3}})),
        pair("83", "4")
    );
    assert_eq!(
        limits(json!({"chunkservers": {"disksPerNode": 12}})),
        pair("83", "13")
    );
}

#[test]
fn chunkserver_and_tool_confs_list_every_mds() {
    let cluster =
        cluster_with(json!({"spec": {"mds": {"replicas": 2, "port": 16700, "dummyPort": 17700}}}));
    let dns = config::DaemonAddresses::dns(&cluster);
    let mds = "demo-mds-0.demo-mds.curve.svc:16700,demo-mds-1.demo-mds.curve.svc:16700";
    assert_eq!(
        dns.mds.join(","),
        mds,
        "names only when no pod runs (offline render)"
    );
    let addresses = config::DaemonAddresses {
        mds: vec!["10.0.0.1:16700".into(), "10.0.0.2:16700".into()],
        etcd: vec![
            "10.0.0.1:2379".into(),
            "10.0.0.2:2379".into(),
            "10.0.0.3:2379".into(),
        ],
    };
    let mds = "10.0.0.1:16700,10.0.0.2:16700";
    assert_eq!(
        config::chunkserver_conf(&addresses),
        format!(
            "global.ip=${{POD_IP}}\nglobal.port=${{CURVE_PORT}}\nglobal.external_ip=${{POD_IP}}\n\
             mds.listen.addr={mds}\nchunkserver.common.logDir=/curvebs/chunkserver/logs\n\
             curve.config_path=/curvebs/chunkserver/conf/cs_client.conf\n\
             s3.config_path=/curvebs/chunkserver/conf/s3.conf\n\
             curve.root_username=root\ncurve.root_password=${{CURVE_ROOT_PASSWORD}}\n\
             clone.disable_s3_adapter=true\n"
        )
    );
    assert_eq!(
        config::cs_client_conf(&addresses),
        format!("mds.listen.addr={mds}\nglobal.logPath=/curvebs/chunkserver/logs\n")
    );
    assert_eq!(
        config::tools_conf(&cluster, &addresses),
        format!(
            "mdsAddr={mds}\nmdsDummyPort=17700\netcdAddr=10.0.0.1:2379,10.0.0.2:2379,10.0.0.3:2379\n\
             snapshotCloneAddr=\nsnapshotCloneDummyPort=\nrootUserName=root\nrootUserPassword=${{CURVE_ROOT_PASSWORD}}\n"
        )
    );
    assert_eq!(
        config::read_key(&config::cs_client_conf(&addresses), "mds.listen.addr", "="),
        Some(mds.to_string())
    );
    assert_eq!(config::read_key("a.b=1\n", "a", "="), None);
    let tier = chunkserver::build(&cluster, &addresses);
    let env =
        typed_value(&tier.stateful_sets[0])["spec"]["template"]["spec"]["containers"][0]["env"]
            .clone();
    assert!(
        env.as_array()
            .unwrap()
            .contains(&json!({"name": "MDS_ADDRESSES", "value": mds})),
        "-mdsListenAddr gets IPs too"
    );
}

#[test]
fn etcd_stateful_set_is_parallel_host_networked_and_spread() {
    let set = typed_value(&build(&minimal(), &Observed::default()).etcd.stateful_sets[0]);
    let spec = &set["spec"];
    assert_eq!(set["metadata"], meta("demo-etcd", "etcd"));
    assert_eq!(spec["podManagementPolicy"], "Parallel");
    assert_eq!(spec["serviceName"], "demo-etcd");
    assert_eq!(spec["selector"], json!({"matchLabels": selector("etcd")}));
    let pod = &spec["template"]["spec"];
    assert_eq!(pod["hostNetwork"], true);
    assert_eq!(pod["dnsPolicy"], "ClusterFirstWithHostNet");
    assert_eq!(
        pod["affinity"],
        json!({"podAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [
            {"labelSelector": {"matchLabels": selector("etcd")}, "topologyKey": "kubernetes.io/hostname"}
        ]}})
    );
    let from_members = |name: &str, key: &str| json!({"name": name, "valueFrom": {"configMapKeyRef": {"name": "demo-etcd-members", "key": key, "optional": false}}});
    let env = json!([
        {"name": "POD_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}},
        {"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
        {"name": "NODE_NAME", "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}}},
        from_members("CURVE_ETCD_INITIAL_CLUSTER", "initial-cluster"),
        from_members("CURVE_ETCD_INITIAL_CLUSTER_STATE", "initial-cluster-state")
    ]);
    assert_eq!(
        pod["containers"],
        json!([{
            "name": "etcd",
            "image": "opencurvedocker/curvebs:v1.2.6",
            "imagePullPolicy": "IfNotPresent",
            "command": ["sh", "-c", start::etcd_start_script(2379, 2380), "curve-start", "/entrypoint.sh"],
            "terminationMessagePolicy": "FallbackToLogsOnError",
            "args": ["--role=etcd", "--args=--config-file=/curvebs/etcd/conf/etcd.conf"],
            "env": env,
            "ports": [
                {"name": "client", "containerPort": 2379, "protocol": "TCP"},
                {"name": "peer", "containerPort": 2380, "protocol": "TCP"}
            ],
            "readinessProbe": {"httpGet": {"path": "/health", "port": 2379}, "initialDelaySeconds": 5, "periodSeconds": 10, "timeoutSeconds": 5, "failureThreshold": 3},
            "livenessProbe": {"tcpSocket": {"port": 2379}, "initialDelaySeconds": 15, "periodSeconds": 10, "timeoutSeconds": 5, "failureThreshold": 6},
            "volumeMounts": [
                {"name": "conf", "mountPath": "/curvebs/etcd/conf"},
                {"name": "logs", "mountPath": "/curvebs/etcd/logs"},
                {"name": "data", "mountPath": "/curvebs/etcd/data"}
            ]
        }])
    );
    assert_eq!(
        pod["initContainers"][0],
        json!({
            "name": "config",
            "image": "opencurvedocker/curvebs:v1.2.6",
            "imagePullPolicy": "IfNotPresent",
            "command": ["sh", "/curve-operator/config/merge-config.sh", "/curvebs/conf", "/curve-operator/conf", "/curvebs/etcd", "etcd.conf:: "],
            "env": env,
            "volumeMounts": [
                {"name": "config-source", "mountPath": "/curve-operator/config"},
                {"name": "conf", "mountPath": "/curve-operator/conf"}
            ],
            "terminationMessagePolicy": "FallbackToLogsOnError"
        })
    );
    // The data check sees the member's data dir and the membership, nothing else.
    let check = &pod["initContainers"][1];
    assert_eq!(check["name"], "data-check");
    assert_eq!(
        check["volumeMounts"],
        json!([{"name": "data", "mountPath": "/curvebs/etcd/data"}])
    );
    assert_eq!(
        check["env"].as_array().unwrap()[3..5],
        [
            from_members("CURVE_ETCD_INITIAL_CLUSTER_STATE", "initial-cluster-state"),
            from_members("CURVE_ETCD_JOINING", "joining")
        ]
    );
    assert_eq!(pod["initContainers"].as_array().unwrap().len(), 2);
    assert_eq!(
        spec["volumeClaimTemplates"],
        json!([{
            "apiVersion": "v1",
            "kind": "PersistentVolumeClaim",
            "metadata": {"name": "data", "labels": meta("x", "etcd")["labels"]},
            "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "10Gi"}}}
        }])
    );
}

#[test]
fn mds_pods_probe_the_dummy_port_and_read_the_merged_config() {
    let set = typed_value(&build(&minimal(), &Observed::default()).mds.stateful_sets[0]);
    let container = &set["spec"]["template"]["spec"]["containers"][0];
    assert_eq!(
        container["args"],
        json!([
            "--role=mds",
            "--args=-confPath=/curvebs/mds/conf/mds.conf -graceful_quit_on_sigterm=true -log_dir=/curvebs/mds/logs -max_log_size=128 -stderrthreshold=3"
        ])
    );
    assert_eq!(
        container["command"],
        json!([
            "sh",
            "-c",
            start::mds_start_script(6700, 7700, "/curvebs/mds/logs"),
            "curve-start",
            "/entrypoint.sh"
        ])
    );
    assert_eq!(
        container["readinessProbe"]["httpGet"],
        json!({"path": "/vars/mds_status", "port": 7700})
    );
    assert_eq!(
        container["livenessProbe"]["httpGet"],
        json!({"path": "/vars/mds_status", "port": 7700})
    );
    assert_eq!(set["spec"]["replicas"], 3);
    assert!(
        set["spec"].get("volumeClaimTemplates").is_none(),
        "the MDS keeps its state in etcd"
    );
}

#[test]
fn chunkservers_get_one_stateful_set_per_disk_slot_with_their_own_port() {
    let cluster = cluster_with(
        json!({"spec": {"chunkservers": {"replicas": 4, "disksPerNode": 3, "formatPercent": 80}}}),
    );
    let tier = build(&cluster, &Observed::default()).chunkservers;
    let names: Vec<_> = tier
        .stateful_sets
        .iter()
        .map(|s| s.metadata.name.clone().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "demo-chunkserver-0",
            "demo-chunkserver-1",
            "demo-chunkserver-2"
        ]
    );
    for (slot, set) in tier.stateful_sets.iter().enumerate() {
        let set = typed_value(set);
        let port = 8200 + slot as i64;
        let slot_selector = {
            let mut s = selector("chunkserver");
            s["curve.opencurve.io/disk-slot"] = json!(slot.to_string());
            s
        };
        assert_eq!(set["spec"]["replicas"], 4);
        assert_eq!(set["spec"]["selector"]["matchLabels"], slot_selector);
        let pod = &set["spec"]["template"]["spec"];
        assert_eq!(
            pod["affinity"]["podAntiAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"][0]
                ["labelSelector"]["matchLabels"],
            slot_selector,
            "a node runs one ChunkServer per slot"
        );
        let container = &pod["containers"][0];
        assert_eq!(
            container["ports"],
            json!([{"name": "listen", "containerPort": port, "protocol": "TCP"}])
        );
        assert_eq!(
            container["readinessProbe"]["exec"]["command"],
            json!(["sh", "-c", start::chunkserver_ready_script()]),
            "ready once its copysets are loaded"
        );
        assert_eq!(
            container["startupProbe"]["tcpSocket"],
            json!({"port": port})
        );
        assert_eq!(container["startupProbe"]["failureThreshold"], 360);
        assert_eq!(
            container["livenessProbe"]["tcpSocket"],
            json!({"port": port})
        );
        assert_eq!(
            container["command"],
            json!([
                "sh",
                "-c",
                start::chunkserver_start_script("/curvebs/chunkserver/logs"),
                "curve-start",
                "/entrypoint.sh"
            ])
        );
        assert_eq!(
            container["terminationMessagePolicy"],
            "FallbackToLogsOnError"
        );
        let args = container["args"][1]
            .as_str()
            .unwrap()
            .strip_prefix("--args=")
            .unwrap();
        for required in [
            "-conf=/curvebs/chunkserver/conf/chunkserver.conf",
            "-chunkServerIp=$(POD_IP)",
            &format!("-chunkServerPort={port}"),
            "-chunkServerStoreUri=local:///curvebs/chunkserver/data",
            "-chunkServerMetaUri=local:///curvebs/chunkserver/data/chunkserver.dat",
            "-copySetUri=local:///curvebs/chunkserver/data/copysets",
            "-raftLogUri=curve:///curvebs/chunkserver/data/copysets",
            "-recycleUri=local:///curvebs/chunkserver/data/recycler",
            "-chunkFilePoolDir=/curvebs/chunkserver/data",
            "-chunkFilePoolMetaPath=/curvebs/chunkserver/data/chunkfilepool.meta",
            "-walFilePoolDir=/curvebs/chunkserver/data",
            "-walFilePoolMetaPath=/curvebs/chunkserver/data/walfilepool.meta",
            "-log_dir=/curvebs/chunkserver/logs",
            "-max_log_size=128",
            "-stderrthreshold=3",
        ] {
            assert!(
                args.split(' ').any(|a| a == required),
                "slot {slot} lacks {required}: {args}"
            );
        }
        assert!(
            container["env"]
                .as_array()
                .unwrap()
                .contains(&json!({"name": "CURVE_PORT", "value": port.to_string()}))
        );
        assert_eq!(pod["initContainers"][1]["name"], "format");
        assert_eq!(
            pod["initContainers"][1]["command"][2],
            chunkserver::format_script(80)
        );
        assert_eq!(
            set["spec"]["volumeClaimTemplates"][0]["spec"]["resources"]["requests"]["storage"],
            "100Gi"
        );
    }
}

#[test]
fn format_runs_only_when_the_pool_meta_file_is_absent_and_fails_loudly() {
    assert_eq!(
        chunkserver::format_script(90),
        "set -e\n\
         if [ -f /curvebs/chunkserver/data/chunkfilepool.meta ]; then\n  \
           echo 'chunk file pool present: not formatting'\n  \
           find /curvebs/chunkserver/data/chunkfilepool -maxdepth 1 -type f ! -size 16781312c -print -delete\n  \
           free=$(df -P /curvebs/chunkserver/data/chunkfilepool | awk 'NR == 2 { print int($4 * 100 / $2) }')\n  \
           grow=$((free - 10))\n  \
           if [ \"$grow\" -ge 2 ]; then\n    \
             echo \"the data volume has $free% free, spec.chunkservers.formatPercent keeps 10%: adding $grow% of it to the chunk file pool\"\n    \
             /curvebs/tools/sbin/curve_format -allocatePercent=$grow -fileSize=16777216 \
             -filePoolDir=/curvebs/chunkserver/data/chunkfilepool -filePoolMetaPath=/curvebs/chunkserver/data/chunkfilepool.growth.meta \
             -fileSystemPath=/curvebs/chunkserver/data/chunkfilepool -needWriteZero=false -blockSize=4096 -undefok=blockSize\n    \
             rm -f /curvebs/chunkserver/data/chunkfilepool.growth.meta\n  \
           fi\n  \
           exit 0\n\
         fi\n\
         rm -rf /curvebs/chunkserver/data/chunkfilepool\n\
         mkdir -p /curvebs/chunkserver/data/chunkfilepool\n\
         free=$(df -P /curvebs/chunkserver/data/chunkfilepool | awk 'NR == 2 { print int($4 * 100 / $2) }')\n\
         if [ \"$free\" -lt 90 ]; then\n  \
           echo \"cannot format: the data volume has $free% of its size free, spec.chunkservers.formatPercent asks for 90% (ext4 keeps 5% for root): lower formatPercent\" >&2; exit 1\n\
         fi\n\
         echo \"formatting 90% of the data volume ($free% free) into the chunk file pool\"\n\
         /curvebs/tools/sbin/curve_format -allocatePercent=90 -fileSize=16777216 \
         -filePoolDir=/curvebs/chunkserver/data/chunkfilepool -filePoolMetaPath=/curvebs/chunkserver/data/chunkfilepool.meta \
         -fileSystemPath=/curvebs/chunkserver/data/chunkfilepool -needWriteZero=true -blockSize=4096 -undefok=blockSize\n\
         if [ ! -f /curvebs/chunkserver/data/chunkfilepool.meta ]; then\n  \
           echo \"curve_format wrote no /curvebs/chunkserver/data/chunkfilepool.meta: the volume has less than 90% free, lower spec.chunkservers.formatPercent\" >&2; exit 1\n\
         fi\n"
    );
}

/// The data volume size is part of the ChunkServer pod template: a grown volume rolls the
/// ChunkServers (the operator's safe roll), whose format step then adds the space to the pool.
/// etcd's template does not carry it: etcd uses grown space without a restart.
#[test]
fn the_chunkserver_template_carries_the_data_volume_size() {
    let template_of = |size: &str, component: Component| {
        let cluster = cluster_with(json!({"spec": {"chunkservers": {"storage": {"size": size}}}}));
        let desired = build(&cluster, &Observed::default());
        let tier = desired
            .tiers()
            .into_iter()
            .find(|t| t.component == component)
            .unwrap();
        let set = tier.stateful_sets[0].clone();
        set.spec
            .unwrap()
            .template
            .metadata
            .unwrap()
            .annotations
            .unwrap_or_default()
    };
    let annotation = chunkserver::DATA_VOLUME_SIZE_ANNOTATION;
    assert_eq!(
        template_of("100Gi", Component::ChunkServer)
            .get(annotation)
            .map(String::as_str),
        Some("100Gi")
    );
    assert_eq!(
        template_of("200Gi", Component::ChunkServer)
            .get(annotation)
            .map(String::as_str),
        Some("200Gi")
    );
    assert_eq!(
        template_of("100Gi", Component::Etcd),
        template_of("200Gi", Component::Etcd)
    );
}

#[test]
fn placement_settings_reach_every_pod() {
    let cluster = cluster_with(json!({"spec": {
        "imagePullSecrets": ["registry"],
        "placement": {
            "nodeSelector": {"curve": "yes"},
            "tolerations": [{"key": "dedicated", "operator": "Exists"}],
            "antiAffinity": "Preferred",
            "topologyKey": "topology.kubernetes.io/zone"
        }
    }}));
    let objects = build(&cluster, &Observed::default());
    for tier in objects.tiers() {
        for set in &tier.stateful_sets {
            let pod = &typed_value(set)["spec"]["template"]["spec"];
            assert_eq!(pod["nodeSelector"], json!({"curve": "yes"}));
            assert_eq!(
                pod["tolerations"],
                json!([{"key": "dedicated", "operator": "Exists"}])
            );
            assert_eq!(pod["imagePullSecrets"], json!([{"name": "registry"}]));
            let preferred = &pod["affinity"]["podAntiAffinity"]["preferredDuringSchedulingIgnoredDuringExecution"]
                [0];
            assert_eq!(preferred["weight"], 100);
            assert_eq!(
                preferred["podAffinityTerm"]["topologyKey"],
                "topology.kubernetes.io/zone"
            );
        }
    }
}

#[test]
fn a_config_change_changes_the_pod_template_hash() {
    let before = build(&minimal(), &Observed::default());
    let after = build(
        &cluster_with(json!({"spec": {"mds": {"replicas": 5}}})),
        &Observed::default(),
    );
    let hash = |set: &k8s_openapi::api::apps::v1::StatefulSet| {
        set.spec
            .as_ref()
            .unwrap()
            .template
            .metadata
            .as_ref()
            .unwrap()
            .annotations
            .as_ref()
            .unwrap()[common::CONFIG_HASH_ANNOTATION]
            .clone()
    };
    // The ChunkServers list every MDS: their config and so their template change.
    assert_ne!(
        hash(&before.chunkservers.stateful_sets[0]),
        hash(&after.chunkservers.stateful_sets[0])
    );
    assert_eq!(
        hash(&before.etcd.stateful_sets[0]),
        hash(&after.etcd.stateful_sets[0])
    );
    assert_eq!(
        hash(&before.etcd.stateful_sets[0]),
        config_hash(&before.etcd.config_maps[0])
    );
}

#[test]
fn objects_are_owned_by_the_cluster_only_when_its_uid_is_known() {
    let mut cluster = minimal();
    cluster.uid = None;
    let objects = build(&cluster, &Observed::default());
    assert!(
        every_value(&objects)
            .iter()
            .all(|o| o["metadata"].get("ownerReferences").is_none())
    );
    let owned = build(&minimal(), &Observed::default());
    let values = every_value(&owned);
    assert_eq!(values.len(), 17, "every object, the Jobs included");
    assert!(
        values
            .iter()
            .all(|o| o["metadata"]["ownerReferences"][0]["uid"] == "0b7c-uid")
    );
}

fn every_value(objects: &super::DesiredObjects) -> Vec<serde_json::Value> {
    let mut values = Vec::new();
    for tier in objects.tiers() {
        values.extend(tier.config_maps.iter().map(typed_value));
        values.extend(tier.services.iter().map(typed_value));
        values.extend(tier.budgets.iter().map(typed_value));
        values.extend(tier.stateful_sets.iter().map(typed_value));
    }
    values.push(typed_value(&objects.topology));
    values.extend(objects.jobs.iter().map(typed_value));
    values
}

fn servers(n: usize) -> Vec<ObservedServer> {
    (1..=n)
        .map(|i| ObservedServer {
            node: format!("node-{i}"),
            host_ip: format!("10.0.0.{i}"),
            zone: None,
        })
        .collect()
}

fn server_json(i: usize, zone: &str, port: i64) -> serde_json::Value {
    json!({
        "name": format!("node-{i}"), "internalip": format!("10.0.0.{i}"), "internalport": port,
        "externalip": format!("10.0.0.{i}"), "externalport": port, "zone": zone,
        "physicalpool": "pool1", "poolset": "default"
    })
}

fn logical_pool(copysets: i64) -> serde_json::Value {
    json!([{
        "name": "logicalPool1", "physicalpool": "pool1", "segmentsize": 1073741824u64, "replicasnum": 3,
        "copysetnum": copysets, "zonenum": 3, "type": 0, "scatterwidth": 0, "createtime": 0
    }])
}

#[test]
fn cluster_map_of_three_servers_puts_each_in_its_own_zone() {
    let map = cluster_map(&minimal(), &servers(3), &[]);
    assert_eq!(
        serde_json::to_value(&map).unwrap(),
        json!({
            "servers": [server_json(1, "zone1", 0), server_json(2, "zone2", 0), server_json(3, "zone3", 0)],
            "logicalpools": logical_pool(100),
            "poolsets": [{"name": "default", "type": "default"}],
            "npools": 1
        })
    );
}

#[test]
fn cluster_map_of_four_servers_round_robins_zones() {
    let cluster = cluster_with(json!({"spec": {"chunkservers": {"replicas": 4}}}));
    let map = cluster_map(&cluster, &servers(4), &[]);
    assert_eq!(
        serde_json::to_value(&map).unwrap()["servers"],
        json!([
            server_json(1, "zone1", 0),
            server_json(2, "zone2", 0),
            server_json(3, "zone3", 0),
            server_json(4, "zone1", 0)
        ])
    );
    assert_eq!(
        serde_json::to_value(&map).unwrap()["logicalpools"],
        logical_pool(133)
    );
}

#[test]
fn cluster_map_of_six_servers_with_two_disks_uses_port_zero_as_with_one() {
    let cluster =
        cluster_with(json!({"spec": {"chunkservers": {"replicas": 6, "disksPerNode": 2}}}));
    let map = cluster_map(&cluster, &servers(6), &[]);
    let zones = ["zone1", "zone2", "zone3", "zone1", "zone2", "zone3"];
    assert_eq!(
        serde_json::to_value(&map).unwrap(),
        json!({
            "servers": (1..=6).map(|i| server_json(i, zones[i - 1], 0)).collect::<Vec<_>>(),
            "logicalpools": logical_pool(400),
            "poolsets": [{"name": "default", "type": "default"}],
            "npools": 1
        })
    );
}

#[test]
fn cluster_map_zones_come_from_the_zone_label_when_set() {
    for n in [3usize, 4, 6] {
        let cluster = cluster_with(
            json!({"spec": {"chunkservers": {"replicas": n}, "placement": {"zoneLabel": "topology.kubernetes.io/zone"}}}),
        );
        let azs = ["az-a", "az-b", "az-c"];
        let labelled: Vec<ObservedServer> = servers(n)
            .into_iter()
            .enumerate()
            .map(|(i, s)| ObservedServer {
                zone: Some(azs[i * 3 / n].to_string()),
                ..s
            })
            .collect();
        let map = cluster_map(&cluster, &labelled, &[]);
        assert_eq!(
            serde_json::to_value(&map).unwrap(),
            json!({
                "servers": (1..=n).map(|i| server_json(i, azs[(i - 1) * 3 / n], 0)).collect::<Vec<_>>(),
                "logicalpools": logical_pool(100 * n as i64 / 3),
                "poolsets": [{"name": "default", "type": "default"}],
                "npools": 1
            }),
            "{n} servers"
        );
    }
}

#[test]
fn zones_of_unequal_size_are_named_with_their_servers() {
    let labelled = |zones: &[&str]| -> Vec<ObservedServer> {
        servers(zones.len())
            .into_iter()
            .zip(zones)
            .map(|(s, zone)| ObservedServer {
                zone: Some(zone.to_string()),
                ..s
            })
            .collect()
    };
    let cluster = cluster_with(
        json!({"spec": {"chunkservers": {"replicas": 6}, "placement": {"zoneLabel": "zone"}}}),
    );
    let even = cluster_map(&cluster, &labelled(&["a", "b", "c", "a", "b", "c"]), &[]);
    assert_eq!(super::topology::uneven_zones(&even), None);
    let uneven = cluster_map(&cluster, &labelled(&["a", "a", "a", "a", "b", "c"]), &[]);
    assert_eq!(
        super::topology::uneven_zones(&uneven).as_deref(),
        Some(
            "zones hold different numbers of servers (a: 4, b: 1, c: 1): every zone holds one copy of all data, so the smallest fills first and only 1/4 of the larger zones' space can be used; label nodes so every zone has as many servers"
        )
    );
}

#[test]
fn servers_keep_their_zone_when_nodes_are_added() {
    let first = assign_zones(&servers(3), 3, &BTreeMap::new());
    // A node sorting first joins later: nobody moves, it takes the emptiest zone.
    let mut grown = servers(3);
    grown.push(ObservedServer {
        node: "node-0".into(),
        host_ip: "10.0.0.100".into(),
        zone: None,
    });
    let second = assign_zones(&grown, 3, &first);
    for (node, zone) in &first {
        assert_eq!(&second[node], zone, "{node} moved");
    }
    assert_eq!(second["node-0"], "zone1");
}

#[test]
fn the_map_never_drops_a_server_it_listed() {
    let cluster = cluster_with(json!({"spec": {"chunkservers": {"replicas": 4}}}));
    let first = cluster_map(&cluster, &servers(4), &[]);
    // node-2 is gone from the observation (its pod is being rescheduled) and node-5 is new.
    let mut now = servers(4);
    now.remove(1);
    now.push(ObservedServer {
        node: "node-5".into(),
        host_ip: "10.0.0.5".into(),
        zone: None,
    });
    let second = cluster_map(&cluster, &now, &first.recorded_servers());
    let names: Vec<_> = second.servers().iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["node-1", "node-2", "node-3", "node-4", "node-5"]);
    for server in first.servers() {
        assert_eq!(
            second.servers().iter().find(|s| s.name == server.name),
            Some(server),
            "unchanged"
        );
    }
    assert_eq!(second.servers()[4].zone, "zone2", "the emptiest zone");
    assert_ne!(first.servers_hash(), second.servers_hash());
    assert_eq!(
        second.server_ips(),
        ["10.0.0.1", "10.0.0.2", "10.0.0.3", "10.0.0.4", "10.0.0.5"]
    );
}

#[test]
fn the_topology_config_map_holds_the_map_and_tools_conf() {
    let pools = PoolProgress {
        physical_pool_servers: vec!["10.0.0.1".into(), "10.0.0.2".into()],
        logical_pool_created: false,
        server_port: None,
    };
    let objects = build(
        &minimal(),
        &Observed {
            servers: servers(3),
            known_servers: Vec::new(),
            pools: pools.clone(),
            addresses: None,
            etcd: None,
        },
    );
    let value = typed_value(&objects.topology);
    assert_eq!(value["metadata"], meta("demo-topology", "topology"));
    let map: serde_json::Value =
        serde_json::from_str(value["data"]["topology.json"].as_str().unwrap()).unwrap();
    assert_eq!(map["servers"].as_array().unwrap().len(), 3);
    assert_eq!(
        value["data"]["servers-hash"],
        cluster_map(&minimal(), &servers(3), &[]).servers_hash()
    );
    assert_eq!(
        value["data"]["tools.conf"],
        config::tools_conf(&minimal(), &config::DaemonAddresses::dns(&minimal()))
    );
    assert_eq!(
        value["data"]["physical-pool-servers"],
        "10.0.0.1\n10.0.0.2\n"
    );
    assert_eq!(value["data"]["logical-pool-created"], "false");
}

#[test]
fn chunkservers_wait_for_the_physical_pool_to_list_their_ip() {
    let set = typed_value(
        &build(&minimal(), &Observed::default())
            .chunkservers
            .stateful_sets[0],
    );
    let pod = &set["spec"]["template"]["spec"];
    let names: Vec<&str> = pod["initContainers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        ["config", "format", "wait-for-pool"],
        "format first, then wait, then the daemon"
    );
    let wait = &pod["initContainers"][2];
    assert_eq!(wait["command"][2], chunkserver::wait_for_pool_script());
    assert_eq!(
        chunkserver::wait_for_pool_script(),
        "until grep -qx \"$POD_IP\" /curve-operator/topology/physical-pool-servers 2>/dev/null; do\n  \
         echo \"waiting until the physical pool lists $POD_IP\"; sleep 5\ndone\n"
    );
    assert_eq!(
        wait["volumeMounts"],
        json!([{"name": "topology", "mountPath": "/curve-operator/topology"}])
    );
    assert!(
        pod["volumes"]
            .as_array()
            .unwrap()
            .contains(&json!({"name": "topology", "configMap": {"name": "demo-topology"}}))
    );
}

#[test]
fn pool_jobs_run_curve_tools_with_the_map_they_were_made_for() {
    use super::jobs::{build as job, step_script};
    let cluster = minimal();
    let map = cluster_map(&cluster, &servers(3), &[]);
    let physical = typed_value(&job(&cluster, TopologyStep::PhysicalPool, &map));
    assert_eq!(
        physical["metadata"]["name"],
        format!("demo-physical-pool-{}", map.servers_hash())
    );
    assert_eq!(
        physical["metadata"]["labels"]["curve.opencurve.io/topology-step"],
        "physical-pool"
    );
    assert_eq!(
        physical["metadata"]["ownerReferences"][0]["uid"],
        "0b7c-uid"
    );
    assert_eq!(physical["spec"]["backoffLimit"], 6);
    let pod = &physical["spec"]["template"]["spec"];
    assert_eq!(
        (pod["restartPolicy"].as_str(), pod["hostNetwork"].as_bool()),
        (Some("Never"), Some(true))
    );
    let container = &pod["containers"][0];
    assert_eq!(container["env"], json!(null), "the map is a file, not env");
    assert_eq!(
        container["volumeMounts"],
        json!([
            {"name": "conf", "mountPath": "/etc/curve"},
            {"name": "topology", "mountPath": "/curve-operator/topology", "readOnly": true}
        ]),
        "the tools' default -confPath, and the map"
    );
    let config = &pod["initContainers"][0];
    assert_eq!(
        config["command"],
        json!([
            "sh",
            "/curve-operator/config/merge-config.sh",
            "/curvebs/conf",
            "/curve-operator/conf",
            "/curvebs/tools",
            "tools.conf:="
        ])
    );
    assert_eq!(
        config["env"].as_array().unwrap().last().unwrap(),
        &json!({"name": "CURVE_ROOT_PASSWORD", "valueFrom": {"secretKeyRef": {"name": "demo-root-password", "key": "password", "optional": false}}})
    );
    let map_volume = json!({"name": "topology", "configMap": {"name": "demo-topology", "items": [
        {"key": "topology.json", "path": "topology.json"},
        {"key": "servers-hash", "path": "servers-hash"}
    ]}});
    assert_eq!(
        pod["volumes"],
        json!([{"name": "config-source", "configMap": {"name": "demo-topology"}}, {"name": "conf", "emptyDir": {}}, map_volume])
    );
    assert_eq!(
        container["command"],
        json!([
            "sh",
            "-c",
            step_script(TopologyStep::PhysicalPool, 3, &map.servers_hash())
        ])
    );
    assert_eq!(
        step_script(TopologyStep::PhysicalPool, 3, "0a1b2c3d"),
        "set -e\nmounted=$(cat /curve-operator/topology/servers-hash)\n\
         if [ \"$mounted\" != 0a1b2c3d ]; then\n  \
         echo \"the mounted cluster map has servers hash $mounted; this Job is for 0a1b2c3d and applies no other map\"\n  \
         exit 1\nfi\n\
         /curvebs/tools/sbin/curvebs-tool -op=create_physicalpool -cluster_map=/curve-operator/topology/topology.json\n"
    );
    assert_eq!(
        step_script(TopologyStep::LogicalPool, 3, "0a1b2c3d"),
        "set -e\n/curvebs/tools/sbin/curvebs-tool -op=create_logicalpool -cluster_map=/curve-operator/topology/topology.json\n"
    );
    assert!(
        step_script(TopologyStep::ChunkServersOnline, 6, "0a1b2c3d")
            .contains("grep -Eq 'online *= *6([^0-9]|$)'")
    );
    let logical = typed_value(&job(&cluster, TopologyStep::LogicalPool, &map));
    assert_eq!(logical["metadata"]["name"], "demo-logical-pool");
    assert_eq!(
        logical["spec"]["template"]["spec"]["volumes"][2],
        map_volume
    );
    let online = typed_value(&job(&cluster, TopologyStep::ChunkServersOnline, &map));
    assert_eq!(
        online["spec"]["template"]["spec"]["volumes"]
            .as_array()
            .unwrap()
            .len(),
        2,
        "the online check reads no map"
    );
}

#[test]
fn cores_go_to_the_node_directory_of_the_spec_in_every_daemon_and_nowhere_without_it() {
    let mut cluster = minimal();
    cluster.spec.core_dumps.host_path = Some("/var/lib/curve/cores".into());
    for (cluster, expected) in [(minimal(), false), (cluster, true)] {
        let objects = build(&cluster, &Observed::default());
        let sets: Vec<_> = [&objects.etcd, &objects.mds, &objects.chunkservers]
            .into_iter()
            .flat_map(|tier| tier.stateful_sets.iter())
            .collect();
        assert_eq!(
            sets.len(),
            2 + cluster.spec.chunkservers.disks_per_node as usize
        );
        for set in sets {
            let pod = &typed_value(set)["spec"]["template"]["spec"];
            let volumes: Vec<_> = pod["volumes"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|volume| volume["name"] == "cores")
                .collect();
            let daemon = &pod["containers"][0];
            let mounts: Vec<_> = daemon["volumeMounts"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|mount| mount["mountPath"] == "/core")
                .collect();
            if expected {
                assert_eq!(
                    volumes,
                    [
                        &json!({"name": "cores", "hostPath": {"path": "/var/lib/curve/cores", "type": "DirectoryOrCreate"}})
                    ],
                    "{pod}"
                );
                assert_eq!(
                    mounts,
                    [&json!({"name": "cores", "mountPath": "/core"})],
                    "{daemon}"
                );
            } else {
                assert!(volumes.is_empty() && mounts.is_empty(), "{pod}");
            }
        }
    }
}

#[test]
fn every_daemon_logs_into_a_bounded_empty_dir_above_what_the_cleanup_keeps() {
    let objects = build(&minimal(), &Observed::default());
    let sets = [&objects.etcd, &objects.mds, &objects.chunkservers]
        .into_iter()
        .flat_map(|tier| tier.stateful_sets.iter());
    let mut checked = 0;
    for set in sets {
        let pod = &typed_value(set)["spec"]["template"]["spec"];
        let logs: Vec<_> = pod["volumes"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|volume| volume["name"] == "logs")
            .collect();
        assert_eq!(
            logs,
            [&json!({"name": "logs", "emptyDir": {"sizeLimit": "2048Mi"}})],
            "{pod}"
        );
        checked += 1;
    }
    assert_eq!(checked, 2 + minimal().spec.chunkservers.disks_per_node);
}
