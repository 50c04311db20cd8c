//! The access token a session runs on: before it expires the client is
//! asked for a fresh one (`refresh`, answered by `auth`), and without one
//! the session is closed at expiry (4002).

use std::time::Duration;

use tokio::time::Instant;

/// The most a `refresh` comes ahead of the token's expiry; a shorter-lived
/// token is asked at two thirds of its remaining life.
const REFRESH_LEAD: Duration = Duration::from_secs(60);

pub struct Auth {
    pub expires_at: i64,
    pub expires: Instant,
    /// When to send `refresh`; None once sent.
    pub ask_at: Option<Instant>,
}

impl Auth {
    pub fn new(expires_at: i64) -> Self {
        let left = Duration::from_millis((expires_at - chat_model::time::now_ms()).max(0) as u64);
        let now = Instant::now();
        Self {
            expires_at,
            expires: now + left,
            ask_at: Some(now + left - REFRESH_LEAD.min(left / 3)),
        }
    }

    /// The next moment the session must act on its token.
    pub fn deadline(&self) -> Instant {
        self.ask_at.unwrap_or(self.expires)
    }
}
