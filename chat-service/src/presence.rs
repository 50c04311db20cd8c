//! Where users are online. Each gateway keeps a hash of its connected usernames
//! and a heartbeat in the `gateways` sorted set; a gateway whose heartbeat is
//! older than GATEWAY_TTL_MS is dead and its users count as offline. The set is
//! a hash of username → live socket count, so connects and disconnects commute.

use std::{
    collections::HashMap,
    time::{Duration, Instant},
};

use common::{keys::Keys, time::now_ms};
use redis::aio::ConnectionManager;

pub struct Presence {
    keys: Keys,
    ttl_ms: u64,
    alive: Option<(Instant, Vec<String>)>,
}

/// How long the list of live gateways is reused between lookups.
const ALIVE_CACHE: Duration = Duration::from_millis(500);

/// For each conversation: gateway → the recipients online on it.
pub type Online = HashMap<String, HashMap<String, Vec<String>>>;

impl Presence {
    pub fn new(keys: Keys, ttl_ms: u64) -> Self {
        Self {
            keys,
            ttl_ms,
            alive: None,
        }
    }

    async fn alive_gateways(
        &mut self,
        conn: &mut ConnectionManager,
    ) -> redis::RedisResult<Vec<String>> {
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
    /// online on which live gateway.
    pub async fn online<'a>(
        &mut self,
        conn: &mut ConnectionManager,
        conversations: impl IntoIterator<Item = (&'a str, &'a [String])>,
    ) -> redis::RedisResult<Online> {
        let gateways = self.alive_gateways(conn).await?;
        let mut online = Online::new();
        if gateways.is_empty() {
            return Ok(online);
        }
        let mut pipe = redis::pipe();
        let mut asked = Vec::new();
        for (conv, recipients) in conversations {
            if recipients.is_empty() {
                continue;
            }
            for gw in &gateways {
                pipe.cmd("HMGET")
                    .arg(self.keys.gateway_users(gw))
                    .arg(recipients);
                asked.push((conv, gw.as_str(), recipients));
            }
        }
        if asked.is_empty() {
            return Ok(online);
        }
        let replies: Vec<Vec<Option<i64>>> = pipe.query_async(conn).await?;
        for ((conv, gw, recipients), flags) in asked.into_iter().zip(replies) {
            let here: Vec<String> = recipients
                .iter()
                .zip(flags)
                .filter(|(_, n)| n.unwrap_or(0) > 0)
                .map(|(user, _)| user.clone())
                .collect();
            if !here.is_empty() {
                online
                    .entry(conv.to_owned())
                    .or_default()
                    .insert(gw.to_owned(), here);
            }
        }
        Ok(online)
    }
}
