//! The controller, in three steps per reconcile: read (`snapshot.rs`: the watch caches and
//! etcd), decide (`decide.rs`: one pure function), write (`write.rs`: the actions, then the
//! status). This file is the glue: the entry point with its metrics and backoff, and `run`,
//! which wires the watches, their caches and the controller.

pub mod backup;
pub mod blockers;
pub mod clocks;
pub mod csi;
pub mod decide;
pub mod desired_memo;
pub mod error;
pub mod etcd_space;
pub mod events;
pub mod expansion;
pub mod health;
pub mod health_monitor;
pub mod leaders;
pub mod membership;
pub mod model;
pub mod monitoring;
pub mod observe;
pub mod plan;
pub mod restore;
pub mod retire;
pub mod roll;
pub mod snapshot;
pub mod status;
pub mod synthetic;
pub mod topology;
pub mod write;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::channel::mpsc::{UnboundedReceiver, UnboundedSender};
use futures::{Stream, StreamExt, TryStreamExt};
use k8s_openapi::api::apps::v1::{DaemonSet, Deployment, StatefulSet};
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{ConfigMap, Event, Node, Service, ServiceAccount};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding, Role, RoleBinding};
use k8s_openapi::api::storage::v1::{CSIDriver, StorageClass};
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, ListParams};
use kube::core::{DeserializeGuard, PartialObjectMeta};
use kube::runtime::controller::{Action as Requeue, Controller};
use kube::runtime::reflector::store::Writer;
use kube::runtime::reflector::{ObjectRef, ReflectHandle};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Client, ResourceExt};
use serde::de::DeserializeOwned;
use snapshot::{Cached, Slim};
use tracing::Instrument;

use crate::api::prometheus::{GROUP_VERSION, PodMonitor, PrometheusRule};
use crate::api::{CurveCluster, CurveClusterStatus};
use crate::curve::admin::{CurveAdmin, NoAdmin};
use crate::etcd::{ClusterKey, ElectionChange, EtcdObserver};
use crate::names::{Component, LABEL_INSTANCE, LABEL_MANAGED_BY, MANAGER};
use crate::runtime::metrics::{Metrics, ReconcileResult, ReconcileStep, StepTimes};
use crate::validate::{InvalidCluster, ValidatedCluster, validate};
use decide::{Decision, decide_reusing};
use desired_memo::DesiredMemos;
use error::Error;
use events::EventSink;
use health_monitor::{HealthSource, NoHealth};
use model::action::ObjectKind;
use model::claim::ClaimReading;
use model::event::ClusterEvent;
use model::observation::{Gauges, MonitoringApi, Observation, PrimaryView};
use model::pod::PodReading;
use snapshot::{Caches, Snapshot};
use status::compute_status;

/// What every reconcile shares.
pub struct Context<O: EtcdObserver, E: EventSink> {
    pub client: Client,
    /// The watch caches the read step takes its snapshot from.
    pub caches: Caches,
    pub etcd: O,
    pub events: E,
    pub metrics: Arc<Metrics>,
    /// Curve's health, read beside the controller.
    pub health: Arc<dyn HealthSource>,
    /// Where changes of Curve's topology go (retiring ChunkServers).
    pub curve: Arc<dyn CurveAdmin>,
    /// The operator's own image (`--job-image`), for the backup Jobs' bucket copies.
    pub job_image: Option<String>,
    /// Consecutive failures per cluster, for the retry backoff.
    failures: Mutex<HashMap<(String, String), u32>>,
    /// The StatefulSets with pods missing, and their Events once listed.
    set_events: Mutex<blockers::SetEventsMemo>,
    /// Each cluster's desired objects, reused while their inputs are unchanged.
    desired_memos: Arc<DesiredMemos>,
    set_event_listing: blockers::EventListing,
}

impl<O: EtcdObserver, E: EventSink> Context<O, E> {
    pub fn new(client: Client, caches: Caches, etcd: O, events: E) -> Self {
        Context {
            client,
            caches,
            etcd,
            events,
            metrics: Arc::new(Metrics::new()),
            health: Arc::new(NoHealth),
            curve: Arc::new(NoAdmin),
            job_image: None,
            failures: Mutex::default(),
            set_events: Mutex::default(),
            desired_memos: Arc::default(),
            set_event_listing: blockers::EventListing::default(),
        }
    }

    /// Lists StatefulSets' Events on `listing`'s times (tests: at once).
    pub fn with_set_event_listing(mut self, listing: blockers::EventListing) -> Self {
        self.set_event_listing = listing;
        self
    }

    /// Reads Curve's health from `health`.
    pub fn with_health(mut self, health: Arc<dyn HealthSource>) -> Self {
        self.health = health;
        self
    }

    /// Sends changes of Curve's topology through `curve`.
    pub fn with_curve(mut self, curve: Arc<dyn CurveAdmin>) -> Self {
        self.curve = curve;
        self
    }

