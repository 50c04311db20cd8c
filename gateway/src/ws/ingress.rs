//! The ingress producer: a client's `send`, `edit`, `delete` or `typing` becomes an entry of
//! the ingress stream (the current format version), for chat-service,
//! written by the appender (`appender.rs`).

use chat_model::{
    ids::Target,
    message::{EntryKind, FORMAT_VERSION, IngressEntry},
    protocol::ErrorCode,
};

use crate::{backpressure, state::AppState};

/// What became of a send or typing notice.
#[derive(Debug, PartialEq, Eq)]
pub enum Produced {
    Queued,
    /// A typing notice while the system is busy: worthless later, so dropped.
    Dropped,
    /// Not taken: the sender gets this error (the send may be retried with
    /// the same client_id).
    Refused {
        code: ErrorCode,
        message: &'static str,
        retry_after_ms: Option<u64>,
    },
}

/// One send or typing notice from `user`'s connection `conn`.
pub struct Item {
    pub kind: EntryKind,
    pub client_id: String,
    pub to: Target,
    pub body: String,
    /// For an edit or delete: the seq it changes.
    pub target_seq: Option<u64>,
    /// The traceparent of its `send` span, when spans are exported.
    pub trace: Option<String>,
}

/// Puts `item` on the ingress stream, unless the stream's backlog is over
/// its limit: then a send is refused with a retry hint and a typing notice
/// is dropped.
pub async fn produce(state: &AppState, user: &str, conn: u64, item: Item) -> Produced {
    if state.ingress.over_limit(
        state.config.ingress_backlog_limit,
        state.config.ingress_max_wait_ms,
    ) {
        metrics::counter!("gateway_backpressure_total").increment(1);
        return match item.kind {
            EntryKind::Typing => Produced::Dropped,
            _ => Produced::Refused {
                code: ErrorCode::Unavailable,
                message: "the system is busy; retry with the same client_id",
                retry_after_ms: Some(backpressure::RETRY_AFTER_MS),
            },
        };
    }
    let partition = chat_redis::keys::partition(
        item.to.conversation(user).as_str(),
        state.config.ingress_partitions,
    );
    let entry = IngressEntry {
        v: FORMAT_VERSION,
        kind: item.kind,
        user: user.to_owned(),
        gw: state.config.gateway_id.clone(),
        conn,
        client_id: item.client_id,
        to: item.to,
        body: item.body,
        target_seq: item.target_seq,
        at: Some(chat_model::time::now_ms()),
        trace: item.trace,
    };
    let json = serde_json::to_string(&entry).unwrap_or_default();
    if state
        .appender
        .append(conn, state.keys.ingress(partition), json)
        .await
    {
        metrics::counter!("gateway_ingress_total").increment(1);
        Produced::Queued
    } else {
        Produced::Refused {
            code: ErrorCode::Unavailable,
            message: "message not accepted; retry with the same client_id",
            retry_after_ms: None,
        }
    }
}
