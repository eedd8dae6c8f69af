//! The `CurveCluster` custom resource (group `curve.opencurve.io`, version `v1alpha1`).
//!
//! The CRD in `crds/curvecluster.yaml` is generated from these types (`curve-operator crd`):
//! doc comments become `kubectl explain`, serde defaults become schema defaults, and the
//! `x_kube(validation)` rules become CEL rules the API server enforces on create and update.

pub mod prometheus;
mod restore;
pub mod rules;
mod status;

pub use restore::*;
pub use status::*;

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{ResourceRequirements, Toleration};
use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// API group of every resource this operator defines.
pub const GROUP: &str = "curve.opencurve.io";
/// The one served and stored version.
pub const VERSION: &str = "v1alpha1";
/// The value of `spec.cleanup.confirmation` that allows deleting data volumes.
pub const DELETE_DATA_CONFIRMATION: &str = "yes-really-destroy-data";
/// Longest cluster name: `<name>-chunkserver-<slot>-<ordinal>` must stay a valid DNS label and
/// the StatefulSet's `controller-revision-hash` label must stay under 63 characters.
pub const MAX_CLUSTER_NAME_LEN: usize = 30;

/// A Curve block-storage cluster (CurveBS): an etcd cluster, MDS metadata servers and
/// ChunkServers, deployed and kept running by curve-operator.
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "curve.opencurve.io",
    version = "v1alpha1",
    kind = "CurveCluster",
    plural = "curveclusters",
    shortname = "curve",
    doc = "A Curve block-storage cluster (CurveBS) run by curve-operator: etcd, MDS metadata servers and ChunkServers.",
    namespaced,
    status = "CurveClusterStatus",
    printcolumn(name = "Phase", type_ = "string", json_path = ".status.phase", description = "Lifecycle phase of the cluster"),
    printcolumn(name = "Primary", type_ = "string", json_path = ".status.mds.primary", description = "The MDS pod elected primary in etcd"),
    printcolumn(name = "Etcd", type_ = "string", json_path = ".status.etcd.ready", description = "Ready/desired etcd members"),
    printcolumn(name = "MDS", type_ = "string", json_path = ".status.mds.ready", description = "Ready/desired MDS pods"),
    printcolumn(name = "ChunkServers", type_ = "string", json_path = ".status.chunkservers.ready", description = "Ready/desired ChunkServer pods"),
    printcolumn(name = "Health", type_ = "string", json_path = ".status.health.verdict", description = "Curve's own health, read by the operator: Healthy, Unhealthy (copysets short of a copy, MDS not as it should be) or Unknown (could not be read)"),
    printcolumn(name = "Progress", type_ = "string", json_path = ".status.conditions[?(@.type==\"Progressing\")].reason", description = "What the operator is doing (Reconciling, RollingUpdate, …), or why it stopped (Complete, Paused, ChangeRefused, RolloutStuck, Unschedulable, …: docs/reference/conditions.md)"),
    printcolumn(name = "Age", type_ = "date", json_path = ".metadata.creationTimestamp"),
    printcolumn(name = "Image", type_ = "string", json_path = ".spec.image", description = "The Curve image of the spec", priority = "1"),
    printcolumn(name = "Message", type_ = "string", json_path = ".status.conditions[?(@.type==\"Progressing\")].message", description = "What the cluster is doing or waiting for", priority = "1"),
    printcolumn(name = "Etcd-Updated", type_ = "string", json_path = ".status.etcd.updated", description = "etcd pods on their StatefulSet's current template / desired (a roll's progress)", priority = "1"),
    printcolumn(name = "MDS-Updated", type_ = "string", json_path = ".status.mds.updated", description = "MDS pods on the current template / desired", priority = "1"),
    printcolumn(name = "CS-Updated", type_ = "string", json_path = ".status.chunkservers.updated", description = "ChunkServer pods on the current template / desired", priority = "1"),
    printcolumn(name = "Etcd-Images", type_ = "string", json_path = ".status.etcd.images", description = "The images the etcd pods run", priority = "1"),
    printcolumn(name = "MDS-Images", type_ = "string", json_path = ".status.mds.images", description = "The images the MDS pods run", priority = "1"),
    printcolumn(name = "CS-Images", type_ = "string", json_path = ".status.chunkservers.images", description = "The images the ChunkServer pods run", priority = "1"),
    printcolumn(name = "Last-Backup", type_ = "date", json_path = ".status.etcd.backup.lastSuccess.time", description = "Age of the newest verified etcd snapshot (spec.etcd.backup)", priority = "1"),
    validation = Rule::new("size(self.metadata.name) <= 30").message("metadata.name must be at most 30 characters: it prefixes every StatefulSet, pod and label value of the cluster"),
    validation = rules::rule(format!("self.metadata.name.matches('{}')", rules::DNS1035_RE), rules::got("metadata.name must be a DNS-1035 label (lower-case letters, digits and dashes, starting with a letter and ending with a letter or digit): it prefixes the cluster's Service names", "self.metadata.name")),
)]
#[x_kube(
    validation = Rule::new("self.chunkservers.replicas >= self.logicalPool.replicas").message("spec.chunkservers.replicas must be at least spec.logicalPool.replicas: every copy of a copyset needs its own server"),
    validation = Rule::new("self.logicalPool.zones <= self.chunkservers.replicas").message("spec.logicalPool.zones must not exceed spec.chunkservers.replicas: every zone needs at least one server"),
    validation = Rule::new("self.logicalPool.zones == self.logicalPool.replicas").message("spec.logicalPool.zones must equal spec.logicalPool.replicas: Curve's MDS creates a logical pool only when its zone count equals its copy count, each copy in its own zone"),
    validation = Rule::new("self.chunkservers.replicas * self.chunkservers.disksPerNode >= 2").message("spec.chunkservers.replicas × disksPerNode must be at least 2: Curve's MDS cannot create a logical pool on one ChunkServer"),
    validation = Rule::new("(self.mds.port != self.etcd.clientPort && self.mds.port != self.etcd.peerPort && self.mds.dummyPort != self.etcd.clientPort && self.mds.dummyPort != self.etcd.peerPort)").message("spec.mds ports must differ from spec.etcd ports: with host networking they can share a node"),
    validation = Rule::new("[self.etcd.clientPort, self.etcd.peerPort, self.mds.port, self.mds.dummyPort].all(p, p < self.chunkservers.port || p >= self.chunkservers.port + self.chunkservers.disksPerNode)").message("spec.chunkservers.port range (port .. port+disksPerNode-1) must not contain an etcd or MDS port: with host networking they can share a node"),
)]
#[serde(rename_all = "camelCase")]
pub struct CurveClusterSpec {
    /// The Curve image, used by every component (e.g. `opencurvedocker/curvebs:v1.2.6`).
    #[schemars(length(max = rules::MAX_IMAGE_LEN))]
    #[x_kube(
        validation = Rule::new("self != ''").message("spec.image must name a Curve image"),
        validation = rules::image(),
        validation = rules::image_registry()
    )]
    pub image: String,

    /// When the kubelet pulls the image: Always, IfNotPresent or Never.
    #[serde(default)]
    pub image_pull_policy: PullPolicy,

    /// Names of Secrets in the cluster's namespace used to pull the image. Fixed at creation.
    #[serde(default)]
    #[schemars(length(max = rules::MAX_PULL_SECRETS), inner(length(max = 253)))]
    #[x_kube(
        validation = Rule::new("self == oldSelf").message("spec.imagePullSecrets is immutable"),
        validation = rules::subdomain_list("spec.imagePullSecrets")
    )]
    pub image_pull_secrets: Vec<String>,

    /// The etcd cluster that stores Curve's metadata and holds the MDS election.
    #[serde(default)]
    pub etcd: EtcdSpec,

    /// The MDS metadata servers: one primary (elected in etcd), the others standby.
    #[serde(default)]
    pub mds: MdsSpec,

    /// The ChunkServers that store data: one pod per node and disk slot.
    pub chunkservers: ChunkServerSpec,

    /// Where pods run: node selection, tolerations and how members spread over nodes.
    #[serde(default)]
    pub placement: PlacementSpec,

    /// The logical pool created on the ChunkServers (copyset replication and zones).
    #[serde(default)]
    pub logical_pool: LogicalPoolSpec,

    /// Run Curve pods in the node's network namespace. Must be true (the default): Curve
    /// identifies MDS and ChunkServers by `ip:port` (the MDS election value, raft peers, the
    /// cluster map, ChunkServer registration), and a pod IP changes at every restart, which
    /// breaks a ChunkServer's copysets; every official Curve deployment uses the node's IP.
    #[serde(default = "default_true")]
    #[x_kube(validation = Rule::new("self").message("spec.hostNetwork must be true: Curve identifies MDS and ChunkServers by ip:port, and pod IPs change at every restart (which breaks a ChunkServer's copysets); only host networking keeps them stable"))]
    pub host_network: bool,

    /// Stop reconciling: while true the operator changes no object of this cluster, and only
    /// updates its status.
    #[serde(default)]
    pub paused: bool,

    /// What happens to data volumes when the CurveCluster is deleted.
    #[serde(default)]
    pub cleanup: CleanupSpec,

    /// How the operator replaces pods when their template changes (image, resources, config).
    /// The operator, not the StatefulSet controller, replaces them: tier by tier (etcd, MDS,
    /// ChunkServers), one step at a time, each step only while the tier is healthy, the etcd
    /// leader and the MDS primary last.
    #[serde(default)]
    pub rollout: RolloutSpec,

    /// Prometheus Operator objects for this cluster (`monitoring.coreos.com/v1`): PodMonitors
    /// that scrape etcd, every MDS and every ChunkServer, and a PrometheusRule with the alerts
    /// a Curve admin needs. Off by default; needs the Prometheus Operator's CRDs (the
    /// `Monitoring` condition says when they are missing).
    #[serde(default)]
    pub monitoring: MonitoringSpec,

    /// Where the daemons' core dumps are kept on the node.
    #[serde(default)]
    pub core_dumps: CoreDumpSpec,

    /// curve-csi (driver `curve.csi.netease.com`), so Kubernetes workloads get Curve volumes
    /// through a StorageClass. Off by default. Enabled, the operator runs the node plugin
    /// DaemonSet and the controller Deployment with `MDSADDR` set from the MDS pods it sees,
    /// rolls the controller when those addresses change and holds a node plugin pod back while
    /// Curve volumes may be attached on its node (`CsiConfigPending`); it creates the StorageClass
    /// once the cluster is Available. Each node needs the `nbd` kernel module (docs/user/csi.md).
    #[serde(default)]
    pub csi: CsiSpec,
}

