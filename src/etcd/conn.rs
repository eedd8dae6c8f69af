//! The I/O of an observation: one etcd client per endpoint and the reads made through them.

use std::future::Future;
use std::time::Duration;

use etcd_client::{AlarmAction, AlarmType, Client, ConnectOptions, GetOptions, MemberAddOptions};
use futures::stream::{FuturesUnordered, StreamExt};

use super::election::{Candidate, ElectionState, MDS_ELECTION_PREFIX};
use super::health::{MemberInfo, MemberStatus, alarm_of, classify, member_health};
use super::{ChangeOutcome, EtcdAlarm, EtcdObservation, MemberChange, PrimaryObservation};

/// Time to open a TCP connection to one endpoint.
pub(crate) const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);
/// Time one request may take. A linearizable read on a member without quorum waits until
/// etcd's own request timeout (7 s with default settings): this cuts it short.
pub(crate) const REQUEST_TIMEOUT: Duration = Duration::from_secs(2);
/// Time a defragmentation may take: it rewrites the database (about 1 s per GiB on an SSD,
/// longer on a disk); the member serves nothing meanwhile.
pub(crate) const DEFRAGMENT_TIMEOUT: Duration = Duration::from_secs(60);
/// Bound of a whole observation; the reads run side by side, so it is never reached in practice.
pub(crate) const OBSERVE_TIMEOUT: Duration = Duration::from_secs(4);

/// Connection options. `require_leader` makes a member without a raft leader refuse (and
/// cancel its watches) instead of serving stale or no data; it is for the watch only, since an
/// observation wants a leaderless member's own Status answer.
pub(crate) fn connect_options(require_leader: bool) -> ConnectOptions {
    ConnectOptions::new()
        .with_connect_timeout(CONNECT_TIMEOUT)
        // etcd closes connections that ping more often than every 5 s (grpc-keepalive-min-time).
        .with_keep_alive(Duration::from_secs(10), Duration::from_secs(5))
        .with_require_leader(require_leader)
}

/// A client for one endpoint. Lazy: it connects on first use and again after a failure.
pub(crate) async fn client_for(endpoint: &str, require_leader: bool) -> Result<Client, String> {
    Client::connect([endpoint], Some(connect_options(require_leader)))
        .await
        .map_err(|e| describe(&e))
}

/// One client per endpoint, reused by every observation of the cluster. Not etcd-client's
/// balanced channel over all endpoints: it sends requests to a dead endpoint as readily as to a
/// live one, and the per-member Status calls need a client per member anyway.
pub(crate) struct Connection {
    endpoints: Vec<String>,
    clients: Vec<Client>,
}

/// The election as read at `revision`: where a watch takes over.
#[derive(Clone, Debug)]
pub(crate) struct ElectionSnapshot {
    pub state: ElectionState,
    pub revision: i64,
}

impl Connection {
    pub(crate) async fn connect(endpoints: &[String]) -> Result<Self, String> {
        let mut clients = Vec::with_capacity(endpoints.len());
        for ep in endpoints {
            clients.push(
                client_for(ep, false)
                    .await
                    .map_err(|e| format!("{ep}: {e}"))?,
            );
        }
        Ok(Connection {
            endpoints: endpoints.to_vec(),
            clients,
        })
    }

    pub(crate) fn endpoints(&self) -> &[String] {
        &self.endpoints
    }

