//! The one scenario run with a real kube-scheduler: the scheduler's own `Unschedulable`
//! condition reaches the CurveCluster's status word for word. It needs a kube-scheduler
//! running against the API server (and, since that scheduler binds every pod, it runs alone,
//! by its own command; the other scenarios play the scheduler themselves):
//!
//!   KUBECONFIG=/path/to/kubeconfig cargo test -p curve-operator-e2e --test kube_scheduler -- --ignored
//!
//! Without a scheduler it fails, saying so (never passes by being skipped).

use std::time::{Duration, Instant};

use curve_operator_e2e::env::{TestEnv, condition};
use curve_operator_e2e::manifests::curve_cluster;
use curve_operator_e2e::util::{eventually, say};
use curve_operator_e2e::volumes::{EXPANDABLE, FakeStorage};
use k8s_openapi::api::core::v1::Pod;
use serde_json::json;

/// kube-scheduler's NodeAffinity filter reason (pkg/scheduler/framework/plugins/nodeaffinity
/// `ErrReasonPod`).
const NO_MATCH: &str = "didn't match Pod's node affinity/selector";

/// The condition a real scheduler writes on a pod it could not place, read from the pod.
async fn scheduler_condition(env: &TestEnv, pod: &str) -> String {
    let pods = env.api::<Pod>();
    eventually(
        &format!("kube-scheduler to mark {pod} unschedulable (is a kube-scheduler running against this API server?)"),
        Duration::from_secs(60),
        || async {
            let pod = pods.get_opt(pod).await.map_err(|e| e.to_string())?;
            let conditions = (pod.and_then(|p| p.status).and_then(|s| s.conditions)).unwrap_or_default();
            let scheduled = conditions.iter().find(|c| c.type_ == "PodScheduled");
            match scheduled {
                // Its first word may be about the claim, not yet bound by the provisioner
                // ("pod has unbound immediate PersistentVolumeClaims"); it tries again once it is.
                Some(c)
                    if c.status == "False"
                        && c.reason.as_deref() == Some("Unschedulable")
                        && (c.message.as_deref()).is_some_and(|m| m.contains(NO_MATCH)) =>
                {
                    Ok(c.message.clone().unwrap_or_default())
                }
                other => Err(format!("PodScheduled: {other:?}")),
            }
        },
    )
    .await
}

/// No node matches the cluster's node selector: kube-scheduler's message (`0/N nodes are
/// available: …`, N counting every node it sees) is the one EtcdQuorate carries.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs a Kubernetes API server with a kube-scheduler (KUBECONFIG), see the module doc"]
async fn blocked_unschedulable_by_kube_scheduler() {
    let env = TestEnv::new("kubescheduler", 3).await;
    env.kubelet.leave_scheduling_to_kube_scheduler();
    let _operator = env.start_operator().await;
    let _storage = FakeStorage::start(env.client.clone(), &env.namespace).await;
    let mut cluster = curve_cluster(
        "demo",
        json!({
            "placement": {"nodeSelector": {"e2e.curve.opencurve.io/pool": "nowhere"}},
            "etcd": {"storage": {"storageClassName": EXPANDABLE, "size": "10Gi"}},
        }),
    );
    cluster["spec"]["rollout"] = json!({"progressDeadlineSeconds": 10});
    let since = Instant::now();
    env.kubectl_stdin(&["apply", "-f", "-"], &cluster.to_string())
        .ok("apply demo");
    let said = scheduler_condition(&env, "demo-etcd-0").await;
    say(&format!("kube-scheduler: {said}"));
    assert!(said.starts_with("0/") && said.contains(NO_MATCH), "{said}");
    let named = format!(
        "pod demo-etcd-0 is unschedulable: {}",
        said.lines().next().unwrap_or_default().trim()
    );
    let cluster = env
        .wait_status(
            "demo",
            "EtcdQuorate to carry the scheduler's words",
            Duration::from_secs(45),
            |_, s| {
                let etcd = condition(s, "EtcdQuorate").ok_or("no EtcdQuorate")?;
                if etcd.status == "False"
                    && etcd.reason == "Unschedulable"
                    && etcd.message.contains(&named)
                {
                    Ok(())
                } else {
                    Err(format!(
                        "EtcdQuorate {} {}: {}",
                        etcd.status, etcd.reason, etcd.message
                    ))
                }
            },
        )
        .await;
    say(&format!(
        "EtcdQuorate Unschedulable {:.1}s after the apply",
        since.elapsed().as_secs_f64()
    ));
    let status = cluster.status.unwrap_or_default();
    let available = condition(&status, "Available").unwrap();
    assert!(available.message.contains(&named), "{available:?}");
}
