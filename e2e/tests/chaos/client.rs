//! A chat user as docs/protocol.md asks clients to behave: keep each message
//! until its `sent`, re-send it with the same client_id after a reconnect or
//! an error, recover after `resync` and on every (re)connect, merge by id.

use std::{
    collections::HashMap,
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, Ordering},
    },
    time::{Duration, Instant},
};

use e2e::Stack;
use serde_json::{Value, json};
use testkit::{Link, Transport, recovery::Inbox, ws::WsEnd};

use crate::ROOM;

/// What the peers share: where the gateways are, whether to keep sending,
/// and every ack with its send time (for recovery times).
pub struct Shared {
    pub ports: Vec<u16>,
    sending: AtomicBool,
    pub acks: Mutex<Vec<(Instant, Instant)>>,
    /// Peers whose every message is acknowledged since sending stopped.
    drained: std::sync::atomic::AtomicUsize,
    peers: usize,
}

impl Shared {
    pub fn new(stack: &Stack, peers: usize) -> Self {
        Self {
            ports: stack.gateway_ports.clone(),
            sending: AtomicBool::new(true),
            acks: Mutex::new(Vec::new()),
            drained: std::sync::atomic::AtomicUsize::new(0),
            peers,
        }
    }

    fn all_drained(&self) -> bool {
        self.drained.load(Ordering::SeqCst) >= self.peers
    }

    pub fn stop_sending(&self) {
        self.sending.store(false, Ordering::SeqCst);
    }

    fn sending(&self) -> bool {
        self.sending.load(Ordering::SeqCst)
    }
}

/// A message this peer got `sent` for.
#[derive(Clone)]
pub struct Acked {
    pub id: String,
    pub conversation: String,
    pub seq: u64,
}

/// A peer's state at the end.
pub struct Finished {
    pub user: String,
    pub token: String,
    pub acked: HashMap<String, Acked>,
    pub inbox: Inbox,
    pub unacked: usize,
    pub reconnects: usize,
    pub resyncs: usize,
}

pub struct Peer {
    user: String,
    token: String,
    others: Vec<String>,
    shared: Arc<Shared>,
    rng: u64,
    transport: Transport,
    ws: Option<Link>,
    port: usize,
    /// client_id → (to, body, last sent).
    unacked: HashMap<String, (String, String, Instant, Instant)>,
    acked: HashMap<String, Acked>,
    inbox: Inbox,
    recovery_pending: bool,
    reconnects: usize,
    resyncs: usize,
    sent: usize,
    http: reqwest::Client,
}

/// Messages per second per peer.
const RATE: f64 = 3.0;
/// An unacked message is re-sent after this long.
const RESEND_AFTER: Duration = Duration::from_secs(3);
/// After sending stops, how long a peer may still work on its unacked.
const DRAIN: Duration = Duration::from_secs(90);
/// Once every peer is drained, how long each keeps listening: what was
/// acknowledged by then arrives within it (live, or by a pending recovery).
const SETTLE: Duration = Duration::from_secs(3);

