//! Retiring and replacing ChunkServers, one at a time (issue 29). Pure.
//!
//! A ChunkServer leaves Curve in the order Curve supports (curve-day2-facts.md §2.2): set
//! PENDDING, and the MDS's copyset scheduler moves each copyset it holds to another
//! ChunkServer of its zone (C:src/mds/schedule/copySetScheduler.cpp l.47-83, 166-183); once the
//! MDS places no copyset on it and no operator is in flight its pod stops, and Curve marks it
//! RETIRED when it is no longer online and empty (TrySetChunkServerRetiredIfNeed,
//! C:src/mds/heartbeat/chunkserver_healthy_checker.cpp l.135-179); then it is deleted
//! (`DeleteChunkServer` takes only RETIRED ones, C:src/mds/topology/topology.cpp l.248-268), and
//! its server with its last ChunkServer (`DeleteServer`).
//!
//! Three things make a ChunkServer leave: `spec.chunkservers.replicas` lowered (the highest
//! ordinal of each slot, lowest slot first), `disksPerNode` lowered (the highest slot's
//! ChunkServers, highest ordinal first; its StatefulSet goes once empty), and a lost disk: a
//! pod whose new, empty volume refuses to register under the id the MDS still holds at its
//! `ip:port` (the start script's empty-disk refusal, [`crate::desired::start`]) — the old id
//! leaves the same way, then the pod starts again and registers with a new id.
//!
//! A lost disk alone in its zone (one ChunkServer per server, one server in the zone) cannot
//! be replaced so: its copysets have no other ChunkServer of the zone to move to, and
//! setting the old id RETIRED by hand would not help — the new disk at the same `ip:port`
//! would be taken for the old member of every copyset still listing it, and no scheduler
//! copies anything to it ([`zone_without_target`]). The old id stays PENDDING and the status
//! says the retire is stuck and what unblocks it: another ChunkServer in that zone.
//!
//! The step is kept in `status.record.retire`, written before it is acted on; every action is
//! idempotent and every step is judged on a reading of Curve taken after the step was
//! recorded (the health monitor's token includes it), so a restarted operator carries on.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;

use super::model::action::Action;
use super::model::pod::PodReading;
pub use super::model::states::RetireProgress;
use super::observe::{is_ready, pod_ip, pod_named, pods_of};
use crate::api::{ChunkServerRetire, RetireReason, RetireStep};
use crate::curve::admin::CurveChange;
use crate::curve::inventory::{Inventory, ListedChunkServer};
use crate::curve::topology::{ChunkServerStatus, OnlineState};
use crate::desired::start::parse_empty_disk_refusal;
use crate::names::{Component, slot_set_name};
use crate::validate::ValidatedCluster;

/// What one pass sees.
pub struct RetireInput<'a> {
    /// The spec as asked.
    pub cluster: &'a ValidatedCluster,
    /// The ChunkServer StatefulSets that exist: slot → replicas.
    pub slot_replicas: BTreeMap<i32, i32>,
    pub pods: &'a [Arc<PodReading>],
    pub previous: Option<&'a ChunkServerRetire>,
    /// What the MDS lists, read after the pods and the retire step were last as they are now;
    /// `None` while no such reading exists.
    pub inventory: Option<&'a Inventory>,
    /// The MDS's latest list, even one read before the last change: only for what the status
    /// says, so a judgement that holds until the user acts does not flap with each pod change.
    pub latest_inventory: Option<&'a Inventory>,
    /// Why Curve's copysets are not all healthy (a retire starts only when they are); `None`
    /// when they are.
    pub unhealthy: Option<String>,
    /// The MDS's `PoolUsagePercentLimit` as rendered: the share of a zone's space that can
    /// hold data.
    pub usage_limit_percent: i32,
    pub now: Timestamp,
}

