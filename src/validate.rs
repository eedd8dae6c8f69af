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
    let namespace = cluster
        .metadata
        .namespace
        .clone()
        .unwrap_or_else(|| default_namespace.to_string());
    if namespace.is_empty() {
        errors.push("metadata.namespace", "must be set".into());
    }
    validate_spec_into(&cluster.spec, &mut errors);
    if errors.0.is_empty() {
        Ok(ValidatedCluster {
            name,
            namespace,
            uid: cluster.metadata.uid.clone(),
            spec: cluster.spec.clone(),
        })
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
        self.0.push(FieldError {
            path: path.to_string(),
            message,
        });
    }

    fn range(&mut self, path: &str, value: i32, min: i32, max: i32) {
        if !(min..=max).contains(&value) {
            self.push(
                path,
                format!("must be between {min} and {max} (got {value})"),
            );
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
        errors.push(
            "spec.etcd.replicas",
            format!("must be 1, 3, 5 or 7 (got {})", etcd.replicas),
        );
    }
    errors.range("spec.etcd.clientPort", etcd.client_port, 1, 65535);
    errors.range("spec.etcd.peerPort", etcd.peer_port, 1, 65535);
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

    let mds = &spec.mds;
    errors.range("spec.mds.replicas", mds.replicas, 1, 9);
    errors.range("spec.mds.port", mds.port, 1, 65535);
    errors.range("spec.mds.dummyPort", mds.dummy_port, 1, 65535);
    if mds.port == mds.dummy_port {
        errors.push(
            "spec.mds.dummyPort",
            format!("must differ from spec.mds.port (got {} for both)", mds.port),
        );
    }

    let cs = &spec.chunkservers;
    errors.range("spec.chunkservers.replicas", cs.replicas, 1, 1000);
    errors.range("spec.chunkservers.disksPerNode", cs.disks_per_node, 1, 32);
    errors.range("spec.chunkservers.port", cs.port, 1, 65535);
    if cs.port >= 1 && cs.disks_per_node >= 1 && cs.port + cs.disks_per_node - 1 > 65535 {
        errors.push(
            "spec.chunkservers.port",
            format!(
                "port + disksPerNode - 1 must be at most 65535 (got {})",
                cs.port + cs.disks_per_node - 1
            ),
        );
    }
    errors.range("spec.chunkservers.copysets", cs.copysets, 1, 10000);
    errors.range("spec.chunkservers.formatPercent", cs.format_percent, 1, 99);
    check_storage(errors, "spec.chunkservers.storage", &cs.storage);

    if spec.host_network {
        check_host_port_collisions(spec, errors);
    } else {
        errors.push(
            "spec.hostNetwork",
            "must be true (got false): Curve identifies MDS and ChunkServers by ip:port, and pod IPs change at every restart, which breaks a ChunkServer's copysets".into(),
        );
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
        errors.push(
            "spec.placement.zoneLabel",
            "must not be empty when set".into(),
        );
    }
    if let Some(confirmation) = &spec.cleanup.confirmation
        && confirmation != crate::api::DELETE_DATA_CONFIRMATION
    {
        errors.push(
            "spec.cleanup.confirmation",
            format!(
                "must be \"{}\" when set (got \"{confirmation}\")",
                crate::api::DELETE_DATA_CONFIRMATION
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
        _ => errors.push(
            &format!("{path}.size"),
            format!(
                "must be a positive quantity such as 10Gi (got \"{}\")",
                storage.size
            ),
        ),
    }
    if let Some(class) = &storage.storage_class_name
        && class.is_empty()
    {
        errors.push(
            &format!("{path}.storageClassName"),
            "must not be empty when set".into(),
        );
    }
}

fn check_dns_label(errors: &mut Errors, path: &str, value: &str, max_len: usize) {
    let valid_chars = value
        .chars()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '.');
    let valid_ends = value.starts_with(|c: char| c.is_ascii_alphanumeric())
        && value.ends_with(|c: char| c.is_ascii_alphanumeric());
    if !valid_chars || !valid_ends {
        errors.push(path, format!("must be lower-case letters, digits and '-', starting and ending alphanumeric (got \"{value}\")"));
    }
    if value.len() > max_len {
        errors.push(
            path,
            format!("must be at most {max_len} characters (got {})", value.len()),
        );
    }
}

/// Parses a Kubernetes quantity (`10Gi`, `500M`, `1.5T`, `100`) into its plain value.
pub fn parse_quantity(text: &str) -> Option<f64> {
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.' || c == '+' || c == '-'))
        .unwrap_or(text.len());
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::CurveCluster;

    fn minimal() -> serde_json::Value {
        serde_json::json!({
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
    fn errors_for(patch: serde_json::Value) -> Vec<String> {
        let mut value = minimal();
        crate::util::merge_json(&mut value, &patch);
        let cluster: CurveCluster = serde_json::from_value(value).expect("patched cluster parses");
        match validate(&cluster, "default") {
            Ok(_) => Vec::new(),
            Err(InvalidCluster(errors)) => errors.iter().map(ToString::to_string).collect(),
        }
    }

    #[test]
    fn minimal_cluster_is_valid_with_documented_defaults() {
        let cluster: CurveCluster = serde_json::from_value(minimal()).unwrap();
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

    #[test]
    fn every_invalid_spec_is_reported_with_its_field_and_value() {
        use serde_json::json;
        let table: Vec<(serde_json::Value, &str)> = vec![
            (
                json!({"spec": {"image": ""}}),
                "spec.image: must name a Curve image (got \"\")",
            ),
            (
                json!({"spec": {"etcd": {"replicas": 2}}}),
                "spec.etcd.replicas: must be 1, 3, 5 or 7 (got 2)",
            ),
            (
                json!({"spec": {"etcd": {"replicas": 0}}}),
                "spec.etcd.replicas: must be 1, 3, 5 or 7 (got 0)",
            ),
            (
                json!({"spec": {"etcd": {"clientPort": 0}}}),
                "spec.etcd.clientPort: must be between 1 and 65535 (got 0)",
            ),
            (
                json!({"spec": {"etcd": {"peerPort": 70000}}}),
                "spec.etcd.peerPort: must be between 1 and 65535 (got 70000)",
            ),
            (
                json!({"spec": {"etcd": {"peerPort": 2379}}}),
                "spec.etcd.peerPort: must differ from spec.etcd.clientPort (got 2379 for both)",
            ),
            (
                json!({"spec": {"etcd": {"storage": {"size": "lots"}}}}),
                "spec.etcd.storage.size: must be a positive quantity such as 10Gi (got \"lots\")",
            ),
            (
                json!({"spec": {"mds": {"replicas": 0}}}),
                "spec.mds.replicas: must be between 1 and 9 (got 0)",
            ),
            (
                json!({"spec": {"mds": {"replicas": -1}}}),
                "spec.mds.replicas: must be between 1 and 9 (got -1)",
            ),
            (
                json!({"spec": {"mds": {"dummyPort": 6700}}}),
                "spec.mds.dummyPort: must differ from spec.mds.port (got 6700 for both)",
            ),
            (
                json!({"spec": {"mds": {"port": 2379}}}),
                "spec.mds.port: collides with spec.etcd.clientPort under host networking (got 2379 for both)",
            ),
            (
                json!({"spec": {"chunkservers": {"replicas": 0}}}),
                "spec.chunkservers.replicas: must be between 1 and 1000 (got 0)",
            ),
            (
                json!({"spec": {"chunkservers": {"replicas": 2}}}),
                "spec.chunkservers.replicas: must be at least spec.logicalPool.replicas: every copy needs its own server (got 2 servers, 3 replicas)",
            ),
            (
                json!({"spec": {"chunkservers": {"disksPerNode": 0}}}),
                "spec.chunkservers.disksPerNode: must be between 1 and 32 (got 0)",
            ),
            (
                json!({"spec": {"chunkservers": {"port": 65535, "disksPerNode": 2}}}),
                "spec.chunkservers.port: port + disksPerNode - 1 must be at most 65535 (got 65536)",
            ),
            (
                json!({"spec": {"chunkservers": {"port": 7699, "disksPerNode": 2}}}),
                "spec.chunkservers.port: ChunkServer ports 7699-7700 include spec.mds.dummyPort (7700) under host networking",
            ),
            (
                json!({"spec": {"chunkservers": {"formatPercent": 0}}}),
                "spec.chunkservers.formatPercent: must be between 1 and 99 (got 0)",
            ),
            (
                json!({"spec": {"chunkservers": {"formatPercent": 100}}}),
                "spec.chunkservers.formatPercent: must be between 1 and 99 (got 100)",
            ),
            (
                json!({"spec": {"chunkservers": {"copysets": 0}}}),
                "spec.chunkservers.copysets: must be between 1 and 10000 (got 0)",
            ),
            (
                json!({"spec": {"chunkservers": {"storage": {"size": "0"}}}}),
                "spec.chunkservers.storage.size: must be a positive quantity such as 10Gi (got \"0\")",
            ),
            (
                json!({"spec": {"chunkservers": {"storage": {"size": "1Gi", "storageClassName": ""}}}}),
                "spec.chunkservers.storage.storageClassName: must not be empty when set",
            ),
            (
                json!({"spec": {"logicalPool": {"zones": 2}}}),
                "spec.logicalPool.replicas: must not exceed spec.logicalPool.zones: Curve places each copy in its own zone (got 3 replicas, 2 zones)",
            ),
            (
                json!({"spec": {"logicalPool": {"zones": 4}}}),
                "spec.logicalPool.zones: must not exceed spec.chunkservers.replicas: every zone needs a server (got 4 zones, 3 servers)",
            ),
            (
                json!({"spec": {"placement": {"topologyKey": ""}}}),
                "spec.placement.topologyKey: must not be empty",
            ),
            (
                json!({"spec": {"cleanup": {"policy": "Delete", "confirmation": "yes"}}}),
                "spec.cleanup.confirmation: must be \"yes-really-destroy-data\" when set (got \"yes\")",
            ),
            (
                json!({"metadata": {"name": "a-very-long-cluster-name-beyond-thirty"}}),
                "metadata.name: must be at most 30 characters (got 38)",
            ),
            (
                json!({"metadata": {"name": "Demo_1"}}),
                "metadata.name: must be lower-case letters, digits and '-', starting and ending alphanumeric (got \"Demo_1\")",
            ),
            (
                json!({"spec": {"imagePullSecrets": ["Bad Name"]}}),
                "spec.imagePullSecrets[0]: must be lower-case letters, digits and '-', starting and ending alphanumeric (got \"Bad Name\")",
            ),
        ];
        assert!(table.len() >= 15);
        for (patch, expected) in table {
            let errors = errors_for(patch.clone());
            assert!(
                errors.contains(&expected.to_string()),
                "patch {patch}: expected {expected:?}, got {errors:?}"
            );
        }
    }

    #[test]
    fn all_problems_are_collected_not_only_the_first() {
        let errors = errors_for(serde_json::json!({"spec": {
            "image": "", "etcd": {"replicas": 4}, "mds": {"replicas": 0}, "chunkservers": {"formatPercent": 101}
        }}));
        assert_eq!(
            errors,
            vec![
                "spec.image: must name a Curve image (got \"\")",
                "spec.etcd.replicas: must be 1, 3, 5 or 7 (got 4)",
                "spec.mds.replicas: must be between 1 and 9 (got 0)",
                "spec.chunkservers.formatPercent: must be between 1 and 99 (got 101)",
            ]
        );
    }

    #[test]
    fn pod_networking_is_refused_with_the_reason() {
        assert_eq!(
            errors_for(serde_json::json!({"spec": {"hostNetwork": false}})),
            vec![
                "spec.hostNetwork: must be true (got false): Curve identifies MDS and ChunkServers by ip:port, and pod IPs change at every restart, which breaks a ChunkServer's copysets"
            ]
        );
    }

    #[test]
    fn quantities_parse_like_kubernetes() {
        assert_eq!(parse_quantity("10Gi"), Some(10.0 * 1024f64.powi(3)));
        assert_eq!(parse_quantity("500M"), Some(5e8));
        assert_eq!(parse_quantity("1.5Ti"), Some(1.5 * 1024f64.powi(4)));
        assert_eq!(parse_quantity("100"), Some(100.0));
        assert_eq!(parse_quantity("1e3"), Some(1000.0));
        assert_eq!(parse_quantity("10GB"), None);
        assert_eq!(parse_quantity(""), None);
        assert_eq!(parse_quantity("Gi"), None);
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
        assert!(
            !with(
                CleanupPolicy::Retain,
                Some(crate::api::DELETE_DATA_CONFIRMATION)
            )
            .deletes_data()
        );
        assert!(
            with(
                CleanupPolicy::Delete,
                Some(crate::api::DELETE_DATA_CONFIRMATION)
            )
            .deletes_data()
        );
    }
}
