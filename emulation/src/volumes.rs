//! The pod's volumes, set up before any container starts, as the kubelet does.

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::{PermissionsExt, symlink};
use std::path::{Component, Path, PathBuf};
use std::process::Command;

use k8s_openapi::api::core::v1::{KeyToPath, PodSpec, Volume};

use crate::error::{EmulationError, IoContext};
use crate::pod::PodFacts;

/// What stands behind a persistent volume (a PVC, a StatefulSet claim template or a hostPath).
/// It outlives the pod run, so a later run of the same pod finds the data of the earlier one.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum VolumeBacking {
    /// A host directory, created if missing.
    Dir(PathBuf),
    /// An ext4 file system in an image file, loop-mounted for the pod only. A missing image is
    /// created with `mkfs.ext4`'s defaults (5% reserved for root, as on a fresh disk); an
    /// existing smaller one is grown (`resize2fs`) like an expanded PV; its data is kept.
    Ext4 {
        /// The image file.
        image: PathBuf,
        /// Its size.
        size_bytes: u64,
    },
}

/// A volume ready to be mounted into containers.
#[derive(Clone, Debug)]
pub(crate) struct PodVolume {
    pub name: String,
    /// Where its files are, in the pod's mount namespace.
    pub dir: PathBuf,
    /// configMap and secret volumes are always mounted read-only (since Kubernetes 1.10);
    /// so are persistent volumes the pod claims with `readOnly`.
    pub read_only: bool,
}

/// An ext4 image to mount at `mount_point` for the pod's lifetime.
#[derive(Clone, Debug)]
pub(crate) struct Ext4Mount {
    pub image: PathBuf,
    pub mount_point: PathBuf,
}

/// The result of setting the volumes up: the kubelet's FailedMount stops the whole pod.
pub(crate) enum Volumes {
    Ready {
        volumes: Vec<PodVolume>,
        ext4: Vec<Ext4Mount>,
    },
    FailedMount(String),
}

/// A file of a configMap, secret or projected volume.
struct ProjectedFile {
    path: String,
    content: Vec<u8>,
    mode: u32,
}

/// Sets up every volume of `spec`, plus the claim templates `claim_templates` of a StatefulSet
/// (named after the template). Files go under `pod_dir/volumes`; ext4 mount points under
/// `pod_dir/mnt`.
pub(crate) fn set_up(
    spec: &PodSpec,
    claim_templates: &[String],
    facts: &PodFacts,
    backings: &BTreeMap<String, VolumeBacking>,
    pod_dir: &Path,
) -> Result<Volumes, EmulationError> {
    let mut volumes = Vec::new();
    let mut ext4 = Vec::new();
    // The StatefulSet controller replaces a pod volume named like a claim template.
    let pod_volumes = spec
        .volumes
        .iter()
        .flatten()
        .filter(|v| !claim_templates.contains(&v.name));
    for volume in pod_volumes {
        let set_up = set_up_volume(volume, facts, backings, pod_dir, &mut ext4)?;
        match set_up {
            Ok(v) => volumes.push(v),
            Err(why) => {
                return Ok(Volumes::FailedMount(format!(
                    "MountVolume.SetUp failed for volume {:?}: {why}",
                    volume.name
                )));
            }
        }
    }
    for template in claim_templates {
        let claim = format!("{template}-{}", facts.name);
        let backing = find_backing(backings, &[&claim, template]).ok_or_else(|| {
            EmulationError::MissingBacking {
                volume: template.clone(),
                claim: claim.clone(),
            }
        })?;
        volumes.push(backed_volume(template, backing, false, pod_dir, &mut ext4)?);
    }
    Ok(Volumes::Ready { volumes, ext4 })
}

/// One volume; the inner error is a FailedMount.
fn set_up_volume(
    volume: &Volume,
    facts: &PodFacts,
    backings: &BTreeMap<String, VolumeBacking>,
    pod_dir: &Path,
    ext4: &mut Vec<Ext4Mount>,
) -> Result<Result<PodVolume, String>, EmulationError> {
    let name = &volume.name;
    if let Some(claim) = &volume.persistent_volume_claim {
        let backing = find_backing(backings, &[&claim.claim_name, name]).ok_or_else(|| {
            EmulationError::MissingBacking {
                volume: name.clone(),
                claim: claim.claim_name.clone(),
            }
        })?;
        let read_only = claim.read_only == Some(true);
        return backed_volume(name, backing, read_only, pod_dir, ext4).map(Ok);
    }
    if let Some(host_path) = &volume.host_path {
        let backing = find_backing(backings, &[name, &host_path.path]).ok_or_else(|| {
            EmulationError::Unsupported(format!(
                "hostPath volume {name:?} ({}): pass a VolumeBacking under the volume name",
                host_path.path
            ))
        })?;
        return backed_volume(name, backing, false, pod_dir, ext4).map(Ok);
    }
    let dir = pod_dir.join("volumes").join(name);
    if volume.empty_dir.is_some() {
        create_dir_with_mode(&dir, 0o777)?;
        return Ok(Ok(PodVolume {
            name: name.clone(),
            dir,
            read_only: false,
        }));
    }
    let files = match projected_files(volume, facts)? {
        Ok(files) => files,
        Err(why) => return Ok(Err(why)),
    };
    write_atomic_writer_layout(&dir, &files)?;
    Ok(Ok(PodVolume {
        name: name.clone(),
        dir,
        read_only: true,
    }))
}

