//! The soak's safety rules (issue 32, item 2), pure: a [`Rules`] value is fed what the checker
//! observed (every 100 ms: pods, etcd's member list and election, the cluster's status and
//! record, the objects it owns, Curve's model) and every pod and claim deletion the watches saw,
//! with what the harness itself did; it answers with the [`Violation`]s, each naming its rule,
//! the moment and the objects.
//!
//! Who took a pod down: the harness records its own faults ([`HarnessAction`]); every other
//! deletion of a daemon pod is the operator's (directly, or through a StatefulSet it scaled
//! down: the operator's StatefulSets roll `OnDelete`, so the StatefulSet controller deletes
//! nothing on its own).
//!
//! "Another member is down" counts only what has been down longer than [`GRACE`] when the
//! operator acts: a fault that lands after the operator read the cluster cannot be held against
//! it. 3 s covers the kubelet's pass (150 ms), the pod status write, the watch delivery to the
//! operator, its decision and the proxy's longest delay (1 s).

use std::collections::{BTreeMap, BTreeSet};

/// How long another member must have been down for an operator action to count against it.
pub const GRACE: f64 = 3.0;
/// A member list change is explained by an etcd step the status showed up to this long before
/// it (a step takes seconds: a learner's catch-up, a leader moved)...
pub const STEP_BEFORE: f64 = 10.0;
/// ... or within this long after it (the status watch and the proxy's delay).
pub const STEP_AFTER: f64 = 3.0;
/// The longest the MDS primary may be missing where the rule applies.
pub const PRIMARY_GAP: f64 = 1.0;
/// How long after an MDS or etcd fault (or an MDS pod taken down by anyone) the primary rule
/// is suspended: Curve's lease TTL (5 s, `mds.leader.sessionInterSec`) for a dead candidate's
/// key to expire, the kubelet's restart delay (2 s), and a second to campaign.
pub const PRIMARY_SETTLE: f64 = 8.0;

/// A daemon tier.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Tier {
    Etcd,
    Mds,
    ChunkServer,
}

/// The tier and failure domain of a daemon pod of cluster `cluster`: etcd and MDS pods are each
/// their own, a ChunkServer pod's domain is its server (`<c>-chunkserver-<slot>-<ordinal>`:
/// the ordinal). `None` for other pods (the topology Jobs').
pub fn tier_of(cluster: &str, pod: &str) -> Option<(Tier, String)> {
    let rest = pod.strip_prefix(cluster)?.strip_prefix('-')?;
    if let Some(ordinal) = rest.strip_prefix("etcd-") {
        return ordinal
            .parse::<u32>()
            .ok()
            .map(|_| (Tier::Etcd, pod.into()));
    }
    if let Some(ordinal) = rest.strip_prefix("mds-") {
        return ordinal.parse::<u32>().ok().map(|_| (Tier::Mds, pod.into()));
    }
    let (slot, ordinal) = rest.strip_prefix("chunkserver-")?.split_once('-')?;
    slot.parse::<u32>().ok()?;
    ordinal.parse::<u32>().ok()?;
    Some((Tier::ChunkServer, ordinal.to_string()))
}

/// A daemon pod as the checker saw it.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct PodView {
    pub name: String,
    pub uid: String,
    pub ready: bool,
    pub deleting: bool,
    /// `controller-revision-hash`.
    pub revision: Option<String>,
    pub host_ip: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Member {
    pub id: u64,
    /// Empty until the member started.
    pub name: String,
    pub learner: bool,
}

/// The CurveCluster as the checker saw it.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ClusterView {
    pub uid: String,
    pub generation: i64,
    pub observed_generation: Option<i64>,
    /// `status.record.etcdStep` is set.
    pub etcd_step: bool,
    /// `spec.cleanup` deletes data (policy Delete with the confirmation).
    pub cleanup_confirmed: bool,
}

/// An object the operator creates (StatefulSet, ConfigMap, Service, budget, Job).
#[derive(Clone, Debug, PartialEq)]
pub struct OwnedView {
    pub kind: String,
    pub name: String,
    /// (uid, controller) of each owner reference.
    pub owners: Vec<(String, bool)>,
    /// A topology Job's step label while the Job has not finished.
    pub running_step: Option<String>,
}

/// What Curve's model (the stand-ins' shared state) says.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct CurveView {
    /// Copysets without a running, online copy on each member: the ChunkServer ids missing.
    pub unhealthy: BTreeMap<String, BTreeSet<u32>>,
    /// Each data volume (by its claim's identity) → the ChunkServer id its `chunkserver.dat`
    /// names and how many copysets it holds.
    pub disks: BTreeMap<String, (Option<u32>, usize)>,
    /// ChunkServer ids Curve still has and has not RETIRED.
    pub live: BTreeSet<u32>,
    /// ChunkServer pod → (its id, how many copysets it holds), while it runs.
    pub chunkservers: BTreeMap<String, (u32, usize)>,
}

/// One poll of everything the rules read.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Observation {
    /// Seconds since the checker started.
    pub at: f64,
    /// Daemon pods by name.
    pub pods: BTreeMap<String, PodView>,
    /// etcd's member list (`None`: etcd did not answer).
    pub members: Option<Vec<Member>>,
    /// The MDS election's first key and value (`Some(None)`: no candidate; `None`: unread).
    pub primary: Option<Option<(String, String)>>,
    pub cluster: Option<ClusterView>,
    pub owned: Vec<OwnedView>,
    pub curve: Option<CurveView>,
    /// The MDS StatefulSet's update revision.
    pub mds_update_revision: Option<String>,
}

