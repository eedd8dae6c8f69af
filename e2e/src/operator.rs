//! The operator under test: this repository's `curve-operator` binary, run with a kubeconfig
//! of the Helm chart's ServiceAccount, its output in a log file printed when a test fails.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::Duration;

use crate::metrics::Metrics;
use crate::process::Process;
use crate::util::{eventually, free_port, http_get, repo_root, tail};

/// Builds the operator binary once per run and returns its path. Both packages are named so
/// that cargo resolves the same dependency features as for this test binary: building
/// `-p curve-operator` alone would rebuild half the dependency tree on every run.
/// `CURVE_E2E_OPERATOR=<path>` runs that binary instead (the scale benchmark of a release build).
pub fn binary() -> PathBuf {
    static BINARY: OnceLock<PathBuf> = OnceLock::new();
    BINARY
        .get_or_init(|| {
            // A given binary (e.g. a release build, to measure what users run) is used as is.
            if let Some(given) = std::env::var_os("CURVE_E2E_OPERATOR") {
                return PathBuf::from(given);
            }
            let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
            let mut command = std::process::Command::new(cargo);
            // Variables cargo sets for this test process. Build scripts (ring's) declare some
            // of them with rerun-if-env-changed: inherited, they would rebuild the dependency
            // tree now and again at the next plain cargo command.
            for (key, _) in std::env::vars_os() {
                let key = key.to_string_lossy();
                if key.starts_with("CARGO_PKG_")
                    || key.starts_with("CARGO_BIN_EXE_")
                    || [
                        "CARGO_MANIFEST_DIR",
                        "CARGO_MANIFEST_PATH",
                        "CARGO_CRATE_NAME",
                        "CARGO_PRIMARY_PACKAGE",
                        "CARGO_TARGET_TMPDIR",
                        "OUT_DIR",
                    ]
                    .contains(&key.as_ref())
                {
                    command.env_remove(key.as_ref());
                }
            }
            let out = command
                .current_dir(repo_root())
                .args([
                    "build",
                    "--quiet",
                    "-p",
                    "curve-operator",
                    "-p",
                    "curve-operator-e2e",
                    "--bin",
                    "curve-operator",
                    "--message-format=json-render-diagnostics",
                ])
                .stderr(std::process::Stdio::inherit())
                .output()
                .expect("run cargo build");
            assert!(out.status.success(), "cargo build of the operator failed");
            String::from_utf8_lossy(&out.stdout)
                .lines()
                .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
                .filter(|m| {
                    m["reason"] == "compiler-artifact" && m["target"]["name"] == "curve-operator"
                })
                .find_map(|m| m["executable"].as_str().map(PathBuf::from))
                .expect("cargo names the curve-operator executable")
        })
        .clone()
}

/// A running `curve-operator run --namespace <ns>`.
pub struct Operator {
    process: Option<Process>,
    kubeconfig: PathBuf,
    namespace: String,
    /// `--health-period-seconds`.
    health_period: u64,
    pub http_addr: String,
    pub log: PathBuf,
}

/// Curve's health read every 2 s in the scenarios (the operator's default is 15 s): they wait
/// less.
pub const SCENARIO_HEALTH_PERIOD: u64 = 2;

impl Operator {
    /// Starts the operator for `namespace` and waits until it reports ready (CRD established,
    /// CurveClusters listable).
    pub async fn start(kubeconfig: &Path, namespace: &str, dir: &Path) -> Operator {
        Self::start_with_health_period(kubeconfig, namespace, dir, SCENARIO_HEALTH_PERIOD).await
    }

    /// [`Operator::start`], reading Curve's health every `seconds`.
    pub async fn start_with_health_period(
        kubeconfig: &Path,
        namespace: &str,
        dir: &Path,
        seconds: u64,
    ) -> Operator {
        let mut operator = Operator {
            process: None,
            kubeconfig: kubeconfig.to_path_buf(),
            namespace: namespace.to_string(),
            health_period: seconds,
            http_addr: String::new(),
            log: dir.join("operator.log"),
        };
        operator.spawn().await;
        operator
    }

