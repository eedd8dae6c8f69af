//! The Curve metric names the dashboards use, each with where it comes from.
//!
//! Curve v1.2.6 (github.com/opencurve/curve, tag v1.2.6) and what its WORKSPACE pins: brpc
//! 1b9e00641cbec1c8803da6a1f7f555398c954cb0 (patched by thirdparties/brpc/brpc.patch) and braft
//! e255c0e4b18d1a8a5d484d4b647f41ff1385ef1e. A bvar's exposed name is `prefix` + `_` + `name`,
//! each through `bvar::to_underscored_name` (brpc src/bvar/variable.cpp:128-160, 837-856);
//! `exposed_name` here is that function. LatencyRecorder::expose (brpc
//! src/bvar/latency_recorder.cpp:180-240) adds `_latency`, `_max_latency`, `_count`, `_qps`,
//! `_latency_80/90/99/999/9999`; MethodStatus::Expose (brpc src/brpc/details/method_status.cpp:
//! 48-66) adds `_concurrency`, `_error`, `_eps` and the method's LatencyRecorder, under
//! `rpc_server_<port>_<full method name>` (src/brpc/server.cpp:269, 305-312). The Prometheus
//! dumper (src/brpc/builtin/prometheus_metrics_service.cpp:120-175) prints a LatencyRecorder of
//! the scraped server as a summary and every other number as a gauge; Curve's brpc.patch
//! (lines 443-496) also prints string bvars holding a JSON object as labels of a 0 gauge.

/// How a Curve daemon exposes a series.
pub enum Exposed {
    /// A bvar: `expose_as(prefix, name)`, or a name alone (empty prefix).
    Bvar(&'static str, &'static str),
    /// A LatencyRecorder of the scraped brpc server, folded into a Prometheus summary: the
    /// recorder's prefix and the summary series' suffix ("", "_sum" or "_count").
    Summary(&'static str, &'static str),
}

use Exposed::{Bvar, Summary};

/// A name (or `__name__` regex) of a Curve daemon that a dashboard may use.
pub struct CurveMetric {
    /// The name or `__name__` regex exactly as the dashboards write it.
    pub pattern: &'static str,
    /// Names it must match, as the source exposes them (example ids, ip, port).
    pub examples: &'static [Exposed],
}

