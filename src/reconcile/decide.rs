//! The decide step: one pure function from (validated spec, snapshot, previous status) to
//! everything the write step does and the status it writes. No I/O, no clock: the same inputs
//! give the same decision.

use std::collections::BTreeMap;
use std::sync::Arc;

use k8s_openapi::jiff::Timestamp;

use super::desired_memo::{DesiredInputs, DesiredMemo, Prepared};
use super::events;
use super::model::action::{Action, ExistingObject, Object, ObjectKind};
use super::model::event::ClusterEvent;
use super::model::health::HealthView;
use super::model::observation::{
    Blocker, ComponentObservation, DataCleanup, Observation, PrimaryView, TopologyState,
};
use super::model::states::{MembershipState, RollState};
use super::plan;
use super::snapshot::Snapshot;
use super::status::compute_status;
use super::{
    backup, blockers, csi, etcd_space, expansion, health, leaders, membership, monitoring, observe,
    restore, retire, roll, topology,
};
use crate::api::{ChunkServerRetire, CleanupPolicy, CurveClusterStatus, OperatorRecord};
use crate::curve::admin::CurveChange;
use crate::desired::config::DaemonAddresses;
use crate::desired::config::etcd_peer_url;
use crate::desired::topology::PoolProgress;
use crate::desired::{self, DesiredObjects, Observed};
use crate::names::{Component, LABEL_STEP, component_name, root_secret_name};
use crate::validate::ValidatedCluster;

/// What one reconcile does, and what it reports.
#[derive(Clone, Debug, PartialEq)]
pub struct Decision {
    /// Every object of the cluster as the operator wants it (with the held-back changes left
    /// out), including the topology Jobs of the current cluster map.
    pub desired: Arc<DesiredObjects>,
    /// The writes, in order.
    pub actions: Vec<Action>,
    pub observation: Observation,
    /// The components whose StatefulSets this decision creates.
    pub created: Vec<Component>,
    /// The status to write (equal to the previous one when nothing changed).
    pub status: CurveClusterStatus,
    /// What to tell in Events.
    pub events: Vec<ClusterEvent>,
    /// When to look again.
    pub requeue: Requeue,
    /// Write the status (its record) before the actions: they hand out what the record must
    /// remember if the operator is killed midway (see [`Decision::hands_out_more`]).
    pub record_first: bool,
    /// When a scheduled etcd snapshot is due (reconcile/backup.rs): look again then at the
    /// latest, whatever `requeue` says.
    pub wake_at: Option<Timestamp>,
}

impl Decision {
    /// What the operator hands out changes (addresses, servers, pool progress): the record is
    /// written before the actions that rely on it, so an operator killed midway remembers it.
    /// (That the root Secret was ensured is recorded after, with the rest of the status.)
    pub fn hands_out_more(&self, previous: &CurveClusterStatus) -> bool {
        let empty = OperatorRecord {
            version: OperatorRecord::VERSION,
            ..OperatorRecord::default()
        };
        match &self.status.record {
            None => true,
            Some(now) => !same_but_root_secret(now, previous.record.as_ref().unwrap_or(&empty)),
        }
    }
}

/// Two records equal but for the root Secret, compared field by field without copies (the
/// record lists every server: a big cluster has a thousand). Every field is named, so a new
/// one must be placed here.
fn same_but_root_secret(a: &OperatorRecord, b: &OperatorRecord) -> bool {
    let OperatorRecord {
        version,
        mds_addresses,
        etcd_addresses,
        servers,
        physical_pool_servers,
        root_secret: _,
        logical_pool_created,
        server_port,
        etcd_members,
        etcd_step,
        retire,
        leaders_spread_for,
    } = a;
    *version == b.version
        && *mds_addresses == b.mds_addresses
        && *etcd_addresses == b.etcd_addresses
        && *servers == b.servers
        && *physical_pool_servers == b.physical_pool_servers
        && *logical_pool_created == b.logical_pool_created
        && *server_port == b.server_port
        && *etcd_members == b.etcd_members
        && *etcd_step == b.etcd_step
        && *retire == b.retire
        && *leaders_spread_for == b.leaders_spread_for
}

/// The objects of the snapshot the plan compares against.
pub fn existing_objects(snapshot: &Snapshot) -> Vec<ExistingObject> {
    let mut existing: Vec<ExistingObject> = snapshot
        .stateful_sets
        .iter()
        .map(ExistingObject::of_stateful_set)
        .collect();
    existing.extend(
        (snapshot.config_maps.iter()).map(|meta| ExistingObject::of(ObjectKind::ConfigMap, meta)),
    );
    existing.extend(
        (snapshot.services.iter()).map(|meta| ExistingObject::of(ObjectKind::Service, meta)),
    );
    existing.extend(
        (snapshot.budgets.iter())
            .map(|meta| ExistingObject::of(ObjectKind::PodDisruptionBudget, meta)),
    );
    existing
}

/// The record the operator keeps, or why it cannot use the one it finds.
fn usable_record(previous: &CurveClusterStatus) -> Result<OperatorRecord, String> {
    match &previous.record {
        None => Ok(OperatorRecord {
            version: OperatorRecord::VERSION,
            ..OperatorRecord::default()
        }),
        Some(record) if record.version == OperatorRecord::VERSION => Ok(record.clone()),
        Some(record) => Err(format!(
            "status.record: version {} was written by another operator version (this one knows {}); nothing is changed until an operator that knows it runs",
            record.version,
            OperatorRecord::VERSION
        )),
    }
}

