//! curve-csi's part of a decision, pure: apply its objects once the cluster is Available (the
//! StorageClass too, once it was), delete them when `spec.csi` is off, and replace each node
//! plugin pod that runs an outdated config only when no Curve volume may be mounted through it.
//!
//! Why the node plugin is held: curve-csi runs nebd and curve-nbd inside the node plugin
//! container (build/curve-csi/Dockerfile:39-49 and entrypoint.sh:6 at curve-csi ed02bd6;
//! `curve-nbd map` serves each attached volume, pkg/curveservice/curveservice.go:197-215), so
//! a restart of that pod takes the nbd devices of the node's mounted volumes with it. Its
//! DaemonSet is `OnDelete` (as curve-csi's manifest, node-plugin-daemonset.yaml:11-12): a new
//! `MDSADDR` reaches a node only when the operator deletes the pod there, which it does when
//! the node has no VolumeAttachment of the driver, or when the annotation
//! [`crate::api::CSI_RESTART_ANNOTATION`] on the CurveCluster names the node (or is `*`).
//!
//! Deletion: [`bound_volumes`] names the PersistentVolumes that hold a deletion back.

use std::collections::BTreeSet;
use std::sync::Arc;

use k8s_openapi::api::core::v1::PersistentVolume;

use super::model::action::{Action, ExistingObject, Object, ObjectKind};
use super::model::pod::PodReading;
use super::model::states::CsiState;
use crate::desired::csi::Csi;
use crate::names::CSI_DRIVER;

/// The objects in apply order: who runs first, then what runs, the StorageClass last.
pub fn objects(csi: &Csi, with_storage_class: bool) -> Vec<Object> {
    let mut objects: Vec<Object> = (csi.service_accounts.iter().cloned())
        .map(Object::ServiceAccount)
        .collect();
    objects.extend([
        Object::Role(csi.role.clone()),
        Object::RoleBinding(csi.role_binding.clone()),
        Object::ClusterRole(csi.cluster_role.clone()),
        Object::ClusterRoleBinding(csi.cluster_role_binding.clone()),
        Object::CsiDriver(csi.driver.clone()),
        Object::Deployment(csi.controller.clone()),
        Object::DaemonSet(csi.node_plugin.clone()),
    ]);
    if with_storage_class {
        objects.push(Object::StorageClass(csi.storage_class.clone()));
    }
    objects
}

/// Which nodes the admin lets the operator restart node plugin pods on although volumes
/// are attached: the annotation's comma-separated node names, or `*` for every node.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum RestartAllowed {
    #[default]
    None,
    All,
    Nodes(BTreeSet<String>),
}

impl RestartAllowed {
    /// From the value of the CurveCluster's annotation [`crate::api::CSI_RESTART_ANNOTATION`].
    pub fn of(value: Option<&str>) -> Self {
        let Some(value) = value else {
            return RestartAllowed::None;
        };
        let nodes: BTreeSet<String> = (value.split(','))
            .map(str::trim)
            .filter(|n| !n.is_empty())
            .map(str::to_string)
            .collect();
        if nodes.contains("*") {
            RestartAllowed::All
        } else if nodes.is_empty() {
            RestartAllowed::None
        } else {
            RestartAllowed::Nodes(nodes)
        }
    }

    fn allows(&self, node: &str) -> bool {
        match self {
            RestartAllowed::None => false,
            RestartAllowed::All => true,
            RestartAllowed::Nodes(nodes) => nodes.contains(node),
        }
    }
}

/// What the csi part of a decision reads.
pub struct CsiInput<'a> {
    /// What `spec.csi` asks for; `None` when it is off.
    pub desired: Option<&'a Csi>,
    /// The cluster's curve-csi objects that exist, namespaced and cluster-scoped.
    pub existing: &'a [ExistingObject],
    /// The cluster's node plugin pods.
    pub node_pods: &'a [Arc<PodReading>],
    /// Nodes with a VolumeAttachment of the driver; `None` when not read (no pod outdated as
    /// the DaemonSet stood).
    pub attached: Option<&'a BTreeSet<String>>,
    pub allowed: &'a RestartAllowed,
    /// The Curve cluster is Available now.
    pub available: bool,
    /// Objects of curve-csi's names that belong to another provisioner or cluster.
    pub taken: &'a [String],
}

/// The actions and the state the status reports.
#[derive(Clone, Debug, PartialEq)]
pub struct CsiPlan {
    pub actions: Vec<Action>,
    pub state: CsiState,
}

/// The kinds whose fields the API server does not let change (a StorageClass's parameters,
/// provisioner and reclaim policy; a CSIDriver's attach and mount modes): deleted, then
/// created anew by the next pass.
fn immutable(kind: ObjectKind) -> bool {
    matches!(kind, ObjectKind::StorageClass | ObjectKind::CsiDriver)
}

