//! The nodes' clocks, compared (issue 30 item 6). Curve's MDS refuses every request signed 15 s
//! or more away from its own clock (`CheckDate`, C:src/mds/nameserver2/curvefs.cpp:1946-1955,
//! `kStaledRequestTimeIntervalUs`, C:src/mds/common/mds_define.h:50-52): clients and the
//! ChunkServers' clone client fail as if their password were wrong.
//!
//! No pod can read another node's clock, but every kubelet writes its own: it renews its node's
//! Lease in `kube-node-lease` every 10 s with `renewTime` from its local clock
//! (pkg/kubelet/nodelease, `NewMicroTime(clock.Now())`). The time the operator sees a renewal
//! minus its `renewTime` is that node's clock offset from the operator's plus the delivery
//! delay, which is never negative: the largest offset of a node's recent renewals is the best
//! estimate. Only renewals seen live count, not the initial list (an old `renewTime` read later
//! would look like a slow clock). Pure but for [`watch_node_clocks`].

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::jiff::Timestamp;
use kube::runtime::WatchStreamExt;
use kube::runtime::watcher::{Event, watcher};
use kube::{Api, Client};

/// Where kubelets keep their node Leases.
pub const NODE_LEASE_NAMESPACE: &str = "kube-node-lease";
/// Curve's limit: requests signed this far from the MDS's clock are refused.
pub const CURVE_DATE_LIMIT: Duration = Duration::from_secs(15);
/// Nodes whose clocks are this far apart are reported: a third of Curve's limit is left for the
/// drift to come and the measurement's error (the delivery delay of a renewal).
pub const CLOCKS_APART_LIMIT: Duration = Duration::from_secs(10);
/// Renewals kept per node: a minute of them at the kubelet's 10 s.
const SAMPLES: usize = 6;
/// A node whose last renewal is older than this has no estimate (its kubelet is gone).
const SAMPLE_AGE_LIMIT: Duration = Duration::from_secs(120);

/// A node's recent renewals: `(seen by the operator, renewTime − seen)` in seconds.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct NodeClock {
    samples: VecDeque<(Timestamp, f64)>,
}

impl NodeClock {
    /// A renewal written at `renewed` (the node's clock) and seen at `seen` (the operator's).
    pub fn renewed(&mut self, renewed: Timestamp, seen: Timestamp) {
        let offset = renewed.duration_since(seen).as_secs_f64();
        self.samples.push_back((seen, offset));
        while self.samples.len() > SAMPLES {
            self.samples.pop_front();
        }
    }

    /// The node's clock minus the operator's, in seconds, from renewals seen since
    /// `now − SAMPLE_AGE_LIMIT`: the largest (least delayed) of them.
    pub fn offset(&self, now: Timestamp) -> Option<f64> {
        let recent = |seen: &Timestamp| {
            now.duration_since(*seen).as_secs_f64() <= SAMPLE_AGE_LIMIT.as_secs_f64()
        };
        (self.samples.iter())
            .filter(|(seen, _)| recent(seen))
            .map(|(_, offset)| *offset)
            .reduce(f64::max)
    }
}

/// Every node's clock as seen so far; shared by the watch and the reconciles.
#[derive(Clone, Default)]
pub struct NodeClocks(Arc<Mutex<BTreeMap<String, NodeClock>>>);

impl NodeClocks {
    pub fn renewed(&self, node: &str, renewed: Timestamp, seen: Timestamp) {
        let mut clocks = self.0.lock().expect("not poisoned");
        clocks
            .entry(node.to_string())
            .or_default()
            .renewed(renewed, seen);
    }

    pub fn forget(&self, node: &str) {
        self.0.lock().expect("not poisoned").remove(node);
    }

    /// Whether the clocks of `nodes` are apart, judged now.
    pub fn apart<'a>(&self, nodes: impl IntoIterator<Item = &'a str>) -> Option<ClocksApart> {
        clocks_apart(&self.offsets(nodes, Timestamp::now()))
    }

    /// The offsets of `nodes` that have a recent estimate.
    pub fn offsets<'a>(
        &self,
        nodes: impl IntoIterator<Item = &'a str>,
        now: Timestamp,
    ) -> BTreeMap<String, f64> {
        let clocks = self.0.lock().expect("not poisoned");
        (nodes.into_iter())
            .filter_map(|node| Some((node.to_string(), clocks.get(node)?.offset(now)?)))
            .collect()
    }
}

/// Nodes of one cluster whose clocks are too far apart.
#[derive(Clone, Debug, PartialEq)]
pub struct ClocksApart {
    /// Seconds between the fastest and the slowest clock.
    pub spread: f64,
    /// Each node's offset from the median of the cluster's nodes, in seconds.
    pub offsets: BTreeMap<String, f64>,
}

/// The nodes' clocks judged: apart when the fastest and slowest differ by
/// [`CLOCKS_APART_LIMIT`] or more.
pub fn clocks_apart(offsets: &BTreeMap<String, f64>) -> Option<ClocksApart> {
    let mut sorted: Vec<f64> = offsets.values().copied().collect();
    sorted.sort_by(f64::total_cmp);
    let (first, last) = (sorted.first()?, sorted.last()?);
    let spread = last - first;
    if spread < CLOCKS_APART_LIMIT.as_secs_f64() {
        return None;
    }
    let median = sorted[sorted.len() / 2];
    Some(ClocksApart {
        spread,
        offsets: (offsets.iter())
            .map(|(node, offset)| (node.clone(), offset - median))
            .collect(),
    })
}

