//! The verdict on a model cluster: three ChunkServers, one logical pool, every copyset on all
//! three, leaders spread; pages in braft's exact format (raft_stat::tests), parsed.

use super::*;
use crate::curve::raft_stat::parse_raft_stat;
use crate::curve::raft_stat::tests::{IDLE, follower_block, leader_block};
use crate::curve::topology::{AllocateStatus, DiskState, LogicalPoolType};

const ELECTED: &str = "10.0.0.10:6666";

fn addr(i: usize) -> String {
    format!("10.0.0.{}:8200", i + 1)
}

fn peer(i: usize) -> String {
    format!("{}:0", addr(i))
}

fn group(copyset: u32) -> u64 {
    (1u64 << 32) | u64::from(copyset)
}

fn id(copyset: u32) -> CopysetId {
    CopysetId {
        logical_pool: 1,
        copyset,
    }
}

fn leader_of(copyset: u32) -> usize {
    (copyset as usize - 1) % 3
}

/// The block ChunkServer `i` prints for a healthy copyset.
fn healthy_block(copyset: u32, i: usize) -> String {
    let leader = leader_of(copyset);
    if i == leader {
        let followers: Vec<(String, &str)> = (0..3)
            .filter(|j| *j != i)
            .map(|j| (peer(j), IDLE))
            .collect();
        let followers: Vec<(&str, &str)> =
            followers.iter().map(|(p, t)| (p.as_str(), *t)).collect();
        leader_block(group(copyset), &peer(i), &followers, 2580)
    } else {
        let peers: Vec<String> = (0..3).map(peer).collect();
        let peers: Vec<&str> = peers.iter().map(String::as_str).collect();
        follower_block(group(copyset), &peer(i), &peers, &peer(leader))
    }
}

/// Pages of a healthy cluster with `n` copysets, per ChunkServer.
fn pages(n: u32) -> Vec<String> {
    (0..3)
        .map(|i| (1..=n).map(|c| healthy_block(c, i)).collect())
        .collect()
}

fn chunkserver(i: usize) -> ChunkServerInfo {
    ChunkServerInfo {
        chunk_server_id: i as u32 + 1,
        disk_type: "nvme".into(),
        host_ip: format!("10.0.0.{}", i + 1),
        port: 8200,
        status: ChunkServerStatus::READWRITE,
        disk_status: DiskState::DISKNORMAL,
        online_state: OnlineState::ONLINE,
        mount_point: "local://./0/".into(),
        disk_capacity: 100 << 30,
        disk_used: 10 << 30,
        external_ip: None,
    }
}

fn location(i: usize) -> ChunkServerLocation {
    ChunkServerLocation {
        chunk_server_id: i as u32 + 1,
        host_ip: format!("10.0.0.{}", i + 1),
        port: 8200,
        external_ip: None,
    }
}

fn mds(i: usize, role: MdsRole) -> MdsReading {
    let listen = format!("10.0.0.{}:6666", 10 + i);
    MdsReading {
        dummy_addr: format!("10.0.0.{}:6667", 10 + i),
        answer: Ok(MdsDummyAnswer {
            role,
            listen_addr: listen.clone(),
        }),
        listen_addr: listen,
    }
}

