//! curve-operator: deploys and runs Curve (CurveBS) clusters on Kubernetes.

pub mod api;
pub mod cron;
pub mod curve;
pub mod dashboards;
pub mod desired;
pub mod etcd;
pub mod names;
pub mod reconcile;
pub mod render;
pub mod runtime;
pub mod s3;
pub mod util;
pub mod validate;
