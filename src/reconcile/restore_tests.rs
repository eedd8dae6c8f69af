//! The restore's phases on plain values: a small world (pods, Jobs, claims, etcd, Curve's
//! counters) moved by the decisions, as the write step, the Job controller and the StatefulSet
//! controller would.

use k8s_openapi::api::batch::v1::{Job, JobCondition, JobStatus};
use k8s_openapi::api::core::v1::{PersistentVolumeClaim, Pod};
use k8s_openapi::jiff::Timestamp;
use serde_json::json;

use std::sync::Arc;

use super::*;
use crate::api::{CountersAdvance, EtcdRestoreSpec};
use crate::etcd::counters::{ADVANCE_MARGIN, encode};
use crate::etcd::{Member, MemberHealth};
use crate::names::Component;

const CLUSTER: &str = "demo";
const SNAPSHOT: &str = "etcd-20260101T000000Z";

fn pod(name: &str, component: &str, labels: serde_json::Value) -> Pod {
    let mut all = json!({
        "app.kubernetes.io/instance": CLUSTER,
        "app.kubernetes.io/component": component,
    });
    crate::util::merge_json(&mut all, &labels);
    serde_json::from_value(json!({"metadata": {"name": name, "labels": all}})).unwrap()
}

fn claim(name: &str) -> PersistentVolumeClaim {
    serde_json::from_value(json!({"metadata": {"name": name}})).unwrap()
}

fn job(name: &str, outcome: Option<bool>) -> Job {
    let mut job: Job = serde_json::from_value(json!({"metadata": {
        "name": name,
        "labels": {"app.kubernetes.io/component": ETCD_RESTORE},
    }}))
    .unwrap();
    job.status = Some(match outcome {
        Some(true) => JobStatus {
            succeeded: Some(1),
            ..JobStatus::default()
        },
        Some(false) => JobStatus {
            failed: Some(1),
            conditions: Some(vec![JobCondition {
                type_: "Failed".into(),
                status: "True".into(),
                reason: Some("BackoffLimitExceeded".into()),
                message: Some("Job has reached the specified backoff limit".into()),
                ..JobCondition::default()
            }]),
            ..JobStatus::default()
        },
        None => JobStatus::default(),
    });
    job
}

/// A pod of a Job that ended with this termination message.
fn job_pod(job: &str, message: &str) -> Pod {
    let mut p = pod(&format!("{job}-x"), ETCD_RESTORE, json!({"job-name": job}));
    p.metadata.owner_references = Some(vec![
        serde_json::from_value(json!({
            "apiVersion": "batch/v1", "kind": "Job", "name": job, "uid": "j", "controller": true
        }))
        .unwrap(),
    ]);
    p.status = serde_json::from_value(json!({"containerStatuses": [{
        "name": "verify", "image": "i", "imageID": "", "ready": false, "restartCount": 0,
        "state": {"terminated": {"exitCode": 1, "message": message}},
    }]}))
    .unwrap();
    p
}

fn healthy(voters: usize, learners: usize) -> MemberHealth {
    let members: Vec<Member> = (0..voters + learners)
        .map(|i| Member {
            id: 0x10 + i as u64,
            name: format!("{CLUSTER}-etcd-{i}"),
            is_learner: i >= voters,
            healthy: true,
            serving: true,
            ..Member::default()
        })
        .collect();
    MemberHealth {
        leader: Some(format!("{CLUSTER}-etcd-0")),
        healthy: members.len() as u32,
        total: members.len() as u32,
        members,
    }
}

fn request(confirmation: Option<&str>) -> EtcdRestoreSpec {
    EtcdRestoreSpec {
        snapshot: SNAPSHOT.into(),
        confirmation: confirmation.map(String::from),
    }
}

fn confirmed() -> EtcdRestoreSpec {
    request(Some(&restore_confirmation(SNAPSHOT)))
}

fn at(second: i64) -> Timestamp {
    Timestamp::from_second(1_780_000_000 + second).unwrap()
}

