//! Publishing a batch's deliveries so that a lost one is noticed.
//!
//! Each payload to a gateway's channel goes out as `<n> <json>`, where `n`
//! comes from that channel's delivery counter, incremented in the same script
//! as the SPUBLISH: two workers publishing to one gateway cannot reorder their
//! numbers, so a gateway that sees `n` jump knows it missed something and asks
//! its clients to resync. SPUBLISH's answer (how many subscribers got it) is
//! kept: zero means the gateway is not listening (its subscription dropped or
//! it died), and the batch reroutes those recipients' messages.

use crate::{
    connection::{LuaScript, Redis},
    keys::Keys,
};

/// KEYS[1]: the gateway's delivery counter; ARGV[1]: its channel, a sharded
/// one in the counter's slot (Redis Cluster routes SPUBLISH by the channel,
/// and the script runs on the counter's node); ARGV[2]: the payload. Returns the number of subscribers that received it. The
/// counter expires a day after the gateway's last delivery (gateways come
/// and go with their host names).
const PUBLISH: &str = r"
local n = redis.call('INCR', KEYS[1])
redis.call('EXPIRE', KEYS[1], 86400)
return redis.call('SPUBLISH', ARGV[1], n .. ' ' .. ARGV[2])
";

#[derive(Clone)]
pub struct Publisher {
    keys: Keys,
    script: LuaScript,
}

impl Publisher {
    pub fn new(keys: Keys) -> Self {
        Self {
            keys,
            script: LuaScript::new(PUBLISH),
        }
    }

    /// Adds one call per payload to `pipe` (send it with
    /// [`crate::connection::query_scripted`] and [`Self::script`]); the
    /// calls' replies come back in `payloads`' order.
    pub fn add(&self, pipe: &mut redis::Pipeline, payloads: &[(String, String)]) {
        for (gw, payload) in payloads {
            let (keys, channel) = self.keys.publish_script(gw);
            self.script
                .call(pipe, &keys, &[channel.as_str(), payload.as_str()]);
        }
    }

    /// Publishes `payloads`; returns the gateways that nobody heard.
    pub async fn publish(
        &self,
        conn: &mut Redis,
        payloads: &[(String, String)],
    ) -> redis::RedisResult<Vec<String>> {
        if payloads.is_empty() {
            return Ok(Vec::new());
        }
        let mut pipe = redis::pipe();
        self.add(&mut pipe, payloads);
        let heard: Vec<i64> =
            crate::connection::query_scripted(conn, &pipe, &[self.script()]).await?;
        Ok(unheard(payloads, &heard))
    }

    /// The script [`Self::add`] calls.
    pub fn script(&self) -> &LuaScript {
        &self.script
    }
}

/// The gateways whose payload reached no subscriber.
pub fn unheard(payloads: &[(String, String)], heard: &[i64]) -> Vec<String> {
    payloads
        .iter()
        .zip(heard)
        .filter(|(_, n)| **n == 0)
        .map(|((gw, _), _)| gw.clone())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_payloads_nobody_heard_are_unheard() {
        let payloads = vec![
            ("gw-a".to_owned(), "[]".to_owned()),
            ("gw-b".to_owned(), "[]".to_owned()),
        ];
        assert_eq!(unheard(&payloads, &[1, 0]), ["gw-b"]);
        assert!(unheard(&payloads, &[2, 1]).is_empty());
    }
}
