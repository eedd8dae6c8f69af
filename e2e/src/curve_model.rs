//! One small model of a test cluster's Curve state, kept as Curve v1.2.6's MDS keeps its
//! topology: physical pools, zones and servers from the cluster map (as `curvebs-tool
//! create_physicalpool` / `create_logicalpool` apply it), ChunkServers registered by the rule of
//! `RegistChunkServer`, copysets placed by the MDS's allocator, online states from heartbeat
//! times by the MDS's healthy checker, and a raft leader per copyset.
//!
//! Pure: every change takes `now`; the stand-ins ([`crate::curve_standins`]) do the I/O.
//! Citations `C:` are opencurve/curve@v1.2.6, `R:` baidu/braft@e255c0e4 (Curve's pin).

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use serde::Deserialize;

pub type CopysetKey = (u32, u32);

/// `statusCode`s of C:src/mds/common/mds_define.h:75-94.
pub mod code {
    pub const SUCCESS: i32 = 0;
    pub const INTERNAL_ERROR: i32 = -1;
    pub const INVALID_PARAM: i32 = -2;
    pub const CHUNKSERVER_NOT_FOUND: i32 = -6;
    pub const SERVER_NOT_FOUND: i32 = -7;
    pub const ZONE_NOT_FOUND: i32 = -8;
    pub const PHYSICAL_POOL_NOT_FOUND: i32 = -9;
    pub const COPYSET_NOT_FOUND: i32 = -11;
    pub const GEN_COPYSET_ERR: i32 = -12;
    pub const CANNOT_REMOVE_WHEN_NOT_EMPTY: i32 = -14;
    pub const CREATE_COPYSET_NODE_FAIL: i32 = -17;
    pub const LOGICAL_POOL_EXIST: i32 = -19;
}

/// C:proto/topology.proto:41-56.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ChunkServerStatus {
    ReadWrite,
    Pendding,
    Retired,
}

impl ChunkServerStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            ChunkServerStatus::ReadWrite => "READWRITE",
            ChunkServerStatus::Pendding => "PENDDING",
            ChunkServerStatus::Retired => "RETIRED",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OnlineState {
    Online,
    Offline,
    Unstable,
}

impl OnlineState {
    pub fn as_str(self) -> &'static str {
        match self {
            OnlineState::Online => "ONLINE",
            OnlineState::Offline => "OFFLINE",
            OnlineState::Unstable => "UNSTABLE",
        }
    }
}

/// The MDS's and ChunkServers' timing, shortened by tests.
#[derive(Clone, Debug)]
pub struct CurveSettings {
    /// `mds.heartbeat.misstimeoutMs` (C:conf/mds.conf:84): ONLINE below it, and the period of
    /// the healthy checker (C:src/mds/heartbeat/heartbeat_manager.cpp:60,92-97).
    pub miss_timeout: Duration,
    /// `mds.heartbeat.offlinetimeoutMs` (C:conf/mds.conf:86).
    pub offline_timeout: Duration,
    /// The ChunkServer's `mds.heartbeat_interval` (C:conf/chunkserver.conf:30, seconds).
    pub heartbeat_interval: Duration,
    /// How long a started ChunkServer reports `copysetLoadFin: false` (its ReloadCopysets).
    pub copyset_load_time: Duration,
    /// `mds.topology.UpdateMetricIntervalSec` (60 s): the pool bvars exist only after the
    /// first refresh following an election.
    pub metric_interval: Duration,
    /// What each ChunkServer reports in its heartbeat.
    pub disk_capacity: u64,
    pub disk_used: u64,
    /// Chunk pool bytes per ChunkServer (`chunkSizeTotalBytes`).
    pub chunk_pool_bytes: u64,
}

impl Default for CurveSettings {
    fn default() -> Self {
        CurveSettings {
            miss_timeout: Duration::from_millis(30_000),
            offline_timeout: Duration::from_millis(1_800_000),
            heartbeat_interval: Duration::from_secs(10),
            copyset_load_time: Duration::from_secs(0),
            metric_interval: Duration::from_secs(60),
            disk_capacity: 100 << 30,
            disk_used: 10 << 30,
            chunk_pool_bytes: 80 << 30,
        }
    }
}

/// The cluster map as `curvebs-tool` reads it (keys: C:tools/curvefsTool.cpp:50-66).
#[derive(Clone, Debug, Deserialize)]
pub struct ClusterMapFile {
    pub servers: Vec<MapServer>,
    #[serde(default)]
    pub logicalpools: Vec<MapLogicalPool>,
}

#[derive(Clone, Debug, Deserialize)]
pub struct MapServer {
    pub name: String,
    pub internalip: String,
    pub internalport: u32,
    pub externalip: String,
    pub externalport: u32,
    pub zone: String,
    pub physicalpool: String,
}

#[derive(Clone, Debug, Deserialize)]
pub struct MapLogicalPool {
    pub name: String,
    pub physicalpool: String,
    #[serde(rename = "type")]
    pub pool_type: i32,
    pub replicasnum: u32,
    pub copysetnum: u32,
    pub zonenum: u32,
    pub scatterwidth: u32,
}

