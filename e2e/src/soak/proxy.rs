//! A fault-injecting TCP proxy between the operator and the API server. It passes bytes
//! through untouched (TLS included: it never looks inside), and on demand breaks them the
//! ways a network does: every connection closed and new ones refused for a while (a cut), the
//! bytes held back (a delay), or every connection reset (RST). Watches break and requests fail
//! mid-flight.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

/// How the proxy ends the connections it carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Break {
    /// A clean close (FIN) of both sides.
    Close,
    /// SO_LINGER 0, then close: both peers get an RST.
    Reset,
}

/// What the proxy counts.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ProxyCounts {
    pub accepted: u64,
    pub refused: u64,
    pub broken: u64,
}

#[derive(Default)]
struct ProxyState {
    delay_ms: AtomicU64,
    refuse_until: std::sync::Mutex<Option<Instant>>,
    accepted: AtomicU64,
    refused: AtomicU64,
    broken: AtomicU64,
}

pub struct FaultProxy {
    pub addr: SocketAddr,
    state: Arc<ProxyState>,
    /// Each send ends every connection open then, the way it says.
    breaker: watch::Sender<(u64, Break)>,
    task: tokio::task::JoinHandle<()>,
}

impl FaultProxy {
    /// Listens on a free loopback port and forwards every connection to `upstream`.
    pub async fn start(upstream: SocketAddr) -> FaultProxy {
        let listener = TcpListener::bind(("127.0.0.1", 0))
            .await
            .expect("bind the proxy");
        let addr = listener.local_addr().unwrap();
        let state = Arc::new(ProxyState::default());
        let (breaker, _) = watch::channel((0, Break::Close));
        let task = tokio::spawn(accept_loop(
            listener,
            upstream,
            state.clone(),
            breaker.clone(),
        ));
        FaultProxy {
            addr,
            state,
            breaker,
            task,
        }
    }

    /// Closes every connection and refuses new ones (accepted and closed at once) for `for_`.
    pub fn cut(&self, for_: Duration) {
        *self.state.refuse_until.lock().unwrap() = Some(Instant::now() + for_);
        self.break_all(Break::Close);
    }

    /// Resets every connection now (new ones are let through).
    pub fn reset(&self) {
        self.break_all(Break::Reset);
    }

    /// Holds every chunk of bytes, both ways, `delay` before passing it on (zero: none).
    pub fn set_delay(&self, delay: Duration) {
        (self.state.delay_ms).store(delay.as_millis() as u64, Ordering::Relaxed);
    }

    pub fn delay(&self) -> Duration {
        Duration::from_millis(self.state.delay_ms.load(Ordering::Relaxed))
    }

    /// Back to passing everything through at once.
    pub fn heal(&self) {
        self.set_delay(Duration::ZERO);
        *self.state.refuse_until.lock().unwrap() = None;
    }

    pub fn counts(&self) -> ProxyCounts {
        ProxyCounts {
            accepted: self.state.accepted.load(Ordering::Relaxed),
            refused: self.state.refused.load(Ordering::Relaxed),
            broken: self.state.broken.load(Ordering::Relaxed),
        }
    }

    fn break_all(&self, how: Break) {
        self.breaker.send_modify(|(epoch, kind)| {
            *epoch += 1;
            *kind = how;
        });
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.task.abort();
        self.break_all(Break::Close);
    }
}

async fn accept_loop(
    listener: TcpListener,
    upstream: SocketAddr,
    state: Arc<ProxyState>,
    breaker: watch::Sender<(u64, Break)>,
) {
    while let Ok((client, _)) = listener.accept().await {
        let refusing = state
            .refuse_until
            .lock()
            .unwrap()
            .is_some_and(|until| Instant::now() < until);
        if refusing {
            state.refused.fetch_add(1, Ordering::Relaxed);
            drop(client);
            continue;
        }
        state.accepted.fetch_add(1, Ordering::Relaxed);
        let (state, broken) = (state.clone(), breaker.subscribe());
        tokio::spawn(async move {
            if let Ok(server) = TcpStream::connect(upstream).await {
                carry(client, server, state, broken).await;
            }
        });
    }
}

/// Passes bytes both ways until both sides are done or the connection is broken.
async fn carry(
    mut client: TcpStream,
    mut server: TcpStream,
    state: Arc<ProxyState>,
    mut broken: watch::Receiver<(u64, Break)>,
) {
    let _ = client.set_nodelay(true);
    let _ = server.set_nodelay(true);
    let ended = {
        let (client_read, client_write) = client.split();
        let (server_read, server_write) = server.split();
        let both = async {
            tokio::join!(
                forward(client_read, server_write, &state),
                forward(server_read, client_write, &state)
            )
        };
        tokio::select! {
            _ = both => None,
            how = broken.changed() => how.ok().map(|()| broken.borrow().1),
        }
    };
    if let Some(how) = ended {
        state.broken.fetch_add(1, Ordering::Relaxed);
        if how == Break::Reset {
            let _ = client.set_zero_linger();
            let _ = server.set_zero_linger();
        }
    }
}

/// Copies `from` to `to`, holding each chunk the proxy's delay; shuts `to`'s write side at
/// the end.
async fn forward(
    mut from: impl AsyncRead + Unpin,
    mut to: impl AsyncWrite + Unpin,
    state: &ProxyState,
) {
    let mut buffer = vec![0u8; 64 * 1024];
    loop {
        let n = match from.read(&mut buffer).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        let delay = state.delay_ms.load(Ordering::Relaxed);
        if delay > 0 {
            tokio::time::sleep(Duration::from_millis(delay)).await;
        }
        if to.write_all(&buffer[..n]).await.is_err() {
            break;
        }
    }
    let _ = to.shutdown().await;
}

