//! PURE: one round's readings of a Curve cluster → the verdict Curve's own
//! `curve_ops_tool status` gives (C:src/tools/status_tool.cpp `IsClusterHeatlhy` l.471-496),
//! without its etcd part (the operator reads etcd itself) and its SnapshotCloneServer part
//! (none is deployed).
//!
//! - Copysets: `CopysetCheckCore::CheckCopysetsInCluster` (C:src/tools/copyset_check_core.cpp
//!   l.387-423 and what it calls, cited per rule below), with its default flags `replicasNum=3`
//!   and `margin=1000` (l.25-26).
//! - MDS: exactly one MDS says `leader` on its dummy port (C:src/tools/mds_client.cpp
//!   l.887-904), every MDS online = its dummy port answers and names the listen address it is
//!   configured with (l.826-839), status_tool.cpp l.498-543. Added: the MDS etcd's election
//!   names is that leader.
//!
//! An answer that cannot be used makes the verdict [`Verdict::Unknown`] naming the endpoint; a
//! daemon that does not answer is judged as Curve judges it (a ChunkServer not online, an MDS
//! offline), except the elected MDS's listen port, without which nothing can be judged.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use fnv::{FnvHashMap, FnvHashSet};

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

use super::CallError;
use super::raft_stat::{CopysetId, RaftNode, RaftState, ReplicatorState, peer_address};
use super::topology::{
    ChunkServerInfo, ChunkServerLocation, ChunkServerStatus, CopysetInfo, LogicalPoolInfo,
    OnlineState, PhysicalPoolInfo, ServerInfo,
};
use super::vars::{MdsDummyAnswer, MdsRole, PoolSpace};
use crate::api::{
    ChunkServerHealthStatus, CopysetHealthStatus, CopysetProblemStatus, HealthStatus,
    HealthVerdict, LogicalPoolSpaceStatus,
};
use crate::util::{SHOWN_ITEMS, first_of};

/// What one MDS's dummy port said.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MdsReading {
    /// The `ip:port` this MDS is configured to listen on (its `mds.listen.addr`).
    pub listen_addr: String,
    /// `ip:port` of its dummy port.
    pub dummy_addr: String,
    pub answer: Result<MdsDummyAnswer, CallError>,
}

/// What the elected MDS's listen port said.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct TopologyReading {
    pub physical_pools: Vec<PhysicalPoolInfo>,
    pub logical_pools: Vec<LogicalPoolInfo>,
    pub servers: Vec<ServerInfo>,
    /// Every ChunkServer of every server, RETIRED ones too.
    pub chunkservers: Vec<ChunkServerInfo>,
    /// `GetCopySetsInCluster`.
    pub copysets: Vec<CopysetInfo>,
    /// `GetChunkServerListInCopySets` of every copyset: its members as the MDS records them.
    pub members: BTreeMap<CopysetId, Vec<ChunkServerLocation>>,
    /// The space bvars of each logical pool, by pool name; absent when they could not be read.
    pub space: BTreeMap<String, PoolSpace>,
    /// Schedule operators in flight (`mds_scheduler_metric_operator_num`); `None` when it
    /// could not be read.
    pub operators: Option<u64>,
}

/// Everything read in one round.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CurveReading {
    /// The primary's `ip:port` as etcd's election names it; `None`: nobody holds the key.
    pub elected: Option<String>,
    /// Every MDS's dummy port.
    pub mds: Vec<MdsReading>,
    /// The elected MDS's topology and copysets.
    pub topology: Result<TopologyReading, CallError>,
    /// Each ChunkServer's `/raft_stat`, by `ip:port`: every ChunkServer of the topology
    /// that is not RETIRED, and every peer the copysets name.
    pub raft: BTreeMap<String, Result<Vec<RaftNode>, CallError>>,
}

/// The two thresholds of Curve's copyset check (C:src/tools/copyset_check_core.cpp l.25-26).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rules {
    /// `replicasNum`: a leader with fewer peers is unhealthy.
    pub replicas: usize,
    /// `margin`: the most a follower's log may lag the leader's.
    pub margin: u64,
}

