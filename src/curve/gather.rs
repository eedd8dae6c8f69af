//! One round of reading a Curve cluster: every MDS's dummy port, the elected MDS's topology,
//! copysets and pool bvars, and every ChunkServer's `/raft_stat`, with bounded concurrency.
//! The ChunkServers to ask come from the MDS's `ListChunkServer` answers (`hostIp:port`), as
//! in Curve's tool (C:src/tools/copyset_check_core.cpp l.367-372), plus any peer a copyset
//! names that is not among them.

use std::collections::{BTreeMap, BTreeSet};

use futures::{StreamExt, TryStreamExt, stream};

use super::client::{self, call};
use super::health::{CurveReading, MdsReading, TopologyReading};
use super::raft_stat::{CopysetId, RaftNode, peer_address};
use super::topology::{
    ChunkServerInfo, ChunkServerStatus, GetChunkServerListInCopySetsRequest,
    GetCopySetsInClusterRequest, ListChunkServerRequest, ListLogicalPoolRequest,
    ListPhysicalPoolRequest, ListPoolZoneRequest, ListZoneServerRequest, LogicalPoolInfo,
    ServerInfo, ZoneInfo,
};
use super::{CallError, CurveTransport};

/// One MDS to ask.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MdsTarget {
    /// `ip:port` it is configured to listen on (its `mds.listen.addr`).
    pub listen_addr: String,
    /// `ip:port` of its dummy port (`mds.dummy.listen.port`).
    pub dummy_addr: String,
}

/// What to read in one round.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Targets {
    /// The primary's `ip:port` as etcd's election names it; the topology is read there.
    pub elected: Option<String>,
    pub mds: Vec<MdsTarget>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GatherOptions {
    /// Requests in flight at once.
    pub concurrency: usize,
}

impl Default for GatherOptions {
    fn default() -> Self {
        GatherOptions { concurrency: 16 }
    }
}

/// A transport and the options of a round: the real [`super::CurveObserver`].
#[derive(Clone, Debug, Default)]
pub struct Gatherer<T> {
    pub transport: T,
    pub options: GatherOptions,
}

/// Reads everything the verdict needs. Never fails: each failure is kept where it happened.
pub async fn gather<T: CurveTransport>(
    transport: &T,
    targets: &Targets,
    options: &GatherOptions,
) -> CurveReading {
    let concurrency = options.concurrency.max(1);
    // Owned items: streams over borrowed ones are not `Send` for every lifetime.
    let mds = stream::iter(targets.mds.clone())
        .map(|m| async move {
            let answer = client::mds_dummy(transport, &m.dummy_addr).await;
            MdsReading {
                listen_addr: m.listen_addr,
                dummy_addr: m.dummy_addr,
                answer,
            }
        })
        .buffered(concurrency)
        .collect::<Vec<_>>();
    let topology = async {
        match &targets.elected {
            Some(addr) => read_topology(transport, addr, concurrency).await,
            None => Err(CallError::Unreachable {
                endpoint: "etcd".into(),
                reason: "no MDS holds the election key (07leader/)".into(),
            }),
        }
    };
    let (mds, topology) = futures::join!(mds, topology);

    let mut raft = BTreeMap::new();
    if let Ok(topology) = &topology {
        let chunkservers: BTreeSet<String> = (topology.chunkservers.iter())
            .filter(|cs| cs.status != ChunkServerStatus::RETIRED)
            .map(|cs| cs.address())
            .collect();
        read_raft(transport, chunkservers, concurrency, &mut raft).await;
        let peers = peers_named(topology, &raft);
        read_raft(transport, peers, concurrency, &mut raft).await;
    }
    CurveReading {
        elected: targets.elected.clone(),
        mds,
        topology,
        raft,
    }
}

async fn read_raft<T: CurveTransport>(
    transport: &T,
    addrs: BTreeSet<String>,
    concurrency: usize,
    raft: &mut BTreeMap<String, Result<Vec<RaftNode>, CallError>>,
) {
    let missing: Vec<String> = addrs
        .into_iter()
        .filter(|a| !raft.contains_key(a))
        .collect();
    let read = stream::iter(missing)
        .map(|addr| async move {
            let answer = client::raft_stat(transport, &addr).await;
            (addr, answer)
        })
        .buffer_unordered(concurrency)
        .collect::<Vec<_>>()
        .await;
    raft.extend(read);
}

