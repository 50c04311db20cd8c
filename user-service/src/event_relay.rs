//! The relay: carries membership events from the outbox (`outbox.rs`) to
//! their rooms' ingress partitions, where chat-service sequences them like
//! any message. Woken by every change (`MembershipEvents::changed`), and
//! every 5 s (every second after a failed pass), so a row written while
//! Redis was down goes out within a second of its return.
//!
//! Each pass, in one PostgreSQL transaction: take the relay lock (one
//! replica relays at a time, so a room's events reach its partition in
//! outbox order), read the oldest rows, bump their rooms' membership
//! versions, XADD the events, delete the rows, commit. Dying anywhere in
//! between leaves the rows to the next pass; a row written to the stream
//! twice is one event, since chat-service deduplicates its client_id
//! (`evt-<row id>`).

use std::{sync::Arc, time::Duration};

use chat_model::{
    ids::Target,
    message::{EntryKind, FORMAT_VERSION, INGRESS_FIELD, IngressEntry, MemberAction, MemberEvent},
};
use chat_redis::{connection::Redis, keys::Keys};
use sqlx::{PgPool, Row};
use tokio::sync::Notify;

use crate::error::UserError;

/// Rows per pass.
const BATCH: i64 = 200;
/// The relay's advisory lock key ("evtrelay").
const LOCK: i64 = 0x6576_7472_656c_6179;
/// How often the outbox is looked at without a wake-up: every change wakes
/// the relay, so the tick only finds rows a failed pass left (then once a
/// second until one succeeds) or a replica that died before relaying left.
const TICK: Duration = Duration::from_secs(5);
const RETRY: Duration = Duration::from_secs(1);

#[derive(Clone)]
pub struct EventRelay {
    pool: PgPool,
    conn: Redis,
    keys: Keys,
    /// INGRESS_PARTITIONS, as the gateways and chat-service have it.
    partitions: usize,
    wake: Arc<Notify>,
}

impl EventRelay {
    pub fn new(pool: PgPool, conn: Redis, keys: Keys, partitions: usize) -> Self {
        Self {
            pool,
            conn,
            keys,
            partitions,
            wake: Arc::new(Notify::new()),
        }
    }

    /// What wakes the relay.
    pub fn waker(&self) -> Arc<Notify> {
        self.wake.clone()
    }

    /// Relays until `stop` completes.
    pub async fn run(self, stop: impl std::future::Future<Output = ()>) {
        tokio::pin!(stop);
        loop {
            let wait = if self.drain().await { TICK } else { RETRY };
            tokio::select! {
                () = &mut stop => return,
                () = self.wake.notified() => {}
                () = tokio::time::sleep(wait) => {}
            }
        }
    }

    /// Relays until the outbox is empty (true) or a step fails (false: the
    /// next try comes sooner). While another replica holds the lock, it
    /// looks again every 50 ms for a second: that replica may have read the
    /// outbox before this one's row was committed.
    pub async fn drain(&self) -> bool {
        let mut busy = 0;
        loop {
            match self.pass().await {
                Ok(Some(n)) if n == BATCH as usize => {}
                Ok(Some(_)) => return true,
                Ok(None) if busy < 20 => {
                    busy += 1;
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                Ok(None) => return true,
                Err(e) => {
                    metrics::counter!("user_event_relay_failures_total").increment(1);
                    tracing::warn!(error = %e, "membership events not relayed yet");
                    return false;
                }
            }
        }
    }

    /// One pass; how many events it relayed (None: another replica holds
    /// the lock).
    async fn pass(&self) -> Result<Option<usize>, UserError> {
        let mut tx = self.pool.begin().await?;
        let locked: bool = sqlx::query_scalar("SELECT pg_try_advisory_xact_lock($1)")
            .bind(LOCK)
            .fetch_one(&mut *tx)
            .await?;
        if !locked {
            return Ok(None);
        }
        let rows = sqlx::query(
            "SELECT id, room, actor, action, subject, role,
                    (extract(epoch FROM created_at) * 1000)::bigint AS at
             FROM room_event_outbox ORDER BY id LIMIT $1",
        )
        .bind(BATCH)
        .fetch_all(&mut *tx)
        .await?;
        let pending: i64 = if rows.len() == BATCH as usize {
            sqlx::query_scalar("SELECT count(*) FROM room_event_outbox")
                .fetch_one(&mut *tx)
                .await?
        } else {
            rows.len() as i64
        };
        metrics::gauge!("user_event_outbox_rows").set(pending as f64);
        if rows.is_empty() {
            return Ok(Some(0));
        }
        let mut ids = Vec::with_capacity(rows.len());
        let mut entries = Vec::with_capacity(rows.len());
        for row in &rows {
            let id: i64 = row.get("id");
            ids.push(id);
            match entry(row) {
                Some(e) => entries.push(e),
                None => tracing::warn!(id, "unreadable outbox row dropped"),
            }
        }
        let mut conn = self.conn.clone();
        // Versions first, in their own round trip: a worker that reads an
        // event then finds the room's version moved and refetches its
        // members, the change included (on a cluster, one pipeline could
        // land the XADD before the INCR).
        let mut rooms: Vec<&str> = rows.iter().map(|r| r.get::<&str, _>("room")).collect();
        rooms.sort_unstable();
        rooms.dedup();
        let mut bump = redis::pipe();
        for room in &rooms {
            bump.incr(self.keys.room_version(room), 1).ignore();
        }
        bump.query_async::<()>(&mut conn)
            .await
            .map_err(redis_down)?;
        let mut add = redis::pipe();
        for e in &entries {
            let conversation = e.to.conversation(&e.user);
            let partition = chat_redis::keys::partition(conversation.as_str(), self.partitions);
            let json = serde_json::to_string(e).map_err(|e| UserError::Internal(e.to_string()))?;
            add.cmd("XADD")
                .arg(self.keys.ingress(partition))
                .arg("*")
                .arg(INGRESS_FIELD)
                .arg(json)
                .ignore();
        }
        add.query_async::<()>(&mut conn).await.map_err(redis_down)?;
        sqlx::query("DELETE FROM room_event_outbox WHERE id = ANY($1)")
            .bind(&ids)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        metrics::counter!("user_events_relayed_total").increment(entries.len() as u64);
        Ok(Some(rows.len()))
    }
}

fn redis_down(e: redis::RedisError) -> UserError {
    UserError::Unavailable(format!("redis: {e}"))
}

/// The ingress entry of an outbox row.
fn entry(row: &sqlx::postgres::PgRow) -> Option<IngressEntry> {
    let id: i64 = row.get("id");
    let actor: String = row.get("actor");
    let member = MemberEvent {
        action: MemberAction::parse(row.get("action"))?,
        user: row.get("subject"),
        role: row.get("role"),
    };
    Some(IngressEntry {
        v: FORMAT_VERSION,
        kind: EntryKind::Member,
        body: member.text(&actor),
        user: actor,
        // No socket waits for this one's `sent`.
        gw: String::new(),
        conn: 0,
        client_id: format!("evt-{id}"),
        to: Target::Room(row.get("room")),
        target_seq: None,
        at: Some(row.get("at")),
        trace: None,
        member: Some(member),
    })
}
