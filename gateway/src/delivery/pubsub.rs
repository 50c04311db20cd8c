//! The gateway's Redis subscriptions: its own delivery channel, and the
//! system's revocations channel (`revocations.rs`), each a sharded channel
//! (SSUBSCRIBE) on a single Redis and on a Redis Cluster alike. Each
//! message is a JSON array of deliveries; every frame is turned into a
//! shared buffer once and offered to the target sockets without blocking.
//!
//! Deliveries can be missed in four ways, and each is noticed:
//! - the connection drops: the library reports it, and the subscription is
//!   made again on a fresh connection;
//! - the connection is dead but not closed (half-open, a paused Redis): a
//!   probe every second that is not answered within two seconds counts as a
//!   drop, so a dead subscription is noticed within about three seconds. On
//!   a cluster the probe is a command in the channel's slot, so it goes to
//!   the node that holds the subscription;
//! - the cluster moves the channel's slot (a failover, a resharding): the
//!   node unsubscribes us (`sunsubscribe`), which counts as a drop;
//! - a payload is lost on the way: each carries the channel's delivery number
//!   (`<n> <json>`), and a jump in `n` is a gap.
//!
//! In every case the sockets stay open and each gets a `resync` frame: what
//! they missed is in history (and chat-service put it in the offline queues of
//! recipients whose gateway did not hear it), and the client's recovery
//! fetches it.

use std::{sync::Arc, time::Duration};

use axum::extract::ws::Utf8Bytes;
use chat_model::message::{self, Delivery, open_envelope};
use chat_redis::connection::Endpoints;
use redis::{
    AsyncConnectionConfig, IntoConnectionInfo, ProtocolVersion, PushInfo, PushKind, Value,
    aio::ConnectionLike,
};
use service_kit::{backoff::Backoff, shutdown::Shutdown};
use tokio::sync::{mpsc, watch};

use super::{
    hub::{Hub, Outgoing},
    seen::Mark,
};

/// How often the subscription is probed.
pub const PING_EVERY: Duration = Duration::from_secs(1);
/// How long a probe may take before the connection counts as dead.
pub const PING_TIMEOUT: Duration = Duration::from_secs(2);

/// What a subscription does with what it hears.
pub trait Listener: Send + 'static {
    /// The subscription was made (again): whatever was published while it
    /// was not there reached nobody here.
    fn subscribed(&mut self);
    /// One message of the channel.
    fn message(&mut self, payload: &[u8]);
}

/// The gateway's deliveries: numbered payloads for the hub.
pub struct Deliveries {
    hub: Arc<Hub>,
    numbers: DeliveryNumbers,
}

impl Deliveries {
    pub fn new(hub: Arc<Hub>) -> Self {
        Self {
            hub,
            numbers: DeliveryNumbers::default(),
        }
    }
}

impl Listener for Deliveries {
    fn subscribed(&mut self) {
        self.numbers = DeliveryNumbers::default();
        self.hub.resync_all("subscribed");
    }

    fn message(&mut self, payload: &[u8]) {
        let (n, deliveries) = open_envelope(payload);
        if let Some(n) = n
            && self.numbers.gap(n)
        {
            metrics::counter!("gateway_delivery_gaps_total").increment(1);
            tracing::warn!(n, "gap in the delivery sequence; clients resync");
            self.hub.resync_all("gap");
        }
        dispatch(&self.hub, deliveries);
    }
}

/// What the gateway subscribes to: a channel, and a key in the channel's
/// slot to probe the node that holds it.
pub struct Channel {
    pub name: String,
    pub probe_key: String,
}

