//! Operator leader election through a `coordination.k8s.io/v1` Lease.
//!
//! Not `kube-lease-manager` 0.13.1, although it depends on kube 5: it takes over an expired
//! lease with an unguarded strategic-merge patch that can clear a lock another contender has
//! just taken, so two replicas may both believe they lead; it also needs `patch` on leases.
//! Here every write is a create or a replace carrying the resourceVersion that was read, so of
//! two racing writers exactly one succeeds and the other gets 409 Conflict.
//!
//! Expiry is judged like client-go: by how long *this* process has seen the lease record
//! unchanged, never by comparing another node's clock with ours.

use std::sync::Mutex;
use std::time::Duration;

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use k8s_openapi::jiff::Timestamp;
use kube::api::{ObjectMeta, PostParams};
use kube::{Api, Client};
use tokio::time::Instant;
use tracing::{debug, info, warn};

/// Timing of the election.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LeaseDurations {
    /// How long others wait after the last renewal they saw before taking the lease over.
    pub lease: Duration,
    /// The holder steps down when it could not renew for this long. Shorter than `lease`, so
    /// the old leader has stopped before anyone else may start.
    pub renew_deadline: Duration,
    /// Pause between two attempts to acquire or renew.
    pub retry: Duration,
}

impl Default for LeaseDurations {
    /// client-go's defaults.
    fn default() -> Self {
        Self {
            lease: Duration::from_secs(15),
            renew_deadline: Duration::from_secs(10),
            retry: Duration::from_secs(2),
        }
    }
}

/// Why this replica no longer leads; it must stop acting at once (the operator exits).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LeadershipLost {
    #[error("the lease is now held by {}", .0.as_deref().unwrap_or("nobody"))]
    NotHolder(Option<String>),
    #[error("the lease could not be renewed within {0:?}")]
    RenewDeadline(Duration),
}

/// Campaigns for, holds and releases one Lease.
#[derive(Debug)]
pub struct LeaderElector {
    api: Api<Lease>,
    lease_name: String,
    identity: String,
    durations: LeaseDurations,
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    /// The resourceVersion last read and when it was first seen.
    observed: Option<(Option<String>, Instant)>,
    /// Start of the last successful acquire or renew.
    renewed: Option<Instant>,
}

/// Outcome of one attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Attempt {
    Leading,
    /// Someone else holds a valid lease (or, when renewing, nobody does any more).
    NotHolder(Option<String>),
    /// Another writer got there first.
    Conflict,
}

/// What to do with the lease record that was read.
#[derive(Debug, Clone, PartialEq)]
enum Plan {
    Write(LeaseSpec),
    Leave(Option<String>),
}

/// Decides, from the record read, whether to write it and with what. Pure.
///
/// `renewing`: we believe we lead; then any other holder, or none, means we lost.
fn plan(
    current: &LeaseSpec,
    identity: &str,
    expired: bool,
    renewing: bool,
    now: Timestamp,
    lease: Duration,
) -> Plan {
    let holder = current.holder_identity.as_deref().filter(|h| !h.is_empty());
    let ours = holder == Some(identity);
    if !ours && (renewing || (holder.is_some() && !expired)) {
        return Plan::Leave(holder.map(str::to_owned));
    }
    let transitions = current.lease_transitions.unwrap_or(0);
    Plan::Write(LeaseSpec {
        holder_identity: Some(identity.to_owned()),
        lease_duration_seconds: Some(i32::try_from(lease.as_secs().max(1)).unwrap_or(i32::MAX)),
        renew_time: Some(MicroTime(now)),
        acquire_time: if ours {
            current.acquire_time.clone()
        } else {
            Some(MicroTime(now))
        },
        lease_transitions: Some(if ours { transitions } else { transitions + 1 }),
        ..current.clone()
    })
}

fn is_conflict(err: &kube::Error) -> bool {
    matches!(err, kube::Error::Api(s) if s.code == 409)
}

impl LeaderElector {
    /// `identity` must be unique among contenders (the pod name).
    pub fn new(
        client: Client,
        namespace: &str,
        lease_name: impl Into<String>,
        identity: impl Into<String>,
        durations: LeaseDurations,
    ) -> Self {
        Self {
            api: Api::namespaced(client, namespace),
            lease_name: lease_name.into(),
            identity: identity.into(),
            durations,
            state: Mutex::new(State::default()),
        }
    }

