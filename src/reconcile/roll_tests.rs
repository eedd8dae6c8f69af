//! The roll's order, its waits and its checks, played to the end.

use std::collections::BTreeMap;

use serde_json::json;

use crate::api::{HealthStatus, HealthVerdict};
use crate::etcd::MemberHealth;
use crate::names::Component;
use crate::reconcile::fixtures::{healthy, t, validated};
use crate::reconcile::model::action::Action;
use crate::reconcile::model::health::HealthView;
use crate::reconcile::model::observation::{Observation, PrimaryView};
use crate::reconcile::model::states::RollState;
use crate::reconcile::roll::{self, RollPod, TierPods};

fn pod(set: &str, ordinal: i32, updated: bool) -> RollPod<'static> {
    RollPod {
        name: format!("{set}-{ordinal}").into(),
        uid: format!("{set}-{ordinal}-old").into(),
        ordinal,
        updated,
        ready: true,
        terminating: false,
        created: Some(t(0)),
        node: Some(format!("node-{ordinal}").into()),
        image: Some(format!("curve:{}", if updated { 2 } else { 1 }).into()),
        failing: None,
    }
}

fn tier(component: Component, sets: &[&str], n: i32, updated: bool) -> TierPods<'static> {
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
fn outdated(disks: usize) -> Vec<TierPods<'static>> {
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

/// Curve's health as the monitor reads it: `verdict`, read after the pods were as they are
/// (`current`) or before.
fn health(verdict: HealthVerdict, current: bool) -> HealthView {
    HealthView {
        status: HealthStatus {
            verdict,
            message: (verdict != HealthVerdict::Healthy).then(|| {
                "2 copysets MinorityPeerNotOnline (4294967297 4294967298) on 10.0.0.3:8200".into()
            }),
            copysets: None,
            chunkservers: None,
            logical_pools: Vec::new(),
            last_checked: None,
        },
        current,
        primary_unreachable: None,
        inventory: None,
    }
}

