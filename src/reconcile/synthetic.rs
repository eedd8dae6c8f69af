//! Synthetic clusters of any size, as the controllers and Curve would leave them: what the
//! scale bench (`benches/decide_scale.rs`) measures the decisions on, and what tests bring a
//! cluster up with. Not used by the operator itself.
//!
//! [`available`] drives the real [`decide`] from an empty snapshot, the write step played by
//! [`carry_out`], the StatefulSet and Job controllers and the kubelet by [`play_controllers`],
//! etcd and the MDS election by [`elect`], and the health monitor by [`curve_reading`] and
//! [`latest`], until the cluster is Available and a decision changes nothing.

use std::collections::BTreeMap;
use std::sync::Arc;

use k8s_openapi::api::apps::v1::{StatefulSet, StatefulSetStatus};
use k8s_openapi::api::batch::v1::JobStatus;
use k8s_openapi::api::core::v1::{
    Container, ContainerState, ContainerStateRunning, ContainerStateTerminated, ContainerStatus,
    HostIP, PersistentVolumeClaim, PersistentVolumeClaimStatus, Pod, PodCondition, PodIP, PodSpec,
    PodStatus,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use k8s_openapi::jiff::Timestamp;
use serde_json::json;

use super::decide::decide;
use super::health::state_token;
use super::model::action::{Action, ExistingObject, Object};
use super::model::claim::{ClaimReading, Size as ClaimSize};
use super::model::health::Latest;
use super::model::pod::{PodReading, REVISION_LABEL};
use super::observe::{pod_ip, pods_of};
use super::snapshot::{Cached, Slim, Snapshot};
use crate::api::{CurveClusterStatus, Phase};
use crate::curve::health::{
    CurveReading, MdsReading, Rules, TopologyReading, health_status, verdict,
};
use crate::curve::inventory::Inventory;
use crate::curve::raft_stat::{CopysetId, LogId, RaftNode, RaftState, Replicator, ReplicatorState};
use crate::curve::topology::{
    AllocateStatus, ChunkServerInfo, ChunkServerLocation, ChunkServerStatus, CopysetInfo,
    DiskState, LogicalPoolInfo, LogicalPoolType, OnlineState, PhysicalPoolInfo, ServerInfo,
};
use crate::curve::vars::{MdsDummyAnswer, MdsRole};
use crate::desired::topology::ClusterMap;
use crate::etcd::{EtcdObservation, MemberHealth, PrimaryObservation};
use crate::names::{Component, component_name};
use crate::validate::ValidatedCluster;

/// The shape of a synthetic cluster.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Size {
    /// Nodes running ChunkServers (`spec.chunkservers.replicas`).
    pub servers: i32,
    /// Disk slots per node (`spec.chunkservers.disksPerNode`).
    pub disks: i32,
    pub etcd: i32,
    pub mds: i32,
}

impl Size {
    pub fn chunkservers(self) -> i32 {
        self.servers * self.disks
    }
}

/// A fixed clock: the same inputs give the same decision.
pub fn now() -> Timestamp {
    Timestamp::from_second(1_800_000_000).expect("a valid time")
}

/// The CurveCluster `bench/demo` of that size, validated: 1 TiB ChunkServer volumes, 3 copies
/// in 3 zones, Curve's default of 100 copysets per ChunkServer.
pub fn cluster(size: Size) -> ValidatedCluster {
    let object = json!({
        "apiVersion": "curve.opencurve.io/v1alpha1", "kind": "CurveCluster",
        "metadata": {"name": "demo", "namespace": "bench", "uid": "u1"},
        "spec": {
            "image": "opencurvedocker/curvebs:v1.2.6",
            "etcd": {"replicas": size.etcd},
            "mds": {"replicas": size.mds},
            "chunkservers": {
                "replicas": size.servers, "disksPerNode": size.disks,
                "storage": {"size": "1Ti"}
            }
        }
    });
    let parsed = serde_json::from_value(object).expect("a CurveCluster");
    crate::validate::validate(&parsed, "bench").expect("a valid synthetic cluster")
}

/// The IP of node `i` (0-based), unique up to 16 million nodes.
pub fn node_ip(i: i32) -> String {
    let n = i + 1;
    format!("10.{}.{}.{}", (n >> 16) & 255, (n >> 8) & 255, n & 255)
}

fn ordinal_of(pod: &str) -> i32 {
    (pod.rsplit_once('-').and_then(|(_, n)| n.parse().ok())).unwrap_or(0)
}