/// The order in which one decision changes the cluster. Each kind of change is planned from
/// the same observation; the write step carries them out in this order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Change {
    /// One change of etcd's member list: what it changes is applied in a later pass, once the
    /// member list shows it.
    Membership,
    /// One etcd member defragmented, when no member-list change is sent.
    EtcdSpace,
    /// Claims asked to grow, before a StatefulSet re-created for new claim templates finds them.
    Growth,
    /// The objects of the tiers the gates open (and StatefulSets re-created for new claims).
    Apply,
    /// The Prometheus Operator objects.
    Monitoring,
    /// curve-csi's objects, and the node plugin pods it replaces.
    Csi,
    /// Pods and claims of etcd members the membership change restarts or drops.
    Pods,
    /// The topology Job of this step of the pool bootstrap.
    Jobs,
    /// The retire step's change to Curve's topology, and the claim or pod it releases.
    Retire,
    /// The roll's next pod deletion: only when nothing above changed a template.
    Roll,
}

impl Change {
    pub const ORDER: [Change; 10] = [
        Change::Membership,
        Change::EtcdSpace,
        Change::Growth,
        Change::Apply,
        Change::Monitoring,
        Change::Csi,
        Change::Pods,
        Change::Jobs,
        Change::Retire,
        Change::Roll,
    ];
}

/// When to look at the cluster again if no watch event comes first.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Requeue {
    /// Paused or invalid: only a change of the spec (a watch event) matters.
    AwaitChange,
    /// etcd's member list is changing, and it is not watched: look again soon.
    Membership,
    /// Bring-up or a change under way.
    Progress,
    /// Everything is as the spec asks: a slow resync.
    Healthy,
}

/// Phase 1: the snapshot read once into what every later phase uses.
struct Reading<'a> {
    existing: Vec<ExistingObject>,
    /// The spec with every held-back change left out.
    safe: ValidatedCluster,
    refused: Vec<String>,
    growth: expansion::ExpansionPlan,
    record: Result<OperatorRecord, String>,
    tiers: Vec<roll::TierPods<'a>>,
    membership: membership::MembershipDecision,
    defragment: Option<etcd_space::Defragment>,
    /// Tiers whose pods were left without their StatefulSet (re-created for new claims).
    orphaned: Vec<Component>,
    /// The ChunkServer leaving Curve, and what each ChunkServer StatefulSet keeps meanwhile.
    retire: retire::RetirePlan,
    /// Curve's health as the monitor last read it, judged once for the whole pass.
    health: Option<HealthView>,
    /// The etcd restore of `spec.etcd.restore`, and what it holds.
    restore: restore::RestoreDecision,
}

impl<'a> Reading<'a> {
    fn of(
        cluster: &ValidatedCluster,
        snapshot: &'a Snapshot,
        previous: &CurveClusterStatus,
        now: Timestamp,
    ) -> Self {
        let existing = existing_objects(snapshot);
        let record = usable_record(previous);
        let slots = plan::stateful_sets(&existing, Component::ChunkServer).count() as i32;
        let server_port = (record.as_ref().ok()).and_then(|r| {
            topology::registered_server_port(r, cluster.spec.chunkservers.port, slots)
        });
        let (mut safe, mut refused) = plan::refuse_unsafe_changes(cluster, &existing, server_port);
        let previous_retire = (record.as_ref().ok()).and_then(|r| r.retire.as_ref());
        // The safe spec's port, as the observation reports the primary (the retire decision
        // reads only the verdict and the inventory).
        let health = (snapshot.health.as_ref()).map(|latest| {
            health::view(latest, &snapshot.pods, safe.spec.mds.port, previous_retire)
        });
        let retire = plan_retire(
            cluster,
            snapshot,
            &existing,
            previous_retire,
            health.as_ref(),
            now,
        );
        refused.extend(retire.refused.iter().cloned());
        let cs = &mut safe.spec.chunkservers;
        cs.disks_per_node = cs.disks_per_node.max(retire.disks_per_node);
        cs.replicas = (retire.slot_replicas.values().copied()).fold(cs.replicas, i32::max);
        let growth = expansion::plan(
            &mut safe,
            &existing,
            &snapshot.claims,
            &snapshot.storage_classes,
        );
        refused.extend(growth.refused.iter().cloned());
        if let Err(why) = &record {
            refused.push(why.clone());
        }
        let tiers = roll::tiers(&snapshot.stateful_sets, &snapshot.pods);
        let restore = decide_restore(cluster, snapshot, &existing, previous, now);
        let mut membership = decide_membership(&safe, snapshot, &existing, &tiers, previous);
        // A restore stops etcd, then starts member 0 alone.
        match restore.etcd_pods {
            Some(0) => membership.layout.pods = 0,
            Some(at_least) => membership.layout.pods = membership.layout.pods.max(at_least),
            None => {}
        }
        // The etcd StatefulSet (and its budget) have as many pods as etcd has members.
        safe.spec.etcd.replicas = membership.layout.pods;
        let orphaned = expansion::orphaned(&existing, &snapshot.pods);
        let defragment = etcd_space::decide(&etcd_space::SpaceInput {
            members: snapshot.etcd.as_ref().and_then(|e| e.members.as_ref()),
            busy: etcd_busy(&membership, &tiers),
        });
        Reading {
            existing,
            safe,
            refused,
            growth,
            record,
            tiers,
            membership,
            defragment,
            orphaned,
            retire,
            health,
            restore,
        }
    }