fn reading(n: u32, pages: &[String]) -> CurveReading {
    let topology = TopologyReading {
        physical_pools: vec![PhysicalPoolInfo {
            physical_pool_id: 1,
            physical_pool_name: "pool1".into(),
            desc: Some(String::new()),
        }],
        logical_pools: vec![LogicalPoolInfo {
            logical_pool_id: 1,
            logical_pool_name: "pool1".into(),
            physical_pool_id: 1,
            pool_type: LogicalPoolType::PAGEFILE,
            create_time: 0,
            allocate_status: AllocateStatus::ALLOW,
        }],
        servers: Vec::new(),
        chunkservers: (0..3).map(chunkserver).collect(),
        copysets: (1..=n)
            .map(|c| CopysetInfo {
                logical_pool_id: 1,
                copyset_id: c,
            })
            .collect(),
        members: (1..=n)
            .map(|c| (id(c), (0..3).map(location).collect()))
            .collect(),
        space: BTreeMap::from([(
            "pool1".to_string(),
            PoolSpace {
                chunk_total: Some(300 << 30),
                chunk_used: Some(30 << 30),
                logical_capacity: Some(100 << 30),
                logical_alloc: Some(40 << 30),
            },
        )]),
        operators: Some(0),
    };
    CurveReading {
        elected: Some(ELECTED.into()),
        mds: vec![
            mds(0, MdsRole::Leader),
            mds(1, MdsRole::Follower),
            mds(2, MdsRole::Follower),
        ],
        topology: Ok(topology),
        raft: (pages.iter().enumerate())
            .map(|(i, p)| (addr(i), Ok(parse_raft_stat(p).unwrap())))
            .collect(),
    }
}

fn unreachable(endpoint: &str) -> CallError {
    CallError::Unreachable {
        endpoint: endpoint.into(),
        reason: "connect: Connection refused (os error 111)".into(),
    }
}

fn bad(endpoint: &str, reason: &str) -> CallError {
    CallError::BadAnswer {
        endpoint: endpoint.into(),
        reason: reason.into(),
    }
}

fn problems(health: &Health) -> Vec<Problem> {
    match &health.verdict {
        Verdict::Unhealthy { problems } => problems.clone(),
        other => panic!("not unhealthy: {other:?}"),
    }
}

fn copysets_problem(problem: CopysetProblem, ids: &[u32], chunkservers: &[String]) -> Problem {
    Problem::Copysets {
        problem,
        count: ids.len(),
        first: ids.iter().take(5).map(|c| id(*c)).collect(),
        chunkservers: chunkservers.to_vec(),
    }
}

fn judge(r: &CurveReading) -> Health {
    verdict(r, &Rules::default())
}

#[test]
fn a_healthy_cluster() {
    let health = judge(&reading(6, &pages(6)));
    assert_eq!(
        health,
        Health {
            verdict: Verdict::Healthy,
            copysets: Some(CopysetCounts {
                total: 6,
                ..Default::default()
            }),
            chunkservers: Some(ChunkServerCounts {
                online: 3,
                readwrite: 3,
                ..Default::default()
            }),
            pools: vec![PoolReport {
                id: 1,
                name: "pool1".into(),
                space: Some(PoolSpace {
                    chunk_total: Some(300 << 30),
                    chunk_used: Some(30 << 30),
                    logical_capacity: Some(100 << 30),
                    logical_alloc: Some(40 << 30),
                }),
            }],
        }
    );
    assert!(health.is_healthy());
}

#[test]
fn a_stopped_chunkserver_makes_every_copyset_minority_offline() {
    let mut r = reading(6, &pages(6));
    r.raft.insert(
        addr(1),
        Err(unreachable("10.0.0.2:8200/raft_stat?console=1")),
    );
    let health = judge(&r);
    assert_eq!(
        problems(&health),
        vec![copysets_problem(
            CopysetProblem::MinorityPeerNotOnline,
            &[1, 2, 3, 4, 5, 6],
            &[addr(1)]
        )]
    );
    let counts = health.copysets.unwrap();
    assert_eq!(
        (counts.total, counts.unhealthy, counts.healthy()),
        (6, 6, 0)
    );
}

#[test]
fn two_stopped_chunkservers_are_a_majority() {
    let mut r = reading(3, &pages(3));
    r.raft.insert(addr(1), Err(unreachable("b")));
    r.raft.insert(addr(2), Err(unreachable("c")));
    assert_eq!(
        problems(&judge(&r)),
        vec![copysets_problem(
            CopysetProblem::MajorityPeerNotOnline,
            &[1, 2, 3],
            &[addr(1), addr(2)]
        )]
    );
}

