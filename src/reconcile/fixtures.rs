//! What the reconciler's unit tests build their cases from: times, observations, pods, existing
//! objects and validated clusters.

use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::jiff::Timestamp;
use serde_json::json;

use super::model::action::{ExistingObject, ObjectKind};
use super::model::conditions::Reason;
use super::model::observation::{
    ComponentObservation, DataCleanup, Observation, PrimaryView, TopologyState,
};
use super::model::pod::PodReading;
use super::model::states::RollState;
use crate::etcd::MemberHealth;

/// A time `seconds` after a fixed start.
pub(crate) fn t(seconds: i64) -> Timestamp {
    Timestamp::from_second(1_800_000_000 + seconds).unwrap()
}

/// A component with `desired` pods, `ready` of them Ready.
pub(crate) fn component(desired: i32, ready: i32, exists: bool) -> ComponentObservation {
    ComponentObservation {
        desired,
        ready,
        exists,
        ..ComponentObservation::default()
    }
}

/// A new cluster of three members per tier: nothing runs yet.
pub(crate) fn fresh() -> Observation {
    Observation {
        restore: Default::default(),
        restore_record: None,
        spec_errors: Vec::new(),
        paused: false,
        etcd: component(3, 0, false),
        mds: component(3, 0, false),
        chunkservers: component(3, 0, false),
        etcd_members: None,
        roll: RollState::Done,
        membership: Default::default(),
        cleanup: DataCleanup::Retain,
        etcd_quorum: 2,
        tolerated_unready_chunkservers: 1,
        primary: PrimaryView::NotStarted,
        refused: Vec::new(),
        error: None,
        topology: None,
        format: Default::default(),
        physical_pool: "pool1".into(),
        logical_pool: "logicalPool1".into(),
        expansions: Vec::new(),
        monitoring: Default::default(),
        csi: Default::default(),
        blockers: Vec::new(),
        held: Vec::new(),
        etcd_members_now: 3,
        health: None,
        progress_deadline_seconds: 600,
        adopted_claims: Vec::new(),
        retire: None,
        stale_chunkservers: Vec::new(),
        clocks_apart: None,
        usable_bytes: None,
    }
}

/// The cluster of [`fresh`], every pod Ready, etcd healthy, an MDS primary, the topology ready.
pub(crate) fn healthy() -> Observation {
    Observation {
        etcd: component(3, 3, true),
        mds: component(3, 3, true),
        chunkservers: component(3, 3, true),
        etcd_members: Some(MemberHealth::all_healthy(
            "ns",
            &["demo-etcd-0", "demo-etcd-1", "demo-etcd-2"],
            1,
        )),
        primary: PrimaryView::Elected {
            pod: "demo-mds-0".into(),
            address: "10.0.0.1:6700".into(),
        },
        topology: Some(TopologyState {
            ready: true,
            reason: Reason::Ready,
            message: "ok".into(),
            servers: 3,
        }),
        ..fresh()
    }
}

/// A pod of `component` with its IP (pod and host), node and readiness, as the pod cache
/// reads it.
pub(crate) fn pod(
    name: &str,
    component: &str,
    ip: Option<&str>,
    node: Option<&str>,
    ready: bool,
) -> std::sync::Arc<PodReading> {
    std::sync::Arc::new(pod_object(name, component, ip, node, ready).into())
}

/// The pod object [`pod`] reads.
pub(crate) fn pod_object(
    name: &str,
    component: &str,
    ip: Option<&str>,
    node: Option<&str>,
    ready: bool,
) -> Pod {
    serde_json::from_value(json!({
        "metadata": {"name": name, "labels": {"app.kubernetes.io/component": component}},
        "spec": {"containers": [], "nodeName": node},
        "status": {
            "podIP": ip, "hostIP": ip,
            "conditions": [{"type": "Ready", "status": if ready { "True" } else { "False" }}]
        }
    }))
    .unwrap()
}

/// The cluster `ns/demo` validated, with `patch` merged into its minimal spec.
pub(crate) fn validated(patch: serde_json::Value) -> crate::validate::ValidatedCluster {
    let mut value = json!({
        "apiVersion": "curve.opencurve.io/v1alpha1", "kind": "CurveCluster",
        "metadata": {"name": "demo", "namespace": "ns", "uid": "u1"},
        "spec": {"image": "curve:1", "chunkservers": {"replicas": 3, "storage": {"size": "10Gi"}}}
    });
    if let (Some(spec), Some(patch)) = (value["spec"].as_object_mut(), patch.as_object()) {
        for (k, v) in patch {
            spec.insert(k.clone(), v.clone());
        }
    }
    crate::validate::validate(&serde_json::from_value(value).unwrap(), "ns").unwrap()
}

/// The StatefulSet `name` of `component`, as the plan sees it.
pub(crate) fn set(name: &str, component: &str, replicas: i32) -> ExistingObject {
    ExistingObject {
        kind: ObjectKind::StatefulSet,
        name: name.into(),
        component: Some(component.into()),
        applied_hash: None,
        replicas: Some(replicas),
        claim_size: Some("10Gi".into()),
        uid: Some(format!("uid-{name}")),
        deleting: false,
    }
}

/// Pods as the pod cache reads them.
pub(crate) fn read(pods: impl IntoIterator<Item = Pod>) -> Vec<std::sync::Arc<PodReading>> {
    pods.into_iter()
        .map(|p| std::sync::Arc::new(p.into()))
        .collect()
}
