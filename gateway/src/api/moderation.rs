//! Running a room over HTTP: settings, deletion, kicks, bans, mutes, roles,
//! ownership and the moderation log (invites and the directory are in
//! `invites.rs`). Who may do
//! what is the permission table of docs/protocol.md ("Roles and
//! permissions"), enforced by user-service.

use axum::{
    Json,
    extract::{Path, State},
};
use proto::user::v1::ModerationAction;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::schema::{ErrorBody, Room, ms};
use crate::{
    domain::{moderation::Action, rooms::Rooms},
    http::{
        error::ApiError,
        extract::{ApiJson, ApiQuery, AuthUser},
    },
};

#[derive(Deserialize, ToSchema)]
pub struct SettingsBody {
    /// Shown instead of the name, which stays the room's id; up to 64
    /// characters ("" shows the name again).
    #[schema(max_length = 64)]
    display_name: Option<String>,
    /// Up to 256 characters.
    #[schema(max_length = 256)]
    topic: Option<String>,
    /// `public` (listed, anyone may join) or `private` (invite only).
    visibility: Option<String>,
    /// Slow mode: the least time between two messages of one member, 0 to
    /// 21600 s (0: off; admins and the owner are exempt).
    #[schema(minimum = 0, maximum = 21_600)]
    slow_mode_secs: Option<u32>,
    /// `full` or `since_join` (members read only what was sent after they
    /// joined).
    history_visibility: Option<String>,
}

#[derive(Deserialize, ToSchema)]
pub struct TargetBody {
    /// The user acted on.
    user: String,
    /// Kept in the moderation log; up to 256 characters.
    #[schema(max_length = 256)]
    reason: Option<String>,
    /// For bans and mutes: how long, 1 to 315360000 s; absent: until lifted.
    #[schema(minimum = 1, maximum = 315_360_000)]
    duration_secs: Option<u64>,
}

#[derive(Deserialize, ToSchema)]
pub struct RoleBody {
    /// `admin` or `member`.
    role: String,
}

#[derive(Deserialize, ToSchema)]
pub struct UserBody {
    pub(super) user: String,
}

