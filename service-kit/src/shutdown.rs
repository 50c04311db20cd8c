//! The one shutdown signal every service waits on: Ctrl-C or SIGTERM.

/// Completes on Ctrl-C or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(e) = tokio::signal::ctrl_c().await {
            tracing::error!(error = %e, "cannot listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut sig) => {
                sig.recv().await;
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();

    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
    tracing::info!("shutdown signal received");
}

/// A shutdown trigger that many tasks can wait on.
#[derive(Clone, Debug)]
pub struct Shutdown(tokio::sync::watch::Receiver<bool>);

impl Shutdown {
    /// Fires when `signal` completes.
    pub fn new(signal: impl std::future::Future<Output = ()> + Send + 'static) -> Self {
        let (tx, rx) = tokio::sync::watch::channel(false);
        tokio::spawn(async move {
            signal.await;
            let _ = tx.send(true);
            // Keep the sender alive so receivers see `true` rather than a closed channel.
            tx.closed().await;
        });
        Self(rx)
    }

    /// Completes once shutdown has been triggered.
    pub async fn wait(mut self) {
        let _ = self.0.wait_for(|fired| *fired).await;
    }

    pub fn is_triggered(&self) -> bool {
        *self.0.borrow()
    }
}
