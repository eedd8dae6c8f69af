//! Status as a pure function of (previous status, observation, generation, now).
//!
//! The condition types and their reasons are typed in `model::conditions` (and listed in
//! `docs/reference/conditions.md`, generated from them).
//!
//! A condition's lastTransitionTime changes only when its status changes.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use k8s_openapi::jiff::Timestamp;

use super::etcd_space;
use super::model::conditions::{BLOCKED, ConditionType, Reason, find};
use super::model::health::HealthView;
use super::model::observation::{
    Blocker, ComponentObservation, DataCleanup, Observation, PrimaryView,
};
use super::model::states::{
    CsiState, MembershipState, MonitoringState, RestoreState, RollState, expansions_message,
};
use crate::api::{
    ComponentStatus, CurveClusterStatus, EtcdStatus, HealthVerdict, MdsStatus, Phase, RetireReason,
    TopologyStatus,
};
use crate::etcd::EtcdAlarm;
use crate::names::Component;
use crate::util::first_of;

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

/// Blockers shown in one message at most; the rest are counted.
const SHOWN_BLOCKERS: usize = 3;

/// Why the tier's pods do not come up: the first blocker's reason, and the blockers named.
fn tier_blocked(obs: &Observation, component: Component) -> Option<(Reason, String)> {
    let of_tier: Vec<&Blocker> = (obs.blockers.iter())
        .filter(|b| b.component == component)
        .collect();
    let first = of_tier.first()?;
    let mut message: Vec<&str> = (of_tier.iter().take(SHOWN_BLOCKERS))
        .map(|b| b.message.as_str())
        .collect();
    let more = format!("and {} more", of_tier.len().saturating_sub(SHOWN_BLOCKERS));
    if of_tier.len() > SHOWN_BLOCKERS {
        message.push(&more);
    }
    Some((first.reason, message.join("; ")))
}

/// The verdict of a tier that is not up: its blocker when one is known, else `fallback`.
fn not_up(
    type_: ConditionType,
    obs: &Observation,
    component: Component,
    fallback: Reason,
    message: String,
) -> Verdict {
    match tier_blocked(obs, component) {
        Some((reason, why)) => verdict(type_, false, reason, format!("{message}: {why}")),
        None => verdict(type_, false, fallback, message),
    }
}

