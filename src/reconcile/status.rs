//! Status as a pure function of (previous status, observation, generation, now).
//!
//! Condition types and the reasons they can carry:
//!
//! | type | status True | status False |
//! |---|---|---|
//! | SpecValid | Valid | Invalid |
//! | ReconciliationPaused | Paused | Active |
//! | EtcdQuorate | Quorate | NoQuorum, QuorumLost |
//! | MdsLeaderElected | Elected | NotStarted, NoLeader, UnknownLeader, AmbiguousLeader, EtcdUnreachable, QuorumLost |
//! | ChunkServersReady | AllReady | NotStarted, NotReady, Formatting, FormatFailed |
//! | TopologyReady | Ready | NotStarted, WaitingForServers, PhysicalPoolPending, PhysicalPoolFailed, WaitingForChunkServers, ChunkServersOffline, LogicalPoolPending, LogicalPoolFailed |
//! | Progressing | Reconciling, RollingUpdate, VolumeExpansion | Complete, ChangeRefused, RolloutStuck, ApplyRefused, ReconcileError |
//! | Degraded | ComponentsNotReady, ApplyRefused, ReconcileError | AsExpected |
//! | DataRetained | RetainPolicy, DeleteNotConfirmed | DeleteConfirmed |
//! | Available | Available | Invalid, Paused, EtcdNotQuorate, NoMdsPrimary, TopologyNotReady, ChunkServersNotReady |
//! | Monitoring (only with `spec.monitoring.enabled`) | Applied | Discovering, PrometheusOperatorMissing |
//!
//! A condition's lastTransitionTime changes only when its status changes.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use k8s_openapi::jiff::Timestamp;

pub use super::observation::{
    ComponentObservation, DataCleanup, MembershipState, MonitoringState, Observation, PrimaryView,
    RollState, TopologyState,
};
use crate::api::{
    ComponentStatus, CurveClusterStatus, EtcdStatus, MdsStatus, Phase, TopologyStatus,
};

pub const AVAILABLE: &str = "Available";
pub const PROGRESSING: &str = "Progressing";
pub const DEGRADED: &str = "Degraded";
pub const ETCD_QUORATE: &str = "EtcdQuorate";
pub const MDS_LEADER_ELECTED: &str = "MdsLeaderElected";
pub const CHUNKSERVERS_READY: &str = "ChunkServersReady";
pub const TOPOLOGY_READY: &str = "TopologyReady";
pub const SPEC_VALID: &str = "SpecValid";
pub const RECONCILIATION_PAUSED: &str = "ReconciliationPaused";
pub const DATA_RETAINED: &str = "DataRetained";
pub const MONITORING: &str = "Monitoring";

struct Verdict {
    type_: &'static str,
    ok: bool,
    reason: String,
    message: String,
}

fn verdict(type_: &'static str, ok: bool, reason: &'static str, message: String) -> Verdict {
    Verdict {
        type_,
        ok,
        reason: reason.to_string(),
        message,
    }
}

fn etcd_verdict(obs: &Observation) -> Verdict {
    let counts = format!(
        "{} of {} members ready, quorum is {}",
        obs.etcd.ready, obs.etcd.desired, obs.etcd_quorum
    );
    if let PrimaryView::QuorumLost { error } = &obs.primary {
        return verdict(
            ETCD_QUORATE,
            false,
            "QuorumLost",
            format!("etcd does not serve reads ({counts}): {error}"),
        );
    }
    if obs.etcd_quorate() {
        verdict(ETCD_QUORATE, true, "Quorate", counts)
    } else {
        verdict(ETCD_QUORATE, false, "NoQuorum", counts)
    }
}

fn mds_verdict(obs: &Observation) -> Verdict {
    let (ok, reason, message) = match &obs.primary {
        PrimaryView::NotStarted => (
            false,
            "NotStarted",
            "the MDS tier starts once etcd is quorate".to_string(),
        ),
        PrimaryView::Elected { pod, address } => (
            true,
            "Elected",
            format!("{pod} ({address}) holds the 07leader election"),
        ),
        PrimaryView::NoLeader => (
            false,
            "NoLeader",
            "no MDS campaigns in etcd under 07leader/".to_string(),
        ),
        PrimaryView::UnknownLeader { address } => (
            false,
            "UnknownLeader",
            format!("the elected address {address} matches no MDS pod of this cluster"),
        ),
        PrimaryView::Ambiguous { address, pods } => (
            false,
            "AmbiguousLeader",
            format!(
                "the elected address {address} belongs to several pods: {}",
                pods.join(", ")
            ),
        ),
        PrimaryView::EtcdUnreachable { endpoints, error } => (
            false,
            "EtcdUnreachable",
            format!(
                "no etcd endpoint answered ({}): {error}",
                endpoints.join(", ")
            ),
        ),
        PrimaryView::QuorumLost { error } => {
            (false, "QuorumLost", format!("etcd has no quorum: {error}"))
        }
    };
    verdict(MDS_LEADER_ELECTED, ok, reason, message)
}

