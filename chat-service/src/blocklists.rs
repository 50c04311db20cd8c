//! Who blocked whom, without a user-service call per message: each user's
//! block list is cached with its version (bumped by user-service on every
//! block and unblock, read once per batch), like room member lists in
//! `members.rs`, so a block holds for every DM processed after the call
//! returned. A list is at most 1,000 names (user-service's bound).

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use proto::user::v1::{self as user_pb, user_service_client::UserServiceClient};
use service_kit::auth::InternalChannel;

use crate::members::{Unavailable, Version, cached, store};

/// Users per GetBlocks call (user-service's bound).
const PER_CALL: usize = 100;

/// How long a list is kept. Its version makes a change immediate, so this
/// only bounds how long a lost version bump (user-service logs it) could
/// leave a block unenforced; the version key lives a day, far longer. Most
/// users block nobody, and refetching every list at MEMBERSHIP_TTL_MS cost
/// user-service ~30 µs per DM at 1,000 random-pair DMs/s.
pub const TTL: Duration = Duration::from_secs(300);

#[derive(Clone)]
struct Versioned {
    version: Version,
    /// Sorted.
    blocked: Arc<[String]>,
}

#[derive(Clone)]
pub struct BlockLists {
    client: UserServiceClient<InternalChannel>,
    ttl: Duration,
    lists: Arc<Mutex<HashMap<String, (Instant, Versioned)>>>,
}

impl BlockLists {
    pub fn new(client: UserServiceClient<InternalChannel>) -> Self {
        Self {
            client,
            ttl: TTL,
            lists: Arc::default(),
        }
    }

    /// The lists of `users`, given their current versions: cached ones
    /// that are current, the rest fetched a hundred users per call.
    pub async fn lists(
        &self,
        users: &HashMap<String, Version>,
    ) -> Result<HashMap<String, Arc<[String]>>, Unavailable> {
        let mut out = HashMap::with_capacity(users.len());
        let mut wanted = Vec::new();
        for (user, version) in users {
            match cached(&self.lists, user, self.ttl) {
                Some(hit) if hit.version == *version => {
                    out.insert(user.clone(), hit.blocked);
                }
                _ if chat_model::ids::valid_username(user) => wanted.push(user.clone()),
                _ => {}
            }
        }
        wanted.sort_unstable();
        for chunk in wanted.chunks(PER_CALL) {
            metrics::counter!("chat_user_service_calls_total", "rpc" => "get_blocks").increment(1);
            let reply = self
                .client
                .clone()
                .get_blocks(user_pb::GetBlocksRequest {
                    usernames: chunk.to_vec(),
                })
                .await
                .map_err(Unavailable)?
                .into_inner();
            for list in reply.users {
                let mut blocked: Vec<String> =
                    list.blocked.into_iter().map(|b| b.username).collect();
                blocked.sort_unstable();
                let blocked: Arc<[String]> = blocked.into();
                let version = users.get(&list.username).copied().flatten();
                let entry = Versioned {
                    version,
                    blocked: blocked.clone(),
                };
                store(&self.lists, &list.username, entry, self.ttl);
                out.insert(list.username, blocked);
            }
        }
        Ok(out)
    }
}
