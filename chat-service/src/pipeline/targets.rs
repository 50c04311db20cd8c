//! The targets of edits and deletes: who may change which message. Used by
//! admission; the messages come from history-service in their current state
//! (earlier edits and deletes applied).

use std::collections::HashMap;

use service_kit::auth::InternalChannel;

use chat_model::{
    ids::ConversationId,
    message::{ChatMessage, EventKind},
    protocol::ErrorCode,
};
use proto::history::internal::v1::{
    self as internal_pb, history_internal_client::HistoryInternalClient,
};

use crate::error::BatchError;

#[derive(Clone)]
pub struct Targets {
    pub history: HistoryInternalClient<InternalChannel>,
    /// How long after its `ts` a message may be edited (None: always).
    pub edit_window_ms: Option<i64>,
}

impl Targets {
    /// The stored messages of `conversation` at `seqs`, by seq.
    pub async fn fetch(
        &self,
        conversation: &ConversationId,
        seqs: Vec<u64>,
    ) -> Result<HashMap<u64, ChatMessage>, BatchError> {
        let reply = self
            .history
            .clone()
            .get_messages(internal_pb::GetMessagesRequest {
                conversation_id: conversation.to_string(),
                seqs,
            })
            .await
            .map_err(BatchError::history)?;
        Ok(reply
            .into_inner()
            .messages
            .into_iter()
            .filter_map(|m| chat_model::convert::from_pb(m).ok())
            .map(|m| (m.seq, m))
            .collect())
    }
}

/// Whether `user` may apply `kind` to `target` at `now`. `owner` says
/// whether the user owns the conversation's room (deletes only).
pub fn judge(
    kind: EventKind,
    user: &str,
    target: Option<&ChatMessage>,
    owner: bool,
    now: i64,
    edit_window_ms: Option<i64>,
) -> Result<(), (ErrorCode, String)> {
    let Some(target) = target else {
        return Err((ErrorCode::NotFound, "no such message".into()));
    };
    if target.kind.is_some() {
        return Err((
            ErrorCode::BadRequest,
            "that seq is an edit or delete, not a message".into(),
        ));
    }
    if target.member.is_some() {
        return Err((
            ErrorCode::BadRequest,
            "that seq is a membership event, not a message".into(),
        ));
    }
    if target.deleted || target.tombstone {
        return Err((ErrorCode::NotFound, "that message is deleted".into()));
    }
    let own = target.from == user;
    match kind {
        EventKind::Edit if !own => Err((
            ErrorCode::Forbidden,
            "only its sender can edit a message".into(),
        )),
        EventKind::Edit if edit_window_ms.is_some_and(|w| now - target.ts > w) => Err((
            ErrorCode::Forbidden,
            "the edit window for this message has passed".into(),
        )),
        EventKind::Delete if !own && !owner => Err((
            ErrorCode::Forbidden,
            "only its sender or the room's owner can delete a message".into(),
        )),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use chat_model::ids::Target;

    use super::*;

    fn msg(from: &str, ts: i64) -> ChatMessage {
        ChatMessage::new(
            "i".into(),
            ConversationId::room("r"),
            3,
            from.into(),
            Target::Room("r".into()),
            "hi".into(),
            ts,
            "c".into(),
        )
    }

    #[test]
    fn senders_edit_their_own_within_the_window_and_owners_delete_any() {
        let m = msg("alice", 1_000);
        let code = |r: Result<(), (ErrorCode, String)>| r.err().map(|e| e.0);
        assert_eq!(
            code(judge(
                EventKind::Edit,
                "alice",
                Some(&m),
                false,
                2_000,
                Some(5_000)
            )),
            None
        );
        assert_eq!(
            code(judge(
                EventKind::Edit,
                "alice",
                Some(&m),
                false,
                9_000,
                Some(5_000)
            )),
            Some(ErrorCode::Forbidden)
        );
        assert_eq!(
            code(judge(
                EventKind::Edit,
                "alice",
                Some(&m),
                false,
                9_000,
                None
            )),
            None
        );
        assert_eq!(
            code(judge(EventKind::Edit, "bob", Some(&m), true, 2_000, None)),
            Some(ErrorCode::Forbidden),
            "owners delete, they do not edit"
        );
        assert_eq!(
            code(judge(
                EventKind::Delete,
                "bob",
                Some(&m),
                false,
                2_000,
                None
            )),
            Some(ErrorCode::Forbidden)
        );
        assert_eq!(
            code(judge(EventKind::Delete, "bob", Some(&m), true, 2_000, None)),
            None
        );
        assert_eq!(
            code(judge(EventKind::Delete, "alice", None, false, 2_000, None)),
            Some(ErrorCode::NotFound)
        );
        let mut gone = m.clone();
        gone.deleted = true;
        assert_eq!(
            code(judge(
                EventKind::Edit,
                "alice",
                Some(&gone),
                false,
                2_000,
                None
            )),
            Some(ErrorCode::NotFound)
        );
        let mut event = m;
        event.kind = Some(EventKind::Edit);
        assert_eq!(
            code(judge(
                EventKind::Delete,
                "alice",
                Some(&event),
                false,
                2_000,
                None
            )),
            Some(ErrorCode::BadRequest)
        );
    }
}
