//! End-to-end scenarios of "the status tells the truth": why a tier does not come up, what a
//! pause holds back, etcd's figures, and what a deleted cluster leaves behind; see
//! e2e/README.md.
//!
//!   KUBECONFIG=/path/to/kubeconfig cargo test -p curve-operator-e2e --test truth -- --ignored --test-threads=1
//!
//! The `blocked_*` scenarios make the harness play one failure as the real component writes it
//! (scheduler, PV controller, kubelet, node lifecycle controller) and check the tier's
//! condition names its reason and the object; the `truth_*` scenarios check the rest.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use curve_operator_e2e::env::{TestEnv, condition, parse_table};
use curve_operator_e2e::kubelet::Exit;
use curve_operator_e2e::manifests::curve_cluster;
use curve_operator_e2e::util::{eventually, say};
use curve_operator_e2e::volumes::{EXPANDABLE, FakeStorage};
use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::{Node, PersistentVolumeClaim, Pod};
use k8s_openapi::api::events::v1::Event;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::ResourceExt;
use kube::api::{Api, DeleteParams, ListParams};
use serde_json::{Value, json};

const BRING_UP: Duration = Duration::from_secs(90);
/// How long a blocked tier may take to say so: a pod event or the 15 s resync.
const TO_BLOCKER: Duration = Duration::from_secs(45);
/// The shortest deadline the CRD accepts.
const DEADLINE_SECONDS: u32 = 10;

/// Cluster `demo`: the minimal one with `spec` merged in and the shortest bring-up deadline.
fn demo(spec: Value) -> Value {
    let mut cluster = curve_cluster("demo", spec);
    cluster["spec"]["rollout"] = json!({"progressDeadlineSeconds": DEADLINE_SECONDS});
    cluster
}

fn apply(env: &TestEnv, cluster: &Value) -> Instant {
    env.kubectl_stdin(&["apply", "-f", "-"], &cluster.to_string())
        .ok("apply demo");
    Instant::now()
}

/// Waits until demo's condition `type_` has `status` and `reason`; the condition and the whole
/// list of conditions of that status.
async fn wait_reason(
    env: &TestEnv,
    type_: &str,
    status: &str,
    reason: &str,
    limit: Duration,
) -> (Condition, Vec<Condition>) {
    let cluster = env
        .wait_status(
            "demo",
            &format!("{type_} {status} {reason}"),
            limit,
            |_, s| match condition(s, type_) {
                Some(c) if c.status == status && c.reason == reason => Ok(()),
                other => Err(format!(
                    "{type_} is {:?}",
                    other.map(|c| (&c.status, &c.reason, &c.message))
                )),
            },
        )
        .await;
    let status = cluster.status.unwrap_or_default();
    (
        condition(&status, type_).unwrap().clone(),
        status.conditions.clone(),
    )
}

/// Waits until demo's condition `type_` says exactly `message`.
async fn wait_message(env: &TestEnv, type_: &str, message: &str) {
    env.wait_status("demo", message, TO_BLOCKER, |_, s| {
        let c = condition(s, type_).ok_or(format!("no {type_}"))?;
        if c.message == message {
            Ok(())
        } else {
            Err(format!("{type_}: {}", c.message))
        }
    })
    .await;
}

fn find<'a>(conditions: &'a [Condition], type_: &str) -> &'a Condition {
    conditions
        .iter()
        .find(|c| c.type_ == type_)
        .unwrap_or_else(|| panic!("no {type_} condition in {conditions:?}"))
}

fn assert_contains(what: &str, text: &str, part: &str) {
    assert!(text.contains(part), "{what}: {text:?} lacks {part:?}");
}

