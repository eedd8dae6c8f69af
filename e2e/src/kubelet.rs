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
//!   - Job pods: Succeeded; other pods: Running and Ready.
//!
//!   A daemon that dies is restarted after a short back-off, as with restartPolicy Always.
//! - Pods being deleted: their daemon is stopped, then the pod is removed (grace period 0).
//! - `<pod>.<subdomain>.<namespace>.svc` resolves to the pod's address through /etc/hosts.
//!
//! Everything it starts stops when it is dropped, also when a test panics.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use curve_image_emulation::conf::parse_curve_conf;
use curve_image_emulation::{ImageFiles, Kubelet as EmulatedKubelet, PodFacts};
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{ConfigMap, Node, Pod, Secret};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, Time};
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams, Preconditions};
use kube::{Client, ResourceExt};
use serde_json::{Value, json};

use crate::cluster::SUITE_LABEL;
use crate::daemons::{EtcdMember, MdsStandIn, render_etcd_conf};
use crate::hosts::HostsEntries;
use crate::schedule::{NodeView, claims, pick_node};
use crate::util::TempDir;

const LABEL_COMPONENT: &str = "app.kubernetes.io/component";
/// How long a dead daemon stays down before its "container" is restarted.
const RESTART_DELAY: Duration = Duration::from_secs(2);
const SYNC_PERIOD: Duration = Duration::from_millis(150);
const HEARTBEAT_PERIOD: Duration = Duration::from_secs(10);

/// A fake node.
#[derive(Clone, Debug)]
pub struct FakeNode {
    pub name: String,
    pub ip: String,
}

impl FakeNode {
    pub fn new(index: usize) -> FakeNode {
        assert!(
            (1..=150).contains(&index),
            "node index {index} out of range"
        );
        FakeNode {
            name: format!("node-{index}"),
            ip: format!("127.0.0.{}", 100 + index),
        }
    }
}

enum Daemon {
    Etcd(EtcdMember),
    /// `None` once stopped gracefully, until the restart.
    Mds(Option<MdsStandIn>),
    /// Nothing runs: the pod is Running and Ready as soon as it is bound.
    Plain,
}

struct Container {
    pod: String,
    daemon: Daemon,
    restarts: i32,
    started_at: Timestamp,
    died_at: Option<Instant>,
    /// What the pod's status says now: (phase, ready, restarts, dead).
    reported: Option<(String, bool, i32, bool)>,
    /// Kept until the container goes.
    _dir: Option<TempDir>,
}

impl Container {
    fn alive(&mut self) -> bool {
        match &mut self.daemon {
            Daemon::Etcd(m) => m.is_running(),
            Daemon::Mds(s) => s.as_ref().is_some_and(|s| !s.is_dead()),
            Daemon::Plain => true,
        }
    }
}

#[derive(Default)]
struct Control {
    held: HashSet<String>,
    released: HashSet<String>,
    /// Pods whose daemon is not restarted when it dies.
    no_restart: HashSet<String>,
}

struct Shared {
    namespace: String,
    client: Client,
    nodes: Mutex<Vec<FakeNode>>,
    control: Mutex<Control>,
    /// By pod uid.
    containers: Mutex<HashMap<String, Container>>,
    hosts: HostsEntries,
    dns: Mutex<HashSet<(String, String)>>,
    unschedulable: Mutex<HashMap<String, String>>,
    /// Claim → the node its (local) volume was first used on.
    volume_nodes: Mutex<BTreeMap<String, String>>,
    log: Mutex<Vec<String>>,
    started: Instant,
}

impl Shared {
    fn log(&self, line: String) {
        let t = self.started.elapsed().as_secs_f64();
        self.log.lock().unwrap().push(format!("{t:7.2}s {line}"));
    }
}

