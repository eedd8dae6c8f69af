//! What the ChunkServer's start wrapper (`chunkserver_start_script`, src/desired/start.rs)
//! decides before the daemon starts, played by the kubelet on the pod's volume: its identity
//! rule. The first start records `<node> <ip>` in the identity file on the data volume; a later
//! start from another IP is refused with the wrapper's own message.

use std::path::{Path, PathBuf};

use curve_operator::desired::start::{IDENTITY_FILE, moved_volume_refusal, refusal_message};

/// What the wrapper does with the identity it finds.
#[derive(Debug, PartialEq)]
pub enum Identity {
    /// No identity yet: record this line.
    Record(String),
    /// Recorded from this IP: start.
    Home,
    /// Recorded from another IP: exit 1 with this termination message.
    Refuse(String),
}

/// The wrapper's rule: `read -r node ip < file`, then `[ "$ip" != "$POD_IP" ]` refuses.
pub fn identity(recorded: Option<&str>, node: &str, ip: &str) -> Identity {
    let Some(recorded) = recorded else {
        return Identity::Record(format!("{node} {ip}\n"));
    };
    let mut words = recorded
        .lines()
        .next()
        .unwrap_or_default()
        .split_whitespace();
    let (home_node, home_ip) = (words.next().unwrap_or(""), words.next().unwrap_or(""));
    if home_ip == ip {
        Identity::Home
    } else {
        Identity::Refuse(refusal_message(&moved_volume_refusal(
            home_node, home_ip, node, ip,
        )))
    }
}

/// The identity file in the directory that backs the data volume.
fn identity_file(volume: &Path) -> PathBuf {
    volume.join(Path::new(IDENTITY_FILE).file_name().expect("a file name"))
}

/// Runs the identity rule on `volume` for a start on `node` (`ip`): `Err` with the
/// termination message when the wrapper refuses.
pub fn check_identity(volume: &Path, node: &str, ip: &str) -> Result<(), String> {
    let file = identity_file(volume);
    let recorded = std::fs::read_to_string(&file).ok();
    match identity(recorded.as_deref(), node, ip) {
        Identity::Home => Ok(()),
        Identity::Record(line) => {
            std::fs::write(&file, line).map_err(|e| format!("{}: {e}", file.display()))
        }
        Identity::Refuse(message) => Err(message),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_start_records_the_node_and_a_start_elsewhere_is_refused() {
        assert_eq!(
            identity(None, "node-1", "127.0.0.101"),
            Identity::Record("node-1 127.0.0.101\n".into())
        );
        let recorded = "node-1 127.0.0.101\n";
        assert_eq!(
            identity(Some(recorded), "node-1", "127.0.0.101"),
            Identity::Home
        );
        // The wrapper compares the IP only: the same address under another node name starts.
        assert_eq!(
            identity(Some(recorded), "node-1b", "127.0.0.101"),
            Identity::Home
        );
        let Identity::Refuse(message) = identity(Some(recorded), "node-4", "127.0.0.104") else {
            panic!("not refused");
        };
        assert_eq!(
            message,
            refusal_message(&moved_volume_refusal(
                "node-1",
                "127.0.0.101",
                "node-4",
                "127.0.0.104"
            ))
        );
        assert!(message.starts_with("cannot start: this ChunkServer's data was registered from node node-1 (127.0.0.101) and its pod is now on node node-4 (127.0.0.104)"), "{message}");
    }

    #[test]
    fn the_rule_runs_on_the_volume_directory() {
        let volume = crate::util::TempDir::new("identity");
        check_identity(volume.path(), "node-2", "127.0.0.102").unwrap();
        let written = std::fs::read_to_string(volume.path().join("curve-operator.identity"));
        assert_eq!(written.unwrap(), "node-2 127.0.0.102\n");
        check_identity(volume.path(), "node-2", "127.0.0.102").unwrap();
        let refused = check_identity(volume.path(), "node-3", "127.0.0.103").unwrap_err();
        assert!(
            refused.contains("from node node-2 (127.0.0.102)"),
            "{refused}"
        );
    }
}