/// After the deadline: Progressing False and Degraded True, both with the blocker's reason and
/// its object named; the Progressing message is the Message column of `-o wide`.
async fn assert_overdue(env: &TestEnv, reason: &str, named: &str, since: Instant) {
    let (progressing, conditions) =
        wait_reason(env, "Progressing", "False", reason, Duration::from_secs(60)).await;
    say(&format!(
        "Progressing False {reason}: {:.1}s after the fault",
        since.elapsed().as_secs_f64()
    ));
    assert_contains("Progressing", &progressing.message, named);
    assert_contains(
        "Progressing",
        &progressing.message,
        "spec.rollout.progressDeadlineSeconds (10 s)",
    );
    let degraded = find(&conditions, "Degraded");
    assert_eq!(
        (degraded.status.as_str(), degraded.reason.as_str()),
        ("True", reason),
        "Degraded: {degraded:?}"
    );
    assert_contains("Degraded", &degraded.message, named);
    // The message changes with the blocker (a pull error turning into back-off): compare
    // the column with the status read right after it, until both are of one moment.
    let clusters = env.clusters();
    let column = eventually(
        "kubectl's Message column to be Progressing's message",
        Duration::from_secs(20),
        || async {
            let wide = env
                .kubectl(&["get", "curvecluster", "demo", "-o", "wide"])
                .ok("get -o wide");
            let row = parse_table(&wide).into_iter().next().ok_or("no row")?;
            let cluster = clusters.get("demo").await.map_err(|e| e.to_string())?;
            let status = cluster.status.unwrap_or_default();
            let message = condition(&status, "Progressing").map(|c| c.message.clone());
            match (row.get("MESSAGE"), message) {
                (Some(column), Some(message)) if *column == message => Ok(message),
                (column, message) => Err(format!("column {column:?}, Progressing {message:?}")),
            }
        },
    )
    .await;
    assert_contains("the Message column", &column, named);
}

/// The Warning Event of a new blocker: reason the blocker's, note the tier condition's
/// message (which names `named`).
async fn wait_blocker_event(env: &TestEnv, reason: &str, named: &str) {
    let events = env.api::<Event>();
    let event = eventually(
        &format!("a Warning {reason} event naming {named}"),
        Duration::from_secs(30),
        || async {
            let all = events
                .list(&ListParams::default())
                .await
                .map_err(|e| e.to_string())?
                .items;
            let of_demo: Vec<&Event> = all
                .iter()
                .filter(|e| e.regarding.as_ref().and_then(|r| r.name.as_deref()) == Some("demo"))
                .collect();
            of_demo
                .iter()
                .find(|e| {
                    e.reason.as_deref() == Some(reason)
                        && e.type_.as_deref() == Some("Warning")
                        && e.note.as_deref().unwrap_or_default().contains(named)
                })
                .map(|e| (*e).clone())
                .ok_or_else(|| {
                    let seen: Vec<_> = of_demo.iter().map(|e| (&e.reason, &e.note)).collect();
                    format!("events of demo: {seen:?}")
                })
        },
    )
    .await;
    say(&format!(
        "event {reason}: {}",
        event.note.unwrap_or_default()
    ));
}

/// The tier condition `type_` says False `reason` naming `named`; Available carries it. The
/// time from `since` is printed.
async fn assert_tier_blocked(
    env: &TestEnv,
    type_: &str,
    reason: &str,
    named: &str,
    since: Instant,
) -> Vec<Condition> {
    let (tier, _) = wait_reason(env, type_, "False", reason, TO_BLOCKER).await;
    say(&format!(
        "{type_} False {reason}: {:.1}s after the fault",
        since.elapsed().as_secs_f64()
    ));
    say(&format!("  {}", tier.message));
    assert_contains(type_, &tier.message, named);
    // Available says the first tier that is not up; it may take a status more to get there.
    let cluster = env
        .wait_status(
            "demo",
            "Available to carry the blocker",
            TO_BLOCKER,
            |_, s| {
                let available = condition(s, "Available").ok_or("no Available")?;
                if available.status == "False" && available.message.contains(named) {
                    Ok(())
                } else {
                    Err(format!(
                        "Available {}: {}",
                        available.reason, available.message
                    ))
                }
            },
        )
        .await;
    say(&format!(
        "Available carries it {:.1}s after the fault",
        since.elapsed().as_secs_f64()
    ));
    cluster.status.unwrap_or_default().conditions
}