    pub fn identity(&self) -> &str {
        &self.identity
    }

    /// Returns once this replica holds the lease; retries API errors forever (logged).
    pub async fn acquire(&self) {
        loop {
            match self.attempt(false).await {
                Ok(Attempt::Leading) => {
                    info!(lease = %self.lease_name, identity = %self.identity, "became leader");
                    return;
                }
                Ok(other) => debug!(lease = %self.lease_name, ?other, "not leader yet"),
                Err(err) => warn!(lease = %self.lease_name, %err, "leader election attempt failed"),
            }
            tokio::time::sleep(self.durations.retry).await;
        }
    }

    /// Renews the lease every `retry` while leading; resolves only when leadership is lost.
    /// Call after [`acquire`](Self::acquire); dropping the future stops renewing.
    pub async fn keep_leading(&self) -> LeadershipLost {
        loop {
            let Some(renewed) = self.state.lock().unwrap().renewed else {
                return LeadershipLost::NotHolder(None);
            };
            let deadline = renewed + self.durations.renew_deadline;
            if Instant::now() >= deadline {
                return self.lost(LeadershipLost::RenewDeadline(self.durations.renew_deadline));
            }
            tokio::time::sleep_until((Instant::now() + self.durations.retry).min(deadline)).await;
            match tokio::time::timeout_at(deadline, self.attempt(true)).await {
                Ok(Ok(Attempt::Leading)) => {}
                Ok(Ok(Attempt::NotHolder(holder))) => {
                    return self.lost(LeadershipLost::NotHolder(holder));
                }
                Ok(Ok(Attempt::Conflict)) => {
                    debug!(lease = %self.lease_name, "renewal conflicted, retrying")
                }
                Ok(Err(err)) => warn!(lease = %self.lease_name, %err, "lease renewal failed"),
                Err(_) => {
                    return self.lost(LeadershipLost::RenewDeadline(self.durations.renew_deadline));
                }
            }
        }
    }

    /// Frees the lease if we hold it, so a standby takes over without waiting for expiry.
    pub async fn release(&self) -> Result<(), kube::Error> {
        self.state.lock().unwrap().renewed = None;
        let Some(mut lease) = self.api.get_opt(&self.lease_name).await? else {
            return Ok(());
        };
        let spec = lease.spec.get_or_insert_with(Default::default);
        if spec.holder_identity.as_deref() != Some(self.identity.as_str()) {
            return Ok(());
        }
        spec.holder_identity = None;
        spec.lease_duration_seconds = Some(1);
        spec.renew_time = Some(MicroTime(Timestamp::now()));
        match self
            .api
            .replace(&self.lease_name, &PostParams::default(), &lease)
            .await
        {
            Ok(_) => {
                info!(lease = %self.lease_name, "released leadership");
                Ok(())
            }
            // Someone wrote after our read: the lease is no longer ours to release.
            Err(err) if is_conflict(&err) => Ok(()),
            Err(err) => Err(err),
        }
    }

    fn lost(&self, why: LeadershipLost) -> LeadershipLost {
        self.state.lock().unwrap().renewed = None;
        warn!(lease = %self.lease_name, %why, "lost leadership");
        why
    }

    /// Reads the lease and writes it when the plan says so; one request pair at most.
    async fn attempt(&self, renewing: bool) -> Result<Attempt, kube::Error> {
        let started = Instant::now();
        let now = Timestamp::now();
        let Some(mut lease) = self.api.get_opt(&self.lease_name).await? else {
            if renewing {
                return Ok(Attempt::NotHolder(None));
            }
            return self.create(started, now).await;
        };
        let expired = self.observe(&lease, started);
        match plan(
            &lease.spec.clone().unwrap_or_default(),
            &self.identity,
            expired,
            renewing,
            now,
            self.durations.lease,
        ) {
            Plan::Leave(holder) => Ok(Attempt::NotHolder(holder)),
            Plan::Write(spec) => {
                lease.spec = Some(spec);
                // `lease.metadata.resourceVersion` is the one read: the write fails if anyone
                // wrote in between.
                match self
                    .api
                    .replace(&self.lease_name, &PostParams::default(), &lease)
                    .await
                {
                    Ok(written) => Ok(self.won(&written, started)),
                    Err(err) if is_conflict(&err) => Ok(Attempt::Conflict),
                    Err(err) => Err(err),
                }
            }
        }
    }