/// A node directory for core dumps, as curveadm's `core_dir` (a host directory mounted at
/// `/core`, internal/task/task/common/create_container.go).
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Eq, Default)]
#[serde(rename_all = "camelCase")]
pub struct CoreDumpSpec {
    /// An absolute directory on each node, mounted at `/core` in every etcd, MDS and
    /// ChunkServer container (created if missing). A core lands there when the node's
    /// `kernel.core_pattern` is a path under `/core`, e.g. `/core/core.%e.%p.%t`; the pattern
    /// is the node's, not the pod's (docs/user/nodes.md). Unset: no directory is mounted.
    /// Setting or changing it replaces every pod (a roll).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = rules::MAX_HOST_PATH_LEN))]
    #[x_kube(validation = rules::rule(format!("self.matches('{}') && !self.matches('{}')", rules::HOST_DIR_RE, rules::HOST_DIR_DOT_SEGMENT_RE), rules::got(rules::HOST_DIR_TEXT, "self")))]
    pub host_path: Option<String>,
}

/// The annotation on a CurveCluster that lets the operator restart node plugin pods on these
/// nodes (comma-separated names, or `*` for all) although Curve volumes are attached there.
pub const CSI_RESTART_ANNOTATION: &str = "curve.opencurve.io/csi-restart-nodes";

