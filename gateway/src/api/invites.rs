//! Getting into rooms over HTTP: invites (sent by admins and the owner,
//! answered by the invited) and the directory of public rooms.

use axum::{
    Json,
    extract::{Path, State},
    http::StatusCode,
};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::{
    moderation::{Done, UserBody, page_limit},
    schema::{ErrorBody, Room, ms},
};
use crate::{
    domain::rooms::Rooms,
    http::{
        error::ApiError,
        extract::{ApiJson, ApiQuery, AuthUser},
    },
};

/// A pending invite.
#[derive(Serialize, ToSchema)]
pub struct Invitation {
    pub room: String,
    pub topic: String,
    pub invited_by: String,
    /// Unix milliseconds.
    pub created_at: i64,
}

#[derive(Serialize, ToSchema)]
pub struct Invitations {
    pub invites: Vec<Invitation>,
}

#[derive(Serialize, ToSchema)]
pub struct DirectoryRoom {
    pub name: String,
    pub topic: String,
    pub created_by: String,
    /// Unix milliseconds.
    pub created_at: i64,
    pub members: u32,
}

/// A page of public rooms, by name.
#[derive(Serialize, ToSchema)]
pub struct Directory {
    pub rooms: Vec<DirectoryRoom>,
    /// Pass as `cursor` for the next page; null on the last page.
    pub next_cursor: Option<String>,
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct DirectoryQuery {
    /// A name prefix.
    q: Option<String>,
    cursor: Option<String>,
    /// 1 to 100 (default 100).
    limit: Option<u32>,
}

fn invitation(i: proto::user::v1::Invitation) -> Invitation {
    Invitation {
        room: i.room,
        topic: i.topic,
        invited_by: i.invited_by,
        created_at: ms(i.created_at.as_ref()),
    }
}

/// Invite a user (admins and the owner); inviting twice is one invite.
#[utoipa::path(
    post,
    path = "/api/rooms/{name}/invites",
    tag = "rooms",
    security(("bearer" = [])),
    params(("name" = String, Path, description = "The room's name", pattern = "^[a-z0-9_-]{1,32}$")),
    request_body = UserBody,
    responses(
        (status = 201, description = "The invite", body = Invitation),
        (status = 400, description = "Bad name, user or body; the caller themself", body = ErrorBody),
        (status = 401, description = "Missing, bad or expired token", body = ErrorBody),
        (status = 403, description = "The role does not allow it", body = ErrorBody),
        (status = 404, description = "No such room or user", body = ErrorBody),
        (status = 409, description = "Already a member, banned, or too many pending invites", body = ErrorBody),
        (status = 413, description = "Body too large", body = ErrorBody),
        (status = 503, description = "A dependency is down", body = ErrorBody),
    )
)]
pub async fn invite(
    State(rooms): State<Rooms>,
    AuthUser(user): AuthUser,
    Path(name): Path<String>,
    ApiJson(body): ApiJson<UserBody>,
) -> Result<(StatusCode, Json<Invitation>), ApiError> {
    let i = rooms.invite(user, name, body.user).await?;
    Ok((StatusCode::CREATED, Json(invitation(i))))
}

/// The caller's pending invites, newest first.
#[utoipa::path(
    get,
    path = "/api/invites",
    tag = "rooms",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The invites", body = Invitations),
        (status = 401, description = "Missing, bad or expired token", body = ErrorBody),
        (status = 503, description = "A dependency is down", body = ErrorBody),
    )
)]
pub async fn invites(
    State(rooms): State<Rooms>,
    AuthUser(user): AuthUser,
) -> Result<Json<Invitations>, ApiError> {
    let invites = rooms.invites(user).await?;
    Ok(Json(Invitations {
        invites: invites.into_iter().map(invitation).collect(),
    }))
}

/// Accept an invite: the caller joins the room.
#[utoipa::path(
    post,
    path = "/api/invites/{room}/accept",
    tag = "rooms",
    security(("bearer" = [])),
    params(("room" = String, Path, description = "The room's name", pattern = "^[a-z0-9_-]{1,32}$")),
    responses(
        (status = 200, description = "Joined", body = Room),
        (status = 400, description = "Bad room name", body = ErrorBody),
        (status = 401, description = "Missing, bad or expired token", body = ErrorBody),
        (status = 403, description = "Banned meanwhile", body = ErrorBody),
        (status = 404, description = "No such invite", body = ErrorBody),
        (status = 429, description = "Too many joins and leaves (MEMBERSHIP_CHANGES_PER_USER a minute)", body = ErrorBody),
        (status = 503, description = "A dependency is down", body = ErrorBody),
    )
)]
pub async fn accept(
    State(rooms): State<Rooms>,
    AuthUser(user): AuthUser,
    Path(room): Path<String>,
) -> Result<Json<Room>, ApiError> {
    let joined = rooms.answer(user, room, true).await?;
    let joined =
        joined.ok_or_else(|| ApiError::from(crate::domain::Error::Internal("no room".into())))?;
    Ok(Json(Room::from(&joined)))
}

/// Decline an invite.
#[utoipa::path(
    post,
    path = "/api/invites/{room}/decline",
    tag = "rooms",
    security(("bearer" = [])),
    params(("room" = String, Path, description = "The room's name", pattern = "^[a-z0-9_-]{1,32}$")),
    responses(
        (status = 200, description = "Declined", body = Done),
        (status = 400, description = "Bad room name", body = ErrorBody),
        (status = 401, description = "Missing, bad or expired token", body = ErrorBody),
        (status = 404, description = "No such invite", body = ErrorBody),
        (status = 503, description = "A dependency is down", body = ErrorBody),
    )
)]
pub async fn decline(
    State(rooms): State<Rooms>,
    AuthUser(user): AuthUser,
    Path(room): Path<String>,
) -> Result<Json<Done>, ApiError> {
    rooms.answer(user.clone(), room.clone(), false).await?;
    Ok(Json(Done {
        room,
        action: "decline".into(),
        user: Some(user),
    }))
}

/// The public rooms, by name, optionally by a name prefix.
#[utoipa::path(
    get,
    path = "/api/rooms/directory",
    tag = "rooms",
    security(("bearer" = [])),
    params(DirectoryQuery),
    responses(
        (status = 200, description = "A page of public rooms", body = Directory),
        (status = 400, description = "Bad prefix, cursor or limit", body = ErrorBody),
        (status = 401, description = "Missing, bad or expired token", body = ErrorBody),
        (status = 503, description = "A dependency is down", body = ErrorBody),
    )
)]
pub async fn directory(
    State(rooms): State<Rooms>,
    AuthUser(_user): AuthUser,
    ApiQuery(q): ApiQuery<DirectoryQuery>,
) -> Result<Json<Directory>, ApiError> {
    let page = rooms
        .directory(
            q.q.unwrap_or_default(),
            q.cursor.unwrap_or_default(),
            page_limit(q.limit)?,
        )
        .await?;
    let next_cursor = page
        .has_more
        .then(|| page.rooms.last().map(|r| r.name.clone()))
        .flatten();
    Ok(Json(Directory {
        rooms: page
            .rooms
            .into_iter()
            .map(|r| DirectoryRoom {
                created_at: ms(r.created_at.as_ref()),
                name: r.name,
                topic: r.topic,
                created_by: r.created_by,
                members: r.member_count,
            })
            .collect(),
        next_cursor,
    }))
}
