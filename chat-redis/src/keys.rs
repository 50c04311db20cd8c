//! Every Redis key and channel name, in one place. All start with `REDIS_PREFIX`.
//! Keys of one conversation share the hash tag `{<conversation>}` and keys of one
//! user share `{user:<name>}`, so each Lua script touches one Redis Cluster slot.

/// The partition of `partitions` that `conversation`'s stream entries go
/// to: its cluster slot modulo the count, so it never changes while the
/// count does not, and every language can compute it (CRC16, as Redis).
pub fn partition(conversation: &str, partitions: usize) -> usize {
    usize::from(crate::connection::slots::slot(conversation.as_bytes())) % partitions.max(1)
}

/// The most stream partitions a deployment may have (INGRESS_PARTITIONS,
/// ARCHIVE_PARTITIONS): each costs every worker a blocking connection.
pub const MAX_PARTITIONS: usize = 256;

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

    /// Ingress stream `partition` (of INGRESS_PARTITIONS): gateways XADD a
    /// send to its conversation's partition ([`partition`]), chat-service
    /// consumes them all. Each partition is its own cluster slot.
    pub fn ingress(&self, partition: usize) -> String {
        format!("{}{{ingress:{partition}}}", self.prefix)
    }

    /// Where entries of ingress `partition` that failed too often go (in the
    /// partition's slot, so a dead-lettering is one single-slot pipeline).
    pub fn dead_letter(&self, partition: usize) -> String {
        format!("{}{{ingress:{partition}}}:dead", self.prefix)
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

    /// What is final in a conversation, two bits per seq: bit `2·seq` is set
    /// once the message at `seq` is deleted or tombstoned (no event may
    /// change it any more), bit `2·seq + 1` once it is a tombstone (it took
    /// its seq and was never stored). Read and set by the sequencer, in the
    /// script that takes seqs, so an event is decided against the state at
    /// the moment it takes its own seq. At most `2·last seq` bits.
    pub fn finals(&self, conversation: &str) -> String {
        format!("{}{{{conversation}}}:finals", self.prefix)
    }

    /// Which messages of a conversation have had their live deliveries
    /// published, one bit per seq, set with the acknowledgement of their
    /// batch: a retried batch then publishes them again to nobody but
    /// their sender (its `sent`), so no socket gets a message twice
    /// however often its batch is retried. At most `last seq / 8` bytes.
    pub fn delivered(&self, conversation: &str) -> String {
        format!("{}{{{conversation}}}:delivered", self.prefix)
    }

    /// A conversation's summary for the conversation list: a hash of the
    /// last message's seq (`seq`) and preview (`m`), and the time of the last
    /// activity (`at`), kept by chat-service at O(1) per message.
    pub fn last(&self, conversation: &str) -> String {
        format!("{}{{{conversation}}}:last", self.prefix)
    }

    /// The read markers of a conversation: a hash of username → the highest
    /// seq that user has read. Monotonic (see `chat_redis::read`).
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

    /// When a socket of the user last read the offline queue (Unix ms, the
    /// reader's clock): a message pushed after that, for a lookup that saw
    /// the user offline before it, missed that socket (the connect race).
    pub fn offline_seen(&self, user: &str) -> String {
        format!("{}{{user:{user}}}:offline:seen", self.prefix)
    }

    /// The request a client_id names for its sender, as a fingerprint:
    /// one client_id, one request (kind, conversation, target), in every
    /// conversation. Kept a little longer than the dedup records.
    pub fn client_claim(&self, user: &str, client_id: &str) -> String {
        format!("{}{{user:{user}}}:cid:{client_id}", self.prefix)
    }

    /// How many offline messages were dropped past the limit since the last ack.
    pub fn offline_dropped(&self, user: &str) -> String {
        format!("{}{{user:{user}}}:offline:dropped", self.prefix)
    }

    /// Archive entries of `partition` that could not be archived as they
    /// are: a (conversation, seq) already holding another message, or an
    /// unreadable entry.
    pub fn archive_dead_letter(&self, partition: usize) -> String {
        format!("{}{{archive:{partition}}}:dead", self.prefix)
    }

    /// Archive backlog `partition` (of ARCHIVE_PARTITIONS): a stream of
    /// messages not yet in MongoDB, a conversation's always in one partition.
    pub fn archive(&self, partition: usize) -> String {
        format!("{}{{archive:{partition}}}", self.prefix)
    }

    /// A room's membership version: user-service bumps it on every join and
    /// leave, chat-service compares it with its cached member list.
    pub fn room_version(&self, room: &str) -> String {
        format!("{}{{room:{room}}}:members:v", self.prefix)
    }

    /// A user's block-list version: user-service bumps it on every block
    /// and unblock, chat-service compares it with its cached list. It
    /// expires a day after the last change, far past any cached list.
    pub fn blocks_version(&self, user: &str) -> String {
        format!("{}{{user:{user}}}:blocks:v", self.prefix)
    }

    /// Slow mode: the client_id of `user`'s last message in `room`, kept
    /// for the room's interval. The room's tag: one slot per room.
    pub fn slow_mode(&self, room: &str, user: &str) -> String {
        format!("{}{{room:{room}}}:slow:{user}", self.prefix)
    }

    /// Login attempts on one username from one client address, this window.
    /// A username's two counters share the hash tag `{login:<name>}`: one
    /// script checks and counts them together. (One tag for every login
    /// would put all logins on one cluster node.)
    pub fn login_client(&self, username: &str, ip: &str) -> String {
        format!("{}{{login:{username}}}:client:{ip}", self.prefix)
    }

    /// Login attempts on one username from every address, this window.
    pub fn login_user(&self, username: &str) -> String {
        format!("{}{{login:{username}}}:user", self.prefix)
    }

    /// Login attempts from one client address, every username, this window.
    pub fn login_ip(&self, ip: &str) -> String {
        format!("{}{{login-ip:{ip}}}", self.prefix)
    }

    /// Registrations from one client address, this window.
    pub fn register_ip(&self, ip: &str) -> String {
        format!("{}limit:register:{ip}", self.prefix)
    }

    /// Rooms created by one user, this window.
    pub fn rooms_created(&self, user: &str) -> String {
        format!("{}limit:rooms:{user}", self.prefix)
    }

    /// WebSocket tickets minted by one user, this window.
    /// Joins and leaves by `user` in the current window.
    pub fn membership_changes(&self, user: &str) -> String {
        format!("{}limit:membership:{user}", self.prefix)
    }

    pub fn tickets_minted(&self, user: &str) -> String {
        format!("{}limit:tickets:{user}", self.prefix)
    }

    /// Account export pages read by one user, this window.
    pub fn exports(&self, user: &str) -> String {
        format!("{}limit:exports:{user}", self.prefix)
    }

    /// A one-time WebSocket ticket: the username it admits, for 30 s.
    pub fn ws_ticket(&self, ticket: &str) -> String {
        format!("{}ws-ticket:{ticket}", self.prefix)
    }

    /// A revoked session: present while a token naming it could still be
    /// unexpired (`sessions.rs`).
    pub fn revoked_session(&self, session: &str) -> String {
        format!("{}session:{session}:revoked", self.prefix)
    }

    /// The sharded channel every gateway reads revocations from: one slot
    /// for the whole system (revocations are rare), with [`Self::revocations_probe`].
    pub fn revocations_channel(&self) -> String {
        format!("{}{{sessions}}:revoked", self.prefix)
    }

    /// A key in the revocations channel's slot, to probe its node.
    pub fn revocations_probe(&self) -> String {
        format!("{}{{sessions}}:probe", self.prefix)
    }

    /// Messages sent by one account in the current second and today: one
    /// hash tag, so one script counts both (`gateway/src/ingress/quota.rs`).
    pub fn account_quota(&self, user: &str) -> [String; 2] {
        [
            format!("{}{{quota:{user}}}:sec", self.prefix),
            format!("{}{{quota:{user}}}:day", self.prefix),
        ]
    }

    /// Sorted set of gateway id → last heartbeat (Unix ms).
    pub fn gateways(&self) -> String {
        format!("{}gateways", self.prefix)
    }

    /// Hash of username → live socket count on a gateway.
    pub fn gateway_users(&self, gateway: &str) -> String {
        format!("{}{{gw:{gateway}}}:users", self.prefix)
    }

    /// The counter of deliveries published to a gateway's channel: each
    /// payload carries the next value, so the gateway can tell a gap.
    pub fn gateway_delivery_seq(&self, gateway: &str) -> String {
        format!("{}{{gw:{gateway}}}:dseq", self.prefix)
    }

    /// A user's DM conversations, scored by last activity (Unix ms): what
    /// `GET /api/conversations` lists besides the user's rooms.
    pub fn user_dms(&self, user: &str) -> String {
        format!("{}{{user:{user}}}:dms", self.prefix)
    }

    /// A long-poll connection's server frames, waiting for its polls: a
    /// stream, read by whichever gateway a poll reaches.
    pub fn poll_queue(&self, gateway: &str, id: u64) -> String {
        format!("{}{{poll:{gateway}.{id:x}}}", self.prefix)
    }

    /// The sharded channel a gateway reads frames from, POSTed on other
    /// gateways for the streams it holds: in its delivery counter's slot.
    pub fn gateway_inbound(&self, gateway: &str) -> String {
        format!("{}{{gw:{gateway}}}:inbound", self.prefix)
    }

    /// The sharded pub/sub channel (SSUBSCRIBE) a gateway reads its
    /// deliveries from: in its delivery counter's slot, so one script
    /// numbers and publishes a payload.
    pub fn gateway_channel(&self, gateway: &str) -> String {
        format!("{}{{gw:{gateway}}}:deliver", self.prefix)
    }
}

