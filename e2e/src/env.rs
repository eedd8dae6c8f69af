//! One test's world: a namespace of its own, fake nodes with the fake kubelet, the CRD, and
//! the operator's RBAC and kubeconfig ([`TestEnv`]; without nodes and kubelet, [`BareEnv`]).
//! Dropping it removes the namespace and the nodes and stops every process, also when the
//! test panics.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use curve_operator::api::{CurveCluster, CurveClusterStatus};
use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::{Namespace, Pod, ServiceAccount};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::Client;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};
use serde_json::json;

use crate::cluster::{self, Output, SUITE_LABEL, kubectl};
use crate::kubelet::Kubelet;
use crate::operator::Operator;
use crate::util::{TempDir, eventually, repo_root};

/// A test namespace with the CRD and the operator's RBAC but without nodes, scheduler or
/// kubelet: the operator's pods stay Pending. For measuring the operator's own cost
/// (`benches/scale.rs`), and what every [`TestEnv`] starts from. Dropping it removes the
/// namespace (without waiting).
pub struct BareEnv {
    pub client: Client,
    pub namespace: String,
    pub operator_kubeconfig: PathBuf,
    pub started: Instant,
    removed: bool,
    // Dropped last: the operator's log lives here.
    pub dir: TempDir,
}

impl BareEnv {
    /// Connects (or stops the run), checks and cleans the cluster, applies the CRD and the
    /// operator's RBAC, creates namespace `e2e-<tag>-<pid>`.
    pub async fn new(tag: &str) -> BareEnv {
        let started = Instant::now();
        let client = cluster::connect().await;
        // Built (or found up to date) before anything of the scenario starts.
        crate::operator::binary();
        cluster::preflight(&client).await;
        cluster::install_crd(&client).await;
        let dir = TempDir::new(tag);
        let operator_kubeconfig = cluster::operator_kubeconfig(dir.path());
        let namespace = create_namespace(&client, tag).await;
        BareEnv {
            client,
            namespace,
            operator_kubeconfig,
            started,
            removed: false,
            dir,
        }
    }

    /// `curve-operator run --namespace <ns>` as the chart's ServiceAccount.
    pub async fn start_operator(&self) -> Operator {
        Operator::start(&self.operator_kubeconfig, &self.namespace, self.dir.path()).await
    }

    /// [`BareEnv::start_operator`] reading Curve's health every `seconds`.
    pub async fn start_operator_with_health_period(&self, seconds: u64) -> Operator {
        let (kubeconfig, dir) = (&self.operator_kubeconfig, self.dir.path());
        Operator::start_with_health_period(kubeconfig, &self.namespace, dir, seconds).await
    }

    pub fn clusters(&self) -> Api<CurveCluster> {
        Api::namespaced(self.client.clone(), &self.namespace)
    }

    pub fn api<K>(&self) -> Api<K>
    where
        K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope>
            + Clone
            + serde::de::DeserializeOwned
            + std::fmt::Debug,
        K::DynamicType: Default,
    {
        Api::namespaced(self.client.clone(), &self.namespace)
    }

    /// kubectl in the test namespace.
    pub fn kubectl(&self, args: &[&str]) -> Output {
        let mut all = vec!["-n", self.namespace.as_str()];
        all.extend_from_slice(args);
        kubectl(&all, None)
    }

    /// kubectl in the test namespace, `stdin` piped in.
    pub fn kubectl_stdin(&self, args: &[&str], stdin: &str) -> Output {
        let mut all = vec!["-n", self.namespace.as_str()];
        all.extend_from_slice(args);
        kubectl(&all, Some(stdin))
    }

    /// `kubectl apply -f examples/<file>` into the test namespace.
    pub fn apply_example(&self, file: &str) {
        let path = repo_root().join("examples").join(file);
        self.kubectl(&["apply", "-f", path.to_str().unwrap()])
            .ok("apply the example");
    }

    /// Merge-patches a CurveCluster's spec.
    pub async fn patch_spec(&self, name: &str, spec: serde_json::Value) -> CurveCluster {
        self.clusters()
            .patch(
                name,
                &PatchParams::default(),
                &Patch::Merge(json!({ "spec": spec })),
            )
            .await
            .unwrap_or_else(|e| panic!("patch {name}: {e}"))
    }

