//! PostgreSQL queries for users, rooms and memberships. Every lookup on the
//! hot path has an index (users.username, rooms.name, memberships primary
//! key and user_id). A deleted account is invisible to every lookup here
//! (`deleted_at IS NULL`); its row only keeps its username retired.

use chrono::{DateTime, Utc};
use sqlx::{PgPool, Row};

use chat_model::message::MemberAction;

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
    pub visibility: String,
    pub slow_mode_secs: i32,
    pub display_name: String,
    pub history_visibility: String,
    /// The caller's history floor (0: everything, or not a member).
    pub history_from: i64,
}

#[derive(Debug, Clone)]
pub struct MemberRow {
    pub username: String,
    pub display_name: String,
    pub role: String,
    pub joined_at: DateTime<Utc>,
    pub muted_until: Option<DateTime<Utc>>,
}

/// A room's members with the settings that decide who may post, and how.
pub struct RoomMembers {
    pub visibility: String,
    pub slow_mode_secs: i32,
    pub members: Vec<MemberRow>,
}

/// A transaction that several store files' helpers share.
pub(crate) type Tx = sqlx::Transaction<'static, sqlx::Postgres>;

#[derive(Clone)]
pub struct Store {
    pool: PgPool,
    /// MEMBERSHIP_EVENTS: whether membership changes are written to the
    /// event outbox (`outbox.rs`).
    member_events: bool,
}

pub(crate) const ROOM_COLUMNS: &str =
    "r.name, r.topic, u.username AS created_by, r.created_at, r.visibility, r.slow_mode_secs,
     r.display_name AS room_display_name, r.history_visibility";

/// With ROOM_COLUMNS and a membership `m`: where the member's history starts.
pub(crate) const HISTORY_FROM: &str =
    "CASE WHEN r.history_visibility = 'since_join' THEN m.history_from ELSE 0 END AS history_from";

impl Store {
    pub fn new(pool: PgPool) -> Self {
        Self {
            pool,
            member_events: true,
        }
    }

    /// With MEMBERSHIP_EVENTS off, changes are enforced as ever but no
    /// event reaches the rooms' timelines.
    pub fn with_member_events(self, on: bool) -> Self {
        Self {
            member_events: on,
            ..self
        }
    }