/// a. No node matches the placement: the scheduler's words on EtcdQuorate, first while
/// Progressing is still Reconciling, then past the deadline as Progressing and Degraded.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs a Kubernetes API server (KUBECONFIG), see e2e/README.md"]
async fn blocked_unschedulable() {
    let env = TestEnv::new("unschedulable", 3).await;
    let _operator = env.start_operator().await;
    // The suite's default claims name no class and never bind: a pod that stays unbound would
    // be blocked by its claim (NoStorageClass). Volumes that a provisioner binds, as on a real
    // cluster, leave the scheduler's refusal as the cause.
    let _storage = FakeStorage::start(env.client.clone(), &env.namespace).await;
    let nowhere = json!({
        "placement": {"nodeSelector": {"e2e.curve.opencurve.io/pool": "nowhere"}},
        "etcd": {"storage": {"storageClassName": EXPANDABLE, "size": "10Gi"}},
    });
    let since = apply(&env, &demo(nowhere));
    let scheduler_said = "0/3 nodes are available: 3 node(s) didn't match Pod's node affinity/selector. \
                          preemption: 0/3 nodes are available: 3 Preemption is not helpful for scheduling.";
    let named = format!("pod demo-etcd-0 is unschedulable: {scheduler_said}");
    let conditions = assert_tier_blocked(&env, "EtcdQuorate", "Unschedulable", &named, since).await;
    let progressing = find(&conditions, "Progressing");
    assert_eq!(
        (progressing.status.as_str(), progressing.reason.as_str()),
        ("True", "Reconciling"),
        "before the deadline: {progressing:?}"
    );
    assert!(
        progressing.message.starts_with("waiting: ") && progressing.message.contains(&named),
        "{progressing:?}"
    );
    assert_overdue(&env, "Unschedulable", &named, since).await;
    // One Warning Event per change of the tier's blocker.
    wait_blocker_event(&env, "Unschedulable", "pod demo-etcd-0 is unschedulable").await;
}

/// b. The etcd claims name a StorageClass that does not exist: the scheduler leaves the pods
/// unbound, and the claim is named.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs a Kubernetes API server (KUBECONFIG), see e2e/README.md"]
async fn blocked_storage_class_not_found() {
    let env = TestEnv::new("noclass", 3).await;
    let _operator = env.start_operator().await;
    let missing = json!({"etcd": {"storage": {"storageClassName": "e2e-missing", "size": "10Gi"}}});
    let since = apply(&env, &demo(missing));
    let named = "PersistentVolumeClaim data-demo-etcd-0: StorageClass e2e-missing does not exist";
    assert_tier_blocked(&env, "EtcdQuorate", "StorageClassNotFound", named, since).await;
    let pod = env.api::<Pod>().get("demo-etcd-0").await.unwrap();
    assert_eq!(pod.spec.as_ref().and_then(|s| s.node_name.clone()), None);
    let scheduled = (pod.status.and_then(|s| s.conditions))
        .unwrap_or_default()
        .into_iter()
        .find(|c| c.type_ == "PodScheduled")
        .expect("PodScheduled");
    say(&format!(
        "demo-etcd-0 PodScheduled: {}",
        scheduled.message.as_deref().unwrap_or_default()
    ));
    assert_eq!(scheduled.reason.as_deref(), Some("Unschedulable"));
    assert_overdue(&env, "StorageClassNotFound", named, since).await;
    wait_blocker_event(&env, "StorageClassNotFound", "data-demo-etcd-0").await;
}

/// c. The image's tag does not exist: the kubelet's ErrImagePull / ImagePullBackOff on the
/// first init container of the etcd pods.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs a Kubernetes API server (KUBECONFIG), see e2e/README.md"]
async fn blocked_image_pull() {
    let env = TestEnv::new("pull", 3).await;
    let _operator = env.start_operator().await;
    let image = "opencurvedocker/curvebs:v0.0.0-e2e-missing";
    env.kubelet.fail_image_pulls(image);
    let since = apply(&env, &demo(json!({"image": image})));
    let named = format!("pod demo-etcd-0: init container config cannot pull {image} (");
    let conditions =
        assert_tier_blocked(&env, "EtcdQuorate", "ImagePullFailed", &named, since).await;
    let etcd = find(&conditions, "EtcdQuorate");
    assert!(
        etcd.message
            .contains("(ErrImagePull: rpc error: code = NotFound")
            || etcd
                .message
                .contains("(ImagePullBackOff: Back-off pulling image"),
        "{etcd:?}"
    );
    assert_overdue(&env, "ImagePullFailed", &named, since).await;
    wait_blocker_event(&env, "ImagePullFailed", "pod demo-etcd-0").await;
}

