//! etcd backups on a live cluster (issue 33): `spec.etcd.backup` with a schedule of every
//! minute; the operator creates the backup claim and, each minute, a Job whose script the
//! suite's kubelet runs for real against the cluster's real etcd (Debian's etcdctl for the
//! image's) on the claim's directory; the status reports each verified snapshot (name, revision,
//! size, where, from which member), `kubectl get -o wide` its age, the metrics its time and size,
//! and finished Jobs are deleted once recorded.
//!
//! With `spec.etcd.backup.s3`, the Job's copy step (this build's `curve-operator s3-upload`, run
//! by the suite's kubelet for the operator's image) copies each snapshot to a moto server's
//! bucket, the status says where, and the bucket keeps `keep` copies.
//!
//!   KUBECONFIG=/path/to/kubeconfig cargo test -p curve-operator-e2e --test backup -- --ignored

#[path = "../../tests/support/moto.rs"]
mod moto_support;

use std::time::{Duration, Instant};

use curve_operator::api::{CurveClusterStatus, EtcdBackupSuccess};
use curve_operator_e2e::env::TestEnv;
use curve_operator_e2e::manifests::curve_cluster;
use curve_operator_e2e::util::say;
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::PersistentVolumeClaim;
use kube::api::ListParams;
use serde_json::json;

const BRING_UP: Duration = Duration::from_secs(120);
/// The next minute's firing, the Job and its pod, and a reconcile to read it.
const TO_BACKUP: Duration = Duration::from_secs(150);

