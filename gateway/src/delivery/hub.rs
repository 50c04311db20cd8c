//! The gateway's local registry of sockets: connection id → outbox and
//! session, and username → connection ids. Deliveries from pub/sub are pushed to outboxes,
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

use chat_model::message::Name;

use chat_redis::presence::Roster;

use super::outbox::{Close, Outbox};

#[derive(Clone)]
struct ConnHandle {
    user: Arc<str>,
    outbox: Arc<Outbox>,
    /// The session of the socket's token (`session_key`).
    session: u128,
}

/// A session id (32 hex digits) as a number: 16 bytes per socket, not a
/// string. A malformed id (never verified) is 0.
pub fn session_key(session: &str) -> u128 {
    u128::from_str_radix(session, 16).unwrap_or(0)
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
            next_id: AtomicU64::new((chat_model::time::now_ms().max(0) as u64) << 20),
        }
    }
}

/// A registered connection's side of the hub.
pub struct Registration {
    pub id: u64,
}

impl Hub {
    pub fn register(&self, user: &str, session: u128, outbox: Arc<Outbox>) -> Registration {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed) + 1;
        let mut inner = self.inner.write().unwrap_or_else(|e| e.into_inner());
        let user: Arc<str> = inner
            .users
            .get_key_value(user)
            .map_or_else(|| Arc::from(user), |(k, _)| k.clone());
        let ids = inner.users.entry(user.clone()).or_default();
        ids.push(id);
        inner.conns.insert(
            id,
            ConnHandle {
                user,
                outbox,
                session,
            },
        );
        Registration { id }
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

    /// The socket `id` now runs on a token of `session` (an `auth` frame).
    pub fn set_session(&self, id: u64, session: u128) {
        let mut inner = self.inner.write().unwrap_or_else(|e| e.into_inner());
        if let Some(handle) = inner.conns.get_mut(&id) {
            handle.session = session;
        }
    }

    /// The sessions of the sockets here, each once.
    pub fn sessions(&self) -> Vec<u128> {
        let inner = self.inner.read().unwrap_or_else(|e| e.into_inner());
        let mut sessions: Vec<u128> = inner.conns.values().map(|h| h.session).collect();
        sessions.sort_unstable();
        sessions.dedup();
        sessions
    }

    /// Closes every socket of `sessions` with `close`; returns how many.
    pub fn close_sessions(&self, sessions: &[u128], close: Close) -> usize {
        let inner = self.inner.read().unwrap_or_else(|e| e.into_inner());
        let mut closed = 0;
        for handle in inner.conns.values() {
            if sessions.contains(&handle.session) {
                handle.outbox.close(close);
                closed += 1;
            }
        }
        closed
    }

    /// Queues `frame` for every socket of `users` here; returns how many.
    pub fn tell_users(&self, users: &[String], frame: &str) -> usize {
        let frame = Utf8Bytes::from(frame.to_owned());
        let inner = self.inner.read().unwrap_or_else(|e| e.into_inner());
        let mut told = 0;
        for user in users {
            for id in inner.users.get(user.as_str()).into_iter().flatten() {
                if let Some(handle) = inner.conns.get(id) {
                    handle.outbox.push(frame.clone());
                    told += 1;
                }
            }
        }
        told
    }

    /// Tells every socket here that it may have missed deliveries: each gets
    /// a `resync` frame, and its client runs its recovery.
    pub fn resync_all(&self, reason: &str) {
        let frame = Utf8Bytes::from(chat_model::protocol::ServerFrame::Resync { reason }.to_json());
        let inner = self.inner.read().unwrap_or_else(|e| e.into_inner());
        for handle in inner.conns.values() {
            handle.outbox.push(frame.clone());
        }
        if !inner.conns.is_empty() {
            metrics::counter!("gateway_resync_frames_total").increment(inner.conns.len() as u64);
        }
    }

    /// Queues `frames` in order: those with a `conn` for that connection
    /// only, the others for every socket of `users` but their `skip_conn`.
    /// Each socket gets its frames under one lock and one wake-up, in the
    /// order given; a marked frame of `conversation` (its key, `seen.rs`)
    /// only once per socket. Returns how many fan-out frames were offered.
    pub fn deliver(
        &self,
        users: &[Name<'_>],
        conversation: Option<u64>,
        frames: &[Outgoing],
    ) -> usize {
        let inner = self.inner.read().unwrap_or_else(|e| e.into_inner());
        // Connections that frames are addressed to; those among the users'
        // sockets get them in line below, the rest at the end.
        let mut direct: Vec<u64> = frames.iter().filter_map(|f| f.conn).collect();
        direct.sort_unstable();
        direct.dedup();
        let mut fanned = 0;
        for user in users {
            let Some(ids) = inner.users.get(&**user) else {
                continue;
            };
            for id in ids {
                let Some(handle) = inner.conns.get(id) else {
                    continue;
                };
                if let Ok(i) = direct.binary_search(id) {
                    direct.remove(i);
                }
                let mine = frames.iter().filter(|f| match f.conn {
                    Some(conn) => conn == *id,
                    None if f.skip_conn == Some(*id) => false,
                    None => {
                        fanned += 1;
                        true
                    }
                });
                handle
                    .outbox
                    .push_marked(conversation, mine.map(|f| (f.mark, f.frame.clone())));
            }
        }
        // Acks and errors for connections outside `users` (an error has no
        // conversation; presence may not list a new socket yet).
        for f in frames {
            if let Some(conn) = f.conn
                && direct.binary_search(&conn).is_ok()
                && let Some(handle) = inner.conns.get(&conn)
            {
                handle.outbox.push(f.frame.clone());
            }
        }
        fanned
    }
}

/// Presence copies the hub.
impl Roster for Hub {
    fn connections(&self) -> usize {
        Hub::connections(self)
    }