/// What one pass does.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct RetirePlan {
    /// The retire in progress after this pass.
    pub record: Option<ChunkServerRetire>,
    /// Changes to Curve's topology, sent to the elected MDS.
    pub curve: Vec<CurveChange>,
    /// Kubernetes actions: the claim of a retired ChunkServer, the pod of a replaced one.
    pub actions: Vec<Action>,
    /// The replicas each existing ChunkServer StatefulSet keeps (slot → replicas).
    pub slot_replicas: BTreeMap<i32, i32>,
    /// Disk slots the applied spec keeps at least: a removed slot's StatefulSet stays until
    /// its last ChunkServer left.
    pub disks_per_node: i32,
    /// Why a retire the spec asks for does not start (the numbers named); the spec is kept.
    pub refused: Vec<String>,
    /// A ChunkServer whose disk holds an id Curve retired: it can never register.
    pub stale: Vec<String>,
    /// The IP of the server (node) deleted from Curve: it leaves the cluster map.
    pub deleted_server: Option<String>,
    /// What the status says while a retire runs.
    pub progress: Option<RetireProgress>,
}

impl RetireInput<'_> {
    fn spec_slots(&self) -> i32 {
        self.cluster.spec.chunkservers.disks_per_node
    }

    fn spec_replicas(&self) -> i32 {
        self.cluster.spec.chunkservers.replicas
    }

    /// Whether the spec wants the ChunkServer of this slot and ordinal.
    fn wanted(&self, slot: i32, ordinal: i32) -> bool {
        slot < self.spec_slots() && ordinal < self.spec_replicas()
    }

    fn pod(&self, name: &str) -> Option<&PodReading> {
        pod_named(self.pods, name)
            .filter(|p| p.tier == Some(Component::ChunkServer) && !p.terminating)
    }

    /// The slot and ordinal of a ChunkServer pod named `<prefix><slot>-<ordinal>` whose slot's
    /// StatefulSet has that ordinal.
    fn slot_member(&self, pod: &PodReading, prefix: &str) -> Option<(i32, i32)> {
        let name = pod.name.strip_prefix(prefix)?;
        let (slot, ordinal) = name.split_once('-')?;
        let (slot, ordinal): (i32, i32) = (slot.parse().ok()?, ordinal.parse().ok()?);
        let exists = self.slot_replicas.get(&slot).is_some_and(|&r| ordinal < r);
        exists.then_some((slot, ordinal))
    }

    /// `ip:port` of a ChunkServer pod: its IP (host networking: the node's) and its slot's port.
    fn address(&self, slot: i32, pod: &PodReading) -> Option<String> {
        let port = self.cluster.spec.chunkservers.port + slot;
        pod_ip(pod).map(|ip| format!("{ip}:{port}"))
    }
}

fn pod_name(cluster: &str, slot: i32, ordinal: i32) -> String {
    format!("{}-{ordinal}", slot_set_name(cluster, slot))
}

/// The old id a ChunkServer pod's empty disk refuses to take, from its container's
/// termination message (current or last).
pub fn empty_disk_refusal(pod: &PodReading) -> Option<u32> {
    // Said only by a container that stopped: most pods have none, told without reading them.
    if !pod.derived().ended {
        return None;
    }
    pod.containers.iter().find_map(|c| {
        let current = c.state.as_ref().and_then(|s| s.terminated());
        let last = c.last_terminated.as_ref();
        [current, last]
            .into_iter()
            .flatten()
            .find_map(|t| parse_empty_disk_refusal(t.message.as_deref()?))
    })
}

