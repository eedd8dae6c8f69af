//! The Curve stand-ins' I/O: a small brpc-like HTTP/1.1 server, the services of the primary
//! MDS on its listen port, every MDS's dummy port, and a ChunkServer stand-in per ChunkServer
//! pod — all answering from the cluster's one [`CurveModel`] in the formats of
//! [`crate::curve_wire`].

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::AbortHandle;

use crate::curve_model::{CurveModel, CurveSettings, RegistRequest, StartGate};
use crate::curve_wire::{
    self, HttpAnswer, RaftClock, brpc_error, mds_dummy_vars, pb_route, scheduler_vars,
    topology_vars, vars_answer,
};

/// One test cluster's Curve state and whether its primary MDS listens.
pub struct CurveCluster {
    pub model: Mutex<CurveModel>,
    /// Primaries listening on their listen port (ChunkServers register and heartbeat only
    /// through one).
    listening: AtomicUsize,
    /// The address of the MDS elected last.
    primary: Mutex<String>,
}

pub type CurveHandle = Arc<CurveCluster>;

impl CurveCluster {
    pub fn new(settings: CurveSettings) -> CurveHandle {
        Arc::new(CurveCluster {
            model: Mutex::new(CurveModel::new(settings)),
            listening: AtomicUsize::new(0),
            primary: Mutex::default(),
        })
    }

    pub fn primary_listening(&self) -> bool {
        self.listening.load(Ordering::Acquire) > 0
    }

    pub fn primary_address(&self) -> String {
        self.primary.lock().unwrap().clone()
    }

    pub fn copyset_count(&self) -> usize {
        self.model.lock().unwrap().copyset_count()
    }
}

/// An HTTP request as the server reads it.
#[derive(Debug, Default)]
pub struct HttpRequest {
    pub path: String,
    pub query: String,
    /// Header names lower-cased.
    pub headers: HashMap<String, String>,
    pub body: Vec<u8>,
}

impl HttpRequest {
    pub fn content_type(&self) -> &str {
        self.headers.get("content-type").map_or("", String::as_str)
    }
}

pub type Handler = Arc<dyn Fn(&HttpRequest) -> HttpAnswer + Send + Sync>;

/// Serves `handler` on `listener`, HTTP/1.1 keep-alive as brpc does; an HTTP/1.0 request or
/// `Connection: close` ends the connection after its answer.
pub async fn serve(listener: TcpListener, handler: Handler) {
    // The connections live in a set this future owns: when the server is stopped (the future
    // aborted), its kept-alive connections close too, as a killed process's would; spawned
    // apart, a scraper's keep-alive connection went on being answered by a dead daemon.
    let mut connections = tokio::task::JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                if let Ok((stream, _)) = accepted {
                    connections.spawn(serve_connection(stream, handler.clone()));
                }
            }
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
}

async fn serve_connection(mut stream: TcpStream, handler: Handler) {
    let mut buffer = Vec::new();
    loop {
        let (request, keep_alive, used) = loop {
            if let Some(parsed) = parse_request(&buffer) {
                break parsed;
            }
            let mut chunk = [0u8; 4096];
            match stream.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => buffer.extend_from_slice(&chunk[..n]),
            }
        };
        buffer.drain(..used);
        let answer = handler(&request);
        if stream.write_all(&answer.to_bytes()).await.is_err() || !keep_alive {
            return;
        }
    }
}

/// A whole request at the start of `buffer`: it, whether the connection stays, its length.
fn parse_request(buffer: &[u8]) -> Option<(HttpRequest, bool, usize)> {
    let end = buffer.windows(4).position(|w| w == b"\r\n\r\n")? + 4;
    let head = String::from_utf8_lossy(&buffer[..end]);
    let mut lines = head.split("\r\n");
    let mut first = lines.next()?.split(' ');
    let _method = first.next()?;
    let target = first.next()?;
    let version = first.next().unwrap_or("HTTP/1.1");
    let headers: HashMap<String, String> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let length: usize = headers
        .get("content-length")
        .and_then(|l| l.parse().ok())
        .unwrap_or(0);
    if buffer.len() < end + length {
        return None;
    }
    let connection = headers.get("connection").map(|c| c.to_ascii_lowercase());
    let keep_alive = match version {
        "HTTP/1.0" => connection.as_deref() == Some("keep-alive"),
        _ => connection.as_deref() != Some("close"),
    };
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    let request = HttpRequest {
        path: path.to_string(),
        query: query.to_string(),
        headers,
        body: buffer[end..end + length].to_vec(),
    };
    Some((request, keep_alive, end + length))
}