impl Default for Rules {
    fn default() -> Self {
        Rules {
            replicas: 3,
            margin: 1000,
        }
    }
}

/// Why a copyset is unhealthy: the categories of CopysetCheckCore
/// (C:src/tools/copyset_check_core.h l.96-102, and `"state " + state`, .cpp l.236-240).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum CopysetProblem {
    PeersNotSufficient,
    MinorityPeerNotOnline,
    MajorityPeerNotOnline,
    LogIndexGapTooBig,
    InstallingSnapshot,
    NoLeader,
    /// A raft node in ERROR, UNINITIALIZED, SHUTTING, SHUTDOWN (or braft's UNKNOWN).
    State(RaftStateName),
}

/// A raft state as an ordered key.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RaftStateName(pub &'static str);

impl CopysetProblem {
    /// The reason as the status shows it.
    pub fn reason(self) -> String {
        match self {
            CopysetProblem::PeersNotSufficient => "PeersNotSufficient".into(),
            CopysetProblem::MinorityPeerNotOnline => "MinorityPeerNotOnline".into(),
            CopysetProblem::MajorityPeerNotOnline => "MajorityPeerNotOnline".into(),
            CopysetProblem::LogIndexGapTooBig => "LogIndexGapTooBig".into(),
            CopysetProblem::InstallingSnapshot => "InstallingSnapshot".into(),
            CopysetProblem::NoLeader => "NoLeader".into(),
            CopysetProblem::State(s) => format!("State{}", capitalized(s.0)),
        }
    }
}

/// Curve's own words for it.
impl fmt::Display for CopysetProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CopysetProblem::PeersNotSufficient => f.write_str("peers not sufficient"),
            CopysetProblem::MinorityPeerNotOnline => f.write_str("minority peer not online"),
            CopysetProblem::MajorityPeerNotOnline => f.write_str("majority peer not online"),
            CopysetProblem::LogIndexGapTooBig => f.write_str("index gap too big"),
            CopysetProblem::InstallingSnapshot => f.write_str("installing snapshot"),
            CopysetProblem::NoLeader => f.write_str("no leader"),
            CopysetProblem::State(s) => write!(f, "state {}", s.0),
        }
    }
}

fn capitalized(upper: &str) -> String {
    let lower = upper.to_ascii_lowercase();
    let mut chars = lower.chars();
    chars.next().map_or_else(String::new, |c| {
        c.to_ascii_uppercase().to_string() + chars.as_str()
    })
}

/// The copysets with one problem, and the ChunkServers (`ip:port`) involved: the peers not
/// online, the node that reports the state, the lagging or snapshot-receiving follower.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct ProblemCopysets {
    pub copysets: BTreeSet<CopysetId>,
    pub chunkservers: BTreeSet<String>,
}

/// The copysets' counts.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct CopysetCounts {
    /// Every copyset the ChunkServers report, and those of unreachable ChunkServers
    /// (C:src/tools/copyset_check_core.cpp l.185, l.798).
    pub total: usize,
    /// Copysets in at least one problem (`GetCopysetStatistics`, l.802-817).
    pub unhealthy: usize,
    pub problems: BTreeMap<CopysetProblem, ProblemCopysets>,
    /// In the MDS's list, reported by no ChunkServer (l.447-460).
    pub only_in_mds: BTreeSet<CopysetId>,
    /// Reported by a ChunkServer, not in the MDS's list (l.461-474).
    pub not_in_mds: BTreeSet<CopysetId>,
    /// ChunkServers that answer with no copyset (l.171-176).
    pub no_copysets: BTreeSet<String>,
}

impl CopysetCounts {
    pub fn healthy(&self) -> usize {
        self.total - self.unhealthy
    }
}

/// ChunkServers by the MDS's view of them.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct ChunkServerCounts {
    /// By `onlineState`, RETIRED ones left out (the tool lists no RETIRED ChunkServer,
    /// C:src/tools/mds_client.cpp l.587-614).
    pub online: usize,
    pub unstable: usize,
    pub offline: usize,
    /// By `status`, all.
    pub readwrite: usize,
    pub pendding: usize,
    pub retired: usize,
}

