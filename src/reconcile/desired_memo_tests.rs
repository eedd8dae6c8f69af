//! Reuse is invisible: a decision taken with a memo, whatever it holds, is the decision taken
//! without one; and it does reuse what it can.

use super::*;
use crate::api::{CurveClusterStatus, Phase};
use crate::curve::health::Rules;
use crate::names::Component;
use crate::reconcile::decide::{Decision, decide, decide_reusing};
use crate::reconcile::model::action::Action;
use crate::reconcile::snapshot::Snapshot;
use crate::reconcile::synthetic::{self, Size};

const SIZE: Size = Size {
    servers: 6,
    disks: 2,
    etcd: 3,
    mds: 3,
};

/// The decision with `memo`, checked against the one without.
fn decide_both(
    memo: &mut DesiredMemo,
    cluster: &ValidatedCluster,
    snapshot: &Snapshot,
    status: &CurveClusterStatus,
) -> Decision {
    let now = synthetic::now();
    let fresh = decide(cluster, snapshot, status, Some(1), now);
    let reusing = decide_reusing(memo, cluster, snapshot, status, Some(1), now);
    assert_eq!(reusing, fresh, "a decision with a memo is the one without");
    reusing
}

/// Every pass of a bring-up, with one memo carried through as the operator carries it: each
/// decision equals a fresh one, while the inputs change at almost every pass (addresses,
/// servers, pool progress) and stay put at others.
#[test]
fn a_bring_up_decides_with_a_memo_as_without() {
    let cluster = synthetic::cluster(SIZE);
    let rules = Rules {
        replicas: cluster.spec.logical_pool.replicas as usize,
        ..Rules::default()
    };
    let mut memo = DesiredMemo::default();
    let mut snapshot = Snapshot::default();
    let mut status = CurveClusterStatus::default();
    let (mut reused, mut passes) = (0, 0);
    while status.phase != Some(Phase::Available) {
        passes += 1;
        assert!(
            passes <= 40,
            "Available in 40 passes: {:?}",
            status.conditions
        );
        let before = memo.clone();
        let decision = decide_both(&mut memo, &cluster, &snapshot, &status);
        if before
            .last
            .as_ref()
            .map(|(_, p)| p.shared())
            .is_some_and(|p| Arc::ptr_eq(&p, &memo.last.as_ref().expect("kept").1.shared()))
        {
            reused += 1;
        }
        synthetic::carry_out(&mut snapshot, &decision.actions);
        status = decision.status;
        synthetic::play_controllers(&mut snapshot);
        synthetic::elect(&cluster, &mut snapshot);
        if status
            .record
            .as_ref()
            .is_some_and(|r| r.logical_pool_created)
        {
            let map = &decision.desired.cluster_map;
            let read = synthetic::curve_reading(&cluster, &snapshot, map);
            snapshot.health = Some(synthetic::latest(&read, &snapshot, &status, &rules));
        }
    }
    assert!(
        reused > 0 && reused < passes,
        "some passes reuse the objects, not all: {reused} of {passes}"
    );
}

/// The steady cluster's objects are reused: the same objects, not a copy.
#[test]
fn a_steady_cluster_reuses_its_objects() {
    let up = synthetic::available(SIZE);
    let mut memo = DesiredMemo::default();
    let first = decide_both(&mut memo, &up.cluster, &up.snapshot, &up.status);
    let second = decide_both(&mut memo, &up.cluster, &up.snapshot, &up.status);
    assert!(Arc::ptr_eq(&first.desired, &second.desired));
    assert!(second.actions.is_empty());
}