fn last_success(status: &CurveClusterStatus) -> Option<EtcdBackupSuccess> {
    status.etcd.as_ref()?.backup.as_ref()?.last_success.clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs a Kubernetes API server (KUBECONFIG), see e2e/README.md"]
async fn backup_every_minute_is_taken_verified_and_reported() {
    let env = TestEnv::new("backup", 3).await;
    let operator = env.start_operator().await;
    let spec = json!({"etcd": {"backup": {"schedule": "* * * * *", "keep": 2, "storage": {"size": "1Gi"}}}});
    env.kubectl_stdin(
        &["apply", "-f", "-"],
        &curve_cluster("demo", spec).to_string(),
    )
    .ok("apply demo");
    env.wait_available("demo", BRING_UP).await;
    let claims: kube::Api<PersistentVolumeClaim> = env.api();
    let claim = claims
        .get("demo-etcd-backup")
        .await
        .expect("the backup claim");
    assert_eq!(
        claim.metadata.owner_references, None,
        "the claim outlives the cluster"
    );

    let waiting = Instant::now();
    let first = env
        .wait_status("demo", "a verified snapshot", TO_BACKUP, |_, s| {
            last_success(s)
                .map(drop)
                .ok_or_else(|| "no lastSuccess".to_string())
        })
        .await;
    let status = first.status.unwrap_or_default();
    let success = last_success(&status).unwrap();
    let etcd = status.etcd.clone().unwrap();
    say(&format!(
        "first snapshot {} reported {:.1}s after Available: revision {}, {} bytes, from {}",
        success.name,
        waiting.elapsed().as_secs_f64(),
        success.revision,
        success.size,
        success.member
    ));
    assert!(
        success.name.starts_with("etcd-")
            && success.name.ends_with('Z')
            && success.name.len() == 21,
        "{success:?}"
    );
    assert!(success.revision > 0 && success.size > 0, "{success:?}");
    assert_eq!(
        success.location,
        format!("pvc/demo-etcd-backup/snapshots/{}.db", success.name)
    );
    assert!(success.member.starts_with("demo-etcd-"), "{success:?}");
    // A follower, unless it was the leader at creation (the leader may have moved since).
    if etcd.healthy_members == Some(3) {
        assert_ne!(
            etcd.leader.as_deref(),
            Some(success.member.as_str()),
            "{etcd:?}"
        );
    }
    let backup = etcd.backup.clone().unwrap();
    assert_eq!(backup.last_failure, None, "{backup:?}");
    assert_eq!(backup.schedule.as_deref(), Some("* * * * *"));
    assert!(backup.next_scheduled.is_some(), "{backup:?}");

    // kubectl get -o wide: the age of the last backup.
    let wide = env
        .kubectl(&["get", "curvecluster", "demo", "-o", "wide"])
        .ok("get -o wide");
    let table = curve_operator_e2e::env::parse_table(&wide);
    let age = table[0].get("LAST-BACKUP").cloned().unwrap_or_default();
    assert!(
        age.ends_with('s') || age.ends_with('m'),
        "LAST-BACKUP {age:?} in\n{wide}"
    );

    // The metrics: its time and size.
    let metrics = operator.samples().await;
    let ours = [("namespace", env.bare.namespace.as_str()), ("name", "demo")];
    assert_eq!(
        metrics.sum(
            "curve_operator_etcd_backup_last_success_timestamp_seconds",
            &ours
        ),
        success.time.0.as_second() as f64
    );
    assert_eq!(
        metrics.sum("curve_operator_etcd_backup_last_size_bytes", &ours),
        success.size as f64
    );

    // The next minute's snapshot; the first Job is deleted once its result was recorded.
    let second = env
        .wait_status(
            "demo",
            "a newer verified snapshot",
            TO_BACKUP,
            |_, s| match last_success(s) {
                Some(newer) if newer.name > success.name => Ok(()),
                other => Err(format!("lastSuccess {other:?}")),
            },
        )
        .await;
    let newer = last_success(&second.status.unwrap_or_default()).unwrap();
    assert!(
        newer.revision >= success.revision,
        "{newer:?} after {success:?}"
    );
    let jobs: kube::Api<Job> = env.api();
    let selector = "app.kubernetes.io/component=etcd-backup";
    curve_operator_e2e::util::eventually(
        "the first backup Job deleted",
        Duration::from_secs(60),
        || {
            let jobs = jobs.clone();
            let first_job = success.job.clone();
            async move {
                let names: Vec<String> = (jobs.list(&ListParams::default().labels(selector)).await)
                    .map_err(|e| e.to_string())?
                    .items
                    .into_iter()
                    .filter_map(|j| j.metadata.name)
                    .collect();
                if names.contains(&first_job) {
                    Err(format!("Jobs {names:?}"))
                } else {
                    Ok(())
                }
            }
        },
    )
    .await;
    say(&format!(
        "second snapshot {}: revision {}, {} bytes, from {}",
        newer.name, newer.revision, newer.size, newer.member
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs a Kubernetes API server (KUBECONFIG), see e2e/README.md"]
async fn backup_with_a_bucket_copies_each_snapshot_and_keeps_keep() {
    let env = TestEnv::new("backup-s3", 3).await;
    let _operator = env.start_operator().await;
    // moto without signature checks: its check refuses a listing of a prefix with a `/`
    // (tests/s3_upload.rs checks the signatures).
    let moto = moto_support::moto(false);
    env.kubectl(&[
        "create",
        "secret",
        "generic",
        "s3-keys",
        &format!("--from-literal=AWS_ACCESS_KEY_ID={}", moto.keys.0),
        &format!("--from-literal=AWS_SECRET_ACCESS_KEY={}", moto.keys.1),
    ])
    .ok("create the Secret");
    let spec = json!({"etcd": {"backup": {"schedule": "* * * * *", "keep": 1, "storage": {"size": "1Gi"},
        "s3": {"endpoint": moto.endpoint, "bucket": "backups", "credentialsSecret": "s3-keys"}}}});
    env.kubectl_stdin(
        &["apply", "-f", "-"],
        &curve_cluster("demo", spec).to_string(),
    )
    .ok("apply demo");
    env.wait_available("demo", BRING_UP).await;
    let prefix = format!("{}/demo/", env.bare.namespace);
    let copied = |s: &CurveClusterStatus| {
        last_success(s)
            .filter(|l| l.bucket_copy.is_some())
            .ok_or_else(|| {
                format!(
                    "no lastSuccess with a bucket copy: {:?}",
                    s.etcd.as_ref().and_then(|e| e.backup.as_ref())
                )
            })
    };
    let first = env
        .wait_status(
            "demo",
            "a snapshot copied to the bucket",
            TO_BACKUP,
            |_, s| copied(s).map(drop),
        )
        .await;
    let first = copied(&first.status.unwrap_or_default()).unwrap();
    let url = format!("{}/backups/{prefix}{}.db", moto.endpoint, first.name);
    assert_eq!(first.bucket_copy.as_deref(), Some(url.as_str()));
    let bucket = moto.bucket();
    let db = bucket
        .get(&format!("{prefix}{}.db", first.name))
        .await
        .unwrap();
    assert_eq!(
        db.len() as i64,
        first.size,
        "the copy is the whole snapshot"
    );
    let marker: serde_json::Value = serde_json::from_slice(
        &bucket
            .get(&format!("{prefix}{}.json", first.name))
            .await
            .unwrap(),
    )
    .unwrap();
    assert_eq!(marker["revision"], json!(first.revision));
    say(&format!(
        "{} copied: {} bytes at {url}",
        first.name, first.size
    ));

    // The next minute's: the bucket keeps one copy, the newest.
    let second = env
        .wait_status("demo", "a newer snapshot copied", TO_BACKUP, |_, s| {
            copied(s).and_then(|newer| {
                (newer.name > first.name)
                    .then_some(())
                    .ok_or_else(|| format!("lastSuccess {}", newer.name))
            })
        })
        .await;
    let second = copied(&second.status.unwrap_or_default()).unwrap();
    let mut listed = bucket.list(&prefix).await.unwrap();
    listed.sort();
    assert_eq!(
        listed,
        [
            format!("{prefix}{}.db", second.name),
            format!("{prefix}{}.json", second.name)
        ]
    );
    say(&format!(
        "{} copied, {} pruned from the bucket",
        second.name, first.name
    ));
}
