//! The Redis side of storage: per-conversation recent windows (read in
//! `window.rs`), what a batch makes durable (`append.rs`: the window, the
//! archive backlog stream, offline queues) and the offline queues
//! themselves (`offline.rs`). [`RedisStore`] puts the three together; each
//! part knows only the parts it uses, never the whole.

mod append;
mod offline;
mod window;

use chat_model::message::ChatMessage;
use chat_redis::{connection::Redis, keys::Keys};

use self::{append::Appends, offline::Queues, window::Window};
pub use self::{
    append::{ARCHIVE_FIELD, AppendItem, Late},
    offline::OfflineBatch,
};
use crate::{error::HistoryError, mongo::Archive};

#[derive(Clone)]
pub struct RedisStore {
    conn: Redis,
    keys: Keys,
    window: Window,
    queues: Queues,
    appends: Appends,
}

impl RedisStore {
    pub fn new(conn: Redis, keys: Keys, offline_limit: u32, offline_ttl_secs: u64) -> Self {
        let window = Window::new(conn.clone(), keys.clone());
        let queues = Queues::new(conn.clone(), keys.clone(), offline_limit, offline_ttl_secs);
        Self {
            appends: Appends::new(conn.clone(), keys.clone(), window.clone(), queues.clone()),
            conn,
            keys,
            window,
            queues,
        }
    }

    /// Spreads the archive backlog over `partitions` streams.
    pub fn with_archive_partitions(mut self, partitions: usize) -> Self {
        self.appends.archive_partitions = partitions.max(1);
        self
    }

    pub fn archive_partitions(&self) -> usize {
        self.appends.archive_partitions
    }

    pub fn keys(&self) -> &Keys {
        &self.keys
    }

    pub fn conn(&self) -> Redis {
        self.conn.clone()
    }

    /// The messages at (conversation, seq) in the recent window, in their
    /// current state; None where the window does not hold one.
    pub async fn at_seqs(
        &self,
        wanted: &[(&str, u64)],
    ) -> Result<Vec<Option<ChatMessage>>, HistoryError> {
        self.window.at_seqs(wanted).await
    }

    /// Up to `limit` messages with seq < `before` (None: the newest), newest first.
    pub async fn recent_before(
        &self,
        conversation: &str,
        before: Option<u64>,
        limit: usize,
    ) -> Result<Vec<ChatMessage>, HistoryError> {
        self.window.recent_before(conversation, before, limit).await
    }

    /// Up to `limit` messages with seq > `after`, oldest first.
    pub async fn recent_after(
        &self,
        conversation: &str,
        after: u64,
        limit: usize,
    ) -> Result<Vec<ChatMessage>, HistoryError> {
        self.window.recent_after(conversation, after, limit).await
    }

    /// Makes a batch durable (`append.rs`); returns the offline recipients
    /// who connected meanwhile.
    pub async fn append(
        &self,
        items: &[AppendItem],
        presence_at: i64,
        archive: &Archive,
    ) -> Result<Vec<Late>, HistoryError> {
        self.appends.append(items, presence_at, archive).await
    }

    /// Puts stored messages into offline queues only.
    pub async fn enqueue(
        &self,
        items: &[AppendItem],
        presence_at: i64,
    ) -> Result<Vec<Late>, HistoryError> {
        self.appends.enqueue(items, presence_at).await
    }

    /// A user's whole offline queue and dropped count (`offline.rs`).
    pub async fn offline(&self, user: &str) -> Result<OfflineBatch, HistoryError> {
        self.queues.read(user).await
    }

    /// Removes the acknowledged batch; returns how many messages went.
    pub async fn ack_offline(
        &self,
        user: &str,
        last_id: &str,
        dropped: u64,
    ) -> Result<u64, HistoryError> {
        self.queues.ack(user, last_id, dropped).await
    }
}
