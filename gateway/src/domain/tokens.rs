//! Access tokens: the JWTs user-service signs, checked here with the shared
//! secret, and their sessions against the deny-list of revoked sessions in
//! Redis (`chat_redis::sessions`): a signed-out device's token is refused
//! at once, not when it expires.

use chat_redis::sessions::Revocations;
use service_kit::secret::Secret;

use super::Error;

/// Who a verified token speaks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    pub user: String,
    pub session: String,
    /// When the token expires, Unix milliseconds.
    pub expires_at: i64,
}

#[derive(Clone)]
pub struct Tokens {
    secret: Secret,
    revocations: Revocations,
}

impl Tokens {
    pub fn new(secret: Secret, revocations: Revocations) -> Self {
        Self {
            secret,
            revocations,
        }
    }

    /// The identity a token names, if it is ours, unexpired, and its
    /// session is not revoked. Fails closed: if the deny-list cannot be
    /// read, the token is not accepted.
    pub async fn authenticate(&self, token: &str) -> Result<Identity, Error> {
        let identity = self.verify(token)?;
        self.check_live(&identity.session).await?;
        Ok(identity)
    }

    /// Signature and expiry only: for a caller that checks the session
    /// itself.
    pub fn verify(&self, token: &str) -> Result<Identity, Error> {
        service_kit::jwt::verify(self.secret.expose(), token)
            .map(|claims| Identity {
                expires_at: claims.expires_at_ms(),
                user: claims.sub,
                session: claims.sid,
            })
            .map_err(|e| Error::Unauthorized(e.to_string()))
    }

    /// Unauthorized if `session` is revoked.
    pub async fn check_live(&self, session: &str) -> Result<(), Error> {
        if self
            .revocations
            .is_revoked(session)
            .await
            .map_err(Error::redis("reading revoked sessions"))?
        {
            return Err(Error::Unauthorized("session revoked".into()));
        }
        Ok(())
    }

    pub fn revocations(&self) -> &Revocations {
        &self.revocations
    }
}
