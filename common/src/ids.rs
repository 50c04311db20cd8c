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

/// Room names: `[a-z0-9_-]{1,32}`.
pub fn valid_room_name(name: &str) -> bool {
    (1..=32).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
}

/// Where a `send` or `typing` goes: `room:<name>` or `user:<username>`.
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
            Self::Room(room) => ConversationId::Room(room.clone()),
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

/// A conversation: a room, or the direct messages between two users.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum ConversationId {
    Room(String),
    /// The two usernames, in ascending order.
    Dm(String, String),
}

impl ConversationId {
    pub fn dm(a: &str, b: &str) -> Self {
        if a <= b {
            Self::Dm(a.to_owned(), b.to_owned())
        } else {
            Self::Dm(b.to_owned(), a.to_owned())
        }
    }

    pub fn parse(s: &str) -> Result<Self, IdError> {
        if let Some(room) = s.strip_prefix("room:") {
            return if valid_room_name(room) {
                Ok(Self::Room(room.to_owned()))
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
            return Ok(Self::Dm(a.to_owned(), b.to_owned()));
        }
        Err(IdError::ConversationForm)
    }

    /// Whether `user` takes part in a DM; rooms need a membership lookup instead.
    pub fn dm_has(&self, user: &str) -> bool {
        matches!(self, Self::Dm(a, b) if a == user || b == user)
    }
}

impl fmt::Display for ConversationId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Room(r) => write!(f, "room:{r}"),
            Self::Dm(a, b) => write!(f, "dm:{a}:{b}"),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum IdError {
    #[error("usernames are 3 to 32 characters of a-z, 0-9 and _")]
    Username,
    #[error("room names are 1 to 32 characters of a-z, 0-9, _ and -")]
    RoomName,
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
    }
}
