//! The fake scheduler's decision, pure: which fake node a pending pod may go to. It applies
//! the scheduler's filters the operator's pods depend on — unschedulable nodes, taints and
//! tolerations, nodeSelector, required pod anti-affinity (both ways) and host ports, one
//! function each (see `FILTERS`) — and spreads pods of one component over nodes. Volumes are
//! treated as local volumes bound where first used (WaitForFirstConsumer): a pod whose claim
//! was used on a node goes back there.

use std::borrow::Borrow;
use std::collections::{BTreeMap, HashMap};

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

static NO_LABELS: BTreeMap<String, String> = BTreeMap::new();

fn labels(pod: &Pod) -> &BTreeMap<String, String> {
    pod.metadata.labels.as_ref().unwrap_or(&NO_LABELS)
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

fn required_anti_affinity(pod: &Pod) -> &[PodAffinityTerm] {
    pod.spec
        .as_ref()
        .and_then(|s| s.affinity.as_ref())
        .and_then(|a| a.pod_anti_affinity.as_ref())
        .and_then(|a| {
            a.required_during_scheduling_ignored_during_execution
                .as_deref()
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
            .is_some_and(|s| selects(s, labels(other)))
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

/// A pending pod and what the filters need to know of the pods placed, worked out once for
/// every node it is weighed against (per node it would be pods × nodes each time: hundreds of
/// nodes and a thousand pods take minutes).
struct PodView<'a> {
    pod: &'a Pod,
    /// Claim → the node its volume lives on.
    volume_nodes: &'a BTreeMap<String, String>,
    /// Per required anti-affinity term of the pod, in order: the topology domains (values of
    /// its key) holding a placed pod it selects, each with the first such pod.
    own_terms: Vec<(&'a str, HashMap<&'a str, &'a str>)>,
    /// (topology key, domain) → the first placed pod (its place in the pod list, its name)
    /// whose required anti-affinity selects this pod within that domain.
    repelled_by: HashMap<(&'a str, &'a str), (usize, &'a str)>,
    /// Node name → the other pods bound there and not terminated, in pod list order.
    on_node: HashMap<&'a str, Vec<&'a Pod>>,
}

impl<'a> PodView<'a> {
    /// `pods` are every pod the scheduler knows (assigned ones count), `nodes` every node
    /// (the topology domain of a placed pod is its node's label).
    pub fn new<P: Borrow<Pod>>(
        pod: &'a Pod,
        nodes: &'a [NodeView],
        pods: &'a [P],
        volume_nodes: &'a BTreeMap<String, String>,
    ) -> PodView<'a> {
        // The default namespace of the pod's affinity terms.
        let namespace = pod.metadata.namespace.clone().unwrap_or_default();
        let by_name: HashMap<&str, &NodeView> =
            nodes.iter().map(|n| (n.name.as_str(), n)).collect();
        let domain = |other: &'a Pod, key: &str| -> Option<&'a str> {
            let node = by_name.get(node_of(other)?)?;
            node.labels.get(key).map(String::as_str)
        };
        let assigned: Vec<&'a Pod> = (pods.iter().map(Borrow::borrow))
            .filter(|p| {
                node_of(p).is_some() && !terminated(p) && p.metadata.uid != pod.metadata.uid
            })
            .collect();
        let name = |p: &'a Pod| p.metadata.name.as_deref().unwrap_or_default();
        let own_terms = (required_anti_affinity(pod).iter())
            .map(|term| {
                let key = term.topology_key.as_str();
                let mut taken = HashMap::new();
                for other in assigned
                    .iter()
                    .filter(|p| term_matches(term, &namespace, p))
                {
                    if let Some(value) = domain(other, key) {
                        taken.entry(value).or_insert(name(other));
                    }
                }
                (key, taken)
            })
            .collect();
        let mut repelled_by = HashMap::new();
        for (index, other) in assigned.iter().enumerate() {
            let other_ns = other.metadata.namespace.as_deref().unwrap_or_default();
            for term in required_anti_affinity(other) {
                let key = term.topology_key.as_str();
                if let Some(value) = domain(other, key)
                    && term_matches(term, other_ns, pod)
                {
                    repelled_by
                        .entry((key, value))
                        .or_insert((index, name(other)));
                }
            }
        }
        let mut on_node: HashMap<&str, Vec<&Pod>> = HashMap::new();
        for other in &assigned {
            on_node
                .entry(node_of(other).unwrap())
                .or_default()
                .push(other);
        }
        PodView {
            pod,
            volume_nodes,
            own_terms,
            repelled_by,
            on_node,
        }
    }

    fn against<'n>(&'n self, node: &'n NodeView) -> Candidate<'n> {
        Candidate { view: self, node }
    }
}

/// A pod weighed against one node: what every filter looks at.
struct Candidate<'a> {
    view: &'a PodView<'a>,
    node: &'a NodeView,
}

impl Candidate<'_> {
    fn pod(&self) -> &Pod {
        self.view.pod
    }
}

/// A filter: why the candidate's node does not fit its pod, or `None` when this filter lets
/// it through.
type Filter = fn(&Candidate) -> Option<String>;

/// How the real scheduler's plugin words a refusal in `0/N nodes are available: …`, and
/// whether preemption could make room (`Unschedulable`) or not (`UnschedulableAndUnresolvable`).
/// The texts are the plugins' error reasons in Kubernetes v1.32 (pkg/scheduler/framework/plugins):
/// nodeunschedulable/node_unschedulable.go `ErrReasonUnschedulable`, volumebinding/binder.go
/// `ErrReasonNodeConflict`, tainttoleration/taint_toleration.go (`untolerated taint {key: value}`),
/// nodeaffinity/node_affinity.go `ErrReasonPod`, interpodaffinity/filtering.go
/// `ErrReasonAntiAffinityRulesNotMatch` and `ErrReasonExistingAntiAffinityRulesNotMatch`,
/// nodeports/node_ports.go `ErrReason`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PluginReason {
    NodeUnschedulable,
    VolumeNodeConflict,
    UntoleratedTaint,
    NodeAffinity,
    AntiAffinity,
    ExistingAntiAffinity,
    NodePorts,
}

impl PluginReason {
    /// The reason as the plugin says it; the taint's key and value come from the refusal.
    fn said(self, taint: Option<&Taint>) -> String {
        match self {
            PluginReason::NodeUnschedulable => "node(s) were unschedulable".into(),
            PluginReason::VolumeNodeConflict => "node(s) had volume node affinity conflict".into(),
            PluginReason::UntoleratedTaint => {
                let (key, value) = taint.map_or(("", ""), |t| {
                    (t.key.as_str(), t.value.as_deref().unwrap_or_default())
                });
                format!("node(s) had untolerated taint {{{key}: {value}}}")
            }
            PluginReason::NodeAffinity => {
                "node(s) didn't match Pod's node affinity/selector".into()
            }
            PluginReason::AntiAffinity => "node(s) didn't match pod anti-affinity rules".into(),
            PluginReason::ExistingAntiAffinity => {
                "node(s) didn't satisfy existing pods anti-affinity rules".into()
            }
            PluginReason::NodePorts => {
                "node(s) didn't have free ports for the requested pod ports".into()
            }
        }
    }

    /// Whether evicting pods could free the node (the plugin returns `Unschedulable`).
    fn preemption_may_help(self) -> bool {
        matches!(
            self,
            PluginReason::AntiAffinity
                | PluginReason::ExistingAntiAffinity
                | PluginReason::NodePorts
        )
    }
}

/// The filters in the order they are applied, each with the scheduler's reason for it; the
/// first that refuses a node names the reason.
const FILTERS: [(Filter, PluginReason); 8] = [
    (node_unschedulable, PluginReason::NodeUnschedulable),
    (volume_elsewhere, PluginReason::VolumeNodeConflict),
    (untolerated_taint, PluginReason::UntoleratedTaint),
    (node_selector_mismatch, PluginReason::NodeAffinity),
    // The real scheduler would evaluate it; refused here, it is worded as node affinity.
    (affinity_not_simulated, PluginReason::NodeAffinity),
    (own_anti_affinity, PluginReason::AntiAffinity),
    (
        anti_affinity_of_placed_pods,
        PluginReason::ExistingAntiAffinity,
    ),
    (host_port_taken, PluginReason::NodePorts),
];

/// `spec.unschedulable` of the node (cordoned).
fn node_unschedulable(c: &Candidate) -> Option<String> {
    c.node.unschedulable.then(|| "unschedulable".into())
}

/// Volume locality: a claim whose (local) volume was first used on another node.
fn volume_elsewhere(c: &Candidate) -> Option<String> {
    claims(c.pod()).iter().find_map(|claim| {
        c.view
            .volume_nodes
            .get(claim)
            .filter(|on| **on != c.node.name)
            .map(|on| format!("volume of {claim} is on {on}"))
    })
}

/// Taints with effect NoSchedule or NoExecute must be tolerated.
fn untolerated_taint(c: &Candidate) -> Option<String> {
    let tolerations = c
        .pod()
        .spec
        .as_ref()
        .and_then(|s| s.tolerations.clone())
        .unwrap_or_default();
    c.node
        .taints
        .iter()
        .find(|t| {
            matches!(t.effect.as_str(), "NoSchedule" | "NoExecute") && !tolerates(&tolerations, t)
        })
        .map(|t| format!("untolerated taint {}:{}", t.key, t.effect))
}

/// Every nodeSelector label must be on the node with that value.
fn node_selector_mismatch(c: &Candidate) -> Option<String> {
    c.pod()
        .spec
        .as_ref()
        .and_then(|s| s.node_selector.as_ref())
        .into_iter()
        .flatten()
        .find(|(k, v)| c.node.labels.get(*k) != Some(*v))
        .map(|(k, v)| format!("nodeSelector {k}={v}"))
}

/// Required node affinity and required pod affinity are not simulated: such a pod is refused
/// everywhere rather than placed wrongly. Except the one the DaemonSet controller writes on
/// each of its pods (pkg/controller/daemon/util/daemonset_util.go `ReplaceDaemonSetPodNodeNameNodeAffinity`):
/// a single term matching the field `metadata.name` of its node.
fn affinity_not_simulated(c: &Candidate) -> Option<String> {
    let affinity = c.pod().spec.as_ref().and_then(|s| s.affinity.as_ref())?;
    let node_affinity = affinity.node_affinity.as_ref().and_then(|a| {
        a.required_during_scheduling_ignored_during_execution
            .as_ref()
    });
    let pod_affinity = affinity.pod_affinity.as_ref().and_then(|a| {
        a.required_during_scheduling_ignored_during_execution
            .as_ref()
    });
    if pod_affinity.is_none()
        && let Some(nodes) = node_affinity.and_then(daemon_set_node)
    {
        return (!nodes.contains(&c.node.name))
            .then(|| format!("the DaemonSet pod is for {}", nodes.join(", ")));
    }
    (node_affinity.is_some() || pod_affinity.is_some())
        .then(|| "required node or pod affinity is not simulated".into())
}

/// The nodes of a DaemonSet pod's node affinity: one term, one `metadata.name In` field match.
fn daemon_set_node(selector: &k8s_openapi::api::core::v1::NodeSelector) -> Option<Vec<String>> {
    let [term] = selector.node_selector_terms.as_slice() else {
        return None;
    };
    if term
        .match_expressions
        .as_ref()
        .is_some_and(|e| !e.is_empty())
    {
        return None;
    }
    let [field] = term.match_fields.as_deref()? else {
        return None;
    };
    (field.key == "metadata.name" && field.operator == "In")
        .then(|| field.values.clone().unwrap_or_default())
}

/// The pod's own required anti-affinity: no placed pod it selects in the node's topology
/// domain.
fn own_anti_affinity(c: &Candidate) -> Option<String> {
    c.view.own_terms.iter().find_map(|(key, taken)| {
        let domain = c.node.labels.get(*key)?;
        let other = taken.get(domain.as_str())?;
        Some(format!("anti-affinity with {other} on {key}={domain}"))
    })
}

/// The required anti-affinity of pods already placed, towards this one: no placed pod in the
/// node's topology domain may select it.
fn anti_affinity_of_placed_pods(c: &Candidate) -> Option<String> {
    let repelled = &c.view.repelled_by;
    (c.node.labels.iter())
        .filter_map(|(key, value)| repelled.get(&(key.as_str(), value.as_str())))
        .min()
        .map(|(_, other)| format!("anti-affinity of {other}"))
}

/// A host port (port and protocol) the pod needs that a pod on the node already takes.
fn host_port_taken(c: &Candidate) -> Option<String> {
    let wanted = host_ports(c.pod());
    let on_node = c.view.on_node.get(c.node.name.as_str())?;
    on_node.iter().find_map(|other| {
        host_ports(other)
            .into_iter()
            .find(|p| wanted.contains(p))
            .map(|(port, protocol)| {
                format!(
                    "host port {port}/{protocol} taken by {}",
                    other.metadata.name.as_deref().unwrap_or_default()
                )
            })
    })
}

/// Why `pod` cannot go to `node`, or `None` when it can. `pods` are every pod the scheduler
/// knows (assigned ones count); `volume_nodes` the node each claim's volume lives on.
pub fn unfit<P: Borrow<Pod>>(
    pod: &Pod,
    node: &NodeView,
    nodes: &[NodeView],
    pods: &[P],
    volume_nodes: &BTreeMap<String, String>,
) -> Option<String> {
    refusal(&PodView::new(pod, nodes, pods, volume_nodes).against(node))
}

/// The first filter's refusal of the candidate.
fn refusal(candidate: &Candidate) -> Option<String> {
    FILTERS.iter().find_map(|(filter, _)| filter(candidate))
}

/// The first untolerated NoSchedule/NoExecute taint of `node` for `pod`.
fn first_untolerated_taint<'a>(pod: &Pod, node: &'a NodeView) -> Option<&'a Taint> {
    let tolerations = (pod.spec.as_ref().and_then(|s| s.tolerations.clone())).unwrap_or_default();
    node.taints.iter().find(|t| {
        matches!(t.effect.as_str(), "NoSchedule" | "NoExecute") && !tolerates(&tolerations, t)
    })
}

