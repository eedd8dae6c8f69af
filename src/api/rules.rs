//! The CEL rules and hand-written schemas the CRD carries beyond what the derives generate.
//!
//! Each rule mirrors one check of `crate::validate` (which refuses the same values with the same
//! reasons, so `render` and the operator agree with the API server). The regular expressions are
//! the Kubernetes grammars of `crate::validate::k8s`, written for RE2 (the API server's regexp
//! engine) without backslashes. Strings a rule reads get a `maxLength` and maps and lists a
//! `maxProperties` / `maxItems`, so the API server's static cost estimate of every rule stays
//! within its budget.

use kube::core::{Message, Rule};
use schemars::{Schema, SchemaGenerator, json_schema};

/// A label key (IsQualifiedName) without the prefix's length limit: an optional DNS-1123
/// subdomain and '/', then a name of 1-63 `[-A-Za-z0-9_.]` starting and ending alphanumeric.
pub const LABEL_KEY_RE: &str = "^([a-z0-9]([-a-z0-9]*[a-z0-9])?([.][a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$";
/// A label key's prefix is at most 253 characters.
pub const LABEL_KEY_PREFIX_RE: &str = "^([^/]{1,253}/)?[^/]*$";
/// A label value (IsValidLabelValue): empty or 1-63 `[-A-Za-z0-9_.]` starting and ending
/// alphanumeric.
pub const LABEL_VALUE_RE: &str = "^(([A-Za-z0-9][-A-Za-z0-9_.]{0,61})?[A-Za-z0-9])?$";
/// A DNS-1123 subdomain without the length limit (a `maxLength` of 253 goes with it).
pub const SUBDOMAIN_RE: &str = "^[a-z0-9]([-a-z0-9]*[a-z0-9])?([.][a-z0-9]([-a-z0-9]*[a-z0-9])?)*$";
/// A DNS-1035 label without the length limit.
pub const DNS1035_RE: &str = "^[a-z]([-a-z0-9]*[a-z0-9])?$";
/// A Curve pool name as the operator admits it (see `validate::check_pool_name`).
pub const POOL_NAME_RE: &str = "^[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$";
/// The registry of an image reference: a host name or a bracketed IPv6 address, and a port.
macro_rules! image_registry_re {
    () => {
        "([a-zA-Z0-9]([a-zA-Z0-9-]*[a-zA-Z0-9])?([.][a-zA-Z0-9]([a-zA-Z0-9-]*[a-zA-Z0-9])?)*|\\\\[[0-9a-fA-F:]+\\\\])(:[0-9]+)?"
    };
}

/// An image reference (distribution/reference): `[registry[:port]/]path[:tag][@digest]`. The
/// registry is a host name or a bracketed IPv6 address (RE2 `\[`, written `\\[` in CEL).
pub const IMAGE_RE: &str = concat!(
    "^(",
    image_registry_re!(),
    "/)?",
    "[a-z0-9]+((__|[._]|-+)[a-z0-9]+)*(/[a-z0-9]+((__|[._]|-+)[a-z0-9]+)*)*",
    "(:[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})?",
    "(@[A-Za-z][A-Za-z0-9]*([-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,})?$"
);

/// A non-negative Kubernetes quantity (resource.ParseQuantity without a minus sign): a number,
/// then a binary or decimal SI suffix or a decimal exponent (an integer: `1e3`, not `1e1.5`).
pub const QUANTITY_RE: &str =
    "^[+]?([0-9]+([.][0-9]*)?|[.][0-9]+)([KMGTPE]i|[numkMGTPE]|[eE][+-]?[0-9]+)?$";

/// A Prometheus duration of at least one second (the Prometheus Operator's `Duration`
/// pattern, without `0` and milliseconds: a scrape interval below a second is a mistake).
pub const PROMETHEUS_DURATION_RE: &str =
    "^(([0-9]+)y)?(([0-9]+)w)?(([0-9]+)d)?(([0-9]+)h)?(([0-9]+)m)?(([0-9]+)s)?$";

/// Longest label key: a 253-character prefix, '/', a 63-character name.
pub const LABEL_KEY_MAX: usize = 317;

// Bounds the CRD sets where Kubernetes sets none, so the static cost of every rule that reads the
// value stays within the API server's budget; the operator's validation applies the same bounds.

/// Most image pull Secrets.
pub const MAX_PULL_SECRETS: usize = 16;
/// Most node selector entries.
pub const MAX_NODE_SELECTOR: usize = 64;
/// Most tolerations.
pub const MAX_TOLERATIONS: usize = 64;
/// Most entries in a component's resource `limits` or `requests`.
pub const MAX_RESOURCE_ENTRIES: usize = 6;
/// Longest quantity string.
pub const MAX_QUANTITY_LEN: usize = 64;
/// Longest image reference (the grammar limits the repository name to 255).
pub const MAX_IMAGE_LEN: usize = 1024;
/// Longest Curve pool name.
pub const MAX_POOL_NAME_LEN: usize = 63;
/// Longest node directory the operator mounts.
pub const MAX_HOST_PATH_LEN: usize = 255;