/// One logical pool's space.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PoolReport {
    pub id: u32,
    pub name: String,
    pub space: Option<PoolSpace>,
}

/// Something that makes the cluster unhealthy.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Problem {
    /// Copysets in one of Curve's categories: how many, the first few, the ChunkServers
    /// involved.
    Copysets {
        problem: CopysetProblem,
        count: usize,
        first: Vec<CopysetId>,
        chunkservers: Vec<String>,
    },
    /// The copysets the ChunkServers report differ from the MDS's list
    /// (`CheckCopysetsWithMds`, C:src/tools/copyset_check_core.cpp l.425-476).
    CopysetsDifferFromMds {
        only_in_mds: Vec<CopysetId>,
        not_in_mds: Vec<CopysetId>,
    },
    /// A ChunkServer that answers with no copyset at all: Curve's check counts it unhealthy
    /// (C:src/tools/copyset_check_core.cpp l.171-176).
    NoCopysets { chunkserver: String },
    /// An MDS whose dummy port does not answer, or names another listen address.
    MdsOffline { mds: String, why: String },
    /// Not exactly one MDS says `leader`.
    MdsLeaders { leaders: Vec<String> },
    /// The MDS that says `leader` is not the one etcd's election names.
    ElectionDisagrees { elected: String, leader: String },
}

const FIRST: usize = 5;

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let list = |ids: &[CopysetId]| {
            ids.iter()
                .map(|c| c.to_string())
                .collect::<Vec<_>>()
                .join(" ")
        };
        match self {
            Problem::Copysets {
                problem,
                count,
                first,
                chunkservers,
            } => write!(
                f,
                "{count} copysets {problem} ({}{}) on {}",
                list(first),
                if *count > first.len() { " …" } else { "" },
                first_of(chunkservers, " ")
            ),
            Problem::CopysetsDifferFromMds {
                only_in_mds,
                not_in_mds,
            } => write!(
                f,
                "copysets differ from the MDS's: not on any ChunkServer: [{}], unknown to the MDS: [{}]",
                list(only_in_mds),
                list(not_in_mds)
            ),
            Problem::NoCopysets { chunkserver } => {
                write!(f, "ChunkServer {chunkserver} holds no copyset")
            }
            Problem::MdsOffline { mds, why } => write!(f, "MDS {mds} offline: {why}"),
            Problem::MdsLeaders { leaders } if leaders.is_empty() => {
                f.write_str("no MDS says it is leader")
            }
            Problem::MdsLeaders { leaders } => {
                write!(
                    f,
                    "more than one MDS says it is leader: {}",
                    leaders.join(" ")
                )
            }
            Problem::ElectionDisagrees { elected, leader } => write!(
                f,
                "etcd's election names {elected} but {leader} says it is leader"
            ),
        }
    }
}

/// The verdict.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    Healthy,
    Unhealthy {
        problems: Vec<Problem>,
    },
    /// Something needed could not be read: the endpoint and why.
    Unknown {
        endpoint: String,
        reason: String,
    },
}

/// The verdict and what was counted on the way.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Health {
    pub verdict: Verdict,
    /// `None` when the copysets could not be judged.
    pub copysets: Option<CopysetCounts>,
    /// `None` when the MDS's topology could not be read.
    pub chunkservers: Option<ChunkServerCounts>,
    pub pools: Vec<PoolReport>,
}

impl Health {
    pub fn is_healthy(&self) -> bool {
        self.verdict == Verdict::Healthy
    }
}

/// The elected primary's dummy port does not answer while etcd still names it: a dead
/// primary whose election key has not lapsed yet. Returns its listen address.
pub fn primary_unreachable(reading: &CurveReading) -> Option<&str> {
    let elected = reading.elected.as_deref()?;
    (reading.mds.iter())
        .find(|m| m.listen_addr == elected)
        .filter(|m| matches!(&m.answer, Err(e) if e.is_unreachable()))
        .map(|m| m.listen_addr.as_str())
}

