//! spec → [`ValidatedCluster`]: pure, collects every problem, each naming its field path.
//!
//! The CRD's CEL rules reject most bad input at the API server; this step repeats them (a
//! CurveCluster may predate a rule, and `render` has no API server) and adds what CEL cannot
//! judge, such as the cluster's namespace.

use std::fmt;

use crate::api::{CurveCluster, CurveClusterSpec, MAX_CLUSTER_NAME_LEN, StorageSpec};

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
    if name.is_empty() {
        errors.push("metadata.name", "must be set".into());
    } else {
        check_dns_label(&mut errors, "metadata.name", &name, MAX_CLUSTER_NAME_LEN);
    }
    let namespace = cluster.metadata.namespace.clone().unwrap_or_else(|| default_namespace.to_string());
    if namespace.is_empty() {
        errors.push("metadata.namespace", "must be set".into());
    }
    validate_spec_into(&cluster.spec, &mut errors);
    if errors.0.is_empty() {
        Ok(ValidatedCluster { name, namespace, uid: cluster.metadata.uid.clone(), spec: cluster.spec.clone() })
    } else {
        Err(InvalidCluster(errors.0))
    }
}

/// Every problem of a spec (empty when valid).
pub fn validate_spec(spec: &CurveClusterSpec) -> Vec<FieldError> {
    let mut errors = Errors::default();
    validate_spec_into(spec, &mut errors);
    errors.0
}

#[derive(Default)]
struct Errors(Vec<FieldError>);

impl Errors {
    fn push(&mut self, path: &str, message: String) {
        self.0.push(FieldError { path: path.to_string(), message });
    }

    fn range(&mut self, path: &str, value: i32, min: i32, max: i32) {
        if !(min..=max).contains(&value) {
            self.push(path, format!("must be between {min} and {max} (got {value})"));
        }
    }
}

