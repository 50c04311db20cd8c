//! One user's client: random requests that race on the same messages, as
//! docs/protocol.md lets a client send them, and everything the server
//! answered. It behaves as the protocol asks (keeps each request until it
//! has a definite answer, re-sends with the same client_id, recovers after
//! `resync` and on every connect) and keeps its conversations by the
//! documented rule ([`View`]).

use std::{
    collections::{HashMap, HashSet},
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::{Duration, Instant},
};

use serde_json::{Value, json};
use testkit::{WsClient, recovery::get, ws::WsEnd};

use crate::view::View;

/// What the actors share: the gateways, the room, and the stop signal.
pub struct World {
    pub ports: Vec<u16>,
    pub users: Vec<String>,
    pub room: String,
    /// The room's owner (may delete anyone's message there).
    pub owner: String,
    sending: AtomicBool,
}

impl World {
    pub fn new(ports: Vec<u16>, users: Vec<String>, room: &str) -> Self {
        Self {
            ports,
            owner: users[0].clone(),
            users,
            room: room.to_owned(),
            sending: AtomicBool::new(true),
        }
    }

    pub fn stop(&self) {
        self.sending.store(false, Ordering::SeqCst);
    }

    fn sending(&self) -> bool {
        self.sending.load(Ordering::SeqCst)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Send,
    Edit,
    Delete,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    Pending,
    Sent { id: String, seq: u64 },
    Refused { code: String },
}

/// One request as this client made it, and its definite answer.
#[derive(Debug, Clone)]
pub struct Request {
    pub client_id: String,
    pub frame: Value,
    pub kind: Kind,
    pub conversation: String,
    pub target_seq: Option<u64>,
    pub body: String,
    /// Reuses the client_id of an answered request for another request:
    /// the answer must be `conflict`.
    pub reuse_of: Option<usize>,
    /// An exact re-send of an acknowledged request: the answer must be its
    /// `sent` again.
    pub duplicate_of: Option<usize>,
    pub answer: Answer,
    last_tx: Instant,
}

/// What a client ended with.
pub struct Outcome {
    pub user: String,
    pub token: String,
    pub requests: Vec<Request>,
    pub view: View,
    /// Read markers this client asked for, per conversation (the highest).
    pub reads_sent: HashMap<String, u64>,
    /// Anything the client itself saw go wrong (an answer it cannot pair,
    /// a frame delivered twice to one socket, a read marker going back).
    pub violations: Vec<String>,
    pub sockets: usize,
    pub resyncs: usize,
    /// Live and offline deliveries, summed over sockets.
    pub delivered: usize,
}

/// Codes after which the protocol asks for the same request again.
fn transient(code: &str) -> bool {
    matches!(code, "unavailable" | "rate_limited" | "internal")
}

/// Per socket: what it was delivered, for the twice-delivered check.
#[derive(Default)]
struct Socket {
    delivered: HashSet<String>,
    reads: HashMap<String, u64>,
    /// Per conversation, the highest seq delivered.
    top: HashMap<String, u64>,
}

/// How far below its highest seq a gateway remembers, per conversation and
/// socket, what it handed (`gateway/src/delivery/seen.rs`): an older seq
/// delivered again is handed on, as documented ("a rare duplicate beats a
/// missed message"; clients drop it by id).
const SEEN_WINDOW: u64 = 64;

pub struct Actor {
    user: String,
    token: String,
    world: Arc<World>,
    rng: u64,
    ws: Option<WsClient>,
    socket: Socket,
    port: usize,
    requests: Vec<Request>,
    /// client_id → the one request of it waiting for an answer.
    pending: HashMap<String, usize>,
    /// client_id → its requests, in order.
    by_client_id: HashMap<String, Vec<usize>>,
    view: View,
    reads_sent: HashMap<String, u64>,
    violations: Vec<String>,
    recovery_pending: bool,
    sockets: usize,
    resyncs: usize,
    delivered: usize,
    counter: usize,
    http: reqwest::Client,
}

/// A request unanswered this long is sent again.
const RESEND_AFTER: Duration = Duration::from_secs(3);
/// After traffic stops, how long a client may still wait for its answers.
const DRAIN: Duration = Duration::from_secs(120);

impl Actor {
    pub fn new(user: &str, token: &str, world: Arc<World>, seed: u64) -> Self {
        Self {
            user: user.to_owned(),
            token: token.to_owned(),
            world,
            rng: seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407)
                | 1,
            ws: None,
            socket: Socket::default(),
            port: 0,
            requests: Vec::new(),
            pending: HashMap::new(),
            by_client_id: HashMap::new(),
            view: View::default(),
            reads_sent: HashMap::new(),
            violations: Vec::new(),
            recovery_pending: false,
            sockets: 0,
            resyncs: 0,
            delivered: 0,
            counter: 0,
            http: reqwest::Client::new(),
        }
    }

