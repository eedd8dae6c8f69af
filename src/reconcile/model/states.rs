//! Where each change a decision manages stands: a roll, etcd's membership, volume growth and
//! the monitoring objects. The decision modules compute them; the status reports them.

use crate::names::Component;

/// Where a roll stands.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RollState {
    /// Every pod runs its StatefulSet's current template.
    Done,
    /// A step was taken or is awaited; the message says which (`Progressing` RollingUpdate).
    Rolling { message: String },
    /// The roll cannot go on by itself (`Progressing` False, RolloutStuck).
    Stuck { message: String },
}

/// Where membership stands, for the status.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub enum MembershipState {
    /// Nothing to change (or nothing known yet).
    #[default]
    Settled,
    /// A change is under way.
    Changing { message: String },
    /// A change is asked for and cannot start: says why and what would unblock it.
    Blocked { message: String },
}

/// Where the cluster's monitoring stands (the `Monitoring` condition).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum MonitoringState {
    /// `spec.monitoring.enabled` is false: no condition.
    #[default]
    Disabled,
    /// Discovery has not answered yet.
    Waiting,
    /// The Prometheus Operator's kinds are not served; nothing was created.
    Missing { message: String },
    /// The objects are applied (or applied by this decision).
    Applied { objects: Vec<String> },
}

/// Where curve-csi stands (the `Csi` and `CsiConfigPending` conditions).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum CsiState {
    /// `spec.csi.enabled` is false: no condition.
    #[default]
    Disabled,
    /// Nothing is created before the cluster is first Available.
    WaitingForAvailable,
    /// A StorageClass or CSIDriver of that name belongs to someone else: nothing is applied.
    Taken { objects: Vec<String> },
    /// The objects are applied with this `MDSADDR`.
    Applied {
        mds_addr: String,
        /// The StorageClass, once the cluster was Available.
        storage_class: Option<String>,
        /// Nodes whose node plugin pod runs an outdated config and is held: Curve volumes
        /// may be attached there (`VolumeAttachment`s) and the admin has not allowed it.
        pending_nodes: Vec<String>,
    },
}

impl CsiState {
    /// Node plugin pods wait for volumes to detach: look again soon (VolumeAttachments are
    /// not watched).
    pub fn pending(&self) -> bool {
        matches!(self, CsiState::Applied { pending_nodes, .. } if !pending_nodes.is_empty())
    }
}

/// Where one claim's expansion stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ClaimProgress {
    /// Its request is raised by this decision.
    Requested,
    /// Asked for; the volume is being expanded.
    Resizing,
    /// The volume grew; its file system is resized on the node (at the next mount, or online).
    FileSystemResizePending,
    /// Reports the new capacity (or none yet: not bound, it is provisioned at its request).
    Grown,
}

impl ClaimProgress {
    pub fn describe(self) -> &'static str {
        match self {
            ClaimProgress::Requested => "requested",
            ClaimProgress::Resizing => "resizing",
            ClaimProgress::FileSystemResizePending => "file system resize pending",
            ClaimProgress::Grown => "grown",
        }
    }

    /// The volume itself grew: only the node's file system resize may be left.
    pub fn volume_grown(self) -> bool {
        matches!(
            self,
            ClaimProgress::Grown | ClaimProgress::FileSystemResizePending
        )
    }
}

/// A component's volumes on their way to a new size.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VolumeExpansion {
    pub component: Component,
    /// The smallest size a claim reports now.
    pub from: String,
    pub to: String,
    /// Every claim of the component, by name.
    pub claims: Vec<(String, ClaimProgress)>,
    /// The pods restart (the safe roll) once every volume grew: ChunkServers.
    pub restarts: bool,
}

/// The expansions for `Progressing`, e.g. `etcd volumes 10Gi → 20Gi: 1/3 at 20Gi;
/// data-demo-etcd-1 resizing, data-demo-etcd-2 file system resize pending`.
pub fn expansions_message(expansions: &[VolumeExpansion]) -> String {
    let parts: Vec<String> = expansions
        .iter()
        .map(|e| {
            let grown = (e.claims.iter())
                .filter(|(_, p)| *p == ClaimProgress::Grown)
                .count();
            let waiting: Vec<String> = (e.claims.iter())
                .filter(|(_, p)| *p != ClaimProgress::Grown)
                .map(|(name, p)| format!("{name} {}", p.describe()))
                .collect();
            let mut text = format!(
                "{} volumes {} → {}: {grown}/{} claims report {}",
                e.component.as_str(),
                e.from,
                e.to,
                e.claims.len(),
                e.to
            );
            if !waiting.is_empty() {
                text.push_str(&format!("; {}", crate::util::first_of(&waiting, ", ")));
            }
            if e.restarts {
                text.push_str(
                    "; once every volume grew, ChunkServers restart one server (or zone) at a time so that curve_format adds the space to their chunk file pools",
                );
            } else if (e.claims.iter()).any(|(_, p)| *p == ClaimProgress::FileSystemResizePending)
            {
                text.push_str(
                    " (the node resizes the file system online, or when the pod next starts, as its CSI driver can)",
                );
            }
            text
        })
        .collect();
    parts.join("; ")
}

/// A retire as the status shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RetireProgress {
    pub reason: crate::api::RetireReason,
    pub message: String,
    /// Copysets still placed on the leaving ChunkServer, when known.
    pub copysets_left: Option<u32>,
    /// Nothing can move until the user adds a ChunkServer (a lost disk alone in its zone):
    /// `Progressing` stops instead of saying the retire is under way.
    pub stuck: bool,
}

/// Where an etcd restore stands (reconcile/restore.rs), for `Progressing` and `Degraded`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum RestoreState {
    /// None asked for, or the last one is done.
    #[default]
    None,
    /// `spec.etcd.restore` names a snapshot without the exact confirmation: nothing starts.
    Refused { message: String },
    /// A restore is under way.
    Running { message: String },
    /// The restore stopped: the message says why.
    Failed { message: String },
}
