//! Read markers from a client, by `read` frame or `PUT …/read`: checked,
//! moved forward only, and announced with a `read` frame to every socket of
//! the user on every gateway, so a badge cleared on one device clears on all.

use chat_model::{
    ids::ConversationId,
    message::{Delivery, DeliveryFrame, FORMAT_VERSION, Name},
    protocol::ServerFrame,
};

use chat_redis::{
    keys::Keys,
    publish::Publisher,
    read::{Marked, ReadMarkers},
};
use serde_json::value::RawValue;

use crate::{
    api::{access::check_can_read, error::ApiError},
    state::AppState,
};

pub struct Reads {
    pub markers: ReadMarkers,
    publisher: Publisher,
}

impl Reads {
    pub fn new(keys: Keys) -> Self {
        Self {
            markers: ReadMarkers::new(keys.clone()),
            publisher: Publisher::new(keys),
        }
    }
}

/// A user's read marker in a conversation after a `read`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReadState {
    pub seq: u64,
    pub unread: u64,
}

/// Moves `user`'s marker in `conversation` to `seq` if that is forward.
/// A seq beyond the conversation's last is refused and changes nothing.
pub async fn mark(
    state: &AppState,
    user: &str,
    conversation: &ConversationId,
    seq: u64,
) -> Result<ReadState, ApiError> {
    if seq == 0 {
        return Err(ApiError::BadRequest("seq must be at least 1".into()));
    }
    check_can_read(state, user, conversation).await?;
    let mut redis = state.redis.clone();
    let marked = state
        .reads
        .markers
        .mark(&mut redis, conversation.as_str(), user, seq)
        .await?;
    match marked {
        Marked::BeyondLast { last } => Err(ApiError::BadRequest(format!(
            "seq {seq} is beyond the conversation's last seq ({last})"
        ))),
        Marked::Unchanged { seq, unread } => Ok(ReadState { seq, unread }),
        Marked::Moved { seq, unread } => {
            metrics::counter!("gateway_read_markers_moved_total").increment(1);
            announce(state, user, conversation, seq, unread).await;
            Ok(ReadState { seq, unread })
        }
    }
}

/// Sends the `read` frame to every socket of `user`, wherever it is. Best
/// effort: a socket that misses it gets the marker from the conversation
/// list on its next recovery.
async fn announce(
    state: &AppState,
    user: &str,
    conversation: &ConversationId,
    seq: u64,
    unread: u64,
) {
    let frame = ServerFrame::Read {
        conversation: conversation.as_str(),
        seq,
        unread,
    }
    .to_json();
    let Ok(frame) = RawValue::from_string(frame) else {
        return;
    };
    let users = [user.to_owned()];
    let mut lookup = state.lookup.clone();
    let mut redis = state.redis.clone();
    let online = match lookup
        .online(&mut redis, [(conversation.as_str(), &users[..])])
        .await
    {
        Ok(online) => online,
        Err(e) => {
            tracing::warn!(error = %e, "read marker not announced: presence lookup failed");
            return;
        }
    };
    let Some(reach) = online.get(conversation.as_str()) else {
        return;
    };
    // With the conversation and the marker: a socket gets markers only
    // forward, whichever of two announcements arrives first.
    let delivery = Delivery {
        v: FORMAT_VERSION,
        users: vec![Name::from(user)],
        conversation: Some(Name::from(conversation.as_str())),
        frames: vec![DeliveryFrame {
            conn: None,
            skip_conn: None,
            frame: &frame,
            at: None,
            trace: None,
            seq: None,
            read: Some(seq),
        }],
    };
    let payload = serde_json::to_string(&[&delivery]).unwrap_or_default();
    let payloads: Vec<(String, String)> = reach
        .gateways
        .keys()
        .map(|gw| (gw.clone(), payload.clone()))
        .collect();
    if let Err(e) = state.reads.publisher.publish(&mut redis, &payloads).await {
        tracing::warn!(error = %e, "read marker not announced: publish failed");
    }
}