    /// Returns once the operator finished a reconcile of cluster `name` that started after this
    /// call: two annotation changes each trigger a reconcile, and a reconcile already running
    /// counts at most once.
    pub async fn settle(&self, operator: &Operator, name: &str) {
        let since = operator.reconciles().await;
        for round in 1..=2 {
            let stamp = format!("{}-{round}", self.started.elapsed().as_nanos());
            let patch =
                json!({"metadata": {"annotations": {"e2e.curve.opencurve.io/nudge": stamp}}});
            self.clusters()
                .patch(name, &PatchParams::default(), &Patch::Merge(patch))
                .await
                .expect("annotate the cluster");
            operator.wait_reconciles(since, round).await;
        }
    }

    /// Waits until `check` accepts the cluster's status.
    pub async fn wait_status(
        &self,
        name: &str,
        what: &str,
        limit: Duration,
        check: impl Fn(&CurveCluster, &CurveClusterStatus) -> Result<(), String>,
    ) -> CurveCluster {
        let api = self.clusters();
        eventually(&format!("{name}: {what}"), limit, || {
            let api = api.clone();
            let check = &check;
            async move {
                let cluster = api.get(name).await.map_err(|e| e.to_string())?;
                let status = cluster.status.clone().unwrap_or_default();
                check(&cluster, &status)
                    .map_err(|why| format!("{why}; status: {}", summary(&status)))?;
                Ok(cluster)
            }
        })
        .await
    }

    /// Waits until the cluster is Available with the status up to date, and every StatefulSet
    /// of it rolled out (all pods updated and ready): a config change rolls pods after the
    /// status first says Available.
    pub async fn wait_available(&self, name: &str, limit: Duration) -> CurveCluster {
        eventually(&format!("{name}: Available and rolled out"), limit, || {
            self.available_and_rolled_out(name)
        })
        .await
    }

