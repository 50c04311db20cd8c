//! PostgreSQL queries for users, rooms and memberships. Every lookup on the
//! hot path has an index (users.username, rooms.name, memberships primary
//! key and user_id). A deleted account is invisible to every lookup here
//! (`deleted_at IS NULL`); its row only keeps its username retired.

use chrono::{DateTime, Utc};
use sqlx::{PgPool, Row};

use crate::error::{UserError, is_unique_violation};

#[derive(Debug, Clone)]
pub struct UserRow {
    pub username: String,
    pub display_name: String,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Clone)]
pub struct RoomRow {
    pub name: String,
    pub topic: String,
    pub created_by: String,
    pub created_at: DateTime<Utc>,
    pub role: Option<String>,
}

#[derive(Debug, Clone)]
pub struct MemberRow {
    pub username: String,
    pub display_name: String,
    pub role: String,
    pub joined_at: DateTime<Utc>,
}

#[derive(Clone)]
pub struct Store {
    pool: PgPool,
}

const ROOM_COLUMNS: &str = "r.name, r.topic, u.username AS created_by, r.created_at";

impl Store {
    pub fn new(pool: PgPool) -> Self {
        Self { pool }
    }

    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    pub async fn insert_user(
        &self,
        username: &str,
        display_name: &str,
        password_hash: &str,
    ) -> Result<UserRow, UserError> {
        let row = sqlx::query(
            "INSERT INTO users (username, display_name, password_hash) VALUES ($1, $2, $3)
             RETURNING username, display_name, created_at",
        )
        .bind(username)
        .bind(display_name)
        .bind(password_hash)
        .fetch_one(&self.pool)
        .await
        .map_err(|e| {
            if is_unique_violation(&e) {
                UserError::AlreadyExists(format!("username {username} is taken"))
            } else {
                e.into()
            }
        })?;
        Ok(user_from(&row))
    }

    pub async fn password_hash(&self, username: &str) -> Result<Option<String>, UserError> {
        Ok(sqlx::query_scalar(
            "SELECT password_hash FROM users WHERE username = $1 AND deleted_at IS NULL",
        )
        .bind(username)
        .fetch_optional(&self.pool)
        .await?)
    }

    pub async fn user(&self, username: &str) -> Result<Option<UserRow>, UserError> {
        let row =
            sqlx::query("SELECT username, display_name, created_at FROM users WHERE username = $1 AND deleted_at IS NULL")
                .bind(username)
                .fetch_optional(&self.pool)
                .await?;
        Ok(row.as_ref().map(user_from))
    }