/// The condition message the scheduler writes on a pod no node fits: the FitError of
/// pkg/scheduler/framework/types.go (`0/N nodes are available: <count> <reason>, … .`, the
/// reasons sorted as strings) followed by DefaultPreemption's own FitError
/// (pkg/scheduler/framework/preemption/preemption.go): nodes refused for good are "Preemption
/// is not helpful for scheduling"; the others have no victim, as every pod here has the same
/// priority ("No preemption victims found for incoming pod"). Checked against kube-scheduler
/// v1.32 (older ones ended the message with two full stops). `None` when a node fits.
pub fn unschedulable_message<P: Borrow<Pod>>(
    pod: &Pod,
    nodes: &[NodeView],
    pods: &[P],
    volume_nodes: &BTreeMap<String, String>,
) -> Option<String> {
    let view = PodView::new(pod, nodes, pods, volume_nodes);
    let mut refusals = Vec::new();
    for node in nodes {
        let candidate = view.against(node);
        let (_, reason) = FILTERS
            .iter()
            .find(|(filter, _)| filter(&candidate).is_some())?;
        refusals.push((
            reason.said(first_untolerated_taint(pod, node)),
            reason.preemption_may_help(),
        ));
    }
    let filter_reasons = histogram(refusals.iter().map(|(said, _)| said.clone()));
    let preemption = histogram(refusals.iter().map(|(_, helps)| {
        if *helps {
            "No preemption victims found for incoming pod".to_string()
        } else {
            "Preemption is not helpful for scheduling".to_string()
        }
    }));
    Some(fit_error(nodes.len(), &filter_reasons, &preemption))
}

