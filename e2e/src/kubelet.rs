//! The suite plays scheduler and kubelet for a control plane without nodes.
//!
//! - Fake Node objects `node-1..node-N` (InternalIP `127.0.0.10<i>`), Ready, with their
//!   heartbeat (node Lease and Ready condition) kept fresh so the node lifecycle controller
//!   never taints or evicts them.
//! - Pending pods of the test namespace are bound to a fitting node through the `binding`
//!   subresource (see [`crate::schedule`]).
//! - Bound pods get the status a kubelet would write: host networking, so hostIP = podIP = the
//!   node's address. What runs for them:
//!   - etcd pods: a real `/usr/bin/etcd` with the `etcd.conf` of the ConfigMap the pod mounts,
//!     Ready only while the member answers `/health`;
//!   - MDS pods: the pod's config init container is run on the emulated Curve image
//!     (curve-image-emulation), then a stand-in campaigns under `07leader` with the merged
//!     `mds.listen.addr` (from
//!     the pod's `mds.conf`) against its `mds.etcd.endpoint`, Ready while it campaigns;
//!   - ChunkServer pods: first the start wrapper's identity rule on the pod's volume
//!     ([`crate::start_wrapper`]), then a stand-in on the cluster's Curve model; Ready as the
//!     pod's own startup and readiness probes say, run as rendered ([`crate::probes`]);
//!   - etcd backup Job pods: their script, for real ([`crate::backup_job`]); other Job pods:
//!     Succeeded; other pods: Running and Ready.
//!
//!   A daemon that dies is restarted after a short back-off, as with restartPolicy Always.
//! - Pods being deleted: their daemon is stopped, then the pod is removed (grace period 0).
//! - `<pod>.<subdomain>.<namespace>.svc` resolves to the pod's address through /etc/hosts.
//!
//! Everything it starts stops when it is dropped, also when a test panics.

use std::borrow::Borrow;
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use curve_image_emulation::conf::parse_curve_conf;
use curve_image_emulation::{
    ImageFiles, Kubelet as EmulatedKubelet, PodFacts, PodRun, VolumeBacking,
};
use futures::{FutureExt, StreamExt, stream};
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{ConfigMap, Node, PersistentVolumeClaim, Pod, PodSpec, Secret};
use k8s_openapi::api::storage::v1::StorageClass;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, Time};
use k8s_openapi::jiff::{SignedDuration, Timestamp};
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams, Preconditions};
use kube::runtime::reflector::{self, Store};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Client, ResourceExt};
use serde_json::{Value, json};

use crate::cluster::SUITE_LABEL;
use crate::curve_model::{ChangePeer, ChunkServer, ClusterMapFile, CopysetKey, CurveSettings};
use crate::curve_standins::{ChunkServerStandIn, ContainerExit, CurveCluster, CurveHandle};
use crate::daemons::{EtcdMember, MdsStandIn, render_etcd_conf};
use crate::hosts::HostsEntries;
use crate::probes::{PROBE_PERIOD, ProbeState};
use crate::schedule::{NodeView, claims, pick_node, prefilter_message, unschedulable_message};
use crate::start_wrapper::check_identity;
use crate::util::TempDir;
use curve_operator::desired::common::Role;
use curve_operator::names::{ETCD_BACKUP, ETCD_RESTORE};

const LABEL_COMPONENT: &str = "app.kubernetes.io/component";
const LABEL_INSTANCE: &str = "app.kubernetes.io/instance";
/// The topology Jobs' step label (the operator's `names::LABEL_STEP`).
const LABEL_TOPOLOGY_STEP: &str = "curve.opencurve.io/topology-step";
/// How long a dead daemon stays down before its "container" is restarted.
const RESTART_DELAY: Duration = Duration::from_secs(2);
const SYNC_PERIOD: Duration = Duration::from_millis(150);
const HEARTBEAT_PERIOD: Duration = Duration::from_secs(10);
/// Nodes created or heartbeating at once.
const NODE_WORKERS: usize = 16;
/// Pods a pass runs (or terminates) at once: their probes and daemons' starts wait on I/O.
const POD_WORKERS: usize = 32;

/// A fake node.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FakeNode {
    pub name: String,
    pub ip: String,
}

/// Nodes numbered up to this have `127.0.0.<100 + index>`; the next ones fill `127.0.1.1`,
/// `127.0.1.2`, … (the whole of 127.0.0.0/8 is the loopback's on Linux: nothing to set up).
const NODES_IN_FIRST_BLOCK: usize = 150;
/// Addresses used per further `127.0.<n>.0/24`.
const NODES_PER_BLOCK: usize = 250;
/// The most nodes one kubelet plays.
pub const MAX_NODES: usize = 2000;

impl FakeNode {
    pub fn new(index: usize) -> FakeNode {
        assert!(
            (1..=MAX_NODES).contains(&index),
            "node index {index} out of range"
        );
        let ip = if index <= NODES_IN_FIRST_BLOCK {
            format!("127.0.0.{}", 100 + index)
        } else {
            let beyond = index - NODES_IN_FIRST_BLOCK - 1;
            let (block, host) = (1 + beyond / NODES_PER_BLOCK, 1 + beyond % NODES_PER_BLOCK);
            format!("127.0.{block}.{host}")
        };
        FakeNode {
            name: format!("node-{index}"),
            ip,
        }
    }

    /// The number in its name.
    pub fn index(&self) -> usize {
        self.name
            .strip_prefix("node-")
            .and_then(|n| n.parse().ok())
            .unwrap_or(0)
    }
}

/// Drives a watch (its cache fills as a side effect) until it ends.
async fn keep<S: futures::Stream>(stream: S) {
    stream.for_each(|_| futures::future::ready(())).await;
}

enum Daemon {
    Etcd(EtcdMember),
    /// `None` once stopped gracefully, until the restart.
    Mds(Option<MdsStandIn>),
    /// A ChunkServer stand-in on the cluster's Curve model.
    ChunkServer(ChunkServerStandIn),
    /// Nothing runs: the pod is Running and Ready as soon as it is bound.
    Plain,
    /// An init container exited non-zero: the pod stays Pending (retried after the delay).
    InitFailed {
        container: String,
        message: String,
    },
    /// The main container exits as soon as it starts (see [`Kubelet::crash_loop`]).
    Exits(Exit),
}

/// How a crashing container ends: its exit code and what it printed last.
#[derive(Clone, Debug, PartialEq)]
pub struct Exit {
    pub code: i32,
    pub output: String,
}

struct Container {
    pod: String,
    daemon: Daemon,
    restarts: i32,
    started_at: Timestamp,
    died_at: Option<Instant>,
    /// What the pod's status says now.
    reported: Option<PodState>,
    /// The prober's state, for a pod whose own probes are run.
    probes: ProbeState,
    /// Kept until the container goes.
    _dir: Option<Arc<TempDir>>,
}

impl Container {
    fn alive(&mut self) -> bool {
        match &mut self.daemon {
            Daemon::Etcd(m) => m.is_running(),
            Daemon::Mds(s) => s.as_ref().is_some_and(|s| !s.is_dead()),
            Daemon::ChunkServer(c) => c.is_running(),
            Daemon::Plain => true,
            Daemon::InitFailed { .. } | Daemon::Exits(_) => false,
        }
    }
}

#[derive(Default)]
struct Control {
    /// Seconds each node's clock is ahead of the machine's (behind when negative): what its
    /// kubelet writes in the node's Lease and conditions.
    clock_offsets: HashMap<String, i64>,
    held: HashSet<String>,
    /// Images whose pods never start (as if the image could not be pulled).
    held_images: HashSet<String>,
    released: HashSet<String>,
    /// Pods whose daemon is not restarted when it dies.
    no_restart: HashSet<String>,
    /// Images no pull of which succeeds (the registry has no such tag).
    unpullable_images: HashSet<String>,
    /// Components whose main container exits at once, every time it is started.
    crashing: HashMap<String, Exit>,
    /// Nodes whose kubelet is gone: no heartbeat, no pod handled there any more.
    lost_nodes: HashSet<String>,
    /// A real kube-scheduler binds the pods: the harness only runs them.
    external_scheduler: bool,
    /// ChunkServer containers start without the wrapper's empty-disk gate (the behaviour
    /// before issue 29; see [`Kubelet::set_empty_disk_gate`]).
    empty_disk_gate_off: bool,
    /// How often a ready container's readiness probe runs (see
    /// [`Kubelet::set_ready_probe_period`]); `None`: every [`PROBE_PERIOD`].
    ready_probe_period: Option<Duration>,
}

struct Shared {
    namespace: String,
    client: Client,
    /// The namespace's pods and the suite's nodes, kept by watches: a pass reads them without
    /// a request (a list of 1200 pods every pass would load the API server and this process).
    pod_cache: Store<Pod>,
    node_cache: Store<Node>,
    claim_cache: Store<PersistentVolumeClaim>,
    /// Pod uid → the node this scheduler bound it to, until the pod cache shows the binding.
    bound: Mutex<HashMap<String, String>>,
    nodes: Mutex<Vec<FakeNode>>,
    control: Mutex<Control>,
    /// By pod uid.
    containers: Mutex<HashMap<String, Container>>,
    hosts: HostsEntries,
    dns: Mutex<HashSet<(String, String)>>,
    unschedulable: Mutex<HashMap<String, String>>,
    /// Pod uid → when the first pull of its unpullable image was tried, and the waiting
    /// reason last written.
    pulls: Mutex<HashMap<String, (Instant, &'static str)>>,
    /// Claim → the node its (local) volume was first used on.
    volume_nodes: Mutex<BTreeMap<String, String>>,
    /// Claim uid → the directory that is its volume: a pod recreated on the same claim finds
    /// its data again, as on a real persistent volume.
    volumes: Mutex<HashMap<String, Arc<TempDir>>>,
    log: Mutex<Vec<String>>,
    started: Instant,
    /// Each CurveCluster's Curve model (by cluster name), made at its first use.
    curve: Mutex<HashMap<String, CurveHandle>>,
    /// The timings new models get.
    curve_settings: Mutex<CurveSettings>,
    /// The nodes' own file systems, for hostPath volumes: `<node>/<path>` under it.
    node_disks: TempDir,
}

impl Shared {
    fn curve_cluster(&self, cluster: &str) -> CurveHandle {
        let settings = self.curve_settings.lock().unwrap().clone();
        let mut clusters = self.curve.lock().unwrap();
        clusters
            .entry(cluster.to_string())
            .or_insert_with(|| CurveCluster::new(settings))
            .clone()
    }

    fn log(&self, line: String) {
        let t = self.started.elapsed().as_secs_f64();
        let line = format!("{t:7.2}s {line}");
        if let Some(file) = log_file() {
            use std::io::Write;
            let _ = writeln!(file.lock().unwrap(), "{} {line}", self.namespace);
        }
        self.log.lock().unwrap().push(line);
    }
}

/// `CURVE_E2E_KUBELET_LOG=<path>`: every kubelet's log lines are also appended there as they
/// come (a long benchmark's log is otherwise only seen when a test fails).
fn log_file() -> Option<&'static Mutex<std::fs::File>> {
    static FILE: std::sync::OnceLock<Option<Mutex<std::fs::File>>> = std::sync::OnceLock::new();
    FILE.get_or_init(|| {
        let path = std::env::var_os("CURVE_E2E_KUBELET_LOG")?;
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .ok()?;
        Some(Mutex::new(file))
    })
    .as_ref()
}

/// The fake scheduler and kubelet of one test namespace.
pub struct Kubelet {
    shared: Arc<Shared>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
    heartbeats: Heartbeats,
}