/// What the harness itself did, so the rules do not blame the operator for it.
#[derive(Clone, Debug, PartialEq)]
pub enum HarnessAction {
    DeletedPod(String),
    DeletedClaim(String),
    KilledMds(String),
    KilledEtcd(String),
    StoppedChunkServer(String),
    /// A ChunkServer's volume wiped under its claim (by its disk's identity).
    WipedDisk(String),
}

impl HarnessAction {
    /// The MDS primary may be missing for a while after it.
    fn disturbs_primary(&self, cluster: &str) -> bool {
        match self {
            HarnessAction::KilledMds(_) | HarnessAction::KilledEtcd(_) => true,
            HarnessAction::DeletedPod(pod) => {
                matches!(tier_of(cluster, pod), Some((Tier::Etcd | Tier::Mds, _)))
            }
            _ => false,
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct Violation {
    pub rule: &'static str,
    pub at: f64,
    pub message: String,
}

impl std::fmt::Display for Violation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "[{}] at {:.2}s: {}", self.rule, self.at, self.message)
    }
}

/// Every rule's name, for the report.
pub const RULES: [&str; 14] = [
    "etcd-member-removed-while-another-unhealthy",
    "etcd-pod-deleted-while-another-unhealthy",
    "etcd-one-member-change-at-a-time",
    "etcd-at-most-one-learner",
    "mds-one-pod-down-at-a-time",
    "mds-primary-rolled-last",
    "chunkservers-down-on-one-server-at-a-time",
    "chunkserver-down-while-copysets-unhealthy",
    "mds-primary-no-gap",
    "volume-with-data-formatted",
    "claim-deleted-without-confirmation",
    "owned-by-exactly-one",
    "no-duplicate-object",
    "status-never-older-than-it-describes",
];

/// A member list as names, learners marked.
fn names(members: &[Member]) -> String {
    let names: Vec<String> = (members.iter())
        .map(|m| {
            let name = if m.name.is_empty() { "?" } else { &m.name };
            format!("{name}{}", if m.learner { " (learner)" } else { "" })
        })
        .collect();
    format!("[{}]", names.join(", "))
}

/// The rules' memory between observations.
#[derive(Debug)]
pub struct Rules {
    cluster: String,
    /// Pod name → since when it has been down (not Ready, or being deleted).
    down_since: BTreeMap<String, f64>,
    /// Pods the operator took down, until the pod of that name is Ready again.
    taken_down: BTreeSet<String>,
    /// Deletions already judged (by uid).
    judged: BTreeSet<String>,
    previous: Option<Observation>,
    /// etcd's member list as last read, and when: a read that fails (etcd electing a leader
    /// after its leader was removed) must not hide the change from the next one that works.
    members_seen: Option<(f64, Vec<Member>)>,
    /// The primary key last seen, and when.
    primary: Option<(String, f64)>,
    /// A gap already told (from when), so it is told once.
    gap_told: Option<f64>,
    /// When the primary was last disturbed by a fault or an MDS pod taken down.
    primary_disturbed: f64,
    /// Each disk's last id, and whether it held data then: copysets, or an id Curve still
    /// counts on.
    disks: BTreeMap<String, (u32, bool)>,
    /// Owner and duplicate problems already told.
    told: BTreeSet<String>,
    highest_observed_generation: i64,
    /// When the status last showed an etcd step.
    step_seen: Option<f64>,
    /// Member list changes no recorded step explains yet: (when, before, after).
    unexplained_changes: Vec<(f64, String, String)>,
    pub checks: u64,
}

impl Rules {
    pub fn new(cluster: &str) -> Rules {
        Rules {
            cluster: cluster.to_string(),
            down_since: BTreeMap::new(),
            taken_down: BTreeSet::new(),
            judged: BTreeSet::new(),
            previous: None,
            members_seen: None,
            primary: None,
            gap_told: None,
            primary_disturbed: f64::NEG_INFINITY,
            disks: BTreeMap::new(),
            told: BTreeSet::new(),
            highest_observed_generation: 0,
            step_seen: None,
            unexplained_changes: Vec::new(),
            checks: 0,
        }
    }

    /// The harness did `action` at `at` (before the deletion or kill it names).
    pub fn harness_did(&mut self, at: f64, action: &HarnessAction) {
        if action.disturbs_primary(&self.cluster) {
            self.primary_disturbed = self.primary_disturbed.max(at);
        }
        if let HarnessAction::WipedDisk(disk) = action {
            self.disks.remove(disk);
        }
    }

    /// Other pods of `tier` (not in `domain`) down since before `at - GRACE`, or taken down by
    /// the operator and not back yet.
    fn others_down(
        &self,
        at: f64,
        tier: Tier,
        domain: &str,
        pods: &BTreeMap<String, PodView>,
    ) -> Vec<String> {
        pods.keys()
            .chain(self.taken_down.iter())
            .filter(|name| {
                tier_of(&self.cluster, name).is_some_and(|(t, d)| t == tier && d != domain)
            })
            .filter(|name| {
                self.taken_down.contains(*name)
                    || self
                        .down_since
                        .get(*name)
                        .is_some_and(|since| *since <= at - GRACE)
            })
            .map(|name| {
                let since = self.down_since.get(name).copied().unwrap_or(at);
                let how = if self.taken_down.contains(name) {
                    "taken down by the operator"
                } else {
                    "down"
                };
                format!("{name} ({how} since {since:.2}s)")
            })
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect()
    }

