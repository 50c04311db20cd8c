//! The gateway's local registry of sockets: connection id → outbound queue, and
//! username → connection ids. Deliveries from pub/sub are handed to queues
//! with `try_send`, so the pub/sub reader never waits on a slow socket; a full
//! queue marks the socket as a slow consumer, to be closed with 4008.

use std::{
    collections::HashMap,
    sync::{
        Arc, RwLock,
        atomic::{AtomicU64, Ordering},
    },
};

use axum::extract::ws::Utf8Bytes;
use tokio::sync::{Notify, mpsc};

/// What a connection's writer is told to do.
#[derive(Debug, Clone)]
pub enum Outbound {
    Frame(Utf8Bytes),
    /// Close the socket with this code and reason.
    Close(u16, &'static str),
}

#[derive(Clone)]
struct ConnHandle {
    user: Arc<str>,
    tx: mpsc::Sender<Outbound>,
    slow: Arc<Notify>,
}

#[derive(Default)]
struct Inner {
    conns: HashMap<u64, ConnHandle>,
    users: HashMap<Arc<str>, Vec<u64>>,
}

pub struct Hub {
    inner: RwLock<Inner>,
    next_id: AtomicU64,
}

impl Default for Hub {
    /// Connection ids start from the clock, so a gateway restarted under the
    /// same GATEWAY_ID never reuses an id a late `sent` or error may still
    /// carry: it would reach another user's socket.
    fn default() -> Self {
        Self {
            inner: RwLock::default(),
            next_id: AtomicU64::new((common::time::now_ms().max(0) as u64) << 20),
        }
    }
}

/// A registered connection's side of the hub.
pub struct Registration {
    pub id: u64,
    /// True when this is the user's first socket on this gateway.
    pub first: bool,
}

impl Hub {
    pub fn register(
        &self,
        user: &str,
        tx: mpsc::Sender<Outbound>,
        slow: Arc<Notify>,
    ) -> Registration {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed) + 1;
        let mut inner = self.inner.write().unwrap_or_else(|e| e.into_inner());
        let user: Arc<str> = inner
            .users
            .get_key_value(user)
            .map_or_else(|| Arc::from(user), |(k, _)| k.clone());
        let ids = inner.users.entry(user.clone()).or_default();
        ids.push(id);
        let first = ids.len() == 1;
        inner.conns.insert(id, ConnHandle { user, tx, slow });
        Registration { id, first }
    }

    /// Removes a connection; true when it was the user's last on this gateway.
    pub fn unregister(&self, id: u64) -> bool {
        let mut inner = self.inner.write().unwrap_or_else(|e| e.into_inner());
        let Some(handle) = inner.conns.remove(&id) else {
            return false;
        };
        let mut last = false;
        if let Some(ids) = inner.users.get_mut(&handle.user) {
            ids.retain(|c| *c != id);
            if ids.is_empty() {
                inner.users.remove(&handle.user);
                last = true;
            }
        }
        last
    }

    pub fn connections(&self) -> usize {
        self.inner.read().map(|i| i.conns.len()).unwrap_or(0)
    }

    /// Usernames with at least one socket here, with their socket counts.
    pub fn user_counts(&self) -> Vec<(String, usize)> {
        self.inner
            .read()
            .map(|i| {
                i.users
                    .iter()
                    .map(|(u, ids)| (u.to_string(), ids.len()))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Queues a frame for one connection.
    pub fn send_to_conn(&self, id: u64, frame: &Utf8Bytes) {
        let inner = self.inner.read().unwrap_or_else(|e| e.into_inner());
        if let Some(handle) = inner.conns.get(&id) {
            offer(handle, frame);
        }
    }

    /// Queues a frame for every socket of `users`, except `skip`. Returns how
    /// many sockets it was offered to.
    pub fn send_to_users(&self, users: &[String], skip: Option<u64>, frame: &Utf8Bytes) -> usize {
        let inner = self.inner.read().unwrap_or_else(|e| e.into_inner());
        let mut n = 0;
        for user in users {
            let Some(ids) = inner.users.get(user.as_str()) else {
                continue;
            };
            for id in ids {
                if Some(*id) == skip {
                    continue;
                }
                if let Some(handle) = inner.conns.get(id) {
                    offer(handle, frame);
                    n += 1;
                }
            }
        }
        n
    }
}

fn offer(handle: &ConnHandle, frame: &Utf8Bytes) {
    match handle.tx.try_send(Outbound::Frame(frame.clone())) {
        Ok(()) => {}
        Err(mpsc::error::TrySendError::Full(_)) => {
            metrics::counter!("gateway_slow_consumers_total").increment(1);
            handle.slow.notify_one();
        }
        // The socket is closing; its frames are in history.
        Err(mpsc::error::TrySendError::Closed(_)) => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(s: &'static str) -> Utf8Bytes {
        Utf8Bytes::from_static(s)
    }

    #[tokio::test]
    async fn users_get_frames_on_every_socket_but_the_skipped_one() {
        let hub = Hub::default();
        let (tx1, mut rx1) = mpsc::channel(4);
        let (tx2, mut rx2) = mpsc::channel(4);
        let a = hub.register("alice", tx1, Arc::default());
        let b = hub.register("alice", tx2, Arc::default());
        assert!(a.first && !b.first);
        assert_eq!(
            hub.send_to_users(&["alice".into()], Some(a.id), &frame("x")),
            1
        );
        assert!(rx1.try_recv().is_err());
        assert!(matches!(rx2.try_recv(), Ok(Outbound::Frame(f)) if f.as_str() == "x"));
        assert!(!hub.unregister(a.id));
        assert!(hub.unregister(b.id));
        assert_eq!(hub.connections(), 0);
    }

    #[tokio::test]
    async fn a_full_queue_flags_a_slow_consumer() {
        let hub = Hub::default();
        let (tx, _rx) = mpsc::channel(1);
        let slow = Arc::new(Notify::new());
        let r = hub.register("bob", tx, slow.clone());
        hub.send_to_conn(r.id, &frame("1"));
        hub.send_to_conn(r.id, &frame("2"));
        tokio::time::timeout(std::time::Duration::from_secs(1), slow.notified())
            .await
            .expect("slow consumer flagged");
    }
}
