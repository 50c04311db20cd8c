//! What every WebSocket session shares: its settings and the handles of the
//! floors below. One pointer per session, which keeps an idle socket cheap.

use std::{sync::Arc, time::Duration};

use chat_redis::presence::GatewayPresence;
use service_kit::shutdown::Shutdown;

use crate::{
    config::Config,
    delivery::{caps::ConnCaps, hub::Hub},
    domain::{
        history::History, offline::OfflineQueue, reads::Reads, tickets::Tickets, tokens::Tokens,
    },
    ingress::Ingress,
};

/// The session settings (the README's table names each).
#[derive(Debug, Clone)]
pub struct Settings {
    pub gateway_id: String,
    pub max_frame_bytes: usize,
    pub rate_per_sec: u32,
    pub rate_burst: u32,
    pub outbound_queue: usize,
    pub outbound_queue_bytes: usize,
    pub heartbeat_ms: u64,
    pub idle_timeout: Duration,
    pub max_connections: usize,
    /// ALLOWED_ORIGINS, parsed; empty allows any.
    pub origins: Vec<String>,
    /// TRANSPORTS: WebSockets at `/ws`, streams at `/api/stream`.
    pub websocket: bool,
    pub streaming: bool,
    pub polling: bool,
}

impl From<&Config> for Settings {
    fn from(c: &Config) -> Self {
        Self {
            gateway_id: c.gateway_id.clone(),
            max_frame_bytes: c.max_frame_bytes,
            rate_per_sec: c.rate_per_sec,
            rate_burst: c.rate_burst,
            outbound_queue: c.outbound_queue,
            outbound_queue_bytes: c.outbound_queue_bytes,
            heartbeat_ms: c.heartbeat_ms,
            idle_timeout: c.idle_timeout(),
            max_connections: c.max_connections,
            origins: c.origins(),
            websocket: c.transports().websocket,
            streaming: c.transports().stream,
            polling: c.transports().poll,
        }
    }
}

impl Settings {
    pub fn heartbeat(&self) -> Duration {
        Duration::from_millis(self.heartbeat_ms)
    }
}

pub struct Parts {
    pub settings: Settings,
    pub hub: Arc<Hub>,
    pub caps: Arc<ConnCaps>,
    pub presence: GatewayPresence,
    pub shutdown: Shutdown,
    pub tokens: Tokens,
    pub tickets: Tickets,
    pub offline: OfflineQueue,
    pub reads: Reads,
    pub history: History,
    pub ingress: Ingress,
}

/// Shared by every session; cloning it is one pointer copy.
#[derive(Clone)]
pub struct Sessions(Arc<Parts>);

impl Sessions {
    pub fn new(parts: Parts) -> Self {
        Self(Arc::new(parts))
    }
}

impl std::ops::Deref for Sessions {
    type Target = Parts;

    fn deref(&self) -> &Parts {
        &self.0
    }
}
