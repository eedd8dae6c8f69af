//! spec → [`ValidatedCluster`]: pure, collects every problem, each naming its field path, what
//! is wrong and what was given.
//!
//! The CRD's schema and CEL rules reject most bad input at the API server; this step repeats all
//! of them (a CurveCluster may predate a rule, and `render` has no API server) and adds what they
//! cannot judge. Every value that ends up in a Kubernetes object is checked the way the API server
//! (or the kubelet, for image references) checks that object ([`k8s`]); every value that ends up
//! in a Curve config, cluster map or command line is checked the way Curve reads it (the Curve
//! source of each rule is cited beside it). [`parse_cluster`] reads the raw object first, naming
//! the path of every field serde could not read.

use std::collections::BTreeMap;
use std::fmt;

// The bounds the CRD sets where Kubernetes sets none (CEL cost) apply here too.
use crate::api::rules::{
    self, Bounds, MAX_NODE_SELECTOR, MAX_POOL_NAME_LEN, MAX_PULL_SECRETS, MAX_TOLERATIONS,
};
use crate::api::{
    CurveCluster, CurveClusterSpec, DELETE_DATA_CONFIRMATION, MAX_CLUSTER_NAME_LEN, StorageSpec,
};
use crate::names::{self, Component, TopologyStep};

pub mod capacity;
mod csi;
pub mod k8s;
mod parse;

pub use k8s::parse_quantity;
pub use parse::{parse_cluster, parse_errors};

use k8s::quoted;

/// One problem in a CurveCluster: the field path and what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError {
    pub path: String,
    pub message: String,
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path, self.message)
    }
}

/// All problems of one CurveCluster, in field order.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "))]
pub struct InvalidCluster(pub Vec<FieldError>);

/// A CurveCluster whose spec passed validation, with the identity the builders need.
#[derive(Debug, Clone, PartialEq)]
pub struct ValidatedCluster {
    pub name: String,
    pub namespace: String,
    /// The CurveCluster's uid, for owner references; unknown when rendering a file offline.
    pub uid: Option<String>,
    pub spec: CurveClusterSpec,
}

impl ValidatedCluster {
    /// Quorum of the etcd cluster: a strict majority of its members.
    pub fn etcd_quorum(&self) -> i32 {
        self.spec.etcd.replicas / 2 + 1
    }
}

/// Validates a CurveCluster; `default_namespace` is used when the object names none.
pub fn validate(
    cluster: &CurveCluster,
    default_namespace: &str,
) -> Result<ValidatedCluster, InvalidCluster> {
    let mut errors = Errors::default();
    let name = cluster.metadata.name.clone().unwrap_or_default();
    let mut name_valid = false;
    if name.is_empty() {
        errors.push("metadata.name", "must be set".into());
    } else if let Some(reason) = k8s::dns1035_label(&name) {
        // The cluster's Services are named `<name>-<component>`: DNS-1035 labels.
        errors.push(
            "metadata.name",
            format!(
                "{reason}: it prefixes the cluster's Service names (got {})",
                quoted(&name)
            ),
        );
    } else if name.len() > MAX_CLUSTER_NAME_LEN {
        errors.push(
            "metadata.name",
            format!(
                "must be at most {MAX_CLUSTER_NAME_LEN} characters (got {})",
                name.len()
            ),
        );
    } else {
        name_valid = true;
    }
    let namespace = cluster
        .metadata
        .namespace
        .clone()
        .unwrap_or_else(|| default_namespace.to_string());
    if namespace.is_empty() {
        errors.push("metadata.namespace", "must be set".into());
    } else if let Some(reason) = k8s::dns1123_label(&namespace) {
        errors.push(
            "metadata.namespace",
            format!("{reason} (got {})", quoted(&namespace)),
        );
    }
    validate_spec_into(&cluster.spec, &mut errors);
    let validated = ValidatedCluster {
        name,
        namespace,
        uid: cluster.metadata.uid.clone(),
        spec: cluster.spec.clone(),
    };
    if name_valid && errors.0.is_empty() {
        check_derived_names(&validated, &mut errors);
    }
    if errors.0.is_empty() {
        Ok(validated)
    } else {
        Err(InvalidCluster(errors.0))
    }
}

#[derive(Default)]
struct Errors(Vec<FieldError>);

impl Errors {
    fn push(&mut self, path: &str, message: String) {
        self.0.push(FieldError {
            path: path.to_string(),
            message,
        });
    }

    /// The bounds the schema sets on an integer field.
    fn range(&mut self, path: &str, value: i32, Bounds { min, max }: Bounds) {
        if !(min..=max).contains(&value) {
            self.push(
                path,
                format!("must be between {min} and {max} (got {value})"),
            );
        }
    }

    /// `check` of `value` at `path`, the value quoted after the reason.
    fn check(&mut self, path: &str, value: &str, check: impl Fn(&str) -> Option<String>) {
        if let Some(reason) = check(value) {
            self.push(path, format!("{reason} (got {})", quoted(value)));
        }
    }
}

fn validate_spec_into(spec: &CurveClusterSpec, errors: &mut Errors) {
    check_monitoring(spec, errors);
    csi::check(&spec.csi, errors);
    if let Some(dir) = &spec.core_dumps.host_path {
        errors.check("spec.coreDumps.hostPath", dir, host_directory);
    }
    if spec.image.trim().is_empty() {
        errors.push(
            "spec.image",
            format!("must name a Curve image (got {})", quoted(&spec.image)),
        );
    } else {
        errors.check("spec.image", &spec.image, k8s::image_reference);
    }
    if spec.image_pull_secrets.len() > MAX_PULL_SECRETS {
        errors.push(
            "spec.imagePullSecrets",
            format!(
                "must have at most {MAX_PULL_SECRETS} entries (got {})",
                spec.image_pull_secrets.len()
            ),
        );
    }
    for (i, secret) in spec.image_pull_secrets.iter().enumerate() {
        // A Secret's name is a DNS-1123 subdomain: no other name can be found.
        errors.check(
            &format!("spec.imagePullSecrets[{i}]"),
            secret,
            k8s::dns1123_subdomain,
        );
    }

    let etcd = &spec.etcd;
    if ![1, 3, 5, 7].contains(&etcd.replicas) {
        errors.push(
            "spec.etcd.replicas",
            format!("must be 1, 3, 5 or 7 (got {})", etcd.replicas),
        );
    }
    errors.range("spec.etcd.clientPort", etcd.client_port, rules::PORT);
    errors.range("spec.etcd.peerPort", etcd.peer_port, rules::PORT);
    if etcd.client_port == etcd.peer_port {
        errors.push(
            "spec.etcd.peerPort",
            format!(
                "must differ from spec.etcd.clientPort (got {} for both)",
                etcd.peer_port
            ),
        );
    }
    check_storage(errors, "spec.etcd.storage", &etcd.storage);
    check_etcd_quota(errors, etcd);
    if let Some(resources) = &etcd.resources {
        k8s::resource_requirements(errors, "spec.etcd.resources", resources);
    }
    if let Some(backup) = &etcd.backup {
        check_backup(errors, backup);
    }

    let mds = &spec.mds;
    errors.range("spec.mds.replicas", mds.replicas, rules::MDS_REPLICAS);
    errors.range("spec.mds.port", mds.port, rules::PORT);
    errors.range("spec.mds.dummyPort", mds.dummy_port, rules::PORT);
    if mds.port == mds.dummy_port {
        errors.push(
            "spec.mds.dummyPort",
            format!("must differ from spec.mds.port (got {} for both)", mds.port),
        );
    }
    if let Some(resources) = &mds.resources {
        k8s::resource_requirements(errors, "spec.mds.resources", resources);
    }

    let cs = &spec.chunkservers;
    errors.range(
        "spec.chunkservers.replicas",
        cs.replicas,
        rules::CHUNKSERVER_REPLICAS,
    );
    errors.range(
        "spec.chunkservers.disksPerNode",
        cs.disks_per_node,
        rules::DISKS_PER_NODE,
    );
    errors.range("spec.chunkservers.port", cs.port, rules::PORT);
    // Slot i listens on port + i: a container port and (host networking) a host port, both
    // 1-65535 for the API server, and `-chunkServerPort` / the cluster map's port for Curve.
    if cs.port >= 1 && cs.disks_per_node >= 1 {
        let last_port = cs.port.saturating_add(cs.disks_per_node - 1);
        if last_port > rules::PORT.max {
            errors.push(
                "spec.chunkservers.port",
                format!(
                    "port + disksPerNode - 1 must be at most {} (got {last_port})",
                    rules::PORT.max
                ),
            );
        }
    }
    errors.range("spec.chunkservers.copysets", cs.copysets, rules::COPYSETS);
    errors.range(
        "spec.chunkservers.formatPercent",
        cs.format_percent,
        rules::FORMAT_PERCENT,
    );
    check_storage(errors, "spec.chunkservers.storage", &cs.storage);
    if let Some(refusal) = pool_usage_refusal(cs) {
        errors.0.push(refusal);
    }
    if let Some(resources) = &cs.resources {
        k8s::resource_requirements(errors, "spec.chunkservers.resources", resources);
    }
    // Curve v1.2.6 cannot create a logical pool on a single ChunkServer: CopysetManager::GenCopyset
    // (src/mds/copyset/copyset_manager.cpp) refuses when scatterWidth (0) >= ChunkServers - 1.
    let chunkservers = cs.replicas.saturating_mul(cs.disks_per_node);
    if cs.replicas >= 1 && cs.disks_per_node >= 1 && chunkservers < 2 {
        errors.push(
            "spec.chunkservers",
            format!(
                "replicas × disksPerNode must be at least 2: Curve's MDS cannot create a logical pool on one ChunkServer (got {} × {})",
                cs.replicas, cs.disks_per_node
            ),
        );
    }

    if spec.host_network {
        check_host_port_collisions(spec, errors);
    } else {
        errors.push(
            "spec.hostNetwork",
            "must be true (got false): Curve identifies MDS and ChunkServers by ip:port, and pod IPs change at every restart, which breaks a ChunkServer's copysets".into(),
        );
    }

    check_placement(spec, errors);

    let pool = &spec.logical_pool;
    errors.range(
        "spec.logicalPool.replicas",
        pool.replicas,
        rules::POOL_REPLICAS,
    );
    errors.range("spec.logicalPool.zones", pool.zones, rules::POOL_REPLICAS);
    check_pool_name(errors, "spec.logicalPool.physicalPool", &pool.physical_pool);
    check_pool_name(errors, "spec.logicalPool.name", &pool.name);
    // The cluster map's `zonenum` is spec.logicalPool.zones and `replicasnum` its replicas; the
    // MDS places copysets only when they are equal: CopysetManager::Init
    // (src/mds/copyset/copyset_manager.cpp) accepts only zoneChoseNum == replicaNum, and
    // CreateLogicalPool then fails with kTopoErrCodeInvalidParam.
    if pool.zones != pool.replicas {
        errors.push(
            "spec.logicalPool.zones",
            format!(
                "must equal spec.logicalPool.replicas: Curve's MDS creates a logical pool only when its zone count equals its copy count, each copy in its own zone (got {} zones, {} replicas)",
                pool.zones, pool.replicas
            ),
        );
    }
    if cs.replicas < pool.replicas {
        errors.push(
            "spec.chunkservers.replicas",
            format!(
                "must be at least spec.logicalPool.replicas: every copy needs its own server (got {} servers, {} replicas)",
                cs.replicas, pool.replicas
            ),
        );
    }
    // Every zone needs a server: the MDS's permutation policy (CopysetPermutationPolicyNXX,
    // src/mds/copyset/copyset_policy.cpp) fails when the cluster has fewer zones than zonenum.
    if cs.replicas < pool.zones {
        errors.push(
            "spec.logicalPool.zones",
            format!(
                "must not exceed spec.chunkservers.replicas: every zone needs a server (got {} zones, {} servers)",
                pool.zones, cs.replicas
            ),
        );
    }

    errors.range(
        "spec.rollout.progressDeadlineSeconds",
        spec.rollout.progress_deadline_seconds,
        rules::PROGRESS_DEADLINE_SECONDS,
    );

    if let Some(restore) = &spec.etcd.restore {
        check_restore(restore, errors);
    }

    if let Some(confirmation) = &spec.cleanup.confirmation
        && confirmation != DELETE_DATA_CONFIRMATION
    {
        errors.push(
            "spec.cleanup.confirmation",
            format!(
                "must be \"{DELETE_DATA_CONFIRMATION}\" when set (got {})",
                quoted(confirmation)
            ),
        );
    }
}