/// The next retire the spec and the pods ask for, if any: a replacement first (copies are
/// already short), then a removed slot, then a scale-in.
fn next_target(input: &RetireInput) -> Option<(RetireReason, i32, i32)> {
    // One pass over the pods (not a lookup per ordinal: clusters have thousands).
    let prefix = format!(
        "{}-",
        crate::names::component_name(&input.cluster.name, Component::ChunkServer)
    );
    let refusing = (pods_of(input.pods, Component::ChunkServer))
        .filter(|p| empty_disk_refusal(p).is_some())
        .filter_map(|p| input.slot_member(p, &prefix))
        .min();
    if let Some((slot, ordinal)) = refusing {
        return Some((RetireReason::Replace, slot, ordinal));
    }
    let removed_slot = (input.slot_replicas.iter().rev())
        .find(|&(&slot, &replicas)| slot >= input.spec_slots() && replicas > 0);
    if let Some((&slot, &replicas)) = removed_slot {
        return Some((RetireReason::DiskSlotRemoved, slot, replicas - 1));
    }
    (input.slot_replicas.iter())
        .find(|&(&slot, &replicas)| slot < input.spec_slots() && replicas > input.spec_replicas())
        .map(|(&slot, &replicas)| (RetireReason::ScaleIn, slot, replicas - 1))
}

/// The field whose change a retire carries out.
fn field(reason: RetireReason) -> &'static str {
    match reason {
        RetireReason::ScaleIn => "spec.chunkservers.replicas",
        RetireReason::DiskSlotRemoved => "spec.chunkservers.disksPerNode",
        RetireReason::Replace => "the lost disk",
    }
}

fn gib(bytes: u64) -> String {
    format!("{:.1} GiB", bytes as f64 / (1u64 << 30) as f64)
}

/// Whether the ChunkServers that stay can hold the pool once every ChunkServer the spec no
/// longer wants has left: each zone (one copy of everything each, zones = copies) keeps a
/// ChunkServer, and the data of each zone fits the zone's remaining space within the MDS's
/// usage limit. The reason, with the numbers, when not.
fn cannot_hold(
    input: &RetireInput,
    inventory: &Inventory,
    leaving: &BTreeSet<String>,
) -> Option<String> {
    let live = (inventory.chunkservers.iter()).filter(|cs| cs.status != ChunkServerStatus::RETIRED);
    let mut zones: BTreeMap<String, (u32, u64, u64)> = BTreeMap::new();
    for cs in live {
        let zone = cs.zone.clone().unwrap_or_default();
        let entry = zones.entry(zone).or_default();
        entry.2 += cs.used;
        if !leaving.contains(&cs.address) {
            entry.0 += 1;
            entry.1 += cs.capacity;
        }
    }
    let copies = input.cluster.spec.logical_pool.replicas;
    for (zone, (staying, capacity, used)) in &zones {
        if *staying == 0 {
            return Some(format!(
                "zone {zone} would keep no ChunkServer, and the pool keeps one copy in each of its {copies} zones"
            ));
        }
        let limit = input.usage_limit_percent.max(0) as u64;
        let room = capacity / 100 * limit;
        if *used > room {
            return Some(format!(
                "zone {zone} holds {} and its {staying} remaining ChunkServers have {} of which Curve fills at most {limit} % ({})",
                gib(*used),
                gib(*capacity),
                gib(room)
            ));
        }
    }
    None
}

/// The addresses of every ChunkServer the spec no longer wants (their pods' addresses). One
/// pass over the pods: a lookup per leaving ordinal grows with pods × ChunkServers leaving.
fn unwanted_addresses(input: &RetireInput) -> BTreeSet<String> {
    let prefix = format!(
        "{}-",
        crate::names::component_name(&input.cluster.name, Component::ChunkServer)
    );
    (pods_of(input.pods, Component::ChunkServer))
        .filter_map(|pod| {
            let (slot, ordinal) = input.slot_member(pod, &prefix)?;
            (!input.wanted(slot, ordinal)).then(|| input.address(slot, pod))?
        })
        .collect()
}

/// The spec change being held, for a refusal: `spec.chunkservers.replicas: 4 → 3`.
fn asked(input: &RetireInput, reason: RetireReason) -> String {
    let most = input.slot_replicas.values().copied().max().unwrap_or(0);
    let slots = input.slot_replicas.len() as i32;
    match reason {
        RetireReason::ScaleIn => format!("{}: {most} → {}", field(reason), input.spec_replicas()),
        _ => format!("{}: {slots} → {}", field(reason), input.spec_slots()),
    }
}

