//! WebSocket connections for load: connect, skip the greeting, send frames.

use std::net::{IpAddr, SocketAddr};

use anyhow::{Context, bail};
use futures::StreamExt;
use tokio::net::{TcpSocket, TcpStream};
use tokio_tungstenite::{
    MaybeTlsStream, WebSocketStream, client_async_with_config, connect_async_with_config,
    tungstenite::Message,
};

pub type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// Connects and reads `hello` and `offline`.
pub async fn connect(url: &str) -> anyhow::Result<Socket> {
    let (ws, _) = connect_async_with_config(url, None, true)
        .await
        .context("connect")?;
    greeted(ws).await
}

/// Connects from local address `source` (any, when None): each source
/// address has its own ephemeral ports towards the gateway.
pub async fn connect_from(url: &str, source: Option<IpAddr>) -> anyhow::Result<Socket> {
    let Some(source) = source else {
        return connect(url).await;
    };
    let authority = url
        .split("://")
        .nth(1)
        .and_then(|rest| rest.split('/').next())
        .context("a ws:// URL")?;
    let addr: SocketAddr = authority
        .parse()
        .context("binding a source address needs the gateway as ip:port")?;
    let socket = if addr.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    socket.bind(SocketAddr::new(source, 0)).context("bind")?;
    let stream = socket.connect(addr).await.context("connect")?;
    let (ws, _) = client_async_with_config(url, MaybeTlsStream::Plain(stream), None)
        .await
        .context("handshake")?;
    greeted(ws).await
}

async fn greeted(mut ws: Socket) -> anyhow::Result<Socket> {
    for expected in ["hello", "offline"] {
        match ws.next().await {
            Some(Ok(Message::Text(t)))
                if t.as_str().contains(&format!("\"type\":\"{expected}\"")) => {}
            other => bail!("expected {expected}, got {other:?}"),
        }
    }
    Ok(ws)
}
