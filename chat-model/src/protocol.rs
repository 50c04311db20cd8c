//! Server-to-client frames of the WebSocket protocol (docs/protocol.md, Server
//! frames), with exactly its field names. chat-service serializes `message`,
//! `sent` and `error` frames once; gateways pass them to sockets untouched.

use serde::Serialize;

use crate::message::ChatMessage;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    BadRequest,
    Unauthorized,
    Forbidden,
    NotFound,
    TooLarge,
    RateLimited,
    Unavailable,
    Internal,
    /// A request under a client_id that already names another request.
    Conflict,
    /// The request took a seq but failed for good (it was dead-lettered):
    /// it is not stored, and its client_id is spent.
    Failed,
}

impl ErrorCode {
    /// Every code, for the documentation check.
    pub const ALL: [ErrorCode; 10] = [
        Self::BadRequest,
        Self::Unauthorized,
        Self::Forbidden,
        Self::NotFound,
        Self::TooLarge,
        Self::RateLimited,
        Self::Unavailable,
        Self::Internal,
        Self::Conflict,
        Self::Failed,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::BadRequest => "bad_request",
            Self::Unauthorized => "unauthorized",
            Self::Forbidden => "forbidden",
            Self::NotFound => "not_found",
            Self::TooLarge => "too_large",
            Self::RateLimited => "rate_limited",
            Self::Unavailable => "unavailable",
            Self::Internal => "internal",
            Self::Conflict => "conflict",
            Self::Failed => "failed",
        }
    }
}

/// The `type` of every frame a client may send (the gateway's parser accepts
/// exactly these).
pub const CLIENT_FRAME_TYPES: [&str; 8] = [
    "send",
    "edit",
    "delete",
    "read",
    "history",
    "offline_ack",
    "typing",
    "ping",
];

/// The `type` of every frame the server sends (one per `ServerFrame` variant).
pub const SERVER_FRAME_TYPES: [&str; 10] = [
    "hello", "offline", "message", "sent", "history", "typing", "read", "pong", "error", "resync",
];

#[derive(Debug, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ServerFrame<'a> {
    Hello {
        user: &'a str,
        gateway: &'a str,
        heartbeat_ms: u64,
    },
    Offline {
        messages: &'a [ChatMessage],
        truncated: bool,
    },
    Message(&'a ChatMessage),
    Sent {
        client_id: &'a str,
        id: &'a str,
        conversation: &'a str,
        seq: u64,
        ts: i64,
    },
    History {
        #[serde(rename = "ref")]
        reference: &'a str,
        conversation: &'a str,
        messages: &'a [ChatMessage],
        has_more: bool,
    },
    Typing {
        from: &'a str,
        conversation: &'a str,
    },
    /// The user's read marker in a conversation moved (on any device).
    Read {
        conversation: &'a str,
        seq: u64,
        unread: u64,
    },
    Pong,
    /// This socket may have missed deliveries (the gateway's subscription
    /// dropped, or a gap showed in its delivery sequence): the client runs
    /// its recovery (list conversations, fetch history after its last seq).
    Resync {
        reason: &'a str,
    },
    /// The socket's access token expires at `expires_at` (Unix ms): answer
    /// with an `auth` frame carrying a fresh one, or the socket is closed
    /// then (4002).
    Refresh {
        expires_at: i64,
    },
    /// An `auth` frame was accepted: the socket now runs on its token, which
    /// expires at `expires_at` (Unix ms).
    Authed {
        #[serde(rename = "ref", skip_serializing_if = "Option::is_none")]
        reference: Option<&'a str>,
        expires_at: i64,
    },
    /// The user is no longer a member of `room` (`action`: kick, ban or
    /// delete_room), on every device at once: the room takes no more of
    /// their messages, and sends them none.
    Removed {
        room: &'a str,
        action: &'a str,
    },
    Error {
        code: ErrorCode,
        message: &'a str,
        #[serde(rename = "ref", skip_serializing_if = "Option::is_none")]
        reference: Option<&'a str>,
        /// With `unavailable` under backpressure: when to try again.
        #[serde(skip_serializing_if = "Option::is_none")]
        retry_after_ms: Option<u64>,
    },
}

impl ServerFrame<'_> {
    pub fn to_json(&self) -> String {
        // Serializing these plain structs cannot fail.
        serde_json::to_string(self).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_have_the_protocol_field_names() {
        let m = ChatMessage::new(
            "i1".into(),
            crate::ids::ConversationId::dm("alice", "bob"),
            1,
            "alice".into(),
            crate::ids::Target::User("bob".into()),
            "hi".into(),
            5,
            "c1".into(),
        );
        let v: serde_json::Value =
            serde_json::from_str(&ServerFrame::Message(&m).to_json()).unwrap();
        assert_eq!(v["type"], "message");
        for f in [
            "id",
            "conversation",
            "seq",
            "from",
            "to",
            "body",
            "ts",
            "client_id",
        ] {
            assert!(v.get(f).is_some(), "{f}");
        }
        assert_eq!(ServerFrame::Pong.to_json(), r#"{"type":"pong"}"#);
        let e = ServerFrame::Error {
            code: ErrorCode::NotFound,
            message: "no",
            reference: Some("c1"),
            retry_after_ms: None,
        };
        assert_eq!(
            e.to_json(),
            r#"{"type":"error","code":"not_found","message":"no","ref":"c1"}"#
        );
    }
}
