//! The ChunkServer tier: one StatefulSet per disk slot, one pod per node in each.

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::{
    ConfigMap, ConfigMapVolumeSource, Container, EnvVar, PodSpec, Volume,
};

use super::Tier;
use super::common::{
    Budget, Daemon, Role, StatefulSetParts, config_map, disruption_budget, exec_probe,
    headless_service, jemalloc, mount, stateful_set, tcp_probe, volume_claim_template,
};
use super::config::{
    CHUNKSERVER_CONF, CS_CLIENT_CONF, CURVE_DELIMITER, DaemonAddresses, S3_CONF, chunkserver_conf,
    cs_client_conf, glog_args,
};
use super::start;
use super::topology::{TOPOLOGY_DIR, TOPOLOGY_VOLUME};
use crate::names::{
    Component, LABEL_DISK_SLOT, component_name, labels, selector_labels, slot_set_name,
};
use crate::validate::ValidatedCluster;

const DATA_VOLUME: &str = "data";
const DATA_DIR: &str = "/curvebs/chunkserver/data";
/// The chunk file pool's meta file: its presence means the disk was formatted and may hold data.
pub const CHUNK_FILE_POOL_META: &str = "/curvebs/chunkserver/data/chunkfilepool.meta";
const CHUNK_FILE_POOL_DIR: &str = "/curvebs/chunkserver/data/chunkfilepool";
/// Chunk size Curve's released images expect (16 MiB).
const CHUNK_FILE_SIZE: u64 = 16 * 1024 * 1024;
/// The meta page `curve_format` puts before each chunk (its `-metaPagSize` default, 4 KiB):
/// every file of the pool is `CHUNK_FILE_SIZE` + this.
const CHUNK_META_PAGE_SIZE: u64 = 4096;
/// The least free share beyond `100 - formatPercent`, in percent of the volume, that a start
/// adds to the pool: after a growth the free share is that plus up to 1 (whole chunks, and
/// `df` shares rounded down), which must not make every later start allocate again.
const MIN_GROWTH_PERCENT: i32 = 2;
/// Startup probe failures (every 10 s) before the kubelet restarts a ChunkServer whose port
/// never opened: an hour for the pool scan of a large volume on HDD.
const STARTUP_PROBE_FAILURES: i32 = 360;
/// Where a growth run of `curve_format` writes its meta file: never over the pool's own.
const GROWTH_META: &str = "/curvebs/chunkserver/data/chunkfilepool.growth.meta";

/// The port of the ChunkServer of `slot`.
pub fn slot_port(cluster: &ValidatedCluster, slot: i32) -> i32 {
    cluster.spec.chunkservers.port + slot
}

pub fn build(cluster: &ValidatedCluster, addresses: &DaemonAddresses) -> Tier {
    let component = Component::ChunkServer;
    let cs = &cluster.spec.chunkservers;
    let slots = 0..cs.disks_per_node;
    let service_ports: Vec<(String, i32)> = slots
        .clone()
        .map(|slot| (format!("slot-{slot}"), slot_port(cluster, slot)))
        .collect();
    let service_ports: Vec<(&str, i32)> = service_ports
        .iter()
        .map(|(name, port)| (name.as_str(), *port))
        .collect();
    let config = config_map(
        cluster,
        component,
        vec![
            (CHUNKSERVER_CONF.to_string(), chunkserver_conf(addresses)),
            (CS_CLIENT_CONF.to_string(), cs_client_conf(addresses)),
        ],
    );
    Tier {
        component,
        stateful_sets: slots
            .map(|slot| slot_stateful_set(cluster, slot, &config, addresses))
            .collect(),
        config_maps: vec![config],
        services: vec![headless_service(cluster, component, &service_ports)],
        budgets: vec![disruption_budget(
            cluster,
            component,
            Budget::MaxUnavailable(1),
        )],
    }
}

