//! Why a tier's pods do not come up, read from what the scheduler, the PV controller, the kubelet
//! and the node lifecycle controller write on pods, claims and nodes. Pure.
//!
//! The shapes read, as Kubernetes v1.32 writes them:
//! - the scheduler: condition `PodScheduled` False, reason `Unschedulable`
//!   (`v1.PodReasonUnschedulable`, pkg/scheduler/schedule_one.go `handleSchedulingFailure`), its
//!   message `0/3 nodes are available: …`;
//! - the kubelet: a container's (or init container's) `state.waiting.reason` `ErrImagePull`,
//!   `ImagePullBackOff`, `InvalidImageName` (pkg/kubelet/images/types.go) or `CrashLoopBackOff`
//!   (pkg/kubelet/kuberuntime), with the last run in `lastState.terminated` (exit code, message);
//! - the PV controller: a claim stays `Pending`; with no class and no default it only emits
//!   "no persistent volumes available for this claim and no storage class is set"
//!   (pkg/controller/volume/persistentvolume/pv_controller.go), so the claim's own
//!   `storageClassName` and the classes that exist tell which case it is — read only for a pod
//!   the scheduler marked unschedulable (its VolumeBinding plugin fails on such a claim), since
//!   a claim of a WaitForFirstConsumer class is Pending until its pod is scheduled;
//! - the node lifecycle controller: a node's `Ready` condition `False` or `Unknown`
//!   (reason `NodeStatusUnknown` when the kubelet stops posting); a pod deleted there stays
//!   Terminating until the kubelet comes back or someone force-deletes it;
//! - the StatefulSet controller: a pod it cannot create leaves no object, only a Warning Event
//!   on the StatefulSet, reason `FailedCreate`, message `create Pod <pod> in StatefulSet <set>
//!   failed error: <the API server's answer>`, and `SuccessfulCreate` / `create Pod <pod> in
//!   StatefulSet <set> successful` once it can (pkg/controller/statefulset/
//!   stateful_pod_control.go `recordPodEvent`); it retries with back-off, bumping the Event's
//!   count and last timestamp.

use std::cell::OnceCell;
use std::collections::{BTreeMap, BTreeSet, HashMap};

use fnv::{FnvHashMap, FnvHashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::Event;

use super::model::action::component_of;
use super::model::claim::ClaimReading;
use super::model::conditions::Reason;
use super::model::observation::Blocker;
use super::model::pod::{ContainerReading, PodReading};
use crate::names::Component;

/// What the blockers read besides the pods.
pub struct Surroundings<'a> {
    pub claims: &'a [Arc<ClaimReading>],
    /// The StorageClasses that exist, among those the cluster's claims name.
    pub classes: &'a BTreeSet<String>,
    /// Nodes whose `Ready` condition is not True.
    pub unready_nodes: &'a BTreeSet<String>,
}

/// The first line of a message: enough to name the cause in a condition.
fn first_line(text: &str) -> &str {
    text.lines()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .unwrap_or_default()
}

/// Image pulls the kubelet gave up on, or backs off from.
const PULL_FAILURES: [&str; 3] = ["ErrImagePull", "ImagePullBackOff", "InvalidImageName"];

fn containers(pod: &PodReading) -> impl Iterator<Item = (&'static str, &ContainerReading)> {
    let init = pod.init_containers.iter().map(|c| ("init container", c));
    init.chain(pod.containers.iter().map(|c| ("container", c)))
}

fn container_blocker(pod_name: &str, what: &str, c: &ContainerReading) -> Option<(Reason, String)> {
    let (reason, message) = c.state.as_ref()?.waiting()?;
    let reason = reason?;
    if PULL_FAILURES.contains(&reason) {
        let said = first_line(message.unwrap_or_default());
        return Some((
            Reason::ImagePullFailed,
            format!(
                "pod {pod_name}: {what} {} cannot pull {} ({reason}: {said})",
                c.name, c.image
            ),
        ));
    }
    if reason == "CrashLoopBackOff" {
        let said = c.last_terminated.as_ref().map_or(String::new(), |t| {
            let why = t
                .message
                .as_deref()
                .map(first_line)
                .filter(|m| !m.is_empty());
            let why = why.or(t.reason.as_deref()).unwrap_or_default();
            format!(": exit {} {why}", t.exit_code)
        });
        return Some((
            Reason::ContainerFailing,
            format!(
                "pod {pod_name}: {what} {} keeps failing (CrashLoopBackOff{said})",
                c.name
            ),
        ));
    }
    None
}

