//! Room administration in PostgreSQL: settings, kicks, bans, mutes,
//! roles, ownership, deletion, and the moderation log (invites and the
//! directory: `invite_store.rs`). Every change
//! locks its room's row first (`FOR UPDATE`), so two moderators' actions on
//! one room are decided one after the other, and checks the actor's role
//! against [`permissions`] in the same transaction.

use chat_model::message::MemberAction;
use chrono::{DateTime, TimeZone, Utc};
use sqlx::Row;

use crate::{
    error::UserError,
    permissions::{Action, Role, allowed},
    store::{HISTORY_FROM, ROOM_COLUMNS, RoomRow, Store, room_from},
};

/// Bans one room may hold (expired ones count until lifted or replaced).
pub const MAX_BANS_PER_ROOM: i64 = 10_000;
/// Moderation-log entries kept per room; older ones are trimmed.
pub const LOG_KEPT_PER_ROOM: i64 = 10_000;
/// The largest page of bans, log entries or directory rooms.
pub const MAX_PAGE: i64 = 100;

/// A mute "until lifted" is stored as the end of year 9999.
fn for_good() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(9999, 12, 31, 23, 59, 59).unwrap()
}

#[derive(Clone, Copy, Debug)]
pub enum Moderation {
    Kick,
    Ban(Option<DateTime<Utc>>),
    Unban,
    Mute(Option<DateTime<Utc>>),
    Unmute,
    SetRole(Role),
    Transfer,
    DeleteRoom,
}

impl Moderation {
    fn label(self) -> String {
        match self {
            Self::Kick => "kick".into(),
            Self::Ban(_) => "ban".into(),
            Self::Unban => "unban".into(),
            Self::Mute(_) => "mute".into(),
            Self::Unmute => "unmute".into(),
            Self::SetRole(role) => format!("set_role:{role}"),
            Self::Transfer => "transfer".into(),
            Self::DeleteRoom => "delete_room".into(),
        }
    }

    fn action(self) -> Action {
        match self {
            Self::SetRole(_) => Action::SetRole,
            Self::Transfer => Action::Transfer,
            Self::DeleteRoom => Action::DeleteRoom,
            _ => Action::Moderate,
        }
    }
}

pub struct BanRow {
    pub username: String,
    pub banned_by: String,
    pub reason: String,
    pub until: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
}

pub struct LogRow {
    pub id: i64,
    pub actor: String,
    pub action: String,
    pub target: String,
    pub reason: String,
    pub at: DateTime<Utc>,
}

pub(crate) use crate::store::Tx;

pub(crate) fn not_found(room: &str) -> UserError {
    UserError::NotFound(format!("room {room} not found"))
}

/// Locks `room` and reads `actor`'s role in it. A room that does not exist,
/// and a private one the actor is not in, are both NotFound; a public room
/// the actor is not in is PermissionDenied.
pub(crate) async fn actor_in(
    tx: &mut Tx,
    room: &str,
    actor: &str,
) -> Result<(i64, Role), UserError> {
    let row = sqlx::query(
        "SELECT r.id, r.visibility, m.role FROM rooms r
         LEFT JOIN memberships m ON m.room_id = r.id
             AND m.user_id = (SELECT id FROM users WHERE username = $2 AND deleted_at IS NULL)
         WHERE r.name = $1 AND r.deleted_at IS NULL
         FOR UPDATE OF r",
    )
    .bind(room)
    .bind(actor)
    .fetch_optional(&mut **tx)
    .await?
    .ok_or_else(|| not_found(room))?;
    let role: Option<String> = row.get("role");
    match role.as_deref().and_then(Role::parse) {
        Some(role) => Ok((row.get("id"), role)),
        None if row.get::<String, _>("visibility") == "private" => Err(not_found(room)),
        None => Err(UserError::PermissionDenied(format!(
            "not a member of room {room}"
        ))),
    }
}