    /// How many sockets `user` has here.
    fn user_connections(&self, user: &str) -> usize {
        self.inner
            .read()
            .map(|i| i.users.get(user).map_or(0, Vec::len))
            .unwrap_or(0)
    }

    /// Usernames with at least one socket here, with their socket counts.
    fn user_counts(&self) -> Vec<(String, usize)> {
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
}

/// A frame for [`Hub::deliver`].
pub struct Outgoing {
    pub conn: Option<u64>,
    pub skip_conn: Option<u64>,
    pub frame: Utf8Bytes,
    /// What it is in its conversation, for handing it once per socket.
    pub mark: Option<super::seen::Mark>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::delivery::outbox::Next;

    fn frame(s: &'static str) -> Utf8Bytes {
        Utf8Bytes::from_static(s)
    }

    fn out(conn: Option<u64>, skip_conn: Option<u64>, s: &'static str) -> Outgoing {
        Outgoing {
            conn,
            skip_conn,
            frame: frame(s),
            mark: None,
        }
    }

    fn drain(o: &Outbox) -> Vec<String> {
        std::iter::from_fn(|| match o.try_next() {
            Some(Next::Frame(f)) => Some(f.as_str().to_owned()),
            _ => None,
        })
        .collect()
    }

    #[tokio::test]
    async fn each_socket_gets_its_frames_in_order() {
        let hub = Hub::default();
        let (o1, o2, o3) = (
            Arc::new(Outbox::new(8)),
            Arc::new(Outbox::new(8)),
            Arc::new(Outbox::new(8)),
        );
        let a = hub.register("alice", 1, o1.clone());
        let b = hub.register("alice", 2, o2.clone());
        let c = hub.register("carol", 3, o3.clone());
        // a sent m2: its other device gets m2, a gets its ack in line;
        // carol (not in `users`) gets only the frame addressed to her socket.
        let frames = [
            out(None, None, "m1"),
            out(None, Some(a.id), "m2"),
            out(Some(a.id), None, "sent2"),
            out(None, None, "m3"),
            out(Some(c.id), None, "error"),
        ];
        assert_eq!(hub.deliver(&["alice".into()], None, &frames), 5);
        assert_eq!(drain(&o1), ["m1", "sent2", "m3"]);
        assert_eq!(drain(&o2), ["m1", "m2", "m3"]);
        assert_eq!(drain(&o3), ["error"]);
        assert!(!hub.unregister(a.id));
        assert!(hub.unregister(b.id));
        assert!(hub.unregister(c.id));
        assert_eq!(hub.connections(), 0);
    }

    #[tokio::test]
    async fn closing_a_session_closes_its_sockets_only() {
        let hub = Hub::default();
        let (o1, o2, o3) = (
            Arc::new(Outbox::new(8)),
            Arc::new(Outbox::new(8)),
            Arc::new(Outbox::new(8)),
        );
        let a = hub.register("alice", 7, o1.clone());
        hub.register("alice", 7, o2.clone());
        hub.register("alice", 8, o3.clone());
        assert_eq!(hub.sessions(), [7, 8]);
        hub.set_session(a.id, 9);
        assert_eq!(hub.close_sessions(&[7], (4001, "x")), 1);
        assert!(o1.try_next().is_none(), "moved to session 9");
        assert!(matches!(
            o2.try_next(),
            Some(super::super::outbox::Next::Close((4001, _)))
        ));
        assert!(o3.try_next().is_none());
        assert_eq!(session_key("00000000000000000000000000000010"), 16);
        assert_eq!(session_key("nonsense"), 0);
    }

    #[tokio::test]
    async fn ids_do_not_repeat_across_hubs() {
        let first = Hub::default().register("a", 1, Arc::new(Outbox::new(1))).id;
        std::thread::sleep(std::time::Duration::from_millis(2));
        let second = Hub::default().register("a", 1, Arc::new(Outbox::new(1))).id;
        assert_ne!(first, second);
    }
}
