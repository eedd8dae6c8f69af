//! The status vocabulary: every condition type and every reason it can carry, typed. The status
//! (`status.rs`), the Events (`events.rs`) and the generated reference
//! (`docs/reference/conditions.md`, from [`reference_markdown`]) all read it from here.

use crate::api::CurveClusterStatus;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;

/// Declares an enum of names with their meaning: `as_str` is the name written to the API,
/// `meaning` the sentence the reference gives.
macro_rules! vocabulary {
    ($(#[$doc:meta])* $name:ident { $($variant:ident => $meaning:literal,)* }) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum $name { $($variant,)* }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant,)*];

            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => stringify!($variant),)* }
            }

            pub fn meaning(self) -> &'static str {
                match self { $($name::$variant => $meaning,)* }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

vocabulary! {
    /// The condition types of a CurveCluster's status, in the order the status lists them.
    ConditionType {
        Available => "The Curve cluster serves: etcd is quorate, an MDS primary is elected, the pools exist and few enough ChunkServers are down for every copyset to keep a majority.",
        Progressing => "The operator is moving the cluster toward its spec (True), or has stopped: done, refused, stuck or failing (False).",
        Degraded => "Something that served is short now, or the operator's own work fails.",
        EtcdQuorate => "A majority of etcd's members is ready.",
        MdsLeaderElected => "The MDS election in etcd names an MDS pod of this cluster.",
        ChunkServersReady => "Every ChunkServer pod the spec asks for is ready.",
        TopologyReady => "Curve's physical and logical pools exist with every server.",
        SpecValid => "The spec passed the operator's validation.",
        ReconciliationPaused => "Whether spec.paused stops the operator from changing objects.",
        DataRetained => "Whether the data volumes outlive the CurveCluster.",
        Monitoring => "The Prometheus Operator objects of spec.monitoring exist (only with spec.monitoring.enabled).",
        DataAdopted => "Data volume claims older than this CurveCluster were taken over: an earlier cluster's etcd and ChunkServer data come back (only while such claims exist).",
        Csi => "curve-csi's objects exist, wired to the MDS addresses the operator sees (only with spec.csi.enabled).",
        CsiConfigPending => "Node plugin pods of curve-csi run an outdated config (MDSADDR) and are held, because Curve volumes may be attached on their nodes (only with spec.csi.enabled).",
        DeletionBlocked => "The CurveCluster is being deleted and waits: PersistentVolumes of its StorageClass are still bound (only while that is so).",
        CopysetsHealthy => "Curve's own health, read by the operator from the MDS and every ChunkServer by the rules of curve_ops_tool: every copyset healthy, exactly one MDS leader and it is the one etcd elected, every MDS online (once the MDS tier exists; status.health has the figures).",
    }
}