/// A node directory: absolute, below `/`, of plain path segments (no spaces or shell
/// characters, since the path is shown in commands and logs).
pub const HOST_DIR_RE: &str = "^(/[A-Za-z0-9._-]+)+$";
/// A `.` or `..` segment, which would make the directory another than the one written.
pub const HOST_DIR_DOT_SEGMENT_RE: &str = "(^|/)[.][.]?(/|$)";
/// What a node directory must be.
pub const HOST_DIR_TEXT: &str = "spec.coreDumps.hostPath must be an absolute directory other than /, of segments of letters, digits, dots, dashes and underscores, without . or .. segments";

// The chunk file pool's arithmetic (validate::capacity), which `pool_room` repeats in CEL.

/// Bytes of one chunk (the image's `chunkfilepool` chunk size, 16 MiB).
pub const CHUNK_BYTES: u64 = 16 * 1024 * 1024;
/// Bytes of one file of the chunk file pool: a chunk and its 4 KiB meta page.
pub const POOL_FILE_BYTES: u64 = CHUNK_BYTES + 4096;
/// Raft log segment files each copyset holds at least (the open one and the one being closed),
/// each a pool file when WAL and chunks share the pool (`walfilepool.use_chunk_file_pool=true`,
/// conf/chunkserver.conf:197).
pub const WAL_FILES_PER_COPYSET: u64 = 2;
/// Pool files `curve_format` may make fewer than the share it is given: it rounds the count
/// down (C:src/tools/curve_format_main.cpp:220-224) and splits it between two threads that
/// each make half of it rounded down (:231-238), so an odd count loses one more.
pub const FORMAT_ROUNDING_FILES: u64 = 2;
/// The most of a volume its file system keeps for itself, in percent. curve_format sizes the
/// pool from what `statfs` says the file system holds (`f_blocks`, C:src/fs/
/// ext4_filesystem_impl.cpp:133; curve_format_main.cpp:203-220), not from the volume. ext4
/// with mke2fs's defaults keeps in its own metadata (journal, inode tables; dumpe2fs's
/// "Overhead clusters", e2fsprogs 1.47) 4.9 % of a 1 GiB volume, 3.6 % of 3.8 GiB, 2.1 % of
/// 100 GiB, but 18 % of 40 MiB (1 KiB blocks): hence also [`MIN_CHUNKSERVER_VOLUME_BYTES`].
pub const FS_OVERHEAD_PERCENT: u64 = 5;
/// The smallest ChunkServer volume: below 1 GiB ext4 keeps more than [`FS_OVERHEAD_PERCENT`].
pub const MIN_CHUNKSERVER_VOLUME_BYTES: u64 = 1 << 30;
/// Share of the volume kept for the raft log written between two raft snapshots
/// (`copyset.snapshot_interval_s=1800`, conf/chunkserver.conf:70) and for copysets spread
/// unevenly over the ChunkServers of a zone (the MDS balances copyset counts, not bytes).
pub const RAFT_LOG_MARGIN_PERCENT: i32 = 3;
/// What the chunk share must exceed the raft logs' share by, in hundredths of a percent, for an
/// MDS limit of at least 1 %: the margin and that 1 %.
pub const MIN_POOL_SHARE_HUNDREDTHS: i64 = (RAFT_LOG_MARGIN_PERCENT as i64 + 1) * 100;

// etcd's space (validate::capacity::etcd_quota_bytes), which `etcd_quota_room` repeats in CEL.

