//! Builds the gateway (Redis, upstream channels, presence, pub/sub) and serves
//! HTTP and WebSocket until shutdown, then closes sockets with 1012 and drains
//! within SHUTDOWN_GRACE_MS.

use std::{sync::Arc, time::Duration};

use axum::{Router, extract::DefaultBodyLimit, serve::ListenerExt};
use chat_redis::{
    connection,
    keys::Keys,
    presence::{GatewayPresence, Lookup},
};
use proto::{
    history::{
        internal::v1::history_internal_client::HistoryInternalClient,
        v1::history_service_client::HistoryServiceClient,
    },
    user::v1::user_service_client::UserServiceClient,
};
use service_kit::{
    grpc::internal_channel,
    ops::{self, Readiness},
    service::{Listeners, Service, ServiceArgs, StartupError},
    shutdown::{Shutdown, shutdown_signal},
};
use tokio::sync::watch;
use tonic_health::pb::{HealthCheckRequest, health_client::HealthClient};

use crate::{
    access_log,
    api::{self, error::ApiError},
    backpressure,
    config::Config,
    hub::Hub,
    pubsub,
    state::{AppState, Shared},
    ws::caps::ConnCaps,
};

/// Largest REST request body.
const MAX_API_BODY: usize = 16 * 1024;

pub struct Application {
    listeners: Listeners,
    config: Config,
    redis: chat_redis::connection::Redis,
}

impl Service for Application {
    type Config = Config;
    const NAME: &'static str = "gateway";

    fn args(config: &Config) -> &ServiceArgs {
        &config.service
    }

    async fn build(config: Config) -> Result<Self, StartupError> {
        Application::build(config).await
    }

    async fn run_until(
        self,
        signal: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> Result<(), StartupError> {
        Application::run_until(self, signal).await
    }
}

impl Application {
    pub async fn build(config: Config) -> Result<Self, StartupError> {
        service_kit::metrics_catalog::register(&crate::metrics::catalog());
        let redis =
            connection::connect_with_retry(&config.redis.target(), Duration::from_secs(30)).await?;
        let listeners = Listeners::bind(
            "gateway",
            &[
                ("http", config.listen_addr),
                ("ops", config.service.ops_addr),
            ],
        )
        .await?;
        Ok(Self {
            listeners,
            config,
            redis,
        })
    }

    pub fn port(&self) -> u16 {
        self.listeners.port("http")
    }

    /// The port of /readyz and /metrics (not reachable through the public one).
    pub fn ops_port(&self) -> u16 {
        self.listeners.port("ops")
    }

    pub async fn run_until_stopped(self) -> Result<(), StartupError> {
        self.run_until(shutdown_signal()).await
    }

