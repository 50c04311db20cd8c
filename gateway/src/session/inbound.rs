//! Client frames: parsed and validated into typed commands, or an `error`
//! answer with the right code and `ref`.

use chat_model::{
    ids::{ConversationId, Target},
    paging::PageQuery,
    protocol::ErrorCode,
};
use serde_json::{Map, Value};

use chat_model::limits::{MAX_REF, MAX_SEQ, check_client_id};

#[derive(Debug, PartialEq, Eq)]
pub enum ClientFrame {
    Send {
        client_id: String,
        to: Target,
        body: String,
    },
    /// An edit (`body` set) or a delete of the message at `seq`.
    Change {
        client_id: String,
        conversation: ConversationId,
        seq: u64,
        body: Option<String>,
    },
    Read {
        conversation: ConversationId,
        seq: u64,
        /// Echoed in an error about it.
        reference: Option<String>,
    },
    History {
        reference: String,
        conversation: ConversationId,
        page: PageQuery,
    },
    OfflineAck {
        reference: Option<String>,
    },
    Typing {
        to: Target,
        reference: Option<String>,
    },
    Ping,
    /// A fresh access token for this socket (the answer to `refresh`).
    Auth {
        token: String,
        reference: Option<String>,
    },
}

/// The longest token an `auth` frame may carry.
pub const MAX_TOKEN: usize = 2048;

impl ClientFrame {
    /// What an error about this frame refers to: a `send`'s, `edit`'s or
    /// `delete`'s client_id, any other frame's `ref` (if it had one of 1 to
    /// MAX_REF bytes).
    pub fn reference(&self) -> Option<&str> {
        match self {
            Self::Send { client_id, .. } | Self::Change { client_id, .. } => Some(client_id),
            Self::History { reference, .. } => {
                Some(reference.as_str()).filter(|r| !r.is_empty() && r.len() <= MAX_REF)
            }
            Self::Read { reference, .. }
            | Self::OfflineAck { reference }
            | Self::Typing { reference, .. }
            | Self::Auth { reference, .. } => reference.as_deref(),
            Self::Ping => None,
        }
    }
}

#[derive(Debug, PartialEq, Eq)]
pub struct FrameError {
    pub code: ErrorCode,
    pub message: String,
    pub reference: Option<String>,
}

impl FrameError {
    fn bad(message: impl Into<String>, reference: Option<String>) -> Self {
        Self {
            code: ErrorCode::BadRequest,
            message: message.into(),
            reference,
        }
    }
}

/// Parses one client frame. One match arm per frame type, in the order of
/// docs/protocol.md's "Client frames": long, but it reads like that table,
/// and each arm's checks sit with the fields they check.
pub fn parse(text: &str, max_body: usize) -> Result<ClientFrame, FrameError> {
    let value: Value = serde_json::from_str(text)
        .map_err(|e| FrameError::bad(format!("malformed JSON: {e}"), None))?;
    let Value::Object(obj) = value else {
        return Err(FrameError::bad("a frame is a JSON object", None));
    };
    let kind = obj.get("type").and_then(Value::as_str);
    // The ref an error answers: client_id for `send`, `edit` and `delete`,
    // ref for `history`.
    let reference = match kind {
        Some("send" | "edit" | "delete") => obj.get("client_id"),
        _ => obj.get("ref"),
    }
    .and_then(Value::as_str)
    .filter(|r| !r.is_empty() && r.len() <= MAX_REF)
    .map(str::to_owned);
    let field = Fields {
        obj: &obj,
        reference: &reference,
    };
    match kind {
        None => Err(FrameError::bad("missing field: type", None)),
        Some("send") => Ok(ClientFrame::Send {
            client_id: field.client_id()?,
            to: field.target("to")?,
            body: field.body(max_body)?,
        }),
        Some(kind @ ("edit" | "delete")) => Ok(ClientFrame::Change {
            client_id: field.client_id()?,
            conversation: field.conversation()?,
            seq: field.seq()?,
            body: match kind {
                "edit" => Some(field.body(max_body)?),
                _ => None,
            },
        }),
        Some("read") => Ok(ClientFrame::Read {
            conversation: field.conversation()?,
            seq: field.seq()?,
            reference,
        }),
        Some("history") => {
            let reference = field.string("ref")?;
            let conversation = field.conversation()?;
            let page = PageQuery::new(
                field.opt_u64("before")?,
                field.opt_u64("after")?,
                field.opt_u64("limit")?,
            )
            .map_err(|e| field.bad(e.to_string()))?;
            Ok(ClientFrame::History {
                reference,
                conversation,
                page,
            })
        }
        Some("offline_ack") => Ok(ClientFrame::OfflineAck { reference }),
        Some("typing") => Ok(ClientFrame::Typing {
            to: field.target("to")?,
            reference,
        }),
        Some("ping") => Ok(ClientFrame::Ping),
        Some("auth") => {
            let token = field.string("token")?;
            if token.is_empty() || token.len() > MAX_TOKEN {
                return Err(field.bad(format!("token must be 1 to {MAX_TOKEN} bytes")));
            }
            Ok(ClientFrame::Auth { token, reference })
        }
        Some(other) => Err(field.bad(format!(
            "unknown type {:?}",
            other.chars().take(32).collect::<String>()
        ))),
    }
}

