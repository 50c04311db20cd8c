//! Invite links over HTTP: made, listed and revoked on the room; used by
//! whoever holds the code.

use axum::{
    Json,
    extract::{Path, State},
    http::StatusCode,
};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::schema::{ErrorBody, Room, ms};
use crate::{
    domain::{links::parse_link_id, rooms::Rooms},
    http::{
        error::ApiError,
        extract::{ApiJson, AuthUser},
    },
};

#[derive(Deserialize, ToSchema)]
pub struct LinkBody {
    /// 60 to 2592000 (30 days); absent: the link never expires.
    #[schema(minimum = 60, maximum = 2_592_000)]
    expires_in_secs: Option<u32>,
    /// 1 to 1000; absent: any number of uses.
    #[schema(minimum = 1, maximum = 1000)]
    max_uses: Option<u32>,
}

/// An invite link.
#[derive(Serialize, ToSchema)]
pub struct InviteLink {
    pub id: i64,
    pub room: String,
    /// The secret: in the answer that made the link only (null afterwards).
    /// Join with `POST /api/invite-links/{code}/join`.
    pub code: Option<String>,
    pub created_by: String,
    /// Unix milliseconds.
    pub created_at: i64,
    /// Unix milliseconds; null: never.
    pub expires_at: Option<i64>,
    /// Null: any number.
    pub max_uses: Option<u32>,
    pub uses: u32,
}

/// The room's links that still work, newest first (at most 20).
#[derive(Serialize, ToSchema)]
pub struct InviteLinks {
    pub links: Vec<InviteLink>,
}

/// A revoked link.
#[derive(Serialize, ToSchema)]
pub struct Revoked {
    pub room: String,
    pub id: i64,
    pub revoked: bool,
}

fn link(l: proto::user::v1::InviteLink) -> InviteLink {
    InviteLink {
        id: l.id,
        room: l.room,
        code: (!l.code.is_empty()).then_some(l.code),
        created_by: l.created_by,
        created_at: ms(l.created_at.as_ref()),
        expires_at: l.expires_at.as_ref().map(|t| ms(Some(t))),
        max_uses: l.max_uses,
        uses: l.uses,
    }
}

/// Make an invite link (admins and the owner).
#[utoipa::path(
    post,
    path = "/api/rooms/{name}/invite-links",
    tag = "rooms",
    security(("bearer" = [])),
    params(("name" = String, Path, description = "The room's name", pattern = "^[a-z0-9_-]{1,32}$")),
    request_body = LinkBody,
    responses(
        (status = 201, description = "The link, with its code (shown this once)", body = InviteLink),
        (status = 400, description = "Bad name, expiry, use count or body", body = ErrorBody),
        (status = 401, description = "Missing, bad or expired token", body = ErrorBody),
        (status = 403, description = "The role does not allow it", body = ErrorBody),
        (status = 404, description = "No such room (or a private one the caller is not in)", body = ErrorBody),
        (status = 409, description = "The room has 20 working links", body = ErrorBody),
        (status = 413, description = "Body too large", body = ErrorBody),
        (status = 503, description = "A dependency is down", body = ErrorBody),
    )
)]
pub async fn create(
    State(rooms): State<Rooms>,
    AuthUser(user): AuthUser,
    Path(name): Path<String>,
    ApiJson(body): ApiJson<LinkBody>,
) -> Result<(StatusCode, Json<InviteLink>), ApiError> {
    let made = rooms
        .create_link(proto::user::v1::CreateInviteLinkRequest {
            room: name,
            actor: user,
            expires_in_secs: body.expires_in_secs,
            max_uses: body.max_uses,
        })
        .await?;
    Ok((StatusCode::CREATED, Json(link(made))))
}

/// The room's invite links that still work (admins and the owner).
#[utoipa::path(
    get,
    path = "/api/rooms/{name}/invite-links",
    tag = "rooms",
    security(("bearer" = [])),
    params(("name" = String, Path, description = "The room's name", pattern = "^[a-z0-9_-]{1,32}$")),
    responses(
        (status = 200, description = "The links, without their codes", body = InviteLinks),
        (status = 400, description = "Bad room name", body = ErrorBody),
        (status = 401, description = "Missing, bad or expired token", body = ErrorBody),
        (status = 403, description = "The role does not allow it", body = ErrorBody),
        (status = 404, description = "No such room (or a private one the caller is not in)", body = ErrorBody),
        (status = 503, description = "A dependency is down", body = ErrorBody),
    )
)]
pub async fn list(
    State(rooms): State<Rooms>,
    AuthUser(user): AuthUser,
    Path(name): Path<String>,
) -> Result<Json<InviteLinks>, ApiError> {
    let links = rooms.links(user, name).await?;
    Ok(Json(InviteLinks {
        links: links.into_iter().map(link).collect(),
    }))
}

/// Revoke an invite link (admins and the owner): it lets nobody in again.
#[utoipa::path(
    delete,
    path = "/api/rooms/{name}/invite-links/{id}",
    tag = "rooms",
    security(("bearer" = [])),
    params(
        ("name" = String, Path, description = "The room's name", pattern = "^[a-z0-9_-]{1,32}$"),
        ("id" = i64, Path, description = "The link's id", minimum = 1),
    ),
    responses(
        (status = 200, description = "Revoked", body = Revoked),
        (status = 400, description = "Bad room name or link id", body = ErrorBody),
        (status = 401, description = "Missing, bad or expired token", body = ErrorBody),
        (status = 403, description = "The role does not allow it", body = ErrorBody),
        (status = 404, description = "No such room or link", body = ErrorBody),
        (status = 503, description = "A dependency is down", body = ErrorBody),
    )
)]
pub async fn revoke(
    State(rooms): State<Rooms>,
    AuthUser(user): AuthUser,
    Path((name, id)): Path<(String, String)>,
) -> Result<Json<Revoked>, ApiError> {
    let id = parse_link_id(&id)?;
    rooms.revoke_link(user, name.clone(), id).await?;
    Ok(Json(Revoked {
        room: name,
        id,
        revoked: true,
    }))
}

/// Join a room with an invite link's code (a member already uses nothing).
#[utoipa::path(
    post,
    path = "/api/invite-links/{code}/join",
    tag = "rooms",
    security(("bearer" = [])),
    params(("code" = String, Path, description = "The link's code", pattern = "^[0-9a-f]{32}$")),
    responses(
        (status = 200, description = "Joined: the room", body = Room),
        (status = 400, description = "Not a code", body = ErrorBody),
        (status = 401, description = "Missing, bad or expired token", body = ErrorBody),
        (status = 403, description = "Banned from the room", body = ErrorBody),
        (status = 404, description = "No such link, or it expired, was used up or revoked", body = ErrorBody),
        (status = 429, description = "Too many joins and leaves (MEMBERSHIP_CHANGES_PER_USER a minute)", body = ErrorBody),
        (status = 503, description = "A dependency is down", body = ErrorBody),
    )
)]
pub async fn join(
    State(rooms): State<Rooms>,
    AuthUser(user): AuthUser,
    Path(code): Path<String>,
) -> Result<Json<Room>, ApiError> {
    let room = rooms.use_link(user, code).await?;
    Ok(Json(Room::from(&room)))
}