impl ClocksApart {
    /// What the Degraded condition says: the nodes off the median by a second or more, in whole
    /// seconds (a finer figure would change, and be written, at every renewal).
    pub fn message(&self) -> String {
        let off: Vec<String> = (self.offsets.iter())
            .filter(|(_, offset)| offset.abs() >= 1.0)
            .map(|(node, offset)| format!("{node} {offset:+.0}s"))
            .collect();
        format!(
            "the clocks of the cluster's nodes are {:.0}s apart ({} from the others' median, as their kubelets' Lease renewals show); Curve's MDS refuses requests signed {}s or more from its own clock: synchronize the nodes' clocks (NTP, docs/user/nodes.md#clock)",
            self.spread,
            off.join(", "),
            CURVE_DATE_LIMIT.as_secs()
        )
    }
}

/// Follows the node Leases into `clocks`; calls `changed` when a node's offset moves by a
/// second or more (a reconcile then compares the clocks again). Ends with the process; a watch
/// that is refused (no RBAC for the Leases) is retried with backoff and the clocks stay unknown.
pub async fn watch_node_clocks(client: Client, clocks: NodeClocks, changed: impl Fn()) {
    let leases: Api<Lease> = Api::namespaced(client, NODE_LEASE_NAMESPACE);
    let mut events = watcher(leases, crate::runtime::requests::watch_config())
        .default_backoff()
        .boxed();
    let mut told: BTreeMap<String, f64> = BTreeMap::new();
    while let Some(event) = events.next().await {
        let Ok(event) = event else { continue };
        match event {
            Event::Apply(lease) => {
                let (Some(node), Some(renewed)) = (
                    lease.metadata.name.as_deref(),
                    lease.spec.as_ref().and_then(|s| s.renew_time.as_ref()),
                ) else {
                    continue;
                };
                let now = Timestamp::now();
                clocks.renewed(node, renewed.0, now);
                let offset = clocks.offsets([node], now).get(node).copied();
                if let Some(offset) = offset
                    && told.get(node).is_none_or(|t| (t - offset).abs() >= 1.0)
                {
                    told.insert(node.to_string(), offset);
                    changed();
                }
            }
            Event::Delete(lease) => {
                if let Some(node) = lease.metadata.name.as_deref() {
                    clocks.forget(node);
                    told.remove(node);
                }
            }
            // The initial list: renewals of the past, not seen when they were written.
            Event::Init | Event::InitApply(_) | Event::InitDone => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(seconds: i64) -> Timestamp {
        Timestamp::from_second(1_800_000_000 + seconds).unwrap()
    }

    fn offsets(pairs: &[(&str, f64)]) -> BTreeMap<String, f64> {
        pairs.iter().map(|(n, o)| (n.to_string(), *o)).collect()
    }

    #[test]
    fn a_nodes_offset_is_its_least_delayed_recent_renewal() {
        let mut clock = NodeClock::default();
        // The node runs 20 s ahead; renewals arrive 0.5 s, 3 s and 0.1 s late.
        clock.renewed(at(20), at(0) + Duration::from_millis(500));
        clock.renewed(at(30), at(13));
        clock.renewed(at(40), at(20) + Duration::from_millis(100));
        let offset = clock.offset(at(21)).unwrap();
        assert!((offset - 19.9).abs() < 1e-6, "{offset}");
        // Two minutes later without a renewal: no estimate.
        assert_eq!(clock.offset(at(20 + 121)), None);
        // Only the last minute of renewals is kept.
        for i in 0..10 {
            clock.renewed(at(100 + 10 * i), at(100 + 10 * i + 1));
        }
        assert_eq!(clock.offset(at(200)), Some(-1.0));
    }

    #[test]
    fn clocks_ten_seconds_apart_are_reported_with_each_nodes_offset_from_the_median() {
        assert_eq!(
            clocks_apart(&offsets(&[("a", 0.2), ("b", -0.3), ("c", 9.5)])),
            None
        );
        assert_eq!(clocks_apart(&BTreeMap::new()), None);
        let apart = clocks_apart(&offsets(&[("a", 0.2), ("b", -0.3), ("c", 20.2)])).unwrap();
        assert!((apart.spread - 20.5).abs() < 1e-9);
        assert_eq!(
            apart.offsets,
            offsets(&[("a", 0.0), ("b", -0.5), ("c", 20.0)])
        );
        assert_eq!(
            apart.message(),
            "the clocks of the cluster's nodes are 20s apart (c +20s from the others' median, as their kubelets' Lease renewals show); Curve's MDS refuses requests signed 15s or more from its own clock: synchronize the nodes' clocks (NTP, docs/user/nodes.md#clock)"
        );
    }

    #[test]
    fn the_shared_clocks_answer_for_the_nodes_asked_and_forget_a_deleted_lease() {
        let clocks = NodeClocks::default();
        clocks.renewed("node-1", at(10), at(10));
        clocks.renewed("node-2", at(35), at(10));
        let both = clocks.offsets(["node-1", "node-2", "node-3"], at(11));
        assert_eq!(both, offsets(&[("node-1", 0.0), ("node-2", 25.0)]));
        clocks.forget("node-2");
        assert_eq!(clocks.offsets(["node-2"], at(11)), BTreeMap::new());
    }
}
