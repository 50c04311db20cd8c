//! Blocks, after admission: a DM message or edit between two users one of
//! whom blocked the other is refused with `forbidden` (to the blocked
//! sender, in the words any refused DM gets: it does not say "blocked").
//! A typing notice reaches nobody its typer blocked, and nobody who blocked
//! its typer in a DM. Deleting one's own message is always allowed.

use std::{collections::HashMap, sync::Arc};

use chat_model::{
    ids::{Conversation, Target},
    message::{EntryKind, IngressEntry},
    protocol::ErrorCode,
};

use super::entries::{Accepted, Rejected};

/// The users whose block lists a batch needs: both parties of each DM, and
/// the typer of each room typing notice.
pub(crate) fn wanted(parsed: &[(String, IngressEntry)]) -> Vec<&str> {
    let mut users = Vec::new();
    for (_, e) in parsed {
        match &e.to {
            Target::User(to) if *to != e.user => users.extend([e.user.as_str(), to.as_str()]),
            Target::Room(_) if e.kind == EntryKind::Typing => users.push(e.user.as_str()),
            _ => {}
        }
    }
    users.sort_unstable();
    users.dedup();
    users
}

/// Each user's block list, sorted (a user missing from it blocked nobody).
pub(crate) struct Lists(pub HashMap<String, Arc<[String]>>);

impl Lists {
    fn blocks(&self, user: &str, other: &str) -> bool {
        self.0
            .get(user)
            .is_some_and(|l| l.binary_search_by(|b| b.as_str().cmp(other)).is_ok())
    }

    /// Sends and edits between blocked pairs go to `refused`.
    pub(crate) fn check_sends(
        &self,
        sends: Vec<Accepted>,
        refused: &mut Vec<Rejected>,
    ) -> Vec<Accepted> {
        let mut kept = Vec::with_capacity(sends.len());
        for a in sends {
            let Target::User(to) = &a.entry.to else {
                kept.push(a);
                continue;
            };
            let from = &a.entry.user;
            let message = if a.entry.kind == EntryKind::Delete {
                None
            } else if self.blocks(to, from) {
                Some(format!("cannot send a direct message to {to}"))
            } else if self.blocks(from, to) {
                Some(format!("you blocked {to}: unblock them to message them"))
            } else {
                None
            };
            match message {
                Some(message) => refused.push(Rejected {
                    stream_id: a.stream_id,
                    entry: a.entry,
                    code: ErrorCode::Forbidden,
                    message,
                    retry_after_ms: None,
                }),
                None => kept.push(a),
            }
        }
        kept
    }

    /// Takes out of each typing notice's recipients whoever must not see it.
    pub(crate) fn filter_typing(&self, typing: &mut [Accepted]) {
        for a in typing {
            let from = a.entry.user.as_str();
            match a.conversation.kind() {
                Conversation::Dm(..) => {
                    let Target::User(to) = &a.entry.to else {
                        continue;
                    };
                    if self.blocks(to, from) || self.blocks(from, to) {
                        a.recipients = Arc::from(Vec::new());
                    }
                }
                Conversation::Room(_) => {
                    if let Some(list) = self.0.get(from).filter(|l| !l.is_empty()) {
                        a.recipients = a
                            .recipients
                            .iter()
                            .filter(|r| list.binary_search(r).is_err())
                            .cloned()
                            .collect();
                    }
                }
            }
        }
    }
}
