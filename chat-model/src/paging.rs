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

/// History seen from a floor: a member of a room that shows history since
/// joining reads only seqs above the room's last seq at their join.
impl PageQuery {
    /// The query to run for a reader whose history starts above `floor`: an
    /// oldest-first page starts there at the earliest.
    pub fn from_floor(mut self, floor: u64) -> Self {
        if floor > 0
            && let Some(after) = self.after
        {
            self.after = Some(after.max(floor));
        }
        self
    }

    /// The page's messages (as answered for [`Self::from_floor`]) that the
    /// reader may see, and whether there is more: a newest-first page that
    /// reached the floor has nothing more to show.
    pub fn cut_at_floor<T>(
        &self,
        floor: u64,
        messages: Vec<T>,
        has_more: bool,
        seq: impl Fn(&T) -> u64,
    ) -> (Vec<T>, bool) {
        if floor == 0 || self.after.is_some() {
            return (messages, has_more);
        }
        let answered = messages.len();
        let kept: Vec<T> = messages.into_iter().filter(|m| seq(m) > floor).collect();
        let reached = kept.len() < answered || kept.iter().any(|m| seq(m) == floor + 1);
        (kept, has_more && !reached)
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

    #[test]
    fn a_floor_hides_what_came_before_it_on_every_kind_of_page() {
        let floor = 10;
        let latest = PageQuery::new(None, None, Some(5)).unwrap();
        assert_eq!(latest.from_floor(floor), latest);
        // Newest first, reaching below the floor: cut, and nothing more.
        let (kept, more) = latest.cut_at_floor(floor, vec![13, 12, 11, 10, 9], true, |s| *s);
        assert_eq!((kept, more), (vec![13, 12, 11], false));
        // Ending exactly at the floor: nothing more either.
        let (kept, more) = latest.cut_at_floor(floor, vec![15, 14, 13, 12, 11], true, |s| *s);
        assert_eq!((kept, more), (vec![15, 14, 13, 12, 11], false));
        // Well above it: untouched.
        let (kept, more) = latest.cut_at_floor(floor, vec![30, 29], true, |s| *s);
        assert_eq!((kept, more), (vec![30, 29], true));
        // Before a seq under the floor: nothing.
        let before = PageQuery::new(Some(8), None, None).unwrap();
        let (kept, more) = before.cut_at_floor(floor, vec![7, 6], true, |s| *s);
        assert_eq!((kept, more), (Vec::<u64>::new(), false));
        // Oldest first: starts at the floor, and its has_more stands.
        let after = PageQuery::new(None, Some(3), Some(2)).unwrap();
        let clamped = after.from_floor(floor);
        assert_eq!(clamped.after, Some(10));
        let (kept, more) = clamped.cut_at_floor(floor, vec![11, 12], true, |s| *s);
        assert_eq!((kept, more), (vec![11, 12], true));
        assert_eq!(
            PageQuery::new(None, Some(40), None)
                .unwrap()
                .from_floor(floor)
                .after,
            Some(40)
        );
        // No floor: nothing changes.
        let (kept, more) = latest.cut_at_floor(0, vec![2, 1], true, |s| *s);
        assert_eq!((kept, more), (vec![2, 1], true));
    }
}
