//! A consumer group and one consumer of it: the reads, claims, sweeps and
//! the finishing pipeline (the module doc of `consumer` says how they fit).

use std::time::Duration;

use redis::{
    AsyncCommands,
    streams::{
        StreamAutoClaimOptions, StreamAutoClaimReply, StreamId, StreamPendingCountReply,
        StreamReadOptions, StreamReadReply,
    },
};

use chat_model::limits::DEAD_LETTER_MAXLEN;

use crate::connection::Redis;

/// How long a read of new entries blocks by default: short enough that
/// shutdown and the claim timer are noticed within a second.
const BLOCK: Duration = Duration::from_secs(1);

/// KEYS[1]: the stream. ARGV: the group, this consumer, the idle time (ms)
/// past which a consumer with nothing pending is gone. Deletes those and
/// returns their names. One script: a consumer that reads (and so has
/// pending entries) between the look and the delete cannot lose them.
const SWEEP: &str = r"
local gone = {}
for _, c in ipairs(redis.call('XINFO', 'CONSUMERS', KEYS[1], ARGV[1])) do
  local f = {}
  for i = 1, #c, 2 do f[c[i]] = c[i + 1] end
  if f['name'] ~= ARGV[2] and tonumber(f['pending']) == 0
      and tonumber(f['idle']) > tonumber(ARGV[3]) then
    redis.call('XGROUP', 'DELCONSUMER', KEYS[1], ARGV[1], f['name'])
    gone[#gone + 1] = f['name']
  end
end
return gone
";

/// A stream, its consumer group, this consumer, and how they are worked.
#[derive(Debug, Clone)]
pub struct Group {
    pub stream: String,
    pub group: String,
    pub consumer: String,
    /// Largest number of entries handed to the handler at once.
    pub batch: usize,
    /// Entries pending this long on another consumer are taken over.
    pub claim_idle: Duration,
    /// Entries delivered more often than this go to the dead-letter stream
    /// (None: never, for handlers whose failures are only ever transient).
    pub max_deliveries: Option<usize>,
    /// Where dead letters go (capped at DEAD_LETTER_MAXLEN).
    pub dead_letter: String,
    /// The field of an entry that holds its payload.
    pub field: &'static str,
}

impl Group {
    /// Adds XACK and XDEL of `ids` to `pipe`: the entries are done.
    pub fn ack(&self, pipe: &mut redis::Pipeline, ids: &[&str]) {
        if ids.is_empty() {
            return;
        }
        pipe.cmd("XACK")
            .arg(&self.stream)
            .arg(&self.group)
            .arg(ids)
            .ignore();
        pipe.cmd("XDEL").arg(&self.stream).arg(ids).ignore();
    }

    /// Adds the dead-lettering of entry `id` (its raw payload) to `pipe`,
    /// with the reason, for an operator to look at. The caller acks it.
    pub fn dead_letter(&self, pipe: &mut redis::Pipeline, id: &str, payload: &str, reason: &str) {
        pipe.cmd("XADD")
            .arg(&self.dead_letter)
            .arg("MAXLEN")
            .arg("~")
            .arg(DEAD_LETTER_MAXLEN)
            .arg("*")
            .arg("id")
            .arg(id)
            .arg(self.field)
            .arg(payload)
            .arg("reason")
            .arg(reason)
            .ignore();
    }

    /// The payload of `entry` (empty if the field is missing).
    pub fn payload(&self, entry: &StreamId) -> String {
        entry.get::<String>(self.field).unwrap_or_default()
    }
}

/// A group member with a connection of its own: blocking reads would stall
/// a shared one.
pub struct Consumer {
    pub group: Group,
    pub conn: Redis,
    /// Entries per read now (at most `group.batch`).
    limit: usize,
    /// How long a read waits for a first new entry.
    block: Duration,
    /// Commands that finish handled entries, not sent yet (see the module).
    finish: redis::Pipeline,
    /// Whether a send of `finish` failed: its entries may still be pending
    /// here, so the next read should be of this consumer's pending entries.
    finish_failed: bool,
    /// Whether each read also measures the stream's length (XLEN, in the
    /// same round trip), and the last measure.
    measure_length: bool,
    length: Option<u64>,
}

impl Consumer {
    pub fn new(group: Group, conn: Redis) -> Self {
        let limit = group.batch;
        Self {
            group,
            conn,
            limit,
            block: BLOCK,
            finish: redis::pipe(),
            finish_failed: false,
            measure_length: false,
            length: None,
        }
    }

    /// Each read also measures the stream's length: see [`Self::length`].
    pub fn measuring_length(mut self) -> Self {
        self.measure_length = true;
        self
    }

    /// The stream's length after the last read (with
    /// [`Self::measuring_length`]; None before a read succeeded).
    pub fn length(&self) -> Option<u64> {
        self.length
    }

    /// The pipeline a handler finishes its entries in ([`Group::ack`],
    /// [`Group::dead_letter`], or any other write whose reply is ignored:
    /// add every command with `.ignore()`). It is sent before this
    /// consumer's next read or claim, in the same round trip, or by
    /// [`Self::flush`]. If that send fails, the entries stay pending and
    /// are handled again, as after any failure before an acknowledgement.
    pub fn finish(&mut self) -> &mut redis::Pipeline {
        &mut self.finish
    }

    /// The group and [`Self::finish`] at once, to acknowledge into it.
    pub fn finishing(&mut self) -> (&Group, &mut redis::Pipeline) {
        (&self.group, &mut self.finish)
    }

    /// Whether a send of finished entries failed since this was last asked
    /// (the caller then reads this consumer's pending entries again).
    pub fn take_finish_failed(&mut self) -> bool {
        std::mem::take(&mut self.finish_failed)
    }

    /// Sends what [`Self::finish`] holds now (at shutdown, say).
    pub async fn flush(&mut self) -> redis::RedisResult<()> {
        if self.finish.cmd_iter().next().is_none() {
            return Ok(());
        }
        let pipe = std::mem::replace(&mut self.finish, redis::pipe());
        let sent = pipe.query_async::<()>(&mut self.conn).await;
        self.finish_failed |= sent.is_err();
        sent
    }

    /// `cmd` after whatever [`Self::finish`] holds, in one round trip, and
    /// `cmd`'s reply; with `measure`, the stream's length too.
    async fn query_after_finish<T: redis::FromRedisValue>(
        &mut self,
        cmd: redis::Cmd,
        measure: bool,
    ) -> redis::RedisResult<T> {
        let mut pipe = std::mem::replace(&mut self.finish, redis::pipe());
        let finishing = pipe.cmd_iter().next().is_some();
        pipe.add_command(cmd);
        if measure {
            pipe.cmd("XLEN").arg(&self.group.stream);
        }
        let reply: redis::RedisResult<Vec<redis::Value>> = pipe.query_async(&mut self.conn).await;
        // Had the pipeline finished entries, a failure leaves their fate
        // unknown: they may still be pending.
        self.finish_failed |= finishing && reply.is_err();
        let mut replies = reply?.into_iter();
        let first = replies.next().unwrap_or(redis::Value::Nil);
        if let Some(length) = replies.next() {
            self.length = Some(redis::from_owned_redis_value(length)?);
        }
        redis::from_owned_redis_value(first)
    }

    /// Reads of new entries wait up to `block` for one (a second by default).
    pub fn blocking_for(mut self, block: Duration) -> Self {
        self.block = block;
        self
    }

    /// How many entries the next read takes: `Group::batch`, less after a
    /// failed batch (see the runtime), so a batch too big to finish in time
    /// is split instead of failing the same way again.
    pub fn limit(&self) -> usize {
        self.limit
    }

    /// A batch of `size` failed: the next reads take half of it.
    pub fn shrink(&mut self, size: usize) {
        self.limit = (size / 2).max(1);
    }

    /// A batch succeeded: the limit grows back by a quarter, up to the batch.
    pub fn grow(&mut self) {
        self.limit = (self.limit + self.limit.div_ceil(4)).min(self.group.batch);
    }

    /// Creates the group (and the stream) if missing.
    pub async fn ensure_group(&mut self) -> redis::RedisResult<()> {
        let created: redis::RedisResult<()> = redis::cmd("XGROUP")
            .arg("CREATE")
            .arg(&self.group.stream)
            .arg(&self.group.group)
            .arg("0")
            .arg("MKSTREAM")
            .query_async(&mut self.conn)
            .await;
        match created {
            Err(e) if e.code() != Some("BUSYGROUP") => Err(e),
            _ => Ok(()),
        }
    }

    /// This consumer's pending entries (`pending`), or new ones, blocking up
    /// to a second for the first. A short read of new entries waits `linger`
    /// once, then takes what arrived meanwhile without blocking: the entries
    /// it holds must not wait for traffic that may not come.
    pub async fn read(
        &mut self,
        pending: bool,
        linger: Duration,
    ) -> redis::RedisResult<Vec<StreamId>> {
        let limit = self.limit;
        let block = (!pending).then_some(self.block);
        let mut entries = self.read_once(pending, limit, block).await?;
        if !pending && !linger.is_zero() && !entries.is_empty() && entries.len() < limit {
            tokio::time::sleep(linger).await;
            // The first read's entries are ours now: they are handled
            // whatever becomes of the second read.
            match self.read_once(false, limit - entries.len(), None).await {
                Ok(more) => entries.extend(more),
                Err(e) => tracing::warn!(error = %e, "lingering read failed"),
            }
        }
        Ok(entries)
    }

    /// One XREADGROUP: pending entries from the start, or new ones, waiting
    /// up to `block` for one when given.
    async fn read_once(
        &mut self,
        pending: bool,
        count: usize,
        block: Option<Duration>,
    ) -> redis::RedisResult<Vec<StreamId>> {
        let mut options = StreamReadOptions::default()
            .group(&self.group.group, &self.group.consumer)
            .count(count);
        if let Some(block) = block {
            options = options.block(block.as_millis() as usize);
        }
        let read = redis::Cmd::xread_options(
            &[&self.group.stream],
            &[if pending { "0" } else { ">" }],
            &options,
        );
        let reply: Option<StreamReadReply> =
            self.query_after_finish(read, self.measure_length).await?;
        Ok(reply
            .map(|r| r.keys.into_iter().flat_map(|k| k.ids).collect())
            .unwrap_or_default())
    }

    /// Takes over entries idle longer than `claim_idle` on any consumer.
    pub async fn claim(&mut self) -> redis::RedisResult<Vec<StreamId>> {
        let claim = redis::Cmd::xautoclaim_options(
            &self.group.stream,
            &self.group.group,
            &self.group.consumer,
            self.group.claim_idle.as_millis() as u64,
            "0",
            StreamAutoClaimOptions::default().count(self.limit),
        );
        let reply: StreamAutoClaimReply = self.query_after_finish(claim, false).await?;
        Ok(reply.claimed)
    }

    /// The ids among `entries` delivered more than `max` times.
    pub async fn over_delivered(
        &mut self,
        entries: &[StreamId],
        max: usize,
    ) -> redis::RedisResult<Vec<String>> {
        let (Some(first), Some(last)) = (entries.first(), entries.last()) else {
            return Ok(Vec::new());
        };
        let pending: StreamPendingCountReply = self
            .conn
            .xpending_consumer_count(
                &self.group.stream,
                &self.group.group,
                &first.id,
                &last.id,
                entries.len(),
                &self.group.consumer,
            )
            .await?;
        Ok(pending
            .ids
            .into_iter()
            .filter(|p| p.times_delivered > max)
            .map(|p| p.id)
            .collect())
    }

    /// Removes the group's consumers that have nothing pending and have not
    /// read for `idle` (gone processes: consumer names come from host
    /// names, so each restart elsewhere would leave one behind). A live
    /// consumer reads every second; one removed anyway comes back with its
    /// next read. Returns the names removed.
    pub async fn sweep_gone(&mut self, idle: Duration) -> redis::RedisResult<Vec<String>> {
        redis::Script::new(SWEEP)
            .key(&self.group.stream)
            .arg(&self.group.group)
            .arg(&self.group.consumer)
            .arg(idle.as_millis() as u64)
            .invoke_async(&mut self.conn)
            .await
    }

    /// Dead-letters `entry` with `reason`, acknowledged and deleted at once.
    pub async fn dead_letter_now(
        &mut self,
        entry: &StreamId,
        reason: &str,
    ) -> redis::RedisResult<()> {
        let mut pipe = redis::pipe();
        self.group
            .dead_letter(&mut pipe, &entry.id, &self.group.payload(entry), reason);
        self.group.ack(&mut pipe, &[&entry.id]);
        pipe.query_async(&mut self.conn).await
    }
}