vocabulary! {
    /// Every reason a condition can carry; [`ConditionType::reasons`] says which go where.
    Reason {
        Available => "etcd is quorate, an MDS primary is elected and the ChunkServers serve.",
        Valid => "The spec passed validation.",
        Invalid => "The spec is invalid; SpecValid lists every problem.",
        Paused => "spec.paused is true: the operator changes no object (Progressing: the changes it holds back are listed).",
        Active => "The operator applies the spec.",
        EtcdNotQuorate => "etcd has no quorum, so the MDS cannot serve.",
        NoMdsPrimary => "No MDS is primary; MdsLeaderElected says why.",
        TopologyNotReady => "Curve's pools are not complete; TopologyReady says which step waits.",
        ChunkServersNotReady => "More ChunkServers are down than every copyset can tolerate.",
        Complete => "The cluster matches the spec.",
        Reconciling => "Objects are applied and pods are coming up.",
        RollingUpdate => "A changed template is rolled, one pod (or server) at a time.",
        VolumeExpansion => "Volume claims are growing to a new size.",
        EtcdMembershipChange => "etcd's member list is changing, one member at a time.",
        EtcdMembershipBlocked => "An etcd membership change is asked for and cannot start; the message says why.",
        ChangeRefused => "A spec change would risk quorum or data and is held back; the message names the field.",
        RolloutStuck => "A replaced pod did not become ready within spec.rollout.progressDeadlineSeconds; the roll halts there.",
        ApplyRefused => "The API server refused an object the operator applied (admission, quota, validation).",
        ReconcileError => "A reconcile failed; the operator retries with back-off.",
        ComponentsNotReady => "A component that served has pods not ready.",
        EtcdNoSpace => "etcd raised NOSPACE: its database reached quota-backend-bytes and it refuses writes (the MDS allocates nothing). Raise spec.etcd.quotaBackendBytes or let the operator defragment, then `etcdctl alarm disarm`; the message names the members.",
        EtcdCorrupt => "etcd raised CORRUPT: a member's data differs from the others'. Replace that member (delete its claim and pod), then `etcdctl alarm disarm`; the message names it.",
        AsExpected => "Nothing is degraded.",
        Quorate => "A majority of etcd's members is ready.",
        NoQuorum => "Fewer than a majority of etcd's members are ready.",
        QuorumLost => "etcd does not serve reads: it has no quorum.",
        Elected => "An MDS pod holds the election.",
        NotStarted => "The tier has not started: it waits for the tier before it.",
        NoLeader => "No MDS campaigns in etcd.",
        UnknownLeader => "The elected address belongs to no MDS pod of this cluster.",
        AmbiguousLeader => "Several MDS pods have the elected address; the operator does not guess.",
        EtcdUnreachable => "No etcd endpoint answered.",
        AllReady => "Every ChunkServer pod is ready.",
        NotReady => "Some ChunkServer pods are not ready.",
        Formatting => "ChunkServer pods are formatting their chunk file pool (curve_format).",
        FormatFailed => "A ChunkServer pod's chunk file pool format failed; the message has its reason.",
        Ready => "The physical and logical pools exist with every server.",
        WaitingForServers => "The pools wait for ChunkServer pods to be scheduled (their nodes are the servers).",
        PhysicalPoolPending => "The physical-pool Job is created or running.",
        PhysicalPoolFailed => "The physical-pool Job failed.",
        WaitingForChunkServers => "The ChunkServers-online Job waits for every ChunkServer to register with the MDS.",
        ChunkServersOffline => "The ChunkServers-online Job failed: not every ChunkServer is online.",
        LogicalPoolPending => "The logical-pool Job is created or running.",
        LogicalPoolFailed => "The logical-pool Job failed.",
        RetainPolicy => "spec.cleanup.policy is Retain: the data volumes are kept when the CurveCluster is deleted.",
        DeleteNotConfirmed => "spec.cleanup.policy is Delete without the confirmation: the data volumes are kept.",
        DeleteConfirmed => "The data volumes are deleted with the CurveCluster.",
        Applied => "The PodMonitors and the PrometheusRule are applied.",
        Discovering => "The operator is asking the API server whether it serves the Prometheus Operator's kinds.",
        PrometheusOperatorMissing => "The API server does not serve PodMonitor or PrometheusRule: nothing is created.",
        Unschedulable => "A pod of the tier cannot be scheduled; the message has the scheduler's own words (0/N nodes are available: …).",
        NoStorageClass => "A data claim names no StorageClass and the cluster had no default class when it was created.",
        StorageClassNotFound => "A data claim names a StorageClass that does not exist.",
        ClaimPending => "A data claim is Pending: no volume of its class is available or provisioned yet.",
        ImagePullFailed => "A container or init container cannot pull its image (ErrImagePull, ImagePullBackOff, InvalidImageName).",
        ContainerFailing => "A container or init container keeps failing (CrashLoopBackOff); the message has its last exit and termination message.",
        NodeLost => "A pod is stuck terminating on a node that is not Ready; its replacement cannot start until the pod is gone.",
        PodCreateFailed => "The StatefulSet controller cannot create a pod of the tier (its FailedCreate Event: an admission webhook or policy, a quota, a LimitRange refused it).",
        Healthy => "Every copyset is healthy, one MDS is leader (the elected one) and every MDS is online.",
        Unhealthy => "Copysets are unhealthy or the MDS is not as it should be; the message and status.health name the copysets, ChunkServers and reasons.",
        Unknown => "Curve's health could not be read: the message names the endpoint and why (MDS unreachable, no primary, a bad answer). A roll takes no ChunkServer step meanwhile.",
        CopysetsUnhealthy => "Curve reports unhealthy copysets: some data has fewer healthy copies than the pool keeps.",
        PrimaryUnreachable => "etcd's election still names an MDS whose dummy port does not answer: the primary is probably dead and its election key has not lapsed yet.",
        ChunkServerRetiring => "A ChunkServer leaves Curve for a lowered spec.chunkservers.replicas or disksPerNode, one at a time: PENDDING until the MDS moved its copysets, stopped, RETIRED, deleted; the message has the copysets left.",
        ChunkServerReplacing => "A ChunkServer pod's disk was lost: the id its address held leaves Curve (its copysets moved to other ChunkServers, RETIRED, deleted) before the pod registers its empty disk with a new id; the message has the copysets left.",
        ChunkServerReplaceStuck => "A lost disk's old id cannot leave Curve: its zone has no other READWRITE ChunkServer to take its copysets (one copy per zone), and the pod's empty disk cannot take them at the same ip:port. The old id stays PENDDING; the message names the zone: add a ChunkServer there (a higher disksPerNode, or a node in that zone).",
        ChunkServerIdRetired => "A ChunkServer pod's disk holds an id Curve retired: Curve never accepts it again; the message names the claim to delete.",
        CsiApplied => "curve-csi's node plugin, controller, RBAC, CSIDriver (and, once the cluster was Available, the StorageClass) are applied; the message has MDSADDR.",
        CsiWaitingForAvailable => "curve-csi is created once the Curve cluster is Available.",
        CsiObjectTaken => "A StorageClass or CSIDriver of that name belongs to another provisioner or cluster: nothing of curve-csi is applied; the message names it.",
        VolumesAttached => "Node plugin pods with an outdated config are held: Curve volumes are attached on their nodes (VolumeAttachments), and a restart would cut them. The message names the nodes; the annotation curve.opencurve.io/csi-restart-nodes on the CurveCluster allows them.",
        NodePluginsCurrent => "Every node plugin pod runs the current config.",
        PersistentVolumesBound => "The deletion waits while PersistentVolumes of the cluster's StorageClass are bound (the message names them); delete their claims, or confirm spec.cleanup (policy Delete and the confirmation) to delete anyway.",
        NodeClocksApart => "The clocks of the nodes running the cluster's pods are 10 s or more apart, as their kubelets' Lease renewals show; Curve's MDS refuses requests signed 15 s from its own clock. The message names the nodes and their offsets.",
        EtcdRestore => "etcd is being rebuilt from a snapshot (spec.etcd.restore): the MDS tier is stopped until etcd has every member again and Curve's id counters were advanced; the message names the phase (status.etcd.restore).",
        EtcdRestoreRefused => "spec.etcd.restore names a snapshot without the exact confirmation (spec.etcd.restore.confirmation: yes-restore-etcd-from-<snapshot>): nothing is restored.",
        EtcdRestoreFailed => "The etcd restore stopped: the snapshot failed verification (nothing was stopped) or could not be restored (etcd stays stopped); the message says why. Remove spec.etcd.restore, or name another snapshot.",
        RetainedClaimsAdopted => "Claims of an earlier cluster of this name (kept by spec.cleanup.policy: Retain) are in use: its data comes back. Delete them (with the cluster) for a fresh one.",
    }
}

