use k8s_openapi::jiff::SignedDuration;
use serde_json::json;

use super::*;
use crate::api::CurveCluster;
use crate::validate::validate;

const NAME: &str = "demo";
const OPERATOR_IMAGE: &str = "opencurvedocker/curve-operator:0.1.0";

fn cluster(backup: Option<serde_json::Value>) -> ValidatedCluster {
    let mut spec = json!({
        "image": "opencurvedocker/curvebs:v1.2.6",
        "chunkservers": {"replicas": 3, "storage": {"size": "100Gi"}},
    });
    if let Some(backup) = backup {
        spec["etcd"] = json!({"backup": backup});
    }
    let cluster: CurveCluster = serde_json::from_value(json!({
        "apiVersion": "curve.opencurve.io/v1alpha1", "kind": "CurveCluster",
        "metadata": {"name": NAME, "namespace": "ns"}, "spec": spec,
    }))
    .unwrap();
    validate(&cluster, "ns").unwrap()
}

fn daily() -> ValidatedCluster {
    cluster(Some(json!({"schedule": "0 3 * * *", "keep": 3})))
}

fn at(text: &str) -> Timestamp {
    text.parse().unwrap()
}

fn members(leader: usize) -> MemberHealth {
    MemberHealth::all_healthy("ns", &["demo-etcd-0", "demo-etcd-1", "demo-etcd-2"], leader)
}

fn claim() -> k8s_openapi::api::core::v1::PersistentVolumeClaim {
    serde_json::from_value(json!({"metadata": {"name": "demo-etcd-backup", "namespace": "ns"}}))
        .unwrap()
}

/// A backup Job as the cache holds it: `outcome` is `running`, `complete` or `failed`.
fn job(name: &str, outcome: &str) -> Job {
    let status = match outcome {
        "complete" => {
            json!({"succeeded": 1, "conditions": [{"type": "Complete", "status": "True"}]})
        }
        "failed" => json!({"failed": 3, "conditions": [{"type": "Failed", "status": "True",
            "reason": "BackoffLimitExceeded", "message": "Job has reached the specified backoff limit",
            "lastTransitionTime": "2026-12-07T03:02:00Z"}]}),
        _ => json!({"active": 1}),
    };
    serde_json::from_value(json!({
        "metadata": {"name": name, "namespace": "ns", "labels": crate::names::etcd_backup_labels(NAME)},
        "status": status,
    }))
    .unwrap()
}

/// A pod of `job` whose backup container ended at `ended` with this termination message.
fn pod(job: &str, index: usize, ended: &str, exit: i32, message: &str) -> Arc<PodReading> {
    let mut labels = crate::names::etcd_backup_labels(NAME);
    labels.insert(crate::names::LABEL_BACKUP_JOB.to_string(), job.to_string());
    let pod: k8s_openapi::api::core::v1::Pod = serde_json::from_value(json!({
        "metadata": {"name": format!("{job}-{index}"), "namespace": "ns", "labels": labels,
            "ownerReferences": [{"apiVersion": "batch/v1", "kind": "Job", "name": job, "uid": "u",
                "controller": true}]},
        "status": {"phase": if exit == 0 { "Succeeded" } else { "Failed" }, "containerStatuses": [{
            "name": "backup", "image": "x", "imageID": "", "ready": false, "restartCount": 0,
            "state": {"terminated": {"exitCode": exit, "finishedAt": ended, "message": message}}
        }]}
    }))
    .unwrap();
    Arc::new(pod.into())
}

struct World {
    cluster: ValidatedCluster,
    previous: Option<EtcdBackupStatus>,
    jobs: Vec<Job>,
    pods: Vec<Arc<PodReading>>,
    claims: Vec<Arc<ClaimReading>>,
    members: Option<MemberHealth>,
    acts: bool,
    held: Option<&'static str>,
    uploader_image: Option<&'static str>,
    now: Timestamp,
}

