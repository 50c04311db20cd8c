//! Builds the service (Redis, MongoDB client, listeners) and runs the gRPC
//! server, the ops endpoints and the archiver until shutdown.

use std::{sync::Arc, time::Duration};

use chat_redis::{
    connection,
    consumer::{self, Consumer},
};

use proto::user::v1::user_service_client::UserServiceClient;
use service_kit::{
    grpc::internal_channel,
    ops,
    service::{Listeners, Service, ServiceArgs, StartupError},
    shutdown::{Shutdown, shutdown_signal},
};

use crate::{
    archive::{self, ArchiveStatus, Archiver},
    auth::Access,
    config::Config,
    grpc::HistoryApi,
    mongo::Archive,
    servers,
    store::RedisStore,
};

pub struct Application {
    listeners: Listeners,
    store: RedisStore,
    archive: Archive,
    revocations: chat_redis::sessions::Revocations,
    config: Config,
}

impl Service for Application {
    type Config = Config;
    const NAME: &'static str = "history-service";

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
        let conn =
            connection::connect_with_retry(&config.redis.endpoints(), Duration::from_secs(30))
                .await?;
        let revocations = chat_redis::sessions::Revocations::new(conn.clone(), config.redis.keys());
        let store = RedisStore::new(
            conn,
            config.redis.keys(),
            config.offline_limit,
            config.offline_ttl_secs,
        )
        .with_archive_partitions(config.archive_partitions);
        let archive = Archive::new(&config.mongodb_uri, &config.mongodb_database)
            .await
            .map_err(|e| StartupError::storage("bad MongoDB settings", e))?;
        let listeners = Listeners::bind(
            "history-service",
            &[
                ("grpc", config.listen_addr),
                ("internal", config.internal_addr),
                ("ops", config.service.ops_addr),
            ],
        )
        .await?;
        Ok(Self {
            listeners,
            store,
            archive,
            revocations,
            config,
        })
    }

    /// The public gRPC port.
    pub fn port(&self) -> u16 {
        self.listeners.port("grpc")
    }

    /// The internal gRPC port (service token required).
    pub fn internal_port(&self) -> u16 {
        self.listeners.port("internal")
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
        let mut listeners = self.listeners;
        let _ready = listeners.announce(self.config.service.ready_file.as_deref())?;
        let status = Arc::new(ArchiveStatus::default());
        // Every instance works every archive partition, each on a blocking
        // connection of its own.
        let mut archivers = Vec::new();
        for partition in 0..self.store.archive_partitions() {
            let archiver = Archiver {
                store: self.store.clone(),
                archive: self.archive.clone(),
                recent_limit: self.config.recent_limit,
                status: status.clone(),
                partition: partition.to_string(),
            };
            let group = archive::group(
                &self.store,
                partition,
                self.config.instance_id.clone(),
                self.config.archive_batch as usize,
            );
            let reader = connection::connect(&self.config.redis.endpoints()).await?;
            archivers.push(tokio::spawn(consumer::run(
                Consumer::new(group, reader).measuring_length(),
                archiver,
                shutdown.clone(),
            )));
        }

        let users = UserServiceClient::new(internal_channel(
            &self.config.user_service_url,
            self.config.service_token.get().expose(),
        )?);
        let api = HistoryApi {
            redis: self.store.clone(),
            archive: self.archive.clone(),
            access: Access::new(users, self.revocations.clone()),
        };
        let public_server =
            servers::public(&self.config, api.clone(), listeners.take("grpc"), &shutdown).await?;
        let internal_server = servers::internal(
            &self.config,
            api,
            self.store.clone(),
            listeners.take("internal"),
            &shutdown,
        )
        .await?;
        let ops_server = ops::serve(
            listeners.take("ops"),
            ops::router(servers::readiness(&self.store, status)),
            shutdown.clone().wait(),
        );
        let (ops_result, public_result, internal_result) =
            tokio::join!(ops_server, public_server, internal_server);
        for archiver in archivers {
            let _ = archiver.await;
        }
        ops_result.map_err(|e| StartupError::serve("ops", e))?;
        public_result.map_err(|e| StartupError::serve("public gRPC", e))?;
        internal_result.map_err(|e| StartupError::serve("internal gRPC", e))?;
        tracing::info!("history-service stopped");
        Ok(())
    }
}