    pub async fn run_until(
        self,
        signal: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> Result<(), StartupError> {
        let shutdown = Shutdown::new(signal);
        let mut listeners = self.listeners;
        let _ready = listeners.announce(self.config.service.ready_file.as_deref())?;
        tracing::info!(gateway = %self.config.gateway_id, "gateway id");
        let config = Arc::new(self.config);
        let keys = config.redis.keys();
        let hub = Arc::new(Hub::default());
        let (presence, presence_writer) =
            GatewayPresence::new(self.redis.clone(), keys.clone(), config.gateway_id.clone());
        let presence = presence.sweeping_after(2 * config.gateway_ttl_ms);
        presence.start().await?;
        let (subscribed_tx, subscribed) = watch::channel(false);
        let pubsub = tokio::spawn(pubsub::run(
            config.redis.target(),
            pubsub::Channel {
                name: keys.gateway_channel(&config.gateway_id),
                probe_key: keys.gateway_delivery_seq(&config.gateway_id),
            },
            hub.clone(),
            subscribed_tx,
            shutdown.clone(),
        ));
        let heartbeat = tokio::spawn(presence.clone().run(
            presence_writer,
            hub.clone(),
            shutdown.clone(),
        ));
        let state = shared_state(Parts {
            config: config.clone(),
            keys,
            redis: self.redis,
            hub: hub.clone(),
            presence,
            subscribed,
            shutdown: shutdown.clone(),
        })?;
        let ops_server = tokio::spawn(ops::serve(
            listeners.take("ops"),
            ops::router(readiness(state.clone())),
            shutdown.clone().wait(),
        ));
        // Nagle off: WebSocket frames are flushed in batches already, and a
        // lone small frame must not wait for the client's delayed ACK.
        let listener = listeners.take("http").tap_io(|tcp| {
            let _ = tcp.set_nodelay(true);
        });
        axum::serve(
            listener,
            router(state).into_make_service_with_connect_info::<std::net::SocketAddr>(),
        )
        .with_graceful_shutdown(shutdown.clone().wait())
        .await
        .map_err(|e| StartupError::serve("HTTP", e))?;

        // Sockets were told 1012 by their writers; give them the grace period.
        let deadline =
            tokio::time::Instant::now() + Duration::from_millis(config.shutdown_grace_ms);
        while hub.connections() > 0 && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let _ = tokio::time::timeout_at(deadline, heartbeat).await;
        let _ = tokio::time::timeout_at(deadline, ops_server).await;
        pubsub.abort();
        tracing::info!(open = hub.connections(), "gateway stopped");
        Ok(())
    }
}

/// What the shared state is made of, besides the upstream clients.
struct Parts {
    config: Arc<Config>,
    keys: Keys,
    redis: chat_redis::connection::Redis,
    hub: Arc<Hub>,
    presence: GatewayPresence,
    subscribed: watch::Receiver<bool>,
    shutdown: Shutdown,
}

/// The state every handler shares: upstream clients, caps, presence, and
/// the ingress backlog (polled in the background for backpressure).
fn shared_state(p: Parts) -> Result<AppState, StartupError> {
    let token = p.config.service_token.get();
    let user_channel = internal_channel(&p.config.user_service_url, token)?;
    let history_channel = internal_channel(&p.config.history_service_url, token)?;
    let ingress = Arc::new(backpressure::Ingress::default());
    let appender = crate::ws::appender::Appender::start(
        p.redis.clone(),
        std::time::Duration::from_millis(p.config.ingress_linger_ms),
    );
    tokio::spawn(backpressure::poll(
        p.redis.clone(),
        (0..p.config.ingress_partitions)
            .map(|i| p.keys.ingress(i))
            .collect(),
        ingress.clone(),
        p.shutdown.clone(),
    ));
    Ok(AppState::new(Shared {
        caps: Arc::new(ConnCaps::new(
            p.config.max_connections_per_user,
            p.config.max_connections_per_ip,
        )),
        lookup: Lookup::new(p.keys.clone(), p.config.gateway_ttl_ms),
        reads: crate::reads::Reads::new(p.keys.clone()),
        summaries: chat_redis::summary::Summaries::new(p.keys.clone()),
        config: p.config,
        keys: p.keys,
        redis: p.redis,
        users: UserServiceClient::new(user_channel.clone()),
        history: HistoryServiceClient::new(history_channel.clone()),
        history_internal: HistoryInternalClient::new(history_channel.clone()),
        user_channel,
        history_channel,
        hub: p.hub,
        ingress,
        appender,
        presence: p.presence,
        shutdown: p.shutdown,
        subscribed: p.subscribed,
    }))
}

/// The public routes. `/readyz` and `/metrics` are not among them: they say
/// what the system depends on and how busy it is, so they live on OPS_ADDR.
pub fn router(state: AppState) -> Router {
    api::router()
        .fallback(not_found)
        .layer(DefaultBodyLimit::max(MAX_API_BODY))
        .layer(axum::middleware::from_fn(access_log::log))
        .with_state(state)
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
            if let Err(e) = connection::ping(&mut redis).await {
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
