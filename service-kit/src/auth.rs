//! Who is calling a gRPC service, and the credentials each caller sends.
//!
//! Two kinds of listener exist. An internal one (user-service, history-service's
//! `INTERNAL_ADDR`) accepts only the shared service token, so reaching its port
//! is not enough to forge a message. The public history port accepts a user's
//! JWT or the operator token; the handler then decides what that caller may read.
//! Every credential rides as `authorization: Bearer <credential>` metadata.

use std::sync::Arc;

use tonic::{
    Request, Status,
    metadata::{AsciiMetadataValue, MetadataMap},
    service::{Interceptor, interceptor::InterceptedService},
    transport::Channel,
};

/// The authenticated caller of a gRPC request, put in its extensions by the
/// listener's interceptor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Caller {
    /// Another service of the system, holding the service token.
    Service,
    /// A person with the operator credential: may read anything.
    Operator,
    /// A user, from a verified JWT.
    User(String),
}

impl Caller {
    /// The caller of `request`. Handlers behind an interceptor always have one;
    /// its absence is a wiring bug, answered as unauthenticated.
    pub fn of<T>(request: &Request<T>) -> Result<&Caller, Status> {
        request
            .extensions()
            .get::<Caller>()
            .ok_or_else(|| Status::unauthenticated("no credentials"))
    }
}

/// The bearer credential of a request, if any.
pub fn bearer(metadata: &MetadataMap) -> Option<&str> {
    metadata
        .get("authorization")?
        .to_str()
        .ok()?
        .strip_prefix("Bearer ")
        .map(str::trim)
}

/// Compares secrets in time independent of where they first differ.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Server side of an internal listener: only the service token gets in.
#[derive(Clone)]
pub struct RequireServiceToken {
    token: Arc<str>,
}

impl RequireServiceToken {
    pub fn new(token: &str) -> Self {
        Self {
            token: token.into(),
        }
    }
}

impl Interceptor for RequireServiceToken {
    fn call(&mut self, mut request: Request<()>) -> Result<Request<()>, Status> {
        match bearer(request.metadata()) {
            Some(given) if constant_time_eq(given.as_bytes(), self.token.as_bytes()) => {
                request.extensions_mut().insert(Caller::Service);
                Ok(request)
            }
            Some(_) => {
                metrics::counter!("grpc_auth_refused_total", "listener" => "internal").increment(1);
                Err(Status::unauthenticated("bad service token"))
            }
            None => {
                metrics::counter!("grpc_auth_refused_total", "listener" => "internal").increment(1);
                Err(Status::unauthenticated(
                    "missing authorization: Bearer <service token>",
                ))
            }
        }
    }
}

/// Client side: adds the service token to every call.
#[derive(Clone)]
pub struct WithServiceToken(AsciiMetadataValue);

impl WithServiceToken {
    /// Fails only if the token holds characters a header cannot carry, which
    /// configuration validation rules out.
    pub fn new(token: &str) -> Result<Self, String> {
        format!("Bearer {token}")
            .parse()
            .map(Self)
            .map_err(|_| "the service token must be printable ASCII".to_owned())
    }
}

impl Interceptor for WithServiceToken {
    fn call(&mut self, mut request: Request<()>) -> Result<Request<()>, Status> {
        request
            .metadata_mut()
            .insert("authorization", self.0.clone());
        Ok(request)
    }
}

/// A channel to an internal service that authenticates every call.
pub type InternalChannel = InterceptedService<Channel, WithServiceToken>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn service_token_is_required_and_compared_exactly() {
        let mut server = RequireServiceToken::new("s3cret-s3cret-s3cret-s3cret-s3cret");
        let mut client = WithServiceToken::new("s3cret-s3cret-s3cret-s3cret-s3cret").unwrap();
        let ok = server.call(client.call(Request::new(())).unwrap()).unwrap();
        assert_eq!(Caller::of(&ok).unwrap(), &Caller::Service);

        let missing = server.call(Request::new(())).unwrap_err();
        assert_eq!(missing.code(), tonic::Code::Unauthenticated);
        let mut wrong = WithServiceToken::new("s3cret-s3cret-s3cret-s3cret-s3creT").unwrap();
        let refused = server
            .call(wrong.call(Request::new(())).unwrap())
            .unwrap_err();
        assert_eq!(refused.code(), tonic::Code::Unauthenticated);
    }

    #[test]
    fn constant_time_eq_compares_whole_values() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"abcd"));
        assert!(!constant_time_eq(b"", b"a"));
    }
}
