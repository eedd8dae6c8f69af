//! curve-csi's part of a decision on plain values.

use std::collections::BTreeSet;

use k8s_openapi::api::core::v1::{PersistentVolume, Pod};
use serde_json::json;
use std::sync::Arc;

use super::*;
use crate::api::CurveCluster;
use crate::desired::csi::{NODE_CONFIG_ANNOTATION, build};
use crate::validate::validate;

fn csi(mds: &[&str]) -> Csi {
    let cluster: CurveCluster = serde_json::from_value(json!({
        "apiVersion": "curve.opencurve.io/v1alpha1",
        "kind": "CurveCluster",
        "metadata": {"name": "demo", "namespace": "curve", "uid": "u"},
        "spec": {
            "image": "opencurvedocker/curvebs:v1.2.6",
            "chunkservers": {"replicas": 3, "storage": {"size": "100Gi"}},
            "csi": {"enabled": true}
        }
    }))
    .unwrap();
    let cluster = validate(&cluster, "default").unwrap();
    let mds: Vec<String> = mds.iter().map(|a| a.to_string()).collect();
    build(&cluster, &mds).unwrap()
}

const MDS: [&str; 3] = ["10.0.0.1:6700", "10.0.0.2:6700", "10.0.0.3:6700"];

/// The objects as they exist after `csi` was applied.
fn applied(csi: &Csi, with_class: bool) -> Vec<ExistingObject> {
    objects(csi, with_class)
        .into_iter()
        .map(|o| {
            let (o, _) = o.with_applied_hash();
            ExistingObject::of(o.kind(), o.meta())
        })
        .collect()
}

fn node_pod(name: &str, node: &str, config: &str) -> Arc<PodReading> {
    let pod: Pod = serde_json::from_value(json!({
        "metadata": {"name": name, "uid": format!("{name}-uid"),
                     "annotations": {NODE_CONFIG_ANNOTATION: config}},
        "spec": {"nodeName": node, "containers": []}
    }))
    .unwrap();
    Arc::new(pod.into())
}

fn input<'a>(
    desired: Option<&'a Csi>,
    existing: &'a [ExistingObject],
    pods: &'a [Arc<PodReading>],
    attached: Option<&'a BTreeSet<String>>,
    allowed: &'a RestartAllowed,
) -> CsiInput<'a> {
    CsiInput {
        desired,
        existing,
        node_pods: pods,
        attached,
        allowed,
        available: true,
        taken: &[],
    }
}

fn described(actions: &[Action]) -> Vec<String> {
    actions.iter().map(Action::describe).collect()
}

#[test]
fn nothing_before_the_cluster_is_available_then_everything_the_class_last() {
    let desired = csi(&MDS);
    let none = RestartAllowed::None;
    let waiting = plan(&CsiInput {
        available: false,
        ..input(Some(&desired), &[], &[], None, &none)
    });
    assert_eq!(waiting.actions, Vec::new());
    assert_eq!(waiting.state, CsiState::WaitingForAvailable);

    let first = plan(&input(Some(&desired), &[], &[], None, &none));
    assert_eq!(
        described(&first.actions),
        [
            "apply ServiceAccount/demo-csi-node",
            "apply ServiceAccount/demo-csi-controller",
            "apply Role/demo-csi-controller",
            "apply RoleBinding/demo-csi-controller",
            "apply ClusterRole/curve-csi-curve-demo",
            "apply ClusterRoleBinding/curve-csi-curve-demo",
            "apply CSIDriver/curve.csi.netease.com",
            "apply Deployment/demo-csi-controller",
            "apply DaemonSet/demo-csi-node",
            "apply StorageClass/curve",
        ]
    );
    assert_eq!(
        first.state,
        CsiState::Applied {
            mds_addr: "10.0.0.1:6700,10.0.0.2:6700,10.0.0.3:6700".into(),
            storage_class: Some("curve".into()),
            pending_nodes: Vec::new(),
        }
    );
    // Applied, nothing more to do.
    let existing = applied(&desired, true);
    let again = plan(&input(Some(&desired), &existing, &[], None, &none));
    assert_eq!(again.actions, Vec::new());
}

#[test]
fn the_class_is_kept_while_the_cluster_is_not_available_and_waits_for_it_otherwise() {
    let desired = csi(&MDS);
    let none = RestartAllowed::None;
    let without_class = applied(&desired, false);
    let unavailable = |existing| {
        plan(&CsiInput {
            available: false,
            ..input(Some(&desired), existing, &[], None, &none)
        })
    };
    let waits = unavailable(&without_class);
    assert_eq!(waits.actions, Vec::new());
    assert!(matches!(
        waits.state,
        CsiState::Applied {
            storage_class: None,
            ..
        }
    ));
    let with_class = applied(&desired, true);
    let kept = unavailable(&with_class);
    assert_eq!(kept.actions, Vec::new());
    assert!(matches!(
        kept.state,
        CsiState::Applied {
            storage_class: Some(_),
            ..
        }
    ));
}

