//! Pods read into components, addresses, servers and the MDS primary.

use crate::etcd::PrimaryObservation;
use crate::reconcile::fixtures::pod;
use crate::reconcile::model::observation::PrimaryView;
use crate::reconcile::observe;

#[test]
fn member_addresses_are_ips_in_ordinal_order_and_stay_put_while_a_member_is_replaced() {
    let pods = vec![
        pod("demo-mds-1", "mds", Some("10.0.0.2"), Some("n2"), true),
        pod("demo-mds-0", "mds", Some("10.0.0.1"), Some("n1"), true),
        pod("demo-mds-2", "mds", None, None, false),
    ];
    let previous = Some(vec![
        "10.0.0.1:6700".to_string(),
        "10.0.0.2:6700".into(),
        "10.0.0.9:6700".into(),
    ]);
    assert_eq!(
        observe::member_addresses(&pods, "demo-mds", 2, 6700, None),
        ["10.0.0.1:6700", "10.0.0.2:6700"]
    );
    assert_eq!(
        observe::member_addresses(&pods, "demo-mds", 3, 6700, previous.clone()),
        previous.clone().unwrap(),
        "no roll while mds-2 has no IP"
    );
    assert_eq!(
        observe::member_addresses(&pods, "demo-mds", 3, 6700, None),
        ["10.0.0.1:6700", "10.0.0.2:6700"]
    );
    let mut moved = pods.clone();
    moved[2] = pod("demo-mds-2", "mds", Some("10.0.0.3"), Some("n3"), true);
    assert_eq!(
        observe::member_addresses(&moved, "demo-mds", 3, 6700, previous),
        ["10.0.0.1:6700", "10.0.0.2:6700", "10.0.0.3:6700"]
    );
}

#[test]
fn pods_are_read_into_components_endpoints_and_servers() {
    let pods = vec![
        pod("demo-etcd-0", "etcd", Some("10.0.0.2"), Some("n2"), true),
        pod("demo-etcd-1", "etcd", Some("10.0.0.1"), Some("n1"), false),
        pod("demo-etcd-2", "etcd", None, None, false),
        pod("demo-mds-0", "mds", Some("10.0.0.1"), Some("n1"), true),
        pod("demo-mds-1", "mds", Some("10.0.0.2"), Some("n2"), true),
        pod(
            "demo-chunkserver-0-0",
            "chunkserver",
            Some("10.0.0.1"),
            Some("n1"),
            true,
        ),
        pod(
            "demo-chunkserver-1-0",
            "chunkserver",
            Some("10.0.0.1"),
            Some("n1"),
            true,
        ),
        pod(
            "demo-chunkserver-0-1",
            "chunkserver",
            Some("10.0.0.3"),
            Some("n3"),
            false,
        ),
    ];
    // etcd, MDS, ChunkServers.
    assert_eq!(observe::ready_by_tier(&pods), [1, 2, 2]);
    assert_eq!(
        observe::etcd_endpoints(&pods, 2379, None),
        ["10.0.0.1:2379", "10.0.0.2:2379"]
    );
    // The member joining (a learner) is never one of the operator's endpoints.
    assert_eq!(
        observe::etcd_endpoints(&pods, 2379, Some("demo-etcd-0")),
        ["10.0.0.1:2379"]
    );
    assert_eq!(
        observe::etcd_endpoints(&pods, 2379, Some("demo-etcd-7")),
        ["10.0.0.1:2379", "10.0.0.2:2379"]
    );
    let zones = [("n1".to_string(), "az1".to_string())].into();
    let servers = observe::chunkserver_servers(&pods, &zones);
    assert_eq!(servers.len(), 2, "one server per node, not per pod");
    assert_eq!(
        (
            servers[0].node.as_str(),
            servers[0].host_ip.as_str(),
            servers[0].zone.as_deref()
        ),
        ("n1", "10.0.0.1", Some("az1"))
    );
    assert_eq!(
        (servers[1].node.as_str(), servers[1].zone.as_deref()),
        ("n3", None)
    );
    let elected = |address: &str| PrimaryObservation::Elected {
        address: address.into(),
    };
    assert_eq!(
        observe::primary_view(&pods, 6700, &elected("10.0.0.2:6700")),
        PrimaryView::Elected {
            pod: "demo-mds-1".into(),
            address: "10.0.0.2:6700".into()
        }
    );
    assert_eq!(
        observe::primary_view(&pods, 6700, &elected("10.0.0.2:6701")),
        PrimaryView::UnknownLeader {
            address: "10.0.0.2:6701".into()
        }
    );
    let mut twins = pods.clone();
    twins.push(pod("demo-mds-2", "mds", Some("10.0.0.2"), Some("n2"), true));
    assert_eq!(
        observe::primary_view(&twins, 6700, &elected("10.0.0.2:6700")),
        PrimaryView::Ambiguous {
            address: "10.0.0.2:6700".into(),
            pods: vec!["demo-mds-1".into(), "demo-mds-2".into()]
        }
    );
    assert_eq!(
        observe::primary_view(&pods, 6700, &PrimaryObservation::NoCandidate),
        PrimaryView::NoLeader
    );
}

#[test]
fn a_pod_is_found_by_name_whatever_the_order_of_the_pods() {
    let names = [
        "demo-chunkserver-0-0",
        "demo-etcd-0",
        "demo-mds-0",
        "demo-mds-1",
    ];
    let sorted: Vec<_> = (names.iter())
        .map(|n| pod(n, "mds", Some("10.0.0.1"), Some("n1"), true))
        .collect();
    let mut reversed = sorted.clone();
    reversed.reverse();
    for pods in [&sorted, &reversed] {
        for name in names {
            let found = observe::pod_named(pods, name).map(|p| p.name.as_str());
            assert_eq!(
                found,
                Some(name),
                "{name} in {:?}",
                pods.first().map(|p| &p.name)
            );
        }
        assert_eq!(observe::pod_named(pods, "demo-mds-2"), None);
        assert_eq!(observe::pod_named(pods, "demo-etcd"), None);
    }
    assert_eq!(observe::pod_named(&[], "demo-mds-0"), None);
}
