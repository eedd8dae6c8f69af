//! The Grafana dashboards (src/dashboards.rs → charts/curve-operator/dashboards/*.json): the
//! committed files are the generator's output, and a real Prometheus (Debian's `prometheus`)
//! runs every expression of every dashboard. It scrapes the operator's `/metrics` (the
//! library's own HTTP server, its `Metrics` set as for a running cluster) and a real etcd
//! cluster (Debian's `etcd`) labelled as the operator's PodMonitors label etcd pods. Every
//! expression must parse, and those over the operator's or etcd's metrics must return data.
//! No Curve daemon runs here: expressions over MDS and ChunkServer metrics must parse, and
//! every name they use must be one of `CURVE_METRICS`, each derived from Curve's source.

#[path = "support/etcd.rs"]
mod etcd_support;

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use curve_operator::dashboards::{self, DIRECTORY};
use curve_operator::runtime::http::{Readiness, serve};
use curve_operator::runtime::metrics::{Component, Metrics, ReconcileResult};
use etcd_support::{EtcdCluster, TempDir, free_port};
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// The CurveCluster the dashboards are looked at for.
const NS: &str = "curve";
const CLUSTER: &str = "demo";
/// The operator's own namespace: its target's `namespace` label, which `honor_labels` must not
/// let overwrite the metrics' own `namespace` (the CurveCluster's).
const OPERATOR_NS: &str = "curve-system";
/// What `$__rate_interval` and `$__interval` become.
const INTERVAL: &str = "1m";

fn repo(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(path)
}

#[test]
fn the_committed_dashboards_are_the_generated_ones() {
    let dir = repo(DIRECTORY);
    let generated = dashboards::all();
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::create_dir_all(&dir).unwrap();
        for dashboard in &generated {
            std::fs::write(dir.join(dashboard.file_name()), dashboard.text()).unwrap();
        }
    }
    for dashboard in &generated {
        let path = dir.join(dashboard.file_name());
        let committed = std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("{}: {e} (UPDATE_GOLDEN=1 writes it)", path.display()));
        assert!(
            committed == dashboard.text(),
            "{} is not what src/dashboards.rs generates (UPDATE_GOLDEN=1 cargo test --test dashboards)",
            path.display()
        );
    }
    let files: BTreeSet<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    let expected: BTreeSet<String> = generated.iter().map(|d| d.file_name()).collect();
    assert_eq!(
        files, expected,
        "{DIRECTORY} holds files the generator does not write"
    );
}

#[test]
fn dashboards_are_well_formed() {
    let all = dashboards::all();
    let uids: BTreeSet<&str> = all
        .iter()
        .map(|d| d.json["uid"].as_str().unwrap())
        .collect();
    assert_eq!(uids.len(), all.len(), "uids repeat");
    for dashboard in &all {
        let json = &dashboard.json;
        let name = dashboard.name;
        let variables: Vec<&str> = json["templating"]["list"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v["name"].as_str().unwrap())
            .collect();
        assert_eq!(
            variables[..3],
            ["datasource", "namespace", "cluster"],
            "{name}"
        );
        assert_eq!(json["templating"]["list"][0]["type"], "datasource");
        assert_eq!(json["templating"]["list"][0]["query"], "prometheus");
        let panels = json["panels"].as_array().unwrap();
        assert!(panels.len() > 10, "{name}");
        for panel in panels.iter().filter(|p| p["type"] != "row") {
            let title = panel["title"].as_str().unwrap();
            assert_eq!(
                panel["datasource"]["uid"], "${datasource}",
                "{name}: {title}"
            );
            assert!(
                !panel["description"].as_str().unwrap().is_empty(),
                "{name}: {title} has no description"
            );
            let targets = panel["targets"].as_array().unwrap();
            assert!(!targets.is_empty(), "{name}: {title}");
            for target in targets {
                let expr = target["expr"].as_str().unwrap();
                assert_eq!(target["datasource"]["uid"], "${datasource}");
                for used in variables_in(expr) {
                    assert!(
                        variables.contains(&used.as_str()) || used.starts_with("__"),
                        "{name}: {title}: ${used} is no variable of the dashboard"
                    );
                }
            }
        }
    }
}

