//! The etcd backup and restore Jobs' container, run for real: its own `sh -c` script with the
//! environment the Job sets, as root on the host, against the e2e's real etcd. What differs from
//! a real pod is replaced in the script: each claim's mount path by the claim's directory,
//! the image's etcdctl by Debian's `/usr/bin/etcdctl`, and `/dev/termination-log` by a file,
//! read back as a kubelet reads it (with `FallbackToLogsOnError`, the end of the output when
//! the file is empty and the container failed:
//! pkg/kubelet/kuberuntime/kuberuntime_container.go `getTerminationMessage`).

use std::path::{Path, PathBuf};

use k8s_openapi::api::core::v1::Pod;
use kube::ResourceExt;

use crate::kubelet::Exit;
use crate::util::TempDir;
use curve_operator::names::IMAGE_ETCDCTL;

/// What Debian's etcd-client package installs.
const ETCDCTL: &str = "/usr/bin/etcdctl";
/// A kubelet keeps at most this much of a termination message.
const MAX_MESSAGE: usize = 4096;
/// And of the logs, when it falls back to them.
const MAX_LOG_TAIL: usize = 2048;

/// Runs the pod's first container with each `(mount path, directory)` of `mounts` standing for
/// the claim mounted there; its exit and termination message.
pub async fn run(pod: &Pod, mounts: &[(String, PathBuf)]) -> Result<Exit, String> {
    let container = (pod.spec.as_ref())
        .and_then(|s| s.containers.first())
        .ok_or("the Job's pod has no container")?;
    let command = container.command.clone().unwrap_or_default();
    let (program, args) = command
        .split_first()
        .ok_or("the Job's container has no command")?;
    let termination = TempDir::new(&format!("{}-termination", pod.name_any()));
    let log = termination.path().join("termination-log");
    let args: Vec<String> = (args.iter()).map(|a| on_host(a, mounts, &log)).collect();
    let env = (container.env.iter().flatten())
        .map(|e| (e.name.clone(), e.value.clone().unwrap_or_default()));
    let out = tokio::process::Command::new(program)
        .args(&args)
        .envs(env)
        .env("ETCDCTL_API", "3")
        .output()
        .await
        .map_err(|e| format!("run {program}: {e}"))?;
    let mut message = std::fs::read_to_string(&log).unwrap_or_default();
    let code = out.status.code().unwrap_or(137);
    let fallback = container.termination_message_policy.as_deref() == Some("FallbackToLogsOnError");
    if message.is_empty() && code != 0 && fallback {
        let output = String::from_utf8_lossy(&out.stdout).to_string()
            + &String::from_utf8_lossy(&out.stderr);
        message = output[floor_boundary(&output, output.len().saturating_sub(MAX_LOG_TAIL))..]
            .to_string();
    }
    message.truncate(floor_boundary(&message, message.len().min(MAX_MESSAGE)));
    Ok(Exit {
        code,
        output: message,
    })
}

/// An argument as it runs on the host: the longest mount paths replaced first, so `/backup`
/// never cuts into `/backup-old`'s replacement.
fn on_host(arg: &str, mounts: &[(String, PathBuf)], log: &Path) -> String {
    let mut mounts: Vec<&(String, PathBuf)> = mounts.iter().collect();
    mounts.sort_by_key(|(path, _)| std::cmp::Reverse(path.len()));
    let mut arg = (arg.replace(IMAGE_ETCDCTL, ETCDCTL))
        .replace("/dev/termination-log", &log.display().to_string());
    for (path, dir) in mounts {
        arg = arg.replace(path.as_str(), &dir.display().to_string());
    }
    arg
}

/// The largest char boundary of `text` at or below `at`.
fn floor_boundary(text: &str, at: usize) -> usize {
    let mut at = at.min(text.len());
    while !text.is_char_boundary(at) {
        at -= 1;
    }
    at
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mount_paths_etcdctl_and_the_termination_log_are_replaced_longest_first() {
        let mounts = vec![
            ("/backup".to_string(), PathBuf::from("/tmp/b")),
            ("/backup/snapshots".to_string(), PathBuf::from("/tmp/s")),
        ];
        let arg =
            "/curvebs/etcd/sbin/etcdctl save /backup/snapshots/x /backup/y > /dev/termination-log";
        assert_eq!(
            on_host(arg, &mounts, Path::new("/tmp/log")),
            "/usr/bin/etcdctl save /tmp/s/x /tmp/b/y > /tmp/log"
        );
    }

    #[test]
    fn a_boundary_never_cuts_a_character() {
        assert_eq!(floor_boundary("aé", 2), 1);
        assert_eq!(floor_boundary("aé", 3), 3);
    }
}
