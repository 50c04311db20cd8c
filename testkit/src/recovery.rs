//! The client recovery of docs/protocol.md ("Recovering missed messages"),
//! as every test client runs it after a `resync` frame or a reconnect: list
//! the conversations with their last seq, then fetch the history after the
//! last seq held without a gap.

use std::collections::{BTreeSet, HashMap, HashSet};

use serde_json::Value;

/// What a client holds: every message id, and per conversation its seqs.
#[derive(Default)]
pub struct Inbox {
    pub ids: HashSet<String>,
    seqs: HashMap<String, BTreeSet<u64>>,
    /// Messages first seen live (a `message` or `offline` frame).
    pub live: usize,
    /// Messages first seen through recovery.
    pub recovered: usize,
    /// `message` frames of an id already held.
    pub duplicates: usize,
}

impl Inbox {
    /// Keeps `m` (a message object); true when it is new.
    pub fn add(&mut self, m: &Value, live: bool) -> bool {
        let (Some(id), Some(conv), Some(seq)) = (
            m["id"].as_str(),
            m["conversation"].as_str(),
            m["seq"].as_u64(),
        ) else {
            return false;
        };
        self.seqs.entry(conv.to_owned()).or_default().insert(seq);
        if !self.ids.insert(id.to_owned()) {
            if live {
                self.duplicates += 1;
            }
            return false;
        }
        if live {
            self.live += 1;
        } else {
            self.recovered += 1;
        }
        true
    }

    /// The highest seq of `conversation` held with every seq below it.
    pub fn contiguous(&self, conversation: &str) -> u64 {
        let Some(seqs) = self.seqs.get(conversation) else {
            return 0;
        };
        let mut n = 0;
        for s in seqs {
            if *s != n + 1 {
                break;
            }
            n = *s;
        }
        n
    }

    /// Runs the recovery against the gateway at `base` (`http://host:port`);
    /// returns how many messages it found that were not held.
    pub async fn recover(
        &mut self,
        http: &reqwest::Client,
        base: &str,
        token: &str,
    ) -> Result<usize, String> {
        let mut conversations = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            // Cursors hold only characters a query string takes as they are.
            let url = match &cursor {
                Some(c) => format!("{base}/api/conversations?limit=200&cursor={c}"),
                None => format!("{base}/api/conversations?limit=200"),
            };
            let list: Value = get(http, &url, token).await?;
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
        let mut found = 0;
        for c in conversations {
            let (Some(id), Some(last)) = (c["id"].as_str(), c["last_seq"].as_u64()) else {
                continue;
            };
            let mut after = self.contiguous(id);
            while after < last {
                let page: Value = get(
                    http,
                    &format!("{base}/api/conversations/{id}/messages?after={after}&limit=200"),
                    token,
                )
                .await?;
                let messages = page["messages"].as_array().cloned().unwrap_or_default();
                for m in &messages {
                    found += usize::from(self.add(m, false));
                }
                let next = messages.last().and_then(|m| m["seq"].as_u64());
                match next {
                    Some(seq) if page["has_more"] == true => after = seq,
                    _ => break,
                }
            }
        }
        Ok(found)
    }
}

/// GETs `url` with `token` as a bearer; the JSON body, or what went wrong.
pub async fn get(http: &reqwest::Client, url: &str, token: &str) -> Result<Value, String> {
    let response = http
        .get(url)
        .bearer_auth(token)
        .send()
        .await
        .map_err(|e| e.to_string())?;
    if !response.status().is_success() {
        return Err(format!("{url}: {}", response.status()));
    }
    response.json().await.map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn contiguous_stops_at_the_first_gap() {
        let mut inbox = Inbox::default();
        for seq in [1, 2, 4] {
            inbox.add(
                &json!({"id": format!("m{seq}"), "conversation": "dm:a:b", "seq": seq}),
                true,
            );
        }
        assert_eq!(inbox.contiguous("dm:a:b"), 2);
        assert_eq!(inbox.contiguous("room:x"), 0);
        assert!(!inbox.add(
            &json!({"id": "m1", "conversation": "dm:a:b", "seq": 1}),
            true
        ));
        assert_eq!(inbox.duplicates, 1);
    }
}
