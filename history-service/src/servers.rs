//! The three listeners' servers: the public gRPC port (reads for users,
//! reflection of the public file only), the internal port (every call,
//! behind the service token) and the ops endpoints.

use std::{future::Future, sync::Arc};

use service_kit::{
    auth::RequireServiceToken,
    ops::{self, Readiness},
    service::StartupError,
    shutdown::Shutdown,
};

use chat_redis::connection;
use proto::history::{
    internal::v1::history_internal_server::HistoryInternalServer,
    v1::history_service_server::HistoryServiceServer,
};
use tokio::net::TcpListener;
use tonic::service::interceptor::InterceptedService;

use crate::{
    archive::ArchiveStatus,
    auth::PublicAuth,
    config::Config,
    grpc::{HistoryApi, InternalApi},
    store::RedisStore,
};

type Served = Result<(), tonic::transport::Error>;

/// `grpc.health.v1`, reporting the history service as serving.
async fn health()
-> tonic_health::pb::health_server::HealthServer<impl tonic_health::pb::health_server::Health> {
    let (reporter, health) = tonic_health::server::health_reporter();
    reporter
        .set_serving::<HistoryServiceServer<HistoryApi>>()
        .await;
    health
}

pub async fn public(
    config: &Config,
    api: HistoryApi,
    listener: TcpListener,
    shutdown: &Shutdown,
) -> Result<impl Future<Output = Served>, StartupError> {
    let (reflection_v1, reflection_v1alpha) = service_kit::grpc::reflection(&[
        proto::history::v1::FILE_DESCRIPTOR_SET,
        tonic_health::pb::FILE_DESCRIPTOR_SET,
    ])?;
    let auth = PublicAuth::new(config.jwt.get().expose(), config.operator_token.expose());
    Ok(tonic::transport::Server::builder()
        .add_service(health().await)
        .add_service(reflection_v1)
        .add_service(reflection_v1alpha)
        .add_service(HistoryServiceServer::with_interceptor(api, auth))
        .serve_with_incoming_shutdown(
            service_kit::grpc::incoming(listener),
            shutdown.clone().wait(),
        ))
}

pub async fn internal(
    config: &Config,
    api: HistoryApi,
    store: RedisStore,
    listener: TcpListener,
    shutdown: &Shutdown,
) -> Result<impl Future<Output = Served>, StartupError> {
    let (internal_v1, internal_v1alpha) = service_kit::grpc::reflection(&[
        proto::history::internal::v1::FILE_DESCRIPTOR_SET,
        tonic_health::pb::FILE_DESCRIPTOR_SET,
    ])?;
    let service = RequireServiceToken::new(config.service_token.get().expose());
    Ok(tonic::transport::Server::builder()
        .add_service(health().await)
        .add_service(internal_v1)
        .add_service(internal_v1alpha)
        .add_service(HistoryServiceServer::with_interceptor(
            api.clone(),
            service.clone(),
        ))
        .add_service(InterceptedService::new(
            HistoryInternalServer::new(InternalApi {
                redis: store,
                archive: api.archive,
            })
            .max_decoding_message_size(config.grpc_max_message_bytes),
            service,
        ))
        .serve_with_incoming_shutdown(
            service_kit::grpc::incoming(listener),
            shutdown.clone().wait(),
        ))
}

/// Ready when Redis answers; degraded (still serving) while the archive is
/// unreachable, since chat goes on without MongoDB: the backlog waits in Redis.
pub fn readiness(store: &RedisStore, status: Arc<ArchiveStatus>) -> ops::ReadyCheck {
    let redis = store.conn();
    Arc::new(move || {
        let mut redis = redis.clone();
        let status = status.clone();
        Box::pin(async move {
            if let Err(e) = connection::ping(&mut redis).await {
                return Readiness::Unavailable(e);
            }
            match status.healthy() {
                Ok(()) => Readiness::Ready,
                Err(e) => Readiness::Degraded(format!("archive: {e}")),
            }
        })
    })
}