/// What was done, to whom.
#[derive(Serialize, ToSchema)]
pub struct Done {
    pub room: String,
    pub action: String,
    /// Null for the room's deletion.
    pub user: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct Ban {
    pub user: String,
    pub banned_by: String,
    pub reason: String,
    /// Unix milliseconds; null: until lifted.
    pub until: Option<i64>,
    /// Unix milliseconds.
    pub created_at: i64,
}

#[derive(Serialize, ToSchema)]
pub struct Bans {
    pub bans: Vec<Ban>,
    pub next_cursor: Option<String>,
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct CursorQuery {
    cursor: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct LogEntry {
    pub id: i64,
    pub actor: String,
    /// kick, ban, unban, mute, unmute, set_role:<role>, transfer, invite,
    /// settings, delete_room.
    pub action: String,
    pub target: String,
    pub reason: String,
    /// Unix milliseconds.
    pub at: i64,
}

#[derive(Serialize, ToSchema)]
pub struct ModerationLog {
    pub entries: Vec<LogEntry>,
    pub next_cursor: Option<String>,
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct LogQuery {
    /// The `next_cursor` of the previous page.
    cursor: Option<String>,
    /// 1 to 100 (default 100).
    limit: Option<u32>,
}

/// A page size: 1 to 100, 100 when absent.
pub(super) fn page_limit(limit: Option<u32>) -> Result<u32, ApiError> {
    match limit {
        None => Ok(100),
        Some(n @ 1..=100) => Ok(n),
        Some(_) => Err(ApiError::bad_request("limit must be 1 to 100")),
    }
}

async fn act(
    rooms: &Rooms,
    actor: String,
    room: String,
    action: Action,
) -> Result<Json<Done>, ApiError> {
    let kind = action.kind;
    let target = action.target.clone();
    let label = match kind {
        ModerationAction::Kick => "kick",
        ModerationAction::Ban => "ban",
        ModerationAction::Unban => "unban",
        ModerationAction::Mute => "mute",
        ModerationAction::Unmute => "unmute",
        ModerationAction::SetRole => "set_role",
        ModerationAction::Transfer => "transfer",
        ModerationAction::DeleteRoom => "delete_room",
        ModerationAction::Unspecified => "",
    };
    rooms.moderate(actor, room.clone(), action).await?;
    Ok(Json(Done {
        room,
        action: label.into(),
        user: (kind != ModerationAction::DeleteRoom).then_some(target),
    }))
}

fn on(kind: ModerationAction, target: String) -> Action {
    Action {
        kind,
        target,
        reason: String::new(),
        duration_secs: None,
        role: String::new(),
    }
}

fn with(kind: ModerationAction, body: TargetBody) -> Action {
    Action {
        reason: body.reason.unwrap_or_default(),
        duration_secs: body.duration_secs,
        ..on(kind, body.user)
    }
}

/// Change a room's display name, topic, visibility, slow mode or history
/// visibility (admins and the owner).
#[utoipa::path(
    patch,
    path = "/api/rooms/{name}",
    tag = "rooms",
    security(("bearer" = [])),
    params(("name" = String, Path, description = "The room's name", pattern = "^[a-z0-9_-]{1,32}$")),
    request_body = SettingsBody,
    responses(
        (status = 200, description = "The room", body = Room),
        (status = 400, description = "Bad name, display name, topic, visibility, slow mode or body", body = ErrorBody),
        (status = 401, description = "Missing, bad or expired token", body = ErrorBody),
        (status = 403, description = "Not a member, or the role does not allow it", body = ErrorBody),
        (status = 404, description = "No such room (or a private one the caller is not in)", body = ErrorBody),
        (status = 413, description = "Body too large", body = ErrorBody),
        (status = 503, description = "A dependency is down", body = ErrorBody),
    )
)]
pub async fn update(
    State(rooms): State<Rooms>,
    AuthUser(user): AuthUser,
    Path(name): Path<String>,
    ApiJson(body): ApiJson<SettingsBody>,
) -> Result<Json<Room>, ApiError> {
    let room = rooms
        .update(proto::user::v1::UpdateRoomRequest {
            room: name,
            actor: user,
            topic: body.topic,
            visibility: body.visibility,
            slow_mode_secs: body.slow_mode_secs,
            display_name: body.display_name,
            history_visibility: body.history_visibility,
        })
        .await?;
    Ok(Json(Room::from(&room)))
}

/// Delete a room (the owner): its members, invites and bans go, its name is
/// retired, and its history is readable by nobody.
#[utoipa::path(
    delete,
    path = "/api/rooms/{name}",
    tag = "rooms",
    security(("bearer" = [])),
    params(("name" = String, Path, description = "The room's name", pattern = "^[a-z0-9_-]{1,32}$")),
    responses(
        (status = 200, description = "Deleted", body = Done),
        (status = 400, description = "Bad room name", body = ErrorBody),
        (status = 401, description = "Missing, bad or expired token", body = ErrorBody),
        (status = 403, description = "Not the owner", body = ErrorBody),
        (status = 404, description = "No such room (or a private one the caller is not in)", body = ErrorBody),
        (status = 503, description = "A dependency is down", body = ErrorBody),
    )
)]
pub async fn delete(
    State(rooms): State<Rooms>,
    AuthUser(user): AuthUser,
    Path(name): Path<String>,
) -> Result<Json<Done>, ApiError> {
    act(
        &rooms,
        user,
        name,
        on(ModerationAction::DeleteRoom, String::new()),
    )
    .await
}

