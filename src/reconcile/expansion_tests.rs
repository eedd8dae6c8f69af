//! Volume expansion of the ChunkServers, whose pods restart to use the space.

use serde_json::json;

use crate::desired::{self, Observed};
use crate::reconcile::fixtures::{set, validated};
use crate::reconcile::model::action::{Action, ExistingObject, ObjectKind};
use crate::reconcile::model::claim::ClaimReading;
use crate::reconcile::plan;

/// ChunkServers use grown space only after a restart: their StatefulSets keep the template
/// (which carries the size) until every volume grew, then take the new one, and the apply of a
/// set whose claim template changes becomes its orphaning delete.
#[test]
fn chunkserver_templates_change_only_once_every_volume_grew() {
    use crate::reconcile::expansion;
    use crate::reconcile::model::states::ClaimProgress;
    use k8s_openapi::api::core::v1::PersistentVolumeClaim;
    let claim = |name: &str,
                 request: &str,
                 capacity: &str,
                 pending: bool|
     -> PersistentVolumeClaim {
        serde_json::from_value(json!({
            "metadata": {"name": name, "labels": {"app.kubernetes.io/component": "chunkserver"}},
            "spec": {"storageClassName": "fast", "resources": {"requests": {"storage": request}}},
            "status": {
                "capacity": {"storage": capacity},
                "conditions": if pending { json!([{"type": "FileSystemResizePending", "status": "True"}]) } else { json!([]) }
            }
        }))
        .unwrap()
    };
    let grown = validated(json!({"chunkservers": {"replicas": 3, "storage": {"size": "20Gi"}}}));
    let existing = [
        set("demo-chunkserver-0", "chunkserver", 2),
        ExistingObject {
            claim_size: Some("10Gi".into()),
            ..set("demo-etcd", "etcd", 3)
        },
    ];
    let classes = std::collections::BTreeMap::from([("fast".to_string(), true)]);
    let plan_with = |claims: &[PersistentVolumeClaim]| {
        let mut safe = grown.clone();
        let claims: Vec<_> = claims.iter().cloned().map(ClaimReading::shared).collect();
        let out = expansion::plan(&mut safe, &existing, &claims, &classes);
        (safe.spec.chunkservers.storage.size, out)
    };

    let (size, first) = plan_with(&[
        claim("data-demo-chunkserver-0-0", "10Gi", "10Gi", false),
        claim("data-demo-chunkserver-0-1", "10Gi", "10Gi", false),
    ]);
    assert_eq!(size, "10Gi", "the template waits for the volumes");
    assert_eq!(first.actions.len(), 2);
    assert_eq!(
        first.progress[0].claims,
        [
            (
                "data-demo-chunkserver-0-0".to_string(),
                ClaimProgress::Requested
            ),
            (
                "data-demo-chunkserver-0-1".to_string(),
                ClaimProgress::Requested
            )
        ]
    );
    assert!(
        crate::reconcile::model::states::expansions_message(&first.progress)
            .contains("ChunkServers restart one server")
    );

    let (size, waiting) = plan_with(&[
        claim("data-demo-chunkserver-0-0", "20Gi", "20Gi", false),
        claim("data-demo-chunkserver-0-1", "20Gi", "10Gi", false),
    ]);
    assert_eq!((size.as_str(), waiting.actions.len()), ("10Gi", 0));

    // Grown, or only the file system left (which the restart completes): the new template.
    let (size, ready) = plan_with(&[
        claim("data-demo-chunkserver-0-0", "20Gi", "20Gi", false),
        claim("data-demo-chunkserver-0-1", "20Gi", "10Gi", true),
    ]);
    assert_eq!((size.as_str(), ready.actions.len()), ("20Gi", 0));
    assert_eq!(
        ready.progress.len(),
        1,
        "shown until every claim reports 20Gi"
    );
    // A claim not bound yet (no capacity) at the spec's size is no expansion.
    let mut unbound = claim("data-demo-chunkserver-0-0", "10Gi", "10Gi", false);
    unbound.status = None;
    let mut safe = validated(json!({"chunkservers": {"replicas": 3, "storage": {"size": "10Gi"}}}));
    let none = expansion::plan(
        &mut safe,
        &existing,
        &[ClaimReading::shared(unbound)],
        &classes,
    );
    assert_eq!(none, expansion::ExpansionPlan::default());

    let mut safe = grown.clone();
    safe.spec.chunkservers.storage.size = size;
    let desired = desired::build(&safe, &Observed::default());
    let applies: Vec<Action> = plan::tier_objects(&desired.chunkservers)
        .into_iter()
        .filter(|o| o.kind() == ObjectKind::StatefulSet)
        .map(|o| Action::Apply(Box::new(o)))
        .collect();
    assert_eq!(
        expansion::recreate_changed_sets(applies.clone(), &existing),
        [Action::OrphanStatefulSet {
            name: "demo-chunkserver-0".into(),
            uid: "uid-demo-chunkserver-0".into()
        }]
    );
    // Once it is gone it is applied again; while it is being deleted it is left alone.
    assert_eq!(
        expansion::recreate_changed_sets(applies.clone(), &existing[1..]),
        applies
    );
    let deleting = [ExistingObject {
        deleting: true,
        ..existing[0].clone()
    }];
    assert_eq!(expansion::recreate_changed_sets(applies, &deleting), []);
}