/// The verdict of one round. Never panics, whatever the answers were.
pub fn verdict(reading: &CurveReading, rules: &Rules) -> Health {
    let mut unknown: Vec<(String, String)> = Vec::new();
    let mut problems = Vec::new();

    if reading.elected.is_none() {
        unknown.push((
            "etcd".into(),
            "no MDS holds the election key (07leader/)".into(),
        ));
    }
    if let Err(e) = &reading.topology {
        unknown.push((e.endpoint().into(), e.reason().into()));
    }
    judge_mds(reading, &mut problems, &mut unknown);

    let (copysets, chunkservers, pools) = match &reading.topology {
        Ok(topology) => {
            let copysets = match judge_copysets(topology, &reading.raft, rules) {
                Ok(counts) => Some(counts),
                Err((endpoint, reason)) => {
                    unknown.push((endpoint, reason));
                    None
                }
            };
            (
                copysets,
                Some(count_chunkservers(topology)),
                pool_reports(topology),
            )
        }
        Err(_) => (None, None, Vec::new()),
    };
    if let Some(counts) = &copysets {
        copyset_problems(counts, &mut problems);
    }

    let verdict = match (unknown.into_iter().next(), problems.is_empty()) {
        (Some((endpoint, reason)), _) => Verdict::Unknown { endpoint, reason },
        (None, true) => Verdict::Healthy,
        (None, false) => Verdict::Unhealthy { problems },
    };
    Health {
        verdict,
        copysets,
        chunkservers,
        pools,
    }
}

fn judge_mds(
    reading: &CurveReading,
    problems: &mut Vec<Problem>,
    unknown: &mut Vec<(String, String)>,
) {
    let mut leaders = Vec::new();
    for mds in &reading.mds {
        match &mds.answer {
            Err(e) if e.is_unreachable() => problems.push(Problem::MdsOffline {
                mds: mds.listen_addr.clone(),
                why: format!("its dummy port {}: {}", mds.dummy_addr, e.reason()),
            }),
            Err(e) => unknown.push((e.endpoint().into(), e.reason().into())),
            Ok(answer) => {
                // Online = the listen address its dummy port names is the configured one
                // (C:src/tools/mds_client.cpp l.833-836).
                if answer.listen_addr != mds.listen_addr {
                    problems.push(Problem::MdsOffline {
                        mds: mds.listen_addr.clone(),
                        why: format!(
                            "its dummy port {} says it listens on {}",
                            mds.dummy_addr, answer.listen_addr
                        ),
                    });
                }
                if answer.role == MdsRole::Leader {
                    leaders.push(mds.listen_addr.clone());
                }
            }
        }
    }
    match (leaders.as_slice(), &reading.elected) {
        ([leader], Some(elected)) if leader != elected => {
            problems.push(Problem::ElectionDisagrees {
                elected: elected.clone(),
                leader: leader.clone(),
            });
        }
        ([_], _) => {}
        _ => problems.push(Problem::MdsLeaders { leaders }),
    }
}

type Unknown = (String, String);

/// The groups each ChunkServer's `/raft_stat` lists, or why it could not be read; indexed
/// once, as every peer of every leader is looked up (a search of the page per peer grows
/// with copysets × copysets per ChunkServer).
struct RaftView<'a> {
    groups: FnvHashMap<&'a str, Result<FnvHashSet<CopysetId>, &'a CallError>>,
}

impl<'a> RaftView<'a> {
    fn of(raft: &'a BTreeMap<String, Result<Vec<RaftNode>, CallError>>) -> Self {
        let groups = (raft.iter())
            .map(|(addr, nodes)| {
                let listed = nodes
                    .as_ref()
                    .map(|n| n.iter().map(|n| n.copyset).collect());
                (addr.as_str(), listed)
            })
            .collect();
        RaftView { groups }
    }

