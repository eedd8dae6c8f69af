//! ChunkServers leaving Curve (issue 29): a scale-in, a removed disk slot and a lost disk,
//! carried out by the operator on the MDS and ChunkServer stand-ins, whose model drains a
//! PENDDING ChunkServer by Curve's copyset scheduler (a ChangePeer per copyset onto a healthy
//! ChunkServer of the same zone, one per target at a time), marks it RETIRED by the healthy
//! checker's rule and deletes only what Curve deletes.
//!
//!   KUBECONFIG=/path/to/kubeconfig cargo test -p curve-operator-e2e --test retire -- --ignored
//!
//! Scenario names contain `retire`, `replace` or `scale_in`.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use curve_operator::api::{CurveClusterStatus, HealthVerdict, RetireStep};
use curve_operator_e2e::curve_model::{ChunkServerStatus, CurveSettings};
use curve_operator_e2e::env::{TestEnv, condition};
use curve_operator_e2e::manifests::curve_cluster;
use curve_operator_e2e::operator::Operator;
use curve_operator_e2e::util::say;
use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::{PersistentVolumeClaim, Pod};
use kube::api::DeleteParams;
use serde_json::{Value, json};

const BRING_UP: Duration = Duration::from_secs(180);
const TO_VERDICT: Duration = Duration::from_secs(40);

fn retire_of(status: &CurveClusterStatus) -> Option<curve_operator::api::ChunkServerRetire> {
    status.record.as_ref()?.retire.clone()
}

fn progressing(status: &CurveClusterStatus) -> (String, String) {
    condition(status, "Progressing")
        .map(|c| (c.reason.clone(), c.message.clone()))
        .unwrap_or_default()
}

/// Brings `demo` up with `spec` and waits until Curve reads healthy with every copyset.
async fn up(env: &TestEnv, spec: Value) -> Operator {
    env.kubelet.set_curve_settings(CurveSettings::fast());
    let operator = env.start_operator().await;
    let applied = Instant::now();
    env.kubectl_stdin(
        &["apply", "-f", "-"],
        &curve_cluster("demo", spec).to_string(),
    )
    .ok("apply demo");
    env.wait_available("demo", BRING_UP).await;
    env.wait_copysets_healthy("demo", TO_VERDICT * 3).await;
    say(&format!(
        "up and healthy with {} copysets {:.1}s after the apply",
        env.kubelet.curve_copyset_count("demo"),
        applied.elapsed().as_secs_f64()
    ));
    operator
}

/// The node label the pinned scenarios give their Curve zones by.
const ZONE_LABEL: &str = "topology.kubernetes.io/zone";

/// ChunkServer pod `i` of slot 0 goes to the suite's `i`-th node (its volume is there, as a
/// local volume first used on that node), and that node is in `zones[i]`: which server
/// shares a zone with which no longer depends on the order the scheduler binds pods.
fn pin_chunkservers_to_zones(env: &TestEnv, zones: &[&str]) {
    let mut nodes = env.kubelet.nodes();
    nodes.sort_by_key(|n| n.index());
    assert!(nodes.len() >= zones.len(), "a node for each zone given");
    for (i, (node, zone)) in nodes.iter().zip(zones).enumerate() {
        env.kubelet
            .move_volume(&format!("data-demo-chunkserver-0-{i}"), &node.name);
        env.kubectl(&["label", "node", &node.name, &format!("{ZONE_LABEL}={zone}")])
            .ok("label the node's zone");
    }
}

/// Every copyset has its three members, none of them `gone`.
fn copies_whole(env: &TestEnv, gone: u32) {
    let placed = env.kubelet.curve_copysets_per_chunkserver("demo");
    assert!(
        !placed.contains_key(&gone),
        "ChunkServer {gone} still holds copysets"
    );
    let mut copies: std::collections::BTreeMap<_, usize> = Default::default();
    for copysets in placed.values() {
        for copyset in copysets {
            *copies.entry(*copyset).or_default() += 1;
        }
    }
    assert_eq!(copies.len(), env.kubelet.curve_copyset_count("demo"));
    let short: Vec<_> = copies.iter().filter(|(_, n)| **n != 3).collect();
    assert!(short.is_empty(), "copysets without 3 copies: {short:?}");
}

