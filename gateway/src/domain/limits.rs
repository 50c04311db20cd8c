//! Abuse limits counted in Redis, so they hold across every gateway replica:
//! failed logins, registrations per client address, rooms created per user.
//!
//! Each limit is a fixed window: a counter that lives `window` seconds from its
//! first count. A request is counted *before* the work it guards (a password
//! check, an account, a room), atomically with the check, so a parallel burst
//! cannot slip past between "check" and "count". A refused request counts
//! nothing, so hammering one limit never fills another (one stranger cannot
//! push a user over the per-username cap from a single address).
//!
//! Redis down: the limits fail closed (`unavailable`). Every path they guard
//! needs Redis minutes later anyway (a session, a message), and failing open
//! would hand an attacker unlimited password guesses during an outage.

use std::{net::IpAddr, sync::Arc};

use chat_model::ids::valid_username;
use chat_redis::{connection::Redis, keys::Keys};
use redis::Script;

use super::Error;
use crate::config::Config;

/// KEYS: counters; ARGV[1]: window (s); ARGV[1 + i]: limit of KEYS[i].
/// Returns 0 when every counter is under its limit (then all are counted), or
/// the milliseconds until the first refusing window ends.
const TAKE: &str = r"
local wait = 0
for i, key in ipairs(KEYS) do
  local n = tonumber(redis.call('GET', key) or '0')
  if n >= tonumber(ARGV[i + 1]) then
    local ttl = redis.call('PTTL', key)
    if ttl < 0 then ttl = tonumber(ARGV[1]) * 1000 end
    if ttl > wait then wait = ttl end
  end
end
if wait > 0 then return wait end
for _, key in ipairs(KEYS) do
  redis.call('INCR', key)
  redis.call('EXPIRE', key, ARGV[1], 'NX')
end
return 0
";

/// Gives back one count on each existing key (a login that succeeded was not
/// a failure); never creates a key, so nothing is left without a TTL. The
/// first ARGV[1] keys are cleared instead.
const REFUND: &str = r"
for i, key in ipairs(KEYS) do
  if i <= tonumber(ARGV[1]) then
    redis.call('DEL', key)
  elseif redis.call('EXISTS', key) == 1 then
    redis.call('DECR', key)
  end
end
return 0
";

/// Export pages one account may read per hour.
pub const EXPORT_PAGES_PER_HOUR: u32 = 600;

/// The limits' settings (the README's table names each).
#[derive(Debug, Clone)]
pub struct Settings {
    pub login_failures_per_client: u32,
    pub login_failures_per_user: u32,
    pub login_failures_per_ip: u32,
    pub login_failure_window_secs: u64,
    pub registrations_per_ip: u32,
    pub rooms_per_user: u32,
    pub membership_changes_per_user: u32,
    pub tickets_per_user: u32,
    pub creation_window_secs: u64,
}

impl From<&Config> for Settings {
    fn from(c: &Config) -> Self {
        Self {
            login_failures_per_client: c.login_failures_per_client,
            login_failures_per_user: c.login_failures_per_user,
            login_failures_per_ip: c.login_failures_per_ip,
            login_failure_window_secs: c.login_failure_window_secs,
            registrations_per_ip: c.registrations_per_ip,
            rooms_per_user: c.rooms_per_user,
            membership_changes_per_user: c.membership_changes_per_user,
            tickets_per_user: c.tickets_per_user,
            creation_window_secs: c.creation_window_secs,
        }
    }
}

/// The window of the ticket limit.
pub const TICKET_WINDOW_SECS: u64 = 60;
/// The window of the join-and-leave limit.
pub const MEMBERSHIP_WINDOW_SECS: u64 = 60;

#[derive(Clone)]
pub struct Limits {
    redis: Redis,
    keys: Keys,
    settings: Arc<Settings>,
}

/// The login counters, in two groups that are each one cluster slot: this
/// username's (from this address, and from everywhere, a higher cap; under
/// `{login:<name>}`) and this address's for every username (under
/// `{login-ip:<ip>}`). One tag for all would put every login of the system
/// on one Redis Cluster node.
struct LoginCounters {
    /// Empty for a malformed name: it cannot log in anyway, and is counted
    /// by address only. The per-client counter comes first.
    user: Vec<(String, u32)>,
    address: [(String, u32); 1],
}

impl Limits {
    pub fn new(redis: Redis, keys: Keys, settings: Settings) -> Self {
        Self {
            redis,
            keys,
            settings: Arc::new(settings),
        }
    }

    /// Counts one request against each `(key, limit)`, or refuses it.
    async fn take(
        &self,
        counters: &[(String, u32)],
        window_secs: u64,
        what: &'static str,
    ) -> Result<(), Error> {
        let script = Script::new(TAKE);
        let mut invocation = script.prepare_invoke();
        invocation.arg(window_secs);
        for (key, limit) in counters {
            invocation.key(key).arg(*limit);
        }
        let mut redis = self.redis.clone();
        let wait_ms: u64 = invocation
            .invoke_async(&mut redis)
            .await
            .map_err(Error::redis("counting against an abuse limit (refused)"))?;
        if wait_ms == 0 {
            return Ok(());
        }
        metrics::counter!("gateway_limited_total", "limit" => what).increment(1);
        Err(Error::Limited {
            message: format!("too many {what}; try again later"),
            retry_after_secs: wait_ms.max(1000).div_ceil(1000),
        })
    }

