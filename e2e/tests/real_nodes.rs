//! What ChunkServers need on real nodes (issue 28), on the Curve stand-ins: readiness that
//! means serving holds a drain at the disruption budget, a volume that moved to another node
//! is refused with the reason, and a disk slot added on a running cluster registers.
//!
//!   KUBECONFIG=/path/to/kubeconfig cargo test -p curve-operator-e2e --test real_nodes -- --ignored --test-threads=1
//!
//! The harness kubelet runs each ChunkServer pod's own startup and readiness probes (the
//! readiness script `curl`s `ChunkServerStatus` on the stand-in, which reports its copysets
//! loaded only `copyset_load_time` after its start) and plays the start wrapper's identity
//! rule on the pod's volume.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use curve_operator::api::CurveCluster;
use curve_operator::desired::start::{moved_volume_refusal, refusal_message};
use curve_operator::validate::check_slot_increase;
use curve_operator_e2e::cluster::connect_without_retries;
use curve_operator_e2e::curve_model::{CurveSettings, OnlineState};
use curve_operator_e2e::env::{TestEnv, condition};
use curve_operator_e2e::manifests::curve_cluster;
use curve_operator_e2e::util::{eventually, say};
use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use kube::ResourceExt;
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use serde_json::{Value, json};

const BRING_UP: Duration = Duration::from_secs(180);
/// How long a blocker may take to reach the status: a pod event or the resync.
const TO_STATUS: Duration = Duration::from_secs(60);
/// The ChunkServer port of slot 0 (the spec's default).
const PORT: u16 = 8200;

/// Curve's timings shortened so its health settles in seconds; ChunkServers report their
/// copysets loaded `load` after they start.
fn settings(load: Duration) -> CurveSettings {
    CurveSettings {
        miss_timeout: Duration::from_secs(3),
        offline_timeout: Duration::from_secs(600),
        heartbeat_interval: Duration::from_secs(1),
        metric_interval: Duration::from_secs(2),
        copyset_load_time: load,
        ..CurveSettings::default()
    }
}

async fn bring_up(env: &TestEnv) -> Instant {
    let applied = Instant::now();
    env.kubectl_stdin(
        &["apply", "-f", "-"],
        &curve_cluster("demo", json!({})).to_string(),
    )
    .ok("apply demo");
    env.wait_available("demo", BRING_UP).await;
    say(&format!(
        "demo Available {:.1}s after the apply",
        applied.elapsed().as_secs_f64()
    ));
    applied
}

fn is_ready(pod: &Pod) -> bool {
    (pod.status.as_ref().and_then(|s| s.conditions.as_ref()))
        .into_iter()
        .flatten()
        .any(|c| c.type_ == "Ready" && c.status == "True")
}

fn pod_ip(pod: &Pod) -> Option<String> {
    pod.status.as_ref()?.pod_ip.clone()
}

fn node_of(pod: &Pod) -> Option<String> {
    pod.spec.as_ref()?.node_name.clone()
}

/// Evicts pod `name` through the Eviction subresource (policy/v1), as `kubectl drain` does:
/// `Err` with the API server's code and message when refused. `pods` must not retry a 429
/// (`kubectl drain` itself tries again every 5 s).
async fn evict(pods: &Api<Pod>, name: &str) -> Result<(), (u16, String)> {
    let namespace = pods.namespace().unwrap_or_default();
    let eviction = json!({
        "apiVersion": "policy/v1",
        "kind": "Eviction",
        "metadata": {"name": name, "namespace": namespace},
    });
    match (pods.create_subresource::<_, Value>("eviction", name, &PostParams::default(), &eviction))
        .await
    {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(e)) => Err((e.code, e.message)),
        Err(e) => Err((0, e.to_string())),
    }
}

/// Whether `address` accepts a TCP connection (what the former TCP readiness probe asked).
async fn accepts(address: &str) -> bool {
    let connect = tokio::net::TcpStream::connect(address);
    matches!(
        tokio::time::timeout(Duration::from_millis(300), connect).await,
        Ok(Ok(_))
    )
}

