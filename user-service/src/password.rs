//! argon2id password hashing with bounded memory.
//!
//! Each hash needs 19 MiB of working memory. Left to the blocking pool (up to
//! 512 threads) a login burst ran hundreds at once, and the freed memory stayed
//! in the allocator's arenas: 19 GiB of RSS after 5,000 logins. Here at most
//! `HASH_CONCURRENCY` hashes run at once, each in one of as many buffers that
//! are allocated once and reused, so hashing holds `HASH_CONCURRENCY × 19 MiB`
//! whatever the load. Callers beyond `HASH_QUEUE` waiting are refused as busy
//! instead of piling up. Hashing runs on the blocking pool so logins never
//! stall the async workers.

use std::sync::{
    Arc, Mutex,
    atomic::{AtomicUsize, Ordering},
};

use argon2::{
    Algorithm, Argon2, Block, Params, Version,
    password_hash::{Output, PasswordHash, SaltString, rand_core::OsRng},
};
use tokio::sync::Semaphore;

use crate::error::UserError;

pub const MIN_PASSWORD: usize = 8;
pub const MAX_PASSWORD: usize = 128;

/// argon2id hash (default parameters) of a random password nobody knows.
const DUMMY_HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$CTFhFdXPJO1aFaMaO6Mm5c8y7cJHAph8ArZWb2GRPPc";

#[derive(Clone)]
pub struct Hasher(Arc<Inner>);

struct Inner {
    permits: Semaphore,
    /// Working memory, one buffer per permit, sized for the default params.
    buffers: Mutex<Vec<Vec<Block>>>,
    /// Callers running or waiting for a permit.
    in_flight: AtomicUsize,
    /// Most callers running or waiting at once.
    limit: usize,
}

/// One caller's place among those in flight.
struct InFlight<'a>(&'a AtomicUsize);

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

impl Hasher {
    /// `concurrency` hashes at once, `queue` more waiting.
    pub fn new(concurrency: usize, queue: usize) -> Self {
        Self(Arc::new(Inner {
            permits: Semaphore::new(concurrency),
            buffers: Mutex::new(Vec::new()),
            in_flight: AtomicUsize::new(0),
            limit: concurrency + queue,
        }))
    }

    /// A PHC string for `password` with a fresh salt.
    pub async fn hash(&self, password: String) -> Result<String, UserError> {
        self.run(move |memory| {
            let salt = SaltString::generate(&mut OsRng);
            let mut raw = [0u8; 64];
            let salt_bytes = salt
                .decode_b64(&mut raw)
                .map_err(|e| UserError::Internal(format!("salt: {e}")))?;
            let params = Params::default();
            let mut out = [0u8; Params::DEFAULT_OUTPUT_LEN];
            compute(&params, password.as_bytes(), salt_bytes, &mut out, memory)?;
            let output =
                Output::new(&out).map_err(|e| UserError::Internal(format!("output: {e}")))?;
            Ok(format!(
                "$argon2id$v=19$m={},t={},p={}${}${}",
                params.m_cost(),
                params.t_cost(),
                params.p_cost(),
                salt.as_str(),
                output
            ))
        })
        .await
    }

    /// Verifies `password` against `stored`. With no stored hash (unknown
    /// user) it still does the work of one verification, so timing does not
    /// reveal which usernames exist.
    pub async fn verify(
        &self,
        password: String,
        stored: Option<String>,
    ) -> Result<bool, UserError> {
        self.run(move |memory| {
            let known = stored.is_some();
            let stored = stored.unwrap_or_else(|| DUMMY_HASH.to_owned());
            let parsed = PasswordHash::new(&stored)
                .map_err(|e| UserError::Internal(format!("stored hash: {e}")))?;
            let params = Params::try_from(&parsed)
                .map_err(|e| UserError::Internal(format!("stored params: {e}")))?;
            let (Some(salt), Some(expected)) = (parsed.salt, parsed.hash) else {
                return Err(UserError::Internal(
                    "stored hash has no salt or output".into(),
                ));
            };
            let mut raw = [0u8; 64];
            let salt_bytes = salt
                .decode_b64(&mut raw)
                .map_err(|e| UserError::Internal(format!("stored salt: {e}")))?;
            let mut out = vec![0u8; expected.len()];
            compute(&params, password.as_bytes(), salt_bytes, &mut out, memory)?;
            let matches = service_kit::auth::constant_time_eq(&out, expected.as_bytes());
            Ok(matches && known)
        })
        .await
    }

