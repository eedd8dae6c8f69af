//! Curve's health, read continuously beside the controller: one task per cluster reads every
//! MDS and ChunkServer on a period (and at once when the cluster's pods change readiness), and
//! probes the elected primary's dummy port every second so a dead primary shows before its
//! election key lapses. A reconcile only reads the latest result from here: it sends no
//! request to Curve itself. A result that changes what the status says wakes the cluster's
//! reconcile through `changes`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::channel::mpsc::UnboundedSender;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;
use tokio::sync::Notify;

use super::model::health::{Latest, Wanted};
use crate::curve::CurveObserver;
use crate::curve::gather::{MdsTarget, Targets};
use crate::curve::health::{self, health_changed, health_status};
use crate::curve::inventory::Inventory;
use crate::etcd::ClusterKey;
use crate::runtime::metrics::Metrics;

#[derive(Clone, Copy, Debug)]
pub struct MonitorOptions {
    /// How often everything is read.
    pub period: Duration,
    /// How often the elected primary's dummy port is probed.
    pub probe_period: Duration,
}

impl Default for MonitorOptions {
    fn default() -> Self {
        MonitorOptions {
            period: Duration::from_secs(15),
            probe_period: Duration::from_secs(1),
        }
    }
}

struct Watched {
    wanted: Wanted,
    latest: Option<Latest>,
}

struct Cluster {
    state: Arc<Mutex<Watched>>,
    wake: Arc<Notify>,
    task: tokio::task::AbortHandle,
}

/// Where a reconcile gets Curve's health from: the monitor, or a test's fake.
pub trait HealthSource: Send + Sync {
    /// Makes sure the cluster is watched as `wanted` says; the latest result, if any.
    fn want(&self, cluster: &ClusterKey, wanted: Wanted) -> Option<Latest>;
    /// Stops watching the cluster.
    fn forget(&self, cluster: &ClusterKey);
}

/// No health is read (the operator's tests that do not need it): a ChunkServer roll waits.
pub struct NoHealth;

impl HealthSource for NoHealth {
    fn want(&self, _: &ClusterKey, _: Wanted) -> Option<Latest> {
        None
    }
    fn forget(&self, _: &ClusterKey) {}
}

impl<C: CurveObserver> HealthSource for HealthMonitor<C> {
    fn want(&self, cluster: &ClusterKey, wanted: Wanted) -> Option<Latest> {
        HealthMonitor::want(self, cluster, wanted)
    }
    fn forget(&self, cluster: &ClusterKey) {
        HealthMonitor::forget(self, cluster)
    }
}

/// The per-cluster health tasks. `full` reads everything (its transport's timeout bounds a
/// round); `probe` reads one dummy port, with a short timeout.
pub struct HealthMonitor<C> {
    full: Arc<C>,
    probe: Arc<C>,
    options: MonitorOptions,
    clusters: Mutex<HashMap<ClusterKey, Cluster>>,
    changes: UnboundedSender<ClusterKey>,
    /// Where the time of each full reading goes, if anywhere.
    metrics: Option<Arc<Metrics>>,
}

impl<C: CurveObserver> HealthMonitor<C> {
    pub fn new(
        full: C,
        probe: C,
        options: MonitorOptions,
        changes: UnboundedSender<ClusterKey>,
    ) -> Self {
        HealthMonitor {
            full: Arc::new(full),
            probe: Arc::new(probe),
            options,
            clusters: Mutex::default(),
            changes,
            metrics: None,
        }
    }

    /// Records the time of each full reading in `metrics`.
    pub fn with_metrics(mut self, metrics: Arc<Metrics>) -> Self {
        self.metrics = Some(metrics);
        self
    }

    /// Makes sure the cluster is watched as `wanted` says; returns the latest result. A new
    /// pods token or new targets start a reading at once.
    pub fn want(&self, key: &ClusterKey, wanted: Wanted) -> Option<Latest> {
        let mut clusters = self.clusters.lock().expect("not poisoned");
        if let Some(cluster) = clusters.get(key) {
            let mut state = cluster.state.lock().expect("not poisoned");
            if state.wanted != wanted {
                state.wanted = wanted;
                cluster.wake.notify_one();
            }
            return state.latest.clone();
        }
        let state = Arc::new(Mutex::new(Watched {
            wanted,
            latest: None,
        }));
        let wake = Arc::new(Notify::new());
        let readers = Readers {
            full: self.full.clone(),
            probe: self.probe.clone(),
            options: self.options,
            changes: self.changes.clone(),
            metrics: self.metrics.clone(),
        };
        let task = tokio::spawn(watch(key.clone(), state.clone(), wake.clone(), readers));
        clusters.insert(
            key.clone(),
            Cluster {
                state,
                wake,
                task: task.abort_handle(),
            },
        );
        None
    }

    /// Stops watching a cluster (deleted, or no MDS tier any more).
    pub fn forget(&self, key: &ClusterKey) {
        if let Some(cluster) = self.clusters.lock().expect("not poisoned").remove(key) {
            cluster.task.abort();
        }
    }
}

