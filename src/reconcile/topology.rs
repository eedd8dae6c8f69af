//! Curve's bootstrap order as a pure decision on observed state (never on time): physical
//! pool for the complete map → every ChunkServer online (as Curve sees it) → logical pool.

use k8s_openapi::api::batch::v1::Job;

use super::model::conditions::Reason;
use crate::desired::jobs;
use crate::desired::topology::{ClusterMap, PoolProgress};
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

pub fn decide(
    cluster: &ValidatedCluster,
    map: &ClusterMap,
    previous: &PoolProgress,
    jobs: &[JobState],
) -> TopologyDecision {
    let desired_servers = cluster.spec.chunkservers.replicas as usize;
    let pool = &cluster.spec.logical_pool;
    let current: Vec<String> = (TopologyStep::ALL.iter())
        .map(|step| jobs::job_name(cluster, *step, map))
        .collect();
    let mut decision = TopologyDecision {
        ready: false,
        reason: Reason::NotStarted,
        message: String::new(),
        progress: previous.clone(),
        create: None,
        delete: jobs
            .iter()
            .filter(|j| !current.contains(&j.name) && j.outcome != JobOutcome::Running)
            .map(|j| j.name.clone())
            .collect(),
    };
    let step = |decision: &mut TopologyDecision,
                step: TopologyStep,
                reason_pending: Reason,
                reason_failed: Reason,
                what: &str|
     -> bool {
        let name = jobs::job_name(cluster, step, map);
        match find(jobs, &name) {
            Some(JobOutcome::Succeeded) => true,
            None => {
                decision.create = Some(step);
                (decision.reason, decision.message) =
                    (reason_pending, format!("{what}: Job {name} created"));
                false
            }
            Some(JobOutcome::Running) => {
                (decision.reason, decision.message) =
                    (reason_pending, format!("{what}: Job {name} running"));
                false
            }
            Some(JobOutcome::Failed(why)) => {
                // Deleted now, created again by a later reconcile: each Job has already
                // retried with its own backoff before failing.
                decision.delete.push(name.clone());
                (decision.reason, decision.message) = (
                    reason_failed,
                    format!("{what}: Job {name} failed ({why}); retrying"),
                );
                false
            }
        }
    };

    if previous.physical_pool_servers.is_empty() && map.servers.len() < desired_servers {
        decision.reason = Reason::WaitingForServers;
        decision.message = format!(
            "{} of {desired_servers} ChunkServer nodes scheduled",
            map.servers.len()
        );
        return decision;
    }
    let map_ips = map.server_ips();
    if previous.physical_pool_servers != map_ips {
        if !step(
            &mut decision,
            TopologyStep::PhysicalPool,
            Reason::PhysicalPoolPending,
            Reason::PhysicalPoolFailed,
            "physical pool",
        ) {
            return decision;
        }
        decision.progress.physical_pool_servers = map_ips;
    }
    if !previous.logical_pool_created {
        if !step(
            &mut decision,
            TopologyStep::ChunkServersOnline,
            Reason::WaitingForChunkServers,
            Reason::ChunkServersOffline,
            "ChunkServers online",
        ) {
            return decision;
        }
        if !step(
            &mut decision,
            TopologyStep::LogicalPool,
            Reason::LogicalPoolPending,
            Reason::LogicalPoolFailed,
            "logical pool",
        ) {
            return decision;
        }
        decision.progress.logical_pool_created = true;
    }
    decision.ready = true;
    decision.reason = Reason::Ready;
    decision.message = format!(
        "{} servers in physical pool {}, logical pool {} created",
        map.servers.len(),
        pool.physical_pool,
        pool.name
    );
    decision
}
