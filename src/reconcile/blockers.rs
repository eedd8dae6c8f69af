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

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::{ContainerStatus, Event, PersistentVolumeClaim, Pod};

use super::model::action::component_of;
use super::model::conditions::Reason;
use super::model::observation::Blocker;
use crate::names::Component;

/// What the blockers read besides the pods.
pub struct Surroundings<'a> {
    pub claims: &'a [PersistentVolumeClaim],
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

fn unschedulable(pod: &Pod) -> Option<String> {
    let conditions = pod.status.as_ref()?.conditions.as_ref()?;
    let scheduled = conditions.iter().find(|c| c.type_ == "PodScheduled")?;
    (scheduled.status == "False" && scheduled.reason.as_deref() == Some("Unschedulable"))
        .then(|| scheduled.message.clone().unwrap_or_default())
}

/// Image pulls the kubelet gave up on, or backs off from.
const PULL_FAILURES: [&str; 3] = ["ErrImagePull", "ImagePullBackOff", "InvalidImageName"];

fn containers(pod: &Pod) -> impl Iterator<Item = (&'static str, &ContainerStatus)> {
    let status = pod.status.as_ref();
    let init = status.and_then(|s| s.init_container_statuses.as_ref());
    let main = status.and_then(|s| s.container_statuses.as_ref());
    (init.into_iter().flatten().map(|c| ("init container", c)))
        .chain(main.into_iter().flatten().map(|c| ("container", c)))
}

fn container_blocker(pod_name: &str, what: &str, c: &ContainerStatus) -> Option<(Reason, String)> {
    let waiting = c.state.as_ref()?.waiting.as_ref()?;
    let reason = waiting.reason.as_deref()?;
    if PULL_FAILURES.contains(&reason) {
        let said = first_line(waiting.message.as_deref().unwrap_or_default());
        return Some((
            Reason::ImagePullFailed,
            format!(
                "pod {pod_name}: {what} {} cannot pull {} ({reason}: {said})",
                c.name, c.image
            ),
        ));
    }
    if reason == "CrashLoopBackOff" {
        let last = c.last_state.as_ref().and_then(|s| s.terminated.as_ref());
        let said = last.map_or(String::new(), |t| {
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
fn claim_blocker(
    claim: &PersistentVolumeClaim,
    classes: &BTreeSet<String>,
) -> Option<(Reason, String)> {
    let phase = claim.status.as_ref().and_then(|s| s.phase.as_deref());
    if phase != Some("Pending") {
        return None;
    }
    let name = claim.metadata.name.as_deref().unwrap_or_default();
    let class = (claim.spec.as_ref()?.storage_class_name.as_deref()).filter(|c| !c.is_empty());
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

/// The claims of a pod's volumes.
fn pod_claims<'a>(
    pod: &Pod,
    claims: &'a [PersistentVolumeClaim],
) -> Vec<&'a PersistentVolumeClaim> {
    let names: Vec<&str> = (pod
        .spec
        .as_ref()
        .and_then(|s| s.volumes.as_ref())
        .into_iter()
        .flatten())
    .filter_map(|v| Some(v.persistent_volume_claim.as_ref()?.claim_name.as_str()))
    .collect();
    // A StatefulSet pod's claims are `<template>-<pod>`; the cache keeps no pod spec volumes,
    // so the names are also matched by that suffix.
    let pod_name = pod.metadata.name.as_deref().unwrap_or_default();
    (claims.iter())
        .filter(|c| {
            let name = c.metadata.name.as_deref().unwrap_or_default();
            names.contains(&name) || name.ends_with(&format!("-{pod_name}"))
        })
        .collect()
}

/// What keeps one pod from running, if anything: the first of its node, its claims, its
/// scheduling and its containers, in that order (a claim that cannot bind also makes the pod
/// unschedulable; the claim is the cause).
fn pod_blocker(pod: &Pod, around: &Surroundings) -> Option<(Reason, String)> {
    let name = pod.metadata.name.as_deref().unwrap_or_default();
    let node = pod.spec.as_ref().and_then(|s| s.node_name.as_deref());
    if pod.metadata.deletion_timestamp.is_some() {
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
    let unschedulable = unschedulable(pod);
    if node.is_none()
        && unschedulable.is_some()
        && let Some(found) = (pod_claims(pod, around.claims).into_iter())
            .find_map(|c| claim_blocker(c, around.classes))
    {
        return Some(found);
    }
    if let Some(said) = unschedulable {
        return Some((
            Reason::Unschedulable,
            format!("pod {name} is unschedulable: {}", first_line(&said)),
        ));
    }
    containers(pod).find_map(|(what, c)| container_blocker(name, what, c))
}

/// Every blocker of the cluster's pods, in pod name order, each tier's own.
pub fn blockers(pods: &[Pod], around: &Surroundings) -> Vec<Blocker> {
    let tiers: BTreeMap<&str, Component> =
        Component::TIERS.iter().map(|c| (c.as_str(), *c)).collect();
    let mut found: Vec<(String, Blocker)> = pods
        .iter()
        .filter_map(|pod| {
            let component = *tiers.get(component_of(&pod.metadata)?)?;
            let (reason, message) = pod_blocker(pod, around)?;
            let name = pod.metadata.name.clone().unwrap_or_default();
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

/// A StatefulSet of a tier and the pods it wants that do not exist.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MissingPods {
    pub set: String,
    pub component: Component,
    pub pods: Vec<String>,
}

/// Every tier StatefulSet with pods missing: ordinals below its replicas with no pod of that
/// name (the one case where the reason is only in an Event).
pub fn missing_pods(sets: &[StatefulSet], pods: &[Pod]) -> Vec<MissingPods> {
    let tiers: BTreeMap<&str, Component> =
        Component::TIERS.iter().map(|c| (c.as_str(), *c)).collect();
    let existing: BTreeSet<&str> = pods
        .iter()
        .filter_map(|p| p.metadata.name.as_deref())
        .collect();
    (sets.iter())
        .filter_map(|set| {
            let name = set.metadata.name.clone()?;
            let component = *tiers.get(component_of(&set.metadata)?)?;
            let replicas = set.spec.as_ref()?.replicas.unwrap_or(1).max(0);
            let pods: Vec<String> = (0..replicas)
                .map(|ordinal| format!("{name}-{ordinal}"))
                .filter(|pod| !existing.contains(pod.as_str()))
                .collect();
            (!pods.is_empty()).then_some(MissingPods {
                set: name,
                component,
                pods,
            })
        })
        .collect()
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
pub fn classes_of_pending_claims(claims: &[PersistentVolumeClaim]) -> BTreeSet<String> {
    (claims.iter())
        .filter(|c| c.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Pending"))
        .filter_map(|c| c.spec.as_ref()?.storage_class_name.clone())
        .filter(|class| !class.is_empty())
        .collect()
}