/// Runs until shutdown. `subscribed` is true while the subscription is live.
pub async fn run(
    endpoints: Endpoints,
    channel: Channel,
    mut listener: impl Listener,
    subscribed: watch::Sender<bool>,
    shutdown: Shutdown,
) {
    // Resubscribing is what ends a delivery gap, so it retries faster than
    // the default and never waits more than 3 s.
    let mut backoff = Backoff::new(Duration::from_millis(100), Duration::from_secs(3));
    while !shutdown.is_triggered() {
        match subscribe(&endpoints, &channel.name).await {
            Ok((conn, pushes)) => {
                backoff.reset();
                let _ = subscribed.send(true);
                tracing::info!(channel = %channel.name, "subscribed");
                listener.subscribed();
                let ended = listen(conn, pushes, &channel, &mut listener, &shutdown).await;
                let _ = subscribed.send(false);
                match ended {
                    Ended::Shutdown => return,
                    Ended::Lost(why) => {
                        metrics::counter!("gateway_pubsub_reconnects_total").increment(1);
                        tracing::warn!(why, "pub/sub subscription lost; subscribing again");
                    }
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "pub/sub subscribe failed; retrying");
            }
        }
        backoff.wait(&shutdown).await;
    }
}

enum Ended {
    Shutdown,
    Lost(&'static str),
}

/// A subscribed connection: its pushes arrive on the channel `subscribe`
/// returned, and commands (the probe) go through it.
enum Subscription {
    Single(redis::aio::MultiplexedConnection),
    Cluster(redis::cluster_async::ClusterConnection),
}

impl Subscription {
    async fn probe(&mut self, key: &str) -> redis::RedisResult<()> {
        let mut cmd = redis::cmd("EXISTS");
        cmd.arg(key);
        match self {
            Self::Single(c) => c.req_packed_command(&cmd).await.map(drop),
            Self::Cluster(c) => c.req_packed_command(&cmd).await.map(drop),
        }
    }
}

/// Dispatches deliveries until the subscription ends, stops answering
/// probes, or shutdown.
async fn listen(
    mut conn: Subscription,
    mut pushes: mpsc::UnboundedReceiver<PushInfo>,
    channel: &Channel,
    listener: &mut impl Listener,
    shutdown: &Shutdown,
) -> Ended {
    let stop = shutdown.clone().wait();
    tokio::pin!(stop);
    let probe_key = channel.probe_key.clone();
    let prober = async move {
        let mut tick = tokio::time::interval(PING_EVERY);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            match tokio::time::timeout(PING_TIMEOUT, conn.probe(&probe_key)).await {
                Ok(Ok(())) => {}
                Ok(Err(_)) => return "probe failed",
                Err(_) => return "probe timed out",
            }
        }
    };
    tokio::pin!(prober);
    loop {
        tokio::select! {
            push = pushes.recv() => match push {
                Some(push) => match push.kind {
                    PushKind::SMessage | PushKind::Message => {
                        let Some(Value::BulkString(payload)) = push.data.get(1) else {
                            continue;
                        };
                        listener.message(payload);
                    }
                    PushKind::Disconnection => return Ended::Lost("connection closed"),
                    PushKind::SUnsubscribe | PushKind::Unsubscribe => {
                        return Ended::Lost("unsubscribed by the server (slot moved)");
                    }
                    _ => {}
                },
                None => return Ended::Lost("connection closed"),
            },
            why = &mut prober => return Ended::Lost(why),
            () = &mut stop => return Ended::Shutdown,
        }
    }
}

/// A fresh RESP3 connection with `channel` subscribed (sharded); its pushes
/// come on the receiver.
async fn subscribe(
    endpoints: &Endpoints,
    channel: &str,
) -> redis::RedisResult<(Subscription, mpsc::UnboundedReceiver<PushInfo>)> {
    let (tx, rx) = mpsc::unbounded_channel();
    let connect = async {
        if endpoints.cluster {
            let client = redis::cluster::ClusterClientBuilder::new(endpoints.urls.clone())
                .use_protocol(ProtocolVersion::RESP3)
                .push_sender(tx)
                .connection_timeout(Duration::from_secs(3))
                .response_timeout(PING_TIMEOUT)
                .build()?;
            let mut conn = client.get_async_connection().await?;
            conn.ssubscribe(channel).await?;
            Ok::<_, redis::RedisError>(Subscription::Cluster(conn))
        } else {
            let mut info = endpoints.first().into_connection_info()?;
            info.redis.protocol = ProtocolVersion::RESP3;
            let config = AsyncConnectionConfig::new()
                .set_push_sender(tx)
                .set_connection_timeout(Duration::from_secs(3))
                .set_response_timeout(PING_TIMEOUT);
            let mut conn = redis::Client::open(info)?
                .get_multiplexed_async_connection_with_config(&config)
                .await?;
            redis::cmd("SSUBSCRIBE")
                .arg(channel)
                .exec_async(&mut conn)
                .await?;
            Ok(Subscription::Single(conn))
        }
    };
    let conn = tokio::time::timeout(Duration::from_secs(5), connect)
        .await
        .map_err(|_| redis::RedisError::from((redis::ErrorKind::IoError, "connect timed out")))??;
    Ok((conn, rx))
}

