//! Whether the worker is getting anywhere. A batch that keeps failing is
//! retried forever (each step is idempotent), and the process stays up; the
//! operator must still see it. `/readyz` turns unavailable once the worker has
//! failed on the same work for longer than STALL_TIMEOUT_MS.

use std::sync::atomic::{AtomicI64, Ordering};

use chat_model::time::now_ms;

/// When the current run of failures began (0: not failing).
#[derive(Default)]
pub struct Progress {
    failing_since: AtomicI64,
}

impl Progress {
    /// A batch went through, or there was nothing to do.
    pub fn advanced(&self) {
        self.failing_since.store(0, Ordering::Relaxed);
    }

    /// A batch failed; the stall clock starts at the first failure.
    pub fn failed(&self) {
        let _ =
            self.failing_since
                .compare_exchange(0, now_ms(), Ordering::Relaxed, Ordering::Relaxed);
    }

    /// For how long the worker has failed without progress, if past `limit_ms`.
    pub fn stalled_for(&self, limit_ms: i64) -> Option<i64> {
        let since = self.failing_since.load(Ordering::Relaxed);
        let stalled = now_ms() - since;
        (since != 0 && stalled >= limit_ms).then_some(stalled)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_run_of_failures_stalls_and_progress_clears_it() {
        let p = Progress::default();
        assert_eq!(p.stalled_for(0), None);
        p.failed();
        assert!(p.stalled_for(0).is_some());
        assert_eq!(p.stalled_for(60_000), None, "not for long yet");
        p.advanced();
        assert_eq!(p.stalled_for(0), None);
    }
}