/// Starts the next retire, or says why it cannot start.
fn start(input: &RetireInput, plan: &mut RetirePlan) {
    let Some((reason, slot, ordinal)) = next_target(input) else {
        return;
    };
    let pod_name = pod_name(&input.cluster.name, slot, ordinal);
    let refuse = |plan: &mut RetirePlan, why: String| {
        let change = match reason {
            RetireReason::Replace => format!("replacing the lost disk of pod {pod_name}"),
            _ => asked(input, reason),
        };
        plan.refused.push(format!("{change}: waits: {why}"));
    };
    let Some(inventory) = input.inventory else {
        return refuse(
            plan,
            "Curve's topology has not been read since the last change".into(),
        );
    };
    let pod = input.pod(&pod_name);
    let Some(address) = pod.and_then(|p| input.address(slot, p)) else {
        return refuse(plan, format!("pod {pod_name} has no address yet"));
    };
    let leaving = match reason {
        RetireReason::Replace => None,
        _ => inventory.live_at(&address),
    };
    if reason != RetireReason::Replace {
        if let Some(why) = &input.unhealthy {
            return refuse(plan, format!("every copyset must be healthy first ({why})"));
        }
        if let Some(why) = cannot_hold(input, inventory, &unwanted_addresses(input)) {
            plan.refused
                .push(format!("{} is refused: {why}", asked(input, reason)));
            return;
        }
    }
    let chunkserver = match reason {
        RetireReason::Replace => {
            let old = pod.and_then(empty_disk_refusal);
            match inventory.live_at(&address).filter(|cs| Some(cs.id) == old) {
                Some(cs) => Some(cs),
                // The id the refusal named is gone already: the pod registers anew.
                None => return restart_refused_pod(input, &pod_name, plan),
            }
        }
        _ => leaving,
    };
    let server = chunkserver.and_then(|cs| cs.server);
    // Recorded first (the write step writes a changed record before any action), then sent.
    if let Some(cs) = chunkserver.filter(|cs| cs.status == ChunkServerStatus::READWRITE) {
        plan.curve.push(CurveChange::SetStatus {
            id: cs.id,
            status: ChunkServerStatus::PENDDING,
        });
    }
    plan.record = Some(ChunkServerRetire {
        reason,
        pod: pod_name,
        slot,
        ordinal,
        chunkserver_id: chunkserver.map(|cs| cs.id),
        address,
        server_id: server,
        // Nothing registered there: nothing to drain.
        step: if chunkserver.is_some() {
            RetireStep::Draining
        } else {
            RetireStep::Stopping
        },
        copysets_at_start: chunkserver.map_or(0, |cs| cs.copysets),
        started: Time(input.now),
    });
}

/// A pod refusing an id that is no longer registered starts again now instead of after its
/// crash-loop back-off.
fn restart_refused_pod(input: &RetireInput, pod_name: &str, plan: &mut RetirePlan) {
    if let Some(pod) = input.pod(pod_name)
        && !pod.uid.is_empty()
        && !is_ready(pod)
    {
        plan.actions.push(Action::DeletePod {
            name: pod_name.to_string(),
            uid: pod.uid.clone(),
        });
    }
}

