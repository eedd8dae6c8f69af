//! etcd membership changes against real etcd (Debian's `etcd`): the operator's own membership
//! decision (reconcile/membership.rs) and its own etcd client (`EtcdClients`) grow a cluster
//! 1 → 3 → 5 and shrink it 5 → 3, one learner or one removal at a time; the test plays only
//! the StatefulSet controller (a member's process starts when its pod would, stops when its
//! pod goes).

#[path = "support/etcd.rs"]
mod etcd_support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use curve_operator::api::{EtcdStep, EtcdStepAction};
use curve_operator::etcd::{
    ChangeOutcome, ClusterKey, EtcdClients, EtcdObserver, MemberChange, MemberHealth,
};
use curve_operator::reconcile::membership::{self, MembershipInput};
use curve_operator::reconcile::model::pod::PodReading;
use curve_operator::reconcile::model::states::MembershipState;
use etcd_support::EtcdCluster;
use k8s_openapi::api::core::v1::Pod;

const SET: &str = "etcd";

/// The operator's memory between passes (the status record).
#[derive(Default)]
struct Record {
    settled: Option<i32>,
    step: Option<EtcdStep>,
}

struct Run {
    changes: Vec<String>,
    /// Time from the first pass to the last, per size change.
    took: Duration,
}

fn pod(name: &str) -> Pod {
    serde_json::from_value(serde_json::json!({"metadata": {"name": name, "uid": name}})).unwrap()
}

fn voters(members: &MemberHealth) -> usize {
    members.members.iter().filter(|m| !m.is_learner).count()
}

