//! Dedup, seq and the decision on an edit or delete, in one atomic step per
//! request: the first time a (sender, client_id) is seen in a conversation
//! it gets a fresh id and the next seq; every replay gets the same id, seq
//! and time back, and the ingress entry that first took them, so a retry of
//! that entry can be told from a re-send. A fresh seq also moves its
//! sender's read marker there (`chat_redis::read`): one's own messages are
//! never unread.
//!
//! An edit or delete is decided here, against its target's state at the
//! moment it would take its seq: the conversation's finals
//! (`Keys::finals`, two bits per seq) say which messages are deleted or
//! tombstoned, and the script that reads them takes the seq and, for a
//! delete, sets its target's bit. So a delete is final: no edit and no
//! second delete gets a seq after it, however the requests race between
//! workers and batches. Admission checked the rest (who may change what)
//! against the stored target; those facts never change.
//!
//! A fresh message (not an edit or delete) also becomes its conversation's
//! preview in the conversation list (`chat_redis::summary`) right here: the
//! sequencer orders a conversation, so the seq it just took is the newest
//! and no ordering check is needed. That spares a script call per message
//! after storing, the largest single Redis cost of a DM to a new partner.
//! Should the message never be stored (dead-lettered), its tombstone clears
//! the preview and sets its bits (`Persist::tombstone`), and a re-send of it
//! is told so instead of being acknowledged.

use chat_model::preview::PreviewParts;
use chat_redis::connection::Redis;
use chat_redis::{connection::LuaScript, keys::Keys};

/// KEYS: dedup record, seq counter, read markers, summary, finals,
/// delivered. ARGV:
/// id, ts, dedup TTL, ingress entry, sender (whose read marker moves; ''
/// for none), what ('m' a message, 'e' an
/// edit, 'd' a delete, 'v' a membership event), the event's target seq (0
/// for a message), and for a message the preview JSON cut where its seq
/// goes (two halves). A membership event changes neither the preview nor
/// anyone's unread count: the summary's seq is its last message's.
///
/// Replies {0, record, tombstone bit, delivered bit} for a replay, {1,
/// record} for a fresh seq, {2, reason} for an event refused (no seq
/// taken, nothing written).
const DEDUP_SEQ: &str = r#"
local d = redis.call('GET', KEYS[1])
if d then
  local seq = tonumber(string.match(d, '^[^|]*|(%d+)|'))
  local dead, delivered = 0, 0
  if seq then
    dead = redis.call('GETBIT', KEYS[5], 2 * seq + 1)
    delivered = redis.call('GETBIT', KEYS[6], seq)
  end
  return {0, d, dead, delivered}
end
local what = ARGV[6]
if what == 'e' or what == 'd' then
  local target = tonumber(ARGV[7])
  local last = tonumber(redis.call('GET', KEYS[2]) or '0')
  if target < 1 or target > last then return {2, 'no message at that seq'} end
  if redis.call('GETBIT', KEYS[5], 2 * target) == 1 then
    return {2, 'that message is deleted'}
  end
end
local seq = redis.call('INCR', KEYS[2])
local rec = ARGV[1] .. '|' .. seq .. '|' .. ARGV[2] .. '|' .. ARGV[4]
redis.call('SET', KEYS[1], rec, 'EX', ARGV[3])
if ARGV[5] ~= '' then redis.call('HSET', KEYS[3], ARGV[5], seq) end
if what == 'd' then redis.call('SETBIT', KEYS[5], 2 * tonumber(ARGV[7]), 1) end
if ARGV[8] then
  local cur = redis.call('HMGET', KEYS[4], 'at', 'e', 'd')
  local set = {'seq', seq, 'm', ARGV[8] .. seq .. ARGV[9]}
  if tonumber(ARGV[2]) > tonumber(cur[1] or '0') then
    set[5] = 'at'; set[6] = ARGV[2]
  end
  redis.call('HSET', KEYS[4], unpack(set))
  if cur[2] or cur[3] then redis.call('HDEL', KEYS[4], 'e', 'd') end
end
return {1, rec}
"#;

/// What the sequencer decided for one message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Taken {
    /// False for a replay of an already sequenced (sender, client_id).
    pub fresh: bool,
    pub id: String,
    pub seq: u64,
    pub ts: i64,
    /// The ingress entry that took this id and seq (None in records written
    /// before entries were recorded).
    pub origin: Option<String>,
    /// A replay whose seq became a tombstone: its message was never stored.
    pub dead: bool,
    /// A replay whose live deliveries were published already (its batch
    /// was acknowledged, or got that far before it failed).
    pub delivered: bool,
}

/// What the sequencer answered one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    Taken(Taken),
    /// An edit or delete refused against its target's state now: the
    /// target is deleted, or no message has that seq. Nothing was written.
    Refused(String),
}

pub struct SequenceRequest<'a> {
    pub conversation: &'a str,
    pub sender: &'a str,
    /// Whom the client_id is deduplicated under ([`dedup_sender`]).
    pub dedup_as: &'a str,
    pub client_id: &'a str,
    /// The ingress entry asking.
    pub stream_id: &'a str,
    /// For a message, its body (the preview is made of it); None for an
    /// edit or delete.
    pub preview_body: Option<&'a str>,
    /// For an edit or delete: its kind and target seq.
    pub event: Option<(chat_model::message::EventKind, u64)>,
    /// A membership event's action. Only a join moves its actor's read marker (a joiner has read what
    /// came before); a leave, kick or ban must leave no marker behind for
    /// someone who is gone, a deleted account included.
    pub member: Option<chat_model::message::MemberAction>,
}

