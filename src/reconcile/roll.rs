//! Rolling changes: which pod the operator replaces next, and why it waits. Pure.
//!
//! Every Curve StatefulSet uses `updateStrategy: OnDelete`: when a template changes, the
//! StatefulSet controller only recreates the pods the operator deletes. The operator deletes
//! them in tier order (etcd, MDS, ChunkServers), each tier updated and healthy before the next
//! begins, one step at a time:
//!
//! - etcd: one member at a time, followers first, the raft leader last, only while every member
//!   is healthy (a majority with one member to spare).
//! - MDS: standbys first, the elected primary last; the tier is done once a primary is elected
//!   again. So the primary changes once per roll.
//! - ChunkServers: every disk slot of one server together (or every server of one zone), only
//!   while Curve's health, read natively by the health monitor after the tier's pods were last
//!   seen as they are now, is healthy (every copyset healthy, by the rules of Curve's own
//!   `curve_ops_tool copysets-status`); never on an unknown verdict.
//!
//! A pod that is not Ready halts the roll where it is; past `spec.rollout.progressDeadlineSeconds`
//! the roll is reported stuck. Nothing is remembered between passes: the pods' revisions, their
//! readiness and Curve's health say where a roll is, so a restarted operator carries on.

use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::jiff::Timestamp;

use super::health;
use super::model::action::{Action, component_of};
use super::model::event::ClusterEvent;
use super::model::health::HealthView;
use super::model::observation::{Observation, PrimaryView};
use super::model::pod::PodReading;
use super::model::states::RollState;
use super::observe;
use crate::api::ChunkServerUpdatePolicy;
use crate::names::Component;
use crate::validate::ValidatedCluster;

/// One pod as the roll sees it: borrowed from the snapshot's reading (a decision makes one for
/// each of thousands of pods; copying four strings of each was a large part of its time).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RollPod<'a> {
    pub name: Cow<'a, str>,
    pub uid: Cow<'a, str>,
    /// Ordinal in its StatefulSet: the server, for ChunkServers.
    pub ordinal: i32,
    /// Runs its StatefulSet's current template.
    pub updated: bool,
    pub ready: bool,
    /// Being deleted: its replacement is on the way.
    pub terminating: bool,
    pub created: Option<Timestamp>,
    pub node: Option<Cow<'a, str>>,
    pub image: Option<Cow<'a, str>>,
    /// A container waiting for a reason that will not pass by itself.
    pub failing: Option<Cow<'a, str>>,
}

/// A tier's pods and whether its StatefulSets are settled.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TierPods<'a> {
    pub component: Component,
    /// Pods the StatefulSets ask for.
    pub desired: i32,
    /// Every StatefulSet of the tier observed its latest template (its revisions are current).
    pub settled: bool,
    pub pods: Vec<RollPod<'a>>,
}

impl<'a> TierPods<'a> {
    pub fn updated(&self) -> i32 {
        self.pods.iter().filter(|p| p.updated).count() as i32
    }

    fn outdated(&self) -> impl Iterator<Item = &RollPod<'a>> {
        self.pods.iter().filter(|p| !p.updated)
    }

    /// The images the tier's pods run, sorted.
    pub fn images(&self) -> Vec<String> {
        let mut images: BTreeSet<&str> = BTreeSet::new();
        // Most pods run the image of the pod before: one comparison instead of a tree search.
        let mut last = None;
        for image in self.pods.iter().filter_map(|p| p.image.as_deref()) {
            if last != Some(image) {
                images.insert(image);
                last = Some(image);
            }
        }
        images.into_iter().map(str::to_string).collect()
    }
}

/// The number a name ends with, leniently (`-007` is 7), 0 when none: for the rare name not as
/// a StatefulSet makes it (the canonical ordinal is derived once per pod reading).
fn ordinal_of(name: &str) -> i32 {
    name.rsplit_once('-')
        .and_then(|(_, n)| n.parse().ok())
        .unwrap_or(0)
}

/// A StatefulSet's tier (its index in [`Component::TIERS`]) and current revision.
type SetRevision<'a> = (usize, Option<&'a String>);

