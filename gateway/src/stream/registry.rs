//! The streams this gateway holds, and how a POST reaches one from any
//! gateway. Each stream has a connection token, `<gateway>.<id>.<mac>`,
//! handed to its client in the stream's first event: it names the gateway
//! that holds the stream, so a POST to any gateway knows where its frames
//! go without a lookup, and its MAC (HMAC-SHA256 of gateway, id and user,
//! keyed from the JWT secret every gateway holds) lets any gateway refuse a
//! POST whose user is not the stream's before forwarding anything. Frames
//! for a stream held here go to its session's inbound queue; frames for
//! another gateway's are published on that gateway's sharded inbound
//! channel (`forward.rs`), which it hands to the session the same way.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
};

use chat_redis::{connection::Redis, keys::Keys};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use tokio::sync::mpsc;

use crate::domain::Error;

/// Client frames a stream's session may have waiting.
pub const INBOUND_FRAMES: usize = 64;

/// What a POST's frames met.
#[derive(Debug, PartialEq, Eq)]
pub enum Handed {
    Queued(usize),
    /// No such stream (ended, or never here).
    Unknown,
    /// The stream is another user's, or the token is forged.
    NotYours,
    /// Its session has [`INBOUND_FRAMES`] waiting: the client must slow down.
    Full,
}

struct Entry {
    user: Arc<str>,
    frames: mpsc::Sender<String>,
}

/// Frames published to another gateway for one of its streams, from a
/// user whose token MAC the publishing gateway checked.
#[derive(Serialize, Deserialize)]
pub struct Forward {
    pub conn: u64,
    pub user: String,
    pub frames: Vec<String>,
    /// Instead of frames: the long-poll connection `conn` of this holder
    /// gateway has new frames; wake its polls waiting here (`wake.rs`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wake: Option<String>,
}

#[derive(Clone)]
pub struct Streams(Arc<Inner>);

struct Inner {
    gateway: String,
    held: Mutex<HashMap<u64, Entry>>,
    /// Long-polls waiting on this gateway.
    waiters: super::wake::Waiters,
    redis: Redis,
    keys: Keys,
    /// The MAC key: the same on every gateway.
    key: [u8; 32],
}

/// A stream's place in the registry; dropping it removes the stream.
pub struct Registration {
    streams: Streams,
    id: u64,
    user: String,
}

impl Registration {
    pub fn id(&self) -> u64 {
        self.id
    }

    /// The connection token its client POSTs to.
    pub fn token(&self) -> String {
        let gateway = &self.streams.0.gateway;
        let mac = self.streams.mac(gateway, self.id, &self.user);
        format!("{gateway}.{:x}.{mac}", self.id)
    }
}

impl Drop for Registration {
    fn drop(&mut self) {
        let mut held = self
            .streams
            .0
            .held
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        held.remove(&self.id);
    }
}

/// A parsed connection token.
struct Token<'a> {
    gateway: &'a str,
    id: u64,
    mac: &'a str,
}

fn parse(token: &str) -> Option<Token<'_>> {
    let mut parts = token.rsplitn(3, '.');
    let mac = parts.next().filter(|m| m.len() == 32)?;
    let id = u64::from_str_radix(parts.next()?, 16).ok()?;
    let gateway = parts.next().filter(|g| !g.is_empty())?;
    Some(Token { gateway, id, mac })
}

/// HMAC-SHA256 (RFC 2104) of `message` under a 32-byte `key`.
fn hmac(key: &[u8; 32], message: &[u8]) -> [u8; 32] {
    let mut block = [0u8; 64];
    block[..32].copy_from_slice(key);
    let inner = Sha256::new()
        .chain_update(block.map(|b| b ^ 0x36))
        .chain_update(message)
        .finalize();
    Sha256::new()
        .chain_update(block.map(|b| b ^ 0x5c))
        .chain_update(inner)
        .finalize()
        .into()
}

impl Streams {
    /// `secret`: the JWT secret, which every gateway holds; the MAC key is
    /// derived from it.
    pub fn new(gateway: String, secret: &str, redis: Redis, keys: Keys) -> Self {
        let key: [u8; 32] = Sha256::new()
            .chain_update(b"chat stream tokens\0")
            .chain_update(secret.as_bytes())
            .finalize()
            .into();
        Self(Arc::new(Inner {
            gateway,
            held: Mutex::default(),
            waiters: super::wake::Waiters::default(),
            redis,
            keys,
            key,
        }))
    }

    /// The MAC of a stream's token: 16 bytes in hex.
    fn mac(&self, gateway: &str, id: u64, user: &str) -> String {
        let mac = hmac(&self.0.key, format!("{gateway}.{id:x}.{user}").as_bytes());
        mac[..16].iter().map(|b| format!("{b:02x}")).collect()
    }

    /// Registers a stream of `user` whose session reads `frames`.
    pub fn register(&self, user: &str, frames: mpsc::Sender<String>) -> Registration {
        let id = rand::random::<u64>();
        let mut held = self.0.held.lock().unwrap_or_else(|e| e.into_inner());
        held.insert(
            id,
            Entry {
                user: Arc::from(user),
                frames,
            },
        );
        Registration {
            streams: self.clone(),
            id,
            user: user.to_owned(),
        }
    }

