//! Stage 1, admit: read each entry, check it, and find its conversation and
//! recipients. Unreadable entries (corrupt, or of an unknown format version)
//! are set aside for the dead-letter stream; refused ones get an error frame.
//!
//! Edits and deletes are checked against their target message (see
//! `targets.rs`), fetched once per conversation of the batch.
//!
//! Admission is decided once: a refused send that already holds a seq (a
//! retried batch after a membership change) is let through; see
//! [`Admit::readmit`].
//!
//! One client_id, one request: each send, edit or delete claims its
//! sender's client_id for its fingerprint (kind, conversation, target) in
//! the sender's slot, `SET NX GET`, in the round trip that reads the rooms'
//! membership versions. A re-send of the same request finds its own claim;
//! another request under a claimed client_id is refused with `conflict`
//! and changes nothing.

use std::{
    collections::{HashMap, HashSet},
    sync::Arc,
};

use chat_model::{
    ids::{Conversation, ConversationId, Target},
    limits::{MAX_BODY, MAX_SEQ, check_client_id},
    message::{self, EntryKind, INGRESS_FIELD, IngressEntry},
    protocol::ErrorCode,
};

use chat_redis::{connection::Redis, keys::Keys};
use redis::streams::StreamId;

pub(crate) use super::entries::{Accepted, Rejected};
use super::{
    blocks::{self, Lists},
    targets::{self, Targets},
};
use crate::{
    blocklists::BlockLists,
    error::BatchError,
    members::{Members, Standing, Version},
};

/// What admission decided for a batch.
#[derive(Default)]
pub(crate) struct Admitted {
    /// Sends to sequence, store and deliver.
    pub sends: Vec<Accepted>,
    pub typing: Vec<Accepted>,
    pub rejected: Vec<Rejected>,
    /// Unreadable entries: (stream id, raw payload).
    pub dead: Vec<(String, String)>,
}

/// What a batch's first round trip learned.
#[derive(Default)]
struct Lookups {
    /// The membership version of each room posted to.
    versions: HashMap<String, Version>,
    /// The block-list version of each user [`blocks::wanted`] names.
    blocks: HashMap<String, Version>,
    /// The entries whose client_id names another request.
    conflicts: HashSet<String>,
}

/// What admission decided for one entry.
enum Admission {
    /// Its conversation, and everyone who receives it.
    Accepted(ConversationId, Arc<[String]>),
    /// Refused with this error to its sender.
    Refused(ErrorCode, String),
}

#[derive(Clone)]
pub struct Admit {
    pub keys: Keys,
    pub members: Members,
    pub blocks: BlockLists,
    pub targets: Targets,
    /// How long a client_id's claim lives: a little longer than its dedup
    /// record (DEDUP_TTL_SECS), so a record never outlives its claim.
    pub claim_ttl_secs: u64,
}

/// A client_id claim's value: the request it names, hashed (FNV-1a, 64
/// bits): stable across processes and releases.
fn fingerprint(entry: &IngressEntry, conversation: &ConversationId) -> String {
    let what = match entry.kind {
        EntryKind::Send => "s",
        EntryKind::Edit => "e",
        EntryKind::Delete => "d",
        EntryKind::Typing => "t",
        EntryKind::Member => "m",
    };
    let text = format!("{what}|{conversation}|{}", entry.target_seq.unwrap_or(0));
    let hash = text.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    });
    format!("{hash:016x}")
}

