//! The web client and the liveness check.

use axum::{
    Json,
    http::header,
    response::{Html, IntoResponse},
};
use serde::Serialize;
use utoipa::ToSchema;

/// The web client: one HTML page (docs/protocol.md is what it speaks).
#[utoipa::path(
    get,
    path = "/",
    tag = "service",
    responses((status = 200, description = "The web client", content_type = "text/html", body = String))
)]
pub async fn index() -> impl IntoResponse {
    (
        [(header::CACHE_CONTROL, "no-cache")],
        Html(include_str!("../web/index.html")),
    )
}

#[derive(Serialize, ToSchema)]
pub struct Health {
    /// Always `ok`.
    pub status: String,
}

/// Liveness: the process serves HTTP. Readiness (dependencies) is on the
/// ops port, not here.
#[utoipa::path(
    get,
    path = "/healthz",
    tag = "service",
    responses((status = 200, description = "Alive", body = Health))
)]
pub async fn healthz() -> Json<Health> {
    Json(Health {
        status: "ok".into(),
    })
}
