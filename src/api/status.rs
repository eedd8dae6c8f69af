//! `CurveCluster.status`: written only by the operator, read by users and printer columns.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// The observed state of a CurveCluster.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct CurveClusterStatus {
    /// The `metadata.generation` this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// Lifecycle phase: Pending, Creating, Available, Degraded, Paused or Invalid.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<Phase>,
    /// Conditions: Available, Progressing, Degraded, EtcdQuorate, MdsLeaderElected,
    /// ChunkServersReady, TopologyReady, SpecValid, ReconciliationPaused, DataRetained;
    /// DataAdopted while claims of an earlier cluster are in use; Monitoring with
    /// spec.monitoring.enabled; Csi and CsiConfigPending with spec.csi.enabled;
    /// DeletionBlocked while a deletion waits for bound PersistentVolumes; CopysetsHealthy
    /// once Curve's health has been read. Every reason: docs/reference/conditions.md.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
    /// The etcd cluster.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub etcd: Option<EtcdStatus>,
    /// The MDS servers and the elected primary.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mds: Option<MdsStatus>,
    /// The ChunkServers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chunkservers: Option<ComponentStatus>,
    /// The Curve topology (pools).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub topology: Option<TopologyStatus>,
    /// Curve's own health, read from the MDS and the ChunkServers: copysets, ChunkServers,
    /// space.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health: Option<HealthStatus>,
    /// The operator's memory of this cluster (addresses handed out, servers listed, pool
    /// progress). Written by the operator only; do not edit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub record: Option<OperatorRecord>,
}

/// Lifecycle phase of a CurveCluster.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    /// Accepted, nothing created yet.
    Pending,
    /// Components are being created and brought up in order.
    Creating,
    /// Every component is ready and an MDS primary is elected.
    Available,
    /// Was available, and something is not ready now.
    Degraded,
    /// `spec.paused` is true: nothing is changed.
    Paused,
    /// The spec is invalid: see the SpecValid condition.
    Invalid,
}

impl Phase {
    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Pending => "Pending",
            Phase::Creating => "Creating",
            Phase::Available => "Available",
            Phase::Degraded => "Degraded",
            Phase::Paused => "Paused",
            Phase::Invalid => "Invalid",
        }
    }
}

/// Desired and ready pods of one component.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Eq, Default)]
#[serde(rename_all = "camelCase")]
pub struct ComponentStatus {
    /// Pods the spec asks for.
    pub desired: i32,
    /// Pods that are Ready.
    pub ready_replicas: i32,
    /// `ready/desired`, for `kubectl get`.
    pub ready: String,
    /// Pods that run the StatefulSets' current template (revision).
    #[serde(default)]
    pub updated_replicas: i32,
    /// `updated/desired`.
    #[serde(default)]
    pub updated: String,
    /// The images the component's pods run (the spec's once a roll is done).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub images: Vec<String>,
}

impl ComponentStatus {
    pub fn new(desired: i32, ready_replicas: i32) -> Self {
        ComponentStatus {
            desired,
            ready_replicas,
            ready: format!("{ready_replicas}/{desired}"),
            updated_replicas: 0,
            updated: format!("0/{desired}"),
            images: Vec::new(),
        }
    }

    /// With how many pods run the current template, and their images.
    pub fn with_updated(mut self, updated: i32, images: Vec<String>) -> Self {
        self.updated_replicas = updated;
        self.updated = format!("{updated}/{}", self.desired);
        self.images = images;
        self
    }
}

/// The etcd cluster as read from etcd itself.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct EtcdStatus {
    #[serde(flatten)]
    pub pods: ComponentStatus,
    /// Name of the etcd member that is raft leader, when etcd answered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub leader: Option<String>,
    /// Members that answered a health check.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub healthy_members: Option<i32>,
    /// The restore of `spec.etcd.restore` under way, or the last one while the spec still
    /// names it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restore: Option<super::EtcdRestoreStatus>,
    /// The scheduled snapshots of `spec.etcd.backup`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backup: Option<EtcdBackupStatus>,
}

