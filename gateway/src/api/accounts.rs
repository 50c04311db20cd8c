//! Register, log in, refresh, who am I, the profile, the password, account
//! deletion and export.

use axum::{Json, extract::State, http::StatusCode};
use proto::user::v1 as user_pb;
use serde::Deserialize;
use utoipa::ToSchema;

use super::{
    schema::{ErrorBody, ExportPage, Login, Room, SignedOut, User},
    sessions::session_info,
};
use crate::{
    domain::{
        accounts::Accounts,
        export::{Cursor, Export},
    },
    http::{
        error::ApiError,
        extract::{ApiJson, ApiQuery, AuthUser, Authed, ClientIp},
    },
};

#[derive(Deserialize, ToSchema)]
pub struct RegisterBody {
    /// 3 to 32 characters of a-z, 0-9 and _.
    #[schema(pattern = "^[a-z0-9_]{3,32}$")]
    username: String,
    /// 8 to 128 characters.
    #[schema(min_length = 8, max_length = 128)]
    password: String,
    /// Up to 64 characters; the username if left out.
    #[schema(max_length = 64)]
    display_name: Option<String>,
}

#[derive(Deserialize, ToSchema)]
pub struct LoginBody {
    username: String,
    password: String,
    /// What the sessions list calls this device ("Firefox on a laptop"); up
    /// to 64 characters are kept.
    #[serde(default)]
    device: String,
}

#[derive(Deserialize, ToSchema)]
pub struct RefreshBody {
    /// The refresh token of the last login or refresh.
    refresh_token: String,
}

#[derive(Deserialize, ToSchema)]
pub struct ProfileBody {
    /// Up to 64 characters, no control characters; empty sets the username.
    #[schema(max_length = 64)]
    display_name: String,
}

#[derive(Deserialize, ToSchema)]
pub struct PasswordBody {
    current_password: String,
    /// 8 to 128 characters.
    #[schema(min_length = 8, max_length = 128)]
    new_password: String,
}

#[derive(Deserialize, ToSchema)]
pub struct DeleteBody {
    /// The account's password, to confirm.
    password: String,
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ExportQuery {
    /// `next_cursor` of the previous page; none for the first.
    cursor: Option<String>,
}

/// Create an account.
///
/// Registrations from one client address are limited per window
/// (`REGISTRATIONS_PER_IP`): beyond it, 429 with `Retry-After`. A deleted
/// account's username stays taken.
#[utoipa::path(
    post,
    path = "/api/register",
    tag = "accounts",
    request_body = RegisterBody,
    responses(
        (status = 201, description = "The account", body = User),
        (status = 400, description = "Bad username, password or body", body = ErrorBody),
        (status = 409, description = "The username is taken", body = ErrorBody),
        (status = 413, description = "Body too large", body = ErrorBody),
        (status = 429, description = "Too many registrations from this address", body = ErrorBody),
        (status = 503, description = "A dependency is down", body = ErrorBody),
    )
)]
pub async fn register(
    State(accounts): State<Accounts>,
    ClientIp(ip): ClientIp,
    ApiJson(body): ApiJson<RegisterBody>,
) -> Result<(StatusCode, Json<User>), ApiError> {
    let request = user_pb::RegisterRequest {
        username: body.username,
        password: body.password,
        display_name: body.display_name,
    };
    let user = accounts.register(ip, request).await?;
    Ok((StatusCode::CREATED, Json(User::from(&user))))
}

/// Log in: a new session, and its tokens.
///
/// Failed logins are limited per (username, address), per username and per
/// address; beyond a limit, 429 with `Retry-After`.
#[utoipa::path(
    post,
    path = "/api/login",
    tag = "accounts",
    request_body = LoginBody,
    responses(
        (status = 200, description = "The session's tokens", body = Login),
        (status = 400, description = "Bad body", body = ErrorBody),
        (status = 401, description = "Wrong username or password", body = ErrorBody),
        (status = 413, description = "Body too large", body = ErrorBody),
        (status = 429, description = "Too many failed logins, or too many at once", body = ErrorBody),
        (status = 503, description = "A dependency is down", body = ErrorBody),
    )
)]
pub async fn login(
    State(accounts): State<Accounts>,
    ClientIp(ip): ClientIp,
    ApiJson(body): ApiJson<LoginBody>,
) -> Result<Json<Login>, ApiError> {
    let reply = accounts
        .login(&body.username, body.password, body.device, ip)
        .await?;
    Ok(Json(Login::from(reply)))
}

/// Trade a refresh token for a new access token and a new refresh token.
///
/// The old refresh token is spent. Presenting a spent one again is taken
/// for theft: the whole session is signed out (401).
#[utoipa::path(
    post,
    path = "/api/refresh",
    tag = "accounts",
    request_body = RefreshBody,
    responses(
        (status = 200, description = "The session's new tokens", body = Login),
        (status = 400, description = "Bad body", body = ErrorBody),
        (status = 401, description = "Unknown, expired, spent or revoked refresh token", body = ErrorBody),
        (status = 413, description = "Body too large", body = ErrorBody),
        (status = 503, description = "A dependency is down", body = ErrorBody),
    )
)]
pub async fn refresh(
    State(accounts): State<Accounts>,
    ClientIp(ip): ClientIp,
    ApiJson(body): ApiJson<RefreshBody>,
) -> Result<Json<Login>, ApiError> {
    let reply = accounts.refresh(body.refresh_token, ip).await?;
    Ok(Json(Login::from(reply)))
}

