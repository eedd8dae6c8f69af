//! When the read step lists a StatefulSet's Events.

use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::Event;
use serde_json::json;

use super::*;

const CLUSTER: (&str, &str) = ("ns", "demo");

const TIMING: EventListing = EventListing {
    patience: Duration::from_secs(10),
    relist: Duration::from_secs(60),
};

fn missing(set: &str, pods: &[&str]) -> MissingPods {
    MissingPods {
        set: set.into(),
        component: Component::Etcd,
        pods: pods.iter().map(|p| p.to_string()).collect(),
    }
}

fn failed(pod: &str) -> Event {
    serde_json::from_value(json!({
        "metadata": {"name": format!("demo-etcd.{pod}"), "namespace": "ns"},
        "involvedObject": {"kind": "StatefulSet", "name": "demo-etcd"},
        "reason": "FailedCreate",
        "message": format!("create Pod {pod} in StatefulSet demo-etcd failed error: quota"),
    }))
    .unwrap()
}

fn secs(start: Instant, s: u64) -> Instant {
    start + Duration::from_secs(s)
}

#[test]
fn events_are_listed_once_the_same_pods_stayed_missing_for_the_patience_then_reused() {
    let start = Instant::now();
    let mut memo = SetEventsMemo::default();
    let sets = [missing("demo-etcd", &["demo-etcd-0"])];
    assert_eq!(
        memo.plan(CLUSTER, &sets, start, TIMING),
        SetEventsPlan {
            look_again: Some(Duration::from_secs(10)),
            ..SetEventsPlan::default()
        },
        "first seen: the controller may just be slow"
    );
    assert_eq!(
        memo.plan(CLUSTER, &sets, secs(start, 4), TIMING),
        SetEventsPlan {
            look_again: Some(Duration::from_secs(6)),
            ..SetEventsPlan::default()
        }
    );
    let due = memo.plan(CLUSTER, &sets, secs(start, 10), TIMING);
    assert_eq!(
        due,
        SetEventsPlan {
            list: vec!["demo-etcd".into()],
            ..SetEventsPlan::default()
        }
    );
    memo.listed(
        CLUSTER,
        "demo-etcd",
        &[failed("demo-etcd-0")],
        secs(start, 10),
    );
    assert_eq!(
        memo.plan(CLUSTER, &sets, secs(start, 69), TIMING),
        SetEventsPlan {
            known: vec![failed("demo-etcd-0")],
            ..SetEventsPlan::default()
        },
        "the listing is reused while it is fresh"
    );
    assert_eq!(
        memo.plan(CLUSTER, &sets, secs(start, 70), TIMING).list,
        ["demo-etcd"],
        "and renewed after relist"
    );
}

#[test]
fn other_missing_pods_start_the_patience_again_and_a_complete_set_is_forgotten() {
    let start = Instant::now();
    let mut memo = SetEventsMemo::default();
    let one = [missing("demo-etcd", &["demo-etcd-0"])];
    memo.plan(CLUSTER, &one, start, TIMING);
    memo.plan(CLUSTER, &one, secs(start, 10), TIMING);
    memo.listed(
        CLUSTER,
        "demo-etcd",
        &[failed("demo-etcd-0")],
        secs(start, 10),
    );
    // The controller created one pod and misses another: it is working.
    let other = [missing("demo-etcd", &["demo-etcd-1"])];
    assert_eq!(
        memo.plan(CLUSTER, &other, secs(start, 11), TIMING),
        SetEventsPlan {
            look_again: Some(Duration::from_secs(10)),
            ..SetEventsPlan::default()
        }
    );
    // Complete, then missing the first pod again (a roll deleted it): seen afresh.
    memo.plan(CLUSTER, &[], secs(start, 12), TIMING);
    assert_eq!(
        memo.plan(CLUSTER, &one, secs(start, 13), TIMING).look_again,
        Some(Duration::from_secs(10))
    );
    // Another cluster's sets are its own; a deleted cluster is forgotten.
    let elsewhere = ("ns", "other");
    assert_eq!(
        memo.plan(elsewhere, &one, secs(start, 30), TIMING)
            .look_again,
        Some(Duration::from_secs(10))
    );
    memo.forget(CLUSTER);
    assert_eq!(
        memo.plan(CLUSTER, &one, secs(start, 30), TIMING).look_again,
        Some(Duration::from_secs(10))
    );
}

#[test]
fn the_soonest_patience_is_when_to_look_again() {
    let start = Instant::now();
    let mut memo = SetEventsMemo::default();
    let etcd = missing("demo-etcd", &["demo-etcd-0"]);
    memo.plan(CLUSTER, std::slice::from_ref(&etcd), start, TIMING);
    let both = [etcd, missing("demo-mds", &["demo-mds-0"])];
    assert_eq!(
        memo.plan(CLUSTER, &both, secs(start, 7), TIMING).look_again,
        Some(Duration::from_secs(3))
    );
}

/// A pod an unschedulable pod's claims are found for by its name, however many claims there
/// are, and a claim of another pod whose name ends alike is not its.
#[test]
fn a_pods_claims_are_those_named_after_it() {
    let claim = |name: &str| -> k8s_openapi::api::core::v1::PersistentVolumeClaim {
        serde_json::from_value(json!({"metadata": {"name": name}})).unwrap()
    };
    let claims = [
        "data-demo-chunkserver-0-1",
        "log-demo-chunkserver-0-1",
        "data-demo-chunkserver-0-11",
        "data-xdemo-chunkserver-0-1",
    ]
    .map(|name| ClaimReading::shared(claim(name)));
    let index = ClaimsByPod::new(&claims);
    let names =
        |pod: &str| -> Vec<String> { (index.of(pod).iter()).map(|c| c.name.clone()).collect() };
    assert_eq!(
        names("demo-chunkserver-0-1"),
        ["data-demo-chunkserver-0-1", "log-demo-chunkserver-0-1"]
    );
    assert_eq!(
        names("demo-chunkserver-0-11"),
        ["data-demo-chunkserver-0-11"]
    );
    assert_eq!(names("demo-chunkserver-0-2"), Vec::<String>::new());
}

#[test]
fn a_pod_counts_for_its_set_only_under_the_exact_name_the_set_gives_it() {
    let set: StatefulSet = serde_json::from_value(json!({
        "metadata": {"name": "demo-etcd", "labels": {"app.kubernetes.io/component": "etcd"}},
        "spec": {"replicas": 4, "selector": {}, "serviceName": "demo-etcd", "template": {}},
    }))
    .unwrap();
    // Only demo-etcd-0 and demo-etcd-3 are the set's names; the others merely look alike.
    let names = [
        "demo-etcd-0",
        "demo-etcd-01",
        "demo-etcd-+1",
        "demo-etcd-2x",
        "demo-etcd-3",
        "other-demo-etcd-2",
    ];
    let pods: Vec<_> = (names.iter())
        .map(|n| crate::reconcile::fixtures::pod(n, "etcd", None, None, true))
        .collect();
    assert_eq!(
        missing_pods(&[set], &pods),
        [MissingPods {
            set: "demo-etcd".into(),
            component: Component::Etcd,
            pods: vec!["demo-etcd-1".into(), "demo-etcd-2".into()],
        }]
    );
}
