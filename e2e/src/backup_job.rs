//! The etcd backup Job's container, run for real: its own `sh -c` script with the environment
//! the Job sets, against the e2e's real etcd, with Debian's `/usr/bin/etcdctl` for the image's
//! `/curvebs/etcd/sbin/etcdctl`, the backup claim's directory as `/backup`, and the termination
//! message read back as a kubelet reads `/dev/termination-log` (with `FallbackToLogsOnError`,
//! the end of the output when the file is empty and the container failed:
//! pkg/kubelet/kuberuntime/kuberuntime_container.go `getTerminationMessage`).

use std::path::Path;

use k8s_openapi::api::core::v1::Pod;

use crate::kubelet::Exit;

/// The component label of the operator's backup Jobs and pods (its `names::ETCD_BACKUP`).
pub const COMPONENT: &str = "etcd-backup";
/// What Debian's etcd-client package installs.
const ETCDCTL: &str = "/usr/bin/etcdctl";
/// A kubelet keeps at most this much of a termination message.
const MAX_MESSAGE: usize = 4096;

/// Runs the pod's first container with `backup` as its `/backup`; the exit and termination
/// message.
pub async fn run(pod: &Pod, backup: &Path) -> Result<Exit, String> {
    let container = (pod.spec.as_ref())
        .and_then(|s| s.containers.first())
        .ok_or("the backup pod has no container")?;
    let command = container.command.clone().unwrap_or_default();
    let (program, args) = command
        .split_first()
        .ok_or("the backup container has no command")?;
    let log = backup.join(format!(
        ".termination-log-{}",
        pod.metadata.name.as_deref().unwrap_or("pod")
    ));
    let _ = std::fs::remove_file(&log);
    let env = (container.env.iter().flatten())
        .map(|e| (e.name.clone(), e.value.clone().unwrap_or_default()));
    let out = tokio::process::Command::new(program)
        .args(args)
        .envs(env)
        .env("CURVE_ETCDCTL", ETCDCTL)
        .env("CURVE_BACKUP_DIR", backup)
        .env("CURVE_TERMINATION_LOG", &log)
        .output()
        .await
        .map_err(|e| format!("run {program}: {e}"))?;
    let mut message = std::fs::read_to_string(&log).unwrap_or_default();
    let _ = std::fs::remove_file(&log);
    let code = out.status.code().unwrap_or(137);
    let fallback = container.termination_message_policy.as_deref() == Some("FallbackToLogsOnError");
    if message.is_empty() && code != 0 && fallback {
        let output = String::from_utf8_lossy(&out.stdout).to_string()
            + &String::from_utf8_lossy(&out.stderr);
        let mut start = output.len().saturating_sub(2048);
        while !output.is_char_boundary(start) {
            start += 1;
        }
        message = output[start..].to_string();
    }
    let mut end = message.len().min(MAX_MESSAGE);
    while !message.is_char_boundary(end) {
        end -= 1;
    }
    message.truncate(end);
    Ok(Exit {
        code,
        output: message,
    })
}
