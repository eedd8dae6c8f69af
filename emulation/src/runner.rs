//! Running one container: a shell script sets up its mounts in a fresh mount (and UTS)
//! namespace inside the pod's, then execs the command chrooted into the image root with
//! exactly the container's environment.

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use crate::error::{EmulationError, IoContext};
use crate::holder::HOST_PATH;
use crate::mounts::{ContainerView, Mount, MountSource};
use crate::pod::ContainerStatus;
use crate::shell::quote;

/// How often a running container is checked on.
const POLL: Duration = Duration::from_millis(5);

/// Everything needed to start one container.
pub(crate) struct Launch<'a> {
    /// The container's directory: setup script, logs, markers.
    pub dir: &'a Path,
    /// Its image root, in the pod's namespace.
    pub rootfs: &'a Path,
    pub mounts: &'a [Mount],
    pub hostname: &'a str,
    pub working_dir: &'a str,
    /// The complete process environment.
    pub env: &'a BTreeMap<String, String>,
    pub argv: &'a [String],
    pub holder_pid: u32,
    pub timeout: Duration,
}

/// What came of running a container.
pub(crate) struct Outcome {
    pub status: ContainerStatus,
    pub stdout: String,
    pub stderr: String,
}

/// Runs the container to its end, or kills it after the timeout.
pub(crate) fn run(launch: &Launch, view: &ContainerView) -> Result<Outcome, EmulationError> {
    if let Err(why) = check_executable(launch, view) {
        return Ok(Outcome {
            status: ContainerStatus::FailedToStart(why),
            stdout: String::new(),
            stderr: String::new(),
        });
    }
    let paths = Paths::of(launch.dir);
    let script = setup_script(launch, &paths);
    fs::write(&paths.setup, script).doing(|| format!("writing {}", paths.setup.display()))?;
    fs::set_permissions(&paths.setup, fs::Permissions::from_mode(0o755))
        .doing(|| format!("chmod {}", paths.setup.display()))?;
    let status = spawn_and_wait(launch, &paths)?;
    Ok(Outcome {
        status,
        stdout: read_lossy(&paths.stdout),
        stderr: read_lossy(&paths.stderr),
    })
}

struct Paths {
    setup: PathBuf,
    setup_log: PathBuf,
    started: PathBuf,
    stdout: PathBuf,
    stderr: PathBuf,
}

impl Paths {
    fn of(dir: &Path) -> Paths {
        Paths {
            setup: dir.join("setup.sh"),
            setup_log: dir.join("setup.log"),
            started: dir.join("started"),
            stdout: dir.join("stdout"),
            stderr: dir.join("stderr"),
        }
    }
}

/// The runtime looks the executable up before it starts anything (and reports a StartError,
/// not an exit code, when it is missing).
fn check_executable(launch: &Launch, view: &ContainerView) -> Result<(), String> {
    let program = &launch.argv[0];
    if program.contains('=') {
        // `env NAME=VALUE... PROGRAM` would take it for a variable.
        return Err(format!(
            "the emulation cannot start a program whose name contains '=': {program:?}"
        ));
    }
    let is_executable = |path: &str| {
        view.host_path(path)
            .and_then(fs::metadata)
            .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
    };
    if program.contains('/') {
        let absolute = if program.starts_with('/') {
            program.clone()
        } else {
            format!("{}/{program}", launch.working_dir.trim_end_matches('/'))
        };
        if view.host_path(&absolute).and_then(fs::metadata).is_err() {
            return Err(format!(
                "StartError: exec: {program:?}: stat {program}: no such file or directory"
            ));
        }
        if !is_executable(&absolute) {
            return Err(format!("StartError: exec: {program:?}: permission denied"));
        }
        return Ok(());
    }
    let path = launch.env.get("PATH").map(String::as_str).unwrap_or("");
    let found = path
        .split(':')
        .filter(|dir| !dir.is_empty())
        .any(|dir| is_executable(&format!("{dir}/{program}")));
    if found {
        Ok(())
    } else {
        Err(format!(
            "StartError: exec: {program:?}: executable file not found in $PATH"
        ))
    }
}