/// Remove a member (admins and the owner); they may join a public room again.
#[utoipa::path(
    post,
    path = "/api/rooms/{name}/kick",
    tag = "rooms",
    security(("bearer" = [])),
    params(("name" = String, Path, description = "The room's name", pattern = "^[a-z0-9_-]{1,32}$")),
    request_body = TargetBody,
    responses(
        (status = 200, description = "Removed", body = Done),
        (status = 400, description = "Bad name, user, reason or body; the caller themself", body = ErrorBody),
        (status = 401, description = "Missing, bad or expired token", body = ErrorBody),
        (status = 403, description = "The role does not allow it", body = ErrorBody),
        (status = 404, description = "No such room or user", body = ErrorBody),
        (status = 409, description = "Not a member", body = ErrorBody),
        (status = 413, description = "Body too large", body = ErrorBody),
        (status = 503, description = "A dependency is down", body = ErrorBody),
    )
)]
pub async fn kick(
    State(rooms): State<Rooms>,
    AuthUser(user): AuthUser,
    Path(name): Path<String>,
    ApiJson(body): ApiJson<TargetBody>,
) -> Result<Json<Done>, ApiError> {
    act(
        &rooms,
        user,
        name,
        Action {
            duration_secs: None,
            ..with(ModerationAction::Kick, body)
        },
    )
    .await
}

/// Ban a user, for a time or until lifted (admins and the owner): removed
/// if a member, their invite dropped, and they cannot join or be invited.
#[utoipa::path(
    post,
    path = "/api/rooms/{name}/bans",
    tag = "rooms",
    security(("bearer" = [])),
    params(("name" = String, Path, description = "The room's name", pattern = "^[a-z0-9_-]{1,32}$")),
    request_body = TargetBody,
    responses(
        (status = 200, description = "Banned", body = Done),
        (status = 400, description = "Bad name, user, reason, duration or body", body = ErrorBody),
        (status = 401, description = "Missing, bad or expired token", body = ErrorBody),
        (status = 403, description = "The role does not allow it", body = ErrorBody),
        (status = 404, description = "No such room or user", body = ErrorBody),
        (status = 409, description = "The room's bans are full", body = ErrorBody),
        (status = 413, description = "Body too large", body = ErrorBody),
        (status = 503, description = "A dependency is down", body = ErrorBody),
    )
)]
pub async fn ban(
    State(rooms): State<Rooms>,
    AuthUser(user): AuthUser,
    Path(name): Path<String>,
    ApiJson(body): ApiJson<TargetBody>,
) -> Result<Json<Done>, ApiError> {
    act(&rooms, user, name, with(ModerationAction::Ban, body)).await
}

/// Lift a ban (admins and the owner).
#[utoipa::path(
    delete,
    path = "/api/rooms/{name}/bans/{user}",
    tag = "rooms",
    security(("bearer" = [])),
    params(
        ("name" = String, Path, description = "The room's name", pattern = "^[a-z0-9_-]{1,32}$"),
        ("user" = String, Path, description = "The banned user"),
    ),
    responses(
        (status = 200, description = "Lifted", body = Done),
        (status = 400, description = "Bad name or user", body = ErrorBody),
        (status = 401, description = "Missing, bad or expired token", body = ErrorBody),
        (status = 403, description = "The role does not allow it", body = ErrorBody),
        (status = 404, description = "No such room, user or ban", body = ErrorBody),
        (status = 503, description = "A dependency is down", body = ErrorBody),
    )
)]
pub async fn unban(
    State(rooms): State<Rooms>,
    AuthUser(user): AuthUser,
    Path((name, target)): Path<(String, String)>,
) -> Result<Json<Done>, ApiError> {
    act(&rooms, user, name, on(ModerationAction::Unban, target)).await
}

