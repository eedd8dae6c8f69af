//! The watch of one cluster's election: keeps the candidates current from etcd's event stream
//! and reports each change of primary, in order. Re-established with backoff when it breaks.

use std::time::Duration;

use etcd_client::{Event, EventType, WatchOptions};
use futures::channel::mpsc::UnboundedSender;

use super::conn::{ElectionSnapshot, bounded, client_for, describe, read_election};
use super::election::{Candidate, KeyEvent, MDS_ELECTION_PREFIX};
use super::{ClusterKey, ElectionChange};

/// Delays between attempts to re-establish a broken watch: doubling, capped, reset once a
/// watch is running again.
#[derive(Clone, Debug)]
pub(crate) struct Backoff {
    min: Duration,
    max: Duration,
    next: Duration,
}

impl Backoff {
    pub(crate) fn new(min: Duration, max: Duration) -> Self {
        Backoff {
            min,
            max,
            next: min,
        }
    }

    pub(crate) fn next_delay(&mut self) -> Duration {
        let d = self.next;
        self.next = (self.next * 2).min(self.max);
        d
    }

    pub(crate) fn reset(&mut self) {
        self.next = self.min;
    }
}

/// Remembers the primary last reported, so that only changes are reported. Starts unknown:
/// the first primary it is told of is a change unless it was seeded with one.
#[derive(Clone, Debug, Default)]
pub(crate) struct PrimaryTracker {
    last: Option<Option<String>>,
}

impl PrimaryTracker {
    pub(crate) fn seeded(primary: Option<&str>) -> Self {
        PrimaryTracker {
            last: Some(primary.map(str::to_string)),
        }
    }

    /// The new primary when it differs from the last one reported.
    pub(crate) fn update(&mut self, primary: Option<&str>) -> Option<Option<String>> {
        if self.last.as_ref().map(Option::as_deref) == Some(primary) {
            return None;
        }
        let now = primary.map(str::to_string);
        self.last = Some(now.clone());
        Some(now)
    }
}

fn key_event(ev: &Event) -> Option<(KeyEvent, i64)> {
    let kv = ev.kv()?;
    let key = String::from_utf8_lossy(kv.key()).into_owned();
    let event = match ev.event_type() {
        EventType::Put => KeyEvent::Put(Candidate::new(
            key,
            kv.create_revision(),
            String::from_utf8_lossy(kv.value()),
        )),
        EventType::Delete => KeyEvent::Deleted { key },
    };
    Some((event, kv.mod_revision()))
}

struct Watcher {
    cluster: ClusterKey,
    endpoints: Vec<String>,
    tx: UnboundedSender<ElectionChange>,
    tracker: PrimaryTracker,
    /// The state at the last revision seen, where a new watch resumes so that no event is
    /// missed; `None` after a compaction made that revision unavailable (then: read again).
    resume: Option<ElectionSnapshot>,
    backoff: Backoff,
}

/// Watches `07leader/` until the task is aborted. `seed` is the election as an observation just
/// read it (what the reconciler already knows); without one the first state read is reported.
pub(crate) async fn watch_election(
    cluster: ClusterKey,
    endpoints: Vec<String>,
    seed: Option<ElectionSnapshot>,
    tx: UnboundedSender<ElectionChange>,
) {
    let tracker = match &seed {
        Some(s) => PrimaryTracker::seeded(s.state.primary()),
        None => PrimaryTracker::default(),
    };
    let backoff = Backoff::new(Duration::from_millis(100), Duration::from_secs(5));
    let mut w = Watcher {
        cluster,
        endpoints,
        tx,
        tracker,
        resume: seed,
        backoff,
    };
    for attempt in 0usize.. {
        // Each attempt goes to the next endpoint: the last one may be the member that failed.
        let endpoint = w.endpoints[attempt % w.endpoints.len()].clone();
        let why = w.watch_once(&endpoint).await;
        let delay = w.backoff.next_delay();
        tracing::debug!(cluster = ?w.cluster, %endpoint, error = %why, ?delay, "etcd election watch interrupted");
        tokio::time::sleep(delay).await;
    }
}

impl Watcher {
    fn report(&mut self, revision: i64) {
        let Some(snapshot) = &self.resume else { return };
        if let Some(primary) = self.tracker.update(snapshot.state.primary()) {
            let change = ElectionChange {
                cluster: self.cluster.clone(),
                primary,
                revision,
            };
            // Nobody listening is fine: the watch still keeps observations cheap to answer.
            let _ = self.tx.unbounded_send(change);
        }
    }

    /// One watch on one endpoint; returns why it stopped.
    async fn watch_once(&mut self, endpoint: &str) -> String {
        let client = match client_for(endpoint, true).await {
            Ok(c) => c,
            Err(e) => return e,
        };
        if self.resume.is_none() {
            match read_election(client.clone()).await {
                Ok(s) => self.resume = Some(s),
                Err(e) => return format!("read: {e}"),
            }
        }
        let start = self.resume.as_ref().map_or(0, |s| s.revision);
        self.report(start);

        let opts = WatchOptions::new()
            .with_prefix()
            .with_start_revision(start + 1);
        let mut stream =
            match bounded(client.watch_client().watch(MDS_ELECTION_PREFIX, Some(opts))).await {
                Ok(s) => s,
                Err(e) => return format!("watch: {e}"),
            };
        loop {
            let msg = match stream.message().await {
                Ok(Some(m)) => m,
                Ok(None) => return "watch stream ended".into(),
                Err(e) => return format!("watch: {}", describe(&e)),
            };
            if msg.created() {
                // Running again: the next failure starts from the shortest delay.
                self.backoff.reset();
            }
            if msg.canceled() {
                if msg.compact_revision() > 0 {
                    // Events after `start` are gone: read the whole state again.
                    self.resume = None;
                }
                return format!("watch canceled: {}", msg.cancel_reason());
            }
            let Some(snapshot) = self.resume.as_mut() else {
                return "lost the election state".into();
            };
            let mut revision = snapshot.revision;
            for (event, rev) in msg.events().iter().filter_map(key_event) {
                snapshot.state.apply(event);
                revision = revision.max(rev);
            }
            snapshot.revision = revision;
            self.report(revision);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_to_its_cap_and_resets() {
        let mut b = Backoff::new(Duration::from_millis(100), Duration::from_secs(1));
        let delays: Vec<u64> = (0..6).map(|_| b.next_delay().as_millis() as u64).collect();
        assert_eq!(delays, vec![100, 200, 400, 800, 1000, 1000]);
        b.reset();
        assert_eq!(b.next_delay(), Duration::from_millis(100));
    }

    #[test]
    fn tracker_reports_changes_only() {
        let mut t = PrimaryTracker::default();
        assert_eq!(t.update(None), Some(None), "unknown → none is news");
        assert_eq!(t.update(None), None);
        assert_eq!(t.update(Some("a:1")), Some(Some("a:1".into())));
        assert_eq!(t.update(Some("a:1")), None);
        assert_eq!(t.update(Some("b:1")), Some(Some("b:1".into())));
        assert_eq!(t.update(None), Some(None));
    }

    #[test]
    fn seeded_tracker_does_not_repeat_the_seed() {
        let mut t = PrimaryTracker::seeded(Some("a:1"));
        assert_eq!(t.update(Some("a:1")), None);
        assert_eq!(t.update(None), Some(None));
        let mut t = PrimaryTracker::seeded(None);
        assert_eq!(t.update(None), None);
    }
}
