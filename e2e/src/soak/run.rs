//! The soak itself: one cluster, a random sequence of day-2 operations, random faults while
//! each is in flight, the checker running throughout, and after each round the faults stop and
//! the cluster must converge within [`CONVERGE_BOUND`] (liveness).

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use curve_operator::api::CurveCluster;
use curve_operator::reconcile::membership::retained_claim_named;
use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::{Event as CoreEvent, PersistentVolumeClaim, Pod};
use kube::ResourceExt;
use kube::api::{DeleteParams, ListParams, PostParams};
use serde_json::json;

use super::checker::{self, Journal, SharedJournal};
use super::proxy::{FaultProxy, proxied_kubeconfig};
use super::rng::SoakRng;
use super::rules::{HarnessAction, PodView, RULES, Violation};
use crate::curve_model::CurveSettings;
use crate::env::{TestEnv, condition, copysets_read_healthy, summary};
use crate::manifests::curve_cluster;
use crate::operator::Operator;
use crate::util::{say, tail};
use crate::volumes::{EXPANDABLE, FakeStorage};

pub const CLUSTER: &str = "demo";
/// Nodes: 5 etcd members need 5 (one per node), as do 5 MDS.
pub const NODES: usize = 5;
/// Once the faults of a round stop, the cluster is Available, rolled out, with no membership
/// step or retire in progress and every copyset healthy within this long. The slowest
/// operation alone (a retire: a drain of 20 copysets, or an image change rolling 11 pods one at
/// a time behind Curve's health gate) takes about a minute on the 2-core machine; the rest is
/// what the faults left to redo.
pub const CONVERGE_BOUND: Duration = Duration::from_secs(300);
const BRING_UP: Duration = Duration::from_secs(240);
const IMAGES: [&str; 2] = [
    "opencurvedocker/curvebs:v1.2.6",
    "opencurvedocker/curvebs:v1.2.7",
];

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Op {
    EtcdGrow,
    EtcdShrink,
    ImageChange,
    MdsUp,
    MdsDown,
    VolumeGrowth,
    PausedChange,
    Retire,
    ScaleOut,
    LostDisk,
    /// `disksPerNode` 2 → 1, after the harness added a slot to unstick a lone zone's lost disk.
    DiskSlotRemove,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Fault {
    OperatorKill,
    EtcdProcessKill,
    EtcdPodDelete,
    MdsKill,
    ChunkServerStop,
    ProxyCut,
    ProxyDelay,
    ProxyReset,
}

const FAULTS: [Fault; 8] = [
    Fault::OperatorKill,
    Fault::EtcdProcessKill,
    Fault::EtcdPodDelete,
    Fault::MdsKill,
    Fault::ChunkServerStop,
    Fault::ProxyCut,
    Fault::ProxyDelay,
    Fault::ProxyReset,
];

/// What the spec asks for now: which operations are valid next.
#[derive(Clone, Debug, PartialEq)]
pub struct SpecState {
    pub etcd: i32,
    pub mds: i32,
    pub chunkservers: i32,
    pub image: usize,
    pub etcd_gi: u32,
    pub disks_per_node: i32,
}

impl SpecState {
    pub fn initial() -> SpecState {
        SpecState {
            etcd: 3,
            mds: 3,
            chunkservers: 4,
            image: 0,
            etcd_gi: 1,
            disks_per_node: 1,
        }
    }

    /// What a user does on `ChunkServerReplaceStuck` (a lost disk alone in its zone): a second
    /// disk slot, so every zone gets another ChunkServer. None when there is one already.
    pub fn unstick(&mut self) -> Option<serde_json::Value> {
        (self.disks_per_node == 1).then(|| {
            self.disks_per_node = 2;
            json!({"chunkservers": {"disksPerNode": 2}})
        })
    }

    /// The operations valid in this state: etcd 3 ↔ 5, MDS 3..=5, ChunkServers 4 ↔ 3 (a retire
    /// needs the 4th), etcd volumes up to 4Gi; an image change, a paused change and a lost disk
    /// always.
    pub fn valid_ops(&self) -> Vec<Op> {
        let mut ops = vec![Op::ImageChange, Op::PausedChange, Op::LostDisk];
        ops.push(if self.etcd == 3 {
            Op::EtcdGrow
        } else {
            Op::EtcdShrink
        });
        if self.mds < 5 {
            ops.push(Op::MdsUp);
        }
        if self.mds > 3 {
            ops.push(Op::MdsDown);
        }
        if self.etcd_gi < 4 {
            ops.push(Op::VolumeGrowth);
        }
        ops.push(if self.chunkservers == 4 {
            Op::Retire
        } else {
            Op::ScaleOut
        });
        if self.disks_per_node == 2 {
            ops.push(Op::DiskSlotRemove);
        }
        ops
    }

    /// The spec patch of `op` and the state after it (none for a lost disk).
    pub fn apply(&mut self, op: Op) -> Option<serde_json::Value> {
        let patch = match op {
            Op::EtcdGrow | Op::EtcdShrink => {
                self.etcd = if op == Op::EtcdGrow { 5 } else { 3 };
                json!({"etcd": {"replicas": self.etcd}})
            }
            Op::ImageChange => {
                self.image = (self.image + 1) % IMAGES.len();
                json!({"image": IMAGES[self.image]})
            }
            Op::MdsUp | Op::MdsDown | Op::PausedChange => {
                self.mds = match op {
                    Op::MdsUp => self.mds + 1,
                    Op::MdsDown => self.mds - 1,
                    _ if self.mds < 5 => self.mds + 1,
                    _ => self.mds - 1,
                };
                json!({"mds": {"replicas": self.mds}})
            }
            Op::VolumeGrowth => {
                self.etcd_gi += 1;
                json!({"etcd": {"storage": {"size": format!("{}Gi", self.etcd_gi)}}})
            }
            Op::Retire | Op::ScaleOut => {
                self.chunkservers = if op == Op::Retire { 3 } else { 4 };
                json!({"chunkservers": {"replicas": self.chunkservers}})
            }
            Op::DiskSlotRemove => {
                self.disks_per_node = 1;
                json!({"chunkservers": {"disksPerNode": 1}})
            }
            Op::LostDisk => return None,
        };
        Some(patch)
    }
}

pub struct SoakConfig {
    pub seed: u64,
    pub duration: Duration,
}

#[derive(Debug, Default)]
pub struct SoakReport {
    pub seed: u64,
    pub operations: BTreeMap<String, u32>,
    pub faults: BTreeMap<String, u32>,
    pub checks: u64,
    pub violations: Vec<Violation>,
    /// Seconds from the last fault of each round to convergence.
    pub converged_after: Vec<f64>,
    pub operator_exits: u32,
    /// Operations the operator refused for good ("… is refused: …"), by kind.
    pub refused: BTreeMap<String, u32>,
    pub rounds: u32,
    pub elapsed: f64,
}

impl SoakReport {
    pub fn longest_converge(&self) -> f64 {
        self.converged_after.iter().copied().fold(0.0, f64::max)
    }

    pub fn lines(&self) -> Vec<String> {
        let join = |m: &BTreeMap<String, u32>| {
            m.iter()
                .map(|(k, v)| format!("{k} {v}"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        vec![
            format!(
                "SOAK seed {} ({:#x}): {} rounds in {:.0} s",
                self.seed, self.seed, self.rounds, self.elapsed
            ),
            format!(
                "  operations done: {} ({})",
                self.operations.values().sum::<u32>(),
                join(&self.operations)
            ),
            format!("  refused by the operator: {}", join(&self.refused)),
            format!(
                "  faults injected: {} ({})",
                self.faults.values().sum::<u32>(),
                join(&self.faults)
            ),
            format!(
                "  invariant checks: {} over {} rules; violations: {}",
                self.checks,
                RULES.len() + 2,
                self.violations.len()
            ),
            format!(
                "  converged after the last fault: longest {:.1} s, mean {:.1} s over {} rounds (bound {} s); the operator exited by itself {} times",
                self.longest_converge(),
                self.converged_after.iter().sum::<f64>() / self.converged_after.len().max(1) as f64,
                self.converged_after.len(),
                CONVERGE_BOUND.as_secs(),
                self.operator_exits
            ),
        ]
    }
}

/// The harness's side of a round: the operator, the proxy, the faults in effect.
struct Harness<'a> {
    env: &'a TestEnv,
    operator: Operator,
    proxy: FaultProxy,
    journal: SharedJournal,
    /// The faults' choices and moments.
    rng: SoakRng,
    /// The operations' choices, a stream of their own: a seed replays the same operations
    /// whatever the faults' timing made of the rounds.
    ops_rng: SoakRng,
    /// ChunkServers stopped, until when.
    stopped: Vec<(String, Instant)>,
    report: SoakReport,
}

impl Harness<'_> {
    fn note(&self, line: String) {
        self.journal.lock().unwrap().note(line);
    }

    fn harness(&self, action: HarnessAction) {
        self.journal.lock().unwrap().harness(action);
    }

    async fn daemon_pods(&self, component: &str) -> Vec<String> {
        let selector =
            format!("app.kubernetes.io/instance={CLUSTER},app.kubernetes.io/component={component}");
        let pods = (self.env.api::<Pod>())
            .list(&ListParams::default().labels(&selector))
            .await
            .map(|l| l.items)
            .unwrap_or_default();
        let mut names: Vec<String> = pods
            .iter()
            .filter(|p| p.metadata.deletion_timestamp.is_none())
            .map(|p| p.name_any())
            .collect();
        names.sort();
        names
    }

    async fn delete_claim(&self, name: &str) {
        self.harness(HarnessAction::DeletedClaim(name.to_string()));
        let _ = (self.env.api::<PersistentVolumeClaim>())
            .delete(name, &DeleteParams::default())
            .await;
    }

    async fn delete_pod(&self, name: &str) {
        self.harness(HarnessAction::DeletedPod(name.to_string()));
        let _ = (self.env.api::<Pod>())
            .delete(name, &DeleteParams::default())
            .await;
    }

    /// Injects one fault, picked at random; returns it when it could be injected.
    async fn inject(&mut self) -> Option<Fault> {
        let fault = *self.rng.pick(&FAULTS);
        match fault {
            Fault::OperatorKill => {
                self.note("fault: operator SIGKILLed".into());
                self.operator.kill();
                let down = self.rng.between(Duration::ZERO, Duration::from_secs(3));
                tokio::time::sleep(down).await;
                self.operator.restart().await;
                self.note("operator restarted".into());
            }
            Fault::EtcdProcessKill | Fault::EtcdPodDelete | Fault::MdsKill => {
                let component = if fault == Fault::MdsKill {
                    "mds"
                } else {
                    "etcd"
                };
                let pods = self.daemon_pods(component).await;
                if pods.is_empty() {
                    return None;
                }
                let pod = self.rng.pick(&pods).clone();
                match fault {
                    Fault::EtcdProcessKill => {
                        self.harness(HarnessAction::KilledEtcd(pod.clone()));
                        if !self.env.kubelet.kill_etcd(&pod) {
                            return None;
                        }
                    }
                    Fault::MdsKill => {
                        self.harness(HarnessAction::KilledMds(pod.clone()));
                        if !self.env.kubelet.try_kill_mds(&pod, true) {
                            return None;
                        }
                    }
                    _ => self.delete_pod(&pod).await,
                }
            }
            Fault::ChunkServerStop => {
                let pods = self.daemon_pods("chunkserver").await;
                if pods.is_empty() {
                    return None;
                }
                let pod = self.rng.pick(&pods).clone();
                self.harness(HarnessAction::StoppedChunkServer(pod.clone()));
                if !self.env.kubelet.try_stop_chunkserver(&pod) {
                    return None;
                }
                let down = self
                    .rng
                    .between(Duration::from_secs(3), Duration::from_secs(10));
                self.stopped.push((pod, Instant::now() + down));
            }
            Fault::ProxyCut => {
                let refuse = self
                    .rng
                    .between(Duration::from_millis(200), Duration::from_secs(5));
                self.note(format!("fault: proxy cut, refusing for {refuse:?}"));
                self.proxy.cut(refuse);
            }
            Fault::ProxyDelay => {
                let delay = self
                    .rng
                    .between(Duration::from_millis(50), Duration::from_secs(1));
                self.note(format!("fault: proxy delays every chunk {delay:?}"));
                self.proxy.set_delay(delay);
            }
            Fault::ProxyReset => {
                self.note("fault: proxy resets every connection".into());
                self.proxy.reset();
            }
        }
        *self.report.faults.entry(format!("{fault:?}")).or_default() += 1;
        Some(fault)
    }

    /// Lets stopped ChunkServers whose time is up start again (all of them with `all`).
    fn restart_chunkservers(&mut self, all: bool) {
        let now = Instant::now();
        let (due, later): (Vec<_>, Vec<_>) =
            (self.stopped.drain(..)).partition(|(_, until)| all || *until <= now);
        self.stopped = later;
        for (pod, _) in due {
            self.note(format!("ChunkServer of {pod} may start again"));
            self.env.kubelet.start_chunkserver(&pod);
        }
    }

    /// Every fault ended: the proxy passes everything, ChunkServers may start, the operator
    /// runs.
    async fn heal(&mut self) {
        self.proxy.heal();
        self.restart_chunkservers(true);
        self.keep_operator_running().await;
    }

    async fn keep_operator_running(&mut self) {
        if !self.operator.is_running() {
            self.report.operator_exits += 1;
            let last = tail(&self.operator.log, 5);
            self.note(format!(
                "the operator exited by itself; its last lines:\n{last}"
            ));
            say(&format!(
                "the operator exited by itself; its last lines:\n{last}"
            ));
            self.operator.restart().await;
        }
    }

    /// Starts `op`; the lost disk deletes a ChunkServer's claim and pod.
    async fn start(&mut self, op: Op, state: &mut SpecState) {
        self.note(format!("operation {op:?}"));
        match state.apply(op) {
            Some(patch) if op == Op::PausedChange => {
                self.env.patch_spec(CLUSTER, json!({"paused": true})).await;
                let before = mds_replicas(self.env).await;
                self.env.patch_spec(CLUSTER, patch).await;
                tokio::time::sleep(Duration::from_secs(5)).await;
                let after = mds_replicas(self.env).await;
                if before != after {
                    let mut journal = self.journal.lock().unwrap();
                    let at = journal.now();
                    journal.violations.push(Violation {
                        rule: "paused-holds-changes",
                        at,
                        message: format!(
                            "paused, the MDS StatefulSet went from {before:?} to {after:?} replicas"
                        ),
                    });
                }
                self.env.patch_spec(CLUSTER, json!({"paused": false})).await;
            }
            Some(patch) => {
                self.env.patch_spec(CLUSTER, patch).await;
            }
            None => {
                let pods = self.losable_chunkservers().await;
                if pods.is_empty() {
                    self.note("no ChunkServer registered: no lost disk this round".into());
                    return;
                }
                let pod = self.ops_rng.pick(&pods).clone();
                self.delete_claim(&format!("data-{pod}")).await;
                self.delete_pod(&pod).await;
            }
        }
        *self.report.operations.entry(format!("{op:?}")).or_default() += 1;
    }
}

impl Harness<'_> {
    /// ChunkServer pods (not being deleted) with a live id.
    async fn losable_chunkservers(&self) -> Vec<String> {
        let pods = (self.env.api::<Pod>())
            .list(&ListParams::default().labels(&format!(
                "app.kubernetes.io/instance={CLUSTER},app.kubernetes.io/component=chunkserver"
            )))
            .await
            .map(|l| l.items)
            .unwrap_or_default();
        let views: BTreeMap<String, PodView> = (pods.iter())
            .filter(|p| p.metadata.deletion_timestamp.is_none())
            .map(|p| (p.name_any(), checker::pod_view(p)))
            .collect();
        let handle = self.env.kubelet.curve_model(CLUSTER);
        let model = handle.model.lock().unwrap();
        let view = checker::curve_view(&model, &views, CLUSTER);
        let mut names = checker::losable_chunkservers(&view);
        names.sort();
        names
    }
}

async fn mds_replicas(env: &TestEnv) -> Option<i32> {
    let sets = env.api::<StatefulSet>();
    let set = sets.get_opt(&format!("{CLUSTER}-mds")).await.ok()??;
    set.spec.and_then(|s| s.replicas)
}

/// Ok once the cluster is where the spec asks and nothing is in progress: Available and
/// rolled out, `Progressing` Complete, no etcd step or retire recorded, the recorded etcd size
/// the spec's, every copyset healthy as the operator read it. A change the operator refused for
/// good (`ChangeRefused` "… is refused: …", not "… waits: …") is an answer too: Ok with its
/// message.
pub async fn converged(env: &TestEnv) -> Result<Option<String>, String> {
    let cluster = env.available_and_rolled_out(CLUSTER).await?;
    let status = cluster.status.clone().unwrap_or_default();
    let (reason, message) = condition(&status, "Progressing")
        .map(|c| (c.reason.clone(), c.message.clone()))
        .unwrap_or_default();
    let refused = match reason.as_str() {
        "Complete" => None,
        "ChangeRefused" if message.contains(" is refused: ") => Some(message),
        other => return Err(format!("Progressing {other}: {message}")),
    };
    let record = status.record.clone().unwrap_or_default();
    if let Some(step) = &record.etcd_step {
        return Err(format!("etcd step in progress: {step:?}"));
    }
    if let Some(retire) = &record.retire {
        return Err(format!(
            "retire in progress: {} {:?}",
            retire.pod, retire.step
        ));
    }
    if refused.is_none() && record.etcd_members != Some(cluster.spec.etcd.replicas) {
        return Err(format!(
            "the record says {:?} etcd members",
            record.etcd_members
        ));
    }
    let copysets = env.kubelet.curve_copyset_count(CLUSTER) as i64;
    copysets_read_healthy(&status, copysets)
        .map_err(|why| format!("{why}; {}", summary(&status)))?;
    Ok(refused)
}

/// `Progressing`'s message while it says `ChunkServerReplaceStuck` (a lost disk alone in its
/// zone, which waits for a user to add a ChunkServer there).
fn replace_stuck(status: &curve_operator::api::CurveClusterStatus) -> Option<String> {
    condition(status, "Progressing")
        .filter(|c| c.reason == "ChunkServerReplaceStuck")
        .map(|c| c.message.clone())
}

/// The soak's cluster: 3 etcd members on an expandable class (1Gi, their quota set so growth
/// rolls nothing), 3 MDS, 4 ChunkServers with 20 copysets each.
pub fn soak_cluster() -> serde_json::Value {
    curve_cluster(
        CLUSTER,
        json!({
            "etcd": {"storage": {"size": "1Gi", "storageClassName": EXPANDABLE}, "quotaBackendBytes": "256Mi"},
            "chunkservers": {"replicas": 4, "copysets": 20},
        }),
    )
}

/// Sets up the proxy and the operator behind it, brings the cluster up with the checker
/// running, then runs rounds until `config.duration` is spent.
pub async fn soak(env: &TestEnv, config: &SoakConfig) -> SoakReport {
    say(&format!(
        "SOAK seed {} ({:#x}) for {:.1} min: replay with CURVE_SOAK_SEED={}",
        config.seed,
        config.seed,
        config.duration.as_secs_f64() / 60.0,
        config.seed
    ));
    env.kubelet.set_curve_settings(CurveSettings::fast());
    let _storage = FakeStorage::start(env.client.clone(), &env.namespace).await;
    let text = std::fs::read_to_string(&env.operator_kubeconfig).unwrap();
    let server: serde_json::Value = serde_json::from_str(&text).unwrap();
    let upstream =
        super::proxy::upstream_of(server["clusters"][0]["cluster"]["server"].as_str().unwrap())
            .expect("the API server's address");
    let proxy = FaultProxy::start(upstream).await;
    let operator_kubeconfig = env.dir.path().join("operator-proxied.kubeconfig");
    proxied_kubeconfig(&env.operator_kubeconfig, proxy.addr, &operator_kubeconfig);
    let operator = Operator::start(&operator_kubeconfig, &env.namespace, env.dir.path()).await;
    let journal = Journal::new(CLUSTER);
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let mut harness = Harness {
        env,
        operator,
        proxy,
        journal: journal.clone(),
        rng: SoakRng::new(config.seed ^ 0x5EED_FA17),
        ops_rng: SoakRng::new(config.seed),
        stopped: Vec::new(),
        report: SoakReport {
            seed: config.seed,
            ..SoakReport::default()
        },
    };
    let drive = async {
        let cluster: CurveCluster = serde_json::from_value(soak_cluster()).unwrap();
        env.clusters()
            .create(&PostParams::default(), &cluster)
            .await
            .expect("create the cluster");
        let up = Instant::now();
        crate::util::eventually("the soak's cluster up", BRING_UP, || converged(env)).await;
        say(&format!(
            "up and converged in {:.1} s",
            up.elapsed().as_secs_f64()
        ));
        rounds(&mut harness, config).await;
        let _ = stop.send(true);
    };
    tokio::join!(checker::run(env, CLUSTER, journal.clone(), stopped), drive);
    let mut report = std::mem::take(&mut harness.report);
    {
        let journal = journal.lock().unwrap();
        report.checks = journal.checks();
        report.violations = journal.violations.clone();
        if !report.violations.is_empty() {
            say(&format!(
                "VIOLATIONS with seed {} (replay: CURVE_SOAK_SEED={}):",
                config.seed, config.seed
            ));
            for v in &report.violations {
                say(&format!("  {v}"));
            }
            let around = journal.first_violation_timeline.clone().unwrap_or_default();
            say(&format!(
                "timeline up to the first violation (last 120 lines):\n{}",
                last_lines(&around, 120)
            ));
        }
    }
    if !report.violations.is_empty() {
        say(&format!(
            "operator log (last 80 lines):\n{}",
            tail(&harness.operator.log, 80)
        ));
        say(&format!(
            "kubelet log (last 60 lines):\n{}",
            last_lines(
                &env.kubelet
                    .log()
                    .lines()
                    .map(String::from)
                    .collect::<Vec<_>>(),
                60
            )
        ));
        say(&format!("events:\n{}", events(env).await));
    }
    report
}

/// The cluster's status (empty when unreadable).
async fn status_of(env: &TestEnv) -> curve_operator::api::CurveClusterStatus {
    let cluster = env.clusters().get(CLUSTER).await.ok();
    cluster.and_then(|c| c.status).unwrap_or_default()
}

/// The `Progressing` condition as `reason: message` (empty without one).
fn progressing_of(status: &curve_operator::api::CurveClusterStatus) -> String {
    condition(status, "Progressing")
        .map(|c| format!("{}: {}", c.reason, c.message))
        .unwrap_or_default()
}

fn last_lines(lines: &[String], n: usize) -> String {
    lines[lines.len().saturating_sub(n)..].join("\n")
}

async fn events(env: &TestEnv) -> String {
    let list = env.api::<CoreEvent>().list(&ListParams::default()).await;
    let mut events = list.map(|l| l.items).unwrap_or_default();
    events.sort_by_key(|e| e.last_timestamp.clone().map(|t| t.0));
    (events.iter().rev().take(40).rev())
        .map(|e| {
            format!(
                "{:?} {} {}/{}: {}",
                e.last_timestamp.as_ref().map(|t| t.0.to_string()),
                e.reason.clone().unwrap_or_default(),
                e.involved_object.kind.clone().unwrap_or_default(),
                e.involved_object.name.clone().unwrap_or_default(),
                e.message.clone().unwrap_or_default()
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Rounds until the time is spent or the cluster fails to converge: an operation, faults at
/// random moments while it is in flight (for at most a fault window), then no more faults
/// until it converged.
async fn rounds(harness: &mut Harness<'_>, config: &SoakConfig) {
    let started = Instant::now();
    let mut state = SpecState::initial();
    while started.elapsed() < config.duration {
        harness.report.rounds += 1;
        let ops = state.valid_ops();
        let op = *harness.ops_rng.pick(&ops);
        harness.start(op, &mut state).await;
        let window = harness
            .rng
            .between(Duration::from_secs(10), Duration::from_secs(40));
        let window_ends = Instant::now() + window;
        let mut last_fault = Instant::now();
        loop {
            let pause = harness
                .rng
                .between(Duration::from_secs(1), Duration::from_secs(6));
            tokio::time::sleep(pause).await;
            harness.restart_chunkservers(false);
            harness.keep_operator_running().await;
            if Instant::now() >= window_ends || converged(harness.env).await.is_ok() {
                break;
            }
            // Delays last a few seconds, not the whole window.
            if harness.proxy.delay() > Duration::ZERO && harness.rng.chance(0.5) {
                harness.proxy.set_delay(Duration::ZERO);
            }
            if harness.inject().await.is_some() {
                last_fault = Instant::now();
            }
        }
        harness.heal().await;
        let healed = Instant::now();
        let mut last_why = String::new();
        // Each retained claim once a round: the condition naming it stays until the
        // operator's next status write, and the new member's claim takes the same name.
        let mut claims_deleted: Vec<String> = Vec::new();
        let converged_at = loop {
            match converged(harness.env).await {
                Ok(refused) => break Some((Instant::now(), refused)),
                Err(why) => {
                    // The admin's part of growing etcd onto a claim an earlier member left
                    // (a shrink keeps it under spec.cleanup Retain): delete it, as the
                    // condition asks.
                    let status = status_of(harness.env).await;
                    let progressing = progressing_of(&status);
                    if let Some(claim) = retained_claim_named(&progressing)
                        && !claims_deleted.iter().any(|c| c == claim)
                    {
                        claims_deleted.push(claim.to_string());
                        harness.note(format!("the harness deletes claim {claim}: {progressing}"));
                        say(&format!(
                            "  {op:?}: the harness deletes claim {claim}, as asked"
                        ));
                        harness.delete_claim(claim).await;
                        *(harness.report.operations)
                            .entry("RetainedClaimDeleted".to_string())
                            .or_default() += 1;
                    }
                    // The user's part of a lost disk alone in its zone: the slot it asks for.
                    if let Some(stuck) = replace_stuck(&status)
                        && let Some(patch) = state.unstick()
                    {
                        harness.note(format!("the harness unsticks it ({patch}): {stuck}"));
                        say(&format!("  {op:?}: {stuck}; the harness sets {patch}"));
                        harness.env.patch_spec(CLUSTER, patch).await;
                        *(harness.report.operations)
                            .entry("Unstick".to_string())
                            .or_default() += 1;
                    }
                    last_why = why;
                }
            }
            if healed.elapsed() > CONVERGE_BOUND {
                break None;
            }
            harness.keep_operator_running().await;
            tokio::time::sleep(Duration::from_millis(500)).await;
        };
        match converged_at {
            Some((at, refused)) => {
                let after = at.duration_since(last_fault).as_secs_f64();
                if let Some(message) = refused {
                    harness.note(format!("the operator refused {op:?}: {message}"));
                    say(&format!("  {op:?} refused: {message}"));
                    *harness.report.refused.entry(format!("{op:?}")).or_default() += 1;
                }
                harness.report.converged_after.push(after);
                harness.note(format!(
                    "round {}: {op:?} converged {after:.1} s after the last fault",
                    harness.report.rounds
                ));
                say(&format!(
                    "round {} ({:.0} s): {op:?}, converged {after:.1} s after the last fault",
                    harness.report.rounds,
                    started.elapsed().as_secs_f64()
                ));
            }
            None => {
                // What the status says it waits for, with the record, for the report.
                let status = status_of(harness.env).await;
                let last_why = format!(
                    "{last_why}; Progressing {}; record {:?}",
                    progressing_of(&status),
                    status.record
                );
                let mut journal = harness.journal.lock().unwrap();
                let at = journal.now();
                let violation = Violation {
                    rule: "liveness-converges-after-faults",
                    at,
                    message: format!(
                        "{op:?} did not converge within {} s of the last fault: {last_why}",
                        CONVERGE_BOUND.as_secs()
                    ),
                };
                journal.note(format!("VIOLATION {violation}"));
                if journal.first_violation_timeline.is_none() {
                    journal.first_violation_timeline = Some(journal.timeline());
                }
                journal.violations.push(violation);
                break;
            }
        }
    }
    harness.report.elapsed = started.elapsed().as_secs_f64();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_operation_is_offered_only_where_it_is_valid() {
        let mut state = SpecState::initial();
        let ops = state.valid_ops();
        assert_eq!(
            ops,
            vec![
                Op::ImageChange,
                Op::PausedChange,
                Op::LostDisk,
                Op::EtcdGrow,
                Op::MdsUp,
                Op::VolumeGrowth,
                Op::Retire
            ]
        );
        assert_eq!(
            state.apply(Op::EtcdGrow),
            Some(json!({"etcd": {"replicas": 5}}))
        );
        assert_eq!(
            state.apply(Op::Retire),
            Some(json!({"chunkservers": {"replicas": 3}}))
        );
        state.apply(Op::MdsUp);
        state.apply(Op::MdsUp);
        assert_eq!(
            state.apply(Op::PausedChange),
            Some(json!({"mds": {"replicas": 4}}))
        );
        state.apply(Op::VolumeGrowth);
        state.apply(Op::VolumeGrowth);
        assert_eq!(
            state.apply(Op::VolumeGrowth),
            Some(json!({"etcd": {"storage": {"size": "4Gi"}}}))
        );
        assert_eq!(
            state.apply(Op::ImageChange),
            Some(json!({"image": IMAGES[1]}))
        );
        assert_eq!(
            state.apply(Op::ImageChange),
            Some(json!({"image": IMAGES[0]}))
        );
        assert_eq!(state.apply(Op::LostDisk), None);
        assert_eq!(
            state.valid_ops(),
            vec![
                Op::ImageChange,
                Op::PausedChange,
                Op::LostDisk,
                Op::EtcdShrink,
                Op::MdsUp,
                Op::MdsDown,
                Op::ScaleOut
            ]
        );
    }

    /// A lost disk alone in its zone is unstuck once by a second disk slot, which a later
    /// operation removes again.
    #[test]
    fn a_stuck_replacement_gets_a_second_disk_slot_that_a_later_operation_removes() {
        let mut state = SpecState::initial();
        assert!(!state.valid_ops().contains(&Op::DiskSlotRemove));
        assert_eq!(
            state.unstick(),
            Some(json!({"chunkservers": {"disksPerNode": 2}}))
        );
        assert_eq!(state.unstick(), None, "a second slot is there already");
        assert_eq!(state.valid_ops().last(), Some(&Op::DiskSlotRemove));
        assert_eq!(
            state.apply(Op::DiskSlotRemove),
            Some(json!({"chunkservers": {"disksPerNode": 1}}))
        );
        assert!(!state.valid_ops().contains(&Op::DiskSlotRemove));
        assert_eq!(
            state.unstick(),
            Some(json!({"chunkservers": {"disksPerNode": 2}}))
        );
    }
}
