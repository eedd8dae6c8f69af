//! The image's root file system, built afresh for each container (each container has its own
//! writable copy of the image): Curve's layout and config files, the stand-ins, and links into
//! the host's `/usr` (bind-mounted at run time) in place of Debian 9's.

use std::fs;
use std::os::unix::fs::{PermissionsExt, symlink};
use std::path::{Path, PathBuf};

use crate::error::{EmulationError, IoContext};
use crate::image::ImageFiles;
use crate::standins;

/// The roles that have `/curvebs/<role>/{conf,logs,data,sbin}` in the image.
pub(crate) const ROLES: &[&str] = &[
    "etcd",
    "mds",
    "chunkserver",
    "snapshotclone",
    "tools",
    "nebd",
    "nbd",
];

/// Host programs whose `/etc/alternatives` links the image root must have for scripts to run.
const SCRIPT_TOOLS: &[&str] = &[
    "sh", "bash", "sed", "grep", "awk", "df", "stat", "mkdir", "cp", "cat", "printf", "sleep",
    "env", "ls", "tr", "sort", "cut", "date", "head", "tail", "touch", "rm", "mv", "chmod", "ln",
    "echo", "test", "find", "xargs", "tee", "wc", "basename", "dirname", "readlink", "realpath",
    "hostname", "id", "getopt", "expr", "seq", "timeout", "true", "false",
];

/// The image's awk (Debian's default): scripts must not rely on gawk extensions.
const IMAGE_AWK: &str = "/usr/bin/mawk";

/// Environment the image sets (`ENV` in its Dockerfile), before the container's own.
pub(crate) const IMAGE_ENV: &[(&str, &str)] = &[
    (
        "PATH",
        "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    ),
    ("TZ", "Asia/Shanghai"),
];

/// Who the container is on the network, for `/etc/hosts` and `/etc/hostname`.
pub(crate) struct HostIdentity<'a> {
    pub hostname: &'a str,
    pub ip: &'a str,
}

/// Checks what the image root needs from the host, once per pod.
pub(crate) fn check_host() -> Result<(), EmulationError> {
    if !Path::new(IMAGE_AWK).exists() {
        return Err(EmulationError::MissingHostProgram {
            program: IMAGE_AWK.into(),
            why: "the Curve image's awk is mawk, so scripts are run with it (apt-get install mawk)"
                .into(),
        });
    }
    Ok(())
}

/// Builds the image root of one container at `root`.
pub(crate) fn build(
    root: &Path,
    image: &ImageFiles,
    identity: &HostIdentity,
) -> Result<(), EmulationError> {
    make_layout(root)?;
    copy_tree(image.conf_dir(), &root.join("curvebs/conf"))?;
    link_host_usr(root)?;
    write_etc(root, identity)?;
    for stand_in in standins::stand_ins(image.version()) {
        write_executable(
            &root.join(stand_in.path.trim_start_matches('/')),
            &stand_in.script,
        )?;
    }
    Ok(())
}

/// The extra layer laid over the host's `/usr`: the image has `curve_ops_tool` in `/usr/bin`.
pub(crate) fn build_usr_layer(layer: &Path, image: &ImageFiles) -> Result<(), EmulationError> {
    write_executable(
        &layer.join("bin/curve_ops_tool"),
        &standins::curve_ops_tool_script(image.version()),
    )
}

fn make_layout(root: &Path) -> Result<(), EmulationError> {
    let mut dirs: Vec<PathBuf> = ["curvebs/conf", "etc/curve", "etc/nebd", "etc/alternatives"]
        .iter()
        .chain(&["core", "root", "usr", "dev", "proc", "emulation"])
        .map(|d| root.join(d))
        .collect();
    for role in ROLES {
        for sub in ["conf", "logs", "data", "sbin"] {
            dirs.push(root.join("curvebs").join(role).join(sub));
        }
    }
    for dir in &dirs {
        fs::create_dir_all(dir).doing(|| format!("creating {}", dir.display()))?;
    }
    let tmp = root.join("tmp");
    fs::create_dir_all(&tmp).doing(|| format!("creating {}", tmp.display()))?;
    fs::set_permissions(&tmp, fs::Permissions::from_mode(0o1777))
        .doing(|| format!("chmod 1777 {}", tmp.display()))
}