/// The write step as the API server would take it: applied objects replace the cached ones,
/// deletions remove them.
pub fn carry_out(snapshot: &mut Snapshot, actions: &[Action]) {
    for action in actions {
        match action {
            Action::Apply(object) => match (**object).clone() {
                Object::ConfigMap(o) => replace_meta(&mut snapshot.config_maps, o.metadata),
                Object::Service(o) => replace_meta(&mut snapshot.services, o.metadata),
                Object::PodDisruptionBudget(o) => replace_meta(&mut snapshot.budgets, o.metadata),
                Object::StatefulSet(o) => replace(&mut snapshot.stateful_sets, o),
                Object::Job(o) => replace(&mut snapshot.jobs, o),
                o @ (Object::PodMonitor(_) | Object::PrometheusRule(_)) => {
                    let seen = ExistingObject::of(o.kind(), o.meta());
                    (snapshot.monitoring_objects)
                        .retain(|e| (e.kind, &e.name) != (seen.kind, &seen.name));
                    snapshot.monitoring_objects.push(seen);
                }
                // curve-csi's objects, by their metadata.
                o => {
                    let seen = ExistingObject::of(o.kind(), o.meta());
                    (snapshot.csi.objects).retain(|e| (e.kind, &e.name) != (seen.kind, &seen.name));
                    snapshot.csi.objects.push(seen);
                }
            },
            Action::Delete { kind, name } => {
                (snapshot.jobs).retain(|j| j.metadata.name.as_deref() != Some(name));
                (snapshot.monitoring_objects).retain(|e| (e.kind, &e.name) != (*kind, name));
                (snapshot.csi.objects).retain(|e| (e.kind, &e.name) != (*kind, name));
            }
            Action::EnsureRootSecret { .. }
            | Action::EtcdMembers(_)
            | Action::EtcdDefragment { .. }
            | Action::Curve(_)
            | Action::AdvanceEtcdCounters(_)
            | Action::DeleteClaim { .. } => {}
            Action::DeletePod { name, .. } => snapshot.pods.retain(|p| p.name != *name),
            Action::ResizeClaim { name, size } => {
                for claim in &mut snapshot.claims {
                    if claim.name == *name {
                        Arc::make_mut(claim).request = Some(ClaimSize::of(size));
                    }
                }
            }
            Action::CreateClaim(claim) => {
                let name = claim.metadata.name.as_deref().unwrap_or_default();
                if !(snapshot.claims.iter()).any(|c| c.name == name) {
                    snapshot
                        .claims
                        .push(ClaimReading::shared((**claim).clone()));
                }
            }
            // The garbage collector orphans the pods; the set goes.
            Action::OrphanStatefulSet { name, .. } => {
                snapshot
                    .stateful_sets
                    .retain(|s| s.metadata.name.as_deref() != Some(name));
                for pod in &mut snapshot.pods {
                    Arc::make_mut(pod).set = None;
                }
            }
        }
    }
}

fn replace_meta(list: &mut Vec<ObjectMeta>, meta: ObjectMeta) {
    list.retain(|o| o.name != meta.name);
    list.push(meta);
}

fn replace<K: kube::Resource>(list: &mut Vec<K>, object: K) {
    list.retain(|o| o.meta().name != object.meta().name);
    list.push(object);
}

