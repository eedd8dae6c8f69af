//! `curve-operator render`: a CurveCluster manifest → every object the operator would create,
//! Jobs included, exactly as it would apply them for an example placement stated at the top.
//!
//! The operator builds some objects from what it observes (the pods' addresses, the nodes
//! running ChunkServers). Offline there is nothing to observe, so render places the pods on
//! `node-1..N` with documentation addresses (192.0.2.x, RFC 5737) and builds from that: what a
//! user reads is what would run, addresses included.

use serde_json::Value;

use crate::api::CurveCluster;
use crate::build::common::component_name;
use crate::build::config::DaemonAddresses;
use crate::build::{self, Component, Observed, ObservedServer, typed_value};
use crate::reconcile::plan::{Object, applied, tier_objects};
use crate::validate::{FieldError, ValidatedCluster, validate};

#[derive(Debug, thiserror::Error)]
pub enum RenderError {
    #[error("cannot parse the CurveCluster: {0}")]
    Parse(String),
    #[error("the CurveCluster is invalid:\n{}", .0.iter().map(|e| format!("  {e}")).collect::<Vec<_>>().join("\n"))]
    Invalid(Vec<FieldError>),
}

/// Parses one CurveCluster from YAML as the API server would store it (defaults applied, a
/// `null` of a defaulted field dropped); a field that cannot be read is an [`RenderError::Invalid`]
/// naming its path, like any other invalid field.
pub fn parse_cluster(yaml: &str) -> Result<CurveCluster, RenderError> {
    let value: serde_json::Value =
        serde_saphyr::from_str(yaml).map_err(|e| RenderError::Parse(e.to_string()))?;
    let kind = value
        .get("kind")
        .and_then(|k| k.as_str())
        .unwrap_or_default();
    let api_version = value
        .get("apiVersion")
        .and_then(|k| k.as_str())
        .unwrap_or_default();
    let expected = format!("{}/{}", crate::api::GROUP, crate::api::VERSION);
    if kind != "CurveCluster" || api_version != expected {
        return Err(RenderError::Parse(format!(
            "expected apiVersion {expected}, kind CurveCluster (got apiVersion \"{api_version}\", kind \"{kind}\")"
        )));
    }
    crate::validate::parse_cluster(&value).map_err(|invalid| RenderError::Invalid(invalid.0))
}

/// The password shown in the rendered root Secret: the operator generates a random one once.
pub const EXAMPLE_PASSWORD: &str = "<generated: 32 random letters and digits>";

/// Where render places the pods: ordinal `i` of every component on `node-(i+1)`, whose
/// address is `192.0.2.(i+1)` (host networking: a pod's IP is its node's).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExamplePlacement {
    pub nodes: Vec<ExampleNode>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExampleNode {
    pub name: String,
    pub ip: String,
    /// The pods placed on this node.
    pub pods: Vec<String>,
}

impl ExamplePlacement {
    pub fn of(cluster: &ValidatedCluster) -> Self {
        let spec = &cluster.spec;
        let mut sets: Vec<(String, i32)> = vec![
            (component_name(cluster, Component::Etcd), spec.etcd.replicas),
            (component_name(cluster, Component::Mds), spec.mds.replicas),
        ];
        sets.extend((0..spec.chunkservers.disks_per_node).map(|slot| {
            (
                build::chunkserver::slot_set_name(cluster, slot),
                spec.chunkservers.replicas,
            )
        }));
        let count = sets
            .iter()
            .map(|(_, replicas)| *replicas)
            .max()
            .unwrap_or(0);
        let nodes = (0..count)
            .map(|ordinal| ExampleNode {
                name: format!("node-{}", ordinal + 1),
                ip: format!("192.0.2.{}", ordinal + 1),
                pods: sets
                    .iter()
                    .filter(|(_, replicas)| ordinal < *replicas)
                    .map(|(set, _)| format!("{set}-{ordinal}"))
                    .collect(),
            })
            .collect();
        ExamplePlacement { nodes }
    }