/// `$name` references in `text` (not `$1`, label_replace's group).
fn variables_in(text: &str) -> Vec<String> {
    let re = regex::Regex::new(r"\$\{?([A-Za-z_][A-Za-z0-9_]*)").unwrap();
    re.captures_iter(text).map(|c| c[1].to_string()).collect()
}

// ---------------------------------------------------------------------------------------------
// The Curve metric names the dashboards use, each with where it comes from.
//
// Curve v1.2.6 (github.com/opencurve/curve, tag v1.2.6) and what its WORKSPACE pins: brpc
// 1b9e00641cbec1c8803da6a1f7f555398c954cb0 (patched by thirdparties/brpc/brpc.patch) and braft
// e255c0e4b18d1a8a5d484d4b647f41ff1385ef1e. A bvar's exposed name is `prefix` + `_` + `name`,
// each through `bvar::to_underscored_name` (brpc src/bvar/variable.cpp:128-160, 837-856);
// `exposed_name` below is that function. LatencyRecorder::expose (brpc
// src/bvar/latency_recorder.cpp:180-240) adds `_latency`, `_max_latency`, `_count`, `_qps`,
// `_latency_80/90/99/999/9999`; MethodStatus::Expose (brpc src/brpc/details/method_status.cpp:
// 48-66) adds `_concurrency`, `_error`, `_eps` and the method's LatencyRecorder, under
// `rpc_server_<port>_<full method name>` (src/brpc/server.cpp:269, 305-312). The Prometheus
// dumper (src/brpc/builtin/prometheus_metrics_service.cpp:120-175) prints a LatencyRecorder of
// the scraped server as a summary and every other number as a gauge; Curve's brpc.patch
// (lines 443-496) also prints string bvars holding a JSON object as labels of a 0 gauge.

/// How a Curve daemon exposes a series.
enum Exposed {
    /// A bvar: `expose_as(prefix, name)`, or a name alone (empty prefix).
    Bvar(&'static str, &'static str),
    /// A LatencyRecorder of the scraped brpc server, folded into a Prometheus summary: the
    /// recorder's prefix and the summary series' suffix ("", "_sum" or "_count").
    Summary(&'static str, &'static str),
}

use Exposed::{Bvar, Summary};

struct CurveMetric {
    /// The name or `__name__` regex exactly as the dashboards write it.
    pattern: &'static str,
    /// Names it must match, as the source exposes them (example ids, ip, port).
    examples: &'static [Exposed],
}

