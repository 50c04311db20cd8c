//! The gRPC services: `chat.history.v1.HistoryService` (reads; public with a
//! user's JWT, and on the internal port for services) and
//! `chat.history.internal.v1.HistoryInternal` (writes; internal port only).

use service_kit::auth::Caller;

use chat_model::{
    convert::{from_pb, to_pb},
    ids::{self, ConversationId},
    message::ChatMessage,
};
use proto::history::{internal::v1 as internal_pb, v1 as history_pb};
use tonic::{Request, Response, Status};
use tracing::Instrument;

use crate::{
    auth::Access,
    error::HistoryError,
    mongo::Archive,
    query::{self, PageRequest},
    store::{AppendItem, RedisStore},
};

/// Most messages one Append call may carry.
pub const MAX_APPEND_BATCH: usize = 1000;

#[derive(Clone)]
pub struct HistoryApi {
    pub redis: RedisStore,
    pub archive: Archive,
    pub access: Access,
}

fn check_username(field: &str, name: &str) -> Result<(), HistoryError> {
    if name.is_empty() {
        return Err(HistoryError::InvalidArgument(format!(
            "{field} is required"
        )));
    }
    ids::check_username(name).map_err(|e| HistoryError::InvalidArgument(format!("{field}: {e}")))
}

#[tonic::async_trait]
impl history_pb::history_service_server::HistoryService for HistoryApi {
    async fn get_history(
        &self,
        request: Request<history_pb::GetHistoryRequest>,
    ) -> Result<Response<history_pb::GetHistoryResponse>, Status> {
        let caller = Caller::of(&request)?.clone();
        self.access.check_session(&request).await?;
        let req = request.into_inner();
        // Bad input is answered before any authorization work.
        let page_req = PageRequest::new(
            &req.conversation_id,
            req.before_seq,
            req.after_seq,
            req.limit,
        )?;
        let conversation = ConversationId::parse(&page_req.conversation)
            .map_err(|e| HistoryError::InvalidArgument(format!("conversation_id: {e}")))?;
        let floor = self.access.check_read(&caller, &conversation).await?;
        let page_req = page_req.from_floor(floor);
        let page = query::page(&self.redis, &self.archive, &page_req).await?;
        let page = page_req.cut_at_floor(floor, page);
        Ok(Response::new(history_pb::GetHistoryResponse {
            messages: page.messages.into_iter().map(|m| to_pb(&m)).collect(),
            has_more: page.has_more,
        }))
    }

    async fn list_offline(
        &self,
        request: Request<history_pb::ListOfflineRequest>,
    ) -> Result<Response<history_pb::ListOfflineResponse>, Status> {
        let caller = Caller::of(&request)?.clone();
        self.access.check_session(&request).await?;
        let req = request.into_inner();
        check_username("username", &req.username)?;
        Access::check_offline(&caller, &req.username)?;
        let batch = self.redis.offline(&req.username).await?;
        Ok(Response::new(history_pb::ListOfflineResponse {
            messages: batch.messages.into_iter().map(|m| to_pb(&m)).collect(),
            truncated: batch.dropped > 0,
            dropped: batch.dropped,
        }))
    }
}

/// The writes. Served only behind the service-token interceptor.
pub struct InternalApi {
    pub redis: RedisStore,
    pub archive: Archive,
}

/// Most seqs one GetMessages call may name.
pub const MAX_GET_MESSAGES: usize = 1000;

/// Validates an Append or Enqueue request's items.
fn items(req: internal_pb::AppendRequest) -> Result<Vec<AppendItem>, HistoryError> {
    let invalid = HistoryError::InvalidArgument;
    if req.items.len() > MAX_APPEND_BATCH {
        return Err(HistoryError::InvalidArgument(format!(
            "at most {MAX_APPEND_BATCH} messages per call"
        )));
    }
    let mut items = Vec::with_capacity(req.items.len());
    for item in req.items {
        let message: ChatMessage = from_pb(
            item.message
                .ok_or_else(|| HistoryError::InvalidArgument("item without message".into()))?,
        )
        .map_err(HistoryError::InvalidArgument)?;
        for user in &item.offline_recipients {
            check_username("offline_recipients", user)?;
        }
        let target = match item.target {
            None => None,
            Some(t) => {
                let t: ChatMessage = from_pb(t).map_err(invalid)?;
                let fits = message.kind.is_some()
                    && t.kind.is_none()
                    && t.conversation == message.conversation
                    && Some(t.seq) == message.target_seq
                    && t.edit_seq == Some(message.seq);
                if !fits {
                    return Err(invalid(
                        "target must be the state of the event's target with the event applied"
                            .into(),
                    ));
                }
                Some(t)
            }
        };
        items.push(AppendItem {
            message,
            offline_recipients: item.offline_recipients,
            target,
            replay: item.replay,
        });
    }
    Ok(items)
}