/// Carries a recorded retire one step on.
fn advance(input: &RetireInput, retire: &ChunkServerRetire, plan: &mut RetirePlan) {
    let mut next = retire.clone();
    plan.record = Some(next.clone());
    let Some(inventory) = input.inventory else {
        return;
    };
    let listed = retire
        .chunkserver_id
        .and_then(|id| inventory.chunkserver(id));
    // A change of mind: the spec wants it again, and Curve has not retired it yet.
    if retire.reason != RetireReason::Replace
        && input.wanted(retire.slot, retire.ordinal)
        && listed.is_none_or(|cs| cs.status != ChunkServerStatus::RETIRED)
    {
        if let Some(cs) = listed.filter(|cs| cs.status == ChunkServerStatus::PENDDING) {
            plan.curve.push(CurveChange::SetStatus {
                id: cs.id,
                status: ChunkServerStatus::READWRITE,
            });
        }
        plan.record = None;
        return;
    }
    if retire.step == RetireStep::Deleting {
        return delete(input, inventory, retire, listed, plan);
    }
    // Draining or Stopping.
    match listed {
        None => next.step = RetireStep::Deleting,
        Some(cs) if cs.status == ChunkServerStatus::RETIRED => next.step = RetireStep::Deleting,
        Some(cs) if cs.status == ChunkServerStatus::READWRITE => {
            // Set again after an MDS failover lost it (the status reaches etcd within 60 s).
            plan.curve.push(CurveChange::SetStatus {
                id: cs.id,
                status: ChunkServerStatus::PENDDING,
            });
        }
        Some(cs)
            if retire.step == RetireStep::Draining
                && cs.copysets == 0
                && inventory.operators == Some(0) =>
        {
            next.step = RetireStep::Stopping;
        }
        Some(_) => {}
    }
    plan.record = Some(next);
}

/// The last step: the ChunkServer deleted from Curve, then its server when it was the last
/// one there, then its claim (per `spec.cleanup`) or, for a replacement, the pod restarted.
fn delete(
    input: &RetireInput,
    inventory: &Inventory,
    retire: &ChunkServerRetire,
    listed: Option<&ListedChunkServer>,
    plan: &mut RetirePlan,
) {
    if let Some(cs) = listed {
        // Never while copysets still list it: an id RETIRED by hand (SetChunkServer checks
        // nothing) keeps them, and DeleteChunkServer would take it anyway
        // (C:src/mds/topology/topology.cpp l.248-268).
        if cs.status == ChunkServerStatus::RETIRED && cs.copysets == 0 {
            plan.curve
                .push(CurveChange::DeleteChunkServer { id: cs.id });
        }
        return;
    }
    if retire.reason == RetireReason::Replace {
        plan.record = None;
        return restart_refused_pod(input, &retire.pod, plan);
    }
    if let Some(server) = retire.server_id.and_then(|id| inventory.server(id)) {
        let others = inventory.on_server(server.id).count();
        let pods_there = (pods_of(input.pods, Component::ChunkServer))
            .filter(|p| p.name != retire.pod)
            .any(|p| pod_ip(p) == Some(server.ip.as_str()));
        if others == 0 && !pods_there {
            plan.curve.push(CurveChange::DeleteServer { id: server.id });
            return;
        }
    } else if retire.server_id.is_some() {
        // Deleted in an earlier pass (its entry is gone from the MDS's list): it leaves the
        // cluster map, by its IP.
        plan.deleted_server = retire
            .address
            .rsplit_once(':')
            .map(|(ip, _)| ip.to_string());
    }
    if input.pod(&retire.pod).is_some() {
        // Its StatefulSet has not removed the pod yet.
        return;
    }
    if input.cluster.spec.cleanup.deletes_data() {
        plan.actions.push(Action::DeleteClaim {
            name: format!("data-{}", retire.pod),
        });
    }
    plan.record = None;
}

/// The zone of a leaving ChunkServer when Curve can move none of its copysets: a copyset keeps
/// one copy per zone, so the MDS moves a copy only onto another ChunkServer of the same zone
/// that it may pick, READWRITE and not RETIRED (SelectBestPlacementChunkServer,
/// C:src/mds/schedule/scheduler.cpp:97-140; IsHealthy, C:src/mds/schedule/topoAdapter.cpp:145-149;
/// the pool's list leaves RETIRED ones out, 254-268). One that is only not online counts: it
/// may come back.
///
/// A lost disk's own pod cannot be that ChunkServer, nor can the old id be RETIRED by hand to
/// let it register: at the same `ip:port` the MDS takes the new id for the old member of every
/// copyset whose raft configuration still lists that address (GetChunkserverIdByPeerStr,
/// C:src/mds/heartbeat/heartbeat_manager.cpp:355-375), so no scheduler would copy anything to
/// it (and with only the zones' ChunkServers left, SelectBestPlacementChunkServer finds no more
/// ChunkServers than members, scheduler.cpp:87-95).
fn zone_without_target<'a>(inventory: &Inventory, cs: &'a ListedChunkServer) -> Option<&'a str> {
    let zone = cs.zone.as_deref()?;
    let target = (inventory.chunkservers.iter()).any(|other| {
        other.id != cs.id
            && other.zone.as_deref() == Some(zone)
            && other.status == ChunkServerStatus::READWRITE
    });
    (cs.copysets > 0 && !target).then_some(zone)
}

