//! The controller: fetch → validate → build → apply (server-side apply, fixed order) →
//! observe → status. The logic lives in the pure modules; this file only does the I/O.

pub mod events;
pub mod observe;
pub mod plan;
pub mod status;
pub mod topology;

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::{Stream, StreamExt};
use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{ConfigMap, Node, PersistentVolumeClaim, Pod, Secret, Service};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, DeleteParams, DynamicObject, ListParams, Patch, PatchParams, PostParams};
use kube::core::{ApiResource, DeserializeGuard};
use kube::runtime::controller::{Action as Requeue, Controller};
use kube::runtime::reflector::ObjectRef;
use kube::runtime::watcher;
use kube::{Client, Resource, ResourceExt};
use serde_json::json;

use crate::api::{CurveCluster, CurveClusterStatus};
use crate::build::common::{
    LABEL_COMPONENT, LABEL_INSTANCE, LABEL_MANAGED_BY, MANAGER, cluster_selector, component_name,
    root_secret_name,
};
use crate::build::config::{
    CS_CLIENT_CONF, CURVE_DELIMITER, DaemonAddresses, TOOLS_CONF, read_key,
};
use crate::build::topology::{ClusterMap, PoolProgress, TOPOLOGY_JSON};
use crate::build::{self, Component, Observed};
use crate::etcd::{ClusterKey, EtcdObserver};
use crate::runtime::metrics::{Component as MetricComponent, Metrics, ReconcileResult};
use crate::validate::{ValidatedCluster, validate};
use events::{ClusterEvent, EventSink};
use plan::{APPLIED_HASH_ANNOTATION, Action, ExistingObject};
use status::{Observation, PrimaryView, compute_status};

/// Field manager of every server-side apply.
pub const FIELD_MANAGER: &str = "curve-operator";
/// Finalizer present only while the cleanup policy asks for data to be deleted.
pub const DATA_FINALIZER: &str = "curve.opencurve.io/delete-data";

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("Kubernetes API: {0}")]
    Kube(#[from] kube::Error),
    #[error("cannot generate the root password: reading random bytes failed: {0}")]
    Random(std::io::Error),
}

impl Error {
    /// The metrics category of the error.
    pub fn category(&self) -> &'static str {
        match self {
            Error::Kube(kube::Error::Api(_)) => "api",
            Error::Kube(_) => "transport",
            Error::Random(_) => "random",
        }
    }
}

/// What every reconcile shares.
pub struct Context<O: EtcdObserver, E: EventSink> {
    pub client: Client,
    pub etcd: O,
    pub events: E,
    pub metrics: Arc<Metrics>,
    /// Consecutive failures per cluster, for the retry backoff.
    failures: Mutex<HashMap<(String, String), u32>>,
}

impl<O: EtcdObserver, E: EventSink> Context<O, E> {
    pub fn new(client: Client, etcd: O, events: E) -> Self {
        Context {
            client,
            etcd,
            events,
            metrics: Arc::new(Metrics::new()),
            failures: Mutex::default(),
        }
    }

    /// Shares the operator's metrics registry.
    pub fn with_metrics(mut self, metrics: Arc<Metrics>) -> Self {
        self.metrics = metrics;
        self
    }
}

/// How soon a healthy cluster is looked at again without any event (a safety net: changes
/// arrive through watches and the etcd election stream).
const HEALTHY_RESYNC: Duration = Duration::from_secs(300);
/// How soon a cluster still coming up is looked at again.
const PROGRESS_RESYNC: Duration = Duration::from_secs(15);

fn key(cluster: &CurveCluster) -> (String, String) {
    (cluster.namespace().unwrap_or_default(), cluster.name_any())
}

