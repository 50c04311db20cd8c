//! The MongoDB archive: collection `messages`, `_id` = message id, a unique
//! index on (conversation_id, seq).

use std::time::Duration;

use chat_model::{
    ids::{ConversationId, IdError, Target},
    message::{ChatMessage, EventKind, MemberEvent},
};
use futures::TryStreamExt;
use mongodb::{
    Client, Collection, IndexModel,
    bson::{self, doc},
    error::ErrorKind,
    options::{ClientOptions, IndexOptions},
};
use serde::{Deserialize, Serialize};

/// MongoDB's duplicate-key error code: an already archived message.
const DUPLICATE_KEY: i32 = 11000;

/// Why the archive could not do what was asked.
#[derive(Debug, thiserror::Error)]
pub enum ArchiveError {
    #[error("MongoDB failed")]
    Mongo(#[from] mongodb::error::Error),
    /// A stored document this service did not write.
    #[error("an archived message is not one of ours")]
    Foreign(#[from] IdError),
    /// A compare-and-set lost to other writers every time it tried.
    #[error("{0} kept changing while it was written")]
    Contended(&'static str),
}

pub type ArchiveResult<T> = Result<T, ArchiveError>;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MessageDoc {
    #[serde(rename = "_id")]
    pub id: String,
    pub conversation_id: String,
    pub seq: i64,
    pub sender: String,
    pub recipient: String,
    pub body: String,
    pub sent_at: bson::DateTime,
    pub client_id: String,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub tombstone: bool,
    /// "edit" or "delete" on an event (stored without its body).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_seq: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub edited_at: Option<bson::DateTime>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub edit_seq: Option<i64>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub deleted: bool,
    /// On a membership event: what happened, to whom (see `MemberEvent`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub member: Option<MemberEvent>,
}

impl From<&ChatMessage> for MessageDoc {
    fn from(m: &ChatMessage) -> Self {
        Self {
            id: m.id.clone(),
            conversation_id: m.conversation.to_string(),
            seq: m.seq as i64,
            sender: m.from.clone(),
            recipient: m.to.to_string(),
            body: m.body.clone(),
            sent_at: bson::DateTime::from_millis(m.ts),
            client_id: m.client_id.clone(),
            tombstone: m.tombstone,
            kind: m.kind.map(|k| k.as_str().to_owned()),
            target_seq: m.target_seq.map(|s| s as i64),
            edited_at: m.edited_at.map(bson::DateTime::from_millis),
            edit_seq: m.edit_seq.map(|s| s as i64),
            deleted: m.deleted,
            member: m.member.clone(),
        }
    }
}

impl TryFrom<MessageDoc> for ChatMessage {
    type Error = IdError;

    /// Fails only for a document this service did not write.
    fn try_from(d: MessageDoc) -> Result<Self, IdError> {
        Ok(Self {
            id: d.id,
            conversation: ConversationId::parse(&d.conversation_id)?,
            seq: d.seq.max(0) as u64,
            from: d.sender,
            to: Target::parse(&d.recipient)?,
            body: d.body,
            ts: d.sent_at.timestamp_millis(),
            client_id: d.client_id,
            tombstone: d.tombstone,
            kind: d.kind.as_deref().and_then(EventKind::parse),
            target_seq: d.target_seq.map(|s| s.max(0) as u64),
            edited_at: d.edited_at.map(|t| t.timestamp_millis()),
            edit_seq: d.edit_seq.map(|s| s.max(0) as u64),
            deleted: d.deleted,
            member: d.member,
        })
    }
}

/// What became of an event applied to the archive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Applied {
    /// Its target now shows it (or a later or final event already).
    Done,
    /// Its target is not archived.
    Missing,
}

/// Attempts at applying one event while other writers change its target.
const APPLY_ATTEMPTS: usize = 5;

#[derive(Clone)]
pub struct Archive {
    messages: Collection<MessageDoc>,
}

impl Archive {
    /// Creates the client without contacting the server: MongoDB may be down at
    /// start, and chat must not wait for it.
    pub async fn new(uri: &str, database: &str) -> ArchiveResult<Self> {
        let mut options = ClientOptions::parse(uri).await?;
        options.server_selection_timeout = Some(Duration::from_secs(3));
        options.connect_timeout = Some(Duration::from_secs(3));
        options.app_name = Some("history-service".to_owned());
        let client = Client::with_options(options)?;
        Ok(Self {
            messages: client.database(database).collection("messages"),
        })
    }

    pub async fn ensure_indexes(&self) -> ArchiveResult<()> {
        let index = IndexModel::builder()
            .keys(doc! {"conversation_id": 1, "seq": 1})
            .options(
                IndexOptions::builder()
                    .unique(true)
                    .name("conversation_seq".to_owned())
                    .build(),
            )
            .build();
        self.messages.create_index(index).await?;
        Ok(())
    }

    pub async fn ping(&self) -> ArchiveResult<()> {
        self.messages
            .client()
            .database("admin")
            .run_command(doc! {"ping": 1})
            .await?;
        Ok(())
    }

    /// Of `docs` that hit a duplicate key, those whose (conversation, seq) holds
    /// a message with another id: not a replay, a conflict.
    pub async fn conflicts(&self, docs: &[&MessageDoc]) -> ArchiveResult<Vec<MessageDoc>> {
        let mut out = Vec::new();
        for d in docs {
            let stored = self
                .messages
                .find_one(doc! {"conversation_id": &d.conversation_id, "seq": d.seq})
                .await?;
            if stored.is_some_and(|s| s.id != d.id) {
                out.push((*d).clone());
            }
        }
        Ok(out)
    }

    /// Which of `seqs` of `conversation` are archived.
    pub async fn archived_seqs(
        &self,
        conversation: &str,
        seqs: &[u64],
    ) -> ArchiveResult<std::collections::HashSet<u64>> {
        Ok(self
            .at_seqs(conversation, seqs)
            .await?
            .into_iter()
            .map(|d| d.seq.max(0) as u64)
            .collect())
    }

    /// The archived documents of `conversation` at `seqs`.
    pub async fn at_seqs(
        &self,
        conversation: &str,
        seqs: &[u64],
    ) -> ArchiveResult<Vec<MessageDoc>> {
        if seqs.is_empty() {
            return Ok(Vec::new());
        }
        let wanted: Vec<i64> = seqs.iter().map(|s| *s as i64).collect();
        Ok(self
            .messages
            .find(doc! {"conversation_id": conversation, "seq": {"$in": wanted}})
            .await?
            .try_collect()
            .await?)
    }

    /// Applies an edit or delete to its archived target. The update names
    /// the target's state it was computed from, so two archivers applying
    /// events to one message at once cannot lose one: the loser reads again.
    pub async fn apply_event(&self, event: &ChatMessage) -> ArchiveResult<Applied> {
        let Some(target) = event.target_seq else {
            return Ok(Applied::Done);
        };
        let conversation = event.conversation.as_str();
        for _ in 0..APPLY_ATTEMPTS {
            let Some(doc) = self.at_seqs(conversation, &[target]).await?.pop() else {
                return Ok(Applied::Missing);
            };
            let before = doc.edit_seq;
            let Ok(mut m) = ChatMessage::try_from(doc.clone()) else {
                return Ok(Applied::Done);
            };
            if !m.apply(event) {
                return Ok(Applied::Done);
            }
            // With the conversation in the filter, a collection sharded on
            // `conversation_id` sends the replace to one shard, not all.
            let conversation = &doc.conversation_id;
            let filter = match before {
                Some(seq) => {
                    doc! {"_id": &doc.id, "conversation_id": conversation, "edit_seq": seq}
                }
                None => doc! {
                    "_id": &doc.id,
                    "conversation_id": conversation,
                    "edit_seq": {"$exists": false},
                },
            };
            // The whole document, so every field keeps the type an insert
            // gives it.
            let updated = self
                .messages
                .replace_one(filter, MessageDoc::from(&m))
                .await?;
            if updated.matched_count == 1 {
                return Ok(Applied::Done);
            }
        }
        Err(ArchiveError::Contended("an event's target"))
    }

    /// Stores `state`, a message's state with an edit or delete applied as
    /// chat-service decided it, unless the archive holds a state of it that
    /// supersedes it (`ChatMessage::supersedes`: a deleted one, or one with
    /// a later edit). A message not archived yet is inserted in that state;
    /// its own archive entry then finds it there, as a replay. Each write
    /// names the state it replaces, so two archivers cannot lose one.
    pub async fn store_state(&self, state: &ChatMessage) -> ArchiveResult<()> {
        let doc = MessageDoc::from(state);
        let edit_seq = doc.edit_seq.unwrap_or(0);
        for _ in 0..APPLY_ATTEMPTS {
            // Documents are written without `deleted` unless it is true. An
            // edit replaces an older edit, or a message never edited: two
            // plain filters rather than one `$or` (which the MongoDB-wire
            // server of the tests evaluates with the wrong precedence).
            let base = doc! {
                "_id": &doc.id,
                "conversation_id": &doc.conversation_id,
                "deleted": {"$exists": false},
            };
            let filters = if state.deleted {
                vec![base]
            } else {
                let mut older = base.clone();
                older.insert("edit_seq", doc! {"$lt": edit_seq});
                let mut never = base;
                never.insert("edit_seq", doc! {"$exists": false});
                vec![older, never]
            };
            let mut replaced = false;
            for filter in filters {
                if self.messages.replace_one(filter, &doc).await?.matched_count == 1 {
                    replaced = true;
                    break;
                }
            }
            if replaced {
                return Ok(());
            }
            let there = doc! {"_id": &doc.id, "conversation_id": &doc.conversation_id};
            if self.messages.find_one(there).await?.is_some() {
                // What is archived is this state already, or newer.
                return Ok(());
            }
            match self.messages.insert_one(&doc).await {
                Ok(_) => return Ok(()),
                // Archived meanwhile by another writer: compare again.
                Err(e) if is_duplicate(&e) => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Err(ArchiveError::Contended("a message's state"))
    }

    /// Inserts a batch, unordered. Duplicates (code 11000) count as done, so a
    /// replayed batch succeeds; any other failure is returned and the batch retried.
    pub async fn insert(&self, docs: &[MessageDoc]) -> ArchiveResult<InsertOutcome> {
        if docs.is_empty() {
            return Ok(InsertOutcome::default());
        }
        match self.messages.insert_many(docs).ordered(false).await {
            Ok(r) => Ok(InsertOutcome {
                inserted: r.inserted_ids.len(),
                duplicates: Vec::new(),
            }),
            Err(e) => match e.kind.as_ref() {
                ErrorKind::InsertMany(failure)
                    if failure.write_concern_error.is_none()
                        && failure
                            .write_errors
                            .as_ref()
                            .is_some_and(|w| w.iter().all(|w| w.code == DUPLICATE_KEY)) =>
                {
                    let duplicates: Vec<usize> = failure
                        .write_errors
                        .as_ref()
                        .map(|w| w.iter().map(|w| w.index).collect())
                        .unwrap_or_default();
                    Ok(InsertOutcome {
                        inserted: docs.len() - duplicates.len(),
                        duplicates,
                    })
                }
                _ => Err(e.into()),
            },
        }
    }

    /// Up to `limit` archived messages with seq < `before`, newest first.
    pub async fn before(
        &self,
        conversation: &str,
        before: u64,
        limit: usize,
    ) -> ArchiveResult<Vec<ChatMessage>> {
        self.find(
            doc! {"conversation_id": conversation, "seq": {"$lt": before as i64}},
            -1,
            limit,
        )
        .await
    }

    /// Up to `limit` archived messages with after < seq < below, oldest first.
    pub async fn between(
        &self,
        conversation: &str,
        after: u64,
        below: Option<u64>,
        limit: usize,
    ) -> ArchiveResult<Vec<ChatMessage>> {
        let mut seq = doc! {"$gt": after as i64};
        if let Some(below) = below {
            seq.insert("$lt", below as i64);
        }
        self.find(doc! {"conversation_id": conversation, "seq": seq}, 1, limit)
            .await
    }

    async fn find(
        &self,
        filter: bson::Document,
        direction: i32,
        limit: usize,
    ) -> ArchiveResult<Vec<ChatMessage>> {
        let docs: Vec<MessageDoc> = self
            .messages
            .find(filter)
            .sort(doc! {"seq": direction})
            .limit(limit as i64)
            .await?
            .try_collect()
            .await?;
        Ok(docs
            .into_iter()
            .map(ChatMessage::try_from)
            .collect::<Result<_, _>>()?)
    }
}

/// A duplicate-key failure of a single insert.
fn is_duplicate(e: &mongodb::error::Error) -> bool {
    match e.kind.as_ref() {
        ErrorKind::Write(mongodb::error::WriteFailure::WriteError(w)) => w.code == DUPLICATE_KEY,
        _ => false,
    }
}

#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct InsertOutcome {
    pub inserted: usize,
    /// Positions in the batch of the documents that hit a duplicate key.
    pub duplicates: Vec<usize>,
}
