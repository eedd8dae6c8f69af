//! The whole-snapshot decisions, with the write step played by `carry_out` and the kubelet by
//! `ready_pods`; and the glue of this module: the retry backoff and the count of primaries.

use std::sync::Arc;

use k8s_openapi::api::core::v1::ContainerStatus;
use serde_json::json;

use super::fixtures::{pod, t, validated};
use super::model::action::Action;
use super::model::conditions::{ConditionType, find};
use crate::api::{CurveClusterStatus, Phase};
use crate::etcd::{MemberHealth, PrimaryObservation};
use crate::names::Component;

#[test]
fn retry_backoff_grows_and_is_capped_shorter_unless_the_server_refused() {
    let secs = |refused| -> Vec<u64> {
        [1, 2, 3, 4, 6, 7, 50]
            .iter()
            .map(|n| super::backoff(*n, refused).as_secs())
            .collect()
    };
    assert_eq!(secs(true), [5, 10, 20, 40, 160, 300, 300]);
    assert_eq!(secs(false), [1, 2, 4, 8, 30, 30, 30]);
}

#[test]
fn only_the_api_servers_judgement_of_a_request_counts_as_a_refusal() {
    use super::error::Error;
    let api = |code: u16| {
        kube::Error::Api(Box::new(
            kube::core::Status::failure("no", "R").with_code(code),
        ))
    };
    let apply = |code| Error::Apply {
        object: "StatefulSet/demo-etcd".into(),
        source: api(code),
    };
    for code in [400, 403, 422] {
        assert!(apply(code).is_refusal(), "{code}");
    }
    for code in [404, 408, 409, 429, 500, 503] {
        assert!(!apply(code).is_refusal(), "{code}");
    }
    assert!(Error::Status(api(422)).is_refusal());
    assert!(!Error::Read("pods").is_refusal());
    assert!(!Error::Membership("no answer within 2s".into()).is_refusal());
}

/// Whole decisions on whole snapshots: `decide` alone, with the write step played by
/// `carry_out` and the kubelet by `ready_pods`.
mod decisions {
    use super::*;
    use crate::etcd::EtcdObservation;
    use crate::reconcile::decide::decide;
    use crate::reconcile::expansion;
    use crate::reconcile::model::claim::{ClaimReading, Size};
    use crate::reconcile::model::observation::MonitoringApi;
    use crate::reconcile::snapshot::Snapshot;
    use crate::reconcile::synthetic::carry_out;
    use k8s_openapi::api::core::v1::PersistentVolumeClaim;
    use std::collections::BTreeSet;

    fn ready_pods(snapshot: &mut Snapshot, set: &str, component: &str, n: i32) {
        for i in 0..n {
            let ip = format!("10.0.0.{}", i + 1);
            let name = format!("{set}-{i}");
            snapshot.pods.retain(|p| p.name != name);
            snapshot.pods.push(pod(
                &name,
                component,
                Some(&ip),
                Some(&format!("node-{}", i + 1)),
                true,
            ));
        }
    }

    fn step(
        cluster: &crate::validate::ValidatedCluster,
        snapshot: &mut Snapshot,
        status: &mut CurveClusterStatus,
    ) -> Vec<String> {
        let decision = decide(cluster, snapshot, status, Some(1), t(0));
        carry_out(snapshot, &decision.actions);
        *status = decision.status;
        decision.actions.iter().map(Action::describe).collect()
    }

    fn claim(name: &str, component: &str, request: &str, capacity: &str) -> PersistentVolumeClaim {
        serde_json::from_value(json!({
            "metadata": {"name": name, "labels": {
                "app.kubernetes.io/component": component, "app.kubernetes.io/instance": "demo"}},
            "spec": {"storageClassName": "standard", "resources": {"requests": {"storage": request}}},
            "status": {"capacity": {"storage": capacity}}
        }))
        .unwrap()
    }

    fn report(snapshot: &mut Snapshot, name: &str, capacity: &str, resize_pending: bool) {
        // The watch delivers the claim anew: its reading is made again.
        let claim = (snapshot.claims.iter_mut())
            .find(|c| c.name == name)
            .unwrap();
        let claim = Arc::make_mut(claim);
        claim.capacity = Some(Size::of(capacity));
        claim.resize_pending = resize_pending;
    }

    fn progressing(status: &CurveClusterStatus) -> (String, String, String) {
        let c = find(status, ConditionType::Progressing).unwrap();
        (c.status.clone(), c.reason.clone(), c.message.clone())
    }

    /// The actions on the etcd tier's StatefulSet and on claims.
    fn volume_actions(actions: &[Action]) -> Vec<String> {
        (actions.iter().map(Action::describe))
            .filter(|a| a.contains("PersistentVolumeClaim/") || a.contains("StatefulSet/demo-etcd"))
            .collect()
    }

    /// A running etcd tier with 10Gi volumes of the StorageClass `standard`.
    fn running_etcd() -> (Snapshot, CurveClusterStatus) {
        let mut snapshot = Snapshot::default();
        let mut status = CurveClusterStatus::default();
        step(&validated(json!({})), &mut snapshot, &mut status);
        ready_pods(&mut snapshot, "demo-etcd", "etcd", 3);
        snapshot.claims = (0..3)
            .map(|i| {
                ClaimReading::shared(claim(
                    &format!("data-demo-etcd-{i}"),
                    "etcd",
                    "10Gi",
                    "10Gi",
                ))
            })
            .collect();
        step(&validated(json!({})), &mut snapshot, &mut status);
        (snapshot, status)
    }

    fn monitoring_condition(status: &CurveClusterStatus) -> Option<(String, String, String)> {
        let c = find(status, ConditionType::Monitoring)?;
        Some((c.status.clone(), c.reason.clone(), c.message.clone()))
    }

    fn monitoring_actions(actions: &[String]) -> Vec<String> {
        (actions.iter())
            .filter(|a| a.contains("PodMonitor/") || a.contains("PrometheusRule/"))
            .cloned()
            .collect()
    }

