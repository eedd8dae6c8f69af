//! The kubelet's prober, for pods whose probes the harness runs as the operator rendered them
//! (the ChunkServers'): the startup probe until it succeeds, then the readiness probe, with the
//! thresholds of pkg/kubelet/prober/worker.go. An `exec` probe runs its command on this host
//! with the container's environment (the ChunkServer's readiness script calls `curl` on
//! `$POD_IP:$CURVE_PORT`, which the stand-in serves); `tcpSocket` and `httpGet` connect to the
//! pod's address.
//!
//! The harness's clock is not the rendered one: a probe runs every [`PROBE_PERIOD`] from the
//! container's start, without its `initialDelaySeconds` and `periodSeconds` (a ChunkServer's
//! startup probe waits 10 s before its first try; a scenario would wait as long for every
//! pod). Its `timeoutSeconds`, `successThreshold` and `failureThreshold` hold. A startup probe
//! that keeps failing is only logged: the rendered one gives a ChunkServer an hour.

use std::collections::BTreeMap;
use std::process::Stdio;
use std::time::{Duration, Instant};

use curve_image_emulation::expansion::expand;
use k8s_openapi::api::core::v1::{Container, Pod, Probe};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kube::ResourceExt;

/// How often the harness runs a container's probe.
pub const PROBE_PERIOD: Duration = Duration::from_secs(1);

/// Which probe runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Startup,
    Readiness,
}

/// What the prober knows of one container (reset when the container restarts).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ProbeState {
    /// The startup probe succeeded (or there is none once the first readiness probe ran).
    pub started: bool,
    pub ready: bool,
    /// The last result of the probe now running and how many times in a row it came.
    last: Option<bool>,
    run: i32,
    last_probe: Option<Instant>,
}

impl ProbeState {
    /// The probe due at `now`, if any: readiness only once the container started (worker.go
    /// `doProbe` skips the other probes until then). A ready container is probed every
    /// `ready_period` (see [`Kubelet::set_ready_probe_period`](crate::kubelet::Kubelet)), any
    /// other every [`PROBE_PERIOD`].
    pub fn due(&self, now: Instant, has_startup: bool, ready_period: Duration) -> Option<Kind> {
        let period = if self.ready {
            ready_period.max(PROBE_PERIOD)
        } else {
            PROBE_PERIOD
        };
        if self
            .last_probe
            .is_some_and(|t| now.duration_since(t) < period)
        {
            return None;
        }
        Some(if has_startup && !self.started {
            Kind::Startup
        } else {
            Kind::Readiness
        })
    }

    /// The state after a `kind` probe with this outcome: a result changes the state only
    /// after it came `successThreshold` (success) or `failureThreshold` (failure) times in a
    /// row (worker.go); a readiness probe starts from not ready.
    pub fn after(&self, kind: Kind, success: bool, probe: Option<&Probe>, now: Instant) -> Self {
        let mut next = self.clone();
        next.last_probe = Some(now);
        if kind == Kind::Startup && self.started == success {
            return next;
        }
        if next.last == Some(success) {
            next.run += 1;
        } else {
            (next.last, next.run) = (Some(success), 1);
        }
        let threshold = match success {
            true => probe.and_then(|p| p.success_threshold).unwrap_or(1),
            false => probe.and_then(|p| p.failure_threshold).unwrap_or(3),
        };
        if next.run >= threshold {
            match kind {
                Kind::Startup => next.started = success,
                Kind::Readiness => next.ready = success,
            }
            if kind == Kind::Startup && success {
                // The readiness worker counts its own results.
                (next.last, next.run) = (None, 0);
            }
        }
        if kind == Kind::Readiness {
            next.started = true;
        }
        next
    }
}

