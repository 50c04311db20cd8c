//! The ingress floor: how a client's `send`, `edit`, `delete` or `typing`,
//! from any transport, becomes an entry of the ingress stream (the current
//! format version) for chat-service. The appender writes the entries
//! (`appender.rs`); the backlog poller refuses new ones while chat-service
//! is behind (`backlog.rs`); each session spends a token bucket per frame
//! (`ratelimit.rs`), and each account its quota per message (`quota.rs`).

pub mod appender;
pub mod backlog;
pub mod quota;
pub mod ratelimit;

use std::sync::Arc;

use chat_model::{
    ids::Target,
    message::{EntryKind, FORMAT_VERSION, IngressEntry},
    protocol::ErrorCode,
};
use chat_redis::keys::Keys;

use self::{
    appender::Appender,
    backlog::Backlog,
    quota::{AccountQuota, Taken},
};
use crate::config::Config;

/// What became of a send, edit, delete or typing notice.
#[derive(Debug, PartialEq, Eq)]
pub enum Produced {
    Queued,
    /// A typing notice while the system is busy: worthless later, so dropped.
    Dropped,
    /// Not taken: the sender gets this error (the send may be retried with
    /// the same client_id).
    Refused {
        code: ErrorCode,
        message: &'static str,
        retry_after_ms: Option<u64>,
    },
}

/// One send, edit, delete or typing notice from a user's session.
pub struct Item {
    pub kind: EntryKind,
    pub client_id: String,
    pub to: Target,
    pub body: String,
    /// For an edit or delete: the seq it changes.
    pub target_seq: Option<u64>,
    /// The traceparent of its `send` span, when spans are exported.
    pub trace: Option<String>,
}

/// The ingress settings (the README's table names each).
#[derive(Debug, Clone)]
pub struct Settings {
    pub gateway_id: String,
    pub partitions: usize,
    pub backlog_limit: u64,
    pub max_wait_ms: u64,
}

impl From<&Config> for Settings {
    fn from(c: &Config) -> Self {
        Self {
            gateway_id: c.gateway_id.clone(),
            partitions: c.ingress_partitions,
            backlog_limit: c.ingress_backlog_limit,
            max_wait_ms: c.ingress_max_wait_ms,
        }
    }
}

#[derive(Clone)]
pub struct Ingress {
    appender: Appender,
    backlog: Arc<Backlog>,
    quota: AccountQuota,
    keys: Keys,
    settings: Arc<Settings>,
}

impl Ingress {
    pub fn new(
        appender: Appender,
        backlog: Arc<Backlog>,
        quota: AccountQuota,
        keys: Keys,
        settings: Settings,
    ) -> Self {
        Self {
            appender,
            backlog,
            quota,
            keys,
            settings: Arc::new(settings),
        }
    }

    /// Puts `item` from `user`'s session `conn` on the ingress stream,
    /// unless the stream's backlog is over its limit (then a send is
    /// refused with a retry hint and a typing notice is dropped) or the
    /// account is over its quota (then a message is refused as
    /// `rate_limited` with a retry hint; typing is not counted).
    pub async fn produce(&self, user: &str, conn: u64, item: Item) -> Produced {
        let settings = &self.settings;
        if self
            .backlog
            .over_limit(settings.backlog_limit, settings.max_wait_ms)
        {
            metrics::counter!("gateway_backpressure_total").increment(1);
            return match item.kind {
                EntryKind::Typing => Produced::Dropped,
                _ => Produced::Refused {
                    code: ErrorCode::Unavailable,
                    message: "the system is busy; retry with the same client_id",
                    retry_after_ms: Some(backlog::RETRY_AFTER_MS),
                },
            };
        }
        if item.kind != EntryKind::Typing {
            match self.quota.take(user).await {
                Taken::Yes => {}
                Taken::Limited { retry_after_ms } => {
                    return Produced::Refused {
                        code: ErrorCode::RateLimited,
                        message: "this account is sending too fast; retry with the same client_id",
                        retry_after_ms: Some(retry_after_ms),
                    };
                }
                Taken::Unavailable => {
                    return Produced::Refused {
                        code: ErrorCode::Unavailable,
                        message: "message not accepted; retry with the same client_id",
                        retry_after_ms: None,
                    };
                }
            }
        }
        let partition =
            chat_redis::keys::partition(item.to.conversation(user).as_str(), settings.partitions);
        let entry = IngressEntry {
            v: FORMAT_VERSION,
            kind: item.kind,
            user: user.to_owned(),
            gw: settings.gateway_id.clone(),
            conn,
            client_id: item.client_id,
            to: item.to,
            body: item.body,
            target_seq: item.target_seq,
            at: Some(chat_model::time::now_ms()),
            trace: item.trace,
            member: None,
        };
        let json = serde_json::to_string(&entry).unwrap_or_default();
        if self
            .appender
            .append(conn, self.keys.ingress(partition), json)
            .await
        {
            metrics::counter!("gateway_ingress_total").increment(1);
            Produced::Queued
        } else {
            Produced::Refused {
                code: ErrorCode::Unavailable,
                message: "message not accepted; retry with the same client_id",
                retry_after_ms: None,
            }
        }
    }
}
