//! One client link over any transport: a WebSocket, a stream, or
//! long-polls, with the same calls, so a test client is written once and
//! run on each (docs/protocol.md, Transports).

use std::time::Duration;

use serde_json::Value;

use crate::{StreamLink, WsClient, ws::WsEnd};

/// Which transport a client uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transport {
    WebSocket,
    /// A stream; POSTs go to every gateway of the list in turn.
    Stream,
    /// Long-polling; polls and POSTs go to every gateway in turn.
    LongPoll,
}

pub enum Link {
    Ws(Box<WsClient>),
    Http(StreamLink),
}

impl Link {
    /// Opens a link to gateway `port`, past `hello`; the `offline` frame.
    /// `posts`: the gateways an HTTP link's POSTs and polls go to, in turn
    /// (`port` alone if empty).
    pub async fn open(
        transport: Transport,
        port: u16,
        token: &str,
        posts: &[u16],
    ) -> Result<(Self, Value), String> {
        let posts = if posts.is_empty() {
            vec![port]
        } else {
            posts.to_vec()
        };
        match transport {
            Transport::WebSocket => {
                let mut ws = WsClient::connect(port, token)
                    .await
                    .map_err(|e| format!("{e:?}"))?;
                let hello = ws
                    .next_frame(Duration::from_secs(5))
                    .await
                    .map_err(|e| format!("{e:?}"))?;
                let offline = ws
                    .next_frame(Duration::from_secs(5))
                    .await
                    .map_err(|e| format!("{e:?}"))?;
                if hello["type"] != "hello" || offline["type"] != "offline" {
                    return Err(format!("not a handshake: {hello} {offline}"));
                }
                Ok((Self::Ws(Box::new(ws)), offline))
            }
            Transport::Stream => StreamLink::connect(port, token, posts)
                .await
                .map(|(s, offline)| (Self::Http(s), offline)),
            Transport::LongPoll => StreamLink::connect_polling(port, token, posts)
                .await
                .map(|(s, offline)| (Self::Http(s), offline)),
        }
    }

    pub async fn send_text(&mut self, text: &str) -> Result<(), String> {
        match self {
            Self::Ws(ws) => ws.try_send_text(text).await,
            Self::Http(s) => s.send_text(text).await,
        }
    }

    /// The next server frame within `deadline`, or how the link ended;
    /// `WsEnd::Error("timed out")` when none came.
    pub async fn next_frame(&mut self, deadline: Duration) -> Result<Value, WsEnd> {
        match self {
            Self::Ws(ws) => ws.next_frame(deadline).await,
            Self::Http(s) => s.next_frame(deadline).await,
        }
    }
}
