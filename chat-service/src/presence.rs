//! Where users are online. Each gateway keeps a hash of its connected usernames
//! and a heartbeat in the `gateways` sorted set; a gateway whose heartbeat is
//! older than GATEWAY_TTL_MS is dead and its users count as offline. The set is
//! a hash of username → live socket count, so connects and disconnects commute.

use std::{
    collections::HashMap,
    time::{Duration, Instant},
};

use common::redis_conn::Redis;
use common::{keys::Keys, time::now_ms};

pub struct Presence {
    keys: Keys,
    ttl_ms: u64,
    alive: Option<(Instant, Vec<String>)>,
}

/// How long the list of live gateways is reused between lookups.
const ALIVE_CACHE: Duration = Duration::from_millis(500);

/// Where a conversation's recipients are.
#[derive(Debug, Default)]
pub struct Reach {
    /// Live gateway → the recipients with a socket on it.
    pub gateways: HashMap<String, Vec<String>>,
    /// The recipients with a socket on no live gateway.
    pub offline: Vec<String>,
}

/// For each conversation of a batch, where its recipients are.
pub type Online = HashMap<String, Reach>;

impl Presence {
    pub fn new(keys: Keys, ttl_ms: u64) -> Self {
        Self {
            keys,
            ttl_ms,
            alive: None,
        }
    }

    async fn alive_gateways(&mut self, conn: &mut Redis) -> redis::RedisResult<Vec<String>> {
        if let Some((at, gws)) = &self.alive
            && at.elapsed() < ALIVE_CACHE
        {
            return Ok(gws.clone());
        }
        let min = now_ms() - self.ttl_ms as i64;
        let gws: Vec<String> = redis::cmd("ZRANGE")
            .arg(self.keys.gateways())
            .arg(min)
            .arg("+inf")
            .arg("BYSCORE")
            .query_async(conn)
            .await?;
        self.alive = Some((Instant::now(), gws.clone()));
        Ok(gws)
    }

    /// Looks up, in one pipeline, which recipients of each conversation are
    /// online on which live gateway, and which are on none.
    pub async fn online<'a>(
        &mut self,
        conn: &mut Redis,
        conversations: impl IntoIterator<Item = (&'a str, &'a [String])>,
    ) -> redis::RedisResult<Online> {
        let gateways = self.alive_gateways(conn).await?;
        let conversations: Vec<(&str, &[String])> = conversations.into_iter().collect();
        let mut pipe = redis::pipe();
        for (_, recipients) in &conversations {
            if recipients.is_empty() {
                continue;
            }
            for gw in &gateways {
                pipe.cmd("HMGET")
                    .arg(self.keys.gateway_users(gw))
                    .arg(*recipients);
            }
        }
        let mut replies: std::vec::IntoIter<Vec<Option<i64>>> =
            if gateways.is_empty() || conversations.iter().all(|(_, r)| r.is_empty()) {
                Vec::new().into_iter()
            } else {
                pipe.query_async::<Vec<Vec<Option<i64>>>>(conn)
                    .await?
                    .into_iter()
            };
        let mut online = Online::new();
        for (conv, recipients) in conversations {
            let mut reach = Reach::default();
            let mut seen = vec![false; recipients.len()];
            if !recipients.is_empty() {
                for gw in &gateways {
                    let flags = replies.next().unwrap_or_default();
                    let here: Vec<String> = recipients
                        .iter()
                        .zip(flags)
                        .zip(seen.iter_mut())
                        .filter(|((_, n), _)| n.unwrap_or(0) > 0)
                        .map(|((user, _), seen)| {
                            *seen = true;
                            user.clone()
                        })
                        .collect();
                    if !here.is_empty() {
                        reach.gateways.insert(gw.clone(), here);
                    }
                }
            }
            reach.offline = recipients
                .iter()
                .zip(seen)
                .filter(|(_, seen)| !seen)
                .map(|(user, _)| user.clone())
                .collect();
            online.insert(conv.to_owned(), reach);
        }
        Ok(online)
    }
}
