//! The MDS election, watch and member health read from real etcd (Debian's `etcd`), with MDS
//! stand-ins campaigning as Curve's MDS does. Each test starts its own etcd on loopback.

// By path, so that other test targets may have their own tests/support/mod.rs.
#[path = "support/etcd.rs"]
mod etcd_support;

use std::net::TcpListener;
use std::process::{ExitCode, Stdio};
use std::time::{Duration, Instant};

use curve_operator::etcd::cli::run_mds_primary;
use curve_operator::etcd::{
    ClusterKey, ElectionChange, EtcdClients, EtcdObservation, EtcdObserver, MemberHealth,
    PrimaryObservation,
};
use etcd_support::{
    EtcdCluster, LEASE_TTL, MDS_ELECTION, MdsStandIn, SNAPSHOTCLONE_ELECTION, free_port, within,
};
use futures::{Stream, StreamExt};
use tokio::io::{AsyncBufReadExt, BufReader};

const MDS_A: &str = "127.0.1.1:6700";
const MDS_B: &str = "127.0.1.2:6700";
const MDS_C: &str = "127.0.1.3:6700";
const MDS_D: &str = "127.0.1.4:6700";

/// An observation is bounded by a few seconds; this is the bound the tests hold it to.
const OBSERVE_BOUND: Duration = Duration::from_secs(5);

fn key(name: &str) -> ClusterKey {
    ClusterKey {
        namespace: "curve".into(),
        name: name.into(),
    }
}

fn elected(address: &str) -> PrimaryObservation {
    PrimaryObservation::Elected {
        address: address.into(),
    }
}

async fn observe(
    clients: &EtcdClients,
    cluster: &ClusterKey,
    endpoints: &[String],
) -> EtcdObservation {
    within(
        OBSERVE_BOUND,
        "observe",
        clients.observe(cluster, endpoints),
    )
    .await
}

