//! Register, log in, who am I.

use std::net::SocketAddr;

use axum::{
    Json,
    extract::{ConnectInfo, State},
    http::{HeaderMap, StatusCode},
};
use proto::user::v1 as pb;
use serde::Deserialize;
use serde_json::{Value, json};

use super::{
    error::ApiError,
    extract::{ApiJson, AuthUser},
    limits,
};
use crate::state::AppState;

#[derive(Deserialize)]
pub struct RegisterBody {
    username: String,
    password: String,
    display_name: Option<String>,
}

#[derive(Deserialize)]
pub struct LoginBody {
    username: String,
    password: String,
}

pub fn user_json(u: &pb::User) -> Value {
    json!({
        "username": u.username,
        "display_name": u.display_name,
        "created_at": ms(u.created_at.as_ref()),
    })
}

/// A protobuf timestamp as Unix milliseconds, the protocol's time unit.
pub fn ms(t: Option<&prost_types::Timestamp>) -> i64 {
    t.map_or(0, |t| t.seconds * 1000 + i64::from(t.nanos) / 1_000_000)
}

pub async fn register(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    ApiJson(body): ApiJson<RegisterBody>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let ip = limits::client_ip(&state, &headers, peer);
    limits::registration(&state, ip).await?;
    let user = state
        .users
        .clone()
        .register(pb::RegisterRequest {
            username: body.username,
            password: body.password,
            display_name: body.display_name,
        })
        .await?
        .into_inner();
    Ok((StatusCode::CREATED, Json(user_json(&user))))
}

pub async fn login(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    ApiJson(body): ApiJson<LoginBody>,
) -> Result<Json<Value>, ApiError> {
    let ip = limits::client_ip(&state, &headers, peer);
    // Counted before the password is checked; refunded below on success.
    limits::login_attempt(&state, &body.username, ip).await?;
    let result = state
        .users
        .clone()
        .authenticate(pb::AuthenticateRequest {
            username: body.username.clone(),
            password: body.password,
        })
        .await;
    let reply = match result {
        Ok(reply) => reply.into_inner(),
        Err(status) => {
            if status.code() != tonic::Code::Unauthenticated {
                // Not a wrong password (the service was busy or down): the
                // attempt does not count against the user.
                limits::refund_login(&state, &body.username, ip, false).await;
            }
            return Err(status.into());
        }
    };
    limits::refund_login(&state, &body.username, ip, true).await;
    Ok(Json(json!({
        "token": reply.token,
        "expires_at": reply.expires_at,
        "username": reply.username,
    })))
}

pub async fn me(
    State(state): State<AppState>,
    AuthUser(user): AuthUser,
) -> Result<Json<Value>, ApiError> {
    let user = state
        .users
        .clone()
        .get_user(pb::GetUserRequest { username: user })
        .await?
        .into_inner();
    Ok(Json(user_json(&user)))
}