/// The sender a membership event's client_id (its user-service outbox
/// row) is deduplicated under: no username can be it, so no user's
/// client_id can shadow an event, or an event a user's message.
pub const MEMBER_EVENTS_SENDER: &str = "#room";

/// Whom `entry`'s client_id is deduplicated under.
pub fn dedup_sender(entry: &chat_model::message::IngressEntry) -> &str {
    if entry.kind == chat_model::message::EntryKind::Member {
        MEMBER_EVENTS_SENDER
    } else {
        &entry.user
    }
}

#[derive(Clone)]
pub struct Sequencer {
    script: LuaScript,
    keys: Keys,
    dedup_ttl_secs: u64,
}

impl Sequencer {
    pub fn new(keys: Keys, dedup_ttl_secs: u64) -> Self {
        Self {
            script: LuaScript::new(DEDUP_SEQ),
            keys,
            dedup_ttl_secs,
        }
    }

    /// Sequences a batch in one pipeline.
    pub async fn sequence(
        &self,
        conn: &mut Redis,
        requests: &[SequenceRequest<'_>],
    ) -> redis::RedisResult<Vec<Decision>> {
        if requests.is_empty() {
            return Ok(Vec::new());
        }
        let now = chat_model::time::now_ms();
        let mut pipe = redis::pipe();
        for r in requests {
            let id = uuid::Uuid::now_v7().to_string();
            let (what, target) = match r.event {
                None if r.member.is_some() => ("v", 0),
                None => ("m", 0),
                Some((chat_model::message::EventKind::Edit, t)) => ("e", t),
                Some((chat_model::message::EventKind::Delete, t)) => ("d", t),
            };
            let mut args = vec![
                id.clone(),
                now.to_string(),
                self.dedup_ttl_secs.to_string(),
                r.stream_id.to_owned(),
                match r.member {
                    Some(a) if a != chat_model::message::MemberAction::Join => String::new(),
                    _ => r.sender.to_owned(),
                },
                what.to_owned(),
                target.to_string(),
            ];
            if let (None, Some(body), None) = (r.event, r.preview_body, r.member) {
                let PreviewParts {
                    before_seq,
                    after_seq,
                } = PreviewParts::new(&id, r.sender, body, now);
                args.extend([before_seq, after_seq]);
            }
            self.script.call(
                &mut pipe,
                &self
                    .keys
                    .sequence_script(r.conversation, r.dedup_as, r.client_id),
                &args,
            );
        }
        let replies: Vec<Vec<redis::Value>> =
            chat_redis::connection::query_scripted(conn, &pipe, &[&self.script]).await?;
        replies.into_iter().map(decision).collect()
    }
}

fn decision(reply: Vec<redis::Value>) -> redis::RedisResult<Decision> {
    let mut parts = reply.into_iter();
    let what: i64 = redis::from_owned_redis_value(parts.next().unwrap_or(redis::Value::Nil))?;
    let text: String = redis::from_owned_redis_value(parts.next().unwrap_or(redis::Value::Nil))?;
    match what {
        2 => Ok(Decision::Refused(text)),
        fresh => {
            let mut s = parse_record(fresh == 1, &text)?;
            if let Some(dead) = parts.next() {
                s.dead = redis::from_owned_redis_value::<i64>(dead)? == 1;
            }
            if let Some(delivered) = parts.next() {
                s.delivered = redis::from_owned_redis_value::<i64>(delivered)? == 1;
            }
            Ok(Decision::Taken(s))
        }
    }
}

/// `id|seq|ts|entry`, or `id|seq|ts` from before entries were recorded.
pub(crate) fn parse_record(fresh: bool, record: &str) -> redis::RedisResult<Taken> {
    let mut parts = record.splitn(4, '|');
    let (Some(id), Some(seq), Some(ts)) = (parts.next(), parts.next(), parts.next()) else {
        return Err(corrupt(record));
    };
    Ok(Taken {
        fresh,
        id: id.to_owned(),
        seq: seq.parse().map_err(|_| corrupt(record))?,
        ts: ts.parse().map_err(|_| corrupt(record))?,
        origin: parts.next().filter(|o| !o.is_empty()).map(str::to_owned),
        dead: false,
        delivered: false,
    })
}

fn corrupt(record: &str) -> redis::RedisError {
    redis::RedisError::from((
        redis::ErrorKind::TypeError,
        "corrupt dedup record",
        record.to_owned(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_parse() {
        let s = parse_record(false, "0190-abc|42|1700000000000").unwrap();
        assert_eq!(
            (s.id.as_str(), s.seq, s.ts, s.fresh, s.origin),
            ("0190-abc", 42, 1_700_000_000_000, false, None)
        );
        let s = parse_record(false, "0190-abc|42|1700000000000|1700-0").unwrap();
        assert_eq!(s.origin.as_deref(), Some("1700-0"));
        assert!(parse_record(true, "x|y").is_err());
        assert!(parse_record(true, "x|y|1").is_err());
    }
}
