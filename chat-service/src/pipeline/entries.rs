//! The entries every stage hands on: admitted ones and refused ones.

use std::sync::Arc;

use chat_model::{
    ids::ConversationId,
    message::{ChatMessage, IngressEntry},
    protocol::ErrorCode,
};

/// An entry that passed validation and authorization.
pub(crate) struct Accepted {
    pub stream_id: String,
    pub entry: IngressEntry,
    pub conversation: ConversationId,
    pub recipients: Arc<[String]>,
    /// For an edit or delete: its target, as stored before it (None for a
    /// message, and for an event let through by `Admit::readmit`).
    pub target: Option<ChatMessage>,
}

/// An entry refused with an error frame to its sender.
pub(crate) struct Rejected {
    pub stream_id: String,
    pub entry: IngressEntry,
    pub code: ErrorCode,
    pub message: String,
    /// When the sender may try again (slow mode).
    pub retry_after_ms: Option<u64>,
}
