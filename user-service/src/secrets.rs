//! Bearer secrets (refresh tokens, invite codes): random bytes in hex, kept
//! only as their SHA-256.

use std::fmt::Write;

use sha2::{Digest, Sha256};

/// `N` random bytes, as 2 × `N` lowercase hex digits.
pub fn random_hex<const N: usize>() -> String {
    rand::random::<[u8; N]>()
        .iter()
        .fold(String::with_capacity(2 * N), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
}

/// What is stored of a secret.
pub fn hash(secret: &str) -> Vec<u8> {
    Sha256::digest(secret.as_bytes()).to_vec()
}
