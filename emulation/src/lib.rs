//! Emulates, for tests, how a kubelet runs a pod's containers on the Curve image
//! (`opencurvedocker/curvebs`), without a container runtime.
//!
//! Each container gets its own image root (a temp dir) laid out like the image: Curve's default
//! config files in `/curvebs/conf`, empty `/curvebs/<role>/{conf,logs,data,sbin}`, stand-in
//! shell scripts for `curve_format`, `curvebs-tool`, `curve_ops_tool` and `/entrypoint.sh`, and
//! the host's `/usr` (read-only) in place of Debian 9's. Its command really runs, with `sh` and
//! the host's tools, chrooted into that root in a private mount namespace with the pod's volumes
//! mounted as the kubelet mounts them. Nothing is mounted on the host itself.
//!
//! It takes plain `k8s-openapi` types ([`PodSpec`](k8s_openapi::api::core::v1::PodSpec),
//! StatefulSet, Job), so that any test crate can use it. It needs root.
//!
//! ```no_run
//! use std::collections::BTreeMap;
//! use curve_image_emulation::{ImageFiles, Kubelet, PodFacts, VolumeBacking};
//! # fn test(stateful_set: k8s_openapi::api::apps::v1::StatefulSet) {
//! let image = match ImageFiles::locate(env!("CARGO_MANIFEST_DIR")) {
//!     Ok(image) => image,
//!     Err(e) => return eprintln!("skipped: {e}"),
//! };
//! let facts = PodFacts { name: "chunkserver-0".into(), ..PodFacts::default() };
//! let volumes = BTreeMap::from([(
//!     "data".to_string(),
//!     VolumeBacking::Ext4 { image: "/tmp/cs0.img".into(), size_bytes: 64 << 20 },
//! )]);
//! let run = Kubelet::new(image).run_stateful_set_pod(&stateful_set, &facts, &volumes).unwrap();
//! assert!(run.init_succeeded(), "{run}");
//! let conf = run.read("chunkserver", "/curvebs/chunkserver/conf/chunkserver.conf").unwrap();
//! # }
//! ```

#![warn(missing_docs)]

pub mod conf;
mod env;
mod error;
pub mod expansion;
mod holder;
mod image;
mod mounts;
mod pod;
mod records;
mod rootfs;
mod runner;
mod shell;
mod standins;
#[cfg(test)]
mod tests;
mod volumes;

pub use error::EmulationError;
pub use image::{CONF_DIR_ENV, CurveVersion, ImageFiles, VERSION_ENV};
pub use pod::{
    ContainerKind, ContainerRun, ContainerStatus, IMAGE_ENTRYPOINT, KEEP_ENV, Kubelet, PodFacts,
    PodRun,
};
pub use records::Invocation;
pub use volumes::VolumeBacking;
