//! One batch of ingress entries, start to finish: validate and authorize,
//! sequence, persist, deliver, acknowledge. A transient failure returns an
//! error before anything is acknowledged, so the whole batch is retried; every
//! step is idempotent, so a retry yields the same ids and seqs.

use std::{collections::HashMap, sync::Arc};

use common::{
    ids::{ConversationId, Target},
    keys::Keys,
    model::{ChatMessage, Delivery, EntryKind, INGRESS_FIELD, IngressEntry},
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

/// A delivery to be, with the index of its frame in the batch's frame list.
struct Planned<'a> {
    gateway: &'a str,
    users: Vec<String>,
    skip_conn: Option<u64>,
    conn: Option<u64>,
    frame: usize,
}

impl<'a> Planned<'a> {
    fn to_conn(gateway: &'a str, conn: u64, frame: usize) -> Self {
        Self {
            gateway,
            users: Vec::new(),
            skip_conn: None,
            conn: Some(conn),
            frame,
        }
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
        Ok(BatchStats {
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
                let here = online.get(&a.conversation);
                let offline_recipients = a
                    .recipients
                    .iter()
                    .filter(|u| **u != a.entry.user)
                    .filter(|u| !here.is_some_and(|gws| gws.values().any(|on| on.contains(u))))
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
        let mut frames: Vec<Box<RawValue>> = Vec::new();
        let mut plan: Vec<Planned<'_>> = Vec::new();
        for (a, m) in accepted.iter().zip(messages) {
            let message_frame = frames.len();
            frames.push(raw(ServerFrame::Message(m).to_json()));
            if let Some(gws) = online.get(&a.conversation) {
                for (gw, users) in gws {
                    let skip = (*gw == a.entry.gw).then_some(a.entry.conn);
                    plan.push(Planned {
                        gateway: gw,
                        users: users.clone(),
                        skip_conn: skip,
                        conn: None,
                        frame: message_frame,
                    });
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
            plan.push(Planned::to_conn(&a.entry.gw, a.entry.conn, sent));
        }
        for t in typing {
            let Some(gws) = online.get(&t.conversation) else {
                continue;
            };
            let frame = frames.len();
            frames.push(raw(ServerFrame::Typing {
                from: &t.entry.user,
                conversation: &t.conversation,
            }
            .to_json()));
            for (gw, users) in gws {
                let others: Vec<String> = users
                    .iter()
                    .filter(|u| **u != t.entry.user)
                    .cloned()
                    .collect();
                if !others.is_empty() {
                    plan.push(Planned {
                        gateway: gw,
                        users: others,
                        skip_conn: None,
                        conn: None,
                        frame,
                    });
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
            plan.push(Planned::to_conn(&r.entry.gw, r.entry.conn, frame));
        }

        let mut per_gateway: HashMap<&str, Vec<Delivery<'_>>> = HashMap::new();
        for p in plan {
            per_gateway.entry(p.gateway).or_default().push(Delivery {
                users: p.users,
                skip_conn: p.skip_conn,
                conn: p.conn,
                frame: &frames[p.frame],
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
