//! One-time WebSocket tickets. A browser cannot set headers on a WebSocket, so
//! it would put its access token in the URL, where proxies and access logs
//! keep it. Instead it trades the token (in a header) for a ticket that opens
//! one socket, on any gateway, within 30 seconds, and is then gone. The
//! ticket carries the token's session and expiry: the socket it opens is
//! closed when that session is revoked, and asked for a fresh token before
//! that expiry, as if it had been opened with the token itself.

use std::fmt::Write;

use chat_redis::{connection::Redis, keys::Keys};

use super::{Error, limits::Limits, tokens::Identity};

/// How long a ticket stays valid.
pub const TICKET_TTL_SECS: u64 = 30;
/// A ticket is 32 random bytes in hex.
const TICKET_LEN: usize = 64;

#[derive(Clone)]
pub struct Tickets {
    redis: Redis,
    keys: Keys,
    limits: Limits,
}

impl Tickets {
    pub fn new(redis: Redis, keys: Keys, limits: Limits) -> Self {
        Self {
            redis,
            keys,
            limits,
        }
    }

    /// A new ticket for `who`, valid for [`TICKET_TTL_SECS`].
    pub async fn issue(&self, who: &Identity) -> Result<String, Error> {
        self.limits.tickets(&who.user).await?;
        let ticket = rand::random::<[u8; 32]>().iter().fold(
            String::with_capacity(TICKET_LEN),
            |mut s, b| {
                let _ = write!(s, "{b:02x}");
                s
            },
        );
        let mut redis = self.redis.clone();
        let () = redis::cmd("SET")
            .arg(self.keys.ws_ticket(&ticket))
            .arg(format!("{} {} {}", who.user, who.session, who.expires_at))
            .arg("EX")
            .arg(TICKET_TTL_SECS)
            .query_async(&mut redis)
            .await
            .map_err(Error::redis("storing a ticket"))?;
        Ok(ticket)
    }

    /// Who a ticket admits, without spending it: the upgrade's other
    /// checks come first, and a refused upgrade leaves the ticket usable.
    pub async fn peek(&self, ticket: &str) -> Result<Identity, Error> {
        if ticket.len() != TICKET_LEN || !ticket.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(refused());
        }
        let mut redis = self.redis.clone();
        let user: Option<String> = redis::cmd("GET")
            .arg(self.keys.ws_ticket(ticket))
            .query_async(&mut redis)
            .await
            .map_err(Error::redis("reading a ticket"))?;
        user.as_deref().and_then(identity).ok_or_else(refused)
    }

    /// Spends a ticket for the upgrade that passed every check: once, for
    /// the user [`Tickets::peek`] found (a racing upgrade with the same
    /// ticket is refused).
    pub async fn redeem(&self, ticket: &str, user: &str) -> Result<(), Error> {
        let mut redis = self.redis.clone();
        let spent: Option<String> = redis::cmd("GETDEL")
            .arg(self.keys.ws_ticket(ticket))
            .query_async(&mut redis)
            .await
            .map_err(Error::redis("spending a ticket"))?;
        match spent.as_deref().and_then(identity) {
            Some(who) if who.user == user => Ok(()),
            _ => Err(refused()),
        }
    }
}

/// A stored ticket's identity: `<user> <session> <expires_at>`. One stored
/// before sessions existed (a bare username) admits nobody.
fn identity(stored: &str) -> Option<Identity> {
    let mut parts = stored.split(' ');
    let (user, session, expires_at) = (parts.next()?, parts.next()?, parts.next()?);
    Some(Identity {
        user: user.to_owned(),
        session: session.to_owned(),
        expires_at: expires_at.parse().ok()?,
    })
}

fn refused() -> Error {
    Error::Unauthorized("invalid, expired or used ticket".into())
}
