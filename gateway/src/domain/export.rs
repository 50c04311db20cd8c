//! The account export (the right to data portability): the account, its
//! sessions and rooms, and every message it sent, paged. A page reads at
//! most [`SCAN_PER_PAGE`] messages of history and returns the caller's own
//! among them, with a cursor to go on; pages per hour are limited
//! (`limits::EXPORT_PAGES_PER_HOUR`). So one request's work and answer are
//! bounded, whatever the size of the conversations.

use chat_model::{ids::ConversationId, message::ChatMessage};
use chat_redis::{connection::Redis, keys::Keys};
use proto::{history::v1 as history_pb, user::v1 as user_pb};
use redis::AsyncCommands;

use super::{
    Error, HistoryClient, UserClient,
    error::{HISTORY_SERVICE, USER_SERVICE},
    limits::Limits,
};

/// History read per page, in messages.
pub const SCAN_PER_PAGE: usize = 1_000;
/// One history call's page.
const HISTORY_PAGE: u32 = 200;

/// Where an export goes on: after `seq` in `conversation`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cursor {
    pub conversation: String,
    pub after: u64,
}

impl Cursor {
    pub fn encode(&self) -> String {
        format!("{}.{}", self.after, self.conversation)
    }

    pub fn parse(s: &str) -> Result<Self, Error> {
        let bad = || Error::Invalid("bad cursor".into());
        let (after, conversation) = s.split_once('.').ok_or_else(bad)?;
        let after = after.parse().map_err(|_| bad())?;
        ConversationId::parse(conversation).map_err(|_| bad())?;
        Ok(Self {
            conversation: conversation.to_owned(),
            after,
        })
    }
}

/// What the first page adds to the messages.
pub struct Account {
    pub user: user_pb::User,
    pub sessions: Vec<user_pb::Session>,
    pub rooms: Vec<user_pb::Room>,
    pub conversations: Vec<String>,
}

pub struct Page {
    /// On the first page only.
    pub account: Option<Account>,
    pub messages: Vec<ChatMessage>,
    pub next: Option<Cursor>,
}

#[derive(Clone)]
pub struct Export {
    users: UserClient,
    history: HistoryClient,
    redis: Redis,
    keys: Keys,
    limits: Limits,
}

impl Export {
    pub fn new(
        users: UserClient,
        history: HistoryClient,
        redis: Redis,
        keys: Keys,
        limits: Limits,
    ) -> Self {
        Self {
            users,
            history,
            redis,
            keys,
            limits,
        }
    }

    pub async fn page(&self, user: &str, cursor: Option<Cursor>) -> Result<Page, Error> {
        self.limits.export_page(user).await?;
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
        let dms: Vec<String> = redis
            .zrange(self.keys.user_dms(user), 0, -1)
            .await
            .map_err(Error::redis("listing DMs"))?;
        // One order every page agrees on: by id.
        let mut conversations: Vec<String> = dms
            .into_iter()
            .chain(rooms.iter().map(|r| format!("room:{}", r.name)))
            .collect();
        conversations.sort_unstable();
        conversations.dedup();
        let account = match cursor {
            Some(_) => None,
            None => Some(self.account(user, rooms, conversations.clone()).await?),
        };
        let mut at = cursor.unwrap_or_else(|| Cursor {
            conversation: String::new(),
            after: 0,
        });
        let mut messages = Vec::new();
        let mut scanned = 0;
        // An index, not an iterator held across the awaits below (its
        // closure would make the future not Send).
        let mut i = conversations.partition_point(|c| *c < at.conversation);
        while let Some(conversation) = conversations.get(i) {
            if *conversation != at.conversation {
                at = Cursor {
                    conversation: conversation.clone(),
                    after: 0,
                };
            }
            if scanned >= SCAN_PER_PAGE {
                return Ok(Page {
                    account,
                    messages,
                    next: Some(at),
                });
            }
            let reply = self
                .history
                .clone()
                .get_history(history_pb::GetHistoryRequest {
                    conversation_id: at.conversation.clone(),
                    before_seq: None,
                    after_seq: Some(at.after),
                    limit: Some(HISTORY_PAGE),
                })
                .await
                .map_err(Error::upstream(HISTORY_SERVICE))?
                .into_inner();
            scanned += reply.messages.len().max(1);
            for m in reply.messages {
                let Ok(m) = chat_model::convert::from_pb(m) else {
                    continue;
                };
                at.after = at.after.max(m.seq);
                if m.from == user {
                    messages.push(m);
                }
            }
            if !reply.has_more {
                i += 1;
            }
        }
        Ok(Page {
            account,
            messages,
            next: None,
        })
    }

    async fn account(
        &self,
        user: &str,
        rooms: Vec<user_pb::Room>,
        conversations: Vec<String>,
    ) -> Result<Account, Error> {
        let mut users = self.users.clone();
        let profile = users
            .get_user(user_pb::GetUserRequest {
                username: user.to_owned(),
            })
            .await
            .map_err(Error::upstream(USER_SERVICE))?
            .into_inner();
        let sessions = users
            .list_sessions(user_pb::ListSessionsRequest {
                username: user.to_owned(),
            })
            .await
            .map_err(Error::upstream(USER_SERVICE))?
            .into_inner()
            .sessions;
        Ok(Account {
            user: profile,
            sessions,
            rooms,
            conversations,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_bad_ones_are_refused() {
        let c = Cursor {
            conversation: "dm:alice:bob".into(),
            after: 42,
        };
        assert_eq!(Cursor::parse(&c.encode()).unwrap(), c);
        for bad in ["", "42", "x.room:a", "1.nonsense", "-1.room:a"] {
            assert!(Cursor::parse(bad).is_err(), "{bad}");
        }
    }
}
