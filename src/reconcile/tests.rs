//! The pure parts of the reconciler: status, events, plan, observation of pods.

use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::jiff::Timestamp;
use serde_json::json;

use super::events::derive;
use super::model::action::{Action, ExistingObject, ObjectKind};
use super::model::conditions::{ConditionType, Reason, find};
use super::model::event::ClusterEvent;
use super::model::observation::{
    ComponentObservation, DataCleanup, Observation, PrimaryView, TopologyState,
};
use super::model::states::RollState;
use super::status::{compute_status, with_error};
use super::{observe, plan};
use crate::api::{CurveClusterStatus, Phase};
use crate::desired::{self, Observed};
use crate::etcd::{MemberHealth, PrimaryObservation};
use crate::names::Component;

/// The condition of a type given by its name (tables of steps name them as text).
fn named<'a>(
    status: &'a CurveClusterStatus,
    type_: &str,
) -> &'a k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition {
    (status.conditions.iter())
        .find(|c| c.type_ == type_)
        .unwrap_or_else(|| panic!("no condition {type_}"))
}

fn t(seconds: i64) -> Timestamp {
    Timestamp::from_second(1_800_000_000 + seconds).unwrap()
}

fn component(desired: i32, ready: i32, exists: bool) -> ComponentObservation {
    ComponentObservation {
        desired,
        ready,
        exists,
        ..ComponentObservation::default()
    }
}

fn fresh() -> Observation {
    Observation {
        spec_errors: Vec::new(),
        paused: false,
        etcd: component(3, 0, false),
        mds: component(3, 0, false),
        chunkservers: component(3, 0, false),
        etcd_members: None,
        roll: RollState::Done,
        membership: Default::default(),
        cleanup: DataCleanup::Retain,
        etcd_quorum: 2,
        tolerated_unready_chunkservers: 1,
        primary: PrimaryView::NotStarted,
        refused: Vec::new(),
        error: None,
        topology: None,
        format: Default::default(),
        physical_pool: "pool1".into(),
        logical_pool: "logicalPool1".into(),
        expansions: Vec::new(),
        monitoring: Default::default(),
        blockers: Vec::new(),
        held: Vec::new(),
        etcd_members_now: 3,
        progress_deadline_seconds: 600,
        adopted_claims: Vec::new(),
    }
}

fn healthy() -> Observation {
    Observation {
        etcd: component(3, 3, true),
        mds: component(3, 3, true),
        chunkservers: component(3, 3, true),
        etcd_members: Some(MemberHealth::all_healthy(
            "ns",
            &["demo-etcd-0", "demo-etcd-1", "demo-etcd-2"],
            1,
        )),
        primary: PrimaryView::Elected {
            pod: "demo-mds-0".into(),
            address: "10.0.0.1:6700".into(),
        },
        topology: Some(TopologyState {
            ready: true,
            reason: Reason::Ready,
            message: "ok".into(),
            servers: 3,
        }),
        ..fresh()
    }
}

fn conditions(status: &CurveClusterStatus) -> Vec<(String, String, String)> {
    status
        .conditions
        .iter()
        .map(|c| (c.type_.clone(), c.status.clone(), c.reason.clone()))
        .collect()
}

fn expect(list: &[(&str, &str, &str)]) -> Vec<(String, String, String)> {
    list.iter()
        .map(|(a, b, c)| (a.to_string(), b.to_string(), c.to_string()))
        .collect()
}

#[test]
fn a_new_cluster_is_pending_and_progressing() {
    let status = compute_status(&CurveClusterStatus::default(), &fresh(), Some(1), t(0));
    assert_eq!(status.phase, Some(Phase::Pending));
    assert_eq!(status.observed_generation, Some(1));
    assert_eq!(
        conditions(&status),
        expect(&[
            ("Available", "False", "EtcdNotQuorate"),
            ("Progressing", "True", "Reconciling"),
            ("Degraded", "False", "AsExpected"),
            ("EtcdQuorate", "False", "NoQuorum"),
            ("MdsLeaderElected", "False", "NotStarted"),
            ("ChunkServersReady", "False", "NotStarted"),
            ("TopologyReady", "False", "NotStarted"),
            ("SpecValid", "True", "Valid"),
            ("ReconciliationPaused", "False", "Active"),
            ("DataRetained", "True", "RetainPolicy"),
        ])
    );
    assert!(
        status
            .conditions
            .iter()
            .all(|c| c.last_transition_time.0 == t(0) && c.observed_generation == Some(1))
    );
    assert_eq!(status.etcd.as_ref().unwrap().pods.ready, "0/3");
}

#[test]
fn bring_up_moves_every_condition_in_order() {
    let mut status = compute_status(&CurveClusterStatus::default(), &fresh(), Some(1), t(0));
    let steps = [
        (
            Observation {
                etcd: component(3, 1, true),
                ..fresh()
            },
            Phase::Creating,
            "EtcdQuorate",
            "False",
        ),
        (
            Observation {
                etcd: component(3, 2, true),
                ..fresh()
            },
            Phase::Creating,
            "EtcdQuorate",
            "True",
        ),
        (
            Observation {
                etcd: component(3, 3, true),
                mds: component(3, 1, true),
                primary: PrimaryView::NoLeader,
                ..fresh()
            },
            Phase::Creating,
            "MdsLeaderElected",
            "False",
        ),
        (
            Observation {
                chunkservers: component(3, 0, false),
                ..healthy()
            },
            Phase::Creating,
            "MdsLeaderElected",
            "True",
        ),
        (
            Observation {
                chunkservers: component(3, 2, true),
                ..healthy()
            },
            Phase::Creating,
            "ChunkServersReady",
            "False",
        ),
        (healthy(), Phase::Available, "Available", "True"),
    ];
    for (i, (obs, phase, type_, expected)) in steps.into_iter().enumerate() {
        status = compute_status(&status, &obs, Some(1), t(10 * (i as i64 + 1)));
        assert_eq!(status.phase, Some(phase), "step {i}");
        assert_eq!(named(&status, type_).status, expected, "step {i} {type_}");
    }
    assert_eq!(
        find(&status, ConditionType::Progressing).unwrap().reason,
        "Complete"
    );
    assert_eq!(
        find(&status, ConditionType::ChunkServersReady)
            .unwrap()
            .message,
        "3 of 3 ready"
    );
    let mds = status.mds.as_ref().unwrap();
    assert_eq!(
        (mds.primary.as_deref(), mds.primary_address.as_deref()),
        (Some("demo-mds-0"), Some("10.0.0.1:6700"))
    );
    assert_eq!(mds.primary_since.as_ref().unwrap().0, t(40));
    assert_eq!(
        status.etcd.as_ref().unwrap().leader.as_deref(),
        Some("demo-etcd-1")
    );
    assert_eq!(status.etcd.as_ref().unwrap().healthy_members, Some(3));
}

#[test]
fn an_unchanged_observation_gives_an_identical_status() {
    let first = compute_status(&CurveClusterStatus::default(), &healthy(), Some(3), t(0));
    let second = compute_status(&first, &healthy(), Some(3), t(600));
    assert_eq!(first, second, "no churn: nothing to write");
}

#[test]
fn last_transition_time_changes_only_with_the_status() {
    let available = compute_status(&CurveClusterStatus::default(), &healthy(), Some(1), t(0));
    // One of three ChunkServers down: every copyset keeps 2 of 3 copies, the cluster serves.
    let degraded = compute_status(
        &available,
        &Observation {
            chunkservers: component(3, 2, true),
            ..healthy()
        },
        Some(1),
        t(100),
    );
    assert_eq!(degraded.phase, Some(Phase::Degraded));
    assert_eq!(
        find(&degraded, ConditionType::Degraded).unwrap().reason,
        "ComponentsNotReady"
    );
    assert_eq!(
        find(&degraded, ConditionType::Degraded).unwrap().message,
        "not ready: chunkservers 2/3"
    );
    assert_eq!(
        find(&degraded, ConditionType::Degraded)
            .unwrap()
            .last_transition_time
            .0,
        t(100)
    );
    assert_eq!(
        find(&degraded, ConditionType::EtcdQuorate)
            .unwrap()
            .last_transition_time
            .0,
        t(0),
        "etcd stayed quorate"
    );
    assert_eq!(
        find(&degraded, ConditionType::Available).unwrap().status,
        "True"
    );
    assert_eq!(
        find(&degraded, ConditionType::Available)
            .unwrap()
            .last_transition_time
            .0,
        t(0),
        "still serving"
    );
    // Two down: some copysets lose their majority.
    let worse = compute_status(
        &degraded,
        &Observation {
            chunkservers: component(3, 1, true),
            ..healthy()
        },
        Some(1),
        t(200),
    );
    assert_eq!(
        find(&worse, ConditionType::Available).unwrap().reason,
        "ChunkServersNotReady"
    );
    assert_eq!(
        find(&worse, ConditionType::Available)
            .unwrap()
            .last_transition_time
            .0,
        t(200)
    );
    // A message change alone (2 of 3 → 1 of 3 ready) keeps the transition time.
    assert_eq!(
        find(&worse, ConditionType::ChunkServersReady)
            .unwrap()
            .last_transition_time
            .0,
        t(100)
    );
    assert_eq!(
        find(&worse, ConditionType::ChunkServersReady)
            .unwrap()
            .message,
        "1 of 3 ready"
    );
    let recovered = compute_status(&worse, &healthy(), Some(1), t(300));
    assert_eq!(recovered.phase, Some(Phase::Available));
    assert_eq!(
        find(&recovered, ConditionType::Degraded).unwrap().status,
        "False"
    );
}

/// The MDS tier exists but no etcd pod has an address (all restarting): etcd is not dialed,
/// and the conditions say so instead of naming an empty list of endpoints.
#[test]
fn no_etcd_address_is_said_plainly_not_as_an_empty_endpoint_list() {
    let view = observe::primary_view(&[], 6700, &PrimaryObservation::NoEndpoint);
    assert_eq!(
        view,
        PrimaryView::QuorumLost {
            error: observe::NO_ETCD_ADDRESS.into()
        }
    );
    let status = compute_status(
        &CurveClusterStatus::default(),
        &Observation {
            etcd: component(3, 0, true),
            primary: view,
            ..healthy()
        },
        Some(1),
        t(0),
    );
    let message = |type_: &str| named(&status, type_).message.clone();
    assert_eq!(
        message("MdsLeaderElected"),
        "etcd has no quorum: no etcd endpoint is known yet: no etcd pod has an address \
         (the etcd pods are not running)"
    );
    assert_eq!(
        message("EtcdQuorate"),
        "etcd does not serve reads (0 of 3 members ready, quorum is 2): no etcd endpoint is \
         known yet: no etcd pod has an address (the etcd pods are not running)"
    );
    for condition in &status.conditions {
        assert!(
            !condition.message.contains("()") && !condition.message.contains("answered"),
            "{}: {}",
            condition.type_,
            condition.message
        );
    }
}