/// Entry point of the controller.
pub async fn reconcile<O: EtcdObserver, E: EventSink>(
    object: Arc<DeserializeGuard<CurveCluster>>,
    ctx: Arc<Context<O, E>>,
) -> Result<Requeue, Error> {
    let cluster = match &object.0 {
        Ok(cluster) => cluster,
        Err(invalid) => return report_unparsable(&ctx, invalid).await,
    };
    let started = std::time::Instant::now();
    let result = reconcile_cluster(cluster, &ctx).await;
    let outcome = if result.is_ok() {
        ReconcileResult::Success
    } else {
        ReconcileResult::Error
    };
    ctx.metrics.reconcile_finished(outcome, started.elapsed());
    if let Err(error) = &result {
        ctx.metrics.error(error.category());
    }
    let failures = {
        let mut failures = ctx.failures.lock().expect("not poisoned");
        match &result {
            Ok(_) => {
                failures.remove(&key(cluster));
                0
            }
            Err(_) => {
                let count = failures.entry(key(cluster)).or_default();
                *count += 1;
                *count
            }
        }
    };
    if let Err(error) = &result {
        tracing::warn!(cluster = %cluster.name_any(), %error, failures, "reconcile failed");
        report_error(cluster, &ctx, error).await;
    }
    result
}

/// Backoff of a failed reconcile: 5 s doubling up to 5 minutes, per cluster.
pub fn error_policy<O: EtcdObserver, E: EventSink>(
    object: Arc<DeserializeGuard<CurveCluster>>,
    _error: &Error,
    ctx: Arc<Context<O, E>>,
) -> Requeue {
    let failures = match &object.0 {
        Ok(cluster) => ctx
            .failures
            .lock()
            .expect("not poisoned")
            .get(&key(cluster))
            .copied()
            .unwrap_or(1),
        Err(_) => 1,
    };
    Requeue::requeue(backoff(failures))
}

pub fn backoff(failures: u32) -> Duration {
    Duration::from_secs((5u64 << failures.saturating_sub(1).min(6)).min(300))
}

