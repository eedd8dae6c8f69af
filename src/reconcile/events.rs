//! Events: derived purely from the status transition, so each distinct change or problem is
//! told once, not on every retry.

use std::collections::HashMap;
use std::future::Future;
use std::sync::Mutex;

use kube::Resource;
use kube::runtime::events::{Event, EventType, Recorder, Reporter};

use super::model::conditions::{BLOCKED, ConditionType, Reason, find};
use super::model::event::ClusterEvent;
use crate::api::{ChunkServerRetire, CurveCluster, CurveClusterStatus, RetireReason};
use crate::names::Component;

/// Where events go: the Kubernetes events API in the operator, a recording fake in tests.
pub trait EventSink: Send + Sync + 'static {
    fn publish(
        &self,
        cluster: &CurveCluster,
        event: ClusterEvent,
    ) -> impl Future<Output = ()> + Send;
}

/// Publishes through kube's event recorder (events.k8s.io/v1), one recorder per distinct
/// (type, reason, note).
///
/// kube's recorder folds every event with the same type, reason and object into one event
/// series and keeps the first note: a second "MDS primary changed from B to C" only bumped the
/// count of "changed from A to B", and "created the mds tier" showed as the etcd one.
/// client-go's events/v1 recorder keys on the note too; so do we, by keeping repeats of one
/// note in one recorder.
pub struct KubeEvents {
    client: kube::Client,
    reporter: Reporter,
    recorders: Mutex<HashMap<(bool, String, String), Recorder>>,
}

/// Distinct notes remembered for aggregation; beyond this the memory starts afresh (the next
/// repeat of an older note becomes a new event instead of a count).
const MAX_RECORDERS: usize = 1024;

impl KubeEvents {
    pub fn new(client: kube::Client, instance: Option<String>) -> Self {
        KubeEvents {
            client,
            reporter: Reporter {
                controller: "curve-operator".into(),
                instance,
            },
            recorders: Mutex::default(),
        }
    }

    fn recorder(&self, event: &ClusterEvent) -> Recorder {
        let key = (event.warning, event.reason.clone(), event.note.clone());
        let mut recorders = self.recorders.lock().expect("not poisoned");
        if recorders.len() >= MAX_RECORDERS && !recorders.contains_key(&key) {
            recorders.clear();
        }
        recorders
            .entry(key)
            .or_insert_with(|| Recorder::new(self.client.clone(), self.reporter.clone()))
            .clone()
    }
}

impl EventSink for KubeEvents {
    async fn publish(&self, cluster: &CurveCluster, event: ClusterEvent) {
        let recorder = self.recorder(&event);
        let event = Event {
            type_: if event.warning {
                EventType::Warning
            } else {
                EventType::Normal
            },
            action: event.reason.clone(),
            reason: event.reason,
            note: Some(bounded_note(event.note)),
            secondary: None,
        };
        if let Err(error) = recorder.publish(&event, &cluster.object_ref(&())).await {
            tracing::warn!(%error, "cannot publish an event");
        }
    }
}

/// The API server refuses an events.k8s.io/v1 Event whose note is over 1 KiB
/// (k8s.io/kubernetes pkg/apis/core/validation/events.go, NoteLengthLimit = 1024), and a note
/// carrying a condition's message of a big cluster can be longer: cut at a character boundary,
/// ending in "…"; the condition holds the whole message.
pub const NOTE_LIMIT: usize = 1024;

pub fn bounded_note(note: String) -> String {
    if note.len() <= NOTE_LIMIT {
        return note;
    }
    let ellipsis = "…";
    let mut end = NOTE_LIMIT - ellipsis.len();
    while !note.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}{ellipsis}", &note[..end])
}

/// Problems told when a condition takes the reason, or its message changes under it:
/// (condition, its reason, the event's reason). Each is a warning with the condition's message.
const PROBLEMS: [(ConditionType, Reason, &str); 9] = [
    (ConditionType::Degraded, Reason::EtcdNoSpace, "EtcdNoSpace"),
    (ConditionType::Degraded, Reason::EtcdCorrupt, "EtcdCorrupt"),
    (ConditionType::SpecValid, Reason::Invalid, "InvalidSpec"),
    (
        ConditionType::Progressing,
        Reason::ChangeRefused,
        "ChangeRefused",
    ),
    (
        ConditionType::DataRetained,
        Reason::DeleteNotConfirmed,
        "CleanupNotConfirmed",
    ),
    (
        ConditionType::Progressing,
        Reason::RolloutStuck,
        "RolloutStuck",
    ),
    (
        ConditionType::Progressing,
        Reason::ChunkServerReplaceStuck,
        "ChunkServerReplaceStuck",
    ),
    (
        ConditionType::Progressing,
        Reason::ApplyRefused,
        "ApplyRefused",
    ),
    (
        ConditionType::Progressing,
        Reason::ReconcileError,
        "ReconcileError",
    ),
];

