//! The read step: everything one decision needs, taken from the controller's watch caches (the
//! reflector stores whose watches also trigger reconciles) and from the etcd observer. A
//! reconcile sends no Kubernetes request to read.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};

use futures::FutureExt;
use k8s_openapi::api::apps::v1::{DaemonSet, Deployment, StatefulSet};
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{ConfigMap, Event, Node, Service, ServiceAccount};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding, Role, RoleBinding};
use k8s_openapi::api::storage::v1::{CSIDriver, StorageClass};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::core::PartialObjectMeta;
use kube::runtime::reflector::{self, Lookup, Store, store::Writer};
use kube::runtime::watcher;
use kube::{Resource, ResourceExt};

use super::error::Error;
use super::model::action::{ExistingObject, ObjectKind};
use super::model::claim::ClaimReading;
use super::model::observation::MonitoringApi;
use super::model::pod::PodReading;
use crate::api::prometheus::{PodMonitor, PrometheusRule};
use crate::etcd::EtcdObservation;
use crate::names::{LABEL_INSTANCE, LABEL_NAMESPACE, is_csi_component};

/// The cluster's objects as the watch caches hold them, and what etcd says.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Snapshot {
    /// The cluster's pods as the cache reads them (shared with it, not copied).
    pub pods: Vec<Arc<PodReading>>,
    pub stateful_sets: Vec<StatefulSet>,
    /// ConfigMaps, Services and budgets by their metadata only: their applied-hash annotation
    /// says whether they are as desired, and their content is never read back.
    pub config_maps: Vec<ObjectMeta>,
    pub services: Vec<ObjectMeta>,
    pub budgets: Vec<ObjectMeta>,
    pub jobs: Vec<Job>,
    /// The cluster's claims as the cache reads them (shared with it, not copied: clusters
    /// have thousands).
    pub claims: Vec<Arc<ClaimReading>>,
    /// The zone label value of every node that has it (empty without `spec.placement.zoneLabel`).
    pub node_zones: BTreeMap<String, String>,
    /// Nodes running the cluster's pods whose `Ready` condition is not True.
    pub unready_nodes: BTreeSet<String>,
    /// What is wrong with the clocks of the nodes running the cluster's pods, if they are
    /// too far apart (clocks.rs).
    pub clocks_apart: Option<String>,
    /// When the CurveCluster was created (claims older than it belonged to an earlier one).
    pub cluster_created: Option<k8s_openapi::jiff::Timestamp>,
    /// The election and member health, read once the MDS tier exists.
    pub etcd: Option<EtcdObservation>,
    /// Curve's id counters, read only while an etcd restore advances them.
    pub etcd_counters: Option<Result<crate::etcd::counters::CounterReading, String>>,
    /// Curve's health as the health monitor last read it (once the MDS tier exists).
    pub health: Option<super::model::health::Latest>,
    /// `allowVolumeExpansion` of the StorageClasses read by GET: those of claims to grow (only
    /// while a claim asks for less than the spec) and of Pending claims; a class that does not
    /// exist is absent.
    pub storage_classes: BTreeMap<String, bool>,
    /// The Events of the tier StatefulSets that have pods missing, listed (not watched) only
    /// then: the StatefulSet controller says why it cannot create a pod nowhere else.
    pub set_events: Vec<Event>,
    /// Whether the API server serves the Prometheus Operator's kinds.
    pub monitoring_api: MonitoringApi,
    /// The cluster's PodMonitors and PrometheusRules, once their caches have synced.
    pub monitoring_objects: Vec<ExistingObject>,
    /// curve-csi's objects and node plugin pods (its pods are not in `pods`).
    pub csi: CsiSnapshot,
    /// The operator's own image (`--job-image`), which makes the etcd backups' bucket copies.
    pub uploader_image: Option<String>,
}

