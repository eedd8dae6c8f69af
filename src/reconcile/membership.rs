//! etcd membership: growing, shrinking and replacing members one safe step at a time. Pure:
//! from the spec's size, the member list etcd answered, the pods and claims, and the step the
//! operator recorded, to the one member-list change to make now, the size of the StatefulSet,
//! what the members' config says, and the step to record (before the change is sent).
//!
//! The rules: one change at a time, and only while every member is healthy (a replacement
//! needs the rest healthy and a majority without the lost member); new members join as
//! learners and are promoted once etcd lets them (caught up); a member leaves the member list
//! before its pod goes, never while it leads (leadership moves first); a recorded step is
//! finished by looking at the member list, never repeated.

use std::sync::Arc;

use super::model::claim::ClaimReading;
use super::model::event::ClusterEvent;
use super::model::pod::{ContainerRun, PodReading, Terminated};
use super::model::states::MembershipState;
use crate::api::{EtcdStep, EtcdStepAction};
use crate::desired::config::EtcdLayout;
use crate::desired::etcd::{DATA_CHECK_CONTAINER, DATA_LOST_MARKER};
use crate::etcd::{Member, MemberChange, MemberHealth};

/// What the membership logic reads.
#[derive(Clone)]
pub struct MembershipInput<'a> {
    /// `spec.etcd.replicas`.
    pub target: i32,
    /// The etcd StatefulSet's name (= the member and pod name prefix).
    pub set: &'a str,
    /// The peer URL of the member with this ordinal.
    pub peer_url: &'a dyn Fn(i32) -> String,
    /// `spec.replicas` of the etcd StatefulSet; `None` before it exists.
    pub set_replicas: Option<i32>,
    /// The member list with each member's health; `None` when etcd did not answer (or is not
    /// read yet: it is read once the MDS tier exists).
    pub members: Option<&'a MemberHealth>,
    pub pods: &'a [Arc<PodReading>],
    pub claims: &'a [Arc<ClaimReading>],
    /// The name of a member's data claim.
    pub claim_of: &'a dyn Fn(&str) -> String,
    /// Recorded: voting members when the last change completed (`None`: not bootstrapped).
    pub settled: Option<i32>,
    /// Recorded: the step in progress.
    pub step: Option<&'a EtcdStep>,
    /// `spec.cleanup` deletes data: a removed member's claim is deleted too.
    pub deletes_claims: bool,
    /// etcd pods not on their StatefulSet's current template: a roll goes first.
    pub outdated_pods: i32,
}

/// What the reconciler does about membership in this pass.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct MembershipDecision {
    pub layout: EtcdLayout,
    /// What to record (written before `change` is sent).
    pub settled: Option<i32>,
    pub step: Option<EtcdStep>,
    /// The one member-list change to make now.
    pub change: Option<MemberChange>,
    /// A pod to delete (uid-checked): a member's pod that failed its data check before the
    /// operator re-added the member, restarted now rather than after its back-off.
    pub restart_pod: Option<(String, String)>,
    /// A removed member's claim to delete (`spec.cleanup` says so).
    pub delete_claim: Option<String>,
    pub state: MembershipState,
    pub events: Vec<ClusterEvent>,
}

/// The ordinal of a pod (or member) of the StatefulSet `set`.
pub fn ordinal(set: &str, name: &str) -> Option<i32> {
    name.strip_prefix(set)?.strip_prefix('-')?.parse().ok()
}

fn pod<'a>(pods: &'a [Arc<PodReading>], name: &str) -> Option<&'a PodReading> {
    super::observe::pod_named(pods, name)
}

/// The pod's data check refuses to start it now: its member's data is gone. (A check that
/// failed before and passed since is not: its last failure stays in `lastState`.)
pub fn lost_data(pod: &PodReading) -> bool {
    let refused = |t: &Terminated| {
        t.exit_code != 0 && (t.message.as_deref()).is_some_and(|m| m.contains(DATA_LOST_MARKER))
    };
    pod.init_containers.iter().any(|c| {
        let state = c.state.as_ref();
        c.name == DATA_CHECK_CONTAINER
            && match state.and_then(ContainerRun::terminated) {
                Some(now) => refused(now),
                // Waiting to run again (back-off): the last run tells.
                None => {
                    state.is_some_and(|s| s.waiting().is_some())
                        && c.last_terminated.as_ref().is_some_and(refused)
                }
            }
    })
}

fn hex(id: u64) -> String {
    format!("{id:x}")
}

fn parse_hex(id: Option<&String>) -> Option<u64> {
    id.and_then(|id| u64::from_str_radix(id, 16).ok())
}

impl MembershipInput<'_> {
    fn member_name(&self, ordinal: i32) -> String {
        format!("{}-{ordinal}", self.set)
    }

    /// The step that adds or removes the member with this ordinal.
    fn step(
        &self,
        action: EtcdStepAction,
        ordinal: i32,
        id: Option<u64>,
        reason: String,
    ) -> EtcdStep {
        EtcdStep {
            action,
            member: self.member_name(ordinal),
            peer_url: (self.peer_url)(ordinal),
            member_id: id.map(hex),
            reason,
        }
    }

    fn by_peer_url<'m>(&self, members: &'m MemberHealth, url: &str) -> Option<&'m Member> {
        members
            .members
            .iter()
            .find(|m| m.peer_urls.iter().any(|u| u == url))
    }

    fn voters(members: &MemberHealth) -> i32 {
        members.members.iter().filter(|m| !m.is_learner).count() as i32
    }

    /// A healthy voter other than `not`, lowest ordinal first: where leadership goes.
    fn successor(&self, members: &MemberHealth, not: u64) -> Option<u64> {
        let mut candidates: Vec<&Member> = (members.members.iter())
            .filter(|m| m.id != not && m.healthy && !m.is_learner)
            .collect();
        candidates.sort_by_key(|m| ordinal(self.set, &m.name).unwrap_or(i32::MAX));
        candidates.first().map(|m| m.id)
    }
}

