//! PostgreSQL queries for sessions. Each change that revokes returns the
//! ids it revoked, for the caller to announce (`sessions.rs`).

use chrono::{DateTime, Utc};
use sqlx::{PgPool, Row};

use crate::error::UserError;

/// How many superseded refresh-token hashes a session keeps, to recognise
/// one presented again. Older ones are only invalid.
pub const RETIRED_HASHES: i32 = 16;
/// Revoked and expired sessions are kept this long (for the owner's
/// "signed out" answers), then purged at the user's next login.
const KEEP_DEAD_DAYS: i32 = 7;

#[derive(Debug, Clone)]
pub struct SessionRow {
    pub id: String,
    pub device: String,
    pub client_addr: String,
    pub created_at: DateTime<Utc>,
    pub last_seen_at: DateTime<Utc>,
}

/// A session to create.
pub struct NewSession<'a> {
    pub id: &'a str,
    pub username: &'a str,
    pub device: &'a str,
    pub client_addr: &'a str,
    pub refresh_hash: &'a [u8],
    pub refresh_expires_at: DateTime<Utc>,
    /// Live sessions a user may hold; the least recently seen go beyond it.
    pub max_sessions: i64,
}

/// What a presented refresh token turned out to be.
pub enum Refreshed {
    /// The current token: rotated; the session's user.
    Rotated { username: String },
    /// A superseded token: the session is now revoked.
    Reused,
    /// The session is revoked, expired or its account deleted.
    Dead,
    /// No such session, or a secret it never had.
    Unknown,
}

/// What a "revoke all" did.
#[derive(Debug, Default)]
pub struct Revoked {
    /// Revoked by this call.
    pub now: Vec<String>,
    /// To announce: those, and the ones revoked within the last token
    /// lifetime (a repeated call announces them again, in case the first
    /// announcement was lost).
    pub announce: Vec<String>,
}

#[derive(Clone)]
pub struct SessionStore {
    pool: PgPool,
}

impl SessionStore {
    pub fn new(pool: PgPool) -> Self {
        Self { pool }
    }

    /// Creates a session; returns the sessions revoked to stay within the
    /// per-user cap.
    pub async fn create(&self, new: NewSession<'_>) -> Result<Vec<String>, UserError> {
        let mut tx = self.pool.begin().await?;
        let user_id: i64 = sqlx::query_scalar(
            "SELECT id FROM users WHERE username = $1 AND deleted_at IS NULL FOR UPDATE",
        )
        .bind(new.username)
        .fetch_optional(&mut *tx)
        .await?
        .ok_or(UserError::BadCredentials)?;
        sqlx::query(
            "DELETE FROM sessions WHERE user_id = $1
             AND (revoked_at < now() - make_interval(days => $2)
                  OR refresh_expires_at < now() - make_interval(days => $2))",
        )
        .bind(user_id)
        .bind(KEEP_DEAD_DAYS)
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "INSERT INTO sessions (id, user_id, device, client_addr, refresh_hash, refresh_expires_at)
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(new.id)
        .bind(user_id)
        .bind(new.device)
        .bind(new.client_addr)
        .bind(new.refresh_hash)
        .bind(new.refresh_expires_at)
        .execute(&mut *tx)
        .await?;
        let evicted: Vec<String> = sqlx::query_scalar(
            "UPDATE sessions SET revoked_at = now(), revoked_reason = 'too many sessions'
             WHERE id IN (
                 SELECT id FROM sessions
                 WHERE user_id = $1 AND revoked_at IS NULL AND refresh_expires_at > now()
                 ORDER BY last_seen_at DESC, created_at DESC OFFSET $2)
             RETURNING id",
        )
        .bind(user_id)
        .bind(new.max_sessions)
        .fetch_all(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(evicted)
    }

    /// Rotates session `id`'s refresh token if `presented` is its current
    /// one; revokes the session if `presented` is a superseded one.
    pub async fn refresh(
        &self,
        id: &str,
        presented: &[u8],
        next: &[u8],
        expires_at: DateTime<Utc>,
        client_addr: &str,
    ) -> Result<Refreshed, UserError> {
        let mut tx = self.pool.begin().await?;
        // Row lock: two refreshes with one token cannot both rotate it; the
        // second finds it superseded, which is what reuse looks like.
        let row = sqlx::query(
            "SELECT s.refresh_hash, $2 = ANY(s.retired_hashes) AS retired,
                    s.revoked_at IS NOT NULL OR s.refresh_expires_at <= now()
                        OR u.deleted_at IS NOT NULL AS dead,
                    u.username
             FROM sessions s JOIN users u ON u.id = s.user_id
             WHERE s.id = $1 FOR UPDATE OF s",
        )
        .bind(id)
        .bind(presented)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(row) = row else {
            return Ok(Refreshed::Unknown);
        };
        let current: Vec<u8> = row.get("refresh_hash");
        let retired: bool = row.get("retired");
        let dead: bool = row.get("dead");
        let is_current = current == presented;
        if !is_current && !retired {
            return Ok(Refreshed::Unknown);
        }
        if dead {
            return Ok(Refreshed::Dead);
        }
        if !is_current {
            sqlx::query(
                "UPDATE sessions SET revoked_at = now(), revoked_reason = 'refresh token reused'
                 WHERE id = $1",
            )
            .bind(id)
            .execute(&mut *tx)
            .await?;
            tx.commit().await?;
            return Ok(Refreshed::Reused);
        }
        sqlx::query(
            "UPDATE sessions SET
                 retired_hashes = (ARRAY[refresh_hash] || retired_hashes)[1:$5],
                 refresh_hash = $2, refresh_expires_at = $3, client_addr = $4,
                 last_seen_at = now()
             WHERE id = $1",
        )
        .bind(id)
        .bind(next)
        .bind(expires_at)
        .bind(client_addr)
        .bind(RETIRED_HASHES)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(Refreshed::Rotated {
            username: row.get("username"),
        })
    }

    /// `username`'s live sessions, most recently seen first.
    pub async fn list(&self, username: &str) -> Result<Vec<SessionRow>, UserError> {
        let rows = sqlx::query(
            "SELECT s.id, s.device, s.client_addr, s.created_at, s.last_seen_at
             FROM sessions s JOIN users u ON u.id = s.user_id
             WHERE u.username = $1 AND s.revoked_at IS NULL AND s.refresh_expires_at > now()
             ORDER BY s.last_seen_at DESC, s.created_at DESC",
        )
        .bind(username)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .iter()
            .map(|r| SessionRow {
                id: r.get("id"),
                device: r.get("device"),
                client_addr: r.get("client_addr"),
                created_at: r.get("created_at"),
                last_seen_at: r.get("last_seen_at"),
            })
            .collect())
    }