/// etcd's `MaxQuotaBytes`, the largest `quota-backend-bytes` etcd suggests ("a larger quota may
/// lead to degraded performance", etcd v3.4 etcdserver/quota.go): also the default.
pub const ETCD_MAX_QUOTA_BYTES: u64 = 8 << 30;
/// etcd's WAL segment, preallocated whole when created: 64 MB (decimal), etcd v3.4.10 (the
/// image's) wal/wal.go:55 `SegmentSizeBytes = 64 * 1000 * 1000`, :149 `fileutil.Preallocate`.
pub const ETCD_WAL_SEGMENT_BYTES: u64 = 64_000_000;
/// WAL segments on a member's volume at most: the image's `max-wals: 5` kept (conf/etcd.conf:32),
/// the one being written, and the next one etcd's file pipeline preallocates beside it
/// (wal/file_pipeline.go:73-77, `<n>.tmp`). A segment is purged only once a snapshot passed it:
/// `snapshot-count: 10000` entries (conf/etcd.conf:13) keep that within a segment or two.
pub const ETCD_WAL_SEGMENTS: u64 = 5 + 1 + 1;
/// bbolt grows a database file 16 MiB beyond its last page (bbolt v1.3.3 db.go:951-977,
/// `DefaultAllocSize`; etcd maps 10 GiB from the start, mvcc/backend/backend.go:43, so every
/// growth takes this step): the database and the copy a defragmentation writes each may hold
/// that much more than the quota counts.
pub const ETCD_DB_GROWTH_BYTES: u64 = 16 << 20;
/// Room on an etcd volume beside its database: the WAL segments (448 MB), the two databases'
/// growth steps (32 MiB) and the `max-snapshots: 5` `.snap` files of the v2 store (conf/etcd.conf:29;
/// the membership only, kilobytes) fit in 512 MiB, 55 MB to spare.
pub const ETCD_WAL_ROOM_BYTES: u64 = 512 << 20;
const _: () = assert!(
    ETCD_WAL_SEGMENTS * ETCD_WAL_SEGMENT_BYTES + 2 * ETCD_DB_GROWTH_BYTES <= ETCD_WAL_ROOM_BYTES
);
/// Free pages worth a defragmentation (`reconcile::etcd_space` defragments a member past it).
pub const ETCD_DEFRAGMENT_FREE_BYTES: u64 = 64 << 20;
/// The smallest `quota-backend-bytes`: a database of less fills with the free pages of
/// compacted revisions (and raises NOSPACE) before a defragmentation is worth it: that many
/// free pages and as much again for live data.
pub const ETCD_MIN_QUOTA_BYTES: u64 = 2 * ETCD_DEFRAGMENT_FREE_BYTES;
/// The smallest etcd volume: the room beside the database, and the smallest quota twice (the
/// database and, at times, a second copy: [`etcd_quota_room`]): 768 MiB.
pub const ETCD_MIN_VOLUME_BYTES: u64 = ETCD_WAL_ROOM_BYTES + 2 * ETCD_MIN_QUOTA_BYTES;

/// Inclusive bounds of an integer field: the schema's `minimum` and `maximum`, and the range
/// `validate` checks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Bounds {
    pub min: i32,
    pub max: i32,
}

/// `spec.etcd.backup.s3.endpoint`: `http(s)://host[:port]`, the host a DNS name or an IPv4
/// address (path-style addressing: the bucket goes in the path, not in the host).
pub const S3_ENDPOINT_RE: &str = "^https?://[A-Za-z0-9]([-A-Za-z0-9]*[A-Za-z0-9])?([.][A-Za-z0-9]([-A-Za-z0-9]*[A-Za-z0-9])?)*(:[0-9]{1,5})?/?$";
pub const S3_ENDPOINT_MAX_LEN: usize = 512;
pub const S3_ENDPOINT_TEXT: &str = "spec.etcd.backup.s3.endpoint must be the URL of the S3 API, http(s)://host[:port], the host a DNS name or IPv4 address, without a path";
/// S3's bucket naming rules (general purpose buckets): 3-63 lower-case letters, digits, dots and
/// dashes, starting and ending with a letter or digit.
pub const S3_BUCKET_RE: &str = "^[a-z0-9][-a-z0-9.]{1,61}[a-z0-9]$";
pub const S3_BUCKET_MAX_LEN: usize = 63;
pub const S3_BUCKET_TEXT: &str = "spec.etcd.backup.s3.bucket must be an S3 bucket name: 3-63 lower-case letters, digits, dots and dashes, starting and ending with a letter or digit";
/// `spec.etcd.backup.s3.prefix`: empty, or segments of S3's safe characters each ending with
/// `/`; no `.` or `..` segment (servers such as MinIO refuse those keys).
pub const S3_PREFIX_RE: &str = "^([-A-Za-z0-9!_.()]+/)*$";
pub const S3_PREFIX_DOT_SEGMENT_RE: &str = "(^|/)[.][.]?/";
pub const S3_PREFIX_MAX_LEN: usize = 512;
pub const S3_PREFIX_TEXT: &str = "spec.etcd.backup.s3.prefix must be empty or segments of letters, digits and -!_.() each ending with /, without . or .. segments";
/// `spec.etcd.backup.s3.region`: signed into every request (`us-east-1` when the server has no
/// regions: MinIO's and Ceph RGW's default).
pub const S3_REGION_RE: &str = "^[A-Za-z0-9]([-A-Za-z0-9_]*[A-Za-z0-9])?$";
pub const S3_REGION_MAX_LEN: usize = 63;
pub const S3_REGION_TEXT: &str = "spec.etcd.backup.s3.region must be 1-63 letters, digits, dashes and underscores, starting and ending with a letter or digit";

