//! An Event a decision tells about the cluster.

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClusterEvent {
    pub warning: bool,
    pub reason: String,
    pub note: String,
}

impl ClusterEvent {
    pub fn normal(reason: &str, note: String) -> Self {
        ClusterEvent {
            warning: false,
            reason: reason.to_string(),
            note,
        }
    }
    pub fn warning(reason: &str, note: String) -> Self {
        ClusterEvent {
            warning: true,
            reason: reason.to_string(),
            note,
        }
    }
}
