//! End-to-end tests of curve-operator against a real Kubernetes API server (KUBECONFIG).
//!
//! The control plane needs no nodes: the suite plays scheduler and kubelet itself
//! ([`kubelet`]), runs real etcd members and MDS stand-ins for the operator's pods
//! ([`daemons`]), and runs the operator binary of this repository under the Helm chart's RBAC
//! ([`operator`]). The scenarios are in `tests/scenarios.rs`; see `e2e/README.md`.
//!
//! A real Prometheus ([`prometheus`]) and the check of the Grafana dashboards' expressions on
//! it ([`dashboards`]) serve scenario o and `tests/dashboards.rs`, which needs no Kubernetes
//! (it scrapes the operator's `/metrics` and a real etcd) and is not `#[ignore]`d, so
//! `cargo test --workspace` runs it.

pub mod bench;
pub mod cluster;
pub mod curve_model;
pub mod curve_standins;
pub mod curve_wire;
pub mod daemons;
pub mod dashboards;
pub mod env;
pub mod gates;
pub mod hosts;
pub mod job_run;
pub mod kubelet;
pub mod manifests;
pub mod metrics;
pub mod operator;
pub mod probes;
pub mod process;
pub mod prometheus;
pub mod schedule;
pub mod soak;
pub mod start_wrapper;
pub mod util;
pub mod volumes;