    /// Reads the election, the member list and every member's status side by side.
    pub(crate) async fn observe(&self) -> (EtcdObservation, Option<ElectionSnapshot>) {
        let probes = futures::future::join_all(
            self.endpoints
                .iter()
                .zip(&self.clients)
                .map(|(ep, c)| async move { (ep.clone(), status(c.clone()).await) }),
        );
        let election = first_ok(self.clients.iter().map(|c| read_election(c.clone())));
        let members = first_ok(self.clients.iter().map(|c| member_list(c.clone())));
        let alarms = first_ok(self.clients.iter().map(|c| alarm_list(c.clone())));
        let all = async { futures::join!(probes, election, members, alarms) };
        let Ok((probes, election, members, alarms)) =
            tokio::time::timeout(OBSERVE_TIMEOUT, all).await
        else {
            let error = format!("no answer within {OBSERVE_TIMEOUT:?}");
            let primary = PrimaryObservation::Unreachable {
                endpoints: self.endpoints.clone(),
                error,
            };
            return (
                EtcdObservation {
                    primary,
                    members: None,
                },
                None,
            );
        };
        let statuses: Vec<MemberStatus> = probes
            .iter()
            .filter_map(|(_, r)| r.as_ref().ok().cloned())
            .collect();
        // Unread, the alarms the members' own Status answers list still show (as errors).
        let alarms = alarms.unwrap_or_default();
        let members = members
            .ok()
            .map(|ms| member_health(&ms, &statuses, &alarms));
        let primary = classify(
            &self.endpoints,
            election
                .as_ref()
                .map(|s| s.state.candidates().cloned().collect())
                .map_err(Clone::clone),
            &probes,
        );
        (EtcdObservation { primary, members }, election.ok())
    }
}

impl Connection {
    /// Sends one member-list change. Cluster calls go to any voting member (a learner refuses
    /// them, so the first that accepts wins); `MoveLeader` only to the leader itself.
    pub(crate) async fn change_members(
        &self,
        change: &MemberChange,
    ) -> Result<ChangeOutcome, String> {
        let attempts = self.clients.iter().map(|client| {
            let mut client = client.clone();
            let change = change.clone();
            async move {
                match change {
                    MemberChange::AddLearner { peer_url } => {
                        bounded(client.member_add(
                            [peer_url],
                            Some(MemberAddOptions::new().with_is_learner()),
                        ))
                        .await
                        .map(drop)
                    }
                    MemberChange::Promote { id } => {
                        bounded(client.member_promote(id)).await.map(drop)
                    }
                    MemberChange::Remove { id } => {
                        bounded(client.member_remove(id)).await.map(drop)
                    }
                    MemberChange::Defragment { id } => {
                        let own = status(client.clone()).await?;
                        if own.member_id != id {
                            return Err(format!("{:x} is not {id:x}", own.member_id));
                        }
                        // Rewrites the whole database: far longer than a request.
                        match tokio::time::timeout(DEFRAGMENT_TIMEOUT, client.defragment()).await {
                            Ok(result) => result.map(drop).map_err(|e| describe(&e)),
                            Err(_) => Err(format!("no answer within {DEFRAGMENT_TIMEOUT:?}")),
                        }
                    }
                    MemberChange::MoveLeader { to } => {
                        let own = status(client.clone()).await?;
                        if own.member_id != own.leader_id {
                            return Err(format!("{:x} is not the leader", own.member_id));
                        }
                        bounded(client.move_leader(to)).await.map(drop)
                    }
                }
            }
        });
        match first_ok(attempts).await {
            Ok(()) => Ok(ChangeOutcome::Done),
            Err(e) if not_yet(&e) => Ok(ChangeOutcome::NotYet(e)),
            Err(e) => Err(format!("{}: {e}", change.describe())),
        }
    }
}

impl Connection {
    /// `request` through each member in turn until one answers: a write is sent once at a
    /// time, never to two members at once.
    pub(crate) async fn first_answer<T, F>(
        &self,
        request: impl Fn(Client) -> F,
    ) -> Result<T, String>
    where
        F: Future<Output = Result<T, String>>,
    {
        let mut errors = Vec::new();
        for (endpoint, client) in self.endpoints.iter().zip(&self.clients) {
            match request(client.clone()).await {
                Ok(v) => return Ok(v),
                Err(e) => errors.push(format!("{endpoint}: {e}")),
            }
        }
        Err(errors.join("; "))
    }
}

/// etcd refuses a change it will allow later: a promotion before the learner caught up, a
/// change within 5 s of the last one, or one that would leave fewer connected (or started)
/// voters than a quorum (all three are `strict-reconfig-check`, which the rendered etcd.conf
/// turns on: "unhealthy cluster", "not enough started members").
fn not_yet(error: &str) -> bool {
    error.contains("unhealthy cluster")
        || error.contains("not enough started members")
        || error.contains("in sync with leader")
        || error.contains("too many learner")
}