/// The cluster as the decisions see it, moved by them.
#[derive(Clone)]
struct World {
    request: Option<EtcdRestoreSpec>,
    recorded: Option<EtcdRestoreStatus>,
    mds_pods: usize,
    etcd_pods: usize,
    /// `spec.replicas` of the StatefulSets.
    mds_set: i32,
    etcd_set: i32,
    /// Voting members etcd lists once it serves (0: it does not answer).
    voters: usize,
    claims: Vec<String>,
    jobs: Vec<Job>,
    /// Raw values of `04` and `05` as etcd holds them now.
    counters: (Option<String>, Option<String>),
    /// Whether the next verify Job fails.
    bad_snapshot: bool,
    now: i64,
}

impl World {
    /// A cluster whose etcd lost every member's data: etcd pods run (refusing to start), MDS
    /// pods run (without etcd), the counters are unreadable until etcd serves again.
    fn lost() -> World {
        World {
            request: None,
            recorded: None,
            mds_pods: 3,
            etcd_pods: 3,
            mds_set: 3,
            etcd_set: 3,
            voters: 0,
            claims: (0..3).map(|i| format!("data-{CLUSTER}-etcd-{i}")).collect(),
            jobs: Vec::new(),
            counters: (None, None),
            bad_snapshot: false,
            now: 0,
        }
    }

    fn pods(&self) -> Vec<Pod> {
        let mds = (0..self.mds_pods).map(|i| pod(&format!("{CLUSTER}-mds-{i}"), "mds", json!({})));
        let etcd =
            (0..self.etcd_pods).map(|i| pod(&format!("{CLUSTER}-etcd-{i}"), "etcd", json!({})));
        let mut pods: Vec<Pod> = mds.chain(etcd).collect();
        if self.bad_snapshot {
            pods.extend(self.jobs.iter().map(|j| {
                job_pod(
                    &j.name_any(),
                    "snapshot etcd-20260101T000000Z: hash is 1 but its .json recorded 2",
                )
            }));
        }
        pods
    }

    fn decide(&self) -> RestoreDecision {
        let pods: Vec<Arc<PodReading>> = (self.pods().into_iter())
            .map(|p| Arc::new(p.into()))
            .collect();
        let sets = (self.mds_set, self.etcd_set);
        let set_replicas = move |c: Component| match c {
            Component::Mds => Some(sets.0),
            Component::Etcd => Some(sets.1),
            _ => None,
        };
        let claims: Vec<Arc<ClaimReading>> = (self.claims.iter())
            .map(|c| ClaimReading::shared(claim(c)))
            .collect();
        let members = (self.voters > 0).then(|| healthy(self.voters, 0));
        let serving = self.voters > 0;
        let counters: Option<Result<CounterReading, String>> = Some(if serving {
            Ok(CounterReading {
                inode: self.counters.0.clone(),
                chunk: self.counters.1.clone(),
                revision: 41,
            })
        } else {
            Err("no etcd endpoint answered".into())
        });
        let token = |started: i64| format!("token-{started}");
        // What an operator reads after a restart: the status as JSON.
        let recorded: Option<EtcdRestoreStatus> = (self.recorded.as_ref())
            .map(|r| serde_json::from_value(serde_json::to_value(r).unwrap()).unwrap());
        decide(&RestoreInput {
            cluster: CLUSTER,
            request: self.request.as_ref(),
            recorded: recorded.as_ref(),
            members_wanted: 3,
            pods: &pods,
            set_replicas: &set_replicas,
            jobs: &self.jobs,
            claims: &claims,
            members: members.as_ref(),
            counters: counters.as_ref(),
            new_token: &token,
            now: at(self.now),
        })
    }