/// curve-csi, deployed and kept wired by the operator.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct CsiSpec {
    /// Deploy curve-csi for this cluster. Only one CurveCluster per Kubernetes cluster can:
    /// the driver name, its CSIDriver object and the kubelet's plugin socket are per node, not
    /// per Curve cluster. Setting it back to false deletes the operator's csi objects, the
    /// StorageClass included (volumes already provisioned stay, and cannot be mounted anew).
    #[serde(default)]
    pub enabled: bool,
    /// The images of the plugin and its sidecars.
    #[serde(default)]
    pub images: CsiImages,
    /// The StorageClass through which workloads ask for Curve volumes.
    #[serde(default)]
    pub storage_class: CsiStorageClass,
}

/// The images of curve-csi and the Kubernetes CSI sidecars; the defaults are those of
/// curve-csi's own manifests (deploy/manifests/ at curve-csi ed02bd6).
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct CsiImages {
    /// The curve-csi plugin (with curve-nbd and nebd inside), in both the node plugin and the
    /// controller.
    #[serde(default = "CsiImages::default_plugin")]
    #[schemars(length(max = rules::MAX_IMAGE_LEN))]
    #[x_kube(
        validation = rules::image_at("spec.csi.images.plugin"),
        validation = rules::image_registry_at("spec.csi.images.plugin")
    )]
    pub plugin: String,
    /// The node plugin's sidecar registering the driver with the kubelet.
    #[serde(default = "CsiImages::default_node_driver_registrar")]
    #[schemars(length(max = rules::MAX_IMAGE_LEN))]
    #[x_kube(
        validation = rules::image_at("spec.csi.images.nodeDriverRegistrar"),
        validation = rules::image_registry_at("spec.csi.images.nodeDriverRegistrar")
    )]
    pub node_driver_registrar: String,
    /// The controller's sidecar creating and deleting volumes for claims.
    #[serde(default = "CsiImages::default_provisioner")]
    #[schemars(length(max = rules::MAX_IMAGE_LEN))]
    #[x_kube(
        validation = rules::image_at("spec.csi.images.provisioner"),
        validation = rules::image_registry_at("spec.csi.images.provisioner")
    )]
    pub provisioner: String,
    /// The controller's sidecar answering VolumeAttachments.
    #[serde(default = "CsiImages::default_attacher")]
    #[schemars(length(max = rules::MAX_IMAGE_LEN))]
    #[x_kube(
        validation = rules::image_at("spec.csi.images.attacher"),
        validation = rules::image_registry_at("spec.csi.images.attacher")
    )]
    pub attacher: String,
    /// The controller's sidecar growing volumes whose claims ask for more.
    #[serde(default = "CsiImages::default_resizer")]
    #[schemars(length(max = rules::MAX_IMAGE_LEN))]
    #[x_kube(
        validation = rules::image_at("spec.csi.images.resizer"),
        validation = rules::image_registry_at("spec.csi.images.resizer")
    )]
    pub resizer: String,
}

impl CsiImages {
    fn default_plugin() -> String {
        "curvecsi/curve-csi:v3.0.1".to_string()
    }
    fn default_node_driver_registrar() -> String {
        "registry.k8s.io/sig-storage/csi-node-driver-registrar:v2.2.0".to_string()
    }
    fn default_provisioner() -> String {
        "registry.k8s.io/sig-storage/csi-provisioner:v2.2.2".to_string()
    }
    fn default_attacher() -> String {
        "registry.k8s.io/sig-storage/csi-attacher:v3.2.1".to_string()
    }
    fn default_resizer() -> String {
        "registry.k8s.io/sig-storage/csi-resizer:v1.2.0".to_string()
    }

    /// Every image with its field path, for validation.
    pub fn fields(&self) -> [(&'static str, &str); 5] {
        [
            ("spec.csi.images.plugin", &self.plugin),
            (
                "spec.csi.images.nodeDriverRegistrar",
                &self.node_driver_registrar,
            ),
            ("spec.csi.images.provisioner", &self.provisioner),
            ("spec.csi.images.attacher", &self.attacher),
            ("spec.csi.images.resizer", &self.resizer),
        ]
    }
}

impl Default for CsiImages {
    fn default() -> Self {
        CsiImages {
            plugin: Self::default_plugin(),
            node_driver_registrar: Self::default_node_driver_registrar(),
            provisioner: Self::default_provisioner(),
            attacher: Self::default_attacher(),
            resizer: Self::default_resizer(),
        }
    }
}

/// What becomes of a provisioned volume when its claim is deleted.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum ReclaimPolicy {
    /// The Curve volume is deleted with its claim.
    #[default]
    Delete,
    /// The Curve volume and its PersistentVolume are kept.
    Retain,
}

impl ReclaimPolicy {
    pub fn as_str(self) -> &'static str {
        match self {
            ReclaimPolicy::Delete => "Delete",
            ReclaimPolicy::Retain => "Retain",
        }
    }
}

