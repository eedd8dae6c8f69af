//! The reconciler against a mocked API server (tower-test), request by request.

#[path = "support/fake_api.rs"]
mod fake_api;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use kube::core::DeserializeGuard;
use serde_json::{Value, json};

use curve_operator::api::{CurveCluster, Phase};
use curve_operator::etcd::{
    ChangeOutcome, ClusterKey, EtcdObservation, EtcdObserver, MemberChange, MemberHealth,
    PrimaryObservation,
};
use curve_operator::reconcile::blockers::EventListing;
use curve_operator::reconcile::events::EventSink;
use curve_operator::reconcile::model::event::ClusterEvent;
use curve_operator::reconcile::snapshot::{CacheWriters, Caches, replace_all};
use curve_operator::reconcile::{Context, reconcile};
use fake_api::FakeApi;

const CLUSTERS: &str = "/apis/curve.opencurve.io/v1alpha1/namespaces/ns/curveclusters";
const PODS: &str = "/api/v1/namespaces/ns/pods";
const SETS: &str = "/apis/apps/v1/namespaces/ns/statefulsets";
const MAPS: &str = "/api/v1/namespaces/ns/configmaps";
const SERVICES: &str = "/api/v1/namespaces/ns/services";
const BUDGETS: &str = "/apis/policy/v1/namespaces/ns/poddisruptionbudgets";
const JOBS: &str = "/apis/batch/v1/namespaces/ns/jobs";
const CLAIMS: &str = "/api/v1/namespaces/ns/persistentvolumeclaims";
const NODES: &str = "/api/v1/nodes";
// curve-csi's objects (spec.csi).
const SERVICE_ACCOUNTS: &str = "/api/v1/namespaces/ns/serviceaccounts";
const ROLES: &str = "/apis/rbac.authorization.k8s.io/v1/namespaces/ns/roles";
const ROLE_BINDINGS: &str = "/apis/rbac.authorization.k8s.io/v1/namespaces/ns/rolebindings";
const DAEMON_SETS: &str = "/apis/apps/v1/namespaces/ns/daemonsets";
const DEPLOYMENTS: &str = "/apis/apps/v1/namespaces/ns/deployments";
const CLUSTER_ROLES: &str = "/apis/rbac.authorization.k8s.io/v1/clusterroles";
const CLUSTER_ROLE_BINDINGS: &str = "/apis/rbac.authorization.k8s.io/v1/clusterrolebindings";
const CSI_DRIVERS: &str = "/apis/storage.k8s.io/v1/csidrivers";
const STORAGE_CLASSES: &str = "/apis/storage.k8s.io/v1/storageclasses";
const SELECTOR: &str = "app.kubernetes.io/name=curve,app.kubernetes.io/instance=demo,app.kubernetes.io/managed-by=curve-operator";

struct FakeEtcd {
    observation: Mutex<EtcdObservation>,
    calls: Mutex<Vec<Vec<String>>>,
    forgotten: Mutex<Vec<ClusterKey>>,
    /// Member-list changes asked for, in order.
    changes: Mutex<Vec<MemberChange>>,
    /// The endpoints each change was sent through.
    change_endpoints: Mutex<Vec<Vec<String>>>,
}

impl FakeEtcd {
    fn new() -> Self {
        FakeEtcd {
            observation: Mutex::new(EtcdObservation {
                primary: PrimaryObservation::NoCandidate,
                members: None,
            }),
            calls: Mutex::default(),
            forgotten: Mutex::default(),
            changes: Mutex::default(),
            change_endpoints: Mutex::default(),
        }
    }
}

impl EtcdObserver for FakeEtcd {
    async fn observe(&self, _cluster: &ClusterKey, endpoints: &[String]) -> EtcdObservation {
        self.calls.lock().unwrap().push(endpoints.to_vec());
        self.observation.lock().unwrap().clone()
    }
    fn forget(&self, cluster: &ClusterKey) {
        self.forgotten.lock().unwrap().push(cluster.clone());
    }
    async fn change_members(
        &self,
        _cluster: &ClusterKey,
        endpoints: &[String],
        change: &MemberChange,
    ) -> Result<ChangeOutcome, String> {
        self.changes.lock().unwrap().push(change.clone());
        self.change_endpoints
            .lock()
            .unwrap()
            .push(endpoints.to_vec());
        Ok(ChangeOutcome::Done)
    }
}

#[derive(Default)]
struct RecordedEvents(Mutex<Vec<ClusterEvent>>);

impl EventSink for RecordedEvents {
    async fn publish(&self, _cluster: &CurveCluster, event: ClusterEvent) {
        self.0.lock().unwrap().push(event);
    }
}

struct Harness {
    api: FakeApi,
    ctx: Arc<Context<FakeEtcd, RecordedEvents>>,
    /// The caches' writing ends: filled from the fake before each reconcile, as the watches
    /// would have.
    writers: Mutex<CacheWriters>,
}

impl Harness {
    fn new(spec: Value) -> Self {
        let api = FakeApi::default();
        api.put(
            CLUSTERS,
            json!({
                "apiVersion": "curve.opencurve.io/v1alpha1", "kind": "CurveCluster",
                "metadata": {"name": "demo", "namespace": "ns", "uid": "uid-1", "generation": 1, "resourceVersion": "1"},
                "spec": spec
            }),
        );
        Harness::operator_of(api)
    }

    /// A fresh operator (caches, context, fake etcd) against `api`.
    fn operator_of(api: FakeApi) -> Self {
        let (caches, writers) = Caches::unshared();
        // A StatefulSet's Events are listed as soon as its pods are missing (the patience
        // has its own test).
        let at_once = EventListing {
            patience: Duration::ZERO,
            ..EventListing::default()
        };
        let ctx = Arc::new(
            Context::new(
                api.client(),
                caches,
                FakeEtcd::new(),
                RecordedEvents::default(),
            )
            .with_set_event_listing(at_once),
        );
        Harness {
            api,
            ctx,
            writers: Mutex::new(writers),
        }
    }

    fn cluster(&self) -> CurveCluster {
        serde_json::from_value(self.api.get(CLUSTERS, "demo").unwrap()).unwrap()
    }

    /// A new operator process against the same API server: fresh caches and context.
    fn restarted(previous: &Harness) -> Self {
        let restarted = Harness::operator_of(previous.api.clone());
        *restarted.ctx.etcd.observation.lock().unwrap() =
            previous.ctx.etcd.observation.lock().unwrap().clone();
        restarted
    }

    /// Plays the watches: every cache holds what the fake API server holds now.
    fn sync_caches(&self) {
        let mut writers = self.writers.lock().unwrap();
        let w = &mut *writers;
        replace_all(&mut w.pods, self.api.objects(PODS));
        replace_all(&mut w.stateful_sets, self.api.objects(SETS));
        replace_all(&mut w.config_maps, self.api.objects(MAPS));
        replace_all(&mut w.services, self.api.objects(SERVICES));
        replace_all(&mut w.budgets, self.api.objects(BUDGETS));
        replace_all(&mut w.jobs, self.api.objects(JOBS));
        replace_all(&mut w.claims, self.api.objects(CLAIMS));
        replace_all(&mut w.nodes, self.api.objects(NODES));
        replace_all(&mut w.service_accounts, self.api.objects(SERVICE_ACCOUNTS));
        replace_all(&mut w.roles, self.api.objects(ROLES));
        replace_all(&mut w.role_bindings, self.api.objects(ROLE_BINDINGS));
        replace_all(&mut w.daemon_sets, self.api.objects(DAEMON_SETS));
        replace_all(&mut w.deployments, self.api.objects(DEPLOYMENTS));
        replace_all(&mut w.cluster_roles, self.api.objects(CLUSTER_ROLES));
        replace_all(
            &mut w.cluster_role_bindings,
            self.api.objects(CLUSTER_ROLE_BINDINGS),
        );
        replace_all(&mut w.csi_drivers, self.api.objects(CSI_DRIVERS));
        replace_all(&mut w.storage_classes, self.api.objects(STORAGE_CLASSES));
    }

