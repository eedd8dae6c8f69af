//! The Curve cluster map (topology.json) and the topology ConfigMap the pool Jobs read.
//!
//! `create_physicalpool` makes Curve's topology EQUAL to the map, deleting servers missing
//! from it, so the map always lists every ChunkServer host known, never a subset.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::ConfigMap;
use serde::{Deserialize, Serialize};

use super::common::{MERGE_SCRIPT, MERGE_SCRIPT_KEY, object_meta};
use super::config::{DaemonAddresses, TOOLS_CONF, tools_conf};
use crate::api::{OperatorRecord, RecordedServer};
use crate::names::{Component, component_name, labels};
use crate::validate::ValidatedCluster;

pub const TOPOLOGY_JSON: &str = "topology.json";
/// The key holding [`ClusterMap::servers_hash`] of the map beside it: a physical-pool Job,
/// named after the hash it was made for, checks it reads that map (a kubelet may mount the
/// ConfigMap before or after a newer map lands).
pub const SERVERS_HASH: &str = "servers-hash";
/// Where pods mount the topology ConfigMap (the ChunkServers all of it, the pool Jobs the map).
pub const TOPOLOGY_DIR: &str = "/curve-operator/topology";
pub const TOPOLOGY_VOLUME: &str = "topology";
pub const POOLSET: &str = "default";

/// A node running ChunkServers, as observed from its pods.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct ObservedServer {
    /// The node's name; also the Curve server's name.
    pub node: String,
    /// The node's IP (host networking: the ChunkServers' IP).
    pub host_ip: String,
    /// The node's value of `spec.placement.zoneLabel`, when that is set and the node has it.
    pub zone: Option<String>,
}

/// topology.json in Curve's format. Its servers are fixed once built: their hash, which
/// names the physical-pool Job and is asked for several times each decision, is kept.
#[derive(Serialize, Deserialize, Clone, Debug)]
pub struct ClusterMap {
    servers: Vec<Server>,
    pub logicalpools: Vec<LogicalPool>,
    pub poolsets: Vec<PoolSet>,
    pub npools: u32,
    #[serde(skip)]
    servers_hash: std::sync::OnceLock<String>,
}

