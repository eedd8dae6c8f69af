//! etcd's space against real etcd (Debian's `etcd`): a tiny quota raises NOSPACE and the
//! operator's observer reads the alarm (and the status says what to do); the space decision
//! (reconcile/etcd_space.rs) defragments followers first and the leader last, through the
//! operator's own etcd client, until no member holds free pages worth it; and
//! `strict-reconfig-check` refuses a removal that would leave no quorum of started members.
//! Scenario of issue 30 ("housekeeping").

#[path = "support/etcd.rs"]
mod etcd_support;

use std::time::Duration;

use curve_operator::etcd::{
    ChangeOutcome, ClusterKey, EtcdAlarm, EtcdClients, EtcdObserver, MemberChange, MemberHealth,
};
use curve_operator::reconcile::etcd_space::{self, MIN_FREE_BYTES, SpaceInput};
use etcd_client::{Client, CompactionOptions};
use etcd_support::EtcdCluster;

fn key() -> ClusterKey {
    ClusterKey {
        namespace: "ns".into(),
        name: "demo".into(),
    }
}

async fn members(clients: &EtcdClients, endpoints: &[String]) -> MemberHealth {
    (clients.observe(&key(), endpoints).await.members).expect("etcd answers its member list")
}

#[tokio::test(flavor = "multi_thread")]
async fn housekeeping_a_tiny_quota_raises_nospace_which_the_observer_reads() {
    // 4 MiB: a few puts of 512 KiB fill it.
    let etcd = EtcdCluster::start_with(3, &["--quota-backend-bytes=4194304"]).await;
    let endpoints = etcd.endpoints();
    let mut client = Client::connect(&endpoints, None).await.unwrap();
    let value = vec![b'x'; 512 << 10];
    let mut refused = None;
    for i in 0..64 {
        if let Err(e) = client.put(format!("fill/{i}"), value.clone(), None).await {
            refused = Some(e.to_string());
            break;
        }
    }
    let refused = refused.expect("etcd refuses writes past its quota");
    assert!(refused.contains("database space exceeded"), "{refused}");

    let (clients, _changes) = EtcdClients::new();
    let health = members(&clients, &endpoints).await;
    // NOSPACE is raised on the member whose database went over; the cluster refuses writes.
    let raised: Vec<(String, Vec<EtcdAlarm>)> = (health.members.iter())
        .map(|m| (m.name.clone(), m.alarms.clone()))
        .filter(|(_, alarms)| !alarms.is_empty())
        .collect();
    println!("    | alarms: {raised:?}; refused with: {refused}");
    assert!(!raised.is_empty(), "{health:?}");
    assert!(
        raised.iter().all(|(_, a)| a == &[EtcdAlarm::NoSpace]),
        "{raised:?}"
    );
    for m in &health.members {
        // (A member's own Status lists the alarm once it applied it: not asserted.)
        assert!(m.serving, "{m:?}");
        // The member that raised it would have gone over the quota with the refused put:
        // etcd checks its database size plus the request's cost (etcdserver/quota.go,
        // backendQuota.Available), not the size alone.
        let with_the_put = m.db_size + value.len() as u64;
        assert!(m.alarms.is_empty() || with_the_put > 4 << 20, "{m:?}");
        assert!(
            m.db_size_in_use > 0 && m.db_size_in_use <= m.db_size,
            "{m:?}"
        );
    }
    let found = etcd_space::alarms(&health);
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].0, EtcdAlarm::NoSpace);
    let message = etcd_space::alarm_message(found[0].0, &found[0].1);
    assert!(message.contains("etcdctl alarm disarm"), "{message}");

    // Disarmed once space is free (deleted, compacted, defragmented), as the message says.
    client
        .delete(
            "fill/",
            Some(etcd_client::DeleteOptions::new().with_prefix()),
        )
        .await
        .unwrap();
    let revision = client
        .get("any", None)
        .await
        .unwrap()
        .header()
        .unwrap()
        .revision();
    client
        .compact(revision, Some(CompactionOptions::new().with_physical()))
        .await
        .unwrap();
    for m in &etcd.members {
        etcd.etcdctl(&[m.endpoint()], &["defrag"]);
    }
    etcd.etcdctl(&endpoints, &["alarm", "disarm"]);
    let health = members(&clients, &endpoints).await;
    assert!(etcd_space::alarms(&health).is_empty(), "{health:?}");
    client.put("after", "disarm", None).await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn housekeeping_defragments_followers_first_then_the_leader() {
    let etcd = EtcdCluster::start(3).await;
    let endpoints = etcd.endpoints();
    let mut client = Client::connect(&endpoints, None).await.unwrap();
    // 96 MiB written, then deleted and compacted: free pages well over the threshold.
    let value = vec![b'x'; 1 << 20];
    for i in 0..96 {
        client
            .put(format!("bulk/{i}"), value.clone(), None)
            .await
            .unwrap();
    }
    client
        .delete(
            "bulk/",
            Some(etcd_client::DeleteOptions::new().with_prefix()),
        )
        .await
        .unwrap();
    let revision = client
        .put("mark", "x", None)
        .await
        .unwrap()
        .header()
        .unwrap()
        .revision();
    client
        .compact(revision, Some(CompactionOptions::new().with_physical()))
        .await
        .unwrap();
    // The size in use is counted at a backend commit (every 100 ms) after the compaction's.
    tokio::time::sleep(Duration::from_millis(500)).await;
    client.put("after", "compaction", None).await.unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;

    let (clients, _changes) = EtcdClients::new();
    let leader = etcd.members[etcd.raft_leader().await].name.clone();
    let mut order = Vec::new();
    for _ in 0..10 {
        let health = members(&clients, &endpoints).await;
        let Some(defragment) = etcd_space::decide(&SpaceInput {
            members: Some(&health),
            busy: None,
        }) else {
            break;
        };
        assert!(defragment.free > MIN_FREE_BYTES, "{defragment:?}");
        let outcome = clients
            .change_members(
                &key(),
                &endpoints,
                &MemberChange::Defragment { id: defragment.id },
            )
            .await
            .unwrap();
        assert_eq!(outcome, ChangeOutcome::Done);
        let after = members(&clients, &endpoints).await;
        let m = after
            .members
            .iter()
            .find(|m| m.id == defragment.id)
            .unwrap();
        println!(
            "    | {}: {} → {} KiB",
            defragment.name,
            defragment.db_size >> 10,
            m.db_size >> 10
        );
        assert!(m.db_size < defragment.db_size - MIN_FREE_BYTES, "{m:?}");
        order.push(defragment.name);
    }
    assert_eq!(order.len(), 3, "each member once: {order:?}");
    assert_eq!(order.last(), Some(&leader), "the leader last: {order:?}");
    let mut followers = order[..2].to_vec();
    followers.sort();
    assert_eq!(order[..2], followers, "followers by name: {order:?}");
    // Nothing left worth a pause, and the data is still there.
    let health = members(&clients, &endpoints).await;
    assert_eq!(
        etcd_space::decide(&SpaceInput {
            members: Some(&health),
            busy: None
        }),
        None
    );
    assert_eq!(client.get("mark", None).await.unwrap().kvs().len(), 1);
}

