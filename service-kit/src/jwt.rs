//! The access token: HS256 JWT signed with the shared `JWT_SECRET`, issued by
//! user-service and verified locally by every gateway. It names its session
//! (`sid`): a revoked session's tokens are refused before they expire
//! (`chat_redis::sessions`). A token without one (issued before sessions
//! existed) is invalid.

use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Claims {
    /// The username.
    pub sub: String,
    /// Issued at, Unix seconds.
    pub iat: i64,
    /// Expiry, Unix seconds.
    pub exp: i64,
    /// The session, 32 hex digits.
    pub sid: String,
}

impl Claims {
    /// Expiry in Unix milliseconds.
    pub fn expires_at_ms(&self) -> i64 {
        self.exp.saturating_mul(1000)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum JwtError {
    #[error("token expired")]
    Expired,
    #[error("invalid token")]
    Invalid,
}

/// Issues a token for `username` in session `sid`, valid for `ttl_secs`;
/// returns it and its expiry in Unix milliseconds.
pub fn issue(
    secret: &str,
    username: &str,
    sid: &str,
    ttl_secs: i64,
) -> Result<(String, i64), JwtError> {
    let now = chat_model::time::now_ms() / 1000;
    let claims = Claims {
        sub: username.to_owned(),
        iat: now,
        exp: now + ttl_secs,
        sid: sid.to_owned(),
    };
    let token = jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        &claims,
        &EncodingKey::from_secret(secret.as_bytes()),
    )
    .map_err(|_| JwtError::Invalid)?;
    Ok((token, claims.exp * 1000))
}

/// Verifies signature, algorithm and expiry (no leeway), that the subject is
/// a well-formed username and that the token names a well-formed session.
pub fn verify(secret: &str, token: &str) -> Result<Claims, JwtError> {
    let mut validation = Validation::new(Algorithm::HS256);
    validation.leeway = 0;
    validation.set_required_spec_claims(&["exp", "sub"]);
    // `sid` is required by `Claims` itself: a token without one fails to decode.
    let data = jsonwebtoken::decode::<Claims>(
        token,
        &DecodingKey::from_secret(secret.as_bytes()),
        &validation,
    )
    .map_err(|e| match e.kind() {
        jsonwebtoken::errors::ErrorKind::ExpiredSignature => JwtError::Expired,
        _ => JwtError::Invalid,
    })?;
    if !chat_model::ids::valid_username(&data.claims.sub)
        || !chat_model::ids::valid_session_id(&data.claims.sid)
    {
        return Err(JwtError::Invalid);
    }
    Ok(data.claims)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "0123456789abcdef0123";
    const SID: &str = "0123456789abcdef0123456789abcdef";

    #[test]
    fn issued_tokens_verify() {
        let (token, exp) = issue(SECRET, "alice", SID, 60).unwrap();
        assert!(exp > chat_model::time::now_ms());
        let claims = verify(SECRET, &token).unwrap();
        assert_eq!((claims.sub.as_str(), claims.sid.as_str()), ("alice", SID));
    }

    #[test]
    fn a_token_without_a_session_is_refused() {
        // What user-service issued before sessions existed.
        #[derive(Serialize)]
        struct Old<'a> {
            sub: &'a str,
            iat: i64,
            exp: i64,
        }
        let now = chat_model::time::now_ms() / 1000;
        let old = jsonwebtoken::encode(
            &Header::new(Algorithm::HS256),
            &Old {
                sub: "alice",
                iat: now,
                exp: now + 60,
            },
            &EncodingKey::from_secret(SECRET.as_bytes()),
        )
        .unwrap();
        assert!(matches!(verify(SECRET, &old), Err(JwtError::Invalid)));
        let (bad_sid, _) = issue(SECRET, "alice", "not-hex", 60).unwrap();
        assert!(matches!(verify(SECRET, &bad_sid), Err(JwtError::Invalid)));
    }

    #[test]
    fn other_secret_expired_and_garbage_are_refused() {
        let (token, _) = issue(SECRET, "alice", SID, 60).unwrap();
        assert!(matches!(
            verify("another-secret-entirely", &token),
            Err(JwtError::Invalid)
        ));
        let (old, _) = issue(SECRET, "alice", SID, -10).unwrap();
        assert!(matches!(verify(SECRET, &old), Err(JwtError::Expired)));
        assert!(matches!(verify(SECRET, "a.b.c"), Err(JwtError::Invalid)));
    }
}