/// What the csi part of a decision reads.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct CsiSnapshot {
    /// The cluster's curve-csi objects, namespaced and cluster-scoped, by their metadata.
    pub objects: Vec<ExistingObject>,
    /// The node plugin's config hash as its DaemonSet (in the cache) holds it.
    pub node_config: Option<String>,
    /// The node plugin pods.
    pub node_pods: Vec<Arc<PodReading>>,
    /// Nodes with a VolumeAttachment of the driver: listed (not watched) only while a node
    /// plugin pod runs an outdated config.
    pub attached: Option<BTreeSet<String>>,
    /// Objects of curve-csi's names that belong to someone else (read by GET only while the
    /// cluster's own are not in the cache).
    pub taken: Vec<String>,
    /// The CurveCluster's annotation allowing node plugin restarts
    /// (`curve.opencurve.io/csi-restart-nodes`).
    pub restart_nodes: Option<String>,
}

/// The watch caches of the Prometheus Operator's kinds, started only once discovery finds
/// them (a watch of a kind that is not served fails forever), and the discovery state.
#[derive(Clone)]
pub struct MonitoringCaches {
    pub pod_monitors: Store<PartialObjectMeta<PodMonitor>>,
    pub rules: Store<PartialObjectMeta<PrometheusRule>>,
    pub discovery: Arc<MonitoringDiscovery>,
}

/// The writing ends of [`MonitoringCaches`].
pub struct MonitoringWriters {
    pub pod_monitors: Writer<PartialObjectMeta<PodMonitor>>,
    pub rules: Writer<PartialObjectMeta<PrometheusRule>>,
}

/// Shared between the reconciles (which say which clusters want monitoring) and the task that
/// asks the API server's discovery (`reconcile::run`).
#[derive(Default)]
pub struct MonitoringDiscovery {
    pub api: Mutex<MonitoringApi>,
    /// Clusters that want monitoring and have not seen it served yet.
    pub waiting: Mutex<BTreeSet<(String, String)>>,
    pub wake: tokio::sync::Notify,
}

impl MonitoringDiscovery {
    /// The cluster no longer enables monitoring (or is deleted).
    pub fn unwant(&self, namespace: &str, name: &str) {
        let key = (namespace.to_string(), name.to_string());
        self.waiting.lock().expect("not poisoned").remove(&key);
    }

    /// The cluster enables monitoring: have discovery ask, and reconcile it once served.
    pub fn want(&self, namespace: &str, name: &str) {
        let served = *self.api.lock().expect("not poisoned") == MonitoringApi::Served;
        if !served {
            let key = (namespace.to_string(), name.to_string());
            if self.waiting.lock().expect("not poisoned").insert(key) {
                self.wake.notify_one();
            }
        }
    }
}

type StorePair<K> = (Store<K>, Writer<K>);

impl MonitoringCaches {
    fn new(
        pod_monitors: StorePair<PartialObjectMeta<PodMonitor>>,
        rules: StorePair<PartialObjectMeta<PrometheusRule>>,
    ) -> (Self, MonitoringWriters) {
        let caches = MonitoringCaches {
            pod_monitors: pod_monitors.0,
            rules: rules.0,
            discovery: Arc::default(),
        };
        let writers = MonitoringWriters {
            pod_monitors: pod_monitors.1,
            rules: rules.1,
        };
        (caches, writers)
    }

    fn state(&self, namespace: &str, name: &str) -> (MonitoringApi, Vec<ExistingObject>) {
        let api = self.discovery.api.lock().expect("not poisoned").clone();
        let (monitors, rules) = (&self.pod_monitors, &self.rules);
        if api != MonitoringApi::Served {
            return (api, Vec::new());
        }
        if synced(monitors, "podmonitors").is_err() || synced(rules, "prometheusrules").is_err() {
            return (MonitoringApi::Unknown, Vec::new());
        }
        let mut objects: Vec<ExistingObject> = of_cluster(monitors, namespace, name)
            .iter()
            .map(|o| ExistingObject::of(ObjectKind::PodMonitor, &o.metadata))
            .collect();
        objects.extend(
            of_cluster(rules, namespace, name)
                .iter()
                .map(|o| ExistingObject::of(ObjectKind::PrometheusRule, &o.metadata)),
        );
        (api, objects)
    }
}

/// What a cache keeps of what its watch delivers: the object slimmed ([`Slim`]), or for pods
/// and claims their compact readings ([`PodReading`], [`ClaimReading`]).
pub trait Cached: Sized {
    type Watched;
    fn cached(watched: Self::Watched) -> Self;
}

