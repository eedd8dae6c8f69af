//! Curve's health, read natively by the operator from the MDS and ChunkServer stand-ins (which
//! serve Curve's topology calls, bvars and braft's `/raft_stat` from one model of the
//! cluster's copysets), in the status, and as the gate of a ChunkServer roll.
//!
//!   KUBECONFIG=/path/to/kubeconfig cargo test -p curve-operator-e2e --test health -- --ignored

use std::time::{Duration, Instant};

use curve_operator::api::{CurveClusterStatus, HealthVerdict};
use curve_operator_e2e::curve_model::CurveSettings;
use curve_operator_e2e::env::{TestEnv, condition};
use curve_operator_e2e::gates::gate_times;
use curve_operator_e2e::manifests::curve_cluster;
use curve_operator_e2e::util::say;
use k8s_openapi::api::core::v1::Pod;
use kube::ResourceExt;
use serde_json::json;

const BRING_UP: Duration = Duration::from_secs(120);
/// The operator reads every 2 s in the suite; two periods and the stand-ins' own delays.
const TO_VERDICT: Duration = Duration::from_secs(30);

fn verdict(status: &CurveClusterStatus) -> Option<HealthVerdict> {
    status.health.as_ref().map(|h| h.verdict)
}

fn uids(pods: &[Pod], prefix: &str) -> Vec<(String, String)> {
    let mut found: Vec<(String, String)> = (pods.iter())
        .filter(|p| p.name_any().starts_with(prefix))
        .map(|p| (p.name_any(), p.uid().unwrap_or_default()))
        .collect();
    found.sort();
    found
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs a Kubernetes API server (KUBECONFIG), see e2e/README.md"]
async fn health_is_read_natively_shown_and_gates_the_chunkserver_roll() {
    let env = TestEnv::new("health", 3).await;
    env.kubelet.set_curve_settings(CurveSettings {
        miss_timeout: Duration::from_secs(3),
        offline_timeout: Duration::from_secs(600),
        heartbeat_interval: Duration::from_secs(1),
        metric_interval: Duration::from_secs(2),
        ..CurveSettings::default()
    });
    let _operator = env.start_operator().await;
    let applied = Instant::now();
    env.kubectl_stdin(
        &["apply", "-f", "-"],
        &curve_cluster("demo", json!({})).to_string(),
    )
    .ok("apply demo");
    env.wait_available("demo", BRING_UP).await;

    // Healthy, with the model's copysets.
    let copysets = env.kubelet.curve_copyset_count("demo") as i64;
    assert!(copysets > 0, "the model placed no copyset");
    let healthy = env
        .wait_status(
            "demo",
            "HEALTH Healthy with every copyset",
            TO_VERDICT,
            |_, s| {
                let counted = s.health.as_ref().and_then(|h| h.copysets.as_ref());
                match (verdict(s), counted) {
                    (Some(HealthVerdict::Healthy), Some(c)) if c.total == copysets => Ok(()),
                    other => Err(format!("health {other:?}")),
                }
            },
        )
        .await;
    say(&format!(
        "healthy with {copysets} copysets {:.1}s after the apply",
        applied.elapsed().as_secs_f64()
    ));
    let status = healthy.status.unwrap_or_default();
    let copysets_healthy = condition(&status, "CopysetsHealthy").expect("CopysetsHealthy");
    assert_eq!(
        (
            copysets_healthy.status.as_str(),
            copysets_healthy.reason.as_str()
        ),
        ("True", "Healthy")
    );
    let row = env.kubectl_get_cluster("demo");
    assert_eq!(
        row.get("HEALTH").map(String::as_str),
        Some("Healthy"),
        "{row:?}"
    );

    // A ChunkServer stops: its copysets are named, with it.
    let stopped = "demo-chunkserver-0-1";
    let id = env
        .kubelet
        .chunkserver_id(stopped)
        .expect("a registered ChunkServer");
    let on_it = env.kubelet.curve_copysets_per_chunkserver("demo")[&id].len();
    let down = Instant::now();
    env.kubelet.stop_chunkserver(stopped);
    let unhealthy = env
        .wait_status("demo", "its copysets unhealthy", TO_VERDICT, |_, s| {
            let health = s.health.as_ref().ok_or("no health")?;
            let bad = health.copysets.as_ref().map_or(0, |c| c.unhealthy);
            let named = (health.copysets.iter())
                .flat_map(|c| &c.problems)
                .any(|p| !p.chunkservers.is_empty());
            if health.verdict == HealthVerdict::Unhealthy && bad > 0 && named {
                Ok(())
            } else {
                Err(format!("{:?}: {bad} unhealthy", health.verdict))
            }
        })
        .await;
    let status = unhealthy.status.unwrap_or_default();
    let health = status.health.clone().unwrap();
    say(&format!(
        "unhealthy {:.1}s after {stopped} (ChunkServer {id}, {on_it} copysets) stopped: {}",
        down.elapsed().as_secs_f64(),
        health.message.clone().unwrap_or_default()
    ));
    assert_eq!(
        health.copysets.as_ref().unwrap().unhealthy as usize,
        on_it,
        "exactly the copysets with a copy on it"
    );
    let degraded = condition(&status, "Degraded").unwrap();
    assert_eq!(degraded.status, "True", "{degraded:?}");
    let copysets_healthy = condition(&status, "CopysetsHealthy").unwrap();
    assert_eq!(copysets_healthy.reason, "Unhealthy");

    // Back: healthy again.
    let back = Instant::now();
    env.kubelet.start_chunkserver(stopped);
    wait_healthy(&env, TO_VERDICT * 2).await;
    say(&format!(
        "healthy {:.1}s after {stopped} was started again",
        back.elapsed().as_secs_f64()
    ));

    // Its raft groups fail while its process runs (its pod stays Ready, as on a disk error):
    // an image change rolls etcd and the MDS, then waits at the ChunkServers.
    let failed = Instant::now();
    env.kubelet.fail_chunkserver_copysets(stopped, true);
    let unhealthy = env
        .wait_status(
            "demo",
            "copysets unhealthy, pods ready",
            TO_VERDICT,
            |_, s| {
                let ready = condition(s, "ChunkServersReady").is_some_and(|c| c.status == "True");
                match verdict(s) {
                    Some(HealthVerdict::Unhealthy) if ready => Ok(()),
                    other => Err(format!("{other:?}, ChunkServers ready: {ready}")),
                }
            },
        )
        .await;
    say(&format!(
        "unhealthy {:.1}s after {stopped}'s copysets failed (pod Ready)",
        failed.elapsed().as_secs_f64()
    ));
    let status = unhealthy.status.unwrap_or_default();
    let degraded = condition(&status, "Degraded").unwrap();
    assert_eq!(
        (degraded.status.as_str(), degraded.reason.as_str()),
        ("True", "CopysetsUnhealthy")
    );
    let pods = env.api::<Pod>();
    let before = uids(
        &pods.list(&Default::default()).await.unwrap().items,
        "demo-chunkserver-",
    );
    env.patch_spec("demo", json!({"image": "opencurvedocker/curvebs:v1.2.7"}))
        .await;
    let waiting = "chunkservers: 0/3 updated, waiting: Curve's health is unhealthy";
    env.wait_status(
        "demo",
        "the roll to wait at the ChunkServers",
        Duration::from_secs(180),
        |_, s| {
            let progressing = condition(s, "Progressing").ok_or("no Progressing")?;
            if progressing.message.contains(waiting) {
                Ok(())
            } else {
                Err(format!("{}: {}", progressing.reason, progressing.message))
            }
        },
    )
    .await;
    tokio::time::sleep(Duration::from_secs(6)).await;
    let during = uids(
        &pods.list(&Default::default()).await.unwrap().items,
        "demo-chunkserver-",
    );
    assert_eq!(
        before, during,
        "no ChunkServer pod replaced while copysets are unhealthy"
    );
    say("the roll waits at the ChunkServers while copysets are unhealthy (6 s, no pod replaced)");

    // The copysets back: healthy, and the roll goes on, server by server; the gate time is
    // from a replaced server's pod Ready (with healthy copysets) to the next server's deletion.
    let gates = tokio::spawn(gate_times(env.api::<Pod>(), "demo-chunkserver-"));
    let restored = Instant::now();
    env.kubelet.fail_chunkserver_copysets(stopped, false);
    wait_healthy(&env, TO_VERDICT).await;
    say(&format!(
        "healthy {:.1}s after the copysets came back",
        restored.elapsed().as_secs_f64()
    ));
    env.wait_available("demo", Duration::from_secs(300)).await;
    gates.abort();
    let after = uids(
        &pods.list(&Default::default()).await.unwrap().items,
        "demo-chunkserver-",
    );
    assert!(
        before.iter().all(|b| !after.contains(b)),
        "every ChunkServer pod replaced once healthy: {before:?} → {after:?}"
    );
    say(&format!(
        "the roll finished {:.1}s after the copysets came back",
        restored.elapsed().as_secs_f64()
    ));

    // The primary's listen port refuses: Unknown, naming it.
    let cluster = env.clusters().get("demo").await.unwrap();
    let mds = cluster.status.unwrap_or_default().mds.unwrap();
    let (primary, address) = (mds.primary.unwrap(), mds.primary_address.unwrap());
    let refused = Instant::now();
    env.kubelet.mds_refuse_listen(&primary, true);
    env.wait_status("demo", "Unknown naming the primary", TO_VERDICT, |_, s| {
        let health = s.health.as_ref().ok_or("no health")?;
        let message = health.message.clone().unwrap_or_default();
        if health.verdict == HealthVerdict::Unknown && message.contains(&address) {
            Ok(())
        } else {
            Err(format!("{:?}: {message}", health.verdict))
        }
    })
    .await;
    say(&format!(
        "Unknown {:.1}s after {primary}'s listen port ({address}) refused",
        refused.elapsed().as_secs_f64()
    ));
    env.kubelet.mds_refuse_listen(&primary, false);
    env.wait_status("demo", "healthy again", TO_VERDICT, |_, s| {
        match verdict(s) {
            Some(HealthVerdict::Healthy) => Ok(()),
            other => Err(format!("{other:?}")),
        }
    })
    .await;
}

async fn wait_healthy(env: &TestEnv, limit: Duration) {
    env.wait_status("demo", "healthy", limit, |_, s| match verdict(s) {
        Some(HealthVerdict::Healthy) => Ok(()),
        other => Err(format!("{other:?}")),
    })
    .await;
}
