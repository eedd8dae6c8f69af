//! `spec.csi` → the objects of curve-csi for one cluster. Pure, like every builder.
//!
//! What they copy (curve-csi ed02bd6, `deploy/manifests/`): the node plugin DaemonSet of
//! `node-plugin-daemonset.yaml` (l.1-125: host network and PID, privileged, the kubelet's
//! plugin and pod directories with Bidirectional propagation, /dev, /sys, /lib/modules,
//! `updateStrategy: OnDelete`) and the controller Deployment of `provisioner-deploy.yaml`
//! (l.1-147: 2 replicas kept apart, the provisioner, attacher and resizer sidecars), with
//! `MDSADDR` set from the MDS pods the operator sees instead of the manifests' fixed
//! `10.0.0.1:6700,...` (l.72-73, l.129-130). curve-csi's `entrypoint.sh` writes it into
//! `/etc/curve/client.conf` as `mds.listen.addr` (build/curve-csi/entrypoint.sh:3), which
//! Curve's client splits on commas (curve v1.2.6 src/client/client_config.cpp:176-181).
//!
//! Where they differ from the manifests, and why:
//! - No csi-snapshotter and no `--snapshot-server`: snapshots and clones need a
//!   SnapshotCloneServer (and S3), which the operator does not deploy; without the flag
//!   curve-csi answers those calls `Unimplemented` (pkg/curve/controllerserver.go:160, 251,
//!   328, 429) instead of calling a server that is not there.
//! - The node plugin gets no RBAC and no API token: neither curve-csi (no client-go in its
//!   `cmd/` and `pkg/`) nor the node-driver-registrar (it talks to the kubelet's registration
//!   socket) calls the API server; the manifests' `nodes get/list/update` grant
//!   (node-plugin-rbac.yaml:26-29) is not needed.
//! - The controller's grant is the manifests' (provisioner-rbac.yaml:26-74) without the
//!   snapshot kinds, `secrets` (the StorageClass names no secret) and the long-gone
//!   `csi.storage.k8s.io/csinodeinfos`; leader election uses Leases only (the sidecars'
//!   default), in a namespaced Role.
//! - A `CSIDriver` object (the manifests have none) with `attachRequired: true`, which is what
//!   Kubernetes assumes without one: the attacher then creates a VolumeAttachment for every
//!   volume a node uses, which is how the operator tells whether a node has Curve volumes
//!   (curve-csi has no ControllerPublish capability, pkg/curve/curve.go:90-96, so the
//!   attacher marks them attached without calling it).

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::{
    DaemonSet, DaemonSetSpec, DaemonSetUpdateStrategy, Deployment, DeploymentSpec,
    DeploymentStrategy, RollingUpdateDeployment,
};
use k8s_openapi::api::core::v1::{
    Capabilities, Container, EmptyDirVolumeSource, EnvVar, EnvVarSource, HostPathVolumeSource,
    LocalObjectReference, ObjectFieldSelector, PodSpec, PodTemplateSpec, SecurityContext,
    ServiceAccount, Volume, VolumeMount,
};
use k8s_openapi::api::rbac::v1::{
    ClusterRole, ClusterRoleBinding, PolicyRule, Role, RoleBinding, RoleRef, Subject,
};
use k8s_openapi::api::storage::v1::{CSIDriver, CSIDriverSpec, StorageClass};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use super::common::{anti_affinity, object_meta};
use crate::names::{
    CSI_CONTROLLER, CSI_DRIVER, CSI_NODE, LABEL_NAMESPACE, csi_cluster_role_name, csi_labels,
    csi_name, csi_selector_labels,
};
use crate::validate::ValidatedCluster;

/// The annotation on the node plugin's pod template (and so on its pods) holding the hash of
/// the template: a pod with another hash runs an outdated config (another `MDSADDR`).
pub const NODE_CONFIG_ANNOTATION: &str = "curve.opencurve.io/csi-node-config";
/// The StorageClass annotation Kubernetes reads for the default class.
pub const DEFAULT_CLASS_ANNOTATION: &str = "storageclass.kubernetes.io/is-default-class";
/// The kubelet's directory on every node (curve-csi's manifests assume it).
const KUBELET_DIR: &str = "/var/lib/kubelet";
/// The controller's replicas, kept apart (provisioner-deploy.yaml:8, l.17-26).
const CONTROLLER_REPLICAS: i32 = 2;

