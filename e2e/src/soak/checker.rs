//! The invariant checker's I/O: it watches the cluster's pods and claims (every event judged
//! as it comes), and every 100 ms reads the cluster, the objects it owns (watch caches), etcd
//! (member list, learners, the MDS election's first key) and Curve's model, and feeds it all
//! to [`Rules`]. What the harness does is told to it through [`Journal::harness`], and every
//! line worth replaying goes to the journal's timeline.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use curve_operator::api::CurveCluster;
use etcd_client::{GetOptions, SortOrder, SortTarget};
use futures::StreamExt;
use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{ConfigMap, PersistentVolumeClaim, Pod, Service};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use kube::runtime::reflector::{self, Store};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Resource, ResourceExt};

use super::rules::{
    ClusterView, CurveView, HarnessAction, Member, Observation, OwnedView, PodView, Rules,
    Violation, tier_of,
};
use crate::curve_model::{ChunkServerStatus, CurveModel};
use crate::daemons::MDS_ELECTION;
use crate::env::TestEnv;

const POLL: Duration = Duration::from_millis(100);
const TIMELINE: usize = 400;
/// A harness deletion explains a deletion the watch sees within this long.
const HARNESS_MATCH: f64 = 30.0;

/// What the checker and the harness share: the rules, what they found, the timeline.
pub struct Journal {
    started: Instant,
    rules: Rules,
    pub violations: Vec<Violation>,
    timeline: VecDeque<String>,
    /// Deletions the harness did and the watch has not seen yet: (when, what).
    pending: Vec<(f64, HarnessAction)>,
    /// The timeline around the first violation, kept when it happened.
    pub first_violation_timeline: Option<Vec<String>>,
}

pub type SharedJournal = Arc<Mutex<Journal>>;

impl Journal {
    pub fn new(cluster: &str) -> SharedJournal {
        Arc::new(Mutex::new(Journal {
            started: Instant::now(),
            rules: Rules::new(cluster),
            violations: Vec::new(),
            timeline: VecDeque::new(),
            pending: Vec::new(),
            first_violation_timeline: None,
        }))
    }

    pub fn now(&self) -> f64 {
        self.started.elapsed().as_secs_f64()
    }

    pub fn checks(&self) -> u64 {
        self.rules.checks
    }

    /// A line on the timeline, stamped with the checker's clock.
    pub fn note(&mut self, line: impl AsRef<str>) {
        let line = format!("{:8.2}s {}", self.now(), line.as_ref());
        if self.timeline.len() == TIMELINE {
            self.timeline.pop_front();
        }
        self.timeline.push_back(line);
    }

    /// The harness is about to do `action`.
    pub fn harness(&mut self, action: HarnessAction) {
        let at = self.now();
        self.note(format!("harness: {action:?}"));
        self.rules.harness_did(at, &action);
        if matches!(
            action,
            HarnessAction::DeletedPod(_) | HarnessAction::DeletedClaim(_)
        ) {
            self.pending.push((at, action));
        }
    }

    /// Whether the harness deleted `what` lately (consumed when it did).
    fn by_harness(&mut self, what: &HarnessAction) -> bool {
        let at = self.now();
        self.pending.retain(|(t, _)| at - t < HARNESS_MATCH);
        match self.pending.iter().position(|(_, a)| a == what) {
            Some(i) => {
                self.pending.remove(i);
                true
            }
            None => false,
        }
    }

    fn record(&mut self, found: Vec<Violation>) {
        for violation in found {
            self.note(format!("VIOLATION {violation}"));
            if self.first_violation_timeline.is_none() {
                self.first_violation_timeline = Some(self.timeline.iter().cloned().collect());
            }
            self.violations.push(violation);
        }
    }

    pub fn timeline(&self) -> Vec<String> {
        self.timeline.iter().cloned().collect()
    }
}

pub fn pod_view(pod: &Pod) -> PodView {
    let status = pod.status.as_ref();
    let ready = (status.and_then(|s| s.conditions.as_ref()))
        .is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"));
    PodView {
        name: pod.name_any(),
        uid: pod.uid().unwrap_or_default(),
        ready,
        deleting: pod.metadata.deletion_timestamp.is_some(),
        revision: pod.labels().get("controller-revision-hash").cloned(),
        host_ip: status.and_then(|s| s.host_ip.clone()),
    }
}

