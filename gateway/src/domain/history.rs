//! A page of a conversation's history for one user, for every transport:
//! members only, then `GetHistory`, from where the member's history starts.

use chat_model::{ids::ConversationId, message::ChatMessage, paging::PageQuery};
use proto::history::v1 as history_pb;

use super::{Error, HistoryClient, access::Access, error::HISTORY_SERVICE};

#[derive(Clone)]
pub struct History {
    access: Access,
    history: HistoryClient,
}

impl History {
    pub fn new(access: Access, history: HistoryClient) -> Self {
        Self { access, history }
    }

    /// The page, and whether there is more beyond it.
    pub async fn page(
        &self,
        user: &str,
        conversation: &ConversationId,
        page: PageQuery,
    ) -> Result<(Vec<ChatMessage>, bool), Error> {
        let floor = self.access.check_can_read(user, conversation).await?;
        let page = page.from_floor(floor);
        let reply = self
            .history
            .clone()
            .get_history(history_pb::GetHistoryRequest {
                conversation_id: conversation.to_string(),
                before_seq: page.before,
                after_seq: page.after,
                limit: Some(page.limit),
            })
            .await
            .map_err(Error::upstream(HISTORY_SERVICE))?
            .into_inner();
        let messages = reply
            .messages
            .into_iter()
            .filter_map(|m| chat_model::convert::from_pb(m).ok())
            .collect();
        Ok(page.cut_at_floor(floor, messages, reply.has_more, |m: &ChatMessage| m.seq))
    }
}
