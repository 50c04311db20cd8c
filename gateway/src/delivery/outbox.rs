//! A socket's outbound queue: frames waiting for its writer, a close request,
//! and the slow-consumer flag. Pushing never waits (the pub/sub reader must not
//! stall on one socket); a full queue flags the socket as a slow consumer.
//! "Full" counts both frames and bytes: a client that stops reading while it
//! asks for big history pages must not hold megabytes per request.
//! The queue allocates only while frames wait and gives the memory back when it
//! drains after a burst, so an idle socket costs next to nothing here.

use std::{collections::VecDeque, sync::Mutex};

use axum::extract::ws::Utf8Bytes;
use tokio::sync::Notify;

use super::seen::{Mark, Seen};

/// A close code and reason.
pub type Close = (u16, &'static str);

/// What the writer should do next.
#[derive(Debug)]
pub enum Next {
    Frame(Utf8Bytes),
    Close(Close),
    /// The session ended: flush and close normally.
    Finished,
}

pub struct Outbox {
    state: Mutex<State>,
    ready: Notify,
    slow: Notify,
    limit: usize,
    byte_limit: usize,
}

#[derive(Default)]
struct State {
    frames: VecDeque<Utf8Bytes>,
    /// Bytes of the frames queued.
    bytes: usize,
    close: Option<Close>,
    finished: bool,
    overflowed: bool,
    /// While the session greets (`hello`, `offline`), only greeting frames
    /// are written: a live delivery that arrives meanwhile waits behind them.
    greeting: bool,
    /// Greeting frames at the head of `frames`.
    greeting_queued: usize,
    /// What this socket was handed per conversation (allocated on the
    /// first delivery that belongs to one).
    seen: Option<Box<Seen>>,
}

/// Queues that grew past this are freed once empty.
const KEEP_CAPACITY: usize = 32;

impl Outbox {
    /// A queue of at most `limit` frames and no byte bound (tests).
    pub fn new(limit: usize) -> Self {
        Self::bounded(limit, usize::MAX)
    }

    /// A queue of at most `limit` frames and `byte_limit` bytes. One frame is
    /// always accepted into an empty queue, whatever its size: frames are
    /// bounded where they are made (history pages, MAX_FRAME_BYTES).
    pub fn bounded(limit: usize, byte_limit: usize) -> Self {
        Self {
            state: Mutex::default(),
            ready: Notify::new(),
            slow: Notify::new(),
            limit,
            byte_limit,
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Queues a frame. Returns false if it was not queued: the socket is
    /// closing, or the queue is full (then the socket is a slow consumer).
    pub fn push(&self, frame: Utf8Bytes) -> bool {
        self.push_all(std::iter::once(frame)) == 1
    }

    /// Queues frames in order under one lock, waking the writer once. Returns
    /// how many were queued: fewer when the socket is closing or the queue
    /// filled up (then the socket is a slow consumer).
    pub fn push_all(&self, frames: impl IntoIterator<Item = Utf8Bytes>) -> usize {
        self.push_marked(None, frames.into_iter().map(|f| (None, f)))
    }

    /// As [`Self::push_all`], for frames of conversation `key` (see
    /// `seen.rs`): a marked frame this socket was handed already is left
    /// out, unqueued and uncounted.
    pub fn push_marked(
        &self,
        key: Option<u64>,
        frames: impl IntoIterator<Item = (Option<Mark>, Utf8Bytes)>,
    ) -> usize {
        let mut state = self.state();
        if state.finished || state.overflowed {
            return 0;
        }
        let mut queued = 0;
        for (mark, frame) in frames {
            if let (Some(key), Some(mark)) = (key, mark)
                && !state.seen.get_or_insert_default().admit(key, mark)
            {
                continue;
            }
            let over_bytes =
                !state.frames.is_empty() && state.bytes + frame.len() > self.byte_limit;
            if state.frames.len() >= self.limit || over_bytes {
                state.overflowed = true;
                drop(state);
                metrics::counter!("gateway_slow_consumers_total").increment(1);
                self.slow.notify_one();
                if queued > 0 {
                    self.ready.notify_one();
                }
                return queued;
            }
            state.bytes += frame.len();
            state.frames.push_back(frame);
            queued += 1;
        }
        drop(state);
        if queued > 0 {
            self.ready.notify_one();
        }
        queued
    }

    /// Whether a frame marked `mark` in conversation `key` is new to this
    /// socket (recording it): for the offline batch, whose messages a live
    /// delivery may have brought already.
    pub fn admit(&self, key: u64, mark: Mark) -> bool {
        self.state().seen.get_or_insert_default().admit(key, mark)
    }

    /// From now until [`Self::end_greeting`], frames pushed with
    /// [`Self::push_greeting`] go out first and nothing else is written, so
    /// the protocol's first two frames are `hello` and `offline` even when a
    /// live delivery reaches the socket between them.
    pub fn begin_greeting(&self) {
        self.state().greeting = true;
    }

    /// Queues a greeting frame ahead of every frame pushed meanwhile.
    pub fn push_greeting(&self, frame: Utf8Bytes) {
        let mut state = self.state();
        let at = state.greeting_queued;
        state.bytes += frame.len();
        state.frames.insert(at, frame);
        state.greeting_queued += 1;
        drop(state);
        self.ready.notify_one();
    }

    /// The greeting is queued: everything else may follow.
    pub fn end_greeting(&self) {
        self.state().greeting = false;
        self.ready.notify_one();
    }

    /// Asks the writer to close with `close` after the frames already queued.
    pub fn close(&self, close: Close) {
        self.state().close.get_or_insert(close);
        self.ready.notify_one();
    }

    /// The session is over: the writer flushes and closes normally.
    pub fn finish(&self) {
        self.state().finished = true;
        self.ready.notify_one();
    }

    /// The next thing to write, if any is waiting.
    pub fn try_next(&self) -> Option<Next> {
        let mut state = self.state();
        if state.greeting && state.greeting_queued == 0 && state.close.is_none() {
            return None;
        }
        state.greeting_queued = state.greeting_queued.saturating_sub(1);
        if let Some(frame) = state.frames.pop_front() {
            state.bytes -= frame.len();
            if state.frames.is_empty() && state.frames.capacity() > KEEP_CAPACITY {
                state.frames = VecDeque::new();
            }
            return Some(Next::Frame(frame));
        }
        if let Some(close) = state.close.take() {
            return Some(Next::Close(close));
        }
        state.finished.then_some(Next::Finished)
    }

    /// Waits for the next thing to write.
    pub async fn next(&self) -> Next {
        loop {
            if let Some(next) = self.try_next() {
                return next;
            }
            // A push between the check and here leaves a permit: no lost wakeup.
            self.ready.notified().await;
        }
    }

    /// Completes once the queue has overflowed.
    pub async fn overflowed(&self) {
        self.slow.notified().await;
    }

    pub fn len(&self) -> usize {
        self.state().frames.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn frame(s: &'static str) -> Utf8Bytes {
        Utf8Bytes::from_static(s)
    }

    #[tokio::test]
    async fn frames_then_close_then_nothing() {
        let o = Outbox::new(4);
        assert!(o.push(frame("a")));
        o.close((4000, "bye"));
        assert!(o.push(frame("b")));
        assert!(matches!(o.next().await, Next::Frame(f) if f.as_str() == "a"));
        assert!(matches!(o.next().await, Next::Frame(f) if f.as_str() == "b"));
        assert!(matches!(o.next().await, Next::Close((4000, _))));
        assert!(o.try_next().is_none());
        o.finish();
        assert!(matches!(o.next().await, Next::Finished));
        assert!(!o.push(frame("late")));
    }

    #[tokio::test]
    async fn overflow_flags_a_slow_consumer_and_refuses_more() {
        let o = Outbox::new(2);
        assert!(o.push(frame("1")) && o.push(frame("2")));
        assert!(!o.push(frame("3")));
        tokio::time::timeout(Duration::from_secs(1), o.overflowed())
            .await
            .expect("flagged");
        assert!(!o.push(frame("4")));
        assert_eq!(o.len(), 2);
    }

    #[tokio::test]
    async fn push_all_queues_in_order_up_to_the_limit() {
        let o = Outbox::new(3);
        assert_eq!(o.push_all([frame("1"), frame("2")]), 2);
        assert_eq!(o.push_all([frame("3"), frame("4"), frame("5")]), 1);
        assert_eq!(o.push_all([frame("6")]), 0, "a slow consumer takes no more");
        for want in ["1", "2", "3"] {
            assert!(matches!(o.try_next(), Some(Next::Frame(f)) if f.as_str() == want));
        }
        tokio::time::timeout(Duration::from_secs(1), o.overflowed())
            .await
            .expect("flagged");
    }

    #[tokio::test]
    async fn bytes_bound_the_queue_as_well_as_frames() {
        let o = Outbox::bounded(100, 10);
        let big = Utf8Bytes::from("x".repeat(25));
        assert!(o.push(big.clone()), "one frame fits an empty queue");
        assert!(!o.push(frame("y")), "then the byte bound is reached");
        tokio::time::timeout(Duration::from_secs(1), o.overflowed())
            .await
            .expect("flagged");

        let o = Outbox::bounded(100, 10);
        assert_eq!(o.push_all([frame("12345"), frame("6789")]), 2);
        assert!(matches!(o.try_next(), Some(Next::Frame(_))));
        assert!(o.push(frame("abcde")), "draining gives bytes back");
        assert_eq!(o.state().bytes, 9);
    }

    #[tokio::test]
    async fn a_drained_burst_gives_its_memory_back() {
        let o = Outbox::new(1000);
        for _ in 0..500 {
            o.push(frame("x"));
        }
        while o.try_next().is_some() {}
        assert!(o.state().frames.capacity() <= KEEP_CAPACITY);
    }

    #[tokio::test]
    async fn greeting_frames_go_first_and_hold_the_rest_until_done() {
        let o = Outbox::new(8);
        o.begin_greeting();
        o.push_greeting(frame("hello"));
        o.push(frame("live"));
        assert!(matches!(o.try_next(), Some(Next::Frame(f)) if f.as_str() == "hello"));
        assert!(o.try_next().is_none(), "a delivery waits for the greeting");
        o.push_greeting(frame("offline"));
        assert!(matches!(o.try_next(), Some(Next::Frame(f)) if f.as_str() == "offline"));
        assert!(o.try_next().is_none());
        o.end_greeting();
        assert!(matches!(o.try_next(), Some(Next::Frame(f)) if f.as_str() == "live"));
    }

    #[tokio::test]
    async fn a_frame_handed_once_is_not_queued_again() {
        let o = Outbox::new(8);
        let c = Some(crate::delivery::seen::key("room:a"));
        let marked = |seq| (Some(Mark::Seq(seq)), frame("m"));
        assert_eq!(o.push_marked(c, [marked(1), marked(2)]), 2);
        assert_eq!(o.push_marked(c, [marked(2), marked(1), marked(3)]), 1);
        assert_eq!(
            o.push_marked(c, [(None, frame("sent"))]),
            1,
            "unmarked frames pass"
        );
        assert_eq!(o.len(), 4);
        assert!(!o.admit(crate::delivery::seen::key("room:a"), Mark::Seq(3)));
    }

    #[tokio::test]
    async fn a_waiting_writer_wakes_on_push() {
        let o = std::sync::Arc::new(Outbox::new(4));
        let waiter = tokio::spawn({
            let o = o.clone();
            async move { o.next().await }
        });
        tokio::task::yield_now().await;
        o.push(frame("hello"));
        let next = tokio::time::timeout(Duration::from_secs(1), waiter)
            .await
            .unwrap()
            .unwrap();
        assert!(matches!(next, Next::Frame(f) if f.as_str() == "hello"));
    }
}