/// `spec.etcd.restore`: a snapshot name as the backup writes it, and a confirmation (when
/// set) naming exactly that snapshot. The CRD's rules on `EtcdRestoreSpec` refuse the same.
fn check_restore(restore: &crate::api::EtcdRestoreSpec, errors: &mut Errors) {
    use crate::api::{is_snapshot_name, restore_confirmation};
    if !is_snapshot_name(&restore.snapshot) {
        errors.push(
            "spec.etcd.restore.snapshot",
            format!(
                "must be a snapshot name etcd-<YYYYMMDD>T<hhmmss>Z (got {})",
                quoted(&restore.snapshot)
            ),
        );
        return;
    }
    let expected = restore_confirmation(&restore.snapshot);
    if let Some(confirmation) = &restore.confirmation
        && *confirmation != expected
    {
        errors.push(
            "spec.etcd.restore.confirmation",
            format!(
                "must be \"{expected}\" when set (got {})",
                quoted(confirmation)
            ),
        );
    }
}

/// The MDS's pool usage limit rendered from `formatPercent` ([`capacity`]) must let it
/// allocate something: a pool too small for the raft logs of its copysets holds no data. The
/// CRD's rule `api::rules::pool_room` refuses the same specs with the same numbers. Judged only
/// when the three fields are each valid (their own rules name them otherwise).
pub fn pool_usage_refusal(cs: &crate::api::ChunkServerSpec) -> Option<FieldError> {
    let in_range = |value: i32, bounds: Bounds| (bounds.min..=bounds.max).contains(&value);
    if !in_range(cs.format_percent, rules::FORMAT_PERCENT)
        || !in_range(cs.copysets, rules::COPYSETS)
    {
        return None;
    }
    let volume = capacity::volume_bytes(cs)?;
    let needed = capacity::min_volume_bytes(cs.format_percent, cs.copysets);
    if needed.is_some_and(|needed| volume >= needed) {
        return None;
    }
    let pool_needs = capacity::min_pool_volume_bytes(cs.format_percent, cs.copysets);
    let path = "spec.chunkservers.storage.size".to_string();
    if pool_needs.is_some_and(|bytes| bytes <= capacity::MIN_CHUNKSERVER_VOLUME_BYTES) {
        return Some(FieldError {
            path,
            message: format!(
                "must be at least 1Gi: ext4 keeps more than {}% of a smaller volume for its own metadata, and curve_format sizes the chunk file pool from the file system (got {})",
                capacity::FS_OVERHEAD_PERCENT,
                quoted(&cs.storage.size),
            ),
        });
    }
    let at_least = pool_needs
        .map(|bytes| {
            let gib = bytes as f64 / (1u64 << 30) as f64;
            format!("; volumes need at least {bytes} bytes ({gib:.2}Gi)")
        })
        .unwrap_or_default();
    Some(FieldError {
        path,
        message: format!(
            "leaves no room for data: the chunk file pool (formatPercent {}% of the file system, taken as {}% of the volume) must hold the raft log segments of {} copysets ({} files of 16 MiB + 4 KiB), the {} files curve_format may leave out and {}% of the volume, so the MDS could allocate nothing{at_least}: raise storage.size or formatPercent, or lower copysets (got {})",
            cs.format_percent,
            100 - capacity::FS_OVERHEAD_PERCENT,
            cs.copysets,
            cs.copysets as u64 * capacity::WAL_FILES_PER_COPYSET,
            capacity::FORMAT_ROUNDING_FILES,
            capacity::RAFT_LOG_MARGIN_PERCENT,
            quoted(&cs.storage.size),
        ),
    })
}

/// A slot increase (`disksPerNode` from `previous` to `cs.disks_per_node`) on a cluster whose
/// servers Curve registered with `registered_port` (ListZoneServer's `internalPort`; 0 for
/// pools this operator creates now). A server with a fixed port admits only the ChunkServer of
/// that port (TopologyImpl::FindServerByHostIpPort, src/mds/topology/topology.cpp:587-607) and
/// `create_physicalpool` never changes an existing server (tools/curvefsTool.cpp:676-690), so the
/// new slots' ChunkServers could never register and would restart forever.
pub fn check_slot_increase(
    previous: i32,
    cs: &crate::api::ChunkServerSpec,
    registered_port: i32,
) -> Option<FieldError> {
    (cs.disks_per_node > previous && registered_port != 0).then(|| FieldError {
        path: "spec.chunkservers.disksPerNode".into(),
        message: format!(
            "cannot grow from {previous} to {}: Curve registered this cluster's servers with port {registered_port} (its pool was created with one disk slot per node), and such a server admits only the ChunkServer of that port, so the new slots could never register",
            cs.disks_per_node
        ),
    })
}

/// Node selector and tolerations go into every pod spec, the topology key into its pod
/// anti-affinity terms, and the zone label is read from the nodes: label keys and values.
fn check_placement(spec: &CurveClusterSpec, errors: &mut Errors) {
    let placement = &spec.placement;
    check_label_map(
        errors,
        "spec.placement.nodeSelector",
        &placement.node_selector,
    );
    if placement.tolerations.len() > MAX_TOLERATIONS {
        errors.push(
            "spec.placement.tolerations",
            format!(
                "must have at most {MAX_TOLERATIONS} entries (got {})",
                placement.tolerations.len()
            ),
        );
    }
    for (i, toleration) in placement.tolerations.iter().enumerate() {
        k8s::toleration(
            errors,
            &format!("spec.placement.tolerations[{i}]"),
            toleration,
        );
    }
    if placement.topology_key.is_empty() {
        errors.push("spec.placement.topologyKey", "must not be empty".into());
    } else {
        errors.check(
            "spec.placement.topologyKey",
            &placement.topology_key,
            k8s::qualified_name,
        );
    }
    match placement.zone_label.as_deref() {
        Some("") => errors.push(
            "spec.placement.zoneLabel",
            "must not be empty when set".into(),
        ),
        Some(label) => errors.check("spec.placement.zoneLabel", label, k8s::qualified_name),
        None => {}
    }
}

/// A map of label keys to label values, of at most `MAX_NODE_SELECTOR` entries.
fn check_label_map(errors: &mut Errors, path: &str, map: &BTreeMap<String, String>) {
    if map.len() > MAX_NODE_SELECTOR {
        errors.push(
            path,
            format!(
                "must have at most {MAX_NODE_SELECTOR} entries (got {})",
                map.len()
            ),
        );
    }
    for (key, value) in map {
        let path = format!("{path}[{key}]");
        if let Some(reason) = k8s::qualified_name(key) {
            errors.push(&path, format!("the key {reason} (got {})", quoted(key)));
        }
        errors.check(&path, value, k8s::label_value);
    }
}

fn check_monitoring(spec: &CurveClusterSpec, errors: &mut Errors) {
    let monitoring = &spec.monitoring;
    errors.check("spec.monitoring.interval", &monitoring.interval, |text| {
        match k8s::prometheus_duration_seconds(text) {
            Some(seconds) if seconds > k8s::PROMETHEUS_MAX_SECONDS => Some(format!(
                "must be at most {} seconds: Prometheus holds a duration in int64 milliseconds",
                k8s::PROMETHEUS_MAX_SECONDS
            )),
            Some(seconds) if seconds >= 1 => None,
            _ => Some("must be a Prometheus duration of at least 1s such as 30s or 1m".to_string()),
        }
    });
    check_label_map(errors, "spec.monitoring.labels", &monitoring.labels);
}