fn chunkserver_verdict(obs: &Observation) -> Verdict {
    let cs = &obs.chunkservers;
    if !cs.exists {
        verdict(
            CHUNKSERVERS_READY,
            false,
            "NotStarted",
            "ChunkServers start once an MDS primary is elected and every MDS pod has an address"
                .into(),
        )
    } else if !obs.format.failed.is_empty() {
        verdict(
            CHUNKSERVERS_READY,
            false,
            "FormatFailed",
            format!(
                "{} of {} ready; chunk file pool format failed: {}",
                cs.ready,
                cs.desired,
                obs.format.failed.join(", ")
            ),
        )
    } else if cs.all_ready() {
        verdict(
            CHUNKSERVERS_READY,
            true,
            "AllReady",
            format!("{} of {} ready", cs.ready, cs.desired),
        )
    } else if !obs.format.formatting.is_empty() {
        verdict(
            CHUNKSERVERS_READY,
            false,
            "Formatting",
            format!(
                "{} of {} ready; formatting the chunk file pool: {}",
                cs.ready,
                cs.desired,
                obs.format.formatting.join(", ")
            ),
        )
    } else {
        verdict(
            CHUNKSERVERS_READY,
            false,
            "NotReady",
            format!("{} of {} ready", cs.ready, cs.desired),
        )
    }
}

fn topology_verdict(obs: &Observation) -> Verdict {
    match &obs.topology {
        Some(t) => Verdict {
            type_: TOPOLOGY_READY,
            ok: t.ready,
            reason: t.reason.clone(),
            message: t.message.clone(),
        },
        None => verdict(
            TOPOLOGY_READY,
            false,
            "NotStarted",
            "pools are created once an MDS primary is elected".into(),
        ),
    }
}

fn available_verdict(obs: &Observation, paused: &Verdict) -> Verdict {
    if !obs.spec_errors.is_empty() {
        return verdict(
            AVAILABLE,
            false,
            "Invalid",
            "the spec is invalid: see SpecValid".into(),
        );
    }
    if obs.available() {
        return verdict(
            AVAILABLE,
            true,
            "Available",
            "etcd is quorate, an MDS primary is elected and every ChunkServer is ready".into(),
        );
    }
    if paused.ok {
        return verdict(
            AVAILABLE,
            false,
            "Paused",
            "reconciliation is paused".into(),
        );
    }
    if !obs.etcd_quorate() {
        verdict(
            AVAILABLE,
            false,
            "EtcdNotQuorate",
            etcd_verdict(obs).message,
        )
    } else if !matches!(obs.primary, PrimaryView::Elected { .. }) {
        verdict(AVAILABLE, false, "NoMdsPrimary", mds_verdict(obs).message)
    } else if !obs.topology_ready() {
        verdict(
            AVAILABLE,
            false,
            "TopologyNotReady",
            topology_verdict(obs).message,
        )
    } else {
        verdict(
            AVAILABLE,
            false,
            "ChunkServersNotReady",
            chunkserver_verdict(obs).message,
        )
    }
}

fn not_ready_components(obs: &Observation) -> Vec<String> {
    [
        ("etcd", &obs.etcd),
        ("mds", &obs.mds),
        ("chunkservers", &obs.chunkservers),
    ]
    .iter()
    .filter(|(_, c)| !c.all_ready())
    .map(|(name, c)| format!("{name} {}/{}", c.ready, c.desired))
    .collect()
}

