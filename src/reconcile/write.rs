//! The write step: carries out a decision's actions and writes the status, one typed request
//! each. Nothing here decides anything.

use std::fmt::Debug;

use k8s_openapi::api::apps::v1::{DaemonSet, Deployment, StatefulSet};
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{
    ConfigMap, PersistentVolumeClaim, Pod, Secret, Service, ServiceAccount,
};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding, Role, RoleBinding};
use k8s_openapi::api::storage::v1::{CSIDriver, StorageClass};
use k8s_openapi::{ClusterResourceScope, NamespaceResourceScope};
use kube::api::{
    Api, ApiResource, DeleteParams, DynamicObject, ListParams, Patch, PatchParams, PostParams,
    Preconditions, PropagationPolicy,
};
use kube::{Client, Resource, ResourceExt};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::json;

use super::error::Error;
use super::model::action::{Action, Object, ObjectKind};
use crate::api::prometheus::{PodMonitor, PrometheusRule};
use crate::api::{CurveCluster, CurveClusterStatus};
use crate::curve::admin::{CurveAdmin, CurveChange};
use crate::desired;
use crate::etcd::{ChangeOutcome, ClusterKey, EtcdObserver, MemberChange};
use crate::names::cluster_selector;
use crate::validate::ValidatedCluster;

/// Field manager of every server-side apply.
pub const FIELD_MANAGER: &str = crate::names::MANAGER;
/// Finalizer present only while the cleanup policy asks for data to be deleted.
pub const DATA_FINALIZER: &str = "curve.opencurve.io/delete-data";
/// Finalizer present while the cluster has curve-csi's cluster-scoped objects (or enables
/// it): they can have no namespaced owner, so the operator deletes them, once no
/// PersistentVolume of the StorageClass is bound.
pub const CSI_FINALIZER: &str = "curve.opencurve.io/csi";

/// Where etcd member-list changes go.
pub struct EtcdTarget<'a, O> {
    pub observer: &'a O,
    pub cluster: ClusterKey,
    pub endpoints: Vec<String>,
}

/// Where Curve topology changes go: the elected MDS, if one is elected.
pub struct CurveTarget<'a> {
    pub admin: &'a dyn CurveAdmin,
    pub mds: Option<String>,
}

/// Carries out the actions in order; stops at the first that fails.
pub async fn execute<O: EtcdObserver>(
    client: &Client,
    cluster: &ValidatedCluster,
    etcd: &EtcdTarget<'_, O>,
    curve: &CurveTarget<'_>,
    actions: &[Action],
) -> Result<(), Error> {
    for action in actions {
        tracing::info!(action = %action.describe(), "applying");
        if let Action::Curve(change) = action {
            change_curve(curve, change).await?;
            continue;
        }
        carry_out(client, cluster, etcd, action).await?;
    }
    Ok(())
}

/// Sends one change of Curve's topology to the elected MDS.
async fn change_curve(curve: &CurveTarget<'_>, change: &CurveChange) -> Result<(), Error> {
    let Some(mds) = &curve.mds else {
        return Err(Error::CurveTopology(format!(
            "{}: no MDS is elected",
            change.describe()
        )));
    };
    (curve.admin.change(mds, change).await).map_err(|e| Error::CurveTopology(e.to_string()))
}

/// A failed write of `object` (`Kind/name`).
fn applying(object: String) -> impl FnOnce(kube::Error) -> Error {
    move |source| Error::Apply { object, source }
}

/// A failed delete of `object` (`Kind/name`).
fn deleting(object: String) -> impl FnOnce(kube::Error) -> Error {
    move |source| Error::Delete { object, source }
}

