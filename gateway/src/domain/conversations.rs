//! The conversation list: the user's rooms (from user-service) and DMs (the
//! per-user index chat-service keeps), each summarized from per-conversation
//! state in one Redis pipeline, sorted by last activity and cut into pages
//! by cursor. Nothing here scans history.

use std::cmp::Ordering;

use chat_model::{
    ids::{Conversation, ConversationId},
    preview::Preview,
};
use chat_redis::{connection::Redis, keys::Keys, summary::Summaries};
use proto::user::v1 as user_pb;
use serde::Serialize;
use utoipa::ToSchema;

use super::{Error, UserClient, access::Access, error::USER_SERVICE};

/// Conversations per page: at most 200, 50 by default.
pub const MAX_PAGE: usize = 200;
pub const DEFAULT_PAGE: usize = 50;

/// One of the user's conversations.
#[derive(Debug, Serialize, ToSchema)]
pub struct ConversationSummary {
    /// `room:<name>` or `dm:<a>:<b>`.
    pub id: String,
    /// `room` or `dm`.
    pub kind: String,
    /// For a DM: the other party.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub peer: Option<String>,
    /// The conversation's last seq, events included (0: nothing yet).
    pub last_seq: u64,
    /// The caller's read marker (0: nothing read).
    pub read_seq: u64,
    /// `last_seq − read_seq`.
    pub unread: u64,
    /// Unix milliseconds of its last message or event; null before any.
    pub last_activity: Option<i64>,
    /// Its newest message (not event), as it is now; null before any.
    pub last_message: Option<Preview>,
}

#[derive(Clone)]
pub struct Conversations {
    users: UserClient,
    access: Access,
    redis: Redis,
    keys: Keys,
    summaries: Summaries,
}

impl Conversations {
    pub fn new(users: UserClient, access: Access, redis: Redis, keys: Keys) -> Self {
        Self {
            users,
            access,
            redis,
            summaries: Summaries::new(keys.clone()),
            keys,
        }
    }

    /// A page of `user`'s conversations, most recently active first: up to
    /// `limit` (1 to [`MAX_PAGE`], [`DEFAULT_PAGE`] if none) after `cursor`,
    /// and the cursor of the next page if there is one.
    pub async fn list(
        &self,
        user: &str,
        limit: Option<u64>,
        cursor: Option<&str>,
    ) -> Result<(Vec<ConversationSummary>, Option<String>), Error> {
        let limit = match limit {
            None => DEFAULT_PAGE,
            Some(n) if (1..=MAX_PAGE as u64).contains(&n) => n as usize,
            Some(_) => {
                return Err(Error::Invalid(format!("limit must be 1 to {MAX_PAGE}")));
            }
        };
        let cursor = cursor.map(Cursor::parse).transpose()?;
        let ids = self.all_ids(user).await?;
        let all = self.summaries(user, &ids).await?;
        let (page, next) = page(all, cursor.as_ref(), limit);
        Ok((page, next.map(|c| c.encode())))
    }

    /// One of `user`'s conversations, as the list shows it.
    pub async fn one(
        &self,
        user: &str,
        conversation: ConversationId,
    ) -> Result<ConversationSummary, Error> {
        let floor = self.access.check_can_read(user, &conversation).await?;
        self.summaries(user, &[(conversation, floor)])
            .await?
            .pop()
            .ok_or_else(|| Error::Internal("no summary for a conversation".into()))
    }

    /// Every room and DM of `user`, each with the seq above which they read it.
    async fn all_ids(&self, user: &str) -> Result<Vec<(ConversationId, u64)>, Error> {
        let rooms = self
            .users
            .clone()
            .list_user_rooms(user_pb::ListUserRoomsRequest {
                username: user.to_owned(),
            })
            .await
            .map_err(Error::upstream(USER_SERVICE))?
            .into_inner()
            .rooms;
        let mut redis = self.redis.clone();
        let dms: Vec<String> = redis::cmd("ZRANGE")
            .arg(self.keys.user_dms(user))
            .arg(0)
            .arg(-1)
            .query_async(&mut redis)
            .await
            .map_err(Error::redis("listing DMs"))?;
        Ok(dms
            .iter()
            .filter_map(|d| ConversationId::parse(d).ok())
            .map(|d| (d, 0))
            .chain(
                rooms
                    .iter()
                    .map(|r| (ConversationId::room(&r.name), r.history_from_seq)),
            )
            .collect())
    }