struct Fields<'a> {
    obj: &'a Map<String, Value>,
    reference: &'a Option<String>,
}

impl Fields<'_> {
    fn bad(&self, message: impl Into<String>) -> FrameError {
        FrameError::bad(message, self.reference.clone())
    }

    fn string(&self, name: &str) -> Result<String, FrameError> {
        match self.obj.get(name) {
            Some(Value::String(s)) => Ok(s.clone()),
            Some(_) => Err(self.bad(format!("{name} must be a string"))),
            None => Err(self.bad(format!("missing field: {name}"))),
        }
    }

    fn opt_u64(&self, name: &str) -> Result<Option<u64>, FrameError> {
        match self.obj.get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(v) => v
                .as_u64()
                .map(Some)
                .ok_or_else(|| self.bad(format!("{name} must be a non-negative integer"))),
        }
    }

    fn target(&self, name: &str) -> Result<Target, FrameError> {
        Target::parse(&self.string(name)?).map_err(|e| self.bad(format!("{name}: {e}")))
    }

    fn conversation(&self) -> Result<ConversationId, FrameError> {
        ConversationId::parse(&self.string("conversation")?)
            .map_err(|e| self.bad(format!("conversation: {e}")))
    }

    fn client_id(&self) -> Result<String, FrameError> {
        let client_id = self.string("client_id")?;
        check_client_id(&client_id).map_err(|message| self.bad(message))?;
        Ok(client_id)
    }

    fn seq(&self) -> Result<u64, FrameError> {
        match self.opt_u64("seq")? {
            Some(seq @ 1..=MAX_SEQ) => Ok(seq),
            Some(_) => Err(self.bad(format!("seq must be 1 to {MAX_SEQ}"))),
            None => Err(self.bad("missing field: seq")),
        }
    }

    fn body(&self, max_body: usize) -> Result<String, FrameError> {
        let body = self.string("body")?;
        if body.is_empty() {
            return Err(self.bad("body must not be empty"));
        }
        if body.len() > max_body {
            return Err(FrameError {
                code: ErrorCode::TooLarge,
                message: format!("body is over {max_body} bytes"),
                reference: self.reference.clone(),
            });
        }
        Ok(body)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(text: &str) -> FrameError {
        parse(text, 4096).unwrap_err()
    }

    #[test]
    fn valid_frames_parse() {
        assert_eq!(
            parse(
                r#"{"type":"send","client_id":"c1","to":"user:bob","body":"hi"}"#,
                4096
            ),
            Ok(ClientFrame::Send {
                client_id: "c1".into(),
                to: Target::User("bob".into()),
                body: "hi".into()
            })
        );
        assert_eq!(parse(r#"{"type":"ping"}"#, 4096), Ok(ClientFrame::Ping));
        assert_eq!(
            parse(r#"{"type":"auth","token":"t","ref":"a1"}"#, 4096),
            Ok(ClientFrame::Auth {
                token: "t".into(),
                reference: Some("a1".into())
            })
        );
        assert!(parse(r#"{"type":"auth","token":""}"#, 4096).is_err());
        assert_eq!(
            parse(
                r#"{"type":"edit","client_id":"e1","conversation":"room:a","seq":3,"body":"b"}"#,
                4096
            ),
            Ok(ClientFrame::Change {
                client_id: "e1".into(),
                conversation: ConversationId::room("a"),
                seq: 3,
                body: Some("b".into()),
            })
        );
        assert!(matches!(
            parse(
                r#"{"type":"delete","client_id":"d1","conversation":"room:a","seq":3}"#,
                4096
            ),
            Ok(ClientFrame::Change { body: None, .. })
        ));
        assert!(matches!(
            parse(
                r#"{"type":"read","conversation":"dm:alice:bob","seq":9}"#,
                4096
            ),
            Ok(ClientFrame::Read { seq: 9, .. })
        ));
        assert_eq!(
            parse(r#"{"type":"offline_ack"}"#, 4096),
            Ok(ClientFrame::OfflineAck { reference: None })
        );
        assert_eq!(
            parse(r#"{"type":"typing","to":"room:a","ref":"t1"}"#, 4096)
                .unwrap()
                .reference(),
            Some("t1")
        );
        assert!(matches!(
            parse(
                r#"{"type":"history","ref":"r","conversation":"room:a","before":5}"#,
                4096
            ),
            Ok(ClientFrame::History {
                page: PageQuery {
                    before: Some(5),
                    ..
                },
                ..
            })
        ));
    }

    #[test]
    fn bad_frames_get_codes_and_refs() {
        assert_eq!(err("{nope").code, ErrorCode::BadRequest);
        assert_eq!(err("[1]").code, ErrorCode::BadRequest);
        let e = err(r#"{"type":"dance","ref":"r9"}"#);
        assert_eq!(
            (e.code, e.reference.as_deref()),
            (ErrorCode::BadRequest, Some("r9"))
        );
        let e = err(r#"{"type":"send","client_id":"c2","to":"user:bob"}"#);
        assert_eq!(e.reference.as_deref(), Some("c2"));
        assert!(e.message.contains("body"));
        let e = err(r#"{"type":"send","client_id":"c3","to":"bob","body":"x"}"#);
        assert!(e.message.contains("to"));
        let big = format!(
            r#"{{"type":"send","client_id":"c4","to":"user:bob","body":"{}"}}"#,
            "x".repeat(4097)
        );
        let e = err(&big);
        assert_eq!(
            (e.code, e.reference.as_deref()),
            (ErrorCode::TooLarge, Some("c4"))
        );
        let e =
            err(r#"{"type":"edit","client_id":"e2","conversation":"room:a","seq":0,"body":"x"}"#);
        assert_eq!(
            (e.code, e.reference.as_deref()),
            (ErrorCode::BadRequest, Some("e2"))
        );
        let e = err(r#"{"type":"edit","client_id":"e3","conversation":"room:a","seq":2}"#);
        assert!(e.message.contains("body"), "{}", e.message);
        let e = err(r#"{"type":"read","conversation":"room:a"}"#);
        assert!(e.message.contains("seq"), "{}", e.message);
        let e = err(r#"{"type":"history","ref":"r","conversation":"room:a","before":1,"after":2}"#);
        assert_eq!(e.reference.as_deref(), Some("r"));
        assert!(
            err(r#"{"type":"history","ref":"r","conversation":"room:a","limit":0}"#)
                .message
                .contains("limit")
        );
        assert!(
            err(r#"{"type":"send","client_id":"","to":"user:bob","body":"x"}"#)
                .message
                .contains("client_id")
        );
        for seq in [MAX_SEQ + 1, u64::MAX] {
            let e = err(&format!(
                r#"{{"type":"delete","client_id":"d9","conversation":"room:a","seq":{seq}}}"#
            ));
            assert_eq!(
                (e.code, e.reference.as_deref()),
                (ErrorCode::BadRequest, Some("d9"))
            );
            let e = err(&format!(
                r#"{{"type":"read","conversation":"room:a","seq":{seq},"ref":"r1"}}"#
            ));
            assert_eq!(e.reference.as_deref(), Some("r1"));
        }
        assert!(
            parse(
                &format!(r#"{{"type":"read","conversation":"room:a","seq":{MAX_SEQ}}}"#),
                4096
            )
            .is_ok()
        );
    }
}
