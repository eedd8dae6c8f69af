//! Scale benchmark: the operator's cost with 100 CurveClusters, against the API server in
//! KUBECONFIG. A bench target (no libtest harness), so not part of `cargo test` nor of the e2e
//! suite; run it with
//!
//!   KUBECONFIG=/path/to/kubeconfig cargo bench -p curve-operator-e2e --bench scale --profile dev
//!
//! (`--profile dev`: the operator under test is the suite's debug build either way; the
//! harness needs no optimisation and shares the suite's build.)
//!
//! No nodes, scheduler or kubelet: the point is the operator's own cost, so every pod stays
//! Pending and each cluster stops at its etcd tier (etcd never gets a quorum). See
//! docs/dev/testing.md for what it prints.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use curve_operator::api::CurveCluster;
use curve_operator_e2e::env::BareEnv;
use curve_operator_e2e::manifests::curve_cluster;
use curve_operator_e2e::metrics::{KUBE_REQUESTS, Labels, Metrics, label};
use curve_operator_e2e::operator::{Operator, binary};
use curve_operator_e2e::util::say;
use futures::StreamExt;
use kube::ResourceExt;
use kube::runtime::watcher::{self, Event};
use serde_json::json;

const CLUSTERS: usize = 100;
/// How long the operator runs on after the last first status, before the second reading.
const STEADY: Duration = Duration::from_secs(30);
/// When the benchmark gives up waiting for the first statuses.
const FIRST_STATUS_LIMIT: Duration = Duration::from_secs(300);
/// The goals.
const GOAL_RSS_MIB: f64 = 50.0;
const GOAL_FIRST_STATUS: Duration = Duration::from_secs(30);

/// Whether the operator wrote the cluster's first status: conditions and observedGeneration.
fn has_status(cluster: &CurveCluster) -> bool {
    cluster
        .status
        .as_ref()
        .is_some_and(|s| !s.conditions.is_empty() && s.observed_generation.is_some())
}

/// When each cluster was first seen with a status, from a watch started before the operator;
/// and how many times the clusters changed (each a write: of the status, or of metadata such
/// as a finalizer).
struct FirstStatuses {
    seen: Arc<Mutex<BTreeMap<String, Instant>>>,
    updates: Arc<std::sync::atomic::AtomicU64>,
    /// Set once the watch's initial list is done.
    listed: Arc<std::sync::atomic::AtomicBool>,
    task: tokio::task::JoinHandle<()>,
}

impl FirstStatuses {
    fn watch(env: &BareEnv) -> FirstStatuses {
        let seen = Arc::new(Mutex::new(BTreeMap::new()));
        let updates = Arc::new(std::sync::atomic::AtomicU64::new(0));
        let listed = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let task = tokio::spawn({
            let seen = seen.clone();
            let updates = updates.clone();
            let listed = listed.clone();
            let stream = watcher::watcher(env.clusters(), watcher::Config::default());
            async move {
                let mut stream = stream.boxed();
                while let Some(event) = stream.next().await {
                    if matches!(event, Ok(Event::InitDone)) {
                        listed.store(true, std::sync::atomic::Ordering::Relaxed);
                    }
                    if matches!(event, Ok(Event::Apply(_))) {
                        updates.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    }
                    let (Ok(Event::Apply(c)) | Ok(Event::InitApply(c))) = event else {
                        continue;
                    };
                    if has_status(&c) {
                        seen.lock()
                            .unwrap()
                            .entry(c.name_any())
                            .or_insert_with(Instant::now);
                    }
                }
            }
        });
        FirstStatuses {
            seen,
            updates,
            listed,
            task,
        }
    }