// ---- etcd backups (issue 33) ----------------------------------------------------------------

/// The scheduled snapshots: the last success and failure, and the next one.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct EtcdBackupStatus {
    /// When the operator first scheduled snapshots (since `spec.etcd.backup` was set): until
    /// one succeeds, the age of the newest verified snapshot is counted from here.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enabled_at: Option<Time>,
    /// The schedule `nextScheduled` was computed from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schedule: Option<String>,
    /// When the next snapshot is due.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_scheduled: Option<Time>,
    /// The backup Job running now.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub active_job: Option<String>,
    /// Why a snapshot that is due waits (etcd unhealthy or unread, a Job still running).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub waiting: Option<String>,
    /// The newest snapshot taken and verified.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_success: Option<EtcdBackupSuccess>,
    /// The newest backup Job that failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_failure: Option<EtcdBackupFailure>,
}

/// A snapshot taken and verified (`etcdctl snapshot status`).
#[derive(JsonSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct EtcdBackupSuccess {
    /// `etcd-<YYYYMMDD>T<hhmmss>Z`: the snapshot's file name without `.db`.
    pub name: String,
    /// When the Job started taking it.
    pub time: Time,
    /// etcd's revision in the snapshot.
    pub revision: i64,
    /// Bytes of the snapshot file.
    pub size: i64,
    /// Where it is: `pvc/<claim>/snapshots/<name>.db`.
    pub location: String,
    /// The etcd member it was taken from.
    pub member: String,
    /// The Job that took it.
    pub job: String,
    /// The copy in the bucket (`spec.etcd.backup.s3`), path-style:
    /// `<endpoint>/<bucket>/<prefix><name>.db`, its `.json` beside it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bucket_copy: Option<String>,
}

/// A backup Job that failed.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct EtcdBackupFailure {
    /// When the operator saw the Job fail.
    pub time: Time,
    /// The Job's own words (etcdctl's error, or the Job's failure condition).
    pub reason: String,
    /// The Job that failed.
    pub job: String,
}

/// The MDS servers and the primary elected among them.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct MdsStatus {
    #[serde(flatten)]
    pub pods: ComponentStatus,
    /// The MDS pod holding the `07leader/` election in etcd.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub primary: Option<String>,
    /// The primary's `ip:port`, the value of its election key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub primary_address: Option<String>,
    /// When the operator saw the primary change last.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub primary_since: Option<Time>,
}

/// The Curve topology.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Eq, Default)]
#[serde(rename_all = "camelCase")]
pub struct TopologyStatus {
    /// Servers (ChunkServer hosts) in the cluster map.
    pub servers: i32,
    /// Name of the physical pool.
    pub physical_pool: String,
    /// Name of the logical pool.
    pub logical_pool: String,
    /// What volumes can be given in all, in bytes: every ChunkServer's volume times the MDS's
    /// `PoolUsagePercentLimit` as the operator renders it (docs/user/nodes.md#capacity),
    /// divided by the copies. An upper bound: file systems are a little smaller than their
    /// volumes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub usable_bytes: Option<i64>,
}

/// Curve's health as the operator judged it, by the rules of Curve's own
/// `curve_ops_tool status` (copysets, MDS) without its SnapshotCloneServer part.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct HealthStatus {
    /// Healthy, Unhealthy, or Unknown when something needed could not be read.
    pub verdict: HealthVerdict,
    /// Why: for Unknown the endpoint and what went wrong; for Unhealthy every problem.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// The copysets, when they could be judged.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub copysets: Option<CopysetHealthStatus>,
    /// The ChunkServers as the MDS sees them, when its topology could be read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chunkservers: Option<ChunkServerHealthStatus>,
    /// Space of each logical pool, from the MDS's pool metrics.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub logical_pools: Vec<LogicalPoolSpaceStatus>,
    /// When the operator read this.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_checked: Option<Time>,
}

/// Curve's health in one word.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
pub enum HealthVerdict {
    /// Every copyset healthy, one MDS leader (the elected one), every MDS online.
    Healthy,
    /// Something is wrong: see the message and the copyset problems.
    Unhealthy,
    /// Something needed could not be read: see the message.
    Unknown,
}

