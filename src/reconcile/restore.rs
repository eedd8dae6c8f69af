//! The etcd restore (`spec.etcd.restore`): pure. From the request, the restore recorded in
//! `status.etcd.restore`, the pods, Jobs and claims, etcd's member list and Curve's id counters
//! as read in this pass, to the restore's next record, what it holds (the MDS tier, the etcd
//! pods) and the one step to take.
//!
//! The phases ([`RestorePhase`]), each recorded before its first step so a restarted operator
//! carries on from the record: verify the snapshot (a Job; nothing is stopped yet) → stop the
//! MDS tier → stop etcd (and drop the data claims of members other than 0) → rebuild member 0
//! from the snapshot (a Job) → start etcd as one member → advance Curve's id counters → let
//! the other members rejoin (the membership decision grows etcd one member at a time) → start
//! the MDS again. The ChunkServers keep running throughout. Nothing starts without the exact
//! confirmation; a snapshot that fails verification is never restored; the MDS never starts
//! before the counters were advanced.

use k8s_openapi::api::batch::v1::Job;
use std::sync::Arc;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;
use kube::ResourceExt;

use super::model::action::component_of;
use super::model::claim::ClaimReading;
use super::model::event::ClusterEvent;
use super::model::pod::PodReading;
use super::model::states::RestoreState;
use super::topology::{JobOutcome, JobState};
use crate::api::{EtcdRestoreSpec, EtcdRestoreStatus, RestorePhase, restore_confirmation};
use crate::desired::etcd_restore::{RestoreJob, member_claim_name};
use crate::etcd::MemberHealth;
use crate::etcd::counters::{self, AdvanceProgress, CounterReading};
use crate::names::Component;
use crate::names::ETCD_RESTORE;

/// What the restore decision reads.
#[derive(Clone, Copy)]
pub struct RestoreInput<'a> {
    /// The CurveCluster's name.
    pub cluster: &'a str,
    /// `spec.etcd.restore`.
    pub request: Option<&'a EtcdRestoreSpec>,
    /// `status.etcd.restore` as last written.
    pub recorded: Option<&'a EtcdRestoreStatus>,
    /// `spec.etcd.replicas`: the members etcd has again before the MDS starts.
    pub members_wanted: i32,
    pub pods: &'a [Arc<PodReading>],
    /// `spec.replicas` of the component's StatefulSet as it exists now.
    pub set_replicas: &'a dyn Fn(Component) -> Option<i32>,
    pub jobs: &'a [Job],
    pub claims: &'a [Arc<ClaimReading>],
    /// etcd's member list with each member's health, when it answered.
    pub members: Option<&'a MemberHealth>,
    /// Curve's id counters, read in this pass only while the phase is AdvancingCounters.
    pub counters: Option<&'a Result<CounterReading, String>>,
    /// The cluster token a restore starting now rebuilds etcd with.
    pub new_token: &'a dyn Fn(i64) -> String,
    pub now: Timestamp,
}

/// What the restore does in this pass.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct RestoreDecision {
    /// `status.etcd.restore` to write.
    pub record: Option<EtcdRestoreStatus>,
    /// The MDS StatefulSet is kept at 0 pods.
    pub hold_mds: bool,
    /// The etcd StatefulSet's pods: `Some(0)` stopped, `Some(1)` at least member 0.
    pub etcd_pods: Option<i32>,
    /// etcd was rebuilt as one member: the operator's membership record starts again from it
    /// (one voter, no step under way).
    pub reset_membership: bool,
    /// The restore Job to create when it does not exist.
    pub job: Option<RestoreJob>,
    /// Restore Jobs of earlier requests, to delete.
    pub delete_jobs: Vec<String>,
    /// Data claims of members other than 0, to delete: they rejoin empty.
    pub delete_claims: Vec<String>,
    /// Pods (name, uid) of a StatefulSet already scaled to 0, to delete: the MDS StatefulSet
    /// is `OrderedReady`, whose controller does not scale down while a pod is not ready, and
    /// without etcd no MDS is.
    pub delete_pods: Vec<(String, String)>,
    /// Curve's id counters to advance (recorded in `record.counters` first).
    pub advance: Option<crate::api::CountersAdvance>,
    pub state: RestoreState,
    pub events: Vec<ClusterEvent>,
}

