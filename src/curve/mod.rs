//! The operator's own client for CurveBS v1.2.6 over HTTP, and Curve's health verdict.
//!
//! Written from the sources Curve v1.2.6 pins (`WORKSPACE` l.22-24 braft e255c0e, l.103-107
//! brpc 1b9e006 + `thirdparties/brpc/brpc.patch`), cited where each format or rule comes from.
//! Citation prefixes: `C:` opencurve/curve@v1.2.6, `B:` apache/brpc@1b9e006, `R:`
//! baidu/braft@e255c0e.
//!
//! - [`vars`]: brpc `/vars` pages (the MDS dummy port's `mds_status`, the config bvars, the
//!   logical pool bvars).
//! - [`topology`], [`schedule`]: request and response messages of
//!   `curve.mds.topology.TopologyService` and `curve.mds.schedule.ScheduleService` as brpc's
//!   json2pb writes and reads them.
//! - [`raft_stat`]: a ChunkServer's braft `/raft_stat` page.
//! - [`client`]: typed calls over a [`CurveTransport`]; [`http`]: the real transport (hyper).
//! - [`health`]: PURE: everything read in one round ([`health::CurveReading`]) → the verdict
//!   of Curve's own `curve_ops_tool status` ([`health::verdict`]).
//! - [`gather`]: one round of reading ([`gather::gather`]).
//!
//! The reconciler uses [`CurveObserver`], so its tests can fake a whole round; [`gather`]'s
//! tests fake the [`CurveTransport`] below it.

pub mod admin;
pub mod client;
pub mod gather;
pub mod health;
pub mod http;
pub mod inventory;
pub mod raft_stat;
pub mod schedule;
pub mod topology;
pub mod vars;

use std::future::Future;

/// Why a call to a Curve daemon gave nothing usable. `endpoint` is `ip:port` and the path.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum CallError {
    /// No answer: the connection was refused or reset, or no answer came within the timeout.
    /// Curve's own tool counts such a daemon as not online (C:src/tools/copyset_check_core.cpp
    /// l.153-159, C:src/tools/mds_client.cpp l.826-839).
    #[error("{endpoint}: no answer: {reason}")]
    Unreachable { endpoint: String, reason: String },
    /// An answer that cannot be used: an HTTP error (brpc's error text quoted), a body that
    /// does not parse, an unknown enum name, a non-zero `statusCode`.
    #[error("{endpoint}: bad answer: {reason}")]
    BadAnswer { endpoint: String, reason: String },
}

impl CallError {
    pub fn endpoint(&self) -> &str {
        match self {
            CallError::Unreachable { endpoint, .. } | CallError::BadAnswer { endpoint, .. } => {
                endpoint
            }
        }
    }

    pub fn reason(&self) -> &str {
        match self {
            CallError::Unreachable { reason, .. } | CallError::BadAnswer { reason, .. } => reason,
        }
    }

    pub fn is_unreachable(&self) -> bool {
        matches!(self, CallError::Unreachable { .. })
    }

    pub(crate) fn bad(endpoint: &str, reason: impl Into<String>) -> Self {
        CallError::BadAnswer {
            endpoint: endpoint.to_string(),
            reason: reason.into(),
        }
    }
}

/// An HTTP answer of any status: the status code and the body as text.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HttpAnswer {
    pub status: u16,
    pub body: String,
}

/// HTTP to Curve's daemons, one request at a time. Failing to get any answer (refused,
/// reset, timed out) is [`CallError::Unreachable`]; any HTTP status is an answer. A body that
/// is not UTF-8 is [`CallError::BadAnswer`].
pub trait CurveTransport: Send + Sync {
    /// `GET http://<addr><path>`.
    fn get(
        &self,
        addr: &str,
        path: &str,
    ) -> impl Future<Output = Result<HttpAnswer, CallError>> + Send;
    /// `POST http://<addr><path>` with a JSON body (`Content-Type: application/json`).
    fn post_json(
        &self,
        addr: &str,
        path: &str,
        body: String,
    ) -> impl Future<Output = Result<HttpAnswer, CallError>> + Send;
}

/// One round of reading a Curve cluster, for the reconciler. Never fails and never hangs
/// beyond its timeouts: failures are described in the reading.
pub trait CurveObserver: Send + Sync + 'static {
    fn observe(
        &self,
        targets: &gather::Targets,
    ) -> impl Future<Output = health::CurveReading> + Send;
}

impl<T: CurveTransport + 'static> CurveObserver for gather::Gatherer<T> {
    async fn observe(&self, targets: &gather::Targets) -> health::CurveReading {
        gather::gather(&self.transport, targets, &self.options).await
    }
}
