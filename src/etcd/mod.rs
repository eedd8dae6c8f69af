//! Reading a Curve cluster's etcd: the MDS election (who is primary), a watch that reports each
//! change of primary, and the health of the etcd members (with their database sizes and
//! alarms). The only key written is Curve's two id counters, advanced once after a restore
//! ([`counters`]); the other changes are to the member list and defragmentations.
//!
//! The reconciler uses the [`EtcdObserver`] trait, so its tests can fake etcd; [`EtcdClients`]
//! is the real implementation. The pure parts (who wins the election, what the answers mean,
//! endpoint parsing) live in [`election`], [`health`] and [`endpoints`].

pub mod cli;
mod conn;
pub mod counters;
pub mod election;
pub mod endpoints;
pub mod health;
mod watch;

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex};

use futures::{Stream, StreamExt};
use tokio::task::JoinHandle;

use conn::{Connection, ElectionSnapshot};
pub use election::MDS_ELECTION_PREFIX;
use endpoints::{endpoint_set, parse_endpoint};

/// Which CurveCluster an observation or a change is about.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ClusterKey {
    pub namespace: String,
    pub name: String,
}

/// The MDS election as etcd answered it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PrimaryObservation {
    /// The value of the winning `07leader/` key: the primary MDS's `ip:port`.
    Elected { address: String },
    /// No key under `07leader/`: no MDS campaigns.
    NoCandidate,
    /// No endpoint to ask: etcd was not dialed, so nothing is known of it.
    NoEndpoint,
    /// No endpoint answered.
    Unreachable {
        endpoints: Vec<String>,
        error: String,
    },
    /// Members answer but there is no raft leader, or linearizable reads time out.
    QuorumLost {
        endpoints: Vec<String>,
        error: String,
    },
}

/// The etcd members: the raft leader's member name, and how many of the listed members answer
/// and follow a leader.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct MemberHealth {
    pub leader: Option<String>,
    pub healthy: u32,
    pub total: u32,
    /// Every listed member, in the member list's order.
    pub members: Vec<Member>,
}

impl MemberHealth {
    /// Every named member healthy, the one at `leader` leading, peer URLs as the operator
    /// gives them (`http://<name>.<set>.<namespace>.svc:2380`): what a fake etcd answers.
    pub fn all_healthy(namespace: &str, names: &[&str], leader: usize) -> Self {
        let members: Vec<Member> = (names.iter().enumerate())
            .map(|(i, name)| Member {
                id: 0xa0 + i as u64,
                name: name.to_string(),
                peer_urls: vec![format!(
                    "http://{name}.{}.{namespace}.svc:2380",
                    name.rsplit_once('-').map_or(*name, |(set, _)| set)
                )],
                is_learner: false,
                healthy: true,
                is_leader: i == leader,
                serving: true,
                ..Member::default()
            })
            .collect();
        MemberHealth {
            leader: names.get(leader).map(|n| n.to_string()),
            healthy: members.len() as u32,
            total: members.len() as u32,
            members,
        }
    }
}

/// An alarm etcd raises (etcd's `AlarmType`): each makes the cluster refuse writes until it is
/// disarmed (`etcdctl alarm disarm`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum EtcdAlarm {
    /// The database reached `quota-backend-bytes`: only reads and deletes are served.
    NoSpace,
    /// A member's data differs from the others' (the corruption check).
    Corrupt,
}

impl EtcdAlarm {
    pub fn as_str(self) -> &'static str {
        match self {
            EtcdAlarm::NoSpace => "NOSPACE",
            EtcdAlarm::Corrupt => "CORRUPT",
        }
    }
}

/// One member of the member list, with what its own Status answer said.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct Member {
    pub id: u64,
    /// Empty until the member has started (etcd names it then).
    pub name: String,
    pub peer_urls: Vec<String>,
    pub is_learner: bool,
    /// It answered its Status call, follows a raft leader and reports no alarm.
    pub healthy: bool,
    pub is_leader: bool,
    /// It answered its Status call and follows a raft leader, alarms aside (an alarm is
    /// cluster-wide: every member reports it).
    pub serving: bool,
    /// The database file's size and the part of it in use (etcd's `dbSize`, `dbSizeInUse`);
    /// 0 when the member did not answer.
    pub db_size: u64,
    pub db_size_in_use: u64,
    /// The alarms raised on this member.
    pub alarms: Vec<EtcdAlarm>,
}

/// One change of the etcd member list (etcd's cluster API), as the operator makes it: one at a
/// time, each recorded in the status before it is sent.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MemberChange {
    /// `MemberAddAsLearner` with the new member's peer URL.
    AddLearner { peer_url: String },
    /// `MemberPromote`: etcd refuses it until the learner has caught up with the leader.
    Promote { id: u64 },
    /// `MemberRemove`.
    Remove { id: u64 },
    /// `MoveLeader` (sent to the leader itself) to the member `to`.
    MoveLeader { to: u64 },
    /// `Defragment` of the member `id` (sent to that member only): not a member-list change,
    /// but one that takes a member out of service for its duration, so it goes the same way.
    Defragment { id: u64 },
}

