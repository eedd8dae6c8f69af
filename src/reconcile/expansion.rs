//! Growing the volumes of a running cluster, as CloudNativePG and Rook do it. Pure.
//!
//! A StatefulSet's volume claim templates cannot change, and its controller never resizes the
//! claims it made. So, when `spec.<component>.storage.size` grows:
//!
//! 1. the claims' StorageClass must allow expansion (`allowVolumeExpansion: true`; the read
//!    step fetches the class only while a claim asks for less than the spec). If it does not,
//!    nothing is changed and the refusal says so; setting the size back is accepted.
//! 2. each claim's `spec.resources.requests.storage` is raised to the new size;
//! 3. each StatefulSet whose template asks for another size is deleted with its pods orphaned
//!    (they keep running) and applied again with the new templates: it adopts its pods back,
//!    and with `updateStrategy: OnDelete` nothing restarts. An operator stopped in between
//!    finds pods without their StatefulSet: the tier exists and is re-created
//!    ([`orphaned`]), never brought up afresh;
//! 4. the status shows the expansion until every claim reports the new capacity.
//!
//! ChunkServers must restart to use the space: Curve v1.2.6's ChunkServer scans its chunk file
//! pool only at start (src/chunkserver/datastore/file_pool.cpp, `FilePool::Initialize` →
//! `ScanInternal`), and only `curve_format` adds chunk files to it (see
//! `desired::chunkserver::format_script`). So their StatefulSets keep their template until every
//! claim's volume grew (capacity reached, or only the file system resize on the node left):
//! then the new template (which carries the size) rolls them through the safe path, one
//! server (or zone) at a time behind Curve's copyset health check.
//!
//! A smaller size than the volumes have is refused (volumes never shrink); the larger size is
//! kept, and any size at least that large is accepted again.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use super::model::action::{Action, ExistingObject, Object, ObjectKind, claim_size};
use super::model::claim::ClaimReading;
use super::model::pod::PodReading;
use super::model::states::{ClaimProgress, VolumeExpansion};
use super::plan;
use crate::names::Component;
use crate::validate::ValidatedCluster;
use crate::validate::k8s::parse_quantity;

/// The components with volumes: the field of their size, and whether their pods must restart
/// to use grown space.
const VOLUMES: [(Component, &str, bool); 2] = [
    (Component::Etcd, "spec.etcd.storage.size", false),
    (
        Component::ChunkServer,
        "spec.chunkservers.storage.size",
        true,
    ),
];

fn size_mut(cluster: &mut ValidatedCluster, component: Component) -> &mut String {
    match component {
        Component::ChunkServer => &mut cluster.spec.chunkservers.storage.size,
        _ => &mut cluster.spec.etcd.storage.size,
    }
}

fn bytes(quantity: &str) -> f64 {
    parse_quantity(quantity).unwrap_or(0.0)
}

/// Less than `size`; an unknown quantity counts as nothing.
fn below(quantity: Option<&str>, size: &str) -> bool {
    quantity.map_or(0.0, bytes) < bytes(size)
}

fn largest<'a>(sizes: impl Iterator<Item = &'a str>) -> Option<&'a str> {
    sizes.max_by(|a, b| bytes(a).total_cmp(&bytes(b)))
}

fn smallest<'a>(sizes: impl Iterator<Item = &'a str>) -> Option<&'a str> {
    sizes.min_by(|a, b| bytes(a).total_cmp(&bytes(b)))
}

/// One claim as the expansion reads it, borrowed from its reading (whose sizes were parsed
/// once, when the watch delivered the claim).
struct Claim<'a> {
    name: &'a str,
    class: Option<&'a str>,
    request: Option<&'a str>,
    /// `request` in bytes; an unknown quantity counts as nothing.
    request_bytes: f64,
    capacity: Option<&'a str>,
    capacity_bytes: Option<f64>,
    resize_pending: bool,
}