    /// Runs the backup Jobs' bucket copies on `image`.
    pub fn with_job_image(mut self, image: Option<String>) -> Self {
        self.job_image = image;
        self
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
/// While an etcd member is added or removed: each step waits for something etcd shows only
/// in its member list (a learner started, caught up, a member gone).
const MEMBERSHIP_RESYNC: Duration = Duration::from_secs(2);

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
    // One short field before every line of this reconcile: `cluster{id=default/demo}:`.
    let id = format!(
        "{}/{}",
        cluster.namespace().unwrap_or_default(),
        cluster.name_any()
    );
    let span = tracing::info_span!("cluster", %id);
    let mut steps = StepTimes::default();
    let result = (reconcile_cluster(cluster, &ctx, &mut steps))
        .instrument(span)
        .await;
    ctx.metrics.reconcile_steps(&steps);
    let outcome = if result.is_ok() {
        ReconcileResult::Success
    } else {
        ReconcileResult::Error
    };
    ctx.metrics.reconcile_finished(outcome, started.elapsed());
    if let Err(error) = &result {
        ctx.metrics.error(error.step());
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
    if cluster.metadata.deletion_timestamp.is_none() {
        let (namespace, name) = key(cluster);
        (ctx.metrics).set_reconcile_failures(&namespace, &name, failures);
    }
    if let Err(error) = &result {
        tracing::warn!(namespace = %cluster.namespace().unwrap_or_default(), name = %cluster.name_any(), %error, failures, "reconcile failed");
        report_error(cluster, &ctx, error).await;
    }
    result
}

/// Backoff of a failed reconcile, per cluster, by [`backoff`].
pub fn error_policy<O: EtcdObserver, E: EventSink>(
    object: Arc<DeserializeGuard<CurveCluster>>,
    error: &Error,
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
    Requeue::requeue(backoff(failures, error.is_refusal()))
}

/// After `failures` consecutive failed reconciles. An object the API server refused cannot
/// succeed until someone changes it (and that change triggers a reconcile): 5 s doubling up
/// to 5 minutes. Anything else — the API server, etcd or Curve unreachable, a conflict, a cache
/// not synced — passes: 1 s doubling up to 30 s, so an operation under way (an etcd member
/// being added, a roll) carries on soon after a network fault ends; nothing else would wake
/// it (a 5-minute backoff after a cut API connection would leave an etcd member's addition
/// waiting long after the API server answered again).
pub fn backoff(failures: u32, refused: bool) -> Duration {
    let doublings = failures.saturating_sub(1).min(8);
    if refused {
        Duration::from_secs((5u64 << doublings).min(300))
    } else {
        Duration::from_secs((1u64 << doublings).min(30))
    }
}

/// One reconcile; `steps` gets the time each step took.
async fn reconcile_cluster<O: EtcdObserver, E: EventSink>(
    cluster: &CurveCluster,
    ctx: &Context<O, E>,
    steps: &mut StepTimes,
) -> Result<Requeue, Error> {
    let namespace = cluster.namespace().unwrap_or_else(|| "default".to_string());
    let previous = cluster.status.clone().unwrap_or_default();
    if cluster.metadata.deletion_timestamp.is_some() {
        return finalize(cluster, ctx, &namespace).await;
    }
    let validating = Instant::now();
    let validated = validate(cluster, &namespace);
    steps.add(ReconcileStep::Decide, validating.elapsed());
    let validated = match validated {
        Ok(validated) => validated,
        Err(invalid) => {
            let report = report_invalid(cluster, ctx, &previous, &invalid);
            return timed(steps, ReconcileStep::Write, report).await;
        }
    };
    let csi_objects = ctx.caches.csi_cluster_scoped(&namespace, &validated.name);
    let finalizers = [
        (write::DATA_FINALIZER, validated.spec.cleanup.deletes_data()),
        (
            write::CSI_FINALIZER,
            validated.spec.csi.enabled || !csi_objects.is_empty(),
        ),
    ];
    let finalizing = write::set_finalizers(&ctx.client, cluster, &finalizers);
    timed(steps, ReconcileStep::Write, finalizing).await?;

    let record = previous.record.as_ref();
    let retire = record.and_then(|r| r.retire.as_ref());
    let joining = membership::joining(record);
    let counters = restore_reads_counters(&previous);
    let reading = read(ctx, &validated, retire, joining, counters);
    let (mut snapshot, look_again) = timed(steps, ReconcileStep::Read, reading).await?;
    snapshot.cluster_created = cluster.metadata.creation_timestamp.as_ref().map(|t| t.0);
    snapshot.csi.restart_nodes = (cluster.annotations())
        .get(crate::api::CSI_RESTART_ANNOTATION)
        .cloned();
    let generation = cluster.metadata.generation;
    let deciding = Instant::now();
    let (memos, name) = (&ctx.desired_memos, &validated.name);
    let mut memo = memos.take(&namespace, name);
    let decision = decide_reusing(
        &mut memo,
        &validated,
        &snapshot,
        &previous,
        generation,
        Timestamp::now(),
    );
    memos.keep(&namespace, name, memo);
    steps.add(ReconcileStep::Decide, deciding.elapsed());
    let writing = async {
        carry_out(ctx, cluster, &validated, &snapshot, &previous, &decision).await?;
        record_metrics(ctx, &validated, &decision);
        publish(ctx, cluster, decision.events).await;
        Ok(requeue_after(
            decision.requeue,
            decision.wake_at,
            look_again,
        ))
    };
    timed(steps, ReconcileStep::Write, writing).await
}

/// Runs (part of) one step of a reconcile and adds how long it took, also when it fails.
async fn timed<T>(steps: &mut StepTimes, step: ReconcileStep, work: impl Future<Output = T>) -> T {
    let started = Instant::now();
    let result = work.await;
    steps.add(step, started.elapsed());
    result
}

/// A spec that does not validate: the status says why, and nothing else is touched.
async fn report_invalid<O: EtcdObserver, E: EventSink>(
    cluster: &CurveCluster,
    ctx: &Context<O, E>,
    previous: &CurveClusterStatus,
    invalid: &InvalidCluster,
) -> Result<Requeue, Error> {
    let errors = invalid.0.iter().map(ToString::to_string).collect();
    let observation = Observation::invalid(errors);
    let generation = cluster.metadata.generation;
    let next = compute_status(previous, &observation, generation, Timestamp::now());
    write::write_status(&ctx.client, cluster, previous, &next).await?;
    publish(ctx, cluster, events::derive(previous, &next, &[])).await;
    // Nothing to retry: the spec must change first, and that is a watch event.
    Ok(Requeue::await_change())
}

/// The write step of a decision: its actions and its status.
async fn carry_out<O: EtcdObserver, E: EventSink>(
    ctx: &Context<O, E>,
    cluster: &CurveCluster,
    validated: &ValidatedCluster,
    snapshot: &Snapshot,
    previous: &CurveClusterStatus,
    decision: &Decision,
) -> Result<(), Error> {
    // The memory first: a restarted operator must know what the actions below handed out.
    if decision.record_first {
        write::write_status(&ctx.client, cluster, previous, &decision.status).await?;
    }
    let etcd = write::EtcdTarget {
        observer: &ctx.etcd,
        cluster: ClusterKey {
            namespace: validated.namespace.clone(),
            name: validated.name.clone(),
        },
        // What the decision records: the member it adds now is no endpoint either.
        endpoints: observe::etcd_endpoints(
            &snapshot.pods,
            validated.spec.etcd.client_port,
            membership::joining(decision.status.record.as_ref()),
        ),
    };
    let curve = write::CurveTarget {
        admin: ctx.curve.as_ref(),
        mds: (snapshot.etcd.as_ref()).and_then(|e| match &e.primary {
            crate::etcd::PrimaryObservation::Elected { address } => Some(address.clone()),
            _ => None,
        }),
    };
    write::execute(&ctx.client, validated, &etcd, &curve, &decision.actions).await?;
    if !decision.record_first {
        write::write_status(&ctx.client, cluster, previous, &decision.status).await?;
    }
    Ok(())
}

/// When to look at the cluster again without an event: as the decision says, or sooner when
/// a scheduled etcd snapshot is due or the read step wants to look (a StatefulSet's pods missing
/// long enough to list its Events).
fn requeue_after(
    requeue: decide::Requeue,
    wake_at: Option<Timestamp>,
    read_again: Option<Duration>,
) -> Requeue {
    let resync = match requeue {
        decide::Requeue::AwaitChange => None,
        // etcd's member list is not watched: look again soon.
        decide::Requeue::Membership => Some(MEMBERSHIP_RESYNC),
        decide::Requeue::Progress => Some(PROGRESS_RESYNC),
        decide::Requeue::Healthy => Some(HEALTHY_RESYNC),
    };
    // A snapshot due: a second late, so it is due then.
    let due = wake_at.map(|at| {
        let wait = at.duration_since(Timestamp::now()).as_secs().max(0) as u64;
        Duration::from_secs(wait + 1)
    });
    match resync.into_iter().chain(due).chain(read_again).min() {
        Some(wait) => Requeue::requeue(wait),
        None => Requeue::await_change(),
    }
}

/// An etcd restore is about to advance Curve's id counters: they are read in this pass.
fn restore_reads_counters(previous: &CurveClusterStatus) -> bool {
    use crate::api::RestorePhase;
    let phase = (previous.etcd.as_ref()).and_then(|e| e.restore.as_ref().map(|r| r.phase));
    matches!(
        phase,
        Some(RestorePhase::StartingEtcd | RestorePhase::AdvancingCounters)
    )
}

/// The read step: the cluster's objects from the watch caches, then etcd once the MDS tier
/// exists (the election is read only where MDS daemons campaign; Curve's id counters only when
/// `counters`).
async fn read<O: EtcdObserver, E: EventSink>(
    ctx: &Context<O, E>,
    cluster: &ValidatedCluster,
    retire: Option<&crate::api::ChunkServerRetire>,
    joining: Option<&str>,
    counters: bool,
) -> Result<(Snapshot, Option<Duration>), Error> {
    ctx.caches.check_synced()?;
    let spec = &cluster.spec;
    let discovery = &ctx.caches.monitoring.discovery;
    if spec.monitoring.enabled {
        discovery.want(&cluster.namespace, &cluster.name);
    } else {
        discovery.unwant(&cluster.namespace, &cluster.name);
    }
    let mut snapshot = ctx.caches.snapshot(
        &cluster.namespace,
        &cluster.name,
        spec.placement.zone_label.as_deref(),
    );
    snapshot.uploader_image = ctx.job_image.clone();
    let existing = decide::existing_objects(&snapshot);
    // Only while a claim asks for less than the spec: whether its class allows expansion.
    let mut classes = expansion::classes_to_read(cluster, &existing, &snapshot.claims);
    classes.extend(blockers::classes_of_pending_claims(&snapshot.claims));
    for name in classes {
        let classes: Api<StorageClass> = Api::all(ctx.client.clone());
        let class = (classes.get_opt(&name).await).map_err(|source| Error::StorageClass {
            name: name.clone(),
            source,
        })?;
        if let Some(class) = class {
            let allows = class.allow_volume_expansion == Some(true);
            snapshot.storage_classes.insert(name, allows);
        }
    }
    let missing = blockers::missing_pods(&snapshot.stateful_sets, &snapshot.pods);
    let key = (cluster.namespace.as_str(), cluster.name.as_str());
    let plan = (ctx.set_events.lock().expect("not poisoned")).plan(
        key,
        &missing,
        Instant::now(),
        ctx.set_event_listing,
    );
    snapshot.set_events = plan.known;
    for set in plan.list {
        let events: Api<Event> = Api::namespaced(ctx.client.clone(), &cluster.namespace);
        let about_set = ListParams::default().fields(&format!(
            "involvedObject.kind=StatefulSet,involvedObject.name={set}"
        ));
        let listed = (events.list(&about_set).await).map_err(|source| Error::SetEvents {
            name: set.clone(),
            source,
        })?;
        (ctx.set_events.lock().expect("not poisoned")).listed(
            key,
            &set,
            &listed.items,
            Instant::now(),
        );
        snapshot.set_events.extend(listed.items);
    }
    read_csi(ctx, cluster, &mut snapshot.csi).await?;
    let key = ClusterKey {
        namespace: cluster.namespace.clone(),
        name: cluster.name.clone(),
    };
    if plan::tier_exists(&existing, Component::Mds) {
        let endpoints = observe::etcd_endpoints(&snapshot.pods, spec.etcd.client_port, joining);
        let etcd = ctx.etcd.observe(&key, &endpoints).await;
        if counters {
            snapshot.etcd_counters = Some(ctx.etcd.read_counters(&key, &endpoints).await);
        }
        let elected = match &etcd.primary {
            crate::etcd::PrimaryObservation::Elected { address } => Some(address.as_str()),
            _ => None,
        };
        let wanted = health::wanted(cluster, &snapshot.pods, elected, retire);
        snapshot.health = ctx.health.want(&key, wanted);
        snapshot.etcd = Some(etcd);
    } else {
        ctx.health.forget(&key);
    }
    Ok((snapshot, plan.look_again))
}

/// What curve-csi's part reads beyond the caches, only when it needs it: the
/// VolumeAttachments while a node plugin pod runs an outdated config, and whether a
/// StorageClass or CSIDriver of its names belongs to someone else while the cluster's own is
/// not in the cache.
async fn read_csi<O: EtcdObserver, E: EventSink>(
    ctx: &Context<O, E>,
    cluster: &ValidatedCluster,
    seen: &mut snapshot::CsiSnapshot,
) -> Result<(), Error> {
    use k8s_openapi::api::storage::v1::VolumeAttachment;
    let csi_spec = &cluster.spec.csi;
    if !csi_spec.enabled {
        return Ok(());
    }
    let failed = |what: &str| {
        let what = what.to_string();
        move |source| Error::ReadCsi { what, source }
    };
    if csi::any_outdated(seen.node_config.as_deref(), &seen.node_pods) {
        let api: Api<VolumeAttachment> = Api::all(ctx.client.clone());
        let list =
            (api.list(&ListParams::default()).await).map_err(failed("the VolumeAttachments"))?;
        seen.attached =
            Some(csi::attached_nodes(list.items.iter().map(|a| {
                (a.spec.attacher.as_str(), a.spec.node_name.as_str())
            })));
    }
    let ours = |kind: ObjectKind, name: &str| {
        (seen.objects.iter()).any(|o| o.kind == kind && o.name == name)
    };
    let class = &csi_spec.storage_class.name;
    if !ours(ObjectKind::StorageClass, class) {
        let api: Api<StorageClass> = Api::all(ctx.client.clone());
        let found = (api.get_opt(class).await).map_err(failed(&format!("StorageClass {class}")))?;
        if let Some(found) = found.filter(|f| !of_cluster(&f.metadata, cluster)) {
            seen.taken.push(format!(
                "StorageClass {class} (provisioner {}{})",
                found.provisioner,
                owner_note(&found.metadata)
            ));
        }
    }
    let driver = crate::names::CSI_DRIVER;
    if !ours(ObjectKind::CsiDriver, driver) {
        let api: Api<CSIDriver> = Api::all(ctx.client.clone());
        let found = (api.get_opt(driver).await).map_err(failed(&format!("CSIDriver {driver}")))?;
        if let Some(found) = found.filter(|f| !of_cluster(&f.metadata, cluster)) {
            seen.taken
                .push(format!("CSIDriver {driver}{}", owner_note(&found.metadata)));
        }
    }
    Ok(())
}

/// Whether a cluster-scoped object carries this cluster's labels (the cache has not seen it
/// yet, or not seen it go).
fn of_cluster(
    meta: &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta,
    cluster: &ValidatedCluster,
) -> bool {
    let labels = meta.labels.clone().unwrap_or_default();
    labels.get(crate::names::LABEL_NAMESPACE) == Some(&cluster.namespace)
        && labels.get(LABEL_INSTANCE) == Some(&cluster.name)
}

/// `, of CurveCluster <ns>/<name>` when another cluster's operator made the object.
fn owner_note(meta: &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta) -> String {
    let labels = meta.labels.clone().unwrap_or_default();
    match (
        labels.get(crate::names::LABEL_NAMESPACE),
        labels.get(LABEL_INSTANCE),
    ) {
        (Some(namespace), Some(name)) => format!(", of CurveCluster {namespace}/{name}"),
        _ => String::new(),
    }
}

fn record_metrics<O: EtcdObserver, E: EventSink>(
    ctx: &Context<O, E>,
    cluster: &ValidatedCluster,
    decision: &Decision,
) {
    let (namespace, name) = (&cluster.namespace, &cluster.name);
    let metrics = &ctx.metrics;
    let observation = &decision.observation;
    for (component, seen) in [
        (Component::Etcd, &observation.etcd),
        (Component::Mds, &observation.mds),
        (Component::ChunkServer, &observation.chunkservers),
    ] {
        metrics.set_ready(namespace, name, component, seen.ready.max(0) as u32);
        metrics.set_desired(namespace, name, component, seen.desired.max(0) as u32);
    }
    let gauges = Gauges::of(cluster, observation);
    if observation.primary != PrimaryView::NotStarted {
        metrics.set_primary(namespace, name, gauges.primary.as_deref(), &gauges.mds_pods);
    }
    if let Some((members, healthy)) = gauges.etcd_members {
        metrics.set_etcd_members(namespace, name, members, healthy);
    }
    if let Some(members) = &observation.etcd_members {
        let alarms = etcd_space::alarms(members);
        let counts: Vec<_> = (alarms.iter())
            .map(|(a, on)| (*a, on.len() as u32))
            .collect();
        metrics.set_etcd_alarms(namespace, name, &counts);
    }
    metrics.set_available(namespace, name, observation.available());
    if let Some(health) = &observation.health {
        metrics.set_health(namespace, name, &health.status);
        if let Some(inventory) = &health.inventory {
            metrics.set_leaders(namespace, name, &inventory.leaders);
        }
    }
    metrics.set_roll(namespace, name, gauges.rolling, gauges.roll_stuck);
    let retire = observation.retire.as_ref();
    let copysets_left = retire.and_then(|r| r.copysets_left).unwrap_or(0);
    metrics.set_retire(namespace, name, retire.is_some(), copysets_left);
    let (down, tolerated) = gauges.failure_domains;
    metrics.set_failure_domains(namespace, name, down, tolerated);
    let etcd = decision.status.etcd.as_ref();
    metrics.set_etcd_backup(namespace, name, etcd.and_then(|e| e.backup.as_ref()));
}

/// Counts every new MDS primary the election watches report, and yields the cluster to
/// reconcile. Counted here, not from reconciles: two changes between reconciles are two.
pub fn count_primary_changes(
    metrics: Arc<Metrics>,
    changes: impl Stream<Item = ElectionChange> + Send + 'static,
) -> impl Stream<Item = ClusterKey> + Send + 'static {
    changes.map(move |change| {
        if change.primary.is_some() {
            metrics.primary_changed(&change.cluster.namespace, &change.cluster.name);
        }
        change.cluster
    })
}

async fn publish<O: EtcdObserver, E: EventSink>(
    ctx: &Context<O, E>,
    cluster: &CurveCluster,
    events: Vec<ClusterEvent>,
) {
    for event in events {
        // What the operator decided, in its log too: each Event is told once per change.
        if event.warning {
            tracing::warn!(reason = %event.reason, "{}", event.note);
        } else {
            tracing::info!(reason = %event.reason, "{}", event.note);
        }
        ctx.events.publish(cluster, event).await;
    }
}

async fn report_error<O: EtcdObserver, E: EventSink>(
    cluster: &CurveCluster,
    ctx: &Context<O, E>,
    error: &Error,
) {
    let previous = cluster.status.clone().unwrap_or_default();
    let (generation, now) = (cluster.metadata.generation, Timestamp::now());
    let next = match error.refusal() {
        Some(refusal) => status::with_refusal(&previous, &refusal.to_string(), generation, now),
        None => status::with_error(&previous, &error.to_string(), generation, now),
    };
    match write::write_status(&ctx.client, cluster, &previous, &next).await {
        Ok(()) => publish(ctx, cluster, events::derive(&previous, &next, &[])).await,
        Err(write_error) => {
            tracing::warn!(%write_error, "cannot record the reconcile error in the status")
        }
    }
}

/// A CurveCluster that does not even parse: say so in its status, every field that cannot be
/// read with its path, and touch nothing else.
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
    // serde stops at the first problem and names no field; the raw object names them all.
    let mut errors: Vec<String> = match write::untyped_clusters(&ctx.client, &namespace)
        .get(&name)
        .await
    {
        Ok(object) => match serde_json::to_value(&object) {
            Ok(value) => crate::validate::parse_errors(&value)
                .iter()
                .map(ToString::to_string)
                .collect(),
            Err(_) => Vec::new(),
        },
        Err(error) => {
            tracing::debug!(%error, "cannot read the raw CurveCluster");
            Vec::new()
        }
    };
    if errors.is_empty() {
        errors.push(format!("spec: cannot be read ({})", invalid.error));
    }
    let observation = Observation::invalid(errors);
    let next = compute_status(
        &CurveClusterStatus::default(),
        &observation,
        invalid.metadata.generation,
        Timestamp::now(),
    );
    write::apply_status(&ctx.client, &namespace, &name, &next).await?;
    Ok(Requeue::await_change())
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
    (ctx.caches.monitoring.discovery).unwant(namespace, &cluster.name_any());
    (ctx.set_events.lock().expect("not poisoned")).forget((namespace, &cluster.name_any()));
    if write::has(cluster, write::CSI_FINALIZER) {
        return finalize_csi(cluster, ctx, namespace).await;
    }
    if !write::has_finalizer(cluster) {
        return Ok(Requeue::await_change());
    }
    if cluster.spec.cleanup.deletes_data() {
        // The StatefulSets go first, and the claims only once they are gone: a StatefulSet
        // waiting for the garbage collector re-creates the claim of every pod it re-creates.
        let sets = ctx
            .caches
            .snapshot(namespace, &cluster.name_any(), None)
            .stateful_sets;
        if !sets.is_empty() {
            let names: Vec<String> = sets.iter().map(|s| s.name_any()).collect();
            tracing::info!(sets = ?names, "deleting the StatefulSets before the data claims");
            write::delete_stateful_sets(&ctx.client, namespace, &names).await?;
            return Ok(Requeue::requeue(MEMBERSHIP_RESYNC));
        }
        let count = write::delete_claims(&ctx.client, namespace, &cluster.name_any()).await?;
        tracing::warn!(
            count,
            "deleted the data volume claims: spec.cleanup asked for it"
        );
        let note = format!("deleted {count} data volume claims as spec.cleanup asked");
        let event = ClusterEvent {
            warning: false,
            reason: "DataDeleted".into(),
            note,
        };
        ctx.events.publish(cluster, event).await;
    }
    write::set_finalizer(&ctx.client, cluster, false).await?;
    Ok(Requeue::await_change())
}

