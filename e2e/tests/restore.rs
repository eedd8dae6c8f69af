//! The etcd restore on a live cluster (issue 33, items 3 and 4): a verified snapshot taken into
//! the backup claim's directory with Debian's etcdctl, every etcd member's data destroyed, the
//! restore asked for without and then with its confirmation; the operator's Jobs run for real
//! (the fake kubelet runs restore Job scripts as root on the claims' directories), and the
//! cluster comes back Available with the snapshot's keys, Curve's id counters advanced and an
//! elected MDS primary.
//!
//!   KUBECONFIG=/path/to/kubeconfig cargo test -p curve-operator-e2e --test restore -- --ignored
//!
//! Scenario names contain `restore`.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use curve_operator::api::{RestorePhase, restore_confirmation};
use curve_operator::etcd::counters::ADVANCE_MARGIN;
use curve_operator_e2e::curve_model::CurveSettings;
use curve_operator_e2e::env::{TestEnv, condition};
use curve_operator_e2e::manifests::curve_cluster;
use curve_operator_e2e::util::{eventually, say};
use k8s_openapi::api::core::v1::Pod;
use kube::api::ListParams;
use serde_json::json;

const BRING_UP: Duration = Duration::from_secs(180);
const RESTORE: Duration = Duration::from_secs(240);
const SNAPSHOT: &str = "etcd-20260101T000000Z";
const ETCD_PODS: &str = "app.kubernetes.io/instance=demo,app.kubernetes.io/component=etcd";