    /// A daemon pod was deleted (first seen with a deletion timestamp, or gone), at `at`;
    /// `by_harness`: the harness did it.
    pub fn pod_deleted(&mut self, at: f64, pod: &PodView, by_harness: bool) -> Vec<Violation> {
        self.checks += 1;
        let mut found = Vec::new();
        if !self.judged.insert(pod.uid.clone()) || by_harness {
            if by_harness {
                self.primary_disturbed = self.primary_disturbed.max(at);
            }
            return found;
        }
        let Some((tier, domain)) = tier_of(&self.cluster, &pod.name) else {
            return found;
        };
        let Some(previous) = self.previous.clone() else {
            self.taken_down.insert(pod.name.clone());
            return found;
        };
        let others = self.others_down(at, tier, &domain, &previous.pods);
        let mut violation = |rule, message: String| {
            found.push(Violation { rule, at, message });
        };
        match tier {
            Tier::Etcd if !others.is_empty() => violation(
                "etcd-pod-deleted-while-another-unhealthy",
                format!(
                    "etcd pod {} was deleted (not by a harness fault) while {}",
                    pod.name,
                    others.join(", ")
                ),
            ),
            Tier::Mds => {
                self.primary_disturbed = self.primary_disturbed.max(at);
                if !others.is_empty() {
                    violation(
                        "mds-one-pod-down-at-a-time",
                        format!(
                            "MDS pod {} was deleted (not by a harness fault) while {}",
                            pod.name,
                            others.join(", ")
                        ),
                    );
                }
                // A primary whose MDS is already down (killed) serves nothing: replacing it
                // first costs no extra failover.
                let serving = !self.down_since.contains_key(&pod.name);
                let is_primary = serving
                    && previous
                        .primary
                        .clone()
                        .flatten()
                        .is_some_and(|(_, address)| {
                            pod.host_ip
                                .as_deref()
                                .is_some_and(|ip| address.split(':').next() == Some(ip))
                        });
                let update = previous.mds_update_revision.clone();
                let rolling = update.is_some() && pod.revision != update;
                if is_primary && rolling {
                    let behind: Vec<&String> = (previous.pods.values())
                        .filter(|p| p.name != pod.name && !p.deleting)
                        .filter(|p| matches!(tier_of(&self.cluster, &p.name), Some((Tier::Mds, _))))
                        .filter(|p| p.revision != update)
                        .map(|p| &p.name)
                        .collect();
                    if !behind.is_empty() {
                        violation(
                            "mds-primary-rolled-last",
                            format!(
                                "the MDS primary {} was deleted in a roll (not by a harness fault) while {behind:?} still run the old revision",
                                pod.name
                            ),
                        );
                    }
                }
            }
            Tier::ChunkServer => {
                // An empty ChunkServer (drained by a retire) is in no copyset's majority: its
                // going takes nothing down.
                let holds_data = (previous.curve.as_ref())
                    .and_then(|c| c.chunkservers.get(&pod.name))
                    .is_none_or(|(_, copysets)| *copysets > 0);
                if holds_data && !others.is_empty() {
                    violation(
                        "chunkservers-down-on-one-server-at-a-time",
                        format!(
                            "ChunkServer pod {} was deleted (not by a harness fault) (server {domain}) while {}",
                            pod.name,
                            others.join(", ")
                        ),
                    );
                }
                if let Some(curve) = &previous.curve {
                    let own = curve.chunkservers.get(&pod.name).copied();
                    let holds = own.is_some_and(|(_, copysets)| copysets > 0);
                    let unhealthy_elsewhere: Vec<String> = (curve.unhealthy.iter())
                        .filter(|(_, missing)| {
                            missing.iter().any(|id| Some(*id) != own.map(|o| o.0))
                        })
                        .map(|(copyset, missing)| format!("{copyset} missing {missing:?}"))
                        .collect();
                    let long_enough = self
                        .down_since
                        .get("copysets")
                        .is_some_and(|since| *since <= at - GRACE);
                    if holds && long_enough && !unhealthy_elsewhere.is_empty() {
                        violation(
                            "chunkserver-down-while-copysets-unhealthy",
                            format!(
                                "ChunkServer pod {} (holding {} copysets) was deleted (not by a harness fault) while {} copysets were unhealthy, e.g. {}",
                                pod.name,
                                own.map(|o| o.1).unwrap_or(0),
                                unhealthy_elsewhere.len(),
                                unhealthy_elsewhere[0]
                            ),
                        );
                    }
                }
            }
            Tier::Etcd => {}
        }
        self.taken_down.insert(pod.name.clone());
        found
    }

    /// A pod's state as a watch event shows it, between polls: a replaced pod Ready again is
    /// no longer down when the operator takes the next one (a poll 100 ms later would be late).
    pub fn pod_seen(&mut self, at: f64, pod: &PodView) {
        if tier_of(&self.cluster, &pod.name).is_none() {
            return;
        }
        if pod.ready && !pod.deleting {
            self.down_since.remove(&pod.name);
            self.taken_down.remove(&pod.name);
        } else if !pod.deleting {
            // A deletion is judged by `pod_deleted` with the state from before it.
            self.down_since.entry(pod.name.clone()).or_insert(at);
        }
    }

    /// A claim was deleted (first seen with a deletion timestamp, or gone).
    pub fn claim_deleted(
        &mut self,
        at: f64,
        claim: &str,
        uid: &str,
        by_harness: bool,
    ) -> Vec<Violation> {
        self.checks += 1;
        if by_harness || !self.judged.insert(uid.to_string()) {
            return Vec::new();
        }
        let confirmed = (self.previous.as_ref())
            .and_then(|p| p.cluster.as_ref())
            .is_some_and(|c| c.cleanup_confirmed);
        if confirmed {
            return Vec::new();
        }
        vec![Violation {
            rule: "claim-deleted-without-confirmation",
            at,
            message: format!(
                "claim {claim} was deleted and spec.cleanup does not confirm deleting data"
            ),
        }]
    }

