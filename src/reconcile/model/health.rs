//! Curve's health as the monitor keeps it and a decision sees it.

use std::sync::Arc;

use crate::api::{HealthStatus, HealthVerdict};
use crate::curve::gather::Targets;
use crate::curve::health::{Health, Rules};
use crate::curve::inventory::Inventory;

/// What a reconcile asks to be watched: where the daemons are, the rules of the pool, and a
/// token of the pods' state (uids and readiness) the next reading must postdate.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Wanted {
    pub targets: Targets,
    pub rules: Rules,
    pub pods_token: u64,
}

/// The latest result for one cluster.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Latest {
    pub health: Health,
    pub status: HealthStatus,
    /// The pods' token when this reading began: it describes the daemons of that state or later.
    pub pods_token: u64,
    /// The elected primary's listen address while its dummy port does not answer (the probe
    /// of every second, or the last full reading).
    pub primary_unreachable: Option<String>,
    /// What the elected MDS lists, when its topology was read. Shared, not copied, with each
    /// decision's view: it lists every ChunkServer.
    pub inventory: Option<Arc<Inventory>>,
}

/// The health as a decision sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HealthView {
    pub status: HealthStatus,
    /// Read after the pods were last seen as they are now.
    pub current: bool,
    /// The elected primary's pod, while its dummy port does not answer and etcd still names it.
    pub primary_unreachable: Option<String>,
    /// What the elected MDS lists, only from a reading that is current.
    pub inventory: Option<Arc<Inventory>>,
}

impl HealthView {
    pub fn healthy(&self) -> bool {
        self.status.verdict == HealthVerdict::Healthy
    }

    /// Curve judged the copysets (the verdict is not Unknown) and found none unhealthy.
    pub fn copysets_all_healthy(&self) -> bool {
        self.status.verdict != HealthVerdict::Unknown
            && (self.status.copysets.as_ref())
                .is_some_and(|c| c.unhealthy == 0 && c.problems.is_empty())
    }

    /// One line: the verdict and why.
    pub fn summary(&self) -> String {
        let verdict = match self.status.verdict {
            HealthVerdict::Healthy => "healthy",
            HealthVerdict::Unhealthy => "unhealthy",
            HealthVerdict::Unknown => "unknown",
        };
        match &self.status.message {
            Some(why) => format!("Curve's health is {verdict}: {why}"),
            None => format!("Curve's health is {verdict}"),
        }
    }
}