/// `self` (a string) matches `re`, with `text` and the value as the message.
pub fn matching(re: &str, text: &str) -> Rule {
    rule(format!("self.matches('{re}')"), got(text, "self"))
}

/// `spec.etcd.backup.s3.prefix` (`self`).
pub fn s3_prefix() -> Rule {
    rule(
        format!("self.matches('{S3_PREFIX_RE}') && !self.matches('{S3_PREFIX_DOT_SEGMENT_RE}')"),
        got(S3_PREFIX_TEXT, "self"),
    )
}

/// `spec.etcd.backup.keep`.
pub const BACKUP_KEEP: Bounds = Bounds { min: 1, max: 100 };
/// A TCP port.
pub const PORT: Bounds = Bounds { min: 1, max: 65535 };
/// MDS pods: one primary, the others standby.
pub const MDS_REPLICAS: Bounds = Bounds { min: 1, max: 9 };
/// Nodes running ChunkServers.
pub const CHUNKSERVER_REPLICAS: Bounds = Bounds { min: 1, max: 1000 };
/// Disk slots (ChunkServers) per node.
pub const DISKS_PER_NODE: Bounds = Bounds { min: 1, max: 32 };
/// Copysets per ChunkServer.
pub const COPYSETS: Bounds = Bounds { min: 1, max: 10000 };
/// Share of a volume preallocated into the chunk file pool. curve_format `-allocatePercent`
/// (src/tools/curve_format_main.cpp) allocates that share and gives up when less is free, so
/// 100 can never be met on a formatted file system. Below 5 the pool holds nothing the MDS
/// may allocate, whatever the volume: 4 % is under 4 % of chunks (16 MiB of every 16 MiB +
/// 4 KiB file), and the MDS limit rendered from it keeps 3 % for raft logs and needs 1 %
/// (`validate::capacity::min_volume_bytes`).
pub const FORMAT_PERCENT: Bounds = Bounds { min: 5, max: 99 };
/// Copies of a copyset, and so zones of the logical pool: Curve's MDS requires them equal.
pub const POOL_REPLICAS: Bounds = Bounds { min: 1, max: 5 };
/// Seconds a replaced pod may take to become Ready.
pub const PROGRESS_DEADLINE_SECONDS: Bounds = Bounds {
    min: 10,
    max: 86400,
};

/// `spec.chunkservers` (`self`): the chunk file pool leaves room for data beside the raft logs
/// of its copysets, i.e. `storage.size` is at least
/// `validate::capacity::min_volume_bytes(formatPercent, copysets)`, the same integers:
/// `room = formatPercent × 100 × 16 MiB / (16 MiB + 4 KiB) − 400` (hundredths of a percent)
/// and `⌈(copysets × 2 + 2) × (16 MiB + 4 KiB) × 10000 × 100 / (room × 95)⌉` bytes (the file
/// system is 95 % of the volume), and at least 1Gi; compared as quantities so a size past
/// int64 compares too. Exact, but for one thing: the operator reads the size as a
/// float (`validate::parse_quantity`), so at the very byte of the bound a size written with a
/// fraction (`3.6359...Gi`) may round across it; no whole number of bytes does below 2^53.
/// A size that is not a positive quantity is left to the size's own rule.
pub fn pool_room() -> Rule {
    let room = format!(
        "(self.formatPercent * {} / {POOL_FILE_BYTES} - {MIN_POOL_SHARE_HUNDREDTHS})",
        100 * CHUNK_BYTES
    );
    let reserved = format!(
        "((self.copysets * {WAL_FILES_PER_COPYSET} + {FORMAT_ROUNDING_FILES}) * {})",
        POOL_FILE_BYTES * 1_000_000
    );
    let fs_room = format!("({room} * {})", 100 - FS_OVERHEAD_PERCENT);
    let min = format!("(({reserved} + {fs_room} - 1) / {fs_room})");
    let size = "self.storage.size";
    // Compared as a float (as the operator reads the size), not as `quantity(string(min))`:
    // the API server's cost estimate takes a converted string as unbounded and refuses the
    // CRD (> 100× its budget). The message is fixed for the same reason; the operator's
    // SpecValid says the numbers.
    fixed(
        format!(
            "!isQuantity({size}) || !quantity({size}).isGreaterThan(quantity('0')) || ({room} >= 1 && quantity({size}).asApproximateFloat() >= double({min}) && quantity({size}).asApproximateFloat() >= {MIN_CHUNKSERVER_VOLUME_BYTES}.0)"
        ),
        format!(
            "spec.chunkservers.storage.size leaves no room for data: it must be at least 1Gi, and the chunk file pool (formatPercent of the file system, taken as {}% of the volume) must hold 2 raft log files of 16 MiB + 4 KiB per copyset, the {FORMAT_ROUNDING_FILES} files curve_format may leave out and {RAFT_LOG_MARGIN_PERCENT}% of the volume: raise storage.size or formatPercent, or lower copysets (the operator's SpecValid condition gives the numbers)",
            100 - FS_OVERHEAD_PERCENT
        ),
    )
}
/// `spec.etcd.storage.size` (`self` is `spec.etcd`) holds the WAL, the snapshots and the
/// smallest database twice: at least [`ETCD_MIN_VOLUME_BYTES`].
pub fn etcd_volume_room() -> Rule {
    let size = "self.storage.size";
    fixed(
        format!(
            "!isQuantity({size}) || quantity({size}).asApproximateFloat() >= {ETCD_MIN_VOLUME_BYTES}.0"
        ),
        format!("spec.etcd.storage.size must be at least 768Mi: {ETCD_VOLUME_WHY}"),
    )
}

