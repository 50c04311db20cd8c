//! The domain floor: what the gateway does for a user, whatever the
//! transport. Access checks, accounts (with their erasure and export),
//! sessions and access tokens, rooms, the conversation list, history pages,
//! read markers, tickets, abuse limits and the offline queue.
//!
//! Nothing here knows axum, HTTP status codes or WebSocket frames: each
//! operation is a method on a small handle (cheap to clone, holding only
//! the clients it calls) and fails with [`Error`], whose [`Kind`] each
//! transport maps to its own answer. `api/` (HTTP) and `ws/` (WebSocket)
//! sit on top; a new transport (SSE, long-polling) uses the same handles.

pub mod access;
pub mod accounts;
pub mod blocks;
pub mod conversations;
pub mod erasure;
pub mod error;
pub mod export;
pub mod history;
pub mod limits;
pub mod links;
pub mod moderation;
pub mod offline;
pub mod reads;
pub mod rooms;
pub mod sessions;
pub mod tickets;
pub mod tokens;

pub use error::{Error, Kind};

use proto::{
    history::{
        internal::v1::history_internal_client::HistoryInternalClient,
        v1::history_service_client::HistoryServiceClient,
    },
    user::v1::user_service_client::UserServiceClient,
};
use service_kit::auth::InternalChannel;

/// user-service, over the internal channel.
pub type UserClient = UserServiceClient<InternalChannel>;
/// history-service's public API, over the internal channel.
pub type HistoryClient = HistoryServiceClient<InternalChannel>;
/// history-service's internal API.
pub type HistoryInternal = HistoryInternalClient<InternalChannel>;