/// Replaces copyset `c`'s block on ChunkServer `i`.
fn with_block(mut pages: Vec<String>, c: u32, i: usize, block: String) -> Vec<String> {
    pages[i] = pages[i].replace(&healthy_block(c, i), &block);
    pages
}

#[test]
fn a_leader_with_too_few_peers() {
    // Copyset 1 is led by ChunkServer 0; its configuration lost a member.
    let block = leader_block(group(1), &peer(0), &[(&peer(1), IDLE)], 2580);
    let r = reading(3, &with_block(pages(3), 1, 0, block));
    assert_eq!(
        problems(&judge(&r)),
        vec![copysets_problem(
            CopysetProblem::PeersNotSufficient,
            &[1],
            &[addr(0)]
        )]
    );
    // One replica asked for: two peers are enough.
    let block = leader_block(group(1), &peer(0), &[(&peer(1), IDLE)], 2580);
    let r = reading(3, &with_block(pages(3), 1, 0, block));
    assert!(
        verdict(
            &r,
            &Rules {
                replicas: 2,
                margin: 1000
            }
        )
        .is_healthy()
    );
}

#[test]
fn a_peer_that_does_not_hold_the_group_is_not_online() {
    // ChunkServer 2 answers but lost copyset 1.
    let r = reading(3, &with_block(pages(3), 1, 2, String::new()));
    let health = judge(&r);
    assert_eq!(
        problems(&health),
        vec![copysets_problem(
            CopysetProblem::MinorityPeerNotOnline,
            &[1],
            &[addr(2)]
        ),]
    );
}

#[test]
fn the_log_gap_margin() {
    let lagging = |next: i64, flying: i64| {
        let tail =
            format!("next_index={next}  flying_append_entries_size={flying} idle hc=1 ac=2 ic=0");
        let block = leader_block(
            group(1),
            &peer(0),
            &[(&peer(1), IDLE), (&peer(2), &tail)],
            2580,
        );
        judge(&reading(3, &with_block(pages(3), 1, 0, block)))
    };
    // gap = 2580 - (1581 - 1 - 0) = 1000: at the margin, healthy.
    assert!(lagging(1581, 0).is_healthy());
    // 1001: too big.
    assert_eq!(
        problems(&lagging(1580, 0)),
        vec![copysets_problem(
            CopysetProblem::LogIndexGapTooBig,
            &[1],
            &[addr(2)]
        )]
    );
    // Entries in flight count as sent: 2580 - (1580 - 1 - 5) = 1006.
    assert!(!lagging(1580, 5).is_healthy());
    // A follower "ahead" of the leader underflows Curve's u64 arithmetic: too big.
    assert!(!lagging(2600, 0).is_healthy());
}

#[test]
fn a_snapshot_being_installed() {
    let tail =
        "next_index=10  flying_append_entries_size=0 installing snapshot {2000, 2} hc=1 ac=2 ic=1";
    let block = leader_block(
        group(1),
        &peer(0),
        &[(&peer(1), IDLE), (&peer(2), tail)],
        2580,
    );
    assert_eq!(
        problems(&judge(&reading(3, &with_block(pages(3), 1, 0, block)))),
        vec![copysets_problem(
            CopysetProblem::InstallingSnapshot,
            &[1],
            &[addr(2)]
        )]
    );
}

fn leaderless(i: usize) -> String {
    let peers: Vec<String> = (0..3).map(peer).collect();
    let peers: Vec<&str> = peers.iter().map(String::as_str).collect();
    follower_block(
        group(1),
        &peer(i),
        &peers,
        crate::curve::raft_stat::NO_LEADER,
    )
}

