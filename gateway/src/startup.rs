//! Builds the gateway (Redis, upstream channels, presence, pub/sub) and serves
//! HTTP and WebSocket until shutdown, then closes sockets with 1012 and drains
//! within SHUTDOWN_GRACE_MS.

use std::{sync::Arc, time::Duration};

use axum::{
    Router,
    extract::{DefaultBodyLimit, State},
    http::header,
    response::{Html, IntoResponse},
    routing::get,
    serve::ListenerExt,
};
use common::{
    grpc::lazy_channel,
    keys::Keys,
    ops::{self, Readiness},
    redis_conn,
    shutdown::{Shutdown, shutdown_signal},
};
use proto::{
    history::v1::history_service_client::HistoryServiceClient,
    user::v1::user_service_client::UserServiceClient,
};
use tokio::{net::TcpListener, sync::watch};
use tonic_health::pb::{HealthCheckRequest, health_client::HealthClient};

use crate::{
    api::{self, error::ApiError},
    config::Config,
    hub::Hub,
    presence::Presence,
    pubsub,
    state::{AppState, Shared},
    ws,
};

#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error("cannot connect to Redis: {0}")]
    Redis(#[from] redis::RedisError),
    #[error("bad upstream URL: {0}")]
    Upstream(#[from] tonic::transport::Error),
    #[error(transparent)]
    Bind(#[from] ops::BindError),
    #[error("server: {0}")]
    Serve(#[from] std::io::Error),
}

/// Largest REST request body.
const MAX_API_BODY: usize = 16 * 1024;

pub struct Application {
    listener: TcpListener,
    config: Config,
    redis: redis::aio::ConnectionManager,
}

impl Application {
    pub async fn build(config: Config) -> Result<Self, StartupError> {
        let redis =
            redis_conn::connect_with_retry(&config.redis_url, Duration::from_secs(30)).await?;
        let listener = ops::bind(config.listen_addr).await?;
        Ok(Self {
            listener,
            config,
            redis,
        })
    }

    pub fn port(&self) -> u16 {
        ops::port_of(&self.listener)
    }

    pub async fn run_until_stopped(self) -> Result<(), StartupError> {
        self.run_until(shutdown_signal()).await
    }

    pub async fn run_until(
        self,
        signal: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> Result<(), StartupError> {
        let shutdown = Shutdown::new(signal);
        let config = Arc::new(self.config);
        let keys = Keys::new(config.redis_prefix.clone());
        let hub = Arc::new(Hub::default());
        let presence = Presence::new(self.redis.clone(), keys.clone(), config.gateway_id.clone());
        presence.start().await?;
        let (subscribed_tx, subscribed) = watch::channel(false);
        let pubsub = tokio::spawn(pubsub::run(
            config.redis_url.clone(),
            keys.gateway_channel(&config.gateway_id),
            hub.clone(),
            subscribed_tx,
            shutdown.clone(),
        ));
        let heartbeat = tokio::spawn(presence.clone().heartbeat(hub.clone(), shutdown.clone()));

        let user_channel = lazy_channel(&config.user_service_url)?;
        let history_channel = lazy_channel(&config.history_service_url)?;
        let state = AppState::new(Shared {
            config: config.clone(),
            keys,
            redis: self.redis,
            users: UserServiceClient::new(user_channel.clone()),
            history: HistoryServiceClient::new(history_channel.clone()),
            user_channel,
            history_channel,
            hub: hub.clone(),
            presence,
            shutdown: shutdown.clone(),
            subscribed,
        });
        let app = router(state);
        tracing::info!(
            addr = %self.listener.local_addr().map(|a| a.to_string()).unwrap_or_default(),
            gateway = %config.gateway_id,
            "gateway listening"
        );
        // Nagle off: WebSocket frames are flushed in batches already, and a
        // lone small frame must not wait for the client's delayed ACK.
        let listener = self.listener.tap_io(|tcp| {
            let _ = tcp.set_nodelay(true);
        });
        axum::serve(
            listener,
            app.into_make_service_with_connect_info::<std::net::SocketAddr>(),
        )
        .with_graceful_shutdown(shutdown.clone().wait())
        .await?;

        // Sockets were told 1012 by their writers; give them the grace period.
        let deadline =
            tokio::time::Instant::now() + Duration::from_millis(config.shutdown_grace_ms);
        while hub.connections() > 0 && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let _ = tokio::time::timeout_at(deadline, heartbeat).await;
        pubsub.abort();
        tracing::info!(open = hub.connections(), "gateway stopped");
        Ok(())
    }
}

pub fn router(state: AppState) -> Router {
    let ready = readiness(state.clone());
    Router::new()
        .route("/", get(index))
        .route("/ws", get(ws::upgrade))
        .merge(api::router())
        .fallback(not_found)
        .layer(DefaultBodyLimit::max(MAX_API_BODY))
        .with_state(state)
        .merge(ops::router(ready))
}

async fn index(State(_): State<AppState>) -> impl IntoResponse {
    (
        [(header::CACHE_CONTROL, "no-cache")],
        Html(include_str!("web/index.html")),
    )
}

async fn not_found() -> ApiError {
    ApiError::NotFound("no such route".into())
}

/// Ready when Redis answers, the delivery subscription is live, and both
/// upstreams report SERVING.
fn readiness(state: AppState) -> ops::ReadyCheck {
    Arc::new(move || {
        let state = state.clone();
        Box::pin(async move {
            let mut redis = state.redis.clone();
            if let Err(e) = redis_conn::ping(&mut redis).await {
                return Readiness::Unavailable(e);
            }
            if !*state.subscribed.borrow() {
                return Readiness::Unavailable("pub/sub not subscribed".into());
            }
            for (name, channel) in [
                ("user-service", &state.user_channel),
                ("history-service", &state.history_channel),
            ] {
                let check = HealthClient::new(channel.clone())
                    .check(HealthCheckRequest {
                        service: String::new(),
                    })
                    .await;
                if let Err(e) = check {
                    return Readiness::Unavailable(format!("{name}: {}", e.message()));
                }
            }
            Readiness::Ready
        })
    })
}
