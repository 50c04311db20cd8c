//! History over HTTP, members only.

use axum::{
    Json,
    extract::{Path, State},
};
use common::{ids::ConversationId, model::ChatMessage};
use proto::history::v1 as pb;
use serde::Deserialize;
use serde_json::{Value, json};

use super::{
    access::check_can_read,
    error::ApiError,
    extract::{ApiQuery, AuthUser},
};
use crate::state::AppState;

#[derive(Deserialize)]
pub struct PageQuery {
    before: Option<u64>,
    after: Option<u64>,
    limit: Option<u32>,
}

/// Validates a page request and fetches it, for both HTTP and the WebSocket
/// `history` frame.
pub async fn fetch_page(
    state: &AppState,
    user: &str,
    conversation: &str,
    before: Option<u64>,
    after: Option<u64>,
    limit: Option<u32>,
) -> Result<(Vec<ChatMessage>, bool), ApiError> {
    let conv = ConversationId::parse(conversation)
        .map_err(|e| ApiError::BadRequest(format!("conversation: {e}")))?;
    if before.is_some() && after.is_some() {
        return Err(ApiError::BadRequest(
            "give before or after, not both".into(),
        ));
    }
    if let Some(limit) = limit
        && !(1..=200).contains(&limit)
    {
        return Err(ApiError::BadRequest(
            "limit must be between 1 and 200".into(),
        ));
    }
    check_can_read(state, user, &conv).await?;
    let reply = state
        .history
        .clone()
        .get_history(pb::GetHistoryRequest {
            conversation_id: conv.to_string(),
            before_seq: before,
            after_seq: after,
            limit,
        })
        .await?
        .into_inner();
    let messages = reply
        .messages
        .into_iter()
        .filter_map(|m| common::convert::from_pb(m).ok())
        .collect();
    Ok((messages, reply.has_more))
}

pub async fn messages(
    State(state): State<AppState>,
    AuthUser(user): AuthUser,
    Path(id): Path<String>,
    ApiQuery(q): ApiQuery<PageQuery>,
) -> Result<Json<Value>, ApiError> {
    let (messages, has_more) = fetch_page(&state, &user, &id, q.before, q.after, q.limit).await?;
    Ok(Json(json!({
        "conversation": id,
        "messages": messages,
        "has_more": has_more,
    })))
}
