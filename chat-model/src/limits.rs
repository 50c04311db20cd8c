//! Protocol limits (docs/protocol.md, Limits) that more than one service checks (the
//! gateway at the edge, chat-service again because the stream is not trusted),
//! and internal call limits both sides must agree on.

/// Largest message body, in bytes of UTF-8.
pub const MAX_BODY: usize = 4096;
/// Longest `client_id`.
pub const MAX_CLIENT_ID: usize = 64;
/// The largest seq, marker or page bound a client may name: 2^53 - 1, the
/// largest integer a JavaScript client holds exactly (and far below what
/// MongoDB's signed 64-bit fields hold). Anything above is refused where it
/// enters, so no arithmetic on it can wrap.
pub const MAX_SEQ: u64 = (1 << 53) - 1;
/// Longest `ref` echoed back in an error.
pub const MAX_REF: usize = 64;
/// Entries kept in a dead-letter stream; older ones are trimmed (approximately)
/// so a flood of poison entries cannot grow Redis without bound.
pub const DEAD_LETTER_MAXLEN: u64 = 10_000;
/// Names one `GetUsers` call may ask about: user-service refuses more, and
/// chat-service asks in chunks of this size.
pub const MAX_GET_USERS: usize = 1000;
