//! The gateway's one Redis pub/sub subscription: its own delivery channel.
//! Each message is a JSON array of deliveries; every frame is turned into a
//! shared buffer once and offered to the target sockets without blocking.
//! On a lost connection it reconnects and re-subscribes by itself; sockets
//! stay open meanwhile (what they miss is in history).

use std::{sync::Arc, time::Duration};

use axum::extract::ws::Utf8Bytes;
use common::{model::Delivery, shutdown::Shutdown};
use futures::StreamExt;
use tokio::sync::watch;

use crate::hub::{Hub, Outgoing};

/// Runs until shutdown. `subscribed` is true while the subscription is live.
pub async fn run(
    redis_url: String,
    channel: String,
    hub: Arc<Hub>,
    subscribed: watch::Sender<bool>,
    shutdown: Shutdown,
) {
    let mut failures = 0_u32;
    while !shutdown.is_triggered() {
        match subscribe(&redis_url, &channel).await {
            Ok(pubsub) => {
                failures = 0;
                let _ = subscribed.send(true);
                tracing::info!(%channel, "subscribed");
                let mut messages = pubsub.into_on_message();
                loop {
                    tokio::select! {
                        msg = messages.next() => match msg {
                            Some(msg) => dispatch(&hub, msg.get_payload_bytes()),
                            None => break,
                        },
                        () = shutdown.clone().wait() => return,
                    }
                }
                let _ = subscribed.send(false);
                metrics::counter!("gateway_pubsub_reconnects_total").increment(1);
                tracing::warn!("pub/sub connection lost; reconnecting");
            }
            Err(e) => {
                tracing::warn!(error = %e, "pub/sub subscribe failed; retrying");
            }
        }
        let delay =
            Duration::from_millis(100 * 2_u64.pow(failures.min(5))).min(Duration::from_secs(3));
        failures += 1;
        tokio::select! {
            () = tokio::time::sleep(delay) => {},
            () = shutdown.clone().wait() => return,
        }
    }
}

async fn subscribe(url: &str, channel: &str) -> redis::RedisResult<redis::aio::PubSub> {
    let client = redis::Client::open(url)?;
    let mut pubsub = tokio::time::timeout(Duration::from_secs(5), client.get_async_pubsub())
        .await
        .map_err(|_| redis::RedisError::from((redis::ErrorKind::IoError, "connect timed out")))??;
    pubsub.subscribe(channel).await?;
    Ok(pubsub)
}

/// Hands one pub/sub payload to the hub.
pub fn dispatch(hub: &Hub, payload: &[u8]) {
    let deliveries: Vec<Delivery<'_>> = match serde_json::from_slice(payload) {
        Ok(d) => d,
        Err(e) => {
            metrics::counter!("gateway_bad_deliveries_total").increment(1);
            tracing::error!(error = %e, "unreadable delivery");
            return;
        }
    };
    for d in deliveries {
        // Serialized once by chat-service; one shared buffer for every socket.
        let frames: Vec<Outgoing> = d
            .frames
            .iter()
            .map(|f| Outgoing {
                conn: f.conn,
                skip_conn: f.skip_conn,
                frame: Utf8Bytes::from(f.frame.get().to_owned()),
            })
            .collect();
        let n = hub.deliver(&d.users, &frames);
        metrics::counter!("gateway_deliveries_total").increment(n as u64);
    }
}