    /// `CheckCopySetOnline` (C:src/tools/copyset_check_core.cpp l.622-654): a peer is online
    /// for a copyset when its `/raft_stat` answers and lists the group.
    fn online(&self, addr: &str, copyset: CopysetId) -> Result<bool, Unknown> {
        match self.groups.get(addr) {
            Some(Ok(groups)) => Ok(groups.contains(&copyset)),
            Some(Err(e)) if e.is_unreachable() => Ok(false),
            Some(Err(e)) => Err((e.endpoint().into(), e.reason().into())),
            None => Err((
                format!("{addr}{}", super::client::RAFT_STAT_PATH),
                "its /raft_stat was not read".into(),
            )),
        }
    }

    /// `CheckPeerOnlineStatus` (l.656-681): the peers not online, and whether they are fewer
    /// than a majority. Peer ids are `ip:port:idx`.
    fn offline_peers(
        &self,
        reporter: &str,
        copyset: CopysetId,
        peers: &[String],
    ) -> Result<Vec<String>, Unknown> {
        let mut offline = Vec::new();
        for peer in peers {
            let addr = peer_address(peer).ok_or_else(|| {
                (
                    format!("{reporter}{}", super::client::RAFT_STAT_PATH),
                    format!("copyset {copyset}: peer {peer:?} is not ip:port:index"),
                )
            })?;
            if !self.online(addr, copyset)? {
                offline.push(addr.to_string());
            }
        }
        Ok(offline)
    }
}

fn not_online_problem(peers: usize, offline: usize) -> CopysetProblem {
    if offline < peers / 2 + 1 {
        CopysetProblem::MinorityPeerNotOnline
    } else {
        CopysetProblem::MajorityPeerNotOnline
    }
}

/// `CheckCopysetsInCluster` (C:src/tools/copyset_check_core.cpp l.387-423).
fn judge_copysets(
    topology: &TopologyReading,
    raft: &BTreeMap<String, Result<Vec<RaftNode>, CallError>>,
    rules: &Rules,
) -> Result<CopysetCounts, Unknown> {
    let view = RaftView::of(raft);
    let mut counts = CopysetCounts::default();
    let mut total = BTreeSet::new();
    let mut mark = |problem: CopysetProblem, copyset: CopysetId, involved: &[String]| {
        let entry = counts.problems.entry(problem).or_default();
        entry.copysets.insert(copyset);
        entry.chunkservers.extend(involved.iter().cloned());
    };
    let mut no_copysets = BTreeSet::new();
    // The copysets the MDS places on each ChunkServer, indexed at the first one that does not
    // answer (a scan of every copyset per such ChunkServer grows with both).
    let mut placed: Option<Placement> = None;

    // Every ChunkServer the MDS lists, RETIRED ones skipped (C:src/tools/mds_client.cpp
    // l.603-607), each address once.
    let checked: BTreeMap<String, &ChunkServerInfo> = (topology.chunkservers.iter())
        .filter(|cs| cs.status != ChunkServerStatus::RETIRED)
        .map(|cs| (cs.address(), cs))
        .collect();
    for (addr, cs) in &checked {
        let nodes = match raft.get(addr) {
            Some(Ok(nodes)) => nodes,
            Some(Err(e)) if e.is_unreachable() => {
                // `UpdatePeerNotOnlineCopysets` (l.751-800): every copyset the MDS places on
                // it (`GetCopySetsInChunkServer` = copysets whose members include it,
                // C:src/mds/topology/topology.cpp l.1144-1155), judged by its MDS members.
                let placed = placed.get_or_insert_with(|| copysets_by_chunkserver(topology));
                for &(copyset, locations) in placed.get(&cs.chunk_server_id).into_iter().flatten() {
                    let peers: Vec<String> = locations
                        .iter()
                        .map(|l| format!("{}:0", l.address()))
                        .collect();
                    let offline = view.offline_peers(addr, *copyset, &peers)?;
                    mark(
                        not_online_problem(peers.len(), offline.len()),
                        *copyset,
                        &offline,
                    );
                    total.insert(*copyset);
                }
                continue;
            }
            Some(Err(e)) => return Err((e.endpoint().into(), e.reason().into())),
            None => {
                return Err((
                    format!("{addr}{}", super::client::RAFT_STAT_PATH),
                    "its /raft_stat was not read".into(),
                ));
            }
        };
        // l.171-176: a ChunkServer with no copyset is not healthy.
        if nodes.is_empty() {
            no_copysets.insert(addr.clone());
        }
        for node in nodes {
            total.insert(node.copyset);
            let me = std::slice::from_ref(addr);
            match node.state {
                RaftState::Leader => {
                    if let Some((problem, involved)) = check_leader(&view, addr, node, rules)? {
                        mark(problem, node.copyset, &involved);
                    }
                }
                RaftState::Follower => {
                    if node.known_leader().is_some() {
                        continue;
                    }
                    // `CheckCopysetsNoLeader` (l.264-298): only when the MDS counts this
                    // ChunkServer among the copyset's members (l.300-336); majority of its
                    // peers not online, or else no leader.
                    let member = (topology.members.get(&node.copyset))
                        .is_some_and(|ls| ls.iter().any(|l| l.address() == *addr));
                    if !member {
                        continue;
                    }
                    let offline = view.offline_peers(addr, node.copyset, &node.peers)?;
                    match not_online_problem(node.peers.len(), offline.len()) {
                        CopysetProblem::MajorityPeerNotOnline => mark(
                            CopysetProblem::MajorityPeerNotOnline,
                            node.copyset,
                            &offline,
                        ),
                        _ => mark(CopysetProblem::NoLeader, node.copyset, me),
                    }
                }
                // l.232-234.
                RaftState::Transferring | RaftState::Candidate => {
                    mark(CopysetProblem::NoLeader, node.copyset, me)
                }
                // l.235-241.
                other => mark(
                    CopysetProblem::State(RaftStateName(other.as_str())),
                    node.copyset,
                    me,
                ),
            }
        }
    }

    // `CheckCopysetsWithMds` (l.425-476).
    let in_mds: BTreeSet<CopysetId> = (topology.copysets.iter())
        .map(|c| CopysetId {
            logical_pool: c.logical_pool_id,
            copyset: c.copyset_id,
        })
        .collect();
    counts.only_in_mds = in_mds.difference(&total).copied().collect();
    counts.not_in_mds = total.difference(&in_mds).copied().collect();
    counts.total = total.len();
    let unhealthy: BTreeSet<CopysetId> = (counts.problems.values())
        .flat_map(|p| p.copysets.iter().copied())
        .collect();
    counts.unhealthy = unhealthy.len();
    counts.no_copysets = no_copysets;
    Ok(counts)
}