impl<K: Slim> Cached for K {
    type Watched = K;
    fn cached(mut watched: K) -> K {
        watched.slim();
        watched
    }
}

impl Cached for PodReading {
    type Watched = k8s_openapi::api::core::v1::Pod;
    fn cached(pod: Self::Watched) -> Self {
        pod.into()
    }
}

impl Cached for ClaimReading {
    type Watched = k8s_openapi::api::core::v1::PersistentVolumeClaim;
    fn cached(claim: Self::Watched) -> Self {
        claim.into()
    }
}

/// A watch event with its object read as the cache keeps it.
pub fn cached_event<K: Cached>(event: watcher::Event<K::Watched>) -> watcher::Event<K> {
    match event {
        watcher::Event::Apply(o) => watcher::Event::Apply(K::cached(o)),
        watcher::Event::Delete(o) => watcher::Event::Delete(K::cached(o)),
        watcher::Event::Init => watcher::Event::Init,
        watcher::Event::InitApply(o) => watcher::Event::InitApply(K::cached(o)),
        watcher::Event::InitDone => watcher::Event::InitDone,
    }
}

/// What an object keeps in a cache: only what decisions read. Every kind drops its managed
/// fields (the largest part of a server-side-applied object) and kubectl's last-applied copy;
/// the kinds below drop more, each saying what `decide` still reads.
pub trait Slim {
    fn slim(&mut self);
}

const LAST_APPLIED: &str = "kubectl.kubernetes.io/last-applied-configuration";

fn slim_metadata(meta: &mut ObjectMeta) {
    meta.managed_fields = None;
    if let Some(annotations) = meta.annotations.as_mut() {
        annotations.remove(LAST_APPLIED);
    }
}

impl<K> Slim for PartialObjectMeta<K> {
    fn slim(&mut self) {
        slim_metadata(&mut self.metadata);
    }
}

impl Slim for kube::core::DeserializeGuard<crate::api::CurveCluster> {
    fn slim(&mut self) {
        slim_metadata(self.meta_mut());
    }
}

impl Slim for Node {
    /// Labels (zones) and the `Ready` condition (pods stuck on a lost node); not the rest of
    /// the status (images, addresses) nor the spec.
    fn slim(&mut self) {
        slim_metadata(&mut self.metadata);
        self.spec = None;
        if let Some(status) = self.status.as_mut() {
            let ready = (status.conditions.take().into_iter().flatten())
                .filter(|c| c.type_ == "Ready")
                .collect();
            *status = k8s_openapi::api::core::v1::NodeStatus {
                conditions: Some(ready),
                ..Default::default()
            };
        }
    }
}

/// Whether a node's `Ready` condition is True (a node that reports none is taken as ready:
/// nothing says otherwise).
fn node_ready(node: &Node) -> bool {
    let conditions = node.status.as_ref().and_then(|s| s.conditions.as_ref());
    let ready = conditions.and_then(|c| c.iter().find(|c| c.type_ == "Ready"));
    ready.is_none_or(|c| c.status == "True")
}

impl Slim for StatefulSet {
    /// Metadata, status, replicas and the claim templates (their size); not the pod template.
    fn slim(&mut self) {
        slim_metadata(&mut self.metadata);
        if let Some(spec) = self.spec.as_mut() {
            spec.template = Default::default();
        }
    }
}

impl Slim for Job {
    /// Metadata and status (the outcome); not the spec.
    fn slim(&mut self) {
        slim_metadata(&mut self.metadata);
        self.spec = None;
    }
}

/// Buffer of each shared watch stream: how far the controller's trigger may lag the cache.
const SHARED_BUFFER: usize = 256;

