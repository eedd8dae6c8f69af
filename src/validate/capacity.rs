//! How full the MDS may let the pool get, and what that leaves for volumes (issue 28, item 3).
//!
//! The MDS allocates segments while `alloc × replicas` stays under
//! `mds.topology.PoolUsagePercentLimit` percent of the physical pool's capacity
//! (TopologyChunkAllocator, src/mds/topology/topology_chunk_allocator.cpp:171-185), the capacity
//! being the sum of every ChunkServer's file-system size (`statfs` f_blocks, heartbeat.cpp:
//! 257-265; ext4_filesystem_impl.cpp:133). A ChunkServer, though, can only write what its chunk
//! file pool holds: `curve_format` put `formatPercent` of the same size into it, in files of
//! 16 MiB + a 4 KiB meta page (curve_format_main.cpp:220-224), and raft log segments are taken
//! from that pool too (`walfilepool.use_chunk_file_pool=true`, conf/chunkserver.conf:197). When
//! the pool is empty a write fails (FilePool::GetFile, "no avaliable chunk",
//! file_pool.cpp:255-258) and the ChunkServer stops, again at every log replay. So the MDS
//! must stop allocating before any pool runs dry: its limit is rendered from `formatPercent`,
//! less what the raft logs hold, never above Curve's own 85.
//!
//! Every zone holds one copy of everything (zone count = copies), so the limit holds only when
//! zones are of equal size; validation refuses server counts that cannot make them equal.

use crate::api::{ChunkServerSpec, EtcdSpec};

// The chunk file pool's sizes and the raft logs' share live beside the CRD's rule that
// repeats this module's arithmetic (api::rules::pool_room).
pub use crate::api::rules::{
    CHUNK_BYTES, FORMAT_ROUNDING_FILES, FS_OVERHEAD_PERCENT, MIN_CHUNKSERVER_VOLUME_BYTES,
    POOL_FILE_BYTES, RAFT_LOG_MARGIN_PERCENT, WAL_FILES_PER_COPYSET,
};
pub use crate::api::rules::{ETCD_MAX_QUOTA_BYTES, ETCD_WAL_ROOM_BYTES};

/// The largest etcd quota a volume of `volume_bytes` holds: half of what the WAL and snapshots
/// leave ([`crate::api::rules::etcd_quota_room`] says why half), at most etcd's 8 GiB; 0 when
/// the volume leaves nothing.
pub fn etcd_quota_limit_bytes(volume_bytes: f64) -> u64 {
    let half = ((volume_bytes - ETCD_WAL_ROOM_BYTES as f64) / 2.0).max(0.0) as u64;
    half.min(ETCD_MAX_QUOTA_BYTES)
}

/// etcd's `quota-backend-bytes` for this spec: `quotaBackendBytes`, or unset the largest the
/// volume holds, rounded down to a MiB. `None` when a size does not parse (validation refuses
/// it).
pub fn etcd_quota_bytes(etcd: &EtcdSpec) -> Option<u64> {
    match &etcd.quota_backend_bytes {
        Some(quota) => crate::validate::parse_quantity(quota).map(|q| q as u64),
        None => {
            let volume = crate::validate::parse_quantity(&etcd.storage.size)?;
            Some(etcd_quota_limit_bytes(volume) / (1 << 20) * (1 << 20))
        }
    }
}

/// Curve's default `mds.topology.PoolUsagePercentLimit` (conf/mds.conf:139): never exceeded.
pub const CURVE_POOL_USAGE_PERCENT_LIMIT: i32 = 85;

