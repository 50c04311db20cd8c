//! Register, log in, who am I.

use axum::{Json, extract::State, http::StatusCode};
use proto::user::v1 as user_pb;
use serde::Deserialize;
use utoipa::ToSchema;

use super::schema::{ErrorBody, Login, User};
use crate::{
    domain::accounts::Accounts,
    http::{
        error::ApiError,
        extract::{ApiJson, AuthUser, ClientIp},
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
}

/// Create an account.
///
/// Registrations from one client address are limited per window
/// (`REGISTRATIONS_PER_IP`): beyond it, 429 with `Retry-After`.
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

/// Log in: a session token.
///
/// Failed logins are limited per (username, address), per username and per
/// address; beyond a limit, 429 with `Retry-After`.
#[utoipa::path(
    post,
    path = "/api/login",
    tag = "accounts",
    request_body = LoginBody,
    responses(
        (status = 200, description = "A token for `Authorization: Bearer`", body = Login),
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
    let reply = accounts.login(&body.username, body.password, ip).await?;
    Ok(Json(Login {
        token: reply.token,
        expires_at: reply.expires_at,
        username: reply.username,
    }))
}

/// Who am I: the caller's account.
#[utoipa::path(
    get,
    path = "/api/me",
    tag = "accounts",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The caller's account", body = User),
        (status = 401, description = "Missing, bad or expired token", body = ErrorBody),
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
