//! Emulates, for tests, how a kubelet runs a pod's containers on the Curve image
//! (`opencurvedocker/curvebs`), without a container runtime.

#![warn(missing_docs)]

pub mod conf;
pub mod expansion;
