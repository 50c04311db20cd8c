//! HTTP error answers: `{"error": {"code", "message"}}` with the status of
//! the domain error's kind, mapped here once, and logged here, once, when
//! it is a failure of ours.

use axum::{
    Json,
    http::{HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use chat_model::protocol::ErrorCode;
use serde::Serialize;
use utoipa::ToSchema;

use crate::domain::{Error, Kind};

/// A domain error on its way to an HTTP client.
#[derive(Debug)]
pub struct ApiError(pub Error);

impl From<Error> for ApiError {
    fn from(e: Error) -> Self {
        Self(e)
    }
}

impl ApiError {
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self(Error::Invalid(message.into()))
    }

    pub fn status(&self) -> StatusCode {
        match self.0.kind() {
            Kind::BadRequest => StatusCode::BAD_REQUEST,
            Kind::Unauthorized => StatusCode::UNAUTHORIZED,
            Kind::Forbidden => StatusCode::FORBIDDEN,
            Kind::NotFound => StatusCode::NOT_FOUND,
            Kind::Conflict => StatusCode::CONFLICT,
            Kind::TooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Kind::RateLimited => StatusCode::TOO_MANY_REQUESTS,
            Kind::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            Kind::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    pub fn code(&self) -> ErrorCode {
        match self.0.kind() {
            Kind::BadRequest => ErrorCode::BadRequest,
            Kind::Unauthorized => ErrorCode::Unauthorized,
            Kind::Forbidden => ErrorCode::Forbidden,
            Kind::NotFound => ErrorCode::NotFound,
            Kind::Conflict => ErrorCode::Conflict,
            Kind::TooLarge => ErrorCode::TooLarge,
            Kind::RateLimited => ErrorCode::RateLimited,
            Kind::Unavailable => ErrorCode::Unavailable,
            Kind::Internal => ErrorCode::Internal,
        }
    }
}

/// Every error: `{"error": {"code", "message"}}`.
#[derive(Serialize, ToSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Serialize, ToSchema)]
pub struct ErrorDetail {
    /// `bad_request`, `unauthorized`, `forbidden`, `not_found`, `conflict`,
    /// `too_large`, `rate_limited`, `unavailable` or `internal`.
    pub code: String,
    pub message: String,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        self.0.log_answered();
        let body = ErrorBody {
            error: ErrorDetail {
                code: self.code().as_str().to_owned(),
                message: self.0.public_message(),
            },
        };
        let mut response = (self.status(), Json(body)).into_response();
        if let Some(secs) = self.0.retry_after_secs()
            && let Ok(v) = HeaderValue::from_str(&secs.to_string())
        {
            response.headers_mut().insert(header::RETRY_AFTER, v);
        }
        response
    }
}