impl World {
    fn new(now: &str) -> Self {
        World {
            cluster: daily(),
            previous: None,
            jobs: Vec::new(),
            pods: Vec::new(),
            claims: vec![ClaimReading::shared(claim())],
            members: Some(members(1)),
            acts: true,
            held: None,
            uploader_image: Some(OPERATOR_IMAGE),
            now: at(now),
        }
    }

    fn plan(&self) -> BackupPlan {
        plan(&BackupInput {
            cluster: &self.cluster,
            previous: self.previous.as_ref(),
            jobs: &self.jobs,
            pods: &self.pods,
            claims: &self.claims,
            members: self.members.as_ref(),
            acts: self.acts,
            held: self.held,
            uploader_image: self.uploader_image,
            now: self.now,
        })
    }
}

const ENABLED: &str = "2026-12-01T00:00:00Z";

fn scheduled(next: &str) -> EtcdBackupStatus {
    EtcdBackupStatus {
        enabled_at: Some(Time(at(ENABLED))),
        schedule: Some("0 3 * * *".into()),
        next_scheduled: Some(Time(at(next))),
        ..EtcdBackupStatus::default()
    }
}

fn success(job: &str) -> EtcdBackupSuccess {
    EtcdBackupSuccess {
        name: "etcd-20261207T030004Z".into(),
        time: Time(at("2026-12-07T03:00:04Z")),
        revision: 4711,
        size: 20512,
        location: "pvc/demo-etcd-backup/snapshots/etcd-20261207T030004Z.db".into(),
        member: "demo-etcd-0".into(),
        job: job.into(),
        bucket_copy: None,
    }
}

const SUCCESS_MESSAGE: &str = r#"{"result":"success","name":"etcd-20261207T030004Z","takenAt":"2026-12-07T03:00:04Z","member":"demo-etcd-0","size":20512,"revision":4711,"totalKey":7,"hash":3724452919,"pruned":1}"#;

#[test]
fn the_first_pass_creates_the_claim_and_schedules_the_next_firing() {
    let mut world = World::new("2026-12-07T10:27:36Z");
    world.claims.clear();
    let plan = world.plan();
    let backup = world.cluster.spec.etcd.backup.clone().unwrap();
    assert_eq!(
        plan,
        BackupPlan {
            actions: vec![Action::CreateClaim(Box::new(etcd_backup::claim(
                &world.cluster,
                &backup
            )))],
            status: Some(EtcdBackupStatus {
                enabled_at: Some(Time(world.now)),
                ..scheduled("2026-12-08T03:00:00Z")
            }),
            events: Vec::new(),
            wake_at: Some(at("2026-12-08T03:00:00Z")),
        }
    );
}

#[test]
fn a_due_snapshot_is_taken_from_a_follower_and_the_next_one_scheduled() {
    let mut world = World::new("2026-12-08T03:00:02Z");
    world.previous = Some(scheduled("2026-12-08T03:00:00Z"));
    for (leader, member) in [(1, "demo-etcd-0"), (0, "demo-etcd-1")] {
        world.members = Some(members(leader));
        let plan = world.plan();
        let backup = world.cluster.spec.etcd.backup.clone().unwrap();
        let run = BackupRun {
            job: "demo-etcd-backup-20261208-0300".into(),
            member: member.into(),
            // No bucket in the spec: no copy step.
            uploader_image: None,
        };
        assert_eq!(
            plan,
            BackupPlan {
                actions: vec![Action::Apply(Box::new(Object::Job(etcd_backup::job(
                    &world.cluster,
                    &backup,
                    &run
                ))))],
                status: Some(EtcdBackupStatus {
                    active_job: Some(run.job.clone()),
                    ..scheduled("2026-12-09T03:00:00Z")
                }),
                events: Vec::new(),
                wake_at: Some(at("2026-12-09T03:00:00Z")),
            },
            "leader {leader}"
        );
    }
}

