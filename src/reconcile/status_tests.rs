//! compute_status on whole observations: conditions, phases, transition times and messages.

use k8s_openapi::api::core::v1::Pod;
use serde_json::json;

use super::{compute_status, with_error};
use crate::api::{CurveClusterStatus, Phase};
use crate::etcd::PrimaryObservation;
use crate::reconcile::fixtures::{component, fresh, healthy, pod, t};
use crate::reconcile::model::conditions::{ConditionType, find};
use crate::reconcile::model::observation::{Observation, PrimaryView};
use crate::reconcile::observe;

/// The condition of a type given by its name (tables of steps name them as text).
fn named<'a>(
    status: &'a CurveClusterStatus,
    type_: &str,
) -> &'a k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition {
    (status.conditions.iter())
        .find(|c| c.type_ == type_)
        .unwrap_or_else(|| panic!("no condition {type_}"))
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
    assert_eq!(
        find(&paused, ConditionType::Available).unwrap().reason,
        "Paused"
    );
    assert_eq!(
        find(&paused, ConditionType::Progressing).unwrap().reason,
        "Complete"
    );

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