/// Runs `request` under [`REQUEST_TIMEOUT`], the error described for a person.
pub(crate) async fn bounded<T>(
    request: impl Future<Output = Result<T, etcd_client::Error>>,
) -> Result<T, String> {
    match tokio::time::timeout(REQUEST_TIMEOUT, request).await {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(describe(&e)),
        Err(_) => Err(format!("no answer within {REQUEST_TIMEOUT:?}")),
    }
}

/// The first success among `attempts`, or every failure joined.
async fn first_ok<T>(
    attempts: impl IntoIterator<Item = impl Future<Output = Result<T, String>>>,
) -> Result<T, String> {
    let mut pending: FuturesUnordered<_> = attempts.into_iter().collect();
    let mut errors = Vec::new();
    while let Some(result) = pending.next().await {
        match result {
            Ok(v) => return Ok(v),
            Err(e) => {
                if !errors.contains(&e) {
                    errors.push(e);
                }
            }
        }
    }
    Err(errors.join("; "))
}

async fn status(client: Client) -> Result<MemberStatus, String> {
    let resp = bounded(client.maintenance_client().status()).await?;
    let header = resp.header().ok_or("status answer without header")?;
    Ok(MemberStatus {
        member_id: header.member_id(),
        leader_id: resp.leader(),
        raft_term: resp.raft_term(),
        errors: resp.errors().to_vec(),
        db_size: resp.db_size().max(0) as u64,
        db_size_in_use: resp.raft_used_db_size().max(0) as u64,
    })
}

/// etcd's alarm list (cluster-wide: any member answers for all).
async fn alarm_list(client: Client) -> Result<Vec<(u64, EtcdAlarm)>, String> {
    let mut maintenance = client.maintenance_client();
    let resp = bounded(maintenance.alarm(AlarmAction::Get, AlarmType::None, None)).await?;
    Ok((resp.alarms().iter())
        .filter_map(|a| Some((a.member_id(), alarm_of(a.alarm() as i32)?)))
        .collect())
}

async fn member_list(client: Client) -> Result<Vec<MemberInfo>, String> {
    let resp = bounded(client.cluster_client().member_list()).await?;
    Ok(resp
        .members()
        .iter()
        .map(|m| MemberInfo {
            id: m.id(),
            name: m.name().to_string(),
            peer_urls: m.peer_urls().to_vec(),
            is_learner: m.is_learner(),
        })
        .collect())
}

/// A linearizable read of the election prefix (the default for etcd reads): it fails rather
/// than answer from a member cut off from the majority.
pub(crate) async fn read_election(client: Client) -> Result<ElectionSnapshot, String> {
    let resp = bounded(
        client
            .kv_client()
            .get(MDS_ELECTION_PREFIX, Some(GetOptions::new().with_prefix())),
    )
    .await?;
    let revision = resp
        .header()
        .map(|h| h.revision())
        .ok_or("read answer without header")?;
    let candidates = resp.kvs().iter().map(|kv| {
        Candidate::new(
            String::from_utf8_lossy(kv.key()),
            kv.create_revision(),
            String::from_utf8_lossy(kv.value()),
        )
    });
    Ok(ElectionSnapshot {
        state: ElectionState::from_candidates(candidates),
        revision,
    })
}

/// An etcd-client error in one line, with the causes tonic keeps in its source chain (for
/// "connection refused" and the like the top-level message says only "transport error").
pub(crate) fn describe(e: &etcd_client::Error) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut push = |s: String| {
        if !s.is_empty() && !parts.iter().any(|p| p.contains(&s)) {
            parts.push(s);
        }
    };
    let mut source: Option<&(dyn std::error::Error + 'static)> = match e {
        etcd_client::Error::GRpcStatus(s) => {
            push(format!("{:?}: {}", s.code(), s.message()));
            std::error::Error::source(s)
        }
        etcd_client::Error::TransportError(t) => {
            push(t.to_string());
            std::error::Error::source(t)
        }
        other => {
            push(other.to_string());
            None
        }
    };
    while let Some(s) = source {
        push(s.to_string());
        source = s.source();
    }
    parts.join(": ")
}