/// Why an etcd volume needs [`ETCD_MIN_VOLUME_BYTES`], in the words of both refusals.
pub const ETCD_VOLUME_WHY: &str = "512Mi for etcd's WAL (7 segments of 64 MB: the 5 kept, the one being written, the next one preallocated) and snapshots, and twice the smallest quota of 128Mi (the database and, at times, a second copy of it)";

/// `spec.etcd.quotaBackendBytes` (`self`) is at least [`ETCD_MIN_QUOTA_BYTES`]; a quantity
/// that is not positive is left to the field's own rule.
pub fn etcd_min_quota() -> Rule {
    fixed(
        format!(
            "!isQuantity(self) || !quantity(self).isGreaterThan(quantity('0')) || quantity(self).asApproximateFloat() >= {ETCD_MIN_QUOTA_BYTES}.0"
        ),
        format!("spec.etcd.quotaBackendBytes must be at least 128Mi: {ETCD_QUOTA_WHY}"),
    )
}

/// Why the quota needs [`ETCD_MIN_QUOTA_BYTES`], in the words of both refusals.
pub const ETCD_QUOTA_WHY: &str = "the operator defragments a member once 64Mi of its database are free pages, so a smaller database fills with the free pages of compacted revisions and etcd refuses writes (NOSPACE) before that";

/// `spec.etcd` (`self`): the database quota fits the volume twice beside
/// [`ETCD_WAL_ROOM_BYTES`], `2 × quotaBackendBytes + 512Mi ≤ storage.size`. Twice, because a
/// second copy of the database is written beside it at times: defragmentation rebuilds it into
/// a temporary file before the rename, and a member that fell behind receives the leader's
/// whole database (`<index>.snap.db`) before it replaces its own. Compared as floats (as the
/// operator reads quantities), with a fixed message: the API server's cost estimate of a
/// converted string is unbounded.
pub fn etcd_quota_room() -> Rule {
    let (size, quota) = ("self.storage.size", "self.quotaBackendBytes");
    fixed(
        format!(
            "!has({quota}) || !isQuantity({quota}) || !isQuantity({size}) || quantity({quota}).asApproximateFloat() * 2.0 + {ETCD_WAL_ROOM_BYTES}.0 <= quantity({size}).asApproximateFloat()"
        ),
        "spec.etcd.quotaBackendBytes must be at most half of spec.etcd.storage.size less 512Mi: the volume holds etcd's WAL and snapshots (512Mi) and, at times, a second copy of the database (a defragmentation's, or a snapshot from the leader); raise storage.size or lower quotaBackendBytes (the operator's SpecValid condition gives the numbers)".to_string(),
    )
}

/// The toleration operators Kubernetes knows (empty means Equal).
pub const TOLERATION_OPERATORS: [&str; 3] = ["", "Equal", "Exists"];
/// The taint effects Kubernetes knows (empty means every effect).
pub const TAINT_EFFECTS: [&str; 4] = ["", "NoSchedule", "PreferNoSchedule", "NoExecute"];

/// A CEL expression true when `expr` (a string) is a label key.
pub fn is_label_key(expr: &str) -> String {
    format!("{expr}.matches('{LABEL_KEY_RE}') && {expr}.matches('{LABEL_KEY_PREFIX_RE}')")
}

/// A rule with a message computed from the value (`messageExpression`).
pub fn rule(expression: impl Into<String>, message_expression: impl Into<String>) -> Rule {
    Rule {
        message: Some(Message::Expression(message_expression.into())),
        ..Rule::new(expression)
    }
}

/// A rule with a fixed message.
pub fn fixed(expression: impl Into<String>, message: String) -> Rule {
    Rule {
        message: Some(Message::Message(message)),
        ..Rule::new(expression)
    }
}

