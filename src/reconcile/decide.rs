//! The decide step: one pure function from (validated spec, snapshot, previous status) to
//! everything the write step does and the status it writes. No I/O, no clock: the same inputs
//! give the same decision.

use k8s_openapi::jiff::Timestamp;

use super::events;
use super::model::action::{Action, ExistingObject, Object, ObjectKind};
use super::model::event::ClusterEvent;
use super::model::observation::{DataCleanup, Observation, PrimaryView, TopologyState};
use super::model::states::RollState;
use super::plan;
use super::snapshot::Snapshot;
use super::status::compute_status;
use super::{expansion, membership, monitoring, observe, roll, topology};
use crate::api::{CleanupPolicy, CurveClusterStatus, OperatorRecord};
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
    pub desired: DesiredObjects,
    /// The writes, in order.
    pub actions: Vec<Action>,
    pub observation: Observation,
    /// The components whose StatefulSets this decision creates.
    pub created: Vec<Component>,
    /// The status to write (equal to the previous one when nothing changed).
    pub status: CurveClusterStatus,
    /// What to tell in Events.
    pub events: Vec<ClusterEvent>,
}

impl Decision {
    /// What the operator hands out changes (addresses, servers, pool progress): the record is
    /// written before the actions that rely on it, so an operator killed midway remembers it.
    /// (That the root Secret was ensured is recorded after, with the rest of the status.)
    pub fn hands_out_more(&self, previous: &CurveClusterStatus) -> bool {
        let handed_out = |record: Option<&OperatorRecord>| {
            record.map(|r| OperatorRecord {
                version: r.version,
                root_secret: None,
                ..r.clone()
            })
        };
        let empty = OperatorRecord {
            version: OperatorRecord::VERSION,
            ..OperatorRecord::default()
        };
        handed_out(self.status.record.as_ref())
            != handed_out(previous.record.as_ref().or(Some(&empty)))
    }
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

pub fn decide(
    cluster: &ValidatedCluster,
    snapshot: &Snapshot,
    previous: &CurveClusterStatus,
    generation: Option<i64>,
    now: Timestamp,
) -> Decision {
    let existing = existing_objects(snapshot);
    let (mut safe, mut refused) = plan::refuse_unsafe_changes(cluster, &existing);
    let growth = expansion::plan(
        &mut safe,
        &existing,
        &snapshot.claims,
        &snapshot.storage_classes,
    );
    refused.extend(growth.refused);
    let record = usable_record(previous);
    let tiers = roll::tiers(&snapshot.stateful_sets, &snapshot.pods);
    let membership = decide_membership(&safe, snapshot, &existing, &tiers, previous);
    // The etcd StatefulSet (and its budget) have as many pods as etcd has members.
    safe.spec.etcd.replicas = membership.layout.pods;
    let spec = &safe.spec;
    let pods = &snapshot.pods;
    // Pods left without their StatefulSet (re-created for new claim templates) are a tier
    // that exists.
    let orphaned = expansion::orphaned(&existing, pods);
    let exists =
        |component| plan::tier_exists(&existing, component) || orphaned.contains(&component);
    let mut obs = Observation {
        spec_errors: Vec::new(),
        paused: spec.paused,
        etcd: observe::component(
            pods,
            Component::Etcd,
            cluster.spec.etcd.replicas,
            exists(Component::Etcd),
        ),
        mds: observe::component(
            pods,
            Component::Mds,
            spec.mds.replicas,
            exists(Component::Mds),
        ),
        chunkservers: observe::component(
            pods,
            Component::ChunkServer,
            spec.chunkservers.replicas * spec.chunkservers.disks_per_node,
            exists(Component::ChunkServer),
        ),
        etcd_members: None,
        etcd_quorum: safe.etcd_quorum(),
        roll: RollState::Done,
        membership: membership.state.clone(),
        cleanup: match (&spec.cleanup.policy, spec.cleanup.deletes_data()) {
            (_, true) => DataCleanup::Delete,
            (CleanupPolicy::Delete, false) => DataCleanup::DeleteNotConfirmed,
            (CleanupPolicy::Retain, false) => DataCleanup::Retain,
        },
        tolerated_unready_chunkservers: (spec.logical_pool.replicas - 1) / 2,
        primary: PrimaryView::NotStarted,
        refused: Vec::new(),
        error: None,
        format: observe::format_progress(pods),
        topology: None,
        physical_pool: spec.logical_pool.physical_pool.clone(),
        logical_pool: spec.logical_pool.name.clone(),
        expansions: growth.progress,
        monitoring: Default::default(),
    };
    if obs.mds.exists
        && let Some(reading) = &snapshot.etcd
    {
        obs.primary = observe::primary_view(pods, spec.mds.port, &reading.primary);
        obs.etcd_members = reading.members.clone();
    }
    for (seen, tier) in [&mut obs.etcd, &mut obs.mds, &mut obs.chunkservers]
        .into_iter()
        .zip(&tiers)
    {
        seen.updated = tier.updated();
        seen.images = tier.images();
    }

    let mut known = record.clone().unwrap_or_default();
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
            membership.layout.endpoints,
            spec.etcd.client_port,
            Some(known.etcd_addresses.clone()),
        ),
    };
    let observed = Observed {
        servers: observe::chunkserver_servers(pods, &snapshot.node_zones),
        known_servers: known.servers.clone(),
        pools: PoolProgress::from_record(&known),
        addresses: Some(addresses),
        etcd: Some(membership.layout.clone()),
    };
    let mut desired = desired::build(&safe, &observed);

    let (monitoring_actions, monitoring_state) = monitoring::plan(
        desired.monitoring.as_ref(),
        &snapshot.monitoring_api,
        &snapshot.monitoring_objects,
    );
    obs.monitoring = monitoring_state;
    let mut actions = Vec::new();
    let mut roll_events = Vec::new();
    let acts = !obs.paused && record.is_ok();
    if let Err(why) = &record {
        refused.push(why.clone());
    }
    if !acts {
        // Paused (or unusable memory): the topology stays as last reported, and no volume
        // is asked to grow.
        obs.topology = TopologyState::from_status(previous);
        obs.expansions.clear();
    } else {
        // ChunkServers list every MDS by IP in their config: they start once all MDS pods have
        // one, so the first ChunkServers do not roll when the last MDS gets its address.
        let mds_addressed = observe::all_members_addressed(
            pods,
            &component_name(&safe.name, Component::Mds),
            spec.mds.replicas,
        );
        let chunkservers_may_start = matches!(obs.primary, PrimaryView::Elected { .. })
            && (obs.chunkservers.exists || mds_addressed);
        let gates = plan::gates(obs.etcd_quorate(), chunkservers_may_start);
        let mut job_actions = Vec::new();
        if gates.chunkservers {
            job_actions = bootstrap_topology(&safe, snapshot, &mut desired, &mut obs, &mut known);
            known.mds_addresses = desired.addresses.mds.clone();
            known.etcd_addresses = desired.addresses.etcd.clone();
        }
        if gates.mds {
            // MDS, ChunkServers and the tools read the root password: it exists before them.
            let secret = root_secret_name(&safe.name);
            if known.root_secret.as_deref() != Some(secret.as_str())
                || observe::secret_missing(pods, &secret)
            {
                actions.push(Action::EnsureRootSecret {
                    name: secret.clone(),
                });
            }
            known.root_secret = Some(secret);
        }
        // The member-list change first: what it changes is applied in a later pass, once
        // the member list shows it. None while a StatefulSet is re-created for new claims.
        let recreating = expansion::recreating(&existing, pods);
        if !recreating {
            actions.extend(membership.change.clone().map(Action::EtcdMembers));
        }
        // Claims grow first: a StatefulSet re-created for new claim templates finds them asked.
        actions.extend(growth.actions);
        let applies = plan::plan(&desired, &existing, gates);
        actions.extend(expansion::recreate_changed_sets(applies, &existing));
        actions.extend(monitoring_actions);
        actions.extend(
            (membership.restart_pod.clone()).map(|(name, uid)| Action::DeletePod { name, uid }),
        );
        actions.extend((membership.delete_claim.clone()).map(|name| Action::DeleteClaim { name }));
        known.etcd_members = membership.settled;
        known.etcd_step = membership.step.clone();
        actions.extend(job_actions);
        // A template applied now is rolled once its StatefulSet took it (a later pass); a
        // StatefulSet being re-created has pods of no revision.
        let templates_change = actions.iter().any(|a| {
            matches!(a, Action::Apply(o) if o.kind() == ObjectKind::StatefulSet)
                || matches!(a, Action::OrphanStatefulSet { .. })
        }) || recreating;
        // A roll waits for a membership change to finish (and membership for a roll).
        if !templates_change && membership.step.is_none() {
            let checks = roll::Checks {
                jobs: &snapshot.jobs,
                node_zones: &snapshot.node_zones,
                pool_created: known.logical_pool_created,
            };
            let roll = roll::decide(&safe, &tiers, &obs, checks, now);
            obs.roll = roll.state;
            actions.extend(roll.actions);
            roll_events = roll.events;
        }
    }
    obs.refused = refused;

    // What this decision creates exists once it is carried out, with no pod ready yet.
    let mut created = created_tiers(&desired, &existing, &actions);
    created.retain(|c| !orphaned.contains(c));
    for component in &created {
        match component {
            Component::Etcd => obs.etcd.exists = true,
            Component::Mds => obs.mds.exists = true,
            Component::ChunkServer => obs.chunkservers.exists = true,
            Component::Topology => {}
        }
    }
    let mut status = compute_status(previous, &obs, generation, now);
    if let Ok(record) = record
        && acts
    {
        status.record = Some(OperatorRecord {
            version: record.version,
            ..known
        });
    }
    let mut events = events::derive(previous, &status, &created);
    if acts {
        events.extend(membership.events);
    }
    events.extend(roll_events);
    Decision {
        desired,
        actions,
        observation: obs,
        created,
        status,
        events,
    }
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
                .filter_map(|p| membership::ordinal(&set, p.metadata.name.as_deref()?))
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
    desired: &mut DesiredObjects,
    obs: &mut Observation,
    known: &mut OperatorRecord,
) -> Vec<Action> {
    // The topology's own Jobs (a roll's copyset checks are not).
    let jobs: Vec<topology::JobState> = (snapshot.jobs.iter())
        .filter(|j| (j.metadata.labels.as_ref()).is_some_and(|l| l.contains_key(LABEL_STEP)))
        .map(topology::JobState::of)
        .collect();
    let progress = PoolProgress::from_record(known);
    let decision = topology::decide(cluster, &desired.cluster_map, &progress, &jobs);
    desired.topology = desired::topology::build(
        cluster,
        &desired.cluster_map,
        &decision.progress,
        &desired.addresses,
    );
    known.servers = desired.cluster_map.recorded_servers();
    known.physical_pool_servers = decision.progress.physical_pool_servers.clone();
    known.logical_pool_created = decision.progress.logical_pool_created;
    obs.topology = Some(TopologyState {
        ready: decision.ready,
        reason: decision.reason,
        message: decision.message,
        servers: desired.cluster_map.servers.len() as i32,
    });
    let mut actions: Vec<Action> = decision
        .create
        .map(|step| {
            let job = desired::jobs::build(cluster, step, &desired.cluster_map);
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