/// A drain through the budget: one ChunkServer evicted, a second refused (429) while the first
/// one's replacement loads its copysets — its port already open — and allowed once it is Ready.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs a Kubernetes API server (KUBECONFIG), see e2e/README.md"]
async fn real_nodes_readiness_holds_the_budget() {
    let load = Duration::from_secs(8);
    let env = TestEnv::new("rnready", 3).await;
    env.kubelet.set_curve_settings(settings(load));
    let _operator = env.start_operator().await;
    bring_up(&env).await;
    let budgets = env.api::<PodDisruptionBudget>();
    eventually(
        "the ChunkServers' budget to allow one disruption",
        Duration::from_secs(30),
        || async {
            let budget = budgets
                .get("demo-chunkserver")
                .await
                .map_err(|e| e.to_string())?;
            let status = budget.status.unwrap_or_default();
            if status.disruptions_allowed == 1 && status.current_healthy == 3 {
                Ok(())
            } else {
                Err(format!("{status:?}"))
            }
        },
    )
    .await;

    let pods = env.api::<Pod>();
    let evictions: Api<Pod> = Api::namespaced(connect_without_retries().await, &env.namespace);
    let (first, second) = ("demo-chunkserver-0-0", "demo-chunkserver-0-1");
    let old_uid = pods.get(first).await.unwrap().uid();
    let second_uid = pods.get(second).await.unwrap().uid();
    let evicted = Instant::now();
    evict(&evictions, first)
        .await
        .unwrap_or_else(|e| panic!("the first eviction, of {first}, was refused: {e:?}"));
    say(&format!("{first} evicted (allowed by the budget)"));

    // Every 200 ms: the second eviction tried, then the first pod read.
    let (mut recreated, mut listening, mut ready) = (None, None, None);
    let mut refused: Vec<(Duration, String)> = Vec::new();
    let mut refused_while_loading = 0;
    let allowed = loop {
        assert!(
            evicted.elapsed() < Duration::from_secs(120),
            "the second eviction was never allowed; {} refusals, {first} recreated {recreated:?}, listening {listening:?}, ready {ready:?}",
            refused.len()
        );
        let attempt = evict(&evictions, second).await;
        let at = evicted.elapsed();
        let pod = pods.get_opt(first).await.unwrap();
        let replacement = pod.filter(|p| p.uid() != old_uid);
        let now_ready = replacement.as_ref().is_some_and(is_ready);
        match attempt {
            Ok(()) => {
                assert!(
                    now_ready,
                    "the second eviction was allowed while {first}'s replacement is not Ready"
                );
                ready.get_or_insert(at);
                break at;
            }
            Err((code, message)) => {
                assert_eq!(code, 429, "refused otherwise than by the budget: {message}");
                refused.push((at, message));
            }
        }
        if let Some(pod) = &replacement {
            recreated.get_or_insert(at);
            let address = pod_ip(pod).map(|ip| format!("{ip}:{PORT}"));
            let open = match &address {
                Some(address) => accepts(address).await,
                None => false,
            };
            if open && !now_ready {
                listening.get_or_insert(at);
                refused_while_loading += 1;
            }
            if now_ready {
                ready.get_or_insert(at);
            }
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let secs = |d: Option<Duration>| {
        d.map_or_else(
            || "never".to_string(),
            |d| format!("{:.1}s", d.as_secs_f64()),
        )
    };
    say(&format!(
        "after the first eviction: replacement created {}, its port open (not Ready, copysets loading) {}, Ready {}, the second eviction allowed {:.1}s",
        secs(recreated),
        secs(listening),
        secs(ready),
        allowed.as_secs_f64()
    ));
    say(&format!(
        "the second eviction refused {} times (HTTP 429), {refused_while_loading} of them while the replacement's port was open and its copysets loading; first refusal: {}",
        refused.len(),
        refused.first().map_or("", |r| r.1.as_str())
    ));
    let (listening, ready) = (listening.expect("port seen open before Ready"), ready);
    assert!(
        refused_while_loading >= 3,
        "the budget held while the copysets loaded only {refused_while_loading} times"
    );
    // The stand-in reports its copysets loaded `load` after it started serving; the prober
    // runs every second.
    let loading = ready.unwrap_or(allowed).saturating_sub(listening);
    assert!(
        loading + Duration::from_secs(1) >= load,
        "Ready {:.1}s after the port opened, the copysets load for {load:?}",
        loading.as_secs_f64()
    );
    // The second pod back (Ready after its own load) before the cluster is whole again.
    eventually(
        &format!("{second}'s replacement Ready"),
        Duration::from_secs(60),
        || async {
            let pod = pods.get_opt(second).await.map_err(|e| e.to_string())?;
            match pod {
                Some(p) if p.uid() != second_uid && is_ready(&p) => Ok(()),
                _ => Err("not yet".to_string()),
            }
        },
    )
    .await;
    env.wait_available("demo", BRING_UP).await;
    say(&format!(
        "{second}'s replacement Ready and demo Available again {:.1}s after the first eviction",
        evicted.elapsed().as_secs_f64()
    ));
}

/// A ChunkServer pod that lands on another node with its volume (as network-attached storage
/// would let it) is refused by the start wrapper; the status names the pod and the reason, and
/// Curve never sees the ChunkServer from the new address. The volume moved back, it starts as
/// the same ChunkServer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs a Kubernetes API server (KUBECONFIG), see e2e/README.md"]
async fn real_nodes_moved_volume_is_refused() {
    let env = TestEnv::new("rnmoved", 4).await;
    env.kubelet.set_curve_settings(settings(Duration::ZERO));
    let _operator = env.start_operator().await;
    bring_up(&env).await;
    let pods = env.api::<Pod>();
    let victim = "demo-chunkserver-0-1";
    let pod = pods.get(victim).await.unwrap();
    let (home, home_ip) = (node_of(&pod).unwrap(), pod_ip(&pod).unwrap());
    let claim = (pod.spec.iter().flat_map(|s| s.volumes.iter().flatten()))
        .find_map(|v| v.persistent_volume_claim.as_ref())
        .map(|c| c.claim_name.clone())
        .expect("a data claim");
    let id = env.kubelet.chunkserver_id(victim).expect("registered");
    // The node without a ChunkServer (one per node per slot).
    let taken: BTreeSet<String> = (pods.list(&Default::default()).await.unwrap().items.iter())
        .filter(|p| p.name_any().starts_with("demo-chunkserver-"))
        .filter_map(node_of)
        .collect();
    let away = (env.kubelet.nodes().into_iter())
        .find(|n| !taken.contains(&n.name))
        .expect("a node without a ChunkServer");

    env.kubelet.move_volume(&claim, &away.name);
    let moved = Instant::now();
    pods.delete(victim, &DeleteParams::default()).await.unwrap();
    eventually(
        &format!("{victim} bound to {}", away.name),
        Duration::from_secs(60),
        || async {
            let pod = pods.get_opt(victim).await.map_err(|e| e.to_string())?;
            match pod.as_ref().and_then(node_of) {
                Some(node) if node == away.name => Ok(()),
                other => Err(format!("on {other:?}")),
            }
        },
    )
    .await;
    say(&format!(
        "{victim} (ChunkServer {id}, registered from {home} {home_ip}) bound to {} ({}) with its volume {:.1}s after the delete",
        away.name,
        away.ip,
        moved.elapsed().as_secs_f64()
    ));
    let refusal = refusal_message(&moved_volume_refusal(&home, &home_ip, &away.name, &away.ip));
    let named = format!(
        "pod {victim}: container chunkserver keeps failing (CrashLoopBackOff: exit 1 {refusal})"
    );
    let cluster = env
        .wait_status(
            "demo",
            "the moved volume named",
            TO_STATUS,
            |_, s| match condition(s, "ChunkServersReady") {
                Some(c) if c.reason == "ContainerFailing" && c.message.contains(&named) => Ok(()),
                other => Err(format!("ChunkServersReady {other:?}")),
            },
        )
        .await;
    let status = cluster.status.unwrap_or_default();
    let tier = condition(&status, "ChunkServersReady").unwrap();
    say(&format!(
        "ChunkServersReady {} {} {:.1}s after the delete: {}",
        tier.status,
        tier.reason,
        moved.elapsed().as_secs_f64(),
        tier.message
    ));
    assert_eq!(tier.status, "False");

    // Curve: nothing registered from the new address, the ChunkServer still known at its
    // own; checked over a few heartbeat periods.
    for _ in 0..5 {
        {
            let handle = env.kubelet.curve_model("demo");
            let model = handle.model.lock().unwrap();
            let from_away: Vec<u32> = (model.chunkservers.values())
                .filter(|c| c.ip == away.ip)
                .map(|c| c.id)
                .collect();
            assert!(
                from_away.is_empty(),
                "ChunkServers registered from {}: {from_away:?}",
                away.ip
            );
            let known = &model.chunkservers[&id];
            assert_eq!(
                (known.ip.as_str(), known.port),
                (home_ip.as_str(), u32::from(PORT))
            );
            assert!(
                !model.is_running(id),
                "ChunkServer {id} runs from the moved volume"
            );
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    let online = {
        let handle = env.kubelet.curve_model("demo");
        let model = handle.model.lock().unwrap();
        model.chunkservers[&id].online
    };
    say(&format!(
        "Curve: no ChunkServer from {} over 5 s; ChunkServer {id} stays at {home_ip}:{PORT} ({online:?})",
        away.ip
    ));
    assert_ne!(online, OnlineState::Online, "no heartbeat reaches the MDS");

    // The volume back on its node: the same ChunkServer starts again.
    env.kubelet.move_volume(&claim, &home);
    let back = Instant::now();
    pods.delete(victim, &DeleteParams::default()).await.unwrap();
    env.wait_available("demo", BRING_UP).await;
    let pod = pods.get(victim).await.unwrap();
    assert_eq!(node_of(&pod).as_deref(), Some(home.as_str()));
    assert_eq!(env.kubelet.chunkserver_id(victim), Some(id));
    say(&format!(
        "the volume back on {home}: {victim} runs as ChunkServer {id} again, demo Available {:.1}s after the delete",
        back.elapsed().as_secs_f64()
    ));
}

/// `status.record.serverPort`, and the ChunkServers the model knows per port.
async fn server_port(env: &TestEnv) -> Option<i32> {
    let cluster = env.clusters().get("demo").await.unwrap();
    cluster.status?.record?.server_port
}

fn chunkservers_by_port(env: &TestEnv) -> Vec<(u32, String, u32)> {
    let handle = env.kubelet.curve_model("demo");
    let model = handle.model.lock().unwrap();
    let mut found: Vec<(u32, String, u32)> = (model.chunkservers.values())
        .map(|c| (c.port, c.ip.clone(), c.server))
        .collect();
    found.sort();
    found
}

/// `disksPerNode` 1 → 2: refused while the record says Curve registered the servers with the
/// ChunkServer port (a record from before the port was kept); with the servers registered with
/// port 0, the new slot's ChunkServers start, register on the same servers, and the cluster is
/// Available with its copysets healthy.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs a Kubernetes API server (KUBECONFIG), see e2e/README.md"]
async fn real_nodes_disk_slot_added_registers() {
    let env = TestEnv::new("rnslot", 3).await;
    env.kubelet
        .set_curve_settings(settings(Duration::from_secs(2)));
    let operator = env.start_operator().await;
    bring_up(&env).await;
    assert_eq!(
        server_port(&env).await,
        Some(0),
        "the pool's servers: port 0"
    );
    let servers_ports: Vec<u32> = {
        let handle = env.kubelet.curve_model("demo");
        let model = handle.model.lock().unwrap();
        model.servers.values().map(|s| s.internal_port).collect()
    };
    assert_eq!(servers_ports, [0, 0, 0], "Curve's servers");
    let copysets = env.kubelet.curve_copyset_count("demo") as i64;

    // A record from before the port was kept (an operator that did not write it): Curve
    // registered such a pool's servers with the ChunkServer port.
    let clusters = env.clusters();
    let set_port = |port: Value| {
        let clusters = clusters.clone();
        async move {
            let patch = json!({"status": {"record": {"serverPort": port}}});
            (clusters.patch_status("demo", &PatchParams::default(), &Patch::Merge(patch)))
                .await
                .expect("patch the record");
        }
    };
    set_port(Value::Null).await;
    env.settle(&operator, "demo").await;
    assert_eq!(server_port(&env).await, None, "the record keeps no port");
    let refused_at = Instant::now();
    env.patch_spec("demo", json!({"chunkservers": {"disksPerNode": 2}}))
        .await;
    let cluster: CurveCluster = clusters.get("demo").await.unwrap();
    let expected = check_slot_increase(1, &cluster.spec.chunkservers, i32::from(PORT))
        .expect("a refusal")
        .to_string();
    let refused = env
        .wait_status(
            "demo",
            "the slot increase refused",
            TO_STATUS,
            |_, s| match condition(s, "Progressing") {
                Some(c) if c.reason == "ChangeRefused" && c.message.contains(&expected) => Ok(()),
                other => Err(format!("Progressing {other:?}")),
            },
        )
        .await;
    let status = refused.status.unwrap_or_default();
    say(&format!(
        "ChangeRefused {:.1}s after disksPerNode 1 → 2: {}",
        refused_at.elapsed().as_secs_f64(),
        condition(&status, "Progressing").unwrap().message
    ));
    env.settle(&operator, "demo").await;
    let sets = env.api::<StatefulSet>();
    assert!(
        sets.get_opt("demo-chunkserver-1").await.unwrap().is_none(),
        "no StatefulSet for the refused slot"
    );
    assert_eq!(chunkservers_by_port(&env).len(), 3);

    // The record as Curve has it (port 0): the slot is added.
    set_port(json!(0)).await;
    let added = Instant::now();
    env.settle(&operator, "demo").await;
    eventually(
        "six ChunkServers registered",
        Duration::from_secs(120),
        || async {
            let found = chunkservers_by_port(&env);
            if found.len() == 6 {
                Ok(())
            } else {
                Err(format!("{found:?}"))
            }
        },
    )
    .await;
    say(&format!(
        "the new slot's 3 ChunkServers registered {:.1}s after the record said port 0",
        added.elapsed().as_secs_f64()
    ));
    env.wait_available("demo", BRING_UP).await;
    say(&format!(
        "demo Available with 2 disk slots {:.1}s after the record said port 0",
        added.elapsed().as_secs_f64()
    ));
    let found = chunkservers_by_port(&env);
    let slot = |port: u32| -> Vec<(String, u32)> {
        (found.iter())
            .filter(|c| c.0 == port)
            .map(|c| (c.1.clone(), c.2))
            .collect()
    };
    assert_eq!(
        slot(u32::from(PORT) + 1),
        slot(u32::from(PORT)),
        "the new slot's ChunkServers on the same servers, one per node"
    );
    let health = env
        .wait_status(
            "demo",
            "every copyset healthy",
            Duration::from_secs(30),
            |_, s| {
                let counted = s.health.as_ref().and_then(|h| h.copysets.as_ref());
                match counted {
                    Some(c) if c.total == copysets && c.unhealthy == 0 => Ok(()),
                    other => Err(format!("copysets {other:?}")),
                }
            },
        )
        .await
        .status
        .unwrap_or_default()
        .health
        .unwrap();
    say(&format!(
        "Curve: {copysets} copysets, none unhealthy; verdict {:?}: {}",
        health.verdict,
        health.message.unwrap_or_default()
    ));
}
