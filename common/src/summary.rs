//! The conversation list's per-conversation state, kept at O(1) per message:
//! a hash per conversation with the time of its last activity (`at`), the seq
//! of its last message (`seq`, events excluded) and that message's preview
//! (`m`, JSON, with edits and deletes applied). chat-service's sequencer sets
//! a message's preview as it takes its seq ([`PreviewParts`]); edits, deletes
//! and tombstones are applied after they are stored (the script below). The
//! gateway reads it for `GET /api/conversations`.

use serde::{Deserialize, Serialize};

use crate::{
    keys::Keys,
    model::{ChatMessage, EventKind},
    redis_conn::LuaScript,
};

/// The longest preview body, in characters.
pub const PREVIEW_CHARS: usize = 200;

/// KEYS[1]: the summary hash. ARGV: seq, ts, what ('e' an edit, 'd' a
/// delete, 't' an event whose target is not known: activity only, 'x' the
/// tombstone of a message that was sequenced and never stored), the
/// event's target seq, the preview JSON. Events of one conversation may be
/// stored out of order by different workers, so every field only moves
/// forward: an event changes the preview only if it targets the previewed
/// message, and by the rule of `ChatMessage::apply`: a delete wins over
/// every edit, an edit only over older edits. A tombstone blanks the
/// preview if it is its message's.
const UPDATE: &str = r"
local cur = redis.call('HMGET', KEYS[1], 'at', 'seq', 'e', 'd')
local seq = tonumber(ARGV[1])
local last = tonumber(cur[2] or '0')
local set = {}
if tonumber(ARGV[2]) > tonumber(cur[1] or '0') then set[#set + 1] = 'at'; set[#set + 1] = ARGV[2] end
local done = 0
if ARGV[3] == 'x' then
  if seq == last then
    set[#set + 1] = 'm'; set[#set + 1] = ARGV[5]; set[#set + 1] = 'd'; set[#set + 1] = '1'
    done = 1
  end
elseif ARGV[3] ~= 't' and tonumber(ARGV[4]) == last and not cur[4]
    and (ARGV[3] == 'd' or seq > tonumber(cur[3] or '0')) then
  set[#set + 1] = 'm'; set[#set + 1] = ARGV[5]; set[#set + 1] = 'e'; set[#set + 1] = seq
  if ARGV[3] == 'd' then set[#set + 1] = 'd'; set[#set + 1] = '1' end
  done = 1
end
if #set > 0 then redis.call('HSET', KEYS[1], unpack(set)) end
return done
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
    /// A message never edited nor deleted, its body cut to PREVIEW_CHARS.
    pub fn new(id: &str, seq: u64, from: &str, body: &str, ts: i64) -> Self {
        Self {
            id: id.to_owned(),
            seq,
            from: from.to_owned(),
            body: body.chars().take(PREVIEW_CHARS).collect(),
            ts,
            edited_at: None,
            deleted: false,
        }
    }

    pub fn of(m: &ChatMessage) -> Self {
        Self {
            edited_at: m.edited_at,
            deleted: m.deleted,
            ..Self::new(&m.id, m.seq, &m.from, &m.body, m.ts)
        }
    }
}

/// A new message's preview as JSON, cut where its seq goes: the sequencer
/// knows the seq only inside its script, which joins the halves around it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PreviewParts {
    /// Up to and including `"seq":`.
    pub before_seq: String,
    pub after_seq: String,
}

impl PreviewParts {
    pub fn new(id: &str, from: &str, body: &str, ts: i64) -> Self {
        let preview = Preview::new(id, 0, from, body, ts);
        let json = serde_json::to_string(&preview).unwrap_or_default();
        // `id` is escaped JSON before it, so the first match is the field.
        const SEQ: &str = "\"seq\":0";
        let at = json.find(SEQ).map_or(json.len(), |at| at + SEQ.len() - 1);
        Self {
            before_seq: json[..at].to_owned(),
            after_seq: json.get(at + 1..).unwrap_or_default().to_owned(),
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

    /// Adds the update for a stored edit or delete to `pipe` (its reply
    /// ignored). `target` is its target with the event applied, if known;
    /// without it only the activity time moves. A message (not an event)
    /// changes nothing here: its preview was set when it was sequenced.
    pub fn add_event(
        &self,
        pipe: &mut redis::Pipeline,
        m: &ChatMessage,
        target: Option<&ChatMessage>,
    ) {
        let (what, shown) = match (m.kind, target) {
            (None, _) => return,
            (Some(EventKind::Edit), Some(t)) => ("e", t),
            (Some(EventKind::Delete), Some(t)) => ("d", t),
            (Some(_), None) => ("t", m),
        };
        self.call(pipe, m, what, shown);
    }

    /// Adds, for the tombstone of a message that was sequenced and never
    /// stored, the blanking of its preview if it is the one shown.
    pub fn add_tombstone(&self, pipe: &mut redis::Pipeline, tombstone: &ChatMessage) {
        let mut shown = tombstone.clone();
        shown.body.clear();
        shown.deleted = true;
        self.call(pipe, tombstone, "x", &shown);
    }

    fn call(&self, pipe: &mut redis::Pipeline, m: &ChatMessage, what: &str, shown: &ChatMessage) {
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

    #[test]
    fn preview_parts_join_around_the_seq_into_the_preview() {
        let parts = PreviewParts::new("0190-a", "bob \"seq\":0", "hi \"seq\":0", 7);
        let joined = format!("{}{}{}", parts.before_seq, 42, parts.after_seq);
        let preview: Preview = serde_json::from_str(&joined).unwrap();
        assert_eq!(
            (
                preview.id.as_str(),
                preview.seq,
                preview.from.as_str(),
                preview.body.as_str(),
                preview.ts
            ),
            ("0190-a", 42, "bob \"seq\":0", "hi \"seq\":0", 7)
        );
    }
}