#[test]
fn every_primary_problem_has_its_own_reason() {
    let cases = [
        (
            PrimaryView::NoLeader,
            "NoLeader",
            "no MDS campaigns in etcd under 07leader/",
        ),
        (
            PrimaryView::UnknownLeader {
                address: "10.9.9.9:6700".into(),
            },
            "UnknownLeader",
            "the elected address 10.9.9.9:6700 matches no MDS pod of this cluster",
        ),
        (
            PrimaryView::Ambiguous {
                address: "10.0.0.1:6700".into(),
                pods: vec!["demo-mds-0".into(), "demo-mds-1".into()],
            },
            "AmbiguousLeader",
            "the elected address 10.0.0.1:6700 belongs to several pods: demo-mds-0, demo-mds-1",
        ),
        (
            PrimaryView::EtcdUnreachable {
                endpoints: vec!["10.0.0.1:2379".into(), "10.0.0.2:2379".into()],
                error: "timeout".into(),
            },
            "EtcdUnreachable",
            "no etcd endpoint answered (10.0.0.1:2379, 10.0.0.2:2379): timeout",
        ),
        (
            PrimaryView::QuorumLost {
                error: "no leader".into(),
            },
            "QuorumLost",
            "etcd has no quorum: no leader",
        ),
    ];
    for (primary, reason, message) in cases {
        let status = compute_status(
            &CurveClusterStatus::default(),
            &Observation {
                primary,
                ..healthy()
            },
            Some(1),
            t(0),
        );
        let condition = find(&status, ConditionType::MdsLeaderElected).unwrap();
        assert_eq!(
            (
                condition.status.as_str(),
                condition.reason.as_str(),
                condition.message.as_str()
            ),
            ("False", reason, message)
        );
        assert_eq!(
            find(&status, ConditionType::Available).unwrap().reason,
            "NoMdsPrimary"
        );
        assert_eq!(status.mds.as_ref().unwrap().primary, None, "never a guess");
    }
    let lost = compute_status(
        &CurveClusterStatus::default(),
        &Observation {
            primary: PrimaryView::QuorumLost {
                error: "no leader".into(),
            },
            ..healthy()
        },
        Some(1),
        t(0),
    );
    assert_eq!(
        find(&lost, ConditionType::EtcdQuorate).unwrap().reason,
        "QuorumLost"
    );
}

#[test]
fn an_invalid_spec_is_reported_and_nothing_else_is_claimed() {
    let obs = Observation::invalid(vec![
        "spec.etcd.replicas: must be 1, 3, 5 or 7 (got 4)".into(),
        "spec.image: x".into(),
    ]);
    let status = compute_status(&CurveClusterStatus::default(), &obs, Some(2), t(0));
    assert_eq!(status.phase, Some(Phase::Invalid));
    let valid = find(&status, ConditionType::SpecValid).unwrap();
    assert_eq!(
        (valid.status.as_str(), valid.reason.as_str()),
        ("False", "Invalid")
    );
    assert_eq!(
        valid.message,
        "spec.etcd.replicas: must be 1, 3, 5 or 7 (got 4); spec.image: x"
    );
    assert_eq!(
        find(&status, ConditionType::Available).unwrap().reason,
        "Invalid"
    );
    assert_eq!(
        find(&status, ConditionType::Progressing).unwrap().reason,
        "Complete"
    );
    assert!(find(&status, ConditionType::EtcdQuorate).is_none());
    assert!(status.etcd.is_none() && status.mds.is_none() && status.chunkservers.is_none());
}

#[test]
fn pause_refusal_and_errors_show_in_conditions() {
    let paused = compute_status(
        &CurveClusterStatus::default(),
        &Observation {
            paused: true,
            ..fresh()
        },
        Some(1),
        t(0),
    );
    assert_eq!(paused.phase, Some(Phase::Paused));
    assert_eq!(
        find(&paused, ConditionType::ReconciliationPaused)
            .unwrap()
            .reason,
        "Paused"
    );
    // Pause is its own condition: Available keeps its real reason, and Progressing never
    // claims the cluster matches the spec while the operator is not making it so.
    assert_eq!(
        find(&paused, ConditionType::Available).unwrap().reason,
        "EtcdNotQuorate"
    );
    let progressing = find(&paused, ConditionType::Progressing).unwrap();
    assert_eq!(
        (progressing.status.as_str(), progressing.reason.as_str()),
        ("False", "Paused")
    );
    assert!(progressing.message.ends_with("no change is held back"));

    let refused = Observation {
        refused: vec!["spec.etcd.replicas: no".into()],
        ..healthy()
    };
    let status = compute_status(&CurveClusterStatus::default(), &refused, Some(1), t(0));
    let progressing = find(&status, ConditionType::Progressing).unwrap();
    assert_eq!(
        (
            progressing.status.as_str(),
            progressing.reason.as_str(),
            progressing.message.as_str()
        ),
        ("False", "ChangeRefused", "spec.etcd.replicas: no")
    );
    assert_eq!(
        status.phase,
        Some(Phase::Available),
        "a refused change does not break a serving cluster"
    );

    let errored = with_error(&status, "Kubernetes API: 500", Some(1), t(50));
    assert_eq!(
        find(&errored, ConditionType::Progressing).unwrap().reason,
        "ReconcileError"
    );
    assert_eq!(
        find(&errored, ConditionType::Degraded).unwrap().reason,
        "ReconcileError"
    );
    assert_eq!(
        find(&errored, ConditionType::Degraded)
            .unwrap()
            .last_transition_time
            .0,
        t(50)
    );
    assert_eq!(
        find(&errored, ConditionType::EtcdQuorate),
        find(&status, ConditionType::EtcdQuorate)
    );
}

#[test]
fn primary_since_changes_only_with_the_primary() {
    let first = compute_status(&CurveClusterStatus::default(), &healthy(), Some(1), t(0));
    let same = compute_status(&first, &healthy(), Some(1), t(100));
    assert_eq!(
        same.mds.as_ref().unwrap().primary_since.as_ref().unwrap().0,
        t(0)
    );
    let moved = Observation {
        primary: PrimaryView::Elected {
            pod: "demo-mds-2".into(),
            address: "10.0.0.3:6700".into(),
        },
        ..healthy()
    };
    let after = compute_status(&same, &moved, Some(1), t(200));
    assert_eq!(
        after
            .mds
            .as_ref()
            .unwrap()
            .primary_since
            .as_ref()
            .unwrap()
            .0,
        t(200)
    );
    assert_eq!(
        derive(&same, &after, &[]),
        vec![ClusterEvent {
            warning: false,
            reason: "MdsPrimaryChanged".into(),
            note: "MDS primary changed from demo-mds-0 to demo-mds-2".into()
        }]
    );
}

#[test]
fn events_are_told_once_per_change() {
    let start = CurveClusterStatus::default();
    let creating = compute_status(
        &start,
        &Observation {
            etcd: component(3, 0, true),
            ..fresh()
        },
        Some(1),
        t(0),
    );
    let reasons =
        |events: Vec<ClusterEvent>| events.into_iter().map(|e| e.reason).collect::<Vec<_>>();
    assert_eq!(
        reasons(derive(&start, &creating, &[Component::Etcd])),
        ["Created"]
    );
    assert_eq!(
        reasons(derive(&creating, &creating, &[])),
        Vec::<String>::new(),
        "nothing changed, nothing told"
    );
    let quorate = compute_status(
        &creating,
        &Observation {
            etcd: component(3, 2, true),
            ..fresh()
        },
        Some(1),
        t(10),
    );
    assert_eq!(
        reasons(derive(&creating, &quorate, &[Component::Mds])),
        ["Created", "EtcdQuorate"]
    );
    let up = compute_status(&quorate, &healthy(), Some(1), t(20));
    assert_eq!(
        reasons(derive(&quorate, &up, &[])),
        ["ChunkServersReady", "Available", "MdsPrimaryElected"]
    );
    let invalid = compute_status(
        &up,
        &Observation::invalid(vec!["spec.image: bad".into()]),
        Some(2),
        t(30),
    );
    let told = derive(&up, &invalid, &[]);
    assert_eq!(
        told[0],
        ClusterEvent {
            warning: true,
            reason: "InvalidSpec".into(),
            note: "spec.image: bad".into()
        }
    );
    assert_eq!(
        reasons(derive(
            &invalid,
            &compute_status(
                &invalid,
                &Observation::invalid(vec!["spec.image: bad".into()]),
                Some(2),
                t(40)
            ),
            &[]
        )),
        Vec::<String>::new()
    );
    let paused = compute_status(
        &up,
        &Observation {
            paused: true,
            ..healthy()
        },
        Some(3),
        t(50),
    );
    assert_eq!(reasons(derive(&up, &paused, &[])), ["Paused"]);
    let resumed = compute_status(&paused, &healthy(), Some(4), t(60));
    assert_eq!(reasons(derive(&paused, &resumed, &[])), ["Resumed"]);
    let error = with_error(&resumed, "boom", Some(4), t(70));
    assert_eq!(reasons(derive(&resumed, &error, &[])), ["ReconcileError"]);
    assert_eq!(
        reasons(derive(
            &error,
            &with_error(&error, "boom", Some(4), t(80)),
            &[]
        )),
        Vec::<String>::new()
    );
}

fn pod(name: &str, component: &str, ip: Option<&str>, node: Option<&str>, ready: bool) -> Pod {
    serde_json::from_value(json!({
        "metadata": {"name": name, "labels": {"app.kubernetes.io/component": component}},
        "spec": {"containers": [], "nodeName": node},
        "status": {
            "podIP": ip, "hostIP": ip,
            "conditions": [{"type": "Ready", "status": if ready { "True" } else { "False" }}]
        }
    }))
    .unwrap()
}

