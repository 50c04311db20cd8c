//! The public routes: the REST API (`api/`), the WebSocket upgrade (`ws/`)
//! and the OpenAPI document of both.
//!
//! Every route is registered through `routes!` from its handler's
//! `#[utoipa::path]`, so the OpenAPI document served at `/api/openapi.json`
//! is generated from the same handlers and types; a route cannot exist
//! without being described (gateway/tests/api/openapi.rs checks both).

use std::sync::OnceLock;

use axum::{Json, Router, extract::DefaultBodyLimit};
use utoipa::{
    Modify, OpenApi,
    openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme},
};
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::{
    api::{
        accounts, blocks, conversations, invites, links, moderation, rooms, sessions, site, tickets,
    },
    domain::Error,
    http::{access_log, error::ApiError},
    state::AppState,
    stream, ws,
};

/// Largest REST request body.
const MAX_API_BODY: usize = 16 * 1024;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "chat gateway",
        description = "The chat system's HTTP API. Real-time messaging is the WebSocket at /ws; its frames are specified in docs/protocol.md."
    ),
    modifiers(&BearerAuth),
    tags(
        (name = "accounts", description = "Register, log in, sessions, tokens, the account, and WebSocket tickets"),
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
        .routes(routes!(accounts::refresh))
        .routes(routes!(
            accounts::me,
            accounts::update_me,
            accounts::delete_me
        ))
        .routes(routes!(accounts::change_password))
        .routes(routes!(accounts::export))
        .routes(routes!(sessions::list))
        .routes(routes!(sessions::revoke))
        .routes(routes!(sessions::logout))
        .routes(routes!(sessions::logout_all))
        .routes(routes!(blocks::list))
        .routes(routes!(blocks::block, blocks::unblock))
        .routes(routes!(tickets::issue))
        .routes(routes!(rooms::list, rooms::create))
        .routes(routes!(rooms::join))
        .routes(routes!(rooms::leave))
        .routes(routes!(rooms::members))
        .routes(routes!(invites::directory))
        .routes(routes!(moderation::update, moderation::delete))
        .routes(routes!(moderation::kick))
        .routes(routes!(moderation::ban, moderation::bans))
        .routes(routes!(moderation::unban))
        .routes(routes!(moderation::mute))
        .routes(routes!(moderation::unmute))
        .routes(routes!(moderation::set_role))
        .routes(routes!(moderation::transfer))
        .routes(routes!(invites::invite))
        .routes(routes!(invites::invites))
        .routes(routes!(invites::accept))
        .routes(routes!(invites::decline))
        .routes(routes!(links::create, links::list))
        .routes(routes!(links::revoke))
        .routes(routes!(links::join))
        .routes(routes!(moderation::moderation_log))
        .routes(routes!(conversations::list))
        .routes(routes!(conversations::one))
        .routes(routes!(conversations::read))
        .routes(routes!(conversations::messages))
        .routes(routes!(ws::upgrade))
        .routes(routes!(stream::open))
        .routes(routes!(stream::post))
        .routes(routes!(stream::poll::open))
        .routes(routes!(stream::poll::poll))
        .routes(routes!(site::index))
        .routes(routes!(site::healthz))
        .routes(routes!(openapi_json))
}

/// The public routes, served. `/readyz` and `/metrics` are not among
/// them: they say what the system depends on and how busy it is, so they
/// live on OPS_ADDR.
pub fn app(state: AppState) -> Router {
    routes()
        .split_for_parts()
        .0
        .fallback(not_found)
        .layer(DefaultBodyLimit::max(MAX_API_BODY))
        .layer(axum::middleware::from_fn(access_log::log))
        .with_state(state)
}

async fn not_found() -> ApiError {
    Error::NotFound("no such route".into()).into()
}
