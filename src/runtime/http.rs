//! The operator's HTTP endpoints: `/metrics`, `/livez`, `/readyz`.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use tokio::net::TcpListener;

use super::metrics::Metrics;

/// What `/readyz` reports; flipped by the `run` command as start-up progresses.
///
/// A standby replica (waiting for the Lease) must become ready too, so start the watch caches
/// before campaigning: otherwise a rolling update deadlocks, the new pod waiting for the old
/// one's Lease while the Deployment waits for the new pod to be ready before stopping the old.
#[derive(Debug, Default)]
pub struct Readiness {
    crd_established: AtomicBool,
    caches_synced: AtomicBool,
}

impl Readiness {
    pub fn set_crd_established(&self, yes: bool) {
        self.crd_established.store(yes, Ordering::Release);
    }

    pub fn set_caches_synced(&self, yes: bool) {
        self.caches_synced.store(yes, Ordering::Release);
    }

    /// Ready once the CurveCluster CRD is established and the watch caches are synced.
    pub fn is_ready(&self) -> bool {
        self.crd_established.load(Ordering::Acquire) && self.caches_synced.load(Ordering::Acquire)
    }
}

#[derive(Clone)]
struct AppState {
    metrics: Arc<Metrics>,
    readiness: Arc<Readiness>,
}

/// The routes, without a listener (handy for in-process tests).
pub fn router(metrics: Arc<Metrics>, readiness: Arc<Readiness>) -> Router {
    Router::new()
        .route("/metrics", get(metrics_handler))
        .route("/livez", get(|| async { "ok" }))
        .route("/readyz", get(readyz))
        .with_state(AppState { metrics, readiness })
}

/// Serves the routes on `listener` until `shutdown` resolves, then drains open requests.
pub async fn serve(
    listener: TcpListener,
    metrics: Arc<Metrics>,
    readiness: Arc<Readiness>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, router(metrics, readiness))
        .with_graceful_shutdown(shutdown)
        .await
}

async fn metrics_handler(State(state): State<AppState>) -> impl IntoResponse {
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        state.metrics.encode(),
    )
}

async fn readyz(State(state): State<AppState>) -> (StatusCode, &'static str) {
    if state.readiness.is_ready() {
        (StatusCode::OK, "ok")
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            "not ready: CRD not established or caches not synced",
        )
    }
}