/// Plays the controllers until the roll is done: the replaced pods, in order, and how
/// often the MDS primary changed.
fn roll_to_end(
    cluster: &crate::validate::ValidatedCluster,
    mut tiers: Vec<TierPods<'static>>,
    mut obs: Observation,
    zones: &BTreeMap<String, String>,
) -> (Vec<Vec<String>>, usize) {
    let mut steps = Vec::new();
    let healthy_now = health(HealthVerdict::Healthy, true);
    let mut primary_changes = 0;
    for _ in 0..50 {
        let checks = roll::Checks {
            health: Some(&healthy_now),
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
                    pod.uid = format!("{name}-new").into();
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
                            .to_string();
                        obs.primary = PrimaryView::Elected {
                            pod: next,
                            address: "10.0.0.9:6700".into(),
                        };
                        primary_changes += 1;
                    }
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
        json!({"chunkservers": {"replicas": 3, "disksPerNode": 2, "storage": {"size": "10Gi"}}}),
    );
    let (steps, primary_changes) = roll_to_end(&cluster, outdated(2), healthy(), &BTreeMap::new());
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
        "chunkservers": {"replicas": 6, "storage": {"size": "10Gi"}, "updatePolicy": "Zone"},
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

/// A decision with Curve's health read healthy after the last pod change.
fn decide(tiers: &[TierPods], obs: &Observation, now: i64) -> roll::RollDecision {
    decide_with(tiers, obs, Some(&health(HealthVerdict::Healthy, true)), now)
}

fn decide_with(
    tiers: &[TierPods],
    obs: &Observation,
    health: Option<&HealthView>,
    now: i64,
) -> roll::RollDecision {
    let checks = roll::Checks {
        health,
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
    let waiting = decide(&tiers, &healthy(), 100);
    assert!(waiting.actions.is_empty());
    assert_eq!(
        message(&waiting),
        "etcd: 1/3 updated, waiting for demo-etcd-2 to be Ready"
    );
    assert!(matches!(waiting.state, RollState::Rolling { .. }));
    let stuck = decide(&tiers, &healthy(), 601);
    assert!(stuck.actions.is_empty());
    assert!(matches!(stuck.state, RollState::Stuck { .. }), "{stuck:?}");
    assert!(message(&stuck).contains(
        "demo-etcd-2 is not Ready spec.rollout.progressDeadlineSeconds (600 s) after it was created"
    ));
    // The same message a minute later: its Event is not sent again.
    assert_eq!(message(&decide(&tiers, &healthy(), 661)), message(&stuck));
    // A container that cannot start is stuck at once.
    tiers[0].pods[2].failing = Some("etcd: ImagePullBackOff".into());
    let failing = decide(&tiers, &healthy(), 10);
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
    let decision = decide(&tiers, &healthy(), 1000);
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
    let decision = decide(&tiers, &obs, 10);
    assert!(decision.actions.is_empty());
    assert_eq!(
        message(&decision),
        "etcd: 0/3 updated, etcd: 2 of 3 members healthy"
    );
    obs.etcd_members = None;
    assert!(decide(&tiers, &obs, 10).actions.is_empty());

    let lone = vec![tier(Component::Etcd, &["demo-etcd"], 1, false)];
    let decision = decide(&lone, &healthy(), 10);
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
    let decision = decide(&tiers, &healthy(), 10);
    assert!(decision.actions.is_empty());
    assert_eq!(
        message(&decision),
        "etcd: waiting for demo-etcd-0 to be Ready; mds roll after it"
    );
    tiers[0].pods[0].ready = true;
    let mut obs = healthy();
    obs.primary = PrimaryView::NoLeader;
    let decision = decide(&tiers, &obs, 10);
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
        message(&decide(&tiers, &healthy(), 10)),
        "etcd: 0/3 updated, waiting for demo-etcd-2 to be replaced"
    );
    tiers[0].pods.remove(2);
    let decision = decide(&tiers, &healthy(), 10);
    assert!(decision.actions.is_empty());
    assert_eq!(
        message(&decision),
        "etcd: 0/3 updated, waiting for 1 of 3 pods to be recreated"
    );
    let mut unsettled = outdated(1);
    unsettled[0].settled = false;
    assert!(decide(&unsettled, &healthy(), 10).actions.is_empty());
}

#[test]
fn chunkservers_roll_only_on_a_healthy_verdict_read_after_the_last_pod_change() {
    let mut tiers = outdated(1);
    tiers[0].pods.iter_mut().for_each(|p| p.updated = true);
    tiers[1].pods.iter_mut().for_each(|p| p.updated = true);
    let cluster = validated(json!({}));
    let not_read = decide_with(&tiers, &healthy(), None, 10);
    assert!(not_read.actions.is_empty());
    assert_eq!(
        message(&not_read),
        "chunkservers: 0/3 updated, waiting for Curve's health to be read"
    );
    let stale = decide_with(
        &tiers,
        &healthy(),
        Some(&health(HealthVerdict::Healthy, false)),
        10,
    );
    assert!(stale.actions.is_empty(), "read before the last pod change");
    assert_eq!(
        message(&stale),
        "chunkservers: 0/3 updated, waiting for Curve's health read after the last pod change"
    );
    let unhealthy = decide_with(
        &tiers,
        &healthy(),
        Some(&health(HealthVerdict::Unhealthy, true)),
        10,
    );
    assert!(unhealthy.actions.is_empty());
    assert_eq!(
        message(&unhealthy),
        "chunkservers: 0/3 updated, waiting: Curve's health is unhealthy: 2 copysets MinorityPeerNotOnline (4294967297 4294967298) on 10.0.0.3:8200"
    );
    assert!(matches!(unhealthy.state, RollState::Rolling { .. }));
    let unknown = decide_with(
        &tiers,
        &healthy(),
        Some(&health(HealthVerdict::Unknown, true)),
        10,
    );
    assert!(unknown.actions.is_empty(), "never a step on Unknown");
    let passed = decide(&tiers, &healthy(), 10);
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
        health: None,
        node_zones: &BTreeMap::new(),
        pool_created: false,
    };
    let early = roll::decide(&cluster, &tiers, &healthy(), no_pool, t(10));
    assert!(
        matches!(&early.actions[..], [Action::DeletePod { name, .. }] if name == "demo-chunkserver-0-2"),
        "{early:?}"
    );
}

/// The etcd and MDS StatefulSets got the new template but their controller has not observed it
/// yet (their pods still look current) while the ChunkServers' has: the ChunkServers do not go
/// first (e2e scenario k once saw demo-chunkserver-0-2 replaced before etcd).
#[test]
fn a_later_tier_waits_while_an_earlier_one_has_not_taken_its_template() {
    let mut tiers = outdated(1);
    for earlier in &mut tiers[..2] {
        earlier.settled = false;
        earlier.pods.iter_mut().for_each(|p| p.updated = true);
    }
    let decision = decide(&tiers, &healthy(), 10);
    assert!(decision.actions.is_empty(), "{:?}", decision.actions);
    assert_eq!(
        message(&decision),
        "waiting for the StatefulSet controller to take the etcd template"
    );
    tiers[0].settled = true;
    tiers[0].pods.iter_mut().for_each(|p| p.updated = false);
    let decision = decide(&tiers, &healthy(), 10);
    assert!(
        (decision.actions.iter()).all(|a| format!("{a:?}").contains("demo-etcd")),
        "{:?}",
        decision.actions
    );
}
