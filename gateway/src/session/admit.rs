//! Every check before a session opens, on any transport, in the documented
//! order: the credential (a token or a one-time ticket) of a live session,
//! the origin, shutdown, the gateway's connection limit, the per-user and
//! per-address caps, then the transport's own check (a WebSocket upgrade).
//! A ticket is spent only once all of them passed, so a refused open never
//! burns it.

use std::net::IpAddr;

use axum::http::{HeaderMap, header};

use super::Sessions;
use crate::{
    delivery::caps::{CapExceeded, ConnPermit},
    domain::{Error, tokens::Identity},
    http::extract::bearer,
};

/// What a client presented: `Authorization: Bearer`, `?token=` or `?ticket=`
/// (the header wins, then the token, then the ticket).
pub struct Credentials {
    token: Option<String>,
    ticket: Option<String>,
}

impl Credentials {
    pub fn of(headers: &HeaderMap, token: Option<String>, ticket: Option<String>) -> Self {
        Self {
            token: bearer(headers).map(str::to_owned).or(token),
            ticket,
        }
    }
}

/// The identity the session opens for, and its place under the caps.
/// `transport` is the transport's own refusal, checked last.
pub async fn admit(
    sessions: &Sessions,
    headers: &HeaderMap,
    ip: IpAddr,
    credentials: Credentials,
    transport: Option<Error>,
) -> Result<(Identity, ConnPermit), Error> {
    let (identity, ticket) = match (credentials.token, credentials.ticket) {
        (Some(token), _) => (sessions.tokens.verify(&token)?, None),
        (None, Some(ticket)) => (sessions.tickets.peek(&ticket).await?, Some(ticket)),
        (None, None) => return Err(Error::Unauthorized("missing token or ticket".into())),
    };
    if identity.expires_at <= chat_model::time::now_ms() {
        return Err(Error::Unauthorized("token expired".into()));
    }
    sessions.tokens.check_live(&identity.session).await?;
    let user = &identity.user;
    let origins = &sessions.settings.origins;
    if !origins.is_empty()
        && let Some(origin) = headers.get(header::ORIGIN)
    {
        let origin = origin.to_str().unwrap_or_default().trim_end_matches('/');
        if !origins.iter().any(|o| o == origin) {
            return Err(Error::Forbidden(format!("origin {origin} is not allowed")));
        }
    }
    if sessions.shutdown.is_triggered() {
        return Err(Error::Busy("gateway is shutting down".into()));
    }
    if sessions.hub.connections() >= sessions.settings.max_connections {
        metrics::counter!("gateway_rejected_connections_total").increment(1);
        return Err(Error::Busy("gateway is at its connection limit".into()));
    }
    let permit = sessions.caps.acquire(user, ip).map_err(|cap| {
        metrics::counter!("gateway_rejected_connections_total").increment(1);
        let message = match cap {
            CapExceeded::User => "too many open sockets for this user",
            CapExceeded::Ip => "too many open sockets from this address",
        };
        Error::Limited {
            message: message.into(),
            retry_after_secs: 5,
        }
    })?;
    if let Some(refused) = transport {
        return Err(refused);
    }
    if let Some(ticket) = ticket {
        sessions.tickets.redeem(&ticket, user).await?;
    }
    Ok((identity, permit))
}
