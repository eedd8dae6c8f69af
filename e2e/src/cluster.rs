//! The Kubernetes API server under test: the connection from KUBECONFIG (checked before any
//! test does anything), `kubectl`, the CRD, and the operator's RBAC and token.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use k8s_openapi::api::core::v1::{Namespace, Node};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, ListParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Client, Config};

use crate::util::{eventually, repo_root, stop};
use crate::{hosts, process};

/// Label of every object the suite creates outside a test namespace (fake nodes) and of the
/// test namespaces themselves.
pub const SUITE_LABEL: &str = "e2e.curve.opencurve.io/suite";
pub const CRD_NAME: &str = "curveclusters.curve.opencurve.io";
/// Namespace of the operator's ServiceAccount in the rendered chart (deploy/operator.yaml).
pub const OPERATOR_NAMESPACE: &str = "curve-system";
pub const OPERATOR_SERVICE_ACCOUNT: &str = "curve-operator";

/// KUBECONFIG, which the suite requires explicitly: it creates Nodes and plays the kubelet,
/// so it must never fall back to whatever cluster ~/.kube/config points at.
pub fn kubeconfig_path() -> PathBuf {
    match std::env::var_os("KUBECONFIG") {
        Some(path) if !path.is_empty() => PathBuf::from(path),
        _ => stop(
            "KUBECONFIG is not set. The e2e suite needs a Kubernetes API server without nodes; run\n  \
             KUBECONFIG=/path/to/kubeconfig cargo test -p curve-operator-e2e -- --ignored --test-threads=1\n\
             (see e2e/README.md)",
        ),
    }
}

/// A client for the cluster in KUBECONFIG, or the whole run stops with a message saying why
/// (unreadable kubeconfig, API server not answering within a few seconds).
pub async fn connect() -> Client {
    connect_with(true).await
}

/// [`connect`] without kube's retries of 429, 503 and 504 (on by default, honouring
/// `Retry-After`): the API server's answers as they come, e.g. an eviction the disruption
/// budget refuses.
pub async fn connect_without_retries() -> Client {
    connect_with(false).await
}

async fn connect_with(retries: bool) -> Client {
    let path = kubeconfig_path();
    let kubeconfig = Kubeconfig::read_from(&path)
        .unwrap_or_else(|e| stop(&format!("cannot read KUBECONFIG={}: {e}", path.display())));
    let mut config = Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
        .await
        .unwrap_or_else(|e| stop(&format!("cannot use KUBECONFIG={}: {e}", path.display())));
    config.connect_timeout = Some(Duration::from_secs(3));
    config.default_retry = retries;
    let server = config.cluster_url.to_string();
    let client = Client::try_from(config)
        .unwrap_or_else(|e| stop(&format!("cannot build a client for {server}: {e}")));
    match tokio::time::timeout(Duration::from_secs(5), client.apiserver_version()).await {
        Ok(Ok(_)) => client,
        Ok(Err(e)) => stop(&format!(
            "the Kubernetes API server at {server} (KUBECONFIG={}) does not answer: {e}",
            path.display()
        )),
        Err(_) => stop(&format!(
            "the Kubernetes API server at {server} (KUBECONFIG={}) does not answer within 5 s",
            path.display()
        )),
    }
}

/// Checks the suite may run here and removes what a killed earlier run left behind. Stops the
/// run when the cluster has real nodes (a real scheduler and kubelets would fight the suite's
/// fake ones) or /etc/hosts is not writable.
pub async fn preflight(client: &Client) {
    let nodes: Api<Node> = Api::all(client.clone());
    let list = nodes
        .list(&ListParams::default())
        .await
        .unwrap_or_else(|e| stop(&format!("cannot list nodes: {e}")));
    let real: Vec<String> = list
        .items
        .iter()
        .filter(|n| {
            n.metadata
                .labels
                .as_ref()
                .is_none_or(|l| !l.contains_key(SUITE_LABEL))
        })
        .filter_map(|n| n.metadata.name.clone())
        .collect();
    if !real.is_empty() {
        stop(&format!(
            "the cluster has real nodes ({}). The e2e suite plays scheduler and kubelet itself with fake \
             nodes and needs a control plane without nodes.",
            real.join(", ")
        ));
    }
    if let Err(e) = hosts::writable() {
        stop(&format!(
            "{e}: the suite resolves pod DNS names through /etc/hosts and must run as root"
        ));
    }
    // Leftovers of a run that was killed before its cleanup ran.
    process::kill_stale();
    hosts::remove_all_stale();
    for node in list.items.iter().filter_map(|n| n.metadata.name.clone()) {
        let _ = nodes.delete(&node, &Default::default()).await;
    }
    let namespaces: Api<Namespace> = Api::all(client.clone());
    if let Ok(stale) = namespaces
        .list(&ListParams::default().labels(SUITE_LABEL))
        .await
    {
        for ns in &stale.items {
            remove_namespace(&ns.metadata.name.clone().unwrap_or_default());
        }
    }
}

/// Removes a test namespace without waiting, when no operator or kubelet runs for it any more:
/// CurveClusters lose their finalizers (the operator that would remove them is gone), pods go
/// at once (no kubelet would confirm a graceful deletion), then the namespace is deleted.
pub fn remove_namespace(ns: &str) {
    let clusters = kubectl(&["get", "curveclusters", "-n", ns, "-o", "name"], None);
    for cluster in clusters.stdout.lines().filter(|l| !l.is_empty()) {
        let _ = kubectl(
            &[
                "patch",
                cluster,
                "-n",
                ns,
                "--type=merge",
                "-p",
                r#"{"metadata":{"finalizers":null}}"#,
            ],
            None,
        );
    }
    let _ = kubectl(&["delete", "namespace", ns, "--wait=false"], None);
    let _ = kubectl(
        &[
            "delete",
            "pods",
            "--all",
            "-n",
            ns,
            "--force",
            "--grace-period=0",
            "--wait=false",
        ],
        None,
    );
}

