//! The conversation list's per-conversation state, kept at O(1) per message:
//! a hash per conversation with the time of its last activity (`at`), the seq
//! of its last message (`seq`, events excluded) and that message's preview
//! (`m`, JSON, with edits and deletes applied). chat-service's sequencer sets
//! a message's preview as it takes its seq (`chat_model::preview::PreviewParts`); edits, deletes
//! and tombstones are applied after they are stored (the script below). The
//! gateway reads it for `GET /api/conversations`.

use crate::{connection::LuaScript, keys::Keys};

use chat_model::{
    message::{ChatMessage, EventKind},
    preview::Preview,
};

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