#[test]
fn the_leader_is_chosen_only_when_no_other_member_serves() {
    let mut health = members(2);
    assert_eq!(choose_member(Some(&health)).unwrap(), "demo-etcd-0");
    health.members[0].serving = false;
    health.members[1].is_learner = true;
    assert_eq!(choose_member(Some(&health)).unwrap(), "demo-etcd-2");
    health.members[2].serving = false;
    health.healthy = 0;
    assert_eq!(
        choose_member(Some(&health)).unwrap_err(),
        "no etcd member serves (0 of 3 healthy)"
    );
    let mut corrupt = members(0);
    corrupt.members[1].alarms.push(EtcdAlarm::Corrupt);
    assert_eq!(
        choose_member(Some(&corrupt)).unwrap_err(),
        "etcd raises CORRUPT on demo-etcd-1: a snapshot may hold the corrupted data"
    );
    // NOSPACE refuses writes, not a snapshot.
    let mut full = members(0);
    for member in &mut full.members {
        member.alarms.push(EtcdAlarm::NoSpace);
        member.healthy = false;
    }
    assert_eq!(choose_member(Some(&full)).unwrap(), "demo-etcd-1");
}

#[test]
fn a_due_snapshot_waits_while_etcd_does_not_serve_a_job_runs_or_reconciling_is_paused() {
    let recheck =
        |world: &World| Some(world.now + SignedDuration::from_secs(WAITING_RECHECK_SECONDS));
    let due = "the snapshot due at 2026-12-08T03:00:00Z waits";
    let mut world = World::new("2026-12-08T03:05:00Z");
    world.previous = Some(scheduled("2026-12-08T03:00:00Z"));
    let mut cases: Vec<(World, Option<String>, String)> = Vec::new();
    world.members = None;
    cases.push((
        world,
        None,
        format!("{due}: etcd's members have not been read yet"),
    ));
    let mut world = World::new("2026-12-08T03:05:00Z");
    world.previous = Some(scheduled("2026-12-08T03:00:00Z"));
    world.jobs = vec![job("demo-etcd-backup-20261207-0300", "running")];
    let active = Some("demo-etcd-backup-20261207-0300".to_string());
    cases.push((
        world,
        active,
        format!("{due} for Job demo-etcd-backup-20261207-0300 to finish"),
    ));
    let mut world = World::new("2026-12-08T03:05:00Z");
    world.previous = Some(scheduled("2026-12-08T03:00:00Z"));
    world.acts = false;
    cases.push((world, None, format!("{due}: reconciling is paused")));
    for (world, active_job, waiting) in cases {
        assert_eq!(
            world.plan(),
            BackupPlan {
                actions: Vec::new(),
                status: Some(EtcdBackupStatus {
                    active_job,
                    waiting: Some(waiting.clone()),
                    ..scheduled("2026-12-08T03:00:00Z")
                }),
                events: Vec::new(),
                wake_at: recheck(&world),
            },
            "{waiting}"
        );
    }
}

#[test]
fn a_finished_job_is_recorded_then_deleted_once_the_status_holds_it() {
    let job_name = "demo-etcd-backup-20261207-0300";
    let mut world = World::new("2026-12-07T03:01:00Z");
    world.previous = Some(EtcdBackupStatus {
        active_job: Some(job_name.into()),
        ..scheduled("2026-12-08T03:00:00Z")
    });
    world.jobs = vec![job(job_name, "complete")];
    world.pods = vec![pod(job_name, 0, "2026-12-07T03:00:09Z", 0, SUCCESS_MESSAGE)];
    let recorded = EtcdBackupStatus {
        last_success: Some(success(job_name)),
        ..scheduled("2026-12-08T03:00:00Z")
    };
    assert_eq!(
        world.plan(),
        BackupPlan {
            actions: Vec::new(),
            status: Some(recorded.clone()),
            events: vec![ClusterEvent::normal(
                "EtcdBackupSucceeded",
                "etcd snapshot etcd-20261207T030004Z taken from demo-etcd-0 and verified: revision 4711, 20512 bytes".into()
            )],
            wake_at: Some(at("2026-12-08T03:00:00Z")),
        }
    );
    world.previous = Some(recorded.clone());
    assert_eq!(
        world.plan(),
        BackupPlan {
            actions: vec![Action::Delete {
                kind: ObjectKind::Job,
                name: job_name.into()
            }],
            status: Some(recorded),
            events: Vec::new(),
            wake_at: Some(at("2026-12-08T03:00:00Z")),
        }
    );
}

