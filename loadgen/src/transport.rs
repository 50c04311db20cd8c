//! A load client's link on any transport (docs/protocol.md, Transports):
//! a WebSocket, a stream (server-sent events down, frames POSTed up), or
//! long-polls (frames POSTed up). POSTs and polls go to every gateway in
//! turn, as behind a load balancer without sticky sessions. The receiving
//! half yields each server frame's JSON text as the gateway wrote it.

use anyhow::{Context, bail};
use futures::{
    SinkExt, StreamExt,
    stream::{SplitSink, SplitStream},
};
use serde::Deserialize;
use serde_json::value::RawValue;
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message;

use crate::{client, setup};

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transport {
    Websocket,
    Stream,
    Poll,
}

/// How long a load client's poll waits (the documented maximum).
const POLL_WAIT_MS: u64 = 25_000;

pub enum Up {
    Ws(SplitSink<client::Socket, Message>),
    Http {
        http: reqwest::Client,
        /// `POST /api/stream/{conn}` on each gateway.
        urls: Vec<String>,
        token: String,
        next: usize,
    },
}

impl Up {
    /// Sends one client frame; on HTTP, waits for its 202 (as the web
    /// client does, so frames stay in order).
    pub async fn send(&mut self, frame: String) -> anyhow::Result<()> {
        match self {
            Self::Ws(sink) => sink.send(Message::text(frame)).await.context("send"),
            Self::Http {
                http,
                urls,
                token,
                next,
            } => {
                let url = &urls[*next % urls.len()];
                *next += 1;
                let r = http
                    .post(url)
                    .bearer_auth(&*token)
                    .header("content-type", "application/json")
                    .body(frame)
                    .send()
                    .await?;
                if r.status() != reqwest::StatusCode::ACCEPTED {
                    bail!("POST {url}: {}", r.status());
                }
                Ok(())
            }
        }
    }
}

pub enum Down {
    Ws(SplitStream<client::Socket>),
    Http(mpsc::UnboundedReceiver<String>),
}

impl Down {
    /// The next server frame's text; None once the link ended.
    pub async fn next(&mut self) -> Option<String> {
        match self {
            Self::Ws(stream) => loop {
                match stream.next().await? {
                    Ok(Message::Text(t)) => return Some(t.as_str().to_owned()),
                    Ok(_) => {}
                    Err(_) => return None,
                }
            },
            Self::Http(rx) => rx.recv().await,
        }
    }
}

/// Opens `token`'s link on `gateways[home]`, past `hello` and `offline`.
pub async fn open(
    transport: Transport,
    http: &reqwest::Client,
    gateways: &[String],
    home: usize,
    token: &str,
) -> anyhow::Result<(Up, Down)> {
    let gateway = &gateways[home % gateways.len()];
    let (conn, mut down) = match transport {
        Transport::Websocket => {
            let (sink, stream) = client::connect(&setup::ws_url(gateway, token))
                .await?
                .split();
            return Ok((Up::Ws(sink), Down::Ws(stream)));
        }
        Transport::Stream => {
            let r = http
                .get(format!("{gateway}/api/stream"))
                .bearer_auth(token)
                .send()
                .await?;
            anyhow::ensure!(r.status().is_success(), "stream refused: {}", r.status());
            let (tx, rx) = mpsc::unbounded_channel();
            let (conn_tx, conn_rx) = tokio::sync::oneshot::channel();
            tokio::spawn(read_events(r, conn_tx, tx));
            (conn_rx.await.context("the connection event")?, rx)
        }
        Transport::Poll => {
            let r = http
                .post(format!("{gateway}/api/poll"))
                .bearer_auth(token)
                .send()
                .await?;
            anyhow::ensure!(r.status().is_success(), "poll refused: {}", r.status());
            let opened: serde_json::Value = r.json().await?;
            let conn = opened["conn"].as_str().context("conn")?.to_owned();
            let (tx, rx) = mpsc::unbounded_channel();
            let polls: Vec<String> = gateways
                .iter()
                .map(|g| format!("{g}/api/poll/{conn}"))
                .collect();
            tokio::spawn(poll(http.clone(), polls, token.to_owned(), tx));
            (conn, rx)
        }
    };
    for expected in ["hello", "offline"] {
        let frame = down
            .recv()
            .await
            .context("the link ended in its greeting")?;
        anyhow::ensure!(
            frame.contains(&format!("\"type\":\"{expected}\"")),
            "expected {expected}, got {frame}"
        );
    }
    let urls = gateways
        .iter()
        .map(|g| format!("{g}/api/stream/{conn}"))
        .collect();
    Ok((
        Up::Http {
            http: http.clone(),
            urls,
            token: token.to_owned(),
            next: home,
        },
        Down::Http(down),
    ))
}

/// Splits an event stream into events; the `connection` event's token goes
/// to `conn`, each unnamed event's data to `frames`.
async fn read_events(
    mut r: reqwest::Response,
    conn: tokio::sync::oneshot::Sender<String>,
    frames: mpsc::UnboundedSender<String>,
) {
    let mut conn = Some(conn);
    let mut buffer = String::new();
    while let Ok(Some(chunk)) = r.chunk().await {
        buffer.push_str(&String::from_utf8_lossy(&chunk));
        while let Some(end) = buffer.find("\n\n") {
            let event: String = buffer.drain(..end + 2).collect();
            if let Some(data) = event.strip_prefix("data: ") {
                if frames.send(data.trim_end().to_owned()).is_err() {
                    return;
                }
            } else if event.starts_with("event: connection")
                && let Some(at) = event.find("\"conn\":\"")
                && let Some(tx) = conn.take()
            {
                let rest = &event[at + 8..];
                let _ = tx.send(rest[..rest.find('"').unwrap_or(0)].to_owned());
            } else if event.starts_with("event: close") {
                return;
            }
        }
    }
}

#[derive(Deserialize)]
struct Answer<'a> {
    #[serde(borrow)]
    frames: Vec<&'a RawValue>,
    cursor: String,
    close: Option<&'a RawValue>,
}

/// Polls one at a time, each on the next gateway, until the connection
/// closes or a poll fails.
async fn poll(
    http: reqwest::Client,
    urls: Vec<String>,
    token: String,
    frames: mpsc::UnboundedSender<String>,
) {
    let mut cursor = "0-0".to_owned();
    for turn in 0.. {
        let url = &urls[turn % urls.len()];
        let Ok(r) = http
            .get(format!("{url}?cursor={cursor}&wait_ms={POLL_WAIT_MS}"))
            .bearer_auth(&token)
            .send()
            .await
        else {
            return;
        };
        let Ok(body) = r.bytes().await else { return };
        let Ok(answer) = serde_json::from_slice::<Answer>(&body) else {
            return;
        };
        for f in answer.frames {
            if frames.send(f.get().to_owned()).is_err() {
                return;
            }
        }
        if answer.close.is_some() {
            return;
        }
        cursor = answer.cursor;
    }
}
