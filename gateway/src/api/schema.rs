//! The REST API's response bodies, as types: the handlers return them and
//! the OpenAPI document (`/api/openapi.json`) describes them from the same
//! definitions, so the two cannot drift.

use chat_model::message::ChatMessage;
use proto::user::v1 as user_pb;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

pub use crate::{
    domain::conversations::ConversationSummary,
    http::error::{ErrorBody, ErrorDetail},
};

/// A protobuf timestamp as Unix milliseconds, the protocol's time unit.
pub fn ms(t: Option<&prost_types::Timestamp>) -> i64 {
    t.map_or(0, |t| t.seconds * 1000 + i64::from(t.nanos) / 1_000_000)
}

/// A user account.
#[derive(Serialize, ToSchema)]
pub struct User {
    pub username: String,
    pub display_name: String,
    /// Unix milliseconds.
    pub created_at: i64,
}

impl From<&user_pb::User> for User {
    fn from(u: &user_pb::User) -> Self {
        Self {
            username: u.username.clone(),
            display_name: u.display_name.clone(),
            created_at: ms(u.created_at.as_ref()),
        }
    }
}

/// A session's tokens: the access token for `Authorization: Bearer
/// <token>` (short-lived), and the refresh token that trades for new ones
/// at `POST /api/refresh` (each use replaces it; a replaced one used again
/// signs the session out).
#[derive(Serialize, ToSchema)]
pub struct Login {
    pub token: String,
    /// When `token` expires, Unix milliseconds.
    pub expires_at: i64,
    pub username: String,
    pub refresh_token: String,
    /// When `refresh_token` expires unless used, Unix milliseconds.
    pub refresh_expires_at: i64,
    pub session_id: String,
}

impl From<user_pb::AuthenticateResponse> for Login {
    fn from(r: user_pb::AuthenticateResponse) -> Self {
        Self {
            token: r.token,
            expires_at: r.expires_at,
            username: r.username,
            refresh_token: r.refresh_token,
            refresh_expires_at: r.refresh_expires_at,
            session_id: r.session_id,
        }
    }
}

/// A signed-in device.
#[derive(Serialize, ToSchema)]
pub struct SessionInfo {
    pub id: String,
    /// What the client called itself at login.
    pub device: String,
    /// The client address at login or at its last refresh.
    pub client_addr: String,
    /// Unix milliseconds.
    pub created_at: i64,
    /// The login or the last refresh, Unix milliseconds.
    pub last_seen_at: i64,
    /// Whether this is the caller's own session.
    pub current: bool,
}

/// The caller's live sessions, most recently seen first.
#[derive(Serialize, ToSchema)]
pub struct SessionList {
    pub sessions: Vec<SessionInfo>,
}

/// How many sessions a call signed out.
#[derive(Serialize, ToSchema)]
pub struct SignedOut {
    pub revoked: usize,
}

/// One page of the account export.
#[derive(Serialize, ToSchema)]
pub struct ExportPage {
    /// The account, on the first page only.
    pub account: Option<User>,
    /// On the first page only.
    pub sessions: Option<Vec<SessionInfo>>,
    /// The rooms the account is a member of, on the first page only.
    pub rooms: Option<Vec<Room>>,
    /// Every conversation the export walks, on the first page only.
    pub conversations: Option<Vec<String>>,
    /// Messages the account sent, by conversation then seq.
    pub messages: Vec<ChatMessage>,
    /// Pass as `cursor` for the next page; null on the last page.
    pub next_cursor: Option<String>,
}

/// A one-time WebSocket ticket: `GET /ws?ticket=<ticket>`.
#[derive(Serialize, ToSchema)]
pub struct Ticket {
    pub ticket: String,
    /// Seconds the ticket stays valid.
    pub expires_in: u64,
}

/// A room, with the caller's role in it when listed for a member.
#[derive(Serialize, ToSchema)]
pub struct Room {
    /// The room's immutable id.
    pub name: String,
    /// Shown instead of the name when not empty.
    pub display_name: String,
    pub topic: String,
    pub created_by: String,
    /// Unix milliseconds.
    pub created_at: i64,
    /// `owner`, `admin` or `member`; null where not known or not a member.
    pub role: Option<String>,
    /// `public` (listed, anyone may join) or `private` (invite only).
    pub visibility: String,
    /// Slow mode in seconds (0: off).
    pub slow_mode_secs: u32,
    /// `full` (members read the whole history) or `since_join` (members
    /// read only what was sent after they joined).
    pub history_visibility: String,
    /// Where the caller's history starts: they read only seqs above it (0:
    /// everything).
    pub history_from_seq: u64,
}

impl From<&user_pb::Room> for Room {
    fn from(r: &user_pb::Room) -> Self {
        Self {
            name: r.name.clone(),
            display_name: r.display_name.clone(),
            topic: r.topic.clone(),
            created_by: r.created_by.clone(),
            created_at: ms(r.created_at.as_ref()),
            role: (!r.role.is_empty()).then(|| r.role.clone()),
            visibility: r.visibility.clone(),
            slow_mode_secs: r.slow_mode_secs,
            history_visibility: r.history_visibility.clone(),
            history_from_seq: r.history_from_seq,
        }
    }
}

/// The caller's rooms.
#[derive(Serialize, ToSchema)]
pub struct Rooms {
    pub rooms: Vec<Room>,
}

/// The caller left the room.
#[derive(Serialize, ToSchema)]
pub struct Left {
    pub room: String,
    pub left: bool,
}

/// A member of a room.
#[derive(Serialize, ToSchema)]
pub struct Member {
    pub username: String,
    pub display_name: String,
    pub role: String,
    /// Unix milliseconds.
    pub joined_at: i64,
    /// Whether the member has a socket open on any gateway.
    pub online: bool,
    /// Muted until then (Unix ms); null when not muted.
    pub muted_until: Option<i64>,
}

/// A room's members.
#[derive(Serialize, ToSchema)]
pub struct Members {
    pub room: String,
    pub members: Vec<Member>,
}

/// A page of the caller's conversations, most recently active first.
#[derive(Serialize, ToSchema)]
pub struct Conversations {
    pub conversations: Vec<ConversationSummary>,
    /// Pass as `cursor` for the next page; null on the last page.
    pub next_cursor: Option<String>,
}

/// A read marker to set.
#[derive(Deserialize, ToSchema)]
pub struct ReadBody {
    /// The highest seq read: 1 to the conversation's last seq.
    #[schema(minimum = 1)]
    pub seq: u64,
}

/// The caller's read marker in a conversation, after the call.
#[derive(Serialize, ToSchema)]
pub struct ReadMarker {
    pub conversation: String,
    pub read_seq: u64,
    pub unread: u64,
}

/// A page of a conversation's history.
#[derive(Serialize, ToSchema)]
pub struct Page {
    pub conversation: String,
    /// Oldest first after `after`; newest first otherwise.
    pub messages: Vec<ChatMessage>,
    /// Whether there are more messages beyond this page.
    pub has_more: bool,
}