/// `kubeconfig` (a file the operator reads) with its server pointed at `proxy`, written to
/// `to`. The API server's certificate names the address, not the port, so TLS still verifies.
pub fn proxied_kubeconfig(
    kubeconfig: &std::path::Path,
    proxy: SocketAddr,
    to: &std::path::Path,
) -> SocketAddr {
    let text = std::fs::read_to_string(kubeconfig).expect("read the operator's kubeconfig");
    let mut config: serde_json::Value =
        serde_json::from_str(&text).expect("the operator's kubeconfig is JSON");
    let server = config["clusters"][0]["cluster"]["server"]
        .as_str()
        .expect("a server")
        .to_string();
    let upstream = upstream_of(&server).unwrap_or_else(|| panic!("cannot proxy {server}"));
    assert!(
        upstream.ip() == proxy.ip(),
        "the proxy must listen on the API server's own address ({upstream}) for TLS to verify"
    );
    config["clusters"][0]["cluster"]["server"] = format!("https://{proxy}").into();
    std::fs::write(to, serde_json::to_string_pretty(&config).unwrap()).expect("write");
    upstream
}

/// `https://<ip>:<port>` → the socket address (the suite's API server is on loopback).
pub fn upstream_of(server: &str) -> Option<SocketAddr> {
    let rest = server.strip_prefix("https://")?;
    rest.trim_end_matches('/').parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn echo_server() -> SocketAddr {
        let listener = TcpListener::bind(("127.0.0.1", 0)).await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            while let Ok((mut s, _)) = listener.accept().await {
                tokio::spawn(async move {
                    let (mut r, mut w) = s.split();
                    let _ = tokio::io::copy(&mut r, &mut w).await;
                });
            }
        });
        addr
    }

    async fn round_trip(stream: &mut TcpStream, bytes: &[u8]) -> std::io::Result<Vec<u8>> {
        stream.write_all(bytes).await?;
        let mut back = vec![0u8; bytes.len()];
        stream.read_exact(&mut back).await?;
        Ok(back)
    }

    #[tokio::test]
    async fn bytes_pass_untouched_and_a_delay_holds_them() {
        let proxy = FaultProxy::start(echo_server().await).await;
        let mut stream = TcpStream::connect(proxy.addr).await.unwrap();
        let bytes: Vec<u8> = (0..=255).collect();
        assert_eq!(round_trip(&mut stream, &bytes).await.unwrap(), bytes);
        proxy.set_delay(Duration::from_millis(150));
        let started = Instant::now();
        round_trip(&mut stream, b"late").await.unwrap();
        // Held once each way.
        assert!(
            started.elapsed() >= Duration::from_millis(300),
            "{:?}",
            started.elapsed()
        );
        proxy.heal();
        let started = Instant::now();
        round_trip(&mut stream, b"soon").await.unwrap();
        assert!(started.elapsed() < Duration::from_millis(150));
    }

    #[tokio::test]
    async fn a_cut_closes_connections_and_refuses_new_ones_for_a_while() {
        let proxy = FaultProxy::start(echo_server().await).await;
        let mut stream = TcpStream::connect(proxy.addr).await.unwrap();
        round_trip(&mut stream, b"x").await.unwrap();
        proxy.cut(Duration::from_millis(500));
        let mut rest = Vec::new();
        // Closed by the proxy: end of stream.
        assert_eq!(stream.read_to_end(&mut rest).await.unwrap(), 0);
        let mut refused = TcpStream::connect(proxy.addr).await.unwrap();
        assert!(round_trip(&mut refused, b"y").await.is_err());
        tokio::time::sleep(Duration::from_millis(600)).await;
        let mut again = TcpStream::connect(proxy.addr).await.unwrap();
        assert_eq!(round_trip(&mut again, b"z").await.unwrap(), b"z");
        let counts = proxy.counts();
        assert_eq!((counts.accepted, counts.refused, counts.broken), (2, 1, 1));
    }

    #[tokio::test]
    async fn a_reset_sends_rst() {
        let proxy = FaultProxy::start(echo_server().await).await;
        let mut stream = TcpStream::connect(proxy.addr).await.unwrap();
        round_trip(&mut stream, b"x").await.unwrap();
        proxy.reset();
        let mut rest = Vec::new();
        let error = stream.read_to_end(&mut rest).await.unwrap_err();
        assert_eq!(error.kind(), std::io::ErrorKind::ConnectionReset);
    }

    #[test]
    fn the_kubeconfig_is_pointed_at_the_proxy() {
        let dir = crate::util::TempDir::new("proxy-unit");
        let original = dir.path().join("in");
        let config = serde_json::json!({"clusters": [{"name": "e2e", "cluster": {
            "server": "https://127.0.0.1:6443", "certificate-authority-data": "QQ=="}}]});
        std::fs::write(&original, config.to_string()).unwrap();
        let out = dir.path().join("out");
        let upstream = proxied_kubeconfig(&original, "127.0.0.1:4000".parse().unwrap(), &out);
        assert_eq!(upstream, "127.0.0.1:6443".parse().unwrap());
        let written: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(out).unwrap()).unwrap();
        assert_eq!(
            written["clusters"][0]["cluster"],
            serde_json::json!({"server": "https://127.0.0.1:4000", "certificate-authority-data": "QQ=="})
        );
    }
}
