//! compute_status on whole observations: conditions, phases, transition times and messages.

use k8s_openapi::api::core::v1::Pod;
use serde_json::json;

use super::{compute_status, with_error};
use crate::api::{CurveClusterStatus, Phase};
use crate::etcd::PrimaryObservation;
use crate::reconcile::fixtures::{component, fresh, healthy, pod_object, t};
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
fn format_progress_and_failure_show_in_the_status() {
    let with_format = |name: &str, state: serde_json::Value, last: serde_json::Value| -> Pod {
        let mut pod = pod_object(name, "chunkserver", Some("10.0.0.1"), Some("n1"), false);
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
    let progress = observe::format_progress(&crate::reconcile::fixtures::read(pods));
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

/// The status tells why nothing comes up, what is held back, and figures right for the state.
mod truth {
    use super::*;
    use crate::names::Component;
    use crate::reconcile::blockers::{Surroundings, blockers};
    use crate::reconcile::model::conditions::Reason;
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
        let claims: Vec<_> = (claims.iter().cloned())
            .map(crate::reconcile::model::claim::ClaimReading::shared)
            .collect();
        let around = Surroundings {
            claims: &claims,
            classes: &classes,
            unready_nodes: &unready_nodes,
        };
        blockers(&crate::reconcile::fixtures::read(pods.to_vec()), &around)
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
        // Not yet looked at by the scheduler: a Pending claim is normal then (it binds at
        // scheduling with a WaitForFirstConsumer class).
        let waiting = etcd_pod("demo-etcd-0", json!({"phase": "Pending"}));
        assert!(read(&[waiting], std::slice::from_ref(&missing), &[], &[]).is_empty());
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

    /// A StatefulSet's Event as the StatefulSet controller records it
    /// (pkg/controller/statefulset/stateful_pod_control.go `recordPodEvent`).
    fn set_event(reason: &str, message: &str, last: &str) -> k8s_openapi::api::core::v1::Event {
        serde_json::from_value(json!({
            "metadata": {"name": format!("demo-etcd.{last}"), "namespace": "ns"},
            "involvedObject": {"kind": "StatefulSet", "name": "demo-etcd", "namespace": "ns"},
            "reason": reason, "message": message, "type": "Warning",
            "lastTimestamp": last, "count": 3,
        }))
        .unwrap()
    }

    #[test]
    fn a_pod_the_statefulset_controller_cannot_create_is_named_with_the_api_servers_answer() {
        use crate::reconcile::blockers::{MissingPods, creation_blockers, missing_pods};
        let set: k8s_openapi::api::apps::v1::StatefulSet = serde_json::from_value(json!({
            "metadata": {"name": "demo-etcd", "labels": {"app.kubernetes.io/instance": "demo", "app.kubernetes.io/component": "etcd"}},
            "spec": {"replicas": 3, "selector": {}, "serviceName": "demo-etcd", "template": {}},
        }))
        .unwrap();
        let running = etcd_pod("demo-etcd-0", json!({"phase": "Running"}));
        let missing = missing_pods(&[set], &crate::reconcile::fixtures::read([running]));
        assert_eq!(
            missing,
            [MissingPods {
                set: "demo-etcd".into(),
                component: Component::Etcd,
                pods: vec!["demo-etcd-1".into(), "demo-etcd-2".into()],
            }]
        );
        let refused = "create Pod demo-etcd-1 in StatefulSet demo-etcd failed error: pods \"demo-etcd-1\" is forbidden: ValidatingAdmissionPolicy 'no-curve' with binding 'no-curve' denied request: not here";
        let events = [
            set_event("FailedCreate", refused, "2026-12-07T01:00:00Z"),
            // demo-etcd-2 failed once, then was created: history, not a blocker (it is missing
            // again only because it was deleted since).
            set_event(
                "FailedCreate",
                "create Pod demo-etcd-2 in StatefulSet demo-etcd failed error: quota",
                "2026-12-07T01:00:00Z",
            ),
            set_event(
                "SuccessfulCreate",
                "create Pod demo-etcd-2 in StatefulSet demo-etcd successful",
                "2026-12-07T01:00:05Z",
            ),
            // A claim's Event of the same StatefulSet is not about the pod.
            set_event(
                "FailedCreate",
                "create Claim data-demo-etcd-1 for Pod demo-etcd-1 in StatefulSet demo-etcd failed error: x",
                "2026-12-07T01:00:09Z",
            ),
        ];
        let found = creation_blockers(&missing, &events);
        assert_eq!(
            found,
            [Blocker {
                component: Component::Etcd,
                reason: Reason::PodCreateFailed,
                message: "StatefulSet demo-etcd cannot create pod demo-etcd-1: pods \"demo-etcd-1\" is forbidden: ValidatingAdmissionPolicy 'no-curve' with binding 'no-curve' denied request: not here".into(),
            }]
        );
        // Once the pod exists, nothing is missing and the old Event is not read.
        assert!(creation_blockers(&[], &events).is_empty());
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
            progressing.message.contains("(600 s)")
                && progressing
                    .message
                    .contains("pod demo-etcd-0 is unschedulable"),
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

/// Curve's health as the monitor read it: the CopysetsHealthy condition, Degraded, the dead
/// primary, and the status block kept as the monitor gives it.
mod curve_health {
    use super::*;
    use crate::api::{CopysetHealthStatus, HealthStatus, HealthVerdict};
    use crate::reconcile::model::health::HealthView;

    fn read(verdict: HealthVerdict, unhealthy: i64, unreachable: Option<&str>) -> Observation {
        Observation {
            health: Some(HealthView {
                status: HealthStatus {
                    verdict,
                    message: (verdict != HealthVerdict::Healthy).then(|| {
                        "2 copysets minority peer not online (1/1 1/2) on 10.0.0.2:8200".into()
                    }),
                    copysets: Some(CopysetHealthStatus {
                        total: 100,
                        healthy: 100 - unhealthy,
                        unhealthy,
                        problems: Vec::new(),
                    }),
                    chunkservers: None,
                    logical_pools: Vec::new(),
                    last_checked: None,
                },
                current: true,
                primary_unreachable: unreachable.map(str::to_string),
                inventory: None,
            }),
            ..healthy()
        }
    }

    fn available_once() -> CurveClusterStatus {
        compute_status(&CurveClusterStatus::default(), &healthy(), Some(1), t(0))
    }

    #[test]
    fn clocks_apart_are_degraded_after_graver_news_and_clear_with_the_clocks() {
        let previous = available_once();
        let said = "the clocks of the cluster's nodes are 20s apart (node-2 +20s from the others' median, as their kubelets' Lease renewals show); …";
        let apart = Observation {
            clocks_apart: Some(said.into()),
            ..read(HealthVerdict::Healthy, 0, None)
        };
        let status = compute_status(&previous, &apart, Some(1), t(10));
        let degraded = named(&status, "Degraded");
        assert_eq!(
            (
                degraded.status.as_str(),
                degraded.reason.as_str(),
                degraded.message.as_str()
            ),
            ("True", "NodeClocksApart", said)
        );
        assert_eq!(
            named(&status, "Available").status,
            "True",
            "clocks do not stop the serving"
        );
        // Unhealthy copysets are graver: said first.
        let both = Observation {
            clocks_apart: Some(said.into()),
            ..read(HealthVerdict::Unhealthy, 2, None)
        };
        let status = compute_status(&previous, &both, Some(1), t(10));
        assert_eq!(named(&status, "Degraded").reason, "CopysetsUnhealthy");
        // Synchronized again: nothing degraded.
        let status = compute_status(
            &previous,
            &read(HealthVerdict::Healthy, 0, None),
            Some(1),
            t(20),
        );
        assert_eq!(named(&status, "Degraded").status, "False");
    }

    #[test]
    fn each_verdict_has_its_reason_and_unhealthy_copysets_are_degraded() {
        let previous = available_once();
        let status = compute_status(
            &previous,
            &read(HealthVerdict::Healthy, 0, None),
            Some(1),
            t(10),
        );
        let copysets = named(&status, "CopysetsHealthy");
        assert_eq!(
            (copysets.status.as_str(), copysets.reason.as_str()),
            ("True", "Healthy")
        );
        assert_eq!(
            copysets.message,
            "100 copysets healthy; one MDS leader, the elected one"
        );
        assert_eq!(
            status.health.as_ref().unwrap().verdict,
            HealthVerdict::Healthy
        );
        assert_eq!(named(&status, "Degraded").status, "False");

        let status = compute_status(
            &previous,
            &read(HealthVerdict::Unhealthy, 2, None),
            Some(1),
            t(10),
        );
        let copysets = named(&status, "CopysetsHealthy");
        assert_eq!(
            (copysets.status.as_str(), copysets.reason.as_str()),
            ("False", "Unhealthy")
        );
        assert!(
            copysets.message.contains("on 10.0.0.2:8200"),
            "{}",
            copysets.message
        );
        let degraded = named(&status, "Degraded");
        assert_eq!(
            (degraded.status.as_str(), degraded.reason.as_str()),
            ("True", "CopysetsUnhealthy")
        );

        // Unknown is said, not taken for unhealthy.
        let status = compute_status(
            &previous,
            &read(HealthVerdict::Unknown, 0, None),
            Some(1),
            t(10),
        );
        assert_eq!(named(&status, "CopysetsHealthy").reason, "Unknown");
        assert_eq!(named(&status, "Degraded").status, "False");

        // Not read (an operator just restarted): the last status block stays, no condition yet.
        let kept = compute_status(&status, &healthy(), Some(1), t(20));
        assert_eq!(kept.health, status.health);
    }

    #[test]
    fn a_dead_primary_is_said_only_of_the_primary_elected_now() {
        let previous = available_once();
        let dead = compute_status(
            &previous,
            &read(HealthVerdict::Healthy, 0, Some("demo-mds-0")),
            Some(1),
            t(10),
        );
        let mds = named(&dead, "MdsLeaderElected");
        assert_eq!(
            (mds.status.as_str(), mds.reason.as_str()),
            ("False", "PrimaryUnreachable")
        );
        assert!(
            mds.message
                .starts_with("etcd's election names demo-mds-0, whose dummy port does not answer")
        );
        // The probe was of the primary before: the one elected now is not said to be dead.
        let old = compute_status(
            &previous,
            &read(HealthVerdict::Healthy, 0, Some("demo-mds-1")),
            Some(1),
            t(10),
        );
        assert_eq!(named(&old, "MdsLeaderElected").reason, "Elected");
    }
}

/// The pools wait for ChunkServers that crash-loop: Available names the ChunkServers' blocker,
/// not the waiting pool step.
#[test]
fn available_names_the_chunkserver_blocker_the_pools_wait_on() {
    use crate::names::Component;
    use crate::reconcile::model::conditions::Reason;
    use crate::reconcile::model::observation::{Blocker, TopologyState};
    let failing = "pod demo-chunkserver-0-0: container chunkserver keeps failing (CrashLoopBackOff: exit 1 Failed to init chunk file pool)";
    let obs = Observation {
        chunkservers: component(3, 0, true),
        topology: Some(TopologyState {
            ready: false,
            reason: Reason::WaitingForChunkServers,
            message: "ChunkServers online: Job demo-chunkservers-online-1 running".into(),
            servers: 3,
        }),
        blockers: vec![Blocker {
            component: Component::ChunkServer,
            reason: Reason::ContainerFailing,
            message: failing.into(),
        }],
        ..healthy()
    };
    let status = compute_status(&CurveClusterStatus::default(), &obs, Some(1), t(0));
    let available = named(&status, "Available");
    assert_eq!(available.reason, "ChunkServersNotReady");
    assert!(available.message.contains(failing), "{}", available.message);
    // Without a blocker, the waiting step is what Available says.
    let waiting = Observation {
        blockers: Vec::new(),
        ..obs
    };
    let status = compute_status(&CurveClusterStatus::default(), &waiting, Some(1), t(0));
    assert_eq!(named(&status, "Available").reason, "TopologyNotReady");
}

/// A restore under way is what Progressing says (before the MDS tier being down); a failed one
/// is Degraded too; the record is kept through an invalid spec.
#[test]
fn a_restore_shows_in_progressing_and_a_failed_one_in_degraded() {
    use crate::api::{EtcdRestoreStatus, RestorePhase};
    use crate::reconcile::model::states::RestoreState;
    let record = EtcdRestoreStatus {
        phase: RestorePhase::StoppingMds,
        snapshot: "etcd-20260101T000000Z".into(),
        message: "waiting for 3 MDS pods to stop".into(),
        revision: None,
        cluster_token: "t".into(),
        counters: None,
        started: k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(t(0)),
        finished: None,
    };
    let running = Observation {
        restore: RestoreState::Running {
            message: "restoring etcd from snapshot etcd-20260101T000000Z: StoppingMds".into(),
        },
        restore_record: Some(record.clone()),
        ..healthy()
    };
    let status = compute_status(&CurveClusterStatus::default(), &running, Some(1), t(1));
    let progressing = named(&status, "Progressing");
    assert_eq!(
        (progressing.status.as_str(), progressing.reason.as_str()),
        ("True", "EtcdRestore")
    );
    assert_eq!(status.etcd.as_ref().unwrap().restore, Some(record.clone()));
    let failed = Observation {
        restore: RestoreState::Failed {
            message: "snapshot etcd-20260101T000000Z failed verification".into(),
        },
        ..running.clone()
    };
    let status = compute_status(&status, &failed, Some(1), t(2));
    for (type_, value) in [("Progressing", "False"), ("Degraded", "True")] {
        let c = named(&status, type_);
        assert_eq!(
            (c.status.as_str(), c.reason.as_str()),
            (value, "EtcdRestoreFailed")
        );
        assert!(c.message.contains("failed verification"));
    }
    let invalid = Observation::invalid(vec!["spec.image: required".into()]);
    let status = compute_status(&status, &invalid, Some(2), t(3));
    assert_eq!(status.etcd.unwrap().restore, Some(record));
}

/// The backups' record (the last success, the schedule) outlives an invalid spec: once the spec
/// is valid again the age of the newest snapshot is still known.
#[test]
fn the_backup_record_is_kept_through_an_invalid_spec() {
    use crate::api::{EtcdBackupStatus, EtcdBackupSuccess, EtcdStatus};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
    let backup = EtcdBackupStatus {
        schedule: Some("0 3 * * *".into()),
        last_success: Some(EtcdBackupSuccess {
            name: "etcd-20261207T030004Z".into(),
            time: Time(t(0)),
            revision: 4711,
            size: 20512,
            location: "pvc/demo-etcd-backup/snapshots/etcd-20261207T030004Z.db".into(),
            member: "demo-etcd-1".into(),
            job: "demo-etcd-backup-20261207-0300".into(),
            bucket_copy: Some("http://minio:9000/backups/ns/demo/etcd-20261207T030004Z.db".into()),
        }),
        ..EtcdBackupStatus::default()
    };
    let previous = CurveClusterStatus {
        etcd: Some(EtcdStatus {
            backup: Some(backup.clone()),
            ..EtcdStatus::default()
        }),
        ..CurveClusterStatus::default()
    };
    let invalid = Observation::invalid(vec!["spec.image: required".into()]);
    let status = compute_status(&previous, &invalid, Some(2), t(3));
    let etcd = status.etcd.expect("status.etcd kept for its records");
    assert_eq!(etcd.backup, Some(backup));
    assert_eq!(etcd.restore, None);
    assert_eq!(
        etcd.pods,
        Default::default(),
        "no pod counts while the spec is invalid"
    );
    // Nothing to keep: no status.etcd at all, as before.
    let status = compute_status(&CurveClusterStatus::default(), &invalid, Some(2), t(3));
    assert_eq!(status.etcd, None);
}