impl Admit {
    pub(crate) async fn run(
        &self,
        conn: &mut Redis,
        entries: &[StreamId],
    ) -> Result<Admitted, BatchError> {
        let mut out = Admitted::default();
        let mut parsed = Vec::with_capacity(entries.len());
        for raw in entries {
            let field = raw.get::<String>(INGRESS_FIELD).unwrap_or_default();
            match serde_json::from_str::<IngressEntry>(&field) {
                Ok(entry) if message::readable(entry.v) => parsed.push((raw.id.clone(), entry)),
                _ => out.dead.push((raw.id.clone(), field)),
            }
        }
        let Lookups {
            versions,
            blocks,
            conflicts,
        } = self.lookups(conn, &parsed).await?;
        let blocks = Lists(self.blocks.lists(&blocks).await?);
        self.members
            .prefetch_users(parsed.iter().filter_map(|(_, e)| match &e.to {
                Target::User(user) if *user != e.user => Some(user.as_str()),
                _ => None,
            }))
            .await?;
        let mut refused = Vec::new();
        for (stream_id, entry) in parsed {
            if conflicts.contains(&stream_id) {
                let message = format!(
                    "client_id {} already names another request (kind, conversation or target): use a fresh client_id for each request",
                    entry.client_id
                );
                refused.push(Rejected {
                    stream_id,
                    entry,
                    code: ErrorCode::Conflict,
                    message,
                    retry_after_ms: None,
                });
                continue;
            }
            match self.admit(&entry, &versions).await? {
                Admission::Accepted(conversation, recipients) => {
                    let a = Accepted {
                        stream_id,
                        entry,
                        conversation,
                        recipients,
                        target: None,
                    };
                    match a.entry.kind {
                        EntryKind::Typing => out.typing.push(a),
                        _ => out.sends.push(a),
                    }
                }
                Admission::Refused(code, message) => refused.push(Rejected {
                    stream_id,
                    entry,
                    code,
                    message,
                    retry_after_ms: None,
                }),
            }
        }
        out.sends = blocks.check_sends(out.sends, &mut refused);
        blocks.filter_typing(&mut out.typing);
        out.sends = self
            .slow_mode(conn, out.sends, &versions, &mut refused)
            .await?;
        out.sends = self
            .check_events(out.sends, &versions, &mut refused)
            .await?;
        out.rejected = self
            .readmit(conn, refused, &versions, &mut out.sends)
            .await?;
        Ok(out)
    }

    /// Slow mode: a member's message to a room in slow mode claims the
    /// room's interval for them (`SET NX GET PX`, its client_id the value,
    /// so every worker sees the claim); another message within it is
    /// refused with `rate_limited`. The claim's own re-send (the same
    /// client_id: a retried batch, a client re-sending what it never saw
    /// acknowledged) passes, and one already stored is answered by
    /// [`Self::readmit`] as before.
    async fn slow_mode(
        &self,
        conn: &mut Redis,
        sends: Vec<Accepted>,
        versions: &HashMap<String, Version>,
        refused: &mut Vec<Rejected>,
    ) -> Result<Vec<Accepted>, BatchError> {
        let mut claims = Vec::new();
        for (i, a) in sends.iter().enumerate() {
            let Conversation::Room(room) = a.conversation.kind() else {
                continue;
            };
            if a.entry.kind != EntryKind::Send {
                continue;
            }
            let version = versions.get(room).copied().flatten();
            if let Some(ms) = self
                .members
                .slow_mode_ms(room, version, &a.entry.user)
                .await?
            {
                claims.push((i, self.keys.slow_mode(room, &a.entry.user), ms));
            }
        }
        if claims.is_empty() {
            return Ok(sends);
        }
        let mut pipe = redis::pipe();
        for (i, key, ms) in &claims {
            pipe.cmd("SET")
                .arg(key)
                .arg(&sends[*i].entry.client_id)
                .arg("NX")
                .arg("GET")
                .arg("PX")
                .arg(*ms);
            pipe.pttl(key);
        }
        let held: Vec<(Option<String>, i64)> = pipe.query_async(conn).await?;
        let mut slowed = HashMap::new();
        for ((i, _, ms), (before, left)) in claims.iter().zip(held) {
            if before.is_some_and(|cid| cid != sends[*i].entry.client_id) {
                slowed.insert(*i, (*ms, u64::try_from(left).unwrap_or(*ms).max(1)));
            }
        }
        let mut kept = Vec::with_capacity(sends.len());
        for (i, a) in sends.into_iter().enumerate() {
            match slowed.get(&i) {
                None => kept.push(a),
                Some(&(ms, left)) => {
                    metrics::counter!("chat_slow_mode_refused_total").increment(1);
                    refused.push(Rejected {
                        message: format!(
                            "slow mode: one message every {} s in {}; wait, then send again",
                            ms / 1000,
                            a.conversation
                        ),
                        stream_id: a.stream_id,
                        entry: a.entry,
                        code: ErrorCode::RateLimited,
                        retry_after_ms: Some(left),
                    });
                }
            }
        }
        Ok(kept)
    }

