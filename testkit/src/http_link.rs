//! The HTTP transports, for clients of the end-to-end tests. Server frames come from
//! `GET /api/stream` (server-sent events) or from long-polls of
//! `GET /api/poll/{conn}`; client frames are POSTed to `/api/stream/{conn}`.
//! Each POST (and each poll) goes to the next gateway in turn, so a
//! client's traffic crosses gateways as it would behind a load balancer.

use std::time::Duration;

use crate::ws::WsEnd;
use reqwest::StatusCode;
use serde_json::Value;
use tokio::sync::mpsc;

/// How long one long-poll waits for frames.
const POLL_WAIT_MS: u64 = 2000;

pub struct StreamLink {
    http: reqwest::Client,
    token: String,
    conn: String,
    /// Gateway ports the POSTs go to, in turn.
    posts: Vec<u16>,
    next_post: usize,
    /// Server frames as (event, data); closed when the downlink ends.
    events: mpsc::UnboundedReceiver<(String, String)>,
}

impl StreamLink {
    /// A stream on gateway `port`, past `hello`; the `offline` frame.
    pub async fn connect(port: u16, token: &str, posts: Vec<u16>) -> Result<(Self, Value), String> {
        let http = reqwest::Client::new();
        let request = http.get(format!("http://127.0.0.1:{port}/api/stream"));
        let response = opened(request, token).await?;
        let mut events = crate::sse::events(response);
        let (kind, data) = next_event(&mut events, Duration::from_secs(10)).await?;
        if kind != "connection" {
            return Err(format!("first event {kind}: {data}"));
        }
        let opened: Value = serde_json::from_str(&data).map_err(|e| e.to_string())?;
        let conn = opened["conn"].as_str().unwrap_or_default().to_owned();
        Self::handshake(http, token, conn, posts, events).await
    }

    /// A long-poll connection opened on gateway `port`, polled on every
    /// gateway of `posts` in turn, past `hello`; the `offline` frame.
    pub async fn connect_polling(
        port: u16,
        token: &str,
        posts: Vec<u16>,
    ) -> Result<(Self, Value), String> {
        let http = reqwest::Client::new();
        let request = http.post(format!("http://127.0.0.1:{port}/api/poll"));
        let response = opened(request, token).await?;
        let opened: Value = response.json().await.map_err(|e| e.to_string())?;
        let conn = opened["conn"].as_str().unwrap_or_default().to_owned();
        let cursor = opened["cursor"].as_str().unwrap_or("0-0").to_owned();
        let (tx, events) = mpsc::unbounded_channel();
        tokio::spawn(poll_loop(
            http.clone(),
            token.to_owned(),
            conn.clone(),
            cursor,
            posts.clone(),
            tx,
        ));
        Self::handshake(http, token, conn, posts, events).await
    }

    async fn handshake(
        http: reqwest::Client,
        token: &str,
        conn: String,
        posts: Vec<u16>,
        events: mpsc::UnboundedReceiver<(String, String)>,
    ) -> Result<(Self, Value), String> {
        let mut link = Self {
            http,
            token: token.to_owned(),
            conn,
            posts,
            next_post: 0,
            events,
        };
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

    /// The next server frame, or how the link ended (as a socket would).
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
                Ok(r) if r.status() == StatusCode::ACCEPTED => return Ok(()),
                Ok(r) if r.status() == StatusCode::NOT_FOUND => {
                    return Err("the stream is gone".into());
                }
                Ok(r) => last = r.status().to_string(),
                Err(e) => last = e.to_string(),
            }
        }
        Err(last)
    }
}

/// Sends the request that opens a link, as `token`; its answer if it is a
/// success.
async fn opened(
    request: reqwest::RequestBuilder,
    token: &str,
) -> Result<reqwest::Response, String> {
    let response = request
        .bearer_auth(token)
        .send()
        .await
        .map_err(|e| e.to_string())?;
    if !response.status().is_success() {
        return Err(format!("refused: {}", response.status()));
    }
    Ok(response)
}

async fn next_event(
    events: &mut mpsc::UnboundedReceiver<(String, String)>,
    deadline: Duration,
) -> Result<(String, String), String> {
    match tokio::time::timeout(deadline, events.recv()).await {
        Ok(Some(event)) => Ok(event),
        Ok(None) => Err("the stream ended".into()),
        Err(_) => Err("timed out".into()),
    }
}

/// Polls one at a time, each on the next gateway, and hands the frames on
/// as a stream's events: ("message", frame), then ("close", close). Ends
/// (closing the channel, a broken link) on a 404, or when no gateway
/// answers; a poll that failed in transit is repeated with its cursor.
async fn poll_loop(
    http: reqwest::Client,
    token: String,
    conn: String,
    mut cursor: String,
    gateways: Vec<u16>,
    tx: mpsc::UnboundedSender<(String, String)>,
) {
    let mut turn = 0;
    let mut failures = 0;
    while failures <= 2 * gateways.len() {
        let port = gateways[turn % gateways.len()];
        turn += 1;
        let answer = http
            .get(format!(
                "http://127.0.0.1:{port}/api/poll/{conn}?cursor={cursor}&wait_ms={POLL_WAIT_MS}"
            ))
            .bearer_auth(&token)
            .timeout(Duration::from_millis(POLL_WAIT_MS + 5000))
            .send()
            .await;
        let answer = match answer {
            Ok(r) if r.status() == StatusCode::OK => r.json::<Value>().await,
            Ok(r) if r.status().is_client_error() => return,
            Ok(_) | Err(_) => {
                failures += 1;
                continue;
            }
        };
        let Ok(answer) = answer else {
            failures += 1;
            continue;
        };
        failures = 0;
        for frame in answer["frames"].as_array().into_iter().flatten() {
            if tx.send(("message".into(), frame.to_string())).is_err() {
                return;
            }
        }
        if !answer["close"].is_null() {
            let _ = tx.send(("close".into(), answer["close"].to_string()));
            return;
        }
        cursor = answer["cursor"].as_str().unwrap_or(&cursor).to_owned();
    }
}
