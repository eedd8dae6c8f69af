//! Pure planning: which tiers may be applied now (bring-up gates), which spec changes are
//! refused, and the apply/delete actions that move the cluster to the desired objects.

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::{ConfigMap, Service};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;

use super::model::action::{Action, ExistingObject, Object, ObjectKind, applied_hash};
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

/// One of a tier's objects, borrowed: the plan copies only the objects it applies.
#[derive(Clone, Copy)]
enum TierObject<'a> {
    ConfigMap(&'a ConfigMap),
    Service(&'a Service),
    Budget(&'a PodDisruptionBudget),
    StatefulSet(&'a StatefulSet),
}

impl<'a> TierObject<'a> {
    fn kind(self) -> ObjectKind {
        match self {
            TierObject::ConfigMap(_) => ObjectKind::ConfigMap,
            TierObject::Service(_) => ObjectKind::Service,
            TierObject::Budget(_) => ObjectKind::PodDisruptionBudget,
            TierObject::StatefulSet(_) => ObjectKind::StatefulSet,
        }
    }

    fn name(self) -> &'a str {
        let meta = match self {
            TierObject::ConfigMap(o) => &o.metadata,
            TierObject::Service(o) => &o.metadata,
            TierObject::Budget(o) => &o.metadata,
            TierObject::StatefulSet(o) => &o.metadata,
        };
        meta.name.as_deref().unwrap_or_default()
    }

    fn applied_hash(self) -> String {
        match self {
            TierObject::ConfigMap(o) => applied_hash(o),
            TierObject::Service(o) => applied_hash(o),
            TierObject::Budget(o) => applied_hash(o),
            TierObject::StatefulSet(o) => applied_hash(o),
        }
    }

    fn to_object(self) -> Object {
        match self {
            TierObject::ConfigMap(o) => Object::ConfigMap(o.clone()),
            TierObject::Service(o) => Object::Service(o.clone()),
            TierObject::Budget(o) => Object::PodDisruptionBudget(o.clone()),
            TierObject::StatefulSet(o) => Object::StatefulSet(o.clone()),
        }
    }
}

/// A tier's objects in apply order: ConfigMaps and Services first, budgets next,
/// StatefulSets last, so pods start with their config and their DNS names in place.
fn tier_refs(tier: &Tier) -> impl Iterator<Item = TierObject<'_>> {
    let config_maps = tier.config_maps.iter().map(TierObject::ConfigMap);
    let services = tier.services.iter().map(TierObject::Service);
    let budgets = tier.budgets.iter().map(TierObject::Budget);
    let sets = tier.stateful_sets.iter().map(TierObject::StatefulSet);
    config_maps.chain(services).chain(budgets).chain(sets)
}

/// A tier's objects in apply order (see [`tier_refs`]), copied.
pub fn tier_objects(tier: &Tier) -> Vec<Object> {
    tier_refs(tier).map(TierObject::to_object).collect()
}

/// A tier's objects beside their hashes.
fn hashed<'a>(
    tier: &'a Tier,
    hashes: &'a [String],
) -> impl Iterator<Item = (TierObject<'a>, &'a str)> {
    debug_assert_eq!(tier_refs(tier).count(), hashes.len(), "a hash per object");
    tier_refs(tier).zip(hashes.iter().map(String::as_str))
}

/// The hash each object of the desired tiers and the topology ConfigMap is applied with, in
/// the order the plan visits them. Serializing and hashing every object is most of what
/// planning costs, so it is done once for the objects a decision reuses
/// (reconcile/desired_memo.rs).
#[derive(Clone, Debug, PartialEq)]
pub struct AppliedHashes {
    etcd: Vec<String>,
    mds: Vec<String>,
    chunkservers: Vec<String>,
    topology: String,
}

impl AppliedHashes {
    pub fn of(desired: &DesiredObjects) -> Self {
        let tier = |tier| tier_refs(tier).map(TierObject::applied_hash).collect();
        AppliedHashes {
            etcd: tier(&desired.etcd),
            mds: tier(&desired.mds),
            chunkservers: tier(&desired.chunkservers),
            topology: applied_hash(&desired.topology),
        }
    }

    /// After the topology ConfigMap of the objects was rebuilt.
    pub fn set_topology(&mut self, topology: &ConfigMap) {
        self.topology = applied_hash(topology);
    }
}

/// The actions, in order, for the tiers the gates allow: apply what differs from what was
/// last applied, then delete this cluster's objects of those tiers that are no longer desired.
pub fn plan(desired: &DesiredObjects, existing: &[ExistingObject], gates: Gates) -> Vec<Action> {
    plan_hashed(desired, &AppliedHashes::of(desired), existing, gates)
}

/// [`plan`] with the objects' hashes already known: `hashes` are [`AppliedHashes::of`]
/// `desired`.
pub fn plan_hashed(
    desired: &DesiredObjects,
    hashes: &AppliedHashes,
    existing: &[ExistingObject],
    gates: Gates,
) -> Vec<Action> {
    let mut objects: Vec<(TierObject, &str)> = hashed(&desired.etcd, &hashes.etcd).collect();
    if gates.mds {
        objects.extend(hashed(&desired.mds, &hashes.mds));
    }
    if gates.chunkservers {
        objects.push((TierObject::ConfigMap(&desired.topology), &hashes.topology));
        objects.extend(hashed(&desired.chunkservers, &hashes.chunkservers));
    }
    let existing_hashes: BTreeMap<(ObjectKind, &str), Option<&str>> = existing
        .iter()
        .map(|o| ((o.kind, o.name.as_str()), o.applied_hash.as_deref()))
        .collect();
    let mut wanted: BTreeSet<(ObjectKind, &str)> = BTreeSet::new();
    let mut actions = Vec::new();
    for (object, hash) in objects {
        let key = (object.kind(), object.name());
        if existing_hashes.get(&key).copied().flatten() != Some(hash) {
            let applied = object.to_object().with_hash(hash.to_string());
            actions.push(Action::Apply(Box::new(applied)));
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
        if in_managed_tier && !wanted.contains(&(object.kind, object.name.as_str())) {
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