/// One action, its error naming the object it failed on.
async fn carry_out<O: EtcdObserver>(
    client: &Client,
    cluster: &ValidatedCluster,
    etcd: &EtcdTarget<'_, O>,
    action: &Action,
) -> Result<(), Error> {
    let namespace = cluster.namespace.as_str();
    match action {
        Action::EnsureRootSecret { name } => ensure_root_secret(client, cluster, name).await,
        Action::EtcdMembers(change) => change_members(etcd, change).await,
        Action::EtcdDefragment { id, .. } => {
            change_members(etcd, &MemberChange::Defragment { id: *id }).await
        }
        Action::Apply(object) => (apply_object(client, namespace, object).await).map_err(applying(
            format!("{}/{}", object.kind().as_str(), object.name()),
        )),
        Action::DeletePod { name, uid } => (delete_pod(client, namespace, name, uid).await)
            .map_err(deleting(format!("Pod/{name}"))),
        Action::DeleteClaim { name } => (delete_claim(client, namespace, name).await)
            .map_err(deleting(format!("PersistentVolumeClaim/{name}"))),
        Action::ResizeClaim { name, size } => (resize_claim(client, namespace, name, size).await)
            .map_err(applying(format!("PersistentVolumeClaim/{name}"))),
        Action::CreateClaim(claim) => {
            let name = claim.metadata.name.clone().unwrap_or_default();
            (create_claim(client, namespace, claim).await)
                .map_err(applying(format!("PersistentVolumeClaim/{name}")))
        }
        Action::Curve(change) => Err(Error::CurveTopology(format!(
            "{}: sent only through execute",
            change.describe()
        ))),
        Action::OrphanStatefulSet { name, uid } => {
            (orphan_stateful_set(client, namespace, name, uid).await)
                .map_err(deleting(format!("StatefulSet/{name}")))
        }
        Action::Delete { kind, name } => (delete_object(client, namespace, *kind, name).await)
            .map_err(deleting(format!("{}/{name}", kind.as_str()))),
        Action::AdvanceEtcdCounters(planned) => advance_counters(etcd, planned).await,
    }
}

/// Advances Curve's id counters. A guard that fails (the values moved since they were read)
/// writes nothing: the next pass reads them again and plans from there.
async fn advance_counters<O: EtcdObserver>(
    etcd: &EtcdTarget<'_, O>,
    planned: &crate::api::CountersAdvance,
) -> Result<(), Error> {
    let written = (etcd.observer)
        .advance_counters(&etcd.cluster, &etcd.endpoints, planned)
        .await
        .map_err(|e| Error::Membership(format!("advancing Curve's id counters: {e}")))?;
    if !written {
        tracing::info!("Curve's id counters changed since they were read; read again next pass");
    }
    Ok(())
}

/// Sends one member-list change; one etcd does not allow yet is asked for again next pass.
async fn change_members<O: EtcdObserver>(
    etcd: &EtcdTarget<'_, O>,
    change: &MemberChange,
) -> Result<(), Error> {
    let outcome = (etcd.observer)
        .change_members(&etcd.cluster, &etcd.endpoints, change)
        .await
        .map_err(Error::Membership)?;
    if let ChangeOutcome::NotYet(why) = outcome {
        tracing::info!(%why, "etcd allows the change later; asking again next pass");
    }
    Ok(())
}

/// Deletes a removed etcd member's claim (`spec.cleanup` deletes data).
/// Creates a claim; one of that name already there (a cache behind) is left as it is.
async fn create_claim(
    client: &Client,
    namespace: &str,
    claim: &PersistentVolumeClaim,
) -> Result<(), kube::Error> {
    let claims: Api<PersistentVolumeClaim> = Api::namespaced(client.clone(), namespace);
    match claims.create(&PostParams::default(), claim).await {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(status)) if status.code == 409 => Ok(()),
        Err(error) => Err(error),
    }
}

async fn delete_claim(client: &Client, namespace: &str, name: &str) -> Result<(), kube::Error> {
    let claims: Api<PersistentVolumeClaim> = Api::namespaced(client.clone(), namespace);
    delete_exactly(claims, name, "", None).await
}

/// Deletes the object with this uid; gone already (or replaced, so another uid) is fine.
async fn delete_exactly<K>(
    api: Api<K>,
    name: &str,
    uid: &str,
    propagation: Option<PropagationPolicy>,
) -> Result<(), kube::Error>
where
    K: Clone + DeserializeOwned + Debug,
{
    let params = DeleteParams {
        preconditions: (!uid.is_empty()).then(|| Preconditions {
            uid: Some(uid.to_string()),
            resource_version: None,
        }),
        propagation_policy: propagation,
        ..DeleteParams::default()
    };
    match api.delete(name, &params).await {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(status)) if matches!(status.code, 404 | 409) => Ok(()),
        Err(error) => Err(error),
    }
}

/// Deletes the pod with this uid (a roll's step).
async fn delete_pod(
    client: &Client,
    namespace: &str,
    name: &str,
    uid: &str,
) -> Result<(), kube::Error> {
    let api: Api<Pod> = Api::namespaced(client.clone(), namespace);
    delete_exactly(api, name, uid, None).await
}

