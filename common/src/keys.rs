//! Every Redis key and channel name, in one place. All start with `REDIS_PREFIX`.
//! Keys of one conversation share the hash tag `{<conversation>}` and keys of one
//! user share `{user:<name>}`, so each Lua script touches one Redis Cluster slot.

#[derive(Clone, Debug)]
pub struct Keys {
    prefix: String,
}

impl Keys {
    pub fn new(prefix: impl Into<String>) -> Self {
        Self {
            prefix: prefix.into(),
        }
    }

    /// The ingress stream gateways XADD to and chat-service consumes.
    pub fn ingress(&self) -> String {
        format!("{}ingress", self.prefix)
    }

    /// Where entries that failed too often go.
    pub fn dead_letter(&self) -> String {
        format!("{}ingress:dead", self.prefix)
    }

    /// Per-conversation seq counter.
    pub fn seq(&self, conversation: &str) -> String {
        format!("{}{{{conversation}}}:seq", self.prefix)
    }

    /// Dedup record of (sender, client_id) within a conversation.
    pub fn dedup(&self, conversation: &str, sender: &str, client_id: &str) -> String {
        format!(
            "{}{{{conversation}}}:dedup:{sender}:{client_id}",
            self.prefix
        )
    }

    /// A conversation's summary for the conversation list: a hash of the
    /// last message's seq (`seq`) and preview (`m`), and the time of the last
    /// activity (`at`), kept by chat-service at O(1) per message.
    pub fn last(&self, conversation: &str) -> String {
        format!("{}{{{conversation}}}:last", self.prefix)
    }

    /// The read markers of a conversation: a hash of username → the highest
    /// seq that user has read. Monotonic (see `common::read`).
    pub fn read_markers(&self, conversation: &str) -> String {
        format!("{}{{{conversation}}}:read", self.prefix)
    }

    /// The recent window of a conversation: a sorted set, score = seq.
    pub fn recent(&self, conversation: &str) -> String {
        format!("{}{{{conversation}}}:recent", self.prefix)
    }

    /// A user's offline queue: a list, oldest at the head.
    pub fn offline(&self, user: &str) -> String {
        format!("{}{{user:{user}}}:offline", self.prefix)
    }

    /// How many offline messages were dropped past the limit since the last ack.
    pub fn offline_dropped(&self, user: &str) -> String {
        format!("{}{{user:{user}}}:offline:dropped", self.prefix)
    }

    /// Archive entries that could not be archived as they are: a (conversation,
    /// seq) already holding another message, or an unreadable entry.
    pub fn archive_dead_letter(&self) -> String {
        format!("{}archive:dead", self.prefix)
    }

    /// The archive backlog: a stream of messages not yet in MongoDB.
    pub fn archive(&self) -> String {
        format!("{}archive", self.prefix)
    }

    /// A room's membership version: user-service bumps it on every join and
    /// leave, chat-service compares it with its cached member list.
    pub fn room_version(&self, room: &str) -> String {
        format!("{}{{room:{room}}}:members:v", self.prefix)
    }

    /// Login attempts on one username from one client address, this window.
    /// The login counters share the hash tag `{login}`: one script checks
    /// and counts them together.
    pub fn login_client(&self, username: &str, ip: &str) -> String {
        format!("{}{{login}}:client:{username}:{ip}", self.prefix)
    }

    /// Login attempts on one username from every address, this window.
    pub fn login_user(&self, username: &str) -> String {
        format!("{}{{login}}:user:{username}", self.prefix)
    }

    /// Login attempts from one client address, every username, this window.
    pub fn login_ip(&self, ip: &str) -> String {
        format!("{}{{login}}:ip:{ip}", self.prefix)
    }

    /// Registrations from one client address, this window.
    pub fn register_ip(&self, ip: &str) -> String {
        format!("{}limit:register:{ip}", self.prefix)
    }

    /// Rooms created by one user, this window.
    pub fn rooms_created(&self, user: &str) -> String {
        format!("{}limit:rooms:{user}", self.prefix)
    }

    /// A one-time WebSocket ticket: the username it admits, for 30 s.
    pub fn ws_ticket(&self, ticket: &str) -> String {
        format!("{}ws-ticket:{ticket}", self.prefix)
    }

    /// Sorted set of gateway id → last heartbeat (Unix ms).
    pub fn gateways(&self) -> String {
        format!("{}gateways", self.prefix)
    }

    /// Hash of username → live socket count on a gateway.
    pub fn gateway_users(&self, gateway: &str) -> String {
        format!("{}gw:{gateway}:users", self.prefix)
    }

    /// The counter of deliveries published to a gateway's channel: each
    /// payload carries the next value, so the gateway can tell a gap.
    pub fn gateway_delivery_seq(&self, gateway: &str) -> String {
        format!("{}gw:{gateway}:dseq", self.prefix)
    }

    /// A user's DM conversations, scored by last activity (Unix ms): what
    /// `GET /api/conversations` lists besides the user's rooms.
    pub fn user_dms(&self, user: &str) -> String {
        format!("{}{{user:{user}}}:dms", self.prefix)
    }

    /// The pub/sub channel a gateway reads its deliveries from.
    pub fn gateway_channel(&self, gateway: &str) -> String {
        format!("{}gw:{gateway}:deliver", self.prefix)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_carry_prefix_and_hash_tags() {
        let k = Keys::new("t1:");
        assert_eq!(k.seq("room:general"), "t1:{room:general}:seq");
        assert_eq!(k.dedup("dm:a:b", "a", "c1"), "t1:{dm:a:b}:dedup:a:c1");
        assert_eq!(k.offline("bob"), "t1:{user:bob}:offline");
        assert!(k.gateway_channel("g").starts_with("t1:"));
    }
}