/// The StorageClass of curve-csi's volumes.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct CsiStorageClass {
    /// The StorageClass's name (a DNS-1123 subdomain). It must not be taken by a StorageClass
    /// of another provisioner or cluster: the operator then refuses (condition `Csi`, reason
    /// CsiObjectTaken) rather than change it.
    #[serde(default = "CsiStorageClass::default_name")]
    #[schemars(length(max = 253))]
    #[x_kube(validation = rules::subdomain("spec.csi.storageClass.name", "a StorageClass name"))]
    pub name: String,
    /// The Curve user owning the volumes (curve-csi's StorageClass parameter `user`): 1 to 30
    /// bytes, as curve-csi requires; volumes are created as `/<user>/csi-vol-<pv name>`.
    #[serde(default = "CsiStorageClass::default_user")]
    #[schemars(length(max = rules::CSI_USER_MAX_LEN))]
    #[x_kube(validation = rules::csi_user())]
    pub user: String,
    /// What becomes of a volume when its claim is deleted: Delete (default) or Retain.
    #[serde(default)]
    pub reclaim_policy: ReclaimPolicy,
    /// Whether claims may grow (curve-csi expands Curve volumes and their file systems).
    #[serde(default = "default_true")]
    pub allow_volume_expansion: bool,
    /// Make it the cluster's default StorageClass (annotation
    /// `storageclass.kubernetes.io/is-default-class`).
    #[serde(default)]
    pub is_default: bool,
}

impl CsiStorageClass {
    fn default_name() -> String {
        "curve".to_string()
    }
    fn default_user() -> String {
        "k8s".to_string()
    }
}

impl Default for CsiStorageClass {
    fn default() -> Self {
        CsiStorageClass {
            name: Self::default_name(),
            user: Self::default_user(),
            reclaim_policy: ReclaimPolicy::default(),
            allow_volume_expansion: true,
            is_default: false,
        }
    }
}

/// Scrape objects and alerts for the cluster.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct MonitoringSpec {
    /// Create the PodMonitors (`<cluster>-etcd`, `<cluster>-mds`, `<cluster>-chunkserver`)
    /// and, with `rules`, the PrometheusRule `<cluster>-alerts`. Setting it back to false
    /// deletes them.
    #[serde(default)]
    pub enabled: bool,
    /// How often Prometheus scrapes each pod, as a Prometheus duration (`30s`, `1m`).
    #[serde(default = "MonitoringSpec::default_interval")]
    #[schemars(length(max = 16))]
    #[x_kube(validation = rules::rule(format!("self.matches('{}') && self.matches('[1-9]')", rules::PROMETHEUS_DURATION_RE), rules::got("spec.monitoring.interval must be a Prometheus duration of at least 1s such as 30s or 1m", "self")))]
    pub interval: String,
    /// Create the PrometheusRule with the cluster's alerts.
    #[serde(default = "default_true")]
    pub rules: bool,
    /// Labels added to the PodMonitors and the PrometheusRule, e.g. the ones your Prometheus
    /// selects them by (kube-prometheus-stack: `release: <its release name>`).
    #[serde(default)]
    #[schemars(extend("maxProperties" = rules::MAX_NODE_SELECTOR, "additionalProperties" = {"type": "string", "maxLength": 63}))]
    #[x_kube(
        validation = rules::label_map_keys("spec.monitoring.labels"),
        validation = rules::label_map_values("spec.monitoring.labels")
    )]
    pub labels: BTreeMap<String, String>,
}

impl MonitoringSpec {
    fn default_interval() -> String {
        "30s".to_string()
    }
}

impl Default for MonitoringSpec {
    fn default() -> Self {
        MonitoringSpec {
            enabled: false,
            interval: Self::default_interval(),
            rules: true,
            labels: BTreeMap::new(),
        }
    }
}

/// How pods are replaced when their template changes.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct RolloutSpec {
    /// Seconds a replaced pod may take to become Ready before the roll is reported stuck
    /// (`Progressing` reason `RolloutStuck`). The roll halts at a pod that is not Ready either
    /// way; changing the spec back resumes it.
    #[serde(default = "RolloutSpec::default_progress_deadline_seconds")]
    #[schemars(range(min = rules::PROGRESS_DEADLINE_SECONDS.min, max = rules::PROGRESS_DEADLINE_SECONDS.max))]
    pub progress_deadline_seconds: i32,
}

impl RolloutSpec {
    fn default_progress_deadline_seconds() -> i32 {
        600
    }
}

impl Default for RolloutSpec {
    fn default() -> Self {
        RolloutSpec {
            progress_deadline_seconds: Self::default_progress_deadline_seconds(),
        }
    }
}

/// Which ChunkServers are replaced together in a roll.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum ChunkServerUpdatePolicy {
    /// One server (every disk slot of one node) at a time.
    #[default]
    Server,
    /// Every server of one zone at a time: the copies of a copyset live in different zones,
    /// so one zone down leaves every copyset a majority.
    Zone,
}

fn default_true() -> bool {
    true
}

/// Image pull policy of every Curve container.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum PullPolicy {
    Always,
    #[default]
    IfNotPresent,
    Never,
}

impl PullPolicy {
    pub fn as_str(self) -> &'static str {
        match self {
            PullPolicy::Always => "Always",
            PullPolicy::IfNotPresent => "IfNotPresent",
            PullPolicy::Never => "Never",
        }
    }
}

