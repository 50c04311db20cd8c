//! One batch of ingress entries, start to finish: validate and authorize,
//! sequence, persist, deliver, acknowledge. A transient failure returns an
//! error before anything is acknowledged, so the whole batch is retried; every
//! step is idempotent, so a retry yields the same ids and seqs.

use std::{collections::HashMap, sync::Arc};

use common::auth::InternalChannel;
use common::redis_conn::Redis;
use common::{
    ids::{ConversationId, Target},
    keys::Keys,
    model::{ChatMessage, EntryKind, INGRESS_FIELD, IngressEntry},
    protocol::ErrorCode,
};
use proto::history::internal::v1::{self as hpb, history_internal_client::HistoryInternalClient};
use redis::streams::StreamId;

use crate::{
    members::{Members, Version},
    presence::Presence,
    sequencer::{SequenceRequest, Sequencer},
};

use common::limits::{MAX_BODY, MAX_CLIENT_ID};

#[derive(Debug, thiserror::Error)]
pub enum BatchError {
    #[error("redis: {0}")]
    Redis(#[from] redis::RedisError),
    #[error("user-service: {0}")]
    Users(#[from] crate::members::Unavailable),
    #[error("history-service: {code:?}: {message}")]
    History { code: tonic::Code, message: String },
}

impl BatchError {
    fn history(status: tonic::Status) -> Self {
        Self::History {
            code: status.code(),
            message: status.message().to_owned(),
        }
    }

    /// The batch's own content was refused (history-service judged it
    /// invalid or too big): retrying the same batch fails the same way, so
    /// the worker bisects it instead.
    pub fn is_content(&self) -> bool {
        matches!(
            self,
            Self::History {
                code: tonic::Code::InvalidArgument
                    | tonic::Code::OutOfRange
                    | tonic::Code::FailedPrecondition
                    | tonic::Code::ResourceExhausted,
                ..
            }
        )
    }
}

/// An entry that passed validation and authorization.
pub(crate) struct Accepted {
    pub stream_id: String,
    pub entry: IngressEntry,
    pub conversation: String,
    pub recipients: Arc<[String]>,
}

/// Everything a batch decided, for delivery.
pub(crate) struct Outcome<'a> {
    pub accepted: &'a [Accepted],
    pub messages: &'a [ChatMessage],
    /// Re-sends of messages already stored and delivered: their senders get
    /// `sent` again, nobody gets the message again.
    pub resent: &'a [(Accepted, ChatMessage)],
    pub typing: &'a [Accepted],
    pub rejected: &'a [Rejected],
    pub dead: &'a [(String, String)],
}

/// An entry refused with an error frame to its sender.
pub(crate) struct Rejected {
    pub stream_id: String,
    pub entry: IngressEntry,
    pub code: ErrorCode,
    pub message: String,
}

pub struct BatchProcessor {
    pub keys: Keys,
    pub conn: Redis,
    pub members: Members,
    pub presence: Presence,
    pub sequencer: Sequencer,
    pub history: HistoryInternalClient<InternalChannel>,
    pub publisher: crate::publish::Publisher,
    /// Largest gRPC message to history-service (GRPC_MAX_MESSAGE_BYTES).
    pub max_message_bytes: usize,
    pub group: String,
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
    pub async fn process(&mut self, entries: &[StreamId]) -> Result<BatchStats, BatchError> {
        let mut accepted = Vec::new();
        let mut typing = Vec::new();
        let mut rejected = Vec::new();
        let mut dead = Vec::new();
        let mut parsed = Vec::with_capacity(entries.len());
        for raw in entries {
            let field = raw.get::<String>(INGRESS_FIELD).unwrap_or_default();
            match serde_json::from_str::<IngressEntry>(&field) {
                Ok(entry) => parsed.push((raw, entry)),
                Err(_) => dead.push((raw.id.clone(), field)),
            }
        }
        let versions = self.room_versions(&parsed).await?;
        for (raw, entry) in parsed {
            match self.admit(&entry, &versions).await? {
                Ok((conversation, recipients)) => {
                    let a = Accepted {
                        stream_id: raw.id.clone(),
                        entry,
                        conversation,
                        recipients,
                    };
                    if a.entry.kind == EntryKind::Typing {
                        typing.push(a);
                    } else {
                        accepted.push(a);
                    }
                }
                Err((code, message)) => rejected.push(Rejected {
                    stream_id: raw.id.clone(),
                    entry,
                    code,
                    message,
                }),
            }
        }
        let rejected = self.readmit(rejected, &versions, &mut accepted).await?;

        let requests: Vec<SequenceRequest<'_>> = accepted
            .iter()
            .map(|a| SequenceRequest {
                conversation: &a.conversation,
                sender: &a.entry.user,
                client_id: &a.entry.client_id,
                stream_id: &a.stream_id,
            })
            .collect();
        let sequenced = self.sequencer.sequence(&mut self.conn, &requests).await?;
        drop(requests);
        let fresh = sequenced.iter().filter(|s| s.fresh).count();
        let replayed = sequenced.len() - fresh;
        let originals = self.unfinished_originals(&accepted, &sequenced).await?;
        let mut stored = Vec::with_capacity(accepted.len());
        let mut messages = Vec::with_capacity(accepted.len());
        let mut resent = Vec::new();
        for (a, s) in accepted.into_iter().zip(sequenced) {
            let resend = !s.fresh && s.origin.as_deref() != Some(a.stream_id.as_str());
            // A re-send racing its unfinished original is stored with the
            // original's body: one id never carries two bodies.
            let original = s.origin.as_ref().and_then(|o| originals.get(o));
            let body = original.map_or(&a.entry.body, |o| &o.body).clone();
            let m = ChatMessage {
                id: s.id,
                conversation: a.conversation.clone(),
                seq: s.seq,
                from: a.entry.user.clone(),
                to: a.entry.to.clone(),
                body,
                ts: s.ts,
                client_id: a.entry.client_id.clone(),
                tombstone: false,
            };
            if resend && original.is_none() {
                // The original is stored and delivered: this is a pure ack.
                resent.push((a, m));
            } else {
                stored.push(a);
                messages.push(m);
            }
        }
        let accepted = stored;

        let mut conversations: HashMap<&str, &[String]> = HashMap::new();
        for a in accepted.iter().chain(&typing) {
            conversations.insert(&a.conversation, &a.recipients);
        }
        let online = self.presence.online(&mut self.conn, conversations).await?;

        self.persist(&accepted, &messages, &online).await?;
        self.deliver(
            Outcome {
                accepted: &accepted,
                messages: &messages,
                resent: &resent,
                typing: &typing,
                rejected: &rejected,
                dead: &dead,
            },
            &online,
        )
        .await?;

        let recipients = accepted
            .iter()
            .filter_map(|a| online.get(&a.conversation))
            .map(|reach| reach.gateways.values().map(Vec::len).sum::<usize>())
            .sum();
        Ok(BatchStats {
            recipients,
            fresh,
            replayed,
            rejected: rejected.len(),
            dead: dead.len(),
        })
    }

