//! curve-csi deployed and kept wired by the operator (issue 34), against a real API server.
//!
//!   KUBECONFIG=/path/to/kubeconfig cargo test -p curve-operator-e2e --test csi -- --ignored
//!
//! No CSI call runs here: there is no kubelet (the suite plays it, and curve-csi's containers
//! are only marked Running) and no nbd, so no volume is created, attached or mounted. What is
//! checked is what the operator does through the API: curve-csi's objects once the cluster is
//! Available, `MDSADDR` following the MDS pods, a node plugin pod held while a
//! VolumeAttachment of the driver is on its node, the StorageClass as `kubectl` shows it, and
//! a deletion refused while a PersistentVolume of the class is bound. On a real cluster one
//! would also check that a claim of the class gets a Curve volume, that a pod mounts it
//! (`/dev/nbd*` on its node), that it survives a controller roll, and the node plugin's
//! restart once the volume is detached.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use curve_operator::names::CSI_DRIVER;
use curve_operator_e2e::env::{TestEnv, condition};
use curve_operator_e2e::manifests::curve_cluster;
use curve_operator_e2e::util::{eventually, say};
use k8s_openapi::api::apps::v1::{DaemonSet, Deployment};
use k8s_openapi::api::core::v1::{PersistentVolume, PersistentVolumeClaim, Pod};
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding};
use k8s_openapi::api::storage::v1::{CSIDriver, StorageClass, VolumeAttachment};
use kube::Api;
use kube::api::{DeleteParams, PostParams};
use serde_json::json;

const BRING_UP: Duration = Duration::from_secs(240);
const SOON: Duration = Duration::from_secs(60);

/// Cluster-scoped objects of an earlier run that was killed before its cleanup.
fn remove_leftovers() {
    let _ = std::process::Command::new("kubectl")
        .args([
            "delete",
            "storageclass,csidriver,clusterrole,clusterrolebinding",
            "-l",
            "app.kubernetes.io/managed-by=curve-operator",
            "--ignore-not-found",
        ])
        .output();
}

/// `MDSADDR` of the curve-csi container of a pod template's containers.
fn mds_addr(containers: &[k8s_openapi::api::core::v1::Container]) -> Option<String> {
    curve_operator::desired::csi::mds_addr_of(containers)
}

/// The MDS pods' `hostIP:port`, by ordinal, when every one runs.
async fn mds_addresses(env: &TestEnv) -> Result<Vec<String>, String> {
    let pods: Api<Pod> = env.api();
    let mut addresses = BTreeMap::new();
    for ordinal in 0..3 {
        let name = format!("demo-mds-{ordinal}");
        let pod = pods.get(&name).await.map_err(|e| format!("{name}: {e}"))?;
        let ip = (pod.status.as_ref()).and_then(|s| s.host_ip.clone());
        let ip = ip.ok_or(format!("{name} has no host IP yet"))?;
        addresses.insert(ordinal, format!("{ip}:6700"));
    }
    Ok(addresses.into_values().collect())
}

async fn controller_mds_addr(env: &TestEnv) -> Result<String, String> {
    let deployments: Api<Deployment> = env.api();
    let controller = (deployments.get_opt("demo-csi-controller").await)
        .map_err(|e| e.to_string())?
        .ok_or("no controller Deployment")?;
    let spec = controller.spec.and_then(|s| s.template.spec);
    spec.and_then(|s| mds_addr(&s.containers))
        .ok_or("no MDSADDR".into())
}

/// The node plugin pods: node → (pod name, uid, config hash).
async fn node_plugins(env: &TestEnv) -> BTreeMap<String, (String, String, String)> {
    let pods: Api<Pod> = env.api();
    let listed = pods
        .list(&kube::api::ListParams::default().labels("app.kubernetes.io/component=csi-node"))
        .await
        .unwrap();
    (listed.items.into_iter())
        .filter(|p| p.metadata.deletion_timestamp.is_none())
        .filter_map(|p| {
            let node = p.spec.as_ref()?.node_name.clone()?;
            let config = (p.metadata.annotations.as_ref())
                .and_then(|a| a.get("curve.opencurve.io/csi-node-config").cloned())
                .unwrap_or_default();
            Some((node, (p.metadata.name?, p.metadata.uid?, config)))
        })
        .collect()
}

