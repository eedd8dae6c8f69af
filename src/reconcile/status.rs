//! Status as a pure function of (previous status, observation, generation, now).
//!
//! The condition types and their reasons are typed in `model::conditions` (and listed in
//! `docs/reference/conditions.md`, generated from them).
//!
//! A condition's lastTransitionTime changes only when its status changes.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use k8s_openapi::jiff::Timestamp;

use super::model::conditions::{ConditionType, Reason, find};
use super::model::observation::{ComponentObservation, DataCleanup, Observation, PrimaryView};
use super::model::states::{MembershipState, MonitoringState, RollState, expansions_message};
use crate::api::{
    ComponentStatus, CurveClusterStatus, EtcdStatus, MdsStatus, Phase, TopologyStatus,
};

struct Verdict {
    type_: ConditionType,
    ok: bool,
    reason: Reason,
    message: String,
}

fn verdict(type_: ConditionType, ok: bool, reason: Reason, message: String) -> Verdict {
    Verdict {
        type_,
        ok,
        reason,
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
            ConditionType::EtcdQuorate,
            false,
            Reason::QuorumLost,
            format!("etcd does not serve reads ({counts}): {error}"),
        );
    }
    if obs.etcd_quorate() {
        verdict(ConditionType::EtcdQuorate, true, Reason::Quorate, counts)
    } else {
        verdict(ConditionType::EtcdQuorate, false, Reason::NoQuorum, counts)
    }
}

fn mds_verdict(obs: &Observation) -> Verdict {
    let (ok, reason, message) = match &obs.primary {
        PrimaryView::NotStarted => (
            false,
            Reason::NotStarted,
            "the MDS tier starts once etcd is quorate".to_string(),
        ),
        PrimaryView::Elected { pod, address } => (
            true,
            Reason::Elected,
            format!("{pod} ({address}) holds the 07leader election"),
        ),
        PrimaryView::NoLeader => (
            false,
            Reason::NoLeader,
            "no MDS campaigns in etcd under 07leader/".to_string(),
        ),
        PrimaryView::UnknownLeader { address } => (
            false,
            Reason::UnknownLeader,
            format!("the elected address {address} matches no MDS pod of this cluster"),
        ),
        PrimaryView::Ambiguous { address, pods } => (
            false,
            Reason::AmbiguousLeader,
            format!(
                "the elected address {address} belongs to several pods: {}",
                pods.join(", ")
            ),
        ),
        PrimaryView::EtcdUnreachable { endpoints, error } => (
            false,
            Reason::EtcdUnreachable,
            format!(
                "no etcd endpoint answered ({}): {error}",
                endpoints.join(", ")
            ),
        ),
        PrimaryView::QuorumLost { error } => (
            false,
            Reason::QuorumLost,
            format!("etcd has no quorum: {error}"),
        ),
    };
    verdict(ConditionType::MdsLeaderElected, ok, reason, message)
}

fn chunkserver_verdict(obs: &Observation) -> Verdict {
    let cs = &obs.chunkservers;
    if !cs.exists {
        verdict(
            ConditionType::ChunkServersReady,
            false,
            Reason::NotStarted,
            "ChunkServers start once an MDS primary is elected and every MDS pod has an address"
                .into(),
        )
    } else if !obs.format.failed.is_empty() {
        verdict(
            ConditionType::ChunkServersReady,
            false,
            Reason::FormatFailed,
            format!(
                "{} of {} ready; chunk file pool format failed: {}",
                cs.ready,
                cs.desired,
                obs.format.failed.join(", ")
            ),
        )
    } else if cs.all_ready() {
        verdict(
            ConditionType::ChunkServersReady,
            true,
            Reason::AllReady,
            format!("{} of {} ready", cs.ready, cs.desired),
        )
    } else if !obs.format.formatting.is_empty() {
        verdict(
            ConditionType::ChunkServersReady,
            false,
            Reason::Formatting,
            format!(
                "{} of {} ready; formatting the chunk file pool: {}",
                cs.ready,
                cs.desired,
                obs.format.formatting.join(", ")
            ),
        )
    } else {
        verdict(
            ConditionType::ChunkServersReady,
            false,
            Reason::NotReady,
            format!("{} of {} ready", cs.ready, cs.desired),
        )
    }
}

fn topology_verdict(obs: &Observation) -> Verdict {
    match &obs.topology {
        Some(t) => Verdict {
            type_: ConditionType::TopologyReady,
            ok: t.ready,
            reason: t.reason,
            message: t.message.clone(),
        },
        None => verdict(
            ConditionType::TopologyReady,
            false,
            Reason::NotStarted,
            "pools are created once an MDS primary is elected".into(),
        ),
    }
}

