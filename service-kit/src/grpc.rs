//! gRPC plumbing the services share: lazily connected upstream channels (with
//! the service token for internal ones) and server reflection in both versions
//! grpcurl may speak.

use std::time::Duration;

use tonic::{
    service::interceptor::InterceptedService,
    transport::{Channel, Endpoint, server::TcpIncoming},
};
use tonic_reflection::server::{Builder, Error, v1, v1alpha};

use crate::auth::{InternalChannel, WithServiceToken};

/// How often an upstream connection is pinged (HTTP/2 PING), idle or not,
/// and how long a ping may go unanswered before the connection is dropped
/// and made again.
pub const KEEPALIVE_INTERVAL: Duration = Duration::from_secs(5);
pub const KEEPALIVE_TIMEOUT: Duration = Duration::from_secs(5);

/// A channel that connects on first use, so a service can start before its
/// upstreams; calls time out rather than hang. A connection that goes
/// silent (a half-open link: nothing comes back, nothing closes) is noticed
/// by its keepalive pings within 10 s and replaced: without them every
/// call on it timed out, for good.
pub fn lazy_channel(url: &str) -> Result<Channel, tonic::transport::Error> {
    Ok(Endpoint::from_shared(url.to_owned())?
        .connect_timeout(Duration::from_secs(3))
        .timeout(Duration::from_secs(10))
        .tcp_nodelay(true)
        .http2_keep_alive_interval(KEEPALIVE_INTERVAL)
        .keep_alive_timeout(KEEPALIVE_TIMEOUT)
        .keep_alive_while_idle(true)
        .connect_lazy())
}

/// A lazy channel to an internal service that sends `token` with every call.
pub fn internal_channel(url: &str, token: &str) -> Result<InternalChannel, ChannelError> {
    let auth = WithServiceToken::new(token).map_err(ChannelError::Token)?;
    Ok(InterceptedService::new(lazy_channel(url)?, auth))
}

#[derive(Debug, thiserror::Error)]
pub enum ChannelError {
    #[error("bad upstream URL: {0}")]
    Url(#[from] tonic::transport::Error),
    #[error("{0}")]
    Token(String),
}

/// Accepted gRPC connections with Nagle off: a response's headers, data and
/// trailers go out at once instead of waiting on the peer's delayed ACK
/// (which costs up to 40 ms per call).
pub fn incoming(listener: tokio::net::TcpListener) -> TcpIncoming {
    TcpIncoming::from(listener).with_nodelay(Some(true))
}

/// Reflection servers for `descriptor_sets`, in `grpc.reflection.v1` and in
/// `v1alpha`: grpcurl before 1.9 (the PyPI 1.8.6 included) speaks only v1alpha.
#[allow(clippy::type_complexity)]
pub fn reflection(
    descriptor_sets: &[&'static [u8]],
) -> Result<
    (
        v1::ServerReflectionServer<impl v1::ServerReflection>,
        v1alpha::ServerReflectionServer<impl v1alpha::ServerReflection>,
    ),
    Error,
> {
    let configure = || {
        descriptor_sets.iter().fold(Builder::configure(), |b, set| {
            b.register_encoded_file_descriptor_set(set)
        })
    };
    Ok((configure().build_v1()?, configure().build_v1alpha()?))
}
