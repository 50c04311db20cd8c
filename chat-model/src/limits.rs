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

/// A `client_id` within its limits, or what to tell the client: the one
/// rule and the one message, at the gateway and in chat-service.
pub fn check_client_id(client_id: &str) -> Result<(), String> {
    if client_id.is_empty() || client_id.len() > MAX_CLIENT_ID {
        return Err(format!("client_id must be 1 to {MAX_CLIENT_ID} bytes"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_message_names_the_limit() {
        assert!(check_client_id("c1").is_ok());
        assert_eq!(
            check_client_id(&"x".repeat(MAX_CLIENT_ID + 1)).unwrap_err(),
            format!("client_id must be 1 to {MAX_CLIENT_ID} bytes")
        );
        assert!(check_client_id("").is_err());
    }
}