/// `'<text> (got "' + <expr> + '")'` as a CEL message expression.
pub fn got(text: &str, expr: &str) -> String {
    format!("'{} (got \"' + {expr} + '\")'", text.replace('\'', "\\'"))
}

const LABEL_KEY_TEXT: &str = "a label key: an optional DNS-1123 subdomain prefix of at most 253 characters and a slash, then a name of at most 63 letters, digits, dashes, underscores and dots, starting and ending with a letter or digit";
const LABEL_VALUE_TEXT: &str = "empty, or at most 63 letters, digits, dashes, underscores and dots, starting and ending with a letter or digit";

/// `self` (a string field at `field`) is a label key.
pub fn label_key(field: &str) -> Rule {
    rule(
        is_label_key("self"),
        got(&format!("{field} must be {LABEL_KEY_TEXT}"), "self"),
    )
}

/// `self` (a string) is a DNS-1123 subdomain: a Kubernetes object name.
pub fn subdomain(field: &str, what: &str) -> Rule {
    rule(
        format!("self.matches('{SUBDOMAIN_RE}')"),
        got(
            &format!(
                "{field} must be {what}: a DNS-1123 subdomain of lower-case letters, digits, dashes and dots, starting and ending with a letter or digit"
            ),
            "self",
        ),
    )
}

/// `self` (a string) is a Curve pool name.
pub fn pool_name(field: &str) -> Rule {
    rule(
        format!("self.matches('{POOL_NAME_RE}')"),
        got(
            &format!(
                "{field} must be a Curve pool name: 1-63 letters, digits, dashes, underscores and dots, starting and ending with a letter or digit"
            ),
            "self",
        ),
    )
}

/// `self` (a string) is an image reference the container runtime can parse.
/// A first path component that looks like a host (a '.' or ':', or capitals), followed by more
/// path: the container runtime reads it as the registry (distribution/reference
/// splitDockerDomain), whatever [`IMAGE_RE`] could also read it as.
pub const IMAGE_HOST_LIKE_RE: &str = "^[^/]*[.:A-Z][^/]*/";
/// An image reference that starts with a registry.
pub const IMAGE_WITH_REGISTRY_RE: &str = concat!("^", image_registry_re!(), "/");

/// `self` (a string) is an image reference whose registry, when it names one, is a host.
pub fn image_registry() -> Rule {
    image_registry_at("spec.image")
}

/// [`image_registry`] of the image at `field`.
pub fn image_registry_at(field: &str) -> Rule {
    rule(
        format!(
            "!self.matches('{IMAGE_HOST_LIKE_RE}') || self.matches('{IMAGE_WITH_REGISTRY_RE}')"
        ),
        got(
            &format!(
                "{field} names a registry (its first path component has a dot, a colon or capitals), which must be a host name or [IPv6] address with an optional port"
            ),
            "self",
        ),
    )
}

pub fn image() -> Rule {
    image_at("spec.image")
}

/// `self` (the string at `field`) is an image reference: no whitespace, the grammar the
/// container runtime parses.
pub fn image_at(field: &str) -> Rule {
    rule(
        format!("self.matches('{IMAGE_RE}')"),
        got(
            &format!(
                "{field} must be an image reference [registry[:port]/]path[:tag][@digest], the path of lower-case letters and digits with dots, underscores or dashes between them, such as opencurvedocker/curvebs:v1.2.6"
            ),
            "self",
        ),
    )
}

/// Longest Curve user curve-csi accepts in a StorageClass (`curveUserMaxLen`,
/// pkg/curve/volumeoptions.go:32 at curve-csi ed02bd6), in bytes (Go's `len`, l.65).
pub const CSI_USER_MAX_LEN: usize = 30;

/// `spec.csi.storageClass.user` (`self`): 1 to [`CSI_USER_MAX_LEN`] bytes, as curve-csi's
/// `newVolumeOptions` checks it (pkg/curve/volumeoptions.go:65-67), or every CreateVolume of
/// the class fails.
pub fn csi_user() -> Rule {
    // A fixed message: the API server's cost estimate of a converted number is unbounded.
    fixed(
        format!("size(bytes(self)) >= 1 && size(bytes(self)) <= {CSI_USER_MAX_LEN}"),
        format!(
            "spec.csi.storageClass.user must be 1 to {CSI_USER_MAX_LEN} bytes, as curve-csi requires"
        ),
    )
}

// Rules over maps and lists carry fixed messages: the API server's cost estimate of a message
// that lists the offending entries exceeds its budget 100-fold. The API server names the field;
// the operator's own validation (render, `SpecValid`) also names the value given.

/// Every key of the map `self` (at `field`) is a label key.
pub fn label_map_keys(field: &str) -> Rule {
    fixed(
        format!("self.all(k, {})", is_label_key("k")),
        format!("{field} keys must be {LABEL_KEY_TEXT}"),
    )
}