/// The daemon's command line. Curve's ChunkServer aborts unless every path flag is given here
/// (src/chunkserver/chunkserver.cpp, LoadConfigFromCmdline); the rest is curveadm's tuning.
fn chunkserver_args(port: i32) -> Vec<String> {
    [
        format!("-conf={}/{CHUNKSERVER_CONF}", Role::ChunkServer.conf_dir()),
        "-chunkServerIp=$(POD_IP)".to_string(),
        "-enableExternalServer=false".to_string(),
        "-chunkServerExternalIp=$(POD_IP)".to_string(),
        format!("-chunkServerPort={port}"),
        format!("-chunkServerStoreUri=local://{DATA_DIR}"),
        format!(
            "-chunkServerMetaUri=local://{}",
            start::CHUNKSERVER_META_FILE
        ),
        format!("-copySetUri=local://{DATA_DIR}/copysets"),
        format!("-raftSnapshotUri=curve://{DATA_DIR}/copysets"),
        format!("-raftLogUri=curve://{DATA_DIR}/copysets"),
        format!("-recycleUri=local://{DATA_DIR}/recycler"),
        format!("-chunkFilePoolDir={DATA_DIR}"),
        format!("-chunkFilePoolMetaPath={CHUNK_FILE_POOL_META}"),
        format!("-walFilePoolDir={DATA_DIR}"),
        format!("-walFilePoolMetaPath={DATA_DIR}/walfilepool.meta"),
        "-mdsListenAddr=$(MDS_ADDRESSES)".to_string(),
        // Durability, as curveadm sets it: fsync the raft log (braft's default, made explicit),
        // and also closed segments and the log/snapshot/raft meta (braft's default: not synced),
        // so an acknowledged write survives a power loss.
        "-raft_sync=true".to_string(),
        "-raft_sync_segments=true".to_string(),
        "-raft_sync_meta=true".to_string(),
        // fdatasync suffices for preallocated files and skips the metadata flush (braft's
        // default is fsync).
        "-raft_use_fsync_rather_than_fdatasync=false".to_string(),
        // 8 MiB raft log segments (braft's default, made explicit): the segment size of the WAL
        // file pool (walfilepool.segment_size) the segments are taken from.
        "-raft_max_segment_size=8388608".to_string(),
        // One snapshot install at a time per disk (braft allows 1000): recovery after a restart
        // must not starve client I/O.
        "-raft_max_install_snapshot_tasks_num=1".to_string(),
        // brpc worker threads, as curveadm and curve-ansible set for ChunkServers.
        "-bthread_concurrency=18".to_string(),
        "-graceful_quit_on_sigterm=true".to_string(),
    ]
    .into_iter()
    .chain(glog_args(Role::ChunkServer))
    .collect()
}

/// Pod template annotation holding the data volume size the ChunkServer starts with: a grown
/// volume changes the template, so the operator's safe roll restarts each ChunkServer, whose
/// format step adds the new space to its chunk file pool.
pub const DATA_VOLUME_SIZE_ANNOTATION: &str = "curve.opencurve.io/data-volume-size";

