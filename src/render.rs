//! `curve-operator render`: a CurveCluster manifest → every object the operator would create,
//! Jobs included, exactly as it would apply them for an example placement stated at the top.
//!
//! The operator builds some objects from what it observes (the pods' addresses, the nodes
//! running ChunkServers). Offline there is nothing to observe, so render places the pods on
//! `node-1..N` with documentation addresses (192.0.2.x, RFC 5737; past 254 nodes the
//! benchmarking range 198.18.0.0/15, RFC 2544) and builds from that: what a user reads is what
//! would run, addresses included.

use serde_json::Value;

use crate::api::CurveCluster;
use crate::desired::config::DaemonAddresses;
use crate::desired::{self, Observed, ObservedServer, typed_value};
use crate::names::{Component, component_name, root_secret_name, slot_set_name};
use crate::reconcile::model::action::{Object, applied};
use crate::reconcile::plan::tier_objects;
use crate::validate::{FieldError, ValidatedCluster, validate};

#[derive(Debug, thiserror::Error)]
pub enum RenderError {
    #[error("cannot parse the CurveCluster: {0}")]
    Parse(String),
    #[error("the input holds no YAML document: nothing to render")]
    Empty,
    #[error(
        "not a CurveCluster: expected apiVersion {expected}, kind CurveCluster (got apiVersion \"{api_version}\", kind \"{kind}\")"
    )]
    NotACurveCluster {
        expected: String,
        api_version: String,
        kind: String,
    },
    #[error("the CurveCluster is invalid:\n{}", .0.iter().map(|e| format!("  {e}")).collect::<Vec<_>>().join("\n"))]
    Invalid(Vec<FieldError>),
    #[error(
        "CurveCluster {namespace}/{name} was already given as document {first} (each cluster may appear once)"
    )]
    Duplicate {
        namespace: String,
        name: String,
        first: usize,
    },
    /// The problems of a stream of several documents, each with its number (from 1).
    #[error("{}", .0.iter().map(|(number, e)| format!("document {number}: {e}")).collect::<Vec<_>>().join("\n"))]
    Documents(Vec<(usize, RenderError)>),
}

/// Every YAML document of a manifest, in order; empty documents (a trailing `---`) are skipped,
/// as kubectl skips them.
fn documents(yaml: &str) -> Result<Vec<Value>, RenderError> {
    serde_saphyr::from_multiple(yaml).map_err(|e| {
        // The library's message starts with its own "error: "; ours already says it.
        let message = e.to_string();
        RenderError::Parse(
            message
                .strip_prefix("error: ")
                .unwrap_or(&message)
                .to_string(),
        )
    })
}

/// One document as the API server would store it (defaults applied, a `null` of a defaulted
/// field dropped); a field that cannot be read is an [`RenderError::Invalid`] naming its path,
/// like any other invalid field.
fn cluster_of(value: &Value) -> Result<CurveCluster, RenderError> {
    let text = |key: &str| {
        value
            .get(key)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string()
    };
    let (kind, api_version) = (text("kind"), text("apiVersion"));
    let expected = format!("{}/{}", crate::api::GROUP, crate::api::VERSION);
    if kind != "CurveCluster" || api_version != expected {
        return Err(RenderError::NotACurveCluster {
            expected,
            api_version,
            kind,
        });
    }
    crate::validate::parse_cluster(value).map_err(|invalid| RenderError::Invalid(invalid.0))
}

/// Parses a manifest holding exactly one CurveCluster.
pub fn parse_cluster(yaml: &str) -> Result<CurveCluster, RenderError> {
    match documents(yaml)?.as_slice() {
        [] => Err(RenderError::Empty),
        [document] => cluster_of(document),
        many => Err(RenderError::Parse(format!(
            "expected one YAML document, got {}",
            many.len()
        ))),
    }
}

/// The password shown in the rendered root Secret: the operator generates a random one once.
pub const EXAMPLE_PASSWORD: &str = "<generated: 32 random letters and digits>";

/// The address of node `ordinal` (from 0) of `count`: `192.0.2.(ordinal+1)` (RFC 5737's
/// documentation range) while they fit in it, else from the benchmarking range 198.18.0.0/15
/// (RFC 2544), which holds 131,072.
fn example_ip(ordinal: i32, count: i32) -> String {
    if count < 255 {
        return format!("192.0.2.{}", ordinal + 1);
    }
    let benchmarking = u32::from(std::net::Ipv4Addr::new(198, 18, 0, 0));
    std::net::Ipv4Addr::from(benchmarking + ordinal as u32 + 1).to_string()
}

