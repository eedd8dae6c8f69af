//! The pod's mount namespace: a small process in a private mount namespace that holds the
//! pod's ext4 volumes mounted, as a node holds a pod's volumes mounted while the pod lives.
//! Containers are started inside it (each then gets its own namespace on top), and this process
//! reaches the files through `/proc/<pid>/root`. When it is killed the namespace dies and the
//! loop mounts go with it: nothing is mounted on the host itself.

use std::fs::File;
use std::io::{BufRead, BufReader};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use crate::error::{EmulationError, IoContext};
use crate::shell::quote;
use crate::volumes::Ext4Mount;

/// PATH for the host programs the emulation runs.
pub(crate) const HOST_PATH: &str = "/usr/sbin:/usr/bin:/sbin:/bin";

/// How long dropping waits for the loop devices to be released.
const RELEASE_TIMEOUT: Duration = Duration::from_secs(5);

pub(crate) struct Holder {
    child: Child,
    images: Vec<PathBuf>,
}

impl Holder {
    /// Starts the namespace with `mounts` in place; its errors go to `log`.
    pub(crate) fn start(mounts: &[Ext4Mount], log: &Path) -> Result<Holder, EmulationError> {
        let script = holder_script(mounts);
        let log_file = File::create(log).doing(|| format!("creating {}", log.display()))?;
        let mut child = Command::new("unshare")
            .args(["--mount", "--propagation", "private", "--", "/bin/sh", "-c"])
            .arg(&script)
            .env_clear()
            .env("PATH", HOST_PATH)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(log_file)
            // Its own group, so that dropping also kills the `sleep` it waits with.
            .process_group(0)
            .spawn()
            .doing(|| "starting the pod's mount namespace (unshare)".into())?;
        let mut ready = String::new();
        let stdout = child.stdout.take().expect("stdout is piped");
        let _ = BufReader::new(stdout).read_line(&mut ready);
        let holder = Holder {
            child,
            images: mounts.iter().map(|m| m.image.clone()).collect(),
        };
        if ready.trim() != "ready" {
            drop(holder);
            let why = std::fs::read_to_string(log).unwrap_or_default();
            return Err(EmulationError::Setup(format!(
                "setting up the pod's mount namespace failed: {}",
                why.trim()
            )));
        }
        Ok(holder)
    }

    pub(crate) fn pid(&self) -> u32 {
        self.child.id()
    }

    /// This process's way into the namespace: a path of the namespace is reached below it.
    pub(crate) fn ns_root(&self) -> PathBuf {
        PathBuf::from(format!("/proc/{}/root", self.pid()))
    }
}

/// Mounts, says "ready", then waits; it also ends by itself if this process dies.
fn holder_script(mounts: &[Ext4Mount]) -> String {
    let mut script = String::from("set -e\n");
    for mount in mounts {
        script.push_str(&format!(
            "mount -o loop {} {}\n",
            quote(&mount.image.to_string_lossy()),
            quote(&mount.mount_point.to_string_lossy())
        ));
    }
    script.push_str(&format!(
        "echo ready\nwhile kill -0 {} 2>/dev/null; do sleep 1; done\n",
        std::process::id()
    ));
    script
}

impl Drop for Holder {
    fn drop(&mut self) {
        // SAFETY: kill(2) on the process group this struct started; no memory is involved.
        unsafe {
            libc::kill(-(self.child.id() as i32), libc::SIGKILL);
        }
        let _ = self.child.wait();
        // The loop devices are released once the namespace is gone: wait for that, so that the
        // next run of the pod can mount the same image.
        let deadline = Instant::now() + RELEASE_TIMEOUT;
        while self.images.iter().any(|image| still_attached(image)) && Instant::now() < deadline {
            thread::sleep(Duration::from_millis(20));
        }
    }
}

fn still_attached(image: &Path) -> bool {
    Command::new("losetup")
        .arg("-j")
        .arg(image)
        .env("PATH", HOST_PATH)
        .output()
        .is_ok_and(|out| !out.stdout.is_empty())
}