#[test]
fn member_addresses_are_ips_in_ordinal_order_and_stay_put_while_a_member_is_replaced() {
    let pods = vec![
        pod("demo-mds-1", "mds", Some("10.0.0.2"), Some("n2"), true),
        pod("demo-mds-0", "mds", Some("10.0.0.1"), Some("n1"), true),
        pod("demo-mds-2", "mds", None, None, false),
    ];
    let previous = Some(vec![
        "10.0.0.1:6700".to_string(),
        "10.0.0.2:6700".into(),
        "10.0.0.9:6700".into(),
    ]);
    assert_eq!(
        observe::member_addresses(&pods, "demo-mds", 2, 6700, None),
        ["10.0.0.1:6700", "10.0.0.2:6700"]
    );
    assert_eq!(
        observe::member_addresses(&pods, "demo-mds", 3, 6700, previous.clone()),
        previous.clone().unwrap(),
        "no roll while mds-2 has no IP"
    );
    assert_eq!(
        observe::member_addresses(&pods, "demo-mds", 3, 6700, None),
        ["10.0.0.1:6700", "10.0.0.2:6700"]
    );
    let mut moved = pods.clone();
    moved[2] = pod("demo-mds-2", "mds", Some("10.0.0.3"), Some("n3"), true);
    assert_eq!(
        observe::member_addresses(&moved, "demo-mds", 3, 6700, previous),
        ["10.0.0.1:6700", "10.0.0.2:6700", "10.0.0.3:6700"]
    );
}

#[test]
fn pods_are_read_into_components_endpoints_and_servers() {
    let pods = vec![
        pod("demo-etcd-0", "etcd", Some("10.0.0.2"), Some("n2"), true),
        pod("demo-etcd-1", "etcd", Some("10.0.0.1"), Some("n1"), false),
        pod("demo-etcd-2", "etcd", None, None, false),
        pod("demo-mds-0", "mds", Some("10.0.0.1"), Some("n1"), true),
        pod("demo-mds-1", "mds", Some("10.0.0.2"), Some("n2"), true),
        pod(
            "demo-chunkserver-0-0",
            "chunkserver",
            Some("10.0.0.1"),
            Some("n1"),
            true,
        ),
        pod(
            "demo-chunkserver-1-0",
            "chunkserver",
            Some("10.0.0.1"),
            Some("n1"),
            true,
        ),
        pod(
            "demo-chunkserver-0-1",
            "chunkserver",
            Some("10.0.0.3"),
            Some("n3"),
            false,
        ),
    ];
    assert_eq!(
        observe::component(&pods, Component::Etcd, 3, true),
        component(3, 1, true)
    );
    assert_eq!(
        observe::component(&pods, Component::ChunkServer, 4, true),
        component(4, 2, true)
    );
    assert_eq!(
        observe::etcd_endpoints(&pods, 2379),
        ["10.0.0.1:2379", "10.0.0.2:2379"]
    );
    let zones = [("n1".to_string(), "az1".to_string())].into();
    let servers = observe::chunkserver_servers(&pods, &zones);
    assert_eq!(servers.len(), 2, "one server per node, not per pod");
    assert_eq!(
        (
            servers[0].node.as_str(),
            servers[0].host_ip.as_str(),
            servers[0].zone.as_deref()
        ),
        ("n1", "10.0.0.1", Some("az1"))
    );
    assert_eq!(
        (servers[1].node.as_str(), servers[1].zone.as_deref()),
        ("n3", None)
    );
    let elected = |address: &str| PrimaryObservation::Elected {
        address: address.into(),
    };
    assert_eq!(
        observe::primary_view(&pods, 6700, &elected("10.0.0.2:6700")),
        PrimaryView::Elected {
            pod: "demo-mds-1".into(),
            address: "10.0.0.2:6700".into()
        }
    );
    assert_eq!(
        observe::primary_view(&pods, 6700, &elected("10.0.0.2:6701")),
        PrimaryView::UnknownLeader {
            address: "10.0.0.2:6701".into()
        }
    );
    let mut twins = pods.clone();
    twins.push(pod("demo-mds-2", "mds", Some("10.0.0.2"), Some("n2"), true));
    assert_eq!(
        observe::primary_view(&twins, 6700, &elected("10.0.0.2:6700")),
        PrimaryView::Ambiguous {
            address: "10.0.0.2:6700".into(),
            pods: vec!["demo-mds-1".into(), "demo-mds-2".into()]
        }
    );
    assert_eq!(
        observe::primary_view(&pods, 6700, &PrimaryObservation::NoCandidate),
        PrimaryView::NoLeader
    );
}

fn validated(patch: serde_json::Value) -> crate::validate::ValidatedCluster {
    let mut value = json!({
        "apiVersion": "curve.opencurve.io/v1alpha1", "kind": "CurveCluster",
        "metadata": {"name": "demo", "namespace": "ns", "uid": "u1"},
        "spec": {"image": "curve:1", "chunkservers": {"replicas": 3, "storage": {"size": "1Gi"}}}
    });
    if let (Some(spec), Some(patch)) = (value["spec"].as_object_mut(), patch.as_object()) {
        for (k, v) in patch {
            spec.insert(k.clone(), v.clone());
        }
    }
    crate::validate::validate(&serde_json::from_value(value).unwrap(), "ns").unwrap()
}

fn set(name: &str, component: &str, replicas: i32) -> ExistingObject {
    ExistingObject {
        kind: ObjectKind::StatefulSet,
        name: name.into(),
        component: Some(component.into()),
        applied_hash: None,
        replicas: Some(replicas),
        claim_size: Some(if component == "etcd" { "10Gi" } else { "1Gi" }.into()),
        uid: Some(format!("uid-{name}")),
        deleting: false,
    }
}

#[test]
fn gates_follow_bring_up_order() {
    assert_eq!(
        plan::gates(false, false),
        plan::Gates {
            mds: false,
            chunkservers: false
        }
    );
    assert_eq!(
        plan::gates(true, false),
        plan::Gates {
            mds: true,
            chunkservers: false
        }
    );
    assert_eq!(
        plan::gates(true, true),
        plan::Gates {
            mds: true,
            chunkservers: true
        }
    );
    assert_eq!(
        plan::gates(false, true),
        plan::Gates {
            mds: false,
            chunkservers: false
        }
    );
    let desired = desired::build(&validated(json!({})), &Observed::default());
    let names = |actions: &[Action]| actions.iter().map(Action::describe).collect::<Vec<_>>();
    assert_eq!(
        names(&plan::plan(&desired, &[], plan::gates(false, false))),
        [
            "apply ConfigMap/demo-etcd",
            "apply ConfigMap/demo-etcd-members",
            "apply Service/demo-etcd",
            "apply PodDisruptionBudget/demo-etcd",
            "apply StatefulSet/demo-etcd"
        ]
    );
    let all = plan::plan(&desired, &[], plan::gates(true, true));
    assert_eq!(
        names(&all)[5..10],
        [
            "apply ConfigMap/demo-mds",
            "apply Service/demo-mds",
            "apply PodDisruptionBudget/demo-mds",
            "apply StatefulSet/demo-mds",
            "apply ConfigMap/demo-topology"
        ]
    );
    assert_eq!(all.len(), 14);
}

#[test]
fn unchanged_objects_are_not_applied_again_and_stale_ones_are_pruned() {
    let desired = desired::build(&validated(json!({})), &Observed::default());
    let first = plan::plan(&desired, &[], plan::gates(true, true));
    let existing: Vec<ExistingObject> = first
        .iter()
        .map(|action| match action {
            Action::Apply(object) => {
                let value = object.value();
                ExistingObject {
                    replicas: value["spec"]["replicas"].as_i64().map(|r| r as i32),
                    ..ExistingObject::of(
                        object.kind(),
                        &serde_json::from_value(value["metadata"].clone()).unwrap(),
                    )
                }
            }
            other => panic!("only applies on a first plan, not {other:?}"),
        })
        .collect();
    assert_eq!(
        plan::plan(&desired, &existing, plan::gates(true, true)),
        Vec::<Action>::new()
    );
    let mut with_stale = existing.clone();
    let config_map = |name: &str, component: Option<&str>| ExistingObject {
        kind: ObjectKind::ConfigMap,
        name: name.into(),
        component: component.map(String::from),
        applied_hash: None,
        replicas: None,
        claim_size: None,
        uid: None,
        deleting: false,
    };
    with_stale.push(config_map("demo-old", Some("mds")));
    with_stale.push(config_map("other", None));
    assert_eq!(
        plan::plan(&desired, &with_stale, plan::gates(true, true)),
        vec![Action::Delete {
            kind: ObjectKind::ConfigMap,
            name: "demo-old".into()
        }]
    );
    // While a gate is closed, that tier is neither changed nor pruned.
    assert_eq!(
        plan::plan(&desired, &with_stale, plan::gates(false, false)),
        Vec::<Action>::new()
    );
    let scaled = desired::build(
        &validated(json!({"mds": {"replicas": 5}})),
        &Observed::default(),
    );
    let names: Vec<String> = plan::plan(&scaled, &existing, plan::gates(true, true))
        .iter()
        .map(Action::describe)
        .collect();
    assert!(
        names.contains(&"apply StatefulSet/demo-mds".to_string())
            && names.contains(&"apply ConfigMap/demo-chunkserver".to_string()),
        "{names:?}"
    );
    assert!(!names.iter().any(|n| n.contains("etcd")), "{names:?}");
}

#[test]
fn unsafe_changes_are_held_back_with_a_reason() {
    let cluster = validated(
        json!({"etcd": {"replicas": 5}, "chunkservers": {"replicas": 3, "disksPerNode": 1, "storage": {"size": "1Gi"}}}),
    );
    let existing = vec![
        set("demo-etcd", "etcd", 3),
        set("demo-chunkserver-0", "chunkserver", 4),
        set("demo-chunkserver-1", "chunkserver", 4),
    ];
    let (safe, refused) = plan::refuse_unsafe_changes(&cluster, &existing);
    // etcd's size is membership's business (reconcile/membership.rs), not a refusal.
    assert_eq!(safe.spec.etcd.replicas, 5);
    assert_eq!(safe.spec.chunkservers.disks_per_node, 2);
    assert_eq!(safe.spec.chunkservers.replicas, 4);
    assert_eq!(
        refused,
        [
            "spec.chunkservers.disksPerNode: removing disk slots (2 → 1) is refused until ChunkServers can be decommissioned safely",
            "spec.chunkservers.replicas: removing ChunkServer nodes (4 → 3) is refused until ChunkServers can be decommissioned safely",
        ]
    );
    // Volume sizes are the expansion's (reconcile/expansion.rs).
    let grown = validated(json!({"chunkservers": {"replicas": 3, "storage": {"size": "2Gi"}}}));
    let (kept, refused) =
        plan::refuse_unsafe_changes(&grown, &[set("demo-chunkserver-0", "chunkserver", 3)]);
    assert_eq!(
        (kept.spec.chunkservers.storage.size.as_str(), refused.len()),
        ("2Gi", 0)
    );
    let (same, none) =
        plan::refuse_unsafe_changes(&validated(json!({})), &[set("demo-etcd", "etcd", 3)]);
    assert_eq!((same.spec.etcd.replicas, none.len()), (3, 0));
    // Before bootstrap there is nothing to protect: any valid size is taken.
    let (fresh, none) = plan::refuse_unsafe_changes(&cluster, &[]);
    assert_eq!((fresh.spec.etcd.replicas, none.len()), (5, 0));
}

