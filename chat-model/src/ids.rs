//! Names and identifiers (docs/protocol.md, Conventions): usernames, room names,
//! send targets and conversation ids (`room:<name>`, `dm:<a>:<b>` with a < b).

use std::fmt;

/// Usernames: `[a-z0-9_]{3,32}`.
pub fn valid_username(name: &str) -> bool {
    (3..=32).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
}

/// Session ids: 128 random bits as 32 lowercase hex digits.
pub fn valid_session_id(id: &str) -> bool {
    id.len() == 32
        && id
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// Room names: `[a-z0-9_-]{1,32}`.
pub fn valid_room_name(name: &str) -> bool {
    (1..=32).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
}

/// [`valid_username`], with the rule as the error.
pub fn check_username(name: &str) -> Result<(), IdError> {
    if valid_username(name) {
        Ok(())
    } else {
        Err(IdError::Username)
    }
}

/// [`valid_room_name`], with the rule as the error.
pub fn check_room_name(name: &str) -> Result<(), IdError> {
    if valid_room_name(name) {
        Ok(())
    } else {
        Err(IdError::RoomName)
    }
}

/// An invite link's code: 32 lowercase hex digits (128 random bits).
pub fn check_invite_code(code: &str) -> Result<(), IdError> {
    if code.len() == 32 && code.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
        Ok(())
    } else {
        Err(IdError::InviteCode)
    }
}

/// Where a `send` or `typing` goes: `room:<name>` or `user:<username>`.
/// Parsed once, where it enters (the gateway); every later hop carries the
/// type, serialized in its text form.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Target {
    Room(String),
    User(String),
}

impl Target {
    pub fn parse(s: &str) -> Result<Self, IdError> {
        if let Some(room) = s.strip_prefix("room:") {
            if valid_room_name(room) {
                return Ok(Self::Room(room.to_owned()));
            }
            return Err(IdError::RoomName);
        }
        if let Some(user) = s.strip_prefix("user:") {
            if valid_username(user) {
                return Ok(Self::User(user.to_owned()));
            }
            return Err(IdError::Username);
        }
        Err(IdError::TargetForm)
    }

    /// The conversation a message from `sender` to this target belongs to.
    pub fn conversation(&self, sender: &str) -> ConversationId {
        match self {
            Self::Room(room) => ConversationId::room(room),
            Self::User(user) => ConversationId::dm(sender, user),
        }
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Room(r) => write!(f, "room:{r}"),
            Self::User(u) => write!(f, "user:{u}"),
        }
    }
}

/// A conversation: a room, or the direct messages between two users. It is
/// kept in its canonical text form (`room:<name>`, `dm:<a>:<b>` with a < b),
/// which is how it is keyed, sent and stored, so it is borrowed as a `&str`
/// for free; [`ConversationId::kind`] gives its parts.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ConversationId(String);

/// The parts of a [`ConversationId`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Conversation<'a> {
    Room(&'a str),
    /// The two usernames, in ascending order.
    Dm(&'a str, &'a str),
}

impl ConversationId {
    /// The conversation of room `name`, a valid room name.
    pub fn room(name: &str) -> Self {
        debug_assert!(valid_room_name(name), "invalid room name {name:?}");
        Self(format!("room:{name}"))
    }

    /// The DM between `a` and `b`, in either order.
    pub fn dm(a: &str, b: &str) -> Self {
        let (a, b) = if a <= b { (a, b) } else { (b, a) };
        Self(format!("dm:{a}:{b}"))
    }

    pub fn parse(s: &str) -> Result<Self, IdError> {
        if let Some(room) = s.strip_prefix("room:") {
            return if valid_room_name(room) {
                Ok(Self(s.to_owned()))
            } else {
                Err(IdError::RoomName)
            };
        }
        if let Some(pair) = s.strip_prefix("dm:") {
            let (a, b) = pair.split_once(':').ok_or(IdError::ConversationForm)?;
            if !valid_username(a) || !valid_username(b) {
                return Err(IdError::Username);
            }
            if a >= b {
                return Err(IdError::DmOrder);
            }
            return Ok(Self(s.to_owned()));
        }
        Err(IdError::ConversationForm)
    }

    pub fn kind(&self) -> Conversation<'_> {
        if let Some(room) = self.0.strip_prefix("room:") {
            return Conversation::Room(room);
        }
        let pair = self.0.strip_prefix("dm:").unwrap_or_default();
        let (a, b) = pair.split_once(':').unwrap_or_default();
        Conversation::Dm(a, b)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The room's name, for a room.
    pub fn room_name(&self) -> Option<&str> {
        self.0.strip_prefix("room:")
    }

    /// Whether `user` takes part in a DM; rooms need a membership lookup instead.
    pub fn dm_has(&self, user: &str) -> bool {
        matches!(self.kind(), Conversation::Dm(a, b) if a == user || b == user)
    }

