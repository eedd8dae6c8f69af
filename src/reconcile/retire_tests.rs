use k8s_openapi::api::core::v1::Pod;
use serde_json::json;

use super::*;
use crate::curve::inventory::ListedServer;
use crate::reconcile::fixtures::{read, t, validated};

const PORT: i32 = 8200;

/// A ChunkServer pod of `slot` and `ordinal` on the node with `ip`.
fn cs_pod(slot: i32, ordinal: i32, ip: &str, ready: bool) -> Pod {
    serde_json::from_value(json!({
        "metadata": {"name": format!("demo-chunkserver-{slot}-{ordinal}"), "uid": format!("uid-{slot}-{ordinal}"),
            "labels": {"app.kubernetes.io/component": "chunkserver", "curve.opencurve.io/disk-slot": slot.to_string()}},
        "spec": {"containers": [], "nodeName": format!("node-{ip}")},
        "status": {"podIP": ip, "hostIP": ip,
            "conditions": [{"type": "Ready", "status": if ready { "True" } else { "False" }}]}
    }))
    .unwrap()
}

/// The pod refusing its empty disk, as the kubelet shows it in a crash loop.
fn refusing(mut pod: Pod, id: u32, address: &str) -> Pod {
    let message = crate::desired::start::empty_disk_refusal(id, address, "READWRITE", "UNSTABLE");
    pod.status.as_mut().unwrap().container_statuses = Some(vec![
        serde_json::from_value(json!({
            "name": "chunkserver", "image": "curve:1", "imageID": "", "ready": false, "restartCount": 2,
            "state": {"waiting": {"reason": "CrashLoopBackOff"}},
            "lastState": {"terminated": {"exitCode": 1, "reason": "Error", "message": message}}
        }))
        .unwrap(),
    ]);
    pod
}

fn ip(server: u32) -> String {
    format!("10.0.0.{server}")
}

/// Curve's view of `servers` servers (zones round-robin over 3) with `slots` ChunkServers
/// each; ChunkServer ids count from 1, server by server.
struct World {
    pods: Vec<Pod>,
    inventory: Inventory,
    slot_replicas: BTreeMap<i32, i32>,
}

impl World {
    fn new(servers: u32, slots: i32) -> World {
        let mut inventory = Inventory {
            operators: Some(0),
            ..Inventory::default()
        };
        let mut pods = Vec::new();
        for server in 1..=servers {
            let zone = format!("zone{}", (server - 1) % 3 + 1);
            inventory.servers.push(ListedServer {
                id: server,
                name: format!("node-{}", ip(server)),
                ip: ip(server),
                zone: zone.clone(),
            });
            for slot in 0..slots {
                inventory.chunkservers.push(ListedChunkServer {
                    id: (server - 1) * slots as u32 + slot as u32 + 1,
                    address: format!("{}:{}", ip(server), PORT + slot),
                    status: ChunkServerStatus::READWRITE,
                    online: OnlineState::ONLINE,
                    copysets: 10,
                    capacity: 100 << 30,
                    used: 10 << 30,
                    server: Some(server),
                    zone: Some(zone.clone()),
                });
                pods.push(cs_pod(slot, server as i32 - 1, &ip(server), true));
            }
        }
        World {
            pods,
            inventory,
            slot_replicas: (0..slots).map(|s| (s, servers as i32)).collect(),
        }
    }

    fn cs(&mut self, id: u32) -> &mut ListedChunkServer {
        (self.inventory.chunkservers.iter_mut())
            .find(|cs| cs.id == id)
            .unwrap()
    }

    fn plan(&self, cluster: &ValidatedCluster, previous: Option<&ChunkServerRetire>) -> RetirePlan {
        plan(&RetireInput {
            cluster,
            slot_replicas: self.slot_replicas.clone(),
            pods: &read(self.pods.clone()),
            previous,
            inventory: Some(&self.inventory),
            latest_inventory: Some(&self.inventory),
            unhealthy: None,
            usage_limit_percent: 80,
            now: t(0),
        })
    }

