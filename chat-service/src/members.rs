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
        if let Some(hit) = cached(&self.rooms, room, self.ttl)
            && hit.version == version
        {
            return Ok(hit.members);
        }
        let reply = self
            .client
            .clone()
            .list_room_members(pb::ListRoomMembersRequest {
                room: room.to_owned(),
            })
            .await;
        let members: RoomMembers = match reply {
            Ok(r) => {
                let mut names: Vec<String> = r
                    .into_inner()
                    .members
                    .into_iter()
                    .map(|m| m.username)
                    .collect();
                names.sort_unstable();
                Some(names.into())
            }
            Err(s) if s.code() == Code::NotFound => None,
            Err(s) => return Err(Unavailable(s.message().to_owned())),
        };
        store(
            &self.rooms,
            room,
            Versioned {
                version,
                members: members.clone(),
            },
        );
        Ok(members)
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
