//! Cluster DNS for the daemons the suite runs on the host: `/etc/hosts` lines for the pods'
//! names behind their headless Services (`<pod>.<service>.<namespace>.svc`), as CoreDNS would
//! answer them. Every line carries a marker and is removed again on drop.

use std::sync::Mutex;

const HOSTS: &str = "/etc/hosts";
const MARKER: &str = "# curve-operator-e2e";

static LOCK: Mutex<()> = Mutex::new(());

fn edit(change: impl FnOnce(Vec<String>) -> Vec<String>) {
    let _guard = LOCK.lock().unwrap_or_else(|e| e.into_inner());
    let text = std::fs::read_to_string(HOSTS).unwrap_or_default();
    let lines = change(text.lines().map(str::to_string).collect());
    let mut out = lines.join("\n");
    out.push('\n');
    // Written in place: /etc/hosts may be a mount point that a rename cannot replace.
    if let Err(e) = std::fs::write(HOSTS, out) {
        panic!("cannot write {HOSTS}: {e} (the e2e suite runs as root)");
    }
}

/// Whether the suite may edit /etc/hosts.
pub fn writable() -> Result<(), String> {
    std::fs::OpenOptions::new()
        .append(true)
        .open(HOSTS)
        .map(|_| ())
        .map_err(|e| format!("cannot write {HOSTS}: {e}"))
}

/// Removes every line any run of the suite added.
pub fn remove_all_stale() {
    edit(|lines| lines.into_iter().filter(|l| !l.contains(MARKER)).collect());
}

/// The entries of one test, tagged with its namespace.
pub struct HostsEntries {
    tag: String,
}

impl HostsEntries {
    pub fn new(namespace: &str) -> HostsEntries {
        HostsEntries {
            tag: format!("{MARKER} {namespace}"),
        }
    }

    /// Adds `ip name` unless the name is there already with that address; a name that moved to
    /// another address is replaced.
    pub fn set(&self, ip: &str, name: &str) {
        let line = format!("{ip} {name} {}", self.tag);
        edit(|lines| {
            let mut kept: Vec<String> = lines
                .into_iter()
                .filter(|l| !(l.ends_with(&self.tag) && l.split_whitespace().nth(1) == Some(name)))
                .collect();
            kept.push(line);
            kept
        });
    }

    pub fn remove_all(&self) {
        edit(|lines| {
            lines
                .into_iter()
                .filter(|l| !l.ends_with(&self.tag))
                .collect()
        });
    }
}

impl Drop for HostsEntries {
    fn drop(&mut self) {
        self.remove_all();
    }
}