    /// The StatefulSets shrink to what the plan keeps, taking their highest pods.
    fn apply_replicas(&mut self, plan: &RetirePlan) {
        self.slot_replicas = plan.slot_replicas.clone();
        let kept = plan.slot_replicas.clone();
        self.pods.retain(|p| {
            let name = p.metadata.name.clone().unwrap();
            let mut parts = name.rsplit('-');
            let ordinal: i32 = parts.next().unwrap().parse().unwrap();
            let slot: i32 = parts.next().unwrap().parse().unwrap();
            kept.get(&slot).is_some_and(|&r| ordinal < r)
        });
        self.slot_replicas.retain(|_, r| *r > 0);
    }

    /// Curve carries out the changes the way the MDS does.
    fn apply_curve(&mut self, changes: &[CurveChange]) {
        for change in changes {
            match change {
                CurveChange::SetStatus { id, status } => self.cs(*id).status = *status,
                CurveChange::DeleteChunkServer { id } => {
                    assert_eq!(self.cs(*id).status, ChunkServerStatus::RETIRED);
                    self.inventory.chunkservers.retain(|cs| cs.id != *id);
                }
                CurveChange::DeleteServer { id } => {
                    assert_eq!(self.inventory.on_server(*id).count(), 0);
                    self.inventory.servers.retain(|s| s.id != *id);
                }
                CurveChange::RapidLeaderSchedule => panic!("not a retire's change"),
            }
        }
    }
}

fn demo(replicas: i32, slots: i32) -> ValidatedCluster {
    validated(
        json!({"chunkservers": {"replicas": replicas, "disksPerNode": slots, "storage": {"size": "100Gi"}}}),
    )
}

#[test]
fn a_scale_in_drains_stops_retires_and_deletes_one_chunkserver_then_its_server() {
    let mut world = World::new(4, 1);
    let cluster = demo(3, 1);

    let started = world.plan(&cluster, None);
    let retire = started.record.clone().unwrap();
    assert_eq!(
        (
            retire.reason,
            retire.pod.as_str(),
            retire.chunkserver_id,
            retire.address.as_str()
        ),
        (
            RetireReason::ScaleIn,
            "demo-chunkserver-0-3",
            Some(4),
            "10.0.0.4:8200"
        )
    );
    assert_eq!(
        (retire.step, retire.server_id, retire.copysets_at_start),
        (RetireStep::Draining, Some(4), 10)
    );
    assert_eq!(
        started.curve,
        [CurveChange::SetStatus {
            id: 4,
            status: ChunkServerStatus::PENDDING
        }]
    );
    assert_eq!(
        started.slot_replicas,
        BTreeMap::from([(0, 4)]),
        "the pod runs while it drains"
    );
    let progress = started.progress.clone().unwrap();
    assert_eq!(progress.copysets_left, Some(10));
    assert_eq!(
        progress.message,
        "retiring ChunkServer 4 (demo-chunkserver-0-3, 10.0.0.4:8200) for spec.chunkservers.replicas: 4 → 3: PENDDING, 10 of 10 copysets left to move"
    );
    world.apply_curve(&started.curve);

    // Copysets move; an operator still in flight holds the step.
    world.cs(4).copysets = 0;
    world.inventory.operators = Some(1);
    let draining = world.plan(&cluster, Some(&retire));
    assert_eq!(draining.record, Some(retire.clone()));
    assert!(draining.curve.is_empty());

    world.inventory.operators = Some(0);
    let stopping = world.plan(&cluster, Some(&retire));
    let retire = stopping.record.clone().unwrap();
    assert_eq!(retire.step, RetireStep::Stopping);
    assert_eq!(
        stopping.slot_replicas,
        BTreeMap::from([(0, 3)]),
        "the pod stops"
    );
    world.apply_replicas(&stopping);

    // Curve marks it RETIRED once it is not online.
    world.cs(4).online = OnlineState::UNSTABLE;
    let waiting = world.plan(&cluster, Some(&retire));
    assert_eq!(waiting.record, Some(retire.clone()));
    world.cs(4).status = ChunkServerStatus::RETIRED;
    let deleting = world.plan(&cluster, Some(&retire));
    let retire = deleting.record.clone().unwrap();
    assert_eq!(retire.step, RetireStep::Deleting);
    assert!(deleting.curve.is_empty(), "recorded before it is deleted");

    let delete = world.plan(&cluster, Some(&retire));
    assert_eq!(delete.curve, [CurveChange::DeleteChunkServer { id: 4 }]);
    assert_eq!(delete.record, Some(retire.clone()));
    world.apply_curve(&delete.curve);
    let server = world.plan(&cluster, Some(&retire));
    assert_eq!(server.curve, [CurveChange::DeleteServer { id: 4 }]);
    world.apply_curve(&server.curve);

    let done = world.plan(&cluster, Some(&retire));
    assert_eq!(done.record, None);
    assert_eq!(done.deleted_server.as_deref(), Some("10.0.0.4"));
    assert!(done.actions.is_empty(), "spec.cleanup retains the claim");
    assert_eq!(done.slot_replicas, BTreeMap::from([(0, 3)]));
    assert_eq!(
        world.plan(&cluster, None),
        RetirePlan {
            slot_replicas: BTreeMap::from([(0, 3)]),
            disks_per_node: 1,
            ..RetirePlan::default()
        }
    );
}