    /// The users among `usernames` that exist, in one query.
    pub async fn users(&self, usernames: &[String]) -> Result<Vec<UserRow>, UserError> {
        let rows = sqlx::query(
            "SELECT username, display_name, created_at FROM users
             WHERE username = ANY($1) AND deleted_at IS NULL",
        )
        .bind(usernames)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.iter().map(user_from).collect())
    }

    /// Creates a room with `creator` as its owner, in one transaction.
    pub async fn create_room(
        &self,
        name: &str,
        topic: &str,
        creator: &str,
    ) -> Result<RoomRow, UserError> {
        let mut tx = self.pool.begin().await?;
        let row = sqlx::query(
            "WITH c AS (SELECT id FROM users WHERE username = $3 AND deleted_at IS NULL)
             INSERT INTO rooms (name, topic, created_by) SELECT $1, $2, c.id FROM c
             RETURNING id, created_at",
        )
        .bind(name)
        .bind(topic)
        .bind(creator)
        .fetch_optional(&mut *tx)
        .await
        .map_err(|e| {
            if is_unique_violation(&e) {
                UserError::AlreadyExists(format!("room {name} already exists"))
            } else {
                e.into()
            }
        })?
        .ok_or_else(|| UserError::NotFound(format!("user {creator} not found")))?;
        let room_id: i64 = row.get("id");
        sqlx::query(
            "INSERT INTO memberships (room_id, user_id, role)
             SELECT $1, id, 'owner' FROM users WHERE username = $2",
        )
        .bind(room_id)
        .bind(creator)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(RoomRow {
            name: name.to_owned(),
            topic: topic.to_owned(),
            created_by: creator.to_owned(),
            created_at: row.get("created_at"),
            role: Some("owner".to_owned()),
        })
    }

    /// Adds `username` to `room` as a member; joining twice is not an error.
    pub async fn join_room(&self, room: &str, username: &str) -> Result<RoomRow, UserError> {
        let inserted = sqlx::query(
            "INSERT INTO memberships (room_id, user_id, role)
             SELECT r.id, u.id, 'member' FROM rooms r, users u
             WHERE r.name = $1 AND u.username = $2 AND u.deleted_at IS NULL
             ON CONFLICT (room_id, user_id) DO NOTHING",
        )
        .bind(room)
        .bind(username)
        .execute(&self.pool)
        .await?;
        let _ = inserted;
        self.room_for(room, username)
            .await?
            .ok_or_else(|| UserError::NotFound(format!("room {room} not found")))
    }

    /// Removes a membership. Missing room: NotFound; not a member: FailedPrecondition.
    pub async fn leave_room(&self, room: &str, username: &str) -> Result<(), UserError> {
        let deleted = sqlx::query(
            "DELETE FROM memberships m USING rooms r, users u
             WHERE m.room_id = r.id AND m.user_id = u.id AND r.name = $1 AND u.username = $2",
        )
        .bind(room)
        .bind(username)
        .execute(&self.pool)
        .await?;
        if deleted.rows_affected() == 1 {
            return Ok(());
        }
        if self.room_exists(room).await? {
            Err(UserError::FailedPrecondition(format!(
                "{username} is not a member of room {room}"
            )))
        } else {
            Err(UserError::NotFound(format!("room {room} not found")))
        }
    }

    pub async fn room_exists(&self, room: &str) -> Result<bool, UserError> {
        Ok(
            sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM rooms WHERE name = $1)")
                .bind(room)
                .fetch_one(&self.pool)
                .await?,
        )
    }

    /// The room with `username`'s role in it (None when not a member).
    async fn room_for(&self, room: &str, username: &str) -> Result<Option<RoomRow>, UserError> {
        let row = sqlx::query(&format!(
            "SELECT {ROOM_COLUMNS}, m.role FROM rooms r
             JOIN users u ON u.id = r.created_by
             LEFT JOIN memberships m ON m.room_id = r.id
                 AND m.user_id = (SELECT id FROM users WHERE username = $2)
             WHERE r.name = $1"
        ))
        .bind(room)
        .bind(username)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.as_ref().map(room_from))
    }

    pub async fn user_rooms(&self, username: &str) -> Result<Vec<RoomRow>, UserError> {
        let rows = sqlx::query(&format!(
            "SELECT {ROOM_COLUMNS}, m.role FROM memberships m
             JOIN users me ON me.id = m.user_id AND me.username = $1
             JOIN rooms r ON r.id = m.room_id
             JOIN users u ON u.id = r.created_by
             ORDER BY r.name"
        ))
        .bind(username)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.iter().map(room_from).collect())
    }

    /// Members of `room`, or None when the room does not exist.
    pub async fn room_members(&self, room: &str) -> Result<Option<Vec<MemberRow>>, UserError> {
        let rows = sqlx::query(
            "SELECT u.username, u.display_name, m.role, m.joined_at FROM rooms r
             JOIN memberships m ON m.room_id = r.id
             JOIN users u ON u.id = m.user_id
             WHERE r.name = $1 ORDER BY u.username",
        )
        .bind(room)
        .fetch_all(&self.pool)
        .await?;
        if rows.is_empty() && !self.room_exists(room).await? {
            return Ok(None);
        }
        Ok(Some(
            rows.iter()
                .map(|r| MemberRow {
                    username: r.get("username"),
                    display_name: r.get("display_name"),
                    role: r.get("role"),
                    joined_at: r.get("joined_at"),
                })
                .collect(),
        ))
    }

    /// (room exists, user is a member).
    pub async fn membership(&self, room: &str, username: &str) -> Result<(bool, bool), UserError> {
        let row = sqlx::query(
            "SELECT r.id IS NOT NULL AS room_exists, m.user_id IS NOT NULL AS member
             FROM (SELECT 1) one
             LEFT JOIN rooms r ON r.name = $1
             LEFT JOIN memberships m ON m.room_id = r.id
                 AND m.user_id = (SELECT id FROM users WHERE username = $2)",
        )
        .bind(room)
        .bind(username)
        .fetch_one(&self.pool)
        .await?;
        Ok((row.get("room_exists"), row.get("member")))
    }
}

fn user_from(row: &sqlx::postgres::PgRow) -> UserRow {
    UserRow {
        username: row.get("username"),
        display_name: row.get("display_name"),
        created_at: row.get("created_at"),
    }
}

fn room_from(row: &sqlx::postgres::PgRow) -> RoomRow {
    RoomRow {
        name: row.get("name"),
        topic: row.get("topic"),
        created_by: row.get("created_by"),
        created_at: row.get("created_at"),
        role: row.get("role"),
    }
}