/// Every curve-csi object of one cluster.
#[derive(Clone, Debug, PartialEq)]
pub struct Csi {
    /// The `MDSADDR` both the node plugin and the controller get.
    pub mds_addr: String,
    /// The node plugin's template hash ([`NODE_CONFIG_ANNOTATION`]).
    pub node_config: String,
    pub service_accounts: Vec<ServiceAccount>,
    pub role: Role,
    pub role_binding: RoleBinding,
    pub cluster_role: ClusterRole,
    pub cluster_role_binding: ClusterRoleBinding,
    pub driver: CSIDriver,
    pub node_plugin: DaemonSet,
    pub controller: Deployment,
    pub storage_class: StorageClass,
}

/// The objects `spec.csi` asks for, with the MDS addresses (`ip:port`) the operator sees;
/// `None` when csi is off.
pub fn build(cluster: &ValidatedCluster, mds_addresses: &[String]) -> Option<Csi> {
    if !cluster.spec.csi.enabled {
        return None;
    }
    let mds_addr = mds_addresses.join(",");
    let node_plugin = node_plugin(cluster, &mds_addr);
    let node_config = node_config_of(&node_plugin).unwrap_or_default();
    Some(Csi {
        service_accounts: [CSI_NODE, CSI_CONTROLLER]
            .into_iter()
            .map(|part| service_account(cluster, part))
            .collect(),
        role: Role {
            metadata: object_meta(
                cluster,
                csi_name(&cluster.name, CSI_CONTROLLER),
                csi_labels(&cluster.name, CSI_CONTROLLER),
            ),
            rules: Some(LEADER_ELECTION.iter().map(PolicyRule::from).collect()),
        },
        role_binding: RoleBinding {
            metadata: object_meta(
                cluster,
                csi_name(&cluster.name, CSI_CONTROLLER),
                csi_labels(&cluster.name, CSI_CONTROLLER),
            ),
            role_ref: RoleRef {
                api_group: "rbac.authorization.k8s.io".into(),
                kind: "Role".into(),
                name: csi_name(&cluster.name, CSI_CONTROLLER),
            },
            subjects: Some(vec![controller_subject(cluster)]),
        },
        cluster_role: ClusterRole {
            metadata: cluster_scoped_meta(
                cluster,
                csi_cluster_role_name(&cluster.namespace, &cluster.name),
            ),
            rules: Some(CONTROLLER_GRANTS.iter().map(PolicyRule::from).collect()),
            aggregation_rule: None,
        },
        cluster_role_binding: ClusterRoleBinding {
            metadata: cluster_scoped_meta(
                cluster,
                csi_cluster_role_name(&cluster.namespace, &cluster.name),
            ),
            role_ref: RoleRef {
                api_group: "rbac.authorization.k8s.io".into(),
                kind: "ClusterRole".into(),
                name: csi_cluster_role_name(&cluster.namespace, &cluster.name),
            },
            subjects: Some(vec![controller_subject(cluster)]),
        },
        driver: CSIDriver {
            metadata: cluster_scoped_meta(cluster, CSI_DRIVER.to_string()),
            spec: CSIDriverSpec {
                attach_required: Some(true),
                pod_info_on_mount: Some(false),
                volume_lifecycle_modes: Some(vec!["Persistent".into()]),
                ..CSIDriverSpec::default()
            },
        },
        controller: controller(cluster, &mds_addr),
        storage_class: storage_class(cluster),
        node_plugin,
        node_config,
        mds_addr,
    })
}

/// One RBAC rule as the builders and the operator's own RBAC list share it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Grant {
    pub group: &'static str,
    pub resources: &'static [&'static str],
    pub verbs: &'static [&'static str],
}

impl From<&Grant> for PolicyRule {
    fn from(grant: &Grant) -> Self {
        PolicyRule {
            api_groups: Some(vec![grant.group.to_string()]),
            resources: Some(grant.resources.iter().map(|r| r.to_string()).collect()),
            verbs: grant.verbs.iter().map(|v| v.to_string()).collect(),
            ..PolicyRule::default()
        }
    }
}

const fn grant(
    group: &'static str,
    resources: &'static [&'static str],
    verbs: &'static [&'static str],
) -> Grant {
    Grant {
        group,
        resources,
        verbs,
    }
}

