//! One batch of ingress entries, start to finish: validate and authorize,
//! sequence, persist, deliver, acknowledge. A transient failure returns an
//! error before anything is acknowledged, so the whole batch is retried; every
//! step is idempotent, so a retry yields the same ids and seqs.

use std::{collections::HashMap, sync::Arc};

use common::{
    ids::{ConversationId, Target},
    keys::Keys,
    model::{ChatMessage, Delivery, DeliveryFrame, EntryKind, INGRESS_FIELD, IngressEntry, Name},
    protocol::{ErrorCode, ServerFrame},
};
use proto::history::v1::{self as hpb, history_service_client::HistoryServiceClient};
use redis::{aio::ConnectionManager, streams::StreamId};
use serde_json::value::RawValue;
use tonic::transport::Channel;

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
    #[error("history-service: {0}")]
    History(String),
}

/// An entry that passed validation and authorization.
struct Accepted {
    stream_id: String,
    entry: IngressEntry,
    conversation: String,
    recipients: Arc<[String]>,
}

/// Everything a batch decided, for delivery.
struct Outcome<'a> {
    accepted: &'a [Accepted],
    messages: &'a [ChatMessage],
    typing: &'a [Accepted],
    rejected: &'a [Rejected],
    dead: &'a [(String, String)],
}

/// A delivery to be: its users, and its frames as indexes into the batch's
/// frame list with the connection they are for or must skip.
#[derive(Default)]
struct Planned<'a> {
    users: Vec<Name<'a>>,
    frames: Vec<(Option<u64>, Option<u64>, usize)>,
}

/// The deliveries of a batch: one per (gateway, conversation) holding the
/// conversation's message frames and their senders' acks in seq order, and
/// one per typing notice.
#[derive(Default)]
struct Plan<'a> {
    deliveries: Vec<(&'a str, Planned<'a>)>,
    slots: HashMap<(&'a str, &'a str), usize>,
}

impl<'a> Plan<'a> {
    fn slot(&mut self, gateway: &'a str, conversation: &'a str) -> &mut Planned<'a> {
        let i = *self
            .slots
            .entry((gateway, conversation))
            .or_insert_with(|| {
                self.deliveries.push((gateway, Planned::default()));
                self.deliveries.len() - 1
            });
        &mut self.deliveries[i].1
    }

    /// `frame` for every socket of `users` on `gateway` but `skip`.
    fn fan_out(
        &mut self,
        gateway: &'a str,
        conversation: &'a str,
        users: &'a [String],
        skip: Option<u64>,
        frame: usize,
    ) {
        let planned = self.slot(gateway, conversation);
        if planned.users.is_empty() {
            // A batch has one presence answer per conversation, so the
            // users are the same for every frame of the slot.
            planned.users = users.iter().map(|u| Name::from(u.as_str())).collect();
        }
        planned.frames.push((None, skip, frame));
    }

    /// `frame` for connection `conn` on `gateway`, in line with the
    /// conversation's other frames.
    fn direct(&mut self, gateway: &'a str, conversation: &'a str, conn: u64, frame: usize) {
        self.slot(gateway, conversation)
            .frames
            .push((Some(conn), None, frame));
    }
}

/// An entry refused with an error frame to its sender.
struct Rejected {
    stream_id: String,
    entry: IngressEntry,
    code: ErrorCode,
    message: String,
}

pub struct BatchProcessor {
    pub keys: Keys,
    pub conn: ConnectionManager,
    pub members: Members,
    pub presence: Presence,
    pub sequencer: Sequencer,
    pub history: HistoryServiceClient<Channel>,
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