    /// One poll.
    pub fn observe(&mut self, now: Observation) -> Vec<Violation> {
        let mut found = Vec::new();
        let at = now.at;
        self.track_down(&now);
        self.check_members(&now, &mut found);
        self.check_primary(&now, &mut found);
        self.check_disks(&now, &mut found);
        self.check_owned(&now, &mut found);
        self.check_status(&now, &mut found);
        self.checks += 9;
        for v in &mut found {
            v.at = at;
        }
        if let Some(members) = &now.members {
            self.members_seen = Some((now.at, members.clone()));
        }
        self.previous = Some(now);
        found
    }

    fn track_down(&mut self, now: &Observation) {
        for pod in now.pods.values() {
            if pod.ready && !pod.deleting {
                self.down_since.remove(&pod.name);
                self.taken_down.remove(&pod.name);
            } else {
                self.down_since.entry(pod.name.clone()).or_insert(now.at);
            }
        }
        // A pod no longer there: its StatefulSet makes it again (counted down from its
        // deletion on), or it was scaled away (then it is not down, it is gone).
        let gone: Vec<String> = (self.down_since.keys())
            .filter(|name| *name != "copysets" && !now.pods.contains_key(*name))
            .filter(|name| !self.taken_down.contains(*name))
            .cloned()
            .collect();
        for name in gone {
            self.down_since.remove(&name);
        }
        match &now.curve {
            Some(curve) if curve.unhealthy.is_empty() => {
                self.down_since.remove("copysets");
            }
            Some(_) => {
                self.down_since.entry("copysets".into()).or_insert(now.at);
            }
            None => {}
        }
    }

    /// Pods taken down whose name did not come back (scaled away): forgotten once the
    /// StatefulSets no longer want them.
    pub fn forget_scaled_away(&mut self, wanted: &BTreeSet<String>) {
        self.taken_down.retain(|name| wanted.contains(name));
    }

    fn check_members(&mut self, now: &Observation, found: &mut Vec<Violation>) {
        let Some(members) = &now.members else { return };
        let learners: Vec<&Member> = members.iter().filter(|m| m.learner).collect();
        if learners.len() > 1 {
            found.push(Violation {
                rule: "etcd-at-most-one-learner",
                at: now.at,
                message: format!("etcd has {} learners: {learners:?}", learners.len()),
            });
        }
        let Some((since, before)) = self.members_seen.clone() else {
            return;
        };
        let ids = |list: &[Member]| list.iter().map(|m| m.id).collect::<BTreeSet<u64>>();
        let (old, new) = (ids(&before), ids(members));
        let changed: Vec<&u64> = old.symmetric_difference(&new).collect();
        if changed.len() > 1 {
            found.push(Violation {
                rule: "etcd-one-member-change-at-a-time",
                at: now.at,
                message: format!(
                    "the member list changed by {} members at once: {before:?} → {members:?}",
                    changed.len()
                ),
            });
        }
        for removed in before.iter().filter(|m| !new.contains(&m.id)) {
            let unhealthy: Vec<String> = (members.iter())
                .filter(|m| m.name != removed.name && !m.name.is_empty())
                .filter_map(|m| {
                    let down = self.down_since.get(&m.name).copied().or_else(|| {
                        // A member without a pod is unhealthy as long as the pod is missing.
                        (!now.pods.contains_key(&m.name)).then_some(f64::NEG_INFINITY)
                    })?;
                    (down <= since - GRACE).then(|| format!("{} (down since {down:.2}s)", m.name))
                })
                .collect();
            if !unhealthy.is_empty() {
                found.push(Violation {
                    rule: "etcd-member-removed-while-another-unhealthy",
                    at: now.at,
                    message: format!(
                        "member {} ({:x}) was removed while {} (members {} → {})",
                        removed.name,
                        removed.id,
                        unhealthy.join(", "),
                        names(&before),
                        names(members)
                    ),
                });
            }
        }
    }

    fn check_primary(&mut self, now: &Observation, found: &mut Vec<Violation>) {
        let Some(read) = &now.primary else { return };
        let suspended = |from: f64| self.primary_disturbed >= from - PRIMARY_SETTLE;
        match (read, self.primary.clone()) {
            (Some((key, _)), Some((last_key, last_at))) if *key == last_key => {
                self.primary = Some((last_key, now.at));
                let _ = last_at;
                self.gap_told = None;
            }
            (Some((key, address)), previous) => {
                if let Some((last_key, last_at)) = previous {
                    let gap = now.at - last_at;
                    if gap > PRIMARY_GAP && !suspended(last_at) && self.gap_told != Some(last_at) {
                        found.push(Violation {
                            rule: "mds-primary-no-gap",
                            at: now.at,
                            message: format!(
                                "no MDS primary for {gap:.2}s: {last_key} last seen at {last_at:.2}s, then {key} ({address})"
                            ),
                        });
                    }
                }
                self.primary = Some((key.clone(), now.at));
                self.gap_told = None;
            }
            (None, Some((last_key, last_at))) => {
                let gap = now.at - last_at;
                if gap > PRIMARY_GAP && !suspended(last_at) && self.gap_told != Some(last_at) {
                    self.gap_told = Some(last_at);
                    found.push(Violation {
                        rule: "mds-primary-no-gap",
                        at: now.at,
                        message: format!("no MDS primary for {gap:.2}s: {last_key} last seen at {last_at:.2}s, none since"),
                    });
                }
            }
            (None, None) => {}
        }
    }