/// Copysets by health.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Eq, Default)]
#[serde(rename_all = "camelCase")]
pub struct CopysetHealthStatus {
    /// Copysets the ChunkServers report, with those of ChunkServers that do not answer.
    pub total: i64,
    /// Copysets with no problem.
    pub healthy: i64,
    /// Copysets with at least one problem.
    pub unhealthy: i64,
    /// Unhealthy copysets by reason.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub problems: Vec<CopysetProblemStatus>,
}

/// Copysets with one problem.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct CopysetProblemStatus {
    /// PeersNotSufficient, MinorityPeerNotOnline, MajorityPeerNotOnline, LogIndexGapTooBig,
    /// InstallingSnapshot, NoLeader, State<raft state> (e.g. StateError); or
    /// NotOnChunkServers / NotInMds when the ChunkServers' copysets differ from the MDS's.
    pub reason: String,
    /// How many copysets.
    pub count: i64,
    /// The first few, as `<logicalPoolId>/<copysetId>`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub copysets: Vec<String>,
    /// The first 10 ChunkServers (`ip:port`, in order) involved: peers not online, the node
    /// reporting the state, the follower behind or receiving a snapshot.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub chunkservers: Vec<String>,
}

/// ChunkServers as the MDS sees them.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Eq, Default)]
#[serde(rename_all = "camelCase")]
pub struct ChunkServerHealthStatus {
    /// Not retired, heartbeating (ONLINE).
    pub online: i32,
    /// Not retired, no heartbeat for `mds.heartbeat.misstimeoutMs` (UNSTABLE).
    pub unstable: i32,
    /// Not retired, no heartbeat for `mds.heartbeat.offlinetimeoutMs` (OFFLINE).
    pub offline: i32,
    /// Status READWRITE.
    pub readwrite: i32,
    /// Status PENDDING (Curve's spelling): being drained.
    pub pendding: i32,
    /// Status RETIRED.
    pub retired: i32,
}

/// One logical pool's space; a figure is absent until the MDS publishes its pool metrics
/// (a minute after it is elected).
#[derive(JsonSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct LogicalPoolSpaceStatus {
    /// The logical pool's name.
    pub name: String,
    /// Bytes volumes can be given: the chunk files' space divided by the replica count.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub capacity_bytes: Option<i64>,
    /// Bytes given to volumes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allocated_bytes: Option<i64>,
    /// Bytes of chunk files in use on the pool's ChunkServers, every replica counted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub used_bytes: Option<i64>,
    /// Bytes of chunk files on the pool's ChunkServers, every replica counted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub physical_bytes: Option<i64>,
}

/// What the operator must remember between reconciles, and across its own restarts, because
/// the running cluster cannot tell it again. Never parsed back out of Curve's config files.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Eq, Default)]
#[serde(rename_all = "camelCase")]
pub struct OperatorRecord {
    /// Schema version of this record; this operator writes and reads version 1.
    pub version: i32,
    /// The MDS `ip:port` list the ChunkServers and tools were given, in ordinal order. Kept
    /// while an MDS pod is replaced and has no IP, so ChunkServers do not roll twice.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub mds_addresses: Vec<String>,
    /// The etcd `ip:port` list the tools were given, in ordinal order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub etcd_addresses: Vec<String>,
    /// Every server (ChunkServer node) ever put in Curve's cluster map. A server is never
    /// dropped: Curve would delete it and its copies.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub servers: Vec<RecordedServer>,
    /// IPs the physical pool lists, as the last successful physical-pool Job created it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub physical_pool_servers: Vec<String>,
    /// The root password Secret the operator made sure exists (it is looked for again when a
    /// pod reports it missing).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub root_secret: Option<String>,
    /// The logical pool was created (it is created once).
    #[serde(default)]
    pub logical_pool_created: bool,
    /// The port Curve registered this cluster's servers with (their `internalPort`), set when
    /// the first physical-pool Job succeeds. `create_physicalpool` never changes a server
    /// (tools/curvefsTool.cpp:676-690), so it stays; a fixed port admits only the ChunkServer
    /// of that port (topology.cpp:587-607), so more disk slots are refused. Absent from a
    /// record written before it was kept: such a pool got the ChunkServer port when it was
    /// created with one disk slot. (The record stays version 1: an operator that does not
    /// know the field drops it, and its absence then refuses a slot increase, never allows
    /// one wrongly.)
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server_port: Option<i32>,
    /// Voting etcd members once the cluster bootstrapped and each time a size change
    /// completed: Curve's daemons and tools list this many members. Absent before bootstrap.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub etcd_members: Option<i32>,
    /// The etcd membership change in progress, written before its first call to etcd, so a
    /// restarted operator finishes it instead of starting another.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub etcd_step: Option<EtcdStep>,
    /// The ChunkServer being retired or replaced, one at a time; each step is written here
    /// before it is taken, so a restarted operator carries on from it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retire: Option<ChunkServerRetire>,
    /// The ChunkServer pods (a token of their uids) the MDS was last asked to spread the
    /// copysets' leaders over.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub leaders_spread_for: Option<String>,
}