/// The pod `<set>-<ordinal>` of `set` as the StatefulSet controller makes it from the set's
/// template and the kubelet reports it with host networking on node `ordinal`: Running and
/// Ready, at the current revision.
fn ready_pod(set: &StatefulSet, ordinal: i32) -> Pod {
    let set_name = set.metadata.name.clone().unwrap_or_default();
    let name = format!("{set_name}-{ordinal}");
    let spec = set.spec.as_ref();
    let template = spec.map(|s| &s.template);
    let mut labels = (template.and_then(|t| t.metadata.as_ref()))
        .and_then(|m| m.labels.clone())
        .unwrap_or_default();
    let revision = (set.status.as_ref()).and_then(|s| s.update_revision.clone());
    labels.insert(REVISION_LABEL.into(), revision.unwrap_or_default());
    let ip = node_ip(ordinal);
    let pod_spec = template.and_then(|t| t.spec.clone()).unwrap_or_default();
    let since = k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(now());
    // What a kubelet reports: every init container completed, every container running.
    let status_of = |c: &Container, done: bool| ContainerStatus {
        name: c.name.clone(),
        image: c.image.clone().unwrap_or_default(),
        image_id: format!(
            "docker.io/{}@sha256:{:064x}",
            c.image.as_deref().unwrap_or_default(),
            1
        ),
        container_id: Some(format!("containerd://{:064x}", 2)),
        ready: !done,
        started: Some(!done),
        restart_count: 0,
        state: Some(if done {
            ContainerState {
                terminated: Some(ContainerStateTerminated {
                    exit_code: 0,
                    reason: Some("Completed".into()),
                    started_at: Some(since.clone()),
                    finished_at: Some(since.clone()),
                    container_id: Some(format!("containerd://{:064x}", 3)),
                    ..ContainerStateTerminated::default()
                }),
                ..ContainerState::default()
            }
        } else {
            ContainerState {
                running: Some(ContainerStateRunning {
                    started_at: Some(since.clone()),
                }),
                ..ContainerState::default()
            }
        }),
        ..ContainerStatus::default()
    };
    let init = pod_spec.init_containers.clone().unwrap_or_default();
    let condition = |type_: &str| PodCondition {
        type_: type_.into(),
        status: "True".into(),
        last_transition_time: Some(since.clone()),
        ..PodCondition::default()
    };
    Pod {
        metadata: ObjectMeta {
            name: Some(name.clone()),
            generate_name: Some(format!("{set_name}-")),
            resource_version: Some("123456789".into()),
            namespace: set.metadata.namespace.clone(),
            uid: Some(format!("uid-{name}")),
            labels: Some(labels),
            creation_timestamp: Some(since.clone()),
            owner_references: Some(vec![OwnerReference {
                api_version: "apps/v1".into(),
                kind: "StatefulSet".into(),
                name: set_name,
                uid: set.metadata.uid.clone().unwrap_or_default(),
                controller: Some(true),
                ..OwnerReference::default()
            }]),
            ..ObjectMeta::default()
        },
        status: Some(PodStatus {
            phase: Some("Running".into()),
            pod_ip: Some(ip.clone()),
            pod_ips: Some(vec![PodIP { ip: ip.clone() }]),
            host_ips: Some(vec![HostIP { ip: ip.clone() }]),
            host_ip: Some(ip),
            qos_class: Some("Burstable".into()),
            start_time: Some(since.clone()),
            conditions: Some(
                [
                    "PodReadyToStartContainers",
                    "Initialized",
                    "Ready",
                    "ContainersReady",
                    "PodScheduled",
                ]
                .map(condition)
                .into(),
            ),
            init_container_statuses: Some(init.iter().map(|c| status_of(c, true)).collect()),
            container_statuses: Some(
                (pod_spec.containers.iter())
                    .map(|c| status_of(c, false))
                    .collect(),
            ),
            ..PodStatus::default()
        }),
        spec: Some(PodSpec {
            node_name: Some(format!("node-{ordinal}")),
            ..pod_spec
        }),
    }
}

/// The claims of pod `pod` from the set's claim templates, bound at the size asked.
fn bound_claims(set: &StatefulSet, pod: &str) -> Vec<PersistentVolumeClaim> {
    let templates = (set.spec.as_ref()).and_then(|s| s.volume_claim_templates.clone());
    (templates.into_iter().flatten())
        .map(|template| {
            let name = format!(
                "{}-{pod}",
                template.metadata.name.clone().unwrap_or_default()
            );
            let requests = (template.spec.as_ref())
                .and_then(|s| s.resources.as_ref())
                .and_then(|r| r.requests.clone());
            PersistentVolumeClaim {
                metadata: ObjectMeta {
                    name: Some(name),
                    namespace: set.metadata.namespace.clone(),
                    ..template.metadata
                },
                spec: template.spec,
                status: Some(PersistentVolumeClaimStatus {
                    phase: Some("Bound".into()),
                    capacity: requests,
                    ..PersistentVolumeClaimStatus::default()
                }),
            }
        })
        .collect()
}