fn available_verdict(obs: &Observation, paused: &Verdict) -> Verdict {
    if !obs.spec_errors.is_empty() {
        return verdict(
            ConditionType::Available,
            false,
            Reason::Invalid,
            "the spec is invalid: see SpecValid".into(),
        );
    }
    if obs.available() {
        return verdict(
            ConditionType::Available,
            true,
            Reason::Available,
            "etcd is quorate, an MDS primary is elected and every ChunkServer is ready".into(),
        );
    }
    if paused.ok {
        return verdict(
            ConditionType::Available,
            false,
            Reason::Paused,
            "reconciliation is paused".into(),
        );
    }
    if !obs.etcd_quorate() {
        verdict(
            ConditionType::Available,
            false,
            Reason::EtcdNotQuorate,
            etcd_verdict(obs).message,
        )
    } else if !matches!(obs.primary, PrimaryView::Elected { .. }) {
        verdict(
            ConditionType::Available,
            false,
            Reason::NoMdsPrimary,
            mds_verdict(obs).message,
        )
    } else if !obs.topology_ready() {
        verdict(
            ConditionType::Available,
            false,
            Reason::TopologyNotReady,
            topology_verdict(obs).message,
        )
    } else {
        verdict(
            ConditionType::Available,
            false,
            Reason::ChunkServersNotReady,
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
            ConditionType::SpecValid,
            true,
            Reason::Valid,
            "the spec passed validation".into(),
        )
    } else {
        verdict(
            ConditionType::SpecValid,
            false,
            Reason::Invalid,
            obs.spec_errors.join("; "),
        )
    };
    let paused = if obs.paused {
        verdict(
            ConditionType::ReconciliationPaused,
            true,
            Reason::Paused,
            "spec.paused is true: no object is changed".into(),
        )
    } else {
        verdict(
            ConditionType::ReconciliationPaused,
            false,
            Reason::Active,
            "the operator applies the spec".into(),
        )
    };
    let available = available_verdict(obs, &paused);
    let not_ready = not_ready_components(obs);
    let progressing = if let Some(error) = &obs.error {
        verdict(
            ConditionType::Progressing,
            false,
            Reason::ReconcileError,
            error.clone(),
        )
    } else if !obs.refused.is_empty() {
        verdict(
            ConditionType::Progressing,
            false,
            Reason::ChangeRefused,
            obs.refused.join("; "),
        )
    } else if let MembershipState::Blocked { message } = &obs.membership {
        verdict(
            ConditionType::Progressing,
            false,
            Reason::EtcdMembershipBlocked,
            message.clone(),
        )
    } else if let MembershipState::Changing { message } = &obs.membership {
        verdict(
            ConditionType::Progressing,
            true,
            Reason::EtcdMembershipChange,
            message.clone(),
        )
    } else if let RollState::Stuck { message } = &obs.roll {
        verdict(
            ConditionType::Progressing,
            false,
            Reason::RolloutStuck,
            message.clone(),
        )
    } else if !obs.expansions.is_empty() {
        let mut message = expansions_message(&obs.expansions);
        if let RollState::Rolling { message: roll } = &obs.roll {
            message.push_str(&format!("; {roll}"));
        }
        verdict(
            ConditionType::Progressing,
            true,
            Reason::VolumeExpansion,
            message,
        )
    } else if let RollState::Rolling { message } = &obs.roll {
        verdict(
            ConditionType::Progressing,
            true,
            Reason::RollingUpdate,
            message.clone(),
        )
    } else if valid && !obs.paused && !available.ok {
        verdict(
            ConditionType::Progressing,
            true,
            Reason::Reconciling,
            format!("waiting: {}", available.message),
        )
    } else if valid && !obs.paused && !not_ready.is_empty() {
        verdict(
            ConditionType::Progressing,
            true,
            Reason::Reconciling,
            format!("not ready yet: {}", not_ready.join(", ")),
        )
    } else {
        verdict(
            ConditionType::Progressing,
            false,
            Reason::Complete,
            "the cluster matches the spec".into(),
        )
    };
    // Once a cluster has served, falling short is Degraded, not Creating (pausing keeps that memory).
    let was_available = matches!(previous.phase, Some(Phase::Available | Phase::Degraded))
        || [ConditionType::Available, ConditionType::Degraded]
            .iter()
            .any(|t| find(previous, *t).is_some_and(|c| c.status == "True"));
    let degraded = if let Some(error) = &obs.error {
        verdict(
            ConditionType::Degraded,
            true,
            Reason::ReconcileError,
            error.clone(),
        )
    } else if was_available && valid && !obs.complete() && !not_ready.is_empty() {
        verdict(
            ConditionType::Degraded,
            true,
            Reason::ComponentsNotReady,
            format!("not ready: {}", not_ready.join(", ")),
        )
    } else {
        verdict(
            ConditionType::Degraded,
            false,
            Reason::AsExpected,
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
            ConditionType::Monitoring,
            false,
            Reason::Discovering,
            "asking the API server whether it serves monitoring.coreos.com/v1 PodMonitor and PrometheusRule".into(),
        ),
        MonitoringState::Missing { message } => {
            verdict(ConditionType::Monitoring, false, Reason::PrometheusOperatorMissing, message.clone())
        }
        MonitoringState::Applied { objects } => verdict(
            ConditionType::Monitoring,
            true,
            Reason::Applied,
            format!("applied {}", objects.join(", ")),
        ),
    })
}