/// Copysets missing a running copy, each disk's id, and each ChunkServer pod's id and copysets
/// (matched by its node's address and its slot's port: `8200 + slot`).
pub fn curve_view(
    model: &CurveModel,
    pods: &BTreeMap<String, PodView>,
    cluster: &str,
) -> CurveView {
    let mut view = CurveView::default();
    for (key, copyset) in &model.copysets {
        let missing: BTreeSet<u32> = (copyset.members.iter())
            .filter(|id| !model.is_running(**id))
            .copied()
            .collect();
        if !missing.is_empty() {
            view.unhealthy.insert(format!("{key:?}"), missing);
        }
    }
    for (disk, data) in &model.disks {
        let id = data.meta.as_ref().map(|(id, _)| *id);
        view.disks.insert(disk.clone(), (id, data.copysets.len()));
    }
    view.live = (model.chunkservers.values())
        .filter(|c| c.status != ChunkServerStatus::Retired)
        .map(|c| c.id)
        .collect();
    let per_chunkserver = model.copysets_per_chunkserver();
    for pod in pods.values() {
        let Some(slot) = pod
            .name
            .strip_prefix(&format!("{cluster}-chunkserver-"))
            .and_then(|rest| rest.split_once('-'))
            .and_then(|(slot, _)| slot.parse::<u32>().ok())
        else {
            continue;
        };
        let Some(ip) = &pod.host_ip else { continue };
        let id = (model.chunkservers.values())
            .filter(|c| &c.ip == ip && c.port == 8200 + slot)
            .filter(|c| c.status != ChunkServerStatus::Retired)
            .map(|c| c.id)
            .max();
        if let Some(id) = id {
            let held = per_chunkserver.get(&id).map_or(0, Vec::len);
            view.chunkservers.insert(pod.name.clone(), (id, held));
        }
    }
    view
}

/// The ChunkServer pods with a live id in Curve: a lost disk of any of them. One alone in its
/// zone cannot be drained (issue 32): the operator reports `ChunkServerReplaceStuck` and the
/// harness adds a disk slot as the message asks (`SpecState::unstick`).
pub fn losable_chunkservers(view: &CurveView) -> Vec<String> {
    view.chunkservers.keys().cloned().collect()
}

/// etcd's member list through `endpoints`, sorted by id.
async fn member_list(client: &mut etcd_client::Client) -> Option<Vec<Member>> {
    let list = tokio::time::timeout(Duration::from_millis(500), client.member_list())
        .await
        .ok()?
        .ok()?;
    let mut members: Vec<Member> = (list.members().iter())
        .map(|m| Member {
            id: m.id(),
            name: m.name().to_string(),
            learner: m.is_learner(),
        })
        .collect();
    members.sort();
    Some(members)
}

async fn election_head(client: &mut etcd_client::Client) -> Option<Option<(String, String)>> {
    let options = GetOptions::new()
        .with_prefix()
        .with_sort(SortTarget::Create, SortOrder::Ascend)
        .with_limit(1);
    let answer = tokio::time::timeout(
        Duration::from_millis(500),
        client.get(format!("{MDS_ELECTION}/"), Some(options)),
    )
    .await
    .ok()?
    .ok()?;
    Some(answer.kvs().first().map(|kv| {
        (
            kv.key_str().unwrap_or_default().to_string(),
            kv.value_str().unwrap_or_default().to_string(),
        )
    }))
}

fn owned<K: Resource + Clone>(store: &Store<K>, cluster: &str) -> Vec<OwnedView>
where
    K::DynamicType: Default + Eq + std::hash::Hash + Clone,
{
    let kind = K::kind(&K::DynamicType::default()).to_string();
    store
        .state()
        .iter()
        .filter(|o| {
            o.meta()
                .labels
                .as_ref()
                .and_then(|l| l.get("app.kubernetes.io/instance"))
                == Some(&cluster.to_string())
        })
        .map(|o| OwnedView {
            kind: kind.clone(),
            name: o.name_any(),
            owners: (o.owner_references().iter())
                .map(|r| (r.uid.clone(), r.controller == Some(true)))
                .collect(),
            running_step: None,
        })
        .collect()
}