    /// Waits until the watch has listed the clusters (so a first status is seen as it is
    /// written, not when a late initial list finds it).
    async fn wait_listed(&self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while !self.listed.load(std::sync::atomic::Ordering::Relaxed) {
            assert!(
                Instant::now() < deadline,
                "the CurveCluster watch did not list"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Changes of the clusters seen so far (not counting the initial list).
    fn updates(&self) -> u64 {
        self.updates.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Seconds from `t0` to each first status, in order.
    fn since(&self, t0: Instant) -> Vec<f64> {
        let mut times: Vec<f64> = self
            .seen
            .lock()
            .unwrap()
            .values()
            .map(|t| t.saturating_duration_since(t0).as_secs_f64())
            .collect();
        times.sort_by(f64::total_cmp);
        times
    }
}

impl Drop for FirstStatuses {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The pods in the namespace: kube-controller-manager creates them for the etcd StatefulSets.
async fn pod_count(env: &BareEnv) -> usize {
    env.api::<k8s_openapi::api::core::v1::Pod>()
        .list(&Default::default())
        .await
        .map(|l| l.items.len())
        .unwrap_or(0)
}

/// `VmRSS`, `VmHWM`, `RssAnon` and `RssFile` of a process, in MiB.
fn memory(pid: u32) -> [f64; 4] {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_else(|e| panic!("read /proc/{pid}/status: {e}"));
    let field = |key: &str| -> f64 {
        status
            .lines()
            .find_map(|l| l.strip_prefix(key))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
            .unwrap_or_else(|| panic!("no {key} in /proc/{pid}/status"))
            / 1024.0
    };
    [
        field("VmRSS:"),
        field("VmHWM:"),
        field("RssAnon:"),
        field("RssFile:"),
    ]
}

/// User + system CPU seconds the process used so far.
fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .unwrap_or_else(|e| panic!("read /proc/{pid}/stat: {e}"));
    // Fields after the command name in parentheses: state is field 3, utime 14, stime 15.
    let after = &stat[stat.rfind(')').expect("a command name") + 1..];
    let fields: Vec<&str> = after.split_whitespace().collect();
    let ticks: f64 = fields[11].parse::<f64>().unwrap() + fields[12].parse::<f64>().unwrap();
    ticks / clock_ticks()
}

fn clock_ticks() -> f64 {
    std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8_lossy(&o.stdout).trim().parse().ok())
        .unwrap_or(100.0)
}

/// nproc, MemTotal and the CPU model of this machine.
fn machine() -> String {
    let cpus = std::thread::available_parallelism().map_or(0, |n| n.get());
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let memory = meminfo
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or("?".to_string(), |kb| {
            format!("{:.1} GiB", kb / 1024.0 / 1024.0)
        });
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find_map(|l| {
            l.strip_prefix("model name")
                .and_then(|v| v.split_once(':'))
                .map(|(_, m)| m.trim().to_string())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    format!("nproc {cpus}, {model}, MemTotal {memory}")
}

/// What the operator reports at one moment.
struct Reading {
    at: Instant,
    rss: f64,
    hwm: f64,
    /// Heap and stacks.
    anon: f64,
    /// Mapped files: the binary's resident pages.
    file: f64,
    cpu: f64,
    metrics: Metrics,
}

async fn read(operator: &Operator, pid: u32) -> Reading {
    let [rss, hwm, anon, file] = memory(pid);
    Reading {
        at: Instant::now(),
        rss,
        hwm,
        anon,
        file,
        cpu: cpu_seconds(pid),
        metrics: operator.samples().await,
    }
}

/// Requests between two readings (from the start without `from`) grouped by `key` of their
/// labels, if the metric exists.
fn requests_by(
    from: Option<&Metrics>,
    to: &Metrics,
    key: fn(&Labels) -> String,
) -> Option<BTreeMap<String, f64>> {
    if !to.has(KUBE_REQUESTS) {
        return None;
    }
    let empty = Metrics::default();
    let growth = to.growth(from.unwrap_or(&empty), KUBE_REQUESTS);
    let mut grouped: BTreeMap<String, f64> = BTreeMap::new();
    for (labels, delta) in growth {
        *grouped.entry(key(&labels)).or_default() += delta;
    }
    Some(grouped)
}

fn verb(labels: &Labels) -> String {
    label(labels, "verb").to_string()
}

fn verb_and_resource(labels: &Labels) -> String {
    format!("{} {}", label(labels, "verb"), label(labels, "resource"))
}

fn reconciles(m: &Metrics) -> f64 {
    m.sum("curve_operator_reconciles_total", &[])
}

fn goal(met: bool) -> &'static str {
    if met { "met" } else { "NOT met" }
}

/// The value at quantile `q` of sorted `values`.
fn quantile(values: &[f64], q: f64) -> f64 {
    let index = ((values.len() as f64 * q).ceil() as usize).clamp(1, values.len()) - 1;
    values[index]
}

fn main() {
    // `cargo test --all-targets` runs bench targets too, without `--bench`: this benchmark
    // needs a real API server and is only run by `cargo bench` (which passes `--bench`).
    if !std::env::args().any(|arg| arg == "--bench") {
        println!("scale benchmark: not run (it runs under `cargo bench`, see e2e/README.md)");
        return;
    }
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a tokio runtime")
        .block_on(scale_100_clusters());
}

async fn scale_100_clusters() {
    let mut env = BareEnv::new("bench").await;
    let list = json!({
        "apiVersion": "v1",
        "kind": "List",
        "items": (0..CLUSTERS).map(|i| curve_cluster(&format!("bench-{i:03}"), json!({}))).collect::<Vec<_>>(),
    });
    let applying = Instant::now();
    env.kubectl_stdin(&["apply", "-f", "-"], &list.to_string())
        .ok("apply the clusters");
    let applied_in = applying.elapsed();
    let listed = env
        .clusters()
        .list(&Default::default())
        .await
        .unwrap()
        .items
        .len();
    assert_eq!(listed, CLUSTERS, "CurveClusters in {}", env.namespace);
    let statuses = FirstStatuses::watch(&env);
    statuses.wait_listed().await;

    let t0 = Instant::now();
    let operator = env.start_operator().await;
    let ready_after = t0.elapsed();
    let pid = operator.pid().expect("the operator runs");
    let at_ready = read(&operator, pid).await;
    let deadline = t0 + FIRST_STATUS_LIMIT;
    while statuses.since(t0).len() < CLUSTERS && Instant::now() < deadline {
        assert!(
            std::fs::metadata(format!("/proc/{pid}")).is_ok(),
            "the operator exited"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let first = read(&operator, pid).await;
    let pods_at_first = pod_count(&env).await;
    let updates_at_first = statuses.updates();
    let times = statuses.since(t0);
    let all_statuses = times.len() == CLUSTERS;
    if all_statuses {
        tokio::time::sleep(STEADY).await;
    }
    let steady = read(&operator, pid).await;
    let pods_at_steady = pod_count(&env).await;
    let updates_at_steady = statuses.updates();
    let log = operator.log_text();
    drop(operator);

    let n = CLUSTERS as f64;
    say(&format!(
        "SCALE BENCHMARK: {CLUSTERS} CurveClusters (examples/curvecluster.yaml's spec), no nodes: \
         pods stay Pending; applied with one kubectl apply in {:.1} s before the operator started",
        applied_in.as_secs_f64()
    ));
    say(&format!("machine: {}", machine()));
    let built = match std::env::var_os("CURVE_E2E_OPERATOR") {
        Some(_) => "given by CURVE_E2E_OPERATOR",
        None => "debug build, as the e2e suite builds it",
    };
    say(&format!("operator: {} ({built})", binary().display()));
    say("");
    say(&format!("{:<60} {:>12}   goal", "measure", "value"));
    say(&format!(
        "{:<60} {:>10.2} s",
        "operator start → /readyz",
        ready_after.as_secs_f64()
    ));
    if let Some(t) = times.first() {
        say(&format!(
            "{:<60} {t:>10.2} s",
            "operator start → first cluster with a status"
        ));
        say(&format!(
            "{:<60} {:>10.2} s",
            "operator start → half of them with a status",
            quantile(&times, 0.5)
        ));
        say(&format!(
            "{:<60} {:>10.2} s",
            "operator start → 90 % of them with a status",
            quantile(&times, 0.9)
        ));
    }
    let last = times.last().copied().unwrap_or(f64::NAN);
    if all_statuses {
        say(&format!(
            "{:<60} {last:>10.2} s   < {} s: {}",
            format!("operator start → all {CLUSTERS} with a status"),
            GOAL_FIRST_STATUS.as_secs(),
            goal(last < GOAL_FIRST_STATUS.as_secs_f64())
        ));
    } else {
        say(&format!(
            "{:<60} {:>12}   < {} s: NOT met",
            format!("operator start → all {CLUSTERS} with a status"),
            format!(
                "{} of {CLUSTERS} in {} s",
                times.len(),
                FIRST_STATUS_LIMIT.as_secs()
            ),
            GOAL_FIRST_STATUS.as_secs()
        ));
    }
    let steady_label = if all_statuses {
        format!(
            "{:.0} s steady",
            steady.at.duration_since(first.at).as_secs_f64()
        )
    } else {
        "the time limit (no steady phase)".to_string()
    };
    for (when, r) in [
        ("at /readyz".to_string(), &at_ready),
        ("after all first statuses".to_string(), &first),
        (format!("after {steady_label}"), &steady),
    ] {
        say(&format!(
            "{:<60} {:>8.1} MiB   < {GOAL_RSS_MIB} MiB: {}",
            format!("VmRSS {when}"),
            r.rss,
            goal(r.rss < GOAL_RSS_MIB)
        ));
        say(&format!(
            "{:<60} {:>8.1} MiB",
            "  of it RssAnon (heap, stacks)", r.anon
        ));
        say(&format!(
            "{:<60} {:>8.1} MiB",
            "  of it RssFile (the binary's pages)", r.file
        ));
        say(&format!(
            "{:<60} {:>8.1} MiB",
            format!("VmHWM (peak RSS) {when}"),
            r.hwm
        ));
    }
    say(&format!(
        "{:<60} {:>10.2} s",
        "operator CPU time until all first statuses", first.cpu
    ));
    say(&format!(
        "{:<60} {:>10.2} s",
        format!("operator CPU time during {steady_label}"),
        steady.cpu - first.cpu
    ));
    say(&format!(
        "{:<60} {:>12}",
        "reconciles until all first statuses (per cluster)",
        format!(
            "{} ({:.1})",
            reconciles(&first.metrics),
            reconciles(&first.metrics) / n
        )
    ));
    say(&format!(
        "{:<60} {:>12}",
        format!("reconciles during {steady_label} (per cluster)"),
        format!(
            "{} ({:.1})",
            reconciles(&steady.metrics) - reconciles(&first.metrics),
            (reconciles(&steady.metrics) - reconciles(&first.metrics)) / n
        )
    ));
    say(&format!(
        "{:<60} {:>12}",
        "CurveCluster writes until all first statuses (per cluster)",
        format!("{updates_at_first} ({:.1})", updates_at_first as f64 / n)
    ));
    let steady_updates = updates_at_steady - updates_at_first;
    say(&format!(
        "{:<60} {:>12}",
        format!("CurveCluster writes during {steady_label} (per cluster)"),
        format!("{steady_updates} ({:.1})", steady_updates as f64 / n)
    ));
    say(&format!(
        "{:<60} {:>12}",
        "pods (all Pending) at all first statuses → after steady",
        format!("{pods_at_first} → {pods_at_steady}")
    ));
    let errors = steady
        .metrics
        .sum("curve_operator_reconciles_total", &[("result", "error")]);
    say(&format!(
        "{:<60} {:>12}",
        "failed reconciles in all", errors
    ));
    say("");
    let until_first = requests_by(None, &first.metrics, verb);
    let during_steady = requests_by(Some(&first.metrics), &steady.metrics, verb);
    match (until_first, during_steady) {
        (Some(until_first), Some(during_steady)) => {
            say(&format!(
                "{:<36} {:>22} {:>12} {:>22} {:>12}",
                "API requests",
                "until first statuses",
                "per cluster",
                format!("during {}", if all_statuses { "steady" } else { "-" }),
                "per cluster"
            ));
            let mut verbs: Vec<&String> = until_first.keys().chain(during_steady.keys()).collect();
            verbs.sort();
            verbs.dedup();
            let total = |m: &BTreeMap<String, f64>| m.values().fold(0.0, |a, b| a + b);
            let row = |name: &str, a: f64, b: f64| {
                say(&format!(
                    "{name:<36} {a:>22} {:>12.1} {b:>22} {:>12.2}",
                    a / n,
                    b / n
                ))
            };
            row("total", total(&until_first), total(&during_steady));
            for verb in verbs {
                row(
                    &format!("  {verb}"),
                    until_first.get(verb).copied().unwrap_or(0.0),
                    during_steady.get(verb).copied().unwrap_or(0.0),
                );
            }
            let before_ready = requests_by(None, &at_ready.metrics, verb).unwrap_or_default();
            say(&format!(
                "(of them before /readyz: {})",
                total(&before_ready)
            ));
            say("");
            say("by verb and resource:");
            let until_first =
                requests_by(None, &first.metrics, verb_and_resource).unwrap_or_default();
            let during_steady =
                requests_by(Some(&first.metrics), &steady.metrics, verb_and_resource)
                    .unwrap_or_default();
            let mut series: Vec<&String> = until_first.keys().chain(during_steady.keys()).collect();
            series.sort();
            series.dedup();
            for name in series {
                row(
                    &format!("  {name}"),
                    until_first.get(name).copied().unwrap_or(0.0),
                    during_steady.get(name).copied().unwrap_or(0.0),
                );
            }
        }
        _ => say(&format!(
            "API requests: not measured — metric {KUBE_REQUESTS} is missing from the operator's \
             /metrics (it exports {:?})",
            steady.metrics.names()
        )),
    }
    let throttled = log
        .lines()
        .filter(|l| l.contains("TooManyRequests") || l.contains("Too Many Requests"))
        .count();
    let warnings = log
        .lines()
        .filter(|l| l.contains("WARN") || l.contains("ERROR"))
        .count();
    say(&format!(
        "operator log: {} lines, {warnings} WARN/ERROR, {throttled} throttled (429)",
        log.lines().count()
    ));

    drop(statuses);
    match env.remove(Duration::from_secs(180)).await {
        Ok(took) => say(&format!(
            "namespace {} removed in {:.1} s",
            env.namespace,
            took.as_secs_f64()
        )),
        Err(e) => say(&format!("cleanup: {e}")),
    }
    assert!(
        all_statuses,
        "only {} of {CLUSTERS} clusters got a status within {FIRST_STATUS_LIMIT:?}",
        times.len()
    );
}