#[test]
fn a_failed_job_records_its_reason_from_the_last_pod_else_from_its_condition() {
    let job_name = "demo-etcd-backup-20261207-0300";
    let refused = r#"{"result":"failure","member":"demo-etcd-0","reason":"verification of the snapshot from demo-etcd-0 failed: its SHA-256 is 00, the stream said ff"}"#;
    let cases = [
        (
            vec![
                pod(
                    job_name,
                    0,
                    "2026-12-07T03:00:09Z",
                    1,
                    "etcdctl snapshot save from demo-etcd-0 failed: context deadline exceeded",
                ),
                pod(job_name, 1, "2026-12-07T03:01:09Z", 1, refused),
            ],
            "verification of the snapshot from demo-etcd-0 failed: its SHA-256 is 00, the stream said ff",
        ),
        // FallbackToLogsOnError: the log's end when the script wrote nothing.
        (
            vec![pod(
                job_name,
                0,
                "2026-12-07T03:00:09Z",
                2,
                "sh: 1: cannot create /backup/snapshots\n",
            )],
            "the Job's result cannot be read: sh: 1: cannot create /backup/snapshots",
        ),
        (
            Vec::new(),
            "BackoffLimitExceeded: Job has reached the specified backoff limit",
        ),
    ];
    for (pods, reason) in cases {
        let mut world = World::new("2026-12-07T03:05:00Z");
        world.previous = Some(EtcdBackupStatus {
            last_success: Some(success("demo-etcd-backup-20261206-0300")),
            ..scheduled("2026-12-08T03:00:00Z")
        });
        world.jobs = vec![
            job(job_name, "failed"),
            job("demo-etcd-backup-20261206-0300", "complete"),
        ];
        world.pods = pods;
        let failure = EtcdBackupFailure {
            time: Time(at("2026-12-07T03:02:00Z")),
            reason: reason.into(),
            job: job_name.into(),
        };
        assert_eq!(
            world.plan(),
            BackupPlan {
                // The older Job's result was recorded: it goes.
                actions: vec![Action::Delete {
                    kind: ObjectKind::Job,
                    name: "demo-etcd-backup-20261206-0300".into()
                }],
                status: Some(EtcdBackupStatus {
                    last_success: Some(success("demo-etcd-backup-20261206-0300")),
                    last_failure: Some(failure),
                    ..scheduled("2026-12-08T03:00:00Z")
                }),
                events: vec![ClusterEvent::warning(
                    "EtcdBackupFailed",
                    format!("Job {job_name}: {reason}")
                )],
                wake_at: Some(at("2026-12-08T03:00:00Z")),
            },
            "{reason}"
        );
    }
}

#[test]
fn a_changed_schedule_is_counted_from_now() {
    let mut world = World::new("2026-12-07T10:27:36Z");
    world.previous = Some(scheduled("2026-12-08T03:00:00Z"));
    world.cluster = cluster(Some(json!({"schedule": "*/15 * * * *"})));
    let plan = world.plan();
    assert_eq!(
        plan.status,
        Some(EtcdBackupStatus {
            schedule: Some("*/15 * * * *".into()),
            next_scheduled: Some(Time(at("2026-12-07T10:30:00Z"))),
            ..scheduled("2026-12-08T03:00:00Z")
        })
    );
    assert_eq!(plan.wake_at, Some(at("2026-12-07T10:30:00Z")));
}

