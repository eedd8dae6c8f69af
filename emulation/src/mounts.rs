//! A container's mounts, and seeing its file system from outside: a container path is
//! resolved through the container's mounts and symlinks (read as the container reads them)
//! into a path this process can open.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

/// How many symlinks one lookup may follow (Linux's limit).
const MAX_SYMLINKS: usize = 40;

/// What is mounted.
#[derive(Clone, Debug)]
pub(crate) enum MountSource {
    /// A bind mount of a path of the pod's mount namespace. `volume_root` is set for a
    /// `subPath`, which must stay inside it.
    Bind {
        path: PathBuf,
        volume_root: Option<PathBuf>,
    },
    /// A read-only union of directories, the first one that has a path wins (the host's /usr
    /// with the image's extra files on top).
    Layers(Vec<PathBuf>),
    /// A fresh procfs.
    Proc,
    /// A minimal /dev (null, zero, full, random, urandom, tty, fd, shm).
    Dev,
}

/// One mount of a container.
#[derive(Clone, Debug)]
pub(crate) struct Mount {
    /// Where it is in the container: absolute, with every symlink resolved.
    pub target: String,
    pub source: MountSource,
    pub read_only: bool,
}

impl Mount {
    pub(crate) fn target_parts(&self) -> Vec<String> {
        parts(&self.target)
    }
}

/// The components of a path (`.` and empty ones dropped; `..` kept).
pub(crate) fn parts(path: &str) -> Vec<String> {
    path.split('/')
        .filter(|p| !p.is_empty() && *p != ".")
        .map(str::to_string)
        .collect()
}

/// Joins components into an absolute path.
pub(crate) fn absolute(parts: &[String]) -> String {
    format!("/{}", parts.join("/"))
}

/// A container's file system seen from this process.
pub(crate) struct ContainerView {
    /// This process's way into the pod's mount namespace (`/proc/<pid>/root`).
    ns_root: PathBuf,
    rootfs: PathBuf,
    /// The mounts with their sources resolved in the pod's namespace.
    mounts: Vec<(Vec<String>, MountSource)>,
}

impl ContainerView {
    /// The view of a container whose image root is `rootfs` (a path of the pod's namespace).
    pub(crate) fn new(ns_root: &Path, rootfs: &Path, mounts: &[Mount]) -> ContainerView {
        let resolve_source = |source: &MountSource| match source {
            MountSource::Bind { path, volume_root } => MountSource::Bind {
                path: resolve_in_namespace(ns_root, path).unwrap_or_else(|_| path.clone()),
                volume_root: volume_root.clone(),
            },
            other => other.clone(),
        };
        ContainerView {
            ns_root: ns_root.to_path_buf(),
            rootfs: rootfs.to_path_buf(),
            mounts: mounts
                .iter()
                .map(|m| (m.target_parts(), resolve_source(&m.source)))
                .collect(),
        }
    }

    /// Resolves `path` (relative ones start at `/`) as the container would, following every
    /// symlink; returns the container path without symlinks.
    pub(crate) fn resolve(&self, path: &str) -> io::Result<Vec<String>> {
        walk(path, |p| self.host_path_of(p))
    }

    /// The host path of `path` as the container sees it.
    pub(crate) fn host_path(&self, path: &str) -> io::Result<PathBuf> {
        Ok(self.host_path_of(&self.resolve(path)?))
    }

    /// The names in directory `path` of the container, sorted; mount points included.
    pub(crate) fn list(&self, path: &str) -> io::Result<Vec<String>> {
        let resolved = self.resolve(path)?;
        let mut names: Vec<String> = self
            .mounts
            .iter()
            .filter(|(target, _)| {
                target.len() == resolved.len() + 1 && target.starts_with(&resolved)
            })
            .map(|(target, _)| target[resolved.len()].clone())
            .collect();
        let mut first_error = None;
        let mut listed_any = false;
        for dir in self.candidate_dirs(&resolved) {
            match fs::read_dir(&dir) {
                Ok(entries) => {
                    listed_any = true;
                    for entry in entries {
                        names.push(entry?.file_name().to_string_lossy().into_owned());
                    }
                }
                Err(e) => {
                    first_error.get_or_insert(e);
                }
            }
        }
        if !listed_any && names.is_empty() {
            return Err(first_error
                .unwrap_or_else(|| io::Error::new(io::ErrorKind::NotFound, "no such directory")));
        }
        names.sort();
        names.dedup();
        Ok(names)
    }

    /// The host path of a symlink-free container path: through the last mount whose target
    /// holds it, else in the image root.
    fn host_path_of(&self, path: &[String]) -> PathBuf {
        match self.mount_of(path) {
            Some((depth, MountSource::Layers(layers))) => {
                let rest = &path[depth..];
                let candidates: Vec<PathBuf> = layers
                    .iter()
                    .map(|l| join(&self.in_namespace(l), rest))
                    .collect();
                let existing = candidates.iter().find(|c| fs::symlink_metadata(c).is_ok());
                existing.unwrap_or(&candidates[0]).clone()
            }
            Some((depth, source)) => join(&self.source_dir(source), &path[depth..]),
            None => join(&self.in_namespace(&self.rootfs), path),
        }
    }

