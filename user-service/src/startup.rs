//! Builds the service (pool, migrations, listeners) and runs it until shutdown.

use std::{sync::Arc, time::Duration};

use service_kit::{
    auth::RequireServiceToken,
    ops::{self, Readiness},
    ready::ReadyFile,
    shutdown::{Shutdown, shutdown_signal},
};

use chat_redis::{connection, keys::Keys};
use proto::user::v1::user_service_server::UserServiceServer;
use sqlx::postgres::PgPoolOptions;
use tokio::net::TcpListener;

use crate::{
    config::Config, events::MembershipEvents, grpc::UserApi, password::Hasher, store::Store,
};

#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error("cannot write the ready file: {0}")]
    ReadyFile(std::io::Error),
    #[error("cannot connect to PostgreSQL: {0}")]
    Database(#[from] sqlx::Error),
    #[error("cannot connect to Redis: {0}")]
    Redis(#[from] redis::RedisError),
    #[error("cannot run migrations: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error(transparent)]
    Bind(#[from] ops::BindError),
    #[error("reflection: {0}")]
    Reflection(#[from] tonic_reflection::server::Error),
    #[error("server: {0}")]
    Serve(String),
}

pub struct Application {
    grpc_listener: TcpListener,
    ops_listener: TcpListener,
    store: Store,
    events: MembershipEvents,
    config: Config,
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
            .connect(&config.database_url)
            .await?;
        MIGRATOR.run(&pool).await?;
        let redis =
            connection::connect_with_retry(&config.redis.target(), Duration::from_secs(30)).await?;
        let events = MembershipEvents::new(redis, Keys::new(config.redis_prefix.clone()));
        let grpc_listener = ops::bind(config.listen_addr).await?;
        let ops_listener = ops::bind(config.ops_addr).await?;
        Ok(Self {
            grpc_listener,
            ops_listener,
            store: Store::new(pool),
            events,
            config,
        })
    }

    /// The gRPC port (useful when configured with port 0).
    pub fn port(&self) -> u16 {
        ops::port_of(&self.grpc_listener)
    }

    pub fn ops_port(&self) -> u16 {
        ops::port_of(&self.ops_listener)
    }

    pub async fn run_until_stopped(self) -> Result<(), StartupError> {
        self.run_until(shutdown_signal()).await
    }

    /// Logs the bound addresses and writes the ready file.
    fn announce(&self) -> Result<ReadyFile, StartupError> {
        let addr = |l: &TcpListener| l.local_addr().map(|a| a.to_string()).unwrap_or_default();
        tracing::info!(
            grpc = %addr(&self.grpc_listener),
            ops = %addr(&self.ops_listener),
            "user-service listening"
        );
        ReadyFile::write(
            self.config.ready_file.as_deref(),
            "user-service",
            &[
                ("grpc", self.grpc_listener.local_addr()),
                ("ops", self.ops_listener.local_addr()),
            ],
        )
        .map_err(StartupError::ReadyFile)
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
            self.config.jwt.get().to_owned(),
            self.config.token_ttl_secs,
        );
        // Every call is internal: only holders of the service token get in.
        let service = RequireServiceToken::new(self.config.service_token.get());
        let _ready = self.announce()?;
        let ops_server = ops::serve(
            self.ops_listener,
            ops::router(readiness(self.store.pool().clone())),
            shutdown.clone().wait(),
        );
        let grpc_server = tonic::transport::Server::builder()
            .add_service(health)
            .add_service(reflection_v1)
            .add_service(reflection_v1alpha)
            .add_service(UserServiceServer::with_interceptor(api, service))
            .serve_with_incoming_shutdown(
                service_kit::grpc::incoming(self.grpc_listener),
                shutdown.wait(),
            );
        let (ops_result, grpc_result) = tokio::join!(ops_server, grpc_server);
        ops_result.map_err(|e| StartupError::Serve(e.to_string()))?;
        grpc_result.map_err(|e| StartupError::Serve(e.to_string()))?;
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