/// d. The ChunkServers exit at once each time they start: CrashLoopBackOff with the last run's
/// exit code.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs a Kubernetes API server (KUBECONFIG), see e2e/README.md"]
async fn blocked_crash_loop() {
    let env = TestEnv::new("crash", 3).await;
    let _operator = env.start_operator().await;
    let said = "F20250101 00:00:00.000000    42 chunkserver.cpp:231] Check failed: 0 == ret (0 vs. -1) Failed to init chunk file pool";
    // The chunkserver container's termination message falls back to its log
    // (FallbackToLogsOnError): the kubelet reports the exit code and the last log line.
    env.kubelet.crash_loop(
        "chunkserver",
        Exit {
            code: 1,
            output: said.to_string(),
        },
    );
    let since = apply(&env, &demo(json!({})));
    // A crash-looping container runs for a moment between back-offs: at any one reading some
    // of the three pods may be between crashes, so the pod named is any of them.
    let named = &format!(": container chunkserver keeps failing (CrashLoopBackOff: exit 1 {said})");
    assert_tier_blocked(&env, "ChunkServersReady", "ContainerFailing", named, since).await;
    assert_overdue(&env, "ContainerFailing", named, since).await;
    wait_blocker_event(&env, "ContainerFailing", "pod demo-chunkserver-0-").await;
}

/// e. The kubelet of a ChunkServer's node goes away; the node lifecycle controller marks the
/// node after its grace period, and the ChunkServer deleted there stays Terminating.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs a Kubernetes API server (KUBECONFIG), see e2e/README.md"]
async fn blocked_node_lost() {
    let env = TestEnv::new("nodelost", 3).await;
    let _operator = env.start_operator().await;
    apply(&env, &demo(json!({})));
    env.wait_available("demo", BRING_UP).await;
    let pods = env.api::<Pod>();
    let victim = "demo-chunkserver-0-0";
    let node = (pods.get(victim).await.unwrap().spec)
        .and_then(|s| s.node_name)
        .expect("bound");
    let lost_at = Instant::now();
    env.kubelet.lose_node(&node);
    let nodes: Api<Node> = Api::all(env.client.clone());
    let ready = eventually(
        &format!("the node lifecycle controller to mark {node}"),
        Duration::from_secs(120),
        || async {
            let n = nodes.get(&node).await.map_err(|e| e.to_string())?;
            let ready = (n.status.and_then(|s| s.conditions))
                .unwrap_or_default()
                .into_iter()
                .find(|c| c.type_ == "Ready")
                .ok_or("no Ready condition")?;
            if ready.status == "True" {
                Err("still Ready".into())
            } else {
                Ok(ready)
            }
        },
    )
    .await;
    say(&format!(
        "{node} Ready {} ({}) {:.1}s after its kubelet stopped",
        ready.status,
        ready.reason.unwrap_or_default(),
        lost_at.elapsed().as_secs_f64()
    ));
    pods.delete(victim, &DeleteParams::default()).await.unwrap();
    let deleted_at = Instant::now();
    let named = format!("pod {victim} is stuck terminating on node {node}, which is not Ready");
    let (_, conditions) =
        wait_reason(&env, "ChunkServersReady", "False", "NodeLost", TO_BLOCKER).await;
    say(&format!(
        "ChunkServersReady False NodeLost: {:.1}s after the delete",
        deleted_at.elapsed().as_secs_f64()
    ));
    let tier = find(&conditions, "ChunkServersReady");
    say(&format!("  {}", tier.message));
    assert_contains("ChunkServersReady", &tier.message, &named);
    let degraded = find(&conditions, "Degraded");
    assert_eq!(degraded.status, "True", "{degraded:?}");
    assert_contains("Degraded", &degraded.message, &named);
    let still = pods.get(victim).await.unwrap();
    assert!(
        still.metadata.deletion_timestamp.is_some(),
        "{victim} stays Terminating"
    );
    // What the message advises (and what lets the namespace go): force-delete the pod.
    let force = DeleteParams {
        grace_period_seconds: Some(0),
        ..DeleteParams::default()
    };
    pods.delete(victim, &force).await.unwrap();
    wait_blocker_event(&env, "NodeLost", victim).await;
}