    /// Whether the operator changes anything in this pass: not while paused, nor with a record
    /// it cannot read.
    fn acts(&self) -> bool {
        !self.safe.spec.paused && self.record.is_ok()
    }

    fn exists(&self, component: Component) -> bool {
        plan::tier_exists(&self.existing, component) || self.orphaned.contains(&component)
    }
}

/// The ChunkServer StatefulSets that exist: disk slot → replicas.
fn slot_replicas(cluster: &ValidatedCluster, existing: &[ExistingObject]) -> BTreeMap<i32, i32> {
    let prefix = format!("{}-", component_name(&cluster.name, Component::ChunkServer));
    plan::stateful_sets(existing, Component::ChunkServer)
        .filter(|set| !set.deleting)
        .filter_map(|set| {
            let slot = set.name.strip_prefix(&prefix)?.parse().ok()?;
            Some((slot, set.replicas.unwrap_or(0)))
        })
        .collect()
}

/// The ChunkServer retire or replacement of this pass (reconcile/retire.rs), on the latest
/// reading of Curve taken after the recorded step.
fn plan_retire(
    cluster: &ValidatedCluster,
    snapshot: &Snapshot,
    existing: &[ExistingObject],
    previous: Option<&ChunkServerRetire>,
    view: Option<&HealthView>,
    now: Timestamp,
) -> retire::RetirePlan {
    let unhealthy = match view {
        Some(v) if v.current && v.copysets_all_healthy() => None,
        Some(v) if v.current => Some(v.summary()),
        _ => Some("Curve's health has not been read since the last change".to_string()),
    };
    retire::plan(&retire::RetireInput {
        cluster,
        slot_replicas: slot_replicas(cluster, existing),
        pods: &snapshot.pods,
        previous,
        inventory: view.and_then(|v| v.inventory.as_deref()),
        latest_inventory: (snapshot.health.as_ref()).and_then(|l| l.inventory.as_deref()),
        unhealthy,
        usage_limit_percent: desired::config::pool_usage_limit_percent(cluster),
        now,
    })
}

/// Phase 2: what the snapshot says of each tier, the election and the pods' progress.
fn observe_cluster(
    cluster: &ValidatedCluster,
    snapshot: &Snapshot,
    reading: &Reading,
) -> Observation {
    let spec = &reading.safe.spec;
    let pods = &snapshot.pods;
    let ready = observe::ready_by_tier(pods);
    let tier = |component, desired| {
        let of_tier = reading.tiers.iter().find(|t| t.component == component);
        ComponentObservation {
            desired,
            ready: component.tier_index().map_or(0, |i| ready[i]),
            exists: reading.exists(component),
            updated: of_tier.map_or(0, roll::TierPods::updated),
            images: of_tier.map(roll::TierPods::images).unwrap_or_default(),
        }
    };
    let mds = tier(Component::Mds, spec.mds.replicas);
    let (primary, etcd_members) = match (&snapshot.etcd, mds.exists) {
        (Some(reading), true) => (
            observe::primary_view(pods, spec.mds.port, &reading.primary),
            reading.members.clone(),
        ),
        _ => (PrimaryView::NotStarted, None),
    };
    Observation {
        restore: reading.restore.state.clone(),
        restore_record: reading.restore.record.clone(),
        spec_errors: Vec::new(),
        paused: spec.paused,
        etcd: tier(Component::Etcd, cluster.spec.etcd.replicas),
        mds,
        chunkservers: tier(
            Component::ChunkServer,
            spec.chunkservers.replicas * spec.chunkservers.disks_per_node,
        ),
        etcd_members,
        etcd_quorum: reading.safe.etcd_quorum(),
        roll: RollState::Done,
        membership: reading.membership.state.clone(),
        cleanup: match (&spec.cleanup.policy, spec.cleanup.deletes_data()) {
            (_, true) => DataCleanup::Delete,
            (CleanupPolicy::Delete, false) => DataCleanup::DeleteNotConfirmed,
            (CleanupPolicy::Retain, false) => DataCleanup::Retain,
        },
        tolerated_unready_chunkservers: (spec.logical_pool.replicas - 1) / 2,
        primary,
        refused: reading.refused.clone(),
        error: None,
        format: observe::format_progress(pods),
        topology: None,
        physical_pool: spec.logical_pool.physical_pool.clone(),
        logical_pool: spec.logical_pool.name.clone(),
        expansions: reading.growth.progress.clone(),
        monitoring: Default::default(),
        csi: Default::default(),
        blockers: pod_blockers(snapshot),
        health: reading.health.clone(),
        held: Vec::new(),
        etcd_members_now: reading.safe.spec.etcd.replicas,
        adopted_claims: adopted_claims(snapshot),
        retire: reading.retire.progress.clone(),
        stale_chunkservers: reading.retire.stale.clone(),
        clocks_apart: snapshot.clocks_apart.clone(),
        usable_bytes: crate::validate::capacity::usable_capacity_bytes(spec),
        progress_deadline_seconds: spec.rollout.progress_deadline_seconds.into(),
    }
}