/// A pending claim's cause, when its class is the problem or it cannot bind.
fn claim_blocker(claim: &ClaimReading, classes: &BTreeSet<String>) -> Option<(Reason, String)> {
    if !claim.pending {
        return None;
    }
    let name = claim.name.as_str();
    let class = (claim.class.as_deref()).filter(|c| !c.is_empty());
    Some(match class {
        None => (
            Reason::NoStorageClass,
            format!(
                "PersistentVolumeClaim {name} names no StorageClass and the cluster had no default one when it was created: set spec.<component>.storage.storageClassName, or make a class the default and delete the claim"
            ),
        ),
        Some(class) if !classes.contains(class) => (
            Reason::StorageClassNotFound,
            format!("PersistentVolumeClaim {name}: StorageClass {class} does not exist"),
        ),
        Some(class) => (
            Reason::ClaimPending,
            format!(
                "PersistentVolumeClaim {name} is Pending: no volume of StorageClass {class} is available or provisioned for it yet"
            ),
        ),
    })
}

/// The claims of each pod, by the pod's name. A StatefulSet pod's claims are named
/// `<template>-<pod>` (the cache keeps no pod volumes): each claim is indexed under every
/// name that follows a `-` in its own, so finding a pod's claims is one lookup, not a search
/// of every claim (which made the blockers quadratic with many unschedulable pods). Built at
/// the first lookup: most passes have no unschedulable pod.
struct ClaimsByPod<'a> {
    claims: &'a [Arc<ClaimReading>],
    index: OnceCell<HashMap<&'a str, Vec<&'a ClaimReading>>>,
}

impl<'a> ClaimsByPod<'a> {
    fn new(claims: &'a [Arc<ClaimReading>]) -> Self {
        let index = OnceCell::new();
        ClaimsByPod { claims, index }
    }

    fn of(&self, pod: &str) -> &[&'a ClaimReading] {
        let index = self.index.get_or_init(|| {
            let mut index: HashMap<&str, Vec<&ClaimReading>> = HashMap::new();
            for claim in self.claims {
                let name = claim.name.as_str();
                for (dash, _) in name.match_indices('-') {
                    index.entry(&name[dash + 1..]).or_default().push(&**claim);
                }
            }
            index
        });
        index.get(pod).map_or(&[], Vec::as_slice)
    }
}

/// What keeps one pod from running, if anything: the first of its node, its claims, its
/// scheduling and its containers, in that order (a claim that cannot bind also makes the pod
/// unschedulable; the claim is the cause).
fn pod_blocker(
    pod: &PodReading,
    claims: &ClaimsByPod,
    around: &Surroundings,
) -> Option<(Reason, String)> {
    let name = pod.name.as_str();
    let node = pod.node.as_deref();
    if pod.terminating {
        let node = node.filter(|n| around.unready_nodes.contains(*n))?;
        return Some((
            Reason::NodeLost,
            format!(
                "pod {name} is stuck terminating on node {node}, which is not Ready: bring the node back, or once it is gone for good delete the Node object (or force-delete the pod)"
            ),
        ));
    }
    // Only once the scheduler gave up on the pod: until then a Pending claim is normal (a
    // WaitForFirstConsumer class binds it at scheduling).
    let unschedulable = pod.unschedulable.as_deref();
    if node.is_none()
        && unschedulable.is_some()
        && let Some(found) = (claims.of(name).iter()).find_map(|c| claim_blocker(c, around.classes))
    {
        return Some(found);
    }
    if let Some(said) = unschedulable {
        return Some((
            Reason::Unschedulable,
            format!("pod {name} is unschedulable: {}", first_line(said)),
        ));
    }
    // Only a waiting container blocks: most pods have none, told without reading them.
    if !pod.derived().waiting {
        return None;
    }
    containers(pod).find_map(|(what, c)| container_blocker(name, what, c))
}

/// Every blocker of the cluster's pods, in pod name order, each tier's own.
pub fn blockers(pods: &[Arc<PodReading>], around: &Surroundings) -> Vec<Blocker> {
    let claims = ClaimsByPod::new(around.claims);
    let mut found: Vec<(String, Blocker)> = pods
        .iter()
        .filter_map(|pod| {
            let component = pod.tier?;
            let (reason, message) = pod_blocker(pod, &claims, around)?;
            let name = pod.name.clone();
            Some((
                name,
                Blocker {
                    component,
                    reason,
                    message,
                },
            ))
        })
        .collect();
    found.sort_by(|a, b| a.0.cmp(&b.0));
    found.into_iter().map(|(_, b)| b).collect()
}