/// The nodes' heartbeats, on a thread and runtime of their own with a client of their own:
/// however busy the test's runtime is (hundreds of pods), a node's Lease and Ready condition
/// stay fresh, or the node lifecycle controller would mark its pods not ready. Stops when
/// dropped.
struct Heartbeats {
    stop: Arc<std::sync::atomic::AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Heartbeats {
    fn start(shared: Arc<Shared>) -> Heartbeats {
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let stopped = stop.clone();
        let beat = async move {
            let client = crate::cluster::connect().await;
            let mut next = Instant::now() + HEARTBEAT_PERIOD;
            while !stopped.load(std::sync::atomic::Ordering::Relaxed) {
                if Instant::now() < next {
                    tokio::time::sleep(Duration::from_millis(200)).await;
                    continue;
                }
                next += HEARTBEAT_PERIOD;
                let nodes = shared.nodes.lock().unwrap().clone();
                let (lost, clocks) = {
                    let control = shared.control.lock().unwrap();
                    (control.lost_nodes.clone(), control.clock_offsets.clone())
                };
                let alive = nodes.into_iter().filter(|n| !lost.contains(&n.name));
                stream::iter(alive)
                    .for_each_concurrent(NODE_WORKERS, |node| {
                        let (shared, client) = (&shared, &client);
                        let offset = clocks.get(&node.name).copied().unwrap_or(0);
                        async move {
                            if let Err(e) = heartbeat_node(client, &node, offset).await {
                                shared.log(format!("heartbeat of {}: {e}", node.name));
                            }
                        }
                    })
                    .await;
            }
        };
        let thread = std::thread::Builder::new()
            .name("e2e-node-heartbeats".into())
            .spawn(move || {
                tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .expect("a runtime for the heartbeats")
                    .block_on(beat)
            })
            .expect("a thread for the heartbeats");
        Heartbeats {
            stop,
            thread: Some(thread),
        }
    }

    /// Stops them and waits for the round under way: none may renew a Lease once the test
    /// deletes the nodes.
    fn stop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for Heartbeats {
    fn drop(&mut self) {
        self.stop();
    }
}

impl Kubelet {
    /// Creates `nodes` fake nodes and starts scheduling and running the pods of `namespace`.
    pub async fn start(client: Client, namespace: &str, nodes: usize) -> Kubelet {
        let (pod_cache, pod_writer) = reflector::store::<Pod>();
        let (node_cache, node_writer) = reflector::store::<Node>();
        let (claim_cache, claim_writer) = reflector::store::<PersistentVolumeClaim>();
        let pods_api: Api<Pod> = Api::namespaced(client.clone(), namespace);
        let claims_api: Api<PersistentVolumeClaim> = Api::namespaced(client.clone(), namespace);
        let nodes_api: Api<Node> = Api::all(client.clone());
        let suite_nodes = watcher::Config::default().labels(&format!("{SUITE_LABEL}={namespace}"));
        let watches = [
            tokio::spawn(keep(reflector::reflector(
                pod_writer,
                watcher::watcher(pods_api, watcher::Config::default()).default_backoff(),
            ))),
            tokio::spawn(keep(reflector::reflector(
                node_writer,
                watcher::watcher(nodes_api, suite_nodes).default_backoff(),
            ))),
            tokio::spawn(keep(reflector::reflector(
                claim_writer,
                watcher::watcher(claims_api, watcher::Config::default()).default_backoff(),
            ))),
        ];
        let shared = Arc::new(Shared {
            namespace: namespace.to_string(),
            client: client.clone(),
            pod_cache,
            node_cache,
            claim_cache,
            bound: Mutex::default(),
            nodes: Mutex::new(Vec::new()),
            control: Mutex::default(),
            containers: Mutex::default(),
            hosts: HostsEntries::new(namespace),
            dns: Mutex::default(),
            unschedulable: Mutex::default(),
            pulls: Mutex::default(),
            volume_nodes: Mutex::default(),
            volumes: Mutex::default(),
            log: Mutex::default(),
            started: Instant::now(),
            curve: Mutex::default(),
            curve_settings: Mutex::default(),
            node_disks: TempDir::new(&format!("{namespace}-nodes")),
        });
        let mut tasks = Vec::from(watches);
        // A few at a time: hundreds of nodes one after another take long.
        stream::iter(1..=nodes)
            .for_each_concurrent(NODE_WORKERS, |i| create_node(&shared, i).map(drop))
            .await;
        shared.nodes.lock().unwrap().sort_by_key(|n| n.index());
        let sync = tokio::spawn({
            let shared = shared.clone();
            async move {
                let listed = async {
                    shared.pod_cache.wait_until_ready().await?;
                    shared.node_cache.wait_until_ready().await
                };
                if listed.await.is_err() {
                    shared.log("the pod and node watches ended before listing".into());
                    return;
                }
                loop {
                    if let Err(e) = sync_once(&shared).await {
                        shared.log(format!("sync: {e}"));
                    }
                    tokio::time::sleep(SYNC_PERIOD).await;
                }
            }
        });
        tasks.push(sync);
        let heartbeats = Heartbeats::start(shared.clone());
        Kubelet {
            shared,
            tasks,
            heartbeats,
        }
    }

    /// Creates fake node `node-<index>` (Ready, InternalIP as [`FakeNode::new`] says).
    pub async fn add_node(&self, index: usize) -> FakeNode {
        create_node(&self.shared, index).await
    }

    pub fn nodes(&self) -> Vec<FakeNode> {
        self.shared.nodes.lock().unwrap().clone()
    }

    /// A ready container's readiness probe runs every `period` instead of every second (a
    /// container not ready yet is still probed every second). One host playing hundreds of
    /// nodes runs every ChunkServer's readiness script (`sh` and `curl`): 1200 of them a
    /// second would take the machine; their nodes' kubelets would share that load.
    pub fn set_ready_probe_period(&self, period: Duration) {
        self.shared.control.lock().unwrap().ready_probe_period = Some(period);
    }

    /// Pods of `component` (the `app.kubernetes.io/component` label) are bound but their
    /// daemons do not start (as if their image were still pulling) until released.
    pub fn hold(&self, component: &str) {
        self.shared
            .control
            .lock()
            .unwrap()
            .held
            .insert(component.to_string());
    }

    /// Leaves binding pods to a real kube-scheduler running against the API server; the
    /// harness goes on running the pods bound to its nodes.
    pub fn leave_scheduling_to_kube_scheduler(&self) {
        self.shared.control.lock().unwrap().external_scheduler = true;
    }

    /// Pods of `image` never start: the roll to it halts at its first pod.
    pub fn hold_image(&self, image: &str) {
        let mut control = self.shared.control.lock().unwrap();
        control.held_images.insert(image.to_string());
    }

    /// Every pull of `image` fails as the registry answers for a tag it does not have: the
    /// pods' first container to start shows `ErrImagePull`, then `ImagePullBackOff`, as the
    /// kubelet writes them.
    pub fn fail_image_pulls(&self, image: &str) {
        let mut control = self.shared.control.lock().unwrap();
        control.unpullable_images.insert(image.to_string());
    }

    /// The main container of `component`'s pods exits with `exit` every time it starts: the
    /// kubelet restarts it after its back-off and shows `CrashLoopBackOff` with the last run
    /// in `lastState.terminated`.
    pub fn crash_loop(&self, component: &str, exit: Exit) {
        let mut control = self.shared.control.lock().unwrap();
        control.crashing.insert(component.to_string(), exit);
    }

    /// The kubelet of `node` goes away (a crashed machine or a partition): it stops renewing
    /// the node's Lease and Ready heartbeat and handles no pod there any more, so the node
    /// lifecycle controller marks the node `Unknown` after its grace period, and a pod deleted
    /// there stays Terminating. Its daemons keep running, as on a partitioned machine.
    pub fn lose_node(&self, node: &str) {
        let mut control = self.shared.control.lock().unwrap();
        control.lost_nodes.insert(node.to_string());
        drop(control);
        self.shared.log(format!("the kubelet of {node} is gone"));
    }

    /// The volume of `claim` is on `node` from now on, as a network-attached volume that
    /// follows its pod: the scheduler binds the claim's next pod there (the pod bound now
    /// stays where it is until it is deleted).
    pub fn move_volume(&self, claim: &str, node: &str) {
        let mut volume_nodes = self.shared.volume_nodes.lock().unwrap();
        volume_nodes.insert(claim.to_string(), node.to_string());
        drop(volume_nodes);
        self.shared
            .log(format!("the volume of {claim} is on {node} from now on"));
    }

    pub fn release(&self, component: &str) {
        self.shared.control.lock().unwrap().held.remove(component);
        self.shared.log(format!("released {component}"));
    }

    /// Lets one pod start although its component is held.
    pub fn release_pod(&self, pod: &str) {
        self.shared
            .control
            .lock()
            .unwrap()
            .released
            .insert(pod.to_string());
        self.shared.log(format!("released pod {pod}"));
    }

    /// SIGKILL of an MDS: its stand-in stops without revoking its lease. The kubelet restarts
    /// it after a back-off unless `restart` is false.
    pub fn kill_mds(&self, pod: &str, restart: bool) {
        assert!(self.try_kill_mds(pod, restart), "{pod} runs no MDS");
    }

    /// [`Kubelet::kill_mds`], false (and nothing done) when `pod` runs no MDS now.
    pub fn try_kill_mds(&self, pod: &str, restart: bool) -> bool {
        let killed = self.with_daemon(pod, |daemon| match daemon {
            Daemon::Mds(Some(standin)) => {
                standin.kill();
                true
            }
            _ => false,
        });
        if killed {
            if !restart {
                let mut control = self.shared.control.lock().unwrap();
                control.no_restart.insert(pod.to_string());
            }
            self.shared.log(format!("killed the MDS of {pod}"));
        }
        killed
    }

    /// Runs `act` on the daemon of `pod`'s container; false when there is none.
    fn with_daemon(&self, pod: &str, act: impl FnOnce(&mut Daemon) -> bool) -> bool {
        let mut containers = self.shared.containers.lock().unwrap();
        (containers.values_mut())
            .find(|c| c.pod == pod)
            .is_some_and(|c| act(&mut c.daemon))
    }

    /// SIGKILL of an etcd member's process (a crash): the kubelet restarts it on its data after
    /// the back-off. Returns false when `pod` runs no etcd member now.
    pub fn kill_etcd(&self, pod: &str) -> bool {
        let killed = self.with_daemon(pod, |daemon| match daemon {
            Daemon::Etcd(member) => {
                member.kill();
                true
            }
            _ => false,
        });
        if killed {
            self.shared.log(format!("killed the etcd member of {pod}"));
        }
        killed
    }

    /// A graceful stop of an MDS: it resigns and revokes its lease; restarted after a back-off.
    pub async fn stop_mds_gracefully(&self, pod: &str) {
        let standin = {
            let mut containers = self.shared.containers.lock().unwrap();
            let container = containers
                .values_mut()
                .find(|c| c.pod == pod)
                .unwrap_or_else(|| panic!("no container for {pod}"));
            match &mut container.daemon {
                Daemon::Mds(standin) => standin.take(),
                _ => panic!("{pod} is not an MDS"),
            }
        };
        if let Some(mut standin) = standin {
            standin.stop_gracefully().await;
        }
        self.shared
            .log(format!("stopped the MDS of {pod} gracefully (resigned)"));
    }

    /// The Curve timings the models of clusters not seen yet get (call before the cluster
    /// is created to shorten heartbeat timeouts and the copyset load time).
    pub fn set_curve_settings(&self, settings: CurveSettings) {
        *self.shared.curve_settings.lock().unwrap() = settings;
    }

    /// The Curve model of CurveCluster `cluster` (what its stand-ins serve).
    pub fn curve_model(&self, cluster: &str) -> CurveHandle {
        self.shared.curve_cluster(cluster)
    }

    /// How many copysets the model of `cluster` has.
    pub fn curve_copyset_count(&self, cluster: &str) -> usize {
        self.curve_model(cluster).copyset_count()
    }

    /// The copysets the MDS of `cluster` lists per ChunkServer id.
    pub fn curve_copysets_per_chunkserver(&self, cluster: &str) -> BTreeMap<u32, Vec<CopysetKey>> {
        let handle = self.curve_model(cluster);
        let model = handle.model.lock().unwrap();
        model.copysets_per_chunkserver()
    }

    /// The ChunkServers the MDS of `cluster` lists (every state, RETIRED included until
    /// deleted), by id: status, online state, address.
    pub fn curve_chunkservers(&self, cluster: &str) -> Vec<ChunkServer> {
        let handle = self.curve_model(cluster);
        let model = handle.model.lock().unwrap();
        model.chunkservers.values().cloned().collect()
    }

    /// Sets `node`'s clock `seconds` ahead of the machine's (behind when negative), from its
    /// next heartbeat on (at most 10 s away): its Lease renewals carry that time.
    pub fn set_clock_offset(&self, node: &str, seconds: i64) {
        let mut control = self.shared.control.lock().unwrap();
        control.clock_offsets.insert(node.to_string(), seconds);
    }

    /// How many RapidLeaderSchedule calls the primary of `cluster` answered 0, and the
    /// copysets each ChunkServer leads now.
    pub fn curve_leader_spread(&self, cluster: &str) -> (u32, BTreeMap<u32, usize>) {
        let handle = self.curve_model(cluster);
        let model = handle.model.lock().unwrap();
        (
            model.rapid_leader_schedules,
            model.leaders_per_chunkserver(),
        )
    }

    /// The ChangePeers the primary of `cluster` has in flight
    /// (`mds_scheduler_metric_operator_num` counts them).
    pub fn curve_operators(&self, cluster: &str) -> Vec<ChangePeer> {
        let handle = self.curve_model(cluster);
        let model = handle.model.lock().unwrap();
        model.operators.values().cloned().collect()
    }

    /// ChunkServer containers start with the start wrapper's empty-disk gate (`true`, the
    /// default) or without it (`false`: an empty disk registers at once and may take a live
    /// ChunkServer's id — the trap of issue 29).
    pub fn set_empty_disk_gate(&self, on: bool) {
        self.shared.control.lock().unwrap().empty_disk_gate_off = !on;
        let state = if on { "on" } else { "off" };
        self.shared.log(format!("the empty-disk gate is {state}"));
    }

    /// The ChunkServer of `pod` loses its data (a disk replaced under the same claim): it
    /// stops, its volume is wiped in the model, and its container, restarted after the
    /// back-off, starts on an empty disk. (A deleted claim is a new, empty volume anyway.)
    pub fn lose_chunkserver_data(&self, pod: &str) {
        let mut containers = self.shared.containers.lock().unwrap();
        let container = (containers.values_mut())
            .find(|c| c.pod == pod)
            .unwrap_or_else(|| panic!("no container for {pod}"));
        let Daemon::ChunkServer(standin) = &mut container.daemon else {
            panic!("{pod} runs no ChunkServer");
        };
        standin.lose_data();
        drop(containers);
        self.shared
            .log(format!("the ChunkServer volume of {pod} lost its data"));
    }

    /// How the ChunkServer container of `pod` last ended by itself (the gate's refusal, a
    /// fatal registration), while it is down.
    pub fn chunkserver_exit(&self, pod: &str) -> Option<ContainerExit> {
        let containers = self.shared.containers.lock().unwrap();
        (containers.values())
            .find(|c| c.pod == pod)
            .and_then(|c| match &c.daemon {
                Daemon::ChunkServer(standin) => standin.exit(),
                _ => None,
            })
    }

    /// The ChunkServer id the stand-in of `pod` registered as, while it runs.
    pub fn chunkserver_id(&self, pod: &str) -> Option<u32> {
        let containers = self.shared.containers.lock().unwrap();
        containers
            .values()
            .find(|c| c.pod == pod)
            .and_then(|c| match &c.daemon {
                Daemon::ChunkServer(standin) => standin.id(),
                _ => None,
            })
    }

    /// Stops the ChunkServer of `pod` (its server and heartbeats) and keeps it down until
    /// [`Kubelet::start_chunkserver`].
    pub fn stop_chunkserver(&self, pod: &str) {
        assert!(self.try_stop_chunkserver(pod), "{pod} runs no ChunkServer");
    }

    /// [`Kubelet::stop_chunkserver`], false (and nothing done) when `pod` runs no ChunkServer
    /// container now.
    pub fn try_stop_chunkserver(&self, pod: &str) -> bool {
        // Kept from restarting before it stops, so the restart loop cannot race the stop.
        let mut control = self.shared.control.lock().unwrap();
        control.no_restart.insert(pod.to_string());
        drop(control);
        let stopped = self.with_daemon(pod, |daemon| match daemon {
            Daemon::ChunkServer(standin) => {
                standin.stop();
                true
            }
            _ => false,
        });
        if stopped {
            self.shared.log(format!("stopped the ChunkServer of {pod}"));
        } else {
            self.shared.control.lock().unwrap().no_restart.remove(pod);
        }
        stopped
    }

    /// The raft groups of `pod`'s ChunkServer fail (`true`: it serves none of its copysets while
    /// its process runs and its port is open, so its pod stays Ready) or come back (`false`).
    pub fn fail_chunkserver_copysets(&self, pod: &str, failed: bool) {
        let containers = self.shared.containers.lock().unwrap();
        let container = (containers.values())
            .find(|c| c.pod == pod)
            .unwrap_or_else(|| panic!("no container for {pod}"));
        match &container.daemon {
            Daemon::ChunkServer(standin) => standin.fail_copysets(failed),
            _ => panic!("{pod} runs no ChunkServer"),
        }
        drop(containers);
        let what = if failed { "fail" } else { "serve again" };
        self.shared
            .log(format!("the copysets of {pod}'s ChunkServer {what}"));
    }

    /// Lets the stopped ChunkServer of `pod` start again (after the restart back-off).
    pub fn start_chunkserver(&self, pod: &str) {
        let mut control = self.shared.control.lock().unwrap();
        control.no_restart.remove(pod);
        drop(control);
        self.shared
            .log(format!("the ChunkServer of {pod} may start again"));
    }

    /// The listen port of the MDS primary running in `pod` refuses connections (`true`) or
    /// serves again (`false`); it stays elected. Panics when that MDS is not the primary.
    pub fn mds_refuse_listen(&self, pod: &str, refuse: bool) {
        let containers = self.shared.containers.lock().unwrap();
        let serving = containers
            .values()
            .find(|c| c.pod == pod)
            .is_some_and(|c| matches!(&c.daemon, Daemon::Mds(Some(s)) if s.refuse_listen(refuse)));
        drop(containers);
        assert!(serving, "{pod} is not the MDS primary");
        self.shared.log(format!(
            "the listen port of the MDS primary {pod} {}",
            if refuse {
                "refuses connections"
            } else {
                "serves again"
            }
        ));
    }

    /// The `ip:port` an MDS pod campaigns with, if its stand-in runs.
    pub fn mds_address(&self, pod: &str) -> Option<String> {
        let containers = self.shared.containers.lock().unwrap();
        containers
            .values()
            .find(|c| c.pod == pod)
            .and_then(|c| match &c.daemon {
                Daemon::Mds(Some(s)) if !s.is_dead() => Some(s.address.clone()),
                _ => None,
            })
    }

    /// The directory that is the volume of `claim` (made at its first use, as a pod's).
    pub async fn claim_volume(&self, claim: &str) -> PathBuf {
        let dir = claim_dir(&self.shared, claim, "test").await;
        dir.unwrap_or_else(|e| panic!("{e}")).path().to_path_buf()
    }

    /// Everything on the volume of `claim` is gone (a wiped disk under the same claim).
    pub async fn wipe_claim_volume(&self, claim: &str) {
        let dir = self.claim_volume(claim).await;
        for entry in std::fs::read_dir(&dir).unwrap().flatten() {
            let path = entry.path();
            let gone = if path.is_dir() {
                std::fs::remove_dir_all(&path)
            } else {
                std::fs::remove_file(&path)
            };
            gone.unwrap_or_else(|e| panic!("wipe {}: {e}", path.display()));
        }
        self.shared
            .log(format!("the volume of {claim} lost its data"));
    }

    /// Client endpoints (`ip:port`) of the running etcd members.
    pub fn etcd_endpoints(&self) -> Vec<String> {
        let containers = self.shared.containers.lock().unwrap();
        let mut endpoints: Vec<String> = containers
            .values()
            .filter_map(|c| match &c.daemon {
                Daemon::Etcd(m) => Some(m.client_url.clone()),
                _ => None,
            })
            .collect();
        endpoints.sort();
        endpoints
    }

    /// How long ago it started (the times of its log are since then).
    pub fn uptime(&self) -> Duration {
        self.shared.started.elapsed()
    }

    /// What the kubelet did, with times since it started.
    pub fn log(&self) -> String {
        self.shared.log.lock().unwrap().join("\n")
    }

    /// Log files of the etcd members.
    pub fn etcd_logs(&self) -> Vec<(String, PathBuf)> {
        let containers = self.shared.containers.lock().unwrap();
        containers
            .values()
            .filter_map(|c| match &c.daemon {
                Daemon::Etcd(m) => Some((c.pod.clone(), m.log.clone())),
                _ => None,
            })
            .collect()
    }

    /// Stops every daemon; the pods stay as they are.
    pub fn stop(&mut self) {
        self.heartbeats.stop();
        for task in self.tasks.drain(..) {
            task.abort();
        }
        self.shared.containers.lock().unwrap().clear();
        self.shared.hosts.remove_all();
    }
}

impl Kubelet {
    /// Prints what the kubelet did and the end of each etcd member's log (for a failed test).
    pub fn dump(&self) {
        eprintln!(
            "---- fake kubelet log ({}) ----\n{}",
            self.shared.namespace,
            self.log()
        );
        for (pod, log) in self.etcd_logs() {
            eprintln!(
                "---- etcd log of {pod} (last lines) ----\n{}",
                crate::util::tail(&log, 25)
            );
        }
    }
}

impl Drop for Kubelet {
    fn drop(&mut self) {
        if std::thread::panicking() && !self.tasks.is_empty() {
            self.dump();
        }
        self.stop();
    }
}

/// Creates fake node `node-<index>`: the Node object, its first heartbeat, and the kubelet's
/// record of it.
async fn create_node(shared: &Shared, index: usize) -> FakeNode {
    let node = FakeNode::new(index);
    let nodes: Api<Node> = Api::all(shared.client.clone());

    let object: Node = serde_json::from_value(json!({
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": node.name,
            "labels": {
                "kubernetes.io/hostname": node.name,
                "kubernetes.io/os": "linux",
                "kubernetes.io/arch": "amd64",
                SUITE_LABEL: shared.namespace,
            },
        },
        "spec": {},
    }))
    .unwrap();
    nodes
        .create(&PostParams::default(), &object)
        .await
        .unwrap_or_else(|e| panic!("create node {}: {e}", node.name));
    heartbeat_node(&shared.client, &node, 0)
        .await
        .unwrap_or_else(|e| panic!("status of node {}: {e}", node.name));
    shared.log(format!("node {} ({}) created", node.name, node.ip));
    shared.nodes.lock().unwrap().push(node.clone());
    node
}

async fn heartbeat_node(
    client: &Client,
    node: &FakeNode,
    clock_offset: i64,
) -> Result<(), kube::Error> {
    // The node's own clock, as its kubelet reads it.
    let now = Timestamp::now() + SignedDuration::from_secs(clock_offset);
    let condition = |type_: &str, status: &str, reason: &str| {
        json!({"type": type_, "status": status, "reason": reason, "message": "e2e fake kubelet",
               "lastHeartbeatTime": now, "lastTransitionTime": now})
    };
    let status = json!({"status": {
        "addresses": [{"type": "InternalIP", "address": node.ip}, {"type": "Hostname", "address": node.name}],
        "capacity": {"cpu": "16", "memory": "64Gi", "pods": "110", "ephemeral-storage": "500Gi"},
        "allocatable": {"cpu": "16", "memory": "64Gi", "pods": "110", "ephemeral-storage": "500Gi"},
        "conditions": [
            condition("MemoryPressure", "False", "KubeletHasSufficientMemory"),
            condition("DiskPressure", "False", "KubeletHasNoDiskPressure"),
            condition("PIDPressure", "False", "KubeletHasSufficientPID"),
            condition("Ready", "True", "KubeletReady"),
        ],
        "daemonEndpoints": {"kubeletEndpoint": {"Port": 10250}},
        "nodeInfo": {"machineID": node.name, "systemUUID": node.name, "bootID": node.name, "kernelVersion": "e2e",
            "osImage": "e2e", "containerRuntimeVersion": "e2e://1", "kubeletVersion": "v1.32.0", "kubeProxyVersion": "",
            "operatingSystem": "linux", "architecture": "amd64"},
    }});
    let nodes: Api<Node> = Api::all(client.clone());
    // The node controller reads lastHeartbeatTime of Ready; keep the other conditions as sent.
    nodes
        .patch_status(&node.name, &PatchParams::default(), &Patch::Merge(status))
        .await?;
    let leases: Api<Lease> = Api::namespaced(client.clone(), "kube-node-lease");
    let lease = json!({
        "apiVersion": "coordination.k8s.io/v1",
        "kind": "Lease",
        "metadata": {"name": node.name},
        "spec": {"holderIdentity": node.name, "leaseDurationSeconds": 40, "renewTime": MicroTime(now)},
    });
    leases
        .patch(
            &node.name,
            &PatchParams::apply("e2e-kubelet").force(),
            &Patch::Apply(lease),
        )
        .await?;
    Ok(())
}

fn component_of(pod: &Pod) -> String {
    pod.labels()
        .get(LABEL_COMPONENT)
        .cloned()
        .unwrap_or_default()
}

fn is_job_pod(pod: &Pod) -> bool {
    pod.owner_references().iter().any(|o| o.kind == "Job")
}

/// What one pass does with a pod of the namespace.
#[derive(Debug, PartialEq)]
enum PodWork {
    /// Being deleted: stop its containers, then remove it.
    Terminate,
    /// Not bound to a node yet: the scheduler's.
    Schedule,
    /// Bound to this fake node: the kubelet's.
    Run(FakeNode),
    /// Bound to a node that is not one of this kubelet's, or whose kubelet is gone.
    Elsewhere,
}

fn work_for(pod: &Pod, nodes: &[FakeNode], lost: &HashSet<String>) -> PodWork {
    let bound_to = pod.spec.as_ref().and_then(|s| s.node_name.as_ref());
    if bound_to.is_some_and(|n| lost.contains(n)) {
        return PodWork::Elsewhere;
    }
    if pod.metadata.deletion_timestamp.is_some() {
        return PodWork::Terminate;
    }
    let Some(node_name) = pod.spec.as_ref().and_then(|s| s.node_name.as_deref()) else {
        return PodWork::Schedule;
    };
    nodes
        .iter()
        .find(|n| n.name == node_name)
        .cloned()
        .map_or(PodWork::Elsewhere, PodWork::Run)
}

/// The pods of the namespace as the cache has them, in name order, each bound by this
/// scheduler already shown on its node (the cache may not have the binding yet).
fn current_pods(shared: &Shared) -> Vec<Arc<Pod>> {
    let mut pods = shared.pod_cache.state();
    pods.sort_by(|a, b| a.metadata.name.cmp(&b.metadata.name));
    let mut bound = shared.bound.lock().unwrap();
    for pod in &mut pods {
        let uid = pod.metadata.uid.clone().unwrap_or_default();
        let Some(node) = bound.get(&uid).cloned() else {
            continue;
        };
        if node_name(pod).is_some() {
            bound.remove(&uid);
        } else if let Some(spec) = Arc::make_mut(pod).spec.as_mut() {
            spec.node_name = Some(node);
        }
    }
    let listed: HashSet<&str> = (pods.iter())
        .filter_map(|p| p.metadata.uid.as_deref())
        .collect();
    bound.retain(|uid, _| listed.contains(uid.as_str()));
    drop(bound);
    pods
}

fn node_name(pod: &Pod) -> Option<&str> {
    pod.spec.as_ref()?.node_name.as_deref()
}

/// One pass of scheduler and kubelet over the pods of the namespace: the pending ones bound
/// one after another (each binding is seen by the next), then the bound ones run (and the
/// deleted ones stopped) a few at a time.
async fn sync_once(shared: &Arc<Shared>) -> Result<(), String> {
    let pods_api: Api<Pod> = Api::namespaced(shared.client.clone(), &shared.namespace);
    let mut pods = current_pods(shared);
    let own_nodes = shared.nodes.lock().unwrap().clone();
    let node_views = node_views(shared, &own_nodes);
    stop_containers_of_gone_pods(shared, &pods);
    let (lost, external_scheduler) = {
        let control = shared.control.lock().unwrap();
        (control.lost_nodes.clone(), control.external_scheduler)
    };
    let mut kubelet_work = Vec::new();
    for index in 0..pods.len() {
        match work_for(&pods[index], &own_nodes, &lost) {
            PodWork::Schedule if external_scheduler => {}
            PodWork::Schedule => schedule(shared, &pods_api, &mut pods, index, &node_views).await,
            PodWork::Terminate => kubelet_work.push((pods[index].clone(), None)),
            PodWork::Run(node) => kubelet_work.push((pods[index].clone(), Some(node))),
            PodWork::Elsewhere => {}
        }
    }
    stream::iter(kubelet_work)
        .for_each_concurrent(POD_WORKERS, |(pod, node)| {
            let pods_api = &pods_api;
            async move {
                match node {
                    None => terminate(shared, pods_api, &pod).await,
                    Some(node) => {
                        if let Err(e) = sync_pod(shared, pods_api, &pod, &node).await {
                            shared.log(format!("{}: {e}", pod.name_any()));
                        }
                    }
                }
            }
        })
        .await;
    Ok(())
}

/// The fake nodes as the scheduler sees them (labels, taints, cordon), from the node cache.
fn node_views(shared: &Shared, own: &[FakeNode]) -> Vec<NodeView> {
    let cached: HashMap<String, Arc<Node>> = (shared.node_cache.state().into_iter())
        .map(|n| (n.name_any(), n))
        .collect();
    own.iter()
        .filter_map(|o| cached.get(&o.name))
        .map(|n| NodeView::from_node(n))
        .collect()
}

/// The uids of containers whose pod is no longer listed (deleted by someone else).
fn gone_pod_uids<'a, P: Borrow<Pod>>(
    containers: impl Iterator<Item = &'a String>,
    pods: &[P],
) -> Vec<String> {
    let listed: HashSet<&str> = pods
        .iter()
        .filter_map(|p| p.borrow().metadata.uid.as_deref())
        .collect();
    containers
        .filter(|uid| !listed.contains(uid.as_str()))
        .cloned()
        .collect()
}