    /// Every directory that makes up a container directory (several for a union).
    fn candidate_dirs(&self, path: &[String]) -> Vec<PathBuf> {
        match self.mount_of(path) {
            Some((depth, MountSource::Layers(layers))) => layers
                .iter()
                .map(|l| join(&self.in_namespace(l), &path[depth..]))
                .collect(),
            _ => vec![self.host_path_of(path)],
        }
    }

    fn mount_of(&self, path: &[String]) -> Option<(usize, &MountSource)> {
        self.mounts
            .iter()
            .rev()
            .find(|(target, _)| path.starts_with(target))
            .map(|(target, source)| (target.len(), source))
    }

    fn source_dir(&self, source: &MountSource) -> PathBuf {
        match source {
            MountSource::Bind { path, .. } => self.in_namespace(path),
            MountSource::Layers(layers) => self.in_namespace(&layers[0]),
            MountSource::Proc => PathBuf::from("/proc"),
            MountSource::Dev => PathBuf::from("/dev"),
        }
    }

    fn in_namespace(&self, path: &Path) -> PathBuf {
        self.ns_root.join(path.strip_prefix("/").unwrap_or(path))
    }
}

/// Resolves every symlink of `path`, a path of the pod's mount namespace.
pub(crate) fn resolve_in_namespace(ns_root: &Path, path: &Path) -> io::Result<PathBuf> {
    let resolved = walk(&path.to_string_lossy(), |p| join(ns_root, p))?;
    Ok(PathBuf::from(absolute(&resolved)))
}

/// Walks `path` component by component; `host_path_of` tells where a symlink-free path is, so
/// that each component can be checked for a symlink, which is then followed (an absolute one
/// from the root, a relative one from its directory). Missing components are kept as they are.
fn walk(path: &str, host_path_of: impl Fn(&[String]) -> PathBuf) -> io::Result<Vec<String>> {
    let mut resolved: Vec<String> = Vec::new();
    let mut pending: Vec<String> = parts(path);
    pending.reverse();
    let mut followed = 0;
    while let Some(part) = pending.pop() {
        if part == ".." {
            resolved.pop();
            continue;
        }
        resolved.push(part);
        let host = host_path_of(&resolved);
        let is_link = fs::symlink_metadata(&host).is_ok_and(|m| m.file_type().is_symlink());
        if !is_link {
            continue;
        }
        followed += 1;
        if followed > MAX_SYMLINKS {
            return Err(io::Error::other(format!(
                "too many levels of symbolic links in {path}"
            )));
        }
        let target = fs::read_link(&host)?.to_string_lossy().into_owned();
        resolved.pop();
        if target.starts_with('/') {
            resolved.clear();
        }
        pending.extend(parts(&target).into_iter().rev());
    }
    Ok(resolved)
}

fn join(base: &Path, parts: &[String]) -> PathBuf {
    let mut path = base.to_path_buf();
    path.extend(parts);
    path
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    /// A root with `bin -> usr/bin`, an absolute link and a volume mounted at /data whose
    /// files are links through `..data`, as in a configMap volume.
    #[test]
    fn resolves_through_mounts_and_links() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("rootfs");
        let usr = tmp.path().join("host-usr");
        let volume = tmp.path().join("volume");
        fs::create_dir_all(root.join("etc")).unwrap();
        fs::create_dir_all(usr.join("bin")).unwrap();
        fs::create_dir_all(volume.join("..2006")).unwrap();
        fs::write(usr.join("bin/tool"), "tool").unwrap();
        fs::write(volume.join("..2006/a.conf"), "a=1").unwrap();
        symlink("..2006", volume.join("..data")).unwrap();
        symlink("..data/a.conf", volume.join("a.conf")).unwrap();
        symlink("usr/bin", root.join("bin")).unwrap();
        symlink("/data/a.conf", root.join("etc/a.conf")).unwrap();
        let mounts = [
            Mount {
                target: "/usr".into(),
                source: MountSource::Layers(vec![usr.clone()]),
                read_only: true,
            },
            Mount {
                target: "/data".into(),
                source: MountSource::Bind {
                    path: volume.clone(),
                    volume_root: None,
                },
                read_only: true,
            },
        ];
        let view = ContainerView::new(Path::new("/"), &root, &mounts);
        let read = |p: &str| fs::read_to_string(view.host_path(p).unwrap()).unwrap();
        assert_eq!(read("/bin/tool"), "tool");
        assert_eq!(read("/etc/a.conf"), "a=1");
        assert_eq!(read("/etc/../data/./a.conf"), "a=1");
        assert_eq!(view.resolve("/bin/tool").unwrap(), ["usr", "bin", "tool"]);
        assert_eq!(view.list("/data").unwrap(), ["..2006", "..data", "a.conf"]);
        assert!(view.list("/").unwrap().contains(&"data".to_string()));
        assert!(fs::symlink_metadata(view.host_path("/etc/missing").unwrap()).is_err());
    }

    #[test]
    fn symlink_loops_are_errors() {
        let tmp = tempfile::tempdir().unwrap();
        symlink("b", tmp.path().join("a")).unwrap();
        symlink("a", tmp.path().join("b")).unwrap();
        let view = ContainerView::new(Path::new("/"), tmp.path(), &[]);
        assert!(view.resolve("/a").is_err());
    }
}
