//! What one reconcile observed of a cluster: the input of the status (`status.rs`), produced
//! from the snapshot (`observe.rs`, `decide.rs`).

use super::conditions::{ConditionType, Reason, find};
use super::states::{CsiState, MembershipState, MonitoringState, RollState, VolumeExpansion};
use crate::api::CurveClusterStatus;
use crate::etcd::MemberHealth;
use crate::names::Component;

/// Desired and ready pods of a component, and whether its StatefulSets exist yet.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ComponentObservation {
    pub desired: i32,
    pub ready: i32,
    pub exists: bool,
    /// Pods on their StatefulSet's current template.
    pub updated: i32,
    /// The images the pods run.
    pub images: Vec<String>,
}

impl ComponentObservation {
    pub fn all_ready(&self) -> bool {
        self.exists && self.ready >= self.desired
    }
}

/// What the operator knows about the MDS primary.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PrimaryView {
    /// The MDS tier is not up yet: the election was not read.
    NotStarted,
    Elected {
        pod: String,
        address: String,
    },
    NoLeader,
    /// The election value matches no MDS pod's address.
    UnknownLeader {
        address: String,
    },
    /// Several MDS pods have the elected address: the operator will not guess.
    Ambiguous {
        address: String,
        pods: Vec<String>,
    },
    EtcdUnreachable {
        endpoints: Vec<String>,
        error: String,
    },
    QuorumLost {
        error: String,
    },
}

/// What happens to the data volumes when the CurveCluster is deleted.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum DataCleanup {
    /// `spec.cleanup.policy: Retain`.
    #[default]
    Retain,
    /// `Delete` without the confirmation: kept all the same.
    DeleteNotConfirmed,
    /// `Delete` with `yes-really-destroy-data`.
    Delete,
}

/// Everything the status is computed from.
#[derive(Clone, Debug, PartialEq)]
pub struct Observation {
    /// The etcd restore: where it stands, and its record for `status.etcd.restore`.
    pub restore: super::states::RestoreState,
    pub restore_record: Option<crate::api::EtcdRestoreStatus>,
    /// Problems of the spec; empty when valid.
    pub spec_errors: Vec<String>,
    pub paused: bool,
    pub etcd: ComponentObservation,
    pub mds: ComponentObservation,
    pub chunkservers: ComponentObservation,
    pub etcd_members: Option<MemberHealth>,
    pub etcd_quorum: i32,
    /// Where a rolling change stands.
    pub roll: RollState,
    /// The etcd membership change under way, or why an asked-for one waits.
    pub membership: MembershipState,
    pub cleanup: DataCleanup,
    /// ChunkServers that may be down while every copyset keeps a raft majority:
    /// `(logicalPool.replicas - 1) / 2`, since Curve puts each copy on a different server.
    pub tolerated_unready_chunkservers: i32,
    pub primary: PrimaryView,
    /// Curve's health as the monitor last read it (once the MDS tier exists).
    pub health: Option<super::health::HealthView>,
    /// Spec changes the operator refuses to apply, each saying why.
    pub refused: Vec<String>,
    /// The last reconcile error, if the reconcile failed.
    pub error: Option<String>,
    /// The chunk file pool format of ChunkServer pods.
    pub format: FormatProgress,
    /// Names of the pools, from the spec.
    pub physical_pool: String,
    pub logical_pool: String,
    /// Curve's pools, once the ChunkServer tier is up.
    pub topology: Option<TopologyState>,
    /// Volumes growing to a new size.
    pub expansions: Vec<VolumeExpansion>,
    /// The Prometheus Operator objects of `spec.monitoring`.
    pub monitoring: MonitoringState,
    /// curve-csi, with `spec.csi`.
    pub csi: CsiState,
    /// Why pods of each tier do not come up (unschedulable, claims, images, crashes, lost
    /// nodes), in pod name order.
    pub blockers: Vec<Blocker>,
    /// Changes the operator holds back while paused, each described as its action.
    pub held: Vec<String>,
    /// etcd's members as the member list stands now (the spec may ask for another size).
    pub etcd_members_now: i32,
    /// `spec.rollout.progressDeadlineSeconds`: also the first bring-up's deadline.
    pub progress_deadline_seconds: i64,
    /// Data claims created before this CurveCluster: an earlier cluster's, kept and now reused.
    pub adopted_claims: Vec<String>,
    /// The ChunkServer leaving Curve, as the status tells it (reconcile/retire.rs).
    pub retire: Option<super::states::RetireProgress>,
    /// ChunkServer pods whose disk holds an id Curve retired, with what to do.
    pub stale_chunkservers: Vec<String>,
    /// The cluster's nodes' clocks too far apart for Curve, said (reconcile/clocks.rs).
    pub clocks_apart: Option<String>,
    /// What volumes can be given in all, by the applied spec (validate/capacity.rs).
    pub usable_bytes: Option<u64>,
}

/// One reason a pod of a tier is not up (`blockers.rs` reads them).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Blocker {
    pub component: Component,
    pub reason: Reason,
    /// Names the object (pod, claim, node) and says what its controller said.
    pub message: String,
}

/// The topology as the bootstrap decision left it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TopologyState {
    pub ready: bool,
    pub reason: Reason,
    pub message: String,
    pub servers: i32,
}