/// Why pods do not come up: from the pods that exist, then from the StatefulSet controller's
/// Events for those it could not create.
fn pod_blockers(snapshot: &Snapshot) -> Vec<Blocker> {
    let around = blockers::Surroundings {
        claims: &snapshot.claims,
        classes: &snapshot.storage_classes.keys().cloned().collect(),
        unready_nodes: &snapshot.unready_nodes,
    };
    let mut found = blockers::blockers(&snapshot.pods, &around);
    let missing = blockers::missing_pods(&snapshot.stateful_sets, &snapshot.pods);
    found.extend(blockers::creation_blockers(&missing, &snapshot.set_events));
    found
}

/// The cluster's claims created before the CurveCluster itself: kept from an earlier cluster of
/// the same name (`spec.cleanup.policy: Retain`) and taken over by this one's StatefulSets.
fn adopted_claims(snapshot: &Snapshot) -> Vec<String> {
    let Some(created) = snapshot.cluster_created else {
        return Vec::new();
    };
    (snapshot.claims.iter())
        .filter(|c| c.created.is_some_and(|t| t < created))
        .map(|c| c.name.clone())
        .collect()
}

/// Phase 3: what the objects the operator wants are built from: the addresses and servers it
/// sees.
fn desired_inputs(snapshot: &Snapshot, reading: &Reading, known: &OperatorRecord) -> DesiredInputs {
    let safe = &reading.safe;
    let spec = &safe.spec;
    let pods = &snapshot.pods;
    let layout = &reading.membership.layout;
    let addresses = DaemonAddresses {
        mds: observe::member_addresses(
            pods,
            &component_name(&safe.name, Component::Mds),
            spec.mds.replicas,
            spec.mds.port,
            Some(known.mds_addresses.clone()),
        ),
        etcd: observe::member_addresses(
            pods,
            &component_name(&safe.name, Component::Etcd),
            layout.endpoints,
            spec.etcd.client_port,
            Some(known.etcd_addresses.clone()),
        ),
    };
    DesiredInputs {
        safe: safe.clone(),
        observed: Observed {
            servers: observe::chunkserver_servers(pods, &snapshot.node_zones),
            known_servers: known.servers.clone(),
            pools: PoolProgress::from_record(known),
            addresses: Some(addresses),
            etcd: Some(layout.clone()),
        },
        hold_mds: reading.restore.hold_mds,
        slot_replicas: reading.retire.slot_replicas.clone(),
    }
}

/// Phase 4: the bring-up gates. A tier is applied once the tier before it serves; ChunkServers
/// list every MDS by IP in their config, so they start once all MDS pods have one (and the
/// first ChunkServers do not roll when the last MDS gets its address).
fn bring_up_gates(snapshot: &Snapshot, reading: &Reading, obs: &Observation) -> plan::Gates {
    let safe = &reading.safe;
    let mds_addressed = observe::all_members_addressed(
        &snapshot.pods,
        &component_name(&safe.name, Component::Mds),
        safe.spec.mds.replicas,
    );
    let chunkservers_may_start = matches!(obs.primary, PrimaryView::Elected { .. })
        && (obs.chunkservers.exists || mds_addressed);
    let mut gates = plan::gates(obs.etcd_quorate(), chunkservers_may_start);
    // A restore stops the MDS tier while etcd has no quorum: its StatefulSet is applied then.
    gates.mds |= reading.restore.hold_mds;
    gates
}

/// Phase 5's working state: what the changes hand out to the record, and what they say.
struct Changes {
    actions: Vec<Action>,
    events: Vec<ClusterEvent>,
    known: OperatorRecord,
}

/// What every change of one pass reads.
struct Pass<'a> {
    snapshot: &'a Snapshot,
    reading: &'a Reading<'a>,
    gates: plan::Gates,
    /// A StatefulSet is being re-created for new claim templates.
    recreating: bool,
    now: Timestamp,
}

/// Phase 5: every change of this pass, in [`Change::ORDER`].
fn plan_changes(
    snapshot: &Snapshot,
    reading: &Reading,
    desired: &mut Prepared,
    obs: &mut Observation,
    now: Timestamp,
) -> Changes {
    let pass = Pass {
        snapshot,
        reading,
        gates: bring_up_gates(snapshot, reading, obs),
        recreating: expansion::recreating(&reading.existing, &snapshot.pods),
        now,
    };
    let mut changes = Changes {
        actions: Vec::new(),
        // The membership change's Events first, then the roll's.
        events: reading.membership.events.clone(),
        known: reading.record.clone().unwrap_or_default(),
    };
    let job_actions = if pass.gates.chunkservers {
        let jobs = bootstrap_topology(&reading.safe, snapshot, desired, obs, &mut changes.known);
        changes.known.mds_addresses = desired.objects().addresses.mds.clone();
        changes.known.etcd_addresses = desired.objects().addresses.etcd.clone();
        jobs
    } else {
        Vec::new()
    };
    if pass.gates.mds {
        ensure_root_secret(&pass, &mut changes);
    }
    for change in Change::ORDER {
        let actions = match change {
            Change::Jobs => job_actions.clone(),
            _ => planned(change, &pass, desired, obs, &mut changes),
        };
        changes.actions.extend(actions);
    }
    changes
}