#[test]
fn a_retired_chunkserver_s_claim_goes_when_cleanup_deletes_data() {
    let mut world = World::new(4, 1);
    let cluster = validated(json!({
        "chunkservers": {"replicas": 3, "storage": {"size": "100Gi"}},
        "cleanup": {"policy": "Delete", "confirmation": "yes-really-destroy-data"}
    }));
    let retire = ChunkServerRetire {
        step: RetireStep::Deleting,
        ..world.plan(&cluster, None).record.unwrap()
    };
    world.inventory.chunkservers.retain(|cs| cs.id != 4);
    world.inventory.servers.retain(|s| s.id != 4);
    world
        .pods
        .retain(|p| p.metadata.name.as_deref() != Some("demo-chunkserver-0-3"));
    let done = world.plan(&cluster, Some(&retire));
    assert_eq!(
        done.actions,
        [Action::DeleteClaim {
            name: "data-demo-chunkserver-0-3".into()
        }]
    );
    assert_eq!(done.record, None);
}

#[test]
fn every_recorded_step_sends_its_change_again_after_a_restart() {
    let mut world = World::new(4, 1);
    let cluster = demo(3, 1);
    let retire = world.plan(&cluster, None).record.unwrap();
    // Killed before SetChunkServer reached the MDS (or an MDS failover lost it).
    let again = world.plan(&cluster, Some(&retire));
    assert_eq!(
        again.curve,
        [CurveChange::SetStatus {
            id: 4,
            status: ChunkServerStatus::PENDDING
        }]
    );
    assert_eq!(again.record, Some(retire.clone()));

    world.cs(4).status = ChunkServerStatus::RETIRED;
    world.cs(4).copysets = 0;
    let deleting = ChunkServerRetire {
        step: RetireStep::Deleting,
        ..retire.clone()
    };
    world.pods.pop();
    world.slot_replicas.insert(0, 3);
    for _ in 0..2 {
        let plan = world.plan(&cluster, Some(&deleting));
        assert_eq!(plan.curve, [CurveChange::DeleteChunkServer { id: 4 }]);
    }
    let stopping = ChunkServerRetire {
        step: RetireStep::Stopping,
        ..retire
    };
    world.cs(4).status = ChunkServerStatus::READWRITE;
    let reverted = world.plan(&cluster, Some(&stopping));
    assert_eq!(
        reverted.curve,
        [CurveChange::SetStatus {
            id: 4,
            status: ChunkServerStatus::PENDDING
        }]
    );
}

#[test]
fn nothing_moves_without_a_reading_taken_after_the_step() {
    let world = World::new(4, 1);
    let cluster = demo(3, 1);
    let retire = world.plan(&cluster, None).record.unwrap();
    let blind = plan(&RetireInput {
        cluster: &cluster,
        slot_replicas: world.slot_replicas.clone(),
        pods: &read(world.pods.clone()),
        previous: Some(&retire),
        inventory: None,
        latest_inventory: None,
        unhealthy: None,
        usage_limit_percent: 80,
        now: t(5),
    });
    assert_eq!(blind.record, Some(retire));
    assert!(blind.curve.is_empty() && blind.actions.is_empty());
    assert_eq!(blind.slot_replicas, BTreeMap::from([(0, 4)]));
}

