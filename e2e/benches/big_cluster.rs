//! Big-cluster benchmark: one CurveCluster of 300 servers × 4 disks (1200 ChunkServers, 5 etcd
//! members, 5 MDS) brought up to Available by the operator on the API server in KUBECONFIG,
//! the suite's kubelet playing the 300 nodes (real etcd, the Curve stand-ins), then held
//! steady. A bench target (no libtest harness); run it with
//!
//!   KUBECONFIG=/path/to/kubeconfig cargo bench -p curve-operator-e2e --bench big_cluster --profile dev
//!
//! `CURVE_BENCH_SERVERS`, `CURVE_BENCH_DISKS` and `CURVE_BENCH_COPYSETS` (copysets per
//! ChunkServer) change the size, `CURVE_BENCH_STEADY_SECONDS` the steady phase (180 s). What it prints is in docs/dev/testing.md; figures measured
//! in docs/dev/measurements.md.

use std::time::{Duration, Instant};

use curve_operator::api::{CurveClusterStatus, HealthVerdict};
use curve_operator_e2e::bench::{
    self, ClusterWatch, KubeletMilestones, Reading, load_average, machine, operator_build,
    reconciles, requests_by, row, verb_and_resource,
};
use curve_operator_e2e::curve_model::CurveSettings;
use curve_operator_e2e::env::TestEnv;
use curve_operator_e2e::manifests::curve_cluster;
use curve_operator_e2e::metrics::{KUBE_REQUESTS, Labels, Metrics};
use curve_operator_e2e::operator::Operator;
use curve_operator_e2e::util::say;
use kube::api::{Patch, PatchParams};
use serde_json::json;

const NAME: &str = "big";
/// The operator's own default period of Curve's health reading (the scenarios use 2 s).
const HEALTH_PERIOD_SECONDS: u64 = 15;
/// A ready ChunkServer's readiness script (`sh` and `curl`) runs this often, not every
/// second: one host plays every node's kubelet.
const READY_PROBE_PERIOD: Duration = Duration::from_secs(30);
const BRING_UP_LIMIT: Duration = Duration::from_secs(3600);
const HEALTHY_LIMIT: Duration = Duration::from_secs(600);
/// How long the cluster is held steady, measured (`CURVE_BENCH_STEADY_SECONDS`).
const STEADY_SECONDS: usize = 180;
/// Metadata changes, each a reconcile that changes nothing.
const NO_OP_RECONCILES: u64 = 3;
const RECONCILE_DURATION: &str = "curve_operator_reconcile_duration_seconds";
const STEP_DURATION: &str = "curve_operator_reconcile_step_duration_seconds";
const HEALTH_READ: &str = "curve_operator_health_read_duration_seconds";
const STEPS: [&str; 3] = ["read", "decide", "write"];

fn main() {
    bench::main("big cluster", big_cluster);
}