/// Each ChunkServer's copysets as the MDS places them (in copyset order), with their members.
type Placement<'a> = BTreeMap<u32, Vec<(&'a CopysetId, &'a Vec<ChunkServerLocation>)>>;

fn copysets_by_chunkserver(topology: &TopologyReading) -> Placement<'_> {
    let mut placed: BTreeMap<u32, Vec<_>> = BTreeMap::new();
    for (copyset, locations) in &topology.members {
        let ids: BTreeSet<u32> = locations.iter().map(|l| l.chunk_server_id).collect();
        for id in ids {
            placed.entry(id).or_default().push((copyset, locations));
        }
    }
    placed
}

/// `CheckHealthOnLeader` (C:src/tools/copyset_check_core.cpp l.683-749).
fn check_leader(
    view: &RaftView<'_>,
    me: &str,
    node: &RaftNode,
    rules: &Rules,
) -> Result<Option<(CopysetProblem, Vec<String>)>, Unknown> {
    if node.peers.len() < rules.replicas {
        return Ok(Some((
            CopysetProblem::PeersNotSufficient,
            vec![me.to_string()],
        )));
    }
    let offline = view.offline_peers(me, node.copyset, &node.peers)?;
    if !offline.is_empty() {
        return Ok(Some((
            not_online_problem(node.peers.len(), offline.len()),
            offline,
        )));
    }
    // l.719-725: a replicator installing a snapshot, before any gap.
    let follower =
        |r: &super::raft_stat::Replicator| peer_address(&r.peer).unwrap_or(&r.peer).to_string();
    if let Some(r) = (node.replicators.iter())
        .find(|r| matches!(r.state, ReplicatorState::InstallingSnapshot { .. }))
    {
        return Ok(Some((
            CopysetProblem::InstallingSnapshot,
            vec![follower(r)],
        )));
    }
    // l.698-747: gap = last log index − (next_index − 1 − flying). Curve computes it in
    // u64, so a follower "ahead" wraps to a huge gap; a negative gap counts as too big here.
    let last = i128::from(node.last_log_id.index);
    let lagging: Vec<String> = (node.replicators.iter())
        .filter(|r| {
            let matched = i128::from(r.next_index) - 1 - i128::from(r.flying_append_entries_size);
            let gap = last - matched;
            gap < 0 || gap > i128::from(rules.margin)
        })
        .map(follower)
        .collect();
    if !lagging.is_empty() {
        return Ok(Some((CopysetProblem::LogIndexGapTooBig, lagging)));
    }
    Ok(None)
}