    /// The target `user` writes to in this conversation: the room, or the
    /// other party of a DM (None when `user` is not a party).
    pub fn target_for(&self, user: &str) -> Option<Target> {
        match self.kind() {
            Conversation::Room(room) => Some(Target::Room(room.to_owned())),
            Conversation::Dm(a, b) if a == user => Some(Target::User(b.to_owned())),
            Conversation::Dm(a, b) if b == user => Some(Target::User(a.to_owned())),
            Conversation::Dm(..) => None,
        }
    }

    /// The other party of a DM `user` takes part in.
    pub fn peer_of(&self, user: &str) -> Option<&str> {
        match self.kind() {
            Conversation::Dm(a, b) if a == user => Some(b),
            Conversation::Dm(a, b) if b == user => Some(a),
            _ => None,
        }
    }
}

impl fmt::Display for ConversationId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl AsRef<str> for ConversationId {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl std::borrow::Borrow<str> for ConversationId {
    fn borrow(&self) -> &str {
        &self.0
    }
}

/// Both types cross every hop in their text form, and are parsed (so checked)
/// when read: an invalid one makes the whole record unreadable.
macro_rules! serde_as_text {
    ($t:ty) => {
        impl serde::Serialize for $t {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.collect_str(self)
            }
        }

        impl<'de> serde::Deserialize<'de> for $t {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let text = <std::borrow::Cow<'de, str>>::deserialize(d)?;
                Self::parse(&text).map_err(serde::de::Error::custom)
            }
        }
    };
}

serde_as_text!(Target);
serde_as_text!(ConversationId);

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum IdError {
    #[error("usernames are 3 to 32 characters of a-z, 0-9 and _")]
    Username,
    #[error("room names are 1 to 32 characters of a-z, 0-9, _ and -")]
    RoomName,
    #[error("an invite code is 32 lowercase hex digits")]
    InviteCode,
    #[error("a target is room:<name> or user:<username>")]
    TargetForm,
    #[error("a conversation id is room:<name> or dm:<a>:<b>")]
    ConversationForm,
    #[error("a dm conversation names its two users in ascending order")]
    DmOrder,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usernames() {
        assert!(valid_username("bob"));
        assert!(valid_username("alice_99"));
        assert!(!valid_username("al"));
        assert!(!valid_username("Alice"));
        assert!(!valid_username("a-b-c"));
        assert!(!valid_username(&"a".repeat(33)));
    }

    #[test]
    fn room_names() {
        assert!(valid_room_name("g"));
        assert!(valid_room_name("dev-ops_1"));
        assert!(!valid_room_name(""));
        assert!(!valid_room_name("Dev"));
        assert!(!valid_room_name("a b"));
    }

    #[test]
    fn targets_map_to_conversations() {
        let t = Target::parse("user:alice").unwrap();
        assert_eq!(t.conversation("bob").to_string(), "dm:alice:bob");
        let t = Target::parse("user:bob").unwrap();
        assert_eq!(t.conversation("alice").to_string(), "dm:alice:bob");
        let t = Target::parse("room:general").unwrap();
        assert_eq!(t.conversation("x").to_string(), "room:general");
        assert_eq!(Target::parse("bob"), Err(IdError::TargetForm));
        assert_eq!(Target::parse("user:B"), Err(IdError::Username));
    }

    #[test]
    fn conversation_ids_round_trip() {
        for s in ["room:general", "dm:alice:bob"] {
            assert_eq!(ConversationId::parse(s).unwrap().to_string(), s);
        }
        assert_eq!(ConversationId::parse("dm:bob:alice"), Err(IdError::DmOrder));
        assert_eq!(
            ConversationId::parse("chan:x"),
            Err(IdError::ConversationForm)
        );
        assert!(ConversationId::dm("bob", "alice").dm_has("alice"));
        assert_eq!(
            ConversationId::dm("bob", "alice").kind(),
            Conversation::Dm("alice", "bob")
        );
        assert_eq!(
            ConversationId::room("general").kind(),
            Conversation::Room("general")
        );
    }

    #[test]
    fn both_cross_the_wire_as_text_and_are_checked_when_read() {
        let c: ConversationId = serde_json::from_str(r#""dm:alice:bob""#).unwrap();
        assert_eq!(serde_json::to_string(&c).unwrap(), r#""dm:alice:bob""#);
        assert!(serde_json::from_str::<ConversationId>(r#""dm:bob:alice""#).is_err());
        let t: Target = serde_json::from_str(r#""user:bob""#).unwrap();
        assert_eq!(t, Target::User("bob".into()));
        assert_eq!(serde_json::to_string(&t).unwrap(), r#""user:bob""#);
        assert!(serde_json::from_str::<Target>(r#""bob""#).is_err());
    }
}
