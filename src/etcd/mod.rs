//! Placeholder of the etcd interface (the real module lands from the etcd branch).

use std::future::Future;

#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ClusterKey {
    pub namespace: String,
    pub name: String,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PrimaryObservation {
    Elected { address: String },
    NoCandidate,
    Unreachable { endpoints: Vec<String>, error: String },
    QuorumLost { endpoints: Vec<String>, error: String },
}

#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct MemberHealth {
    pub leader: Option<String>,
    pub healthy: u32,
    pub total: u32,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EtcdObservation {
    pub primary: PrimaryObservation,
    pub members: Option<MemberHealth>,
}

pub trait EtcdObserver: Send + Sync + 'static {
    fn observe(&self, cluster: &ClusterKey, endpoints: &[String]) -> impl Future<Output = EtcdObservation> + Send;
    fn forget(&self, cluster: &ClusterKey);
}
