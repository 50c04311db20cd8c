//! What a batch publishes: per gateway, a JSON array of deliveries. One
//! delivery per (gateway, conversation) holds the conversation's message
//! frames and their senders' `sent` acks in seq order, so a gateway resolves
//! the users' sockets once per batch and each connection sees the
//! conversation in order; typing notices and errors get deliveries of their
//! own. Every frame is serialized once, here.

use std::collections::HashMap;

use chat_model::{
    message::{ChatMessage, Delivery, DeliveryFrame, FORMAT_VERSION, Name},
    protocol::ServerFrame,
};
use serde_json::value::RawValue;

use chat_redis::presence::Whereabouts;

use super::admit::{Accepted, Rejected};

/// Everything a batch decided, for delivery.
pub(crate) struct Outcome<'a> {
    pub accepted: &'a [Accepted],
    pub messages: &'a [ChatMessage],
    /// Per message: an event's target with it applied (see `sequence.rs`).
    pub targets: &'a [Option<ChatMessage>],
    /// Per message: published to its recipients before (a retried batch):
    /// only its sender's `sent` goes out.
    pub delivered: &'a [bool],
    /// Per accepted message, the traceparent of its span (tracing on).
    pub traces: &'a [Option<String>],
    /// Re-sends of messages already stored and delivered: their senders get
    /// `sent` again, nobody gets the message again.
    pub resent: &'a [(Accepted, ChatMessage)],
    pub typing: &'a [Accepted],
    pub rejected: &'a [Rejected],
    /// Unreadable entries: (stream id, raw payload).
    pub dead: &'a [(String, String)],
}

/// A delivery to be: its users, and its frames as indexes into the batch's
/// frame list with the connection they are for or must skip.
#[derive(Default)]
struct Planned<'a> {
    users: Vec<Name<'a>>,
    /// The conversation of its frames ("" for errors, which have none).
    conversation: &'a str,
    frames: Vec<(Option<u64>, Option<u64>, usize)>,
}

/// The deliveries of a batch: one per (gateway, conversation) holding the
/// conversation's message frames and their senders' acks in seq order, and
/// one per typing notice.
#[derive(Default)]
struct Plan<'a> {
    deliveries: Vec<(&'a str, Planned<'a>)>,
    slots: HashMap<(&'a str, &'a str), usize>,
    /// Frame index → when its send was read at its gateway.
    sent_at: HashMap<usize, i64>,
    /// Frame index → the traceparent of its message's span.
    traces: HashMap<usize, &'a str>,
    /// Frame index → the seq of its `message` frame (a gateway hands each
    /// socket a seq once).
    seqs: HashMap<usize, u64>,
}

impl<'a> Plan<'a> {
    fn slot(&mut self, gateway: &'a str, conversation: &'a str) -> &mut Planned<'a> {
        let i = *self
            .slots
            .entry((gateway, conversation))
            .or_insert_with(|| {
                self.deliveries.push((
                    gateway,
                    Planned {
                        conversation,
                        ..Planned::default()
                    },
                ));
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

    /// Records when frame `frame`'s send was read, if known.
    fn stamp(&mut self, frame: usize, at: Option<i64>) {
        if let Some(at) = at {
            self.sent_at.insert(frame, at);
        }
    }

    /// `frame` for connection `conn` on `gateway`, in line with the
    /// conversation's other frames.
    fn direct(&mut self, gateway: &'a str, conversation: &'a str, conn: u64, frame: usize) {
        self.slot(gateway, conversation)
            .frames
            .push((Some(conn), None, frame));
    }
}

/// The payload to publish to each gateway that has something to receive.
pub(crate) fn payloads(outcome: &Outcome<'_>, online: &Whereabouts) -> Vec<(String, String)> {
    let Outcome {
        accepted,
        messages,
        traces,
        resent,
        typing,
        rejected,
        delivered,
        ..
    } = *outcome;
    // Frames first (deliveries borrow them), then who gets which.
    let mut frames: Vec<Box<RawValue>> = Vec::new();
    let mut plan = Plan::default();
    for (i, (a, m)) in accepted.iter().zip(messages).enumerate() {
        let frame = frames.len();
        frames.push(raw(ServerFrame::Message(m).to_json()));
        plan.stamp(frame, a.entry.at);
        plan.seqs.insert(frame, m.seq);
        if let Some(Some(trace)) = traces.get(i) {
            plan.traces.insert(frame, trace.as_str());
        }
        let again = delivered.get(i).copied().unwrap_or(false);
        if let Some(reach) = online.get(a.conversation.as_str()).filter(|_| !again) {
            for (gw, users) in &reach.gateways {
                let skip = (*gw == a.entry.gw).then_some(a.entry.conn);
                plan.fan_out(gw, a.conversation.as_str(), users, skip, frame);
            }
        }
        // A membership event has no socket to acknowledge (no gateway).
        if a.entry.gw.is_empty() {
            continue;
        }
        let sent = frames.len();
        frames.push(sent_frame(m));
        plan.stamp(sent, a.entry.at);
        plan.direct(&a.entry.gw, a.conversation.as_str(), a.entry.conn, sent);
    }
    // A re-send of a message already stored and delivered: only its sender
    // hears of it again, with the original's id and seq.
    for (a, m) in resent.iter().filter(|(a, _)| !a.entry.gw.is_empty()) {
        let sent = frames.len();
        frames.push(sent_frame(m));
        plan.stamp(sent, a.entry.at);
        plan.direct(&a.entry.gw, a.conversation.as_str(), a.entry.conn, sent);
    }
    for t in typing {
        plan_typing(&mut plan, &mut frames, t, online);
    }
    for r in rejected.iter().filter(|r| !r.entry.gw.is_empty()) {
        let frame = frames.len();
        frames.push(raw(ServerFrame::Error {
            code: r.code,
            message: &r.message,
            // A send's, edit's or delete's client_id; a typing notice's ref.
            reference: (!r.entry.client_id.is_empty()).then_some(r.entry.client_id.as_str()),
            retry_after_ms: r.retry_after_ms,
        }
        .to_json()));
        // Errors have no conversation; they share one slot per gateway.
        plan.direct(&r.entry.gw, "", r.entry.conn, frame);
    }

    serialize(plan, &frames)
}

/// A typing notice: to every online member but its sender, in a delivery
/// of its own (it is not part of the conversation's seq order).
fn plan_typing<'a>(
    plan: &mut Plan<'a>,
    frames: &mut Vec<Box<RawValue>>,
    t: &'a Accepted,
    online: &'a Whereabouts,
) {
    let Some(reach) = online.get(t.conversation.as_str()) else {
        return;
    };
    let frame = frames.len();
    frames.push(raw(ServerFrame::Typing {
        from: &t.entry.user,
        conversation: t.conversation.as_str(),
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
                    conversation: "",
                    frames: vec![(None, None, frame)],
                },
            ));
        }
    }
}

