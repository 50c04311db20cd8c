//! PostgreSQL changes to an account as a whole: its password, its profile,
//! and its deletion. Each runs in one transaction with the session
//! revocations it implies, and returns the revoked session ids for the
//! caller to announce.

use chat_model::message::MemberAction;
use sqlx::Row;

use crate::{
    error::UserError,
    session_store::{Revoked, SessionStore},
    store::{Store, UserRow},
};

/// What deleting an account took away.
pub struct Deleted {
    /// The rooms the account was a member of.
    pub rooms: Vec<String>,
    pub revoked: Revoked,
}

impl Store {
    /// Sets `username`'s password hash and revokes its sessions but `keep`.
    pub async fn set_password(
        &self,
        username: &str,
        hash: &str,
        keep: Option<&str>,
        reason: &str,
        recent_secs: i64,
    ) -> Result<Revoked, UserError> {
        let mut tx = self.pool().begin().await?;
        let user_id: i64 = sqlx::query_scalar(
            "UPDATE users SET password_hash = $2 WHERE username = $1 AND deleted_at IS NULL
             RETURNING id",
        )
        .bind(username)
        .bind(hash)
        .fetch_optional(&mut *tx)
        .await?
        .ok_or_else(|| UserError::NotFound(format!("user {username} not found")))?;
        let revoked =
            SessionStore::revoke_all_in(&mut tx, user_id, keep, reason, recent_secs).await?;
        tx.commit().await?;
        Ok(revoked)
    }

    /// Revokes every session of `username` but `keep`.
    pub async fn revoke_all(
        &self,
        username: &str,
        keep: Option<&str>,
        recent_secs: i64,
    ) -> Result<Revoked, UserError> {
        let mut tx = self.pool().begin().await?;
        let user_id: i64 =
            sqlx::query_scalar("SELECT id FROM users WHERE username = $1 AND deleted_at IS NULL")
                .bind(username)
                .fetch_optional(&mut *tx)
                .await?
                .ok_or_else(|| UserError::NotFound(format!("user {username} not found")))?;
        let revoked = SessionStore::revoke_all_in(
            &mut tx,
            user_id,
            keep,
            "signed out everywhere",
            recent_secs,
        )
        .await?;
        tx.commit().await?;
        Ok(revoked)
    }

    /// Deletes `username`'s account: revokes its sessions, drops its
    /// memberships (an owned room passes to its longest-standing admin or
    /// member, or is deleted when nobody else is in it),
    /// erases its profile and password, and keeps the row so that the
    /// username stays retired.
    pub async fn delete_account(
        &self,
        username: &str,
        recent_secs: i64,
    ) -> Result<Deleted, UserError> {
        let mut tx = self.pool().begin().await?;
        let user_id: i64 = sqlx::query_scalar(
            "SELECT id FROM users WHERE username = $1 AND deleted_at IS NULL FOR UPDATE",
        )
        .bind(username)
        .fetch_optional(&mut *tx)
        .await?
        .ok_or_else(|| UserError::NotFound(format!("user {username} not found")))?;
        // Rooms it owns get a new owner: the admin who joined first, else
        // the member who did (demoted first: a room has one owner at a
        // time). A room it was alone in is deleted, its name retired.
        let owned: Vec<i64> = sqlx::query_scalar(
            "UPDATE memberships SET role = 'member' WHERE user_id = $1 AND role = 'owner'
             RETURNING room_id",
        )
        .bind(user_id)
        .fetch_all(&mut *tx)
        .await?;
        sqlx::query(
            "UPDATE memberships m SET role = 'owner'
             FROM (SELECT DISTINCT ON (o.room_id) o.room_id, o.user_id
                   FROM memberships o
                   WHERE o.room_id = ANY($2) AND o.user_id <> $1
                   ORDER BY o.room_id, (o.role = 'admin') DESC, o.joined_at, o.user_id) heir
             WHERE m.room_id = heir.room_id AND m.user_id = heir.user_id",
        )
        .bind(user_id)
        .bind(&owned)
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "UPDATE rooms r SET deleted_at = now() WHERE r.id = ANY($2)
             AND NOT EXISTS (SELECT 1 FROM memberships o WHERE o.room_id = r.id AND o.user_id <> $1)",
        )
        .bind(user_id)
        .bind(&owned)
        .execute(&mut *tx)
        .await?;
        let rooms: Vec<String> = sqlx::query(
            "DELETE FROM memberships m USING rooms r
             WHERE m.user_id = $1 AND r.id = m.room_id RETURNING r.name",
        )
        .bind(user_id)
        .fetch_all(&mut *tx)
        .await?
        .iter()
        .map(|r| r.get("name"))
        .collect();
        for room in &rooms {
            self.record_event(&mut tx, room, username, MemberAction::Leave, username, None)
                .await?;
        }
        let revoked =
            SessionStore::revoke_all_in(&mut tx, user_id, None, "account deleted", recent_secs)
                .await?;
        sqlx::query(
            "UPDATE users SET deleted_at = now(), password_hash = '', display_name = ''
             WHERE id = $1",
        )
        .bind(user_id)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(Deleted { rooms, revoked })
    }

    /// Sets `username`'s display name.
    pub async fn update_profile(
        &self,
        username: &str,
        display_name: &str,
    ) -> Result<UserRow, UserError> {
        let row = sqlx::query(
            "UPDATE users SET display_name = $2 WHERE username = $1 AND deleted_at IS NULL
             RETURNING username, display_name, created_at",
        )
        .bind(username)
        .bind(display_name)
        .fetch_optional(self.pool())
        .await?
        .ok_or_else(|| UserError::NotFound(format!("user {username} not found")))?;
        Ok(UserRow {
            username: row.get("username"),
            display_name: row.get("display_name"),
            created_at: row.get("created_at"),
        })
    }
}
