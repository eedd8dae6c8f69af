//! Housekeeping a long-running cluster needs (issue 30), on a live cluster: the leaders spread
//! by a rapid leader schedule after the bring-up and after each ChunkServer roll step (the MDS
//! stand-in answers `ScheduleService/RapidLeaderSchedule` and moves leaders by
//! C:src/mds/schedule/rapidLeaderScheduler.cpp's rule), the spread visible in the operator's
//! metrics; etcd running with the quota the operator rendered (Debian's etcd reports it);
//! topology Jobs with a deadline and a retry limit; the core dump directory mounted.
//!
//!   KUBECONFIG=/path/to/kubeconfig cargo test -p curve-operator-e2e --test housekeeping -- --ignored
//!
//! Scenario names contain `housekeeping`.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use curve_operator_e2e::curve_model::CurveSettings;
use curve_operator_e2e::env::{TestEnv, condition};
use curve_operator_e2e::manifests::curve_cluster;
use curve_operator_e2e::metrics::label;
use curve_operator_e2e::operator::Operator;
use curve_operator_e2e::util::{eventually, http_get, say};
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::Pod;
use kube::api::ListParams;
use serde_json::json;

const BRING_UP: Duration = Duration::from_secs(180);
const TO_SPREAD: Duration = Duration::from_secs(60);
const ROLL: Duration = Duration::from_secs(240);
/// Copysets of the pool: with 3 ChunkServers and 3 copies each holds all of them.
const COPYSETS: usize = 30;
/// etcd's quota for the default 10Gi volume: (10Gi − 512Mi of WAL room) / 2
/// (docs/user/curvecluster.md, `etcd.quotaBackendBytes`).
const ETCD_QUOTA_BYTES: f64 = 5_100_273_664.0;

/// Leaders per ChunkServer spread to within one: what the rapid schedule reaches when every
/// ChunkServer holds every copyset.
fn spread(leaders: &BTreeMap<u32, usize>) -> Result<(), String> {
    let (min, max) = (leaders.values().min(), leaders.values().max());
    match (min, max) {
        (Some(min), Some(max)) if max - min <= 1 && leaders.values().sum::<usize>() == COPYSETS => {
            Ok(())
        }
        _ => Err(format!("leaders per ChunkServer {leaders:?}")),
    }
}

/// Waits until the stand-in MDS answered `calls` rapid leader schedules and the leaders are
/// spread; returns how long it took.
async fn wait_spread(env: &TestEnv, calls: u32) -> Duration {
    let started = Instant::now();
    eventually(
        &format!("{calls} rapid leader schedules, leaders spread"),
        TO_SPREAD,
        || async {
            let (asked, leaders) = env.kubelet.curve_leader_spread("demo");
            if asked < calls {
                return Err(format!("{asked} schedules asked; leaders {leaders:?}"));
            }
            spread(&leaders)
        },
    )
    .await;
    started.elapsed()
}

/// The operator's `chunkserver_leaders` series for demo agree with the model's spread.
async fn metrics_show_spread(operator: &Operator) {
    eventually("the leader spread in the metrics", TO_SPREAD, || async {
        let samples = operator.samples().await;
        let series = samples.series("curve_operator_chunkserver_leaders");
        let leaders: BTreeMap<u32, usize> = series
            .iter()
            .filter(|(labels, _)| label(labels, "name") == "demo")
            .enumerate()
            .map(|(i, (_, v))| (i as u32, *v as usize))
            .collect();
        if leaders.len() != 3 {
            return Err(format!("series {series:?}"));
        }
        spread(&leaders).map_err(|e| format!("metrics: {e}"))
    })
    .await;
}

