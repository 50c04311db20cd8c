//! Builds the service (Redis, MongoDB client, listeners) and runs the gRPC
//! server, the ops endpoints and the archiver until shutdown.

use std::{sync::Arc, time::Duration};

use chat_redis::{
    connection,
    consumer::{self, Consumer},
    keys::Keys,
};

use proto::user::v1::user_service_client::UserServiceClient;
use service_kit::{
    grpc::internal_channel,
    ops,
    ready::ReadyFile,
    shutdown::{Shutdown, shutdown_signal},
};
use tokio::net::TcpListener;

use crate::{
    archive::{self, ArchiveStatus, Archiver},
    auth::Access,
    config::Config,
    grpc::HistoryApi,
    mongo::Archive,
    servers,
    store::RedisStore,
};

#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error("cannot write the ready file: {0}")]
    ReadyFile(std::io::Error),
    #[error("cannot connect to Redis: {0}")]
    Redis(#[from] redis::RedisError),
    #[error("bad MongoDB settings: {0}")]
    Mongo(#[from] mongodb::error::Error),
    #[error(transparent)]
    Bind(#[from] ops::BindError),
    #[error("reflection: {0}")]
    Reflection(#[from] tonic_reflection::server::Error),
    #[error("{0}")]
    Upstream(#[from] service_kit::grpc::ChannelError),
    #[error("server: {0}")]
    Serve(String),
}

pub struct Application {
    grpc_listener: TcpListener,
    internal_listener: TcpListener,
    ops_listener: TcpListener,
    store: RedisStore,
    archive: Archive,
    config: Config,
}

impl Application {
    pub async fn build(config: Config) -> Result<Self, StartupError> {
        service_kit::metrics_catalog::register(&crate::metrics::catalog());
        let conn =
            connection::connect_with_retry(&config.redis.target(), Duration::from_secs(30)).await?;
        let store = RedisStore::new(
            conn,
            Keys::new(config.redis_prefix.clone()),
            config.offline_limit,
            config.offline_ttl_secs,
        )
        .with_archive_partitions(config.archive_partitions);
        let archive = Archive::new(&config.mongodb_uri, &config.mongodb_database).await?;
        let grpc_listener = ops::bind(config.listen_addr).await?;
        let internal_listener = ops::bind(config.internal_addr).await?;
        let ops_listener = ops::bind(config.ops_addr).await?;
        Ok(Self {
            grpc_listener,
            internal_listener,
            ops_listener,
            store,
            archive,
            config,
        })
    }

    /// The public gRPC port.
    pub fn port(&self) -> u16 {
        ops::port_of(&self.grpc_listener)
    }

    /// The internal gRPC port (service token required).
    pub fn internal_port(&self) -> u16 {
        ops::port_of(&self.internal_listener)
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
            internal = %addr(&self.internal_listener),
            ops = %addr(&self.ops_listener),
            "history-service listening"
        );
        ReadyFile::write(
            self.config.ready_file.as_deref(),
            "history-service",
            &[
                ("grpc", self.grpc_listener.local_addr()),
                ("internal", self.internal_listener.local_addr()),
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
        let _ready = self.announce()?;
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
            let reader = connection::connect(&self.config.redis.target()).await?;
            archivers.push(tokio::spawn(consumer::run(
                Consumer::new(group, reader).measuring_length(),
                archiver,
                shutdown.clone(),
            )));
        }

        let users = UserServiceClient::new(internal_channel(
            &self.config.user_service_url,
            self.config.service_token.get(),
        )?);
        let api = HistoryApi {
            redis: self.store.clone(),
            archive: self.archive.clone(),
            access: Access::new(users),
        };
        let public_server =
            servers::public(&self.config, api.clone(), self.grpc_listener, &shutdown).await?;
        let internal_server = servers::internal(
            &self.config,
            api,
            self.store.clone(),
            self.internal_listener,
            &shutdown,
        )
        .await?;
        let ops_server = ops::serve(
            self.ops_listener,
            ops::router(servers::readiness(&self.store, status)),
            shutdown.clone().wait(),
        );
        let (ops_result, public_result, internal_result) =
            tokio::join!(ops_server, public_server, internal_server);
        for archiver in archivers {
            let _ = archiver.await;
        }
        ops_result.map_err(|e| StartupError::Serve(e.to_string()))?;
        public_result.map_err(|e| StartupError::Serve(e.to_string()))?;
        internal_result.map_err(|e| StartupError::Serve(e.to_string()))?;
        tracing::info!("history-service stopped");
        Ok(())
    }
}