/// Stops the containers of pods that are gone (dropping a container stops its daemon).
fn stop_containers_of_gone_pods(shared: &Shared, pods: &[Arc<Pod>]) {
    let gone: Vec<Container> = {
        let mut containers = shared.containers.lock().unwrap();
        gone_pod_uids(containers.keys(), pods)
            .iter()
            .filter_map(|uid| containers.remove(uid))
            .collect()
    };
    for container in gone {
        shared.log(format!(
            "pod {} is gone: stopped its container",
            container.pod
        ));
    }
}

/// The scheduler's part for a pending pod: bound to the node [`pick_node`] chooses, or left
/// Pending with the condition the scheduler writes (`PodScheduled` False, reason
/// `Unschedulable`, its FitError as message: pkg/scheduler/schedule_one.go
/// `handleSchedulingFailure`), written and logged once per reason.
async fn schedule(
    shared: &Shared,
    pods_api: &Api<Pod>,
    pods: &mut [Arc<Pod>],
    index: usize,
    node_views: &[NodeView],
) {
    let pod = &pods[index];
    let name = pod.name_any();
    let uid = pod.metadata.uid.clone().unwrap_or_default();
    let volume_nodes = shared.volume_nodes.lock().unwrap().clone();
    let placement = match claim_of_missing_class(shared, pod).await {
        Some(claim) => Err((
            format!("claim {claim} names a StorageClass that does not exist"),
            prefilter_message(node_views.len(), UNBOUND_IMMEDIATE_CLAIMS),
        )),
        None => pick_node(pod, node_views, pods, &volume_nodes).map_err(|why| {
            let message = unschedulable_message(pod, node_views, pods, &volume_nodes);
            (why, message.unwrap_or_else(|| NO_NODES.to_string()))
        }),
    };
    match placement {
        Ok(node) => match bind(shared, pods_api, &name, &node).await {
            Ok(()) => {
                shared.unschedulable.lock().unwrap().remove(&uid);
                shared.log(format!("bound {name} to {node}"));
                shared.bound.lock().unwrap().insert(uid, node.clone());
                remember_placement(shared, Arc::make_mut(&mut pods[index]), node);
            }
            Err(e) => shared.log(format!("binding {name} to {node}: {e}")),
        },
        Err((why, message)) => {
            if shared.unschedulable.lock().unwrap().get(&uid) == Some(&message) {
                return;
            }
            shared.log(format!("{name} stays Pending: {why}"));
            match mark_unschedulable(pods_api, &name, &message).await {
                Ok(()) => {
                    shared.unschedulable.lock().unwrap().insert(uid, message);
                }
                Err(e) => shared.log(format!("{name}: writing PodScheduled: {e}")),
            }
        }
    }
}