/// The pods of each tier, with their revisions judged against their StatefulSet's. One pass
/// over the pods for all tiers: with thousands of pods spread over the heap, each pass is the
/// cost of reaching every pod.
pub fn tiers<'a>(
    stateful_sets: &[StatefulSet],
    pods: &'a [std::sync::Arc<PodReading>],
) -> Vec<TierPods<'a>> {
    let set_tier = |s: &StatefulSet| {
        let component = component_of(&s.metadata)?;
        Component::TIERS
            .iter()
            .position(|c| c.as_str() == component)
    };
    // Each set's tier and revision by name, looked up for every pod (borrowed, not copied);
    // of two sets of one name, the first.
    let revisions: BTreeMap<&str, SetRevision> = (stateful_sets.iter().rev())
        .filter_map(|s| {
            let revision = s.status.as_ref().and_then(|s| s.update_revision.as_ref());
            Some((s.metadata.name.as_deref()?, (set_tier(s)?, revision)))
        })
        .collect();
    // The set of the pod before is remembered: the pods come sorted by name, so a set's pods
    // follow one another, and one comparison replaces a search of the sets.
    let mut last: Option<(&str, Option<SetRevision>)> = None;
    let mut revision = |set_name: &'a str, tier: usize| {
        let found = match last {
            Some((name, found)) if name == set_name => found,
            _ => {
                let found = revisions.get(set_name).copied();
                last = Some((set_name, found));
                found
            }
        };
        // A set of another tier is none of this pod's tier.
        found
            .filter(|(of, _)| *of == tier)
            .and_then(|(_, revision)| revision)
    };
    let mut tier_pods: [Vec<RollPod<'a>>; 3] = Default::default();
    for pod in pods {
        let Some(tier) = pod.tier.and_then(Component::tier_index) else {
            continue;
        };
        let Some(set) = pod.set.as_deref() else {
            continue;
        };
        let current = revision(set, tier);
        let derived = pod.derived();
        tier_pods[tier].push(RollPod {
            ordinal: (derived.ordinal).unwrap_or_else(|| ordinal_of(&pod.name)),
            name: Cow::Borrowed(&pod.name),
            uid: Cow::Borrowed(&pod.uid),
            updated: current.is_some() && pod.revision.as_ref() == current,
            ready: observe::is_ready(pod),
            terminating: pod.terminating,
            created: pod.created,
            node: pod.node.as_deref().map(Cow::Borrowed),
            image: pod.image.as_deref().map(Cow::Borrowed),
            failing: derived.failing.as_deref().map(Cow::Borrowed),
        });
    }
    (Component::TIERS.into_iter().zip(tier_pods))
        .map(|(component, pods)| {
            let sets = || {
                (stateful_sets.iter())
                    .filter(move |s| component_of(&s.metadata) == Some(component.as_str()))
            };
            let settled = sets().all(|s| {
                let status = s.status.as_ref();
                status.and_then(|s| s.observed_generation) == s.metadata.generation
                    && status.and_then(|s| s.update_revision.as_ref()).is_some()
            });
            let desired = sets()
                .map(|s| s.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1))
                .sum();
            TierPods {
                component,
                desired,
                settled,
                pods,
            }
        })
        .collect()
}

/// What the ChunkServer steps are checked with.
#[derive(Clone, Copy)]
pub struct Checks<'a> {
    /// Curve's health as last read, if it was.
    pub health: Option<&'a HealthView>,
    /// Zone of each node, for `updatePolicy: Zone`.
    pub node_zones: &'a BTreeMap<String, String>,
    /// The logical pool exists: before it, there is no copyset to check (nor data to keep).
    pub pool_created: bool,
}

/// What the roll does in this pass.
#[derive(Clone, Debug, PartialEq)]
pub struct RollDecision {
    pub state: RollState,
    pub actions: Vec<Action>,
    pub events: Vec<ClusterEvent>,
}

/// What a tier says about going on.
enum Halt {
    Wait(String),
    Stuck(String),
}

fn tier_label(component: Component) -> &'static str {
    match component {
        Component::ChunkServer => "chunkservers",
        other => other.as_str(),
    }
}

impl RollDecision {
    /// No pod is replaced in this pass.
    fn idle(state: RollState) -> Self {
        RollDecision {
            state,
            actions: Vec::new(),
            events: Vec::new(),
        }
    }
}

