//! The domain's one error type. It keeps its cause (a Redis error, an
//! upstream's gRPC status) as its `source()`, says which [`Kind`] of answer
//! it is, and what a client may be told. Each transport maps a kind to its
//! own code once (HTTP status, protocol error code), and logs the error
//! where it answers it ([`Error::log_answered`]), never in a conversion.

use service_kit::error::Chain;
use tonic::Code;

/// What a client is told went wrong, whatever the transport.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    BadRequest,
    Unauthorized,
    Forbidden,
    NotFound,
    Conflict,
    TooLarge,
    RateLimited,
    Unavailable,
    Internal,
}

/// What clients are told when a dependency fails: not which, nor how.
pub const UNAVAILABLE: &str = "service temporarily unavailable";
const INTERNAL: &str = "internal error";

/// The upstreams, as their errors name them.
pub const USER_SERVICE: &str = "user-service";
pub const HISTORY_SERVICE: &str = "history-service";

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The request is wrong; the message says how.
    #[error("{0}")]
    Invalid(String),
    #[error("{0}")]
    Unauthorized(String),
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    TooLarge(String),
    #[error("{message}")]
    Limited {
        message: String,
        retry_after_secs: u64,
    },
    /// This gateway refuses for now (shutting down, at its connection
    /// limit): nothing failed.
    #[error("{0}")]
    Busy(String),
    /// Redis failed while doing `what`.
    #[error("{what}: Redis failed")]
    Redis {
        what: &'static str,
        #[source]
        source: redis::RedisError,
    },
    /// An upstream service answered with an error status.
    #[error("{service} answered {code:?}", code = .source.code())]
    Upstream {
        service: &'static str,
        #[source]
        source: tonic::Status,
    },
    /// A broken expectation of ours; the client is told only "internal".
    #[error("{0}")]
    Internal(String),
}

impl From<redis::RedisError> for Error {
    fn from(source: redis::RedisError) -> Self {
        Self::Redis {
            what: "a Redis command",
            source,
        }
    }
}

impl Error {
    /// For `map_err`: a Redis failure while doing `what`.
    pub fn redis(what: &'static str) -> impl FnOnce(redis::RedisError) -> Self {
        move |source| Self::Redis { what, source }
    }

    /// For `map_err`: an error status from `service`.
    pub fn upstream(service: &'static str) -> impl FnOnce(tonic::Status) -> Self {
        move |source| Self::Upstream { service, source }
    }

    pub fn kind(&self) -> Kind {
        match self {
            Self::Invalid(_) => Kind::BadRequest,
            Self::Unauthorized(_) => Kind::Unauthorized,
            Self::Forbidden(_) => Kind::Forbidden,
            Self::NotFound(_) => Kind::NotFound,
            Self::Conflict(_) => Kind::Conflict,
            Self::TooLarge(_) => Kind::TooLarge,
            Self::Limited { .. } => Kind::RateLimited,
            Self::Busy(_) | Self::Redis { .. } => Kind::Unavailable,
            Self::Upstream { source, .. } => upstream_kind(source.code()),
            Self::Internal(_) => Kind::Internal,
        }
    }

    /// What the client is told: the request's fault in full, a failure of
    /// ours only by its kind.
    pub fn public_message(&self) -> String {
        match self {
            Self::Redis { .. } => UNAVAILABLE.into(),
            Self::Internal(_) => INTERNAL.into(),
            Self::Upstream { source, .. } => match self.kind() {
                Kind::Unavailable => UNAVAILABLE.into(),
                Kind::Internal => INTERNAL.into(),
                _ => source.message().to_owned(),
            },
            other => other.to_string(),
        }
    }

    /// When a rate-limited client may try again (seconds).
    pub fn retry_after_secs(&self) -> Option<u64> {
        match self {
            Self::Limited {
                retry_after_secs, ..
            } => Some(*retry_after_secs),
            Self::Upstream { source, .. } if source.code() == Code::ResourceExhausted => Some(1),
            _ => None,
        }
    }

    /// Logs a failure of ours with its whole chain; the request's own
    /// faults are the client's business and are not logged.
    pub fn log_answered(&self) {
        match (self, self.kind()) {
            (Self::Busy(_), _) => {}
            (_, Kind::Unavailable) => tracing::warn!(error = %Chain(self), "unavailable"),
            (_, Kind::Internal) => tracing::error!(error = %Chain(self), "internal error"),
            _ => {}
        }
    }
}

/// How an upstream's status is passed on: its verdict on the request as
/// is, its own failures as unavailable or internal.
fn upstream_kind(code: Code) -> Kind {
    match code {
        Code::InvalidArgument | Code::OutOfRange => Kind::BadRequest,
        Code::Unauthenticated => Kind::Unauthorized,
        Code::PermissionDenied => Kind::Forbidden,
        Code::NotFound => Kind::NotFound,
        Code::AlreadyExists | Code::FailedPrecondition | Code::Aborted => Kind::Conflict,
        Code::ResourceExhausted => Kind::RateLimited,
        Code::Unavailable | Code::DeadlineExceeded | Code::Cancelled => Kind::Unavailable,
        _ => Kind::Internal,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_upstream_verdict_passes_and_its_failure_is_hidden() {
        let refused = Error::upstream(USER_SERVICE)(tonic::Status::already_exists("name taken"));
        assert_eq!(refused.kind(), Kind::Conflict);
        assert_eq!(refused.public_message(), "name taken");

        let down = Error::upstream(USER_SERVICE)(tonic::Status::unavailable("tcp connect error"));
        assert_eq!(down.kind(), Kind::Unavailable);
        assert_eq!(down.public_message(), UNAVAILABLE);
        let logged = Chain(&down).to_string();
        assert!(
            logged.starts_with("user-service answered Unavailable: "),
            "{logged}"
        );
        assert!(logged.contains("tcp connect error"), "{logged}");

        let broken = Error::upstream(HISTORY_SERVICE)(tonic::Status::internal("stack trace"));
        assert_eq!(broken.kind(), Kind::Internal);
        assert_eq!(broken.public_message(), INTERNAL);

        let busy = Error::upstream(USER_SERVICE)(tonic::Status::resource_exhausted("slow down"));
        assert_eq!(busy.retry_after_secs(), Some(1));
    }
}