/// The StatefulSet controller, the kubelet and the Job controller: every StatefulSet observed
/// at its revision with every pod Ready and every claim bound, every Job succeeded; the
/// objects then slimmed as the operator's watch caches keep them.
pub fn play_controllers(snapshot: &mut Snapshot) {
    let present: std::collections::BTreeSet<String> =
        (snapshot.pods.iter()).map(|p| p.name.clone()).collect();
    let claimed: std::collections::BTreeSet<String> =
        (snapshot.claims.iter()).map(|c| c.name.clone()).collect();
    for set in &mut snapshot.stateful_sets {
        let name = set.metadata.name.clone().unwrap_or_default();
        let replicas = (set.spec.as_ref()).and_then(|s| s.replicas).unwrap_or(1);
        set.metadata.generation.get_or_insert(1);
        set.metadata
            .uid
            .get_or_insert_with(|| format!("uid-{name}"));
        if set.status.is_none() {
            set.status = Some(StatefulSetStatus {
                observed_generation: set.metadata.generation,
                update_revision: Some(format!("{name}-rev1")),
                current_revision: Some(format!("{name}-rev1")),
                replicas,
                ready_replicas: Some(replicas),
                ..StatefulSetStatus::default()
            });
        }
        for ordinal in 0..replicas {
            let pod = format!("{name}-{ordinal}");
            if !present.contains(&pod) {
                let pod = PodReading::cached(ready_pod(set, ordinal));
                snapshot.pods.push(Arc::new(pod));
            }
            (snapshot.claims).extend(
                bound_claims(set, &pod)
                    .into_iter()
                    .filter(|c| !claimed.contains(c.metadata.name.as_deref().unwrap_or_default()))
                    .map(ClaimReading::shared),
            );
        }
    }
    for job in &mut snapshot.jobs {
        job.status = Some(JobStatus {
            succeeded: Some(1),
            ..JobStatus::default()
        });
    }
    snapshot.pods.sort_by(|a, b| a.name.cmp(&b.name));
    snapshot.claims.sort_by(|a, b| a.name.cmp(&b.name));
    slim(snapshot);
}

/// What the watch caches keep of every object (reconcile/snapshot.rs).
pub fn slim(snapshot: &mut Snapshot) {
    snapshot.stateful_sets.iter_mut().for_each(Slim::slim);
    snapshot.jobs.iter_mut().for_each(Slim::slim);
}

/// etcd as the etcd pods make it: every member healthy, the first leading; the first MDS pod
/// holds the election once MDS pods run.
pub fn elect(cluster: &ValidatedCluster, snapshot: &mut Snapshot) {
    let names: Vec<String> = pods_of(&snapshot.pods, Component::Etcd)
        .map(|p| p.name.clone())
        .collect();
    if names.is_empty() {
        return;
    }
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    let mds = component_name(&cluster.name, Component::Mds);
    let primary = (snapshot.pods.iter())
        .find(|p| p.name == format!("{mds}-0"))
        .and_then(|p| pod_ip(p))
        .map_or(PrimaryObservation::NoCandidate, |ip| {
            PrimaryObservation::Elected {
                address: format!("{ip}:{}", cluster.spec.mds.port),
            }
        });
    snapshot.etcd = Some(EtcdObservation {
        primary,
        members: Some(MemberHealth::all_healthy(&cluster.namespace, &names, 0)),
    });
}

/// `ip:port:0`, a raft peer id.
fn peer(address: &str) -> String {
    format!("{address}:0")
}