    #[test]
    fn monitoring_waits_for_the_prometheus_operator_and_then_applies_its_objects_once() {
        let (mut snapshot, mut status) = running_etcd();
        let plain_actions = step(
            &validated(json!({})),
            &mut snapshot.clone(),
            &mut status.clone(),
        );
        assert_eq!(
            monitoring_condition(&status),
            None,
            "no condition while monitoring is off"
        );
        let monitored = validated(json!({"monitoring": {"enabled": true}}));

        // Discovery has not answered: nothing is created, the condition says why.
        let actions = step(&monitored, &mut snapshot.clone(), &mut status.clone());
        assert_eq!(actions, plain_actions, "monitoring changes no other action");
        let decision = decide(&monitored, &snapshot, &status, Some(1), t(0));
        assert_eq!(
            monitoring_condition(&decision.status).map(|c| (c.0, c.1)),
            Some(("False".into(), "Discovering".into()))
        );

        // Not served: still nothing, and the message says what to install.
        let message =
            crate::reconcile::monitoring::missing_message(&["PodMonitor", "PrometheusRule"]);
        snapshot.monitoring_api = MonitoringApi::Missing {
            message: message.clone(),
        };
        let actions = step(&monitored, &mut snapshot.clone(), &mut status.clone());
        assert_eq!(monitoring_actions(&actions), Vec::<String>::new());
        let decision = decide(&monitored, &snapshot, &status, Some(1), t(0));
        assert_eq!(
            monitoring_condition(&decision.status),
            Some(("False".into(), "PrometheusOperatorMissing".into(), message))
        );

        // Served: the four objects, once; then nothing more.
        snapshot.monitoring_api = MonitoringApi::Served;
        let actions = step(&monitored, &mut snapshot, &mut status);
        assert_eq!(
            monitoring_actions(&actions),
            vec![
                "apply PodMonitor/demo-etcd",
                "apply PodMonitor/demo-mds",
                "apply PodMonitor/demo-chunkserver",
                "apply PrometheusRule/demo-alerts",
            ]
        );
        assert_eq!(
            monitoring_condition(&status).map(|c| (c.0, c.1)),
            Some(("True".into(), "Applied".into()))
        );
        let again = step(&monitored, &mut snapshot, &mut status);
        assert_eq!(monitoring_actions(&again), Vec::<String>::new());

        // A new interval re-applies the PodMonitors only; rules off deletes the rule; off
        // deletes the rest and drops the condition.
        let slower = validated(json!({"monitoring": {"enabled": true, "interval": "1m"}}));
        assert_eq!(
            monitoring_actions(&step(&slower, &mut snapshot, &mut status)),
            vec![
                "apply PodMonitor/demo-etcd",
                "apply PodMonitor/demo-mds",
                "apply PodMonitor/demo-chunkserver"
            ]
        );
        let no_rules =
            validated(json!({"monitoring": {"enabled": true, "interval": "1m", "rules": false}}));
        assert_eq!(
            monitoring_actions(&step(&no_rules, &mut snapshot, &mut status)),
            vec!["delete PrometheusRule/demo-alerts"]
        );
        assert_eq!(
            monitoring_actions(&step(&validated(json!({})), &mut snapshot, &mut status)),
            vec![
                "delete PodMonitor/demo-etcd",
                "delete PodMonitor/demo-mds",
                "delete PodMonitor/demo-chunkserver"
            ]
        );
        assert_eq!(monitoring_condition(&status), None);
        assert!(snapshot.monitoring_objects.is_empty());
    }

    #[test]
    fn a_paused_cluster_creates_no_monitoring_objects() {
        let (mut snapshot, status) = running_etcd();
        snapshot.monitoring_api = MonitoringApi::Served;
        let paused = validated(json!({"paused": true, "monitoring": {"enabled": true}}));
        let decision = decide(&paused, &snapshot, &status, Some(1), t(0));
        assert_eq!(decision.actions, Vec::new());
    }