/// MDS, ChunkServers and the tools read the root password: it exists before them.
fn ensure_root_secret(pass: &Pass, changes: &mut Changes) {
    let secret = root_secret_name(&pass.reading.safe.name);
    if changes.known.root_secret.as_deref() != Some(secret.as_str())
        || observe::secret_missing(&pass.snapshot.pods, &secret)
    {
        changes.actions.push(Action::EnsureRootSecret {
            name: secret.clone(),
        });
    }
    changes.known.root_secret = Some(secret);
}

/// The actions of one kind of change.
fn planned(
    change: Change,
    pass: &Pass,
    desired: &Prepared,
    obs: &mut Observation,
    changes: &mut Changes,
) -> Vec<Action> {
    let reading = pass.reading;
    let membership = &reading.membership;
    match change {
        Change::Membership if !pass.recreating => (membership.change.clone())
            .map(Action::EtcdMembers)
            .into_iter()
            .collect(),
        Change::EtcdSpace if membership.change.is_none() => {
            let defragment = reading.defragment.iter();
            (changes.events).extend(
                defragment
                    .clone()
                    .map(|d| ClusterEvent::normal("EtcdDefragmented", d.describe())),
            );
            (defragment.map(|d| Action::EtcdDefragment {
                id: d.id,
                member: d.name.clone(),
            }))
            .collect()
        }
        Change::Membership | Change::EtcdSpace | Change::Jobs => Vec::new(),
        Change::Growth => reading.growth.actions.clone(),
        Change::Apply => {
            let applies = plan::plan_hashed(
                desired.objects(),
                desired.hashes(),
                &reading.existing,
                pass.gates,
            );
            expansion::recreate_changed_sets(applies, &reading.existing)
        }
        Change::Monitoring => {
            let (actions, state) = monitoring::plan(
                desired.objects().monitoring.as_ref(),
                &pass.snapshot.monitoring_api,
                &pass.snapshot.monitoring_objects,
            );
            obs.monitoring = state;
            actions
        }
        Change::Csi => {
            let plan = plan_csi(pass.snapshot, desired.objects(), obs);
            obs.csi = plan.state;
            plan.actions
        }
        Change::Pods => {
            changes.known.etcd_members = membership.settled;
            changes.known.etcd_step = membership.step.clone();
            let restart =
                (membership.restart_pod.clone()).map(|(name, uid)| Action::DeletePod { name, uid });
            let drop = (membership.delete_claim.clone()).map(|name| Action::DeleteClaim { name });
            let mut actions: Vec<Action> = restart.into_iter().chain(drop).collect();
            actions.extend(restore_actions(&reading.safe, &reading.restore, changes));
            actions
        }
        Change::Retire if pass.gates.chunkservers => {
            let retire = &reading.retire;
            changes.known.retire = retire.record.clone();
            if let Some(ip) = &retire.deleted_server {
                changes.known.servers.retain(|s| &s.ip != ip);
                changes.known.physical_pool_servers.retain(|s| s != ip);
            }
            let mut curve: Vec<Action> = retire.curve.iter().cloned().map(Action::Curve).collect();
            let spread = leaders::rapid_schedule(&leaders::LeaderInput {
                pods: &pass.snapshot.pods,
                expected: obs.chunkservers.desired,
                health: obs.health.as_ref(),
                asked_for: changes.known.leaders_spread_for.as_deref(),
                pool_created: changes.known.logical_pool_created,
                retiring: changes.known.retire.is_some(),
            });
            if let Some(schedule) = spread {
                changes.known.leaders_spread_for = Some(schedule.token);
                if schedule.ask {
                    curve.push(Action::Curve(CurveChange::RapidLeaderSchedule));
                }
            }
            curve.extend(retire.actions.iter().cloned());
            curve
        }
        Change::Retire => Vec::new(),
        Change::Roll => {
            let (actions, events) = roll_step(pass, obs, changes);
            changes.events.extend(events);
            actions
        }
    }
}

/// The restore's step: its Job, the claims and old Jobs it drops, the counters' advance; and
/// etcd's membership record started again from the one member it rebuilt.
fn restore_actions(
    cluster: &ValidatedCluster,
    restore: &restore::RestoreDecision,
    changes: &mut Changes,
) -> Vec<Action> {
    use desired::etcd_restore::{build, restore_target};
    changes.events.extend(restore.events.iter().cloned());
    if restore.reset_membership {
        changes.known.etcd_members = Some(1);
        changes.known.etcd_step = None;
    }
    let mut actions: Vec<Action> = Vec::new();
    if let (Some(job), Some(record)) = (restore.job, &restore.record) {
        let target = restore_target(cluster, &record.snapshot, &record.cluster_token);
        let started = restore::started_seconds(record);
        let job = build(cluster, job, started, &target);
        actions.push(Action::Apply(Box::new(Object::Job(job))));
    }
    actions.extend(restore.delete_jobs.iter().map(|name| Action::Delete {
        kind: ObjectKind::Job,
        name: name.clone(),
    }));
    actions.extend(
        (restore.delete_claims.iter()).map(|name| Action::DeleteClaim { name: name.clone() }),
    );
    actions.extend(
        (restore.delete_pods.iter()).map(|(name, uid)| Action::DeletePod {
            name: name.clone(),
            uid: uid.clone(),
        }),
    );
    actions.extend(restore.advance.clone().map(Action::AdvanceEtcdCounters));
    actions
}

