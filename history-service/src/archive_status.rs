//! What the archiver last saw of MongoDB: /readyz reports `degraded` while
//! the archive is unreachable (chat goes on; the backlog waits in Redis).

use std::sync::{
    Mutex,
    atomic::{AtomicBool, Ordering},
};

/// What the archiver last saw of MongoDB, for /readyz.
#[derive(Default)]
pub struct ArchiveStatus {
    healthy: AtomicBool,
    last_error: Mutex<Option<String>>,
}

impl ArchiveStatus {
    pub fn healthy(&self) -> Result<(), String> {
        if self.healthy.load(Ordering::Relaxed) {
            Ok(())
        } else {
            Err(self
                .last_error
                .lock()
                .map(|e| e.clone())
                .unwrap_or_default()
                .unwrap_or_else(|| "archive not reached yet".to_owned()))
        }
    }

    pub(crate) fn set(&self, result: Result<(), String>) {
        self.healthy.store(result.is_ok(), Ordering::Relaxed);
        if let Ok(mut last) = self.last_error.lock() {
            *last = result.err();
        }
    }
}
