//! Child processes the suite starts (etcd members, the operator): killed on drop, even when a
//! test panics, and recorded by pid so a later run can stop those a killed run left behind.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

/// Where the pids of running children are recorded.
fn pid_dir() -> PathBuf {
    std::env::temp_dir().join("curve-e2e-pids")
}

fn cmdline(pid: u32) -> Option<String> {
    std::fs::read(format!("/proc/{pid}/cmdline"))
        .ok()
        .map(|b| String::from_utf8_lossy(&b).replace('\0', " "))
}

/// A child process, SIGKILLed and reaped on drop.
pub struct Process {
    pub name: String,
    child: Option<Child>,
    pid_file: PathBuf,
}

impl Process {
    /// Starts `program` with `args`, stdout and stderr appended to `log`.
    pub fn spawn(
        name: &str,
        program: &Path,
        args: &[String],
        envs: &[(&str, &str)],
        log: &Path,
    ) -> Process {
        let out = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .expect("open a log file");
        let child = Command::new(program)
            .args(args)
            .envs(envs.iter().copied())
            .stdin(Stdio::null())
            .stdout(out.try_clone().expect("clone a file handle"))
            .stderr(out)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", program.display()));
        let _ = std::fs::create_dir_all(pid_dir());
        let pid_file = pid_dir().join(child.id().to_string());
        // What the process runs, so a stale record never kills an unrelated process that
        // reuses the pid.
        let _ = std::fs::write(&pid_file, cmdline(child.id()).unwrap_or_default());
        Process {
            name: name.to_string(),
            child: Some(child),
            pid_file,
        }
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Whether the process still runs (false once it exited or was killed).
    pub fn is_running(&mut self) -> bool {
        match self.child.as_mut() {
            Some(child) => matches!(child.try_wait(), Ok(None)),
            None => false,
        }
    }

    /// SIGKILL, as a crash or an OOM kill would stop it; waits until it is gone.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        let _ = std::fs::remove_file(&self.pid_file);
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Kills children a previous run could not stop (its test process was itself killed): only
/// the recorded pids whose command line is still the recorded one.
pub fn kill_stale() {
    let Ok(entries) = std::fs::read_dir(pid_dir()) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let recorded = std::fs::read_to_string(&path).unwrap_or_default();
        if let Some(pid) = path
            .file_name()
            .and_then(|n| n.to_str())
            .and_then(|n| n.parse::<u32>().ok())
            && !recorded.is_empty()
            && cmdline(pid).as_deref() == Some(recorded.as_str())
        {
            let _ = Command::new("kill").args(["-9", &pid.to_string()]).status();
        }
        let _ = std::fs::remove_file(&path);
    }
}
