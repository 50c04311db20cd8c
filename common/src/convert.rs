//! Conversions between the message model and its gRPC form (chat.history.v1).

use proto::history::v1 as pb;

use crate::{
    ids::{ConversationId, Target},
    model::ChatMessage,
};

pub fn to_pb(m: &ChatMessage) -> pb::Message {
    pb::Message {
        id: m.id.clone(),
        conversation_id: m.conversation.to_string(),
        seq: m.seq,
        sender: m.from.clone(),
        body: m.body.clone(),
        sent_at: Some(prost_types::Timestamp {
            seconds: m.ts.div_euclid(1000),
            nanos: (m.ts.rem_euclid(1000) * 1_000_000) as i32,
        }),
        recipient: m.to.to_string(),
        client_id: m.client_id.clone(),
        tombstone: m.tombstone,
    }
}

/// Converts a received message; the error names what is missing or wrong.
pub fn from_pb(m: pb::Message) -> Result<ChatMessage, String> {
    if m.id.is_empty() || m.conversation_id.is_empty() || m.seq == 0 || m.sender.is_empty() {
        return Err("message needs id, conversation_id, seq > 0 and sender".into());
    }
    let conversation =
        ConversationId::parse(&m.conversation_id).map_err(|e| format!("conversation_id: {e}"))?;
    let to = Target::parse(&m.recipient).map_err(|e| format!("recipient: {e}"))?;
    let ts = m
        .sent_at
        .map(|t| t.seconds * 1000 + i64::from(t.nanos) / 1_000_000)
        .unwrap_or_default();
    Ok(ChatMessage {
        id: m.id,
        conversation,
        seq: m.seq,
        from: m.sender,
        to,
        body: m.body,
        ts,
        client_id: m.client_id,
        tombstone: m.tombstone,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_keeps_millisecond_time() {
        let m = ChatMessage {
            id: "i".into(),
            conversation: crate::ids::ConversationId::room("a"),
            seq: 3,
            from: "bob".into(),
            to: crate::ids::Target::Room("a".into()),
            body: "hi".into(),
            ts: 1_700_000_000_123,
            client_id: "c".into(),
            tombstone: false,
        };
        assert_eq!(from_pb(to_pb(&m)).unwrap(), m);
        assert!(from_pb(pb::Message::default()).is_err());
    }
}