impl Observation {
    /// An observation of a cluster whose spec could not be used at all.
    pub fn invalid(errors: Vec<String>) -> Self {
        Observation {
            restore: Default::default(),
            restore_record: None,
            spec_errors: errors,
            paused: false,
            etcd: ComponentObservation::default(),
            mds: ComponentObservation::default(),
            chunkservers: ComponentObservation::default(),
            etcd_members: None,
            etcd_quorum: 0,
            roll: RollState::Done,
            membership: MembershipState::Settled,
            cleanup: DataCleanup::Retain,
            tolerated_unready_chunkservers: 0,
            primary: PrimaryView::NotStarted,
            refused: Vec::new(),
            error: None,
            topology: None,
            format: Default::default(),
            physical_pool: String::new(),
            logical_pool: String::new(),
            expansions: Vec::new(),
            monitoring: MonitoringState::Disabled,
            csi: CsiState::Disabled,
            blockers: Vec::new(),
            health: None,
            held: Vec::new(),
            etcd_members_now: 0,
            progress_deadline_seconds: 0,
            adopted_claims: Vec::new(),
            retire: None,
            stale_chunkservers: Vec::new(),
            clocks_apart: None,
            usable_bytes: None,
        }
    }

    pub fn topology_ready(&self) -> bool {
        self.topology.as_ref().is_some_and(|t| t.ready)
    }

    pub fn etcd_quorate(&self) -> bool {
        self.etcd.exists && self.etcd.ready >= self.etcd_quorum && self.etcd_quorum > 0
    }

    /// The cluster serves: etcd has quorum, an MDS is primary, the pools exist, and few enough
    /// ChunkServers are down for every copyset to keep a majority. Missing MDS standbys or a
    /// ChunkServer restarting do not make it unavailable (they show in Progressing, Degraded).
    pub fn available(&self) -> bool {
        self.spec_errors.is_empty()
            && self.etcd_quorate()
            && matches!(self.primary, PrimaryView::Elected { .. })
            && self.chunkservers.exists
            && self.chunkservers.ready > 0
            && self.chunkservers.desired - self.chunkservers.ready
                <= self.tolerated_unready_chunkservers
            && self.topology_ready()
    }

    /// Serving, and every pod the spec asks for is ready.
    pub fn complete(&self) -> bool {
        self.available()
            && self.etcd.all_ready()
            && self.mds.all_ready()
            && self.chunkservers.all_ready()
    }
}

/// ChunkServer pods formatting their chunk file pool, and those whose format failed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FormatProgress {
    pub formatting: Vec<String>,
    /// `pod (why)` for each failed format.
    pub failed: Vec<String>,
}

/// The per-cluster gauges the operator exports, from one observation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Gauges {
    /// The MDS pods the spec asks for, in ordinal order.
    pub mds_pods: Vec<String>,
    /// The MDS pod the election names primary.
    pub primary: Option<String>,
    /// Voting members of etcd's member list and how many are healthy (the spec's members and
    /// none when no member answered); `None` when etcd was not read (before the MDS tier).
    pub etcd_members: Option<(u32, u32)>,
    pub rolling: bool,
    pub roll_stuck: bool,
    /// Not-ready ChunkServers and how many may be down.
    pub failure_domains: (u32, u32),
}

impl Gauges {
    pub fn of(cluster: &crate::validate::ValidatedCluster, observation: &Observation) -> Self {
        let set = crate::names::component_name(&cluster.name, crate::names::Component::Mds);
        let voting = |health: &MemberHealth| {
            let voters: Vec<_> = health.members.iter().filter(|m| !m.is_learner).collect();
            let healthy = voters.iter().filter(|m| m.healthy).count();
            (voters.len() as u32, healthy as u32)
        };
        let cs = &observation.chunkservers;
        Gauges {
            mds_pods: (0..cluster.spec.mds.replicas)
                .map(|i| format!("{set}-{i}"))
                .collect(),
            primary: match &observation.primary {
                PrimaryView::Elected { pod, .. } => Some(pod.clone()),
                _ => None,
            },
            // etcd was read but no member answered: none is healthy.
            etcd_members: match (&observation.primary, &observation.etcd_members) {
                (_, Some(health)) => Some(voting(health)),
                (PrimaryView::NotStarted, None) => None,
                (_, None) => Some((observation.etcd.desired.max(0) as u32, 0)),
            },
            rolling: matches!(observation.roll, RollState::Rolling { .. }),
            roll_stuck: matches!(observation.roll, RollState::Stuck { .. }),
            failure_domains: (
                (cs.desired - cs.ready).max(0) as u32,
                observation.tolerated_unready_chunkservers.max(0) as u32,
            ),
        }
    }
}

impl TopologyState {
    /// The topology as the last status recorded it (while paused it is not looked at).
    pub fn from_status(status: &CurveClusterStatus) -> Option<TopologyState> {
        let condition = find(status, ConditionType::TopologyReady)?;
        Some(TopologyState {
            ready: condition.status == "True",
            // A reason this operator did not write reads as not started.
            reason: (Reason::ALL.iter())
                .find(|r| r.as_str() == condition.reason)
                .copied()
                .unwrap_or(Reason::NotStarted),
            message: condition.message.clone(),
            servers: status
                .topology
                .as_ref()
                .map(|t| t.servers)
                .unwrap_or_default(),
        })
    }
}

/// What the operator knows of the Prometheus Operator's API (`monitoring.coreos.com/v1`). It
/// asks only while a cluster enables `spec.monitoring`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum MonitoringApi {
    /// Not asked yet, or its caches have not synced.
    #[default]
    Unknown,
    /// The API server does not serve these kinds (or discovery failed: the message says).
    Missing { message: String },
    /// PodMonitors and PrometheusRules are served and their caches synced.
    Served,
}

#[cfg(test)]
#[path = "observation_tests.rs"]
mod tests;
