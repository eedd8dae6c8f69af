//! The inventory of a topology reading: each ChunkServer with its server, zone and copysets.

use super::*;
use crate::curve::raft_stat::CopysetId;
use crate::curve::topology::{ChunkServerInfo, ChunkServerLocation, DiskState, ServerInfo};

fn server(id: u32, ip: &str, zone: &str) -> ServerInfo {
    ServerInfo {
        server_id: id,
        host_name: format!("node-{id}"),
        internal_ip: ip.into(),
        internal_port: 0,
        external_ip: ip.into(),
        external_port: 0,
        zone_id: 1,
        zone_name: zone.into(),
        physical_pool_id: 1,
        physical_pool_name: "pool1".into(),
        desc: String::new(),
    }
}

fn chunkserver(id: u32, ip: &str) -> ChunkServerInfo {
    ChunkServerInfo {
        chunk_server_id: id,
        disk_type: "nvme".into(),
        host_ip: ip.into(),
        port: 8200,
        status: ChunkServerStatus::READWRITE,
        disk_status: DiskState::DISKNORMAL,
        online_state: OnlineState::ONLINE,
        mount_point: "local:///data/".into(),
        disk_capacity: 100,
        disk_used: 10,
        external_ip: None,
    }
}

fn location(cs: &ChunkServerInfo) -> ChunkServerLocation {
    ChunkServerLocation {
        chunk_server_id: cs.chunk_server_id,
        host_ip: cs.host_ip.clone(),
        port: cs.port,
        external_ip: None,
    }
}

/// Each ChunkServer is placed on the server of its IP (the first listed when two share it;
/// none when no server has it), and counts the copysets whose members include it.
#[test]
fn chunkservers_get_the_server_of_their_ip_and_their_copysets() {
    let chunkservers = vec![
        chunkserver(3, "10.0.0.2"),
        chunkserver(1, "10.0.0.1"),
        chunkserver(2, "10.0.0.1"),
        chunkserver(4, "10.0.0.9"),
    ];
    let copyset = |c| CopysetId {
        logical_pool: 1,
        copyset: c,
    };
    let topology = TopologyReading {
        servers: vec![
            server(1, "10.0.0.1", "zone1"),
            server(2, "10.0.0.2", "zone2"),
            server(3, "10.0.0.1", "zone3"),
        ],
        members: BTreeMap::from([
            (
                copyset(1),
                vec![location(&chunkservers[0]), location(&chunkservers[1])],
            ),
            (copyset(2), vec![location(&chunkservers[0])]),
        ]),
        chunkservers,
        operators: Some(2),
        ..TopologyReading::default()
    };
    let inventory = Inventory::of(&topology);
    let placed: Vec<(u32, Option<u32>, Option<&str>, u32)> = (inventory.chunkservers.iter())
        .map(|cs| (cs.id, cs.server, cs.zone.as_deref(), cs.copysets))
        .collect();
    assert_eq!(
        placed,
        [
            (1, Some(1), Some("zone1"), 1),
            (2, Some(1), Some("zone1"), 0),
            (3, Some(2), Some("zone2"), 2),
            (4, None, None, 0),
        ]
    );
    assert_eq!(inventory.operators, Some(2));
    assert_eq!(inventory.on_server(1).count(), 2);
}