/// The delivery numbers seen on one subscription.
#[derive(Default)]
struct DeliveryNumbers {
    last: Option<u64>,
}

impl DeliveryNumbers {
    /// Records `n`; true when numbers were skipped since the last one. The
    /// first number after subscribing cannot be judged (what came before was
    /// missed anyway, and `resync` covers it). A number that goes back (Redis
    /// lost its counter) starts over.
    fn gap(&mut self, n: u64) -> bool {
        let gap = matches!(self.last, Some(last) if n > last + 1);
        self.last = Some(n);
        gap
    }
}

/// Hands one payload's deliveries to the hub. A payload this build cannot
/// read (corrupt, or of a format version it does not know) is a loss like a
/// gap: every socket is told to resync, and history has the messages.
pub fn dispatch(hub: &Hub, payload: &[u8]) {
    let deliveries: Vec<Delivery<'_>> = match serde_json::from_slice(payload) {
        Ok(d) => d,
        Err(e) => return unreadable(hub, &e.to_string()),
    };
    if let Some(d) = deliveries.iter().find(|d| !message::readable(d.v)) {
        return unreadable(hub, &format!("unknown format version {}", d.v));
    }
    let now = chat_model::time::now_ms();
    for d in deliveries {
        observe(&d, now);
        // Serialized once by chat-service; one shared buffer for every socket.
        let frames: Vec<Outgoing> = d
            .frames
            .iter()
            .map(|f| Outgoing {
                conn: f.conn,
                skip_conn: f.skip_conn,
                frame: Utf8Bytes::from(f.frame.get().to_owned()),
                mark: f.seq.map(Mark::Seq).or(f.read.map(Mark::Read)),
            })
            .collect();
        let conversation = d.conversation.as_deref().map(super::seen::key);
        let n = hub.deliver(&d.users, conversation, &frames);
        metrics::counter!("gateway_deliveries_total").increment(n as u64);
    }
}

/// What the frames tell about their sends: the end of each message's trace
/// (when spans are exported), and latency as felt by users: their own
/// `sent` (a frame for one connection) and their message reaching the
/// recipients' gateway. Clocks of different hosts may differ; a negative
/// difference counts as zero.
fn observe(d: &Delivery<'_>, now: i64) {
    for f in &d.frames {
        if f.trace.is_some() {
            // The end of the message's trace (service_kit::trace).
            let span = tracing::info_span!("gateway.deliver", sockets = d.users.len());
            service_kit::trace::set_parent(&span, f.trace);
        }
        let Some(at) = f.at else { continue };
        let seconds = (now - at).max(0) as f64 / 1000.0;
        if f.conn.is_some() {
            metrics::histogram!("gateway_send_to_sent_seconds").record(seconds);
        } else {
            metrics::histogram!("gateway_send_to_delivered_seconds").record(seconds);
        }
    }
}

fn unreadable(hub: &Hub, why: &str) {
    metrics::counter!("gateway_bad_deliveries_total").increment(1);
    tracing::error!(why, "unreadable delivery; sockets resync");
    hub.resync_all("unreadable delivery");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn skipped_numbers_are_a_gap_and_a_restart_is_not() {
        let mut s = DeliveryNumbers::default();
        assert!(!s.gap(7), "the first number is not judged");
        assert!(!s.gap(8));
        assert!(s.gap(10));
        assert!(!s.gap(11));
        assert!(!s.gap(1), "a counter that starts over");
        assert!(!s.gap(2));
    }
}