/// Reconciles membership until etcd has `target` voting members and nothing is in progress.
async fn drive(
    etcd: &mut EtcdCluster,
    clients: &EtcdClients,
    record: &mut Record,
    target: i32,
) -> Run {
    let key = ClusterKey {
        namespace: "ns".into(),
        name: "demo".into(),
    };
    while etcd.members.len() < 7 {
        etcd.add_spare();
    }
    let urls: Vec<String> = (0..etcd.members.len()).map(|i| etcd.peer_url(i)).collect();
    let peer_url = |ordinal: i32| urls[ordinal as usize].clone();
    let claim_of = |pod: &str| format!("data-{pod}");
    let started = Instant::now();
    let mut changes = Vec::new();
    for _ in 0..400 {
        let running: Vec<usize> = (0..etcd.members.len())
            .filter(|&i| etcd.members[i].is_running())
            .collect();
        // As the operator does: never the member joining (a learner until promoted).
        let joining = (record.step.as_ref())
            .filter(|s| s.action != EtcdStepAction::Remove)
            .and_then(|s| membership::ordinal(SET, &s.member));
        let serving: Vec<usize> = (running.iter().copied())
            .filter(|&i| Some(i as i32) != joining)
            .collect();
        let endpoints = etcd.endpoints_of(&serving);
        let observation = clients.observe(&key, &endpoints).await;
        let members = observation.members.clone();
        let pods: Vec<Arc<PodReading>> = running
            .iter()
            .map(|&i| Arc::new(pod(&format!("{SET}-{i}")).into()))
            .collect();
        let set_replicas = running.iter().max().map(|&i| i as i32 + 1);
        let decision = membership::decide(&MembershipInput {
            target,
            set: SET,
            peer_url: &peer_url,
            set_replicas,
            members: members.as_ref(),
            pods: &pods,
            claims: &[],
            claim_of: &claim_of,
            settled: record.settled,
            step: record.step.as_ref(),
            deletes_claims: false,
            outdated_pods: 0,
        });
        // The record first, then the change.
        record.settled = decision.settled;
        record.step = decision.step.clone();
        if let Some(change) = &decision.change {
            let outcome = match clients.change_members(&key, &endpoints, change).await {
                Ok(outcome) => outcome,
                // The member that answered the removal was the one removed: etcd applied the
                // change, then stopped that server before it replied (the operator retries
                // such an error, and the next pass sees the member gone).
                Err(e)
                    if matches!(change, MemberChange::Remove { .. })
                        && e.to_string().contains("server stopped") =>
                {
                    ChangeOutcome::Done
                }
                Err(e) => panic!("{}: {e}", change.describe()),
            };
            changes.push(format!(
                "{}{}",
                kind(change),
                match outcome {
                    ChangeOutcome::Done => "",
                    ChangeOutcome::NotYet(_) => " (not yet)",
                }
            ));
        }
        // The StatefulSet controller: pods follow the size; a joining member's pod starts
        // with the member list of the layout.
        let layout = &decision.layout;
        for i in layout.pods as usize..etcd.members.len() {
            if etcd.members[i].is_running() {
                etcd.remove(i);
            }
        }
        for i in 0..layout.pods as usize {
            let name = format!("{SET}-{i}");
            if !etcd.members[i].is_running() && layout.joining.as_deref() == Some(&name) {
                let initial: Vec<String> = (0..layout.pods as usize)
                    .map(|j| format!("{SET}-{j}={}", urls[j]))
                    .collect();
                etcd.join(i, &initial.join(","));
            }
        }
        let done = decision.step.is_none()
            && decision.change.is_none()
            && matches!(decision.state, MembershipState::Settled)
            && members.as_ref().is_some_and(|m| {
                voters(m) == target as usize && m.healthy == m.total && m.total == target as u32
            })
            && layout.pods == target;
        if done {
            return Run {
                changes,
                took: started.elapsed(),
            };
        }
        if let MembershipState::Blocked { message } = &decision.state {
            panic!("blocked: {message}");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    panic!("membership did not settle at {target}: {changes:?}");
}

fn kind(change: &MemberChange) -> &'static str {
    match change {
        MemberChange::AddLearner { .. } => "add-learner",
        MemberChange::Promote { .. } => "promote",
        MemberChange::Remove { .. } => "remove",
        MemberChange::MoveLeader { .. } => "move-leader",
        MemberChange::Defragment { .. } => "defragment",
    }
}

/// The member list as etcd answers it: (name, is_learner).
async fn member_names(etcd: &EtcdCluster) -> Vec<String> {
    let ids = etcd
        .etcdctl(
            &etcd.endpoints_of(&[0]),
            &["member", "list", "--write-out=simple"],
        )
        .lines()
        .map(|l| {
            let cols: Vec<&str> = l.split(", ").collect();
            format!("{} {}", cols[2], cols[1])
        })
        .collect::<Vec<_>>();
    let mut ids = ids;
    ids.sort();
    ids
}

/// The raft leader's name, as the operator reads it.
async fn leader_of(clients: &EtcdClients, etcd: &EtcdCluster) -> String {
    let running: Vec<usize> = (0..etcd.members.len())
        .filter(|&i| etcd.members[i].is_running())
        .collect();
    let key = ClusterKey {
        namespace: "ns".into(),
        name: "leader".into(),
    };
    let observation = clients.observe(&key, &etcd.endpoints_of(&running)).await;
    observation
        .members
        .and_then(|m| m.leader)
        .expect("a leader")
}

#[tokio::test]
async fn the_operator_grows_1_3_5_and_shrinks_to_3_through_learners_and_removals() {
    let mut etcd = EtcdCluster::start(1).await;
    let (clients, _changes) = EtcdClients::new();
    let mut record = Record {
        settled: Some(1),
        step: None,
    };
    let grow = drive(&mut etcd, &clients, &mut record, 3).await;
    // What etcd carried out (a change it refused for now is asked again next pass).
    let dedup = |v: &[String]| -> Vec<String> {
        v.iter()
            .filter(|c| !c.ends_with(" (not yet)"))
            .cloned()
            .collect()
    };
    assert_eq!(
        dedup(&grow.changes),
        ["add-learner", "promote", "add-learner", "promote"],
        "{:?}",
        grow.changes
    );
    assert_eq!(
        member_names(&etcd).await,
        ["etcd-0 started", "etcd-1 started", "etcd-2 started"]
    );
    assert_eq!(record.settled, Some(3));
    let to_five = drive(&mut etcd, &clients, &mut record, 5).await;
    assert_eq!(
        dedup(&to_five.changes),
        ["add-learner", "promote", "add-learner", "promote"]
    );
    assert_eq!(member_names(&etcd).await.len(), 5);

    // Make the member that leaves first the leader: it must hand leadership over first.
    let list = etcd.etcdctl(&etcd.endpoints_of(&[0]), &["member", "list"]);
    let id_of_4 = list
        .lines()
        .find(|l| l.contains(", etcd-4, "))
        .and_then(|l| l.split(", ").next())
        .unwrap()
        .to_string();
    let leader = leader_of(&clients, &etcd).await;
    if leader != "etcd-4" {
        let at: usize = leader.trim_start_matches("etcd-").parse().unwrap();
        etcd.etcdctl(&etcd.endpoints_of(&[at]), &["move-leader", &id_of_4]);
    }
    assert_eq!(leader_of(&clients, &etcd).await, "etcd-4");
    let shrink = drive(&mut etcd, &clients, &mut record, 3).await;
    assert_eq!(
        dedup(&shrink.changes),
        ["move-leader", "remove", "remove"],
        "{:?}",
        shrink.changes
    );
    assert_eq!(
        member_names(&etcd).await,
        ["etcd-0 started", "etcd-1 started", "etcd-2 started"]
    );
    let leader = leader_of(&clients, &etcd).await;
    assert!(
        ["etcd-0", "etcd-1", "etcd-2"].contains(&leader.as_str()),
        "{leader}"
    );
    println!(
        "    | 1 → 3: {:.1} s, 3 → 5: {:.1} s, 5 → 3: {:.1} s (passes every 0.2 s)",
        grow.took.as_secs_f64(),
        to_five.took.as_secs_f64(),
        shrink.took.as_secs_f64()
    );
}
