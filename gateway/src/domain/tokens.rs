//! User tokens: the JWTs user-service signs, checked here with the shared
//! secret (no call to user-service per request).

use service_kit::secret::Secret;

use super::Error;

#[derive(Clone)]
pub struct Tokens {
    secret: Secret,
}

impl Tokens {
    pub fn new(secret: Secret) -> Self {
        Self { secret }
    }

    /// The user a token names, if it is ours and not expired.
    pub fn verify(&self, token: &str) -> Result<String, Error> {
        service_kit::jwt::verify(self.secret.expose(), token)
            .map(|claims| claims.sub)
            .map_err(|e| Error::Unauthorized(e.to_string()))
    }
}