/// The message for a pod the scheduler's PreFilter refused (every node at once, no per-node
/// reasons), e.g. VolumeBinding's "pod has unbound immediate PersistentVolumeClaims".
pub fn prefilter_message(nodes: usize, reason: &str) -> String {
    let preemption =
        histogram((0..nodes).map(|_| "Preemption is not helpful for scheduling".to_string()));
    format!(
        "0/{nodes} nodes are available: {reason}. preemption: 0/{nodes} nodes are available: {}.",
        preemption.join(", ")
    )
}

/// `<count> <reason>` per distinct reason, sorted as strings (as the scheduler's
/// `sortReasonsHistogram`).
fn histogram(reasons: impl Iterator<Item = String>) -> Vec<String> {
    let mut counts: BTreeMap<String, usize> = BTreeMap::new();
    for reason in reasons {
        *counts.entry(reason).or_default() += 1;
    }
    let mut lines: Vec<String> = counts.iter().map(|(r, n)| format!("{n} {r}")).collect();
    lines.sort();
    lines
}

fn fit_error(nodes: usize, reasons: &[String], preemption: &[String]) -> String {
    format!(
        "0/{nodes} nodes are available: {}. preemption: 0/{nodes} nodes are available: {}.",
        reasons.join(", "),
        preemption.join(", ")
    )
}