/// Ports and addresses in the examples: an MDS listening on 6700 (scraped on its dummy
/// port), a ChunkServer 10.0.0.1:8200.
pub const CURVE_METRICS: &[CurveMetric] = &[
    // brpc's process and runtime bvars, in every Curve daemon.
    // brpc src/bvar/default_variables.cpp:758-759 (Window over the CPU time of the process).
    CurveMetric {
        pattern: "process_cpu_usage",
        examples: &[Bvar("", "process_cpu_usage")],
    },
    // brpc src/bvar/default_variables.cpp:767-768.
    CurveMetric {
        pattern: "process_cpu_usage_system",
        examples: &[Bvar("", "process_cpu_usage_system")],
    },
    // brpc src/bvar/default_variables.cpp:690 (BVAR_DEFINE_PROC_MEMORY_FIELD(resident, …)).
    CurveMetric {
        pattern: "process_memory_resident",
        examples: &[Bvar("", "process_memory_resident")],
    },
    // brpc src/brpc/global.cpp:204-205.
    CurveMetric {
        pattern: "iobuf_block_memory",
        examples: &[Bvar("", "iobuf_block_memory")],
    },
    // brpc src/bthread/task_control.cpp:168.
    CurveMetric {
        pattern: "bthread_worker_usage",
        examples: &[Bvar("", "bthread_worker_usage")],
    },
    // brpc src/bthread/task_control.cpp:126.
    CurveMetric {
        pattern: "bthread_worker_count",
        examples: &[Bvar("", "bthread_worker_count")],
    },
    // brpc src/brpc/server.cpp:288-289 (prefix ServerPrefix(), server.cpp:269): printed only
    // when the scraped server is another one (an MDS's dummy port), since the dumper takes a
    // `_count` of the scraped server's own prefix for a summary's.
    CurveMetric {
        pattern: "rpc_server_[0-9]+_connection_count",
        examples: &[Bvar("rpc_server_6700", "connection_count")],
    },
    // MDS: the methods of its services (proto/nameserver2.proto:538 `curve.mds.CurveFSService`,
    // proto/topology.proto:452 `curve.mds.topology.TopologyService`, proto/heartbeat.proto:158
    // `curve.mds.heartbeat.HeartbeatService`), registered on the listen port's server in
    // src/mds/server/mds.cpp (MDS::StartServer); MethodStatus and LatencyRecorder bvars.
    CurveMetric {
        pattern: "rpc_server_[0-9]+_curve_mds_(.+)_qps",
        examples: &[
            Bvar("rpc_server_6700_curve.mds.CurveFSService.OpenFile", "qps"),
            Bvar(
                "rpc_server_6700_curve.mds.topology.TopologyService.ListChunkServer",
                "qps",
            ),
        ],
    },
    CurveMetric {
        pattern: "rpc_server_[0-9]+_curve_mds_(.+)_latency",
        examples: &[Bvar(
            "rpc_server_6700_curve.mds.CurveFSService.CreateFile",
            "latency",
        )],
    },
    CurveMetric {
        pattern: "rpc_server_[0-9]+_curve_mds_(.+)_latency_99",
        examples: &[Bvar(
            "rpc_server_6700_curve.mds.CurveFSService.CreateFile",
            "latency_99",
        )],
    },
    CurveMetric {
        pattern: "rpc_server_[0-9]+_curve_mds_(.+)_eps",
        examples: &[Bvar(
            "rpc_server_6700_curve.mds.CurveFSService.DeleteFile",
            "eps",
        )],
    },
    CurveMetric {
        pattern: "rpc_server_[0-9]+_curve_mds_(.+)_concurrency",
        examples: &[Bvar(
            "rpc_server_6700_curve.mds.CurveFSService.GetFileInfo",
            "concurrency",
        )],
    },
    // proto/heartbeat.proto:158-159 `HeartbeatService.ChunkServerHeartbeat`.
    CurveMetric {
        pattern: "rpc_server_[0-9]+_curve_mds_heartbeat_heartbeat_service_chunk_server_heartbeat_qps",
        examples: &[Bvar(
            "rpc_server_6700_curve.mds.heartbeat.HeartbeatService.ChunkServerHeartbeat",
            "qps",
        )],
    },
    CurveMetric {
        pattern: "rpc_server_[0-9]+_curve_mds_heartbeat_heartbeat_service_chunk_server_heartbeat_latency",
        examples: &[Bvar(
            "rpc_server_6700_curve.mds.heartbeat.HeartbeatService.ChunkServerHeartbeat",
            "latency",
        )],
    },
    CurveMetric {
        pattern: "rpc_server_[0-9]+_curve_mds_heartbeat_heartbeat_service_chunk_server_heartbeat_latency_99",
        examples: &[Bvar(
            "rpc_server_6700_curve.mds.heartbeat.HeartbeatService.ChunkServerHeartbeat",
            "latency_99",
        )],
    },
    // MDS topology metrics: src/mds/topology/topology_metric.h, LogicalPoolMetric (prefix
    // `topology_metric_logicalPool_`, line 115-116; names logicalPoolName + suffix at the
    // lines given), set by TopologyMetricService::UpdateTopologyMetrics
    // (src/mds/topology/topology_metric.cpp:39-200), which runs on the primary only.
    // topology_metric.h:227.
    CurveMetric {
        pattern: "topology_metric_logical_pool_(.+)_chunk_size_used_bytes",
        examples: &[Bvar(
            "topology_metric_logicalPool_",
            "pool1_chunkSizeUsedBytes",
        )],
    },
    // topology_metric.h:229.
    CurveMetric {
        pattern: "topology_metric_logical_pool_(.+)_chunk_size_left_bytes",
        examples: &[Bvar(
            "topology_metric_logicalPool_",
            "pool1_chunkSizeLeftBytes",
        )],
    },
    // topology_metric.h:231.
    CurveMetric {
        pattern: "topology_metric_logical_pool_(.+)_chunk_size_trashed_bytes",
        examples: &[Bvar(
            "topology_metric_logicalPool_",
            "pool1_chunkSizeTrashedBytes",
        )],
    },
    // topology_metric.h:233.
    CurveMetric {
        pattern: "topology_metric_logical_pool_(.+)_chunk_size_total_bytes",
        examples: &[Bvar(
            "topology_metric_logicalPool_",
            "pool1_chunkSizeTotalBytes",
        )],
    },
    // topology_metric.h:235.
    CurveMetric {
        pattern: "topology_metric_logical_pool_(.+)_logical_capacity",
        examples: &[Bvar(
            "topology_metric_logicalPool_",
            "pool1_logicalCapacity",
        )],
    },
    // topology_metric.h:237.
    CurveMetric {
        pattern: "topology_metric_logical_pool_(.+)_logical_alloc",
        examples: &[Bvar("topology_metric_logicalPool_", "pool1_logicalAlloc")],
    },
    // topology_metric.h:181.
    CurveMetric {
        pattern: "topology_metric_logical_pool_(.+)_chunkserver_num",
        examples: &[Bvar(
            "topology_metric_logicalPool_",
            "pool1_chunkserver_num",
        )],
    },
    // topology_metric.h:183.
    CurveMetric {
        pattern: "topology_metric_logical_pool_(.+)_copyset_num",
        examples: &[Bvar("topology_metric_logicalPool_", "pool1_copyset_num")],
    },
    // topology_metric.h:205, 197, 207.
    CurveMetric {
        pattern: "topology_metric_logical_pool_(.+)_copysetnum_min",
        examples: &[Bvar("topology_metric_logicalPool_", "pool1_copysetnum_min")],
    },
    CurveMetric {
        pattern: "topology_metric_logical_pool_(.+)_copysetnum_avg",
        examples: &[Bvar("topology_metric_logicalPool_", "pool1_copysetnum_avg")],
    },
    CurveMetric {
        pattern: "topology_metric_logical_pool_(.+)_copysetnum_max",
        examples: &[Bvar("topology_metric_logicalPool_", "pool1_copysetnum_max")],
    },
    // topology_metric.h:217, 209, 219.
    CurveMetric {
        pattern: "topology_metric_logical_pool_(.+)_leadernum_min",
        examples: &[Bvar("topology_metric_logicalPool_", "pool1_leadernum_min")],
    },
    CurveMetric {
        pattern: "topology_metric_logical_pool_(.+)_leadernum_avg",
        examples: &[Bvar("topology_metric_logicalPool_", "pool1_leadernum_avg")],
    },
    CurveMetric {
        pattern: "topology_metric_logical_pool_(.+)_leadernum_max",
        examples: &[Bvar("topology_metric_logicalPool_", "pool1_leadernum_max")],
    },
    // src/mds/topology/topology_metric.h, ChunkServerMetric (prefix
    // `topology_metric_chunkserver_Id_`, lines 45-46; names std::to_string(csId) + suffix).
    // topology_metric.h:84.
    CurveMetric {
        pattern: "topology_metric_chunkserver_id_([0-9]+)_copysetnum",
        examples: &[Bvar("topology_metric_chunkserver_Id_", "7_copysetnum")],
    },
    // topology_metric.h:86.
    CurveMetric {
        pattern: "topology_metric_chunkserver_id_([0-9]+)_leadernum",
        examples: &[Bvar("topology_metric_chunkserver_Id_", "7_leadernum")],
    },
    // topology_metric.h:82.
    CurveMetric {
        pattern: "topology_metric_chunkserver_id_([0-9]+)_scatterwidth",
        examples: &[Bvar("topology_metric_chunkserver_Id_", "7_scatterwidth")],
    },
    // topology_metric.h:106.
    CurveMetric {
        pattern: "topology_metric_chunkserver_id_([0-9]+)_chunk_size_left_bytes",
        examples: &[Bvar(
            "topology_metric_chunkserver_Id_",
            "7_chunkSizeLeftBytes",
        )],
    },
    // topology_metric.h:110.
    CurveMetric {
        pattern: "topology_metric_chunkserver_id_([0-9]+)_chunk_size_total_bytes",
        examples: &[Bvar(
            "topology_metric_chunkserver_Id_",
            "7_chunkSizeTotalBytes",
        )],
    },
    // topology_metric.h:96.
    CurveMetric {
        pattern: "topology_metric_chunkserver_id_([0-9]+)_read_rate",
        examples: &[Bvar("topology_metric_chunkserver_Id_", "7_readRate")],
    },
    // topology_metric.h:98.
    CurveMetric {
        pattern: "topology_metric_chunkserver_id_([0-9]+)_write_rate",
        examples: &[Bvar("topology_metric_chunkserver_Id_", "7_writeRate")],
    },
    // topology_metric.h:100.
    CurveMetric {
        pattern: "topology_metric_chunkserver_id_([0-9]+)_read_iops",
        examples: &[Bvar("topology_metric_chunkserver_Id_", "7_readIOPS")],
    },
    // topology_metric.h:102.
    CurveMetric {
        pattern: "topology_metric_chunkserver_id_([0-9]+)_write_iops",
        examples: &[Bvar("topology_metric_chunkserver_Id_", "7_writeIOPS")],
    },
    // MDS scheduler: src/mds/schedule/scheduleMetrics.h:127 (prefix `mds_scheduler_metric_`),
    // the Adders at lines 49-55.
    CurveMetric {
        pattern: "mds_scheduler_metric_operator_num",
        examples: &[Bvar("mds_scheduler_metric_", "operator_num")],
    },
    CurveMetric {
        pattern: "mds_scheduler_metric_add_peer_num",
        examples: &[Bvar("mds_scheduler_metric_", "addPeer_num")],
    },
    CurveMetric {
        pattern: "mds_scheduler_metric_remove_peer_num",
        examples: &[Bvar("mds_scheduler_metric_", "removePeer_num")],
    },
    CurveMetric {
        pattern: "mds_scheduler_metric_transfer_leader_num",
        examples: &[Bvar("mds_scheduler_metric_", "transferLeader_num")],
    },
    CurveMetric {
        pattern: "mds_scheduler_metric_change_peer_num",
        examples: &[Bvar("mds_scheduler_metric_", "changePeer_num")],
    },
    CurveMetric {
        pattern: "mds_scheduler_metric_normal_operator_num",
        examples: &[Bvar("mds_scheduler_metric_", "normal_operator_num")],
    },
    CurveMetric {
        pattern: "mds_scheduler_metric_high_operator_num",
        examples: &[Bvar("mds_scheduler_metric_", "high_operator_num")],
    },
    // MDS name server cache: src/mds/nameserver2/nameserverMetrics.h:57 (prefix
    // `mds_nameserver_cache_metric`), the bvars at lines 35-38.
    CurveMetric {
        pattern: "mds_nameserver_cache_metric_cache_count",
        examples: &[Bvar("mds_nameserver_cache_metric", "cache_count")],
    },
    CurveMetric {
        pattern: "mds_nameserver_cache_metric_cache_bytes",
        examples: &[Bvar("mds_nameserver_cache_metric", "cache_bytes")],
    },
    CurveMetric {
        pattern: "mds_nameserver_cache_metric_cache_hit",
        examples: &[Bvar("mds_nameserver_cache_metric", "cache_hit")],
    },
    CurveMetric {
        pattern: "mds_nameserver_cache_metric_cache_miss",
        examples: &[Bvar("mds_nameserver_cache_metric", "cache_miss")],
    },
    // MDS configuration: src/mds/server/mds.cpp:77 `conf_->ExposeMetric("mds_config")`;
    // src/common/configuration.cpp:105-115 exposes one StringStatus per key (labels conf_name,
    // conf_value: src/common/stringstatus.cpp:37-55, printed by brpc.patch's
    // DumpStatusJsonString).
    CurveMetric {
        pattern: "mds_config_.+",
        examples: &[Bvar("mds_config", "mds.listen.addr")],
    },
    // ChunkServer: ChunkServerMetric's prefix `chunkserver_<ip>_<port>`
    // (src/chunkserver/chunkserver_metrics.h:543-545).
    // ChunkServerMetric::Init, src/chunkserver/chunkserver_metrics.cpp:268 (an Adder).
    CurveMetric {
        pattern: "chunkserver_[0-9_]+_leader_count",
        examples: &[Bvar("", "chunkserver_10.0.0.1_8200_leader_count")],
    },
    // chunkserver_metrics.cpp:271-273 (PassiveStatus).
    CurveMetric {
        pattern: "chunkserver_[0-9_]+_chunk_count",
        examples: &[Bvar("", "chunkserver_10.0.0.1_8200_chunk_count")],
    },
    // chunkserver_metrics.cpp:279.
    CurveMetric {
        pattern: "chunkserver_[0-9_]+_snapshot_count",
        examples: &[Bvar("", "chunkserver_10.0.0.1_8200_snapshot_count")],
    },
    // chunkserver_metrics.cpp:283.
    CurveMetric {
        pattern: "chunkserver_[0-9_]+_clonechunk_count",
        examples: &[Bvar("", "chunkserver_10.0.0.1_8200_clonechunk_count")],
    },
    // chunkserver_metrics.cpp:275.
    CurveMetric {
        pattern: "chunkserver_[0-9_]+_walsegment_count",
        examples: &[Bvar("", "chunkserver_10.0.0.1_8200_walsegment_count")],
    },
    // chunkserver_metrics.cpp:392 (MonitorChunkFilePool).
    CurveMetric {
        pattern: "chunkserver_[0-9_]+_chunkfilepool_left",
        examples: &[Bvar("", "chunkserver_10.0.0.1_8200_chunkfilepool_left")],
    },
    // chunkserver_metrics.cpp:402 (MonitorWalFilePool).
    CurveMetric {
        pattern: "chunkserver_[0-9_]+_walfilepool_left",
        examples: &[Bvar("", "chunkserver_10.0.0.1_8200_walfilepool_left")],
    },
    // chunkserver_metrics.cpp:412 (MonitorTrash).
    CurveMetric {
        pattern: "chunkserver_[0-9_]+_chunk_trashed",
        examples: &[Bvar("", "chunkserver_10.0.0.1_8200_chunk_trashed")],
    },
    // IOMetric::Init (chunkserver_metrics.cpp:41-83) under the prefixes of CSIOMetric::Init
    // (lines 104-108: `_read`, `_write`, `_recover`, `_paste`, `_download`).
    // chunkserver_metrics.cpp:71.
    CurveMetric {
        pattern: "chunkserver_[0-9_]+_(read|write)_iops",
        examples: &[
            Bvar("chunkserver_10.0.0.1_8200_read", "iops"),
            Bvar("chunkserver_10.0.0.1_8200_write", "iops"),
        ],
    },
    // chunkserver_metrics.cpp:75.
    CurveMetric {
        pattern: "chunkserver_[0-9_]+_(read|write)_bps",
        examples: &[Bvar("chunkserver_10.0.0.1_8200_write", "bps")],
    },
    // chunkserver_metrics.cpp:79.
    CurveMetric {
        pattern: "chunkserver_[0-9_]+_(read|write)_eps",
        examples: &[Bvar("chunkserver_10.0.0.1_8200_read", "eps")],
    },
    // chunkserver_metrics.cpp:67.
    CurveMetric {
        pattern: "chunkserver_[0-9_]+_(read|write)_rps",
        examples: &[Bvar("chunkserver_10.0.0.1_8200_read", "rps")],
    },
    // chunkserver_metrics.cpp:59 `latencyRecorder_.expose(prefix, "lat")`, then brpc
    // latency_recorder.cpp:208 (`latency`) and 229 (`latency_%u` of bvar_latency_p3, 99).
    CurveMetric {
        pattern: "chunkserver_[0-9_]+_(read|write)_lat_latency",
        examples: &[Bvar("chunkserver_10.0.0.1_8200_read_lat", "latency")],
    },
    CurveMetric {
        pattern: "chunkserver_[0-9_]+_(read|write)_lat_latency_99",
        examples: &[Bvar("chunkserver_10.0.0.1_8200_write_lat", "latency_99")],
    },
    // chunkserver_metrics.cpp:63 `sizeRecorder_.expose(prefix, "io_size")`, latency_recorder.cpp:208.
    CurveMetric {
        pattern: "chunkserver_[0-9_]+_(read|write)_io_size_latency",
        examples: &[Bvar("chunkserver_10.0.0.1_8200_read_io_size", "latency")],
    },
    // chunkserver_metrics.cpp:71, 75, 59 under `_recover`, `_paste`, `_download`.
    CurveMetric {
        pattern: "chunkserver_[0-9_]+_(recover|paste|download)_iops",
        examples: &[
            Bvar("chunkserver_10.0.0.1_8200_recover", "iops"),
            Bvar("chunkserver_10.0.0.1_8200_paste", "iops"),
            Bvar("chunkserver_10.0.0.1_8200_download", "iops"),
        ],
    },
    CurveMetric {
        pattern: "chunkserver_[0-9_]+_(recover|paste|download)_bps",
        examples: &[Bvar("chunkserver_10.0.0.1_8200_paste", "bps")],
    },
    CurveMetric {
        pattern: "chunkserver_[0-9_]+_(recover|paste|download)_lat_latency",
        examples: &[Bvar("chunkserver_10.0.0.1_8200_download_lat", "latency")],
    },
    // chunkserver_metrics.cpp:433-440 (ExposeConfigMetric: Prefix() + "_config"), then
    // src/common/configuration.cpp:105-115 as for the MDS.
    CurveMetric {
        pattern: "chunkserver_[0-9_]+_config_.+",
        examples: &[Bvar(
            "chunkserver_10.0.0.1_8200_config",
            "copyset.election_timeout_ms",
        )],
    },
    // ChunkService (proto/chunk.proto:140-143, `curve.chunkserver.ChunkService.ReadChunk`,
    // `WriteChunk`) on the ChunkServer's server (src/chunkserver/chunkserver.cpp:323), which
    // Prometheus scrapes: its LatencyRecorders are summaries (prometheus_metrics_service.cpp:
    // 150-173), the rest gauges.
    CurveMetric {
        pattern: "rpc_server_[0-9]+_curve_chunkserver_chunk_service_(read|write)_chunk_qps",
        examples: &[
            Bvar(
                "rpc_server_8200_curve.chunkserver.ChunkService.ReadChunk",
                "qps",
            ),
            Bvar(
                "rpc_server_8200_curve.chunkserver.ChunkService.WriteChunk",
                "qps",
            ),
        ],
    },
    CurveMetric {
        pattern: "rpc_server_[0-9]+_curve_chunkserver_chunk_service_(read|write)_chunk_eps",
        examples: &[Bvar(
            "rpc_server_8200_curve.chunkserver.ChunkService.WriteChunk",
            "eps",
        )],
    },
    CurveMetric {
        pattern: "rpc_server_[0-9]+_curve_chunkserver_chunk_service_(read|write)_chunk_concurrency",
        examples: &[Bvar(
            "rpc_server_8200_curve.chunkserver.ChunkService.ReadChunk",
            "concurrency",
        )],
    },
    CurveMetric {
        pattern: "rpc_server_[0-9]+_curve_chunkserver_chunk_service_(read|write)_chunk",
        examples: &[Summary(
            "rpc_server_8200_curve.chunkserver.ChunkService.ReadChunk",
            "",
        )],
    },
    CurveMetric {
        pattern: "rpc_server_[0-9]+_curve_chunkserver_chunk_service_(read|write)_chunk_sum",
        examples: &[Summary(
            "rpc_server_8200_curve.chunkserver.ChunkService.WriteChunk",
            "_sum",
        )],
    },
    CurveMetric {
        pattern: "rpc_server_[0-9]+_curve_chunkserver_chunk_service_(read|write)_chunk_count",
        examples: &[Summary(
            "rpc_server_8200_curve.chunkserver.ChunkService.WriteChunk",
            "_count",
        )],
    },
    // braft's RaftService (braft src/braft/raft.proto:84-91, package `braft`), added to the
    // ChunkServer's server by braft::add_service (src/chunkserver/chunkserver.cpp:299).
    CurveMetric {
        pattern: "rpc_server_[0-9]+_braft_raft_service_append_entries_qps",
        examples: &[Bvar(
            "rpc_server_8200_braft.RaftService.append_entries",
            "qps",
        )],
    },
    CurveMetric {
        pattern: "rpc_server_[0-9]+_braft_raft_service_install_snapshot_qps",
        examples: &[Bvar(
            "rpc_server_8200_braft.RaftService.install_snapshot",
            "qps",
        )],
    },
    // braft src/braft/node.cpp:57 (one per raft node, i.e. copyset).
    CurveMetric {
        pattern: "raft_node_count",
        examples: &[Bvar("", "raft_node_count")],
    },
    // braft src/braft/log_entry.cpp:22.
    CurveMetric {
        pattern: "raft_num_log_entries",
        examples: &[Bvar("", "raft_num_log_entries")],
    },
    // braft src/braft/log_manager.cpp:43-44 (a LatencyRecorder), brpc latency_recorder.cpp:217, 208.
    CurveMetric {
        pattern: "raft_storage_append_entries_qps",
        examples: &[Bvar("raft_storage_append_entries", "qps")],
    },
    CurveMetric {
        pattern: "raft_storage_append_entries_latency",
        examples: &[Bvar("raft_storage_append_entries", "latency")],
    },
    // braft src/braft/replicator.cpp:52 (a LatencyRecorder).
    CurveMetric {
        pattern: "raft_send_entries_qps",
        examples: &[Bvar("raft_send_entries", "qps")],
    },
    CurveMetric {
        pattern: "raft_send_entries_latency",
        examples: &[Bvar("raft_send_entries", "latency")],
    },
];