/// The script run (as root, on the host's programs) in the container's new namespaces; its
/// arguments are the environment entries followed by the command line.
fn setup_script(launch: &Launch, paths: &Paths) -> String {
    let mut script = format!(
        r#"#!/bin/sh
# Sets up one container of an emulated pod, then runs it (written by curve-image-emulation).
ROOT={root}
LOG={log}
fail() {{ printf '%s\n' "$*" >> "$LOG"; exit 1; }}
{functions}
"#,
        root = quote(&launch.rootfs.to_string_lossy()),
        log = quote(&paths.setup_log.to_string_lossy()),
        functions = SETUP_FUNCTIONS,
    );
    for mount in launch.mounts {
        script.push_str(&mount_line(mount));
        script.push('\n');
    }
    script.push_str(&format!(
        "mkdir -p \"$ROOT\"{wd} 2>>\"$LOG\" || fail 'cannot create the working directory'\n\
         hostname {host} 2>>\"$LOG\" || fail 'cannot set the hostname'\n\
         : > {started}\n\
         exec /usr/sbin/chroot \"$ROOT\" /usr/bin/env -i -C {wd} -- \"$@\"\n",
        wd = quote(launch.working_dir),
        host = quote(launch.hostname),
        started = quote(&paths.started.to_string_lossy()),
    ));
    script
}

fn mount_line(mount: &Mount) -> String {
    let target = quote(&mount.target);
    let read_only = if mount.read_only { "1" } else { "0" };
    match &mount.source {
        MountSource::Bind { path, volume_root } => format!(
            "bind {} {target} {read_only} {}",
            quote(&path.to_string_lossy()),
            quote(
                &volume_root
                    .as_ref()
                    .map_or(String::new(), |r| r.to_string_lossy().into_owned())
            ),
        ),
        MountSource::Layers(layers) => {
            let layers: Vec<String> = layers
                .iter()
                .map(|l| l.to_string_lossy().into_owned())
                .collect();
            format!("layers {target} {}", quote(&layers.join(":")))
        }
        MountSource::Proc => format!("mount_proc {target}"),
        MountSource::Dev => format!("mount_dev {target}"),
    }
}