/// Quorum of `n` voting members.
pub fn quorum(n: i32) -> i32 {
    n / 2 + 1
}

/// The StatefulSet size and the members' config for `pods` pods. Curve's daemons list the
/// settled members: a grow shows in their lists once complete, a shrink at once (the members
/// that stay).
fn layout(input: &MembershipInput, pods: i32, joining: Option<String>) -> EtcdLayout {
    let endpoints = input
        .settled
        .map_or(pods, |s| s.min(input.target).min(pods).max(1));
    EtcdLayout {
        pods,
        endpoints,
        existing: input.settled.is_some(),
        joining,
    }
}

pub fn decide(input: &MembershipInput) -> MembershipDecision {
    let settled = input.settled;
    let pods_now = input.set_replicas.unwrap_or(input.target);
    let layout = |pods: i32, joining: Option<String>| layout(input, pods, joining);
    let mut decision = MembershipDecision {
        layout: layout(pods_now, None),
        settled,
        step: input.step.cloned(),
        ..MembershipDecision::default()
    };
    // An empty list is no answer: etcd always lists at least the member answering.
    let Some(members) = input.members.filter(|m| !m.members.is_empty()) else {
        if let Some(step) = input.step {
            decision.layout = layout(pods_now, joining_of(step));
            decision.state = MembershipState::Changing {
                message: format!(
                    "etcd: {} {}: waiting for etcd to answer its member list",
                    verb(step.action),
                    step.member
                ),
            };
        } else if let Some(settled) = settled.filter(|s| *s != input.target) {
            decision.state = MembershipState::Blocked {
                message: format!(
                    "spec.etcd.replicas: {settled} → {} waits: etcd does not answer its member list",
                    input.target
                ),
            };
        } else if let Some(initial) = input.set_replicas.filter(|r| *r != input.target) {
            decision.state = before_bootstrap(initial, input.target, "no member list yet");
        }
        return decision;
    };
    let Some(set_replicas) = input.set_replicas else {
        return decision;
    };
    if settled.is_none() {
        // Bootstrapped once every initial member runs, healthy, with nobody added since.
        let bootstrapped = members.total as i32 == set_replicas
            && members.healthy == members.total
            && members
                .members
                .iter()
                .all(|m| !m.is_learner && !m.name.is_empty());
        if bootstrapped {
            decision.settled = Some(set_replicas);
            decision.layout.existing = true;
        } else if set_replicas != input.target {
            let answer = format!("{} of {} members healthy", members.healthy, members.total);
            decision.state = before_bootstrap(set_replicas, input.target, &answer);
        }
        return decision;
    }
    let pass = Pass {
        input,
        members,
        set_replicas,
    };
    match input.step {
        Some(step) => pass.continue_step(step, decision),
        None => pass.next_step(decision),
    }
}

/// A size change asked for before the initial members ever ran together: it waits, since
/// members join one at a time only a cluster that is up (and the initial members were started
/// with the initial size's member list).
fn before_bootstrap(initial: i32, target: i32, now: &str) -> MembershipState {
    MembershipState::Blocked {
        message: format!(
            "spec.etcd.replicas: {initial} → {target} waits until the {initial} initial etcd members are up ({now}); then members are {} one at a time",
            if target > initial { "added" } else { "removed" }
        ),
    }
}

fn verb(action: EtcdStepAction) -> &'static str {
    match action {
        EtcdStepAction::Add => "adding",
        EtcdStepAction::Remove => "removing",
        EtcdStepAction::Replace => "replacing",
    }
}

/// The member the recorded step adds (or re-adds) and etcd has not promoted yet, if any: it is
/// a learner, or not a member at all, until the step ends.
pub fn joining(record: Option<&crate::api::OperatorRecord>) -> Option<&str> {
    let step = record?.etcd_step.as_ref()?;
    (step.action != EtcdStepAction::Remove).then_some(step.member.as_str())
}

fn joining_of(step: &EtcdStep) -> Option<String> {
    (step.action != EtcdStepAction::Remove).then(|| step.member.clone())
}

/// The state while `step` goes on: what it does to its member now.
/// Why a growth waits for the admin: `claim`, kept by `spec.cleanup` from an earlier member
/// of that name, would start the new member on a removed member's data.
pub fn retained_claim_blocks(direction: &str, claim: &str, member: &str) -> String {
    format!(
        "{direction} waits: claim {claim} holds the data of an earlier member {member} (kept by spec.cleanup); delete it to let a new member join"
    )
}

/// The claim [`retained_claim_blocks`] names, read back from the text that carries it.
pub fn retained_claim_named(text: &str) -> Option<&str> {
    let (before, _) = text.split_once(" holds the data of an earlier member ")?;
    before.rsplit_once("claim ").map(|(_, claim)| claim)
}

fn changing(step: &EtcdStep, message: impl std::fmt::Display) -> MembershipState {
    MembershipState::Changing {
        message: format!("etcd: {} {}: {message}", verb(step.action), step.member),
    }
}

fn blocked(message: String) -> MembershipState {
    MembershipState::Blocked { message }
}

/// One pass over a bootstrapped cluster whose member list etcd answered.
struct Pass<'a> {
    input: &'a MembershipInput<'a>,
    members: &'a MemberHealth,
    set_replicas: i32,
}