/// Debian's merged /usr: the top-level directories are links into /usr, which the container
/// gets from the host at run time.
fn link_host_usr(root: &Path) -> Result<(), EmulationError> {
    for dir in ["bin", "lib", "lib64", "sbin"] {
        make_symlink(&format!("usr/{dir}"), &root.join(dir))?;
    }
    for (name, target) in alternatives_needed() {
        let link = root.join("etc/alternatives").join(&name);
        if !link.exists() {
            make_symlink(&target.to_string_lossy(), &link)?;
        }
    }
    // The dynamic loader finds libraries faster (and in unusual directories) with the cache.
    if Path::new("/etc/ld.so.cache").exists() {
        fs::copy("/etc/ld.so.cache", root.join("etc/ld.so.cache"))
            .doing(|| "copying /etc/ld.so.cache".into())?;
    }
    Ok(())
}

/// The `/etc/alternatives` links that [`SCRIPT_TOOLS`] go through on this host, with awk
/// pointing to mawk as in the image.
fn alternatives_needed() -> Vec<(String, PathBuf)> {
    let mut links = vec![("awk".to_string(), PathBuf::from(IMAGE_AWK))];
    for tool in SCRIPT_TOOLS {
        let mut path = PathBuf::from("/usr/bin").join(tool);
        // A short chain of links (tool -> /etc/alternatives/x -> ...); give up on loops.
        for _ in 0..8 {
            let Ok(target) = fs::read_link(&path) else {
                break;
            };
            let target = path.parent().unwrap_or(Path::new("/")).join(target);
            if let Ok(name) = target.strip_prefix("/etc/alternatives") {
                let name = name.to_string_lossy().into_owned();
                if let Ok(alternative) = fs::read_link(&target)
                    && !links.iter().any(|(n, _)| *n == name)
                {
                    links.push((name, alternative));
                }
            }
            path = target;
        }
    }
    links
}

fn write_etc(root: &Path, identity: &HostIdentity) -> Result<(), EmulationError> {
    let files = [
        (
            "etc/passwd",
            "root:x:0:0:root:/root:/bin/bash\n".to_string(),
        ),
        ("etc/group", "root:x:0:\n".to_string()),
        ("etc/hostname", format!("{}\n", identity.hostname)),
        (
            "etc/hosts",
            format!(
                "# Kubernetes-managed hosts file.\n127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n{}\t{}\n",
                identity.ip, identity.hostname
            ),
        ),
    ];
    for (path, content) in files {
        let path = root.join(path);
        fs::write(&path, content).doing(|| format!("writing {}", path.display()))?;
    }
    Ok(())
}

fn copy_tree(from: &Path, to: &Path) -> Result<(), EmulationError> {
    fs::create_dir_all(to).doing(|| format!("creating {}", to.display()))?;
    let entries = fs::read_dir(from).doing(|| format!("reading {}", from.display()))?;
    for entry in entries {
        let entry = entry.doing(|| format!("reading {}", from.display()))?;
        let (source, target) = (entry.path(), to.join(entry.file_name()));
        if source.is_dir() {
            copy_tree(&source, &target)?;
        } else {
            fs::copy(&source, &target).doing(|| format!("copying {}", source.display()))?;
            fs::set_permissions(&target, fs::Permissions::from_mode(0o644))
                .doing(|| format!("chmod {}", target.display()))?;
        }
    }
    Ok(())
}

fn write_executable(path: &Path, content: &str) -> Result<(), EmulationError> {
    if let Some(parent) = path.parent() {
        fs::create_dir_all(parent).doing(|| format!("creating {}", parent.display()))?;
    }
    fs::write(path, content).doing(|| format!("writing {}", path.display()))?;
    fs::set_permissions(path, fs::Permissions::from_mode(0o755))
        .doing(|| format!("chmod {}", path.display()))
}

fn make_symlink(target: &str, link: &Path) -> Result<(), EmulationError> {
    symlink(target, link).doing(|| format!("linking {} -> {target}", link.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn awk_is_mawk_whatever_the_host_prefers() {
        let links = alternatives_needed();
        let awk: Vec<_> = links.iter().filter(|(name, _)| name == "awk").collect();
        assert_eq!(awk, vec![&("awk".to_string(), PathBuf::from(IMAGE_AWK))]);
    }
}