/// Deletes the StatefulSet with this uid and leaves its pods running (they are adopted when
/// it is applied again).
async fn orphan_stateful_set(
    client: &Client,
    namespace: &str,
    name: &str,
    uid: &str,
) -> Result<(), kube::Error> {
    let api: Api<StatefulSet> = Api::namespaced(client.clone(), namespace);
    delete_exactly(api, name, uid, Some(PropagationPolicy::Orphan)).await
}

/// Raises a claim's storage request (volume expansion).
async fn resize_claim(
    client: &Client,
    namespace: &str,
    name: &str,
    size: &str,
) -> Result<(), kube::Error> {
    let api: Api<PersistentVolumeClaim> = Api::namespaced(client.clone(), namespace);
    let patch = json!({"spec": {"resources": {"requests": {"storage": size}}}});
    api.patch(name, &PatchParams::default(), &Patch::Merge(patch))
        .await
        .map(drop)
}

async fn apply<K>(client: &Client, namespace: &str, object: &K) -> Result<(), kube::Error>
where
    K: Resource<Scope = NamespaceResourceScope, DynamicType = ()> + k8s_openapi::Resource,
    K: Serialize + DeserializeOwned + Clone + Debug,
{
    let api: Api<K> = Api::namespaced(client.clone(), namespace);
    let params = PatchParams::apply(FIELD_MANAGER).force();
    // With apiVersion and kind, which the Prometheus Operator's types do not serialize.
    let body = desired::typed_value(object);
    api.patch(&object.name_any(), &params, &Patch::Apply(body))
        .await
        .map(drop)
}

async fn apply_object(
    client: &Client,
    namespace: &str,
    object: &Object,
) -> Result<(), kube::Error> {
    match object {
        Object::ConfigMap(o) => apply(client, namespace, o).await,
        Object::Service(o) => apply(client, namespace, o).await,
        Object::PodDisruptionBudget(o) => apply(client, namespace, o).await,
        Object::StatefulSet(o) => apply(client, namespace, o).await,
        Object::Job(o) => apply(client, namespace, o).await,
        Object::PodMonitor(o) => apply(client, namespace, o).await,
        Object::PrometheusRule(o) => apply(client, namespace, o).await,
        Object::ServiceAccount(o) => apply(client, namespace, o).await,
        Object::Role(o) => apply(client, namespace, o).await,
        Object::RoleBinding(o) => apply(client, namespace, o).await,
        Object::DaemonSet(o) => apply(client, namespace, o).await,
        Object::Deployment(o) => apply(client, namespace, o).await,
        Object::ClusterRole(o) => apply_cluster_scoped(client, o).await,
        Object::ClusterRoleBinding(o) => apply_cluster_scoped(client, o).await,
        Object::CsiDriver(o) => apply_cluster_scoped(client, o).await,
        Object::StorageClass(o) => apply_cluster_scoped(client, o).await,
    }
}

/// Server-side apply of an object without a namespace.
async fn apply_cluster_scoped<K>(client: &Client, object: &K) -> Result<(), kube::Error>
where
    K: Resource<Scope = ClusterResourceScope, DynamicType = ()> + k8s_openapi::Resource,
    K: Serialize + DeserializeOwned + Clone + Debug,
{
    let api: Api<K> = Api::all(client.clone());
    let params = PatchParams::apply(FIELD_MANAGER).force();
    let body = desired::typed_value(object);
    api.patch(&object.name_any(), &params, &Patch::Apply(body))
        .await
        .map(drop)
}

/// Deletes an object without a namespace; gone already is fine.
async fn delete_cluster_scoped<K>(client: &Client, name: &str) -> Result<(), kube::Error>
where
    K: Resource<Scope = ClusterResourceScope, DynamicType = ()>,
    K: DeserializeOwned + Clone + Debug,
{
    let api: Api<K> = Api::all(client.clone());
    delete_exactly(api, name, "", None).await
}

/// Deletes the object in the background; gone already is done (a delete whose answer a broken
/// connection lost is retried and finds nothing: the fault soak, seed 12, had a reconcile fail
/// on that 404 until its bound).
async fn delete<K>(client: &Client, namespace: &str, name: &str) -> Result<(), kube::Error>
where
    K: Resource<Scope = NamespaceResourceScope, DynamicType = ()>,
    K: DeserializeOwned + Clone + Debug,
{
    let api: Api<K> = Api::namespaced(client.clone(), namespace);
    delete_exactly(api, name, "", Some(PropagationPolicy::Background)).await
}