#[test]
fn retry_backoff_grows_and_is_capped() {
    let secs: Vec<u64> = [1, 2, 3, 4, 7, 50]
        .iter()
        .map(|n| super::backoff(*n).as_secs())
        .collect();
    assert_eq!(secs, [5, 10, 20, 40, 300, 300]);
}

mod topology_decisions {
    use super::*;
    use crate::desired::jobs::job_name;
    use crate::desired::topology::{ClusterMap, ObservedServer, PoolProgress, cluster_map};
    use crate::names::TopologyStep;
    use crate::reconcile::topology::{JobOutcome, JobState, decide};

    fn map(cluster: &crate::validate::ValidatedCluster, n: usize) -> ClusterMap {
        let servers: Vec<ObservedServer> = (1..=n)
            .map(|i| ObservedServer {
                node: format!("node-{i}"),
                host_ip: format!("10.0.0.{i}"),
                zone: None,
            })
            .collect();
        cluster_map(cluster, &servers, &[])
    }

    fn job(
        cluster: &crate::validate::ValidatedCluster,
        step: TopologyStep,
        map: &ClusterMap,
        outcome: JobOutcome,
    ) -> JobState {
        JobState {
            name: job_name(cluster, step, map),
            outcome,
        }
    }

    #[test]
    fn the_physical_pool_waits_until_every_chunkserver_node_is_scheduled() {
        let cluster = validated(json!({}));
        let d = decide(&cluster, &map(&cluster, 2), &PoolProgress::default(), &[]);
        assert_eq!(
            (d.ready, d.reason.as_str(), d.message.as_str(), d.create),
            (
                false,
                "WaitingForServers",
                "2 of 3 ChunkServer nodes scheduled",
                None
            )
        );
    }

    #[test]
    fn bootstrap_runs_physical_pool_then_online_check_then_logical_pool() {
        let cluster = validated(json!({}));
        let m = map(&cluster, 3);
        let none = PoolProgress::default();
        let d = decide(&cluster, &m, &none, &[]);
        assert_eq!(
            (d.reason.as_str(), d.create),
            ("PhysicalPoolPending", Some(TopologyStep::PhysicalPool))
        );
        assert!(
            d.progress.physical_pool_servers.is_empty(),
            "no ChunkServer released before the Job succeeded"
        );

        let running = [job(
            &cluster,
            TopologyStep::PhysicalPool,
            &m,
            JobOutcome::Running,
        )];
        let d = decide(&cluster, &m, &none, &running);
        assert_eq!((d.reason.as_str(), d.create), ("PhysicalPoolPending", None));
        assert!(d.progress.physical_pool_servers.is_empty());

        let physical_done = [job(
            &cluster,
            TopologyStep::PhysicalPool,
            &m,
            JobOutcome::Succeeded,
        )];
        let d = decide(&cluster, &m, &none, &physical_done);
        assert_eq!(
            d.progress.physical_pool_servers,
            ["10.0.0.1", "10.0.0.2", "10.0.0.3"]
        );
        assert_eq!(
            (d.reason.as_str(), d.create),
            (
                "WaitingForChunkServers",
                Some(TopologyStep::ChunkServersOnline)
            )
        );
        assert!(
            !d.progress.logical_pool_created,
            "no logical pool before every ChunkServer is online"
        );

        let offline = [
            job(
                &cluster,
                TopologyStep::PhysicalPool,
                &m,
                JobOutcome::Succeeded,
            ),
            job(
                &cluster,
                TopologyStep::ChunkServersOnline,
                &m,
                JobOutcome::Failed("BackoffLimitExceeded: 2 online".into()),
            ),
        ];
        let d = decide(&cluster, &m, &d.progress, &offline);
        assert_eq!(d.reason.as_str(), "ChunkServersOffline");
        assert_eq!(
            d.delete,
            [job_name(&cluster, TopologyStep::ChunkServersOnline, &m)],
            "deleted, to run again"
        );
        assert_eq!(d.create, None);

        let online = [
            job(
                &cluster,
                TopologyStep::PhysicalPool,
                &m,
                JobOutcome::Succeeded,
            ),
            job(
                &cluster,
                TopologyStep::ChunkServersOnline,
                &m,
                JobOutcome::Succeeded,
            ),
        ];
        let d = decide(&cluster, &m, &d.progress, &online);
        assert_eq!(
            (d.reason.as_str(), d.create),
            ("LogicalPoolPending", Some(TopologyStep::LogicalPool))
        );

        let mut all = online.to_vec();
        all.push(job(
            &cluster,
            TopologyStep::LogicalPool,
            &m,
            JobOutcome::Succeeded,
        ));
        let d = decide(&cluster, &m, &d.progress, &all);
        assert!(d.ready && d.progress.logical_pool_created);
        assert_eq!(
            d.message,
            "3 servers in physical pool pool1, logical pool logicalPool1 created"
        );
    }

    #[test]
    fn a_failed_physical_pool_is_reported_and_retried() {
        let cluster = validated(json!({}));
        let m = map(&cluster, 3);
        let failed = [job(
            &cluster,
            TopologyStep::PhysicalPool,
            &m,
            JobOutcome::Failed(
                "BackoffLimitExceeded: Job has reached the specified backoff limit".into(),
            ),
        )];
        let d = decide(&cluster, &m, &PoolProgress::default(), &failed);
        assert_eq!(d.reason.as_str(), "PhysicalPoolFailed");
        assert!(d.message.contains("BackoffLimitExceeded"), "{}", d.message);
        assert_eq!(
            d.delete,
            [job_name(&cluster, TopologyStep::PhysicalPool, &m)]
        );
        assert!(d.progress.physical_pool_servers.is_empty());
    }

    #[test]
    fn added_servers_rerun_the_physical_pool_but_never_the_logical_pool() {
        let cluster =
            validated(json!({"chunkservers": {"replicas": 4, "storage": {"size": "1Gi"}}}));
        let old = map(&cluster, 3);
        let grown = map(&cluster, 4);
        let done = PoolProgress {
            physical_pool_servers: old.server_ips(),
            logical_pool_created: true,
        };
        let old_jobs = [
            job(
                &cluster,
                TopologyStep::PhysicalPool,
                &old,
                JobOutcome::Succeeded,
            ),
            job(
                &cluster,
                TopologyStep::LogicalPool,
                &old,
                JobOutcome::Succeeded,
            ),
        ];
        let d = decide(&cluster, &grown, &done, &old_jobs);
        assert_eq!(
            (d.reason.as_str(), d.create),
            ("PhysicalPoolPending", Some(TopologyStep::PhysicalPool))
        );
        assert_eq!(
            d.delete,
            [job_name(&cluster, TopologyStep::PhysicalPool, &old)],
            "the finished Job of the old map goes"
        );
        let mut now = old_jobs.to_vec();
        now.push(job(
            &cluster,
            TopologyStep::PhysicalPool,
            &grown,
            JobOutcome::Succeeded,
        ));
        let d = decide(&cluster, &grown, &done, &now);
        assert!(d.ready);
        assert_eq!(d.create, None, "the logical pool is created once");
        assert_eq!(d.progress.physical_pool_servers.len(), 4);
    }
}

#[test]
fn format_progress_and_failure_show_in_the_status() {
    let with_format = |name: &str, state: serde_json::Value, last: serde_json::Value| -> Pod {
        let mut pod = pod(name, "chunkserver", Some("10.0.0.1"), Some("n1"), false);
        let status = serde_json::json!([{"name": "format", "image": "curve", "imageID": "", "ready": false, "restartCount": 1,
            "state": state, "lastState": last}]);
        pod.status.as_mut().unwrap().init_container_statuses =
            Some(serde_json::from_value(status).unwrap());
        pod
    };
    let pods = vec![
        with_format("cs-0", json!({"running": {}}), json!({})),
        with_format(
            "cs-1",
            json!({"terminated": {"exitCode": 1, "message": "formatting 95%\nno space\n"}}),
            json!({}),
        ),
        with_format(
            "cs-2",
            json!({"waiting": {"reason": "CrashLoopBackOff"}}),
            json!({"terminated": {"exitCode": 2}}),
        ),
        with_format(
            "cs-4",
            json!({"waiting": {"reason": "CrashLoopBackOff"}}),
            json!({"terminated": {"exitCode": 1, "message": "curve_format wrote no meta\n"}}),
        ),
        with_format("cs-3", json!({"terminated": {"exitCode": 0}}), json!({})),
    ];
    let progress = observe::format_progress(&pods);
    assert_eq!(progress.formatting, ["cs-0"]);
    assert_eq!(
        progress.failed,
        [
            "cs-1 (exit 1: no space)",
            "cs-2 (CrashLoopBackOff)",
            "cs-4 (CrashLoopBackOff: curve_format wrote no meta)"
        ]
    );
    let obs = Observation {
        chunkservers: component(3, 0, true),
        format: progress,
        ..healthy()
    };
    let status = compute_status(&CurveClusterStatus::default(), &obs, Some(1), t(0));
    let condition = find(&status, ConditionType::ChunkServersReady).unwrap();
    assert_eq!(condition.reason, "FormatFailed");
    assert_eq!(
        condition.message,
        "0 of 3 ready; chunk file pool format failed: cs-1 (exit 1: no space), cs-2 (CrashLoopBackOff), \
         cs-4 (CrashLoopBackOff: curve_format wrote no meta)"
    );
    let formatting = Observation {
        chunkservers: component(3, 1, true),
        format: crate::reconcile::model::observation::FormatProgress {
            formatting: vec!["cs-0".into()],
            failed: vec![],
        },
        ..healthy()
    };
    let status = compute_status(&CurveClusterStatus::default(), &formatting, Some(1), t(0));
    assert_eq!(
        find(&status, ConditionType::ChunkServersReady)
            .unwrap()
            .reason,
        "Formatting"
    );
}