    fn login_counters(&self, username: &str, ip: IpAddr) -> LoginCounters {
        let (keys, config) = (&self.keys, &*self.settings);
        let ip = ip.to_string();
        let mut user = Vec::with_capacity(2);
        if valid_username(username) {
            let limits = [
                config.login_failures_per_client,
                config.login_failures_per_user,
            ];
            user.extend(
                keys.login_user_script(username, &ip)
                    .into_iter()
                    .zip(limits),
            );
        }
        LoginCounters {
            user,
            address: [(keys.login_ip(&ip), config.login_failures_per_ip)],
        }
    }

    /// Counts a login attempt before the password is checked: the address's
    /// counter first, then the username's. Each group is checked and counted
    /// atomically; when the username's refuses, the address's count is given
    /// back, so a refused attempt counts nothing (as with one script).
    pub async fn login_attempt(&self, username: &str, ip: IpAddr) -> Result<(), Error> {
        let counters = self.login_counters(username, ip);
        let window = self.settings.login_failure_window_secs;
        self.take(&counters.address, window, "failed logins")
            .await?;
        if counters.user.is_empty() {
            return Ok(());
        }
        if let Err(refused) = self.take(&counters.user, window, "failed logins").await {
            self.refund(&counters.address, 0).await;
            return Err(refused);
        }
        Ok(())
    }

    /// A login that never reached the password check was not a failure: its
    /// count is given back. One that succeeded also clears the count of this
    /// username from this address (the user proved they know the password), but
    /// not the username's cap across addresses: a stranger's guesses from
    /// elsewhere keep counting.
    pub async fn refund_login(&self, username: &str, ip: IpAddr, succeeded: bool) {
        let counters = self.login_counters(username, ip);
        self.refund(&counters.address, 0).await;
        if !counters.user.is_empty() {
            self.refund(&counters.user, usize::from(succeeded)).await;
        }
    }

    /// Gives back one count on each of `counters` (one slot), clearing the first
    /// `clear` of them instead.
    async fn refund(&self, counters: &[(String, u32)], clear: usize) {
        let script = Script::new(REFUND);
        let mut invocation = script.prepare_invoke();
        invocation.arg(clear);
        for (key, _) in counters {
            invocation.key(key);
        }
        let mut redis = self.redis.clone();
        if let Err(e) = invocation.invoke_async::<()>(&mut redis).await {
            tracing::warn!(error = %e, "could not give back a login count");
        }
    }

    /// Counts a registration from `ip`.
    pub async fn registration(&self, ip: IpAddr) -> Result<(), Error> {
        let key = self.keys.register_ip(&ip.to_string());
        let config = &self.settings;
        self.take(
            &[(key, config.registrations_per_ip)],
            config.creation_window_secs,
            "registrations from this address",
        )
        .await
    }

    /// Counts a room created by `user`.
    pub async fn room_creation(&self, user: &str) -> Result<(), Error> {
        let key = self.keys.rooms_created(user);
        let config = &self.settings;
        self.take(
            &[(key, config.rooms_per_user)],
            config.creation_window_secs,
            "rooms created",
        )
        .await
    }

    /// Joins and leaves by `user`, per minute (MEMBERSHIP_CHANGES_PER_USER):
    /// a join-leave loop would otherwise put a membership event in front of
    /// every member of a big room as fast as the user can send requests.
    pub async fn membership_change(&self, user: &str) -> Result<(), Error> {
        let counters = [(
            self.keys.membership_changes(user),
            self.settings.membership_changes_per_user,
        )];
        self.take(&counters, MEMBERSHIP_WINDOW_SECS, "joins and leaves")
            .await
    }

    /// Pages of `GET /api/me/export` per user, per hour
    /// ([`EXPORT_PAGES_PER_HOUR`]): each page reads up to a bounded number of
    /// messages, and this bounds how much of the archive one account can
    /// make the system read.
    pub async fn export_page(&self, user: &str) -> Result<(), Error> {
        let counters = [(self.keys.exports(user), EXPORT_PAGES_PER_HOUR)];
        self.take(&counters, 3600, "export pages").await
    }

    /// WebSocket tickets minted per user, per minute (TICKETS_PER_USER): a
    /// client reconnecting in a loop, or a stolen token, cannot fill Redis
    /// with tickets.
    pub async fn tickets(&self, user: &str) -> Result<(), Error> {
        let counters = [(
            self.keys.tickets_minted(user),
            self.settings.tickets_per_user,
        )];
        self.take(&counters, TICKET_WINDOW_SECS, "tickets").await
    }
}
