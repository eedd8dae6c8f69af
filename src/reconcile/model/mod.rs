//! The ground floor of the reconciler: what a decision sees and says. The observation of a
//! cluster, where each managed change stands, the typed actions and Events, and the condition
//! vocabulary. It imports nothing of the reconciler; every other module of it builds on this.

/// The watch cache's key for a compact reading of a core/v1 object (fields `name` and
/// `namespace`): looked up as `kind` would be, by namespace and name only (a uid or resource
/// version in the key would keep a copy of it per object).
macro_rules! core_v1_reading_key {
    ($reading:ty, $kind:literal, $plural:literal) => {
        impl kube::runtime::reflector::Lookup for $reading {
            type DynamicType = ();

            fn kind(_: &()) -> std::borrow::Cow<'_, str> {
                $kind.into()
            }

            fn group(_: &()) -> std::borrow::Cow<'_, str> {
                "".into()
            }

            fn version(_: &()) -> std::borrow::Cow<'_, str> {
                "v1".into()
            }

            fn plural(_: &()) -> std::borrow::Cow<'_, str> {
                $plural.into()
            }

            fn name(&self) -> Option<std::borrow::Cow<'_, str>> {
                Some(self.name.as_str().into())
            }

            fn namespace(&self) -> Option<std::borrow::Cow<'_, str>> {
                Some(self.namespace.as_str().into())
            }

            fn resource_version(&self) -> Option<std::borrow::Cow<'_, str>> {
                None
            }

            fn uid(&self) -> Option<std::borrow::Cow<'_, str>> {
                None
            }
        }
    };
}

pub mod action;
pub mod claim;
pub mod conditions;
pub mod event;
pub mod health;
pub mod observation;
pub mod pod;
pub mod states;
