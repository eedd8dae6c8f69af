use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use futures::StreamExt;

use super::*;
use crate::curve::CallError;
use crate::curve::gather::MdsTarget;
use crate::curve::health::{CurveReading, MdsReading, Rules};
use crate::curve::vars::{MdsDummyAnswer, MdsRole};

/// A cluster whose elected MDS can be made to stop answering; counts full reads and probes.
#[derive(Clone, Default)]
struct FakeCurve {
    primary_down: Arc<AtomicBool>,
    full_reads: Arc<AtomicUsize>,
    probes: Arc<AtomicUsize>,
}

impl CurveObserver for FakeCurve {
    async fn observe(&self, targets: &Targets) -> CurveReading {
        let probe = targets.elected.is_none();
        let counter = if probe {
            &self.probes
        } else {
            &self.full_reads
        };
        counter.fetch_add(1, Ordering::SeqCst);
        let down = self.primary_down.load(Ordering::SeqCst);
        let mds = (targets.mds.iter())
            .map(|m| MdsReading {
                listen_addr: m.listen_addr.clone(),
                dummy_addr: m.dummy_addr.clone(),
                answer: if down && m.listen_addr == PRIMARY {
                    Err(CallError::Unreachable {
                        endpoint: format!("{}/vars/mds_status", m.dummy_addr),
                        reason: "connection refused".into(),
                    })
                } else {
                    Ok(MdsDummyAnswer {
                        role: if m.listen_addr == PRIMARY {
                            MdsRole::Leader
                        } else {
                            MdsRole::Follower
                        },
                        listen_addr: m.listen_addr.clone(),
                    })
                },
            })
            .collect();
        CurveReading {
            elected: targets.elected.clone(),
            mds,
            topology: Err(CallError::BadAnswer {
                endpoint: format!("{PRIMARY}/curve.mds.topology.TopologyService/ListPhysicalPool"),
                reason: "not modelled here".into(),
            }),
            raft: Default::default(),
        }
    }
}

const PRIMARY: &str = "10.0.0.1:6700";

fn wanted(token: u64) -> Wanted {
    Wanted {
        targets: Targets {
            elected: Some(PRIMARY.into()),
            mds: vec![
                MdsTarget {
                    listen_addr: PRIMARY.into(),
                    dummy_addr: "10.0.0.1:7700".into(),
                },
                MdsTarget {
                    listen_addr: "10.0.0.2:6700".into(),
                    dummy_addr: "10.0.0.2:7700".into(),
                },
            ],
        },
        rules: Rules::default(),
        pods_token: token,
    }
}

fn key() -> ClusterKey {
    ClusterKey {
        namespace: "ns".into(),
        name: "demo".into(),
    }
}

/// Lets the monitor's task run until it waits on its timers again.
async fn settle() {
    for _ in 0..20 {
        tokio::task::yield_now().await;
    }
}

#[tokio::test(start_paused = true)]
async fn reads_at_once_then_on_its_period_and_wakes_the_reconcile_only_on_news() {
    let curve = FakeCurve::default();
    let (tx, mut changes) = futures::channel::mpsc::unbounded();
    let monitor = HealthMonitor::new(curve.clone(), curve.clone(), MonitorOptions::default(), tx);
    assert_eq!(monitor.want(&key(), wanted(1)), None, "nothing read yet");
    settle().await;
    assert_eq!(curve.full_reads.load(Ordering::SeqCst), 1);
    assert_eq!(
        changes.next().await,
        Some(key()),
        "the first reading is news"
    );
    let first = monitor.want(&key(), wanted(1)).expect("a reading");
    assert_eq!(first.pods_token, 1);
    let checked = first.status.last_checked.as_ref().expect("lastChecked").0;
    assert_eq!(
        checked.subsec_nanosecond(),
        0,
        "to the second, as the API server keeps it (a finer time would be a write per reconcile)"
    );
    assert_eq!(first.primary_unreachable, None);

    // 14 s of probes (one a second) and no full read; then the period's full read, unchanged:
    // nothing to tell.
    tokio::time::sleep(Duration::from_secs(14)).await;
    settle().await;
    assert_eq!(curve.full_reads.load(Ordering::SeqCst), 1);
    assert!(curve.probes.load(Ordering::SeqCst) >= 13);
    tokio::time::sleep(Duration::from_secs(2)).await;
    settle().await;
    assert_eq!(curve.full_reads.load(Ordering::SeqCst), 2);
    assert!(
        changes.try_recv().is_err(),
        "an unchanged reading wakes nobody"
    );
    let again = monitor.want(&key(), wanted(1)).unwrap();
    assert_eq!(
        again.status, first.status,
        "the status keeps its figures and time: no status write"
    );
}

