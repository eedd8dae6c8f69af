//! The Grafana dashboards of `curve_operator::dashboards` on a real Prometheus (Debian's
//! `prometheus`, `PROMETHEUS_BIN`), without Kubernetes: it scrapes the operator's `/metrics`
//! (the library's own HTTP server, its `Metrics` set as for a running cluster) and a real etcd
//! cluster (Debian's `etcd`, `ETCD_BIN`) labelled as the operator's PodMonitors label etcd
//! pods, and runs every expression of every dashboard (`curve_operator_e2e::dashboards`).
//! Every expression must parse, and those over the operator's or etcd's metrics must return
//! data. No Curve daemon runs here: expressions over MDS and ChunkServer metrics must parse,
//! and every name they use must be one of `CURVE_METRICS`, each derived from Curve's source.
//! Not `#[ignore]`d: `cargo test --workspace` runs it (scenario o does the same on a running
//! cluster). That the committed JSON files are the generator's is the root package's
//! `tests/dashboards.rs`.

#[path = "../../tests/support/etcd.rs"]
mod etcd_support;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use curve_operator::dashboards;
use curve_operator::names::Component;
use curve_operator::runtime::http::{Readiness, serve};
use curve_operator::runtime::metrics::{ErrorStep, Metrics, ReconcileResult};
use curve_operator_e2e::dashboards::{
    Checker, Expr, Outcome, Substitution, expressions, variables_in,
};
use curve_operator_e2e::prometheus::{self, Prometheus, Target};
use curve_operator_e2e::util::TempDir;
use etcd_support::EtcdCluster;
use serde_json::Value;
use tokio::net::TcpListener;

/// The CurveCluster the dashboards are looked at for.
const NS: &str = "curve";
const CLUSTER: &str = "demo";
/// The operator's own namespace: its target's `namespace` label, which `honor_labels` must not
/// let overwrite the metrics' own `namespace` (the CurveCluster's).
const OPERATOR_NS: &str = "curve-system";
/// The job of the operator's target (the chart's ServiceMonitor's Service).
const OPERATOR_JOB: &str = "curve-operator-metrics";

fn substitution() -> Substitution {
    Substitution {
        namespace: NS.into(),
        cluster: CLUSTER.into(),
        interval: "1m".into(),
        pods: 3,
    }
}

