//! Curve's bootstrap order as a pure decision on observed state (never on time): physical
//! pool for the complete map → every ChunkServer online (as Curve sees it) → logical pool.

use k8s_openapi::api::batch::v1::Job;

use super::model::conditions::Reason;
use crate::api::OperatorRecord;
use crate::desired::jobs;
use crate::desired::topology::{ClusterMap, PoolProgress, SERVER_PORT};
use crate::names::TopologyStep;
use crate::validate::ValidatedCluster;

/// A topology Job as observed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JobState {
    pub name: String,
    pub outcome: JobOutcome,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum JobOutcome {
    Running,
    Succeeded,
    Failed(String),
}

impl JobState {
    pub fn of(job: &Job) -> Self {
        let status = job.status.as_ref();
        let failed = status
            .and_then(|s| s.conditions.as_ref())
            .and_then(|c| c.iter().find(|c| c.type_ == "Failed" && c.status == "True"))
            .map(|c| {
                format!(
                    "{}: {}",
                    c.reason.clone().unwrap_or_default(),
                    c.message.clone().unwrap_or_default()
                )
            });
        let outcome = match (failed, status.and_then(|s| s.succeeded).unwrap_or(0)) {
            (_, succeeded) if succeeded > 0 => JobOutcome::Succeeded,
            (Some(message), _) => JobOutcome::Failed(message),
            (None, _) => JobOutcome::Running,
        };
        JobState {
            name: job.metadata.name.clone().unwrap_or_default(),
            outcome,
        }
    }
}

/// What to do about the topology now, and what to report.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TopologyDecision {
    pub ready: bool,
    pub reason: Reason,
    pub message: String,
    /// Progress to record in the topology ConfigMap.
    pub progress: PoolProgress,
    /// The step whose Job must be created.
    pub create: Option<TopologyStep>,
    /// Jobs to delete: failed ones (to be retried) and finished ones of an older map.
    pub delete: Vec<String>,
}

fn find<'a>(jobs: &'a [JobState], name: &str) -> Option<&'a JobOutcome> {
    jobs.iter().find(|j| j.name == name).map(|j| &j.outcome)
}

/// How the TopologyReady condition tells a step: what it does, its reason while its Job is
/// created or runs, and its reason when the Job failed.
fn told(step: TopologyStep) -> (&'static str, Reason, Reason) {
    match step {
        TopologyStep::PhysicalPool => (
            "physical pool",
            Reason::PhysicalPoolPending,
            Reason::PhysicalPoolFailed,
        ),
        TopologyStep::ChunkServersOnline => (
            "ChunkServers online",
            Reason::WaitingForChunkServers,
            Reason::ChunkServersOffline,
        ),
        TopologyStep::LogicalPool => (
            "logical pool",
            Reason::LogicalPoolPending,
            Reason::LogicalPoolFailed,
        ),
    }
}

/// The topology Jobs as seen against one cluster map.
struct StepJobs<'a> {
    cluster: &'a ValidatedCluster,
    map: &'a ClusterMap,
    jobs: &'a [JobState],
}

impl StepJobs<'_> {
    /// Finished Jobs of an older map (a running one is left to finish).
    fn stale(&self) -> Vec<String> {
        let current: Vec<String> = (TopologyStep::ALL.iter())
            .map(|step| jobs::job_name(self.cluster, *step, self.map))
            .collect();
        (self.jobs.iter())
            .filter(|j| !current.contains(&j.name) && j.outcome != JobOutcome::Running)
            .map(|j| j.name.clone())
            .collect()
    }

    /// `Some` once the step's Job succeeded; until then, what to do about the Job and why the
    /// topology waits go into `decision`.
    fn succeeded(&self, step: TopologyStep, decision: &mut TopologyDecision) -> Option<()> {
        let (what, pending, failed) = told(step);
        let name = jobs::job_name(self.cluster, step, self.map);
        let (reason, message) = match find(self.jobs, &name) {
            Some(JobOutcome::Succeeded) => return Some(()),
            None => {
                decision.create = Some(step);
                (pending, format!("{what}: Job {name} created"))
            }
            Some(JobOutcome::Running) => (pending, format!("{what}: Job {name} running")),
            // Deleted now, created again by a later reconcile: each Job has already retried
            // with its own backoff before failing.
            Some(JobOutcome::Failed(why)) => {
                decision.delete.push(name.clone());
                let message = format!("{what}: Job {name} failed ({why}); retrying");
                (failed, message)
            }
        };
        (decision.reason, decision.message) = (reason, message);
        None
    }

    /// Curve's bootstrap order: the physical pool for the current map, then (once) every
    /// ChunkServer online and the logical pool. `Some` once every step is done.
    fn bootstrap(&self, previous: &PoolProgress, decision: &mut TopologyDecision) -> Option<()> {
        let map_ips = self.map.server_ips();
        if previous.physical_pool_servers != map_ips {
            self.succeeded(TopologyStep::PhysicalPool, decision)?;
            // The first pool registers every server with SERVER_PORT, for good; a later Job
            // only adds servers (a record from before the port was kept stays without it).
            if previous.physical_pool_servers.is_empty() {
                decision.progress.server_port = Some(SERVER_PORT);
            }
            decision.progress.physical_pool_servers = map_ips;
        }
        if !previous.logical_pool_created {
            self.succeeded(TopologyStep::ChunkServersOnline, decision)?;
            self.succeeded(TopologyStep::LogicalPool, decision)?;
            decision.progress.logical_pool_created = true;
        }
        Some(())
    }
}

/// The port Curve registered the cluster's servers with, once its physical pool exists: the
/// recorded one, or for a record from before it was kept, what the operator then gave: the
/// ChunkServer port (`chunkserver_port`, immutable) when the cluster had one disk slot, 0 with
/// more (`slots`: its ChunkServer StatefulSets; slots are never removed, so one slot now means
/// one at creation).
pub fn registered_server_port(
    record: &OperatorRecord,
    chunkserver_port: i32,
    slots: i32,
) -> Option<i32> {
    if record.physical_pool_servers.is_empty() {
        return record.server_port;
    }
    Some(
        record
            .server_port
            .unwrap_or(if slots <= 1 { chunkserver_port } else { 0 }),
    )
}

/// The topology's next step, and what the TopologyReady condition says about it.
pub fn decide(
    cluster: &ValidatedCluster,
    map: &ClusterMap,
    previous: &PoolProgress,
    jobs: &[JobState],
) -> TopologyDecision {
    let steps = StepJobs { cluster, map, jobs };
    let mut decision = TopologyDecision {
        ready: false,
        reason: Reason::NotStarted,
        message: String::new(),
        progress: previous.clone(),
        create: None,
        delete: steps.stale(),
    };
    let desired_servers = cluster.spec.chunkservers.replicas as usize;
    if previous.physical_pool_servers.is_empty() && map.servers().len() < desired_servers {
        decision.reason = Reason::WaitingForServers;
        decision.message = format!(
            "{} of {desired_servers} ChunkServer nodes scheduled",
            map.servers().len()
        );
        return decision;
    }
    if steps.bootstrap(previous, &mut decision).is_some() {
        let pool = &cluster.spec.logical_pool;
        decision.ready = true;
        decision.reason = Reason::Ready;
        decision.message = format!(
            "{} servers in physical pool {}, logical pool {} created",
            map.servers().len(),
            pool.physical_pool,
            pool.name
        );
    }
    decision
}

#[cfg(test)]
#[path = "topology_tests.rs"]
mod tests;