        let requests: Vec<SequenceRequest<'_>> = accepted
            .iter()
            .map(|a| SequenceRequest {
                conversation: &a.conversation,
                sender: &a.entry.user,
                client_id: &a.entry.client_id,
            })
            .collect();
        let sequenced = self.sequencer.sequence(&mut self.conn, &requests).await?;
        let messages: Vec<ChatMessage> = accepted
            .iter()
            .zip(&sequenced)
            .map(|(a, s)| ChatMessage {
                id: s.id.clone(),
                conversation: a.conversation.clone(),
                seq: s.seq,
                from: a.entry.user.clone(),
                to: a.entry.to.clone(),
                body: a.entry.body.clone(),
                ts: s.ts,
                client_id: a.entry.client_id.clone(),
            })
            .collect();

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
                typing: &typing,
                rejected: &rejected,
                dead: &dead,
            },
            &online,
        )
        .await?;

        let replayed = sequenced.iter().filter(|s| !s.fresh).count();
        let recipients = accepted
            .iter()
            .filter_map(|a| online.get(&a.conversation))
            .map(|reach| reach.gateways.values().map(Vec::len).sum::<usize>())
            .sum();
        Ok(BatchStats {
            recipients,
            fresh: sequenced.len() - replayed,
            replayed,
            rejected: rejected.len(),
            dead: dead.len(),
        })
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
        self.history
            .append(hpb::AppendRequest { items })
            .await
            .map_err(|s| BatchError::History(format!("{:?}: {}", s.code(), s.message())))?;
        Ok(())
    }

    /// Publishes one JSON array per gateway, then acknowledges and deletes the
    /// entries and dead-letters the unreadable ones, all in one pipeline.
    async fn deliver(
        &mut self,
        outcome: Outcome<'_>,
        online: &crate::presence::Online,
    ) -> Result<(), BatchError> {
        let Outcome {
            accepted,
            messages,
            typing,
            rejected,
            dead,
        } = outcome;
        // Frames first (deliveries borrow them), then who gets which.
        let mut frames: Vec<Box<RawValue>> = Vec::new();
        let mut plan = Plan::default();
        for (a, m) in accepted.iter().zip(messages) {
            let frame = frames.len();
            frames.push(raw(ServerFrame::Message(m).to_json()));
            if let Some(reach) = online.get(&a.conversation) {
                for (gw, users) in &reach.gateways {
                    let skip = (*gw == a.entry.gw).then_some(a.entry.conn);
                    plan.fan_out(gw, &a.conversation, users, skip, frame);
                }
            }
            let sent = frames.len();
            frames.push(raw(ServerFrame::Sent {
                client_id: &m.client_id,
                id: &m.id,
                conversation: &m.conversation,
                seq: m.seq,
                ts: m.ts,
            }
            .to_json()));
            plan.direct(&a.entry.gw, &a.conversation, a.entry.conn, sent);
        }
        for t in typing {
            let Some(reach) = online.get(&t.conversation) else {
                continue;
            };
            let frame = frames.len();
            frames.push(raw(ServerFrame::Typing {
                from: &t.entry.user,
                conversation: &t.conversation,
            }
            .to_json()));
            for (gw, users) in &reach.gateways {
                let others: Vec<Name<'_>> = users
                    .iter()
                    .filter(|u| **u != t.entry.user)
                    .map(|u| Name::from(u.as_str()))
                    .collect();
                if !others.is_empty() {
                    plan.deliveries.push((
                        gw,
                        Planned {
                            users: others,
                            frames: vec![(None, None, frame)],
                        },
                    ));
                }
            }
        }
        for r in rejected {
            let frame = frames.len();
            frames.push(raw(ServerFrame::Error {
                code: r.code,
                message: &r.message,
                reference: (r.entry.kind == EntryKind::Send).then_some(r.entry.client_id.as_str()),
            }
            .to_json()));
            // Errors have no conversation; they share one slot per gateway.
            plan.direct(&r.entry.gw, "", r.entry.conn, frame);
        }

        let mut per_gateway: HashMap<&str, Vec<Delivery<'_>>> = HashMap::new();
        for (gw, planned) in plan.deliveries {
            per_gateway.entry(gw).or_default().push(Delivery {
                users: planned.users,
                frames: planned
                    .frames
                    .into_iter()
                    .map(|(conn, skip_conn, i)| DeliveryFrame {
                        conn,
                        skip_conn,
                        frame: &frames[i],
                    })
                    .collect(),
            });
        }

        let mut pipe = redis::pipe();
        for (gw, deliveries) in &per_gateway {
            let payload = serde_json::to_string(deliveries).unwrap_or_default();
            pipe.cmd("PUBLISH")
                .arg(self.keys.gateway_channel(gw))
                .arg(payload)
                .ignore();
        }
        for (id, field) in dead {
            pipe.cmd("XADD")
                .arg(self.keys.dead_letter())
                .arg("*")
                .arg("id")
                .arg(id)
                .arg(INGRESS_FIELD)
                .arg(field)
                .arg("reason")
                .arg("unreadable entry")
                .ignore();
        }
        let ids: Vec<&str> = accepted
            .iter()
            .chain(typing)
            .map(|a| a.stream_id.as_str())
            .chain(rejected.iter().map(|r| r.stream_id.as_str()))
            .chain(dead.iter().map(|(id, _)| id.as_str()))
            .collect();
        if !ids.is_empty() {
            // XACK last: only now is every step of these entries done.
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

fn raw(json: String) -> Box<RawValue> {
    // The frames are serde_json output, so always valid JSON.
    RawValue::from_string(json)
        .unwrap_or_else(|_| RawValue::from_string("null".to_owned()).expect("null is valid JSON"))
}
