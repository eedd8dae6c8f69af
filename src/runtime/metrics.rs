//! Prometheus metrics of the operator, served on `/metrics` (see `http.rs`).

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;
use std::time::Duration;

use prometheus_client::encoding::{EncodeLabelSet, EncodeLabelValue, LabelValueEncoder};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::{Registry, Unit};

use crate::api::{HealthStatus, HealthVerdict};
use crate::etcd::EtcdAlarm;
use crate::names::Component;

/// How a reconcile ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ReconcileResult {
    Success,
    Error,
}

impl ReconcileResult {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Success => "success",
            Self::Error => "error",
        }
    }
}

/// The step a failed reconcile failed at: the `step` label of `curve_operator_errors_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorStep {
    /// A watch cache not synced, a StorageClass not read.
    Read,
    Apply,
    Delete,
    Status,
    Secret,
    /// Drawing the root password.
    Random,
    Finalizer,
    /// A member list change etcd refused.
    EtcdMembership,
    /// Deleting data volume claims.
    Cleanup,
    /// A change of Curve's topology the MDS refused or did not answer.
    CurveTopology,
}

impl ErrorStep {
    pub const ALL: [ErrorStep; 10] = [
        Self::Read,
        Self::Apply,
        Self::Delete,
        Self::Status,
        Self::Secret,
        Self::Random,
        Self::Finalizer,
        Self::EtcdMembership,
        Self::Cleanup,
        Self::CurveTopology,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Read => "read",
            Self::Apply => "apply",
            Self::Delete => "delete",
            Self::Status => "status",
            Self::Secret => "secret",
            Self::Random => "random",
            Self::Finalizer => "finalizer",
            Self::EtcdMembership => "etcd_membership",
            Self::Cleanup => "cleanup",
            Self::CurveTopology => "curve_topology",
        }
    }
}

/// Label values are the lowercase words of `as_str`, not the Rust variant names.
macro_rules! label_value_from_as_str {
    ($($t:ty),*) => {$(
        impl EncodeLabelValue for $t {
            fn encode(&self, encoder: &mut LabelValueEncoder) -> Result<(), std::fmt::Error> {
                EncodeLabelValue::encode(&self.as_str(), encoder)
            }
        }
    )*};
}
label_value_from_as_str!(ReconcileResult, Component, ErrorStep, ReconcileStep);

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct ResultLabels {
    result: ReconcileResult,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct StepLabels {
    step: ErrorStep,
}

/// The three steps of a reconcile (docs/design/reconcile.md), timed apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ReconcileStep {
    /// The watch caches, StorageClasses and Events read on demand, etcd.
    Read,
    /// Validation and the pure decision.
    Decide,
    /// The requests: finalizer, actions, status, Events.
    Write,
}

impl ReconcileStep {
    pub const ALL: [ReconcileStep; 3] = [Self::Read, Self::Decide, Self::Write];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Read => "read",
            Self::Decide => "decide",
            Self::Write => "write",
        }
    }
}

/// The time each step of one reconcile took, summed over its parts (validation and the
/// decision are both deciding; the finalizer and the actions both writing): recorded once per
/// reconcile, so the histogram's quantiles are per reconcile.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct StepTimes([Option<Duration>; 3]);

impl StepTimes {
    pub fn add(&mut self, step: ReconcileStep, took: Duration) {
        let slot = &mut self.0[step as usize];
        *slot = Some(slot.unwrap_or_default() + took);
    }