    /// One reconcile on freshly synced caches; every request it sent must be granted by the
    /// operator's RBAC.
    async fn reconcile(
        &self,
    ) -> Result<kube::runtime::controller::Action, curve_operator::reconcile::error::Error> {
        self.sync_caches();
        let result = reconcile(
            Arc::new(DeserializeGuard(Ok(self.cluster()))),
            self.ctx.clone(),
        )
        .await;
        assert_granted(&self.api.requests());
        assert_granted(&self.api.creations());
        result
    }

    /// One reconcile on the caches as they are: the watches have not delivered what changed
    /// on the server since the last sync.
    async fn reconcile_on_stale_caches(
        &self,
    ) -> Result<kube::runtime::controller::Action, curve_operator::reconcile::error::Error> {
        reconcile(
            Arc::new(DeserializeGuard(Ok(self.cluster()))),
            self.ctx.clone(),
        )
        .await
    }

    fn events(&self) -> Vec<String> {
        std::mem::take(&mut *self.ctx.events.0.lock().unwrap())
            .into_iter()
            .map(|e| e.reason)
            .collect()
    }

    fn condition(&self, type_: &str) -> (String, String) {
        let cluster = self.cluster();
        let condition = cluster
            .status
            .as_ref()
            .unwrap()
            .conditions
            .iter()
            .find(|c| c.type_ == type_)
            .unwrap()
            .clone();
        (condition.status, condition.reason)
    }

    /// Plays the Job controller: every Job succeeded.
    fn succeed_jobs(&self) {
        for name in self.api.names(JOBS) {
            let mut job = self.api.get(JOBS, &name).unwrap();
            job["status"] = json!({"succeeded": 1});
            self.api.put(JOBS, job);
        }
    }

    /// Plays the kubelet: a pod of the component, scheduled on `node` with `ip`, ready or not.
    fn pod(&self, name: &str, component: &str, ip: &str, ready: bool) {
        self.api.put(
            PODS,
            json!({
                "apiVersion": "v1", "kind": "Pod",
                "metadata": {"name": name, "namespace": "ns", "labels": labels(component)},
                "spec": {"containers": [], "nodeName": format!("node-{ip}")},
                "status": {"podIP": ip, "hostIP": ip, "phase": "Running",
                    "conditions": [{"type": "Ready", "status": if ready { "True" } else { "False" }}]}
            }),
        );
    }

    /// Plays the StatefulSet controller and the kubelet: pods 0 to 2 of StatefulSet `set`,
    /// on 10.0.0.1 to 10.0.0.3, all ready or all not.
    fn set_pods(&self, set: &str, component: &str, ready: bool) {
        for i in 0..3 {
            self.pod(
                &format!("{set}-{i}"),
                component,
                &format!("10.0.0.{}", i + 1),
                ready,
            );
        }
    }

    /// etcd answers that the MDS at `address` is primary.
    fn elect(&self, address: &str) {
        self.ctx.etcd.observation.lock().unwrap().primary = PrimaryObservation::Elected {
            address: address.into(),
        };
    }
}

/// The labels the operator puts on the objects of one of the cluster's components.
fn labels(component: &str) -> Value {
    json!({"app.kubernetes.io/name": "curve", "app.kubernetes.io/instance": "demo",
        "app.kubernetes.io/component": component, "app.kubernetes.io/managed-by": "curve-operator"})
}

/// The RBAC grant (API group, resource, verb) a request as FakeApi records it needs, e.g.
/// `DELETE /api/v1/namespaces/ns/persistentvolumeclaims?labelSelector=…` needs
/// ("", "persistentvolumeclaims", "deletecollection").
fn needed_grant(request: &str) -> (String, String, String) {
    let (method, target) = request.split_once(' ').unwrap();
    let path = target.split('?').next().unwrap();
    let parts: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    let (group, rest) = if parts[0] == "api" {
        ("", &parts[2..])
    } else {
        (parts[1], &parts[3..])
    };
    let rest = if rest.first() == Some(&"namespaces") && rest.len() > 2 {
        &rest[2..]
    } else {
        rest
    };
    let resource = match rest {
        [resource] | [resource, _] => resource.to_string(),
        [resource, _, subresource] => format!("{resource}/{subresource}"),
        _ => panic!("unexpected path {path}"),
    };
    let verb = match (method, rest.len() > 1) {
        ("GET", false) => "list",
        ("GET", true) => "get",
        ("POST", _) => "create",
        ("PUT", _) => "update",
        ("PATCH", _) => "patch",
        ("DELETE", false) => "deletecollection",
        ("DELETE", true) => "delete",
        _ => panic!("unexpected request {request}"),
    };
    (group.to_string(), resource, verb.to_string())
}

fn assert_granted(requests: &[String]) {
    use curve_operator::runtime::rbac::{Scope, grants};
    let granted = grants(&[Scope::Watched, Scope::Cluster]);
    for request in requests {
        let needed = needed_grant(request);
        assert!(
            granted.contains(&needed),
            "{request} needs {needed:?}, which the operator's RBAC does not grant"
        );
    }
}

#[test]
fn requests_map_to_rbac_grants() {
    let grant = |g: &str, r: &str, v: &str| (g.to_string(), r.to_string(), v.to_string());
    assert_eq!(
        needed_grant(&format!("DELETE {CLAIMS}?labelSelector={SELECTOR}")),
        grant("", "persistentvolumeclaims", "deletecollection")
    );
    assert_eq!(
        needed_grant(&format!("PATCH {CLUSTERS}/demo/status")),
        grant("curve.opencurve.io", "curveclusters/status", "patch")
    );
    assert_eq!(
        needed_grant(&format!("GET {PODS}?labelSelector={SELECTOR}")),
        grant("", "pods", "list")
    );
    assert_eq!(
        needed_grant(&format!("PATCH {SETS}/demo-etcd")),
        grant("apps", "statefulsets", "patch")
    );
    assert_eq!(
        needed_grant("GET /api/v1/nodes/node-1"),
        grant("", "nodes", "get")
    );
    assert_eq!(
        needed_grant(&format!("POST {JOBS}")),
        grant("batch", "jobs", "create")
    );
}

fn minimal_spec() -> Value {
    json!({"image": "opencurvedocker/curvebs:v1.2.6", "chunkservers": {"replicas": 3, "storage": {"size": "100Gi"}}})
}

const SECRETS: &str = "/api/v1/namespaces/ns/secrets";

fn secret_created() -> Vec<String> {
    vec![
        format!("GET {SECRETS}/demo-root-password"),
        format!("POST {SECRETS}"),
    ]
}

fn applies(component: &str) -> Vec<String> {
    let mut maps = vec![format!("PATCH {MAPS}/demo-{component}")];
    if component == "etcd" {
        // The members' startup config.
        maps.push(format!("PATCH {MAPS}/demo-etcd-members"));
    }
    maps.into_iter()
        .chain([
            format!("PATCH {SERVICES}/demo-{component}"),
            format!("PATCH {BUDGETS}/demo-{component}"),
            format!("PATCH {SETS}/demo-{component}"),
        ])
        .collect()
}

fn status_write() -> String {
    format!("PATCH {CLUSTERS}/demo/status")
}

fn concat(parts: Vec<Vec<String>>) -> Vec<String> {
    parts.into_iter().flatten().collect()
}

