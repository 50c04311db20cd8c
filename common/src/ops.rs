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

/// The process-wide Prometheus recorder, installed on first use. Several
/// services in one test process share it.
pub fn metrics_handle() -> PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let recorder = PrometheusBuilder::new().build_recorder();
            let handle = recorder.handle();
            // Another recorder may already be installed (tests); then ours only renders.
            let _ = metrics::set_global_recorder(recorder);
            handle
        })
        .clone()
}

/// The ops routes, to merge into a service's HTTP router or serve on their own.
pub fn router(ready: ReadyCheck) -> Router {
    let handle = metrics_handle();
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

/// Readiness of a service whose one dependency is Redis.
pub fn redis_readiness(conn: crate::redis_conn::Redis) -> ReadyCheck {
    Arc::new(move || {
        let mut conn = conn.clone();
        Box::pin(async move {
            match crate::redis_conn::ping(&mut conn).await {
                Ok(()) => Readiness::Ready,
                Err(e) => Readiness::Unavailable(e),
            }
        })
    })
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
