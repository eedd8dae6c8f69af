//! The fault soak (issue 32): on one cluster, a seeded random sequence of day-2 operations
//! while faults land at random moments (the operator SIGKILLed, etcd members and MDS killed,
//! ChunkServers stopped, the operator's connection to the API server cut, delayed or reset
//! through [`proxy`]), with the safety rules of [`rules`] checked every 100 ms and on every
//! watch event by [`checker`], and liveness checked after each round ([`run`]).
//!
//!   CURVE_SOAK_SEED=<n> CURVE_SOAK_MINUTES=<m> cargo test -p curve-operator-e2e --test soak -- --ignored soak_random

pub mod checker;
pub mod proxy;
pub mod rng;
pub mod rules;
pub mod run;
