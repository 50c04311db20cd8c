//! A client that behaves as the protocol asks a good client to: it keeps every
//! message until `sent` arrives, re-sends unacknowledged ones with the same
//! `client_id` after a reconnect or an `unavailable` error, acks offline
//! batches, and dedups received messages by id. It speaks over a WebSocket
//! or over a stream or long-polls (`testkit::http_link`): the same protocol
//! every way.

use std::{
    collections::{BTreeMap, HashMap},
    time::Duration,
};

use serde_json::{Value, json};
pub use testkit::Transport;
use testkit::{Link, ws::WsEnd};

pub struct ChatClient {
    pub user: String,
    token: String,
    transport: Transport,
    /// Every gateway port, for a stream's POSTs.
    gateways: Vec<u16>,
    ws: Option<Link>,
    /// client_id → (to, body), until `sent`.
    pub unacked: BTreeMap<String, (String, String)>,
    /// client_id → (id, seq).
    pub acked: HashMap<String, (String, u64)>,
    /// id → message, deduplicated (chat messages: membership events go
    /// to `member_events`).
    pub received: HashMap<String, Value>,
    /// id → membership event, deduplicated.
    pub member_events: HashMap<String, Value>,
    /// How many chat `message` frames arrived, duplicates included.
    pub message_frames: usize,
    /// How many `resync` frames arrived.
    pub resyncs: usize,
}

impl ChatClient {
    pub async fn connect(user: &str, token: &str, port: u16) -> Self {
        Self::connect_with(Transport::WebSocket, &[], user, token, port).await
    }

    /// A client on `transport`; a stream's POSTs go to `gateways` in turn.
    pub async fn connect_with(
        transport: Transport,
        gateways: &[u16],
        user: &str,
        token: &str,
        port: u16,
    ) -> Self {
        let mut c = Self {
            user: user.to_owned(),
            token: token.to_owned(),
            transport,
            gateways: gateways.to_vec(),
            ws: None,
            unacked: BTreeMap::new(),
            acked: HashMap::new(),
            received: HashMap::new(),
            member_events: HashMap::new(),
            message_frames: 0,
            resyncs: 0,
        };
        c.reconnect(port).await;
        c
    }

    fn keep(&mut self, m: Value) {
        let id = m["id"].as_str().unwrap().to_owned();
        if m.get("member").is_some() {
            self.member_events.insert(id, m);
        } else {
            self.received.insert(id, m);
        }
    }

    /// (Re)connects, takes the offline batch, and re-sends what is unacked.
    pub async fn reconnect(&mut self, port: u16) {
        // The living gateways: POSTs to a dead one would only fail.
        let (mut link, offline) = Link::open(self.transport, port, &self.token, &self.gateways)
            .await
            .unwrap_or_else(|e| panic!("{}: the link to {port} opens: {e}", self.user));
        for m in offline["messages"].as_array().unwrap() {
            self.keep(m.clone());
        }
        let _ = link
            .send_text(&json!({"type": "offline_ack"}).to_string())
            .await;
        self.ws = Some(link);
        self.resend_unacked().await;
    }

    /// Re-sends every unacknowledged message with its `client_id`: after a
    /// reconnect, and after a `resync` (its `sent` may have been lost).
    async fn resend_unacked(&mut self) {
        let pending: Vec<_> = self
            .unacked
            .iter()
            .map(|(id, (to, body))| (id.clone(), to.clone(), body.clone()))
            .collect();
        for (client_id, to, body) in pending {
            self.transmit(&client_id, &to, &body).await;
        }
    }

    pub async fn send(&mut self, client_id: &str, to: &str, body: &str) {
        self.unacked
            .insert(client_id.to_owned(), (to.to_owned(), body.to_owned()));
        self.transmit(client_id, to, body).await;
    }

    async fn transmit(&mut self, client_id: &str, to: &str, body: &str) {
        if let Some(ws) = self.ws.as_mut() {
            let frame = json!({"type": "send", "client_id": client_id, "to": to, "body": body});
            if ws.send_text(&frame.to_string()).await.is_err() {
                self.ws = None;
            }
        }
    }

    /// Sends any client frame as it is (an edit, a delete…); its `sent`
    /// lands in `acked` under its `client_id`, as a message's does.
    pub async fn send_frame(&mut self, frame: Value) {
        if let Some(ws) = self.ws.as_mut()
            && ws.send_text(&frame.to_string()).await.is_err()
        {
            self.ws = None;
        }
    }

    /// Pumps until `done` holds, for at most 20 s (then panics with `what`).
    pub async fn pump_until(&mut self, what: &str, done: impl Fn(&Self) -> bool) {
        let end = tokio::time::Instant::now() + Duration::from_secs(20);
        while !done(self) {
            assert!(
                tokio::time::Instant::now() < end,
                "{}: no {what} within 20 s",
                self.user
            );
            assert!(
                self.pump(Duration::from_millis(100)).await,
                "{}: link lost waiting for {what}",
                self.user
            );
        }
    }

    /// The gateways a stream's POSTs go to from the next connect on.
    pub fn use_gateways(&mut self, gateways: &[u16]) {
        self.gateways = gateways.to_vec();
    }

    pub fn connected(&self) -> bool {
        self.ws.is_some()
    }

    /// Reads frames for up to `window`. Returns false once the socket is gone.
    pub async fn pump(&mut self, window: Duration) -> bool {
        let end = tokio::time::Instant::now() + window;
        loop {
            let left = end.saturating_duration_since(tokio::time::Instant::now());
            if left.is_zero() {
                return true;
            }
            let Some(ws) = self.ws.as_mut() else {
                return false;
            };
            match ws.next_frame(left).await {
                Ok(frame) => self.handle(frame).await,
                Err(WsEnd::Error(e)) if e == "timed out" => return true,
                Err(_) => {
                    self.ws = None;
                    return false;
                }
            }
        }
    }

    async fn handle(&mut self, frame: Value) {
        match frame["type"].as_str() {
            Some("sent") => {
                let cid = frame["client_id"].as_str().unwrap().to_owned();
                self.unacked.remove(&cid);
                let entry = (
                    frame["id"].as_str().unwrap().to_owned(),
                    frame["seq"].as_u64().unwrap(),
                );
                if let Some(previous) = self.acked.insert(cid.clone(), entry.clone()) {
                    assert_eq!(previous, entry, "a retry of {cid} changed its id or seq");
                }
            }
            Some("resync") => {
                self.resyncs += 1;
                self.resend_unacked().await;
            }
            Some("message") => {
                if frame.get("member").is_none() {
                    self.message_frames += 1;
                }
                self.keep(frame);
            }
            Some("error") => {
                let code = frame["code"].as_str().unwrap_or_default();
                assert!(
                    code == "unavailable" || code == "rate_limited",
                    "{}: unexpected error {frame}",
                    self.user
                );
                // Retry it, after a moment, with the same client_id.
                if let Some(cid) = frame["ref"].as_str()
                    && let Some((to, body)) = self.unacked.get(cid).cloned()
                {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    self.transmit(cid, &to, &body).await;
                }
            }
            _ => {}
        }
    }

    /// Pumps until every sent message is acknowledged.
    pub async fn settle(&mut self, deadline: Duration) {
        let end = tokio::time::Instant::now() + deadline;
        while !self.unacked.is_empty() {
            assert!(
                tokio::time::Instant::now() < end,
                "{}: {} messages never acknowledged",
                self.user,
                self.unacked.len()
            );
            if !self.pump(Duration::from_millis(200)).await {
                panic!("{}: socket lost while settling", self.user);
            }
        }
    }
}
