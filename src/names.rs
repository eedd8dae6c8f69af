//! The shared vocabulary: the components of a Curve cluster, the labels every object carries,
//! and the names of the objects derived from a cluster's name. The bottom floor: `validate`,
//! the builders (`desired`), the reconciler and the metrics all speak it, and it imports nothing
//! of the crate.

use std::collections::BTreeMap;

/// A Curve component; its name is the `app.kubernetes.io/component` label value.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Component {
    Etcd,
    Mds,
    ChunkServer,
    /// The topology ConfigMap and the Jobs that create Curve's pools.
    Topology,
}

impl Component {
    /// The tiers that run daemons, in bring-up order (etcd → MDS → ChunkServers).
    pub const TIERS: [Component; 3] = [Component::Etcd, Component::Mds, Component::ChunkServer];

    /// Its place in [`Component::TIERS`]; none for the topology.
    pub fn tier_index(self) -> Option<usize> {
        Component::TIERS.iter().position(|&c| c == self)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Component::Etcd => "etcd",
            Component::Mds => "mds",
            Component::ChunkServer => "chunkserver",
            Component::Topology => "topology",
        }
    }
}

/// A step of Curve's topology bootstrap, each run by a Job of Curve's own tools.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TopologyStep {
    PhysicalPool,
    ChunkServersOnline,
    LogicalPool,
}

impl TopologyStep {
    /// Curve's bootstrap order.
    pub const ALL: [TopologyStep; 3] = [
        TopologyStep::PhysicalPool,
        TopologyStep::ChunkServersOnline,
        TopologyStep::LogicalPool,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            TopologyStep::PhysicalPool => "physical-pool",
            TopologyStep::ChunkServersOnline => "chunkservers-online",
            TopologyStep::LogicalPool => "logical-pool",
        }
    }
}

pub const LABEL_NAME: &str = "app.kubernetes.io/name";
pub const LABEL_INSTANCE: &str = "app.kubernetes.io/instance";
pub const LABEL_COMPONENT: &str = "app.kubernetes.io/component";
pub const LABEL_MANAGED_BY: &str = "app.kubernetes.io/managed-by";
pub const LABEL_DISK_SLOT: &str = "curve.opencurve.io/disk-slot";
/// Label telling which topology step a Job performs.
pub const LABEL_STEP: &str = "curve.opencurve.io/topology-step";
/// The `managed-by` label value, and the field manager of every server-side apply.
pub const MANAGER: &str = "curve-operator";

/// Labels that select every object of one component of one cluster.
pub fn selector_labels(cluster: &str, component: Component) -> BTreeMap<String, String> {
    BTreeMap::from([
        (LABEL_NAME.to_string(), "curve".to_string()),
        (LABEL_INSTANCE.to_string(), cluster.to_string()),
        (LABEL_COMPONENT.to_string(), component.as_str().to_string()),
    ])
}

/// Labels of every object the operator creates: the selector labels plus `managed-by`.
pub fn labels(cluster: &str, component: Component) -> BTreeMap<String, String> {
    let mut labels = selector_labels(cluster, component);
    labels.insert(LABEL_MANAGED_BY.to_string(), MANAGER.to_string());
    labels
}

/// Labels selecting every object of a cluster, for list-and-prune.
pub fn cluster_selector(cluster: &str) -> String {
    format!("{LABEL_NAME}=curve,{LABEL_INSTANCE}={cluster},{LABEL_MANAGED_BY}={MANAGER}")
}

/// `<cluster>-<component>`: the name of a component's Service, ConfigMap, budget and StatefulSet.
pub fn component_name(cluster: &str, component: Component) -> String {
    format!("{cluster}-{}", component.as_str())
}

/// `<cluster>-chunkserver-<slot>`: the StatefulSet of one disk slot.
pub fn slot_set_name(cluster: &str, slot: i32) -> String {
    format!("{}-{slot}", component_name(cluster, Component::ChunkServer))
}

/// The ConfigMap holding etcd's member list as the operator manages it.
pub fn etcd_members_config_map_name(cluster: &str) -> String {
    format!("{}-members", component_name(cluster, Component::Etcd))
}

/// The Secret holding the cluster's Curve root password.
pub fn root_secret_name(cluster: &str) -> String {
    format!("{cluster}-root-password")
}

/// Characters of the servers hash in a topology Job's name.
pub const SERVERS_HASH_LEN: usize = 8;

