//! Failed-login limits, per username and per client address, counted in Redis
//! so they hold across every gateway replica. Over a limit, login answers 429
//! with Retry-After (even with the right password) until the window expires.

use std::net::{IpAddr, SocketAddr};

use axum::http::HeaderMap;
use common::ids::valid_username;

use super::error::ApiError;
use crate::state::AppState;

/// The client address: the peer, or with TRUST_FORWARDED_FOR the last
/// X-Forwarded-For entry (the one our own proxy appended).
pub fn client_ip(state: &AppState, headers: &HeaderMap, peer: SocketAddr) -> IpAddr {
    if state.config.trust_forwarded_for
        && let Some(ip) = headers
            .get("x-forwarded-for")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.rsplit(',').next())
            .and_then(|v| v.trim().parse().ok())
    {
        return ip;
    }
    peer.ip()
}

fn keys(state: &AppState, username: &str, ip: IpAddr) -> Vec<(String, u32)> {
    let config = &state.config;
    let mut keys = vec![(
        state.keys.login_failures_ip(&ip.to_string()),
        config.login_failures_per_ip,
    )];
    // Malformed names cannot log in anyway; they are counted by address only.
    if valid_username(username) {
        keys.push((
            state.keys.login_failures_user(username),
            config.login_failures_per_user,
        ));
    }
    keys
}

/// Refuses with 429 when the username or the address is over its limit.
/// Fails open (with a warning) if Redis is unreachable: logins keep working.
pub async fn check(state: &AppState, username: &str, ip: IpAddr) -> Result<(), ApiError> {
    let keys = keys(state, username, ip);
    let mut pipe = redis::pipe();
    for (key, _) in &keys {
        pipe.get(key).cmd("PTTL").arg(key);
    }
    let mut redis = state.redis.clone();
    let replies: Vec<(Option<u32>, i64)> = match pipe.query_async(&mut redis).await {
        Ok(r) => r,
        Err(e) => {
            tracing::warn!(error = %e, "login limits unavailable; allowing the attempt");
            return Ok(());
        }
    };
    for ((_, limit), (count, pttl)) in keys.iter().zip(replies) {
        if count.unwrap_or(0) >= *limit {
            metrics::counter!("gateway_login_limited_total").increment(1);
            return Err(ApiError::RateLimited {
                message: "too many failed logins; try again later".into(),
                retry_after_secs: (pttl.max(1000) as u64).div_ceil(1000),
            });
        }
    }
    Ok(())
}

/// Counts a failed login against the username and the address.
pub async fn failed(state: &AppState, username: &str, ip: IpAddr) {
    let window = state.config.login_failure_window_secs;
    let mut pipe = redis::pipe();
    for (key, _) in keys(state, username, ip) {
        pipe.incr(&key, 1)
            .ignore()
            .cmd("EXPIRE")
            .arg(&key)
            .arg(window)
            .arg("NX")
            .ignore();
    }
    let mut redis = state.redis.clone();
    if let Err(e) = pipe.query_async::<()>(&mut redis).await {
        tracing::warn!(error = %e, "could not count a failed login");
    }
}

/// A successful login clears the username's count (not the address's).
pub async fn succeeded(state: &AppState, username: &str) {
    let mut redis = state.redis.clone();
    let cleared: redis::RedisResult<()> = redis::cmd("DEL")
        .arg(state.keys.login_failures_user(username))
        .query_async(&mut redis)
        .await;
    if let Err(e) = cleared {
        tracing::warn!(error = %e, "could not clear failed logins");
    }
}