    /// Checks each edit and delete against its target; refused ones move to
    /// `refused`. One history-service call per conversation with events.
    async fn check_events(
        &self,
        sends: Vec<Accepted>,
        versions: &HashMap<String, Version>,
        refused: &mut Vec<Rejected>,
    ) -> Result<Vec<Accepted>, BatchError> {
        let mut wanted: HashMap<ConversationId, Vec<u64>> = HashMap::new();
        for a in sends.iter().filter(|a| a.entry.kind.event().is_some()) {
            let seqs = wanted.entry(a.conversation.clone()).or_default();
            seqs.extend(a.entry.target_seq);
        }
        if wanted.is_empty() {
            return Ok(sends);
        }
        let mut found = HashMap::new();
        for (conversation, seqs) in wanted {
            let messages = self.targets.fetch(&conversation, seqs).await?;
            found.insert(conversation, messages);
        }
        let now = chat_model::time::now_ms();
        let mut kept = Vec::with_capacity(sends.len());
        for mut a in sends {
            let (Some(kind), Some(seq)) = (a.entry.kind.event(), a.entry.target_seq) else {
                kept.push(a);
                continue;
            };
            let target = found.get(&a.conversation).and_then(|m| m.get(&seq));
            let owner = match (kind, a.conversation.kind(), target) {
                (message::EventKind::Delete, Conversation::Room(room), Some(t))
                    if t.from != a.entry.user =>
                {
                    let version = versions.get(room).copied().flatten();
                    self.members
                        .is_moderator(room, version, &a.entry.user)
                        .await?
                }
                _ => false,
            };
            match targets::judge(
                kind,
                &a.entry.user,
                target,
                owner,
                now,
                self.targets.edit_window_ms,
            ) {
                Ok(()) => {
                    a.target = target.cloned();
                    kept.push(a);
                }
                Err((code, message)) => refused.push(Rejected {
                    stream_id: a.stream_id,
                    entry: a.entry,
                    code,
                    message,
                    retry_after_ms: None,
                }),
            }
        }
        Ok(kept)
    }

    /// Validates an entry and finds its conversation and recipients. An
    /// error is transient (retry the batch); a refusal is the sender's fault.
    async fn admit(
        &self,
        entry: &IngressEntry,
        versions: &HashMap<String, Version>,
    ) -> Result<Admission, BatchError> {
        if let Some(refusal) = check_fields(entry) {
            return Ok(refusal);
        }
        let conversation = entry.to.conversation(&entry.user);
        let refused = |code, message| Ok(Admission::Refused(code, message));
        if entry.kind == EntryKind::Member {
            return self.admit_member(entry, conversation, versions).await;
        }
        match &entry.to {
            Target::Room(room) => {
                let standing = self
                    .members
                    .standing(
                        room,
                        versions.get(room).copied().flatten(),
                        &entry.user,
                        chat_model::time::now_ms(),
                    )
                    .await?;
                match standing {
                    Standing::NoRoom => {
                        refused(ErrorCode::NotFound, format!("room {room} not found"))
                    }
                    Standing::NotMember => {
                        refused(ErrorCode::Forbidden, format!("not a member of room {room}"))
                    }
                    Standing::Muted(until) => refused(
                        ErrorCode::Forbidden,
                        format!("you are muted in room {room} until {until} (Unix ms)"),
                    ),
                    Standing::Member(m) => Ok(Admission::Accepted(conversation, m)),
                }
            }
            Target::User(user) if *user == entry.user => refused(
                ErrorCode::BadRequest,
                "cannot send a direct message to yourself".into(),
            ),
            Target::User(user) => {
                if !self.members.user_exists(user).await? {
                    return refused(ErrorCode::NotFound, format!("user {user} not found"));
                }
                let parties = parties(&conversation);
                Ok(Admission::Accepted(conversation, parties))
            }
        }
    }