/// What etcd did with a member-list change.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ChangeOutcome {
    Done,
    /// Refused for now, allowed later (the learner has not caught up, or the last change is
    /// under 5 s old): the next pass asks again.
    NotYet(String),
}

impl MemberChange {
    pub fn describe(&self) -> String {
        match self {
            MemberChange::AddLearner { peer_url } => format!("add etcd learner {peer_url}"),
            MemberChange::Promote { id } => format!("promote etcd member {id:x}"),
            MemberChange::Remove { id } => format!("remove etcd member {id:x}"),
            MemberChange::MoveLeader { to } => format!("move etcd leadership to {to:x}"),
            MemberChange::Defragment { id } => format!("defragment etcd member {id:x}"),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EtcdObservation {
    pub primary: PrimaryObservation,
    /// `None` when no member answered the member list.
    pub members: Option<MemberHealth>,
}

pub trait EtcdObserver: Send + Sync + 'static {
    /// Current election and member state of one cluster's etcd. Never fails and never hangs
    /// (bounded by a few seconds): failures are described in the observation. Also makes sure a
    /// watch of the cluster's 07leader/ prefix is running; a changed endpoint set replaces it.
    fn observe(
        &self,
        cluster: &ClusterKey,
        endpoints: &[String],
    ) -> impl std::future::Future<Output = EtcdObservation> + Send;
    /// The cluster was deleted: stop its watch and drop its connection.
    fn forget(&self, cluster: &ClusterKey);
    /// Makes one change of the member list through these endpoints (bounded by a few seconds),
    /// or defragments one member ([`MemberChange::Defragment`], bounded by a minute).
    fn change_members(
        &self,
        cluster: &ClusterKey,
        endpoints: &[String],
        change: &MemberChange,
    ) -> impl std::future::Future<Output = Result<ChangeOutcome, String>> + Send;
    /// Reads Curve's id counters (`04`, `05`) through these endpoints, linearizably.
    fn read_counters(
        &self,
        _cluster: &ClusterKey,
        _endpoints: &[String],
    ) -> impl std::future::Future<Output = Result<counters::CounterReading, String>> + Send {
        async { Err("this etcd observer does not read Curve's id counters".to_string()) }
    }
    /// Writes a planned advance of the counters in one transaction guarded on the values it
    /// was planned from; `Ok(false)` when the guard failed and nothing was written.
    fn advance_counters(
        &self,
        _cluster: &ClusterKey,
        _endpoints: &[String],
        _planned: &crate::api::CountersAdvance,
    ) -> impl std::future::Future<Output = Result<bool, String>> + Send {
        async { Err("this etcd observer does not write Curve's id counters".to_string()) }
    }
}

/// A change of primary seen by a cluster's watch, in etcd's order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ElectionChange {
    pub cluster: ClusterKey,
    /// The new primary's address; `None` when no MDS campaigns any more.
    pub primary: Option<String>,
    /// The etcd revision of the change.
    pub revision: i64,
}

struct ClusterEntry {
    endpoints: BTreeSet<String>,
    conn: Arc<Connection>,
    watch: Option<JoinHandle<()>>,
}

impl Drop for ClusterEntry {
    fn drop(&mut self) {
        // A JoinHandle dropped detaches its task: stop the watch explicitly.
        if let Some(w) = self.watch.take() {
            w.abort();
        }
    }
}

/// The real implementation: one connection and one watch per cluster.
pub struct EtcdClients {
    clusters: Mutex<HashMap<ClusterKey, ClusterEntry>>,
    changes: futures::channel::mpsc::UnboundedSender<ElectionChange>,
}

impl EtcdClients {
    /// The observer, and a stream that yields a cluster's key each time its primary changes
    /// (the controller maps it to a reconcile of the cluster).
    pub fn new() -> (Self, impl Stream<Item = ClusterKey> + Send + 'static) {
        let (clients, changes) = Self::with_changes();
        (clients, changes.map(|c| c.cluster))
    }

    /// Like [`EtcdClients::new`], with the new primary and revision in each change: every change
    /// of primary is reported, in order, even when several come faster than they are read.
    pub fn with_changes() -> (Self, impl Stream<Item = ElectionChange> + Send + 'static) {
        let (tx, rx) = futures::channel::mpsc::unbounded();
        (
            EtcdClients {
                clusters: Mutex::new(HashMap::new()),
                changes: tx,
            },
            rx,
        )
    }

    /// Whether a watch of this cluster's election is running.
    pub fn is_watching(&self, cluster: &ClusterKey) -> bool {
        let clusters = self.clusters.lock().unwrap();
        clusters
            .get(cluster)
            .and_then(|e| e.watch.as_ref())
            .is_some_and(|w| !w.is_finished())
    }