    /// A volume is formatted when its `chunkserver.dat` changes. That is safe only once Curve
    /// has no use for what it held: no copysets on it, and its old id deleted or RETIRED (a
    /// retired ChunkServer's retained claim reused by a later scale-out registers anew, as
    /// RegistChunkServer does for an id it no longer has,
    /// C:src/mds/topology/topology_service_manager.cpp:66-104).
    fn check_disks(&mut self, now: &Observation, found: &mut Vec<Violation>) {
        let Some(curve) = &now.curve else { return };
        for (disk, (id, copysets)) in &curve.disks {
            if let Some((old, held_data)) = self.disks.get(disk)
                && Some(*old) != *id
                && *held_data
            {
                found.push(Violation {
                    rule: "volume-with-data-formatted",
                    at: now.at,
                    message: format!(
                        "volume {disk} held ChunkServer {old}'s data (Curve still had it, or copysets were on it) and now holds {id:?}"
                    ),
                });
            }
            if let Some(id) = id {
                let held_data = *copysets > 0 || curve.live.contains(id);
                self.disks.insert(disk.clone(), (*id, held_data));
            }
        }
    }

    fn check_owned(&mut self, now: &Observation, found: &mut Vec<Violation>) {
        let Some(cluster) = &now.cluster else { return };
        let mut steps: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
        for object in &now.owned {
            let right = object.owners.len() == 1 && object.owners[0] == (cluster.uid.clone(), true);
            let key = format!("owner {} {}", object.kind, object.name);
            if !right && self.told.insert(key) {
                found.push(Violation {
                    rule: "owned-by-exactly-one",
                    at: now.at,
                    message: format!(
                        "{} {} has owners {:?}, not exactly the CurveCluster {} as controller",
                        object.kind, object.name, object.owners, cluster.uid
                    ),
                });
            }
            if let Some(step) = &object.running_step {
                steps.entry(step).or_default().push(&object.name);
            }
        }
        for (step, jobs) in steps.into_iter().filter(|(_, jobs)| jobs.len() > 1) {
            if self.told.insert(format!("duplicate {jobs:?}")) {
                found.push(Violation {
                    rule: "no-duplicate-object",
                    at: now.at,
                    message: format!(
                        "topology step {step} has {} unfinished Jobs: {jobs:?}",
                        jobs.len()
                    ),
                });
            }
        }
    }