/// Observes until `done` holds: etcd needs a moment after losing a member or moving its leader.
async fn observe_until(
    clients: &EtcdClients,
    cluster: &ClusterKey,
    endpoints: &[String],
    what: &str,
    done: impl Fn(&EtcdObservation) -> bool,
) -> EtcdObservation {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let obs = observe(clients, cluster, endpoints).await;
        if done(&obs) {
            return obs;
        }
        assert!(
            Instant::now() < deadline,
            "{what}: last observation {obs:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Who [`observe`] says is primary.
async fn primary(
    clients: &EtcdClients,
    cluster: &ClusterKey,
    endpoints: &[String],
) -> PrimaryObservation {
    observe(clients, cluster, endpoints).await.primary
}

/// Clients that observe cluster `demo`: the clients, their changes and the cluster's key.
fn observer() -> (
    EtcdClients,
    impl Stream<Item = ElectionChange> + Unpin,
    ClusterKey,
) {
    let (clients, changes) = EtcdClients::with_changes();
    (clients, changes, key("demo"))
}

async fn next_change(
    changes: &mut (impl Stream<Item = ElectionChange> + Unpin),
    limit: Duration,
) -> ElectionChange {
    within(limit, "election change", changes.next())
        .await
        .expect("change stream ended")
}

/// The primary of the next change reported.
async fn next_primary(
    changes: &mut (impl Stream<Item = ElectionChange> + Unpin),
    limit: Duration,
) -> Option<String> {
    next_change(changes, limit).await.primary
}

async fn no_change_for(
    changes: &mut (impl Stream<Item = ElectionChange> + Unpin),
    quiet: Duration,
) {
    if let Ok(c) = tokio::time::timeout(quiet, changes.next()).await {
        panic!("unexpected change {c:?}");
    }
}

/// What `etcdctl` says the primary is, with the query from curve-facts.md.
fn etcdctl_primary(etcd: &EtcdCluster, endpoints: &[String]) -> Option<String> {
    let out = etcd.etcdctl(
        endpoints,
        &[
            "get",
            "07leader/",
            "--prefix",
            "--sort-by=CREATE",
            "--order=ASCEND",
            "--limit=1",
        ],
    );
    out.lines().nth(1).map(str::to_string)
}

struct CliRun {
    code: Option<i32>,
    stdout: String,
    stderr: String,
    took: Duration,
}

async fn mds_primary_cli(endpoints: &[String]) -> CliRun {
    let started = Instant::now();
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_curve-operator"))
        .args(["mds-primary", "--etcd-endpoints", &endpoints.join(",")])
        .kill_on_drop(true)
        .output();
    let out = within(Duration::from_secs(30), "curve-operator mds-primary", out)
        .await
        .unwrap();
    CliRun {
        code: out.status.code(),
        stdout: String::from_utf8(out.stdout).unwrap(),
        stderr: String::from_utf8(out.stderr).unwrap(),
        took: started.elapsed(),
    }
}

#[tokio::test]
async fn first_candidate_is_primary() {
    let etcd = EtcdCluster::start(3).await;
    let eps = etcd.endpoints();
    let mut a = MdsStandIn::campaign(&eps, MDS_A).await;
    let _b = MdsStandIn::campaign(&eps, MDS_B).await;
    let _c = MdsStandIn::campaign(&eps, MDS_C).await;

    // The keys look like a Curve MDS's: 07leader/<lease id hex>.
    let keys = etcd.keys("07leader/").await;
    assert_eq!(keys.len(), 3, "{keys:?}");
    assert!(
        keys.iter().any(|(k, _, v)| k == &a.key() && v == MDS_A),
        "{keys:?}"
    );

    let (clients, _changes) = EtcdClients::new();
    let obs = observe(&clients, &key("demo"), &eps).await;
    assert_eq!(obs.primary, elected(MDS_A));
    // etcd agrees: its election service elected A, and the etcdctl query names A.
    a.wait_elected().await;
    assert_eq!(etcdctl_primary(&etcd, &eps).as_deref(), Some(MDS_A));
    assert!(clients.is_watching(&key("demo")));
}

#[tokio::test]
async fn resigning_primary_is_followed_by_the_next() {
    let etcd = EtcdCluster::start(3).await;
    let eps = etcd.endpoints();
    let mut a = MdsStandIn::campaign(&eps, MDS_A).await;
    let mut b = MdsStandIn::campaign(&eps, MDS_B).await;
    let _c = MdsStandIn::campaign(&eps, MDS_C).await;
    let (clients, mut changes, cluster) = observer();
    assert_eq!(primary(&clients, &cluster, &eps).await, elected(MDS_A));

    a.resign().await;
    let change = next_change(&mut changes, Duration::from_secs(5)).await;
    assert_eq!(change.cluster, cluster);
    assert_eq!(change.primary.as_deref(), Some(MDS_B));
    assert_eq!(primary(&clients, &cluster, &eps).await, elected(MDS_B));
    b.wait_elected().await;
}

#[tokio::test]
async fn killed_primary_is_followed_within_the_lease_ttl() {
    let etcd = EtcdCluster::start(3).await;
    let eps = etcd.endpoints();
    let a = MdsStandIn::campaign(&eps, MDS_A).await;
    let mut b = MdsStandIn::campaign(&eps, MDS_B).await;
    let (clients, mut changes, cluster) = observer();
    assert_eq!(primary(&clients, &cluster, &eps).await, elected(MDS_A));

    let last_keepalive = a.last_keepalive();
    let killed = Instant::now();
    a.kill();
    // Nothing was revoked: A stays primary until its lease runs out.
    assert_eq!(primary(&clients, &cluster, &eps).await, elected(MDS_A));

    let change = next_change(&mut changes, LEASE_TTL + Duration::from_secs(5)).await;
    let seen = Instant::now();
    assert_eq!(change.primary.as_deref(), Some(MDS_B));
    // The lease ends TTL after etcd last renewed it; etcd looks for expired leases every 0.5 s
    // and revokes them through raft: allow 1.5 s for that and the watch (about 5.1-5.4 s here).
    let after_renewal = seen - last_keepalive;
    eprintln!(
        "B seen {after_renewal:?} after A's last renewal, {:?} after the kill",
        seen - killed
    );
    assert!(
        after_renewal <= LEASE_TTL + Duration::from_millis(1500),
        "B seen {after_renewal:?} after A's last renewal ({:?} after the kill)",
        seen - killed
    );
    assert!(
        seen - killed > Duration::from_millis(500),
        "A's key went at once: was its lease revoked?"
    );
    assert_eq!(primary(&clients, &cluster, &eps).await, elected(MDS_B));
    b.wait_elected().await;
}

#[tokio::test]
async fn one_member_stopped_the_election_is_still_read() {
    let mut etcd = EtcdCluster::start(3).await;
    let leader = etcd.raft_leader().await;
    let stopped = (leader + 1) % 3;
    let survivors: Vec<usize> = (0..3).filter(|&i| i != stopped).collect();
    let eps = etcd.endpoints();
    // The MDS stand-ins talk to members that stay up, so their leases live on.
    let mut a = MdsStandIn::campaign(&etcd.endpoints_of(&survivors), MDS_A).await;
    let _b = MdsStandIn::campaign(&etcd.endpoints_of(&survivors), MDS_B).await;
    let (clients, mut changes, cluster) = observer();
    assert_eq!(primary(&clients, &cluster, &eps).await, elected(MDS_A));

    etcd.stop(stopped);
    let leader_name = etcd.members[leader].name.clone();
    for _ in 0..5 {
        let obs = observe(&clients, &cluster, &eps).await;
        assert_eq!(obs.primary, elected(MDS_A));
        assert_eq!(
            summary(&obs.members),
            Some((Some(leader_name.clone()), 2, 3))
        );
    }
    // The watch still works (re-established elsewhere if it was on the stopped member).
    a.resign().await;
    assert_eq!(
        next_primary(&mut changes, Duration::from_secs(10))
            .await
            .as_deref(),
        Some(MDS_B)
    );
    let run = mds_primary_cli(&eps).await;
    assert_eq!(
        (run.code, run.stdout.as_str()),
        (Some(0), "127.0.1.2:6700\n"),
        "stderr: {}",
        run.stderr
    );
}

#[tokio::test]
async fn raft_leader_stopped_reads_resume_under_the_new_leader() {
    let mut etcd = EtcdCluster::start(3).await;
    let leader = etcd.raft_leader().await;
    let survivors: Vec<usize> = (0..3).filter(|&i| i != leader).collect();
    let eps = etcd.endpoints();
    let _a = MdsStandIn::campaign(&etcd.endpoints_of(&survivors), MDS_A).await;
    let (clients, _changes) = EtcdClients::new();
    let cluster = key("demo");
    assert_eq!(primary(&clients, &cluster, &eps).await, elected(MDS_A));

    let old_leader = etcd.members[leader].name.clone();
    etcd.stop(leader);
    // Survivors keep naming the stopped leader until their election timeout: wait for a new one.
    let obs = observe_until(&clients, &cluster, &eps, "a new raft leader", |o| {
        o.primary == elected(MDS_A)
            && o.members.as_ref().is_some_and(|m| {
                m.leader.as_ref().is_some_and(|l| *l != old_leader) && m.healthy == 2
            })
    })
    .await;
    let new_leader = obs.members.unwrap().leader.unwrap();
    assert_ne!(new_leader, old_leader);
    assert_eq!(new_leader, etcd.members[etcd.raft_leader().await].name);
}

#[tokio::test]
async fn no_candidate_is_reported_as_such() {
    let etcd = EtcdCluster::start(1).await;
    let eps = etcd.endpoints();
    let (clients, mut changes, cluster) = observer();
    let obs = observe(&clients, &cluster, &eps).await;
    assert_eq!(obs.primary, PrimaryObservation::NoCandidate);
    assert_eq!(summary(&obs.members), Some((Some("etcd-0".into()), 1, 1)));

    // A candidate that comes and resigns leaves no candidate again.
    let mut a = MdsStandIn::campaign(&eps, MDS_A).await;
    assert_eq!(
        next_primary(&mut changes, Duration::from_secs(5))
            .await
            .as_deref(),
        Some(MDS_A)
    );
    a.resign().await;
    assert_eq!(
        next_change(&mut changes, Duration::from_secs(5))
            .await
            .primary,
        None
    );
    assert_eq!(
        primary(&clients, &cluster, &eps).await,
        PrimaryObservation::NoCandidate
    );
}

#[tokio::test]
async fn snapshotclone_candidates_are_ignored() {
    let etcd = EtcdCluster::start(1).await;
    let eps = etcd.endpoints();
    let (clients, mut changes, cluster) = observer();
    assert_eq!(
        primary(&clients, &cluster, &eps).await,
        PrimaryObservation::NoCandidate
    );

    // The SnapshotCloneServer campaigns first: its key has the lowest create revision and
    // shares the "07leader" prefix without the slash.
    let mut snap = MdsStandIn::campaign_in(&eps, SNAPSHOTCLONE_ELECTION, "127.0.1.9:5555").await;
    assert!(snap.key().starts_with(MDS_ELECTION));
    assert_eq!(etcd.keys(MDS_ELECTION).await.len(), 1);
    assert_eq!(
        primary(&clients, &cluster, &eps).await,
        PrimaryObservation::NoCandidate
    );
    assert_eq!(mds_primary_cli(&eps).await.stdout, "none\n");

    let _a = MdsStandIn::campaign(&eps, MDS_A).await;
    assert_eq!(
        next_primary(&mut changes, Duration::from_secs(5))
            .await
            .as_deref(),
        Some(MDS_A)
    );
    assert_eq!(primary(&clients, &cluster, &eps).await, elected(MDS_A));
    assert_eq!(mds_primary_cli(&eps).await.stdout, format!("{MDS_A}\n"));

    // SnapshotClone election changes are no MDS election changes.
    snap.resign().await;
    let _snap2 = MdsStandIn::campaign_in(&eps, SNAPSHOTCLONE_ELECTION, "127.0.1.8:5555").await;
    no_change_for(&mut changes, Duration::from_millis(500)).await;
    assert_eq!(primary(&clients, &cluster, &eps).await, elected(MDS_A));
}

#[tokio::test]
async fn the_watch_reports_every_change_in_order() {
    let etcd = EtcdCluster::start(3).await;
    let eps = etcd.endpoints();
    let (clients, mut changes, cluster) = observer();
    assert_eq!(
        primary(&clients, &cluster, &eps).await,
        PrimaryObservation::NoCandidate
    );

    // Back to back, without waiting for the observer: none → A → B → C → D → none, with
    // followers joining in between (no change of primary).
    let mut a = MdsStandIn::campaign(&eps, MDS_A).await;
    let mut b = MdsStandIn::campaign(&eps, MDS_B).await;
    a.resign().await;
    let mut c = MdsStandIn::campaign(&eps, MDS_C).await;
    b.resign().await;
    let mut d = MdsStandIn::campaign(&eps, MDS_D).await;
    c.resign().await;
    d.resign().await;

    let mut seen = Vec::new();
    let mut revisions = Vec::new();
    for _ in 0..5 {
        let change = next_change(&mut changes, Duration::from_secs(10)).await;
        assert_eq!(change.cluster, cluster);
        seen.push(change.primary);
        revisions.push(change.revision);
    }
    let expected: Vec<Option<String>> = vec![
        Some(MDS_A.into()),
        Some(MDS_B.into()),
        Some(MDS_C.into()),
        Some(MDS_D.into()),
        None,
    ];
    assert_eq!(seen, expected);
    assert!(
        revisions.windows(2).all(|w| w[0] < w[1]),
        "revisions not increasing: {revisions:?}"
    );
    no_change_for(&mut changes, Duration::from_millis(500)).await;
}

#[tokio::test]
async fn unreachable_endpoints_are_named_within_the_time_bound() {
    // Two ports nobody listens on, and one that accepts connections but never answers.
    let refused = vec![
        format!("127.0.0.11:{}", free_port("127.0.0.11")),
        format!("127.0.0.12:{}", free_port("127.0.0.12")),
    ];
    let silent = TcpListener::bind("127.0.0.13:0").unwrap();
    let mut eps = refused.clone();
    eps.push(format!(
        "127.0.0.13:{}",
        silent.local_addr().unwrap().port()
    ));

    let (clients, _changes) = EtcdClients::new();
    let cluster = key("gone");
    let started = Instant::now();
    let obs = observe(&clients, &cluster, &eps).await;
    let took = started.elapsed();
    match &obs.primary {
        PrimaryObservation::Unreachable { endpoints, error } => {
            assert_eq!(endpoints, &eps);
            for ep in &eps {
                assert!(error.contains(ep.as_str()), "{ep} not named in {error:?}");
            }
            assert!(error.contains("refused"), "{error}");
        }
        other => panic!("expected Unreachable, got {other:?}"),
    }
    assert_eq!(obs.members, None);
    assert!(took < OBSERVE_BOUND, "took {took:?}");

    // The watch keeps trying until the cluster is forgotten.
    assert!(clients.is_watching(&cluster));
    clients.forget(&cluster);
    assert!(!clients.is_watching(&cluster));

    // Endpoints that are no host:port are reported, not panicked on.
    let obs = observe(&clients, &key("bad"), &["no-port".to_string()]).await;
    assert!(
        matches!(&obs.primary, PrimaryObservation::Unreachable { error, .. } if error.contains("no-port")),
        "{obs:?}"
    );
    drop(silent);
}

#[tokio::test]
async fn member_health_reports_the_raft_leader_and_healthy_count() {
    let mut etcd = EtcdCluster::start(3).await;
    let eps = etcd.endpoints();
    let (clients, _changes) = EtcdClients::new();
    let cluster = key("demo");

    // etcd's own answer, through etcdctl: the leader's id, mapped to its name.
    let status: serde_json::Value =
        serde_json::from_str(&etcd.etcdctl(&eps, &["endpoint", "status", "-w", "json"])).unwrap();
    let leader_id = status[0]["Status"]["leader"].as_u64().unwrap();
    let list: serde_json::Value =
        serde_json::from_str(&etcd.etcdctl(&eps, &["member", "list", "-w", "json"])).unwrap();
    let leader_name = list["members"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["ID"].as_u64() == Some(leader_id))
        .map(|m| m["name"].as_str().unwrap().to_string())
        .unwrap();
    let obs = observe(&clients, &cluster, &eps).await;
    assert_eq!(
        summary(&obs.members),
        Some((Some(leader_name.clone()), 3, 3))
    );

    // Move the raft leadership and see the new name.
    let ids = etcd.member_ids().await;
    let from = ids.iter().position(|&id| id == leader_id).unwrap();
    let to = (from + 1) % 3;
    etcd.etcdctl(
        &etcd.endpoints_of(&[from]),
        &["move-leader", &format!("{:x}", ids[to])],
    );
    let target = etcd.members[to].name.clone();
    observe_until(&clients, &cluster, &eps, "leader moved", |o| {
        o.members
            .as_ref()
            .is_some_and(|m| m.leader.as_ref() == Some(&target))
    })
    .await;

    // Stop the member that is neither: 2 of 3 healthy, leader unchanged.
    let other = (0..3).find(|&i| i != from && i != to).unwrap();
    etcd.stop(other);
    let obs = observe(&clients, &cluster, &eps).await;
    assert_eq!(summary(&obs.members), Some((Some(target), 2, 3)));
}

#[tokio::test]
async fn quorum_loss_is_reported_within_the_time_bound() {
    let mut etcd = EtcdCluster::start(3).await;
    let eps = etcd.endpoints();
    let _a = MdsStandIn::campaign(&etcd.endpoints_of(&[0]), MDS_A).await;
    let (clients, _changes) = EtcdClients::new();
    let cluster = key("demo");
    assert_eq!(primary(&clients, &cluster, &eps).await, elected(MDS_A));

    etcd.stop(1);
    etcd.stop(2);
    let started = Instant::now();
    let obs = observe(&clients, &cluster, &eps).await;
    assert!(started.elapsed() < OBSERVE_BOUND);
    match &obs.primary {
        PrimaryObservation::QuorumLost { endpoints, error } => {
            assert_eq!(endpoints, &eps);
            assert!(error.contains("1 of 3 endpoints answer"), "{error}");
        }
        other => panic!("expected QuorumLost, got {other:?}"),
    }
    let members = obs.members.expect("the surviving member lists the members");
    assert_eq!(members.total, 3);
    assert!(members.healthy <= 1, "{members:?}");

    // Once the survivor has given up on its leader, it is no longer healthy either.
    observe_until(&clients, &cluster, &eps, "no raft leader", |o| {
        o.members
            .as_ref()
            .is_some_and(|m| m.healthy == 0 && m.leader.is_none())
    })
    .await;

    let run = mds_primary_cli(&eps).await;
    assert_eq!(run.code, Some(1));
    assert!(run.stderr.contains("no quorum"), "{}", run.stderr);
    assert_eq!(run.stdout, "");
}

#[tokio::test]
async fn cli_prints_the_primary_or_none() {
    let etcd = EtcdCluster::start(1).await;
    let eps = etcd.endpoints();
    let run = mds_primary_cli(&eps).await;
    assert_eq!(
        (run.code, run.stdout.as_str(), run.stderr.as_str()),
        (Some(0), "none\n", "")
    );

    let _a = MdsStandIn::campaign(&eps, MDS_A).await;
    let _b = MdsStandIn::campaign(&eps, MDS_B).await;
    let run = mds_primary_cli(&eps).await;
    assert_eq!(
        (run.code, run.stdout.as_str(), run.stderr.as_str()),
        (Some(0), "127.0.1.1:6700\n", "")
    );
}

#[tokio::test]
async fn cli_exits_1_naming_the_endpoints_when_etcd_is_unreachable() {
    let silent = TcpListener::bind("127.0.0.12:0").unwrap();
    let eps = vec![
        format!("127.0.0.11:{}", free_port("127.0.0.11")),
        format!("127.0.0.12:{}", silent.local_addr().unwrap().port()),
    ];
    let run = mds_primary_cli(&eps).await;
    assert_eq!(
        run.code,
        Some(1),
        "stdout {:?} stderr {:?}",
        run.stdout,
        run.stderr
    );
    assert_eq!(run.stdout, "");
    for ep in &eps {
        assert!(
            run.stderr.contains(ep.as_str()),
            "{ep} not named in {:?}",
            run.stderr
        );
    }
    assert!(run.took < Duration::from_secs(10), "took {:?}", run.took);
    drop(silent);
}

#[tokio::test]
async fn cli_watch_prints_one_line_per_change() {
    let etcd = EtcdCluster::start(1).await;
    let eps = etcd.endpoints();
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_curve-operator"))
        .args(["mds-primary", "--watch", "--etcd-endpoints", &eps.join(",")])
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut next_line = async || {
        within(Duration::from_secs(10), "a line", lines.next_line())
            .await
            .unwrap()
    };

    assert_eq!(next_line().await.as_deref(), Some("none"));
    let mut a = MdsStandIn::campaign(&eps, MDS_A).await;
    assert_eq!(next_line().await.as_deref(), Some(MDS_A));
    let mut b = MdsStandIn::campaign(&eps, MDS_B).await; // a follower: no line
    a.resign().await;
    assert_eq!(next_line().await.as_deref(), Some(MDS_B));
    b.resign().await;
    assert_eq!(next_line().await.as_deref(), Some("none"));
    assert!(
        child.try_wait().unwrap().is_none(),
        "--watch must keep running"
    );
    child.kill().await.unwrap();
}

#[tokio::test]
async fn forget_stops_the_watch() {
    let etcd = EtcdCluster::start(1).await;
    let eps = etcd.endpoints();
    let (clients, mut changes) = EtcdClients::with_changes();
    let (kept, forgotten) = (key("kept"), key("forgotten"));
    observe(&clients, &kept, &eps).await;
    observe(&clients, &forgotten, &eps).await;
    assert!(clients.is_watching(&forgotten));

    clients.forget(&forgotten);
    assert!(!clients.is_watching(&forgotten));
    assert!(clients.is_watching(&kept));
    let _a = MdsStandIn::campaign(&eps, MDS_A).await;
    let change = next_change(&mut changes, Duration::from_secs(5)).await;
    assert_eq!(
        (change.cluster, change.primary.as_deref()),
        (kept, Some(MDS_A))
    );
    no_change_for(&mut changes, Duration::from_millis(500)).await;
}

#[tokio::test]
async fn a_changed_endpoint_set_replaces_the_watch() {
    let mut etcd = EtcdCluster::start(3).await;
    let (clients, mut changes, cluster) = observer();
    observe(&clients, &cluster, &etcd.endpoints_of(&[0])).await;
    // The cluster's etcd now answers at members 1 and 2 only: the watch must move there.
    observe(&clients, &cluster, &etcd.endpoints_of(&[2, 1])).await;
    etcd.stop(0);
    let _a = MdsStandIn::campaign(&etcd.endpoints_of(&[1, 2]), MDS_A).await;
    assert_eq!(
        next_primary(&mut changes, Duration::from_secs(5))
            .await
            .as_deref(),
        Some(MDS_A)
    );
}

#[tokio::test]
async fn the_watch_comes_back_after_etcd_restarts() {
    let mut etcd = EtcdCluster::start(1).await;
    let eps = etcd.endpoints();
    let (clients, mut changes, cluster) = observer();
    assert_eq!(
        primary(&clients, &cluster, &eps).await,
        PrimaryObservation::NoCandidate
    );

    etcd.stop(0);
    match observe(&clients, &cluster, &eps).await.primary {
        PrimaryObservation::Unreachable { .. } => {}
        other => panic!("expected Unreachable, got {other:?}"),
    }
    etcd.restart(0).await;
    let _a = MdsStandIn::campaign(&eps, MDS_A).await;
    // Re-established with backoff (at most 5 s between attempts).
    assert_eq!(
        next_primary(&mut changes, Duration::from_secs(15))
            .await
            .as_deref(),
        Some(MDS_A)
    );
    assert_eq!(primary(&clients, &cluster, &eps).await, elected(MDS_A));
}

#[tokio::test]
async fn cli_logic_runs_in_process_until_stopped() {
    let etcd = EtcdCluster::start(1).await;
    let eps = etcd.endpoints();
    let (mut out, mut err) = (Vec::new(), Vec::new());
    // `stop` is first polled after the first line is printed: the changes come after it.
    let changes_then_stop = async {
        let mut a = MdsStandIn::campaign(&eps, MDS_A).await;
        a.resign().await;
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    let code = within(
        Duration::from_secs(20),
        "run_mds_primary",
        run_mds_primary(eps.clone(), true, &mut out, &mut err, changes_then_stop),
    )
    .await;
    assert_eq!(format!("{code:?}"), format!("{:?}", ExitCode::SUCCESS));
    assert_eq!(
        String::from_utf8(out).unwrap(),
        format!("none\n{MDS_A}\nnone\n")
    );
    assert_eq!(String::from_utf8(err).unwrap(), "");
}

/// No endpoint is not an unreachable etcd at "": nothing is dialed and nothing is watched,
/// and the command says what is missing.
#[tokio::test]
async fn no_endpoint_is_reported_as_such() {
    let (clients, _changes) = EtcdClients::new();
    let cluster = key("unaddressed");
    let obs = observe(&clients, &cluster, &[]).await;
    assert_eq!(obs.primary, PrimaryObservation::NoEndpoint);
    assert_eq!(obs.members, None);
    assert!(!clients.is_watching(&cluster));

    let (mut out, mut err) = (Vec::new(), Vec::new());
    let code = run_mds_primary(vec![], false, &mut out, &mut err, async {}).await;
    assert_eq!(format!("{code:?}"), format!("{:?}", ExitCode::FAILURE));
    assert!(out.is_empty());
    assert_eq!(
        String::from_utf8(err).unwrap(),
        "no etcd endpoint given: pass --etcd-endpoints HOST:PORT[,...]\n"
    );
}

/// (leader, healthy, total) of a member reading.
fn summary(members: &Option<MemberHealth>) -> Option<(Option<String>, u32, u32)> {
    members
        .as_ref()
        .map(|m| (m.leader.clone(), m.healthy, m.total))
}