fn store_of<K>(api: Api<K>) -> (Store<K>, tokio::task::JoinHandle<()>)
where
    K: Resource + Clone + std::fmt::Debug + serde::de::DeserializeOwned + Send + Sync + 'static,
    K::DynamicType: Default + Eq + std::hash::Hash + Clone,
{
    let (reader, writer) = reflector::store();
    let stream = reflector(writer, watcher(api, watcher::Config::default()))
        .default_backoff()
        .applied_objects();
    let task = tokio::spawn(async move {
        let mut stream = std::pin::pin!(stream);
        while stream.next().await.is_some() {}
    });
    (reader, task)
}

use kube::runtime::reflector::reflector;

/// Runs the checker on cluster `cluster` of `env` until `stop` says so.
pub async fn run(
    env: &TestEnv,
    cluster: &str,
    journal: SharedJournal,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    let (sets, t1) = store_of(env.api::<StatefulSet>());
    let (maps, t2) = store_of(env.api::<ConfigMap>());
    let (services, t3) = store_of(env.api::<Service>());
    let (budgets, t4) = store_of(env.api::<PodDisruptionBudget>());
    let (jobs, t5) = store_of(env.api::<Job>());
    let (clusters, t6) = store_of(env.clusters());
    let tasks = [t1, t2, t3, t4, t5, t6];
    let selector = format!("app.kubernetes.io/instance={cluster}");
    let pod_events = watcher(
        env.api::<Pod>(),
        watcher::Config::default().labels(&selector),
    )
    .default_backoff();
    let claim_events = watcher(
        env.api::<PersistentVolumeClaim>(),
        watcher::Config::default(),
    )
    .default_backoff();
    let mut pod_events = std::pin::pin!(pod_events);
    let mut claim_events = std::pin::pin!(claim_events);
    let mut pods: BTreeMap<String, Pod> = BTreeMap::new();
    let mut relist: Option<BTreeMap<String, Pod>> = None;
    let mut claims: BTreeMap<String, PersistentVolumeClaim> = BTreeMap::new();
    let mut claims_relist: Option<BTreeMap<String, PersistentVolumeClaim>> = None;
    let mut etcd: Option<(Vec<String>, etcd_client::Client)> = None;
    let mut last_members: Option<Vec<Member>> = None;
    let mut last_primary: Option<Option<(String, String)>> = None;
    let mut tick = tokio::time::interval(POLL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let curve = env.kubelet.curve_model(cluster);
    loop {
        tokio::select! {
            _ = stop.changed() => break,
            Some(event) = pod_events.next() => {
                let Ok(event) = event else { continue };
                if let watcher::Event::Apply(pod) = &event {
                    let view = pod_view(pod);
                    let was_ready = pods.get(&view.uid).map(pod_view).is_some_and(|p| p.ready);
                    let mut j = journal.lock().unwrap();
                    let at = j.now();
                    if view.ready && !was_ready && tier_of(cluster, &view.name).is_some() {
                        j.note(format!("pod {} ({}) ready", view.name, &view.uid[..8.min(view.uid.len())]));
                    }
                    j.rules.pod_seen(at, &view);
                }
                let deleted = pod_event(event, &mut pods, &mut relist);
                for pod in deleted {
                    let view = pod_view(&pod);
                    let mut j = journal.lock().unwrap();
                    let by_harness = j.by_harness(&HarnessAction::DeletedPod(view.name.clone()));
                    let at = j.now();
                    j.note(format!("pod {} ({}) deleted{}", view.name, &view.uid[..8.min(view.uid.len())], if by_harness { " by the harness" } else { "" }));
                    let found = j.rules.pod_deleted(at, &view, by_harness);
                    j.record(found);
                }
            }
            Some(event) = claim_events.next() => {
                let Ok(event) = event else { continue };
                for claim in claim_event(event, &mut claims, &mut claims_relist) {
                    let name = claim.name_any();
                    let mut j = journal.lock().unwrap();
                    let by_harness = j.by_harness(&HarnessAction::DeletedClaim(name.clone()));
                    let at = j.now();
                    j.note(format!("claim {name} deleted{}", if by_harness { " by the harness" } else { "" }));
                    let found = j.rules.claim_deleted(at, &name, &claim.uid().unwrap_or_default(), by_harness);
                    j.record(found);
                }
            }
            _ = tick.tick() => {
                let endpoints = env.kubelet.etcd_endpoints();
                if etcd.as_ref().is_none_or(|(e, _)| *e != endpoints) && !endpoints.is_empty() {
                    let options = etcd_client::ConnectOptions::new()
                        .with_connect_timeout(Duration::from_millis(500))
                        .with_timeout(Duration::from_millis(500));
                    etcd = tokio::time::timeout(Duration::from_secs(1), etcd_client::Client::connect(&endpoints, Some(options)))
                        .await.ok().and_then(Result::ok).map(|c| (endpoints.clone(), c));
                }
                let (members, primary) = match etcd.as_mut() {
                    Some((_, client)) => (member_list(client).await, election_head(client).await),
                    None => (None, None),
                };
                let view = clusters.state().into_iter().find(|c| c.name_any() == cluster);
                let pod_views: BTreeMap<String, PodView> = (pods.values())
                    .filter(|p| tier_of(cluster, &p.name_any()).is_some())
                    .map(|p| (p.name_any(), pod_view(p)))
                    .collect();
                let mut owned_now = owned(&sets, cluster);
                owned_now.extend(owned(&maps, cluster));
                owned_now.extend(owned(&services, cluster));
                owned_now.extend(owned(&budgets, cluster));
                owned_now.extend(job_views(&jobs, cluster));
                let mds_update_revision = sets.state().iter()
                    .find(|s| s.name_any() == format!("{cluster}-mds"))
                    .and_then(|s| s.status.as_ref()?.update_revision.clone());
                let wanted: BTreeSet<String> = sets.state().iter()
                    .filter(|s| s.name_any().starts_with(&format!("{cluster}-")))
                    .flat_map(|s| {
                        let replicas = s.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1);
                        let name = s.name_any();
                        (0..replicas).map(move |i| format!("{name}-{i}"))
                    })
                    .collect();
                let curve_now = {
                    let model = curve.model.lock().unwrap();
                    curve_view(&model, &pod_views, cluster)
                };
                let mut j = journal.lock().unwrap();
                if let Some(list) = members.as_ref().filter(|_| members != last_members) {
                    let names: Vec<String> = (list.iter())
                        .map(|m| format!("{}{}", m.name, if m.learner { "(learner)" } else { "" }))
                        .collect();
                    j.note(format!("etcd members {names:?}"));
                    last_members = members.clone();
                }
                if let Some(head) = primary.as_ref().filter(|_| primary != last_primary) {
                    j.note(format!("MDS primary {head:?}"));
                    last_primary = primary.clone();
                }
                let observation = Observation {
                    at: j.now(),
                    pods: pod_views,
                    members,
                    primary,
                    cluster: view.as_deref().map(cluster_view),
                    owned: owned_now,
                    curve: Some(curve_now),
                    mds_update_revision,
                };
                j.rules.forget_scaled_away(&wanted);
                let found = j.rules.observe(observation);
                j.record(found);
            }
        }
    }
    for task in tasks {
        task.abort();
    }
}

