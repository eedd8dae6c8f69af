//! What the fake kubelet runs for the operator's pods: real etcd members (Debian's
//! `/usr/bin/etcd`) with the configuration the operator rendered, and MDS stand-ins that
//! campaign in etcd exactly as Curve's MDS does.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use etcd_client::{Client, Compare, CompareOp, ConnectOptions, PutOptions, Txn, TxnOp};

use crate::curve_standins::{CurveHandle, Primary, dummy_handler, serve};
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
    /// Its key leads the election (what `mds_status` says).
    leader: Arc<AtomicBool>,
    /// The cluster's Curve model the primary serves (none: the stand-in only campaigns).
    curve: Option<CurveHandle>,
    /// The primary's services, once elected.
    primary: std::sync::Mutex<Option<Arc<Primary>>>,
    /// The runtime the primary's services run on (the caller's, not the elections' own).
    services: Option<tokio::runtime::Handle>,
}

/// The runtime every MDS stand-in's connection, lease keep-alive and campaign run on: a
/// thread of its own, as each MDS is a process of its own on its own node. On the shared
/// runtime, a host playing hundreds of nodes (the kubelet's pods, 1200 ChunkServer
/// stand-ins) delayed all five keep-alives past the 5 s TTL at once, which no real
/// cluster's MDS would see from its neighbours' load.
fn elections() -> &'static tokio::runtime::Runtime {
    static ELECTIONS: std::sync::OnceLock<tokio::runtime::Runtime> = std::sync::OnceLock::new();
    ELECTIONS.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("e2e-mds-elections")
            .enable_all()
            .build()
            .expect("a runtime for the MDS elections")
    })
}

impl StandInState {
    fn stop_tasks(&self) {
        for task in self.tasks.lock().unwrap().drain(..) {
            task.abort();
        }
        if let Some(primary) = self.primary.lock().unwrap().take() {
            primary.stop();
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
    ///
    /// With `curve`, the elected stand-in serves the cluster's model on its listen port as
    /// Curve's primary does ([`Primary`]); a standby does not listen there at all.
    pub fn start(
        endpoints: Vec<String>,
        address: String,
        dummy_port: Option<u16>,
        curve: Option<CurveHandle>,
    ) -> MdsStandIn {
        let state = Arc::new(StandInState {
            curve,
            services: Some(tokio::runtime::Handle::current()),
            ..StandInState::default()
        });
        if let (Some(port), Some((ip, _))) = (dummy_port, address.rsplit_once(':')) {
            let dummy = format!("{ip}:{port}");
            let handler = dummy_handler(
                dummy.clone(),
                address.clone(),
                port,
                state.leader.clone(),
                state.curve.clone(),
            );
            let dummy = tokio::spawn(async move {
                if let Ok(listener) = tokio::net::TcpListener::bind(&dummy).await {
                    serve(listener, handler).await;
                }
            });
            state.tasks.lock().unwrap().push(dummy.abort_handle());
        }
        let task = elections().spawn(run_stand_in(endpoints, address.clone(), state.clone()));
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

    /// Elected: `mds_status` says `leader`.
    pub fn is_leader(&self) -> bool {
        self.state.leader.load(Ordering::Acquire) && !self.is_dead()
    }

    /// The primary's listen port refuses connections (`true`) or serves again; false when
    /// this stand-in is not the serving primary.
    pub fn refuse_listen(&self, refuse: bool) -> bool {
        let primary = self.state.primary.lock().unwrap();
        primary.as_ref().map(|p| p.refuse_listen(refuse)).is_some()
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
    // Curve's StartCompaginLeader blocks until elected; only then does the MDS Init and Run
    // its services and open its listen port (C:src/mds/main/main.cpp:119-127,
    // C:src/mds/server/mds.cpp:193-226).
    let waiting = tokio::spawn(wait_for_election(
        client.clone(),
        lease,
        address,
        state.clone(),
    ));
    state.tasks.lock().unwrap().push(waiting.abort_handle());
    // Live as long as the lease does; an expired lease ends the MDS as it does Curve's.
    let _ = keepalive.await;
    state.dead.store(true, Ordering::Release);
}

/// Polls the election until this candidate's key has the lowest create revision under
/// `07leader/` (clientv3's `waitDeletes` on the keys before it), then becomes primary.
async fn wait_for_election(client: Client, lease: i64, address: String, state: Arc<StandInState>) {
    let own = candidate_key(lease);
    let mut kv = client.kv_client();
    loop {
        let options = etcd_client::GetOptions::new()
            .with_prefix()
            .with_sort(
                etcd_client::SortTarget::Create,
                etcd_client::SortOrder::Ascend,
            )
            .with_limit(1);
        let first = tokio::time::timeout(
            Duration::from_secs(2),
            kv.get(format!("{MDS_ELECTION}/"), Some(options)),
        )
        .await;
        if let Ok(Ok(answer)) = first
            && answer
                .kvs()
                .first()
                .is_some_and(|kv| kv.key() == own.as_bytes())
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    state.leader.store(true, Ordering::Release);
    if let (Some(curve), Some(services)) = (&state.curve, &state.services) {
        let _on_services = services.enter();
        *state.primary.lock().unwrap() = Some(Primary::start(curve.clone(), address));
    }
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
