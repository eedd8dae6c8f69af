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
    pub const CANNOT_REMOVE_NOT_RETIRED: i32 = -18;
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
    pub const ALL: [ChunkServerStatus; 3] = [
        ChunkServerStatus::ReadWrite,
        ChunkServerStatus::Pendding,
        ChunkServerStatus::Retired,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ChunkServerStatus::ReadWrite => "READWRITE",
            ChunkServerStatus::Pendding => "PENDDING",
            ChunkServerStatus::Retired => "RETIRED",
        }
    }

    /// The enum's number in the .proto.
    pub fn number(self) -> i64 {
        match self {
            ChunkServerStatus::ReadWrite => 0,
            ChunkServerStatus::Pendding => 1,
            ChunkServerStatus::Retired => 2,
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
    /// `mds.copyset.scheduler.intervalSec` (C:conf/mds.conf:51): the copyset scheduler's
    /// period, which drains PENDDING ChunkServers.
    pub copyset_scheduler_interval: Duration,
    /// How long a ChangePeer takes once created (the target copying the copyset from its
    /// leader); Curve has no such figure, it is the data's size over the network.
    pub change_peer_time: Duration,
    /// `mds.scheduler.change.limitSec` (C:conf/mds.conf:67): a ChangePeer older than this is
    /// dropped (Operator::IsTimeout, C:src/mds/schedule/operator.cpp:64-66). The recover
    /// scheduler's ChangePeers take `mds.scheduler.add.limitSec` (65), 1800 s as well: the
    /// model uses this one limit for both.
    pub change_limit: Duration,
    /// `mds.recover.scheduler.intervalSec` (C:conf/mds.conf:57): the recover scheduler's
    /// period, which replaces OFFLINE replicas.
    pub recover_scheduler_interval: Duration,
    /// `mds.chunkserver.failure.tolerance` (C:conf/mds.conf:73): a server with this many
    /// ChunkServers not ONLINE has its OFFLINE replicas left alone (unless PENDDING).
    pub chunkserver_failure_tolerance: usize,
    /// `mds.schduler.operator.concurrent` (sic, C:conf/mds.conf:59): operators per target.
    pub operator_concurrent: u32,
    /// `mds.schduler.scatterWidthRangePerent` (sic, C:conf/mds.conf:71).
    pub scatter_width_range_percent: f32,
    /// The ChunkServer's `mds.register_retries` (C:conf/chunkserver.conf:26): refused
    /// registrations, a second apart, before it gives up (C:src/chunkserver/register.cpp:79-122).
    pub register_retries: u32,
}

impl CurveSettings {
    /// Curve's timings shortened for scenarios: a heartbeat a second, UNSTABLE after 3 s, a
    /// ChangePeer done in half a second.
    pub fn fast() -> CurveSettings {
        CurveSettings {
            miss_timeout: Duration::from_secs(3),
            offline_timeout: Duration::from_secs(600),
            heartbeat_interval: Duration::from_secs(1),
            metric_interval: Duration::from_secs(2),
            copyset_scheduler_interval: Duration::from_millis(500),
            change_peer_time: Duration::from_millis(500),
            ..CurveSettings::default()
        }
    }
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
            copyset_scheduler_interval: Duration::from_secs(5),
            change_peer_time: Duration::from_secs(10),
            change_limit: Duration::from_secs(1800),
            recover_scheduler_interval: Duration::from_secs(5),
            chunkserver_failure_tolerance: 3,
            operator_concurrent: 1,
            scatter_width_range_percent: 0.2,
            register_retries: 100,
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

/// A ChangePeer(source → target) the copyset scheduler created for a copyset of a PENDDING
/// ChunkServer (HighPriority, C:src/mds/schedule/copySetScheduler.cpp:73-75), held by the
/// operator controller until it is done or times out.
#[derive(Clone, Debug, PartialEq)]
pub struct ChangePeer {
    pub copyset: CopysetKey,
    pub source: u32,
    pub target: u32,
    pub created: Instant,
}

/// What a ChunkServer pod's start wrapper finds before it lets the ChunkServer register
/// (the gate of issue 29 item 3, `curve_operator::desired::start`).
#[derive(Clone, Debug, PartialEq)]
pub enum StartGate {
    /// The disk holds a `chunkserver.dat`, or no live ChunkServer is registered at ip:port.
    Proceed,
    /// The disk is empty and the MDS lists this non-RETIRED ChunkServer at the pod's ip:port.
    Refuse(ChunkServer),
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
    /// The primary's operator controller: at most one operator per copyset
    /// (C:src/mds/schedule/operatorController.cpp:37-75); in the MDS's memory only.
    pub operators: BTreeMap<CopysetKey, ChangePeer>,
    /// RapidLeaderSchedule calls answered 0.
    pub rapid_leader_schedules: u32,
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
            let status = self.delete_server(id);
            if status != code::SUCCESS {
                let why = if status == code::CANNOT_REMOVE_WHEN_NOT_EMPTY {
                    " (a ChunkServer of it is not RETIRED)"
                } else {
                    ""
                };
                return Err(format!("DeleteServer {id}: statusCode {status}{why}"));
            }
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
            // ValidateScatterWidth (C:src/mds/copyset/copyset_validation.cpp:113-131): the
            // pool's scatter width becomes the placement's average, rounded
            // (topology_service_manager.cpp:1198); below the one asked for is refused.
            let average = average_scatter_width(&placed);
            if average < f64::from(m.scatterwidth) {
                return Err(format!(
                    "CreateLogicalPool {}: statusCode {} (scatter width {average} below {})",
                    m.name,
                    code::GEN_COPYSET_ERR,
                    m.scatterwidth
                ));
            }
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
                    scatter_width: average.round() as u32,
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
        let Some(cs) = self.chunkservers.get(&id) else {
            return;
        };
        let meta = Some((id, cs.token.clone()));
        self.running.insert(id, disk.to_string());
        self.disks.entry(disk.to_string()).or_default().meta = meta;
        self.elect_leaders();
    }

    /// The data on `disk` is gone (a replaced disk under the same claim): no
    /// `chunkserver.dat`, no copysets.
    pub fn wipe_disk(&mut self, disk: &str) {
        self.disks.insert(disk.to_string(), Disk::default());
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
        // A new primary's operator controller starts empty. (A leader that already had its
        // ChangePeer may still finish it in Curve; the model drops it with the old MDS.)
        self.operators.clear();
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

    /// `ScheduleService/RapidLeaderSchedule` on the primary: pool 0 means every logical pool,
    /// an unknown pool is -1 (kScheduleErrCodeInvalidLogicalPool), as
    /// C:src/mds/schedule/rapidLeaderScheduler.cpp:35-56 decides. Counted for scenarios.
    pub fn rapid_leader_schedule(&mut self, pool: u32) -> i32 {
        let pools: Vec<u32> = match pool {
            0 => self.logical_pools.keys().copied().collect(),
            known if self.logical_pools.contains_key(&known) => vec![known],
            _ => return -1,
        };
        self.rapid_leader_schedules += 1;
        for pool in pools {
            self.spread_leaders(pool);
        }
        0
    }

    /// DoRapidLeaderSchedule (C:src/mds/schedule/rapidLeaderScheduler.cpp:58-152): per
    /// online READWRITE ChunkServer in id order, each copyset it leads and no operator holds
    /// moves its leader to the member with the fewest leaders (the first such, members in id
    /// order) when the source leads more than one leader more than it and more than the
    /// average (copysets / ChunkServers of the pool, an integer). The stand-in completes the
    /// TransferLeader at once: the target leads in the next term.
    fn spread_leaders(&mut self, pool: u32) {
        let chunkservers = self.chunkservers_in_pool(pool);
        let keys: Vec<CopysetKey> = (self.copysets.keys())
            .filter(|(p, _)| *p == pool)
            .copied()
            .collect();
        if chunkservers.is_empty() || keys.is_empty() {
            return;
        }
        let mut leaders: BTreeMap<u32, i64> = chunkservers.iter().map(|id| (*id, 0)).collect();
        // The copysets each ChunkServer leads, kept as leaders move: each source visits only
        // its own (Curve's scheduler asks the topology for a ChunkServer's copysets), not
        // every copyset of the pool once per ChunkServer.
        let mut led: BTreeMap<u32, BTreeSet<CopysetKey>> = BTreeMap::new();
        for key in &keys {
            if let Some(leader) = self.copysets[key].leader {
                *leaders.entry(leader).or_default() += 1;
                led.entry(leader).or_default().insert(*key);
            }
        }
        let average = (keys.len() / chunkservers.len()) as i64;
        let sources: Vec<u32> = (chunkservers.iter().copied())
            .filter(|id| {
                let cs = &self.chunkservers[id];
                cs.online == OnlineState::Online && cs.status == ChunkServerStatus::ReadWrite
            })
            .collect();
        for source in sources {
            // Leaders only move away from the source during its turn, so what it leads at
            // its start is what a scan of every copyset in key order would find.
            let own: Vec<CopysetKey> = led.get(&source).into_iter().flatten().copied().collect();
            for key in &own {
                let copyset = &self.copysets[key];
                if copyset.members.len() < 2 || self.operators.contains_key(key) {
                    continue;
                }
                let count = |id: &u32| leaders.get(id).copied().unwrap_or(0);
                let fewest = (copyset.members.iter())
                    .min_by_key(|id| count(id))
                    .copied()
                    .unwrap_or(source);
                if fewest == source
                    || count(&source) - count(&fewest) <= 1
                    || count(&source) <= average
                {
                    continue;
                }
                let copyset = self.copysets.get_mut(key).unwrap();
                copyset.leader = Some(fewest);
                copyset.term += 1;
                copyset.last_index += 1;
                *leaders.entry(fewest).or_default() += 1;
                *leaders.entry(source).or_default() -= 1;
                led.entry(source).or_default().remove(key);
                led.entry(fewest).or_default().insert(*key);
            }
        }
    }

    /// Copysets each ChunkServer leads.
    pub fn leaders_per_chunkserver(&self) -> BTreeMap<u32, usize> {
        let mut leaders: BTreeMap<u32, usize> =
            self.chunkservers.keys().map(|id| (*id, 0)).collect();
        for leader in self.copysets.values().filter_map(|c| c.leader) {
            *leaders.entry(leader).or_default() += 1;
        }
        leaders
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

    /// `SetChunkServer` (C:src/mds/topology/topology_service_manager.cpp:314-329): any
    /// transition, no emptiness check (UpdateChunkServerRwState,
    /// C:src/mds/topology/topology.cpp:364-426, moves only the pool's capacity, not modelled).
    pub fn set_chunkserver(&mut self, id: u32, status: ChunkServerStatus) -> i32 {
        match self.chunkservers.get_mut(&id) {
            None => code::CHUNKSERVER_NOT_FOUND,
            Some(cs) => {
                cs.status = status;
                code::SUCCESS
            }
        }
    }

    /// `DeleteChunkServer` (topology_service_manager.cpp:307-312; RemoveChunkServer,
    /// C:src/mds/topology/topology.cpp:248-268): only a RETIRED one.
    pub fn delete_chunkserver(&mut self, id: u32) -> i32 {
        let Some(cs) = self.chunkservers.get(&id) else {
            return code::CHUNKSERVER_NOT_FOUND;
        };
        if cs.status != ChunkServerStatus::Retired {
            return code::CANNOT_REMOVE_NOT_RETIRED;
        }
        self.chunkservers.remove(&id);
        self.heartbeats.remove(&id);
        code::SUCCESS
    }

    /// `DeleteServer` (C:src/mds/topology/topology_service_manager.cpp:478-512): its
    /// ChunkServers in the server's list order (registration order), each RETIRED one removed
    /// until one is not — then -14, those before it already gone — and last the server
    /// (RemoveServer, C:src/mds/topology/topology.cpp:226-246).
    pub fn delete_server(&mut self, id: u32) -> i32 {
        if !self.servers.contains_key(&id) {
            return code::SERVER_NOT_FOUND;
        }
        let on_it: Vec<u32> = (self.chunkservers.values())
            .filter(|c| c.server == id)
            .map(|c| c.id)
            .collect();
        for cs in on_it {
            if self.chunkservers[&cs].status != ChunkServerStatus::Retired {
                return code::CANNOT_REMOVE_WHEN_NOT_EMPTY;
            }
            let status = self.delete_chunkserver(cs);
            if status != code::SUCCESS {
                return status;
            }
        }
        self.servers.remove(&id);
        code::SUCCESS
    }

    /// What the start wrapper decides for a pod whose volume is `disk` at ip:port: with no
    /// `chunkserver.dat` on it, `GetChunkServer` by hostIp and port (non-RETIRED only,
    /// topology_service_manager.cpp:277-282) naming a ChunkServer refuses the start.
    pub fn start_gate(&self, disk: &str, ip: &str, port: u32) -> StartGate {
        let has_meta = self.disks.get(disk).is_some_and(|d| d.meta.is_some());
        match self.chunkserver_at(ip, port) {
            Some(cs) if !has_meta => StartGate::Refuse(cs.clone()),
            _ => StartGate::Proceed,
        }
    }

    /// One round of the primary's copyset scheduler (every `copyset_scheduler_interval`,
    /// C:src/mds/schedule/copySetScheduler.cpp:34-45), after what the operator controller
    /// learned since the last round: ChangePeers done applied, timed-out ones dropped. Only the
    /// PENDDING part (PenddingCopySetSchedule) is modelled, not the normal balancing that runs
    /// when it creates nothing (166-197). Returns the operators created.
    pub fn schedule(&mut self, now: Instant) -> usize {
        self.finish_change_peers(now);
        let pools: Vec<u32> = self.logical_pools.keys().copied().collect();
        pools
            .into_iter()
            .map(|pool| self.pendding_copyset_schedule(pool, now))
            .sum()
    }

    /// One round of the primary's recover scheduler (every `recover_scheduler_interval`;
    /// RecoverScheduler::Schedule, C:src/mds/schedule/recoverScheduler.cpp:33-151), after
    /// the operators learned done or timed out: per copyset without an operator whose OFFLINE
    /// members are at most what a majority can lose, its first OFFLINE member not excluded
    /// (CalculateExcludesChunkServer, 195-237) is replaced by a ChangePeer to the best
    /// placement (FixOfflinePeer, 157-193; the RemovePeer of a copyset above its replica
    /// count never arises here). Returns the operators created.
    pub fn recover(&mut self, now: Instant) -> usize {
        self.finish_change_peers(now);
        let mut not_online: BTreeMap<u32, Vec<u32>> = BTreeMap::new();
        for cs in self.chunkservers.values() {
            if cs.status != ChunkServerStatus::Retired && cs.online != OnlineState::Online {
                not_online.entry(cs.server).or_default().push(cs.id);
            }
        }
        let excluded: BTreeSet<u32> = (not_online.into_values())
            .filter(|ids| ids.len() >= self.settings.chunkserver_failure_tolerance)
            .flatten()
            .filter(|id| self.chunkservers[id].status != ChunkServerStatus::Pendding)
            .collect();
        let keys: Vec<CopysetKey> = self.copysets.keys().copied().collect();
        let mut created = 0;
        for key in keys {
            if self.operators.contains_key(&key) {
                continue;
            }
            let members = &self.copysets[&key].members;
            let offline: Vec<u32> = (members.iter().copied())
                .filter(|m| {
                    (self.chunkservers.get(m)).is_some_and(|c| c.online == OnlineState::Offline)
                })
                .collect();
            let dead_bound = members.len() - (members.len() / 2 + 1);
            if offline.is_empty() || offline.len() > dead_bound {
                continue;
            }
            let Some(source) = offline.into_iter().find(|id| !excluded.contains(id)) else {
                continue;
            };
            let Some(target) = self.select_best_placement(key, source) else {
                continue;
            };
            if self.add_change_peer(key, source, target, now) {
                created += 1;
            }
        }
        created
    }

    /// AddOperator's concurrency pre-judge (C:src/mds/schedule/operatorController.cpp:37-75,
    /// 201-212), then CreateCopySetAtChunkServer on the target, which must answer, else the
    /// operator is removed (C:src/mds/schedule/copySetScheduler.cpp:91-116).
    fn add_change_peer(&mut self, key: CopysetKey, source: u32, target: u32, now: Instant) -> bool {
        if self.operators.contains_key(&key)
            || self.target_influence(target) + 1 > self.settings.operator_concurrent
            || !self.running.contains_key(&target)
        {
            return false;
        }
        let op = ChangePeer {
            copyset: key,
            source,
            target,
            created: now,
        };
        self.operators.insert(key, op);
        true
    }

    /// A ChangePeer finishes once the copy took `change_peer_time`, the target runs and the
    /// copyset has a leader (a majority serves) to copy from and to commit the new
    /// configuration: the copyset's members swap source for target, the target's disk holds
    /// the copyset and the source's no longer does; a leader that was the source steps down.
    /// Curve learns it from the leader's heartbeat and removes the operator
    /// (OperatorController::ApplyOperator, C:src/mds/schedule/operatorController.cpp:120-158);
    /// older than `change_limit`, it is dropped undone (Operator::IsTimeout).
    fn finish_change_peers(&mut self, now: Instant) {
        let operators: Vec<ChangePeer> = self.operators.values().cloned().collect();
        for op in operators {
            let age = now.saturating_duration_since(op.created);
            let Some(copyset) = self.copysets.get(&op.copyset) else {
                self.operators.remove(&op.copyset);
                continue;
            };
            if age > self.settings.change_limit || !copyset.members.contains(&op.source) {
                self.operators.remove(&op.copyset);
                continue;
            }
            let copied = age >= self.settings.change_peer_time;
            if !copied || copyset.leader.is_none() || !self.running.contains_key(&op.target) {
                continue;
            }
            self.operators.remove(&op.copyset);
            let copyset = self.copysets.get_mut(&op.copyset).unwrap();
            copyset.members.remove(&op.source);
            copyset.members.insert(op.target);
            // The configuration change is a log entry.
            copyset.last_index += 1;
            let target_disk = self.running[&op.target].clone();
            self.disks
                .entry(target_disk)
                .or_default()
                .copysets
                .insert(op.copyset);
            let source_disk = self.running.get(&op.source).cloned();
            for (name, disk) in self.disks.iter_mut() {
                let holds_source = disk.meta.as_ref().is_some_and(|m| m.0 == op.source);
                if holds_source || source_disk.as_ref() == Some(name) {
                    disk.copysets.remove(&op.copyset);
                }
            }
        }
        self.elect_leaders();
    }

    /// PenddingCopySetSchedule (C:src/mds/schedule/copySetScheduler.cpp:47-116) over the
    /// distribution of DoCopySetSchedule (166-183): every copyset member except the pool's
    /// OFFLINE ChunkServers and its non-PENDDING ones
    /// (C:src/mds/schedule/scheduler_helper.cpp:356-395) — so a RETIRED member, not in the
    /// pool's list, is drained too — in id order; per copyset of it, a ChangePeer to the best
    /// placement.
    fn pendding_copyset_schedule(&mut self, pool: u32, now: Instant) -> usize {
        let mut distribution: BTreeMap<u32, Vec<CopysetKey>> = BTreeMap::new();
        for (key, copyset) in self.copysets.range((pool, 0)..=(pool, u32::MAX)) {
            for member in &copyset.members {
                distribution.entry(*member).or_default().push(*key);
            }
        }
        for id in self.chunkservers_in_pool(pool) {
            let cs = &self.chunkservers[&id];
            if cs.online == OnlineState::Offline || cs.status != ChunkServerStatus::Pendding {
                distribution.remove(&id);
            }
        }
        let mut created = 0;
        for (source, keys) in distribution {
            for key in keys {
                if !self.satisfies_basic_migration_cond(key) {
                    continue;
                }
                let Some(target) = self.select_best_placement(key, source) else {
                    continue;
                };
                if self.add_change_peer(key, source, target, now) {
                    created += 1;
                }
            }
        }
        created
    }

    /// CopySetSatisfiyBasicMigrationCond (C:src/mds/schedule/copySetScheduler.cpp:346-379):
    /// no operator on it, the pool's replica count, a scatter width set, no OFFLINE (or
    /// unknown) member (C:src/mds/schedule/scheduler.cpp:349-360). Curve also skips a copyset
    /// whose leader reports a configuration change under way; here that is its operator.
    fn satisfies_basic_migration_cond(&self, key: CopysetKey) -> bool {
        let (Some(copyset), Some(pool)) = (self.copysets.get(&key), self.logical_pools.get(&key.0))
        else {
            return false;
        };
        !self.operators.contains_key(&key)
            && copyset.members.len() == pool.replicas as usize
            && self.min_scatter_width(key.0) > 0
            && (copyset.members.iter()).all(|m| {
                self.chunkservers
                    .get(m)
                    .is_some_and(|c| c.online != OnlineState::Offline)
            })
    }

    /// Operators counting against a ChunkServer: those it is the target of
    /// (Operator::AffectedChunkServers, C:src/mds/schedule/operator.cpp:49-62).
    pub fn target_influence(&self, id: u32) -> u32 {
        self.operators.values().filter(|o| o.target == id).count() as u32
    }

    /// The pool's non-RETIRED ChunkServers: those of its physical pool
    /// (TopoAdapterImpl::GetChunkServersInLogicalPool, C:src/mds/schedule/topoAdapter.cpp:254-268).
    fn chunkservers_in_pool(&self, pool: u32) -> Vec<u32> {
        let Some(physical) = self.logical_pools.get(&pool).map(|p| p.physical_pool) else {
            return Vec::new();
        };
        (self.chunkservers.values())
            .filter(|c| c.status != ChunkServerStatus::Retired)
            .filter(|c| {
                self.servers
                    .get(&c.server)
                    .is_some_and(|s| s.physical_pool == physical)
            })
            .map(|c| c.id)
            .collect()
    }

    /// Scheduler::GetMinScatterWidth (C:src/mds/schedule/scheduler.cpp:344-347): the pool's
    /// scatter width less half the range percent, truncated to an int.
    fn min_scatter_width(&self, pool: u32) -> i32 {
        let width = self.logical_pools.get(&pool).map_or(0, |p| p.scatter_width);
        (width as f32 * (1.0 - self.settings.scatter_width_range_percent / 2.0)) as i32
    }

    /// GetChunkServerScatterMap (C:src/mds/schedule/topoAdapter.cpp:402-437): per other
    /// ChunkServer not OFFLINE, how many copysets it shares with `id`.
    fn scatter_map(&self, id: u32) -> BTreeMap<u32, i32> {
        let mut map = BTreeMap::new();
        for copyset in self.copysets.values().filter(|c| c.members.contains(&id)) {
            for peer in copyset.members.iter().filter(|p| **p != id) {
                let listed = self.chunkservers.get(peer);
                if listed.is_some_and(|c| c.online != OnlineState::Offline) {
                    *map.entry(*peer).or_insert(0) += 1;
                }
            }
        }
        map
    }

    /// InvovledReplicasSatisfyScatterWidthAfterMigration as SelectBestPlacementChunkServer
    /// calls it (no source, `ignore` the replaced peer): CalculateAffectOfMigration and
    /// SatisfyScatterWidth (C:src/mds/schedule/scheduler_helper.cpp:52-88,243-354). Returns
    /// whether all involved satisfy it, and the sum of the changes.
    fn scatter_width_after_adding(
        &self,
        key: CopysetKey,
        target: u32,
        ignore: u32,
        min: i32,
    ) -> (bool, i32) {
        let pct = self.settings.scatter_width_range_percent;
        let mut target_map = self.scatter_map(target);
        let mut widths: BTreeMap<u32, (i32, i32)> = BTreeMap::new();
        widths.entry(target).or_default().0 = target_map.len() as i32;
        for peer in &self.copysets[&key].members {
            let mut peer_map = self.scatter_map(*peer);
            let before = peer_map.len() as i32;
            *target_map.entry(*peer).or_insert(0) += 1;
            *peer_map.entry(target).or_insert(0) += 1;
            widths.insert(*peer, (before, peer_map.len() as i32));
        }
        widths.entry(target).or_default().1 = target_map.len() as i32;
        let mut all = true;
        let mut affected = 0;
        for (id, (before, after)) in widths {
            if id == ignore {
                continue;
            }
            all &= satisfy_scatter_width(id == target, before, after, min, pct);
            affected += after - before;
        }
        (all, affected)
    }

    /// SelectBestPlacementChunkServer (C:src/mds/schedule/scheduler.cpp:76-183): among the
    /// pool's ChunkServers by copyset count, fewest first, one outside the zones and servers of
    /// the other members (the zones only while they are fewer than the pool's zone count),
    /// healthy (ONLINE, READWRITE; topoAdapter.cpp:145-149) and under the operator limit: the
    /// first whose scatter widths stay within bounds, else the one that changes them most.
    /// Curve shuffles before its sorts; ties here go by id.
    pub fn select_best_placement(&self, key: CopysetKey, old_peer: u32) -> Option<u32> {
        let pool = self.logical_pools.get(&key.0)?;
        let copyset = self.copysets.get(&key)?;
        self.chunkservers.get(&old_peer)?;
        let mut candidates = self.chunkservers_in_pool(key.0);
        if candidates.len() <= copyset.members.len() {
            return None;
        }
        let server_of = |id: &u32| {
            self.chunkservers
                .get(id)
                .and_then(|c| self.servers.get(&c.server))
        };
        let others = copyset.members.iter().filter(|m| **m != old_peer);
        let mut exclude_zones = BTreeSet::new();
        let mut exclude_servers = BTreeSet::new();
        for server in others.filter_map(server_of) {
            exclude_zones.insert(server.zone);
            exclude_servers.insert(server.id);
        }
        if exclude_zones.len() >= pool.zone_num as usize {
            exclude_zones.clear();
        }
        let counts = self.copysets_per_chunkserver();
        candidates.sort_by_key(|id| (counts.get(id).map_or(0, Vec::len), *id));
        let min = self.min_scatter_width(key.0);
        let mut affected = Vec::new();
        for id in candidates {
            let server = server_of(&id)?;
            if exclude_zones.contains(&server.zone) || exclude_servers.contains(&server.id) {
                continue;
            }
            let cs = &self.chunkservers[&id];
            let healthy =
                cs.online == OnlineState::Online && cs.status == ChunkServerStatus::ReadWrite;
            if !healthy || self.target_influence(id) >= self.settings.operator_concurrent {
                continue;
            }
            if min <= 0 {
                return None;
            }
            match self.scatter_width_after_adding(key, id, old_peer, min) {
                (true, _) => return Some(id),
                (false, change) => affected.push((id, change)),
            }
        }
        // SortScatterWitAffected: ascending, the last taken.
        affected.sort_by_key(|(_, change)| *change);
        affected.last().map(|(id, _)| *id)
    }

    /// A member's address; a member deleted from the topology (RETIRED by hand while still
    /// in copysets, then deleted) has none left in the model.
    fn peer_of(&self, id: u32) -> (String, u32) {
        (self.chunkservers.get(&id))
            .map_or(("0.0.0.0".to_string(), 0), |cs| (cs.ip.clone(), cs.port))
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

/// SchedulerHelper::SatisfyScatterWidth (C:src/mds/schedule/scheduler_helper.cpp:52-88): within
/// [min, min × (1 + percent)] any change goes; below, the target must gain and the others not
/// lose; above, the target must lose and the others not gain.
pub fn satisfy_scatter_width(target: bool, old: i32, new: i32, min: i32, percent: f32) -> bool {
    let max = (min as f32 * (1.0 + percent)) as i32;
    if new < min {
        if target {
            new - old >= 1
        } else {
            new - old >= 0
        }
    } else if new > max {
        if target {
            new - old < 0
        } else {
            new - old <= 0
        }
    } else {
        true
    }
}

/// CalcScatterWidth and CalcAverage (C:src/mds/copyset/copyset_validation.cpp:133-162): per
/// ChunkServer, how many others share a copyset with it; averaged over the ChunkServers.
pub fn average_scatter_width(copysets: &[BTreeSet<u32>]) -> f64 {
    let mut peers: BTreeMap<u32, BTreeSet<u32>> = BTreeMap::new();
    for copyset in copysets {
        for id in copyset {
            peers
                .entry(*id)
                .or_default()
                .extend(copyset.iter().filter(|p| *p != id));
        }
    }
    if peers.is_empty() {
        return 0.0;
    }
    let sum: usize = peers.values().map(BTreeSet::len).sum();
    sum as f64 / peers.len() as f64
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
        running_cluster_of(&three_servers())
    }

    /// Two ChunkServers on every server of `map` (ports 8200, 8201), each disk named by its
    /// ip:port.
    fn start_chunkservers(model: &mut CurveModel, map: &ClusterMapFile, now: Instant) {
        for server in &map.servers {
            let ip = server.internalip.as_str();
            for port in [8200, 8201] {
                let answer = model.regist_chunkserver(&request(ip, port, None));
                let (id, token) = answer.id_token.unwrap();
                model.chunkserver_started(id, &format!("{ip}:{port}"));
                assert_eq!(model.heartbeat(id, &token, ip, port, now), 0);
            }
        }
    }

    fn running_cluster_of(map: &ClusterMapFile) -> (CurveModel, Instant) {
        let now = Instant::now();
        let mut model = CurveModel::new(CurveSettings::default());
        model.apply_physical_pool(map).unwrap();
        start_chunkservers(&mut model, map, now);
        model.mds_takes_over(now);
        // The healthy checker's first run: tracked ChunkServers become ONLINE internally.
        model.check_heartbeats(now);
        model.apply_logical_pool(map, 1).unwrap();
        (model, now)
    }

    #[test]
    fn a_rapid_leader_schedule_spreads_the_leaders_by_curves_rule_and_counts_the_call() {
        let (mut model, _) = running_cluster();
        let before = model.leaders_per_chunkserver();
        let copysets = model.copyset_count();
        assert_eq!(before.values().sum::<usize>(), copysets, "{before:?}");
        // Raft's first elections leave the lowest id of each copyset leading.
        let (min, max) = (
            before.values().min().unwrap(),
            before.values().max().unwrap(),
        );
        assert!(max - min > 1, "already spread: {before:?}");
        assert_eq!(model.rapid_leader_schedule(7), -1);
        assert_eq!(model.rapid_leader_schedules, 0);
        assert_eq!(model.rapid_leader_schedule(0), 0);
        assert_eq!(model.rapid_leader_schedules, 1);
        let after = model.leaders_per_chunkserver();
        assert_eq!(after.values().sum::<usize>(), copysets, "{after:?}");
        let average = copysets / after.len();
        // No source is left with more than the average and two more than a member it shares
        // a copyset with: the stopping rule of PossibleTargetPeerConfirm.
        assert!(
            after
                .values()
                .all(|n| *n <= average + 1 || after.values().all(|m| n - m <= 1)),
            "{before:?} → {after:?}"
        );
        for copyset in model.copysets.values() {
            assert!(copyset.members.contains(&copyset.leader.unwrap()));
        }
        // Balanced already: a second call moves nothing.
        let terms: Vec<u64> = model.copysets.values().map(|c| c.term).collect();
        assert_eq!(model.rapid_leader_schedule(1), 0);
        assert_eq!(
            terms,
            model.copysets.values().map(|c| c.term).collect::<Vec<_>>()
        );
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
        // Each is a copy short, silently: two of its three members serve it, and no scheduler
        // moves anything (id 1 is neither PENDDING nor OFFLINE).
        for key in &on_1 {
            let serving = (model.copysets[key].members.iter())
                .filter(|m| model.serves(**m, *key))
                .count();
            assert_eq!(serving, 2, "{key:?}");
        }
        assert_eq!(model.schedule(Instant::now()), 0);
        assert!(model.operators.is_empty());
    }

    /// Every copyset as many members as copies, one per zone, each running with the copyset
    /// on its disk, and a leader.
    fn assert_every_copyset_whole(model: &CurveModel) {
        for (key, copyset) in &model.copysets {
            let zones: BTreeSet<u32> = (copyset.members.iter())
                .map(|m| zone_of(model, *m))
                .collect();
            assert_eq!((copyset.members.len(), zones.len()), (3, 3), "{key:?}");
            for member in &copyset.members {
                assert!(
                    model.serves(*member, *key),
                    "{key:?}: {member} does not serve it"
                );
            }
            assert!(copyset.leader.is_some(), "{key:?}");
        }
    }

    fn zone_of(model: &CurveModel, id: u32) -> u32 {
        model.servers[&model.chunkservers[&id].server].zone
    }

    /// Scheduler rounds a copy's time apart from `start` until `id` holds no copyset and no
    /// operator is left; the rounds run and every operator seen.
    fn drain(model: &mut CurveModel, id: u32, start: Instant) -> (u32, Vec<ChangePeer>) {
        let step = model.settings.change_peer_time;
        let mut seen: Vec<ChangePeer> = Vec::new();
        for round in 0..200 {
            model.schedule(start + step * round);
            for op in model.operators.values() {
                if !seen.contains(op) {
                    seen.push(op.clone());
                }
            }
            if model.copysets_on(id).is_empty() && model.operators.is_empty() {
                return (round + 1, seen);
            }
        }
        panic!("{id} not drained: {:?}", model.copysets_on(id));
    }

    /// A heartbeat at `at` from every running ChunkServer but `skip`.
    fn heartbeats_but(model: &mut CurveModel, skip: u32, at: Instant) {
        let beating: Vec<(u32, String, String, u32)> = (model.chunkservers.values())
            .filter(|c| c.id != skip && model.is_running(c.id))
            .map(|c| (c.id, c.token.clone(), c.ip.clone(), c.port))
            .collect();
        for (id, token, ip, port) in beating {
            assert_eq!(model.heartbeat(id, &token, &ip, port, at), 0);
        }
    }

    fn map_server(index: u32, zone: &str) -> MapServer {
        MapServer {
            name: format!("node-{index}"),
            internalip: format!("127.0.0.{}", 100 + index),
            internalport: 0,
            externalip: format!("127.0.0.{}", 100 + index),
            externalport: 0,
            zone: zone.into(),
            physicalpool: "pool1".into(),
        }
    }

    #[test]
    fn set_chunkserver_takes_any_transition_and_names_a_missing_id() {
        let (mut model, _) = running_cluster();
        use ChunkServerStatus::*;
        for status in [Pendding, Retired, ReadWrite, Retired, Pendding, ReadWrite] {
            assert_eq!(model.set_chunkserver(1, status), code::SUCCESS);
            assert_eq!(model.chunkservers[&1].status, status);
        }
        assert_eq!(model.set_chunkserver(99, Pendding), -6);
    }

    #[test]
    fn only_a_retired_chunkserver_is_deleted() {
        let (mut model, _) = running_cluster();
        assert_eq!(model.delete_chunkserver(1), -18);
        model.set_chunkserver(1, ChunkServerStatus::Pendding);
        assert_eq!(model.delete_chunkserver(1), -18);
        model.set_chunkserver(1, ChunkServerStatus::Retired);
        assert_eq!(model.delete_chunkserver(1), code::SUCCESS);
        assert!(!model.chunkservers.contains_key(&1));
        assert_eq!(model.delete_chunkserver(1), -6);
        assert_eq!(model.delete_chunkserver(99), -6);
        // Its disk's id and token name no ChunkServer now: the ip:port gets a new id.
        let meta = model.disks["127.0.0.101:8200"].meta.clone().unwrap();
        let again = request("127.0.0.101", 8200, Some((meta.0, &meta.1)));
        assert_eq!(model.regist_chunkserver(&again).id_token.unwrap().0, 7);
    }

    #[test]
    fn delete_server_removes_retired_chunkservers_until_one_is_not() {
        let (mut model, _) = running_cluster();
        // Server 1 holds ChunkServers 1 and 2.
        assert_eq!(model.delete_server(1), -14);
        assert_eq!(model.chunkservers.len(), 6);
        model.set_chunkserver(1, ChunkServerStatus::Retired);
        assert_eq!(model.delete_server(1), -14);
        // RETIRED 1 was removed before 2 refused; the server stays.
        assert!(!model.chunkservers.contains_key(&1));
        assert!(model.servers.contains_key(&1));
        model.set_chunkserver(2, ChunkServerStatus::Retired);
        assert_eq!(model.delete_server(1), code::SUCCESS);
        assert!(!model.servers.contains_key(&1) && !model.chunkservers.contains_key(&2));
        assert_eq!(model.delete_server(1), -7);
        // The cluster map without node-1 now applies: nothing of it is left to delete.
        let mut smaller = three_servers();
        smaller.servers.remove(0);
        model.apply_physical_pool(&smaller).unwrap();
        assert_eq!(model.servers.len(), 2);
    }

    #[test]
    fn a_pendding_chunkserver_drains_one_copyset_per_target_at_a_time() {
        let (mut model, now) = running_cluster();
        let on_1 = model.copysets_on(1);
        let on_2 = model.copysets_on(2).len();
        model.set_chunkserver(1, ChunkServerStatus::Pendding);
        // The only place keeping one copy per zone off the other members' servers is
        // ChunkServer 2 (server 1, zone 1): one ChangePeer at a time.
        assert_eq!(model.schedule(now), 1);
        let op = model.operators.values().next().unwrap().clone();
        assert_eq!((op.copyset, op.source, op.target), (on_1[0], 1, 2));
        // Before the copy is done: the same operator, nothing moved, nothing more.
        assert_eq!(model.schedule(now + Duration::from_secs(9)), 0);
        assert_eq!(model.operators.values().collect::<Vec<_>>(), [&op]);
        assert_eq!(model.copysets_on(1), on_1);
        let (rounds, seen) = drain(&mut model, 1, now + Duration::from_secs(10));
        // One copyset a round, all onto 2.
        assert_eq!(rounds as usize, on_1.len());
        assert!(
            seen.iter().all(|o| (o.source, o.target) == (1, 2)),
            "{seen:?}"
        );
        assert_eq!(model.copysets_on(2).len(), on_2 + on_1.len());
        assert!(model.disks["127.0.0.101:8200"].copysets.is_empty());
        assert_every_copyset_whole(&model);
        // The source led every copyset it had (the lowest id leads): none now.
        for key in &on_1 {
            assert_ne!(model.copysets[key].leader, Some(1), "{key:?}");
        }
    }

    #[test]
    fn targets_keep_one_copy_per_zone_off_the_other_members_servers() {
        let (mut model, now) = running_cluster();
        // node-4 joins zone 1 and node-5 zone 2 after the pool was made: their ChunkServers
        // 7, 8 and 9, 10 hold nothing.
        let joined = ClusterMapFile {
            servers: vec![map_server(4, "zone1"), map_server(5, "zone2")],
            logicalpools: Vec::new(),
        };
        let mut grown = three_servers();
        grown.servers.extend(joined.servers.clone());
        model.apply_physical_pool(&grown).unwrap();
        start_chunkservers(&mut model, &joined, now);
        assert!((7..=10).all(|id| model.copysets_on(id).is_empty()));
        let on_1 = model.copysets_on(1);
        model.set_chunkserver(1, ChunkServerStatus::Pendding);
        // Three places in zone 1 (2, 7, 8): three ChangePeers at once, one per target.
        assert_eq!(model.schedule(now), 3);
        let targets: BTreeSet<u32> = model.operators.values().map(|o| o.target).collect();
        assert_eq!(targets, BTreeSet::from([2, 7, 8]));
        for op in model.operators.values() {
            let copyset = &model.copysets[&op.copyset];
            let others: Vec<u32> = (copyset.members.iter().copied())
                .filter(|m| *m != 1)
                .collect();
            assert_eq!(zone_of(&model, op.target), zone_of(&model, 1));
            assert!(others.iter().all(|m| zone_of(&model, *m) != 1));
        }
        // The empty ones first (fewest copysets, then the scatter width they add).
        let first = &model.operators[&on_1[0]];
        assert!([7, 8].contains(&first.target), "{first:?}");
        drain(&mut model, 1, now + Duration::from_secs(10));
        assert_every_copyset_whole(&model);
        assert!(!model.copysets_on(7).is_empty() && !model.copysets_on(8).is_empty());
    }

    #[test]
    fn copysets_with_an_offline_member_and_offline_sources_are_left_alone() {
        let (mut model, now) = running_cluster();
        let on_1 = model.copysets_on(1);
        let key = on_1[0];
        let other = *model.copysets[&key].members.iter().max().unwrap();
        model.chunkservers.get_mut(&other).unwrap().online = OnlineState::Offline;
        model.set_chunkserver(1, ChunkServerStatus::Pendding);
        model.schedule(now);
        assert!(!model.operators.contains_key(&key));
        for op in model.operators.values() {
            assert!(
                !model.copysets[&op.copyset].members.contains(&other),
                "{op:?}"
            );
        }
        // An OFFLINE PENDDING ChunkServer is no source (the recover scheduler's part).
        model.operators.clear();
        model.chunkservers.get_mut(&other).unwrap().online = OnlineState::Online;
        model.chunkservers.get_mut(&1).unwrap().online = OnlineState::Offline;
        assert_eq!(model.schedule(now), 0);
    }

    #[test]
    fn a_change_peer_needs_its_target_running_and_a_majority_and_times_out() {
        let (mut model, now) = running_cluster();
        model.set_chunkserver(1, ChunkServerStatus::Pendding);
        // The target the MDS still sees ONLINE does not answer CreateCopyset: no operator.
        model.chunkserver_stopped(2);
        assert_eq!(model.schedule(now), 0);
        model.chunkserver_started(2, "127.0.0.101:8201");
        assert_eq!(model.schedule(now), 1);
        let op = model.operators.values().next().unwrap().clone();
        let key = op.copyset;
        let members = model.copysets[&key].members.clone();
        // The target stops mid-copy: not done however long it takes.
        model.chunkserver_stopped(2);
        model.schedule(now + Duration::from_secs(60));
        assert_eq!(model.operators.get(&key), Some(&op));
        // Back, but two of the three members stopped: no leader to copy from.
        model.chunkserver_started(2, "127.0.0.101:8201");
        let others: Vec<u32> = members.iter().copied().filter(|m| *m != 1).collect();
        model.chunkserver_stopped(others[0]);
        model.chunkserver_stopped(others[1]);
        assert_eq!(model.copysets[&key].leader, None);
        model.schedule(now + Duration::from_secs(120));
        assert_eq!(model.copysets[&key].members, members);
        // Past mds.scheduler.change.limitSec it is dropped undone (and made anew).
        let cs = model.chunkservers[&others[0]].clone();
        model.chunkserver_started(cs.id, &format!("{}:{}", cs.ip, cs.port));
        assert!(model.copysets[&key].leader.is_some());
        model.schedule(now + Duration::from_secs(1801));
        assert_eq!(model.copysets[&key].members, members);
        assert_ne!(model.operators.get(&key), Some(&op));
    }

    #[test]
    fn a_pendding_chunkserver_is_retired_once_empty_and_not_online() {
        let (mut model, now) = running_cluster();
        model.set_chunkserver(1, ChunkServerStatus::Pendding);
        // Stopped but not empty: UNSTABLE, still PENDDING.
        model.chunkserver_stopped(1);
        let t = now + Duration::from_secs(31);
        heartbeats_but(&mut model, 1, t);
        model.check_heartbeats(t);
        assert_eq!(model.chunkservers[&1].online, OnlineState::Unstable);
        assert_eq!(model.chunkservers[&1].status, ChunkServerStatus::Pendding);
        // A stopped (UNSTABLE) source drains too: two of three copies serve each copyset.
        drain(&mut model, 1, t);
        let t = t + Duration::from_secs(1);
        heartbeats_but(&mut model, 1, t);
        model.check_heartbeats(t);
        assert_eq!(model.chunkservers[&1].status, ChunkServerStatus::Retired);
        assert_every_copyset_whole(&model);

        // Empty but ONLINE: still PENDDING until it stops.
        let (mut model, now) = running_cluster();
        model.set_chunkserver(1, ChunkServerStatus::Pendding);
        drain(&mut model, 1, now);
        heartbeats_but(&mut model, u32::MAX, now + Duration::from_secs(1));
        model.check_heartbeats(now + Duration::from_secs(1));
        assert_eq!(model.chunkservers[&1].status, ChunkServerStatus::Pendding);
        model.chunkserver_stopped(1);
        let t = now + Duration::from_secs(40);
        heartbeats_but(&mut model, 1, t);
        model.check_heartbeats(t);
        assert_eq!(model.chunkservers[&1].status, ChunkServerStatus::Retired);
    }

    #[test]
    fn the_gate_keeps_an_empty_disk_out_until_the_old_id_is_retired_and_deleted() {
        let (mut model, now) = running_cluster();
        // The volume of ChunkServer 1 is lost with its pod; a new claim is an empty disk.
        model.chunkserver_stopped(1);
        let fresh = "a-new-claim";
        match model.start_gate(fresh, "127.0.0.101", 8200) {
            StartGate::Refuse(cs) => assert_eq!(
                (cs.id, cs.status, cs.online),
                (1, ChunkServerStatus::ReadWrite, OnlineState::Online)
            ),
            StartGate::Proceed => panic!("an empty disk passes the gate while id 1 is live"),
        }
        // A disk with its chunkserver.dat, and an address nobody holds, pass.
        assert_eq!(
            model.start_gate("127.0.0.101:8201", "127.0.0.101", 8201),
            StartGate::Proceed
        );
        assert_eq!(
            model.start_gate(fresh, "127.0.0.101", 8299),
            StartGate::Proceed
        );
        // The operator's part: PENDDING, drained while down, RETIRED by the checker.
        model.set_chunkserver(1, ChunkServerStatus::Pendding);
        let (rounds, _) = drain(&mut model, 1, now);
        let t = now + model.settings.change_peer_time * rounds;
        heartbeats_but(&mut model, 1, t);
        model.check_heartbeats(t);
        assert_eq!(model.chunkservers[&1].status, ChunkServerStatus::Retired);
        // GetChunkServer by ip:port no longer names it; deleted, the new disk registers anew.
        assert_eq!(
            model.start_gate(fresh, "127.0.0.101", 8200),
            StartGate::Proceed
        );
        assert_eq!(model.delete_chunkserver(1), code::SUCCESS);
        let answer = model.regist_chunkserver(&request("127.0.0.101", 8200, None));
        let (id, _) = answer.id_token.unwrap();
        assert_eq!(id, 7);
        model.chunkserver_started(id, fresh);
        assert_every_copyset_whole(&model);
        assert!(model.copysets_on(1).is_empty());
    }

    /// One ChunkServer on each of the three servers in three zones (port 8200, disks named by
    /// ip:port), the pool created: the model and how many copysets id 1 holds.
    fn lone_zones(now: Instant) -> (CurveModel, usize) {
        let map = three_servers();
        let mut model = CurveModel::new(CurveSettings::default());
        model.apply_physical_pool(&map).unwrap();
        for server in &map.servers {
            let ip = server.internalip.as_str();
            let (id, token) = (model.regist_chunkserver(&request(ip, 8200, None)))
                .id_token
                .unwrap();
            model.chunkserver_started(id, &format!("{ip}:8200"));
            assert_eq!(model.heartbeat(id, &token, ip, 8200, now), 0);
        }
        model.mds_takes_over(now);
        model.check_heartbeats(now);
        model.apply_logical_pool(&map, 1).unwrap();
        let held = model.copysets_on(1).len();
        assert!(held > 0);
        (model, held)
    }

    /// ChunkServer 1's disk is lost and it is set PENDDING; past the offline timeout. Neither
    /// scheduler finds a target: each copyset keeps one copy per zone and zone 1 has no other
    /// ChunkServer (C:src/mds/schedule/scheduler.cpp:76-183). Returns the time reached.
    fn lone_disk_lost(model: &mut CurveModel, held: usize, now: Instant) -> Instant {
        model.chunkserver_stopped(1);
        model.set_chunkserver(1, ChunkServerStatus::Pendding);
        for round in 1..=20u32 {
            let t = now + model.settings.copyset_scheduler_interval * round;
            heartbeats_but(model, 1, t);
            assert_eq!(model.schedule(t), 0, "no target in zone 1");
            model.check_heartbeats(t);
        }
        let late = now + model.settings.offline_timeout + Duration::from_secs(10);
        heartbeats_but(model, 1, late);
        model.check_heartbeats(late);
        assert_eq!(model.chunkservers[&1].online, OnlineState::Offline);
        assert_eq!(model.recover(late), 0);
        assert_eq!(model.copysets_on(1).len(), held);
        assert_ne!(model.chunkservers[&1].status, ChunkServerStatus::Retired);
        late
    }

    /// The fault soak's finding (issue 32, seed 11): with one ChunkServer per server and one
    /// server in a zone, a lost disk is not replaced on its own. The new disk, the only
    /// ChunkServer that zone could get, is kept out by the start gate until the old id is
    /// RETIRED, which needs it empty. What unblocks it is another ChunkServer in the zone —
    /// here a second disk slot on every server (`disksPerNode: 2`): the recover scheduler
    /// moves id 1's copies to the new ChunkServer of zone 1, the healthy checker retires the
    /// empty id, it is deleted, and the lost disk's pod registers anew with a new id.
    #[test]
    fn a_lost_disk_alone_in_its_zone_heals_once_its_zone_gets_another_chunkserver() {
        let now = Instant::now();
        let (mut model, held) = lone_zones(now);
        let on_1 = model.copysets_on(1);
        let late = lone_disk_lost(&mut model, held, now);
        assert!(matches!(
            model.start_gate("a-new-claim", "127.0.0.101", 8200),
            StartGate::Refuse(cs) if cs.id == 1
        ));

        // The remedy: slot 1 on every server registers (ids 4, 5, 6 at :8201).
        for ip in ["127.0.0.101", "127.0.0.102", "127.0.0.103"] {
            assert_eq!(
                model.start_gate(&format!("{ip}:8201"), ip, 8201),
                StartGate::Proceed
            );
            let (id, token) = (model.regist_chunkserver(&request(ip, 8201, None)))
                .id_token
                .unwrap();
            model.chunkserver_started(id, &format!("{ip}:8201"));
            assert_eq!(model.heartbeat(id, &token, ip, 8201, late), 0);
        }
        assert_eq!(model.chunkserver_at("127.0.0.101", 8201).unwrap().id, 4);
        model.check_heartbeats(late);

        let step = model.settings.change_peer_time;
        let mut at = late;
        for _ in 0..=held * 2 {
            if model.copysets_on(1).is_empty() && model.operators.is_empty() {
                break;
            }
            at += step;
            heartbeats_but(&mut model, 1, at);
            model.check_heartbeats(at);
            model.recover(at);
            assert!(
                (model.operators.values()).all(|o| (o.source, o.target) == (1, 4)),
                "{:?}",
                model.operators
            );
        }
        assert_eq!(model.copysets_on(1), Vec::<CopysetKey>::new());
        assert_every_copyset_whole(&model);
        for key in &on_1 {
            assert!(model.copysets[key].members.contains(&4), "{key:?}");
        }

        // Empty and OFFLINE: RETIRED at the next check, then deletable; the gate lets the
        // new disk in and it registers with a new id.
        at += step;
        heartbeats_but(&mut model, 1, at);
        model.check_heartbeats(at);
        assert_eq!(model.chunkservers[&1].status, ChunkServerStatus::Retired);
        assert_eq!(model.delete_chunkserver(1), code::SUCCESS);
        assert_eq!(
            model.start_gate("a-new-claim", "127.0.0.101", 8200),
            StartGate::Proceed
        );
        let (id, _) = (model.regist_chunkserver(&request("127.0.0.101", 8200, None)))
            .id_token
            .unwrap();
        assert_eq!(id, 7);
        model.chunkserver_started(id, "a-new-claim");
        assert_every_copyset_whole(&model);
        assert!(model.copysets_on(7).is_empty(), "a new id starts empty");
    }

    /// The fix first considered for issue 32, and why the operator does not take it: setting
    /// the lone zone's old id RETIRED by hand. Curve accepts it with copysets on it
    /// (SetChunkServer, C:src/mds/topology/topology_service_manager.cpp:314-329;
    /// UpdateChunkServerRwState, C:src/mds/topology/topology.cpp:364-426, checks nothing but
    /// moves the pool's capacity), the gate lets the new disk register anew — and no copy
    /// moves to it: the pool's ChunkServer list leaves RETIRED ones out
    /// (C:src/mds/schedule/topoAdapter.cpp:254-268), so it has no more ChunkServers than a
    /// copyset has members and SelectBestPlacementChunkServer gives up
    /// (C:src/mds/schedule/scheduler.cpp:87-95), for the recover scheduler and for the PENDDING
    /// drain alike; the healthy checker stops tracking a RETIRED id
    /// (C:src/mds/heartbeat/chunkserver_healthy_checker.cpp:150-155). In Curve it is worse than
    /// the model shows: the MDS maps each raft member by ip:port to the ChunkServer there that
    /// is not RETIRED (C:src/mds/heartbeat/heartbeat_manager.cpp:355-375), so leaders report the
    /// new id as a member it never received (the model keeps members by id). And DeleteChunkServer
    /// takes the RETIRED id while copysets still list it (C:src/mds/topology/topology.cpp:248-268).
    #[test]
    fn retiring_a_lone_zone_s_old_id_by_hand_moves_no_copy_to_the_new_disk() {
        let now = Instant::now();
        let (mut model, held) = lone_zones(now);
        let on_1 = model.copysets_on(1);
        let late = lone_disk_lost(&mut model, held, now);
        assert_eq!(
            model.set_chunkserver(1, ChunkServerStatus::Retired),
            code::SUCCESS
        );
        assert_eq!(
            model.start_gate("a-new-claim", "127.0.0.101", 8200),
            StartGate::Proceed
        );
        let (id, token) = (model.regist_chunkserver(&request("127.0.0.101", 8200, None)))
            .id_token
            .unwrap();
        assert_eq!(id, 4);
        model.chunkserver_started(id, "a-new-claim");
        assert_eq!(model.heartbeat(id, &token, "127.0.0.101", 8200, late), 0);
        let step = model.settings.change_peer_time;
        for round in 1..=20u32 {
            let at = late + step * round;
            heartbeats_but(&mut model, 1, at);
            model.check_heartbeats(at);
            assert_eq!(
                (model.recover(at), model.schedule(at)),
                (0, 0),
                "round {round}"
            );
        }
        assert!(
            !model.heartbeats.contains_key(&1),
            "a RETIRED id is not tracked"
        );
        assert_eq!(model.copysets_on(1), on_1);
        assert!(model.copysets_on(4).is_empty());
        for key in &on_1 {
            let serving = (model.copysets[key].members.iter())
                .filter(|m| model.serves(**m, *key))
                .count();
            assert_eq!(serving, 2, "{key:?} stays a copy short");
        }
        // Curve would delete it now, leaving copysets that name a ChunkServer it no longer has.
        assert_eq!(model.delete_chunkserver(1), code::SUCCESS);
        assert!(
            on_1.iter()
                .all(|key| model.copysets[key].members.contains(&1))
        );
    }

    #[test]
    fn scatter_width_bounds_are_the_schedulers() {
        // C:src/mds/schedule/scheduler_helper.cpp:34-51's rules with min 3, 20 %: max 3.
        let ok = |target, old, new| satisfy_scatter_width(target, old, new, 3, 0.2);
        assert!(ok(false, 3, 3) && ok(true, 2, 3));
        // Below min: others must not lose, the target must gain.
        assert!(ok(false, 2, 2) && !ok(false, 2, 1));
        assert!(ok(true, 1, 2) && !ok(true, 2, 2));
        // Above max: others must not gain, the target must lose.
        assert!(ok(false, 5, 4) && ok(false, 4, 4) && !ok(false, 4, 5));
        assert!(ok(true, 5, 4) && !ok(true, 4, 4));
        // The pool's width is the placement's average: 4 here (each shares with the four
        // ChunkServers of the other zones).
        let (model, _) = running_cluster();
        assert_eq!(model.logical_pools[&1].scatter_width, 4);
        assert_eq!(model.min_scatter_width(1), 3);
    }

    #[test]
    fn an_offline_replica_is_replaced_by_the_recover_scheduler() {
        let (mut model, now) = running_cluster();
        model.settings.offline_timeout = Duration::from_secs(60);
        let on_1 = model.copysets_on(1);
        model.chunkserver_stopped(1);
        // UNSTABLE: no recovery (the trap's silence).
        let t = now + Duration::from_secs(31);
        heartbeats_but(&mut model, 1, t);
        model.check_heartbeats(t);
        assert_eq!(model.recover(t), 0);
        let t = now + Duration::from_secs(61);
        heartbeats_but(&mut model, 1, t);
        model.check_heartbeats(t);
        assert_eq!(model.chunkservers[&1].online, OnlineState::Offline);
        // One ChangePeer (1 → 2, the only place in zone 1) a copy's time, every copyset in
        // turn: the last round only finishes one.
        let step = model.settings.change_peer_time;
        let mut rounds = 0;
        while !model.copysets_on(1).is_empty() {
            assert!(rounds <= on_1.len(), "{:?}", model.operators);
            let created = model.recover(t + step * rounds as u32);
            let last = rounds == on_1.len();
            assert_eq!(created, usize::from(!last), "round {rounds}");
            assert!(
                model
                    .operators
                    .values()
                    .all(|o| (o.source, o.target) == (1, 2))
            );
            rounds += 1;
        }
        assert_eq!(rounds, on_1.len() + 1);
        assert_every_copyset_whole(&model);
        // Empty and OFFLINE: RETIRED at the next check.
        let t = t + step * rounds as u32;
        heartbeats_but(&mut model, 1, t);
        model.check_heartbeats(t);
        assert_eq!(model.chunkservers[&1].status, ChunkServerStatus::Retired);
    }

    #[test]
    fn a_server_with_too_many_down_is_not_recovered_unless_pendding() {
        let (mut model, now) = running_cluster();
        model.settings.offline_timeout = Duration::from_secs(60);
        model.settings.chunkserver_failure_tolerance = 2;
        // Both ChunkServers of server 1 down: beyond the tolerance, left alone.
        model.chunkserver_stopped(1);
        model.chunkserver_stopped(2);
        let t = now + Duration::from_secs(61);
        heartbeats_but(&mut model, 1, t);
        model.check_heartbeats(t);
        // (Zone 1 has no healthy ChunkServer left anyway; node-4's would do.)
        let joined = ClusterMapFile {
            servers: vec![map_server(4, "zone1")],
            logicalpools: Vec::new(),
        };
        let mut grown = three_servers();
        grown.servers.extend(joined.servers.clone());
        model.apply_physical_pool(&grown).unwrap();
        start_chunkservers(&mut model, &joined, t);
        model.check_heartbeats(t);
        assert_eq!(model.recover(t), 0);
        // A PENDDING one is recovered all the same.
        model.set_chunkserver(1, ChunkServerStatus::Pendding);
        assert!(model.recover(t) > 0);
        assert!(
            model.operators.values().all(|o| o.source == 1),
            "{:?}",
            model.operators
        );
    }

    #[test]
    fn back_to_readwrite_the_copy_under_way_finishes_and_no_other_starts() {
        let (mut model, now) = running_cluster();
        let on_1 = model.copysets_on(1);
        model.set_chunkserver(1, ChunkServerStatus::Pendding);
        assert_eq!(model.schedule(now), 1);
        let moving = model.operators.values().next().unwrap().copyset;
        model.set_chunkserver(1, ChunkServerStatus::ReadWrite);
        let step = model.settings.change_peer_time;
        for round in 1..=3 {
            assert_eq!(model.schedule(now + step * round), 0);
        }
        assert!(model.operators.is_empty());
        let left: Vec<CopysetKey> = on_1.iter().copied().filter(|k| *k != moving).collect();
        assert_eq!(model.copysets_on(1), left);
        assert_every_copyset_whole(&model);
    }

    #[test]
    fn a_new_primary_starts_with_no_operators() {
        let (mut model, now) = running_cluster();
        model.set_chunkserver(1, ChunkServerStatus::Pendding);
        assert_eq!(model.schedule(now), 1);
        model.mds_takes_over(now);
        assert!(model.operators.is_empty());
        assert_eq!(model.schedule(now), 1);
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