/// Shell script of the format init container.
///
/// A volume without the meta file is formatted: without it the ChunkServer never started on
/// this disk (it aborts), so a pool left by an interrupted format holds no data and is cleared
/// first. `curve_format` exits 0 WITHOUT writing the meta file when the volume has less free
/// space than it is asked to allocate (ext4 keeps 5% for root), so the script checks both
/// before and after, and says why it fails (the message reaches `ChunkServersReady`).
///
/// A formatted volume is never formatted again, but space added to it (volume expansion) is
/// appended to its pool. Curve v1.2.6's `curve_format` (src/tools/curve_format_main.cpp)
/// lists the pool and numbers new chunk files after the highest one, so existing files (free
/// ones; those in use were renamed out of the pool) are never touched; it allocates
/// `allocatePercent` of the volume's TOTAL size, and nothing when less than that share is free.
/// So the script asks for the free share beyond the `100 - formatPercent` the first format
/// leaves free (a first format leaves at most that: it takes `formatPercent` of a volume with at
/// most 100% free), i.e. only for space the volume gained, once that is at least
/// `MIN_GROWTH_PERCENT` of the volume. It writes the meta file of that run
/// to a scratch path, so the pool's own meta file is never rewritten. A growth interrupted
/// midway may leave a chunk file of the wrong size, on which the ChunkServer refuses to start
/// (file_pool.cpp, `ScanInternal`): such files hold nothing (a chunk in use is a full-size
/// file outside the pool) and are removed before the ChunkServer starts. The pool is read only
/// when the ChunkServer starts, which the roll of a new volume size brings.
///
/// A growth skips the zero-fill (`-needWriteZero=false`, curve_format_main.cpp:85-87,146-154):
/// zeroing every new file (16 MiB each, 10% of a 10 TiB volume is 64k files) runs before the
/// ChunkServer starts, and on HDD can outlast `mds.heartbeat.offlinetimeoutMs` (30 minutes,
/// conf/mds.conf:86), after which the MDS re-replicates everything the ChunkServer holds. The
/// files are still `fallocate`d to full size, whose unwritten extents read as zeros, so chunks
/// taken from them read the same; only the first write to each costs the extent conversion the
/// zero-fill would have paid up front. The first format, before any data, keeps Curve's fill.
///
/// `-blockSize` exists only from Curve v1.2.7 and v1.2.6 exits 1 on an unknown flag: `-undefok`
/// lets one command serve both, as curveadm does.
pub fn format_script(format_percent: i32) -> String {
    let keep_free = 100 - format_percent;
    let chunk_file_bytes = CHUNK_FILE_SIZE + CHUNK_META_PAGE_SIZE;
    let format = |percent: &str, meta: &str, write_zero: bool| {
        format!(
            "/curvebs/tools/sbin/curve_format -allocatePercent={percent} -fileSize={CHUNK_FILE_SIZE} \
             -filePoolDir={CHUNK_FILE_POOL_DIR} -filePoolMetaPath={meta} \
             -fileSystemPath={CHUNK_FILE_POOL_DIR} -needWriteZero={write_zero} -blockSize=4096 -undefok=blockSize"
        )
    };
    let free_share = format!(
        "free=$(df -P {CHUNK_FILE_POOL_DIR} | awk 'NR == 2 {{ print int($4 * 100 / $2) }}')"
    );
    format!(
        "set -e\n\
         if [ -f {CHUNK_FILE_POOL_META} ]; then\n  \
           echo 'chunk file pool present: not formatting'\n  \
           find {CHUNK_FILE_POOL_DIR} -maxdepth 1 -type f ! -size {chunk_file_bytes}c -print -delete\n  \
           {free_share}\n  \
           grow=$((free - {keep_free}))\n  \
           if [ \"$grow\" -ge {MIN_GROWTH_PERCENT} ]; then\n    \
             echo \"the data volume has $free% free, spec.chunkservers.formatPercent keeps {keep_free}%: adding $grow% of it to the chunk file pool\"\n    \
             {}\n    \
             rm -f {GROWTH_META}\n  \
           fi\n  \
           exit 0\n\
         fi\n\
         rm -rf {CHUNK_FILE_POOL_DIR}\n\
         mkdir -p {CHUNK_FILE_POOL_DIR}\n\
         {free_share}\n\
         if [ \"$free\" -lt {format_percent} ]; then\n  \
           echo \"cannot format: the data volume has $free% of its size free, spec.chunkservers.formatPercent asks for {format_percent}% (ext4 keeps 5% for root): lower formatPercent\" >&2; exit 1\n\
         fi\n\
         echo \"formatting {format_percent}% of the data volume ($free% free) into the chunk file pool\"\n\
         {}\n\
         if [ ! -f {CHUNK_FILE_POOL_META} ]; then\n  \
           echo \"curve_format wrote no {CHUNK_FILE_POOL_META}: the volume has less than {format_percent}% free, lower spec.chunkservers.formatPercent\" >&2; exit 1\n\
         fi\n",
        format("$grow", GROWTH_META, false),
        format(&format_percent.to_string(), CHUNK_FILE_POOL_META, true),
    )
}

fn format_container(cluster: &ValidatedCluster) -> Container {
    Container {
        name: "format".to_string(),
        image: Some(cluster.spec.image.clone()),
        image_pull_policy: Some(cluster.spec.image_pull_policy.as_str().to_string()),
        command: vec![
            "sh".to_string(),
            "-c".to_string(),
            format_script(cluster.spec.chunkservers.format_percent),
        ]
        .into(),
        volume_mounts: Some(vec![mount(DATA_VOLUME, DATA_DIR)]),
        // The script's last words (why formatting failed) become the status message.
        termination_message_policy: Some("FallbackToLogsOnError".to_string()),
        ..Container::default()
    }
}

/// Shell script holding the daemon back until the physical pool lists this pod's IP: a
/// ChunkServer cannot register before (Curve answers kTopoErrCodeServerNotFound).
pub fn wait_for_pool_script() -> String {
    format!(
        "until grep -qx \"$POD_IP\" {TOPOLOGY_DIR}/{} 2>/dev/null; do\n  \
         echo \"waiting until the physical pool lists $POD_IP\"; sleep 5\n\
         done\n",
        super::topology::PHYSICAL_POOL_SERVERS
    )
}