/// One ChunkServer leaving Curve: drained (PENDDING until the MDS moved every copy it holds),
/// stopped, RETIRED by Curve, deleted (and its server once empty).
#[derive(JsonSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct ChunkServerRetire {
    pub reason: RetireReason,
    /// Its pod (`<name>-chunkserver-<slot>-<ordinal>`).
    pub pod: String,
    pub slot: i32,
    pub ordinal: i32,
    /// Curve's id of the ChunkServer that leaves; absent when none was registered there.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chunkserver_id: Option<u32>,
    /// The `ip:port` it is registered with.
    pub address: String,
    /// Its Curve server (node), deleted with its last ChunkServer on a scale-in.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server_id: Option<u32>,
    pub step: RetireStep,
    /// Copysets it held when the retire began.
    pub copysets_at_start: u32,
    pub started: Time,
}

/// Why a ChunkServer leaves.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
pub enum RetireReason {
    /// `spec.chunkservers.replicas` lowered: the highest ordinal of each slot leaves.
    ScaleIn,
    /// `spec.chunkservers.disksPerNode` lowered: the highest slot's ChunkServers leave.
    DiskSlotRemoved,
    /// Its disk was lost: the pod's new, empty volume would register under its id.
    Replace,
}

/// Where a retire is.
#[derive(
    JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord,
)]
pub enum RetireStep {
    /// PENDDING: the MDS moves its copysets to other ChunkServers.
    Draining,
    /// Empty: its pod stops; Curve marks it RETIRED once it is no longer online.
    Stopping,
    /// RETIRED: deleted from Curve, then its server if that is empty.
    Deleting,
}

/// One etcd membership change: one member added, removed or replaced.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct EtcdStep {
    pub action: EtcdStepAction,
    /// The member's (and its pod's) name.
    pub member: String,
    /// The member's peer URL: how it is found in etcd's member list before it has a name.
    pub peer_url: String,
    /// The id (hex) of the member being removed or replaced, as the member list showed it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub member_id: Option<String>,
    /// Why, for a person.
    pub reason: String,
}

/// What an [`EtcdStep`] does.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
pub enum EtcdStepAction {
    /// Add as a learner, start its pod, promote it.
    Add,
    /// Move leadership off it if needed, remove it, then its pod (and its claim per
    /// `spec.cleanup`).
    Remove,
    /// Its data is gone: remove it, add it back as a learner with an empty data dir, promote.
    Replace,
}

impl OperatorRecord {
    pub const VERSION: i32 = 1;
}

/// A server of Curve's cluster map.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Eq, Default)]
#[serde(rename_all = "camelCase")]
pub struct RecordedServer {
    /// The node's name, also the Curve server's name.
    pub name: String,
    /// The node's IP, which its ChunkServers serve on.
    pub ip: String,
    /// The Curve zone the server was placed in.
    pub zone: String,
}
