//! Operational HTTP endpoints: `/healthz` (the process runs), `/readyz` (its
//! dependencies answer) and `/metrics` (Prometheus text).

use std::{future::Future, pin::Pin, sync::Arc, sync::OnceLock};

use axum::{Json, Router, extract::State, http::StatusCode, response::IntoResponse, routing::get};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use serde_json::json;

/// What a readiness probe found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Readiness {
    Ready,
    /// Serving, but a non-essential dependency is down (e.g. the archive).
    Degraded(String),
    Unavailable(String),
}

pub type ReadyFuture = Pin<Box<dyn Future<Output = Readiness> + Send>>;
pub type ReadyCheck = Arc<dyn Fn() -> ReadyFuture + Send + Sync>;

/// Bucket bounds of every latency histogram, in seconds: from half a
/// millisecond (a DM's ack on a quiet system) to ten seconds (a stall).
pub const LATENCY_BUCKETS: [f64; 14] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];
/// Bucket bounds of the size histograms (metrics named `*_entries`).
pub const SIZE_BUCKETS: [f64; 10] = [1.0, 2.0, 5.0, 10.0, 20.0, 50.0, 100.0, 200.0, 500.0, 1000.0];

/// The process-wide Prometheus recorder, installed on first use. Several
/// services in one test process share it. Histograms are real Prometheus
/// histograms (`_bucket` series), so quantiles aggregate across replicas.
pub fn metrics_handle() -> PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let recorder = PrometheusBuilder::new()
                .set_buckets(&LATENCY_BUCKETS)
                .and_then(|b| {
                    b.set_buckets_for_metric(
                        metrics_exporter_prometheus::Matcher::Suffix("_entries".into()),
                        &SIZE_BUCKETS,
                    )
                })
                .expect("bucket lists are not empty")
                .build_recorder();
            let handle = recorder.handle();
            // Another recorder may already be installed (tests); then ours only renders.
            let _ = metrics::set_global_recorder(recorder);
            handle
        })
        .clone()
}

/// The ops routes, to merge into a service's HTTP router or serve on their own.
/// The first call also starts the recorder's upkeep, so histogram samples
/// are folded into buckets every few seconds rather than piling up until a
/// scrape.
pub fn router(ready: ReadyCheck) -> Router {
    let handle = metrics_handle();
    static UPKEEP: OnceLock<()> = OnceLock::new();
    UPKEEP.get_or_init(|| {
        let handle = handle.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(std::time::Duration::from_secs(5));
            loop {
                tick.tick().await;
                handle.run_upkeep();
            }
        });
    });
    Router::new()
        .route("/healthz", get(|| async { Json(json!({"status": "ok"})) }))
        .route("/readyz", get(readyz).with_state(ready))
        .route(
            "/metrics",
            get(move || {
                let handle = handle.clone();
                async move {
                    (
                        [("content-type", "text/plain; version=0.0.4")],
                        handle.render(),
                    )
                }
            }),
        )
}

async fn readyz(State(check): State<ReadyCheck>) -> impl IntoResponse {
    match check().await {
        Readiness::Ready => (StatusCode::OK, Json(json!({"status": "ready"}))),
        Readiness::Degraded(reason) => (
            StatusCode::OK,
            Json(json!({"status": "degraded", "reason": reason})),
        ),
        Readiness::Unavailable(reason) => (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({"status": "unavailable", "reason": reason})),
        ),
    }
}

/// A listener that could not be bound, naming the address.
#[derive(Debug, thiserror::Error)]
#[error("cannot bind {addr}: {source}")]
pub struct BindError {
    pub addr: std::net::SocketAddr,
    pub source: std::io::Error,
}

pub async fn bind(addr: std::net::SocketAddr) -> Result<tokio::net::TcpListener, BindError> {
    tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|source| BindError { addr, source })
}

/// The port a listener is bound to (0 if it cannot tell).
pub fn port_of(listener: &tokio::net::TcpListener) -> u16 {
    listener.local_addr().map(|a| a.port()).unwrap_or(0)
}

/// Serves `router` on `listener` until `shutdown` completes.
pub async fn serve(
    listener: tokio::net::TcpListener,
    router: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    use axum::serve::ListenerExt;
    // Nagle off: small responses leave at once.
    let listener = listener.tap_io(|tcp| {
        let _ = tcp.set_nodelay(true);
    });
    axum::serve(listener, router)
        .with_graceful_shutdown(shutdown)
        .await
}