/// One round of the prober for `pod` (host networking: its address is `ip`): the probe due,
/// run, and the state after it, with what a failed probe said. A ready container is probed
/// every `ready_period`.
pub async fn probe(
    state: &ProbeState,
    pod: &Pod,
    ip: &str,
    ready_period: Duration,
) -> (ProbeState, Option<String>) {
    let now = Instant::now();
    let Some(container) = pod.spec.as_ref().and_then(|s| s.containers.first()) else {
        return (state.clone(), None);
    };
    let Some(kind) = state.due(now, container.startup_probe.is_some(), ready_period) else {
        return (state.clone(), None);
    };
    let spec = match kind {
        Kind::Startup => container.startup_probe.as_ref(),
        Kind::Readiness => container.readiness_probe.as_ref(),
    };
    let outcome = match spec {
        // A container without a readiness probe is ready once it runs.
        None => Ok(()),
        Some(spec) => run(spec, container, &environment(container, pod, ip), ip).await,
    };
    let next = state.after(kind, outcome.is_ok(), spec, now);
    (next, outcome.err().map(|e| format!("{kind:?} probe: {e}")))
}

/// The container's environment as far as a probe needs it: literal values (with `$(NAME)`
/// references to those before) and the downward API's pod fields; values taken from
/// ConfigMaps and Secrets are left out.
pub fn environment(container: &Container, pod: &Pod, ip: &str) -> BTreeMap<String, String> {
    let mut env = BTreeMap::new();
    for var in container.env.iter().flatten() {
        let value = match (&var.value, &var.value_from) {
            (Some(value), _) => Some(expand(value, |name| env.get(name).cloned())),
            (None, Some(from)) => {
                from.field_ref
                    .as_ref()
                    .and_then(|f| match f.field_path.as_str() {
                        "status.podIP" | "status.hostIP" => Some(ip.to_string()),
                        "metadata.name" => Some(pod.name_any()),
                        "metadata.namespace" => pod.namespace(),
                        "spec.nodeName" => pod.spec.as_ref()?.node_name.clone(),
                        _ => None,
                    })
            }
            (None, None) => Some(String::new()),
        };
        if let Some(value) = value {
            env.insert(var.name.clone(), value);
        }
    }
    env
}

/// Runs one probe: `Ok` when it succeeds, else what it said.
pub async fn run(
    probe: &Probe,
    container: &Container,
    env: &BTreeMap<String, String>,
    ip: &str,
) -> Result<(), String> {
    let limit = Duration::from_secs(probe.timeout_seconds.unwrap_or(1).max(1) as u64);
    let port = |port: &IntOrString| match port {
        IntOrString::Int(p) => u16::try_from(*p).map_err(|_| format!("port {p}")),
        IntOrString::String(name) => (container.ports.iter().flatten())
            .find(|p| p.name.as_deref() == Some(name.as_str()))
            .and_then(|p| u16::try_from(p.container_port).ok())
            .ok_or(format!("no container port named {name}")),
    };
    if let Some(exec) = &probe.exec {
        let command = exec.command.clone().unwrap_or_default();
        return run_command(&command, env, limit).await;
    }
    if let Some(tcp) = &probe.tcp_socket {
        let address = format!("{}:{}", tcp.host.as_deref().unwrap_or(ip), port(&tcp.port)?);
        return match tokio::time::timeout(limit, tokio::net::TcpStream::connect(&address)).await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(e)) => Err(format!("dial tcp {address}: {e}")),
            Err(_) => Err(format!("dial tcp {address}: timed out")),
        };
    }
    if let Some(http) = &probe.http_get {
        let address = format!(
            "{}:{}",
            http.host.as_deref().unwrap_or(ip),
            port(&http.port)?
        );
        let path = http.path.as_deref().unwrap_or("/");
        return match crate::util::http_get(&address, path, limit).await {
            Ok((status, _)) if (200..400).contains(&status) => Ok(()),
            Ok((status, body)) => Err(format!(
                "HTTP probe failed with statuscode: {status} {body}"
            )),
            Err(e) => Err(e),
        };
    }
    Err("the probe has no handler the harness runs".into())
}

