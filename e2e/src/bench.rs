//! What the benchmarks (`benches/scale.rs`, `benches/big_cluster.rs`) share: their entry
//! point, the operator's process figures (memory, CPU), its metrics at a moment, and a watch
//! of the CurveClusters that counts their writes.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use curve_operator::api::CurveCluster;
use futures::StreamExt;
use kube::ResourceExt;
use kube::runtime::watcher::{self, Event};

use crate::env::BareEnv;
use crate::metrics::{KUBE_REQUESTS, Labels, Metrics, label};
use crate::operator::{Operator, binary};
use crate::util::say;

/// Runs a benchmark on a tokio runtime of two workers, only under `cargo bench`: `cargo test
/// --all-targets` runs bench targets too, without `--bench`, and a benchmark needs a real API
/// server.
pub fn main<F: Future<Output = ()>>(name: &str, bench: impl FnOnce() -> F) {
    if !std::env::args().any(|arg| arg == "--bench") {
        println!("{name} benchmark: not run (it runs under `cargo bench`, see e2e/README.md)");
        return;
    }
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a tokio runtime")
        .block_on(bench());
}

/// Whether the operator wrote the cluster's first status: conditions and observedGeneration.
pub fn has_status(cluster: &CurveCluster) -> bool {
    cluster
        .status
        .as_ref()
        .is_some_and(|s| !s.conditions.is_empty() && s.observed_generation.is_some())
}

/// A write of a CurveCluster as the watch saw it: when, and what it changed.
type Write = (Instant, Vec<String>);

/// A watch of the namespace's CurveClusters, started before the operator: when each was first
/// seen with a status, and how many times they changed (each a write: of the status, or of
/// metadata such as a finalizer or an annotation), and what each write changed.
pub struct ClusterWatch {
    seen: Arc<Mutex<BTreeMap<String, Instant>>>,
    updates: Arc<AtomicU64>,
    /// Each write as seen: when, and what it changed ([`status_changes`]).
    changes: Arc<Mutex<Vec<Write>>>,
    /// Set once the watch's initial list is done.
    listed: Arc<AtomicBool>,
    task: tokio::task::JoinHandle<()>,
}

impl ClusterWatch {
    pub fn start(env: &BareEnv) -> ClusterWatch {
        let seen = Arc::new(Mutex::new(BTreeMap::new()));
        let updates = Arc::new(AtomicU64::new(0));
        let listed = Arc::new(AtomicBool::new(false));
        let changes = Arc::new(Mutex::new(Vec::new()));
        let task = tokio::spawn({
            let seen = seen.clone();
            let updates = updates.clone();
            let listed = listed.clone();
            let changes = changes.clone();
            let stream = watcher::watcher(env.clusters(), watcher::Config::default());
            async move {
                let mut stream = stream.boxed();
                let mut last: BTreeMap<String, serde_json::Value> = BTreeMap::new();
                while let Some(event) = stream.next().await {
                    if matches!(event, Ok(Event::InitDone)) {
                        listed.store(true, Ordering::Relaxed);
                    }
                    let (Ok(Event::Apply(c)) | Ok(Event::InitApply(c))) = &event else {
                        continue;
                    };
                    let status = serde_json::to_value(&c.status).unwrap_or_default();
                    let before = last.insert(c.name_any(), status.clone());
                    if matches!(event, Ok(Event::Apply(_))) {
                        updates.fetch_add(1, Ordering::Relaxed);
                        let what = status_changes(&before.unwrap_or_default(), &status);
                        changes.lock().unwrap().push((Instant::now(), what));
                    }
                    let (Ok(Event::Apply(c)) | Ok(Event::InitApply(c))) = event else {
                        continue;
                    };
                    if has_status(&c) {
                        (seen.lock().unwrap())
                            .entry(c.name_any())
                            .or_insert_with(Instant::now);
                    }
                }
            }
        });
        ClusterWatch {
            seen,
            updates,
            changes,
            listed,
            task,
        }
    }