/// `mds.topology.PoolUsagePercentLimit` for ChunkServers with `volume_bytes` volumes: the
/// share of the pool the chunk file pools can hold in data chunks, less at least two raft log
/// files per copyset, the files curve_format may leave out ([`FORMAT_ROUNDING_FILES`]) and
/// [`RAFT_LOG_MARGIN_PERCENT`], at most Curve's 85. Shares are of the file system, which both
/// curve_format and the MDS measure (`statfs` f_blocks), taken as `100 −`
/// [`FS_OVERHEAD_PERCENT`] percent of the volume. Below 1 the MDS would allocate nothing:
/// validation refuses such a spec.
pub fn pool_usage_limit_percent(cs: &ChunkServerSpec, volume_bytes: u64) -> i32 {
    if volume_bytes == 0 {
        return 0;
    }
    // Percent of the volume, in hundredths, to stay in integers.
    let chunk_share = chunk_share_hundredths(cs.format_percent);
    // Of the file system, which is what curve_format and the MDS see.
    let wal_share = (reserved_bytes(cs.copysets) as u128 * 1_000_000)
        .div_ceil(volume_bytes as u128 * FS_FILE_SYSTEM_PERCENT);
    let margin = RAFT_LOG_MARGIN_PERCENT as u128 * 100;
    let limit = (chunk_share as u128).saturating_sub(wal_share + margin) / 100;
    (limit.min(CURVE_POOL_USAGE_PERCENT_LIMIT as u128)) as i32
}

/// The smallest volume, in bytes, for which [`pool_usage_limit_percent`] is at least 1 with
/// this `formatPercent` and `copysets`; `None` when no volume is large enough (the pool's share
/// is all overhead). The same arithmetic in integers, solved for the volume: the limit is at
/// least 1 exactly when `chunk share − 400 ≥ ⌈reserved bytes × 10⁶ / (volume × 95)⌉`
/// (hundredths of a percent of the file system, 95 % of the volume), i.e. when
/// `volume ≥ ⌈reserved bytes × 10⁶ / ((chunk share − 400) × 95)⌉`.
pub fn min_pool_volume_bytes(format_percent: i32, copysets: i32) -> Option<u64> {
    let room = chunk_share_hundredths(format_percent) as i64 - MIN_SHARE_HUNDREDTHS;
    let reserved = reserved_bytes(copysets) as u128 * 1_000_000;
    (room >= 1).then(|| reserved.div_ceil(room as u128 * FS_FILE_SYSTEM_PERCENT) as u64)
}

/// The smallest ChunkServer volume for this `formatPercent` and `copysets`: the larger of
/// [`min_pool_volume_bytes`] and [`MIN_CHUNKSERVER_VOLUME_BYTES`] (below which ext4 keeps more
/// than [`FS_OVERHEAD_PERCENT`] for itself). The CRD's CEL rule (`api::rules::pool_room`)
/// computes exactly this.
pub fn min_volume_bytes(format_percent: i32, copysets: i32) -> Option<u64> {
    min_pool_volume_bytes(format_percent, copysets).map(|min| min.max(MIN_CHUNKSERVER_VOLUME_BYTES))
}

/// The file system's share of the volume, in percent, as the pool's arithmetic takes it.
const FS_FILE_SYSTEM_PERCENT: u128 = 100 - FS_OVERHEAD_PERCENT as u128;

/// `formatPercent × 16 MiB / (16 MiB + 4 KiB)` in hundredths of a percent, rounded down: the
/// share of the volume the chunk file pool holds in data chunks.
pub fn chunk_share_hundredths(format_percent: i32) -> u64 {
    format_percent.max(0) as u64 * 100 * CHUNK_BYTES / POOL_FILE_BYTES
}

/// Bytes of the pool that never hold data: the raft log segment files the copysets take from
/// it, and the files curve_format may leave out.
fn reserved_bytes(copysets: i32) -> u64 {
    (copysets.max(0) as u64 * WAL_FILES_PER_COPYSET + FORMAT_ROUNDING_FILES) * POOL_FILE_BYTES
}

const MIN_SHARE_HUNDREDTHS: i64 = crate::api::rules::MIN_POOL_SHARE_HUNDREDTHS;