/// One JSON array of deliveries per gateway of `plan`.
fn serialize(plan: Plan<'_>, frames: &[Box<RawValue>]) -> Vec<(String, String)> {
    let Plan {
        deliveries,
        sent_at,
        traces,
        seqs,
        ..
    } = plan;
    let mut per_gateway: HashMap<&str, Vec<Delivery<'_>>> = HashMap::new();
    for (gw, planned) in deliveries {
        per_gateway.entry(gw).or_default().push(Delivery {
            v: FORMAT_VERSION,
            users: planned.users,
            conversation: (!planned.conversation.is_empty()).then(|| planned.conversation.into()),
            frames: planned
                .frames
                .into_iter()
                .map(|(conn, skip_conn, i)| DeliveryFrame {
                    conn,
                    skip_conn,
                    frame: &frames[i],
                    at: sent_at.get(&i).copied(),
                    trace: traces.get(&i).copied(),
                    seq: seqs.get(&i).copied(),
                    read: None,
                })
                .collect(),
        });
    }
    per_gateway
        .into_iter()
        .map(|(gw, deliveries)| {
            let payload = serde_json::to_string(&deliveries).unwrap_or_default();
            (gw.to_owned(), payload)
        })
        .collect()
}

/// A message whose live delivery reached nobody for some of its recipients:
/// the gateway they were on was not listening.
pub(crate) struct Stranded<'a> {
    pub message: &'a ChatMessage,
    pub users: Vec<String>,
}

/// The messages of a batch stranded on `unheard` gateways, with the
/// recipients (senders excepted) that were on those gateways.
pub(crate) fn stranded<'a>(
    outcome: &Outcome<'a>,
    online: &Whereabouts,
    unheard: &[String],
) -> Vec<Stranded<'a>> {
    let mut out = Vec::new();
    for (i, (a, m)) in outcome.accepted.iter().zip(outcome.messages).enumerate() {
        if outcome.delivered.get(i).copied().unwrap_or(false) {
            continue;
        }
        let Some(reach) = online.get(a.conversation.as_str()) else {
            continue;
        };
        let users: Vec<String> = unheard
            .iter()
            .filter_map(|gw| reach.gateways.get(gw))
            .flatten()
            .filter(|u| **u != a.entry.user)
            .cloned()
            .collect();
        if !users.is_empty() {
            out.push(Stranded { message: m, users });
        }
    }
    out
}

/// Payloads that take stranded messages to wherever their recipients are now
/// (`again`, a fresh presence lookup), never to the `unheard` gateways nor to
/// a gateway the first delivery already reached for that user (`before`).
pub(crate) fn rerouted(
    stranded: &[Stranded<'_>],
    before: &Whereabouts,
    again: &Whereabouts,
    unheard: &[String],
) -> Vec<(String, String)> {
    let mut frames: Vec<Box<RawValue>> = Vec::new();
    let mut seqs = HashMap::new();
    let mut targets: Vec<(&str, &str, Vec<String>, usize)> = Vec::new();
    for s in stranded {
        let conv = s.message.conversation.as_str();
        let Some(reach) = again.get(conv) else {
            continue;
        };
        let frame = frames.len();
        frames.push(raw(ServerFrame::Message(s.message).to_json()));
        seqs.insert(frame, s.message.seq);
        for (gw, users) in &reach.gateways {
            if unheard.contains(gw) {
                continue;
            }
            let reached = before.get(conv).and_then(|r| r.gateways.get(gw));
            let fresh: Vec<String> = users
                .iter()
                .filter(|u| reached.is_none_or(|r| !r.contains(u)))
                .cloned()
                .collect();
            if !fresh.is_empty() {
                targets.push((gw, conv, fresh, frame));
            }
        }
    }
    let mut plan = Plan {
        seqs,
        ..Plan::default()
    };
    for (gw, conv, users, frame) in &targets {
        plan.fan_out(gw, conv, users, None, *frame);
    }
    serialize(plan, &frames)
}

/// The sender's `sent` for `m`.
fn sent_frame(m: &ChatMessage) -> Box<RawValue> {
    raw(ServerFrame::Sent {
        client_id: &m.client_id,
        id: &m.id,
        conversation: m.conversation.as_str(),
        seq: m.seq,
        ts: m.ts,
    }
    .to_json())
}

fn raw(json: String) -> Box<RawValue> {
    // The frames are serde_json output, so always valid JSON.
    RawValue::from_string(json)
        .unwrap_or_else(|_| RawValue::from_string("null".to_owned()).expect("null is valid JSON"))
}
