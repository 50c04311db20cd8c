//! Extractors that answer bad requests in the API's error format.

use std::net::{IpAddr, SocketAddr};

use axum::{
    extract::{
        ConnectInfo, FromRef, FromRequest, FromRequestParts, Request, rejection::JsonRejection,
    },
    http::{HeaderMap, StatusCode, header, request::Parts},
};
use serde::de::DeserializeOwned;

use super::error::ApiError;
use crate::domain::{
    Error,
    tokens::{Identity, Tokens},
};

/// The caller's username, from `Authorization: Bearer <access token>` of a
/// live session.
pub struct AuthUser(pub String);

impl<S: Send + Sync> FromRequestParts<S> for AuthUser
where
    Tokens: FromRef<S>,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let Authed(identity) = Authed::from_request_parts(parts, state).await?;
        Ok(AuthUser(identity.user))
    }
}

/// The caller with their session, for the routes about sessions.
pub struct Authed(pub Identity);

impl<S: Send + Sync> FromRequestParts<S> for Authed
where
    Tokens: FromRef<S>,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let token = bearer(&parts.headers)
            .ok_or_else(|| Error::Unauthorized("missing bearer token".into()))?;
        Ok(Authed(Tokens::from_ref(state).authenticate(token).await?))
    }
}

/// The token of `Authorization: Bearer <token>`, if there is one.
pub fn bearer(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(header::AUTHORIZATION)?
        .to_str()
        .ok()?
        .strip_prefix("Bearer ")
        .map(str::trim)
}

/// Whether the client address comes from X-Forwarded-For
/// (TRUST_FORWARDED_FOR).
#[derive(Debug, Clone, Copy)]
pub struct ProxyTrust(pub bool);

/// The client address: the peer, or with TRUST_FORWARDED_FOR the last
/// X-Forwarded-For entry (the one our own proxy appended).
pub struct ClientIp(pub IpAddr);

impl<S: Send + Sync> FromRequestParts<S> for ClientIp
where
    ProxyTrust: FromRef<S>,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let ConnectInfo(peer) = ConnectInfo::<SocketAddr>::from_request_parts(parts, state)
            .await
            .map_err(|_| Error::Internal("no peer address".into()))?;
        if ProxyTrust::from_ref(state).0
            && let Some(ip) = parts
                .headers
                .get("x-forwarded-for")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.rsplit(',').next())
                .and_then(|v| v.trim().parse().ok())
        {
            return Ok(Self(ip));
        }
        Ok(Self(peer.ip()))
    }
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
        StatusCode::PAYLOAD_TOO_LARGE => Error::TooLarge("request body too large".into()).into(),
        StatusCode::UNSUPPORTED_MEDIA_TYPE => {
            ApiError::bad_request("expected Content-Type: application/json")
        }
        _ => ApiError::bad_request(rejection.body_text()),
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
            .map_err(|e| ApiError::bad_request(e.body_text()))
    }
}
