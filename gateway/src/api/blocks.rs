//! Blocks over HTTP: list, block, unblock.

use axum::{
    Json,
    extract::{Path, State},
};
use serde::Serialize;
use utoipa::ToSchema;

use super::schema::{ErrorBody, ms};
use crate::{
    domain::accounts::Accounts,
    http::{error::ApiError, extract::AuthUser},
};

#[derive(Serialize, ToSchema)]
pub struct BlockedUser {
    pub username: String,
    /// Unix milliseconds.
    pub blocked_at: i64,
}

/// Whom the caller blocks, newest first (at most 1,000).
#[derive(Serialize, ToSchema)]
pub struct Blocks {
    pub blocks: Vec<BlockedUser>,
}

/// What a block or unblock did.
#[derive(Serialize, ToSchema)]
pub struct BlockChange {
    pub username: String,
    /// Whether the caller blocks them now.
    pub blocked: bool,
    /// False when it was so already.
    pub changed: bool,
}

/// Whom the caller blocks.
#[utoipa::path(
    get,
    path = "/api/blocks",
    tag = "accounts",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The blocked users", body = Blocks),
        (status = 401, description = "Missing, bad or expired token", body = ErrorBody),
        (status = 503, description = "A dependency is down", body = ErrorBody),
    )
)]
pub async fn list(
    State(accounts): State<Accounts>,
    AuthUser(user): AuthUser,
) -> Result<Json<Blocks>, ApiError> {
    let blocks = accounts.blocks(user).await?;
    Ok(Json(Blocks {
        blocks: blocks
            .into_iter()
            .map(|b| BlockedUser {
                blocked_at: ms(b.created_at.as_ref()),
                username: b.username,
            })
            .collect(),
    }))
}

/// Block a user: their DMs and invites to the caller are refused, and they
/// no longer see the caller's typing or presence. Blocking twice is one
/// block.
#[utoipa::path(
    put,
    path = "/api/blocks/{username}",
    tag = "accounts",
    security(("bearer" = [])),
    params(("username" = String, Path, description = "The user to block", pattern = "^[a-z0-9_]{3,32}$")),
    responses(
        (status = 200, description = "Blocked", body = BlockChange),
        (status = 400, description = "Bad username, or the caller themself", body = ErrorBody),
        (status = 401, description = "Missing, bad or expired token", body = ErrorBody),
        (status = 404, description = "No such user", body = ErrorBody),
        (status = 409, description = "The caller already blocks 1,000 users", body = ErrorBody),
        (status = 503, description = "A dependency is down", body = ErrorBody),
    )
)]
pub async fn block(
    State(accounts): State<Accounts>,
    AuthUser(user): AuthUser,
    Path(username): Path<String>,
) -> Result<Json<BlockChange>, ApiError> {
    let changed = accounts.set_block(user, username.clone(), true).await?;
    Ok(Json(BlockChange {
        username,
        blocked: true,
        changed,
    }))
}

/// Unblock a user; unblocking someone not blocked changes nothing.
#[utoipa::path(
    delete,
    path = "/api/blocks/{username}",
    tag = "accounts",
    security(("bearer" = [])),
    params(("username" = String, Path, description = "The user to unblock", pattern = "^[a-z0-9_]{3,32}$")),
    responses(
        (status = 200, description = "Unblocked", body = BlockChange),
        (status = 400, description = "Bad username, or the caller themself", body = ErrorBody),
        (status = 401, description = "Missing, bad or expired token", body = ErrorBody),
        (status = 404, description = "No such user", body = ErrorBody),
        (status = 503, description = "A dependency is down", body = ErrorBody),
    )
)]
pub async fn unblock(
    State(accounts): State<Accounts>,
    AuthUser(user): AuthUser,
    Path(username): Path<String>,
) -> Result<Json<BlockChange>, ApiError> {
    let changed = accounts.set_block(user, username.clone(), false).await?;
    Ok(Json(BlockChange {
        username,
        blocked: false,
        changed,
    }))
}
