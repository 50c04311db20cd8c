//! GetHistory: a page in ascending seq, complete across the Redis recent window
//! and the MongoDB archive. Seqs are gap-free from 1, so the window's lowest seq
//! tells whether the archive must fill in below it; messages leave the window
//! only after they are archived, so the union is complete whatever the lag.

use std::collections::BTreeMap;

use chat_model::{ids::ConversationId, message::ChatMessage, paging::PageQuery};

use crate::{error::HistoryError, mongo::Archive, store::RedisStore};

/// A validated page request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PageRequest {
    pub conversation: String,
    pub before: Option<u64>,
    pub after: Option<u64>,
    pub limit: usize,
}

impl PageRequest {
    pub fn new(
        conversation: &str,
        before: Option<u64>,
        after: Option<u64>,
        limit: Option<u32>,
    ) -> Result<Self, HistoryError> {
        if conversation.is_empty() {
            return Err(HistoryError::InvalidArgument(
                "conversation_id is required".into(),
            ));
        }
        let conv = ConversationId::parse(conversation)
            .map_err(|e| HistoryError::InvalidArgument(format!("conversation_id: {e}")))?;
        let page = PageQuery::new(before, after, limit.map(u64::from))
            .map_err(|e| HistoryError::InvalidArgument(e.to_string()))?;
        Ok(Self {
            conversation: conv.to_string(),
            before: page.before,
            after: page.after,
            limit: page.limit as usize,
        })
    }
}

pub struct Page {
    pub messages: Vec<ChatMessage>,
    pub has_more: bool,
}

/// A reader whose history starts above a floor (a room that shows history
/// since joining): the rules are chat-model's `PageQuery::from_floor`.
impl PageRequest {
    fn query(&self) -> PageQuery {
        PageQuery {
            before: self.before,
            after: self.after,
            limit: self.limit as u32,
        }
    }

    pub fn from_floor(mut self, floor: u64) -> Self {
        self.after = self.query().from_floor(floor).after;
        self
    }

    /// What of `page` (answered for [`Self::from_floor`]) the reader sees.
    pub fn cut_at_floor(&self, floor: u64, page: Page) -> Page {
        let (messages, has_more) =
            self.query()
                .cut_at_floor(floor, page.messages, page.has_more, |m| m.seq);
        Page { messages, has_more }
    }
}

pub async fn page(
    redis: &RedisStore,
    archive: &Archive,
    req: &PageRequest,
) -> Result<Page, HistoryError> {
    // One more than asked tells whether there is more.
    let want = req.limit + 1;
    let mut by_seq = BTreeMap::new();
    if let Some(after) = req.after {
        let recent = redis.recent_after(&req.conversation, after, want).await?;
        let lowest = recent.first().map(|m| m.seq);
        if lowest != Some(after + 1) {
            for m in archive
                .between(&req.conversation, after, lowest, want)
                .await?
            {
                by_seq.insert(m.seq, m);
            }
        }
        by_seq.extend(recent.into_iter().map(|m| (m.seq, m)));
        let mut messages: Vec<_> = by_seq.into_values().take(want).collect();
        let has_more = messages.len() > req.limit;
        messages.truncate(req.limit);
        Ok(Page { messages, has_more })
    } else {
        let recent = redis
            .recent_before(&req.conversation, req.before, want)
            .await?;
        let lowest = recent.last().map(|m| m.seq).or(req.before);
        let need_archive = recent.len() < want && lowest.is_none_or(|l| l > 1);
        if need_archive {
            let below = lowest.unwrap_or(u64::MAX);
            match archive
                .before(&req.conversation, below, want - recent.len())
                .await
            {
                Ok(older) => by_seq.extend(older.into_iter().map(|m| (m.seq, m))),
                // The archive is down but the window holds the newest part:
                // a shorter page, still gap-free, with has_more set.
                Err(e) if !recent.is_empty() => {
                    tracing::warn!(error = %e, "archive unavailable; serving the recent window");
                    let mut messages = recent;
                    messages.truncate(req.limit);
                    messages.reverse();
                    return Ok(Page {
                        messages,
                        has_more: true,
                    });
                }
                Err(e) => return Err(e.into()),
            }
        }
        by_seq.extend(recent.into_iter().map(|m| (m.seq, m)));
        let mut messages: Vec<_> = by_seq.into_values().rev().take(want).collect();
        let has_more = messages.len() > req.limit;
        messages.truncate(req.limit);
        messages.reverse();
        Ok(Page { messages, has_more })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn page_requests_are_validated() {
        assert!(PageRequest::new("room:general", None, None, Some(20)).is_ok());
        assert_eq!(
            PageRequest::new("room:general", None, None, None)
                .unwrap()
                .limit,
            50
        );
        for (conv, before, after, limit) in [
            ("", None, None, Some(10)),
            ("general", None, None, Some(10)),
            ("dm:bob:alice", None, None, Some(10)),
            ("room:general", Some(5), Some(1), Some(10)),
            ("room:general", None, None, Some(0)),
            ("room:general", None, None, Some(201)),
            ("room:general", Some(0), None, Some(10)),
        ] {
            assert!(
                matches!(
                    PageRequest::new(conv, before, after, limit),
                    Err(HistoryError::InvalidArgument(_))
                ),
                "{conv} {before:?} {after:?} {limit:?}"
            );
        }
    }
}
