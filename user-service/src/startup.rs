//! Builds the service (pool, migrations, listeners) and runs it until shutdown.

use std::{sync::Arc, time::Duration};

use service_kit::{
    auth::RequireServiceToken,
    ops::{self, Readiness},
    service::{Listeners, Service, ServiceArgs, StartupError},
    shutdown::{Shutdown, shutdown_signal},
};

use chat_redis::connection;
use proto::user::v1::user_service_server::UserServiceServer;
use sqlx::postgres::PgPoolOptions;

use crate::{
    config::Config,
    event_relay::EventRelay,
    events::MembershipEvents,
    grpc::UserApi,
    password::Hasher,
    session_store::SessionStore,
    sessions::{self, Sessions},
    store::Store,
};

pub struct Application {
    listeners: Listeners,
    store: Store,
    events: MembershipEvents,
    relay: EventRelay,
    sessions: Sessions,
    config: Config,
}

impl Service for Application {
    type Config = Config;
    const NAME: &'static str = "user-service";

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

/// Migrations are embedded; sqlx takes a PostgreSQL advisory lock while running
/// them, so replicas starting together are safe.
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

impl Application {
    pub async fn build(config: Config) -> Result<Self, StartupError> {
        service_kit::metrics_catalog::register(&crate::metrics::catalog());
        let pool = PgPoolOptions::new()
            .max_connections(config.db_max_connections)
            .acquire_timeout(Duration::from_secs(5))
            .connect(config.database_url.expose())
            .await
            .map_err(|e| StartupError::storage("cannot connect to PostgreSQL", e))?;
        MIGRATOR
            .run(&pool)
            .await
            .map_err(|e| StartupError::storage("cannot run migrations", e))?;
        let redis =
            connection::connect_with_retry(&config.redis.endpoints(), Duration::from_secs(30))
                .await?;
        let relay = EventRelay::new(
            pool.clone(),
            redis.clone(),
            config.redis.keys(),
            config.ingress_partitions,
        );
        let events = MembershipEvents::new(redis.clone(), config.redis.keys(), relay.waker());
        let sessions = Sessions::new(
            SessionStore::new(pool.clone()),
            chat_redis::sessions::Revocations::new(redis, config.redis.keys()),
            config.jwt.get().expose().to_owned(),
            sessions::Settings {
                token_ttl_secs: config.token_ttl_secs,
                refresh_ttl_secs: config.refresh_ttl_secs,
                max_sessions: config.max_sessions_per_user,
            },
        );
        let listeners = Listeners::bind(
            "user-service",
            &[
                ("grpc", config.listen_addr),
                ("ops", config.service.ops_addr),
            ],
        )
        .await?;
        Ok(Self {
            listeners,
            store: Store::new(pool).with_member_events(config.membership_events),
            events,
            relay,
            sessions,
            config,
        })
    }

    /// The gRPC port (useful when configured with port 0).
    pub fn port(&self) -> u16 {
        self.listeners.port("grpc")
    }

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
        let (reflection_v1, reflection_v1alpha) = service_kit::grpc::reflection(&[
            proto::user::v1::FILE_DESCRIPTOR_SET,
            tonic_health::pb::FILE_DESCRIPTOR_SET,
        ])?;
        let (health_reporter, health) = tonic_health::server::health_reporter();
        health_reporter
            .set_serving::<UserServiceServer<UserApi>>()
            .await;
        let api = UserApi::new(
            self.store.clone(),
            self.events.clone(),
            Hasher::new(self.config.hash_concurrency, self.config.hash_queue),
            self.sessions.clone(),
        );
        // Every call is internal: only holders of the service token get in.
        let service = RequireServiceToken::new(self.config.service_token.get().expose());
        let mut listeners = self.listeners;
        let _ready = listeners.announce(self.config.service.ready_file.as_deref())?;
        let ops_server = ops::serve(
            listeners.take("ops"),
            ops::router(readiness(self.store.pool().clone())),
            shutdown.clone().wait(),
        );
        let relay = tokio::spawn(self.relay.run(shutdown.clone().wait()));
        let grpc_server = tonic::transport::Server::builder()
            .add_service(health)
            .add_service(reflection_v1)
            .add_service(reflection_v1alpha)
            .add_service(UserServiceServer::with_interceptor(api, service))
            .serve_with_incoming_shutdown(
                service_kit::grpc::incoming(listeners.take("grpc")),
                shutdown.wait(),
            );
        let (ops_result, grpc_result) = tokio::join!(ops_server, grpc_server);
        // Rows it had no time for stay in the outbox for the next start.
        let _ = relay.await;
        ops_result.map_err(|e| StartupError::serve("ops", e))?;
        grpc_result.map_err(|e| StartupError::serve("gRPC", e))?;
        tracing::info!("user-service stopped");
        Ok(())
    }
}

/// Ready when PostgreSQL answers.
fn readiness(pool: sqlx::PgPool) -> ops::ReadyCheck {
    Arc::new(move || {
        let pool = pool.clone();
        Box::pin(async move {
            match sqlx::query("SELECT 1").execute(&pool).await {
                Ok(_) => Readiness::Ready,
                Err(e) => Readiness::Unavailable(format!("postgres: {e}")),
            }
        })
    })
}