/// The roll's next step, when nothing this pass applies changes a template (a template
/// applied now is rolled once its StatefulSet took it) and no membership change is under way
/// (membership waits for a roll, and a roll for membership).
fn roll_step(
    pass: &Pass,
    obs: &mut Observation,
    changes: &Changes,
) -> (Vec<Action>, Vec<ClusterEvent>) {
    let (snapshot, reading) = (pass.snapshot, pass.reading);
    let templates_change = pass.recreating
        || changes.actions.iter().any(|a| {
            matches!(a, Action::Apply(o) if o.kind() == ObjectKind::StatefulSet)
                || matches!(a, Action::OrphanStatefulSet { .. })
        });
    if templates_change || reading.membership.step.is_some() {
        return (Vec::new(), Vec::new());
    }
    let checks = roll::Checks {
        health: obs.health.as_ref(),
        node_zones: &snapshot.node_zones,
        pool_created: changes.known.logical_pool_created,
    };
    let roll = roll::decide(&reading.safe, &reading.tiers, obs, checks, pass.now);
    obs.roll = roll.state;
    // Nothing else changes in the ChunkServer tier while one of its ChunkServers leaves.
    let retiring = changes.known.retire.is_some();
    let chunkserver_pods = format!(
        "{}-",
        component_name(&reading.safe.name, Component::ChunkServer)
    );
    let actions = (roll.actions.into_iter())
        .filter(|a| !(retiring && matches!(a, Action::DeletePod { name, .. } if name.starts_with(&chunkserver_pods))))
        .collect();
    (actions, roll.events)
}

/// The decision of one pass: what to write, the status, the Events.
pub fn decide(
    cluster: &ValidatedCluster,
    snapshot: &Snapshot,
    previous: &CurveClusterStatus,
    generation: Option<i64>,
    now: Timestamp,
) -> Decision {
    let mut memo = DesiredMemo::default();
    decide_reusing(&mut memo, cluster, snapshot, previous, generation, now)
}

/// [`decide`], reusing the desired objects `memo` holds when they are built from the same
/// inputs, and leaving this decision's in it. The decision is the same as without it.
pub fn decide_reusing(
    memo: &mut DesiredMemo,
    cluster: &ValidatedCluster,
    snapshot: &Snapshot,
    previous: &CurveClusterStatus,
    generation: Option<i64>,
    now: Timestamp,
) -> Decision {
    let reading = Reading::of(cluster, snapshot, previous, now);
    let mut obs = observe_cluster(cluster, snapshot, &reading);
    let no_record = OperatorRecord::default();
    let known = reading.record.as_ref().unwrap_or(&no_record);
    let mut desired = memo.prepare(desired_inputs(snapshot, &reading, known));
    let changes = if reading.acts() {
        Some(plan_changes(
            snapshot,
            &reading,
            &mut desired,
            &mut obs,
            now,
        ))
    } else {
        // Paused (or unusable memory): the topology stays as last reported, no volume is asked
        // to grow, and the monitoring objects are only looked at.
        obs.topology = TopologyState::from_status(previous);
        obs.expansions.clear();
        obs.held = held_back(snapshot, &reading, &desired, &obs);
        obs.monitoring = monitoring::plan(
            desired.objects().monitoring.as_ref(),
            &snapshot.monitoring_api,
            &snapshot.monitoring_objects,
        )
        .1;
        obs.csi = plan_csi(snapshot, desired.objects(), &obs).state;
        None
    };
    let backup = backup::plan(&backup::BackupInput {
        cluster,
        previous: previous.etcd.as_ref().and_then(|e| e.backup.as_ref()),
        jobs: &snapshot.jobs,
        pods: &snapshot.pods,
        claims: &snapshot.claims,
        members: snapshot.etcd.as_ref().and_then(|e| e.members.as_ref()),
        acts: reading.acts(),
        // A snapshot of etcd while it is rebuilt would be of nothing the admin wants back.
        held: matches!(
            reading.restore.state,
            super::model::states::RestoreState::Running { .. }
        )
        .then_some("an etcd restore is under way"),
        uploader_image: snapshot.uploader_image.as_deref(),
        now,
    });
    let mut decision = report(previous, &reading, desired, obs, changes, generation, now);
    add_backup(&mut decision, backup);
    decision
}

/// The etcd backup's part of a decision: its actions (after every other), its status and
/// Events, and when to look again.
fn add_backup(decision: &mut Decision, backup: backup::BackupPlan) {
    decision.actions.extend(backup.actions);
    decision.events.extend(backup.events);
    if let Some(etcd) = decision.status.etcd.as_mut() {
        etcd.backup = backup.status;
    }
    decision.wake_at = backup.wake_at;
}