/// The elected primary among the targets, to probe.
fn primary_target(targets: &Targets) -> Option<MdsTarget> {
    let elected = targets.elected.as_deref()?;
    (targets.mds.iter())
        .find(|m| m.listen_addr == elected)
        .cloned()
}

/// Whether a new result tells the reconcile anything: what the status shows, the primary's
/// reachability, or a reading of a newer pods state (a roll step may wait for it).
fn tells_more(previous: Option<&Latest>, next: &Latest) -> bool {
    let Some(previous) = previous else {
        return true;
    };
    health_changed(Some(&previous.status), &next.status)
        || previous.primary_unreachable != next.primary_unreachable
        || previous.pods_token != next.pods_token
        || inventory_shape(previous.inventory.as_deref())
            != inventory_shape(next.inventory.as_deref())
        || leaders(previous) != leaders(next)
}

/// The leaders per ChunkServer: the reconcile publishes them (`chunkserver_leaders`), so a
/// new spread — a rapid leader schedule done, an election — is news, or the gauges would keep
/// the spread of the last reconcile for as long as nothing else changed.
fn leaders(latest: &Latest) -> Option<&std::collections::BTreeMap<String, u32>> {
    latest.inventory.as_ref().map(|i| &i.leaders)
}

/// What a retire decides on, of an inventory: the ChunkServers' states and copysets, the
/// servers, the operators in flight — not the space used, which moves with every write.
fn inventory_shape(inventory: Option<&Inventory>) -> Option<Vec<String>> {
    let inventory = inventory?;
    let chunkservers = (inventory.chunkservers.iter()).map(|cs| {
        format!(
            "{} {} {} {} {}",
            cs.id, cs.address, cs.status, cs.online, cs.copysets
        )
    });
    let servers = (inventory.servers.iter()).map(|s| format!("server {}", s.id));
    let operators = std::iter::once(format!("operators {:?}", inventory.operators));
    Some(chunkservers.chain(servers).chain(operators).collect())
}

/// What each cluster's task gets from the monitor: how to read, how often, where to say a
/// result tells something new, where the time of a full reading goes.
struct Readers<C> {
    full: Arc<C>,
    probe: Arc<C>,
    options: MonitorOptions,
    changes: UnboundedSender<ClusterKey>,
    metrics: Option<Arc<Metrics>>,
}

async fn watch<C: CurveObserver>(
    key: ClusterKey,
    state: Arc<Mutex<Watched>>,
    wake: Arc<Notify>,
    readers: Readers<C>,
) {
    let Readers {
        full,
        probe,
        options,
        changes,
        metrics,
    } = readers;
    let mut last_full: Option<tokio::time::Instant> = None;
    loop {
        let (wanted, latest) = {
            let state = state.lock().expect("not poisoned");
            (state.wanted.clone(), state.latest.clone())
        };
        let due = last_full.is_none_or(|t| t.elapsed() >= options.period);
        let stale = latest
            .as_ref()
            .is_none_or(|l| l.pods_token != wanted.pods_token);
        let next = if due || stale {
            let started = tokio::time::Instant::now();
            last_full = Some(started);
            let reading = full.observe(&wanted.targets).await;
            let health = health::verdict(&reading, &wanted.rules);
            if let Some(metrics) = &metrics {
                metrics.health_read(started.elapsed());
            }
            // Whole seconds: the API server keeps a status time to the second, and a time
            // finer than what comes back would differ from it at every reconcile (a write).
            let now = Timestamp::now();
            let checked = Time(Timestamp::from_second(now.as_second()).unwrap_or(now));
            let mut status = health_status(&health, checked);
            // Unchanged but for the clock: the status keeps its figures (no write).
            if let Some(previous) = latest.as_ref()
                && !health_changed(Some(&previous.status), &status)
            {
                status = previous.status.clone();
            }
            Some(Latest {
                inventory: Inventory::of_reading(&reading).map(Arc::new),
                primary_unreachable: health::primary_unreachable(&reading).map(str::to_string),
                health,
                status,
                pods_token: wanted.pods_token,
            })
        } else if let (Some(primary), Some(latest)) = (primary_target(&wanted.targets), &latest) {
            // No elected address: only the one dummy port is asked, not the topology.
            let mut probed = probe
                .observe(&Targets {
                    elected: None,
                    mds: vec![primary],
                })
                .await;
            probed.elected = wanted.targets.elected.clone();
            let unreachable = health::primary_unreachable(&probed).map(str::to_string);
            Some(Latest {
                primary_unreachable: unreachable,
                ..latest.clone()
            })
        } else {
            None
        };
        if let Some(next) = next {
            let tell = tells_more(latest.as_ref(), &next);
            state.lock().expect("not poisoned").latest = Some(next);
            if tell && changes.unbounded_send(key.clone()).is_err() {
                return;
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(options.probe_period) => {}
            _ = wake.notified() => {}
        }
    }
}

#[cfg(test)]
#[path = "health_monitor_tests.rs"]
mod tests;
