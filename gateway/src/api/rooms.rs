//! Rooms: list mine, create, join, leave, members with online flags.

use axum::{
    Json,
    extract::{Path, State},
    http::StatusCode,
};
use serde::Deserialize;
use utoipa::ToSchema;

use super::schema::{ErrorBody, Left, Member, Members, Room, Rooms as RoomList, ms};
use crate::{
    domain::rooms::Rooms,
    http::{
        error::ApiError,
        extract::{ApiJson, AuthUser},
    },
};

#[derive(Deserialize, ToSchema)]
pub struct CreateBody {
    /// 1 to 32 characters of a-z, 0-9, _ and -.
    #[schema(pattern = "^[a-z0-9_-]{1,32}$")]
    name: String,
    /// Up to 256 characters.
    #[schema(max_length = 256)]
    topic: Option<String>,
    /// `public` (the default) or `private`.
    visibility: Option<String>,
}

/// The caller's rooms, with the caller's role in each.
#[utoipa::path(
    get,
    path = "/api/rooms",
    tag = "rooms",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The caller's rooms", body = RoomList),
        (status = 401, description = "Missing, bad or expired token", body = ErrorBody),
        (status = 503, description = "A dependency is down", body = ErrorBody),
    )
)]
pub async fn list(
    State(rooms): State<Rooms>,
    AuthUser(user): AuthUser,
) -> Result<Json<RoomList>, ApiError> {
    let rooms = rooms.mine(user).await?;
    Ok(Json(RoomList {
        rooms: rooms.iter().map(Room::from).collect(),
    }))
}

/// Create a room; the caller becomes its owner.
///
/// Rooms one user may create are limited per window (`ROOMS_PER_USER`).
#[utoipa::path(
    post,
    path = "/api/rooms",
    tag = "rooms",
    security(("bearer" = [])),
    request_body = CreateBody,
    responses(
        (status = 201, description = "The room", body = Room),
        (status = 400, description = "Bad name, topic or body", body = ErrorBody),
        (status = 401, description = "Missing, bad or expired token", body = ErrorBody),
        (status = 409, description = "The name is taken", body = ErrorBody),
        (status = 413, description = "Body too large", body = ErrorBody),
        (status = 429, description = "Too many rooms created", body = ErrorBody),
        (status = 503, description = "A dependency is down", body = ErrorBody),
    )
)]
pub async fn create(
    State(rooms): State<Rooms>,
    AuthUser(user): AuthUser,
    ApiJson(body): ApiJson<CreateBody>,
) -> Result<(StatusCode, Json<Room>), ApiError> {
    let room = rooms
        .create(user, body.name, body.topic, body.visibility)
        .await?;
    Ok((StatusCode::CREATED, Json(Room::from(&room))))
}

/// Join a room (joining twice is not an error).
#[utoipa::path(
    post,
    path = "/api/rooms/{name}/join",
    tag = "rooms",
    security(("bearer" = [])),
    params(("name" = String, Path, description = "The room's name", pattern = "^[a-z0-9_-]{1,32}$")),
    responses(
        (status = 200, description = "The room", body = Room),
        (status = 400, description = "Bad room name", body = ErrorBody),
        (status = 401, description = "Missing, bad or expired token", body = ErrorBody),
        (status = 404, description = "No such room", body = ErrorBody),
        (status = 429, description = "Too many joins and leaves (MEMBERSHIP_CHANGES_PER_USER a minute)", body = ErrorBody),
        (status = 503, description = "A dependency is down", body = ErrorBody),
    )
)]
pub async fn join(
    State(rooms): State<Rooms>,
    AuthUser(user): AuthUser,
    Path(name): Path<String>,
) -> Result<Json<Room>, ApiError> {
    let room = rooms.join(user, name).await?;
    Ok(Json(Room::from(&room)))
}

/// Leave a room.
#[utoipa::path(
    post,
    path = "/api/rooms/{name}/leave",
    tag = "rooms",
    security(("bearer" = [])),
    params(("name" = String, Path, description = "The room's name", pattern = "^[a-z0-9_-]{1,32}$")),
    responses(
        (status = 200, description = "Left", body = Left),
        (status = 400, description = "Bad room name", body = ErrorBody),
        (status = 401, description = "Missing, bad or expired token", body = ErrorBody),
        (status = 404, description = "No such room", body = ErrorBody),
        (status = 409, description = "Not a member", body = ErrorBody),
        (status = 429, description = "Too many joins and leaves (MEMBERSHIP_CHANGES_PER_USER a minute)", body = ErrorBody),
        (status = 503, description = "A dependency is down", body = ErrorBody),
    )
)]
pub async fn leave(
    State(rooms): State<Rooms>,
    AuthUser(user): AuthUser,
    Path(name): Path<String>,
) -> Result<Json<Left>, ApiError> {
    rooms.leave(user, name.clone()).await?;
    Ok(Json(Left {
        room: name,
        left: true,
    }))
}

/// A room's members with online flags, for its members only: who is in a
/// room and when they are online is the room's business.
#[utoipa::path(
    get,
    path = "/api/rooms/{name}/members",
    tag = "rooms",
    security(("bearer" = [])),
    params(("name" = String, Path, description = "The room's name", pattern = "^[a-z0-9_-]{1,32}$")),
    responses(
        (status = 200, description = "The members", body = Members),
        (status = 400, description = "Bad room name", body = ErrorBody),
        (status = 401, description = "Missing, bad or expired token", body = ErrorBody),
        (status = 403, description = "Not a member", body = ErrorBody),
        (status = 404, description = "No such room", body = ErrorBody),
        (status = 503, description = "A dependency is down", body = ErrorBody),
    )
)]
pub async fn members(
    State(rooms): State<Rooms>,
    AuthUser(user): AuthUser,
    Path(name): Path<String>,
) -> Result<Json<Members>, ApiError> {
    let members = rooms
        .members(&user, &name)
        .await?
        .into_iter()
        .map(|m| Member {
            username: m.member.username,
            display_name: m.member.display_name,
            role: m.member.role,
            joined_at: ms(m.member.joined_at.as_ref()),
            online: m.online,
            muted_until: (m.member.muted_until_ms != 0).then_some(m.member.muted_until_ms),
        })
        .collect();
    Ok(Json(Members {
        room: name,
        members,
    }))
}
