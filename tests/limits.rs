//! A big cluster fits: 1000 servers × 12 disks (12,000 ChunkServers), 5 etcd members, 5 MDS.
//! Every object the operator writes for it (each one as it applies it, the CurveCluster with
//! the status it would write) against the API server's limits, and every container of every
//! pod and Job against the kernel's limits on exec, so that no later change brings back a map
//! in an environment variable or an unbounded list in the status.
//!
//! An integration test, not a unit test of `desired`: it goes through the crate's public path
//! only (validate → the objects `render` applies → `compute_status` and the health block the
//! health monitor writes), the same a user's cluster takes, and prints the largest sizes for
//! docs/dev/measurements.md (`cargo test --test limits -- --nocapture`).

use std::collections::BTreeMap;

use curve_operator::api::{
    ChunkServerRetire, CurveCluster, CurveClusterStatus, OperatorRecord, RecordedServer,
};
use curve_operator::curve::health::{
    ChunkServerCounts, CopysetCounts, CopysetProblem, Health, PoolReport, Problem, ProblemCopysets,
    RaftStateName, Verdict, health_status,
};
use curve_operator::curve::raft_stat::CopysetId;
use curve_operator::desired::topology::PoolProgress;
use curve_operator::names::Component;
use curve_operator::reconcile::model::conditions::Reason;
use curve_operator::reconcile::model::health::HealthView;
use curve_operator::reconcile::model::observation::{
    ComponentObservation, FormatProgress, Observation, PrimaryView, TopologyState,
};
use curve_operator::reconcile::model::states::{ClaimProgress, RollState, VolumeExpansion};
use curve_operator::reconcile::status::compute_status;
use curve_operator::render::{ExamplePlacement, observed_objects};
use curve_operator::validate::{ValidatedCluster, validate};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;
use serde_json::{Value, json};

const SERVERS: i32 = 1000;
const DISKS: i32 = 12;
const CHUNKSERVERS: usize = (SERVERS * DISKS) as usize;

/// A ConfigMap's data and binaryData, keys included (k8s.io/kubernetes
/// pkg/apis/core/validation ValidateConfigMap: MaxSecretSize).
const CONFIG_MAP_DATA: usize = 1024 * 1024;
/// etcd's `--max-request-bytes` default (1.5 MiB): any object the API server stores.
const ETCD_REQUEST: usize = 1_572_864;
/// Linux's MAX_ARG_STRLEN (32 pages): one argument or environment string.
const ARG_STRING: usize = 128 * 1024;
/// ARG_MAX with the usual 8 MiB stack (a quarter of the stack limit): all arguments and
/// environment strings together, each with its NUL and pointer.
const ARG_TOTAL: usize = 2 * 1024 * 1024;

fn big_cluster() -> ValidatedCluster {
    let cluster: CurveCluster = serde_json::from_value(json!({
        "apiVersion": "curve.opencurve.io/v1alpha1", "kind": "CurveCluster",
        "metadata": {"name": "big", "namespace": "curve", "uid": "5e1f-uid"},
        "spec": {
            "image": "opencurvedocker/curvebs:v1.2.6",
            "etcd": {"replicas": 5},
            "mds": {"replicas": 5},
            "chunkservers": {"replicas": SERVERS, "disksPerNode": DISKS, "storage": {"size": "4Ti"}},
            "monitoring": {"enabled": true, "labels": {"release": "kube-prometheus-stack"}}
        }
    }))
    .unwrap();
    validate(&cluster, "curve").unwrap()
}

/// Every object as the operator applies it once every server is in both pools: the map, the
/// physical-pool IP list and the record at their largest.
fn every_object(cluster: &ValidatedCluster) -> Vec<Value> {
    let placement = ExamplePlacement::of(cluster);
    let mut observed = placement.observed(cluster);
    observed.known_servers = recorded_servers(&placement);
    observed.pools = PoolProgress {
        physical_pool_servers: placement.nodes.iter().map(|n| n.ip.clone()).collect(),
        logical_pool_created: true,
        server_port: Some(0),
    };
    observed_objects(cluster, &observed)
}

fn recorded_servers(placement: &ExamplePlacement) -> Vec<RecordedServer> {
    (placement.nodes.iter().enumerate())
        .map(|(i, node)| RecordedServer {
            name: node.name.clone(),
            ip: node.ip.clone(),
            zone: format!("zone{}", i % 3 + 1),
        })
        .collect()
}

fn name_of(object: &Value) -> String {
    format!(
        "{} {}",
        object["kind"].as_str().unwrap_or("?"),
        object["metadata"]["name"].as_str().unwrap_or("?")
    )
}

