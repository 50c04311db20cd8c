//! The caller's sessions (signed-in devices): list, sign out one, this one,
//! or all. A signed-out session's tokens are refused at once and its
//! sockets are closed on every gateway (close code 4001).

use axum::{
    Json,
    extract::{Path, State},
};
use proto::user::v1 as user_pb;

use super::schema::{ErrorBody, SessionInfo, SessionList, SignedOut, ms};
use crate::{
    domain::sessions::UserSessions,
    http::{error::ApiError, extract::Authed},
};

pub fn session_info(s: &user_pb::Session, current: &str) -> SessionInfo {
    SessionInfo {
        id: s.id.clone(),
        device: s.device.clone(),
        client_addr: s.client_addr.clone(),
        created_at: ms(s.created_at.as_ref()),
        last_seen_at: ms(s.last_seen_at.as_ref()),
        current: s.id == current,
    }
}

/// The caller's live sessions, most recently seen first.
#[utoipa::path(
    get,
    path = "/api/sessions",
    tag = "accounts",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The sessions", body = SessionList),
        (status = 401, description = "Missing, bad or expired token, or a signed-out session", body = ErrorBody),
        (status = 503, description = "A dependency is down", body = ErrorBody),
    )
)]
pub async fn list(
    State(sessions): State<UserSessions>,
    Authed(me): Authed,
) -> Result<Json<SessionList>, ApiError> {
    let list = sessions.list(&me.user).await?;
    Ok(Json(SessionList {
        sessions: list.iter().map(|s| session_info(s, &me.session)).collect(),
    }))
}

/// Sign out one of the caller's sessions (another device, or this one).
#[utoipa::path(
    delete,
    path = "/api/sessions/{id}",
    tag = "accounts",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "A session id from `GET /api/sessions`")),
    responses(
        (status = 200, description = "Signed out", body = SignedOut),
        (status = 401, description = "Missing, bad or expired token, or a signed-out session", body = ErrorBody),
        (status = 404, description = "No such session of the caller's", body = ErrorBody),
        (status = 503, description = "A dependency is down; repeat the call", body = ErrorBody),
    )
)]
pub async fn revoke(
    State(sessions): State<UserSessions>,
    Authed(me): Authed,
    Path(id): Path<String>,
) -> Result<Json<SignedOut>, ApiError> {
    sessions.revoke(&me.user, &id).await?;
    Ok(Json(SignedOut { revoked: 1 }))
}

/// Sign out this session.
#[utoipa::path(
    post,
    path = "/api/logout",
    tag = "accounts",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Signed out", body = SignedOut),
        (status = 401, description = "Missing, bad or expired token, or a signed-out session", body = ErrorBody),
        (status = 503, description = "A dependency is down; repeat the call", body = ErrorBody),
    )
)]
pub async fn logout(
    State(sessions): State<UserSessions>,
    Authed(me): Authed,
) -> Result<Json<SignedOut>, ApiError> {
    sessions.logout(&me).await?;
    Ok(Json(SignedOut { revoked: 1 }))
}

/// Sign out every session of the caller's, this one included.
#[utoipa::path(
    post,
    path = "/api/logout-all",
    tag = "accounts",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Signed out everywhere", body = SignedOut),
        (status = 401, description = "Missing, bad or expired token, or a signed-out session", body = ErrorBody),
        (status = 503, description = "A dependency is down; repeat the call", body = ErrorBody),
    )
)]
pub async fn logout_all(
    State(sessions): State<UserSessions>,
    Authed(me): Authed,
) -> Result<Json<SignedOut>, ApiError> {
    let revoked = sessions.logout_all(&me).await?;
    Ok(Json(SignedOut { revoked }))
}
