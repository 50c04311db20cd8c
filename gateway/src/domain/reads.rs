//! Read markers, from any transport: checked, moved forward only, and
//! announced with a `read` frame to every session of the user on every
//! gateway, so a badge cleared on one device clears on all.

use chat_model::{
    ids::ConversationId,
    message::{Delivery, DeliveryFrame, FORMAT_VERSION, Name},
    protocol::ServerFrame,
};
use chat_redis::{
    connection::Redis,
    keys::Keys,
    presence::Lookup,
    publish::Publisher,
    read::{Marked, ReadMarkers},
};
use serde_json::value::RawValue;

use super::{Error, access::Access};

#[derive(Clone)]
pub struct Reads {
    access: Access,
    redis: Redis,
    lookup: Lookup,
    markers: ReadMarkers,
    publisher: Publisher,
}

/// A user's read marker in a conversation after a `read`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReadState {
    pub seq: u64,
    pub unread: u64,
}

impl Reads {
    pub fn new(access: Access, redis: Redis, keys: Keys, lookup: Lookup) -> Self {
        Self {
            access,
            redis,
            lookup,
            markers: ReadMarkers::new(keys.clone()),
            publisher: Publisher::new(keys),
        }
    }

    /// Moves `user`'s marker in `conversation` to `seq` if that is forward.
    /// A seq beyond the conversation's last is refused and changes nothing.
    pub async fn mark(
        &self,
        user: &str,
        conversation: &ConversationId,
        seq: u64,
    ) -> Result<ReadState, Error> {
        if seq == 0 {
            return Err(Error::Invalid("seq must be at least 1".into()));
        }
        self.access.check_can_read(user, conversation).await?;
        let mut redis = self.redis.clone();
        let marked = self
            .markers
            .mark(&mut redis, conversation.as_str(), user, seq)
            .await
            .map_err(Error::redis("moving a read marker"))?;
        match marked {
            Marked::BeyondLast { last } => Err(Error::Invalid(format!(
                "seq {seq} is beyond the conversation's last seq ({last})"
            ))),
            Marked::Unchanged { seq, unread } => Ok(ReadState { seq, unread }),
            Marked::Moved { seq, unread } => {
                metrics::counter!("gateway_read_markers_moved_total").increment(1);
                self.announce(user, conversation, seq, unread).await;
                Ok(ReadState { seq, unread })
            }
        }
    }

    /// Sends the `read` frame to every session of `user`, wherever it is.
    /// Best effort: a session that misses it gets the marker from the
    /// conversation list on its next recovery.
    async fn announce(&self, user: &str, conversation: &ConversationId, seq: u64, unread: u64) {
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
        let mut lookup = self.lookup.clone();
        let mut redis = self.redis.clone();
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
        if let Err(e) = self.publisher.publish(&mut redis, &payloads).await {
            tracing::warn!(error = %e, "read marker not announced: publish failed");
        }
    }
}
