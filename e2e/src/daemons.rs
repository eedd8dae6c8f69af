//! What the fake kubelet runs for the operator's pods: real etcd members (Debian's
//! `/usr/bin/etcd`) with the configuration the operator rendered, and MDS stand-ins that
//! campaign in etcd exactly as Curve's MDS does.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use etcd_client::{Client, Compare, CompareOp, ConnectOptions, PutOptions, Txn, TxnOp};

use crate::process::Process;
use crate::util::http_get;

/// Curve's MDS election: `concurrency.NewElection(session, "07leader")`.
pub const MDS_ELECTION: &str = "07leader";
/// Curve's `mds.leader.sessionInterSec`: the TTL of a candidate's lease.
pub const LEASE_TTL: Duration = Duration::from_secs(5);

pub fn etcd_binary() -> PathBuf {
    let bin = std::env::var_os("ETCD_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| "/usr/bin/etcd".into());
    assert!(
        bin.exists(),
        "etcd not found at {}: install Debian's etcd-server (apt-get install etcd-server etcd-client) or set ETCD_BIN",
        bin.display()
    );
    bin
}

/// The values of a `key: value` (etcd YAML) or `key=value` (Curve) config file.
pub fn config_value(text: &str, key: &str, delimiter: &str) -> Option<String> {
    text.lines().find_map(|line| {
        let (k, v) = line.split_once(delimiter)?;
        (k.trim() == key).then(|| v.trim().to_string())
    })
}

/// The pod's etcd.conf as the config init container would write it (`${POD_NAME}` and
/// `${POD_IP}` filled in), with the data and WAL directories moved to `data_dir`.
pub fn render_etcd_conf(template: &str, pod_name: &str, pod_ip: &str, data_dir: &Path) -> String {
    template
        .lines()
        .map(|line| {
            let line = line
                .replace("${POD_NAME}", pod_name)
                .replace("${POD_IP}", pod_ip);
            match line.split_once(':').map(|(k, _)| k.trim()) {
                Some("data-dir") => format!("data-dir: {}", data_dir.join("data").display()),
                Some("wal-dir") => format!("wal-dir: {}", data_dir.join("wal").display()),
                _ => line,
            }
        })
        .map(|l| l + "\n")
        .collect()
}

/// A running etcd member.
pub struct EtcdMember {
    pub client_url: String,
    process: Process,
    pub log: PathBuf,
    config: PathBuf,
}

impl EtcdMember {
    /// Starts `/usr/bin/etcd --config-file` on the rendered config, in `dir`.
    pub fn start(name: &str, config_text: &str, dir: &Path) -> EtcdMember {
        let config = dir.join("etcd.conf");
        std::fs::write(&config, config_text).expect("write etcd.conf");
        let client_url = config_value(config_text, "listen-client-urls", ":")
            .expect("etcd.conf has listen-client-urls")
            .trim_start_matches("http://")
            .to_string();
        let log = dir.join("etcd.log");
        let process = Self::spawn(name, &config, &log);
        EtcdMember {
            client_url,
            process,
            log,
            config,
        }
    }

    fn spawn(name: &str, config: &Path, log: &Path) -> Process {
        Process::spawn(
            name,
            &etcd_binary(),
            &["--config-file".into(), config.display().to_string()],
            &[],
            log,
        )
    }

    /// Starts the member again on its data (a container restart).
    pub fn restart(&mut self) {
        self.process.kill();
        self.process = Self::spawn(&self.process.name.clone(), &self.config, &self.log);
    }

    pub fn is_running(&mut self) -> bool {
        self.process.is_running()
    }

    pub fn kill(&mut self) {
        self.process.kill();
    }

    /// etcd's own readiness: `GET /health` answers `"health":"true"` only with a quorum.
    pub async fn healthy(&self) -> bool {
        matches!(http_get(&self.client_url, "/health", Duration::from_secs(1)).await,
            Ok((200, body)) if body.contains("\"health\":\"true\""))
    }
}

/// A stand-in for a Curve MDS in the election, campaigning exactly as Curve's MDS does with
/// etcd clientv3's `concurrency.Election` (client side, in the MDS's own process): a lease
/// with Curve's TTL kept alive every TTL/3, then a transaction that puts
/// `07leader/<lease hex>` = `mds.listen.addr` with that lease if the key does not exist yet.
/// The key with the lowest create revision leads; the others wait behind it. Resigning
/// deletes the key. Nothing on the server side deletes a key but its lease expiring (a
/// server-side Election `Campaign` call deletes the key when the call is interrupted, which
/// made the earlier stand-ins lose their place in the election).
pub struct MdsStandIn {
    pub address: String,
    state: Arc<StandInState>,
    task: tokio::task::JoinHandle<()>,
}

#[derive(Default)]
struct StandInState {
    /// The candidate's key exists in etcd (the MDS runs and campaigns).
    campaigning: AtomicBool,
    /// The lease keep-alive stopped or the stand-in gave up.
    dead: AtomicBool,
    lease: std::sync::Mutex<Option<i64>>,
    client: std::sync::Mutex<Option<Client>>,
    /// The keep-alive task, stopped with the stand-in.
    tasks: std::sync::Mutex<Vec<tokio::task::AbortHandle>>,
}

impl StandInState {
    fn stop_tasks(&self) {
        for task in self.tasks.lock().unwrap().drain(..) {
            task.abort();
        }
    }
}

/// The candidate key of a lease: `07leader/<lease id in hex>`, as clientv3 names it.
pub fn candidate_key(lease: i64) -> String {
    format!("{MDS_ELECTION}/{lease:x}")
}

impl MdsStandIn {
    /// Starts campaigning as `address` against `endpoints` (an MDS's `mds.etcd.endpoint`), in
    /// the background: connecting and campaigning are retried as an MDS restarting would.
    pub fn start(endpoints: Vec<String>, address: String, dummy_port: Option<u16>) -> MdsStandIn {
        let state = Arc::new(StandInState::default());
        if let (Some(port), Some((ip, _))) = (dummy_port, address.rsplit_once(':')) {
            let metrics = tokio::spawn(serve_dummy_metrics(format!("{ip}:{port}"), port));
            state.tasks.lock().unwrap().push(metrics.abort_handle());
        }
        let task = tokio::spawn(run_stand_in(endpoints, address.clone(), state.clone()));
        MdsStandIn {
            address,
            state,
            task,
        }
    }

    /// Runs and holds a key in the election.
    pub fn is_campaigning(&self) -> bool {
        self.state.campaigning.load(Ordering::Acquire) && !self.is_dead()
    }

    pub fn is_dead(&self) -> bool {
        self.state.dead.load(Ordering::Acquire) || self.task.is_finished()
    }

    /// A crash (SIGKILL): keep-alives stop and the connection goes, nothing is revoked, so
    /// the key lives on until its lease expires.
    pub fn kill(&mut self) {
        self.task.abort();
        self.state.stop_tasks();
        self.state.dead.store(true, Ordering::Release);
        self.state.client.lock().unwrap().take();
    }

    /// A graceful stop: the MDS resigns (clientv3 `Resign`: its key is deleted at once) and
    /// revokes its lease.
    pub async fn stop_gracefully(&mut self) {
        let client = self.state.client.lock().unwrap().clone();
        let lease = *self.state.lease.lock().unwrap();
        self.task.abort();
        self.state.stop_tasks();
        if let (Some(client), Some(lease)) = (client, lease) {
            let _ = tokio::time::timeout(
                Duration::from_secs(2),
                client.kv_client().delete(candidate_key(lease), None),
            )
            .await;
            let _ =
                tokio::time::timeout(Duration::from_secs(2), client.lease_client().revoke(lease))
                    .await;
        }
        self.state.dead.store(true, Ordering::Release);
        self.state.client.lock().unwrap().take();
    }
}

impl Drop for MdsStandIn {
    fn drop(&mut self) {
        self.kill();
    }
}

/// What an MDS's dummy server answers on `/metrics` (brpc's Prometheus text; every MDS,
/// primary or not, has its dummy server): a few of the process-wide bvars it dumps.
async fn serve_dummy_metrics(addr: String, port: u16) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let Ok(listener) = tokio::net::TcpListener::bind(&addr).await else {
        return;
    };
    let started = std::time::Instant::now();
    loop {
        let Ok((mut stream, _)) = listener.accept().await else {
            continue;
        };
        let mut request = [0u8; 2048];
        let _ = stream.read(&mut request).await;
        let body = format!(
            "# HELP process_uptime process_uptime\n# TYPE process_uptime gauge\nprocess_uptime {}\n\
             # HELP rpc_server_{port}_connection_count rpc_server_{port}_connection_count\n\
             # TYPE rpc_server_{port}_connection_count gauge\nrpc_server_{port}_connection_count 0\n",
            started.elapsed().as_secs()
        );
        let found = String::from_utf8_lossy(&request).starts_with("GET /metrics");
        let response = if found {
            format!(
                "HTTP/1.0 200 OK\r\nContent-Type: text/plain; version=0.0.4\r\nContent-Length: {}\r\n\r\n{body}",
                body.len()
            )
        } else {
            "HTTP/1.0 404 Not Found\r\nContent-Length: 0\r\n\r\n".to_string()
        };
        let _ = stream.write_all(response.as_bytes()).await;
    }
}