/// A node directory the operator mounts (`rules::HOST_DIR_RE` and
/// `rules::HOST_DIR_DOT_SEGMENT_RE` in the CRD).
fn host_directory(text: &str) -> Option<String> {
    if text.len() > rules::MAX_HOST_PATH_LEN {
        return Some(format!(
            "must be at most {} characters",
            rules::MAX_HOST_PATH_LEN
        ));
    }
    let plain = |segment: &str| {
        !segment.is_empty()
            && segment != "."
            && segment != ".."
            && segment
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
    };
    match text.strip_prefix('/') {
        Some(rest) if rest.split('/').all(plain) => None,
        _ => Some(
            "must be an absolute directory other than /, of segments of letters, digits, dots, dashes and underscores, without . or .. segments"
                .to_string(),
        ),
    }
}

/// A physical or logical pool name. Curve itself takes any JSON string (tools/curvefsTool.cpp,
/// InitServerData / InitLogicalPoolData check only `isString()`), but the name also names the
/// MDS's metric family of the pool (`topology_metric_logicalPool_<name>_*`,
/// src/mds/topology/topology_metric.h, exposed through bvar, which replaces every character
/// outside [A-Za-z0-9_] with '_'), appears in the Curve tools' output and in the operator's
/// conditions: the operator admits 1-63 letters, digits, '-', '_' and '.', starting and ending
/// with a letter or digit, so a name reads the same everywhere.
fn check_pool_name(errors: &mut Errors, path: &str, name: &str) {
    if name.is_empty() {
        errors.push(path, "must not be empty".into());
        return;
    }
    let valid = name.len() <= MAX_POOL_NAME_LEN
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        && name.starts_with(|c: char| c.is_ascii_alphanumeric())
        && name.ends_with(|c: char| c.is_ascii_alphanumeric());
    if !valid {
        errors.push(
            path,
            format!(
                "must be a Curve pool name: 1-{MAX_POOL_NAME_LEN} letters, digits, '-', '_' and '.', starting and ending with a letter or digit (got {})",
                quoted(name)
            ),
        );
    }
}

/// With host networking every component binds on the node's address, so no two may share a port.
fn check_host_port_collisions(spec: &CurveClusterSpec, errors: &mut Errors) {
    let cs = &spec.chunkservers;
    let named = [
        ("spec.etcd.clientPort", spec.etcd.client_port),
        ("spec.etcd.peerPort", spec.etcd.peer_port),
        ("spec.mds.port", spec.mds.port),
        ("spec.mds.dummyPort", spec.mds.dummy_port),
    ];
    // etcd pairs and MDS pairs are reported above; here only pairs across components.
    for (i, (path_a, a)) in named.iter().enumerate() {
        for (path_b, b) in &named[i + 1..] {
            let same_component = path_a.split('.').nth(1) == path_b.split('.').nth(1);
            if a == b && !same_component {
                errors.push(
                    path_b,
                    format!("collides with {path_a} under host networking (got {b} for both)"),
                );
            }
        }
    }
    let chunk_ports = cs.port..cs.port.saturating_add(cs.disks_per_node.max(1));
    for (path, port) in named {
        if chunk_ports.contains(&port) {
            errors.push(
                "spec.chunkservers.port",
                format!(
                    "ChunkServer ports {}-{} include {path} ({port}) under host networking",
                    chunk_ports.start,
                    chunk_ports.end - 1
                ),
            );
        }
    }
}

/// `spec.etcd.quotaBackendBytes` and the room the volume leaves for it (api::rules::
/// etcd_quota_room and etcd_volume_room say why).
fn check_etcd_quota(errors: &mut Errors, etcd: &crate::api::EtcdSpec) {
    const PATH: &str = "spec.etcd.quotaBackendBytes";
    let gib = |bytes: f64| format!("{:.2}Gi", bytes / (1u64 << 30) as f64);
    let volume = parse_quantity(&etcd.storage.size).filter(|v| *v > 0.0);
    if let Some(volume) = volume
        && volume < rules::ETCD_MIN_VOLUME_BYTES as f64
    {
        errors.push(
            "spec.etcd.storage.size",
            format!(
                "must be at least 768Mi: {} (got {})",
                rules::ETCD_VOLUME_WHY,
                quoted(&etcd.storage.size)
            ),
        );
    }
    let Some(quota) = &etcd.quota_backend_bytes else {
        return;
    };
    let bytes = match parse_quantity(quota) {
        Some(_) if quota.len() > k8s::QUANTITY_MAX => {
            return errors.push(
                PATH,
                format!(
                    "must be at most {} characters (got {})",
                    k8s::QUANTITY_MAX,
                    quota.len()
                ),
            );
        }
        Some(bytes) if bytes > 0.0 => bytes,
        _ => {
            return errors.push(
                PATH,
                format!(
                    "must be a positive quantity such as 4Gi (got {})",
                    quoted(quota)
                ),
            );
        }
    };
    if bytes < rules::ETCD_MIN_QUOTA_BYTES as f64 {
        errors.push(
            PATH,
            format!(
                "must be at least 128Mi: {} (got {})",
                rules::ETCD_QUOTA_WHY,
                quoted(quota)
            ),
        );
    }
    if bytes > capacity::ETCD_MAX_QUOTA_BYTES as f64 {
        errors.push(
            PATH,
            format!(
                "must be at most 8Gi, etcd's suggested maximum (got {})",
                quoted(quota)
            ),
        );
    }
    if let Some(volume) = volume
        && bytes * 2.0 + capacity::ETCD_WAL_ROOM_BYTES as f64 > volume
    {
        errors.push(
            PATH,
            format!(
                "must be at most half of spec.etcd.storage.size less 512Mi ({} of {}): the volume holds etcd's WAL and snapshots and, at times, a second copy of the database (a defragmentation's, or a snapshot from the leader); raise storage.size or lower quotaBackendBytes (got {})",
                gib(((volume - capacity::ETCD_WAL_ROOM_BYTES as f64) / 2.0).max(0.0)),
                quoted(&etcd.storage.size),
                quoted(quota)
            ),
        );
    }
}

/// The claim template's storage request: a quantity the API server takes and more than zero
/// (ValidatePersistentVolumeClaimSpec); the class is a StorageClass name (ValidateClassName).
/// `spec.etcd.backup`: the schedule as the CRD's pattern reads it, plus what no pattern can
/// judge (a range that runs backwards, a schedule that never fires).
fn check_backup(errors: &mut Errors, backup: &crate::api::EtcdBackupSpec) {
    const SCHEDULE: &str = "spec.etcd.backup.schedule";
    if backup.schedule.len() > crate::cron::MAX_LEN {
        errors.push(
            SCHEDULE,
            format!(
                "must be at most {} characters (got {})",
                crate::cron::MAX_LEN,
                backup.schedule.len()
            ),
        );
    } else if let Err(why) = crate::cron::Schedule::parse(&backup.schedule) {
        errors.push(SCHEDULE, why);
    }
    errors.range("spec.etcd.backup.keep", backup.keep, rules::BACKUP_KEEP);
    check_storage(errors, "spec.etcd.backup.storage", &backup.storage);
    if let Some(s3) = &backup.s3 {
        check_s3(errors, s3);
    }
}

/// `spec.etcd.backup.s3`: the grammars of the CRD's rules (`rules::S3_*_RE`), written out.
fn check_s3(errors: &mut Errors, s3: &crate::api::EtcdBackupS3) {
    let at = |field: &str| format!("spec.etcd.backup.s3.{field}");
    // Each text is the CEL rule's message, which names the field first.
    let refuse = |errors: &mut Errors, field: &str, text: &str, value: &str| {
        let why = text.split_once(" must ").map_or(text, |(_, why)| why);
        errors.push(&at(field), format!("must {why} (got {})", quoted(value)));
    };
    let too_long = |errors: &mut Errors, field: &str, value: &str, max: usize| {
        let long = value.len() > max;
        if long {
            let got = value.len();
            errors.push(
                &at(field),
                format!("must be at most {max} characters (got {got})"),
            );
        }
        long
    };
    if !too_long(errors, "endpoint", &s3.endpoint, rules::S3_ENDPOINT_MAX_LEN)
        && !is_s3_endpoint(&s3.endpoint)
    {
        refuse(errors, "endpoint", rules::S3_ENDPOINT_TEXT, &s3.endpoint);
    }
    if !too_long(errors, "bucket", &s3.bucket, rules::S3_BUCKET_MAX_LEN)
        && !is_s3_bucket(&s3.bucket)
    {
        refuse(errors, "bucket", rules::S3_BUCKET_TEXT, &s3.bucket);
    }
    if let Some(prefix) = &s3.prefix
        && !too_long(errors, "prefix", prefix, rules::S3_PREFIX_MAX_LEN)
        && !is_s3_prefix(prefix)
    {
        refuse(errors, "prefix", rules::S3_PREFIX_TEXT, prefix);
    }
    if !too_long(errors, "region", &s3.region, rules::S3_REGION_MAX_LEN)
        && !is_s3_region(&s3.region)
    {
        refuse(errors, "region", rules::S3_REGION_TEXT, &s3.region);
    }
    errors.check(
        &at("credentialsSecret"),
        &s3.credentials_secret,
        k8s::dns1123_subdomain,
    );
}

/// A DNS label of letters (any case), digits and dashes, starting and ending alphanumeric.
fn is_host_label(label: &str) -> bool {
    !label.is_empty()
        && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        && label.starts_with(|c: char| c.is_ascii_alphanumeric())
        && label.ends_with(|c: char| c.is_ascii_alphanumeric())
}

/// [`rules::S3_ENDPOINT_RE`].
pub fn is_s3_endpoint(endpoint: &str) -> bool {
    let Some(rest) =
        (endpoint.strip_prefix("http://")).or_else(|| endpoint.strip_prefix("https://"))
    else {
        return false;
    };
    let rest = rest.strip_suffix('/').unwrap_or(rest);
    let (host, port) = match rest.split_once(':') {
        Some((host, port)) => (host, Some(port)),
        None => (rest, None),
    };
    let port_ok =
        port.is_none_or(|p| (1..=5).contains(&p.len()) && p.bytes().all(|b| b.is_ascii_digit()));
    port_ok && host.split('.').all(is_host_label)
}