/// The seconds of a restore's start: what names its Jobs and its cluster token.
pub fn started_seconds(record: &EtcdRestoreStatus) -> i64 {
    record.started.0.as_second()
}

fn time(now: Timestamp) -> Time {
    Time(now)
}

/// A pod of this component exists, running or terminating (a terminating MDS may still
/// serve).
fn any_pod(pods: &[Arc<PodReading>], component: Component) -> usize {
    (pods.iter()).filter(|p| p.is(component.as_str())).count()
}

/// The component's pods are stopped: once its StatefulSet is at 0, those still there (not
/// already terminating) are deleted. The message while some remain.
fn stop_pods(
    input: &RestoreInput,
    component: Component,
    decision: &mut RestoreDecision,
) -> Option<String> {
    let left = any_pod(input.pods, component);
    if left == 0 {
        return None;
    }
    if (input.set_replicas)(component) == Some(0) {
        decision.delete_pods.extend(
            (input.pods.iter())
                .filter(|p| p.is(component.as_str()) && !p.terminating)
                .map(|p| (p.name.clone(), p.uid.clone())),
        );
    }
    Some(format!(
        "waiting for {left} {} pods to stop",
        component.as_str()
    ))
}

/// The termination message of a restore Job's pod, when it wrote one.
fn job_message(pods: &[Arc<PodReading>], job: &str) -> Option<String> {
    let pod = (pods.iter()).find(|p| p.is(ETCD_RESTORE) && p.job.as_deref() == Some(job))?;
    (pod.containers.iter())
        .filter_map(|c| c.state.as_ref()?.terminated()?.message.as_deref())
        .map(|m| m.trim().to_string())
        .find(|m| !m.is_empty())
}

pub fn decide(input: &RestoreInput) -> RestoreDecision {
    let mut decision = RestoreDecision::default();
    let recorded = input.recorded.cloned();
    let current = match (input.request, recorded) {
        (None, None) => None,
        (None, Some(r)) if r.phase.finished() => None,
        (None, Some(r)) if r.phase < RestorePhase::StoppingEtcd => {
            decision.events.push(ClusterEvent::normal(
                "EtcdRestoreCancelled",
                format!(
                    "spec.etcd.restore was removed while {}: nothing was stopped past the MDS tier, which starts again",
                    r.phase.as_str()
                ),
            ));
            None
        }
        (Some(request), Some(r)) if r.snapshot != request.snapshot && !carries_on(&r) => {
            start(input, request, &mut decision)
        }
        (_, Some(r)) => Some(r),
        (Some(request), None) => start(input, request, &mut decision),
    };
    let Some(record) = current else {
        decision.delete_jobs = stale_jobs(input, None);
        return decision;
    };
    decision.delete_jobs = stale_jobs(input, Some(&record));
    let record = step(input, record, &mut decision);
    decision.state = state_of(input, &record);
    decision.record = Some(record);
    decision
}

/// Once etcd is being stopped, a restore goes to its end whatever the spec says now: the
/// cluster has no usable etcd until it does.
fn carries_on(record: &EtcdRestoreStatus) -> bool {
    !record.phase.finished() && record.phase >= RestorePhase::StoppingEtcd
}