fn late_pb(late: crate::store::Late) -> internal_pb::Late {
    internal_pb::Late {
        item: late.item as u32,
        username: late.user,
    }
}

impl InternalApi {
    /// The window's copy where it has one (it is the newest state), else
    /// the archive's.
    async fn messages_at(
        &self,
        conversation: &ConversationId,
        seqs: &[u64],
    ) -> Result<Vec<ChatMessage>, HistoryError> {
        let wanted: Vec<(&str, u64)> = seqs.iter().map(|s| (conversation.as_str(), *s)).collect();
        let windowed = self.redis.at_seqs(&wanted).await?;
        let missing: Vec<u64> = seqs
            .iter()
            .zip(&windowed)
            .filter(|(_, m)| m.is_none())
            .map(|(s, _)| *s)
            .collect();
        let mut out: Vec<ChatMessage> = windowed.into_iter().flatten().collect();
        for doc in self
            .archive
            .at_seqs(conversation.as_str(), &missing)
            .await?
        {
            let m = ChatMessage::try_from(doc).map_err(crate::mongo::ArchiveError::from)?;
            out.push(m);
        }
        Ok(out)
    }
}

#[tonic::async_trait]
impl internal_pb::history_internal_server::HistoryInternal for InternalApi {
    async fn append(
        &self,
        request: Request<internal_pb::AppendRequest>,
    ) -> Result<Response<internal_pb::AppendResponse>, Status> {
        // Part of the first message's trace (service_kit::trace), when on.
        let span = tracing::info_span!("history.append");
        service_kit::trace::set_parent(
            &span,
            service_kit::trace::from_grpc(request.metadata()).as_deref(),
        );
        async {
            let request = request.into_inner();
            let presence_at = request.presence_at;
            let items = items(request)?;
            let late = self
                .redis
                .append(&items, presence_at, &self.archive)
                .await?;
            metrics::counter!("history_appended_total").increment(items.len() as u64);
            Ok(Response::new(internal_pb::AppendResponse {
                late: late.into_iter().map(late_pb).collect(),
            }))
        }
        .instrument(span)
        .await
    }

    async fn enqueue(
        &self,
        request: Request<internal_pb::AppendRequest>,
    ) -> Result<Response<internal_pb::AppendResponse>, Status> {
        let request = request.into_inner();
        let presence_at = request.presence_at;
        let items = items(request)?;
        let late = self.redis.enqueue(&items, presence_at).await?;
        metrics::counter!("history_enqueued_total").increment(items.len() as u64);
        Ok(Response::new(internal_pb::AppendResponse {
            late: late.into_iter().map(late_pb).collect(),
        }))
    }

    async fn get_messages(
        &self,
        request: Request<internal_pb::GetMessagesRequest>,
    ) -> Result<Response<internal_pb::GetMessagesResponse>, Status> {
        let req = request.into_inner();
        let conversation = ConversationId::parse(&req.conversation_id)
            .map_err(|e| HistoryError::InvalidArgument(format!("conversation_id: {e}")))?;
        if req.seqs.len() > MAX_GET_MESSAGES || req.seqs.contains(&0) {
            return Err(HistoryError::InvalidArgument(format!(
                "1 to {MAX_GET_MESSAGES} seqs, each at least 1"
            ))
            .into());
        }
        let messages = self.messages_at(&conversation, &req.seqs).await?;
        Ok(Response::new(internal_pb::GetMessagesResponse {
            messages: messages.iter().map(to_pb).collect(),
        }))
    }

    async fn ack_offline(
        &self,
        request: Request<internal_pb::AckOfflineRequest>,
    ) -> Result<Response<internal_pb::AckOfflineResponse>, Status> {
        let req = request.into_inner();
        check_username("username", &req.username)?;
        if req.last_id.is_empty() || req.last_id.len() > 64 || req.last_id.contains('"') {
            return Err(HistoryError::InvalidArgument("last_id is not a message id".into()).into());
        }
        let removed = self
            .redis
            .ack_offline(&req.username, &req.last_id, req.dropped)
            .await?;
        Ok(Response::new(internal_pb::AckOfflineResponse { removed }))
    }
}