    fn check_status(&mut self, now: &Observation, found: &mut Vec<Violation>) {
        let Some(cluster) = &now.cluster else { return };
        let mut status_violations = Vec::new();
        if let Some(observed) = cluster.observed_generation {
            if observed > cluster.generation || observed < self.highest_observed_generation {
                status_violations.push(Violation {
                    rule: "status-never-older-than-it-describes",
                    at: now.at,
                    message: format!(
                        "observedGeneration {observed} with generation {} (highest seen {})",
                        cluster.generation, self.highest_observed_generation
                    ),
                });
            }
            self.highest_observed_generation = self.highest_observed_generation.max(observed);
        }
        // The record describes an etcd membership change by its step, written before the first
        // call to etcd and cleared once the change is done: every change of etcd's member list
        // must fall while a step is recorded. (`etcdMembers` is the size Curve's daemons are
        // configured for, not etcd's count: between two steps of 3 → 5 etcd has 4 voters.)
        if cluster.etcd_step {
            self.step_seen = Some(now.at);
        }
        if let (Some((_, before)), Some(after)) = (self.members_seen.clone(), now.members.clone())
            && before != after
        {
            self.unexplained_changes
                .push((now.at, names(&before), names(&after)));
        }
        let step_seen = self.step_seen;
        let (explained, open): (Vec<_>, Vec<_>) = std::mem::take(&mut self.unexplained_changes)
            .into_iter()
            .partition(|(at, _, _)| step_seen.is_some_and(|seen| seen >= at - STEP_BEFORE));
        drop(explained);
        for (at, before, after) in open {
            if now.at - at > STEP_AFTER {
                status_violations.push(Violation {
                    rule: "status-never-older-than-it-describes",
                    at: now.at,
                    message: format!(
                        "etcd's members changed at {at:.2}s ({before} → {after}) with no etcd step in the record from {:.2}s to {:.2}s",
                        at - STEP_BEFORE,
                        now.at
                    ),
                });
            } else {
                self.unexplained_changes.push((at, before, after));
            }
        }
        // Each state told once, not at every poll it lasts.
        for violation in status_violations {
            if self.told.insert(violation.message.clone()) {
                found.push(violation);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod(name: &str, ready: bool) -> PodView {
        PodView {
            name: name.into(),
            uid: format!("uid-{name}"),
            ready,
            deleting: false,
            revision: Some("r1".into()),
            host_ip: Some(format!("127.0.0.{}", 101 + name.len() % 7)),
        }
    }

    fn pods(list: &[PodView]) -> BTreeMap<String, PodView> {
        list.iter().map(|p| (p.name.clone(), p.clone())).collect()
    }

    fn member(id: u64, name: &str, learner: bool) -> Member {
        Member {
            id,
            name: name.into(),
            learner,
        }
    }

    fn etcd3() -> Vec<Member> {
        vec![
            member(1, "demo-etcd-0", false),
            member(2, "demo-etcd-1", false),
            member(3, "demo-etcd-2", false),
        ]
    }

    fn observation(at: f64, pod_list: &[PodView], members: Vec<Member>) -> Observation {
        Observation {
            at,
            pods: pods(pod_list),
            members: Some(members),
            primary: Some(Some(("07leader/a".into(), "127.0.0.101:6700".into()))),
            ..Observation::default()
        }
    }

    fn rules_of(found: &[Violation]) -> Vec<&'static str> {
        found.iter().map(|v| v.rule).collect()
    }

    #[test]
    fn pods_are_sorted_into_tiers_and_servers() {
        assert_eq!(
            tier_of("demo", "demo-etcd-2"),
            Some((Tier::Etcd, "demo-etcd-2".into()))
        );
        assert_eq!(
            tier_of("demo", "demo-mds-0"),
            Some((Tier::Mds, "demo-mds-0".into()))
        );
        assert_eq!(
            tier_of("demo", "demo-chunkserver-1-3"),
            Some((Tier::ChunkServer, "3".into()))
        );
        assert_eq!(
            tier_of("demo", "demo-topology-physical-pool-1a2b3c4d-x7k2p"),
            None
        );
        assert_eq!(tier_of("demo", "other-etcd-0"), None);
    }

    /// The removed member was etcd's leader: the reads during the election fail, and the
    /// first that works after them still names the removal.
    #[test]
    fn a_removal_seen_only_after_failed_reads_is_named() {
        let mut rules = Rules::new("demo");
        let one_down = [
            pod("demo-etcd-0", true),
            pod("demo-etcd-1", false),
            pod("demo-etcd-2", true),
        ];
        assert!(
            rules
                .observe(observation(0.0, &one_down, etcd3()))
                .is_empty()
        );
        assert!(
            rules
                .observe(observation(5.0, &one_down, etcd3()))
                .is_empty()
        );
        let unread = Observation {
            members: None,
            ..observation(5.1, &one_down, etcd3())
        };
        assert!(rules.observe(unread.clone()).is_empty());
        assert!(rules.observe(Observation { at: 7.0, ..unread }).is_empty());
        let two = vec![
            member(1, "demo-etcd-0", false),
            member(2, "demo-etcd-1", false),
        ];
        let found = rules.observe(observation(9.0, &one_down, two));
        assert_eq!(
            rules_of(&found),
            vec!["etcd-member-removed-while-another-unhealthy"],
            "{found:?}"
        );
    }

    #[test]
    fn a_member_removed_while_another_is_down_is_named() {
        let mut rules = Rules::new("demo");
        let all_up = [
            pod("demo-etcd-0", true),
            pod("demo-etcd-1", true),
            pod("demo-etcd-2", true),
        ];
        let one_down = [
            pod("demo-etcd-0", true),
            pod("demo-etcd-1", false),
            pod("demo-etcd-2", true),
        ];
        assert!(rules.observe(observation(0.0, &all_up, etcd3())).is_empty());
        assert!(
            rules
                .observe(observation(1.0, &one_down, etcd3()))
                .is_empty()
        );
        assert!(
            rules
                .observe(observation(5.0, &one_down, etcd3()))
                .is_empty()
        );
        let two = vec![
            member(1, "demo-etcd-0", false),
            member(2, "demo-etcd-1", false),
        ];
        let found = rules.observe(observation(5.1, &one_down, two));
        assert_eq!(
            rules_of(&found),
            vec!["etcd-member-removed-while-another-unhealthy"],
            "{found:?}"
        );
        assert!(
            found[0].message.contains(
                "member demo-etcd-2 (3) was removed while demo-etcd-1 (down since 1.00s)"
            ),
            "{}",
            found[0]
        );
        assert_eq!(found[0].at, 5.1);
    }

    #[test]
    fn a_removal_right_after_another_member_failed_is_within_the_grace() {
        let mut rules = Rules::new("demo");
        let all_up = [
            pod("demo-etcd-0", true),
            pod("demo-etcd-1", true),
            pod("demo-etcd-2", true),
        ];
        let one_down = [
            pod("demo-etcd-0", true),
            pod("demo-etcd-1", false),
            pod("demo-etcd-2", true),
        ];
        rules.observe(observation(0.0, &all_up, etcd3()));
        rules.observe(observation(4.0, &one_down, etcd3()));
        let two = vec![
            member(1, "demo-etcd-0", false),
            member(2, "demo-etcd-1", false),
        ];
        assert!(rules.observe(observation(4.1, &one_down, two)).is_empty());
    }

    #[test]
    fn member_lists_change_one_member_at_a_time_with_one_learner() {
        let mut rules = Rules::new("demo");
        let up: Vec<PodView> = (0..5)
            .map(|i| pod(&format!("demo-etcd-{i}"), true))
            .collect();
        rules.observe(observation(0.0, &up, etcd3()));
        let mut grown = etcd3();
        grown.push(member(4, "demo-etcd-3", true));
        assert!(
            rules
                .observe(observation(1.0, &up, grown.clone()))
                .is_empty()
        );
        grown.push(member(5, "", true));
        let found = rules.observe(observation(2.0, &up, grown));
        assert_eq!(rules_of(&found), vec!["etcd-at-most-one-learner"]);
        let found = rules.observe(observation(3.0, &up, etcd3()));
        assert_eq!(
            rules_of(&found),
            vec!["etcd-one-member-change-at-a-time"],
            "{found:?}"
        );
    }

    #[test]
    fn an_etcd_pod_deleted_while_another_is_down_is_named_unless_the_harness_did_it() {
        let mut rules = Rules::new("demo");
        let one_down = [
            pod("demo-etcd-0", true),
            pod("demo-etcd-1", false),
            pod("demo-etcd-2", true),
        ];
        rules.observe(observation(0.0, &one_down, etcd3()));
        rules.observe(observation(4.0, &one_down, etcd3()));
        assert!(
            rules
                .pod_deleted(4.05, &pod("demo-etcd-2", true), true)
                .is_empty()
        );
        let mut again = pod("demo-etcd-2", true);
        again.uid = "uid-2b".into();
        let found = rules.pod_deleted(4.1, &again, false);
        assert_eq!(
            rules_of(&found),
            vec!["etcd-pod-deleted-while-another-unhealthy"]
        );
        assert!(
            found[0].message.contains("demo-etcd-1 (down since 0.00s)"),
            "{}",
            found[0]
        );
    }

    #[test]
    fn two_mds_pods_taken_down_at_once_are_named() {
        let mut rules = Rules::new("demo");
        let mds = [
            pod("demo-mds-0", true),
            pod("demo-mds-1", true),
            pod("demo-mds-2", true),
        ];
        rules.observe(observation(0.0, &mds, etcd3()));
        assert!(rules.pod_deleted(0.1, &mds[0], false).is_empty());
        let found = rules.pod_deleted(0.15, &mds[1], false);
        assert_eq!(rules_of(&found), vec!["mds-one-pod-down-at-a-time"]);
        assert!(
            found[0]
                .message
                .contains("demo-mds-0 (taken down by the operator"),
            "{}",
            found[0]
        );
        // Once mds-0 is Ready again, the next one may go.
        rules.observe(observation(5.0, &mds, etcd3()));
        assert!(
            rules
                .pod_deleted(5.1, &pod_with_uid("demo-mds-2", "new"), false)
                .is_empty()
        );
    }

    #[test]
    fn a_replaced_pod_seen_ready_between_polls_is_no_longer_down() {
        let mut rules = Rules::new("demo");
        let mds = [pod("demo-mds-0", true), pod("demo-mds-1", true)];
        rules.observe(observation(0.0, &mds, etcd3()));
        assert!(rules.pod_deleted(0.1, &mds[0], false).is_empty());
        rules.pod_seen(0.3, &pod_with_uid("demo-mds-0", "new"));
        assert!(rules.pod_deleted(0.35, &mds[1], false).is_empty());
    }

    #[test]
    fn a_dead_primary_may_be_replaced_before_the_standbys() {
        let mut rules = Rules::new("demo");
        let mut primary = pod("demo-mds-0", true);
        primary.host_ip = Some("127.0.0.101".into());
        let mut now = observation(0.0, &[primary.clone(), pod("demo-mds-1", true)], etcd3());
        now.mds_update_revision = Some("r2".into());
        rules.observe(now);
        rules.pod_seen(
            0.2,
            &PodView {
                ready: false,
                ..primary.clone()
            },
        );
        assert!(rules.pod_deleted(0.5, &primary, false).is_empty());
    }

    fn pod_with_uid(name: &str, uid: &str) -> PodView {
        PodView {
            uid: uid.into(),
            ..pod(name, true)
        }
    }

    #[test]
    fn the_primary_rolled_before_a_standby_is_named() {
        let mut rules = Rules::new("demo");
        let mut primary = pod("demo-mds-0", true);
        primary.host_ip = Some("127.0.0.101".into());
        let mut standby = pod("demo-mds-1", true);
        standby.host_ip = Some("127.0.0.102".into());
        let mut now = observation(0.0, &[primary.clone(), standby], etcd3());
        now.mds_update_revision = Some("r2".into());
        rules.observe(now);
        // The checker shows the deleting pod first, then judges the deletion.
        rules.pod_seen(
            0.5,
            &PodView {
                deleting: true,
                ..primary.clone()
            },
        );
        let found = rules.pod_deleted(0.5, &primary, false);
        assert_eq!(
            rules_of(&found),
            vec!["mds-primary-rolled-last"],
            "{found:?}"
        );
    }

    #[test]
    fn chunkservers_of_two_servers_or_unhealthy_copysets_are_named() {
        let mut rules = Rules::new("demo");
        let cs = [
            pod("demo-chunkserver-0-0", true),
            pod("demo-chunkserver-0-1", false),
            pod("demo-chunkserver-0-2", true),
        ];
        let mut now = observation(0.0, &cs, etcd3());
        let mut curve = CurveView::default();
        curve.unhealthy.insert("(1, 7)".into(), [2].into());
        curve
            .chunkservers
            .insert("demo-chunkserver-0-0".into(), (1, 20));
        now.curve = Some(curve.clone());
        rules.observe(now.clone());
        now.at = 4.0;
        rules.observe(now);
        let found = rules.pod_deleted(4.1, &cs[0], false);
        assert_eq!(
            rules_of(&found),
            vec![
                "chunkservers-down-on-one-server-at-a-time",
                "chunkserver-down-while-copysets-unhealthy"
            ],
            "{found:?}"
        );
        // An empty ChunkServer (retired) may go while copysets elsewhere are unhealthy, and
        // while another server's ChunkServer is down.
        let mut rules = Rules::new("demo");
        curve
            .chunkservers
            .insert("demo-chunkserver-0-2".into(), (3, 0));
        let mut now = observation(0.0, &[pod("demo-chunkserver-0-2", true)], etcd3());
        now.curve = Some(curve);
        rules.observe(now.clone());
        now.at = 4.0;
        rules.observe(now);
        assert!(
            rules
                .pod_deleted(4.1, &pod("demo-chunkserver-0-2", true), false)
                .is_empty()
        );
    }

    #[test]
    fn a_primary_gap_is_named_unless_an_mds_or_etcd_fault_explains_it() {
        let mut rules = Rules::new("demo");
        let mut now = observation(0.0, &[], etcd3());
        rules.observe(now.clone());
        now.at = 0.5;
        now.primary = Some(None);
        assert!(rules.observe(now.clone()).is_empty());
        now.at = 1.6;
        let found = rules.observe(now.clone());
        assert_eq!(rules_of(&found), vec!["mds-primary-no-gap"]);
        now.at = 1.7;
        assert!(rules.observe(now.clone()).is_empty(), "told once");
        // After an MDS kill the gap is expected.
        let mut rules = Rules::new("demo");
        let mut now = observation(10.0, &[], etcd3());
        rules.observe(now.clone());
        rules.harness_did(10.2, &HarnessAction::KilledMds("demo-mds-0".into()));
        now.at = 16.0;
        now.primary = Some(Some(("07leader/b".into(), "127.0.0.102:6700".into())));
        assert!(rules.observe(now).is_empty());
    }

    #[test]
    fn a_volume_holding_data_must_keep_its_id_unless_the_harness_wiped_it() {
        let mut rules = Rules::new("demo");
        let mut now = observation(0.0, &[], etcd3());
        let mut curve = CurveView::default();
        curve.disks.insert("claim-a".into(), (Some(3), 0));
        curve.live.insert(3);
        now.curve = Some(curve.clone());
        rules.observe(now.clone());
        curve.disks.insert("claim-a".into(), (Some(7), 0));
        now.curve = Some(curve.clone());
        assert_eq!(
            rules_of(&rules.observe(now.clone())),
            vec!["volume-with-data-formatted"]
        );
        rules.harness_did(1.0, &HarnessAction::WipedDisk("claim-a".into()));
        curve.disks.insert("claim-a".into(), (Some(9), 0));
        now.curve = Some(curve.clone());
        assert!(rules.observe(now.clone()).is_empty());
        // Its id deleted from Curve and no copysets left: the volume may register anew.
        curve.live.clear();
        now.curve = Some(curve.clone());
        rules.observe(now.clone());
        curve.disks.insert("claim-a".into(), (Some(10), 0));
        now.curve = Some(curve.clone());
        assert!(rules.observe(now.clone()).is_empty());
        // Copysets on it count as data even when Curve dropped the id.
        curve.disks.insert("claim-a".into(), (Some(10), 4));
        now.curve = Some(curve.clone());
        rules.observe(now.clone());
        curve.disks.insert("claim-a".into(), (None, 0));
        now.curve = Some(curve);
        assert_eq!(
            rules_of(&rules.observe(now)),
            vec!["volume-with-data-formatted"]
        );
    }

    #[test]
    fn claims_go_only_with_the_confirmation() {
        let mut rules = Rules::new("demo");
        let mut now = observation(0.0, &[], etcd3());
        now.cluster = Some(ClusterView {
            uid: "c".into(),
            generation: 1,
            ..ClusterView::default()
        });
        rules.observe(now.clone());
        assert!(
            rules
                .claim_deleted(1.0, "data-demo-etcd-1", "u1", true)
                .is_empty()
        );
        assert_eq!(
            rules_of(&rules.claim_deleted(1.0, "data-demo-etcd-2", "u2", false)),
            vec!["claim-deleted-without-confirmation"]
        );
        now.cluster.as_mut().unwrap().cleanup_confirmed = true;
        rules.observe(now);
        assert!(
            rules
                .claim_deleted(2.0, "data-demo-etcd-3", "u3", false)
                .is_empty()
        );
    }

    #[test]
    fn owners_duplicates_and_the_record_are_checked() {
        let mut rules = Rules::new("demo");
        let etcd_up = [
            pod("demo-etcd-0", true),
            pod("demo-etcd-1", true),
            pod("demo-etcd-2", true),
        ];
        let mut now = observation(0.0, &etcd_up, etcd3());
        now.cluster = Some(ClusterView {
            uid: "c".into(),
            generation: 4,
            observed_generation: Some(4),
            ..ClusterView::default()
        });
        let sts = |name: &str, owners: Vec<(String, bool)>| OwnedView {
            kind: "StatefulSet".into(),
            name: name.into(),
            owners,
            running_step: None,
        };
        let job = |name: &str| OwnedView {
            kind: "Job".into(),
            name: name.into(),
            owners: vec![("c".into(), true)],
            running_step: Some("logical-pool".into()),
        };
        now.owned = vec![sts("demo-etcd", vec![("c".into(), true)]), job("demo-lp-1")];
        assert!(rules.observe(now.clone()).is_empty());
        now.owned = vec![
            sts("demo-etcd", vec![("c".into(), true), ("x".into(), false)]),
            job("demo-lp-1"),
            job("demo-lp-2"),
        ];
        assert_eq!(
            rules_of(&rules.observe(now.clone())),
            vec!["owned-by-exactly-one", "no-duplicate-object"]
        );
        // etcd changes with no step recorded before, nor within 3 s after: the record is behind.
        let two = vec![
            member(1, "demo-etcd-0", false),
            member(2, "demo-etcd-1", false),
        ];
        now.at = 20.0;
        now.members = Some(two);
        now.cluster.as_mut().unwrap().observed_generation = Some(3);
        let found = rules.observe(now.clone());
        assert_eq!(
            rules_of(&found),
            vec!["status-never-older-than-it-describes"],
            "{found:?}"
        );
        assert!(
            found[0]
                .message
                .contains("observedGeneration 3 with generation 4 (highest seen 4)")
        );
        now.at = 22.0;
        assert!(
            rules.observe(now.clone()).is_empty(),
            "a step may still show"
        );
        now.at = 23.5;
        let found = rules.observe(now.clone());
        assert_eq!(
            rules_of(&found),
            vec!["status-never-older-than-it-describes"],
            "{found:?}"
        );
        assert!(
            found[0].message.contains("etcd's members changed at 20.00s ([demo-etcd-0, demo-etcd-1, demo-etcd-2] → [demo-etcd-0, demo-etcd-1]) with no etcd step"),
            "{}",
            found[0]
        );
        // With the step recorded, etcd may change (4 voters between the steps of 3 → 5).
        now.cluster.as_mut().unwrap().etcd_step = true;
        now.cluster.as_mut().unwrap().observed_generation = Some(4);
        now.at = 30.0;
        rules.observe(now.clone());
        now.cluster.as_mut().unwrap().etcd_step = false;
        now.members = Some(etcd3());
        now.at = 31.0;
        assert!(rules.observe(now.clone()).is_empty());
        now.at = 40.0;
        assert!(rules.observe(now).is_empty());
    }
}
