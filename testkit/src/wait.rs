//! Waiting on conditions with a deadline, never a bare sleep.

use std::{future::Future, time::Duration};

/// Polls `check` every 20 ms until it returns Some, or panics after `deadline`
/// naming `what`.
pub async fn eventually<T, F, Fut>(what: &str, deadline: Duration, check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    poll_until(deadline, check)
        .await
        .unwrap_or_else(|| panic!("timed out after {deadline:?} waiting for {what}"))
}

/// Polls `check` every 20 ms until it returns Some, or gives None after
/// `deadline`, for callers that explain a timeout themselves.
pub async fn poll_until<T, F, Fut>(deadline: Duration, mut check: F) -> Option<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let end = tokio::time::Instant::now() + deadline;
    loop {
        if let Some(v) = check().await {
            return Some(v);
        }
        if tokio::time::Instant::now() >= end {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Awaits `fut`, or panics after `deadline` naming `what`.
pub async fn within<T>(what: &str, deadline: Duration, fut: impl Future<Output = T>) -> T {
    tokio::time::timeout(deadline, fut)
        .await
        .unwrap_or_else(|_| panic!("timed out after {deadline:?} waiting for {what}"))
}

/// Polls `url` until it answers 2xx, or panics after `deadline` naming `what`.
pub async fn http_ok(what: &str, url: &str, deadline: Duration) {
    if !answers_ok(url, deadline).await {
        panic!("timed out after {deadline:?} waiting for {what}");
    }
}

/// Whether `url` answers 2xx within `deadline`, polling.
pub async fn answers_ok(url: &str, deadline: Duration) -> bool {
    let http = reqwest::Client::new();
    poll_until(deadline, || {
        let request = http.get(url).send();
        async move { request.await.ok()?.status().is_success().then_some(()) }
    })
    .await
    .is_some()
}