async fn delete_object(
    client: &Client,
    namespace: &str,
    kind: ObjectKind,
    name: &str,
) -> Result<(), kube::Error> {
    match kind {
        ObjectKind::ConfigMap => delete::<ConfigMap>(client, namespace, name).await,
        ObjectKind::Service => delete::<Service>(client, namespace, name).await,
        ObjectKind::PodDisruptionBudget => {
            delete::<PodDisruptionBudget>(client, namespace, name).await
        }
        ObjectKind::StatefulSet => delete::<StatefulSet>(client, namespace, name).await,
        ObjectKind::Job => delete::<Job>(client, namespace, name).await,
        ObjectKind::PodMonitor => delete::<PodMonitor>(client, namespace, name).await,
        ObjectKind::PrometheusRule => delete::<PrometheusRule>(client, namespace, name).await,
        ObjectKind::ServiceAccount => delete::<ServiceAccount>(client, namespace, name).await,
        ObjectKind::Role => delete::<Role>(client, namespace, name).await,
        ObjectKind::RoleBinding => delete::<RoleBinding>(client, namespace, name).await,
        ObjectKind::DaemonSet => delete::<DaemonSet>(client, namespace, name).await,
        ObjectKind::Deployment => delete::<Deployment>(client, namespace, name).await,
        ObjectKind::ClusterRole => delete_cluster_scoped::<ClusterRole>(client, name).await,
        ObjectKind::ClusterRoleBinding => {
            delete_cluster_scoped::<ClusterRoleBinding>(client, name).await
        }
        ObjectKind::CsiDriver => delete_cluster_scoped::<CSIDriver>(client, name).await,
        ObjectKind::StorageClass => delete_cluster_scoped::<StorageClass>(client, name).await,
    }
}

/// Creates the cluster's root password Secret when it is missing; an existing one is kept as
/// it is (a user may bring their own). The password is never logged.
async fn ensure_root_secret(
    client: &Client,
    cluster: &ValidatedCluster,
    name: &str,
) -> Result<(), Error> {
    let secrets: Api<Secret> = Api::namespaced(client.clone(), &cluster.namespace);
    if secrets
        .get_opt(name)
        .await
        .map_err(Error::Secret)?
        .is_some()
    {
        return Ok(());
    }
    let password = crate::util::random_bytes(256)
        .map_err(Error::Random)
        .and_then(|bytes| {
            desired::secret::password_from(bytes)
                .ok_or_else(|| Error::Random(std::io::ErrorKind::UnexpectedEof.into()))
        })?;
    let secret = desired::secret::root_secret(cluster, &password);
    match secrets.create(&PostParams::default(), &secret).await {
        Ok(_) => {
            tracing::info!(secret = %name, "created the Curve root password Secret");
            Ok(())
        }
        // Created meanwhile by another writer: theirs is kept.
        Err(kube::Error::Api(response)) if response.code == 409 => Ok(()),
        Err(error) => Err(Error::Secret(error)),
    }
}

/// Writes the status by server-side apply of the status subresource, only when it changed. The
/// operator is the status's only writer, so applying the whole status also removes what it no
/// longer holds.
pub async fn write_status(
    client: &Client,
    cluster: &CurveCluster,
    previous: &CurveClusterStatus,
    next: &CurveClusterStatus,
) -> Result<(), Error> {
    if next == previous {
        return Ok(());
    }
    apply_status(
        client,
        &cluster.namespace().unwrap_or_default(),
        &cluster.name_any(),
        next,
    )
    .await
}

/// Server-side apply of a CurveCluster's whole status.
/// CurveClusters as raw JSON: for objects that do not parse as [`CurveCluster`].
pub fn untyped_clusters(client: &Client, namespace: &str) -> Api<DynamicObject> {
    Api::namespaced_with(
        client.clone(),
        namespace,
        &ApiResource::erase::<CurveCluster>(&()),
    )
}

