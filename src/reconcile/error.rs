//! Why a reconcile failed, by the step that failed, and the refusals of the API server.

use crate::runtime::metrics::ErrorStep;

/// Why a reconcile failed, by the step that failed. Problems of the Curve cluster itself
/// (etcd unreachable, no primary) are not errors: they are observed and shown in conditions.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("the {0} watch cache has not synced yet")]
    Read(&'static str),
    #[error("reading StorageClass {name}: {source}")]
    StorageClass { name: String, source: kube::Error },
    #[error("listing the Events of StatefulSet {name}: {source}")]
    SetEvents { name: String, source: kube::Error },
    #[error("reading {what} for curve-csi: {source}")]
    ReadCsi { what: String, source: kube::Error },
    #[error("applying {object}: {source}")]
    Apply { object: String, source: kube::Error },
    #[error("deleting {object}: {source}")]
    Delete { object: String, source: kube::Error },
    #[error("writing the status: {0}")]
    Status(kube::Error),
    #[error("ensuring the root password Secret: {0}")]
    Secret(kube::Error),
    #[error("cannot generate the root password: reading random bytes failed: {0}")]
    Random(std::io::Error),
    #[error("updating the data finalizer: {0}")]
    Finalizer(kube::Error),
    #[error("changing etcd's member list: {0}")]
    Membership(String),
    #[error("deleting the data volume claims: {0}")]
    Cleanup(kube::Error),
    #[error("changing Curve's topology: {0}")]
    CurveTopology(String),
}

impl Error {
    /// The step that failed, as `curve_operator_errors_total` counts it.
    pub fn step(&self) -> ErrorStep {
        match self {
            Error::Read(_)
            | Error::StorageClass { .. }
            | Error::SetEvents { .. }
            | Error::ReadCsi { .. } => ErrorStep::Read,
            Error::Apply { .. } => ErrorStep::Apply,
            Error::Delete { .. } => ErrorStep::Delete,
            Error::Status(_) => ErrorStep::Status,
            Error::Secret(_) => ErrorStep::Secret,
            Error::Random(_) => ErrorStep::Random,
            Error::Finalizer(_) => ErrorStep::Finalizer,
            Error::Cleanup(_) => ErrorStep::Cleanup,
            Error::Membership(_) => ErrorStep::EtcdMembership,
            Error::CurveTopology(_) => ErrorStep::CurveTopology,
        }
    }
}

/// An object the API server refused to take (400 Bad Request, 403 Forbidden by admission or
/// quota, 422 Invalid): retrying the same object cannot succeed, so the status says which
/// object and what the server said, instead of a bare reconcile error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// `Kind/name` of the refused object.
    pub object: String,
    /// The server's message; it names the fields it refused.
    pub message: String,
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "the API server refused {}: {}",
            self.object, self.message
        )
    }
}

impl Error {
    /// The API server judged the request itself (400 Bad Request, 403 Forbidden, 422 Invalid,
    /// as [`Error::refusal`] reads them): the same request will be refused again. A 404 is
    /// not: the object went away or its namespace did, which the caches catch up with.
    pub fn is_refusal(&self) -> bool {
        let (Error::StorageClass { source, .. }
        | Error::SetEvents { source, .. }
        | Error::ReadCsi { source, .. }
        | Error::Apply { source, .. }
        | Error::Delete { source, .. }
        | Error::Status(source)
        | Error::Secret(source)
        | Error::Finalizer(source)
        | Error::Cleanup(source)) = self
        else {
            return false;
        };
        matches!(source, kube::Error::Api(status) if refused(status.code))
    }

    /// The refusal this error is, when the API server judged the object itself.
    pub fn refusal(&self) -> Option<Refusal> {
        let Error::Apply {
            object,
            source: kube::Error::Api(status),
        } = self
        else {
            return None;
        };
        if !refused(status.code) {
            return None;
        }
        // A cause's field the message does not already name (admission plugins give some).
        let causes = status.details.iter().flat_map(|d| &d.causes);
        let unnamed: Vec<String> = causes
            .filter(|c| !c.field.is_empty() && !status.message.contains(&c.field))
            .map(|c| format!("{}: {}", c.field, c.message))
            .collect();
        let message = std::iter::once(status.message.clone())
            .chain(unnamed)
            .collect::<Vec<_>>()
            .join("; ");
        Some(Refusal {
            object: object.clone(),
            message,
        })
    }
}

/// The codes by which the API server judges the request itself: 400 Bad Request, 403
/// Forbidden (admission, quota), 422 Invalid.
fn refused(code: u16) -> bool {
    matches!(code, 400 | 403 | 422)
}