/// A persistent volume request.
///
/// The size has no CEL rule against shrinking: only the running cluster knows what size the
/// volumes have (a growth the operator refused leaves the spec above them), so the operator
/// refuses a size below the volumes' own, and setting it back is always accepted.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
#[x_kube(
    validation = Rule::new("has(self.storageClassName) == has(oldSelf.storageClassName) && (!has(self.storageClassName) || self.storageClassName == oldSelf.storageClassName)").message("storage.storageClassName is immutable"),
)]
pub struct StorageSpec {
    /// Size of each volume, as a Kubernetes quantity (e.g. `10Gi`). On a running cluster it
    /// can grow when the volumes' StorageClass has `allowVolumeExpansion: true`: the operator
    /// raises every claim's request and re-creates the StatefulSet with the new claim template
    /// (its pods keep running), and `Progressing` (reason VolumeExpansion) shows each claim
    /// until it reports the new capacity. ChunkServers then restart one server (or zone) at a
    /// time, behind Curve's copyset health check, to add the space to their chunk file pools.
    /// A class that does not allow expansion, or a size below the volumes' own (volumes never
    /// shrink), is refused with `Progressing` reason ChangeRefused and changes nothing; setting
    /// the size back is accepted.
    #[schemars(length(max = rules::MAX_QUANTITY_LEN), pattern(rules::QUANTITY_RE))]
    #[x_kube(validation = Rule::new("isQuantity(self) && quantity(self).isGreaterThan(quantity('0'))").message("storage.size must be a positive quantity such as 10Gi"))]
    pub size: String,
    /// StorageClass of the volumes; unset uses the cluster's default class. Fixed at creation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 253))]
    #[x_kube(validation = rules::subdomain("storage.storageClassName", "a StorageClass name"))]
    pub storage_class_name: Option<String>,
}

impl StorageSpec {
    fn sized(size: &str) -> Self {
        StorageSpec {
            size: size.to_string(),
            storage_class_name: None,
        }
    }
}

/// The etcd cluster.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
#[x_kube(
    validation = Rule::new("self.clientPort != self.peerPort").message("spec.etcd.clientPort and spec.etcd.peerPort must differ"),
    validation = rules::etcd_volume_room(),
    validation = rules::etcd_quota_room(),
)]
pub struct EtcdSpec {
    /// Number of members: 1, 3, 5 or 7 (an odd size keeps a majority through failures). Can
    /// change on a running cluster: the operator adds (as a learner, promoted once caught up)
    /// or removes (highest ordinal first, leadership moved off it first) one member at a time,
    /// only while every member is healthy; 1 → 7 takes six steps. Each step shows in the
    /// Progressing condition (reason EtcdMembershipChange) and as an Event. A removed member's
    /// claim is deleted only under a confirmed `spec.cleanup` Delete policy; a kept claim must
    /// be deleted before the cluster grows onto that ordinal again.
    #[serde(default = "EtcdSpec::default_replicas")]
    #[x_kube(validation = Rule::new("self in [1, 3, 5, 7]").message("spec.etcd.replicas must be 1, 3, 5 or 7"))]
    pub replicas: i32,
    /// Client port (etcd's `listen-client-urls`). Fixed at creation.
    #[serde(default = "EtcdSpec::default_client_port")]
    #[schemars(range(min = rules::PORT.min, max = rules::PORT.max))]
    #[x_kube(validation = Rule::new("self == oldSelf").message("spec.etcd.clientPort is immutable"))]
    pub client_port: i32,
    /// Peer port (etcd's `listen-peer-urls`). Fixed at creation.
    #[serde(default = "EtcdSpec::default_peer_port")]
    #[schemars(range(min = rules::PORT.min, max = rules::PORT.max))]
    #[x_kube(validation = Rule::new("self == oldSelf").message("spec.etcd.peerPort is immutable"))]
    pub peer_port: i32,
    /// Data volume of each member.
    #[serde(default = "EtcdSpec::default_storage")]
    pub storage: StorageSpec,
    /// The most the database may take (etcd's `quota-backend-bytes`), as a Kubernetes quantity
    /// (e.g. `4Gi`). At the quota etcd raises a NOSPACE alarm and refuses every write, so the
    /// MDS can allocate nothing. At least `128Mi` (the operator defragments at 64Mi of free
    /// pages: a smaller database fills with them first), at most `8Gi` (etcd's suggested
    /// maximum) and at most half of `storage.size` less `512Mi` (the WAL and snapshots; a
    /// defragmentation or a snapshot from the leader writes a second copy of the database
    /// beside it). Unset, the largest of those
    /// (`8Gi` from a `16.5Gi` volume; `4.75Gi` from the default `10Gi`), so it follows a volume
    /// that grows. A change restarts the members one at a time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = rules::MAX_QUANTITY_LEN), pattern(rules::QUANTITY_RE))]
    #[x_kube(
        validation = Rule::new("isQuantity(self) && quantity(self).isGreaterThan(quantity('0'))").message("spec.etcd.quotaBackendBytes must be a positive quantity such as 4Gi"),
        validation = Rule::new("!isQuantity(self) || quantity(self).asApproximateFloat() <= 8589934592.0").message("spec.etcd.quotaBackendBytes must be at most 8Gi, etcd's suggested maximum"),
        validation = rules::etcd_min_quota(),
    )]
    pub quota_backend_bytes: Option<String>,
    /// CPU and memory of each member's container.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "rules::etcd_resources_schema")]
    pub resources: Option<ResourceRequirements>,
    /// Rebuild etcd from a verified snapshot of the backup claim, after etcd was lost for
    /// good (docs/user/restore.md). Absent: nothing is restored.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restore: Option<EtcdRestoreSpec>,
    /// Scheduled, verified snapshots of etcd (docs/user/backups.md); unset, none are taken.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backup: Option<EtcdBackupSpec>,
}

// ---- etcd backups (issue 33) ----------------------------------------------------------------