/// What a kubectl run printed.
#[derive(Debug)]
pub struct Output {
    pub success: bool,
    pub stdout: String,
    pub stderr: String,
}

impl Output {
    /// stdout, or a panic with both streams when kubectl failed.
    pub fn ok(self, what: &str) -> String {
        assert!(
            self.success,
            "kubectl {what} failed:\n{}\n{}",
            self.stdout, self.stderr
        );
        self.stdout
    }
}

/// Runs kubectl (from PATH) with KUBECONFIG, `stdin` piped in when given.
pub fn kubectl(args: &[&str], stdin: Option<&str>) -> Output {
    kubectl_as(&kubeconfig_path(), args, stdin)
}

pub fn kubectl_as(kubeconfig: &Path, args: &[&str], stdin: Option<&str>) -> Output {
    use std::io::Write;
    let mut child = Command::new("kubectl")
        .env("KUBECONFIG", kubeconfig)
        .args(args)
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run kubectl (needed on PATH): {e}"));
    if let Some(input) = stdin {
        child
            .stdin
            .take()
            .unwrap()
            .write_all(input.as_bytes())
            .expect("write kubectl's stdin");
    }
    let out = child.wait_with_output().expect("kubectl runs");
    Output {
        success: out.status.success(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// `kubectl apply -f crds/`, then waits until the API server reports the CRD Established.
/// Returns kubectl's output.
pub async fn install_crd(client: &Client) -> String {
    let dir = repo_root().join("crds");
    let out = kubectl(&["apply", "-f", dir.to_str().unwrap()], None).ok("apply -f crds/");
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    eventually(
        "the CurveCluster CRD to be Established",
        Duration::from_secs(30),
        || async {
            let crd = crds.get(CRD_NAME).await.map_err(|e| e.to_string())?;
            let conditions = crd.status.and_then(|s| s.conditions).unwrap_or_default();
            match conditions.iter().find(|c| c.type_ == "Established") {
                Some(c) if c.status == "True" => Ok(()),
                other => Err(format!("Established: {other:?}")),
            }
        },
    )
    .await;
    out
}

/// The ServiceAccount and the RBAC objects (ClusterRole, Roles and their bindings) of the
/// rendered Helm chart (deploy/operator.yaml), applied as they are.
pub fn install_operator_rbac() {
    let manifest = std::fs::read_to_string(repo_root().join("deploy/operator.yaml"))
        .expect("read deploy/operator.yaml");
    let wanted = [
        "ServiceAccount",
        "ClusterRole",
        "ClusterRoleBinding",
        "Role",
        "RoleBinding",
    ];
    let docs: Vec<&str> = manifest
        .split("\n---")
        .filter(|doc| {
            doc.lines()
                .any(|l| wanted.iter().any(|k| l.trim() == format!("kind: {k}")))
        })
        .collect();
    // The leader-election Role and the node Leases' Role, each with its binding.
    assert_eq!(
        docs.len(),
        7,
        "deploy/operator.yaml should hold a ServiceAccount, a ClusterRole, two Roles and their bindings"
    );
    let namespace =
        format!("apiVersion: v1\nkind: Namespace\nmetadata:\n  name: {OPERATOR_NAMESPACE}\n");
    let input = std::iter::once(namespace.as_str())
        .chain(docs)
        .collect::<Vec<_>>()
        .join("\n---\n");
    kubectl(&["apply", "-f", "-"], Some(&input)).ok("apply the operator's RBAC");
}

/// A kubeconfig for the operator: the same API server, authenticated as the chart's
/// ServiceAccount with a fresh token, so the operator has exactly the chart's permissions.
pub fn operator_kubeconfig(dir: &Path) -> PathBuf {
    install_operator_rbac();
    let token = kubectl(
        &[
            "create",
            "token",
            OPERATOR_SERVICE_ACCOUNT,
            "-n",
            OPERATOR_NAMESPACE,
            "--duration=2h",
        ],
        None,
    )
    .ok("create token")
    .trim()
    .to_string();
    let view = kubectl(
        &[
            "config",
            "view",
            "--raw",
            "--minify",
            "--flatten",
            "-o",
            "json",
        ],
        None,
    )
    .ok("config view");
    let view: serde_json::Value =
        serde_json::from_str(&view).expect("kubectl config view prints JSON");
    let cluster = &view["clusters"][0]["cluster"];
    let server = cluster["server"]
        .as_str()
        .expect("a server in the kubeconfig");
    let mut cluster_entry = serde_json::json!({ "server": server });
    for key in [
        "certificate-authority-data",
        "insecure-skip-tls-verify",
        "tls-server-name",
    ] {
        if !cluster[key].is_null() {
            cluster_entry[key] = cluster[key].clone();
        }
    }
    let config = serde_json::json!({
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{ "name": "e2e", "cluster": cluster_entry }],
        "users": [{ "name": "curve-operator", "user": { "token": token } }],
        "contexts": [{ "name": "operator", "context": { "cluster": "e2e", "user": "curve-operator", "namespace": OPERATOR_NAMESPACE } }],
        "current-context": "operator",
    });
    let path = dir.join("operator.kubeconfig");
    std::fs::write(&path, serde_json::to_string_pretty(&config).unwrap())
        .expect("write the operator's kubeconfig");
    path
}
