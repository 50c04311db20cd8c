//! The message model shared by the services, and the internal wire formats
//! that cross Redis: ingress stream entries, gateway deliveries and archive
//! entries.
//!
//! Each internal format carries a version, `v`. A reader accepts the current
//! version and the one before it (a record without `v` is version 1, as
//! written before versions existed), and ignores fields it does not know, so
//! a writer may add optional fields without a version bump. A rolling upgrade
//! can then update writers or readers first: docs/architecture.md, "Rolling
//! upgrades".

use std::borrow::Cow;

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use crate::ids::{ConversationId, Target};

/// The version of the ingress entry, the delivery and the archive entry
/// that this build writes.
pub const FORMAT_VERSION: u32 = 2;
/// The oldest version this build reads.
pub const OLDEST_READABLE: u32 = 1;

fn version_1() -> u32 {
    1
}

/// Whether a record of version `v` can be read by this build.
pub fn readable(v: u32) -> bool {
    (OLDEST_READABLE..=FORMAT_VERSION).contains(&v)
}

/// A stored chat message, as the protocol's `message` frame and the offline
/// queue carry it. Field order is fixed so a replay serializes byte-identically.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ChatMessage {
    pub id: String,
    /// `room:<name>` or `dm:<a>:<b>`.
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub conversation: ConversationId,
    pub seq: u64,
    pub from: String,
    /// `room:<name>` or `user:<username>`.
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub to: Target,
    pub body: String,
    pub ts: i64,
    pub client_id: String,
    /// A seq whose message could not be stored (it was dead-lettered after
    /// it took the seq): nothing to show, but the seq is not a gap.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub tombstone: bool,
    /// Set on an event: an edit or delete of the message at `target_seq`,
    /// with a seq of its own so clients catch up on it by seq.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<EventKind>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_seq: Option<u64>,
    /// On an edited message (history): when it was last edited.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub edited_at: Option<i64>,
    /// The seq of the last event applied to this message (history).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub edit_seq: Option<u64>,
    /// A deleted message (history): `tombstone` is set and the body empty.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub deleted: bool,
    /// Set on a membership event: a join, leave, kick, ban, unban or role
    /// change in a room, with a seq of its own. `from` is who did it; the
    /// body is its text in English for clients that do not know the field.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub member: Option<MemberEvent>,
}

/// A membership change as its room's timeline shows it (see
/// [`ChatMessage::member`]).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct MemberEvent {
    pub action: MemberAction,
    /// Whom it is about (for a join or leave, `from` too).
    pub user: String,
    /// For `role`: the role `user` has now (`owner`, `admin` or `member`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
}

/// What happened to a room's membership.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum MemberAction {
    Join,
    Leave,
    Kick,
    Ban,
    Unban,
    Role,
}

impl MemberAction {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Join => "join",
            Self::Leave => "leave",
            Self::Kick => "kick",
            Self::Ban => "ban",
            Self::Unban => "unban",
            Self::Role => "role",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [
            Self::Join,
            Self::Leave,
            Self::Kick,
            Self::Ban,
            Self::Unban,
            Self::Role,
        ]
        .into_iter()
        .find(|a| a.as_str() == s)
    }
}

impl MemberEvent {
    /// The event's text, as its message body carries it: `actor` did it.
    pub fn text(&self, actor: &str) -> String {
        let user = &self.user;
        match self.action {
            MemberAction::Join => format!("{user} joined"),
            MemberAction::Leave => format!("{user} left"),
            MemberAction::Kick => format!("{actor} removed {user}"),
            MemberAction::Ban => format!("{actor} banned {user}"),
            MemberAction::Unban => format!("{actor} lifted the ban on {user}"),
            MemberAction::Role => match self.role.as_deref() {
                Some("owner") => format!("{actor} handed the room to {user}"),
                Some(role) => format!("{actor} made {user} {role}"),
                None => format!("{actor} changed {user}'s role"),
            },
        }
    }
}

/// What an event does to its target.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum EventKind {
    Edit,
    Delete,
}

impl EventKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Edit => "edit",
            Self::Delete => "delete",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "edit" => Some(Self::Edit),
            "delete" => Some(Self::Delete),
            _ => None,
        }
    }
}