/// Ports and addresses in the examples: an MDS listening on 6700 (scraped on its dummy
/// port), a ChunkServer 10.0.0.1:8200.
const CURVE_METRICS: &[CurveMetric] = &[
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
fn exposed_name(exposed: &Exposed) -> String {
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

// ---------------------------------------------------------------------------------------------
// Expressions and the series they select.

/// One vector selector of an expression: the metric name (plain, or `__name__` matchers) and
/// the label matchers.
#[derive(Debug)]
struct Selector {
    name: Option<String>,
    matchers: Vec<Matcher>,
}

/// `label op "value"`.
type Matcher = (String, String, String);

impl Selector {
    /// The plain name or the `__name__=~` regex, as written.
    fn pattern(&self) -> Option<&str> {
        self.name.as_deref().or_else(|| {
            self.matchers
                .iter()
                .find(|(l, op, _)| l == "__name__" && (op == "=" || op == "=~"))
                .map(|(_, _, v)| v.as_str())
        })
    }

    fn label(&self, label: &str) -> Option<&str> {
        self.matchers
            .iter()
            .find(|(l, op, _)| l == label && op == "=")
            .map(|(_, _, v)| v.as_str())
    }
}

/// The vector selectors of a PromQL expression: a small scanner that skips strings, range
/// brackets, functions, aggregations, keywords and label lists (`by (…)`, `on (…)`).
fn selectors(expr: &str) -> Result<Vec<Selector>, String> {
    const AGGREGATIONS: [&str; 12] = [
        "sum",
        "min",
        "max",
        "avg",
        "group",
        "stddev",
        "stdvar",
        "count",
        "count_values",
        "bottomk",
        "topk",
        "quantile",
    ];
    const KEYWORDS: [&str; 5] = ["and", "or", "unless", "bool", "offset"];
    const LABEL_LISTS: [&str; 6] = [
        "by",
        "without",
        "on",
        "ignoring",
        "group_left",
        "group_right",
    ];
    let chars: Vec<char> = expr.chars().collect();
    let skip_space = |mut i: usize| {
        while i < chars.len() && chars[i].is_whitespace() {
            i += 1;
        }
        i
    };
    let close = |from: usize, close: char| -> Result<usize, String> {
        chars[from..]
            .iter()
            .position(|&c| c == close)
            .map(|p| from + p + 1)
            .ok_or_else(|| format!("no {close:?} after position {from} in {expr}"))
    };
    let string_end = |from: usize| -> Result<usize, String> {
        let quote = chars[from];
        let mut i = from + 1;
        while i < chars.len() {
            match chars[i] {
                '\\' => i += 2,
                c if c == quote => return Ok(i + 1),
                _ => i += 1,
            }
        }
        Err(format!("unterminated string in {expr}"))
    };
    let matchers = |from: usize| -> Result<(Vec<Matcher>, usize), String> {
        let mut out = vec![];
        let mut i = from + 1;
        loop {
            i = skip_space(i);
            match chars.get(i) {
                Some('}') => return Ok((out, i + 1)),
                Some(',') => i += 1,
                Some(_) => {
                    let start = i;
                    while i < chars.len() && (chars[i].is_alphanumeric() || chars[i] == '_') {
                        i += 1;
                    }
                    let label: String = chars[start..i].iter().collect();
                    i = skip_space(i);
                    let op_start = i;
                    while i < chars.len() && "=!~".contains(chars[i]) {
                        i += 1;
                    }
                    let op: String = chars[op_start..i].iter().collect();
                    i = skip_space(i);
                    if label.is_empty() || op.is_empty() || chars.get(i) != Some(&'"') {
                        return Err(format!("bad matcher at {start} in {expr}"));
                    }
                    let end = string_end(i)?;
                    let value: String = chars[i + 1..end - 1].iter().collect();
                    out.push((label, op, value));
                    i = end;
                }
                None => return Err(format!("unclosed {{ in {expr}")),
            }
        }
    };
    let mut out = vec![];
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c == '"' || c == '\'' {
            i = string_end(i)?;
        } else if c == '[' {
            i = close(i, ']')?;
        } else if c == '{' {
            let (m, next) = matchers(i)?;
            out.push(Selector {
                name: None,
                matchers: m,
            });
            i = next;
        } else if c.is_ascii_digit() {
            while i < chars.len() && (chars[i].is_ascii_alphanumeric() || chars[i] == '.') {
                i += 1;
            }
        } else if c.is_ascii_alphabetic() || c == '_' || c == ':' {
            let start = i;
            while i < chars.len() && (chars[i].is_ascii_alphanumeric() || "_:".contains(chars[i])) {
                i += 1;
            }
            let word: String = chars[start..i].iter().collect();
            let next = skip_space(i);
            if LABEL_LISTS.contains(&word.as_str()) {
                if chars.get(next) == Some(&'(') {
                    i = close(next, ')')?;
                }
            } else if AGGREGATIONS.contains(&word.as_str())
                || KEYWORDS.contains(&word.as_str())
                || chars.get(next) == Some(&'(')
            {
                // a function, aggregation or keyword
            } else {
                let mut m = vec![];
                if chars.get(next) == Some(&'{') {
                    let (found, after) = matchers(next)?;
                    m = found;
                    i = after;
                }
                out.push(Selector {
                    name: Some(word),
                    matchers: m,
                });
            }
        } else {
            i += 1;
        }
    }
    Ok(out)
}

#[test]
fn the_scanner_finds_every_selector() {
    let found = selectors(
        r#"histogram_quantile(0.99, sum by (pod, le) (rate(a_bucket{x="1",pod=~"p|q"}[1m]))) / on (pod) group_left max(label_replace({__name__=~"b_(.+)",y!="}"}, "l", "$1", "__name__", "b_(.+)")) + 2 * c"#,
    )
    .unwrap();
    let patterns: Vec<Option<&str>> = found.iter().map(Selector::pattern).collect();
    assert_eq!(patterns, [Some("a_bucket"), Some("b_(.+)"), Some("c")]);
    assert_eq!(
        found[0].matchers[1],
        ("pod".into(), "=~".into(), "p|q".into())
    );
}

/// One expression of a dashboard: a panel's query, or the series a variable's
/// `label_values(series, label)` lists (`label` then set).
struct Expr {
    dashboard: String,
    panel: String,
    expr: String,
    label: Option<String>,
}

fn expressions(dashboard: &Value) -> Vec<Expr> {
    let uid = dashboard["uid"].as_str().unwrap().to_string();
    let mut out = vec![];
    for variable in dashboard["templating"]["list"].as_array().unwrap() {
        if variable["type"] != "query" {
            continue;
        }
        let query = variable["query"].as_str().unwrap();
        let inner = query
            .strip_prefix("label_values(")
            .and_then(|q| q.strip_suffix(')'))
            .unwrap_or_else(|| panic!("{uid}: not label_values(…): {query}"));
        let (series, label) = inner.rsplit_once(", ").unwrap();
        out.push(Expr {
            dashboard: uid.clone(),
            panel: format!("variable {}", variable["name"].as_str().unwrap()),
            expr: series.to_string(),
            label: Some(label.to_string()),
        });
    }
    for panel in dashboard["panels"].as_array().unwrap() {
        for target in panel["targets"].as_array().into_iter().flatten() {
            out.push(Expr {
                dashboard: uid.clone(),
                panel: panel["title"].as_str().unwrap().to_string(),
                expr: target["expr"].as_str().unwrap().to_string(),
                label: None,
            });
        }
    }
    out
}

/// The pods the `pod` variable selects, as Grafana writes a multi-value selection into a
/// regex: every pod of the component.
fn pods_of(dashboard: &str) -> String {
    let component = dashboard.strip_prefix("curve-").unwrap();
    let pods: Vec<String> = (0..3)
        .map(|i| format!("{CLUSTER}-{component}-{i}"))
        .collect();
    format!("({})", pods.join("|"))
}

/// The expression as Grafana sends it for namespace `curve`, cluster `demo` and every pod.
fn substitute(expr: &Expr) -> String {
    expr.expr
        .replace("$__rate_interval", INTERVAL)
        .replace("$__interval", INTERVAL)
        .replace("$namespace", NS)
        .replace("$cluster", CLUSTER)
        .replace("$pod", &pods_of(&expr.dashboard))
}

// ---------------------------------------------------------------------------------------------
// A real Prometheus.

fn prometheus_binary() -> PathBuf {
    let bin = std::env::var_os("PROMETHEUS")
        .map(PathBuf::from)
        .unwrap_or_else(|| "/usr/bin/prometheus".into());
    if !bin.exists() {
        panic!(
            "prometheus not found at {}: the dashboard tests run a real Prometheus; install \
             Debian's package (apt-get install --no-install-recommends prometheus, as \
             scripts/prereqs.sh does) or set PROMETHEUS",
            bin.display()
        );
    }
    bin
}

struct Prometheus {
    child: Child,
    addr: SocketAddr,
    log: PathBuf,
    _dir: TempDir,
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Prometheus {
    /// Starts Prometheus with `config` on a free loopback port and waits until it is ready.
    async fn start(config: &str) -> Prometheus {
        let binary = prometheus_binary();
        let mut last = String::new();
        for _ in 0..3 {
            let dir = TempDir::new("prometheus");
            std::fs::write(dir.path().join("prometheus.yml"), config).unwrap();
            let addr: SocketAddr = format!("127.0.0.1:{}", free_port("127.0.0.1"))
                .parse()
                .unwrap();
            let log = dir.path().join("prometheus.log");
            let child = Command::new(&binary)
                .arg(format!(
                    "--config.file={}",
                    dir.path().join("prometheus.yml").display()
                ))
                .arg(format!(
                    "--storage.tsdb.path={}",
                    dir.path().join("data").display()
                ))
                .arg(format!("--web.listen-address={addr}"))
                .stdin(Stdio::null())
                .stdout(std::fs::File::create(&log).unwrap())
                .stderr(std::fs::File::create(&log).unwrap())
                .spawn()
                .expect("start prometheus");
            let mut prometheus = Prometheus {
                child,
                addr,
                log,
                _dir: dir,
            };
            let deadline = Instant::now() + Duration::from_secs(30);
            loop {
                if let Ok(Some(status)) = prometheus.child.try_wait() {
                    last = format!("prometheus exited ({status}):\n{}", prometheus.log_tail());
                    break;
                }
                if let Ok((200, _)) = http_get(prometheus.addr, "/-/ready").await {
                    return prometheus;
                }
                if Instant::now() > deadline {
                    last = format!("prometheus not ready in 30s:\n{}", prometheus.log_tail());
                    break;
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
        panic!("{last}");
    }

    fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(20)..].join("\n")
    }

    /// GET `path` of the HTTP API; `Err` holds Prometheus's error (e.g. a parse error).
    async fn api(&self, path: &str) -> Result<Value, String> {
        let (status, body) = http_get(self.addr, path)
            .await
            .map_err(|e| format!("request failed: {e}"))?;
        let json: Value = serde_json::from_str(&body)
            .map_err(|e| format!("HTTP {status}, not JSON ({e}): {body}"))?;
        if json["status"] == "success" {
            Ok(json["data"].clone())
        } else {
            Err(format!("{}: {}", json["errorType"], json["error"]))
        }
    }

    /// An instant query's result vector.
    async fn query(&self, expr: &str) -> Result<Vec<Value>, String> {
        let data = self
            .api(&format!("/api/v1/query?query={}", url_encode(expr)))
            .await?;
        match data["resultType"].as_str() {
            Some("vector") => Ok(data["result"].as_array().unwrap().clone()),
            other => Err(format!("result type {other:?}, not a vector")),
        }
    }

    /// Metric names of the series matching `selector`.
    async fn names(&self, selector: &str) -> BTreeSet<String> {
        let data = self
            .api(&format!(
                "/api/v1/label/__name__/values?match[]={}",
                url_encode(selector)
            ))
            .await
            .unwrap();
        data.as_array()
            .unwrap()
            .iter()
            .map(|n| n.as_str().unwrap().to_string())
            .collect()
    }
}

fn url_encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// HTTP/1.0 GET (no chunked encoding; the server closes the connection): status and body.
async fn http_get(addr: SocketAddr, path: &str) -> std::io::Result<(u16, String)> {
    let mut stream = TcpStream::connect(addr).await?;
    let request = format!("GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n");
    stream.write_all(request.as_bytes()).await?;
    let mut response = vec![];
    stream.read_to_end(&mut response).await?;
    let response = String::from_utf8_lossy(&response).into_owned();
    let status = response
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    Ok((status, body))
}

// ---------------------------------------------------------------------------------------------
// What is scraped.

/// The operator's metrics as for a running installation: cluster `curve/demo` (3 etcd members,
/// 3 MDS with demo-mds-1 primary after a failover, 6 ChunkServers with one down during a
/// roll) and `prod/big`, plus the installation's reconciles and API requests.
fn running_cluster_metrics() -> Metrics {
    let m = Metrics::new();
    for (component, desired, ready) in [
        (Component::Etcd, 3, 3),
        (Component::Mds, 3, 3),
        (Component::ChunkServer, 6, 5),
    ] {
        m.set_desired(NS, CLUSTER, component, desired);
        m.set_ready(NS, CLUSTER, component, ready);
        m.set_desired("prod", "big", component, desired);
        m.set_ready("prod", "big", component, desired);
    }
    let mds: Vec<String> = (0..3).map(|i| format!("{CLUSTER}-mds-{i}")).collect();
    m.set_primary(NS, CLUSTER, Some("demo-mds-0"), &mds);
    m.primary_changed(NS, CLUSTER);
    m.set_primary(NS, CLUSTER, Some("demo-mds-1"), &mds);
    m.primary_changed(NS, CLUSTER);
    m.set_etcd_members(NS, CLUSTER, 3, 3);
    m.set_available(NS, CLUSTER, true);
    m.set_reconcile_failures(NS, CLUSTER, 0);
    m.set_roll(NS, CLUSTER, true, false);
    m.set_failure_domains(NS, CLUSTER, 1, 1);
    let big: Vec<String> = (0..3).map(|i| format!("big-mds-{i}")).collect();
    m.set_primary("prod", "big", Some("big-mds-2"), &big);
    m.set_etcd_members("prod", "big", 5, 5);
    m.set_available("prod", "big", true);
    m.set_reconcile_failures("prod", "big", 0);
    m.set_roll("prod", "big", false, false);
    m.set_failure_domains("prod", "big", 0, 1);
    m.error("apply");
    m.reconcile_finished(ReconcileResult::Error, Duration::from_millis(1200));
    m
}

/// The scrape configuration: the operator as the chart's ServiceMonitor scrapes it
/// (honor_labels), and each etcd member as the operator's PodMonitor labels it.
fn scrape_config(operator: SocketAddr, etcd: &EtcdCluster) -> String {
    let mut config = format!(
        "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n  evaluation_interval: 1s\n\
         scrape_configs:\n\
         - job_name: curve-operator-metrics\n  honor_labels: true\n  static_configs:\n\
         \x20 - targets: ['{operator}']\n    labels: {{namespace: {OPERATOR_NS}, \
         pod: curve-operator-7d9f-x2x4q, service: curve-operator-metrics, \
         endpoint: http-metrics}}\n\
         - job_name: {NS}/{CLUSTER}-etcd\n  static_configs:\n"
    );
    for (i, endpoint) in etcd.endpoints().iter().enumerate() {
        config.push_str(&format!(
            "  - targets: ['{endpoint}']\n    labels: {{namespace: {NS}, pod: {CLUSTER}-etcd-{i}, \
             container: etcd, endpoint: client, curve_cluster: {CLUSTER}, curve_component: etcd}}\n"
        ));
    }
    config
}

// ---------------------------------------------------------------------------------------------
// The check of one expression.

/// What a checked expression showed.
#[derive(Debug, PartialEq)]
enum Outcome {
    /// Over the operator's or etcd's metrics: it returned this many series.
    Data(usize),
    /// Over Curve daemons' metrics (none run here): it parses, and every name is listed.
    Parses,
}

struct Checker<'a> {
    prometheus: &'a Prometheus,
    /// Names Prometheus scraped from the operator and from etcd.
    operator_names: BTreeSet<String>,
    etcd_names: BTreeSet<String>,
}

impl Checker<'_> {
    /// Sends the expression (variables substituted) to Prometheus; `Err` says what is wrong.
    /// `used` collects the CURVE_METRICS patterns it uses.
    async fn check(
        &self,
        expr: &Expr,
        used: &mut BTreeSet<&'static str>,
    ) -> Result<Outcome, String> {
        let sent = substitute(expr);
        if let Some(left) = variables_in(&sent).first() {
            return Err(format!("${left} is not substituted: {sent}"));
        }
        let result = self
            .prometheus
            .query(&sent)
            .await
            .map_err(|e| format!("Prometheus refuses {sent}: {e}"))?;
        let found = selectors(&sent)?;
        if found.is_empty() {
            return Err(format!("selects no series: {sent}"));
        }
        let mut needs_data = true;
        for selector in &found {
            let pattern = selector
                .pattern()
                .ok_or_else(|| format!("a selector without a metric name in {sent}"))?;
            if pattern.starts_with("curve_operator_") {
                if !self.operator_names.contains(pattern) {
                    return Err(format!(
                        "{pattern} is not among the operator's metrics (scraped: {:?})",
                        self.operator_names
                    ));
                }
            } else if pattern == "up" {
                // Prometheus's own series per target: data only for the etcd targets here.
                needs_data &= selector.label("curve_component") == Some("etcd");
            } else if self.etcd_names.contains(pattern) {
                // etcd's own, scraped from the real etcd.
            } else if let Some(metric) = CURVE_METRICS.iter().find(|m| m.pattern == pattern) {
                used.insert(metric.pattern);
                needs_data = false;
            } else {
                return Err(format!(
                    "{pattern} is neither the operator's, nor served by etcd, nor in CURVE_METRICS: {sent}"
                ));
            }
        }
        if !needs_data {
            return Ok(Outcome::Parses);
        }
        if result.is_empty() {
            return Err(format!("returned no data: {sent}"));
        }
        if let Some(label) = &expr.label
            && let Some(bad) = result.iter().find(|r| r["metric"][label].is_null())
        {
            return Err(format!("a series without label {label}: {bad}"));
        }
        Ok(Outcome::Data(result.len()))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_dashboard_expression_runs_on_a_real_prometheus() {
    prometheus_binary();
    // The operator's /metrics, served by its own HTTP server.
    let metrics = Arc::new(running_cluster_metrics());
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let operator = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(serve(
        listener,
        metrics.clone(),
        Arc::new(Readiness::default()),
        async {
            stopped.await.ok();
        },
    ));
    // The operator keeps reconciling while Prometheus scrapes.
    let busy = {
        let metrics = metrics.clone();
        tokio::spawn(async move {
            loop {
                metrics.reconcile_finished(ReconcileResult::Success, Duration::from_millis(35));
                metrics.kube_request("patch", "curveclusters/status");
                metrics.kube_request("list", "pods");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        })
    };

    // A real etcd cluster, used as the MDS uses it: writes, a lease kept alive, a watch.
    let etcd = EtcdCluster::start(3).await;
    let mut client = etcd_client::Client::connect(etcd.endpoints(), None)
        .await
        .unwrap();
    let lease = client.lease_grant(30, None).await.unwrap().id();
    let (_keeper, _keep_alive) = client.lease_keep_alive(lease).await.unwrap();
    let _watch = client.watch("curve", None).await.unwrap();
    let writer = tokio::spawn(async move {
        for i in 0.. {
            let _ = client.put(format!("curve/{}", i % 50), "x", None).await;
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    });

    let prometheus = Prometheus::start(&scrape_config(operator, &etcd)).await;
    // Ready once every target was scraped a few times (rates need two samples).
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let scraped = prometheus
            .query("count_over_time(up[1m]) >= 5 and up == 1")
            .await
            .unwrap_or_default();
        if scraped.len() == 4 {
            break;
        }
        if Instant::now() > deadline {
            let targets = prometheus.api("/api/v1/targets").await;
            panic!(
                "targets not scraped in 90s: {scraped:?}\n{targets:?}\n{}",
                prometheus.log_tail()
            );
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    // A failover while Prometheus watches: demo-mds-2 becomes primary.
    let mds: Vec<String> = (0..3).map(|i| format!("{CLUSTER}-mds-{i}")).collect();
    metrics.set_primary(NS, CLUSTER, Some("demo-mds-2"), &mds);
    metrics.primary_changed(NS, CLUSTER);
    let deadline = Instant::now() + Duration::from_secs(30);
    while prometheus
        .query(r#"increase(curve_operator_mds_primary_changes_total{namespace="curve",name="demo"}[1m]) > 0"#)
        .await
        .unwrap_or_default()
        .is_empty()
    {
        assert!(Instant::now() < deadline, "the failover was not scraped");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let checker = Checker {
        prometheus: &prometheus,
        operator_names: prometheus.names(r#"{job="curve-operator-metrics"}"#).await,
        etcd_names: prometheus.names(r#"{curve_component="etcd"}"#).await,
    };
    assert!(
        checker.etcd_names.contains("etcd_server_has_leader"),
        "{:?}",
        checker.etcd_names
    );

    let mut used = BTreeSet::new();
    let mut failures = vec![];
    let mut counts: BTreeMap<String, (usize, usize, usize)> = BTreeMap::new();
    for dashboard in dashboards::all() {
        for expr in expressions(&dashboard.json) {
            let count = counts.entry(expr.dashboard.clone()).or_default();
            count.0 += 1;
            match checker.check(&expr, &mut used).await {
                Ok(Outcome::Data(_)) => count.1 += 1,
                Ok(Outcome::Parses) => count.2 += 1,
                Err(e) => failures.push(format!("{} / {}: {e}", expr.dashboard, expr.panel)),
            }
        }
    }
    let total: usize = counts.values().map(|c| c.0).sum();
    let with_data: usize = counts.values().map(|c| c.1).sum();
    for (dashboard, (all, data, parses)) in &counts {
        println!(
            "{dashboard}: {all} expressions, {data} returned data, {parses} parse only (Curve daemons' metrics)"
        );
    }
    println!("all dashboards: {total} expressions checked, {with_data} returned data");
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    let unused: Vec<&str> = CURVE_METRICS
        .iter()
        .map(|m| m.pattern)
        .filter(|p| !used.contains(p))
        .collect();
    assert!(
        unused.is_empty(),
        "CURVE_METRICS lists names no dashboard uses: {unused:?}"
    );
    // Every dashboard over the operator's or etcd's metrics shows data throughout.
    for uid in ["curve-overview", "curve-etcd"] {
        let (all, data, _) = counts[uid];
        assert_eq!(data, all, "{uid}: every expression returns data");
    }

    // What some panels show for this cluster.
    let value = |r: &Value| r["value"][1].as_str().unwrap().parse::<f64>().unwrap();
    let shown = |uid: &str, title: &str, i: usize| {
        let expr = dashboards::all()
            .into_iter()
            .flat_map(|d| expressions(&d.json))
            .filter(|e| e.dashboard == uid && e.panel == title)
            .nth(i)
            .unwrap_or_else(|| panic!("{uid} has no panel {title:?} with {} queries", i + 1));
        let sent = substitute(&expr);
        let prometheus = &prometheus;
        async move { prometheus.query(&sent).await.unwrap() }
    };
    let primary = shown("curve-overview", "MDS primary", 0).await;
    assert_eq!(primary.len(), 1, "{primary:?}");
    assert_eq!(primary[0]["metric"]["pod"], "demo-mds-2");
    assert!(value(&shown("curve-overview", "Primary changes (24h)", 0).await[0]) > 0.0);
    let not_ready: BTreeMap<String, f64> = shown("curve-overview", "Pods not ready", 0)
        .await
        .iter()
        .map(|r| {
            (
                r["metric"]["component"].as_str().unwrap().to_string(),
                value(r),
            )
        })
        .collect();
    assert_eq!(
        not_ready,
        BTreeMap::from([
            ("chunkserver".to_string(), 1.0),
            ("etcd".to_string(), 0.0),
            ("mds".to_string(), 0.0)
        ])
    );
    assert_eq!(
        value(&shown("curve-overview", "Available", 0).await[0]),
        1.0
    );
    assert_eq!(
        value(&shown("curve-etcd", "Members with a leader", 0).await[0]),
        3.0
    );
    assert_eq!(shown("curve-etcd", "Leader", 0).await.len(), 1);
    assert_eq!(
        shown("curve-etcd", "Proposals committed", 0).await.len(),
        3,
        "one series per member"
    );

    // The same checker reports broken expressions: a syntax error, a misspelled metric, the
    // operator's namespace label (what honor_labels keeps from overwriting), a Curve name not
    // in the list, a variable that is no variable.
    let mutant = |expr: &str, dashboard: &str| Expr {
        dashboard: dashboard.to_string(),
        panel: "mutant".to_string(),
        expr: expr.to_string(),
        label: None,
    };
    let mut sink = BTreeSet::new();
    for (expr, dashboard, reported) in [
        (
            r#"sum by (result) (rate(curve_operator_reconciles_total[$__rate_interval])"#,
            "curve-overview",
            "parse error",
        ),
        (
            r#"max(curve_operator_cluster_availble{namespace="$namespace",name="$cluster"})"#,
            "curve-overview",
            "not among the operator's metrics",
        ),
        (
            &format!(
                r#"max(curve_operator_cluster_available{{namespace="{OPERATOR_NS}",name="$cluster"}})"#
            ),
            "curve-overview",
            "returned no data",
        ),
        (
            r#"sum(etcd_server_has_leader{namespace="$namespace",curve_cluster="$cluster",curve_component="mds"})"#,
            "curve-etcd",
            "returned no data",
        ),
        (
            r#"max by (chunkserver_id) (label_replace({__name__=~"topology_metric_chunkserver_id_([0-9]+)_leader_num",namespace="$namespace"}, "chunkserver_id", "$1", "__name__", "topology_metric_chunkserver_id_([0-9]+)_leader_num"))"#,
            "curve-mds",
            "nor in CURVE_METRICS",
        ),
        (
            r#"sum(etcd_server_has_leader{namespace="$namespace",curve_cluster="$clutser"})"#,
            "curve-etcd",
            "not substituted",
        ),
    ] {
        match checker.check(&mutant(expr, dashboard), &mut sink).await {
            Err(e) => assert!(
                e.contains(reported),
                "{expr}: reported {e:?}, not {reported:?}"
            ),
            Ok(outcome) => panic!("{expr} passed the check ({outcome:?})"),
        }
    }
    // And a good one passes it.
    assert_eq!(
        checker
            .check(
                &mutant(
                    r#"max(curve_operator_cluster_available{namespace="$namespace",name="$cluster"})"#,
                    "curve-overview"
                ),
                &mut sink
            )
            .await,
        Ok(Outcome::Data(1))
    );

    writer.abort();
    busy.abort();
    drop(prometheus);
    stop.send(()).unwrap();
    server.await.unwrap().unwrap();
}
