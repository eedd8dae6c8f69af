//! The operator's HTTP server on a real loopback socket.

use std::sync::Arc;
use std::time::Duration;

use curve_operator::names::Component;
use curve_operator::runtime::http::{Readiness, serve};
use curve_operator::runtime::metrics::{ErrorStep, Metrics, ReconcileResult};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// A minimal HTTP/1.1 GET; returns the status code and the body.
async fn get(addr: std::net::SocketAddr, path: &str) -> (u16, String) {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    let request = format!("GET {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).await.unwrap();
    let status = response
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .expect("a status line");
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    (status, body)
}

#[tokio::test]
async fn probes_and_metrics_over_http_then_graceful_shutdown() {
    let metrics = Arc::new(Metrics::new());
    let readiness = Arc::new(Readiness::default());
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(serve(listener, metrics.clone(), readiness.clone(), async {
        stopped.await.ok();
    }));

    assert_eq!(get(addr, "/livez").await.0, 200);
    assert_eq!(get(addr, "/readyz").await.0, 503);
    readiness.set_crd_established(true);
    assert_eq!(
        get(addr, "/readyz").await.0,
        503,
        "ready before the caches synced"
    );
    readiness.set_caches_synced(true);
    assert_eq!(get(addr, "/readyz").await.0, 200);
    assert_eq!(get(addr, "/nothing").await.0, 404);

    metrics.reconcile_finished(ReconcileResult::Success, Duration::from_millis(7));
    metrics.error(ErrorStep::Status);
    metrics.primary_changed("prod", "demo");
    metrics.set_ready("prod", "demo", Component::Mds, 3);
    let (status, body) = get(addr, "/metrics").await;
    assert_eq!(status, 200);
    for name in [
        "curve_operator_reconciles_total{result=\"success\"} 1",
        "curve_operator_reconcile_duration_seconds_bucket",
        "curve_operator_errors_total{step=\"status\"} 1",
        "curve_operator_mds_primary_changes_total{namespace=\"prod\",name=\"demo\"} 1",
        "curve_operator_ready_members{namespace=\"prod\",name=\"demo\",component=\"mds\"} 3",
    ] {
        assert!(body.contains(name), "/metrics lacks {name}:\n{body}");
    }

    stop.send(()).unwrap();
    tokio::time::timeout(Duration::from_secs(5), server)
        .await
        .expect("server did not stop")
        .unwrap()
        .unwrap();
    assert!(
        TcpStream::connect(addr).await.is_err(),
        "still listening after shutdown"
    );
}