    /// The cluster's connection for exactly these endpoints: the existing one, or a new one
    /// that replaces a connection (and watch) to another endpoint set.
    async fn connection(
        &self,
        cluster: &ClusterKey,
        endpoints: &[String],
    ) -> Result<Arc<Connection>, String> {
        let set = endpoint_set(endpoints);
        if let Some(e) = self.clusters.lock().unwrap().get(cluster)
            && e.endpoints == set
        {
            return Ok(e.conn.clone());
        }
        // Connecting is lazy (no network round trip), but async: done outside the lock.
        let conn = Arc::new(Connection::connect(endpoints).await?);
        let mut clusters = self.clusters.lock().unwrap();
        match clusters.get(cluster) {
            // Another observation of the same cluster got there first.
            Some(e) if e.endpoints == set => Ok(e.conn.clone()),
            _ => {
                clusters.insert(
                    cluster.clone(),
                    ClusterEntry {
                        endpoints: set,
                        conn: conn.clone(),
                        watch: None,
                    },
                );
                Ok(conn)
            }
        }
    }

    /// Starts the cluster's watch unless one runs for this connection. `seed` is what the
    /// observation just read, so the watch reports changes relative to it.
    fn ensure_watch(
        &self,
        cluster: &ClusterKey,
        conn: &Arc<Connection>,
        seed: Option<ElectionSnapshot>,
    ) {
        let mut clusters = self.clusters.lock().unwrap();
        let Some(entry) = clusters.get_mut(cluster) else {
            return;
        };
        if !Arc::ptr_eq(&entry.conn, conn) {
            return; // replaced meanwhile by a connection to other endpoints
        }
        if entry.watch.as_ref().is_some_and(|w| !w.is_finished()) {
            return;
        }
        let task = watch::watch_election(
            cluster.clone(),
            conn.endpoints().to_vec(),
            seed,
            self.changes.clone(),
        );
        entry.watch = Some(tokio::spawn(task));
    }
}

impl EtcdObserver for EtcdClients {
    async fn observe(&self, cluster: &ClusterKey, endpoints: &[String]) -> EtcdObservation {
        let unreachable = |endpoints: Vec<String>, error: String| EtcdObservation {
            primary: PrimaryObservation::Unreachable { endpoints, error },
            members: None,
        };
        let parsed = endpoints
            .iter()
            .map(|e| parse_endpoint(e))
            .collect::<Result<Vec<_>, _>>();
        let endpoints = match parsed {
            Ok(eps) if !eps.is_empty() => eps,
            // Not "unreachable": there is no endpoint to name as not answering.
            Ok(_) => {
                return EtcdObservation {
                    primary: PrimaryObservation::NoEndpoint,
                    members: None,
                };
            }
            Err(e) => return unreachable(endpoints.to_vec(), e.to_string()),
        };
        let conn = match self.connection(cluster, &endpoints).await {
            Ok(c) => c,
            Err(e) => return unreachable(endpoints, e),
        };
        let (observation, snapshot) = conn.observe().await;
        self.ensure_watch(cluster, &conn, snapshot);
        observation
    }

    fn forget(&self, cluster: &ClusterKey) {
        // Dropping the entry aborts the watch and closes the clients.
        self.clusters.lock().unwrap().remove(cluster);
    }

    async fn change_members(
        &self,
        cluster: &ClusterKey,
        endpoints: &[String],
        change: &MemberChange,
    ) -> Result<ChangeOutcome, String> {
        let endpoints = endpoints
            .iter()
            .map(|e| parse_endpoint(e).map_err(|e| e.to_string()))
            .collect::<Result<Vec<_>, _>>()?;
        if endpoints.is_empty() {
            return Err("no etcd endpoint to send the change to".into());
        }
        self.connection(cluster, &endpoints)
            .await?
            .change_members(change)
            .await
    }

    async fn read_counters(
        &self,
        cluster: &ClusterKey,
        endpoints: &[String],
    ) -> Result<counters::CounterReading, String> {
        let conn = self.parsed_connection(cluster, endpoints).await?;
        conn.first_answer(|client| async move { counters::read(&client).await })
            .await
    }

    async fn advance_counters(
        &self,
        cluster: &ClusterKey,
        endpoints: &[String],
        planned: &crate::api::CountersAdvance,
    ) -> Result<bool, String> {
        let conn = self.parsed_connection(cluster, endpoints).await?;
        conn.first_answer(|client| async move { counters::advance(&client, planned).await })
            .await
    }
}

impl EtcdClients {
    /// The connection for these endpoints, given as `ip:port`.
    async fn parsed_connection(
        &self,
        cluster: &ClusterKey,
        endpoints: &[String],
    ) -> Result<Arc<Connection>, String> {
        let endpoints = endpoints
            .iter()
            .map(|e| parse_endpoint(e).map_err(|e| e.to_string()))
            .collect::<Result<Vec<_>, _>>()?;
        if endpoints.is_empty() {
            return Err("no etcd endpoint to ask".into());
        }
        self.connection(cluster, &endpoints).await
    }
}