/// One round of the health monitor on a healthy Curve of this cluster map: every ChunkServer
/// pod registered (ids in pod-name order) and online, `copysets` copysets per ChunkServer
/// (the spec's, Curve's default 100), each with one copy in each zone and every raft group
/// healthy, leaders spread evenly; 5 MDS answering, the first elected.
pub fn curve_reading(
    cluster: &ValidatedCluster,
    snapshot: &Snapshot,
    map: &ClusterMap,
) -> CurveReading {
    let spec = &cluster.spec;
    let zone_of: BTreeMap<&str, &str> = (map.servers().iter())
        .map(|s| (s.internalip.as_str(), s.zone.as_str()))
        .collect();
    let zone_ids: BTreeMap<&str, u32> = (map.servers().iter().map(|s| s.zone.as_str()))
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .zip(1..)
        .collect();
    let servers: Vec<ServerInfo> = (map.servers().iter().enumerate())
        .map(|(i, s)| ServerInfo {
            server_id: i as u32 + 1,
            host_name: s.name.clone(),
            internal_ip: s.internalip.clone(),
            internal_port: 0,
            external_ip: s.externalip.clone(),
            external_port: 0,
            zone_id: zone_ids[s.zone.as_str()],
            zone_name: s.zone.clone(),
            physical_pool_id: 1,
            physical_pool_name: s.physicalpool.clone(),
            desc: String::new(),
        })
        .collect();
    let chunkservers: Vec<ChunkServerInfo> = pods_of(&snapshot.pods, Component::ChunkServer)
        .filter_map(|p| {
            let slot = ordinal_of(p.name.rsplit_once('-')?.0);
            Some((pod_ip(p)?.to_string(), spec.chunkservers.port + slot))
        })
        .enumerate()
        .map(|(i, (ip, port))| ChunkServerInfo {
            chunk_server_id: i as u32 + 1,
            disk_type: "nvme".into(),
            host_ip: ip,
            port: port as u32,
            status: ChunkServerStatus::READWRITE,
            disk_status: DiskState::DISKNORMAL,
            online_state: OnlineState::ONLINE,
            mount_point: "local:///curvebs/data/".into(),
            disk_capacity: 1 << 40,
            disk_used: 1 << 36,
            external_ip: None,
        })
        .collect();
    // One copy in each zone: copyset c takes the (c + k)-th ChunkServer of each zone, so every
    // ChunkServer holds about the same number.
    let mut by_zone: BTreeMap<&str, Vec<&ChunkServerInfo>> = BTreeMap::new();
    for cs in &chunkservers {
        let zone = zone_of.get(cs.host_ip.as_str()).copied().unwrap_or("zone1");
        by_zone.entry(zone).or_default().push(cs);
    }
    let replicas = spec.logical_pool.replicas.max(1) as usize;
    let total = (spec.chunkservers.copysets as usize * chunkservers.len() / replicas).max(1);
    let zones: Vec<&Vec<&ChunkServerInfo>> = by_zone.values().collect();
    let mut members: BTreeMap<CopysetId, Vec<ChunkServerLocation>> = BTreeMap::new();
    let mut raft: BTreeMap<String, Vec<RaftNode>> = (chunkservers.iter())
        .map(|cs| (format!("{}:{}", cs.host_ip, cs.port), Vec::new()))
        .collect();
    for c in 0..total {
        let id = CopysetId {
            logical_pool: 1,
            copyset: c as u32 + 1,
        };
        let located: Vec<&ChunkServerInfo> = (zones.iter().take(replicas).enumerate())
            .map(|(k, zone)| zone[(c + k) % zone.len()])
            .collect();
        let addresses: Vec<String> = located
            .iter()
            .map(|cs| format!("{}:{}", cs.host_ip, cs.port))
            .collect();
        let peers: Vec<String> = addresses.iter().map(|a| peer(a)).collect();
        let leader = c % located.len();
        let last = LogId {
            index: 1000,
            term: 2,
        };
        for (k, address) in addresses.iter().enumerate() {
            let node = RaftNode {
                copyset: id,
                peer_id: peers[k].clone(),
                state: if k == leader {
                    RaftState::Leader
                } else {
                    RaftState::Follower
                },
                term: 2,
                peers: peers.clone(),
                leader: (k != leader).then(|| peers[leader].clone()),
                first_log_index: 1,
                last_log_index: last.index,
                last_log_id: last,
                last_committed_index: last.index,
                snapshot_status: None,
                replicators: if k == leader {
                    (peers.iter().enumerate())
                        .filter(|&(j, _)| j != leader)
                        .map(|(_, p)| Replicator {
                            peer: p.clone(),
                            next_index: last.index + 1,
                            flying_append_entries_size: 0,
                            readonly_index: None,
                            state: ReplicatorState::Idle,
                        })
                        .collect()
                } else {
                    Vec::new()
                },
            };
            raft.get_mut(address)
                .expect("a listed ChunkServer")
                .push(node);
        }
        members.insert(
            id,
            located
                .iter()
                .map(|cs| ChunkServerLocation {
                    chunk_server_id: cs.chunk_server_id,
                    host_ip: cs.host_ip.clone(),
                    port: cs.port,
                    external_ip: None,
                })
                .collect(),
        );
    }
    let mds: Vec<MdsReading> = pods_of(&snapshot.pods, Component::Mds)
        .filter_map(pod_ip)
        .enumerate()
        .map(|(i, ip)| {
            let listen = format!("{ip}:{}", spec.mds.port);
            MdsReading {
                dummy_addr: format!("{ip}:{}", spec.mds.dummy_port),
                answer: Ok(MdsDummyAnswer {
                    role: if i == 0 {
                        MdsRole::Leader
                    } else {
                        MdsRole::Follower
                    },
                    listen_addr: listen.clone(),
                }),
                listen_addr: listen,
            }
        })
        .collect();
    let pool = &spec.logical_pool;
    CurveReading {
        elected: mds.first().map(|m| m.listen_addr.clone()),
        mds,
        topology: Ok(TopologyReading {
            physical_pools: vec![PhysicalPoolInfo {
                physical_pool_id: 1,
                physical_pool_name: pool.physical_pool.clone(),
                desc: Some(String::new()),
            }],
            logical_pools: vec![LogicalPoolInfo {
                logical_pool_id: 1,
                logical_pool_name: pool.name.clone(),
                physical_pool_id: 1,
                pool_type: LogicalPoolType::PAGEFILE,
                create_time: 0,
                allocate_status: AllocateStatus::ALLOW,
            }],
            servers,
            chunkservers,
            copysets: (members.keys())
                .map(|id| CopysetInfo {
                    logical_pool_id: id.logical_pool,
                    copyset_id: id.copyset,
                })
                .collect(),
            members,
            space: BTreeMap::new(),
            operators: Some(0),
        }),
        raft: raft.into_iter().map(|(a, nodes)| (a, Ok(nodes))).collect(),
    }
}

