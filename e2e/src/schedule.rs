//! The fake scheduler's decision, pure: which fake node a pending pod may go to. It applies
//! the scheduler's filters the operator's pods depend on — unschedulable nodes, taints and
//! tolerations, nodeSelector, required pod anti-affinity (both ways) and host ports — and
//! spreads pods of one component over nodes. Volumes are treated as local volumes bound where
//! first used (WaitForFirstConsumer): a pod whose claim was used on a node goes back there.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{Pod, PodAffinityTerm, Taint, Toleration};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;

/// A node as the scheduler sees it.
#[derive(Clone, Debug, PartialEq)]
pub struct NodeView {
    pub name: String,
    pub labels: BTreeMap<String, String>,
    pub taints: Vec<Taint>,
    pub unschedulable: bool,
}

impl NodeView {
    pub fn from_node(node: &k8s_openapi::api::core::v1::Node) -> NodeView {
        let spec = node.spec.clone().unwrap_or_default();
        NodeView {
            name: node.metadata.name.clone().unwrap_or_default(),
            labels: node.metadata.labels.clone().unwrap_or_default(),
            taints: spec.taints.unwrap_or_default(),
            unschedulable: spec.unschedulable.unwrap_or(false),
        }
    }
}

fn labels(pod: &Pod) -> BTreeMap<String, String> {
    pod.metadata.labels.clone().unwrap_or_default()
}

fn node_of(pod: &Pod) -> Option<&str> {
    pod.spec.as_ref()?.node_name.as_deref()
}

fn terminated(pod: &Pod) -> bool {
    matches!(
        pod.status.as_ref().and_then(|s| s.phase.as_deref()),
        Some("Succeeded" | "Failed")
    )
}

/// Whether `selector` selects `labels` (matchLabels and matchExpressions).
pub fn selects(selector: &LabelSelector, labels: &BTreeMap<String, String>) -> bool {
    let by_label = selector
        .match_labels
        .iter()
        .flatten()
        .all(|(k, v)| labels.get(k) == Some(v));
    let by_expression = selector.match_expressions.iter().flatten().all(|e| {
        let values = e.values.clone().unwrap_or_default();
        match e.operator.as_str() {
            "In" => labels.get(&e.key).is_some_and(|v| values.contains(v)),
            "NotIn" => labels.get(&e.key).is_none_or(|v| !values.contains(v)),
            "Exists" => labels.contains_key(&e.key),
            "DoesNotExist" => !labels.contains_key(&e.key),
            _ => false,
        }
    });
    by_label && by_expression
}

fn tolerates(tolerations: &[Toleration], taint: &Taint) -> bool {
    tolerations.iter().any(|t| {
        let effect_ok = t
            .effect
            .as_deref()
            .is_none_or(|e| e.is_empty() || e == taint.effect);
        let key_ok = match t.operator.as_deref().unwrap_or("Equal") {
            "Exists" => t
                .key
                .as_deref()
                .is_none_or(|k| k.is_empty() || k == taint.key),
            _ => {
                t.key.as_deref() == Some(taint.key.as_str())
                    && t.value.as_deref().unwrap_or("") == taint.value.as_deref().unwrap_or("")
            }
        };
        effect_ok && key_ok
    })
}

fn required_anti_affinity(pod: &Pod) -> Vec<PodAffinityTerm> {
    pod.spec
        .as_ref()
        .and_then(|s| s.affinity.as_ref())
        .and_then(|a| a.pod_anti_affinity.as_ref())
        .and_then(|a| {
            a.required_during_scheduling_ignored_during_execution
                .clone()
        })
        .unwrap_or_default()
}