/// The controller's sidecars cluster-wide (provisioner-rbac.yaml:26-74 at curve-csi ed02bd6,
/// without snapshots, secrets and csinodeinfos): the provisioner creates and deletes
/// PersistentVolumes for claims and records Events; the attacher marks VolumeAttachments
/// attached; the resizer grows volumes and their claims' status.
pub const CONTROLLER_GRANTS: &[Grant] = &[
    grant(
        "",
        &["persistentvolumes"],
        &[
            "get", "list", "watch", "create", "update", "patch", "delete",
        ],
    ),
    grant(
        "",
        &["persistentvolumeclaims"],
        &["get", "list", "watch", "update", "patch"],
    ),
    grant("", &["persistentvolumeclaims/status"], &["update", "patch"]),
    grant(
        "",
        &["events"],
        &["list", "watch", "create", "update", "patch"],
    ),
    grant("", &["nodes"], &["get", "list", "watch"]),
    grant(
        "storage.k8s.io",
        &["storageclasses"],
        &["get", "list", "watch"],
    ),
    grant("storage.k8s.io", &["csinodes"], &["get", "list", "watch"]),
    grant(
        "storage.k8s.io",
        &["volumeattachments"],
        &["get", "list", "watch", "update", "patch"],
    ),
    grant("storage.k8s.io", &["volumeattachments/status"], &["patch"]),
];

/// The sidecars' leader election, in the cluster's namespace (the manifests' Role,
/// provisioner-rbac.yaml:91-105, with Leases only: the lock csi-lib-utils uses).
pub const LEADER_ELECTION: &[Grant] = &[grant(
    "coordination.k8s.io",
    &["leases"],
    &["get", "watch", "list", "delete", "update", "create"],
)];

fn service_account(cluster: &ValidatedCluster, part: &str) -> ServiceAccount {
    ServiceAccount {
        metadata: object_meta(
            cluster,
            csi_name(&cluster.name, part),
            csi_labels(&cluster.name, part),
        ),
        // Only the controller's sidecars call the API server.
        automount_service_account_token: Some(part == CSI_CONTROLLER),
        ..ServiceAccount::default()
    }
}

fn controller_subject(cluster: &ValidatedCluster) -> Subject {
    Subject {
        kind: "ServiceAccount".into(),
        name: csi_name(&cluster.name, CSI_CONTROLLER),
        namespace: Some(cluster.namespace.clone()),
        ..Subject::default()
    }
}

/// Cluster-scoped objects cannot have a namespaced owner (the garbage collector would delete
/// them at once): they carry the cluster's labels and namespace instead, and the operator
/// deletes them when the cluster goes or csi is turned off.
fn cluster_scoped_meta(cluster: &ValidatedCluster, name: String) -> ObjectMeta {
    let mut labels = csi_labels(&cluster.name, CSI_CONTROLLER);
    labels.insert(LABEL_NAMESPACE.to_string(), cluster.namespace.clone());
    ObjectMeta {
        name: Some(name),
        labels: Some(labels),
        ..ObjectMeta::default()
    }
}

fn storage_class(cluster: &ValidatedCluster) -> StorageClass {
    let class = &cluster.spec.csi.storage_class;
    let mut metadata = cluster_scoped_meta(cluster, class.name.clone());
    if class.is_default {
        metadata.annotations = Some(BTreeMap::from([(
            DEFAULT_CLASS_ANNOTATION.to_string(),
            "true".to_string(),
        )]));
    }
    StorageClass {
        metadata,
        provisioner: CSI_DRIVER.to_string(),
        // curve-csi reads `user` (required) and `cloneLazy` (pkg/curve/volumeoptions.go:60-75);
        // cloneLazy matters only for clones, which need a SnapshotCloneServer.
        parameters: Some(BTreeMap::from([("user".to_string(), class.user.clone())])),
        reclaim_policy: Some(class.reclaim_policy.as_str().to_string()),
        allow_volume_expansion: Some(class.allow_volume_expansion),
        // As curve-csi's example class (examples/storageclass.yaml:11): a Curve volume is
        // reachable from every node.
        volume_binding_mode: Some("Immediate".to_string()),
        ..StorageClass::default()
    }
}

fn env(name: &str, value: &str) -> EnvVar {
    EnvVar {
        name: name.into(),
        value: Some(value.into()),
        ..EnvVar::default()
    }
}