/// What the health monitor keeps of a reading taken with the pods and record as they are now.
pub fn latest(
    reading: &CurveReading,
    snapshot: &Snapshot,
    status: &CurveClusterStatus,
    rules: &Rules,
) -> Latest {
    let health = verdict(reading, rules);
    let checked = k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(now());
    let retire = status.record.as_ref().and_then(|r| r.retire.as_ref());
    Latest {
        status: health_status(&health, checked),
        health,
        pods_token: state_token(&snapshot.pods, retire),
        primary_unreachable: None,
        inventory: Inventory::of_reading(reading).map(std::sync::Arc::new),
    }
}

/// A cluster brought up to Available and steady, with what got it there.
pub struct Available {
    pub cluster: ValidatedCluster,
    pub snapshot: Snapshot,
    pub status: CurveClusterStatus,
    /// The latest health monitor round (its judged result is `snapshot.health`).
    pub reading: CurveReading,
    /// Decisions it took.
    pub passes: usize,
}

/// How many passes a bring-up may take before the builder gives up.
const MAX_PASSES: usize = 40;

/// The cluster of `size` brought up by the real decisions until Available, with Curve healthy
/// as last read and a decision that changes nothing. Panics when it does not get there.
pub fn available(size: Size) -> Available {
    let cluster = cluster(size);
    let rules = Rules {
        replicas: cluster.spec.logical_pool.replicas as usize,
        ..Rules::default()
    };
    let mut snapshot = Snapshot::default();
    let mut status = CurveClusterStatus::default();
    let mut reading = None;
    for pass in 1..=MAX_PASSES {
        let decision = decide(&cluster, &snapshot, &status, Some(1), now());
        let quiet = decision.actions.is_empty();
        carry_out(&mut snapshot, &decision.actions);
        status = decision.status;
        let current = (snapshot.health.as_ref()).is_some_and(|h| {
            let retire = status.record.as_ref().and_then(|r| r.retire.as_ref());
            h.pods_token == state_token(&snapshot.pods, retire)
        });
        if quiet && current && status.phase == Some(Phase::Available) {
            return Available {
                cluster,
                snapshot,
                status,
                reading: reading.expect("read with the health"),
                passes: pass,
            };
        }
        play_controllers(&mut snapshot);
        elect(&cluster, &mut snapshot);
        let pool_created = status
            .record
            .as_ref()
            .is_some_and(|r| r.logical_pool_created);
        if pool_created && !current {
            let read = curve_reading(&cluster, &snapshot, &decision.desired.cluster_map);
            snapshot.health = Some(latest(&read, &snapshot, &status, &rules));
            reading = Some(read);
        }
    }
    panic!(
        "the synthetic cluster {size:?} is not Available and steady after {MAX_PASSES} passes: {:?}",
        status.conditions
    );
}

/// Every pod of `component` on an older revision than its StatefulSet's: as after a template
/// change the StatefulSet controller has observed, before any pod was replaced.
pub fn outdate(snapshot: &mut Snapshot, component: Component) {
    for pod in &mut snapshot.pods {
        if pod.tier == Some(component) {
            Arc::make_mut(pod).revision = Some("older".into());
        }
    }
}

#[cfg(test)]
#[path = "synthetic_tests.rs"]
mod tests;