pub fn plan(input: &CsiInput) -> CsiPlan {
    let existing = || input.existing.iter().filter(|e| !e.deleting);
    let Some(csi) = input.desired else {
        return CsiPlan {
            actions: existing().map(delete).collect(),
            state: CsiState::Disabled,
        };
    };
    if !input.taken.is_empty() {
        return CsiPlan {
            actions: Vec::new(),
            state: CsiState::Taken {
                objects: input.taken.to_vec(),
            },
        };
    }
    if !input.available && existing().next().is_none() {
        return CsiPlan {
            actions: Vec::new(),
            state: CsiState::WaitingForAvailable,
        };
    }
    let class_name = csi.storage_class.metadata.name.clone().unwrap_or_default();
    let class_exists =
        existing().any(|e| e.kind == ObjectKind::StorageClass && e.name == class_name);
    let with_class = input.available || class_exists;
    let mut actions = Vec::new();
    let mut wanted = BTreeSet::new();
    let mut node_plugin_current = true;
    for object in objects(csi, with_class) {
        let (object, hash) = object.with_applied_hash();
        let key = (object.kind(), object.name().to_string());
        let current = input
            .existing
            .iter()
            .find(|e| e.kind == key.0 && e.name == key.1);
        wanted.insert(key);
        match current {
            Some(e) if e.applied_hash.as_ref() == Some(&hash) => {}
            Some(e) if e.deleting => {}
            Some(e) if immutable(e.kind) => actions.push(delete(e)),
            _ => {
                node_plugin_current &= object.kind() != ObjectKind::DaemonSet;
                actions.push(Action::Apply(Box::new(object)));
            }
        }
    }
    actions.extend(
        existing()
            .filter(|e| !wanted.contains(&(e.kind, e.name.clone())))
            .map(delete),
    );
    // Pods are replaced from the template the DaemonSet holds: only once it holds this one.
    let (restarts, pending_nodes) = if node_plugin_current {
        node_pod_restarts(csi, input)
    } else {
        (Vec::new(), Vec::new())
    };
    actions.extend(restarts);
    CsiPlan {
        actions,
        state: CsiState::Applied {
            mds_addr: csi.mds_addr.clone(),
            storage_class: with_class.then_some(class_name),
            pending_nodes,
        },
    }
}

fn delete(existing: &ExistingObject) -> Action {
    Action::Delete {
        kind: existing.kind,
        name: existing.name.clone(),
    }
}

/// The node plugin's config a pod runs (its template hash).
fn node_config(pod: &PodReading) -> Option<&str> {
    pod.csi_node_config.as_deref()
}

/// Whether some node plugin pod runs another config than `config` (the DaemonSet's, as the
/// cache holds it): then the read step lists the VolumeAttachments.
pub fn any_outdated(config: Option<&str>, node_pods: &[Arc<PodReading>]) -> bool {
    config.is_some_and(|config| {
        (node_pods.iter())
            .filter(|p| !p.terminating)
            .any(|p| node_config(p) != Some(config))
    })
}

/// The outdated node plugin pods to delete now, and the nodes whose pods are held.
fn node_pod_restarts(csi: &Csi, input: &CsiInput) -> (Vec<Action>, Vec<String>) {
    let mut restarts = Vec::new();
    let mut held = BTreeSet::new();
    for pod in input.node_pods {
        if pod.terminating || node_config(pod) == Some(csi.node_config.as_str()) {
            continue;
        }
        let node = pod.node.as_deref();
        // Not read means not known: held, as if volumes were attached.
        let attached = |node: &str| input.attached.is_none_or(|nodes| nodes.contains(node));
        match node {
            Some(node) if attached(node) && !input.allowed.allows(node) => {
                held.insert(node.to_string());
            }
            _ => restarts.push(Action::DeletePod {
                name: pod.name.clone(),
                uid: pod.uid.clone(),
            }),
        }
    }
    (restarts, held.into_iter().collect())
}

/// The nodes of VolumeAttachments of curve-csi's driver, from (driver, node) pairs.
pub fn attached_nodes<'a>(
    attachments: impl IntoIterator<Item = (&'a str, &'a str)>,
) -> BTreeSet<String> {
    (attachments.into_iter())
        .filter(|(driver, _)| *driver == CSI_DRIVER)
        .map(|(_, node)| node.to_string())
        .collect()
}

/// The PersistentVolumes of curve-csi in the StorageClass `class` that are bound to a claim:
/// while one is, deleting the CurveCluster would cut a workload's volume from its cluster.
pub fn bound_volumes(volumes: &[PersistentVolume], class: &str) -> Vec<String> {
    let mut bound: Vec<String> = (volumes.iter())
        .filter(|pv| {
            let spec = pv.spec.as_ref();
            spec.and_then(|s| s.storage_class_name.as_deref()) == Some(class)
                && spec.and_then(|s| s.csi.as_ref()).map(|c| c.driver.as_str()) == Some(CSI_DRIVER)
                && pv.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Bound")
        })
        .map(|pv| {
            let name = pv.metadata.name.clone().unwrap_or_default();
            let claim = pv.spec.as_ref().and_then(|s| s.claim_ref.as_ref());
            match claim.and_then(|c| Some((c.namespace.as_deref()?, c.name.as_deref()?))) {
                Some((namespace, claim)) => format!("{name} (claim {namespace}/{claim})"),
                None => name,
            }
        })
        .collect();
    bound.sort();
    bound
}

#[cfg(test)]
#[path = "csi_tests.rs"]
mod tests;
