//! Real etcd for tests and benchmarks: members on loopback addresses (127.0.0.11, .12, …) with
//! ports the OS hands out, data in a temporary directory, every process killed on drop (also
//! when a test panics); and MDS stand-ins that campaign exactly as Curve's MDS does.
#![allow(dead_code)] // each test target uses a different part

use std::collections::HashSet;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use etcd_client::{Client, GetOptions, LeaderKey, ResignOptions};

/// Curve's MDS election: `concurrency.NewElection(session, "07leader")`.
pub const MDS_ELECTION: &str = "07leader";
/// The SnapshotCloneServer's election, whose keys must never count as MDS candidates.
pub const SNAPSHOTCLONE_ELECTION: &str = "07leadersnapshotcloneserverleaderlock";
/// Curve's `mds.leader.sessionInterSec`: the TTL of a candidate's lease.
pub const LEASE_TTL: Duration = Duration::from_secs(5);

/// Where the first member listens; the others take the next addresses.
const FIRST_HOST: u8 = 11;

pub fn etcd_binary() -> PathBuf {
    let bin = std::env::var_os("ETCD_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| "/usr/bin/etcd".into());
    if !bin.exists() {
        panic!(
            "etcd not found at {}: these tests need a real etcd; install Debian's etcd-server \
             (apt-get install etcd-server etcd-client) or set ETCD_BIN",
            bin.display()
        );
    }
    bin
}

pub fn etcdctl_binary() -> PathBuf {
    let bin = PathBuf::from("/usr/bin/etcdctl");
    if !bin.exists() {
        panic!(
            "etcdctl not found at {}: install Debian's etcd-client",
            bin.display()
        );
    }
    bin
}

/// A port free on `ip` now, never handed out twice by this process (tests run in parallel).
pub fn free_port(ip: &str) -> u16 {
    static TAKEN: Mutex<Option<HashSet<(String, u16)>>> = Mutex::new(None);
    loop {
        let port = TcpListener::bind((ip, 0))
            .expect("bind a loopback port")
            .local_addr()
            .unwrap()
            .port();
        let mut taken = TAKEN.lock().unwrap();
        if taken
            .get_or_insert_with(HashSet::new)
            .insert((ip.to_string(), port))
        {
            return port;
        }
    }
}

/// A directory removed on drop.
pub struct TempDir(PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        static N: AtomicUsize = AtomicUsize::new(0);
        let n = N.fetch_add(1, Ordering::Relaxed);
        let path =
            std::env::temp_dir().join(format!("curve-operator-{tag}-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).expect("create temp dir");
        TempDir(path)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

pub struct EtcdMember {
    pub name: String,
    pub ip: String,
    pub client_port: u16,
    pub peer_port: u16,
    args: Vec<String>,
    log: PathBuf,
    child: Option<Child>,
}

impl EtcdMember {
    /// `ip:port` of the client URL.
    pub fn endpoint(&self) -> String {
        format!("{}:{}", self.ip, self.client_port)
    }

    pub fn is_running(&self) -> bool {
        self.child.is_some()
    }

    fn spawn(&mut self) {
        let log = std::fs::File::create(&self.log).expect("create etcd log");
        let child = Command::new(etcd_binary())
            .args(&self.args)
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("start etcd");
        self.child = Some(child);
    }

    /// SIGKILL: the member disappears as a crashed node would.
    fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    fn exited(&mut self) -> Option<String> {
        let status = self.child.as_mut()?.try_wait().ok()??;
        Some(format!(
            "{} exited ({status}):\n{}",
            self.name,
            self.log_tail()
        ))
    }

    pub fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(15)..].join("\n")
    }
}

/// A running etcd cluster of real `etcd` processes.
pub struct EtcdCluster {
    pub members: Vec<EtcdMember>,
    // Declared last: removed after the members are killed.
    dir: TempDir,
}

impl EtcdCluster {
    /// Starts `size` members (127.0.0.11, .12, …) and waits until they have a raft leader and
    /// serve linearizable reads. Ports that turn out taken are replaced (another test or
    /// process may grab a port between our check and etcd's bind).
    pub async fn start(size: usize) -> EtcdCluster {
        Self::start_with(size, &[]).await
    }

    /// [`EtcdCluster::start`] with more flags for every member (`--quota-backend-bytes=…`).
    #[allow(dead_code)] // not every test binary that includes this module uses it
    pub async fn start_with(size: usize, flags: &[&str]) -> EtcdCluster {
        let mut last_error = String::new();
        for _ in 0..3 {
            let mut cluster = Self::spawn(size, flags);
            match cluster.wait_ready(Duration::from_secs(30)).await {
                Ok(()) => return cluster,
                Err(e) => last_error = e,
            }
        }
        panic!("etcd cluster of {size} did not start:\n{last_error}");
    }

    fn spawn(size: usize, flags: &[&str]) -> EtcdCluster {
        static CLUSTERS: AtomicUsize = AtomicUsize::new(0);
        let token = format!(
            "curve-test-{}-{}",
            std::process::id(),
            CLUSTERS.fetch_add(1, Ordering::Relaxed)
        );
        let dir = TempDir::new("etcd");
        let mut members: Vec<EtcdMember> = (0..size)
            .map(|i| {
                let ip = format!("127.0.0.{}", FIRST_HOST as usize + i);
                EtcdMember {
                    name: format!("etcd-{i}"),
                    client_port: free_port(&ip),
                    peer_port: free_port(&ip),
                    ip,
                    args: vec![],
                    log: dir.path().join(format!("etcd-{i}.log")),
                    child: None,
                }
            })
            .collect();
        let initial_cluster = members
            .iter()
            .map(|m| format!("{}=http://{}:{}", m.name, m.ip, m.peer_port))
            .collect::<Vec<_>>()
            .join(",");
        for m in &mut members {
            let client_url = format!("http://{}:{}", m.ip, m.client_port);
            let peer_url = format!("http://{}:{}", m.ip, m.peer_port);
            m.args = vec![
                format!("--name={}", m.name),
                format!("--data-dir={}", dir.path().join(&m.name).display()),
                format!("--listen-client-urls={client_url}"),
                format!("--advertise-client-urls={client_url}"),
                format!("--listen-peer-urls={peer_url}"),
                format!("--initial-advertise-peer-urls={peer_url}"),
                format!("--initial-cluster={initial_cluster}"),
                format!("--initial-cluster-token={token}"),
                "--initial-cluster-state=new".into(),
                // Curve's settings.
                "--heartbeat-interval=100".into(),
                "--election-timeout=1000".into(),
                "--logger=zap".into(),
                "--log-outputs=stderr".into(),
            ];
            m.args.extend(flags.iter().map(|f| f.to_string()));
            m.spawn();
        }
        EtcdCluster { members, dir }
    }

    async fn wait_ready(&mut self, limit: Duration) -> Result<(), String> {
        let deadline = Instant::now() + limit;
        loop {
            for m in &mut self.members {
                if let Some(why) = m.exited() {
                    return Err(why);
                }
            }
            if self.all_ready().await {
                return Ok(());
            }
            if Instant::now() > deadline {
                let logs: Vec<String> = self
                    .members
                    .iter()
                    .map(|m| format!("{}:\n{}", m.name, m.log_tail()))
                    .collect();
                return Err(format!("not ready within {limit:?}\n{}", logs.join("\n")));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    async fn all_ready(&self) -> bool {
        for m in self.members.iter().filter(|m| m.is_running()) {
            let ready = async {
                let mut c = Client::connect([m.endpoint()], None).await.ok()?;
                let status = c.status().await.ok()?;
                c.get("readiness-probe", None).await.ok()?;
                (status.leader() != 0).then_some(())
            };
            if tokio::time::timeout(Duration::from_secs(2), ready)
                .await
                .ok()
                .flatten()
                .is_none()
            {
                return false;
            }
        }
        true
    }

    /// A member that is not started: `spare` of them, on the next addresses (for tests that
    /// add members). Its peer URL is `http://ip:peer_port`.
    pub fn add_spare(&mut self) -> usize {
        let i = self.members.len();
        let ip = format!("127.0.0.{}", FIRST_HOST as usize + i);
        self.members.push(EtcdMember {
            name: format!("etcd-{i}"),
            client_port: free_port(&ip),
            peer_port: free_port(&ip),
            ip,
            args: vec![],
            log: self.dir.path().join(format!("etcd-{i}.log")),
            child: None,
        });
        i
    }

    pub fn peer_url(&self, i: usize) -> String {
        let m = &self.members[i];
        format!("http://{}:{}", m.ip, m.peer_port)
    }

    /// Starts member `i` to join the running cluster (`initial-cluster-state: existing`) with
    /// an empty data dir, as the operator's pods do: `initial_cluster` lists every member.
    pub fn join(&mut self, i: usize, initial_cluster: &str) {
        let data = self
            .dir
            .path()
            .join(format!("{}-{}", self.members[i].name, std::process::id()));
        let _ = std::fs::remove_dir_all(&data);
        let m = &mut self.members[i];
        let client_url = format!("http://{}:{}", m.ip, m.client_port);
        let peer_url = format!("http://{}:{}", m.ip, m.peer_port);
        m.args = vec![
            format!("--name={}", m.name),
            format!("--data-dir={}", data.display()),
            format!("--listen-client-urls={client_url}"),
            format!("--advertise-client-urls={client_url}"),
            format!("--listen-peer-urls={peer_url}"),
            format!("--initial-advertise-peer-urls={peer_url}"),
            format!("--initial-cluster={initial_cluster}"),
            "--initial-cluster-state=existing".into(),
            "--heartbeat-interval=100".into(),
            "--election-timeout=1000".into(),
            "--logger=zap".into(),
            "--log-outputs=stderr".into(),
        ];
        m.spawn();
    }

    /// Kills member `i` and forgets its data: as a pod deleted with its claim.
    pub fn remove(&mut self, i: usize) {
        self.members[i].kill();
        self.members[i].args.clear();
    }

    /// Every member's `ip:port`, stopped ones included.
    pub fn endpoints(&self) -> Vec<String> {
        self.members.iter().map(EtcdMember::endpoint).collect()
    }

    pub fn endpoints_of(&self, members: &[usize]) -> Vec<String> {
        members
            .iter()
            .map(|&i| self.members[i].endpoint())
            .collect()
    }

    /// Kills member `i` (SIGKILL).
    pub fn stop(&mut self, i: usize) {
        self.members[i].kill();
    }

    /// Starts a stopped member again on its data directory and ports, and waits until the
    /// cluster is ready again.
    pub async fn restart(&mut self, i: usize) {
        assert!(!self.members[i].is_running(), "member {i} is running");
        self.members[i].spawn();
        if let Err(e) = self.wait_ready(Duration::from_secs(30)).await {
            panic!("etcd member {i} did not come back: {e}");
        }
    }

    /// The index of the member that is raft leader now, as etcd itself tells.
    pub async fn raft_leader(&self) -> usize {
        let ids = self.member_ids().await;
        for m in self.members.iter().filter(|m| m.is_running()) {
            if let Ok(Ok(mut c)) = tokio::time::timeout(
                Duration::from_secs(2),
                Client::connect([m.endpoint()], None),
            )
            .await
                && let Ok(Ok(s)) = tokio::time::timeout(Duration::from_secs(2), c.status()).await
                && s.leader() != 0
            {
                return ids
                    .iter()
                    .position(|&id| id == s.leader())
                    .expect("leader is a member");
            }
        }
        panic!("no member reports a raft leader");
    }

    /// Member ids, index by index, from the member list of a running member.
    pub async fn member_ids(&self) -> Vec<u64> {
        let running = self
            .members
            .iter()
            .find(|m| m.is_running())
            .expect("a running member");
        let mut c = Client::connect([running.endpoint()], None).await.unwrap();
        let list = tokio::time::timeout(Duration::from_secs(2), c.member_list())
            .await
            .unwrap_or_else(|_| panic!("{} does not answer", running.name))
            .unwrap();
        self.members
            .iter()
            .map(|m| {
                list.members()
                    .iter()
                    .find(|l| l.name() == m.name)
                    .expect("member listed")
                    .id()
            })
            .collect()
    }

    /// Runs etcdctl against `endpoints` and returns its stdout.
    pub fn etcdctl(&self, endpoints: &[String], args: &[&str]) -> String {
        let out = Command::new(etcdctl_binary())
            .env("ETCDCTL_API", "3")
            .arg(format!("--endpoints={}", endpoints.join(",")))
            .args(args)
            .output()
            .expect("run etcdctl");
        assert!(
            out.status.success(),
            "etcdctl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    /// Keys under `prefix`, read directly (to check what the stand-ins did).
    pub async fn keys(&self, prefix: &str) -> Vec<(String, i64, String)> {
        let running: Vec<String> = self
            .members
            .iter()
            .filter(|m| m.is_running())
            .map(EtcdMember::endpoint)
            .collect();
        let mut c = Client::connect(&running[..1], None).await.unwrap();
        let resp = c
            .get(prefix, Some(GetOptions::new().with_prefix()))
            .await
            .unwrap();
        resp.kvs()
            .iter()
            .map(|kv| {
                (
                    kv.key_str().unwrap().to_string(),
                    kv.create_revision(),
                    kv.value_str().unwrap().to_string(),
                )
            })
            .collect()
    }
}

impl Drop for EtcdCluster {
    fn drop(&mut self) {
        for m in &mut self.members {
            m.kill();
        }
    }
}

/// A stand-in for a Curve MDS in the election: a lease with Curve's TTL kept alive as clientv3
/// does (every TTL/3), and a campaign through etcd's election service, which runs clientv3's
/// `concurrency.Election` on the server with that lease: the same keys (`07leader/<lease hex>`),
/// values and create-revision order as an MDS.
pub struct MdsStandIn {
    pub address: String,
    pub election: String,
    pub lease: i64,
    client: Client,
    keepalive: tokio::task::JoinHandle<()>,
    last_keepalive: Arc<Mutex<Instant>>,
    campaign: Option<tokio::task::JoinHandle<()>>,
    leader: tokio::sync::watch::Receiver<Option<LeaderKey>>,
}

impl MdsStandIn {
    /// Campaigns in the MDS election as `address` and returns once its key exists.
    pub async fn campaign(endpoints: &[String], address: &str) -> MdsStandIn {
        Self::campaign_in(endpoints, MDS_ELECTION, address).await
    }

    /// Campaigns in election `election` (e.g. the SnapshotClone one).
    pub async fn campaign_in(endpoints: &[String], election: &str, address: &str) -> MdsStandIn {
        let client = Client::connect(endpoints, None).await.unwrap();
        // Retried like an MDS would: the cluster may be electing a new raft leader.
        let deadline = Instant::now() + Duration::from_secs(15);
        let lease = loop {
            match client
                .lease_client()
                .grant(LEASE_TTL.as_secs() as i64, None)
                .await
            {
                Ok(r) => break r.id(),
                Err(e) if Instant::now() < deadline => {
                    eprintln!("lease grant for {address}: {e}; retrying");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                Err(e) => panic!("lease grant for {address}: {e}"),
            }
        };
        let last_keepalive = Arc::new(Mutex::new(Instant::now()));
        let keepalive = tokio::spawn(keep_alive(client.clone(), lease, last_keepalive.clone()));
        let (_, leader) = tokio::sync::watch::channel(None);
        let mut s = MdsStandIn {
            address: address.to_string(),
            election: election.to_string(),
            lease,
            client,
            keepalive,
            last_keepalive,
            campaign: None,
            leader,
        };
        s.campaign_again().await;
        s
    }

    /// The election key: `<election>/<lease id in hex>`, as clientv3 names it.
    pub fn key(&self) -> String {
        format!("{}/{:x}", self.election, self.lease)
    }

    /// Campaigns (again, after a resignation) with the same lease; returns once the key exists.
    pub async fn campaign_again(&mut self) {
        let (tx, rx) = tokio::sync::watch::channel(None);
        self.leader = rx;
        let mut election = self.client.election_client();
        let (name, value, lease) = (self.election.clone(), self.address.clone(), self.lease);
        // The call returns when elected, so it runs beside us.
        self.campaign = Some(tokio::spawn(async move {
            // Retried like an MDS would (a failed campaign removes its key on the server).
            loop {
                match election.campaign(name.clone(), value.clone(), lease).await {
                    Ok(mut r) => {
                        let _ = tx.send(r.take_leader());
                        return;
                    }
                    Err(e) => eprintln!("campaign of {value}: {e}; retrying"),
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }));
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut kv = self.client.kv_client();
        while kv
            .get(self.key(), None)
            .await
            .map(|r| r.kvs().is_empty())
            .unwrap_or(true)
        {
            assert!(
                Instant::now() < deadline,
                "{} did not get its election key",
                self.address
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    /// Waits until etcd's election service says this candidate won.
    pub async fn wait_elected(&mut self) {
        let wait = self.leader.wait_for(Option::is_some);
        tokio::time::timeout(Duration::from_secs(15), wait)
            .await
            .unwrap_or_else(|_| panic!("{} was not elected", self.address))
            .unwrap();
    }

    /// Gives up leadership as a stopping MDS does: the key goes at once. The lease stays, so
    /// the stand-in can campaign again.
    pub async fn resign(&mut self) {
        self.wait_elected().await;
        let key = self.leader.borrow().clone().unwrap();
        self.client
            .election_client()
            .resign(Some(ResignOptions::new().with_leader(key)))
            .await
            .unwrap();
    }

    /// When etcd last confirmed the lease.
    pub fn last_keepalive(&self) -> Instant {
        *self.last_keepalive.lock().unwrap()
    }

    /// A crash: keep-alives stop and the client goes, nothing is revoked, so the key lives on
    /// until the lease expires.
    pub fn kill(self) {
        // Drop does it.
    }
}

impl Drop for MdsStandIn {
    fn drop(&mut self) {
        self.keepalive.abort();
        if let Some(c) = self.campaign.take() {
            c.abort();
        }
    }
}

/// Keeps the lease alive every TTL/3 as clientv3 does, reopening the stream when it breaks
/// (the stand-in must outlive an etcd member failure, as an MDS does).
async fn keep_alive(client: Client, lease: i64, last: Arc<Mutex<Instant>>) {
    loop {
        let expired: Result<bool, etcd_client::Error> = async {
            let (mut keeper, mut stream) = client.lease_client().keep_alive(lease).await?;
            loop {
                keeper.keep_alive().await?;
                match stream.message().await? {
                    Some(r) if r.ttl() > 0 => *last.lock().unwrap() = Instant::now(),
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

/// Runs `fut`, failing the test with `what` if it takes longer than `limit`.
pub async fn within<T>(
    limit: Duration,
    what: &str,
    fut: impl std::future::Future<Output = T>,
) -> T {
    match tokio::time::timeout(limit, fut).await {
        Ok(v) => v,
        Err(_) => panic!("{what}: nothing within {limit:?}"),
    }
}