/// [`rules::S3_BUCKET_RE`].
pub fn is_s3_bucket(bucket: &str) -> bool {
    let lower_alnum = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit();
    (3..=63).contains(&bucket.len())
        && bucket
            .chars()
            .all(|c| lower_alnum(c) || c == '-' || c == '.')
        && bucket.starts_with(lower_alnum)
        && bucket.ends_with(lower_alnum)
}

/// [`rules::S3_PREFIX_RE`] and not [`rules::S3_PREFIX_DOT_SEGMENT_RE`].
pub fn is_s3_prefix(prefix: &str) -> bool {
    let Some(segments) = prefix.strip_suffix('/') else {
        return prefix.is_empty();
    };
    segments.split('/').all(|segment| {
        !segment.is_empty()
            && segment != "."
            && segment != ".."
            && (segment.chars()).all(|c| c.is_ascii_alphanumeric() || "-!_.()".contains(c))
    })
}

/// [`rules::S3_REGION_RE`].
pub fn is_s3_region(region: &str) -> bool {
    !region.is_empty()
        && region
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        && region.starts_with(|c: char| c.is_ascii_alphanumeric())
        && region.ends_with(|c: char| c.is_ascii_alphanumeric())
}

fn check_storage(errors: &mut Errors, path: &str, storage: &StorageSpec) {
    let size = &storage.size;
    match parse_quantity(size) {
        Some(_) if size.len() > k8s::QUANTITY_MAX => errors.push(
            &format!("{path}.size"),
            format!(
                "must be at most {} characters (got {})",
                k8s::QUANTITY_MAX,
                size.len()
            ),
        ),
        Some(bytes) if bytes > 0.0 => {}
        _ => errors.push(
            &format!("{path}.size"),
            format!(
                "must be a positive quantity such as 10Gi (got {})",
                quoted(size)
            ),
        ),
    }
    match storage.storage_class_name.as_deref() {
        Some("") => errors.push(
            &format!("{path}.storageClassName"),
            "must not be empty when set".into(),
        ),
        Some(class) => errors.check(
            &format!("{path}.storageClassName"),
            class,
            k8s::dns1123_subdomain,
        ),
        None => {}
    }
}

/// A name the operator derives from the cluster's name, the kind of object it names and what
/// Kubernetes requires of it.
#[derive(Debug, Clone)]
pub struct DerivedName {
    pub kind: &'static str,
    pub name: String,
    /// Longest name that works; more than the kind's own limit where a label derived from the
    /// name must also fit (a StatefulSet's `controller-revision-hash`, a Job's `job-name`).
    pub max_len: usize,
    /// Service names are DNS-1035 labels, pod names DNS-1123 labels (they are host names),
    /// other objects DNS-1123 subdomains.
    pub grammar: fn(&str) -> Option<String>,
}

/// StatefulSet names: the controller labels each pod `controller-revision-hash=<name>-<hash>`,
/// the hash up to 10 characters, and a label value has at most 63.
pub const MAX_STATEFUL_SET_NAME_LEN: usize = 52;

/// Every object name derived from the cluster's name (`crate::names`), the largest pod
/// ordinal and disk slot included.
pub fn derived_names(cluster: &ValidatedCluster) -> Vec<DerivedName> {
    use crate::names::{component_name, root_secret_name, slot_set_name};
    let spec = &cluster.spec;
    let name = |kind, name: String, max_len, grammar| DerivedName {
        kind,
        name,
        max_len,
        grammar,
    };
    let mut names = vec![name(
        "app.kubernetes.io/instance label value",
        cluster.name.clone(),
        k8s::LABEL_MAX,
        k8s::label_value as fn(&str) -> Option<String>,
    )];
    for component in [Component::Etcd, Component::Mds, Component::ChunkServer] {
        names.push(name(
            "Service",
            component_name(&cluster.name, component),
            k8s::LABEL_MAX,
            k8s::dns1035_label,
        ));
    }
    for component in [
        Component::Etcd,
        Component::Mds,
        Component::ChunkServer,
        Component::Topology,
    ] {
        names.push(name(
            "ConfigMap",
            component_name(&cluster.name, component),
            k8s::SUBDOMAIN_MAX,
            k8s::dns1123_subdomain,
        ));
    }
    // The last disk slot has the longest StatefulSet name, the last ordinal the longest pod name.
    let sets = [
        (
            component_name(&cluster.name, Component::Etcd),
            spec.etcd.replicas,
        ),
        (
            component_name(&cluster.name, Component::Mds),
            spec.mds.replicas,
        ),
        (
            slot_set_name(&cluster.name, spec.chunkservers.disks_per_node.max(1) - 1),
            spec.chunkservers.replicas,
        ),
    ];
    for (set, replicas) in sets {
        names.push(name(
            "Pod",
            format!("{set}-{}", replicas.max(1) - 1),
            k8s::LABEL_MAX,
            k8s::dns1123_label,
        ));
        names.push(name(
            "StatefulSet",
            set,
            MAX_STATEFUL_SET_NAME_LEN,
            k8s::dns1123_subdomain,
        ));
    }
    names.push(name(
        "Secret",
        root_secret_name(&cluster.name),
        k8s::SUBDOMAIN_MAX,
        k8s::dns1123_subdomain,
    ));
    // The servers hash has a fixed length; its digits do not change the name's validity.
    let servers_hash = "0".repeat(names::SERVERS_HASH_LEN);
    for step in TopologyStep::ALL {
        // The Job controller labels its pods `job-name=<name>`.
        names.push(name(
            "Job",
            names::topology_job_name(&cluster.name, step, &servers_hash),
            k8s::LABEL_MAX,
            k8s::dns1123_subdomain,
        ));
    }
    names
}