#[test]
fn new_mds_addresses_roll_the_controller_and_hold_node_plugins_with_volumes() {
    let old = csi(&MDS);
    let moved = csi(&["10.0.0.1:6700", "10.0.0.2:6700", "10.0.0.4:6700"]);
    let existing = applied(&old, true);
    let pods = [
        node_pod("demo-csi-node-a", "node-1", &old.node_config),
        node_pod("demo-csi-node-b", "node-2", &old.node_config),
        node_pod("demo-csi-node-c", "node-3", &moved.node_config),
    ];
    let attached = BTreeSet::from(["node-2".to_string()]);
    let none = RestartAllowed::None;
    // First the templates: the controller's rolls by its Deployment; no node pod is touched
    // until the DaemonSet holds the new template.
    let first = plan(&input(
        Some(&moved),
        &existing,
        &pods,
        Some(&attached),
        &none,
    ));
    assert_eq!(
        described(&first.actions),
        [
            "apply Deployment/demo-csi-controller",
            "apply DaemonSet/demo-csi-node"
        ]
    );
    // Then the pods: node-1 has no Curve volume, node-2 has; node-3 is current.
    let existing = applied(&moved, true);
    let next = plan(&input(
        Some(&moved),
        &existing,
        &pods,
        Some(&attached),
        &none,
    ));
    assert_eq!(
        next.actions,
        vec![Action::DeletePod {
            name: "demo-csi-node-a".into(),
            uid: "demo-csi-node-a-uid".into()
        }]
    );
    assert_eq!(
        next.state,
        CsiState::Applied {
            mds_addr: "10.0.0.1:6700,10.0.0.2:6700,10.0.0.4:6700".into(),
            storage_class: Some("curve".into()),
            pending_nodes: vec!["node-2".into()],
        }
    );
    assert!(next.state.pending());
    // The admin allows node-2 (or every node): its pod goes too.
    for allowed in [
        RestartAllowed::of(Some("node-9, node-2")),
        RestartAllowed::of(Some("*")),
    ] {
        let allowed_plan = plan(&input(
            Some(&moved),
            &existing,
            &pods,
            Some(&attached),
            &allowed,
        ));
        assert_eq!(
            described(&allowed_plan.actions),
            [
                "delete Pod/demo-csi-node-a (roll)",
                "delete Pod/demo-csi-node-b (roll)"
            ]
        );
        assert!(!allowed_plan.state.pending());
    }
    // Attachments not read: every outdated pod is held.
    let unknown = plan(&input(Some(&moved), &existing, &pods, None, &none));
    assert_eq!(unknown.actions, Vec::new());
    assert!(
        matches!(&unknown.state, CsiState::Applied { pending_nodes, .. } if pending_nodes == &["node-1", "node-2"])
    );
}

#[test]
fn the_read_step_lists_attachments_only_for_an_outdated_pod() {
    let pods = [node_pod("a", "node-1", "h1"), node_pod("b", "node-2", "h1")];
    assert!(!any_outdated(Some("h1"), &pods));
    assert!(any_outdated(Some("h2"), &pods));
    assert!(!any_outdated(None, &pods));
    assert_eq!(
        attached_nodes([
            ("curve.csi.netease.com", "node-1"),
            ("rbd.csi.ceph.com", "node-2"),
            ("curve.csi.netease.com", "node-3"),
        ]),
        BTreeSet::from(["node-1".to_string(), "node-3".to_string()])
    );
    assert_eq!(RestartAllowed::of(Some(" , ")), RestartAllowed::None);
    assert_eq!(RestartAllowed::of(None), RestartAllowed::None);
}

#[test]
fn a_taken_name_applies_nothing_and_says_whose() {
    let desired = csi(&MDS);
    let none = RestartAllowed::None;
    let taken = ["StorageClass curve (provisioner rbd.csi.ceph.com)".to_string()];
    let refused = plan(&CsiInput {
        taken: &taken,
        ..input(Some(&desired), &[], &[], None, &none)
    });
    assert_eq!(refused.actions, Vec::new());
    assert_eq!(
        refused.state,
        CsiState::Taken {
            objects: taken.to_vec()
        }
    );
}

#[test]
fn a_changed_class_is_recreated_and_csi_off_deletes_everything() {
    let desired = csi(&MDS);
    let none = RestartAllowed::None;
    let mut existing = applied(&desired, true);
    for e in existing.iter_mut().filter(|e| e.kind.cluster_scoped()) {
        e.applied_hash = Some("old".into());
    }
    let changed = plan(&input(Some(&desired), &existing, &[], None, &none));
    assert_eq!(
        described(&changed.actions),
        [
            "apply ClusterRole/curve-csi-curve-demo",
            "apply ClusterRoleBinding/curve-csi-curve-demo",
            "delete CSIDriver/curve.csi.netease.com",
            "delete StorageClass/curve",
        ]
    );
    let off = plan(&input(None, &existing, &[], None, &none));
    assert_eq!(off.state, CsiState::Disabled);
    assert_eq!(off.actions.len(), existing.len());
    assert!(
        off.actions
            .iter()
            .all(|a| matches!(a, Action::Delete { .. }))
    );
}

#[test]
fn only_bound_volumes_of_the_class_and_driver_hold_a_deletion() {
    let pv = |name: &str, class: &str, driver: &str, phase: &str| -> PersistentVolume {
        serde_json::from_value(json!({
            "metadata": {"name": name},
            "spec": {
                "storageClassName": class,
                "csi": {"driver": driver, "volumeHandle": "h"},
                "claimRef": {"namespace": "apps", "name": format!("{name}-claim")}
            },
            "status": {"phase": phase}
        }))
        .unwrap()
    };
    let volumes = [
        pv("pv-b", "curve", "curve.csi.netease.com", "Bound"),
        pv("pv-a", "curve", "curve.csi.netease.com", "Bound"),
        pv("pv-released", "curve", "curve.csi.netease.com", "Released"),
        pv("pv-other-class", "fast", "curve.csi.netease.com", "Bound"),
        pv("pv-other-driver", "curve", "rbd.csi.ceph.com", "Bound"),
    ];
    assert_eq!(
        bound_volumes(&volumes, "curve"),
        [
            "pv-a (claim apps/pv-a-claim)",
            "pv-b (claim apps/pv-b-claim)"
        ]
    );
    assert_eq!(bound_volumes(&volumes, "none"), Vec::<String>::new());
}