    fn random(&mut self) -> u64 {
        self.rng ^= self.rng << 13;
        self.rng ^= self.rng >> 7;
        self.rng ^= self.rng << 17;
        self.rng
    }

    fn pick<T: Clone>(&mut self, from: &[T]) -> Option<T> {
        if from.is_empty() {
            return None;
        }
        let i = (self.random() % from.len() as u64) as usize;
        Some(from[i].clone())
    }

    fn base(&self) -> String {
        format!("http://127.0.0.1:{}", self.world.ports[self.port])
    }

    pub async fn run(mut self, first_gateway: usize) -> Outcome {
        self.port = first_gateway % self.world.ports.len();
        let mut next_op = Instant::now();
        let mut stopped: Option<Instant> = None;
        loop {
            if !self.world.sending() {
                let at = *stopped.get_or_insert_with(Instant::now);
                if self.pending.is_empty() || at.elapsed() > DRAIN {
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
            if self.world.sending() && Instant::now() >= next_op {
                self.operate().await;
                let gap = 100 + self.random() % 300;
                next_op = Instant::now() + Duration::from_millis(gap);
            }
            self.resend_stale().await;
            self.read(Duration::from_millis(50)).await;
        }
        self.finish().await;
        Outcome {
            user: self.user,
            token: self.token,
            requests: self.requests,
            view: self.view,
            reads_sent: self.reads_sent,
            violations: self.violations,
            sockets: self.sockets,
            resyncs: self.resyncs,
            delivered: self.delivered,
        }
    }

    /// A last socket (its offline batch), a full recovery and a moment of
    /// listening: what the client holds once everything settled.
    async fn finish(&mut self) {
        self.ws = None;
        for _ in 0..50 {
            if self.connect().await {
                break;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        let until = Instant::now() + Duration::from_secs(2);
        while Instant::now() < until {
            self.read(Duration::from_millis(100)).await;
        }
        for _ in 0..20 {
            self.recovery_pending = true;
            self.recover().await;
            if !self.recovery_pending {
                break;
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
        if !self.pending.is_empty() {
            let ids: Vec<&String> = self.pending.keys().collect();
            self.violations
                .push(format!("{}: requests never answered: {ids:?}", self.user));
        }
    }

    async fn connect(&mut self) -> bool {
        for attempt in 0..self.world.ports.len() {
            let index = (self.port + attempt) % self.world.ports.len();
            let Ok(mut ws) = WsClient::connect(self.world.ports[index], &self.token).await else {
                continue;
            };
            let hello = ws.next_frame(Duration::from_secs(5)).await;
            let offline = ws.next_frame(Duration::from_secs(5)).await;
            let (Ok(hello), Ok(offline)) = (hello, offline) else {
                continue;
            };
            if hello["type"] != "hello" || offline["type"] != "offline" {
                self.violations.push(format!(
                    "{}: a socket opened with {} then {}",
                    self.user, hello["type"], offline["type"]
                ));
                continue;
            }
            self.socket = Socket::default();
            for m in offline["messages"].as_array().cloned().unwrap_or_default() {
                self.deliver(&m, "offline");
            }
            if ws
                .try_send_text(&json!({"type": "offline_ack"}).to_string())
                .await
                .is_err()
            {
                continue;
            }
            self.ws = Some(ws);
            self.port = index;
            self.sockets += 1;
            let waiting: Vec<usize> = self.pending.values().copied().collect();
            for i in waiting {
                self.transmit(i).await;
            }
            self.recovery_pending = true;
            return true;
        }
        false
    }

    /// A message delivered to this socket, live or in its offline batch.
    fn deliver(&mut self, m: &Value, how: &str) {
        let id = m["id"].as_str().unwrap_or_default().to_owned();
        let conversation = m["conversation"].as_str().unwrap_or_default().to_owned();
        let seq = m["seq"].as_u64().unwrap_or_default();
        self.delivered += 1;
        let top = self.socket.top.entry(conversation).or_default();
        let stale = *top >= seq + SEEN_WINDOW;
        *top = (*top).max(seq);
        if !self.socket.delivered.insert(id.clone()) && !stale {
            self.violations.push(format!(
                "{}: {how} delivery of {} seq {} ({id}) reached this socket twice",
                self.user, m["conversation"], m["seq"]
            ));
        }
        self.view.live(m);
    }

    async fn recover(&mut self) {
        match self.try_recover().await {
            Ok(()) => self.recovery_pending = false,
            Err(_) => self.recovery_pending = true,
        }
    }

    async fn try_recover(&mut self) -> Result<(), String> {
        let base = self.base();
        let mut conversations = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let url = match &cursor {
                Some(c) => format!("{base}/api/conversations?limit=200&cursor={c}"),
                None => format!("{base}/api/conversations?limit=200"),
            };
            let list = get(&self.http, &url, &self.token).await?;
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
            let mut after = self.view.contiguous(id);
            let mut stale = Vec::new();
            while after < last {
                let page = get(
                    &self.http,
                    &format!("{base}/api/conversations/{id}/messages?after={after}&limit=200"),
                    &self.token,
                )
                .await?;
                let messages = page["messages"].as_array().cloned().unwrap_or_default();
                for m in &messages {
                    stale.extend(self.view.paged(m));
                }
                match messages.last().and_then(|m| m["seq"].as_u64()) {
                    Some(seq) if page["has_more"] == true => after = seq,
                    _ => break,
                }
            }
            for target in stale {
                let page = get(
                    &self.http,
                    &format!(
                        "{base}/api/conversations/{id}/messages?before={}&limit=1",
                        target + 1
                    ),
                    &self.token,
                )
                .await?;
                for m in page["messages"].as_array().cloned().unwrap_or_default() {
                    self.view.paged(&m);
                }
            }
        }
        Ok(())
    }

    async fn read(&mut self, wait: Duration) {
        let Some(ws) = self.ws.as_mut() else {
            return;
        };
        match ws.next_frame(wait).await {
            Ok(frame) => self.handle(frame),
            Err(WsEnd::Error(e)) if e == "timed out" => {}
            Err(_) => self.ws = None,
        }
    }

    fn handle(&mut self, frame: Value) {
        match frame["type"].as_str() {
            Some("message") => self.deliver(&frame, "live"),
            Some("sent") => self.answered(&frame, None),
            Some("error") => {
                let code = frame["code"].as_str().unwrap_or_default().to_owned();
                if frame["ref"].is_string() {
                    self.answered(&frame, Some(code));
                }
            }
            Some("read") => {
                let conv = frame["conversation"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned();
                let seq = frame["seq"].as_u64().unwrap_or(0);
                let last = self.socket.reads.entry(conv.clone()).or_insert(0);
                if seq <= *last && *last > 0 {
                    self.violations.push(format!(
                        "{}: read marker of {conv} announced {seq} after {}",
                        self.user, *last
                    ));
                }
                *last = (*last).max(seq);
            }
            Some("resync") => {
                self.resyncs += 1;
                self.recovery_pending = true;
            }
            _ => {}
        }
    }

    /// A `sent` (code None) or an `error` with a ref.
    fn answered(&mut self, frame: &Value, code: Option<String>) {
        let client_id = frame
            .get("client_id")
            .or_else(|| frame.get("ref"))
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned();
        let Some(&i) = self.pending.get(&client_id) else {
            self.stray(&client_id, frame, code);
            return;
        };
        // A reuse waits for its `conflict`; the original's `sent` arriving
        // again (its batch was retried) is that request's answer repeated.
        if let (None, Some(original)) = (&code, self.requests[i].reuse_of)
            && let Answer::Sent { id, seq } = &self.requests[original].answer
            && frame["id"].as_str() == Some(id.as_str())
            && frame["seq"].as_u64() == Some(*seq)
        {
            return;
        }
        match code {
            Some(code) if transient(&code) => {
                // Asked to send it again: after a moment, with the same client_id.
                self.requests[i].last_tx = Instant::now() - RESEND_AFTER / 2;
            }
            Some(code) => {
                self.requests[i].answer = Answer::Refused { code };
                self.pending.remove(&client_id);
            }
            None => {
                self.requests[i].answer = Answer::Sent {
                    id: frame["id"].as_str().unwrap_or_default().to_owned(),
                    seq: frame["seq"].as_u64().unwrap_or(0),
                };
                self.pending.remove(&client_id);
            }
        }
    }

    /// An answer for a client_id with nothing pending: only a repeat of the
    /// answer its last request already had is fine.
    fn stray(&mut self, client_id: &str, frame: &Value, code: Option<String>) {
        let Some(&last) = self.by_client_id.get(client_id).and_then(|v| v.last()) else {
            self.violations.push(format!(
                "{}: an answer for unknown {client_id}: {frame}",
                self.user
            ));
            return;
        };
        // The `sent` of the request that first used it, repeated (its batch
        // was retried), after a later reuse was refused.
        let first = self.by_client_id[client_id][0];
        if code.is_none()
            && let Answer::Sent { id, seq } = &self.requests[first].answer
            && frame["id"].as_str() == Some(id.as_str())
            && frame["seq"].as_u64() == Some(*seq)
        {
            return;
        }
        let fine = match (&self.requests[last].answer, &code) {
            (_, Some(c)) if transient(c) => true,
            (Answer::Sent { id, seq }, None) => {
                frame["id"].as_str() == Some(id.as_str()) && frame["seq"].as_u64() == Some(*seq)
            }
            (Answer::Refused { code: had }, Some(c)) => had == c,
            _ => false,
        };
        if !fine {
            self.violations.push(format!(
                "{}: {client_id} answered {:?} already, then {frame}",
                self.user, self.requests[last].answer
            ));
        }
    }

    async fn transmit(&mut self, i: usize) {
        self.requests[i].last_tx = Instant::now();
        let text = self.requests[i].frame.to_string();
        if let Some(ws) = self.ws.as_mut()
            && ws.try_send_text(&text).await.is_err()
        {
            self.ws = None;
        }
    }

    async fn resend_stale(&mut self) {
        let stale: Vec<usize> = self
            .pending
            .values()
            .copied()
            .filter(|i| self.requests[*i].last_tx.elapsed() > RESEND_AFTER)
            .collect();
        for i in stale {
            self.transmit(i).await;
        }
    }

    /// Makes a request and sends it; none if its client_id is busy.
    async fn request(
        &mut self,
        client_id: String,
        kind: Kind,
        conversation: String,
        target_seq: Option<u64>,
        body: String,
        relation: (Option<usize>, Option<usize>),
    ) {
        if self.pending.contains_key(&client_id) {
            return;
        }
        let frame = match kind {
            Kind::Send => {
                let to = target_of(&conversation, &self.user);
                json!({"type": "send", "client_id": client_id, "to": to, "body": body})
            }
            Kind::Edit => json!({"type": "edit", "client_id": client_id,
                "conversation": conversation, "seq": target_seq, "body": body}),
            Kind::Delete => json!({"type": "delete", "client_id": client_id,
                "conversation": conversation, "seq": target_seq}),
        };
        let frame = match relation.1 {
            Some(original) => self.requests[original].frame.clone(),
            None => frame,
        };
        let i = self.requests.len();
        self.requests.push(Request {
            client_id: client_id.clone(),
            frame,
            kind,
            conversation,
            target_seq,
            body,
            reuse_of: relation.0,
            duplicate_of: relation.1,
            answer: Answer::Pending,
            last_tx: Instant::now(),
        });
        self.pending.insert(client_id.clone(), i);
        self.by_client_id.entry(client_id).or_default().push(i);
        self.transmit(i).await;
    }

    fn fresh_id(&mut self) -> String {
        self.counter += 1;
        format!("{}-{}", self.user, self.counter)
    }

    /// This client's acknowledged messages (not events): (conversation, seq).
    fn own_messages(&self) -> Vec<(String, u64)> {
        self.requests
            .iter()
            .filter(|r| r.kind == Kind::Send && r.duplicate_of.is_none() && r.reuse_of.is_none())
            .filter_map(|r| match &r.answer {
                Answer::Sent { seq, .. } => Some((r.conversation.clone(), *seq)),
                _ => None,
            })
            .collect()
    }

    async fn operate(&mut self) {
        let roll = self.random() % 100;
        match roll {
            0..=34 => self.send_new().await,
            35..=49 => self.change(Kind::Edit).await,
            50..=59 => self.change(Kind::Delete).await,
            60..=71 => self.race().await,
            72..=76 => self.owner_delete().await,
            77..=81 => self.duplicate().await,
            82..=87 => self.reuse().await,
            88..=95 => self.mark_read().await,
            _ => self.reconnect().await,
        }
    }

    async fn send_new(&mut self) {
        let others: Vec<String> = self
            .world
            .users
            .iter()
            .filter(|u| **u != self.user)
            .cloned()
            .collect();
        let conversation = if self.random() % 10 < 6 {
            let peer = self.pick(&others).unwrap_or_default();
            dm(&self.user, &peer)
        } else {
            format!("room:{}", self.world.room)
        };
        let client_id = self.fresh_id();
        let body = format!("{client_id} says hello");
        self.request(
            client_id,
            Kind::Send,
            conversation,
            None,
            body,
            (None, None),
        )
        .await;
    }

    async fn change(&mut self, kind: Kind) {
        let Some((conversation, seq)) = self.pick(&self.own_messages()) else {
            return self.send_new().await;
        };
        let client_id = self.fresh_id();
        let body = match kind {
            Kind::Edit => format!("{client_id} edits {seq}"),
            _ => String::new(),
        };
        self.request(client_id, kind, conversation, Some(seq), body, (None, None))
            .await;
    }

    /// Two changes of one message back to back, without waiting: an edit and
    /// a delete in either order, two deletes, or two edits.
    async fn race(&mut self) {
        let Some((conversation, seq)) = self.pick(&self.own_messages()) else {
            return self.send_new().await;
        };
        let pair = match self.random() % 4 {
            0 => [Kind::Delete, Kind::Edit],
            1 => [Kind::Edit, Kind::Delete],
            2 => [Kind::Delete, Kind::Delete],
            _ => [Kind::Edit, Kind::Edit],
        };
        for kind in pair {
            let client_id = self.fresh_id();
            let body = match kind {
                Kind::Edit => format!("{client_id} races on {seq}"),
                _ => String::new(),
            };
            self.request(
                client_id,
                kind,
                conversation.clone(),
                Some(seq),
                body,
                (None, None),
            )
            .await;
        }
    }

    /// The room's owner deletes someone else's message there.
    async fn owner_delete(&mut self) {
        if self.user != self.world.owner {
            return self.change(Kind::Edit).await;
        }
        let room = format!("room:{}", self.world.room);
        let theirs: Vec<u64> = self
            .view
            .conversations
            .get(&room)
            .map(|slot| {
                slot.iter()
                    .filter(|(_, h)| h.kind.is_none() && h.from != self.user && !h.tombstone)
                    .map(|(seq, _)| *seq)
                    .collect()
            })
            .unwrap_or_default();
        let Some(seq) = self.pick(&theirs) else {
            return;
        };
        let client_id = self.fresh_id();
        self.request(
            client_id,
            Kind::Delete,
            room,
            Some(seq),
            String::new(),
            (None, None),
        )
        .await;
    }

    /// The same frame again under an acknowledged request's client_id.
    async fn duplicate(&mut self) {
        let acked: Vec<usize> = (0..self.requests.len())
            .filter(|i| {
                let r = &self.requests[*i];
                r.duplicate_of.is_none()
                    && r.reuse_of.is_none()
                    && matches!(r.answer, Answer::Sent { .. })
                    && self.last_of(&r.client_id) == Some(*i)
            })
            .collect();
        let Some(i) = self.pick(&acked) else { return };
        let r = self.requests[i].clone();
        self.request(
            r.client_id,
            r.kind,
            r.conversation,
            r.target_seq,
            r.body,
            (None, Some(i)),
        )
        .await;
    }

    fn last_of(&self, client_id: &str) -> Option<usize> {
        self.by_client_id
            .get(client_id)
            .and_then(|v| v.last())
            .copied()
    }

    /// Another request under an answered request's client_id: another kind,
    /// target, seq or conversation.
    async fn reuse(&mut self) {
        let answered: Vec<usize> = (0..self.requests.len())
            .filter(|i| {
                let r = &self.requests[*i];
                r.reuse_of.is_none()
                    && r.duplicate_of.is_none()
                    && matches!(r.answer, Answer::Sent { .. })
            })
            .collect();
        let Some(i) = self.pick(&answered) else {
            return;
        };
        let original = self.requests[i].clone();
        let own = self.own_messages();
        let (kind, conversation, target) = match (original.kind, self.random() % 3) {
            // A send's client_id for a delete of one of this client's messages.
            (Kind::Send, 0) => match self.pick(&own) {
                Some((c, s)) => (Kind::Delete, c, Some(s)),
                None => return,
            },
            // The same client_id to another conversation.
            (Kind::Send, _) => {
                let room = format!("room:{}", self.world.room);
                let other = if original.conversation == room {
                    let peer = self
                        .world
                        .users
                        .iter()
                        .find(|u| **u != self.user)
                        .cloned()
                        .unwrap_or_default();
                    dm(&self.user, &peer)
                } else {
                    room
                };
                (Kind::Send, other, None)
            }
            // An edit or delete's client_id for the other change, or a seq.
            (kind, 0) => {
                let other = if kind == Kind::Edit {
                    Kind::Delete
                } else {
                    Kind::Edit
                };
                (other, original.conversation.clone(), original.target_seq)
            }
            (kind, _) => {
                let seq = original.target_seq.unwrap_or(1) + 1;
                (kind, original.conversation.clone(), Some(seq))
            }
        };
        let body = match kind {
            Kind::Delete => String::new(),
            _ => format!("{} reused", original.client_id),
        };
        self.request(
            original.client_id,
            kind,
            conversation,
            target,
            body,
            (Some(i), None),
        )
        .await;
    }

    async fn mark_read(&mut self) {
        let convs: Vec<(String, u64)> = self
            .view
            .conversations
            .keys()
            .map(|c| (c.clone(), self.view.highest(c)))
            .filter(|(_, h)| *h > 0)
            .collect();
        let Some((conversation, highest)) = self.pick(&convs) else {
            return;
        };
        let seq = 1 + self.random() % highest;
        let frame = json!({"type": "read", "conversation": conversation, "seq": seq});
        let mark = self.reads_sent.entry(conversation).or_insert(0);
        *mark = (*mark).max(seq);
        if let Some(ws) = self.ws.as_mut()
            && ws.try_send_text(&frame.to_string()).await.is_err()
        {
            self.ws = None;
        }
    }

    async fn reconnect(&mut self) {
        self.ws = None;
        self.port = (self.port + 1) % self.world.ports.len();
    }
}

/// `dm:<a>:<b>` with the names in order.
pub fn dm(a: &str, b: &str) -> String {
    if a < b {
        format!("dm:{a}:{b}")
    } else {
        format!("dm:{b}:{a}")
    }
}

/// The `to` of a send from `user` into `conversation`.
fn target_of(conversation: &str, user: &str) -> String {
    if let Some(room) = conversation.strip_prefix("room:") {
        return format!("room:{room}");
    }
    let mut parts = conversation.trim_start_matches("dm:").split(':');
    let (a, b) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    format!("user:{}", if a == user { b } else { a })
}