/// A monitor watching the cluster (pods token 1) whose first reading is in and told.
async fn watched_and_read() -> (
    FakeCurve,
    futures::channel::mpsc::UnboundedReceiver<ClusterKey>,
    HealthMonitor<FakeCurve>,
) {
    let curve = FakeCurve::default();
    let (tx, mut changes) = futures::channel::mpsc::unbounded();
    let monitor = HealthMonitor::new(curve.clone(), curve.clone(), MonitorOptions::default(), tx);
    monitor.want(&key(), wanted(1));
    settle().await;
    assert_eq!(changes.next().await, Some(key()));
    (curve, changes, monitor)
}

#[tokio::test(start_paused = true)]
async fn a_pod_change_is_read_at_once_and_a_dead_primary_within_a_probe() {
    let (curve, mut changes, monitor) = watched_and_read().await;

    // A pod changed readiness: a full read now, not at the period, and the reconcile told
    // (a roll step may be waiting for exactly this reading).
    monitor.want(&key(), wanted(2));
    settle().await;
    assert_eq!(curve.full_reads.load(Ordering::SeqCst), 2);
    assert_eq!(changes.next().await, Some(key()));
    assert_eq!(monitor.want(&key(), wanted(2)).unwrap().pods_token, 2);

    // The primary dies: the next probe (≤ 1 s) says so, before any full read.
    curve.primary_down.store(true, Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(1001)).await;
    settle().await;
    assert_eq!(curve.full_reads.load(Ordering::SeqCst), 2);
    assert_eq!(changes.next().await, Some(key()));
    let seen = monitor.want(&key(), wanted(2)).unwrap();
    assert_eq!(seen.primary_unreachable.as_deref(), Some(PRIMARY));

    // Forgotten: no more reads.
    monitor.forget(&key());
    let (full, probes) = (
        curve.full_reads.load(Ordering::SeqCst),
        curve.probes.load(Ordering::SeqCst),
    );
    tokio::time::sleep(Duration::from_secs(60)).await;
    settle().await;
    assert_eq!(curve.full_reads.load(Ordering::SeqCst), full);
    assert_eq!(curve.probes.load(Ordering::SeqCst), probes);
}

#[tokio::test(start_paused = true)]
async fn a_new_leader_spread_is_news_and_the_same_spread_is_not() {
    let (_curve, _changes, monitor) = watched_and_read().await;
    let reading = monitor.want(&key(), wanted(1)).expect("a reading");
    let with_leaders = |leaders: &[(&str, u32)]| Latest {
        inventory: Some(std::sync::Arc::new(Inventory {
            leaders: leaders.iter().map(|(a, n)| (a.to_string(), *n)).collect(),
            ..Inventory::default()
        })),
        ..reading.clone()
    };
    let skewed = with_leaders(&[("10.0.0.1:8200", 30), ("10.0.0.2:8200", 0)]);
    let spread = with_leaders(&[("10.0.0.1:8200", 15), ("10.0.0.2:8200", 15)]);
    assert!(tells_more(Some(&skewed), &spread));
    assert!(!tells_more(Some(&spread), &spread.clone()));
}
