use serde_json::json;

use super::*;
use crate::api::{CopysetHealthStatus, HealthStatus, HealthVerdict};
use crate::curve::health::{Health, Verdict};
use crate::reconcile::fixtures::{pod, validated};

fn with_uid(mut pod: Arc<PodReading>, uid: &str) -> Arc<PodReading> {
    let reading = Arc::make_mut(&mut pod);
    reading.uid = uid.into();
    reading.derive();
    pod
}

fn tier(ready: bool) -> Vec<Arc<PodReading>> {
    vec![
        with_uid(
            pod("demo-etcd-0", "etcd", Some("10.0.0.1"), None, ready),
            "e0",
        ),
        with_uid(pod("demo-mds-0", "mds", Some("10.0.0.1"), None, true), "m0"),
        with_uid(pod("demo-mds-1", "mds", Some("10.0.0.2"), None, true), "m1"),
        with_uid(
            pod(
                "demo-chunkserver-0-0",
                "chunkserver",
                Some("10.0.0.1"),
                None,
                ready,
            ),
            "c0",
        ),
    ]
}

fn latest(verdict: HealthVerdict, pods_token: u64, unreachable: Option<&str>) -> Latest {
    Latest {
        health: Health {
            verdict: Verdict::Healthy,
            copysets: None,
            chunkservers: None,
            pools: Vec::new(),
        },
        status: HealthStatus {
            verdict,
            message: (verdict != HealthVerdict::Healthy)
                .then(|| "3 copysets MinorityPeerNotOnline (4294967297 …) on 10.0.0.3:8200".into()),
            copysets: Some(CopysetHealthStatus {
                total: 100,
                healthy: 97,
                unhealthy: 3,
                problems: Vec::new(),
            }),
            chunkservers: None,
            logical_pools: Vec::new(),
            last_checked: None,
        },
        pods_token,
        primary_unreachable: unreachable.map(str::to_string),
        inventory: None,
    }
}

#[test]
fn the_pods_token_follows_mds_and_chunkserver_readiness_and_identity_only() {
    let token = pods_token(&tier(true));
    assert_eq!(token, pods_token(&tier(true)), "stable");
    let mut unready = tier(true);
    unready[3] = with_uid(
        pod(
            "demo-chunkserver-0-0",
            "chunkserver",
            Some("10.0.0.1"),
            None,
            false,
        ),
        "c0",
    );
    assert_ne!(token, pods_token(&unready), "a ChunkServer turned unready");
    let mut replaced = tier(true);
    replaced[1] = with_uid(replaced[1].clone(), "m0-new");
    assert_ne!(token, pods_token(&replaced), "an MDS pod replaced");
    let mut etcd_down = tier(true);
    etcd_down[0] = with_uid(
        pod("demo-etcd-0", "etcd", Some("10.0.0.1"), None, false),
        "e0",
    );
    assert_eq!(
        token,
        pods_token(&etcd_down),
        "etcd pods are not Curve's daemons"
    );
}

#[test]
fn targets_are_the_mds_pods_listen_and_dummy_ports_with_the_elected_address() {
    let cluster = validated(json!({}));
    let wanted = wanted(&cluster, &tier(true), Some("10.0.0.2:6700"), None);
    let (port, dummy) = (cluster.spec.mds.port, cluster.spec.mds.dummy_port);
    assert_eq!(wanted.targets.elected.as_deref(), Some("10.0.0.2:6700"));
    assert_eq!(
        wanted.targets.mds,
        [
            MdsTarget {
                listen_addr: format!("10.0.0.1:{port}"),
                dummy_addr: format!("10.0.0.1:{dummy}"),
            },
            MdsTarget {
                listen_addr: format!("10.0.0.2:{port}"),
                dummy_addr: format!("10.0.0.2:{dummy}"),
            },
        ]
    );
    assert_eq!(
        wanted.rules.replicas,
        cluster.spec.logical_pool.replicas as usize
    );
    assert_eq!(wanted.pods_token, pods_token(&tier(true)));
}

#[test]
fn a_roll_step_needs_a_healthy_verdict_read_after_the_pods_were_as_they_are() {
    let pods = tier(true);
    let token = pods_token(&pods);
    assert_eq!(
        roll_gate(None).as_deref(),
        Some("waiting for Curve's health to be read")
    );
    let stale = view(
        &latest(HealthVerdict::Healthy, token ^ 1, None),
        &pods,
        6700,
        None,
    );
    assert!(!stale.current);
    assert_eq!(
        roll_gate(Some(&stale)).as_deref(),
        Some("waiting for Curve's health read after the last pod change")
    );
    let healthy = view(
        &latest(HealthVerdict::Healthy, token, None),
        &pods,
        6700,
        None,
    );
    assert_eq!(roll_gate(Some(&healthy)), None);
    let unhealthy = view(
        &latest(HealthVerdict::Unhealthy, token, None),
        &pods,
        6700,
        None,
    );
    assert_eq!(
        roll_gate(Some(&unhealthy)).as_deref(),
        Some(
            "waiting: Curve's health is unhealthy: 3 copysets MinorityPeerNotOnline (4294967297 …) on 10.0.0.3:8200"
        )
    );
    let unknown = view(
        &latest(HealthVerdict::Unknown, token, None),
        &pods,
        6700,
        None,
    );
    assert!(
        roll_gate(Some(&unknown)).is_some(),
        "never a step on Unknown"
    );
    // Unhealthy for another reason than copysets (a new ChunkServer without copysets yet):
    // every copyset is healthy, the step goes.
    let mut empty_chunkserver = latest(HealthVerdict::Unhealthy, token, None);
    empty_chunkserver.status.message = Some("ChunkServer 10.0.0.4:8200 holds no copyset".into());
    empty_chunkserver.status.copysets = Some(CopysetHealthStatus {
        total: 100,
        healthy: 100,
        unhealthy: 0,
        problems: Vec::new(),
    });
    assert_eq!(
        roll_gate(Some(&view(&empty_chunkserver, &pods, 6700, None))),
        None
    );
}

#[test]
fn an_unreachable_primary_is_named_by_its_pod() {
    let pods = tier(true);
    let seen = view(
        &latest(HealthVerdict::Healthy, 0, Some("10.0.0.2:6700")),
        &pods,
        6700,
        None,
    );
    assert_eq!(seen.primary_unreachable.as_deref(), Some("demo-mds-1"));
    let gone = view(
        &latest(HealthVerdict::Healthy, 0, Some("10.0.0.9:6700")),
        &pods,
        6700,
        None,
    );
    assert_eq!(gone.primary_unreachable.as_deref(), Some("10.0.0.9:6700"));
}