macro_rules! caches {
    ($($field:ident: $kind:ty),* $(,)?) => {
        /// The operator's watch caches, one per kind it reads. The controller's watches fill
        /// them (`run`); tests fill them through [`CacheWriters`].
        #[derive(Clone)]
        pub struct Caches {
            $(pub $field: Store<$kind>,)*
            pub monitoring: MonitoringCaches,
            /// The nodes' clocks, from their Leases (not a store: only live renewals count).
            pub clocks: super::clocks::NodeClocks,
        }

        /// The writing ends of [`Caches`].
        pub struct CacheWriters {
            $(pub $field: Writer<$kind>,)*
            pub monitoring: MonitoringWriters,
        }

        impl Caches {
            /// Caches whose writers also broadcast every change (for the controller's triggers).
            pub fn shared() -> (Caches, CacheWriters) {
                $(let $field = reflector::store_shared(SHARED_BUFFER);)*
                let (pod_monitors, rules) = (reflector::store_shared(SHARED_BUFFER), reflector::store_shared(SHARED_BUFFER));
                let (monitoring, monitoring_writers) = MonitoringCaches::new(pod_monitors, rules);
                (Caches { $($field: $field.0,)* monitoring, clocks: Default::default() }, CacheWriters { $($field: $field.1,)* monitoring: monitoring_writers })
            }

            /// Plain caches, written only through the returned writers.
            pub fn unshared() -> (Caches, CacheWriters) {
                $(let $field = reflector::store();)*
                let (monitoring, monitoring_writers) = MonitoringCaches::new(reflector::store(), reflector::store());
                (Caches { $($field: $field.0,)* monitoring, clocks: Default::default() }, CacheWriters { $($field: $field.1,)* monitoring: monitoring_writers })
            }

            /// Every cache has had its first complete listing: before that, a missing object
            /// may just not have arrived yet.
            pub fn check_synced(&self) -> Result<(), Error> {
                $(synced(&self.$field, stringify!($field))?;)*
                Ok(())
            }

            /// Waits until every cache has had its first complete listing.
            pub async fn wait_until_synced(&self) {
                $(wait_until_ready(&self.$field).await;)*
            }
        }
    };
}

caches! {
    pods: PodReading,
    stateful_sets: StatefulSet,
    config_maps: PartialObjectMeta<ConfigMap>,
    services: PartialObjectMeta<Service>,
    budgets: PartialObjectMeta<PodDisruptionBudget>,
    jobs: Job,
    claims: ClaimReading,
    nodes: Node,
    service_accounts: PartialObjectMeta<ServiceAccount>,
    roles: PartialObjectMeta<Role>,
    role_bindings: PartialObjectMeta<RoleBinding>,
    daemon_sets: PartialObjectMeta<DaemonSet>,
    deployments: PartialObjectMeta<Deployment>,
    cluster_roles: PartialObjectMeta<ClusterRole>,
    cluster_role_bindings: PartialObjectMeta<ClusterRoleBinding>,
    csi_drivers: PartialObjectMeta<CSIDriver>,
    storage_classes: PartialObjectMeta<StorageClass>,
}

fn synced<K: Lookup + Clone + 'static>(store: &Store<K>, name: &'static str) -> Result<(), Error>
where
    K::DynamicType: Eq + std::hash::Hash + Clone,
{
    match store.wait_until_ready().now_or_never() {
        Some(Ok(())) => Ok(()),
        _ => Err(Error::Read(name)),
    }
}

pub async fn wait_until_ready<K: Lookup + Clone + 'static>(store: &Store<K>)
where
    K::DynamicType: Eq + std::hash::Hash + Clone,
{
    // kube's store readiness wakes only its most recent waiter: ask again until it answers.
    loop {
        let wait = store.wait_until_ready();
        match tokio::time::timeout(std::time::Duration::from_millis(500), wait).await {
            Ok(_) => return,
            Err(_) => continue,
        }
    }
}

fn of_cluster<K>(store: &Store<K>, namespace: &str, name: &str) -> Vec<K>
where
    K: Resource + Lookup + Clone + 'static,
    <K as Lookup>::DynamicType: Eq + std::hash::Hash + Clone,
{
    let shared = shared_of_cluster(store, namespace, name);
    shared.into_iter().map(Arc::unwrap_or_clone).collect()
}