/// Why a tier's pods do not come up: carried by the tier's condition while it is not up, and by
/// Progressing (False) and Degraded (True) once the first bring-up is past its deadline.
pub const BLOCKED: [Reason; 8] = [
    Reason::Unschedulable,
    Reason::NoStorageClass,
    Reason::StorageClassNotFound,
    Reason::ClaimPending,
    Reason::ImagePullFailed,
    Reason::ContainerFailing,
    Reason::NodeLost,
    Reason::PodCreateFailed,
];

impl ConditionType {
    /// The reasons of this condition when True, and when False, besides the [`BLOCKED`] ones
    /// ([`ConditionType::blocked_status`]).
    pub fn reasons(self) -> (&'static [Reason], &'static [Reason]) {
        use Reason::*;
        match self {
            ConditionType::Available => (
                &[Available],
                &[
                    Invalid,
                    EtcdNotQuorate,
                    NoMdsPrimary,
                    TopologyNotReady,
                    ChunkServersNotReady,
                ],
            ),
            ConditionType::Progressing => (
                &[
                    Reconciling,
                    RollingUpdate,
                    VolumeExpansion,
                    EtcdMembershipChange,
                    ChunkServerRetiring,
                    ChunkServerReplacing,
                    EtcdRestore,
                ],
                &[
                    Complete,
                    ChunkServerReplaceStuck,
                    EtcdRestoreRefused,
                    EtcdRestoreFailed,
                    Paused,
                    ChangeRefused,
                    EtcdMembershipBlocked,
                    RolloutStuck,
                    ApplyRefused,
                    ReconcileError,
                ],
            ),
            ConditionType::Degraded => (
                &[
                    ComponentsNotReady,
                    EtcdRestoreFailed,
                    EtcdCorrupt,
                    EtcdNoSpace,
                    CopysetsUnhealthy,
                    ChunkServerIdRetired,
                    NodeClocksApart,
                    ApplyRefused,
                    ReconcileError,
                ],
                &[AsExpected],
            ),
            ConditionType::EtcdQuorate => (&[Quorate], &[NoQuorum, QuorumLost]),
            ConditionType::MdsLeaderElected => (
                &[Elected],
                &[
                    NotStarted,
                    NoLeader,
                    UnknownLeader,
                    AmbiguousLeader,
                    EtcdUnreachable,
                    QuorumLost,
                    PrimaryUnreachable,
                ],
            ),
            ConditionType::ChunkServersReady => (
                &[AllReady],
                &[NotStarted, NotReady, Formatting, FormatFailed],
            ),
            ConditionType::TopologyReady => (
                &[Ready],
                &[
                    NotStarted,
                    WaitingForServers,
                    PhysicalPoolPending,
                    PhysicalPoolFailed,
                    WaitingForChunkServers,
                    ChunkServersOffline,
                    LogicalPoolPending,
                    LogicalPoolFailed,
                ],
            ),
            ConditionType::SpecValid => (&[Valid], &[Invalid]),
            ConditionType::ReconciliationPaused => (&[Paused], &[Active]),
            ConditionType::DataRetained => {
                (&[RetainPolicy, DeleteNotConfirmed], &[DeleteConfirmed])
            }
            ConditionType::Monitoring => (&[Applied], &[Discovering, PrometheusOperatorMissing]),
            // Shown only while adopted claims exist: never False.
            ConditionType::DataAdopted => (&[RetainedClaimsAdopted], &[]),
            ConditionType::CopysetsHealthy => (&[Healthy], &[Unhealthy, Unknown]),
            ConditionType::Csi => (&[CsiApplied], &[CsiWaitingForAvailable, CsiObjectTaken]),
            ConditionType::CsiConfigPending => (&[VolumesAttached], &[NodePluginsCurrent]),
            // Shown only while a deletion waits: never False.
            ConditionType::DeletionBlocked => (&[PersistentVolumesBound], &[]),
        }
    }
}