#[test]
fn turned_off_backups_keep_what_was_told_and_schedule_nothing() {
    let mut world = World::new("2026-12-07T10:27:36Z");
    world.cluster = cluster(None);
    assert_eq!(world.plan(), BackupPlan::default());
    world.previous = Some(EtcdBackupStatus {
        last_success: Some(success("demo-etcd-backup-20261206-0300")),
        active_job: Some("x".into()),
        ..scheduled("2026-12-08T03:00:00Z")
    });
    assert_eq!(
        world.plan(),
        BackupPlan {
            status: Some(EtcdBackupStatus {
                last_success: Some(success("demo-etcd-backup-20261206-0300")),
                ..EtcdBackupStatus::default()
            }),
            ..BackupPlan::default()
        }
    );
}

#[test]
fn a_snapshot_due_during_an_etcd_restore_waits_and_says_why() {
    let mut world = World::new("2026-12-07T03:00:30Z");
    world.previous = Some(scheduled("2026-12-07T03:00:00Z"));
    world.held = Some("an etcd restore is under way");
    let plan = world.plan();
    assert!(
        !(plan.actions.iter()).any(|a| matches!(a, Action::Apply(_))),
        "no backup Job while etcd is rebuilt: {:?}",
        plan.actions
    );
    let status = plan.status.unwrap();
    assert_eq!(
        status.waiting.as_deref(),
        Some("the snapshot due at 2026-12-07T03:00:00Z waits: an etcd restore is under way")
    );
    world.held = None;
    assert!((world.plan().actions.iter()).any(|a| matches!(a, Action::Apply(_))));
}

fn with_bucket() -> ValidatedCluster {
    cluster(Some(json!({"schedule": "0 3 * * *", "keep": 3,
        "s3": {"endpoint": "http://minio.storage:9000", "bucket": "backups", "credentialsSecret": "s3-keys"}})))
}

#[test]
fn with_a_bucket_the_job_copies_with_the_operator_image_or_waits_for_it() {
    let mut world = World::new("2026-12-08T03:00:02Z");
    world.cluster = with_bucket();
    world.previous = Some(scheduled("2026-12-08T03:00:00Z"));
    let backup = world.cluster.spec.etcd.backup.clone().unwrap();
    let run = BackupRun {
        job: "demo-etcd-backup-20261208-0300".into(),
        member: "demo-etcd-0".into(),
        uploader_image: Some(OPERATOR_IMAGE.into()),
    };
    assert_eq!(
        world.plan().actions,
        vec![Action::Apply(Box::new(Object::Job(etcd_backup::job(
            &world.cluster,
            &backup,
            &run
        ))))]
    );
    world.uploader_image = None;
    let plan = world.plan();
    assert_eq!(plan.actions, Vec::new());
    assert_eq!(
        plan.status.unwrap().waiting.as_deref(),
        Some(
            "the snapshot due at 2026-12-08T03:00:00Z waits: spec.etcd.backup.s3 needs the operator's own image, and the operator was started without --job-image (the Helm chart sets it)"
        )
    );
}