/// The node for `pod`: among the nodes that fit, the one with the fewest pods of the same
/// app (instance and component labels), then the fewest pods, then by name. `Err` lists why
/// each node does not fit.
pub fn pick_node<P: Borrow<Pod>>(
    pod: &Pod,
    nodes: &[NodeView],
    pods: &[P],
    volume_nodes: &BTreeMap<String, String>,
) -> Result<String, String> {
    let own = labels(pod);
    let same_app = |p: &Pod| {
        let l = labels(p);
        ["app.kubernetes.io/instance", "app.kubernetes.io/component"]
            .iter()
            .all(|k| l.get(*k) == own.get(*k))
    };
    // Pods per node (same app, all), counted once.
    let mut counts: HashMap<&str, (usize, usize)> = HashMap::new();
    for p in pods.iter().map(Borrow::borrow).filter(|p| !terminated(p)) {
        if let Some(node) = node_of(p) {
            let count = counts.entry(node).or_default();
            count.0 += usize::from(same_app(p));
            count.1 += 1;
        }
    }
    let view = PodView::new(pod, nodes, pods, volume_nodes);
    let mut reasons = Vec::new();
    let mut best: Option<((usize, usize, String), String)> = None;
    for node in nodes {
        if let Some(why) = refusal(&view.against(node)) {
            reasons.push(format!("{}: {why}", node.name));
            continue;
        }
        let (same, all) = counts.get(node.name.as_str()).copied().unwrap_or_default();
        let score = (same, all, node.name.clone());
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
    use serde_json::{Value, json};

    const NO_PODS: &[Pod] = &[];

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
            NO_PODS,
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
            pick_node(&tolerant, &[tainted], NO_PODS, &BTreeMap::new()).unwrap(),
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
        assert_eq!(pick_node(&cs, &nodes, NO_PODS, &volumes).unwrap(), "node-3");
        let busy = vec![pod("cs-x", "chunkserver", Some("node-3"))];
        let err = pick_node(&cs, &nodes, &busy, &volumes).unwrap_err();
        assert!(
            err.contains("node-1: volume of data-cs-0 is on node-3"),
            "{err}"
        );
    }

    /// `unfit` of a pod for `node-1` of `nodes`, with `pods` placed.
    fn why(pod: &Pod, nodes: &[NodeView], pods: &[Pod]) -> Option<String> {
        unfit(pod, &nodes[0], nodes, pods, &BTreeMap::new())
    }

    #[test]
    fn a_cordoned_node_takes_nothing() {
        let mut cordoned = node("node-1");
        cordoned.unschedulable = true;
        assert_eq!(
            why(&pod("etcd-0", "etcd", None), &[cordoned], &[]).as_deref(),
            Some("unschedulable")
        );
    }

    #[test]
    fn node_selector_labels_must_match() {
        let mut p = pod("cs-0", "chunkserver", None);
        p.spec.as_mut().unwrap().node_selector = Some(BTreeMap::from([(
            "curve.opencurve.io/chunkserver".to_string(),
            "true".to_string(),
        )]));
        let plain = node("node-1");
        assert_eq!(
            why(&p, std::slice::from_ref(&plain), &[]).as_deref(),
            Some("nodeSelector curve.opencurve.io/chunkserver=true")
        );
        let mut labelled = plain;
        labelled
            .labels
            .insert("curve.opencurve.io/chunkserver".into(), "false".into());
        assert!(why(&p, std::slice::from_ref(&labelled), &[]).is_some());
        labelled
            .labels
            .insert("curve.opencurve.io/chunkserver".into(), "true".into());
        assert_eq!(why(&p, &[labelled], &[]), None);
    }

    #[test]
    fn required_affinity_is_refused_as_not_simulated() {
        let mut p = pod("mds-0", "mds", None);
        p.spec.as_mut().unwrap().affinity = Some(
            serde_json::from_value(json!({"nodeAffinity": {
                "requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": []}}}))
            .unwrap(),
        );
        assert_eq!(
            why(&p, &[node("node-1")], &[]).as_deref(),
            Some("required node or pod affinity is not simulated")
        );
    }

    #[test]
    fn the_anti_affinity_of_a_placed_pod_keeps_others_away() {
        // The new pod has no terms of its own; the placed one refuses its component.
        let placed = pod("etcd-0", "etcd", Some("node-1"));
        let mut newcomer = pod("etcd-1", "etcd", None);
        newcomer.spec.as_mut().unwrap().affinity = None;
        // Another port, so that only the anti-affinity refuses.
        newcomer.spec.as_mut().unwrap().containers[0].ports = None;
        assert_eq!(
            why(&newcomer, &[node("node-1")], std::slice::from_ref(&placed)).as_deref(),
            Some("anti-affinity of etcd-0")
        );
        // A term of a pod in another namespace selects pods of its own namespace only.
        let mut elsewhere = newcomer.clone();
        elsewhere.metadata.namespace = Some("other".into());
        assert_eq!(
            why(&elsewhere, &[node("node-1")], std::slice::from_ref(&placed)),
            None
        );
        // A terminated pod holds nothing.
        let mut done = placed;
        done.status = Some(serde_json::from_value(json!({"phase": "Succeeded"})).unwrap());
        assert_eq!(why(&newcomer, &[node("node-1")], &[done]), None);
    }

    #[test]
    fn a_node_without_the_topology_label_is_its_own_domain() {
        // Anti-affinity over zones: nodes without a zone label are not in any zone.
        let zone = "topology.kubernetes.io/zone";
        let mut p = pod("etcd-1", "etcd", None);
        let term = &mut p
            .spec
            .as_mut()
            .unwrap()
            .affinity
            .as_mut()
            .unwrap()
            .pod_anti_affinity
            .as_mut()
            .unwrap()
            .required_during_scheduling_ignored_during_execution
            .as_mut()
            .unwrap()[0];
        term.topology_key = zone.into();
        p.spec.as_mut().unwrap().containers[0].ports = None;
        let mut placed = pod("etcd-0", "etcd", Some("node-2"));
        placed.spec.as_mut().unwrap().affinity = None;
        let mut a = node("node-1");
        let mut b = node("node-2");
        assert_eq!(why(&p, &[a.clone(), b.clone()], &[placed.clone()]), None);
        a.labels.insert(zone.into(), "z1".into());
        b.labels.insert(zone.into(), "z1".into());
        assert_eq!(
            why(&p, &[a.clone(), b.clone()], &[placed.clone()]).as_deref(),
            Some("anti-affinity with etcd-0 on topology.kubernetes.io/zone=z1")
        );
        b.labels.insert(zone.into(), "z2".into());
        assert_eq!(why(&p, &[a, b], &[placed]), None);
    }

    #[test]
    fn host_ports_are_taken_per_protocol_and_only_with_host_networking() {
        let with_ports = |name: &str, host_network: bool, ports: Value| -> Pod {
            serde_json::from_value(json!({
                "metadata": {"name": name, "namespace": "ns", "uid": name},
                "spec": {"nodeName": "node-1", "hostNetwork": host_network,
                         "containers": [{"name": "c", "ports": ports}]}
            }))
            .unwrap()
        };
        let tcp = with_ports("a", true, json!([{"containerPort": 6700}]));
        assert_eq!(host_ports(&tcp), [(6700, "TCP".to_string())]);
        let udp = with_ports(
            "b",
            true,
            json!([{"containerPort": 6700, "protocol": "UDP"}]),
        );
        assert_eq!(host_ports(&udp), [(6700, "UDP".to_string())]);
        // Without host networking only explicit hostPorts count.
        let pod_network = with_ports("c", false, json!([{"containerPort": 6700}]));
        assert!(host_ports(&pod_network).is_empty());
        let explicit = with_ports("d", false, json!([{"containerPort": 80, "hostPort": 8080}]));
        assert_eq!(host_ports(&explicit), [(8080, "TCP".to_string())]);

        let mut newcomer = with_ports("new", true, json!([{"containerPort": 6700}]));
        newcomer.spec.as_mut().unwrap().node_name = None;
        let nodes = [node("node-1")];
        assert_eq!(why(&newcomer, &nodes, &[udp]), None);
        assert_eq!(why(&newcomer, &nodes, &[pod_network]), None);
        assert_eq!(
            why(&newcomer, &nodes, &[tcp]).as_deref(),
            Some("host port 6700/TCP taken by a")
        );
    }

    #[test]
    fn tolerations_match_key_value_and_effect() {
        let taint = Taint {
            key: "dedicated".into(),
            value: Some("curve".into()),
            effect: "NoSchedule".into(),
            ..Taint::default()
        };
        let toleration = |v: Value| -> Toleration { serde_json::from_value(v).unwrap() };
        for (t, expected) in [
            (json!({"key": "dedicated", "value": "curve"}), true),
            (
                json!({"key": "dedicated", "operator": "Equal", "value": "other"}),
                false,
            ),
            (json!({"key": "dedicated", "operator": "Exists"}), true),
            (json!({"operator": "Exists"}), true),
            (
                json!({"key": "dedicated", "operator": "Exists", "effect": "NoSchedule"}),
                true,
            ),
            (
                json!({"key": "dedicated", "operator": "Exists", "effect": "NoExecute"}),
                false,
            ),
            (json!({"key": "other", "operator": "Exists"}), false),
        ] {
            assert_eq!(tolerates(&[toleration(t.clone())], &taint), expected, "{t}");
        }
        // PreferNoSchedule is no filter.
        let mut soft = node("node-1");
        soft.taints = vec![Taint {
            effect: "PreferNoSchedule".into(),
            ..taint
        }];
        assert_eq!(why(&pod("etcd-0", "etcd", None), &[soft], &[]), None);
    }

    #[test]
    fn the_unschedulable_message_is_worded_as_the_scheduler_words_it() {
        let nodes = vec![node("node-1"), node("node-2"), node("node-3")];
        let mut lost = pod("etcd-0", "etcd", None);
        lost.spec.as_mut().unwrap().node_selector =
            Some(BTreeMap::from([("disk".to_string(), "nvme".to_string())]));
        assert_eq!(
            unschedulable_message(&lost, &nodes, NO_PODS, &BTreeMap::new()).unwrap(),
            "0/3 nodes are available: 3 node(s) didn't match Pod's node affinity/selector. \
             preemption: 0/3 nodes are available: 3 Preemption is not helpful for scheduling."
        );
        // Two nodes taken by members of the same set, one tainted: preemption could only
        // help where a pod is in the way, and finds no victim of lower priority.
        let mut tainted = node("node-3");
        tainted.taints = vec![
            serde_json::from_value(
                json!({"key": "node.kubernetes.io/unreachable", "effect": "NoSchedule"}),
            )
            .unwrap(),
        ];
        let nodes = vec![node("node-1"), node("node-2"), tainted];
        let placed = vec![
            pod("etcd-1", "etcd", Some("node-1")),
            pod("etcd-2", "etcd", Some("node-2")),
        ];
        assert_eq!(
            unschedulable_message(
                &pod("etcd-0", "etcd", None),
                &nodes,
                &placed,
                &BTreeMap::new()
            )
            .unwrap(),
            "0/3 nodes are available: 1 node(s) had untolerated taint {node.kubernetes.io/unreachable: }, \
             2 node(s) didn't match pod anti-affinity rules. preemption: 0/3 nodes are available: \
             1 Preemption is not helpful for scheduling, 2 No preemption victims found for incoming pod."
        );
        assert_eq!(
            unschedulable_message(
                &pod("mds-0", "mds", None),
                &nodes,
                &placed,
                &BTreeMap::new()
            ),
            None,
            "a node fits"
        );
        assert_eq!(
            prefilter_message(2, "pod has unbound immediate PersistentVolumeClaims"),
            "0/2 nodes are available: pod has unbound immediate PersistentVolumeClaims. \
             preemption: 0/2 nodes are available: 2 Preemption is not helpful for scheduling."
        );
    }

    #[test]
    fn selectors_apply_labels_and_expressions() {
        let labels = BTreeMap::from([
            ("app".to_string(), "curve".to_string()),
            ("tier".to_string(), "mds".to_string()),
        ]);
        let selector = |v: Value| -> LabelSelector { serde_json::from_value(v).unwrap() };
        for (s, expected) in [
            (json!({}), true),
            (json!({"matchLabels": {"app": "curve"}}), true),
            (json!({"matchLabels": {"app": "other"}}), false),
            (
                json!({"matchExpressions": [{"key": "tier", "operator": "In", "values": ["mds", "etcd"]}]}),
                true,
            ),
            (
                json!({"matchExpressions": [{"key": "tier", "operator": "NotIn", "values": ["mds"]}]}),
                false,
            ),
            (
                json!({"matchExpressions": [{"key": "zone", "operator": "NotIn", "values": ["a"]}]}),
                true,
            ),
            (
                json!({"matchExpressions": [{"key": "app", "operator": "Exists"}]}),
                true,
            ),
            (
                json!({"matchExpressions": [{"key": "app", "operator": "DoesNotExist"}]}),
                false,
            ),
            (
                json!({"matchExpressions": [{"key": "app", "operator": "Gt", "values": ["1"]}]}),
                false,
            ),
            (
                json!({"matchLabels": {"app": "curve"}, "matchExpressions": [{"key": "tier", "operator": "DoesNotExist"}]}),
                false,
            ),
        ] {
            assert_eq!(selects(&selector(s.clone()), &labels), expected, "{s}");
        }
    }
}