/// The key set of every Lua script of the system, built here so that the
/// scripts' callers and the test that checks each set stays in one Redis
/// Cluster slot (`chat-redis/tests/api/slots.rs`) use the same sets.
impl Keys {
    /// chat-service's dedup-and-seq script (`sequencer.rs`).
    pub fn sequence_script(
        &self,
        conversation: &str,
        sender: &str,
        client_id: &str,
    ) -> [String; 6] {
        [
            self.dedup(conversation, sender, client_id),
            self.seq(conversation),
            self.read_markers(conversation),
            self.last(conversation),
            self.finals(conversation),
            self.delivered(conversation),
        ]
    }

    /// The read-marker script (`read.rs`).
    pub fn read_script(&self, conversation: &str) -> [String; 2] {
        [self.seq(conversation), self.read_markers(conversation)]
    }

    /// The conversation-summary script (`summary.rs`).
    pub fn summary_script(&self, conversation: &str) -> [String; 1] {
        [self.last(conversation)]
    }

    /// The numbered-publish script (`publish.rs`): its key, and the sharded
    /// channel it publishes to, which must be in the key's slot too.
    pub fn publish_script(&self, gateway: &str) -> ([String; 1], String) {
        (
            [self.gateway_delivery_seq(gateway)],
            self.gateway_channel(gateway),
        )
    }