/// Scheduled snapshots of etcd, kept on a volume claim of their own.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct EtcdBackupSpec {
    /// When to take a snapshot: a 5-field cron expression in UTC (minute, hour, day of month,
    /// month, day of week; `*`, `N`, `N-M`, lists and `/STEP`), or `@hourly`, `@daily`,
    /// `@weekly`, `@monthly`, `@yearly`. A snapshot due while etcd is unhealthy waits until a
    /// member is healthy (`status.etcd.backup.waiting` says why).
    #[schemars(length(max = crate::cron::MAX_LEN))]
    #[x_kube(validation = rules::rule(format!("self.matches('{}')", crate::cron::pattern()), rules::got("spec.etcd.backup.schedule must be a 5-field cron expression (minute hour day-of-month month day-of-week, each *, N, N-M or a list of them, optionally /STEP) or @hourly, @daily, @weekly, @monthly, @yearly", "self")))]
    pub schedule: String,
    /// How many verified snapshots to keep; older ones are deleted once a newer one verified.
    #[serde(default = "EtcdBackupSpec::default_keep")]
    #[schemars(range(min = rules::BACKUP_KEEP.min, max = rules::BACKUP_KEEP.max))]
    pub keep: i32,
    /// The volume the snapshots are kept on: the claim `<cluster>-etcd-backup`, created once
    /// and kept when backups are turned off (deleted with the cluster only under a confirmed
    /// `spec.cleanup` Delete policy). Fixed at creation. Room for `keep` + 1 databases is needed
    /// (each up to `spec.etcd.quotaBackendBytes`).
    #[serde(default = "EtcdBackupSpec::default_storage")]
    #[x_kube(validation = Rule::new("self == oldSelf").message("spec.etcd.backup.storage is immutable: the backup claim keeps the size and class it was created with"))]
    pub storage: StorageSpec,
    /// A copy of every verified snapshot in an S3-compatible bucket (AWS S3, MinIO, Ceph RGW),
    /// made by the backup Job after the snapshot verified on the claim; the bucket then also
    /// keeps `keep` verified copies. Needs the operator's image (the chart passes it with
    /// `--job-image`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub s3: Option<EtcdBackupS3>,
}

/// Where the bucket copies go. Requests are path-style (`<endpoint>/<bucket>/<key>`), which
/// S3-compatible servers serve without a DNS name per bucket, and signed with AWS Signature
/// Version 4.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct EtcdBackupS3 {
    /// The S3 API's URL, `http(s)://host[:port]`, e.g. `https://s3.eu-west-1.amazonaws.com` or
    /// `http://minio.storage.svc:9000`. An HTTPS server's certificate must chain to a root the
    /// operator image trusts.
    #[schemars(length(max = rules::S3_ENDPOINT_MAX_LEN))]
    #[x_kube(validation = rules::matching(rules::S3_ENDPOINT_RE, rules::S3_ENDPOINT_TEXT))]
    pub endpoint: String,
    /// The bucket (it must exist; the operator does not create it).
    #[schemars(length(max = rules::S3_BUCKET_MAX_LEN))]
    #[x_kube(validation = rules::matching(rules::S3_BUCKET_RE, rules::S3_BUCKET_TEXT))]
    pub bucket: String,
    /// Prepended to every key: empty or segments ending with `/`. Default
    /// `<namespace>/<cluster>/`, so clusters can share a bucket.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = rules::S3_PREFIX_MAX_LEN))]
    #[x_kube(validation = rules::s3_prefix())]
    pub prefix: Option<String>,
    /// The region signed into each request; servers without regions (MinIO, Ceph RGW) take
    /// the default `us-east-1`.
    #[serde(default = "EtcdBackupS3::default_region")]
    #[schemars(length(max = rules::S3_REGION_MAX_LEN))]
    #[x_kube(validation = rules::matching(rules::S3_REGION_RE, rules::S3_REGION_TEXT))]
    pub region: String,
    /// A Secret in the cluster's namespace with the keys `AWS_ACCESS_KEY_ID` and
    /// `AWS_SECRET_ACCESS_KEY`: credentials that may list, put and delete objects under the
    /// prefix. A missing Secret or key fails the backup with a reason naming it.
    #[schemars(length(max = 253))]
    #[x_kube(validation = rules::subdomain("spec.etcd.backup.s3.credentialsSecret", "a Secret name"))]
    pub credentials_secret: String,
}

impl EtcdBackupS3 {
    fn default_region() -> String {
        "us-east-1".to_string()
    }

    /// The prefix of the keys: the spec's, else `<namespace>/<cluster>/`.
    pub fn prefix_for(&self, namespace: &str, cluster: &str) -> String {
        (self.prefix.clone()).unwrap_or_else(|| format!("{namespace}/{cluster}/"))
    }
}

impl EtcdBackupSpec {
    fn default_keep() -> i32 {
        7
    }
    fn default_storage() -> StorageSpec {
        StorageSpec::sized("20Gi")
    }
}

impl EtcdSpec {
    fn default_replicas() -> i32 {
        3
    }
    fn default_client_port() -> i32 {
        2379
    }
    fn default_peer_port() -> i32 {
        2380
    }
    fn default_storage() -> StorageSpec {
        StorageSpec::sized("10Gi")
    }
}

impl Default for EtcdSpec {
    fn default() -> Self {
        EtcdSpec {
            replicas: Self::default_replicas(),
            client_port: Self::default_client_port(),
            peer_port: Self::default_peer_port(),
            storage: Self::default_storage(),
            quota_backend_bytes: None,
            resources: None,
            restore: None,
            backup: None,
        }
    }
}

