//! What the MDS lists, reduced to what retiring and replacing ChunkServers decide on: each
//! ChunkServer with its status, online state, space and the copysets the MDS places on it,
//! each server, and the schedule operators in flight. Pure.

use std::collections::BTreeMap;

use super::health::{CurveReading, TopologyReading};
use super::raft_stat::RaftState;
use super::topology::{ChunkServerStatus, OnlineState};

/// One ChunkServer as the MDS records it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ListedChunkServer {
    pub id: u32,
    /// `ip:port` it registered with.
    pub address: String,
    pub status: ChunkServerStatus,
    pub online: OnlineState,
    /// The copysets the MDS's topology places on it (`GetChunkServerListInCopySets`, the same
    /// records `GetCopySetsInChunkServer` reads; not the `copysetnum` bvar, which goes stale).
    pub copysets: u32,
    pub capacity: u64,
    pub used: u64,
    /// The Curve server (node) it belongs to, by IP.
    pub server: Option<u32>,
    pub zone: Option<String>,
}

/// One Curve server (a node).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ListedServer {
    pub id: u32,
    pub name: String,
    pub ip: String,
    pub zone: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct Inventory {
    pub chunkservers: Vec<ListedChunkServer>,
    pub servers: Vec<ListedServer>,
    /// `mds_scheduler_metric_operator_num` of the elected MDS: schedule operators (copies
    /// being moved) in flight (C:src/mds/schedule/scheduleMetrics.h l.49,127). `None` when it
    /// could not be read.
    pub operators: Option<u64>,
    /// Raft leaders each ChunkServer (`ip:port`) holds, from its `/raft_stat`.
    pub leaders: BTreeMap<String, u32>,
}

impl Inventory {
    /// The inventory of one round, with the leaders each ChunkServer reported.
    pub fn of_reading(reading: &CurveReading) -> Option<Inventory> {
        let mut inventory = Inventory::of(reading.topology.as_ref().ok()?);
        for (address, nodes) in &reading.raft {
            let Ok(nodes) = nodes else { continue };
            let leaders = nodes
                .iter()
                .filter(|n| n.state == RaftState::Leader)
                .count();
            inventory.leaders.insert(address.clone(), leaders as u32);
        }
        Some(inventory)
    }

    pub fn of(topology: &TopologyReading) -> Inventory {
        let mut copysets: BTreeMap<u32, u32> = BTreeMap::new();
        for location in topology.members.values().flatten() {
            *copysets.entry(location.chunk_server_id).or_default() += 1;
        }
        let servers: Vec<ListedServer> = (topology.servers.iter())
            .map(|s| ListedServer {
                id: s.server_id,
                name: s.host_name.clone(),
                ip: s.internal_ip.clone(),
                zone: s.zone_name.clone(),
            })
            .collect();
        // Indexed once (a search per ChunkServer grows with servers × ChunkServers); the
        // first server listed at an IP wins, as a search in list order would find it.
        let by_ip: BTreeMap<&str, &ListedServer> =
            (servers.iter().rev()).map(|s| (s.ip.as_str(), s)).collect();
        let mut chunkservers: Vec<ListedChunkServer> = (topology.chunkservers.iter())
            .map(|cs| {
                let server = by_ip.get(cs.host_ip.as_str()).copied();
                ListedChunkServer {
                    id: cs.chunk_server_id,
                    address: cs.address(),
                    status: cs.status,
                    online: cs.online_state,
                    copysets: copysets.get(&cs.chunk_server_id).copied().unwrap_or(0),
                    capacity: cs.disk_capacity,
                    used: cs.disk_used,
                    server: server.map(|s| s.id),
                    zone: server.map(|s| s.zone.clone()),
                }
            })
            .collect();
        chunkservers.sort_by_key(|cs| cs.id);
        Inventory {
            chunkservers,
            servers,
            operators: topology.operators,
            leaders: BTreeMap::new(),
        }
    }

    pub fn chunkserver(&self, id: u32) -> Option<&ListedChunkServer> {
        self.chunkservers.iter().find(|cs| cs.id == id)
    }

    /// The ChunkServer registered at `address` that is not RETIRED: the one a registration
    /// from that address would be given (C:src/mds/topology/topology_service_manager.cpp
    /// l.106-137).
    pub fn live_at(&self, address: &str) -> Option<&ListedChunkServer> {
        (self.chunkservers.iter())
            .find(|cs| cs.address == address && cs.status != ChunkServerStatus::RETIRED)
    }

    pub fn server(&self, id: u32) -> Option<&ListedServer> {
        self.servers.iter().find(|s| s.id == id)
    }

    /// The ChunkServers of server `id`.
    pub fn on_server(&self, id: u32) -> impl Iterator<Item = &ListedChunkServer> {
        self.chunkservers
            .iter()
            .filter(move |cs| cs.server == Some(id))
    }
}

#[cfg(test)]
#[path = "inventory_tests.rs"]
mod tests;
