//! Emulates, for tests, how a kubelet runs a pod's containers on the Curve image
//! (`opencurvedocker/curvebs`), without a container runtime.

#![warn(missing_docs)]

pub mod conf;
mod error;
pub mod expansion;
mod image;

pub use error::EmulationError;
pub use image::{CONF_DIR_ENV, CurveVersion, ImageFiles, VERSION_ENV};
