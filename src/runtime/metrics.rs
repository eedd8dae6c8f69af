//! Prometheus metrics of the operator, served on `/metrics` (see `http.rs`).

use std::time::Duration;

use prometheus_client::encoding::{EncodeLabelSet, EncodeLabelValue, LabelValueEncoder};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::{Registry, Unit};

/// How a reconcile ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ReconcileResult {
    Success,
    Error,
}

impl ReconcileResult {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Success => "success",
            Self::Error => "error",
        }
    }
}

/// A Curve component whose ready members are counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Component {
    Etcd,
    Mds,
    ChunkServer,
}

impl Component {
    pub const ALL: [Component; 3] = [Self::Etcd, Self::Mds, Self::ChunkServer];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Etcd => "etcd",
            Self::Mds => "mds",
            Self::ChunkServer => "chunkserver",
        }
    }
}

/// Label values are the lowercase words of `as_str`, not the Rust variant names.
macro_rules! label_value_from_as_str {
    ($($t:ty),*) => {$(
        impl EncodeLabelValue for $t {
            fn encode(&self, encoder: &mut LabelValueEncoder) -> Result<(), std::fmt::Error> {
                EncodeLabelValue::encode(&self.as_str(), encoder)
            }
        }
    )*};
}
label_value_from_as_str!(ReconcileResult, Component);

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct ResultLabels {
    result: ReconcileResult,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct StepLabels {
    step: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct RequestLabels {
    verb: String,
    resource: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct ClusterLabels {
    namespace: String,
    name: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct MemberLabels {
    namespace: String,
    name: String,
    component: Component,
}

/// The operator's metrics; share one instance (e.g. in an `Arc`) between reconciler and server.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    reconciles: Family<ResultLabels, Counter>,
    reconcile_duration: Histogram,
    errors: Family<StepLabels, Counter>,
    kube_requests: Family<RequestLabels, Counter>,
    primary_changes: Family<ClusterLabels, Counter>,
    ready_members: Family<MemberLabels, Gauge>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// All metric names start with this prefix.
    pub const PREFIX: &'static str = "curve_operator";

    pub fn new() -> Self {
        let mut registry = Registry::with_prefix(Self::PREFIX);
        let reconciles = Family::default();
        // 5 ms .. ~20 s: a no-op reconcile is milliseconds, a bring-up step a few seconds.
        let reconcile_duration = Histogram::new(exponential_buckets(0.005, 2.0, 13));
        let errors = Family::default();
        let kube_requests = Family::default();
        let primary_changes = Family::default();
        let ready_members = Family::default();
        registry.register(
            "reconciles",
            "Reconciles finished, by result",
            reconciles.clone(),
        );
        registry.register_with_unit(
            "reconcile_duration",
            "Time one reconcile took",
            Unit::Seconds,
            reconcile_duration.clone(),
        );
        registry.register(
            "errors",
            "Failed reconciles, by the step that failed: read (a watch cache not synced), apply, delete, status, secret, random (drawing the root password), finalizer, cleanup (deleting data volume claims)",
            errors.clone(),
        );
        registry.register(
            "kube_requests",
            "Kubernetes API requests sent, by RBAC verb (get, list, watch, create, update, patch, apply, delete, deletecollection) and resource (plural, /subresource appended)",
            kube_requests.clone(),
        );
        registry.register(
            "mds_primary_changes",
            "Changes of the elected MDS primary, per CurveCluster",
            primary_changes.clone(),
        );
        registry.register(
            "ready_members",
            "Ready members per CurveCluster and component",
            ready_members.clone(),
        );
        Self {
            registry,
            reconciles,
            reconcile_duration,
            errors,
            kube_requests,
            primary_changes,
            ready_members,
        }
    }

    pub fn reconcile_finished(&self, result: ReconcileResult, duration: Duration) {
        self.reconciles
            .get_or_create(&ResultLabels { result })
            .inc();
        self.reconcile_duration.observe(duration.as_secs_f64());
    }

    /// Counts a failed reconcile; `step` is one of `reconcile::Error::STEPS`.
    pub fn error(&self, step: &str) {
        self.errors
            .get_or_create(&StepLabels {
                step: step.to_owned(),
            })
            .inc();
    }

    /// Counts one Kubernetes API request.
    pub fn kube_request(&self, verb: &str, resource: &str) {
        self.kube_requests
            .get_or_create(&RequestLabels {
                verb: verb.to_owned(),
                resource: resource.to_owned(),
            })
            .inc();
    }

    pub fn primary_changed(&self, namespace: &str, name: &str) {
        self.primary_changes
            .get_or_create(&cluster(namespace, name))
            .inc();
    }

    pub fn set_ready(&self, namespace: &str, name: &str, component: Component, ready: u32) {
        let labels = MemberLabels {
            namespace: namespace.to_owned(),
            name: name.to_owned(),
            component,
        };
        self.ready_members
            .get_or_create(&labels)
            .set(i64::from(ready));
    }

    /// Drops the per-cluster series of a deleted CurveCluster.
    pub fn remove_cluster(&self, namespace: &str, name: &str) {
        self.primary_changes.remove(&cluster(namespace, name));
        for component in Component::ALL {
            let labels = MemberLabels {
                namespace: namespace.to_owned(),
                name: name.to_owned(),
                component,
            };
            self.ready_members.remove(&labels);
        }
    }

    /// The OpenMetrics text exposition of every metric.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &self.registry)
            .expect("writing to a String cannot fail");
        out
    }
}

fn cluster(namespace: &str, name: &str) -> ClusterLabels {
    ClusterLabels {
        namespace: namespace.to_owned(),
        name: name.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_every_metric_with_its_labels() {
        let m = Metrics::new();
        m.reconcile_finished(ReconcileResult::Success, Duration::from_millis(20));
        m.reconcile_finished(ReconcileResult::Error, Duration::from_millis(20));
        m.error("apply");
        m.kube_request("list", "pods");
        m.primary_changed("ns", "demo");
        m.set_ready("ns", "demo", Component::ChunkServer, 3);
        let text = m.encode();
        for line in [
            r#"curve_operator_reconciles_total{result="success"} 1"#,
            r#"curve_operator_reconciles_total{result="error"} 1"#,
            "curve_operator_reconcile_duration_seconds_count 2",
            r#"curve_operator_errors_total{step="apply"} 1"#,
            r#"curve_operator_kube_requests_total{verb="list",resource="pods"} 1"#,
            r#"curve_operator_mds_primary_changes_total{namespace="ns",name="demo"} 1"#,
            r#"curve_operator_ready_members{namespace="ns",name="demo",component="chunkserver"} 3"#,
        ] {
            assert!(
                text.lines().any(|l| l == line),
                "missing {line:?} in\n{text}"
            );
        }
    }

    #[test]
    fn removing_a_cluster_drops_its_series() {
        let m = Metrics::new();
        m.primary_changed("ns", "demo");
        m.set_ready("ns", "demo", Component::Etcd, 3);
        m.set_ready("ns", "other", Component::Etcd, 1);
        m.remove_cluster("ns", "demo");
        let text = m.encode();
        assert!(!text.contains(r#"name="demo""#), "{text}");
        assert!(text.contains(r#"name="other""#));
    }
}