impl Peer {
    pub fn new(
        user: &str,
        token: &str,
        all: &[String],
        shared: Arc<Shared>,
        seed: u64,
        transport: Transport,
    ) -> Self {
        Self {
            user: user.to_owned(),
            token: token.to_owned(),
            others: all.iter().filter(|u| *u != user).cloned().collect(),
            shared,
            rng: seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407)
                | 1,
            transport,
            ws: None,
            port: 0,
            unacked: HashMap::new(),
            acked: HashMap::new(),
            inbox: Inbox::default(),
            recovery_pending: false,
            reconnects: 0,
            resyncs: 0,
            sent: 0,
            http: reqwest::Client::new(),
        }
    }

    fn random(&mut self) -> u64 {
        // xorshift: reproducible from CHAOS_SEED.
        self.rng ^= self.rng << 13;
        self.rng ^= self.rng >> 7;
        self.rng ^= self.rng << 17;
        self.rng
    }

    fn base(&self) -> String {
        format!("http://127.0.0.1:{}", self.shared.ports[self.port])
    }

    pub async fn run(mut self, first: usize) -> Finished {
        self.port = first;
        let mut next_send = Instant::now();
        let mut stopped_at = None;
        let mut drained = false;
        let mut settle_from = None;
        loop {
            if !self.shared.sending() {
                let at = *stopped_at.get_or_insert_with(Instant::now);
                if !drained && self.unacked.is_empty() {
                    drained = true;
                    self.shared.drained.fetch_add(1, Ordering::SeqCst);
                }
                if self.shared.all_drained() {
                    let from = *settle_from.get_or_insert_with(Instant::now);
                    if from.elapsed() > SETTLE && !self.recovery_pending {
                        break;
                    }
                }
                if at.elapsed() > DRAIN {
                    break;
                }
            }
            if self.ws.is_none() && !self.connect().await {
                tokio::time::sleep(Duration::from_millis(200)).await;
                continue;
            }
            if self.recovery_pending {
                self.recover().await;
            }
            if self.shared.sending() && Instant::now() >= next_send {
                self.send_new().await;
                next_send = Instant::now() + Duration::from_secs_f64(1.0 / RATE);
            }
            self.resend_stale().await;
            self.read().await;
        }
        Finished {
            user: self.user,
            token: self.token,
            acked: self.acked,
            inbox: self.inbox,
            unacked: self.unacked.len(),
            reconnects: self.reconnects,
            resyncs: self.resyncs,
        }
    }

    /// Tries every gateway, starting with the last one; on success takes the
    /// offline batch, re-sends what is unacked, and recovers.
    async fn connect(&mut self) -> bool {
        for attempt in 0..self.shared.ports.len() {
            let port_index = (self.port + attempt) % self.shared.ports.len();
            let port = self.shared.ports[port_index];
            let Ok((mut ws, offline)) =
                Link::open(self.transport, port, &self.token, &self.shared.ports).await
            else {
                continue;
            };
            for m in offline["messages"].as_array().cloned().unwrap_or_default() {
                self.inbox.add(&m, true);
            }
            if ws
                .send_text(&json!({"type": "offline_ack"}).to_string())
                .await
                .is_err()
            {
                continue;
            }
            self.ws = Some(ws);
            self.port = port_index;
            self.reconnects += 1;
            let pending: Vec<String> = self.unacked.keys().cloned().collect();
            for client_id in pending {
                self.transmit(&client_id).await;
            }
            self.recovery_pending = true;
            return true;
        }
        false
    }

    async fn recover(&mut self) {
        let base = self.base();
        if self
            .inbox
            .recover(&self.http, &base, &self.token)
            .await
            .is_ok()
        {
            self.recovery_pending = false;
        }
    }

    async fn send_new(&mut self) {
        self.sent += 1;
        let to = if self.random() % 10 < 7 {
            let i = (self.random() % self.others.len() as u64) as usize;
            format!("user:{}", self.others[i])
        } else {
            format!("room:{ROOM}")
        };
        let client_id = format!("{}-{}", self.user, self.sent);
        let body = format!("{} #{} to {to}", self.user, self.sent);
        let now = Instant::now();
        self.unacked.insert(client_id.clone(), (to, body, now, now));
        self.transmit(&client_id).await;
    }

    async fn transmit(&mut self, client_id: &str) {
        let Some((to, body, _, last)) = self.unacked.get_mut(client_id) else {
            return;
        };
        *last = Instant::now();
        let frame = json!({"type": "send", "client_id": client_id, "to": to, "body": body});
        if let Some(ws) = self.ws.as_mut()
            && ws.send_text(&frame.to_string()).await.is_err()
        {
            self.ws = None;
        }
    }

    async fn resend_stale(&mut self) {
        let stale: Vec<String> = self
            .unacked
            .iter()
            .filter(|(_, (_, _, _, last))| last.elapsed() > RESEND_AFTER)
            .map(|(id, _)| id.clone())
            .collect();
        for client_id in stale {
            self.transmit(&client_id).await;
        }
    }

    async fn read(&mut self) {
        let Some(ws) = self.ws.as_mut() else {
            return;
        };
        match ws.next_frame(Duration::from_millis(100)).await {
            Ok(frame) => self.handle(frame),
            Err(WsEnd::Error(e)) if e == "timed out" => {}
            Err(_) => self.ws = None,
        }
    }

    fn handle(&mut self, frame: Value) {
        match frame["type"].as_str() {
            Some("message") => {
                self.inbox.add(&frame, true);
            }
            Some("sent") => {
                let client_id = frame["client_id"].as_str().unwrap_or_default();
                if let Some((_, _, first, _)) = self.unacked.remove(client_id) {
                    self.shared
                        .acks
                        .lock()
                        .unwrap()
                        .push((first, Instant::now()));
                }
                self.acked.insert(
                    client_id.to_owned(),
                    Acked {
                        id: frame["id"].as_str().unwrap_or_default().to_owned(),
                        conversation: frame["conversation"]
                            .as_str()
                            .unwrap_or_default()
                            .to_owned(),
                        seq: frame["seq"].as_u64().unwrap_or_default(),
                    },
                );
            }
            Some("resync") => {
                self.resyncs += 1;
                self.recovery_pending = true;
            }
            _ => {}
        }
    }
}

/// Registers and logs in every user through gateway 0; returns their tokens.
pub async fn register(stack: &Stack, names: &[String]) -> Vec<String> {
    let mut tokens = Vec::new();
    for name in names {
        tokens.push(stack.user(0, name).await);
    }
    tokens
}

/// The shared room: created by the first user, joined by the rest.
pub async fn make_room(stack: &Stack, owner: &str, members: &[String]) {
    let http = reqwest::Client::new();
    let r = http
        .post(stack.gateway_url(0, "/api/rooms"))
        .bearer_auth(owner)
        .json(&json!({ "name": ROOM }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    for token in members {
        let r = http
            .post(stack.gateway_url(0, &format!("/api/rooms/{ROOM}/join")))
            .bearer_auth(token)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
    }
}