/// The fake scheduler and kubelet of one test namespace.
pub struct Kubelet {
    shared: Arc<Shared>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Kubelet {
    /// Creates `nodes` fake nodes and starts scheduling and running the pods of `namespace`.
    pub async fn start(client: Client, namespace: &str, nodes: usize) -> Kubelet {
        let shared = Arc::new(Shared {
            namespace: namespace.to_string(),
            client: client.clone(),
            nodes: Mutex::new(Vec::new()),
            control: Mutex::default(),
            containers: Mutex::default(),
            hosts: HostsEntries::new(namespace),
            dns: Mutex::default(),
            unschedulable: Mutex::default(),
            volume_nodes: Mutex::default(),
            log: Mutex::default(),
            started: Instant::now(),
        });
        let kubelet = Kubelet {
            shared: shared.clone(),
            tasks: Vec::new(),
        };
        for i in 1..=nodes {
            kubelet.add_node(i).await;
        }
        let sync = tokio::spawn({
            let shared = shared.clone();
            async move {
                loop {
                    if let Err(e) = sync_once(&shared).await {
                        shared.log(format!("sync: {e}"));
                    }
                    tokio::time::sleep(SYNC_PERIOD).await;
                }
            }
        });
        let heartbeat = tokio::spawn({
            let shared = shared.clone();
            async move {
                loop {
                    tokio::time::sleep(HEARTBEAT_PERIOD).await;
                    let nodes = shared.nodes.lock().unwrap().clone();
                    for node in nodes {
                        if let Err(e) = heartbeat_node(&shared.client, &node).await {
                            shared.log(format!("heartbeat of {}: {e}", node.name));
                        }
                    }
                }
            }
        });
        Kubelet {
            shared,
            tasks: vec![sync, heartbeat],
        }
    }

    /// Creates fake node `node-<index>` (Ready, InternalIP 127.0.0.<100+index>).
    pub async fn add_node(&self, index: usize) -> FakeNode {
        let node = FakeNode::new(index);
        let nodes: Api<Node> = Api::all(self.shared.client.clone());
        let object: Node = serde_json::from_value(json!({
            "apiVersion": "v1",
            "kind": "Node",
            "metadata": {
                "name": node.name,
                "labels": {
                    "kubernetes.io/hostname": node.name,
                    "kubernetes.io/os": "linux",
                    "kubernetes.io/arch": "amd64",
                    SUITE_LABEL: self.shared.namespace,
                },
            },
            "spec": {},
        }))
        .unwrap();
        nodes
            .create(&PostParams::default(), &object)
            .await
            .unwrap_or_else(|e| panic!("create node {}: {e}", node.name));
        heartbeat_node(&self.shared.client, &node)
            .await
            .unwrap_or_else(|e| panic!("status of node {}: {e}", node.name));
        self.shared
            .log(format!("node {} ({}) created", node.name, node.ip));
        self.shared.nodes.lock().unwrap().push(node.clone());
        node
    }

    pub fn nodes(&self) -> Vec<FakeNode> {
        self.shared.nodes.lock().unwrap().clone()
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
        if !restart {
            self.shared
                .control
                .lock()
                .unwrap()
                .no_restart
                .insert(pod.to_string());
        }
        let mut containers = self.shared.containers.lock().unwrap();
        let container = containers
            .values_mut()
            .find(|c| c.pod == pod)
            .unwrap_or_else(|| panic!("no container for {pod}"));
        match &mut container.daemon {
            Daemon::Mds(Some(standin)) => standin.kill(),
            _ => panic!("{pod} runs no MDS"),
        }
        drop(containers);
        self.shared.log(format!("killed the MDS of {pod}"));
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

async fn heartbeat_node(client: &Client, node: &FakeNode) -> Result<(), kube::Error> {
    let now = Timestamp::now();
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

async fn sync_once(shared: &Arc<Shared>) -> Result<(), String> {
    let pods_api: Api<Pod> = Api::namespaced(shared.client.clone(), &shared.namespace);
    let mut pods = pods_api
        .list(&ListParams::default())
        .await
        .map_err(|e| format!("list pods: {e}"))?
        .items;
    let node_api: Api<Node> = Api::all(shared.client.clone());
    let own_nodes: HashSet<String> = shared
        .nodes
        .lock()
        .unwrap()
        .iter()
        .map(|n| n.name.clone())
        .collect();
    let node_views: Vec<NodeView> = node_api
        .list(&ListParams::default().labels(&format!("{SUITE_LABEL}={}", shared.namespace)))
        .await
        .map_err(|e| format!("list nodes: {e}"))?
        .items
        .iter()
        .map(NodeView::from_node)
        .filter(|n| own_nodes.contains(&n.name))
        .collect();

    // Containers of pods that are gone (deleted by someone else): stop them.
    let uids: HashSet<String> = pods.iter().filter_map(|p| p.metadata.uid.clone()).collect();
    let gone: Vec<Container> = {
        let mut containers = shared.containers.lock().unwrap();
        let stale: Vec<String> = containers
            .keys()
            .filter(|uid| !uids.contains(*uid))
            .cloned()
            .collect();
        stale
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

    for index in 0..pods.len() {
        let pod = &pods[index];
        let name = pod.name_any();
        let uid = pod.metadata.uid.clone().unwrap_or_default();
        if pod.metadata.deletion_timestamp.is_some() {
            terminate(shared, &pods_api, pod).await;
            continue;
        }
        let Some(node_name) = pod.spec.as_ref().and_then(|s| s.node_name.clone()) else {
            let volume_nodes = shared.volume_nodes.lock().unwrap().clone();
            match pick_node(pod, &node_views, &pods, &volume_nodes) {
                Ok(node) => {
                    let binding = json!({
                        "apiVersion": "v1", "kind": "Binding",
                        "metadata": {"name": name, "namespace": shared.namespace},
                        "target": {"apiVersion": "v1", "kind": "Node", "name": node},
                    });
                    match pods_api
                        .create_subresource::<_, Value>(
                            "binding",
                            &name,
                            &PostParams::default(),
                            &binding,
                        )
                        .await
                    {
                        Ok(_) => {
                            shared.unschedulable.lock().unwrap().remove(&uid);
                            shared.log(format!("bound {name} to {node}"));
                            let mut volume_nodes = shared.volume_nodes.lock().unwrap();
                            for claim in claims(&pods[index]) {
                                volume_nodes.entry(claim).or_insert_with(|| node.clone());
                            }
                            drop(volume_nodes);
                            // The next pods of this pass see it placed.
                            if let Some(spec) = pods[index].spec.as_mut() {
                                spec.node_name = Some(node);
                            }
                        }
                        Err(e) => shared.log(format!("binding {name} to {node}: {e}")),
                    }
                }
                Err(why) => {
                    let mut unschedulable = shared.unschedulable.lock().unwrap();
                    if unschedulable.get(&uid) != Some(&why) {
                        shared.log(format!("{name} stays Pending: {why}"));
                        unschedulable.insert(uid, why);
                    }
                }
            }
            continue;
        };
        let Some(node) = shared
            .nodes
            .lock()
            .unwrap()
            .iter()
            .find(|n| n.name == node_name)
            .cloned()
        else {
            continue;
        };
        if let Err(e) = sync_pod(shared, &pods_api, pod, &node).await {
            shared.log(format!("{name}: {e}"));
        }
    }
    Ok(())
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
            Daemon::Plain => {}
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

fn config_map_of(pod: &Pod) -> Option<String> {
    pod.spec
        .as_ref()?
        .volumes
        .as_ref()?
        .iter()
        .find_map(|v| v.config_map.as_ref().map(|c| c.name.clone()))
}

async fn config_file(shared: &Shared, pod: &Pod, key: &str) -> Result<String, String> {
    let name = config_map_of(pod).ok_or("the pod mounts no ConfigMap")?;
    let maps: Api<ConfigMap> = Api::namespaced(shared.client.clone(), &shared.namespace);
    let map = maps
        .get(&name)
        .await
        .map_err(|e| format!("ConfigMap {name}: {e}"))?;
    map.data
        .and_then(|d| d.get(key).cloned())
        .ok_or_else(|| format!("ConfigMap {name} has no {key}"))
}

/// Runs the MDS pod's init containers on the emulated Curve image (its ConfigMaps and the
/// root Secret read from the API server) and returns `/curvebs/mds/conf/mds.conf` as the MDS
/// container sees it.
async fn merged_mds_conf(shared: &Shared, pod: &Pod, ip: &str) -> Result<String, String> {
    let mut spec = pod.spec.clone().ok_or("the pod has no spec")?;
    // The API server adds the ServiceAccount token volume; Curve's containers never read it.
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
    for volume in spec.volumes.iter().flatten() {
        if let Some(source) = &volume.config_map {
            let map = maps
                .get(&source.name)
                .await
                .map_err(|e| format!("ConfigMap {}: {e}", source.name))?;
            facts
                .config_maps
                .insert(source.name.clone(), map.data.unwrap_or_default());
        }
    }
    let secret_refs = spec
        .init_containers
        .iter()
        .flatten()
        .flat_map(|c| c.env.iter().flatten());
    for name in secret_refs
        .filter_map(|e| Some(e.value_from.as_ref()?.secret_key_ref.as_ref()?.name.clone()))
    {
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
    tokio::task::spawn_blocking(move || {
        let image = ImageFiles::locate(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .parent()
                .expect("the workspace"),
        )
        .map_err(|e| e.to_string())?;
        let run = EmulatedKubelet::new(image)
            .run_pod(&spec, &facts, &BTreeMap::new())
            .map_err(|e| e.to_string())?;
        if !run.init_succeeded() {
            return Err(format!("the MDS pod's init containers failed:\n{run}"));
        }
        run.read("mds", "/curvebs/mds/conf/mds.conf")
            .map_err(|e| e.to_string())
    })
    .await
    .map_err(|e| e.to_string())?
}

async fn start_daemon(
    shared: &Shared,
    pod: &Pod,
    ip: &str,
) -> Result<(Daemon, Option<TempDir>), String> {
    let name = pod.name_any();
    match component_of(pod).as_str() {
        "etcd" => {
            let template = config_file(shared, pod, "etcd.conf").await?;
            let dir = TempDir::new(&format!("{}-{name}", shared.namespace));
            let conf = render_etcd_conf(&template, &name, ip, dir.path());
            let member = EtcdMember::start(&name, &conf, dir.path());
            shared.log(format!("started etcd for {name} on {}", member.client_url));
            Ok((Daemon::Etcd(member), Some(dir)))
        }
        "mds" => {
            // The mds.conf a real MDS reads: the pod's config init container run on the
            // image's own files (image emulation), not the ConfigMap's overrides alone.
            let conf = parse_curve_conf(&merged_mds_conf(shared, pod, ip).await?);
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
            shared.log(format!(
                "started the MDS stand-in of {name} as {address} (etcd {})",
                endpoints.join(",")
            ));
            Ok((
                Daemon::Mds(Some(MdsStandIn::start(endpoints, address))),
                None,
            ))
        }
        _ => Ok((Daemon::Plain, None)),
    }
}

async fn sync_pod(
    shared: &Arc<Shared>,
    pods_api: &Api<Pod>,
    pod: &Pod,
    node: &FakeNode,
) -> Result<(), String> {
    let name = pod.name_any();
    let uid = pod.metadata.uid.clone().unwrap_or_default();
    let spec = pod.spec.clone().unwrap_or_default();
    // Cluster DNS of the pod behind its headless Service.
    if let (Some(hostname), Some(subdomain)) = (&spec.hostname, &spec.subdomain) {
        let fqdn = format!("{hostname}.{subdomain}.{}.svc", shared.namespace);
        if shared
            .dns
            .lock()
            .unwrap()
            .insert((fqdn.clone(), node.ip.clone()))
        {
            shared.hosts.set(&node.ip, &fqdn);
        }
    }
    if is_job_pod(pod) {
        if pod.status.as_ref().and_then(|s| s.phase.as_deref()) != Some("Succeeded") {
            let status = pod_status(
                pod,
                &node.ip,
                "Succeeded",
                false,
                0,
                false,
                Timestamp::now(),
            );
            pods_api
                .patch_status(&name, &PatchParams::default(), &Patch::Merge(status))
                .await
                .map_err(|e| e.to_string())?;
            shared.log(format!("job pod {name} Succeeded"));
        }
        return Ok(());
    }
    let component = component_of(pod);
    let held = {
        let control = shared.control.lock().unwrap();
        control.held.contains(&component) && !control.released.contains(&name)
    };
    let exists = shared.containers.lock().unwrap().contains_key(&uid);
    if !exists {
        if held {
            if pod
                .status
                .as_ref()
                .and_then(|s| s.host_ip.as_ref())
                .is_none()
            {
                let status =
                    pod_status(pod, &node.ip, "Pending", false, 0, false, Timestamp::now());
                pods_api
                    .patch_status(&name, &PatchParams::default(), &Patch::Merge(status))
                    .await
                    .map_err(|e| e.to_string())?;
                shared.log(format!("{name} on {} is held (Pending)", node.name));
            }
            return Ok(());
        }
        let (daemon, dir) = start_daemon(shared, pod, &node.ip).await?;
        shared.containers.lock().unwrap().insert(
            uid.clone(),
            Container {
                pod: name.clone(),
                daemon,
                restarts: 0,
                started_at: Timestamp::now(),
                died_at: None,
                reported: None,
                _dir: dir,
            },
        );
    }

    // Liveness, restarts and readiness.
    let (alive, died_long_ago) = {
        let mut containers = shared.containers.lock().unwrap();
        let c = containers.get_mut(&uid).unwrap();
        let alive = c.alive();
        if !alive && c.died_at.is_none() {
            c.died_at = Some(Instant::now());
        }
        (
            alive,
            c.died_at.is_some_and(|t| t.elapsed() >= RESTART_DELAY),
        )
    };
    let no_restart = shared.control.lock().unwrap().no_restart.contains(&name);
    if !alive && died_long_ago && !held && !no_restart {
        restart(shared, pod, &uid, &node.ip).await?;
    }
    // Readiness probes, as the pod spec defines them for the real daemons.
    enum Probe {
        Etcd(String),
        Ready(bool),
    }
    let probe = {
        let containers = shared.containers.lock().unwrap();
        match &containers.get(&uid).unwrap().daemon {
            _ if !alive => Probe::Ready(false),
            Daemon::Etcd(m) => Probe::Etcd(m.client_url.clone()),
            Daemon::Mds(s) => Probe::Ready(s.as_ref().is_some_and(MdsStandIn::is_campaigning)),
            Daemon::Plain => Probe::Ready(true),
        }
    };
    let ready = match probe {
        Probe::Ready(ready) => ready,
        Probe::Etcd(url) => {
            matches!(crate::util::http_get(&url, "/health", Duration::from_secs(1)).await,
            Ok((200, body)) if body.contains("\"health\":\"true\""))
        }
    };
    report(shared, pods_api, pod, &uid, &node.ip, ready).await
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
        c.restarts += 1;
        c.died_at = None;
        c.started_at = Timestamp::now();
    }
    shared.log(format!("restarted the container of {name}"));
    Ok(())
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
    let (next, started_at) = {
        let mut containers = shared.containers.lock().unwrap();
        let c = containers.get_mut(uid).unwrap();
        let dead = c.died_at.is_some();
        (
            (String::from("Running"), ready, c.restarts, dead),
            c.started_at,
        )
    };
    let current = shared
        .containers
        .lock()
        .unwrap()
        .get(uid)
        .and_then(|c| c.reported.clone());
    if current.as_ref() == Some(&next) {
        return Ok(());
    }
    let status = pod_status(pod, ip, &next.0, next.1, next.2, next.3, started_at);
    pods_api
        .patch_status(&name, &PatchParams::default(), &Patch::Merge(status))
        .await
        .map_err(|e| e.to_string())?;
    shared.log(format!(
        "{name}: {} ready={} restarts={}{}",
        next.0,
        next.1,
        next.2,
        if next.3 { " (container exited)" } else { "" }
    ));
    if let Some(c) = shared.containers.lock().unwrap().get_mut(uid) {
        c.reported = Some(next);
    }
    Ok(())
}

/// The status a kubelet writes for a host-network pod on a node with address `ip`.
fn pod_status(
    pod: &Pod,
    ip: &str,
    phase: &str,
    ready: bool,
    restarts: i32,
    dead: bool,
    started_at: Timestamp,
) -> Value {
    let now = Timestamp::now();
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
    let running = phase == "Running";
    let initialized = phase != "Pending";
    let spec = pod.spec.clone().unwrap_or_default();
    let container_status = |c: &k8s_openapi::api::core::v1::Container| {
        let state = if phase == "Succeeded" {
            json!({"terminated": {"exitCode": 0, "reason": "Completed", "startedAt": started_at, "finishedAt": now}})
        } else if !running {
            json!({"waiting": {"reason": "ContainerCreating"}})
        } else if dead {
            json!({"waiting": {"reason": "CrashLoopBackOff", "message": "back-off restarting the container"}})
        } else {
            json!({"running": {"startedAt": started_at}})
        };
        json!({"name": c.name, "image": c.image, "imageID": "", "containerID": format!("e2e://{}-{}", pod.metadata.uid.clone().unwrap_or_default(), c.name),
               "ready": ready && running && !dead, "restartCount": restarts, "started": running && !dead, "state": state})
    };
    let init_status = |c: &k8s_openapi::api::core::v1::Container| {
        let state = if initialized {
            json!({"terminated": {"exitCode": 0, "reason": "Completed", "startedAt": started_at, "finishedAt": started_at}})
        } else {
            json!({"waiting": {"reason": "PodInitializing"}})
        };
        json!({"name": c.name, "image": c.image, "imageID": "", "ready": initialized, "restartCount": 0, "state": state})
    };
    let start_time = pod
        .status
        .as_ref()
        .and_then(|s| s.start_time.clone())
        .map(|t| t.0)
        .unwrap_or(now);
    json!({"status": {
        "phase": phase,
        "hostIP": ip,
        "hostIPs": [{"ip": ip}],
        "podIP": ip,
        "podIPs": [{"ip": ip}],
        "startTime": start_time,
        "conditions": [
            condition("PodScheduled", true),
            condition("Initialized", initialized),
            condition("ContainersReady", ready && running),
            condition("Ready", ready && running),
        ],
        "initContainerStatuses": spec.init_containers.iter().flatten().map(init_status).collect::<Vec<_>>(),
        "containerStatuses": spec.containers.iter().map(container_status).collect::<Vec<_>>(),
    }})
}