    async fn spawn(&mut self) {
        self.http_addr = format!("127.0.0.1:{}", free_port());
        let _ = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .and_then(|mut f| {
                std::io::Write::write_all(
                    &mut f,
                    format!("==== curve-operator run (http {}) ====\n", self.http_addr).as_bytes(),
                )
            });
        let args: Vec<String> = vec![
            "run".into(),
            "--namespace".into(),
            self.namespace.clone(),
            "--http-addr".into(),
            self.http_addr.clone(),
            "--log-level".into(),
            "info,kube=warn".into(),
            "--health-period-seconds".into(),
            self.health_period.to_string(),
            // The backup Jobs' bucket copies: the suite's kubelet runs this build for it.
            format!("--job-image={}", crate::job_run::OPERATOR_IMAGE),
        ];
        let kubeconfig = self.kubeconfig.display().to_string();
        self.process = Some(Process::spawn(
            "curve-operator",
            &binary(),
            &args,
            &[("KUBECONFIG", &kubeconfig)],
            &self.log,
        ));
        let addr = self.http_addr.clone();
        let log = self.log.clone();
        let process = self.process.as_mut().unwrap();
        eventually(
            "the operator to report ready on /readyz",
            Duration::from_secs(30),
            || {
                let running = process.is_running();
                let (addr, log) = (addr.clone(), log.clone());
                async move {
                    if !running {
                        panic!("the operator exited:\n{}", tail(&log, 40));
                    }
                    match http_get(&addr, "/readyz", Duration::from_secs(1)).await {
                        Ok((200, _)) => Ok(()),
                        other => Err(format!("{other:?}")),
                    }
                }
            },
        )
        .await;
    }

    /// SIGKILL: no graceful shutdown, nothing flushed.
    pub fn kill(&mut self) {
        if let Some(mut p) = self.process.take() {
            p.kill();
        }
    }

    /// Starts it again (after [`Operator::kill`]).
    pub async fn restart(&mut self) {
        self.kill();
        self.spawn().await;
    }

    /// The process id while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.process.as_ref().and_then(Process::pid)
    }

    pub fn is_running(&mut self) -> bool {
        self.process.as_mut().is_some_and(Process::is_running)
    }

    /// The operator's /metrics text.
    pub async fn metrics(&self) -> String {
        match http_get(&self.http_addr, "/metrics", Duration::from_secs(2)).await {
            Ok((200, body)) => body,
            other => panic!("GET /metrics: {other:?}"),
        }
    }

    /// The operator's /metrics, parsed (a panic when they do not parse).
    pub async fn samples(&self) -> Metrics {
        let text = self.metrics().await;
        Metrics::parse(&text).unwrap_or_else(|e| panic!("/metrics do not parse: {e}\n{text}"))
    }

    /// Successful reconciles so far (`curve_operator_reconciles_total{result="success"}`).
    pub async fn reconciles(&self) -> u64 {
        self.samples()
            .await
            .sum("curve_operator_reconciles_total", &[("result", "success")]) as u64
    }

    /// Waits until the operator finished `n` more successful reconciles than `since`: with one
    /// cluster they run one after another, so the last started after whatever happened before
    /// this call was visible.
    pub async fn wait_reconciles(&self, since: u64, n: u64) {
        eventually(
            "the operator to reconcile",
            Duration::from_secs(30),
            || async {
                let now = self.reconciles().await;
                if now >= since + n {
                    Ok(())
                } else {
                    Err(format!("{now} reconciles, waiting for {}", since + n))
                }
            },
        )
        .await;
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Operator {
    fn drop(&mut self) {
        self.kill();
        if std::thread::panicking() {
            eprintln!(
                "---- operator log {} (last 150 lines) ----\n{}",
                self.log.display(),
                tail(&self.log, 150)
            );
        }
    }
}