/// Carrying on a recorded step, one function per state the member list shows it in.
impl Pass<'_> {
    fn layout(&self, pods: i32, joining: Option<String>) -> EtcdLayout {
        layout(self.input, pods, joining)
    }

    /// The ordinal of the step's member.
    fn ordinal_of(&self, step: &EtcdStep) -> i32 {
        ordinal(self.input.set, &step.member).unwrap_or(self.set_replicas)
    }

    /// The member the step removes (or replaces), while the member list still holds it.
    fn recorded_member(&self, step: &EtcdStep) -> Option<&Member> {
        let id = parse_hex(step.member_id.as_ref())?;
        self.members.members.iter().find(|m| m.id == id)
    }

    /// A recorded step, carried on from what the member list shows now.
    fn continue_step(&self, step: &EtcdStep, decision: MembershipDecision) -> MembershipDecision {
        match (step.action, self.recorded_member(step)) {
            (EtcdStepAction::Remove, Some(old)) => self.leave_member_list(step, old, decision),
            (EtcdStepAction::Remove, None) => self.finish_removal(step, decision),
            (EtcdStepAction::Add | EtcdStepAction::Replace, Some(old)) => {
                self.remove_replaced_member(step, old, decision)
            }
            // Add, or the re-add half of Replace.
            (EtcdStepAction::Add | EtcdStepAction::Replace, None) => self.join(step, decision),
        }
    }

    /// Remove: the member leaves the member list, once leadership moved off it.
    fn leave_member_list(
        &self,
        step: &EtcdStep,
        old: &Member,
        mut decision: MembershipDecision,
    ) -> MembershipDecision {
        decision.layout = self.layout(self.ordinal_of(step) + 1, None);
        if old.is_leader {
            return self.move_leadership(step, old, decision);
        }
        decision.change = Some(MemberChange::Remove { id: old.id });
        decision.events.push(ClusterEvent::normal(
            "EtcdMemberRemoved",
            format!("removed etcd member {} ({})", step.member, step.reason),
        ));
        decision.state = changing(step, "removing it from the member list");
        decision
    }

    /// A leader is never removed: leadership goes to a healthy voter first.
    fn move_leadership(
        &self,
        step: &EtcdStep,
        leader: &Member,
        mut decision: MembershipDecision,
    ) -> MembershipDecision {
        decision.state = match self.input.successor(self.members, leader.id) {
            Some(to) => {
                decision.change = Some(MemberChange::MoveLeader { to });
                changing(step, format!("moving etcd leadership to {to:x}"))
            }
            None => blocked(format!(
                "etcd: {} leads and no other member is healthy to take over",
                step.member
            )),
        };
        decision
    }

    /// Remove, out of the member list: its pod goes, then its claim per spec.cleanup; then
    /// the step is done.
    fn finish_removal(
        &self,
        step: &EtcdStep,
        mut decision: MembershipDecision,
    ) -> MembershipDecision {
        decision.layout = self.layout(self.ordinal_of(step), None);
        if pod(self.input.pods, &step.member).is_some() {
            decision.state = changing(step, "out of the member list; waiting for its pod to go");
            return decision;
        }
        let claim = (self.input.claim_of)(&step.member);
        let claim_exists = self.input.claims.iter().any(|c| c.name == claim);
        if self.input.deletes_claims && claim_exists {
            decision.delete_claim = Some(claim);
            decision.state = changing(step, "its pod is gone; deleting its claim (spec.cleanup)");
            return decision;
        }
        decision.step = None;
        decision.state = MembershipState::Settled;
        decision.settled = Some(MembershipInput::voters(self.members));
        if claim_exists {
            decision.events.push(ClusterEvent::normal(
                "EtcdClaimRetained",
                format!(
                    "etcd member {} is gone; its claim {claim} is kept (spec.cleanup retains data)",
                    step.member
                ),
            ));
        }
        decision
    }

    /// Replace: the member whose data is gone leaves the member list first.
    fn remove_replaced_member(
        &self,
        step: &EtcdStep,
        old: &Member,
        mut decision: MembershipDecision,
    ) -> MembershipDecision {
        decision.layout = self.layout(self.set_replicas, None);
        decision.change = Some(MemberChange::Remove { id: old.id });
        decision.state = changing(
            step,
            format!("removing its old member {:x} ({})", old.id, step.reason),
        );
        decision
    }

    /// Add (or re-add): the member joins as a learner, then is promoted to a voter.
    fn join(&self, step: &EtcdStep, mut decision: MembershipDecision) -> MembershipDecision {
        let Some(new) = self.input.by_peer_url(self.members, &step.peer_url) else {
            return self.add_learner(step, decision);
        };
        let pods = self.set_replicas.max(self.ordinal_of(step) + 1);
        decision.layout = self.layout(pods, Some(step.member.clone()));
        if new.is_learner {
            self.promote(step, new, decision)
        } else {
            self.finish_join(step, decision)
        }
    }

    /// Not in the member list yet: added as a learner, while every member is healthy.
    fn add_learner(&self, step: &EtcdStep, mut decision: MembershipDecision) -> MembershipDecision {
        let members = self.members;
        if members.healthy < members.total {
            decision.state = changing(
                step,
                format!(
                    "waiting for every member to be healthy before adding it ({} of {} healthy)",
                    members.healthy, members.total
                ),
            );
            return decision;
        }
        decision.layout = self.layout(self.set_replicas, None);
        decision.change = Some(MemberChange::AddLearner {
            peer_url: step.peer_url.clone(),
        });
        decision.events.push(ClusterEvent::normal(
            "EtcdMemberAdded",
            format!(
                "added {} to etcd as a learner ({})",
                step.member, step.reason
            ),
        ));
        decision.state = changing(step, "adding it as a learner");
        decision
    }

    /// A learner is promoted once its pod runs (etcd refuses until it caught up); a pod that
    /// found no data before its member was re-added is restarted first.
    fn promote(
        &self,
        step: &EtcdStep,
        learner: &Member,
        mut decision: MembershipDecision,
    ) -> MembershipDecision {
        decision.state = match pod(self.input.pods, &step.member) {
            Some(p) if lost_data(p) => {
                // Checked before the member was re-added: start it again with the new config.
                decision.restart_pod = Some((p.name.clone(), p.uid.clone()));
                changing(step, "restarting its pod, which found no data before")
            }
            _ if learner.name.is_empty() => {
                changing(step, "added as a learner; waiting for its pod to start")
            }
            _ => {
                decision.change = Some(MemberChange::Promote { id: learner.id });
                changing(
                    step,
                    "promoting the learner (etcd allows it once the learner has caught up)",
                )
            }
        };
        decision
    }

    /// The member votes: the step is done.
    fn finish_join(&self, step: &EtcdStep, mut decision: MembershipDecision) -> MembershipDecision {
        decision.step = None;
        decision.state = MembershipState::Settled;
        let voters = MembershipInput::voters(self.members);
        if step.action == EtcdStepAction::Replace || voters >= self.input.target {
            decision.settled = Some(voters);
        }
        let (reason, note) = match step.action {
            EtcdStepAction::Replace => (
                "EtcdMemberReplaced",
                format!("replaced etcd member {} ({})", step.member, step.reason),
            ),
            _ => (
                "EtcdMemberPromoted",
                format!("promoted etcd learner {} to a voting member", step.member),
            ),
        };
        decision.events.push(ClusterEvent::normal(reason, note));
        decision
    }
}

