//! What the reconciler asks of the health monitor and what it makes of the answer. Pure.
//!
//! The monitor reads Curve's health beside the controller ([`super::health_monitor`]); a
//! decision sees only its latest result ([`HealthView`]). A roll step of the ChunkServer tier
//! waits for a healthy verdict read after the tier's pods were last seen as they are now: the
//! pods' token (uids and readiness of the MDS and ChunkServer pods) the reading began with
//! must be the current one, so a verdict read before the last pod came back never lets the
//! next server go.

use std::sync::Arc;

use super::model::health::{HealthView, Latest, Wanted};
use super::model::pod::{PodReading, mix};
use super::observe::{pod_ip, pods_of};
use crate::api::ChunkServerRetire;
use crate::curve::gather::{MdsTarget, Targets};
use crate::curve::health::Rules;
use crate::names::Component;
use crate::validate::ValidatedCluster;

/// A stable token of the MDS and ChunkServer pods' identities and readiness: it changes when
/// any of them is replaced, or becomes ready or unready.
pub fn pods_token(pods: &[Arc<PodReading>]) -> u64 {
    // The sum of each pod's identity (hashed once, when its reading was made) mixed with its
    // readiness: the same for the same pods in any order, without reading or sorting
    // thousands of names. It is compared only with a token this process made (the health
    // monitor's), so it needs no other stability.
    (pods.iter())
        .filter(|p| matches!(p.tier, Some(Component::Mds | Component::ChunkServer)))
        .filter(|p| !p.terminating)
        .map(|p| mix(p.derived().identity ^ u64::from(super::observe::is_ready(p))))
        .fold(0, u64::wrapping_add)
}

/// Where the MDS daemons listen (their pods' IPs: host networking) and which one etcd elected.
pub fn targets(
    cluster: &ValidatedCluster,
    pods: &[Arc<PodReading>],
    elected: Option<&str>,
) -> Targets {
    let mds = &cluster.spec.mds;
    let mut targets: Vec<MdsTarget> = pods_of(pods, Component::Mds)
        .filter_map(pod_ip)
        .map(|ip| MdsTarget {
            listen_addr: format!("{ip}:{}", mds.port),
            dummy_addr: format!("{ip}:{}", mds.dummy_port),
        })
        .collect();
    targets.sort_by(|a, b| a.listen_addr.cmp(&b.listen_addr));
    Targets {
        elected: elected.map(str::to_string),
        mds: targets,
    }
}

/// The token a reading must have begun with to describe the cluster as it is now: the pods'
/// token, and the retire step in progress (a step's Curve change is sent after the step is
/// recorded, so a reading begun after the record changed sees it).
pub fn state_token(pods: &[Arc<PodReading>], retire: Option<&ChunkServerRetire>) -> u64 {
    let pods = pods_token(pods);
    match retire {
        None => pods,
        Some(r) => crate::util::fnv64(
            (pods.to_le_bytes().into_iter())
                .chain(format!("{:?}/{}/{:?}", r.reason, r.pod, r.step).into_bytes()),
        ),
    }
}

/// What to ask the monitor for.
pub fn wanted(
    cluster: &ValidatedCluster,
    pods: &[Arc<PodReading>],
    elected: Option<&str>,
    retire: Option<&ChunkServerRetire>,
) -> Wanted {
    Wanted {
        targets: targets(cluster, pods, elected),
        rules: Rules {
            replicas: cluster.spec.logical_pool.replicas as usize,
            ..Rules::default()
        },
        pods_token: state_token(pods, retire),
    }
}

/// The decision's view of the monitor's latest result.
pub fn view(
    latest: &Latest,
    pods: &[Arc<PodReading>],
    mds_port: i32,
    retire: Option<&ChunkServerRetire>,
) -> HealthView {
    let primary_unreachable = latest.primary_unreachable.as_ref().map(|address| {
        pods_of(pods, Component::Mds)
            .find(|p| pod_ip(p).is_some_and(|ip| format!("{ip}:{mds_port}") == *address))
            .map(|p| p.name.clone())
            .unwrap_or_else(|| address.clone())
    });
    let current = latest.pods_token == state_token(pods, retire);
    HealthView {
        status: latest.status.clone(),
        current,
        primary_unreachable,
        inventory: latest.inventory.clone().filter(|_| current),
    }
}

/// Why a ChunkServer roll step may not be taken now, if it may not. The step needs every
/// copyset healthy, read after the last pod change: an unhealthy verdict whose copysets are
/// all healthy (a new ChunkServer that holds no copyset yet, a standby MDS down) does not hold
/// it; an unknown one always does.
pub fn roll_gate(health: Option<&HealthView>) -> Option<String> {
    match health {
        None => Some("waiting for Curve's health to be read".into()),
        Some(h) if !h.current => {
            Some("waiting for Curve's health read after the last pod change".into())
        }
        Some(h) if h.healthy() || h.copysets_all_healthy() => None,
        Some(h) => Some(format!("waiting: {}", h.summary())),
    }
}

#[cfg(test)]
#[path = "health_tests.rs"]
mod tests;
