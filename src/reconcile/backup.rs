//! `spec.etcd.backup`: when the next snapshot is due, which member it is taken from, what a
//! finished backup Job says, and which Jobs go. Pure: from the spec, the backup Jobs and their
//! pods, etcd's member health, the previous status and `now`.
//!
//! The operator schedules the Jobs itself (no CronJob): at creation it picks a serving member
//! that is not the raft leader when another serves (a snapshot streams the whole database out
//! of the member, which the leader should not spend on), and it holds a due snapshot back while
//! etcd serves from no member. The due time is kept in `status.etcd.backup.nextScheduled`, and
//! a Job is named after the minute it was due, so a Job created twice (an operator killed
//! before its status write) is one Job. The result comes from the Job's termination message
//! (desired/etcd-backup.sh); a finished Job is deleted once its result is in the status.

use k8s_openapi::api::batch::v1::Job;
use std::sync::Arc;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::{Timestamp, tz::TimeZone};
use serde::Deserialize;

use super::model::action::{Action, Object, ObjectKind, component_of};
use super::model::claim::ClaimReading;
use super::model::event::ClusterEvent;
use super::model::pod::PodReading;
use super::topology::{JobOutcome, JobState};
use crate::api::{EtcdBackupFailure, EtcdBackupStatus, EtcdBackupSuccess};
use crate::cron::Schedule;
use crate::desired::etcd_backup::{self, BackupRun, SNAPSHOTS_DIR};
use crate::etcd::{EtcdAlarm, MemberHealth};
use crate::names::{ETCD_BACKUP, etcd_backup_claim_name, etcd_backup_job_name};
use crate::validate::ValidatedCluster;

/// How soon to look again at a snapshot that is due but waits (etcd not serving, a Job still
/// running): Job and pod changes wake the reconcile sooner, etcd's health does not.
pub const WAITING_RECHECK_SECONDS: i64 = 30;

/// What the backup decision reads.
pub struct BackupInput<'a> {
    pub cluster: &'a ValidatedCluster,
    pub previous: Option<&'a EtcdBackupStatus>,
    /// The cluster's Jobs and pods (the backup ones are picked out by their component label).
    pub jobs: &'a [Job],
    pub pods: &'a [Arc<PodReading>],
    pub claims: &'a [Arc<ClaimReading>],
    /// etcd's members as the operator's etcd client read them; `None` when not read.
    pub members: Option<&'a MemberHealth>,
    /// The operator changes objects in this pass (not paused, its record readable).
    pub acts: bool,
    /// Why no snapshot may be taken now though the operator acts (an etcd restore under way).
    pub held: Option<&'a str>,
    /// The operator's own image (`--job-image`), which makes the bucket copies.
    pub uploader_image: Option<&'a str>,
    pub now: Timestamp,
}

/// What the backup decision says.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct BackupPlan {
    pub actions: Vec<Action>,
    /// `status.etcd.backup`.
    pub status: Option<EtcdBackupStatus>,
    pub events: Vec<ClusterEvent>,
    /// When the next snapshot is due (or a waiting one is looked at again).
    pub wake_at: Option<Timestamp>,
}

/// The one-line result the script writes to the termination message.
#[derive(Deserialize, Debug, PartialEq)]
#[serde(tag = "result", rename_all = "camelCase")]
enum JobResult {
    #[serde(rename_all = "camelCase")]
    Success {
        name: String,
        taken_at: String,
        member: String,
        size: i64,
        revision: i64,
        /// The bucket copy's URL (`curve-operator s3-upload`'s result).
        #[serde(default)]
        bucket_copy: Option<String>,
    },
    Failure {
        reason: String,
    },
}

/// A finished backup Job's outcome, as the status records it.
#[derive(Clone, Debug, PartialEq)]
enum Finished {
    Success(EtcdBackupSuccess),
    Failure(EtcdBackupFailure),
}