/// Whole decisions on whole snapshots: `decide` alone, with the write step played by
/// `carry_out` and the kubelet by `ready_pods`.
mod decisions {
    use super::*;
    use crate::etcd::EtcdObservation;
    use crate::reconcile::decide::decide;
    use crate::reconcile::expansion;
    use crate::reconcile::model::action::Object;
    use crate::reconcile::model::observation::MonitoringApi;
    use crate::reconcile::snapshot::Snapshot;
    use k8s_openapi::api::core::v1::PersistentVolumeClaim;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
    use std::collections::BTreeSet;

    fn carry_out(snapshot: &mut Snapshot, actions: &[Action]) {
        for action in actions {
            match action {
                Action::Apply(object) => match (**object).clone() {
                    Object::ConfigMap(o) => replace_meta(&mut snapshot.config_maps, o.metadata),
                    Object::Service(o) => replace_meta(&mut snapshot.services, o.metadata),
                    Object::PodDisruptionBudget(o) => {
                        replace_meta(&mut snapshot.budgets, o.metadata)
                    }
                    Object::StatefulSet(o) => replace(&mut snapshot.stateful_sets, o),
                    Object::Job(o) => replace(&mut snapshot.jobs, o),
                    o @ (Object::PodMonitor(_) | Object::PrometheusRule(_)) => {
                        let seen = ExistingObject::of(o.kind(), o.meta());
                        (snapshot.monitoring_objects)
                            .retain(|e| (e.kind, &e.name) != (seen.kind, &seen.name));
                        snapshot.monitoring_objects.push(seen);
                    }
                },
                Action::Delete { kind, name } => {
                    (snapshot.jobs).retain(|j| j.metadata.name.as_deref() != Some(name));
                    (snapshot.monitoring_objects).retain(|e| (e.kind, &e.name) != (*kind, name));
                }
                Action::EnsureRootSecret { .. }
                | Action::EtcdMembers(_)
                | Action::DeleteClaim { .. } => {}
                Action::DeletePod { name, .. } => snapshot
                    .pods
                    .retain(|p| p.metadata.name.as_deref() != Some(name)),
                Action::ResizeClaim { name, size } => {
                    for claim in &mut snapshot.claims {
                        if claim.metadata.name.as_deref() == Some(name) {
                            let spec = claim.spec.get_or_insert_with(Default::default);
                            let resources = spec.resources.get_or_insert_with(Default::default);
                            resources
                                .requests
                                .get_or_insert_with(Default::default)
                                .insert(
                                    "storage".into(),
                                    k8s_openapi::apimachinery::pkg::api::resource::Quantity(
                                        size.clone(),
                                    ),
                                );
                        }
                    }
                }
                // The garbage collector orphans the pods; the set goes.
                Action::OrphanStatefulSet { name, .. } => {
                    snapshot
                        .stateful_sets
                        .retain(|s| s.metadata.name.as_deref() != Some(name));
                    for pod in &mut snapshot.pods {
                        pod.metadata.owner_references = None;
                    }
                }
            }
        }
    }

    fn replace_meta(list: &mut Vec<ObjectMeta>, meta: ObjectMeta) {
        list.retain(|o| o.name != meta.name);
        list.push(meta);
    }

    fn replace<K: kube::Resource>(list: &mut Vec<K>, object: K) {
        list.retain(|o| o.meta().name != object.meta().name);
        list.push(object);
    }