/// Deletion with curve-csi: refused while PersistentVolumes of its StorageClass are bound
/// (unless spec.cleanup confirms deleting data), as the status says; then its cluster-scoped
/// objects are deleted (the namespaced ones go with the cluster, by their owner references).
async fn finalize_csi<O: EtcdObserver, E: EventSink>(
    cluster: &CurveCluster,
    ctx: &Context<O, E>,
    namespace: &str,
) -> Result<Requeue, Error> {
    let class = &cluster.spec.csi.storage_class.name;
    if !cluster.spec.cleanup.deletes_data() {
        let bound = csi::bound_volumes(&write::list_volumes(&ctx.client).await?, class);
        if !bound.is_empty() {
            let previous = cluster.status.clone().unwrap_or_default();
            let (generation, now) = (cluster.metadata.generation, Timestamp::now());
            let next = status::with_deletion_blocked(&previous, &bound, class, generation, now);
            write::write_status(&ctx.client, cluster, &previous, &next).await?;
            let newly = model::conditions::find(
                &previous,
                model::conditions::ConditionType::DeletionBlocked,
            )
            .is_none_or(|c| {
                Some(c)
                    != model::conditions::find(
                        &next,
                        model::conditions::ConditionType::DeletionBlocked,
                    )
            });
            if newly {
                let note = format!(
                    "deletion waits for bound PersistentVolumes of StorageClass {class}: {}",
                    bound.join(", ")
                );
                publish(
                    ctx,
                    cluster,
                    vec![ClusterEvent::warning("DeletionBlocked", note)],
                )
                .await;
            }
            // PersistentVolumes are not watched: look again.
            return Ok(Requeue::requeue(PROGRESS_RESYNC));
        }
    }
    let objects: Vec<(ObjectKind, String)> = (ctx.caches)
        .csi_cluster_scoped(namespace, &cluster.name_any())
        .into_iter()
        .map(|o| (o.kind, o.name))
        .collect();
    write::delete_cluster_scoped_objects(&ctx.client, &objects).await?;
    tracing::info!(objects = ?objects, "deleted curve-csi's cluster-scoped objects");
    write::set_finalizers(&ctx.client, cluster, &[(write::CSI_FINALIZER, false)]).await?;
    // The data finalizer, if any, is handled when the patched object comes back.
    Ok(Requeue::await_change())
}