#[test]
fn followers_without_a_leader() {
    // Copyset 1's leader block gone from ChunkServer 0 (it holds it as a follower with no
    // leader now), the others too: no leader.
    let mut p = pages(3);
    for i in 0..3 {
        p = with_block(p, 1, i, leaderless(i));
    }
    assert_eq!(
        problems(&judge(&reading(3, &p))),
        vec![copysets_problem(
            CopysetProblem::NoLeader,
            &[1],
            &[addr(0), addr(1), addr(2)]
        )]
    );
    // Two of its peers down: majority not online, named by the one that answers.
    let mut r = reading(3, &p);
    r.raft.insert(addr(1), Err(unreachable("b")));
    r.raft.insert(addr(2), Err(unreachable("c")));
    let found = problems(&judge(&r));
    assert_eq!(
        found,
        vec![copysets_problem(
            CopysetProblem::MajorityPeerNotOnline,
            &[1, 2, 3],
            &[addr(1), addr(2)]
        )]
    );
}

#[test]
fn a_leaderless_follower_the_mds_does_not_place_there_is_ignored() {
    let mut r = reading(
        3,
        &with_block(
            pages(3),
            2,
            1,
            leaderless(1).replace("[4294967297]", "[4294967298]"),
        ),
    );
    if let Ok(t) = &mut r.topology {
        t.members
            .get_mut(&id(2))
            .unwrap()
            .retain(|l| l.chunk_server_id != 2);
    }
    assert!(judge(&r).is_healthy(), "{:?}", judge(&r).verdict);
}

#[test]
fn elections_and_broken_nodes() {
    let state = |s: &str| {
        let block = healthy_block(1, 1).replace("state: FOLLOWER", &format!("state: {s}"));
        judge(&reading(3, &with_block(pages(3), 1, 1, block)))
    };
    for s in ["CANDIDATE", "TRANSFERRING"] {
        assert_eq!(
            problems(&state(s)),
            vec![copysets_problem(CopysetProblem::NoLeader, &[1], &[addr(1)])]
        );
    }
    let found = problems(&state("ERROR"));
    assert_eq!(
        found,
        vec![copysets_problem(
            CopysetProblem::State(RaftStateName("ERROR")),
            &[1],
            &[addr(1)]
        )]
    );
    assert_eq!(
        CopysetProblem::State(RaftStateName("ERROR")).reason(),
        "StateError"
    );
    assert_eq!(
        CopysetProblem::State(RaftStateName("ERROR")).to_string(),
        "state ERROR"
    );
}

#[test]
fn a_chunkserver_without_copysets_and_a_list_that_differs_from_the_mds() {
    let mut p = pages(3);
    p.push(String::new());
    let mut r = reading(3, &p);
    if let Ok(t) = &mut r.topology {
        let mut extra = chunkserver(3);
        extra.host_ip = "10.0.0.4".into();
        t.chunkservers.push(extra);
        t.copysets.push(CopysetInfo {
            logical_pool_id: 1,
            copyset_id: 9,
        });
    }
    assert_eq!(
        problems(&judge(&r)),
        vec![
            Problem::NoCopysets {
                chunkserver: addr(3)
            },
            Problem::CopysetsDifferFromMds {
                only_in_mds: vec![id(9)],
                not_in_mds: vec![]
            },
        ]
    );
}

#[test]
fn retired_chunkservers_are_not_asked_but_counted() {
    let mut r = reading(3, &pages(3));
    if let Ok(t) = &mut r.topology {
        let mut retired = chunkserver(5);
        retired.status = ChunkServerStatus::RETIRED;
        retired.online_state = OnlineState::OFFLINE;
        t.chunkservers.push(retired);
        t.chunkservers[0].online_state = OnlineState::UNSTABLE;
        t.chunkservers[1].status = ChunkServerStatus::PENDDING;
    }
    let health = judge(&r);
    assert!(health.is_healthy());
    assert_eq!(
        health.chunkservers,
        Some(ChunkServerCounts {
            online: 2,
            unstable: 1,
            offline: 0,
            readwrite: 2,
            pendding: 1,
            retired: 1
        })
    );
}