/// VolumeBinding's PreFilter reason for a pod with a claim that is neither bound nor of a
/// WaitForFirstConsumer class (pkg/scheduler/framework/plugins/volumebinding/volume_binding.go).
const UNBOUND_IMMEDIATE_CLAIMS: &str = "pod has unbound immediate PersistentVolumeClaims";
/// The scheduler's message when there is no node at all (pkg/scheduler/schedule_one.go
/// `ErrNoNodesAvailable`).
const NO_NODES: &str = "no nodes available to schedule pods";

/// A claim of the pod that is not bound and names a StorageClass that does not exist. The
/// scheduler counts such a claim as one of immediate binding (pkg/volume/util
/// `IsDelayBindingMode` is false for a class it cannot find) and no node can take the pod
/// until a volume binds it. (Claims of no class are the suite's local volumes, bound where
/// first used.)
async fn claim_of_missing_class(shared: &Shared, pod: &Pod) -> Option<String> {
    let classes: Api<StorageClass> = Api::all(shared.client.clone());
    for name in claims(pod) {
        let Some(claim) = cached_claim(shared, &name) else {
            continue;
        };
        let bound = claim
            .spec
            .as_ref()
            .and_then(|s| s.volume_name.as_ref())
            .is_some();
        let class = claim
            .spec
            .as_ref()
            .and_then(|s| s.storage_class_name.clone());
        if let Some(class) = class.filter(|c| !c.is_empty() && !bound)
            && matches!(classes.get_opt(&class).await, Ok(None))
        {
            return Some(name);
        }
    }
    None
}

/// Claim `name` of the namespace as the claim cache has it.
fn cached_claim(shared: &Shared, name: &str) -> Option<Arc<PersistentVolumeClaim>> {
    let key = reflector::ObjectRef::new(name).within(&shared.namespace);
    shared.claim_cache.get(&key)
}

/// Writes the scheduler's `PodScheduled` False/`Unschedulable` condition on the pod, as a
/// strategic merge patch of its status (pkg/scheduler/util `PatchPodStatus`).
async fn mark_unschedulable(pods_api: &Api<Pod>, name: &str, message: &str) -> Result<(), String> {
    let status = json!({"status": {"conditions": [{
        "type": "PodScheduled", "status": "False", "reason": "Unschedulable", "message": message,
        "lastProbeTime": null, "lastTransitionTime": Timestamp::now(),
    }]}});
    pods_api
        .patch_status(name, &PatchParams::default(), &Patch::Strategic(status))
        .await
        .map(|_| ())
        .map_err(|e| e.to_string())
}

/// Binds pod `name` to `node` through the `pods/binding` subresource, as the scheduler does.
async fn bind(
    shared: &Shared,
    pods_api: &Api<Pod>,
    name: &str,
    node: &str,
) -> Result<(), kube::Error> {
    let binding = json!({
        "apiVersion": "v1", "kind": "Binding",
        "metadata": {"name": name, "namespace": shared.namespace},
        "target": {"apiVersion": "v1", "kind": "Node", "name": node},
    });
    pods_api
        .create_subresource::<_, Value>("binding", name, &PostParams::default(), &binding)
        .await
        .map(|_| ())
}

/// After a binding: the pod's claims have their (local) volumes on `node` from now on, and the
/// next pods of this pass see the pod placed.
fn remember_placement(shared: &Shared, pod: &mut Pod, node: String) {
    let mut volume_nodes = shared.volume_nodes.lock().unwrap();
    for claim in claims(pod) {
        volume_nodes.entry(claim).or_insert_with(|| node.clone());
    }
    drop(volume_nodes);
    if let Some(spec) = pod.spec.as_mut() {
        spec.node_name = Some(node);
    }
}

/// A pod being deleted: stop its daemon as a kubelet stops the containers, then remove it.
async fn terminate(shared: &Arc<Shared>, pods_api: &Api<Pod>, pod: &Pod) {
    let name = pod.name_any();
    let uid = pod.metadata.uid.clone().unwrap_or_default();
    let container = shared.containers.lock().unwrap().remove(&uid);
    if let Some(mut container) = container {
        match &mut container.daemon {
            Daemon::Mds(Some(standin)) => standin.stop_gracefully().await,
            Daemon::Mds(None) => {}
            Daemon::Etcd(member) => member.kill(),
            Daemon::ChunkServer(standin) => standin.stop(),
            Daemon::Plain | Daemon::InitFailed { .. } | Daemon::Exits(_) => {}
        }
    }
    let params = DeleteParams {
        grace_period_seconds: Some(0),
        preconditions: Some(Preconditions {
            uid: Some(uid),
            resource_version: None,
        }),
        ..DeleteParams::default()
    };
    match pods_api.delete(&name, &params).await {
        Ok(_) => shared.log(format!("deleted pod {name}")),
        Err(kube::Error::Api(s)) if s.code == 404 || s.code == 409 => {}
        Err(e) => shared.log(format!("deleting {name}: {e}")),
    }
}

/// The kubelet's part for a pod bound to one of the fake nodes: its DNS name, its containers
/// started (and restarted), its readiness probed, its status reported.
async fn sync_pod(
    shared: &Arc<Shared>,
    pods_api: &Api<Pod>,
    pod: &Pod,
    node: &FakeNode,
) -> Result<(), String> {
    publish_dns(shared, pod, node);
    if is_job_pod(pod) {
        return complete_job_pod(shared, pods_api, pod, node).await;
    }
    let name = pod.name_any();
    let uid = pod.metadata.uid.clone().unwrap_or_default();
    let held = {
        let control = shared.control.lock().unwrap();
        let image = pod
            .spec
            .as_ref()
            .and_then(|s| s.containers.first())
            .and_then(|c| c.image.clone())
            .unwrap_or_default();
        (control.held.contains(&component_of(pod)) || control.held_images.contains(&image))
            && !control.released.contains(&name)
    };
    let unpullable = unpullable_image(pod, &shared.control.lock().unwrap().unpullable_images);
    let exists = shared.containers.lock().unwrap().contains_key(&uid);
    if !exists {
        if let Some((container, image)) = unpullable {
            return report_pull_failure(shared, pods_api, pod, node, &container, &image).await;
        }
        if held {
            return report_held(shared, pods_api, pod, node).await;
        }
        start_containers(shared, pod, &uid, node).await?;
    }
    let (alive, died_at) = check_liveness(shared, &uid);
    let no_restart = shared.control.lock().unwrap().no_restart.contains(&name);
    if restart_due(alive, died_at, Instant::now(), held, no_restart) {
        restart(shared, pod, &uid, &node.ip).await?;
    }
    let ready = probe_readiness(shared, pod, &uid, alive, &node.ip).await;
    report(shared, pods_api, pod, &uid, &node.ip, ready).await
}

/// The first container the kubelet starts (init containers first) whose image cannot be
/// pulled, and that image: pulls go in that order, so that container is the one waiting.
fn unpullable_image(pod: &Pod, unpullable: &HashSet<String>) -> Option<(String, String)> {
    let spec = pod.spec.as_ref()?;
    let first = spec
        .init_containers
        .iter()
        .flatten()
        .chain(&spec.containers)
        .next()?;
    let image = first.image.clone().unwrap_or_default();
    unpullable
        .contains(&image)
        .then(|| (first.name.clone(), image))
}

/// How long a failed pull shows `ErrImagePull` before the pod's next sync says
/// `ImagePullBackOff`.
const PULL_ERROR_SHOWN: Duration = Duration::from_secs(2);

/// The waiting reason of a container whose image cannot be pulled, `since` the first try. The
/// kubelet retries a pull after its image back-off (pkg/kubelet/kubelet.go: `backOffPeriod`
/// 10 s, doubled up to `MaxContainerBackOff` 300 s): right after a try the container waits
/// with `ErrImagePull`, until the next try with `ImagePullBackOff`
/// (pkg/kubelet/images/image_manager.go `EnsureImageExists`).
fn pull_reason(since: Duration) -> &'static str {
    let mut next_try = Duration::ZERO;
    let mut back_off = Duration::from_secs(10);
    while next_try + back_off <= since {
        next_try += back_off;
        back_off = (back_off * 2).min(Duration::from_secs(300));
    }
    if since - next_try < PULL_ERROR_SHOWN {
        "ErrImagePull"
    } else {
        "ImagePullBackOff"
    }
}

/// The waiting message the kubelet writes with `reason` for `image`: the container runtime's
/// error for a tag the registry does not have (containerd's, pkg/cri/server/images/image_pull.go,
/// returned as is by the kubelet's `evalCRIPullErr`), and in back-off the kubelet's
/// `Back-off pulling image` with the last pull's error.
fn pull_message(reason: &str, image: &str) -> String {
    let reference = if image.split('/').next().is_some_and(|h| h.contains('.')) {
        image.to_string()
    } else {
        format!("docker.io/{image}")
    };
    let error = format!(
        "rpc error: code = NotFound desc = failed to pull and unpack image \"{reference}\": failed to resolve reference \"{reference}\": {reference}: not found"
    );
    if reason == "ErrImagePull" {
        error
    } else {
        format!("Back-off pulling image \"{image}\": ErrImagePull: {error}")
    }
}

/// A pod whose image cannot be pulled: Pending on its node, `container` waiting with the
/// kubelet's pull reason, the containers after it waiting `PodInitializing`; written when the
/// reason changes.
async fn report_pull_failure(
    shared: &Shared,
    pods_api: &Api<Pod>,
    pod: &Pod,
    node: &FakeNode,
    container: &str,
    image: &str,
) -> Result<(), String> {
    let uid = pod.metadata.uid.clone().unwrap_or_default();
    let (first_try, shown) = *(shared.pulls.lock().unwrap())
        .entry(uid.clone())
        .or_insert((Instant::now(), ""));
    let reason = pull_reason(first_try.elapsed());
    if reason == shown {
        return Ok(());
    }
    let state = PodState {
        phase: "Pending",
        ready: false,
        restarts: 0,
        dead: false,
        init_failed: None,
        last_exit: None,
    };
    let mut status = pod_status(pod, &node.ip, &state, Timestamp::now());
    let waiting = json!({"reason": reason, "message": pull_message(reason, image)});
    for key in ["initContainerStatuses", "containerStatuses"] {
        for c in status["status"][key].as_array_mut().into_iter().flatten() {
            if c["name"] == container {
                c["state"] = json!({"waiting": waiting});
            } else {
                c["state"] = json!({"waiting": {"reason": "PodInitializing"}});
            }
        }
    }
    let name = pod.name_any();
    patch_status(pods_api, &name, status).await?;
    shared
        .pulls
        .lock()
        .unwrap()
        .insert(uid, (first_try, reason));
    shared.log(format!(
        "{name}: {container} cannot pull {image} ({reason})"
    ));
    Ok(())
}

/// `<hostname>.<subdomain>.<namespace>.svc`: the cluster DNS name of a pod behind its
/// headless Service.
fn pod_fqdn(pod: &Pod, namespace: &str) -> Option<String> {
    let spec = pod.spec.as_ref()?;
    let (hostname, subdomain) = (spec.hostname.as_ref()?, spec.subdomain.as_ref()?);
    Some(format!("{hostname}.{subdomain}.{namespace}.svc"))
}

/// Cluster DNS: the pod's name resolves to its node's address (an /etc/hosts line).
fn publish_dns(shared: &Shared, pod: &Pod, node: &FakeNode) {
    let Some(fqdn) = pod_fqdn(pod, &shared.namespace) else {
        return;
    };
    if shared
        .dns
        .lock()
        .unwrap()
        .insert((fqdn.clone(), node.ip.clone()))
    {
        shared.hosts.set(&node.ip, &fqdn);
    }
}

/// A pod of a Job: marked Succeeded at once (nothing runs).
async fn complete_job_pod(
    shared: &Shared,
    pods_api: &Api<Pod>,
    pod: &Pod,
    node: &FakeNode,
) -> Result<(), String> {
    if pod.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Succeeded") {
        return Ok(());
    }
    if [ETCD_BACKUP, ETCD_RESTORE].contains(&component_of(pod).as_str()) {
        return run_script_job_pod(shared, pods_api, pod, node).await;
    }
    let files = mounted_map_files(shared, pod).await?;
    if !topology_step_done(shared, pod, &files) {
        return Ok(());
    }
    let state = PodState {
        phase: "Succeeded",
        ready: false,
        restarts: 0,
        dead: false,
        init_failed: None,
        last_exit: None,
    };
    let status = pod_status(pod, &node.ip, &state, Timestamp::now());
    let name = pod.name_any();
    patch_status(pods_api, &name, status).await?;
    shared.log(format!("job pod {name} Succeeded"));
    Ok(())
}