/// A new request: refused without the exact confirmation, else recorded as Verifying.
fn start(
    input: &RestoreInput,
    request: &EtcdRestoreSpec,
    decision: &mut RestoreDecision,
) -> Option<EtcdRestoreStatus> {
    if !request.confirmed() {
        decision.state = RestoreState::Refused {
            message: format!(
                "spec.etcd.restore: snapshot {} is not restored: spec.etcd.restore.confirmation must be \"{}\" (got {}); a restore stops the MDS tier and loses everything written after the snapshot",
                request.snapshot,
                restore_confirmation(&request.snapshot),
                request
                    .confirmation
                    .as_deref()
                    .map_or("none".to_string(), |c| format!("{c:?}")),
            ),
        };
        return None;
    }
    if let Some(quorum) = input.members.and_then(quorum_serving) {
        decision.state = RestoreState::Refused {
            message: format!(
                "spec.etcd.restore: snapshot {} is not restored: etcd has a quorum ({quorum}), so it is not lost; a restore would throw away everything written since the snapshot. Remove spec.etcd.restore; a restore is for an etcd whose quorum is gone for good",
                request.snapshot
            ),
        };
        return None;
    }
    let started = input.now.as_second();
    decision.events.push(ClusterEvent::warning(
        "EtcdRestoreStarted",
        format!(
            "restoring etcd from snapshot {}: verifying it; then the MDS tier and etcd stop",
            request.snapshot
        ),
    ));
    Some(EtcdRestoreStatus {
        phase: RestorePhase::Verifying,
        snapshot: request.snapshot.clone(),
        message: String::new(),
        revision: None,
        cluster_token: (input.new_token)(started),
        counters: None,
        started: time(Timestamp::from_second(started).unwrap_or(input.now)),
        finished: None,
    })
}

/// "2 of 3 voters healthy, leader <name>" when etcd has a leader and a majority of its voters
/// answer: an etcd that is not lost, which no restore may replace.
fn quorum_serving(members: &MemberHealth) -> Option<String> {
    let voters = (members.members.iter()).filter(|m| !m.is_learner);
    let (total, healthy) = voters.fold((0, 0), |(t, h), m| (t + 1, h + usize::from(m.healthy)));
    let leader = members.leader.as_deref()?;
    (healthy * 2 > total).then(|| format!("{healthy} of {total} voters healthy, leader {leader}"))
}

/// Restore Jobs that are not the current restore's.
fn stale_jobs(input: &RestoreInput, record: Option<&EtcdRestoreStatus>) -> Vec<String> {
    let current: Vec<String> = record
        .map(|r| {
            [RestoreJob::Verify, RestoreJob::Restore]
                .map(|j| j.name(input.cluster, started_seconds(r)))
                .to_vec()
        })
        .unwrap_or_default();
    (input.jobs.iter())
        .filter(|j| component_of(&j.metadata) == Some(ETCD_RESTORE))
        .filter(|j| j.metadata.deletion_timestamp.is_none())
        .map(|j| j.name_any())
        .filter(|name| !current.contains(name))
        .collect()
}

/// The phase's step: what it holds and does, and the record it leaves (the next phase as soon
/// as this one is done, so each pass moves as far as it can see).
fn step(
    input: &RestoreInput,
    mut record: EtcdRestoreStatus,
    decision: &mut RestoreDecision,
) -> EtcdRestoreStatus {
    use RestorePhase::*;
    // Past Verifying the MDS stays down until the end; past StoppingMds etcd is rebuilt.
    decision.hold_mds = (StoppingMds..=Rejoining).contains(&record.phase);
    match record.phase {
        Verifying => match job_outcome(input, &record, RestoreJob::Verify, decision) {
            Some(JobOutcome::Succeeded) => {
                advance_to(&mut record, StoppingMds, "");
                decision.hold_mds = true;
                decision.events.push(ClusterEvent::warning(
                    "EtcdRestoreStoppingMds",
                    format!(
                        "snapshot {} verified; stopping the MDS tier",
                        record.snapshot
                    ),
                ));
                return step(input, record, decision);
            }
            Some(JobOutcome::Failed(why)) => {
                fail(input, &mut record, RestoreJob::Verify, &why, decision);
            }
            _ => record.message = format!("verifying snapshot {}", record.snapshot),
        },
        StoppingMds => match stop_pods(input, Component::Mds, decision) {
            None => {
                advance_to(&mut record, StoppingEtcd, "");
                return step(input, record, decision);
            }
            Some(waiting) => record.message = waiting,
        },
        StoppingEtcd => stop_etcd(input, &mut record, decision),
        Restoring => {
            decision.etcd_pods = Some(0);
            match job_outcome(input, &record, RestoreJob::Restore, decision) {
                Some(JobOutcome::Succeeded) => {
                    advance_to(&mut record, StartingEtcd, "");
                    decision.reset_membership = true;
                    return step(input, record, decision);
                }
                Some(JobOutcome::Failed(why)) => {
                    fail(input, &mut record, RestoreJob::Restore, &why, decision);
                }
                _ => {
                    record.message =
                        format!("rebuilding etcd member 0 from snapshot {}", record.snapshot)
                }
            }
        }
        StartingEtcd => {
            decision.etcd_pods = Some(1);
            let up = input
                .members
                .is_some_and(|m| m.total >= 1 && m.healthy >= 1);
            if up {
                advance_to(&mut record, AdvancingCounters, "");
                return step(input, record, decision);
            }
            record.message = "waiting for etcd member 0 to serve".into();
        }
        AdvancingCounters => advance_counters(input, &mut record, decision),
        Rejoining => {
            let members = input.members;
            let voters = members.map_or(0, |m| m.members.iter().filter(|m| !m.is_learner).count());
            let all = members.is_some_and(|m| m.healthy == m.total);
            if voters as i32 >= input.members_wanted && all {
                advance_to(&mut record, Done, "");
                record.finished = Some(time(input.now));
                decision.hold_mds = false;
                decision.events.push(ClusterEvent::normal(
                    "EtcdRestored",
                    format!(
                        "etcd restored from snapshot {} (revision {}); the MDS tier starts again",
                        record.snapshot,
                        record.revision.unwrap_or_default()
                    ),
                ));
            } else {
                record.message = format!(
                    "waiting for etcd's members to rejoin ({voters} of {} voting, every one healthy) before the MDS starts",
                    input.members_wanted
                );
            }
        }
        Done | Failed => {}
    }
    record
}