fn etcd_verdict(obs: &Observation) -> Verdict {
    // Figures of the member list as it stands; a size the spec asks for is said apart.
    let mut counts = format!(
        "{} of {} members ready, quorum is {}",
        obs.etcd.ready, obs.etcd_members_now, obs.etcd_quorum
    );
    if obs.etcd.desired != obs.etcd_members_now {
        counts.push_str(&format!(" (the spec asks for {})", obs.etcd.desired));
    }
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
        not_up(
            ConditionType::EtcdQuorate,
            obs,
            Component::Etcd,
            Reason::NoQuorum,
            counts,
        )
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
    // Only about the primary elected now: a probe of the one before says nothing of it.
    let unreachable = (obs.health.as_ref()).and_then(|h| h.primary_unreachable.as_deref());
    let elected = match &obs.primary {
        PrimaryView::Elected { pod, .. } => Some(pod.as_str()),
        _ => None,
    };
    if let Some(pod) = unreachable.filter(|u| Some(*u) == elected) {
        return verdict(
            ConditionType::MdsLeaderElected,
            false,
            Reason::PrimaryUnreachable,
            format!(
                "etcd's election names {pod}, whose dummy port does not answer: its key lapses within the MDS's session TTL, then a standby takes over"
            ),
        );
    }
    if ok || reason == Reason::NotStarted {
        verdict(ConditionType::MdsLeaderElected, ok, reason, message)
    } else {
        not_up(
            ConditionType::MdsLeaderElected,
            obs,
            Component::Mds,
            reason,
            message,
        )
    }
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
                first_of(&obs.format.failed, ", ")
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
                first_of(&obs.format.formatting, ", ")
            ),
        )
    } else {
        not_up(
            ConditionType::ChunkServersReady,
            obs,
            Component::ChunkServer,
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

/// Pause is its own condition: Available keeps its real reason while paused.
/// The pools wait for ChunkServers that are blocked (crash-looping, unschedulable, …): the
/// blocker is the cause Available names, not the waiting step.
fn waits_on_blocked_chunkservers(obs: &Observation) -> bool {
    let waits = (obs.topology.as_ref()).is_some_and(|t| {
        matches!(
            t.reason,
            Reason::WaitingForServers
                | Reason::WaitingForChunkServers
                | Reason::ChunkServersOffline
        )
    });
    waits && tier_blocked(obs, Component::ChunkServer).is_some()
}

fn available_verdict(obs: &Observation) -> Verdict {
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
    } else if !obs.topology_ready() && !waits_on_blocked_chunkservers(obs) {
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

fn spec_verdict(obs: &Observation) -> Verdict {
    if obs.spec_errors.is_empty() {
        let message = "the spec passed validation".into();
        verdict(ConditionType::SpecValid, true, Reason::Valid, message)
    } else {
        let message = obs.spec_errors.join("; ");
        verdict(ConditionType::SpecValid, false, Reason::Invalid, message)
    }
}

fn paused_verdict(obs: &Observation) -> Verdict {
    let type_ = ConditionType::ReconciliationPaused;
    if obs.paused {
        let message = "spec.paused is true: no object is changed".into();
        verdict(type_, true, Reason::Paused, message)
    } else {
        verdict(
            type_,
            false,
            Reason::Active,
            "the operator applies the spec".into(),
        )
    }
}

/// What a paused cluster holds back, never "Complete": the operator is not making it so.
fn paused_progress(obs: &Observation) -> Verdict {
    let held = if obs.held.is_empty() {
        "no change is held back".to_string()
    } else {
        format!("held back: {}", first_of(&obs.held, ", "))
    };
    let message = format!("spec.paused is true: nothing is changed; {held}");
    verdict(ConditionType::Progressing, false, Reason::Paused, message)
}

/// The first blocker of any tier, in bring-up order.
fn first_blocker(obs: &Observation) -> Option<(Reason, String)> {
    Component::TIERS.iter().find_map(|c| tier_blocked(obs, *c))
}

/// The first bring-up is past `spec.rollout.progressDeadlineSeconds`: Progressing has been
/// Reconciling that long, or already said which blocker stopped it.
fn bring_up_overdue(
    previous: &CurveClusterStatus,
    obs: &Observation,
    was_available: bool,
    now: Timestamp,
) -> bool {
    let Some(progressing) = find(previous, ConditionType::Progressing) else {
        return false;
    };
    if was_available || obs.paused || obs.progress_deadline_seconds <= 0 {
        return false;
    }
    let stopped_by_blocker =
        progressing.status == "False" && BLOCKED.iter().any(|r| r.as_str() == progressing.reason);
    let reconciling =
        progressing.status == "True" && progressing.reason == Reason::Reconciling.as_str();
    let since = progressing.last_transition_time.0;
    stopped_by_blocker
        || (reconciling && now.duration_since(since).as_secs() >= obs.progress_deadline_seconds)
}

/// Where the first bring-up stands once past its deadline: the blocker, as Progressing and
/// Degraded say it.
fn overdue_message(obs: &Observation, why: &str) -> String {
    format!(
        "the cluster is not up spec.rollout.progressDeadlineSeconds ({} s) after its bring-up began: {why}",
        obs.progress_deadline_seconds
    )
}

fn progressing_verdict(
    obs: &Observation,
    available: &Verdict,
    not_ready: &[String],
    overdue: bool,
) -> Verdict {
    let type_ = ConditionType::Progressing;
    let valid = obs.spec_errors.is_empty();
    let under_way = |reason, message: &String| verdict(type_, true, reason, message.clone());
    let stopped = |reason, message: &String| verdict(type_, false, reason, message.clone());
    if let Some(error) = &obs.error {
        return stopped(Reason::ReconcileError, error);
    }
    if obs.paused {
        return paused_progress(obs);
    }
    // A restore stops the MDS tier: it is what the cluster is doing, before any other change.
    match &obs.restore {
        RestoreState::Running { message } => return under_way(Reason::EtcdRestore, message),
        RestoreState::Refused { message } => return stopped(Reason::EtcdRestoreRefused, message),
        RestoreState::Failed { message } => return stopped(Reason::EtcdRestoreFailed, message),
        RestoreState::None => {}
    }
    if !obs.refused.is_empty() {
        return stopped(Reason::ChangeRefused, &obs.refused.join("; "));
    }
    match (&obs.membership, &obs.roll) {
        (MembershipState::Blocked { message }, _) => {
            return stopped(Reason::EtcdMembershipBlocked, message);
        }
        (MembershipState::Changing { message }, _) => {
            return under_way(Reason::EtcdMembershipChange, message);
        }
        (_, RollState::Stuck { message }) => return stopped(Reason::RolloutStuck, message),
        _ => {}
    }
    if let Some(retire) = &obs.retire {
        if retire.stuck {
            return stopped(Reason::ChunkServerReplaceStuck, &retire.message);
        }
        let reason = match retire.reason {
            RetireReason::Replace => Reason::ChunkServerReplacing,
            _ => Reason::ChunkServerRetiring,
        };
        return under_way(reason, &retire.message);
    }
    if !obs.expansions.is_empty() {
        let mut message = expansions_message(&obs.expansions);
        if let RollState::Rolling { message: roll } = &obs.roll {
            message.push_str(&format!("; {roll}"));
        }
        return under_way(Reason::VolumeExpansion, &message);
    }
    if let RollState::Rolling { message } = &obs.roll {
        return under_way(Reason::RollingUpdate, message);
    }
    match first_blocker(obs) {
        Some((reason, why)) if valid && overdue && !available.ok => {
            // The blocker is the reason: its words are in the message even when Available
            // says another step waits (a topology Job still running beside a crash loop).
            let message = if available.message.contains(&why) {
                available.message.clone()
            } else {
                format!("{}; {why}", available.message)
            };
            stopped(reason, &overdue_message(obs, &message))
        }
        _ if valid && !available.ok => under_way(
            Reason::Reconciling,
            &format!("waiting: {}", available.message),
        ),
        _ if valid && !not_ready.is_empty() => under_way(
            Reason::Reconciling,
            &format!("not ready yet: {}", not_ready.join(", ")),
        ),
        _ => verdict(
            type_,
            false,
            Reason::Complete,
            "the cluster matches the spec".into(),
        ),
    }
}

fn degraded_verdict(
    obs: &Observation,
    not_ready: &[String],
    was_available: bool,
    overdue: bool,
) -> Verdict {
    let type_ = ConditionType::Degraded;
    let valid = obs.spec_errors.is_empty();
    if let Some(error) = &obs.error {
        return verdict(type_, true, Reason::ReconcileError, error.clone());
    }
    if let RestoreState::Failed { message } = &obs.restore {
        return verdict(type_, true, Reason::EtcdRestoreFailed, message.clone());
    }
    let blocker = first_blocker(obs);
    match blocker {
        Some((reason, why)) if valid && overdue => {
            verdict(type_, true, reason, overdue_message(obs, &why))
        }
        _ if was_available && valid && !obs.complete() && !not_ready.is_empty() => {
            let mut message = format!("not ready: {}", not_ready.join(", "));
            if let Some((_, why)) = blocker {
                message.push_str(&format!("; {why}"));
            }
            verdict(type_, true, Reason::ComponentsNotReady, message)
        }
        _ if valid && etcd_alarm(obs).is_some() => etcd_alarm(obs).map_or_else(
            || verdict(type_, false, Reason::AsExpected, String::new()),
            |(alarm, members)| {
                let reason = match alarm {
                    EtcdAlarm::NoSpace => Reason::EtcdNoSpace,
                    EtcdAlarm::Corrupt => Reason::EtcdCorrupt,
                };
                verdict(
                    type_,
                    true,
                    reason,
                    etcd_space::alarm_message(alarm, &members),
                )
            },
        ),
        _ if valid && !obs.stale_chunkservers.is_empty() => verdict(
            type_,
            true,
            Reason::ChunkServerIdRetired,
            first_of(&obs.stale_chunkservers, "; "),
        ),
        _ if valid && copysets_unhealthy(obs) => {
            let message = obs.health.as_ref().map(HealthView::summary);
            verdict(
                type_,
                true,
                Reason::CopysetsUnhealthy,
                message.unwrap_or_default(),
            )
        }
        _ if valid && obs.clocks_apart.is_some() => verdict(
            type_,
            true,
            Reason::NodeClocksApart,
            obs.clocks_apart.clone().unwrap_or_default(),
        ),
        _ => verdict(
            type_,
            false,
            Reason::AsExpected,
            "no component is degraded".into(),
        ),
    }
}

/// The gravest alarm etcd raised (CORRUPT before NOSPACE), with the members it is raised on.
fn etcd_alarm(obs: &Observation) -> Option<(EtcdAlarm, Vec<String>)> {
    (obs.etcd_members.as_ref()).and_then(|m| etcd_space::alarms(m).into_iter().next())
}

/// Curve says copysets are unhealthy (not merely that its health is unknown).
fn copysets_unhealthy(obs: &Observation) -> bool {
    (obs.health.as_ref()).is_some_and(|h| {
        h.status.verdict == HealthVerdict::Unhealthy
            && h.status.copysets.as_ref().is_some_and(|c| c.unhealthy > 0)
    })
}

/// Once a cluster has served, falling short is Degraded, not Creating (pausing keeps that memory).
/// (A first bring-up past its deadline is Degraded too, by its blocker: that does not count.)
fn was_available(previous: &CurveClusterStatus) -> bool {
    let degraded_after_serving = find(previous, ConditionType::Degraded)
        .is_some_and(|c| c.status == "True" && c.reason == Reason::ComponentsNotReady.as_str());
    matches!(previous.phase, Some(Phase::Available | Phase::Degraded))
        || find(previous, ConditionType::Available).is_some_and(|c| c.status == "True")
        || degraded_after_serving
}

fn phase(obs: &Observation, was_available: bool) -> Phase {
    if !obs.spec_errors.is_empty() {
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
    }
}

/// Every condition, in the order the status lists them (the tiers' only for a valid spec).
fn verdicts(previous: &CurveClusterStatus, obs: &Observation, now: Timestamp) -> Vec<Verdict> {
    let valid = obs.spec_errors.is_empty();
    let was_available = was_available(previous);
    let overdue = bring_up_overdue(previous, obs, was_available, now);
    let available = available_verdict(obs);
    let not_ready = not_ready_components(obs);
    let progressing = progressing_verdict(obs, &available, &not_ready, overdue);
    let degraded = degraded_verdict(obs, &not_ready, was_available, overdue);
    let mut verdicts = vec![available, progressing, degraded];
    if valid {
        verdicts.extend([
            etcd_verdict(obs),
            mds_verdict(obs),
            chunkserver_verdict(obs),
            topology_verdict(obs),
        ]);
    }
    verdicts.extend([spec_verdict(obs), paused_verdict(obs)]);
    if valid {
        verdicts.push(cleanup_verdict(obs.cleanup));
        verdicts.extend(adopted_verdict(obs));
        verdicts.extend(monitoring_verdict(&obs.monitoring));
        verdicts.extend(csi_verdicts(&obs.csi));
        verdicts.extend(health_verdict(obs));
    }
    verdicts
}

/// CopysetsHealthy, once the health monitor has read the cluster.
fn health_verdict(obs: &Observation) -> Option<Verdict> {
    let health = obs.health.as_ref()?;
    let type_ = ConditionType::CopysetsHealthy;
    let message = health.summary();
    Some(match health.status.verdict {
        HealthVerdict::Healthy => {
            let copysets = health.status.copysets.as_ref().map_or(0, |c| c.total);
            verdict(
                type_,
                true,
                Reason::Healthy,
                format!("{copysets} copysets healthy; one MDS leader, the elected one"),
            )
        }
        HealthVerdict::Unhealthy => verdict(type_, false, Reason::Unhealthy, message),
        HealthVerdict::Unknown => verdict(type_, false, Reason::Unknown, message),
    })
}

/// The new status. Pure: the same inputs give the same status.
pub fn compute_status(
    previous: &CurveClusterStatus,
    obs: &Observation,
    generation: Option<i64>,
    now: Timestamp,
) -> CurveClusterStatus {
    let valid = obs.spec_errors.is_empty();
    let conditions = (verdicts(previous, obs, now).into_iter())
        .map(|v| condition(&previous.conditions, v, generation, now))
        .collect();
    CurveClusterStatus {
        observed_generation: generation,
        phase: Some(phase(obs, was_available(previous))),
        conditions,
        etcd: match valid {
            true => Some(EtcdStatus {
                pods: component_status(&obs.etcd),
                leader: obs.etcd_members.as_ref().and_then(|m| m.leader.clone()),
                healthy_members: obs.etcd_members.as_ref().map(|m| m.healthy as i32),
                restore: obs.restore_record.clone(),
                // The backup decision (reconcile/backup.rs) sets it.
                backup: None,
            }),
            // The records of a restore and of the backups outlive an invalid spec: they carry
            // on once the spec is valid.
            false => (previous.etcd.as_ref())
                .filter(|e| e.restore.is_some() || e.backup.is_some())
                .map(|e| EtcdStatus {
                    restore: e.restore.clone(),
                    backup: e.backup.clone(),
                    ..EtcdStatus::default()
                }),
        },
        mds: valid.then(|| mds_status(previous.mds.as_ref(), obs, now)),
        chunkservers: valid.then(|| component_status(&obs.chunkservers)),
        topology: match (&obs.topology, valid) {
            (Some(t), true) => Some(TopologyStatus {
                servers: t.servers,
                physical_pool: obs.physical_pool.clone(),
                logical_pool: obs.logical_pool.clone(),
                usable_bytes: obs.usable_bytes.and_then(|b| i64::try_from(b).ok()),
            }),
            _ => previous.topology.clone(),
        },
        // Read by the health monitor, whose status keeps its figures (and time) while nothing
        // changes: no write for a reading that tells nothing new. Kept until one comes (an
        // operator restart).
        health: (obs.health.as_ref().map(|h| h.status.clone())).or_else(|| previous.health.clone()),
        // The operator's memory outlives an invalid spec; the decision updates it.
        record: previous.record.clone(),
    }
}

/// Claims of an earlier cluster in use: its data is back. Shown only while there are any.
fn adopted_verdict(obs: &Observation) -> Option<Verdict> {
    let shown: Vec<&str> = (obs.adopted_claims.iter().take(SHOWN_BLOCKERS))
        .map(String::as_str)
        .collect();
    let more = obs.adopted_claims.len().saturating_sub(SHOWN_BLOCKERS);
    let more = if more > 0 {
        format!(" and {more} more")
    } else {
        String::new()
    };
    (!obs.adopted_claims.is_empty()).then(|| {
        verdict(
            ConditionType::DataAdopted,
            true,
            Reason::RetainedClaimsAdopted,
            format!(
                "{} of this cluster's data claims existed before the CurveCluster was created ({}{more}): an earlier cluster's etcd and ChunkServer data come back with them; for a fresh cluster, delete the CurveCluster and these claims, then create it again",
                obs.adopted_claims.len(),
                shown.join(", ")
            ),
        )
    })
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

/// `Csi`, and `CsiConfigPending` once its objects are applied.
fn csi_verdicts(state: &CsiState) -> Vec<Verdict> {
    let csi =
        |status, reason, message: String| verdict(ConditionType::Csi, status, reason, message);
    match state {
        CsiState::Disabled => Vec::new(),
        CsiState::WaitingForAvailable => vec![csi(
            false,
            Reason::CsiWaitingForAvailable,
            "curve-csi is created once the Curve cluster is Available".into(),
        )],
        CsiState::Taken { objects } => vec![csi(
            false,
            Reason::CsiObjectTaken,
            format!(
                "{} belongs to another provisioner or cluster: nothing of curve-csi is applied; choose another spec.csi.storageClass.name, or remove the other driver",
                objects.join(" and ")
            ),
        )],
        CsiState::Applied {
            mds_addr,
            storage_class,
            pending_nodes,
        } => {
            let class = match storage_class {
                Some(name) => format!("StorageClass {name}"),
                None => "no StorageClass yet (created once the cluster is Available)".into(),
            };
            let pending = if pending_nodes.is_empty() {
                verdict(
                    ConditionType::CsiConfigPending,
                    false,
                    Reason::NodePluginsCurrent,
                    "every node plugin pod runs the current config".into(),
                )
            } else {
                verdict(
                    ConditionType::CsiConfigPending,
                    true,
                    Reason::VolumesAttached,
                    format!(
                        "node plugin pods on {} run an outdated MDSADDR and are held: Curve volumes are attached there and a restart cuts them; annotate the CurveCluster {}=<nodes, or *> to restart them anyway, or detach the volumes",
                        pending_nodes.join(", "),
                        crate::api::CSI_RESTART_ANNOTATION
                    ),
                )
            };
            vec![
                csi(
                    true,
                    Reason::CsiApplied,
                    format!("curve-csi applied with MDSADDR={mds_addr}; {class}"),
                ),
                pending,
            ]
        }
    }
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

/// The status of a CurveCluster whose deletion waits for these bound PersistentVolumes of its
/// StorageClass (`DeletionBlocked`); the rest as it was (nothing else is reconciled then).
pub fn with_deletion_blocked(
    previous: &CurveClusterStatus,
    volumes: &[String],
    class: &str,
    generation: Option<i64>,
    now: Timestamp,
) -> CurveClusterStatus {
    let message = format!(
        "the deletion waits: PersistentVolumes of StorageClass {class} are bound: {}; delete their claims (the workloads lose these volumes), or set spec.cleanup.policy Delete with confirmation {} to delete anyway",
        volumes.join(", "),
        crate::api::DELETE_DATA_CONFIRMATION
    );
    let blocked = verdict(
        ConditionType::DeletionBlocked,
        true,
        Reason::PersistentVolumesBound,
        message,
    );
    with_verdicts(previous, [blocked], generation, now)
}

fn with_failure(
    previous: &CurveClusterStatus,
    reason: Reason,
    message: &str,
    generation: Option<i64>,
    now: Timestamp,
) -> CurveClusterStatus {
    let failure = [
        verdict(
            ConditionType::Progressing,
            false,
            reason,
            message.to_string(),
        ),
        verdict(ConditionType::Degraded, true, reason, message.to_string()),
    ];
    with_verdicts(previous, failure, generation, now)
}

/// The previous status with these conditions replaced (or added).
fn with_verdicts(
    previous: &CurveClusterStatus,
    verdicts: impl IntoIterator<Item = Verdict>,
    generation: Option<i64>,
    now: Timestamp,
) -> CurveClusterStatus {
    let mut next = previous.clone();
    for v in verdicts {
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
