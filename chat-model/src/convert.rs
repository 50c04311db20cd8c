//! Conversions between the message model and its gRPC form (chat.history.v1).

use proto::history::v1 as history_pb;

use crate::{
    ids::{ConversationId, Target},
    message::{ChatMessage, EventKind, MemberAction, MemberEvent},
};

fn timestamp(ms: i64) -> prost_types::Timestamp {
    prost_types::Timestamp {
        seconds: ms.div_euclid(1000),
        nanos: (ms.rem_euclid(1000) * 1_000_000) as i32,
    }
}

fn millis(t: prost_types::Timestamp) -> i64 {
    t.seconds * 1000 + i64::from(t.nanos) / 1_000_000
}

pub fn to_pb(m: &ChatMessage) -> history_pb::Message {
    history_pb::Message {
        id: m.id.clone(),
        conversation_id: m.conversation.to_string(),
        seq: m.seq,
        sender: m.from.clone(),
        body: m.body.clone(),
        sent_at: Some(timestamp(m.ts)),
        recipient: m.to.to_string(),
        client_id: m.client_id.clone(),
        tombstone: m.tombstone,
        kind: m.kind.map(|k| k.as_str().to_owned()).unwrap_or_default(),
        target_seq: m.target_seq,
        edited_at: m.edited_at.map(timestamp),
        edit_seq: m.edit_seq,
        deleted: m.deleted,
        member: m.member.as_ref().map(|e| history_pb::MemberEvent {
            action: e.action.as_str().to_owned(),
            user: e.user.clone(),
            role: e.role.clone(),
        }),
    }
}

/// Converts a received message; the error names what is missing or wrong.
pub fn from_pb(m: history_pb::Message) -> Result<ChatMessage, String> {
    if m.id.is_empty() || m.conversation_id.is_empty() || m.seq == 0 || m.sender.is_empty() {
        return Err("message needs id, conversation_id, seq > 0 and sender".into());
    }
    let conversation =
        ConversationId::parse(&m.conversation_id).map_err(|e| format!("conversation_id: {e}"))?;
    let to = Target::parse(&m.recipient).map_err(|e| format!("recipient: {e}"))?;
    let ts = m.sent_at.map(millis).unwrap_or_default();
    let kind = match m.kind.as_str() {
        "" => None,
        k => Some(EventKind::parse(k).ok_or_else(|| format!("kind: unknown {k:?}"))?),
    };
    if kind.is_some() && m.target_seq.is_none_or(|t| t == 0 || t >= m.seq) {
        return Err("an event needs a target_seq below its own seq".into());
    }
    let member = m
        .member
        .map(|e| {
            let action = MemberAction::parse(&e.action)
                .ok_or_else(|| format!("member.action: unknown {:?}", e.action))?;
            Ok::<_, String>(MemberEvent {
                action,
                user: e.user,
                role: e.role,
            })
        })
        .transpose()?;
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
        kind,
        target_seq: m.target_seq.filter(|_| kind.is_some()),
        edited_at: m.edited_at.map(millis),
        edit_seq: m.edit_seq,
        deleted: m.deleted,
        member,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_keeps_millisecond_time() {
        let mut m = ChatMessage::new(
            "i".into(),
            crate::ids::ConversationId::room("a"),
            3,
            "bob".into(),
            crate::ids::Target::Room("a".into()),
            "hi".into(),
            1_700_000_000_123,
            "c".into(),
        );
        assert_eq!(from_pb(to_pb(&m)).unwrap(), m);
        m.edited_at = Some(1_700_000_000_456);
        m.edit_seq = Some(4);
        assert_eq!(from_pb(to_pb(&m)).unwrap(), m);
        let mut e = m.clone();
        e.kind = Some(EventKind::Edit);
        e.target_seq = Some(2);
        assert_eq!(from_pb(to_pb(&e)).unwrap(), e);
        let mut j = m.clone();
        j.member = Some(MemberEvent {
            action: MemberAction::Role,
            user: "carol".into(),
            role: Some("admin".into()),
        });
        assert_eq!(from_pb(to_pb(&j)).unwrap(), j);
        let mut bad = to_pb(&j);
        bad.member.as_mut().unwrap().action = "dance".into();
        assert!(from_pb(bad).is_err(), "an unknown action is refused");
        e.target_seq = Some(3);
        assert!(
            from_pb(to_pb(&e)).is_err(),
            "an event targets an earlier seq"
        );
        assert!(from_pb(history_pb::Message::default()).is_err());
    }
}
