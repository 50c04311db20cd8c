//! The history page rules, one place for the HTTP API, the WebSocket
//! `history` frame and the gRPC `GetHistory` (docs/protocol.md): newest first
//! or after a seq, never both; `before` at least 1; both at most
//! [`crate::limits::MAX_SEQ`]; 1 to 200 messages, 50 by default.

/// Messages in a page when the request names no limit.
pub const DEFAULT_LIMIT: u32 = 50;
/// Most messages in one page.
pub const MAX_LIMIT: u32 = 200;

/// A page request whose fields passed the rules.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageQuery {
    /// Only seq < before (newest first).
    pub before: Option<u64>,
    /// Only seq > after (oldest first).
    pub after: Option<u64>,
    pub limit: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PageError {
    #[error("give before or after, not both")]
    BeforeAndAfter,
    #[error("before must be at least 1")]
    BeforeZero,
    #[error("limit must be between 1 and {MAX_LIMIT}")]
    Limit,
    #[error("before and after must be at most {}", crate::limits::MAX_SEQ)]
    OutOfRange,
}

impl PageQuery {
    pub fn new(
        before: Option<u64>,
        after: Option<u64>,
        limit: Option<u64>,
    ) -> Result<Self, PageError> {
        if before.is_some() && after.is_some() {
            return Err(PageError::BeforeAndAfter);
        }
        if before == Some(0) {
            return Err(PageError::BeforeZero);
        }
        let max = crate::limits::MAX_SEQ;
        if before.is_some_and(|b| b > max) || after.is_some_and(|a| a > max) {
            return Err(PageError::OutOfRange);
        }
        let limit = limit.unwrap_or(u64::from(DEFAULT_LIMIT));
        if !(1..=u64::from(MAX_LIMIT)).contains(&limit) {
            return Err(PageError::Limit);
        }
        Ok(Self {
            before,
            after,
            limit: limit as u32,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_rules() {
        assert_eq!(
            PageQuery::new(None, None, None),
            Ok(PageQuery {
                before: None,
                after: None,
                limit: DEFAULT_LIMIT
            })
        );
        assert_eq!(
            PageQuery::new(Some(5), Some(1), None),
            Err(PageError::BeforeAndAfter)
        );
        assert_eq!(
            PageQuery::new(Some(0), None, None),
            Err(PageError::BeforeZero)
        );
        assert_eq!(PageQuery::new(None, None, Some(0)), Err(PageError::Limit));
        assert_eq!(PageQuery::new(None, None, Some(201)), Err(PageError::Limit));
        assert_eq!(PageQuery::new(None, Some(0), Some(200)).unwrap().limit, 200);
        let max = crate::limits::MAX_SEQ;
        assert!(PageQuery::new(Some(max), None, None).is_ok());
        assert!(PageQuery::new(None, Some(max), None).is_ok());
        for big in [max + 1, u64::MAX] {
            assert_eq!(
                PageQuery::new(None, Some(big), None),
                Err(PageError::OutOfRange)
            );
            assert_eq!(
                PageQuery::new(Some(big), None, None),
                Err(PageError::OutOfRange)
            );
        }
        assert_eq!(
            PageQuery::new(None, None, Some(u64::MAX)),
            Err(PageError::Limit)
        );
    }
}
