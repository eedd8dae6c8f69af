//! curve-operator: deploys and runs Curve (CurveBS) clusters on Kubernetes.

pub mod api;
pub mod build;
pub mod dashboards;
pub mod etcd;
pub mod reconcile;
pub mod render;
pub mod runtime;
pub mod util;
pub mod validate;