fn cluster_view(cluster: &CurveCluster) -> ClusterView {
    let status = cluster.status.clone().unwrap_or_default();
    let record = status.record.clone().unwrap_or_default();
    ClusterView {
        uid: cluster.uid().unwrap_or_default(),
        generation: cluster.metadata.generation.unwrap_or_default(),
        observed_generation: status.observed_generation,
        etcd_step: record.etcd_step.is_some(),
        cleanup_confirmed: cluster.spec.cleanup.deletes_data(),
    }
}

fn job_views(store: &Store<Job>, cluster: &str) -> Vec<OwnedView> {
    let finished = |job: &Job| {
        (job.status.as_ref().and_then(|s| s.conditions.as_ref())).is_some_and(|c| {
            c.iter()
                .any(|c| (c.type_ == "Complete" || c.type_ == "Failed") && c.status == "True")
        })
    };
    let mut views = owned(store, cluster);
    for view in &mut views {
        if let Some(job) = store.state().iter().find(|j| j.name_any() == view.name)
            && !finished(job)
            && job.metadata.deletion_timestamp.is_none()
        {
            view.running_step = job
                .labels()
                .get("curve.opencurve.io/topology-step")
                .cloned();
        }
    }
    views
}

/// Applies a pod watch event to `pods`; returns the pods deleted by it: first seen with a
/// deletion timestamp, or gone (a delete event, or missing from a re-list).
fn pod_event(
    event: watcher::Event<Pod>,
    pods: &mut BTreeMap<String, Pod>,
    relist: &mut Option<BTreeMap<String, Pod>>,
) -> Vec<Pod> {
    keyed_event(event, pods, relist, |p: &Pod| {
        p.metadata.deletion_timestamp.is_some()
    })
}

