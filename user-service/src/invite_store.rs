//! Getting into rooms, in PostgreSQL: pending invites (bounded per room and
//! per user) and the directory of public rooms.

use chrono::{DateTime, Utc};
use sqlx::Row;

use crate::{
    block_store::blocked,
    error::UserError,
    moderation_store::{actor_in, denied, log, target_in},
    permissions::{Action, allowed},
    store::{ROOM_COLUMNS, RoomRow, Store, room_from},
};

/// Pending invites one room may have out at once.
pub const MAX_INVITES_PER_ROOM: i64 = 100;
/// Pending invites one user may hold at once.
pub const MAX_INVITES_PER_USER: i64 = 50;

pub struct InviteRow {
    pub room: String,
    pub invited_by: String,
    pub created_at: DateTime<Utc>,
    pub topic: String,
}

impl Store {
    /// Invites `user` (admins and the owner). Inviting twice is one invite.
    pub async fn invite(
        &self,
        room: &str,
        actor: &str,
        user: &str,
    ) -> Result<InviteRow, UserError> {
        let mut tx = self.pool().begin().await?;
        let (room_id, role) = actor_in(&mut tx, room, actor).await?;
        if !allowed(role, Action::Invite, None) {
            return Err(denied(role, "invite"));
        }
        let (user_id, member) = target_in(&mut tx, room_id, user).await?;
        if blocked(&mut tx, user_id, actor).await? {
            return Err(UserError::PermissionDenied(format!(
                "you cannot invite {user}"
            )));
        }
        if member.is_some() {
            return Err(UserError::AlreadyExists(format!(
                "{user} is already a member of room {room}"
            )));
        }
        let row = sqlx::query(
            "SELECT
               EXISTS (SELECT 1 FROM room_bans WHERE room_id = $1 AND user_id = $2
                       AND (until IS NULL OR until > now())) AS banned,
               EXISTS (SELECT 1 FROM room_invites WHERE room_id = $1 AND user_id = $2) AS invited,
               (SELECT count(*) FROM room_invites WHERE room_id = $1) AS for_room,
               (SELECT count(*) FROM room_invites WHERE user_id = $2) AS for_user",
        )
        .bind(room_id)
        .bind(user_id)
        .fetch_one(&mut *tx)
        .await?;
        if row.get::<bool, _>("banned") {
            return Err(UserError::FailedPrecondition(format!(
                "{user} is banned from room {room}"
            )));
        }
        if !row.get::<bool, _>("invited") {
            if row.get::<i64, _>("for_room") >= MAX_INVITES_PER_ROOM {
                return Err(UserError::FailedPrecondition(format!(
                    "room {room} has {MAX_INVITES_PER_ROOM} pending invites"
                )));
            }
            if row.get::<i64, _>("for_user") >= MAX_INVITES_PER_USER {
                return Err(UserError::FailedPrecondition(format!(
                    "{user} has {MAX_INVITES_PER_USER} pending invites"
                )));
            }
            sqlx::query(
                "INSERT INTO room_invites (room_id, user_id, invited_by) VALUES ($1, $2, $3)",
            )
            .bind(room_id)
            .bind(user_id)
            .bind(actor)
            .execute(&mut *tx)
            .await?;
            log(&mut tx, room_id, actor, "invite", user, "").await?;
        }
        tx.commit().await?;
        self.invites(user)
            .await?
            .into_iter()
            .find(|i| i.room == room)
            .ok_or_else(|| UserError::Internal("an invite vanished".into()))
    }

    /// Declines (drops) `user`'s invite to `room`; NotFound when there is none.
    pub async fn decline_invite(&self, room: &str, user: &str) -> Result<(), UserError> {
        let dropped = sqlx::query(
            "DELETE FROM room_invites i USING rooms r, users u
             WHERE i.room_id = r.id AND i.user_id = u.id AND r.name = $1 AND u.username = $2",
        )
        .bind(room)
        .bind(user)
        .execute(self.pool())
        .await?;
        if dropped.rows_affected() == 0 {
            return Err(UserError::NotFound(format!("no invite to room {room}")));
        }
        Ok(())
    }

    pub async fn has_invite(&self, room: &str, user: &str) -> Result<bool, UserError> {
        Ok(sqlx::query_scalar(
            "SELECT EXISTS (SELECT 1 FROM room_invites i
                JOIN rooms r ON r.id = i.room_id AND r.deleted_at IS NULL
                JOIN users u ON u.id = i.user_id
                WHERE r.name = $1 AND u.username = $2)",
        )
        .bind(room)
        .bind(user)
        .fetch_one(self.pool())
        .await?)
    }

    /// `user`'s pending invites, newest first (at most MAX_INVITES_PER_USER).
    pub async fn invites(&self, user: &str) -> Result<Vec<InviteRow>, UserError> {
        let rows = sqlx::query(
            "SELECT r.name, r.topic, i.invited_by, i.created_at FROM room_invites i
             JOIN rooms r ON r.id = i.room_id AND r.deleted_at IS NULL
             JOIN users u ON u.id = i.user_id AND u.username = $1
             ORDER BY i.created_at DESC, r.name",
        )
        .bind(user)
        .fetch_all(self.pool())
        .await?;
        Ok(rows
            .iter()
            .map(|r| InviteRow {
                room: r.get("name"),
                topic: r.get("topic"),
                invited_by: r.get("invited_by"),
                created_at: r.get("created_at"),
            })
            .collect())
    }

    /// Public rooms whose name starts with `prefix`, after `after`, by name,
    /// with their member counts; and whether more follow.
    pub async fn public_rooms(
        &self,
        prefix: &str,
        after: &str,
        limit: i64,
    ) -> Result<(Vec<(RoomRow, i64)>, bool), UserError> {
        // Names are [a-z0-9_-]: only `_` needs escaping in a LIKE pattern.
        let pattern = format!("{}%", prefix.replace('_', "\\_"));
        let rows = sqlx::query(&format!(
            "SELECT {ROOM_COLUMNS}, 0::bigint AS history_from, NULL::text AS role,
                    (SELECT count(*) FROM memberships m WHERE m.room_id = r.id) AS members
             FROM rooms r JOIN users u ON u.id = r.created_by
             WHERE r.visibility = 'public' AND r.deleted_at IS NULL
               AND r.name LIKE $1 AND r.name > $2
             ORDER BY r.name LIMIT $3"
        ))
        .bind(pattern)
        .bind(after)
        .bind(limit + 1)
        .fetch_all(self.pool())
        .await?;
        let more = rows.len() as i64 > limit;
        Ok((
            rows.iter()
                .take(limit as usize)
                .map(|r| (room_from(r), r.get("members")))
                .collect(),
            more,
        ))
    }
}
