//! The client recovery of docs/protocol.md ("Recovering missed messages"),
//! as the load generator's receivers run it after a `resync` frame: list the
//! conversations with their last seq, then fetch the history after the seq
//! held without a gap. Tracking seqs must stay cheap at a million deliveries
//! a second, so frames are scanned, not parsed.

use std::collections::{BTreeSet, HashMap};

use serde_json::Value;

/// The seqs of one conversation: everything up to `contiguous`, and the
/// ones past a gap.
#[derive(Default)]
struct Seqs {
    contiguous: u64,
    above: BTreeSet<u64>,
}

impl Seqs {
    /// Records `seq`; false if it was already held.
    fn insert(&mut self, seq: u64) -> bool {
        if seq <= self.contiguous {
            return false;
        }
        if seq != self.contiguous + 1 {
            return self.above.insert(seq);
        }
        self.contiguous = seq;
        while self.above.remove(&(self.contiguous + 1)) {
            self.contiguous += 1;
        }
        true
    }
}

pub struct Recovery {
    http: reqwest::Client,
    base: String,
    token: String,
    seqs: HashMap<String, Seqs>,
    pub resyncs: u64,
    pub recovered: u64,
}

/// The string value after `"key":"` in a frame.
fn field<'a>(frame: &'a str, key: &str) -> Option<&'a str> {
    let start = frame.find(key)? + key.len();
    let rest = &frame[start..];
    Some(&rest[..rest.find('"')?])
}

/// The number after `"seq":` in a frame.
fn seq_of(frame: &str) -> Option<u64> {
    let start = frame.find("\"seq\":")? + 6;
    let rest = &frame[start..];
    let end = rest.find(|c: char| !c.is_ascii_digit())?;
    rest[..end].parse().ok()
}

impl Recovery {
    pub fn new(base: &str, token: &str) -> Self {
        Self {
            http: reqwest::Client::new(),
            base: base.trim_end_matches('/').to_owned(),
            token: token.to_owned(),
            seqs: HashMap::new(),
            resyncs: 0,
            recovered: 0,
        }
    }

    /// Notes a live `message` frame.
    pub fn saw(&mut self, frame: &str) {
        if let (Some(conversation), Some(seq)) =
            (field(frame, "\"conversation\":\""), seq_of(frame))
        {
            match self.seqs.get_mut(conversation) {
                Some(seqs) => {
                    seqs.insert(seq);
                }
                None => {
                    self.seqs
                        .entry(conversation.to_owned())
                        .or_default()
                        .insert(seq);
                }
            }
        }
    }

    /// Runs the recovery; returns the bodies of the messages it found that
    /// were not held (their send stamps are in them).
    pub async fn recover(&mut self) -> Vec<String> {
        self.resyncs += 1;
        let mut found = Vec::new();
        let mut conversations = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            // Cursors hold only characters a query string takes as they are.
            let path = match &cursor {
                Some(c) => format!("/api/conversations?limit=200&cursor={c}"),
                None => "/api/conversations?limit=200".to_owned(),
            };
            let Some(list) = self.get(&path).await else {
                return found;
            };
            conversations.extend(
                list["conversations"]
                    .as_array()
                    .cloned()
                    .unwrap_or_default(),
            );
            match list["next_cursor"].as_str() {
                Some(c) => cursor = Some(c.to_owned()),
                None => break,
            }
        }
        for c in conversations {
            let (Some(id), Some(last)) = (c["id"].as_str(), c["last_seq"].as_u64()) else {
                continue;
            };
            let mut after = self.seqs.get(id).map_or(0, |s| s.contiguous);
            while after < last {
                let path = format!("/api/conversations/{id}/messages?after={after}&limit=200");
                let Some(page) = self.get(&path).await else {
                    break;
                };
                let messages = page["messages"].as_array().cloned().unwrap_or_default();
                for m in &messages {
                    let Some(seq) = m["seq"].as_u64() else {
                        continue;
                    };
                    if self.seqs.entry(id.to_owned()).or_default().insert(seq) {
                        self.recovered += 1;
                        found.push(m["body"].as_str().unwrap_or_default().to_owned());
                    }
                }
                match messages.last().and_then(|m| m["seq"].as_u64()) {
                    Some(seq) if page["has_more"] == true => after = seq,
                    _ => break,
                }
            }
        }
        found
    }

    async fn get(&self, path: &str) -> Option<Value> {
        let response = self
            .http
            .get(format!("{}{path}", self.base))
            .bearer_auth(&self.token)
            .send()
            .await
            .ok()?;
        response.status().is_success().then_some(())?;
        response.json().await.ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seqs_track_the_contiguous_run_and_gaps() {
        let mut s = Seqs::default();
        assert!(s.insert(1) && s.insert(3));
        assert_eq!(s.contiguous, 1);
        assert!(s.insert(2));
        assert_eq!(s.contiguous, 3);
        assert!(!s.insert(2), "held already");
    }

    #[test]
    fn frames_are_scanned_for_conversation_and_seq() {
        let frame = r#"{"type":"message","id":"x","conversation":"dm:a:b","seq":42,"from":"a"}"#;
        assert_eq!(field(frame, "\"conversation\":\""), Some("dm:a:b"));
        assert_eq!(seq_of(frame), Some(42));
    }
}