impl PartialEq for ClusterMap {
    fn eq(&self, other: &Self) -> bool {
        // The kept hash follows from the servers.
        self.servers == other.servers
            && self.logicalpools == other.logicalpools
            && self.poolsets == other.poolsets
            && self.npools == other.npools
    }
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct Server {
    pub name: String,
    pub internalip: String,
    /// Always 0: Curve then matches a registering ChunkServer by IP alone, so any number of
    /// disk slots can register (see [`SERVER_PORT`]).
    pub internalport: i32,
    pub externalip: String,
    pub externalport: i32,
    pub zone: String,
    pub physicalpool: String,
    pub poolset: String,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct LogicalPool {
    pub name: String,
    pub physicalpool: String,
    pub segmentsize: u64,
    pub replicasnum: i32,
    pub copysetnum: i32,
    pub zonenum: i32,
    /// 0: PAGEFILE, the block-device pool type.
    #[serde(rename = "type")]
    pub pool_type: i32,
    pub scatterwidth: i32,
    pub createtime: u64,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct PoolSet {
    pub name: String,
    #[serde(rename = "type")]
    pub set_type: String,
}

const SEGMENT_SIZE: u64 = 1024 * 1024 * 1024;

/// The port every server of the map gets. A ChunkServer registers by `ip:port`, and the MDS
/// finds its server by the IP alone only when the server's port is 0
/// (TopologyImpl::FindServerByHostIpPort, src/mds/topology/topology.cpp:587-607); with a fixed
/// port only the ChunkServer of that port can register. `create_physicalpool` never updates a
/// server it already has (tools/curvefsTool.cpp:676-690 match by name, zone and pool), so a
/// port given at creation stays forever: 0 from the start lets disk slots be added later.
/// curveadm also writes 0 when a host runs several ChunkServers.
pub const SERVER_PORT: i32 = 0;

/// Zone of each server. A zone label wins; otherwise servers keep the zone they had in the
/// previous map (moving a server between zones would move data) and new servers join the
/// least-populated of `zone1..zoneN`, in node-name order.
pub fn assign_zones(
    servers: &[ObservedServer],
    zones: i32,
    previous: &BTreeMap<String, String>,
) -> BTreeMap<String, String> {
    let mut assigned: BTreeMap<String, String> = BTreeMap::new();
    let mut population: BTreeMap<String, usize> = (1..=zones.max(1))
        .map(|i| (format!("zone{i}"), 0))
        .collect();
    let mut sorted: Vec<&ObservedServer> = servers.iter().collect();
    sorted.sort();
    let mut unplaced = Vec::new();
    for server in &sorted {
        let zone = server
            .zone
            .clone()
            .or_else(|| previous.get(&server.node).cloned());
        match zone {
            Some(zone) => {
                *population.entry(zone.clone()).or_default() += 1;
                assigned.insert(server.node.clone(), zone);
            }
            None => unplaced.push(server.node.clone()),
        }
    }
    for node in unplaced {
        let zone = population
            .iter()
            .filter(|(zone, _)| zone.starts_with("zone"))
            .min_by_key(|(zone, count)| (**count, zone_index(zone)))
            .map(|(zone, _)| zone.clone())
            .unwrap_or_else(|| "zone1".to_string());
        *population.entry(zone.clone()).or_default() += 1;
        assigned.insert(node, zone);
    }
    assigned
}

fn zone_index(zone: &str) -> u32 {
    zone.trim_start_matches("zone").parse().unwrap_or(u32::MAX)
}

/// The complete cluster map: every server already recorded (a server is never dropped: Curve
/// would delete it and its copies) plus every newly observed one.
pub fn cluster_map(
    cluster: &ValidatedCluster,
    observed: &[ObservedServer],
    known: &[RecordedServer],
) -> ClusterMap {
    let cs = &cluster.spec.chunkservers;
    let pool = &cluster.spec.logical_pool;
    let port = SERVER_PORT;
    let mut servers: BTreeMap<String, ObservedServer> = BTreeMap::new();
    for server in known {
        let known = ObservedServer {
            node: server.name.clone(),
            host_ip: server.ip.clone(),
            zone: Some(server.zone.clone()),
        };
        servers.insert(server.name.clone(), known);
    }
    for server in observed {
        servers
            .entry(server.node.clone())
            .or_insert_with(|| server.clone());
    }
    let all: Vec<ObservedServer> = servers.into_values().collect();
    let previous_zones = known
        .iter()
        .map(|s| (s.name.clone(), s.zone.clone()))
        .collect();
    let zones = assign_zones(&all, pool.zones, &previous_zones);
    let chunkservers = cs.replicas * cs.disks_per_node;
    ClusterMap {
        servers: all
            .iter()
            .map(|server| Server {
                name: server.node.clone(),
                internalip: server.host_ip.clone(),
                internalport: port,
                externalip: server.host_ip.clone(),
                externalport: port,
                zone: zones[&server.node].clone(),
                physicalpool: pool.physical_pool.clone(),
                poolset: POOLSET.to_string(),
            })
            .collect(),
        logicalpools: vec![LogicalPool {
            name: pool.name.clone(),
            physicalpool: pool.physical_pool.clone(),
            segmentsize: SEGMENT_SIZE,
            replicasnum: pool.replicas,
            copysetnum: (cs.copysets * chunkservers / pool.replicas).max(1),
            zonenum: pool.zones,
            pool_type: 0,
            scatterwidth: 0,
            createtime: 0,
        }],
        poolsets: vec![PoolSet {
            name: POOLSET.to_string(),
            set_type: POOLSET.to_string(),
        }],
        npools: 1,
        servers_hash: std::sync::OnceLock::new(),
    }
}

/// Why the map's zones cannot be used in full, when they hold different numbers of servers:
/// every zone holds one copy of all data, so the smallest zone fills first while the MDS
/// counts the capacity of all (topology_chunk_allocator.cpp:171-185) and stops at the pool
/// usage limit rendered for equal zones: the smallest zone's ChunkServers run out of chunks
/// first. Validation makes the server count a multiple of the zones; this catches zones taken
/// from node labels (`spec.placement.zoneLabel`) that split them unevenly. For the status.
pub fn uneven_zones(map: &ClusterMap) -> Option<String> {
    let mut population: BTreeMap<&str, usize> = BTreeMap::new();
    for server in map.servers() {
        *population.entry(server.zone.as_str()).or_default() += 1;
    }
    let smallest = population.values().min()?;
    let largest = population.values().max()?;
    (smallest != largest).then(|| {
        let zones: Vec<String> = population
            .iter()
            .map(|(zone, servers)| format!("{zone}: {servers}"))
            .collect();
        format!(
            "zones hold different numbers of servers ({}): every zone holds one copy of all data, so the smallest fills first and only {smallest}/{largest} of the larger zones' space can be used; label nodes so every zone has as many servers",
            zones.join(", ")
        )
    })
}

impl ClusterMap {
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("the cluster map serializes")
    }

    /// The servers as the operator records them.
    pub fn recorded_servers(&self) -> Vec<RecordedServer> {
        self.servers
            .iter()
            .map(|s| RecordedServer {
                name: s.name.clone(),
                ip: s.internalip.clone(),
                zone: s.zone.clone(),
            })
            .collect()
    }

    /// The servers' IPs, sorted.
    pub fn server_ips(&self) -> Vec<String> {
        let mut ips: Vec<String> = self.servers.iter().map(|s| s.internalip.clone()).collect();
        ips.sort();
        ips.dedup();
        ips
    }

    /// The servers, in node-name order.
    pub fn servers(&self) -> &[Server] {
        &self.servers
    }

    /// A short stable hash of the server list: a new physical-pool Job runs when it changes.
    pub fn servers_hash(&self) -> String {
        (self.servers_hash.get_or_init(|| {
            let text = serde_json::to_string(&self.servers).expect("servers serialize");
            let hash = crate::util::fnv64_parts([text.as_bytes()]) as u32;
            format!("{hash:0width$x}", width = crate::names::SERVERS_HASH_LEN)
        }))
        .clone()
    }
}

/// What the pool Jobs have done: recorded in the status, and shown to the ChunkServer pods
/// (which start once their IP is in the physical pool) in the topology ConfigMap.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PoolProgress {
    /// IPs the physical pool lists (a ChunkServer starts once its IP is here).
    pub physical_pool_servers: Vec<String>,
    pub logical_pool_created: bool,
    /// The port the servers were registered with ([`SERVER_PORT`] once this operator created
    /// the pool): see `OperatorRecord::server_port`.
    pub server_port: Option<i32>,
}

pub const PHYSICAL_POOL_SERVERS: &str = "physical-pool-servers";
pub const LOGICAL_POOL_CREATED: &str = "logical-pool-created";

impl PoolProgress {
    pub fn from_record(record: &OperatorRecord) -> Self {
        PoolProgress {
            physical_pool_servers: record.physical_pool_servers.clone(),
            logical_pool_created: record.logical_pool_created,
            server_port: record.server_port,
        }
    }
}

pub fn build(
    cluster: &ValidatedCluster,
    map: &ClusterMap,
    progress: &PoolProgress,
    addresses: &DaemonAddresses,
) -> ConfigMap {
    let mut servers = progress.physical_pool_servers.join("\n");
    if !servers.is_empty() {
        servers.push('\n');
    }
    ConfigMap {
        metadata: object_meta(
            cluster,
            component_name(&cluster.name, Component::Topology),
            labels(&cluster.name, Component::Topology),
        ),
        data: Some(BTreeMap::from([
            (TOPOLOGY_JSON.to_string(), map.to_json()),
            (SERVERS_HASH.to_string(), map.servers_hash()),
            (TOOLS_CONF.to_string(), tools_conf(cluster, addresses)),
            (MERGE_SCRIPT_KEY.to_string(), MERGE_SCRIPT.to_string()),
            (PHYSICAL_POOL_SERVERS.to_string(), servers),
            (
                LOGICAL_POOL_CREATED.to_string(),
                progress.logical_pool_created.to_string(),
            ),
        ])),
        ..ConfigMap::default()
    }
}
