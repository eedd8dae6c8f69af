//! Pure readings of the cluster's pods: readiness per component, etcd endpoints, the MDS pod
//! behind the elected address, the nodes running ChunkServers.

use std::collections::BTreeMap;

use fnv::FnvHashMap;

use std::sync::Arc;

use super::model::observation::{FormatProgress, PrimaryView};
use super::model::pod::{ContainerRun, PodReading};
use crate::desired::ObservedServer;
use crate::etcd::PrimaryObservation;
use crate::names::Component;

/// The pods of a component that are not being deleted.
pub fn pods_of(
    pods: &[Arc<PodReading>],
    component: Component,
) -> impl Iterator<Item = &PodReading> {
    (pods.iter().map(|p| &**p)).filter(move |pod| pod.tier == Some(component) && !pod.terminating)
}

/// The pod named `name`. The read step sorts the pods by name, so a binary search finds it
/// without reading every pod's name (the etcd and MDS pods sort after thousands of ChunkServer
/// pods); a pod it does not find, or pods in another order, are searched one by one. Names are
/// unique in a namespace, so whichever finds it finds the same pod.
pub fn pod_named<'a>(pods: &'a [Arc<PodReading>], name: &str) -> Option<&'a PodReading> {
    match pods.binary_search_by(|p| p.name.as_str().cmp(name)) {
        Ok(at) => Some(&pods[at]),
        Err(_) => pods.iter().map(|p| &**p).find(|p| p.name == name),
    }
}

pub fn is_ready(pod: &PodReading) -> bool {
    pod.ready
}

pub fn pod_ip(pod: &PodReading) -> Option<&str> {
    pod.ip.as_deref()
}

/// The Ready pods of each tier ([`Component::TIERS`] order), counted in one pass.
pub fn ready_by_tier(pods: &[Arc<PodReading>]) -> [i32; 3] {
    let mut ready = [0; 3];
    for pod in pods.iter().filter(|p| p.ready && !p.terminating) {
        if let Some(i) = pod.tier.and_then(Component::tier_index) {
            ready[i] += 1;
        }
    }
    ready
}

