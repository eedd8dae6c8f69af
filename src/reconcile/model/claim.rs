//! A PersistentVolumeClaim as the decisions read it: made once, when the watch delivers the
//! claim, and kept in the cache instead of the claim. Big clusters have a claim per
//! ChunkServer; each decision reads every claim's labels, sizes and conditions, which on the
//! k8s-openapi object are maps and lists spread over the heap, and parsed each size again.
//!
//! Every field is one some decision reads. The reading is made anew from each object the watch
//! delivers, so a claim that changes (resized, bound, deleted) always has a new reading.

use k8s_openapi::api::core::v1::PersistentVolumeClaim;
use k8s_openapi::jiff::Timestamp;

use crate::names::{Component, LABEL_COMPONENT, LABEL_INSTANCE};
use crate::validate::k8s::parse_quantity;

/// The claim condition saying the volume grew and its file system is resized when a node
/// mounts it next (or online, while mounted, when the driver can).
pub const FILE_SYSTEM_RESIZE_PENDING: &str = "FileSystemResizePending";

/// A storage quantity as the claim says it, and in bytes (an unknown quantity counts as
/// nothing, as everywhere the expansion compares sizes).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Size {
    pub text: String,
    pub bytes: f64,
}

impl Size {
    pub fn of(text: &str) -> Size {
        Size {
            text: text.to_string(),
            bytes: parse_quantity(text).unwrap_or(0.0),
        }
    }
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct ClaimReading {
    pub name: String,
    pub namespace: String,
    /// The cluster it belongs to (`app.kubernetes.io/instance`).
    pub instance: Option<String>,
    /// The tier of its component label (`app.kubernetes.io/component`), if it is one.
    pub tier: Option<Component>,
    pub created: Option<Timestamp>,
    /// It has a deletion timestamp.
    pub terminating: bool,
    /// `spec.storageClassName`.
    pub class: Option<String>,
    /// `spec.resources.requests.storage`.
    pub request: Option<Size>,
    /// `status.capacity.storage`: what the bound volume has.
    pub capacity: Option<Size>,
    /// `status.phase` is Pending.
    pub pending: bool,
    /// Its `FileSystemResizePending` condition is True.
    pub resize_pending: bool,
}

impl From<PersistentVolumeClaim> for ClaimReading {
    fn from(claim: PersistentVolumeClaim) -> Self {
        let PersistentVolumeClaim {
            metadata,
            spec,
            status,
        } = claim;
        let mut labels = metadata.labels.unwrap_or_default();
        let spec = spec.unwrap_or_default();
        let status = status.unwrap_or_default();
        let storage = |map: Option<std::collections::BTreeMap<String, _>>| {
            let map: std::collections::BTreeMap<
                String,
                k8s_openapi::apimachinery::pkg::api::resource::Quantity,
            > = map?;
            map.get("storage").map(|q| Size::of(&q.0))
        };
        ClaimReading {
            name: metadata.name.unwrap_or_default(),
            namespace: metadata.namespace.unwrap_or_default(),
            instance: labels.remove(LABEL_INSTANCE),
            tier: (labels.get(LABEL_COMPONENT))
                .and_then(|c| Component::TIERS.into_iter().find(|t| t.as_str() == c)),
            created: metadata.creation_timestamp.map(|t| t.0),
            terminating: metadata.deletion_timestamp.is_some(),
            class: spec.storage_class_name,
            request: storage(spec.resources.and_then(|r| r.requests)),
            capacity: storage(status.capacity),
            pending: status.phase.as_deref() == Some("Pending"),
            resize_pending: (status.conditions.into_iter().flatten())
                .any(|c| c.type_ == FILE_SYSTEM_RESIZE_PENDING && c.status == "True"),
        }
    }
}

impl ClaimReading {
    /// The reading of `claim`, shared as the cache shares it.
    pub fn shared(claim: PersistentVolumeClaim) -> std::sync::Arc<ClaimReading> {
        std::sync::Arc::new(claim.into())
    }
}

core_v1_reading_key!(
    ClaimReading,
    "PersistentVolumeClaim",
    "persistentvolumeclaims"
);

#[cfg(test)]
#[path = "claim_tests.rs"]
mod tests;