#[test]
fn a_change_of_mind_sets_the_chunkserver_back_to_readwrite() {
    let mut world = World::new(4, 1);
    let retire = world.plan(&demo(3, 1), None).record.unwrap();
    world.cs(4).status = ChunkServerStatus::PENDDING;
    world.cs(4).copysets = 6;
    let back = world.plan(&demo(4, 1), Some(&retire));
    assert_eq!(
        back.curve,
        [CurveChange::SetStatus {
            id: 4,
            status: ChunkServerStatus::READWRITE
        }]
    );
    assert_eq!(back.record, None);
    assert_eq!(back.slot_replicas, BTreeMap::from([(0, 4)]));

    // Stopped but not RETIRED yet: the pod comes back with its id.
    let stopping = ChunkServerRetire {
        step: RetireStep::Stopping,
        ..retire.clone()
    };
    world.slot_replicas.insert(0, 3);
    let back = world.plan(&demo(4, 1), Some(&stopping));
    assert_eq!(back.record, None);
    assert_eq!(back.slot_replicas, BTreeMap::from([(0, 4)]));

    // RETIRED: Curve never takes it back, the retire finishes.
    world.cs(4).status = ChunkServerStatus::RETIRED;
    let on = world.plan(&demo(4, 1), Some(&stopping));
    assert_eq!(on.record.unwrap().step, RetireStep::Deleting);
}

#[test]
fn refusals_keep_the_cluster_and_name_the_numbers() {
    let world = World::new(4, 1);
    let unhealthy = plan(&RetireInput {
        cluster: &demo(3, 1),
        slot_replicas: world.slot_replicas.clone(),
        pods: &read(world.pods.clone()),
        previous: None,
        inventory: Some(&world.inventory),
        latest_inventory: None,
        unhealthy: Some("2 of 100 copysets unhealthy".into()),
        usage_limit_percent: 80,
        now: t(0),
    });
    assert_eq!(
        unhealthy.refused,
        [
            "spec.chunkservers.replicas: 4 → 3: waits: every copyset must be healthy first (2 of 100 copysets unhealthy)"
        ]
    );
    assert_eq!(
        (unhealthy.record, unhealthy.slot_replicas),
        (None, BTreeMap::from([(0, 4)]))
    );

    // Server 4 alone in zone3 (servers 1 and 3 in zone1): its leaving empties a zone.
    let mut world = World::new(4, 1);
    for (server, zone) in [(3, "zone1"), (4, "zone3")] {
        world.inventory.servers[server - 1].zone = zone.into();
        world.cs(server as u32).zone = Some(zone.into());
    }
    let zone = world.plan(&demo(3, 1), None);
    assert_eq!(
        zone.refused,
        [
            "spec.chunkservers.replicas: 4 → 3 is refused: zone zone3 would keep no ChunkServer, and the pool keeps one copy in each of its 3 zones"
        ]
    );
    assert_eq!(zone.slot_replicas, BTreeMap::from([(0, 4)]));

    // zone1 (servers 1 and 4) holds 90 GiB; server 1 alone gives 100 GiB, 80 % of it usable.
    let mut world = World::new(4, 1);
    world.cs(1).used = 45 << 30;
    world.cs(4).used = 45 << 30;
    let full = world.plan(&demo(3, 1), None);
    assert_eq!(
        full.refused,
        [
            "spec.chunkservers.replicas: 4 → 3 is refused: zone zone1 holds 90.0 GiB and its 1 remaining ChunkServers have 100.0 GiB of which Curve fills at most 80 % (80.0 GiB)"
        ]
    );
    assert_eq!(full.record, None);
    // Reverting the spec is accepted: nothing to do, nothing refused.
    assert_eq!(world.plan(&demo(4, 1), None).refused, Vec::<String>::new());
}

#[test]
fn removing_a_disk_slot_retires_its_chunkservers_from_the_highest_ordinal_then_drops_it() {
    let mut world = World::new(3, 2);
    let cluster = demo(3, 1);
    let mut order = Vec::new();
    let mut previous: Option<ChunkServerRetire> = None;
    for _ in 0..40 {
        let plan = world.plan(&cluster, previous.as_ref());
        assert!(plan.refused.is_empty(), "{:?}", plan.refused);
        world.apply_curve(&plan.curve);
        world.apply_replicas(&plan);
        if let Some(retire) = &plan.record {
            if previous.as_ref().is_none_or(|p| p.pod != retire.pod) {
                order.push(retire.pod.clone());
                assert_eq!(
                    plan.disks_per_node, 2,
                    "the slot stays while its ChunkServers leave"
                );
            }
            // Curve drains and retires as the MDS would.
            if let Some(id) = retire.chunkserver_id
                && let Some(cs) = world
                    .inventory
                    .chunkservers
                    .iter_mut()
                    .find(|cs| cs.id == id)
            {
                cs.copysets = 0;
                if retire.step == RetireStep::Stopping {
                    cs.status = ChunkServerStatus::RETIRED;
                }
            }
        }
        previous = plan.record.clone();
        if previous.is_none() && order.len() == 3 {
            assert_eq!(plan.disks_per_node, 1);
            break;
        }
    }
    assert_eq!(
        order,
        [
            "demo-chunkserver-1-2",
            "demo-chunkserver-1-1",
            "demo-chunkserver-1-0"
        ]
    );
    assert_eq!(world.slot_replicas, BTreeMap::from([(0, 3)]));
    assert_eq!(
        world.inventory.servers.len(),
        3,
        "every server keeps its slot-0 ChunkServer"
    );
}