/// curve-csi's part (reconcile/csi.rs), wired to the MDS addresses of this pass.
fn plan_csi(snapshot: &Snapshot, desired: &DesiredObjects, obs: &Observation) -> csi::CsiPlan {
    let seen = &snapshot.csi;
    csi::plan(&csi::CsiInput {
        desired: desired.csi.as_ref(),
        existing: &seen.objects,
        node_pods: &seen.node_pods,
        attached: seen.attached.as_ref(),
        allowed: &csi::RestartAllowed::of(seen.restart_nodes.as_deref()),
        available: obs.available(),
        taken: &seen.taken,
    })
}

/// What the operator would change if it were not paused (or could read its record): the
/// member-list change, the claims to grow, the objects to apply or delete, the pods to roll.
fn held_back(
    snapshot: &Snapshot,
    reading: &Reading,
    desired: &Prepared,
    obs: &Observation,
) -> Vec<String> {
    let gates = bring_up_gates(snapshot, reading, obs);
    let membership = reading.membership.change.iter().map(|c| c.describe());
    let growth = reading.growth.actions.iter().map(Action::describe);
    let applies = plan::plan_hashed(
        desired.objects(),
        desired.hashes(),
        &reading.existing,
        gates,
    );
    let mut held: Vec<String> = membership
        .chain(growth)
        .chain(applies.iter().map(Action::describe))
        .collect();
    for tier in &reading.tiers {
        let outdated = tier.pods.len() as i32 - tier.updated();
        if outdated > 0 {
            held.push(format!(
                "roll {} pods of the {} tier",
                outdated,
                tier.component.as_str()
            ));
        }
    }
    held
}

/// Phase 6: the tiers this decision creates, the status, the record and the Events.
fn report(
    previous: &CurveClusterStatus,
    reading: &Reading,
    desired: Prepared,
    mut obs: Observation,
    changes: Option<Changes>,
    generation: Option<i64>,
    now: Timestamp,
) -> Decision {
    let actions = changes
        .as_ref()
        .map(|c| c.actions.clone())
        .unwrap_or_default();
    // What this decision creates exists once it is carried out, with no pod ready yet.
    let mut created = created_tiers(desired.objects(), &reading.existing, &actions);
    created.retain(|c| !reading.orphaned.contains(c));
    for component in &created {
        match component {
            Component::Etcd => obs.etcd.exists = true,
            Component::Mds => obs.mds.exists = true,
            Component::ChunkServer => obs.chunkservers.exists = true,
            Component::Topology => {}
        }
    }
    let mut status = compute_status(previous, &obs, generation, now);
    let mut events = events::derive(previous, &status, &created);
    if let (Ok(record), Some(changes)) = (&reading.record, changes) {
        status.record = Some(OperatorRecord {
            version: record.version,
            ..changes.known
        });
        events.extend(changes.events);
        events.extend(events::retire_change(previous, &status));
        events.extend(events::mds_addresses_change(previous, &status));
    }
    let requeue = if obs.paused {
        Requeue::AwaitChange
    } else if matches!(obs.membership, MembershipState::Changing { .. }) {
        Requeue::Membership
    } else if obs.complete() && !obs.csi.pending() {
        Requeue::Healthy
    } else {
        Requeue::Progress
    };
    let mut decision = Decision {
        desired: desired.shared(),
        actions,
        observation: obs,
        created,
        status,
        events,
        requeue,
        record_first: false,
        wake_at: None,
    };
    // A restore's phase is recorded before the step it takes (its Job, the counters' advance).
    let restore_of = |s: &CurveClusterStatus| s.etcd.as_ref().and_then(|e| e.restore.clone());
    decision.record_first =
        decision.hands_out_more(previous) || restore_of(&decision.status) != restore_of(previous);
    decision
}

/// Why no etcd member may be paused for a defragmentation now: a membership step, or etcd's
/// pods rolling.
fn etcd_busy(
    membership: &membership::MembershipDecision,
    tiers: &[roll::TierPods],
) -> Option<String> {
    let etcd = tiers.iter().find(|t| t.component == Component::Etcd);
    if membership.step.is_some() || membership.change.is_some() {
        Some("etcd's membership is changing".into())
    } else if etcd.is_some_and(|t| !t.settled || t.updated() < t.pods.len() as i32) {
        Some("etcd's pods are rolling".into())
    } else {
        None
    }
}

/// The etcd restore of this pass (reconcile/restore.rs), from the spec, the restore recorded in
/// the status and the snapshot.
fn decide_restore(
    cluster: &ValidatedCluster,
    snapshot: &Snapshot,
    existing: &[ExistingObject],
    previous: &CurveClusterStatus,
    now: Timestamp,
) -> restore::RestoreDecision {
    let token = |started: i64| desired::etcd_restore::restore_cluster_token(cluster, started);
    let set_replicas = |component: Component| {
        let name = component_name(&cluster.name, component);
        (existing.iter())
            .find(|o| o.kind == ObjectKind::StatefulSet && o.name == name)
            .and_then(|o| o.replicas)
    };
    restore::decide(&restore::RestoreInput {
        cluster: &cluster.name,
        request: cluster.spec.etcd.restore.as_ref(),
        recorded: previous.etcd.as_ref().and_then(|e| e.restore.as_ref()),
        members_wanted: cluster.spec.etcd.replicas,
        pods: &snapshot.pods,
        set_replicas: &set_replicas,
        jobs: &snapshot.jobs,
        claims: &snapshot.claims,
        members: snapshot.etcd.as_ref().and_then(|e| e.members.as_ref()),
        counters: snapshot.etcd_counters.as_ref(),
        new_token: &token,
        now,
    })
}

