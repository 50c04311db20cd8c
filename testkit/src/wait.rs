//! Waiting on conditions with a deadline, never a bare sleep.

use std::{future::Future, time::Duration};

/// Polls `check` every 20 ms until it returns Some, or panics after `deadline`
/// naming `what`.
pub async fn eventually<T, F, Fut>(what: &str, deadline: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let end = tokio::time::Instant::now() + deadline;
    loop {
        if let Some(v) = check().await {
            return v;
        }
        if tokio::time::Instant::now() >= end {
            panic!("timed out after {deadline:?} waiting for {what}");
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
    let http = reqwest::Client::new();
    eventually(what, deadline, || {
        let request = http.get(url).send();
        async move { request.await.ok()?.status().is_success().then_some(()) }
    })
    .await;
}