/// The objects of cluster `namespace/name`, shared with the cache.
fn shared_of_cluster<K>(store: &Store<K>, namespace: &str, name: &str) -> Vec<Arc<K>>
where
    K: Resource + Lookup + Clone + 'static,
    <K as Lookup>::DynamicType: Eq + std::hash::Hash + Clone,
{
    let mut objects = store.state_filter(|object| {
        object.meta().namespace.as_deref() == Some(namespace)
            && object.labels().get(LABEL_INSTANCE).map(String::as_str) == Some(name)
    });
    // Store order is a hash order: sort, so the same cluster gives the same snapshot (by the
    // borrowed name: `name_any` would copy it at every comparison).
    objects.sort_by(|a, b| a.meta().name.cmp(&b.meta().name));
    objects
}

/// The cluster's pods, shared with the cache.
fn pods_of_cluster(store: &Store<PodReading>, namespace: &str, name: &str) -> Vec<Arc<PodReading>> {
    let mut pods = store
        .state_filter(|pod| pod.namespace == namespace && pod.instance.as_deref() == Some(name));
    pods.sort_by(|a, b| a.name.cmp(&b.name));
    pods
}

/// The cluster's claims, shared with the cache.
fn claims_of_cluster(
    store: &Store<ClaimReading>,
    namespace: &str,
    name: &str,
) -> Vec<Arc<ClaimReading>> {
    let mut claims = store.state_filter(|claim| {
        claim.namespace == namespace && claim.instance.as_deref() == Some(name)
    });
    claims.sort_by(|a, b| a.name.cmp(&b.name));
    claims
}

fn metadata_of_cluster<K>(
    store: &Store<PartialObjectMeta<K>>,
    namespace: &str,
    name: &str,
) -> Vec<ObjectMeta>
where
    PartialObjectMeta<K>: Resource + Lookup + Clone + 'static,
    <PartialObjectMeta<K> as Lookup>::DynamicType: Eq + std::hash::Hash + Clone,
{
    (of_cluster(store, namespace, name).into_iter())
        .map(|object| object.metadata)
        .collect()
}

impl Caches {
    /// The objects of cluster `namespace/name` (by its instance label), and the node zones.
    /// The etcd reading is added by the caller.
    pub fn snapshot(&self, namespace: &str, name: &str, zone_label: Option<&str>) -> Snapshot {
        let (monitoring_api, monitoring_objects) = self.monitoring.state(namespace, name);
        let node_zones = match zone_label {
            None => BTreeMap::new(),
            Some(label) => self
                .nodes
                .state()
                .iter()
                .filter_map(|node| Some((node.name_any(), node.labels().get(label)?.clone())))
                .collect(),
        };
        // curve-csi's pods are no tier's: only the node plugin's are read, by the csi part.
        let (csi_pods, pods): (Vec<_>, Vec<_>) = (pods_of_cluster(&self.pods, namespace, name)
            .into_iter())
        .partition(|p| p.component.as_deref().is_some_and(is_csi_component));
        let pod_nodes: BTreeSet<&str> = pods.iter().filter_map(|p| p.node.as_deref()).collect();
        let clocks_apart = (self.clocks.apart(pod_nodes.iter().copied())).map(|a| a.message());
        let unready_nodes = (self.nodes.state().iter())
            .filter(|node| {
                let name = node.metadata.name.as_deref().unwrap_or_default();
                pod_nodes.contains(name) && !node_ready(node)
            })
            .map(|node| node.name_any())
            .collect();
        Snapshot {
            cluster_created: None,
            unready_nodes,
            clocks_apart,
            pods,
            stateful_sets: of_cluster(&self.stateful_sets, namespace, name),
            config_maps: metadata_of_cluster(&self.config_maps, namespace, name),
            services: metadata_of_cluster(&self.services, namespace, name),
            budgets: metadata_of_cluster(&self.budgets, namespace, name),
            jobs: of_cluster(&self.jobs, namespace, name),
            claims: claims_of_cluster(&self.claims, namespace, name),
            node_zones,
            etcd: None,
            etcd_counters: None,
            storage_classes: BTreeMap::new(),
            set_events: Vec::new(),
            health: None,
            monitoring_api,
            monitoring_objects,
            csi: self.csi(namespace, name, csi_pods),
            uploader_image: None,
        }
    }

