//! The caller's conversations over HTTP: the list, one summary, the read
//! marker, and history pages (members only).

use axum::{
    Json,
    extract::{Path, State},
};
use chat_model::{ids::ConversationId, paging::PageQuery};
use serde::Deserialize;
use utoipa::IntoParams;

use super::schema::{
    ConversationSummary, Conversations as ConversationPage, ErrorBody, Page, ReadBody, ReadMarker,
};
use crate::{
    domain::{conversations::Conversations, history::History, reads::Reads},
    http::{
        error::ApiError,
        extract::{ApiJson, ApiQuery, AuthUser},
    },
};

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
    State(history): State<History>,
    AuthUser(user): AuthUser,
    Path(id): Path<String>,
    ApiQuery(q): ApiQuery<PageParams>,
) -> Result<Json<Page>, ApiError> {
    let conversation = parse(&id)?;
    let page = PageQuery::new(q.before, q.after, q.limit)
        .map_err(|e| ApiError::bad_request(e.to_string()))?;
    let (messages, has_more) = history.page(&user, &conversation, page).await?;
    Ok(Json(Page {
        conversation: id,
        messages,
        has_more,
    }))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListParams {
    /// 1 to 200 conversations; 50 by default.
    #[param(minimum = 1, maximum = 200)]
    limit: Option<u64>,
    /// The `next_cursor` of the previous page.
    cursor: Option<String>,
}

/// The caller's rooms and DMs, most recently active first, a page at a time.
///
/// Each comes with its last seq, the caller's read marker and unread count,
/// and a preview of its last message. A DM is listed for both parties from
/// its first message (the 1,000 most recently active, DM_LIST_LIMIT). A
/// client recovers after a `resync` (or any reconnect) by fetching, for
/// each conversation whose `last_seq` is above what it has, the history
/// after its own last seq.
#[utoipa::path(
    get,
    path = "/api/conversations",
    tag = "conversations",
    security(("bearer" = [])),
    params(ListParams),
    responses(
        (status = 200, description = "A page of the caller's conversations", body = ConversationPage),
        (status = 400, description = "Bad limit or cursor", body = ErrorBody),
        (status = 401, description = "Missing, bad or expired token", body = ErrorBody),
        (status = 503, description = "A dependency is down", body = ErrorBody),
    )
)]
pub async fn list(
    State(conversations): State<Conversations>,
    AuthUser(user): AuthUser,
    ApiQuery(q): ApiQuery<ListParams>,
) -> Result<Json<ConversationPage>, ApiError> {
    let (page, next_cursor) = conversations
        .list(&user, q.limit, q.cursor.as_deref())
        .await?;
    Ok(Json(ConversationPage {
        conversations: page,
        next_cursor,
    }))
}

/// One of the caller's conversations, as the list shows it.
#[utoipa::path(
    get,
    path = "/api/conversations/{id}",
    tag = "conversations",
    security(("bearer" = [])),
    params(
        ("id" = String, Path, description = "`room:<name>` or `dm:<a>:<b>` (a < b)",
            pattern = "^(room:[a-z0-9_-]{1,32}|dm:[a-z0-9_]{3,32}:[a-z0-9_]{3,32})$"),
    ),
    responses(
        (status = 200, description = "The conversation", body = ConversationSummary),
        (status = 400, description = "Bad conversation id", body = ErrorBody),
        (status = 401, description = "Missing, bad or expired token", body = ErrorBody),
        (status = 403, description = "Not a party or member", body = ErrorBody),
        (status = 404, description = "No such room", body = ErrorBody),
        (status = 503, description = "A dependency is down", body = ErrorBody),
    )
)]
pub async fn one(
    State(conversations): State<Conversations>,
    AuthUser(user): AuthUser,
    Path(id): Path<String>,
) -> Result<Json<ConversationSummary>, ApiError> {
    let conversation = parse(&id)?;
    Ok(Json(conversations.one(&user, conversation).await?))
}

/// Moves the caller's read marker forward (never back). The caller's other
/// sockets get a `read` frame.
#[utoipa::path(
    put,
    path = "/api/conversations/{id}/read",
    tag = "conversations",
    security(("bearer" = [])),
    params(
        ("id" = String, Path, description = "`room:<name>` or `dm:<a>:<b>` (a < b)",
            pattern = "^(room:[a-z0-9_-]{1,32}|dm:[a-z0-9_]{3,32}:[a-z0-9_]{3,32})$"),
    ),
    request_body = ReadBody,
    responses(
        (status = 200, description = "The marker after the call", body = ReadMarker),
        (status = 400, description = "Bad id, body, or a seq beyond the conversation's last", body = ErrorBody),
        (status = 401, description = "Missing, bad or expired token", body = ErrorBody),
        (status = 403, description = "Not a party or member", body = ErrorBody),
        (status = 404, description = "No such room", body = ErrorBody),
        (status = 503, description = "A dependency is down", body = ErrorBody),
    )
)]
pub async fn read(
    State(reads): State<Reads>,
    AuthUser(user): AuthUser,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<ReadBody>,
) -> Result<Json<ReadMarker>, ApiError> {
    let conversation = parse(&id)?;
    let marker = reads.mark(&user, &conversation, body.seq).await?;
    Ok(Json(ReadMarker {
        conversation: id,
        read_seq: marker.seq,
        unread: marker.unread,
    }))
}

fn parse(id: &str) -> Result<ConversationId, ApiError> {
    ConversationId::parse(id).map_err(|e| ApiError::bad_request(format!("conversation: {e}")))
}
