//! Pure planning: which tiers may be applied now (bring-up gates), which spec changes are
//! refused, and the apply/delete actions that move the cluster to the desired objects.

use std::collections::{BTreeMap, BTreeSet};

use super::model::action::{Action, ExistingObject, Object, ObjectKind};
use crate::desired::{DesiredObjects, Tier};
use crate::names::Component;
use crate::validate::{ValidatedCluster, check_slot_increase};

pub fn stateful_sets(
    existing: &[ExistingObject],
    component: Component,
) -> impl Iterator<Item = &ExistingObject> {
    existing.iter().filter(move |o| {
        o.kind == ObjectKind::StatefulSet && o.component.as_deref() == Some(component.as_str())
    })
}

pub fn tier_exists(existing: &[ExistingObject], component: Component) -> bool {
    stateful_sets(existing, component).next().is_some()
}

/// Holds back spec changes that would lose quorum or data, or could never be carried out,
/// returning the spec that is safe to apply and why each held change was refused.
/// `registered_server_port`: the port Curve registered the servers with, once the physical
/// pool exists (`topology::registered_server_port`).
pub fn refuse_unsafe_changes(
    cluster: &ValidatedCluster,
    existing: &[ExistingObject],
    registered_server_port: Option<i32>,
) -> (ValidatedCluster, Vec<String>) {
    let mut safe = cluster.clone();
    let mut refused = Vec::new();
    // Fewer ChunkServers (replicas or disksPerNode lowered) are retired one at a time:
    // reconcile/retire.rs.
    let slots = stateful_sets(existing, Component::ChunkServer).count() as i32;
    // New slots' ChunkServers register only on servers registered with port 0.
    if let Some(port) = registered_server_port
        && slots > 0
        && let Some(refusal) = check_slot_increase(slots, &cluster.spec.chunkservers, port)
    {
        refused.push(refusal.to_string());
        safe.spec.chunkservers.disks_per_node = slots;
    }
    // Volume sizes: reconcile/expansion.rs.
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

/// A tier's objects in apply order: ConfigMaps and Services first, budgets next,
/// StatefulSets last, so pods start with their config and their DNS names in place.
pub fn tier_objects(tier: &Tier) -> Vec<Object> {
    let mut objects: Vec<Object> = tier
        .config_maps
        .iter()
        .cloned()
        .map(Object::ConfigMap)
        .collect();
    objects.extend(tier.services.iter().cloned().map(Object::Service));
    objects.extend(
        tier.budgets
            .iter()
            .cloned()
            .map(Object::PodDisruptionBudget),
    );
    objects.extend(tier.stateful_sets.iter().cloned().map(Object::StatefulSet));
    objects
}

/// The actions, in order, for the tiers the gates allow: apply what differs from what was
/// last applied, then delete this cluster's objects of those tiers that are no longer desired.
pub fn plan(desired: &DesiredObjects, existing: &[ExistingObject], gates: Gates) -> Vec<Action> {
    let mut objects = tier_objects(&desired.etcd);
    if gates.mds {
        objects.extend(tier_objects(&desired.mds));
    }
    if gates.chunkservers {
        objects.push(Object::ConfigMap(desired.topology.clone()));
        objects.extend(tier_objects(&desired.chunkservers));
    }
    let existing_hashes: BTreeMap<(ObjectKind, &str), Option<&String>> = existing
        .iter()
        .map(|o| ((o.kind, o.name.as_str()), o.applied_hash.as_ref()))
        .collect();
    let mut wanted: BTreeSet<(ObjectKind, String)> = BTreeSet::new();
    let mut actions = Vec::new();
    for object in objects {
        let (object, hash) = object.with_applied_hash();
        let key = (object.kind(), object.name().to_string());
        if existing_hashes
            .get(&(key.0, key.1.as_str()))
            .copied()
            .flatten()
            != Some(&hash)
        {
            actions.push(Action::Apply(Box::new(object)));
        }
        wanted.insert(key);
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
        if in_managed_tier && !wanted.contains(&(object.kind, object.name.clone())) {
            actions.push(Action::Delete {
                kind: object.kind,
                name: object.name.clone(),
            });
        }
    }
    actions
}

#[cfg(test)]
#[path = "plan_tests.rs"]
mod tests;