/// Pod 1's claim was lost: its new pod's empty disk refuses id 2, still READWRITE at its
/// address. The first plan records the replacement and sets id 2 PENDDING, nothing else.
fn replacing_id_2(world: &mut World, cluster: &ValidatedCluster) -> RetirePlan {
    world.pods[1] = refusing(cs_pod(0, 1, &ip(2), false), 2, "10.0.0.2:8200");
    world.cs(2).online = OnlineState::UNSTABLE;
    let started = world.plan(cluster, None);
    let retire = started.record.clone().unwrap();
    assert_eq!(
        (retire.reason, retire.chunkserver_id, retire.step),
        (RetireReason::Replace, Some(2), RetireStep::Draining)
    );
    assert_eq!(
        started.curve,
        [CurveChange::SetStatus {
            id: 2,
            status: ChunkServerStatus::PENDDING
        }]
    );
    started
}

#[test]
fn a_lost_disk_is_replaced_only_after_its_old_id_left() {
    // Six servers: zone2 has servers 2 and 5, so id 2's copysets can move to id 5.
    let mut world = World::new(6, 1);
    let cluster = demo(6, 1);
    let started = replacing_id_2(&mut world, &cluster);
    let retire = started.record.clone().unwrap();
    assert_eq!(started.slot_replicas, BTreeMap::from([(0, 6)]));
    let progress = started.progress.unwrap();
    assert_eq!(progress.reason, RetireReason::Replace);
    assert!(!progress.stuck, "id 5 can take the copies");
    assert!(
        progress
            .message
            .starts_with("replacing ChunkServer 2 (demo-chunkserver-0-1, 10.0.0.2:8200)"),
        "{}",
        progress.message
    );
    world.apply_curve(&started.curve);

    world.cs(2).copysets = 0;
    let empty = world.plan(&cluster, Some(&retire));
    let retire = empty.record.unwrap();
    assert_eq!(retire.step, RetireStep::Stopping);
    assert_eq!(
        empty.slot_replicas,
        BTreeMap::from([(0, 6)]),
        "the replacing pod stays"
    );
    world.cs(2).status = ChunkServerStatus::RETIRED;
    let retire = world.plan(&cluster, Some(&retire)).record.unwrap();
    let delete = world.plan(&cluster, Some(&retire));
    assert_eq!(delete.curve, [CurveChange::DeleteChunkServer { id: 2 }]);
    assert!(
        delete.actions.is_empty(),
        "the pod waits until the old id is gone"
    );
    world.apply_curve(&delete.curve);
    let done = world.plan(&cluster, Some(&retire));
    assert_eq!(done.record, None);
    assert_eq!(
        done.actions,
        [Action::DeletePod {
            name: "demo-chunkserver-0-1".into(),
            uid: "uid-0-1".into()
        }]
    );
    assert_eq!(done.deleted_server, None, "the server keeps its place");
}

#[test]
fn a_replacement_does_not_wait_for_healthy_copysets_but_a_scale_in_waits_for_it() {
    let mut world = World::new(4, 1);
    world.pods[1] = refusing(cs_pod(0, 1, &ip(2), false), 2, "10.0.0.2:8200");
    let replace = plan(&RetireInput {
        cluster: &demo(3, 1),
        slot_replicas: world.slot_replicas.clone(),
        pods: &read(world.pods.clone()),
        previous: None,
        inventory: Some(&world.inventory),
        latest_inventory: None,
        unhealthy: Some("10 copysets have 2 of 3 copies".into()),
        usage_limit_percent: 80,
        now: t(0),
    });
    assert_eq!(
        replace.record.unwrap().reason,
        RetireReason::Replace,
        "replacements go first"
    );
}