/// `<set>-<ordinal>` split, when the name is exactly what a StatefulSet names its pod
/// `ordinal` (decimal, no sign, no leading zero): the name equals `format!("{set}-{ordinal}")`.
/// The ordinal was derived when the pod was read.
fn set_and_ordinal(pod: &PodReading) -> Option<(&str, i32)> {
    let ordinal = pod.derived().ordinal?;
    // The name ends with `-` and the ordinal's decimal digits.
    let digits = ordinal.checked_ilog10().unwrap_or(0) as usize + 1;
    let stem = pod.name.len().checked_sub(digits + 1)?;
    Some((&pod.name[..stem], ordinal))
}

/// A StatefulSet of a tier and the pods it wants that do not exist.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MissingPods {
    pub set: String,
    pub component: Component,
    pub pods: Vec<String>,
}

/// Every tier StatefulSet with pods missing: ordinals below its replicas with no pod of that
/// name (the one case where the reason is only in an Event).
pub fn missing_pods(sets: &[StatefulSet], pods: &[Arc<PodReading>]) -> Vec<MissingPods> {
    let tiers: BTreeMap<&str, Component> =
        Component::TIERS.iter().map(|c| (c.as_str(), *c)).collect();
    // The ordinals each name prefix has a pod for, read in one pass: a name made and looked up
    // per ordinal cost a copy and a hash of each of thousands of names. The pods come sorted
    // by name, so a prefix's pods follow one another: one comparison with the prefix before
    // instead of a hash per pod.
    let mut runs: Vec<(&str, Vec<i32>)> = Vec::new();
    for (prefix, ordinal) in pods.iter().filter_map(|p| set_and_ordinal(p)) {
        match runs.last_mut() {
            Some((last, ordinals)) if *last == prefix => ordinals.push(ordinal),
            _ => runs.push((prefix, vec![ordinal])),
        }
    }
    let mut existing: FnvHashMap<&str, Vec<i32>> = FnvHashMap::default();
    for (prefix, ordinals) in runs {
        existing.entry(prefix).or_default().extend(ordinals);
    }
    (sets.iter())
        .filter_map(|set| {
            let name = set.metadata.name.clone()?;
            let component = *tiers.get(component_of(&set.metadata)?)?;
            let replicas = set.spec.as_ref()?.replicas.unwrap_or(1).max(0);
            let present = existing.get(name.as_str()).map_or(&[][..], Vec::as_slice);
            // Names are unique, so are a prefix's ordinals: as many below `replicas` as it
            // asks for means none is missing, the common case, told without a set.
            if present
                .iter()
                .filter(|o| (0..replicas).contains(*o))
                .count()
                == replicas as usize
            {
                return None;
            }
            let present: FnvHashSet<i32> = present.iter().copied().collect();
            let pods: Vec<String> = (0..replicas)
                .filter(|ordinal| !present.contains(ordinal))
                .map(|ordinal| format!("{name}-{ordinal}"))
                .collect();
            (!pods.is_empty()).then_some(MissingPods {
                set: name,
                component,
                pods,
            })
        })
        .collect()
}

/// When the read step lists a StatefulSet's Events: its pods must have been missing, the same
/// ones, for `patience` (a StatefulSet controller that is merely slow, creating a big tier's
/// pods, is not blocked, and listing at every reconcile while it works cost one request per
/// set per reconcile); the listing is then reused while they stay missing, and renewed after
/// `relist` (the controller retries with back-off and its Event says the latest answer).
#[derive(Clone, Copy, Debug)]
pub struct EventListing {
    pub patience: Duration,
    pub relist: Duration,
}

impl Default for EventListing {
    fn default() -> Self {
        EventListing {
            patience: Duration::from_secs(10),
            relist: Duration::from_secs(60),
        }
    }
}

/// One StatefulSet's missing pods as last seen, and its Events as last listed.
#[derive(Clone, Debug)]
struct SetSeen {
    pods: Vec<String>,
    since: Instant,
    listed: Option<(Instant, Vec<Event>)>,
}

/// What the read steps saw of each cluster's StatefulSets with pods missing, kept between
/// reconciles (in memory: after a restart the patience starts again).
#[derive(Debug, Default)]
pub struct SetEventsMemo(HashMap<(String, String), BTreeMap<String, SetSeen>>);

/// What one read step does about the StatefulSets with pods missing.
#[derive(Debug, Default, PartialEq)]
pub struct SetEventsPlan {
    /// The sets whose Events to list now.
    pub list: Vec<String>,
    /// The Events already listed for the others.
    pub known: Vec<Event>,
    /// When a set's patience runs out: look again then.
    pub look_again: Option<Duration>,
}

