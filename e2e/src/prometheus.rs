//! A real Prometheus server (Debian's package, `/usr/bin/prometheus` or `PROMETHEUS_BIN`) on
//! loopback, with the scrape targets a Prometheus Operator would derive from PodMonitors, and
//! its query API.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::{Value, json};

use crate::process::Process;
use crate::util::{TempDir, eventually, free_port, http_get};

pub fn binary() -> PathBuf {
    std::env::var_os("PROMETHEUS_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/bin/prometheus"))
}

/// One scrape target: `address` (host:port), its path and the labels a PodMonitor's
/// relabelings and the Prometheus Operator give it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Target {
    pub job: String,
    pub address: String,
    pub path: String,
    pub labels: Vec<(String, String)>,
}

pub struct Prometheus {
    pub addr: String,
    _process: Process,
    _dir: TempDir,
}

impl Prometheus {
    /// Starts it scraping `targets` every second and waits until it is ready.
    pub async fn start(targets: &[Target], log: &Path) -> Prometheus {
        let dir = TempDir::new("prometheus");
        let mut jobs: Vec<Value> = Vec::new();
        for target in targets {
            let labels: serde_json::Map<String, Value> = (target.labels.iter())
                .map(|(k, v)| (k.clone(), json!(v)))
                .collect();
            jobs.push(json!({
                "job_name": format!("{}-{}", target.job, jobs.len()),
                "metrics_path": target.path,
                // The operator's own series carry the CurveCluster's namespace and name.
                "honor_labels": true,
                "static_configs": [{"targets": [target.address], "labels": labels}],
            }));
        }
        let config = json!({"global": {"scrape_interval": "1s", "evaluation_interval": "1s"}, "scrape_configs": jobs});
        let config_path = dir.path().join("prometheus.yml");
        std::fs::write(&config_path, config.to_string()).expect("write prometheus.yml");
        let addr = format!("127.0.0.1:{}", free_port());
        let args = vec![
            format!("--config.file={}", config_path.display()),
            format!("--storage.tsdb.path={}", dir.path().join("data").display()),
            format!("--web.listen-address={addr}"),
        ];
        let process = Process::spawn("prometheus", &binary(), &args, &[], log);
        let ready = addr.clone();
        eventually("Prometheus to be ready", Duration::from_secs(30), || {
            let addr = ready.clone();
            async move {
                match http_get(&addr, "/-/ready", Duration::from_secs(1)).await {
                    Ok((200, _)) => Ok(()),
                    other => Err(format!("{other:?}")),
                }
            }
        })
        .await;
        Prometheus {
            addr,
            _process: process,
            _dir: dir,
        }
    }

    /// The result vector of an instant query, or Prometheus's error (a parse error, say).
    pub async fn query(&self, expr: &str) -> Result<Vec<Value>, String> {
        let path = format!("/api/v1/query?query={}", percent_encode(expr));
        let (code, body) = http_get(&self.addr, &path, Duration::from_secs(5)).await?;
        let answer: Value = serde_json::from_str(&body).map_err(|e| format!("{e}: {body}"))?;
        if code != 200 || answer["status"] != "success" {
            return Err(format!("{code}: {}", answer["error"]));
        }
        Ok(answer["data"]["result"]
            .as_array()
            .cloned()
            .unwrap_or_default())
    }
}

/// RFC 3986 percent-encoding of everything but the unreserved characters.
fn percent_encode(text: &str) -> String {
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
    #[test]
    fn queries_are_percent_encoded() {
        assert_eq!(
            super::percent_encode(r#"up{a="b c"} == 0"#),
            "up%7Ba%3D%22b%20c%22%7D%20%3D%3D%200"
        );
    }
}