/// Starting the next step: replacing a member that lost its data, or one member more or less.
impl Pass<'_> {
    /// No step in progress: start the next one, if the spec or a lost member asks for one and
    /// the cluster is healthy enough.
    fn next_step(&self, mut decision: MembershipDecision) -> MembershipDecision {
        let voters = MembershipInput::voters(self.members);
        if let Some(message) = self.held_back(voters) {
            decision.state = blocked(message);
            return decision;
        }
        let lost = self.members_without_data();
        if !lost.is_empty() {
            return self.replace_lost(&lost, decision);
        }
        if self.input.target != voters {
            return self.resize(voters, decision);
        }
        if decision.settled.unwrap_or(voters) != voters {
            decision.settled = Some(voters);
        }
        decision
    }

    /// Why no step starts at all: the etcd pods' roll goes before a size change, and a learner
    /// the operator did not add blocks every change.
    fn held_back(&self, voters: i32) -> Option<String> {
        let target = self.input.target;
        if self.input.outdated_pods > 0 && (target != voters) {
            return Some(format!(
                "spec.etcd.replicas: {voters} → {target} waits for the etcd pods' roll ({} pods to replace)",
                self.input.outdated_pods
            ));
        }
        let learner = self.members.members.iter().find(|m| m.is_learner)?;
        Some(format!(
            "etcd has a learner the operator did not add ({:x}, peer {}): remove it (etcdctl member remove) before the operator changes membership",
            learner.id,
            learner.peer_urls.join(",")
        ))
    }

    /// Members whose pod found no data.
    fn members_without_data(&self) -> Vec<&Member> {
        (self.members.members.iter())
            .filter(|m| !m.name.is_empty() && pod(self.input.pods, &m.name).is_some_and(lost_data))
            .collect()
    }

    /// Members that lost their data are replaced one at a time, with the rest healthy and a
    /// majority without the one replaced.
    fn replace_lost(
        &self,
        lost: &[&Member],
        mut decision: MembershipDecision,
    ) -> MembershipDecision {
        let first = lost[0];
        let total = self.members.total as i32;
        let others_healthy = (self.members.members.iter())
            .filter(|m| m.id != first.id && m.healthy)
            .count() as i32;
        if others_healthy < quorum(total - 1) || others_healthy + (lost.len() as i32) < total {
            let names: Vec<&str> = lost.iter().map(|m| m.name.as_str()).collect();
            decision.state = blocked(format!(
                "etcd members {} lost their data; they are replaced only while the rest is healthy and keeps a majority ({others_healthy} of {} others healthy)",
                names.join(", "),
                total - 1
            ));
            return decision;
        }
        let step = self.input.step(
            EtcdStepAction::Replace,
            ordinal(self.input.set, &first.name).unwrap_or_default(),
            Some(first.id),
            "its pod found no data: its claim was deleted or its volume lost".into(),
        );
        decision.change = Some(MemberChange::Remove { id: first.id });
        decision.state = MembershipState::Changing {
            message: format!("etcd: replacing {} ({})", step.member, step.reason),
        };
        decision.step = Some(step);
        decision
    }

    /// The spec asks for another size: one member more or less per step, and only while every
    /// member is healthy.
    fn resize(&self, voters: i32, mut decision: MembershipDecision) -> MembershipDecision {
        let (members, target) = (self.members, self.input.target);
        let direction = format!("spec.etcd.replicas: {voters} → {target}");
        if members.healthy < members.total || members.total as i32 != self.set_replicas {
            decision.state = blocked(format!(
                "{direction} waits: {} of {} etcd members are healthy; the size changes only while every member is",
                members.healthy, members.total
            ));
            return decision;
        }
        let steps = (target - voters).abs();
        let one_at_a_time = if steps > 1 {
            format!(", one member at a time ({steps} steps)")
        } else {
            String::new()
        };
        let reason = format!("{direction}{one_at_a_time}");
        if target > voters {
            self.grow(voters, &direction, reason, decision)
        } else {
            self.shrink(voters, &direction, reason, decision)
        }
    }

    /// One member more: the next ordinal joins as a learner, unless a kept claim holds the data
    /// of an earlier member of that name.
    fn grow(
        &self,
        voters: i32,
        direction: &str,
        reason: String,
        mut decision: MembershipDecision,
    ) -> MembershipDecision {
        let member = self.input.member_name(voters);
        let claim = (self.input.claim_of)(&member);
        if self.input.claims.iter().any(|c| c.name == claim) {
            decision.state = blocked(retained_claim_blocks(direction, &claim, &member));
            return decision;
        }
        let step = self.input.step(EtcdStepAction::Add, voters, None, reason);
        decision.change = Some(MemberChange::AddLearner {
            peer_url: step.peer_url.clone(),
        });
        decision.events.push(ClusterEvent::normal(
            "EtcdMemberAdded",
            format!("added {member} to etcd as a learner ({})", step.reason),
        ));
        decision.state = MembershipState::Changing {
            message: format!("etcd: adding {member} as a learner ({})", step.reason),
        };
        decision.step = Some(step);
        decision
    }

    /// One member less: the highest ordinal leaves.
    fn shrink(
        &self,
        voters: i32,
        direction: &str,
        reason: String,
        mut decision: MembershipDecision,
    ) -> MembershipDecision {
        let member = self.input.member_name(voters - 1);
        let Some(leaving) = self.members.members.iter().find(|m| m.name == member) else {
            decision.state = blocked(format!(
                "{direction} waits: {member} is not in etcd's member list"
            ));
            return decision;
        };
        let step = self
            .input
            .step(EtcdStepAction::Remove, voters - 1, Some(leaving.id), reason);
        decision.step = Some(step.clone());
        // The first pass of the step: the same as any later one.
        self.continue_step(&step, decision)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reconcile::fixtures::read;
    use kube::ResourceExt;
    use serde_json::json;

    const SET: &str = "demo-etcd";

    fn url(ordinal: i32) -> String {
        format!("http://{SET}-{ordinal}.{SET}.ns.svc:2380")
    }

    fn claim_of(pod: &str) -> String {
        format!("data-{pod}")
    }

    fn member(ordinal: i32, learner: bool, started: bool) -> Member {
        Member {
            id: 0x100 + ordinal as u64,
            name: if started {
                format!("{SET}-{ordinal}")
            } else {
                String::new()
            },
            peer_urls: vec![url(ordinal)],
            is_learner: learner,
            healthy: started,
            serving: started,
            is_leader: false,
            ..Member::default()
        }
    }

    /// A fake etcd and the pods of its StatefulSet, moved by the decisions.
    #[derive(Clone)]
    struct World {
        target: i32,
        members: Vec<Member>,
        set_replicas: Option<i32>,
        pods: Vec<k8s_openapi::api::core::v1::Pod>,
        claims: Vec<Arc<ClaimReading>>,
        settled: Option<i32>,
        step: Option<EtcdStep>,
        /// Learners catch up (promotion works) only once this is true.
        caught_up: bool,
        deletes_claims: bool,
    }

    fn pod_named(name: &str, uid: &str) -> k8s_openapi::api::core::v1::Pod {
        serde_json::from_value(json!({"metadata": {"name": name, "uid": uid}})).unwrap()
    }

    fn claim(name: &str) -> Arc<ClaimReading> {
        ClaimReading::shared(serde_json::from_value(json!({"metadata": {"name": name}})).unwrap())
    }

    impl World {
        fn running(n: i32, target: i32) -> World {
            let mut members: Vec<Member> = (0..n).map(|i| member(i, false, true)).collect();
            members[0].is_leader = true;
            World {
                target,
                members,
                set_replicas: Some(n),
                pods: (0..n)
                    .map(|i| pod_named(&format!("{SET}-{i}"), &format!("u{i}")))
                    .collect(),
                claims: (0..n)
                    .map(|i| claim(&claim_of(&format!("{SET}-{i}"))))
                    .collect(),
                settled: Some(n),
                step: None,
                caught_up: true,
                deletes_claims: false,
            }
        }

        fn health(&self) -> MemberHealth {
            MemberHealth {
                leader: (self.members.iter())
                    .find(|m| m.is_leader)
                    .map(|m| m.name.clone()),
                healthy: self.members.iter().filter(|m| m.healthy).count() as u32,
                total: self.members.len() as u32,
                members: self.members.clone(),
            }
        }

        fn decide(&self) -> MembershipDecision {
            let health = self.health();
            decide(&input(self, &health, &read(self.pods.clone())))
        }

        /// Carries out a decision as the write step, etcd, the StatefulSet controller and the
        /// kubelet would. Returns what etcd was asked.
        fn carry_out(&mut self, d: &MembershipDecision) -> Option<MemberChange> {
            // The record first.
            self.settled = d.settled;
            self.step = d.step.clone();
            match &d.change {
                Some(MemberChange::AddLearner { peer_url }) => {
                    assert!(
                        !self.members.iter().any(|m| m.peer_urls.contains(peer_url)),
                        "a duplicate member for {peer_url}"
                    );
                    let ordinal: i32 = peer_url
                        .trim_start_matches(&format!("http://{SET}-"))
                        .split('.')
                        .next()
                        .unwrap()
                        .parse()
                        .unwrap();
                    let mut m = member(ordinal, true, false);
                    m.id += 0x1000 * (self.members.len() as u64 + 1);
                    self.members.push(m);
                }
                Some(MemberChange::Promote { id }) if self.caught_up => {
                    let m = self.members.iter_mut().find(|m| m.id == *id).unwrap();
                    assert!(m.is_learner && !m.name.is_empty());
                    m.is_learner = false;
                }
                Some(MemberChange::Promote { .. }) => {}
                Some(MemberChange::Remove { id }) => {
                    let m = self.members.iter().find(|m| m.id == *id).unwrap();
                    assert!(!m.is_leader, "removed the leader");
                    self.members.retain(|m| m.id != *id);
                }
                Some(MemberChange::MoveLeader { to }) => {
                    for m in &mut self.members {
                        m.is_leader = m.id == *to;
                    }
                }
                Some(other @ MemberChange::Defragment { .. }) => {
                    panic!("membership asked for {other:?}")
                }
                None => {}
            }
            // The StatefulSet controller and the kubelet: pods follow the size; a new pod's
            // member starts (and names itself) when its data check lets it.
            let pods = d.layout.pods;
            self.set_replicas = Some(pods);
            self.pods
                .retain(|p| ordinal(SET, &p.name_any()).unwrap() < pods);
            for i in 0..pods {
                let name = format!("{SET}-{i}");
                if !self.pods.iter().any(|p| p.name_any() == name) {
                    self.pods.push(pod_named(&name, &format!("u{i}-new")));
                    if !self.claims.iter().any(|c| c.name == claim_of(&name)) {
                        self.claims.push(claim(&claim_of(&name)));
                    }
                }
                let joining = d.layout.joining.as_deref() == Some(name.as_str());
                if let Some(m) = self.members.iter_mut().find(|m| m.peer_urls == [url(i)])
                    && m.name.is_empty()
                    && joining
                {
                    m.name = name.clone();
                    m.healthy = true;
                }
            }
            if let Some(name) = &d.delete_claim {
                self.claims.retain(|c| c.name != *name);
            }
            d.change.clone()
        }

        /// Decides and carries out until nothing changes; every decision is also made a second
        /// time on the same state, as a restarted operator would, and must not ask anything
        /// new of etcd (the change is then the same, or none).
        fn run(&mut self) -> (Vec<MemberChange>, Vec<String>) {
            let (mut changes, mut events) = (Vec::new(), Vec::new());
            for _ in 0..60 {
                let d = self.decide();
                let before = self.clone();
                let change = self.carry_out(&d);
                // An operator killed after the record, before or after the change: the same
                // state decides nothing new.
                let mut replay = before.clone();
                replay.settled = d.settled;
                replay.step = d.step.clone();
                if d.change.is_some() {
                    assert_eq!(
                        replay.decide().change,
                        d.change,
                        "replayed after the record"
                    );
                }
                events.extend(d.events.iter().map(|e| e.reason.clone()));
                let voters = self.members.iter().filter(|m| !m.is_learner).count() as i32;
                match change {
                    Some(c) => changes.push(c),
                    None if matches!(d.state, MembershipState::Blocked { .. }) => break,
                    None if self.step.is_none()
                        && voters == self.target
                        && before.set_replicas == self.set_replicas
                        && d.delete_claim.is_none() =>
                    {
                        break;
                    }
                    None => {}
                }
            }
            (changes, events)
        }
    }

    fn kinds(changes: &[MemberChange]) -> Vec<&'static str> {
        changes
            .iter()
            .map(|c| match c {
                MemberChange::AddLearner { .. } => "add-learner",
                MemberChange::Promote { .. } => "promote",
                MemberChange::Remove { .. } => "remove",
                MemberChange::MoveLeader { .. } => "move-leader",
                MemberChange::Defragment { .. } => "defragment",
            })
            .collect()
    }

    #[test]
    fn a_size_change_before_the_initial_members_ever_ran_waits_and_says_so() {
        // 3 initial members, one not started yet: the cluster was never up.
        let mut w = World::running(3, 5);
        w.settled = None;
        w.members[2].name = String::new();
        w.members[2].healthy = false;
        let d = w.decide();
        assert_eq!(d.change, None);
        assert_eq!(d.layout.pods, 3, "the StatefulSet keeps its initial size");
        assert_eq!(
            d.state,
            MembershipState::Blocked {
                message: "spec.etcd.replicas: 3 → 5 waits until the 3 initial etcd members are up (2 of 3 members healthy); then members are added one at a time".into()
            }
        );
        // No member list at all yet: said too.
        let pods = read(w.pods.clone());
        let d = decide(&input(&w, &MemberHealth::default(), &pods));
        assert!(
            matches!(&d.state, MembershipState::Blocked { message } if message.contains("(no member list yet)")),
            "{:?}",
            d.state
        );
        // Once the initial members run, the growth proceeds one learner at a time.
        w.members[2].name = format!("{SET}-2");
        w.members[2].healthy = true;
        let d = w.decide();
        assert_eq!(d.settled, Some(3));
        assert_eq!(d.state, MembershipState::Settled);
        w.carry_out(&d);
        let (changes, _) = w.run();
        assert_eq!(
            kinds(&changes),
            ["add-learner", "promote", "add-learner", "promote"]
        );
    }

    #[test]
    fn grow_adds_one_learner_at_a_time_and_promotes_it_before_the_next() {
        let mut w = World::running(3, 5);
        let (changes, events) = w.run();
        assert_eq!(
            kinds(&changes),
            ["add-learner", "promote", "add-learner", "promote"]
        );
        assert_eq!(
            events,
            [
                "EtcdMemberAdded",
                "EtcdMemberPromoted",
                "EtcdMemberAdded",
                "EtcdMemberPromoted"
            ]
        );
        assert_eq!(w.members.iter().filter(|m| !m.is_learner).count(), 5);
        assert_eq!(
            (w.settled, w.set_replicas, w.step.clone()),
            (Some(5), Some(5), None)
        );
        // The members' daemons list all 5 only now, and a new pod starts as an existing member.
        let d = w.decide();
        assert_eq!(
            d.layout,
            EtcdLayout {
                pods: 5,
                endpoints: 5,
                existing: true,
                joining: None
            }
        );
        assert_eq!(d.state, MembershipState::Settled);
    }

    #[test]
    fn while_a_learner_joins_the_daemons_keep_the_old_members_and_the_pod_waits_for_its_add() {
        let mut w = World::running(3, 5);
        let first = w.decide();
        // The pod is not created before etcd knows the member.
        assert_eq!(first.layout.pods, 3);
        assert_eq!(
            first.change,
            Some(MemberChange::AddLearner { peer_url: url(3) })
        );
        assert_eq!(first.step.as_ref().unwrap().action, EtcdStepAction::Add);
        assert_eq!(
            first.step.as_ref().unwrap().reason,
            "spec.etcd.replicas: 3 → 5, one member at a time (2 steps)"
        );
        w.caught_up = false;
        w.carry_out(&first);
        let second = w.decide();
        assert_eq!(
            second.layout,
            EtcdLayout {
                pods: 4,
                endpoints: 3,
                existing: true,
                joining: Some(format!("{SET}-3"))
            }
        );
        w.carry_out(&second);
        // Started, not caught up: promotion is asked again and again, nothing else.
        for _ in 0..3 {
            let d = w.decide();
            assert!(matches!(d.change, Some(MemberChange::Promote { .. })));
            assert!(d.events.is_empty());
            assert!(
                matches!(&d.state, MembershipState::Changing { message } if message.contains("promoting"))
            );
            w.carry_out(&d);
        }
    }

    #[test]
    fn shrink_moves_leadership_off_the_leaving_member_then_removes_it_then_its_pod() {
        let mut w = World::running(5, 3);
        for m in &mut w.members {
            m.is_leader = m.name == format!("{SET}-4");
        }
        let (changes, events) = w.run();
        assert_eq!(kinds(&changes), ["move-leader", "remove", "remove"]);
        assert_eq!(
            events,
            [
                "EtcdMemberRemoved",
                "EtcdClaimRetained",
                "EtcdMemberRemoved",
                "EtcdClaimRetained"
            ]
        );
        // Leadership went to the lowest healthy ordinal.
        assert_eq!(changes[0], MemberChange::MoveLeader { to: 0x100 });
        assert_eq!((w.settled, w.set_replicas), (Some(3), Some(3)));
        assert_eq!(w.pods.len(), 3);
        // spec.cleanup retains: the claims stay.
        assert_eq!(w.claims.len(), 5);
    }

    #[test]
    fn a_member_leaves_the_member_list_before_its_pod_goes() {
        let mut w = World::running(3, 1);
        let d = w.decide();
        assert_eq!(
            d.layout.pods, 3,
            "the pod stays until the member is removed"
        );
        assert_eq!(
            d.layout.endpoints, 1,
            "the daemons list the member that stays at once"
        );
        assert!(matches!(d.change, Some(MemberChange::Remove { id: 0x102 })));
        w.carry_out(&d);
        assert_eq!(w.decide().layout.pods, 2);
    }

    #[test]
    fn shrink_deletes_the_claims_when_spec_cleanup_deletes_data() {
        let mut w = World::running(5, 3);
        w.deletes_claims = true;
        w.run();
        let names: Vec<String> = w.claims.iter().map(|c| c.name.clone()).collect();
        assert_eq!(
            names,
            ["data-demo-etcd-0", "data-demo-etcd-1", "data-demo-etcd-2"]
        );
    }

    #[test]
    fn growing_onto_a_kept_claim_is_refused_naming_it() {
        let mut w = World::running(5, 3);
        w.run();
        w.target = 5;
        let d = w.decide();
        assert_eq!(d.change, None);
        assert_eq!(
            d.state,
            MembershipState::Blocked {
                message: "spec.etcd.replicas: 3 → 5 waits: claim data-demo-etcd-3 holds the data of an earlier member demo-etcd-3 (kept by spec.cleanup); delete it to let a new member join".into()
            }
        );
        // What the soak's admin reads back from the condition to delete it.
        let MembershipState::Blocked { message } = &d.state else {
            unreachable!()
        };
        let condition = format!("Progressing EtcdMembershipBlocked: {message}");
        assert_eq!(retained_claim_named(&condition), Some("data-demo-etcd-3"));
        assert_eq!(
            retained_claim_named("etcd member demo-etcd-1 is unhealthy"),
            None
        );
        w.claims.retain(|c| c.name != "data-demo-etcd-3");
        assert!(matches!(
            w.decide().change,
            Some(MemberChange::AddLearner { .. })
        ));
    }

    #[test]
    fn no_change_starts_while_a_member_is_unhealthy_or_a_roll_runs() {
        let mut w = World::running(3, 5);
        w.members[2].healthy = false;
        let d = w.decide();
        assert_eq!(d.change, None);
        assert_eq!(
            d.state,
            MembershipState::Blocked {
                message: "spec.etcd.replicas: 3 → 5 waits: 2 of 3 etcd members are healthy; the size changes only while every member is".into()
            }
        );
        w.target = 1;
        assert_eq!(w.decide().change, None);
        let w = World::running(3, 5);
        let (health, pods) = (w.health(), read(w.pods.clone()));
        let d = decide(&MembershipInput {
            outdated_pods: 2,
            ..input(&w, &health, &pods)
        });
        assert_eq!(d.change, None);
        assert!(
            matches!(d.state, MembershipState::Blocked { message } if message.contains("waits for the etcd pods' roll (2 pods to replace)"))
        );
    }

    fn input<'a>(
        w: &'a World,
        health: &'a MemberHealth,
        pods: &'a [Arc<PodReading>],
    ) -> MembershipInput<'a> {
        MembershipInput {
            target: w.target,
            set: SET,
            peer_url: &url,
            set_replicas: w.set_replicas,
            members: Some(health),
            pods,
            claims: &w.claims,
            claim_of: &claim_of,
            settled: w.settled,
            step: w.step.as_ref(),
            deletes_claims: w.deletes_claims,
            outdated_pods: 0,
        }
    }

    #[test]
    fn a_learner_the_operator_did_not_add_blocks_every_change() {
        let mut w = World::running(3, 3);
        w.members.push(member(7, true, false));
        let d = w.decide();
        assert_eq!(d.change, None);
        assert!(
            matches!(d.state, MembershipState::Blocked { message } if message.contains("a learner the operator did not add (107"))
        );
    }

    fn lose_data(w: &mut World, ordinal: i32) {
        let name = format!("{SET}-{ordinal}");
        let pod = w.pods.iter_mut().find(|p| p.name_any() == name).unwrap();
        pod.status = serde_json::from_value(json!({"initContainerStatuses": [{
            "name": DATA_CHECK_CONTAINER, "image": "x", "imageID": "", "ready": false, "restartCount": 2,
            "state": {"waiting": {"reason": "CrashLoopBackOff"}},
            "lastState": {"terminated": {"exitCode": 1, "message": format!("{DATA_LOST_MARKER} in /curvebs/etcd/data for member {name}: ...")}}
        }]}))
        .unwrap();
        let m = w.members.iter_mut().find(|m| m.name == name).unwrap();
        m.healthy = false;
    }

    #[test]
    fn a_member_that_lost_its_data_is_removed_and_added_back_empty() {
        let mut w = World::running(3, 3);
        lose_data(&mut w, 2);
        let d = w.decide();
        let step = d.step.clone().unwrap();
        assert_eq!(
            (step.action, step.member.as_str(), step.member_id.as_deref()),
            (EtcdStepAction::Replace, "demo-etcd-2", Some("102"))
        );
        assert_eq!(d.change, Some(MemberChange::Remove { id: 0x102 }));
        assert!(
            matches!(&d.state, MembershipState::Changing { message } if message.contains("replacing demo-etcd-2 (its pod found no data"))
        );
        w.carry_out(&d);
        let d = w.decide();
        assert_eq!(
            d.change,
            Some(MemberChange::AddLearner { peer_url: url(2) })
        );
        w.carry_out(&d);
        // The pod that failed its check restarts now, to read that it is the one joining.
        let d = w.decide();
        assert_eq!(d.restart_pod, Some(("demo-etcd-2".into(), "u2".into())));
        assert_eq!(d.layout.joining.as_deref(), Some("demo-etcd-2"));
        w.pods.retain(|p| p.name_any() != "demo-etcd-2");
        w.carry_out(&d);
        let (changes, events) = w.run();
        assert_eq!(kinds(&changes), ["promote"]);
        assert_eq!(events, ["EtcdMemberReplaced"]);
        assert_eq!((w.settled, w.members.len()), (Some(3), 3));
    }

    #[test]
    fn two_lost_members_of_three_are_not_replaced_without_a_majority() {
        let mut w = World::running(3, 3);
        lose_data(&mut w, 1);
        lose_data(&mut w, 2);
        let d = w.decide();
        assert_eq!(d.change, None);
        assert!(
            matches!(d.state, MembershipState::Blocked { message } if message.starts_with("etcd members demo-etcd-1, demo-etcd-2 lost their data"))
        );
    }

    #[test]
    fn a_new_cluster_is_bootstrapped_once_every_member_runs_healthy() {
        let mut w = World::running(3, 3);
        w.settled = None;
        w.members[1].healthy = false;
        let d = w.decide();
        assert_eq!((d.settled, d.layout.existing), (None, false));
        w.members[1].healthy = true;
        let d = w.decide();
        assert_eq!(
            (d.settled, d.layout.existing, d.change),
            (Some(3), true, None)
        );
    }

    #[test]
    fn without_an_answer_nothing_changes_and_a_step_in_progress_says_it_waits() {
        let mut w = World::running(3, 5);
        w.step = Some(EtcdStep {
            action: EtcdStepAction::Add,
            member: "demo-etcd-3".into(),
            peer_url: url(3),
            member_id: None,
            reason: "r".into(),
        });
        let (health, pods) = (w.health(), read(w.pods.clone()));
        let d = decide(&MembershipInput {
            members: None,
            ..input(&w, &health, &pods)
        });
        assert_eq!(d.change, None);
        assert_eq!(d.step, w.step);
        assert_eq!(d.layout.pods, 3);
        assert!(
            matches!(d.state, MembershipState::Changing { message } if message.contains("waiting for etcd to answer"))
        );
    }

    #[test]
    fn a_data_check_that_passed_later_is_not_lost_data() {
        let mut w = World::running(3, 3);
        lose_data(&mut w, 2);
        let pod = w
            .pods
            .iter_mut()
            .find(|p| p.name_any() == "demo-etcd-2")
            .unwrap();
        let statuses = pod
            .status
            .as_mut()
            .unwrap()
            .init_container_statuses
            .as_mut()
            .unwrap();
        statuses[0].state = serde_json::from_value(json!({"terminated": {"exitCode": 0}})).unwrap();
        assert!(!lost_data(&pod.clone().into()));
    }
}