/// The new status. Pure: the same inputs give the same status.
pub fn compute_status(
    previous: &CurveClusterStatus,
    obs: &Observation,
    generation: Option<i64>,
    now: Timestamp,
) -> CurveClusterStatus {
    let valid = obs.spec_errors.is_empty();
    let spec = if valid {
        verdict(
            SPEC_VALID,
            true,
            "Valid",
            "the spec passed validation".into(),
        )
    } else {
        verdict(SPEC_VALID, false, "Invalid", obs.spec_errors.join("; "))
    };
    let paused = if obs.paused {
        verdict(
            RECONCILIATION_PAUSED,
            true,
            "Paused",
            "spec.paused is true: no object is changed".into(),
        )
    } else {
        verdict(
            RECONCILIATION_PAUSED,
            false,
            "Active",
            "the operator applies the spec".into(),
        )
    };
    let available = available_verdict(obs, &paused);
    let not_ready = not_ready_components(obs);
    let progressing = if let Some(error) = &obs.error {
        verdict(PROGRESSING, false, "ReconcileError", error.clone())
    } else if !obs.refused.is_empty() {
        verdict(PROGRESSING, false, "ChangeRefused", obs.refused.join("; "))
    } else if let MembershipState::Blocked { message } = &obs.membership {
        verdict(PROGRESSING, false, "EtcdMembershipBlocked", message.clone())
    } else if let MembershipState::Changing { message } = &obs.membership {
        verdict(PROGRESSING, true, "EtcdMembershipChange", message.clone())
    } else if let RollState::Stuck { message } = &obs.roll {
        verdict(PROGRESSING, false, "RolloutStuck", message.clone())
    } else if !obs.expansions.is_empty() {
        let mut message = super::expansion::message(&obs.expansions);
        if let RollState::Rolling { message: roll } = &obs.roll {
            message.push_str(&format!("; {roll}"));
        }
        verdict(PROGRESSING, true, "VolumeExpansion", message)
    } else if let RollState::Rolling { message } = &obs.roll {
        verdict(PROGRESSING, true, "RollingUpdate", message.clone())
    } else if valid && !obs.paused && !available.ok {
        verdict(
            PROGRESSING,
            true,
            "Reconciling",
            format!("waiting: {}", available.message),
        )
    } else if valid && !obs.paused && !not_ready.is_empty() {
        verdict(
            PROGRESSING,
            true,
            "Reconciling",
            format!("not ready yet: {}", not_ready.join(", ")),
        )
    } else {
        verdict(
            PROGRESSING,
            false,
            "Complete",
            "the cluster matches the spec".into(),
        )
    };
    // Once a cluster has served, falling short is Degraded, not Creating (pausing keeps that memory).
    let was_available = matches!(previous.phase, Some(Phase::Available | Phase::Degraded))
        || [AVAILABLE, DEGRADED]
            .iter()
            .any(|t| find(previous, t).is_some_and(|c| c.status == "True"));
    let degraded = if let Some(error) = &obs.error {
        verdict(DEGRADED, true, "ReconcileError", error.clone())
    } else if was_available && valid && !obs.complete() && !not_ready.is_empty() {
        verdict(
            DEGRADED,
            true,
            "ComponentsNotReady",
            format!("not ready: {}", not_ready.join(", ")),
        )
    } else {
        verdict(
            DEGRADED,
            false,
            "AsExpected",
            "no component is degraded".into(),
        )
    };

    let mut verdicts = vec![available, progressing, degraded, spec, paused];
    if valid {
        verdicts.insert(3, etcd_verdict(obs));
        verdicts.insert(4, mds_verdict(obs));
        verdicts.insert(5, chunkserver_verdict(obs));
        verdicts.insert(6, topology_verdict(obs));
        verdicts.push(cleanup_verdict(obs.cleanup));
        verdicts.extend(monitoring_verdict(&obs.monitoring));
    }
    let conditions = verdicts
        .into_iter()
        .map(|v| condition(&previous.conditions, v, generation, now))
        .collect();

    let phase = if !valid {
        Phase::Invalid
    } else if obs.paused {
        Phase::Paused
    } else if obs.complete() {
        Phase::Available
    } else if was_available {
        Phase::Degraded
    } else if !obs.etcd.exists {
        Phase::Pending
    } else {
        Phase::Creating
    };

    CurveClusterStatus {
        observed_generation: generation,
        phase: Some(phase),
        conditions,
        etcd: valid.then(|| EtcdStatus {
            pods: component_status(&obs.etcd),
            leader: obs.etcd_members.as_ref().and_then(|m| m.leader.clone()),
            healthy_members: obs.etcd_members.as_ref().map(|m| m.healthy as i32),
        }),
        mds: valid.then(|| mds_status(previous.mds.as_ref(), obs, now)),
        chunkservers: valid.then(|| component_status(&obs.chunkservers)),
        topology: match (&obs.topology, valid) {
            (Some(t), true) => Some(TopologyStatus {
                servers: t.servers,
                physical_pool: obs.physical_pool.clone(),
                logical_pool: obs.logical_pool.clone(),
            }),
            _ => previous.topology.clone(),
        },
        // The operator's memory outlives an invalid spec; the decision updates it.
        record: previous.record.clone(),
    }
}

/// Whether the cluster's scrape objects and alerts exist; no condition while monitoring is off.
fn monitoring_verdict(state: &MonitoringState) -> Option<Verdict> {
    Some(match state {
        MonitoringState::Disabled => return None,
        MonitoringState::Waiting => verdict(
            MONITORING,
            false,
            "Discovering",
            "asking the API server whether it serves monitoring.coreos.com/v1 PodMonitor and PrometheusRule".into(),
        ),
        MonitoringState::Missing { message } => {
            verdict(MONITORING, false, "PrometheusOperatorMissing", message.clone())
        }
        MonitoringState::Applied { objects } => verdict(
            MONITORING,
            true,
            "Applied",
            format!("applied {}", objects.join(", ")),
        ),
    })
}