/// Every value of the map `self` (at `field`) is a label value.
pub fn label_map_values(field: &str) -> Rule {
    fixed(
        format!("self.all(k, self[k].matches('{LABEL_VALUE_RE}'))"),
        format!("{field} values must be label values: {LABEL_VALUE_TEXT}"),
    )
}

/// Every entry of the list `self` is a DNS-1123 subdomain (Secret names).
pub fn subdomain_list(field: &str) -> Rule {
    fixed(
        format!("self.all(s, s.matches('{SUBDOMAIN_RE}'))"),
        format!(
            "{field} must name Secrets: DNS-1123 subdomains of lower-case letters, digits, dashes and dots, starting and ending with a letter or digit"
        ),
    )
}

fn rules_value(rules: &[Rule]) -> serde_json::Value {
    serde_json::to_value(rules).expect("rules serialize")
}

/// The tolerations of every Curve pod: Kubernetes' Toleration, with the checks of the API
/// server's ValidateTolerations as enums and CEL rules.
pub fn tolerations_schema(_: &mut SchemaGenerator) -> Schema {
    let item_rules = rules_value(&[
        Rule::new("(has(self.key) && self.key != '') || (has(self.operator) && self.operator == 'Exists')")
            .message("spec.placement.tolerations[].operator must be Exists when key is empty: an empty key with Exists tolerates every taint"),
        rule(
            "!has(self.operator) || self.operator != 'Exists' || !has(self.value) || self.value == ''",
            got("spec.placement.tolerations[].value must be empty when operator is Exists", "self.value"),
        ),
        rule(
            format!("(has(self.operator) && self.operator == 'Exists') || !has(self.value) || self.value.matches('{LABEL_VALUE_RE}')"),
            got(&format!("spec.placement.tolerations[].value must be a label value: {LABEL_VALUE_TEXT}"), "self.value"),
        ),
        rule(
            "!has(self.tolerationSeconds) || (has(self.effect) && self.effect == 'NoExecute')",
            "'spec.placement.tolerations[].tolerationSeconds is allowed only with effect NoExecute (got effect \"' + (has(self.effect) ? self.effect : '') + '\")'",
        ),
    ]);
    let key_rules = rules_value(&[rule(
        format!("self == '' || ({})", is_label_key("self")),
        got(
            &format!("spec.placement.tolerations[].key must be empty or {LABEL_KEY_TEXT}"),
            "self",
        ),
    )]);
    json_schema!({
        "description": "Tolerations of every Curve pod (Kubernetes tolerations, checked as the API server checks a pod's).",
        "type": "array",
        "maxItems": MAX_TOLERATIONS,
        "items": {
            "description": "The pod this Toleration is attached to tolerates any taint that matches the triple <key,value,effect> using the matching operator <operator>.",
            "type": "object",
            "properties": {
                "key": {
                    "description": "Key is the taint key that the toleration applies to. Empty means match all taint keys. If the key is empty, operator must be Exists; this combination means to match all values and all keys.",
                    "type": "string",
                    "maxLength": LABEL_KEY_MAX,
                    "x-kubernetes-validations": key_rules,
                },
                "operator": {
                    "description": "Operator represents a key's relationship to the value. Valid operators are Exists and Equal. Defaults to Equal. Exists is equivalent to wildcard for value, so that a pod can tolerate all taints of a particular category.",
                    "type": "string",
                    "enum": TOLERATION_OPERATORS,
                },
                "value": {
                    "description": "Value is the taint value the toleration matches to. If the operator is Exists, the value should be empty, otherwise just a regular string.",
                    "type": "string",
                    "maxLength": 63,
                },
                "effect": {
                    "description": "Effect indicates the taint effect to match. Empty means match all taint effects. When specified, allowed values are NoSchedule, PreferNoSchedule and NoExecute.",
                    "type": "string",
                    "enum": TAINT_EFFECTS,
                },
                "tolerationSeconds": {
                    "description": "TolerationSeconds represents the period of time the toleration (which must be of effect NoExecute) tolerates the taint. By default, it is not set, which means tolerate the taint forever (do not evict). Zero and negative values will be treated as 0 (evict immediately) by the system.",
                    "type": "integer",
                    "format": "int64",
                },
            },
            "x-kubernetes-validations": item_rules,
        },
    })
}

/// CEL: the resource name `k` is one a container may request.
/// (validateContainerResourceName: a qualified name, and a standard container resource, a
/// native one or an extended one.)
fn is_container_resource(k: &str) -> String {
    format!(
        "({} && ({k} in ['cpu', 'memory', 'ephemeral-storage'] || {k}.startsWith('hugepages-') || ({k}.contains('/') && ({k}.contains('kubernetes.io/') || !{k}.startsWith('requests.')))))",
        is_label_key(k)
    )
}

