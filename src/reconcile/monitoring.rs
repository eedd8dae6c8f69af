//! The monitoring objects' part of a decision: apply the PodMonitors and the PrometheusRule
//! `spec.monitoring` asks for once the API server serves their kinds, delete the ones it no
//! longer asks for. Pure.

use std::collections::BTreeSet;

use super::model::action::{Action, ExistingObject, Object};
use super::model::observation::MonitoringApi;
use super::model::states::MonitoringState;
use crate::desired::monitoring::Monitoring;

/// The objects in apply order: the PodMonitors, then the PrometheusRule.
pub fn objects(monitoring: &Monitoring) -> Vec<Object> {
    let monitors = monitoring
        .pod_monitors
        .iter()
        .cloned()
        .map(Object::PodMonitor);
    monitors
        .chain(monitoring.rule.clone().map(Object::PrometheusRule))
        .collect()
}

/// The monitoring actions and state. `existing` holds only the cluster's monitoring objects.
pub fn plan(
    desired: Option<&Monitoring>,
    api: &MonitoringApi,
    existing: &[ExistingObject],
) -> (Vec<Action>, MonitoringState) {
    let wanted = desired.map_or_else(Vec::new, objects);
    let state = match (desired, api) {
        (None, _) => MonitoringState::Disabled,
        (Some(_), MonitoringApi::Unknown) => MonitoringState::Waiting,
        (Some(_), MonitoringApi::Missing { message }) => MonitoringState::Missing {
            message: message.clone(),
        },
        (Some(_), MonitoringApi::Served) => MonitoringState::Applied {
            objects: (wanted.iter())
                .map(|o| format!("{}/{}", o.kind().as_str(), o.name()))
                .collect(),
        },
    };
    if *api != MonitoringApi::Served {
        // No such object can exist, and none can be created.
        return (Vec::new(), state);
    }
    let mut actions = Vec::new();
    let mut names = BTreeSet::new();
    for object in wanted {
        let (object, hash) = object.with_applied_hash();
        let current = existing
            .iter()
            .find(|e| e.kind == object.kind() && e.name == object.name());
        names.insert((object.kind(), object.name().to_string()));
        if current.and_then(|e| e.applied_hash.as_ref()) != Some(&hash) {
            actions.push(Action::Apply(Box::new(object)));
        }
    }
    for gone in existing
        .iter()
        .filter(|e| !names.contains(&(e.kind, e.name.clone())))
    {
        actions.push(Action::Delete {
            kind: gone.kind,
            name: gone.name.clone(),
        });
    }
    (actions, state)
}

/// Served when discovery lists both kinds.
pub fn served(
    resources: &k8s_openapi::apimachinery::pkg::apis::meta::v1::APIResourceList,
) -> MonitoringApi {
    let missing: Vec<&str> = ["PodMonitor", "PrometheusRule"]
        .into_iter()
        .filter(|kind| !resources.resources.iter().any(|r| r.kind == *kind))
        .collect();
    if missing.is_empty() {
        MonitoringApi::Served
    } else {
        MonitoringApi::Missing {
            message: missing_message(&missing),
        }
    }
}

/// Why nothing is created, and what to do.
pub fn missing_message(kinds: &[&str]) -> String {
    format!(
        "the API server does not serve {} of monitoring.coreos.com/v1: install the Prometheus Operator's CRDs (kube-prometheus-stack installs them); nothing is created until then, and the operator looks again as soon as they are established (and every minute)",
        kinds.join(" and ")
    )
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    #[test]
    fn discovery_serves_monitoring_only_with_both_kinds() {
        use crate::reconcile::model::observation::MonitoringApi;
        use crate::reconcile::monitoring::served;
        let list =
            |kinds: &[&str]| -> k8s_openapi::apimachinery::pkg::apis::meta::v1::APIResourceList {
                serde_json::from_value(json!({
                    "groupVersion": "monitoring.coreos.com/v1",
                    "resources": kinds.iter().map(|k| json!({
                        "kind": k, "name": format!("{}s", k.to_lowercase()), "namespaced": true,
                        "singularName": "", "verbs": ["get"]})).collect::<Vec<_>>()
                }))
                .unwrap()
            };
        assert_eq!(
            served(&list(&["PodMonitor", "PrometheusRule", "ServiceMonitor"])),
            MonitoringApi::Served
        );
        let MonitoringApi::Missing { message } = served(&list(&["ServiceMonitor", "PodMonitor"]))
        else {
            panic!("PrometheusRule is missing");
        };
        assert!(
            message.contains("does not serve PrometheusRule of monitoring.coreos.com/v1"),
            "{message}"
        );
    }
}