/// The roll's next step over the tiers' pods.
pub fn decide(
    cluster: &ValidatedCluster,
    tiers: &[TierPods],
    obs: &Observation,
    checks: Checks<'_>,
    now: Timestamp,
) -> RollDecision {
    // The first tier with a pod on an older template rolls; every tier before it must be whole.
    let Some(rolling) = tiers.iter().position(|t| t.outdated().next().is_some()) else {
        return RollDecision::idle(RollState::Done);
    };
    let deadline = i64::from(cluster.spec.rollout.progress_deadline_seconds);
    // A tier whose StatefulSet controller has not observed its new template yet shows its pods
    // as current: a later tier waits for it rather than going first.
    if let Some(unsettled) = tiers[..rolling].iter().find(|t| !t.settled) {
        let why = format!(
            "waiting for the StatefulSet controller to take the {} template",
            tier_label(unsettled.component)
        );
        return RollDecision::idle(halted(Halt::Wait(why), |why| why));
    }
    for tier in &tiers[..rolling] {
        if let Err(halt) = whole(tier, deadline, now).and_then(|()| healthy(tier, obs)) {
            let next = tier_label(tiers[rolling].component);
            let state = halted(halt, |why| format!("{why}; {next} roll after it"));
            return RollDecision::idle(state);
        }
    }
    let tier = &tiers[rolling];
    let progress = format!(
        "{}: {}/{} updated",
        tier_label(tier.component),
        tier.updated(),
        tier.desired
    );
    let with_progress = |why: String| format!("{progress}, {why}");
    match group_to_replace(cluster, tier, obs, checks, deadline, now) {
        Ok(group) => replace(tier, &group, obs, &progress),
        Err(halt) => RollDecision::idle(halted(halt, with_progress)),
    }
}

/// The pods of the rolling tier to replace now, or why none is.
fn group_to_replace<'a, 'p>(
    cluster: &ValidatedCluster,
    tier: &'a TierPods<'p>,
    obs: &Observation,
    checks: Checks<'_>,
    deadline: i64,
    now: Timestamp,
) -> Result<Vec<&'a RollPod<'p>>, Halt> {
    if !tier.settled {
        return Err(Halt::Wait(
            "waiting for the StatefulSet controller to take the new template".into(),
        ));
    }
    // A replaced pod that is not Ready halts the roll; an outdated one that is not Ready is
    // down already, and replacing it costs nothing (it is how a reverted spec resumes).
    if let Some(halt) = (tier.pods.iter())
        .filter(|p| p.updated || p.terminating)
        .find_map(|p| pod_halt(p, deadline, now))
        .or_else(|| missing(tier))
    {
        return Err(halt);
    }
    let down: Vec<&RollPod> = tier.outdated().filter(|p| !p.ready).collect();
    if let Some(first) = down.first() {
        return Ok(same_server(tier, first, &down));
    }
    healthy(tier, obs)?;
    next_group(cluster, tier, obs, checks)
}

/// Deletes the group's pods, each told as an event with its role.
fn replace(tier: &TierPods, group: &[&RollPod], obs: &Observation, progress: &str) -> RollDecision {
    let roles: Vec<String> = group
        .iter()
        .map(|p| format!("{} ({})", p.name, role(tier.component, p, obs)))
        .collect();
    let message = format!("{progress}, replacing {}", roles.join(", "));
    RollDecision {
        actions: group
            .iter()
            .map(|p| Action::DeletePod {
                name: p.name.to_string(),
                uid: p.uid.to_string(),
            })
            .collect(),
        events: roles
            .iter()
            .map(|r| ClusterEvent {
                warning: false,
                reason: "PodReplaced".into(),
                note: format!("replacing {r} to run the current template ({progress})"),
            })
            .collect(),
        state: RollState::Rolling { message },
    }
}

fn halted(halt: Halt, context: impl Fn(String) -> String) -> RollState {
    match halt {
        Halt::Wait(why) => RollState::Rolling {
            message: context(why),
        },
        Halt::Stuck(why) => RollState::Stuck {
            message: context(why),
        },
    }
}

/// A pod that is not Ready: waited for, or stuck past the deadline (or failing for good).
fn pod_halt(pod: &RollPod, deadline: i64, now: Timestamp) -> Option<Halt> {
    if pod.ready && !pod.terminating {
        return None;
    }
    if pod.terminating {
        return Some(Halt::Wait(format!(
            "waiting for {} to be replaced",
            pod.name
        )));
    }
    if let Some(why) = &pod.failing {
        return Some(Halt::Stuck(format!("{} is not Ready: {why}", pod.name)));
    }
    let age = pod.created.map(|c| now.as_second() - c.as_second());
    // No clock in the message: it feeds an Event, sent again whenever the message changes.
    match age {
        Some(age) if age > deadline => Some(Halt::Stuck(format!(
            "{} is not Ready spec.rollout.progressDeadlineSeconds ({deadline} s) after it was created; change the spec back to resume with the previous template",
            pod.name
        ))),
        _ => Some(Halt::Wait(format!("waiting for {} to be Ready", pod.name))),
    }
}

/// Pods the StatefulSets ask for but that do not exist (yet): the controller recreates them.
fn missing(tier: &TierPods) -> Option<Halt> {
    let present = tier.pods.len() as i32;
    (present < tier.desired).then(|| {
        Halt::Wait(format!(
            "waiting for {} of {} pods to be recreated",
            tier.desired - present,
            tier.desired
        ))
    })
}