/// clientv3 `Election.Campaign`'s first step: put the candidate key with the lease unless it
/// exists. Returns once the key exists (put now, or by an earlier try whose answer was lost).
async fn put_candidate(client: &Client, key: &str, address: &str, lease: i64) {
    let mut kv = client.kv_client();
    loop {
        let txn = Txn::new()
            .when([Compare::create_revision(key, CompareOp::Equal, 0)])
            .and_then([TxnOp::put(
                key,
                address,
                Some(PutOptions::new().with_lease(lease)),
            )])
            .or_else([TxnOp::get(key, None)]);
        if let Ok(Ok(_)) = tokio::time::timeout(Duration::from_secs(2), kv.txn(txn)).await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

async fn run_stand_in(endpoints: Vec<String>, address: String, state: Arc<StandInState>) {
    let options = ConnectOptions::new().with_connect_timeout(Duration::from_secs(1));
    // Connect and get a lease, retried while etcd is not reachable or is electing a leader.
    let (client, lease) = loop {
        let attempt = async {
            let client = Client::connect(&endpoints, Some(options.clone())).await?;
            let lease = client
                .lease_client()
                .grant(LEASE_TTL.as_secs() as i64, None)
                .await?
                .id();
            Ok::<_, etcd_client::Error>((client, lease))
        };
        match tokio::time::timeout(Duration::from_secs(3), attempt).await {
            Ok(Ok(ok)) => break ok,
            _ => tokio::time::sleep(Duration::from_millis(200)).await,
        }
    };
    *state.client.lock().unwrap() = Some(client.clone());
    *state.lease.lock().unwrap() = Some(lease);
    let keepalive = tokio::spawn(keep_alive(client.clone(), lease, state.clone()));
    state.tasks.lock().unwrap().push(keepalive.abort_handle());
    put_candidate(&client, &candidate_key(lease), &address, lease).await;
    state.campaigning.store(true, Ordering::Release);
    // Live as long as the lease does; an expired lease ends the MDS as it does Curve's.
    let _ = keepalive.await;
    state.dead.store(true, Ordering::Release);
}

/// Keeps the lease alive as clientv3's lessor does: a keep-alive every TTL/3; a stream that
/// gives no answer within a second is reopened (clientv3 resends until answered); and when no
/// answer came for a whole TTL the lease counts as lost, the session ends and the MDS with it
/// (Curve's MDS exits when its etcd session is done). Returns then, or when etcd says the
/// lease expired. (Waiting on an unanswered stream forever is how earlier stand-ins stayed
/// Ready with no key in etcd.)
async fn keep_alive(client: Client, lease: i64, _state: Arc<StandInState>) {
    let answer_timeout = Duration::from_secs(1);
    let mut deadline = tokio::time::Instant::now() + LEASE_TTL;
    while tokio::time::Instant::now() < deadline {
        let mut leases = client.lease_client();
        let Ok(Ok((mut keeper, mut stream))) =
            tokio::time::timeout(answer_timeout, leases.keep_alive(lease)).await
        else {
            tokio::time::sleep(Duration::from_millis(100)).await;
            continue;
        };
        while tokio::time::Instant::now() < deadline {
            if keeper.keep_alive().await.is_err() {
                break;
            }
            match tokio::time::timeout(answer_timeout, stream.message()).await {
                Ok(Ok(Some(answer))) if answer.ttl() > 0 => {
                    deadline =
                        tokio::time::Instant::now() + Duration::from_secs(answer.ttl() as u64);
                }
                Ok(Ok(Some(_))) => return,
                _ => break,
            }
            tokio::time::sleep(LEASE_TTL / 3).await;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn etcd_conf_is_rendered_for_the_pod() {
        let template = "name: ${POD_NAME}\ndata-dir: /curvebs/etcd/data\nwal-dir: /curvebs/etcd/data/wal\n\
                        listen-client-urls: http://${POD_IP}:2379\nauto-compaction-retention: \"1\"\n";
        let out = render_etcd_conf(template, "demo-etcd-0", "127.0.0.101", Path::new("/tmp/x"));
        assert_eq!(
            out,
            "name: demo-etcd-0\ndata-dir: /tmp/x/data\nwal-dir: /tmp/x/wal\n\
             listen-client-urls: http://127.0.0.101:2379\nauto-compaction-retention: \"1\"\n"
        );
        assert_eq!(
            config_value(&out, "listen-client-urls", ":").as_deref(),
            Some("http://127.0.0.101:2379")
        );
        assert_eq!(
            config_value(
                "a.b=1:2\nmds.listen.addr=1.2.3.4:6700\n",
                "mds.listen.addr",
                "="
            )
            .as_deref(),
            Some("1.2.3.4:6700")
        );
    }
}
