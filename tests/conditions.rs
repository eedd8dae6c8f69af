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
        // Only DataAdopted is shown just while it holds.
        assert!(
            !when_false.is_empty() || *type_ == ConditionType::DataAdopted,
            "{type_} has no False reason"
        );
    }
}