    /// The (gateway, id) of `token` if its MAC says it is `user`'s;
    /// Err(Unknown) for a string that is no token, Err(NotYours) for a
    /// forged one or another user's.
    pub fn check<'a>(&self, token: &'a str, user: &str) -> Result<(&'a str, u64), Handed> {
        let t = parse(token).ok_or(Handed::Unknown)?;
        let expected = self.mac(t.gateway, t.id, user);
        if !service_kit::auth::constant_time_eq(expected.as_bytes(), t.mac.as_bytes()) {
            return Err(Handed::NotYours);
        }
        Ok((t.gateway, t.id))
    }

    pub fn waiters(&self) -> &super::wake::Waiters {
        &self.0.waiters
    }

    /// Wakes the polls of connection (holder, `id`) waiting on `gateway`:
    /// here, or through that gateway's inbound channel. Best effort.
    pub async fn wake(&self, gateway: &str, holder: &str, id: u64) {
        if gateway == self.0.gateway {
            self.0.waiters.wake(holder, id);
            return;
        }
        let wake = Forward {
            conn: id,
            user: String::new(),
            frames: Vec::new(),
            wake: Some(holder.to_owned()),
        };
        let mut redis = self.0.redis.clone();
        let _: redis::RedisResult<i64> = redis::cmd("SPUBLISH")
            .arg(self.0.keys.gateway_inbound(gateway))
            .arg(serde_json::to_string(&wake).unwrap_or_default())
            .query_async(&mut redis)
            .await;
    }

    pub fn redis(&self) -> &Redis {
        &self.0.redis
    }

    pub fn keys(&self) -> &Keys {
        &self.0.keys
    }

    pub fn gateway(&self) -> &str {
        &self.0.gateway
    }

    /// Whether `gateway` is up: it is while it holds the subscription its
    /// forwarded frames arrive on (a killed gateway's subscription ends
    /// with its Redis connection, at once). This gateway always is.
    pub async fn holder_alive(&self, gateway: &str) -> Result<bool, Error> {
        if gateway == self.0.gateway {
            return Ok(true);
        }
        let channel = self.0.keys.gateway_inbound(gateway);
        let mut redis = self.0.redis.clone();
        // On a cluster every node answers and the counts are summed.
        let counts: std::collections::HashMap<String, i64> = redis::cmd("PUBSUB")
            .arg("SHARDNUMSUB")
            .arg(&channel)
            .query_async(&mut redis)
            .await
            .map_err(Error::redis("asking whether a stream's gateway is up"))?;
        Ok(counts.get(&channel).copied().unwrap_or(0) > 0)
    }

    /// Hands `frames` from `user` to the stream `token` names, here or on
    /// the gateway that holds it.
    pub async fn hand(
        &self,
        token: &str,
        user: &str,
        frames: Vec<String>,
    ) -> Result<Handed, Error> {
        let (gateway, id) = match self.check(token, user) {
            Ok(found) => found,
            Err(refused) => return Ok(refused),
        };
        let t = Token {
            gateway,
            id,
            mac: "",
        };
        if t.gateway == self.0.gateway {
            return Ok(self.hand_here(t.id, user, frames));
        }
        let count = frames.len();
        let forward = Forward {
            conn: t.id,
            user: user.to_owned(),
            frames,
            wake: None,
        };
        let mut redis = self.0.redis.clone();
        let heard: i64 = redis::cmd("SPUBLISH")
            .arg(self.0.keys.gateway_inbound(t.gateway))
            .arg(serde_json::to_string(&forward).unwrap_or_default())
            .query_async(&mut redis)
            .await
            .map_err(Error::redis("forwarding frames to a stream's gateway"))?;
        metrics::counter!("gateway_stream_frames_forwarded_total").increment(count as u64);
        // Nobody listening: that gateway is gone, and its streams with it.
        // (A stream that ended on a live gateway takes the frames and drops
        // them: its client sees the stream's end anyway.)
        Ok(if heard > 0 {
            Handed::Queued(count)
        } else {
            Handed::Unknown
        })
    }

    /// Hands frames to a stream held here. The user is checked again on
    /// the holder, so a forwarded POST meets the same rules as a local one.
    pub fn hand_here(&self, id: u64, user: &str, frames: Vec<String>) -> Handed {
        let held = self.0.held.lock().unwrap_or_else(|e| e.into_inner());
        let Some(entry) = held.get(&id) else {
            return Handed::Unknown;
        };
        if &*entry.user != user {
            return Handed::NotYours;
        }
        if entry.frames.capacity() < frames.len() {
            return Handed::Full;
        }
        let count = frames.len();
        for frame in frames {
            // Capacity was checked under the registry's lock, and only
            // POSTs (through here) send.
            if entry.frames.try_send(frame).is_err() {
                return Handed::Full;
            }
        }
        Handed::Queued(count)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_name_their_gateway_even_with_dots_in_it() {
        let mac = "0".repeat(32);
        let token = format!("gw-1.example.com.ff.{mac}");
        let t = parse(&token).unwrap();
        assert_eq!((t.gateway, t.id), ("gw-1.example.com", 255));
        for bad in ["", "a.b", "gw.zz.00", &format!(".1.{mac}"), "gw.1.short"] {
            assert!(parse(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn the_mac_is_hmac_sha256() {
        // Python: hmac.new(bytes([0x0b] * 32), b"Hi There", hashlib.sha256)
        let mac = hmac(&[0x0b; 32], b"Hi There");
        let hex: String = mac.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(
            hex,
            "198a607eb44bfbc69903a0f1cf2bbdc5ba0aa3f3d9ae3c1c7a3b1696a0b68cf7"
        );
    }
}
