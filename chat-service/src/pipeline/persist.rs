//! Stage 3, persist: the batch's messages become durable in history-service
//! (recent window, archive backlog, offline queues) before anyone is told of
//! them, so a `sent` ack or a live message is never for something that could
//! still be lost.

use common::{
    auth::InternalChannel,
    keys::Keys,
    model::{ChatMessage, IngressEntry},
    presence::Online,
    redis_conn::{Redis, query_scripted},
    summary::Summaries,
};
use proto::history::internal::v1::{self as hpb, history_internal_client::HistoryInternalClient};

use super::admit::Accepted;
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

impl Persist {
    /// Stores `messages`, each with its offline recipients: members online
    /// on no live gateway, the sender excepted.
    pub(crate) async fn run(
        &mut self,
        stored: &[Accepted],
        messages: &[ChatMessage],
        online: &Online,
        trace: Option<&str>,
    ) -> Result<(), BatchError> {
        if messages.is_empty() {
            return Ok(());
        }
        let items = stored
            .iter()
            .zip(messages)
            .map(|(a, m)| {
                // Without a presence answer for the conversation, everyone
                // counts as offline: an extra offline copy beats a lost one.
                let offline = online
                    .get(a.conversation.as_str())
                    .map_or(&a.recipients[..], |reach| &reach.offline[..]);
                hpb::AppendItem {
                    message: Some(common::convert::to_pb(m)),
                    offline_recipients: offline
                        .iter()
                        .filter(|u| **u != a.entry.user)
                        .cloned()
                        .collect(),
                }
            })
            .collect();
        // Within the configured gRPC size, whatever the batch: one that is too
        // big for one call would otherwise fail the same way on every retry.
        let (appends, enqueues) = crate::chunks::split(items, self.max_message_bytes);
        for request in appends {
            let started = std::time::Instant::now();
            let mut request = tonic::Request::new(request);
            common::trace::to_grpc(&mut request, trace);
            self.history
                .append(request)
                .await
                .map_err(BatchError::history)?;
            metrics::histogram!("chat_append_seconds").record(started.elapsed().as_secs_f64());
        }
        for request in enqueues {
            self.history
                .enqueue(request)
                .await
                .map_err(BatchError::history)?;
        }
        Ok(())
    }

    /// An entry going to the dead-letter stream may already hold a seq (it
    /// was sequenced, then failed for good): a tombstone takes its place in
    /// history, so clients see no gap. Entries that took no seq, or whose
    /// conversation history-service refuses, need none.
    pub async fn tombstone(&mut self, conn: &mut Redis, field: &str) -> Result<(), BatchError> {
        let Ok(entry) = serde_json::from_str::<IngressEntry>(field) else {
            return Ok(());
        };
        let conversation = entry.to.conversation(&entry.user);
        let record: Option<String> = redis::cmd("GET")
            .arg(
                self.keys
                    .dedup(conversation.as_str(), &entry.user, &entry.client_id),
            )
            .query_async(conn)
            .await?;
        let Some(Ok(s)) = record.map(|r| crate::sequencer::parse_record(false, &r)) else {
            return Ok(());
        };
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
        let item = hpb::AppendItem {
            message: Some(common::convert::to_pb(&tombstone)),
            offline_recipients: Vec::new(),
        };
        let stored = self
            .history
            .append(hpb::AppendRequest { items: vec![item] })
            .await
            .map_err(BatchError::history);
        match stored {
            Err(e) if e.is_content() => {
                tracing::warn!(error = %e, "no tombstone: history refuses this conversation");
                Ok(())
            }
            Err(e) => Err(e),
            Ok(_) => {
                let mut pipe = redis::pipe();
                self.summaries.add_tombstone(&mut pipe, &tombstone);
                query_scripted::<()>(conn, &pipe, &[self.summaries.script()]).await?;
                metrics::counter!("chat_tombstones_total").increment(1);
                tracing::warn!(conversation = %tombstone.conversation, seq = tombstone.seq, "tombstone stored for a dead-lettered message");
                Ok(())
            }
        }
    }
}
