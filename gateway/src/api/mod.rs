//! The public HTTP surface (docs/protocol.md, HTTP API): the REST facade
//! over user-service and history-service, the WebSocket upgrade, the web
//! client and `/healthz`.
//!
//! Every route is registered through `routes!` from its handler's
//! `#[utoipa::path]`, so the OpenAPI document served at `/api/openapi.json`
//! is generated from the same handlers and types; a route cannot exist
//! without being described (gateway/tests/api/openapi.rs checks both).

pub mod access;
pub mod accounts;
pub mod conversations;
pub mod error;
pub mod extract;
pub mod limits;
pub mod listing;
pub mod rooms;
pub mod schema;
pub mod site;
pub mod tickets;

use std::sync::OnceLock;

use axum::{Json, Router};
use utoipa::{
    Modify, OpenApi,
    openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme},
};
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::{state::AppState, ws};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "chat gateway",
        description = "The chat system's HTTP API. Real-time messaging is the WebSocket at /ws; its frames are specified in docs/protocol.md."
    ),
    modifiers(&BearerAuth),
    tags(
        (name = "accounts", description = "Register, log in, tokens and WebSocket tickets"),
        (name = "rooms", description = "Rooms and memberships"),
        (name = "conversations", description = "The caller's conversations and their history"),
        (name = "service", description = "The WebSocket, the web client, health and this document"),
    )
)]
struct ApiDoc;

/// `Authorization: Bearer <token from /api/login>`.
struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .build(),
            ),
        );
    }
}

/// The document, built once with the router.
static DOCUMENT: OnceLock<utoipa::openapi::OpenApi> = OnceLock::new();

/// This API's OpenAPI 3.1 document.
#[utoipa::path(
    get,
    path = "/api/openapi.json",
    tag = "service",
    responses((status = 200, description = "The OpenAPI document", content_type = "application/json", body = Object))
)]
pub async fn openapi_json() -> Json<utoipa::openapi::OpenApi> {
    Json(document())
}

/// The OpenAPI document of every route [`router`] serves.
pub fn document() -> utoipa::openapi::OpenApi {
    DOCUMENT
        .get_or_init(|| routes().split_for_parts().1)
        .clone()
}

fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(accounts::register))
        .routes(routes!(accounts::login))
        .routes(routes!(accounts::me))
        .routes(routes!(tickets::issue))
        .routes(routes!(rooms::list, rooms::create))
        .routes(routes!(rooms::join))
        .routes(routes!(rooms::leave))
        .routes(routes!(rooms::members))
        .routes(routes!(conversations::list))
        .routes(routes!(conversations::one))
        .routes(routes!(conversations::read))
        .routes(routes!(conversations::messages))
        .routes(routes!(ws::upgrade))
        .routes(routes!(site::index))
        .routes(routes!(site::healthz))
        .routes(routes!(openapi_json))
}

/// Every public route.
pub fn router() -> Router<AppState> {
    routes().split_for_parts().0
}
