//! The fault soak (issue 32) and the tests of its invariant checker; see e2e/README.md.
//!
//!   KUBECONFIG=… CURVE_SOAK_SEED=<n> CURVE_SOAK_MINUTES=<m> \
//!     cargo test -p curve-operator-e2e --test soak -- --ignored --test-threads=1 --nocapture soak
//!
//! Names contain `soak`.

use std::time::Duration;

use curve_operator_e2e::env::TestEnv;
use curve_operator_e2e::manifests::curve_cluster;
use curve_operator_e2e::soak::checker::{self, Journal};
use curve_operator_e2e::soak::rng::{duration_from_env, seed_from_env};
use curve_operator_e2e::soak::rules::GRACE;
use curve_operator_e2e::soak::run::{SoakConfig, soak};
use curve_operator_e2e::util::{eventually, say};
use k8s_openapi::api::core::v1::Pod;
use kube::api::DeleteParams;
use serde_json::json;

/// The short soak of the suite: 3 minutes unless `CURVE_SOAK_MINUTES` says otherwise.
const SHORT: Duration = Duration::from_secs(180);

/// A seeded random sequence of day-2 operations under random faults: no safety rule broken at
/// any moment, and after each round's faults the cluster converges within the bound.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs a Kubernetes API server (KUBECONFIG), see e2e/README.md"]
async fn soak_random_operations_under_random_faults() {
    let config = SoakConfig {
        seed: seed_from_env(),
        duration: duration_from_env(SHORT),
    };
    let env = TestEnv::new("soak", curve_operator_e2e::soak::run::NODES).await;
    let report = soak(&env, &config).await;
    for line in report.lines() {
        say(&line);
    }
    assert!(report.rounds > 0, "no round ran");
    assert!(report.checks > 0, "the checker checked nothing");
    assert!(
        report.violations.is_empty(),
        "seed {} broke {} rules (replay: CURVE_SOAK_SEED={}): {:#?}",
        report.seed,
        report.violations.len(),
        report.seed,
        report.violations
    );
}

/// The checker catches unsafe steps taken behind the operator's back, and names them: an etcd
/// member removed through etcd while another member is down, and two MDS pods deleted at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs a Kubernetes API server (KUBECONFIG), see e2e/README.md"]
async fn soak_checker_names_unsafe_steps() {
    let env = TestEnv::new("soakcheck", 5).await;
    let mut operator = env.start_operator().await;
    let spec = curve_cluster("demo", json!({"etcd": {"replicas": 5}}));
    env.kubectl_stdin(&["apply", "-f", "-"], &spec.to_string())
        .ok("apply a 5-member cluster");
    env.wait_available("demo", Duration::from_secs(240)).await;
    // The operator is stopped: every step from here is the test's, unknown to the checker.
    operator.kill();
    let journal = Journal::new("demo");
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let unsafe_steps = async {
        tokio::time::sleep(Duration::from_secs(2)).await;
        // demo-etcd-1 down (its restart held), then, well past the grace, demo-etcd-2 removed.
        env.kubelet.hold("etcd");
        assert!(env.kubelet.kill_etcd("demo-etcd-1"));
        // Down once its pod says so (the checker sees what the API server shows), then well
        // past the checker's grace: not a fixed wait that a slow kubelet pass eats into.
        eventually("demo-etcd-1 not ready", Duration::from_secs(30), || async {
            let pod = env
                .api::<Pod>()
                .get("demo-etcd-1")
                .await
                .map_err(|e| e.to_string())?;
            let ready = (pod
                .status
                .iter()
                .flat_map(|s| s.conditions.iter().flatten()))
            .any(|c| c.type_ == "Ready" && c.status == "True");
            (!ready)
                .then_some(())
                .ok_or_else(|| "still Ready".to_string())
        })
        .await;
        tokio::time::sleep(Duration::from_secs_f64(GRACE + 2.0)).await;
        // Through demo-etcd-0 only: a client balancing onto the killed member fails.
        let pod = env.api::<Pod>().get("demo-etcd-0").await.unwrap();
        let ip = pod.status.and_then(|s| s.host_ip).unwrap();
        let endpoints: Vec<String> = (env.kubelet.etcd_endpoints().into_iter())
            .filter(|e| e.starts_with(&format!("{ip}:")))
            .collect();
        assert_eq!(endpoints.len(), 1, "{endpoints:?}");
        let mut client = etcd_client::Client::connect(&endpoints, None)
            .await
            .unwrap();
        let list = client.member_list().await.unwrap();
        let id = (list.members().iter())
            .find(|m| m.name() == "demo-etcd-2")
            .map(|m| m.id())
            .expect("demo-etcd-2 is a member");
        client
            .member_remove(id)
            .await
            .expect("etcd removes demo-etcd-2");
        let caught = |rule: &str, needles: &[&str]| {
            let journal = journal.lock().unwrap();
            (journal.violations.iter())
                .find(|v| v.rule == rule && needles.iter().all(|n| v.message.contains(n)))
                .map(|v| v.to_string())
                .ok_or_else(|| format!("not yet: {:?}", journal.violations))
        };
        let removal = eventually("the removal named", Duration::from_secs(30), || async {
            caught(
                "etcd-member-removed-while-another-unhealthy",
                &["demo-etcd-2", "demo-etcd-1 (down since"],
            )
        })
        .await;
        say(&format!("caught: {removal}"));
        // Two MDS pods deleted at once.
        let pods = env.api::<Pod>();
        let params = DeleteParams::default();
        let (a, b) = tokio::join!(
            pods.delete("demo-mds-0", &params),
            pods.delete("demo-mds-1", &params)
        );
        a.unwrap();
        b.unwrap();
        let two = eventually(
            "the double MDS deletion named",
            Duration::from_secs(5),
            || async { caught("mds-one-pod-down-at-a-time", &["demo-mds-"]) },
        )
        .await;
        say(&format!("caught: {two}"));
        let _ = stop.send(true);
    };
    tokio::join!(
        checker::run(&env, "demo", journal.clone(), stopped),
        unsafe_steps
    );
    let journal = journal.lock().unwrap();
    say(&format!(
        "{} checks, {} violations: {:?}",
        journal.checks(),
        journal.violations.len(),
        journal
            .violations
            .iter()
            .map(|v| v.rule)
            .collect::<Vec<_>>()
    ));
}
