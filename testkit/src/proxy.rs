//! A TCP proxy on 127.0.0.1 whose link can be cut, for fault injection
//! between two real services: `pass` forwards; `refuse` closes every open
//! connection and every new one; `blackhole` keeps connections open but
//! forwards nothing either way (a half-open link: the peer notices only by
//! its own timeouts).

use std::{
    net::SocketAddr,
    sync::{
        Arc,
        atomic::{AtomicU8, Ordering},
    },
};

use tokio::{
    io::AsyncReadExt,
    net::{TcpListener, TcpStream},
    sync::watch,
};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Mode {
    Pass = 0,
    Refuse = 1,
    Blackhole = 2,
}

pub struct TcpProxy {
    pub addr: SocketAddr,
    mode: Arc<AtomicU8>,
    /// Bumped on every mode change: open connections re-check their mode.
    changed: watch::Sender<u64>,
}

impl TcpProxy {
    /// Starts forwarding 127.0.0.1:<port> to `target`.
    pub async fn start(target: SocketAddr) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind proxy");
        let addr = listener.local_addr().expect("proxy address");
        let mode = Arc::new(AtomicU8::new(Mode::Pass as u8));
        let (changed, watcher) = watch::channel(0);
        let accept_mode = mode.clone();
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let mode = accept_mode.clone();
                let watcher = watcher.clone();
                tokio::spawn(serve(client, target, mode, watcher));
            }
        });
        Self {
            addr,
            mode,
            changed,
        }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn set(&self, mode: Mode) {
        self.mode.store(mode as u8, Ordering::SeqCst);
        self.changed.send_modify(|n| *n += 1);
    }
}

fn current(mode: &AtomicU8) -> Mode {
    match mode.load(Ordering::SeqCst) {
        0 => Mode::Pass,
        1 => Mode::Refuse,
        _ => Mode::Blackhole,
    }
}

async fn serve(
    mut client: TcpStream,
    target: SocketAddr,
    mode: Arc<AtomicU8>,
    mut changed: watch::Receiver<u64>,
) {
    match current(&mode) {
        Mode::Refuse => return,
        Mode::Blackhole => return swallow(client).await,
        Mode::Pass => {}
    }
    let Ok(mut upstream) = TcpStream::connect(target).await else {
        return;
    };
    let _ = client.set_nodelay(true);
    let _ = upstream.set_nodelay(true);
    changed.mark_unchanged();
    loop {
        tokio::select! {
            _ = tokio::io::copy_bidirectional(&mut client, &mut upstream) => return,
            moved = changed.changed() => {
                if moved.is_err() {
                    return;
                }
                match current(&mode) {
                    Mode::Pass => continue,
                    Mode::Refuse => return,
                    Mode::Blackhole => {
                        drop(upstream);
                        return swallow(client).await;
                    }
                }
            }
        }
    }
}

/// Reads and drops whatever the client sends, answering nothing.
async fn swallow(mut client: TcpStream) {
    let mut buf = [0u8; 4096];
    while matches!(client.read(&mut buf).await, Ok(n) if n > 0) {}
}