impl ChatMessage {
    /// A message (not an event) with no edit applied.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        id: String,
        conversation: ConversationId,
        seq: u64,
        from: String,
        to: Target,
        body: String,
        ts: i64,
        client_id: String,
    ) -> Self {
        Self {
            id,
            conversation,
            seq,
            from,
            to,
            body,
            ts,
            client_id,
            tombstone: false,
            kind: None,
            target_seq: None,
            edited_at: None,
            edit_seq: None,
            deleted: false,
            member: None,
        }
    }

    /// Applies the event `event` to this message (its target) by the rule
    /// every copy follows (docs/protocol.md, "Edits and deletes"): a delete
    /// wins over every edit, whatever order they are applied in; of the
    /// edits, the one with the highest seq. Returns whether it changed.
    ///
    /// chat-service computes a target's new state here, once, when the
    /// event takes its seq; the window, the archive and the conversation
    /// list store that state with [`ChatMessage::supersedes`].
    pub fn apply(&mut self, event: &ChatMessage) -> bool {
        let Some(kind) = event.kind else { return false };
        if self.kind.is_some() || self.member.is_some() || self.deleted || self.tombstone {
            return false;
        }
        match kind {
            EventKind::Edit => {
                if self.edit_seq.is_some_and(|s| s >= event.seq) {
                    return false;
                }
                self.body.clone_from(&event.body);
                self.edited_at = Some(event.ts);
            }
            EventKind::Delete => {
                self.body.clear();
                self.deleted = true;
                self.tombstone = true;
            }
        }
        self.edit_seq = Some(event.seq);
        true
    }

    /// Whether this state of a message is newer than `other`, a state of
    /// the same message, by the rule of [`Self::apply`]: a deleted state
    /// beats every other, then the higher `edit_seq` wins. (The window's
    /// Lua script and the archive's filter implement the same comparison.)
    pub fn supersedes(&self, other: &ChatMessage) -> bool {
        if other.deleted {
            return false;
        }
        self.deleted || self.edit_seq.unwrap_or(0) > other.edit_seq.unwrap_or(0)
    }

    /// The event as history keeps it: without its body (the target holds
    /// the current state, and a later delete must leave no copy).
    pub fn stored_event(&self) -> ChatMessage {
        let mut e = self.clone();
        e.body.clear();
        e
    }
}

/// What an ingress entry asks for.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EntryKind {
    /// A message to sequence, store and deliver.
    #[default]
    Send,
    /// A typing notice: delivered to online members, never stored.
    Typing,
    /// An edit of the sender's message at `target_seq`: sequenced, stored
    /// and delivered like a message.
    Edit,
    /// A delete of the message at `target_seq` (its sender's, or any in a
    /// room the sender owns).
    Delete,
    /// A membership event (`member`), written by user-service from its
    /// outbox once the change is committed: sequenced, stored and delivered
    /// to the room's members as they are after the change.
    Member,
}

impl EntryKind {
    /// The event an entry of this kind makes, if it is one.
    pub fn event(self) -> Option<EventKind> {
        match self {
            Self::Edit => Some(EventKind::Edit),
            Self::Delete => Some(EventKind::Delete),
            Self::Send | Self::Typing | Self::Member => None,
        }
    }

    /// Whether it takes a seq and is stored.
    pub fn is_stored(self) -> bool {
        self != Self::Typing
    }
}

/// A `send`, `edit`, `delete` or `typing` the gateway accepted and put on
/// the ingress stream (`kind` says which).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct IngressEntry {
    #[serde(default = "version_1")]
    pub v: u32,
    #[serde(default)]
    pub kind: EntryKind,
    /// The sender (from the verified JWT, never from the client).
    pub user: String,
    /// The gateway and connection the `sent` ack goes back to.
    pub gw: String,
    pub conn: u64,
    pub client_id: String,
    pub to: Target,
    pub body: String,
    /// For an edit or delete: the seq of the message it applies to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_seq: Option<u64>,
    /// When the gateway read the frame (ms since the epoch), for the
    /// send-to-sent and send-to-delivered latency histograms.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub at: Option<i64>,
    /// The W3C traceparent of the gateway's `send` span (span export on).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trace: Option<String>,
    /// On a `member` entry: the membership event.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub member: Option<MemberEvent>,
}

/// An entry of the archive backlog: a stored message on its way to MongoDB.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ArchiveEntry {
    #[serde(default = "version_1")]
    pub v: u32,
    #[serde(flatten)]
    pub message: ChatMessage,
    /// On an edit or delete (stored without its body): its target's state
    /// with it applied, as chat-service decided it, for the archiver to
    /// store. Entries written before it existed have none; their event is
    /// applied to the archived target instead.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<ChatMessage>,
}

impl ArchiveEntry {
    /// The current version's JSON for `message` (and an event's `target`
    /// state), without copying them.
    pub fn json(message: &ChatMessage, target: Option<&ChatMessage>) -> serde_json::Result<String> {
        #[derive(Serialize)]
        struct Borrowed<'a> {
            v: u32,
            #[serde(flatten)]
            message: &'a ChatMessage,
            #[serde(skip_serializing_if = "Option::is_none")]
            target: Option<&'a ChatMessage>,
        }
        serde_json::to_string(&Borrowed {
            v: FORMAT_VERSION,
            message,
            target,
        })
    }
}

/// Field name of the JSON entry inside an ingress stream entry.
pub const INGRESS_FIELD: &str = "e";

