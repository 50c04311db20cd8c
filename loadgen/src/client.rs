//! WebSocket connections for load: connect, skip the greeting, send frames.

use anyhow::{Context, bail};
use futures::StreamExt;
use tokio::net::TcpStream;
use tokio_tungstenite::{
    MaybeTlsStream, WebSocketStream, connect_async_with_config, tungstenite::Message,
};

pub type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// Connects and reads `hello` and `offline`.
pub async fn connect(url: &str) -> anyhow::Result<Socket> {
    let (mut ws, _) = connect_async_with_config(url, None, true)
        .await
        .context("connect")?;
    for expected in ["hello", "offline"] {
        match ws.next().await {
            Some(Ok(Message::Text(t)))
                if t.as_str().contains(&format!("\"type\":\"{expected}\"")) => {}
            other => bail!("expected {expected}, got {other:?}"),
        }
    }
    Ok(ws)
}