/// A deleted CurveCluster's series go with it, whatever its cleanup policy: one kept without a
/// finalizer is never reconciled again, and its last gauges would keep the alerts firing. Its
/// health is no longer read. A
/// deletion missed while the watch was down shows as a cluster absent from the relist.
fn forget_deleted(
    metrics: Arc<Metrics>,
    health: Arc<dyn HealthSource>,
    desired_memos: Arc<DesiredMemos>,
) -> impl Fn(&watcher::Event<DeserializeGuard<CurveCluster>>) + Send + 'static {
    let seen = Mutex::new(ClustersSeen::default());
    move |event| {
        let key =
            |c: &DeserializeGuard<CurveCluster>| (c.namespace().unwrap_or_default(), c.name_any());
        let gone = seen.lock().expect("not poisoned").follow(event, key);
        for (namespace, name) in gone {
            tracing::info!(%namespace, %name, "CurveCluster deleted: its metrics are removed");
            metrics.remove_cluster(&namespace, &name);
            desired_memos.forget(&namespace, &name);
            health.forget(&ClusterKey { namespace, name });
        }
    }
}

/// The clusters a watch has shown, to tell which ones a relist no longer has.
#[derive(Default)]
struct ClustersSeen {
    known: std::collections::BTreeSet<(String, String)>,
    /// While a relist is under way: the clusters it has listed so far.
    relisted: Option<std::collections::BTreeSet<(String, String)>>,
}