async fn reconcile_cluster<O: EtcdObserver, E: EventSink>(
    cluster: &CurveCluster,
    ctx: &Context<O, E>,
) -> Result<Requeue, Error> {
    let namespace = cluster.namespace().unwrap_or_else(|| "default".to_string());
    let name = cluster.name_any();
    let previous = cluster.status.clone().unwrap_or_default();
    let generation = cluster.metadata.generation;

    if cluster.metadata.deletion_timestamp.is_some() {
        return finalize(cluster, ctx, &namespace).await;
    }

    let validated = match validate(cluster, &namespace) {
        Ok(validated) => validated,
        Err(invalid) => {
            let errors = invalid.0.iter().map(ToString::to_string).collect();
            let next = compute_status(
                &previous,
                &Observation::invalid(errors),
                generation,
                Timestamp::now(),
            );
            write_status(cluster, ctx, &previous, next, &[]).await?;
            // Nothing to retry: the spec must change first, and that is a watch event.
            return Ok(Requeue::await_change());
        }
    };

    ensure_finalizer(
        cluster,
        ctx,
        &namespace,
        validated.spec.cleanup.deletes_data(),
    )
    .await?;

    let selector = cluster_selector(&name);
    let list = ListParams::default().labels(&selector);
    let pods = Api::<Pod>::namespaced(ctx.client.clone(), &namespace)
        .list(&list)
        .await?
        .items;
    let sets = Api::<StatefulSet>::namespaced(ctx.client.clone(), &namespace)
        .list(&list)
        .await?
        .items;
    let maps = Api::<ConfigMap>::namespaced(ctx.client.clone(), &namespace)
        .list(&list)
        .await?
        .items;
    let services = Api::<Service>::namespaced(ctx.client.clone(), &namespace)
        .list(&list)
        .await?
        .items;
    let budgets = Api::<PodDisruptionBudget>::namespaced(ctx.client.clone(), &namespace)
        .list(&list)
        .await?
        .items;
    let jobs = Api::<Job>::namespaced(ctx.client.clone(), &namespace)
        .list(&list)
        .await?
        .items;

    let mut existing: Vec<ExistingObject> = Vec::new();
    existing.extend(sets.iter().map(|set| ExistingObject {
        replicas: set.spec.as_ref().and_then(|spec| spec.replicas),
        claim_size: claim_size(set),
        ..existing_object(set)
    }));
    existing.extend(maps.iter().map(existing_object));
    existing.extend(services.iter().map(existing_object));
    existing.extend(budgets.iter().map(existing_object));

    let (safe, refused) = plan::refuse_unsafe_changes(&validated, &existing);
    let spec = &safe.spec;
    let etcd_exists = plan::tier_exists(&existing, Component::Etcd);
    let mds_exists = plan::tier_exists(&existing, Component::Mds);
    let chunkservers_exist = plan::tier_exists(&existing, Component::ChunkServer);

    let cluster_key = ClusterKey {
        namespace: namespace.clone(),
        name: name.clone(),
    };
    let mut obs = Observation {
        spec_errors: Vec::new(),
        paused: spec.paused,
        etcd: observe::component(&pods, Component::Etcd, spec.etcd.replicas, etcd_exists),
        mds: observe::component(&pods, Component::Mds, spec.mds.replicas, mds_exists),
        chunkservers: observe::component(
            &pods,
            Component::ChunkServer,
            spec.chunkservers.replicas * spec.chunkservers.disks_per_node,
            chunkservers_exist,
        ),
        etcd_members: None,
        etcd_quorum: safe.etcd_quorum(),
        tolerated_unready_chunkservers: (spec.logical_pool.replicas - 1) / 2,
        primary: PrimaryView::NotStarted,
        refused,
        error: None,
        format: observe::format_progress(&pods),
        topology: if spec.paused {
            status::TopologyState::from_status(&previous)
        } else {
            None
        },
        physical_pool: spec.logical_pool.physical_pool.clone(),
        logical_pool: spec.logical_pool.name.clone(),
    };
    if mds_exists {
        let endpoints = observe::etcd_endpoints(&pods, spec.etcd.client_port);
        let reading = ctx.etcd.observe(&cluster_key, &endpoints).await;
        obs.primary = observe::primary_view(&pods, spec.mds.port, &reading.primary);
        obs.etcd_members = reading.members;
    }

    let mut created = Vec::new();
    if !obs.paused {
        let node_zones = node_zones(ctx, &pods, spec.placement.zone_label.as_deref()).await?;
        let topology_name = component_name(&safe, Component::Topology);
        let topology_data = maps
            .iter()
            .find(|m| m.metadata.name.as_deref() == Some(topology_name.as_str()))
            .and_then(|m| m.data.clone())
            .unwrap_or_default();
        let previous_map = topology_data
            .get(TOPOLOGY_JSON)
            .and_then(|json| ClusterMap::parse(json));
        let chunkserver_config = maps
            .iter()
            .find(|m| {
                m.metadata.name.as_deref()
                    == Some(component_name(&safe, Component::ChunkServer).as_str())
            })
            .and_then(|m| m.data.clone())
            .unwrap_or_default();
        let previous_list = |text: Option<&String>, key: &str| {
            text.and_then(|t| read_key(t, key, CURVE_DELIMITER))
                .map(|v| {
                    v.split(',')
                        .filter(|a| !a.is_empty())
                        .map(String::from)
                        .collect()
                })
        };
        let addresses = DaemonAddresses {
            mds: observe::member_addresses(
                &pods,
                &component_name(&safe, Component::Mds),
                spec.mds.replicas,
                spec.mds.port,
                previous_list(chunkserver_config.get(CS_CLIENT_CONF), "mds.listen.addr"),
            ),
            etcd: observe::member_addresses(
                &pods,
                &component_name(&safe, Component::Etcd),
                spec.etcd.replicas,
                spec.etcd.client_port,
                previous_list(topology_data.get(TOOLS_CONF), "etcdAddr"),
            ),
        };
        let observed = Observed {
            servers: observe::chunkserver_servers(&pods, &node_zones),
            previous_map,
            pools: PoolProgress::from_data(&topology_data),
            addresses: Some(addresses),
        };
        let mut desired = build::build(&safe, &observed);
        // ChunkServers list every MDS by IP in their config: they start once all MDS pods have
        // one, so the first ChunkServers do not roll when the last MDS gets its address.
        let mds_addressed = observe::all_members_addressed(
            &pods,
            &component_name(&safe, Component::Mds),
            spec.mds.replicas,
        );
        let chunkservers_may_start = matches!(obs.primary, PrimaryView::Elected { .. })
            && (chunkservers_exist || mds_addressed);
        let gates = plan::gates(obs.etcd_quorate(), chunkservers_may_start);
        let mut job_actions = Vec::new();
        if gates.chunkservers {
            let job_states: Vec<topology::JobState> =
                jobs.iter().map(topology::JobState::of).collect();
            let decision =
                topology::decide(&safe, &desired.cluster_map, &observed.pools, &job_states);
            desired.topology = build::topology::build(
                &safe,
                &desired.cluster_map,
                &decision.progress,
                &desired.addresses,
            );
            if let Some(step) = decision.create {
                let job = build::jobs::build(&safe, step, &desired.cluster_map);
                let name = job.metadata.name.clone().unwrap_or_default();
                job_actions.push(Action::Apply {
                    kind: "Job".into(),
                    name,
                    object: build::typed_value(&job),
                });
            }
            job_actions.extend(decision.delete.iter().map(|name| Action::Delete {
                kind: "Job".into(),
                name: name.clone(),
            }));
            obs.topology = Some(status::TopologyState {
                ready: decision.ready,
                reason: decision.reason.to_string(),
                message: decision.message,
                servers: desired.cluster_map.servers.len() as i32,
            });
        }
        let mut actions = plan::plan(&desired, &existing, gates);
        actions.extend(job_actions);
        for (component, exists) in [
            (Component::Etcd, etcd_exists),
            (Component::Mds, mds_exists),
            (Component::ChunkServer, chunkservers_exist),
        ] {
            let set_name = desired
                .tiers()
                .iter()
                .find(|t| t.component == component)
                .and_then(|t| t.stateful_sets.first()?.metadata.name.clone());
            let applies_set = actions.iter().any(|a| matches!(a, Action::Apply { kind, name, .. } if kind == "StatefulSet" && Some(name) == set_name.as_ref()));
            if !exists && applies_set {
                created.push(component);
            }
        }
        if gates.mds {
            // MDS, ChunkServers and the tools read the root password: it exists before them.
            ensure_root_secret(ctx, &safe).await?;
        }
        execute(ctx, &namespace, &actions).await?;
        // What was just created exists now, with no pod ready yet.
        for component in &created {
            match component {
                Component::Etcd => obs.etcd.exists = true,
                Component::Mds => obs.mds.exists = true,
                Component::ChunkServer => obs.chunkservers.exists = true,
                Component::Topology => {}
            }
        }
    }

    let next = compute_status(&previous, &obs, generation, Timestamp::now());
    let available = obs.complete();
    for (component, seen) in [
        (MetricComponent::Etcd, &obs.etcd),
        (MetricComponent::Mds, &obs.mds),
        (MetricComponent::ChunkServer, &obs.chunkservers),
    ] {
        ctx.metrics
            .set_ready(&namespace, &name, component, seen.ready.max(0) as u32);
    }
    write_status(cluster, ctx, &previous, next, &created).await?;
    Ok(if obs.paused {
        Requeue::await_change()
    } else if available {
        Requeue::requeue(HEALTHY_RESYNC)
    } else {
        Requeue::requeue(PROGRESS_RESYNC)
    })
}