/// Where render places the pods: ordinal `i` of every component on `node-(i+1)`, whose
/// address is [`example_ip`] (host networking: a pod's IP is its node's).
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
            (
                component_name(&cluster.name, Component::Etcd),
                spec.etcd.replicas,
            ),
            (
                component_name(&cluster.name, Component::Mds),
                spec.mds.replicas,
            ),
        ];
        sets.extend((0..spec.chunkservers.disks_per_node).map(|slot| {
            (
                slot_set_name(&cluster.name, slot),
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
                ip: example_ip(ordinal, count),
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
            pools: desired::topology::PoolProgress::default(),
            etcd: None,
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
            root_secret_name(&cluster.name),
            component_name(&cluster.name, Component::Topology),
        ));
        if cluster.spec.placement.zone_label.is_some() {
            text.push_str("# Zones: these example nodes carry no zone label, so zones are assigned zone1..zoneN in turn.\n");
        }
        text
    }
}

/// Every object in creation order, each as the operator applies it: the etcd tier, the root
/// Secret, the MDS tier, the topology map, the ChunkServer tier, the pool Jobs, then (with
/// `spec.monitoring.enabled`) the PodMonitors and the PrometheusRule, and (with
/// `spec.csi.enabled`) curve-csi's objects.
pub fn objects(cluster: &ValidatedCluster, placement: &ExamplePlacement) -> Vec<Value> {
    observed_objects(cluster, &placement.observed(cluster))
}

/// [`objects`] for what the operator observed (e.g. the pools made, servers recorded).
pub fn observed_objects(cluster: &ValidatedCluster, observed: &Observed) -> Vec<Value> {
    let desired = desired::build(cluster, observed);
    let tier = |tier: &desired::Tier| -> Vec<Value> {
        tier_objects(tier).into_iter().map(applied).collect()
    };
    let mut values = tier(&desired.etcd);
    values.push(typed_value(&desired::secret::root_secret(
        cluster,
        EXAMPLE_PASSWORD,
    )));
    values.extend(tier(&desired.mds));
    values.push(applied(Object::ConfigMap(desired.topology.clone())));
    values.extend(tier(&desired.chunkservers));
    values.extend(desired.jobs.iter().map(typed_value));
    if let Some(monitoring) = &desired.monitoring {
        values.extend(
            crate::reconcile::monitoring::objects(monitoring)
                .into_iter()
                .map(applied),
        );
    }
    // The operator applies them once the cluster is Available, the StorageClass last.
    if let Some(csi) = &desired.csi {
        values.extend(
            crate::reconcile::csi::objects(csi, true)
                .into_iter()
                .map(applied),
        );
    }
    values
}

/// The multi-document YAML stream of every object of every CurveCluster in `yaml` (one or
/// several documents), in document order, each cluster after a header stating its placement.
/// Any document that is not a valid CurveCluster refuses the whole input: every problem of
/// every document is returned, and nothing is rendered.
pub fn render(yaml: &str, namespace: &str) -> Result<String, RenderError> {
    let documents = documents(yaml)?;
    let mut rendered = Vec::new();
    let mut problems = Vec::new();
    let mut seen: Vec<(String, String)> = Vec::new();
    for (index, document) in documents.iter().enumerate() {
        let number = index + 1;
        let validated = cluster_of(document).and_then(|cluster| {
            validate(&cluster, namespace).map_err(|invalid| RenderError::Invalid(invalid.0))
        });
        let validated = match validated {
            Ok(validated) => validated,
            Err(error) => {
                problems.push((number, error));
                continue;
            }
        };
        let identity = (validated.namespace.clone(), validated.name.clone());
        match seen.iter().position(|known| *known == identity) {
            Some(first) => problems.push((
                number,
                RenderError::Duplicate {
                    namespace: identity.0.clone(),
                    name: identity.1.clone(),
                    first: first + 1,
                },
            )),
            None => rendered.push(render_cluster(&validated)),
        }
        seen.push(identity);
    }
    match (documents.len(), problems.len()) {
        (0, _) => Err(RenderError::Empty),
        (_, 0) => Ok(rendered.concat()),
        // One document: its problem as it is, with no document number to distract.
        (1, _) => Err(problems.remove(0).1),
        _ => Err(RenderError::Documents(problems)),
    }
}

/// One cluster's header and objects, each object starting a YAML document.
fn render_cluster(cluster: &ValidatedCluster) -> String {
    let placement = ExamplePlacement::of(cluster);
    let mut out = placement.header(cluster);
    for value in objects(cluster, &placement) {
        out.push_str("---\n");
        out.push_str(&serde_saphyr::to_string(&value).expect("JSON values serialize to YAML"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::example_ip;

    #[test]
    fn example_addresses_stay_valid_and_distinct_past_254_nodes() {
        assert_eq!(example_ip(0, 3), "192.0.2.1");
        assert_eq!(example_ip(253, 254), "192.0.2.254");
        let many: Vec<String> = (0..1000).map(|i| example_ip(i, 1000)).collect();
        assert_eq!(
            (many[0].as_str(), many[999].as_str()),
            ("198.18.0.1", "198.18.3.232")
        );
        let distinct: std::collections::BTreeSet<&String> = many.iter().collect();
        assert_eq!(distinct.len(), 1000);
        assert!(
            many.iter()
                .all(|ip| ip.parse::<std::net::Ipv4Addr>().is_ok())
        );
    }
}