/// Whether the term of a pod in `term_namespace` matches `other`.
fn term_matches(term: &PodAffinityTerm, term_namespace: &str, other: &Pod) -> bool {
    let namespaces = term.namespaces.clone().unwrap_or_default();
    let other_ns = other.metadata.namespace.as_deref().unwrap_or_default();
    let ns_ok = if namespaces.is_empty() {
        other_ns == term_namespace
    } else {
        namespaces.iter().any(|n| n == other_ns)
    };
    ns_ok
        && term
            .label_selector
            .as_ref()
            .is_some_and(|s| selects(s, &labels(other)))
}

/// `(port, protocol)` the pod takes on its node: hostPorts, which the API server sets to the
/// container ports for host-network pods.
fn host_ports(pod: &Pod) -> Vec<(i32, String)> {
    let Some(spec) = pod.spec.as_ref() else {
        return Vec::new();
    };
    let host_network = spec.host_network.unwrap_or(false);
    spec.containers
        .iter()
        .flat_map(|c| c.ports.clone().unwrap_or_default())
        .filter_map(|p| {
            let port = p
                .host_port
                .filter(|p| *p > 0)
                .or(host_network.then_some(p.container_port))?;
            Some((port, p.protocol.unwrap_or_else(|| "TCP".into())))
        })
        .collect()
}

/// The PersistentVolumeClaims a pod mounts.
pub fn claims(pod: &Pod) -> Vec<String> {
    pod.spec
        .iter()
        .flat_map(|s| s.volumes.iter().flatten())
        .filter_map(|v| {
            v.persistent_volume_claim
                .as_ref()
                .map(|c| c.claim_name.clone())
        })
        .collect()
}

/// Why `pod` cannot go to `node`, or `None` when it can. `pods` are every pod the scheduler
/// knows (assigned ones count); `volume_nodes` the node each claim's volume lives on.
pub fn unfit(
    pod: &Pod,
    node: &NodeView,
    nodes: &[NodeView],
    pods: &[Pod],
    volume_nodes: &BTreeMap<String, String>,
) -> Option<String> {
    let spec = pod.spec.clone().unwrap_or_default();
    let namespace = pod.metadata.namespace.clone().unwrap_or_default();
    if node.unschedulable {
        return Some("unschedulable".into());
    }
    if let Some((claim, on)) = claims(pod).iter().find_map(|c| {
        volume_nodes
            .get(c)
            .filter(|n| **n != node.name)
            .map(|n| (c.clone(), n.clone()))
    }) {
        return Some(format!("volume of {claim} is on {on}"));
    }
    let tolerations = spec.tolerations.clone().unwrap_or_default();
    if let Some(t) = node.taints.iter().find(|t| {
        matches!(t.effect.as_str(), "NoSchedule" | "NoExecute") && !tolerates(&tolerations, t)
    }) {
        return Some(format!("untolerated taint {}:{}", t.key, t.effect));
    }
    if let Some((k, v)) = spec
        .node_selector
        .iter()
        .flatten()
        .find(|(k, v)| node.labels.get(*k) != Some(*v))
    {
        return Some(format!("nodeSelector {k}={v}"));
    }
    let affinity = spec.affinity.clone().unwrap_or_default();
    if affinity
        .node_affinity
        .and_then(|a| a.required_during_scheduling_ignored_during_execution)
        .is_some()
        || affinity
            .pod_affinity
            .and_then(|a| a.required_during_scheduling_ignored_during_execution)
            .is_some()
    {
        return Some("required node or pod affinity is not simulated".into());
    }
    let topology_value = |node_name: &str, key: &str| -> Option<String> {
        nodes
            .iter()
            .find(|n| n.name == node_name)
            .and_then(|n| n.labels.get(key).cloned())
    };
    let assigned: Vec<&Pod> = pods
        .iter()
        .filter(|p| node_of(p).is_some() && !terminated(p) && p.metadata.uid != pod.metadata.uid)
        .collect();
    for term in required_anti_affinity(pod) {
        let Some(domain) = node.labels.get(&term.topology_key) else {
            continue;
        };
        if let Some(other) = assigned.iter().find(|p| {
            term_matches(&term, &namespace, p)
                && topology_value(node_of(p).unwrap(), &term.topology_key).as_ref() == Some(domain)
        }) {
            return Some(format!(
                "anti-affinity with {} on {}={domain}",
                other.metadata.name.as_deref().unwrap_or_default(),
                term.topology_key
            ));
        }
    }
    // The anti-affinity of pods already placed, towards this one.
    for other in &assigned {
        let other_ns = other.metadata.namespace.clone().unwrap_or_default();
        for term in required_anti_affinity(other) {
            let same_domain = node.labels.contains_key(&term.topology_key)
                && topology_value(node_of(other).unwrap(), &term.topology_key)
                    == node.labels.get(&term.topology_key).cloned();
            if same_domain && term_matches(&term, &other_ns, pod) {
                return Some(format!(
                    "anti-affinity of {}",
                    other.metadata.name.as_deref().unwrap_or_default()
                ));
            }
        }
    }
    let wanted = host_ports(pod);
    for other in assigned
        .iter()
        .filter(|p| node_of(p) == Some(node.name.as_str()))
    {
        if let Some(port) = host_ports(other).iter().find(|p| wanted.contains(p)) {
            return Some(format!(
                "host port {}/{} taken by {}",
                port.0,
                port.1,
                other.metadata.name.as_deref().unwrap_or_default()
            ));
        }
    }
    None
}