impl ConditionType {
    /// The status with which this condition carries the [`BLOCKED`] reasons, if it does:
    /// False on a tier's condition and Progressing, True on Degraded.
    pub fn blocked_status(self) -> Option<bool> {
        match self {
            ConditionType::EtcdQuorate
            | ConditionType::MdsLeaderElected
            | ConditionType::ChunkServersReady
            | ConditionType::Progressing => Some(false),
            ConditionType::Degraded => Some(true),
            _ => None,
        }
    }

    /// Every reason of this condition with that status: its own and the blockers'.
    pub fn reasons_when(self, status: bool) -> Vec<Reason> {
        let (when_true, when_false) = self.reasons();
        let own = if status { when_true } else { when_false };
        let blocked = (self.blocked_status() == Some(status)).then_some(BLOCKED);
        own.iter()
            .copied()
            .chain(blocked.into_iter().flatten())
            .collect()
    }

    /// Whether `reason` is one this condition carries with that status.
    pub fn carries(self, reason: Reason, status: bool) -> bool {
        self.reasons_when(status).contains(&reason)
    }
}

/// The condition of a type, if the status has it.
pub fn find(status: &CurveClusterStatus, type_: ConditionType) -> Option<&Condition> {
    status.conditions.iter().find(|c| c.type_ == type_.as_str())
}

/// `docs/reference/conditions.md`: every condition type with its reasons, True and False.
pub fn reference_markdown() -> String {
    let mut text = String::from(
        "# Conditions\n\n\
         Generated from `src/reconcile/model/conditions.rs` (`cargo test --test conditions` checks \
         it; `UPDATE_GOLDEN=1` rewrites it). What to do about each reason: \
         [troubleshooting](../user/troubleshooting.md).\n\n\
         A condition's `lastTransitionTime` changes only when its status changes.\n",
    );
    for type_ in ConditionType::ALL {
        text.push_str(&format!("\n## {type_}\n\n{}\n\n", type_.meaning()));
        text.push_str("| status | reason | meaning |\n|---|---|---|\n");
        for (status, value) in [("True", true), ("False", false)] {
            for reason in type_.reasons_when(value) {
                text.push_str(&format!(
                    "| {status} | `{reason}` | {} |\n",
                    reason.meaning()
                ));
            }
        }
    }
    text
}
