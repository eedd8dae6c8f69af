//! Pure planning: which tiers may be applied now (bring-up gates), which spec changes are
//! refused, and the apply/delete actions that move the cluster to the desired objects.

use std::collections::{BTreeMap, BTreeSet};

use crate::build::{Component, DesiredObjects, Tier, typed_value};
use crate::validate::ValidatedCluster;

/// Annotation holding the hash of the object as the operator last applied it: an unchanged
/// object is not sent again, so a reconcile of a healthy cluster writes nothing.
pub const APPLIED_HASH_ANNOTATION: &str = "curve.opencurve.io/applied-hash";

/// An object of the cluster as it exists in the API server.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExistingObject {
    pub kind: String,
    pub name: String,
    pub component: Option<String>,
    pub applied_hash: Option<String>,
    /// `spec.replicas` of a StatefulSet.
    pub replicas: Option<i32>,
    /// The storage request of a StatefulSet's volume claim template.
    pub claim_size: Option<String>,
}

#[derive(Clone, Debug, PartialEq)]
pub enum Action {
    Apply {
        kind: String,
        name: String,
        object: serde_json::Value,
    },
    Delete {
        kind: String,
        name: String,
    },
}

impl Action {
    pub fn describe(&self) -> String {
        match self {
            Action::Apply { kind, name, .. } => format!("apply {kind}/{name}"),
            Action::Delete { kind, name } => format!("delete {kind}/{name}"),
        }
    }
}

fn stateful_sets(
    existing: &[ExistingObject],
    component: Component,
) -> impl Iterator<Item = &ExistingObject> {
    existing.iter().filter(move |o| {
        o.kind == "StatefulSet" && o.component.as_deref() == Some(component.as_str())
    })
}

pub fn tier_exists(existing: &[ExistingObject], component: Component) -> bool {
    stateful_sets(existing, component).next().is_some()
}

/// Holds back spec changes that would lose quorum or data, returning the spec that is safe to
/// apply and why each held change was refused.
pub fn refuse_unsafe_changes(
    cluster: &ValidatedCluster,
    existing: &[ExistingObject],
) -> (ValidatedCluster, Vec<String>) {
    let mut safe = cluster.clone();
    let mut refused = Vec::new();
    // Until etcd membership is managed, a bootstrapped etcd keeps its size: a new member would
    // start a cluster of its own, and a removed one would take quorum with it.
    if let Some(current) = stateful_sets(existing, Component::Etcd).find_map(|o| o.replicas)
        && current != cluster.spec.etcd.replicas
    {
        refused.push(format!(
                "spec.etcd.replicas: resizing a running etcd cluster ({current} → {}) is not supported yet; it keeps {current} members",
                cluster.spec.etcd.replicas
            ));
        safe.spec.etcd.replicas = current;
    }
    // Removing ChunkServers drops their copies without migrating them first.
    let slots = stateful_sets(existing, Component::ChunkServer).count() as i32;
    if slots > cluster.spec.chunkservers.disks_per_node {
        refused.push(format!(
            "spec.chunkservers.disksPerNode: removing disk slots ({slots} → {}) is refused until ChunkServers can be decommissioned safely",
            cluster.spec.chunkservers.disks_per_node
        ));
        safe.spec.chunkservers.disks_per_node = slots;
    }
    if let Some(current) = stateful_sets(existing, Component::ChunkServer)
        .filter_map(|o| o.replicas)
        .max()
        && current > cluster.spec.chunkservers.replicas
    {
        refused.push(format!(
                "spec.chunkservers.replicas: removing ChunkServer nodes ({current} → {}) is refused until ChunkServers can be decommissioned safely",
                cluster.spec.chunkservers.replicas
            ));
        safe.spec.chunkservers.replicas = current;
    }
    // A StatefulSet's volume claim templates cannot change: its volumes keep their size until
    // volume expansion is managed.
    for (component, path, storage) in [
        (
            Component::Etcd,
            "spec.etcd.storage.size",
            &mut safe.spec.etcd.storage,
        ),
        (
            Component::ChunkServer,
            "spec.chunkservers.storage.size",
            &mut safe.spec.chunkservers.storage,
        ),
    ] {
        if let Some(current) = stateful_sets(existing, component).find_map(|o| o.claim_size.clone())
            && current != storage.size
        {
            refused.push(format!(
                "{path}: resizing existing volumes ({current} → {}) is not supported yet; they keep {current}",
                storage.size
            ));
            storage.size = current;
        }
    }
    (safe, refused)
}

