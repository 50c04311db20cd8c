//! Rooms: list mine, create, join, leave, members with online flags.

use axum::{
    Json,
    extract::{Path, State},
    http::StatusCode,
};
use common::ids::{ConversationId, check_room_name};
use proto::user::v1 as pb;
use serde::Deserialize;
use serde_json::{Value, json};

use super::{
    access::check_can_read,
    accounts::ms,
    error::ApiError,
    extract::{ApiJson, AuthUser},
    limits,
};
use crate::state::AppState;

#[derive(Deserialize)]
pub struct CreateBody {
    name: String,
    topic: Option<String>,
}

fn room_json(r: &pb::Room) -> Value {
    json!({
        "name": r.name,
        "topic": r.topic,
        "created_by": r.created_by,
        "created_at": ms(r.created_at.as_ref()),
        "role": if r.role.is_empty() { Value::Null } else { Value::from(r.role.clone()) },
    })
}

fn check_name(name: &str) -> Result<(), ApiError> {
    check_room_name(name).map_err(|e| ApiError::BadRequest(e.to_string()))
}

pub async fn list(
    State(state): State<AppState>,
    AuthUser(user): AuthUser,
) -> Result<Json<Value>, ApiError> {
    let rooms = state
        .users
        .clone()
        .list_user_rooms(pb::ListUserRoomsRequest { username: user })
        .await?
        .into_inner()
        .rooms;
    Ok(Json(
        json!({"rooms": rooms.iter().map(room_json).collect::<Vec<_>>()}),
    ))
}

pub async fn create(
    State(state): State<AppState>,
    AuthUser(user): AuthUser,
    ApiJson(body): ApiJson<CreateBody>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
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
    Ok((StatusCode::CREATED, Json(room_json(&room))))
}

pub async fn join(
    State(state): State<AppState>,
    AuthUser(user): AuthUser,
    Path(name): Path<String>,
) -> Result<Json<Value>, ApiError> {
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
    Ok(Json(room_json(&room)))
}

pub async fn leave(
    State(state): State<AppState>,
    AuthUser(user): AuthUser,
    Path(name): Path<String>,
) -> Result<Json<Value>, ApiError> {
    check_name(&name)?;
    state
        .users
        .clone()
        .leave_room(pb::RoomMembershipRequest {
            room: name.clone(),
            username: user,
        })
        .await?;
    Ok(Json(json!({"room": name, "left": true})))
}

/// A room's members with online flags, for its members only: who is in a
/// room and when they are online is the room's business.
pub async fn members(
    State(state): State<AppState>,
    AuthUser(user): AuthUser,
    Path(name): Path<String>,
) -> Result<Json<Value>, ApiError> {
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
    let list: Vec<Value> = members
        .iter()
        .zip(online)
        .map(|(m, online)| {
            json!({
                "username": m.username,
                "role": m.role,
                "joined_at": ms(m.joined_at.as_ref()),
                "online": online,
            })
        })
        .collect();
    Ok(Json(json!({"room": name, "members": list})))
}