/// Every ChunkServer address a copyset names, by the raft nodes' peers or the MDS's members.
pub fn peers_named(
    topology: &TopologyReading,
    raft: &BTreeMap<String, Result<Vec<RaftNode>, CallError>>,
) -> BTreeSet<String> {
    let from_raft = (raft.values().flatten().flatten())
        .flat_map(|node| node.peers.iter())
        .filter_map(|peer| peer_address(peer).map(String::from));
    let from_mds = (topology.members.values().flatten()).map(|l| l.address());
    from_raft.chain(from_mds).collect()
}

/// The topology as `curve_ops_tool` walks it: physical pools → zones → servers →
/// ChunkServers (C:src/tools/mds_client.cpp l.744-785), logical pools per physical pool
/// (l.470-516), the cluster's copysets (l.719-742) and their members (l.407-439), and the
/// logical pools' space bvars (C:src/tools/status_tool.cpp l.968-1022).
pub async fn read_topology<T: CurveTransport>(
    transport: &T,
    addr: &str,
    concurrency: usize,
) -> Result<TopologyReading, CallError> {
    let physical_pools = call(transport, addr, &ListPhysicalPoolRequest {})
        .await?
        .physical_pool_infos;
    let pool_ids: Vec<u32> = physical_pools.iter().map(|p| p.physical_pool_id).collect();
    let zones: Vec<ZoneInfo> = stream::iter(pool_ids.clone())
        .map(|physical_pool_id| async move {
            let request = ListPoolZoneRequest { physical_pool_id };
            call(transport, addr, &request).await.map(|r| r.zones)
        })
        .buffered(concurrency)
        .try_collect::<Vec<_>>()
        .await?
        .concat();
    let logical_pools: Vec<LogicalPoolInfo> = stream::iter(pool_ids)
        .map(|physical_pool_id| async move {
            let request = ListLogicalPoolRequest { physical_pool_id };
            call(transport, addr, &request)
                .await
                .map(|r| r.logical_pool_infos)
        })
        .buffered(concurrency)
        .try_collect::<Vec<_>>()
        .await?
        .concat();
    let zone_ids: Vec<u32> = zones.iter().map(|z| z.zone_id).collect();
    let servers: Vec<ServerInfo> = stream::iter(zone_ids)
        .map(|zone_id| async move {
            let request = ListZoneServerRequest { zone_id };
            call(transport, addr, &request).await.map(|r| r.server_info)
        })
        .buffered(concurrency)
        .try_collect::<Vec<_>>()
        .await?
        .concat();
    let server_ids: Vec<u32> = servers.iter().map(|s| s.server_id).collect();
    let chunkservers: Vec<ChunkServerInfo> = stream::iter(server_ids)
        .map(|server_id| async move {
            let request = ListChunkServerRequest { server_id };
            call(transport, addr, &request)
                .await
                .map(|r| r.chunk_server_infos)
        })
        .buffered(concurrency)
        .try_collect::<Vec<_>>()
        .await?
        .concat();
    let copysets = call(transport, addr, &GetCopySetsInClusterRequest {})
        .await?
        .copyset_infos;
    let mut by_pool: BTreeMap<u32, Vec<u32>> = BTreeMap::new();
    for c in &copysets {
        by_pool
            .entry(c.logical_pool_id)
            .or_default()
            .push(c.copyset_id);
    }
    let member_lists = stream::iter(by_pool)
        .map(|(logical_pool_id, copyset_id)| async move {
            let request = GetChunkServerListInCopySetsRequest {
                logical_pool_id,
                copyset_id,
            };
            call(transport, addr, &request)
                .await
                .map(|r| (logical_pool_id, r.cs_info))
        })
        .buffered(concurrency)
        .try_collect::<Vec<_>>()
        .await?;
    let members = (member_lists.into_iter())
        .flat_map(|(logical_pool, infos)| {
            infos.into_iter().map(move |info| {
                let id = CopysetId {
                    logical_pool,
                    copyset: info.copyset_id,
                };
                (id, info.cs_locs)
            })
        })
        .collect();
    let names: Vec<String> = logical_pools
        .iter()
        .map(|p| p.logical_pool_name.clone())
        .collect();
    // The pool bvars appear a metric interval after an election; without them the verdict
    // still stands, so a failure leaves the space unknown.
    let space = client::pool_space(transport, addr, &names)
        .await
        .unwrap_or_default();
    Ok(TopologyReading {
        physical_pools,
        logical_pools,
        servers,
        chunkservers,
        copysets,
        members,
        space,
    })
}
