//! The watch of one cluster's election: keeps the candidates current from etcd's event stream
//! and reports each change of primary, in order. Re-established with backoff when it breaks.

use std::time::Duration;

use backon::{BackoffBuilder, ExponentialBuilder};
use etcd_client::{Event, EventType, WatchOptions};
use futures::channel::mpsc::UnboundedSender;

use super::conn::{ElectionSnapshot, bounded, client_for, describe, read_election};
use super::election::{Candidate, KeyEvent, MDS_ELECTION_PREFIX};
use super::{ClusterKey, ElectionChange};

/// Delays between attempts to re-establish a broken watch: 100 ms doubling to 5 s, without
/// jitter and without a limit on attempts; they start from 100 ms again after a watch that ran.
const REWATCH_DELAYS: ExponentialBuilder = ExponentialBuilder::new()
    .with_min_delay(Duration::from_millis(100))
    .with_max_delay(Duration::from_secs(5))
    .without_max_times();

/// How one watch ended.
#[derive(Clone, Debug)]
pub(crate) struct Interruption {
    /// The watch was established (etcd confirmed it) before it broke.
    pub(crate) established: bool,
    pub(crate) endpoint: String,
    pub(crate) why: String,
}

/// A watch that [`rewatch`] re-establishes each time it stops.
pub(crate) trait Rewatch {
    /// Watch number `attempt` (0, 1, 2, …), until it stops.
    fn watch(&mut self, attempt: usize) -> impl Future<Output = Interruption> + Send;

    /// The watch stopped; the next one starts after `delay`.
    fn interrupted(&mut self, interruption: &Interruption, delay: Duration);
}

/// Runs `watches` until `delays` run out (never, for [`REWATCH_DELAYS`]), waiting the next
/// delay after each interruption. An established watch starts the delays over, so a watch
/// that ran for a while and broke is back quickly.
pub(crate) async fn rewatch(watches: &mut impl Rewatch, delays: ExponentialBuilder) {
    let mut next_delays = delays.build();
    for attempt in 0usize.. {
        let interruption = watches.watch(attempt).await;
        if interruption.established {
            next_delays = delays.build();
        }
        let Some(delay) = next_delays.next() else {
            return;
        };
        watches.interrupted(&interruption, delay);
        tokio::time::sleep(delay).await;
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
    let mut watcher = Watcher {
        cluster,
        endpoints,
        tx,
        tracker,
        resume: seed,
    };
    rewatch(&mut watcher, REWATCH_DELAYS).await;
}

impl Rewatch for Watcher {
    async fn watch(&mut self, attempt: usize) -> Interruption {
        // Each attempt goes to the next endpoint: the last one may be the member that failed.
        let endpoint = self.endpoints[attempt % self.endpoints.len()].clone();
        let mut established = false;
        let why = self.watch_once(&endpoint, &mut established).await;
        Interruption {
            established,
            endpoint,
            why,
        }
    }

    fn interrupted(&mut self, interruption: &Interruption, delay: Duration) {
        let Interruption { endpoint, why, .. } = interruption;
        tracing::debug!(cluster = ?self.cluster, %endpoint, error = %why, ?delay, "etcd election watch interrupted");
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

    /// One watch on one endpoint; returns why it stopped. Sets `established` once etcd
    /// confirmed the watch.
    async fn watch_once(&mut self, endpoint: &str, established: &mut bool) -> String {
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
                *established = true;
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

    /// Watches that all fail at once, but those numbered in `established` ran before they
    /// broke; when each started, and the delays reported.
    struct FailingWatches<'a> {
        established: &'a [usize],
        starts: Vec<tokio::time::Instant>,
        delays: Vec<Duration>,
    }

    impl Rewatch for FailingWatches<'_> {
        async fn watch(&mut self, attempt: usize) -> Interruption {
            self.starts.push(tokio::time::Instant::now());
            Interruption {
                established: self.established.contains(&attempt),
                endpoint: format!("etcd-{attempt}:2379"),
                why: "refused".into(),
            }
        }

        fn interrupted(&mut self, _: &Interruption, delay: Duration) {
            self.delays.push(delay);
        }
    }

    /// The delays [`rewatch`] reports, in whole milliseconds, while every watch fails at once
    /// for `run_for` (but those numbered in `established` ran before they broke); checks
    /// that it waited each of them before the next watch.
    async fn delays_while_failing(run_for: Duration, established: &[usize]) -> Vec<u128> {
        let mut watches = FailingWatches {
            established,
            starts: Vec::new(),
            delays: Vec::new(),
        };
        let endless = tokio::time::timeout(run_for, rewatch(&mut watches, REWATCH_DELAYS)).await;
        assert!(endless.is_err(), "rewatch gave up");
        let waits: Vec<Duration> = watches.starts.windows(2).map(|w| w[1] - w[0]).collect();
        // tokio's timer counts whole milliseconds, rounding a deadline up.
        let rounded_up =
            |d: &Duration| Duration::from_millis(d.as_nanos().div_ceil(1_000_000) as u64);
        let waited: Vec<Duration> = watches
            .delays
            .iter()
            .take(waits.len())
            .map(rounded_up)
            .collect();
        assert_eq!(waits, waited, "the waits between the watches");
        assert_eq!(
            watches.delays.len(),
            watches.starts.len(),
            "a delay after every watch"
        );
        watches.delays.iter().map(Duration::as_millis).collect()
    }

    #[tokio::test(start_paused = true)]
    async fn rewatch_waits_doubling_delays_up_to_five_seconds() {
        assert_eq!(
            delays_while_failing(Duration::from_secs(25), &[]).await,
            [100, 200, 400, 800, 1600, 3200, 5000, 5000, 5000, 5000]
        );
    }

    #[tokio::test(start_paused = true)]
    async fn an_established_watch_starts_the_delays_over() {
        assert_eq!(
            delays_while_failing(Duration::from_secs(5), &[3]).await,
            [100, 200, 400, 100, 200, 400, 800, 1600, 3200]
        );
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
