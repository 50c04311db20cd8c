//! Blocks, in PostgreSQL: who blocked whom, bounded per blocker.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use sqlx::Row;

use crate::{error::UserError, moderation_store::Tx, store::Store};

/// Users one user may block at once.
pub const MAX_BLOCKS: i64 = 1000;
/// Users one GetBlocks call may ask about.
pub const MAX_GET_BLOCKS: usize = 100;

pub struct BlockRow {
    pub username: String,
    pub created_at: DateTime<Utc>,
}

impl Store {
    /// `user` blocks `target`; blocking twice is one block. Their pending
    /// invites from `target` go with it. Returns whether anything changed.
    pub async fn block(&self, user: &str, target: &str) -> Result<bool, UserError> {
        let mut tx = self.pool().begin().await?;
        let (me, them) = pair(&mut tx, user, target).await?;
        // The blocker's row is locked: two blocks at once cannot both pass
        // the bound.
        sqlx::query("SELECT id FROM users WHERE id = $1 FOR UPDATE")
            .bind(me)
            .execute(&mut *tx)
            .await?;
        let count: i64 =
            sqlx::query_scalar("SELECT count(*) FROM user_blocks WHERE blocker_id = $1")
                .bind(me)
                .fetch_one(&mut *tx)
                .await?;
        let inserted = sqlx::query(
            "INSERT INTO user_blocks (blocker_id, blocked_id) SELECT $1, $2
             WHERE $3 < $4 ON CONFLICT DO NOTHING",
        )
        .bind(me)
        .bind(them)
        .bind(count)
        .bind(MAX_BLOCKS)
        .execute(&mut *tx)
        .await?
        .rows_affected()
            == 1;
        if !inserted {
            let already: bool = sqlx::query_scalar(
                "SELECT EXISTS (SELECT 1 FROM user_blocks WHERE blocker_id = $1 AND blocked_id = $2)",
            )
            .bind(me)
            .bind(them)
            .fetch_one(&mut *tx)
            .await?;
            if already {
                return Ok(false);
            }
            return Err(UserError::FailedPrecondition(format!(
                "you may block at most {MAX_BLOCKS} users: unblock someone first"
            )));
        }
        sqlx::query("DELETE FROM room_invites WHERE user_id = $1 AND invited_by = $2")
            .bind(me)
            .bind(target)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(true)
    }

    /// Lifts `user`'s block of `target`; returns whether there was one.
    pub async fn unblock(&self, user: &str, target: &str) -> Result<bool, UserError> {
        let mut tx = self.pool().begin().await?;
        let (me, them) = pair(&mut tx, user, target).await?;
        let removed =
            sqlx::query("DELETE FROM user_blocks WHERE blocker_id = $1 AND blocked_id = $2")
                .bind(me)
                .bind(them)
                .execute(&mut *tx)
                .await?
                .rows_affected()
                == 1;
        tx.commit().await?;
        Ok(removed)
    }

    /// What each of `users` blocked, newest first (a user that does not
    /// exist blocked nobody).
    pub async fn blocks_of(
        &self,
        users: &[String],
    ) -> Result<HashMap<String, Vec<BlockRow>>, UserError> {
        let rows = sqlx::query(
            "SELECT me.username AS blocker, them.username AS blocked, b.created_at
             FROM users me
             JOIN user_blocks b ON b.blocker_id = me.id
             JOIN users them ON them.id = b.blocked_id AND them.deleted_at IS NULL
             WHERE me.username = ANY($1)
             ORDER BY b.created_at DESC, them.username",
        )
        .bind(users)
        .fetch_all(self.pool())
        .await?;
        let mut out: HashMap<String, Vec<BlockRow>> = HashMap::new();
        for row in rows {
            out.entry(row.get("blocker")).or_default().push(BlockRow {
                username: row.get("blocked"),
                created_at: row.get("created_at"),
            });
        }
        Ok(out)
    }

    /// Which members of `room` blocked `user`.
    pub async fn blocked_by(&self, user: &str, room: &str) -> Result<Vec<String>, UserError> {
        Ok(sqlx::query_scalar(
            "SELECT me.username FROM user_blocks b
             JOIN users me ON me.id = b.blocker_id
             JOIN memberships m ON m.user_id = b.blocker_id
             JOIN rooms r ON r.id = m.room_id AND r.name = $2
             WHERE b.blocked_id = (SELECT id FROM users WHERE username = $1)",
        )
        .bind(user)
        .bind(room)
        .fetch_all(self.pool())
        .await?)
    }
}

/// Whether the user `user_id` blocked `target`.
pub(crate) async fn blocked(tx: &mut Tx, user_id: i64, target: &str) -> Result<bool, UserError> {
    Ok(sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM user_blocks b JOIN users u ON u.id = b.blocked_id
                        WHERE b.blocker_id = $1 AND u.username = $2)",
    )
    .bind(user_id)
    .bind(target)
    .fetch_one(&mut **tx)
    .await?)
}

/// The ids of `user` and `target`, both live accounts.
async fn pair(tx: &mut Tx, user: &str, target: &str) -> Result<(i64, i64), UserError> {
    if user == target {
        return Err(UserError::InvalidArgument(
            "you cannot block yourself".into(),
        ));
    }
    let rows = sqlx::query(
        "SELECT id, username FROM users WHERE username IN ($1, $2) AND deleted_at IS NULL",
    )
    .bind(user)
    .bind(target)
    .fetch_all(&mut **tx)
    .await?;
    let id = |name: &str| {
        rows.iter()
            .find(|r| r.get::<String, _>("username") == name)
            .map(|r| r.get::<i64, _>("id"))
    };
    let me = id(user).ok_or_else(|| UserError::NotFound(format!("user {user} not found")))?;
    let them = id(target).ok_or_else(|| UserError::NotFound(format!("user {target} not found")))?;
    Ok((me, them))
}