pub fn plan(input: &BackupInput) -> BackupPlan {
    let previous = input.previous.cloned().unwrap_or_default();
    let Some(spec) = &input.cluster.spec.etcd.backup else {
        // Turned off: what was taken stays told, nothing is scheduled.
        let kept = EtcdBackupStatus {
            last_success: previous.last_success,
            last_failure: previous.last_failure,
            ..EtcdBackupStatus::default()
        };
        let told = kept.last_success.is_some() || kept.last_failure.is_some();
        return BackupPlan {
            status: told.then_some(kept),
            ..BackupPlan::default()
        };
    };
    let mut plan = BackupPlan::default();
    let mut status = previous.clone();
    status.enabled_at = status.enabled_at.or(Some(Time(input.now)));
    let jobs = backup_jobs(input.jobs);
    record_finished(input, &jobs, &mut status, &mut plan);
    let running = (jobs.iter())
        .find(|(_, state)| state.outcome == JobOutcome::Running)
        .map(|(_, state)| state.name.clone());
    status.active_job = running.clone();
    status.waiting = None;
    let claim = etcd_backup_claim_name(&input.cluster.name);
    let claimed = (input.claims.iter()).any(|c| c.name == claim);
    if input.acts && !claimed {
        let claim = etcd_backup::claim(input.cluster, spec);
        plan.actions.push(Action::CreateClaim(Box::new(claim)));
    }
    let schedule = match Schedule::parse(&spec.schedule) {
        Ok(schedule) => schedule,
        // validate refuses it first; this only keeps the function total.
        Err(why) => {
            status.waiting = Some(format!("spec.etcd.backup.schedule: {why}"));
            plan.status = Some(status);
            return plan;
        }
    };
    let recomputed = status.schedule.as_deref() != Some(spec.schedule.as_str());
    let next = match (&status.next_scheduled, recomputed) {
        (Some(next), false) => Some(next.0),
        _ => schedule.next_after(input.now),
    };
    status.schedule = Some(spec.schedule.clone());
    status.next_scheduled = next.map(Time);
    let Some(due) = next.filter(|due| *due <= input.now) else {
        plan.wake_at = next;
        plan.status = Some(status);
        return plan;
    };
    let since = format!("the snapshot due at {due}");
    let member = choose_member(input.members);
    // A copy that cannot be made is not skipped silently: the snapshot waits, and says why.
    let no_uploader = (spec.s3.is_some() && input.uploader_image.is_none()).then_some(
        "spec.etcd.backup.s3 needs the operator's own image, and the operator was started without --job-image (the Helm chart sets it)",
    );
    match (input.acts, &running, member) {
        (false, _, _) => status.waiting = Some(format!("{since} waits: reconciling is paused")),
        (true, _, _) if input.held.or(no_uploader).is_some() => {
            let why = input.held.or(no_uploader).unwrap_or_default();
            status.waiting = Some(format!("{since} waits: {why}"));
        }
        (true, Some(job), _) => {
            status.waiting = Some(format!("{since} waits for Job {job} to finish"));
        }
        (true, None, Err(why)) => status.waiting = Some(format!("{since} waits: {why}")),
        (true, None, Ok(member)) => {
            let run = BackupRun {
                job: etcd_backup_job_name(&input.cluster.name, &due_minute(due)),
                member,
                uploader_image: (spec.s3.as_ref())
                    .and(input.uploader_image)
                    .map(str::to_string),
            };
            let job = etcd_backup::job(input.cluster, spec, &run);
            plan.actions.push(Action::Apply(Box::new(Object::Job(job))));
            status.active_job = Some(run.job);
            let next = schedule.next_after(input.now);
            status.next_scheduled = next.map(Time);
            plan.wake_at = next;
        }
    }
    if status.waiting.is_some() {
        plan.wake_at =
            Some(input.now + k8s_openapi::jiff::SignedDuration::from_secs(WAITING_RECHECK_SECONDS));
    }
    plan.status = Some(status);
    plan
}

/// `YYYYMMDD-hhmm` of a due time (UTC), for the Job's name.
fn due_minute(due: Timestamp) -> String {
    due.to_zoned(TimeZone::UTC)
        .strftime("%Y%m%d-%H%M")
        .to_string()
}

/// The backup Jobs in the order they were due (their names end with that minute).
fn backup_jobs(jobs: &[Job]) -> Vec<(&Job, JobState)> {
    let mut backups: Vec<(&Job, JobState)> = (jobs.iter())
        .filter(|job| component_of(&job.metadata) == Some(ETCD_BACKUP))
        .map(|job| (job, JobState::of(job)))
        .collect();
    backups.sort_by(|a, b| a.1.name.cmp(&b.1.name));
    backups
}

/// The newest Job whose result the status holds.
fn recorded_job(status: &EtcdBackupStatus) -> Option<String> {
    let success = status.last_success.as_ref().map(|s| s.job.clone());
    let failure = status.last_failure.as_ref().map(|f| f.job.clone());
    success.max(failure)
}

/// Records the results of the Jobs that finished since the last pass (in the order they were
/// due), and deletes the finished Jobs the previous status already holds (so a status write
/// that failed loses no result).
fn record_finished(
    input: &BackupInput,
    jobs: &[(&Job, JobState)],
    status: &mut EtcdBackupStatus,
    plan: &mut BackupPlan,
) {
    let recorded = input.previous.and_then(recorded_job);
    for (job, state) in jobs {
        if state.outcome == JobOutcome::Running {
            continue;
        }
        if recorded.as_ref().is_some_and(|r| state.name <= *r) {
            if input.acts {
                plan.actions.push(Action::Delete {
                    kind: ObjectKind::Job,
                    name: state.name.clone(),
                });
            }
            continue;
        }
        match finished(input, job, state) {
            Finished::Success(success) => {
                let copied = (success.bucket_copy.as_ref())
                    .map(|url| format!("; copied to {url}"))
                    .unwrap_or_default();
                plan.events.push(ClusterEvent::normal(
                    "EtcdBackupSucceeded",
                    format!(
                        "etcd snapshot {} taken from {} and verified: revision {}, {} bytes{copied}",
                        success.name, success.member, success.revision, success.size
                    ),
                ));
                status.last_success = Some(success);
            }
            Finished::Failure(failure) => {
                plan.events.push(ClusterEvent::warning(
                    "EtcdBackupFailed",
                    format!("Job {}: {}", failure.job, failure.reason),
                ));
                status.last_failure = Some(failure);
            }
        }
    }
}

