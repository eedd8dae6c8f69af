//! Events: derived purely from the status transition, so each distinct change or problem is
//! told once, not on every retry.

use std::future::Future;

use kube::Resource;
use kube::runtime::events::{Event, EventType, Recorder, Reporter};

use super::status::{AVAILABLE, CHUNKSERVERS_READY, ETCD_QUORATE, MDS_LEADER_ELECTED, PROGRESSING, RECONCILIATION_PAUSED, SPEC_VALID, find};
use crate::api::{CurveCluster, CurveClusterStatus};
use crate::build::Component;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClusterEvent {
    pub warning: bool,
    pub reason: String,
    pub note: String,
}

impl ClusterEvent {
    fn normal(reason: &str, note: String) -> Self {
        ClusterEvent { warning: false, reason: reason.to_string(), note }
    }
    fn warning(reason: &str, note: String) -> Self {
        ClusterEvent { warning: true, reason: reason.to_string(), note }
    }
}

/// Where events go: the Kubernetes events API in the operator, a recording fake in tests.
pub trait EventSink: Send + Sync + 'static {
    fn publish(&self, cluster: &CurveCluster, event: ClusterEvent) -> impl Future<Output = ()> + Send;
}

/// Publishes through kube's event recorder (events.k8s.io/v1).
pub struct KubeEvents {
    recorder: Recorder,
}

impl KubeEvents {
    pub fn new(client: kube::Client, instance: Option<String>) -> Self {
        KubeEvents { recorder: Recorder::new(client, Reporter { controller: "curve-operator".into(), instance }) }
    }
}

impl EventSink for KubeEvents {
    async fn publish(&self, cluster: &CurveCluster, event: ClusterEvent) {
        let event = Event {
            type_: if event.warning { EventType::Warning } else { EventType::Normal },
            action: event.reason.clone(),
            reason: event.reason,
            note: Some(event.note),
            secondary: None,
        };
        if let Err(error) = self.recorder.publish(&event, &cluster.object_ref(&())).await {
            tracing::warn!(%error, "cannot publish an event");
        }
    }
}

fn transitioned_to(previous: &CurveClusterStatus, next: &CurveClusterStatus, type_: &str, status: &str) -> bool {
    let before = find(previous, type_).map(|c| c.status.as_str());
    let after = find(next, type_).map(|c| c.status.as_str());
    after == Some(status) && before != Some(status)
}

fn message_changed(previous: &CurveClusterStatus, next: &CurveClusterStatus, type_: &str, reason: &str) -> Option<String> {
    let after = find(next, type_).filter(|c| c.reason == reason)?;
    let before = find(previous, type_);
    (before.map(|c| (&c.reason, &c.message)) != Some((&after.reason, &after.message))).then(|| after.message.clone())
}

/// The events one reconcile tells: components created, readiness gained, the MDS primary
/// changing, an invalid spec, refused changes, reconcile errors, pause and resume.
pub fn derive(previous: &CurveClusterStatus, next: &CurveClusterStatus, created: &[Component]) -> Vec<ClusterEvent> {
    let mut events: Vec<ClusterEvent> = created
        .iter()
        .map(|c| ClusterEvent::normal("Created", format!("created the {} tier", c.as_str())))
        .collect();
    if let Some(message) = message_changed(previous, next, SPEC_VALID, "Invalid") {
        events.push(ClusterEvent::warning("InvalidSpec", message));
    }
    if let Some(message) = message_changed(previous, next, PROGRESSING, "ChangeRefused") {
        events.push(ClusterEvent::warning("ChangeRefused", message));
    }
    if let Some(message) = message_changed(previous, next, PROGRESSING, "ReconcileError") {
        events.push(ClusterEvent::warning("ReconcileError", message));
    }
    if transitioned_to(previous, next, RECONCILIATION_PAUSED, "True") {
        events.push(ClusterEvent::normal("Paused", "spec.paused is true: the operator changes nothing".into()));
    } else if transitioned_to(previous, next, RECONCILIATION_PAUSED, "False") && find(previous, RECONCILIATION_PAUSED).is_some() {
        events.push(ClusterEvent::normal("Resumed", "spec.paused is false: reconciling again".into()));
    }
    for (type_, reason) in [(ETCD_QUORATE, "EtcdQuorate"), (CHUNKSERVERS_READY, "ChunkServersReady"), (AVAILABLE, "Available")] {
        if transitioned_to(previous, next, type_, "True") {
            let message = find(next, type_).map(|c| c.message.clone()).unwrap_or_default();
            events.push(ClusterEvent::normal(reason, message));
        }
    }
    for (type_, reason) in [(ETCD_QUORATE, "EtcdQuorumLost"), (AVAILABLE, "Unavailable")] {
        if transitioned_to(previous, next, type_, "False") && find(previous, type_).is_some() {
            let message = find(next, type_).map(|c| c.message.clone()).unwrap_or_default();
            events.push(ClusterEvent::warning(reason, message));
        }
    }
    let before = previous.mds.as_ref().and_then(|m| m.primary.clone());
    let after = next.mds.as_ref().and_then(|m| m.primary.clone());
    match (before, after) {
        (Some(old), Some(new)) if old != new => {
            events.push(ClusterEvent::normal("MdsPrimaryChanged", format!("MDS primary changed from {old} to {new}")))
        }
        (None, Some(new)) => events.push(ClusterEvent::normal("MdsPrimaryElected", format!("{new} is the MDS primary"))),
        (Some(old), None) => {
            let why = find(next, MDS_LEADER_ELECTED).map(|c| c.message.clone()).unwrap_or_default();
            events.push(ClusterEvent::warning("MdsPrimaryLost", format!("{old} is no longer primary: {why}")))
        }
        _ => {}
    }
    events
}
