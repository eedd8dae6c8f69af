//! etcd backups against real etcd (Debian's `etcd` and `/usr/bin/etcdctl`): the backup Job's
//! script, exactly as the operator renders it (`desired::etcd_backup::SCRIPT` with the Job's
//! environment), run by `sh` against a 3-member cluster with a temporary directory as the
//! claim's `/backup`, from the member the operator's own choice picks (read through its etcd
//! client). A snapshot is taken and verified and its `.json` written; `keep` prunes the oldest
//! and unverified ones; a corrupted or truncated snapshot is refused (no `.db`, no `.json`, a
//! failure result); and the operator's decision reads the result from the termination message.
//! With a bucket (`spec.etcd.backup.s3`), the Job's two steps run in turn as it renders them: the
//! script, then `curve-operator s3-upload` against moto (tests/support/moto.rs); the copy comes
//! back byte for byte and the operator records where it is.

#[path = "support/etcd.rs"]
mod etcd_support;
#[path = "support/moto.rs"]
mod moto_support;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use curve_operator::api::{CurveCluster, EtcdBackupStatus};
use curve_operator::desired::etcd_backup::{self, BackupRun};
use curve_operator::etcd::{ClusterKey, EtcdClients, EtcdObserver, MemberHealth};
use curve_operator::reconcile::backup::{self, BackupInput};
use curve_operator::validate::{ValidatedCluster, validate};
use etcd_support::{EtcdCluster, TempDir, etcdctl_binary};

fn cluster(keep: i32) -> ValidatedCluster {
    let cluster: CurveCluster = serde_json::from_value(json!({
        "apiVersion": "curve.opencurve.io/v1alpha1", "kind": "CurveCluster",
        "metadata": {"name": "demo", "namespace": "ns"},
        "spec": {"image": "opencurvedocker/curvebs:v1.2.6",
                 "chunkservers": {"replicas": 3, "storage": {"size": "100Gi"}},
                 "etcd": {"backup": {"schedule": "* * * * *", "keep": keep}}},
    }))
    .unwrap();
    validate(&cluster, "ns").unwrap()
}

/// What one run of the script left: its exit status, its termination message and output.
struct Run {
    ok: bool,
    message: String,
    output: String,
    took: Duration,
}

/// Runs the Job's script as the Job would, with `etcdctl` for the image's and `backup` for the
/// claim's mount; the member's URL is its loopback endpoint (the Job uses its DNS name).
fn run_script(
    cluster: &ValidatedCluster,
    member: &str,
    endpoint: &str,
    backup: &Path,
    etcdctl: &Path,
) -> Run {
    let spec = cluster.spec.etcd.backup.clone().unwrap();
    let run = BackupRun {
        job: "demo-etcd-backup-20261207-0300".into(),
        member: member.into(),
        uploader_image: None,
    };
    let log = backup.join("termination-log");
    let _ = std::fs::remove_file(&log);
    let started = Instant::now();
    let out = Command::new("sh")
        .arg("-c")
        .arg(etcd_backup::SCRIPT)
        .envs(etcd_backup::script_env(cluster, &spec, &run))
        .env("CURVE_BACKUP_ENDPOINT", format!("http://{endpoint}"))
        .env("CURVE_ETCDCTL", etcdctl)
        .env("CURVE_BACKUP_DIR", backup)
        .env("CURVE_TERMINATION_LOG", &log)
        .output()
        .expect("run sh");
    Run {
        ok: out.status.success(),
        message: std::fs::read_to_string(&log).unwrap_or_default(),
        output: format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
        took: started.elapsed(),
    }
}