/// What the status says of a retire in progress.
fn progress(input: &RetireInput, retire: &ChunkServerRetire) -> RetireProgress {
    let listed = (input.inventory)
        .zip(retire.chunkserver_id)
        .and_then(|(inventory, id)| inventory.chunkserver(id));
    let copysets_left = listed.map(|cs| cs.copysets);
    // Only a replacement can be stuck so: a scale-in that empties a zone is refused before it
    // starts (`cannot_hold`).
    let latest = input.inventory.or(input.latest_inventory);
    let in_latest = latest
        .zip(retire.chunkserver_id)
        .and_then(|(inventory, id)| Some((inventory, inventory.chunkserver(id)?)));
    let stuck = match (retire.reason, retire.step, in_latest) {
        (RetireReason::Replace, RetireStep::Draining, Some((inventory, cs))) => {
            zone_without_target(inventory, cs)
        }
        _ => None,
    };
    let who = match retire.chunkserver_id {
        Some(id) => format!("ChunkServer {id} ({}, {})", retire.pod, retire.address),
        None => format!("pod {} ({}, never registered)", retire.pod, retire.address),
    };
    let step = match (retire.step, copysets_left) {
        (RetireStep::Draining, Some(left)) => format!(
            "PENDDING, {left} of {} copysets left to move",
            retire.copysets_at_start
        ),
        (RetireStep::Draining, None) => "PENDDING, copysets being moved".to_string(),
        (RetireStep::Stopping, _) => match listed.map(|cs| cs.online) {
            Some(OnlineState::ONLINE) if retire.reason == RetireReason::Replace => {
                "empty; waits for Curve to mark it RETIRED".to_string()
            }
            Some(OnlineState::ONLINE) => {
                "empty; its pod stops, then Curve marks it RETIRED".to_string()
            }
            _ => "empty and stopped; waits for Curve to mark it RETIRED (within a heartbeat check, 30 s)".to_string(),
        },
        (RetireStep::Deleting, Some(left)) if left > 0 => format!(
            "RETIRED while {left} copysets still list it; deleted once Curve moved them"
        ),
        (RetireStep::Deleting, _) => "RETIRED; being deleted from Curve".to_string(),
    };
    let message = match (retire.reason, stuck) {
        (_, Some(zone)) => format!(
            "replacing {who} is stuck: zone {zone} has no other READWRITE ChunkServer to take its {} copysets (Curve keeps one copy per zone), and the pod's empty disk cannot take them at the same ip:port; add a ChunkServer to zone {zone} (raise spec.chunkservers.disksPerNode, or add a node in that zone with spec.placement.zoneLabel): the copysets then move to it, and the old id, kept PENDDING meanwhile, is RETIRED and deleted before the pod registers a new one",
            in_latest.map_or(retire.copysets_at_start, |(_, cs)| cs.copysets)
        ),
        (RetireReason::Replace, None) => format!(
            "replacing {who}: its pod's disk is empty, so the old id leaves Curve before the pod registers a new one: {step}"
        ),
        (RetireReason::ScaleIn, None) => format!(
            "retiring {who} for {}: {} → {}: {step}",
            field(RetireReason::ScaleIn),
            retire.ordinal + 1,
            input.spec_replicas()
        ),
        (RetireReason::DiskSlotRemoved, None) => format!(
            "retiring {who} for {}: {} → {}: {step}",
            field(RetireReason::DiskSlotRemoved),
            retire.slot + 1,
            input.spec_slots()
        ),
    };
    RetireProgress {
        reason: retire.reason,
        message,
        copysets_left,
        stuck: stuck.is_some(),
    }
}