/// The conditions that say why their tier does not come up ([`BLOCKED`] reasons).
const TIER_CONDITIONS: [ConditionType; 3] = [
    ConditionType::EtcdQuorate,
    ConditionType::MdsLeaderElected,
    ConditionType::ChunkServersReady,
];

/// A tier's blocker appearing or changing, told as a warning named by the blocker (the same
/// blocker told again only when what it says changes).
fn blocker_changes<'a>(
    previous: &'a CurveClusterStatus,
    next: &'a CurveClusterStatus,
) -> impl Iterator<Item = ClusterEvent> + 'a {
    (TIER_CONDITIONS.into_iter()).flat_map(move |type_| {
        (BLOCKED.into_iter()).filter_map(move |reason| {
            message_changed(previous, next, type_, reason)
                .map(|message| ClusterEvent::warning(reason.as_str(), message))
        })
    })
}

/// Readiness gained: a condition turning True, told with its message.
const GAINED: [(ConditionType, &str); 3] = [
    (ConditionType::EtcdQuorate, "EtcdQuorate"),
    (ConditionType::ChunkServersReady, "ChunkServersReady"),
    (ConditionType::Available, "Available"),
];

/// Readiness lost: a condition that was there turning False, told as a warning with its
/// message.
const LOST: [(ConditionType, &str); 2] = [
    (ConditionType::EtcdQuorate, "EtcdQuorumLost"),
    (ConditionType::Available, "Unavailable"),
];

/// Claims of an earlier cluster taken over: told once, as a warning (its data comes back).
fn adoption(previous: &CurveClusterStatus, next: &CurveClusterStatus) -> Option<ClusterEvent> {
    let adopted = ConditionType::DataAdopted;
    transitioned_to(previous, next, adopted, "True")
        .then(|| ClusterEvent::warning("RetainedDataAdopted", message_of(next, adopted)))
}

/// A ChunkServer starts or ends leaving Curve (the retire record appears or goes): told from
/// the record the decision writes.
pub fn retire_change(
    previous: &CurveClusterStatus,
    next: &CurveClusterStatus,
) -> Vec<ClusterEvent> {
    let of = |status: &CurveClusterStatus| status.record.as_ref()?.retire.clone();
    let (before, after) = (of(previous), of(next));
    let who = |r: &ChunkServerRetire| match r.chunkserver_id {
        Some(id) => format!("ChunkServer {id} ({}, {})", r.pod, r.address),
        None => format!("pod {} ({})", r.pod, r.address),
    };
    let mut events = Vec::new();
    if let Some(ended) = before
        .as_ref()
        .filter(|b| after.as_ref().is_none_or(|a| a.pod != b.pod))
    {
        let (told, what) = match ended.reason {
            RetireReason::Replace => (
                "ChunkServerReplaced",
                "its old id left Curve; the pod registers its new disk with a new id".to_string(),
            ),
            _ => {
                // The claim goes only when spec.cleanup deletes data (DataRetained False).
                let kept =
                    find(next, ConditionType::DataRetained).is_none_or(|c| c.status == "True");
                let claim = format!("data-{}", ended.pod);
                let fate = if kept {
                    format!(
                        "its claim {claim} is kept (spec.cleanup): it holds an id Curve retired, delete it before this ordinal is scaled out again"
                    )
                } else {
                    format!("its claim {claim} is deleted (spec.cleanup)")
                };
                (
                    "ChunkServerRetired",
                    format!("it left Curve and its pod is gone; {fate}"),
                )
            }
        };
        events.push(ClusterEvent::normal(
            told,
            format!("{}: {what}", who(ended)),
        ));
    }
    if let Some(began) = after
        .as_ref()
        .filter(|a| before.as_ref().is_none_or(|b| b.pod != a.pod))
    {
        let (told, what) = match began.reason {
            RetireReason::Replace => (
                "ChunkServerReplacing",
                "its pod's disk is empty: the old id leaves Curve first (PENDDING, copysets moved, RETIRED, deleted)",
            ),
            RetireReason::ScaleIn => (
                "ChunkServerRetiring",
                "spec.chunkservers.replicas was lowered: PENDDING until its copysets moved, then stopped, RETIRED and deleted",
            ),
            RetireReason::DiskSlotRemoved => (
                "ChunkServerRetiring",
                "spec.chunkservers.disksPerNode was lowered: PENDDING until its copysets moved, then stopped, RETIRED and deleted",
            ),
        };
        let copysets = began.copysets_at_start;
        events.push(ClusterEvent::normal(
            told,
            format!("{}: {what} ({copysets} copysets to move)", who(began)),
        ));
    }
    events
}