fn field_env(name: &str, path: &str) -> EnvVar {
    EnvVar {
        name: name.into(),
        value_from: Some(EnvVarSource {
            field_ref: Some(ObjectFieldSelector {
                field_path: path.into(),
                ..ObjectFieldSelector::default()
            }),
            ..EnvVarSource::default()
        }),
        ..EnvVar::default()
    }
}

fn mount(name: &str, path: &str) -> VolumeMount {
    VolumeMount {
        name: name.into(),
        mount_path: path.into(),
        ..VolumeMount::default()
    }
}

fn bidirectional(name: &str, path: &str) -> VolumeMount {
    VolumeMount {
        mount_propagation: Some("Bidirectional".into()),
        ..mount(name, path)
    }
}

fn host_path(name: &str, path: &str, type_: Option<&str>) -> Volume {
    Volume {
        name: name.into(),
        host_path: Some(HostPathVolumeSource {
            path: path.into(),
            type_: type_.map(str::to_string),
        }),
        ..Volume::default()
    }
}

fn privileged(sys_admin: bool) -> SecurityContext {
    SecurityContext {
        privileged: Some(true),
        capabilities: sys_admin.then(|| Capabilities {
            add: Some(vec!["SYS_ADMIN".into()]),
            ..Capabilities::default()
        }),
        allow_privilege_escalation: sys_admin.then_some(true),
        ..SecurityContext::default()
    }
}

fn args(list: &[&str]) -> Option<Vec<String>> {
    Some(list.iter().map(|a| a.to_string()).collect())
}

/// The curve-csi container of either part: the plugin with `MDSADDR` (the manifests'
/// `csi-curveplugin`).
fn plugin_container(
    cluster: &ValidatedCluster,
    mds_addr: &str,
    extra_args: &[&str],
    endpoint: &str,
    mounts: Vec<VolumeMount>,
) -> Container {
    let mut all_args = vec![
        "--endpoint=$(CSI_ENDPOINT)",
        "--drivername=curve.csi.netease.com",
        "--nodeid=$(NODE_ID)",
    ];
    all_args.extend(extra_args);
    all_args.extend([
        "--logtostderr=false",
        "--log_dir=/var/log/csi-curveplugin",
        "-v=4",
    ]);
    Container {
        name: "csi-curveplugin".into(),
        image: Some(cluster.spec.csi.images.plugin.clone()),
        image_pull_policy: Some(cluster.spec.image_pull_policy.as_str().into()),
        args: args(&all_args),
        env: Some(vec![
            field_env("NODE_ID", "spec.nodeName"),
            field_env("POD_NAMESPACE", "metadata.namespace"),
            env("CSI_ENDPOINT", endpoint),
            env("MDSADDR", mds_addr),
        ]),
        volume_mounts: Some(mounts),
        ..Container::default()
    }
}

fn pull_secrets(cluster: &ValidatedCluster) -> Option<Vec<LocalObjectReference>> {
    let secrets = &cluster.spec.image_pull_secrets;
    (!secrets.is_empty()).then(|| {
        (secrets.iter())
            .map(|name| LocalObjectReference { name: name.clone() })
            .collect()
    })
}

fn sidecar(
    cluster: &ValidatedCluster,
    name: &str,
    image: &str,
    sidecar_args: &[&str],
) -> Container {
    Container {
        name: name.into(),
        image: Some(image.into()),
        image_pull_policy: Some(cluster.spec.image_pull_policy.as_str().into()),
        args: args(sidecar_args),
        env: Some(vec![
            env("ADDRESS", "unix:///csi/csi-provisioner.sock"),
            field_env("POD_NAMESPACE", "metadata.namespace"),
        ]),
        volume_mounts: Some(vec![mount("socket-dir", "/csi")]),
        ..Container::default()
    }
}

