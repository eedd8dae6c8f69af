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
use super::{CallError, CurveTransport, vars};

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
    let operators = client::get_vars(transport, addr, &[vars::MDS_OPERATOR_NUM])
        .await
        .ok()
        .and_then(|found| found.get(vars::MDS_OPERATOR_NUM)?.parse().ok());
    Ok(TopologyReading {
        operators,
        physical_pools,
        logical_pools,
        servers,
        chunkservers,
        copysets,
        members,
        space,
    })
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;
    use std::sync::Mutex;

    use serde_json::json;

    use super::*;
    use crate::curve::HttpAnswer;
    use crate::curve::raft_stat::tests::{IDLE, follower_block, leader_block};
    use crate::curve::vars::MdsRole;

    /// Answers by (address, path, body); anything else is refused, as a closed port is.
    #[derive(Default)]
    struct FakeCurve {
        answers: HashMap<(String, String, String), HttpAnswer>,
        asked: Mutex<Vec<String>>,
    }

    impl FakeCurve {
        fn answer(&mut self, addr: &str, path: &str, body: &str, status: u16, text: String) {
            let key = (addr.to_string(), path.to_string(), body.to_string());
            self.answers.insert(key, HttpAnswer { status, body: text });
        }

        fn rpc(&mut self, method: &str, request: serde_json::Value, response: serde_json::Value) {
            let path = format!("/curve.mds.topology.TopologyService/{method}");
            self.answer(MDS, &path, &request.to_string(), 200, response.to_string());
        }

        fn lookup(&self, addr: &str, path: &str, body: &str) -> Result<HttpAnswer, CallError> {
            self.asked
                .lock()
                .unwrap()
                .push(format!("{addr}{path} {body}"));
            // Keys in one order (serde_json's map is sorted), as json2pb does not care.
            let body = match serde_json::from_str::<serde_json::Value>(body) {
                Ok(v) => v.to_string(),
                Err(_) => body.to_string(),
            };
            let key = (addr.to_string(), path.to_string(), body);
            self.answers
                .get(&key)
                .cloned()
                .ok_or_else(|| CallError::Unreachable {
                    endpoint: format!("{addr}{path}"),
                    reason: "connect: Connection refused (os error 111)".into(),
                })
        }
    }

    impl CurveTransport for FakeCurve {
        async fn get(&self, addr: &str, path: &str) -> Result<HttpAnswer, CallError> {
            self.lookup(addr, path, "")
        }

        async fn post_json(
            &self,
            addr: &str,
            path: &str,
            body: String,
        ) -> Result<HttpAnswer, CallError> {
            self.lookup(addr, path, &body)
        }
    }

    const MDS: &str = "10.0.0.10:6666";

    fn cs_json(id: u32, ip: &str) -> serde_json::Value {
        json!({"chunkServerID":id,"diskType":"nvme","hostIp":ip,"port":8200,"status":"READWRITE","diskStatus":"DISKNORMAL","onlineState":"ONLINE","mountPoint":"local://./0/","diskCapacity":107374182400u64,"diskUsed":0,"externalIp":ip})
    }

    fn loc(id: u32, ip: &str) -> serde_json::Value {
        json!({"chunkServerID":id,"hostIp":ip,"port":8200,"externalIp":ip})
    }

    /// Three servers in three zones, a ChunkServer each; copyset 1/1 on all three, led by
    /// 10.0.0.1; the raft configuration also names 10.0.0.9, a ChunkServer the MDS does not
    /// list.
    fn cluster() -> FakeCurve {
        let mut f = FakeCurve::default();
        f.answer("10.0.0.10:6667", "/vars/mds_status,mds_config_mds_listen_addr?console=1", "", 200,
            "mds_config_mds_listen_addr : \"{\"conf_name\":\"mds.listen.addr\",\"conf_value\":\"10.0.0.10:6666\"}\"\r\nmds_status : \"leader\"\r\n".into());
        f.answer(
            "10.0.0.11:6667",
            "/vars/mds_status,mds_config_mds_listen_addr?console=1",
            "",
            500,
            "[10.0.0.11:6667][E2001]internal".into(),
        );
        f.rpc("ListPhysicalPool", json!({}), json!({"statusCode":0,"physicalPoolInfos":[{"physicalPoolID":1,"physicalPoolName":"pool1","desc":""}]}));
        f.rpc("ListPoolZone", json!({"physicalPoolID":1}), json!({"statusCode":0,"zones":([1, 2, 3].map(|z| json!({"zoneID":z,"zoneName":format!("zone{z}"),"physicalPoolID":1,"physicalPoolName":"pool1","desc":""})))}));
        f.rpc("ListLogicalPool", json!({"physicalPoolID":1}), json!({"statusCode":0,"logicalPoolInfos":[{"logicalPoolID":1,"logicalPoolName":"pool1","physicalPoolID":1,"type":"PAGEFILE","createTime":1,"redundanceAndPlaceMentPolicy":"e30=","userPolicy":"e30=","allocateStatus":"ALLOW"}]}));
        for z in 1..=3u32 {
            let ip = format!("10.0.0.{z}");
            f.rpc("ListZoneServer", json!({"zoneID":z}), json!({"statusCode":0,"serverInfo":[{"serverID":z,"hostName":format!("s{z}"),"internalIp":ip,"internalPort":0,"externalIp":ip,"externalPort":0,"zoneID":z,"zoneName":format!("zone{z}"),"physicalPoolID":1,"physicalPoolName":"pool1","desc":""}]}));
            f.rpc(
                "ListChunkServer",
                json!({"serverID":z}),
                json!({"statusCode":0,"chunkServerInfos":[cs_json(z, &ip)]}),
            );
        }
        f.rpc(
            "GetCopySetsInCluster",
            json!({}),
            json!({"statusCode":0,"copysetInfos":[{"logicalPoolId":1,"copysetId":1}]}),
        );
        f.rpc("GetChunkServerListInCopySets", json!({"logicalPoolId":1,"copysetId":[1]}),
            json!({"statusCode":0,"csInfo":[{"copysetId":1,"csLocs":[loc(1,"10.0.0.1"),loc(2,"10.0.0.2"),loc(3,"10.0.0.3")]}]}));
        f.answer(MDS, "/vars/topology_metric_logical_pool_pool1_chunk_size_total_bytes,topology_metric_logical_pool_pool1_chunk_size_used_bytes,topology_metric_logical_pool_pool1_logical_capacity,topology_metric_logical_pool_pool1_logical_alloc?console=1", "", 200,
            "topology_metric_logical_pool_pool1_logical_alloc : 1024\r\ntopology_metric_logical_pool_pool1_logical_capacity : 4096\r\n".into());
        let peers = [
            "10.0.0.1:8200:0",
            "10.0.0.2:8200:0",
            "10.0.0.3:8200:0",
            "10.0.0.9:8200:0",
        ];
        f.answer(
            "10.0.0.1:8200",
            "/raft_stat?console=1",
            "",
            200,
            leader_block(
                4294967297,
                peers[0],
                &[(peers[1], IDLE), (peers[2], IDLE), (peers[3], IDLE)],
                2580,
            ),
        );
        for (i, p) in peers.iter().enumerate().skip(1).take(2) {
            f.answer(
                &format!("10.0.0.{}:8200", i + 1),
                "/raft_stat?console=1",
                "",
                200,
                follower_block(4294967297, p, &peers, peers[0]),
            );
        }
        f.answer(
            "10.0.0.9:8200",
            "/raft_stat?console=1",
            "",
            200,
            follower_block(4294967297, peers[3], &peers, peers[0]),
        );
        f
    }

    fn targets() -> Targets {
        Targets {
            elected: Some(MDS.into()),
            mds: vec![
                MdsTarget {
                    listen_addr: MDS.into(),
                    dummy_addr: "10.0.0.10:6667".into(),
                },
                MdsTarget {
                    listen_addr: "10.0.0.11:6666".into(),
                    dummy_addr: "10.0.0.11:6667".into(),
                },
            ],
        }
    }

    #[tokio::test]
    async fn a_round_reads_every_daemon_and_the_peers_the_copysets_name() {
        let fake = cluster();
        let reading = gather(&fake, &targets(), &GatherOptions::default()).await;
        assert_eq!(reading.elected.as_deref(), Some(MDS));
        assert_eq!(
            reading.mds[0].answer.as_ref().unwrap().role,
            MdsRole::Leader
        );
        assert_eq!(
            reading.mds[1].answer,
            Err(CallError::BadAnswer {
                endpoint: "10.0.0.11:6667/vars/mds_status,mds_config_mds_listen_addr?console=1"
                    .into(),
                reason: "HTTP 500: brpc error 2001: internal".into()
            })
        );
        let topology = reading.topology.as_ref().unwrap();
        assert_eq!(topology.servers.len(), 3);
        assert_eq!(
            topology
                .chunkservers
                .iter()
                .map(|c| c.address())
                .collect::<Vec<_>>(),
            ["10.0.0.1:8200", "10.0.0.2:8200", "10.0.0.3:8200"]
        );
        assert_eq!(
            topology.members[&CopysetId {
                logical_pool: 1,
                copyset: 1
            }]
                .len(),
            3
        );
        assert_eq!(topology.space["pool1"].logical_capacity, Some(4096));
        assert_eq!(topology.space["pool1"].chunk_total, None);
        assert_eq!(
            reading.raft.keys().collect::<Vec<_>>(),
            [
                "10.0.0.1:8200",
                "10.0.0.2:8200",
                "10.0.0.3:8200",
                "10.0.0.9:8200"
            ]
        );
        assert!(reading.raft.values().all(|r| r.is_ok()));
        // The MDS that answered garbage keeps the verdict Unknown, naming it.
        let health = crate::curve::health::verdict(&reading, &Default::default());
        assert!(
            matches!(health.verdict, crate::curve::health::Verdict::Unknown { ref endpoint, .. } if endpoint.starts_with("10.0.0.11:6667"))
        );
    }

    #[tokio::test]
    async fn a_stopped_chunkserver_and_no_primary() {
        let mut fake = cluster();
        fake.answers
            .retain(|(addr, _, _), _| addr != "10.0.0.3:8200");
        let mut t = targets();
        t.mds.truncate(1);
        let reading = gather(&fake, &t, &GatherOptions { concurrency: 2 }).await;
        assert!(
            reading.raft["10.0.0.3:8200"]
                .as_ref()
                .unwrap_err()
                .is_unreachable()
        );
        let health = crate::curve::health::verdict(&reading, &Default::default());
        assert_eq!(
            health.copysets.as_ref().map(|c| (c.total, c.unhealthy)),
            Some((1, 1))
        );

        t.elected = None;
        let reading = gather(&fake, &t, &GatherOptions::default()).await;
        assert_eq!(reading.topology.as_ref().unwrap_err().endpoint(), "etcd");
        assert!(reading.raft.is_empty());
        let asked = fake.asked.lock().unwrap().clone();
        let last_round = &asked[asked
            .iter()
            .rposition(|a| a.contains("/raft_stat"))
            .unwrap()
            + 1..];
        assert_eq!(
            last_round,
            ["10.0.0.10:6667/vars/mds_status,mds_config_mds_listen_addr?console=1 "],
            "no MDS to ask for the topology"
        );
    }
}
