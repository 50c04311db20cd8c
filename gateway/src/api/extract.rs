//! Extractors that answer bad requests in the API's error format.

use axum::{
    extract::{FromRequest, FromRequestParts, Request, rejection::JsonRejection},
    http::{StatusCode, header, request::Parts},
};
use serde::de::DeserializeOwned;

use super::error::ApiError;
use crate::state::AppState;

/// The caller, from `Authorization: Bearer <jwt>`.
pub struct AuthUser(pub String);

impl FromRequestParts<AppState> for AuthUser {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let token =
            bearer(parts).ok_or_else(|| ApiError::Unauthorized("missing bearer token".into()))?;
        verify(state, token).map(AuthUser)
    }
}

pub fn bearer(parts: &Parts) -> Option<&str> {
    parts
        .headers
        .get(header::AUTHORIZATION)?
        .to_str()
        .ok()?
        .strip_prefix("Bearer ")
        .map(str::trim)
}

pub fn verify(state: &AppState, token: &str) -> Result<String, ApiError> {
    service_kit::jwt::verify(state.config.jwt.get(), token)
        .map(|c| c.sub)
        .map_err(|e| ApiError::Unauthorized(e.to_string()))
}

/// JSON body whose rejections are API errors (400, 413, 415 as 400).
pub struct ApiJson<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        match axum::Json::<T>::from_request(req, state).await {
            Ok(axum::Json(v)) => Ok(Self(v)),
            Err(rejection) => Err(json_error(&rejection)),
        }
    }
}

fn json_error(rejection: &JsonRejection) -> ApiError {
    match rejection.status() {
        StatusCode::PAYLOAD_TOO_LARGE => ApiError::TooLarge("request body too large".into()),
        StatusCode::UNSUPPORTED_MEDIA_TYPE => {
            ApiError::BadRequest("expected Content-Type: application/json".into())
        }
        _ => ApiError::BadRequest(rejection.body_text()),
    }
}

/// Query string whose rejections are API errors.
pub struct ApiQuery<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        axum::extract::Query::<T>::from_request_parts(parts, state)
            .await
            .map(|q| Self(q.0))
            .map_err(|e| ApiError::BadRequest(e.body_text()))
    }
}