#[test]
fn the_mds_rules() {
    let with = |change: &dyn Fn(&mut CurveReading)| {
        let mut r = reading(3, &pages(3));
        change(&mut r);
        judge(&r)
    };
    assert_eq!(
        problems(&with(&|r| r.mds[1] = mds(1, MdsRole::Leader))),
        vec![Problem::MdsLeaders {
            leaders: vec![ELECTED.into(), "10.0.0.11:6666".into()]
        }]
    );
    assert_eq!(
        problems(&with(&|r| r.mds[0] = mds(0, MdsRole::Follower))),
        vec![Problem::MdsLeaders { leaders: vec![] }]
    );
    assert_eq!(
        problems(&with(
            &|r| r.mds[2].answer = Err(unreachable("10.0.0.12:6667/vars"))
        )),
        vec![Problem::MdsOffline {
            mds: "10.0.0.12:6666".into(),
            why: "its dummy port 10.0.0.12:6667: connect: Connection refused (os error 111)".into()
        }]
    );
    assert_eq!(
        problems(&with(
            &|r| r.mds[1].answer.as_mut().unwrap().listen_addr = "127.0.0.1:6666".into()
        )),
        vec![Problem::MdsOffline {
            mds: "10.0.0.11:6666".into(),
            why: "its dummy port 10.0.0.11:6667 says it listens on 127.0.0.1:6666".into()
        }]
    );
    assert_eq!(
        problems(&with(&|r| r.elected = Some("10.0.0.11:6666".into()))),
        vec![Problem::ElectionDisagrees {
            elected: "10.0.0.11:6666".into(),
            leader: ELECTED.into()
        }]
    );
}

#[test]
fn bad_answers_make_the_verdict_unknown_naming_the_endpoint() {
    let with = |change: &dyn Fn(&mut CurveReading)| {
        let mut r = reading(3, &pages(3));
        change(&mut r);
        judge(&r).verdict
    };
    let unknown = |endpoint: &str, reason: &str| Verdict::Unknown {
        endpoint: endpoint.into(),
        reason: reason.into(),
    };
    // No primary in etcd.
    assert_eq!(
        with(&|r| r.elected = None),
        unknown("etcd", "no MDS holds the election key (07leader/)")
    );
    // The primary's listen port: refused, timed out, HTTP 500, garbled, unknown enum.
    let topo = "10.0.0.10:6666/curve.mds.topology.TopologyService/ListChunkServer";
    for e in [
        unreachable(topo),
        CallError::Unreachable {
            endpoint: topo.into(),
            reason: "no answer within 2000 ms".into(),
        },
        bad(
            topo,
            "HTTP 500: brpc error 2002: Fail to convert response to json",
        ),
        bad(
            topo,
            "ListChunkServerResponse does not read: EOF while parsing an object at line 1 column 40",
        ),
        bad(
            topo,
            "ListChunkServerResponse does not read: unknown OnlineState \"SLEEPING\" at line 1 column 200",
        ),
    ] {
        assert_eq!(
            with(&|r| r.topology = Err(e.clone())),
            unknown(e.endpoint(), e.reason())
        );
    }
    // A ChunkServer's page that does not parse, or a peer never read.
    let page = "10.0.0.2:8200/raft_stat?console=1";
    assert_eq!(
        with(&|r| {
            r.raft.insert(
                addr(1),
                Err(bad(page, "group 4294967297 (copyset 1/1): no `state` line")),
            );
        }),
        unknown(page, "group 4294967297 (copyset 1/1): no `state` line")
    );
    assert_eq!(
        with(&|r| {
            r.raft.remove(&addr(2));
        }),
        unknown(
            "10.0.0.3:8200/raft_stat?console=1",
            "its /raft_stat was not read"
        )
    );
    // An MDS dummy port answering something unreadable.
    let dummy = "10.0.0.11:6667/vars/mds_status,mds_config_mds_listen_addr?console=1";
    assert_eq!(
        with(&|r| r.mds[1].answer = Err(bad(
            dummy,
            "mds_status: \"primary\" is neither \"leader\" nor \"follower\""
        ))),
        unknown(
            dummy,
            "mds_status: \"primary\" is neither \"leader\" nor \"follower\""
        )
    );
}

