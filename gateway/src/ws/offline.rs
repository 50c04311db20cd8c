//! The offline handshake: after `hello`, the messages queued while the user
//! had no socket, in one `offline` frame; the client's `offline_ack` then
//! removes exactly that batch (anything queued since stays for next time).

use chat_model::message::ChatMessage;
use proto::history::{internal::v1 as ipb, v1 as hpb};

use crate::state::AppState;

/// The batch a socket was sent and has not acknowledged yet.
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

pub async fn fetch(state: &AppState, user: &str) -> Result<Queued, tonic::Status> {
    let reply = state
        .history
        .clone()
        .list_offline(hpb::ListOfflineRequest {
            username: user.to_owned(),
        })
        .await?
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
pub async fn ack(state: &AppState, user: &str, sent: &Sent) -> Result<(), tonic::Status> {
    state
        .history_internal
        .clone()
        .ack_offline(ipb::AckOfflineRequest {
            username: user.to_owned(),
            last_id: sent.last_id.clone(),
            dropped: sent.dropped,
        })
        .await?;
    Ok(())
}