    /// The cluster when it is Available with the status up to date and every StatefulSet of
    /// it rolled out (all pods updated and ready); otherwise what is not.
    pub async fn available_and_rolled_out(&self, name: &str) -> Result<CurveCluster, String> {
        let sets: Api<StatefulSet> = self.api();
        let selector = format!("app.kubernetes.io/instance={name}");
        for set in sets
            .list(&ListParams::default().labels(&selector))
            .await
            .map_err(|e| e.to_string())?
            .items
        {
            let spec_replicas = set.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1);
            let st = set.status.clone().unwrap_or_default();
            let rolled_out = st.observed_generation == set.metadata.generation
                && st.updated_replicas == Some(spec_replicas)
                && st.ready_replicas == Some(spec_replicas)
                && st.replicas == spec_replicas
                // With OnDelete the controller never moves currentRevision: every
                // pod on updateRevision is what "rolled out" means.
                && st.update_revision.is_some();
            if !rolled_out {
                return Err(format!(
                    "StatefulSet {} not rolled out: {st:?}",
                    set.metadata.name.unwrap_or_default()
                ));
            }
        }
        let cluster = self.clusters().get(name).await.map_err(|e| e.to_string())?;
        let status = cluster.status.clone().unwrap_or_default();
        let check = || {
            if status.observed_generation != cluster.metadata.generation {
                return Err("status is of an older generation".to_string());
            }
            expect_condition(&status, "Available", "True")?;
            expect_condition(&status, "Progressing", "False")?;
            if status.phase.map(|p| p.as_str()) != Some("Available") {
                return Err(format!("phase {:?}", status.phase));
            }
            Ok(())
        };
        check().map_err(|why| format!("{why}; status: {}", summary(&status)))?;
        Ok(cluster)
    }

    /// `kubectl get curvecluster <name>` as columns (header → value).
    pub fn kubectl_get_cluster(&self, name: &str) -> BTreeMap<String, String> {
        let out = self
            .kubectl(&["get", "curvecluster", name])
            .ok("get curvecluster");
        parse_table(&out)
            .into_iter()
            .next()
            .unwrap_or_else(|| panic!("no row in:\n{out}"))
    }

    /// Removes the namespace once no operator runs for it any more (the CurveClusters lose
    /// their finalizers, pods go at once) and waits until it is gone; how long that took.
    pub async fn remove(&mut self, limit: Duration) -> Result<Duration, String> {
        let started = Instant::now();
        self.removed = true;
        let clusters = self.clusters();
        let unfinalize = json!({"metadata": {"finalizers": null}});
        for cluster in clusters
            .list(&ListParams::default())
            .await
            .map_err(|e| e.to_string())?
            .items
        {
            let name = cluster.metadata.name.unwrap_or_default();
            clusters
                .patch(&name, &PatchParams::default(), &Patch::Merge(&unfinalize))
                .await
                .map_err(|e| format!("drop the finalizers of {name}: {e}"))?;
        }
        let namespaces: Api<Namespace> = Api::all(self.client.clone());
        namespaces
            .delete(&self.namespace, &DeleteParams::background())
            .await
            .map_err(|e| format!("delete namespace {}: {e}", self.namespace))?;
        let pods: Api<Pod> = Api::namespaced(self.client.clone(), &self.namespace);
        let now = DeleteParams {
            grace_period_seconds: Some(0),
            ..DeleteParams::default()
        };
        pods.delete_collection(&now, &ListParams::default())
            .await
            .map_err(|e| format!("delete the pods: {e}"))?;
        let deadline = Instant::now() + limit;
        loop {
            match namespaces.get_opt(&self.namespace).await {
                Ok(None) => return Ok(started.elapsed()),
                Ok(Some(_)) if Instant::now() < deadline => {}
                Ok(Some(ns)) => {
                    return Err(format!(
                        "namespace {} still there after {limit:?}: {:?}",
                        self.namespace, ns.status
                    ));
                }
                Err(e) => return Err(e.to_string()),
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }

    /// Has the namespace removed, unless that was done already; does not wait for it.
    fn remove_without_waiting(&mut self) {
        if !self.removed {
            self.removed = true;
            cluster::remove_namespace(&self.namespace);
        }
    }
}

impl Drop for BareEnv {
    fn drop(&mut self) {
        self.remove_without_waiting();
    }
}

/// One test's world: a [`BareEnv`] (which it dereferences to) with `nodes` fake nodes and the
/// fake kubelet.
pub struct TestEnv {
    pub kubelet: Kubelet,
    // Dropped after the kubelet: the namespace, and the directory with the operator's log.
    pub bare: BareEnv,
}

impl TestEnv {
    /// A [`BareEnv`] for `tag` with `nodes` fake nodes.
    pub async fn new(tag: &str, nodes: usize) -> TestEnv {
        let bare = BareEnv::new(tag).await;
        let kubelet = Kubelet::start(bare.client.clone(), &bare.namespace, nodes).await;
        eprintln!(
            "[{tag}] namespace {}, {nodes} nodes, set up in {:.1?}",
            bare.namespace,
            bare.started.elapsed()
        );
        TestEnv { kubelet, bare }
    }
}

impl TestEnv {
    /// Waits until the operator read every copyset of the model healthy. (Curve's verdict
    /// stays Unhealthy while a new ChunkServer holds no copyset,
    /// C:src/tools/copyset_check_core.cpp l.171-176, and the model does not balance copysets
    /// onto a new one: so the count, not the verdict.)
    pub async fn wait_copysets_healthy(&self, name: &str, limit: Duration) {
        let copysets = self.kubelet.curve_copyset_count(name) as i64;
        self.wait_status(name, "every copyset healthy", limit, |_, s| {
            copysets_read_healthy(s, copysets)
        })
        .await;
    }
}

/// Ok when the status's health reading counts `copysets` copysets, none unhealthy.
pub fn copysets_read_healthy(status: &CurveClusterStatus, copysets: i64) -> Result<(), String> {
    let health = status.health.as_ref().ok_or("no health yet")?;
    let counted = health.copysets.as_ref().map(|c| (c.total, c.unhealthy));
    match counted {
        Some((total, 0)) if total == copysets => Ok(()),
        other => Err(format!(
            "{:?}: (total, unhealthy) {other:?} of {copysets}",
            health.verdict
        )),
    }
}

impl std::ops::Deref for TestEnv {
    type Target = BareEnv;

    fn deref(&self) -> &BareEnv {
        &self.bare
    }
}

impl Drop for TestEnv {
    fn drop(&mut self) {
        // Stop daemons first, then remove what the test created. Nothing waits for the
        // namespace to be gone: pods are removed at once (grace period 0) and the namespace
        // controller finishes the rest.
        if std::thread::panicking() {
            self.kubelet.dump();
        }
        if std::env::var_os("CURVE_E2E_KEEP").is_some() {
            let _ = std::fs::write(self.dir.path().join("kubelet.log"), self.kubelet.log());
        }
        self.kubelet.stop();
        self.bare.remove_without_waiting();
        let ns = self.namespace.as_str();
        let _ = kubectl(
            &[
                "delete",
                "nodes",
                "-l",
                &format!("{SUITE_LABEL}={ns}"),
                "--wait=false",
            ],
            None,
        );
        let nodes: Vec<String> = self.kubelet.nodes().into_iter().map(|n| n.name).collect();
        if !nodes.is_empty() {
            let mut args = vec![
                "delete",
                "leases",
                "-n",
                "kube-node-lease",
                "--ignore-not-found",
                "--wait=false",
            ];
            args.extend(nodes.iter().map(String::as_str));
            let _ = kubectl(&args, None);
        }
        crate::util::say(&format!(
            "{ns}: {:.1?}, namespace and nodes removed",
            self.started.elapsed()
        ));
    }
}

/// Creates the test namespace `e2e-<tag>-<pid>`, labelled as the suite's, and waits for its
/// default ServiceAccount: pods cannot be created before it exists.
pub async fn create_namespace(client: &Client, tag: &str) -> String {
    let namespace = format!("e2e-{tag}-{}", std::process::id());
    let namespaces: Api<Namespace> = Api::all(client.clone());
    let object: Namespace = serde_json::from_value(
        json!({"metadata": {"name": namespace, "labels": {SUITE_LABEL: "true"}}}),
    )
    .unwrap();
    namespaces
        .create(&PostParams::default(), &object)
        .await
        .unwrap_or_else(|e| panic!("create namespace {namespace}: {e}"));
    let accounts: Api<ServiceAccount> = Api::namespaced(client.clone(), &namespace);
    eventually(
        "the namespace's default ServiceAccount",
        Duration::from_secs(30),
        || async {
            accounts
                .get_opt("default")
                .await
                .map_err(|e| e.to_string())?
                .map(|_| ())
                .ok_or_else(|| "absent".to_string())
        },
    )
    .await;
    namespace
}

/// Rows of kubectl's table output as header → value, cut at the header's column starts.
pub fn parse_table(text: &str) -> Vec<BTreeMap<String, String>> {
    let mut lines = text.lines().filter(|l| !l.trim().is_empty());
    let Some(header) = lines.next() else {
        return Vec::new();
    };
    let mut starts: Vec<(usize, String)> = Vec::new();
    let mut previous = ' ';
    for (i, c) in header.char_indices() {
        if c != ' ' && previous == ' ' {
            let name: String = header[i..].split(' ').next().unwrap().to_string();
            starts.push((i, name));
        }
        previous = c;
    }
    lines
        .map(|line| {
            starts
                .iter()
                .enumerate()
                .map(|(k, (start, name))| {
                    let end = starts
                        .get(k + 1)
                        .map(|(s, _)| *s)
                        .unwrap_or(line.len())
                        .min(line.len());
                    let value = line
                        .get((*start).min(line.len())..end)
                        .unwrap_or("")
                        .trim()
                        .to_string();
                    (name.clone(), value)
                })
                .collect()
        })
        .collect()
}

pub fn condition<'a>(status: &'a CurveClusterStatus, type_: &str) -> Option<&'a Condition> {
    status.conditions.iter().find(|c| c.type_ == type_)
}

