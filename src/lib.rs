//! curve-operator: deploys and runs Curve (CurveBS) clusters on Kubernetes.

pub mod api;
pub mod etcd;
pub mod validate;
