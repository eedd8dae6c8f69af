//! curve-operator: deploys and runs Curve (CurveBS) clusters on Kubernetes.

pub mod api;
pub mod runtime;
pub mod validate;
pub mod build;
pub mod render;
pub mod etcd;
pub mod reconcile;