/// The consumer group of chat-service's workers on the ingress stream.
pub const INGRESS_GROUP: &str = "chat-service";

/// Frames for some sockets of one gateway. A gateway channel carries a JSON
/// array of these. chat-service puts a batch's frames of one conversation in
/// one delivery, in seq order, so a gateway resolves a room's sockets once per
/// batch rather than once per message, and each connection gets the
/// conversation's frames (messages and its own acks) in seq order. Each frame
/// is serialized once and handed to every socket as is.
#[derive(Debug, Serialize, Deserialize)]
pub struct Delivery<'a> {
    #[serde(default = "version_1")]
    pub v: u32,
    /// The users whose sockets on this gateway get the frames without a `conn`.
    #[serde(default, borrow, skip_serializing_if = "Vec::is_empty")]
    pub users: Vec<Name<'a>>,
    /// The conversation its frames belong to, when they belong to one: a
    /// gateway then hands each socket a seq (or a read marker) once, however
    /// often a retried batch publishes it.
    #[serde(default, borrow, skip_serializing_if = "Option::is_none")]
    pub conversation: Option<Name<'a>>,
    #[serde(borrow)]
    pub frames: Vec<DeliveryFrame<'a>>,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct DeliveryFrame<'a> {
    /// For exactly this connection (acks and errors), whoever `users` are.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conn: Option<u64>,
    /// For every socket of `users` but this one (the sender's, which gets
    /// `sent` instead).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub skip_conn: Option<u64>,
    #[serde(borrow)]
    pub frame: &'a RawValue,
    /// When the message's send was read at its gateway (ms since the
    /// epoch), for the latency histograms of the gateway that delivers it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub at: Option<i64>,
    /// The W3C traceparent of the message's chat-service span (span export
    /// on), so the delivering gateway's span joins the message's trace.
    #[serde(default, borrow, skip_serializing_if = "Option::is_none")]
    pub trace: Option<&'a str>,
    /// A `message` frame's seq in the delivery's conversation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seq: Option<u64>,
    /// A `read` frame's marker in the delivery's conversation: a socket
    /// never gets a marker at or below one it got.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub read: Option<u64>,
}

/// Splits a delivery payload, `<n> <json>`, into the delivery number of the
/// gateway's channel and the JSON array of deliveries. A bare JSON array (a
/// chat-service from before numbering) has no number.
pub fn open_envelope(payload: &[u8]) -> (Option<u64>, &[u8]) {
    if payload.first() == Some(&b'[') {
        return (None, payload);
    }
    let Some(space) = payload.iter().position(|b| *b == b' ') else {
        return (None, payload);
    };
    let n = std::str::from_utf8(&payload[..space])
        .ok()
        .and_then(|s| s.parse().ok());
    (n, &payload[space + 1..])
}

/// A username in a delivery, borrowed from the payload when it can be (names
/// have no escapes), so a gateway allocates nothing per recipient.
#[derive(Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Name<'a>(#[serde(borrow)] pub Cow<'a, str>);

impl<'a> From<&'a str> for Name<'a> {
    fn from(name: &'a str) -> Self {
        Self(Cow::Borrowed(name))
    }
}

impl std::ops::Deref for Name<'_> {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0
    }
}
#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn envelopes_carry_a_number_or_are_bare() {
        assert_eq!(open_envelope(b"42 [1]"), (Some(42), &b"[1]"[..]));
        assert_eq!(open_envelope(b"[1]"), (None, &b"[1]"[..]));
        assert_eq!(open_envelope(b"x [1]"), (None, &b"[1]"[..]));
    }

    #[test]
    fn delivery_round_trips_with_frames_untouched_and_names_borrowed() {
        let frame = RawValue::from_string(r#"{"type":"pong"}"#.to_owned()).unwrap();
        let d = Delivery {
            v: FORMAT_VERSION,
            users: vec!["bob".into()],
            conversation: Some("dm:alice:bob".into()),
            frames: vec![DeliveryFrame {
                conn: None,
                skip_conn: Some(7),
                frame: &frame,
                at: None,
                trace: None,
                seq: Some(3),
                read: None,
            }],
        };
        let s = serde_json::to_string(&[&d]).unwrap();
        let back: Vec<Delivery<'_>> = serde_json::from_str(&s).unwrap();
        assert_eq!(back[0].frames[0].frame.get(), r#"{"type":"pong"}"#);
        assert_eq!(back[0].frames[0].skip_conn, Some(7));
        assert_eq!(&*back[0].users[0], "bob");
        assert!(matches!(back[0].users[0].0, Cow::Borrowed(_)));
        assert_eq!(back[0].conversation.as_deref(), Some("dm:alice:bob"));
        assert_eq!(back[0].frames[0].seq, Some(3));
    }
}