fn validate_spec_into(spec: &CurveClusterSpec, errors: &mut Errors) {
    if spec.image.trim().is_empty() {
        errors.push("spec.image", "must name a Curve image (got \"\")".into());
    }
    for (i, secret) in spec.image_pull_secrets.iter().enumerate() {
        check_dns_label(errors, &format!("spec.imagePullSecrets[{i}]"), secret, 253);
    }

    let etcd = &spec.etcd;
    if ![1, 3, 5, 7].contains(&etcd.replicas) {
        errors.push("spec.etcd.replicas", format!("must be 1, 3, 5 or 7 (got {})", etcd.replicas));
    }
    errors.range("spec.etcd.clientPort", etcd.client_port, 1, 65535);
    errors.range("spec.etcd.peerPort", etcd.peer_port, 1, 65535);
    if etcd.client_port == etcd.peer_port {
        errors.push("spec.etcd.peerPort", format!("must differ from spec.etcd.clientPort (got {} for both)", etcd.peer_port));
    }
    check_storage(errors, "spec.etcd.storage", &etcd.storage);

    let mds = &spec.mds;
    errors.range("spec.mds.replicas", mds.replicas, 1, 9);
    errors.range("spec.mds.port", mds.port, 1, 65535);
    errors.range("spec.mds.dummyPort", mds.dummy_port, 1, 65535);
    if mds.port == mds.dummy_port {
        errors.push("spec.mds.dummyPort", format!("must differ from spec.mds.port (got {} for both)", mds.port));
    }

    let cs = &spec.chunkservers;
    errors.range("spec.chunkservers.replicas", cs.replicas, 1, 1000);
    errors.range("spec.chunkservers.disksPerNode", cs.disks_per_node, 1, 32);
    errors.range("spec.chunkservers.port", cs.port, 1, 65535);
    if cs.port >= 1 && cs.disks_per_node >= 1 && cs.port + cs.disks_per_node - 1 > 65535 {
        errors.push(
            "spec.chunkservers.port",
            format!("port + disksPerNode - 1 must be at most 65535 (got {})", cs.port + cs.disks_per_node - 1),
        );
    }
    errors.range("spec.chunkservers.copysets", cs.copysets, 1, 10000);
    errors.range("spec.chunkservers.formatPercent", cs.format_percent, 1, 100);
    check_storage(errors, "spec.chunkservers.storage", &cs.storage);

    if spec.host_network {
        check_host_port_collisions(spec, errors);
    }

    let pool = &spec.logical_pool;
    errors.range("spec.logicalPool.replicas", pool.replicas, 1, 5);
    errors.range("spec.logicalPool.zones", pool.zones, 1, 32);
    if pool.name.is_empty() {
        errors.push("spec.logicalPool.name", "must not be empty".into());
    }
    if pool.physical_pool.is_empty() {
        errors.push("spec.logicalPool.physicalPool", "must not be empty".into());
    }
    if pool.replicas > pool.zones {
        errors.push(
            "spec.logicalPool.replicas",
            format!(
                "must not exceed spec.logicalPool.zones: Curve places each copy in its own zone (got {} replicas, {} zones)",
                pool.replicas, pool.zones
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
    if cs.replicas < pool.zones {
        errors.push(
            "spec.logicalPool.zones",
            format!(
                "must not exceed spec.chunkservers.replicas: every zone needs a server (got {} zones, {} servers)",
                pool.zones, cs.replicas
            ),
        );
    }

    if spec.placement.topology_key.is_empty() {
        errors.push("spec.placement.topologyKey", "must not be empty".into());
    }
    if spec.placement.zone_label.as_deref() == Some("") {
        errors.push("spec.placement.zoneLabel", "must not be empty when set".into());
    }
    if let Some(confirmation) = &spec.cleanup.confirmation {
        if confirmation != crate::api::DELETE_DATA_CONFIRMATION {
            errors.push(
                "spec.cleanup.confirmation",
                format!("must be \"{}\" when set (got \"{confirmation}\")", crate::api::DELETE_DATA_CONFIRMATION),
            );
        }
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
                errors.push(path_b, format!("collides with {path_a} under host networking (got {b} for both)"));
            }
        }
    }
    let chunk_ports = cs.port..cs.port + cs.disks_per_node.max(1);
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

fn check_storage(errors: &mut Errors, path: &str, storage: &StorageSpec) {
    match parse_quantity(&storage.size) {
        Some(bytes) if bytes > 0.0 => {}
        _ => errors.push(&format!("{path}.size"), format!("must be a positive quantity such as 10Gi (got \"{}\")", storage.size)),
    }
    if let Some(class) = &storage.storage_class_name {
        if class.is_empty() {
            errors.push(&format!("{path}.storageClassName"), "must not be empty when set".into());
        }
    }
}

fn check_dns_label(errors: &mut Errors, path: &str, value: &str, max_len: usize) {
    let valid_chars = value.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '.');
    let valid_ends = value.starts_with(|c: char| c.is_ascii_alphanumeric()) && value.ends_with(|c: char| c.is_ascii_alphanumeric());
    if !valid_chars || !valid_ends {
        errors.push(path, format!("must be lower-case letters, digits and '-', starting and ending alphanumeric (got \"{value}\")"));
    }
    if value.len() > max_len {
        errors.push(path, format!("must be at most {max_len} characters (got {})", value.len()));
    }
}

/// Parses a Kubernetes quantity (`10Gi`, `500M`, `1.5T`, `100`) into its plain value.
pub fn parse_quantity(text: &str) -> Option<f64> {
    let split = text.find(|c: char| !(c.is_ascii_digit() || c == '.' || c == '+' || c == '-')).unwrap_or(text.len());
    let (number, suffix) = text.split_at(split);
    let number: f64 = number.parse().ok()?;
    let factor = match suffix {
        "" => 1.0,
        "m" => 1e-3,
        "k" => 1e3,
        "M" => 1e6,
        "G" => 1e9,
        "T" => 1e12,
        "P" => 1e15,
        "E" => 1e18,
        "Ki" => 1024f64,
        "Mi" => 1024f64.powi(2),
        "Gi" => 1024f64.powi(3),
        "Ti" => 1024f64.powi(4),
        "Pi" => 1024f64.powi(5),
        "Ei" => 1024f64.powi(6),
        _ => {
            let exponent: i32 = suffix.strip_prefix(['e', 'E'])?.parse().ok()?;
            10f64.powi(exponent)
        }
    };
    number.is_finite().then_some(number * factor)
}
