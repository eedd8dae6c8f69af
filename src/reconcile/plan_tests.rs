//! The plan: bring-up gates, unchanged objects, pruning, and unsafe changes held back.

use serde_json::json;

use crate::desired::{self, Observed};
use crate::reconcile::fixtures::{set, validated};
use crate::reconcile::model::action::{Action, ExistingObject, ObjectKind};
use crate::reconcile::plan;

#[test]
fn gates_follow_bring_up_order() {
    assert_eq!(
        plan::gates(false, false),
        plan::Gates {
            mds: false,
            chunkservers: false
        }
    );
    assert_eq!(
        plan::gates(true, false),
        plan::Gates {
            mds: true,
            chunkservers: false
        }
    );
    assert_eq!(
        plan::gates(true, true),
        plan::Gates {
            mds: true,
            chunkservers: true
        }
    );
    assert_eq!(
        plan::gates(false, true),
        plan::Gates {
            mds: false,
            chunkservers: false
        }
    );
    let desired = desired::build(&validated(json!({})), &Observed::default());
    let names = |actions: &[Action]| actions.iter().map(Action::describe).collect::<Vec<_>>();
    assert_eq!(
        names(&plan::plan(&desired, &[], plan::gates(false, false))),
        [
            "apply ConfigMap/demo-etcd",
            "apply ConfigMap/demo-etcd-members",
            "apply Service/demo-etcd",
            "apply PodDisruptionBudget/demo-etcd",
            "apply StatefulSet/demo-etcd"
        ]
    );
    let all = plan::plan(&desired, &[], plan::gates(true, true));
    assert_eq!(
        names(&all)[5..10],
        [
            "apply ConfigMap/demo-mds",
            "apply Service/demo-mds",
            "apply PodDisruptionBudget/demo-mds",
            "apply StatefulSet/demo-mds",
            "apply ConfigMap/demo-topology"
        ]
    );
    assert_eq!(all.len(), 14);
}

#[test]
fn unchanged_objects_are_not_applied_again_and_stale_ones_are_pruned() {
    let desired = desired::build(&validated(json!({})), &Observed::default());
    let first = plan::plan(&desired, &[], plan::gates(true, true));
    let existing: Vec<ExistingObject> = first
        .iter()
        .map(|action| match action {
            Action::Apply(object) => {
                let value = object.value();
                ExistingObject {
                    replicas: value["spec"]["replicas"].as_i64().map(|r| r as i32),
                    ..ExistingObject::of(
                        object.kind(),
                        &serde_json::from_value(value["metadata"].clone()).unwrap(),
                    )
                }
            }
            other => panic!("only applies on a first plan, not {other:?}"),
        })
        .collect();
    assert_eq!(
        plan::plan(&desired, &existing, plan::gates(true, true)),
        Vec::<Action>::new()
    );
    let mut with_stale = existing.clone();
    let config_map = |name: &str, component: Option<&str>| ExistingObject {
        kind: ObjectKind::ConfigMap,
        name: name.into(),
        component: component.map(String::from),
        applied_hash: None,
        replicas: None,
        claim_size: None,
        uid: None,
        deleting: false,
    };
    with_stale.push(config_map("demo-old", Some("mds")));
    with_stale.push(config_map("other", None));
    assert_eq!(
        plan::plan(&desired, &with_stale, plan::gates(true, true)),
        vec![Action::Delete {
            kind: ObjectKind::ConfigMap,
            name: "demo-old".into()
        }]
    );
    // While a gate is closed, that tier is neither changed nor pruned.
    assert_eq!(
        plan::plan(&desired, &with_stale, plan::gates(false, false)),
        Vec::<Action>::new()
    );
    let scaled = desired::build(
        &validated(json!({"mds": {"replicas": 5}})),
        &Observed::default(),
    );
    let names: Vec<String> = plan::plan(&scaled, &existing, plan::gates(true, true))
        .iter()
        .map(Action::describe)
        .collect();
    assert!(
        names.contains(&"apply StatefulSet/demo-mds".to_string())
            && names.contains(&"apply ConfigMap/demo-chunkserver".to_string()),
        "{names:?}"
    );
    assert!(!names.iter().any(|n| n.contains("etcd")), "{names:?}");
}

#[test]
fn unsafe_changes_are_held_back_with_a_reason() {
    let cluster = validated(
        json!({"etcd": {"replicas": 5}, "chunkservers": {"replicas": 3, "disksPerNode": 1, "storage": {"size": "10Gi"}}}),
    );
    let existing = vec![
        set("demo-etcd", "etcd", 3),
        set("demo-chunkserver-0", "chunkserver", 4),
        set("demo-chunkserver-1", "chunkserver", 4),
    ];
    let (safe, refused) = plan::refuse_unsafe_changes(&cluster, &existing, Some(0));
    // etcd's size is membership's business (reconcile/membership.rs), not a refusal; fewer
    // ChunkServers are retired one at a time (reconcile/retire.rs), not refused here.
    assert_eq!(safe.spec.etcd.replicas, 5);
    assert_eq!(safe.spec.chunkservers.disks_per_node, 1);
    assert_eq!(safe.spec.chunkservers.replicas, 3);
    assert_eq!(refused, Vec::<String>::new());
    // Volume sizes are the expansion's (reconcile/expansion.rs).
    let grown = validated(json!({"chunkservers": {"replicas": 3, "storage": {"size": "20Gi"}}}));
    let (kept, refused) = plan::refuse_unsafe_changes(
        &grown,
        &[set("demo-chunkserver-0", "chunkserver", 3)],
        Some(0),
    );
    assert_eq!(
        (kept.spec.chunkservers.storage.size.as_str(), refused.len()),
        ("20Gi", 0)
    );
    let (same, none) =
        plan::refuse_unsafe_changes(&validated(json!({})), &[set("demo-etcd", "etcd", 3)], None);
    assert_eq!((same.spec.etcd.replicas, none.len()), (3, 0));
    // More disk slots: refused on servers registered with a fixed port, not with port 0.
    let more_slots = validated(
        json!({"chunkservers": {"replicas": 3, "disksPerNode": 2, "storage": {"size": "10Gi"}}}),
    );
    let one_slot = [set("demo-chunkserver-0", "chunkserver", 3)];
    let (grown, none) = plan::refuse_unsafe_changes(&more_slots, &one_slot, Some(0));
    assert_eq!((grown.spec.chunkservers.disks_per_node, none.len()), (2, 0));
    let (held, refused) = plan::refuse_unsafe_changes(&more_slots, &one_slot, Some(8200));
    assert_eq!(held.spec.chunkservers.disks_per_node, 1);
    assert!(
        refused[0].starts_with("spec.chunkservers.disksPerNode: cannot grow from 1 to 2"),
        "{refused:?}"
    );
    // Before bootstrap there is nothing to protect: any valid size is taken.
    let (fresh, none) = plan::refuse_unsafe_changes(&cluster, &[], None);
    assert_eq!((fresh.spec.etcd.replicas, none.len()), (5, 0));
}
