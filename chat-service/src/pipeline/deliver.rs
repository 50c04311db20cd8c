//! Stage 4, deliver: one publish per gateway with something to receive (see
//! `payloads.rs` for what and `publish.rs` for how a lost one is noticed),
//! the conversation list's state (each party's DM index, each
//! conversation's summary: `chat_redis::summary`), a reroute of what no
//! gateway heard, and a live delivery to offline recipients who connected
//! while their message was on its way (the connect race: see `persist.rs`).

use std::collections::HashMap;

use service_kit::auth::InternalChannel;

use chat_model::{ids::Conversation, message::ChatMessage};

use chat_redis::{
    connection::{Redis, query_scripted},
    keys::Keys,
    presence::{Lookup, Whereabouts},
};
use proto::history::internal::v1::{
    self as internal_pb, history_internal_client::HistoryInternalClient,
};

use chat_redis::{publish::Publisher, summary::Summaries};

use super::{
    payloads::{self, Outcome},
    persist::Late,
};

use crate::error::BatchError;

#[derive(Clone)]
pub struct Deliver {
    pub keys: Keys,
    pub publisher: Publisher,
    /// For rerouting: offline queues of the unheard, and where they are now.
    pub history: HistoryInternalClient<InternalChannel>,
    pub presence: Lookup,
    pub summaries: Summaries,
    /// The most DMs a user's list keeps (DM_LIST_LIMIT): the least recently
    /// active beyond it are dropped from the list (not from history).
    pub dm_list_limit: usize,
}

impl Deliver {
    pub(crate) async fn run(
        &mut self,
        conn: &mut Redis,
        outcome: &Outcome<'_>,
        online: &Whereabouts,
        late: &[Late],
    ) -> Result<(), BatchError> {
        let payloads = payloads::payloads(outcome, online);
        let mut pipe = redis::pipe();
        self.index_dms(&mut pipe, outcome.messages);
        self.summarize(&mut pipe, outcome);
        self.publisher.add(&mut pipe, &payloads);
        let heard: Vec<i64> = if pipe.cmd_iter().next().is_some() {
            let scripts = [self.publisher.script(), self.summaries.script()];
            query_scripted(conn, &pipe, &scripts).await?
        } else {
            Vec::new()
        };
        let unheard = chat_redis::publish::unheard(&payloads, &heard);
        if !unheard.is_empty() {
            metrics::counter!("chat_unheard_deliveries_total").increment(unheard.len() as u64);
            self.reroute(conn, outcome, online, &unheard).await?;
        }
        if !late.is_empty() {
            self.catch_up(conn, outcome, late).await?;
        }
        Ok(())
    }

    /// Offline recipients who connected after the batch looked up presence
    /// and read their queue before their message got there: the message
    /// goes to wherever they are now, live. (A socket that has it already
    /// gets it once: gateways hand each socket a seq once.)
    async fn catch_up(
        &mut self,
        conn: &mut Redis,
        outcome: &Outcome<'_>,
        late: &[Late],
    ) -> Result<(), BatchError> {
        let mut by_message: HashMap<usize, Vec<String>> = HashMap::new();
        for l in late {
            by_message
                .entry(l.message)
                .or_default()
                .push(l.user.clone());
        }
        let stranded: Vec<payloads::Stranded<'_>> = by_message
            .into_iter()
            .filter_map(|(i, users)| {
                Some(payloads::Stranded {
                    message: outcome.messages.get(i)?,
                    users,
                })
            })
            .collect();
        let wanted: HashMap<&str, &[String]> = stranded
            .iter()
            .map(|s| (s.message.conversation.as_str(), &s.users[..]))
            .collect();
        let now = self.presence.online(conn, wanted).await?;
        let payloads = payloads::rerouted(&stranded, &Whereabouts::new(), &now, &[]);
        self.publisher.publish(conn, &payloads).await?;
        metrics::counter!("chat_connect_race_deliveries_total").increment(late.len() as u64);
        Ok(())
    }

    /// Every DM message puts its conversation at the top of both parties'
    /// lists (one ZADD each, and a trim to DM_LIST_LIMIT; replies ignored),
    /// so a client that resyncs finds a DM it has never seen.
    fn index_dms(&self, pipe: &mut redis::Pipeline, messages: &[ChatMessage]) {
        let beyond = -(self.dm_list_limit as isize) - 1;
        for m in messages {
            if let Conversation::Dm(a, b) = m.conversation.kind() {
                for party in [a, b] {
                    let key = self.keys.user_dms(party);
                    pipe.zadd(&key, m.conversation.as_str(), m.ts).ignore();
                    pipe.zremrangebyrank(&key, 0, beyond).ignore();
                }
            }
        }
    }

    /// The conversation list's summaries: every edit and delete (a message's
    /// preview was set when it was sequenced: `sequencer.rs`).
    fn summarize(&self, pipe: &mut redis::Pipeline, outcome: &Outcome<'_>) {
        for (m, target) in outcome.messages.iter().zip(outcome.targets) {
            if m.kind.is_none() {
                continue;
            }
            self.summaries.add_event(pipe, m, target.as_ref());
        }
    }

    /// Messages whose gateway was not listening: their recipients there go to
    /// their offline queues (nothing depends on the client noticing), and the
    /// messages go live to wherever a fresh presence lookup finds them now (a
    /// client that already reconnected to another gateway).
    async fn reroute(
        &mut self,
        conn: &mut Redis,
        outcome: &Outcome<'_>,
        online: &Whereabouts,
        unheard: &[String],
    ) -> Result<(), BatchError> {
        tracing::warn!(gateways = ?unheard, "deliveries reached no subscriber; rerouting");
        let stranded = payloads::stranded(outcome, online, unheard);
        if stranded.is_empty() {
            return Ok(());
        }
        let items = stranded
            .iter()
            .map(|s| internal_pb::AppendItem {
                message: Some(chat_model::convert::to_pb(s.message)),
                offline_recipients: s.users.clone(),
                ..Default::default()
            })
            .collect();
        self.history
            .enqueue(internal_pb::AppendRequest {
                items,
                presence_at: 0,
            })
            .await
            .map_err(BatchError::history)?;
        let wanted: HashMap<&str, &[String]> = stranded
            .iter()
            .map(|s| (s.message.conversation.as_str(), &s.users[..]))
            .collect();
        let again = self.presence.online(conn, wanted).await?;
        let payloads = payloads::rerouted(&stranded, online, &again, unheard);
        // Whoever is still unheard has the offline copy.
        self.publisher.publish(conn, &payloads).await?;
        metrics::counter!("chat_rerouted_messages_total").increment(stranded.len() as u64);
        Ok(())
    }
}
