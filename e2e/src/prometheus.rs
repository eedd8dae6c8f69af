//! A real Prometheus server (Debian's package, `/usr/bin/prometheus` or `PROMETHEUS_BIN`) on
//! loopback, scraping given targets every second, and a client of its HTTP API. Scenario o
//! gives it the targets a Prometheus Operator derives from the operator's PodMonitors (and
//! the chart's ServiceMonitor of the operator); `tests/dashboards.rs` the operator's
//! `/metrics` and a real etcd cluster.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::process::Process;
use crate::util::{TempDir, free_port, http_get, tail};

/// The Prometheus binary; panics saying how to get one when it is missing.
pub fn binary() -> PathBuf {
    let bin = std::env::var_os("PROMETHEUS_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/bin/prometheus"));
    assert!(
        bin.exists(),
        "prometheus not found at {}: this test runs a real Prometheus; install Debian's package \
         (apt-get install --no-install-recommends prometheus, as scripts/prereqs.sh does) or \
         set PROMETHEUS_BIN",
        bin.display()
    );
    bin
}

/// One scrape target: `address` (host:port), its path and the labels a PodMonitor's
/// relabelings and the Prometheus Operator give it. Targets of one `job` share a scrape
/// config (and its `job` label).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Target {
    pub job: String,
    pub address: String,
    pub path: String,
    pub labels: Vec<(String, String)>,
    /// Keep the scraped series' own labels over the target's (`honorLabels`; the chart's
    /// ServiceMonitor sets it for the operator, whose series carry the CurveCluster's
    /// `namespace`). The same for every target of a job.
    pub honor_labels: bool,
}

/// The `prometheus.yml` scraping `targets` every second.
pub fn config(targets: &[Target]) -> Value {
    let mut jobs: BTreeMap<&str, (bool, &str, Vec<Value>)> = BTreeMap::new();
    for target in targets {
        let labels: serde_json::Map<String, Value> = (target.labels.iter())
            .map(|(k, v)| (k.clone(), json!(v)))
            .collect();
        let job =
            jobs.entry(&target.job)
                .or_insert((target.honor_labels, &target.path, Vec::new()));
        assert_eq!(
            (job.0, job.1),
            (target.honor_labels, target.path.as_str()),
            "targets of job {} differ in honor_labels or path",
            target.job
        );
        job.2
            .push(json!({"targets": [target.address], "labels": labels}));
    }
    let scrape_configs: Vec<Value> = (jobs.into_iter())
        .map(|(job, (honor_labels, path, static_configs))| {
            json!({
                "job_name": job,
                "metrics_path": path,
                "honor_labels": honor_labels,
                "static_configs": static_configs,
            })
        })
        .collect();
    json!({
        "global": {"scrape_interval": "1s", "scrape_timeout": "1s", "evaluation_interval": "1s"},
        "scrape_configs": scrape_configs,
    })
}

pub struct Prometheus {
    pub addr: String,
    log: PathBuf,
    _process: Process,
    _dir: TempDir,
}