/// A size from the environment, or its default.
fn size(variable: &str, default: usize) -> usize {
    std::env::var(variable)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Curve's timings on the stand-ins: a heartbeat every 2 s, UNSTABLE after 20 s without one
/// (one busy host must not make a ChunkServer look lost), the topology bvars a few seconds
/// after the election.
fn curve_settings() -> CurveSettings {
    CurveSettings {
        heartbeat_interval: Duration::from_secs(2),
        miss_timeout: Duration::from_secs(20),
        offline_timeout: Duration::from_secs(600),
        metric_interval: Duration::from_secs(5),
        ..CurveSettings::default()
    }
}

/// Every copyset healthy as the operator read it, with the model's count.
fn copysets_healthy(status: &CurveClusterStatus, copysets: usize) -> Result<(), String> {
    let health = status.health.as_ref().ok_or("no health yet")?;
    let counted = health.copysets.as_ref().map(|c| (c.total, c.unhealthy));
    match counted {
        Some((total, 0))
            if total == copysets as i64 && health.verdict == HealthVerdict::Healthy =>
        {
            Ok(())
        }
        other => Err(format!(
            "{:?}: (total, unhealthy) {other:?} of {copysets}",
            health.verdict
        )),
    }
}

/// Samples the operator's resident memory every second, keeping the highest; also what
/// `VmHWM` says at the end.
struct PeakRss {
    peak: std::sync::Arc<std::sync::Mutex<f64>>,
    task: tokio::task::JoinHandle<()>,
}

impl PeakRss {
    fn start(pid: u32) -> PeakRss {
        let peak = std::sync::Arc::new(std::sync::Mutex::new(0.0_f64));
        let task = tokio::spawn({
            let peak = peak.clone();
            async move {
                loop {
                    let [rss, ..] = bench::memory(pid);
                    {
                        let mut p = peak.lock().unwrap();
                        *p = p.max(rss);
                    }
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
            }
        });
        PeakRss { peak, task }
    }

    fn peak(&self) -> f64 {
        *self.peak.lock().unwrap()
    }
}

impl Drop for PeakRss {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Reconciles, their time in all and per step, between two readings.
fn reconcile_rows(label: &str, from: &Metrics, to: &Metrics) {
    let count = reconciles(to) - reconciles(from);
    let total = to.grown(from, &format!("{RECONCILE_DURATION}_sum"), &[]);
    row(
        &format!("{label}: reconciles, their time in all"),
        &format!("{count} in {total:.2} s"),
    );
    for step in STEPS {
        let with = [("step", step)];
        let sum = to.grown(from, &format!("{STEP_DURATION}_sum"), &with);
        let p50 = to.histogram_quantile(from, STEP_DURATION, &with, 0.5);
        let p99 = to.histogram_quantile(from, STEP_DURATION, &with, 0.99);
        let ms = |v: Option<f64>| v.map_or("-".into(), |v| format!("{:.1}", v * 1000.0));
        row(
            &format!("  {step}: in all; p50, p99 per reconcile (ms)"),
            &format!("{sum:.2} s; {}, {}", ms(p50), ms(p99)),
        );
    }
    let p50 = to.histogram_quantile(from, RECONCILE_DURATION, &[], 0.5);
    let p99 = to.histogram_quantile(from, RECONCILE_DURATION, &[], 0.99);
    let ms = |v: Option<f64>| v.map_or("-".into(), |v| format!("{:.0}", v * 1000.0));
    row(
        "  whole reconcile p50, p99 (ms; buckets ×2)",
        &format!("{}, {}", ms(p50), ms(p99)),
    );
}

/// The API requests the no-op reconciles sent, except watches re-established and the
/// leader election's Lease: none is allowed.
fn costly_requests(before: &Metrics, after: &Metrics) -> Vec<String> {
    let allowed = |labels: &Labels| {
        labels.get("verb").map(String::as_str) == Some("watch")
            || labels.get("resource").map(String::as_str) == Some("leases")
    };
    (after.growth(before, KUBE_REQUESTS).into_iter())
        .filter(|(labels, _)| !allowed(labels))
        .map(|(labels, delta)| format!("{delta:+} {}", verb_and_resource(&labels)))
        .collect()
}

async fn no_op_reconciles(env: &TestEnv, operator: &Operator) -> (u64, Vec<String>) {
    let before = operator.samples().await;
    let since = operator.reconciles().await;
    for round in 1..=NO_OP_RECONCILES {
        let stamp = format!("{round}-{}", env.started.elapsed().as_nanos());
        let patch = json!({"metadata": {"annotations": {"e2e.curve.opencurve.io/no-op": stamp}}});
        (env.clusters())
            .patch(NAME, &PatchParams::default(), &Patch::Merge(patch))
            .await
            .expect("annotate the cluster");
        operator.wait_reconciles(since, round).await;
    }
    let after = operator.samples().await;
    let done = operator.reconciles().await - since;
    (done, costly_requests(&before, &after))
}

async fn big_cluster() {
    let servers = size("CURVE_BENCH_SERVERS", 300);
    let disks = size("CURVE_BENCH_DISKS", 4);
    let copysets = size("CURVE_BENCH_COPYSETS", 20);
    let steady_for = Duration::from_secs(size("CURVE_BENCH_STEADY_SECONDS", STEADY_SECONDS) as u64);
    let load_at_start = load_average();
    let env = TestEnv::new("big", servers).await;
    env.kubelet.set_curve_settings(curve_settings());
    env.kubelet.set_ready_probe_period(READY_PROBE_PERIOD);
    let watch = ClusterWatch::start(&env);
    watch.wait_listed().await;
    let operator = env
        .start_operator_with_health_period(HEALTH_PERIOD_SECONDS)
        .await;
    let pid = operator.pid().expect("the operator runs");
    let peak = PeakRss::start(pid);
    let idle = Reading::of(&operator).await;

    let spec = json!({
        "etcd": {"replicas": 5},
        "mds": {"replicas": 5},
        "chunkservers": {"replicas": servers, "disksPerNode": disks, "copysets": copysets},
    });
    let applied = Instant::now();
    let kubelet_at_apply = env.kubelet.uptime().as_secs_f64();
    env.kubectl_stdin(
        &["apply", "-f", "-"],
        &curve_cluster(NAME, spec).to_string(),
    )
    .ok("apply the cluster");
    env.wait_available(NAME, BRING_UP_LIMIT).await;
    let available_in = applied.elapsed();
    let kubelet = KubeletMilestones::of(&env.kubelet.log());
    let available = Reading::of(&operator).await;
    let writes_at_available = watch.updates();
    let load_at_available = load_average();

    let copyset_count = env.kubelet.curve_copyset_count(NAME);
    env.wait_status(NAME, "every copyset healthy", HEALTHY_LIMIT, |_, s| {
        copysets_healthy(s, copyset_count)
    })
    .await;
    let healthy_in = applied.elapsed();
    // Steady: a reconcile that started after all of the above has finished.
    env.settle(&operator, NAME).await;
    let steady_from = Reading::of(&operator).await;
    let writes_before = watch.updates();
    let steady_started = Instant::now();
    tokio::time::sleep(steady_for).await;
    let steady_to = Reading::of(&operator).await;
    let steady_ended = Instant::now();
    let steady_writes = watch.updates() - writes_before;
    let load_at_steady = load_average();
    let (no_ops, costly) = no_op_reconciles(&env, &operator).await;
    let end = Reading::of(&operator).await;
    let peak_rss = peak.peak().max(end.rss);

    let pods = servers * disks + 10;
    say(&format!(
        "BIG CLUSTER BENCHMARK: 1 CurveCluster, {servers} servers × {disks} disks = {} \
         ChunkServers, 5 etcd, 5 MDS ({pods} pods), {copysets} copysets per ChunkServer \
         ({copyset_count} in the pool), on {servers} emulated nodes",
        servers * disks
    ));
    say(&format!("machine: {}", machine()));
    say(&format!(
        "load average (1 min): {load_at_start} at the start, {load_at_available} at Available, \
         {load_at_steady} after the steady phase"
    ));
    say(&format!("operator: {}", operator_build()));
    say(&format!(
        "health read every {HEALTH_PERIOD_SECONDS} s (the operator's default); a ready \
         ChunkServer's readiness probe every {} s",
        READY_PROBE_PERIOD.as_secs()
    ));
    say("");
    row(
        "apply → Available (every StatefulSet rolled out)",
        &format!("{:.1} s", available_in.as_secs_f64()),
    );
    row(
        "apply → every copyset healthy in the status",
        &format!("{:.1} s", healthy_in.as_secs_f64()),
    );
    let since_apply =
        |t: Option<f64>| t.map_or("-".into(), |t| format!("{:.1} s", t - kubelet_at_apply));
    row(
        &format!(
            "apply → the kubelet bound the last of {} pods",
            kubelet.pods_bound
        ),
        &since_apply(kubelet.last_bound),
    );
    row(
        &format!(
            "apply → the kubelet made the last of {} pods ready",
            kubelet.pods_ready
        ),
        &since_apply(kubelet.last_ready),
    );
    reconcile_rows(
        "bring-up (apply → Available)",
        &idle.metrics,
        &available.metrics,
    );
    let own = available
        .metrics
        .grown(&idle.metrics, &format!("{RECONCILE_DURATION}_sum"), &[]);
    row(
        "  the rest: kubelet, StatefulSet controller, waits",
        &format!("{:.1} s", available_in.as_secs_f64() - own),
    );
    row(
        "  operator CPU time during the bring-up",
        &format!("{:.1} s", available.cpu - idle.cpu),
    );
    row(
        "  CurveCluster writes during the bring-up",
        &writes_at_available.to_string(),
    );
    let steady_seconds = steady_to.at.duration_since(steady_from.at).as_secs_f64();
    reconcile_rows(
        &format!("steady ({steady_seconds:.0} s)"),
        &steady_from.metrics,
        &steady_to.metrics,
    );
    row(
        "  CurveCluster writes per minute",
        &format!("{:.2}", steady_writes as f64 * 60.0 / steady_seconds),
    );
    for (change, count) in watch.changes_between(steady_started, steady_ended) {
        say(&format!("    {count} × {change}"));
    }
    row(
        "  operator CPU seconds per minute",
        &format!(
            "{:.2}",
            (steady_to.cpu - steady_from.cpu) * 60.0 / steady_seconds
        ),
    );
    let reads = steady_to
        .metrics
        .grown(&steady_from.metrics, &format!("{HEALTH_READ}_count"), &[]);
    let read_time =
        steady_to
            .metrics
            .grown(&steady_from.metrics, &format!("{HEALTH_READ}_sum"), &[]);
    let read_p99 =
        (steady_to.metrics).histogram_quantile(&steady_from.metrics, HEALTH_READ, &[], 0.99);
    row(
        "  health readings; mean, p99 of one (every MDS and ChunkServer)",
        &format!(
            "{reads}; {:.2} s, {}",
            read_time / reads.max(1.0),
            read_p99.map_or("-".into(), |v| format!("{v:.2} s"))
        ),
    );
    for (when, r) in [
        ("before the apply", &idle),
        ("at Available", &available),
        ("after the steady phase", &steady_to),
    ] {
        row(
            &format!("VmRSS {when} (RssAnon, RssFile)"),
            &format!("{:.1} MiB ({:.1}, {:.1})", r.rss, r.anon, r.file),
        );
    }
    row(
        "peak RSS: VmHWM; highest VmRSS sampled each second",
        &format!("{:.1} MiB; {peak_rss:.1} MiB", end.hwm),
    );
    row(
        &format!("API requests of {no_ops} no-op reconciles (not watch/leases)"),
        &costly.len().to_string(),
    );
    for series in &costly {
        say(&format!("    {series}"));
    }
    say("");
    say("API requests by verb and resource: bring-up, steady (per minute)");
    let bring_up = requests_by(Some(&idle.metrics), &available.metrics, verb_and_resource);
    let steady = requests_by(
        Some(&steady_from.metrics),
        &steady_to.metrics,
        verb_and_resource,
    );
    if let (Some(bring_up), Some(steady)) = (bring_up, steady) {
        let mut series: Vec<&String> = bring_up.keys().chain(steady.keys()).collect();
        series.sort();
        series.dedup();
        for name in series {
            let during = steady.get(name).copied().unwrap_or(0.0);
            row(
                &format!("  {name}"),
                &format!(
                    "{}, {:.2}",
                    bring_up.get(name).copied().unwrap_or(0.0),
                    during * 60.0 / steady_seconds
                ),
            );
        }
    }
    let errors = (end.metrics).sum("curve_operator_reconciles_total", &[("result", "error")]);
    row("failed reconciles in all", &errors.to_string());
    let log = operator.log_text();
    let warnings = (log.lines())
        .filter(|l| l.contains("WARN") || l.contains("ERROR"))
        .count();
    say(&format!(
        "operator log: {} lines, {warnings} WARN/ERROR",
        log.lines().count()
    ));
    drop(peak);
    drop(operator);
    assert!(
        costly.is_empty(),
        "{no_ops} no-op reconciles of the big cluster made API requests: {costly:?}"
    );
}
