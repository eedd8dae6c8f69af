//! The binary as a user meets it: its commands, as docs/user/cli.md lists them, and what `run` says
//! at start, in plain text when its output is a pipe (a pod's log), not a terminal.

use std::path::Path;
use std::process::Command;

/// The subcommands `curve-operator --help` lists, in its order (clap's own `help` aside).
fn subcommands() -> Vec<String> {
    let output = Command::new(env!("CARGO_BIN_EXE_curve-operator"))
        .arg("--help")
        .output()
        .unwrap();
    assert!(output.status.success());
    let help = String::from_utf8(output.stdout).unwrap();
    help.lines()
        .skip_while(|line| *line != "Commands:")
        .skip(1)
        .take_while(|line| !line.trim().is_empty())
        .filter_map(|line| line.split_whitespace().next())
        .filter(|name| *name != "help")
        .map(str::to_owned)
        .collect()
}

#[test]
fn the_commands_page_lists_every_subcommand_and_no_other() {
    let commands = subcommands();
    assert!(commands.len() >= 5, "{commands:?}");
    let page =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/user/cli.md"))
            .unwrap();
    // The rows of the commands table: | `curve-operator NAME ...` | what it does |
    let listed: Vec<String> = page
        .lines()
        .filter_map(|line| line.strip_prefix("| `curve-operator "))
        .filter_map(|rest| rest.split([' ', '`']).next())
        .map(str::to_owned)
        .collect();
    assert_eq!(listed, commands, "docs/user/cli.md's commands table");
}

#[test]
fn run_says_what_it_watches_without_colour_codes_on_a_pipe() {
    let output = Command::new(env!("CARGO_BIN_EXE_curve-operator"))
        .args([
            "run",
            "--namespace",
            "storage",
            "--http-addr",
            "127.0.0.1:0",
        ])
        // No cluster to reach: the operator stops after its first lines.
        .env("KUBECONFIG", "/nonexistent/kubeconfig")
        .env_remove("KUBERNETES_SERVICE_HOST")
        .env_remove("KUBERNETES_SERVICE_PORT")
        // Colours would be off with NO_COLOR alone: the pipe must turn them off.
        .env_remove("NO_COLOR")
        .env_remove("RUST_LOG")
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stdout = String::from_utf8(output.stdout).unwrap();
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 2, "{stdout}");
    assert!(
        lines[0].contains(
            " INFO curve_operator::operator: starting: watching CurveClusters \
             (curve.opencurve.io/v1alpha1) in namespace storage version=\"0.1.0\""
        ),
        "{stdout}"
    );
    assert!(
        lines[1].contains(" ERROR curve_operator::operator: cannot build a Kubernetes client"),
        "{stdout}"
    );
    assert!(!stdout.contains('\x1b'), "ANSI escape codes in {stdout:?}");
}

#[test]
fn no_concurrent_reconciles_is_refused_naming_the_flag() {
    let output = Command::new(env!("CARGO_BIN_EXE_curve-operator"))
        .args(["run", "--concurrent-reconciles", "0"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("--concurrent-reconciles") && stderr.contains("0 is not in 1.."),
        "{stderr}"
    );
}

/// An API server that cannot be reached at the start no longer ends the process: the first
/// calls are retried (the soak of issue 32 found the operator exiting when its connection was
/// cut as it started), and SIGTERM still stops it at once.
#[test]
fn run_retries_an_unreachable_api_server_at_the_start() {
    let dir = tempfile::tempdir().unwrap();
    // A port nothing listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let kubeconfig = dir.path().join("kubeconfig");
    std::fs::write(
        &kubeconfig,
        format!(
            "apiVersion: v1\nkind: Config\nclusters: [{{name: c, cluster: {{server: 'https://127.0.0.1:{port}', insecure-skip-tls-verify: true}}}}]\n\
             users: [{{name: u, user: {{token: t}}}}]\ncontexts: [{{name: x, context: {{cluster: c, user: u}}}}]\ncurrent-context: x\n"
        ),
    )
    .unwrap();
    let log = dir.path().join("log");
    let mut child = Command::new(env!("CARGO_BIN_EXE_curve-operator"))
        .args([
            "run",
            "--namespace",
            "storage",
            "--http-addr",
            "127.0.0.1:0",
        ])
        .env("KUBECONFIG", &kubeconfig)
        .env_remove("KUBERNETES_SERVICE_HOST")
        .env_remove("KUBERNETES_SERVICE_PORT")
        .env_remove("RUST_LOG")
        .stdout(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    // First retries after 0.5 s and 1 s.
    std::thread::sleep(std::time::Duration::from_millis(2500));
    let running = child.try_wait().unwrap().is_none();
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let status = child.wait().unwrap();
    let out = std::fs::read_to_string(&log).unwrap();
    assert!(
        running,
        "the operator exited while the API server was unreachable:\n{out}"
    );
    let retries = out
        .lines()
        .filter(|l| l.contains(" WARN ") && l.contains("cannot watch the CurveCluster CRD"))
        .count();
    assert!(retries >= 2, "{out}");
    assert!(out.contains("retry_in="), "{out}");
    assert!(
        status.success(),
        "SIGTERM while retrying: {status:?}\n{out}"
    );
}