/// What deleting the CurveCluster does to its data volumes; `Delete` without the confirmation
/// keeps them, and says what to write to have them deleted.
fn cleanup_verdict(cleanup: DataCleanup) -> Verdict {
    match cleanup {
        DataCleanup::Retain => verdict(
            DATA_RETAINED,
            true,
            "RetainPolicy",
            "the data volumes are kept when the CurveCluster is deleted (spec.cleanup.policy: Retain)".into(),
        ),
        DataCleanup::DeleteNotConfirmed => verdict(
            DATA_RETAINED,
            true,
            "DeleteNotConfirmed",
            format!(
                "spec.cleanup.policy is Delete, but spec.cleanup.confirmation is not {:?}: the data volumes are kept when the CurveCluster is deleted; to delete them with it, set spec.cleanup.confirmation: {}",
                crate::api::DELETE_DATA_CONFIRMATION,
                crate::api::DELETE_DATA_CONFIRMATION
            ),
        ),
        DataCleanup::Delete => verdict(
            DATA_RETAINED,
            false,
            "DeleteConfirmed",
            "the data volumes are deleted with the CurveCluster (spec.cleanup.policy: Delete, confirmed)".into(),
        ),
    }
}

fn component_status(seen: &ComponentObservation) -> ComponentStatus {
    ComponentStatus::new(seen.desired, seen.ready).with_updated(seen.updated, seen.images.clone())
}

fn mds_status(previous: Option<&MdsStatus>, obs: &Observation, now: Timestamp) -> MdsStatus {
    let (primary, primary_address) = match &obs.primary {
        PrimaryView::Elected { pod, address } => (Some(pod.clone()), Some(address.clone())),
        _ => (None, None),
    };
    let previous_primary = previous.and_then(|p| p.primary.clone());
    let primary_since = if primary == previous_primary {
        previous.and_then(|p| p.primary_since.clone())
    } else {
        Some(Time(now))
    };
    MdsStatus {
        pods: component_status(&obs.mds),
        primary,
        primary_address,
        primary_since,
    }
}

fn condition(
    previous: &[Condition],
    v: Verdict,
    generation: Option<i64>,
    now: Timestamp,
) -> Condition {
    let status = if v.ok { "True" } else { "False" }.to_string();
    let last_transition_time = previous
        .iter()
        .find(|c| c.type_ == v.type_ && c.status == status)
        .map(|c| c.last_transition_time.clone())
        .unwrap_or(Time(now));
    Condition {
        type_: v.type_.to_string(),
        status,
        reason: v.reason,
        message: v.message,
        last_transition_time,
        observed_generation: generation,
    }
}

/// The condition of a type, if present.
pub fn find<'a>(status: &'a CurveClusterStatus, type_: &str) -> Option<&'a Condition> {
    status.conditions.iter().find(|c| c.type_ == type_)
}

/// The previous status with a reconcile error recorded (Progressing and Degraded say why);
/// everything else stays as last observed.
pub fn with_error(
    previous: &CurveClusterStatus,
    error: &str,
    generation: Option<i64>,
    now: Timestamp,
) -> CurveClusterStatus {
    with_failure(previous, "ReconcileError", error, generation, now)
}

/// The status after the API server refused an object the operator applied (a reason the
/// operator's validation missed): `ApplyRefused`, with the object and the server's message.
pub fn with_refusal(
    previous: &CurveClusterStatus,
    refusal: &str,
    generation: Option<i64>,
    now: Timestamp,
) -> CurveClusterStatus {
    with_failure(previous, "ApplyRefused", refusal, generation, now)
}

fn with_failure(
    previous: &CurveClusterStatus,
    reason: &'static str,
    message: &str,
    generation: Option<i64>,
    now: Timestamp,
) -> CurveClusterStatus {
    let mut next = previous.clone();
    for v in [
        verdict(PROGRESSING, false, reason, message.to_string()),
        verdict(DEGRADED, true, reason, message.to_string()),
    ] {
        let type_ = v.type_;
        let updated = condition(&previous.conditions, v, generation, now);
        match next.conditions.iter_mut().find(|c| c.type_ == type_) {
            Some(existing) => *existing = updated,
            None => next.conditions.push(updated),
        }
    }
    next
}

impl TopologyState {
    /// The topology as the last status recorded it (while paused it is not looked at).
    pub fn from_status(status: &CurveClusterStatus) -> Option<TopologyState> {
        let condition = find(status, TOPOLOGY_READY)?;
        Some(TopologyState {
            ready: condition.status == "True",
            reason: condition.reason.clone(),
            message: condition.message.clone(),
            servers: status
                .topology
                .as_ref()
                .map(|t| t.servers)
                .unwrap_or_default(),
        })
    }
}
