//! The etcd backup and restore Jobs' container, run for real: its own `sh -c` script with the
//! environment the Job sets, as root on the host, against the e2e's real etcd. What differs from
//! a real pod is replaced in the script: each claim's mount path by the claim's directory,
//! the image's etcdctl by Debian's `/usr/bin/etcdctl`, and `/dev/termination-log` by a file,
//! read back as a kubelet reads it (with `FallbackToLogsOnError`, the end of the output when
//! the file is empty and the container failed:
//! pkg/kubelet/kuberuntime/kuberuntime_container.go `getTerminationMessage`).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use k8s_openapi::api::core::v1::{Container, Pod};
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

/// The image the operator's own Job steps name (the e2e operator's `--job-image`): this build's
/// binary runs them, as Debian's etcdctl stands for the image's.
pub const OPERATOR_IMAGE: &str = "curve-operator:e2e";

/// Runs the pod's init containers in turn, then its first container, as a kubelet does with
/// `restartPolicy: Never`: a failed step ends the pod. Each step that ran, by name, with
/// whether it is an init container; `secrets` holds the values of `(Secret, key)` the
/// containers' environment refers to (an optional one that is absent is left unset).
pub async fn run_steps(
    pod: &Pod,
    mounts: &[(String, PathBuf)],
    secrets: &BTreeMap<(String, String), String>,
) -> Result<Vec<(String, bool, Exit)>, String> {
    let spec = pod.spec.as_ref().ok_or("the Job's pod has no spec")?;
    let steps = (spec.init_containers.iter().flatten().map(|c| (c, true)))
        .chain(spec.containers.first().map(|c| (c, false)));
    let mut ran = Vec::new();
    for (container, init) in steps {
        let exit = run_container(pod, container, mounts, secrets).await?;
        let failed = exit.code != 0;
        ran.push((container.name.clone(), init, exit));
        if failed {
            break;
        }
    }
    Ok(ran)
}

async fn run_container(
    pod: &Pod,
    container: &Container,
    mounts: &[(String, PathBuf)],
    secrets: &BTreeMap<(String, String), String>,
) -> Result<Exit, String> {
    let command = container.command.clone().unwrap_or_default();
    let args = (container.args.iter().flatten()).cloned();
    let (program, args): (String, Vec<String>) = match command.split_first() {
        Some((program, rest)) => (program.clone(), rest.iter().cloned().chain(args).collect()),
        // The image's entrypoint: only the operator's is known here.
        None if container.image.as_deref() == Some(OPERATOR_IMAGE) => (
            crate::operator::binary().display().to_string(),
            args.collect(),
        ),
        None => return Err(format!("container {} has no command", container.name)),
    };
    let termination = TempDir::new(&format!(
        "{}-{}-termination",
        pod.name_any(),
        container.name
    ));
    let log = termination.path().join("termination-log");
    let args: Vec<String> = (args.iter()).map(|a| on_host(a, mounts, &log)).collect();
    let env = (container.env.iter().flatten()).filter_map(|e| {
        let value = match (
            &e.value,
            e.value_from
                .as_ref()
                .and_then(|f| f.secret_key_ref.as_ref()),
        ) {
            (Some(value), _) => on_host(value, mounts, &log),
            (None, Some(key)) => secrets.get(&(key.name.clone(), key.key.clone()))?.clone(),
            (None, None) => String::new(),
        };
        Some((e.name.clone(), value))
    });
    let out = tokio::process::Command::new(&program)
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
