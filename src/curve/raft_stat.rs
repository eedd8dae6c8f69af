//! A ChunkServer's braft `/raft_stat` page in plain text: one block per raft node (copyset).
//!
//! The page (R:src/braft/builtin_service_impl.cpp l.71-86): for each node, a `[<groupId>]`
//! line when the group changes, the node's `describe`, then an empty line. `NodeImpl::describe`
//! (R:src/braft/node.cpp l.2350-2471) prints, ending lines with `\r\n`: `peer_id`, `state`,
//! `readonly`, `term`, `conf_index`, `peers` (space-separated), for a LEADER
//! `changing_conf: NO    stage: …`, `new_peers`/`old_peers` during a change, for a FOLLOWER
//! `leader` and `last_msg_to_now`, the four timers; then the log manager's lines ending with a
//! bare `\n` (`storage: [first, last]`, `disk_index`, `known_applied_index`,
//! `last_log_id: (index=I,term=T)`, R:src/braft/log_manager.cpp l.893-901,
//! R:src/braft/log_entry.h l.92-95), the state machine's line (`\n`, R:src/braft/fsm_caller.cpp
//! l.482-518), `last_committed_index` (+ `pending_*`, R:src/braft/ballot_box.cpp l.158-174),
//! the snapshot executor's lines (R:src/braft/snapshot_executor.cpp l.620-660; while LOADING
//! or DOWNLOADING the last `…snapshot_meta: …` has no line end), and for a LEADER one line per
//! follower, `replicator_<id>@<peer>: next_index=N  flying_append_entries_size=N ` +
//! `readonly_index=N ` when set + `idle` | `blocking consecutive_error_times=N` |
//! `appending [a, b]` | `installing snapshot {index, term}` + ` hc=N ac=N ic=N`
//! (R:src/braft/replicator.cpp l.1240-1276).
//!
//! Curve's tool splits the page on `\r\n\r\n` and `\r\n` (C:src/tools/copyset_check_core.cpp
//! l.518-584), which folds the `\n`-ended lines into `storage`'s value and loses the group
//! after a missing line end. This parser reads lines ended by either, and starts a group at
//! each `[<digits>]` line, so every field is read on its own; the values the verdict uses are
//! the ones the tool extracts (see [`RaftNode::last_log_index`]).

use std::fmt;

/// The copyset a raft group serves: group id = `(logicalPoolId << 32) | copysetId`
/// (C:include/chunkserver/chunkserver_common.h l.85-109).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct CopysetId {
    pub logical_pool: u32,
    pub copyset: u32,
}

impl CopysetId {
    pub fn from_group_id(group: u64) -> Self {
        CopysetId {
            logical_pool: (group >> 32) as u32,
            copyset: (group & 0xffff_ffff) as u32,
        }
    }

    pub fn group_id(self) -> u64 {
        (u64::from(self.logical_pool) << 32) | u64::from(self.copyset)
    }
}

/// `<logicalPoolId>/<copysetId>`.
impl fmt::Display for CopysetId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.logical_pool, self.copyset)
    }
}

/// braft's node states (R:src/braft/raft.h l.269-290; `UNKNOWN` for an out-of-range value).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RaftState {
    Leader,
    Transferring,
    Candidate,
    Follower,
    Error,
    Uninitialized,
    Shutting,
    Shutdown,
    Unknown,
}

impl RaftState {
    const NAMES: [(&'static str, RaftState); 9] = [
        ("LEADER", RaftState::Leader),
        ("TRANSFERRING", RaftState::Transferring),
        ("CANDIDATE", RaftState::Candidate),
        ("FOLLOWER", RaftState::Follower),
        ("ERROR", RaftState::Error),
        ("UNINITIALIZED", RaftState::Uninitialized),
        ("SHUTTING", RaftState::Shutting),
        ("SHUTDOWN", RaftState::Shutdown),
        ("UNKNOWN", RaftState::Unknown),
    ];

    pub fn parse(text: &str) -> Option<Self> {
        Self::NAMES
            .iter()
            .find(|(n, _)| *n == text)
            .map(|(_, s)| *s)
    }

    pub fn as_str(self) -> &'static str {
        Self::NAMES
            .iter()
            .find(|(_, s)| *s == self)
            .map_or("UNKNOWN", |(n, _)| n)
    }
}

