//! History over HTTP, members only.

use axum::{
    Json,
    extract::{Path, State},
};
use common::{ids::ConversationId, model::ChatMessage};
use proto::{history::v1 as pb, user::v1 as upb};
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

/// The most DMs `GET /api/conversations` lists (the most recently active).
pub const MAX_LISTED_DMS: isize = 1000;

/// `GET /api/conversations`: the caller's rooms and DMs with each one's last
/// seq, DMs by last activity. A client recovers after a `resync` (or any
/// reconnect) by fetching, for each conversation whose `last_seq` is above
/// what it has, the history after its own last seq.
pub async fn list(
    State(state): State<AppState>,
    AuthUser(user): AuthUser,
) -> Result<Json<Value>, ApiError> {
    let rooms = state
        .users
        .clone()
        .list_user_rooms(upb::ListUserRoomsRequest {
            username: user.clone(),
        })
        .await?
        .into_inner()
        .rooms;
    let mut redis = state.redis.clone();
    let dms: Vec<(String, i64)> = redis::cmd("ZRANGE")
        .arg(state.keys.user_dms(&user))
        .arg(0)
        .arg(MAX_LISTED_DMS - 1)
        .arg("REV")
        .arg("WITHSCORES")
        .query_async(&mut redis)
        .await?;
    let ids: Vec<(String, Option<i64>)> = dms
        .into_iter()
        .map(|(id, ts)| (id, Some(ts)))
        .chain(
            rooms
                .into_iter()
                .map(|r| (format!("room:{}", r.name), None)),
        )
        .collect();
    let mut pipe = redis::pipe();
    for (id, _) in &ids {
        pipe.get(state.keys.seq(id));
    }
    let seqs: Vec<Option<u64>> = if ids.is_empty() {
        Vec::new()
    } else {
        pipe.query_async(&mut redis).await?
    };
    let conversations: Vec<Value> = ids
        .iter()
        .zip(seqs)
        .map(|((id, activity), seq)| {
            json!({
                "id": id,
                "last_seq": seq.unwrap_or(0),
                "last_activity": activity,
            })
        })
        .collect();
    Ok(Json(json!({ "conversations": conversations })))
}