    /// Admission is decided once. A refused send whose (sender, client_id)
    /// already holds a seq in its conversation was admitted before (this is a
    /// retried batch); a membership change since must neither leave that seq
    /// a gap nor answer `forbidden` for a stored message. It goes through,
    /// to the room's members as they are now.
    async fn readmit(
        &mut self,
        rejected: Vec<Rejected>,
        versions: &HashMap<String, Version>,
        accepted: &mut Vec<Accepted>,
    ) -> Result<Vec<Rejected>, BatchError> {
        let candidates: Vec<(usize, Target, String)> = rejected
            .iter()
            .enumerate()
            .filter(|(_, r)| {
                r.entry.kind == EntryKind::Send
                    && matches!(r.code, ErrorCode::Forbidden | ErrorCode::NotFound)
            })
            .filter_map(|(i, r)| {
                let target = Target::parse(&r.entry.to).ok()?;
                let conversation = target.conversation(&r.entry.user).to_string();
                Some((i, target, conversation))
            })
            .collect();
        if candidates.is_empty() {
            return Ok(rejected);
        }
        let mut pipe = redis::pipe();
        for (i, _, conversation) in &candidates {
            let r = &rejected[*i];
            pipe.exists(
                self.keys
                    .dedup(conversation, &r.entry.user, &r.entry.client_id),
            );
        }
        let admitted_before: Vec<bool> = pipe.query_async(&mut self.conn).await?;
        let mut again = std::collections::HashMap::new();
        for ((i, target, conversation), before) in candidates.into_iter().zip(admitted_before) {
            if !before {
                continue;
            }
            let recipients: Arc<[String]> = match &target {
                Target::Room(room) => self
                    .members
                    .room(room, versions.get(room).copied().flatten())
                    .await?
                    .unwrap_or_else(|| Arc::from(Vec::new())),
                Target::User(_) => match target.conversation(&rejected[i].entry.user) {
                    ConversationId::Dm(a, b) => Arc::from(vec![a, b]),
                    ConversationId::Room(_) => continue,
                },
            };
            again.insert(i, (conversation, recipients));
        }
        let mut still = Vec::with_capacity(rejected.len());
        for (i, r) in rejected.into_iter().enumerate() {
            match again.remove(&i) {
                Some((conversation, recipients)) => {
                    metrics::counter!("chat_readmitted_total").increment(1);
                    accepted.push(Accepted {
                        stream_id: r.stream_id,
                        entry: r.entry,
                        conversation,
                        recipients,
                    });
                }
                None => still.push(r),
            }
        }
        Ok(still)
    }

