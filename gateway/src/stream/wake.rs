//! Waking a waiting long-poll as soon as its frames are written, wherever
//! the poll waits. A poll with nothing to answer registers here and leaves
//! its gateway's name in the connection's waiter key
//! (`{poll:<gw>.<id>}:w`, beside its queue, expiring with the wait); the
//! holder's writer reads that key in the pipeline that appends the frames
//! and wakes the poll: here directly, on another gateway through that
//! gateway's inbound channel (a `Forward` with `wake`). A wake-up that is
//! lost costs latency, not frames: the poll still looks once a second.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
};

use tokio::sync::Notify;

/// (holder gateway, connection id) → its waiting polls' signal and count.
type Table = HashMap<(String, u64), (Arc<Notify>, usize)>;

#[derive(Clone, Default)]
pub struct Waiters(Arc<Mutex<Table>>);

/// A poll waiting for connection (holder, id); unregisters on drop.
pub struct Waiting {
    waiters: Waiters,
    key: (String, u64),
    pub notify: Arc<Notify>,
}

impl Waiters {
    pub fn wait(&self, holder: &str, id: u64) -> Waiting {
        let key = (holder.to_owned(), id);
        let mut table = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let entry = table
            .entry(key.clone())
            .or_insert_with(|| (Arc::new(Notify::new()), 0));
        entry.1 += 1;
        Waiting {
            waiters: self.clone(),
            key,
            notify: entry.0.clone(),
        }
    }

    /// Wakes every poll waiting here for connection (holder, id).
    pub fn wake(&self, holder: &str, id: u64) {
        let table = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((notify, _)) = table.get(&(holder.to_owned(), id)) {
            notify.notify_waiters();
            metrics::counter!("gateway_poll_wakeups_total").increment(1);
        }
    }
}

impl Drop for Waiting {
    fn drop(&mut self) {
        let mut table = self.waiters.0.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(entry) = table.get_mut(&self.key) {
            entry.1 -= 1;
            if entry.1 == 0 {
                table.remove(&self.key);
            }
        }
    }
}

/// The key where a waiting poll leaves its gateway's name.
pub fn waiter_key(queue: &str) -> String {
    format!("{queue}:w")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_wake_reaches_the_waiting_polls_and_the_table_empties() {
        let waiters = Waiters::default();
        let a = waiters.wait("gw-1", 7);
        let b = waiters.wait("gw-1", 7);
        let (sa, sb) = (a.notify.clone(), b.notify.clone());
        {
            let (na, nb) = (sa.notified(), sb.notified());
            tokio::pin!(na, nb);
            na.as_mut().enable();
            nb.as_mut().enable();
            waiters.wake("gw-1", 8);
            waiters.wake("gw-1", 7);
            tokio::time::timeout(std::time::Duration::from_secs(1), async {
                na.await;
                nb.await;
            })
            .await
            .expect("both woken");
        }
        drop((a, b));
        assert!(waiters.0.lock().unwrap().is_empty());
    }
}
