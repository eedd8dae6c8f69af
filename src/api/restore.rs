//! `spec.etcd.restore` and `status.etcd.restore`: rebuilding a lost etcd from a verified
//! snapshot of the backup claim (docs/user/restore.md).

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::KubeSchema;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::rules;

/// What `spec.etcd.restore.confirmation` starts with; the snapshot's name follows.
pub const RESTORE_CONFIRMATION_PREFIX: &str = "yes-restore-etcd-from-";
/// A snapshot's name as the backup writes it: `etcd-<YYYYMMDD>T<hhmmss>Z`.
pub const SNAPSHOT_NAME_RE: &str = "^etcd-[0-9]{8}T[0-9]{6}Z$";
/// Longest `snapshot` and `confirmation` the CRD admits (bounds the CEL rules' cost).
pub const SNAPSHOT_NAME_MAX: usize = 64;
pub const RESTORE_CONFIRMATION_MAX: usize = 128;

/// `name` matches [`SNAPSHOT_NAME_RE`].
pub fn is_snapshot_name(name: &str) -> bool {
    let digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    let Some(stamp) = name.strip_prefix("etcd-").and_then(|s| s.strip_suffix('Z')) else {
        return false;
    };
    match stamp.split_once('T') {
        Some((date, time)) => date.len() == 8 && time.len() == 6 && digits(date) && digits(time),
        None => false,
    }
}

/// The confirmation that lets the operator restore this snapshot.
pub fn restore_confirmation(snapshot: &str) -> String {
    format!("{RESTORE_CONFIRMATION_PREFIX}{snapshot}")
}

/// Rebuild etcd from a snapshot of the backup claim, after etcd was lost for good (every
/// member's data gone, or a majority unrecoverable). The operator stops the MDS tier, rebuilds
/// etcd as a new cluster with the same members, advances Curve's id counters past any id
/// handed out after the snapshot and starts the MDS again; the ChunkServers keep running.
/// Volumes and writes after the snapshot are lost (docs/user/restore.md).
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = rules::rule(
    format!("!has(self.confirmation) || self.confirmation == '{RESTORE_CONFIRMATION_PREFIX}' + self.snapshot"),
    format!("'spec.etcd.restore.confirmation must be {RESTORE_CONFIRMATION_PREFIX}' + self.snapshot + ' when set (got \"' + self.confirmation + '\")'"),
))]
pub struct EtcdRestoreSpec {
    /// The snapshot to restore, `etcd-<YYYYMMDD>T<hhmmss>Z`: the file
    /// `snapshots/<snapshot>.db` of the backup claim, verified against its `.json`.
    #[schemars(length(max = SNAPSHOT_NAME_MAX))]
    #[x_kube(validation = rules::rule(
        format!("self.matches('{SNAPSHOT_NAME_RE}')"),
        rules::got("spec.etcd.restore.snapshot must be a snapshot name etcd-<YYYYMMDD>T<hhmmss>Z", "self"),
    ))]
    pub snapshot: String,
    /// Must be `yes-restore-etcd-from-<snapshot>` for the restore to start: without it the
    /// operator only says what it would do.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = RESTORE_CONFIRMATION_MAX))]
    pub confirmation: Option<String>,
}

impl EtcdRestoreSpec {
    /// The confirmation names this snapshot exactly.
    pub fn confirmed(&self) -> bool {
        self.confirmation.as_deref() == Some(restore_confirmation(&self.snapshot).as_str())
    }
}

/// Where a restore is. Each phase is written to the status before its first step, so an
/// operator restarted midway carries on from it.
#[derive(
    JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord,
)]
pub enum RestorePhase {
    /// A Job checks the snapshot against its `.json` (`etcdctl snapshot status`). Nothing is
    /// stopped yet: removing `spec.etcd.restore` now cancels it.
    Verifying,
    /// The MDS StatefulSet is scaled to 0; waiting for every MDS pod to be gone.
    StoppingMds,
    /// The etcd StatefulSet is scaled to 0; then the claims of members other than 0 are
    /// deleted (they rejoin empty). From here on the restore carries on to its end.
    StoppingEtcd,
    /// A Job restores member 0's data from the snapshot (`etcdctl snapshot restore`).
    Restoring,
    /// etcd starts again as a one-member cluster.
    StartingEtcd,
    /// Curve's inode (`04`) and chunk (`05`) id counters are advanced past any id handed out
    /// after the snapshot, in one transaction guarded on the values read.
    AdvancingCounters,
    /// The other members join one at a time (the operator's membership growth); the MDS stays
    /// stopped until etcd has every member.
    Rejoining,
    /// Done: the MDS tier runs again.
    Done,
    /// Stopped: the message says why. Nothing is stopped when it failed before StoppingEtcd.
    Failed,
}

impl RestorePhase {
    pub fn as_str(self) -> &'static str {
        match self {
            RestorePhase::Verifying => "Verifying",
            RestorePhase::StoppingMds => "StoppingMds",
            RestorePhase::StoppingEtcd => "StoppingEtcd",
            RestorePhase::Restoring => "Restoring",
            RestorePhase::StartingEtcd => "StartingEtcd",
            RestorePhase::AdvancingCounters => "AdvancingCounters",
            RestorePhase::Rejoining => "Rejoining",
            RestorePhase::Done => "Done",
            RestorePhase::Failed => "Failed",
        }
    }

    /// Done or Failed: nothing more happens for this request.
    pub fn finished(self) -> bool {
        matches!(self, RestorePhase::Done | RestorePhase::Failed)
    }
}

/// One id counter's advance: the value the restored snapshot held (absent: never allocated)
/// and the value written.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct CounterAdvance {
    /// The value read from the restored etcd (Curve's decimal encoding); absent when the key
    /// did not exist.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<u64>,
    /// The value written.
    pub to: u64,
}

/// The advance of Curve's two id counters, planned (written here before the transaction is
/// sent) and then carried out.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct CountersAdvance {
    /// Key `04`: the inode (file) id generator.
    pub inode: CounterAdvance,
    /// Key `05`: the chunk id generator.
    pub chunk: CounterAdvance,
}

/// A restore's progress (`status.etcd.restore`).
#[derive(JsonSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct EtcdRestoreStatus {
    pub phase: RestorePhase,
    /// The snapshot being (or last) restored.
    pub snapshot: String,
    /// What the phase waits for, or why it failed.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub message: String,
    /// etcd's revision after the restore, before the counters were advanced: the snapshot's
    /// revision.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revision: Option<i64>,
    /// The etcd cluster token of the rebuilt cluster: a new one, so no member of the lost
    /// cluster can ever join it.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub cluster_token: String,
    /// The id counters' advance, once planned.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub counters: Option<CountersAdvance>,
    pub started: Time,
    /// When it reached Done or Failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished: Option<Time>,
}