/// Who am I: the caller's account.
#[utoipa::path(
    get,
    path = "/api/me",
    tag = "accounts",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The caller's account", body = User),
        (status = 401, description = "Missing, bad or expired token, or a signed-out session", body = ErrorBody),
        (status = 404, description = "The account no longer exists", body = ErrorBody),
        (status = 503, description = "A dependency is down", body = ErrorBody),
    )
)]
pub async fn me(
    State(accounts): State<Accounts>,
    AuthUser(user): AuthUser,
) -> Result<Json<User>, ApiError> {
    let user = accounts.get(user).await?;
    Ok(Json(User::from(&user)))
}

/// Change the caller's display name.
#[utoipa::path(
    patch,
    path = "/api/me",
    tag = "accounts",
    security(("bearer" = [])),
    request_body = ProfileBody,
    responses(
        (status = 200, description = "The account, changed", body = User),
        (status = 400, description = "Bad display name or body", body = ErrorBody),
        (status = 401, description = "Missing, bad or expired token, or a signed-out session", body = ErrorBody),
        (status = 413, description = "Body too large", body = ErrorBody),
        (status = 503, description = "A dependency is down", body = ErrorBody),
    )
)]
pub async fn update_me(
    State(accounts): State<Accounts>,
    AuthUser(user): AuthUser,
    ApiJson(body): ApiJson<ProfileBody>,
) -> Result<Json<User>, ApiError> {
    let user = accounts.update_profile(user, body.display_name).await?;
    Ok(Json(User::from(&user)))
}

/// Delete the caller's account, with its password.
///
/// Every session is signed out and its sockets closed; memberships, the
/// offline queue, read markers and the DM index are erased; the username is
/// retired for good. Messages sent stay in their conversations
/// (docs/security.md, "Erasure"). Counted against the failed-login limits.
#[utoipa::path(
    delete,
    path = "/api/me",
    tag = "accounts",
    security(("bearer" = [])),
    request_body = DeleteBody,
    responses(
        (status = 204, description = "The account is deleted"),
        (status = 400, description = "Bad body", body = ErrorBody),
        (status = 401, description = "Wrong password, or a bad or signed-out token", body = ErrorBody),
        (status = 429, description = "Too many failed password checks", body = ErrorBody),
        (status = 503, description = "A dependency is down; nothing was deleted", body = ErrorBody),
    )
)]
pub async fn delete_me(
    State(accounts): State<Accounts>,
    AuthUser(user): AuthUser,
    ClientIp(ip): ClientIp,
    ApiJson(body): ApiJson<DeleteBody>,
) -> Result<StatusCode, ApiError> {
    accounts.delete(&user, body.password, ip).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Change the caller's password: every other session is signed out.
///
/// Counted against the failed-login limits, like a login.
#[utoipa::path(
    post,
    path = "/api/password",
    tag = "accounts",
    security(("bearer" = [])),
    request_body = PasswordBody,
    responses(
        (status = 200, description = "Changed; how many other sessions were signed out", body = SignedOut),
        (status = 400, description = "Bad new password or body", body = ErrorBody),
        (status = 401, description = "Wrong current password, or a bad or signed-out token", body = ErrorBody),
        (status = 429, description = "Too many failed password checks", body = ErrorBody),
        (status = 503, description = "A dependency is down", body = ErrorBody),
    )
)]
pub async fn change_password(
    State(accounts): State<Accounts>,
    Authed(me): Authed,
    ClientIp(ip): ClientIp,
    ApiJson(body): ApiJson<PasswordBody>,
) -> Result<Json<SignedOut>, ApiError> {
    let revoked = accounts
        .change_password(
            &me.user,
            &me.session,
            body.current_password,
            body.new_password,
            ip,
        )
        .await?;
    Ok(Json(SignedOut { revoked }))
}

/// Export the caller's data, a page at a time: the account, sessions and
/// rooms on the first page, then every message the caller sent.
///
/// Each page reads at most 1,000 messages of history; follow `next_cursor`
/// until it is null. At most 600 pages per hour.
#[utoipa::path(
    get,
    path = "/api/me/export",
    tag = "accounts",
    security(("bearer" = [])),
    params(ExportQuery),
    responses(
        (status = 200, description = "A page of the export", body = ExportPage),
        (status = 400, description = "Bad cursor", body = ErrorBody),
        (status = 401, description = "Missing, bad or expired token, or a signed-out session", body = ErrorBody),
        (status = 429, description = "Too many export pages this hour", body = ErrorBody),
        (status = 503, description = "A dependency is down", body = ErrorBody),
    )
)]
pub async fn export(
    State(export): State<Export>,
    Authed(me): Authed,
    ApiQuery(query): ApiQuery<ExportQuery>,
) -> Result<Json<ExportPage>, ApiError> {
    let cursor = query.cursor.as_deref().map(Cursor::parse).transpose()?;
    let page = export.page(&me.user, cursor).await?;
    let (account, sessions, rooms, conversations) = match page.account {
        Some(a) => (
            Some(User::from(&a.user)),
            Some(
                a.sessions
                    .iter()
                    .map(|s| session_info(s, &me.session))
                    .collect(),
            ),
            Some(a.rooms.iter().map(Room::from).collect()),
            Some(a.conversations),
        ),
        None => (None, None, None, None),
    };
    Ok(Json(ExportPage {
        account,
        sessions,
        rooms,
        conversations,
        messages: page.messages,
        next_cursor: page.next.as_ref().map(Cursor::encode),
    }))
}