    #[test]
    fn etcd_volumes_grow_in_place_and_the_set_is_recreated_without_a_fresh_bring_up() {
        let (mut snapshot, mut status) = running_etcd();
        let small = validated(json!({}));
        let grown = validated(json!({"etcd": {"storage": {"size": "20Gi"}}}));
        let existing = crate::reconcile::decide::existing_objects(&snapshot);
        assert!(
            expansion::classes_to_read(&small, &existing, &snapshot.claims).is_empty(),
            "volumes of their size: no StorageClass is read"
        );
        assert_eq!(
            expansion::classes_to_read(&grown, &existing, &snapshot.claims),
            BTreeSet::from(["standard".to_string()])
        );

        // A class that does not allow expansion: nothing changes, and the status says why.
        snapshot.storage_classes.insert("standard".into(), false);
        let refused = decide(&grown, &snapshot, &status, Some(2), t(1));
        assert_eq!(volume_actions(&refused.actions), Vec::<String>::new());
        assert_eq!(
            progressing(&refused.status),
            (
                "False".into(),
                "ChangeRefused".into(),
                "spec.etcd.storage.size: cannot grow the volumes (10Gi → 20Gi): StorageClass standard does not allow volume expansion (its allowVolumeExpansion is not true); nothing was changed and they keep 10Gi (set 10Gi again, or allow expansion)".into()
            )
        );
        snapshot.storage_classes.clear();
        let missing = decide(&grown, &snapshot, &status, Some(2), t(1));
        assert!(
            missing.observation.refused[0].contains(
                "StorageClass standard of PersistentVolumeClaim data-demo-etcd-0 does not exist"
            ),
            "{:?}",
            missing.observation.refused
        );
        // Setting the size back is accepted and undoes the refusal.
        let reverted = decide(&small, &snapshot, &refused.status, Some(3), t(2));
        assert_eq!(reverted.observation.refused, Vec::<String>::new());
        assert_ne!(progressing(&reverted.status).1, "ChangeRefused");

        // Allowed: the claims are asked for 20Gi and the set is deleted, its pods orphaned —
        // unless paused.
        snapshot.storage_classes.insert("standard".into(), true);
        let paused = validated(json!({"etcd": {"storage": {"size": "20Gi"}}, "paused": true}));
        let held = decide(&paused, &snapshot, &status, Some(2), t(1));
        assert_eq!(volume_actions(&held.actions), Vec::<String>::new());
        assert_ne!(progressing(&held.status).1, "VolumeExpansion");
        let uids: Vec<_> = snapshot.pods.iter().map(|p| p.uid.clone()).collect();
        let first = decide(&grown, &snapshot, &status, Some(2), t(1));
        assert_eq!(
            volume_actions(&first.actions),
            [
                "resize PersistentVolumeClaim/data-demo-etcd-0 to 20Gi",
                "resize PersistentVolumeClaim/data-demo-etcd-1 to 20Gi",
                "resize PersistentVolumeClaim/data-demo-etcd-2 to 20Gi",
                "delete StatefulSet/demo-etcd (orphaning its pods)",
            ]
        );
        assert_eq!(
            progressing(&first.status).1,
            "VolumeExpansion",
            "{:?}",
            progressing(&first.status)
        );
        carry_out(&mut snapshot, &first.actions);
        status = first.status;

        // The operator may stop here: pods without their set are a tier to re-create, not to
        // bring up — no Created event, etcd still quorate, nothing deleted.
        snapshot.storage_classes.clear();
        let existing = crate::reconcile::decide::existing_objects(&snapshot);
        assert!(expansion::classes_to_read(&grown, &existing, &snapshot.claims).is_empty());
        let recreate = decide(&grown, &snapshot, &status, Some(2), t(2));
        assert_eq!(
            volume_actions(&recreate.actions),
            ["apply StatefulSet/demo-etcd"]
        );
        assert!(recreate.created.is_empty(), "{:?}", recreate.created);
        assert!(recreate.events.iter().all(|e| e.reason != "Created"));
        assert!(
            !recreate
                .actions
                .iter()
                .any(|a| matches!(a, Action::DeletePod { .. } | Action::Delete { .. }))
        );
        assert_eq!(
            find(&recreate.status, ConditionType::EtcdQuorate)
                .unwrap()
                .status,
            "True"
        );
        let Some(Action::Apply(set)) = recreate
            .actions
            .iter()
            .find(|a| a.describe() == "apply StatefulSet/demo-etcd")
        else {
            unreachable!()
        };
        assert_eq!(
            set.value()["spec"]["volumeClaimTemplates"][0]["spec"]["resources"]["requests"]["storage"],
            "20Gi"
        );
        carry_out(&mut snapshot, &recreate.actions);
        status = recreate.status;
        assert_eq!(
            snapshot
                .pods
                .iter()
                .map(|p| p.uid.clone())
                .collect::<Vec<_>>(),
            uids,
            "no pod replaced"
        );

        // Each claim in turn: the status follows until all report 20Gi.
        report(&mut snapshot, "data-demo-etcd-0", "20Gi", false);
        report(&mut snapshot, "data-demo-etcd-1", "10Gi", true);
        let waiting = decide(&grown, &snapshot, &status, Some(2), t(3));
        assert_eq!(volume_actions(&waiting.actions), Vec::<String>::new());
        assert_eq!(
            progressing(&waiting.status),
            (
                "True".into(),
                "VolumeExpansion".into(),
                "etcd volumes 10Gi → 20Gi: 1/3 claims report 20Gi; data-demo-etcd-1 file system resize pending, data-demo-etcd-2 resizing (the node resizes the file system online, or when the pod next starts, as its CSI driver can)".into()
            )
        );
        for i in 1..3 {
            report(&mut snapshot, &format!("data-demo-etcd-{i}"), "20Gi", false);
        }
        let done = decide(&grown, &snapshot, &waiting.status, Some(2), t(4));
        assert_eq!(volume_actions(&done.actions), Vec::<String>::new());
        assert!(done.observation.expansions.is_empty());
        assert_ne!(progressing(&done.status).1, "VolumeExpansion");

        // Smaller than the volumes: refused, nothing changes, and any size ≥ 20Gi is taken.
        let shrunk = decide(&small, &snapshot, &done.status, Some(3), t(5));
        assert_eq!(volume_actions(&shrunk.actions), Vec::<String>::new());
        assert_eq!(
            shrunk.observation.refused,
            [
                "spec.etcd.storage.size: volumes cannot shrink (20Gi → 10Gi); they keep 20Gi: set 20Gi or more"
            ]
        );
        let back = decide(&grown, &snapshot, &shrunk.status, Some(4), t(6));
        assert_eq!(back.observation.refused, Vec::<String>::new());
    }