pub async fn apply_status(
    client: &Client,
    namespace: &str,
    name: &str,
    status: &CurveClusterStatus,
) -> Result<(), Error> {
    // Untyped: the server answers with the whole object, which need not parse (the status of
    // an unparsable cluster is written too).
    let api = untyped_clusters(client, namespace);
    let body = json!({
        "apiVersion": CurveCluster::api_version(&()),
        "kind": CurveCluster::kind(&()),
        "status": status,
    });
    api.patch_status(
        name,
        &PatchParams::apply(FIELD_MANAGER).force(),
        &Patch::Apply(&body),
    )
    .await
    .map_err(Error::Status)?;
    Ok(())
}

pub fn has_finalizer(cluster: &CurveCluster) -> bool {
    has(cluster, DATA_FINALIZER)
}

/// Whether the cluster carries `finalizer`.
pub fn has(cluster: &CurveCluster, finalizer: &str) -> bool {
    cluster.finalizers().iter().any(|f| f == finalizer)
}

/// The data finalizer is present exactly while the cleanup policy and its confirmation ask
/// for the volumes to be deleted.
pub async fn set_finalizer(
    client: &Client,
    cluster: &CurveCluster,
    wanted: bool,
) -> Result<(), Error> {
    set_finalizers(client, cluster, &[(DATA_FINALIZER, wanted)]).await
}

/// Adds or removes each finalizer as wanted, in one compare-and-swap patch when anything
/// changes.
pub async fn set_finalizers(
    client: &Client,
    cluster: &CurveCluster,
    wanted: &[(&str, bool)],
) -> Result<(), Error> {
    if wanted.iter().all(|(f, want)| has(cluster, f) == *want) {
        return Ok(());
    }
    let mut finalizers: Vec<String> = cluster
        .finalizers()
        .iter()
        .filter(|f| !wanted.iter().any(|(w, _)| w == f))
        .cloned()
        .collect();
    finalizers.extend(
        (wanted.iter())
            .filter(|(_, want)| *want)
            .map(|(f, _)| f.to_string()),
    );
    let api: Api<CurveCluster> =
        Api::namespaced(client.clone(), &cluster.namespace().unwrap_or_default());
    // The resourceVersion makes it a compare-and-swap with other finalizer writers.
    let patch = json!({"metadata": {"finalizers": finalizers, "resourceVersion": cluster.resource_version()}});
    api.patch(
        &cluster.name_any(),
        &PatchParams::default(),
        &Patch::Merge(patch),
    )
    .await
    .map_err(Error::Finalizer)?;
    Ok(())
}

/// Every PersistentVolume (read only while a cluster with curve-csi is deleted).
pub async fn list_volumes(
    client: &Client,
) -> Result<Vec<k8s_openapi::api::core::v1::PersistentVolume>, Error> {
    let api: Api<k8s_openapi::api::core::v1::PersistentVolume> = Api::all(client.clone());
    let list = (api.list(&ListParams::default()).await).map_err(|source| Error::ReadCsi {
        what: "the PersistentVolumes".into(),
        source,
    })?;
    Ok(list.items)
}

/// Deletes cluster-scoped objects the cluster owned (by its labels); gone already is fine.
pub async fn delete_cluster_scoped_objects(
    client: &Client,
    objects: &[(ObjectKind, String)],
) -> Result<(), Error> {
    for (kind, name) in objects {
        (delete_object(client, "", *kind, name).await)
            .map_err(deleting(format!("{}/{name}", kind.as_str())))?;
    }
    Ok(())
}

/// Deletes the cluster's StatefulSets (their pods go with them, by the garbage collector).
pub async fn delete_stateful_sets(
    client: &Client,
    namespace: &str,
    names: &[String],
) -> Result<(), Error> {
    for name in names {
        match delete::<StatefulSet>(client, namespace, name).await {
            Ok(()) => {}
            // Gone already: the cache had not seen it go.
            Err(kube::Error::Api(status)) if status.code == 404 => {}
            Err(error) => return Err(Error::Cleanup(error)),
        }
    }
    Ok(())
}

/// Deletes the cluster's volume claims; returns how many went.
pub async fn delete_claims(client: &Client, namespace: &str, name: &str) -> Result<usize, Error> {
    let claims: Api<PersistentVolumeClaim> = Api::namespaced(client.clone(), namespace);
    let list = ListParams::default().labels(&cluster_selector(name));
    let deleted = claims
        .delete_collection(&DeleteParams::default(), &list)
        .await
        .map_err(Error::Cleanup)?;
    Ok(deleted.left().map(|l| l.items.len()).unwrap_or_default())
}