    /// Carries the decision out, then plays the controllers and etcd for one pass.
    fn apply(&mut self, d: &RestoreDecision) {
        self.now += 10;
        self.recorded = d.record.clone();
        if let (Some(j), Some(r)) = (d.job, &d.record) {
            let name = j.name(CLUSTER, started_seconds(r));
            let fails = j == RestoreJob::Verify && self.bad_snapshot;
            self.jobs.push(job(&name, Some(!fails)));
        }
        self.jobs.retain(|j| !d.delete_jobs.contains(&j.name_any()));
        self.claims.retain(|c| !d.delete_claims.contains(c));
        if let Some(planned) = &d.advance {
            self.counters = (
                Some(encode(planned.inode.to)),
                Some(encode(planned.chunk.to)),
            );
        }
        // The StatefulSet controller: an MDS StatefulSet held at 0 does not scale down its
        // pods, none of them ready without etcd (OrderedReady): only deleted pods go; released,
        // they come back.
        let deleted = |prefix: &str| {
            (d.delete_pods.iter())
                .filter(|(p, _)| p.starts_with(prefix))
                .count()
        };
        if d.hold_mds {
            self.mds_set = 0;
            self.mds_pods -= deleted(&format!("{CLUSTER}-mds-")).min(self.mds_pods);
        } else {
            self.mds_set = 3;
            self.mds_pods = 3;
        }
        match d.etcd_pods {
            Some(0) => {
                self.etcd_set = 0;
                self.etcd_pods -= deleted(&format!("{CLUSTER}-etcd-")).min(self.etcd_pods);
                self.voters = 0;
            }
            Some(n) => {
                self.etcd_set = n;
                self.etcd_pods = n as usize;
                // The rebuilt member serves once started (after its Job succeeded).
                let restored = (self.jobs.iter()).any(|j| {
                    j.name_any().contains("-restore-")
                        && JobState::of(j).outcome == JobOutcome::Succeeded
                });
                if restored {
                    self.voters = self.voters.max(1);
                }
            }
            // Membership growth: one member more per pass.
            None if self.voters > 0 => {
                self.voters = (self.voters + 1).min(3);
                self.etcd_pods = self.voters;
                self.etcd_set = self.voters as i32;
            }
            None => {}
        }
    }
}

fn phase(d: &RestoreDecision) -> Option<RestorePhase> {
    d.record.as_ref().map(|r| r.phase)
}

#[test]
fn nothing_is_restored_without_the_exact_confirmation() {
    for confirmation in [
        None,
        Some("yes"),
        Some("yes-restore-etcd-from-etcd-20251231T000000Z"),
    ] {
        let mut world = World::lost();
        world.request = Some(request(confirmation));
        let d = world.decide();
        assert_eq!(d.record, None, "{confirmation:?}");
        assert!(!d.hold_mds && d.etcd_pods.is_none() && d.job.is_none());
        let RestoreState::Refused { message } = &d.state else {
            panic!("{:?}", d.state)
        };
        assert!(
            message.contains(
                "spec.etcd.restore.confirmation must be \"yes-restore-etcd-from-etcd-20260101T000000Z\""
            ),
            "{message}"
        );
    }
}

#[test]
fn a_confirmed_request_verifies_the_snapshot_before_stopping_anything() {
    let mut world = World::lost();
    world.request = Some(confirmed());
    let d = world.decide();
    let record = d.record.clone().unwrap();
    assert_eq!(record.phase, RestorePhase::Verifying);
    assert_eq!(record.cluster_token, format!("token-{}", at(0).as_second()));
    assert_eq!(d.job, Some(RestoreJob::Verify));
    assert!(!d.hold_mds && d.etcd_pods.is_none());
    assert!(matches!(d.state, RestoreState::Running { .. }));
}

#[test]
fn a_snapshot_that_fails_verification_is_never_used_and_nothing_stops() {
    let mut world = World::lost();
    world.request = Some(confirmed());
    world.bad_snapshot = true;
    let mut phases = Vec::new();
    for _ in 0..6 {
        let d = world.decide();
        assert_ne!(d.job, Some(RestoreJob::Restore));
        assert!(!d.hold_mds && d.etcd_pods.is_none() && d.advance.is_none());
        phases.push(phase(&d));
        world.apply(&d);
    }
    assert_eq!(
        phases,
        [
            Some(RestorePhase::Verifying),
            Some(RestorePhase::Failed),
            Some(RestorePhase::Failed),
            Some(RestorePhase::Failed),
            Some(RestorePhase::Failed),
            Some(RestorePhase::Failed),
        ]
    );
    let record = world.recorded.clone().unwrap();
    assert!(
        record.message.contains("failed verification and is never used; nothing was stopped: snapshot etcd-20260101T000000Z: hash is 1 but its .json recorded 2"),
        "{}",
        record.message
    );
    let RestoreState::Failed { .. } = world.decide().state else {
        panic!("a failed restore shows as failed")
    };
}

