use k8s_openapi::api::core::v1::PersistentVolumeClaim;
use kube::runtime::reflector::Lookup;
use serde_json::json;

use super::*;

/// A ChunkServer's claim as the API server serves it, growing, with what no decision reads
/// around what they do.
fn served_claim() -> PersistentVolumeClaim {
    serde_json::from_value(json!({
        "metadata": {
            "name": "data-demo-chunkserver-1-4", "namespace": "ns", "uid": "c-4",
            "resourceVersion": "77",
            "creationTimestamp": "2026-12-07T10:00:00Z",
            "labels": {
                "app.kubernetes.io/instance": "demo",
                "app.kubernetes.io/component": "chunkserver",
                "app.kubernetes.io/managed-by": "curve-operator"
            },
            "managedFields": [{"manager": "kube-controller-manager", "operation": "Update"}]
        },
        "spec": {
            "accessModes": ["ReadWriteOnce"],
            "storageClassName": "fast",
            "volumeName": "pv-4",
            "resources": {"requests": {"storage": "20Gi"}, "limits": {"storage": "40Gi"}}
        },
        "status": {
            "phase": "Bound",
            "capacity": {"storage": "10Gi"},
            "conditions": [
                {"type": "Resizing", "status": "True"},
                {"type": "FileSystemResizePending", "status": "True"}
            ]
        }
    }))
    .unwrap()
}

#[test]
fn a_claim_is_read_into_what_the_decisions_read() {
    assert_eq!(
        ClaimReading::from(served_claim()),
        ClaimReading {
            name: "data-demo-chunkserver-1-4".into(),
            namespace: "ns".into(),
            instance: Some("demo".into()),
            tier: Some(Component::ChunkServer),
            created: Some("2026-12-07T10:00:00Z".parse().unwrap()),
            terminating: false,
            class: Some("fast".into()),
            request: Some(Size {
                text: "20Gi".into(),
                bytes: 20.0 * 1024.0 * 1024.0 * 1024.0
            }),
            capacity: Some(Size {
                text: "10Gi".into(),
                bytes: 10.0 * 1024.0 * 1024.0 * 1024.0
            }),
            pending: false,
            resize_pending: true,
        }
    );
}

#[test]
fn a_pending_claim_without_sizes_or_labels_reads_as_such() {
    let claim: PersistentVolumeClaim = serde_json::from_value(json!({
        "metadata": {"name": "data", "namespace": "ns", "deletionTimestamp": "2026-12-07T11:00:00Z",
                     "labels": {"app.kubernetes.io/component": "csi-node"}},
        "spec": {"resources": {"requests": {"storage": "many"}}},
        "status": {"phase": "Pending", "conditions": [{"type": "FileSystemResizePending", "status": "False"}]}
    }))
    .unwrap();
    assert_eq!(
        ClaimReading::from(claim),
        ClaimReading {
            name: "data".into(),
            namespace: "ns".into(),
            terminating: true,
            // An unknown quantity counts as nothing.
            request: Some(Size {
                text: "many".into(),
                bytes: 0.0
            }),
            pending: true,
            ..ClaimReading::default()
        }
    );
}

/// The cache keeps a reading made from the object each watch event delivers: a claim that
/// changes reads anew, never as it was.
#[test]
fn a_changed_claim_reads_anew() {
    let before = ClaimReading::from(served_claim());
    let mut grown = served_claim();
    let status = grown.status.as_mut().unwrap();
    status.capacity.as_mut().unwrap().insert(
        "storage".into(),
        k8s_openapi::apimachinery::pkg::api::resource::Quantity("20Gi".into()),
    );
    status.conditions = None;
    let after = ClaimReading::from(grown);
    assert_eq!(
        after.capacity.as_ref().map(|c| c.bytes),
        after.request.map(|r| r.bytes)
    );
    assert!(!after.resize_pending);
    assert_ne!(before.capacity, after.capacity);
}

#[test]
fn the_cache_keys_a_reading_as_the_claim_it_reads() {
    let claim = served_claim();
    let claim_key = kube::runtime::reflector::ObjectRef::from_obj(&claim);
    let reading_key = ClaimReading::from(claim).to_object_ref(());
    assert_eq!(
        (reading_key.name, reading_key.namespace),
        (claim_key.name, claim_key.namespace)
    );
}