#[test]
fn a_dead_primary_before_its_key_lapses() {
    let mut r = reading(3, &pages(3));
    assert_eq!(primary_unreachable(&r), None);
    r.mds[0].answer = Err(unreachable("10.0.0.10:6667/vars"));
    r.topology = Err(unreachable(
        "10.0.0.10:6666/curve.mds.topology.TopologyService/ListPhysicalPool",
    ));
    assert_eq!(primary_unreachable(&r), Some(ELECTED));
    let health = judge(&r);
    assert!(
        matches!(health.verdict, Verdict::Unknown { ref endpoint, .. } if endpoint.starts_with("10.0.0.10:6666/"))
    );
    assert_eq!((health.copysets, health.chunkservers), (None, None));
}

fn checked() -> Time {
    Time("2025-01-01T00:00:00Z".parse().unwrap())
}

#[test]
fn the_status_block() {
    let mut r = reading(7, &pages(7));
    r.raft.insert(addr(1), Err(unreachable("b")));
    let status = health_status(&judge(&r), checked());
    assert_eq!(
        status,
        HealthStatus {
            verdict: HealthVerdict::Unhealthy,
            message: Some(
                "7 copysets minority peer not online (1/1 1/2 1/3 1/4 1/5 …) on 10.0.0.2:8200"
                    .into()
            ),
            copysets: Some(CopysetHealthStatus {
                total: 7,
                healthy: 0,
                unhealthy: 7,
                problems: vec![CopysetProblemStatus {
                    reason: "MinorityPeerNotOnline".into(),
                    count: 7,
                    copysets: vec![
                        "1/1".into(),
                        "1/2".into(),
                        "1/3".into(),
                        "1/4".into(),
                        "1/5".into()
                    ],
                    chunkservers: vec![addr(1)],
                }],
            }),
            chunkservers: Some(ChunkServerHealthStatus {
                online: 3,
                readwrite: 3,
                ..Default::default()
            }),
            logical_pools: vec![LogicalPoolSpaceStatus {
                name: "pool1".into(),
                capacity_bytes: Some(100 << 30),
                allocated_bytes: Some(40 << 30),
                used_bytes: Some(30 << 30),
                physical_bytes: Some(300 << 30),
            }],
            last_checked: Some(checked()),
        }
    );
    let unknown = health_status(&judge(&reading_with_no_primary()), checked());
    assert_eq!(unknown.verdict, HealthVerdict::Unknown);
    assert_eq!(
        unknown.message.as_deref(),
        Some("etcd: no MDS holds the election key (07leader/)")
    );
}

fn reading_with_no_primary() -> CurveReading {
    let mut r = reading(3, &pages(3));
    r.elected = None;
    r.topology = Err(CallError::Unreachable {
        endpoint: "etcd".into(),
        reason: "no MDS holds the election key (07leader/)".into(),
    });
    r
}

#[test]
fn only_real_changes_call_for_a_status_write() {
    let base = health_status(&judge(&reading(3, &pages(3))), checked());
    assert!(health_changed(None, &base));
    let mut later = base.clone();
    later.last_checked = Some(Time("2025-01-01T00:00:30Z".parse().unwrap()));
    assert!(!health_changed(Some(&base), &later), "the time alone");
    let capacity = base.logical_pools[0].allocated_bytes.unwrap();
    later.logical_pools[0].allocated_bytes = Some(capacity + capacity / 200);
    assert!(!health_changed(Some(&base), &later), "0.5 %");
    later.logical_pools[0].allocated_bytes = Some(capacity + capacity / 50);
    assert!(health_changed(Some(&base), &later), "2 %");
    let mut counts = base.clone();
    counts.copysets.as_mut().unwrap().total += 1;
    assert!(health_changed(Some(&base), &counts));
}
