//! End-to-end tests of curve-operator against a real Kubernetes API server (KUBECONFIG).
//!
//! The control plane needs no nodes: the suite plays scheduler and kubelet itself
//! ([`kubelet`]), runs real etcd members and MDS stand-ins for the operator's pods
//! ([`daemons`]), and runs the operator binary of this repository under the Helm chart's RBAC
//! ([`operator`]). The scenarios are in `tests/scenarios.rs`; see `e2e/README.md`.

pub mod cluster;
pub mod daemons;
pub mod dashboards;
pub mod env;
pub mod hosts;
pub mod kubelet;
pub mod metrics;
pub mod operator;
pub mod process;
pub mod prometheus;
pub mod schedule;
pub mod util;
pub mod volumes;