    fn ready_pods(snapshot: &mut Snapshot, set: &str, component: &str, n: i32) {
        for i in 0..n {
            let ip = format!("10.0.0.{}", i + 1);
            let name = format!("{set}-{i}");
            snapshot
                .pods
                .retain(|p| p.metadata.name.as_deref() != Some(name.as_str()));
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
        let claim = (snapshot.claims.iter_mut())
            .find(|c| c.metadata.name.as_deref() == Some(name))
            .unwrap();
        let status = claim.status.as_mut().unwrap();
        status.capacity.as_mut().unwrap().insert(
            "storage".into(),
            k8s_openapi::apimachinery::pkg::api::resource::Quantity(capacity.into()),
        );
        status.conditions = resize_pending.then(|| {
            vec![
                serde_json::from_value(
                    json!({"type": "FileSystemResizePending", "status": "True"}),
                )
                .unwrap(),
            ]
        });
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
            .map(|i| claim(&format!("data-demo-etcd-{i}"), "etcd", "10Gi", "10Gi"))
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
        let uids: Vec<_> = snapshot
            .pods
            .iter()
            .map(|p| p.metadata.uid.clone())
            .collect();
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
                .map(|p| p.metadata.uid.clone())
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
        for pod in snapshot
            .pods
            .iter_mut()
            .filter(|p| p.metadata.name.as_deref().unwrap().contains("chunkserver"))
        {
            pod.status.as_mut().unwrap().host_ip = pod.status.as_ref().unwrap().pod_ip.clone();
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
        (decision.desired.cluster_map.servers.iter())
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
            .find(|p| p.metadata.name.as_deref() == Some("demo-mds-1"))
            .unwrap();
        mds.status.as_mut().unwrap().container_statuses = Some(vec![
            serde_json::from_value(json!({"name": "mds", "image": "x", "imageID": "",
                "ready": false, "restartCount": 1, "state": {"waiting": {
                    "reason": "CreateContainerConfigError",
                    "message": "secret \"demo-root-password\" not found"}}}))
            .unwrap(),
        ]);
        assert_eq!(ensure(&snapshot), ["ensure Secret/demo-root-password"]);
    }

    #[test]
    fn a_chunkserver_pod_being_replaced_keeps_its_server_and_reruns_no_job() {
        let (cluster, mut snapshot, status) = available();
        let before = decide(&cluster, &snapshot, &status, Some(1), t(60));
        let servers = ["node-1", "node-2", "node-3"];
        assert_eq!(server_names(&before), servers);
        // The StatefulSet controller recreated demo-chunkserver-0-1: not scheduled yet.
        snapshot
            .pods
            .retain(|p| p.metadata.name.as_deref() != Some("demo-chunkserver-0-1"));
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
        let status = json!({"phase": "Running", "podIP": "10.0.0.1"});
        let mut pod: Pod = serde_json::from_value(json!({"metadata": metadata, "status": status,
            "spec": {"nodeName": "node-1", "hostNetwork": true,
                "containers": [{"name": "etcd", "image": "curve:1", "args": ["--x"]}],
                "initContainers": [{"name": "config", "image": "curve:1", "command": ["sh"]}]}}))
        .unwrap();
        pod.slim();
        assert_eq!(
            untyped(&pod),
            json!({"metadata": slim_metadata, "status": status, "spec": {"nodeName": "node-1",
                "containers": [{"name": "etcd", "image": "curve:1"}],
                "initContainers": [{"name": "config", "image": "curve:1"}]}})
        );
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
}

/// The roll's ordering and halting rules, on whole tiers: `roll::decide` alone, with the
/// StatefulSet controller and the kubelet played by `replaced` (a deleted pod comes back on the
/// current template, Ready) and Curve's elections by `elect`.
mod rolls {
    use super::*;
    use crate::reconcile::roll::{self, RollPod, TierPods};
    use k8s_openapi::api::batch::v1::{Job, JobStatus};
    use std::collections::BTreeMap;

    fn pod(set: &str, ordinal: i32, updated: bool) -> RollPod {
        RollPod {
            name: format!("{set}-{ordinal}"),
            uid: format!("{set}-{ordinal}-old"),
            ordinal,
            updated,
            ready: true,
            terminating: false,
            created: Some(t(0)),
            node: Some(format!("node-{ordinal}")),
            image: Some(format!("curve:{}", if updated { 2 } else { 1 })),
            failing: None,
        }
    }

    fn tier(component: Component, sets: &[&str], n: i32, updated: bool) -> TierPods {
        TierPods {
            component,
            desired: n * sets.len() as i32,
            settled: true,
            pods: sets
                .iter()
                .flat_map(|set| (0..n).map(move |i| pod(set, i, updated)))
                .collect(),
        }
    }

    /// A healthy cluster whose every pod runs the old template (after an image change).
    fn outdated(disks: usize) -> Vec<TierPods> {
        let slots: Vec<String> = (0..disks)
            .map(|s| format!("demo-chunkserver-{s}"))
            .collect();
        let slots: Vec<&str> = slots.iter().map(String::as_str).collect();
        vec![
            tier(Component::Etcd, &["demo-etcd"], 3, false),
            tier(Component::Mds, &["demo-mds"], 3, false),
            tier(Component::ChunkServer, &slots, 3, false),
        ]
    }

    fn succeeded(name: &str) -> Job {
        let mut job = crate::desired::jobs::copysets_check(&validated(json!({})), name.to_string());
        job.status = Some(JobStatus {
            succeeded: Some(1),
            ..JobStatus::default()
        });
        job
    }

    /// Plays the controllers until the roll is done: the replaced pods, in order, and how
    /// often the MDS primary changed.
    fn roll_to_end(
        cluster: &crate::validate::ValidatedCluster,
        mut tiers: Vec<TierPods>,
        mut obs: Observation,
        zones: &BTreeMap<String, String>,
    ) -> (Vec<Vec<String>>, usize) {
        let mut steps = Vec::new();
        let mut jobs: Vec<Job> = Vec::new();
        let mut primary_changes = 0;
        for _ in 0..50 {
            let checks = roll::Checks {
                jobs: &jobs,
                node_zones: zones,
                pool_created: true,
            };
            let decision = roll::decide(cluster, &tiers, &obs, checks, t(100));
            match &decision.state {
                RollState::Done => return (steps, primary_changes),
                RollState::Stuck { message } => panic!("stuck: {message}"),
                RollState::Rolling { .. } => {}
            }
            let mut step = Vec::new();
            for action in &decision.actions {
                match action {
                    Action::DeletePod { name, uid } => {
                        let pod = tiers
                            .iter_mut()
                            .flat_map(|t| t.pods.iter_mut())
                            .find(|p| &p.name == name)
                            .unwrap();
                        assert_eq!(&pod.uid, uid, "the uid of the pod seen");
                        pod.updated = true;
                        pod.uid = format!("{name}-new");
                        pod.image = Some("curve:2".into());
                        step.push(name.clone());
                        if let Some(m) = obs.etcd_members.as_mut()
                            && m.leader.as_deref() == Some(name)
                        {
                            m.leader = Some("demo-etcd-0".into());
                        }
                        if let PrimaryView::Elected { pod: primary, .. } = &obs.primary
                            && primary == name
                        {
                            // The lowest create revision left: a standby restarted earlier.
                            let next = tiers[1]
                                .pods
                                .iter()
                                .find(|p| &p.name != name)
                                .unwrap()
                                .name
                                .clone();
                            obs.primary = PrimaryView::Elected {
                                pod: next,
                                address: "10.0.0.9:6700".into(),
                            };
                            primary_changes += 1;
                        }
                    }
                    Action::Apply(object) => {
                        // The copyset check passes.
                        jobs.push(succeeded(object.name()));
                    }
                    other => panic!("unexpected {other:?}"),
                }
            }
            if !step.is_empty() {
                steps.push(step);
            }
        }
        panic!("the roll did not end: {steps:?}");
    }

    #[test]
    fn tiers_roll_in_order_followers_and_standbys_first_one_server_at_a_time() {
        let cluster = validated(
            json!({"chunkservers": {"replicas": 3, "disksPerNode": 2, "storage": {"size": "1Gi"}}}),
        );
        let (steps, primary_changes) =
            roll_to_end(&cluster, outdated(2), healthy(), &BTreeMap::new());
        let expected: Vec<Vec<&str>> = vec![
            vec!["demo-etcd-2"],
            vec!["demo-etcd-0"],
            vec!["demo-etcd-1"], // the leader, last
            vec!["demo-mds-2"],
            vec!["demo-mds-1"],
            vec!["demo-mds-0"], // the primary, last
            vec!["demo-chunkserver-0-2", "demo-chunkserver-1-2"],
            vec!["demo-chunkserver-0-1", "demo-chunkserver-1-1"],
            vec!["demo-chunkserver-0-0", "demo-chunkserver-1-0"],
        ];
        assert_eq!(steps, expected);
        assert_eq!(primary_changes, 1, "the primary changes exactly once");
    }

    #[test]
    fn the_zone_policy_replaces_every_server_of_one_zone_together() {
        let cluster = validated(json!({
            "chunkservers": {"replicas": 6, "storage": {"size": "1Gi"}, "updatePolicy": "Zone"},
            "logicalPool": {"replicas": 3, "zones": 3}
        }));
        let mut tiers = outdated(1);
        tiers[2] = tier(Component::ChunkServer, &["demo-chunkserver-0"], 6, false);
        tiers[0].pods.iter_mut().for_each(|p| p.updated = true);
        tiers[1].pods.iter_mut().for_each(|p| p.updated = true);
        let zones: BTreeMap<String, String> = (0..6)
            .map(|i| (format!("node-{i}"), format!("zone-{}", i % 3)))
            .collect();
        let (steps, _) = roll_to_end(&cluster, tiers, healthy(), &zones);
        assert_eq!(
            steps,
            vec![
                vec!["demo-chunkserver-0-5", "demo-chunkserver-0-2"],
                vec!["demo-chunkserver-0-4", "demo-chunkserver-0-1"],
                vec!["demo-chunkserver-0-3", "demo-chunkserver-0-0"],
            ]
        );
    }

    fn decide(tiers: &[TierPods], obs: &Observation, jobs: &[Job], now: i64) -> roll::RollDecision {
        let checks = roll::Checks {
            jobs,
            node_zones: &BTreeMap::new(),
            pool_created: true,
        };
        roll::decide(&validated(json!({})), tiers, obs, checks, t(now))
    }
    fn message(decision: &roll::RollDecision) -> String {
        match &decision.state {
            RollState::Rolling { message } | RollState::Stuck { message } => message.clone(),
            RollState::Done => "done".into(),
        }
    }

    #[test]
    fn a_replaced_pod_that_is_not_ready_halts_the_roll_and_is_stuck_past_the_deadline() {
        let mut tiers = outdated(1);
        tiers[0].pods[2].updated = true;
        tiers[0].pods[2].ready = false;
        tiers[0].pods[2].created = Some(t(0));
        let waiting = decide(&tiers, &healthy(), &[], 100);
        assert!(waiting.actions.is_empty());
        assert_eq!(
            message(&waiting),
            "etcd: 1/3 updated, waiting for demo-etcd-2 to be Ready"
        );
        assert!(matches!(waiting.state, RollState::Rolling { .. }));
        let stuck = decide(&tiers, &healthy(), &[], 601);
        assert!(stuck.actions.is_empty());
        assert!(matches!(stuck.state, RollState::Stuck { .. }), "{stuck:?}");
        assert!(message(&stuck).contains(
            "demo-etcd-2 is not Ready spec.rollout.progressDeadlineSeconds (600 s) after it was created"
        ));
        // The same message a minute later: its Event is not sent again.
        assert_eq!(
            message(&decide(&tiers, &healthy(), &[], 661)),
            message(&stuck)
        );
        // A container that cannot start is stuck at once.
        tiers[0].pods[2].failing = Some("etcd: ImagePullBackOff".into());
        let failing = decide(&tiers, &healthy(), &[], 10);
        assert_eq!(
            message(&failing),
            "etcd: 1/3 updated, demo-etcd-2 is not Ready: etcd: ImagePullBackOff"
        );
        assert!(matches!(failing.state, RollState::Stuck { .. }));
    }

    #[test]
    fn a_reverted_spec_replaces_the_stuck_pod_first() {
        // demo-mds-2 runs the bad template and never became Ready; the spec went back, so the
        // others are current again and demo-mds-2 is the outdated one, down already.
        let mut tiers = outdated(1);
        tiers[0].pods.iter_mut().for_each(|p| p.updated = true);
        tiers[1].pods.iter_mut().for_each(|p| p.updated = true);
        tiers[1].pods[2].updated = false;
        tiers[1].pods[2].ready = false;
        let decision = decide(&tiers, &healthy(), &[], 1000);
        assert_eq!(
            decision.actions,
            [Action::DeletePod {
                name: "demo-mds-2".into(),
                uid: "demo-mds-2-old".into()
            }]
        );
    }

    #[test]
    fn etcd_rolls_only_while_every_member_is_healthy_and_never_a_lone_member() {
        let tiers = outdated(1);
        let mut obs = healthy();
        obs.etcd_members = Some(MemberHealth {
            leader: Some("demo-etcd-1".into()),
            healthy: 2,
            total: 3,
            members: Vec::new(),
        });
        let decision = decide(&tiers, &obs, &[], 10);
        assert!(decision.actions.is_empty());
        assert_eq!(
            message(&decision),
            "etcd: 0/3 updated, etcd: 2 of 3 members healthy"
        );
        obs.etcd_members = None;
        assert!(decide(&tiers, &obs, &[], 10).actions.is_empty());

        let lone = vec![tier(Component::Etcd, &["demo-etcd"], 1, false)];
        let decision = decide(&lone, &healthy(), &[], 10);
        assert!(decision.actions.is_empty());
        assert!(matches!(decision.state, RollState::Stuck { .. }));
        assert!(
            message(&decision).contains("delete pod demo-etcd-0 yourself"),
            "{decision:?}"
        );
    }

    #[test]
    fn later_tiers_wait_for_earlier_ones_and_for_the_mds_primary() {
        let mut tiers = outdated(1);
        tiers[0].pods.iter_mut().for_each(|p| p.updated = true);
        // An etcd member not Ready: the MDS do not roll.
        tiers[0].pods[0].ready = false;
        let decision = decide(&tiers, &healthy(), &[], 10);
        assert!(decision.actions.is_empty());
        assert_eq!(
            message(&decision),
            "etcd: waiting for demo-etcd-0 to be Ready; mds roll after it"
        );
        tiers[0].pods[0].ready = true;
        let mut obs = healthy();
        obs.primary = PrimaryView::NoLeader;
        let decision = decide(&tiers, &obs, &[], 10);
        assert!(decision.actions.is_empty());
        assert_eq!(
            message(&decision),
            "mds: 0/3 updated, mds: waiting for a primary to be elected"
        );
    }

    #[test]
    fn a_pod_being_replaced_or_missing_is_waited_for() {
        let mut tiers = outdated(1);
        tiers[0].pods[2].terminating = true;
        assert_eq!(
            message(&decide(&tiers, &healthy(), &[], 10)),
            "etcd: 0/3 updated, waiting for demo-etcd-2 to be replaced"
        );
        tiers[0].pods.remove(2);
        let decision = decide(&tiers, &healthy(), &[], 10);
        assert!(decision.actions.is_empty());
        assert_eq!(
            message(&decision),
            "etcd: 0/3 updated, waiting for 1 of 3 pods to be recreated"
        );
        let mut unsettled = outdated(1);
        unsettled[0].settled = false;
        assert!(decide(&unsettled, &healthy(), &[], 10).actions.is_empty());
    }

    #[test]
    fn chunkservers_roll_only_after_curve_reports_every_copyset_healthy() {
        let mut tiers = outdated(1);
        tiers[0].pods.iter_mut().for_each(|p| p.updated = true);
        tiers[1].pods.iter_mut().for_each(|p| p.updated = true);
        let cluster = validated(json!({}));
        let name = roll::check_name(&cluster, &tiers[2]);
        let first = decide(&tiers, &healthy(), &[], 10);
        assert!(matches!(&first.actions[..], [Action::Apply(job)] if job.name() == name));
        assert_eq!(
            message(&first),
            format!("chunkservers: 0/3 updated, checking every copyset is healthy (Job {name})")
        );
        let mut job = succeeded(&name);
        job.status = Some(JobStatus::default());
        assert!(
            decide(&tiers, &healthy(), &[job.clone()], 10)
                .actions
                .is_empty()
        );
        job.status = Some(serde_json::from_value(json!({"failed": 7, "conditions": [{"type": "Failed", "status": "True", "reason": "BackoffLimitExceeded", "message": "Job has reached the specified backoff limit"}]})).unwrap());
        let failed = decide(&tiers, &healthy(), &[job], 10);
        assert!(failed.actions.is_empty());
        assert!(matches!(failed.state, RollState::Stuck { .. }));
        assert!(message(&failed).contains(&format!(
            "copysets are not healthy: Job {name} failed (BackoffLimitExceeded"
        )));
        let passed = decide(&tiers, &healthy(), &[succeeded(&name)], 10);
        assert_eq!(
            passed.actions,
            [Action::DeletePod {
                name: "demo-chunkserver-0-2".into(),
                uid: "demo-chunkserver-0-2-old".into()
            }]
        );
        assert_eq!(passed.events.len(), 1);
        // Before the logical pool exists there is no copyset to check.
        let no_pool = roll::Checks {
            jobs: &[],
            node_zones: &BTreeMap::new(),
            pool_created: false,
        };
        let early = roll::decide(&cluster, &tiers, &healthy(), no_pool, t(10));
        assert!(
            matches!(&early.actions[..], [Action::DeletePod { name, .. }] if name == "demo-chunkserver-0-2"),
            "{early:?}"
        );
        // Once a pod was replaced, its new uid asks for a new check.
        tiers[2].pods[2].uid = "new".into();
        assert_ne!(roll::check_name(&cluster, &tiers[2]), name);
    }
}

#[test]
fn a_roll_shows_in_progressing_and_a_stuck_roll_is_told_once() {
    let rolling = Observation {
        roll: RollState::Rolling {
            message: "mds: 1/3 updated, replacing demo-mds-0 (primary, last)".into(),
        },
        ..healthy()
    };
    let status = compute_status(&CurveClusterStatus::default(), &rolling, Some(2), t(10));
    let progressing = find(&status, ConditionType::Progressing).unwrap();
    assert_eq!(
        (progressing.status.as_str(), progressing.reason.as_str()),
        ("True", "RollingUpdate")
    );
    assert_eq!(
        progressing.message,
        "mds: 1/3 updated, replacing demo-mds-0 (primary, last)"
    );
    let stuck = Observation {
        roll: RollState::Stuck {
            message: "etcd: 1/3 updated, demo-etcd-2 is not Ready: etcd: ImagePullBackOff".into(),
        },
        ..healthy()
    };
    let next = compute_status(&status, &stuck, Some(3), t(20));
    assert_eq!(
        find(&next, ConditionType::Progressing).unwrap().reason,
        "RolloutStuck"
    );
    let events: Vec<String> = derive(&status, &next, &[])
        .into_iter()
        .map(|e| e.reason)
        .collect();
    assert_eq!(events, ["RolloutStuck"]);
    let again = compute_status(&next, &stuck, Some(3), t(30));
    assert!(derive(&next, &again, &[]).is_empty(), "told once");
}

#[test]
fn delete_without_the_confirmation_keeps_the_data_and_says_what_to_write() {
    let retain = compute_status(&CurveClusterStatus::default(), &healthy(), Some(1), t(0));
    let unconfirmed = Observation {
        cleanup: DataCleanup::DeleteNotConfirmed,
        ..healthy()
    };
    let next = compute_status(&retain, &unconfirmed, Some(2), t(10));
    let condition = find(&next, ConditionType::DataRetained).unwrap();
    assert_eq!(
        (condition.status.as_str(), condition.reason.as_str()),
        ("True", "DeleteNotConfirmed")
    );
    assert!(
        condition
            .message
            .contains("the data volumes are kept when the CurveCluster is deleted; to delete them with it, set spec.cleanup.confirmation: yes-really-destroy-data"),
        "{}",
        condition.message
    );
    let events: Vec<String> = derive(&retain, &next, &[])
        .into_iter()
        .map(|e| e.reason)
        .collect();
    assert_eq!(events, ["CleanupNotConfirmed"]);
    let again = compute_status(&next, &unconfirmed, Some(2), t(20));
    assert!(derive(&next, &again, &[]).is_empty(), "told once");
    let confirmed = Observation {
        cleanup: DataCleanup::Delete,
        ..healthy()
    };
    let deleting = compute_status(&again, &confirmed, Some(3), t(30));
    let condition = find(&deleting, ConditionType::DataRetained).unwrap();
    assert_eq!(
        (condition.status.as_str(), condition.reason.as_str()),
        ("False", "DeleteConfirmed")
    );
}

/// ChunkServers use grown space only after a restart: their StatefulSets keep the template
/// (which carries the size) until every volume grew, then take the new one, and the apply of a
/// set whose claim template changes becomes its orphaning delete.
#[test]
fn chunkserver_templates_change_only_once_every_volume_grew() {
    use super::expansion;
    use crate::reconcile::model::states::ClaimProgress;
    use k8s_openapi::api::core::v1::PersistentVolumeClaim;
    let claim = |name: &str,
                 request: &str,
                 capacity: &str,
                 pending: bool|
     -> PersistentVolumeClaim {
        serde_json::from_value(json!({
            "metadata": {"name": name, "labels": {"app.kubernetes.io/component": "chunkserver"}},
            "spec": {"storageClassName": "fast", "resources": {"requests": {"storage": request}}},
            "status": {
                "capacity": {"storage": capacity},
                "conditions": if pending { json!([{"type": "FileSystemResizePending", "status": "True"}]) } else { json!([]) }
            }
        }))
        .unwrap()
    };
    let grown = validated(json!({"chunkservers": {"replicas": 3, "storage": {"size": "2Gi"}}}));
    let existing = [
        set("demo-chunkserver-0", "chunkserver", 2),
        ExistingObject {
            claim_size: Some("10Gi".into()),
            ..set("demo-etcd", "etcd", 3)
        },
    ];
    let classes = std::collections::BTreeMap::from([("fast".to_string(), true)]);
    let plan_with = |claims: &[PersistentVolumeClaim]| {
        let mut safe = grown.clone();
        let out = expansion::plan(&mut safe, &existing, claims, &classes);
        (safe.spec.chunkservers.storage.size, out)
    };

    let (size, first) = plan_with(&[
        claim("data-demo-chunkserver-0-0", "1Gi", "1Gi", false),
        claim("data-demo-chunkserver-0-1", "1Gi", "1Gi", false),
    ]);
    assert_eq!(size, "1Gi", "the template waits for the volumes");
    assert_eq!(first.actions.len(), 2);
    assert_eq!(
        first.progress[0].claims,
        [
            (
                "data-demo-chunkserver-0-0".to_string(),
                ClaimProgress::Requested
            ),
            (
                "data-demo-chunkserver-0-1".to_string(),
                ClaimProgress::Requested
            )
        ]
    );
    assert!(
        crate::reconcile::model::states::expansions_message(&first.progress)
            .contains("ChunkServers restart one server")
    );

    let (size, waiting) = plan_with(&[
        claim("data-demo-chunkserver-0-0", "2Gi", "2Gi", false),
        claim("data-demo-chunkserver-0-1", "2Gi", "1Gi", false),
    ]);
    assert_eq!((size.as_str(), waiting.actions.len()), ("1Gi", 0));

    // Grown, or only the file system left (which the restart completes): the new template.
    let (size, ready) = plan_with(&[
        claim("data-demo-chunkserver-0-0", "2Gi", "2Gi", false),
        claim("data-demo-chunkserver-0-1", "2Gi", "1Gi", true),
    ]);
    assert_eq!((size.as_str(), ready.actions.len()), ("2Gi", 0));
    assert_eq!(
        ready.progress.len(),
        1,
        "shown until every claim reports 2Gi"
    );
    // A claim not bound yet (no capacity) at the spec's size is no expansion.
    let mut unbound = claim("data-demo-chunkserver-0-0", "1Gi", "1Gi", false);
    unbound.status = None;
    let mut safe = validated(json!({"chunkservers": {"replicas": 3, "storage": {"size": "1Gi"}}}));
    let none = expansion::plan(&mut safe, &existing, &[unbound], &classes);
    assert_eq!(none, expansion::ExpansionPlan::default());

    let mut safe = grown.clone();
    safe.spec.chunkservers.storage.size = size;
    let desired = desired::build(&safe, &Observed::default());
    let applies: Vec<Action> = plan::tier_objects(&desired.chunkservers)
        .into_iter()
        .filter(|o| o.kind() == ObjectKind::StatefulSet)
        .map(|o| Action::Apply(Box::new(o)))
        .collect();
    assert_eq!(
        expansion::recreate_changed_sets(applies.clone(), &existing),
        [Action::OrphanStatefulSet {
            name: "demo-chunkserver-0".into(),
            uid: "uid-demo-chunkserver-0".into()
        }]
    );
    // Once it is gone it is applied again; while it is being deleted it is left alone.
    assert_eq!(
        expansion::recreate_changed_sets(applies.clone(), &existing[1..]),
        applies
    );
    let deleting = [ExistingObject {
        deleting: true,
        ..existing[0].clone()
    }];
    assert_eq!(expansion::recreate_changed_sets(applies, &deleting), []);
}

/// The gauges the alerts read, from whole observations.
mod gauges {
    use super::*;
    use crate::reconcile::model::observation::Gauges;

    #[test]
    fn a_healthy_cluster_gives_one_primary_all_members_healthy_and_nothing_down() {
        let gauges = Gauges::of(&validated(json!({})), &healthy());
        assert_eq!(
            gauges,
            Gauges {
                mds_pods: vec![
                    "demo-mds-0".into(),
                    "demo-mds-1".into(),
                    "demo-mds-2".into()
                ],
                primary: Some("demo-mds-0".into()),
                etcd_members: Some((3, 3)),
                rolling: false,
                roll_stuck: false,
                failure_domains: (0, 1),
            }
        );
    }

    #[test]
    fn learners_do_not_count_unanswered_etcd_is_none_healthy_and_a_stuck_roll_shows() {
        let mut obs = healthy();
        let members = obs.etcd_members.as_mut().unwrap();
        members.members[2].is_learner = true;
        members.members[1].healthy = false;
        obs.chunkservers = component(3, 1, true);
        obs.roll = RollState::Stuck {
            message: "demo-mds-1 not ready".into(),
        };
        let gauges = Gauges::of(&validated(json!({})), &obs);
        assert_eq!(gauges.etcd_members, Some((2, 1)));
        assert_eq!(gauges.failure_domains, (2, 1));
        assert!(gauges.roll_stuck && !gauges.rolling);

        obs.etcd_members = None;
        obs.primary = PrimaryView::EtcdUnreachable {
            endpoints: vec![],
            error: "timeout".into(),
        };
        let gauges = Gauges::of(&validated(json!({})), &obs);
        assert_eq!((gauges.etcd_members, gauges.primary), (Some((3, 0)), None));

        obs.primary = PrimaryView::NotStarted;
        assert_eq!(Gauges::of(&validated(json!({})), &obs).etcd_members, None);
    }

    #[test]
    fn discovery_serves_monitoring_only_with_both_kinds() {
        use crate::reconcile::model::observation::MonitoringApi;
        use crate::reconcile::monitoring::served;
        let list =
            |kinds: &[&str]| -> k8s_openapi::apimachinery::pkg::apis::meta::v1::APIResourceList {
                serde_json::from_value(json!({
                    "groupVersion": "monitoring.coreos.com/v1",
                    "resources": kinds.iter().map(|k| json!({
                        "kind": k, "name": format!("{}s", k.to_lowercase()), "namespaced": true,
                        "singularName": "", "verbs": ["get"]})).collect::<Vec<_>>()
                }))
                .unwrap()
            };
        assert_eq!(
            served(&list(&["PodMonitor", "PrometheusRule", "ServiceMonitor"])),
            MonitoringApi::Served
        );
        let MonitoringApi::Missing { message } = served(&list(&["ServiceMonitor", "PodMonitor"]))
        else {
            panic!("PrometheusRule is missing");
        };
        assert!(
            message.contains("does not serve PrometheusRule of monitoring.coreos.com/v1"),
            "{message}"
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

/// The status tells why nothing comes up, what is held back, and figures right for the state.
mod truth {
    use super::*;
    use crate::reconcile::blockers::{Surroundings, blockers};
    use crate::reconcile::model::observation::Blocker;
    use k8s_openapi::api::core::v1::PersistentVolumeClaim;
    use std::collections::BTreeSet;

    fn pod(value: serde_json::Value) -> Pod {
        serde_json::from_value(value).unwrap()
    }

    /// An etcd pod of cluster `demo` with the status a controller wrote.
    fn etcd_pod(name: &str, status: serde_json::Value) -> Pod {
        pod(json!({
            "metadata": {"name": name, "labels": {"app.kubernetes.io/instance": "demo", "app.kubernetes.io/component": "etcd"}},
            "spec": {"containers": [{"name": "etcd", "image": "curve:1"}]},
            "status": status,
        }))
    }

    fn claim(name: &str, class: Option<&str>, phase: &str) -> PersistentVolumeClaim {
        serde_json::from_value(json!({
            "metadata": {"name": name},
            "spec": {"storageClassName": class, "accessModes": ["ReadWriteOnce"]},
            "status": {"phase": phase},
        }))
        .unwrap()
    }

    fn read(
        pods: &[Pod],
        claims: &[PersistentVolumeClaim],
        classes: &[&str],
        unready: &[&str],
    ) -> Vec<(Reason, String)> {
        let classes: BTreeSet<String> = classes.iter().map(|c| c.to_string()).collect();
        let unready_nodes: BTreeSet<String> = unready.iter().map(|n| n.to_string()).collect();
        let around = Surroundings {
            claims,
            classes: &classes,
            unready_nodes: &unready_nodes,
        };
        blockers(pods, &around)
            .into_iter()
            .map(|b| (b.reason, b.message))
            .collect()
    }

    /// The scheduler's condition, as pkg/scheduler/schedule_one.go writes it.
    const UNSCHEDULABLE: &str = "0/3 nodes are available: 3 node(s) didn't match Pod's node affinity/selector. preemption: 0/3 nodes are available: 3 Preemption is not helpful for scheduling.";

    #[test]
    fn each_class_of_blocker_is_read_from_the_shape_its_controller_writes() {
        let unschedulable = etcd_pod(
            "demo-etcd-0",
            json!({"phase": "Pending", "conditions": [
            {"type": "PodScheduled", "status": "False", "reason": "Unschedulable", "message": UNSCHEDULABLE}]}),
        );
        assert_eq!(
            read(std::slice::from_ref(&unschedulable), &[], &[], &[]),
            [(
                Reason::Unschedulable,
                format!("pod demo-etcd-0 is unschedulable: {UNSCHEDULABLE}")
            )]
        );
        // A claim that cannot bind is the cause of the pod being unschedulable.
        let no_class = claim("data-demo-etcd-0", None, "Pending");
        assert_eq!(
            read(std::slice::from_ref(&unschedulable), &[no_class], &[], &[])[0].0,
            Reason::NoStorageClass
        );
        let missing = claim("data-demo-etcd-0", Some("fast"), "Pending");
        let found = read(
            std::slice::from_ref(&unschedulable),
            std::slice::from_ref(&missing),
            &[],
            &[],
        );
        assert_eq!(
            found,
            [(
                Reason::StorageClassNotFound,
                "PersistentVolumeClaim data-demo-etcd-0: StorageClass fast does not exist".into()
            )]
        );
        assert_eq!(
            read(&[unschedulable], &[missing], &["fast"], &[])[0].0,
            Reason::ClaimPending
        );

        let pulling = etcd_pod(
            "demo-etcd-1",
            json!({"phase": "Pending", "initContainerStatuses": [
            {"name": "config", "image": "curve:1", "imageID": "", "ready": false, "restartCount": 0,
             "state": {"waiting": {"reason": "ImagePullBackOff", "message": "Back-off pulling image \"curve:1\""}}}]}),
        );
        assert_eq!(
            read(&[pulling], &[], &[], &[]),
            [(Reason::ImagePullFailed, "pod demo-etcd-1: init container config cannot pull curve:1 (ImagePullBackOff: Back-off pulling image \"curve:1\")".into())]
        );
        let crashing = etcd_pod(
            "demo-etcd-2",
            json!({"phase": "Running", "containerStatuses": [
            {"name": "etcd", "image": "curve:1", "imageID": "", "ready": false, "restartCount": 4,
             "state": {"waiting": {"reason": "CrashLoopBackOff"}},
             "lastState": {"terminated": {"exitCode": 1, "reason": "Error", "message": "bind: address already in use\n"}}}]}),
        );
        assert_eq!(
            read(&[crashing], &[], &[], &[]),
            [(Reason::ContainerFailing, "pod demo-etcd-2: container etcd keeps failing (CrashLoopBackOff: exit 1 bind: address already in use)".into())]
        );
        let mut stuck = etcd_pod("demo-etcd-0", json!({"phase": "Running"}));
        stuck.metadata.deletion_timestamp =
            Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(t(0)));
        stuck.spec.as_mut().unwrap().node_name = Some("node-1".into());
        assert!(
            read(&[stuck.clone()], &[], &[], &[]).is_empty(),
            "deleting on a Ready node is normal"
        );
        assert_eq!(read(&[stuck], &[], &[], &["node-1"])[0].0, Reason::NodeLost);
    }

    fn blocked_etcd() -> Observation {
        Observation {
            etcd: component(3, 0, true),
            blockers: vec![Blocker {
                component: Component::Etcd,
                reason: Reason::Unschedulable,
                message: format!("pod demo-etcd-0 is unschedulable: {UNSCHEDULABLE}"),
            }],
            ..fresh()
        }
    }

    #[test]
    fn a_blocked_tier_says_why_and_past_the_deadline_progressing_stops_and_degraded_says_so() {
        let first = compute_status(
            &CurveClusterStatus::default(),
            &blocked_etcd(),
            Some(1),
            t(0),
        );
        let etcd = find(&first, ConditionType::EtcdQuorate).unwrap();
        assert_eq!(etcd.reason, "Unschedulable");
        assert!(
            etcd.message.starts_with(
                "0 of 3 members ready, quorum is 2: pod demo-etcd-0 is unschedulable: 0/3 nodes"
            ),
            "{}",
            etcd.message
        );
        let progressing = find(&first, ConditionType::Progressing).unwrap();
        assert_eq!(
            (progressing.status.as_str(), progressing.reason.as_str()),
            ("True", "Reconciling")
        );
        assert_eq!(
            find(&first, ConditionType::Degraded).unwrap().status,
            "False"
        );

        // Within the deadline: still reconciling.
        let before = compute_status(&first, &blocked_etcd(), Some(1), t(599));
        assert_eq!(
            find(&before, ConditionType::Progressing).unwrap().reason,
            "Reconciling"
        );
        // Past it: Progressing False with the blocker, Degraded True; the message has no clock,
        // so later passes write the same conditions (one Event).
        let late = compute_status(&before, &blocked_etcd(), Some(1), t(600));
        let progressing = find(&late, ConditionType::Progressing).unwrap();
        assert_eq!(
            (progressing.status.as_str(), progressing.reason.as_str()),
            ("False", "Unschedulable")
        );
        assert!(
            progressing.message.contains("(600 s)"),
            "{}",
            progressing.message
        );
        let degraded = find(&late, ConditionType::Degraded).unwrap();
        assert_eq!(
            (degraded.status.as_str(), degraded.reason.as_str()),
            ("True", "Unschedulable")
        );
        let later = compute_status(&late, &blocked_etcd(), Some(1), t(900));
        assert_eq!(later.conditions, late.conditions);
        // The blocker gone: reconciling again.
        let moving = compute_status(
            &later,
            &Observation {
                etcd: component(3, 1, true),
                ..fresh()
            },
            Some(1),
            t(901),
        );
        assert_eq!(
            find(&moving, ConditionType::Progressing).unwrap().reason,
            "Reconciling"
        );
        assert_eq!(
            find(&moving, ConditionType::Degraded).unwrap().status,
            "False"
        );
    }

    #[test]
    fn etcd_figures_are_those_of_the_member_list_as_it_stands() {
        // 5 asked, 3 members now: quorum 2 is right for 3 members, and the 5 is said apart.
        let growing = Observation {
            etcd: component(5, 3, true),
            etcd_members_now: 3,
            etcd_quorum: 2,
            ..fresh()
        };
        let status = compute_status(&CurveClusterStatus::default(), &growing, Some(1), t(0));
        assert_eq!(
            find(&status, ConditionType::EtcdQuorate).unwrap().message,
            "3 of 3 members ready, quorum is 2 (the spec asks for 5)"
        );
    }

    #[test]
    fn a_paused_cluster_lists_what_it_holds_back() {
        let paused = Observation {
            paused: true,
            held: vec![
                "apply StatefulSet/demo-mds".into(),
                "roll 3 pods of the etcd tier".into(),
            ],
            ..healthy()
        };
        let status = compute_status(&CurveClusterStatus::default(), &paused, Some(1), t(0));
        let progressing = find(&status, ConditionType::Progressing).unwrap();
        assert_eq!(
            (
                progressing.status.as_str(),
                progressing.reason.as_str(),
                progressing.message.as_str()
            ),
            (
                "False",
                "Paused",
                "spec.paused is true: nothing is changed; held back: apply StatefulSet/demo-mds, roll 3 pods of the etcd tier"
            )
        );
        assert_eq!(
            find(&status, ConditionType::Available).unwrap().reason,
            "Available"
        );
    }
}