/// f. Paused: a change of mds.replicas is held back and listed; Available keeps its reason;
/// resumed, the change is applied.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs a Kubernetes API server (KUBECONFIG), see e2e/README.md"]
async fn truth_pause_holds_back() {
    let env = TestEnv::new("holdback", 4).await;
    let _operator = env.start_operator().await;
    apply(&env, &curve_cluster("demo", json!({})));
    env.wait_available("demo", BRING_UP).await;
    env.patch_spec("demo", json!({"paused": true})).await;
    let (paused, _) = wait_reason(
        &env,
        "Progressing",
        "False",
        "Paused",
        Duration::from_secs(20),
    )
    .await;
    assert_eq!(
        paused.message,
        "spec.paused is true: nothing is changed; no change is held back"
    );
    env.patch_spec("demo", json!({"mds": {"replicas": 4}}))
        .await;
    let held = env
        .wait_status(
            "demo",
            "the MDS apply held back",
            Duration::from_secs(30),
            |_, s| {
                let p = condition(s, "Progressing").ok_or("no Progressing")?;
                if p.reason == "Paused" && p.message.contains("apply StatefulSet/demo-mds") {
                    Ok(())
                } else {
                    Err(format!("Progressing {}: {}", p.reason, p.message))
                }
            },
        )
        .await;
    let status = held.status.unwrap_or_default();
    let progressing = condition(&status, "Progressing").unwrap();
    say(&format!("paused: {}", progressing.message));
    assert!(
        progressing
            .message
            .starts_with("spec.paused is true: nothing is changed; held back: "),
        "{progressing:?}"
    );
    assert_eq!(progressing.status, "False");
    let available = condition(&status, "Available").unwrap();
    assert_eq!(
        (available.status.as_str(), available.reason.as_str()),
        ("True", "Available"),
        "Available keeps its real reason while paused"
    );
    let replicas = |s: &StatefulSet| s.spec.as_ref().and_then(|s| s.replicas);
    let sets = env.api::<StatefulSet>();
    assert_eq!(replicas(&sets.get("demo-mds").await.unwrap()), Some(3));
    env.patch_spec("demo", json!({"paused": false})).await;
    env.wait_available("demo", BRING_UP).await;
    assert_eq!(
        replicas(&sets.get("demo-mds").await.unwrap()),
        Some(4),
        "resumed: applied"
    );
}

/// g. etcd 3 → 5 asked for while etcd is down (every member's pod deleted and held): the
/// growth waits (EtcdMembershipBlocked), the figures are of the member list as it stands;
/// once etcd is back it grows.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs a Kubernetes API server (KUBECONFIG), see e2e/README.md"]
async fn truth_etcd_growth_deferred() {
    let env = TestEnv::new("deferred", 5).await;
    let _operator = env.start_operator().await;
    apply(&env, &curve_cluster("demo", json!({})));
    env.wait_available("demo", BRING_UP).await;
    env.kubelet.hold("etcd");
    let pods = env.api::<Pod>();
    for i in 0..3 {
        pods.delete(&format!("demo-etcd-{i}"), &DeleteParams::default())
            .await
            .unwrap();
    }
    let down = Instant::now();
    wait_message(&env, "EtcdQuorate", "0 of 3 members ready, quorum is 2").await;
    say(&format!(
        "EtcdQuorate 0 of 3 {:.1}s after the etcd pods were deleted",
        down.elapsed().as_secs_f64()
    ));
    let asked = Instant::now();
    env.patch_spec("demo", json!({"etcd": {"replicas": 5}}))
        .await;
    let figures = "0 of 3 members ready, quorum is 2 (the spec asks for 5)";
    wait_message(&env, "EtcdQuorate", figures).await;
    say(&format!(
        "EtcdQuorate {:.1}s after the resize: {figures}",
        asked.elapsed().as_secs_f64()
    ));
    let (blocked, _) = wait_reason(
        &env,
        "Progressing",
        "False",
        "EtcdMembershipBlocked",
        TO_BLOCKER,
    )
    .await;
    say(&format!(
        "Progressing EtcdMembershipBlocked {:.1}s after the resize: {}",
        asked.elapsed().as_secs_f64(),
        blocked.message
    ));
    assert_contains("Progressing", &blocked.message, "spec.etcd.replicas: 3 → 5");
    let released = Instant::now();
    env.kubelet.release("etcd");
    let grown = env.wait_available("demo", Duration::from_secs(240)).await;
    say(&format!(
        "grown to 5 members {:.1}s after etcd was released",
        released.elapsed().as_secs_f64()
    ));
    let status = grown.status.unwrap_or_default();
    assert_eq!(
        condition(&status, "EtcdQuorate").unwrap().message,
        "5 of 5 members ready, quorum is 3"
    );
}