fn advance_to(record: &mut EtcdRestoreStatus, phase: RestorePhase, message: &str) {
    record.phase = phase;
    record.message = message.to_string();
}

/// The outcome of the phase's Job, or `None` after asking for it to be created.
fn job_outcome(
    input: &RestoreInput,
    record: &EtcdRestoreStatus,
    job: RestoreJob,
    decision: &mut RestoreDecision,
) -> Option<JobOutcome> {
    let name = job.name(input.cluster, started_seconds(record));
    let found = input.jobs.iter().find(|j| j.name_any() == name);
    match found {
        Some(j) => Some(JobState::of(j).outcome),
        None => {
            decision.job = Some(job);
            None
        }
    }
}

fn fail(
    input: &RestoreInput,
    record: &mut EtcdRestoreStatus,
    job: RestoreJob,
    why: &str,
    decision: &mut RestoreDecision,
) {
    let name = job.name(input.cluster, started_seconds(record));
    let detail = job_message(input.pods, &name).unwrap_or_else(|| why.to_string());
    let what = match job {
        RestoreJob::Verify => "failed verification and is never used; nothing was stopped",
        RestoreJob::Restore => {
            "could not be restored; etcd stays stopped (remove spec.etcd.restore, or name another snapshot)"
        }
    };
    record.phase = RestorePhase::Failed;
    record.message = format!("snapshot {} {what}: {detail} (Job {name})", record.snapshot);
    record.finished = Some(time(input.now));
    decision.hold_mds = false;
    decision.etcd_pods = None;
    decision.events.push(ClusterEvent::warning(
        "EtcdRestoreFailed",
        record.message.clone(),
    ));
}