    /// An entry going to the dead-letter stream may already hold a seq (it
    /// was sequenced, then failed for good): a tombstone takes its place in
    /// history, so clients see no gap. Entries that took no seq, or whose
    /// conversation history-service refuses, need none.
    pub async fn tombstone(&mut self, field: &str) -> Result<(), BatchError> {
        let Ok(entry) = serde_json::from_str::<IngressEntry>(field) else {
            return Ok(());
        };
        let Ok(target) = Target::parse(&entry.to) else {
            return Ok(());
        };
        let conversation = target.conversation(&entry.user).to_string();
        let record: Option<String> = redis::cmd("GET")
            .arg(
                self.keys
                    .dedup(&conversation, &entry.user, &entry.client_id),
            )
            .query_async(&mut self.conn)
            .await?;
        let Some(Ok(s)) = record.map(|r| crate::sequencer::parse_record(false, &r)) else {
            return Ok(());
        };
        let tombstone = ChatMessage {
            id: s.id,
            conversation,
            seq: s.seq,
            from: entry.user,
            to: entry.to,
            body: String::new(),
            ts: s.ts,
            client_id: entry.client_id,
            tombstone: true,
        };
        let stored = self
            .history
            .append(hpb::AppendRequest {
                items: vec![hpb::AppendItem {
                    message: Some(common::convert::to_pb(&tombstone)),
                    offline_recipients: Vec::new(),
                }],
            })
            .await
            .map_err(BatchError::history);
        match stored {
            Err(e) if e.is_content() => {
                tracing::warn!(error = %e, "no tombstone: history refuses this conversation");
                Ok(())
            }
            Err(e) => Err(e),
            Ok(_) => {
                metrics::counter!("chat_tombstones_total").increment(1);
                tracing::warn!(conversation = %tombstone.conversation, seq = tombstone.seq, "tombstone stored for a dead-lettered message");
                Ok(())
            }
        }
    }