fn etcdctl(endpoint: &str, args: &[&str]) -> String {
    let out = Command::new("/usr/bin/etcdctl")
        .env("ETCDCTL_API", "3")
        .arg(format!("--endpoints={endpoint}"))
        .args(args)
        .output()
        .expect("run etcdctl");
    assert!(
        out.status.success(),
        "etcdctl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// The value of `key`, or None.
fn get(endpoint: &str, key: &str) -> Option<String> {
    let out = etcdctl(endpoint, &["get", key, "--print-value-only"]);
    let value = out.trim_end_matches('\n');
    (!value.is_empty()).then(|| value.to_string())
}

/// A snapshot as the backup takes it: `snapshot save`, then its `.json` written after
/// `snapshot status -w json` verified it.
fn take_snapshot(endpoint: &str, backup: &Path) {
    let dir = backup.join("snapshots");
    std::fs::create_dir_all(&dir).unwrap();
    let db = dir.join(format!("{SNAPSHOT}.db"));
    etcdctl(endpoint, &["snapshot", "save", db.to_str().unwrap()]);
    let status = etcdctl(
        endpoint,
        &["snapshot", "status", db.to_str().unwrap(), "-w", "json"],
    );
    let mut json: serde_json::Value = serde_json::from_str(status.trim()).unwrap();
    json["member"] = "demo-etcd-0".into();
    json["takenAt"] = "2026-01-01T00:00:00Z".into();
    std::fs::write(dir.join(format!("{SNAPSHOT}.json")), json.to_string()).unwrap();
}

/// r. Every etcd member's data lost; a restore without, then with, its confirmation.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs a Kubernetes API server (KUBECONFIG), see e2e/README.md"]
async fn restore_brings_a_cluster_whose_etcd_was_lost_back_from_a_verified_snapshot() {
    let env = TestEnv::new("restore", 3).await;
    env.kubelet.set_curve_settings(CurveSettings::fast());
    let mut operator = env.start_operator().await;
    let spec = json!({"chunkservers": {"replicas": 3, "copysets": 30}});
    env.kubectl_stdin(
        &["apply", "-f", "-"],
        &curve_cluster("demo", spec).to_string(),
    )
    .ok("apply demo");
    env.wait_available("demo", BRING_UP).await;

    // Curve's keys as its MDS holds them: the id counters in Curve's encoding, a volume.
    let endpoint = env.kubelet.etcd_endpoints()[0].clone();
    for (key, value) in [("04", "1002"), ("05", "65000"), ("0100000001vol", "file")] {
        etcdctl(&endpoint, &["put", key, value]);
    }
    // The backup claim (the backup's, made here) and a verified snapshot on it.
    let claim = json!({
        "apiVersion": "v1", "kind": "PersistentVolumeClaim",
        "metadata": {"name": "demo-etcd-backup", "labels": {"app.kubernetes.io/instance": "demo"}},
        "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}},
    });
    env.kubectl_stdin(&["apply", "-f", "-"], &claim.to_string())
        .ok("apply the backup claim");
    let backup = env.kubelet.claim_volume("demo-etcd-backup").await;
    take_snapshot(&endpoint, &backup);
    // After the snapshot: ids handed out, a volume created; then every member's data goes.
    for (key, value) in [("04", "3002"), ("05", "99000"), ("0100000002after", "file")] {
        etcdctl(&endpoint, &["put", key, value]);
    }
    env.kubelet.hold("etcd");
    env.kubectl(&["delete", "pod", "-l", ETCD_PODS, "--wait=false"])
        .ok("delete the etcd pods");
    let pods = env.api::<Pod>();
    let node_of_member_0 = eventually("3 new etcd pods, held", BRING_UP, || async {
        let list = pods
            .list(&ListParams::default().labels(ETCD_PODS))
            .await
            .map_err(|e| e.to_string())?;
        let fresh: Vec<&Pod> = (list.items.iter())
            .filter(|p| p.metadata.deletion_timestamp.is_none())
            .collect();
        let bound = |p: &&Pod| p.spec.as_ref().and_then(|s| s.node_name.clone());
        if fresh.len() == 3
            && fresh.iter().all(|p| bound(p).is_some())
            && env.kubelet.etcd_endpoints().is_empty()
        {
            let zero = fresh
                .iter()
                .find(|p| p.metadata.name.as_deref() == Some("demo-etcd-0"));
            Ok(zero.and_then(bound).unwrap_or_default())
        } else {
            Err(format!(
                "{} new etcd pods; {} members run",
                fresh.len(),
                env.kubelet.etcd_endpoints().len()
            ))
        }
    })
    .await;
    for i in 0..3 {
        env.kubelet
            .wipe_claim_volume(&format!("data-demo-etcd-{i}"))
            .await;
    }
    env.kubelet.release("etcd");
    // The backup's volume attaches where member 0's does (the Job mounts both).
    env.kubelet
        .move_volume("demo-etcd-backup", &node_of_member_0);
    env.wait_status(
        "demo",
        "etcd without quorum",
        BRING_UP,
        |_, s| match condition(s, "EtcdQuorate") {
            Some(c) if c.status == "False" => Ok(()),
            other => Err(format!("EtcdQuorate {other:?}")),
        },
    )
    .await;

    // Without the confirmation: refused, and said so.
    env.patch_spec("demo", json!({"etcd": {"restore": {"snapshot": SNAPSHOT}}}))
        .await;
    env.wait_status(
        "demo",
        "the restore refused",
        BRING_UP,
        |_, s| match condition(s, "Progressing") {
            Some(c)
                if c.reason == "EtcdRestoreRefused"
                    && c.message.contains(&restore_confirmation(SNAPSHOT)) =>
            {
                Ok(())
            }
            other => Err(format!("Progressing {other:?}")),
        },
    )
    .await;
    assert!(
        (env.clusters()
            .get("demo")
            .await
            .unwrap()
            .status
            .unwrap()
            .etcd)
            .and_then(|e| e.restore)
            .is_none(),
        "nothing recorded without the confirmation"
    );

    // With it: the cluster comes back.
    let asked = Instant::now();
    let confirmation = restore_confirmation(SNAPSHOT);
    env.patch_spec(
        "demo",
        json!({"etcd": {"restore": {"snapshot": SNAPSHOT, "confirmation": confirmation}}}),
    )
    .await;
    // The operator is SIGKILLed and started again each time the recorded phase changes: each
    // restarted operator carries on from the status alone.
    let deadline = Instant::now() + RESTORE;
    let mut phases: Vec<RestorePhase> = Vec::new();
    let done = loop {
        let cluster = env.clusters().get("demo").await.unwrap();
        let status = cluster.status.clone().unwrap_or_default();
        let phase = (status.etcd.as_ref())
            .and_then(|e| e.restore.as_ref().map(|r| (r.phase, r.message.clone())));
        match phase {
            Some((RestorePhase::Done, _)) => break cluster,
            Some((RestorePhase::Failed, why)) => panic!("the restore failed: {why}"),
            Some((phase, _)) if phases.last() != Some(&phase) => {
                phases.push(phase);
                operator.kill();
                operator.restart().await;
            }
            _ => {}
        }
        assert!(
            Instant::now() < deadline,
            "restore not done within {RESTORE:?}: phases {phases:?}; {}",
            curve_operator_e2e::env::summary(&status)
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    say(&format!(
        "restore: the operator SIGKILLed and restarted at phases {phases:?}"
    ));
    assert!(phases.len() >= 3, "killed at {phases:?}");
    let restored_in = asked.elapsed();
    let cluster = env.wait_available("demo", RESTORE).await;
    let available_in = asked.elapsed();
    let status = cluster.status.unwrap();
    let record = (done.status.unwrap().etcd.unwrap().restore).unwrap();
    say(&format!(
        "restore: Done {:.1}s after the confirmation, Available again after {:.1}s (revision {:?})",
        restored_in.as_secs_f64(),
        available_in.as_secs_f64(),
        record.revision
    ));
    assert!(
        status
            .mds
            .as_ref()
            .and_then(|m| m.primary.as_ref())
            .is_some(),
        "an MDS primary is elected"
    );
    let endpoint = env.kubelet.etcd_endpoints()[0].clone();
    assert_eq!(env.kubelet.etcd_endpoints().len(), 3, "every member back");
    assert_eq!(get(&endpoint, "0100000001vol").as_deref(), Some("file"));
    assert_eq!(
        get(&endpoint, "0100000002after"),
        None,
        "what came after the snapshot is lost"
    );
    let inode: u64 = get(&endpoint, "04").unwrap().parse().unwrap();
    let chunk: u64 = get(&endpoint, "05").unwrap().parse().unwrap();
    assert_eq!(
        (inode, chunk),
        (1002 + ADVANCE_MARGIN, 65000 + ADVANCE_MARGIN)
    );
    assert!(
        inode > 3002 && chunk > 99000,
        "past every id handed out after the snapshot"
    );
}