/// Which tiers bring-up allows now. A tier is applied once the tier before it serves: MDS
/// after etcd is quorate, ChunkServers after an MDS primary is elected.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Gates {
    pub mds: bool,
    pub chunkservers: bool,
}

pub fn gates(etcd_quorate: bool, primary_elected: bool) -> Gates {
    Gates {
        mds: etcd_quorate,
        chunkservers: etcd_quorate && primary_elected,
    }
}

/// A stable hash (FNV-1a 64) of an object's JSON.
pub fn object_hash(object: &serde_json::Value) -> String {
    format!("{:016x}", crate::util::fnv64(object.to_string().bytes()))
}

fn with_hash(mut object: serde_json::Value) -> (serde_json::Value, String) {
    let hash = object_hash(&object);
    let metadata = object["metadata"]
        .as_object_mut()
        .expect("objects have metadata");
    let annotations = metadata
        .entry("annotations")
        .or_insert_with(|| serde_json::json!({}));
    annotations[APPLIED_HASH_ANNOTATION] = serde_json::Value::String(hash.clone());
    (object, hash)
}

/// An object as the operator applies it: with the hash of its content in an annotation.
pub fn applied(object: serde_json::Value) -> serde_json::Value {
    with_hash(object).0
}

pub fn tier_values(tier: &Tier) -> Vec<serde_json::Value> {
    // ConfigMaps and Services first, budgets next, StatefulSets last: pods start with their
    // config and their DNS names in place.
    let mut values: Vec<serde_json::Value> = tier.config_maps.iter().map(typed_value).collect();
    values.extend(tier.services.iter().map(typed_value));
    values.extend(tier.budgets.iter().map(typed_value));
    values.extend(tier.stateful_sets.iter().map(typed_value));
    values
}

/// The actions, in order, for the tiers the gates allow: apply what differs from what was
/// last applied, then delete this cluster's objects of those tiers that are no longer desired.
pub fn plan(desired: &DesiredObjects, existing: &[ExistingObject], gates: Gates) -> Vec<Action> {
    let mut objects = tier_values(&desired.etcd);
    if gates.mds {
        objects.extend(tier_values(&desired.mds));
    }
    if gates.chunkservers {
        objects.push(typed_value(&desired.topology));
        objects.extend(tier_values(&desired.chunkservers));
    }
    let existing_hashes: BTreeMap<(String, String), Option<&String>> = existing
        .iter()
        .map(|o| ((o.kind.clone(), o.name.clone()), o.applied_hash.as_ref()))
        .collect();
    let mut wanted: BTreeSet<(String, String)> = BTreeSet::new();
    let mut actions = Vec::new();
    for object in objects {
        let kind = object["kind"].as_str().unwrap_or_default().to_string();
        let name = object["metadata"]["name"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let (object, hash) = with_hash(object);
        wanted.insert((kind.clone(), name.clone()));
        if existing_hashes
            .get(&(kind.clone(), name.clone()))
            .copied()
            .flatten()
            != Some(&hash)
        {
            actions.push(Action::Apply { kind, name, object });
        }
    }
    let managed: Vec<&str> = [
        (true, Component::Etcd),
        (gates.mds, Component::Mds),
        (gates.chunkservers, Component::ChunkServer),
    ]
    .iter()
    .filter(|(open, _)| *open)
    .map(|(_, c)| c.as_str())
    .chain(gates.chunkservers.then_some(Component::Topology.as_str()))
    .collect();
    for object in existing {
        let in_managed_tier = object
            .component
            .as_deref()
            .is_some_and(|c| managed.contains(&c));
        if in_managed_tier && !wanted.contains(&(object.kind.clone(), object.name.clone())) {
            actions.push(Action::Delete {
                kind: object.kind.clone(),
                name: object.name.clone(),
            });
        }
    }
    actions
}
