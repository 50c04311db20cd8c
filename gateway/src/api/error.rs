//! HTTP API errors: `{"error": {"code", "message"}}` with the matching status.
//! gRPC statuses from the upstreams are mapped here, once.

use axum::{
    Json,
    http::{HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use chat_model::protocol::ErrorCode;
use serde_json::json;
use tonic::Code;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{0}")]
    BadRequest(String),
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
    RateLimited {
        message: String,
        retry_after_secs: u64,
    },
    #[error("{0}")]
    Unavailable(String),
    #[error("{0}")]
    Internal(String),
}

impl ApiError {
    pub fn status(&self) -> StatusCode {
        match self {
            Self::BadRequest(_) => StatusCode::BAD_REQUEST,
            Self::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            Self::Forbidden(_) => StatusCode::FORBIDDEN,
            Self::NotFound(_) => StatusCode::NOT_FOUND,
            Self::Conflict(_) => StatusCode::CONFLICT,
            Self::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            Self::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
            Self::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    pub fn code(&self) -> &'static str {
        match self {
            Self::Conflict(_) => "conflict",
            other => other.ws_code().as_str(),
        }
    }

    /// The WebSocket protocol's code for this error (it has no `conflict`).
    pub fn ws_code(&self) -> ErrorCode {
        match self {
            Self::BadRequest(_) | Self::Conflict(_) => ErrorCode::BadRequest,
            Self::Unauthorized(_) => ErrorCode::Unauthorized,
            Self::Forbidden(_) => ErrorCode::Forbidden,
            Self::NotFound(_) => ErrorCode::NotFound,
            Self::TooLarge(_) => ErrorCode::TooLarge,
            Self::RateLimited { .. } => ErrorCode::RateLimited,
            Self::Unavailable(_) => ErrorCode::Unavailable,
            Self::Internal(_) => ErrorCode::Internal,
        }
    }
}

impl From<tonic::Status> for ApiError {
    fn from(s: tonic::Status) -> Self {
        let msg = s.message().to_owned();
        match s.code() {
            Code::InvalidArgument | Code::OutOfRange => Self::BadRequest(msg),
            Code::Unauthenticated => Self::Unauthorized(msg),
            Code::PermissionDenied => Self::Forbidden(msg),
            Code::NotFound => Self::NotFound(msg),
            Code::AlreadyExists | Code::FailedPrecondition | Code::Aborted => Self::Conflict(msg),
            Code::ResourceExhausted => Self::RateLimited {
                message: msg,
                retry_after_secs: 1,
            },
            Code::Unavailable | Code::DeadlineExceeded | Code::Cancelled => {
                tracing::warn!(code = ?s.code(), message = %msg, "upstream unavailable");
                Self::Unavailable("service temporarily unavailable".into())
            }
            _ => {
                tracing::error!(code = ?s.code(), message = %msg, "upstream error");
                Self::Internal("internal error".into())
            }
        }
    }
}

impl From<redis::RedisError> for ApiError {
    fn from(e: redis::RedisError) -> Self {
        tracing::warn!(error = %e, "redis error");
        Self::Unavailable("service temporarily unavailable".into())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        let body = Json(json!({"error": {"code": self.code(), "message": self.to_string()}}));
        let mut response = (status, body).into_response();
        if let Self::RateLimited {
            retry_after_secs, ..
        } = self
            && let Ok(v) = HeaderValue::from_str(&retry_after_secs.to_string())
        {
            response.headers_mut().insert(header::RETRY_AFTER, v);
        }
        response
    }
}