impl SetEventsMemo {
    /// The plan for cluster `namespace/name` whose sets miss `missing` now; sets no longer
    /// missing pods are forgotten.
    pub fn plan(
        &mut self,
        cluster: (&str, &str),
        missing: &[MissingPods],
        now: Instant,
        timing: EventListing,
    ) -> SetEventsPlan {
        let key = (cluster.0.to_string(), cluster.1.to_string());
        let previous = self.0.remove(&key).unwrap_or_default();
        let mut seen = BTreeMap::new();
        let mut plan = SetEventsPlan::default();
        for set in missing {
            let same = (previous.get(&set.set))
                .filter(|s| s.pods == set.pods)
                .cloned();
            let entry = same.unwrap_or(SetSeen {
                pods: set.pods.clone(),
                since: now,
                listed: None,
            });
            let waited = now.saturating_duration_since(entry.since);
            match &entry.listed {
                _ if waited < timing.patience => {
                    let left = timing.patience - waited;
                    plan.look_again = Some(plan.look_again.map_or(left, |l| l.min(left)));
                }
                Some((at, events)) if now.saturating_duration_since(*at) < timing.relist => {
                    plan.known.extend(events.iter().cloned())
                }
                _ => plan.list.push(set.set.clone()),
            }
            seen.insert(set.set.clone(), entry);
        }
        if !seen.is_empty() {
            self.0.insert(key, seen);
        }
        plan
    }

    /// What a listing of `set`'s Events returned.
    pub fn listed(&mut self, cluster: (&str, &str), set: &str, events: &[Event], now: Instant) {
        let key = (cluster.0.to_string(), cluster.1.to_string());
        if let Some(seen) = self.0.get_mut(&key).and_then(|sets| sets.get_mut(set)) {
            seen.listed = Some((now, events.to_vec()));
        }
    }

    /// The cluster is gone.
    pub fn forget(&mut self, cluster: (&str, &str)) {
        self.0
            .remove(&(cluster.0.to_string(), cluster.1.to_string()));
    }
}

/// When an Event last happened, by whichever of its clocks its recorder set.
fn last_seen(event: &Event) -> Option<k8s_openapi::jiff::Timestamp> {
    let series = event
        .series
        .as_ref()
        .and_then(|s| s.last_observed_time.as_ref());
    (series.map(|t| t.0))
        .or(event.last_timestamp.as_ref().map(|t| t.0))
        .or(event.event_time.as_ref().map(|t| t.0))
        .or(event.first_timestamp.as_ref().map(|t| t.0))
        .or(event.metadata.creation_timestamp.as_ref().map(|t| t.0))
}

/// The pods the StatefulSet controller failed to create and has not created since: for each
/// missing pod, the newest of its StatefulSet's create Events that names it, when that one is a
/// `FailedCreate` (an older failure followed by `SuccessfulCreate` is history).
pub fn creation_blockers(missing: &[MissingPods], events: &[Event]) -> Vec<Blocker> {
    let mut found = Vec::new();
    for MissingPods {
        set,
        component,
        pods,
    } in missing
    {
        let of_set: Vec<&Event> = (events.iter())
            .filter(|e| {
                e.involved_object.kind.as_deref() == Some("StatefulSet")
                    && e.involved_object.name.as_deref() == Some(set.as_str())
            })
            .collect();
        for pod in pods {
            let prefix = format!("create Pod {pod} in StatefulSet {set} ");
            let newest = (of_set.iter())
                .filter(|e| (e.message.as_deref()).is_some_and(|m| m.starts_with(&prefix)))
                .max_by_key(|e| last_seen(e));
            let Some(event) = newest.filter(|e| e.reason.as_deref() == Some("FailedCreate")) else {
                continue;
            };
            let said = event.message.as_deref().unwrap_or_default();
            let error = said.split_once(" failed error: ").map_or(said, |(_, e)| e);
            found.push(Blocker {
                component: *component,
                reason: Reason::PodCreateFailed,
                message: format!(
                    "StatefulSet {set} cannot create pod {pod}: {}",
                    first_line(error)
                ),
            });
        }
    }
    found
}

/// The StorageClasses of the Pending claims: read (by GET) to tell a class that does not
/// exist from a volume not available yet.
pub fn classes_of_pending_claims(claims: &[Arc<ClaimReading>]) -> BTreeSet<String> {
    (claims.iter())
        .filter(|c| c.pending)
        .filter_map(|c| c.class.clone())
        .filter(|class| !class.is_empty())
        .collect()
}

#[cfg(test)]
#[path = "blockers_tests.rs"]
mod tests;