/// Removes a follower from a cluster of three whose other follower is down (the leader and the
/// dead follower would be left: no quorum), with `strict-reconfig-check` as given. Returns
/// etcd's answer and how many members the leader lists after.
async fn remove_while_another_is_down(strict: bool) -> (Result<ChangeOutcome, String>, usize) {
    let flag = format!("--strict-reconfig-check={strict}");
    let mut etcd = EtcdCluster::start_with(3, &[&flag]).await;
    let ids = etcd.member_ids().await;
    let leader = etcd.raft_leader().await;
    let followers: Vec<usize> = (0..3).filter(|&i| i != leader).collect();
    etcd.stop(followers[1]);
    let endpoints = etcd.endpoints_of(&[leader, followers[0]]);
    let (clients, _changes) = EtcdClients::new();
    let removal = MemberChange::Remove {
        id: ids[followers[0]],
    };
    let outcome = tokio::time::timeout(
        Duration::from_secs(10),
        clients.change_members(&key(), &endpoints, &removal),
    )
    .await
    .expect("etcd answers");
    let mut client = Client::connect([etcd.members[leader].endpoint()], None)
        .await
        .unwrap();
    let listed = client.member_list().await.unwrap().members().len();
    (outcome, listed)
}

#[tokio::test(flavor = "multi_thread")]
async fn housekeeping_strict_reconfig_check_refuses_a_removal_that_leaves_no_quorum() {
    let (strict, listed) = remove_while_another_is_down(true).await;
    println!("    | strict-reconfig-check true: {strict:?}");
    // Refused (etcd v3.4 mayRemoveMember: fewer connected voters than a quorum after it), and
    // the operator asks again later rather than failing.
    match strict {
        Ok(ChangeOutcome::NotYet(why)) => assert!(why.contains("unhealthy cluster"), "{why}"),
        other => panic!("etcd let the removal through: {other:?}"),
    }
    assert_eq!(listed, 3, "the member list is unchanged");
    // The image's false lets it through: two members left, one of them dead, so no quorum
    // (the answer itself is lost with it: the removed member stops, the rest cannot commit).
    let (lax, listed) = remove_while_another_is_down(false).await;
    println!("    | strict-reconfig-check false: {lax:?}, {listed} members listed after");
    assert_eq!(listed, 2, "{lax:?}");
}
