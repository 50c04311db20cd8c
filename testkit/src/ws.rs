//! A small WebSocket client for the chat protocol.

use std::time::Duration;

use futures::{SinkExt, StreamExt};
use serde_json::Value;
use tokio::net::TcpStream;
use tokio_tungstenite::{
    MaybeTlsStream, WebSocketStream, connect_async,
    tungstenite::{self, Message, client::IntoClientRequest, protocol::CloseFrame},
};

pub struct WsClient {
    stream: WebSocketStream<MaybeTlsStream<TcpStream>>,
}

/// How a connection attempt or a read ended.
#[derive(Debug)]
pub enum WsEnd {
    /// The HTTP status of a refused upgrade.
    Refused(u16),
    Closed(Option<CloseFrame>),
    Error(String),
}

impl WsClient {
    /// Connects to `ws://127.0.0.1:{port}/ws` with the token as a bearer header.
    pub async fn connect(port: u16, token: &str) -> Result<Self, WsEnd> {
        let mut request = format!("ws://127.0.0.1:{port}/ws")
            .into_client_request()
            .expect("request");
        request.headers_mut().insert(
            "authorization",
            format!("Bearer {token}").parse().expect("header"),
        );
        Self::open(request).await
    }

    /// Connects with the token in the query string, as browsers do.
    pub async fn connect_query(port: u16, token: &str) -> Result<Self, WsEnd> {
        let request = format!("ws://127.0.0.1:{port}/ws?token={token}")
            .into_client_request()
            .expect("request");
        Self::open(request).await
    }

    pub async fn open(request: tungstenite::handshake::client::Request) -> Result<Self, WsEnd> {
        match connect_async(request).await {
            Ok((stream, _)) => Ok(Self { stream }),
            Err(tungstenite::Error::Http(response)) => {
                Err(WsEnd::Refused(response.status().as_u16()))
            }
            Err(e) => Err(WsEnd::Error(e.to_string())),
        }
    }

    /// Connects over a socket with a tiny receive buffer, so a client that
    /// stops reading backs the server up quickly (slow-consumer tests).
    pub async fn connect_small_buffer(port: u16, token: &str) -> Self {
        let socket = tokio::net::TcpSocket::new_v4().expect("socket");
        socket.set_recv_buffer_size(4096).expect("SO_RCVBUF");
        let stream = socket
            .connect(([127, 0, 0, 1], port).into())
            .await
            .expect("connect");
        let request = format!("ws://127.0.0.1:{port}/ws?token={token}")
            .into_client_request()
            .expect("request");
        let (stream, _) = tokio_tungstenite::client_async(request, MaybeTlsStream::Plain(stream))
            .await
            .expect("upgrade");
        Self { stream }
    }

    /// Connects and reads `hello` and `offline`; returns the offline frame too.
    pub async fn connect_ready(port: u16, token: &str) -> (Self, Value) {
        let mut c = Self::connect(port, token)
            .await
            .unwrap_or_else(|e| panic!("connect to gateway {port}: {e:?}"));
        let hello = c.recv().await;
        assert_eq!(hello["type"], "hello", "first frame is hello: {hello}");
        let offline = c.recv().await;
        assert_eq!(
            offline["type"], "offline",
            "second frame is offline: {offline}"
        );
        (c, offline)
    }

    pub async fn send_json(&mut self, v: &Value) {
        self.send_text(&v.to_string()).await;
    }

    pub async fn send_text(&mut self, text: &str) {
        self.stream
            .send(Message::text(text.to_owned()))
            .await
            .expect("ws send");
    }

    /// Sends a text frame, reporting a broken socket instead of panicking.
    pub async fn try_send_text(&mut self, text: &str) -> Result<(), String> {
        self.send_raw(Message::text(text.to_owned())).await
    }

    pub async fn send_raw(&mut self, message: Message) -> Result<(), String> {
        self.stream.send(message).await.map_err(|e| e.to_string())
    }

    /// The next text frame as JSON; panics after 10 s or if the socket ends.
    pub async fn recv(&mut self) -> Value {
        match self.next_frame(Duration::from_secs(10)).await {
            Ok(v) => v,
            Err(end) => panic!("expected a frame, got {end:?}"),
        }
    }

    /// The next text frame, or how the socket ended; skips pings and pongs.
    pub async fn next_frame(&mut self, deadline: Duration) -> Result<Value, WsEnd> {
        let end = tokio::time::Instant::now() + deadline;
        loop {
            let next = tokio::time::timeout_at(end, self.stream.next())
                .await
                .map_err(|_| WsEnd::Error("timed out".into()))?;
            match next {
                Some(Ok(Message::Text(t))) => {
                    return Ok(serde_json::from_str(t.as_str()).expect("server frames are JSON"));
                }
                Some(Ok(Message::Close(frame))) => return Err(WsEnd::Closed(frame)),
                Some(Ok(_)) => continue,
                Some(Err(e)) => return Err(WsEnd::Error(e.to_string())),
                None => return Err(WsEnd::Closed(None)),
            }
        }
    }

    /// Reads frames until a `message` that is a chat message (not a
    /// membership event: no `member`) arrives; returns it.
    pub async fn recv_chat(&mut self) -> Value {
        loop {
            let v = self.recv_type("message").await;
            if v.get("member").is_none() {
                return v;
            }
        }
    }

    /// Reads frames until one of type `kind` arrives; returns it.
    pub async fn recv_type(&mut self, kind: &str) -> Value {
        loop {
            let v = self.recv().await;
            if v["type"] == kind {
                return v;
            }
        }
    }

    /// Reads until the socket closes; returns the close code.
    pub async fn closed_code(&mut self, deadline: Duration) -> Option<u16> {
        loop {
            match self.next_frame(deadline).await {
                Ok(_) => continue,
                Err(WsEnd::Closed(frame)) => return frame.map(|f| u16::from(f.code)),
                Err(WsEnd::Error(e)) => panic!("socket failed before closing: {e}"),
                Err(WsEnd::Refused(_)) => unreachable!(),
            }
        }
    }

    pub fn inner(&mut self) -> &mut WebSocketStream<MaybeTlsStream<TcpStream>> {
        &mut self.stream
    }
}