    /// Revokes `username`'s session `id`. Revoking a revoked one again
    /// answers it again (so a failed announcement can be retried); another
    /// user's session or an unknown id is None.
    pub async fn revoke(
        &self,
        username: &str,
        id: &str,
        reason: &str,
    ) -> Result<Option<String>, UserError> {
        Ok(sqlx::query_scalar(
            "UPDATE sessions s SET revoked_at = coalesce(s.revoked_at, now()),
                 revoked_reason = coalesce(s.revoked_reason, $3)
             FROM users u
             WHERE s.id = $2 AND u.id = s.user_id AND u.username = $1
             RETURNING s.id",
        )
        .bind(username)
        .bind(id)
        .bind(reason)
        .fetch_optional(&self.pool)
        .await?)
    }

    /// Revokes every session of the user `user_id` but `keep`, in `tx`.
    pub async fn revoke_all_in(
        tx: &mut sqlx::PgConnection,
        user_id: i64,
        keep: Option<&str>,
        reason: &str,
        recent_secs: i64,
    ) -> Result<Revoked, UserError> {
        let rows = sqlx::query(
            "UPDATE sessions SET revoked_at = coalesce(revoked_at, now()),
                 revoked_reason = coalesce(revoked_reason, $3)
             WHERE user_id = $1 AND id IS DISTINCT FROM $2
               AND (revoked_at IS NULL OR revoked_at > now() - make_interval(secs => $4))
             RETURNING id, revoked_at = now() AS fresh",
        )
        .bind(user_id)
        .bind(keep)
        .bind(reason)
        .bind(recent_secs as f64)
        .fetch_all(&mut *tx)
        .await?;
        let mut revoked = Revoked::default();
        for row in rows {
            let id: String = row.get("id");
            if row.get::<bool, _>("fresh") {
                revoked.now.push(id.clone());
            }
            revoked.announce.push(id);
        }
        Ok(revoked)
    }

    /// Whether `id` is a live session of `username`.
    pub async fn is_live(&self, username: &str, id: &str) -> Result<bool, UserError> {
        Ok(sqlx::query_scalar(
            "SELECT EXISTS (SELECT 1 FROM sessions s JOIN users u ON u.id = s.user_id
             WHERE s.id = $2 AND u.username = $1 AND u.deleted_at IS NULL
               AND s.revoked_at IS NULL AND s.refresh_expires_at > now())",
        )
        .bind(username)
        .bind(id)
        .fetch_one(&self.pool)
        .await?)
    }

    pub fn pool(&self) -> &PgPool {
        &self.pool
    }
}