#[test]
fn a_disk_holding_a_retired_id_is_named_with_what_to_do() {
    let mut world = World::new(3, 1);
    world.cs(3).status = ChunkServerStatus::RETIRED;
    world.pods[2] = cs_pod(0, 2, &ip(3), false);
    let plan = world.plan(&demo(3, 1), None);
    assert_eq!(
        plan.stale,
        [
            "pod demo-chunkserver-0-2: Curve retired ChunkServer 3 (10.0.0.3:8200) and this pod's disk still holds that id, which Curve never accepts again: delete the pod's claim data-demo-chunkserver-0-2 and then the pod, so it starts on an empty disk and registers with a new id"
        ]
    );
}

#[test]
fn a_refusal_naming_an_id_already_gone_restarts_the_pod() {
    let mut world = World::new(3, 1);
    world.pods[1] = refusing(cs_pod(0, 1, &ip(2), false), 2, "10.0.0.2:8200");
    world.inventory.chunkservers.retain(|cs| cs.id != 2);
    let plan = world.plan(&demo(3, 1), None);
    assert_eq!(plan.record, None);
    assert_eq!(
        plan.actions,
        [Action::DeletePod {
            name: "demo-chunkserver-0-1".into(),
            uid: "uid-0-1".into()
        }]
    );
}

/// A scale-in of several servers with several disk slots weighs every ChunkServer that leaves:
/// servers 5 and 6, both slots. zone3 keeps server 3's two ChunkServers, too small for what
/// servers 3 and 6 hold.
#[test]
fn a_scale_in_counts_every_leaving_chunkserver_of_every_slot() {
    let mut world = World::new(6, 2);
    for id in [5, 6, 11, 12] {
        world.cs(id).used = 45 << 30;
    }
    let refused = world.plan(&demo(4, 2), None);
    assert_eq!(
        refused.refused,
        [
            "spec.chunkservers.replicas: 6 → 4 is refused: zone zone3 holds 180.0 GiB and its 2 remaining ChunkServers have 200.0 GiB of which Curve fills at most 80 % (160.0 GiB)"
        ]
    );
    assert_eq!(refused.record, None);
    // With server 6 emptied, what zone3 holds fits server 3: the retire starts, highest
    // ordinal of the lowest slot first.
    for id in [11, 12] {
        world.cs(id).used = 0;
    }
    let started = world.plan(&demo(4, 2), None);
    assert_eq!(started.refused, Vec::<String>::new());
    let record = started.record.unwrap();
    assert_eq!((record.slot, record.ordinal), (0, 5));
}