    /// Runs `work` on the blocking pool with a permit and a reusable buffer.
    async fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce(&mut Vec<Block>) -> Result<T, UserError> + Send + 'static,
    ) -> Result<T, UserError> {
        let inner = &self.0;
        let _in_flight = InFlight(&inner.in_flight);
        if inner.in_flight.fetch_add(1, Ordering::AcqRel) >= inner.limit {
            metrics::counter!("user_hash_refused_total").increment(1);
            return Err(UserError::Busy("too many logins at once; try again".into()));
        }
        let _permit = inner
            .permits
            .acquire()
            .await
            .map_err(|_| UserError::Internal("hasher closed".into()))?;
        let this = self.clone();
        tokio::task::spawn_blocking(move || {
            let mut memory = this.take_buffer();
            let result = work(&mut memory);
            this.0
                .buffers
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push(memory);
            result
        })
        .await
        .map_err(|e| UserError::Internal(format!("hashing task: {e}")))?
    }

    fn take_buffer(&self) -> Vec<Block> {
        self.0
            .buffers
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .pop()
            .unwrap_or_else(|| vec![Block::default(); Params::default().block_count()])
    }
}

/// argon2id (v0x13) of `password` with `params` into `out`, in `memory`; a
/// stored hash with bigger params than the default grows the buffer once.
fn compute(
    params: &Params,
    password: &[u8],
    salt: &[u8],
    out: &mut [u8],
    memory: &mut Vec<Block>,
) -> Result<(), UserError> {
    let blocks = params.block_count();
    if memory.len() < blocks {
        memory.resize(blocks, Block::default());
    }
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params.clone())
        .hash_password_into_with_memory(password, salt, out, &mut memory[..blocks])
        .map_err(|e| UserError::Internal(format!("hashing: {e}")))
}

#[cfg(test)]
mod tests {
    use argon2::{PasswordHasher, PasswordVerifier};

    use super::*;

    #[tokio::test]
    async fn hashes_verify_and_wrong_passwords_do_not() {
        let hasher = Hasher::new(2, 16);
        let h = hasher.hash("correct horse".into()).await.unwrap();
        assert!(h.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"));
        assert!(
            hasher
                .verify("correct horse".into(), Some(h.clone()))
                .await
                .unwrap()
        );
        assert!(!hasher.verify("wrong horse!".into(), Some(h)).await.unwrap());
        assert!(!hasher.verify("anything".into(), None).await.unwrap());
    }

    #[tokio::test]
    async fn hashes_are_interchangeable_with_the_argon2_crate() {
        let hasher = Hasher::new(1, 4);
        // Ours verify with the crate's verifier...
        let ours = hasher.hash("correct horse".into()).await.unwrap();
        let parsed = PasswordHash::new(&ours).unwrap();
        assert!(
            Argon2::default()
                .verify_password(b"correct horse", &parsed)
                .is_ok()
        );
        // ...and hashes stored before this module verify with ours.
        let salt = SaltString::generate(&mut OsRng);
        let theirs = Argon2::default()
            .hash_password(b"battery staple", &salt)
            .unwrap()
            .to_string();
        assert!(
            hasher
                .verify("battery staple".into(), Some(theirs))
                .await
                .unwrap()
        );
    }

    #[tokio::test]
    async fn buffers_are_reused_not_multiplied() {
        let hasher = Hasher::new(2, 64);
        let work: Vec<_> = (0..8)
            .map(|i| {
                let hasher = hasher.clone();
                tokio::spawn(async move { hasher.hash(format!("password{i}")).await })
            })
            .collect();
        for w in work {
            w.await.unwrap().unwrap();
        }
        let buffers = hasher.0.buffers.lock().unwrap().len();
        assert!(buffers <= 2, "{buffers} buffers for 2 permits");
    }
}
