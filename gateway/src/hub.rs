//! The gateway's local registry of sockets: connection id → outbox, and
//! username → connection ids. Deliveries from pub/sub are pushed to outboxes,
//! which never wait, so the pub/sub reader never stalls on a slow socket; a
//! full outbox marks its socket as a slow consumer, to be closed with 4008.

use std::{
    collections::HashMap,
    sync::{
        Arc, RwLock,
        atomic::{AtomicU64, Ordering},
    },
};

use axum::extract::ws::Utf8Bytes;

use crate::outbox::Outbox;

#[derive(Clone)]
struct ConnHandle {
    user: Arc<str>,
    outbox: Arc<Outbox>,
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
    pub fn register(&self, user: &str, outbox: Arc<Outbox>) -> Registration {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed) + 1;
        let mut inner = self.inner.write().unwrap_or_else(|e| e.into_inner());
        let user: Arc<str> = inner
            .users
            .get_key_value(user)
            .map_or_else(|| Arc::from(user), |(k, _)| k.clone());
        let ids = inner.users.entry(user.clone()).or_default();
        ids.push(id);
        let first = ids.len() == 1;
        inner.conns.insert(id, ConnHandle { user, outbox });
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
            handle.outbox.push(frame.clone());
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
                    handle.outbox.push(frame.clone());
                    n += 1;
                }
            }
        }
        n
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::outbox::Next;

    fn frame(s: &'static str) -> Utf8Bytes {
        Utf8Bytes::from_static(s)
    }

    #[tokio::test]
    async fn users_get_frames_on_every_socket_but_the_skipped_one() {
        let hub = Hub::default();
        let (o1, o2) = (Arc::new(Outbox::new(4)), Arc::new(Outbox::new(4)));
        let a = hub.register("alice", o1.clone());
        let b = hub.register("alice", o2.clone());
        assert!(a.first && !b.first);
        assert_eq!(
            hub.send_to_users(&["alice".into()], Some(a.id), &frame("x")),
            1
        );
        assert!(o1.try_next().is_none());
        assert!(matches!(o2.try_next(), Some(Next::Frame(f)) if f.as_str() == "x"));
        hub.send_to_conn(a.id, &frame("y"));
        assert!(matches!(o1.try_next(), Some(Next::Frame(f)) if f.as_str() == "y"));
        assert!(!hub.unregister(a.id));
        assert!(hub.unregister(b.id));
        assert_eq!(hub.connections(), 0);
    }

    #[tokio::test]
    async fn ids_do_not_repeat_across_hubs() {
        let first = Hub::default().register("a", Arc::new(Outbox::new(1))).id;
        std::thread::sleep(std::time::Duration::from_millis(2));
        let second = Hub::default().register("a", Arc::new(Outbox::new(1))).id;
        assert_ne!(first, second);
    }
}