/// The node plugin (node-plugin-daemonset.yaml): the registrar and curve-csi with nebd and
/// curve-nbd inside, which serve every mounted Curve volume of the node, so a restart cuts
/// them: `OnDelete`, and the operator decides when each pod is replaced.
fn node_plugin(cluster: &ValidatedCluster, mds_addr: &str) -> DaemonSet {
    let plugins = format!("{KUBELET_DIR}/plugins");
    let socket_dir = format!("{plugins}/{CSI_DRIVER}");
    let registrar = Container {
        name: "driver-registrar".into(),
        image: Some(cluster.spec.csi.images.node_driver_registrar.clone()),
        image_pull_policy: Some(cluster.spec.image_pull_policy.as_str().into()),
        security_context: Some(privileged(false)),
        args: Some(vec![
            "--v=5".into(),
            "--csi-address=/csi/csi.sock".into(),
            format!("--kubelet-registration-path={socket_dir}/csi.sock"),
        ]),
        env: Some(vec![field_env("KUBE_NODE_NAME", "spec.nodeName")]),
        volume_mounts: Some(vec![
            mount("socket-dir", "/csi"),
            mount("registration-dir", "/registration"),
        ]),
        ..Container::default()
    };
    let plugin = Container {
        security_context: Some(privileged(true)),
        ..plugin_container(
            cluster,
            mds_addr,
            &["--node-server=true", "--debug-port=9595"],
            "unix:///csi/csi.sock",
            vec![
                mount("socket-dir", "/csi"),
                mount("host-dev", "/dev"),
                mount("host-sys", "/sys"),
                VolumeMount {
                    read_only: Some(true),
                    ..mount("lib-modules", "/lib/modules")
                },
                bidirectional("plugin-dir", &plugins),
                bidirectional("mountpoint-dir", &format!("{KUBELET_DIR}/pods")),
                mount("localtime", "/etc/localtime"),
                mount("log", "/var/log/csi-curveplugin"),
            ],
        )
    };
    let spec = PodSpec {
        service_account_name: Some(csi_name(&cluster.name, CSI_NODE)),
        automount_service_account_token: Some(false),
        host_network: Some(true),
        // curve-csi loads the nbd module in the host's namespaces (`nsenter -t 1`,
        // pkg/util/command.go:23-27, pkg/curveservice/curveservie-utils.go:43-47).
        host_pid: Some(true),
        dns_policy: Some("ClusterFirstWithHostNet".into()),
        image_pull_secrets: pull_secrets(cluster),
        containers: vec![registrar, plugin],
        volumes: Some(vec![
            host_path("socket-dir", &socket_dir, Some("DirectoryOrCreate")),
            host_path("plugin-dir", &plugins, Some("Directory")),
            host_path(
                "mountpoint-dir",
                &format!("{KUBELET_DIR}/pods"),
                Some("DirectoryOrCreate"),
            ),
            host_path(
                "registration-dir",
                &format!("{KUBELET_DIR}/plugins_registry/"),
                Some("Directory"),
            ),
            host_path("host-dev", "/dev", None),
            host_path("host-sys", "/sys", None),
            host_path("lib-modules", "/lib/modules", None),
            host_path("localtime", "/etc/localtime", None),
            host_path("log", "/var/log/csi-curveplugin", None),
        ]),
        ..PodSpec::default()
    };
    let mut template = PodTemplateSpec {
        metadata: Some(ObjectMeta {
            labels: Some(csi_labels(&cluster.name, CSI_NODE)),
            ..ObjectMeta::default()
        }),
        spec: Some(spec),
    };
    let hash = template_hash(&template);
    if let Some(meta) = template.metadata.as_mut() {
        meta.annotations = Some(BTreeMap::from([(
            NODE_CONFIG_ANNOTATION.to_string(),
            hash.clone(),
        )]));
    }
    let mut metadata = object_meta(
        cluster,
        csi_name(&cluster.name, CSI_NODE),
        csi_labels(&cluster.name, CSI_NODE),
    );
    // On the DaemonSet too, so the read step tells outdated pods from its metadata alone.
    metadata.annotations = Some(BTreeMap::from([(
        NODE_CONFIG_ANNOTATION.to_string(),
        hash.clone(),
    )]));
    DaemonSet {
        metadata,
        spec: Some(DaemonSetSpec {
            selector: LabelSelector {
                match_labels: Some(csi_selector_labels(&cluster.name, CSI_NODE)),
                ..LabelSelector::default()
            },
            update_strategy: Some(DaemonSetUpdateStrategy {
                type_: Some("OnDelete".into()),
                ..DaemonSetUpdateStrategy::default()
            }),
            template,
            ..DaemonSetSpec::default()
        }),
        ..DaemonSet::default()
    }
}

/// The hash of a pod template as the operator builds it (before the annotation holding it).
fn template_hash(template: &PodTemplateSpec) -> String {
    let json = serde_json::to_string(template).expect("pod templates serialize");
    format!("{:016x}", crate::util::fnv64(json.bytes()))
}

