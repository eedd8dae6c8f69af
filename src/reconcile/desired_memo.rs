//! A cluster's desired objects, kept from one decision to the next with the hash each is
//! applied with, and reused while what they are built from is unchanged. At 12,000
//! ChunkServers, building the objects and hashing them were a third of a steady decision
//! (docs/dev/measurements.md); a steady cluster's inputs do not change.
//!
//! Reuse never skips a write: the objects are reused only when every input they are built
//! from equals the one they were built from (compared in full, not by a hash of it), and the
//! builders are pure. Debug builds check each reuse against a fresh build.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use k8s_openapi::api::core::v1::ConfigMap;

use super::plan::AppliedHashes;
use crate::desired::{self, DesiredObjects, Observed};
use crate::names::slot_set_name;
use crate::validate::ValidatedCluster;

/// Everything the desired objects are built from.
#[derive(Clone, Debug, PartialEq)]
pub struct DesiredInputs {
    /// The spec with every held-back change left out.
    pub safe: ValidatedCluster,
    pub observed: Observed,
    /// A restore keeps the MDS tier stopped.
    pub hold_mds: bool,
    /// While a ChunkServer leaves, the pods each slot keeps.
    pub slot_replicas: BTreeMap<i32, i32>,
}

impl DesiredInputs {
    /// The objects these inputs ask for.
    pub fn build(&self) -> DesiredObjects {
        let mut desired = desired::build(&self.safe, &self.observed);
        // A restore keeps the MDS tier stopped (its config, and so the ChunkServers', unchanged).
        if self.hold_mds {
            for set in &mut desired.mds.stateful_sets {
                if let Some(spec) = set.spec.as_mut() {
                    spec.replicas = Some(0);
                }
            }
        }
        // While a ChunkServer leaves, each slot keeps the pods that have not left yet.
        for (slot, replicas) in &self.slot_replicas {
            let name = slot_set_name(&self.safe.name, *slot);
            let set = (desired.chunkservers.stateful_sets.iter_mut())
                .find(|set| set.metadata.name.as_deref() == Some(name.as_str()));
            if let Some(spec) = set.and_then(|set| set.spec.as_mut()) {
                spec.replicas = Some(*replicas);
            }
        }
        desired
    }
}

/// Desired objects with the hashes they are applied with, always of those objects: the two
/// change only together.
#[derive(Clone, Debug)]
pub struct Prepared {
    objects: Arc<DesiredObjects>,
    hashes: Arc<AppliedHashes>,
}

impl Prepared {
    pub fn new(objects: DesiredObjects) -> Self {
        let hashes = AppliedHashes::of(&objects);
        Prepared {
            objects: Arc::new(objects),
            hashes: Arc::new(hashes),
        }
    }

    pub fn objects(&self) -> &DesiredObjects {
        &self.objects
    }

    pub fn hashes(&self) -> &AppliedHashes {
        &self.hashes
    }

    /// The objects, shared (a decision hands them on without copying them).
    pub fn shared(&self) -> Arc<DesiredObjects> {
        self.objects.clone()
    }

    /// The topology ConfigMap rebuilt (the pool Jobs made progress): this copy changes, the
    /// objects kept for reuse do not.
    pub fn set_topology(&mut self, topology: ConfigMap) {
        Arc::make_mut(&mut self.hashes).set_topology(&topology);
        Arc::make_mut(&mut self.objects).topology = topology;
    }
}

/// The inputs of a cluster's last desired objects, and those objects.
#[derive(Clone, Debug, Default)]
pub struct DesiredMemo {
    last: Option<(DesiredInputs, Prepared)>,
}

impl DesiredMemo {
    /// The objects `inputs` build: the last ones when they were built from equal inputs.
    pub fn prepare(&mut self, inputs: DesiredInputs) -> Prepared {
        if let Some((seen, prepared)) = &self.last
            && *seen == inputs
        {
            debug_assert!(
                *prepared.objects == inputs.build()
                    && *prepared.hashes == AppliedHashes::of(prepared.objects()),
                "reused desired objects are what their inputs build"
            );
            return prepared.clone();
        }
        let prepared = Prepared::new(inputs.build());
        self.last = Some((inputs, prepared.clone()));
        prepared
    }

    /// Whether it holds objects to reuse.
    pub fn holds(&self) -> bool {
        self.last.is_some()
    }
}

/// Every cluster's memo, by namespace and name. A reconcile takes its cluster's out and puts
/// it back (the controller never reconciles one cluster twice at once); a deleted cluster's is
/// dropped.
#[derive(Debug, Default)]
pub struct DesiredMemos(Mutex<HashMap<(String, String), DesiredMemo>>);

impl DesiredMemos {
    pub fn take(&self, namespace: &str, name: &str) -> DesiredMemo {
        let key = (namespace.to_string(), name.to_string());
        self.lock().remove(&key).unwrap_or_default()
    }

    pub fn keep(&self, namespace: &str, name: &str, memo: DesiredMemo) {
        self.lock()
            .insert((namespace.to_string(), name.to_string()), memo);
    }

    pub fn forget(&self, namespace: &str, name: &str) {
        self.lock()
            .remove(&(namespace.to_string(), name.to_string()));
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<(String, String), DesiredMemo>> {
        self.0.lock().expect("not poisoned")
    }
}

#[cfg(test)]
#[path = "desired_memo_tests.rs"]
mod tests;