/// What deleting the CurveCluster does to its data volumes; `Delete` without the confirmation
/// keeps them, and says what to write to have them deleted.
fn cleanup_verdict(cleanup: DataCleanup) -> Verdict {
    match cleanup {
        DataCleanup::Retain => verdict(
            ConditionType::DataRetained,
            true,
            Reason::RetainPolicy,
            "the data volumes are kept when the CurveCluster is deleted (spec.cleanup.policy: Retain)".into(),
        ),
        DataCleanup::DeleteNotConfirmed => verdict(
            ConditionType::DataRetained,
            true,
            Reason::DeleteNotConfirmed,
            format!(
                "spec.cleanup.policy is Delete, but spec.cleanup.confirmation is not {:?}: the data volumes are kept when the CurveCluster is deleted; to delete them with it, set spec.cleanup.confirmation: {}",
                crate::api::DELETE_DATA_CONFIRMATION,
                crate::api::DELETE_DATA_CONFIRMATION
            ),
        ),
        DataCleanup::Delete => verdict(
            ConditionType::DataRetained,
            false,
            Reason::DeleteConfirmed,
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
    debug_assert!(
        v.type_.carries(v.reason, v.ok),
        "{} {} with reason {}: not in model::conditions",
        v.type_,
        v.ok,
        v.reason
    );
    let status = if v.ok { "True" } else { "False" }.to_string();
    let last_transition_time = previous
        .iter()
        .find(|c| c.type_ == v.type_.as_str() && c.status == status)
        .map(|c| c.last_transition_time.clone())
        .unwrap_or(Time(now));
    Condition {
        type_: v.type_.to_string(),
        status,
        reason: v.reason.to_string(),
        message: v.message,
        last_transition_time,
        observed_generation: generation,
    }
}

/// The previous status with a reconcile error recorded (Progressing and Degraded say why);
/// everything else stays as last observed.
pub fn with_error(
    previous: &CurveClusterStatus,
    error: &str,
    generation: Option<i64>,
    now: Timestamp,
) -> CurveClusterStatus {
    with_failure(previous, Reason::ReconcileError, error, generation, now)
}

/// The status after the API server refused an object the operator applied (a reason the
/// operator's validation missed): `ApplyRefused`, with the object and the server's message.
pub fn with_refusal(
    previous: &CurveClusterStatus,
    refusal: &str,
    generation: Option<i64>,
    now: Timestamp,
) -> CurveClusterStatus {
    with_failure(previous, Reason::ApplyRefused, refusal, generation, now)
}

fn with_failure(
    previous: &CurveClusterStatus,
    reason: Reason,
    message: &str,
    generation: Option<i64>,
    now: Timestamp,
) -> CurveClusterStatus {
    let mut next = previous.clone();
    for v in [
        verdict(
            ConditionType::Progressing,
            false,
            reason,
            message.to_string(),
        ),
        verdict(ConditionType::Degraded, true, reason, message.to_string()),
    ] {
        let type_ = v.type_;
        let updated = condition(&previous.conditions, v, generation, now);
        match (next.conditions.iter_mut()).find(|c| c.type_ == type_.as_str()) {
            Some(existing) => *existing = updated,
            None => next.conditions.push(updated),
        }
    }
    next
}
#[cfg(test)]
#[path = "status_tests.rs"]
mod tests;
