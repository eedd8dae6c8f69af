//! The storage the control plane has no driver for, for scenarios that grow volumes: two
//! StorageClasses of a fake provisioner, one allowing expansion and one not, and a task that
//! plays provisioner, external resizer and the node's file system resize for the claims of
//! those classes in one namespace.
//!
//! - A Pending claim gets a PersistentVolume of its requested size, pre-bound to it
//!   (`claimRef`); kube-controller-manager's PV controller binds them, so the claim is Bound
//!   with that capacity (the API server lets only a Bound claim grow).
//! - A Bound claim asking for more than it reports grows in two steps, each seen through the
//!   API as on a real cluster: first the volume (the PV's capacity; the claim gets the
//!   `FileSystemResizePending` condition), then, a period later, the file system on the node
//!   (the claim's `status.capacity` becomes the request and the condition goes).
//!
//! Claims of other classes (or of none) are left alone, as before: Pending, no volume.

use std::time::Duration;

use k8s_openapi::api::core::v1::{PersistentVolume, PersistentVolumeClaim};
use k8s_openapi::api::storage::v1::StorageClass;
use kube::api::{Api, ListParams, Patch, PatchParams, PostParams};
use kube::{Client, ResourceExt};
use serde_json::json;

use crate::cluster::kubectl;

/// A StorageClass with `allowVolumeExpansion: true`.
pub const EXPANDABLE: &str = "e2e-expandable";
/// A StorageClass without it.
pub const FIXED: &str = "e2e-fixed";
const PROVISIONER: &str = "e2e.curve.opencurve.io/fake";
/// Label of the PersistentVolumes made for a namespace's claims.
const NAMESPACE_LABEL: &str = "e2e.curve.opencurve.io/namespace";
const PERIOD: Duration = Duration::from_millis(500);

/// The running fake storage of one namespace; dropping it stops the task and deletes the
/// PersistentVolumes it made.
pub struct FakeStorage {
    namespace: String,
    task: tokio::task::JoinHandle<()>,
}

impl FakeStorage {
    /// Ensures both StorageClasses exist and starts serving the claims of `namespace`.
    pub async fn start(client: Client, namespace: &str) -> FakeStorage {
        let classes: Api<StorageClass> = Api::all(client.clone());
        for (name, expands) in [(EXPANDABLE, true), (FIXED, false)] {
            let class: StorageClass = serde_json::from_value(json!({
                "metadata": {"name": name},
                "provisioner": PROVISIONER,
                "allowVolumeExpansion": expands,
                "reclaimPolicy": "Retain",
            }))
            .unwrap();
            match classes.create(&PostParams::default(), &class).await {
                Ok(_) => {}
                Err(kube::Error::Api(e)) if e.code == 409 => {}
                Err(e) => panic!("create StorageClass {name}: {e}"),
            }
        }
        let task = tokio::spawn({
            let namespace = namespace.to_string();
            async move {
                loop {
                    if let Err(e) = sync_once(&client, &namespace).await {
                        eprintln!("fake storage of {namespace}: {e}");
                    }
                    tokio::time::sleep(PERIOD).await;
                }
            }
        });
        FakeStorage {
            namespace: namespace.to_string(),
            task,
        }
    }
}

impl Drop for FakeStorage {
    fn drop(&mut self) {
        self.task.abort();
        let _ = kubectl(
            &[
                "delete",
                "persistentvolumes",
                "-l",
                &format!("{NAMESPACE_LABEL}={}", self.namespace),
                "--wait=false",
            ],
            None,
        );
    }
}

fn storage(quantity: Option<&k8s_openapi::apimachinery::pkg::api::resource::Quantity>) -> f64 {
    quantity
        .and_then(|q| curve_operator::validate::k8s::parse_quantity(&q.0))
        .unwrap_or(0.0)
}

async fn sync_once(client: &Client, namespace: &str) -> Result<(), kube::Error> {
    let claims: Api<PersistentVolumeClaim> = Api::namespaced(client.clone(), namespace);
    let volumes: Api<PersistentVolume> = Api::all(client.clone());
    for claim in claims.list(&ListParams::default()).await?.items {
        let spec = claim.spec.clone().unwrap_or_default();
        let class = spec.storage_class_name.as_deref();
        if !matches!(class, Some(EXPANDABLE | FIXED)) || claim.metadata.deletion_timestamp.is_some()
        {
            continue;
        }
        let request = spec
            .resources
            .as_ref()
            .and_then(|r| r.requests.as_ref())
            .and_then(|r| r.get("storage"))
            .cloned();
        let status = claim.status.clone().unwrap_or_default();
        let capacity = status.capacity.as_ref().and_then(|c| c.get("storage"));
        let name = claim.name_any();
        let Some(volume) = spec.volume_name.clone() else {
            // Provisioning: a volume pre-bound to the claim.
            let pv: PersistentVolume = serde_json::from_value(json!({
                "metadata": {"name": format!("e2e-{}", claim.uid().unwrap_or_default()),
                             "labels": {NAMESPACE_LABEL: namespace}},
                "spec": {
                    "capacity": {"storage": request},
                    "accessModes": ["ReadWriteOnce"],
                    "storageClassName": class,
                    "persistentVolumeReclaimPolicy": "Retain",
                    "hostPath": {"path": format!("/tmp/e2e-volumes/{name}")},
                    "claimRef": {"namespace": namespace, "name": name, "uid": claim.uid()},
                },
            }))
            .unwrap();
            match volumes.create(&PostParams::default(), &pv).await {
                Ok(_) => {}
                Err(kube::Error::Api(e)) if e.code == 409 => {}
                Err(e) => return Err(e),
            }
            continue;
        };
        if status.phase.as_deref() != Some("Bound")
            || storage(request.as_ref()) <= storage(capacity)
        {
            continue;
        }
        let pv = volumes.get(&volume).await?;
        let pv_capacity = pv
            .spec
            .as_ref()
            .and_then(|s| s.capacity.as_ref()?.get("storage"));
        if storage(pv_capacity) < storage(request.as_ref()) {
            // The external resizer: the volume grows, its file system waits for the node.
            let grow = json!({"spec": {"capacity": {"storage": request}}});
            volumes
                .patch(&volume, &PatchParams::default(), &Patch::Merge(grow))
                .await?;
            let pending = json!({"status": {"conditions": [{
                "type": "FileSystemResizePending", "status": "True",
                "message": "Waiting for user to (re-)start a pod to finish file system resize of volume on node."}]}});
            claims
                .patch_status(&name, &PatchParams::default(), &Patch::Merge(pending))
                .await?;
        } else {
            // The node resized the file system (online): the claim reports the new size.
            let done = json!({"status": {"capacity": {"storage": request}, "conditions": null}});
            claims
                .patch_status(&name, &PatchParams::default(), &Patch::Merge(done))
                .await?;
        }
    }
    Ok(())
}
