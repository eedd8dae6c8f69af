//! ValidatedCluster → the objects the operator applies. Pure: no I/O, same input, same output.

pub mod chunkserver;
pub mod common;
pub mod config;
pub mod csi;
pub mod etcd;
pub mod etcd_backup;
pub mod etcd_restore;
pub mod jobs;
pub mod mds;
pub mod monitoring;
pub mod secret;
pub mod start;
pub mod topology;

use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{ConfigMap, Service};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;

use crate::names::{Component, TopologyStep};
use crate::validate::ValidatedCluster;
pub use topology::ObservedServer;

/// The objects of one component, each list in apply order.
#[derive(Clone, Debug, PartialEq)]
pub struct Tier {
    pub component: Component,
    pub config_maps: Vec<ConfigMap>,
    pub services: Vec<Service>,
    pub budgets: Vec<PodDisruptionBudget>,
    pub stateful_sets: Vec<StatefulSet>,
}

/// What only the running cluster knows and the builders need.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Observed {
    /// Nodes running ChunkServer pods.
    pub servers: Vec<ObservedServer>,
    /// Servers already in the cluster map (from the operator's record).
    pub known_servers: Vec<crate::api::RecordedServer>,
    /// What the pool Jobs have done so far.
    pub pools: topology::PoolProgress,
    /// The MDS and etcd pods' addresses; their DNS names when unknown (offline render).
    pub addresses: Option<config::DaemonAddresses>,
    /// The etcd tier as membership stands; a new cluster of the spec's size when unknown.
    pub etcd: Option<config::EtcdLayout>,
}

/// Every object of a cluster, by tier in bring-up order.
#[derive(Clone, Debug, PartialEq)]
pub struct DesiredObjects {
    pub etcd: Tier,
    pub mds: Tier,
    pub chunkservers: Tier,
    pub topology: ConfigMap,
    /// The topology Jobs of this cluster map, in Curve's bootstrap order; the reconciler
    /// creates each once the one before it succeeded.
    pub jobs: Vec<Job>,
    pub cluster_map: topology::ClusterMap,
    pub addresses: config::DaemonAddresses,
    /// The Prometheus Operator objects, when `spec.monitoring.enabled`.
    pub monitoring: Option<monitoring::Monitoring>,
    /// curve-csi's objects, when `spec.csi.enabled`, wired to `addresses.mds`.
    pub csi: Option<csi::Csi>,
}

pub fn build(cluster: &ValidatedCluster, observed: &Observed) -> DesiredObjects {
    let cluster_map = topology::cluster_map(cluster, &observed.servers, &observed.known_servers);
    let addresses = observed
        .addresses
        .clone()
        .unwrap_or_else(|| config::DaemonAddresses::dns(cluster));
    let etcd_layout =
        (observed.etcd.clone()).unwrap_or_else(|| config::EtcdLayout::bootstrap(cluster));
    DesiredObjects {
        etcd: etcd::build(cluster, &etcd_layout),
        mds: mds::build(cluster, &etcd_layout),
        chunkservers: chunkserver::build(cluster, &addresses),
        topology: topology::build(cluster, &cluster_map, &observed.pools, &addresses),
        jobs: TopologyStep::ALL
            .iter()
            .map(|step| jobs::build(cluster, *step, &cluster_map))
            .collect(),
        cluster_map,
        csi: csi::build(cluster, &addresses.mds),
        addresses,
        monitoring: monitoring::build(cluster),
    }
}

impl DesiredObjects {
    pub fn tiers(&self) -> [&Tier; 3] {
        [&self.etcd, &self.mds, &self.chunkservers]
    }
}

/// A k8s-openapi object as JSON with its apiVersion and kind.
pub fn typed_value<K: k8s_openapi::Resource + serde::Serialize>(object: &K) -> serde_json::Value {
    let mut value = serde_json::to_value(object).expect("Kubernetes objects serialize");
    if let Some(map) = value.as_object_mut() {
        map.insert("apiVersion".into(), K::API_VERSION.into());
        map.insert("kind".into(), K::KIND.into());
    }
    value
}

#[cfg(test)]
mod tests;