/// The node plugin template's hash, as its pods carry it.
pub fn node_config_of(set: &DaemonSet) -> Option<String> {
    let meta = set.spec.as_ref()?.template.metadata.as_ref()?;
    meta.annotations
        .as_ref()?
        .get(NODE_CONFIG_ANNOTATION)
        .cloned()
}

/// The controller (provisioner-deploy.yaml): provisioner, attacher and resizer around
/// curve-csi's controller server. A new `MDSADDR` changes its template, and the Deployment
/// replaces its pods one at a time (no surge: two pods on one node would share host ports).
fn controller(cluster: &ValidatedCluster, mds_addr: &str) -> Deployment {
    let images = &cluster.spec.csi.images;
    let members = csi_selector_labels(&cluster.name, CSI_CONTROLLER);
    let spec = PodSpec {
        service_account_name: Some(csi_name(&cluster.name, CSI_CONTROLLER)),
        host_network: Some(true),
        host_pid: Some(true),
        dns_policy: Some("ClusterFirstWithHostNet".into()),
        affinity: Some(anti_affinity(cluster, &members)),
        image_pull_secrets: pull_secrets(cluster),
        containers: vec![
            sidecar(
                cluster,
                "csi-provisioner",
                &images.provisioner,
                &[
                    "--csi-address=$(ADDRESS)",
                    "--v=5",
                    "--timeout=150s",
                    "--leader-election=true",
                    "--retry-interval-start=500ms",
                    "--feature-gates=Topology=false",
                ],
            ),
            sidecar(
                cluster,
                "csi-attacher",
                &images.attacher,
                &[
                    "--v=5",
                    "--csi-address=$(ADDRESS)",
                    "--leader-election=true",
                    "--retry-interval-start=500ms",
                ],
            ),
            sidecar(
                cluster,
                "csi-resizer",
                &images.resizer,
                &[
                    "--csi-address=$(ADDRESS)",
                    "--v=5",
                    "--timeout=150s",
                    "--leader-election",
                    "--retry-interval-start=500ms",
                    "--handle-volume-inuse-error=false",
                ],
            ),
            Container {
                security_context: Some(privileged(true)),
                ..plugin_container(
                    cluster,
                    mds_addr,
                    &["--controller-server=true", "--debug-port=9696"],
                    "unix:///csi/csi-provisioner.sock",
                    vec![
                        mount("socket-dir", "/csi"),
                        mount("localtime", "/etc/localtime"),
                        mount("log", "/var/log/csi-curveplugin"),
                    ],
                )
            },
        ],
        volumes: Some(vec![
            Volume {
                name: "socket-dir".into(),
                empty_dir: Some(EmptyDirVolumeSource {
                    medium: Some("Memory".into()),
                    ..EmptyDirVolumeSource::default()
                }),
                ..Volume::default()
            },
            host_path("localtime", "/etc/localtime", None),
            host_path("log", "/var/log/csi-curveplugin-ctrl", None),
        ]),
        ..PodSpec::default()
    };
    Deployment {
        metadata: object_meta(
            cluster,
            csi_name(&cluster.name, CSI_CONTROLLER),
            csi_labels(&cluster.name, CSI_CONTROLLER),
        ),
        spec: Some(DeploymentSpec {
            replicas: Some(CONTROLLER_REPLICAS),
            selector: LabelSelector {
                match_labels: Some(members),
                ..LabelSelector::default()
            },
            strategy: Some(DeploymentStrategy {
                type_: Some("RollingUpdate".into()),
                rolling_update: Some(RollingUpdateDeployment {
                    max_surge: Some(IntOrString::Int(0)),
                    max_unavailable: Some(IntOrString::Int(1)),
                }),
            }),
            template: PodTemplateSpec {
                metadata: Some(ObjectMeta {
                    labels: Some(csi_labels(&cluster.name, CSI_CONTROLLER)),
                    ..ObjectMeta::default()
                }),
                spec: Some(spec),
            },
            ..DeploymentSpec::default()
        }),
        ..Deployment::default()
    }
}

/// `MDSADDR` of a container list (the controller's or the node plugin's curve-csi).
pub fn mds_addr_of(containers: &[Container]) -> Option<String> {
    let plugin = containers.iter().find(|c| c.name == "csi-curveplugin")?;
    (plugin.env.as_ref()?.iter())
        .find(|e| e.name == "MDSADDR")?
        .value
        .clone()
}

#[cfg(test)]
#[path = "csi_tests.rs"]
mod tests;