fn snapshots(backup: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(backup.join("snapshots"))
        .map(|dir| {
            dir.filter_map(|e| e.ok()?.file_name().into_string().ok())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

/// The member the operator would take a snapshot from, read through its own etcd client.
async fn chosen_member(etcd: &EtcdCluster) -> (String, String, MemberHealth) {
    let (clients, _changes) = EtcdClients::new();
    let key = ClusterKey {
        namespace: "ns".into(),
        name: "demo".into(),
    };
    let members = clients
        .observe(&key, &etcd.endpoints())
        .await
        .members
        .expect("etcd's members read");
    let name = backup::choose_member(Some(&members)).unwrap();
    let endpoint = (etcd.members.iter())
        .find(|m| m.name == name)
        .unwrap()
        .endpoint();
    (name, endpoint, members)
}

/// Curve-like content: `count` values of `size` bytes under `02` (segments), and the id
/// counters.
async fn write_keys(etcd: &EtcdCluster, count: usize, size: usize) -> i64 {
    let mut client = etcd_client::Client::connect(etcd.endpoints(), None)
        .await
        .unwrap();
    let value = vec![b'x'; size];
    let mut revision = 0;
    for i in 0..count {
        let put = client
            .put(format!("02{i:08}"), value.clone(), None)
            .await
            .unwrap();
        revision = put.header().unwrap().revision();
    }
    for counter in ["04", "05"] {
        let put = client.put(counter, "5000", None).await.unwrap();
        revision = put.header().unwrap().revision();
    }
    revision
}

/// The operator's decision reading a finished Job whose pod ended with `message`.
fn status_from(cluster: &ValidatedCluster, message: &str, succeeded: bool) -> EtcdBackupStatus {
    let job_name = "demo-etcd-backup-20261207-0300";
    let labels = curve_operator::names::etcd_backup_labels("demo");
    let job_status = if succeeded {
        json!({"succeeded": 1, "conditions": [{"type": "Complete", "status": "True"}]})
    } else {
        json!({"failed": 3, "conditions": [{"type": "Failed", "status": "True", "reason": "BackoffLimitExceeded"}]})
    };
    let job = serde_json::from_value(json!({
        "metadata": {"name": job_name, "labels": labels}, "status": job_status}))
    .unwrap();
    let mut pod_labels = labels.clone();
    pod_labels.insert(
        curve_operator::names::LABEL_BACKUP_JOB.into(),
        job_name.into(),
    );
    let pod: k8s_openapi::api::core::v1::Pod = serde_json::from_value(json!({
        "metadata": {"name": format!("{job_name}-x"), "labels": pod_labels,
            "ownerReferences": [{"apiVersion": "batch/v1", "kind": "Job", "name": job_name, "uid": "j"}]},
        "status": {"containerStatuses": [{"name": "backup", "image": "x", "imageID": "", "ready": false,
            "restartCount": 0, "state": {"terminated": {"exitCode": i32::from(!succeeded),
            "finishedAt": "2026-12-07T03:00:09Z", "message": message}}}]}}))
    .unwrap();
    let plan = backup::plan(&BackupInput {
        cluster,
        previous: None,
        jobs: &[job],
        pods: &[std::sync::Arc::new(pod.into())],
        claims: &[],
        members: None,
        acts: true,
        held: None,
        uploader_image: None,
        now: "2026-12-07T03:01:00Z".parse().unwrap(),
    });
    plan.status.unwrap()
}

fn etcdctl_json(args: &[&str]) -> Value {
    let out = Command::new(etcdctl_binary())
        .args(args)
        .output()
        .expect("run etcdctl");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

#[tokio::test]
async fn backup_snapshots_are_taken_from_a_follower_verified_and_pruned_to_keep() {
    let etcd = EtcdCluster::start(3).await;
    // About 16 MiB of segments, for the figures in docs/dev/measurements.md.
    let revision = write_keys(&etcd, 2000, 8192).await;
    let (member, endpoint, members) = chosen_member(&etcd).await;
    assert_ne!(
        Some(&member),
        members.leader.as_ref(),
        "a follower is chosen"
    );
    let dir = TempDir::new("backup");
    let backup = dir.path();
    let cluster = cluster(2);
    // An unverified leftover (a .db without its .json) and a killed run's partial file.
    std::fs::create_dir_all(backup.join("snapshots")).unwrap();
    std::fs::write(backup.join("snapshots/etcd-20000101T000000Z.db"), b"junk").unwrap();
    std::fs::write(
        backup.join("snapshots/.etcd-20000101T000001Z.db.part"),
        b"junk",
    )
    .unwrap();

    let first = run_script(&cluster, &member, &endpoint, backup, &etcdctl_binary());
    assert!(first.ok, "{}\n{}", first.message, first.output);
    let result: Value = serde_json::from_str(&first.message).unwrap();
    let name = result["name"].as_str().unwrap().to_string();
    assert_eq!(
        snapshots(backup),
        [format!("{name}.db"), format!("{name}.json")]
    );
    let db = backup.join(format!("snapshots/{name}.db"));
    let size = std::fs::metadata(&db).unwrap().len();
    println!(
        "    | backup of {} keys: {:.2} s (save and verify), snapshot {size} bytes",
        result["totalKey"],
        first.took.as_secs_f64()
    );
    // The .json: what `etcdctl snapshot status` says of the .db, plus member and takenAt.
    let written: Value =
        serde_json::from_str(&std::fs::read_to_string(db.with_extension("json")).unwrap()).unwrap();
    let status = etcdctl_json(&["snapshot", "status", "-w", "json", db.to_str().unwrap()]);
    for field in ["hash", "revision", "totalKey", "totalSize"] {
        assert_eq!(written[field], status[field], "{field}");
    }
    assert_eq!(written["revision"], json!(revision));
    assert!(written["totalKey"].as_i64().unwrap() >= 2002, "{written}");
    assert_eq!(written["member"], json!(member));
    let taken = written["takenAt"].as_str().unwrap();
    assert_eq!(result["takenAt"].as_str(), Some(taken));
    assert_eq!(result["size"], json!(size));
    assert_eq!(result["revision"], json!(revision));
    // The operator reads the result from the termination message.
    let recorded = status_from(&cluster, &first.message, true);
    let success = recorded.last_success.unwrap();
    assert_eq!(
        (
            success.name.as_str(),
            success.revision,
            success.size,
            success.member.as_str()
        ),
        (name.as_str(), revision, size as i64, member.as_str())
    );
    assert_eq!(success.time.0.to_string(), taken);
    assert_eq!(
        success.location,
        format!("pvc/demo-etcd-backup/snapshots/{name}.db")
    );

    // keep: 2. Names have whole seconds: one run per second.
    let mut taken_names = vec![name];
    for _ in 0..3 {
        std::thread::sleep(Duration::from_millis(1100));
        write_keys(&etcd, 1, 10).await;
        let run = run_script(&cluster, &member, &endpoint, backup, &etcdctl_binary());
        assert!(run.ok, "{}\n{}", run.message, run.output);
        let result: Value = serde_json::from_str(&run.message).unwrap();
        taken_names.push(result["name"].as_str().unwrap().to_string());
    }
    let newest: Vec<String> = taken_names[2..]
        .iter()
        .flat_map(|n| [format!("{n}.db"), format!("{n}.json")])
        .collect();
    assert_eq!(snapshots(backup), newest);
}

#[tokio::test]
async fn backup_refuses_a_corrupted_or_truncated_snapshot_and_an_unreachable_member() {
    let etcd = EtcdCluster::start(3).await;
    write_keys(&etcd, 50, 100).await;
    let (member, endpoint, _) = chosen_member(&etcd).await;
    let dir = TempDir::new("backup");
    let cluster = cluster(7);
    // etcdctl whose `snapshot save` leaves a damaged file, as a bad disk or a cut stream would.
    let wrapper = |name: &str, damage: &str| -> PathBuf {
        let path = dir.path().join(name);
        std::fs::write(
            &path,
            format!(
                "#!/bin/sh\n{etcdctl} \"$@\" || exit $?\ncase \"$*\" in *'snapshot save'*)\n  for f; do file=$f; done\n  {damage}\nesac\n",
                etcdctl = etcdctl_binary().display()
            ),
        )
        .unwrap();
        Command::new("chmod").arg("+x").arg(&path).status().unwrap();
        path
    };
    let flip = wrapper(
        "etcdctl-flip",
        "printf 'Z' | dd of=\"$file\" bs=1 seek=5000 conv=notrunc 2>/dev/null",
    );
    let cut = wrapper("etcdctl-cut", "truncate -s 8192 \"$file\"");
    let backup = dir.path().join("claim");
    let cases = [
        (
            flip,
            endpoint.clone(),
            format!("verification of the snapshot from {member} failed: its SHA-256 is "),
        ),
        (
            cut,
            endpoint.clone(),
            format!(
                "verification of the snapshot from {member} failed: 8192 bytes, not a database and its SHA-256"
            ),
        ),
        (
            etcdctl_binary(),
            "127.0.0.1:1".to_string(),
            format!(
                "etcd member {member} (http://127.0.0.1:1) does not answer: Failed to get the status of endpoint http://127.0.0.1:1 (context deadline exceeded)"
            ),
        ),
    ];
    for (etcdctl, endpoint, reason) in cases {
        let run = run_script(&cluster, &member, &endpoint, &backup, &etcdctl);
        assert!(!run.ok, "{}", run.output);
        let result: Value =
            serde_json::from_str(&run.message).unwrap_or_else(|e| panic!("{e}: {:?}", run.message));
        assert_eq!(result["result"], "failure");
        let said = result["reason"].as_str().unwrap();
        assert!(said.starts_with(&reason), "{said}");
        // Nothing left: no .db, no .json, no partial file.
        assert_eq!(snapshots(&backup), Vec::<String>::new(), "{reason}");
        let recorded = status_from(&cluster, &run.message, false);
        assert_eq!(recorded.last_failure.unwrap().reason, said);
        assert_eq!(recorded.last_success, None);
    }
}

/// The Job with a bucket, step by step as it renders them: the snapshot script (its init
/// container), then this build's `curve-operator s3-upload` with the container's own args, the
/// pod's `/backup` and `/result` mounts on temporary directories; the operator reads the copy
/// step's result.
#[tokio::test]
async fn with_a_bucket_the_verified_snapshot_is_copied_and_recorded() {
    let etcd = EtcdCluster::start(3).await;
    write_keys(&etcd, 200, 1024).await;
    let (member, endpoint, _) = chosen_member(&etcd).await;
    let moto = moto_support::moto(true);
    let cluster: CurveCluster = serde_json::from_value(json!({
        "apiVersion": "curve.opencurve.io/v1alpha1", "kind": "CurveCluster",
        "metadata": {"name": "demo", "namespace": "ns"},
        "spec": {"image": "opencurvedocker/curvebs:v1.2.6",
                 "chunkservers": {"replicas": 3, "storage": {"size": "100Gi"}},
                 "etcd": {"backup": {"schedule": "* * * * *", "keep": 2, "s3": {
                     "endpoint": moto.endpoint, "bucket": "backups", "prefix": "",
                     "credentialsSecret": "s3-keys"}}}},
    }))
    .unwrap();
    let cluster = validate(&cluster, "ns").unwrap();
    let spec = cluster.spec.etcd.backup.clone().unwrap();
    let run = BackupRun {
        job: "demo-etcd-backup-20261207-0300".into(),
        member: member.clone(),
        uploader_image: Some("curve-operator:test".into()),
    };
    let dir = TempDir::new("backup-s3");
    let (backup, result) = (dir.path().join("backup"), dir.path().join("result"));
    std::fs::create_dir_all(&result).unwrap();
    // The pod's mounts, on the host.
    let on_host = |arg: &str| {
        (arg.replace("=/backup/", &format!("={}/", backup.display())))
            .replace("=/result/", &format!("={}/", result.display()))
    };
    let snapshot_log = dir.path().join("snapshot-termination-log");
    let env = etcd_backup::script_env(&cluster, &spec, &run);
    let out = Command::new("sh")
        .arg("-c")
        .arg(etcd_backup::SCRIPT)
        .envs(&env)
        .env("CURVE_BACKUP_ENDPOINT", format!("http://{endpoint}"))
        .env(
            "CURVE_BACKUP_RESULT",
            // `/result/snapshot.json` in the pod.
            result.join(
                Path::new(&env["CURVE_BACKUP_RESULT"])
                    .strip_prefix("/result")
                    .unwrap(),
            ),
        )
        .env("CURVE_ETCDCTL", etcdctl_binary())
        .env("CURVE_BACKUP_DIR", &backup)
        .env("CURVE_TERMINATION_LOG", &snapshot_log)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let snapshot_message = std::fs::read_to_string(&snapshot_log).unwrap();

    let job = etcd_backup::job(&cluster, &spec, &run);
    let pod = job.spec.unwrap().template.spec.unwrap();
    let copy = &pod.containers[0];
    let copy_log = dir.path().join("copy-termination-log");
    let args: Vec<String> = (copy.args.iter().flatten())
        .map(|a| on_host(a).replace("=/dev/termination-log", &format!("={}", copy_log.display())))
        .collect();
    let out = Command::new(env!("CARGO_BIN_EXE_curve-operator"))
        .args(&args)
        .env("AWS_ACCESS_KEY_ID", &moto.keys.0)
        .env("AWS_SECRET_ACCESS_KEY", &moto.keys.1)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let copy_message = std::fs::read_to_string(&copy_log).unwrap();

    // The operator reads the copy step, which ended last.
    let job_name = run.job.as_str();
    let labels = curve_operator::names::etcd_backup_labels("demo");
    let mut pod_labels = labels.clone();
    pod_labels.insert(
        curve_operator::names::LABEL_BACKUP_JOB.into(),
        job_name.into(),
    );
    let ended = |name: &str, message: &str| {
        json!({"name": name, "image": "x", "imageID": "", "ready": false, "restartCount": 0,
            "state": {"terminated": {"exitCode": 0, "finishedAt": "2026-12-07T03:00:09Z", "message": message}}})
    };
    let pod: k8s_openapi::api::core::v1::Pod = serde_json::from_value(json!({
        "metadata": {"name": format!("{job_name}-x"), "labels": pod_labels,
            "ownerReferences": [{"apiVersion": "batch/v1", "kind": "Job", "name": job_name, "uid": "j"}]},
        "status": {"initContainerStatuses": [ended("backup", &snapshot_message)],
                   "containerStatuses": [ended("upload", &copy_message)]}}))
    .unwrap();
    let job = serde_json::from_value(json!({"metadata": {"name": job_name, "labels": labels},
        "status": {"succeeded": 1, "conditions": [{"type": "Complete", "status": "True"}]}}))
    .unwrap();
    let plan = backup::plan(&BackupInput {
        cluster: &cluster,
        previous: None,
        jobs: &[job],
        pods: &[std::sync::Arc::new(pod.into())],
        claims: &[],
        members: None,
        acts: true,
        held: None,
        uploader_image: Some("curve-operator:test"),
        now: "2026-12-07T03:01:00Z".parse().unwrap(),
    });
    let success = plan.status.unwrap().last_success.unwrap();
    let name = success.name.clone();
    assert_eq!(
        success.bucket_copy,
        Some(format!("{}/backups/{name}.db", moto.endpoint))
    );
    assert_eq!(success.member, member);
    let on_claim = std::fs::read(backup.join(format!("snapshots/{name}.db"))).unwrap();
    let copied = moto.bucket().get(&format!("{name}.db")).await.unwrap();
    assert_eq!(copied.len(), on_claim.len());
    assert!(
        copied == on_claim[..],
        "the copy's bytes differ from the claim's"
    );
    let marker = moto.bucket().get(&format!("{name}.json")).await.unwrap();
    assert_eq!(
        marker,
        std::fs::read(backup.join(format!("snapshots/{name}.json"))).unwrap()
    );
}