    /// A membership event: user-service wrote it once the change was
    /// committed, so it is not checked against the actor's membership (a
    /// leave's actor has left). It goes to the room's members as they are
    /// now, the change included: the relay bumped the room's version with
    /// it, so a member list cached from before the change is refetched.
    async fn admit_member(
        &self,
        entry: &IngressEntry,
        conversation: ConversationId,
        versions: &HashMap<String, Version>,
    ) -> Result<Admission, BatchError> {
        let Target::Room(room) = &entry.to else {
            return Ok(Admission::Refused(
                ErrorCode::BadRequest,
                "a membership event is for a room".into(),
            ));
        };
        if entry.member.is_none() {
            return Ok(Admission::Refused(
                ErrorCode::BadRequest,
                "a membership event names its change (member)".into(),
            ));
        }
        Ok(
            match self
                .members
                .room(room, versions.get(room).copied().flatten())
                .await?
            {
                Some(members) => Admission::Accepted(conversation, members),
                None => Admission::Refused(ErrorCode::NotFound, format!("room {room} not found")),
            },
        )
    }

    /// Admission is decided once. A refused send whose (sender, client_id)
    /// already holds a seq in its conversation was admitted before (this is a
    /// retried batch); a membership change since must neither leave that seq
    /// a gap nor answer `forbidden` for a stored message. It goes through,
    /// to the room's members as they are now.
    async fn readmit(
        &self,
        conn: &mut Redis,
        rejected: Vec<Rejected>,
        versions: &HashMap<String, Version>,
        sends: &mut Vec<Accepted>,
    ) -> Result<Vec<Rejected>, BatchError> {
        let candidates: Vec<(usize, ConversationId)> = rejected
            .iter()
            .enumerate()
            .filter(|(_, r)| {
                r.entry.kind.is_stored()
                    && r.entry.kind != EntryKind::Member
                    && matches!(
                        r.code,
                        ErrorCode::Forbidden | ErrorCode::NotFound | ErrorCode::RateLimited
                    )
            })
            .map(|(i, r)| (i, r.entry.to.conversation(&r.entry.user)))
            .collect();
        if candidates.is_empty() {
            return Ok(rejected);
        }
        let mut pipe = redis::pipe();
        for (i, conversation) in &candidates {
            let r = &rejected[*i];
            pipe.exists(
                self.keys
                    .dedup(conversation.as_str(), &r.entry.user, &r.entry.client_id),
            );
        }
        let admitted_before: Vec<bool> = pipe.query_async(conn).await?;
        let mut again = HashMap::new();
        for ((i, conversation), before) in candidates.into_iter().zip(admitted_before) {
            if !before {
                continue;
            }
            let recipients: Arc<[String]> = match conversation.kind() {
                Conversation::Room(room) => self
                    .members
                    .room(room, versions.get(room).copied().flatten())
                    .await?
                    .unwrap_or_else(|| Arc::from(Vec::new())),
                Conversation::Dm(..) => parties(&conversation),
            };
            again.insert(i, (conversation, recipients));
        }
        let mut still = Vec::with_capacity(rejected.len());
        for (i, r) in rejected.into_iter().enumerate() {
            match again.remove(&i) {
                Some((conversation, recipients)) => {
                    metrics::counter!("chat_readmitted_total").increment(1);
                    sends.push(Accepted {
                        stream_id: r.stream_id,
                        entry: r.entry,
                        conversation,
                        recipients,
                        target: None,
                    });
                }
                None => still.push(r),
            }
        }
        Ok(still)
    }