/// Binds `addr`, retried briefly (a restarted daemon's old socket may linger).
async fn bind(addr: &str) -> Option<TcpListener> {
    for _ in 0..50 {
        if let Ok(listener) = TcpListener::bind(addr).await {
            return Some(listener);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    None
}

/// brpc's `/health` (B:src/brpc/builtin/health_service.cpp:26-40).
fn health() -> HttpAnswer {
    HttpAnswer::text("OK".into())
}

/// `/vars/<filter>` on `vars`; `/vars` alone lists them all.
fn vars_route(
    server: &str,
    path: &str,
    vars: &[(String, curve_wire::VarValue)],
) -> Option<HttpAnswer> {
    let filter = path.strip_prefix("/vars")?;
    Some(vars_answer(server, vars, filter.trim_start_matches('/')))
}

/// What an MDS's dummy port answers (every MDS, primary or not; C:src/mds/server/mds.cpp:
/// 73-87): `/vars` with `mds_status` and the listen address — and, once elected with a Curve
/// model, the schedule bvars (bvars are the process's: every port shows them) — `/health`,
/// and the brpc-style `/metrics` the monitoring scenario scrapes.
pub fn dummy_handler(
    server: String,
    listen_addr: String,
    port: u16,
    leader: Arc<AtomicBool>,
    cluster: Option<CurveHandle>,
) -> Handler {
    let started = Instant::now();
    Arc::new(move |request: &HttpRequest| {
        let elected = leader.load(Ordering::Acquire);
        let mut vars = mds_dummy_vars(elected, &listen_addr);
        if let Some(cluster) = cluster.as_ref().filter(|_| elected) {
            vars.extend(scheduler_vars(&cluster.model.lock().unwrap()));
        }
        if let Some(answer) = vars_route(&server, &request.path, &vars) {
            return answer;
        }
        match request.path.as_str() {
            "/health" => health(),
            "/metrics" => HttpAnswer::text(format!(
                "# HELP process_uptime process_uptime\n# TYPE process_uptime gauge\nprocess_uptime {}\n\
                 # HELP rpc_server_{port}_connection_count rpc_server_{port}_connection_count\n\
                 # TYPE rpc_server_{port}_connection_count gauge\nrpc_server_{port}_connection_count 0\n",
                started.elapsed().as_secs()
            )),
            path => brpc_error(
                &server,
                curve_wire::ENOMETHOD,
                &format!("Fail to find method on `{path}'"),
            ),
        }
    })
}

/// What the primary answers on its listen port: the topology and schedule calls, and the
/// `/vars` of the whole process (the dummy ones and, one metric interval after the
/// election, the topology bvars; C:src/mds/topology/topology_metric.cpp BackEndFunc sleeps
/// first).
pub fn primary_handler(server: String, listen_addr: String, cluster: CurveHandle) -> Handler {
    Arc::new(move |request: &HttpRequest| {
        let mut model = cluster.model.lock().unwrap();
        if request.path.starts_with("/vars") {
            let mut vars = mds_dummy_vars(true, &listen_addr);
            vars.extend(scheduler_vars(&model));
            let refreshed = model
                .elected_at
                .is_some_and(|t| t.elapsed() >= model.settings.metric_interval);
            if refreshed {
                vars.extend(topology_vars(&model));
            }
            return vars_route(&server, &request.path, &vars).unwrap();
        }
        if request.path == "/health" {
            return health();
        }
        match pb_route(&request.path) {
            Some((service, method)) => curve_wire::mds_call(
                &mut model,
                &server,
                service,
                method,
                &request.body,
                request.content_type(),
            ),
            None => brpc_error(
                &server,
                curve_wire::ENOMETHOD,
                &format!("Fail to find method on `{}'", request.path),
            ),
        }
    })
}

/// The primary's services, started once it is elected: the model learns of the new
/// primary (heartbeat tracking re-seeded, no operators), its healthy checker runs every miss
/// timeout and its copyset and recover schedulers every their interval, and its listen port
/// serves unless refused.
pub struct Primary {
    cluster: CurveHandle,
    address: String,
    listen: Mutex<Option<AbortHandle>>,
    refused: AtomicBool,
    timers: Vec<AbortHandle>,
}

/// Runs `tick` on the model every `period` (read again each time: tests change settings).
fn every(
    cluster: &CurveHandle,
    period: fn(&CurveSettings) -> Duration,
    tick: fn(&mut CurveModel, Instant),
) -> AbortHandle {
    let cluster = cluster.clone();
    tokio::spawn(async move {
        loop {
            let wait = period(&cluster.model.lock().unwrap().settings);
            tokio::time::sleep(wait).await;
            tick(&mut cluster.model.lock().unwrap(), Instant::now());
        }
    })
    .abort_handle()
}

impl Primary {
    pub fn start(cluster: CurveHandle, address: String) -> Arc<Primary> {
        cluster.model.lock().unwrap().mds_takes_over(Instant::now());
        *cluster.primary.lock().unwrap() = address.clone();
        // HeartbeatManager's checker thread (C:src/mds/heartbeat/heartbeat_manager.cpp:92-97)
        // and the Coordinator's copyset and recover scheduler threads (RunScheduler: sleep
        // the interval, then Schedule; C:src/mds/schedule/coordinator.cpp:224-232).
        let timers = vec![
            every(&cluster, |s| s.miss_timeout, CurveModel::check_heartbeats),
            every(
                &cluster,
                |s| s.copyset_scheduler_interval,
                |model, now| {
                    model.schedule(now);
                },
            ),
            every(
                &cluster,
                |s| s.recover_scheduler_interval,
                |model, now| {
                    model.recover(now);
                },
            ),
        ];
        let primary = Arc::new(Primary {
            cluster,
            address,
            listen: Mutex::new(None),
            refused: AtomicBool::new(false),
            timers,
        });
        primary.open_listen_port();
        primary
    }

    fn open_listen_port(&self) {
        let mut listen = self.listen.lock().unwrap();
        if listen.is_some() || self.refused.load(Ordering::Acquire) {
            return;
        }
        let handler = primary_handler(
            self.address.clone(),
            self.address.clone(),
            self.cluster.clone(),
        );
        let address = self.address.clone();
        let cluster = self.cluster.clone();
        let task = tokio::spawn(async move {
            let Some(listener) = bind(&address).await else {
                return;
            };
            cluster.listening.fetch_add(1, Ordering::AcqRel);
            let _guard = Listening(cluster.clone());
            serve(listener, handler).await;
        });
        *listen = Some(task.abort_handle());
    }

    fn close_listen_port(&self) {
        if let Some(task) = self.listen.lock().unwrap().take() {
            task.abort();
        }
    }

    /// The listen port refuses connections (`true`) or serves again (`false`); the MDS
    /// stays primary.
    pub fn refuse_listen(&self, refuse: bool) {
        self.refused.store(refuse, Ordering::Release);
        if refuse {
            self.close_listen_port();
        } else {
            self.open_listen_port();
        }
    }

    pub fn stop(&self) {
        self.close_listen_port();
        for timer in &self.timers {
            timer.abort();
        }
    }
}

impl Drop for Primary {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Counts a primary as listening while its server task lives.
struct Listening(CurveHandle);

impl Drop for Listening {
    fn drop(&mut self) {
        self.0.listening.fetch_sub(1, Ordering::AcqRel);
    }
}

/// A ChunkServer pod's container on a stand-in: first the start wrapper's empty-disk gate
/// (`curve_operator::desired::start`: with no `chunkserver.dat` on the volume, a live
/// ChunkServer the MDS lists at this ip:port refuses the start; no MDS answering, it waits),
/// then the ChunkServer: it registers through the primary as Curve's does at start
/// (C:src/chunkserver/chunkserver.cpp:190-217, retried every second as
/// C:src/chunkserver/register.cpp:79-122, and a registration refused `register_retries` times
/// is fatal), then serves its port (296-363) — `/raft_stat`,
/// `ChunkServerService/ChunkServerStatus` (copysets loaded only after the load time) — and
/// heartbeats every heartbeat interval.
pub struct ChunkServerStandIn {
    pub address: String,
    disk: String,
    cluster: CurveHandle,
    state: Arc<ChunkServerState>,
    task: tokio::task::JoinHandle<()>,
}

/// How the container ended by itself: its exit code and its termination message (what the
/// wrapper wrote to the termination log, or the end of the ChunkServer's log).
#[derive(Clone, Debug, PartialEq)]
pub struct ContainerExit {
    pub code: i32,
    pub message: String,
}

#[derive(Default)]
struct ChunkServerState {
    id: Mutex<Option<u32>>,
    stopped: AtomicBool,
    listening: AtomicBool,
    exit: Mutex<Option<ContainerExit>>,
    tasks: Mutex<Vec<AbortHandle>>,
}

impl ChunkServerStandIn {
    /// `disk` names the data volume (its `chunkserver.dat` and copysets live in the model).
    /// `empty_disk_gate` false starts the ChunkServer without the wrapper's gate (the
    /// behaviour before issue 29).
    pub fn start(
        cluster: CurveHandle,
        disk: String,
        ip: String,
        port: u16,
        empty_disk_gate: bool,
    ) -> ChunkServerStandIn {
        let state = Arc::new(ChunkServerState::default());
        let address = format!("{ip}:{port}");
        let task = tokio::spawn(run_container(
            cluster.clone(),
            disk.clone(),
            ip,
            port,
            empty_disk_gate,
            state.clone(),
        ));
        ChunkServerStandIn {
            address,
            disk,
            cluster,
            state,
            task,
        }
    }

    /// The process runs (registering, or serving).
    pub fn is_running(&self) -> bool {
        !self.state.stopped.load(Ordering::Acquire) && !self.task.is_finished()
    }

    /// Its port is open (what a TCP probe sees).
    pub fn is_listening(&self) -> bool {
        self.state.listening.load(Ordering::Acquire) && !self.task.is_finished()
    }

    pub fn id(&self) -> Option<u32> {
        *self.state.id.lock().unwrap()
    }

    /// The process ends and its volume's data is gone (a disk replaced under the same claim).
    pub fn lose_data(&mut self) {
        self.stop();
        self.cluster.model.lock().unwrap().wipe_disk(&self.disk);
    }

    /// How the container ended, when it exited by itself (a refusal or a crash).
    pub fn exit(&self) -> Option<ContainerExit> {
        self.state.exit.lock().unwrap().clone()
    }

    /// Its raft groups fail (as on a disk I/O error) while the process runs and listens: it
    /// serves none of its copysets, its peers see it as down; `false` brings them back.
    pub fn fail_copysets(&self, failed: bool) {
        let Some(id) = self.id() else { return };
        let mut model = self.cluster.model.lock().unwrap();
        if failed {
            model.chunkserver_stopped(id);
        } else {
            model.chunkserver_started(id, &self.disk);
        }
    }

    /// The process ends: its server and heartbeats stop.
    pub fn stop(&mut self) {
        self.state.stopped.store(true, Ordering::Release);
        self.task.abort();
        for task in self.state.tasks.lock().unwrap().drain(..) {
            task.abort();
        }
        self.state.listening.store(false, Ordering::Release);
        if let Some(id) = self.state.id.lock().unwrap().take() {
            self.cluster.model.lock().unwrap().chunkserver_stopped(id);
        }
    }
}

impl Drop for ChunkServerStandIn {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The wrapper's empty-disk refusal: exit 1, the message in the termination log
/// (`refuse` in the start script), for the ChunkServer the MDS still lists at ip:port.
pub fn empty_disk_exit(blocking: &crate::curve_model::ChunkServer) -> ContainerExit {
    ContainerExit {
        code: 1,
        message: curve_operator::desired::start::empty_disk_refusal(
            blocking.id,
            &format!("{}:{}", blocking.ip, blocking.port),
            blocking.status.as_str(),
            blocking.online.as_str(),
        ),
    }
}

/// A ChunkServer that gave up registering: Register::RegisterToMDS logs each refusal and the
/// last count (C:src/chunkserver/register.cpp:100-121), then `LOG_IF(FATAL, …) << "Failed to
/// register to MDS."` (C:src/chunkserver/chunkserver.cpp:207-209 with a `chunkserver.dat`,
/// 214-216 without) aborts: glog's SIGABRT, exit 134. The termination message is the end
/// of its log (the container's FallbackToLogsOnError).
pub fn registration_failed_exit(
    address: &str,
    mds: &str,
    status: i32,
    retries: u32,
    with_meta: bool,
) -> ContainerExit {
    let line = if with_meta { 207 } else { 214 };
    // glog's prefix: severity, mmdd hh:mm:ss.uuuuuu, thread id (the exec'd daemon's main
    // thread is the container's pid 1), file:line.
    let time = k8s_openapi::jiff::Timestamp::now().strftime("%m%d %H:%M:%S.%6f");
    let log =
        |severity: char, at: &str, text: String| format!("{severity}{time}     1 {at}] {text}");
    let lines = [
        log(
            'E',
            "register.cpp:100",
            format!(
                "{address} Fail to register to MDS {mds}, cntl errorCode: 0, cntl error: , \
                 statusCode: {status}, going to sleep and try again."
            ),
        ),
        log(
            'E',
            "register.cpp:118",
            format!("{address} Fail to register to MDS for {retries} times."),
        ),
        log(
            'F',
            &format!("chunkserver.cpp:{line}"),
            "Failed to register to MDS.".to_string(),
        ),
    ];
    ContainerExit {
        code: 134,
        message: lines.join("\n"),
    }
}

async fn run_container(
    cluster: CurveHandle,
    disk: String,
    ip: String,
    port: u16,
    empty_disk_gate: bool,
    state: Arc<ChunkServerState>,
) {
    let ended = if empty_disk_gate {
        wait_at_the_gate(&cluster, &disk, &ip, port).await
    } else {
        None
    };
    let ended = match ended {
        Some(exit) => Some(exit),
        None => run_chunkserver(cluster, disk, ip, port, state.clone()).await,
    };
    *state.exit.lock().unwrap() = ended;
}

/// The wrapper's gate: asks the MDS (every second until the primary answers), then refuses
/// or lets the ChunkServer start.
async fn wait_at_the_gate(
    cluster: &CurveHandle,
    disk: &str,
    ip: &str,
    port: u16,
) -> Option<ContainerExit> {
    loop {
        if cluster.primary_listening() {
            let model = cluster.model.lock().unwrap();
            return match model.start_gate(disk, ip, u32::from(port)) {
                StartGate::Proceed => None,
                StartGate::Refuse(blocking) => Some(empty_disk_exit(&blocking)),
            };
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

/// The ChunkServer process; returns only when it ends by itself.
async fn run_chunkserver(
    cluster: CurveHandle,
    disk: String,
    ip: String,
    port: u16,
    state: Arc<ChunkServerState>,
) -> Option<ContainerExit> {
    let mut refused = 0;
    let (id, token) = loop {
        if cluster.primary_listening() {
            let mut model = cluster.model.lock().unwrap();
            let meta = model.disks.get(&disk).and_then(|d| d.meta.clone());
            let request = RegistRequest {
                disk_type: "nvme".into(),
                disk_path: "local:///curvebs/chunkserver/data".into(),
                host_ip: ip.clone(),
                port: u32::from(port),
                // -enableExternalServer=false: no externalIp (register.cpp:63-65).
                external_ip: None,
                id: meta.as_ref().map(|m| m.0),
                token: meta.as_ref().map(|m| m.1.clone()),
            };
            let answer = model.regist_chunkserver(&request);
            if let Some(id_token) = answer.id_token {
                break id_token;
            }
            // Only refusals are counted: while no primary listens the stand-in waits (Curve
            // would count those tries too and abort after the same number).
            refused += 1;
            let retries = model.settings.register_retries;
            if refused > retries {
                let mds = cluster.primary_address();
                return Some(registration_failed_exit(
                    &format!("{ip}:{port}"),
                    &mds,
                    answer.status,
                    retries,
                    meta.is_some(),
                ));
            }
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    };
    let listener = bind(&format!("{ip}:{port}")).await?;
    cluster.model.lock().unwrap().chunkserver_started(id, &disk);
    *state.id.lock().unwrap() = Some(id);
    let started = Instant::now();
    let load_time = cluster.model.lock().unwrap().settings.copyset_load_time;
    let handler = chunkserver_handler(
        cluster.clone(),
        id,
        format!("{ip}:{port}"),
        started,
        load_time,
    );
    let server = tokio::spawn(serve(listener, handler));
    state.tasks.lock().unwrap().push(server.abort_handle());
    state.listening.store(true, Ordering::Release);
    loop {
        if cluster.primary_listening() {
            let status = (cluster.model.lock().unwrap()).heartbeat(
                id,
                &token,
                &ip,
                u32::from(port),
                Instant::now(),
            );
            let _ = status;
        }
        let period = cluster.model.lock().unwrap().settings.heartbeat_interval;
        tokio::time::sleep(period).await;
    }
}

fn chunkserver_handler(
    cluster: CurveHandle,
    id: u32,
    server: String,
    started: Instant,
    load_time: Duration,
) -> Handler {
    Arc::new(move |request: &HttpRequest| {
        let elapsed = started.elapsed();
        if let Some(group) = request.path.strip_prefix("/raft_stat") {
            let model = cluster.model.lock().unwrap();
            let clock = RaftClock {
                phase_ms: elapsed.as_millis() as u64,
                election_timeout_ms: 1000,
                snapshot_interval_ms: 1_800_000,
                heartbeats: elapsed.as_millis() as u64 / 100,
            };
            let errors = 1 + (elapsed.as_millis() / 1000) as u32;
            let mut nodes = model.raft_nodes(id, errors);
            // `/raft_stat/<group>`: that group only; unknown → empty 200
            // (R:src/braft/builtin_service_impl.cpp:42-69).
            let group = group.trim_start_matches('/');
            if !group.is_empty() {
                nodes.retain(|n| crate::curve_model::group_id(n.group).to_string() == group);
            }
            return HttpAnswer::text(curve_wire::raft_stat(&nodes, clock));
        }
        match pb_route(&request.path) {
            Some(("ChunkServerService", "ChunkServerStatus")) => {
                curve_wire::chunkserver_status(elapsed >= load_time, request.content_type())
            }
            _ if request.path == "/health" => health(),
            _ => brpc_error(
                &server,
                curve_wire::ENOMETHOD,
                &format!("Fail to find method on `{}'", request.path),
            ),
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_are_framed_by_content_length_and_keep_alive() {
        let raw = b"POST /TopologyService/ListChunkServer HTTP/1.1\r\nContent-Type: application/json\r\nContent-Length: 14\r\n\r\n{\"serverID\":1}GET /vars HTTP/1.0\r\n\r\n";
        let (request, keep, used) = parse_request(raw).unwrap();
        assert_eq!(request.path, "/TopologyService/ListChunkServer");
        assert_eq!(request.body, b"{\"serverID\":1}");
        assert_eq!(request.content_type(), "application/json");
        assert!(keep);
        let (second, keep, _) = parse_request(&raw[used..]).unwrap();
        assert_eq!((second.path.as_str(), keep), ("/vars", false));
        assert!(parse_request(&raw[..used - 3]).is_none());
        let (q, _, _) =
            parse_request(b"GET /raft_stat/4294967297?console=1 HTTP/1.1\r\n\r\n").unwrap();
        assert_eq!(
            (q.path.as_str(), q.query.as_str()),
            ("/raft_stat/4294967297", "console=1")
        );
    }

    #[test]
    fn the_dummy_port_says_follower_until_elected() {
        let leader = Arc::new(AtomicBool::new(false));
        let handler = dummy_handler(
            "127.0.0.1:6700".into(),
            "127.0.0.1:6666".into(),
            6700,
            leader.clone(),
            None,
        );
        let get = |path: &str| {
            let answer = handler(&HttpRequest {
                path: path.into(),
                ..HttpRequest::default()
            });
            (answer.status, String::from_utf8(answer.body).unwrap())
        };
        assert_eq!(
            get("/vars/mds_status"),
            (200, "mds_status : \"follower\"\r\n".into())
        );
        leader.store(true, Ordering::Release);
        assert_eq!(
            get("/vars/mds_status"),
            (200, "mds_status : \"leader\"\r\n".into())
        );
        assert_eq!(get("/health"), (200, "OK".into()));
        assert!(get("/metrics").1.contains("process_uptime "));
        assert_eq!(get("/nothing").0, 404);
    }

    /// Three servers in three zones, a ChunkServer stand-in on each (disk `disk-<ip>`, the
    /// gate on), registered through a listening primary, and a pool of `copysets` on them.
    struct Serving {
        cluster: CurveHandle,
        primary: Arc<Primary>,
        mds: String,
        ips: [&'static str; 3],
        port: u16,
        chunkservers: Vec<ChunkServerStandIn>,
    }

    async fn until(what: &str, check: impl Fn() -> bool) {
        crate::util::eventually(what, Duration::from_secs(10), || {
            let done = check();
            async move {
                if done {
                    Ok(())
                } else {
                    Err("not yet".to_string())
                }
            }
        })
        .await;
    }

    async fn serving(settings: CurveSettings, copysets: u32) -> Serving {
        use crate::util::free_port;
        let cluster = CurveCluster::new(settings);
        let ips = ["127.0.0.1", "127.0.0.2", "127.0.0.3"];
        let port = free_port();
        let servers: Vec<serde_json::Value> = (ips.iter().enumerate())
            .map(|(i, ip)| {
                serde_json::json!({"name": format!("node-{i}"), "internalip": ip,
                "internalport": port, "externalip": ip, "externalport": port,
                "zone": format!("zone{}", i + 1), "physicalpool": "pool1"})
            })
            .collect();
        let map: crate::curve_model::ClusterMapFile = serde_json::from_value(serde_json::json!({
            "servers": servers,
            "logicalpools": [{"name": "pool", "physicalpool": "pool1", "type": 0, "replicasnum": 3,
                "copysetnum": copysets, "zonenum": 3, "scatterwidth": 0}]}))
        .unwrap();
        (cluster.model.lock().unwrap())
            .apply_physical_pool(&map)
            .unwrap();
        let mds = format!("127.0.0.1:{}", free_port());
        let primary = Primary::start(cluster.clone(), mds.clone());
        let chunkservers: Vec<ChunkServerStandIn> = (ips.iter())
            .map(|ip| {
                let disk = format!("disk-{ip}");
                ChunkServerStandIn::start(cluster.clone(), disk, ip.to_string(), port, true)
            })
            .collect();
        until("ChunkServers serving", || {
            chunkservers.iter().all(ChunkServerStandIn::is_listening)
        })
        .await;
        (cluster.model.lock().unwrap())
            .apply_logical_pool(&map, 1)
            .unwrap();
        Serving {
            cluster,
            primary,
            mds,
            ips,
            port,
            chunkservers,
        }
    }

    /// The stand-ins on real sockets: ChunkServers register through the listening primary,
    /// the logical pool is placed on them, and the pages read back over HTTP agree with the
    /// model; a stopped ChunkServer's port refuses and its peers' leaders show it blocking;
    /// a refused listen port stops registration answers.
    #[tokio::test]
    async fn stand_ins_serve_the_model_over_http() {
        use crate::util::http_get;
        let Serving {
            cluster,
            primary,
            mds,
            ips,
            port,
            mut chunkservers,
        } = serving(CurveSettings::default(), 4).await;
        let limit = Duration::from_secs(2);
        let (status, body) = http_get(&mds, "/TopologyService/GetCopySetsInCluster", limit)
            .await
            .unwrap();
        assert_eq!(status, 200);
        assert!(
            body.ends_with(r#"{"logicalPoolId":1,"copysetId":4}]}"#),
            "{body}"
        );
        let cs0 = format!("{}:{port}", ips[0]);
        let (_, page) = http_get(&cs0, "/raft_stat", limit).await.unwrap();
        assert_eq!(page.matches("\r\npeers: ").count(), 4, "{page}");
        let (_, one) = http_get(&cs0, "/raft_stat/4294967298", limit)
            .await
            .unwrap();
        assert!(one.starts_with("[4294967298]\r\npeer_id: "), "{one}");
        let (_, status) = http_get(&cs0, "/ChunkServerService/ChunkServerStatus", limit)
            .await
            .unwrap();
        assert_eq!(status, r#"{"copysetLoadFin":true}"#);
        // Stop the ChunkServer on .3: its port refuses, leaders show it blocking.
        chunkservers[2].stop();
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert!(
            http_get(&format!("{}:{port}", ips[2]), "/raft_stat", limit)
                .await
                .is_err()
        );
        let (_, page) = http_get(&cs0, "/raft_stat", limit).await.unwrap();
        let (_, page1) = http_get(&format!("{}:{port}", ips[1]), "/raft_stat", limit)
            .await
            .unwrap();
        let stopped = format!(
            "@{}:{port}:0: next_index=2  flying_append_entries_size=0 blocking",
            ips[2]
        );
        assert!(
            page.contains(&stopped) || page1.contains(&stopped),
            "{page}{page1}"
        );
        assert!(
            !page.contains("state: CANDIDATE") && page.contains("state: LEADER")
                || page1.contains("state: LEADER")
        );
        // The primary's listen port refusing.
        assert!(cluster.primary_listening());
        primary.refuse_listen(true);
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert!(http_get(&mds, "/vars/mds_status", limit).await.is_err());
        assert!(!cluster.primary_listening());
        primary.refuse_listen(false);
        crate::util::eventually("the listen port again", Duration::from_secs(5), || {
            let mds = mds.clone();
            async move { http_get(&mds, "/vars/mds_status", limit).await.map(|_| ()) }
        })
        .await;
    }

    /// The start wrapper's gate and Curve's fatal registration on real sockets: an empty
    /// disk at a live ChunkServer's address exits 1 with the refusal and registers nothing;
    /// without the gate it takes the old id (the trap); a disk holding a RETIRED id aborts
    /// after its refused registrations; the primary's `/vars` count the operators.
    #[tokio::test]
    async fn an_empty_disk_is_refused_and_a_retired_id_is_fatal() {
        use crate::util::http_get;
        let settings = CurveSettings {
            register_retries: 1,
            ..CurveSettings::default()
        };
        let Serving {
            cluster,
            primary: _primary,
            mds,
            ips,
            port,
            mut chunkservers,
        } = serving(settings, 2).await;
        let address = format!("{}:{port}", ips[0]);
        chunkservers[0].stop();
        let refused =
            ChunkServerStandIn::start(cluster.clone(), "fresh".into(), ips[0].into(), port, true);
        until("the refusal", || refused.exit().is_some()).await;
        let expected =
            curve_operator::desired::start::empty_disk_refusal(1, &address, "READWRITE", "ONLINE");
        assert_eq!(
            refused.exit(),
            Some(ContainerExit {
                code: 1,
                message: expected
            })
        );
        assert!(!refused.is_running() && refused.id().is_none());
        assert_eq!(cluster.model.lock().unwrap().chunkservers.len(), 3);
        // Without the gate, the same empty disk takes id 1.
        let trapped =
            ChunkServerStandIn::start(cluster.clone(), "fresh".into(), ips[0].into(), port, false);
        until("the old id taken", || trapped.id().is_some()).await;
        assert_eq!(trapped.id(), Some(1));
        drop(trapped);
        // Id 1 RETIRED while its old disk holds it: refused once, then fatal.
        let retire = crate::curve_model::ChunkServerStatus::Retired;
        cluster.model.lock().unwrap().set_chunkserver(1, retire);
        let retired = ChunkServerStandIn::start(
            cluster.clone(),
            format!("disk-{}", ips[0]),
            ips[0].into(),
            port,
            true,
        );
        until("the abort", || retired.exit().is_some()).await;
        let exit = retired.exit().unwrap();
        assert_eq!(exit.code, 134);
        let lines: Vec<&str> = exit.message.lines().collect();
        assert_eq!(lines.len(), 3, "{}", exit.message);
        assert!(
            lines[0].ends_with(&format!(
                "     1 register.cpp:100] {address} Fail to register to MDS {mds}, cntl errorCode: 0, cntl error: , statusCode: -2, going to sleep and try again."
            )),
            "{}",
            lines[0]
        );
        assert!(lines[2].starts_with('F'), "{}", lines[2]);
        assert!(
            lines[2].ends_with(" chunkserver.cpp:207] Failed to register to MDS."),
            "{}",
            lines[2]
        );
        // The schedule bvars on the primary's port: none in flight, then one.
        let limit = Duration::from_secs(2);
        let vars = "/vars/mds_scheduler_metric_operator_num";
        let (_, body) = http_get(&mds, vars, limit).await.unwrap();
        assert_eq!(body, "mds_scheduler_metric_operator_num : 0\r\n");
        let key = (1, 1);
        let op = crate::curve_model::ChangePeer {
            copyset: key,
            source: 2,
            target: 1,
            created: Instant::now(),
        };
        cluster.model.lock().unwrap().operators.insert(key, op);
        let (_, body) = http_get(&mds, vars, limit).await.unwrap();
        assert_eq!(body, "mds_scheduler_metric_operator_num : 1\r\n");
    }
}