impl ClustersSeen {
    /// Follows one watch event; returns the clusters that are gone.
    fn follow<K>(
        &mut self,
        event: &watcher::Event<K>,
        key: impl Fn(&K) -> (String, String),
    ) -> Vec<(String, String)> {
        match event {
            watcher::Event::Apply(object) => {
                self.known.insert(key(object));
                Vec::new()
            }
            watcher::Event::Delete(object) => {
                let key = key(object);
                self.known.remove(&key);
                vec![key]
            }
            watcher::Event::Init => {
                self.relisted = Some(Default::default());
                Vec::new()
            }
            watcher::Event::InitApply(object) => {
                self.relisted.get_or_insert_default().insert(key(object));
                Vec::new()
            }
            watcher::Event::InitDone => {
                let listed = self.relisted.take().unwrap_or_default();
                let gone = self.known.difference(&listed).cloned().collect();
                self.known = listed;
                gone
            }
        }
    }
}

/// The label selector of every object the operator manages, in any cluster.
pub fn managed_selector() -> String {
    format!("{LABEL_MANAGED_BY}={MANAGER}")
}

/// Runs one watch into its cache until the process ends. Its errors are retried with
/// kube's default backoff; the controller reads the cache meanwhile.
fn spawn_reflector<K>(
    stream: impl Stream<Item = Result<watcher::Event<K::Watched>, watcher::Error>> + Send + 'static,
    writer: kube::runtime::reflector::store::Writer<K>,
) where
    K: kube::runtime::reflector::Lookup + Cached + Clone + Send + Sync + 'static,
    K::Watched: Send,
    K::DynamicType: Eq + std::hash::Hash + Clone + Default + Send + Sync,
{
    // Read as the cache keeps it on the way in: the whole object is never stored.
    let cached = stream.default_backoff().map_ok(snapshot::cached_event::<K>);
    let reflected = kube::runtime::reflector(writer, cached);
    tokio::spawn(reflected.for_each(|event| async move {
        if let Err(error) = event {
            tracing::debug!(%error, "watch");
        }
    }));
}