    #[test]
    fn a_set_still_being_deleted_is_not_applied_and_nothing_rolls_meanwhile() {
        let (mut snapshot, status) = running_etcd();
        snapshot.stateful_sets[0].metadata.deletion_timestamp =
            Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(t(0)));
        // A template change that would roll etcd.
        let changed = validated(json!({"image": "opencurvedocker/curvebs:v1.2.7"}));
        let decision = decide(&changed, &snapshot, &status, Some(2), t(1));
        assert_eq!(volume_actions(&decision.actions), Vec::<String>::new());
        assert!(
            !decision
                .actions
                .iter()
                .any(|a| matches!(a, Action::DeletePod { .. }))
        );
    }

    /// The MDS at `address` holds the election; every etcd member answers.
    fn elect(snapshot: &mut Snapshot, address: &str) {
        snapshot.etcd = Some(EtcdObservation {
            primary: PrimaryObservation::Elected {
                address: address.into(),
            },
            members: Some(MemberHealth::all_healthy(
                "ns",
                &["demo-etcd-0", "demo-etcd-1", "demo-etcd-2"],
                0,
            )),
        });
    }

    /// The three ChunkServers of the first set run, with host networking.
    fn ready_chunkservers(snapshot: &mut Snapshot) {
        ready_pods(snapshot, "demo-chunkserver-0", "chunkserver", 3);
        for pod in (snapshot.pods.iter_mut()).filter(|p| p.name.contains("chunkserver")) {
            let pod = Arc::make_mut(pod);
            pod.host_ip = pod.ip.clone();
        }
    }

    /// Physical pool, online check, logical pool: each Job succeeds once created; returns the
    /// Jobs' apply actions.
    fn run_jobs(
        cluster: &crate::validate::ValidatedCluster,
        snapshot: &mut Snapshot,
        status: &mut CurveClusterStatus,
    ) -> Vec<String> {
        let mut created_jobs = Vec::new();
        for _ in 0..4 {
            let actions = step(cluster, snapshot, status);
            created_jobs.extend(actions.into_iter().filter(|a| a.starts_with("apply Job/")));
            for job in &mut snapshot.jobs {
                job.status = Some(k8s_openapi::api::batch::v1::JobStatus {
                    succeeded: Some(1),
                    ..Default::default()
                });
            }
        }
        created_jobs
    }

    /// The default cluster brought up to Available.
    fn available() -> (
        crate::validate::ValidatedCluster,
        Snapshot,
        CurveClusterStatus,
    ) {
        let cluster = validated(json!({}));
        let (mut snapshot, mut status) = running_etcd();
        ready_pods(&mut snapshot, "demo-mds", "mds", 3);
        elect(&mut snapshot, "10.0.0.2:6700");
        step(&cluster, &mut snapshot, &mut status);
        ready_chunkservers(&mut snapshot);
        run_jobs(&cluster, &mut snapshot, &mut status);
        step(&cluster, &mut snapshot, &mut status);
        assert_eq!(status.phase, Some(Phase::Available));
        (cluster, snapshot, status)
    }

    fn server_names(decision: &crate::reconcile::decide::Decision) -> Vec<String> {
        (decision.desired.cluster_map.servers().iter())
            .map(|s| s.name.clone())
            .collect()
    }

    #[test]
    fn a_pod_that_cannot_find_the_root_secret_has_it_ensured_again() {
        let (cluster, mut snapshot, status) = available();
        let ensure = |snapshot: &Snapshot| -> Vec<String> {
            let decision = decide(&cluster, snapshot, &status, Some(1), t(60));
            (decision.actions.iter().map(Action::describe)).collect()
        };
        assert_eq!(ensure(&snapshot), Vec::<String>::new(), "recorded once");
        let mds = (snapshot.pods.iter_mut())
            .find(|p| p.name == "demo-mds-1")
            .unwrap();
        let mds = Arc::make_mut(mds);
        mds.containers = vec![
            serde_json::from_value::<ContainerStatus>(
                json!({"name": "mds", "image": "x", "imageID": "",
                "ready": false, "restartCount": 1, "state": {"waiting": {
                    "reason": "CreateContainerConfigError",
                    "message": "secret \"demo-root-password\" not found"}}}),
            )
            .unwrap()
            .into(),
        ];
        mds.derive();
        assert_eq!(ensure(&snapshot), ["ensure Secret/demo-root-password"]);
    }

    #[test]
    fn a_chunkserver_pod_being_replaced_keeps_its_server_and_reruns_no_job() {
        let (cluster, mut snapshot, status) = available();
        let before = decide(&cluster, &snapshot, &status, Some(1), t(60));
        let servers = ["node-1", "node-2", "node-3"];
        assert_eq!(server_names(&before), servers);
        // The StatefulSet controller recreated demo-chunkserver-0-1: not scheduled yet.
        snapshot.pods.retain(|p| p.name != "demo-chunkserver-0-1");
        snapshot.pods.push(pod(
            "demo-chunkserver-0-1",
            "chunkserver",
            None,
            None,
            false,
        ));
        let during = decide(&cluster, &snapshot, &status, Some(1), t(61));
        assert_eq!(
            server_names(&during),
            servers,
            "create_physicalpool would delete it"
        );
        assert_eq!(
            during.actions,
            Vec::<Action>::new(),
            "no Job reruns, nothing rolls"
        );
        assert_eq!(
            during.status.record.as_ref().unwrap().physical_pool_servers,
            ["10.0.0.1", "10.0.0.2", "10.0.0.3"]
        );
        // After an operator restart only the status remembers: the same inputs, the same map.
        let restarted = decide(&cluster, &snapshot, &during.status, Some(1), t(62));
        assert_eq!(server_names(&restarted), servers);
    }

    /// A pool this operator created registered its servers with port 0: a new disk slot is
    /// applied. One whose servers Curve registered with the ChunkServer port (8200, by an
    /// operator from before the port was recorded) refuses it with the reason, and setting
    /// the spec back is accepted.
    #[test]
    fn a_slot_increase_is_refused_only_where_curve_registered_a_fixed_server_port() {
        let (cluster, snapshot, status) = available();
        assert_eq!(status.record.as_ref().unwrap().server_port, Some(0));
        let grown = validated(
            json!({"chunkservers": {"replicas": 3, "disksPerNode": 2, "storage": {"size": "10Gi"}}}),
        );
        let new_slot = |decision: &crate::reconcile::decide::Decision| {
            (decision.actions.iter().map(Action::describe))
                .any(|a| a == "apply StatefulSet/demo-chunkserver-1")
        };
        let accepted = decide(&grown, &snapshot, &status, Some(2), t(60));
        assert_eq!(accepted.observation.refused, Vec::<String>::new());
        assert!(new_slot(&accepted), "{:?}", accepted.actions);

        let refusal = "spec.chunkservers.disksPerNode: cannot grow from 1 to 2: Curve registered this cluster's servers with port 8200 (its pool was created with one disk slot per node), and such a server admits only the ChunkServer of that port, so the new slots could never register";
        let mut fixed = status.clone();
        for recorded in [Some(8200), None] {
            // None: a record from before the port was kept, with one slot: 8200.
            fixed.record.as_mut().unwrap().server_port = recorded;
            let refused = decide(&grown, &snapshot, &fixed, Some(2), t(60));
            assert!(!new_slot(&refused), "{recorded:?}: {:?}", refused.actions);
            assert_eq!(
                progressing(&refused.status),
                ("False".into(), "ChangeRefused".into(), refusal.into()),
                "{recorded:?}"
            );
            assert_eq!(
                refused.status.record.as_ref().unwrap().server_port,
                recorded,
                "kept as found"
            );
            let reverted = decide(&cluster, &snapshot, &refused.status, Some(3), t(61));
            assert_eq!(reverted.observation.refused, Vec::<String>::new());
            assert_ne!(progressing(&reverted.status).1, "ChangeRefused");
        }
    }

    #[test]
    fn chunkservers_wait_until_every_mds_pod_has_an_address() {
        let cluster = validated(json!({}));
        let (mut snapshot, mut status) = running_etcd();
        // OrderedReady: only demo-mds-0 runs yet, and it is elected.
        ready_pods(&mut snapshot, "demo-mds", "mds", 1);
        elect(&mut snapshot, "10.0.0.1:6700");
        let early = step(&cluster, &mut snapshot, &mut status);
        assert!(
            !early.iter().any(|a| a.contains("chunkserver")),
            "their config would list one MDS, then roll: {early:?}"
        );
        ready_pods(&mut snapshot, "demo-mds", "mds", 3);
        let actions = step(&cluster, &mut snapshot, &mut status);
        assert!(
            actions.contains(&"apply StatefulSet/demo-chunkserver-0".to_string()),
            "{actions:?}"
        );
        let decision = decide(&cluster, &snapshot, &status, Some(1), t(0));
        let map = &decision.desired.chunkservers.config_maps[0];
        assert_eq!(
            map.data.as_ref().unwrap()["cs_client.conf"],
            "mds.listen.addr=10.0.0.1:6700,10.0.0.2:6700,10.0.0.3:6700\nglobal.logPath=/curvebs/chunkserver/logs\n"
        );
    }

    #[test]
    fn caches_keep_what_decisions_read_and_drop_the_rest() {
        use crate::reconcile::snapshot::Slim;
        // The object as JSON, without the apiVersion and kind k8s-openapi adds.
        fn untyped<T: serde::Serialize>(object: &T) -> serde_json::Value {
            let mut value = serde_json::to_value(object).unwrap();
            let map = value.as_object_mut().unwrap();
            map.remove("apiVersion");
            map.remove("kind");
            value
        }
        let metadata = json!({"name": "demo-etcd-0", "uid": "u", "labels": {"a": "b"},
            "annotations": {"kubectl.kubernetes.io/last-applied-configuration": "{}", "keep": "1"},
            "managedFields": [{"manager": "curve-operator", "operation": "Apply"}]});
        let slim_metadata = json!({"name": "demo-etcd-0", "uid": "u", "labels": {"a": "b"},
            "annotations": {"keep": "1"}});
        // Pods: the cache keeps their readings (model/pod_tests.rs).
        let set_status = json!({"replicas": 3, "updateRevision": "r2", "observedGeneration": 2});
        let claims = json!([{"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": "data"},
            "spec": {"resources": {"requests": {"storage": "10Gi"}}}}]);
        let mut set: k8s_openapi::api::apps::v1::StatefulSet = serde_json::from_value(json!({
            "metadata": metadata, "status": set_status,
            "spec": {"replicas": 3, "serviceName": "demo-etcd", "selector": {},
                "template": {"metadata": {"labels": {"a": "b"}},
                    "spec": {"containers": [{"name": "etcd"}]}},
                "volumeClaimTemplates": claims}}))
        .unwrap();
        set.slim();
        assert_eq!(
            untyped(&set),
            json!({"metadata": slim_metadata, "status": set_status,
                "spec": {"replicas": 3, "serviceName": "demo-etcd", "selector": {},
                    "template": {}, "volumeClaimTemplates": claims}})
        );
        let mut job: k8s_openapi::api::batch::v1::Job = serde_json::from_value(json!({
            "metadata": metadata, "status": {"succeeded": 1},
            "spec": {"template": {"spec": {"containers": [{"name": "tool"}]}}}}))
        .unwrap();
        job.slim();
        assert_eq!(
            untyped(&job),
            json!({"metadata": slim_metadata, "status": {"succeeded": 1}})
        );
    }

    #[test]
    fn bring_up_decisions_follow_the_tiers_and_a_healthy_cluster_gets_none() {
        let cluster = validated(json!({}));
        let mut snapshot = Snapshot::default();
        let mut status = CurveClusterStatus::default();

        let first = decide(&cluster, &snapshot, &status, Some(1), t(0));
        assert_eq!(first.created, [Component::Etcd]);
        assert_eq!(
            first
                .actions
                .iter()
                .map(Action::describe)
                .collect::<Vec<_>>(),
            [
                "apply ConfigMap/demo-etcd",
                "apply ConfigMap/demo-etcd-members",
                "apply Service/demo-etcd",
                "apply PodDisruptionBudget/demo-etcd",
                "apply StatefulSet/demo-etcd"
            ]
        );
        assert_eq!(first.status.phase, Some(Phase::Creating));
        assert_eq!(first.status.record.as_ref().unwrap().version, 1);
        assert_eq!(
            first.desired.jobs.len(),
            3,
            "the Jobs are desired objects too"
        );
        assert!(!first.hands_out_more(&status), "nothing handed out yet");
        carry_out(&mut snapshot, &first.actions);
        status = first.status;

        assert_eq!(
            step(&cluster, &mut snapshot, &mut status),
            Vec::<String>::new(),
            "waits for etcd"
        );
        ready_pods(&mut snapshot, "demo-etcd", "etcd", 3);
        let mds = step(&cluster, &mut snapshot, &mut status);
        assert_eq!(mds[0], "ensure Secret/demo-root-password");
        assert_eq!(
            mds[1..],
            [
                "apply ConfigMap/demo-mds",
                "apply Service/demo-mds",
                "apply PodDisruptionBudget/demo-mds",
                "apply StatefulSet/demo-mds"
            ]
        );

        ready_pods(&mut snapshot, "demo-mds", "mds", 3);
        elect(&mut snapshot, "10.0.0.2:6700");
        let before = status.clone();
        let decision = decide(&cluster, &snapshot, &status, Some(1), t(0));
        assert!(
            decision.hands_out_more(&before),
            "the MDS addresses are recorded first"
        );
        assert_eq!(
            decision.status.record.as_ref().unwrap().mds_addresses,
            ["10.0.0.1:6700", "10.0.0.2:6700", "10.0.0.3:6700"]
        );
        carry_out(&mut snapshot, &decision.actions);
        status = decision.status;

        ready_chunkservers(&mut snapshot);
        let created_jobs = run_jobs(&cluster, &mut snapshot, &mut status);
        assert_eq!(created_jobs.len(), 3, "{created_jobs:?}");
        assert!(created_jobs[0].starts_with("apply Job/demo-physical-pool-"));
        assert!(created_jobs[1].starts_with("apply Job/demo-chunkservers-online-"));
        assert_eq!(created_jobs[2], "apply Job/demo-logical-pool");
        let settled = step(&cluster, &mut snapshot, &mut status);
        assert_eq!(status.phase, Some(Phase::Available), "{settled:?}");
        let record = status.record.clone().unwrap();
        assert!(record.logical_pool_created);
        assert_eq!(
            record.physical_pool_servers,
            ["10.0.0.1", "10.0.0.2", "10.0.0.3"]
        );

        let healthy = decide(&cluster, &snapshot, &status, Some(1), t(60));
        assert_eq!(healthy.actions, Vec::<Action>::new());
        assert_eq!(
            healthy.status, status,
            "an unchanged cluster: the same status"
        );
        assert!(healthy.events.is_empty());
        assert!(!healthy.hands_out_more(&status));
        // The root Secret is recorded with the rest of the status, after the actions.
        let mut secret_only = healthy.clone();
        (secret_only.status.record.as_mut().unwrap()).root_secret = Some("other".into());
        assert!(!secret_only.hands_out_more(&status));
        let mut server_gone = healthy.clone();
        (server_gone.status.record.as_mut().unwrap()).servers.pop();
        assert!(server_gone.hands_out_more(&status));
        assert_eq!(
            status.record.as_ref().unwrap().etcd_members,
            Some(3),
            "bootstrapped"
        );

        // etcd grows: the step is recorded (written before anything else) and the learner is
        // added before its pod exists; no StatefulSet changes in this pass.
        let grown = validated(json!({"etcd": {"replicas": 5}}));
        let decision = decide(&grown, &snapshot, &status, Some(2), t(61));
        assert_eq!(
            decision.actions,
            [Action::EtcdMembers(crate::etcd::MemberChange::AddLearner {
                peer_url: "http://demo-etcd-3.demo-etcd.ns.svc:2380".into()
            })]
        );
        assert!(
            decision.hands_out_more(&status),
            "the step is recorded first"
        );
        let step = decision
            .status
            .record
            .as_ref()
            .unwrap()
            .etcd_step
            .clone()
            .unwrap();
        assert_eq!(
            (step.action, step.member.as_str()),
            (crate::api::EtcdStepAction::Add, "demo-etcd-3")
        );
        let progressing = find(&decision.status, ConditionType::Progressing).unwrap();
        assert_eq!(
            (progressing.reason.as_str(), progressing.message.as_str()),
            (
                "EtcdMembershipChange",
                "etcd: adding demo-etcd-3 as a learner (spec.etcd.replicas: 3 → 5, one member at a time (2 steps))"
            )
        );
        assert!(
            decision
                .events
                .iter()
                .any(|e| e.reason == "EtcdMemberAdded")
        );
        assert_eq!(decision.observation.etcd.desired, 5);
    }

    #[test]
    fn a_record_of_an_unknown_version_stops_every_change() {
        let cluster = validated(json!({}));
        let previous = CurveClusterStatus {
            record: Some(crate::api::OperatorRecord {
                version: 2,
                ..Default::default()
            }),
            ..Default::default()
        };
        let decision = decide(&cluster, &Snapshot::default(), &previous, Some(1), t(0));
        assert_eq!(decision.actions, Vec::<Action>::new());
        assert_eq!(decision.status.record, previous.record, "kept as found");
        let progressing = find(&decision.status, ConditionType::Progressing).unwrap();
        assert_eq!(progressing.reason, "ChangeRefused");
        assert!(
            progressing.message.contains("status.record: version 2"),
            "{}",
            progressing.message
        );
    }

    /// etcd's space in a whole decision: one member defragmented per pass, a follower first,
    /// with an Event; a NOSPACE alarm turns Degraded with what to do, and a Warning Event.
    #[test]
    fn an_available_cluster_defragments_one_follower_and_shows_nospace() {
        let (cluster, mut snapshot, status) = available();
        // The StatefulSet controller saw the etcd set's template: no roll is under way.
        let set = (snapshot.stateful_sets.iter_mut())
            .find(|s| s.metadata.name.as_deref() == Some("demo-etcd"))
            .unwrap();
        set.status = Some(k8s_openapi::api::apps::v1::StatefulSetStatus {
            observed_generation: set.metadata.generation,
            update_revision: Some("demo-etcd-1".into()),
            ..Default::default()
        });
        let settled = decide(&cluster, &snapshot, &status, Some(1), t(5));
        assert!(
            !(settled.actions.iter()).any(|a| matches!(a, Action::EtcdDefragment { .. })),
            "no free pages: nothing to defragment"
        );
        let members = (snapshot.etcd.as_mut().unwrap().members.as_mut()).unwrap();
        for m in &mut members.members {
            (m.db_size, m.db_size_in_use) = (400 << 20, 100 << 20);
        }
        let decision = decide(&cluster, &snapshot, &status, Some(1), t(10));
        let defragments: Vec<&Action> = (decision.actions.iter())
            .filter(|a| matches!(a, Action::EtcdDefragment { .. }))
            .collect();
        // demo-etcd-0 leads (elect): demo-etcd-1 is the first follower.
        assert_eq!(
            defragments,
            [&Action::EtcdDefragment {
                id: 0xa1,
                member: "demo-etcd-1".into()
            }]
        );
        assert!(
            (decision.events.iter()).any(|e| e.reason == "EtcdDefragmented"
                && e.note
                    .starts_with("defragmenting etcd member demo-etcd-1 (300 MiB")),
            "{:?}",
            decision.events
        );
        let members = (snapshot.etcd.as_mut().unwrap().members.as_mut()).unwrap();
        for m in &mut members.members {
            m.alarms.push(crate::etcd::EtcdAlarm::NoSpace);
            m.healthy = false;
        }
        let decision = decide(&cluster, &snapshot, &status, Some(1), t(20));
        let degraded = find(&decision.status, ConditionType::Degraded).unwrap();
        assert_eq!(
            (degraded.status.as_str(), degraded.reason.as_str()),
            ("True", "EtcdNoSpace")
        );
        assert!(
            degraded
                .message
                .starts_with("etcd raised NOSPACE (members demo-etcd-0, demo-etcd-1, demo-etcd-2)"),
            "{}",
            degraded.message
        );
        assert!(
            (decision.events.iter()).any(|e| e.reason == "EtcdNoSpace" && e.warning),
            "{:?}",
            decision.events
        );
    }

    #[test]
    fn a_paused_cluster_is_decided_without_actions() {
        let cluster = validated(json!({"paused": true}));
        let decision = decide(
            &cluster,
            &Snapshot::default(),
            &CurveClusterStatus::default(),
            Some(1),
            t(0),
        );
        assert_eq!(decision.actions, Vec::<Action>::new());
        assert_eq!(decision.status.phase, Some(Phase::Paused));
    }

    /// Curve's reading of the three-server cluster: ChunkServer `i` at 10.0.0.`i`:8200, taken
    /// with the token of these pods and this retire step.
    fn curve_read(snapshot: &mut Snapshot, status: &CurveClusterStatus, id_2_online: &str) {
        use crate::api::{CopysetHealthStatus, HealthStatus, HealthVerdict};
        use crate::curve::health::{Health, Verdict};
        use crate::curve::inventory::{Inventory, ListedChunkServer, ListedServer};
        use crate::curve::topology::{ChunkServerStatus, OnlineState};
        let online = |id: u32| match (id, id_2_online) {
            (2, "UNSTABLE") => OnlineState::UNSTABLE,
            _ => OnlineState::ONLINE,
        };
        let inventory = Inventory {
            chunkservers: (1..=3)
                .map(|id| ListedChunkServer {
                    id,
                    address: format!("10.0.0.{id}:8200"),
                    status: ChunkServerStatus::READWRITE,
                    online: online(id),
                    copysets: 100,
                    capacity: 100 << 30,
                    used: 1 << 30,
                    server: Some(id),
                    zone: Some(format!("zone{id}")),
                })
                .collect(),
            servers: (1..=3)
                .map(|id| ListedServer {
                    id,
                    name: format!("node-{id}"),
                    ip: format!("10.0.0.{id}"),
                    zone: format!("zone{id}"),
                })
                .collect(),
            operators: Some(0),
            leaders: Default::default(),
        };
        let retire = status.record.as_ref().and_then(|r| r.retire.as_ref());
        snapshot.health = Some(crate::reconcile::model::health::Latest {
            health: Health {
                verdict: Verdict::Healthy,
                copysets: None,
                chunkservers: None,
                pools: Vec::new(),
            },
            status: HealthStatus {
                verdict: HealthVerdict::Healthy,
                message: None,
                copysets: Some(CopysetHealthStatus {
                    total: 100,
                    healthy: 100,
                    unhealthy: 0,
                    problems: Vec::new(),
                }),
                chunkservers: None,
                logical_pools: Vec::new(),
                last_checked: None,
            },
            pods_token: crate::reconcile::health::state_token(&snapshot.pods, retire),
            primary_unreachable: None,
            inventory: Some(std::sync::Arc::new(inventory)),
        });
    }

    /// The status says what volumes can be given in all, as the spec renders it.
    #[test]
    fn the_topology_status_says_the_usable_capacity() {
        let (cluster, _, status) = available();
        let usable = status.topology.unwrap().usable_bytes.unwrap();
        let expected = crate::validate::capacity::usable_capacity_bytes(&cluster.spec).unwrap();
        assert_eq!(usable as u64, expected);
        // 3 volumes of 10 GiB, 3 copies: one volume's worth, less the raft logs of 100
        // copysets (a third of so small a volume) and what the MDS keeps free.
        assert!(usable > 5 << 30 && usable < 7 << 30, "{usable}");
    }

    /// A lost disk: the pod of ChunkServer 2 starts on an empty claim and its start script
    /// refuses id 2. The decision records the replacement before it sets id 2 PENDDING, says
    /// so in Progressing, holds every ChunkServer roll step, and takes no further step on a
    /// reading older than the record.
    /// The pod of ChunkServer 2 refuses id 2: its start script found its disk empty.
    fn refuses_id_2(snapshot: &mut Snapshot) {
        let refusing = (snapshot.pods.iter_mut())
            .find(|p| p.name == "demo-chunkserver-0-1")
            .unwrap();
        let refusing = Arc::make_mut(refusing);
        let message =
            crate::desired::start::empty_disk_refusal(2, "10.0.0.2:8200", "READWRITE", "UNSTABLE");
        refusing.ready = false;
        refusing.containers = vec![
            serde_json::from_value::<ContainerStatus>(
                json!({"name": "chunkserver", "image": "x", "imageID": "",
                "ready": false, "restartCount": 1,
                "state": {"waiting": {"reason": "CrashLoopBackOff"}},
                "lastState": {"terminated": {"exitCode": 1, "message": message}}}),
            )
            .unwrap()
            .into(),
        ];
        refusing.derive();
    }

    /// A second READWRITE ChunkServer in zone2 (a second disk on node 2): id 2's copysets have
    /// somewhere to go.
    fn second_chunkserver_in_zone2(snapshot: &mut Snapshot) {
        let latest = snapshot.health.as_mut().unwrap();
        let inventory = std::sync::Arc::make_mut(latest.inventory.as_mut().unwrap());
        let mut other = inventory.chunkservers[1].clone();
        (other.id, other.address, other.copysets) = (4, "10.0.0.2:8201".into(), 0);
        other.online = crate::curve::topology::OnlineState::ONLINE;
        inventory.chunkservers.push(other);
    }

    #[test]
    fn a_lost_disk_is_recorded_before_its_old_id_is_set_pendding() {
        let (cluster, mut snapshot, status) = available();
        refuses_id_2(&mut snapshot);
        curve_read(&mut snapshot, &status, "UNSTABLE");
        second_chunkserver_in_zone2(&mut snapshot);
        let decision = decide(&cluster, &snapshot, &status, Some(1), t(60));
        assert!(
            decision.record_first,
            "the step is written before it is taken"
        );
        let actions: Vec<String> = decision.actions.iter().map(Action::describe).collect();
        assert_eq!(actions, ["set Curve ChunkServer 2 PENDDING"]);
        let retire = decision
            .status
            .record
            .as_ref()
            .unwrap()
            .retire
            .clone()
            .unwrap();
        assert_eq!(
            (retire.pod.as_str(), retire.chunkserver_id),
            ("demo-chunkserver-0-1", Some(2))
        );
        let (_, reason, message) = progressing(&decision.status);
        assert_eq!(reason, "ChunkServerReplacing");
        assert!(
            message.contains("PENDDING, 100 of 100 copysets left to move"),
            "{message}"
        );
        assert!(
            decision
                .events
                .iter()
                .any(|e| e.reason == "ChunkServerReplacing"),
            "{:?}",
            decision.events
        );

        // The next pass, still on the reading from before the record: nothing is sent.
        let stale = decide(&cluster, &snapshot, &decision.status, Some(1), t(61));
        assert_eq!(stale.actions, Vec::<Action>::new());
        assert_eq!(stale.status.record.as_ref().unwrap().retire, Some(retire));
    }

    /// Issue 32: the three servers in three zones. Id 2's copysets have no other ChunkServer
    /// in zone2: the decision sets it PENDDING (so they move once one exists) and nothing
    /// more; Progressing stops with ChunkServerReplaceStuck and a warning Event names the id,
    /// the zone and what unblocks it. A later pass tells it no more.
    #[test]
    fn a_lost_disk_alone_in_its_zone_stops_progressing_and_says_what_unblocks_it() {
        let (cluster, mut snapshot, status) = available();
        refuses_id_2(&mut snapshot);
        curve_read(&mut snapshot, &status, "UNSTABLE");
        let decision = decide(&cluster, &snapshot, &status, Some(1), t(60));
        let actions: Vec<String> = decision.actions.iter().map(Action::describe).collect();
        assert_eq!(actions, ["set Curve ChunkServer 2 PENDDING"]);
        let (state, reason, message) = progressing(&decision.status);
        assert_eq!(
            (state.as_str(), reason.as_str()),
            ("False", "ChunkServerReplaceStuck")
        );
        assert!(
            message.starts_with(
                "replacing ChunkServer 2 (demo-chunkserver-0-1, 10.0.0.2:8200) is stuck: zone zone2 has no other READWRITE ChunkServer to take its 100 copysets"
            ),
            "{message}"
        );
        let mut told: Vec<(&str, bool)> = (decision.events.iter())
            .filter(|e| e.reason.starts_with("ChunkServerReplac"))
            .map(|e| (e.reason.as_str(), e.warning))
            .collect();
        told.sort();
        assert_eq!(
            told,
            [
                ("ChunkServerReplaceStuck", true),
                ("ChunkServerReplacing", false)
            ]
        );
        let stuck_event = (decision.events.iter())
            .find(|e| e.reason == "ChunkServerReplaceStuck")
            .unwrap();
        assert_eq!(stuck_event.note, message);

        // The next pass, on the reading from before the record (no current inventory): the
        // latest list still says it is stuck, and nothing is told again or sent.
        let again = decide(&cluster, &snapshot, &decision.status, Some(1), t(61));
        assert_eq!(again.actions, Vec::<Action>::new());
        assert_eq!(progressing(&again.status).1, "ChunkServerReplaceStuck");
        assert!(
            !(again.events.iter()).any(|e| e.reason.starts_with("ChunkServerReplac")),
            "{:?}",
            again.events
        );
    }
}