/// `mds.topology.PoolUsagePercentLimit` of a cluster: [`pool_usage_limit_percent`] scaled
/// down for uneven zones. Every zone holds one copy of everything, so when `servers` do not
/// divide into `zones` the smallest zone (the operator fills the least populated zone first:
/// `servers / zones` servers, rounded down) takes as much data as the others on fewer disks;
/// the MDS counts every zone's capacity, so its limit is multiplied by
/// `zones × smallest / servers` (4 servers in 3 zones: 3/4) to stop when the smallest zone's
/// ChunkServers reach the pool limit. Zones taken from node labels can be more uneven than
/// that: `desired::topology::uneven_zones` says so.
pub fn cluster_pool_usage_limit_percent(spec: &crate::api::CurveClusterSpec) -> i32 {
    let cs = &spec.chunkservers;
    let Some(volume) = volume_bytes(cs) else {
        return CURVE_POOL_USAGE_PERCENT_LIMIT;
    };
    let limit = pool_usage_limit_percent(cs, volume);
    let (servers, zones) = (
        cs.replicas.max(1),
        spec.logical_pool.zones.clamp(1, cs.replicas.max(1)),
    );
    limit * zones * (servers / zones) / servers
}

/// The data volume size of `cs` in bytes, when its quantity reads.
pub fn volume_bytes(cs: &ChunkServerSpec) -> Option<u64> {
    super::parse_quantity(&cs.storage.size)
        .filter(|bytes| *bytes > 0.0)
        .map(|bytes| bytes as u64)
}