    /// The steps that ran, with their time.
    pub fn ran(&self) -> impl Iterator<Item = (ReconcileStep, Duration)> + '_ {
        (ReconcileStep::ALL.into_iter()).filter_map(|step| Some((step, self.0[step as usize]?)))
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct ReconcileStepLabels {
    step: ReconcileStep,
}

/// A family of histograms with the same buckets.
type Histograms<L> = Family<L, Histogram, fn() -> Histogram>;

/// 0.5 ms .. ~12 s, each bucket √2 times the one before: fine enough for a p50 and a p99 read
/// from the buckets within about 20 %.
fn step_buckets() -> Histogram {
    Histogram::new(exponential_buckets(0.0005, std::f64::consts::SQRT_2, 30))
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct RequestLabels {
    verb: String,
    resource: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct ClusterLabels {
    namespace: String,
    name: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct MemberLabels {
    namespace: String,
    name: String,
    component: Component,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct PodLabels {
    namespace: String,
    name: String,
    pod: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct StateLabels {
    namespace: String,
    name: String,
    state: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct PoolLabels {
    namespace: String,
    name: String,
    pool: String,
    kind: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct ChunkServerLabels {
    namespace: String,
    name: String,
    /// `ip:port`.
    chunkserver: String,
}

/// Copysets by health (`state`).
const COPYSET_STATES: [&str; 2] = ["healthy", "unhealthy"];
/// ChunkServers by the MDS's online state.
const ONLINE_STATES: [&str; 3] = ["online", "unstable", "offline"];
/// ChunkServers by the MDS's status.
const CHUNKSERVER_STATUSES: [&str; 3] = ["readwrite", "pendding", "retired"];
/// Curve's health verdict.
const VERDICTS: [&str; 3] = ["healthy", "unhealthy", "unknown"];
/// Figures of a logical pool's space (`kind`).
const POOL_BYTES: [&str; 3] = ["capacity", "used", "allocated"];

/// The operator's metrics; share one instance (e.g. in an `Arc`) between reconciler and server.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    reconciles: Family<ResultLabels, Counter>,
    reconcile_duration: Histogram,
    reconcile_step_duration: Histograms<ReconcileStepLabels>,
    health_read_duration: Histogram,
    errors: Family<StepLabels, Counter>,
    kube_requests: Family<RequestLabels, Counter>,
    primary_changes: Family<ClusterLabels, Counter>,
    ready_members: Family<MemberLabels, Gauge>,
    desired_members: Family<MemberLabels, Gauge>,
    mds_primary: Family<PodLabels, Gauge>,
    etcd_members: Family<ClusterLabels, Gauge>,
    etcd_healthy_members: Family<ClusterLabels, Gauge>,
    etcd_alarms: Family<StateLabels, Gauge>,
    available: Family<ClusterLabels, Gauge>,
    reconcile_failures: Family<ClusterLabels, Gauge>,
    rolling: Family<ClusterLabels, Gauge>,
    roll_stuck: Family<ClusterLabels, Gauge>,
    retiring: Family<ClusterLabels, Gauge>,
    retire_copysets_left: Family<ClusterLabels, Gauge>,
    failure_domains_down: Family<ClusterLabels, Gauge>,
    failure_domains_tolerated: Family<ClusterLabels, Gauge>,
    curve_health: Family<StateLabels, Gauge>,
    copysets: Family<StateLabels, Gauge>,
    chunkservers_online: Family<StateLabels, Gauge>,
    chunkservers_status: Family<StateLabels, Gauge>,
    logical_pool_bytes: Family<PoolLabels, Gauge>,
    chunkserver_leaders: Family<ChunkServerLabels, Gauge>,
    etcd_backup: EtcdBackupGauges,
    /// The ChunkServers each cluster's `chunkserver_leaders` series were last set for.
    leader_chunkservers: Mutex<HashMap<ClusterLabels, Vec<String>>>,
    /// The MDS pods each cluster's `mds_primary` series were last set for.
    mds_pods: Mutex<HashMap<ClusterLabels, Vec<String>>>,
    /// The logical pools each cluster's `logical_pool_bytes` series were last set for.
    pools: Mutex<HashMap<ClusterLabels, Vec<String>>>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// All metric names start with this prefix.
    pub const PREFIX: &'static str = "curve_operator";

    pub fn new() -> Self {
        let mut registry = Registry::with_prefix(Self::PREFIX);
        let reconciles = Family::default();
        // 5 ms .. ~20 s: a no-op reconcile is milliseconds, a bring-up step a few seconds.
        let reconcile_duration = Histogram::new(exponential_buckets(0.005, 2.0, 13));
        let reconcile_step_duration: Histograms<ReconcileStepLabels> =
            Family::new_with_constructor(step_buckets);
        // 10 ms .. ~80 s: one reading of a cluster is a request per MDS and per ChunkServer.
        let health_read_duration = Histogram::new(exponential_buckets(0.01, 2.0, 14));
        let errors: Family<StepLabels, Counter> = Family::default();
        // Every step at 0 from the start: a healthy installation shows "0 failed" (its
        // dashboard panel and `rate()` have a series), not no data.
        for step in ErrorStep::ALL {
            let _ = errors.get_or_create(&StepLabels { step });
        }
        let kube_requests = Family::default();
        registry.register(
            "reconciles",
            "Reconciles finished, by result",
            reconciles.clone(),
        );
        registry.register_with_unit(
            "reconcile_duration",
            "Time one reconcile took",
            Unit::Seconds,
            reconcile_duration.clone(),
        );
        registry.register_with_unit(
            "reconcile_step_duration",
            "Time each step of a reconcile took, one observation per reconcile and step that ran: read (the watch caches, StorageClasses and Events read on demand, etcd), decide (validation and the pure decision), write (the requests: finalizer, actions, status, Events); a failed reconcile has the steps up to the one that failed",
            Unit::Seconds,
            reconcile_step_duration.clone(),
        );
        registry.register_with_unit(
            "health_read_duration",
            "Time one full reading of a cluster's Curve health took: every MDS, the elected MDS's topology, every ChunkServer's /raft_stat at the monitor's concurrency, and the verdict",
            Unit::Seconds,
            health_read_duration.clone(),
        );
        registry.register(
            "errors",
            "Failed reconciles, by the step that failed: read (a watch cache not synced, a StorageClass not read), apply, delete, status, secret, random (drawing the root password), finalizer, etcd_membership (a member list change etcd refused), cleanup (deleting data volume claims), curve_topology (a change of Curve's topology the MDS refused or did not answer)",
            errors.clone(),
        );
        registry.register(
            "kube_requests",
            "Kubernetes API requests sent, by RBAC verb (get, list, watch, create, update, patch, apply, delete, deletecollection) and resource (plural, /subresource appended)",
            kube_requests.clone(),
        );
        let primary_changes = family(
            &mut registry,
            "mds_primary_changes",
            "Changes of the elected MDS primary, per CurveCluster: every new primary the election watch sees, not the one read first",
        );
        let ready_members = family(
            &mut registry,
            "ready_members",
            "Ready pods per CurveCluster and component",
        );
        let desired_members = family(
            &mut registry,
            "desired_members",
            "Pods the spec asks for, per CurveCluster and component",
        );
        let mds_primary = family(
            &mut registry,
            "mds_primary",
            "1 for the MDS pod the election names primary, 0 for every other MDS pod of the CurveCluster",
        );
        let etcd_members = family(
            &mut registry,
            "etcd_members",
            "Voting members in the etcd member list (learners not counted), once the MDS tier exists",
        );
        let etcd_healthy_members = family(
            &mut registry,
            "etcd_healthy_members",
            "Voting etcd members that answer, follow a raft leader and report no alarm",
        );
        let etcd_alarms = family(
            &mut registry,
            "etcd_alarms",
            "etcd members with an alarm raised, by alarm (state: nospace, corrupt); while either is above 0 etcd refuses writes",
        );
        let available = family(
            &mut registry,
            "cluster_available",
            "1 while the CurveCluster's Available condition is True",
        );
        let reconcile_failures = family(
            &mut registry,
            "cluster_reconcile_failures",
            "Consecutive failed reconciles of the CurveCluster (0 after a success)",
        );
        let rolling = family(
            &mut registry,
            "rolling",
            "1 while a rolling change of the CurveCluster's pods is under way",
        );
        let roll_stuck = family(
            &mut registry,
            "roll_stuck",
            "1 while a rolling change cannot go on by itself (Progressing False, RolloutStuck)",
        );
        let retiring = family(
            &mut registry,
            "chunkserver_retiring",
            "1 while a ChunkServer leaves Curve (a scale-in, a removed disk slot or a replaced disk), 0 otherwise",
        );
        let retire_copysets_left = family(
            &mut registry,
            "chunkserver_retire_copysets_left",
            "Copysets the MDS still places on the ChunkServer leaving Curve (0 when none leaves): falls to 0 as they are moved",
        );
        let failure_domains_down = family(
            &mut registry,
            "chunkserver_failure_domains_down",
            "ChunkServers not ready (each is a failure domain: Curve puts each copy of a copyset on a different ChunkServer)",
        );
        let failure_domains_tolerated = family(
            &mut registry,
            "chunkserver_failure_domains_tolerated",
            "ChunkServers that may be down while every copyset keeps a raft majority: (logicalPool.replicas - 1) / 2",
        );
        let curve_health = family(
            &mut registry,
            "curve_health",
            "1 for Curve's health verdict as the operator last read it (state healthy, unhealthy or unknown), 0 for the others; absent until the MDS tier exists",
        );
        let copysets = family(
            &mut registry,
            "copysets",
            "Copysets by health (state healthy or unhealthy), read from the ChunkServers by the rules of curve_ops_tool",
        );
        let chunkservers_online = family(
            &mut registry,
            "chunkservers_online_state",
            "ChunkServers by the MDS's online state (online, unstable, offline)",
        );
        let chunkservers_status = family(
            &mut registry,
            "chunkservers_status",
            "ChunkServers by the MDS's status (readwrite, pendding, retired)",
        );
        let logical_pool_bytes = family(
            &mut registry,
            "logical_pool_bytes",
            "Space of each logical pool from the MDS's pool metrics: capacity, used, allocated",
        );
        let chunkserver_leaders = family(
            &mut registry,
            "chunkserver_leaders",
            "Raft leaders of copysets each ChunkServer (ip:port) holds, from its /raft_stat: the leader spread the operator's rapid leader schedule evens out",
        );
        let etcd_backup = EtcdBackupGauges::register(&mut registry);
        Self {
            etcd_backup,
            registry,
            reconciles,
            reconcile_duration,
            reconcile_step_duration,
            health_read_duration,
            errors,
            kube_requests,
            primary_changes,
            ready_members,
            desired_members,
            mds_primary,
            etcd_members,
            etcd_healthy_members,
            etcd_alarms,
            available,
            reconcile_failures,
            rolling,
            roll_stuck,
            retiring,
            retire_copysets_left,
            failure_domains_down,
            failure_domains_tolerated,
            curve_health,
            copysets,
            chunkservers_online,
            chunkservers_status,
            logical_pool_bytes,
            chunkserver_leaders,
            leader_chunkservers: Mutex::default(),
            mds_pods: Mutex::default(),
            pools: Mutex::default(),
        }
    }

    fn state(namespace: &str, name: &str, state: &str) -> StateLabels {
        StateLabels {
            namespace: namespace.to_owned(),
            name: name.to_owned(),
            state: state.to_owned(),
        }
    }

    /// Curve's health as the status shows it: the verdict, copysets, ChunkServers and pools.
    /// A figure that could not be read has no series.
    pub fn set_health(&self, namespace: &str, name: &str, health: &HealthStatus) {
        let verdict = match health.verdict {
            HealthVerdict::Healthy => "healthy",
            HealthVerdict::Unhealthy => "unhealthy",
            HealthVerdict::Unknown => "unknown",
        };
        for state in VERDICTS {
            let value = i64::from(state == verdict);
            (self
                .curve_health
                .get_or_create(&Self::state(namespace, name, state)))
            .set(value);
        }
        // A figure that could not be read this time loses its series: no stale count.
        let figures = |family: &Family<StateLabels, Gauge>,
                       states: &[&str],
                       values: Option<Vec<(&str, i64)>>| match values {
            Some(values) => {
                for (state, value) in values {
                    family
                        .get_or_create(&Self::state(namespace, name, state))
                        .set(value);
                }
            }
            None => {
                for state in states {
                    family.remove(&Self::state(namespace, name, state));
                }
            }
        };
        let copysets = health.copysets.as_ref();
        figures(
            &self.copysets,
            &COPYSET_STATES,
            copysets.map(|c| vec![("healthy", c.healthy), ("unhealthy", c.unhealthy)]),
        );
        let chunkservers = health.chunkservers.as_ref();
        figures(
            &self.chunkservers_online,
            &ONLINE_STATES,
            chunkservers.map(|c| {
                vec![
                    ("online", c.online.into()),
                    ("unstable", c.unstable.into()),
                    ("offline", c.offline.into()),
                ]
            }),
        );
        figures(
            &self.chunkservers_status,
            &CHUNKSERVER_STATUSES,
            chunkservers.map(|c| {
                vec![
                    ("readwrite", c.readwrite.into()),
                    ("pendding", c.pendding.into()),
                    ("retired", c.retired.into()),
                ]
            }),
        );
        let pools: Vec<String> = health
            .logical_pools
            .iter()
            .map(|p| p.name.clone())
            .collect();
        self.forget_pools(namespace, name, &pools);
        for pool in &health.logical_pools {
            let figures = [
                ("capacity", pool.capacity_bytes),
                ("used", pool.used_bytes),
                ("allocated", pool.allocated_bytes),
            ];
            for (kind, value) in figures {
                let labels = pool_labels(namespace, name, &pool.name, kind);
                match value {
                    Some(value) => {
                        self.logical_pool_bytes.get_or_create(&labels).set(value);
                    }
                    None => {
                        self.logical_pool_bytes.remove(&labels);
                    }
                }
            }
        }
    }

    /// Drops the pool series of pools no longer in `keep`.
    fn forget_pools(&self, namespace: &str, name: &str, keep: &[String]) {
        let mut known = self.pools.lock().expect("not poisoned");
        let before = known.insert(cluster(namespace, name), keep.to_vec());
        for gone in before.iter().flatten().filter(|p| !keep.contains(p)) {
            for kind in POOL_BYTES {
                self.logical_pool_bytes
                    .remove(&pool_labels(namespace, name, gone, kind));
            }
        }
    }

    /// The leaders each ChunkServer holds; series of ChunkServers no longer read are dropped.
    pub fn set_leaders(&self, namespace: &str, name: &str, leaders: &BTreeMap<String, u32>) {
        let key = cluster(namespace, name);
        let labels = |chunkserver: &str| ChunkServerLabels {
            namespace: namespace.to_string(),
            name: name.to_string(),
            chunkserver: chunkserver.to_string(),
        };
        let now: Vec<String> = leaders.keys().cloned().collect();
        let before = self
            .leader_chunkservers
            .lock()
            .expect("not poisoned")
            .insert(key, now.clone());
        for gone in before.iter().flatten().filter(|c| !now.contains(c)) {
            self.chunkserver_leaders.remove(&labels(gone));
        }
        for (chunkserver, count) in leaders {
            (self.chunkserver_leaders.get_or_create(&labels(chunkserver))).set(i64::from(*count));
        }
    }

    /// Drops the health series of a cluster.
    fn remove_health(&self, namespace: &str, name: &str) {
        self.set_leaders(namespace, name, &BTreeMap::new());
        self.leader_chunkservers
            .lock()
            .expect("not poisoned")
            .remove(&cluster(namespace, name));
        for (family, states) in [
            (&self.curve_health, &VERDICTS[..]),
            (&self.copysets, &COPYSET_STATES[..]),
            (&self.chunkservers_online, &ONLINE_STATES[..]),
            (&self.chunkservers_status, &CHUNKSERVER_STATUSES[..]),
        ] {
            for state in states {
                family.remove(&Self::state(namespace, name, state));
            }
        }
        self.forget_pools(namespace, name, &[]);
        self.pools
            .lock()
            .expect("not poisoned")
            .remove(&cluster(namespace, name));
    }

    pub fn reconcile_finished(&self, result: ReconcileResult, duration: Duration) {
        self.reconciles
            .get_or_create(&ResultLabels { result })
            .inc();
        self.reconcile_duration.observe(duration.as_secs_f64());
    }

    /// The time each step of one reconcile took (the steps that ran).
    pub fn reconcile_steps(&self, times: &StepTimes) {
        for (step, took) in times.ran() {
            (self.reconcile_step_duration)
                .get_or_create(&ReconcileStepLabels { step })
                .observe(took.as_secs_f64());
        }
    }

    /// The time one full reading of a cluster's Curve health took.
    pub fn health_read(&self, duration: Duration) {
        self.health_read_duration.observe(duration.as_secs_f64());
    }

    /// Counts a failed reconcile by the step that failed.
    pub fn error(&self, step: ErrorStep) {
        self.errors.get_or_create(&StepLabels { step }).inc();
    }

    /// Counts one Kubernetes API request.
    pub fn kube_request(&self, verb: &str, resource: &str) {
        self.kube_requests
            .get_or_create(&RequestLabels {
                verb: verb.to_owned(),
                resource: resource.to_owned(),
            })
            .inc();
    }

    pub fn primary_changed(&self, namespace: &str, name: &str) {
        self.primary_changes
            .get_or_create(&cluster(namespace, name))
            .inc();
    }

    fn member(namespace: &str, name: &str, component: Component) -> MemberLabels {
        MemberLabels {
            namespace: namespace.to_owned(),
            name: name.to_owned(),
            component,
        }
    }

    pub fn set_ready(&self, namespace: &str, name: &str, component: Component, ready: u32) {
        (self
            .ready_members
            .get_or_create(&Self::member(namespace, name, component)))
        .set(i64::from(ready));
    }

    pub fn set_desired(&self, namespace: &str, name: &str, component: Component, desired: u32) {
        (self
            .desired_members
            .get_or_create(&Self::member(namespace, name, component)))
        .set(i64::from(desired));
    }

    /// One series per MDS pod: 1 for `primary`, 0 for the others. Series of MDS pods named
    /// last time but not now are dropped.
    pub fn set_primary(&self, namespace: &str, name: &str, primary: Option<&str>, pods: &[String]) {
        let labels = |pod: &str| PodLabels {
            namespace: namespace.to_owned(),
            name: name.to_owned(),
            pod: pod.to_owned(),
        };
        let mut known = self.mds_pods.lock().expect("not poisoned");
        let before = known.insert(cluster(namespace, name), pods.to_vec());
        for gone in before.iter().flatten().filter(|p| !pods.contains(p)) {
            self.mds_primary.remove(&labels(gone));
        }
        for pod in pods {
            let value = i64::from(primary == Some(pod.as_str()));
            self.mds_primary.get_or_create(&labels(pod)).set(value);
        }
    }

    /// The voting members of etcd's member list and how many of them are healthy.
    pub fn set_etcd_members(&self, namespace: &str, name: &str, members: u32, healthy: u32) {
        let key = cluster(namespace, name);
        self.etcd_members
            .get_or_create(&key)
            .set(i64::from(members));
        (self.etcd_healthy_members.get_or_create(&key)).set(i64::from(healthy));
    }

    /// Members raising each alarm (every alarm etcd knows gets a series, 0 when none).
    pub fn set_etcd_alarms(&self, namespace: &str, name: &str, alarms: &[(EtcdAlarm, u32)]) {
        for alarm in ETCD_ALARMS {
            let members = (alarms.iter())
                .find(|(a, _)| *a == alarm)
                .map_or(0, |(_, n)| *n);
            (self.etcd_alarms)
                .get_or_create(&Self::state(namespace, name, &alarm_state(alarm)))
                .set(i64::from(members));
        }
    }

    pub fn set_available(&self, namespace: &str, name: &str, available: bool) {
        (self.available.get_or_create(&cluster(namespace, name))).set(i64::from(available));
    }

    pub fn set_reconcile_failures(&self, namespace: &str, name: &str, failures: u32) {
        (self
            .reconcile_failures
            .get_or_create(&cluster(namespace, name)))
        .set(i64::from(failures));
    }

    pub fn set_roll(&self, namespace: &str, name: &str, rolling: bool, stuck: bool) {
        let key = cluster(namespace, name);
        self.rolling.get_or_create(&key).set(i64::from(rolling));
        self.roll_stuck.get_or_create(&key).set(i64::from(stuck));
    }

    /// A ChunkServer leaving Curve, and the copysets still on it.
    pub fn set_retire(&self, namespace: &str, name: &str, retiring: bool, copysets_left: u32) {
        let key = cluster(namespace, name);
        self.retiring.get_or_create(&key).set(i64::from(retiring));
        (self.retire_copysets_left.get_or_create(&key)).set(i64::from(copysets_left));
    }

    pub fn set_failure_domains(&self, namespace: &str, name: &str, down: u32, tolerated: u32) {
        let key = cluster(namespace, name);
        (self.failure_domains_down.get_or_create(&key)).set(i64::from(down));
        (self.failure_domains_tolerated.get_or_create(&key)).set(i64::from(tolerated));
    }

    /// `status.etcd.backup` as gauges; every series absent while what it tells is.
    pub fn set_etcd_backup(
        &self,
        namespace: &str,
        name: &str,
        backup: Option<&crate::api::EtcdBackupStatus>,
    ) {
        let key = cluster(namespace, name);
        let gauges = &self.etcd_backup;
        let seconds = |t: &k8s_openapi::apimachinery::pkg::apis::meta::v1::Time| t.0.as_second();
        let success = backup.and_then(|b| b.last_success.as_ref());
        let values = [
            (
                &gauges.enabled,
                backup.and_then(|b| b.enabled_at.as_ref()).map(seconds),
            ),
            (&gauges.last_success, success.map(|s| seconds(&s.time))),
            (&gauges.last_size, success.map(|s| s.size)),
            (
                &gauges.last_failure,
                backup
                    .and_then(|b| b.last_failure.as_ref())
                    .map(|f| seconds(&f.time)),
            ),
        ];
        for (family, value) in values {
            match value {
                Some(value) => {
                    family.get_or_create(&key).set(value);
                }
                None => {
                    family.remove(&key);
                }
            }
        }
    }

    /// Drops the per-cluster series of a deleted CurveCluster.
    pub fn remove_cluster(&self, namespace: &str, name: &str) {
        let key = cluster(namespace, name);
        self.set_primary(namespace, name, None, &[]);
        self.mds_pods.lock().expect("not poisoned").remove(&key);
        self.set_etcd_backup(namespace, name, None);
        for family in [
            &self.etcd_members,
            &self.etcd_healthy_members,
            &self.available,
            &self.reconcile_failures,
            &self.rolling,
            &self.roll_stuck,
            &self.retiring,
            &self.retire_copysets_left,
            &self.failure_domains_down,
            &self.failure_domains_tolerated,
        ] {
            family.remove(&key);
        }
        self.primary_changes.remove(&key);
        for alarm in ETCD_ALARMS {
            (self.etcd_alarms).remove(&Self::state(namespace, name, &alarm_state(alarm)));
        }
        self.remove_health(namespace, name);
        for component in Component::TIERS {
            self.ready_members
                .remove(&Self::member(namespace, name, component));
            self.desired_members
                .remove(&Self::member(namespace, name, component));
        }
    }

    /// The OpenMetrics text exposition of every metric.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &self.registry)
            .expect("writing to a String cannot fail");
        out
    }
}

/// The gauges of `spec.etcd.backup` (issue 33).
#[derive(Debug)]
struct EtcdBackupGauges {
    enabled: Family<ClusterLabels, Gauge>,
    last_success: Family<ClusterLabels, Gauge>,
    last_size: Family<ClusterLabels, Gauge>,
    last_failure: Family<ClusterLabels, Gauge>,
}

impl EtcdBackupGauges {
    fn register(registry: &mut Registry) -> Self {
        EtcdBackupGauges {
            enabled: family(
                registry,
                "etcd_backup_enabled_timestamp_seconds",
                "When the operator first scheduled etcd snapshots of the CurveCluster (status.etcd.backup.enabledAt); absent without spec.etcd.backup",
            ),
            last_success: family(
                registry,
                "etcd_backup_last_success_timestamp_seconds",
                "When the newest verified etcd snapshot was taken (status.etcd.backup.lastSuccess.time); absent until one is",
            ),
            last_size: family(
                registry,
                "etcd_backup_last_size_bytes",
                "Bytes of the newest verified etcd snapshot",
            ),
            last_failure: family(
                registry,
                "etcd_backup_last_failure_timestamp_seconds",
                "When the newest failed etcd backup Job failed (status.etcd.backup.lastFailure.time); absent until one does",
            ),
        }
    }
}

const ETCD_ALARMS: [EtcdAlarm; 2] = [EtcdAlarm::NoSpace, EtcdAlarm::Corrupt];

/// An alarm's `state` label: etcd's name in lower case.
fn alarm_state(alarm: EtcdAlarm) -> String {
    alarm.as_str().to_lowercase()
}

/// A new family, registered.
fn family<L, M>(registry: &mut Registry, name: &str, help: &str) -> Family<L, M>
where
    Family<L, M>: prometheus_client::registry::Metric + Clone + Default,
{
    let family = Family::default();
    registry.register(name, help, family.clone());
    family
}

fn cluster(namespace: &str, name: &str) -> ClusterLabels {
    ClusterLabels {
        namespace: namespace.to_owned(),
        name: name.to_owned(),
    }
}

fn pool_labels(namespace: &str, name: &str, pool: &str, kind: &str) -> PoolLabels {
    PoolLabels {
        namespace: namespace.to_owned(),
        name: name.to_owned(),
        pool: pool.to_owned(),
        kind: kind.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_every_metric_with_its_labels() {
        let m = Metrics::new();
        m.reconcile_finished(ReconcileResult::Success, Duration::from_millis(20));
        m.reconcile_finished(ReconcileResult::Error, Duration::from_millis(20));
        let mut steps = StepTimes::default();
        // Validation and the decision: one observation of 3 ms; no read ran.
        steps.add(ReconcileStep::Decide, Duration::from_millis(1));
        steps.add(ReconcileStep::Decide, Duration::from_millis(2));
        steps.add(ReconcileStep::Write, Duration::from_millis(1));
        m.reconcile_steps(&steps);
        m.health_read(Duration::from_millis(700));
        m.error(ErrorStep::Apply);
        m.kube_request("list", "pods");
        m.primary_changed("ns", "demo");
        m.set_ready("ns", "demo", Component::ChunkServer, 3);
        m.set_desired("ns", "demo", Component::ChunkServer, 4);
        let mds = ["demo-mds-0".to_string(), "demo-mds-1".to_string()];
        m.set_primary("ns", "demo", Some("demo-mds-1"), &mds);
        m.set_etcd_members("ns", "demo", 3, 2);
        m.set_available("ns", "demo", true);
        m.set_reconcile_failures("ns", "demo", 2);
        m.set_roll("ns", "demo", true, false);
        m.set_failure_domains("ns", "demo", 1, 1);
        m.set_etcd_alarms("ns", "demo", &[(EtcdAlarm::NoSpace, 3)]);
        let text = m.encode();
        assert!(
            !text.contains(r#"step_duration_seconds_count{step="read"}"#),
            "a step that did not run has no observation:\n{text}"
        );
        for line in [
            r#"curve_operator_reconciles_total{result="success"} 1"#,
            r#"curve_operator_reconciles_total{result="error"} 1"#,
            "curve_operator_reconcile_duration_seconds_count 2",
            r#"curve_operator_reconcile_step_duration_seconds_count{step="decide"} 1"#,
            r#"curve_operator_reconcile_step_duration_seconds_count{step="write"} 1"#,
            "curve_operator_health_read_duration_seconds_count 1",
            r#"curve_operator_errors_total{step="apply"} 1"#,
            r#"curve_operator_errors_total{step="etcd_membership"} 0"#,
            r#"curve_operator_kube_requests_total{verb="list",resource="pods"} 1"#,
            r#"curve_operator_mds_primary_changes_total{namespace="ns",name="demo"} 1"#,
            r#"curve_operator_ready_members{namespace="ns",name="demo",component="chunkserver"} 3"#,
            r#"curve_operator_desired_members{namespace="ns",name="demo",component="chunkserver"} 4"#,
            r#"curve_operator_mds_primary{namespace="ns",name="demo",pod="demo-mds-0"} 0"#,
            r#"curve_operator_mds_primary{namespace="ns",name="demo",pod="demo-mds-1"} 1"#,
            r#"curve_operator_etcd_members{namespace="ns",name="demo"} 3"#,
            r#"curve_operator_etcd_healthy_members{namespace="ns",name="demo"} 2"#,
            r#"curve_operator_etcd_alarms{namespace="ns",name="demo",state="nospace"} 3"#,
            r#"curve_operator_etcd_alarms{namespace="ns",name="demo",state="corrupt"} 0"#,
            r#"curve_operator_cluster_available{namespace="ns",name="demo"} 1"#,
            r#"curve_operator_cluster_reconcile_failures{namespace="ns",name="demo"} 2"#,
            r#"curve_operator_rolling{namespace="ns",name="demo"} 1"#,
            r#"curve_operator_roll_stuck{namespace="ns",name="demo"} 0"#,
            r#"curve_operator_chunkserver_failure_domains_down{namespace="ns",name="demo"} 1"#,
            r#"curve_operator_chunkserver_failure_domains_tolerated{namespace="ns",name="demo"} 1"#,
        ] {
            assert!(
                text.lines().any(|l| l == line),
                "missing {line:?} in\n{text}"
            );
        }
    }

    /// (upper bound, count) of each bucket of a histogram series, from `prefix{le="…"` lines.
    fn buckets(text: &str, prefix: &str, suffix: &str) -> Vec<(f64, u64)> {
        (text.lines())
            .filter_map(|l| {
                let rest = l.strip_prefix(prefix)?.strip_prefix("{le=\"")?;
                let (bound, rest) = rest.split_once('"')?;
                let count = rest.strip_prefix(suffix)?.trim().parse().ok()?;
                Some((bound.parse().ok()?, count))
            })
            .collect()
    }

    #[test]
    fn step_and_health_times_fall_in_their_buckets() {
        let m = Metrics::new();
        let mut steps = StepTimes::default();
        steps.add(ReconcileStep::Decide, Duration::from_millis(3));
        m.reconcile_steps(&steps);
        m.health_read(Duration::from_millis(700));
        let text = m.encode();
        let decide = buckets(
            &text,
            "curve_operator_reconcile_step_duration_seconds_bucket",
            r#",step="decide"}"#,
        );
        // √2 apart from 0.5 ms: 3 ms lies between 0.5 ms × √2^5 ≈ 2.83 ms and 4 ms.
        assert_eq!(decide.len(), 31, "30 bounds and +Inf: {decide:?}");
        for (bound, count) in &decide {
            assert_eq!(*count, u64::from(*bound >= 0.003), "bucket {bound}");
        }
        assert!(
            decide
                .iter()
                .any(|(b, c)| (*b - 0.004).abs() < 1e-9 && *c == 1)
        );
        let health = buckets(
            &text,
            "curve_operator_health_read_duration_seconds_bucket",
            "}",
        );
        assert_eq!(health.len(), 15, "14 bounds and +Inf: {health:?}");
        for (bound, count) in &health {
            assert_eq!(*count, u64::from(*bound >= 0.7), "bucket {bound}");
        }
    }

    #[test]
    fn removing_a_cluster_drops_its_series() {
        let m = Metrics::new();
        m.primary_changed("ns", "demo");
        m.set_ready("ns", "demo", Component::Etcd, 3);
        m.set_ready("ns", "other", Component::Etcd, 1);
        m.set_primary(
            "ns",
            "demo",
            Some("demo-mds-0"),
            &["demo-mds-0".to_string()],
        );
        m.set_etcd_members("ns", "demo", 3, 3);
        m.set_etcd_alarms("ns", "demo", &[(EtcdAlarm::Corrupt, 1)]);
        m.set_available("ns", "demo", true);
        m.set_roll("ns", "demo", false, false);
        m.remove_cluster("ns", "demo");
        let text = m.encode();
        assert!(!text.contains(r#"name="demo""#), "{text}");
        assert!(text.contains(r#"name="other""#));
    }

    #[test]
    fn an_mds_pod_that_is_gone_loses_its_primary_series() {
        let m = Metrics::new();
        let pods = |names: &[&str]| names.iter().map(|n| n.to_string()).collect::<Vec<_>>();
        m.set_primary(
            "ns",
            "demo",
            Some("demo-mds-2"),
            &pods(&["demo-mds-0", "demo-mds-1", "demo-mds-2"]),
        );
        m.set_primary("ns", "demo", None, &pods(&["demo-mds-0", "demo-mds-1"]));
        let text = m.encode();
        assert!(!text.contains("demo-mds-2"), "{text}");
        assert!(text.contains(r#"pod="demo-mds-1"} 0"#), "{text}");
    }

    #[test]
    fn curve_health_is_one_series_per_figure_and_goes_with_its_cluster() {
        use crate::api::{ChunkServerHealthStatus, CopysetHealthStatus, LogicalPoolSpaceStatus};
        let m = Metrics::new();
        let mut health = HealthStatus {
            verdict: HealthVerdict::Unhealthy,
            message: Some("2 copysets MinorityPeerNotOnline".into()),
            copysets: Some(CopysetHealthStatus {
                total: 100,
                healthy: 98,
                unhealthy: 2,
                problems: Vec::new(),
            }),
            chunkservers: Some(ChunkServerHealthStatus {
                online: 2,
                unstable: 1,
                offline: 0,
                readwrite: 3,
                pendding: 0,
                retired: 0,
            }),
            logical_pools: vec![LogicalPoolSpaceStatus {
                name: "pool1".into(),
                capacity_bytes: Some(1000),
                allocated_bytes: Some(300),
                used_bytes: None,
                physical_bytes: None,
            }],
            last_checked: None,
        };
        m.set_health("ns", "demo", &health);
        let text = m.encode();
        for line in [
            r#"curve_operator_curve_health{namespace="ns",name="demo",state="unhealthy"} 1"#,
            r#"curve_operator_curve_health{namespace="ns",name="demo",state="healthy"} 0"#,
            r#"curve_operator_copysets{namespace="ns",name="demo",state="unhealthy"} 2"#,
            r#"curve_operator_copysets{namespace="ns",name="demo",state="healthy"} 98"#,
            r#"curve_operator_chunkservers_online_state{namespace="ns",name="demo",state="unstable"} 1"#,
            r#"curve_operator_chunkservers_status{namespace="ns",name="demo",state="readwrite"} 3"#,
            r#"curve_operator_logical_pool_bytes{namespace="ns",name="demo",pool="pool1",kind="capacity"} 1000"#,
        ] {
            assert!(
                text.lines().any(|l| l == line),
                "missing {line:?} in\n{text}"
            );
        }
        assert!(
            !text.contains(r#"kind="used""#),
            "a figure not read has no series"
        );
        // Copysets not read this time: no stale count.
        health.copysets = None;
        m.set_health("ns", "demo", &health);
        assert!(
            !m.encode().contains("curve_operator_copysets{"),
            "{}",
            m.encode()
        );
        // The pool goes: its series go.
        health.logical_pools.clear();
        m.set_health("ns", "demo", &health);
        assert!(!m.encode().contains("pool1"));
        m.remove_cluster("ns", "demo");
        assert!(!m.encode().contains(r#"name="demo""#));
    }
}
