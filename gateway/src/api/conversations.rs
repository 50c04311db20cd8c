//! History over HTTP, members only.

use axum::{
    Json,
    extract::{Path, State},
};
use common::{ids::ConversationId, paging::PageQuery};
use proto::user::v1 as upb;
use serde::Deserialize;
use utoipa::IntoParams;

use super::{
    error::ApiError,
    extract::{ApiQuery, AuthUser},
    schema::{ConversationSummary, Conversations, ErrorBody, Page},
};
use crate::state::AppState;

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PageParams {
    /// Only messages with seq < before, newest first (at least 1).
    #[param(minimum = 1)]
    before: Option<u64>,
    /// Only messages with seq > after, oldest first. Not with `before`.
    after: Option<u64>,
    /// 1 to 200 messages; 50 by default.
    #[param(minimum = 1, maximum = 200)]
    limit: Option<u64>,
}

/// A page of a conversation's history, for its parties or members only.
#[utoipa::path(
    get,
    path = "/api/conversations/{id}/messages",
    tag = "conversations",
    security(("bearer" = [])),
    params(
        ("id" = String, Path, description = "`room:<name>` or `dm:<a>:<b>` (a < b)",
            pattern = "^(room:[a-z0-9_-]{1,32}|dm:[a-z0-9_]{3,32}:[a-z0-9_]{3,32})$"),
        PageParams
    ),
    responses(
        (status = 200, description = "The page", body = Page),
        (status = 400, description = "Bad conversation id or page parameters", body = ErrorBody),
        (status = 401, description = "Missing, bad or expired token", body = ErrorBody),
        (status = 403, description = "Not a party or member", body = ErrorBody),
        (status = 404, description = "No such room", body = ErrorBody),
        (status = 503, description = "A dependency is down", body = ErrorBody),
    )
)]
pub async fn messages(
    State(state): State<AppState>,
    AuthUser(user): AuthUser,
    Path(id): Path<String>,
    ApiQuery(q): ApiQuery<PageParams>,
) -> Result<Json<Page>, ApiError> {
    let conversation = ConversationId::parse(&id)
        .map_err(|e| ApiError::BadRequest(format!("conversation: {e}")))?;
    let page = PageQuery::new(q.before, q.after, q.limit)
        .map_err(|e| ApiError::BadRequest(e.to_string()))?;
    let (messages, has_more) = crate::history::page(&state, &user, &conversation, page).await?;
    Ok(Json(Page {
        conversation: id,
        messages,
        has_more,
    }))
}

/// The most DMs `GET /api/conversations` lists (the most recently active).
pub const MAX_LISTED_DMS: isize = 1000;

/// The caller's rooms and DMs with each one's last seq.
///
/// DMs come first, by last activity (the most recent 1,000), then rooms. A
/// client recovers after a `resync` (or any reconnect) by fetching, for each
/// conversation whose `last_seq` is above what it has, the history after
/// its own last seq.
#[utoipa::path(
    get,
    path = "/api/conversations",
    tag = "conversations",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The caller's conversations", body = Conversations),
        (status = 401, description = "Missing, bad or expired token", body = ErrorBody),
        (status = 503, description = "A dependency is down", body = ErrorBody),
    )
)]
pub async fn list(
    State(state): State<AppState>,
    AuthUser(user): AuthUser,
) -> Result<Json<Conversations>, ApiError> {
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
    let conversations = ids
        .into_iter()
        .zip(seqs)
        .map(|((id, last_activity), seq)| ConversationSummary {
            id,
            last_seq: seq.unwrap_or(0),
            last_activity,
        })
        .collect();
    Ok(Json(Conversations { conversations }))
}