/// Creates the cluster's root password Secret when it is missing; an existing one is kept as
/// it is (a user may bring their own). The password is never logged.
async fn ensure_root_secret<O: EtcdObserver, E: EventSink>(
    ctx: &Context<O, E>,
    cluster: &ValidatedCluster,
) -> Result<(), Error> {
    let secrets: Api<Secret> = Api::namespaced(ctx.client.clone(), &cluster.namespace);
    let name = root_secret_name(cluster);
    if secrets.get_opt(&name).await?.is_some() {
        return Ok(());
    }
    let password = crate::util::random_bytes(256)
        .map_err(Error::Random)
        .and_then(|bytes| {
            build::secret::password_from(bytes)
                .ok_or_else(|| Error::Random(std::io::ErrorKind::UnexpectedEof.into()))
        })?;
    match secrets
        .create(
            &PostParams::default(),
            &build::secret::root_secret(cluster, &password),
        )
        .await
    {
        Ok(_) => {
            tracing::info!(namespace = %cluster.namespace, secret = %name, "created the Curve root password Secret");
            Ok(())
        }
        // Created meanwhile by another writer: theirs is kept.
        Err(kube::Error::Api(response)) if response.code == 409 => Ok(()),
        Err(error) => Err(error.into()),
    }
}

/// The storage request of a StatefulSet's first volume claim template.
fn claim_size(set: &StatefulSet) -> Option<String> {
    let claims = set.spec.as_ref()?.volume_claim_templates.as_ref()?;
    let requests = claims
        .first()?
        .spec
        .as_ref()?
        .resources
        .as_ref()?
        .requests
        .as_ref()?;
    requests.get("storage").map(|q| q.0.clone())
}

