//! Invite links, in PostgreSQL: made, listed and revoked by those who may
//! invite; used by anyone holding the code. Only a code's SHA-256 is kept.

use chat_model::message::MemberAction;
use chrono::{DateTime, Utc};
use sqlx::Row;

use crate::{
    error::UserError,
    moderation_store::{actor_in, denied, log},
    permissions::{Action, allowed},
    secrets::{hash, random_hex},
    store::Store,
};

/// Links that still work, per room.
pub const MAX_LINKS_PER_ROOM: i64 = 20;
/// A code: 16 random bytes in hex.
pub const CODE_HEX: usize = 32;

pub struct LinkRow {
    pub id: i64,
    pub room: String,
    /// Only when just made.
    pub code: String,
    pub created_by: String,
    pub created_at: DateTime<Utc>,
    pub expires_at: Option<DateTime<Utc>>,
    pub max_uses: Option<i32>,
    pub uses: i32,
}

/// What a link is made with.
pub struct NewLink {
    pub expires_at: Option<DateTime<Utc>>,
    pub max_uses: Option<i32>,
}

/// A link still works: not expired, not used up.
const WORKS: &str = "(l.expires_at IS NULL OR l.expires_at > now())
                     AND (l.max_uses IS NULL OR l.uses < l.max_uses)";

pub fn check_code(code: &str) -> Result<(), UserError> {
    chat_model::ids::check_invite_code(code).map_err(|e| UserError::InvalidArgument(e.to_string()))
}

fn new_code() -> String {
    random_hex::<{ CODE_HEX / 2 }>()
}

fn link_from(row: &sqlx::postgres::PgRow, room: &str) -> LinkRow {
    LinkRow {
        id: row.get("id"),
        room: room.to_owned(),
        code: String::new(),
        created_by: row.get("created_by"),
        created_at: row.get("created_at"),
        expires_at: row.get("expires_at"),
        max_uses: row.get("max_uses"),
        uses: row.get("uses"),
    }
}

fn no_link() -> UserError {
    UserError::NotFound("no such invite link: it may have expired, been used up or revoked".into())
}

impl Store {
    pub async fn create_link(
        &self,
        room: &str,
        actor: &str,
        new: NewLink,
    ) -> Result<LinkRow, UserError> {
        let mut tx = self.pool().begin().await?;
        let (room_id, role) = actor_in(&mut tx, room, actor).await?;
        if !allowed(role, Action::Invite, None) {
            return Err(denied(role, "make invite links"));
        }
        sqlx::query(&format!(
            "DELETE FROM room_invite_links l WHERE l.room_id = $1 AND NOT ({WORKS})"
        ))
        .bind(room_id)
        .execute(&mut *tx)
        .await?;
        let working: i64 =
            sqlx::query_scalar("SELECT count(*) FROM room_invite_links WHERE room_id = $1")
                .bind(room_id)
                .fetch_one(&mut *tx)
                .await?;
        if working >= MAX_LINKS_PER_ROOM {
            return Err(UserError::FailedPrecondition(format!(
                "room {room} has {MAX_LINKS_PER_ROOM} working invite links: revoke one first"
            )));
        }
        let code = new_code();
        let row = sqlx::query(
            "INSERT INTO room_invite_links (room_id, code_hash, created_by, expires_at, max_uses)
             VALUES ($1, $2, $3, $4, $5)
             RETURNING id, created_by, created_at, expires_at, max_uses, uses",
        )
        .bind(room_id)
        .bind(hash(&code))
        .bind(actor)
        .bind(new.expires_at)
        .bind(new.max_uses)
        .fetch_one(&mut *tx)
        .await?;
        let link = LinkRow {
            code,
            ..link_from(&row, room)
        };
        let terms = format!(
            "link {}: {}, {}",
            link.id,
            link.expires_at.map_or("no expiry".into(), |t| format!(
                "expires {}",
                t.to_rfc3339()
            )),
            link.max_uses
                .map_or("any number of uses".into(), |n| format!("{n} uses")),
        );
        log(&mut tx, room_id, actor, "invite_link", "", &terms).await?;
        tx.commit().await?;
        Ok(link)
    }