/// The MDS metadata servers.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("self.port != self.dummyPort").message("spec.mds.port and spec.mds.dummyPort must differ"))]
pub struct MdsSpec {
    /// Number of MDS pods; one is primary, the others wait in the election.
    #[serde(default = "MdsSpec::default_replicas")]
    #[schemars(range(min = rules::MDS_REPLICAS.min, max = rules::MDS_REPLICAS.max))]
    pub replicas: i32,
    /// Listen port (`mds.listen.addr`); only the primary opens it.
    #[serde(default = "MdsSpec::default_port")]
    #[schemars(range(min = rules::PORT.min, max = rules::PORT.max))]
    pub port: i32,
    /// Dummy port serving `/vars` and `/metrics` on every MDS (`mds.dummy.listen.port`).
    #[serde(default = "MdsSpec::default_dummy_port")]
    #[schemars(range(min = rules::PORT.min, max = rules::PORT.max))]
    pub dummy_port: i32,
    /// CPU and memory of each MDS container.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "rules::mds_resources_schema")]
    pub resources: Option<ResourceRequirements>,
}

impl MdsSpec {
    fn default_replicas() -> i32 {
        3
    }
    fn default_port() -> i32 {
        6700
    }
    fn default_dummy_port() -> i32 {
        7700
    }
}

impl Default for MdsSpec {
    fn default() -> Self {
        MdsSpec {
            replicas: Self::default_replicas(),
            port: Self::default_port(),
            dummy_port: Self::default_dummy_port(),
            resources: None,
        }
    }
}

/// The ChunkServers.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
#[x_kube(
    validation = Rule::new("self.port + self.disksPerNode - 1 <= 65535").message("spec.chunkservers.port + disksPerNode - 1 must be at most 65535: disk slot i listens on port + i"),
    validation = rules::pool_room(),
)]
pub struct ChunkServerSpec {
    /// Number of nodes that run ChunkServers (one pod per node and disk slot). It can grow on a
    /// running cluster (the new servers join the physical pool). Lowered, the highest ordinal
    /// of each slot leaves Curve one ChunkServer at a time (its copysets moved first), while
    /// every copyset is healthy and what remains holds the data; refused otherwise, with the
    /// numbers.
    #[serde(default = "ChunkServerSpec::default_replicas")]
    #[schemars(range(min = rules::CHUNKSERVER_REPLICAS.min, max = rules::CHUNKSERVER_REPLICAS.max))]
    pub replicas: i32,
    /// Disk slots per node: one ChunkServer (and one volume) per slot, slot `i` listening on
    /// `port + i`. Slots can be added on a running cluster. Lowered, the highest slot's
    /// ChunkServers leave Curve one at a time (their copysets moved first), then its
    /// StatefulSet goes.
    #[serde(default = "ChunkServerSpec::default_disks_per_node")]
    #[schemars(range(min = rules::DISKS_PER_NODE.min, max = rules::DISKS_PER_NODE.max))]
    pub disks_per_node: i32,
    /// Listen port of the ChunkServer of disk slot 0; slot `i` uses `port + i`.
    #[serde(default = "ChunkServerSpec::default_port")]
    #[schemars(range(min = rules::PORT.min, max = rules::PORT.max))]
    #[x_kube(validation = Rule::new("self == oldSelf").message("spec.chunkservers.port is immutable: ChunkServers are registered in Curve by ip:port"))]
    pub port: i32,
    /// The data volume of each ChunkServer.
    pub storage: StorageSpec,
    /// Copysets per ChunkServer; the logical pool gets `sum / logicalPool.replicas` copysets.
    #[serde(default = "ChunkServerSpec::default_copysets")]
    #[schemars(range(min = rules::COPYSETS.min, max = rules::COPYSETS.max))]
    pub copysets: i32,
    /// Percentage of the data volume's size preallocated into the chunk file pool by
    /// `curve_format` when a ChunkServer first starts on it (a formatted pool is never
    /// formatted again; when its volume grew, or this percentage rose, each ChunkServer adds to
    /// its pool at its next start whatever keeps `100 - formatPercent` of the volume free). The
    /// volume must have at least this share free: a fresh ext4 volume has
    /// about 94% (5% is reserved for root, plus the journal), XFS about 99%. Curve's
    /// ChunkServer also needs free space beside the pool (copyset metadata, raft snapshots), so
    /// the default is curveadm's 90. A share the volume cannot hold fails the format step
    /// (`ChunkServersReady` reason FormatFailed, naming both shares) and nothing is written.
    /// The pool also holds two raft log files per copyset: `storage.size` must be large
    /// enough for this share and `copysets` to leave room for data, which the refusal names.
    #[serde(default = "ChunkServerSpec::default_format_percent")]
    #[schemars(range(min = rules::FORMAT_PERCENT.min, max = rules::FORMAT_PERCENT.max))]
    pub format_percent: i32,
    /// CPU and memory of each ChunkServer container.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "rules::chunkserver_resources_schema")]
    pub resources: Option<ResourceRequirements>,
    /// Which ChunkServers a roll replaces together: `Server` (default; every disk slot of one
    /// node) or `Zone` (every server of one zone). Before each step every copyset must be
    /// healthy, as the operator reads Curve's health (`status.health`) by the rules of
    /// Curve's `curve_ops_tool copysets-status`.
    #[serde(default)]
    pub update_policy: ChunkServerUpdatePolicy,
}

impl ChunkServerSpec {
    fn default_replicas() -> i32 {
        3
    }
    fn default_disks_per_node() -> i32 {
        1
    }
    fn default_port() -> i32 {
        8200
    }
    fn default_copysets() -> i32 {
        100
    }
    fn default_format_percent() -> i32 {
        90
    }
}

/// How anti-affinity between members of one component is enforced.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum AntiAffinityMode {
    /// Two members never share a topology domain; a member stays Pending rather than break this.
    #[default]
    Required,
    /// The scheduler spreads members when it can (small test clusters).
    Preferred,
}