/// h. Bring-up and a ChunkServer roll, each followed by a rapid leader schedule; etcd's quota,
/// the Jobs' bounds and the core directory as rendered.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs a Kubernetes API server (KUBECONFIG), see e2e/README.md"]
async fn housekeeping_leaders_spread_after_bring_up_and_each_roll_step() {
    let env = TestEnv::new("housekeeping", 3).await;
    env.kubelet.set_curve_settings(CurveSettings::fast());
    let operator = env.start_operator().await;
    let applied = Instant::now();
    let spec = json!({
        "chunkservers": {"replicas": 3, "copysets": COPYSETS},
        "coreDumps": {"hostPath": "/var/lib/curve/cores"},
    });
    env.kubectl_stdin(
        &["apply", "-f", "-"],
        &curve_cluster("demo", spec).to_string(),
    )
    .ok("apply demo");
    env.wait_available("demo", BRING_UP).await;
    env.wait_copysets_healthy("demo", BRING_UP).await;
    say(&format!(
        "up and healthy {:.1}s after the apply",
        applied.elapsed().as_secs_f64()
    ));

    // The bring-up's rapid schedule: raft's first elections left the lowest id of each
    // copyset leading; one call spreads them.
    let took = wait_spread(&env, 1).await;
    let (asked, leaders) = env.kubelet.curve_leader_spread("demo");
    assert_eq!(asked, 1, "one schedule for one set of ChunkServer pods");
    say(&format!(
        "bring-up: {asked} rapid leader schedule, leaders {leaders:?} ({:.1}s after healthy)",
        took.as_secs_f64()
    ));
    metrics_show_spread(&operator).await;
    let record = env.clusters().get("demo").await.unwrap().status.unwrap();
    assert!(
        record
            .record
            .as_ref()
            .is_some_and(|r| r.leaders_spread_for.is_some()),
        "the asked-for pods are recorded: {:?}",
        record.record
    );

    // etcd runs with the rendered quota and space alarms off.
    for endpoint in env.kubelet.etcd_endpoints() {
        let addr = endpoint.trim_start_matches("http://");
        let (code, body) = http_get(addr, "/metrics", Duration::from_secs(5))
            .await
            .unwrap();
        assert_eq!(code, 200, "{endpoint}/metrics");
        let quota = body
            .lines()
            .find_map(|l| l.strip_prefix("etcd_server_quota_backend_bytes "))
            .and_then(|v| v.trim().parse::<f64>().ok());
        assert_eq!(quota, Some(ETCD_QUOTA_BYTES), "{endpoint}");
    }

    // Topology Jobs end: a deadline and a retry limit on each.
    let jobs = env.api::<Job>().list(&ListParams::default()).await.unwrap();
    assert!(jobs.items.len() >= 3, "{} topology Jobs", jobs.items.len());
    for job in &jobs.items {
        let spec = job.spec.as_ref().unwrap();
        assert_eq!(
            spec.active_deadline_seconds,
            Some(600),
            "{:?}",
            job.metadata.name
        );
        assert!(spec.backoff_limit.is_some(), "{:?}", job.metadata.name);
    }

    // Cores go to the node directory in every daemon.
    let pods = env.api::<Pod>().list(&ListParams::default()).await.unwrap();
    let daemons: Vec<&Pod> = pods
        .items
        .iter()
        .filter(|p| {
            p.metadata
                .owner_references
                .iter()
                .flatten()
                .any(|o| o.kind == "StatefulSet")
        })
        .collect();
    assert_eq!(daemons.len(), 3 + 3 + 3, "etcd, MDS, ChunkServer pods");
    for pod in daemons {
        let spec = pod.spec.as_ref().unwrap();
        let host = spec
            .volumes
            .iter()
            .flatten()
            .find(|v| v.name == "cores")
            .and_then(|v| v.host_path.as_ref())
            .map(|h| h.path.clone());
        assert_eq!(
            host.as_deref(),
            Some("/var/lib/curve/cores"),
            "{:?}",
            pod.metadata.name
        );
        let mounted = spec.containers[0]
            .volume_mounts
            .iter()
            .flatten()
            .any(|m| m.name == "cores" && m.mount_path == "/core");
        assert!(mounted, "{:?}", pod.metadata.name);
    }

    // A ChunkServer roll (one server per step): a rapid schedule after each step, as each
    // step leaves the returned ChunkServer leading nothing.
    let rolled = Instant::now();
    env.patch_spec(
        "demo",
        json!({"chunkservers": {"resources": {"requests": {"cpu": "10m"}}}}),
    )
    .await;
    env.wait_status(
        "demo",
        "the ChunkServer roll complete",
        ROLL,
        |cluster, s| {
            let current = s.observed_generation == cluster.metadata.generation;
            match condition(s, "Progressing") {
                Some(c) if current && c.reason == "Complete" => Ok(()),
                other => Err(format!("Progressing is {other:?}")),
            }
        },
    )
    .await;
    env.wait_available("demo", ROLL).await;
    let took = wait_spread(&env, 1 + 3).await;
    let (asked, leaders) = env.kubelet.curve_leader_spread("demo");
    assert_eq!(asked, 1 + 3, "one schedule per roll step");
    say(&format!(
        "roll of 3 servers in {:.1}s: {} more rapid leader schedules, leaders {leaders:?} ({:.1}s after complete)",
        rolled.elapsed().as_secs_f64(),
        asked - 1,
        took.as_secs_f64()
    ));
    metrics_show_spread(&operator).await;
}

/// Node clocks: a node whose kubelet's clock runs 25 s ahead makes the cluster Degraded
/// (NodeClocksApart, the node and its offset named) within a renewal or two; synchronized
/// again, the condition clears once its ahead renewals are a minute old.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs a Kubernetes API server (KUBECONFIG), see e2e/README.md"]
async fn housekeeping_node_clocks_apart_are_degraded_until_synchronized() {
    let env = TestEnv::new("clocks", 3).await;
    let _operator = env.start_operator().await;
    env.apply_example("curvecluster.yaml");
    env.wait_available("demo", BRING_UP).await;
    let degraded = |s: &curve_operator::api::CurveClusterStatus| {
        condition(s, "Degraded").map(|c| (c.status.clone(), c.reason.clone(), c.message.clone()))
    };
    let status = env.clusters().get("demo").await.unwrap().status.unwrap();
    assert_eq!(
        degraded(&status).map(|d| d.0),
        Some("False".to_string()),
        "synchronized clocks: {:?}",
        degraded(&status)
    );

    let node = env.kubelet.nodes()[1].name.clone();
    let skewed = Instant::now();
    env.kubelet.set_clock_offset(&node, 25);
    env.wait_status(
        "demo",
        "Degraded by the clocks",
        TO_SPREAD,
        |_, s| match degraded(s) {
            Some((status, reason, message))
                if status == "True"
                    && reason == "NodeClocksApart"
                    && message.contains(&format!("{node} +25s")) =>
            {
                Ok(())
            }
            other => Err(format!("Degraded is {other:?}")),
        },
    )
    .await;
    say(&format!(
        "{node} 25 s ahead: NodeClocksApart {:.1}s later",
        skewed.elapsed().as_secs_f64()
    ));

    let synchronized = Instant::now();
    env.kubelet.set_clock_offset(&node, 0);
    env.wait_status(
        "demo",
        "not Degraded",
        TO_SPREAD * 3,
        |_, s| match degraded(s) {
            Some((status, _, _)) if status == "False" => Ok(()),
            other => Err(format!("Degraded is {other:?}")),
        },
    )
    .await;
    say(&format!(
        "{node} synchronized: Degraded False {:.1}s later",
        synchronized.elapsed().as_secs_f64()
    ));
}
