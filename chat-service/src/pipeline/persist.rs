//! Stage 3, persist: the batch's messages become durable in history-service
//! (recent window, archive backlog, offline queues) before anyone is told of
//! them, so a `sent` ack or a live message is never for something that could
//! still be lost.

use service_kit::auth::InternalChannel;

use chat_redis::{
    connection::{Redis, query_scripted},
    keys::Keys,
    presence::Whereabouts,
    summary::Summaries,
};

use chat_model::message::{ChatMessage, IngressEntry};
use proto::history::internal::v1::{
    self as internal_pb, history_internal_client::HistoryInternalClient,
};

use std::collections::HashMap;

use super::sequence::SequencedBatch;
use crate::error::BatchError;

#[derive(Clone)]
pub struct Persist {
    pub keys: Keys,
    /// A tombstone blanks its message's preview, set when it was sequenced.
    pub summaries: Summaries,
    pub history: HistoryInternalClient<InternalChannel>,
    /// Largest gRPC message to history-service (GRPC_MAX_MESSAGE_BYTES).
    pub max_message_bytes: usize,
}

/// An offline recipient who connected while the message was on its way
/// (history-service's `Late`): their socket read the queue before the
/// message got there, so it goes to them live.
pub(crate) struct Late {
    /// Index into the batch's messages.
    pub message: usize,
    pub user: String,
}

impl Persist {
    /// Stores the batch's messages, each with its offline recipients:
    /// members online on no live gateway (as of `presence_at`), the sender
    /// excepted; an event with its target's new state. Returns the offline
    /// recipients who connected meanwhile.
    pub(crate) async fn run(
        &mut self,
        sequenced: &SequencedBatch,
        online: &Whereabouts,
        presence_at: i64,
        trace: Option<&str>,
    ) -> Result<Vec<Late>, BatchError> {
        let SequencedBatch {
            stored,
            messages,
            targets,
            replays,
            ..
        } = sequenced;
        if messages.is_empty() {
            return Ok(Vec::new());
        }
        let items = stored
            .iter()
            .zip(messages)
            .zip(targets.iter().zip(replays))
            .map(|((a, m), (target, replay))| {
                // Without a presence answer for the conversation, everyone
                // counts as offline: an extra offline copy beats a lost one.
                let offline = online
                    .get(a.conversation.as_str())
                    .map_or(&a.recipients[..], |reach| &reach.offline[..]);
                internal_pb::AppendItem {
                    message: Some(chat_model::convert::to_pb(m)),
                    offline_recipients: offline
                        .iter()
                        .filter(|u| **u != a.entry.user)
                        .cloned()
                        .collect(),
                    target: target.as_ref().map(chat_model::convert::to_pb),
                    replay: *replay,
                }
            })
            .collect();
        let index: HashMap<(&str, u64), usize> = messages
            .iter()
            .enumerate()
            .map(|(i, m)| ((m.conversation.as_str(), m.seq), i))
            .collect();
        let mut late = Vec::new();
        let mut collect = |request: &internal_pb::AppendRequest,
                           reply: internal_pb::AppendResponse| {
            for l in reply.late {
                let found = request
                    .items
                    .get(l.item as usize)
                    .and_then(|i| i.message.as_ref())
                    .and_then(|m| index.get(&(m.conversation_id.as_str(), m.seq)));
                if let Some(&message) = found {
                    late.push(Late {
                        message,
                        user: l.username,
                    });
                }
            }
        };
        // Within the configured gRPC size, whatever the batch: one that is too
        // big for one call would otherwise fail the same way on every retry.
        let (appends, enqueues) = crate::chunks::split(items, self.max_message_bytes, presence_at);
        for request in appends {
            let started = std::time::Instant::now();
            let mut call = tonic::Request::new(request.clone());
            service_kit::trace::to_grpc(&mut call, trace);
            let reply = self
                .history
                .append(call)
                .await
                .map_err(BatchError::history)?;
            metrics::histogram!("chat_append_seconds").record(started.elapsed().as_secs_f64());
            collect(&request, reply.into_inner());
        }
        for request in enqueues {
            let reply = self
                .history
                .enqueue(request.clone())
                .await
                .map_err(BatchError::history)?;
            collect(&request, reply.into_inner());
        }
        Ok(late)
    }

    /// An entry going to the dead-letter stream may already hold a seq (it
    /// was sequenced, then failed for good): a tombstone takes its place in
    /// history, so clients see no gap. Entries that took no seq, whose
    /// message was stored before it failed in a later step, or whose
    /// conversation history-service refuses, need none.
    pub async fn tombstone(&mut self, conn: &mut Redis, field: &str) -> Result<(), BatchError> {
        let Ok(entry) = serde_json::from_str::<IngressEntry>(field) else {
            return Ok(());
        };
        let conversation = entry.to.conversation(&entry.user);
        let record: Option<String> = redis::cmd("GET")
            .arg(self.keys.dedup(
                conversation.as_str(),
                crate::sequencer::dedup_sender(&entry),
                &entry.client_id,
            ))
            .query_async(conn)
            .await?;
        let Some(Ok(s)) = record.map(|r| crate::sequencer::parse_record(false, &r)) else {
            return Ok(());
        };
        // Stored already (it failed for good in a later step): the message
        // stands, and a re-send of it is acknowledged as stored.
        let found = self
            .history
            .get_messages(internal_pb::GetMessagesRequest {
                conversation_id: conversation.to_string(),
                seqs: vec![s.seq],
            })
            .await
            .map_err(BatchError::history);
        let stored = match found {
            Err(e) if e.is_content() => {
                tracing::warn!(error = %service_kit::error::Chain(&e), "no tombstone: history refuses this conversation");
                return Ok(());
            }
            found => found?
                .into_inner()
                .messages
                .into_iter()
                .any(|m| m.id == s.id && !m.tombstone),
        };
        if stored {
            tracing::warn!(%conversation, seq = s.seq, "dead-lettered after it was stored: no tombstone");
            return Ok(());
        }
        let mut tombstone = ChatMessage::new(
            s.id,
            conversation,
            s.seq,
            entry.user,
            entry.to,
            String::new(),
            s.ts,
            entry.client_id,
        );
        tombstone.tombstone = true;
        let item = internal_pb::AppendItem {
            message: Some(chat_model::convert::to_pb(&tombstone)),
            ..Default::default()
        };
        let stored = self
            .history
            .append(internal_pb::AppendRequest {
                items: vec![item],
                presence_at: 0,
            })
            .await
            .map_err(BatchError::history);
        match stored {
            Err(e) if e.is_content() => {
                tracing::warn!(error = %service_kit::error::Chain(&e), "no tombstone: history refuses this conversation");
                Ok(())
            }
            Err(e) => Err(e),
            Ok(_) => {
                let mut pipe = redis::pipe();
                self.summaries.add_tombstone(&mut pipe, &tombstone);
                // Final, and never stored: no event may target it, and a
                // re-send of it is told it failed (`sequencer.rs`).
                let finals = self.keys.finals(tombstone.conversation.as_str());
                for bit in [2 * tombstone.seq, 2 * tombstone.seq + 1] {
                    pipe.setbit(&finals, bit as usize, true).ignore();
                }
                query_scripted::<()>(conn, &pipe, &[self.summaries.script()]).await?;
                metrics::counter!("chat_tombstones_total").increment(1);
                tracing::warn!(conversation = %tombstone.conversation, seq = tombstone.seq, "tombstone stored for a dead-lettered message");
                Ok(())
            }
        }
    }
}