    async fn create(&self, started: Instant, now: Timestamp) -> Result<Attempt, kube::Error> {
        let Plan::Write(mut spec) = plan(
            &LeaseSpec::default(),
            &self.identity,
            true,
            false,
            now,
            self.durations.lease,
        ) else {
            unreachable!("a free lease is always taken");
        };
        spec.lease_transitions = Some(0);
        let lease = Lease {
            metadata: ObjectMeta {
                name: Some(self.lease_name.clone()),
                ..Default::default()
            },
            spec: Some(spec),
        };
        match self.api.create(&PostParams::default(), &lease).await {
            Ok(written) => Ok(self.won(&written, started)),
            Err(err) if is_conflict(&err) => Ok(Attempt::Conflict),
            Err(err) => Err(err),
        }
    }

    fn won(&self, written: &Lease, started: Instant) -> Attempt {
        let mut state = self.state.lock().unwrap();
        state.observed = Some((written.metadata.resource_version.clone(), started));
        state.renewed = Some(started);
        Attempt::Leading
    }

    /// Notes the record read; returns whether its holder let it expire.
    fn observe(&self, lease: &Lease, now: Instant) -> bool {
        let version = lease.metadata.resource_version.clone();
        let mut state = self.state.lock().unwrap();
        let since = match &state.observed {
            Some((seen, at)) if *seen == version => *at,
            _ => {
                state.observed = Some((version, now));
                now
            }
        };
        let valid_for = lease
            .spec
            .as_ref()
            .and_then(|s| s.lease_duration_seconds)
            .map_or(self.durations.lease, |s| {
                Duration::from_secs(u64::try_from(s).unwrap_or(0))
            });
        now >= since + valid_for
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn held_by(holder: &str, transitions: i32) -> LeaseSpec {
        LeaseSpec {
            holder_identity: Some(holder.into()),
            lease_transitions: Some(transitions),
            acquire_time: Some(MicroTime(Timestamp::UNIX_EPOCH)),
            ..Default::default()
        }
    }

    fn write(p: Plan) -> LeaseSpec {
        match p {
            Plan::Write(spec) => spec,
            Plan::Leave(h) => panic!("expected a write, got Leave({h:?})"),
        }
    }

    const LEASE: Duration = Duration::from_secs(15);

    #[test]
    fn a_valid_lease_of_another_is_left_alone() {
        let now = Timestamp::now();
        assert_eq!(
            plan(&held_by("b", 3), "a", false, false, now, LEASE),
            Plan::Leave(Some("b".into()))
        );
    }

    #[test]
    fn an_expired_or_free_lease_is_taken_with_a_new_transition() {
        let now = Timestamp::now();
        let spec = write(plan(&held_by("b", 3), "a", true, false, now, LEASE));
        assert_eq!(spec.holder_identity.as_deref(), Some("a"));
        assert_eq!(spec.lease_transitions, Some(4));
        assert_eq!(spec.acquire_time, Some(MicroTime(now)));
        assert_eq!(spec.lease_duration_seconds, Some(15));
        let free = LeaseSpec {
            holder_identity: Some(String::new()),
            ..held_by("", 3)
        };
        assert_eq!(
            write(plan(&free, "a", false, false, now, LEASE)).lease_transitions,
            Some(4)
        );
    }

    #[test]
    fn renewing_keeps_acquire_time_and_transitions() {
        let now = Timestamp::now();
        let spec = write(plan(&held_by("a", 3), "a", false, true, now, LEASE));
        assert_eq!(spec.lease_transitions, Some(3));
        assert_eq!(spec.acquire_time, Some(MicroTime(Timestamp::UNIX_EPOCH)));
        assert_eq!(spec.renew_time, Some(MicroTime(now)));
    }

    #[test]
    fn a_renewing_holder_never_takes_the_lease_back() {
        let now = Timestamp::now();
        assert_eq!(
            plan(&held_by("b", 3), "a", true, true, now, LEASE),
            Plan::Leave(Some("b".into()))
        );
        assert_eq!(
            plan(&LeaseSpec::default(), "a", true, true, now, LEASE),
            Plan::Leave(None)
        );
    }
}
