//! Reading presence: where a conversation's recipients are (chat-service,
//! per batch), and who of a list is online anywhere (the gateways' REST view).

use std::{
    collections::HashMap,
    time::{Duration, Instant},
};

use crate::{connection::Redis, keys::Keys};

use chat_model::time::now_ms;

#[derive(Clone)]
pub struct Lookup {
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
pub type Whereabouts = HashMap<String, Reach>;

impl Lookup {
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
    /// online on which live gateway, and which are on none. One HMGET per
    /// gateway for the batch's distinct recipients, not one per
    /// (conversation, gateway): a batch of DMs to new partners used to cost
    /// two commands per message.
    pub async fn online<'a>(
        &mut self,
        conn: &mut Redis,
        conversations: impl IntoIterator<Item = (&'a str, &'a [String])>,
    ) -> redis::RedisResult<Whereabouts> {
        let gateways = self.alive_gateways(conn).await?;
        let conversations: Vec<(&str, &[String])> = conversations.into_iter().collect();
        let mut index: HashMap<&str, usize> = HashMap::new();
        let mut users: Vec<&str> = Vec::new();
        for user in conversations.iter().flat_map(|(_, r)| r.iter()) {
            index.entry(user.as_str()).or_insert_with(|| {
                users.push(user);
                users.len() - 1
            });
        }
        // here[g][i]: user i has a socket on gateway g.
        let here: Vec<Vec<bool>> = if gateways.is_empty() || users.is_empty() {
            Vec::new()
        } else {
            let mut pipe = redis::pipe();
            for gw in &gateways {
                pipe.cmd("HMGET")
                    .arg(self.keys.gateway_users(gw))
                    .arg(&users);
            }
            pipe.query_async::<Vec<Vec<Option<i64>>>>(conn)
                .await?
                .into_iter()
                .map(|counts| counts.into_iter().map(|n| n.unwrap_or(0) > 0).collect())
                .collect()
        };
        let mut online = Whereabouts::new();
        for (conv, recipients) in conversations {
            let mut reach = Reach::default();
            let mut seen = vec![false; recipients.len()];
            for (gw, flags) in gateways.iter().zip(&here) {
                let on: Vec<String> = recipients
                    .iter()
                    .zip(seen.iter_mut())
                    .filter(|(user, _)| flags.get(index[user.as_str()]).copied().unwrap_or(false))
                    .map(|(user, seen)| {
                        *seen = true;
                        user.clone()
                    })
                    .collect();
                if !on.is_empty() {
                    reach.gateways.insert(gw.clone(), on);
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

    /// Which of `users` have a socket on any live gateway.
    pub async fn any_online(
        &mut self,
        conn: &mut Redis,
        users: &[String],
    ) -> redis::RedisResult<Vec<bool>> {
        let mut online = vec![false; users.len()];
        if users.is_empty() {
            return Ok(online);
        }
        let gateways = self.alive_gateways(conn).await?;
        if gateways.is_empty() {
            return Ok(online);
        }
        let mut pipe = redis::pipe();
        for gw in &gateways {
            pipe.cmd("HMGET")
                .arg(self.keys.gateway_users(gw))
                .arg(users);
        }
        let replies: Vec<Vec<Option<i64>>> = pipe.query_async(conn).await?;
        for counts in replies {
            for (flag, count) in online.iter_mut().zip(counts) {
                *flag |= count.unwrap_or(0) > 0;
            }
        }
        Ok(online)
    }
}
