//! A page of a conversation's history for one user, for both the HTTP API
//! and the WebSocket `history` frame: members only, then `GetHistory`.

use chat_model::{ids::ConversationId, message::ChatMessage, paging::PageQuery};
use proto::history::v1 as pb;

use crate::{
    api::{access::check_can_read, error::ApiError},
    state::AppState,
};

/// The page, and whether there is more beyond it.
pub async fn page(
    state: &AppState,
    user: &str,
    conversation: &ConversationId,
    page: PageQuery,
) -> Result<(Vec<ChatMessage>, bool), ApiError> {
    check_can_read(state, user, conversation).await?;
    let reply = state
        .history
        .clone()
        .get_history(pb::GetHistoryRequest {
            conversation_id: conversation.to_string(),
            before_seq: page.before,
            after_seq: page.after,
            limit: Some(page.limit),
        })
        .await?
        .into_inner();
    let messages = reply
        .messages
        .into_iter()
        .filter_map(|m| chat_model::convert::from_pb(m).ok())
        .collect();
    Ok((messages, reply.has_more))
}
