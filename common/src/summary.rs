//! The conversation list's per-conversation state, kept at O(1) per message:
//! a hash per conversation with the time of its last activity (`at`), the seq
//! of its last message (`seq`, events excluded) and that message's preview
//! (`m`, JSON, with edits and deletes applied). chat-service writes it after
//! a batch is stored; the gateway reads it for `GET /api/conversations`.

use serde::{Deserialize, Serialize};

use crate::{
    keys::Keys,
    model::{ChatMessage, EventKind},
    redis_conn::LuaScript,
};

/// The longest preview body, in characters.
pub const PREVIEW_CHARS: usize = 200;

/// KEYS[1]: the summary hash. ARGV: seq, ts, what ('m' a message, 'e' an
/// edit, 'd' a delete, 't' an event whose target is not known: activity
/// only), the event's target seq, the preview JSON. Batches
/// of one conversation may be stored out of order by different workers, so
/// every field only moves forward: a message replaces the preview only if
/// it is newer, an event only if it targets the previewed message and is
/// newer than the last event applied to it, and nothing follows a delete.
const UPDATE: &str = r"
local at = tonumber(redis.call('HGET', KEYS[1], 'at') or '0')
if tonumber(ARGV[2]) > at then redis.call('HSET', KEYS[1], 'at', ARGV[2]) end
local cur = tonumber(redis.call('HGET', KEYS[1], 'seq') or '0')
local seq = tonumber(ARGV[1])
if ARGV[3] == 'm' then
  if seq > cur then
    redis.call('HSET', KEYS[1], 'seq', seq, 'm', ARGV[5])
    redis.call('HDEL', KEYS[1], 'e', 'd')
  end
  return 1
end
if ARGV[3] == 't' then return 0 end
if tonumber(ARGV[4]) ~= cur or redis.call('HGET', KEYS[1], 'd') then return 0 end
if seq <= tonumber(redis.call('HGET', KEYS[1], 'e') or '0') then return 0 end
redis.call('HSET', KEYS[1], 'm', ARGV[5], 'e', seq)
if ARGV[3] == 'd' then redis.call('HSET', KEYS[1], 'd', '1') end
return 1
";

/// A conversation's last message, as the list shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Preview {
    pub id: String,
    pub seq: u64,
    pub from: String,
    /// At most 200 characters of the current body; empty when deleted.
    pub body: String,
    pub ts: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub edited_at: Option<i64>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub deleted: bool,
}

impl Preview {
    pub fn of(m: &ChatMessage) -> Self {
        Self {
            id: m.id.clone(),
            seq: m.seq,
            from: m.from.clone(),
            body: m.body.chars().take(PREVIEW_CHARS).collect(),
            ts: m.ts,
            edited_at: m.edited_at,
            deleted: m.deleted,
        }
    }
}

/// A conversation's summary as stored.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Summary {
    pub last_activity: Option<i64>,
    pub last_message: Option<Preview>,
}

impl Summary {
    /// From `HMGET <last> at m`.
    pub fn from_fields(at: Option<i64>, m: Option<String>) -> Self {
        Self {
            last_activity: at,
            last_message: m.and_then(|m| serde_json::from_str(&m).ok()),
        }
    }
}

#[derive(Clone)]
pub struct Summaries {
    keys: Keys,
    script: LuaScript,
}

impl Summaries {
    pub fn new(keys: Keys) -> Self {
        Self {
            keys,
            script: LuaScript::new(UPDATE),
        }
    }

    pub fn script(&self) -> &LuaScript {
        &self.script
    }

    /// Adds the update for a stored message to `pipe` (its reply ignored).
    /// For an event, `target` is its target with the event applied, if known;
    /// without it only the activity time moves.
    pub fn add(&self, pipe: &mut redis::Pipeline, m: &ChatMessage, target: Option<&ChatMessage>) {
        let (what, shown) = match (m.kind, target) {
            (None, _) => ("m", m),
            (Some(EventKind::Edit), Some(t)) => ("e", t),
            (Some(EventKind::Delete), Some(t)) => ("d", t),
            (Some(_), None) => ("t", m),
        };
        let preview = serde_json::to_string(&Preview::of(shown)).unwrap_or_default();
        self.script.call(
            pipe,
            &self.keys.summary_script(m.conversation.as_str()),
            &[
                m.seq.to_string(),
                m.ts.to_string(),
                what.to_owned(),
                m.target_seq.unwrap_or(0).to_string(),
                preview,
            ],
        );
        pipe.ignore();
    }

    /// Adds `HMGET <last> at m` for `conversation` to `pipe`; read the reply
    /// as `(Option<i64>, Option<String>)` and give it to [`Summary::from_fields`].
    pub fn read(&self, pipe: &mut redis::Pipeline, conversation: &str) {
        pipe.cmd("HMGET")
            .arg(self.keys.last(conversation))
            .arg("at")
            .arg("m");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn previews_are_cut_by_characters() {
        let mut m = ChatMessage::new(
            "i".into(),
            crate::ids::ConversationId::room("a"),
            1,
            "bob".into(),
            crate::ids::Target::Room("a".into()),
            "é".repeat(300),
            5,
            "c".into(),
        );
        assert_eq!(Preview::of(&m).body.chars().count(), PREVIEW_CHARS);
        m.deleted = true;
        let json = serde_json::to_string(&Preview::of(&m)).unwrap();
        assert!(json.contains(r#""deleted":true"#));
    }
}
