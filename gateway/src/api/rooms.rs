//! Rooms: list mine, create, join, leave, members with online flags.

use axum::{
    Json,
    extract::{Path, State},
    http::StatusCode,
};
use chat_model::ids::{ConversationId, check_room_name};
use proto::user::v1 as pb;
use serde::Deserialize;
use utoipa::ToSchema;

use super::{
    access::check_can_read,
    error::ApiError,
    extract::{ApiJson, AuthUser},
    limits,
    schema::{ErrorBody, Left, Member, Members, Room, Rooms, ms},
};
use crate::state::AppState;

#[derive(Deserialize, ToSchema)]
pub struct CreateBody {
    /// 1 to 32 characters of a-z, 0-9, _ and -.
    #[schema(pattern = "^[a-z0-9_-]{1,32}$")]
    name: String,
    /// Up to 256 characters.
    #[schema(max_length = 256)]
    topic: Option<String>,
}

fn check_name(name: &str) -> Result<(), ApiError> {
    check_room_name(name).map_err(|e| ApiError::BadRequest(e.to_string()))
}

/// The caller's rooms, with the caller's role in each.
#[utoipa::path(
    get,
    path = "/api/rooms",
    tag = "rooms",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The caller's rooms", body = Rooms),
        (status = 401, description = "Missing, bad or expired token", body = ErrorBody),
        (status = 503, description = "A dependency is down", body = ErrorBody),
    )
)]
pub async fn list(
    State(state): State<AppState>,
    AuthUser(user): AuthUser,
) -> Result<Json<Rooms>, ApiError> {
    let rooms = state
        .users
        .clone()
        .list_user_rooms(pb::ListUserRoomsRequest { username: user })
        .await?
        .into_inner()
        .rooms;
    Ok(Json(Rooms {
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
    State(state): State<AppState>,
    AuthUser(user): AuthUser,
    ApiJson(body): ApiJson<CreateBody>,
) -> Result<(StatusCode, Json<Room>), ApiError> {
    check_name(&body.name)?;
    limits::room_creation(&state, &user).await?;
    let room = state
        .users
        .clone()
        .create_room(pb::CreateRoomRequest {
            name: body.name,
            topic: body.topic,
            creator: user,
        })
        .await?
        .into_inner();
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
        (status = 503, description = "A dependency is down", body = ErrorBody),
    )
)]
pub async fn join(
    State(state): State<AppState>,
    AuthUser(user): AuthUser,
    Path(name): Path<String>,
) -> Result<Json<Room>, ApiError> {
    check_name(&name)?;
    let room = state
        .users
        .clone()
        .join_room(pb::RoomMembershipRequest {
            room: name,
            username: user,
        })
        .await?
        .into_inner();
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
        (status = 503, description = "A dependency is down", body = ErrorBody),
    )
)]
pub async fn leave(
    State(state): State<AppState>,
    AuthUser(user): AuthUser,
    Path(name): Path<String>,
) -> Result<Json<Left>, ApiError> {
    check_name(&name)?;
    state
        .users
        .clone()
        .leave_room(pb::RoomMembershipRequest {
            room: name.clone(),
            username: user,
        })
        .await?;
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
    State(state): State<AppState>,
    AuthUser(user): AuthUser,
    Path(name): Path<String>,
) -> Result<Json<Members>, ApiError> {
    check_name(&name)?;
    check_can_read(&state, &user, &ConversationId::room(&name)).await?;
    let members = state
        .users
        .clone()
        .list_room_members(pb::ListRoomMembersRequest { room: name.clone() })
        .await?
        .into_inner()
        .members;
    let names: Vec<String> = members.iter().map(|m| m.username.clone()).collect();
    let online = state
        .lookup
        .clone()
        .any_online(&mut state.redis.clone(), &names)
        .await?;
    let members = members
        .iter()
        .zip(online)
        .map(|(m, online)| Member {
            username: m.username.clone(),
            role: m.role.clone(),
            joined_at: ms(m.joined_at.as_ref()),
            online,
        })
        .collect();
    Ok(Json(Members {
        room: name,
        members,
    }))
}