/// Where pods run.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct PlacementSpec {
    /// Node labels every Curve pod requires.
    #[serde(default)]
    #[schemars(extend("maxProperties" = rules::MAX_NODE_SELECTOR, "additionalProperties" = {"type": "string", "maxLength": 63}))]
    #[x_kube(
        validation = rules::label_map_keys("spec.placement.nodeSelector"),
        validation = rules::label_map_values("spec.placement.nodeSelector")
    )]
    pub node_selector: BTreeMap<String, String>,
    /// Tolerations of every Curve pod.
    #[serde(default)]
    #[schemars(schema_with = "rules::tolerations_schema")]
    pub tolerations: Vec<Toleration>,
    /// Whether anti-affinity between members of one component is Required or Preferred.
    #[serde(default)]
    pub anti_affinity: AntiAffinityMode,
    /// Node label whose values members of one component must not share.
    #[serde(default = "PlacementSpec::default_topology_key")]
    #[schemars(length(max = rules::LABEL_KEY_MAX))]
    #[x_kube(
        validation = Rule::new("self != ''").message("spec.placement.topologyKey must not be empty"),
        validation = rules::label_key("spec.placement.topologyKey")
    )]
    pub topology_key: String,
    /// Node label giving the Curve zone of a ChunkServer's server (e.g.
    /// `topology.kubernetes.io/zone`); unset puts each node in its own zone, assigned
    /// round-robin to `logicalPool.zones` zones.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = rules::LABEL_KEY_MAX))]
    #[x_kube(validation = rules::label_key("spec.placement.zoneLabel"))]
    pub zone_label: Option<String>,
}

impl PlacementSpec {
    fn default_topology_key() -> String {
        "kubernetes.io/hostname".to_string()
    }
}

impl Default for PlacementSpec {
    fn default() -> Self {
        PlacementSpec {
            node_selector: BTreeMap::new(),
            tolerations: Vec::new(),
            anti_affinity: AntiAffinityMode::default(),
            topology_key: Self::default_topology_key(),
            zone_label: None,
        }
    }
}

/// The Curve pools.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct LogicalPoolSpec {
    /// Name of the physical pool holding every server. Fixed at creation.
    #[serde(default = "LogicalPoolSpec::default_physical_pool")]
    #[schemars(length(max = rules::MAX_POOL_NAME_LEN))]
    #[x_kube(
        validation = Rule::new("self == oldSelf").message("spec.logicalPool.physicalPool is immutable"),
        validation = rules::pool_name("spec.logicalPool.physicalPool")
    )]
    pub physical_pool: String,
    /// Name of the logical pool. Fixed at creation.
    #[serde(default = "LogicalPoolSpec::default_name")]
    #[schemars(length(max = rules::MAX_POOL_NAME_LEN))]
    #[x_kube(
        validation = Rule::new("self == oldSelf").message("spec.logicalPool.name is immutable"),
        validation = rules::pool_name("spec.logicalPool.name")
    )]
    pub name: String,
    /// Copies of each copyset (Curve's `replicasnum`). Fixed at creation.
    #[serde(default = "LogicalPoolSpec::default_replicas")]
    #[schemars(range(min = rules::POOL_REPLICAS.min, max = rules::POOL_REPLICAS.max))]
    #[x_kube(validation = Rule::new("self == oldSelf").message("spec.logicalPool.replicas is immutable"))]
    pub replicas: i32,
    /// Zones the servers are spread over (Curve's `zonenum`): equal to `replicas`, as Curve's
    /// MDS requires, each copy of a copyset in its own zone.
    #[serde(default = "LogicalPoolSpec::default_zones")]
    #[schemars(range(min = rules::POOL_REPLICAS.min, max = rules::POOL_REPLICAS.max))]
    pub zones: i32,
}

impl LogicalPoolSpec {
    fn default_physical_pool() -> String {
        "pool1".to_string()
    }
    fn default_name() -> String {
        "logicalPool1".to_string()
    }
    fn default_replicas() -> i32 {
        3
    }
    fn default_zones() -> i32 {
        3
    }
}

impl Default for LogicalPoolSpec {
    fn default() -> Self {
        LogicalPoolSpec {
            physical_pool: Self::default_physical_pool(),
            name: Self::default_name(),
            replicas: Self::default_replicas(),
            zones: Self::default_zones(),
        }
    }
}

/// What deleting the CurveCluster does to its data volumes.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum CleanupPolicy {
    /// Keep the PersistentVolumeClaims (and so the data) after the cluster is deleted.
    #[default]
    Retain,
    /// Delete the PersistentVolumeClaims too — only together with the confirmation value.
    Delete,
}

/// Deletion behaviour.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct CleanupSpec {
    /// Retain (default) or Delete the data volumes when the cluster is deleted.
    #[serde(default)]
    pub policy: CleanupPolicy,
    /// Must be `yes-really-destroy-data` for policy Delete to take effect: a policy alone never
    /// deletes data.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 64))]
    #[x_kube(validation = rules::rule("self == 'yes-really-destroy-data'", rules::got("spec.cleanup.confirmation must be yes-really-destroy-data when set", "self")))]
    pub confirmation: Option<String>,
}

impl CleanupSpec {
    /// True only when both the policy and the confirmation ask for the data to go.
    pub fn deletes_data(&self) -> bool {
        self.policy == CleanupPolicy::Delete
            && self.confirmation.as_deref() == Some(DELETE_DATA_CONFIRMATION)
    }
}

/// The CustomResourceDefinition as YAML, exactly as `crds/curvecluster.yaml` holds it.
pub fn crd_yaml() -> String {
    use kube::CustomResourceExt;
    serde_saphyr::to_string(&CurveCluster::crd()).expect("the CRD serializes")
}