async fn set_replicas(env: &TestEnv, name: &str) -> Option<i32> {
    let sets = env.api::<StatefulSet>();
    sets.get_opt(name)
        .await
        .unwrap()
        .and_then(|s| s.spec.and_then(|s| s.replicas))
}

/// The id `pod`'s ChunkServer registers with once it is no longer `old`.
async fn registered_anew(env: &TestEnv, pod: &str, old: u32) -> u32 {
    curve_operator_e2e::util::eventually(
        "the pod registered with a new id",
        TO_VERDICT * 2,
        || async {
            match env.kubelet.chunkserver_id(pod) {
                Some(id) if id != old => Ok(id),
                other => Err(format!("{other:?}")),
            }
        },
    )
    .await
}

/// Follows a retire until the record is gone, SIGKILLing the operator once at each new step
/// when `kill` is set. Returns the steps seen, the kills and the time it took.
async fn follow_retire(
    env: &TestEnv,
    operator: &mut Operator,
    kill: bool,
    limit: Duration,
) -> (Vec<(String, RetireStep)>, u32, Duration) {
    let started = Instant::now();
    let clusters = env.clusters();
    let mut seen: Vec<(String, RetireStep)> = Vec::new();
    let mut kills = 0;
    let mut quiet_since: Option<Instant> = None;
    loop {
        assert!(
            started.elapsed() < limit,
            "the retire did not finish in {limit:?}: steps {seen:?}; {}",
            env.kubelet.log()
        );
        let cluster = clusters.get("demo").await.unwrap();
        let status = cluster.status.unwrap_or_default();
        match retire_of(&status) {
            Some(retire) => {
                quiet_since = None;
                let step = (retire.pod.clone(), retire.step);
                if !seen.contains(&step) {
                    say(&format!(
                        "  {:.1}s {} {:?}: {}",
                        started.elapsed().as_secs_f64(),
                        retire.pod,
                        retire.step,
                        progressing(&status).1
                    ));
                    if seen.is_empty() {
                        // `kubectl get -o wide` shows it: the reason, and the step in MESSAGE.
                        let wide = env.kubectl(&["get", "curvecluster", "demo", "-o", "wide"]);
                        let wide = wide.ok("get -o wide");
                        say(&format!("  kubectl get curvecluster -o wide:\n{wide}"));
                        assert!(
                            wide.contains("ChunkServerRetiring")
                                || wide.contains("ChunkServerReplacing")
                                || wide.contains("ChunkServerReplaceStuck"),
                            "{wide}"
                        );
                    }
                    seen.push(step);
                    if kill {
                        operator.kill();
                        kills += 1;
                        tokio::time::sleep(Duration::from_millis(300)).await;
                        operator.restart().await;
                    }
                }
            }
            // Done once no retire shows for a few seconds (the next one starts a pass later).
            None if !seen.is_empty() => {
                let since = *quiet_since.get_or_insert_with(Instant::now);
                if since.elapsed() > Duration::from_secs(6) {
                    return (seen, kills, started.elapsed());
                }
            }
            None => {}
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// 4 → 3 servers. First refused while a copyset is unhealthy (and the revert accepted), then
/// carried out with the operator SIGKILLed at every recorded step.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs a Kubernetes API server (KUBECONFIG), see e2e/README.md"]
async fn retire_scale_in_4_to_3_refused_while_unhealthy_then_through_sigkills() {
    let env = TestEnv::new("retire-scale-in", 4).await;
    // The server that leaves (ordinal 3) must share its zone with another, or the operator
    // rightly refuses: pin each ordinal to its node and give the nodes fixed zones.
    pin_chunkservers_to_zones(&env, &["zone1", "zone2", "zone3", "zone1"]);
    let spec = json!({
        "chunkservers": {"replicas": 4, "copysets": 20},
        "placement": {"zoneLabel": ZONE_LABEL},
    });
    let mut operator = up(&env, spec).await;

    // Refused while a ChunkServer is down; setting the spec back is accepted.
    env.kubelet.stop_chunkserver("demo-chunkserver-0-1");
    env.wait_status("demo", "Curve unhealthy", TO_VERDICT, |_, s| {
        match s.health.as_ref().map(|h| h.verdict) {
            Some(HealthVerdict::Unhealthy) => Ok(()),
            v => Err(format!("{v:?}")),
        }
    })
    .await;
    env.patch_spec("demo", json!({"chunkservers": {"replicas": 3}}))
        .await;
    let refused = env
        .wait_status("demo", "scale-in refused", TO_VERDICT, |_, s| {
            let (reason, message) = progressing(s);
            (reason == "ChangeRefused"
                && message.contains(
                    "spec.chunkservers.replicas: 4 → 3: waits: every copyset must be healthy first",
                ))
            .then_some(())
            .ok_or(format!("{reason}: {message}"))
        })
        .await;
    say(&format!(
        "REFUSED: {}",
        progressing(&refused.status.unwrap_or_default()).1
    ));
    assert_eq!(set_replicas(&env, "demo-chunkserver-0").await, Some(4));
    env.patch_spec("demo", json!({"chunkservers": {"replicas": 4}}))
        .await;
    env.wait_status("demo", "the revert accepted", TO_VERDICT, |_, s| {
        let (reason, _) = progressing(s);
        (reason != "ChangeRefused").then_some(()).ok_or(reason)
    })
    .await;
    env.kubelet.start_chunkserver("demo-chunkserver-0-1");
    env.wait_copysets_healthy("demo", TO_VERDICT * 3).await;

    // Carried out: drained, stopped, RETIRED, deleted, its server too.
    let leaving = "demo-chunkserver-0-3";
    let id = env.kubelet.chunkserver_id(leaving).expect("registered");
    let ip = (env.kubelet.curve_chunkservers("demo").into_iter())
        .find(|c| c.id == id)
        .unwrap()
        .ip;
    let copysets = env.kubelet.curve_copysets_per_chunkserver("demo")[&id].len();
    env.patch_spec("demo", json!({"chunkservers": {"replicas": 3}}))
        .await;
    let (steps, kills, took) =
        follow_retire(&env, &mut operator, true, Duration::from_secs(300)).await;
    let steps_of: Vec<RetireStep> = steps.iter().map(|(_, s)| *s).collect();
    assert_eq!(
        steps_of,
        [
            RetireStep::Draining,
            RetireStep::Stopping,
            RetireStep::Deleting
        ],
        "every step recorded"
    );
    assert_eq!(set_replicas(&env, "demo-chunkserver-0").await, Some(3));
    let chunkservers = env.kubelet.curve_chunkservers("demo");
    assert!(
        chunkservers.iter().all(|c| c.id != id),
        "ChunkServer {id} deleted"
    );
    assert!(
        chunkservers
            .iter()
            .all(|c| c.ip != ip && c.status == ChunkServerStatus::ReadWrite),
        "{chunkservers:?}"
    );
    let map = env.kubectl(&[
        "get",
        "configmap",
        "demo-topology",
        "-o",
        "jsonpath={.data.topology\\.json}",
    ]);
    let map = map.ok("get the cluster map");
    assert!(map.contains("127.0.0."), "{map}");
    assert!(
        !map.contains(&format!("\"{ip}\"")),
        "{ip} left the cluster map: {map}"
    );
    copies_whole(&env, id);
    env.wait_copysets_healthy("demo", TO_VERDICT * 3).await;
    env.wait_available("demo", TO_VERDICT).await;
    say(&format!(
        "SCALE-IN 4 → 3: ChunkServer {id} ({leaving}, {copysets} copysets moved) retired in {:.1}s, operator SIGKILLed {kills} times (once per step)",
        took.as_secs_f64()
    ));
}

/// 2 → 1 disk slots on 3 servers: slot 1's ChunkServers leave one at a time, highest ordinal
/// first, then its StatefulSet goes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs a Kubernetes API server (KUBECONFIG), see e2e/README.md"]
async fn retire_disk_slot_2_to_1() {
    let env = TestEnv::new("retire-slot", 3).await;
    let mut operator = up(
        &env,
        json!({"chunkservers": {"replicas": 3, "disksPerNode": 2, "copysets": 10}}),
    )
    .await;
    let ids: Vec<u32> = (0..3)
        .map(|o| {
            (env.kubelet)
                .chunkserver_id(&format!("demo-chunkserver-1-{o}"))
                .unwrap()
        })
        .collect();
    env.patch_spec("demo", json!({"chunkservers": {"disksPerNode": 1}}))
        .await;
    let (steps, _, took) =
        follow_retire(&env, &mut operator, false, Duration::from_secs(400)).await;
    let pods: Vec<&str> = steps.iter().map(|(p, _)| p.as_str()).collect();
    let order: Vec<&str> = pods.iter().fold(Vec::new(), |mut order, p| {
        if order.last() != Some(p) {
            order.push(*p);
        }
        order
    });
    assert_eq!(
        order,
        [
            "demo-chunkserver-1-2",
            "demo-chunkserver-1-1",
            "demo-chunkserver-1-0"
        ]
    );
    curve_operator_e2e::util::eventually("demo-chunkserver-1 deleted", TO_VERDICT, || async {
        match set_replicas(&env, "demo-chunkserver-1").await {
            None => Ok(()),
            Some(r) => Err(format!("still there with {r} replicas")),
        }
    })
    .await;
    let left: BTreeSet<u32> = (env.kubelet.curve_chunkservers("demo").iter())
        .map(|c| c.id)
        .collect();
    assert!(ids.iter().all(|id| !left.contains(id)), "{left:?}");
    assert_eq!(left.len(), 3);
    for id in &ids {
        copies_whole(&env, *id);
    }
    env.wait_copysets_healthy("demo", TO_VERDICT * 3).await;
    env.wait_available("demo", TO_VERDICT).await;
    say(&format!(
        "SLOT 2 → 1: 3 ChunkServers retired in {:.1}s ({:.1}s each)",
        took.as_secs_f64(),
        took.as_secs_f64() / 3.0
    ));
}

/// A ChunkServer's claim and pod deleted (the disk lost): the new pod's empty disk refuses the
/// old id, the operator retires the old id (its copysets moved from the copies left), and the
/// pod registers with a new id. The pre-change behaviour (the start script's gate off) shows
/// the trap in the same model: the empty disk takes the old id and holds none of its copies.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs a Kubernetes API server (KUBECONFIG), see e2e/README.md"]
async fn replace_a_lost_disk_without_reusing_its_id() {
    let env = TestEnv::new("replace", 3).await;
    let mut operator = up(
        &env,
        json!({"chunkservers": {"replicas": 3, "disksPerNode": 2, "copysets": 10}}),
    )
    .await;
    let lost = "demo-chunkserver-1-1";
    let old = env.kubelet.chunkserver_id(lost).unwrap();
    let address = (env.kubelet.curve_chunkservers("demo").into_iter())
        .find(|c| c.id == old)
        .map(|c| format!("{}:{}", c.ip, c.port))
        .unwrap();
    let copysets = env.kubelet.curve_copysets_per_chunkserver("demo")[&old].len();
    let lost_at = Instant::now();
    let claims = env.api::<PersistentVolumeClaim>();
    let pods = env.api::<Pod>();
    let _ = claims
        .delete(&format!("data-{lost}"), &DeleteParams::default())
        .await;
    let _ = pods.delete(lost, &DeleteParams::default()).await;

    let replacing = env
        .wait_status("demo", "ChunkServerReplacing", TO_VERDICT * 2, |_, s| {
            let (reason, message) = progressing(s);
            (reason == "ChunkServerReplacing")
                .then_some(())
                .ok_or(format!("{reason}: {message}"))
        })
        .await;
    say(&format!(
        "REPLACE: {:.1}s after the claim was lost: {}",
        lost_at.elapsed().as_secs_f64(),
        progressing(&replacing.status.unwrap_or_default()).1
    ));
    let exit = env.kubelet.chunkserver_exit(lost);
    say(&format!("  the pod's container: {exit:?}"));
    let (_, _, took) = follow_retire(&env, &mut operator, false, Duration::from_secs(300)).await;
    let new = registered_anew(&env, lost, old).await;
    let at_address: Vec<u32> = (env.kubelet.curve_chunkservers("demo").iter())
        .filter(|c| format!("{}:{}", c.ip, c.port) == address)
        .map(|c| c.id)
        .collect();
    assert_eq!(at_address, [new], "only the new id at {address}");
    copies_whole(&env, old);
    env.wait_copysets_healthy("demo", TO_VERDICT * 3).await;
    env.wait_available("demo", TO_VERDICT * 2).await;
    say(&format!(
        "REPLACE: ChunkServer {old} ({copysets} copysets moved) retired and deleted in {:.1}s, the pod registered as ChunkServer {new}, {:.1}s after the loss",
        took.as_secs_f64(),
        lost_at.elapsed().as_secs_f64()
    ));

    // Before the change: no gate, the empty disk takes the old id within the offline timeout,
    // and the operator (which sees no refusal) can only report what Curve's check finds.
    env.kubelet.set_empty_disk_gate(false);
    let victim = "demo-chunkserver-1-0";
    let victim_id = env.kubelet.chunkserver_id(victim).unwrap();
    let held = env.kubelet.curve_copysets_per_chunkserver("demo")[&victim_id].len();
    let _ = claims
        .delete(&format!("data-{victim}"), &DeleteParams::default())
        .await;
    let _ = pods.delete(victim, &DeleteParams::default()).await;
    let trapped = curve_operator_e2e::util::eventually(
        "the empty disk registered",
        TO_VERDICT * 2,
        || async {
            match env.kubelet.chunkserver_id(victim) {
                Some(id) => Ok(id),
                None => Err("not registered".to_string()),
            }
        },
    )
    .await;
    assert_eq!(
        trapped, victim_id,
        "the trap: the old id handed to an empty disk"
    );
    let now_holds = (env.kubelet.curve_copysets_per_chunkserver("demo"))
        .get(&victim_id)
        .map_or(0, |c| c.len());
    assert_eq!(now_holds, held, "the MDS's records still place them on it");
    let short = env
        .wait_status("demo", "copysets a copy short", TO_VERDICT * 2, |_, s| {
            let unhealthy = (s.health.as_ref())
                .and_then(|h| h.copysets.as_ref())
                .map_or(0, |c| c.unhealthy);
            (unhealthy as usize == held)
                .then_some(())
                .ok_or(format!("{unhealthy} unhealthy"))
        })
        .await;
    let health = short.status.unwrap_or_default().health;
    say(&format!(
        "TRAP (gate off): the empty disk of {victim} took ChunkServer {victim_id}; the MDS still places its {held} copysets on it, none held: {}",
        health.and_then(|h| h.message).unwrap_or_default()
    ));
}

/// Issue 32: one ChunkServer per server and one server per zone. The lost disk's old id has
/// no other ChunkServer in its zone to take its copies: `Progressing` turns False
/// (`ChunkServerReplaceStuck`, naming the zone) with a warning Event, and the old id stays
/// PENDDING with every copyset, never RETIRED or deleted. A second disk slot gives the zone a
/// ChunkServer: the copies move to it, the old id is retired and deleted, and the pod
/// registers a new id.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs a Kubernetes API server (KUBECONFIG), see e2e/README.md"]
async fn replace_a_lost_disk_alone_in_its_zone_once_the_zone_gets_another_chunkserver() {
    use k8s_openapi::api::events::v1::Event;
    use kube::api::ListParams;
    let env = TestEnv::new("replace-lone", 3).await;
    let mut operator = up(
        &env,
        json!({"chunkservers": {"replicas": 3, "copysets": 10}}),
    )
    .await;
    let lost = "demo-chunkserver-0-1";
    let old = env.kubelet.chunkserver_id(lost).unwrap();
    let copysets = env.kubelet.curve_copysets_per_chunkserver("demo")[&old].clone();
    let lost_at = Instant::now();
    let claims = env.api::<PersistentVolumeClaim>();
    let pods = env.api::<Pod>();
    let _ = claims
        .delete(&format!("data-{lost}"), &DeleteParams::default())
        .await;
    let _ = pods.delete(lost, &DeleteParams::default()).await;

    let who = format!("replacing ChunkServer {old} ({lost}, ");
    let stuck = env
        .wait_status("demo", "ChunkServerReplaceStuck", TO_VERDICT * 2, |_, s| {
            let (reason, message) = progressing(s);
            (reason == "ChunkServerReplaceStuck"
                && message.starts_with(&who)
                && message.contains(") is stuck: zone "))
            .then_some(())
            .ok_or(format!("{reason}: {message}"))
        })
        .await;
    let message = progressing(&stuck.status.unwrap_or_default()).1;
    say(&format!(
        "LONE ZONE: {:.1}s after the claim was lost: {message}",
        lost_at.elapsed().as_secs_f64()
    ));
    let told = curve_operator_e2e::util::eventually(
        "a ChunkServerReplaceStuck event",
        TO_VERDICT,
        || async {
            let events = env.api::<Event>().list(&ListParams::default()).await;
            let events = events.map_err(|e| e.to_string())?.items;
            (events.into_iter())
                .find(|e| e.reason.as_deref() == Some("ChunkServerReplaceStuck"))
                .and_then(|e| e.note)
                .ok_or("none yet".to_string())
        },
    )
    .await;
    assert_eq!(told, message, "the Event says what the condition says");

    // Held: the old id keeps its copysets and stays PENDDING; the pod still refuses.
    tokio::time::sleep(Duration::from_secs(10)).await;
    let listed = (env.kubelet.curve_chunkservers("demo").into_iter())
        .find(|c| c.id == old)
        .expect("the old id is not deleted");
    assert_eq!(listed.status, ChunkServerStatus::Pendding);
    assert_eq!(
        env.kubelet.curve_copysets_per_chunkserver("demo")[&old],
        copysets
    );
    assert_eq!(
        env.kubelet.chunkserver_id(lost),
        None,
        "the empty disk stays out"
    );

    // The remedy: a ChunkServer on every node, so one in that zone too.
    let added = Instant::now();
    env.patch_spec("demo", json!({"chunkservers": {"disksPerNode": 2}}))
        .await;
    let (_, _, took) = follow_retire(&env, &mut operator, false, Duration::from_secs(300)).await;
    let new = registered_anew(&env, lost, old).await;
    copies_whole(&env, old);
    assert!(
        !(env.kubelet.curve_chunkservers("demo").iter()).any(|c| c.id == old),
        "the old id is deleted"
    );
    env.wait_copysets_healthy("demo", TO_VERDICT * 3).await;
    env.wait_available("demo", TO_VERDICT * 2).await;
    say(&format!(
        "LONE ZONE: disksPerNode 1 → 2 unblocked it: ChunkServer {old} ({} copysets moved) retired and deleted, the pod registered as ChunkServer {new}, {:.1}s after the slot was added ({:.1}s for the retire)",
        copysets.len(),
        added.elapsed().as_secs_f64(),
        took.as_secs_f64()
    ));
}

/// A scale-in that what remains cannot hold: every ChunkServer 60 % full, so the zone losing
/// one would hold more than its remaining space lets Curve fill (or would keep none). Refused
/// with the zone and the numbers, nothing changes, and the revert is accepted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs a Kubernetes API server (KUBECONFIG), see e2e/README.md"]
async fn retire_scale_in_refused_when_the_rest_cannot_hold_the_data() {
    let env = TestEnv::new("retire-full", 4).await;
    env.kubelet.set_curve_settings(CurveSettings {
        disk_used: 60 << 30,
        ..CurveSettings::fast()
    });
    let operator = env.start_operator().await;
    env.kubectl_stdin(
        &["apply", "-f", "-"],
        &curve_cluster(
            "demo",
            json!({"chunkservers": {"replicas": 4, "copysets": 20}}),
        )
        .to_string(),
    )
    .ok("apply demo");
    env.wait_available("demo", BRING_UP).await;
    env.wait_copysets_healthy("demo", TO_VERDICT * 3).await;
    let asked = Instant::now();
    env.patch_spec("demo", json!({"chunkservers": {"replicas": 3}}))
        .await;
    let refused = env
        .wait_status("demo", "scale-in refused for room", TO_VERDICT, |_, s| {
            let (reason, message) = progressing(s);
            (reason == "ChangeRefused"
                && message.contains("spec.chunkservers.replicas: 4 → 3 is refused: zone "))
            .then_some(())
            .ok_or(format!("{reason}: {message}"))
        })
        .await;
    say(&format!(
        "REFUSED {:.1}s after the patch: {}",
        asked.elapsed().as_secs_f64(),
        progressing(&refused.status.clone().unwrap_or_default()).1
    ));
    assert_eq!(retire_of(&refused.status.unwrap_or_default()), None);
    assert_eq!(set_replicas(&env, "demo-chunkserver-0").await, Some(4));
    assert!(
        (env.kubelet.curve_chunkservers("demo").iter())
            .all(|c| c.status == ChunkServerStatus::ReadWrite),
        "no ChunkServer was set PENDDING"
    );
    env.patch_spec("demo", json!({"chunkservers": {"replicas": 4}}))
        .await;
    env.wait_available("demo", TO_VERDICT).await;
    drop(operator);
}