/// Stopping etcd: its pods go; member 0's claim must exist for the restore Job (a claim that
/// was deleted is made again by starting its pod once); the other members' claims go.
fn stop_etcd(input: &RestoreInput, record: &mut EtcdRestoreStatus, decision: &mut RestoreDecision) {
    let claim_exists = |name: &str| (input.claims.iter()).any(|c| c.name == name && !c.terminating);
    let first = member_claim_name(input.cluster, 0);
    if !claim_exists(&first) {
        decision.etcd_pods = Some(1);
        record.message = format!("waiting for member 0's claim {first} (its pod makes it again)");
        return;
    }
    decision.etcd_pods = Some(0);
    if let Some(waiting) = stop_pods(input, Component::Etcd, decision) {
        record.message = waiting;
        return;
    }
    // `data-<cluster>-etcd-<n>`, n > 0: member 0's name without its ordinal.
    let prefix = first.strip_suffix('0').unwrap_or(&first);
    let others: Vec<String> = (input.claims.iter())
        .map(|c| c.name.clone())
        .filter(|name| {
            (name.strip_prefix(prefix))
                .and_then(|o| o.parse::<i32>().ok())
                .is_some_and(|o| o > 0)
        })
        .collect();
    if !others.is_empty() {
        decision.delete_claims = (others.iter())
            .filter(|c| claim_exists(c))
            .cloned()
            .collect();
        record.message = format!(
            "deleting the data claims of the other members ({}): they rejoin empty",
            others.join(", ")
        );
        return;
    }
    advance_to(record, RestorePhase::Restoring, "");
    decision.events.push(ClusterEvent::warning(
        "EtcdRestoreRebuilding",
        format!(
            "etcd stopped; rebuilding member 0 from snapshot {}",
            record.snapshot
        ),
    ));
    decision.job = Some(RestoreJob::Restore);
    record.message = format!("rebuilding etcd member 0 from snapshot {}", record.snapshot);
}

/// Advancing the counters: planned from what etcd holds and recorded, sent, then seen done.
fn advance_counters(
    input: &RestoreInput,
    record: &mut EtcdRestoreStatus,
    decision: &mut RestoreDecision,
) {
    let reading = match input.counters {
        None => {
            record.message = "reading Curve's id counters".into();
            return;
        }
        Some(Err(e)) => {
            record.message = format!("reading Curve's id counters: {e}");
            return;
        }
        Some(Ok(reading)) => reading,
    };
    let planned = record.counters.clone();
    let progress = planned
        .as_ref()
        .map(|p| (p, counters::progress(reading, p)));
    match progress {
        Some((planned, AdvanceProgress::Done)) => {
            advance_to(record, RestorePhase::Rejoining, "");
            decision.events.push(ClusterEvent::normal(
                "EtcdCountersAdvanced",
                format!(
                    "Curve's id counters advanced past any id handed out after the snapshot: inode (04) {} → {}, chunk (05) {} → {}",
                    shown(planned.inode.from),
                    planned.inode.to,
                    shown(planned.chunk.from),
                    planned.chunk.to
                ),
            ));
            // Rejoining is judged in the same pass.
            let next = step(input, record.clone(), decision);
            *record = next;
        }
        Some((planned, AdvanceProgress::NotYet)) => {
            decision.advance = Some(planned.clone());
            record.message = "advancing Curve's id counters".into();
        }
        // First time here, or the values moved since the plan: plan from what is there now.
        None | Some((_, AdvanceProgress::Moved)) => match counters::plan(reading) {
            Ok(planned) => {
                record.revision.get_or_insert(reading.revision);
                record.counters = Some(planned.clone());
                decision.advance = Some(planned);
                record.message = "advancing Curve's id counters".into();
            }
            Err(e) => record.message = format!("Curve's id counters cannot be advanced: {e}"),
        },
    }
}

fn shown(value: Option<u64>) -> String {
    value.map_or("absent".into(), |v| v.to_string())
}

/// What the status says of the restore.
fn state_of(input: &RestoreInput, record: &EtcdRestoreStatus) -> RestoreState {
    let asked_other = input.request.is_some_and(|r| r.snapshot != record.snapshot);
    match record.phase {
        RestorePhase::Done => RestoreState::None,
        RestorePhase::Failed => RestoreState::Failed {
            message: record.message.clone(),
        },
        phase => {
            let mut message = format!(
                "restoring etcd from snapshot {}: {} ({})",
                record.snapshot,
                phase.as_str(),
                record.message
            );
            if input.request.is_none() || asked_other {
                message.push_str(
                    "; spec.etcd.restore changed, but etcd was already stopped: this restore goes to its end",
                );
            }
            RestoreState::Running { message }
        }
    }
}

#[cfg(test)]
#[path = "restore_tests.rs"]
mod tests;