/// The whole restore, pass by pass: the phases in order, the MDS held from the verification
/// to the end, never released before the counters hold their advanced values, and etcd back
/// at every member. At every pass a restarted operator (the record read back from JSON, the
/// decision's actions lost) asks for the same step again.
#[test]
fn a_restore_runs_through_its_phases_and_starts_the_mds_only_after_the_counter_advance() {
    let mut world = World::lost();
    // What the snapshot holds: ids handed out up to 5000 files and 64000 chunks.
    world.request = Some(confirmed());
    let snapshot_counters = (Some("5000".to_string()), Some("64000".to_string()));
    let mut phases = Vec::new();
    let mut released_at = None;
    for pass in 0..30 {
        let d = world.decide();
        if !d.delete_pods.is_empty() {
            assert!(
                world.mds_set == 0
                    && (world.etcd_set == 0
                        || d.delete_pods.iter().all(|(p, _)| p.contains("-mds-"))),
                "pass {pass}: pods deleted only from a StatefulSet at 0: {:?}",
                d.delete_pods
            );
        }
        // An operator killed before carrying the decision out decides the same again.
        assert_eq!(
            world.decide(),
            d,
            "pass {pass}: the decision is a function of its inputs"
        );
        if phase(&d) == Some(RestorePhase::StartingEtcd) && world.counters.0.is_none() {
            // The rebuilt etcd holds the snapshot's counters.
            world.counters = snapshot_counters.clone();
        }
        if phases.last() != Some(&phase(&d)) {
            phases.push(phase(&d));
        }
        let started = world.recorded.is_some() && phase(&d) != Some(RestorePhase::Verifying);
        if started && !d.hold_mds && released_at.is_none() {
            released_at = Some(world.counters.clone());
        }
        world.apply(&d);
        if phase(&d) == Some(RestorePhase::Done) {
            break;
        }
    }
    use RestorePhase::*;
    assert_eq!(
        phases,
        [
            Some(Verifying),
            Some(StoppingMds),
            Some(StoppingEtcd),
            Some(Restoring),
            Some(StartingEtcd),
            Some(AdvancingCounters),
            Some(Rejoining),
            Some(Done),
        ]
    );
    let advanced = (
        Some(encode(5000 + ADVANCE_MARGIN)),
        Some(encode(64000 + ADVANCE_MARGIN)),
    );
    assert_eq!(
        released_at,
        Some(advanced),
        "the MDS starts only once the counters advanced"
    );
    let record = world.recorded.clone().unwrap();
    assert_eq!(record.revision, Some(41));
    assert_eq!(
        record.counters,
        Some(CountersAdvance {
            inode: crate::api::CounterAdvance {
                from: Some(5000),
                to: 5000 + ADVANCE_MARGIN
            },
            chunk: crate::api::CounterAdvance {
                from: Some(64000),
                to: 64000 + ADVANCE_MARGIN
            },
        })
    );
    assert!(record.finished.is_some());
    assert_eq!(world.voters, 3);
    assert_eq!(world.mds_pods, 3);
    // The other members' claims went; member 0's stayed for its Job.
    assert_eq!(world.claims, vec![format!("data-{CLUSTER}-etcd-0")]);
    // Done, the request still in the spec: nothing more happens, the MDS runs.
    let after = world.decide();
    assert_eq!(phase(&after), Some(Done));
    assert!(!after.hold_mds && after.job.is_none() && after.advance.is_none());
    assert_eq!(after.state, RestoreState::None);
}

