//! What `curve-operator run` says as a user reads it: its start line, in plain text when its
//! output is a pipe (a pod's log), not a terminal.

use std::process::Command;

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