fn copyset_problems(counts: &CopysetCounts, problems: &mut Vec<Problem>) {
    for (problem, found) in &counts.problems {
        problems.push(Problem::Copysets {
            problem: *problem,
            count: found.copysets.len(),
            first: found.copysets.iter().take(FIRST).copied().collect(),
            chunkservers: found.chunkservers.iter().cloned().collect(),
        });
    }
    for chunkserver in &counts.no_copysets {
        problems.push(Problem::NoCopysets {
            chunkserver: chunkserver.clone(),
        });
    }
    if !counts.only_in_mds.is_empty() || !counts.not_in_mds.is_empty() {
        problems.push(Problem::CopysetsDifferFromMds {
            only_in_mds: counts.only_in_mds.iter().take(FIRST).copied().collect(),
            not_in_mds: counts.not_in_mds.iter().take(FIRST).copied().collect(),
        });
    }
}

fn count_chunkservers(topology: &TopologyReading) -> ChunkServerCounts {
    let mut counts = ChunkServerCounts::default();
    for cs in &topology.chunkservers {
        match cs.status {
            ChunkServerStatus::READWRITE => counts.readwrite += 1,
            ChunkServerStatus::PENDDING => counts.pendding += 1,
            ChunkServerStatus::RETIRED => {
                counts.retired += 1;
                continue;
            }
        }
        match cs.online_state {
            OnlineState::ONLINE => counts.online += 1,
            OnlineState::UNSTABLE => counts.unstable += 1,
            OnlineState::OFFLINE => counts.offline += 1,
        }
    }
    counts
}

fn pool_reports(topology: &TopologyReading) -> Vec<PoolReport> {
    (topology.logical_pools.iter())
        .map(|p| PoolReport {
            id: p.logical_pool_id,
            name: p.logical_pool_name.clone(),
            space: topology.space.get(&p.logical_pool_name).cloned(),
        })
        .collect()
}

/// The problems in one message: each once, except the ChunkServers answering with no copyset
/// (all of them before the logical pool exists, 12,000 at 1000 servers × 12 disks), told as one.
fn told(problems: &[Problem]) -> String {
    let empty: Vec<&str> = (problems.iter())
        .filter_map(|p| match p {
            Problem::NoCopysets { chunkserver } => Some(chunkserver.as_str()),
            _ => None,
        })
        .collect();
    let empty_told = match empty.as_slice() {
        [one] => format!("ChunkServer {one} holds no copyset"),
        many => format!(
            "{} ChunkServers hold no copyset: {}",
            many.len(),
            first_of(many, " ")
        ),
    };
    let mut told: Vec<String> = Vec::new();
    for (i, problem) in problems.iter().enumerate() {
        match problem {
            // Told once, where the first one is.
            Problem::NoCopysets { .. } => {
                let first = !problems[..i]
                    .iter()
                    .any(|p| matches!(p, Problem::NoCopysets { .. }));
                if first {
                    told.push(empty_told.clone());
                }
            }
            _ => told.push(problem.to_string()),
        }
    }
    told.join("; ")
}