    /// The cluster's cluster-scoped curve-csi objects, which its finalizer deletes.
    pub fn csi_cluster_scoped(&self, namespace: &str, name: &str) -> Vec<ExistingObject> {
        (self.csi(namespace, name, Vec::new()).objects.into_iter())
            .filter(|o| o.kind.cluster_scoped())
            .collect()
    }

    /// The cluster's curve-csi objects by their metadata, and its node plugin pods.
    fn csi(&self, namespace: &str, name: &str, pods: Vec<Arc<PodReading>>) -> CsiSnapshot {
        fn metas<K>(
            store: &Store<PartialObjectMeta<K>>,
            kind: ObjectKind,
            namespace: &str,
            name: &str,
            objects: &mut Vec<ExistingObject>,
        ) where
            PartialObjectMeta<K>: Resource + Lookup + Clone + 'static,
            <PartialObjectMeta<K> as Lookup>::DynamicType: Eq + std::hash::Hash + Clone,
        {
            let found = if kind.cluster_scoped() {
                cluster_scoped_of_cluster(store, namespace, name)
            } else {
                metadata_of_cluster(store, namespace, name)
            };
            objects.extend(found.iter().map(|meta| ExistingObject::of(kind, meta)));
        }
        let mut objects = Vec::new();
        let (o, n, ns) = (&mut objects, name, namespace);
        metas(&self.service_accounts, ObjectKind::ServiceAccount, ns, n, o);
        metas(&self.roles, ObjectKind::Role, ns, n, o);
        metas(&self.role_bindings, ObjectKind::RoleBinding, ns, n, o);
        metas(&self.daemon_sets, ObjectKind::DaemonSet, ns, n, o);
        metas(&self.deployments, ObjectKind::Deployment, ns, n, o);
        metas(&self.cluster_roles, ObjectKind::ClusterRole, ns, n, o);
        metas(
            &self.cluster_role_bindings,
            ObjectKind::ClusterRoleBinding,
            ns,
            n,
            o,
        );
        metas(&self.csi_drivers, ObjectKind::CsiDriver, ns, n, o);
        metas(&self.storage_classes, ObjectKind::StorageClass, ns, n, o);
        let node_config = (metadata_of_cluster(&self.daemon_sets, namespace, name).iter())
            .find_map(|meta| {
                meta.annotations
                    .as_ref()?
                    .get(crate::desired::csi::NODE_CONFIG_ANNOTATION)
                    .cloned()
            });
        let node_pods = (pods.into_iter())
            .filter(|p| p.is(crate::names::CSI_NODE))
            .collect();
        CsiSnapshot {
            objects,
            node_config,
            node_pods,
            ..CsiSnapshot::default()
        }
    }
}

/// The cluster-scoped objects of cluster `namespace/name`: by its instance and namespace
/// labels.
fn cluster_scoped_of_cluster<K>(
    store: &Store<PartialObjectMeta<K>>,
    namespace: &str,
    name: &str,
) -> Vec<ObjectMeta>
where
    PartialObjectMeta<K>: Resource + Lookup + Clone + 'static,
    <PartialObjectMeta<K> as Lookup>::DynamicType: Eq + std::hash::Hash + Clone,
{
    let mut objects: Vec<ObjectMeta> = store
        .state_filter(|object| {
            let labels = object.labels();
            labels.get(LABEL_INSTANCE).map(String::as_str) == Some(name)
                && labels.get(LABEL_NAMESPACE).map(String::as_str) == Some(namespace)
        })
        .into_iter()
        .map(|object| object.metadata.clone())
        .collect();
    objects.sort_by(|a, b| a.name.cmp(&b.name));
    objects
}

/// Replaces everything a writer's cache holds by `objects`, as the cache keeps them, as a
/// watch's (re)list does.
pub fn replace_all<K>(writer: &mut Writer<K>, objects: impl IntoIterator<Item = K::Watched>)
where
    K: Lookup + Cached + Clone + 'static,
    K::DynamicType: Eq + std::hash::Hash + Clone,
{
    writer.apply_watcher_event(&watcher::Event::Init);
    for object in objects {
        writer.apply_watcher_event(&watcher::Event::InitApply(K::cached(object)));
    }
    writer.apply_watcher_event(&watcher::Event::InitDone);
}