impl<'a> Claim<'a> {
    fn of(claim: &'a ClaimReading) -> Claim<'a> {
        Claim {
            name: &claim.name,
            class: claim.class.as_deref(),
            request: claim.request.as_ref().map(|r| r.text.as_str()),
            request_bytes: claim.request.as_ref().map_or(0.0, |r| r.bytes),
            capacity: claim.capacity.as_ref().map(|c| c.text.as_str()),
            capacity_bytes: claim.capacity.as_ref().map(|c| c.bytes),
            resize_pending: claim.resize_pending,
        }
    }

    fn progress(&self, target_bytes: f64, requested_now: bool) -> ClaimProgress {
        if requested_now {
            ClaimProgress::Requested
        } else if self.capacity_bytes.is_none_or(|c| c >= target_bytes) {
            // A claim not bound yet reports no capacity: it is provisioned at its request.
            ClaimProgress::Grown
        } else if self.resize_pending {
            ClaimProgress::FileSystemResizePending
        } else {
            ClaimProgress::Resizing
        }
    }

    /// Why this claim cannot be expanded, if it cannot.
    fn refusal(&self, classes: &BTreeMap<String, bool>) -> Option<String> {
        let Some(class) = self.class else {
            return Some(format!(
                "PersistentVolumeClaim {} has no StorageClass, so it cannot be expanded",
                self.name
            ));
        };
        match classes.get(class) {
            Some(true) => None,
            Some(false) => Some(format!(
                "StorageClass {class} does not allow volume expansion (its allowVolumeExpansion is not true)"
            )),
            None => Some(format!(
                "StorageClass {class} of PersistentVolumeClaim {} does not exist",
                self.name
            )),
        }
    }
}

/// One component's volumes as they are and as the spec wants them.
struct Volumes<'a> {
    component: Component,
    field: &'static str,
    restarts: bool,
    /// The sizes the component's StatefulSets ask for now.
    templates: Vec<&'a str>,
    claims: Vec<Claim<'a>>,
    /// The largest size a template or claim asks for.
    current: &'a str,
    /// What the spec asks for.
    wanted: String,
    /// `wanted`, never less than `current`.
    target: String,
    target_bytes: f64,
    /// The spec asks for less than `current`.
    shrinks: bool,
}

impl Volumes<'_> {
    fn to_grow(&self) -> impl Iterator<Item = &Claim<'_>> {
        self.claims
            .iter()
            .filter(|c| c.request_bytes < self.target_bytes)
    }
}

/// The volumes of every component that has any (before bring-up there is nothing to grow).
fn volumes<'a>(
    cluster: &ValidatedCluster,
    existing: &'a [ExistingObject],
    claims: &'a [Arc<ClaimReading>],
) -> Vec<Volumes<'a>> {
    let mut all = Vec::new();
    // One pass over the claims for every component.
    let mut by_component: [Vec<Claim>; VOLUMES.len()] = Default::default();
    for claim in claims.iter().filter(|c| !c.terminating) {
        let Some(tier) = claim.tier else {
            continue;
        };
        if let Some(i) = VOLUMES.iter().position(|v| v.0 == tier) {
            by_component[i].push(Claim::of(claim));
        }
    }
    for ((component, field, restarts), claims) in VOLUMES.into_iter().zip(by_component) {
        let templates: Vec<&str> = plan::stateful_sets(existing, component)
            .filter_map(|o| o.claim_size.as_deref())
            .collect();
        // The largest request, each parsed once: thousands of claims ask for the same size.
        let requested = (claims.iter())
            .filter(|c| c.request.is_some())
            .max_by(|a, b| a.request_bytes.total_cmp(&b.request_bytes))
            .and_then(|c| c.request);
        let Some(current) = largest(templates.iter().copied().chain(requested)) else {
            continue;
        };
        let wanted = match component {
            Component::ChunkServer => &cluster.spec.chunkservers.storage.size,
            _ => &cluster.spec.etcd.storage.size,
        };
        let shrinks = bytes(wanted) < bytes(current);
        let target = if shrinks { current } else { wanted };
        all.push(Volumes {
            component,
            field,
            restarts,
            templates,
            claims,
            current,
            target: target.to_string(),
            target_bytes: bytes(target),
            wanted: wanted.clone(),
            shrinks,
        });
    }
    all
}

/// The StorageClasses the decision needs: those of claims asking for less than the spec. None
/// for a cluster whose volumes have their size, so it costs no request.
pub fn classes_to_read(
    cluster: &ValidatedCluster,
    existing: &[ExistingObject],
    claims: &[Arc<ClaimReading>],
) -> BTreeSet<String> {
    volumes(cluster, existing, claims)
        .iter()
        .flat_map(|v| v.to_grow().filter_map(|c| c.class.map(str::to_string)))
        .collect()
}

/// What the expansion does in one decision.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ExpansionPlan {
    /// Size changes refused, each naming its field, what the volumes keep and the way back.
    pub refused: Vec<String>,
    /// The claims to resize.
    pub actions: Vec<Action>,
    /// The expansions under way.
    pub progress: Vec<VolumeExpansion>,
}

/// Plans the volume sizes: sets in `safe` the size each component's StatefulSets are built
/// with, and returns the claims to resize, the refusals and the progress. `classes` holds
/// `allowVolumeExpansion` of the StorageClasses [`classes_to_read`] named (a missing one does
/// not exist).
pub fn plan(
    safe: &mut ValidatedCluster,
    existing: &[ExistingObject],
    claims: &[Arc<ClaimReading>],
    classes: &BTreeMap<String, bool>,
) -> ExpansionPlan {
    let mut out = ExpansionPlan::default();
    let sizes: Vec<(Component, String)> = (volumes(safe, existing, claims).iter())
        .map(|v| (v.component, v.plan(classes, &mut out)))
        .collect();
    for (component, size) in sizes {
        *size_mut(safe, component) = size;
    }
    out
}