/// Sizes found, for the report: (what, bytes).
#[derive(Default)]
struct Largest(BTreeMap<&'static str, (usize, String)>);

impl Largest {
    fn see(&mut self, measure: &'static str, size: usize, what: String) {
        let entry = self.0.entry(measure).or_insert((0, String::new()));
        if size > entry.0 {
            *entry = (size, what);
        }
    }
}

fn check_object(object: &Value, largest: &mut Largest) {
    let name = name_of(object);
    let size = serde_json::to_vec(object).unwrap().len();
    assert!(
        size <= ETCD_REQUEST,
        "{name}: {size} bytes as JSON, over etcd's request limit of {ETCD_REQUEST}"
    );
    largest.see("object (JSON)", size, name.clone());
    if object["kind"] == "ConfigMap" {
        let data: usize = ["data", "binaryData"]
            .iter()
            .filter_map(|field| object[field].as_object())
            .flat_map(|map| map.iter())
            .map(|(key, value)| key.len() + value.as_str().map_or(0, str::len))
            .sum();
        assert!(
            data <= CONFIG_MAP_DATA,
            "{name}: data of {data} bytes, over the API server's {CONFIG_MAP_DATA}"
        );
        largest.see("ConfigMap data", data, name.clone());
    }
    let template = match object["kind"].as_str() {
        Some("StatefulSet" | "Job") => &object["spec"]["template"]["spec"],
        _ => return,
    };
    for list in ["initContainers", "containers"] {
        for container in template[list].as_array().into_iter().flatten() {
            check_container(&name, list, container, largest);
        }
    }
}

/// One exec of the container's process: every argument and environment string within
/// MAX_ARG_STRLEN, all of them within ARG_MAX.
fn check_container(object: &str, list: &str, container: &Value, largest: &mut Largest) {
    let at = format!("{object} {list} {}", container["name"].as_str().unwrap());
    let pointer = std::mem::size_of::<usize>();
    let mut total = 0;
    for field in ["command", "args"] {
        for (i, arg) in container[field]
            .as_array()
            .into_iter()
            .flatten()
            .enumerate()
        {
            let arg = arg.as_str().unwrap();
            assert!(
                arg.len() <= ARG_STRING,
                "{at}: {field}[{i}] is {} bytes, over MAX_ARG_STRLEN {ARG_STRING}",
                arg.len()
            );
            largest.see("argument", arg.len(), format!("{at} {field}[{i}]"));
            total += arg.len() + 1 + pointer;
        }
    }
    for env in container["env"].as_array().into_iter().flatten() {
        let name = env["name"].as_str().unwrap();
        // A value from a field or a Secret is short (an IP, a name, a password).
        let value = env["value"].as_str().unwrap_or_default();
        let string = name.len() + 1 + value.len();
        assert!(
            string <= ARG_STRING,
            "{at}: env {name} is {string} bytes, over MAX_ARG_STRLEN {ARG_STRING}"
        );
        largest.see("environment string", string, format!("{at} env {name}"));
        total += string + 1 + pointer;
    }
    assert!(
        total <= ARG_TOTAL,
        "{at}: arguments and environment of {total} bytes, over ARG_MAX {ARG_TOTAL}"
    );
    largest.see("exec total", total, at);
}

#[test]
fn every_object_of_a_thousand_servers_fits_and_every_container_starts() {
    let cluster = big_cluster();
    let objects = every_object(&cluster);
    let chunkserver_sets = (objects.iter())
        .filter(|o| o["kind"] == "StatefulSet")
        .filter(|o| o["spec"]["replicas"] == SERVERS)
        .count();
    assert_eq!(
        chunkserver_sets, DISKS as usize,
        "a StatefulSet per disk slot"
    );
    let map_text = objects
        .iter()
        .find(|o| o["metadata"]["name"] == "big-topology")
        .and_then(|o| o["data"]["topology.json"].as_str())
        .unwrap();
    let map: Value = serde_json::from_str(map_text).unwrap();
    assert_eq!(map["servers"].as_array().unwrap().len(), SERVERS as usize);
    // What was once one environment string: more than MAX_ARG_STRLEN at this size.
    println!(
        "    | objects: the cluster map (topology.json): {} bytes",
        map_text.len()
    );
    let kinds: Vec<&str> = objects.iter().filter_map(|o| o["kind"].as_str()).collect();
    for kind in [
        "PrometheusRule",
        "PodMonitor",
        "Job",
        "Secret",
        "PodDisruptionBudget",
    ] {
        assert!(kinds.contains(&kind), "no {kind} among {kinds:?}");
    }
    let mut largest = Largest::default();
    for object in &objects {
        check_object(object, &mut largest);
    }
    report("objects", &largest);
}

/// The CurveCluster as stored: its spec and the status the operator writes.
fn stored(cluster: &ValidatedCluster, status: &CurveClusterStatus) -> Value {
    json!({
        "apiVersion": "curve.opencurve.io/v1alpha1", "kind": "CurveCluster",
        "metadata": {"name": cluster.name, "namespace": cluster.namespace, "uid": "5e1f-uid",
            "generation": 2, "resourceVersion": "123456789"},
        "spec": serde_json::to_value(&cluster.spec).unwrap(),
        "status": status,
    })
}

fn chunkserver_address(i: usize) -> String {
    let ip = std::net::Ipv4Addr::from(
        u32::from(std::net::Ipv4Addr::new(198, 18, 0, 1)) + (i / 12) as u32,
    );
    format!("{ip}:{}", 8200 + i % 12)
}

fn chunkserver_pods() -> Vec<String> {
    (0..CHUNKSERVERS)
        .map(|i| format!("big-chunkserver-{}-{}", i % 12, i / 12))
        .collect()
}

/// Curve's worst health reading of the cluster: every ChunkServer in every category, and
/// every one answering with no copyset (the state before the logical pool).
fn worst_health() -> Health {
    let all: Vec<String> = (0..CHUNKSERVERS).map(chunkserver_address).collect();
    let copysets: std::collections::BTreeSet<CopysetId> = (1..=40_000)
        .map(|copyset| CopysetId {
            logical_pool: 1,
            copyset,
        })
        .collect();
    let categories = [
        CopysetProblem::PeersNotSufficient,
        CopysetProblem::MinorityPeerNotOnline,
        CopysetProblem::MajorityPeerNotOnline,
        CopysetProblem::LogIndexGapTooBig,
        CopysetProblem::InstallingSnapshot,
        CopysetProblem::NoLeader,
        CopysetProblem::State(RaftStateName("ERROR")),
    ];
    let problems: BTreeMap<CopysetProblem, ProblemCopysets> = categories
        .iter()
        .map(|p| {
            let found = ProblemCopysets {
                copysets: copysets.clone(),
                chunkservers: all.iter().cloned().collect(),
            };
            (*p, found)
        })
        .collect();
    let mut listed: Vec<Problem> = categories
        .iter()
        .map(|p| Problem::Copysets {
            problem: *p,
            count: copysets.len(),
            first: copysets.iter().take(5).copied().collect(),
            chunkservers: all.clone(),
        })
        .collect();
    listed.extend(all.iter().map(|cs| Problem::NoCopysets {
        chunkserver: cs.clone(),
    }));
    Health {
        verdict: Verdict::Unhealthy { problems: listed },
        copysets: Some(CopysetCounts {
            total: copysets.len(),
            unhealthy: copysets.len(),
            problems,
            only_in_mds: copysets.clone(),
            not_in_mds: copysets,
            no_copysets: all.iter().cloned().collect(),
        }),
        chunkservers: Some(ChunkServerCounts {
            offline: CHUNKSERVERS,
            readwrite: CHUNKSERVERS,
            ..ChunkServerCounts::default()
        }),
        pools: vec![PoolReport {
            id: 1,
            name: "logicalPool1".into(),
            space: None,
        }],
    }
}

/// What the operator observes of the big cluster with every list at its longest: each
/// ChunkServer pod failing its format, every claim growing, Curve unhealthy everywhere.
fn worst_observation(now: Timestamp) -> Observation {
    let pods = chunkserver_pods();
    let component = |desired: i32, ready: i32| ComponentObservation {
        desired,
        ready,
        exists: true,
        updated: ready,
        images: vec!["opencurvedocker/curvebs:v1.2.6".into()],
    };
    let health = health_status(&worst_health(), Time(now));
    let mut obs = Observation::invalid(Vec::new());
    obs.etcd = component(5, 5);
    obs.mds = component(5, 5);
    obs.chunkservers = component(CHUNKSERVERS as i32, 0);
    obs.etcd_quorum = 3;
    obs.etcd_members_now = 5;
    obs.tolerated_unready_chunkservers = 1;
    obs.primary = PrimaryView::Elected {
        pod: "big-mds-0".into(),
        address: "198.18.0.1:6700".into(),
    };
    obs.physical_pool = "pool1".into();
    obs.logical_pool = "logicalPool1".into();
    obs.progress_deadline_seconds = 600;
    obs.topology = Some(TopologyState {
        ready: true,
        reason: Reason::Ready,
        message: format!(
            "{SERVERS} servers in physical pool pool1, logical pool logicalPool1 created"
        ),
        servers: SERVERS,
    });
    obs.format = FormatProgress {
        formatting: pods.clone(),
        failed: (pods.iter())
            .map(|pod| {
                format!("{pod} (curve_format left no chunkfilepool.meta: the volume is too small)")
            })
            .collect(),
    };
    obs.expansions = vec![VolumeExpansion {
        component: Component::ChunkServer,
        from: "4Ti".into(),
        to: "8Ti".into(),
        claims: (pods.iter())
            .map(|pod| {
                (
                    format!("data-{pod}"),
                    ClaimProgress::FileSystemResizePending,
                )
            })
            .collect(),
        restarts: true,
    }];
    obs.stale_chunkservers = (pods.iter())
        .map(|pod| format!("{pod}: its disk holds ChunkServer id 17, which Curve retired; delete the pod's claim to start it empty"))
        .collect();
    obs.roll = RollState::Rolling {
        message: "1 of 12000 ChunkServer pods on the current template".into(),
    };
    obs.health = Some(HealthView {
        status: health,
        current: true,
        primary_unreachable: None,
        inventory: None,
    });
    obs
}

/// The status record at its largest: every server, both address lists, a retire under way.
fn previous_status(now: Timestamp) -> CurveClusterStatus {
    let placement = ExamplePlacement::of(&big_cluster());
    CurveClusterStatus {
        record: Some(OperatorRecord {
            version: 1,
            mds_addresses: (0..5).map(|i| format!("198.18.0.{}:6700", i + 1)).collect(),
            etcd_addresses: (0..5).map(|i| format!("198.18.0.{}:2379", i + 1)).collect(),
            servers: recorded_servers(&placement),
            physical_pool_servers: placement.nodes.iter().map(|n| n.ip.clone()).collect(),
            root_secret: Some("big-root-password".into()),
            logical_pool_created: true,
            server_port: Some(0),
            etcd_members: Some(5),
            retire: Some(serde_json::from_value::<ChunkServerRetire>(json!({
                "reason": "ScaleIn", "pod": "big-chunkserver-11-999", "slot": 11, "ordinal": 999,
                "chunkserverId": 12000, "address": "198.18.3.232:8211", "serverId": 1000,
                "step": "Draining", "copysetsAtStart": 100, "started": Time(now)
            }))
            .unwrap()),
            ..OperatorRecord::default()
        }),
        ..CurveClusterStatus::default()
    }
}

#[test]
fn the_status_of_a_thousand_servers_fits() {
    let cluster = big_cluster();
    let now = Timestamp::from_second(1_800_000_000).unwrap();
    let previous = previous_status(now);
    let mut largest = Largest::default();
    // Each branch of the conditions with its longest lists: formats failing, then formatting,
    // then volumes growing, then ChunkServers with retired ids, then paused with much held.
    let mut cases: Vec<(&str, Observation)> = Vec::new();
    let worst = worst_observation(now);
    cases.push(("formats failed", worst.clone()));
    let mut formatting = worst.clone();
    formatting.format.failed.clear();
    cases.push(("formatting", formatting.clone()));
    let mut growing = formatting.clone();
    growing.format.formatting.clear();
    growing.chunkservers.ready = CHUNKSERVERS as i32;
    cases.push(("volumes growing, Curve unhealthy", growing.clone()));
    let mut stale = growing.clone();
    stale.expansions.clear();
    cases.push(("retired ids", stale.clone()));
    let mut paused = growing;
    paused.paused = true;
    paused.held = chunkserver_pods()
        .iter()
        .map(|p| format!("delete pod {p}"))
        .collect();
    cases.push(("paused", paused));
    for (case, obs) in cases {
        let status = compute_status(&previous, &obs, Some(2), now);
        let object = stored(&cluster, &status);
        let size = serde_json::to_vec(&object).unwrap().len();
        let name = format!("CurveCluster big ({case})");
        for (field, value) in [
            (
                "status.record",
                serde_json::to_vec(&status.record).unwrap().len(),
            ),
            (
                "status.health",
                serde_json::to_vec(&status.health).unwrap().len(),
            ),
            (
                "status.conditions",
                serde_json::to_vec(&status.conditions).unwrap().len(),
            ),
        ] {
            largest.see(field, value, name.clone());
        }
        for condition in &status.conditions {
            largest.see(
                "condition message",
                condition.message.len(),
                format!("{name} {}", condition.type_),
            );
        }
        assert!(
            size <= ETCD_REQUEST,
            "{name}: {size} bytes as JSON, over etcd's request limit of {ETCD_REQUEST} (status.record {} bytes, status.health {}, status.conditions {})",
            serde_json::to_vec(&status.record).unwrap().len(),
            serde_json::to_vec(&status.health).unwrap().len(),
            serde_json::to_vec(&status.conditions).unwrap().len(),
        );
        largest.see("object (JSON)", size, name);
    }
    report("status", &largest);
}

fn report(what: &str, largest: &Largest) {
    for (measure, (size, at)) in &largest.0 {
        println!("    | {what}: largest {measure}: {size} bytes ({at})");
    }
}
