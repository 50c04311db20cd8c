//! Who may post where, without a user-service call per message. Room member
//! lists are cached with the room's membership version (bumped by user-service
//! on every join and leave, read once per batch): a cached list is used only
//! while its version is current, so a change is enforced for every send
//! processed after the join or leave returned. MEMBERSHIP_TTL_MS bounds the
//! staleness if a version bump was lost. User existence is cached for that
//! time too, so a deleted account stops taking DMs within it.

use std::{
    collections::{HashMap, HashSet},
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use proto::user::v1::{self as user_pb, user_service_client::UserServiceClient};
use service_kit::auth::InternalChannel;
use tonic::Code;

/// A room's members, sorted; None when the room does not exist.
pub type RoomMembers = Option<Arc<[String]>>;

/// A room's membership version as Redis holds it (None: never changed).
pub type Version = Option<i64>;

/// What the per-message checks need of one member.
#[derive(Clone, Copy, Default)]
struct MemberFlags {
    /// The owner or an admin: may delete any message, is spared slow mode.
    moderator: bool,
    /// Muted until then (Unix ms; 0: not muted).
    muted_until: i64,
}

#[derive(Clone)]
struct Versioned {
    version: Version,
    /// The fan-out list, sorted.
    members: RoomMembers,
    /// Every member, for the checks each message makes: one hash lookup,
    /// however big the room.
    index: Arc<HashMap<String, MemberFlags>>,
    /// A private room answers a stranger as if it did not exist.
    private: bool,
    /// Slow mode (ms; 0: off).
    slow_ms: u64,
}

/// What a user may do in a room, as its cached member list says.
#[derive(Debug, PartialEq, Eq)]
pub enum Standing {
    /// No such room, or a private one the user is not in.
    NoRoom,
    NotMember,
    /// Muted until then (Unix ms).
    Muted(i64),
    Member(Arc<[String]>),
}

/// user-service did not answer a membership question.
#[derive(Debug, thiserror::Error)]
#[error("user-service answered {code:?}", code = .0.code())]
pub struct Unavailable(#[source] pub tonic::Status);

#[derive(Clone)]
pub struct Members {
    client: UserServiceClient<InternalChannel>,
    ttl: Duration,
    rooms: Arc<Mutex<HashMap<String, (Instant, Versioned)>>>,
    users: Arc<Mutex<HashMap<String, (Instant, bool)>>>,
}

/// Entries per cache; see [`store`] for how a full one makes room.
const MAX_ENTRIES: usize = 100_000;

impl Members {
    pub fn new(client: UserServiceClient<InternalChannel>, ttl: Duration) -> Self {
        Self {
            client,
            ttl,
            rooms: Arc::default(),
            users: Arc::default(),
        }
    }

    /// The members of `room`, given its current membership `version`.
    pub async fn room(&self, room: &str, version: Version) -> Result<RoomMembers, Unavailable> {
        Ok(self.fetch(room, version).await?.members)
    }

    /// Where `user` stands in `room` at `now_ms`, given the room's current
    /// membership `version`; with the members when they may post.
    pub async fn standing(
        &self,
        room: &str,
        version: Version,
        user: &str,
        now_ms: i64,
    ) -> Result<Standing, Unavailable> {
        let room = self.fetch(room, version).await?;
        let Some(members) = room.members else {
            return Ok(Standing::NoRoom);
        };
        let Some(me) = room.index.get(user) else {
            return Ok(if room.private {
                Standing::NoRoom
            } else {
                Standing::NotMember
            });
        };
        if me.muted_until > now_ms {
            return Ok(Standing::Muted(me.muted_until));
        }
        Ok(Standing::Member(members))
    }

    /// The slow-mode interval (ms) that holds for `user`'s messages in
    /// `room`: None when it is off, or `user` moderates the room.
    pub async fn slow_mode_ms(
        &self,
        room: &str,
        version: Version,
        user: &str,
    ) -> Result<Option<u64>, Unavailable> {
        let room = self.fetch(room, version).await?;
        let moderator = room.index.get(user).is_some_and(|m| m.moderator);
        Ok((room.slow_ms > 0 && !moderator).then_some(room.slow_ms))
    }

    /// Whether `user` moderates `room` (may delete anyone's message there).
    pub async fn is_moderator(
        &self,
        room: &str,
        version: Version,
        user: &str,
    ) -> Result<bool, Unavailable> {
        let room = self.fetch(room, version).await?;
        Ok(room.index.get(user).is_some_and(|m| m.moderator))
    }

    async fn fetch(&self, room: &str, version: Version) -> Result<Versioned, Unavailable> {
        if let Some(hit) = cached(&self.rooms, room, self.ttl)
            && hit.version == version
        {
            return Ok(hit);
        }
        metrics::counter!("chat_user_service_calls_total", "rpc" => "list_room_members")
            .increment(1);
        let reply = self
            .client
            .clone()
            .list_room_members(user_pb::ListRoomMembersRequest {
                room: room.to_owned(),
            })
            .await;
        let fetched = match reply {
            Ok(r) => {
                let reply = r.into_inner();
                let list = reply.members;
                let index: HashMap<String, MemberFlags> = list
                    .iter()
                    .map(|m| {
                        let standing = MemberFlags {
                            moderator: m.role == "owner" || m.role == "admin",
                            muted_until: m.muted_until_ms,
                        };
                        (m.username.clone(), standing)
                    })
                    .collect();
                let mut names: Vec<String> = list.into_iter().map(|m| m.username).collect();
                names.sort_unstable();
                Versioned {
                    version,
                    members: Some(names.into()),
                    index: Arc::new(index),
                    private: reply.visibility == "private",
                    slow_ms: u64::from(reply.slow_mode_secs) * 1000,
                }
            }
            Err(s) if s.code() == Code::NotFound => Versioned {
                version,
                members: None,
                index: Arc::default(),
                private: false,
                slow_ms: 0,
            },
            Err(s) => return Err(Unavailable(s)),
        };
        store(&self.rooms, room, fetched.clone(), self.ttl);
        Ok(fetched)
    }

    /// Learns, in one user-service call per thousand names, which of
    /// `users` exist, so a batch of DMs to recipients not cached yet (a cold
    /// worker, a burst of new conversations) waits for one round trip, not
    /// one per message. Names that are not well-formed are left to
    /// [`Self::user_exists`], which answers each on its own.
    pub async fn prefetch_users<'a>(
        &self,
        users: impl IntoIterator<Item = &'a str>,
    ) -> Result<(), Unavailable> {
        let mut wanted: Vec<String> = users
            .into_iter()
            .filter(|u| chat_model::ids::valid_username(u))
            .filter(|u| cached(&self.users, u, self.ttl).is_none())
            .map(str::to_owned)
            .collect();
        wanted.sort_unstable();
        wanted.dedup();
        for chunk in wanted.chunks(chat_model::limits::MAX_GET_USERS) {
            metrics::counter!("chat_user_service_calls_total", "rpc" => "get_users").increment(1);
            let reply = self
                .client
                .clone()
                .get_users(user_pb::GetUsersRequest {
                    usernames: chunk.to_vec(),
                })
                .await;
            let found: HashSet<String> = match reply {
                Ok(r) => r
                    .into_inner()
                    .users
                    .into_iter()
                    .map(|u| u.username)
                    .collect(),
                // One name user-service refuses: each is asked on its own.
                Err(s) if s.code() == Code::InvalidArgument => return Ok(()),
                Err(s) => return Err(Unavailable(s)),
            };
            for user in chunk {
                store(&self.users, user, found.contains(user), self.ttl);
            }
        }
        Ok(())
    }

    pub async fn user_exists(&self, user: &str) -> Result<bool, Unavailable> {
        if let Some(hit) = cached(&self.users, user, self.ttl) {
            return Ok(hit);
        }
        metrics::counter!("chat_user_service_calls_total", "rpc" => "get_user").increment(1);
        let reply = self
            .client
            .clone()
            .get_user(user_pb::GetUserRequest {
                username: user.to_owned(),
            })
            .await;
        let exists = match reply {
            Ok(_) => true,
            Err(s) if s.code() == Code::NotFound => false,
            Err(s) => return Err(Unavailable(s)),
        };
        store(&self.users, user, exists, self.ttl);
        Ok(exists)
    }
}

/// Every answer lives MEMBERSHIP_TTL_MS: a deleted account stops taking
/// DMs within it, as a left room stops taking a leaver's sends.
pub(crate) fn cached<T: Clone>(
    map: &Mutex<HashMap<String, (Instant, T)>>,
    key: &str,
    ttl: Duration,
) -> Option<T> {
    let map = map.lock().ok()?;
    let (at, value) = map.get(key)?;
    (at.elapsed() < ttl).then(|| value.clone())
}

/// Inserts, keeping the map under MAX_ENTRIES at an amortized constant cost:
/// a full map first drops what has expired, then, if still full, an eighth
/// of its entries (whichever the hash order gives, in effect at random). A
/// scan for the oldest on every insert would cost a 100,000-entry walk per
/// miss exactly when misses are many (more users than the cache holds).
pub(crate) fn store<T>(
    map: &Mutex<HashMap<String, (Instant, T)>>,
    key: &str,
    value: T,
    ttl: Duration,
) {
    let Ok(mut map) = map.lock() else { return };
    if map.len() >= MAX_ENTRIES {
        map.retain(|_, (at, _)| at.elapsed() < ttl);
    }
    if map.len() >= MAX_ENTRIES {
        let doomed: Vec<String> = map.keys().take(MAX_ENTRIES / 8).cloned().collect();
        for k in doomed {
            map.remove(&k);
        }
    }
    map.insert(key.to_owned(), (Instant::now(), value));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_cache_stays_bounded_and_keeps_what_was_just_stored() {
        let map = Mutex::new(HashMap::new());
        let ttl = Duration::from_secs(60);
        for i in 0..MAX_ENTRIES + 10 {
            store(&map, &format!("user_{i}"), true, ttl);
        }
        let len = map.lock().unwrap().len();
        assert!(len <= MAX_ENTRIES, "{len} entries");
        assert!(len >= MAX_ENTRIES - MAX_ENTRIES / 8, "{len} entries");
        let last = format!("user_{}", MAX_ENTRIES + 9);
        assert_eq!(cached(&map, &last, ttl), Some(true));
    }

    #[test]
    fn known_users_expire_like_unknown_ones() {
        // Accounts can be deleted: a known user is asked about again too.
        let map = Mutex::new(HashMap::new());
        let ttl = Duration::from_millis(100);
        store(&map, "known", true, ttl);
        store(&map, "ghost", false, ttl);
        assert_eq!(cached(&map, "known", ttl), Some(true));
        assert_eq!(cached(&map, "ghost", ttl), Some(false));
        std::thread::sleep(Duration::from_millis(150));
        assert_eq!(cached(&map, "known", ttl), None);
        assert_eq!(cached(&map, "ghost", ttl), None);
    }
}
