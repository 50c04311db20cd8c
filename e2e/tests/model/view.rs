//! A client's view of its conversations, kept by the rule docs/protocol.md
//! gives clients ("Edits and deletes"): messages by seq, merged by id; an
//! event applies to its target only if it is newer than the last one applied
//! there, and nothing applies after a delete. History pages bring messages
//! in their current state and events without bodies.

use std::collections::{BTreeMap, HashMap};

use serde_json::Value;

/// One seq of a conversation as a client holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Held {
    pub id: String,
    pub from: String,
    pub client_id: String,
    /// `edit` or `delete` for an event.
    pub kind: Option<String>,
    pub target_seq: Option<u64>,
    pub body: String,
    pub deleted: bool,
    /// The seq of the last event applied (0: none).
    pub edit_seq: u64,
    pub tombstone: bool,
    /// A membership event's `action:user`.
    pub member: Option<String>,
}

/// A membership event's `action:user`, from its JSON.
pub fn member_of(e: &Value) -> Option<String> {
    Some(format!("{}:{}", e["action"].as_str()?, e["user"].as_str()?))
}

impl Held {
    pub fn of(m: &Value) -> Option<(String, u64, Self)> {
        let conv = m["conversation"].as_str()?.to_owned();
        let seq = m["seq"].as_u64()?;
        Some((
            conv,
            seq,
            Self {
                id: m["id"].as_str()?.to_owned(),
                from: m["from"].as_str().unwrap_or_default().to_owned(),
                client_id: m["client_id"].as_str().unwrap_or_default().to_owned(),
                kind: m["kind"].as_str().map(str::to_owned),
                target_seq: m["target_seq"].as_u64(),
                body: m["body"].as_str().unwrap_or_default().to_owned(),
                deleted: m["deleted"] == true,
                edit_seq: m["edit_seq"].as_u64().unwrap_or(0),
                tombstone: m["tombstone"] == true,
                member: member_of(&m["member"]),
            },
        ))
    }
}

/// An event waiting for its target (it arrived first).
#[derive(Debug, Clone)]
struct Waiting {
    seq: u64,
    kind: String,
    body: String,
}

#[derive(Default)]
pub struct View {
    pub conversations: HashMap<String, BTreeMap<u64, Held>>,
    waiting: HashMap<(String, u64), Vec<Waiting>>,
}

impl View {
    /// A message or event from a live `message` frame or an `offline` batch
    /// (events carry their new body).
    pub fn live(&mut self, m: &Value) {
        let Some((conv, seq, held)) = Held::of(m) else {
            return;
        };
        let event = held
            .kind
            .clone()
            .zip(held.target_seq)
            .map(|(kind, target)| (kind, target, held.body.clone()));
        let slot = self.conversations.entry(conv.clone()).or_default();
        if let std::collections::btree_map::Entry::Vacant(place) = slot.entry(seq) {
            let mut stored = held;
            if stored.kind.is_some() {
                // An event is kept in its seq place without its body, as
                // history shows it.
                stored.body.clear();
            }
            place.insert(stored);
            if event.is_none() {
                self.apply_waiting(&conv, seq);
            }
        }
        if let Some((kind, target, body)) = event {
            self.apply(&conv, target, Waiting { seq, kind, body });
        }
    }

    /// A message from a history page: its current state. Returns the target
    /// seq of a history event whose target this view holds in an older state
    /// (the client then reads that message again).
    pub fn paged(&mut self, m: &Value) -> Option<u64> {
        let (conv, seq, held) = Held::of(m)?;
        let slot = self.conversations.entry(conv.clone()).or_default();
        let stale_target = match (&held.kind, held.target_seq) {
            (Some(_), Some(target)) => slot
                .get(&target)
                .filter(|t| !t.deleted && t.edit_seq < seq)
                .map(|_| target),
            _ => None,
        };
        match slot.get_mut(&seq) {
            None => {
                slot.insert(seq, held);
            }
            Some(have) if have.kind.is_none() => {
                if !have.deleted && (held.deleted || held.edit_seq > have.edit_seq) {
                    have.body = held.body;
                    have.deleted = held.deleted;
                    have.edit_seq = held.edit_seq;
                }
            }
            Some(_) => {}
        }
        self.apply_waiting(&conv, seq);
        stale_target
    }

    fn apply(&mut self, conv: &str, target: u64, event: Waiting) {
        let slot = self.conversations.entry(conv.to_owned()).or_default();
        match slot.get_mut(&target) {
            Some(t) if t.kind.is_none() => apply_to(t, &event),
            Some(_) => {}
            None => self
                .waiting
                .entry((conv.to_owned(), target))
                .or_default()
                .push(event),
        }
    }

    fn apply_waiting(&mut self, conv: &str, seq: u64) {
        let Some(events) = self.waiting.remove(&(conv.to_owned(), seq)) else {
            return;
        };
        if let Some(t) = self
            .conversations
            .get_mut(conv)
            .and_then(|s| s.get_mut(&seq))
        {
            for e in &events {
                apply_to(t, e);
            }
        }
    }

    /// The highest seq of `conv` held with every seq below it.
    pub fn contiguous(&self, conv: &str) -> u64 {
        let Some(slot) = self.conversations.get(conv) else {
            return 0;
        };
        let mut n = 0;
        for s in slot.keys() {
            if *s != n + 1 {
                break;
            }
            n = *s;
        }
        n
    }

    pub fn highest(&self, conv: &str) -> u64 {
        self.conversations
            .get(conv)
            .and_then(|s| s.keys().next_back().copied())
            .unwrap_or(0)
    }
}

/// The documented rule: a delete wins over every edit, whatever the order
/// they arrive in; of the edits, the one with the highest seq.
fn apply_to(t: &mut Held, e: &Waiting) {
    if t.deleted || t.tombstone {
        return;
    }
    if e.kind == "delete" {
        t.deleted = true;
        t.body.clear();
        t.edit_seq = e.seq;
    } else if e.seq > t.edit_seq {
        t.edit_seq = e.seq;
        t.body.clone_from(&e.body);
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn msg(seq: u64, body: &str) -> Value {
        json!({"id": format!("m{seq}"), "conversation": "room:r", "seq": seq, "from": "a", "body": body, "client_id": "c"})
    }

    fn event(seq: u64, kind: &str, target: u64, body: &str) -> Value {
        json!({"id": format!("e{seq}"), "conversation": "room:r", "seq": seq, "from": "a", "body": body,
               "client_id": "c", "kind": kind, "target_seq": target})
    }

    #[test]
    fn a_delete_is_final_whatever_the_order() {
        let mut v = View::default();
        v.live(&event(3, "edit", 1, "late edit"));
        v.live(&event(2, "delete", 1, ""));
        v.live(&msg(1, "hi"));
        let t = &v.conversations["room:r"][&1];
        assert!(t.deleted && t.body.is_empty());
        assert_eq!(v.contiguous("room:r"), 3);
    }

    #[test]
    fn the_newest_edit_wins() {
        let mut v = View::default();
        v.live(&msg(1, "hi"));
        v.live(&event(3, "edit", 1, "second"));
        v.live(&event(2, "edit", 1, "first"));
        assert_eq!(v.conversations["room:r"][&1].body, "second");
    }
}