pub fn expect_condition(
    status: &CurveClusterStatus,
    type_: &str,
    value: &str,
) -> Result<(), String> {
    match condition(status, type_) {
        Some(c) if c.status == value => Ok(()),
        Some(c) => Err(format!(
            "{type_} is {} ({}: {})",
            c.status, c.reason, c.message
        )),
        None => Err(format!("no {type_} condition")),
    }
}

/// A one-line view of a status, for failure messages.
pub fn summary(status: &CurveClusterStatus) -> String {
    let conditions: Vec<String> = status
        .conditions
        .iter()
        .map(|c| format!("{}={}({})", c.type_, c.status, c.reason))
        .collect();
    format!(
        "phase={:?} gen={:?} etcd={:?} mds={:?}/{:?} cs={:?} [{}]",
        status.phase,
        status.observed_generation,
        status.etcd.as_ref().map(|e| &e.pods.ready),
        status.mds.as_ref().map(|m| &m.pods.ready),
        status.mds.as_ref().and_then(|m| m.primary.clone()),
        status.chunkservers.as_ref().map(|c| &c.ready),
        conditions.join(" ")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_are_cut_at_the_header_columns() {
        let text = "NAME   PHASE       PRIMARY      ETCD   MDS   CHUNKSERVERS   AGE\n\
                    demo   Available   demo-mds-0   3/3    3/3   3/3            12s\n\
                    x      Creating                 0/3                         1s\n";
        let rows = parse_table(text);
        assert_eq!(rows[0]["PRIMARY"], "demo-mds-0");
        assert_eq!(rows[0]["CHUNKSERVERS"], "3/3");
        assert_eq!(rows[1]["PRIMARY"], "");
        assert_eq!(rows[1]["ETCD"], "0/3");
        assert_eq!(rows[1]["AGE"], "1s");
    }
}