/// brpc's `bvar::to_underscored_name` (src/bvar/variable.cpp:837-856): appends `src` to `out`,
/// a capital starting a new `_`-word in lower case, any run of other characters one `_`.
fn to_underscored_name(out: &mut String, src: &str) {
    let bytes = src.as_bytes();
    for (i, &c) in bytes.iter().enumerate() {
        if c.is_ascii_alphabetic() {
            if c.is_ascii_uppercase() {
                if i != 0 && !bytes[i - 1].is_ascii_uppercase() && !out.ends_with('_') {
                    out.push('_');
                }
                out.push(c.to_ascii_lowercase() as char);
            } else {
                out.push(c as char);
            }
        } else if c.is_ascii_digit() {
            out.push(c as char);
        } else if out.is_empty() || !out.ends_with('_') {
            out.push('_');
        }
    }
}

/// The name a Curve daemon's /metrics prints for `exposed`: `Variable::expose_impl`'s name
/// (brpc src/bvar/variable.cpp:145-160), or the summary's (prometheus_metrics_service.cpp).
pub fn exposed_name(exposed: &Exposed) -> String {
    let mut name = String::new();
    match exposed {
        Bvar(prefix, bvar) => {
            if !prefix.is_empty() {
                to_underscored_name(&mut name, prefix);
                if !name.ends_with('_') {
                    name.push('_');
                }
            }
            to_underscored_name(&mut name, bvar);
        }
        Summary(prefix, suffix) => {
            to_underscored_name(&mut name, prefix);
            name.push_str(suffix);
        }
    }
    name
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bvar_names_are_underscored_as_brpc_does() {
        let cases = [
            (
                Bvar("topology_metric_logicalPool_", "pool1_chunkSizeUsedBytes"),
                "topology_metric_logical_pool_pool1_chunk_size_used_bytes",
            ),
            (
                Bvar("topology_metric_chunkserver_Id_", "7_readIOPS"),
                "topology_metric_chunkserver_id_7_read_iops",
            ),
            (
                Bvar("rpc_server_6700_curve.mds.CurveFSService.OpenFile", "qps"),
                "rpc_server_6700_curve_mds_curve_fsservice_open_file_qps",
            ),
            (
                Bvar("", "chunkserver_10.0.0.1_8200_chunkfilepool_left"),
                "chunkserver_10_0_0_1_8200_chunkfilepool_left",
            ),
            (
                Summary(
                    "rpc_server_8200_curve.chunkserver.ChunkService.ReadChunk",
                    "_sum",
                ),
                "rpc_server_8200_curve_chunkserver_chunk_service_read_chunk_sum",
            ),
        ];
        for (exposed, expected) in cases {
            assert_eq!(exposed_name(&exposed), expected);
        }
        // The names Curve's own dashboards (monitor/grafana/dashboards/*.json at v1.2.6) use.
        assert_eq!(
            exposed_name(&Bvar(
                "rpc_server_6666_curve.mds.heartbeat.HeartbeatService.ChunkServerHeartbeat",
                "qps"
            )),
            "rpc_server_6666_curve_mds_heartbeat_heartbeat_service_chunk_server_heartbeat_qps"
        );
    }

    #[test]
    fn every_curve_metric_of_the_list_matches_its_source_name() {
        for metric in CURVE_METRICS {
            let re = regex::Regex::new(&format!("^(?:{})$", metric.pattern)).unwrap();
            for example in metric.examples {
                let name = exposed_name(example);
                assert!(
                    re.is_match(&name),
                    "{} does not match {name}, the name the source exposes",
                    metric.pattern
                );
            }
        }
    }
}