/// Brings the fake up to a quorate etcd tier: its three pods ready, the MDS tier applied.
async fn bring_up_etcd(h: &Harness) {
    h.reconcile().await.unwrap();
    h.set_pods("demo-etcd", "etcd", true);
    h.reconcile().await.unwrap();
}

/// The MDS pods ready, one elected, etcd healthy; then the ChunkServer pods ready.
async fn mds_up_and_elected(h: &Harness) {
    h.set_pods("demo-mds", "mds", true);
    *h.ctx.etcd.observation.lock().unwrap() = EtcdObservation {
        primary: PrimaryObservation::Elected {
            address: "10.0.0.2:6700".into(),
        },
        members: Some(MemberHealth::all_healthy(
            "ns",
            &["demo-etcd-0", "demo-etcd-1", "demo-etcd-2"],
            0,
        )),
    };
    h.reconcile().await.unwrap();
    h.set_pods("demo-chunkserver-0", "chunkserver", true);
}

/// Brings the fake up to a fully ready cluster with an elected primary.
async fn bring_up(h: &Harness) {
    bring_up_etcd(h).await;
    mds_up_and_elected(h).await;
    // Physical pool, online check, logical pool: one Job at a time, each succeeding.
    for _ in 0..4 {
        h.reconcile().await.unwrap();
        h.succeed_jobs();
    }
    h.reconcile().await.unwrap();
    h.api.take_requests();
    h.events();
}

#[tokio::test]
async fn first_reconcile_creates_only_the_etcd_tier() {
    let h = Harness::new(minimal_spec());
    h.reconcile().await.unwrap();
    assert_eq!(
        h.api.take_requests(),
        concat(vec![applies("etcd"), vec![status_write()]])
    );
    assert!(
        h.ctx.etcd.calls.lock().unwrap().is_empty(),
        "no MDS yet: the election is not read"
    );
    let cluster = h.cluster();
    let status = cluster.status.as_ref().unwrap();
    assert_eq!(status.phase, Some(Phase::Creating));
    assert_eq!(status.etcd.as_ref().unwrap().pods.ready, "0/3");
    assert_eq!(h.events(), ["Created"]);
    let set = h.api.get(SETS, "demo-etcd").unwrap();
    assert_eq!(set["metadata"]["ownerReferences"][0]["uid"], "uid-1");
    assert!(set["metadata"]["annotations"]["curve.opencurve.io/applied-hash"].is_string());
}

/// A pod the StatefulSet controller cannot create exists nowhere: its Events are listed (only
/// for a StatefulSet with pods missing) and the tier names the pod and the API server's answer.
#[tokio::test]
async fn a_pod_that_cannot_be_created_is_named_from_the_statefulset_controllers_event() {
    let h = Harness::new(minimal_spec());
    h.reconcile().await.unwrap();
    h.api.take_requests();
    h.pod("demo-etcd-1", "etcd", "10.0.0.2", false);
    h.pod("demo-etcd-2", "etcd", "10.0.0.3", false);
    h.api.put(
        "/api/v1/namespaces/ns/events",
        json!({
            "apiVersion": "v1", "kind": "Event",
            "metadata": {"name": "demo-etcd.1", "namespace": "ns"},
            "involvedObject": {"kind": "StatefulSet", "name": "demo-etcd", "namespace": "ns"},
            "reason": "FailedCreate", "type": "Warning", "count": 4,
            "lastTimestamp": "2026-12-07T01:00:00Z",
            "message": "create Pod demo-etcd-0 in StatefulSet demo-etcd failed error: pods \"demo-etcd-0\" is forbidden: exceeded quota: pods",
        }),
    );
    h.reconcile().await.unwrap();
    assert_eq!(
        h.api.take_requests(),
        [
            "GET /api/v1/namespaces/ns/events?fieldSelector=involvedObject.kind=StatefulSet,involvedObject.name=demo-etcd".to_string(),
            status_write()
        ]
    );
    assert_eq!(
        h.condition("EtcdQuorate"),
        ("False".into(), "PodCreateFailed".into())
    );
    let status = h.cluster().status.unwrap();
    let etcd = status
        .conditions
        .iter()
        .find(|c| c.type_ == "EtcdQuorate")
        .unwrap();
    assert!(
        etcd.message.ends_with("StatefulSet demo-etcd cannot create pod demo-etcd-0: pods \"demo-etcd-0\" is forbidden: exceeded quota: pods"),
        "{}",
        etcd.message
    );
    // Once the pod exists, no Event is read.
    h.pod("demo-etcd-0", "etcd", "10.0.0.1", false);
    h.reconcile().await.unwrap();
    assert_eq!(h.api.take_requests(), [status_write()]);
}

/// A StatefulSet whose pods are not all created yet may just be slow: its Events are not listed
/// before its missing pods stayed the same for the patience.
#[tokio::test]
async fn pods_missing_for_less_than_the_patience_cost_no_request() {
    let mut h = Harness::new(minimal_spec());
    let patient = Context::new(
        h.api.client(),
        h.ctx.caches.clone(),
        FakeEtcd::new(),
        RecordedEvents::default(),
    );
    h.ctx = Arc::new(patient.with_set_event_listing(EventListing {
        patience: Duration::from_secs(3600),
        ..EventListing::default()
    }));
    h.reconcile().await.unwrap();
    h.api.take_requests();
    h.pod("demo-etcd-1", "etcd", "10.0.0.2", false);
    for _ in 0..2 {
        h.reconcile().await.unwrap();
        assert_eq!(h.api.take_requests(), Vec::<String>::new());
    }
}