/// `user`'s id and role in room `room_id` (None: not a member).
pub(crate) async fn target_in(
    tx: &mut Tx,
    room_id: i64,
    user: &str,
) -> Result<(i64, Option<Role>), UserError> {
    let row = sqlx::query(
        "SELECT u.id, m.role FROM users u
         LEFT JOIN memberships m ON m.room_id = $1 AND m.user_id = u.id
         WHERE u.username = $2 AND u.deleted_at IS NULL",
    )
    .bind(room_id)
    .bind(user)
    .fetch_optional(&mut **tx)
    .await?
    .ok_or_else(|| UserError::NotFound(format!("user {user} not found")))?;
    let role: Option<String> = row.get("role");
    Ok((row.get("id"), role.as_deref().and_then(Role::parse)))
}

pub(crate) fn denied(actor: Role, what: &str) -> UserError {
    UserError::PermissionDenied(format!("a room's {actor} may not {what}"))
}

/// Records an action in the room's log and trims the log to its bound.
pub(crate) async fn log(
    tx: &mut Tx,
    room_id: i64,
    actor: &str,
    action: &str,
    target: &str,
    reason: &str,
) -> Result<(), UserError> {
    sqlx::query(
        "INSERT INTO room_audit (room_id, actor, action, target, reason) VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(room_id)
    .bind(actor)
    .bind(action)
    .bind(target)
    .bind(reason)
    .execute(&mut **tx)
    .await?;
    sqlx::query(
        "DELETE FROM room_audit WHERE room_id = $1 AND id <= (
             SELECT id FROM room_audit WHERE room_id = $1 ORDER BY id DESC OFFSET $2 LIMIT 1)",
    )
    .bind(room_id)
    .bind(LOG_KEPT_PER_ROOM)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// The room settings an update changes (None: left as it is).
#[derive(Default)]
pub struct RoomSettings<'a> {
    pub display_name: Option<&'a str>,
    pub topic: Option<&'a str>,
    pub visibility: Option<&'a str>,
    pub slow_mode_secs: Option<i32>,
    pub history_visibility: Option<&'a str>,
}

impl Store {
    /// Changes a room's topic and visibility (admins and the owner).
    pub async fn update_room(
        &self,
        room: &str,
        actor: &str,
        settings: &RoomSettings<'_>,
    ) -> Result<RoomRow, UserError> {
        let mut tx = self.pool().begin().await?;
        let (room_id, role) = actor_in(&mut tx, room, actor).await?;
        if !allowed(role, Action::ChangeSettings, None) {
            return Err(denied(role, "change its settings"));
        }
        sqlx::query(
            "UPDATE rooms SET topic = COALESCE($2, topic), visibility = COALESCE($3, visibility),
                 slow_mode_secs = COALESCE($4, slow_mode_secs),
                 display_name = COALESCE($5, display_name),
                 history_visibility = COALESCE($6, history_visibility)
             WHERE id = $1",
        )
        .bind(room_id)
        .bind(settings.topic)
        .bind(settings.visibility)
        .bind(settings.slow_mode_secs)
        .bind(settings.display_name)
        .bind(settings.history_visibility)
        .execute(&mut *tx)
        .await?;
        let what = [
            settings.display_name.map(|d| format!("display name: {d}")),
            settings.topic.map(|t| format!("topic: {t}")),
            settings.visibility.map(|v| format!("visibility: {v}")),
            settings.slow_mode_secs.map(|s| format!("slow mode: {s} s")),
            settings
                .history_visibility
                .map(|h| format!("history visibility: {h}")),
        ]
        .into_iter()
        .flatten()
        .collect::<Vec<_>>()
        .join("; ");
        log(&mut tx, room_id, actor, "settings", "", &what).await?;
        tx.commit().await?;
        let row = sqlx::query(&format!(
            "SELECT {ROOM_COLUMNS}, {HISTORY_FROM}, m.role FROM rooms r
             JOIN users u ON u.id = r.created_by
             LEFT JOIN memberships m ON m.room_id = r.id
                 AND m.user_id = (SELECT id FROM users WHERE username = $2)
             WHERE r.id = $1"
        ))
        .bind(room_id)
        .bind(actor)
        .fetch_one(self.pool())
        .await?;
        Ok(room_from(&row))
    }