/// The API of a namespaced kind in the operator's scope: one namespace, or all.
fn api<K>(client: &Client, namespace: &Option<String>) -> Api<K>
where
    K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope>,
    K::DynamicType: Default,
{
    match namespace {
        Some(ns) => Api::namespaced(client.clone(), ns),
        None => Api::all(client.clone()),
    }
}

/// How often the API server's discovery is asked for the Prometheus Operator's kinds while a
/// cluster wants monitoring and they are not served (sooner once their CRDs are established).
const MONITORING_RECHECK: Duration = Duration::from_secs(60);
/// The least time between two discovery requests, should the CRDs be established a while
/// before discovery serves them.
const MONITORING_RECHECK_MIN: Duration = Duration::from_secs(1);

/// Resolves once the CRDs of PodMonitor and PrometheusRule are both established (a watch of
/// each by name); never, when they cannot be watched, so the periodic check remains.
async fn monitoring_crds_established(client: &Client) {
    use k8s_openapi::Resource as _;
    use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
    use kube::runtime::wait::{await_condition, conditions};
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    let (monitors, rules) = (
        format!("{}.{}", PodMonitor::URL_PATH_SEGMENT, PodMonitor::GROUP),
        format!(
            "{}.{}",
            PrometheusRule::URL_PATH_SEGMENT,
            PrometheusRule::GROUP
        ),
    );
    let established = |name| await_condition(crds.clone(), name, conditions::is_crd_established());
    let both = futures::future::try_join(established(&monitors), established(&rules));
    if both.await.is_err() {
        std::future::pending::<()>().await;
    }
}

/// Asks the API server's discovery for `monitoring.coreos.com/v1` while some cluster wants
/// monitoring (every minute, and as soon as their CRDs are established); once PodMonitor and
/// PrometheusRule are served, starts their watches (which
/// would fail forever before) and reconciles the waiting clusters. Sends nothing while no
/// cluster enables `spec.monitoring`.
async fn discover_monitoring(
    client: Client,
    namespace: Option<String>,
    caches: snapshot::MonitoringCaches,
    writers: snapshot::MonitoringWriters,
    reconcile: UnboundedSender<ClusterKey>,
) {
    let discovery = &caches.discovery;
    loop {
        while discovery.waiting.lock().expect("not poisoned").is_empty() {
            discovery.wake.notified().await;
        }
        let served = ask_discovery(&client).await;
        if served == MonitoringApi::Served {
            watch_monitoring_objects(&client, &namespace, &caches, writers).await;
            *discovery.api.lock().expect("not poisoned") = served;
            tracing::info!(
                "the API server serves {GROUP_VERSION}: monitoring objects are reconciled"
            );
            notify_waiting(discovery, &reconcile);
            discovery.waiting.lock().expect("not poisoned").clear();
            return;
        }
        let changed = *discovery.api.lock().expect("not poisoned") != served;
        *discovery.api.lock().expect("not poisoned") = served;
        if changed {
            notify_waiting(discovery, &reconcile);
        }
        tokio::time::sleep(MONITORING_RECHECK_MIN).await;
        let _ = tokio::time::timeout(
            MONITORING_RECHECK - MONITORING_RECHECK_MIN,
            monitoring_crds_established(&client),
        )
        .await;
    }
}

/// Whether the API server serves PodMonitor and PrometheusRule, as its discovery answers.
async fn ask_discovery(client: &Client) -> MonitoringApi {
    match client.list_api_group_resources(GROUP_VERSION).await {
        Ok(list) => monitoring::served(&list),
        Err(kube::Error::Api(status)) if status.code == 404 => MonitoringApi::Missing {
            message: monitoring::missing_message(&["PodMonitor", "PrometheusRule"]),
        },
        Err(error) => MonitoringApi::Missing {
            message: format!(
                "asking the API server's discovery for {GROUP_VERSION} failed: {error}; asking again every {} s",
                MONITORING_RECHECK.as_secs()
            ),
        },
    }
}

/// Starts the watches of the operator's PodMonitors and PrometheusRules, and waits for their
/// first listing.
async fn watch_monitoring_objects(
    client: &Client,
    namespace: &Option<String>,
    caches: &snapshot::MonitoringCaches,
    writers: snapshot::MonitoringWriters,
) {
    watch_managed(client, namespace, writers.pod_monitors);
    watch_managed(client, namespace, writers.rules);
    snapshot::wait_until_ready(&caches.pod_monitors).await;
    snapshot::wait_until_ready(&caches.rules).await;
}

