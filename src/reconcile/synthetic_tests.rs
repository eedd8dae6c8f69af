//! The synthetic cluster is what it says: Available, steady, every pod Ready, Curve healthy
//! with the spec's copysets on every ChunkServer.

use super::*;
use crate::curve::health::Verdict;
use crate::reconcile::observe::is_ready;

const SIZE: Size = Size {
    servers: 6,
    disks: 2,
    etcd: 5,
    mds: 5,
};

#[test]
fn a_synthetic_cluster_is_available_steady_and_healthy() {
    let up = available(SIZE);
    let decision = decide(&up.cluster, &up.snapshot, &up.status, Some(1), now());
    assert_eq!(decision.actions, Vec::new());
    assert_eq!(decision.status.phase, Some(Phase::Available));
    let count = |c| {
        pods_of(&up.snapshot.pods, c)
            .filter(|p| is_ready(p))
            .count() as i32
    };
    assert_eq!(
        [Component::Etcd, Component::Mds, Component::ChunkServer].map(count),
        [SIZE.etcd, SIZE.mds, SIZE.chunkservers()]
    );
    let latest = up.snapshot.health.as_ref().unwrap();
    assert_eq!(latest.health.verdict, Verdict::Healthy);
    let inventory = latest.inventory.as_ref().unwrap();
    assert_eq!(inventory.servers.len() as i32, SIZE.servers);
    let per_chunkserver = up.cluster.spec.chunkservers.copysets as u32;
    assert_eq!(
        (inventory.chunkservers.iter().map(|cs| cs.copysets)).collect::<Vec<_>>(),
        vec![per_chunkserver; SIZE.chunkservers() as usize]
    );
    let copysets = latest.health.copysets.as_ref().unwrap();
    assert_eq!(
        copysets.total as u32 * 3,
        per_chunkserver * SIZE.chunkservers() as u32
    );
    assert_eq!(
        inventory.leaders.values().sum::<u32>() as usize,
        copysets.total
    );
}

/// With every ChunkServer pod outdated, the roll replaces one server's pods: every disk slot
/// of the highest ordinal.
#[test]
fn an_outdated_chunkserver_tier_rolls_one_server() {
    let up = available(SIZE);
    let mut snapshot = up.snapshot.clone();
    outdate(&mut snapshot, Component::ChunkServer);
    let decision = decide(&up.cluster, &snapshot, &up.status, Some(1), now());
    let deleted: Vec<&str> = (decision.actions.iter())
        .filter_map(|a| match a {
            Action::DeletePod { name, .. } => Some(name.as_str()),
            _ => None,
        })
        .collect();
    let last = SIZE.servers - 1;
    assert_eq!(
        deleted,
        (0..SIZE.disks)
            .map(|slot| format!("demo-chunkserver-{slot}-{last}"))
            .collect::<Vec<_>>()
    );
}
