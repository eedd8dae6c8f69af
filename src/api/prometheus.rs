//! The Prometheus Operator objects the operator writes (`monitoring.coreos.com/v1`), typed with
//! only the fields it sets. They are another project's API: the operator creates them only when
//! the API server serves them, and never installs their CRDs.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The Prometheus Operator's API group and version.
pub const GROUP_VERSION: &str = "monitoring.coreos.com/v1";

macro_rules! monitoring_resource {
    ($kind:ident, $plural:literal) => {
        impl k8s_openapi::Resource for $kind {
            const API_VERSION: &'static str = GROUP_VERSION;
            const GROUP: &'static str = "monitoring.coreos.com";
            const KIND: &'static str = stringify!($kind);
            const VERSION: &'static str = "v1";
            const URL_PATH_SEGMENT: &'static str = $plural;
            type Scope = k8s_openapi::NamespaceResourceScope;
        }

        impl k8s_openapi::Metadata for $kind {
            type Ty = ObjectMeta;
            fn metadata(&self) -> &ObjectMeta {
                &self.metadata
            }
            fn metadata_mut(&mut self) -> &mut ObjectMeta {
                &mut self.metadata
            }
        }
    };
}

/// Pods Prometheus scrapes: each matching pod's named container port.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
pub struct PodMonitor {
    pub metadata: ObjectMeta,
    pub spec: PodMonitorSpec,
}
monitoring_resource!(PodMonitor, "podmonitors");

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct PodMonitorSpec {
    /// Pods of the PodMonitor's namespace with these labels.
    pub selector: LabelSelector,
    pub pod_metrics_endpoints: Vec<PodMetricsEndpoint>,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct PodMetricsEndpoint {
    /// The container port's name.
    pub port: String,
    pub path: String,
    pub interval: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub relabelings: Vec<Relabeling>,
}

/// A Prometheus relabel_config; with no source labels and the default regex, it sets
/// `targetLabel` to `replacement` on every target.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Relabeling {
    pub target_label: String,
    pub replacement: String,
    pub action: String,
}

/// Recording and alerting rules Prometheus loads.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
pub struct PrometheusRule {
    pub metadata: ObjectMeta,
    pub spec: PrometheusRuleSpec,
}
monitoring_resource!(PrometheusRule, "prometheusrules");

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
pub struct PrometheusRuleSpec {
    pub groups: Vec<RuleGroup>,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
pub struct RuleGroup {
    pub name: String,
    pub rules: Vec<AlertRule>,
}

/// One alerting rule, as Prometheus's rule files write it.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
pub struct AlertRule {
    pub alert: String,
    pub expr: String,
    #[serde(rename = "for")]
    pub for_: String,
    pub labels: BTreeMap<String, String>,
    pub annotations: BTreeMap<String, String>,
}
