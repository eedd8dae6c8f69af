//! End-to-end scenarios against the API server in KUBECONFIG; see e2e/README.md.
//!
//!   KUBECONFIG=/path/to/kubeconfig cargo test -p curve-operator-e2e -- --ignored --test-threads=1
//!
//! Each scenario works in a namespace of its own and removes it. Scenario names start with a
//! letter so they run in a stable order.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use curve_operator::api::{CurveCluster, HealthVerdict};
use curve_operator_e2e::cluster::{self, CRD_NAME, kubectl};
use curve_operator_e2e::curve_model::CurveSettings;
use curve_operator_e2e::daemons::MDS_ELECTION;
use curve_operator_e2e::dashboards::{Checker, Substitution};
use curve_operator_e2e::env::{TestEnv, condition, expect_condition, parse_table};
use curve_operator_e2e::manifests::curve_cluster;
use curve_operator_e2e::metrics::{KUBE_REQUESTS, Labels, Metrics, label};
use curve_operator_e2e::util::{eventually, say};
use etcd_client::{GetOptions, SortOrder, SortTarget};
use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{ConfigMap, PersistentVolumeClaim, Pod, Service};
use k8s_openapi::api::events::v1::Event;
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, DynamicObject, ListParams, Patch, PatchParams, PostParams};
use kube::core::ApiResource;
use kube::{Resource, ResourceExt};
use serde_json::{Value, json};

const BRING_UP: Duration = Duration::from_secs(90);
const INSTANCE: &str = "app.kubernetes.io/instance";

/// Every object (kind, name) the operator owns or labels for cluster `instance`, plus every
/// StatefulSet, ConfigMap, Service, budget and Job that names the cluster in an owner
/// reference: a duplicate under another name, or an object without labels, shows up here.
async fn objects_of(env: &TestEnv, instance: &str) -> BTreeSet<(String, String)> {
    let mut found = BTreeSet::new();
    found.extend(belonging::<StatefulSet>(env, instance).await);
    found.extend(belonging::<ConfigMap>(env, instance).await);
    found.extend(belonging::<Service>(env, instance).await);
    found.extend(belonging::<PodDisruptionBudget>(env, instance).await);
    found.extend(
        belonging::<Job>(env, instance)
            .await
            .into_iter()
            .map(|(kind, name)| (kind, without_map_hash(&name))),
    );
    found
}

/// (kind, name) of every object of kind `K` that carries the cluster's instance label or an
/// owner reference to it.
async fn belonging<K>(env: &TestEnv, instance: &str) -> Vec<(String, String)>
where
    K: Resource<DynamicType = ()> + Clone + std::fmt::Debug + serde::de::DeserializeOwned,
    K: Resource<Scope = k8s_openapi::NamespaceResourceScope>,
{
    env.api::<K>()
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
        .iter()
        .filter(|o| {
            o.meta()
                .labels
                .as_ref()
                .and_then(|l| l.get(INSTANCE))
                .map(String::as_str)
                == Some(instance)
                || o.meta()
                    .owner_references
                    .iter()
                    .flatten()
                    .any(|r| r.kind == "CurveCluster" && r.name == instance)
        })
        .map(|o| (K::kind(&()).to_string(), o.name_any()))
        .collect()
}

/// (name, number of owner references, whether all point to the cluster `uid` as controller)
/// of every object of kind `K` labelled with the cluster's instance.
async fn ownership<K>(env: &TestEnv, instance: &str, uid: &str) -> Vec<(String, usize, bool)>
where
    K: Resource<DynamicType = ()> + Clone + std::fmt::Debug + serde::de::DeserializeOwned,
    K: Resource<Scope = k8s_openapi::NamespaceResourceScope>,
{
    let lp = ListParams::default().labels(&format!("{INSTANCE}={instance}"));
    env.api::<K>()
        .list(&lp)
        .await
        .unwrap()
        .items
        .iter()
        .map(|o| {
            let references = o.owner_references();
            let to_cluster = references
                .iter()
                .all(|r| r.uid == uid && r.controller == Some(true));
            (o.name_any(), references.len(), to_cluster)
        })
        .collect()
}

/// A topology Job's name without the `-<8 hex>` hash of the map it was made for.
fn without_map_hash(name: &str) -> String {
    match name.rsplit_once('-') {
        Some((stem, hash)) if hash.len() == 8 && hash.chars().all(|c| c.is_ascii_hexdigit()) => {
            stem.to_string()
        }
        _ => name.to_string(),
    }
}

/// The objects of the minimal cluster `c` once complete: 14, plus the 3 bootstrap Jobs.
fn expected_objects(c: &str, tiers: &[&str]) -> BTreeSet<(String, String)> {
    let mut expected = BTreeSet::new();
    for tier in tiers {
        let name = match *tier {
            "chunkserver" => format!("{c}-chunkserver"),
            other => format!("{c}-{other}"),
        };
        if *tier == "topology" {
            // The map, and the Jobs of Curve's bootstrap (names without their map hash).
            expected.insert(("ConfigMap".to_string(), name));
            for step in ["physical-pool", "chunkservers-online", "logical-pool"] {
                expected.insert(("Job".to_string(), format!("{c}-{step}")));
            }
            continue;
        }
        expected.insert(("ConfigMap".to_string(), name.clone()));
        if *tier == "etcd" {
            // The members' startup config (initial cluster, state, the member joining).
            expected.insert(("ConfigMap".to_string(), format!("{name}-members")));
        }
        expected.insert(("Service".to_string(), name.clone()));
        expected.insert(("PodDisruptionBudget".to_string(), name.clone()));
        let set = if *tier == "chunkserver" {
            format!("{name}-0")
        } else {
            name
        };
        expected.insert(("StatefulSet".to_string(), set));
    }
    expected
}

/// `t` cut to whole seconds, the precision of Kubernetes timestamps.
fn whole_seconds(t: Timestamp) -> Timestamp {
    Timestamp::from_second(t.as_second()).unwrap()
}

const ALL_TIERS: [&str; 4] = ["etcd", "mds", "chunkserver", "topology"];

/// The daemon pods of a cluster (etcd, MDS, ChunkServers), not the pods of its topology Jobs.
async fn pods_of(env: &TestEnv, instance: &str) -> Vec<Pod> {
    let lp = ListParams::default().labels(&format!(
        "{INSTANCE}={instance},app.kubernetes.io/component!=topology"
    ));
    let mut pods = env.api::<Pod>().list(&lp).await.unwrap().items;
    pods.sort_by_key(|p| p.name_any());
    pods
}

/// The topology Jobs of a cluster that succeeded, by step label.
async fn succeeded_topology_steps(env: &TestEnv, instance: &str) -> BTreeSet<String> {
    let lp = ListParams::default().labels(&format!(
        "{INSTANCE}={instance},app.kubernetes.io/component=topology"
    ));
    env.api::<Job>()
        .list(&lp)
        .await
        .unwrap()
        .items
        .iter()
        .filter(|j| j.status.as_ref().and_then(|s| s.succeeded).unwrap_or(0) > 0)
        .filter_map(|j| j.labels().get("curve.opencurve.io/topology-step").cloned())
        .collect()
}

fn pod_ip(pod: &Pod) -> Option<String> {
    pod.status.as_ref()?.pod_ip.clone()
}

fn host_ip(pod: &Pod) -> Option<String> {
    pod.status.as_ref()?.host_ip.clone()
}

fn node_of(pod: &Pod) -> Option<String> {
    pod.spec.as_ref()?.node_name.clone()
}