fn find_backing<'a>(
    backings: &'a BTreeMap<String, VolumeBacking>,
    keys: &[&str],
) -> Option<&'a VolumeBacking> {
    keys.iter().find_map(|key| backings.get(*key))
}

fn backed_volume(
    name: &str,
    backing: &VolumeBacking,
    read_only: bool,
    pod_dir: &Path,
    ext4: &mut Vec<Ext4Mount>,
) -> Result<PodVolume, EmulationError> {
    let dir = match backing {
        VolumeBacking::Dir(dir) => {
            fs::create_dir_all(dir).doing(|| format!("creating {}", dir.display()))?;
            dir.canonicalize()
                .doing(|| format!("resolving {}", dir.display()))?
        }
        VolumeBacking::Ext4 { image, size_bytes } => {
            let image = prepare_ext4_image(image, *size_bytes)?;
            let mount_point = pod_dir.join("mnt").join(name);
            fs::create_dir_all(&mount_point)
                .doing(|| format!("creating {}", mount_point.display()))?;
            ext4.push(Ext4Mount {
                image,
                mount_point: mount_point.clone(),
            });
            mount_point
        }
    };
    Ok(PodVolume {
        name: name.to_string(),
        dir,
        read_only,
    })
}

/// Creates the image (mkfs.ext4 defaults) or grows it to `size_bytes`; returns its absolute path.
fn prepare_ext4_image(image: &Path, size_bytes: u64) -> Result<PathBuf, EmulationError> {
    if let Some(parent) = image.parent().filter(|p| !p.as_os_str().is_empty()) {
        fs::create_dir_all(parent).doing(|| format!("creating {}", parent.display()))?;
    }
    let existing = fs::metadata(image).ok().map(|m| m.len());
    match existing {
        None => {
            sparse_file(image, size_bytes)?;
            run_host(Command::new("mkfs.ext4").arg("-q").arg("-F").arg(image))?;
        }
        Some(len) if len < size_bytes => {
            sparse_file(image, size_bytes)?;
            // resize2fs refuses a file system that was not checked since it was last mounted.
            let fsck = Command::new("e2fsck")
                .args(["-f", "-p"])
                .arg(image)
                .output();
            let fsck = fsck.doing(|| "running e2fsck".into())?;
            if fsck.status.code().is_none_or(|code| code > 1) {
                return Err(EmulationError::Setup(format!(
                    "e2fsck -f -p {} failed: {}",
                    image.display(),
                    String::from_utf8_lossy(&fsck.stderr)
                )));
            }
            run_host(Command::new("resize2fs").arg(image))?;
        }
        Some(_) => {}
    }
    image
        .canonicalize()
        .doing(|| format!("resolving {}", image.display()))
}

fn sparse_file(path: &Path, size: u64) -> Result<(), EmulationError> {
    let file = fs::OpenOptions::new()
        .create(true)
        .write(true)
        .truncate(false)
        .open(path)
        .doing(|| format!("creating {}", path.display()))?;
    file.set_len(size)
        .doing(|| format!("sizing {} to {size} bytes", path.display()))
}

/// Runs a host program that must succeed.
pub(crate) fn run_host(command: &mut Command) -> Result<(), EmulationError> {
    let shown = format!("{command:?}");
    let output = command.output().doing(|| format!("running {shown}"))?;
    if output.status.success() {
        return Ok(());
    }
    Err(EmulationError::Setup(format!(
        "{shown} failed ({}): {}",
        output.status,
        String::from_utf8_lossy(&output.stderr).trim()
    )))
}

/// The files of a configMap, secret or projected volume; the inner error is a FailedMount.
fn projected_files(
    volume: &Volume,
    facts: &PodFacts,
) -> Result<Result<Vec<ProjectedFile>, String>, EmulationError> {
    if let Some(cm) = &volume.config_map {
        return Ok(object_files(
            facts.config_maps.get(&cm.name),
            Source::ConfigMap,
            &cm.name,
            cm.items.as_deref(),
            cm.default_mode,
            cm.optional,
        ));
    }
    if let Some(secret) = &volume.secret {
        let name = secret.secret_name.clone().unwrap_or_default();
        return Ok(object_files(
            facts.secrets.get(&name),
            Source::Secret,
            &name,
            secret.items.as_deref(),
            secret.default_mode,
            secret.optional,
        ));
    }
    if let Some(projected) = &volume.projected {
        let mut files = Vec::new();
        for source in projected.sources.iter().flatten() {
            let set = if let Some(cm) = &source.config_map {
                object_files(
                    facts.config_maps.get(&cm.name),
                    Source::ConfigMap,
                    &cm.name,
                    cm.items.as_deref(),
                    projected.default_mode,
                    cm.optional,
                )
            } else if let Some(secret) = &source.secret {
                object_files(
                    facts.secrets.get(&secret.name),
                    Source::Secret,
                    &secret.name,
                    secret.items.as_deref(),
                    projected.default_mode,
                    secret.optional,
                )
            } else {
                return Err(EmulationError::Unsupported(format!(
                    "projected volume {:?}: only configMap and secret sources are emulated",
                    volume.name
                )));
            };
            match set {
                Ok(set) => files.extend(set),
                Err(why) => return Ok(Err(why)),
            }
        }
        return Ok(Ok(files));
    }
    Err(EmulationError::Unsupported(format!(
        "volume {:?}: only configMap, secret, projected (configMap/secret), emptyDir, persistentVolumeClaim and hostPath volumes are emulated",
        volume.name
    )))
}