fn wait_for_pool_container(cluster: &ValidatedCluster) -> Container {
    Container {
        name: "wait-for-pool".to_string(),
        image: Some(cluster.spec.image.clone()),
        image_pull_policy: Some(cluster.spec.image_pull_policy.as_str().to_string()),
        command: vec!["sh".to_string(), "-c".to_string(), wait_for_pool_script()].into(),
        env: Some(super::common::pod_env()),
        volume_mounts: Some(vec![mount(TOPOLOGY_VOLUME, TOPOLOGY_DIR)]),
        ..Container::default()
    }
}

fn slot_selector(cluster: &ValidatedCluster, slot: i32) -> BTreeMap<String, String> {
    let mut selector = selector_labels(&cluster.name, Component::ChunkServer);
    selector.insert(LABEL_DISK_SLOT.to_string(), slot.to_string());
    selector
}

fn with_topology_volume(cluster: &ValidatedCluster, mut pod: PodSpec) -> PodSpec {
    pod.volumes.get_or_insert_with(Vec::new).push(Volume {
        name: TOPOLOGY_VOLUME.to_string(),
        config_map: Some(ConfigMapVolumeSource {
            name: component_name(&cluster.name, Component::Topology),
            ..ConfigMapVolumeSource::default()
        }),
        ..Volume::default()
    });
    pod
}

fn slot_stateful_set(
    cluster: &ValidatedCluster,
    slot: i32,
    config: &ConfigMap,
    addresses: &DaemonAddresses,
) -> StatefulSet {
    let cs = &cluster.spec.chunkservers;
    let port = slot_port(cluster, slot);
    let name = slot_set_name(&cluster.name, slot);
    let selector = slot_selector(cluster, slot);
    let mut set_labels = labels(&cluster.name, Component::ChunkServer);
    set_labels.insert(LABEL_DISK_SLOT.to_string(), slot.to_string());
    let daemon = Daemon {
        role: Role::ChunkServer,
        args: chunkserver_args(port),
        ports: vec![("listen", port)],
        // Ready once its copysets are loaded, not when its port opens: the disruption budget
        // then keeps a drain from taking the next ChunkServer while this one still loads.
        readiness: exec_probe(&start::chunkserver_ready_script(), 5, 10, 3),
        // The port opens only after the chunk file pool was scanned (chunkserver.cpp:143
        // initializes the pool, :360 starts the server), a file at a time: up to an hour on
        // slow disks before liveness may judge.
        startup: Some(tcp_probe(port, 10, 10, STARTUP_PROBE_FAILURES)),
        liveness: tcp_probe(port, 0, 10, 6),
        start_script: Some(start::chunkserver_start_script(
            &Role::ChunkServer.log_dir(),
        )),
        resources: cs.resources.clone(),
        config_files: vec![
            (CHUNKSERVER_CONF, CURVE_DELIMITER),
            (CS_CLIENT_CONF, CURVE_DELIMITER),
            (S3_CONF, CURVE_DELIMITER),
        ],
        root_password: true,
        data_volume: Some(DATA_VOLUME),
        extra_env: vec![
            EnvVar {
                name: "CURVE_PORT".to_string(),
                value: Some(port.to_string()),
                ..EnvVar::default()
            },
            EnvVar {
                name: "MDS_ADDRESSES".to_string(),
                value: Some(addresses.mds.join(",")),
                ..EnvVar::default()
            },
            jemalloc(),
        ],
    };
    let config_map_name = component_name(&cluster.name, Component::ChunkServer);
    let mut set = stateful_set(
        cluster,
        StatefulSetParts {
            name,
            labels: set_labels.clone(),
            pod_spec: with_topology_volume(
                cluster,
                daemon.pod_spec(
                    cluster,
                    &selector,
                    vec![format_container(cluster), wait_for_pool_container(cluster)],
                    &config_map_name,
                ),
            ),
            selector,
            replicas: cs.replicas,
            service_name: config_map_name,
            volume_claims: vec![volume_claim_template(DATA_VOLUME, &cs.storage, set_labels)],
            pod_management_policy: "Parallel",
            config,
        },
    );
    let template = set.spec.as_mut().and_then(|s| s.template.metadata.as_mut());
    if let Some(meta) = template {
        (meta.annotations.get_or_insert_with(Default::default)).insert(
            DATA_VOLUME_SIZE_ANNOTATION.to_string(),
            cs.storage.size.clone(),
        );
    }
    set
}
