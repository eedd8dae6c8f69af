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
use std::time::{Duration, Instant};

use curve_operator_e2e::bench::{
    self, ClusterWatch, Reading, goal, machine, operator_build, quantile, reconciles, requests_by,
    verb, verb_and_resource,
};
use curve_operator_e2e::env::BareEnv;
use curve_operator_e2e::manifests::curve_cluster;
use curve_operator_e2e::metrics::KUBE_REQUESTS;
use curve_operator_e2e::util::say;
use serde_json::json;

const CLUSTERS: usize = 100;
/// How long the operator runs on after the last first status, before the second reading.
const STEADY: Duration = Duration::from_secs(30);
/// When the benchmark gives up waiting for the first statuses.
const FIRST_STATUS_LIMIT: Duration = Duration::from_secs(300);
/// The goals.
const GOAL_RSS_MIB: f64 = 50.0;
const GOAL_FIRST_STATUS: Duration = Duration::from_secs(30);

fn main() {
    bench::main("scale", scale_100_clusters);
}

/// The pods in the namespace: kube-controller-manager creates them for the etcd StatefulSets.
async fn pod_count(env: &BareEnv) -> usize {
    env.api::<k8s_openapi::api::core::v1::Pod>()
        .list(&Default::default())
        .await
        .map(|l| l.items.len())
        .unwrap_or(0)
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
    let statuses = ClusterWatch::start(&env);
    statuses.wait_listed().await;

    let t0 = Instant::now();
    let operator = env.start_operator().await;
    let ready_after = t0.elapsed();
    let pid = operator.pid().expect("the operator runs");
    let at_ready = Reading::of(&operator).await;
    let deadline = t0 + FIRST_STATUS_LIMIT;
    while statuses.first_statuses_since(t0).len() < CLUSTERS && Instant::now() < deadline {
        assert!(
            std::fs::metadata(format!("/proc/{pid}")).is_ok(),
            "the operator exited"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let first = Reading::of(&operator).await;
    let pods_at_first = pod_count(&env).await;
    let updates_at_first = statuses.updates();
    let times = statuses.first_statuses_since(t0);
    let all_statuses = times.len() == CLUSTERS;
    if all_statuses {
        tokio::time::sleep(STEADY).await;
    }
    let steady = Reading::of(&operator).await;
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
    say(&format!("operator: {}", operator_build()));
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
