//! Dedup and seq in one atomic step per message: the first time a (sender,
//! client_id) is seen in a conversation it gets a fresh id and the next seq;
//! every replay gets the same id, seq and time back, and the ingress entry
//! that first took them, so a retry of that entry can be told from a re-send.
//! A fresh seq also moves its sender's read marker there (`common::read`):
//! one's own messages are never unread.
//!
//! A fresh message (not an edit or delete) also becomes its conversation's
//! preview in the conversation list (`common::summary`) right here: the
//! sequencer orders a conversation, so the seq it just took is the newest
//! and no ordering check is needed. That spares a script call per message
//! after storing, the largest single Redis cost of a DM to a new partner.
//! Should the message never be stored (dead-lettered), its tombstone clears
//! the preview (`Persist::tombstone`).

use common::redis_conn::Redis;
use common::{keys::Keys, redis_conn::LuaScript, summary::PreviewParts};

/// KEYS: dedup record, seq counter, read markers, summary. ARGV: id, ts,
/// dedup TTL, ingress entry, sender, and for a message the preview JSON cut
/// where its seq goes (two halves).
const DEDUP_SEQ: &str = r#"
local d = redis.call('GET', KEYS[1])
if d then return {0, d} end
local seq = redis.call('INCR', KEYS[2])
local rec = ARGV[1] .. '|' .. seq .. '|' .. ARGV[2] .. '|' .. ARGV[4]
redis.call('SET', KEYS[1], rec, 'EX', ARGV[3])
redis.call('HSET', KEYS[3], ARGV[5], seq)
if ARGV[6] then
  local cur = redis.call('HMGET', KEYS[4], 'at', 'e', 'd')
  local set = {'seq', seq, 'm', ARGV[6] .. seq .. ARGV[7]}
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
pub struct Sequenced {
    /// False for a replay of an already sequenced (sender, client_id).
    pub fresh: bool,
    pub id: String,
    pub seq: u64,
    pub ts: i64,
    /// The ingress entry that took this id and seq (None in records written
    /// before entries were recorded).
    pub origin: Option<String>,
}

pub struct SequenceRequest<'a> {
    pub conversation: &'a str,
    pub sender: &'a str,
    pub client_id: &'a str,
    /// The ingress entry asking.
    pub stream_id: &'a str,
    /// For a message (not an event), its body: the preview is made of it.
    pub preview_body: Option<&'a str>,
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
    ) -> redis::RedisResult<Vec<Sequenced>> {
        if requests.is_empty() {
            return Ok(Vec::new());
        }
        let now = common::time::now_ms();
        let mut pipe = redis::pipe();
        for r in requests {
            let id = uuid::Uuid::now_v7().to_string();
            let mut args = vec![
                id.clone(),
                now.to_string(),
                self.dedup_ttl_secs.to_string(),
                r.stream_id.to_owned(),
                r.sender.to_owned(),
            ];
            if let Some(body) = r.preview_body {
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
                    .sequence_script(r.conversation, r.sender, r.client_id),
                &args,
            );
        }
        let replies: Vec<(i64, String)> =
            common::redis_conn::query_scripted(conn, &pipe, &[&self.script]).await?;
        replies
            .into_iter()
            .map(|(fresh, record)| parse_record(fresh == 1, &record))
            .collect()
    }
}

/// `id|seq|ts|entry`, or `id|seq|ts` from before entries were recorded.
pub(crate) fn parse_record(fresh: bool, record: &str) -> redis::RedisResult<Sequenced> {
    let mut parts = record.splitn(4, '|');
    let (Some(id), Some(seq), Some(ts)) = (parts.next(), parts.next(), parts.next()) else {
        return Err(corrupt(record));
    };
    Ok(Sequenced {
        fresh,
        id: id.to_owned(),
        seq: seq.parse().map_err(|_| corrupt(record))?,
        ts: ts.parse().map_err(|_| corrupt(record))?,
        origin: parts.next().filter(|o| !o.is_empty()).map(str::to_owned),
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
