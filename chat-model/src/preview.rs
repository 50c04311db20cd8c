//! A conversation's last message as the conversation list shows it (the
//! preview), and the summary the list is made of: what `GET
//! /api/conversations` serves and `chat_redis::summary` keeps in Redis.

use serde::{Deserialize, Serialize};

use crate::message::ChatMessage;

/// The longest preview body, in characters.
pub const PREVIEW_CHARS: usize = 200;

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