impl Prometheus {
    /// Starts it scraping `targets` every second, its output appended to `log`, and waits
    /// until it is ready (three tries, each on a new free port).
    pub async fn start(targets: &[Target], log: &Path) -> Prometheus {
        let binary = binary();
        let config = config(targets).to_string();
        let mut last = String::new();
        for _ in 0..3 {
            let dir = TempDir::new("prometheus");
            let config_path = dir.path().join("prometheus.yml");
            std::fs::write(&config_path, &config).expect("write prometheus.yml");
            let addr = format!("127.0.0.1:{}", free_port());
            let args = vec![
                format!("--config.file={}", config_path.display()),
                format!("--storage.tsdb.path={}", dir.path().join("data").display()),
                format!("--web.listen-address={addr}"),
            ];
            let mut process = Process::spawn("prometheus", &binary, &args, &[], log);
            let deadline = Instant::now() + Duration::from_secs(30);
            loop {
                if !process.is_running() {
                    last = format!("prometheus exited:\n{}", tail(log, 20));
                    break;
                }
                if let Ok((200, _)) = http_get(&addr, "/-/ready", Duration::from_secs(1)).await {
                    return Prometheus {
                        addr,
                        log: log.to_path_buf(),
                        _process: process,
                        _dir: dir,
                    };
                }
                if Instant::now() > deadline {
                    last = format!("prometheus not ready in 30 s:\n{}", tail(log, 20));
                    break;
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
        panic!("{last}");
    }

    /// The end of its log.
    pub fn log_tail(&self) -> String {
        tail(&self.log, 20)
    }

    /// `GET path` of the HTTP API: its `data`, or Prometheus's error (a parse error, say).
    pub async fn api(&self, path: &str) -> Result<Value, String> {
        let (code, body) = http_get(&self.addr, path, Duration::from_secs(5)).await?;
        let answer: Value = serde_json::from_str(&body)
            .map_err(|e| format!("HTTP {code}, not JSON ({e}): {body}"))?;
        if code != 200 || answer["status"] != "success" {
            return Err(format!(
                "HTTP {code}: {}: {}",
                answer["errorType"], answer["error"]
            ));
        }
        Ok(answer["data"].clone())
    }

    /// The result vector of an instant query, or Prometheus's error.
    pub async fn query(&self, expr: &str) -> Result<Vec<Value>, String> {
        let data = self
            .api(&format!("/api/v1/query?query={}", percent_encode(expr)))
            .await?;
        match data["resultType"].as_str() {
            Some("vector") => Ok(data["result"].as_array().cloned().unwrap_or_default()),
            other => Err(format!("result type {other:?}, not a vector")),
        }
    }

    /// Metric names of the series matching `selector`.
    pub async fn names(&self, selector: &str) -> Result<BTreeSet<String>, String> {
        let data = self
            .api(&format!(
                "/api/v1/label/__name__/values?match[]={}",
                percent_encode(selector)
            ))
            .await?;
        Ok((data.as_array().into_iter().flatten())
            .filter_map(|n| n.as_str().map(str::to_string))
            .collect())
    }

    /// Waits until `targets` targets of `up{matchers}` were each scraped successfully at least
    /// `scrapes` times in the last minute (rates need two samples); panics after `limit` with
    /// the targets Prometheus sees and its log. Returns how long it waited.
    pub async fn wait_scraped(
        &self,
        matchers: &str,
        targets: usize,
        scrapes: usize,
        limit: Duration,
    ) -> Duration {
        let started = Instant::now();
        let expr = format!("sum_over_time(up{{{matchers}}}[1m]) >= {scrapes}");
        loop {
            let scraped = self.query(&expr).await;
            if matches!(&scraped, Ok(s) if s.len() == targets) {
                return started.elapsed();
            }
            if started.elapsed() > limit {
                let seen = self.api("/api/v1/targets").await;
                panic!(
                    "{targets} targets of up{{{matchers}}} not scraped {scrapes} times within \
                     {limit:?}: {scraped:?}\ntargets: {seen:?}\n{}",
                    self.log_tail()
                );
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }
}

/// RFC 3986 percent-encoding of everything but the unreserved characters.
pub fn percent_encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queries_are_percent_encoded() {
        assert_eq!(
            percent_encode(r#"up{a="b c"} == 0"#),
            "up%7Ba%3D%22b%20c%22%7D%20%3D%3D%200"
        );
    }

    #[test]
    fn targets_of_a_job_share_its_scrape_config() {
        let target = |job: &str, address: &str, honor_labels| Target {
            job: job.into(),
            address: address.into(),
            path: "/metrics".into(),
            labels: vec![("pod".into(), address.into())],
            honor_labels,
        };
        let config = config(&[
            target("ns/demo-etcd", "a:1", false),
            target("curve-operator", "b:2", true),
            target("ns/demo-etcd", "c:3", false),
        ]);
        let jobs = config["scrape_configs"].as_array().unwrap();
        assert_eq!(jobs.len(), 2);
        assert_eq!(jobs[0]["job_name"], "curve-operator");
        assert_eq!(jobs[0]["honor_labels"], true);
        assert_eq!(jobs[1]["job_name"], "ns/demo-etcd");
        assert_eq!(jobs[1]["honor_labels"], false);
        assert_eq!(jobs[1]["static_configs"][1]["targets"][0], "c:3");
        assert_eq!(jobs[1]["static_configs"][1]["labels"]["pod"], "c:3");
    }
}