/// A restart at each phase: the decision from the recorded phase alone (no memory but the
/// status) carries on with that phase's step, never from the start.
#[test]
fn an_operator_restart_at_each_phase_carries_on_from_the_recorded_phase() {
    let mut world = World::lost();
    world.request = Some(confirmed());
    let mut seen = Vec::new();
    for _ in 0..30 {
        let d = world.decide();
        if let Some(record) = &world.recorded {
            // A fresh operator: the same world, its memory only the status.
            let mut restarted = world.clone();
            restarted.recorded = Some(record.clone());
            let again = restarted.decide();
            assert_eq!(again, d);
            let from = record.phase;
            let to = phase(&again).unwrap();
            assert!(to >= from, "{from:?} → {to:?}: a restart never goes back");
            if from > RestorePhase::Verifying {
                assert_ne!(again.job, Some(RestoreJob::Verify), "{from:?}");
            }
            if (RestorePhase::StoppingMds..=RestorePhase::Rejoining).contains(&from)
                && to != RestorePhase::Done
            {
                assert!(again.hold_mds, "{from:?}: the MDS stays stopped");
            }
            seen.push(from);
        }
        world.apply(&d);
        if phase(&d) == Some(RestorePhase::Done) {
            break;
        }
    }
    seen.dedup();
    assert_eq!(seen.len(), 7, "{seen:?}");
}

#[test]
fn removing_the_request_cancels_a_restore_before_etcd_stops_and_not_after() {
    // Before etcd stops: cancelled, the MDS released.
    let mut world = World::lost();
    world.request = Some(confirmed());
    let d = world.decide();
    world.apply(&d);
    let d = world.decide();
    assert_eq!(phase(&d), Some(RestorePhase::StoppingMds));
    world.apply(&d);
    world.request = None;
    let d = world.decide();
    assert_eq!(d.record, None);
    assert!(!d.hold_mds);
    assert_eq!(d.events[0].reason, "EtcdRestoreCancelled");
    assert_eq!(
        d.delete_jobs.len(),
        1,
        "the verify Job goes with the request"
    );

    // Once etcd stopped: it carries on, and says so.
    let mut world = World::lost();
    world.request = Some(confirmed());
    while phase(&world.decide()) != Some(RestorePhase::Restoring) {
        let d = world.decide();
        world.apply(&d);
    }
    world.request = None;
    let d = world.decide();
    assert_eq!(phase(&d), Some(RestorePhase::Restoring));
    assert!(d.hold_mds);
    let RestoreState::Running { message } = &d.state else {
        panic!("{:?}", d.state)
    };
    assert!(
        message.contains("this restore goes to its end"),
        "{message}"
    );
}

#[test]
fn counters_that_cannot_be_read_keep_the_mds_stopped() {
    let mut world = World::lost();
    world.request = Some(confirmed());
    while phase(&world.decide()) != Some(RestorePhase::StartingEtcd) {
        let d = world.decide();
        world.apply(&d);
    }
    let d = world.decide();
    world.apply(&d);
    // etcd answers its member list, its counters not in Curve's encoding.
    world.counters = (Some("12abc".into()), None);
    let d = world.decide();
    assert_eq!(phase(&d), Some(RestorePhase::AdvancingCounters));
    assert!(d.hold_mds && d.advance.is_none());
    assert!(
        d.record
            .unwrap()
            .message
            .contains("not Curve's decimal id counter"),
        "the record says why"
    );
}

#[test]
fn an_etcd_with_a_quorum_is_never_restored() {
    let mut world = World::lost();
    world.request = Some(confirmed());
    world.voters = 3;
    let decision = world.decide();
    assert_eq!(decision.record, None, "nothing recorded, nothing stopped");
    assert!(!decision.hold_mds);
    assert_eq!(decision.etcd_pods, None);
    assert!(decision.job.is_none() && decision.delete_claims.is_empty());
    let RestoreState::Refused { message } = &decision.state else {
        panic!("refused: {:?}", decision.state)
    };
    assert!(
        message.contains("etcd has a quorum (3 of 3 voters healthy, leader demo-etcd-0)"),
        "{message}"
    );
    // Once the quorum is gone, the same request starts.
    world.voters = 0;
    assert_eq!(
        world.decide().record.map(|r| r.phase),
        Some(RestorePhase::Verifying)
    );
}