#[derive(Clone, Debug, PartialEq)]
pub struct PhysicalPool {
    pub id: u32,
    pub name: String,
    pub desc: String,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Zone {
    pub id: u32,
    pub name: String,
    pub physical_pool: u32,
    pub desc: String,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Server {
    pub id: u32,
    pub host_name: String,
    pub internal_ip: String,
    pub internal_port: u32,
    pub external_ip: String,
    pub external_port: u32,
    pub zone: u32,
    pub physical_pool: u32,
    pub desc: String,
}

#[derive(Clone, Debug, PartialEq)]
pub struct LogicalPool {
    pub id: u32,
    pub name: String,
    pub physical_pool: u32,
    pub replicas: u32,
    pub copyset_num: u32,
    pub zone_num: u32,
    pub create_time: u64,
    pub scatter_width: u32,
}

#[derive(Clone, Debug, PartialEq)]
pub struct ChunkServer {
    pub id: u32,
    pub token: String,
    pub disk_type: String,
    pub server: u32,
    pub ip: String,
    pub port: u32,
    pub mount_point: String,
    pub external_ip: String,
    pub status: ChunkServerStatus,
    pub online: OnlineState,
    pub disk_capacity: u64,
    pub disk_used: u64,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Copyset {
    pub members: BTreeSet<u32>,
    /// The raft leader, if a majority of members run and hold the group.
    pub leader: Option<u32>,
    pub term: u64,
    pub last_index: u64,
}

/// A ChunkServer's data volume: its `chunkserver.dat` (id, token) and the copysets on it.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Disk {
    pub meta: Option<(u32, String)>,
    pub copysets: BTreeSet<CopysetKey>,
}

/// `RegistChunkServer`'s request (C:proto/topology.proto:142-152).
#[derive(Clone, Debug, PartialEq)]
pub struct RegistRequest {
    pub disk_type: String,
    pub disk_path: String,
    pub host_ip: String,
    pub port: u32,
    pub external_ip: Option<String>,
    pub id: Option<u32>,
    pub token: Option<String>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct RegistResponse {
    pub status: i32,
    pub id_token: Option<(u32, String)>,
}

#[derive(Clone, Debug)]
struct HeartbeatInfo {
    last: Instant,
    state: OnlineState,
}

/// One raft node of a copyset on one ChunkServer, as `/raft_stat` shows it.
#[derive(Clone, Debug, PartialEq)]
pub struct RaftNode {
    pub group: CopysetKey,
    pub peer: (String, u32),
    pub leader: bool,
    pub term: u64,
    /// braft's `std::set<PeerId>` order.
    pub peers: Vec<(String, u32)>,
    /// For a follower: its leader, `None` when it knows none.
    pub leader_peer: Option<(String, u32)>,
    pub last_index: u64,
    /// For a leader: one per other peer.
    pub replicators: Vec<ReplicatorView>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct ReplicatorView {
    pub peer: (String, u32),
    pub next_index: u64,
    /// `Some(n)`: the peer does not answer (braft's BLOCKING with n consecutive errors).
    pub blocking_errors: Option<u32>,
}

#[derive(Default)]
pub struct CurveModel {
    pub settings: CurveSettings,
    pub physical_pools: BTreeMap<u32, PhysicalPool>,
    pub zones: BTreeMap<u32, Zone>,
    pub servers: BTreeMap<u32, Server>,
    pub logical_pools: BTreeMap<u32, LogicalPool>,
    pub chunkservers: BTreeMap<u32, ChunkServer>,
    pub copysets: BTreeMap<CopysetKey, Copyset>,
    /// By disk (a claim's identity).
    pub disks: BTreeMap<String, Disk>,
    /// ChunkServer id → the disk of the stand-in serving it now.
    running: BTreeMap<u32, String>,
    /// The healthy checker's tracking (C:src/mds/heartbeat/chunkserver_healthy_checker.cpp).
    heartbeats: BTreeMap<u32, HeartbeatInfo>,
    /// When the MDS now leading took over (its topology metrics start one interval later).
    pub elected_at: Option<Instant>,
    last_ids: BTreeMap<&'static str, u32>,
    rng: u64,
}

impl CurveModel {
    pub fn new(settings: CurveSettings) -> CurveModel {
        CurveModel {
            settings,
            rng: 0x9E37_79B9_7F4A_7C15,
            ..CurveModel::default()
        }
    }

    /// Curve's id generators hand out last+1, from 1 (C:src/mds/topology/topology_id_generator.cpp).
    fn next_id(&mut self, kind: &'static str) -> u32 {
        let id = self.last_ids.entry(kind).or_insert(0);
        *id += 1;
        *id
    }

    fn random(&mut self) -> u64 {
        // xorshift64: Curve shuffles with std::random_device; a seeded generator keeps tests
        // repeatable.
        self.rng ^= self.rng << 13;
        self.rng ^= self.rng >> 7;
        self.rng ^= self.rng << 17;
        self.rng
    }

    /// 8 lowercase letters (C:src/mds/topology/topology_token_generator.cpp:35-41).
    fn token(&mut self) -> String {
        (0..8)
            .map(|_| (b'a' + (self.random() % 26) as u8) as char)
            .collect()
    }

    pub fn physical_pool_by_name(&self, name: &str) -> Option<&PhysicalPool> {
        self.physical_pools.values().find(|p| p.name == name)
    }

    fn zone_by_name(&self, pool: u32, name: &str) -> Option<&Zone> {
        self.zones
            .values()
            .find(|z| z.physical_pool == pool && z.name == name)
    }

    /// `curvebs-tool -op=create_physicalpool` (HandleBuildCluster, C:tools/curvefsTool.cpp:254-292,
    /// ScanCluster 535-693): pools, zones and servers not in the map are deleted (a server only
    /// when all its ChunkServers are RETIRED: DeleteServer, C:src/mds/topology/
    /// topology_service_manager.cpp:478-512), missing ones created with `desc` "" (695-830);
    /// a server is matched by name, zone and pool and never updated.
    pub fn apply_physical_pool(&mut self, map: &ClusterMapFile) -> Result<(), String> {
        let wanted = |s: &Server, model: &CurveModel| {
            let zone = &model.zones[&s.zone];
            let pool = &model.physical_pools[&s.physical_pool];
            map.servers.iter().any(|m| {
                m.name == s.host_name && m.zone == zone.name && m.physicalpool == pool.name
            })
        };
        let to_delete: Vec<u32> = (self.servers.values())
            .filter(|s| !wanted(s, self))
            .map(|s| s.id)
            .collect();
        for id in to_delete {
            let busy = (self.chunkservers.values())
                .any(|c| c.server == id && c.status != ChunkServerStatus::Retired);
            if busy {
                return Err(format!(
                    "DeleteServer {id}: statusCode {} (a ChunkServer of it is not RETIRED)",
                    code::CANNOT_REMOVE_WHEN_NOT_EMPTY
                ));
            }
            self.chunkservers.retain(|_, c| c.server != id);
            self.servers.remove(&id);
        }
        let zone_wanted = |z: &Zone, model: &CurveModel| {
            let pool = &model.physical_pools[&z.physical_pool].name;
            (map.servers.iter()).any(|m| &m.physicalpool == pool && m.zone == z.name)
        };
        let zones: Vec<u32> = (self.zones.values())
            .filter(|z| !zone_wanted(z, self))
            .map(|z| z.id)
            .collect();
        for id in zones {
            if self.servers.values().any(|s| s.zone == id) {
                return Err(format!("DeleteZone {id}: it still has servers"));
            }
            self.zones.remove(&id);
        }
        self.physical_pools
            .retain(|_, p| map.servers.iter().any(|m| m.physicalpool == p.name));
        for m in &map.servers {
            if self.physical_pool_by_name(&m.physicalpool).is_none() {
                let id = self.next_id("physicalpool");
                let pool = PhysicalPool {
                    id,
                    name: m.physicalpool.clone(),
                    desc: String::new(),
                };
                self.physical_pools.insert(id, pool);
            }
        }
        for m in &map.servers {
            let pool = self.physical_pool_by_name(&m.physicalpool).unwrap().id;
            if self.zone_by_name(pool, &m.zone).is_none() {
                let id = self.next_id("zone");
                let zone = Zone {
                    id,
                    name: m.zone.clone(),
                    physical_pool: pool,
                    desc: String::new(),
                };
                self.zones.insert(id, zone);
            }
        }
        for m in &map.servers {
            let pool = self.physical_pool_by_name(&m.physicalpool).unwrap().id;
            let zone = self.zone_by_name(pool, &m.zone).unwrap().id;
            if self.servers.values().any(|s| s.host_name == m.name) {
                continue;
            }
            let id = self.next_id("server");
            let server = Server {
                id,
                host_name: m.name.clone(),
                internal_ip: m.internalip.clone(),
                internal_port: m.internalport,
                external_ip: m.externalip.clone(),
                external_port: m.externalport,
                zone,
                physical_pool: pool,
                desc: String::new(),
            };
            self.servers.insert(id, server);
        }
        Ok(())
    }

    /// `curvebs-tool -op=create_logicalpool` (C:tools/curvefsTool.cpp:137-200; pools that exist
    /// are skipped, ScanLogicalPool 202-229) and the MDS's CreateLogicalPool
    /// (C:src/mds/topology/topology_service_manager.cpp:1098-1240): copysets generated over
    /// the pool's non-RETIRED ChunkServers (861-945), ids from 1, then created on every member
    /// (947-967; a member that does not run fails the call).
    pub fn apply_logical_pool(
        &mut self,
        map: &ClusterMapFile,
        create_time: u64,
    ) -> Result<(), String> {
        for m in &map.logicalpools {
            let Some(pool) = self.physical_pool_by_name(&m.physicalpool).map(|p| p.id) else {
                return Err(format!(
                    "CreateLogicalPool {}: statusCode {}",
                    m.name,
                    code::PHYSICAL_POOL_NOT_FOUND
                ));
            };
            if (self.logical_pools.values()).any(|l| l.physical_pool == pool && l.name == m.name) {
                continue;
            }
            let chunkservers: Vec<(u32, u32)> = (self.chunkservers.values())
                .filter(|c| c.status != ChunkServerStatus::Retired)
                .filter_map(|c| {
                    let server = self.servers.get(&c.server)?;
                    (server.physical_pool == pool).then_some((c.id, server.zone))
                })
                .collect();
            // CopysetManager::Init supports only zoneChoseNum == replicaNum
            // (C:src/mds/copyset/copyset_manager.cpp:32-45); scatterWidth ≥ cluster size − 1
            // is refused (59-63).
            if m.zonenum != m.replicasnum
                || (m.copysetnum == 0 && m.scatterwidth == 0)
                || m.scatterwidth as usize + 1 >= chunkservers.len().max(1)
            {
                return Err(format!(
                    "CreateLogicalPool {}: statusCode {} ({} ChunkServers, zonenum {}, replicasnum {})",
                    m.name,
                    code::GEN_COPYSET_ERR,
                    chunkservers.len(),
                    m.zonenum,
                    m.replicasnum
                ));
            }
            let placed = place_copysets(&chunkservers, m.replicasnum, m.copysetnum, &mut || {
                self.random()
            })
            .ok_or_else(|| {
                format!(
                    "CreateLogicalPool {}: statusCode {} (fewer zones than {})",
                    m.name,
                    code::GEN_COPYSET_ERR,
                    m.replicasnum
                )
            })?;
            let members: BTreeSet<u32> = placed.iter().flatten().copied().collect();
            if let Some(down) = members.iter().find(|id| !self.running.contains_key(id)) {
                return Err(format!(
                    "CreateLogicalPool {}: statusCode {} (ChunkServer {down} does not answer)",
                    m.name,
                    code::CREATE_COPYSET_NODE_FAIL
                ));
            }
            let id = self.next_id("logicalpool");
            self.logical_pools.insert(
                id,
                LogicalPool {
                    id,
                    name: m.name.clone(),
                    physical_pool: pool,
                    replicas: m.replicasnum,
                    copyset_num: placed.len() as u32,
                    zone_num: m.zonenum,
                    create_time,
                    scatter_width: m.scatterwidth,
                },
            );
            for (i, replicas) in placed.into_iter().enumerate() {
                let key = (id, i as u32 + 1);
                for member in &replicas {
                    let disk = self.running[member].clone();
                    self.disks.entry(disk).or_default().copysets.insert(key);
                }
                let copyset = Copyset {
                    members: replicas,
                    leader: None,
                    term: 1,
                    last_index: 1,
                };
                self.copysets.insert(key, copyset);
            }
        }
        self.elect_leaders();
        Ok(())
    }

    /// `TopologyServiceManager::RegistChunkServer`
    /// (C:src/mds/topology/topology_service_manager.cpp:58-212), step by step.
    pub fn regist_chunkserver(&mut self, req: &RegistRequest) -> RegistResponse {
        let fail = |status| RegistResponse {
            status,
            id_token: None,
        };
        if let Some(id) = req.id {
            // 66-72: an id without a token.
            let Some(token) = &req.token else {
                return fail(code::INVALID_PARAM);
            };
            if let Some(cs) = self.chunkservers.get(&id) {
                // 75-81: RETIRED; 83-89: another token.
                if cs.status == ChunkServerStatus::Retired || &cs.token != token {
                    return fail(code::INVALID_PARAM);
                }
                // 90-102: the same id and token.
                return RegistResponse {
                    status: code::SUCCESS,
                    id_token: Some((cs.id, cs.token.clone())),
                };
            }
        }
        // 110-145: a ChunkServer on this ip:port that is neither RETIRED nor OFFLINE gives its
        // own id and token — also to an empty disk that had none (the trap of issue 29).
        let same: Vec<&ChunkServer> = (self.chunkservers.values())
            .filter(|c| {
                c.status != ChunkServerStatus::Retired
                    && c.online != OnlineState::Offline
                    && c.ip == req.host_ip
                    && c.port == req.port
            })
            .collect();
        match same.as_slice() {
            [cs] => {
                return RegistResponse {
                    status: code::SUCCESS,
                    id_token: Some((cs.id, cs.token.clone())),
                };
            }
            [_, _, ..] => return fail(code::INTERNAL_ERROR),
            [] => {}
        }
        // 147-153: FindServerByHostIpPort.
        let Some(server) = self.find_server_by_host_ip_port(&req.host_ip, req.port) else {
            return fail(code::SERVER_NOT_FOUND);
        };
        let server = self.servers[&server].clone();
        // 172-180.
        if req
            .external_ip
            .as_ref()
            .is_some_and(|e| *e != server.external_ip)
        {
            return fail(code::INTERNAL_ERROR);
        }
        let id = self.next_id("chunkserver");
        let token = self.token();
        // 183-193: READWRITE and ONLINE.
        self.chunkservers.insert(
            id,
            ChunkServer {
                id,
                token: token.clone(),
                disk_type: req.disk_type.clone(),
                server: server.id,
                ip: req.host_ip.clone(),
                port: req.port,
                mount_point: req.disk_path.clone(),
                external_ip: server.external_ip.clone(),
                status: ChunkServerStatus::ReadWrite,
                online: OnlineState::Online,
                disk_capacity: 0,
                disk_used: 0,
            },
        );
        RegistResponse {
            status: code::SUCCESS,
            id_token: Some((id, token)),
        }
    }

    /// Topology::FindServerByHostIpPort (C:src/mds/topology/topology.cpp:587-607): internal or
    /// external IP, a stored port of 0 matching any.
    pub fn find_server_by_host_ip_port(&self, ip: &str, port: u32) -> Option<u32> {
        self.servers
            .values()
            .find(|s| {
                (s.internal_ip == ip && (s.internal_port == 0 || s.internal_port == port))
                    || (s.external_ip == ip && (s.external_port == 0 || s.external_port == port))
            })
            .map(|s| s.id)
    }

    /// A ChunkServer process on `disk` runs as `id` (registered, its server listening).
    pub fn chunkserver_started(&mut self, id: u32, disk: &str) {
        self.running.insert(id, disk.to_string());
        let cs = &self.chunkservers[&id];
        let meta = Some((id, cs.token.clone()));
        self.disks.entry(disk.to_string()).or_default().meta = meta;
        self.elect_leaders();
    }

    /// Its process stopped: no server, no heartbeats.
    pub fn chunkserver_stopped(&mut self, id: u32) {
        self.running.remove(&id);
        self.elect_leaders();
    }

    pub fn is_running(&self, id: u32) -> bool {
        self.running.contains_key(&id)
    }

    /// `id` runs and its disk holds the group: it takes part in the copyset's raft group.
    fn serves(&self, id: u32, key: CopysetKey) -> bool {
        (self.running.get(&id))
            .and_then(|disk| self.disks.get(disk))
            .is_some_and(|d| d.copysets.contains(&key))
    }

    /// Raft: a leader stays while it serves; otherwise the lowest id among the serving
    /// members leads in a new term if they are a majority, else there is none (braft's
    /// pre-vote keeps a minority FOLLOWER without a leader, R:src/braft/node.cpp).
    fn elect_leaders(&mut self) {
        let keys: Vec<CopysetKey> = self.copysets.keys().copied().collect();
        for key in keys {
            let copyset = &self.copysets[&key];
            let serving: Vec<u32> = (copyset.members.iter().copied())
                .filter(|id| self.serves(*id, key))
                .collect();
            let majority = serving.len() * 2 > copyset.members.len();
            let leader = copyset.leader.filter(|l| serving.contains(l) && majority);
            let copyset = self.copysets.get_mut(&key).unwrap();
            if leader.is_none() && majority {
                copyset.leader = serving.first().copied();
                copyset.term += 1;
                // A new leader appends a configuration entry of its term.
                copyset.last_index += 1;
            } else {
                copyset.leader = leader;
            }
        }
    }

    /// A heartbeat, checked as HeartbeatManager::CheckRequest does
    /// (C:src/mds/heartbeat/heartbeat_manager.cpp:252-308): the id known, not RETIRED, the
    /// ip:port and the token its own; the time is taken before any copyset check (183-211).
    /// Returns the `ChunkServerHeartbeatResponse` status (C:proto/heartbeat.proto:132-149).
    pub fn heartbeat(&mut self, id: u32, token: &str, ip: &str, port: u32, now: Instant) -> i32 {
        let Some(cs) = self.chunkservers.get_mut(&id) else {
            return 2; // hbChunkserverUnknown
        };
        if cs.status == ChunkServerStatus::Retired {
            return 3; // hbChunkserverRetired
        }
        if cs.ip != ip || cs.port != port {
            return 4; // hbChunkserverIpPortNotMatch
        }
        if cs.token != token {
            return 5; // hbChunkserverTokenNotMatch
        }
        cs.disk_capacity = self.settings.disk_capacity;
        cs.disk_used = self.settings.disk_used;
        // UpdateLastReceivedHeartbeatTime (chunkserver_healthy_checker.cpp:104-113): a new
        // entry starts UNSTABLE.
        self.heartbeats
            .entry(id)
            .and_modify(|h| h.last = now)
            .or_insert(HeartbeatInfo {
                last: now,
                state: OnlineState::Unstable,
            });
        0
    }

    /// A new primary MDS: HeartbeatManager::Init seeds every non-RETIRED ChunkServer with now
    /// (heartbeat_manager.cpp:63-72), in a fresh healthy checker.
    pub fn mds_takes_over(&mut self, now: Instant) {
        self.heartbeats.clear();
        let ids: Vec<u32> = (self.chunkservers.values())
            .filter(|c| c.status != ChunkServerStatus::Retired)
            .map(|c| c.id)
            .collect();
        for id in ids {
            let info = HeartbeatInfo {
                last: now,
                state: OnlineState::Unstable,
            };
            self.heartbeats.insert(id, info);
        }
        self.elected_at = Some(now);
    }

    /// One run of ChunkserverHealthyChecker::CheckHeartBeatInterval
    /// (C:src/mds/heartbeat/chunkserver_healthy_checker.cpp:38-102): the state from the time
    /// since the last heartbeat, written to the topology when it changes; then
    /// TrySetChunkServerRetiredIfNeed (135-179).
    pub fn check_heartbeats(&mut self, now: Instant) {
        let ids: Vec<u32> = self.heartbeats.keys().copied().collect();
        for id in ids {
            let info = &self.heartbeats[&id];
            let state = online_state(now.saturating_duration_since(info.last), &self.settings);
            if state != info.state {
                if let Some(cs) = self.chunkservers.get_mut(&id) {
                    cs.online = state;
                }
                self.heartbeats.get_mut(&id).unwrap().state = state;
            }
            if self.retire_if_needed(id, state) {
                self.heartbeats.remove(&id);
            }
        }
    }

    fn retire_if_needed(&mut self, id: u32, state: OnlineState) -> bool {
        if state == OnlineState::Online {
            return false;
        }
        let Some(cs) = self.chunkservers.get(&id) else {
            return false;
        };
        if cs.status == ChunkServerStatus::Retired {
            return true;
        }
        if state != OnlineState::Offline && cs.status != ChunkServerStatus::Pendding {
            return false;
        }
        if !self.copysets_on(id).is_empty() {
            return false;
        }
        self.chunkservers.get_mut(&id).unwrap().status = ChunkServerStatus::Retired;
        true
    }

    /// The copysets the MDS lists on a ChunkServer (sorted by pool and copyset:
    /// C:src/mds/topology/topology.h:573-579).
    pub fn copysets_on(&self, id: u32) -> Vec<CopysetKey> {
        (self.copysets.iter())
            .filter(|(_, c)| c.members.contains(&id))
            .map(|(k, _)| *k)
            .collect()
    }

    pub fn copyset_count(&self) -> usize {
        self.copysets.len()
    }

    /// Copysets per ChunkServer id, for scenarios to compare with the operator's status.
    pub fn copysets_per_chunkserver(&self) -> BTreeMap<u32, Vec<CopysetKey>> {
        (self.chunkservers.keys())
            .map(|id| (*id, self.copysets_on(*id)))
            .collect()
    }

    /// The non-RETIRED ChunkServer at ip:port.
    pub fn chunkserver_at(&self, ip: &str, port: u32) -> Option<&ChunkServer> {
        (self.chunkservers.values())
            .find(|c| c.ip == ip && c.port == port && c.status != ChunkServerStatus::Retired)
    }

    fn peer_of(&self, id: u32) -> (String, u32) {
        let cs = &self.chunkservers[&id];
        (cs.ip.clone(), cs.port)
    }

    /// The raft nodes the ChunkServer running as `id` hosts: the groups on its disk, in
    /// braft's order of group ids as strings (R:src/braft/node_manager.cpp:155-166).
    pub fn raft_nodes(&self, id: u32, now_errors: u32) -> Vec<RaftNode> {
        let Some(disk) = self.running.get(&id).and_then(|d| self.disks.get(d)) else {
            return Vec::new();
        };
        let mut nodes: Vec<RaftNode> = (disk.copysets.iter())
            .filter_map(|key| {
                let copyset = self.copysets.get(key)?;
                let mut peers: Vec<(String, u32)> =
                    copyset.members.iter().map(|m| self.peer_of(*m)).collect();
                peers.sort_by_key(|(ip, port)| peer_order(ip, *port));
                let leader = copyset.leader == Some(id);
                let replicators = if leader {
                    (copyset.members.iter())
                        .filter(|m| **m != id)
                        .map(|m| {
                            let up = self.serves(*m, *key);
                            ReplicatorView {
                                peer: self.peer_of(*m),
                                next_index: if up { copyset.last_index + 1 } else { 2 },
                                blocking_errors: (!up).then_some(now_errors.max(1)),
                            }
                        })
                        .collect()
                } else {
                    Vec::new()
                };
                Some(RaftNode {
                    group: *key,
                    peer: self.peer_of(id),
                    leader,
                    term: copyset.term,
                    peers,
                    leader_peer: (!leader)
                        .then(|| copyset.leader.map(|l| self.peer_of(l)))
                        .flatten(),
                    last_index: copyset.last_index,
                    replicators,
                })
            })
            .collect();
        nodes.sort_by_key(|n| group_id(n.group).to_string());
        nodes
    }
}

/// ONLINE below the miss timeout, UNSTABLE below the offline timeout, else OFFLINE
/// (C:src/mds/heartbeat/chunkserver_healthy_checker.cpp:63-102).
pub fn online_state(since_heartbeat: Duration, settings: &CurveSettings) -> OnlineState {
    if since_heartbeat < settings.miss_timeout {
        OnlineState::Online
    } else if since_heartbeat < settings.offline_timeout {
        OnlineState::Unstable
    } else {
        OnlineState::Offline
    }
}

/// `ToGroupId` (C:include/chunkserver/chunkserver_common.h:85-95).
pub fn group_id((pool, copyset): CopysetKey) -> u64 {
    (u64::from(pool) << 32) | u64::from(copyset)
}

/// braft orders peers by EndPoint: `ip2int` (the address's `s_addr`, network byte order read
/// as a host integer), then port (brpc src/butil/endpoint.h:138-139,166-170;
/// R:src/braft/configuration.h:78-84).
pub fn peer_order(ip: &str, port: u32) -> (u32, u32) {
    let octets: Vec<u8> = ip.split('.').filter_map(|o| o.parse().ok()).collect();
    let s_addr = match octets.as_slice() {
        [a, b, c, d] => u32::from_le_bytes([*a, *b, *c, *d]),
        _ => 0,
    };
    (s_addr, port)
}

/// CopysetZoneShufflePolicy::GenCopyset with CopysetPermutationPolicyNXX
/// (C:src/mds/copyset/copyset_policy.cpp:75-114,154-196): per permutation, shuffle each
/// zone's ChunkServers, take row i of every zone in zone-id order (the smallest zone bounds
/// the rows), and cut the list into groups of `replicas`; repeat until `count` copysets.
/// `chunkservers` are (id, zone id). None when there are fewer zones than replicas.
pub fn place_copysets(
    chunkservers: &[(u32, u32)],
    replicas: u32,
    count: u32,
    random: &mut dyn FnMut() -> u64,
) -> Option<Vec<BTreeSet<u32>>> {
    let mut zones: BTreeMap<u32, Vec<u32>> = BTreeMap::new();
    for (id, zone) in chunkservers {
        zones.entry(*zone).or_default().push(*id);
    }
    if (zones.len() as u32) < replicas || replicas == 0 {
        return None;
    }
    let mut out = Vec::new();
    // GetMaxPermutationNum is numCopysets (131-135).
    for _ in 0..count {
        for list in zones.values_mut() {
            for i in (1..list.len()).rev() {
                let j = (random() % (i as u64 + 1)) as usize;
                list.swap(i, j);
            }
        }
        let rows = zones.values().map(Vec::len).min().unwrap_or(0);
        let order: Vec<u32> = (0..rows)
            .flat_map(|i| zones.values().map(move |z| z[i]))
            .collect();
        for group in order.chunks_exact(replicas as usize) {
            out.push(group.iter().copied().collect());
            if out.len() == count as usize {
                return Some(out);
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map_json(servers: &[(&str, &str, u32, &str)], copysets: u32) -> ClusterMapFile {
        let servers: Vec<serde_json::Value> = servers
            .iter()
            .map(|(name, ip, port, zone)| {
                serde_json::json!({"name": name, "internalip": ip, "internalport": port,
                    "externalip": ip, "externalport": port, "zone": zone, "physicalpool": "pool1",
                    "poolset": "default"})
            })
            .collect();
        serde_json::from_value(serde_json::json!({
            "servers": servers,
            "logicalpools": [{"name": "logicalPool1", "physicalpool": "pool1", "segmentsize": 1u64 << 30,
                "replicasnum": 3, "copysetnum": copysets, "zonenum": 3, "type": 0, "scatterwidth": 0,
                "createtime": 0}],
            "poolsets": [{"name": "default", "type": "default"}], "npools": 1
        }))
        .unwrap()
    }

    fn three_servers() -> ClusterMapFile {
        map_json(
            &[
                ("node-1", "127.0.0.101", 0, "zone1"),
                ("node-2", "127.0.0.102", 0, "zone2"),
                ("node-3", "127.0.0.103", 0, "zone3"),
            ],
            30,
        )
    }

    fn request(ip: &str, port: u32, meta: Option<(u32, &str)>) -> RegistRequest {
        RegistRequest {
            disk_type: "nvme".into(),
            disk_path: "local:///curvebs/chunkserver/data".into(),
            host_ip: ip.into(),
            port,
            external_ip: None,
            id: meta.map(|m| m.0),
            token: meta.map(|m| m.1.to_string()),
        }
    }

    /// A model with the map applied and two ChunkServers per server (ports 8200, 8201),
    /// started and registered.
    fn running_cluster() -> (CurveModel, Instant) {
        let now = Instant::now();
        let mut model = CurveModel::new(CurveSettings::default());
        let map = three_servers();
        model.apply_physical_pool(&map).unwrap();
        for ip in ["127.0.0.101", "127.0.0.102", "127.0.0.103"] {
            for port in [8200, 8201] {
                let answer = model.regist_chunkserver(&request(ip, port, None));
                let (id, token) = answer.id_token.unwrap();
                model.chunkserver_started(id, &format!("{ip}:{port}"));
                assert_eq!(model.heartbeat(id, &token, ip, port, now), 0);
            }
        }
        model.mds_takes_over(now);
        // The healthy checker's first run: tracked ChunkServers become ONLINE internally.
        model.check_heartbeats(now);
        model.apply_logical_pool(&map, 1).unwrap();
        (model, now)
    }

    #[test]
    fn the_cluster_map_becomes_pools_zones_and_servers_with_ids_from_one() {
        let mut model = CurveModel::new(CurveSettings::default());
        model.apply_physical_pool(&three_servers()).unwrap();
        assert_eq!(
            model.physical_pools[&1],
            PhysicalPool {
                id: 1,
                name: "pool1".into(),
                desc: String::new()
            }
        );
        let zones: Vec<(u32, &str)> = (model.zones.values())
            .map(|z| (z.id, z.name.as_str()))
            .collect();
        assert_eq!(zones, [(1, "zone1"), (2, "zone2"), (3, "zone3")]);
        assert_eq!(model.servers[&2].host_name, "node-2");
        assert_eq!(model.servers[&2].zone, 2);
        // Applying it again changes nothing; a new server gets the next id.
        let mut grown = three_servers();
        grown.servers.push(MapServer {
            name: "node-4".into(),
            internalip: "127.0.0.104".into(),
            internalport: 0,
            externalip: "127.0.0.104".into(),
            externalport: 0,
            zone: "zone1".into(),
            physicalpool: "pool1".into(),
        });
        model.apply_physical_pool(&grown).unwrap();
        assert_eq!(model.servers.len(), 4);
        assert_eq!(model.servers[&4].zone, 1);
    }

    #[test]
    fn a_server_with_a_chunkserver_not_retired_is_not_deleted() {
        let (mut model, _) = running_cluster();
        let mut smaller = three_servers();
        smaller.servers.pop();
        let err = model.apply_physical_pool(&smaller).unwrap_err();
        assert!(err.contains("DeleteServer 3: statusCode -14"), "{err}");
        assert_eq!(model.servers.len(), 3);
    }

    #[test]
    fn registration_follows_regist_chunkserver_step_by_step() {
        let (mut model, now) = running_cluster();
        let cs1 = model.chunkservers[&1].clone();
        let token = cs1.token.as_str();
        let ip = cs1.ip.as_str();
        let ok = |id: u32, token: &str| RegistResponse {
            status: 0,
            id_token: Some((id, token.to_string())),
        };
        let fail = |status| RegistResponse {
            status,
            id_token: None,
        };
        let mut id_without_token = request(ip, 8200, None);
        id_without_token.id = Some(1);
        assert_eq!(model.regist_chunkserver(&id_without_token), fail(-2));
        assert_eq!(
            model.regist_chunkserver(&request(ip, 8200, Some((1, "wrongtok")))),
            fail(-2)
        );
        assert_eq!(
            model.regist_chunkserver(&request(ip, 8200, Some((1, token)))),
            ok(1, token)
        );
        // The trap: an empty disk (no id) on the ip:port of ONLINE (or UNSTABLE) id 1 gets
        // id 1 and its token.
        assert_eq!(
            model.regist_chunkserver(&request(ip, 8200, None)),
            ok(1, token)
        );
        model.chunkserver_stopped(1);
        model.check_heartbeats(now + Duration::from_secs(31));
        assert_eq!(model.chunkservers[&1].online, OnlineState::Unstable);
        assert_eq!(
            model.regist_chunkserver(&request(ip, 8200, None)),
            ok(1, token)
        );
        // Only once id 1 is OFFLINE does an empty disk get a new id.
        model.check_heartbeats(now + Duration::from_secs(1801));
        assert_eq!(model.chunkservers[&1].online, OnlineState::Offline);
        let fresh = model.regist_chunkserver(&request(ip, 8200, None));
        assert_eq!(fresh.status, 0);
        assert_eq!(fresh.id_token.as_ref().unwrap().0, 7);
        // An unknown server: -7; an external IP other than the server's: -1.
        assert_eq!(
            model.regist_chunkserver(&request("10.9.9.9", 8200, None)),
            fail(-7)
        );
        let mut external = request("127.0.0.102", 8299, None);
        external.external_ip = Some("10.0.0.2".into());
        assert_eq!(model.regist_chunkserver(&external), fail(-1));
        // Two live records on one ip:port: -1.
        let second = model.chunkservers[&7].clone();
        assert_eq!((second.ip.as_str(), second.port), (ip, 8200));
        model.chunkservers.get_mut(&1).unwrap().online = OnlineState::Online;
        assert_eq!(model.regist_chunkserver(&request(ip, 8200, None)), fail(-1));
        // A RETIRED id is refused even with its token.
        model.chunkservers.get_mut(&1).unwrap().status = ChunkServerStatus::Retired;
        assert_eq!(
            model.regist_chunkserver(&request(ip, 8200, Some((1, token)))),
            fail(-2)
        );
    }

    #[test]
    fn an_empty_disk_that_takes_the_old_id_holds_none_of_its_copysets() {
        let (mut model, _) = running_cluster();
        let on_1 = model.copysets_on(1);
        assert!(!on_1.is_empty());
        let leader_of_1 = model.raft_nodes(1, 1).len();
        assert_eq!(leader_of_1, on_1.len());
        model.chunkserver_stopped(1);
        let answer = model.regist_chunkserver(&request("127.0.0.101", 8200, None));
        assert_eq!(answer.id_token.as_ref().unwrap().0, 1);
        model.chunkserver_started(1, "a-new-claim");
        // The MDS still lists them on id 1, but its raft serves none.
        assert_eq!(model.copysets_on(1), on_1);
        assert!(model.raft_nodes(1, 1).is_empty());
        assert_eq!(model.chunkservers[&1].online, OnlineState::Online);
    }

    #[test]
    fn copysets_are_placed_one_copy_per_zone_with_the_pools_count() {
        let (model, _) = running_cluster();
        assert_eq!(model.copyset_count(), 30);
        assert_eq!(model.logical_pools[&1].copyset_num, 30);
        let zone_of = |id: &u32| model.servers[&model.chunkservers[id].server].zone;
        for (key, copyset) in &model.copysets {
            let zones: BTreeSet<u32> = copyset.members.iter().map(zone_of).collect();
            assert_eq!(copyset.members.len(), 3, "{key:?}");
            assert_eq!(zones.len(), 3, "{key:?} has two copies in one zone");
            assert!(copyset.leader.is_some());
        }
        let keys: Vec<CopysetKey> = model.copysets.keys().copied().collect();
        assert_eq!(keys.first(), Some(&(1, 1)));
        assert_eq!(keys.last(), Some(&(1, 30)));
        // Every ChunkServer got some (30 copysets × 3 copies over 6).
        let per = model.copysets_per_chunkserver();
        assert_eq!(per.values().map(Vec::len).sum::<usize>(), 90);
        assert!(per.values().all(|c| !c.is_empty()), "{per:?}");
    }

    #[test]
    fn placement_needs_as_many_zones_as_copies() {
        let mut rng = 7u64;
        let mut random = || {
            rng = rng.wrapping_mul(6364136223846793005).wrapping_add(1);
            rng >> 33
        };
        assert_eq!(place_copysets(&[(1, 1), (2, 2)], 3, 1, &mut random), None);
        // Four zones, three copies: the windows over the rows still take distinct zones.
        let four: Vec<(u32, u32)> = (1..=8).map(|i| (i, (i - 1) % 4 + 1)).collect();
        let placed = place_copysets(&four, 3, 20, &mut random).unwrap();
        assert_eq!(placed.len(), 20);
        for group in placed {
            let zones: BTreeSet<u32> = group.iter().map(|i| (i - 1) % 4 + 1).collect();
            assert_eq!(zones.len(), 3, "{group:?}");
        }
    }

    #[test]
    fn a_pool_is_refused_when_a_member_does_not_run_or_zones_differ_from_copies() {
        let now = Instant::now();
        let mut model = CurveModel::new(CurveSettings::default());
        let map = three_servers();
        model.apply_physical_pool(&map).unwrap();
        for ip in ["127.0.0.101", "127.0.0.102", "127.0.0.103"] {
            let (id, _) = model
                .regist_chunkserver(&request(ip, 8200, None))
                .id_token
                .unwrap();
            if ip != "127.0.0.103" {
                model.chunkserver_started(id, ip);
            }
        }
        model.mds_takes_over(now);
        let err = model.apply_logical_pool(&map, 1).unwrap_err();
        assert!(err.contains("statusCode -17"), "{err}");
        assert!(model.logical_pools.is_empty());
        let mut two_zones = map.clone();
        two_zones.logicalpools[0].zonenum = 2;
        let err = model.apply_logical_pool(&two_zones, 1).unwrap_err();
        assert!(err.contains("statusCode -12"), "{err}");
    }

    #[test]
    fn online_state_follows_the_time_since_the_last_heartbeat() {
        let settings = CurveSettings {
            miss_timeout: Duration::from_secs(3),
            offline_timeout: Duration::from_secs(10),
            ..CurveSettings::default()
        };
        let state = |s: u64| online_state(Duration::from_secs(s), &settings);
        assert_eq!(state(0), OnlineState::Online);
        assert_eq!(state(2), OnlineState::Online);
        assert_eq!(state(3), OnlineState::Unstable);
        assert_eq!(state(9), OnlineState::Unstable);
        assert_eq!(state(10), OnlineState::Offline);

        let (mut model, now) = running_cluster();
        model.settings = settings;
        let token = model.chunkservers[&2].token.clone();
        // Only the checker writes the state: nothing changes between its runs.
        model.chunkserver_stopped(1);
        assert_eq!(model.chunkservers[&1].online, OnlineState::Online);
        for s in 1..=4 {
            model.heartbeat(2, &token, "127.0.0.101", 8201, now + Duration::from_secs(s));
        }
        model.check_heartbeats(now + Duration::from_secs(4));
        assert_eq!(model.chunkservers[&1].online, OnlineState::Unstable);
        assert_eq!(model.chunkservers[&2].online, OnlineState::Online);
        model.check_heartbeats(now + Duration::from_secs(11));
        assert_eq!(model.chunkservers[&1].online, OnlineState::Offline);
        // Still a member of copysets: OFFLINE but not RETIRED.
        assert_eq!(model.chunkservers[&1].status, ChunkServerStatus::ReadWrite);
        // A new primary seeds every ChunkServer with now: ONLINE again until it misses.
        model.mds_takes_over(now + Duration::from_secs(12));
        model.check_heartbeats(now + Duration::from_secs(13));
        assert_eq!(model.chunkservers[&1].online, OnlineState::Online);
    }

    #[test]
    fn a_chunkserver_gone_before_the_first_check_keeps_its_topology_state() {
        // Tracking starts UNSTABLE (chunkserver_healthy_checker.cpp:104-113) and the topology
        // is written only on a change of the checker's state (44-50): a ChunkServer that stops
        // before the checker first saw it ONLINE is never written UNSTABLE — the topology
        // keeps ONLINE until the offline timeout.
        let now = Instant::now();
        let mut model = CurveModel::new(CurveSettings::default());
        model.apply_physical_pool(&three_servers()).unwrap();
        let (id, token) = (model.regist_chunkserver(&request("127.0.0.101", 8200, None)))
            .id_token
            .unwrap();
        model.heartbeat(id, &token, "127.0.0.101", 8200, now);
        model.check_heartbeats(now + Duration::from_secs(31));
        assert_eq!(model.chunkservers[&id].online, OnlineState::Online);
        model.check_heartbeats(now + Duration::from_secs(1800));
        assert_eq!(model.chunkservers[&id].online, OnlineState::Offline);
    }

    #[test]
    fn heartbeats_are_checked_like_the_mds_does() {
        let (mut model, now) = running_cluster();
        let token = model.chunkservers[&1].token.clone();
        assert_eq!(model.heartbeat(99, &token, "127.0.0.101", 8200, now), 2);
        assert_eq!(model.heartbeat(1, &token, "127.0.0.109", 8200, now), 4);
        assert_eq!(model.heartbeat(1, "zzzzzzzz", "127.0.0.101", 8200, now), 5);
        assert_eq!(model.heartbeat(1, &token, "127.0.0.101", 8200, now), 0);
        assert_eq!(model.chunkservers[&1].disk_capacity, 100 << 30);
    }

    #[test]
    fn an_offline_chunkserver_without_copysets_is_retired() {
        let (mut model, now) = running_cluster();
        model.settings.offline_timeout = Duration::from_secs(40);
        // Id 1 loses its copysets (as if moved away), then stops.
        for copyset in model.copysets.values_mut() {
            if copyset.members.remove(&1) {
                copyset.members.insert(2);
            }
        }
        model.chunkserver_stopped(1);
        model.check_heartbeats(now + Duration::from_secs(31));
        assert_eq!(model.chunkservers[&1].status, ChunkServerStatus::ReadWrite);
        model.check_heartbeats(now + Duration::from_secs(41));
        assert_eq!(model.chunkservers[&1].status, ChunkServerStatus::Retired);
    }

    #[test]
    fn a_stopped_leader_is_replaced_while_a_majority_serves() {
        let (mut model, _) = running_cluster();
        let key = *model.copysets.keys().next().unwrap();
        let members: Vec<u32> = model.copysets[&key].members.iter().copied().collect();
        let leader = model.copysets[&key].leader.unwrap();
        let term = model.copysets[&key].term;
        model.chunkserver_stopped(leader);
        let copyset = &model.copysets[&key];
        assert_ne!(copyset.leader, Some(leader));
        assert!(copyset.leader.is_some());
        assert_eq!(copyset.term, term + 1);
        let new_leader = copyset.leader.unwrap();
        let node = (model.raft_nodes(new_leader, 3).into_iter())
            .find(|n| n.group == key)
            .unwrap();
        let stopped = node
            .replicators
            .iter()
            .find(|r| r.peer == model.peer_of(leader))
            .unwrap();
        assert_eq!(stopped.blocking_errors, Some(3));
        // Two of three stopped: no leader, the last one a follower of none.
        let other = *members
            .iter()
            .find(|m| **m != leader && **m != new_leader)
            .unwrap();
        model.chunkserver_stopped(new_leader);
        assert_eq!(model.copysets[&key].leader, None);
        let node = (model.raft_nodes(other, 1).into_iter())
            .find(|n| n.group == key)
            .unwrap();
        assert!(!node.leader);
        assert_eq!(node.leader_peer, None);
    }

    #[test]
    fn peers_sort_as_braft_compares_s_addr() {
        // 10.0.0.2 < 1.0.0.3 as s_addr read little-endian: the last octet counts first.
        let mut peers = vec![("1.0.0.3", 8200), ("10.0.0.2", 8200), ("10.0.0.2", 8199)];
        peers.sort_by_key(|(ip, port)| peer_order(ip, *port));
        assert_eq!(
            peers,
            [("10.0.0.2", 8199), ("10.0.0.2", 8200), ("1.0.0.3", 8200)]
        );
        assert_eq!(group_id((1, 1)), 4294967297);
    }
}