/// What a cluster of this spec can give to volumes, in bytes: what the MDS allocates before it
/// stops (the limit of every ChunkServer's volume), divided by the copies. The file systems
/// are a little smaller than their volumes (ext4 keeps its metadata), so this is an upper
/// bound, a few percent high. For the status.
pub fn usable_capacity_bytes(spec: &crate::api::CurveClusterSpec) -> Option<u64> {
    let cs = &spec.chunkservers;
    let volume = volume_bytes(cs)?;
    let chunkservers = u64::try_from(cs.replicas.max(0) * cs.disks_per_node.max(0)).ok()?;
    let limit = cluster_pool_usage_limit_percent(spec).max(0) as u128;
    let replicas = spec.logical_pool.replicas.max(1) as u128;
    let raw = volume as u128 * chunkservers as u128;
    u64::try_from(raw * limit / 100 / replicas).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::{ChunkServerUpdatePolicy, StorageSpec};

    const GIB: u64 = 1024 * 1024 * 1024;
    /// The smallest volume for 100 copysets at 90 %: ⌈202 × (16 MiB + 4 KiB) × 10⁶ / (8597 × 95)⌉.
    const MIN_90_100: u64 = 4_150_560_507;

    fn spec(format_percent: i32, copysets: i32) -> ChunkServerSpec {
        ChunkServerSpec {
            replicas: 3,
            disks_per_node: 1,
            port: 8200,
            storage: StorageSpec {
                size: "100Gi".into(),
                storage_class_name: None,
            },
            copysets,
            format_percent,
            resources: None,
            update_policy: ChunkServerUpdatePolicy::default(),
        }
    }

    #[test]
    fn the_limit_follows_format_percent_less_the_raft_logs() {
        // 2 TiB, 100 copysets: 79.98% in chunks, less 0.16% in segments and the 3% margin.
        assert_eq!(pool_usage_limit_percent(&spec(80, 100), 2048 * GIB), 76);
        assert_eq!(pool_usage_limit_percent(&spec(88, 100), 2048 * GIB), 84);
        // 86.81%: Curve's 85 stays.
        assert_eq!(pool_usage_limit_percent(&spec(90, 100), 2048 * GIB), 85);
        // 100 GiB, 100 copysets: 200 segment files are 3.13% of the volume.
        assert_eq!(pool_usage_limit_percent(&spec(90, 100), 100 * GIB), 83);
        // Never above Curve's own 85, whatever the pool holds.
        assert_eq!(pool_usage_limit_percent(&spec(99, 1), 2048 * GIB), 85);
        // Nothing left: the raft logs alone fill the pool.
        assert_eq!(pool_usage_limit_percent(&spec(5, 100), 10 * GIB), 0);
        assert_eq!(pool_usage_limit_percent(&spec(90, 100), 0), 0);
    }

    #[test]
    fn the_limit_never_exceeds_what_the_pool_holds() {
        for format_percent in 1..=99 {
            for (copysets, gib) in [(1, 10), (100, 100), (100, 2048), (10000, 4096), (100, 4)] {
                let volume = gib * GIB;
                let limit = pool_usage_limit_percent(&spec(format_percent, copysets), volume);
                if limit < 1 {
                    // Refused by validation: nothing would be allocated.
                    continue;
                }
                // What curve_format makes on a file system 5 % smaller than the volume: the
                // share, rounded down, in two halves rounded down; the MDS's capacity is the
                // same file system.
                let fs = volume as u128 * (100 - FS_OVERHEAD_PERCENT as u128) / 100;
                let files = fs * format_percent as u128 / 100 / POOL_FILE_BYTES as u128;
                let pool = files / 2 * 2;
                let data = fs * limit.max(0) as u128 / 100 / CHUNK_BYTES as u128;
                let wal = copysets as u128 * WAL_FILES_PER_COPYSET as u128;
                assert!(
                    data + wal <= pool,
                    "{format_percent}%, {copysets} copysets, {gib} GiB: {data} chunks + {wal} segments > {pool} pool files"
                );
            }
        }
    }

    #[test]
    fn the_smallest_volume_is_where_the_limit_reaches_one_percent() {
        for format_percent in [5, 6, 20, 50, 90, 99] {
            for copysets in [1, 7, 100, 300, 10000] {
                let min = min_pool_volume_bytes(format_percent, copysets).unwrap();
                let cs = spec(format_percent, copysets);
                assert!(
                    pool_usage_limit_percent(&cs, min) >= 1,
                    "{format_percent}% {copysets}"
                );
                assert_eq!(
                    pool_usage_limit_percent(&cs, min - 1),
                    0,
                    "{format_percent}% {copysets}"
                );
                assert_eq!(
                    min_volume_bytes(format_percent, copysets),
                    Some(min.max(GIB)),
                    "never below 1 GiB"
                );
            }
        }
        // 100 copysets at 90 %: 3.87 GiB.
        assert_eq!(min_volume_bytes(90, 100), Some(MIN_90_100));
        // One copyset: the 1 GiB floor.
        assert_eq!(min_volume_bytes(90, 1), Some(GIB));
    }

    #[test]
    fn below_the_schemas_minimum_format_percent_no_volume_holds_data() {
        let min = crate::api::rules::FORMAT_PERCENT.min;
        assert_eq!(min_volume_bytes(min - 1, 1), None);
        assert!(min_volume_bytes(min, 1).is_some());
        assert_eq!(
            pool_usage_limit_percent(&spec(min - 1, 1), u64::MAX / 2),
            0,
            "not even an endless volume"
        );
    }

    #[test]
    fn usable_capacity_is_the_limit_of_every_volume_over_the_copies() {
        let mut cluster: crate::api::CurveClusterSpec = serde_json::from_value(serde_json::json!({
            "image": "opencurvedocker/curvebs:v1.2.6",
            "chunkservers": {"replicas": 3, "storage": {"size": "100Gi"}}
        }))
        .unwrap();
        // 3 × 100 GiB × 83% / 3 copies.
        assert_eq!(usable_capacity_bytes(&cluster), Some(100 * GIB * 83 / 100));
        cluster.chunkservers.disks_per_node = 2;
        assert_eq!(usable_capacity_bytes(&cluster), Some(200 * GIB * 83 / 100));
        // 4 servers in 3 zones: the single-server zones fill at 3/4 of the even limit.
        cluster.chunkservers.disks_per_node = 1;
        cluster.chunkservers.replicas = 4;
        assert_eq!(cluster_pool_usage_limit_percent(&cluster), 83 * 3 / 4);
        assert_eq!(
            usable_capacity_bytes(&cluster),
            Some(400 * GIB * 62 / 100 / 3)
        );
        cluster.chunkservers.replicas = 6;
        assert_eq!(cluster_pool_usage_limit_percent(&cluster), 83);
        cluster.chunkservers.storage.size = "x".into();
        assert_eq!(usable_capacity_bytes(&cluster), None);
    }
}