/// The room's bans, by username (admins and the owner).
#[utoipa::path(
    get,
    path = "/api/rooms/{name}/bans",
    tag = "rooms",
    security(("bearer" = [])),
    params(("name" = String, Path, description = "The room's name", pattern = "^[a-z0-9_-]{1,32}$"), CursorQuery),
    responses(
        (status = 200, description = "A page of bans", body = Bans),
        (status = 400, description = "Bad name or cursor", body = ErrorBody),
        (status = 401, description = "Missing, bad or expired token", body = ErrorBody),
        (status = 403, description = "The role does not allow it", body = ErrorBody),
        (status = 404, description = "No such room", body = ErrorBody),
        (status = 503, description = "A dependency is down", body = ErrorBody),
    )
)]
pub async fn bans(
    State(rooms): State<Rooms>,
    AuthUser(user): AuthUser,
    Path(name): Path<String>,
    ApiQuery(q): ApiQuery<CursorQuery>,
) -> Result<Json<Bans>, ApiError> {
    let page = rooms.bans(user, name, q.cursor.unwrap_or_default()).await?;
    let next_cursor = page
        .has_more
        .then(|| page.bans.last().map(|b| b.username.clone()))
        .flatten();
    Ok(Json(Bans {
        bans: page
            .bans
            .into_iter()
            .map(|b| Ban {
                user: b.username,
                banned_by: b.banned_by,
                reason: b.reason,
                until: (b.until_ms != 0).then_some(b.until_ms),
                created_at: ms(b.created_at.as_ref()),
            })
            .collect(),
        next_cursor,
    }))
}

/// Mute a member, for a time or until lifted (admins and the owner): they
/// read, but cannot send, edit or delete in the room.
#[utoipa::path(
    post,
    path = "/api/rooms/{name}/mutes",
    tag = "rooms",
    security(("bearer" = [])),
    params(("name" = String, Path, description = "The room's name", pattern = "^[a-z0-9_-]{1,32}$")),
    request_body = TargetBody,
    responses(
        (status = 200, description = "Muted", body = Done),
        (status = 400, description = "Bad name, user, reason, duration or body", body = ErrorBody),
        (status = 401, description = "Missing, bad or expired token", body = ErrorBody),
        (status = 403, description = "The role does not allow it", body = ErrorBody),
        (status = 404, description = "No such room or user", body = ErrorBody),
        (status = 409, description = "Not a member", body = ErrorBody),
        (status = 413, description = "Body too large", body = ErrorBody),
        (status = 503, description = "A dependency is down", body = ErrorBody),
    )
)]
pub async fn mute(
    State(rooms): State<Rooms>,
    AuthUser(user): AuthUser,
    Path(name): Path<String>,
    ApiJson(body): ApiJson<TargetBody>,
) -> Result<Json<Done>, ApiError> {
    act(&rooms, user, name, with(ModerationAction::Mute, body)).await
}

/// Lift a mute (admins and the owner).
#[utoipa::path(
    delete,
    path = "/api/rooms/{name}/mutes/{user}",
    tag = "rooms",
    security(("bearer" = [])),
    params(
        ("name" = String, Path, description = "The room's name", pattern = "^[a-z0-9_-]{1,32}$"),
        ("user" = String, Path, description = "The muted member"),
    ),
    responses(
        (status = 200, description = "Lifted", body = Done),
        (status = 400, description = "Bad name or user", body = ErrorBody),
        (status = 401, description = "Missing, bad or expired token", body = ErrorBody),
        (status = 403, description = "The role does not allow it", body = ErrorBody),
        (status = 404, description = "No such room or user", body = ErrorBody),
        (status = 409, description = "Not a member", body = ErrorBody),
        (status = 503, description = "A dependency is down", body = ErrorBody),
    )
)]
pub async fn unmute(
    State(rooms): State<Rooms>,
    AuthUser(user): AuthUser,
    Path((name, target)): Path<(String, String)>,
) -> Result<Json<Done>, ApiError> {
    act(&rooms, user, name, on(ModerationAction::Unmute, target)).await
}