/// The MDS addresses handed to the ChunkServers and tools changed (an MDS pod moved to another
/// node, or MDS were added or removed): their configs follow, and the ChunkServers roll.
pub fn mds_addresses_change(
    previous: &CurveClusterStatus,
    next: &CurveClusterStatus,
) -> Option<ClusterEvent> {
    let of = |status: &CurveClusterStatus| {
        (status.record.as_ref()).map_or(Vec::new(), |r| r.mds_addresses.clone())
    };
    let (before, after) = (of(previous), of(next));
    (!before.is_empty() && !after.is_empty() && before != after).then(|| {
        ClusterEvent::normal(
            "MdsAddressesChanged",
            format!(
                "the MDS addresses ChunkServers and tools dial changed from {} to {}: their configs follow and the ChunkServers roll",
                before.join(","),
                after.join(",")
            ),
        )
    })
}

fn transitioned_to(
    previous: &CurveClusterStatus,
    next: &CurveClusterStatus,
    type_: ConditionType,
    status: &str,
) -> bool {
    let before = find(previous, type_).map(|c| c.status.as_str());
    let after = find(next, type_).map(|c| c.status.as_str());
    after == Some(status) && before != Some(status)
}

fn message_changed(
    previous: &CurveClusterStatus,
    next: &CurveClusterStatus,
    type_: ConditionType,
    reason: Reason,
) -> Option<String> {
    let after = find(next, type_).filter(|c| c.reason == reason.as_str())?;
    let before = find(previous, type_);
    (before.map(|c| (&c.reason, &c.message)) != Some((&after.reason, &after.message)))
        .then(|| after.message.clone())
}

fn message_of(status: &CurveClusterStatus, type_: ConditionType) -> String {
    find(status, type_)
        .map(|c| c.message.clone())
        .unwrap_or_default()
}

/// The events one reconcile tells: components created, readiness gained or lost, the MDS
/// primary changing, an invalid spec, refused changes, reconcile errors, pause and resume.
pub fn derive(
    previous: &CurveClusterStatus,
    next: &CurveClusterStatus,
    created: &[Component],
) -> Vec<ClusterEvent> {
    let created = (created.iter())
        .map(|c| ClusterEvent::normal("Created", format!("created the {} tier", c.as_str())));
    let problems = PROBLEMS.into_iter().filter_map(|(type_, reason, told)| {
        message_changed(previous, next, type_, reason)
            .map(|message| ClusterEvent::warning(told, message))
    });
    let gained = (GAINED.into_iter())
        .filter(|(type_, _)| transitioned_to(previous, next, *type_, "True"))
        .map(|(type_, told)| ClusterEvent::normal(told, message_of(next, type_)));
    let lost = (LOST.into_iter())
        .filter(|(type_, _)| {
            transitioned_to(previous, next, *type_, "False") && find(previous, *type_).is_some()
        })
        .map(|(type_, told)| ClusterEvent::warning(told, message_of(next, type_)));
    (created.chain(problems))
        .chain(blocker_changes(previous, next))
        .chain(adoption(previous, next))
        .chain(pause_change(previous, next))
        .chain(gained)
        .chain(lost)
        .chain(primary_change(previous, next))
        .collect()
}