/// A pod of an etcd backup or restore Job: its script runs for real, once, on the claims'
/// directories ([`crate::job_run`]); the pod ends Succeeded or Failed with the container's exit
/// code and termination message, as a kubelet writes them.
async fn run_script_job_pod(
    shared: &Shared,
    pods_api: &Api<Pod>,
    pod: &Pod,
    node: &FakeNode,
) -> Result<(), String> {
    // A pass may see the pod again before its end is written: it runs once.
    static RAN: Mutex<BTreeSet<String>> = Mutex::new(BTreeSet::new());
    let uid = pod.metadata.uid.clone().unwrap_or_default();
    let phase = pod.status.as_ref().and_then(|s| s.phase.as_deref());
    if phase == Some("Failed") || !RAN.lock().unwrap().insert(uid) {
        return Ok(());
    }
    let name = pod.name_any();
    let mut mounts = Vec::new();
    let mut etcd_data = None;
    for (mount_path, claim) in claim_mounts(pod) {
        let dir = claim_dir(shared, &claim, &name).await?;
        if mount_path == Role::Etcd.data_dir() {
            etcd_data = Some(dir.clone());
        }
        mounts.push((mount_path, dir.path().to_path_buf()));
    }
    // The steps' shared emptyDir volumes (a bucket copy's result file), for this pod alone.
    let mut scratch = Vec::new();
    for mount_path in empty_dir_mounts(pod) {
        let dir = TempDir::new(&format!("{name}-scratch"));
        mounts.push((mount_path, dir.path().to_path_buf()));
        scratch.push(dir);
    }
    let secrets = referenced_secret_keys(shared, pod).await?;
    let started = Timestamp::now();
    let steps = crate::job_run::run_steps(pod, &mounts, &secrets).await?;
    let (_, _, exit) = steps.last().ok_or("the Job's pod has no container")?;
    // The harness runs etcd with its data dir one level down (daemons.rs render_etcd_conf:
    // `<claim>/data`, the WAL at `<claim>/wal`): a restored member goes where it looks.
    if let Some(dir) = etcd_data.filter(|_| exit.code == 0) {
        let member = dir.path().join("member");
        if member.exists() {
            let data = dir.path().join("data");
            let _ = std::fs::remove_dir_all(&data);
            std::fs::create_dir_all(&data).map_err(|e| e.to_string())?;
            std::fs::rename(&member, data.join("member")).map_err(|e| e.to_string())?;
        }
    }
    let phase = if exit.code == 0 {
        "Succeeded"
    } else {
        "Failed"
    };
    let state = PodState {
        phase,
        ready: false,
        restarts: 0,
        dead: false,
        init_failed: None,
        last_exit: None,
    };
    let mut status = pod_status(pod, &node.ip, &state, started);
    // Each step that ran ended so; a container after a failed init container never started.
    for (list, init) in [
        ("initContainerStatuses", true),
        ("containerStatuses", false),
    ] {
        for c in (status["status"][list].as_array_mut())
            .into_iter()
            .flatten()
        {
            let ran = (steps.iter()).find(|(n, i, _)| *i == init && c["name"] == n.as_str());
            c["state"] = match ran {
                Some((_, _, exit)) => {
                    let reason = if exit.code == 0 { "Completed" } else { "Error" };
                    json!({"terminated": {"exitCode": exit.code, "reason": reason,
                        "message": exit.output, "startedAt": started, "finishedAt": Timestamp::now()}})
                }
                None => json!({"waiting": {"reason": "PodInitializing"}}),
            };
        }
    }
    patch_status(pods_api, &name, status).await?;
    shared.log(format!(
        "{} job pod {name} {phase} (exit {}): {}",
        component_of(pod),
        exit.code,
        exit.output.trim()
    ));
    Ok(())
}

/// The mount paths of the pod's emptyDir volumes (as its containers mount them).
fn empty_dir_mounts(pod: &Pod) -> BTreeSet<String> {
    let Some(spec) = pod.spec.as_ref() else {
        return BTreeSet::new();
    };
    let empty: HashSet<&str> = (spec.volumes.iter().flatten())
        .filter(|v| v.empty_dir.is_some())
        .map(|v| v.name.as_str())
        .collect();
    (spec
        .init_containers
        .iter()
        .flatten()
        .chain(&spec.containers))
    .flat_map(|c| c.volume_mounts.iter().flatten())
    .filter(|m| empty.contains(m.name.as_str()))
    .map(|m| m.mount_path.clone())
    .collect()
}

/// The values of the Secret keys the pod's containers take their environment from, read as a
/// kubelet reads them; a Secret that does not exist has none.
async fn referenced_secret_keys(
    shared: &Shared,
    pod: &Pod,
) -> Result<BTreeMap<(String, String), String>, String> {
    let Some(spec) = pod.spec.as_ref() else {
        return Ok(BTreeMap::new());
    };
    let refs: BTreeSet<(String, String)> = (spec
        .init_containers
        .iter()
        .flatten()
        .chain(&spec.containers))
    .flat_map(|c| c.env.iter().flatten())
    .filter_map(|e| e.value_from.as_ref()?.secret_key_ref.as_ref())
    .map(|r| (r.name.clone(), r.key.clone()))
    .collect();
    let secrets: Api<Secret> = Api::namespaced(shared.client.clone(), &shared.namespace);
    let mut values = BTreeMap::new();
    for (name, key) in refs {
        let secret = (secrets.get_opt(&name).await).map_err(|e| format!("Secret {name}: {e}"))?;
        let value = secret.and_then(|s| s.data?.remove(&key));
        if let Some(value) = value {
            values.insert((name, key), String::from_utf8_lossy(&value.0).to_string());
        }
    }
    Ok(values)
}

/// The claims a pod's first container mounts: (mount path, claim name). Claims only, not an
/// API token the API server may add.
fn claim_mounts(pod: &Pod) -> Vec<(String, String)> {
    let Some(spec) = pod.spec.as_ref() else {
        return Vec::new();
    };
    (spec.containers.first().iter())
        .flat_map(|c| c.volume_mounts.iter().flatten())
        .filter_map(|mount| {
            let claim = (spec.volumes.iter().flatten())
                .find(|v| v.name == mount.name)?
                .persistent_volume_claim
                .as_ref()?;
            Some((mount.mount_path.clone(), claim.claim_name.clone()))
        })
        .collect()
}

/// The files of the ConfigMap volume a topology Job's container mounts (the cluster map and
/// its servers hash), read from the API server at each try, as a kubelet sets up a new pod's
/// volumes; empty when it mounts none.
async fn mounted_map_files(shared: &Shared, pod: &Pod) -> Result<BTreeMap<String, String>, String> {
    let Some(spec) = pod.spec.as_ref() else {
        return Ok(BTreeMap::new());
    };
    let mounted: HashSet<&str> = (spec.containers.first().iter())
        .flat_map(|c| c.volume_mounts.iter().flatten())
        .map(|m| m.name.as_str())
        .collect();
    let source = (spec.volumes.iter().flatten())
        .filter(|v| mounted.contains(v.name.as_str()))
        .find_map(|v| v.config_map.as_ref());
    let Some(source) = source else {
        return Ok(BTreeMap::new());
    };
    let maps: Api<ConfigMap> = Api::namespaced(shared.client.clone(), &shared.namespace);
    let name = &source.name;
    let data = (maps.get(name).await)
        .map_err(|e| format!("ConfigMap {name}: {e}"))?
        .data
        .unwrap_or_default();
    // Only the listed keys, at their paths (a missing one fails the mount, as a kubelet's).
    let mut files = BTreeMap::new();
    for item in source.items.iter().flatten() {
        let value = (data.get(&item.key))
            .ok_or_else(|| format!("ConfigMap {name} has no key {}", item.key))?;
        files.insert(item.path.clone(), value.clone());
    }
    Ok(files)
}

/// What a topology Job's tool does, done to the cluster's Curve model: the cluster map of
/// its mounted `topology.json` applied as `create_physicalpool` / `create_logicalpool` would
/// (the physical pool only when the mounted `servers-hash` is the one its script expects, as
/// the script checks); the online check passes once the model has as many ONLINE ChunkServers
/// as its script expects. False while the step cannot pass yet (the pod keeps running; a tool
/// error is logged and retried, as the Job's back-off would).
fn topology_step_done(shared: &Shared, pod: &Pod, files: &BTreeMap<String, String>) -> bool {
    let Some(step) = pod.labels().get(LABEL_TOPOLOGY_STEP).cloned() else {
        return true;
    };
    let container = pod.spec.as_ref().and_then(|s| s.containers.first());
    let script = (container.and_then(|c| c.command.as_ref()))
        .map(|c| c.join(" "))
        .unwrap_or_default();
    let file = |path: &str| files.get(path).ok_or(format!("no {path} mounted"));
    let same_servers = || {
        let expected = regex::Regex::new(r#"!= ([0-9a-f]+) \]"#)
            .unwrap()
            .captures(&script)
            .map(|c| c[1].to_string());
        let mounted = file("servers-hash")?;
        (expected.as_deref() == Some(mounted.as_str()))
            .then_some(())
            .ok_or(format!(
                "the mounted map has servers hash {mounted}, the Job expects {expected:?}"
            ))
    };
    let cluster = shared.curve_cluster(&cluster_of(pod));
    let mut model = cluster.model.lock().unwrap();
    let map = || {
        let text = file("topology.json")?;
        serde_json::from_str::<ClusterMapFile>(text).map_err(|e| format!("topology.json: {e}"))
    };
    let result = match step.as_str() {
        "physical-pool" => same_servers()
            .and_then(|()| map())
            .and_then(|m| model.apply_physical_pool(&m)),
        "logical-pool" => map().and_then(|m| {
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs());
            model.apply_logical_pool(&m, now)
        }),
        "chunkservers-online" => {
            let expected: usize = regex::Regex::new(r"online \*= \*(\d+)")
                .unwrap()
                .captures(&script)
                .and_then(|c| c[1].parse().ok())
                .unwrap_or(0);
            let online = (model.chunkservers.values())
                .filter(|c| c.online == crate::curve_model::OnlineState::Online)
                .filter(|c| c.status != crate::curve_model::ChunkServerStatus::Retired)
                .count();
            if online >= expected {
                Ok(())
            } else {
                Err(format!("{online} of {expected} ChunkServers online"))
            }
        }
        _ => Ok(()),
    };
    drop(model);
    match result {
        Ok(()) => true,
        Err(why) => {
            shared.log(format!("topology step {step} of {}: {why}", pod.name_any()));
            false
        }
    }
}

/// A pod of a held component, its containers not started (as if its image were pulling):
/// Pending on its node, reported once.
async fn report_held(
    shared: &Shared,
    pods_api: &Api<Pod>,
    pod: &Pod,
    node: &FakeNode,
) -> Result<(), String> {
    if pod
        .status
        .as_ref()
        .and_then(|s| s.host_ip.as_ref())
        .is_some()
    {
        return Ok(());
    }
    let state = PodState {
        phase: "Pending",
        ready: false,
        restarts: 0,
        dead: false,
        init_failed: None,
        last_exit: None,
    };
    let status = pod_status(pod, &node.ip, &state, Timestamp::now());
    let name = pod.name_any();
    patch_status(pods_api, &name, status).await?;
    shared.log(format!("{name} on {} is held (Pending)", node.name));
    Ok(())
}

async fn patch_status(pods_api: &Api<Pod>, name: &str, status: Value) -> Result<(), String> {
    pods_api
        .patch_status(name, &PatchParams::default(), &Patch::Merge(status))
        .await
        .map(|_| ())
        .map_err(|e| e.to_string())
}

/// Starts the pod's containers: its daemon (after its init containers, for an MDS).
async fn start_containers(
    shared: &Shared,
    pod: &Pod,
    uid: &str,
    node: &FakeNode,
) -> Result<(), String> {
    let (daemon, dir) = start_daemon(shared, pod, &node.ip).await?;
    shared.containers.lock().unwrap().insert(
        uid.to_string(),
        Container {
            pod: pod.name_any(),
            daemon,
            restarts: 0,
            started_at: Timestamp::now(),
            died_at: None,
            reported: None,
            probes: ProbeState::default(),
            _dir: dir,
        },
    );
    Ok(())
}

/// Starts what runs for a pod, by its component: a real etcd member, an MDS stand-in, or
/// nothing. Returns the daemon and the directory it keeps its data in.
async fn start_daemon(
    shared: &Shared,
    pod: &Pod,
    ip: &str,
) -> Result<(Daemon, Option<Arc<TempDir>>), String> {
    let component = component_of(pod);
    let crash = shared
        .control
        .lock()
        .unwrap()
        .crashing
        .get(&component)
        .cloned();
    if let Some(exit) = crash {
        shared.log(format!(
            "{}: the container exited {}",
            pod.name_any(),
            exit.code
        ));
        return Ok((Daemon::Exits(exit), None));
    }
    match component.as_str() {
        "etcd" => start_etcd(shared, pod, ip).await,
        "mds" => Ok((Daemon::Mds(Some(start_mds(shared, pod, ip).await?)), None)),
        "chunkserver" => start_chunkserver(shared, pod, ip).await,
        _ => Ok((Daemon::Plain, None)),
    }
}

fn cluster_of(pod: &Pod) -> String {
    pod.labels()
        .get(LABEL_INSTANCE)
        .cloned()
        .unwrap_or_default()
}

/// The ChunkServer port of the pod: its `-chunkServerPort=` argument (the operator's
/// `chunkserver_args`; `global.port` of its chunkserver.conf comes from the same value),
/// found among the words of the container's arguments (the image's entrypoint takes the
/// daemon's flags as one `--args=…` string).
fn chunkserver_port(pod: &Pod) -> Option<u16> {
    let container = pod.spec.as_ref()?.containers.first()?;
    (container.args.iter().flatten())
        .chain(container.command.iter().flatten())
        .flat_map(|a| a.split_whitespace())
        .map(|word| word.strip_prefix("--args=").unwrap_or(word))
        .find_map(|word| word.strip_prefix("-chunkServerPort=")?.parse().ok())
}

/// A ChunkServer stand-in on the cluster's model, its disk the pod's claim (a new claim is
/// an empty disk: no `chunkserver.dat`, no copysets), started once the start wrapper's
/// identity rule lets it (else the container exits 1 with the wrapper's message), behind the
/// wrapper's empty-disk gate unless it is switched off. A refusal or a fatal registration ends
/// the container by itself: exit code and message in `lastState.terminated`, restarted after
/// the back-off.
async fn start_chunkserver(
    shared: &Shared,
    pod: &Pod,
    ip: &str,
) -> Result<(Daemon, Option<Arc<TempDir>>), String> {
    let name = pod.name_any();
    let port = chunkserver_port(pod).ok_or(format!("{name} has no -chunkServerPort argument"))?;
    let dir = volume_dir(shared, pod).await?;
    let node = pod.spec.as_ref().and_then(|s| s.node_name.clone());
    if let Err(message) = check_identity(dir.path(), &node.unwrap_or_default(), ip) {
        shared.log(format!("{name}: the start wrapper refused: {message}"));
        let exit = Exit {
            code: 1,
            output: message,
        };
        return Ok((Daemon::Exits(exit), Some(dir)));
    }
    let disk = dir.path().display().to_string();
    let cluster = shared.curve_cluster(&cluster_of(pod));
    let gate = !shared.control.lock().unwrap().empty_disk_gate_off;
    let standin = ChunkServerStandIn::start(cluster, disk, ip.to_string(), port, gate);
    shared.log(format!(
        "started the ChunkServer stand-in of {name} on {ip}:{port}"
    ));
    Ok((Daemon::ChunkServer(standin), Some(dir)))
}

