//! One batch of ingress entries, start to finish, as a pipeline of stages,
//! each a file, each importing only the ones before it:
//!
//! admit (with targets, for edits and deletes) → sequence → (presence) →
//! persist → deliver → ack (sent with the consumer's next read)
//!
//! A transient failure returns an error before anything is acknowledged, so
//! the whole batch is retried; every stage is idempotent, so a retry yields
//! the same ids and seqs.

mod ack;
pub mod admit;
mod blocks;
pub mod deliver;
mod entries;
mod payloads;
pub mod persist;
pub mod sequence;
mod spans;
pub mod targets;

use std::{collections::HashMap, sync::Arc};

use chat_redis::{connection::Redis, consumer::Group, presence::Lookup};
use redis::streams::StreamId;

use self::{
    admit::Admit, deliver::Deliver, payloads::Outcome, persist::Persist, sequence::Sequence,
};
use crate::error::BatchError;

#[derive(Clone)]
pub struct BatchProcessor {
    pub conn: Redis,
    pub admit: Admit,
    pub sequence: Sequence,
    pub presence: Lookup,
    pub persist: Persist,
    pub deliver: Deliver,
    /// The ingress stream's group: how entries are acknowledged and
    /// dead-lettered.
    pub group: Group,
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct BatchStats {
    pub fresh: usize,
    pub replayed: usize,
    pub rejected: usize,
    pub dead: usize,
    /// Online recipients summed over the batch's messages.
    pub recipients: usize,
}

impl std::ops::Add for BatchStats {
    type Output = Self;

    fn add(self, o: Self) -> Self {
        Self {
            fresh: self.fresh + o.fresh,
            replayed: self.replayed + o.replayed,
            rejected: self.rejected + o.rejected,
            dead: self.dead + o.dead,
            recipients: self.recipients + o.recipients,
        }
    }
}

impl BatchProcessor {
    /// Runs `entries` through every stage; their acknowledgement goes into
    /// `finish` (the consumer's finishing pipeline) once all is done.
    pub async fn process(
        &mut self,
        entries: &[StreamId],
        finish: &mut redis::Pipeline,
    ) -> Result<BatchStats, BatchError> {
        let admitted = self.admit.run(&mut self.conn, entries).await?;
        // Where every recipient is, once per conversation of the batch. It
        // does not depend on the seqs, so it is asked at the same time as
        // them: one round trip instead of two (and the two requests usually
        // reach Redis in one write).
        let mut wanted: HashMap<&str, Arc<[String]>> = HashMap::new();
        for a in admitted.sends.iter().chain(&admitted.typing) {
            wanted
                .entry(a.conversation.as_str())
                .or_insert_with(|| a.recipients.clone());
        }
        let wanted: Vec<(String, Arc<[String]>)> = wanted
            .into_iter()
            .map(|(conv, recipients)| (conv.to_owned(), recipients))
            .collect();
        let mut presence_conn = self.conn.clone();
        let presence_at = chat_model::time::now_ms();
        let (sequenced, online) =
            tokio::try_join!(self.sequence.run(&mut self.conn, admitted.sends), async {
                let lookups = wanted.iter().map(|(c, r)| (c.as_str(), &r[..]));
                Ok::<_, BatchError>(self.presence.online(&mut presence_conn, lookups).await?)
            },)?;

        let spans = spans::MessageSpans::open(&sequenced.stored);
        let late = self
            .persist
            .run(&sequenced, &online, presence_at, spans.first())
            .await?;
        let mut rejected = admitted.rejected;
        rejected.extend(sequenced.refused);
        for r in &rejected {
            metrics::counter!("chat_refused_total", "code" => r.code.as_str()).increment(1);
            if r.entry.gw.is_empty() {
                // Nobody hears this error: a membership event of a room
                // deleted since, or an entry this build cannot judge.
                tracing::warn!(client_id = %r.entry.client_id, to = %r.entry.to, error = %r.message, "membership event dropped");
            }
        }
        let outcome = Outcome {
            accepted: &sequenced.stored,
            messages: &sequenced.messages,
            targets: &sequenced.targets,
            delivered: &sequenced.delivered,
            traces: &spans.parents,
            resent: &sequenced.resent,
            typing: &admitted.typing,
            rejected: &rejected,
            dead: &admitted.dead,
        };
        self.deliver
            .run(&mut self.conn, &outcome, &online, &late)
            .await?;
        ack::add(&self.group, &self.sequence.keys, finish, &outcome);

        let recipients = sequenced
            .stored
            .iter()
            .filter_map(|a| online.get(a.conversation.as_str()))
            .map(|reach| reach.gateways.values().map(Vec::len).sum::<usize>())
            .sum();
        Ok(BatchStats {
            recipients,
            fresh: sequenced.fresh,
            replayed: sequenced.replayed,
            rejected: rejected.len(),
            dead: admitted.dead.len(),
        })
    }

    /// Leaves a tombstone for an entry about to be dead-lettered, if it took
    /// a seq (see [`Persist::tombstone`]).
    pub async fn tombstone(&mut self, field: &str) -> Result<(), BatchError> {
        self.persist.tombstone(&mut self.conn, field).await
    }
}
