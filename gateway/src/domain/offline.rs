//! The offline handshake: when a session starts, the messages queued while
//! the user had no session, in one batch; the client's acknowledgement then
//! removes exactly that batch (anything queued since stays for next time).

use chat_model::message::ChatMessage;
use proto::history::{internal::v1 as internal_pb, v1 as history_pb};

use super::{Error, HistoryClient, HistoryInternal, error::HISTORY_SERVICE};

#[derive(Clone)]
pub struct OfflineQueue {
    history: HistoryClient,
    internal: HistoryInternal,
}

/// The batch a session was sent and has not acknowledged yet.
#[derive(Debug, Clone)]
pub struct Sent {
    /// Id of its last message.
    last_id: String,
    /// The dropped count reported with it.
    dropped: u64,
}

/// The queued messages (oldest first), whether older ones were dropped, and
/// what an ack must remove (None: nothing to acknowledge).
pub struct Queued {
    pub messages: Vec<ChatMessage>,
    pub truncated: bool,
    pub sent: Option<Sent>,
}

impl OfflineQueue {
    pub fn new(history: HistoryClient, internal: HistoryInternal) -> Self {
        Self { history, internal }
    }

    pub async fn fetch(&self, user: &str) -> Result<Queued, Error> {
        let reply = self
            .history
            .clone()
            .list_offline(history_pb::ListOfflineRequest {
                username: user.to_owned(),
            })
            .await
            .map_err(Error::upstream(HISTORY_SERVICE))?
            .into_inner();
        let messages: Vec<ChatMessage> = reply
            .messages
            .into_iter()
            .filter_map(|m| chat_model::convert::from_pb(m).ok())
            .collect();
        let sent = (!messages.is_empty() || reply.dropped > 0).then(|| Sent {
            last_id: messages.last().map(|m| m.id.clone()).unwrap_or_default(),
            dropped: reply.dropped,
        });
        Ok(Queued {
            messages,
            truncated: reply.truncated,
            sent,
        })
    }

    /// Removes the batch `sent` from the user's queue.
    pub async fn ack(&self, user: &str, sent: &Sent) -> Result<(), Error> {
        self.internal
            .clone()
            .ack_offline(internal_pb::AckOfflineRequest {
                username: user.to_owned(),
                last_id: sent.last_id.clone(),
                dropped: sent.dropped,
            })
            .await
            .map_err(Error::upstream(HISTORY_SERVICE))?;
        Ok(())
    }
}