/// Reconciles every cluster waiting for monitoring.
fn notify_waiting(
    discovery: &snapshot::MonitoringDiscovery,
    reconcile: &UnboundedSender<ClusterKey>,
) {
    for (namespace, name) in discovery.waiting.lock().expect("not poisoned").iter() {
        let key = ClusterKey {
            namespace: namespace.clone(),
            name: name.clone(),
        };
        let _ = reconcile.unbounded_send(key);
    }
}

/// What the controller watches and how many clusters it reconciles at once.
#[derive(Clone, Debug)]
pub struct Scope {
    /// One namespace, or all.
    pub namespace: Option<String>,
    /// At least 1 (0 would mean unbounded to kube's controller).
    pub concurrent_reconciles: u16,
}

/// Watches the objects of one kind that the operator manages into their cache.
fn watch_managed<K>(client: &Client, namespace: &Option<String>, writer: Writer<K>)
where
    K: kube::runtime::reflector::Lookup + Cached + Clone + Send + Sync + 'static,
    K::DynamicType: Eq + std::hash::Hash + Clone + Default + Send + Sync,
    K::Watched: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope> + DeserializeOwned,
    K::Watched: Clone + Send + std::fmt::Debug + 'static,
    <K::Watched as kube::Resource>::DynamicType: Default,
{
    let managed = crate::runtime::requests::watch_config().labels(&managed_selector());
    spawn_reflector(
        watcher(api::<K::Watched>(client, namespace), managed),
        writer,
    );
}

/// Watches the cluster-scoped objects the operator manages (any namespace's clusters: their
/// namespace is a label) into their cache.
fn watch_managed_cluster_scoped<K>(client: &Client, writer: Writer<K>)
where
    K: kube::runtime::reflector::Lookup + Cached + Clone + Send + Sync + 'static,
    K::DynamicType: Eq + std::hash::Hash + Clone + Default + Send + Sync,
    K::Watched: kube::Resource<Scope = k8s_openapi::ClusterResourceScope> + DeserializeOwned,
    K::Watched: Clone + Send + std::fmt::Debug + 'static,
    <K::Watched as kube::Resource>::DynamicType: Default,
{
    let managed = crate::runtime::requests::watch_config().labels(&managed_selector());
    spawn_reflector(
        watcher(Api::<K::Watched>::all(client.clone()), managed),
        writer,
    );
}

/// Starts the watches that fill the caches: the operator's objects by their label, the Nodes'
/// metadata, and the Prometheus Operator's kinds once discovery serves them. Yields the
/// clusters to reconcile when monitoring's discovery has news for them.
fn spawn_watches(
    client: &Client,
    namespace: &Option<String>,
    monitoring: snapshot::MonitoringCaches,
    writers: snapshot::CacheWriters,
) -> UnboundedReceiver<ClusterKey> {
    let (news, clusters) = futures::channel::mpsc::unbounded();
    tokio::spawn(discover_monitoring(
        client.clone(),
        namespace.clone(),
        monitoring,
        writers.monitoring,
        news,
    ));
    watch_managed(client, namespace, writers.stateful_sets);
    watch_managed(client, namespace, writers.config_maps);
    watch_managed(client, namespace, writers.services);
    watch_managed(client, namespace, writers.budgets);
    watch_managed(client, namespace, writers.jobs);
    watch_managed(client, namespace, writers.pods);
    watch_managed(client, namespace, writers.claims);
    // curve-csi's objects (spec.csi), by their metadata.
    watch_managed(client, namespace, writers.service_accounts);
    watch_managed(client, namespace, writers.roles);
    watch_managed(client, namespace, writers.role_bindings);
    watch_managed(client, namespace, writers.daemon_sets);
    watch_managed(client, namespace, writers.deployments);
    watch_managed_cluster_scoped(client, writers.cluster_roles);
    watch_managed_cluster_scoped(client, writers.cluster_role_bindings);
    watch_managed_cluster_scoped(client, writers.csi_drivers);
    watch_managed_cluster_scoped(client, writers.storage_classes);
    // Zone labels and readiness are read: the cache keeps only those (`Slim for Node`).
    spawn_reflector(
        watcher(
            Api::<Node>::all(client.clone()),
            crate::runtime::requests::watch_config(),
        ),
        writers.nodes,
    );
    clusters
}

/// Follows the nodes' clocks (clocks.rs); yields when a node's clock moved, for every cluster
/// to compare its nodes again (rare: a clock that drifts or is set).
fn spawn_clock_watch(client: &Client, clocks: clocks::NodeClocks) -> UnboundedReceiver<()> {
    let (moved, news) = futures::channel::mpsc::unbounded();
    tokio::spawn(clocks::watch_node_clocks(
        client.clone(),
        clocks,
        move || {
            let _ = moved.unbounded_send(());
        },
    ));
    news
}

type ClusterController = Controller<DeserializeGuard<CurveCluster>>;

/// Controller::new, with the clusters slimmed as the other caches are.
fn cluster_controller(
    client: &Client,
    namespace: &Option<String>,
    metrics: Arc<Metrics>,
    health: Arc<dyn HealthSource>,
    desired_memos: Arc<DesiredMemos>,
) -> ClusterController {
    let (clusters, clusters_writer) = kube::runtime::reflector::store();
    Controller::for_stream(
        watcher(
            api::<DeserializeGuard<CurveCluster>>(client, namespace),
            crate::runtime::requests::watch_config(),
        )
        .default_backoff()
        .modify(Slim::slim)
        .inspect_ok(forget_deleted(metrics, health, desired_memos))
        .reflect(clusters_writer)
        .applied_objects(),
        clusters,
    )
}

/// The cluster a cluster-scoped object belongs to, by its instance and namespace labels.
fn cluster_of_labels(
    object: &impl ResourceExt,
) -> Option<ObjectRef<DeserializeGuard<CurveCluster>>> {
    let labels = object.labels();
    let instance = labels.get(LABEL_INSTANCE)?;
    let namespace = labels.get(crate::names::LABEL_NAMESPACE)?;
    Some(ObjectRef::new(instance).within(namespace))
}