/// Each input the objects are built from, changed after a steady decision filled the memo:
/// the objects are built again, and the decision with the memo is the fresh one.
#[test]
fn every_input_changed_is_seen_through_the_memo() {
    let up = synthetic::available(SIZE);
    let mut memo = DesiredMemo::default();
    let steady = decide_both(&mut memo, &up.cluster, &up.snapshot, &up.status);
    let changed = |cluster: &ValidatedCluster, snapshot: &Snapshot, status| {
        let mut warm = memo.clone();
        let decision = decide_both(&mut warm, cluster, snapshot, status);
        assert!(
            !Arc::ptr_eq(&decision.desired, &steady.desired),
            "built again"
        );
        decision
    };
    let applies = |decision: &Decision| -> Vec<String> {
        (decision.actions.iter())
            .filter(|a| matches!(a, Action::Apply(_)))
            .map(Action::describe)
            .collect()
    };

    // The spec: a new image changes every StatefulSet.
    let mut newer = up.cluster.clone();
    newer.spec.image = "opencurvedocker/curvebs:v1.2.7".into();
    let decision = changed(&newer, &up.snapshot, &up.status);
    assert!(decision.desired != steady.desired);
    assert!(
        applies(&decision).iter().any(|a| a.contains("StatefulSet")),
        "{:?}",
        applies(&decision)
    );

    // The record: a server and the MDS addresses forgotten from it; the map keeps the server
    // (its pods are still there) and the addresses are read from the pods again.
    let mut forgetful = up.status.clone();
    let record = forgetful.record.as_mut().expect("a record");
    let gone = record.servers.pop().expect("servers recorded");
    record.mds_addresses.clear();
    let decision = changed(&up.cluster, &up.snapshot, &forgetful);
    let servers = &decision.status.record.as_ref().expect("a record").servers;
    assert!(servers.contains(&gone));

    // The pods: a ChunkServer on a node the map does not have yet adds a server to it.
    let mut grown = up.snapshot.clone();
    let pod = (grown.pods.iter_mut())
        .rfind(|p| p.tier == Some(Component::ChunkServer))
        .expect("a ChunkServer pod");
    let pod = Arc::make_mut(pod);
    pod.node = Some("node-new".into());
    pod.host_ip = Some("10.255.0.1".into());
    let decision = changed(&up.cluster, &grown, &up.status);
    assert!(decision.desired != steady.desired);
    assert_eq!(
        decision.desired.cluster_map.servers().len(),
        steady.desired.cluster_map.servers().len() + 1
    );

    // A scale-in: its first step changes Curve, not the objects (each slot keeps its pods
    // until its ChunkServer left), so they are reused.
    let mut smaller = up.cluster.clone();
    smaller.spec.chunkservers.replicas -= 3;
    let decision = decide_both(&mut memo.clone(), &smaller, &up.snapshot, &up.status);
    assert!(!decision.actions.is_empty(), "the retire starts");
}

/// A rebuilt topology ConfigMap (the pool Jobs made progress) is this decision's: the objects
/// kept for the next decision are those its inputs build.
#[test]
fn a_rebuilt_topology_leaves_the_kept_objects_alone() {
    let cluster = synthetic::cluster(SIZE);
    let inputs = DesiredInputs {
        safe: cluster.clone(),
        observed: Observed::default(),
        hold_mds: false,
        slot_replicas: BTreeMap::new(),
    };
    let mut memo = DesiredMemo::default();
    let mut prepared = memo.prepare(inputs.clone());
    let mut topology = prepared.objects().topology.clone();
    topology
        .data
        .get_or_insert_default()
        .insert("x".into(), "y".into());
    prepared.set_topology(topology.clone());
    assert_eq!(prepared.objects().topology, topology);
    assert_eq!(*prepared.hashes(), AppliedHashes::of(prepared.objects()));
    let again = memo.prepare(inputs.clone());
    assert_eq!(*again.objects(), inputs.build());
    assert_ne!(again.objects().topology, topology);
}

#[test]
fn a_deleted_clusters_memo_is_forgotten() {
    let mut filled = DesiredMemo::default();
    filled.prepare(DesiredInputs {
        safe: synthetic::cluster(SIZE),
        observed: Observed::default(),
        hold_mds: false,
        slot_replicas: BTreeMap::new(),
    });
    assert!(filled.holds());
    let memos = DesiredMemos::default();
    memos.keep("ns", "a", filled.clone());
    memos.keep("ns", "b", filled);
    memos.forget("ns", "a");
    assert!(!memos.take("ns", "a").holds());
    assert!(memos.take("ns", "b").holds());
    // Taken out while its cluster is reconciled: not there until kept again.
    assert!(!memos.take("ns", "b").holds());
}
