//! Stage 2, sequence: dedup, seq and the decision on each edit or delete
//! for every send (one Lua call each, in one pipeline; see `sequencer.rs`),
//! and the messages that follow.
//!
//! A replay of an entry already sequenced gets the same id and seq. A
//! re-send (a new entry with a known (sender, client_id)) whose original is
//! stored and delivered is only acknowledged again; one racing its
//! unfinished original is stored with the original's body, so one id never
//! carries two bodies. A re-send of a message that was dead-lettered after
//! it took its seq is refused with `failed`: nothing was stored.
//!
//! An event's target's new state is computed here, once
//! ([`ChatMessage::apply`] on the target admission read): history-service,
//! the archiver and the conversation list store it as they are handed it.

use std::collections::HashMap;

use chat_redis::{connection::Redis, keys::Keys};

use chat_model::{
    message::{ChatMessage, EntryKind, INGRESS_FIELD, IngressEntry},
    protocol::ErrorCode,
};

use super::admit::{Accepted, Rejected};
use crate::{
    error::BatchError,
    sequencer::{Decision, SequenceRequest, Sequencer, Taken},
};

/// The batch's sends after sequencing.
#[derive(Default)]
pub(crate) struct SequencedBatch {
    /// Sends to store and deliver, with their messages (same order).
    pub stored: Vec<Accepted>,
    pub messages: Vec<ChatMessage>,
    /// For each of `messages` that is an edit or delete whose target
    /// admission read: the target's state with it applied.
    pub targets: Vec<Option<ChatMessage>>,
    /// For each of `messages`: sequenced before (a retried batch, a re-send).
    pub replays: Vec<bool>,
    /// For each of `messages`: its live deliveries were published before
    /// (only its sender's `sent` goes out again).
    pub delivered: Vec<bool>,
    /// Refused now: an event whose target is deleted (or has no message),
    /// a re-send of a message that was never stored.
    pub refused: Vec<Rejected>,
    /// Re-sends of messages already stored and delivered: their senders get
    /// `sent` again, nobody gets the message again.
    pub resent: Vec<(Accepted, ChatMessage)>,
    pub fresh: usize,
    pub replayed: usize,
}

#[derive(Clone)]
pub struct Sequence {
    pub keys: Keys,
    pub sequencer: Sequencer,
    /// INGRESS_PARTITIONS: where a conversation's entries are.
    pub partitions: usize,
}

impl Sequence {
    pub(crate) async fn run(
        &self,
        conn: &mut Redis,
        sends: Vec<Accepted>,
    ) -> Result<SequencedBatch, BatchError> {
        let requests: Vec<SequenceRequest<'_>> = sends
            .iter()
            .map(|a| SequenceRequest {
                conversation: a.conversation.as_str(),
                sender: &a.entry.user,
                dedup_as: crate::sequencer::dedup_sender(&a.entry),
                client_id: &a.entry.client_id,
                stream_id: &a.stream_id,
                preview_body: (a.entry.kind == EntryKind::Send).then_some(a.entry.body.as_str()),
                event: a.entry.kind.event().zip(a.entry.target_seq),
                member: a
                    .entry
                    .member
                    .as_ref()
                    .filter(|_| a.entry.kind == EntryKind::Member)
                    .map(|e| e.action),
            })
            .collect();
        let decisions = self.sequencer.sequence(conn, &requests).await?;
        drop(requests);
        let mut out = SequencedBatch::default();
        let mut taken = Vec::with_capacity(sends.len());
        for (a, d) in sends.into_iter().zip(decisions) {
            match d {
                Decision::Refused(reason) => out.refused.push(refusal(a, ErrorCode::NotFound, reason)),
                // Its seq is a tombstone: never acknowledged as stored, whether a
                // re-send or a retry of the entry being dead-lettered.
                Decision::Taken(t) if t.dead => out.refused.push(refusal(
                    a,
                    ErrorCode::Failed,
                    "this request failed for good and nothing was stored; send it again under a new client_id".into(),
                )),
                Decision::Taken(t) => taken.push((a, t)),
            }
        }
        out.fresh = taken.iter().filter(|(_, t)| t.fresh).count();
        out.replayed = taken.len() - out.fresh;
        let originals = self.unfinished_originals(conn, &taken).await?;
        for (a, d) in taken {
            let resend = is_resend(&a, &d);
            let original = d.origin.as_ref().and_then(|o| originals.get(o));
            let body = original.map_or(&a.entry.body, |o| &o.body).clone();
            let mut m = ChatMessage::new(
                d.id,
                a.conversation.clone(),
                d.seq,
                a.entry.user.clone(),
                a.entry.to.clone(),
                body,
                d.ts,
                a.entry.client_id.clone(),
            );
            // What the seq was first taken for decides what it is.
            let first = original.map_or(&a.entry, |o| o);
            m.kind = first.kind.event();
            m.target_seq = m.kind.and(first.target_seq);
            m.member = first
                .member
                .clone()
                .filter(|_| first.kind == EntryKind::Member);
            if m.kind == Some(chat_model::message::EventKind::Delete) {
                m.body.clear();
            }
            if resend && original.is_none() {
                // The original is stored and delivered: this is a pure ack.
                out.resent.push((a, m));
            } else {
                let target = a.target.clone().map(|mut t| {
                    t.apply(&m);
                    t
                });
                out.targets.push(target.filter(|_| m.kind.is_some()));
                out.replays.push(!d.fresh);
                out.delivered.push(d.delivered);
                out.stored.push(a);
                out.messages.push(m);
            }
        }
        Ok(out)
    }

    /// The ingress entries that first took the id and seq of this batch's
    /// re-sends and are not finished yet (still in the stream: entries are
    /// deleted once done), by entry id.
    async fn unfinished_originals(
        &self,
        conn: &mut Redis,
        taken: &[(Accepted, Taken)],
    ) -> Result<HashMap<String, IngressEntry>, BatchError> {
        // An original is on its conversation's partition, like its re-send.
        let mut origins: Vec<(&str, &str)> = taken
            .iter()
            .map(|(a, d)| (a, d))
            .filter(|(a, d)| is_resend(a, d))
            .filter_map(|(a, d)| Some((d.origin.as_deref()?, a.conversation.as_str())))
            .collect();
        origins.sort_unstable();
        origins.dedup();
        if origins.is_empty() {
            return Ok(HashMap::new());
        }
        let mut pipe = redis::pipe();
        for (origin, conversation) in &origins {
            let partition = chat_redis::keys::partition(conversation, self.partitions);
            pipe.cmd("XRANGE")
                .arg(self.keys.ingress(partition))
                .arg(*origin)
                .arg(*origin);
        }
        let ranges: Vec<redis::streams::StreamRangeReply> = pipe.query_async(conn).await?;
        Ok(ranges
            .into_iter()
            .flat_map(|r| r.ids)
            .filter_map(|raw| {
                let field = raw.get::<String>(INGRESS_FIELD)?;
                let entry = serde_json::from_str(&field).ok()?;
                Some((raw.id, entry))
            })
            .collect())
    }
}

/// A known (sender, client_id) from another ingress entry than this one.
fn is_resend(a: &Accepted, d: &Taken) -> bool {
    !d.fresh && d.origin.as_deref() != Some(a.stream_id.as_str())
}

fn refusal(a: Accepted, code: ErrorCode, message: String) -> Rejected {
    Rejected {
        stream_id: a.stream_id,
        entry: a.entry,
        code,
        message,
        retry_after_ms: None,
    }
}
