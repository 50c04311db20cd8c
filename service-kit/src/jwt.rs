//! The access token: HS256 JWT signed with the shared `JWT_SECRET`, issued by
//! user-service and verified locally by every gateway.

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
}

#[derive(Debug, thiserror::Error)]
pub enum JwtError {
    #[error("token expired")]
    Expired,
    #[error("invalid token")]
    Invalid,
}

/// Issues a token for `username` valid for `ttl_secs`; returns it and its expiry
/// in Unix milliseconds.
pub fn issue(secret: &str, username: &str, ttl_secs: i64) -> Result<(String, i64), JwtError> {
    let now = chat_model::time::now_ms() / 1000;
    let claims = Claims {
        sub: username.to_owned(),
        iat: now,
        exp: now + ttl_secs,
    };
    let token = jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        &claims,
        &EncodingKey::from_secret(secret.as_bytes()),
    )
    .map_err(|_| JwtError::Invalid)?;
    Ok((token, claims.exp * 1000))
}

/// Verifies signature, algorithm and expiry (no leeway), and that the subject is
/// a well-formed username.
pub fn verify(secret: &str, token: &str) -> Result<Claims, JwtError> {
    let mut validation = Validation::new(Algorithm::HS256);
    validation.leeway = 0;
    validation.set_required_spec_claims(&["exp", "sub"]);
    let data = jsonwebtoken::decode::<Claims>(
        token,
        &DecodingKey::from_secret(secret.as_bytes()),
        &validation,
    )
    .map_err(|e| match e.kind() {
        jsonwebtoken::errors::ErrorKind::ExpiredSignature => JwtError::Expired,
        _ => JwtError::Invalid,
    })?;
    if !chat_model::ids::valid_username(&data.claims.sub) {
        return Err(JwtError::Invalid);
    }
    Ok(data.claims)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "0123456789abcdef0123";

    #[test]
    fn issued_tokens_verify() {
        let (token, exp) = issue(SECRET, "alice", 60).unwrap();
        assert!(exp > chat_model::time::now_ms());
        assert_eq!(verify(SECRET, &token).unwrap().sub, "alice");
    }

    #[test]
    fn other_secret_expired_and_garbage_are_refused() {
        let (token, _) = issue(SECRET, "alice", 60).unwrap();
        assert!(matches!(
            verify("another-secret-entirely", &token),
            Err(JwtError::Invalid)
        ));
        let (old, _) = issue(SECRET, "alice", -10).unwrap();
        assert!(matches!(verify(SECRET, &old), Err(JwtError::Expired)));
        assert!(matches!(verify(SECRET, "a.b.c"), Err(JwtError::Invalid)));
    }
}
