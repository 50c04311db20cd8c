//! WebSocket close codes the gateway uses (documented in docs/protocol.md).

/// A silent connection past IDLE_TIMEOUT_MS.
pub const IDLE: (u16, &str) = (4000, "idle timeout");
/// The socket's session was signed out (logout, revoke, password change,
/// account deletion): do not reconnect with the same tokens.
pub use crate::delivery::revocations::CLOSE as REVOKED;
/// The socket's access token expired without an `auth` frame bringing a
/// fresh one: refresh, then reconnect.
pub const TOKEN_EXPIRED: (u16, &str) = (4002, "token expired");
/// The outbound queue filled up: the client stopped reading.
pub const SLOW_CONSUMER: (u16, &str) = (4008, "slow consumer");
/// Gateway shutdown: reconnect elsewhere.
pub const RESTART: (u16, &str) = (1012, "service restart");
/// Too many bad or rate-limited frames in a row.
pub const POLICY: (u16, &str) = (1008, "too many bad frames");
/// A frame over the hard limit (4 × MAX_FRAME_BYTES).
pub const TOO_BIG: (u16, &str) = (1009, "frame too large");
/// The client closed, or the session ended normally.
pub const NORMAL: (u16, &str) = (1000, "bye");

/// Whether a read failed because the client's frame or message was over the
/// hard limit: told by the WebSocket library's error type, never its text.
pub fn is_too_big(error: axum::Error) -> bool {
    matches!(
        error.into_inner().downcast_ref::<tungstenite::Error>(),
        Some(tungstenite::Error::Capacity(_))
    )
}