/// `spec.paused` turned on, or off again.
fn pause_change(previous: &CurveClusterStatus, next: &CurveClusterStatus) -> Option<ClusterEvent> {
    let paused = ConditionType::ReconciliationPaused;
    if transitioned_to(previous, next, paused, "True") {
        Some(ClusterEvent::normal(
            "Paused",
            "spec.paused is true: the operator changes nothing".into(),
        ))
    } else if transitioned_to(previous, next, paused, "False") && find(previous, paused).is_some() {
        Some(ClusterEvent::normal(
            "Resumed",
            "spec.paused is false: reconciling again".into(),
        ))
    } else {
        None
    }
}

/// The MDS primary elected, changed or lost.
fn primary_change(
    previous: &CurveClusterStatus,
    next: &CurveClusterStatus,
) -> Option<ClusterEvent> {
    let before = previous.mds.as_ref().and_then(|m| m.primary.clone());
    let after = next.mds.as_ref().and_then(|m| m.primary.clone());
    match (before, after) {
        (Some(old), Some(new)) if old != new => Some(ClusterEvent::normal(
            "MdsPrimaryChanged",
            format!("MDS primary changed from {old} to {new}"),
        )),
        (None, Some(new)) => Some(ClusterEvent::normal(
            "MdsPrimaryElected",
            format!("{new} is the MDS primary"),
        )),
        (Some(old), None) => {
            let why = message_of(next, ConditionType::MdsLeaderElected);
            Some(ClusterEvent::warning(
                "MdsPrimaryLost",
                format!("{old} is no longer primary: {why}"),
            ))
        }
        _ => None,
    }
}

#[cfg(test)]
mod kube_events_tests {
    use super::*;
    use http::{Request, Response};
    use kube::client::Body;
    use std::sync::Arc;

    /// Every events.k8s.io request KubeEvents sends, as (method, note of the body).
    async fn published(events: Vec<ClusterEvent>) -> Vec<(String, String)> {
        let (service, mut handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let server = {
            let seen = seen.clone();
            tokio::spawn(async move {
                while let Some((request, send)) = handle.next_request().await {
                    let method = request.method().to_string();
                    let body = request.into_body().collect_bytes().await.unwrap();
                    let event: serde_json::Value = serde_json::from_slice(&body).unwrap();
                    seen.lock().unwrap().push((
                        method,
                        event["note"].as_str().unwrap_or_default().to_string(),
                    ));
                    send.send_response(
                        Response::builder()
                            .status(201)
                            .body(Body::from(body.to_vec()))
                            .unwrap(),
                    );
                }
            })
        };
        let sink = KubeEvents::new(kube::Client::new(service, "ns"), None);
        let cluster: CurveCluster = serde_json::from_value(serde_json::json!({
            "apiVersion": "curve.opencurve.io/v1alpha1", "kind": "CurveCluster",
            "metadata": {"name": "demo", "namespace": "ns", "uid": "u1"},
            "spec": {"image": "i", "chunkservers": {"storage": {"size": "10Gi"}}},
        }))
        .unwrap();
        for event in events {
            sink.publish(&cluster, event).await;
        }
        drop(sink);
        server.abort();

        seen.lock().unwrap().clone()
    }

    #[tokio::test]
    async fn events_with_another_note_are_new_events_and_repeats_a_series() {
        let changed = |from: &str, to: &str| {
            ClusterEvent::normal(
                "MdsPrimaryChanged",
                format!("MDS primary changed from {from} to {to}"),
            )
        };
        let requests = published(vec![
            changed("demo-mds-0", "demo-mds-1"),
            changed("demo-mds-1", "demo-mds-2"),
            changed("demo-mds-1", "demo-mds-2"),
            ClusterEvent::normal("Created", "created the etcd tier".into()),
            ClusterEvent::normal("Created", "created the mds tier".into()),
        ])
        .await;
        let expected = [
            ("POST", "MDS primary changed from demo-mds-0 to demo-mds-1"),
            ("POST", "MDS primary changed from demo-mds-1 to demo-mds-2"),
            ("PATCH", "MDS primary changed from demo-mds-1 to demo-mds-2"),
            ("POST", "created the etcd tier"),
            ("POST", "created the mds tier"),
        ];
        let requests: Vec<(&str, &str)> = requests
            .iter()
            .map(|(m, n)| (m.as_str(), n.as_str()))
            .collect();
        assert_eq!(requests, expected);
    }
}

#[cfg(test)]
#[path = "events_tests.rs"]
mod derive_tests;