    /// The summaries of `ids` for `user`, in `ids`' order; each as seen
    /// from its floor (what came before it neither counts as unread nor
    /// shows as the last message).
    async fn summaries(
        &self,
        user: &str,
        ids: &[(ConversationId, u64)],
    ) -> Result<Vec<ConversationSummary>, Error> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let mut pipe = redis::pipe();
        for (id, _) in ids {
            pipe.get(self.keys.seq(id.as_str()));
            self.summaries.read(&mut pipe, id.as_str());
            pipe.hget(self.keys.read_markers(id.as_str()), user);
        }
        let mut redis = self.redis.clone();
        let replies: Vec<redis::Value> = pipe
            .query_async(&mut redis)
            .await
            .map_err(Error::redis("reading conversation summaries"))?;
        let mut out = Vec::with_capacity(ids.len());
        for ((id, floor), chunk) in ids.iter().zip(replies.chunks(3)) {
            let [seq, last, read] = chunk else {
                return Err(Error::Internal("short pipeline reply".into()));
            };
            let last_seq: Option<u64> = redis::from_redis_value(seq)?;
            let (at, m): (Option<i64>, Option<String>) = redis::from_redis_value(last)?;
            let read_seq: Option<u64> = redis::from_redis_value(read)?;
            let summary = chat_model::preview::Summary::from_fields(at, m);
            let (last_seq, read_seq) = (last_seq.unwrap_or(0), read_seq.unwrap_or(0).max(*floor));
            let last_message = summary.last_message.filter(|m| m.seq > *floor);
            out.push(ConversationSummary {
                id: id.to_string(),
                kind: match id.kind() {
                    Conversation::Room(_) => "room".into(),
                    Conversation::Dm(..) => "dm".into(),
                },
                peer: id.peer_of(user).map(str::to_owned),
                last_seq,
                read_seq,
                unread: last_seq.saturating_sub(read_seq),
                last_activity: summary.last_activity,
                last_message,
            });
        }
        Ok(out)
    }
}

/// The list order: most recently active first, then conversations with no
/// activity yet by id.
fn order(a: (Option<i64>, &str), b: (Option<i64>, &str)) -> Ordering {
    match (a.0, b.0) {
        (Some(x), Some(y)) => y.cmp(&x).then_with(|| a.1.cmp(b.1)),
        (Some(_), None) => Ordering::Less,
        (None, Some(_)) => Ordering::Greater,
        (None, None) => a.1.cmp(b.1),
    }
}

/// A position in the list: the last entry of a page, as an opaque string.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cursor {
    at: Option<i64>,
    id: String,
}

impl Cursor {
    pub fn encode(&self) -> String {
        format!("{}~{}", self.at.unwrap_or(-1), self.id)
    }

    pub fn parse(s: &str) -> Result<Self, Error> {
        let bad = || Error::Invalid("cursor: not one this API gave".into());
        let (at, id) = s.split_once('~').ok_or_else(bad)?;
        let at: i64 = at.parse().map_err(|_| bad())?;
        let id = ConversationId::parse(id).map_err(|_| bad())?;
        Ok(Self {
            at: (at >= 0).then_some(at),
            id: id.to_string(),
        })
    }
}

/// Sorts `all` and returns the page after `cursor`, and the cursor of the
/// next page if there is one.
pub fn page(
    mut all: Vec<ConversationSummary>,
    cursor: Option<&Cursor>,
    limit: usize,
) -> (Vec<ConversationSummary>, Option<Cursor>) {
    all.sort_by(|a, b| order((a.last_activity, &a.id), (b.last_activity, &b.id)));
    let start = cursor.map_or(0, |c| {
        all.partition_point(|s| order((s.last_activity, &s.id), (c.at, &c.id)) != Ordering::Greater)
    });
    let mut rest: Vec<ConversationSummary> = all.into_iter().skip(start).collect();
    let more = rest.len() > limit;
    rest.truncate(limit);
    let next = more.then(|| {
        let last = &rest[rest.len() - 1];
        Cursor {
            at: last.last_activity,
            id: last.id.clone(),
        }
    });
    (rest, next)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(id: &str, at: Option<i64>) -> ConversationSummary {
        ConversationSummary {
            id: id.into(),
            kind: "room".into(),
            peer: None,
            last_seq: 0,
            read_seq: 0,
            unread: 0,
            last_activity: at,
            last_message: None,
        }
    }

    #[test]
    fn pages_follow_activity_then_id_and_cursors_resume_exactly() {
        let all = || {
            vec![
                s("room:b", None),
                s("room:a", Some(5)),
                s("room:c", Some(9)),
                s("room:a0", None),
                s("room:d", Some(5)),
            ]
        };
        let (first, next) = page(all(), None, 2);
        let ids: Vec<&str> = first.iter().map(|x| x.id.as_str()).collect();
        assert_eq!(ids, ["room:c", "room:a"]);
        let next = Cursor::parse(&next.unwrap().encode()).unwrap();
        let (second, next) = page(all(), Some(&next), 2);
        let ids: Vec<&str> = second.iter().map(|x| x.id.as_str()).collect();
        assert_eq!(ids, ["room:d", "room:a0"]);
        let (third, next) = page(all(), Some(&next.unwrap()), 2);
        assert_eq!(third.len(), 1);
        assert_eq!(third[0].id, "room:b");
        assert!(next.is_none());
        assert!(Cursor::parse("x").is_err());
        assert!(Cursor::parse("5~nope").is_err());
    }
}