fn existing_object<K: Resource>(object: &K) -> ExistingObject
where
    K::DynamicType: Default,
{
    let meta = object.meta();
    ExistingObject {
        kind: K::kind(&K::DynamicType::default()).to_string(),
        name: meta.name.clone().unwrap_or_default(),
        component: meta
            .labels
            .as_ref()
            .and_then(|l| l.get(LABEL_COMPONENT).cloned()),
        applied_hash: meta
            .annotations
            .as_ref()
            .and_then(|a| a.get(APPLIED_HASH_ANNOTATION).cloned()),
        replicas: None,
        claim_size: None,
    }
}

/// Zone label value of each node running ChunkServers, when the spec names a zone label.
async fn node_zones<O: EtcdObserver, E: EventSink>(
    ctx: &Context<O, E>,
    pods: &[Pod],
    zone_label: Option<&str>,
) -> Result<BTreeMap<String, String>, Error> {
    let mut zones = BTreeMap::new();
    let Some(label) = zone_label else {
        return Ok(zones);
    };
    let nodes: Api<Node> = Api::all(ctx.client.clone());
    for name in observe::chunkserver_nodes(pods) {
        if let Some(node) = nodes.get_opt(&name).await?
            && let Some(zone) = node.labels().get(label)
        {
            zones.insert(name, zone.clone());
        }
    }
    Ok(zones)
}

fn api_resource(kind: &str) -> ApiResource {
    match kind {
        "StatefulSet" => ApiResource::erase::<StatefulSet>(&()),
        "ConfigMap" => ApiResource::erase::<ConfigMap>(&()),
        "Service" => ApiResource::erase::<Service>(&()),
        "PodDisruptionBudget" => ApiResource::erase::<PodDisruptionBudget>(&()),
        "Job" => ApiResource::erase::<Job>(&()),
        other => unreachable!("the builders make no {other}"),
    }
}

async fn execute<O: EtcdObserver, E: EventSink>(
    ctx: &Context<O, E>,
    namespace: &str,
    actions: &[Action],
) -> Result<(), Error> {
    let apply = PatchParams::apply(FIELD_MANAGER).force();
    for action in actions {
        tracing::info!(namespace, action = %action.describe(), "applying");
        match action {
            Action::Apply { kind, name, object } => {
                let api: Api<DynamicObject> =
                    Api::namespaced_with(ctx.client.clone(), namespace, &api_resource(kind));
                api.patch(name, &apply, &Patch::Apply(object)).await?;
            }
            Action::Delete { kind, name } => {
                let api: Api<DynamicObject> =
                    Api::namespaced_with(ctx.client.clone(), namespace, &api_resource(kind));
                api.delete(name, &DeleteParams::background()).await?;
            }
        }
    }
    Ok(())
}