#[test]
fn dashboards_are_well_formed() {
    let all = dashboards::all();
    let uids: BTreeSet<&str> = all
        .iter()
        .map(|d| d.json["uid"].as_str().unwrap())
        .collect();
    assert_eq!(uids.len(), all.len(), "uids repeat");
    for dashboard in &all {
        let json = &dashboard.json;
        let name = dashboard.name;
        let variables: Vec<&str> = json["templating"]["list"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v["name"].as_str().unwrap())
            .collect();
        assert_eq!(
            variables[..3],
            ["datasource", "namespace", "cluster"],
            "{name}"
        );
        assert_eq!(json["templating"]["list"][0]["type"], "datasource");
        assert_eq!(json["templating"]["list"][0]["query"], "prometheus");
        let panels = json["panels"].as_array().unwrap();
        assert!(panels.len() > 10, "{name}");
        for panel in panels.iter().filter(|p| p["type"] != "row") {
            let title = panel["title"].as_str().unwrap();
            assert_eq!(
                panel["datasource"]["uid"], "${datasource}",
                "{name}: {title}"
            );
            assert!(
                !panel["description"].as_str().unwrap().is_empty(),
                "{name}: {title} has no description"
            );
            let targets = panel["targets"].as_array().unwrap();
            assert!(!targets.is_empty(), "{name}: {title}");
            for target in targets {
                let expr = target["expr"].as_str().unwrap();
                assert_eq!(target["datasource"]["uid"], "${datasource}");
                for used in variables_in(expr) {
                    assert!(
                        variables.contains(&used.as_str()) || used.starts_with("__"),
                        "{name}: {title}: ${used} is no variable of the dashboard"
                    );
                }
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// What is scraped.

/// The operator's metrics as for a running installation: cluster `curve/demo` (3 etcd members,
/// 3 MDS with demo-mds-1 primary after a failover, 6 ChunkServers with one down during a
/// roll) and `prod/big`, plus the installation's reconciles and API requests.
fn running_cluster_metrics() -> Metrics {
    let m = Metrics::new();
    for (component, desired, ready) in [
        (Component::Etcd, 3, 3),
        (Component::Mds, 3, 3),
        (Component::ChunkServer, 6, 5),
    ] {
        m.set_desired(NS, CLUSTER, component, desired);
        m.set_ready(NS, CLUSTER, component, ready);
        m.set_desired("prod", "big", component, desired);
        m.set_ready("prod", "big", component, desired);
    }
    let mds: Vec<String> = (0..3).map(|i| format!("{CLUSTER}-mds-{i}")).collect();
    m.set_primary(NS, CLUSTER, Some("demo-mds-0"), &mds);
    m.primary_changed(NS, CLUSTER);
    m.set_primary(NS, CLUSTER, Some("demo-mds-1"), &mds);
    m.primary_changed(NS, CLUSTER);
    m.set_etcd_members(NS, CLUSTER, 3, 3);
    m.set_available(NS, CLUSTER, true);
    m.set_reconcile_failures(NS, CLUSTER, 0);
    m.set_roll(NS, CLUSTER, true, false);
    m.set_failure_domains(NS, CLUSTER, 1, 1);
    // Curve's health as the operator read it: one ChunkServer's copysets short of a copy.
    let health: curve_operator::api::HealthStatus = serde_json::from_value(serde_json::json!({
        "verdict": "Unhealthy",
        "message": "33 copysets minority peer not online",
        "copysets": {"total": 100, "healthy": 67, "unhealthy": 33},
        "chunkservers": {"online": 2, "unstable": 1, "offline": 0, "readwrite": 3, "pendding": 0, "retired": 0},
        "logicalPools": [{"name": "logicalPool1", "capacityBytes": 85_899_345_920_i64, "usedBytes": 1_073_741_824, "allocatedBytes": 4_294_967_296_i64}],
    }))
    .expect("a health status");
    m.set_health(NS, CLUSTER, &health);
    let big: Vec<String> = (0..3).map(|i| format!("big-mds-{i}")).collect();
    m.set_primary("prod", "big", Some("big-mds-2"), &big);
    m.set_etcd_members("prod", "big", 5, 5);
    m.set_available("prod", "big", true);
    m.set_reconcile_failures("prod", "big", 0);
    m.set_roll("prod", "big", false, false);
    m.set_failure_domains("prod", "big", 0, 1);
    m.error(ErrorStep::Apply);
    m.reconcile_finished(ReconcileResult::Error, Duration::from_millis(1200));
    m
}

/// The targets: the operator as the chart's ServiceMonitor scrapes it (honor_labels), and
/// each etcd member as the operator's PodMonitor labels it.
fn targets(operator: &str, etcd: &EtcdCluster) -> Vec<Target> {
    let labels = |pairs: &[(&str, &str)]| -> Vec<(String, String)> {
        (pairs.iter())
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    };
    let mut targets = vec![Target {
        job: OPERATOR_JOB.into(),
        address: operator.into(),
        path: "/metrics".into(),
        labels: labels(&[
            ("namespace", OPERATOR_NS),
            ("pod", "curve-operator-7d9f-x2x4q"),
            ("service", OPERATOR_JOB),
            ("endpoint", "http-metrics"),
        ]),
        honor_labels: true,
    }];
    for (i, endpoint) in etcd.endpoints().iter().enumerate() {
        targets.push(Target {
            job: format!("{NS}/{CLUSTER}-etcd"),
            address: endpoint.clone(),
            path: "/metrics".into(),
            labels: labels(&[
                ("namespace", NS),
                ("pod", &format!("{CLUSTER}-etcd-{i}")),
                ("container", "etcd"),
                ("endpoint", "client"),
                ("curve_cluster", CLUSTER),
                ("curve_component", "etcd"),
            ]),
            honor_labels: false,
        });
    }
    targets
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_dashboard_expression_runs_on_a_real_prometheus() {
    prometheus::binary();
    // The operator's /metrics, served by its own HTTP server.
    let metrics = Arc::new(running_cluster_metrics());
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let operator = listener.local_addr().unwrap().to_string();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(serve(
        listener,
        metrics.clone(),
        Arc::new(Readiness::default()),
        async {
            stopped.await.ok();
        },
    ));
    // The operator keeps reconciling while Prometheus scrapes.
    let busy = {
        let metrics = metrics.clone();
        tokio::spawn(async move {
            loop {
                metrics.reconcile_finished(ReconcileResult::Success, Duration::from_millis(35));
                metrics.kube_request("patch", "curveclusters/status");
                metrics.kube_request("list", "pods");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        })
    };

    // A real etcd cluster, used as the MDS uses it: writes, a lease kept alive, a watch.
    let etcd = EtcdCluster::start(3).await;
    let mut client = etcd_client::Client::connect(etcd.endpoints(), None)
        .await
        .unwrap();
    let lease = client.lease_grant(30, None).await.unwrap().id();
    let (_keeper, _keep_alive) = client.lease_keep_alive(lease).await.unwrap();
    let _watch = client.watch("curve", None).await.unwrap();
    let writer = tokio::spawn(async move {
        for i in 0.. {
            let _ = client.put(format!("curve/{}", i % 50), "x", None).await;
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    });

    let log_dir = TempDir::new("dashboards");
    let prometheus = Prometheus::start(
        &targets(&operator, &etcd),
        &log_dir.path().join("prometheus.log"),
    )
    .await;
    // Ready once every target was scraped a few times (rates need two samples).
    prometheus
        .wait_scraped("", 4, 5, Duration::from_secs(90))
        .await;
    // A failover while Prometheus watches: demo-mds-2 becomes primary.
    let mds: Vec<String> = (0..3).map(|i| format!("{CLUSTER}-mds-{i}")).collect();
    metrics.set_primary(NS, CLUSTER, Some("demo-mds-2"), &mds);
    metrics.primary_changed(NS, CLUSTER);
    let deadline = Instant::now() + Duration::from_secs(30);
    while prometheus
        .query(r#"increase(curve_operator_mds_primary_changes_total{namespace="curve",name="demo"}[1m]) > 0"#)
        .await
        .unwrap_or_default()
        .is_empty()
    {
        assert!(Instant::now() < deadline, "the failover was not scraped");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let checker = Checker::new(&prometheus, substitution()).await;
    assert!(
        checker.etcd_names.contains("etcd_server_has_leader"),
        "{:?}",
        checker.etcd_names
    );

    let report = checker.check_all(&dashboards::all()).await;
    for (dashboard, c) in &report.counts {
        println!(
            "{dashboard}: {} expressions, {} returned data, {} parse only (Curve daemons' metrics)",
            c.all, c.data, c.parses
        );
    }
    let total = report.total();
    println!(
        "all dashboards: {} expressions checked, {} returned data",
        total.all, total.data
    );
    assert!(report.failures.is_empty(), "{}", report.failures.join("\n"));
    assert_eq!(total.all, total.data + total.parses);
    let unused = report.unused();
    assert!(
        unused.is_empty(),
        "CURVE_METRICS lists names no dashboard uses: {unused:?}"
    );
    // Every dashboard over the operator's or etcd's metrics shows data throughout.
    for uid in ["curve-overview", "curve-etcd"] {
        let c = report.counts[uid];
        assert_eq!(c.data, c.all, "{uid}: every expression returns data");
    }

    // What some panels show for this cluster.
    let value = |r: &Value| r["value"][1].as_str().unwrap().parse::<f64>().unwrap();
    let shown = |uid: &str, title: &str, i: usize| {
        let expr = dashboards::all()
            .into_iter()
            .flat_map(|d| expressions(&d.json))
            .filter(|e| e.dashboard == uid && e.panel == title)
            .nth(i)
            .unwrap_or_else(|| panic!("{uid} has no panel {title:?} with {} queries", i + 1));
        let sent = substitution().apply(&expr);
        let prometheus = &prometheus;
        async move { prometheus.query(&sent).await.unwrap() }
    };
    let primary = shown("curve-overview", "MDS primary", 0).await;
    assert_eq!(primary.len(), 1, "{primary:?}");
    assert_eq!(primary[0]["metric"]["pod"], "demo-mds-2");
    assert!(value(&shown("curve-overview", "Primary changes (24h)", 0).await[0]) > 0.0);
    let not_ready: BTreeMap<String, f64> = shown("curve-overview", "Pods not ready", 0)
        .await
        .iter()
        .map(|r| {
            (
                r["metric"]["component"].as_str().unwrap().to_string(),
                value(r),
            )
        })
        .collect();
    assert_eq!(
        not_ready,
        BTreeMap::from([
            ("chunkserver".to_string(), 1.0),
            ("etcd".to_string(), 0.0),
            ("mds".to_string(), 0.0)
        ])
    );
    assert_eq!(
        value(&shown("curve-overview", "Available", 0).await[0]),
        1.0
    );
    assert_eq!(
        value(&shown("curve-etcd", "Members with a leader", 0).await[0]),
        3.0
    );
    assert_eq!(shown("curve-etcd", "Leader", 0).await.len(), 1);
    assert_eq!(
        shown("curve-etcd", "Proposals committed", 0).await.len(),
        3,
        "one series per member"
    );

    // The same checker reports broken expressions: a syntax error, a misspelled metric, the
    // operator's namespace label (what honor_labels keeps from overwriting), a Curve name not
    // in the list, a variable that is no variable.
    let mutant = |expr: &str, dashboard: &str| Expr {
        dashboard: dashboard.to_string(),
        panel: "mutant".to_string(),
        expr: expr.to_string(),
        label: None,
    };
    let mut sink = BTreeSet::new();
    for (expr, dashboard, reported) in [
        (
            r#"sum by (result) (rate(curve_operator_reconciles_total[$__rate_interval])"#,
            "curve-overview",
            "parse error",
        ),
        (
            r#"max(curve_operator_cluster_availble{namespace="$namespace",name="$cluster"})"#,
            "curve-overview",
            "not among the operator's metrics",
        ),
        (
            &format!(
                r#"max(curve_operator_cluster_available{{namespace="{OPERATOR_NS}",name="$cluster"}})"#
            ),
            "curve-overview",
            "returned no data",
        ),
        (
            r#"sum(etcd_server_has_leader{namespace="$namespace",curve_cluster="$cluster",curve_component="mds"})"#,
            "curve-etcd",
            "returned no data",
        ),
        (
            r#"max by (chunkserver_id) (label_replace({__name__=~"topology_metric_chunkserver_id_([0-9]+)_leader_num",namespace="$namespace"}, "chunkserver_id", "$1", "__name__", "topology_metric_chunkserver_id_([0-9]+)_leader_num"))"#,
            "curve-mds",
            "nor in CURVE_METRICS",
        ),
        (
            r#"sum(etcd_server_has_leader{namespace="$namespace",curve_cluster="$clutser"})"#,
            "curve-etcd",
            "not substituted",
        ),
    ] {
        match checker.check(&mutant(expr, dashboard), &mut sink).await {
            Err(e) => assert!(
                e.contains(reported),
                "{expr}: reported {e:?}, not {reported:?}"
            ),
            Ok(outcome) => panic!("{expr} passed the check ({outcome:?})"),
        }
    }
    // And a good one passes it.
    assert_eq!(
        checker
            .check(
                &mutant(
                    r#"max(curve_operator_cluster_available{namespace="$namespace",name="$cluster"})"#,
                    "curve-overview"
                ),
                &mut sink
            )
            .await,
        Ok(Outcome::Data(1))
    );

    writer.abort();
    busy.abort();
    drop(prometheus);
    stop.send(()).unwrap();
    server.await.unwrap().unwrap();
}
