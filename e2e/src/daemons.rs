//! What the fake kubelet runs for the operator's pods: real etcd members (Debian's
//! `/usr/bin/etcd`) with the configuration the operator rendered, and MDS stand-ins that
//! campaign in etcd exactly as Curve's MDS does.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use etcd_client::{Client, ConnectOptions, LeaderKey, ResignOptions};

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

/// A stand-in for a Curve MDS in the election: a lease with Curve's TTL kept alive as clientv3
/// does (every TTL/3), and a campaign through etcd's election service, which runs clientv3's
/// `concurrency.Election` on the server with that lease: the same keys (`07leader/<lease hex>`),
/// values and create-revision order as an MDS.
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
    leader: std::sync::Mutex<Option<LeaderKey>>,
    client: std::sync::Mutex<Option<Client>>,
    /// The keep-alive and campaign tasks, stopped with the stand-in.
    tasks: std::sync::Mutex<Vec<tokio::task::AbortHandle>>,
}

impl StandInState {
    fn stop_tasks(&self) {
        for task in self.tasks.lock().unwrap().drain(..) {
            task.abort();
        }
    }
}

impl MdsStandIn {
    /// Starts campaigning as `address` against `endpoints` (an MDS's `mds.etcd.endpoint`), in
    /// the background: connecting and campaigning are retried as an MDS restarting would.
    pub fn start(endpoints: Vec<String>, address: String) -> MdsStandIn {
        let state = Arc::new(StandInState::default());
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

    /// A graceful stop: the MDS resigns (its key goes at once) and revokes its lease.
    pub async fn stop_gracefully(&mut self) {
        let client = self.state.client.lock().unwrap().clone();
        let leader = self.state.leader.lock().unwrap().clone();
        let lease = *self.state.lease.lock().unwrap();
        self.task.abort();
        self.state.stop_tasks();
        if let Some(client) = client {
            if let Some(leader) = leader {
                let _ = tokio::time::timeout(
                    Duration::from_secs(2),
                    client
                        .election_client()
                        .resign(Some(ResignOptions::new().with_leader(leader))),
                )
                .await;
            }
            if let Some(lease) = lease {
                let _ = tokio::time::timeout(
                    Duration::from_secs(2),
                    client.lease_client().revoke(lease),
                )
                .await;
            }
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
    // The key `07leader/<lease hex>` is written when the campaign starts; the call returns
    // only once elected.
    let key = format!("{MDS_ELECTION}/{lease:x}");
    let campaign = {
        let client = client.clone();
        let (address, state) = (address.clone(), state.clone());
        tokio::spawn(async move {
            loop {
                match client
                    .election_client()
                    .campaign(MDS_ELECTION, address.as_str(), lease)
                    .await
                {
                    Ok(mut response) => {
                        *state.leader.lock().unwrap() = response.take_leader();
                        return;
                    }
                    Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
                }
            }
        })
    };
    state
        .tasks
        .lock()
        .unwrap()
        .extend([keepalive.abort_handle(), campaign.abort_handle()]);
    let mut kv = client.kv_client();
    loop {
        if let Ok(Ok(r)) =
            tokio::time::timeout(Duration::from_secs(2), kv.get(key.as_str(), None)).await
            && !r.kvs().is_empty()
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    state.campaigning.store(true, Ordering::Release);
    // Live as long as the lease does; an expired lease ends the MDS as it does Curve's.
    let _ = keepalive.await;
    campaign.abort();
    state.dead.store(true, Ordering::Release);
}

/// Keeps the lease alive every TTL/3 as clientv3 does, reopening the stream when it breaks;
/// returns when etcd says the lease expired.
async fn keep_alive(client: Client, lease: i64, _state: Arc<StandInState>) {
    loop {
        let expired: Result<bool, etcd_client::Error> = async {
            let (mut keeper, mut stream) = client.lease_client().keep_alive(lease).await?;
            loop {
                keeper.keep_alive().await?;
                match stream.message().await? {
                    Some(r) if r.ttl() > 0 => {}
                    Some(_) => return Ok(true),
                    None => return Ok(false),
                }
                tokio::time::sleep(LEASE_TTL / 3).await;
            }
        }
        .await;
        if let Ok(true) = expired {
            return;
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
