//! Stage 4, deliver: one publish per gateway with something to receive (see
//! `payloads.rs` for what and `publish.rs` for how a lost one is noticed),
//! the DM index of each party's conversation list, and a reroute of what no
//! gateway heard.

use std::collections::HashMap;

use common::{
    auth::InternalChannel,
    ids::Conversation,
    keys::Keys,
    model::ChatMessage,
    presence::{Lookup, Online},
    redis_conn::{Redis, query_scripted},
};
use proto::history::internal::v1::{self as hpb, history_internal_client::HistoryInternalClient};

use super::payloads::{self, Outcome};
use crate::{error::BatchError, publish::Publisher};

pub struct Deliver {
    pub keys: Keys,
    pub publisher: Publisher,
    /// For rerouting: offline queues of the unheard, and where they are now.
    pub history: HistoryInternalClient<InternalChannel>,
    pub presence: Lookup,
}

impl Deliver {
    pub(crate) async fn run(
        &mut self,
        conn: &mut Redis,
        outcome: &Outcome<'_>,
        online: &Online,
    ) -> Result<(), BatchError> {
        let payloads = payloads::payloads(outcome, online);
        let mut pipe = redis::pipe();
        self.index_dms(&mut pipe, outcome.messages);
        self.publisher.add(&mut pipe, &payloads);
        let heard: Vec<i64> = if !payloads.is_empty() {
            query_scripted(conn, &pipe, &[self.publisher.script()]).await?
        } else {
            if pipe.cmd_iter().next().is_some() {
                pipe.query_async::<()>(conn).await?;
            }
            Vec::new()
        };
        let unheard = crate::publish::unheard(&payloads, &heard);
        if !unheard.is_empty() {
            self.reroute(conn, outcome, online, &unheard).await?;
        }
        Ok(())
    }

    /// Every DM message puts its conversation at the top of both parties'
    /// lists (one ZADD each, replies ignored), so a client that resyncs finds
    /// a DM it has never seen.
    fn index_dms(&self, pipe: &mut redis::Pipeline, messages: &[ChatMessage]) {
        for m in messages {
            if let Conversation::Dm(a, b) = m.conversation.kind() {
                for party in [a, b] {
                    pipe.zadd(self.keys.user_dms(party), m.conversation.as_str(), m.ts)
                        .ignore();
                }
            }
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
        online: &Online,
        unheard: &[String],
    ) -> Result<(), BatchError> {
        tracing::warn!(gateways = ?unheard, "deliveries reached no subscriber; rerouting");
        let stranded = payloads::stranded(outcome, online, unheard);
        if stranded.is_empty() {
            return Ok(());
        }
        let items = stranded
            .iter()
            .map(|s| hpb::AppendItem {
                message: Some(common::convert::to_pb(s.message)),
                offline_recipients: s.users.clone(),
            })
            .collect();
        self.history
            .enqueue(hpb::AppendRequest { items })
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