/// The etcd membership step of this pass (reconcile/membership.rs), from the snapshot and the
/// operator's record.
fn decide_membership(
    cluster: &ValidatedCluster,
    snapshot: &Snapshot,
    existing: &[ExistingObject],
    tiers: &[roll::TierPods],
    previous: &CurveClusterStatus,
) -> membership::MembershipDecision {
    let set = component_name(&cluster.name, Component::Etcd);
    // A StatefulSet re-created for new claim templates (expansion.rs) keeps its pods meanwhile:
    // they are its size then.
    let set_replicas = (existing.iter())
        .find(|o| o.kind == ObjectKind::StatefulSet && o.name == set)
        .and_then(|o| o.replicas)
        .or_else(|| {
            (snapshot.pods.iter())
                .filter_map(|p| membership::ordinal(&set, &p.name))
                .max()
                .map(|ordinal| ordinal + 1)
        });
    let record = previous.record.as_ref();
    let peer_url = |ordinal: i32| etcd_peer_url(cluster, &format!("{set}-{ordinal}"));
    let claim_of = |pod: &str| format!("{}-{pod}", desired::etcd::DATA_VOLUME);
    let outdated = (tiers.iter().find(|t| t.component == Component::Etcd))
        .map_or(0, |t| t.pods.len() as i32 - t.updated());
    membership::decide(&membership::MembershipInput {
        target: cluster.spec.etcd.replicas,
        set: &set,
        peer_url: &peer_url,
        set_replicas,
        members: snapshot.etcd.as_ref().and_then(|e| e.members.as_ref()),
        pods: &snapshot.pods,
        claims: &snapshot.claims,
        claim_of: &claim_of,
        settled: record.and_then(|r| r.etcd_members),
        step: record.and_then(|r| r.etcd_step.as_ref()),
        deletes_claims: cluster.spec.cleanup.deletes_data(),
        outdated_pods: outdated,
    })
}

/// Curve's pools, once the ChunkServer tier may run: the topology ConfigMap with the progress
/// the Jobs made, the Job to create or delete, and the record of servers and pool progress.
fn bootstrap_topology(
    cluster: &ValidatedCluster,
    snapshot: &Snapshot,
    desired: &mut Prepared,
    obs: &mut Observation,
    known: &mut OperatorRecord,
) -> Vec<Action> {
    // The topology's own Jobs (a roll's copyset checks are not).
    let jobs: Vec<topology::JobState> = (snapshot.jobs.iter())
        .filter(|j| (j.metadata.labels.as_ref()).is_some_and(|l| l.contains_key(LABEL_STEP)))
        .map(topology::JobState::of)
        .collect();
    let progress = PoolProgress::from_record(known);
    let map = &desired.objects().cluster_map;
    let decision = topology::decide(cluster, map, &progress, &jobs);
    // The ConfigMap was built with the recorded progress: it changes only with the progress.
    if decision.progress != progress {
        let addresses = &desired.objects().addresses;
        let rebuilt = desired::topology::build(cluster, map, &decision.progress, addresses);
        desired.set_topology(rebuilt);
    }
    let map = &desired.objects().cluster_map;
    known.servers = map.recorded_servers();
    known.physical_pool_servers = decision.progress.physical_pool_servers.clone();
    known.logical_pool_created = decision.progress.logical_pool_created;
    known.server_port = decision.progress.server_port;
    obs.topology = Some(TopologyState {
        ready: decision.ready,
        reason: decision.reason,
        message: decision.message,
        servers: map.servers().len() as i32,
    });
    let mut actions: Vec<Action> = decision
        .create
        .map(|step| {
            let job = desired::jobs::build(cluster, step, map);
            Action::Apply(Box::new(Object::Job(job)))
        })
        .into_iter()
        .collect();
    actions.extend(decision.delete.into_iter().map(|name| Action::Delete {
        kind: ObjectKind::Job,
        name,
    }));
    actions
}

/// The tiers whose StatefulSet does not exist yet and is applied by `actions`.
fn created_tiers(
    desired: &DesiredObjects,
    existing: &[ExistingObject],
    actions: &[Action],
) -> Vec<Component> {
    desired
        .tiers()
        .iter()
        .filter(|tier| !plan::tier_exists(existing, tier.component))
        .filter(|tier| {
            let first_set = tier
                .stateful_sets
                .first()
                .and_then(|s| s.metadata.name.as_deref());
            actions.iter().any(|action| {
                matches!(action, Action::Apply(object)
                    if object.kind() == ObjectKind::StatefulSet && Some(object.name()) == first_set)
            })
        })
        .map(|tier| tier.component)
        .collect()
}