#[derive(Clone, Copy)]
enum Source {
    ConfigMap,
    Secret,
}

/// The files of one object: all keys, or only `items` at their paths. Messages are the
/// kubelet's.
fn object_files(
    data: Option<&BTreeMap<String, String>>,
    source: Source,
    name: &str,
    items: Option<&[KeyToPath]>,
    default_mode: Option<i32>,
    optional: Option<bool>,
) -> Result<Vec<ProjectedFile>, String> {
    let optional = optional == Some(true);
    let default_mode = default_mode.map_or(0o644, |m| m as u32);
    let Some(data) = data else {
        return match (optional, source) {
            (true, _) => Ok(Vec::new()),
            (false, Source::ConfigMap) => Err(format!("configmap {name:?} not found")),
            (false, Source::Secret) => Err(format!("secret {name:?} not found")),
        };
    };
    let Some(items) = items.filter(|items| !items.is_empty()) else {
        return Ok(data
            .iter()
            .map(|(key, value)| ProjectedFile {
                path: key.clone(),
                content: value.clone().into_bytes(),
                mode: default_mode,
            })
            .collect());
    };
    let mut files = Vec::new();
    for item in items {
        match data.get(&item.key) {
            Some(value) => files.push(ProjectedFile {
                path: item.path.clone(),
                content: value.clone().into_bytes(),
                mode: item.mode.map_or(default_mode, |m| m as u32),
            }),
            None if optional => {}
            None => {
                return Err(match source {
                    Source::ConfigMap => {
                        format!("configmap references non-existent config key: {}", item.key)
                    }
                    Source::Secret => {
                        format!("references non-existent secret key: {}", item.key)
                    }
                });
            }
        }
    }
    Ok(files)
}

/// The kubelet's AtomicWriter layout: the files live in a timestamped directory, `..data`
/// links to it, and each top-level name is a link through `..data`. Scripts that copy such a
/// volume without following links copy dangling links, as they would in a real pod.
fn write_atomic_writer_layout(dir: &Path, files: &[ProjectedFile]) -> Result<(), EmulationError> {
    const SNAPSHOT: &str = "..2006_01_02_15_04_05.000000001";
    let snapshot = dir.join(SNAPSHOT);
    create_dir_with_mode(dir, 0o755)?;
    create_dir_with_mode(&snapshot, 0o755)?;
    let mut top_level: Vec<String> = Vec::new();
    for file in files {
        let relative = checked_relative_path(&file.path)?;
        let path = snapshot.join(&relative);
        if let Some(parent) = path.parent() {
            fs::create_dir_all(parent).doing(|| format!("creating {}", parent.display()))?;
        }
        fs::write(&path, &file.content).doing(|| format!("writing {}", path.display()))?;
        fs::set_permissions(&path, fs::Permissions::from_mode(file.mode & 0o7777))
            .doing(|| format!("chmod {}", path.display()))?;
        let first = relative
            .components()
            .next()
            .map(|c| c.as_os_str().to_string_lossy().into_owned());
        if let Some(first) = first.filter(|f| !top_level.contains(f)) {
            top_level.push(first);
        }
    }
    symlink(SNAPSHOT, dir.join("..data")).doing(|| format!("linking {}/..data", dir.display()))?;
    for name in top_level {
        symlink(format!("..data/{name}"), dir.join(&name))
            .doing(|| format!("linking {}/{name}", dir.display()))?;
    }
    Ok(())
}

/// Item paths are relative and never climb out (the API server validates this).
fn checked_relative_path(path: &str) -> Result<PathBuf, EmulationError> {
    let relative = PathBuf::from(path);
    let fine = !path.is_empty()
        && relative
            .components()
            .all(|c| matches!(c, Component::Normal(_)));
    if fine {
        Ok(relative)
    } else {
        Err(EmulationError::InvalidPod(format!(
            "volume item path {path:?} must be relative without '..'"
        )))
    }
}

fn create_dir_with_mode(dir: &Path, mode: u32) -> Result<(), EmulationError> {
    fs::create_dir_all(dir).doing(|| format!("creating {}", dir.display()))?;
    fs::set_permissions(dir, fs::Permissions::from_mode(mode))
        .doing(|| format!("chmod {}", dir.display()))
}