/// braft's `LogId`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct LogId {
    pub index: i64,
    pub term: i64,
}

/// `snapshot_status` (R:src/braft/snapshot_executor.cpp l.645-659).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SnapshotStatus {
    Idle,
    Saving,
    Loading,
    Downloading,
}

/// What a replicator (the leader's sender to one follower) is doing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReplicatorState {
    Idle,
    Blocking {
        consecutive_error_times: i64,
    },
    Appending {
        first: i64,
        last: i64,
    },
    /// Sending a snapshot: the last log entry it includes.
    InstallingSnapshot {
        index: i64,
        term: i64,
    },
}

/// One `replicator_…` line of a leader.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Replicator {
    /// The follower's peer id, `ip:port:idx`.
    pub peer: String,
    pub next_index: i64,
    pub flying_append_entries_size: i64,
    pub readonly_index: Option<i64>,
    pub state: ReplicatorState,
}

/// One raft node on the page.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RaftNode {
    pub copyset: CopysetId,
    /// This node, `ip:port:idx`.
    pub peer_id: String,
    pub state: RaftState,
    pub term: i64,
    /// The configuration's members, `ip:port:idx` each.
    pub peers: Vec<String>,
    /// FOLLOWER only; `0.0.0.0:0:0` when it knows no leader.
    pub leader: Option<String>,
    /// `storage: [first, last]`.
    pub first_log_index: i64,
    pub last_log_index: i64,
    pub last_log_id: LogId,
    pub last_committed_index: i64,
    /// Absent when the node has no snapshot executor.
    pub snapshot_status: Option<SnapshotStatus>,
    /// LEADER only.
    pub replicators: Vec<Replicator>,
}

/// A follower's `leader` when it knows none (C:src/tools/copyset_check_core.h l.423).
pub const NO_LEADER: &str = "0.0.0.0:0:0";

impl RaftNode {
    /// The leader's last log index as Curve's tool takes it: the number after the first `=`
    /// of the `storage` value, which (the `\n`-ended lines being folded into it) is
    /// `last_log_id`'s index (C:src/tools/copyset_check_core.cpp l.698-711; `stoull` reads
    /// the leading digits).
    pub fn last_log_index_for_gap(&self) -> i64 {
        self.last_log_id.index
    }

    /// The leader a FOLLOWER names, `None` when it names none.
    pub fn known_leader(&self) -> Option<&str> {
        self.leader.as_deref().filter(|l| *l != NO_LEADER)
    }
}

/// `ip:port` of a peer id `ip:port:idx`: the text before the last `:`
/// (C:src/tools/copyset_check_core.cpp l.661-666).
pub fn peer_address(peer: &str) -> Option<&str> {
    peer.rsplit_once(':')
        .map(|(addr, _)| addr)
        .filter(|a| a.contains(':'))
}

/// Every node of a `/raft_stat` page, in page order. An empty page (no copysets) is an empty
/// list. Errors name the group and what was unexpected.
pub fn parse_raft_stat(page: &str) -> Result<Vec<RaftNode>, String> {
    let mut nodes = Vec::new();
    let mut current: Option<(u64, Fields)> = None;
    for line in page.split('\n').map(|l| l.strip_suffix('\r').unwrap_or(l)) {
        if line.is_empty() {
            continue;
        }
        if let Some(group) = group_header(line) {
            if let Some((g, fields)) = current.take() {
                nodes.push(fields.into_node(g)?);
            }
            current = Some((group, Fields::default()));
            continue;
        }
        let Some((_, fields)) = current.as_mut() else {
            return Err(format!(
                "a line before the first [group] line: {:?}",
                super::vars::clip(line)
            ));
        };
        fields.add(line);
    }
    if let Some((g, fields)) = current {
        nodes.push(fields.into_node(g)?);
    }
    Ok(nodes)
}