    pub(crate) fn member_events(&self) -> bool {
        self.member_events
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
        visibility: &str,
    ) -> Result<RoomRow, UserError> {
        let mut tx = self.pool.begin().await?;
        let row = sqlx::query(
            "WITH c AS (SELECT id FROM users WHERE username = $3 AND deleted_at IS NULL)
             INSERT INTO rooms (name, topic, created_by, visibility) SELECT $1, $2, c.id, $4 FROM c
             RETURNING id, created_at",
        )
        .bind(name)
        .bind(topic)
        .bind(creator)
        .bind(visibility)
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
            visibility: visibility.to_owned(),
            slow_mode_secs: 0,
            display_name: String::new(),
            history_visibility: "full".into(),
            history_from: 0,
        })
    }

    /// Adds `username` to `room` as a member; joining twice is not an
    /// error. A banned user is refused; a private room takes only the
    /// invited (the invite is used up), and answers anyone else as if it
    /// did not exist.
    /// `from_seq`: the room's last seq now, where the member's history
    /// starts if the room shows history since joining.
    pub async fn join_room(
        &self,
        room: &str,
        username: &str,
        from_seq: i64,
    ) -> Result<RoomRow, UserError> {
        let mut tx = self.pool.begin().await?;
        let found = sqlx::query(
            "SELECT r.id AS room_id, r.visibility, u.id AS user_id,
                    EXISTS (SELECT 1 FROM memberships m WHERE m.room_id = r.id AND m.user_id = u.id) AS member,
                    EXISTS (SELECT 1 FROM room_bans b WHERE b.room_id = r.id AND b.user_id = u.id
                            AND (b.until IS NULL OR b.until > now())) AS banned,
                    EXISTS (SELECT 1 FROM room_invites i WHERE i.room_id = r.id AND i.user_id = u.id) AS invited
             FROM rooms r, users u
             WHERE r.name = $1 AND r.deleted_at IS NULL AND u.username = $2 AND u.deleted_at IS NULL",
        )
        .bind(room)
        .bind(username)
        .fetch_optional(&mut *tx)
        .await?;
        let not_found = || UserError::NotFound(format!("room {room} not found"));
        let Some(found) = found else {
            return Err(not_found());
        };
        let private = found.get::<String, _>("visibility") == "private";
        if !found.get::<bool, _>("member") {
            if found.get::<bool, _>("banned") {
                return Err(if private {
                    not_found()
                } else {
                    UserError::PermissionDenied(format!("you are banned from room {room}"))
                });
            }
            if private && !found.get::<bool, _>("invited") {
                return Err(not_found());
            }
            let (room_id, user_id): (i64, i64) = (found.get("room_id"), found.get("user_id"));
            sqlx::query("DELETE FROM room_invites WHERE room_id = $1 AND user_id = $2")
                .bind(room_id)
                .bind(user_id)
                .execute(&mut *tx)
                .await?;
            let joined = sqlx::query(
                "INSERT INTO memberships (room_id, user_id, role, history_from)
                 VALUES ($1, $2, 'member', $3)
                 ON CONFLICT (room_id, user_id) DO NOTHING",
            )
            .bind(room_id)
            .bind(user_id)
            .bind(from_seq)
            .execute(&mut *tx)
            .await?;
            if joined.rows_affected() == 1 {
                self.record_event(&mut tx, room, username, MemberAction::Join, username, None)
                    .await?;
            }
        }
        tx.commit().await?;
        self.room_for(room, username).await?.ok_or_else(not_found)
    }

    /// Removes a membership. Missing room: NotFound; not a member:
    /// FailedPrecondition; the owner: FailedPrecondition (they hand the
    /// room on first, or delete it).
    pub async fn leave_room(&self, room: &str, username: &str) -> Result<(), UserError> {
        let mut tx = self.pool.begin().await?;
        let deleted = sqlx::query(
            "DELETE FROM memberships m USING rooms r, users u
             WHERE m.room_id = r.id AND m.user_id = u.id AND r.name = $1 AND u.username = $2
               AND m.role <> 'owner'",
        )
        .bind(room)
        .bind(username)
        .execute(&mut *tx)
        .await?;
        if deleted.rows_affected() == 1 {
            self.record_event(&mut tx, room, username, MemberAction::Leave, username, None)
                .await?;
            tx.commit().await?;
            return Ok(());
        }
        drop(tx);
        match self.role_in(room, username).await? {
            None => Err(UserError::NotFound(format!("room {room} not found"))),
            Some(Some(_)) => Err(UserError::FailedPrecondition(format!(
                "the owner cannot leave room {room}: transfer ownership first, or delete the room"
            ))),
            Some(None) => Err(UserError::FailedPrecondition(format!(
                "{username} is not a member of room {room}"
            ))),
        }
    }

    /// None: no such room (or private, and `username` not in it); else
    /// `username`'s role there.
    pub async fn role_in(
        &self,
        room: &str,
        username: &str,
    ) -> Result<Option<Option<String>>, UserError> {
        Ok(self.standing(room, username).await?.map(|(role, _)| role))
    }

    /// [`Self::role_in`], with where the member's history starts.
    async fn standing(
        &self,
        room: &str,
        username: &str,
    ) -> Result<Option<(Option<String>, i64)>, UserError> {
        let row = sqlx::query(
            "SELECT r.visibility, m.role,
                    CASE WHEN r.history_visibility = 'since_join' THEN m.history_from ELSE 0 END
                        AS history_from
             FROM rooms r
             LEFT JOIN memberships m ON m.room_id = r.id
                 AND m.user_id = (SELECT id FROM users WHERE username = $2)
             WHERE r.name = $1 AND r.deleted_at IS NULL",
        )
        .bind(room)
        .bind(username)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.and_then(|r| {
            let role: Option<String> = r.get("role");
            let from = r.get::<Option<i64>, _>("history_from").unwrap_or(0);
            (role.is_some() || r.get::<String, _>("visibility") == "public").then_some((role, from))
        }))
    }

    pub async fn room_exists(&self, room: &str) -> Result<bool, UserError> {
        Ok(sqlx::query_scalar(
            "SELECT EXISTS (SELECT 1 FROM rooms WHERE name = $1 AND deleted_at IS NULL)",
        )
        .bind(room)
        .fetch_one(&self.pool)
        .await?)
    }

    /// The room with `username`'s role in it (None when not a member).
    pub(crate) async fn room_for(
        &self,
        room: &str,
        username: &str,
    ) -> Result<Option<RoomRow>, UserError> {
        let row = sqlx::query(&format!(
            "SELECT {ROOM_COLUMNS}, {HISTORY_FROM}, m.role FROM rooms r
             JOIN users u ON u.id = r.created_by
             LEFT JOIN memberships m ON m.room_id = r.id
                 AND m.user_id = (SELECT id FROM users WHERE username = $2)
             WHERE r.name = $1 AND r.deleted_at IS NULL"
        ))
        .bind(room)
        .bind(username)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.as_ref().map(room_from))
    }

    pub async fn user_rooms(&self, username: &str) -> Result<Vec<RoomRow>, UserError> {
        let rows = sqlx::query(&format!(
            "SELECT {ROOM_COLUMNS}, {HISTORY_FROM}, m.role FROM memberships m
             JOIN users me ON me.id = m.user_id AND me.username = $1
             JOIN rooms r ON r.id = m.room_id AND r.deleted_at IS NULL
             JOIN users u ON u.id = r.created_by
             ORDER BY r.name"
        ))
        .bind(username)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.iter().map(room_from).collect())
    }

    /// The visibility, slow mode and members of `room`, or None when the
    /// room does not exist.
    pub async fn room_members(&self, room: &str) -> Result<Option<RoomMembers>, UserError> {
        let Some(settings) = sqlx::query(
            "SELECT visibility, slow_mode_secs FROM rooms WHERE name = $1 AND deleted_at IS NULL",
        )
        .bind(room)
        .fetch_optional(&self.pool)
        .await?
        else {
            return Ok(None);
        };
        let rows = sqlx::query(
            "SELECT u.username, u.display_name, m.role, m.joined_at, m.muted_until FROM rooms r
             JOIN memberships m ON m.room_id = r.id
             JOIN users u ON u.id = m.user_id
             WHERE r.name = $1 AND r.deleted_at IS NULL ORDER BY u.username",
        )
        .bind(room)
        .fetch_all(&self.pool)
        .await?;
        let members = rows
            .iter()
            .map(|r| MemberRow {
                username: r.get("username"),
                display_name: r.get("display_name"),
                role: r.get("role"),
                joined_at: r.get("joined_at"),
                muted_until: r.get("muted_until"),
            })
            .collect();
        Ok(Some(RoomMembers {
            visibility: settings.get("visibility"),
            slow_mode_secs: settings.get("slow_mode_secs"),
            members,
        }))
    }

    /// (room exists, user is a member). A private room exists only for
    /// its members: to anyone else it looks like no room at all.
    /// Whether `room` exists (to `username`), whether they are a member,
    /// and where their history starts (0: everything).
    pub async fn membership(
        &self,
        room: &str,
        username: &str,
    ) -> Result<(bool, bool, i64), UserError> {
        Ok(match self.standing(room, username).await? {
            None => (false, false, 0),
            Some((None, _)) => (true, false, 0),
            Some((Some(_), from)) => (true, true, from),
        })
    }
}

fn user_from(row: &sqlx::postgres::PgRow) -> UserRow {
    UserRow {
        username: row.get("username"),
        display_name: row.get("display_name"),
        created_at: row.get("created_at"),
    }
}

pub(crate) fn room_from(row: &sqlx::postgres::PgRow) -> RoomRow {
    RoomRow {
        name: row.get("name"),
        topic: row.get("topic"),
        created_by: row.get("created_by"),
        created_at: row.get("created_at"),
        role: row.get("role"),
        visibility: row.get("visibility"),
        slow_mode_secs: row.get("slow_mode_secs"),
        display_name: row.get("room_display_name"),
        history_visibility: row.get("history_visibility"),
        history_from: row.get::<Option<i64>, _>("history_from").unwrap_or(0),
    }
}