/// A tier before the rolling one: every pod there and Ready.
fn whole(tier: &TierPods, deadline: i64, now: Timestamp) -> Result<(), Halt> {
    let label = tier_label(tier.component);
    match tier
        .pods
        .iter()
        .find_map(|p| pod_halt(p, deadline, now))
        .or_else(|| missing(tier))
    {
        Some(Halt::Wait(why)) => Err(Halt::Wait(format!("{label}: {why}"))),
        Some(Halt::Stuck(why)) => Err(Halt::Stuck(format!("{label}: {why}"))),
        None => Ok(()),
    }
}

/// Curve's own health of a tier: every etcd member healthy, an MDS primary elected.
fn healthy(tier: &TierPods, obs: &Observation) -> Result<(), Halt> {
    match tier.component {
        Component::Etcd => match &obs.etcd_members {
            None => Err(Halt::Wait(
                "etcd: waiting for the members to answer their health".into(),
            )),
            Some(m) if m.healthy < m.total || m.total < tier.desired as u32 => Err(Halt::Wait(
                format!("etcd: {} of {} members healthy", m.healthy, m.total),
            )),
            Some(_) => Ok(()),
        },
        Component::Mds => match &obs.primary {
            PrimaryView::Elected { .. } => Ok(()),
            _ => Err(Halt::Wait(
                "mds: waiting for a primary to be elected".into(),
            )),
        },
        _ => Ok(()),
    }
}

fn role(component: Component, pod: &RollPod, obs: &Observation) -> &'static str {
    match component {
        Component::Etcd => match &obs.etcd_members {
            Some(m) if m.leader.as_deref() == Some(&*pod.name) => "leader, last",
            _ => "follower",
        },
        Component::Mds => match &obs.primary {
            PrimaryView::Elected { pod: primary, .. } if *primary == pod.name => "primary, last",
            _ => "standby",
        },
        _ => "server",
    }
}

/// The next pods to replace in a healthy tier with outdated pods.
fn next_group<'a, 'p>(
    cluster: &ValidatedCluster,
    tier: &'a TierPods<'p>,
    obs: &Observation,
    checks: Checks<'_>,
) -> Result<Vec<&'a RollPod<'p>>, Halt> {
    let node_zones = checks.node_zones;
    let mut outdated: Vec<&RollPod> = tier.outdated().collect();
    // Highest ordinal first (as the StatefulSet controller goes), the one with the role last.
    outdated.sort_by_key(|p| (role(tier.component, p, obs).ends_with("last"), -p.ordinal));
    match tier.component {
        Component::Etcd => {
            if tier.desired < 3 {
                return Err(Halt::Stuck(format!(
                    "etcd has {} member: restarting it stops etcd, there is no majority to keep; delete pod {} yourself to accept that, or grow spec.etcd.replicas first",
                    tier.desired, outdated[0].name
                )));
            }
            Ok(vec![outdated[0]])
        }
        Component::Mds => Ok(vec![outdated[0]]),
        _ => {
            if checks.pool_created
                && let Some(why) = health::roll_gate(checks.health)
            {
                return Err(Halt::Wait(why));
            }
            let first = outdated[0];
            let servers: BTreeSet<i32> = match cluster.spec.chunkservers.update_policy {
                ChunkServerUpdatePolicy::Server => BTreeSet::from([first.ordinal]),
                ChunkServerUpdatePolicy::Zone => {
                    let zone_of = |p: &RollPod| p.node.as_deref().and_then(|n| node_zones.get(n));
                    match zone_of(first) {
                        Some(zone) => outdated
                            .iter()
                            .filter(|p| zone_of(p) == Some(zone))
                            .map(|p| p.ordinal)
                            .collect(),
                        // Without a zone, a server is the failure domain.
                        None => BTreeSet::from([first.ordinal]),
                    }
                }
            };
            Ok(outdated
                .into_iter()
                .filter(|p| servers.contains(&p.ordinal))
                .collect())
        }
    }
}

/// Every outdated pod on the server (ordinal) of `first`, for ChunkServers; `first` alone
/// for the other tiers.
fn same_server<'a, 'p>(
    tier: &TierPods,
    first: &'a RollPod<'p>,
    down: &[&'a RollPod<'p>],
) -> Vec<&'a RollPod<'p>> {
    if tier.component != Component::ChunkServer {
        return vec![first];
    }
    down.iter()
        .copied()
        .filter(|p| p.ordinal == first.ordinal)
        .collect()
}

#[cfg(test)]
#[path = "roll_tests.rs"]
mod tests;