/// Writes the status only when it changed, then tells the events the change implies.
async fn write_status<O: EtcdObserver, E: EventSink>(
    cluster: &CurveCluster,
    ctx: &Context<O, E>,
    previous: &CurveClusterStatus,
    next: CurveClusterStatus,
    created: &[Component],
) -> Result<(), Error> {
    let events = events::derive(previous, &next, created);
    if events.iter().any(|e| e.reason == "MdsPrimaryChanged") {
        ctx.metrics.primary_changed(
            &cluster.namespace().unwrap_or_default(),
            &cluster.name_any(),
        );
    }
    if &next != previous {
        let api: Api<CurveCluster> =
            Api::namespaced(ctx.client.clone(), &cluster.namespace().unwrap_or_default());
        let previous = serde_json::to_value(previous).unwrap_or_default();
        let patch = crate::util::merge_patch_between(
            &previous,
            &serde_json::to_value(&next).unwrap_or_default(),
        );
        api.patch_status(
            &cluster.name_any(),
            &PatchParams::default(),
            &Patch::Merge(json!({ "status": patch })),
        )
        .await?;
    }
    for event in events {
        ctx.events.publish(cluster, event).await;
    }
    Ok(())
}

async fn report_error<O: EtcdObserver, E: EventSink>(
    cluster: &CurveCluster,
    ctx: &Context<O, E>,
    error: &Error,
) {
    let previous = cluster.status.clone().unwrap_or_default();
    let next = status::with_error(
        &previous,
        &error.to_string(),
        cluster.metadata.generation,
        Timestamp::now(),
    );
    if let Err(write_error) = write_status(cluster, ctx, &previous, next, &[]).await {
        tracing::warn!(%write_error, "cannot record the reconcile error in the status");
    }
}

/// A CurveCluster that does not even parse: say so in its status, touch nothing else.
async fn report_unparsable<O: EtcdObserver, E: EventSink>(
    ctx: &Context<O, E>,
    invalid: &kube::core::error_boundary::InvalidObject,
) -> Result<Requeue, Error> {
    let (Some(name), Some(namespace)) = (
        invalid.metadata.name.clone(),
        invalid.metadata.namespace.clone(),
    ) else {
        return Ok(Requeue::await_change());
    };
    let observation =
        Observation::invalid(vec![format!("spec: cannot be read ({})", invalid.error)]);
    let next = compute_status(
        &CurveClusterStatus::default(),
        &observation,
        invalid.metadata.generation,
        Timestamp::now(),
    );
    let api: Api<CurveCluster> = Api::namespaced(ctx.client.clone(), &namespace);
    api.patch_status(
        &name,
        &PatchParams::default(),
        &Patch::Merge(json!({ "status": next })),
    )
    .await?;
    Ok(Requeue::await_change())
}

fn has_finalizer(cluster: &CurveCluster) -> bool {
    cluster.finalizers().iter().any(|f| f == DATA_FINALIZER)
}

/// The data finalizer is present exactly while the cleanup policy and its confirmation ask
/// for the volumes to be deleted.
async fn ensure_finalizer<O: EtcdObserver, E: EventSink>(
    cluster: &CurveCluster,
    ctx: &Context<O, E>,
    namespace: &str,
    wanted: bool,
) -> Result<(), Error> {
    if wanted == has_finalizer(cluster) {
        return Ok(());
    }
    let mut finalizers: Vec<String> = cluster
        .finalizers()
        .iter()
        .filter(|f| *f != DATA_FINALIZER)
        .cloned()
        .collect();
    if wanted {
        finalizers.push(DATA_FINALIZER.to_string());
    }
    let api: Api<CurveCluster> = Api::namespaced(ctx.client.clone(), namespace);
    let patch = json!({"metadata": {"finalizers": finalizers, "resourceVersion": cluster.resource_version()}});
    api.patch(
        &cluster.name_any(),
        &PatchParams::default(),
        &Patch::Merge(patch),
    )
    .await?;
    Ok(())
}