/// `<cluster>-<step>-<servers hash>`: a new Job whenever the server list changes, except the
/// logical pool, which is created once.
pub fn topology_job_name(cluster: &str, step: TopologyStep, servers_hash: &str) -> String {
    match step {
        TopologyStep::LogicalPool => format!("{cluster}-{}", step.as_str()),
        _ => format!("{cluster}-{}-{servers_hash}", step.as_str()),
    }
}

/// The CSI driver name curve-csi registers (`driverDefaultName`, cmd/curve-csi.go:33 at
/// curve-csi ed02bd6): its CSIDriver object, its provisioner name and its kubelet socket.
pub const CSI_DRIVER: &str = "curve.csi.netease.com";
/// The component label of curve-csi's node plugin (DaemonSet and pods).
pub const CSI_NODE: &str = "csi-node";
/// The component label of curve-csi's controller (Deployment, and the cluster-scoped objects).
pub const CSI_CONTROLLER: &str = "csi-controller";
/// On cluster-scoped objects, which can have no namespaced owner: the namespace of the
/// CurveCluster they belong to (with `app.kubernetes.io/instance`, its name).
pub const LABEL_NAMESPACE: &str = "curve.opencurve.io/namespace";

/// Labels of a curve-csi object of one cluster; `part` is [`CSI_NODE`] or [`CSI_CONTROLLER`].
pub fn csi_labels(cluster: &str, part: &str) -> BTreeMap<String, String> {
    let mut labels = csi_selector_labels(cluster, part);
    labels.insert(LABEL_MANAGED_BY.to_string(), MANAGER.to_string());
    labels
}

/// The labels selecting the pods of one curve-csi part of one cluster.
pub fn csi_selector_labels(cluster: &str, part: &str) -> BTreeMap<String, String> {
    BTreeMap::from([
        (LABEL_NAME.to_string(), "curve".to_string()),
        (LABEL_INSTANCE.to_string(), cluster.to_string()),
        (LABEL_COMPONENT.to_string(), part.to_string()),
    ])
}

/// Whether a component label value is one of curve-csi's parts.
pub fn is_csi_component(component: &str) -> bool {
    component == CSI_NODE || component == CSI_CONTROLLER
}

/// `<cluster>-csi-node` / `<cluster>-csi-controller`: the namespaced objects of a part.
pub fn csi_name(cluster: &str, part: &str) -> String {
    format!("{cluster}-{part}")
}

/// `curve-csi-<namespace>-<cluster>`: the ClusterRole and ClusterRoleBinding of a cluster's
/// curve-csi controller (cluster-scoped, so the namespace is in the name).
pub fn csi_cluster_role_name(namespace: &str, cluster: &str) -> String {
    format!("curve-csi-{namespace}-{cluster}")
}

/// The label selector of one cluster's cluster-scoped objects.
pub fn cluster_scoped_selector(namespace: &str, cluster: &str) -> String {
    format!(
        "{},{LABEL_NAMESPACE}={namespace}",
        cluster_selector(cluster)
    )
}

// ---- etcd backups (issue 33) ----------------------------------------------------------------

/// The component label of the backup claim, Jobs and pods (no tier's: its pods are not etcd's).
pub const ETCD_BACKUP: &str = "etcd-backup";
/// The component label of the restore Jobs and their pods (reconcile/restore.rs): no tier's,
/// so no tier counts their pods.
pub const ETCD_RESTORE: &str = "etcd-restore";
/// The etcdctl of the Curve image, which the backup and restore Jobs run.
pub const IMAGE_ETCDCTL: &str = "/curvebs/etcd/sbin/etcdctl";
/// On a backup Job's pods: the Job's name, so its result is found among the cluster's pods.
pub const LABEL_BACKUP_JOB: &str = "curve.opencurve.io/backup-job";

/// `<cluster>-etcd-backup`: the claim the snapshots are kept on.
pub fn etcd_backup_claim_name(cluster: &str) -> String {
    format!("{cluster}-{ETCD_BACKUP}")
}

/// `<cluster>-etcd-backup-<YYYYMMDD>-<hhmm>`: the Job of the snapshot scheduled at that minute
/// (UTC), so a Job created twice for one firing is one Job.
pub fn etcd_backup_job_name(cluster: &str, scheduled_minute: &str) -> String {
    format!("{cluster}-{ETCD_BACKUP}-{scheduled_minute}")
}

/// Labels of the backup claim and Jobs: the cluster's, with their own component.
pub fn etcd_backup_labels(cluster: &str) -> BTreeMap<String, String> {
    let mut labels = labels(cluster, Component::Etcd);
    labels.insert(LABEL_COMPONENT.to_string(), ETCD_BACKUP.to_string());
    labels
}