/// Shell functions of the setup script. Every failure is written to $LOG and ends the script
/// before the container starts.
const SETUP_FUNCTIONS: &str = r#"
# bind SOURCE TARGET READ_ONLY VOLUME_ROOT: VOLUME_ROOT is set for a subPath, which is created
# as a directory when missing and must resolve inside the volume (as the kubelet checks).
bind() {
    src=$1 dst=$ROOT$2
    if [ -n "$4" ]; then
        if [ ! -e "$src" ] && [ ! -L "$src" ]; then
            mkdir -p "$src" 2>>"$LOG" || fail "failed to create subPath directory for volumeMount $2"
        fi
        real=$(realpath -e "$src" 2>>"$LOG") || fail "failed to prepare subPath for volumeMount $2: $src does not resolve"
        base=$(realpath -e "$4")
        case $real in
            "$base" | "$base"/*) ;;
            *) fail "failed to prepare subPath for volumeMount $2: $real is outside the volume $base" ;;
        esac
        src=$real
    fi
    if [ -d "$src" ]; then
        mkdir -p "$dst" 2>>"$LOG" || fail "cannot create the mount point $2"
    else
        { mkdir -p "${dst%/*}" && { [ -e "$dst" ] || : > "$dst"; }; } 2>>"$LOG" || fail "cannot create the mount point $2"
    fi
    mount --bind "$src" "$dst" 2>>"$LOG" || fail "cannot mount $src at $2"
    if [ "$3" = 1 ]; then
        mount -o remount,bind,ro "$dst" 2>>"$LOG" || fail "cannot make $2 read-only"
    fi
}

# layers TARGET UPPER:...:LOWER: a read-only overlay; a read-only bind of the lowest layer
# where overlayfs is missing.
layers() {
    lowest=${2##*:}
    if ! mount -t overlay overlay -o "ro,lowerdir=$2" "$ROOT$1" 2>>"$LOG"; then
        mount --bind "$lowest" "$ROOT$1" 2>>"$LOG" || fail "cannot mount $1"
        mount -o remount,bind,ro "$ROOT$1" 2>>"$LOG" || fail "cannot make $1 read-only"
    fi
}

mount_proc() {
    mount -t proc proc "$ROOT$1" 2>>"$LOG" || fail "cannot mount $1"
}

mount_dev() {
    dev=$ROOT$1
    mount -t tmpfs -o mode=755,nosuid tmpfs "$dev" 2>>"$LOG" || fail "cannot mount $1"
    for node in null zero full random urandom tty; do
        : > "$dev/$node" && mount --bind "/dev/$node" "$dev/$node" 2>>"$LOG" || fail "cannot bind /dev/$node"
    done
    ln -s /proc/self/fd "$dev/fd"
    ln -s /proc/self/fd/0 "$dev/stdin"
    ln -s /proc/self/fd/1 "$dev/stdout"
    ln -s /proc/self/fd/2 "$dev/stderr"
    mkdir -p "$dev/shm" "$dev/pts"
    mount -t tmpfs -o mode=1777,nosuid,nodev tmpfs "$dev/shm" 2>>"$LOG" || fail "cannot mount $1/shm"
}
"#;

/// Starts the container in the pod's namespace and waits for it; whatever it left running is
/// killed when it ends, as the runtime does when a container's first process exits.
fn spawn_and_wait(launch: &Launch, paths: &Paths) -> Result<ContainerStatus, EmulationError> {
    let stdout =
        File::create(&paths.stdout).doing(|| format!("creating {}", paths.stdout.display()))?;
    let stderr =
        File::create(&paths.stderr).doing(|| format!("creating {}", paths.stderr.display()))?;
    let env_entries = launch.env.iter().map(|(k, v)| format!("{k}={v}"));
    let mut child = Command::new("nsenter")
        .arg(format!("--mount=/proc/{}/ns/mnt", launch.holder_pid))
        .args([
            "--",
            "unshare",
            "--mount",
            "--uts",
            "--propagation",
            "private",
            "--",
            "/bin/sh",
        ])
        .arg(&paths.setup)
        .args(env_entries)
        .args(launch.argv)
        .env_clear()
        .env("PATH", HOST_PATH)
        .stdin(Stdio::null())
        .stdout(stdout)
        .stderr(stderr)
        .process_group(0)
        .spawn()
        .doing(|| "starting a container (nsenter)".into())?;
    let group = child.id() as i32;
    let deadline = Instant::now() + launch.timeout;
    let exit = loop {
        if let Some(status) = child
            .try_wait()
            .doing(|| "waiting for a container".into())?
        {
            break Some(status);
        }
        if Instant::now() >= deadline {
            break None;
        }
        thread::sleep(POLL);
    };
    kill_group(group);
    let Some(exit) = exit else {
        let _ = child.wait();
        return Ok(ContainerStatus::TimedOut(launch.timeout));
    };
    if !paths.started.exists() {
        let log = read_lossy(&paths.setup_log);
        let why = if log.trim().is_empty() {
            format!(
                "the container's setup failed ({exit}): {}",
                read_lossy(&paths.stderr).trim()
            )
        } else {
            log.trim().to_string()
        };
        return Ok(ContainerStatus::FailedToStart(why));
    }
    // A process killed by signal N exits with 128 + N, as a container runtime reports it.
    let code = exit
        .code()
        .unwrap_or_else(|| 128 + exit.signal().unwrap_or(0));
    Ok(ContainerStatus::Exited(code))
}

fn kill_group(group: i32) {
    // SAFETY: kill(2) on the process group of a child this module started.
    unsafe {
        libc::kill(-group, libc::SIGKILL);
    }
}

fn read_lossy(path: &Path) -> String {
    fs::read(path)
        .map(|bytes| String::from_utf8_lossy(&bytes).into_owned())
        .unwrap_or_default()
}