/// Make a member an admin, or an admin a member (the owner).
#[utoipa::path(
    put,
    path = "/api/rooms/{name}/members/{user}/role",
    tag = "rooms",
    security(("bearer" = [])),
    params(
        ("name" = String, Path, description = "The room's name", pattern = "^[a-z0-9_-]{1,32}$"),
        ("user" = String, Path, description = "The member"),
    ),
    request_body = RoleBody,
    responses(
        (status = 200, description = "Changed", body = Done),
        (status = 400, description = "Bad name, user, role or body", body = ErrorBody),
        (status = 401, description = "Missing, bad or expired token", body = ErrorBody),
        (status = 403, description = "Not the owner", body = ErrorBody),
        (status = 404, description = "No such room or user", body = ErrorBody),
        (status = 409, description = "Not a member", body = ErrorBody),
        (status = 413, description = "Body too large", body = ErrorBody),
        (status = 503, description = "A dependency is down", body = ErrorBody),
    )
)]
pub async fn set_role(
    State(rooms): State<Rooms>,
    AuthUser(user): AuthUser,
    Path((name, target)): Path<(String, String)>,
    ApiJson(body): ApiJson<RoleBody>,
) -> Result<Json<Done>, ApiError> {
    act(
        &rooms,
        user,
        name,
        Action {
            role: body.role,
            ..on(ModerationAction::SetRole, target)
        },
    )
    .await
}

/// Hand the room to another member (the owner, who becomes an admin).
#[utoipa::path(
    post,
    path = "/api/rooms/{name}/transfer",
    tag = "rooms",
    security(("bearer" = [])),
    params(("name" = String, Path, description = "The room's name", pattern = "^[a-z0-9_-]{1,32}$")),
    request_body = UserBody,
    responses(
        (status = 200, description = "Transferred", body = Done),
        (status = 400, description = "Bad name, user or body; the caller themself", body = ErrorBody),
        (status = 401, description = "Missing, bad or expired token", body = ErrorBody),
        (status = 403, description = "Not the owner", body = ErrorBody),
        (status = 404, description = "No such room or user", body = ErrorBody),
        (status = 409, description = "Not a member", body = ErrorBody),
        (status = 413, description = "Body too large", body = ErrorBody),
        (status = 503, description = "A dependency is down", body = ErrorBody),
    )
)]
pub async fn transfer(
    State(rooms): State<Rooms>,
    AuthUser(user): AuthUser,
    Path(name): Path<String>,
    ApiJson(body): ApiJson<UserBody>,
) -> Result<Json<Done>, ApiError> {
    act(
        &rooms,
        user,
        name,
        on(ModerationAction::Transfer, body.user),
    )
    .await
}

/// The room's moderation log, newest first (admins and the owner).
#[utoipa::path(
    get,
    path = "/api/rooms/{name}/moderation",
    tag = "rooms",
    security(("bearer" = [])),
    params(("name" = String, Path, description = "The room's name", pattern = "^[a-z0-9_-]{1,32}$"), LogQuery),
    responses(
        (status = 200, description = "A page of the log", body = ModerationLog),
        (status = 400, description = "Bad name, cursor or limit", body = ErrorBody),
        (status = 401, description = "Missing, bad or expired token", body = ErrorBody),
        (status = 403, description = "The role does not allow it", body = ErrorBody),
        (status = 404, description = "No such room", body = ErrorBody),
        (status = 503, description = "A dependency is down", body = ErrorBody),
    )
)]
pub async fn moderation_log(
    State(rooms): State<Rooms>,
    AuthUser(user): AuthUser,
    Path(name): Path<String>,
    ApiQuery(q): ApiQuery<LogQuery>,
) -> Result<Json<ModerationLog>, ApiError> {
    let before = match q.cursor.as_deref() {
        None => 0,
        Some(c) => c
            .parse::<i64>()
            .ok()
            .filter(|n| *n > 0)
            .ok_or_else(|| ApiError::bad_request("bad cursor"))?,
    };
    let page = rooms
        .moderation_log(user, name, before, page_limit(q.limit)?)
        .await?;
    let next_cursor = page
        .has_more
        .then(|| page.entries.last().map(|e| e.id.to_string()))
        .flatten();
    Ok(Json(ModerationLog {
        entries: page
            .entries
            .into_iter()
            .map(|e| LogEntry {
                at: ms(e.at.as_ref()),
                id: e.id,
                actor: e.actor,
                action: e.action,
                target: e.target,
                reason: e.reason,
            })
            .collect(),
        next_cursor,
    }))
}