    /// The ingress entries that first took the id and seq of this batch's
    /// re-sends and are not finished yet (still in the stream: entries are
    /// deleted once done), by entry id.
    async fn unfinished_originals(
        &mut self,
        accepted: &[Accepted],
        sequenced: &[crate::sequencer::Sequenced],
    ) -> Result<HashMap<String, IngressEntry>, BatchError> {
        let mut origins: Vec<&str> = accepted
            .iter()
            .zip(sequenced)
            .filter(|(a, s)| !s.fresh && s.origin.as_deref() != Some(a.stream_id.as_str()))
            .filter_map(|(_, s)| s.origin.as_deref())
            .collect();
        origins.sort_unstable();
        origins.dedup();
        if origins.is_empty() {
            return Ok(HashMap::new());
        }
        let mut pipe = redis::pipe();
        for origin in &origins {
            pipe.cmd("XRANGE")
                .arg(self.keys.ingress())
                .arg(*origin)
                .arg(*origin);
        }
        let ranges: Vec<redis::streams::StreamRangeReply> =
            pipe.query_async(&mut self.conn).await?;
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

    /// The membership versions of the rooms this batch posts to, in one pipeline.
    async fn room_versions(
        &mut self,
        parsed: &[(&StreamId, IngressEntry)],
    ) -> Result<HashMap<String, Version>, BatchError> {
        let mut rooms: Vec<String> = parsed
            .iter()
            .filter_map(|(_, e)| match Target::parse(&e.to) {
                Ok(Target::Room(room)) => Some(room),
                _ => None,
            })
            .collect();
        rooms.sort_unstable();
        rooms.dedup();
        if rooms.is_empty() {
            return Ok(HashMap::new());
        }
        let mut pipe = redis::pipe();
        for room in &rooms {
            pipe.get(self.keys.room_version(room));
        }
        let versions: Vec<Version> = pipe.query_async(&mut self.conn).await?;
        Ok(rooms.into_iter().zip(versions).collect())
    }

    /// Validates an entry and finds its conversation and recipients. The outer
    /// error is transient (retry the batch); the inner one is the sender's fault.
    async fn admit(
        &self,
        entry: &IngressEntry,
        versions: &HashMap<String, Version>,
    ) -> Result<Result<(String, Arc<[String]>), (ErrorCode, String)>, BatchError> {
        let send = entry.kind == EntryKind::Send;
        if send && (entry.client_id.is_empty() || entry.client_id.len() > MAX_CLIENT_ID) {
            return Ok(Err((
                ErrorCode::BadRequest,
                "client_id must be 1 to 64 characters".into(),
            )));
        }
        if send && (entry.body.is_empty() || entry.body.len() > MAX_BODY) {
            return Ok(Err((
                ErrorCode::BadRequest,
                format!("body must be 1 to {MAX_BODY} bytes"),
            )));
        }
        let target = match Target::parse(&entry.to) {
            Ok(t) => t,
            Err(e) => return Ok(Err((ErrorCode::BadRequest, format!("to: {e}")))),
        };
        let conversation = target.conversation(&entry.user).to_string();
        match &target {
            Target::Room(room) => match self
                .members
                .room(room, versions.get(room).copied().flatten())
                .await?
            {
                None => Ok(Err((ErrorCode::NotFound, format!("room {room} not found")))),
                Some(members) if members.binary_search(&entry.user).is_err() => Ok(Err((
                    ErrorCode::Forbidden,
                    format!("not a member of room {room}"),
                ))),
                Some(members) => Ok(Ok((conversation, members))),
            },
            Target::User(user) if *user == entry.user => Ok(Err((
                ErrorCode::BadRequest,
                "cannot send a direct message to yourself".into(),
            ))),
            Target::User(user) => {
                if !self.members.user_exists(user).await? {
                    return Ok(Err((ErrorCode::NotFound, format!("user {user} not found"))));
                }
                let ConversationId::Dm(a, b) = target.conversation(&entry.user) else {
                    unreachable!("a user target is a dm")
                };
                Ok(Ok((conversation, Arc::from(vec![a, b]))))
            }
        }
    }

    /// Makes the batch durable in history-service, with each message's offline
    /// recipients: members online on no live gateway, the sender excepted.
    async fn persist(
        &mut self,
        accepted: &[Accepted],
        messages: &[ChatMessage],
        online: &crate::presence::Online,
    ) -> Result<(), BatchError> {
        if messages.is_empty() {
            return Ok(());
        }
        let items = accepted
            .iter()
            .zip(messages)
            .map(|(a, m)| {
                // Without a presence answer for the conversation, everyone
                // counts as offline: an extra offline copy beats a lost one.
                let offline = online
                    .get(&a.conversation)
                    .map_or(&a.recipients[..], |reach| &reach.offline[..]);
                let offline_recipients = offline
                    .iter()
                    .filter(|u| **u != a.entry.user)
                    .cloned()
                    .collect();
                hpb::AppendItem {
                    message: Some(common::convert::to_pb(m)),
                    offline_recipients,
                }
            })
            .collect();
        // Within the configured gRPC size, whatever the batch: one that is too
        // big for one call would otherwise fail the same way on every retry.
        let (appends, enqueues) = crate::chunks::split(items, self.max_message_bytes);
        for request in appends {
            self.history
                .append(request)
                .await
                .map_err(BatchError::history)?;
        }
        for request in enqueues {
            self.history
                .enqueue(request)
                .await
                .map_err(BatchError::history)?;
        }
        Ok(())
    }

    /// Publishes one JSON array per gateway (and indexes new DMs for their
    /// parties' conversation lists), reroutes what no gateway heard, then
    /// acknowledges and deletes the entries and dead-letters the unreadable
    /// ones.
    async fn deliver(
        &mut self,
        outcome: Outcome<'_>,
        online: &crate::presence::Online,
    ) -> Result<(), BatchError> {
        let payloads = crate::delivery::payloads(&outcome, online);
        let mut pipe = redis::pipe();
        self.index_dms(&mut pipe, outcome.messages);
        self.publisher.add(&mut pipe, &payloads);
        let heard: Vec<i64> = if !payloads.is_empty() {
            pipe.query_async(&mut self.conn).await?
        } else {
            if pipe.cmd_iter().next().is_some() {
                pipe.query_async::<()>(&mut self.conn).await?;
            }
            Vec::new()
        };
        let unheard = crate::publish::unheard(&payloads, &heard);
        if !unheard.is_empty() {
            self.reroute(&outcome, online, &unheard).await?;
        }
        self.acknowledge(&outcome).await
    }

    /// Every DM message puts its conversation at the top of both parties'
    /// lists (one ZADD each, replies ignored), so a client that resyncs finds
    /// a DM it has never seen.
    fn index_dms(&self, pipe: &mut redis::Pipeline, messages: &[ChatMessage]) {
        for m in messages {
            if let Ok(ConversationId::Dm(a, b)) = ConversationId::parse(&m.conversation) {
                for party in [a, b] {
                    pipe.zadd(self.keys.user_dms(&party), &m.conversation, m.ts)
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
        outcome: &Outcome<'_>,
        online: &crate::presence::Online,
        unheard: &[String],
    ) -> Result<(), BatchError> {
        tracing::warn!(gateways = ?unheard, "deliveries reached no subscriber; rerouting");
        let stranded = crate::delivery::stranded(outcome, online, unheard);
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
        let again = self.presence.online(&mut self.conn, wanted).await?;
        let payloads = crate::delivery::rerouted(&stranded, online, &again, unheard);
        // Whoever is still unheard has the offline copy.
        self.publisher.publish(&mut self.conn, &payloads).await?;
        metrics::counter!("chat_rerouted_messages_total").increment(stranded.len() as u64);
        Ok(())
    }

    /// XACK and XDEL of every entry of the batch, and the dead letters, in
    /// one pipeline: only now is every step of these entries done.
    async fn acknowledge(&mut self, outcome: &Outcome<'_>) -> Result<(), BatchError> {
        let Outcome {
            accepted,
            resent,
            typing,
            rejected,
            dead,
            ..
        } = *outcome;
        let mut pipe = redis::pipe();
        for (id, field) in dead {
            crate::dead_letter::add(&mut pipe, &self.keys, id, field, "unreadable entry");
        }
        let ids: Vec<&str> = accepted
            .iter()
            .chain(resent.iter().map(|(a, _)| a))
            .chain(typing)
            .map(|a| a.stream_id.as_str())
            .chain(rejected.iter().map(|r| r.stream_id.as_str()))
            .chain(dead.iter().map(|(id, _)| id.as_str()))
            .collect();
        if !ids.is_empty() {
            pipe.cmd("XACK")
                .arg(self.keys.ingress())
                .arg(&self.group)
                .arg(&ids)
                .ignore();
            pipe.cmd("XDEL").arg(self.keys.ingress()).arg(&ids).ignore();
        }
        pipe.query_async::<()>(&mut self.conn).await?;
        Ok(())
    }
}