#[tokio::test]
async fn mds_tier_waits_for_etcd_quorum_and_chunkservers_for_a_primary() {
    let h = Harness::new(minimal_spec());
    h.reconcile().await.unwrap();
    h.api.take_requests();
    h.events();

    h.pod("demo-etcd-0", "etcd", "10.0.0.1", true);
    h.pod("demo-etcd-1", "etcd", "10.0.0.2", false);
    h.pod("demo-etcd-2", "etcd", "10.0.0.3", false);
    h.reconcile().await.unwrap();
    assert_eq!(
        h.api.take_requests(),
        concat(vec![vec![status_write()]]),
        "1 of 3 ready: no MDS"
    );
    assert_eq!(
        h.condition("EtcdQuorate"),
        ("False".into(), "NoQuorum".into())
    );

    h.pod("demo-etcd-1", "etcd", "10.0.0.2", true);
    h.reconcile().await.unwrap();
    assert_eq!(
        h.api.take_requests(),
        concat(vec![secret_created(), applies("mds"), vec![status_write()]])
    );
    assert_eq!(
        h.condition("EtcdQuorate"),
        ("True".into(), "Quorate".into())
    );
    assert_eq!(h.events(), ["Created", "EtcdQuorate"]);

    // MDS pods run, no candidate in etcd yet: no ChunkServers.
    h.set_pods("demo-mds", "mds", true);
    h.reconcile().await.unwrap();
    assert_eq!(h.api.take_requests(), concat(vec![vec![status_write()]]));
    assert_eq!(
        h.condition("MdsLeaderElected"),
        ("False".into(), "NoLeader".into())
    );
    assert_eq!(
        h.ctx.etcd.calls.lock().unwrap().last().unwrap(),
        &["10.0.0.1:2379", "10.0.0.2:2379", "10.0.0.3:2379"]
    );

    h.elect("10.0.0.3:6700");
    h.reconcile().await.unwrap();
    assert_eq!(
        h.api.take_requests(),
        vec![
            status_write(),
            format!("PATCH {MAPS}/demo-topology"),
            format!("PATCH {MAPS}/demo-chunkserver"),
            format!("PATCH {SERVICES}/demo-chunkserver"),
            format!("PATCH {BUDGETS}/demo-chunkserver"),
            format!("PATCH {SETS}/demo-chunkserver-0"),
        ]
    );
    let cluster = h.cluster();
    let mds = cluster.status.as_ref().unwrap().mds.clone().unwrap();
    assert_eq!(
        (mds.primary.as_deref(), mds.primary_address.as_deref()),
        (Some("demo-mds-2"), Some("10.0.0.3:6700"))
    );
    // Curve's C++ daemons take ip:port only: the ChunkServers and tools get the pods' IPs.
    let config = h.api.get(MAPS, "demo-chunkserver").unwrap();
    assert_eq!(
        config["data"]["cs_client.conf"],
        "mds.listen.addr=10.0.0.1:6700,10.0.0.2:6700,10.0.0.3:6700\nglobal.logPath=/curvebs/chunkserver/logs\n"
    );
    let tools = h.api.get(MAPS, "demo-topology").unwrap()["data"]["tools.conf"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        tools.starts_with("mdsAddr=10.0.0.1:6700,10.0.0.2:6700,10.0.0.3:6700\nmdsDummyPort=7700\netcdAddr=10.0.0.1:2379,10.0.0.2:2379,10.0.0.3:2379\n"),
        "{tools}"
    );
    // The root password is generated once into the Secret, never into a ConfigMap.
    let secret = h.api.get(SECRETS, "demo-root-password").unwrap();
    let password = secret["stringData"]["password"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(password.len(), 32);
    assert_eq!(secret["metadata"]["ownerReferences"][0]["uid"], "uid-1");
    for name in h.api.names(MAPS) {
        assert!(
            !h.api
                .get(MAPS, &name)
                .unwrap()
                .to_string()
                .contains(&password),
            "ConfigMap {name} holds the password"
        );
    }
    assert_eq!(h.events(), ["Created", "MdsPrimaryElected"]);
}

#[tokio::test]
async fn a_healthy_unchanged_cluster_sends_no_request() {
    let h = Harness::new(minimal_spec());
    bring_up(&h).await;
    assert_eq!(h.cluster().status.unwrap().phase, Some(Phase::Available));
    h.reconcile().await.unwrap();
    assert_eq!(
        h.api.take_requests(),
        Vec::<String>::new(),
        "reads come from the watch caches, and nothing changed"
    );
    assert!(h.events().is_empty());
}

#[tokio::test]
async fn a_reconcile_before_the_caches_synced_decides_nothing() {
    let h = Harness::new(minimal_spec());
    // No sync_caches(): the watches have not listed yet.
    let error = reconcile(Arc::new(DeserializeGuard(Ok(h.cluster()))), h.ctx.clone())
        .await
        .unwrap_err();
    assert_eq!(
        (error.step().as_str(), error.to_string().as_str()),
        ("read", "the pods watch cache has not synced yet")
    );
    assert!(h.api.names(SETS).is_empty(), "nothing applied");
}

#[tokio::test]
async fn a_pod_missing_the_root_secret_has_it_created_again() {
    let h = Harness::new(minimal_spec());
    bring_up(&h).await;
    // Someone deleted the Secret; an MDS pod restarting cannot start without it.
    h.api.take_requests();
    let mut pod = h.api.get(PODS, "demo-mds-1").unwrap();
    pod["status"]["containerStatuses"] = json!([{"name": "mds", "image": "x", "imageID": "", "ready": false, "restartCount": 1,
        "state": {"waiting": {"reason": "CreateContainerConfigError", "message": "secret \"demo-root-password\" not found"}}}]);
    h.api.put(PODS, pod);
    let secrets = "/api/v1/namespaces/ns/secrets";
    let before = h.api.get(secrets, "demo-root-password").unwrap();
    h.api.delete_object(secrets, "demo-root-password");
    h.reconcile().await.unwrap();
    let requests = h.api.take_requests();
    assert_eq!(
        requests[..2],
        [
            format!("GET {secrets}/demo-root-password"),
            format!("POST {secrets}")
        ]
    );
    let after = h.api.get(secrets, "demo-root-password").unwrap();
    assert_ne!(before["stringData"], after["stringData"], "a new password");
    assert!(after["stringData"]["password"].is_string());
}

#[tokio::test]
async fn a_chunkserver_pod_being_replaced_keeps_its_server_in_the_cluster_map() {
    let h = Harness::new(minimal_spec());
    bring_up(&h).await;
    let servers = |h: &Harness| -> Vec<String> {
        let map = h.api.get(MAPS, "demo-topology").unwrap()["data"]["topology.json"]
            .as_str()
            .unwrap()
            .to_string();
        let map: Value = serde_json::from_str(&map).unwrap();
        map["servers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["name"].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(
        servers(&h),
        ["node-10.0.0.1", "node-10.0.0.2", "node-10.0.0.3"]
    );
    // The StatefulSet controller recreated demo-chunkserver-0-1: not scheduled yet.
    h.api.put(
        PODS,
        json!({"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "demo-chunkserver-0-1", "namespace": "ns", "labels": labels("chunkserver")},
            "spec": {"containers": []}, "status": {"phase": "Pending"}}),
    );
    h.reconcile().await.unwrap();
    assert_eq!(
        servers(&h),
        ["node-10.0.0.1", "node-10.0.0.2", "node-10.0.0.3"],
        "create_physicalpool would delete a missing server"
    );
    // The operator restarts meanwhile: new caches, new memory; the status holds the record.
    let restarted = Harness::restarted(&h);
    restarted.reconcile().await.unwrap();
    assert_eq!(
        servers(&restarted),
        ["node-10.0.0.1", "node-10.0.0.2", "node-10.0.0.3"],
        "the record outlives the operator"
    );
}

#[tokio::test]
async fn the_primary_moving_updates_status_with_one_event() {
    let h = Harness::new(minimal_spec());
    bring_up(&h).await;
    h.elect("10.0.0.1:6700");
    h.reconcile().await.unwrap();
    assert_eq!(h.api.take_requests(), concat(vec![vec![status_write()]]));
    assert_eq!(
        h.cluster().status.unwrap().mds.unwrap().primary.as_deref(),
        Some("demo-mds-0")
    );
    assert_eq!(h.events(), ["MdsPrimaryChanged"]);
    h.reconcile().await.unwrap();
    assert_eq!(h.api.take_requests(), Vec::<String>::new());
    assert!(h.events().is_empty());

    // No candidate any more: the primary is removed from the status, not left stale.
    h.ctx.etcd.observation.lock().unwrap().primary = PrimaryObservation::NoCandidate;
    h.reconcile().await.unwrap();
    let mds = h.api.get(CLUSTERS, "demo").unwrap()["status"]["mds"].clone();
    assert!(
        mds.get("primary").is_none() && mds.get("primaryAddress").is_none(),
        "{mds}"
    );
    assert_eq!(
        h.condition("MdsLeaderElected"),
        ("False".into(), "NoLeader".into())
    );
    assert_eq!(h.events(), ["Unavailable", "MdsPrimaryLost"]);
}

#[tokio::test]
async fn an_invalid_spec_changes_nothing_but_the_status_and_is_told_once() {
    let mut spec = minimal_spec();
    spec["etcd"] = json!({"replicas": 4});
    spec["mds"] = json!({"replicas": 0});
    let h = Harness::new(spec);
    let requeue = h.reconcile().await.unwrap();
    assert_eq!(
        requeue,
        kube::runtime::controller::Action::await_change(),
        "no hot retry loop"
    );
    assert_eq!(h.api.take_requests(), vec![status_write()]);
    let cluster = h.cluster();
    let status = cluster.status.as_ref().unwrap();
    assert_eq!(status.phase, Some(Phase::Invalid));
    let valid = status
        .conditions
        .iter()
        .find(|c| c.type_ == "SpecValid")
        .unwrap();
    assert_eq!(
        valid.message,
        "spec.etcd.replicas: must be 1, 3, 5 or 7 (got 4); spec.mds.replicas: must be between 1 and 9 (got 0)"
    );
    assert_eq!(h.events(), ["InvalidSpec"]);
    h.reconcile().await.unwrap();
    assert_eq!(
        h.api.take_requests(),
        Vec::<String>::new(),
        "same problem: no write, no event"
    );
    assert!(h.events().is_empty());
    assert!(h.api.names(SETS).is_empty());
}

#[tokio::test]
async fn a_paused_cluster_gets_only_status_writes_until_resumed() {
    let h = Harness::new(minimal_spec());
    bring_up(&h).await;
    let mut cluster = h.api.get(CLUSTERS, "demo").unwrap();
    cluster["spec"]["paused"] = json!(true);
    cluster["spec"]["mds"] = json!({"replicas": 5});
    h.api.put(CLUSTERS, cluster.clone());
    h.reconcile().await.unwrap();
    assert_eq!(h.api.take_requests(), concat(vec![vec![status_write()]]));
    assert_eq!(
        h.condition("ReconciliationPaused"),
        ("True".into(), "Paused".into())
    );
    assert_eq!(h.events(), ["Paused"]);
    h.reconcile().await.unwrap();
    assert_eq!(h.api.take_requests(), Vec::<String>::new());
    assert_eq!(h.api.get(SETS, "demo-mds").unwrap()["spec"]["replicas"], 3);

    let mut cluster = h.api.get(CLUSTERS, "demo").unwrap();
    cluster["spec"]["paused"] = json!(false);
    h.api.put(CLUSTERS, cluster);
    h.reconcile().await.unwrap();
    let requests = h.api.take_requests();
    assert!(
        requests.contains(&format!("PATCH {SETS}/demo-mds")),
        "{requests:?}"
    );
    assert_eq!(h.api.get(SETS, "demo-mds").unwrap()["spec"]["replicas"], 5);
    assert!(h.events().contains(&"Resumed".to_string()));
}

#[tokio::test]
async fn an_etcd_resize_records_its_step_before_it_asks_etcd_and_grows_the_set_after() {
    let h = Harness::new(minimal_spec());
    bring_up(&h).await;
    let mut cluster = h.api.get(CLUSTERS, "demo").unwrap();
    cluster["spec"]["etcd"] = json!({"replicas": 5});
    cluster["metadata"]["generation"] = json!(2);
    h.api.put(CLUSTERS, cluster);
    h.reconcile().await.unwrap();
    assert_eq!(
        h.api.take_requests(),
        concat(vec![vec![status_write()]]),
        "the step recorded; the etcd StatefulSet is not touched"
    );
    let peer = "http://demo-etcd-3.demo-etcd.ns.svc:2380".to_string();
    assert_eq!(
        *h.ctx.etcd.changes.lock().unwrap(),
        [MemberChange::AddLearner {
            peer_url: peer.clone()
        }]
    );
    let record = h.cluster().status.unwrap().record.unwrap();
    assert_eq!(record.etcd_step.unwrap().member, "demo-etcd-3");
    assert_eq!(h.api.get(SETS, "demo-etcd").unwrap()["spec"]["replicas"], 3);
    assert_eq!(
        h.condition("Progressing"),
        ("True".into(), "EtcdMembershipChange".into())
    );
    assert!(h.events().contains(&"EtcdMemberAdded".to_string()));

    // etcd lists the learner: its pod may start now, with the member list that names it.
    {
        let mut observation = h.ctx.etcd.observation.lock().unwrap();
        let members = observation.members.as_mut().unwrap();
        members.members.push(curve_operator::etcd::Member {
            id: 0xd3,
            name: String::new(),
            peer_urls: vec![peer],
            is_learner: true,
            healthy: false,
            is_leader: false,
            ..Default::default()
        });
        members.total = 4;
    }
    h.reconcile().await.unwrap();
    let requests = h.api.take_requests();
    assert!(
        requests.contains(&format!("PATCH {MAPS}/demo-etcd-members")),
        "{requests:?}"
    );
    assert!(
        requests.contains(&format!("PATCH {SETS}/demo-etcd")),
        "{requests:?}"
    );
    assert_eq!(h.api.get(SETS, "demo-etcd").unwrap()["spec"]["replicas"], 4);
    let members = h.api.get(MAPS, "demo-etcd-members").unwrap();
    assert_eq!(members["data"]["joining"], "demo-etcd-3");
    assert_eq!(members["data"]["initial-cluster-state"], "existing");
    assert_eq!(
        h.ctx.etcd.changes.lock().unwrap().len(),
        1,
        "the learner is not added twice"
    );

    // Its pod runs: it is still no endpoint of the operator's while it is a learner (it
    // answers nothing but its Status), for the reads and for the promotion alike.
    h.pod("demo-etcd-3", "etcd", "10.0.0.4", false);
    (h.ctx
        .etcd
        .observation
        .lock()
        .unwrap()
        .members
        .as_mut()
        .unwrap()
        .members[3])
        .name = "demo-etcd-3".into();
    h.reconcile().await.unwrap();
    assert_eq!(
        h.ctx.etcd.changes.lock().unwrap().last(),
        Some(&MemberChange::Promote { id: 0xd3 })
    );
    let observed = h.ctx.etcd.calls.lock().unwrap().last().unwrap().clone();
    assert_eq!(observed.len(), 3, "{observed:?}");
    assert!(
        !observed.contains(&"10.0.0.4:2379".to_string()),
        "{observed:?}"
    );
    let endpoints = h.ctx.etcd.change_endpoints.lock().unwrap().clone();
    assert!(
        endpoints
            .iter()
            .all(|e| !e.contains(&"10.0.0.4:2379".to_string())),
        "{endpoints:?}"
    );
}

#[tokio::test]
async fn api_errors_are_reported_in_the_status_and_retried() {
    let h = Harness::new(minimal_spec());
    h.api.fail(&format!("PATCH {SETS}"));
    let error = h.reconcile().await.unwrap_err();
    assert!(
        error
            .to_string()
            .starts_with("applying StatefulSet/demo-etcd: ")
            && error.to_string().contains("injected failure"),
        "{error}"
    );
    assert_eq!(error.step().as_str(), "apply");
    assert_eq!(
        h.condition("Progressing"),
        ("False".into(), "ReconcileError".into())
    );
    assert_eq!(h.events(), ["ReconcileError"]);
    let requeue = curve_operator::reconcile::error_policy(
        Arc::new(DeserializeGuard(Ok(h.cluster()))),
        &error,
        h.ctx.clone(),
    );
    // The server failed (it did not refuse the object): retried after a second.
    assert_eq!(
        requeue,
        kube::runtime::controller::Action::requeue(std::time::Duration::from_secs(1))
    );
}

/// A changed etcd template is rolled by the operator, not the StatefulSet controller: one
/// DELETE of one follower (the leader last), `Progressing` RollingUpdate, a PodReplaced Event;
/// while that pod is away, nothing more.
#[tokio::test]
async fn a_changed_template_is_rolled_one_pod_at_a_time_by_the_operator() {
    let h = Harness::new(minimal_spec());
    bring_up(&h).await;
    h.events();
    h.ctx.etcd.observation.lock().unwrap().members = Some(MemberHealth::all_healthy(
        "ns",
        &["demo-etcd-0", "demo-etcd-1", "demo-etcd-2"],
        2,
    ));
    // The StatefulSet controller took a new template; every pod runs the old one.
    let mut set = h.api.get(SETS, "demo-etcd").unwrap();
    set["status"] = json!({"replicas": 3, "observedGeneration": set["metadata"]["generation"].clone(),
        "updateRevision": "demo-etcd-new", "currentRevision": "demo-etcd-old"});
    h.api.put(SETS, set);
    for i in 0..3 {
        let name = format!("demo-etcd-{i}");
        let mut pod = h.api.get(PODS, &name).unwrap();
        pod["metadata"]["uid"] = json!(format!("uid-{i}"));
        pod["metadata"]["labels"]["controller-revision-hash"] = json!("demo-etcd-old");
        pod["metadata"]["ownerReferences"] = json!([{"apiVersion": "apps/v1", "kind": "StatefulSet",
            "name": "demo-etcd", "uid": "set-uid", "controller": true}]);
        h.api.put(PODS, pod);
    }
    h.api.take_requests();
    h.reconcile().await.unwrap();
    let requests = h.api.take_requests();
    assert_eq!(
        requests,
        [format!("DELETE {PODS}/demo-etcd-1"), status_write()],
        "the highest follower first"
    );
    let progressing = h.cluster().status.unwrap();
    let progressing = progressing
        .conditions
        .iter()
        .find(|c| c.type_ == "Progressing")
        .unwrap();
    assert_eq!(
        (progressing.reason.as_str(), progressing.message.as_str()),
        (
            "RollingUpdate",
            "etcd: 0/3 updated, replacing demo-etcd-1 (follower)"
        )
    );
    assert_eq!(h.events(), ["PodReplaced"]);
    // The pod is gone and not back yet: the next pass waits.
    assert!(h.api.get(PODS, "demo-etcd-1").is_none());
    h.reconcile().await.unwrap();
    let requests = h.api.take_requests();
    assert!(
        !requests.iter().any(|r| r.starts_with("DELETE")),
        "{requests:?}"
    );
}

/// An object the API server refuses for a reason validation missed: the status names the
/// object, the field and the server's message as `ApplyRefused`, the Event is told once across
/// retries, and nothing after the refused object is applied.
#[tokio::test]
async fn an_apply_the_api_server_refuses_is_reported_once_and_touches_nothing_else() {
    let h = Harness::new(minimal_spec());
    let message = "StatefulSet.apps \"demo-etcd\" is invalid: spec.template.spec.containers[0].image: Forbidden: images must come from registry.example.com";
    h.api.refuse(
        &format!("PATCH {SETS}/demo-etcd"),
        422,
        "Invalid",
        message,
        json!([{"reason": "FieldValueForbidden", "field": "spec.template.spec.containers[0].image", "message": "Forbidden"},
               {"reason": "FieldValueInvalid", "field": "metadata.annotations", "message": "too long"}]),
    );
    let error = h.reconcile().await.unwrap_err();
    let refusal = error.refusal().expect("a refusal");
    assert_eq!(refusal.object, "StatefulSet/demo-etcd");
    let expected = format!(
        "the API server refused StatefulSet/demo-etcd: {message}; metadata.annotations: too long"
    );
    assert_eq!(refusal.to_string(), expected);
    assert_eq!(
        h.api.take_requests(),
        concat(vec![applies("etcd"), vec![status_write()]]),
        "the refused StatefulSet is the last object applied"
    );
    let status = h.cluster().status.unwrap();
    for type_ in ["Progressing", "Degraded"] {
        let condition = status.conditions.iter().find(|c| c.type_ == type_).unwrap();
        assert_eq!(
            (condition.reason.as_str(), condition.message.as_str()),
            ("ApplyRefused", expected.as_str()),
            "{type_}"
        );
    }
    assert_eq!(h.events(), ["ApplyRefused"]);

    // Retries refuse the same way: the status is not rewritten and the Event not repeated.
    for _ in 0..2 {
        assert!(h.reconcile().await.unwrap_err().refusal().is_some());
        let requests = h.api.take_requests();
        assert_eq!(
            requests.last(),
            Some(&format!("PATCH {SETS}/demo-etcd")),
            "{requests:?}"
        );
        assert!(!requests.contains(&status_write()), "{requests:?}");
        assert!(h.events().is_empty(), "told once");
    }

    // Other API errors (a 500 for the same object) stay reconcile errors.
    h.api.fail(&format!("PATCH {SETS}/demo-etcd"));
    let error = h.reconcile().await.unwrap_err();
    assert_eq!(error.refusal(), None);
    assert_eq!(
        h.condition("Progressing"),
        ("False".into(), "ReconcileError".into())
    );
}

#[tokio::test]
async fn deletion_removes_volumes_only_with_policy_and_confirmation() {
    for (cleanup, deletes) in [
        (
            json!({"policy": "Delete", "confirmation": "yes-really-destroy-data"}),
            true,
        ),
        (json!({"policy": "Delete"}), false),
    ] {
        let mut spec = minimal_spec();
        spec["cleanup"] = cleanup;
        let h = Harness::new(spec);
        h.api.put(CLAIMS, json!({"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": "data-demo-etcd-0", "namespace": "ns",
            "labels": {"app.kubernetes.io/name": "curve", "app.kubernetes.io/instance": "demo", "app.kubernetes.io/managed-by": "curve-operator"}}}));
        h.reconcile().await.unwrap();
        let finalizers = h.api.get(CLUSTERS, "demo").unwrap()["metadata"]["finalizers"].clone();
        assert_eq!(
            finalizers == json!(["curve.opencurve.io/delete-data"]),
            deletes,
            "{finalizers}"
        );
        // Delete without the confirmation is not quietly Retain: a condition and an Event.
        let (retained, reason) = h.condition("DataRetained");
        let events = h.events();
        if deletes {
            assert_eq!(
                (retained.as_str(), reason.as_str()),
                ("False", "DeleteConfirmed")
            );
            assert!(
                !events.contains(&"CleanupNotConfirmed".to_string()),
                "{events:?}"
            );
        } else {
            assert_eq!(
                (retained.as_str(), reason.as_str()),
                ("True", "DeleteNotConfirmed")
            );
            assert!(
                events.contains(&"CleanupNotConfirmed".to_string()),
                "{events:?}"
            );
        }
        h.api.take_requests();

        let mut cluster = h.api.get(CLUSTERS, "demo").unwrap();
        cluster["metadata"]["deletionTimestamp"] = json!("2026-11-22T12:00:00Z");
        h.api.put(CLUSTERS, cluster);
        h.reconcile().await.unwrap();
        let requests = h.api.take_requests();
        if deletes {
            // The StatefulSets first: one waiting for the garbage collector would re-create
            // the claim of every pod it re-creates. The claims once they are gone.
            assert_eq!(requests, [format!("DELETE {SETS}/demo-etcd")]);
            assert_eq!(h.api.names(CLAIMS), ["data-demo-etcd-0"]);
            assert!(h.api.names(SETS).is_empty());
            h.reconcile().await.unwrap();
            let requests = h.api.take_requests();
            assert_eq!(
                requests,
                [
                    format!("DELETE {CLAIMS}?labelSelector={SELECTOR}"),
                    format!("PATCH {CLUSTERS}/demo")
                ]
            );
            assert!(h.api.names(CLAIMS).is_empty());
            assert_eq!(
                h.api.get(CLUSTERS, "demo").unwrap()["metadata"]["finalizers"],
                json!([])
            );
        } else {
            assert_eq!(
                requests,
                Vec::<String>::new(),
                "no finalizer: owner references do the rest"
            );
            assert_eq!(h.api.names(CLAIMS), ["data-demo-etcd-0"]);
        }
        // Each pass of the deletion forgets the cluster's election watch (twice with Delete:
        // the StatefulSets' pass and the claims').
        let forgotten = h.ctx.etcd.forgotten.lock().unwrap().clone();
        assert!(!forgotten.is_empty(), "the election watch stops");
        assert!(
            forgotten.iter().all(|key| key.name == "demo"),
            "{forgotten:?}"
        );
    }
}

#[tokio::test]
async fn pools_are_created_in_curves_order_and_chunkservers_released_after_the_physical_pool() {
    let h = Harness::new(minimal_spec());
    bring_up_etcd(&h).await;
    h.set_pods("demo-mds", "mds", true);
    h.elect("10.0.0.1:6700");
    h.reconcile().await.unwrap();
    assert_eq!(
        h.condition("TopologyReady"),
        ("False".into(), "WaitingForServers".into())
    );
    assert!(h.api.names(JOBS).is_empty());
    h.api.take_requests();

    h.set_pods("demo-chunkserver-0", "chunkserver", false);
    h.reconcile().await.unwrap();
    let requests = h.api.take_requests();
    let physical: Vec<String> = h.api.names(JOBS);
    assert_eq!(physical.len(), 1);
    assert!(physical[0].starts_with("demo-physical-pool-"));
    assert_eq!(
        requests,
        [
            status_write(),
            format!("PATCH {MAPS}/demo-topology"),
            format!("PATCH {JOBS}/{}", physical[0]),
        ],
        "the servers are recorded before the map lists them, the map is written before the Job that reads tools.conf from it"
    );
    let record = h.cluster().status.unwrap().record.unwrap();
    assert_eq!(
        record
            .servers
            .iter()
            .map(|s| (s.name.as_str(), s.ip.as_str(), s.zone.as_str()))
            .collect::<Vec<_>>(),
        [
            ("node-10.0.0.1", "10.0.0.1", "zone1"),
            ("node-10.0.0.2", "10.0.0.2", "zone2"),
            ("node-10.0.0.3", "10.0.0.3", "zone3")
        ]
    );
    let topology = h.api.get(MAPS, "demo-topology").unwrap();
    assert_eq!(
        topology["data"]["physical-pool-servers"], "",
        "no ChunkServer released yet"
    );
    let map: Value =
        serde_json::from_str(topology["data"]["topology.json"].as_str().unwrap()).unwrap();
    assert_eq!(map["servers"].as_array().unwrap().len(), 3);
    assert_eq!(
        h.condition("TopologyReady"),
        ("False".into(), "PhysicalPoolPending".into())
    );

    h.reconcile().await.unwrap();
    assert_eq!(
        h.api.names(JOBS).len(),
        1,
        "a running Job is not duplicated"
    );
    h.succeed_jobs();
    h.reconcile().await.unwrap();
    let topology = h.api.get(MAPS, "demo-topology").unwrap();
    assert_eq!(
        topology["data"]["physical-pool-servers"],
        "10.0.0.1\n10.0.0.2\n10.0.0.3\n"
    );
    assert!(
        h.api
            .names(JOBS)
            .iter()
            .any(|n| n.starts_with("demo-chunkservers-online-"))
    );
    assert!(
        !h.api.names(JOBS).contains(&"demo-logical-pool".to_string()),
        "not before every ChunkServer is online"
    );
    assert_eq!(
        h.condition("TopologyReady"),
        ("False".into(), "WaitingForChunkServers".into())
    );

    h.succeed_jobs();
    h.reconcile().await.unwrap();
    assert!(h.api.names(JOBS).contains(&"demo-logical-pool".to_string()));
    h.succeed_jobs();
    h.reconcile().await.unwrap();
    assert_eq!(
        h.condition("TopologyReady"),
        ("True".into(), "Ready".into())
    );
    let cluster = h.cluster();
    let topology = cluster.status.unwrap().topology.unwrap();
    assert_eq!(
        (
            topology.servers,
            topology.physical_pool.as_str(),
            topology.logical_pool.as_str()
        ),
        (3, "pool1", "logicalPool1")
    );
    assert_eq!(
        h.api.get(MAPS, "demo-topology").unwrap()["data"]["logical-pool-created"],
        "true"
    );
}

#[tokio::test]
async fn a_cluster_that_does_not_parse_gets_a_status_and_nothing_else() {
    let h = Harness::new(minimal_spec());
    let mut raw = h.api.get(CLUSTERS, "demo").unwrap();
    raw["spec"]["etcd"] = json!({"replicas": "three"});
    raw["spec"]["imagePullPolicy"] = json!("Sometimes");
    h.api.put(CLUSTERS, raw.clone());
    let guard: DeserializeGuard<CurveCluster> = serde_json::from_value(raw).unwrap();
    assert!(
        guard.0.is_err(),
        "the guard keeps the error instead of failing the watch"
    );
    let requeue = reconcile(Arc::new(guard), h.ctx.clone()).await.unwrap();
    assert_eq!(requeue, kube::runtime::controller::Action::await_change());
    assert_eq!(
        h.api.take_requests(),
        vec![format!("GET {CLUSTERS}/demo"), status_write()]
    );
    let status = h.api.get(CLUSTERS, "demo").unwrap()["status"].clone();
    assert_eq!(status["phase"], "Invalid");
    let message = status["conditions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["type"] == "SpecValid")
        .unwrap()["message"]
        .clone();
    assert_eq!(
        message,
        "spec.etcd.replicas: must be an integer (got \"three\"); spec.imagePullPolicy: must be one of \"Always\", \"IfNotPresent\", \"Never\" (got \"Sometimes\")"
    );
}

#[tokio::test]
async fn chunkservers_wait_until_every_mds_pod_has_an_address() {
    let h = Harness::new(minimal_spec());
    bring_up_etcd(&h).await;
    // OrderedReady: only demo-mds-0 runs yet, and it is elected.
    h.pod("demo-mds-0", "mds", "10.0.0.1", true);
    h.elect("10.0.0.1:6700");
    h.reconcile().await.unwrap();
    assert!(
        h.api.get(SETS, "demo-chunkserver-0").is_none(),
        "their config would list one MDS, then roll"
    );
    h.pod("demo-mds-1", "mds", "10.0.0.2", true);
    h.pod("demo-mds-2", "mds", "10.0.0.3", true);
    h.reconcile().await.unwrap();
    assert!(h.api.get(SETS, "demo-chunkserver-0").is_some());
    assert_eq!(
        h.api.get(MAPS, "demo-chunkserver").unwrap()["data"]["cs_client.conf"],
        "mds.listen.addr=10.0.0.1:6700,10.0.0.2:6700,10.0.0.3:6700\nglobal.logPath=/curvebs/chunkserver/logs\n"
    );
}

const CLASSES: &str = "/apis/storage.k8s.io/v1/storageclasses";

/// Issue 14: growing etcd volumes, request by request. Claims at their size cost nothing; a
/// growth reads the StorageClass, patches each claim and deletes the StatefulSet with its
/// pods orphaned (only that StatefulSet: its uid is a precondition); the next pass applies it
/// again with the new claim template.
#[tokio::test]
async fn growing_volumes_patches_the_claims_and_recreates_the_set_without_its_pods() {
    let h = Harness::new(minimal_spec());
    bring_up(&h).await;
    let mut set = h.api.get(SETS, "demo-etcd").unwrap();
    set["metadata"]["uid"] = json!("uid-etcd-set");
    h.api.put(SETS, set);
    for i in 0..3 {
        h.api.put(
            CLAIMS,
            json!({
                "apiVersion": "v1", "kind": "PersistentVolumeClaim",
                "metadata": {"name": format!("data-demo-etcd-{i}"), "namespace": "ns", "labels": labels("etcd")},
                "spec": {"storageClassName": "standard", "resources": {"requests": {"storage": "10Gi"}}},
                "status": {"phase": "Bound", "capacity": {"storage": "10Gi"}}
            }),
        );
    }
    h.api.put(
        CLASSES,
        json!({"apiVersion": "storage.k8s.io/v1", "kind": "StorageClass", "metadata": {"name": "standard"},
               "provisioner": "example.com/csi", "allowVolumeExpansion": true}),
    );
    h.reconcile().await.unwrap();
    assert_eq!(
        h.api.take_requests(),
        Vec::<String>::new(),
        "volumes of their size: no StorageClass is read"
    );

    let mut cluster = h.api.get(CLUSTERS, "demo").unwrap();
    cluster["spec"]["etcd"] = json!({"storage": {"size": "20Gi"}});
    cluster["metadata"]["generation"] = json!(2);
    h.api.put(CLUSTERS, cluster);
    h.reconcile().await.unwrap();
    assert_eq!(
        h.api.take_requests(),
        concat(vec![
            vec![format!("GET {CLASSES}/standard")],
            (0..3)
                .map(|i| format!("PATCH {CLAIMS}/data-demo-etcd-{i}"))
                .collect(),
            // An unset quotaBackendBytes follows the volume: etcd.conf takes the larger quota
            // (and the members roll with it once the StatefulSet is back).
            vec![
                format!("PATCH {MAPS}/demo-etcd"),
                format!("DELETE {SETS}/demo-etcd"),
                status_write(),
            ],
        ])
    );
    assert_eq!(
        h.api
            .body_of(&format!("PATCH {CLAIMS}/data-demo-etcd-0"))
            .unwrap(),
        json!({"spec": {"resources": {"requests": {"storage": "20Gi"}}}})
    );
    let delete = h.api.body_of(&format!("DELETE {SETS}/demo-etcd")).unwrap();
    assert_eq!(delete["propagationPolicy"], "Orphan", "{delete}");
    assert_eq!(delete["preconditions"]["uid"], "uid-etcd-set", "{delete}");
    assert_eq!(
        h.condition("Progressing"),
        ("True".into(), "VolumeExpansion".into())
    );

    // The StatefulSet is gone, its pods run: it is applied again, with 20Gi claims.
    h.reconcile().await.unwrap();
    // (The status too: the claims went from requested to resizing.)
    assert_eq!(
        h.api.take_requests(),
        vec![format!("PATCH {SETS}/demo-etcd"), status_write()]
    );
    let set = h.api.get(SETS, "demo-etcd").unwrap();
    assert_eq!(
        set["spec"]["volumeClaimTemplates"][0]["spec"]["resources"]["requests"]["storage"],
        "20Gi"
    );
    assert!(h.events().iter().all(|e| e != "Created"));
}

/// curve-csi (spec.csi): its objects come once the cluster is Available, a healthy cluster
/// with them sends no request, and a deletion waits while a PersistentVolume of its
/// StorageClass is bound, then deletes its cluster-scoped objects. Every request is granted by
/// the chart's RBAC (the harness checks).
#[tokio::test]
async fn curve_csi_comes_when_available_stays_quiet_and_holds_a_deletion_with_bound_volumes() {
    let mut spec = minimal_spec();
    spec["csi"] = json!({"enabled": true});
    let h = Harness::new(spec);
    bring_up_etcd(&h).await;
    assert!(h.api.names(DAEMON_SETS).is_empty(), "not before Available");
    let (csi, reason) = h.condition("Csi");
    assert_eq!(
        (csi.as_str(), reason.as_str()),
        ("False", "CsiWaitingForAvailable")
    );
    bring_up(&h).await;
    assert_eq!(h.api.names(DAEMON_SETS), ["demo-csi-node"]);
    assert_eq!(h.api.names(DEPLOYMENTS), ["demo-csi-controller"]);
    assert_eq!(h.api.names(STORAGE_CLASSES), ["curve"]);
    assert_eq!(h.api.names(CSI_DRIVERS), ["curve.csi.netease.com"]);
    assert_eq!(h.api.names(CLUSTER_ROLES), ["curve-csi-ns-demo"]);
    let (csi, reason) = h.condition("Csi");
    assert_eq!((csi.as_str(), reason.as_str()), ("True", "CsiApplied"));
    let finalizers = h.cluster().metadata.finalizers.unwrap_or_default();
    assert_eq!(finalizers, ["curve.opencurve.io/csi"]);

    h.reconcile().await.unwrap();
    assert_eq!(h.api.take_requests(), Vec::<String>::new());

    const VOLUMES: &str = "/api/v1/persistentvolumes";
    h.api.put(
        VOLUMES,
        json!({"apiVersion": "v1", "kind": "PersistentVolume",
               "metadata": {"name": "pv-1", "resourceVersion": "1"},
               "spec": {"storageClassName": "curve", "csi": {"driver": "curve.csi.netease.com", "volumeHandle": "h"},
                        "claimRef": {"namespace": "apps", "name": "data"}},
               "status": {"phase": "Bound"}}),
    );
    let mut cluster = h.api.get(CLUSTERS, "demo").unwrap();
    cluster["metadata"]["deletionTimestamp"] = json!("2026-11-22T12:00:00Z");
    h.api.put(CLUSTERS, cluster);
    h.reconcile().await.unwrap();
    let (blocked, reason) = h.condition("DeletionBlocked");
    assert_eq!(
        (blocked.as_str(), reason.as_str()),
        ("True", "PersistentVolumesBound")
    );
    assert!(h.events().contains(&"DeletionBlocked".to_string()));
    assert_eq!(h.api.names(STORAGE_CLASSES), ["curve"], "nothing deleted");
    assert_eq!(
        h.cluster().metadata.finalizers.unwrap_or_default(),
        ["curve.opencurve.io/csi"]
    );

    h.api.delete_object(VOLUMES, "pv-1");
    h.api.take_requests();
    h.reconcile().await.unwrap();
    for cluster_scoped in [
        STORAGE_CLASSES,
        CSI_DRIVERS,
        CLUSTER_ROLES,
        CLUSTER_ROLE_BINDINGS,
    ] {
        assert!(h.api.names(cluster_scoped).is_empty(), "{cluster_scoped}");
    }
    assert_eq!(
        h.cluster().metadata.finalizers.unwrap_or_default(),
        Vec::<String>::new()
    );
}

/// A finished Job the caches still hold but the server no longer has (deleted by an earlier
/// pass whose answer a broken connection lost, the watch not caught up): deleting it again is
/// done, not a failed reconcile (the fault soak, seed 12: such reconciles failed until its
/// bound, the backoff grown to minutes).
#[tokio::test]
async fn deleting_a_job_that_is_gone_already_is_done() {
    let h = Harness::new(minimal_spec());
    bring_up_etcd(&h).await;
    mds_up_and_elected(&h).await;
    let online = |h: &Harness| {
        (h.api.names(JOBS).into_iter()).find(|n| n.starts_with("demo-chunkservers-online-"))
    };
    for _ in 0..4 {
        if online(&h).is_some() {
            break;
        }
        h.reconcile().await.unwrap();
        h.succeed_jobs();
    }
    let job = online(&h).expect("the online check's Job");
    // It failed: the next pass deletes it to create it again.
    let mut failed = h.api.get(JOBS, &job).unwrap();
    failed["status"] = json!({"failed": 3, "conditions": [{"type": "Failed", "status": "True", "reason": "BackoffLimitExceeded", "message": "Job has reached the specified backoff limit"}]});
    h.api.put(JOBS, failed);
    h.sync_caches();
    h.api.delete_object(JOBS, &job);
    h.api.take_requests();
    h.reconcile_on_stale_caches()
        .await
        .expect("a delete that finds nothing is done");
    let requests = h.api.take_requests();
    assert!(
        (requests.iter()).any(|r| r.starts_with("DELETE") && r.contains(&job)),
        "the pass deleted the Job it still saw: {requests:?}"
    );
}