/// Every derived name must be one Kubernetes accepts: a guard for the builders, since
/// [`MAX_CLUSTER_NAME_LEN`] is chosen so that each fits.
fn check_derived_names(cluster: &ValidatedCluster, errors: &mut Errors) {
    for derived in derived_names(cluster) {
        let problem = if derived.name.len() > derived.max_len {
            Some(format!("must be at most {} characters", derived.max_len))
        } else {
            (derived.grammar)(&derived.name)
        };
        if let Some(problem) = problem {
            errors.push(
                "metadata.name",
                format!(
                    "derives the {} name {} ({} characters), which {problem} (got {})",
                    derived.kind,
                    quoted(&derived.name),
                    derived.name.len(),
                    quoted(&cluster.name)
                ),
            );
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use serde_json::{Value, json};

    /// The smallest valid CurveCluster, as raw JSON (the validation tests patch it).
    pub(crate) fn minimal() -> Value {
        json!({
            "apiVersion": "curve.opencurve.io/v1alpha1",
            "kind": "CurveCluster",
            "metadata": {"name": "demo", "namespace": "curve"},
            "spec": {
                "image": "opencurvedocker/curvebs:v1.2.6",
                "chunkservers": {"replicas": 3, "storage": {"size": "100Gi"}}
            }
        })
    }

    /// Applies a JSON merge patch to the minimal cluster and validates the result.
    fn errors_for(patch: Value) -> Vec<String> {
        let mut value = minimal();
        crate::util::merge_json(&mut value, &patch);
        let cluster = match parse_cluster(&value) {
            Ok(cluster) => cluster,
            Err(InvalidCluster(errors)) => {
                return errors.iter().map(ToString::to_string).collect();
            }
        };
        match validate(&cluster, "default") {
            Ok(_) => Vec::new(),
            Err(InvalidCluster(errors)) => errors.iter().map(ToString::to_string).collect(),
        }
    }

    fn spec(patch: Value) -> Value {
        json!({ "spec": patch })
    }

    fn resources(component: &str, resources: Value) -> Value {
        spec(json!({ component: {"resources": resources} }))
    }

    fn tolerations(list: Value) -> Value {
        spec(json!({"placement": {"tolerations": list}}))
    }

    #[test]
    fn minimal_cluster_is_valid_with_documented_defaults() {
        let cluster = parse_cluster(&minimal()).unwrap();
        let valid = validate(&cluster, "default").expect("valid");
        assert_eq!(valid.namespace, "curve");
        let spec = &valid.spec;
        assert_eq!(
            (
                spec.etcd.replicas,
                spec.etcd.client_port,
                spec.etcd.peer_port
            ),
            (3, 2379, 2380)
        );
        assert_eq!(
            (spec.mds.replicas, spec.mds.port, spec.mds.dummy_port),
            (3, 6700, 7700)
        );
        assert_eq!(
            (
                spec.chunkservers.replicas,
                spec.chunkservers.disks_per_node,
                spec.chunkservers.port
            ),
            (3, 1, 8200)
        );
        assert_eq!(
            (spec.chunkservers.copysets, spec.chunkservers.format_percent),
            (100, 90)
        );
        assert_eq!(
            (spec.logical_pool.replicas, spec.logical_pool.zones),
            (3, 3)
        );
        assert!(spec.host_network);
        assert_eq!(valid.etcd_quorum(), 2);
    }

    /// Every rule: a patch it refuses, the exact refusal (field path, what is wrong, what was
    /// given), and a patch close to it that it accepts.
    #[test]
    fn every_rule_refuses_with_its_field_and_value_and_accepts_its_valid_neighbour() {
        let long_key = format!("{}/{}", "p".repeat(254), "zone");
        let long_key_refusal = format!(
            "spec.placement.nodeSelector[{long_key}]: the key must be a label key: an optional DNS-1123 subdomain prefix of at most 253 characters and '/', then a name of at most 63 letters, digits, '-', '_' and '.', starting and ending with a letter or digit (got {})",
            k8s::quoted(&long_key)
        );
        let long_pool_refusal = format!(
            "spec.logicalPool.physicalPool: must be a Curve pool name: 1-63 letters, digits, '-', '_' and '.', starting and ending with a letter or digit (got \"{}\")",
            "p".repeat(64)
        );
        let table: Vec<(Value, &str, Value)> = vec![
            // spec.etcd.backup
            (
                json!({"spec": {"etcd": {"backup": {"schedule": "0 3 * *"}}}}),
                "spec.etcd.backup.schedule: must be 5 fields separated by spaces (minute hour day-of-month month day-of-week) or a macro such as @daily (got \"0 3 * *\")",
                json!({"spec": {"etcd": {"backup": {"schedule": "0 3 * * *"}}}}),
            ),
            (
                json!({"spec": {"etcd": {"backup": {"schedule": "0 24 * * *"}}}}),
                "spec.etcd.backup.schedule: hour must be 0-23 (got \"24\")",
                json!({"spec": {"etcd": {"backup": {"schedule": "0 23 * * *"}}}}),
            ),
            (
                json!({"spec": {"etcd": {"backup": {"schedule": "0 3 30 2 *"}}}}),
                "spec.etcd.backup.schedule: never fires: no day matches its day of month and month (got \"0 3 30 2 *\")",
                json!({"spec": {"etcd": {"backup": {"schedule": "0 3 28 2 *"}}}}),
            ),
            (
                json!({"spec": {"etcd": {"backup": {"schedule": "@daily", "keep": 0}}}}),
                "spec.etcd.backup.keep: must be between 1 and 100 (got 0)",
                json!({"spec": {"etcd": {"backup": {"schedule": "@daily", "keep": 1}}}}),
            ),
            (
                json!({"spec": {"etcd": {"backup": {"schedule": "@daily", "storage": {"size": "0"}}}}}),
                "spec.etcd.backup.storage.size: must be a positive quantity such as 10Gi (got \"0\")",
                json!({"spec": {"etcd": {"backup": {"schedule": "@daily", "storage": {"size": "1Gi"}}}}}),
            ),
            // metadata
            (
                json!({"metadata": {"name": "a-very-long-cluster-name-beyond-thirty"}}),
                "metadata.name: must be at most 30 characters (got 38)",
                json!({"metadata": {"name": "a-cluster-name-of-thirty-chars"}}),
            ),
            (
                json!({"metadata": {"name": "Demo_1"}}),
                "metadata.name: must be a DNS-1035 label: lower-case letters, digits and '-', starting with a letter and ending with a letter or digit: it prefixes the cluster's Service names (got \"Demo_1\")",
                json!({"metadata": {"name": "demo-1"}}),
            ),
            (
                json!({"metadata": {"name": "1demo"}}),
                "metadata.name: must be a DNS-1035 label: lower-case letters, digits and '-', starting with a letter and ending with a letter or digit: it prefixes the cluster's Service names (got \"1demo\")",
                json!({"metadata": {"name": "demo1"}}),
            ),
            (
                json!({"metadata": {"name": "demo.curve"}}),
                "metadata.name: must be a DNS-1035 label: lower-case letters, digits and '-', starting with a letter and ending with a letter or digit: it prefixes the cluster's Service names (got \"demo.curve\")",
                json!({"metadata": {"name": "demo-curve"}}),
            ),
            (
                json!({"metadata": {"namespace": "Curve_NS"}}),
                "metadata.namespace: must be a DNS-1123 label: lower-case letters, digits and '-', starting and ending with a letter or digit (got \"Curve_NS\")",
                json!({"metadata": {"namespace": "curve-ns"}}),
            ),
            // image
            (
                spec(json!({"image": ""})),
                "spec.image: must name a Curve image (got \"\")",
                spec(json!({"image": "curvebs"})),
            ),
            (
                spec(json!({"image": "opencurvedocker/CurveBS:v1.2.6"})),
                "spec.image: must be an image reference [registry[:port]/]path[:tag][@digest], the path lower-case letters, digits and separators ('.', '_', '__', '-') between them, such as opencurvedocker/curvebs:v1.2.6 (got \"opencurvedocker/CurveBS:v1.2.6\")",
                spec(json!({"image": "registry.example.com:5000/opencurvedocker/curvebs:v1.2.6"})),
            ),
            (
                spec(json!({"image": "opencurvedocker/curvebs:v1.2.6 "})),
                "spec.image: must not have leading or trailing whitespace (got \"opencurvedocker/curvebs:v1.2.6 \")",
                spec(json!({"image": "opencurvedocker/curvebs:v1.2.6"})),
            ),
            (
                spec(json!({"image": "opencurvedocker/curvebs@sha256:abc"})),
                "spec.image: must be an image reference [registry[:port]/]path[:tag][@digest], the path lower-case letters, digits and separators ('.', '_', '__', '-') between them, such as opencurvedocker/curvebs:v1.2.6; a digest is <algorithm>:<at least 32 hex digits> (got \"opencurvedocker/curvebs@sha256:abc\")",
                spec(
                    json!({"image": format!("opencurvedocker/curvebs@sha256:{}", "ab".repeat(32))}),
                ),
            ),
            (
                spec(json!({"imagePullSecrets": ["Bad Name"]})),
                "spec.imagePullSecrets[0]: must be a DNS-1123 subdomain: lower-case letters, digits, '-' and '.', starting and ending with a letter or digit (got \"Bad Name\")",
                spec(json!({"imagePullSecrets": ["registry.example.com"]})),
            ),
            (
                spec(
                    json!({"imagePullSecrets": (0..17).map(|i| format!("s{i}")).collect::<Vec<_>>()}),
                ),
                "spec.imagePullSecrets: must have at most 16 entries (got 17)",
                spec(
                    json!({"imagePullSecrets": (0..16).map(|i| format!("s{i}")).collect::<Vec<_>>()}),
                ),
            ),
            // etcd
            (
                spec(json!({"etcd": {"replicas": 2}})),
                "spec.etcd.replicas: must be 1, 3, 5 or 7 (got 2)",
                spec(json!({"etcd": {"replicas": 5}})),
            ),
            (
                spec(json!({"etcd": {"replicas": 0}})),
                "spec.etcd.replicas: must be 1, 3, 5 or 7 (got 0)",
                spec(json!({"etcd": {"replicas": 1}})),
            ),
            (
                spec(json!({"etcd": {"clientPort": 0}})),
                "spec.etcd.clientPort: must be between 1 and 65535 (got 0)",
                spec(json!({"etcd": {"clientPort": 1}})),
            ),
            (
                spec(json!({"etcd": {"peerPort": 70000}})),
                "spec.etcd.peerPort: must be between 1 and 65535 (got 70000)",
                spec(json!({"etcd": {"peerPort": 65535}})),
            ),
            (
                spec(json!({"etcd": {"peerPort": 2379}})),
                "spec.etcd.peerPort: must differ from spec.etcd.clientPort (got 2379 for both)",
                spec(json!({"etcd": {"peerPort": 2381}})),
            ),
            (
                spec(json!({"etcd": {"storage": {"size": "lots"}}})),
                "spec.etcd.storage.size: must be a positive quantity such as 10Gi (got \"lots\")",
                spec(json!({"etcd": {"storage": {"size": "5G"}}})),
            ),
            (
                spec(json!({"etcd": {"storage": {"size": "10GB"}}})),
                "spec.etcd.storage.size: must be a positive quantity such as 10Gi (got \"10GB\")",
                spec(json!({"etcd": {"storage": {"size": "10G"}}})),
            ),
            (
                spec(json!({"etcd": {"storage": {"size": "-1Gi"}}})),
                "spec.etcd.storage.size: must be a positive quantity such as 10Gi (got \"-1Gi\")",
                spec(json!({"etcd": {"storage": {"size": "1Gi"}}})),
            ),
            (
                spec(json!({"etcd": {"storage": {"size": "805306367"}}})),
                "spec.etcd.storage.size: must be at least 768Mi: 512Mi for etcd's WAL (7 segments of 64 MB: the 5 kept, the one being written, the next one preallocated) and snapshots, and twice the smallest quota of 128Mi (the database and, at times, a second copy of it) (got \"805306367\")",
                spec(json!({"etcd": {"storage": {"size": "768Mi"}}})),
            ),
            (
                spec(json!({"etcd": {"quotaBackendBytes": "0"}})),
                "spec.etcd.quotaBackendBytes: must be a positive quantity such as 4Gi (got \"0\")",
                spec(json!({"etcd": {"quotaBackendBytes": "128Mi"}})),
            ),
            (
                spec(json!({"etcd": {"quotaBackendBytes": "134217727"}})),
                "spec.etcd.quotaBackendBytes: must be at least 128Mi: the operator defragments a member once 64Mi of its database are free pages, so a smaller database fills with the free pages of compacted revisions and etcd refuses writes (NOSPACE) before that (got \"134217727\")",
                spec(json!({"etcd": {"quotaBackendBytes": "128Mi"}})),
            ),
            (
                spec(json!({"etcd": {"quotaBackendBytes": "4GB"}})),
                "spec.etcd.quotaBackendBytes: must be a positive quantity such as 4Gi (got \"4GB\")",
                spec(json!({"etcd": {"quotaBackendBytes": "4G"}})),
            ),
            (
                spec(
                    json!({"etcd": {"quotaBackendBytes": "8589934593", "storage": {"size": "100Gi"}}}),
                ),
                "spec.etcd.quotaBackendBytes: must be at most 8Gi, etcd's suggested maximum (got \"8589934593\")",
                spec(json!({"etcd": {"quotaBackendBytes": "8Gi", "storage": {"size": "100Gi"}}})),
            ),
            (
                // (10Gi − 512Mi) / 2 = 4.75Gi: 4865Mi is one MiB over.
                spec(json!({"etcd": {"quotaBackendBytes": "4865Mi"}})),
                "spec.etcd.quotaBackendBytes: must be at most half of spec.etcd.storage.size less 512Mi (4.75Gi of \"10Gi\"): the volume holds etcd's WAL and snapshots and, at times, a second copy of the database (a defragmentation's, or a snapshot from the leader); raise storage.size or lower quotaBackendBytes (got \"4865Mi\")",
                spec(json!({"etcd": {"quotaBackendBytes": "4864Mi"}})),
            ),
            (
                spec(json!({"etcd": {"storage": {"size": format!("1{}", "0".repeat(64))}}})),
                "spec.etcd.storage.size: must be at most 64 characters (got 65)",
                spec(json!({"etcd": {"storage": {"size": "1Ei"}}})),
            ),
            (
                spec(json!({"etcd": {"storage": {"size": "1Gi", "storageClassName": "Fast SSD"}}})),
                "spec.etcd.storage.storageClassName: must be a DNS-1123 subdomain: lower-case letters, digits, '-' and '.', starting and ending with a letter or digit (got \"Fast SSD\")",
                spec(json!({"etcd": {"storage": {"size": "1Gi", "storageClassName": "fast-ssd"}}})),
            ),
            (
                json!({"spec": {"chunkservers": {"storage": {"size": "10Gi", "storageClassName": ""}}}}),
                "spec.chunkservers.storage.storageClassName: must not be empty when set",
                json!({"spec": {"chunkservers": {"storage": {"size": "10Gi"}}}}),
            ),
            // resources (ValidateResourceRequirements)
            (
                resources(
                    "etcd",
                    json!({"requests": {"cpu": "2"}, "limits": {"cpu": "1"}}),
                ),
                "spec.etcd.resources.requests[cpu]: must be at most the cpu limit 1 (got 2)",
                resources(
                    "etcd",
                    json!({"requests": {"cpu": "1"}, "limits": {"cpu": "1"}}),
                ),
            ),
            (
                resources(
                    "mds",
                    json!({"requests": {"memory": "5Gi"}, "limits": {"memory": "4096Mi"}}),
                ),
                "spec.mds.resources.requests[memory]: must be at most the memory limit 4096Mi (got 5Gi)",
                resources(
                    "mds",
                    json!({"requests": {"memory": "4Gi"}, "limits": {"memory": "4096Mi"}}),
                ),
            ),
            (
                resources("mds", json!({"limits": {"cpu": "two"}})),
                "spec.mds.resources.limits[cpu]: must be a Kubernetes quantity such as 500m, 2, 1.5Gi or 10G (got \"two\")",
                resources("mds", json!({"limits": {"cpu": "2000m"}})),
            ),
            (
                resources("mds", json!({"limits": {"cpu": 2}})),
                "",
                resources("mds", json!({"limits": {"cpu": 2}})),
            ),
            (
                resources("chunkservers", json!({"requests": {"memory": "-1Gi"}})),
                "spec.chunkservers.resources.requests[memory]: must not be negative (got \"-1Gi\")",
                resources("chunkservers", json!({"requests": {"memory": "0"}})),
            ),
            (
                resources("chunkservers", json!({"limits": {"gpu": "1"}})),
                "spec.chunkservers.resources.limits[gpu]: must be a standard resource for containers (cpu, memory, ephemeral-storage, hugepages-<size>) or a domain-qualified extended resource (got \"gpu\")",
                resources("chunkservers", json!({"limits": {"example.com/gpu": "1"}})),
            ),
            (
                resources("chunkservers", json!({"limits": {"cpu cores": "1"}})),
                "spec.chunkservers.resources.limits[cpu cores]: must be a resource name: cpu, memory, ephemeral-storage, hugepages-<size> or a domain-qualified extended resource; must be a label key: an optional DNS-1123 subdomain prefix of at most 253 characters and '/', then a name of at most 63 letters, digits, '-', '_' and '.', starting and ending with a letter or digit (got \"cpu cores\")",
                resources(
                    "chunkservers",
                    json!({"limits": {"ephemeral-storage": "1Gi"}}),
                ),
            ),
            (
                resources("etcd", json!({"requests": {"example.com/nic": "1"}})),
                "spec.etcd.resources.limits[example.com/nic]: must be set, equal to the request 1: Kubernetes does not overcommit hugepages and extended resources",
                resources(
                    "etcd",
                    json!({"requests": {"example.com/nic": "1"}, "limits": {"example.com/nic": "1"}}),
                ),
            ),
            (
                resources(
                    "etcd",
                    json!({"requests": {"example.com/nic": "1"}, "limits": {"example.com/nic": "2"}}),
                ),
                "spec.etcd.resources.requests[example.com/nic]: must equal the example.com/nic limit 2 (got 1): Kubernetes does not overcommit hugepages and extended resources",
                resources("etcd", json!({"limits": {"example.com/nic": "2"}})),
            ),
            (
                resources("etcd", json!({"limits": {"example.com/nic": "500m"}})),
                "spec.etcd.resources.limits[example.com/nic]: must be a whole number: extended resources are counted in units (got \"500m\")",
                resources("etcd", json!({"limits": {"example.com/nic": "1"}})),
            ),
            (
                resources(
                    "chunkservers",
                    json!({"limits": {"hugepages-2Mi": "3Mi"}, "requests": {"memory": "1Gi"}}),
                ),
                "spec.chunkservers.resources.limits[hugepages-2Mi]: must be a positive whole multiple of the page size 2Mi (got \"3Mi\")",
                resources(
                    "chunkservers",
                    json!({"limits": {"hugepages-2Mi": "4Mi"}, "requests": {"memory": "1Gi"}}),
                ),
            ),
            (
                resources("chunkservers", json!({"limits": {"hugepages-2Mi": "4Mi"}})),
                "spec.chunkservers.resources: must request or limit cpu or memory too when it asks for hugepages (Kubernetes refuses hugepages alone)",
                resources(
                    "chunkservers",
                    json!({"limits": {"hugepages-2Mi": "4Mi", "cpu": "1"}}),
                ),
            ),
            // mds
            (
                spec(json!({"mds": {"replicas": 0}})),
                "spec.mds.replicas: must be between 1 and 9 (got 0)",
                spec(json!({"mds": {"replicas": 1}})),
            ),
            (
                spec(json!({"mds": {"replicas": -1}})),
                "spec.mds.replicas: must be between 1 and 9 (got -1)",
                spec(json!({"mds": {"replicas": 9}})),
            ),
            (
                spec(json!({"mds": {"dummyPort": 6700}})),
                "spec.mds.dummyPort: must differ from spec.mds.port (got 6700 for both)",
                spec(json!({"mds": {"dummyPort": 6701}})),
            ),
            (
                spec(json!({"mds": {"port": 2379}})),
                "spec.mds.port: collides with spec.etcd.clientPort under host networking (got 2379 for both)",
                spec(json!({"mds": {"port": 2378}})),
            ),
            // chunkservers
            (
                spec(json!({"chunkservers": {"replicas": 0}})),
                "spec.chunkservers.replicas: must be between 1 and 1000 (got 0)",
                spec(json!({"chunkservers": {"replicas": 1000}})),
            ),
            (
                spec(json!({"chunkservers": {"replicas": 2}})),
                "spec.chunkservers.replicas: must be at least spec.logicalPool.replicas: every copy needs its own server (got 2 servers, 3 replicas)",
                spec(
                    json!({"chunkservers": {"replicas": 2}, "logicalPool": {"replicas": 2, "zones": 2}}),
                ),
            ),
            (
                spec(
                    json!({"chunkservers": {"replicas": 1}, "logicalPool": {"replicas": 1, "zones": 1}}),
                ),
                "spec.chunkservers: replicas × disksPerNode must be at least 2: Curve's MDS cannot create a logical pool on one ChunkServer (got 1 × 1)",
                spec(
                    json!({"chunkservers": {"replicas": 1, "disksPerNode": 2}, "logicalPool": {"replicas": 1, "zones": 1}}),
                ),
            ),
            (
                spec(json!({"chunkservers": {"disksPerNode": 0}})),
                "spec.chunkservers.disksPerNode: must be between 1 and 32 (got 0)",
                spec(json!({"chunkservers": {"disksPerNode": 32}})),
            ),
            (
                spec(json!({"chunkservers": {"port": 65535, "disksPerNode": 2}})),
                "spec.chunkservers.port: port + disksPerNode - 1 must be at most 65535 (got 65536)",
                spec(json!({"chunkservers": {"port": 65534, "disksPerNode": 2}})),
            ),
            (
                spec(json!({"chunkservers": {"port": 7699, "disksPerNode": 2}})),
                "spec.chunkservers.port: ChunkServer ports 7699-7700 include spec.mds.dummyPort (7700) under host networking",
                spec(json!({"chunkservers": {"port": 7701, "disksPerNode": 2}})),
            ),
            (
                spec(json!({"chunkservers": {"formatPercent": 4}})),
                "spec.chunkservers.formatPercent: must be between 5 and 99 (got 4)",
                spec(json!({"chunkservers": {"formatPercent": 5, "copysets": 1}})),
            ),
            (
                spec(json!({"chunkservers": {"formatPercent": 100}})),
                "spec.chunkservers.formatPercent: must be between 5 and 99 (got 100)",
                spec(json!({"chunkservers": {"formatPercent": 99}})),
            ),
            (
                spec(json!({"chunkservers": {"copysets": 0}})),
                "spec.chunkservers.copysets: must be between 1 and 10000 (got 0)",
                spec(json!({"chunkservers": {"copysets": 10000, "storage": {"size": "1Ti"}}})),
            ),
            (
                spec(json!({"chunkservers": {"storage": {"size": "0"}}})),
                "spec.chunkservers.storage.size: must be a positive quantity such as 10Gi (got \"0\")",
                spec(json!({"chunkservers": {"storage": {"size": "4Gi"}}})),
            ),
            (
                spec(json!({"chunkservers": {"storage": {"size": "3Gi"}}})),
                "spec.chunkservers.storage.size: leaves no room for data: the chunk file pool (formatPercent 90% of the file system, taken as 95% of the volume) must hold the raft log segments of 100 copysets (200 files of 16 MiB + 4 KiB), the 2 files curve_format may leave out and 3% of the volume, so the MDS could allocate nothing; volumes need at least 4150560507 bytes (3.87Gi): raise storage.size or formatPercent, or lower copysets (got \"3Gi\")",
                spec(json!({"chunkservers": {"storage": {"size": "3Gi"}, "copysets": 50}})),
            ),
            // placement
            (
                spec(json!({"placement": {"nodeSelector": {"bad key": "x"}}})),
                "spec.placement.nodeSelector[bad key]: the key must be a label key: an optional DNS-1123 subdomain prefix of at most 253 characters and '/', then a name of at most 63 letters, digits, '-', '_' and '.', starting and ending with a letter or digit (got \"bad key\")",
                spec(json!({"placement": {"nodeSelector": {"curve.opencurve.io/storage": "x"}}})),
            ),
            (
                spec(json!({"placement": {"nodeSelector": {long_key.clone(): "a"}}})),
                &long_key_refusal,
                spec(
                    json!({"placement": {"nodeSelector": {format!("{}/zone", "p".repeat(253)): "a"}}}),
                ),
            ),
            (
                spec(json!({"placement": {"nodeSelector": {"disk": "nvme ssd"}}})),
                "spec.placement.nodeSelector[disk]: must be a label value: empty, or letters, digits, '-', '_' and '.', starting and ending with a letter or digit (got \"nvme ssd\")",
                spec(json!({"placement": {"nodeSelector": {"disk": "nvme_ssd"}}})),
            ),
            (
                spec(json!({"placement": {"nodeSelector": {"disk": "v".repeat(64)}}})),
                "spec.placement.nodeSelector[disk]: must be a label value of at most 63 characters (got 64) (got \"vvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvv\")",
                spec(json!({"placement": {"nodeSelector": {"disk": "v".repeat(63)}}})),
            ),
            (
                spec(
                    json!({"placement": {"nodeSelector": (0..65).map(|i| (format!("k{i}"), json!("v"))).collect::<serde_json::Map<_, _>>()}}),
                ),
                "spec.placement.nodeSelector: must have at most 64 entries (got 65)",
                spec(
                    json!({"placement": {"nodeSelector": (0..64).map(|i| (format!("k{i}"), json!("v"))).collect::<serde_json::Map<_, _>>()}}),
                ),
            ),
            (
                tolerations(json!([{"key": "dedicated", "operator": "In", "value": "curve"}])),
                "spec.placement.tolerations[0].operator: must be one of \"\", \"Equal\", \"Exists\" (got \"In\")",
                tolerations(json!([{"key": "dedicated", "operator": "Equal", "value": "curve"}])),
            ),
            (
                tolerations(json!([{"operator": "Equal", "value": "curve"}])),
                "spec.placement.tolerations[0].operator: must be Exists when key is empty: an empty key with Exists tolerates every taint (got \"Equal\")",
                tolerations(json!([{"operator": "Exists"}])),
            ),
            (
                tolerations(json!([{"key": "dedicated", "operator": "Exists", "value": "curve"}])),
                "spec.placement.tolerations[0].value: must be empty when operator is Exists (got \"curve\")",
                tolerations(json!([{"key": "dedicated", "operator": "Exists"}])),
            ),
            (
                tolerations(json!([{"key": "dedicated", "value": "curve db"}])),
                "spec.placement.tolerations[0].value: must be a label value: empty, or letters, digits, '-', '_' and '.', starting and ending with a letter or digit (got \"curve db\")",
                tolerations(json!([{"key": "dedicated", "value": "curve-db"}])),
            ),
            (
                tolerations(json!([{"key": "dedicated/", "operator": "Exists"}])),
                "spec.placement.tolerations[0].key: must be a label key: an optional DNS-1123 subdomain prefix of at most 253 characters and '/', then a name of at most 63 letters, digits, '-', '_' and '.', starting and ending with a letter or digit (got \"dedicated/\")",
                tolerations(json!([{"key": "example.com/dedicated", "operator": "Exists"}])),
            ),
            (
                tolerations(json!([{"operator": "Exists", "effect": "NoEvict"}])),
                "spec.placement.tolerations[0].effect: must be one of \"\", \"NoSchedule\", \"PreferNoSchedule\", \"NoExecute\" (got \"NoEvict\")",
                tolerations(json!([{"operator": "Exists", "effect": "PreferNoSchedule"}])),
            ),
            (
                tolerations(
                    json!([{"key": "node.kubernetes.io/unreachable", "operator": "Exists", "effect": "NoSchedule", "tolerationSeconds": 60}]),
                ),
                "spec.placement.tolerations[0].tolerationSeconds: is allowed only with effect NoExecute (got 60 seconds with effect \"NoSchedule\")",
                tolerations(
                    json!([{"key": "node.kubernetes.io/unreachable", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 60}]),
                ),
            ),
            (
                tolerations(json!(
                    (0..65)
                        .map(|_| json!({"operator": "Exists"}))
                        .collect::<Vec<_>>()
                )),
                "spec.placement.tolerations: must have at most 64 entries (got 65)",
                tolerations(json!(
                    (0..64)
                        .map(|_| json!({"operator": "Exists"}))
                        .collect::<Vec<_>>()
                )),
            ),
            (
                spec(json!({"placement": {"topologyKey": ""}})),
                "spec.placement.topologyKey: must not be empty",
                spec(json!({"placement": {"topologyKey": "topology.kubernetes.io/zone"}})),
            ),
            (
                spec(json!({"placement": {"topologyKey": "kubernetes.io/host name"}})),
                "spec.placement.topologyKey: must be a label key: an optional DNS-1123 subdomain prefix of at most 253 characters and '/', then a name of at most 63 letters, digits, '-', '_' and '.', starting and ending with a letter or digit (got \"kubernetes.io/host name\")",
                spec(json!({"placement": {"topologyKey": "kubernetes.io/hostname"}})),
            ),
            (
                spec(json!({"placement": {"zoneLabel": "Topology.Kubernetes.io/zone"}})),
                "spec.placement.zoneLabel: must be a label key: an optional DNS-1123 subdomain prefix of at most 253 characters and '/', then a name of at most 63 letters, digits, '-', '_' and '.', starting and ending with a letter or digit (got \"Topology.Kubernetes.io/zone\")",
                spec(json!({"placement": {"zoneLabel": "topology.kubernetes.io/zone"}})),
            ),
            (
                spec(json!({"placement": {"zoneLabel": ""}})),
                "spec.placement.zoneLabel: must not be empty when set",
                spec(json!({"placement": {"zoneLabel": "zone"}})),
            ),
            // logical pool
            (
                spec(json!({"logicalPool": {"zones": 2}})),
                "spec.logicalPool.zones: must equal spec.logicalPool.replicas: Curve's MDS creates a logical pool only when its zone count equals its copy count, each copy in its own zone (got 2 zones, 3 replicas)",
                spec(json!({"logicalPool": {"zones": 2, "replicas": 2}})),
            ),
            (
                spec(json!({"logicalPool": {"zones": 4}, "chunkservers": {"replicas": 4}})),
                "spec.logicalPool.zones: must equal spec.logicalPool.replicas: Curve's MDS creates a logical pool only when its zone count equals its copy count, each copy in its own zone (got 4 zones, 3 replicas)",
                spec(json!({"logicalPool": {"zones": 3}, "chunkservers": {"replicas": 4}})),
            ),
            (
                spec(json!({"logicalPool": {"zones": 4, "replicas": 4}})),
                "spec.logicalPool.zones: must not exceed spec.chunkservers.replicas: every zone needs a server (got 4 zones, 3 servers)",
                spec(
                    json!({"logicalPool": {"zones": 4, "replicas": 4}, "chunkservers": {"replicas": 4}}),
                ),
            ),
            (
                spec(
                    json!({"logicalPool": {"replicas": 6, "zones": 6}, "chunkservers": {"replicas": 6}}),
                ),
                "spec.logicalPool.replicas: must be between 1 and 5 (got 6)",
                spec(
                    json!({"logicalPool": {"replicas": 5, "zones": 5}, "chunkservers": {"replicas": 6}}),
                ),
            ),
            (
                spec(json!({"logicalPool": {"name": "logical pool"}})),
                "spec.logicalPool.name: must be a Curve pool name: 1-63 letters, digits, '-', '_' and '.', starting and ending with a letter or digit (got \"logical pool\")",
                spec(json!({"logicalPool": {"name": "logical_pool.1"}})),
            ),
            (
                spec(json!({"logicalPool": {"physicalPool": ""}})),
                "spec.logicalPool.physicalPool: must not be empty",
                spec(json!({"logicalPool": {"physicalPool": "pool-a"}})),
            ),
            (
                spec(json!({"logicalPool": {"physicalPool": "p".repeat(64)}})),
                &long_pool_refusal,
                spec(json!({"logicalPool": {"physicalPool": "p".repeat(63)}})),
            ),
            (
                spec(json!({"monitoring": {"interval": "99999999999999y"}})),
                "spec.monitoring.interval: must be at most 9223372036854775 seconds: Prometheus holds a duration in int64 milliseconds (got \"99999999999999y\")",
                spec(json!({"monitoring": {"interval": "99999999y"}})),
            ),
            (
                spec(json!({"coreDumps": {"hostPath": "/var/lib/../cores"}})),
                "spec.coreDumps.hostPath: must be an absolute directory other than /, of segments of letters, digits, dots, dashes and underscores, without . or .. segments (got \"/var/lib/../cores\")",
                spec(json!({"coreDumps": {"hostPath": "/var/lib/curve..cores"}})),
            ),
            (
                spec(json!({"coreDumps": {"hostPath": "/"}})),
                "spec.coreDumps.hostPath: must be an absolute directory other than /, of segments of letters, digits, dots, dashes and underscores, without . or .. segments (got \"/\")",
                spec(json!({"coreDumps": {"hostPath": "/core"}})),
            ),
            (
                spec(json!({"coreDumps": {"hostPath": "cores"}})),
                "spec.coreDumps.hostPath: must be an absolute directory other than /, of segments of letters, digits, dots, dashes and underscores, without . or .. segments (got \"cores\")",
                spec(json!({"coreDumps": {"hostPath": "/var/lib/curve/cores"}})),
            ),
            // rollout
            (
                spec(json!({"rollout": {"progressDeadlineSeconds": 5}})),
                "spec.rollout.progressDeadlineSeconds: must be between 10 and 86400 (got 5)",
                spec(json!({"rollout": {"progressDeadlineSeconds": 10}})),
            ),
            (
                spec(json!({"rollout": {"progressDeadlineSeconds": 86401}})),
                "spec.rollout.progressDeadlineSeconds: must be between 10 and 86400 (got 86401)",
                spec(json!({"rollout": {"progressDeadlineSeconds": 86400}})),
            ),
            // etcd restore
            (
                spec(json!({"etcd": {"restore": {"snapshot": "etcd-20260101T0000Z"}}})),
                "spec.etcd.restore.snapshot: must be a snapshot name etcd-<YYYYMMDD>T<hhmmss>Z (got \"etcd-20260101T0000Z\")",
                spec(json!({"etcd": {"restore": {"snapshot": "etcd-20260101T000000Z"}}})),
            ),
            (
                spec(
                    json!({"etcd": {"restore": {"snapshot": "etcd-20260101T000000Z", "confirmation": "yes-restore-etcd-from-etcd-20251231T000000Z"}}}),
                ),
                "spec.etcd.restore.confirmation: must be \"yes-restore-etcd-from-etcd-20260101T000000Z\" when set (got \"yes-restore-etcd-from-etcd-20251231T000000Z\")",
                spec(
                    json!({"etcd": {"restore": {"snapshot": "etcd-20260101T000000Z", "confirmation": "yes-restore-etcd-from-etcd-20260101T000000Z"}}}),
                ),
            ),
            // cleanup
            (
                spec(json!({"cleanup": {"policy": "Delete", "confirmation": "yes"}})),
                "spec.cleanup.confirmation: must be \"yes-really-destroy-data\" when set (got \"yes\")",
                spec(
                    json!({"cleanup": {"policy": "Delete", "confirmation": "yes-really-destroy-data"}}),
                ),
            ),
        ];
        assert!(table.len() >= 60);
        for (refused, expected, accepted) in table {
            let errors = errors_for(refused.clone());
            if expected.is_empty() {
                assert_eq!(errors, Vec::<String>::new(), "{refused}");
            } else {
                assert!(
                    errors.contains(&expected.to_string()),
                    "patch {refused}: expected {expected:?}, got {errors:?}"
                );
            }
            assert_eq!(
                errors_for(accepted.clone()),
                Vec::<String>::new(),
                "patch {accepted} must be valid"
            );
        }
    }

    #[test]
    fn all_problems_are_collected_not_only_the_first() {
        let errors = errors_for(json!({"spec": {
            "image": "", "etcd": {"replicas": 4}, "mds": {"replicas": 0}, "chunkservers": {"formatPercent": 101}
        }}));
        assert_eq!(
            errors,
            vec![
                "spec.image: must name a Curve image (got \"\")",
                "spec.etcd.replicas: must be 1, 3, 5 or 7 (got 4)",
                "spec.mds.replicas: must be between 1 and 9 (got 0)",
                "spec.chunkservers.formatPercent: must be between 5 and 99 (got 101)",
            ]
        );
    }

    #[test]
    fn a_slot_increase_is_refused_only_on_servers_registered_with_a_fixed_port() {
        let mut cs: crate::api::ChunkServerSpec = serde_json::from_value(
            json!({"replicas": 3, "disksPerNode": 2, "storage": {"size": "100Gi"}}),
        )
        .unwrap();
        assert_eq!(
            check_slot_increase(1, &cs, 8200).map(|e| e.to_string()),
            Some("spec.chunkservers.disksPerNode: cannot grow from 1 to 2: Curve registered this cluster's servers with port 8200 (its pool was created with one disk slot per node), and such a server admits only the ChunkServer of that port, so the new slots could never register".into())
        );
        assert_eq!(check_slot_increase(1, &cs, 0), None);
        assert_eq!(check_slot_increase(2, &cs, 8200), None, "no increase");
        cs.disks_per_node = 1;
        assert_eq!(check_slot_increase(2, &cs, 8200), None);
    }

    #[test]
    fn a_pool_too_small_for_its_raft_logs_is_refused_with_the_size_it_needs() {
        let errors_of = |chunkservers: serde_json::Value| {
            errors_for(json!({"spec": {"chunkservers": chunkservers}}))
        };
        // 100 copysets at 90 %: 4150560507 bytes (capacity::min_volume_bytes).
        assert_eq!(
            errors_of(json!({"storage": {"size": "4150560506"}})),
            vec![
                "spec.chunkservers.storage.size: leaves no room for data: the chunk file pool (formatPercent 90% of the file system, taken as 95% of the volume) must hold the raft log segments of 100 copysets (200 files of 16 MiB + 4 KiB), the 2 files curve_format may leave out and 3% of the volume, so the MDS could allocate nothing; volumes need at least 4150560507 bytes (3.87Gi): raise storage.size or formatPercent, or lower copysets (got \"4150560506\")"
            ]
        );
        assert_eq!(
            errors_of(json!({"storage": {"size": "4150560507"}})),
            Vec::<String>::new()
        );
        assert_eq!(
            errors_of(json!({"storage": {"size": "1Gi"}, "copysets": 20})),
            Vec::<String>::new()
        );
        assert_eq!(
            errors_of(json!({"storage": {"size": "1Gi"}, "formatPercent": 20, "copysets": 20})),
            vec![
                "spec.chunkservers.storage.size: leaves no room for data: the chunk file pool (formatPercent 20% of the file system, taken as 95% of the volume) must hold the raft log segments of 20 copysets (40 files of 16 MiB + 4 KiB), the 2 files curve_format may leave out and 3% of the volume, so the MDS could allocate nothing; volumes need at least 4639841375 bytes (4.32Gi): raise storage.size or formatPercent, or lower copysets (got \"1Gi\")"
            ]
        );
        // Where the pool needs less than 1Gi, the floor is what refuses: ext4 keeps too much
        // of a smaller volume.
        assert_eq!(
            errors_of(json!({"storage": {"size": "10Mi"}, "copysets": 1})),
            vec![
                "spec.chunkservers.storage.size: must be at least 1Gi: ext4 keeps more than 5% of a smaller volume for its own metadata, and curve_format sizes the chunk file pool from the file system (got \"10Mi\")"
            ]
        );
        assert_eq!(
            errors_of(json!({"storage": {"size": "512Mi"}, "copysets": 1})),
            vec![
                "spec.chunkservers.storage.size: must be at least 1Gi: ext4 keeps more than 5% of a smaller volume for its own metadata, and curve_format sizes the chunk file pool from the file system (got \"512Mi\")"
            ]
        );
        // Out of range fields are named by their own rules alone.
        assert_eq!(
            errors_of(json!({"storage": {"size": "1Gi"}, "formatPercent": 4})),
            vec!["spec.chunkservers.formatPercent: must be between 5 and 99 (got 4)"]
        );
    }

    #[test]
    fn pod_networking_is_refused_with_the_reason() {
        assert_eq!(
            errors_for(json!({"spec": {"hostNetwork": false}})),
            vec![
                "spec.hostNetwork: must be true (got false): Curve identifies MDS and ChunkServers by ip:port, and pod IPs change at every restart, which breaks a ChunkServer's copysets"
            ]
        );
    }

    #[test]
    fn the_examples_are_valid() {
        for example in [
            "examples/curvecluster.yaml",
            "examples/curvecluster-production.yaml",
            "examples/curvecluster-monitored.yaml",
        ] {
            let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(example);
            let raw: Value =
                serde_saphyr::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
            let cluster = parse_cluster(&raw).unwrap_or_else(|e| panic!("{example}: {e}"));
            validate(&cluster, "default").unwrap_or_else(|e| panic!("{example}: {e}"));
        }
    }

    /// The longest valid cluster name with the most disk slots and pods: every name the builders
    /// derive fits its kind, so the derived-name guard never fires for a valid name.
    #[test]
    fn every_derived_name_fits_for_the_longest_cluster_name() {
        let mut value = minimal();
        crate::util::merge_json(
            &mut value,
            &json!({"metadata": {"name": "c".repeat(MAX_CLUSTER_NAME_LEN)},
                    "spec": {"etcd": {"replicas": 7}, "mds": {"replicas": 9},
                             "chunkservers": {"replicas": 1000, "disksPerNode": 32}}}),
        );
        let cluster = validate(&parse_cluster(&value).unwrap(), "default").expect("valid");
        let names = derived_names(&cluster);
        assert!(
            names
                .iter()
                .any(|n| n.kind == "Pod"
                    && n.name == format!("{}-chunkserver-31-999", "c".repeat(30)))
        );
        for derived in &names {
            assert!(
                derived.name.len() <= derived.max_len,
                "{} {} is {} characters",
                derived.kind,
                derived.name,
                derived.name.len()
            );
            assert_eq!((derived.grammar)(&derived.name), None, "{}", derived.name);
        }
        // A longer name than the CRD admits would break the longest: the guard names it.
        let mut longer = cluster.clone();
        longer.name = "c".repeat(45);
        let mut errors = Errors::default();
        check_derived_names(&longer, &mut errors);
        let messages: Vec<String> = errors.0.iter().map(ToString::to_string).collect();
        assert!(
            messages.contains(&format!(
                "metadata.name: derives the StatefulSet name \"{0}-chunkserver-31\" (60 characters), which must be at most 52 characters (got \"{0}\")",
                "c".repeat(45)
            )),
            "{messages:?}"
        );
        assert!(
            messages.iter().any(|m| m.contains("derives the Pod name")
                && m.contains("must be at most 63 characters")),
            "{messages:?}"
        );
    }

    #[test]
    fn data_is_deleted_only_with_policy_and_confirmation() {
        use crate::api::{CleanupPolicy, CleanupSpec};
        let with = |policy, confirmation: Option<&str>| CleanupSpec {
            policy,
            confirmation: confirmation.map(String::from),
        };
        assert!(!with(CleanupPolicy::Retain, None).deletes_data());
        assert!(!with(CleanupPolicy::Delete, None).deletes_data());
        assert!(!with(CleanupPolicy::Retain, Some(DELETE_DATA_CONFIRMATION)).deletes_data());
        assert!(with(CleanupPolicy::Delete, Some(DELETE_DATA_CONFIRMATION)).deletes_data());
    }
}
