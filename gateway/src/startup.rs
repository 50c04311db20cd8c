//! Builds the gateway (Redis, upstream channels, presence, pub/sub) and serves
//! HTTP and WebSocket until shutdown, then closes sockets with 1012 and drains
//! within SHUTDOWN_GRACE_MS.

use std::{sync::Arc, time::Duration};

use axum::serve::ListenerExt;
use chat_redis::{
    connection::{self, Redis},
    keys::Keys,
    presence::{GatewayPresence, Lookup},
    sessions::Revocations,
};
use service_kit::{
    auth::InternalChannel,
    grpc::internal_channel,
    ops::{self, Readiness},
    service::{Listeners, Service, ServiceArgs, StartupError},
    shutdown::{Shutdown, shutdown_signal},
};
use tokio::sync::watch;
use tonic_health::pb::{HealthCheckRequest, health_client::HealthClient};

use crate::{
    config::Config,
    delivery::{caps::ConnCaps, hub::Hub, pubsub, revocations::RevocationListener},
    domain::{
        HistoryClient, HistoryInternal, UserClient, access::Access, accounts::Accounts,
        conversations::Conversations, erasure::Erasure, export::Export, history::History,
        limits::Limits, offline::OfflineQueue, reads::Reads, rooms::Rooms, sessions::UserSessions,
        tickets::Tickets, tokens::Tokens,
    },
    http::extract::ProxyTrust,
    ingress::{Ingress, appender::Appender, backlog, quota::AccountQuota},
    routes,
    session::{self, Sessions},
    state::{AppState, Shared},
    stream::{forward::Forwarded, registry::Streams},
};

pub struct Application {
    listeners: Listeners,
    config: Config,
    redis: Redis,
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
            connection::connect_with_retry(&config.redis.endpoints(), Duration::from_secs(30))
                .await?;
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
            config.redis.endpoints(),
            pubsub::Channel {
                name: keys.gateway_channel(&config.gateway_id),
                probe_key: keys.gateway_delivery_seq(&config.gateway_id),
            },
            pubsub::Deliveries::new(hub.clone()),
            subscribed_tx,
            shutdown.clone(),
        ));
        // Readiness follows the delivery subscription; this one's state is
        // only logged (a missed revocation is caught by the next sweep).
        let revocations = Revocations::new(self.redis.clone(), keys.clone());
        let revocations_task = tokio::spawn(pubsub::run(
            config.redis.endpoints(),
            pubsub::Channel {
                name: keys.revocations_channel(),
                probe_key: keys.revocations_probe(),
            },
            RevocationListener::new(hub.clone(), revocations.clone()),
            watch::channel(false).0,
            shutdown.clone(),
        ));
        let heartbeat = tokio::spawn(presence.clone().run(
            presence_writer,
            hub.clone(),
            shutdown.clone(),
        ));
        let streams = Streams::new(
            config.gateway_id.clone(),
            config.jwt.get().expose(),
            self.redis.clone(),
            keys.clone(),
        );
        let inbound_task = tokio::spawn(pubsub::run(
            config.redis.endpoints(),
            pubsub::Channel {
                name: keys.gateway_inbound(&config.gateway_id),
                probe_key: keys.gateway_delivery_seq(&config.gateway_id),
            },
            Forwarded::new(streams.clone()),
            watch::channel(false).0,
            shutdown.clone(),
        ));
        let upstreams = Upstreams::connect(&config)?;
        let state = shared_state(Parts {
            config: config.clone(),
            keys,
            redis: self.redis.clone(),
            revocations,
            streams,
            hub: hub.clone(),
            presence,
            shutdown: shutdown.clone(),
            upstreams: &upstreams,
        });
        let ready = readiness(self.redis, subscribed, upstreams);
        let ops_server = tokio::spawn(ops::serve(
            listeners.take("ops"),
            ops::router(ready),
            shutdown.clone().wait(),
        ));
        // Nagle off: WebSocket frames are flushed in batches already, and a
        // lone small frame must not wait for the client's delayed ACK.
        let listener = listeners.take("http").tap_io(|tcp| {
            let _ = tcp.set_nodelay(true);
        });
        axum::serve(
            listener,
            routes::app(state).into_make_service_with_connect_info::<std::net::SocketAddr>(),
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
        revocations_task.abort();
        inbound_task.abort();
        tracing::info!(open = hub.connections(), "gateway stopped");
        Ok(())
    }
}

