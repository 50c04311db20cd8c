//! The streaming transport for the e2e clients: server frames from
//! `GET /api/stream` (server-sent events), client frames POSTed to
//! `/api/stream/{conn}`, each POST to the next gateway in turn, so a
//! client's frames cross gateways as they would behind a load balancer.

use std::time::Duration;

use serde_json::Value;
use testkit::ws::WsEnd;
use tokio::sync::mpsc;

pub struct StreamLink {
    http: reqwest::Client,
    token: String,
    conn: String,
    /// Gateway ports the POSTs go to, in turn.
    posts: Vec<u16>,
    next_post: usize,
    /// Events as (event, data); closed when the response ends.
    events: mpsc::UnboundedReceiver<(String, String)>,
}

impl StreamLink {
    /// A stream on gateway `port`, past `hello`; the `offline` frame.
    pub async fn connect(port: u16, token: &str, posts: Vec<u16>) -> Result<(Self, Value), String> {
        let http = reqwest::Client::new();
        let mut response = http
            .get(format!("http://127.0.0.1:{port}/api/stream"))
            .bearer_auth(token)
            .send()
            .await
            .map_err(|e| e.to_string())?;
        if !response.status().is_success() {
            return Err(format!("refused: {}", response.status()));
        }
        let (tx, events) = mpsc::unbounded_channel();
        tokio::spawn(async move {
            let mut buffer = String::new();
            while let Ok(Some(chunk)) = response.chunk().await {
                buffer.push_str(&String::from_utf8_lossy(&chunk));
                while let Some(end) = buffer.find("\n\n") {
                    let block: String = buffer.drain(..end + 2).collect();
                    let mut event = ("message".to_owned(), String::new());
                    for line in block.lines() {
                        if let Some(e) = line.strip_prefix("event:") {
                            event.0 = e.trim().to_owned();
                        } else if let Some(d) = line.strip_prefix("data:") {
                            event.1.push_str(d.trim_start());
                        }
                    }
                    if !event.1.is_empty() && tx.send(event).is_err() {
                        return;
                    }
                }
            }
        });
        let mut link = Self {
            http,
            token: token.to_owned(),
            conn: String::new(),
            posts,
            next_post: 0,
            events,
        };
        let (kind, data) = link.event(Duration::from_secs(10)).await?;
        if kind != "connection" {
            return Err(format!("first event {kind}: {data}"));
        }
        let opened: Value = serde_json::from_str(&data).map_err(|e| e.to_string())?;
        link.conn = opened["conn"].as_str().unwrap_or_default().to_owned();
        let hello = link
            .next_frame(Duration::from_secs(10))
            .await
            .map_err(|e| format!("{e:?}"))?;
        assert_eq!(hello["type"], "hello", "{hello}");
        let offline = link
            .next_frame(Duration::from_secs(10))
            .await
            .map_err(|e| format!("{e:?}"))?;
        assert_eq!(offline["type"], "offline", "{offline}");
        Ok((link, offline))
    }

    async fn event(&mut self, deadline: Duration) -> Result<(String, String), String> {
        match tokio::time::timeout(deadline, self.events.recv()).await {
            Ok(Some(event)) => Ok(event),
            Ok(None) => Err("the stream ended".into()),
            Err(_) => Err("timed out".into()),
        }
    }

    /// The next server frame, or how the stream ended (as a socket would).
    pub async fn next_frame(&mut self, deadline: Duration) -> Result<Value, WsEnd> {
        match tokio::time::timeout(deadline, self.events.recv()).await {
            Err(_) => Err(WsEnd::Error("timed out".into())),
            Ok(None) => Err(WsEnd::Closed(None)),
            Ok(Some((kind, _))) if kind == "close" => Err(WsEnd::Closed(None)),
            Ok(Some((_, data))) => {
                serde_json::from_str(&data).map_err(|e| WsEnd::Error(e.to_string()))
            }
        }
    }

    /// POSTs one frame, to the next gateway in turn (then the others, if
    /// that one is gone).
    pub async fn send_text(&mut self, text: &str) -> Result<(), String> {
        let body: Value = serde_json::from_str(text).map_err(|e| e.to_string())?;
        let mut last = String::new();
        for _ in 0..self.posts.len() {
            let port = self.posts[self.next_post % self.posts.len()];
            self.next_post += 1;
            let sent = self
                .http
                .post(format!("http://127.0.0.1:{port}/api/stream/{}", self.conn))
                .bearer_auth(&self.token)
                .json(&body)
                .send()
                .await;
            match sent {
                Ok(r) if r.status() == reqwest::StatusCode::ACCEPTED => return Ok(()),
                Ok(r) if r.status() == reqwest::StatusCode::NOT_FOUND => {
                    return Err("the stream is gone".into());
                }
                Ok(r) => last = r.status().to_string(),
                Err(e) => last = e.to_string(),
            }
        }
        Err(last)
    }
}
