//! The Grafana dashboards (src/dashboards.rs → charts/curve-operator/dashboards/*.json): the
//! committed files are the generator's output; `UPDATE_GOLDEN=1 cargo test --test dashboards`
//! rewrites them. What the dashboards show on a real Prometheus (every expression run against
//! the operator's `/metrics` and a real etcd) is `e2e/tests/dashboards.rs`, beside the
//! Prometheus that scenario o uses.

#[path = "support/golden.rs"]
mod golden;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use curve_operator::dashboards::{self, DIRECTORY};

fn repo(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(path)
}

#[test]
fn the_committed_dashboards_are_the_generated_ones() {
    let dir = repo(DIRECTORY);
    let generated = dashboards::all();
    for dashboard in &generated {
        let path = dir.join(dashboard.file_name());
        golden::check(&path, &dashboard.text(), "src/dashboards.rs");
    }
    let files: BTreeSet<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    let expected: BTreeSet<String> = generated.iter().map(|d| d.file_name()).collect();
    assert_eq!(
        files, expected,
        "{DIRECTORY} holds files the generator does not write"
    );
}