/// The upstream channels, and their clients.
struct Upstreams {
    user_channel: InternalChannel,
    history_channel: InternalChannel,
}

impl Upstreams {
    fn connect(config: &Config) -> Result<Self, StartupError> {
        let token = config.service_token.get().expose();
        Ok(Self {
            user_channel: internal_channel(&config.user_service_url, token)?,
            history_channel: internal_channel(&config.history_service_url, token)?,
        })
    }

    fn users(&self) -> UserClient {
        UserClient::new(self.user_channel.clone())
    }

    fn history(&self) -> HistoryClient {
        HistoryClient::new(self.history_channel.clone())
    }

    fn history_internal(&self) -> HistoryInternal {
        HistoryInternal::new(self.history_channel.clone())
    }
}

/// What the shared state is made of.
struct Parts<'a> {
    config: Arc<Config>,
    keys: Keys,
    redis: Redis,
    revocations: Revocations,
    streams: Streams,
    hub: Arc<Hub>,
    presence: GatewayPresence,
    shutdown: Shutdown,
    upstreams: &'a Upstreams,
}

/// The handles of every floor, wired together, and the ingress backlog
/// poller (in the background, for backpressure).
fn shared_state(p: Parts<'_>) -> AppState {
    let Parts {
        config,
        keys,
        redis,
        revocations,
        streams,
        hub,
        presence,
        shutdown,
        upstreams,
    } = p;
    let lookup = Lookup::new(keys.clone(), config.gateway_ttl_ms);
    let access = Access::new(upstreams.users());
    let limits = Limits::new(redis.clone(), keys.clone(), (&*config).into());
    let tokens = Tokens::new(config.jwt.get().clone(), revocations);
    let tickets = Tickets::new(redis.clone(), keys.clone(), limits.clone());
    let history = History::new(access.clone(), upstreams.history());
    let reads = Reads::new(access.clone(), redis.clone(), keys.clone(), lookup.clone());
    let backlog = Arc::new(backlog::Backlog::default());
    tokio::spawn(backlog::poll(
        redis.clone(),
        (0..config.ingress_partitions)
            .map(|i| keys.ingress(i))
            .collect(),
        backlog.clone(),
        shutdown.clone(),
    ));
    let appender = Appender::start(
        redis.clone(),
        Duration::from_millis(config.ingress_linger_ms),
    );
    let sessions = Sessions::new(session::context::Parts {
        settings: (&*config).into(),
        caps: Arc::new(ConnCaps::new(
            config.max_connections_per_user,
            config.max_connections_per_ip,
        )),
        hub,
        presence,
        shutdown,
        tokens: tokens.clone(),
        tickets: tickets.clone(),
        offline: OfflineQueue::new(upstreams.history(), upstreams.history_internal()),
        reads: reads.clone(),
        history: history.clone(),
        ingress: Ingress::new(
            appender,
            backlog,
            AccountQuota::new(redis.clone(), keys.clone(), (&*config).into()),
            keys.clone(),
            (&*config).into(),
        ),
    });
    AppState::new(Shared {
        accounts: Accounts::new(
            upstreams.users(),
            limits.clone(),
            Erasure::new(redis.clone(), keys.clone()),
        ),
        user_sessions: UserSessions::new(upstreams.users()),
        export: Export::new(
            upstreams.users(),
            upstreams.history(),
            redis.clone(),
            keys.clone(),
            limits.clone(),
        ),
        rooms: Rooms::new(
            upstreams.users(),
            access.clone(),
            limits,
            lookup,
            redis.clone(),
        ),
        conversations: Conversations::new(upstreams.users(), access, redis, keys),
        history,
        reads,
        tickets,
        tokens,
        proxy_trust: ProxyTrust(config.trust_forwarded_for),
        sessions,
        streams,
    })
}

/// Ready when Redis answers, the delivery subscription is live, and both
/// upstreams report SERVING.
fn readiness(redis: Redis, subscribed: watch::Receiver<bool>, up: Upstreams) -> ops::ReadyCheck {
    let up = Arc::new(up);
    Arc::new(move || {
        let (mut redis, subscribed, up) = (redis.clone(), subscribed.clone(), up.clone());
        Box::pin(async move {
            if let Err(e) = connection::ping(&mut redis).await {
                return Readiness::Unavailable(e);
            }
            if !*subscribed.borrow() {
                return Readiness::Unavailable("pub/sub not subscribed".into());
            }
            for (name, channel) in [
                ("user-service", &up.user_channel),
                ("history-service", &up.history_channel),
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