/// What reconciles a cluster besides its own changes: the changes of each shared cache,
/// subscribed before the caches' writers go to their watches.
struct Triggers {
    sets: ReflectHandle<StatefulSet>,
    maps: ReflectHandle<PartialObjectMeta<ConfigMap>>,
    services: ReflectHandle<PartialObjectMeta<Service>>,
    budgets: ReflectHandle<PartialObjectMeta<PodDisruptionBudget>>,
    jobs: ReflectHandle<Job>,
    pods: ReflectHandle<PodReading>,
    claims: ReflectHandle<ClaimReading>,
    pod_monitors: ReflectHandle<PartialObjectMeta<PodMonitor>>,
    rules: ReflectHandle<PartialObjectMeta<PrometheusRule>>,
    service_accounts: ReflectHandle<PartialObjectMeta<ServiceAccount>>,
    roles: ReflectHandle<PartialObjectMeta<Role>>,
    role_bindings: ReflectHandle<PartialObjectMeta<RoleBinding>>,
    daemon_sets: ReflectHandle<PartialObjectMeta<DaemonSet>>,
    deployments: ReflectHandle<PartialObjectMeta<Deployment>>,
    cluster_roles: ReflectHandle<PartialObjectMeta<ClusterRole>>,
    cluster_role_bindings: ReflectHandle<PartialObjectMeta<ClusterRoleBinding>>,
    csi_drivers: ReflectHandle<PartialObjectMeta<CSIDriver>>,
    storage_classes: ReflectHandle<PartialObjectMeta<StorageClass>>,
}

impl Triggers {
    fn subscribe(writers: &snapshot::CacheWriters) -> Self {
        let subscribe = "the caches of run() are shared";
        Triggers {
            sets: writers.stateful_sets.subscribe().expect(subscribe),
            maps: writers.config_maps.subscribe().expect(subscribe),
            services: writers.services.subscribe().expect(subscribe),
            budgets: writers.budgets.subscribe().expect(subscribe),
            jobs: writers.jobs.subscribe().expect(subscribe),
            pods: writers.pods.subscribe().expect(subscribe),
            claims: writers.claims.subscribe().expect(subscribe),
            pod_monitors: (writers.monitoring.pod_monitors.subscribe()).expect(subscribe),
            rules: writers.monitoring.rules.subscribe().expect(subscribe),
            service_accounts: writers.service_accounts.subscribe().expect(subscribe),
            roles: writers.roles.subscribe().expect(subscribe),
            role_bindings: writers.role_bindings.subscribe().expect(subscribe),
            daemon_sets: writers.daemon_sets.subscribe().expect(subscribe),
            deployments: writers.deployments.subscribe().expect(subscribe),
            cluster_roles: writers.cluster_roles.subscribe().expect(subscribe),
            cluster_role_bindings: (writers.cluster_role_bindings.subscribe()).expect(subscribe),
            csi_drivers: writers.csi_drivers.subscribe().expect(subscribe),
            storage_classes: writers.storage_classes.subscribe().expect(subscribe),
        }
    }

    /// Owned objects reconcile their owner; pods and claims (owned by the StatefulSets) the
    /// cluster of their instance label.
    fn wire(self, controller: ClusterController) -> ClusterController {
        // Pods are cached as their readings, not as a kind: their changes map by hand.
        let pod_changes = (self.pods).filter_map(|pod| async move {
            let instance = pod.instance.as_deref()?;
            Some(ObjectRef::new(instance).within(&pod.namespace))
        });
        // So are claims.
        let claim_changes = (self.claims).filter_map(|claim| async move {
            let instance = claim.instance.as_deref()?;
            Some(ObjectRef::new(instance).within(&claim.namespace))
        });
        controller
            .reconcile_on(pod_changes)
            .reconcile_on(claim_changes)
            .owns_shared_stream(self.sets)
            .owns_shared_stream(self.maps)
            .owns_shared_stream(self.services)
            .owns_shared_stream(self.budgets)
            .owns_shared_stream(self.jobs)
            .owns_shared_stream(self.pod_monitors)
            .owns_shared_stream(self.rules)
            .owns_shared_stream(self.service_accounts)
            .owns_shared_stream(self.roles)
            .owns_shared_stream(self.role_bindings)
            .owns_shared_stream(self.daemon_sets)
            .owns_shared_stream(self.deployments)
            // Cluster-scoped: no owner, the cluster by its instance and namespace labels.
            .watches_shared_stream(self.cluster_roles, |o| cluster_of_labels(&*o))
            .watches_shared_stream(self.cluster_role_bindings, |o| cluster_of_labels(&*o))
            .watches_shared_stream(self.csi_drivers, |o| cluster_of_labels(&*o))
            .watches_shared_stream(self.storage_classes, |o| cluster_of_labels(&*o))
    }
}

/// Runs the controller until `shutdown` resolves. `scope` says what it watches;
/// `etcd_changes` yields a cluster whenever its MDS election changes. The context's caches
/// must come from [`Caches::shared`]: their watches are started here.
pub async fn run<O: EtcdObserver, E: EventSink>(
    ctx: Arc<Context<O, E>>,
    writers: snapshot::CacheWriters,
    scope: Scope,
    etcd_changes: impl Stream<Item = ClusterKey> + Send + 'static,
    shutdown: impl std::future::Future<Output = ()> + Send + Sync + 'static,
    on_synced: impl FnOnce() + Send + 'static,
    on_result: impl Fn(&Result<(), String>) + Send + Sync + 'static,
) {
    let (client, namespace) = (ctx.client.clone(), scope.namespace);
    let triggers = Triggers::subscribe(&writers);
    let monitoring_news =
        spawn_watches(&client, &namespace, ctx.caches.monitoring.clone(), writers);
    let clock_news = spawn_clock_watch(&client, ctx.caches.clocks.clone());
    let memos = ctx.desired_memos.clone();
    let controller = cluster_controller(
        &client,
        &namespace,
        ctx.metrics.clone(),
        ctx.health.clone(),
        memos,
    );
    // The controller starts once every cache has its first listing, so no decision is taken
    // on a cache that has not seen the cluster's objects yet. Its own CurveCluster store fills
    // once it runs: readiness waits for that too.
    ctx.caches.wait_until_synced().await;
    let store = controller.store();
    tokio::spawn(async move {
        snapshot::wait_until_ready(&store).await;
        on_synced();
    });
    let reconcile_on = futures::stream::select(etcd_changes, monitoring_news)
        .map(|key| ObjectRef::new(&key.name).within(&key.namespace));
    let config = kube::runtime::controller::Config::default();
    (triggers.wire(controller))
        .reconcile_on(reconcile_on)
        .reconcile_all_on(clock_news)
        .with_config(config.concurrency(scope.concurrent_reconciles))
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
pub(crate) mod fixtures;
#[cfg(test)]
mod tests;