/// A real etcd member with the `etcd.conf` the pod's init containers leave on the emulated
/// image (the membership ConfigMap's initial cluster and state filled in), its data on the
/// directory of the pod's claim. An init container that refuses (the data check) leaves the pod
/// Pending with its message, as a kubelet would.
async fn start_etcd(
    shared: &Shared,
    pod: &Pod,
    ip: &str,
) -> Result<(Daemon, Option<Arc<TempDir>>), String> {
    let name = pod.name_any();
    let dir = volume_dir(shared, pod).await?;
    let volumes = BTreeMap::from([(
        "data".to_string(),
        VolumeBacking::Dir(dir.path().to_path_buf()),
    )]);
    let run = run_init(shared, pod, ip, volumes).await?;
    if let Some(failed) = run.failed_init_container() {
        let container = failed.name.clone();
        let message = run.stderr(&container).trim().to_string();
        shared.log(format!(
            "{name}: init container {container} failed: {message}"
        ));
        return Ok((Daemon::InitFailed { container, message }, Some(dir)));
    }
    if !run.init_succeeded() {
        return Err(format!("the etcd pod's init containers failed:\n{run}"));
    }
    let merged = run
        .read("etcd", "/curvebs/etcd/conf/etcd.conf")
        .map_err(|e| e.to_string())?;
    let conf = render_etcd_conf(&merged, &name, ip, dir.path());
    let member = EtcdMember::start(&name, &conf, dir.path());
    shared.log(format!("started etcd for {name} on {}", member.client_url));
    Ok((Daemon::Etcd(member), Some(dir)))
}

/// The directory of the pod's data claim (a fresh one for a pod without a claim).
async fn volume_dir(shared: &Shared, pod: &Pod) -> Result<Arc<TempDir>, String> {
    let tag = format!("{}-{}", shared.namespace, pod.name_any());
    let claim = pod
        .spec
        .iter()
        .flat_map(|s| s.volumes.iter().flatten())
        .find_map(|v| v.persistent_volume_claim.as_ref())
        .map(|c| c.claim_name.clone());
    let Some(claim) = claim else {
        return Ok(Arc::new(TempDir::new(&tag)));
    };
    claim_dir(shared, &claim, &pod.name_any()).await
}

/// The directory that is the volume of `claim`, by the claim's uid.
async fn claim_dir(shared: &Shared, claim: &str, user: &str) -> Result<Arc<TempDir>, String> {
    let tag = format!("{}-{user}", shared.namespace);
    let claim = claim.to_string();
    let uid = match cached_claim(shared, &claim) {
        Some(cached) => cached.metadata.uid.clone(),
        None => {
            let claims: Api<PersistentVolumeClaim> =
                Api::namespaced(shared.client.clone(), &shared.namespace);
            let read = claims.get(&claim).await;
            read.map_err(|e| format!("claim {claim}: {e}"))?
                .metadata
                .uid
        }
    };
    let uid = uid.unwrap_or_default();
    let mut volumes = shared.volumes.lock().unwrap();
    Ok(volumes
        .entry(uid)
        .or_insert_with(|| Arc::new(TempDir::new(&tag)))
        .clone())
}

/// The MDS stand-in, with what the mds.conf a real MDS reads says: the pod's config init
/// container run on the image's own files (image emulation), not the ConfigMap's overrides
/// alone.
async fn start_mds(shared: &Shared, pod: &Pod, ip: &str) -> Result<MdsStandIn, String> {
    let conf = parse_curve_conf(&merged_mds_conf(shared, pod, ip).await?);
    let (address, endpoints) = mds_settings(&conf)?;
    shared.log(format!(
        "started the MDS stand-in of {} as {address} (etcd {})",
        pod.name_any(),
        endpoints.join(",")
    ));
    let dummy_port = conf
        .get("mds.dummy.listen.port")
        .and_then(|p| p.parse().ok());
    let curve = shared.curve_cluster(&cluster_of(pod));
    Ok(MdsStandIn::start(
        endpoints,
        address,
        dummy_port,
        Some(curve),
    ))
}

/// What the stand-in needs from a merged mds.conf: `mds.listen.addr` and the endpoints of
/// `mds.etcd.endpoint`. A conf without the cluster's root password is refused, as the MDS
/// would fail to authenticate with it.
fn mds_settings(conf: &BTreeMap<String, String>) -> Result<(String, Vec<String>), String> {
    if conf
        .get("mds.auth.rootPassword")
        .is_none_or(|p| p.is_empty() || p == "root_password")
    {
        return Err("the merged mds.conf lacks the cluster's root password".into());
    }
    let address = conf
        .get("mds.listen.addr")
        .ok_or("mds.conf has no mds.listen.addr")?
        .clone();
    let endpoints: Vec<String> = conf
        .get("mds.etcd.endpoint")
        .ok_or("mds.conf has no mds.etcd.endpoint")?
        .split(',')
        .filter(|e| !e.is_empty())
        .map(str::to_string)
        .collect();
    Ok((address, endpoints))
}

/// Runs the MDS pod's init containers on the emulated Curve image (its ConfigMaps and the
/// root Secret read from the API server) and returns `/curvebs/mds/conf/mds.conf` as the MDS
/// container sees it.
async fn merged_mds_conf(shared: &Shared, pod: &Pod, ip: &str) -> Result<String, String> {
    let run = run_init(shared, pod, ip, BTreeMap::new()).await?;
    if !run.init_succeeded() {
        return Err(format!("the MDS pod's init containers failed:\n{run}"));
    }
    run.read("mds", "/curvebs/mds/conf/mds.conf")
        .map_err(|e| e.to_string())
}

/// Runs the pod's init containers on the emulated image, `volumes` backing its claims.
async fn run_init(
    shared: &Shared,
    pod: &Pod,
    ip: &str,
    mut volumes: BTreeMap<String, VolumeBacking>,
) -> Result<PodRun, String> {
    let mut spec = pod.spec.clone().ok_or("the pod has no spec")?;
    without_service_account_token(&mut spec);
    // A hostPath volume is the node's directory, shared by the node's pods and kept across
    // their restarts.
    let node = spec.node_name.clone().unwrap_or_default();
    for volume in spec.volumes.iter().flatten() {
        if let Some(host) = &volume.host_path {
            let dir =
                (shared.node_disks.path().join(&node)).join(host.path.trim_start_matches('/'));
            volumes
                .entry(volume.name.clone())
                .or_insert(VolumeBacking::Dir(dir));
        }
    }
    let facts = pod_facts(shared, pod, &spec, ip).await?;
    tokio::task::spawn_blocking(move || run_init_containers(&spec, &facts, &volumes))
        .await
        .map_err(|e| e.to_string())?
}

/// The API server adds the ServiceAccount token volume (`kube-api-access-*`) and its mounts;
/// Curve's containers never read it, and the emulation has nothing to put there.
fn without_service_account_token(spec: &mut PodSpec) {
    let token = |name: &str| name.starts_with("kube-api-access-");
    spec.volumes
        .get_or_insert_with(Vec::new)
        .retain(|v| !token(&v.name));
    for container in spec
        .init_containers
        .iter_mut()
        .flatten()
        .chain(spec.containers.iter_mut())
    {
        container
            .volume_mounts
            .get_or_insert_with(Vec::new)
            .retain(|m| !token(&m.name));
    }
}

/// What the emulated kubelet needs to know of the pod: name, addresses, and the ConfigMaps it
/// mounts and the Secrets its init containers read, from the API server.
async fn pod_facts(
    shared: &Shared,
    pod: &Pod,
    spec: &PodSpec,
    ip: &str,
) -> Result<PodFacts, String> {
    let maps: Api<ConfigMap> = Api::namespaced(shared.client.clone(), &shared.namespace);
    let secrets: Api<Secret> = Api::namespaced(shared.client.clone(), &shared.namespace);
    let mut facts = PodFacts {
        name: pod.name_any(),
        namespace: shared.namespace.clone(),
        node_name: spec.node_name.clone().unwrap_or_default(),
        pod_ip: ip.to_string(),
        host_ip: ip.to_string(),
        ..PodFacts::default()
    };
    let mounted =
        (spec.volumes.iter().flatten()).filter_map(|v| Some(v.config_map.as_ref()?.name.clone()));
    let referenced = (spec.init_containers.iter().flatten())
        .flat_map(|c| c.env.iter().flatten())
        .filter_map(|e| {
            Some(
                e.value_from
                    .as_ref()?
                    .config_map_key_ref
                    .as_ref()?
                    .name
                    .clone(),
            )
        });
    for name in mounted.chain(referenced) {
        if facts.config_maps.contains_key(&name) {
            continue;
        }
        let map = maps
            .get(&name)
            .await
            .map_err(|e| format!("ConfigMap {name}: {e}"))?;
        facts.config_maps.insert(name, map.data.unwrap_or_default());
    }
    for name in init_secret_refs(spec) {
        if let Some(secret) = secrets
            .get_opt(&name)
            .await
            .map_err(|e| format!("Secret {name}: {e}"))?
        {
            let data = secret.data.unwrap_or_default().into_iter();
            let data = data
                .map(|(k, v)| (k, String::from_utf8_lossy(&v.0).into_owned()))
                .collect();
            facts.secrets.insert(name, data);
        }
    }
    Ok(facts)
}

/// The Secrets the init containers' environment refers to (`secretKeyRef`), in order.
fn init_secret_refs(spec: &PodSpec) -> Vec<String> {
    spec.init_containers
        .iter()
        .flatten()
        .flat_map(|c| c.env.iter().flatten())
        .filter_map(|e| Some(e.value_from.as_ref()?.secret_key_ref.as_ref()?.name.clone()))
        .collect()
}

/// Runs the pod's init containers on the emulated image (blocking).
fn run_init_containers(
    spec: &PodSpec,
    facts: &PodFacts,
    volumes: &BTreeMap<String, VolumeBacking>,
) -> Result<PodRun, String> {
    let image = ImageFiles::locate(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .parent()
            .expect("the workspace"),
    )
    .map_err(|e| e.to_string())?;
    EmulatedKubelet::new(image)
        .run_pod(spec, facts, volumes)
        .map_err(|e| e.to_string())
}

/// Whether the pod's daemon runs; when it does not, since when (noted the first time it is
/// seen dead).
fn check_liveness(shared: &Shared, uid: &str) -> (bool, Option<Instant>) {
    let mut containers = shared.containers.lock().unwrap();
    let c = containers.get_mut(uid).unwrap();
    let alive = c.alive();
    if !alive && c.died_at.is_none() {
        c.died_at = Some(Instant::now());
    }
    (alive, c.died_at)
}

/// restartPolicy Always: a dead container is restarted once it was down for
/// [`RESTART_DELAY`], unless its component is held or the test asked it to stay down.
fn restart_due(
    alive: bool,
    died_at: Option<Instant>,
    now: Instant,
    held: bool,
    no_restart: bool,
) -> bool {
    let down_long_enough = died_at.is_some_and(|t| now.duration_since(t) >= RESTART_DELAY);
    !alive && down_long_enough && !held && !no_restart
}

async fn restart(shared: &Arc<Shared>, pod: &Pod, uid: &str, ip: &str) -> Result<(), String> {
    let name = pod.name_any();
    let is_etcd = {
        let mut containers = shared.containers.lock().unwrap();
        let c = containers.get_mut(uid).unwrap();
        match &mut c.daemon {
            Daemon::Etcd(member) => {
                member.restart();
                c.restarts += 1;
                c.died_at = None;
                c.started_at = Timestamp::now();
                true
            }
            _ => false,
        }
    };
    if !is_etcd {
        let (daemon, _) = start_daemon(shared, pod, ip).await?;
        let mut containers = shared.containers.lock().unwrap();
        let c = containers.get_mut(uid).unwrap();
        c.daemon = daemon;
        c.probes = ProbeState::default();
        c.restarts += 1;
        c.died_at = None;
        c.started_at = Timestamp::now();
    }
    shared.log(format!("restarted the container of {name}"));
    Ok(())
}

/// A readiness probe as the pod spec defines it for the real daemon.
#[derive(Debug, PartialEq)]
enum Probe {
    /// GET `/health` of the etcd member at this client URL.
    EtcdHealth(String),
    /// Known without asking.
    Known(bool),
    /// The pod's own startup and readiness probes, run as rendered.
    PodProbes,
}

fn probe_of(daemon: &Daemon, alive: bool) -> Probe {
    match daemon {
        _ if !alive => Probe::Known(false),
        Daemon::Etcd(m) => Probe::EtcdHealth(m.client_url.clone()),
        // Ready while its election key exists.
        Daemon::Mds(s) => Probe::Known(s.as_ref().is_some_and(MdsStandIn::is_campaigning)),
        Daemon::ChunkServer(_) => Probe::PodProbes,
        Daemon::Plain => Probe::Known(true),
        Daemon::InitFailed { .. } | Daemon::Exits(_) => Probe::Known(false),
    }
}

/// The container's readiness: an etcd member is ready while it answers `/health` (so only
/// with a quorum), an MDS while it campaigns, a ChunkServer as its pod's probes say, anything
/// else while it is alive.
async fn probe_readiness(shared: &Shared, pod: &Pod, uid: &str, alive: bool, ip: &str) -> bool {
    let (probe, state) = {
        let containers = shared.containers.lock().unwrap();
        let container = &containers[uid];
        (probe_of(&container.daemon, alive), container.probes.clone())
    };
    match probe {
        Probe::Known(ready) => ready,
        Probe::EtcdHealth(url) => {
            matches!(crate::util::http_get(&url, "/health", Duration::from_secs(1)).await,
            Ok((200, body)) if body.contains("\"health\":\"true\""))
        }
        Probe::PodProbes => {
            let period = shared.control.lock().unwrap().ready_probe_period;
            let period = period.unwrap_or(PROBE_PERIOD);
            let (next, failed) = crate::probes::probe(&state, pod, ip, period).await;
            let name = pod.name_any();
            if next.started && !state.started {
                shared.log(format!("{name}: startup probe succeeded"));
            }
            if next.ready != state.ready {
                let why = failed.map(|f| format!(" ({f})")).unwrap_or_default();
                shared.log(format!(
                    "{name}: readiness probe: ready={}{why}",
                    next.ready
                ));
            }
            let ready = next.ready;
            if let Some(c) = shared.containers.lock().unwrap().get_mut(uid) {
                c.probes = next;
            }
            ready
        }
    }
}

