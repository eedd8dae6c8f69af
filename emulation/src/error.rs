//! What can go wrong while emulating (as opposed to a container failing, which is a result).

use std::io;
use std::path::PathBuf;

/// The emulation itself could not be done. A container that fails is not an error: it is a
/// [`ContainerStatus`](crate::ContainerStatus) of the [`PodRun`](crate::PodRun).
#[derive(Debug, thiserror::Error)]
pub enum EmulationError {
    /// The image's config files are not where they were looked for. Callers usually report
    /// this as a skipped test.
    #[error(
        "Curve image files not found: looked for {looked_for} (set {env} to the directory of the image's /curvebs/conf files)",
        env = crate::image::CONF_DIR_ENV
    )]
    ImageFilesMissing {
        /// The directory that was looked for.
        looked_for: PathBuf,
    },
    /// The Curve version of the image could not be told.
    #[error("cannot tell the Curve version of {conf_dir}: {why}")]
    UnknownVersion {
        /// The config directory whose version is unknown.
        conf_dir: PathBuf,
        /// What was tried.
        why: String,
    },
    /// The emulation mounts and chroots, which needs root.
    #[error(
        "the Curve image emulation needs root (it mounts file systems and chroots): running as uid {uid}"
    )]
    NotRoot {
        /// The effective uid of this process.
        uid: u32,
    },
    /// A host program the emulation relies on is missing.
    #[error("the Curve image emulation needs {program} on this host: {why}")]
    MissingHostProgram {
        /// The program.
        program: String,
        /// Why it is needed or how to get it.
        why: String,
    },
    /// The pod uses something the emulation does not implement (it never guesses).
    #[error("not emulated: {0}")]
    Unsupported(String),
    /// A persistent volume of the pod has no [`VolumeBacking`](crate::VolumeBacking).
    #[error(
        "volume {volume:?} (claim {claim:?}) has no backing: pass one under the claim name or the volume name"
    )]
    MissingBacking {
        /// The pod's volume name (for a StatefulSet claim template: the template name).
        volume: String,
        /// The claim name.
        claim: String,
    },
    /// The pod spec is one the API server would reject.
    #[error("invalid pod: {0}")]
    InvalidPod(String),
    /// Preparing the pod's files or processes failed.
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: String,
        /// The error.
        #[source]
        source: io::Error,
    },
    /// Preparing the pod failed for another reason.
    #[error("{0}")]
    Setup(String),
}

/// Adds what was being done to an I/O error.
pub(crate) trait IoContext<T> {
    fn doing(self, what: impl FnOnce() -> String) -> Result<T, EmulationError>;
}

impl<T> IoContext<T> for io::Result<T> {
    fn doing(self, what: impl FnOnce() -> String) -> Result<T, EmulationError> {
        self.map_err(|source| EmulationError::Io {
            what: what(),
            source,
        })
    }
}