/// The status block of a verdict read at `checked`.
pub fn health_status(health: &Health, checked: Time) -> HealthStatus {
    let (verdict, message) = match &health.verdict {
        Verdict::Healthy => (HealthVerdict::Healthy, None),
        Verdict::Unhealthy { problems } => (HealthVerdict::Unhealthy, Some(told(problems))),
        Verdict::Unknown { endpoint, reason } => (
            HealthVerdict::Unknown,
            Some(format!("{endpoint}: {reason}")),
        ),
    };
    let ids = |set: &BTreeSet<CopysetId>| set.iter().take(FIRST).map(|c| c.to_string()).collect();
    let copysets = health.copysets.as_ref().map(|c| {
        let mut problems: Vec<CopysetProblemStatus> = (c.problems.iter())
            .map(|(problem, found)| CopysetProblemStatus {
                reason: problem.reason(),
                count: found.copysets.len() as i64,
                copysets: ids(&found.copysets),
                chunkservers: (found.chunkservers.iter().take(SHOWN_ITEMS))
                    .cloned()
                    .collect(),
            })
            .collect();
        for (reason, set) in [
            ("NotOnChunkServers", &c.only_in_mds),
            ("NotInMds", &c.not_in_mds),
        ] {
            if !set.is_empty() {
                problems.push(CopysetProblemStatus {
                    reason: reason.into(),
                    count: set.len() as i64,
                    copysets: ids(set),
                    chunkservers: Vec::new(),
                });
            }
        }
        CopysetHealthStatus {
            total: c.total as i64,
            healthy: c.healthy() as i64,
            unhealthy: c.unhealthy as i64,
            problems,
        }
    });
    let chunkservers = health
        .chunkservers
        .as_ref()
        .map(|c| ChunkServerHealthStatus {
            online: c.online as i32,
            unstable: c.unstable as i32,
            offline: c.offline as i32,
            readwrite: c.readwrite as i32,
            pendding: c.pendding as i32,
            retired: c.retired as i32,
        });
    let bytes = |v: Option<u64>| v.map(|v| i64::try_from(v).unwrap_or(i64::MAX));
    let logical_pools = (health.pools.iter())
        .map(|p| {
            let space = p.space.clone().unwrap_or_default();
            LogicalPoolSpaceStatus {
                name: p.name.clone(),
                capacity_bytes: bytes(space.logical_capacity),
                allocated_bytes: bytes(space.logical_alloc),
                used_bytes: bytes(space.chunk_used),
                physical_bytes: bytes(space.chunk_total),
            }
        })
        .collect();
    HealthStatus {
        verdict,
        message,
        copysets,
        chunkservers,
        logical_pools,
        last_checked: Some(checked),
    }
}

/// Whether `next` tells anything `previous` did not: the verdict, its message or a count
/// changed, a pool came or went, or a space figure moved by more than 1 %. `lastChecked`
/// alone is no change, so an unchanged cluster costs no status write.
pub fn health_changed(previous: Option<&HealthStatus>, next: &HealthStatus) -> bool {
    let Some(previous) = previous else {
        return true;
    };
    if previous.verdict != next.verdict
        || previous.message != next.message
        || previous.copysets != next.copysets
        || previous.chunkservers != next.chunkservers
        || previous.logical_pools.len() != next.logical_pools.len()
    {
        return true;
    }
    let moved = |a: Option<i64>, b: Option<i64>| match (a, b) {
        (Some(a), Some(b)) => {
            let (a, b) = (i128::from(a), i128::from(b));
            (a - b).abs() * 100 > a.abs()
        }
        (a, b) => a.is_some() != b.is_some(),
    };
    previous
        .logical_pools
        .iter()
        .zip(&next.logical_pools)
        .any(|(a, b)| {
            a.name != b.name
                || moved(a.capacity_bytes, b.capacity_bytes)
                || moved(a.allocated_bytes, b.allocated_bytes)
                || moved(a.used_bytes, b.used_bytes)
                || moved(a.physical_bytes, b.physical_bytes)
        })
}

#[cfg(test)]
#[path = "health_tests.rs"]
mod tests;
