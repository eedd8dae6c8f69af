//! derive: each change of the status told once.

use super::derive;
use crate::api::CurveClusterStatus;
use crate::names::Component;
use crate::reconcile::fixtures::{component, fresh, healthy, t};
use crate::reconcile::model::conditions::{ConditionType, find};
use crate::reconcile::model::event::ClusterEvent;
use crate::reconcile::model::observation::{DataCleanup, Observation, PrimaryView};
use crate::reconcile::model::states::RollState;
use crate::reconcile::status::{compute_status, with_error};

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

#[test]
fn a_blocker_is_told_once_per_change_and_an_adoption_once() {
    use crate::reconcile::model::conditions::Reason;
    use crate::reconcile::model::observation::Blocker;
    let blocked = |message: &str| Observation {
        etcd: component(3, 0, true),
        blockers: vec![Blocker {
            component: Component::Etcd,
            reason: Reason::Unschedulable,
            message: message.into(),
        }],
        adopted_claims: vec!["data-demo-etcd-0".into()],
        ..fresh()
    };
    let none = CurveClusterStatus::default();
    let first = compute_status(
        &none,
        &blocked("pod demo-etcd-0 is unschedulable: 0/3"),
        Some(1),
        t(0),
    );
    let told: Vec<(bool, String)> = (derive(&none, &first, &[]).into_iter())
        .filter(|e| e.reason != "Created")
        .map(|e| (e.warning, e.reason))
        .collect();
    assert_eq!(
        told,
        [
            (true, "Unschedulable".to_string()),
            (true, "RetainedDataAdopted".to_string())
        ]
    );
    let same = compute_status(
        &first,
        &blocked("pod demo-etcd-0 is unschedulable: 0/3"),
        Some(1),
        t(15),
    );
    assert!(derive(&first, &same, &[]).is_empty(), "nothing new to tell");
    let other = compute_status(
        &same,
        &blocked("pod demo-etcd-1 is unschedulable: 0/3"),
        Some(1),
        t(30),
    );
    let told: Vec<String> = derive(&same, &other, &[])
        .into_iter()
        .map(|e| e.reason)
        .collect();
    assert_eq!(told, ["Unschedulable"]);
}

#[test]
fn a_retire_is_told_when_it_starts_and_when_it_ends() {
    use crate::api::{ChunkServerRetire, OperatorRecord, RetireReason, RetireStep};
    let with = |retire: Option<ChunkServerRetire>| CurveClusterStatus {
        record: Some(OperatorRecord {
            version: OperatorRecord::VERSION,
            retire,
            ..OperatorRecord::default()
        }),
        ..CurveClusterStatus::default()
    };
    let retire = ChunkServerRetire {
        reason: RetireReason::ScaleIn,
        pod: "demo-chunkserver-0-3".into(),
        slot: 0,
        ordinal: 3,
        chunkserver_id: Some(4),
        address: "10.0.0.4:8200".into(),
        server_id: Some(4),
        step: RetireStep::Draining,
        copysets_at_start: 25,
        started: k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(t(0)),
    };
    let told = |before: &CurveClusterStatus, after: &CurveClusterStatus| {
        super::retire_change(before, after)
            .into_iter()
            .map(|e| format!("{} {}", e.reason, e.note))
            .collect::<Vec<_>>()
    };
    let (none, started) = (with(None), with(Some(retire.clone())));
    assert_eq!(
        told(&none, &started),
        [
            "ChunkServerRetiring ChunkServer 4 (demo-chunkserver-0-3, 10.0.0.4:8200): spec.chunkservers.replicas was lowered: PENDDING until its copysets moved, then stopped, RETIRED and deleted (25 copysets to move)"
        ]
    );
    let stepped = with(Some(ChunkServerRetire {
        step: RetireStep::Stopping,
        ..retire.clone()
    }));
    assert_eq!(
        told(&started, &stepped),
        Vec::<String>::new(),
        "a step is not an event"
    );
    assert_eq!(
        told(&stepped, &none),
        [
            "ChunkServerRetired ChunkServer 4 (demo-chunkserver-0-3, 10.0.0.4:8200): it left Curve and its pod is gone; its claim data-demo-chunkserver-0-3 is kept (spec.cleanup): it holds an id Curve retired, delete it before this ordinal is scaled out again"
        ]
    );
}

#[test]
fn moved_mds_addresses_are_told_once() {
    use crate::api::OperatorRecord;
    let with = |addresses: &[&str]| CurveClusterStatus {
        record: Some(OperatorRecord {
            version: OperatorRecord::VERSION,
            mds_addresses: addresses.iter().map(|a| a.to_string()).collect(),
            ..OperatorRecord::default()
        }),
        ..CurveClusterStatus::default()
    };
    let first = with(&["10.0.0.1:6700", "10.0.0.2:6700", "10.0.0.3:6700"]);
    let moved = with(&["10.0.0.1:6700", "10.0.0.9:6700", "10.0.0.3:6700"]);
    assert_eq!(
        super::mds_addresses_change(&with(&[]), &first),
        None,
        "handed out first"
    );
    assert_eq!(super::mds_addresses_change(&first, &first), None);
    let told = super::mds_addresses_change(&first, &moved).unwrap();
    assert_eq!(told.reason, "MdsAddressesChanged");
    assert_eq!(
        told.note,
        "the MDS addresses ChunkServers and tools dial changed from 10.0.0.1:6700,10.0.0.2:6700,10.0.0.3:6700 to 10.0.0.1:6700,10.0.0.9:6700,10.0.0.3:6700: their configs follow and the ChunkServers roll"
    );
}

#[test]
fn a_note_over_the_api_servers_limit_is_cut_at_a_character() {
    use super::{NOTE_LIMIT, bounded_note};
    assert_eq!(bounded_note("short".into()), "short");
    let exact = "x".repeat(NOTE_LIMIT);
    assert_eq!(bounded_note(exact.clone()), exact);
    // "é" is 2 bytes: a cut may not split it.
    let long = format!("ab{}", "é".repeat(NOTE_LIMIT));
    let cut = bounded_note(long.clone());
    assert!(cut.len() <= NOTE_LIMIT, "{}", cut.len());
    assert!(cut.ends_with('…'));
    assert!(long.starts_with(cut.trim_end_matches('…')));
    assert_eq!(
        cut.len(),
        NOTE_LIMIT - 1,
        "2 + 2×509 bytes of é, then 3 of …"
    );
}