/// Every new primary the watches report is counted, however the reconciles fall.
#[tokio::test]
async fn every_new_primary_of_the_election_watch_is_counted() {
    use crate::etcd::{ClusterKey, ElectionChange};
    use crate::runtime::metrics::Metrics;
    use futures::StreamExt;
    let metrics = std::sync::Arc::new(Metrics::new());
    let key = |name: &str| ClusterKey {
        namespace: "ns".into(),
        name: name.into(),
    };
    let change = |name: &str, primary: Option<&str>, revision| ElectionChange {
        cluster: key(name),
        primary: primary.map(str::to_string),
        revision,
    };
    let changes = futures::stream::iter([
        change("demo", Some("10.0.0.1:6700"), 5),
        change("demo", None, 6),
        change("demo", Some("10.0.0.2:6700"), 7),
        change("demo", Some("10.0.0.3:6700"), 8),
        change("other", Some("10.0.1.1:6700"), 9),
    ]);
    let keys: Vec<ClusterKey> = crate::reconcile::count_primary_changes(metrics.clone(), changes)
        .collect()
        .await;
    assert_eq!(keys.len(), 5, "every change triggers a reconcile");
    let text = metrics.encode();
    for line in [
        r#"curve_operator_mds_primary_changes_total{namespace="ns",name="demo"} 3"#,
        r#"curve_operator_mds_primary_changes_total{namespace="ns",name="other"} 1"#,
    ] {
        assert!(text.lines().any(|l| l == line), "missing {line} in\n{text}");
    }
}

/// The clusters whose series go: deleted, or missing from a relist (a deletion the watch missed).
mod clusters_seen {
    use super::super::ClustersSeen;
    use kube::runtime::watcher::Event;

    fn key(name: &&str) -> (String, String) {
        ("ns".to_string(), name.to_string())
    }

    #[test]
    fn a_cluster_deleted_or_absent_from_a_relist_is_gone() {
        let mut seen = ClustersSeen::default();
        let mut follow = |event: Event<&str>| seen.follow(&event, key);
        assert!(follow(Event::Init).is_empty());
        assert!(follow(Event::InitApply("a")).is_empty());
        assert!(follow(Event::InitApply("b")).is_empty());
        assert!(follow(Event::InitDone).is_empty());
        assert!(follow(Event::Apply("c")).is_empty());
        assert_eq!(follow(Event::Delete("a")), [key(&"a")]);
        // The watch restarts; "b" was deleted meanwhile: only the relist tells.
        assert!(follow(Event::Init).is_empty());
        assert!(follow(Event::InitApply("c")).is_empty());
        assert_eq!(follow(Event::InitDone), [key(&"b")]);
        assert_eq!(follow(Event::Delete("c")), [key(&"c")]);
    }
}
