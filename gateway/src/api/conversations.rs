//! History over HTTP, members only.

use axum::{
    Json,
    extract::{Path, State},
};
use common::{ids::ConversationId, paging::PageQuery};
use proto::user::v1 as upb;
use serde::Deserialize;
use serde_json::{Value, json};

use super::{
    error::ApiError,
    extract::{ApiQuery, AuthUser},
};
use crate::state::AppState;

#[derive(Deserialize)]
pub struct PageParams {
    before: Option<u64>,
    after: Option<u64>,
    limit: Option<u64>,
}

pub async fn messages(
    State(state): State<AppState>,
    AuthUser(user): AuthUser,
    Path(id): Path<String>,
    ApiQuery(q): ApiQuery<PageParams>,
) -> Result<Json<Value>, ApiError> {
    let conversation = ConversationId::parse(&id)
        .map_err(|e| ApiError::BadRequest(format!("conversation: {e}")))?;
    let page = PageQuery::new(q.before, q.after, q.limit)
        .map_err(|e| ApiError::BadRequest(e.to_string()))?;
    let (messages, has_more) = crate::history::page(&state, &user, &conversation, page).await?;
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