/// What a finished Job says: its pods' termination messages, else its failure condition.
fn finished(input: &BackupInput, job: &Job, state: &JobState) -> Finished {
    let pods: Vec<&PodReading> = (input.pods.iter())
        .filter(|p| p.job.as_deref() == Some(&state.name))
        .map(|p| &**p)
        .collect();
    // The last pod to end says how the Job ended.
    let message = (pods.iter())
        .filter_map(|p| terminated(p))
        .max_by(|a, b| a.0.cmp(&b.0))
        .map(|(_, message)| message);
    let failed_at = (job.status.as_ref())
        .and_then(|s| s.conditions.as_ref())
        .and_then(|c| c.iter().find(|c| c.type_ == "Failed" && c.status == "True"))
        .and_then(|c| c.last_transition_time.clone())
        .unwrap_or(Time(input.now));
    let failure = |reason: String| {
        Finished::Failure(EtcdBackupFailure {
            time: failed_at.clone(),
            reason,
            job: state.name.clone(),
        })
    };
    let parsed = message
        .as_deref()
        .map(|m| serde_json::from_str::<JobResult>(m.trim()));
    match (&state.outcome, parsed) {
        (
            JobOutcome::Succeeded,
            Some(Ok(JobResult::Success {
                name,
                taken_at,
                member,
                size,
                revision,
                bucket_copy,
            })),
        ) => match taken_at.parse::<Timestamp>() {
            Ok(time) => Finished::Success(EtcdBackupSuccess {
                location: format!(
                    "pvc/{}/{SNAPSHOTS_DIR}/{name}.db",
                    etcd_backup_claim_name(&input.cluster.name)
                ),
                name,
                time: Time(time),
                revision,
                size,
                member,
                job: state.name.clone(),
                bucket_copy,
            }),
            Err(_) => failure(format!("the Job's result has no time: {taken_at:?}")),
        },
        (_, Some(Ok(JobResult::Failure { reason }))) => failure(reason),
        (JobOutcome::Failed(why), _) if message.is_none() => failure(why.clone()),
        (_, Some(_)) => failure(format!(
            "the Job's result cannot be read: {}",
            trimmed(message.as_deref().unwrap_or_default())
        )),
        (_, None) => failure("the Job's pod is gone: its result cannot be read".to_string()),
    }
}

/// The end time and termination message of the pod's last step that ended: the bucket copy
/// once it ended, else the snapshot step (a container, or the init container before a copy).
/// A snapshot step that succeeded before a copy that never ended says nothing of the Job.
fn terminated(pod: &PodReading) -> Option<(Option<Timestamp>, String)> {
    let ended = |name: &str| {
        (pod.containers.iter().chain(&pod.init_containers))
            .find(|s| s.name == name)
            .and_then(|s| s.state.as_ref()?.terminated())
    };
    let with_copy = (pod.containers.iter()).any(|s| s.name == etcd_backup::UPLOAD_CONTAINER);
    let snapshot = ended(etcd_backup::CONTAINER).filter(|t| !with_copy || t.exit_code != 0);
    let ended = ended(etcd_backup::UPLOAD_CONTAINER).or(snapshot)?;
    Some((ended.finished_at, ended.message.clone().unwrap_or_default()))
}

/// A message from the logs (FallbackToLogsOnError), cut for the status.
fn trimmed(message: &str) -> String {
    let one_line = message.trim().replace('\n', " ");
    match one_line.char_indices().nth(500) {
        Some((cut, _)) => format!("{}…", &one_line[..cut]),
        None => one_line,
    }
}

/// The member to take a snapshot from: a serving voter that is not the leader, the first by
/// name; the leader when no other serves. Serving is enough (a NOSPACE alarm still lets etcd
/// send its database, and then a backup matters most); a CORRUPT alarm is not.
pub fn choose_member(members: Option<&MemberHealth>) -> Result<String, String> {
    let members = members.ok_or("etcd's members have not been read yet")?;
    let corrupt: Vec<&str> = (members.members.iter())
        .filter(|m| m.alarms.contains(&EtcdAlarm::Corrupt))
        .map(|m| m.name.as_str())
        .collect();
    if !corrupt.is_empty() {
        return Err(format!(
            "etcd raises CORRUPT on {}: a snapshot may hold the corrupted data",
            corrupt.join(", ")
        ));
    }
    let mut serving: Vec<_> = (members.members.iter())
        .filter(|m| m.serving && !m.is_learner && !m.name.is_empty())
        .collect();
    serving.sort_by_key(|m| (m.is_leader, m.name.clone()));
    (serving.first().map(|m| m.name.clone())).ok_or_else(|| {
        format!(
            "no etcd member serves ({} of {} healthy)",
            members.healthy, members.total
        )
    })
}

#[cfg(test)]
#[path = "backup_tests.rs"]
mod tests;