/// The operator's series labelled with cluster `name` of the test namespace.
async fn series_of(
    env: &TestEnv,
    operator: &curve_operator_e2e::operator::Operator,
    name: &str,
) -> BTreeSet<String> {
    let metrics = operator.samples().await;
    (metrics.samples.keys())
        .filter(|(_, labels)| {
            labels.get("namespace").map(String::as_str) == Some(env.namespace.as_str())
                && labels.get("name").map(String::as_str) == Some(name)
        })
        .map(|(sample, _)| sample.clone())
        .collect()
}

/// h. Deleting a cluster of the default policy (Retain) removes every series of it from the
/// operator's /metrics.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs a Kubernetes API server (KUBECONFIG), see e2e/README.md"]
async fn truth_retain_deletion_leaves_no_series() {
    let env = TestEnv::new("series", 3).await;
    let operator = env.start_operator().await;
    apply(&env, &curve_cluster("demo", json!({})));
    env.wait_available("demo", BRING_UP).await;
    let before = series_of(&env, &operator, "demo").await;
    say(&format!("{} series of demo: {before:?}", before.len()));
    assert!(before.len() >= 5, "{before:?}");
    env.kubectl(&["delete", "curvecluster", "demo", "--timeout=60s"])
        .ok("delete demo");
    let deleted = Instant::now();
    eventually("no series of demo", Duration::from_secs(30), || async {
        let left = series_of(&env, &operator, "demo").await;
        if left.is_empty() {
            Ok(())
        } else {
            Err(format!("{left:?}"))
        }
    })
    .await;
    say(&format!(
        "series gone {:.1}s after the CurveCluster",
        deleted.elapsed().as_secs_f64()
    ));
    let claims = env.api::<PersistentVolumeClaim>();
    let kept = claims
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
        .len();
    assert_eq!(kept, 6, "Retain keeps the claims");
}

/// The claims and StatefulSets of cluster `demo` (by name).
async fn claims_and_sets(env: &TestEnv) -> (Vec<String>, Vec<String>) {
    let claims = (env
        .api::<PersistentVolumeClaim>()
        .list(&ListParams::default()))
    .await
    .unwrap()
    .items
    .iter()
    .filter(|c| c.metadata.deletion_timestamp.is_none())
    .map(ResourceExt::name_any)
    .filter(|n| n.starts_with("data-demo-"))
    .collect();
    let sets = (env.api::<StatefulSet>().list(&ListParams::default()))
        .await
        .unwrap()
        .items
        .iter()
        .map(ResourceExt::name_any)
        .filter(|n| n.starts_with("demo-"))
        .collect();
    (claims, sets)
}