/// What a pod's status says of it; written again only when it changes.
#[derive(Clone, Debug, PartialEq)]
struct PodState {
    phase: &'static str,
    ready: bool,
    restarts: i32,
    /// The container exited and waits for its restart.
    dead: bool,
    /// An init container that exited non-zero, and its message.
    init_failed: Option<(String, String)>,
    /// How the main container's last run ended, when the harness knows it.
    last_exit: Option<Exit>,
}

/// Writes the pod's status when phase, readiness, restarts or liveness changed.
async fn report(
    shared: &Arc<Shared>,
    pods_api: &Api<Pod>,
    pod: &Pod,
    uid: &str,
    ip: &str,
    ready: bool,
) -> Result<(), String> {
    let name = pod.name_any();
    let (next, started_at, current) = {
        let containers = shared.containers.lock().unwrap();
        let Some(c) = containers.get(uid) else {
            drop(containers);
            shared.log(format!("{name}: no container to report (uid {uid})"));
            return Ok(());
        };
        let init_failed = match &c.daemon {
            Daemon::InitFailed { container, message } => Some((container.clone(), message.clone())),
            _ => None,
        };
        let last_exit = match &c.daemon {
            Daemon::Exits(exit) => Some(exit.clone()),
            Daemon::ChunkServer(standin) => standin.exit().map(|e| Exit {
                code: e.code,
                output: e.message,
            }),
            _ => None,
        };
        let next = PodState {
            phase: if init_failed.is_some() {
                "Pending"
            } else {
                "Running"
            },
            ready,
            restarts: c.restarts,
            dead: c.died_at.is_some() && init_failed.is_none(),
            init_failed,
            last_exit,
        };
        (next, c.started_at, c.reported.clone())
    };
    if current.as_ref() == Some(&next) && !ready_overwritten(pod, &next) {
        return Ok(());
    }
    patch_status(pods_api, &name, pod_status(pod, ip, &next, started_at)).await?;
    shared.log(format!(
        "{name}: {} ready={} restarts={}{}",
        next.phase,
        next.ready,
        next.restarts,
        if next.dead { " (container exited)" } else { "" }
    ));
    if let Some(c) = shared.containers.lock().unwrap().get_mut(uid) {
        c.reported = Some(next);
    }
    Ok(())
}

/// Whether the pod's `Ready` condition says other than the kubelet reported: the node
/// lifecycle controller sets it False on the pods of a node whose heartbeat is late
/// (`MarkPodsNotReady`), and a kubelet's status manager writes its own again once it differs.
fn ready_overwritten(pod: &Pod, reported: &PodState) -> bool {
    let ready = reported.ready && reported.phase == "Running";
    let conditions = pod.status.as_ref().and_then(|s| s.conditions.as_ref());
    let shown = (conditions.into_iter().flatten()).find(|c| c.type_ == "Ready");
    shown.is_some_and(|c| (c.status == "True") != ready)
}

/// The status a kubelet writes for a host-network pod on a node with address `ip`.
fn pod_status(pod: &Pod, ip: &str, state: &PodState, started_at: Timestamp) -> Value {
    let now = Timestamp::now();
    let running = state.phase == "Running";
    let initialized = state.phase != "Pending";
    let ready = state.ready && running;
    let spec = pod.spec.clone().unwrap_or_default();
    let start_time = pod
        .status
        .as_ref()
        .and_then(|s| s.start_time.clone())
        .map(|t| t.0)
        .unwrap_or(now);
    let failed_at = (state.init_failed.as_ref()).and_then(|(name, _)| {
        (spec.init_containers.iter().flatten()).position(|c| c.name == *name)
    });
    let init_statuses: Vec<Value> = (spec.init_containers.iter().flatten().enumerate())
        .map(|(i, c)| match (failed_at, &state.init_failed) {
            (Some(at), Some((_, message))) if i == at => {
                failed_init_container_status(c, message, state.restarts, started_at)
            }
            (Some(at), _) => init_container_status(c, i < at, started_at),
            _ => init_container_status(c, initialized, started_at),
        })
        .collect();
    let container_statuses: Vec<Value> = spec
        .containers
        .iter()
        .map(|c| container_status(c, pod, state, started_at, now))
        .collect();
    json!({"status": {
        "phase": state.phase,
        "hostIP": ip,
        "hostIPs": [{"ip": ip}],
        "podIP": ip,
        "podIPs": [{"ip": ip}],
        "startTime": start_time,
        "conditions": pod_conditions(pod, initialized, ready, now),
        "initContainerStatuses": init_statuses,
        "containerStatuses": container_statuses,
    }})
}

/// PodScheduled, Initialized, ContainersReady and Ready; a condition keeps its
/// lastTransitionTime while its status stays the same.
fn pod_conditions(pod: &Pod, initialized: bool, ready: bool, now: Timestamp) -> Vec<Value> {
    let previous: BTreeMap<String, (String, Option<Time>)> = pod
        .status
        .as_ref()
        .and_then(|s| s.conditions.clone())
        .unwrap_or_default()
        .into_iter()
        .map(|c| (c.type_, (c.status, c.last_transition_time)))
        .collect();
    let condition = |type_: &str, ok: bool| {
        let status = if ok { "True" } else { "False" };
        let since = match previous.get(type_) {
            Some((s, Some(t))) if s == status => t.0,
            _ => now,
        };
        json!({"type": type_, "status": status, "lastTransitionTime": since, "lastProbeTime": null})
    };
    vec![
        condition("PodScheduled", true),
        condition("Initialized", initialized),
        condition("ContainersReady", ready),
        condition("Ready", ready),
    ]
}

/// An init container: Completed once the pod is past Pending, else waiting.
fn init_container_status(
    c: &k8s_openapi::api::core::v1::Container,
    initialized: bool,
    started_at: Timestamp,
) -> Value {
    let state = if initialized {
        json!({"terminated": {"exitCode": 0, "reason": "Completed", "startedAt": started_at, "finishedAt": started_at}})
    } else {
        json!({"waiting": {"reason": "PodInitializing"}})
    };
    json!({"name": c.name, "image": c.image, "imageID": "", "ready": initialized, "restartCount": 0, "state": state})
}

/// An init container that exited 1 and waits for its next try, its message kept.
fn failed_init_container_status(
    c: &k8s_openapi::api::core::v1::Container,
    message: &str,
    restarts: i32,
    started_at: Timestamp,
) -> Value {
    json!({"name": c.name, "image": c.image, "imageID": "", "ready": false, "restartCount": restarts,
           "state": {"waiting": {"reason": "CrashLoopBackOff", "message": "back-off restarting the init container"}},
           "lastState": {"terminated": {"exitCode": 1, "reason": "Error", "message": message,
                                        "startedAt": started_at, "finishedAt": started_at}}})
}

/// A container: terminated (Job pods), creating (Pending), in back-off (exited), or running.
/// In back-off it waits `CrashLoopBackOff` with the kubelet's message
/// (pkg/kubelet/kuberuntime/kuberuntime_manager.go `doBackOff`) and, when the harness knows
/// how the last run ended, that run in `lastState.terminated`.
fn container_status(
    c: &k8s_openapi::api::core::v1::Container,
    pod: &Pod,
    state: &PodState,
    started_at: Timestamp,
    now: Timestamp,
) -> Value {
    let pod_uid = pod.metadata.uid.clone().unwrap_or_default();
    let running = state.phase == "Running";
    let container_state = if state.phase == "Succeeded" {
        json!({"terminated": {"exitCode": 0, "reason": "Completed", "startedAt": started_at, "finishedAt": now}})
    } else if !running {
        json!({"waiting": {"reason": "ContainerCreating"}})
    } else if state.dead {
        json!({"waiting": {"reason": "CrashLoopBackOff", "message": back_off_message(c, pod)}})
    } else {
        json!({"running": {"startedAt": started_at}})
    };
    let mut status = json!({"name": c.name, "image": c.image, "imageID": "", "containerID": format!("e2e://{pod_uid}-{}", c.name),
           "ready": state.ready && running && !state.dead, "restartCount": state.restarts,
           "started": running && !state.dead, "state": container_state});
    if let Some(exit) = state.last_exit.as_ref().filter(|_| state.dead) {
        status["lastState"] = json!({"terminated": {
            "exitCode": exit.code, "reason": "Error", "message": termination_message(c, exit),
            "startedAt": started_at, "finishedAt": started_at,
            "containerID": format!("e2e://{pod_uid}-{}", c.name)}});
    }
    status
}

/// `back-off <delay> restarting failed container=<name> pod=<pod>_<namespace>(<uid>)`, with the
/// harness's own restart delay.
fn back_off_message(c: &k8s_openapi::api::core::v1::Container, pod: &Pod) -> String {
    format!(
        "back-off {}s restarting failed container={} pod={}_{}({})",
        RESTART_DELAY.as_secs(),
        c.name,
        pod.metadata.name.as_deref().unwrap_or_default(),
        pod.metadata.namespace.as_deref().unwrap_or_default(),
        pod.metadata.uid.as_deref().unwrap_or_default()
    )
}

