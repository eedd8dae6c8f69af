//! Time from a change of MDS primary in etcd to its notification on `EtcdClients`' change
//! stream (what the controller turns into a reconcile). Starts a 3-member etcd on loopback; two
//! MDS stand-ins take turns: the primary resigns, the other takes over, the first campaigns
//! again. Prints p50/p99/max; exits 1 if p99 reaches one second.
//!
//! The clock starts when the Resign request is sent: etcd deletes the key somewhere between
//! that and its answer, so the figures are an upper bound of the time from the change.

#[path = "../tests/support/etcd.rs"]
mod etcd_support;

use std::process::ExitCode;
use std::time::{Duration, Instant};

use curve_operator::etcd::{ClusterKey, EtcdClients, EtcdObserver, PrimaryObservation};
use etcd_support::{EtcdCluster, MdsStandIn};
use futures::StreamExt;

const CHANGES: usize = 100;

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

fn summary(label: &str, mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    let mean = samples.iter().sum::<Duration>() / samples.len() as u32;
    let p99 = percentile(&samples, 99.0);
    println!(
        "{label:<42} p50 {:>9.3?}  p99 {:>9.3?}  max {:>9.3?}  mean {:>9.3?}  (n={})",
        percentile(&samples, 50.0),
        p99,
        samples.last().unwrap(),
        mean,
        samples.len()
    );
    p99
}

#[tokio::main]
async fn main() -> ExitCode {
    let etcd = EtcdCluster::start(3).await;
    let eps = etcd.endpoints();
    let mut current = MdsStandIn::campaign(&eps, "127.0.1.1:6700").await;
    current.wait_elected().await;
    let mut next = MdsStandIn::campaign(&eps, "127.0.1.2:6700").await;

    let (clients, changes) = EtcdClients::new();
    let mut changes = Box::pin(changes);
    let cluster = ClusterKey {
        namespace: "bench".into(),
        name: "demo".into(),
    };
    let first = clients.observe(&cluster, &eps).await.primary;
    assert_eq!(
        first,
        PrimaryObservation::Elected {
            address: current.address.clone()
        }
    );

    let mut notified = Vec::with_capacity(CHANGES);
    let mut resign_rtt = Vec::with_capacity(CHANGES);
    for i in 0..CHANGES {
        let sent = Instant::now();
        let resign = async {
            current.resign().await;
            Instant::now()
        };
        let seen = async {
            let key = tokio::time::timeout(Duration::from_secs(10), changes.next()).await;
            (key, Instant::now())
        };
        let (resigned, (key, seen)) = tokio::join!(resign, seen);
        match key {
            Ok(Some(k)) if k == cluster => {}
            other => panic!("change {i}: expected a notification for {cluster:?}, got {other:?}"),
        }
        notified.push(seen - sent);
        resign_rtt.push(resigned - sent);

        // Outside the clock: the change was the expected one, then set up the next.
        let now = clients.observe(&cluster, &eps).await.primary;
        assert_eq!(
            now,
            PrimaryObservation::Elected {
                address: next.address.clone()
            },
            "after change {i}"
        );
        next.wait_elected().await;
        current.campaign_again().await;
        std::mem::swap(&mut current, &mut next);
    }

    println!("primary_latency: {CHANGES} changes of MDS primary, 3-member etcd on loopback");
    let p99 = summary("change stream notification (from Resign)", notified);
    summary("Resign round trip (for scale)", resign_rtt);
    if p99 >= Duration::from_secs(1) {
        eprintln!("p99 {p99:?} is not well within one second");
        return ExitCode::FAILURE;
    }
    ExitCode::SUCCESS
}
