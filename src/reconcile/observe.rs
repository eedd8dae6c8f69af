//! Pure readings of the cluster's pods: readiness per component, etcd endpoints, the MDS pod
//! behind the elected address, the nodes running ChunkServers.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::Pod;

use super::model::action::component_of;
use super::model::observation::{ComponentObservation, FormatProgress, PrimaryView};
use crate::desired::ObservedServer;
use crate::etcd::PrimaryObservation;
use crate::names::Component;

pub fn pods_of(pods: &[Pod], component: Component) -> impl Iterator<Item = &Pod> {
    pods.iter().filter(move |pod| {
        component_of(&pod.metadata) == Some(component.as_str())
            && pod.metadata.deletion_timestamp.is_none()
    })
}

pub fn is_ready(pod: &Pod) -> bool {
    pod.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|conditions| {
            conditions
                .iter()
                .any(|c| c.type_ == "Ready" && c.status == "True")
        })
}

pub fn pod_ip(pod: &Pod) -> Option<&str> {
    pod.status
        .as_ref()?
        .pod_ip
        .as_deref()
        .filter(|ip| !ip.is_empty())
}

/// Ready pods of a component, against the desired count.
pub fn component(
    pods: &[Pod],
    component: Component,
    desired: i32,
    exists: bool,
) -> ComponentObservation {
    let ready = pods_of(pods, component).filter(|pod| is_ready(pod)).count() as i32;
    ComponentObservation {
        desired,
        ready,
        exists,
        ..ComponentObservation::default()
    }
}

/// `ip:port` of the members `<set>-0 .. <set>-<replicas-1>` in ordinal order. The list stays
/// stable while a member is replaced: when one has no IP, the `previous` list (what the config
/// already holds) is kept rather than rolling every ChunkServer twice; with none, the members
/// that have an IP.
pub fn member_addresses(
    pods: &[Pod],
    set: &str,
    replicas: i32,
    port: i32,
    previous: Option<Vec<String>>,
) -> Vec<String> {
    let ip_of = |name: &str| {
        pods.iter()
            .find(|p| p.metadata.name.as_deref() == Some(name))
            .and_then(pod_ip)
            .map(String::from)
    };
    let ips: Vec<Option<String>> = (0..replicas)
        .map(|i| ip_of(&format!("{set}-{i}")))
        .collect();
    if ips.iter().all(Option::is_some) {
        return ips
            .into_iter()
            .flatten()
            .map(|ip| format!("{ip}:{port}"))
            .collect();
    }
    match previous.filter(|p| !p.is_empty()) {
        Some(previous) => previous,
        None => ips
            .into_iter()
            .flatten()
            .map(|ip| format!("{ip}:{port}"))
            .collect(),
    }
}

/// Whether every member `<set>-0 .. <set>-<replicas-1>` has an IP.
pub fn all_members_addressed(pods: &[Pod], set: &str, replicas: i32) -> bool {
    (0..replicas).all(|i| {
        let name = format!("{set}-{i}");
        pods.iter()
            .any(|p| p.metadata.name.as_deref() == Some(name.as_str()) && pod_ip(p).is_some())
    })
}

/// Why etcd was not asked: the endpoints come from the etcd pods, and no pod has an address.
pub const NO_ETCD_ADDRESS: &str =
    "no etcd endpoint is known yet: no etcd pod has an address (the etcd pods are not running)";

/// `ip:clientPort` of every etcd pod that has an address, sorted: the operator's own etcd
/// endpoints. Never the member `joining` (added as a learner, or re-added, and not promoted):
/// a learner serves no client request but Status, so a read or a member-list change sent to it
/// fails (etcd's "rpc not supported for learner").
pub fn etcd_endpoints(pods: &[Pod], client_port: i32, joining: Option<&str>) -> Vec<String> {
    let mut endpoints: Vec<String> = pods_of(pods, Component::Etcd)
        .filter(|pod| joining.is_none() || pod.metadata.name.as_deref() != joining)
        .filter_map(pod_ip)
        .map(|ip| format!("{ip}:{client_port}"))
        .collect();
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
                [pod] => PrimaryView::Elected {
                    pod: pod.clone(),
                    address: address.clone(),
                },
                [] => PrimaryView::UnknownLeader {
                    address: address.clone(),
                },
                _ => PrimaryView::Ambiguous {
                    address: address.clone(),
                    pods: holders,
                },
            }
        }
        PrimaryObservation::NoCandidate => PrimaryView::NoLeader,
        // The endpoints are the etcd pods' addresses: with none, no member runs, so none can
        // serve a read. Said as such, not as endpoints that did not answer.
        PrimaryObservation::NoEndpoint => PrimaryView::QuorumLost {
            error: NO_ETCD_ADDRESS.to_string(),
        },
        PrimaryObservation::Unreachable { endpoints, error } => PrimaryView::EtcdUnreachable {
            endpoints: endpoints.clone(),
            error: error.clone(),
        },
        PrimaryObservation::QuorumLost { error, .. } => PrimaryView::QuorumLost {
            error: error.clone(),
        },
    }
}

