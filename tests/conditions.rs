//! `docs/reference/conditions.md` is generated from the typed condition vocabulary
//! (`reconcile::model::conditions`); `UPDATE_GOLDEN=1 cargo test --test conditions` rewrites it.

#[path = "support/golden.rs"]
mod golden;

use curve_operator::reconcile::model::conditions::{ConditionType, Reason, reference_markdown};

#[test]
fn the_conditions_reference_is_generated_from_the_code() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/docs/reference/conditions.md");
    golden::check(
        std::path::Path::new(path),
        &reference_markdown(),
        "reconcile::model::conditions",
    );
}

#[test]
fn every_reason_belongs_to_a_condition_and_every_type_has_a_true_reason() {
    for reason in Reason::ALL {
        assert!(
            (ConditionType::ALL.iter())
                .any(|t| t.carries(*reason, true) || t.carries(*reason, false)),
            "{reason} is carried by no condition type"
        );
    }
    for type_ in ConditionType::ALL {
        let (when_true, when_false) = type_.reasons();
        assert!(!when_true.is_empty(), "{type_} has no True reason");
        // Only DataAdopted and DeletionBlocked are shown just while they hold.
        assert!(
            !when_false.is_empty()
                || [ConditionType::DataAdopted, ConditionType::DeletionBlocked].contains(type_),
            "{type_} has no False reason"
        );
    }
}

/// `kubectl explain curvecluster.status.conditions` names every condition type.
#[test]
fn kubectl_explain_names_every_condition_type() {
    use kube::CustomResourceExt;
    let crd = serde_json::to_value(curve_operator::api::CurveCluster::crd()).unwrap();
    let schema = &crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"];
    let described = schema["properties"]["status"]["properties"]["conditions"]["description"]
        .as_str()
        .unwrap();
    for type_ in ConditionType::ALL {
        assert!(
            described.contains(type_.as_str()),
            "status.conditions' description lacks {type_}: {described}"
        );
    }
}
