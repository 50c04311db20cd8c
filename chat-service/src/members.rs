//! Who may post where, without a user-service call per message. Room member
//! lists are cached with the room's membership version (bumped by user-service
//! on every join and leave, read once per batch): a cached list is used only
//! while its version is current, so a change is enforced for every send
//! processed after the join or leave returned. MEMBERSHIP_TTL_MS bounds the
//! staleness if a version bump was lost. User existence is cached for that
//! time too (ten times longer for known users: they are never deleted).

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use common::auth::InternalChannel;
use proto::user::v1::{self as pb, user_service_client::UserServiceClient};
use tonic::Code;

/// A room's members, sorted; None when the room does not exist.
pub type RoomMembers = Option<Arc<[String]>>;

/// A room's membership version as Redis holds it (None: never changed).
pub type Version = Option<i64>;

#[derive(Clone)]
struct Versioned {
    version: Version,
    members: RoomMembers,
    /// Who may delete any message in the room.
    owners: Arc<[String]>,
}

#[derive(Debug, thiserror::Error)]
#[error("user-service unavailable: {0}")]
pub struct Unavailable(pub String);

#[derive(Clone)]
pub struct Members {
    client: UserServiceClient<InternalChannel>,
    ttl: Duration,
    rooms: Arc<Mutex<HashMap<String, (Instant, Versioned)>>>,
    users: Arc<Mutex<HashMap<String, (Instant, bool)>>>,
}

/// Entries beyond this are evicted (oldest first) so the cache stays bounded.
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

    /// Whether `user` owns `room` (may delete anyone's message there).
    pub async fn is_owner(
        &self,
        room: &str,
        version: Version,
        user: &str,
    ) -> Result<bool, Unavailable> {
        let room = self.fetch(room, version).await?;
        Ok(room.owners.iter().any(|o| o == user))
    }

    async fn fetch(&self, room: &str, version: Version) -> Result<Versioned, Unavailable> {
        if let Some(hit) = cached(&self.rooms, room, self.ttl)
            && hit.version == version
        {
            return Ok(hit);
        }
        let reply = self
            .client
            .clone()
            .list_room_members(pb::ListRoomMembersRequest {
                room: room.to_owned(),
            })
            .await;
        let fetched = match reply {
            Ok(r) => {
                let list = r.into_inner().members;
                let owners: Vec<String> = list
                    .iter()
                    .filter(|m| m.role == "owner")
                    .map(|m| m.username.clone())
                    .collect();
                let mut names: Vec<String> = list.into_iter().map(|m| m.username).collect();
                names.sort_unstable();
                Versioned {
                    version,
                    members: Some(names.into()),
                    owners: owners.into(),
                }
            }
            Err(s) if s.code() == Code::NotFound => Versioned {
                version,
                members: None,
                owners: Arc::from(Vec::new()),
            },
            Err(s) => return Err(Unavailable(s.message().to_owned())),
        };
        store(&self.rooms, room, fetched.clone());
        Ok(fetched)
    }

    pub async fn user_exists(&self, user: &str) -> Result<bool, Unavailable> {
        if let Some(hit) = cached(&self.users, user, self.ttl) {
            return Ok(hit);
        }
        let reply = self
            .client
            .clone()
            .get_user(pb::GetUserRequest {
                username: user.to_owned(),
            })
            .await;
        let exists = match reply {
            Ok(_) => true,
            Err(s) if s.code() == Code::NotFound => false,
            Err(s) => return Err(Unavailable(s.message().to_owned())),
        };
        store(&self.users, user, exists);
        Ok(exists)
    }
}

fn cached<T: Clone + IsPositive>(
    map: &Mutex<HashMap<String, (Instant, T)>>,
    key: &str,
    ttl: Duration,
) -> Option<T> {
    let map = map.lock().ok()?;
    let (at, value) = map.get(key)?;
    let ttl = if value.is_positive_user() {
        ttl * 10
    } else {
        ttl
    };
    (at.elapsed() < ttl).then(|| value.clone())
}

fn store<T>(map: &Mutex<HashMap<String, (Instant, T)>>, key: &str, value: T) {
    let Ok(mut map) = map.lock() else { return };
    if map.len() >= MAX_ENTRIES
        && let Some(oldest) = map
            .iter()
            .min_by_key(|(_, (at, _))| *at)
            .map(|(k, _)| k.clone())
    {
        map.remove(&oldest);
    }
    map.insert(key.to_owned(), (Instant::now(), value));
}

/// Known users are cached longer: they are never deleted.
trait IsPositive {
    fn is_positive_user(&self) -> bool;
}

impl IsPositive for bool {
    fn is_positive_user(&self) -> bool {
        *self
    }
}

impl IsPositive for Versioned {
    fn is_positive_user(&self) -> bool {
        false
    }
}