/// ChunkServer pods that cannot register because Curve retired the id their disk holds
/// (registration with a RETIRED id is refused, C:src/mds/topology/topology_service_manager.cpp
/// l.75-81, and the ChunkServer exits, C:src/chunkserver/chunkserver.cpp l.201-215).
fn stale_ids(input: &RetireInput, plan: &RetirePlan) -> Vec<String> {
    let Some(inventory) = input.inventory else {
        return Vec::new();
    };
    let busy = plan.record.as_ref().map(|r| r.pod.as_str());
    // Only pods not Ready are looked up: usually none, and then the index is not made.
    let candidates: Vec<&PodReading> = pods_of(input.pods, Component::ChunkServer)
        .filter(|pod| pod.disk_slot.is_some())
        .filter(|pod| !(is_ready(pod) || Some(pod.name.as_str()) == busy))
        .collect();
    if candidates.is_empty() {
        return Vec::new();
    }
    // Indexed once: a lookup per pod would be quadratic in the ChunkServers.
    let mut by_address: fnv::FnvHashMap<&str, (bool, u32)> = Default::default();
    for cs in &inventory.chunkservers {
        let live = cs.status != ChunkServerStatus::RETIRED;
        let entry = by_address
            .entry(cs.address.as_str())
            .or_insert((live, cs.id));
        if live {
            *entry = (true, cs.id);
        }
    }
    let mut stale = Vec::new();
    for pod in candidates {
        let name = pod.name.as_str();
        let Some(slot) = pod.disk_slot else {
            continue;
        };
        let Some(address) = input.address(slot, pod) else {
            continue;
        };
        let Some(&(live, id)) = by_address.get(address.as_str()) else {
            continue;
        };
        if live || empty_disk_refusal(pod).is_some() {
            continue;
        }
        stale.push(format!(
            "pod {name}: Curve retired ChunkServer {id} ({address}) and this pod's disk still holds that id, which Curve never accepts again: delete the pod's claim data-{name} and then the pod, so it starts on an empty disk and registers with a new id"
        ));
    }
    stale
}

/// One pass: carry the recorded retire on, or start the next one the spec asks for.
pub fn plan(input: &RetireInput) -> RetirePlan {
    let mut plan = RetirePlan::default();
    match input.previous {
        Some(retire) => advance(input, retire, &mut plan),
        None => start(input, &mut plan),
    }
    // What each slot's StatefulSet keeps: the spec's replicas, or every ordinal that has not
    // left yet; the retiring pod stops once its ChunkServer is empty.
    let stopping = (plan.record.as_ref())
        .filter(|r| r.reason != RetireReason::Replace && r.step >= RetireStep::Stopping);
    for (&slot, &replicas) in &input.slot_replicas {
        let wanted = if slot < input.spec_slots() {
            input.spec_replicas()
        } else {
            0
        };
        let leaving = stopping.is_some_and(|r| r.slot == slot && r.ordinal == replicas - 1);
        let kept = if replicas > wanted {
            replicas - i32::from(leaving)
        } else {
            wanted
        };
        plan.slot_replicas.insert(slot, kept);
    }
    let highest_kept = (plan.slot_replicas.iter())
        .filter(|&(_, &replicas)| replicas > 0)
        .map(|(&slot, _)| slot + 1)
        .max()
        .unwrap_or(0);
    plan.disks_per_node = highest_kept;
    plan.progress = plan.record.as_ref().map(|r| progress(input, r));
    plan.stale = stale_ids(input, &plan);
    plan
}

#[cfg(test)]
#[path = "retire_tests.rs"]
mod tests;