    fn ip(&self, ordinal: i32) -> &str {
        &self.nodes[ordinal as usize].ip
    }

    /// What the operator would observe with the pods placed so and every Job succeeded.
    pub fn observed(&self, cluster: &ValidatedCluster) -> Observed {
        let spec = &cluster.spec;
        let addresses = |replicas: i32, port: i32| {
            (0..replicas)
                .map(|i| format!("{}:{port}", self.ip(i)))
                .collect()
        };
        Observed {
            servers: (0..spec.chunkservers.replicas)
                .map(|i| ObservedServer {
                    node: self.nodes[i as usize].name.clone(),
                    host_ip: self.ip(i).to_string(),
                    zone: None,
                })
                .collect(),
            known_servers: Vec::new(),
            pools: build::topology::PoolProgress::default(),
            addresses: Some(DaemonAddresses {
                mds: addresses(spec.mds.replicas, spec.mds.port),
                etcd: addresses(spec.etcd.replicas, spec.etcd.client_port),
            }),
        }
    }

    /// The header of the rendered stream: the placement, and what differs in a real run.
    fn header(&self, cluster: &ValidatedCluster) -> String {
        let mut text = format!(
            "# Every object curve-operator creates for CurveCluster {}/{}, in the order it creates them,\n\
             # for this example placement (a running operator reads the real one from the pods):\n",
            cluster.namespace, cluster.name
        );
        for node in &self.nodes {
            text.push_str(&format!(
                "#   {} ({}): {}\n",
                node.name,
                node.ip,
                node.pods.join(", ")
            ));
        }
        text.push_str(&format!(
            "# Host networking: each pod's IP is its node's, and Curve's daemons and tools are given those IPs.\n\
             # The Secret {} is created once with a random password (shown as {EXAMPLE_PASSWORD}).\n\
             # The topology Jobs run one after another, each once the one before succeeded; the ConfigMap\n\
             # {} records their progress (physical-pool-servers, logical-pool-created).\n",
            build::common::root_secret_name(cluster),
            component_name(cluster, Component::Topology),
        ));
        if cluster.spec.placement.zone_label.is_some() {
            text.push_str("# Zones: these example nodes carry no zone label, so zones are assigned zone1..zoneN in turn.\n");
        }
        text
    }
}

/// Every object in creation order, each as the operator applies it: the etcd tier, the root
/// Secret, the MDS tier, the topology map, the ChunkServer tier, then the pool Jobs.
pub fn objects(cluster: &ValidatedCluster, placement: &ExamplePlacement) -> Vec<Value> {
    let observed = placement.observed(cluster);
    let desired = build::build(cluster, &observed);
    let tier = |tier: &build::Tier| -> Vec<Value> {
        tier_objects(tier).into_iter().map(applied).collect()
    };
    let mut values = tier(&desired.etcd);
    values.push(typed_value(&build::secret::root_secret(
        cluster,
        EXAMPLE_PASSWORD,
    )));
    values.extend(tier(&desired.mds));
    values.push(applied(Object::ConfigMap(desired.topology.clone())));
    values.extend(tier(&desired.chunkservers));
    values.extend(desired.jobs.iter().map(typed_value));
    values
}

/// The multi-document YAML stream of every object, after a header stating the placement.
pub fn render(yaml: &str, namespace: &str) -> Result<String, RenderError> {
    let cluster = parse_cluster(yaml)?;
    let validated =
        validate(&cluster, namespace).map_err(|invalid| RenderError::Invalid(invalid.0))?;
    let placement = ExamplePlacement::of(&validated);
    let mut out = placement.header(&validated);
    for value in objects(&validated, &placement) {
        out.push_str("---\n");
        out.push_str(&serde_saphyr::to_string(&value).expect("JSON values serialize to YAML"));
    }
    Ok(out)
}