/// The node plugin template's config hash, as its DaemonSet holds it.
async fn node_config(env: &TestEnv) -> Option<String> {
    let sets: Api<DaemonSet> = env.api();
    let set = sets.get_opt("demo-csi-node").await.ok()??;
    curve_operator::desired::csi::node_config_of(&set)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs a Kubernetes API server (KUBECONFIG), see e2e/README.md"]
async fn csi_deployed_kept_wired_and_guarding_deletion() {
    remove_leftovers();
    let env = TestEnv::new("csi", 4).await;
    let _operator = env.start_operator().await;
    let applied = Instant::now();
    let spec = json!({"csi": {"enabled": true, "storageClass": {"name": "curve", "user": "k8s"}}});
    env.kubectl_stdin(
        &["apply", "-f", "-"],
        &curve_cluster("demo", spec).to_string(),
    )
    .ok("apply demo");
    env.wait_available("demo", BRING_UP).await;
    say(&format!(
        "Available {:.1}s after the apply",
        applied.elapsed().as_secs_f64()
    ));

    // Once Available: every object, the controller wired to the MDS pods.
    let wired = eventually("MDSADDR equals the MDS addresses", SOON, || async {
        let want = mds_addresses(&env).await?.join(",");
        let have = controller_mds_addr(&env).await?;
        (have == want)
            .then_some(have.clone())
            .ok_or(format!("{have} != {want}"))
    })
    .await;
    say(&format!("controller MDSADDR={wired}"));
    let all = |client: &kube::Client| {
        (
            Api::<ClusterRole>::all(client.clone()),
            Api::<ClusterRoleBinding>::all(client.clone()),
            Api::<CSIDriver>::all(client.clone()),
            Api::<StorageClass>::all(client.clone()),
        )
    };
    let (roles, bindings, drivers, classes) = all(&env.client);
    let role = format!("curve-csi-{}-demo", env.namespace);
    assert!(roles.get_opt(&role).await.unwrap().is_some(), "{role}");
    assert!(bindings.get_opt(&role).await.unwrap().is_some(), "{role}");
    let driver = drivers.get(CSI_DRIVER).await.unwrap();
    assert_eq!(driver.spec.attach_required, Some(true));
    // The StorageClass comes last, once the rest exists (possibly a pass later).
    let class = eventually("the StorageClass", SOON, || async {
        (classes.get_opt("curve").await.map_err(|e| e.to_string())?)
            .ok_or_else(|| "no StorageClass curve yet".to_string())
    })
    .await;
    assert_eq!(class.provisioner, CSI_DRIVER);
    let shown = env.kubectl(&["get", "storageclass", "curve", "--no-headers"]);
    let shown = shown.ok("kubectl get storageclass curve");
    assert!(shown.contains("curve.csi.netease.com"), "{shown}");
    say(&format!("kubectl get storageclass: {}", shown.trim()));
    let plugins = eventually("a node plugin pod on every node", SOON, || async {
        let plugins = node_plugins(&env).await;
        (plugins.len() == 4)
            .then_some(plugins.clone())
            .ok_or(format!("{plugins:?}"))
    })
    .await;

    // A Curve volume attached on node-1 (as the attacher would record it).
    let attachments: Api<VolumeAttachment> = Api::all(env.client.clone());
    let attachment = format!("csi-e2e-{}", env.namespace);
    attachments
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({
                "metadata": {"name": attachment},
                "spec": {"attacher": CSI_DRIVER, "nodeName": "node-1",
                         "source": {"persistentVolumeName": format!("pv-{}", env.namespace)}}
            }))
            .unwrap(),
        )
        .await
        .unwrap();

    // An MDS pod moves to the node without one: its node refuses new pods, the pod goes.
    let pods: Api<Pod> = env.api();
    let moving = pods.get("demo-mds-2").await.unwrap();
    let from = moving.spec.unwrap().node_name.unwrap();
    env.kubectl(&["taint", "node", &from, "e2e-csi=mds-moves:NoSchedule"])
        .ok("taint");
    let moved_at = Instant::now();
    pods.delete("demo-mds-2", &DeleteParams::default())
        .await
        .unwrap();
    let followed = eventually(
        "the controller's MDSADDR follows the moved MDS",
        SOON * 2,
        || async {
            let pod = pods.get("demo-mds-2").await.map_err(|e| e.to_string())?;
            let node = pod.spec.and_then(|s| s.node_name).unwrap_or_default();
            if node.is_empty() || node == from {
                return Err(format!("demo-mds-2 on {node:?}"));
            }
            let want = mds_addresses(&env).await?.join(",");
            let have = controller_mds_addr(&env).await?;
            (have == want)
                .then_some((node, have.clone()))
                .ok_or(format!("{have} != {want}"))
        },
    )
    .await;
    say(&format!(
        "MDS moved {from} → {}: controller MDSADDR={} {:.1}s after the pod was deleted",
        followed.0,
        followed.1,
        moved_at.elapsed().as_secs_f64()
    ));
    assert_ne!(followed.1, wired);

    // The node plugins: replaced where no volume is attached, held on node-1.
    let held = env
        .wait_status("demo", "CsiConfigPending names node-1", SOON * 2, |_, s| {
            let c = condition(s, "CsiConfigPending").ok_or("no CsiConfigPending")?;
            (c.status == "True" && c.reason == "VolumesAttached" && c.message.contains("node-1"))
                .then_some(())
                .ok_or(format!("{} {}: {}", c.status, c.reason, c.message))
        })
        .await;
    let message = condition(&held.status.unwrap(), "CsiConfigPending")
        .unwrap()
        .message
        .clone();
    say(&format!("HELD: {message}"));
    let current = node_config(&env).await.expect("the DaemonSet's config");
    eventually("node plugins replaced except on node-1", SOON, || async {
        let now = node_plugins(&env).await;
        let replaced = (now.iter())
            .filter(|(node, _)| node.as_str() != "node-1" && *node != &from)
            .all(|(_, (_, _, config))| config == &current);
        let on_node_1 = now.get("node-1").map(|(_, uid, _)| uid.clone());
        (replaced && on_node_1 == plugins.get("node-1").map(|(_, uid, _)| uid.clone()))
            .then_some(())
            .ok_or(format!("{now:?}"))
    })
    .await;
    assert!(
        !message.contains(&from) || from == "node-1",
        "only nodes with volumes are held: {message}"
    );

    // Allowed by the annotation: node-1's pod is replaced too.
    env.kubectl(&[
        "annotate",
        "curvecluster",
        "demo",
        "curve.opencurve.io/csi-restart-nodes=node-1",
    ])
    .ok("annotate");
    env.wait_status("demo", "every node plugin current", SOON, |_, s| {
        let c = condition(s, "CsiConfigPending").ok_or("no CsiConfigPending")?;
        (c.status == "False" && c.reason == "NodePluginsCurrent")
            .then_some(())
            .ok_or(format!("{} {}: {}", c.status, c.reason, c.message))
    })
    .await;
    let replaced = node_plugins(&env).await;
    assert_ne!(
        replaced.get("node-1").map(|(_, uid, _)| uid),
        plugins.get("node-1").map(|(_, uid, _)| uid),
        "node-1's node plugin was replaced"
    );
    say("node-1's node plugin replaced once the annotation allowed it");

    // Deleting the cluster with a bound volume of the class: refused, named.
    let volume = format!("pv-{}", env.namespace);
    let volumes: Api<PersistentVolume> = Api::all(env.client.clone());
    volumes
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({
                "metadata": {"name": volume},
                "spec": {
                    "capacity": {"storage": "10Gi"},
                    "accessModes": ["ReadWriteOnce"],
                    "persistentVolumeReclaimPolicy": "Retain",
                    "storageClassName": "curve",
                    "csi": {"driver": CSI_DRIVER, "volumeHandle": "0003-k8s-csi-vol-e2e"},
                    "claimRef": {"namespace": env.namespace, "name": "data"}
                }
            }))
            .unwrap(),
        )
        .await
        .unwrap();
    let claims: Api<PersistentVolumeClaim> = env.api();
    claims
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({
                "metadata": {"name": "data"},
                "spec": {"accessModes": ["ReadWriteOnce"], "storageClassName": "curve",
                         "volumeName": volume, "resources": {"requests": {"storage": "10Gi"}}}
            }))
            .unwrap(),
        )
        .await
        .unwrap();
    eventually("the volume is bound", SOON, || async {
        let pv = volumes.get(&volume).await.map_err(|e| e.to_string())?;
        let phase = pv.status.and_then(|s| s.phase).unwrap_or_default();
        (phase == "Bound").then_some(()).ok_or(phase)
    })
    .await;
    env.kubectl(&["delete", "curvecluster", "demo", "--wait=false"])
        .ok("delete demo");
    let blocked = env
        .wait_status("demo", "DeletionBlocked names the volume", SOON, |_, s| {
            let c = condition(s, "DeletionBlocked").ok_or("no DeletionBlocked")?;
            (c.reason == "PersistentVolumesBound" && c.message.contains(&volume))
                .then_some(())
                .ok_or(c.message.clone())
        })
        .await;
    assert!(blocked.metadata.deletion_timestamp.is_some());
    say(&format!(
        "DELETION REFUSED: {}",
        condition(&blocked.status.unwrap(), "DeletionBlocked")
            .unwrap()
            .message
    ));
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert!(
        env.clusters().get_opt("demo").await.unwrap().is_some(),
        "the CurveCluster stays while the volume is bound"
    );
    assert!(classes.get_opt("curve").await.unwrap().is_some());

    // The claim goes: the deletion proceeds, the cluster-scoped objects with it.
    claims
        .delete("data", &DeleteParams::default())
        .await
        .unwrap();
    eventually(
        "the CurveCluster and its cluster-scoped objects gone",
        SOON,
        || async {
            let cluster = env
                .clusters()
                .get_opt("demo")
                .await
                .map_err(|e| e.to_string())?;
            let class = classes.get_opt("curve").await.map_err(|e| e.to_string())?;
            let driver = drivers
                .get_opt(CSI_DRIVER)
                .await
                .map_err(|e| e.to_string())?;
            let role = roles.get_opt(&role).await.map_err(|e| e.to_string())?;
            (cluster.is_none() && class.is_none() && driver.is_none() && role.is_none())
                .then_some(())
                .ok_or(format!(
                    "cluster {} class {} driver {} role {}",
                    cluster.is_some(),
                    class.is_some(),
                    driver.is_some(),
                    role.is_some()
                ))
        },
    )
    .await;
    say(
        "deleted once no volume of the class was bound; StorageClass, CSIDriver and ClusterRole gone",
    );
    let _ = volumes.delete(&volume, &DeleteParams::default()).await;
    let _ = attachments
        .delete(&attachment, &DeleteParams::default())
        .await;
    remove_leftovers();
}