/// i. Confirmed deletion: the StatefulSets go before any claim, and no claim of the cluster is
/// left 60 s after the CurveCluster is gone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs a Kubernetes API server (KUBECONFIG), see e2e/README.md"]
async fn truth_confirmed_deletion_leaves_no_claim() {
    let env = TestEnv::new("wipe", 3).await;
    let _operator = env.start_operator().await;
    let wipe = json!({"cleanup": {"policy": "Delete", "confirmation": "yes-really-destroy-data"}});
    apply(&env, &curve_cluster("demo", wipe));
    env.wait_available("demo", BRING_UP).await;
    let (claims, _) = claims_and_sets(&env).await;
    assert_eq!(claims.len(), 6, "{claims:?}");
    env.kubectl(&["delete", "curvecluster", "demo", "--wait=false"])
        .ok("delete demo");
    let deleted = Instant::now();
    let (mut sets_gone, mut first_claim_gone, mut cluster_gone) = (None, None, None);
    while cluster_gone.is_none_or(|gone: Instant| gone.elapsed() < Duration::from_secs(60)) {
        assert!(
            deleted.elapsed() < Duration::from_secs(180),
            "the CurveCluster is still there 180 s after its deletion"
        );
        let (claims, sets) = claims_and_sets(&env).await;
        if sets.is_empty() {
            sets_gone.get_or_insert(deleted.elapsed());
        }
        if claims.len() < 6 {
            first_claim_gone.get_or_insert(deleted.elapsed());
        }
        if cluster_gone.is_none() && env.clusters().get_opt("demo").await.unwrap().is_none() {
            cluster_gone = Some(Instant::now());
            say(&format!(
                "CurveCluster gone {:.1}s after its deletion",
                deleted.elapsed().as_secs_f64()
            ));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    say(&format!(
        "StatefulSets gone at {sets_gone:.1?}, first claim deleted at {first_claim_gone:.1?}"
    ));
    let (sets_gone, first_claim_gone) = (sets_gone.unwrap(), first_claim_gone.unwrap());
    assert!(
        sets_gone <= first_claim_gone,
        "a claim was deleted ({first_claim_gone:?}) before the StatefulSets were gone ({sets_gone:?})"
    );
    let (claims, sets) = claims_and_sets(&env).await;
    assert!(
        claims.is_empty() && sets.is_empty(),
        "60 s after the CurveCluster is gone: claims {claims:?}, StatefulSets {sets:?}"
    );
}

/// j. A cluster re-created under the name of one deleted with Retain adopts the claims left
/// behind, and says so.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs a Kubernetes API server (KUBECONFIG), see e2e/README.md"]
async fn truth_recreated_cluster_adopts_retained_claims() {
    let env = TestEnv::new("adopt", 3).await;
    let _operator = env.start_operator().await;
    apply(&env, &curve_cluster("demo", json!({})));
    env.wait_available("demo", BRING_UP).await;
    env.kubectl(&["delete", "curvecluster", "demo", "--timeout=60s"])
        .ok("delete demo");
    let (retained, _) = eventually(
        "the StatefulSets collected",
        Duration::from_secs(60),
        || async {
            let (claims, sets) = claims_and_sets(&env).await;
            let pods = env
                .api::<Pod>()
                .list(&ListParams::default())
                .await
                .unwrap()
                .items;
            if sets.is_empty() && pods.is_empty() {
                Ok((claims, sets))
            } else {
                Err(format!("StatefulSets {sets:?}, {} pods", pods.len()))
            }
        },
    )
    .await;
    assert_eq!(retained.len(), 6, "{retained:?}");
    let recreated = apply(&env, &curve_cluster("demo", json!({})));
    let (adopted, _) = wait_reason(
        &env,
        "DataAdopted",
        "True",
        "RetainedClaimsAdopted",
        TO_BLOCKER,
    )
    .await;
    say(&format!(
        "DataAdopted {:.1}s after the re-creation: {}",
        recreated.elapsed().as_secs_f64(),
        adopted.message
    ));
    // The message counts the claims and names the first three, in name order.
    let mut sorted = retained.clone();
    sorted.sort();
    let named = format!(
        "6 of this cluster's data claims existed before the CurveCluster was created ({} and 3 more)",
        sorted[..3].join(", ")
    );
    assert_contains("DataAdopted", &adopted.message, &named);
    let events = env.api::<Event>();
    eventually(
        "a RetainedDataAdopted event",
        Duration::from_secs(30),
        || async {
            let all = events
                .list(&ListParams::default())
                .await
                .map_err(|e| e.to_string())?;
            all.items
                .iter()
                .find(|e| e.reason.as_deref() == Some("RetainedDataAdopted"))
                .map(|_| ())
                .ok_or_else(|| format!("{} events, none RetainedDataAdopted", all.items.len()))
        },
    )
    .await;
    env.wait_available("demo", BRING_UP).await;
    say(&format!(
        "Available again {:.1}s after the re-creation",
        recreated.elapsed().as_secs_f64()
    ));
}

/// An admission policy refusing the cluster's etcd pods (as a Pod Security or registry policy
/// would), and when its objects take effect: a server dry run of such a pod is refused.
fn refuse_etcd_pods(env: &TestEnv) -> String {
    let name = format!("{}-no-etcd-pods", env.namespace);
    let namespace = &env.namespace;
    let policy = format!(
        r#"apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingAdmissionPolicy
metadata:
  name: {name}
spec:
  failurePolicy: Fail
  matchConstraints:
    resourceRules:
    - apiGroups: [""]
      apiVersions: ["v1"]
      operations: ["CREATE"]
      resources: ["pods"]
    objectSelector:
      matchLabels:
        app.kubernetes.io/component: etcd
  validations:
  - expression: "false"
    message: etcd pods are not admitted in this namespace
---
apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingAdmissionPolicyBinding
metadata:
  name: {name}
spec:
  policyName: {name}
  validationActions: [Deny]
  matchResources:
    namespaceSelector:
      matchLabels:
        kubernetes.io/metadata.name: {namespace}
"#
    );
    env.kubectl_stdin(&["apply", "-f", "-"], &policy)
        .ok("create the admission policy");
    name
}

/// f. The StatefulSet controller cannot create the etcd pods (an admission policy refuses
/// them): no pod exists to read, so the tier names the pod from the controller's FailedCreate
/// Event with the API server's answer; once the policy goes, the cluster comes up.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs a Kubernetes API server (KUBECONFIG), see e2e/README.md"]
async fn blocked_pod_create_failed() {
    let env = TestEnv::new("createfailed", 3).await;
    let policy = refuse_etcd_pods(&env);
    let probe = json!({"apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "probe", "labels": {"app.kubernetes.io/component": "etcd"}},
        "spec": {"containers": [{"name": "c", "image": "busybox"}]}});
    eventually(
        "the admission policy to refuse",
        Duration::from_secs(30),
        || async {
            let out = env.kubectl_stdin(
                &["create", "--dry-run=server", "-f", "-"],
                &probe.to_string(),
            );
            if out.success {
                Err("still accepted".to_string())
            } else {
                Ok(())
            }
        },
    )
    .await;
    let _operator = env.start_operator().await;
    let since = apply(&env, &demo(json!({})));
    let named = "StatefulSet demo-etcd cannot create pod demo-etcd-0: pods \"demo-etcd-0\" is forbidden: \
                 ValidatingAdmissionPolicy";
    assert_tier_blocked(&env, "EtcdQuorate", "PodCreateFailed", named, since).await;
    let (tier, _) = wait_reason(&env, "EtcdQuorate", "False", "PodCreateFailed", TO_BLOCKER).await;
    assert_contains(
        "EtcdQuorate",
        &tier.message,
        "denied request: etcd pods are not admitted in this namespace",
    );
    wait_blocker_event(
        &env,
        "PodCreateFailed",
        "StatefulSet demo-etcd cannot create pod demo-etcd-0",
    )
    .await;
    let lifted = Instant::now();
    for kind in [
        "validatingadmissionpolicybinding",
        "validatingadmissionpolicy",
    ] {
        env.kubectl(&["delete", kind, &policy])
            .ok("delete the policy");
    }
    env.wait_available("demo", Duration::from_secs(240)).await;
    say(&format!(
        "available {:.1}s after the policy was deleted",
        lifted.elapsed().as_secs_f64()
    ));
}

/// An etcd growth asked for before the cluster was ever up is held back and said so
/// (EtcdMembershipBlocked, the initial size named); once the initial members run it proceeds
/// one member at a time.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs a Kubernetes API server (KUBECONFIG), see e2e/README.md"]
async fn truth_etcd_growth_deferred_before_bring_up() {
    let env = TestEnv::new("deferredfirst", 5).await;
    let _operator = env.start_operator().await;
    env.kubelet.hold("etcd");
    apply(&env, &curve_cluster("demo", json!({})));
    wait_message(&env, "EtcdQuorate", "0 of 3 members ready, quorum is 2").await;
    let asked = Instant::now();
    env.patch_spec("demo", json!({"etcd": {"replicas": 5}}))
        .await;
    let (blocked, _) = wait_reason(
        &env,
        "Progressing",
        "False",
        "EtcdMembershipBlocked",
        TO_BLOCKER,
    )
    .await;
    say(&format!(
        "Progressing EtcdMembershipBlocked {:.1}s after the resize: {}",
        asked.elapsed().as_secs_f64(),
        blocked.message
    ));
    assert_contains(
        "Progressing",
        &blocked.message,
        "spec.etcd.replicas: 3 → 5 waits until the 3 initial etcd members are up",
    );
    let sets = env.api::<StatefulSet>();
    let etcd = sets.get("demo-etcd").await.unwrap();
    assert_eq!(
        etcd.spec.and_then(|s| s.replicas),
        Some(3),
        "the initial members are not changed before they ran"
    );
    let released = Instant::now();
    env.kubelet.release("etcd");
    let grown = env.wait_available("demo", Duration::from_secs(240)).await;
    say(&format!(
        "up and grown to 5 members {:.1}s after etcd was released",
        released.elapsed().as_secs_f64()
    ));
    let status = grown.status.unwrap_or_default();
    assert_eq!(
        condition(&status, "EtcdQuorate").unwrap().message,
        "5 of 5 members ready, quorum is 3"
    );
}