fn group_header(line: &str) -> Option<u64> {
    let inner = line.strip_prefix('[')?.strip_suffix(']')?;
    if inner.is_empty() || !inner.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    inner.parse().ok()
}

/// A group's `key: value` lines; the first of a repeated key wins, as in the tool
/// (`std::map::emplace`, C:src/tools/copyset_check_core.cpp l.572-576).
#[derive(Default)]
struct Fields {
    values: Vec<(String, String)>,
    replicators: Vec<(String, String)>,
}

impl Fields {
    fn add(&mut self, line: &str) {
        if let Some(rest) = line.strip_prefix("replicator_") {
            // `replicator_<id>@<ip:port:idx>: …`: the peer id has colons, the value none.
            if let Some((head, value)) = rest.split_once(": ") {
                let peer = head.split_once('@').map_or(head, |(_, p)| p);
                self.replicators.push((peer.to_string(), value.to_string()));
                return;
            }
        }
        if let Some((key, value)) = line.split_once(':') {
            let key = key.trim();
            if !self.values.iter().any(|(k, _)| k == key) {
                self.values
                    .push((key.to_string(), value.trim().to_string()));
            }
        }
    }

    fn get(&self, key: &str) -> Option<&str> {
        self.values
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    fn into_node(self, group: u64) -> Result<RaftNode, String> {
        let copyset = CopysetId::from_group_id(group);
        let ctx = |what: String| format!("group {group} (copyset {copyset}): {what}");
        let need = |key: &str| self.get(key).ok_or_else(|| ctx(format!("no `{key}` line")));
        let number = |key: &str| {
            let text = need(key)?;
            text.parse::<i64>()
                .map_err(|_| ctx(format!("`{key}: {text}` is not a number")))
        };
        let state_text = need("state")?;
        let state = RaftState::parse(state_text)
            .ok_or_else(|| ctx(format!("unknown state {state_text:?}")))?;
        let storage = need("storage")?;
        let (first_log_index, last_log_index) = parse_pair(storage, '[', ']')
            .ok_or_else(|| ctx(format!("`storage: {storage}` is not `[first, last]`")))?;
        let last_log_id = need("last_log_id")?;
        let last_log_id = parse_log_id(last_log_id).ok_or_else(|| {
            ctx(format!(
                "`last_log_id: {last_log_id}` is not `(index=I,term=T)`"
            ))
        })?;
        let snapshot_status = match self.get("snapshot_status") {
            None => None,
            Some("IDLE") => Some(SnapshotStatus::Idle),
            Some("SAVING") => Some(SnapshotStatus::Saving),
            Some("LOADING") => Some(SnapshotStatus::Loading),
            Some("DOWNLOADING") => Some(SnapshotStatus::Downloading),
            Some(other) => return Err(ctx(format!("unknown snapshot_status {other:?}"))),
        };
        let replicators = (self.replicators.iter())
            .map(|(peer, value)| {
                parse_replicator(peer, value)
                    .map_err(|e| ctx(format!("replicator of {peer}: {e}: {value:?}")))
            })
            .collect::<Result<_, _>>()?;
        Ok(RaftNode {
            copyset,
            peer_id: need("peer_id")?.to_string(),
            state,
            term: number("term")?,
            peers: need("peers")?
                .split_whitespace()
                .map(String::from)
                .collect(),
            leader: self.get("leader").map(String::from),
            first_log_index,
            last_log_index,
            last_log_id,
            last_committed_index: number("last_committed_index")?,
            snapshot_status,
            replicators,
        })
    }
}

/// `[a, b]` or `{a, b}`.
fn parse_pair(text: &str, open: char, close: char) -> Option<(i64, i64)> {
    let inner = text.trim().strip_prefix(open)?.strip_suffix(close)?;
    let (a, b) = inner.split_once(", ")?;
    Some((a.trim().parse().ok()?, b.trim().parse().ok()?))
}

/// `(index=I,term=T)`.
fn parse_log_id(text: &str) -> Option<LogId> {
    let inner = text.strip_prefix("(index=")?.strip_suffix(')')?;
    let (index, term) = inner.split_once(",term=")?;
    Some(LogId {
        index: index.parse().ok()?,
        term: term.parse().ok()?,
    })
}

fn parse_replicator(peer: &str, value: &str) -> Result<Replicator, String> {
    let field = |name: &str| -> Result<Option<i64>, String> {
        let Some(at) = value.find(&format!("{name}=")) else {
            return Ok(None);
        };
        let digits: String = value[at + name.len() + 1..]
            .chars()
            .take_while(|c| c.is_ascii_digit() || *c == '-')
            .collect();
        digits
            .parse()
            .map(Some)
            .map_err(|_| format!("`{name}=` is not followed by a number"))
    };
    let need = |name: &str| field(name)?.ok_or_else(|| format!("no `{name}=`"));
    let state = if let Some(at) = value.find("installing snapshot ") {
        let rest = &value[at + "installing snapshot ".len()..];
        let end = rest
            .find('}')
            .ok_or("an unclosed `installing snapshot {`")?;
        let (index, term) = parse_pair(&rest[..=end], '{', '}')
            .ok_or("`installing snapshot` without {index, term}")?;
        ReplicatorState::InstallingSnapshot { index, term }
    } else if let Some(at) = value.find("appending ") {
        let rest = &value[at + "appending ".len()..];
        let end = rest.find(']').ok_or("an unclosed `appending [`")?;
        let (first, last) =
            parse_pair(&rest[..=end], '[', ']').ok_or("`appending` without [first, last]")?;
        ReplicatorState::Appending { first, last }
    } else if value.contains("blocking") {
        ReplicatorState::Blocking {
            consecutive_error_times: need("consecutive_error_times")?,
        }
    } else if value.split_whitespace().any(|w| w == "idle") {
        ReplicatorState::Idle
    } else {
        return Err("none of idle, blocking, appending, installing snapshot".into());
    };
    Ok(Replicator {
        peer: peer.to_string(),
        next_index: need("next_index")?,
        flying_append_entries_size: need("flying_append_entries_size")?,
        readonly_index: field("readonly_index")?,
        state,
    })
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A leader block exactly as braft prints it (see the module's citations): `\r\n` after
    /// NodeImpl's and the ballot box's and snapshot executor's lines, a bare `\n` after the
    /// log manager's and the state machine's, two spaces after `next_index=N `'s space.
    pub fn leader_block(group: u64, me: &str, followers: &[(&str, &str)], last: i64) -> String {
        let peers: Vec<String> = std::iter::once(me.to_string())
            .chain(followers.iter().map(|(p, _)| p.to_string()))
            .collect();
        let mut s = format!(
            "[{group}]\r\npeer_id: {me}\r\nstate: LEADER\r\nreadonly: 0\r\nterm: 2\r\nconf_index: 2\r\npeers: {}\r\nchanging_conf: NO    stage: STAGE_NONE\r\nelection_timer: timeout(1000ms) STOPPED\r\nvote_timer: timeout(1000ms) STOPPED\r\nstepdown_timer: timeout(1000ms) SCHEDULING(in 412ms)\r\nsnapshot_timer: timeout(1800000ms) SCHEDULING(in 1210544ms)\r\nstorage: [1, {last}]\ndisk_index: {last}\nknown_applied_index: {last}\nlast_log_id: (index={last},term=2)\nstate_machine: Idle\nlast_committed_index: {last}\r\nlast_snapshot_index: 0\r\nlast_snapshot_term: 0\r\nsnapshot_status: IDLE\r\n",
            peers.join(" ")
        );
        for (i, (peer, tail)) in followers.iter().enumerate() {
            s += &format!("replicator_{}@{peer}: {tail}\r\n", 8589934593u64 + i as u64);
        }
        s + "\r\n"
    }

    /// A follower block; `leader` is `0.0.0.0:0:0` when it knows none.
    pub fn follower_block(group: u64, me: &str, peers: &[&str], leader: &str) -> String {
        format!(
            "[{group}]\r\npeer_id: {me}\r\nstate: FOLLOWER\r\nreadonly: 0\r\nterm: 3\r\nconf_index: 5\r\npeers: {}\r\nleader: {leader}\r\nlast_msg_to_now: 37\r\nelection_timer: timeout(1000ms) SCHEDULING(in 1302ms)\r\nvote_timer: timeout(1000ms) STOPPED\r\nstepdown_timer: timeout(1000ms) STOPPED\r\nsnapshot_timer: timeout(1800000ms) SCHEDULING(in 934011ms)\r\nstorage: [1, 1024]\ndisk_index: 1024\nknown_applied_index: 1024\nlast_log_id: (index=1024,term=3)\nstate_machine: Idle\nlast_committed_index: 1024\r\nlast_snapshot_index: 0\r\nlast_snapshot_term: 0\r\nsnapshot_status: IDLE\r\n\r\n",
            peers.join(" ")
        )
    }

    pub const IDLE: &str =
        "next_index=2581  flying_append_entries_size=0 idle hc=1741 ac=2577 ic=0";

    #[test]
    fn a_leader_and_a_follower_block() {
        let page = leader_block(
            4294967297,
            "127.0.0.1:8200:0",
            &[
                ("127.0.0.1:8201:0", IDLE),
                (
                    "127.0.0.1:8202:0",
                    "next_index=2570  flying_append_entries_size=3  readonly_index=7 appending [2570, 2572] hc=1 ac=2 ic=0",
                ),
            ],
            2580,
        ) + &follower_block(
            4294967298,
            "127.0.0.1:8200:0",
            &["127.0.0.1:8200:0", "127.0.0.1:8201:0", "127.0.0.1:8202:0"],
            "127.0.0.1:8201:0",
        );
        let nodes = parse_raft_stat(&page).unwrap();
        assert_eq!(
            nodes[0],
            RaftNode {
                copyset: CopysetId {
                    logical_pool: 1,
                    copyset: 1
                },
                peer_id: "127.0.0.1:8200:0".into(),
                state: RaftState::Leader,
                term: 2,
                peers: vec![
                    "127.0.0.1:8200:0".into(),
                    "127.0.0.1:8201:0".into(),
                    "127.0.0.1:8202:0".into()
                ],
                leader: None,
                first_log_index: 1,
                last_log_index: 2580,
                last_log_id: LogId {
                    index: 2580,
                    term: 2
                },
                last_committed_index: 2580,
                snapshot_status: Some(SnapshotStatus::Idle),
                replicators: vec![
                    Replicator {
                        peer: "127.0.0.1:8201:0".into(),
                        next_index: 2581,
                        flying_append_entries_size: 0,
                        readonly_index: None,
                        state: ReplicatorState::Idle,
                    },
                    Replicator {
                        peer: "127.0.0.1:8202:0".into(),
                        next_index: 2570,
                        flying_append_entries_size: 3,
                        readonly_index: Some(7),
                        state: ReplicatorState::Appending {
                            first: 2570,
                            last: 2572
                        },
                    },
                ],
            }
        );
        assert_eq!(
            nodes[1].copyset,
            CopysetId {
                logical_pool: 1,
                copyset: 2
            }
        );
        assert_eq!(nodes[1].state, RaftState::Follower);
        assert_eq!(nodes[1].known_leader(), Some("127.0.0.1:8201:0"));
        assert!(nodes[1].replicators.is_empty());
        assert_eq!(nodes.len(), 2);
    }

    #[test]
    fn replicator_states() {
        let rep = |tail: &str| parse_replicator("p:1:0", tail);
        assert_eq!(
            rep("next_index=10  flying_append_entries_size=0 installing snapshot {1234, 3} hc=1 ac=2 ic=1").unwrap().state,
            ReplicatorState::InstallingSnapshot { index: 1234, term: 3 }
        );
        assert_eq!(
            rep("next_index=10  flying_append_entries_size=0 blocking consecutive_error_times=4 hc=1 ac=2 ic=0").unwrap().state,
            ReplicatorState::Blocking { consecutive_error_times: 4 }
        );
        assert_eq!(
            rep("next_index=10  flying_append_entries_size=0 sleeping hc=1 ac=2 ic=0"),
            Err("none of idle, blocking, appending, installing snapshot".into())
        );
        assert_eq!(
            rep("flying_append_entries_size=0 idle hc=1 ac=2 ic=0"),
            Err("no `next_index=`".into())
        );
    }

    #[test]
    fn no_follower_leader_and_a_group_after_a_missing_line_end() {
        // A DOWNLOADING follower's last line has no end, so braft's empty line after the
        // node ends it and the next group's header follows at once
        // (R:src/braft/snapshot_executor.cpp l.652-654; builtin_service_impl.cpp l.84-85).
        let downloading = follower_block(4294967297, "10.0.0.1:8200:0", &["10.0.0.1:8200:0"], NO_LEADER)
            .replace("snapshot_status: IDLE\r\n\r\n", "snapshot_status: DOWNLOADING\r\ndownloading_snapshot_from: remote://10.0.0.2:8200/123\r\ndownloading_snapshot_meta: last_included_index: 10\r\n");
        let page = downloading
            + &follower_block(
                4294967298,
                "10.0.0.1:8200:0",
                &["10.0.0.1:8200:0"],
                "10.0.0.2:8200:0",
            );
        let nodes = parse_raft_stat(&page).unwrap();
        assert_eq!(nodes.len(), 2);
        assert_eq!(nodes[0].snapshot_status, Some(SnapshotStatus::Downloading));
        assert_eq!(nodes[0].known_leader(), None);
        assert_eq!(nodes[1].known_leader(), Some("10.0.0.2:8200:0"));
    }

    #[test]
    fn an_empty_page_is_no_copysets() {
        assert_eq!(parse_raft_stat(""), Ok(vec![]));
    }

    #[test]
    fn garbled_pages_are_refused_naming_the_group() {
        assert_eq!(
            parse_raft_stat("<html><body>raft</body></html>"),
            Err("a line before the first [group] line: \"<html><body>raft</body></html>\"".into())
        );
        let no_state = follower_block(4294967297, "a:1:0", &["a:1:0"], NO_LEADER)
            .replace("state: FOLLOWER\r\n", "");
        assert_eq!(
            parse_raft_stat(&no_state),
            Err("group 4294967297 (copyset 1/1): no `state` line".into())
        );
        let odd_state = follower_block(4294967297, "a:1:0", &["a:1:0"], NO_LEADER)
            .replace("FOLLOWER", "NAPPING");
        assert_eq!(
            parse_raft_stat(&odd_state),
            Err("group 4294967297 (copyset 1/1): unknown state \"NAPPING\"".into())
        );
        let all_crlf = follower_block(4294967297, "a:1:0", &["a:1:0"], NO_LEADER)
            .replace("last_log_id: (index=1024,term=3)", "last_log_id: 1024");
        assert_eq!(
            parse_raft_stat(&all_crlf),
            Err(
                "group 4294967297 (copyset 1/1): `last_log_id: 1024` is not `(index=I,term=T)`"
                    .into()
            )
        );
    }

    #[test]
    fn group_ids_and_peer_addresses() {
        assert_eq!(
            CopysetId::from_group_id(4294967297),
            CopysetId {
                logical_pool: 1,
                copyset: 1
            }
        );
        assert_eq!(
            CopysetId {
                logical_pool: 3,
                copyset: 7
            }
            .group_id(),
            (3u64 << 32) | 7
        );
        assert_eq!(
            CopysetId {
                logical_pool: 3,
                copyset: 7
            }
            .to_string(),
            "3/7"
        );
        assert_eq!(peer_address("10.0.0.1:8200:0"), Some("10.0.0.1:8200"));
        assert_eq!(peer_address("10.0.0.1"), None);
    }
}