fn claim_event(
    event: watcher::Event<PersistentVolumeClaim>,
    claims: &mut BTreeMap<String, PersistentVolumeClaim>,
    relist: &mut Option<BTreeMap<String, PersistentVolumeClaim>>,
) -> Vec<PersistentVolumeClaim> {
    keyed_event(event, claims, relist, |c: &PersistentVolumeClaim| {
        c.metadata.deletion_timestamp.is_some()
    })
}

/// One watch event on a map of objects by uid; the objects whose deletion it shows (each
/// once: the first sign, a deletion timestamp or the object gone).
fn keyed_event<K: Resource + Clone>(
    event: watcher::Event<K>,
    objects: &mut BTreeMap<String, K>,
    relist: &mut Option<BTreeMap<String, K>>,
    deleting: impl Fn(&K) -> bool,
) -> Vec<K> {
    let uid = |o: &K| o.meta().uid.clone().unwrap_or_default();
    let mut deleted = Vec::new();
    // Stores `object`; returns it when it is the first sign of its deletion.
    let apply = |objects: &mut BTreeMap<String, K>, object: K| {
        let was_deleting = objects.get(&uid(&object)).is_some_and(&deleting);
        let first_sign = (deleting(&object) && !was_deleting).then(|| object.clone());
        objects.insert(uid(&object), object);
        first_sign
    };
    match event {
        watcher::Event::Apply(object) => deleted.extend(apply(objects, object)),
        watcher::Event::Delete(object) => {
            if let Some(old) = objects.remove(&uid(&object))
                && !deleting(&old)
            {
                deleted.push(object);
            }
        }
        watcher::Event::Init => *relist = Some(BTreeMap::new()),
        watcher::Event::InitApply(object) => {
            let fresh = relist.get_or_insert_with(BTreeMap::new);
            fresh.insert(uid(&object), object);
        }
        watcher::Event::InitDone => {
            let fresh = relist.take().unwrap_or_default();
            for (id, old) in std::mem::take(objects) {
                if !fresh.contains_key(&id) && !deleting(&old) {
                    deleted.push(old);
                }
            }
            for object in fresh.into_values() {
                deleted.extend(apply(objects, object));
            }
        }
    }
    deleted
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pod(uid: &str, deleting: bool) -> Pod {
        let mut meta = json!({"name": format!("p-{uid}"), "uid": uid});
        if deleting {
            meta["deletionTimestamp"] = json!("2026-12-07T10:00:00Z");
        }
        serde_json::from_value(json!({"metadata": meta})).unwrap()
    }

    fn names(pods: Vec<Pod>) -> Vec<String> {
        pods.iter().map(|p| p.name_any()).collect()
    }

    #[test]
    fn a_deletion_is_told_once_whether_seen_as_a_timestamp_a_delete_or_a_relist() {
        let (mut pods, mut relist) = (BTreeMap::new(), None);
        let mut event = |e| names(pod_event(e, &mut pods, &mut relist));
        assert!(event(watcher::Event::Apply(pod("a", false))).is_empty());
        assert!(event(watcher::Event::Apply(pod("b", false))).is_empty());
        assert!(event(watcher::Event::Apply(pod("c", false))).is_empty());
        assert_eq!(event(watcher::Event::Apply(pod("a", true))), vec!["p-a"]);
        assert!(event(watcher::Event::Apply(pod("a", true))).is_empty());
        assert!(event(watcher::Event::Delete(pod("a", true))).is_empty());
        assert_eq!(event(watcher::Event::Delete(pod("b", false))), vec!["p-b"]);
        // The watch broke; c went meanwhile; d is new.
        assert!(event(watcher::Event::Init).is_empty());
        assert!(event(watcher::Event::InitApply(pod("d", false))).is_empty());
        assert_eq!(event(watcher::Event::InitDone), vec!["p-c"]);
        assert_eq!(event(watcher::Event::Apply(pod("d", true))), vec!["p-d"]);
    }
}