    /// The room's links that still work, newest first.
    pub async fn links(&self, room: &str, actor: &str) -> Result<Vec<LinkRow>, UserError> {
        let mut tx = self.pool().begin().await?;
        let (room_id, role) = actor_in(&mut tx, room, actor).await?;
        if !allowed(role, Action::Invite, None) {
            return Err(denied(role, "see invite links"));
        }
        let rows = sqlx::query(&format!(
            "SELECT l.id, l.created_by, l.created_at, l.expires_at, l.max_uses, l.uses
             FROM room_invite_links l WHERE l.room_id = $1 AND {WORKS}
             ORDER BY l.id DESC"
        ))
        .bind(room_id)
        .fetch_all(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(rows.iter().map(|r| link_from(r, room)).collect())
    }

    pub async fn revoke_link(&self, room: &str, actor: &str, id: i64) -> Result<(), UserError> {
        let mut tx = self.pool().begin().await?;
        let (room_id, role) = actor_in(&mut tx, room, actor).await?;
        if !allowed(role, Action::Invite, None) {
            return Err(denied(role, "revoke invite links"));
        }
        let gone = sqlx::query("DELETE FROM room_invite_links WHERE id = $1 AND room_id = $2")
            .bind(id)
            .bind(room_id)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        if gone == 0 {
            return Err(UserError::NotFound(format!(
                "no invite link {id} in room {room}"
            )));
        }
        log(
            &mut tx,
            room_id,
            actor,
            "revoke_link",
            "",
            &format!("link {id}"),
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// The room a link lets into (a link never changes rooms).
    pub async fn link_room(&self, code: &str) -> Result<String, UserError> {
        sqlx::query_scalar(
            "SELECT r.name FROM room_invite_links l
             JOIN rooms r ON r.id = l.room_id AND r.deleted_at IS NULL
             WHERE l.code_hash = $1",
        )
        .bind(hash(code))
        .fetch_optional(self.pool())
        .await?
        .ok_or_else(no_link)
    }

    /// `user` joins the room of the link `code`, using it up by one (a
    /// member already uses nothing). The link's row is locked, so
    /// concurrent uses never pass its maximum. `from_seq` is the room's
    /// last seq, where the member's history starts under `since_join`.
    /// Returns the room's name.
    pub async fn use_link(
        &self,
        code: &str,
        user: &str,
        from_seq: i64,
    ) -> Result<String, UserError> {
        let mut tx = self.pool().begin().await?;
        let link = sqlx::query(&format!(
            "SELECT l.id, l.room_id, r.name, {WORKS} AS works FROM room_invite_links l
             JOIN rooms r ON r.id = l.room_id AND r.deleted_at IS NULL
             WHERE l.code_hash = $1 FOR UPDATE OF l"
        ))
        .bind(hash(code))
        .fetch_optional(&mut *tx)
        .await?
        .filter(|l| l.get::<bool, _>("works"))
        .ok_or_else(no_link)?;
        let (link_id, room_id, room): (i64, i64, String) =
            (link.get("id"), link.get("room_id"), link.get("name"));
        let who = sqlx::query(
            "SELECT u.id,
               EXISTS (SELECT 1 FROM memberships m WHERE m.room_id = $1 AND m.user_id = u.id) AS member,
               EXISTS (SELECT 1 FROM room_bans b WHERE b.room_id = $1 AND b.user_id = u.id
                       AND (b.until IS NULL OR b.until > now())) AS banned
             FROM users u WHERE u.username = $2 AND u.deleted_at IS NULL",
        )
        .bind(room_id)
        .bind(user)
        .fetch_optional(&mut *tx)
        .await?
        .ok_or_else(|| UserError::NotFound(format!("user {user} not found")))?;
        if who.get::<bool, _>("member") {
            return Ok(room);
        }
        if who.get::<bool, _>("banned") {
            return Err(UserError::PermissionDenied(format!(
                "you are banned from room {room}"
            )));
        }
        let user_id: i64 = who.get("id");
        sqlx::query("DELETE FROM room_invites WHERE room_id = $1 AND user_id = $2")
            .bind(room_id)
            .bind(user_id)
            .execute(&mut *tx)
            .await?;
        sqlx::query(
            "INSERT INTO memberships (room_id, user_id, role, history_from)
             VALUES ($1, $2, 'member', $3)",
        )
        .bind(room_id)
        .bind(user_id)
        .bind(from_seq)
        .execute(&mut *tx)
        .await?;
        self.record_event(&mut tx, &room, user, MemberAction::Join, user, None)
            .await?;
        sqlx::query("UPDATE room_invite_links SET uses = uses + 1 WHERE id = $1")
            .bind(link_id)
            .execute(&mut *tx)
            .await?;
        log(
            &mut tx,
            room_id,
            user,
            "join_by_link",
            "",
            &format!("link {link_id}"),
        )
        .await?;
        tx.commit().await?;
        Ok(room)
    }
}