/// A pod of a Job with a bucket: the snapshot step (an init container) and the copy step.
fn pod_with_copy(job: &str, snapshot: (i32, &str), copy: Option<(i32, &str)>) -> Arc<PodReading> {
    let ended = |(exit, message): (i32, &str)| json!({"terminated": {"exitCode": exit, "finishedAt": "2026-12-07T03:00:09Z", "message": message}});
    let copy_state = copy.map_or(json!({"waiting": {"reason": "PodInitializing"}}), ended);
    let mut labels = crate::names::etcd_backup_labels(NAME);
    labels.insert(crate::names::LABEL_BACKUP_JOB.to_string(), job.to_string());
    let status = |name: &str, state: serde_json::Value| json!({"name": name, "image": "x", "imageID": "", "ready": false, "restartCount": 0, "state": state});
    let pod: k8s_openapi::api::core::v1::Pod = serde_json::from_value(json!({
        "metadata": {"name": format!("{job}-0"), "namespace": "ns", "labels": labels,
            "ownerReferences": [{"apiVersion": "batch/v1", "kind": "Job", "name": job, "uid": "u",
                "controller": true}]},
        "status": {"phase": "Failed",
            "initContainerStatuses": [status("backup", ended(snapshot))],
            "containerStatuses": [status("upload", copy_state)]}
    }))
    .unwrap();
    Arc::new(pod.into())
}

#[test]
fn the_copy_step_says_how_a_job_with_a_bucket_ended() {
    let job_name = "demo-etcd-backup-20261207-0300";
    let copied = SUCCESS_MESSAGE.replace(
        "\"pruned\":1}",
        "\"pruned\":1,\"bucketCopy\":\"http://minio.storage:9000/backups/ns/demo/etcd-20261207T030004Z.db\",\"bucketPruned\":2}",
    );
    let refused = r#"{"result":"failure","member":"demo-etcd-0","reason":"snapshot etcd-20261207T030004Z verified on the claim, but its copy to http://minio.storage:9000/backups/ns/demo/etcd-20261207T030004Z.db failed: PUT http://minio.storage:9000/backups/ns/demo/etcd-20261207T030004Z.db: S3 answered 403 SignatureDoesNotMatch: The request signature we calculated does not match the signature you provided."}"#;
    let snapshot_failed = r#"{"result":"failure","member":"demo-etcd-0","reason":"etcd member demo-etcd-0 does not answer"}"#;
    let copied_success = EtcdBackupSuccess {
        bucket_copy: Some(
            "http://minio.storage:9000/backups/ns/demo/etcd-20261207T030004Z.db".into(),
        ),
        ..success(job_name)
    };
    let failure = |reason: &str| {
        Finished::Failure(EtcdBackupFailure {
            time: Time(at("2026-12-07T03:02:00Z")),
            reason: reason.into(),
            job: job_name.into(),
        })
    };
    let cases = [
        (
            "complete",
            pod_with_copy(job_name, (0, SUCCESS_MESSAGE), Some((0, copied.as_str()))),
            Finished::Success(copied_success),
        ),
        (
            "failed",
            pod_with_copy(job_name, (0, SUCCESS_MESSAGE), Some((1, refused))),
            failure(
                serde_json::from_str::<serde_json::Value>(refused).unwrap()["reason"]
                    .as_str()
                    .unwrap(),
            ),
        ),
        // The copy never ran: the snapshot step's own failure.
        (
            "failed",
            pod_with_copy(job_name, (1, snapshot_failed), None),
            failure("etcd member demo-etcd-0 does not answer"),
        ),
        // Killed at the deadline while copying: the snapshot's success is not the Job's.
        (
            "failed",
            pod_with_copy(job_name, (0, SUCCESS_MESSAGE), None),
            failure("BackoffLimitExceeded: Job has reached the specified backoff limit"),
        ),
    ];
    for (outcome, pod, expected) in cases {
        let mut world = World::new("2026-12-07T03:05:00Z");
        world.cluster = with_bucket();
        let job = job(job_name, outcome);
        world.pods = vec![pod];
        let state = JobState::of(&job);
        let input = BackupInput {
            cluster: &world.cluster,
            previous: None,
            jobs: &[],
            pods: &world.pods,
            claims: &world.claims,
            members: None,
            acts: true,
            held: None,
            uploader_image: Some(OPERATOR_IMAGE),
            now: world.now,
        };
        assert_eq!(finished(&input, &job, &state), expected, "{outcome}");
    }
}