/// CEL: the resource `k` is not overcommitted (hugepages, extended resources).
fn is_exact_resource(k: &str) -> String {
    format!(
        "({k}.startsWith('hugepages-') || ({k}.contains('/') && !{k}.contains('kubernetes.io/')))"
    )
}

/// The quantity `map[k]` (an int-or-string the schema's pattern admits) as a CEL quantity.
fn q(map: &str, k: &str) -> String {
    format!("quantity(string({map}[{k}]))")
}

/// The resources of one component's containers: Kubernetes' ResourceRequirements without
/// `claims` (Curve pods declare no resource claims), checked as the API server's
/// ValidateResourceRequirements checks a container's.
fn resources_schema(field: &str) -> Schema {
    let quantity_map = |what: &str| {
        json_schema!({
            "description": what,
            "type": "object",
            "maxProperties": MAX_RESOURCE_ENTRIES,
            "additionalProperties": {
                "description": "A Kubernetes quantity: a number with an optional suffix (m, k, M, G, Ki, Mi, Gi, ... or an exponent), such as 500m, 2 or 4Gi.",
                "x-kubernetes-int-or-string": true,
                // Each applies to its own type only: a number's minimum, a string's length and
                // grammar.
                "minimum": 0,
                "maxLength": MAX_QUANTITY_LEN,
                "pattern": QUANTITY_RE,
            },
        })
    };
    let mut rules = Vec::new();
    for map in ["limits", "requests"] {
        let m = format!("self.{map}");
        rules.push(fixed(
            format!("!has({m}) || {m}.all(k, {})", is_container_resource("k")),
            format!(
                "{field}.{map} may name only cpu, memory, ephemeral-storage, hugepages-<size> and domain-qualified extended resources"
            ),
        ));
        rules.push(fixed(
            format!(
                "!has({m}) || {m}.all(k, !(k.contains('/') && !k.contains('kubernetes.io/')) || {}.isInteger())",
                q(&m, "k")
            ),
            format!(
                "{field}.{map} of extended resources must be whole numbers: they are counted in units"
            ),
        ));
    }
    // The schema's pattern admits only quantities, so the rules parse without `isQuantity`
    // guards (each guard would double a rule's estimated cost).
    let both = |k: &str| format!("{k} in self.limits");
    rules.push(fixed(
        format!(
            "!has(self.requests) || !has(self.limits) || self.requests.all(k, !({}) || {}.compareTo({}) <= 0)",
            both("k"),
            q("self.requests", "k"),
            q("self.limits", "k")
        ),
        format!("{field}.requests must not exceed {field}.limits of the same resource"),
    ));
    rules.push(fixed(
        format!(
            "!has(self.requests) || self.requests.all(k, !{} || (has(self.limits) && {} && {}.compareTo({}) == 0))",
            is_exact_resource("k"),
            both("k"),
            q("self.requests", "k"),
            q("self.limits", "k")
        ),
        format!(
            "{field}.requests of hugepages and extended resources need {field}.limits equal to them: Kubernetes does not overcommit them"
        ),
    ));
    rules.push(fixed(
        "!((has(self.limits) && self.limits.exists(k, k.startsWith('hugepages-'))) || (has(self.requests) && self.requests.exists(k, k.startsWith('hugepages-')))) || (has(self.limits) && ('cpu' in self.limits || 'memory' in self.limits)) || (has(self.requests) && ('cpu' in self.requests || 'memory' in self.requests))",
        format!(
            "{field} must request or limit cpu or memory too when it asks for hugepages: Kubernetes refuses hugepages alone"
        ),
    ));
    json_schema!({
        "description": "CPU and memory (and other resources) of the component's containers: Kubernetes resource requirements, checked as the API server checks a container's.",
        "type": "object",
        "properties": {
            "limits": quantity_map("The most of each resource a container may use. More info: https://kubernetes.io/docs/concepts/configuration/manage-resources-containers/"),
            "requests": quantity_map("The amount of each resource a container is scheduled with; at most its limit. More info: https://kubernetes.io/docs/concepts/configuration/manage-resources-containers/"),
        },
        "x-kubernetes-validations": rules_value(&rules),
    })
}

pub fn etcd_resources_schema(_: &mut SchemaGenerator) -> Schema {
    resources_schema("spec.etcd.resources")
}

pub fn mds_resources_schema(_: &mut SchemaGenerator) -> Schema {
    resources_schema("spec.mds.resources")
}

pub fn chunkserver_resources_schema(_: &mut SchemaGenerator) -> Schema {
    resources_schema("spec.chunkservers.resources")
}