    /// Waits until the watch has listed the clusters (so a first status is seen as it is
    /// written, not when a late initial list finds it).
    pub async fn wait_listed(&self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while !self.listed.load(Ordering::Relaxed) {
            assert!(
                Instant::now() < deadline,
                "the CurveCluster watch did not list"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Changes of the clusters seen so far (not counting the initial list).
    pub fn updates(&self) -> u64 {
        self.updates.load(Ordering::Relaxed)
    }

    /// What the writes seen from `from` to `to` changed, each distinct change with its count,
    /// most frequent first (a write of metadata only changes no status field: "no status
    /// field").
    pub fn changes_between(&self, from: Instant, to: Instant) -> Vec<(String, usize)> {
        let mut counted: BTreeMap<String, usize> = BTreeMap::new();
        for (_, what) in
            (self.changes.lock().unwrap().iter()).filter(|(t, _)| (from..to).contains(t))
        {
            if what.is_empty() {
                *counted.entry("no status field".into()).or_default() += 1;
            }
            for change in what {
                *counted.entry(change.clone()).or_default() += 1;
            }
        }
        let mut counted: Vec<(String, usize)> = counted.into_iter().collect();
        counted.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        counted
    }

    /// Seconds from `t0` to each first status, in order.
    pub fn first_statuses_since(&self, t0: Instant) -> Vec<f64> {
        let mut times: Vec<f64> = (self.seen.lock().unwrap().values())
            .map(|t| t.saturating_duration_since(t0).as_secs_f64())
            .collect();
        times.sort_by(f64::total_cmp);
        times
    }
}

impl Drop for ClusterWatch {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// What changed from one status to the next: each condition whose status or reason changed
/// (`conditions[Type]: Old → New`, or `…: message` when only its message did), each other
/// top-level field that changed, and for objects the fields within them (`health.message`).
pub fn status_changes(before: &serde_json::Value, after: &serde_json::Value) -> Vec<String> {
    use serde_json::Value;
    let empty = serde_json::Map::new();
    let fields = |v: &'_ Value| v.as_object().cloned().unwrap_or_else(|| empty.clone());
    let (before, after) = (fields(before), fields(after));
    let mut keys: Vec<&String> = before.keys().chain(after.keys()).collect();
    keys.sort();
    keys.dedup();
    let mut changes = Vec::new();
    for key in keys {
        let (old, new) = (
            before.get(key).unwrap_or(&Value::Null),
            after.get(key).unwrap_or(&Value::Null),
        );
        if old == new {
            continue;
        }
        if key == "conditions" {
            changes.extend(condition_changes(old, new));
            continue;
        }
        match (old, new) {
            (Value::Object(o), Value::Object(n)) => {
                let mut inner: Vec<&String> = o.keys().chain(n.keys()).collect();
                inner.sort();
                inner.dedup();
                changes.extend(
                    (inner.into_iter())
                        .filter(|k| o.get(*k) != n.get(*k))
                        .map(|k| format!("{key}.{k}")),
                );
            }
            _ => changes.push(key.clone()),
        }
    }
    changes
}

fn condition_changes(old: &serde_json::Value, new: &serde_json::Value) -> Vec<String> {
    let by_type = |v: &serde_json::Value| -> BTreeMap<String, serde_json::Value> {
        (v.as_array().into_iter().flatten())
            .map(|c| (c["type"].as_str().unwrap_or("").to_string(), c.clone()))
            .collect()
    };
    let (old, new) = (by_type(old), by_type(new));
    let mut types: Vec<&String> = old.keys().chain(new.keys()).collect();
    types.sort();
    types.dedup();
    let said = |c: Option<&serde_json::Value>| {
        c.map_or("-".to_string(), |c| {
            format!(
                "{} {}",
                c["status"].as_str().unwrap_or(""),
                c["reason"].as_str().unwrap_or("")
            )
        })
    };
    let mut changes = Vec::new();
    for t in types {
        let (o, n) = (old.get(t), new.get(t));
        if o == n {
            continue;
        }
        let (was, now) = (said(o), said(n));
        if was != now {
            changes.push(format!("conditions[{t}]: {was} → {now}"));
        } else if o.map(|c| &c["message"]) != n.map(|c| &c["message"]) {
            changes.push(format!("conditions[{t}]: message"));
        } else {
            changes.push(format!("conditions[{t}]: transition time"));
        }
    }
    changes
}

/// `VmRSS`, `VmHWM`, `RssAnon` and `RssFile` of a process, in MiB.
pub fn memory(pid: u32) -> [f64; 4] {
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
pub fn cpu_seconds(pid: u32) -> f64 {
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
pub fn machine() -> String {
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

/// The 1-minute load average of this machine (other work shares it with the benchmark).
pub fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|l| l.split_whitespace().next().map(str::to_string))
        .unwrap_or_else(|| "?".into())
}

/// Which operator binary runs, and how it was built.
pub fn operator_build() -> String {
    let built = match std::env::var_os("CURVE_E2E_OPERATOR") {
        Some(_) => "given by CURVE_E2E_OPERATOR",
        None => "debug build, as the e2e suite builds it",
    };
    format!("{} ({built})", binary().display())
}

/// What the operator reports at one moment.
pub struct Reading {
    pub at: Instant,
    pub rss: f64,
    pub hwm: f64,
    /// Heap and stacks.
    pub anon: f64,
    /// Mapped files: the binary's resident pages.
    pub file: f64,
    pub cpu: f64,
    pub metrics: Metrics,
}

impl Reading {
    pub async fn of(operator: &Operator) -> Reading {
        let pid = operator.pid().expect("the operator runs");
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
}

/// Requests between two readings (from the start without `from`) grouped by `key` of their
/// labels, if the metric exists.
pub fn requests_by(
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

pub fn verb(labels: &Labels) -> String {
    label(labels, "verb").to_string()
}

pub fn verb_and_resource(labels: &Labels) -> String {
    format!("{} {}", label(labels, "verb"), label(labels, "resource"))
}

pub fn reconciles(m: &Metrics) -> f64 {
    m.sum("curve_operator_reconciles_total", &[])
}

pub fn goal(met: bool) -> &'static str {
    if met { "met" } else { "NOT met" }
}

/// The value at quantile `q` of sorted `values`.
pub fn quantile(values: &[f64], q: f64) -> f64 {
    let index = ((values.len() as f64 * q).ceil() as usize).clamp(1, values.len()) - 1;
    values[index]
}

/// When the kubelet did its part, from its log (seconds since it started, as each line
/// begins): the last pod bound to a node, and the last pod first reported ready.
#[derive(Debug, Default, PartialEq)]
pub struct KubeletMilestones {
    pub pods_bound: usize,
    pub last_bound: Option<f64>,
    pub pods_ready: usize,
    pub last_ready: Option<f64>,
}

impl KubeletMilestones {
    pub fn of(log: &str) -> KubeletMilestones {
        let mut milestones = KubeletMilestones::default();
        let mut ready = std::collections::BTreeSet::new();
        for line in log.lines() {
            let Some((time, what)) = line.trim_start().split_once("s ") else {
                continue;
            };
            let Ok(time) = time.parse::<f64>() else {
                continue;
            };
            if what.starts_with("bound ") {
                milestones.pods_bound += 1;
                milestones.last_bound = Some(time);
            } else if let Some((pod, _)) = what.split_once(": Running ready=true")
                && ready.insert(pod.to_string())
            {
                milestones.pods_ready += 1;
                milestones.last_ready = Some(time);
            }
        }
        milestones
    }
}

/// Prints `measure` and `value` as a row of the benchmark's table.
pub fn row(measure: &str, value: &str) {
    say(&format!("{measure:<64} {value:>14}"));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_status_write_is_told_by_the_conditions_and_fields_it_changed() {
        use serde_json::json;
        let before = json!({
            "conditions": [
                {"type": "Available", "status": "True", "reason": "Available", "message": "a"},
                {"type": "Degraded", "status": "False", "reason": "Healthy", "message": "x"},
            ],
            "health": {"verdict": "Healthy", "message": "m", "lastChecked": "t1"},
            "phase": "Ready",
        });
        let after = json!({
            "conditions": [
                {"type": "Available", "status": "False", "reason": "Unavailable", "message": "b"},
                {"type": "Degraded", "status": "False", "reason": "Healthy", "message": "y"},
            ],
            "health": {"verdict": "Healthy", "message": "n", "lastChecked": "t2"},
            "phase": "Degraded",
        });
        assert_eq!(
            status_changes(&before, &after),
            [
                "conditions[Available]: True Available → False Unavailable",
                "conditions[Degraded]: message",
                "health.lastChecked",
                "health.message",
                "phase",
            ]
        );
        assert!(status_changes(&after, &after).is_empty());
        assert_eq!(
            status_changes(&json!(null), &json!({"phase": "Ready"})),
            ["phase"]
        );
    }

    #[test]
    fn quantiles_of_sorted_values() {
        let values = [1.0, 2.0, 3.0, 4.0];
        assert_eq!(quantile(&values, 0.5), 2.0);
        assert_eq!(quantile(&values, 0.99), 4.0);
        assert_eq!(quantile(&values, 0.0), 1.0);
    }

    #[test]
    fn the_kubelets_log_tells_when_the_last_pod_was_bound_and_ready() {
        let log = "   0.50s node node-1 (127.0.0.101) created\n\
                   \x20  1.25s bound big-etcd-0 to node-1\n\
                   \x20  2.00s bound big-etcd-1 to node-2\n\
                   \x20  3.10s big-etcd-0: Running ready=true restarts=0\n\
                   \x20  4.00s big-etcd-0: Running ready=false restarts=0\n\
                   \x20 12.40s big-etcd-1: Running ready=true restarts=0\n\
                   \x20 13.00s big-etcd-0: Running ready=true restarts=0\n";
        assert_eq!(
            KubeletMilestones::of(log),
            KubeletMilestones {
                pods_bound: 2,
                last_bound: Some(2.0),
                pods_ready: 2,
                last_ready: Some(12.4),
            }
        );
    }

    #[test]
    fn this_process_has_memory_and_cpu_figures() {
        let pid = std::process::id();
        let [rss, hwm, anon, file] = memory(pid);
        assert!(rss > 0.0 && hwm >= rss && anon + file > 0.0);
        assert!(cpu_seconds(pid) >= 0.0);
        assert!(machine().starts_with("nproc "));
    }
}