/// An exec probe's command with the container's variables (and this host's `PATH`), killed at
/// the probe's timeout; success is exit status 0, as the kubelet reads it.
async fn run_command(
    command: &[String],
    env: &BTreeMap<String, String>,
    limit: Duration,
) -> Result<(), String> {
    let (program, args) = command.split_first().ok_or("an empty exec command")?;
    let child = tokio::process::Command::new(program)
        .args(args)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .envs(env)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| format!("{program}: {e}"))?;
    match tokio::time::timeout(limit, child.wait_with_output()).await {
        Err(_) => Err(format!("command timed out after {limit:?}")),
        Ok(Err(e)) => Err(e.to_string()),
        Ok(Ok(out)) if out.status.success() => Ok(()),
        Ok(Ok(out)) => Err(format!(
            "command exited with {}{}",
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout)
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn probe(value: serde_json::Value) -> Probe {
        serde_json::from_value(value).unwrap()
    }

    #[test]
    fn readiness_needs_a_success_and_is_lost_after_the_failure_threshold() {
        let spec = probe(json!({"failureThreshold": 3}));
        let t0 = Instant::now();
        let at = |s: u64| t0 + Duration::from_secs(s);
        let mut state = ProbeState {
            started: true,
            ..ProbeState::default()
        };
        let mut seen = Vec::new();
        for (s, ok) in [
            (0, false),
            (1, false),
            (2, true),
            (3, false),
            (4, false),
            (5, false),
        ] {
            state = state.after(Kind::Readiness, ok, Some(&spec), at(s));
            seen.push(state.ready);
        }
        assert_eq!(seen, [false, false, true, true, true, false]);
        // A success in between starts the count again.
        let mut state = ProbeState {
            started: true,
            ready: true,
            ..ProbeState::default()
        };
        for (s, ok) in [(0, false), (1, false), (2, true), (3, false), (4, false)] {
            state = state.after(Kind::Readiness, ok, Some(&spec), at(s));
        }
        assert!(state.ready);
    }

    #[test]
    fn readiness_waits_for_the_startup_probe_and_each_runs_once_a_period() {
        let t0 = Instant::now();
        let state = ProbeState::default();
        assert_eq!(state.due(t0, true, PROBE_PERIOD), Some(Kind::Startup));
        assert_eq!(state.due(t0, false, PROBE_PERIOD), Some(Kind::Readiness));
        let spec = probe(json!({"failureThreshold": 360}));
        let failed = state.after(Kind::Startup, false, Some(&spec), t0);
        assert!(!failed.started && !failed.ready);
        assert_eq!(failed.due(t0 + PROBE_PERIOD / 2, true, PROBE_PERIOD), None);
        assert_eq!(
            failed.due(t0 + PROBE_PERIOD, true, PROBE_PERIOD),
            Some(Kind::Startup)
        );
        let started = failed.after(Kind::Startup, true, Some(&spec), t0 + PROBE_PERIOD);
        assert!(started.started && !started.ready);
        assert_eq!(
            started.due(t0 + PROBE_PERIOD * 2, true, PROBE_PERIOD),
            Some(Kind::Readiness)
        );
        // The readiness probe's first failure does not count the startup probe's results.
        let readiness = probe(json!({"failureThreshold": 1}));
        let ready = started.after(Kind::Readiness, true, Some(&readiness), t0);
        assert!(ready.ready);
        assert!(
            !ready
                .after(Kind::Readiness, false, Some(&readiness), t0)
                .ready
        );
        // Once ready, at the ready period; a container not ready at every probe period.
        let slow = PROBE_PERIOD * 30;
        let later = |s: u32| t0 + PROBE_PERIOD * s;
        assert_eq!(ready.due(later(29), true, slow), None);
        assert_eq!(ready.due(later(30), true, slow), Some(Kind::Readiness));
        let unready = ready.after(Kind::Readiness, false, Some(&readiness), t0);
        assert!(!unready.ready);
        assert_eq!(unready.due(later(1), true, slow), Some(Kind::Readiness));
    }

    fn chunkserver_pod(readiness: &str) -> Pod {
        serde_json::from_value(json!({
            "metadata": {"name": "demo-chunkserver-0-0", "namespace": "ns"},
            "spec": {"nodeName": "node-1", "containers": [{"name": "chunkserver",
                "env": [
                    {"name": "POD_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}},
                    {"name": "NODE_NAME", "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}}},
                    {"name": "ROOT", "valueFrom": {"secretKeyRef": {"name": "s", "key": "k"}}},
                    {"name": "CURVE_PORT", "value": "8200"},
                    {"name": "ADDRESS", "value": "$(POD_IP):$(CURVE_PORT)"},
                ],
                "readinessProbe": {"exec": {"command": ["sh", "-c", readiness]}, "timeoutSeconds": 2},
            }]},
        }))
        .unwrap()
    }

    #[test]
    fn the_environment_has_the_values_and_pod_fields_a_probe_reads() {
        let pod = chunkserver_pod("true");
        let env = environment(
            &pod.spec.as_ref().unwrap().containers[0],
            &pod,
            "127.0.0.101",
        );
        assert_eq!(
            env,
            BTreeMap::from(
                [
                    ("POD_IP", "127.0.0.101"),
                    ("NODE_NAME", "node-1"),
                    ("CURVE_PORT", "8200"),
                    ("ADDRESS", "127.0.0.101:8200"),
                ]
                .map(|(k, v)| (k.to_string(), v.to_string()))
            )
        );
    }

    /// The rendered readiness script against a server answering `ChunkServerStatus` as brpc
    /// does: not ready while copysets load, ready after.
    #[tokio::test]
    async fn the_rendered_readiness_script_reads_copyset_load_fin() {
        use crate::curve_standins::{HttpRequest, serve};
        use crate::curve_wire::chunkserver_status;
        use std::sync::Arc;
        use std::sync::atomic::{AtomicBool, Ordering};
        let loaded = Arc::new(AtomicBool::new(false));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let answer = loaded.clone();
        let server = tokio::spawn(serve(
            listener,
            Arc::new(move |r: &HttpRequest| {
                assert_eq!(r.path, "/ChunkServerService/ChunkServerStatus");
                chunkserver_status(answer.load(Ordering::Acquire), r.content_type())
            }),
        ));
        let script = curve_operator::desired::start::chunkserver_ready_script();
        let mut pod = chunkserver_pod(&script);
        let container = &mut pod.spec.as_mut().unwrap().containers[0];
        container.env.as_mut().unwrap()[3].value = Some(port.to_string());
        let container = pod.spec.as_ref().unwrap().containers[0].clone();
        let env = environment(&container, &pod, "127.0.0.1");
        let spec = container.readiness_probe.as_ref().unwrap();
        let not_loaded = run(spec, &container, &env, "127.0.0.1").await;
        assert!(not_loaded.is_err(), "{not_loaded:?}");
        loaded.store(true, Ordering::Release);
        assert_eq!(run(spec, &container, &env, "127.0.0.1").await, Ok(()));
        server.abort();
        let _ = server.await;
        let refused = run(spec, &container, &env, "127.0.0.1").await;
        assert!(refused.is_err(), "{refused:?}");
    }

    #[tokio::test]
    async fn a_tcp_probe_connects_to_the_named_port() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let container: Container = serde_json::from_value(json!({"name": "c",
            "ports": [{"name": "listen", "containerPort": port}]}))
        .unwrap();
        let spec = probe(json!({"tcpSocket": {"port": "listen"}}));
        let env = BTreeMap::new();
        assert_eq!(run(&spec, &container, &env, "127.0.0.1").await, Ok(()));
        drop(listener);
        assert!(run(&spec, &container, &env, "127.0.0.1").await.is_err());
        let unnamed = probe(json!({"tcpSocket": {"port": "other"}}));
        assert_eq!(
            run(&unnamed, &container, &env, "127.0.0.1").await,
            Err("no container port named other".to_string())
        );
    }
}