    /// In one pipeline: the membership versions of the rooms this batch
    /// posts to, the block-list versions of the users it needs (see
    /// `blocks.rs`), and the claim of every request's client_id.
    async fn lookups(
        &self,
        conn: &mut Redis,
        parsed: &[(String, IngressEntry)],
    ) -> Result<Lookups, BatchError> {
        let mut rooms: Vec<&str> = parsed
            .iter()
            .filter_map(|(_, e)| match &e.to {
                Target::Room(room) => Some(room.as_str()),
                Target::User(_) => None,
            })
            .collect();
        rooms.sort_unstable();
        rooms.dedup();
        let claims: Vec<(&str, String)> = parsed
            .iter()
            // A membership event's client_id names its outbox row, never a
            // user's request: it is deduplicated under its own sender.
            .filter(|(_, e)| {
                e.kind.is_stored() && e.kind != EntryKind::Member && check_fields(e).is_none()
            })
            .map(|(id, e)| (id.as_str(), fingerprint(e, &e.to.conversation(&e.user))))
            .collect();
        let users = blocks::wanted(parsed);
        if rooms.is_empty() && claims.is_empty() && users.is_empty() {
            return Ok(Lookups::default());
        }
        let mut pipe = redis::pipe();
        for room in &rooms {
            pipe.get(self.keys.room_version(room));
        }
        for user in &users {
            pipe.get(self.keys.blocks_version(user));
        }
        let by_id: HashMap<&str, &IngressEntry> =
            parsed.iter().map(|(id, e)| (id.as_str(), e)).collect();
        for (id, print) in &claims {
            let e = by_id[id];
            pipe.cmd("SET")
                .arg(self.keys.client_claim(&e.user, &e.client_id))
                .arg(print)
                .arg("NX")
                .arg("GET")
                .arg("EX")
                .arg(self.claim_ttl_secs);
        }
        let mut replies: Vec<redis::Value> = pipe.query_async(conn).await?;
        let held = replies.split_off(rooms.len() + users.len());
        let mut versions: Vec<Version> = replies
            .into_iter()
            .map(redis::from_owned_redis_value)
            .collect::<Result<_, _>>()?;
        let block_versions = versions.split_off(rooms.len());
        let mut conflicts = HashSet::new();
        for ((id, print), had) in claims.iter().zip(held) {
            let had: Option<String> = redis::from_owned_redis_value(had)?;
            if had.is_some_and(|h| h != *print) {
                conflicts.insert((*id).to_owned());
            }
        }
        Ok(Lookups {
            versions: rooms.into_iter().map(str::to_owned).zip(versions).collect(),
            blocks: users
                .into_iter()
                .map(str::to_owned)
                .zip(block_versions)
                .collect(),
            conflicts,
        })
    }
}

/// The checks that need nothing but the entry (the stream is not trusted:
/// the gateway checked them too).
fn check_fields(entry: &IngressEntry) -> Option<Admission> {
    if !entry.kind.is_stored() {
        return None;
    }
    if let Err(message) = check_client_id(&entry.client_id) {
        return Some(Admission::Refused(ErrorCode::BadRequest, message));
    }
    if entry.target_seq.is_some_and(|s| s > MAX_SEQ) {
        return Some(Admission::Refused(
            ErrorCode::BadRequest,
            format!("seq must be at most {MAX_SEQ}"),
        ));
    }
    if entry.kind.event().is_some() != entry.target_seq.is_some_and(|s| s > 0) {
        return Some(Admission::Refused(
            ErrorCode::BadRequest,
            "an edit or delete names the seq (at least 1) of a message; a send names none".into(),
        ));
    }
    if entry.kind == EntryKind::Delete {
        return None;
    }
    if entry.body.is_empty() || entry.body.len() > MAX_BODY {
        return Some(Admission::Refused(
            ErrorCode::BadRequest,
            format!("body must be 1 to {MAX_BODY} bytes"),
        ));
    }
    None
}

/// The two parties of a DM, in the conversation id's (sorted) order.
fn parties(conversation: &ConversationId) -> Arc<[String]> {
    match conversation.kind() {
        Conversation::Dm(a, b) => Arc::from(vec![a.to_owned(), b.to_owned()]),
        Conversation::Room(_) => Arc::from(Vec::new()),
    }
}