fn is_ready(pod: &Pod) -> bool {
    pod.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

fn names(pods: &[Pod]) -> Vec<String> {
    pods.iter().map(ResourceExt::name_any).collect()
}

fn expected_pods(c: &str, etcd: usize, mds: usize, cs: usize) -> Vec<String> {
    let mut v: Vec<String> = (0..cs).map(|i| format!("{c}-chunkserver-0-{i}")).collect();
    v.extend((0..etcd).map(|i| format!("{c}-etcd-{i}")));
    v.extend((0..mds).map(|i| format!("{c}-mds-{i}")));
    v.sort();
    v
}

/// The MDS election as etcd holds it: (key, create revision, value), lowest revision first.
async fn election(endpoints: &[String]) -> Vec<(String, i64, String)> {
    let mut client = etcd_client::Client::connect(endpoints, None)
        .await
        .expect("connect to the cluster's etcd");
    let options = GetOptions::new()
        .with_prefix()
        .with_sort(SortTarget::Create, SortOrder::Ascend);
    let response = client
        .get(format!("{MDS_ELECTION}/"), Some(options))
        .await
        .expect("read the election");
    response
        .kvs()
        .iter()
        .map(|kv| {
            (
                kv.key_str().unwrap().to_string(),
                kv.create_revision(),
                kv.value_str().unwrap().to_string(),
            )
        })
        .collect()
}

/// The pod whose address is `address` (`ip:port` with the MDS port).
fn pod_with_address(pods: &[Pod], address: &str, port: i32) -> String {
    let holders: Vec<String> = pods
        .iter()
        .filter(|p| {
            p.labels()
                .get("app.kubernetes.io/component")
                .map(String::as_str)
                == Some("mds")
        })
        .filter(|p| pod_ip(p).is_some_and(|ip| format!("{ip}:{port}") == address))
        .map(ResourceExt::name_any)
        .collect();
    assert_eq!(
        holders.len(),
        1,
        "MDS pods with address {address}: {holders:?}"
    );
    holders[0].clone()
}

async fn events(env: &TestEnv, reason: &str) -> Vec<Event> {
    env.api::<Event>()
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .filter(|e| e.reason.as_deref() == Some(reason))
        .collect()
}

async fn wait_event(env: &TestEnv, reason: &str, regarding: &str, note_contains: &str) -> Event {
    eventually(
        &format!("a {reason} event containing {note_contains:?}"),
        Duration::from_secs(20),
        || async {
            let all = events(env, reason).await;
            all.iter()
                .find(|e| {
                    e.regarding.as_ref().and_then(|r| r.name.as_deref()) == Some(regarding)
                        && e.note
                            .as_deref()
                            .unwrap_or_default()
                            .contains(note_contains)
                })
                .cloned()
                .ok_or_else(|| {
                    format!(
                        "{reason} events: {:?}",
                        all.iter().map(|e| e.note.clone()).collect::<Vec<_>>()
                    )
                })
        },
    )
    .await
}

/// Polls the status every 20 ms until `primary` is the MDS primary; returns when it was seen.
async fn wait_primary(env: &TestEnv, name: &str, primary: &str, limit: Duration) -> Instant {
    let deadline = Instant::now() + limit;
    loop {
        let cluster = env.clusters().get(name).await.unwrap();
        let now = Instant::now();
        let seen = cluster
            .status
            .as_ref()
            .and_then(|s| s.mds.as_ref())
            .and_then(|m| m.primary.clone());
        if seen.as_deref() == Some(primary) {
            return now;
        }
        assert!(
            now < deadline,
            "status.mds.primary is {seen:?}, not {primary}, after {limit:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn assert_kubectl_row(env: &TestEnv, name: &str, expected: &[(&str, &str)]) {
    let row = env.kubectl_get_cluster(name);
    for (column, value) in expected {
        assert_eq!(
            row.get(*column).map(String::as_str),
            Some(*value),
            "kubectl get curvecluster {name}: column {column} in {row:?}"
        );
    }
}

/// Asserts the complete, ready minimal cluster `c` with `etcd`/`mds`/`cs` pods.
async fn assert_complete(env: &TestEnv, c: &str, etcd: usize, mds: usize, cs: usize) -> Vec<Pod> {
    let pods = eventually("every pod Ready", Duration::from_secs(30), || async {
        let pods = pods_of(env, c).await;
        let not_ready: Vec<String> = pods
            .iter()
            .filter(|p| !is_ready(p))
            .map(ResourceExt::name_any)
            .collect();
        if names(&pods) == expected_pods(c, etcd, mds, cs) && not_ready.is_empty() {
            Ok(pods)
        } else {
            Err(format!("pods {:?}, not ready {not_ready:?}", names(&pods)))
        }
    })
    .await;
    // Host networking: pod IP = host IP = the node's address; members of one component on
    // distinct nodes.
    let nodes: BTreeMap<String, String> = env
        .kubelet
        .nodes()
        .into_iter()
        .map(|n| (n.name, n.ip))
        .collect();
    for pod in &pods {
        let node = node_of(pod).expect("bound");
        assert_eq!(
            host_ip(pod).as_ref(),
            Some(&nodes[&node]),
            "{}: hostIP",
            pod.name_any()
        );
        assert_eq!(pod_ip(pod), host_ip(pod), "{}: podIP", pod.name_any());
    }
    // Curve's bootstrap ran in Jobs: physical pool, every ChunkServer online, logical pool.
    let steps = eventually(
        "the topology Jobs to succeed",
        Duration::from_secs(30),
        || async {
            let steps = succeeded_topology_steps(env, c).await;
            // After a scale-up the online check of the first map is gone; the pools stay done.
            if steps.contains("physical-pool") && steps.contains("logical-pool") {
                Ok(steps)
            } else {
                Err(format!("succeeded: {steps:?}"))
            }
        },
    )
    .await;
    assert!(steps.is_subset(&BTreeSet::from(
        ["physical-pool", "chunkservers-online", "logical-pool"].map(String::from)
    )));
    for component in ["etcd", "mds", "chunkserver"] {
        let on: Vec<String> = pods
            .iter()
            .filter(|p| {
                p.labels()
                    .get("app.kubernetes.io/component")
                    .map(String::as_str)
                    == Some(component)
            })
            .filter_map(node_of)
            .collect();
        let distinct: BTreeSet<&String> = on.iter().collect();
        assert_eq!(
            distinct.len(),
            on.len(),
            "{component} pods share a node: {on:?}"
        );
    }
    pods
}

/// Every version of the cluster map ConfigMap `<c>-topology`, as its server names, seen
/// through a watch from before the cluster exists.
struct MapHistory {
    versions: std::sync::Arc<std::sync::Mutex<Vec<BTreeSet<String>>>>,
    task: tokio::task::JoinHandle<()>,
}

impl MapHistory {
    fn watch(env: &TestEnv, c: &str) -> MapHistory {
        use futures::StreamExt;
        use kube::runtime::watcher::{self, Event as WatchEvent};
        let api = env.api::<ConfigMap>();
        let config = watcher::Config::default().fields(&format!("metadata.name={c}-topology"));
        let versions = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let seen = versions.clone();
        let task = tokio::spawn(async move {
            let mut stream = watcher::watcher(api, config).boxed();
            while let Some(event) = stream.next().await {
                let (Ok(WatchEvent::Apply(map)) | Ok(WatchEvent::InitApply(map))) = event else {
                    continue;
                };
                let json = map
                    .data
                    .and_then(|d| d.get("topology.json").cloned())
                    .unwrap_or_default();
                let parsed: Value = serde_json::from_str(&json).unwrap_or(Value::Null);
                let servers: BTreeSet<String> = parsed["servers"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|s| s["name"].as_str().map(str::to_string))
                    .collect();
                let mut versions = seen.lock().unwrap();
                if versions.last() != Some(&servers) {
                    versions.push(servers);
                }
            }
        });
        MapHistory { versions, task }
    }

    /// curve-facts.md: `create_physicalpool` deletes from Curve every server missing from the
    /// map, so once listed a server must stay in every later version.
    fn assert_no_server_dropped(&self) {
        let versions = self.versions.lock().unwrap().clone();
        for pair in versions.windows(2) {
            let dropped: Vec<&String> = pair[0].difference(&pair[1]).collect();
            assert!(
                dropped.is_empty(),
                "the cluster map dropped {dropped:?}; its versions: {versions:?}"
            );
        }
    }
}

impl Drop for MapHistory {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// What changes when someone writes an object of cluster `c`: the generation of StatefulSets
/// and budgets (their status moves on its own), the resourceVersion of ConfigMaps and Services.
async fn object_versions(env: &TestEnv, c: &str) -> BTreeMap<String, String> {
    let lp = ListParams::default().labels(&format!("{INSTANCE}={c}"));
    let mut versions: BTreeMap<String, String> = BTreeMap::new();
    for o in env.api::<StatefulSet>().list(&lp).await.unwrap().items {
        versions.insert(
            format!("StatefulSet/{}", o.name_any()),
            format!("generation {:?}", o.metadata.generation),
        );
    }
    for o in env
        .api::<PodDisruptionBudget>()
        .list(&lp)
        .await
        .unwrap()
        .items
    {
        versions.insert(
            format!("PodDisruptionBudget/{}", o.name_any()),
            format!("generation {:?}", o.metadata.generation),
        );
    }
    for o in env.api::<ConfigMap>().list(&lp).await.unwrap().items {
        versions.insert(
            format!("ConfigMap/{}", o.name_any()),
            o.resource_version().unwrap_or_default(),
        );
    }
    for o in env.api::<Service>().list(&lp).await.unwrap().items {
        versions.insert(
            format!("Service/{}", o.name_any()),
            o.resource_version().unwrap_or_default(),
        );
    }
    versions
}

/// The operator's "applying" log lines so far (one per object it writes or deletes).
fn applies(operator: &curve_operator_e2e::operator::Operator) -> Vec<String> {
    operator
        .log_text()
        .lines()
        .filter(|l| l.contains("applying"))
        .map(str::to_string)
        .collect()
}

// ---------------------------------------------------------------------------------------

/// a. `kubectl apply -f crds/` → the CRD is Established; `kubectl explain` prints the docs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs a Kubernetes API server (KUBECONFIG), see e2e/README.md"]
async fn a_crd_is_established_and_explained() {
    let client = cluster::connect().await;
    cluster::preflight(&client).await;
    let out = cluster::install_crd(&client).await;
    assert!(
        out.contains(
            "customresourcedefinition.apiextensions.k8s.io/curveclusters.curve.opencurve.io"
        ),
        "{out}"
    );

    // Through the API.
    let crd = Api::<CustomResourceDefinition>::all(client.clone())
        .get(CRD_NAME)
        .await
        .unwrap();
    let conditions = crd
        .status
        .as_ref()
        .and_then(|s| s.conditions.clone())
        .unwrap_or_default();
    for type_ in ["Established", "NamesAccepted"] {
        assert!(
            conditions
                .iter()
                .any(|c| c.type_ == type_ && c.status == "True"),
            "{type_} in {conditions:?}"
        );
    }
    assert_eq!(
        crd.spec.names.short_names.as_deref(),
        Some(&["curve".to_string()][..])
    );
    let version = &crd.spec.versions[0];
    assert!(version.name == "v1alpha1" && version.served && version.storage);
    assert!(
        version
            .subresources
            .as_ref()
            .and_then(|s| s.status.as_ref())
            .is_some(),
        "status subresource"
    );

    // Through kubectl.
    let established = kubectl(
        &[
            "get",
            "crd",
            CRD_NAME,
            "-o",
            "jsonpath={.status.conditions[?(@.type==\"Established\")].status}",
        ],
        None,
    )
    .ok("get crd");
    assert_eq!(established, "True");
    let resources =
        kubectl(&["api-resources", "--api-group=curve.opencurve.io"], None).ok("api-resources");
    let row = &parse_table(&resources)[0];
    assert_eq!(
        (
            row["NAME"].as_str(),
            row["SHORTNAMES"].as_str(),
            row["KIND"].as_str()
        ),
        ("curveclusters", "curve", "CurveCluster")
    );
    // The API server publishes a new CRD's OpenAPI schema shortly after it is established.
    let explain = |field: &'static str, texts: Vec<String>| async move {
        eventually(
            &format!("kubectl explain {field} to document {texts:?}"),
            Duration::from_secs(30),
            || {
                let texts = texts.clone();
                async move {
                    let out = kubectl(&["explain", field], None);
                    let missing: Vec<&String> = texts
                        .iter()
                        .filter(|t| !out.stdout.contains(t.as_str()))
                        .collect();
                    if out.success && missing.is_empty() {
                        Ok(())
                    } else {
                        Err(format!(
                            "missing {missing:?} in:\n{}{}",
                            out.stdout, out.stderr
                        ))
                    }
                }
            },
        )
        .await
    };
    let texts = [
        "KIND:       CurveCluster",
        "FIELD: etcd",
        "clientPort",
        "peerPort",
        "replicas",
        "storage",
        "1, 3, 5 or 7",
        "Fixed at creation",
        "resources",
    ];
    explain(
        "curvecluster.spec.etcd",
        texts.iter().map(|t| t.to_string()).collect(),
    )
    .await;
    let fields = [
        "image",
        "etcd",
        "mds",
        "chunkservers",
        "placement",
        "logicalPool",
        "paused",
        "cleanup",
        "hostNetwork",
    ];
    explain(
        "curvecluster.spec",
        fields.iter().map(|f| format!("  {f}\t")).collect(),
    )
    .await;
    explain(
        "curvecluster.status.mds.primary",
        vec!["07leader".to_string()],
    )
    .await;
}

/// b. The API server rejects invalid CurveClusters with a message naming the field.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs a Kubernetes API server (KUBECONFIG), see e2e/README.md"]
async fn b_invalid_clusters_are_rejected_by_the_api_server() {
    let env = TestEnv::new("cel", 0).await;
    let resource = ApiResource::erase::<CurveCluster>(&());
    let api: Api<DynamicObject> =
        Api::namespaced_with(env.client.clone(), &env.namespace, &resource);
    let long_name = "a".repeat(31);
    // (what is wrong, the object, texts the error must contain: the field and the rule)
    let cases: Vec<(&str, Value, Vec<&str>)> = vec![
        (
            "etcd of 4",
            curve_cluster("even", json!({"etcd": {"replicas": 4}})),
            vec!["spec.etcd.replicas", "must be 1, 3, 5 or 7"],
        ),
        (
            "mds.port == dummyPort",
            curve_cluster("ports", json!({"mds": {"port": 7700}})),
            vec!["spec.mds.port and spec.mds.dummyPort must differ"],
        ),
        (
            "fewer ChunkServers than copies",
            curve_cluster("small", json!({"chunkservers": {"replicas": 2}})),
            vec!["spec.chunkservers.replicas must be at least spec.logicalPool.replicas"],
        ),
        (
            "storage size lots",
            curve_cluster(
                "lots",
                json!({"chunkservers": {"storage": {"size": "lots"}}}),
            ),
            vec![
                "spec.chunkservers.storage.size",
                "storage.size must be a positive quantity",
            ],
        ),
        (
            "no image",
            curve_cluster("noimage", json!({"image": null})),
            vec!["spec.image", "Required value"],
        ),
        (
            "name of 31 characters",
            curve_cluster(&long_name, json!({})),
            vec!["metadata.name must be at most 30 characters"],
        ),
        (
            "mds of 0",
            curve_cluster("nomds", json!({"mds": {"replicas": 0}})),
            vec!["spec.mds.replicas", "greater than or equal to 1"],
        ),
        (
            "ChunkServer ports over the MDS port",
            curve_cluster(
                "overlap",
                json!({"chunkservers": {"port": 6699, "disksPerNode": 2}}),
            ),
            vec!["spec.chunkservers.port range"],
        ),
        (
            "a cpu limit that is no quantity",
            curve_cluster(
                "cpu",
                json!({"mds": {"resources": {"limits": {"cpu": "two"}}}}),
            ),
            vec!["spec.mds.resources.limits.cpu", "should match"],
        ),
        (
            "requests over limits",
            curve_cluster(
                "overcommit",
                json!({"etcd": {"resources": {"requests": {"cpu": "2"}, "limits": {"cpu": "1500m"}}}}),
            ),
            vec!["spec.etcd.resources.requests must not exceed spec.etcd.resources.limits"],
        ),
        (
            "a node selector key with a space",
            curve_cluster(
                "selector",
                json!({"placement": {"nodeSelector": {"bad key": "x"}}}),
            ),
            vec!["spec.placement.nodeSelector", "keys must be a label key"],
        ),
        (
            "a toleration with an unknown operator",
            curve_cluster(
                "toleration",
                json!({"placement": {"tolerations": [{"key": "k", "operator": "In"}]}}),
            ),
            vec!["spec.placement.tolerations[0].operator", "supported values"],
        ),
        (
            "zones that differ from the copies",
            curve_cluster("zones", json!({"logicalPool": {"zones": 2}})),
            vec!["spec.logicalPool.zones must equal spec.logicalPool.replicas"],
        ),
        (
            "an image reference with capitals",
            curve_cluster("image", json!({"image": "opencurvedocker/CurveBS:v1.2.6"})),
            vec![
                "spec.image",
                "must be an image reference",
                "got \"opencurvedocker/CurveBS:v1.2.6\"",
            ],
        ),
    ];
    for (what, object, texts) in &cases {
        // Through the API.
        let dynamic: DynamicObject = serde_json::from_value(object.clone()).unwrap();
        match api.create(&PostParams::default(), &dynamic).await {
            Err(kube::Error::Api(status)) => {
                assert_eq!(status.code, 422, "{what}: {status:?}");
                for text in texts {
                    assert!(
                        status.message.contains(text),
                        "{what}: the API error lacks {text:?}: {}",
                        status.message
                    );
                }
            }
            other => panic!("{what}: the API server accepted it: {other:?}"),
        }
        // Through kubectl.
        let out = env.kubectl_stdin(&["create", "-f", "-"], &object.to_string());
        assert!(
            !out.success,
            "{what}: kubectl create succeeded: {}",
            out.stdout
        );
        assert!(out.stderr.contains("is invalid"), "{what}: {}", out.stderr);
        for text in texts {
            assert!(
                out.stderr.contains(text),
                "{what}: kubectl's error lacks {text:?}: {}",
                out.stderr
            );
        }
    }
    let listed = env
        .kubectl(&["get", "curveclusters", "-o", "name"])
        .ok("get curveclusters");
    assert_eq!(listed.trim(), "", "no invalid cluster was stored");

    // Updates: a valid cluster, then changes the rules refuse.
    let base = curve_cluster("base", json!({}));
    env.kubectl_stdin(&["create", "-f", "-"], &base.to_string())
        .ok("create a valid cluster");
    let updates: Vec<(&str, Value, Vec<&str>)> = vec![
        (
            "changing the StorageClass",
            json!({"spec": {"chunkservers": {"storage": {"storageClassName": "other"}}}}),
            vec![
                "spec.chunkservers.storage",
                "storage.storageClassName is immutable",
            ],
        ),
        (
            "changing etcd.clientPort",
            json!({"spec": {"etcd": {"clientPort": 2479}}}),
            vec!["spec.etcd.clientPort", "immutable"],
        ),
        (
            "changing the ChunkServer port",
            json!({"spec": {"chunkservers": {"port": 8300}}}),
            vec!["spec.chunkservers.port", "immutable"],
        ),
        (
            "turning hostNetwork off",
            json!({"spec": {"hostNetwork": false}}),
            vec!["spec.hostNetwork must be true"],
        ),
    ];
    for (what, patch, texts) in &updates {
        match api
            .patch("base", &PatchParams::default(), &Patch::Merge(patch))
            .await
        {
            Err(kube::Error::Api(status)) => {
                assert_eq!(status.code, 422, "{what}: {status:?}");
                for text in texts {
                    assert!(
                        status.message.contains(text),
                        "{what}: the API error lacks {text:?}: {}",
                        status.message
                    );
                }
            }
            other => panic!("{what}: the API server accepted it: {other:?}"),
        }
        let out = env.kubectl(&[
            "patch",
            "curvecluster",
            "base",
            "--type=merge",
            "-p",
            &patch.to_string(),
        ]);
        assert!(
            !out.success,
            "{what}: kubectl patch succeeded: {}",
            out.stdout
        );
        for text in texts {
            assert!(
                out.stderr.contains(text),
                "{what}: kubectl's error lacks {text:?}: {}",
                out.stderr
            );
        }
    }
    // Growing storage is allowed.
    api.patch(
        "base",
        &PatchParams::default(),
        &Patch::Merge(json!({"spec": {"chunkservers": {"storage": {"size": "200Gi"}}}})),
    )
    .await
    .expect("growing storage is accepted");
    // So is a smaller size: only the operator knows the volumes' size (a growth it refused
    // leaves the spec above them), so it refuses a shrink itself and the way back stays open.
    api.patch(
        "base",
        &PatchParams::default(),
        &Patch::Merge(json!({"spec": {"chunkservers": {"storage": {"size": "100Gi"}}}})),
    )
    .await
    .expect("a smaller storage size is the operator's to refuse");
}

/// c. Bring-up of examples/curvecluster.yaml, gated tier by tier.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs a Kubernetes API server (KUBECONFIG), see e2e/README.md"]
async fn c_bring_up_is_gated_tier_by_tier() {
    let env = TestEnv::new("bringup", 3).await;
    env.kubelet.hold("etcd");
    env.kubelet.hold("mds");
    let operator = env.start_operator().await;
    env.apply_example("curvecluster.yaml");

    // 1. Only the etcd tier while etcd has no quorum.
    eventually(
        "the etcd pods to be bound",
        Duration::from_secs(30),
        || async {
            let pods = pods_of(&env, "demo").await;
            let bound = pods.iter().filter(|p| host_ip(p).is_some()).count();
            if names(&pods) == expected_pods("demo", 3, 0, 0) && bound == 3 {
                Ok(())
            } else {
                Err(format!("{:?}, {bound} bound", names(&pods)))
            }
        },
    )
    .await;
    env.settle(&operator, "demo").await;
    assert_eq!(
        objects_of(&env, "demo").await,
        expected_objects("demo", &["etcd"]),
        "only the etcd tier exists"
    );
    let cluster = env.clusters().get("demo").await.unwrap();
    let status = cluster.status.clone().unwrap();
    expect_condition(&status, "EtcdQuorate", "False").unwrap();
    assert_eq!(
        condition(&status, "MdsLeaderElected").unwrap().reason,
        "NotStarted"
    );
    assert_eq!(status.phase.map(|p| p.as_str()), Some("Creating"));
    assert_kubectl_row(
        &env,
        "demo",
        &[("PHASE", "Creating"), ("ETCD", "0/3"), ("PRIMARY", "")],
    );

    // 2. One member of three: still no quorum, still no MDS.
    env.kubelet.release_pod("demo-etcd-0");
    eventually("demo-etcd-0 to run", Duration::from_secs(20), || async {
        let pod = env
            .api::<Pod>()
            .get("demo-etcd-0")
            .await
            .map_err(|e| e.to_string())?;
        let phase = pod.status.and_then(|s| s.phase);
        if phase.as_deref() == Some("Running") {
            Ok(())
        } else {
            Err(format!("{phase:?}"))
        }
    })
    .await;
    env.settle(&operator, "demo").await;
    assert!(
        !is_ready(&env.api::<Pod>().get("demo-etcd-0").await.unwrap()),
        "a lone member of three has no quorum: not ready"
    );
    assert_eq!(
        objects_of(&env, "demo").await,
        expected_objects("demo", &["etcd"]),
        "no MDS before etcd is quorate"
    );

    // 3. A second member: quorum → the MDS tier. (Timestamps have whole seconds.)
    let second_member = whole_seconds(Timestamp::now());
    env.kubelet.release_pod("demo-etcd-1");
    let cluster = env
        .wait_status("demo", "EtcdQuorate", Duration::from_secs(30), |_, s| {
            expect_condition(s, "EtcdQuorate", "True")
        })
        .await;
    assert!(
        condition(cluster.status.as_ref().unwrap(), "EtcdQuorate")
            .unwrap()
            .last_transition_time
            .0
            >= second_member
    );
    let mds_set = eventually("the MDS StatefulSet", Duration::from_secs(20), || async {
        env.api::<StatefulSet>()
            .get_opt("demo-mds")
            .await
            .map_err(|e| e.to_string())?
            .ok_or_else(|| "absent".to_string())
    })
    .await;
    assert!(
        mds_set.metadata.creation_timestamp.unwrap().0 >= second_member,
        "the MDS tier was created before etcd could be quorate"
    );

    // 4. MDS pods exist but none campaigns: no primary, no ChunkServers.
    eventually(
        "demo-mds-0 to be bound",
        Duration::from_secs(20),
        || async {
            let pod = env
                .api::<Pod>()
                .get_opt("demo-mds-0")
                .await
                .map_err(|e| e.to_string())?
                .ok_or("absent")?;
            host_ip(&pod)
                .map(|_| ())
                .ok_or_else(|| "not bound".to_string())
        },
    )
    .await;
    env.wait_status(
        "demo",
        "MdsLeaderElected NoLeader",
        Duration::from_secs(20),
        |_, s| {
            let c = condition(s, "MdsLeaderElected").ok_or("no MdsLeaderElected")?;
            if c.reason == "NoLeader" {
                Ok(())
            } else {
                Err(format!("MdsLeaderElected {}", c.reason))
            }
        },
    )
    .await;
    env.settle(&operator, "demo").await;
    assert_eq!(
        objects_of(&env, "demo").await,
        expected_objects("demo", &["etcd", "mds"]),
        "no ChunkServers before a primary is elected"
    );
    assert_kubectl_row(
        &env,
        "demo",
        &[("PHASE", "Creating"), ("ETCD", "2/3"), ("PRIMARY", "")],
    );

    // 5. The MDS campaign: a primary → the ChunkServers.
    let campaign = whole_seconds(Timestamp::now());
    env.kubelet.release("mds");
    let cluster = env
        .wait_status(
            "demo",
            "an elected primary",
            Duration::from_secs(30),
            |_, s| expect_condition(s, "MdsLeaderElected", "True"),
        )
        .await;
    let status = cluster.status.clone().unwrap();
    assert_eq!(
        status.mds.as_ref().unwrap().primary.as_deref(),
        Some("demo-mds-0"),
        "the only candidate is primary"
    );
    assert!(
        condition(&status, "MdsLeaderElected")
            .unwrap()
            .last_transition_time
            .0
            >= campaign
    );
    let cs_set = eventually(
        "the ChunkServer StatefulSet",
        Duration::from_secs(20),
        || async {
            env.api::<StatefulSet>()
                .get_opt("demo-chunkserver-0")
                .await
                .map_err(|e| e.to_string())?
                .ok_or_else(|| "absent".to_string())
        },
    )
    .await;
    assert!(
        cs_set.metadata.creation_timestamp.unwrap().0 >= campaign,
        "ChunkServers were created before an MDS could be elected"
    );

    // 6. The last etcd member; everything comes up.
    env.kubelet.release("etcd");
    let cluster = env.wait_available("demo", BRING_UP).await;
    let pods = assert_complete(&env, "demo", 3, 3, 3).await;
    assert_eq!(
        objects_of(&env, "demo").await,
        expected_objects("demo", &ALL_TIERS)
    );
    let status = cluster.status.clone().unwrap();
    for type_ in [
        "Available",
        "EtcdQuorate",
        "MdsLeaderElected",
        "ChunkServersReady",
        "SpecValid",
    ] {
        expect_condition(&status, type_, "True").unwrap();
    }
    for type_ in ["Progressing", "Degraded", "ReconciliationPaused"] {
        expect_condition(&status, type_, "False").unwrap();
    }
    let etcd = status.etcd.as_ref().unwrap();
    assert_eq!(
        (etcd.pods.ready.as_str(), etcd.healthy_members),
        ("3/3", Some(3))
    );
    assert!(
        etcd.leader
            .as_ref()
            .is_some_and(|l| l.starts_with("demo-etcd-")),
        "etcd leader {:?}",
        etcd.leader
    );
    let mds = status.mds.as_ref().unwrap();
    let mds0_ip = pod_ip(pods.iter().find(|p| p.name_any() == "demo-mds-0").unwrap()).unwrap();
    assert_eq!(
        mds.primary_address.as_deref(),
        Some(format!("{mds0_ip}:6700").as_str())
    );
    assert_eq!(mds.pods.ready, "3/3");
    assert_eq!(status.chunkservers.as_ref().unwrap().ready, "3/3");
    assert_kubectl_row(
        &env,
        "demo",
        &[
            ("PHASE", "Available"),
            ("PRIMARY", "demo-mds-0"),
            ("ETCD", "3/3"),
            ("MDS", "3/3"),
            ("CHUNKSERVERS", "3/3"),
        ],
    );
    let described = env
        .kubectl(&["describe", "curvecluster", "demo"])
        .ok("describe");
    for text in ["MdsPrimaryElected", "Available", "Created"] {
        assert!(
            described.contains(text),
            "kubectl describe lacks {text}:\n{described}"
        );
    }
    // The etcd members form one cluster, named after their pods.
    let mut client = etcd_client::Client::connect(env.kubelet.etcd_endpoints(), None)
        .await
        .unwrap();
    let mut members: Vec<String> = client
        .member_list()
        .await
        .unwrap()
        .members()
        .iter()
        .map(|m| m.name().to_string())
        .collect();
    members.sort();
    assert_eq!(members, ["demo-etcd-0", "demo-etcd-1", "demo-etcd-2"]);
    let created: Vec<String> = events(&env, "Created")
        .await
        .into_iter()
        .filter_map(|e| e.note)
        .collect();
    assert_eq!(created.len(), 3, "one Created event per tier: {created:?}");

    // A healthy, unchanged cluster: reconciles write nothing. (Curve's health is read beside
    // the reconciles: the first readings may predate the pool's copysets.)
    env.wait_status(
        "demo",
        "Curve healthy",
        Duration::from_secs(60),
        |_, s| match s.health.as_ref().map(|h| h.verdict) {
            Some(curve_operator::api::HealthVerdict::Healthy) => Ok(()),
            other => Err(format!("{other:?}")),
        },
    )
    .await;
    let before = (object_versions(&env, "demo").await, applies(&operator));
    let status_before = env.clusters().get("demo").await.unwrap().status;
    env.settle(&operator, "demo").await;
    env.settle(&operator, "demo").await;
    assert_eq!(
        (object_versions(&env, "demo").await, applies(&operator)),
        before,
        "a no-op reconcile wrote objects"
    );
    assert_eq!(
        env.clusters().get("demo").await.unwrap().status,
        status_before,
        "a no-op reconcile changed the status"
    );
}

/// d. Failover: the primary's MDS is killed (lease not revoked), then the next one resigns.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs a Kubernetes API server (KUBECONFIG), see e2e/README.md"]
async fn d_mds_failover_is_shown_with_an_event() {
    let env = TestEnv::new("failover", 3).await;
    let _operator = env.start_operator().await;
    env.apply_example("curvecluster.yaml");
    env.wait_available("demo", BRING_UP).await;
    let pods = assert_complete(&env, "demo", 3, 3, 3).await;
    let endpoints = env.kubelet.etcd_endpoints();
    let candidates = election(&endpoints).await;
    assert_eq!(candidates.len(), 3, "{candidates:?}");
    let first = pod_with_address(&pods, &candidates[0].2, 6700);
    let second = pod_with_address(&pods, &candidates[1].2, 6700);
    let third = pod_with_address(&pods, &candidates[2].2, 6700);
    wait_primary(&env, "demo", &first, Duration::from_secs(5)).await;

    // Crash: the key stays until its 5 s lease expires.
    let key = candidates[0].0.clone();
    let watch_endpoints = endpoints.clone();
    let key_gone = tokio::spawn(async move {
        let mut client = etcd_client::Client::connect(&watch_endpoints, None)
            .await
            .unwrap();
        loop {
            if client
                .get(key.as_str(), None)
                .await
                .map(|r| r.kvs().is_empty())
                .unwrap_or(false)
            {
                return Instant::now();
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    });
    // The dead primary is said before its key lapses (its dummy port is probed every second).
    let unreachable = tokio::spawn({
        let (clusters, first) = (env.clusters(), first.clone());
        async move {
            let start = Instant::now();
            while start.elapsed() < Duration::from_secs(20) {
                let status = clusters.get("demo").await.ok().and_then(|c| c.status);
                let said = (status.iter().flat_map(|s| &s.conditions)).any(|c| {
                    c.type_ == "MdsLeaderElected"
                        && c.reason == "PrimaryUnreachable"
                        && c.message.contains(&first)
                });
                if said {
                    return Some(Instant::now());
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            None
        }
    });
    let killed = Instant::now();
    env.kubelet.kill_mds(&first, true);
    let seen = wait_primary(&env, "demo", &second, Duration::from_secs(20)).await;
    let unreachable = unreachable
        .await
        .unwrap()
        .expect("MdsLeaderElected PrimaryUnreachable");
    say(&format!(
        "FAILOVER (kill -9 of {first}): MdsLeaderElected PrimaryUnreachable {:.2} s after the kill",
        (unreachable - killed).as_secs_f64()
    ));
    assert!(
        unreachable - killed < Duration::from_secs(2),
        "the dead primary was said {:?} after the kill",
        unreachable - killed
    );
    let gone = key_gone.await.unwrap();
    let total = seen - killed;
    let after_etcd = seen.saturating_duration_since(gone);
    say(&format!(
        "FAILOVER (kill -9 of {first}): lease expired after {:.2} s; status showed {second} {} ms after the key vanished; {:.2} s in all",
        (gone - killed).as_secs_f64(),
        after_etcd.as_millis(),
        total.as_secs_f64()
    ));
    // DESIGN.md: the status is written within a second of a change in etcd.
    assert!(
        after_etcd < Duration::from_secs(1),
        "the status took {after_etcd:?} after etcd changed"
    );
    wait_event(
        &env,
        "MdsPrimaryChanged",
        "demo",
        &format!("from {first} to {second}"),
    )
    .await;
    let listed = env
        .kubectl(&[
            "get",
            "events",
            "--field-selector",
            "reason=MdsPrimaryChanged",
        ])
        .ok("get events");
    assert!(
        listed.contains(&format!("MDS primary changed from {first} to {second}")),
        "{listed}"
    );
    assert_kubectl_row(&env, "demo", &[("PRIMARY", second.as_str())]);
    let status = env.clusters().get("demo").await.unwrap().status.unwrap();
    let second_ip = pod_ip(pods.iter().find(|p| p.name_any() == second).unwrap()).unwrap();
    assert_eq!(
        status.mds.as_ref().unwrap().primary_address.as_deref(),
        Some(format!("{second_ip}:6700").as_str())
    );

    // Graceful stop: the primary resigns, its key goes at once.
    let resigned = Instant::now();
    env.kubelet.stop_mds_gracefully(&second).await;
    let seen = wait_primary(&env, "demo", &third, Duration::from_secs(10)).await;
    say(&format!(
        "FAILOVER (resign of {second}): status showed {third} after {} ms",
        (seen - resigned).as_millis()
    ));
    // DESIGN.md: the status is written within a second of a change in etcd.
    assert!(
        seen - resigned < Duration::from_secs(1),
        "the status took {:?} after a resignation",
        seen - resigned
    );
    wait_event(
        &env,
        "MdsPrimaryChanged",
        "demo",
        &format!("from {second} to {third}"),
    )
    .await;
    assert_kubectl_row(&env, "demo", &[("PRIMARY", third.as_str())]);

    // The kubelet restarts both MDS; they campaign again, behind the primary.
    eventually(
        "3 candidates in the election again",
        Duration::from_secs(30),
        || async {
            let candidates = election(&endpoints).await;
            if candidates.len() == 3 {
                Ok(())
            } else {
                Err(format!("{candidates:?}"))
            }
        },
    )
    .await;
    env.wait_status(
        "demo",
        "3/3 MDS and Available",
        Duration::from_secs(30),
        |_, s| {
            let ready = s
                .mds
                .as_ref()
                .map(|m| m.pods.ready.clone())
                .unwrap_or_default();
            expect_condition(s, "Available", "True")?;
            if ready == "3/3" { Ok(()) } else { Err(ready) }
        },
    )
    .await;
    wait_primary(&env, "demo", &third, Duration::from_secs(5)).await;
}

/// e. The operator is SIGKILLed in the middle of bring-up, more than once, and restarted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs a Kubernetes API server (KUBECONFIG), see e2e/README.md"]
async fn e_operator_killed_mid_bring_up_converges() {
    let env = TestEnv::new("restart", 3).await;
    let mut operator = env.start_operator().await;
    env.apply_example("curvecluster.yaml");
    // Kill as soon as the first object of each tier appears: most likely in the middle of
    // applying that tier's objects.
    for (tier, first_object) in [
        ("etcd", "demo-etcd"),
        ("mds", "demo-mds"),
        ("chunkserver", "demo-chunkserver"),
    ] {
        let deadline = Instant::now() + BRING_UP;
        loop {
            if env
                .api::<ConfigMap>()
                .get_opt(first_object)
                .await
                .unwrap()
                .is_some()
            {
                break;
            }
            assert!(Instant::now() < deadline, "{first_object} never appeared");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        operator.kill();
        let at_kill = objects_of(&env, "demo").await;
        say(&format!(
            "killed the operator (SIGKILL) once the {tier} tier began; {} objects then: {at_kill:?}",
            at_kill.len()
        ));
        operator.restart().await;
    }
    env.wait_available("demo", BRING_UP).await;
    let pods = assert_complete(&env, "demo", 3, 3, 3).await;
    // Nothing missing, nothing twice.
    assert_eq!(
        objects_of(&env, "demo").await,
        expected_objects("demo", &ALL_TIERS)
    );
    let uid = env
        .clusters()
        .get("demo")
        .await
        .unwrap()
        .metadata
        .uid
        .unwrap();
    let mut owners: Vec<(String, usize, bool)> = Vec::new();
    owners.extend(ownership::<StatefulSet>(&env, "demo", &uid).await);
    owners.extend(ownership::<ConfigMap>(&env, "demo", &uid).await);
    owners.extend(ownership::<Service>(&env, "demo", &uid).await);
    owners.extend(ownership::<PodDisruptionBudget>(&env, "demo", &uid).await);
    for (name, count, to_cluster) in &owners {
        assert!(
            *count == 1 && *to_cluster,
            "{name}: {count} owner references, all to the cluster: {to_cluster}"
        );
    }
    let claims = env
        .api::<PersistentVolumeClaim>()
        .list(&ListParams::default())
        .await
        .unwrap()
        .items;
    let mut claim_names: Vec<String> = claims.iter().map(ResourceExt::name_any).collect();
    claim_names.sort();
    assert_eq!(
        claim_names,
        [
            "data-demo-chunkserver-0-0",
            "data-demo-chunkserver-0-1",
            "data-demo-chunkserver-0-2",
            "data-demo-etcd-0",
            "data-demo-etcd-1",
            "data-demo-etcd-2"
        ]
    );
    let mut client = etcd_client::Client::connect(env.kubelet.etcd_endpoints(), None)
        .await
        .unwrap();
    assert_eq!(
        client.member_list().await.unwrap().members().len(),
        3,
        "one etcd member per pod"
    );
    let candidates = election(&env.kubelet.etcd_endpoints()).await;
    let addresses: BTreeSet<String> = candidates.iter().map(|c| c.2.clone()).collect();
    let expected: BTreeSet<String> = pods
        .iter()
        .filter(|p| p.name_any().starts_with("demo-mds-"))
        .map(|p| format!("{}:6700", pod_ip(p).unwrap()))
        .collect();
    assert_eq!(addresses, expected, "one candidate per MDS pod");
    assert_kubectl_row(
        &env,
        "demo",
        &[
            ("PHASE", "Available"),
            ("ETCD", "3/3"),
            ("MDS", "3/3"),
            ("CHUNKSERVERS", "3/3"),
        ],
    );
}

/// f. Scale MDS 3 → 5 and ChunkServers up by one node.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs a Kubernetes API server (KUBECONFIG), see e2e/README.md"]
async fn f_scale_mds_and_chunkservers() {
    let env = TestEnv::new("scale", 4).await;
    let _operator = env.start_operator().await;
    let maps = MapHistory::watch(&env, "demo");
    env.apply_example("curvecluster.yaml");
    env.wait_available("demo", BRING_UP).await;
    assert_complete(&env, "demo", 3, 3, 3).await;

    env.kubelet.add_node(5).await;
    env.patch_spec(
        "demo",
        json!({"mds": {"replicas": 5}, "chunkservers": {"replicas": 4}}),
    )
    .await;
    env.wait_available("demo", BRING_UP).await;
    let pods = assert_complete(&env, "demo", 3, 5, 4).await;
    env.wait_status(
        "demo",
        "5 MDS and 4 ChunkServers ready",
        Duration::from_secs(20),
        |_, s| {
            let mds = s
                .mds
                .as_ref()
                .map(|m| m.pods.ready.clone())
                .unwrap_or_default();
            let cs = s
                .chunkservers
                .as_ref()
                .map(|c| c.ready.clone())
                .unwrap_or_default();
            if (mds.as_str(), cs.as_str()) == ("5/5", "4/4") {
                Ok(())
            } else {
                Err(format!("mds {mds}, cs {cs}"))
            }
        },
    )
    .await;
    let sets = env.api::<StatefulSet>();
    for (name, replicas) in [("demo-etcd", 3), ("demo-mds", 5), ("demo-chunkserver-0", 4)] {
        let set = sets.get(name).await.unwrap();
        assert_eq!(
            set.spec.as_ref().unwrap().replicas,
            Some(replicas),
            "{name}"
        );
    }
    // Budgets: same rules, and the disruption controller counts the new pods.
    let budgets = eventually(
        "the budgets to count every pod",
        Duration::from_secs(30),
        || async {
            let mut found = BTreeMap::new();
            for (name, expected) in [("demo-etcd", 3), ("demo-mds", 5), ("demo-chunkserver", 4)] {
                let pdb = env
                    .api::<PodDisruptionBudget>()
                    .get(name)
                    .await
                    .map_err(|e| e.to_string())?;
                let status = pdb.status.clone().unwrap_or_default();
                if status.expected_pods != expected
                    || status.current_healthy != expected
                    || status.disruptions_allowed != 1
                {
                    return Err(format!(
                        "{name}: expected {} healthy {} allowed {}",
                        status.expected_pods, status.current_healthy, status.disruptions_allowed
                    ));
                }
                found.insert(name, pdb);
            }
            Ok(found)
        },
    )
    .await;
    use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
    let spec = |name: &str| budgets[name].spec.clone().unwrap();
    assert_eq!(
        spec("demo-etcd").min_available,
        Some(IntOrString::Int(2)),
        "etcd keeps its quorum"
    );
    assert_eq!(spec("demo-mds").max_unavailable, Some(IntOrString::Int(1)));
    assert_eq!(
        spec("demo-chunkserver").max_unavailable,
        Some(IntOrString::Int(1))
    );
    let table = parse_table(&env.kubectl(&["get", "pdb"]).ok("get pdb"));
    let allowed: BTreeMap<String, String> = table
        .iter()
        .map(|r| (r["NAME"].clone(), r["ALLOWED"].clone()))
        .collect();
    assert_eq!(
        allowed.values().cloned().collect::<Vec<_>>(),
        ["1", "1", "1"],
        "{table:?}"
    );

    // The cluster map lists every ChunkServer host.
    let nodes: BTreeMap<String, String> = env
        .kubelet
        .nodes()
        .into_iter()
        .map(|n| (n.name, n.ip))
        .collect();
    let expected_servers: BTreeMap<String, String> = pods
        .iter()
        .filter(|p| p.name_any().starts_with("demo-chunkserver-"))
        .map(|p| {
            let node = node_of(p).unwrap();
            (node.clone(), nodes[&node].clone())
        })
        .collect();
    assert_eq!(expected_servers.len(), 4);
    let map = eventually(
        "topology.json to list 4 servers",
        Duration::from_secs(20),
        || async {
            let cm = env
                .api::<ConfigMap>()
                .get("demo-topology")
                .await
                .map_err(|e| e.to_string())?;
            let json = cm
                .data
                .and_then(|d| d.get("topology.json").cloned())
                .ok_or("no topology.json")?;
            let map: Value = serde_json::from_str(&json).map_err(|e| e.to_string())?;
            let servers: BTreeMap<String, String> = map["servers"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|s| {
                    (
                        s["name"].as_str().unwrap_or_default().to_string(),
                        s["internalip"].as_str().unwrap_or_default().to_string(),
                    )
                })
                .collect();
            if servers == expected_servers {
                Ok(map)
            } else {
                Err(format!("servers {servers:?}"))
            }
        },
    )
    .await;
    let zones: BTreeSet<&str> = map["servers"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|s| s["zone"].as_str())
        .collect();
    assert_eq!(zones.len(), 3, "servers spread over 3 zones: {map}");
    // The map can be complete before the last MDS stand-in has campaigned: wait for it.
    eventually("5 MDS to campaign", Duration::from_secs(15), || async {
        let candidates = election(&env.kubelet.etcd_endpoints()).await;
        if candidates.len() == 5 {
            Ok(())
        } else {
            Err(format!("{} candidates: {candidates:?}", candidates.len()))
        }
    })
    .await;
    assert_kubectl_row(
        &env,
        "demo",
        &[
            ("PHASE", "Available"),
            ("ETCD", "3/3"),
            ("MDS", "5/5"),
            ("CHUNKSERVERS", "4/4"),
        ],
    );
    maps.assert_no_server_dropped();
}

/// g. Pause: no change is applied while paused; resume applies it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs a Kubernetes API server (KUBECONFIG), see e2e/README.md"]
async fn g_pause_holds_changes_until_resumed() {
    let env = TestEnv::new("pause", 4).await;
    let operator = env.start_operator().await;
    let maps = MapHistory::watch(&env, "demo");
    env.apply_example("curvecluster.yaml");
    env.wait_available("demo", BRING_UP).await;
    assert_complete(&env, "demo", 3, 3, 3).await;

    let paused = env.patch_spec("demo", json!({"paused": true})).await;
    let generation = paused.metadata.generation;
    env.wait_status("demo", "phase Paused", Duration::from_secs(20), |_, s| {
        expect_condition(s, "ReconciliationPaused", "True")?;
        if s.phase.map(|p| p.as_str()) == Some("Paused") && s.observed_generation == generation {
            Ok(())
        } else {
            Err("not paused".into())
        }
    })
    .await;
    wait_event(&env, "Paused", "demo", "spec.paused").await;
    let before = object_versions(&env, "demo").await;
    let applies_before = applies(&operator);

    let changed = env
        .patch_spec("demo", json!({"mds": {"replicas": 4}}))
        .await;
    let generation = changed.metadata.generation;
    // The operator saw the new generation (status is still written while paused) ...
    env.wait_status(
        "demo",
        "the new generation observed while paused",
        Duration::from_secs(20),
        |_, s| {
            if s.observed_generation == generation && s.phase.map(|p| p.as_str()) == Some("Paused")
            {
                Ok(())
            } else {
                Err("not yet".into())
            }
        },
    )
    .await;
    env.settle(&operator, "demo").await;
    // ... and changed nothing.
    assert_eq!(
        object_versions(&env, "demo").await,
        before,
        "objects changed while paused"
    );
    assert_eq!(
        applies(&operator),
        applies_before,
        "the operator applied objects while paused"
    );
    let replicas = env
        .kubectl(&[
            "get",
            "statefulset",
            "demo-mds",
            "-o",
            "jsonpath={.spec.replicas}",
        ])
        .ok("get sts");
    assert_eq!(
        replicas, "3",
        "the MDS StatefulSet keeps its size while paused"
    );
    assert!(
        env.api::<Pod>()
            .get_opt("demo-mds-3")
            .await
            .unwrap()
            .is_none()
    );
    assert_kubectl_row(&env, "demo", &[("PHASE", "Paused")]);

    env.patch_spec("demo", json!({"paused": false})).await;
    wait_event(&env, "Resumed", "demo", "reconciling again").await;
    env.wait_available("demo", BRING_UP).await;
    assert_complete(&env, "demo", 3, 4, 3).await;
    let replicas = env
        .kubectl(&[
            "get",
            "statefulset",
            "demo-mds",
            "-o",
            "jsonpath={.spec.replicas}",
        ])
        .ok("get sts");
    assert_eq!(replicas, "4", "resumed: the change is applied");
    env.wait_status("demo", "4 MDS ready", Duration::from_secs(20), |_, s| {
        let ready = s
            .mds
            .as_ref()
            .map(|m| m.pods.ready.clone())
            .unwrap_or_default();
        if ready == "4/4" { Ok(()) } else { Err(ready) }
    })
    .await;
    assert_kubectl_row(&env, "demo", &[("PHASE", "Available"), ("MDS", "4/4")]);
    maps.assert_no_server_dropped();
}

/// h. Deleting a CurveCluster: its objects are garbage-collected; PVCs follow the cleanup
/// policy.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs a Kubernetes API server (KUBECONFIG), see e2e/README.md"]
async fn h_delete_collects_objects_and_follows_the_cleanup_policy() {
    let env = TestEnv::new("delete", 3).await;
    let _operator = env.start_operator().await;
    let claims_of = |c: &str| {
        let c = c.to_string();
        let api = env.api::<PersistentVolumeClaim>();
        async move {
            let mut names: Vec<(String, bool)> = api
                .list(&ListParams::default())
                .await
                .unwrap()
                .items
                .iter()
                .filter(|p| p.name_any().starts_with(&format!("data-{c}-")))
                .map(|p| (p.name_any(), p.metadata.deletion_timestamp.is_some()))
                .collect();
            names.sort();
            names
        }
    };
    let claim_names = |c: &str| -> Vec<(String, bool)> {
        let mut v: Vec<(String, bool)> = (0..3)
            .map(|i| (format!("data-{c}-chunkserver-0-{i}"), false))
            .chain((0..3).map(|i| (format!("data-{c}-etcd-{i}"), false)))
            .collect();
        v.sort();
        v
    };
    let wait_gone = |c: &'static str| {
        let env = &env;
        async move {
            eventually(
                &format!("the objects and pods of {c} to be garbage-collected"),
                Duration::from_secs(60),
                || async {
                    let left = objects_of(env, c).await;
                    let pods = names(&pods_of(env, c).await);
                    let cluster = env.clusters().get_opt(c).await.map_err(|e| e.to_string())?;
                    if left.is_empty() && pods.is_empty() && cluster.is_none() {
                        Ok(())
                    } else {
                        Err(format!(
                            "cluster present: {}, objects {left:?}, pods {pods:?}",
                            cluster.is_some()
                        ))
                    }
                },
            )
            .await
        }
    };

    // Retain (the default): the volumes stay.
    env.kubectl_stdin(
        &["apply", "-f", "-"],
        &curve_cluster("keep", json!({})).to_string(),
    )
    .ok("apply keep");
    env.wait_available("keep", BRING_UP).await;
    assert_complete(&env, "keep", 3, 3, 3).await;
    assert_eq!(claims_of("keep").await, claim_names("keep"));
    env.kubectl(&["delete", "curvecluster", "keep", "--timeout=60s"])
        .ok("delete curvecluster keep");
    wait_gone("keep").await;
    assert_eq!(
        claims_of("keep").await,
        claim_names("keep"),
        "Retain keeps every volume claim"
    );
    let listed = env.kubectl(&["get", "pvc", "-o", "name"]).ok("get pvc");
    assert_eq!(listed.lines().count(), 6, "{listed}");

    // Delete with the confirmation: the volumes go too.
    let wipe = curve_cluster(
        "wipe",
        json!({"cleanup": {"policy": "Delete", "confirmation": "yes-really-destroy-data"}}),
    );
    env.kubectl_stdin(&["apply", "-f", "-"], &wipe.to_string())
        .ok("apply wipe");
    env.wait_available("wipe", BRING_UP).await;
    assert_complete(&env, "wipe", 3, 3, 3).await;
    let cluster = env.clusters().get("wipe").await.unwrap();
    assert!(
        cluster
            .finalizers()
            .iter()
            .any(|f| f == "curve.opencurve.io/delete-data"),
        "finalizers {:?}",
        cluster.finalizers()
    );
    assert_eq!(claims_of("wipe").await, claim_names("wipe"));
    env.kubectl(&["delete", "curvecluster", "wipe", "--timeout=60s"])
        .ok("delete curvecluster wipe");
    wait_gone("wipe").await;
    eventually(
        "the claims of wipe to be deleted",
        Duration::from_secs(60),
        || async {
            let left = claims_of("wipe").await;
            if left.is_empty() {
                Ok(())
            } else {
                Err(format!("{left:?}"))
            }
        },
    )
    .await;
    wait_event(&env, "DataDeleted", "wipe", "deleted 6 data volume claims").await;
    assert_eq!(
        claims_of("keep").await,
        claim_names("keep"),
        "the other cluster's claims stay"
    );
    let listed = env.kubectl(&["get", "pvc", "-o", "name"]).ok("get pvc");
    assert!(
        !listed.contains("wipe") && listed.lines().count() == 6,
        "{listed}"
    );
}

/// The verbs the count distinguishes (RBAC's, with `apply` for server-side apply).
const REQUEST_VERBS: [&str; 9] = [
    "get",
    "list",
    "watch",
    "create",
    "update",
    "patch",
    "apply",
    "delete",
    "deletecollection",
];

/// `verb=… resource=…` of a series of [`KUBE_REQUESTS`] (its other labels after them).
fn request_series(labels: &Labels) -> String {
    let mut text = format!(
        "verb={} resource={}",
        label(labels, "verb"),
        label(labels, "resource")
    );
    for (k, v) in labels
        .iter()
        .filter(|(k, _)| *k != "verb" && *k != "resource")
    {
        text.push_str(&format!(" {k}={v}"));
    }
    text
}

/// The series of [`KUBE_REQUESTS`]; fails the test when the operator does not export it, or
/// exports it without the labels `verb` and `resource`.
fn kube_requests(metrics: &Metrics) -> BTreeMap<Labels, f64> {
    assert!(
        metrics.has(KUBE_REQUESTS),
        "metric {KUBE_REQUESTS} is missing from the operator's /metrics (it exports {:?})",
        metrics.names()
    );
    let series = metrics.series(KUBE_REQUESTS);
    for labels in series.keys() {
        let verb = labels.get("verb").map(String::as_str);
        assert!(
            verb.is_some_and(|v| REQUEST_VERBS.contains(&v)),
            "{KUBE_REQUESTS}{{{}}}: the verb label must be one of {REQUEST_VERBS:?}",
            request_series(labels)
        );
        assert!(
            labels.get("resource").is_some_and(|r| !r.is_empty()),
            "{KUBE_REQUESTS}{{{}}}: no resource label",
            request_series(labels)
        );
    }
    series
}

/// i. A healthy, unchanged cluster costs no API requests: reconciles that change nothing read
/// the operator's caches and write nothing (no gets, lists, applies, status writes or events).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs a Kubernetes API server (KUBECONFIG), see e2e/README.md"]
async fn i_a_settled_cluster_costs_no_requests() {
    let env = TestEnv::new("quiet", 3).await;
    // Curve's own settling (ChunkServers UNSTABLE until the MDS's first health check, the pool
    // metrics after its first refresh) shortened, so the health in the status settles soon.
    env.kubelet.set_curve_settings(CurveSettings {
        // A heartbeat every second, missed after 5 (CPU hiccups must not flap it UNSTABLE).
        miss_timeout: Duration::from_secs(5),
        heartbeat_interval: Duration::from_secs(1),
        metric_interval: Duration::from_secs(2),
        ..CurveSettings::default()
    });
    let operator = env.start_operator().await;
    env.apply_example("curvecluster.yaml");
    env.wait_available("demo", BRING_UP).await;
    assert_complete(&env, "demo", 3, 3, 3).await;
    // Curve's health settled too: every ChunkServer online and the pools' space known (each
    // change of them is a status write, rightly).
    env.wait_status(
        "demo",
        "Curve's health settled",
        Duration::from_secs(60),
        |_, s| {
            let health = s.health.as_ref().ok_or("no health yet")?;
            let online = health.chunkservers.as_ref().is_some_and(|c| c.online == 3);
            let space = !health.logical_pools.is_empty()
                && health
                    .logical_pools
                    .iter()
                    .all(|p| p.capacity_bytes.is_some());
            if health.verdict == HealthVerdict::Healthy && online && space {
                Ok(())
            } else {
                Err(format!(
                    "{:?}, all online: {online}, space: {space}",
                    health.verdict
                ))
            }
        },
    )
    .await;
    // Steady: a reconcile that started after all of the above has finished.
    env.settle(&operator, "demo").await;

    let before = operator.samples().await;
    let requests_before = kube_requests(&before);
    let bring_up: f64 = requests_before
        .iter()
        .filter(|(labels, _)| labels.get("verb").map(String::as_str) != Some("watch"))
        .map(|(_, n)| n)
        .sum();
    assert!(
        bring_up > 0.0,
        "{KUBE_REQUESTS} counted no request other than watches, though the operator created the \
         cluster's objects: {requests_before:?}"
    );
    // Metadata changes: each enqueues a reconcile and changes no spec.
    let status_before = env.clusters().get("demo").await.unwrap().status;
    let since = operator.reconciles().await;
    for round in 1..=3 {
        let patch = json!({"metadata": {"annotations": {
            "e2e.curve.opencurve.io/no-op": format!("{round}-{}", env.started.elapsed().as_nanos())}}});
        env.clusters()
            .patch("demo", &PatchParams::default(), &Patch::Merge(patch))
            .await
            .expect("annotate the cluster");
        operator.wait_reconciles(since, round).await;
    }
    let reconciles = operator.reconciles().await - since;
    let after = operator.samples().await;
    kube_requests(&after);

    // Watches may be re-established and leases renewed; nothing else may grow.
    let allowed = |labels: &Labels| {
        labels.get("verb").map(String::as_str) == Some("watch")
            || labels.get("resource").map(String::as_str) == Some("leases")
    };
    let growth = after.growth(&before, KUBE_REQUESTS);
    say(&format!(
        "{KUBE_REQUESTS} during {reconciles} no-op reconciles: {} of {} series grew \
         ({} requests before, over the bring-up)",
        growth.len(),
        requests_before.len(),
        requests_before.values().fold(0.0, |a, b| a + b)
    ));
    for (labels, delta) in &growth {
        say(&format!(
            "  {:+} {}{}",
            delta,
            request_series(labels),
            if allowed(labels) { " (allowed)" } else { "" }
        ));
    }
    let costly: Vec<String> = growth
        .iter()
        .filter(|(labels, _)| !allowed(labels))
        .map(|(labels, delta)| format!("{} {delta:+}", request_series(labels)))
        .collect();
    if !costly.is_empty() {
        // What changed in the status, field by field, to say why it was written.
        let status_after = env.clusters().get("demo").await.unwrap().status;
        let (before, after) = (
            serde_json::to_value(&status_before).unwrap(),
            serde_json::to_value(&status_after).unwrap(),
        );
        say(&format!("status before: {before}"));
        say(&format!("status after:  {after}"));
    }
    assert!(
        costly.is_empty(),
        "{reconciles} reconciles of a healthy, unchanged cluster made API requests: {costly:?}"
    );
}

/// An admission policy that refuses every StatefulSet of `namespace` whose images do not come
/// from registry.example.com: a refusal the operator's validation cannot foresee.
fn registry_policy(namespace: &str) -> String {
    format!(
        r#"apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingAdmissionPolicy
metadata:
  name: {namespace}-registry
spec:
  failurePolicy: Fail
  matchConstraints:
    resourceRules:
    - apiGroups: ["apps"]
      apiVersions: ["v1"]
      operations: ["CREATE", "UPDATE"]
      resources: ["statefulsets"]
  validations:
  - expression: "object.spec.template.spec.containers.all(c, c.image.startsWith('registry.example.com/'))"
    message: images must come from registry.example.com
---
apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingAdmissionPolicyBinding
metadata:
  name: {namespace}-registry
spec:
  policyName: {namespace}-registry
  validationActions: [Deny]
  matchResources:
    namespaceSelector:
      matchLabels:
        kubernetes.io/metadata.name: {namespace}
"#
    )
}

/// j. The API server refuses an object for a reason validation missed (an admission policy):
/// the status names the object and the server's message as `ApplyRefused`, one Event tells it
/// across retries, nothing after the refused object is created, and changing the spec resumes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs a Kubernetes API server (KUBECONFIG), see e2e/README.md"]
async fn j_an_apply_refused_by_the_api_server_is_shown_and_resumes() {
    let env = TestEnv::new("refused", 4).await;
    let policy = registry_policy(&env.namespace);
    kubectl(&["apply", "-f", "-"], Some(&policy)).ok("create the admission policy");
    // The policy takes effect once the API server compiled it: probe with a server dry run.
    let probe = json!({"apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": {"name": "probe"},
        "spec": {"selector": {"matchLabels": {"a": "b"}}, "serviceName": "probe",
            "template": {"metadata": {"labels": {"a": "b"}}, "spec": {"containers": [{"name": "c", "image": "busybox"}]}}}});
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

    let operator = env.start_operator().await;
    env.apply_example("curvecluster.yaml");
    let message = wait_progressing(&env, "ApplyRefused", Duration::from_secs(30)).await;
    say(&format!("ApplyRefused: {message}"));
    for text in [
        "the API server refused StatefulSet/demo-etcd",
        "images must come from registry.example.com",
    ] {
        assert!(message.contains(text), "{text:?} missing from {message:?}");
    }
    // Two retries later (5 s, then 10 s of backoff) there is still one Event, counted once.
    let errors =
        |metrics: &Metrics| metrics.sum("curve_operator_errors_total", &[("step", "apply")]) as u64;
    let first = errors(&operator.samples().await);
    eventually("two retries", Duration::from_secs(40), || async {
        let now = errors(&operator.samples().await);
        if now >= first + 2 {
            Ok(())
        } else {
            Err(format!("{now} apply errors"))
        }
    })
    .await;
    let told = events(&env, "ApplyRefused").await;
    assert_eq!(told.len(), 1, "{told:?}");
    assert!(told[0].series.is_none(), "told once: {:?}", told[0].series);
    say(&format!(
        "{} apply errors while refused, {} ApplyRefused event",
        errors(&operator.samples().await),
        told.len()
    ));
    // Nothing after the refused StatefulSet: the etcd tier's other objects only.
    let expected: BTreeSet<(String, String)> = [
        ("ConfigMap", "demo-etcd"),
        ("ConfigMap", "demo-etcd-members"),
        ("Service", "demo-etcd"),
        ("PodDisruptionBudget", "demo-etcd"),
    ]
    .iter()
    .map(|(k, n)| (k.to_string(), n.to_string()))
    .collect();
    assert_eq!(objects_of(&env, "demo").await, expected);

    // The user follows the message: an image from the allowed registry, and the cluster comes up.
    env.patch_spec(
        "demo",
        json!({"image": "registry.example.com/opencurvedocker/curvebs:v1.2.6"}),
    )
    .await;
    env.wait_available("demo", BRING_UP).await;
    assert_complete(&env, "demo", 3, 3, 3).await;
    kubectl(&["delete", "-f", "-"], Some(&policy)).ok("delete the admission policy");
}

/// What happened to a cluster's pods during a roll, as a pod watch saw it.
#[derive(Default)]
struct RollLog {
    /// Pods in the order they were deleted.
    deleted: Vec<Deletion>,
    /// When each pod (by name) last became Ready.
    ready_at: BTreeMap<String, Instant>,
    /// Pods deleted while a pod of another failure domain of their tier was not Ready: must
    /// stay empty.
    overlaps: Vec<String>,
}

struct Deletion {
    at: Instant,
    name: String,
    uid: String,
}

impl RollLog {
    /// The deleted pods' names, in order.
    fn names(&self) -> Vec<String> {
        self.deleted.iter().map(|d| d.name.clone()).collect()
    }
}

/// The server (ordinal) of a ChunkServer pod `<c>-chunkserver-<slot>-<ordinal>`.
fn server_of(name: &str) -> Option<&str> {
    name.contains("-chunkserver-")
        .then(|| name.rsplit_once('-').map(|(_, o)| o))
        .flatten()
}

/// (tier, failure domain) of a daemon pod: etcd and MDS pods each their own, ChunkServer pods
/// their server. `None` for the pods of Jobs.
fn failure_domain(name: &str) -> Option<(usize, &str)> {
    let tier = ["-etcd-", "-mds-", "-chunkserver-"]
        .iter()
        .position(|t| name.contains(t))?;
    Some((tier, server_of(name).unwrap_or(name)))
}

/// Watches the cluster's pods into a [`RollLog`] until dropped.
fn watch_roll(
    env: &TestEnv,
    instance: &str,
) -> (
    std::sync::Arc<std::sync::Mutex<RollLog>>,
    tokio::task::JoinHandle<()>,
) {
    use futures::StreamExt;
    use kube::runtime::{WatchStreamExt, watcher};
    let log = std::sync::Arc::new(std::sync::Mutex::new(RollLog::default()));
    let config = watcher::Config::default().labels(&format!("{INSTANCE}={instance}"));
    let stream = watcher(env.api::<Pod>(), config)
        .default_backoff()
        .touched_objects();
    let shared = log.clone();
    let task = tokio::spawn(async move {
        let mut seen: BTreeMap<String, (String, bool)> = BTreeMap::new();
        let mut stream = std::pin::pin!(stream);
        while let Some(Ok(pod)) = stream.next().await {
            let name = pod.name_any();
            let uid = pod.uid().unwrap_or_default();
            let ready = is_ready(&pod) && pod.metadata.deletion_timestamp.is_none();
            let mut log = shared.lock().unwrap();
            let before = seen.insert(name.clone(), (uid.clone(), ready));
            if ready && before.as_ref().is_none_or(|(u, r)| *u != uid || !r) {
                log.ready_at.insert(name.clone(), Instant::now());
            }
            let deleting = pod.metadata.deletion_timestamp.is_some();
            let first_seen_deleting =
                deleting && !log.deleted.iter().any(|d| d.name == name && d.uid == uid);
            if first_seen_deleting {
                if let Some((tier, domain)) = failure_domain(&name) {
                    // Another failure domain of the tier down when one is deleted: two at once.
                    let others_down: Vec<String> = seen
                        .iter()
                        .filter(|(n, (_, r))| {
                            !r && failure_domain(n).is_some_and(|(t, d)| t == tier && d != domain)
                        })
                        .map(|(n, _)| n.clone())
                        .collect();
                    if !others_down.is_empty() {
                        log.overlaps
                            .push(format!("{name} deleted while {others_down:?} were down"));
                    }
                }
                log.deleted.push(Deletion {
                    at: Instant::now(),
                    name,
                    uid,
                });
            }
        }
    });
    (log, task)
}

/// Every primary the `07leader` election had, in order, as a watch of etcd sees it (the key
/// with the lowest create revision is primary).
fn watch_primaries(
    endpoints: Vec<String>,
) -> (
    std::sync::Arc<std::sync::Mutex<Vec<String>>>,
    tokio::task::JoinHandle<()>,
) {
    let primaries = std::sync::Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let shared = primaries.clone();
    let task = tokio::spawn(async move {
        loop {
            let Ok(mut client) = etcd_client::Client::connect(&endpoints, None).await else {
                tokio::time::sleep(Duration::from_millis(200)).await;
                continue;
            };
            let watch = client
                .watch(
                    format!("{MDS_ELECTION}/"),
                    Some(etcd_client::WatchOptions::new().with_prefix()),
                )
                .await;
            let Ok(mut stream) = watch else {
                tokio::time::sleep(Duration::from_millis(200)).await;
                continue;
            };
            loop {
                let options = GetOptions::new()
                    .with_prefix()
                    .with_sort(SortTarget::Create, SortOrder::Ascend)
                    .with_limit(1);
                if let Ok(response) = client.get(format!("{MDS_ELECTION}/"), Some(options)).await
                    && let Some(kv) = response.kvs().first()
                {
                    let value = kv.value_str().unwrap_or_default().to_string();
                    let mut seen = shared.lock().unwrap();
                    if seen.last() != Some(&value) {
                        seen.push(value);
                    }
                }
                match stream.message().await {
                    Ok(Some(_)) => continue,
                    _ => break,
                }
            }
        }
    });
    (primaries, task)
}

/// One measured roll: what was replaced in which order, the primaries, the overlaps.
struct RollFigures {
    order: Vec<String>,
    primaries: Vec<String>,
    overlaps: Vec<String>,
    /// Seconds from a tier's first deletion to its last pod Ready again.
    tier_seconds: Vec<(String, f64)>,
    total: f64,
}

impl RollFigures {
    fn line(&self, what: &str) -> String {
        let tiers: Vec<String> = (self.tier_seconds.iter())
            .map(|(t, s)| format!("{t} {s:.1} s"))
            .collect();
        format!(
            "{what}: {:.1} s in all ({}); primary changes: {}; deletions while another member of the tier was down: {}",
            self.total,
            tiers.join(", "),
            self.primaries.len().saturating_sub(1),
            self.overlaps.len()
        )
    }
}

fn tier_index(name: &str) -> Option<usize> {
    failure_domain(name).map(|(tier, _)| tier)
}

/// Changes the image and waits until the roll is done: by the operator, or (the anchor) by
/// the StatefulSet controller's own RollingUpdate with the operator paused.
async fn measured_roll(env: &TestEnv, image: &str, by_operator: bool) -> RollFigures {
    let (log, watch) = watch_roll(env, "demo");
    let (primaries, election_watch) = watch_primaries(env.kubelet.etcd_endpoints());
    tokio::time::sleep(Duration::from_millis(500)).await;
    let started = Instant::now();
    if by_operator {
        // The gate of each ChunkServer step, timed from outside (`GATE … s`).
        let gates = tokio::spawn(curve_operator_e2e::gates::gate_times(
            env.api::<Pod>(),
            "demo-chunkserver-",
        ));
        env.patch_spec("demo", json!({"image": image})).await;
        wait_rolled_to(env, image, Duration::from_secs(240)).await;
        gates.abort();
    } else {
        env.patch_spec("demo", json!({"paused": true})).await;
        env.wait_status(
            "demo",
            "phase Paused",
            Duration::from_secs(20),
            |_, s| match s.phase.map(|p| p.as_str()) {
                Some("Paused") => Ok(()),
                other => Err(format!("phase {other:?}")),
            },
        )
        .await;
        let sets: Vec<String> = belonging::<StatefulSet>(env, "demo")
            .await
            .into_iter()
            .map(|(_, n)| n)
            .collect();
        for set in &sets {
            env.kubectl(&[
                "patch",
                "statefulset",
                set,
                "--type=merge",
                "-p",
                r#"{"spec":{"updateStrategy":{"type":"RollingUpdate","rollingUpdate":null}}}"#,
            ])
            .ok("switch to RollingUpdate");
            env.kubectl(&[
                "set",
                "image",
                &format!("statefulset/{set}"),
                &format!("*={image}"),
            ])
            .ok("set the image");
        }
        let api: Api<StatefulSet> = env.api();
        eventually(
            "the StatefulSet controller's roll",
            Duration::from_secs(240),
            || async {
                for set in &sets {
                    let set = api.get(set).await.map_err(|e| e.to_string())?;
                    let st = set.status.clone().unwrap_or_default();
                    let replicas = set.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1);
                    let done = st.observed_generation == set.metadata.generation
                        && st.updated_replicas == Some(replicas)
                        && st.ready_replicas == Some(replicas)
                        && st.current_revision == st.update_revision;
                    if !done {
                        return Err(format!("{} rolling: {st:?}", set.name_any()));
                    }
                }
                Ok(())
            },
        )
        .await;
    }
    let total = started.elapsed().as_secs_f64();
    // The election settles a moment after the last MDS is Ready.
    tokio::time::sleep(Duration::from_secs(2)).await;
    watch.abort();
    election_watch.abort();
    let log = std::mem::take(&mut *log.lock().unwrap());
    let order = log.names();
    let mut tier_seconds = Vec::new();
    for (i, tier) in ["etcd", "mds", "chunkservers"].iter().enumerate() {
        let deleted: Vec<&Deletion> = (log.deleted.iter())
            .filter(|d| tier_index(&d.name) == Some(i))
            .collect();
        let Some(first) = deleted.first().map(|d| d.at) else {
            continue;
        };
        let last_ready = deleted
            .iter()
            .filter_map(|d| log.ready_at.get(&d.name))
            .max()
            .copied()
            .unwrap_or(first);
        tier_seconds.push((
            tier.to_string(),
            last_ready.saturating_duration_since(first).as_secs_f64(),
        ));
    }
    let primaries = primaries.lock().unwrap().clone();
    RollFigures {
        order,
        primaries,
        overlaps: log.overlaps,
        tier_seconds,
        total,
    }
}

/// The operator's roll obeys the ordering rules: every pod once, tier by tier, the role last.
fn assert_operator_order(figures: &RollFigures, leader: &str, primary: &str, mds: usize) {
    let order = &figures.order;
    say(&format!("replaced in order: {order:?}"));
    let pods = 3 + mds + 3;
    assert_eq!(order.len(), pods, "every pod replaced once: {order:?}");
    let tiers: Vec<Option<usize>> = order.iter().map(|n| tier_index(n)).collect();
    let mut expected = vec![Some(0); 3];
    expected.extend(vec![Some(1); mds]);
    expected.extend(vec![Some(2); 3]);
    assert_eq!(tiers, expected, "tier order: {order:?}");
    assert_eq!(order[2], leader, "the etcd leader last");
    assert_eq!(order[2 + mds], primary, "the MDS primary last");
    assert!(figures.overlaps.is_empty(), "{:?}", figures.overlaps);
    assert_eq!(
        figures.primaries.len(),
        2,
        "the primary changes exactly once: {:?}",
        figures.primaries
    );
}

/// k. An image change on a healthy cluster is rolled by the operator: etcd (followers, then
/// the leader), then MDS (standbys, then the primary: one primary change), then ChunkServers
/// one server at a time, never two members of a tier down at once. Measured with 3 and 5 MDS
/// beside the StatefulSet controller's own RollingUpdate of the same change (the anchor).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs a Kubernetes API server (KUBECONFIG), see e2e/README.md"]
async fn k_an_image_change_rolls_tier_by_tier_primary_last() {
    let env = TestEnv::new("roll", 5).await;
    let _operator = env.start_operator().await;
    env.apply_example("curvecluster.yaml");
    env.wait_available("demo", BRING_UP).await;
    assert_complete(&env, "demo", 3, 3, 3).await;
    let mut figures = Vec::new();
    for (mds, images) in [(3, ["v1.2.7", "v1.2.8"]), (5, ["v1.2.9", "v1.2.10"])] {
        if mds == 5 {
            // The anchor rolled the StatefulSets to its image behind the operator's back; the
            // spec says so as it resumes, or the operator would roll back to the spec's image
            // (a paused status no longer claims Complete, so this waits for the real end).
            let anchor = "opencurvedocker/curvebs:v1.2.8";
            let resume = json!({"mds": {"replicas": 5}, "paused": false, "image": anchor});
            env.patch_spec("demo", resume).await;
            wait_rolled_to(
                &env,
                "opencurvedocker/curvebs:v1.2.8",
                Duration::from_secs(240),
            )
            .await;
            env.wait_available("demo", BRING_UP).await;
        }
        let status = env.clusters().get("demo").await.unwrap().status.unwrap();
        let leader = status.etcd.as_ref().and_then(|e| e.leader.clone()).unwrap();
        let primary = status.mds.as_ref().and_then(|m| m.primary.clone()).unwrap();
        let by_operator = measured_roll(
            &env,
            &format!("opencurvedocker/curvebs:{}", images[0]),
            true,
        )
        .await;
        assert_operator_order(&by_operator, &leader, &primary, mds);
        let what = format!("ROLL by the operator, 3 etcd, {mds} MDS, 3 ChunkServers");
        say(&by_operator.line(&what));
        figures.push(by_operator.line(&what));
        let anchor = measured_roll(
            &env,
            &format!("opencurvedocker/curvebs:{}", images[1]),
            false,
        )
        .await;
        let what = format!(
            "ROLL by the StatefulSet controller (anchor), 3 etcd, {mds} MDS, 3 ChunkServers"
        );
        say(&anchor.line(&what));
        say(&format!("anchor order: {:?}", anchor.order));
        figures.push(anchor.line(&what));
    }
    for line in figures {
        say(&line);
    }
}

/// The images a component's pods run and how many run the current template, from the status.
fn tier_images(status: &curve_operator::api::CurveClusterStatus) -> Vec<(Vec<String>, i32, i32)> {
    [
        status.etcd.as_ref().map(|e| &e.pods),
        status.mds.as_ref().map(|m| &m.pods),
        status.chunkservers.as_ref(),
    ]
    .iter()
    .flatten()
    .map(|t| (t.images.clone(), t.updated_replicas, t.desired))
    .collect()
}

/// Waits until every tier runs `image` only and the roll is complete.
async fn wait_rolled_to(env: &TestEnv, image: &str, limit: Duration) {
    env.wait_status("demo", &format!("every tier on {image}"), limit, |_, s| {
        let tiers = tier_images(s);
        let on_image = tiers.len() == 3
            && tiers.iter().all(|(images, updated, desired)| {
                images == &[image.to_string()] && updated == desired
            });
        match condition(s, "Progressing") {
            Some(c) if on_image && c.reason == "Complete" => Ok(()),
            other => Err(format!("{tiers:?}; Progressing is {other:?}")),
        }
    })
    .await;
}

/// l. A replaced pod that never becomes Ready halts the roll (RolloutStuck, the pod named,
/// nothing else replaced); changing the spec back resumes it. Then an operator SIGKILLed
/// mid-roll carries on without two members of a tier down at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs a Kubernetes API server (KUBECONFIG), see e2e/README.md"]
async fn l_a_stuck_roll_halts_resumes_on_revert_and_survives_an_operator_kill() {
    let env = TestEnv::new("stuck", 4).await;
    let mut operator = env.start_operator().await;
    env.apply_example("curvecluster.yaml");
    env.wait_available("demo", BRING_UP).await;
    env.patch_spec("demo", json!({"rollout": {"progressDeadlineSeconds": 10}}))
        .await;
    let good = "opencurvedocker/curvebs:v1.2.6";
    let broken = "opencurvedocker/curvebs:v1.2.6-broken";
    env.kubelet.hold_image(broken);
    let (log, watch) = watch_roll(&env, "demo");

    env.patch_spec("demo", json!({"image": broken})).await;
    let message = wait_progressing(&env, "RolloutStuck", Duration::from_secs(60)).await;
    say(&format!("RolloutStuck: {message}"));
    let deleted = RollLog::names;
    let first = deleted(&log.lock().unwrap());
    assert_eq!(
        first.len(),
        1,
        "one pod replaced, then the roll halts: {first:?}"
    );
    assert!(
        message.starts_with(&format!("etcd: 1/3 updated, {} is not Ready", first[0])),
        "{message}"
    );
    // `kubectl get` shows it; `-o wide` says which pod.
    assert_kubectl_row(&env, "demo", &[("PROGRESS", "RolloutStuck")]);
    let wide = env
        .kubectl(&["get", "curvecluster", "demo", "-o", "wide"])
        .ok("get -o wide");
    assert!(
        wide.contains(broken) && wide.contains(&format!("{} is not Ready", first[0])),
        "{wide}"
    );
    // It stays halted: nothing else is replaced.
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert_eq!(deleted(&log.lock().unwrap()), first);
    wait_event(&env, "PodReplaced", "demo", &first[0]).await;

    // Back to the good image: the stuck pod is replaced and the cluster is whole again.
    env.patch_spec("demo", json!({"image": good})).await;
    wait_rolled_to(&env, good, Duration::from_secs(90)).await;
    let after_revert = deleted(&log.lock().unwrap());
    assert_eq!(
        after_revert,
        [first[0].clone(), first[0].clone()],
        "only the stuck pod again"
    );

    // A roll with the operator SIGKILLed after its first step, started again 2 s later.
    let next = "opencurvedocker/curvebs:v1.2.7";
    env.patch_spec("demo", json!({"image": next})).await;
    eventually(
        "the first step of the roll",
        Duration::from_secs(30),
        || async {
            if deleted(&log.lock().unwrap()).len() > after_revert.len() {
                Ok(())
            } else {
                Err("no pod replaced yet".to_string())
            }
        },
    )
    .await;
    operator.kill();
    tokio::time::sleep(Duration::from_secs(2)).await;
    operator.restart().await;
    wait_rolled_to(&env, next, Duration::from_secs(240)).await;
    watch.abort();
    let log = std::mem::take(&mut *log.lock().unwrap());
    let rolled: Vec<String> = deleted(&log)[after_revert.len()..].to_vec();
    say(&format!(
        "after the operator kill, replaced in order: {rolled:?}"
    ));
    assert_eq!(rolled.len(), 9, "each pod once: {rolled:?}");
    assert!(log.overlaps.is_empty(), "{:?}", log.overlaps);
}

/// Waits until the `demo` cluster's Progressing condition has this reason; its message.
async fn wait_progressing(env: &TestEnv, reason: &str, limit: Duration) -> String {
    wait_condition(env, "Progressing", reason, limit).await
}

/// Waits until demo's condition `type_` has `reason`; its message.
async fn wait_condition(env: &TestEnv, type_: &str, reason: &str, limit: Duration) -> String {
    let cluster = env
        .wait_status("demo", reason, limit, |_, s| match condition(s, type_) {
            Some(c) if c.reason == reason => Ok(()),
            other => Err(format!("{type_} is {other:?}")),
        })
        .await;
    let status = cluster.status.unwrap_or_default();
    condition(&status, type_).unwrap().message.clone()
}

/// etcd's member list as (name or `?` before it starts, learner), sorted.
async fn member_list(endpoints: &[String]) -> Result<Vec<(String, bool)>, String> {
    let mut client = etcd_client::Client::connect(endpoints, None)
        .await
        .map_err(|e| e.to_string())?;
    let list = tokio::time::timeout(Duration::from_secs(2), client.member_list())
        .await
        .map_err(|_| "member list: no answer".to_string())?
        .map_err(|e| e.to_string())?;
    let mut members: Vec<(String, bool)> = (list.members().iter())
        .map(|m| {
            let name = if m.name().is_empty() { "?" } else { m.name() };
            (name.to_string(), m.is_learner())
        })
        .collect();
    members.sort();
    Ok(members)
}

fn voters(names: &[&str]) -> Vec<(String, bool)> {
    names.iter().map(|n| (n.to_string(), false)).collect()
}

/// Every distinct member list seen, polled every 100 ms through demo-etcd-0 (the member that
/// stays), with the invariants of one safe step at a time checked on each.
/// Member lists as they were seen, shared with the task that polls them.
type SeenLists = std::sync::Arc<std::sync::Mutex<Vec<Vec<(String, bool)>>>>;

fn watch_members(endpoint: String) -> (SeenLists, tokio::task::JoinHandle<()>) {
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::<Vec<(String, bool)>>::new()));
    let shared = seen.clone();
    let task = tokio::spawn(async move {
        loop {
            if let Ok(list) = member_list(std::slice::from_ref(&endpoint)).await {
                let mut seen = shared.lock().unwrap();
                if seen.last() != Some(&list) {
                    seen.push(list);
                }
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    });
    (seen, task)
}

/// At most one learner, never a name twice, and each list one change from the one before.
fn assert_one_change_at_a_time(lists: &[Vec<(String, bool)>]) {
    for list in lists {
        let learners = list.iter().filter(|m| m.1).count();
        assert!(learners <= 1, "two learners at once: {list:?}");
        let mut names: Vec<&String> = list.iter().map(|m| &m.0).filter(|n| *n != "?").collect();
        names.dedup();
        assert_eq!(
            names.len(),
            list.iter().filter(|m| m.0 != "?").count(),
            "a member twice: {list:?}"
        );
    }
    for pair in lists.windows(2) {
        let (a, b) = (pair[0].len() as i64, pair[1].len() as i64);
        assert!((a - b).abs() <= 1, "more than one member changed: {pair:?}");
    }
}

/// The recorded membership step, as a line.
fn recorded_step(cluster: &CurveCluster) -> Option<String> {
    let step = cluster
        .status
        .as_ref()?
        .record
        .as_ref()?
        .etcd_step
        .as_ref()?;
    Some(format!("{:?} {}", step.action, step.member))
}

/// Changes `spec.etcd.replicas` and SIGKILLs the operator at each step of the change: each
/// time the recorded step or etcd's member list changes. Returns the seconds to Available.
async fn resize_killing_the_operator(
    env: &TestEnv,
    operator: &mut curve_operator_e2e::operator::Operator,
    replicas: i32,
    kills: &mut usize,
) -> f64 {
    let started = Instant::now();
    env.patch_spec("demo", json!({"etcd": {"replicas": replicas}}))
        .await;
    let endpoint = env.kubelet.etcd_endpoints()[0].clone();
    let (mut last_step, mut last_list) = (
        None,
        member_list(std::slice::from_ref(&endpoint)).await.ok(),
    );
    let deadline = Instant::now() + Duration::from_secs(240);
    loop {
        let cluster = env.clusters().get("demo").await.unwrap();
        let step = recorded_step(&cluster);
        let list = member_list(std::slice::from_ref(&endpoint)).await.ok();
        let moved = (step.is_some() && step != last_step) || (list.is_some() && list != last_list);
        if moved {
            operator.kill();
            *kills += 1;
            say(&format!(
                "etcd → {replicas}: killed the operator at step {step:?}, members {list:?}"
            ));
            operator.restart().await;
            last_step = step.clone();
            if list.is_some() {
                last_list = list.clone();
            }
        }
        let status = cluster.status.clone().unwrap_or_default();
        let settled = status
            .record
            .as_ref()
            .is_some_and(|r| r.etcd_step.is_none() && r.etcd_members == Some(replicas));
        if settled && !moved {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "etcd → {replicas} did not settle: {}",
            curve_operator_e2e::env::summary(&status)
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    env.wait_available("demo", BRING_UP).await;
    started.elapsed().as_secs_f64()
}

/// m. etcd membership: 1 → 3 → 5 → 3, the operator SIGKILLed at every step, then a member
/// whose claim is deleted is replaced. Throughout: one member changes at a time, never two
/// learners, an MDS primary stays elected, and the MDS and tools follow the member list.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs a Kubernetes API server (KUBECONFIG), see e2e/README.md"]
async fn m_etcd_membership_grows_shrinks_and_replaces_one_safe_step_at_a_time() {
    let env = TestEnv::new("members", 5).await;
    let mut operator = env.start_operator().await;
    let cluster = curve_cluster("demo", json!({"etcd": {"replicas": 1}}));
    env.kubectl_stdin(&["apply", "-f", "-"], &cluster.to_string())
        .ok("apply a 1-member cluster");
    env.wait_available("demo", BRING_UP).await;
    let endpoint = env.kubelet.etcd_endpoints()[0].clone();
    assert_eq!(
        member_list(std::slice::from_ref(&endpoint)).await.unwrap(),
        voters(&["demo-etcd-0"])
    );
    let (lists, lists_task) = watch_members(endpoint.clone());
    let (primaries, primaries_task) = watch_primaries(vec![endpoint.clone()]);
    let mut kills = 0;
    let mut figures = Vec::new();
    for (replicas, members) in [
        (3, vec!["demo-etcd-0", "demo-etcd-1", "demo-etcd-2"]),
        (
            5,
            vec![
                "demo-etcd-0",
                "demo-etcd-1",
                "demo-etcd-2",
                "demo-etcd-3",
                "demo-etcd-4",
            ],
        ),
        (3, vec!["demo-etcd-0", "demo-etcd-1", "demo-etcd-2"]),
    ] {
        let before = member_list(std::slice::from_ref(&endpoint))
            .await
            .unwrap()
            .len();
        let took = resize_killing_the_operator(&env, &mut operator, replicas, &mut kills).await;
        figures.push(format!("{before} → {replicas}: {took:.1} s"));
        assert_eq!(
            member_list(std::slice::from_ref(&endpoint)).await.unwrap(),
            voters(&members)
        );
        // Everything that knows the endpoints follows: the MDS config and tools.conf.
        let mds_conf = env
            .api::<ConfigMap>()
            .get("demo-mds")
            .await
            .unwrap()
            .data
            .unwrap()["mds.conf"]
            .clone();
        let endpoints_line = mds_conf
            .lines()
            .find_map(|l| l.strip_prefix("mds.etcd.endpoint="))
            .unwrap()
            .to_string();
        assert_eq!(
            endpoints_line.split(',').count(),
            members.len(),
            "{endpoints_line}"
        );
        let tools = env
            .api::<ConfigMap>()
            .get("demo-topology")
            .await
            .unwrap()
            .data
            .unwrap()["tools.conf"]
            .clone();
        let etcd_addr = tools
            .lines()
            .find_map(|l| l.strip_prefix("etcdAddr="))
            .unwrap()
            .to_string();
        assert_eq!(etcd_addr.split(',').count(), members.len(), "{etcd_addr}");
        let set = env.api::<StatefulSet>().get("demo-etcd").await.unwrap();
        assert_eq!(set.spec.unwrap().replicas, Some(replicas));
    }
    // Events are published after the status that tells the step: give the last one a moment.
    for reason in ["EtcdMemberAdded", "EtcdMemberPromoted", "EtcdMemberRemoved"] {
        eventually(
            &format!("an {reason} event"),
            Duration::from_secs(10),
            || async {
                let found = events(&env, reason).await;
                (!found.is_empty())
                    .then_some(())
                    .ok_or("none yet".to_string())
            },
        )
        .await;
    }

    // A lost volume: the claim and the pod go; the new pod finds no data and is refused by its
    // data check; the operator removes the member and adds it back empty.
    let started = Instant::now();
    let old_list = member_list(std::slice::from_ref(&endpoint)).await.unwrap();
    let claims = env.api::<PersistentVolumeClaim>();
    claims
        .delete("data-demo-etcd-2", &Default::default())
        .await
        .unwrap();
    env.api::<Pod>()
        .delete("demo-etcd-2", &Default::default())
        .await
        .unwrap();
    wait_event(&env, "EtcdMemberReplaced", "demo", "demo-etcd-2").await;
    env.wait_available("demo", BRING_UP).await;
    let replaced = started.elapsed().as_secs_f64();
    assert_eq!(
        member_list(std::slice::from_ref(&endpoint)).await.unwrap(),
        old_list
    );
    figures.push(format!("replace demo-etcd-2: {replaced:.1} s"));

    lists_task.abort();
    primaries_task.abort();
    let lists = lists.lock().unwrap().clone();
    assert_one_change_at_a_time(&lists);
    let primaries = primaries.lock().unwrap().clone();
    say(&format!(
        "etcd membership: {}; operator SIGKILLed {kills} times; {} member lists seen; MDS primary changes {}",
        figures.join(", "),
        lists.len(),
        primaries.len().saturating_sub(1)
    ));
    assert!(!primaries.is_empty());
}

/// Pod name → uid of a cluster's etcd, MDS and ChunkServer pods.
async fn pod_uids(env: &TestEnv, instance: &str) -> BTreeMap<String, String> {
    (pods_of(env, instance).await.into_iter())
        .map(|p| (p.name_any(), p.uid().unwrap_or_default()))
        .collect()
}

/// Claim name → (request, capacity) of a component's claims.
async fn claim_sizes(env: &TestEnv, component: &str) -> BTreeMap<String, (String, String)> {
    let lp = ListParams::default().labels(&format!("app.kubernetes.io/component={component}"));
    let size =
        |m: Option<&BTreeMap<String, k8s_openapi::apimachinery::pkg::api::resource::Quantity>>| {
            m.and_then(|m| m.get("storage"))
                .map(|q| q.0.clone())
                .unwrap_or_default()
        };
    (env.api::<PersistentVolumeClaim>()
        .list(&lp)
        .await
        .unwrap()
        .items
        .into_iter())
    .map(|c| {
        let request = size(
            c.spec
                .as_ref()
                .and_then(|s| s.resources.as_ref()?.requests.as_ref()),
        );
        let capacity = size(c.status.as_ref().and_then(|s| s.capacity.as_ref()));
        (c.name_any(), (request, capacity))
    })
    .collect()
}

/// Waits until StatefulSet `name` exists with another uid than `old` and owns every pod of
/// `component` (it adopted them); returns its uid.
async fn wait_recreated(env: &TestEnv, name: &str, old: &str, component: &str) -> String {
    eventually(
        &format!("{name} re-created and owning its pods"),
        Duration::from_secs(60),
        || async {
            let set = env
                .api::<StatefulSet>()
                .get_opt(name)
                .await
                .map_err(|e| e.to_string())?;
            let uid = set.and_then(|s| s.uid()).ok_or("absent")?;
            if uid == old {
                return Err("the old one".into());
            }
            let lp =
                ListParams::default().labels(&format!("app.kubernetes.io/component={component}"));
            let pods = env
                .api::<Pod>()
                .list(&lp)
                .await
                .map_err(|e| e.to_string())?
                .items;
            let orphans: Vec<String> = (pods.iter())
                .filter(|p| !p.owner_references().iter().any(|o| o.uid == uid))
                .map(|p| p.name_any())
                .collect();
            if orphans.is_empty() {
                Ok(uid)
            } else {
                Err(format!("not adopted: {orphans:?}"))
            }
        },
    )
    .await
}

/// Issue 14: etcd volumes of a running cluster grow in place (claims patched, the StatefulSet
/// re-created with the new claim template, no pod restarted), the status shows each step, an
/// operator stopped between the orphaning delete and the re-apply finishes it, and a growth
/// the StorageClass does not allow is refused, changes nothing and can be undone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs a Kubernetes API server (KUBECONFIG), see e2e/README.md"]
async fn n_volumes_grow_in_place_and_a_refused_growth_can_be_undone() {
    use curve_operator_e2e::volumes::{EXPANDABLE, FIXED, FakeStorage};
    let env = TestEnv::new("grow", 3).await;
    let _storage = FakeStorage::start(env.client.clone(), &env.namespace).await;
    let mut operator = env.start_operator().await;
    let cluster: CurveCluster = serde_json::from_value(curve_cluster(
        "demo",
        json!({
            // A quota of its own: an unset one follows the volume, so the growth would also
            // roll the members with a larger quota (this scenario shows that no pod restarts).
            "etcd": {"storage": {"size": "1Gi", "storageClassName": EXPANDABLE}, "quotaBackendBytes": "256Mi"},
            "chunkservers": {"storage": {"size": "10Gi", "storageClassName": FIXED}},
        }),
    ))
    .unwrap();
    env.clusters()
        .create(&PostParams::default(), &cluster)
        .await
        .unwrap();
    env.wait_available("demo", BRING_UP).await;
    let etcd_claims = claim_sizes(&env, "etcd").await;
    assert_eq!(etcd_claims.len(), 3, "{etcd_claims:?}");
    assert!(
        etcd_claims.values().all(|(r, c)| r == "1Gi" && c == "1Gi"),
        "{etcd_claims:?}"
    );
    let uids = pod_uids(&env, "demo").await;
    let sets = env.api::<StatefulSet>();
    let etcd_set = sets.get("demo-etcd").await.unwrap().uid().unwrap();

    // Every Progressing the status goes through.
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::<(String, String)>::new()));
    let recorder = tokio::spawn({
        let (seen, clusters) = (seen.clone(), env.clusters());
        async move {
            loop {
                if let Ok(c) = clusters.get("demo").await
                    && let Some(p) = c.status.as_ref().and_then(|s| condition(s, "Progressing"))
                {
                    let entry = (p.reason.clone(), p.message.clone());
                    let mut seen = seen.lock().unwrap();
                    if seen.last() != Some(&entry) {
                        seen.push(entry);
                    }
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    });
    let started = Instant::now();
    let generation = env
        .patch_spec("demo", json!({"etcd": {"storage": {"size": "2Gi"}}}))
        .await
        .metadata
        .generation;
    let complete = env
        .wait_status(
            "demo",
            "etcd volumes grown",
            Duration::from_secs(90),
            |_, s| {
                if s.observed_generation != generation {
                    return Err("older generation".into());
                }
                match condition(s, "Progressing") {
                    Some(c) if c.reason == "Complete" => Ok(()),
                    other => Err(format!("Progressing is {other:?}")),
                }
            },
        )
        .await;
    let took = started.elapsed();
    recorder.abort();
    let mut seen = std::mem::take(&mut *seen.lock().unwrap());
    // The recorder may not have polled since: the status that ended the wait is the last.
    let last = condition(complete.status.as_ref().unwrap(), "Progressing").unwrap();
    let last = (last.reason.clone(), last.message.clone());
    if seen.last() != Some(&last) {
        seen.push(last);
    }
    for (reason, message) in &seen {
        say(&format!("Progressing {reason}: {message}"));
    }
    say(&format!("etcd volumes 1Gi → 2Gi in {took:.1?}"));
    let expanding: Vec<&String> = (seen.iter())
        .filter(|(r, _)| r == "VolumeExpansion")
        .map(|(_, m)| m)
        .collect();
    assert!(
        expanding
            .iter()
            .all(|m| m.starts_with("etcd volumes 1Gi → 2Gi: ")),
        "{seen:?}"
    );
    assert!(
        expanding
            .iter()
            .any(|m| m.contains("file system resize pending")),
        "the node's file system resize is shown: {seen:?}"
    );
    assert_eq!(
        seen.last().map(|(r, _)| r.as_str()),
        Some("Complete"),
        "{seen:?}"
    );
    let grown = claim_sizes(&env, "etcd").await;
    assert!(
        grown.values().all(|(r, c)| r == "2Gi" && c == "2Gi"),
        "{grown:?}"
    );
    let recreated = wait_recreated(&env, "demo-etcd", &etcd_set, "etcd").await;
    let template = sets
        .get("demo-etcd")
        .await
        .unwrap()
        .spec
        .unwrap()
        .volume_claim_templates
        .unwrap();
    assert_eq!(
        template[0]
            .spec
            .as_ref()
            .unwrap()
            .resources
            .as_ref()
            .unwrap()
            .requests
            .as_ref()
            .unwrap()["storage"]
            .0,
        "2Gi"
    );
    assert_eq!(pod_uids(&env, "demo").await, uids, "no pod restarted");
    env.wait_available("demo", BRING_UP).await;

    // An operator stopped between the orphaning delete and the re-apply: the pods run without
    // their StatefulSet, and the restarted operator re-creates it (not a new bring-up).
    operator.kill();
    env.kubectl(&["delete", "statefulset", "demo-etcd", "--cascade=orphan"])
        .ok("orphan the etcd StatefulSet");
    eventually("demo-etcd gone", Duration::from_secs(30), || async {
        match sets.get_opt("demo-etcd").await {
            Ok(None) => Ok(()),
            other => Err(format!("{other:?}")),
        }
    })
    .await;
    operator.restart().await;
    wait_recreated(&env, "demo-etcd", &recreated, "etcd").await;
    env.wait_available("demo", BRING_UP).await;
    assert_eq!(pod_uids(&env, "demo").await, uids, "no pod restarted");

    // The ChunkServers' StorageClass does not allow expansion: refused, nothing changes.
    let chunkserver_set = sets.get("demo-chunkserver-0").await.unwrap().uid();
    let before = claim_sizes(&env, "chunkserver").await;
    env.patch_spec(
        "demo",
        json!({"chunkservers": {"storage": {"size": "20Gi"}}}),
    )
    .await;
    let message = wait_progressing(&env, "ChangeRefused", Duration::from_secs(30)).await;
    say(&format!("ChangeRefused: {message}"));
    assert_eq!(
        message,
        format!(
            "spec.chunkservers.storage.size: cannot grow the volumes (10Gi → 20Gi): StorageClass {FIXED} does not allow volume expansion (its allowVolumeExpansion is not true); nothing was changed and they keep 10Gi (set 10Gi again, or allow expansion)"
        )
    );
    assert_kubectl_row(&env, "demo", &[("PROGRESS", "ChangeRefused")]);
    env.settle(&operator, "demo").await;
    assert_eq!(claim_sizes(&env, "chunkserver").await, before);
    assert_eq!(
        sets.get("demo-chunkserver-0").await.unwrap().uid(),
        chunkserver_set
    );
    // The way back is accepted by the API server, and the cluster is whole again.
    env.patch_spec(
        "demo",
        json!({"chunkservers": {"storage": {"size": "10Gi"}}}),
    )
    .await;
    env.wait_available("demo", BRING_UP).await;
    assert_eq!(pod_uids(&env, "demo").await, uids, "no pod restarted");
}

/// The Prometheus Operator's two CRDs as this suite installs them: the kinds and names only,
/// any content kept (the suite is not the Prometheus Operator and validates nothing).
fn monitoring_crds() -> String {
    ["PodMonitor", "PrometheusRule"]
        .iter()
        .map(|kind| {
            let plural = format!("{}s", kind.to_lowercase());
            format!(
                r#"apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {{name: {plural}.monitoring.coreos.com}}
spec:
  group: monitoring.coreos.com
  scope: Namespaced
  names: {{kind: {kind}, plural: {plural}, listKind: {kind}List, singular: {singular}}}
  versions:
  - name: v1
    served: true
    storage: true
    schema: {{openAPIV3Schema: {{type: object, x-kubernetes-preserve-unknown-fields: true}}}}
"#,
                singular = kind.to_lowercase()
            )
        })
        .collect::<Vec<_>>()
        .join("---\n")
}

/// Deletes the suite's monitoring CRDs on drop (they are cluster-wide).
struct MonitoringCrds;

impl MonitoringCrds {
    fn remove() {
        kubectl(
            &[
                "delete",
                "crd",
                "podmonitors.monitoring.coreos.com",
                "prometheusrules.monitoring.coreos.com",
                "--ignore-not-found",
                "--wait=true",
            ],
            None,
        );
    }
}

impl Drop for MonitoringCrds {
    fn drop(&mut self) {
        Self::remove();
    }
}

/// The scrape targets a Prometheus Operator derives from the cluster's PodMonitors: every pod
/// matching a monitor's selector, on the container port the endpoint names, with the
/// endpoint's static relabelings and the namespace and pod labels.
async fn pod_monitor_targets(
    env: &TestEnv,
    monitors: &[Value],
) -> Vec<curve_operator_e2e::prometheus::Target> {
    let pods: Api<Pod> = env.api();
    let mut targets = Vec::new();
    for monitor in monitors {
        let selector: BTreeMap<String, String> =
            serde_json::from_value(monitor["spec"]["selector"]["matchLabels"].clone()).unwrap();
        let selector = selector
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join(",");
        for endpoint in monitor["spec"]["podMetricsEndpoints"].as_array().unwrap() {
            for pod in pods
                .list(&ListParams::default().labels(&selector))
                .await
                .unwrap()
            {
                let port = (pod.spec.iter().flat_map(|s| &s.containers))
                    .flat_map(|c| c.ports.iter().flatten())
                    .find(|p| p.name.as_deref() == endpoint["port"].as_str())
                    .map(|p| p.container_port)
                    .expect("the endpoint's port is a named container port");
                let mut labels = vec![
                    ("namespace".to_string(), env.namespace.clone()),
                    ("pod".to_string(), pod.name_any()),
                ];
                for relabel in endpoint["relabelings"].as_array().unwrap() {
                    labels.push((
                        relabel["targetLabel"].as_str().unwrap().to_string(),
                        relabel["replacement"].as_str().unwrap().to_string(),
                    ));
                }
                targets.push(curve_operator_e2e::prometheus::Target {
                    job: monitor["metadata"]["name"].as_str().unwrap().to_string(),
                    address: format!("{}:{port}", pod_ip(&pod).expect("a pod IP")),
                    path: endpoint["path"].as_str().unwrap().to_string(),
                    labels,
                    honor_labels: endpoint["honorLabels"].as_bool().unwrap_or(false),
                });
            }
        }
    }
    targets
}

fn list_json(env: &TestEnv, resource: &str) -> Vec<Value> {
    let out = env.kubectl(&["get", resource, "-o", "json"]).ok(resource);
    let list: Value = serde_json::from_str(&out).unwrap();
    list["items"].as_array().cloned().unwrap_or_default()
}

/// The alerts whose expression Prometheus finds true now, sorted by name: `name: result`.
async fn true_alerts(
    prometheus: &curve_operator_e2e::prometheus::Prometheus,
    alerts: &[Value],
) -> Vec<String> {
    let mut firing = Vec::new();
    for alert in alerts {
        let expr = alert["expr"].as_str().unwrap();
        let result = prometheus
            .query(expr)
            .await
            .unwrap_or_else(|e| panic!("{expr}: {e}"));
        if !result.is_empty() {
            firing.push(format!("{}: {result:?}", alert["alert"].as_str().unwrap()));
        }
    }
    firing.sort();
    firing
}

/// Monitoring waits for the Prometheus Operator: while its kinds are not served the condition
/// says so and nothing else changes; once its CRDs are installed the operator applies the
/// PodMonitors and the PrometheusRule (as soon as they are established), a real Prometheus
/// scraping what the PodMonitors select gets etcd's and the MDS's metrics and the operator's,
/// no alert of the healthy cluster has a result, every dashboard expression runs, one etcd
/// member down makes exactly its alerts true and they clear once it is back, and turning
/// monitoring off deletes them.
#[tokio::test]
#[ignore]
async fn o_monitoring_appears_when_the_prometheus_operator_does() {
    MonitoringCrds::remove();
    let _crds = MonitoringCrds;
    let env = TestEnv::new("monitor", 3).await;
    // Curve's pool metrics after 2 s, not 60 (the logical pool space dashboard reads them).
    env.kubelet.set_curve_settings(CurveSettings {
        // A heartbeat every second, missed after 5 (CPU hiccups must not flap it UNSTABLE).
        miss_timeout: Duration::from_secs(5),
        heartbeat_interval: Duration::from_secs(1),
        metric_interval: Duration::from_secs(2),
        ..CurveSettings::default()
    });
    let operator = env.start_operator().await;
    env.apply_example("curvecluster-monitored.yaml");
    let missing = wait_condition(&env, "Monitoring", "PrometheusOperatorMissing", BRING_UP).await;
    say(&format!("without the CRDs: Monitoring False, {missing}"));
    env.wait_available("demo", BRING_UP).await;
    assert_complete(&env, "demo", 3, 3, 3).await;
    env.wait_status(
        "demo",
        "the pools' space read",
        Duration::from_secs(60),
        |_, s| {
            let pools = s
                .health
                .as_ref()
                .map(|h| h.logical_pools.clone())
                .unwrap_or_default();
            if !pools.is_empty() && pools.iter().all(|p| p.capacity_bytes.is_some()) {
                Ok(())
            } else {
                Err(format!("pools: {pools:?}"))
            }
        },
    )
    .await;

    let installed = Instant::now();
    cluster::kubectl(&["apply", "-f", "-"], Some(&monitoring_crds()))
        .ok("install the monitoring CRDs");
    for crd in ["podmonitors", "prometheusrules"] {
        cluster::kubectl(
            &[
                "wait",
                "--for=condition=Established",
                &format!("crd/{crd}.monitoring.coreos.com"),
                "--timeout=30s",
            ],
            None,
        )
        .ok("wait for the CRD");
    }
    let established = installed.elapsed().as_secs_f64();
    let applied = wait_condition(&env, "Monitoring", "Applied", Duration::from_secs(90)).await;
    say(&format!(
        "CRDs applied → established after {established:.1} s → Monitoring True after {:.1} s: {applied}",
        installed.elapsed().as_secs_f64()
    ));
    let monitors = list_json(&env, "podmonitors.monitoring.coreos.com");
    let rules = list_json(&env, "prometheusrules.monitoring.coreos.com");
    let names = |items: &[Value]| -> Vec<String> {
        items
            .iter()
            .map(|o| o["metadata"]["name"].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(
        names(&monitors),
        ["demo-chunkserver", "demo-etcd", "demo-mds"]
    );
    assert_eq!(names(&rules), ["demo-alerts"]);
    for object in monitors.iter().chain(&rules) {
        assert_eq!(
            object["metadata"]["labels"]["release"], "kube-prometheus-stack",
            "{object}"
        );
        assert_eq!(
            object["metadata"]["ownerReferences"][0]["kind"], "CurveCluster",
            "{object}"
        );
    }
    let alerts = rules[0]["spec"]["groups"][0]["rules"]
        .as_array()
        .unwrap()
        .clone();
    // As many as the operator renders for this example (the golden file the unit tier checks).
    let golden = std::fs::read_to_string(
        curve_operator_e2e::util::repo_root().join("tests/golden/curvecluster-monitored.yaml"),
    )
    .expect("the monitored example's golden rendering");
    assert_eq!(alerts.len(), golden.matches("alert: ").count());

    // A real Prometheus scraping the PodMonitors' targets and the operator.
    let mut targets = pod_monitor_targets(&env, &monitors).await;
    let per_component = |component: &str, targets: &[curve_operator_e2e::prometheus::Target]| {
        targets
            .iter()
            .filter(|t| {
                t.labels
                    .iter()
                    .any(|(k, v)| k == "curve_component" && v == component)
            })
            .count()
    };
    assert_eq!(
        [
            per_component("etcd", &targets),
            per_component("mds", &targets),
            per_component("chunkserver", &targets)
        ],
        [3, 3, 3]
    );
    // The emulation runs no ChunkServer process: nothing answers on their ports.
    targets.retain(|t| !t.labels.iter().any(|(_, v)| v == "chunkserver"));
    // As the chart's ServiceMonitor has the operator scraped: its series keep their own
    // `namespace` (the CurveCluster's) over the target's (the operator's).
    targets.push(curve_operator_e2e::prometheus::Target {
        job: "curve-operator-metrics".into(),
        address: operator.http_addr.clone(),
        path: "/metrics".into(),
        labels: vec![("namespace".into(), "curve-system".into())],
        honor_labels: true,
    });
    let prometheus = curve_operator_e2e::prometheus::Prometheus::start(
        &targets,
        &env.dir.path().join("prometheus.log"),
    )
    .await;
    let up = r#"up{namespace="NS",curve_cluster="demo"}"#.replace("NS", &env.namespace);
    let scraped = Instant::now();
    eventually(
        "Prometheus to scrape every etcd and MDS pod",
        Duration::from_secs(30),
        || {
            let (prometheus, up) = (&prometheus, up.clone());
            async move {
                let results = prometheus.query(&format!("sum({up})")).await?;
                let value = results
                    .first()
                    .and_then(|r| r["value"][1].as_str())
                    .unwrap_or("0")
                    .to_string();
                if value == "6" {
                    Ok(())
                } else {
                    Err(format!("{value} of 6 targets up"))
                }
            }
        },
    )
    .await;
    say(&format!(
        "6 Curve targets (3 etcd, 3 MDS) up after {:.1} s",
        scraped.elapsed().as_secs_f64()
    ));
    eventually(
        "the operator's gauges in Prometheus",
        Duration::from_secs(30),
        || {
            let prometheus = &prometheus;
            async move {
                let primary = prometheus.query("sum(curve_operator_mds_primary)").await?;
                match primary.first().and_then(|r| r["value"][1].as_str()) {
                    Some("1") => Ok(()),
                    other => Err(format!("sum(curve_operator_mds_primary) is {other:?}")),
                }
            }
        },
    )
    .await;
    let firing = true_alerts(&prometheus, &alerts).await;
    say(&format!(
        "{} alert expressions evaluated by Prometheus on the healthy cluster: {} true",
        alerts.len(),
        firing.len()
    ));
    assert!(firing.is_empty(), "alerts of a healthy cluster: {firing:?}");

    // Every expression of every dashboard, for this cluster, once each target was scraped a
    // few times (rates need two samples).
    prometheus
        .wait_scraped("", targets.len(), 5, Duration::from_secs(30))
        .await;
    let substitution = Substitution {
        namespace: env.namespace.clone(),
        cluster: "demo".into(),
        interval: "1m".into(),
        pods: 3,
    };
    let checker = Checker::new(&prometheus, substitution).await;
    let report = checker.check_all(&curve_operator::dashboards::all()).await;
    let total = report.total();
    say(&format!(
        "dashboards: {} expressions, {} returned data ({} of {} over the operator's and etcd's \
         metrics, {} of {} over Curve daemons' from the MDS stand-ins); {} failed",
        total.all,
        total.data + total.parses_with_data,
        total.data,
        total.all - total.parses,
        total.parses_with_data,
        total.parses,
        report.failures.len()
    ));
    for (uid, c) in &report.counts {
        say(&format!(
            "dashboards: {uid}: {} expressions, {} returned data, {} over Curve daemons' metrics parse",
            c.all,
            c.data + c.parses_with_data,
            c.parses
        ));
    }
    assert!(
        report.failures.is_empty(),
        "dashboard expressions:\n{}",
        report.failures.join("\n")
    );
    for uid in ["curve-overview", "curve-etcd"] {
        let c = report.counts[uid];
        assert_eq!(c.data, c.all, "{uid}: every expression returns data");
    }

    // A member down (its pod deleted, the new one held): exactly the alerts that should say so
    // are true, and every alert clears once it is back. The emulation scrapes no ChunkServer,
    // so a ChunkServer down has no CurveTargetDown.
    let alerts_now = |want: Vec<&'static str>| {
        let (prometheus, alerts) = (&prometheus, &alerts);
        move || {
            let want = want.clone();
            async move {
                let names: Vec<String> = (true_alerts(prometheus, alerts).await.iter())
                    .map(|a| a.split(':').next().unwrap_or_default().to_string())
                    .collect();
                if names == want {
                    Ok(())
                } else {
                    Err(format!("true: {names:?}"))
                }
            }
        }
    };
    let failures: [(&str, &[&str], Vec<&'static str>); 4] = [
        (
            "etcd",
            &["demo-etcd-2"],
            vec!["CurveEtcdMemberDown", "CurveTargetDown"],
        ),
        (
            "chunkserver",
            &["demo-chunkserver-0-1"],
            vec!["CurveChunkServersDown", "CurveCopysetsUnhealthy"],
        ),
        // Two of three copies gone: more than the pool can lose, and not Available.
        (
            "chunkserver",
            &["demo-chunkserver-0-1", "demo-chunkserver-0-2"],
            vec![
                "CurveChunkServersBeyondTolerance",
                "CurveChunkServersDown",
                "CurveClusterNotAvailable",
                "CurveCopysetsUnhealthy",
            ],
        ),
        // Every MDS gone: no primary, their targets down, not Available.
        (
            "mds",
            &["demo-mds-0", "demo-mds-1", "demo-mds-2"],
            vec![
                "CurveClusterNotAvailable",
                "CurveHealthUnknown",
                "CurveMdsNoPrimary",
                "CurveTargetDown",
            ],
        ),
    ];
    for (component, pods, expected) in failures {
        env.kubelet.hold(component);
        let down = Instant::now();
        for pod in pods {
            env.api::<Pod>()
                .delete(pod, &Default::default())
                .await
                .unwrap_or_else(|e| panic!("delete {pod}: {e}"));
        }
        let pods = pods.join(" and ");
        eventually(
            &format!("the alerts of {pods} down"),
            Duration::from_secs(60),
            alerts_now(expected.clone()),
        )
        .await;
        say(&format!(
            "{pods} down: {expected:?} true after {:.1} s, no other alert",
            down.elapsed().as_secs_f64()
        ));
        env.kubelet.release(component);
        let back = Instant::now();
        eventually(
            "every alert to clear",
            Duration::from_secs(90),
            alerts_now(Vec::new()),
        )
        .await;
        say(&format!(
            "{pods} back: every alert false after {:.1} s",
            back.elapsed().as_secs_f64()
        ));
    }

    env.patch_spec("demo", json!({"monitoring": {"enabled": false}}))
        .await;
    env.wait_status(
        "demo",
        "no Monitoring condition",
        Duration::from_secs(30),
        |_, s| match condition(s, "Monitoring") {
            None => Ok(()),
            Some(c) => Err(format!("Monitoring is {}", c.reason)),
        },
    )
    .await;
    eventually(
        "the monitoring objects to go",
        Duration::from_secs(30),
        || async {
            let left = list_json(&env, "podmonitors.monitoring.coreos.com").len()
                + list_json(&env, "prometheusrules.monitoring.coreos.com").len();
            if left == 0 {
                Ok(())
            } else {
                Err(format!("{left} left"))
            }
        },
    )
    .await;
}