impl Volumes<'_> {
    /// Adds to `out` what these volumes need; returns the size to build their StatefulSets
    /// with.
    fn plan(&self, classes: &BTreeMap<String, bool>, out: &mut ExpansionPlan) -> String {
        if self.shrinks {
            out.refused.push(format!(
                "{}: volumes cannot shrink ({} → {}); they keep {}: set {} or more",
                self.field, self.current, self.wanted, self.current, self.current
            ));
        }
        let kept = largest(self.templates.iter().copied()).unwrap_or(self.current);
        if let Some(why) = self.to_grow().find_map(|c| c.refusal(classes)) {
            out.refused.push(format!(
                "{}: cannot grow the volumes ({kept} → {}): {why}; nothing was changed and they keep {kept} (set {kept} again, or allow expansion)",
                self.field, self.target
            ));
            return kept.to_string();
        }
        let requested: BTreeSet<&str> = self.to_grow().map(|c| c.name).collect();
        out.actions
            .extend(requested.iter().map(|name| Action::ResizeClaim {
                name: name.to_string(),
                size: self.target.clone(),
            }));
        // Borrowed: the names are copied only for an expansion to show.
        let progress: Vec<(&str, ClaimProgress)> = (self.claims.iter())
            .map(|c| {
                let now = requested.contains(c.name);
                (c.name, c.progress(self.target_bytes, now))
            })
            .collect();
        let template = self.template_size(&progress);
        out.progress.extend(self.under_way(progress));
        template
    }

    /// Pods that restart to use the space do so once it is there: their template (which
    /// carries the size) changes only then.
    fn template_size(&self, progress: &[(&str, ClaimProgress)]) -> String {
        let volumes_grown = progress.iter().all(|(_, p)| p.volume_grown());
        match smallest(self.templates.iter().copied()) {
            Some(old) if self.restarts && !volumes_grown => old.to_string(),
            _ => self.target.clone(),
        }
    }

    /// The expansion to show, while a template or a claim is behind the target.
    fn under_way(&self, progress: Vec<(&str, ClaimProgress)>) -> Option<VolumeExpansion> {
        let templates_behind = self.templates.iter().any(|t| below(Some(t), &self.target));
        if !templates_behind && progress.iter().all(|(_, p)| *p == ClaimProgress::Grown) {
            return None;
        }
        let reported = self.claims.iter().map(|c| c.capacity.or(c.request));
        Some(VolumeExpansion {
            component: self.component,
            from: smallest(reported.flatten())
                .or(smallest(self.templates.iter().copied()))
                .unwrap_or(self.current)
                .to_string(),
            to: self.target.clone(),
            claims: (progress.into_iter())
                .map(|(name, p)| (name.to_string(), p))
                .collect(),
            restarts: self.restarts,
        })
    }
}

/// A StatefulSet whose claim templates change cannot be updated: its apply becomes the delete
/// that orphans its pods, and it is applied again once it is gone (a set still being deleted
/// is left alone until then).
pub fn recreate_changed_sets(actions: Vec<Action>, existing: &[ExistingObject]) -> Vec<Action> {
    actions
        .into_iter()
        .filter_map(|action| {
            let Action::Apply(object) = &action else {
                return Some(action);
            };
            let Object::StatefulSet(set) = &**object else {
                return Some(action);
            };
            let Some(old) = existing
                .iter()
                .find(|o| o.kind == ObjectKind::StatefulSet && o.name == object.name())
            else {
                return Some(action);
            };
            if old.deleting {
                return None;
            }
            let new_size = claim_size(set);
            let changed = match (old.claim_size.as_deref(), new_size.as_deref()) {
                (Some(old), Some(new)) => bytes(old) != bytes(new),
                (old, new) => old.is_some() != new.is_some(),
            };
            if changed {
                Some(Action::OrphanStatefulSet {
                    name: old.name.clone(),
                    uid: old.uid.clone().unwrap_or_default(),
                })
            } else {
                Some(action)
            }
        })
        .collect()
}

/// Components whose pods run without any StatefulSet: one was deleted with its pods orphaned
/// and is not applied again yet (an operator stopped in between, or a user's orphaning
/// delete). The tier exists: it is re-created with the pods adopted, never brought up afresh.
pub fn orphaned(existing: &[ExistingObject], pods: &[Arc<PodReading>]) -> Vec<Component> {
    Component::TIERS
        .into_iter()
        .filter(|&component| !plan::tier_exists(existing, component))
        .filter(|component| pods.iter().any(|p| p.tier == Some(*component)))
        .collect()
}

/// A StatefulSet is being re-created: no pod is replaced meanwhile (orphaned pods belong to no
/// revision).
pub fn recreating(existing: &[ExistingObject], pods: &[Arc<PodReading>]) -> bool {
    existing
        .iter()
        .any(|o| o.kind == ObjectKind::StatefulSet && o.deleting)
        || !orphaned(existing, pods).is_empty()
}

#[cfg(test)]
#[path = "expansion_tests.rs"]
mod tests;
