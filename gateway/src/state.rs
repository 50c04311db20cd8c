//! What every handler shares.

use std::sync::Arc;

use chat_redis::connection::Redis;
use chat_redis::keys::Keys;
use proto::{
    history::{
        internal::v1::history_internal_client::HistoryInternalClient,
        v1::history_service_client::HistoryServiceClient,
    },
    user::v1::user_service_client::UserServiceClient,
};
use service_kit::{auth::InternalChannel, shutdown::Shutdown};
use tokio::sync::watch;

use chat_redis::presence::{GatewayPresence, Lookup};

use crate::{config::Config, hub::Hub, ws::caps::ConnCaps};

/// Shared by every handler and every socket; cloning it is one pointer copy,
/// which keeps the per-connection cost of an idle socket down.
#[derive(Clone)]
pub struct AppState(Arc<Shared>);

impl AppState {
    pub fn new(shared: Shared) -> Self {
        Self(Arc::new(shared))
    }
}

impl std::ops::Deref for AppState {
    type Target = Shared;

    fn deref(&self) -> &Shared {
        &self.0
    }
}

pub struct Shared {
    pub config: Arc<Config>,
    pub keys: Keys,
    pub redis: Redis,
    pub users: UserServiceClient<InternalChannel>,
    pub history: HistoryServiceClient<InternalChannel>,
    pub history_internal: HistoryInternalClient<InternalChannel>,
    pub user_channel: InternalChannel,
    pub history_channel: InternalChannel,
    pub hub: Arc<Hub>,
    pub caps: Arc<ConnCaps>,
    /// Writes ingress entries, several per round trip.
    pub appender: crate::ws::appender::Appender,
    /// Ingress entries waiting for chat-service, as last polled.
    pub ingress: Arc<crate::backpressure::Ingress>,
    pub presence: GatewayPresence,
    /// Who is online anywhere (the REST view of a room's members, and
    /// where a user's `read` frames go).
    pub lookup: Lookup,
    /// Read markers, and the publisher that tells a user's other sockets.
    pub reads: crate::reads::Reads,
    /// The conversation list's per-conversation state.
    pub summaries: chat_redis::summary::Summaries,
    pub shutdown: Shutdown,
    /// True while the delivery subscription is live.
    pub subscribed: watch::Receiver<bool>,
}
