//! A TCP proxy on 127.0.0.1 whose link can be cut, for fault injection
//! between two real services: `pass` forwards; `refuse` closes every open
//! connection and every new one; `blackhole` keeps connections open but
//! forwards nothing either way (a half-open link: the peer notices only by
//! its own timeouts); `hold` keeps what arrives, in order, and forwards it
//! when the link passes again (a slow link: requests arrive late, whole).

use std::{
    net::SocketAddr,
    sync::{
        Arc,
        atomic::{AtomicU8, AtomicU64, Ordering},
    },
};

use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{TcpListener, TcpStream, tcp::OwnedWriteHalf},
    sync::watch,
};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Mode {
    Pass = 0,
    Refuse = 1,
    Blackhole = 2,
    Hold = 3,
}

pub struct TcpProxy {
    pub addr: SocketAddr,
    mode: Arc<AtomicU8>,
    /// Bumped on every mode change: open connections re-check their mode.
    changed: watch::Sender<u64>,
    /// Bytes read from clients and not yet forwarded because the link holds.
    held: Arc<AtomicU64>,
}

impl TcpProxy {
    /// Starts forwarding 127.0.0.1:<port> to `target`.
    pub async fn start(target: SocketAddr) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind proxy");
        let addr = listener.local_addr().expect("proxy address");
        let mode = Arc::new(AtomicU8::new(Mode::Pass as u8));
        let held = Arc::new(AtomicU64::new(0));
        let (changed, watcher) = watch::channel(0);
        let accept_mode = mode.clone();
        let accept_held = held.clone();
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let link = Link {
                    mode: accept_mode.clone(),
                    changed: watcher.clone(),
                    held: accept_held.clone(),
                };
                tokio::spawn(serve(client, target, link));
            }
        });
        Self {
            addr,
            mode,
            changed,
            held,
        }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn set(&self, mode: Mode) {
        self.mode.store(mode as u8, Ordering::SeqCst);
        self.changed.send_modify(|n| *n += 1);
    }

    /// Client bytes (and new connections) waiting on a held link (see
    /// [`Mode::Hold`]).
    pub fn held_bytes(&self) -> u64 {
        self.held.load(Ordering::SeqCst)
    }
}

/// What one proxied connection shares with the proxy.
#[derive(Clone)]
struct Link {
    mode: Arc<AtomicU8>,
    changed: watch::Receiver<u64>,
    held: Arc<AtomicU64>,
}

impl Link {
    fn current(&self) -> Mode {
        match self.mode.load(Ordering::SeqCst) {
            0 => Mode::Pass,
            1 => Mode::Refuse,
            2 => Mode::Blackhole,
            _ => Mode::Hold,
        }
    }

    /// Waits while the link holds; the mode it settles on.
    async fn settled(&mut self) -> Mode {
        loop {
            let mode = self.current();
            if mode != Mode::Hold {
                return mode;
            }
            if self.changed.changed().await.is_err() {
                return Mode::Refuse;
            }
        }
    }
}

async fn serve(client: TcpStream, target: SocketAddr, mut link: Link) {
    // A connection waiting on a held link counts as held traffic.
    link.held.fetch_add(1, Ordering::SeqCst);
    let mode = link.settled().await;
    link.held.fetch_sub(1, Ordering::SeqCst);
    match mode {
        Mode::Refuse => return,
        Mode::Blackhole => return swallow(client).await,
        _ => {}
    }
    let Ok(upstream) = TcpStream::connect(target).await else {
        return;
    };
    let _ = client.set_nodelay(true);
    let _ = upstream.set_nodelay(true);
    let (client_read, client_write) = client.into_split();
    let (upstream_read, upstream_write) = upstream.into_split();
    // One pump per direction; the link's mode decides before every write.
    // Either ends the connection when it ends (a close, a refusal).
    tokio::select! {
        () = pump(client_read, upstream_write, link.clone(), true) => {}
        () = pump(upstream_read, client_write, link, false) => {}
    }
}

/// Copies `from` to `to` while the link passes, holding writes while it
/// holds. On a black hole it forwards nothing more, keeping the connection
/// open: the client's bytes are read and dropped, the server's never read.
async fn pump(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: OwnedWriteHalf,
    mut link: Link,
    from_client: bool,
) {
    let mut buf = vec![0_u8; 16 * 1024];
    loop {
        let n = tokio::select! {
            read = from.read(&mut buf) => match read {
                Ok(0) | Err(_) => return,
                Ok(n) => n,
            },
            moved = link.changed.changed() => {
                if moved.is_err() {
                    return;
                }
                match link.current() {
                    Mode::Refuse => return,
                    Mode::Blackhole => return black_hole(from, to, from_client).await,
                    _ => continue,
                }
            }
        };
        if from_client {
            link.held.fetch_add(n as u64, Ordering::SeqCst);
        }
        let mode = link.settled().await;
        if from_client {
            link.held.fetch_sub(n as u64, Ordering::SeqCst);
        }
        match mode {
            Mode::Refuse => return,
            Mode::Blackhole => return black_hole(from, to, from_client).await,
            _ => {}
        }
        if to.write_all(&buf[..n]).await.is_err() {
            return;
        }
    }
}

/// A direction of a black-holed connection, kept open until the client
/// leaves: its own bytes are dropped as they come.
async fn black_hole(
    mut from: tokio::net::tcp::OwnedReadHalf,
    _to: OwnedWriteHalf,
    from_client: bool,
) {
    if !from_client {
        return std::future::pending().await;
    }
    let mut buf = [0u8; 4096];
    while matches!(from.read(&mut buf).await, Ok(n) if n > 0) {}
}

/// Reads and drops whatever the client sends, answering nothing.
async fn swallow(mut client: TcpStream) {
    let mut buf = [0u8; 4096];
    while matches!(client.read(&mut buf).await, Ok(n) if n > 0) {}
}
