//! Pure readings of the cluster's pods: readiness per component, etcd endpoints, the MDS pod
//! behind the elected address, the nodes running ChunkServers.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::Pod;

use super::status::{ComponentObservation, PrimaryView};
use crate::build::common::LABEL_COMPONENT;
use crate::build::topology::ClusterMap;
use crate::build::{Component, ObservedServer};
use crate::etcd::PrimaryObservation;

fn component_of(pod: &Pod) -> Option<&str> {
    pod.metadata.labels.as_ref()?.get(LABEL_COMPONENT).map(String::as_str)
}

fn pods_of<'a>(pods: &'a [Pod], component: Component) -> impl Iterator<Item = &'a Pod> {
    pods.iter().filter(move |pod| component_of(pod) == Some(component.as_str()) && pod.metadata.deletion_timestamp.is_none())
}

pub fn is_ready(pod: &Pod) -> bool {
    pod.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|conditions| conditions.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

fn pod_ip(pod: &Pod) -> Option<&str> {
    pod.status.as_ref()?.pod_ip.as_deref().filter(|ip| !ip.is_empty())
}

/// Ready pods of a component, against the desired count.
pub fn component(pods: &[Pod], component: Component, desired: i32, exists: bool) -> ComponentObservation {
    let ready = pods_of(pods, component).filter(|pod| is_ready(pod)).count() as i32;
    ComponentObservation { desired, ready, exists }
}

/// `ip:clientPort` of every etcd pod that has an address, sorted.
pub fn etcd_endpoints(pods: &[Pod], client_port: i32) -> Vec<String> {
    let mut endpoints: Vec<String> =
        pods_of(pods, Component::Etcd).filter_map(pod_ip).map(|ip| format!("{ip}:{client_port}")).collect();
    endpoints.sort();
    endpoints.dedup();
    endpoints
}

/// Maps the election as read from etcd to the MDS pod that won it. Never guesses: an address
/// held by no pod or by several is reported as such.
pub fn primary_view(pods: &[Pod], mds_port: i32, observation: &PrimaryObservation) -> PrimaryView {
    match observation {
        PrimaryObservation::Elected { address } => {
            let holders: Vec<String> = pods_of(pods, Component::Mds)
                .filter(|pod| pod_ip(pod).is_some_and(|ip| format!("{ip}:{mds_port}") == *address))
                .filter_map(|pod| pod.metadata.name.clone())
                .collect();
            match holders.as_slice() {
                [pod] => PrimaryView::Elected { pod: pod.clone(), address: address.clone() },
                [] => PrimaryView::UnknownLeader { address: address.clone() },
                _ => PrimaryView::Ambiguous { address: address.clone(), pods: holders },
            }
        }
        PrimaryObservation::NoCandidate => PrimaryView::NoLeader,
        PrimaryObservation::Unreachable { endpoints, error } => {
            PrimaryView::EtcdUnreachable { endpoints: endpoints.clone(), error: error.clone() }
        }
        PrimaryObservation::QuorumLost { error, .. } => PrimaryView::QuorumLost { error: error.clone() },
    }
}

/// The nodes running scheduled ChunkServer pods, with their IP and (from `node_zones`) zone.
pub fn chunkserver_servers(pods: &[Pod], node_zones: &BTreeMap<String, String>) -> Vec<ObservedServer> {
    let mut servers: BTreeMap<String, ObservedServer> = BTreeMap::new();
    for pod in pods_of(pods, Component::ChunkServer) {
        let node = pod.spec.as_ref().and_then(|s| s.node_name.clone());
        let host_ip = pod.status.as_ref().and_then(|s| s.host_ip.clone());
        if let (Some(node), Some(host_ip)) = (node, host_ip) {
            let zone = node_zones.get(&node).cloned();
            servers.entry(node.clone()).or_insert(ObservedServer { node, host_ip, zone });
        }
    }
    servers.into_values().collect()
}

/// Names of the nodes running ChunkServer pods (to look up their zone label).
pub fn chunkserver_nodes(pods: &[Pod]) -> Vec<String> {
    let mut nodes: Vec<String> =
        pods_of(pods, Component::ChunkServer).filter_map(|pod| pod.spec.as_ref()?.node_name.clone()).collect();
    nodes.sort();
    nodes.dedup();
    nodes
}

/// The observed servers plus every server of the previous cluster map that no scheduled pod
/// shows now. `create_physicalpool` deletes from Curve each server missing from the map it is
/// given, so a server, once listed, stays listed: while its ChunkServer pod is replaced (a
/// rolling update, a restart) it has no scheduled pod for a moment, and a map without it
/// would remove it from Curve. An observed server wins over its previous entry (a new IP).
pub fn with_previous_servers(observed: Vec<ObservedServer>, previous_map: Option<&str>) -> Vec<ObservedServer> {
    let mut servers: BTreeMap<String, ObservedServer> = observed.into_iter().map(|s| (s.node.clone(), s)).collect();
    let previous = previous_map.and_then(|json| serde_json::from_str::<ClusterMap>(json).ok());
    for server in previous.map(|map| map.servers).unwrap_or_default() {
        servers.entry(server.name.clone()).or_insert(ObservedServer { node: server.name, host_ip: server.internalip, zone: None });
    }
    servers.into_values().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn server(node: &str, ip: &str) -> ObservedServer {
        ObservedServer { node: node.into(), host_ip: ip.into(), zone: None }
    }

    #[test]
    fn servers_of_the_previous_map_stay_while_their_pods_are_replaced() {
        let previous = r#"{"servers": [
            {"name": "node-1", "internalip": "10.0.0.1", "internalport": 8200, "externalip": "10.0.0.1", "externalport": 8200, "zone": "zone1", "physicalpool": "pool1", "poolset": "default"},
            {"name": "node-2", "internalip": "10.0.0.2", "internalport": 8200, "externalip": "10.0.0.2", "externalport": 8200, "zone": "zone2", "physicalpool": "pool1", "poolset": "default"}],
            "logicalpools": [], "poolsets": [], "npools": 1}"#;
        // node-2's pod is being replaced; node-3 is new; node-1 has a new address.
        let observed = vec![server("node-1", "10.0.0.11"), server("node-3", "10.0.0.3")];
        assert_eq!(
            with_previous_servers(observed.clone(), Some(previous)),
            vec![server("node-1", "10.0.0.11"), server("node-2", "10.0.0.2"), server("node-3", "10.0.0.3")]
        );
        assert_eq!(with_previous_servers(observed.clone(), None), observed);
        assert_eq!(with_previous_servers(observed.clone(), Some("not json")), observed);
    }
}