/// The node for `pod`: among the nodes that fit, the one with the fewest pods of the same
/// app (instance and component labels), then the fewest pods, then by name. `Err` lists why
/// each node does not fit.
pub fn pick_node(
    pod: &Pod,
    nodes: &[NodeView],
    pods: &[Pod],
    volume_nodes: &BTreeMap<String, String>,
) -> Result<String, String> {
    let own = labels(pod);
    let same_app = |p: &Pod| {
        let l = labels(p);
        ["app.kubernetes.io/instance", "app.kubernetes.io/component"]
            .iter()
            .all(|k| l.get(*k) == own.get(*k))
    };
    let mut reasons = Vec::new();
    let mut best: Option<((usize, usize, String), String)> = None;
    for node in nodes {
        if let Some(why) = unfit(pod, node, nodes, pods, volume_nodes) {
            reasons.push(format!("{}: {why}", node.name));
            continue;
        }
        let on_node: Vec<&Pod> = pods
            .iter()
            .filter(|p| node_of(p) == Some(node.name.as_str()) && !terminated(p))
            .collect();
        let score = (
            on_node.iter().filter(|p| same_app(p)).count(),
            on_node.len(),
            node.name.clone(),
        );
        if best.as_ref().is_none_or(|(b, _)| score < *b) {
            best = Some((score, node.name.clone()));
        }
    }
    best.map(|(_, name)| name).ok_or_else(|| {
        if reasons.is_empty() {
            "no nodes".into()
        } else {
            reasons.join("; ")
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn node(name: &str) -> NodeView {
        NodeView {
            name: name.into(),
            labels: BTreeMap::from([("kubernetes.io/hostname".to_string(), name.to_string())]),
            taints: vec![],
            unschedulable: false,
        }
    }

    fn pod(name: &str, component: &str, node: Option<&str>) -> Pod {
        serde_json::from_value(json!({
            "metadata": {"name": name, "namespace": "ns", "uid": name,
                "labels": {"app.kubernetes.io/instance": "demo", "app.kubernetes.io/component": component}},
            "spec": {
                "nodeName": node,
                "hostNetwork": true,
                "containers": [{"name": "c", "ports": [{"containerPort": if component == "etcd" { 2379 } else { 6700 }}]}],
                "affinity": {"podAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [{
                    "labelSelector": {"matchLabels": {"app.kubernetes.io/instance": "demo", "app.kubernetes.io/component": component}},
                    "topologyKey": "kubernetes.io/hostname"}]}}
            }
        }))
        .unwrap()
    }

    #[test]
    fn anti_affinity_spreads_members_and_leaves_extra_ones_pending() {
        let nodes = vec![node("node-1"), node("node-2")];
        let placed = vec![pod("etcd-0", "etcd", Some("node-1"))];
        assert_eq!(
            pick_node(
                &pod("etcd-1", "etcd", None),
                &nodes,
                &placed,
                &BTreeMap::new()
            )
            .unwrap(),
            "node-2"
        );
        let placed = vec![
            pod("etcd-0", "etcd", Some("node-1")),
            pod("etcd-1", "etcd", Some("node-2")),
        ];
        let err = pick_node(
            &pod("etcd-2", "etcd", None),
            &nodes,
            &placed,
            &BTreeMap::new(),
        )
        .unwrap_err();
        assert!(
            err.contains("anti-affinity with etcd-0") && err.contains("anti-affinity with etcd-1"),
            "{err}"
        );
        // Another component may share the node.
        assert_eq!(
            pick_node(
                &pod("mds-0", "mds", None),
                &nodes,
                &placed,
                &BTreeMap::new()
            )
            .unwrap(),
            "node-1"
        );
    }

    #[test]
    fn host_ports_and_taints_are_respected() {
        let nodes = vec![node("node-1")];
        let mut other = pod("x-etcd-0", "etcd", Some("node-1"));
        other.metadata.labels = Some(BTreeMap::from([(
            "app.kubernetes.io/instance".to_string(),
            "x".to_string(),
        )]));
        other.spec.as_mut().unwrap().affinity = None;
        let err = pick_node(
            &pod("etcd-0", "etcd", None),
            &nodes,
            &[other],
            &BTreeMap::new(),
        )
        .unwrap_err();
        assert!(
            err.contains("host port 2379/TCP taken by x-etcd-0"),
            "{err}"
        );

        let mut tainted = node("node-1");
        tainted.taints = vec![Taint {
            key: "node.kubernetes.io/not-ready".into(),
            effect: "NoSchedule".into(),
            ..Taint::default()
        }];
        let err = pick_node(
            &pod("etcd-0", "etcd", None),
            &[tainted.clone()],
            &[],
            &BTreeMap::new(),
        )
        .unwrap_err();
        assert!(
            err.contains("untolerated taint node.kubernetes.io/not-ready:NoSchedule"),
            "{err}"
        );
        let mut tolerant = pod("etcd-0", "etcd", None);
        tolerant.spec.as_mut().unwrap().tolerations = Some(vec![Toleration {
            key: Some("node.kubernetes.io/not-ready".into()),
            operator: Some("Exists".into()),
            ..Toleration::default()
        }]);
        assert_eq!(
            pick_node(&tolerant, &[tainted], &[], &BTreeMap::new()).unwrap(),
            "node-1"
        );
    }

    #[test]
    fn a_pod_goes_back_to_the_node_of_its_volume() {
        let nodes = vec![node("node-1"), node("node-2"), node("node-3")];
        let mut cs = pod("cs-0", "chunkserver", None);
        cs.spec.as_mut().unwrap().volumes = Some(vec![
            serde_json::from_value(
                json!({"name": "data", "persistentVolumeClaim": {"claimName": "data-cs-0"}}),
            )
            .unwrap(),
        ]);
        assert_eq!(claims(&cs), ["data-cs-0"]);
        let volumes = BTreeMap::from([("data-cs-0".to_string(), "node-3".to_string())]);
        assert_eq!(pick_node(&cs, &nodes, &[], &volumes).unwrap(), "node-3");
        let busy = vec![pod("cs-x", "chunkserver", Some("node-3"))];
        let err = pick_node(&cs, &nodes, &busy, &volumes).unwrap_err();
        assert!(
            err.contains("node-1: volume of data-cs-0 is on node-3"),
            "{err}"
        );
    }
}