/// The nodes running scheduled ChunkServer pods, with their IP and (from `node_zones`) zone.
pub fn chunkserver_servers(
    pods: &[Pod],
    node_zones: &BTreeMap<String, String>,
) -> Vec<ObservedServer> {
    let mut servers: BTreeMap<String, ObservedServer> = BTreeMap::new();
    for pod in pods_of(pods, Component::ChunkServer) {
        let node = pod.spec.as_ref().and_then(|s| s.node_name.clone());
        let host_ip = pod.status.as_ref().and_then(|s| s.host_ip.clone());
        if let (Some(node), Some(host_ip)) = (node, host_ip) {
            let zone = node_zones.get(&node).cloned();
            servers.entry(node.clone()).or_insert(ObservedServer {
                node,
                host_ip,
                zone,
            });
        }
    }
    servers.into_values().collect()
}

/// Names of the nodes running ChunkServer pods (to look up their zone label).
pub fn chunkserver_nodes(pods: &[Pod]) -> Vec<String> {
    let mut nodes: Vec<String> = pods_of(pods, Component::ChunkServer)
        .filter_map(|pod| pod.spec.as_ref()?.node_name.clone())
        .collect();
    nodes.sort();
    nodes.dedup();
    nodes
}

/// Whether a pod cannot start because the Secret `name` is missing (the kubelet's
/// CreateContainerConfigError names it).
pub fn secret_missing(pods: &[Pod], name: &str) -> bool {
    let needle = format!("secret \"{name}\" not found");
    pods.iter()
        .filter_map(|pod| pod.status.as_ref())
        .flat_map(|status| {
            let init = status.init_container_statuses.iter().flatten();
            init.chain(status.container_statuses.iter().flatten())
        })
        .filter_map(|c| c.state.as_ref()?.waiting.as_ref())
        .any(|waiting| {
            waiting.reason.as_deref() == Some("CreateContainerConfigError")
                && waiting
                    .message
                    .as_deref()
                    .is_some_and(|m| m.contains(&needle))
        })
}

/// The last non-empty line of a container's termination message: with
/// `FallbackToLogsOnError` that is the format script's own complaint.
fn last_line(message: Option<&String>) -> Option<&str> {
    message?
        .lines()
        .rev()
        .map(str::trim)
        .find(|line| !line.is_empty())
}

/// Reads the `format` init container of every ChunkServer pod.
pub fn format_progress(pods: &[Pod]) -> FormatProgress {
    let mut progress = FormatProgress::default();
    for pod in pods_of(pods, Component::ChunkServer) {
        // Named only when reported: clusters have thousands of formatted pods.
        let name = || pod.metadata.name.clone().unwrap_or_default();
        let format = pod
            .status
            .as_ref()
            .and_then(|s| s.init_container_statuses.as_ref())
            .and_then(|statuses| statuses.iter().find(|c| c.name == "format"));
        let Some(state) = format.and_then(|c| c.state.as_ref()) else {
            continue;
        };
        let last_failure = format
            .and_then(|c| c.last_state.as_ref()?.terminated.as_ref())
            .filter(|t| t.exit_code != 0);
        if state.running.is_some() {
            progress.formatting.push(name());
        } else if let Some(done) = state.terminated.as_ref().filter(|t| t.exit_code != 0) {
            let why = last_line(done.message.as_ref())
                .or(done.reason.as_deref())
                .unwrap_or_default();
            progress.failed.push(format!(
                "{} (exit {}{}{why})",
                name(),
                done.exit_code,
                if why.is_empty() { "" } else { ": " }
            ));
        } else if let (Some(waiting), Some(failure)) = (state.waiting.as_ref(), last_failure) {
            // Crash-looping after a failed format: say why the last run failed.
            let reason = waiting.reason.clone().unwrap_or_default();
            match last_line(failure.message.as_ref()) {
                Some(why) => progress
                    .failed
                    .push(format!("{} ({reason}: {why})", name())),
                None => progress.failed.push(format!("{} ({reason})", name())),
            }
        }
    }
    progress
}

#[cfg(test)]
#[path = "observe_tests.rs"]
mod tests;
