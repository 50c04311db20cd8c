//! What every handler shares.

use std::sync::Arc;

use common::{keys::Keys, shutdown::Shutdown};
use proto::{
    history::v1::history_service_client::HistoryServiceClient,
    user::v1::user_service_client::UserServiceClient,
};
use redis::aio::ConnectionManager;
use tokio::sync::watch;
use tonic::transport::Channel;

use crate::{config::Config, hub::Hub, presence::Presence};

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
    pub redis: ConnectionManager,
    pub users: UserServiceClient<Channel>,
    pub history: HistoryServiceClient<Channel>,
    pub user_channel: Channel,
    pub history_channel: Channel,
    pub hub: Arc<Hub>,
    pub presence: Presence,
    pub shutdown: Shutdown,
    /// True while the delivery subscription is live.
    pub subscribed: watch::Receiver<bool>,
}