    /// Takes a moderation action; see [`Moderation`] and the permission
    /// table. Every action is logged with its reason.
    pub async fn moderate(
        &self,
        room: &str,
        actor: &str,
        target: &str,
        action: Moderation,
        reason: &str,
    ) -> Result<(), UserError> {
        let mut tx = self.pool().begin().await?;
        let (room_id, role) = actor_in(&mut tx, room, actor).await?;
        if let Moderation::DeleteRoom = action {
            if !allowed(role, Action::DeleteRoom, None) {
                return Err(denied(role, "delete it"));
            }
            sqlx::query("UPDATE rooms SET deleted_at = now() WHERE id = $1")
                .bind(room_id)
                .execute(&mut *tx)
                .await?;
            for table in ["memberships", "room_invites", "room_bans"] {
                sqlx::query(&format!("DELETE FROM {table} WHERE room_id = $1"))
                    .bind(room_id)
                    .execute(&mut *tx)
                    .await?;
            }
            log(&mut tx, room_id, actor, "delete_room", "", reason).await?;
            tx.commit().await?;
            return Ok(());
        }
        if target == actor {
            return Err(UserError::InvalidArgument(
                "that action cannot target yourself".into(),
            ));
        }
        let (target_id, target_role) = target_in(&mut tx, room_id, target).await?;
        if !allowed(role, action.action(), target_role) {
            return Err(denied(
                role,
                &format!(
                    "{} a room's {}",
                    action.label(),
                    target_role.map_or("non-member", Role::as_str)
                ),
            ));
        }
        let not_member =
            || UserError::FailedPrecondition(format!("{target} is not a member of room {room}"));
        let membership = |sql: &'static str| sqlx::query(sql).bind(room_id).bind(target_id);
        match action {
            Moderation::Kick => {
                target_role.ok_or_else(not_member)?;
                membership("DELETE FROM memberships WHERE room_id = $1 AND user_id = $2")
                    .execute(&mut *tx)
                    .await?;
            }
            Moderation::Ban(until) => {
                let bans: i64 = sqlx::query_scalar(
                    "SELECT count(*) FROM room_bans WHERE room_id = $1 AND user_id <> $2",
                )
                .bind(room_id)
                .bind(target_id)
                .fetch_one(&mut *tx)
                .await?;
                if bans >= MAX_BANS_PER_ROOM {
                    return Err(UserError::FailedPrecondition(format!(
                        "room {room} has {MAX_BANS_PER_ROOM} bans: lift some first"
                    )));
                }
                membership("DELETE FROM memberships WHERE room_id = $1 AND user_id = $2")
                    .execute(&mut *tx)
                    .await?;
                membership("DELETE FROM room_invites WHERE room_id = $1 AND user_id = $2")
                    .execute(&mut *tx)
                    .await?;
                sqlx::query(
                    "INSERT INTO room_bans (room_id, user_id, banned_by, reason, until)
                     VALUES ($1, $2, $3, $4, $5)
                     ON CONFLICT (room_id, user_id) DO UPDATE
                     SET banned_by = $3, reason = $4, until = $5, created_at = now()",
                )
                .bind(room_id)
                .bind(target_id)
                .bind(actor)
                .bind(reason)
                .bind(until)
                .execute(&mut *tx)
                .await?;
            }
            Moderation::Unban => {
                let lifted =
                    membership("DELETE FROM room_bans WHERE room_id = $1 AND user_id = $2")
                        .execute(&mut *tx)
                        .await?;
                if lifted.rows_affected() == 0 {
                    return Err(UserError::NotFound(format!(
                        "{target} is not banned from room {room}"
                    )));
                }
            }
            Moderation::Mute(until) => {
                target_role.ok_or_else(not_member)?;
                sqlx::query(
                    "UPDATE memberships SET muted_until = $3 WHERE room_id = $1 AND user_id = $2",
                )
                .bind(room_id)
                .bind(target_id)
                .bind(until.unwrap_or_else(for_good))
                .execute(&mut *tx)
                .await?;
            }
            Moderation::Unmute => {
                target_role.ok_or_else(not_member)?;
                membership(
                    "UPDATE memberships SET muted_until = NULL WHERE room_id = $1 AND user_id = $2",
                )
                .execute(&mut *tx)
                .await?;
            }
            Moderation::SetRole(new) => {
                target_role.ok_or_else(not_member)?;
                if new == Role::Owner {
                    return Err(UserError::InvalidArgument(
                        "role must be admin or member (transfer hands over ownership)".into(),
                    ));
                }
                sqlx::query("UPDATE memberships SET role = $3 WHERE room_id = $1 AND user_id = $2")
                    .bind(room_id)
                    .bind(target_id)
                    .bind(new.as_str())
                    .execute(&mut *tx)
                    .await?;
            }
            Moderation::Transfer => {
                target_role.ok_or_else(not_member)?;
                // Demote first: the one-owner index holds at every statement.
                sqlx::query(
                    "UPDATE memberships SET role = 'admin' WHERE room_id = $1 AND role = 'owner'",
                )
                .bind(room_id)
                .execute(&mut *tx)
                .await?;
                membership("UPDATE memberships SET role = 'owner', muted_until = NULL WHERE room_id = $1 AND user_id = $2")
                    .execute(&mut *tx)
                    .await?;
            }
            Moderation::DeleteRoom => unreachable!("handled above"),
        }
        log(&mut tx, room_id, actor, &action.label(), target, reason).await?;
        let event = match action {
            Moderation::Kick => Some((MemberAction::Kick, None)),
            Moderation::Ban(_) => Some((MemberAction::Ban, None)),
            Moderation::Unban => Some((MemberAction::Unban, None)),
            Moderation::SetRole(new) => Some((MemberAction::Role, Some(new.as_str()))),
            Moderation::Transfer => Some((MemberAction::Role, Some(Role::Owner.as_str()))),
            Moderation::Mute(_) | Moderation::Unmute | Moderation::DeleteRoom => None,
        };
        if let Some((what, role)) = event {
            self.record_event(&mut tx, room, actor, what, target, role)
                .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// The room's bans by username, after `after` (admins and the owner).
    pub async fn bans(
        &self,
        room: &str,
        actor: &str,
        after: &str,
    ) -> Result<(Vec<BanRow>, bool), UserError> {
        let mut tx = self.pool().begin().await?;
        let (room_id, role) = actor_in(&mut tx, room, actor).await?;
        if !allowed(role, Action::ReadModeration, None) {
            return Err(denied(role, "read its bans"));
        }
        let rows = sqlx::query(
            "SELECT u.username, b.banned_by, b.reason, b.until, b.created_at FROM room_bans b
             JOIN users u ON u.id = b.user_id
             WHERE b.room_id = $1 AND u.username > $2 ORDER BY u.username LIMIT $3",
        )
        .bind(room_id)
        .bind(after)
        .bind(MAX_PAGE + 1)
        .fetch_all(&mut *tx)
        .await?;
        tx.commit().await?;
        let more = rows.len() as i64 > MAX_PAGE;
        Ok((
            rows.iter()
                .take(MAX_PAGE as usize)
                .map(|r| BanRow {
                    username: r.get("username"),
                    banned_by: r.get("banned_by"),
                    reason: r.get("reason"),
                    until: r.get("until"),
                    created_at: r.get("created_at"),
                })
                .collect(),
            more,
        ))
    }

    /// The room's moderation log, newest first, before entry `before` (0:
    /// from the newest), for admins and the owner.
    pub async fn moderation_log(
        &self,
        room: &str,
        actor: &str,
        before: i64,
        limit: i64,
    ) -> Result<(Vec<LogRow>, bool), UserError> {
        let mut tx = self.pool().begin().await?;
        let (room_id, role) = actor_in(&mut tx, room, actor).await?;
        if !allowed(role, Action::ReadModeration, None) {
            return Err(denied(role, "read its moderation log"));
        }
        let rows = sqlx::query(
            "SELECT id, actor, action, target, reason, at FROM room_audit
             WHERE room_id = $1 AND ($2 = 0 OR id < $2) ORDER BY id DESC LIMIT $3",
        )
        .bind(room_id)
        .bind(before)
        .bind(limit + 1)
        .fetch_all(&mut *tx)
        .await?;
        tx.commit().await?;
        let more = rows.len() as i64 > limit;
        Ok((
            rows.iter()
                .take(limit as usize)
                .map(|r| LogRow {
                    id: r.get("id"),
                    actor: r.get("actor"),
                    action: r.get("action"),
                    target: r.get("target"),
                    reason: r.get("reason"),
                    at: r.get("at"),
                })
                .collect(),
            more,
        ))
    }
}