/// `ip:port` of the members `<set>-0 .. <set>-<replicas-1>` in ordinal order. The list stays
/// stable while a member is replaced: when one has no IP, the `previous` list (what the config
/// already holds) is kept rather than rolling every ChunkServer twice; with none, the members
/// that have an IP.
pub fn member_addresses(
    pods: &[Arc<PodReading>],
    set: &str,
    replicas: i32,
    port: i32,
    previous: Option<Vec<String>>,
) -> Vec<String> {
    let ip_of = |name: &str| pod_named(pods, name).and_then(pod_ip).map(String::from);
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
pub fn all_members_addressed(pods: &[Arc<PodReading>], set: &str, replicas: i32) -> bool {
    (0..replicas).all(|i| {
        let name = format!("{set}-{i}");
        pod_named(pods, &name).is_some_and(|p| pod_ip(p).is_some())
    })
}

/// Why etcd was not asked: the endpoints come from the etcd pods, and no pod has an address.
pub const NO_ETCD_ADDRESS: &str =
    "no etcd endpoint is known yet: no etcd pod has an address (the etcd pods are not running)";

/// `ip:clientPort` of every etcd pod that has an address, sorted: the operator's own etcd
/// endpoints. Never the member `joining` (added as a learner, or re-added, and not promoted):
/// a learner serves no client request but Status, so a read or a member-list change sent to it
/// fails (etcd's "rpc not supported for learner").
pub fn etcd_endpoints(
    pods: &[Arc<PodReading>],
    client_port: i32,
    joining: Option<&str>,
) -> Vec<String> {
    let mut endpoints: Vec<String> = pods_of(pods, Component::Etcd)
        .filter(|pod| joining != Some(pod.name.as_str()))
        .filter_map(pod_ip)
        .map(|ip| format!("{ip}:{client_port}"))
        .collect();
    endpoints.sort();
    endpoints.dedup();
    endpoints
}

/// Maps the election as read from etcd to the MDS pod that won it. Never guesses: an address
/// held by no pod or by several is reported as such.
pub fn primary_view(
    pods: &[Arc<PodReading>],
    mds_port: i32,
    observation: &PrimaryObservation,
) -> PrimaryView {
    match observation {
        PrimaryObservation::Elected { address } => {
            let holders: Vec<String> = pods_of(pods, Component::Mds)
                .filter(|pod| pod_ip(pod).is_some_and(|ip| format!("{ip}:{mds_port}") == *address))
                .map(|pod| pod.name.clone())
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
    pods: &[Arc<PodReading>],
    node_zones: &BTreeMap<String, String>,
) -> Vec<ObservedServer> {
    // By borrowed name in a hash map, sorted once at the end: a tree of owned names cost a
    // dozen string comparisons per pod (clusters have a dozen ChunkServer pods per server).
    let mut servers: FnvHashMap<&str, &str> = FnvHashMap::default();
    for pod in pods_of(pods, Component::ChunkServer) {
        // A server's first pod with both names it; the others find it there.
        if let (Some(node), Some(host_ip)) = (&pod.node, &pod.host_ip) {
            servers.entry(node).or_insert(host_ip);
        }
    }
    let mut servers: Vec<(&str, &str)> = servers.into_iter().collect();
    servers.sort_unstable();
    (servers.into_iter())
        .map(|(node, host_ip)| ObservedServer {
            node: node.to_string(),
            host_ip: host_ip.to_string(),
            zone: node_zones.get(node).cloned(),
        })
        .collect()
}

/// Names of the nodes running ChunkServer pods (to look up their zone label).
pub fn chunkserver_nodes(pods: &[Arc<PodReading>]) -> Vec<String> {
    let mut nodes: Vec<String> = pods_of(pods, Component::ChunkServer)
        .filter_map(|pod| pod.node.clone())
        .collect();
    nodes.sort();
    nodes.dedup();
    nodes
}

/// Whether a pod cannot start because the Secret `name` is missing (the kubelet's
/// CreateContainerConfigError names it).
pub fn secret_missing(pods: &[Arc<PodReading>], name: &str) -> bool {
    let needle = format!("secret \"{name}\" not found");
    // Only waiting containers tell it: most pods have none, told without reading them.
    (pods.iter().filter(|pod| pod.derived().waiting))
        .flat_map(|pod| pod.init_containers.iter().chain(&pod.containers))
        .filter_map(|c| c.state.as_ref()?.waiting())
        .any(|(reason, message)| {
            reason == Some("CreateContainerConfigError")
                && message.is_some_and(|m| m.contains(&needle))
        })
}

/// The last non-empty line of a container's termination message: with
/// `FallbackToLogsOnError` that is the format script's own complaint.
fn last_line(message: Option<&str>) -> Option<&str> {
    message?
        .lines()
        .rev()
        .map(str::trim)
        .find(|line| !line.is_empty())
}

/// Reads the `format` init container of every ChunkServer pod.
pub fn format_progress(pods: &[Arc<PodReading>]) -> FormatProgress {
    let mut progress = FormatProgress::default();
    // A pod whose init containers all finished well has nothing to report: most pods, told
    // without reading their containers.
    for pod in pods_of(pods, Component::ChunkServer).filter(|p| !p.derived().init_done) {
        // Named only when reported: clusters have thousands of formatted pods.
        let name = || pod.name.clone();
        let format = pod.init_containers.iter().find(|c| c.name == "format");
        let Some(state) = format.and_then(|c| c.state.as_ref()) else {
            continue;
        };
        let last_failure = format
            .and_then(|c| c.last_terminated.as_ref())
            .filter(|t| t.exit_code != 0);
        if *state == ContainerRun::Running {
            progress.formatting.push(name());
        } else if let Some(done) = state.terminated().filter(|t| t.exit_code != 0) {
            let why = last_line(done.message.as_deref())
                .or(done.reason.as_deref())
                .unwrap_or_default();
            progress.failed.push(format!(
                "{} (exit {}{}{why})",
                name(),
                done.exit_code,
                if why.is_empty() { "" } else { ": " }
            ));
        } else if let (Some((reason, _)), Some(failure)) = (state.waiting(), last_failure) {
            // Crash-looping after a failed format: say why the last run failed.
            let reason = reason.unwrap_or_default();
            match last_line(failure.message.as_deref()) {
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