/// A failed run's termination message: nothing is written to /dev/termination-log here, so
/// it is the end of the container's output when its policy is `FallbackToLogsOnError`, else
/// empty (pkg/kubelet/kuberuntime/kuberuntime_container.go `getTerminationMessage`).
fn termination_message(c: &k8s_openapi::api::core::v1::Container, exit: &Exit) -> String {
    if c.termination_message_policy.as_deref() == Some("FallbackToLogsOnError") && exit.code != 0 {
        exit.output.clone()
    } else {
        String::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod(value: Value) -> Pod {
        serde_json::from_value(value).unwrap()
    }

    fn nodes() -> Vec<FakeNode> {
        vec![FakeNode::new(1), FakeNode::new(2)]
    }

    #[test]
    fn every_node_gets_its_own_loopback_address() {
        let ips: Vec<String> = (1..=MAX_NODES).map(|i| FakeNode::new(i).ip).collect();
        assert_eq!(ips[0], "127.0.0.101");
        assert_eq!(ips[149], "127.0.0.250");
        assert_eq!(ips[150], "127.0.1.1");
        assert_eq!(ips[399], "127.0.1.250");
        assert_eq!(ips[400], "127.0.2.1");
        let distinct: HashSet<&String> = ips.iter().collect();
        assert_eq!(distinct.len(), MAX_NODES);
        for ip in &ips {
            let octets: Vec<u8> = ip.split('.').map(|o| o.parse().unwrap()).collect();
            assert!(
                octets[0] == 127 && octets[3] != 0 && octets[3] != 255,
                "{ip}"
            );
        }
    }

    #[test]
    fn a_pass_terminates_schedules_runs_or_leaves_each_pod() {
        let unbound =
            pod(json!({"metadata": {"name": "a", "uid": "a"}, "spec": {"containers": []}}));
        assert_eq!(
            work_for(&unbound, &nodes(), &HashSet::new()),
            PodWork::Schedule
        );
        let bound = pod(
            json!({"metadata": {"name": "b"}, "spec": {"nodeName": "node-2", "containers": []}}),
        );
        assert_eq!(
            work_for(&bound, &nodes(), &HashSet::new()),
            PodWork::Run(FakeNode::new(2))
        );
        let foreign = pod(
            json!({"metadata": {"name": "c"}, "spec": {"nodeName": "node-9", "containers": []}}),
        );
        assert_eq!(
            work_for(&foreign, &nodes(), &HashSet::new()),
            PodWork::Elsewhere
        );
        // Being deleted wins over everything else, bound or not.
        for p in [unbound, bound, foreign] {
            let mut deleting = p.clone();
            deleting.metadata.deletion_timestamp = Some(Time(Timestamp::now()));
            assert_eq!(
                work_for(&deleting, &nodes(), &HashSet::new()),
                PodWork::Terminate
            );
        }
    }

    #[test]
    fn nothing_happens_to_pods_of_a_node_whose_kubelet_is_gone() {
        let lost = HashSet::from(["node-2".to_string()]);
        let mut p = pod(
            json!({"metadata": {"name": "b"}, "spec": {"nodeName": "node-2", "containers": []}}),
        );
        assert_eq!(work_for(&p, &nodes(), &lost), PodWork::Elsewhere);
        p.metadata.deletion_timestamp = Some(Time(Timestamp::now()));
        assert_eq!(
            work_for(&p, &nodes(), &lost),
            PodWork::Elsewhere,
            "stays Terminating"
        );
    }

    #[test]
    fn a_failed_pull_shows_err_image_pull_then_back_off_until_the_next_try() {
        let at = |s: f64| pull_reason(Duration::from_secs_f64(s));
        let seen: Vec<&str> = [0.0, 1.9, 2.0, 9.9, 10.0, 11.0, 12.0, 29.0, 30.5, 33.0]
            .iter()
            .map(|s| at(*s))
            .collect();
        assert_eq!(
            seen,
            [
                "ErrImagePull",
                "ErrImagePull",
                "ImagePullBackOff",
                "ImagePullBackOff",
                "ErrImagePull",
                "ErrImagePull",
                "ImagePullBackOff",
                "ImagePullBackOff",
                "ErrImagePull",
                "ImagePullBackOff"
            ]
        );
        assert_eq!(
            pull_message("ErrImagePull", "opencurvedocker/curvebs:v0"),
            "rpc error: code = NotFound desc = failed to pull and unpack image \"docker.io/opencurvedocker/curvebs:v0\": \
             failed to resolve reference \"docker.io/opencurvedocker/curvebs:v0\": docker.io/opencurvedocker/curvebs:v0: not found"
        );
        assert!(
            pull_message("ImagePullBackOff", "registry.example.com/curvebs:v0").starts_with(
                "Back-off pulling image \"registry.example.com/curvebs:v0\": ErrImagePull: \
                 rpc error: code = NotFound desc = failed to pull and unpack image \"registry.example.com/curvebs:v0\""
            )
        );
        let pod = mds_pod();
        let held = HashSet::from(["curvebs".to_string()]);
        assert_eq!(
            unpullable_image(&pod, &held),
            Some(("config".to_string(), "curvebs".to_string())),
            "init containers are pulled first"
        );
        assert_eq!(unpullable_image(&pod, &HashSet::new()), None);
    }

    #[test]
    fn the_chunkserver_port_is_read_from_the_entrypoints_args_string() {
        // As the operator renders it: the image's entrypoint takes the daemon's flags as one
        // `--args=…` string (src/desired/chunkserver.rs).
        let rendered = pod(json!({
            "metadata": {"name": "demo-chunkserver-0-0", "namespace": "ns", "uid": "u"},
            "spec": {"containers": [{"name": "chunkserver", "image": "curvebs",
                "args": ["--role=chunkserver",
                    "--args=-conf=/curvebs/chunkserver/conf/chunkserver.conf -chunkServerIp=$(POD_IP) -chunkServerPort=8201 -chunkServerStoreUri=local:///curvebs/chunkserver/data"]}]},
        }));
        assert_eq!(chunkserver_port(&rendered), Some(8201));
        let first = pod(json!({
            "metadata": {"name": "x", "namespace": "ns", "uid": "u"},
            "spec": {"containers": [{"name": "c", "image": "i", "args": ["--args=-chunkServerPort=8200"]}]},
        }));
        assert_eq!(chunkserver_port(&first), Some(8200));
    }

    #[test]
    fn a_crash_loop_keeps_the_last_run_and_its_logs_only_when_asked_to() {
        let mut pod = pod(json!({
            "metadata": {"name": "demo-chunkserver-0-0", "namespace": "ns", "uid": "u3"},
            "spec": {"containers": [{"name": "chunkserver", "image": "curvebs",
                                     "terminationMessagePolicy": "FallbackToLogsOnError"}]}
        }));
        let state = PodState {
            phase: "Running",
            ready: false,
            restarts: 4,
            dead: true,
            init_failed: None,
            last_exit: Some(Exit {
                code: 1,
                output: "disk not found".into(),
            }),
        };
        let c =
            pod_status(&pod, "127.0.0.1", &state, Timestamp::now())["status"]["containerStatuses"]
                [0]
            .clone();
        assert_eq!(c["state"]["waiting"]["reason"], "CrashLoopBackOff");
        assert_eq!(
            c["state"]["waiting"]["message"],
            "back-off 2s restarting failed container=chunkserver pod=demo-chunkserver-0-0_ns(u3)"
        );
        let last = &c["lastState"]["terminated"];
        assert_eq!(
            (&last["exitCode"], &last["reason"], &last["message"]),
            (&json!(1), &json!("Error"), &json!("disk not found"))
        );
        assert_eq!(c["restartCount"], 4);
        // Without FallbackToLogsOnError the kubelet keeps no output.
        pod.spec.as_mut().unwrap().containers[0].termination_message_policy = None;
        let c =
            pod_status(&pod, "127.0.0.1", &state, Timestamp::now())["status"]["containerStatuses"]
                [0]
            .clone();
        assert_eq!(c["lastState"]["terminated"]["message"], "");
    }

    #[test]
    fn containers_of_unlisted_pods_are_gone() {
        let pods = [
            pod(json!({"metadata": {"name": "a", "uid": "u1"}})),
            pod(json!({"metadata": {"name": "b"}})),
        ];
        let containers = ["u1".to_string(), "u2".to_string()];
        assert_eq!(gone_pod_uids(containers.iter(), &pods), ["u2"]);
        assert!(gone_pod_uids(containers[..1].iter(), &pods).is_empty());
    }

    #[test]
    fn a_dead_container_is_restarted_after_the_delay_unless_held_or_kept_down() {
        let now = Instant::now();
        let died = |ago: Duration| Some(now - ago);
        let long_ago = died(RESTART_DELAY);
        assert!(restart_due(false, long_ago, now, false, false));
        assert!(!restart_due(
            false,
            died(RESTART_DELAY / 2),
            now,
            false,
            false
        ));
        assert!(!restart_due(false, None, now, false, false));
        assert!(!restart_due(true, long_ago, now, false, false));
        assert!(!restart_due(false, long_ago, now, true, false));
        assert!(!restart_due(false, long_ago, now, false, true));
    }

    #[test]
    fn pods_behind_a_headless_service_get_a_dns_name() {
        let p = pod(json!({"metadata": {"name": "demo-etcd-0"},
            "spec": {"hostname": "demo-etcd-0", "subdomain": "demo-etcd", "containers": []}}));
        assert_eq!(
            pod_fqdn(&p, "ns").as_deref(),
            Some("demo-etcd-0.demo-etcd.ns.svc")
        );
        let p =
            pod(json!({"metadata": {"name": "x"}, "spec": {"hostname": "x", "containers": []}}));
        assert_eq!(pod_fqdn(&p, "ns"), None);
    }

    #[test]
    fn the_mds_stand_in_takes_address_and_endpoints_from_the_merged_conf() {
        let conf = |pairs: &[(&str, &str)]| -> BTreeMap<String, String> {
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect()
        };
        let full = [
            ("mds.auth.rootPassword", "s3cret"),
            ("mds.listen.addr", "127.0.0.101:6700"),
            ("mds.etcd.endpoint", "127.0.0.101:2379,127.0.0.102:2379,"),
        ];
        assert_eq!(
            mds_settings(&conf(&full)).unwrap(),
            (
                "127.0.0.101:6700".to_string(),
                vec![
                    "127.0.0.101:2379".to_string(),
                    "127.0.0.102:2379".to_string()
                ]
            )
        );
        // The image's default password, or none: the cluster's Secret did not reach the conf.
        for password in [None, Some(""), Some("root_password")] {
            let mut c = conf(&full[1..]);
            if let Some(p) = password {
                c.insert("mds.auth.rootPassword".into(), p.into());
            }
            assert!(mds_settings(&c).unwrap_err().contains("root password"));
        }
        assert_eq!(
            mds_settings(&conf(&[full[0], full[2]])).unwrap_err(),
            "mds.conf has no mds.listen.addr"
        );
        assert_eq!(
            mds_settings(&conf(&full[..2])).unwrap_err(),
            "mds.conf has no mds.etcd.endpoint"
        );
    }

    #[test]
    fn the_token_volume_is_left_out_and_secret_refs_are_found() {
        let mut spec: PodSpec = serde_json::from_value(json!({
            "volumes": [{"name": "conf", "configMap": {"name": "demo-mds"}}, {"name": "kube-api-access-x1y2z"}],
            "initContainers": [{"name": "config",
                "env": [{"name": "ROOT_PASSWORD", "valueFrom": {"secretKeyRef": {"name": "demo-root", "key": "password"}}},
                        {"name": "PLAIN", "value": "1"}],
                "volumeMounts": [{"name": "conf", "mountPath": "/conf"}, {"name": "kube-api-access-x1y2z", "mountPath": "/var/run/secrets"}]}],
            "containers": [{"name": "mds",
                "volumeMounts": [{"name": "kube-api-access-x1y2z", "mountPath": "/var/run/secrets"}]}],
        }))
        .unwrap();
        assert_eq!(init_secret_refs(&spec), ["demo-root"]);
        without_service_account_token(&mut spec);
        let volumes: Vec<&str> = spec
            .volumes
            .iter()
            .flatten()
            .map(|v| v.name.as_str())
            .collect();
        assert_eq!(volumes, ["conf"]);
        let mounts = |c: &k8s_openapi::api::core::v1::Container| -> Vec<String> {
            c.volume_mounts
                .iter()
                .flatten()
                .map(|m| m.name.clone())
                .collect()
        };
        assert_eq!(mounts(&spec.init_containers.as_ref().unwrap()[0]), ["conf"]);
        assert!(mounts(&spec.containers[0]).is_empty());
    }

    #[test]
    fn probes_known_without_asking() {
        assert_eq!(probe_of(&Daemon::Plain, true), Probe::Known(true));
        assert_eq!(probe_of(&Daemon::Plain, false), Probe::Known(false));
        // An MDS stopped gracefully, before its restart, campaigns not.
        assert_eq!(probe_of(&Daemon::Mds(None), true), Probe::Known(false));
    }

    fn mds_pod() -> Pod {
        pod(json!({
            "metadata": {"name": "demo-mds-0", "uid": "u1"},
            "spec": {"initContainers": [{"name": "config", "image": "curvebs"}],
                     "containers": [{"name": "mds", "image": "curvebs"}]}
        }))
    }

    fn status(pod: &Pod, phase: &'static str, ready: bool, restarts: i32, dead: bool) -> Value {
        let state = PodState {
            phase,
            ready,
            restarts,
            dead,
            init_failed: None,
            last_exit: None,
        };
        pod_status(pod, "127.0.0.101", &state, Timestamp::UNIX_EPOCH)["status"].clone()
    }

    fn conditions(status: &Value) -> BTreeMap<String, String> {
        status["conditions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| {
                (
                    c["type"].as_str().unwrap().to_string(),
                    c["status"].as_str().unwrap().to_string(),
                )
            })
            .collect()
    }

    #[test]
    fn a_running_ready_pod_has_host_addresses_and_every_condition_true() {
        let s = status(&mds_pod(), "Running", true, 2, false);
        assert_eq!(s["phase"], "Running");
        for key in ["hostIP", "podIP"] {
            assert_eq!(s[key], "127.0.0.101");
        }
        assert_eq!(s["podIPs"], json!([{"ip": "127.0.0.101"}]));
        assert!(conditions(&s).values().all(|v| v == "True"), "{s}");
        let c = &s["containerStatuses"][0];
        assert_eq!(
            (&c["ready"], &c["started"], &c["restartCount"]),
            (&json!(true), &json!(true), &json!(2))
        );
        assert_eq!(c["containerID"], "e2e://u1-mds");
        assert!(c["state"]["running"]["startedAt"].is_string());
        let init = &s["initContainerStatuses"][0];
        assert_eq!(init["state"]["terminated"]["reason"], "Completed");
        assert_eq!(init["ready"], true);
    }

    #[test]
    fn an_exited_container_is_in_back_off_and_not_ready() {
        let s = status(&mds_pod(), "Running", true, 0, true);
        let c = &s["containerStatuses"][0];
        assert_eq!(c["state"]["waiting"]["reason"], "CrashLoopBackOff");
        assert_eq!((&c["ready"], &c["started"]), (&json!(false), &json!(false)));
        // The pod's conditions follow the probe, the container's state the exit.
        let s = status(&mds_pod(), "Running", false, 0, true);
        let conditions = conditions(&s);
        assert_eq!(conditions["Ready"], "False");
        assert_eq!(conditions["Initialized"], "True");
    }

    #[test]
    fn a_held_pod_is_pending_and_not_initialized() {
        let s = status(&mds_pod(), "Pending", false, 0, false);
        assert_eq!(s["phase"], "Pending");
        let c = conditions(&s);
        assert_eq!(
            (
                c["PodScheduled"].as_str(),
                c["Initialized"].as_str(),
                c["Ready"].as_str()
            ),
            ("True", "False", "False")
        );
        assert_eq!(
            s["containerStatuses"][0]["state"]["waiting"]["reason"],
            "ContainerCreating"
        );
        assert_eq!(
            s["initContainerStatuses"][0]["state"]["waiting"]["reason"],
            "PodInitializing"
        );
    }

    #[test]
    fn a_refused_init_container_keeps_the_pod_pending_with_its_message() {
        let pod = pod(json!({
            "metadata": {"name": "demo-etcd-2", "uid": "u2"},
            "spec": {"initContainers": [{"name": "config", "image": "curvebs"},
                                        {"name": "data-check", "image": "curvebs"}],
                     "containers": [{"name": "etcd", "image": "curvebs"}]}
        }));
        let state = PodState {
            phase: "Pending",
            ready: false,
            restarts: 2,
            dead: false,
            init_failed: Some((
                "data-check".into(),
                "no etcd data in /curvebs/etcd/data".into(),
            )),
            last_exit: None,
        };
        let s = pod_status(&pod, "127.0.0.1", &state, Timestamp::now())["status"].clone();
        assert_eq!(s["phase"], "Pending");
        assert_eq!(conditions(&s)["Initialized"], "False");
        let inits = &s["initContainerStatuses"];
        assert_eq!(inits[0]["state"]["terminated"]["exitCode"], 0, "config ran");
        assert_eq!(inits[1]["state"]["waiting"]["reason"], "CrashLoopBackOff");
        assert_eq!(
            inits[1]["lastState"]["terminated"],
            json!({"exitCode": 1, "reason": "Error", "message": "no etcd data in /curvebs/etcd/data",
                   "startedAt": inits[1]["lastState"]["terminated"]["startedAt"].clone(),
                   "finishedAt": inits[1]["lastState"]["terminated"]["finishedAt"].clone()})
        );
        // What the operator reads as a lost member.
        let mut seen = pod.clone();
        seen.status = serde_json::from_value(s).unwrap();
        assert!(
            curve_operator::reconcile::membership::lost_data(&seen.into()),
            "the operator reads it as a member that lost its data"
        );
    }

    #[test]
    fn a_ready_condition_set_by_someone_else_is_written_again() {
        let state = |ready| PodState {
            phase: "Running",
            ready,
            restarts: 0,
            dead: false,
            init_failed: None,
            last_exit: None,
        };
        let mut p = mds_pod();
        p.status = serde_json::from_value(status(&p, "Running", true, 0, false)).unwrap();
        assert!(!ready_overwritten(&p, &state(true)));
        assert!(ready_overwritten(&p, &state(false)));
        // The node lifecycle controller's MarkPodsNotReady.
        let marked = (p
            .status
            .as_mut()
            .unwrap()
            .conditions
            .as_mut()
            .unwrap()
            .iter_mut())
        .find(|c| c.type_ == "Ready")
        .unwrap();
        marked.status = "False".into();
        assert!(ready_overwritten(&p, &state(true)));
        assert!(!ready_overwritten(&p, &state(false)));
        // No status yet: nothing to compare.
        assert!(!ready_overwritten(&mds_pod(), &state(true)));
    }

    #[test]
    fn a_job_pod_succeeds_with_its_container_completed() {
        let s = status(&mds_pod(), "Succeeded", false, 0, false);
        assert_eq!(s["phase"], "Succeeded");
        let c = &s["containerStatuses"][0];
        assert_eq!(c["state"]["terminated"]["reason"], "Completed");
        assert_eq!(c["ready"], false);
        assert_eq!(conditions(&s)["Ready"], "False");
    }

    #[test]
    fn conditions_keep_their_transition_time_and_the_pod_its_start_time() {
        let mut p = mds_pod();
        p.status = Some(
            serde_json::from_value(json!({
                "startTime": "2020-01-01T00:00:00Z",
                "conditions": [
                    {"type": "Ready", "status": "True", "lastTransitionTime": "2020-01-01T00:00:01Z"},
                    {"type": "Initialized", "status": "False", "lastTransitionTime": "2020-01-01T00:00:02Z"},
                ]
            }))
            .unwrap(),
        );
        let s = status(&p, "Running", true, 0, false);
        assert_eq!(s["startTime"], "2020-01-01T00:00:00Z");
        let since = |type_: &str| {
            s["conditions"]
                .as_array()
                .unwrap()
                .iter()
                .find(|c| c["type"] == type_)
                .unwrap()["lastTransitionTime"]
                .clone()
        };
        assert_eq!(since("Ready"), "2020-01-01T00:00:01Z", "unchanged: kept");
        assert_ne!(since("Initialized"), "2020-01-01T00:00:02Z", "changed: now");
    }
}
