//! Per-account message limits, counted in Redis so that every gateway and
//! every socket of an account share them: messages (sends, edits, deletes;
//! not typing) per second and per day. The per-socket token bucket
//! (`ratelimit.rs`) bounds one connection; this bounds the account, however
//! many sockets on however many gateways it opens.
//!
//! Both are fixed windows: the second from the first message counted in it,
//! the day likewise (24 hours from the first message of the window). One
//! script checks both and counts both, so a burst on two gateways cannot
//! slip between a check and a count. Redis down: the message is refused as
//! `unavailable` (it could not be queued either).

use chat_redis::{
    connection::{LuaScript, Redis, query_scripted},
    keys::Keys,
};

use crate::config::Config;

/// KEYS[1]: this second's counter, KEYS[2]: this day's; ARGV: their limits
/// (0: none). Returns 0 when counted, or the milliseconds until the
/// refusing window ends.
const TAKE: &str = r"
local per_sec, per_day = tonumber(ARGV[1]), tonumber(ARGV[2])
if per_sec > 0 and tonumber(redis.call('GET', KEYS[1]) or '0') >= per_sec then
  local ttl = redis.call('PTTL', KEYS[1])
  if ttl < 0 then ttl = 1000 end
  return ttl
end
if per_day > 0 and tonumber(redis.call('GET', KEYS[2]) or '0') >= per_day then
  local ttl = redis.call('PTTL', KEYS[2])
  if ttl < 0 then ttl = 86400000 end
  return ttl
end
if per_sec > 0 then
  redis.call('INCR', KEYS[1])
  redis.call('PEXPIRE', KEYS[1], 1000, 'NX')
end
if per_day > 0 then
  redis.call('INCR', KEYS[2])
  redis.call('PEXPIRE', KEYS[2], 86400000, 'NX')
end
return 0
";

/// The quota settings (the README's table names each; 0 turns one off).
#[derive(Debug, Clone, Copy)]
pub struct Settings {
    pub per_sec: u32,
    pub per_day: u32,
}

impl From<&Config> for Settings {
    fn from(c: &Config) -> Self {
        Self {
            per_sec: c.account_messages_per_sec,
            per_day: c.account_messages_per_day,
        }
    }
}

/// What the quota said.
#[derive(Debug, PartialEq, Eq)]
pub enum Taken {
    Yes,
    /// Over a limit: try again after this many milliseconds.
    Limited {
        retry_after_ms: u64,
    },
    /// Redis did not answer.
    Unavailable,
}

#[derive(Clone)]
pub struct AccountQuota {
    redis: Redis,
    keys: Keys,
    settings: Settings,
    script: LuaScript,
}

impl AccountQuota {
    pub fn new(redis: Redis, keys: Keys, settings: Settings) -> Self {
        Self {
            redis,
            keys,
            settings,
            script: LuaScript::new(TAKE),
        }
    }

    /// Counts one message of `user`'s, or refuses it.
    pub async fn take(&self, user: &str) -> Taken {
        let Settings { per_sec, per_day } = self.settings;
        if per_sec == 0 && per_day == 0 {
            return Taken::Yes;
        }
        let mut redis = self.redis.clone();
        let mut pipe = redis::pipe();
        self.script.call(
            &mut pipe,
            &self.keys.account_quota(user),
            &[per_sec, per_day],
        );
        match query_scripted::<(u64,)>(&mut redis, &pipe, &[&self.script]).await {
            Ok((0,)) => Taken::Yes,
            Ok((wait,)) => {
                metrics::counter!("gateway_limited_total", "limit" => "account messages")
                    .increment(1);
                Taken::Limited {
                    retry_after_ms: wait,
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "account quota unavailable");
                Taken::Unavailable
            }
        }
    }
}