    /// history-service's offline ack script.
    pub fn offline_script(&self, user: &str) -> [String; 2] {
        [self.offline(user), self.offline_dropped(user)]
    }

    /// history-service's offline push script: the queue, its dropped count,
    /// and when a socket last read it.
    pub fn offline_push_script(&self, user: &str) -> [String; 3] {
        [
            self.offline(user),
            self.offline_dropped(user),
            self.offline_seen(user),
        ]
    }

    /// history-service's script that applies an edit or delete in the window.
    pub fn window_script(&self, conversation: &str) -> [String; 1] {
        [self.recent(conversation)]
    }

    /// The gateway's login-limit script on a username's counters: from this
    /// address, then from everywhere (the address's own counter is a call of
    /// its own).
    pub fn login_user_script(&self, username: &str, ip: &str) -> [String; 2] {
        [self.login_client(username, ip), self.login_user(username)]
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
        assert_eq!(k.gateway_channel("g"), "t1:{gw:g}:deliver");
        assert_eq!(k.ingress(3), "t1:{ingress:3}");
    }

    #[test]
    fn a_conversation_keeps_its_partition() {
        assert_eq!(partition("dm:a:b", 1), 0);
        let p = partition("room:general", 8);
        assert!(p < 8);
        assert_eq!(p, partition("room:general", 8));
        // Conversations spread over the partitions.
        let used: std::collections::HashSet<usize> = (0..200)
            .map(|i| partition(&format!("room:r{i}"), 8))
            .collect();
        assert_eq!(used.len(), 8);
    }
}