/// Deletion: owned objects go by owner references; volumes only with the confirmed policy.
async fn finalize<O: EtcdObserver, E: EventSink>(
    cluster: &CurveCluster,
    ctx: &Context<O, E>,
    namespace: &str,
) -> Result<Requeue, Error> {
    ctx.etcd.forget(&ClusterKey {
        namespace: namespace.to_string(),
        name: cluster.name_any(),
    });
    ctx.metrics.remove_cluster(namespace, &cluster.name_any());
    if !has_finalizer(cluster) {
        return Ok(Requeue::await_change());
    }
    if cluster.spec.cleanup.deletes_data() {
        let claims: Api<PersistentVolumeClaim> = Api::namespaced(ctx.client.clone(), namespace);
        let list = ListParams::default().labels(&cluster_selector(&cluster.name_any()));
        let deleted = claims
            .delete_collection(&DeleteParams::default(), &list)
            .await?;
        let count = deleted.left().map(|l| l.items.len()).unwrap_or_default();
        ctx.events
            .publish(
                cluster,
                ClusterEvent {
                    warning: false,
                    reason: "DataDeleted".into(),
                    note: format!("deleted {count} data volume claims as spec.cleanup asked"),
                },
            )
            .await;
    }
    ensure_finalizer(cluster, ctx, namespace, false).await?;
    Ok(Requeue::await_change())
}

/// The label selector of every object the operator manages, in any cluster.
pub fn managed_selector() -> String {
    format!("{LABEL_MANAGED_BY}={MANAGER}")
}

/// Runs the controller until `shutdown` resolves. `namespace` limits it to one namespace;
/// `etcd_changes` yields a cluster whenever its MDS election changes.
pub async fn run<O: EtcdObserver, E: EventSink>(
    ctx: Arc<Context<O, E>>,
    namespace: Option<String>,
    etcd_changes: impl Stream<Item = ClusterKey> + Send + 'static,
    shutdown: impl std::future::Future<Output = ()> + Send + Sync + 'static,
    on_synced: impl FnOnce() + Send + 'static,
    on_result: impl Fn(&Result<(), String>) + Send + Sync + 'static,
) {
    let client = ctx.client.clone();
    let (clusters, sets, maps, services, budgets, pods, jobs) = match &namespace {
        Some(ns) => (
            Api::<DeserializeGuard<CurveCluster>>::namespaced(client.clone(), ns),
            Api::<StatefulSet>::namespaced(client.clone(), ns),
            Api::<ConfigMap>::namespaced(client.clone(), ns),
            Api::<Service>::namespaced(client.clone(), ns),
            Api::<PodDisruptionBudget>::namespaced(client.clone(), ns),
            Api::<Pod>::namespaced(client.clone(), ns),
            Api::<Job>::namespaced(client.clone(), ns),
        ),
        None => (
            Api::all(client.clone()),
            Api::all(client.clone()),
            Api::all(client.clone()),
            Api::all(client.clone()),
            Api::all(client.clone()),
            Api::all(client.clone()),
            Api::all(client.clone()),
        ),
    };
    let managed = watcher::Config::default().labels(&managed_selector());
    let controller = Controller::new(clusters, watcher::Config::default());
    let store = controller.store();
    tokio::spawn(async move {
        // kube's store readiness wakes only its most recent waiter (the controller's runner
        // also waits), so ask again until it answers.
        loop {
            match tokio::time::timeout(Duration::from_millis(500), store.wait_until_ready()).await {
                Ok(Ok(())) => return on_synced(),
                Ok(Err(_)) => return,
                Err(_) => continue,
            }
        }
    });
    controller
        .owns(sets, managed.clone())
        .owns(maps, managed.clone())
        .owns(services, managed.clone())
        .owns(budgets, managed.clone())
        .owns(jobs, managed.clone())
        .watches(pods, managed, |pod: Pod| {
            let instance = pod.labels().get(LABEL_INSTANCE)?.clone();
            Some(ObjectRef::new(&instance).within(&pod.namespace()?))
        })
        .reconcile_on(etcd_changes.map(|key| ObjectRef::new(&key.name).within(&key.namespace)))
        .graceful_shutdown_on(shutdown)
        .run(reconcile, error_policy, ctx)
        .for_each(|result| {
            let outcome = result.map(|_| ()).map_err(|e| e.to_string());
            on_result(&outcome);
            async {}
        })
        .await;
}

#[cfg(test)]
mod tests;
