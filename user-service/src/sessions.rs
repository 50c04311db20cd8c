//! Sessions: opened by a login, kept alive by refreshes, ended by a
//! revocation. The access token is a short JWT naming its session; the
//! refresh token (`<session id>.<secret>`) is opaque, kept only as the
//! SHA-256 of its secret, and replaced on every use. PostgreSQL is the
//! truth; every revocation is then announced through Redis
//! (`chat_redis::sessions`), which gateways and history-service consult.

use chat_redis::sessions::Revocations;
use chrono::{Duration, Utc};
use proto::user::v1 as user_pb;

use crate::{
    error::UserError,
    secrets::{hash, random_hex},
    session_store::{NewSession, Refreshed, SessionStore},
};

/// A device label's longest form; longer ones are cut.
pub const MAX_DEVICE: usize = 64;

/// The session settings (the README's table names each).
#[derive(Debug, Clone)]
pub struct Settings {
    pub token_ttl_secs: i64,
    pub refresh_ttl_secs: i64,
    pub max_sessions: i64,
}

#[derive(Clone)]
pub struct Sessions {
    store: SessionStore,
    revocations: Revocations,
    jwt_secret: String,
    settings: Settings,
}

impl Sessions {
    pub fn new(
        store: SessionStore,
        revocations: Revocations,
        jwt_secret: String,
        settings: Settings,
    ) -> Self {
        Self {
            store,
            revocations,
            jwt_secret,
            settings,
        }
    }

    pub fn store(&self) -> &SessionStore {
        &self.store
    }

    /// How far back a repeated "revoke all" announces again what it revoked:
    /// as long as a token of those sessions could be alive.
    pub fn recent_secs(&self) -> i64 {
        self.settings.token_ttl_secs + chat_redis::sessions::CLOCK_MARGIN_SECS as i64
    }

    /// Opens a session for `username`, whose password was checked.
    pub async fn open(
        &self,
        username: &str,
        device: &str,
        client_addr: &str,
    ) -> Result<user_pb::AuthenticateResponse, UserError> {
        let id = new_session_id();
        let (secret, hash) = new_secret();
        let refresh_expires_at = Utc::now() + Duration::seconds(self.settings.refresh_ttl_secs);
        let device: String = device
            .chars()
            .filter(|c| !c.is_control())
            .take(MAX_DEVICE)
            .collect();
        let evicted = self
            .store
            .create(NewSession {
                id: &id,
                username,
                device: device.trim(),
                client_addr,
                refresh_hash: &hash,
                refresh_expires_at,
                max_sessions: self.settings.max_sessions,
            })
            .await?;
        if let Err(e) = self.announce(&evicted).await {
            // The new session is fine; the evicted ones are revoked in
            // PostgreSQL and can no longer refresh.
            tracing::warn!(error = %e, "evicted sessions not announced");
        }
        self.answer(username, &id, &secret, refresh_expires_at)
    }

    /// Trades a refresh token for a new pair.
    pub async fn refresh(
        &self,
        token: &str,
        client_addr: &str,
    ) -> Result<user_pb::AuthenticateResponse, UserError> {
        let invalid = || UserError::Unauthenticated("invalid refresh token".into());
        let (id, secret) = token.split_once('.').ok_or_else(invalid)?;
        if !chat_model::ids::valid_session_id(id) || secret.len() != SECRET_HEX {
            return Err(invalid());
        }
        let (next, next_hash) = new_secret();
        let expires_at = Utc::now() + Duration::seconds(self.settings.refresh_ttl_secs);
        match self
            .store
            .refresh(id, &hash(secret), &next_hash, expires_at, client_addr)
            .await?
        {
            Refreshed::Rotated { username } => self.answer(&username, id, &next, expires_at),
            Refreshed::Reused => {
                tracing::warn!(session = id, "refresh token reused; session revoked");
                metrics::counter!("user_refresh_reuse_total").increment(1);
                self.announce(&[id.to_owned()]).await?;
                Err(UserError::Unauthenticated(
                    "refresh token already used: the session is revoked, log in again".into(),
                ))
            }
            Refreshed::Dead => Err(UserError::Unauthenticated(
                "the session is revoked or expired: log in again".into(),
            )),
            Refreshed::Unknown => Err(invalid()),
        }
    }

    /// Tells gateways and history-service that `revoked` are revoked. A
    /// failure is Unavailable: the revocation is committed, and repeating
    /// the call announces it again.
    pub async fn announce(&self, revoked: &[String]) -> Result<(), UserError> {
        self.revocations
            .revoke(revoked, self.settings.token_ttl_secs as u64)
            .await
            .map_err(|e| {
                UserError::Unavailable(format!(
                    "revoked, but not yet announced ({e}); repeat the call"
                ))
            })?;
        if !revoked.is_empty() {
            metrics::counter!("user_sessions_revoked_total").increment(revoked.len() as u64);
        }
        Ok(())
    }

    fn answer(
        &self,
        username: &str,
        id: &str,
        secret: &str,
        refresh_expires_at: chrono::DateTime<Utc>,
    ) -> Result<user_pb::AuthenticateResponse, UserError> {
        let (token, expires_at) =
            service_kit::jwt::issue(&self.jwt_secret, username, id, self.settings.token_ttl_secs)
                .map_err(|e| UserError::Internal(e.to_string()))?;
        Ok(user_pb::AuthenticateResponse {
            token,
            expires_at,
            username: username.to_owned(),
            refresh_token: format!("{id}.{secret}"),
            refresh_expires_at: refresh_expires_at.timestamp_millis(),
            session_id: id.to_owned(),
        })
    }
}

/// A refresh secret: 32 random bytes in hex.
const SECRET_HEX: usize = 64;

fn new_session_id() -> String {
    format!("{:032x}", rand::random::<u128>())
}

/// A new secret and its hash.
fn new_secret() -> (String, Vec<u8>) {
    let secret = random_hex::<{ SECRET_HEX / 2 }>();
    let hashed = hash(&secret);
    (secret, hashed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_and_secrets_are_well_formed_and_distinct() {
        let (a, ha) = new_secret();
        let (b, _) = new_secret();
        assert_eq!(a.len(), SECRET_HEX);
        assert_ne!(a, b);
        assert_eq!(ha, hash(&a));
        assert!(chat_model::ids::valid_session_id(&new_session_id()));
    }
}