/// Issue 32: one ChunkServer per server and one server per zone. The lost disk's old id cannot
/// drain (no other ChunkServer in its zone) and is never RETIRED or deleted by the operator
/// while copysets list it: the retire says it is stuck and what unblocks it, and goes on as
/// soon as the zone has another READWRITE ChunkServer.
#[test]
fn a_lost_disk_alone_in_its_zone_is_stuck_until_its_zone_gets_another_chunkserver() {
    let mut world = World::new(3, 1);
    let cluster = demo(3, 1);
    // PENDDING only: its copysets move as soon as a target exists.
    let started = replacing_id_2(&mut world, &cluster);
    let retire = started.record.clone().unwrap();
    let stuck = started.progress.unwrap();
    assert!(stuck.stuck);
    assert_eq!(
        stuck.message,
        "replacing ChunkServer 2 (demo-chunkserver-0-1, 10.0.0.2:8200) is stuck: zone zone2 has no other READWRITE ChunkServer to take its 10 copysets (Curve keeps one copy per zone), and the pod's empty disk cannot take them at the same ip:port; add a ChunkServer to zone zone2 (raise spec.chunkservers.disksPerNode, or add a node in that zone with spec.placement.zoneLabel): the copysets then move to it, and the old id, kept PENDDING meanwhile, is RETIRED and deleted before the pod registers a new one"
    );
    world.apply_curve(&started.curve);

    // Nothing moves, however long: the old id is neither RETIRED nor deleted by the operator.
    world.cs(2).online = OnlineState::OFFLINE;
    for _ in 0..3 {
        let waiting = world.plan(&cluster, Some(&retire));
        assert_eq!(waiting.record, Some(retire.clone()));
        assert!(waiting.curve.is_empty() && waiting.actions.is_empty());
        assert!(waiting.progress.unwrap().stuck);
    }
    // Read before the last change (no current inventory), the latest list still says so.
    let blind = plan(&RetireInput {
        cluster: &cluster,
        slot_replicas: world.slot_replicas.clone(),
        pods: &read(world.pods.clone()),
        previous: Some(&retire),
        inventory: None,
        latest_inventory: Some(&world.inventory),
        unhealthy: None,
        usage_limit_percent: 80,
        now: t(5),
    });
    assert!(blind.progress.unwrap().stuck);
    assert!(blind.curve.is_empty() && blind.actions.is_empty());

    // Another ChunkServer of zone2 that is PENDDING itself cannot take a copy.
    let mut other = world.inventory.chunkservers[1].clone();
    other.id = 4;
    other.address = "10.0.0.2:8201".into();
    other.status = ChunkServerStatus::PENDDING;
    other.online = OnlineState::ONLINE;
    world.inventory.chunkservers.push(other);
    assert!(world.plan(&cluster, Some(&retire)).progress.unwrap().stuck);
    // READWRITE (a second disk slot on that node): the drain goes on as usual.
    world.cs(4).status = ChunkServerStatus::READWRITE;
    let draining = world.plan(&cluster, Some(&retire));
    let progress = draining.progress.unwrap();
    assert!(!progress.stuck);
    assert!(
        progress
            .message
            .ends_with("PENDDING, 10 of 10 copysets left to move"),
        "{}",
        progress.message
    );
    world.cs(2).copysets = 0;
    let empty = world.plan(&cluster, Some(&retire));
    assert_eq!(empty.record.unwrap().step, RetireStep::Stopping);
}

#[test]
fn only_a_replacement_with_copysets_and_no_readwrite_neighbour_is_stuck() {
    let mut world = World::new(3, 1);
    let record = |reason, step| ChunkServerRetire {
        reason,
        pod: "demo-chunkserver-0-1".into(),
        slot: 0,
        ordinal: 1,
        chunkserver_id: Some(2),
        address: "10.0.0.2:8200".into(),
        server_id: Some(2),
        step,
        copysets_at_start: 10,
        started: Time(t(0)),
    };
    let stuck = |world: &World, reason, step| {
        let mut retire = record(reason, step);
        if reason == RetireReason::ScaleIn {
            // An ordinal the spec does not want back, else the retire is called off.
            retire.ordinal = 3;
        }
        let progress = world.plan(&demo(3, 1), Some(&retire)).progress;
        progress.unwrap().stuck
    };
    world.cs(2).status = ChunkServerStatus::PENDDING;
    assert!(stuck(&world, RetireReason::Replace, RetireStep::Draining));
    // A scale-in's zone keeps a ChunkServer (refused otherwise before it starts).
    assert!(!stuck(&world, RetireReason::ScaleIn, RetireStep::Draining));
    assert!(!stuck(&world, RetireReason::Replace, RetireStep::Stopping));
    world.cs(2).copysets = 0;
    assert!(!stuck(&world, RetireReason::Replace, RetireStep::Draining));
}

/// An id RETIRED while copysets still list it (by hand: Curve's SetChunkServer checks
/// nothing) is not deleted until they moved, although Curve's DeleteChunkServer would take it.
#[test]
fn a_retired_id_that_copysets_still_list_is_not_deleted() {
    let mut world = World::new(4, 1);
    let cluster = demo(3, 1);
    let retire = ChunkServerRetire {
        step: RetireStep::Deleting,
        ..world.plan(&cluster, None).record.unwrap()
    };
    world.cs(4).status = ChunkServerStatus::RETIRED;
    world.cs(4).copysets = 3;
    let held = world.plan(&cluster, Some(&retire));
    assert!(held.curve.is_empty(), "{:?}", held.curve);
    assert_eq!(held.record, Some(retire.clone()));
    assert!(
        held.progress
            .unwrap()
            .message
            .ends_with("RETIRED while 3 copysets still list it; deleted once Curve moved them")
    );
    world.cs(4).copysets = 0;
    let delete = world.plan(&cluster, Some(&retire));
    assert_eq!(delete.curve, [CurveChange::DeleteChunkServer { id: 4 }]);
}
