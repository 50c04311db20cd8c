//! The checker: the model implied by what was acknowledged, against every
//! place the system keeps or shows conversation state. Each finding is a
//! line naming the conversation, seq and request, so a failing run prints
//! its counterexample.

use std::{
    collections::{BTreeMap, HashMap},
    time::Duration,
};

use e2e::Stack;
use futures::TryStreamExt;
use mongodb::bson::{Document, doc};
use serde_json::json;
use testkit::{WsClient, recovery::get};

use crate::{
    actor::{Answer, Kind, Outcome, Request, World, dm},
    view::Held,
};

/// One seq as the server shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Shown {
    pub id: String,
    pub from: String,
    pub client_id: String,
    pub kind: Option<String>,
    pub target_seq: Option<u64>,
    pub body: String,
    pub deleted: bool,
    pub edit_seq: u64,
    pub tombstone: bool,
    /// A membership event's `action:user`.
    pub member: Option<String>,
}

impl From<Held> for Shown {
    fn from(h: Held) -> Self {
        Self {
            id: h.id,
            from: h.from,
            client_id: h.client_id,
            kind: h.kind,
            target_seq: h.target_seq,
            body: h.body,
            deleted: h.deleted,
            edit_seq: h.edit_seq,
            tombstone: h.tombstone,
            member: h.member,
        }
    }
}

type Timeline = BTreeMap<u64, Shown>;

pub struct Findings {
    pub lines: Vec<String>,
    pub conversations: usize,
    pub stored: usize,
    pub acked: usize,
    pub refused: HashMap<String, usize>,
}

impl Findings {
    fn add(&mut self, line: String) {
        self.lines.push(line);
    }
}

/// Every conversation of the run, with a user who may read it.
fn conversations(world: &World, tokens: &HashMap<String, String>) -> Vec<(String, String)> {
    let mut out = vec![(format!("room:{}", world.room), tokens[&world.owner].clone())];
    for (i, a) in world.users.iter().enumerate() {
        for b in &world.users[i + 1..] {
            out.push((dm(a, b), tokens[a].clone()));
        }
    }
    out
}

async fn http_timeline(stack: &Stack, conv: &str, token: &str) -> Result<Timeline, String> {
    let http = reqwest::Client::new();
    let mut out = Timeline::new();
    let mut after = 0;
    loop {
        let page = get(
            &http,
            &stack.gateway_url(
                0,
                &format!("/api/conversations/{conv}/messages?after={after}&limit=200"),
            ),
            token,
        )
        .await?;
        let messages = page["messages"].as_array().cloned().unwrap_or_default();
        for m in &messages {
            if let Some((_, seq, held)) = Held::of(m) {
                out.insert(seq, held.into());
            }
        }
        match messages.last().and_then(|m| m["seq"].as_u64()) {
            Some(seq) if page["has_more"] == true => after = seq,
            _ => return Ok(out),
        }
    }
}

async fn ws_timeline(stack: &Stack, conv: &str, token: &str) -> Result<Timeline, String> {
    let mut ws = WsClient::connect(stack.gateway_ports[1 % stack.gateway_ports.len()], token)
        .await
        .map_err(|e| format!("{e:?}"))?;
    let mut out = Timeline::new();
    let mut after = 0;
    for page_no in 0.. {
        let reference = format!("h{page_no}");
        ws.send_json(
            &json!({"type": "history", "ref": reference, "conversation": conv,
            "after": after, "limit": 200}),
        )
        .await;
        let page = loop {
            let f = ws
                .next_frame(Duration::from_secs(10))
                .await
                .map_err(|e| format!("{e:?}"))?;
            if f["type"] == "history" && f["ref"] == reference.as_str() {
                break f;
            }
            if f["type"] == "error" && f["ref"] == reference.as_str() {
                return Err(format!("history over WebSocket: {f}"));
            }
        };
        let messages = page["messages"].as_array().cloned().unwrap_or_default();
        for m in &messages {
            if let Some((_, seq, held)) = Held::of(m) {
                out.insert(seq, held.into());
            }
        }
        match messages.last().and_then(|m| m["seq"].as_u64()) {
            Some(seq) if page["has_more"] == true => after = seq,
            _ => break,
        }
    }
    Ok(out)
}

async fn grpc_timeline(stack: &Stack, conv: &str, token: &str) -> Result<Timeline, String> {
    use proto::history::v1::{GetHistoryRequest, history_service_client::HistoryServiceClient};
    let mut client = HistoryServiceClient::connect(format!("http://{}", stack.history_addr()))
        .await
        .map_err(|e| e.to_string())?;
    let mut out = Timeline::new();
    let mut after = 0;
    loop {
        let mut request = tonic::Request::new(GetHistoryRequest {
            conversation_id: conv.to_owned(),
            before_seq: None,
            after_seq: Some(after),
            limit: Some(200),
        });
        request.metadata_mut().insert(
            "authorization",
            format!("Bearer {token}").parse().map_err(|_| "token")?,
        );
        let reply = client
            .get_history(request)
            .await
            .map_err(|e| e.to_string())?
            .into_inner();
        for m in &reply.messages {
            out.insert(
                m.seq,
                Shown {
                    id: m.id.clone(),
                    from: m.sender.clone(),
                    client_id: m.client_id.clone(),
                    kind: (!m.kind.is_empty()).then(|| m.kind.clone()),
                    target_seq: m.target_seq,
                    body: m.body.clone(),
                    deleted: m.deleted,
                    edit_seq: m.edit_seq.unwrap_or(0),
                    tombstone: m.tombstone,
                    member: m
                        .member
                        .as_ref()
                        .map(|e| format!("{}:{}", e.action, e.user)),
                },
            );
        }
        match reply.messages.last() {
            Some(m) if reply.has_more => after = m.seq,
            _ => return Ok(out),
        }
    }
}

/// The archive's copy, once it holds every seq up to `last` (or `deadline`
/// passed).
async fn mongo_timeline(
    stack: &Stack,
    conv: &str,
    last: u64,
    deadline: tokio::time::Instant,
) -> Result<Timeline, String> {
    let client = mongodb::Client::with_uri_str(testkit::mongodb_uri())
        .await
        .map_err(|e| e.to_string())?;
    let messages = client
        .database(&stack.storage.mongodb_database)
        .collection::<Document>("messages");
    loop {
        let docs: Vec<Document> = messages
            .find(doc! {"conversation_id": conv})
            .await
            .map_err(|e| e.to_string())?
            .try_collect()
            .await
            .map_err(|e| e.to_string())?;
        let mut out = Timeline::new();
        for d in docs {
            let int = |k: &str| {
                d.get_i64(k)
                    .ok()
                    .or_else(|| d.get_i32(k).ok().map(i64::from))
            };
            let seq = int("seq").unwrap_or(0) as u64;
            out.insert(
                seq,
                Shown {
                    id: d.get_str("_id").unwrap_or_default().to_owned(),
                    from: d.get_str("sender").unwrap_or_default().to_owned(),
                    client_id: d.get_str("client_id").unwrap_or_default().to_owned(),
                    kind: d.get_str("kind").ok().map(str::to_owned),
                    target_seq: int("target_seq").map(|s| s as u64),
                    body: d.get_str("body").unwrap_or_default().to_owned(),
                    deleted: d.get_bool("deleted").unwrap_or(false),
                    edit_seq: int("edit_seq").unwrap_or(0) as u64,
                    tombstone: d.get_bool("tombstone").unwrap_or(false),
                    member: d.get_document("member").ok().and_then(|e| {
                        Some(format!(
                            "{}:{}",
                            e.get_str("action").ok()?,
                            e.get_str("user").ok()?
                        ))
                    }),
                },
            );
        }
        if out.len() as u64 >= last || tokio::time::Instant::now() >= deadline {
            return Ok(out);
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// An acknowledged request, with who made it.
struct Acked<'a> {
    user: &'a str,
    request: &'a Request,
    id: &'a str,
    seq: u64,
}

/// What the acknowledged requests imply for one message: its body and
/// whether it is deleted, by the documented rule.
#[derive(Debug)]
struct Expected {
    body: String,
    deleted: bool,
    edit_seq: u64,
}

pub async fn run(stack: &Stack, world: &World, outcomes: &[Outcome]) -> Findings {
    let mut f = Findings {
        lines: Vec::new(),
        conversations: 0,
        stored: 0,
        acked: 0,
        refused: HashMap::new(),
    };
    let tokens: HashMap<String, String> = outcomes
        .iter()
        .map(|o| (o.user.clone(), o.token.clone()))
        .collect();
    for o in outcomes {
        for v in &o.violations {
            f.add(format!("client: {v}"));
        }
    }
    answers(&mut f, outcomes);

    let mut acked_by_conv: HashMap<&str, Vec<Acked<'_>>> = HashMap::new();
    for o in outcomes {
        for r in &o.requests {
            if r.duplicate_of.is_some() || r.reuse_of.is_some() {
                continue;
            }
            match &r.answer {
                Answer::Sent { id, seq } => {
                    f.acked += 1;
                    acked_by_conv
                        .entry(r.conversation.as_str())
                        .or_default()
                        .push(Acked {
                            user: &o.user,
                            request: r,
                            id,
                            seq: *seq,
                        });
                }
                Answer::Refused { code } => *f.refused.entry(code.clone()).or_default() += 1,
                Answer::Pending => {}
            }
        }
    }

    let mut timelines: HashMap<String, Timeline> = HashMap::new();
    // The archive has a minute, in all, to catch up.
    let archived_by = tokio::time::Instant::now() + Duration::from_secs(60);
    for (conv, token) in conversations(world, &tokens) {
        let http = match http_timeline(stack, &conv, &token).await {
            Ok(t) => t,
            Err(e) => {
                f.add(format!("{conv}: HTTP history failed: {e}"));
                continue;
            }
        };
        f.conversations += usize::from(!http.is_empty());
        f.stored += http.len();
        let acked = acked_by_conv.remove(conv.as_str()).unwrap_or_default();
        judge(&mut f, &conv, &http, &acked, outcomes);
        let last = http.keys().next_back().copied().unwrap_or(0);
        for (surface, other) in [
            ("WebSocket", ws_timeline(stack, &conv, &token).await),
            ("gRPC", grpc_timeline(stack, &conv, &token).await),
            (
                "MongoDB",
                mongo_timeline(stack, &conv, last, archived_by).await,
            ),
        ] {
            match other {
                Ok(other) => compare(&mut f, &conv, surface, &http, &other),
                Err(e) => f.add(format!("{conv}: {surface} history failed: {e}")),
            }
        }
        timelines.insert(conv, http);
    }
    for o in outcomes {
        views(&mut f, o, &timelines);
        listing(&mut f, stack, o, &timelines).await;
        offline(&mut f, stack, o, &timelines).await;
    }
    f
}

/// Duplicates answer as their original; reuses of a client_id for another
/// request are refused with `conflict`.
fn answers(f: &mut Findings, outcomes: &[Outcome]) {
    for o in outcomes {
        for r in &o.requests {
            if let Some(original) = r.duplicate_of {
                let want = &o.requests[original].answer;
                if &r.answer != want {
                    f.add(format!(
                        "{}: a re-send of {} ({:?}) was answered {:?}, not as the original {want:?}",
                        o.user, r.client_id, r.kind, r.answer
                    ));
                }
            }
            if r.reuse_of.is_some()
                && r.answer
                    != (Answer::Refused {
                        code: "conflict".into(),
                    })
            {
                f.add(format!(
                    "{}: client_id {} reused for another request ({:?} {} {:?}) was answered {:?}, not conflict",
                    o.user, r.client_id, r.kind, r.conversation, r.target_seq, r.answer
                ));
            }
        }
    }
}

/// One conversation's HTTP history against what was acknowledged there.
fn judge(f: &mut Findings, conv: &str, http: &Timeline, acked: &[Acked<'_>], outcomes: &[Outcome]) {
    let last = http.keys().next_back().copied().unwrap_or(0);
    let gaps: Vec<u64> = (1..=last).filter(|s| !http.contains_key(s)).collect();
    if !gaps.is_empty() {
        f.add(format!("{conv}: seqs missing from history: {gaps:?}"));
    }
    let mut by_seq: HashMap<u64, &Acked<'_>> = HashMap::new();
    for a in acked {
        if let Some(other) = by_seq.insert(a.seq, a) {
            f.add(format!(
                "{conv} seq {}: acknowledged to {} ({}) and to {} ({})",
                a.seq, other.user, other.request.client_id, a.user, a.request.client_id
            ));
        }
        let Some(shown) = http.get(&a.seq) else {
            f.add(format!(
                "{conv} seq {}: acknowledged to {} ({} {:?}) but not in history",
                a.seq, a.user, a.request.client_id, a.request.kind
            ));
            continue;
        };
        let kind = match a.request.kind {
            Kind::Send => None,
            Kind::Edit => Some("edit"),
            Kind::Delete => Some("delete"),
        };
        if shown.id != a.id
            || shown.from != a.user
            || shown.client_id != a.request.client_id
            || shown.kind.as_deref() != kind
            || (kind.is_some() && shown.target_seq != a.request.target_seq)
        {
            f.add(format!(
                "{conv} seq {}: acknowledged as {} {:?} of {:?} by {} but history has {shown:?}",
                a.seq, a.id, a.request.kind, a.request.target_seq, a.user
            ));
        }
    }
    // Everything stored was acknowledged to its sender.
    for (seq, shown) in http {
        // Membership events are user-service's: nobody is acknowledged.
        if (shown.tombstone && !shown.deleted) || shown.member.is_some() {
            continue;
        }
        if !by_seq.contains_key(seq) {
            let refused = outcomes
                .iter()
                .filter(|o| o.user == shown.from)
                .flat_map(|o| &o.requests)
                .find(|r| r.client_id == shown.client_id)
                .map(|r| format!("{:?}", r.answer));
            f.add(format!(
                "{conv} seq {seq}: stored ({} by {}, {:?}) but never acknowledged; its request: {refused:?}",
                shown.client_id, shown.from, shown.kind
            ));
        }
    }
    // The events by target, in seq order: a delete is final.
    let mut events: BTreeMap<u64, Vec<&Acked<'_>>> = BTreeMap::new();
    for a in acked.iter().filter(|a| a.request.kind != Kind::Send) {
        events
            .entry(a.request.target_seq.unwrap_or(0))
            .or_default()
            .push(a);
    }
    for (target, list) in &mut events {
        list.sort_by_key(|a| a.seq);
        let deletes: Vec<u64> = list
            .iter()
            .filter(|a| a.request.kind == Kind::Delete)
            .map(|a| a.seq)
            .collect();
        if deletes.len() > 1 {
            f.add(format!(
                "{conv} seq {target}: deleted more than once, every delete acknowledged: seqs {deletes:?}"
            ));
        }
        if let Some(first_delete) = deletes.first() {
            for a in list
                .iter()
                .filter(|a| a.request.kind == Kind::Edit && a.seq > *first_delete)
            {
                f.add(format!(
                    "{conv} seq {target}: an edit ({}, seq {}) acknowledged after its delete (seq {first_delete})",
                    a.request.client_id, a.seq
                ));
            }
        }
        match by_seq.get(target) {
            Some(t) if t.request.kind == Kind::Send => {}
            other => f.add(format!(
                "{conv} seq {target}: events acknowledged on what is not an acknowledged message ({:?})",
                other.map(|t| t.request.kind)
            )),
        }
    }
    for a in acked.iter().filter(|a| a.request.kind == Kind::Send) {
        let expected = expect(a, events.get(&a.seq).map_or(&[][..], |v| v.as_slice()));
        let Some(shown) = http.get(&a.seq) else {
            continue;
        };
        if shown.body != expected.body
            || shown.deleted != expected.deleted
            || shown.edit_seq != expected.edit_seq
        {
            f.add(format!(
                "{conv} seq {}: history shows {:?} (deleted {}, edit_seq {}) where the acknowledged events give {expected:?}",
                a.seq, shown.body, shown.deleted, shown.edit_seq
            ));
        }
    }
}

fn expect(message: &Acked<'_>, events: &[&Acked<'_>]) -> Expected {
    let mut e = Expected {
        body: message.request.body.clone(),
        deleted: false,
        edit_seq: 0,
    };
    // A delete wins over every edit; of the edits, the newest.
    for ev in events {
        match ev.request.kind {
            _ if e.deleted => {}
            Kind::Delete => {
                e.deleted = true;
                e.body.clear();
                e.edit_seq = ev.seq;
            }
            _ if ev.seq > e.edit_seq => {
                e.edit_seq = ev.seq;
                e.body.clone_from(&ev.request.body);
            }
            _ => {}
        }
    }
    e
}

fn compare(f: &mut Findings, conv: &str, surface: &str, http: &Timeline, other: &Timeline) {
    for (seq, shown) in http {
        match other.get(seq) {
            None => f.add(format!(
                "{conv} seq {seq}: in HTTP history, not in {surface}"
            )),
            Some(o) if o != shown => f.add(format!(
                "{conv} seq {seq}: HTTP history has {shown:?}, {surface} has {o:?}"
            )),
            Some(_) => {}
        }
    }
    for seq in other.keys().filter(|s| !http.contains_key(s)) {
        f.add(format!(
            "{conv} seq {seq}: in {surface}, not in HTTP history"
        ));
    }
}

/// What a client ended up showing, by the documented rule, against history.
fn views(f: &mut Findings, o: &Outcome, timelines: &HashMap<String, Timeline>) {
    for (conv, timeline) in timelines {
        if let Some(dm) = conv.strip_prefix("dm:")
            && !dm.split(':').any(|u| u == o.user)
        {
            continue;
        }
        let held = o.view.conversations.get(conv);
        for (seq, shown) in timeline {
            let Some(h) = held.and_then(|h| h.get(seq)) else {
                f.add(format!("{}: never got {conv} seq {seq}", o.user));
                continue;
            };
            if h.id != shown.id {
                f.add(format!(
                    "{}: holds {} at {conv} seq {seq}, history {}",
                    o.user, h.id, shown.id
                ));
            } else if shown.kind.is_none() && (h.body != shown.body || h.deleted != shown.deleted) {
                f.add(format!(
                    "{}: shows {conv} seq {seq} as {:?} (deleted {}), history as {:?} (deleted {})",
                    o.user, h.body, h.deleted, shown.body, shown.deleted
                ));
            }
        }
    }
}

/// The conversation list: last seq, unread count and preview.
async fn listing(
    f: &mut Findings,
    stack: &Stack,
    o: &Outcome,
    timelines: &HashMap<String, Timeline>,
) {
    let http = reqwest::Client::new();
    let list = match get(
        &http,
        &stack.gateway_url(0, "/api/conversations?limit=200"),
        &o.token,
    )
    .await
    {
        Ok(l) => l,
        Err(e) => return f.add(format!("{}: conversation list failed: {e}", o.user)),
    };
    for c in list["conversations"]
        .as_array()
        .cloned()
        .unwrap_or_default()
    {
        let id = c["id"].as_str().unwrap_or_default();
        let Some(timeline) = timelines.get(id) else {
            continue;
        };
        let last = timeline.keys().next_back().copied().unwrap_or(0);
        let (last_seq, read_seq, unread) = (
            c["last_seq"].as_u64().unwrap_or(0),
            c["read_seq"].as_u64().unwrap_or(0),
            c["unread"].as_u64().unwrap_or(0),
        );
        if last_seq != last || unread != last_seq.saturating_sub(read_seq) {
            f.add(format!(
                "{}: the list has {id} at last_seq {last_seq}, read {read_seq}, unread {unread}; history ends at {last}",
                o.user
            ));
        }
        let own = o
            .requests
            .iter()
            .filter(|r| r.conversation == id && r.duplicate_of.is_none() && r.reuse_of.is_none())
            .filter_map(|r| match r.answer {
                Answer::Sent { seq, .. } => Some(seq),
                _ => None,
            })
            .max()
            .unwrap_or(0);
        let asked = o.reads_sent.get(id).copied().unwrap_or(0);
        if read_seq < own || read_seq > own.max(asked) {
            f.add(format!(
                "{}: read marker of {id} is {read_seq}; own messages reach {own}, reads asked {asked}",
                o.user
            ));
        }
        let newest = timeline
            .iter()
            .rev()
            .find(|(_, s)| s.kind.is_none() && (s.deleted || !s.tombstone));
        let preview = &c["last_message"];
        match newest {
            None if !preview.is_null() => {
                f.add(format!(
                    "{}: {id} previews {preview} with no message",
                    o.user
                ));
            }
            Some((seq, s)) => {
                let body: String = s.body.chars().take(200).collect();
                if preview["seq"].as_u64() != Some(*seq)
                    || preview["id"].as_str() != Some(s.id.as_str())
                    || preview["body"].as_str() != Some(body.as_str())
                    || (preview["deleted"] == true) != s.deleted
                {
                    f.add(format!(
                        "{}: {id} previews {preview}; history's newest message is seq {seq} {:?} (deleted {})",
                        o.user, s.body, s.deleted
                    ));
                }
            }
            None => {}
        }
    }
}

/// An offline queue may hold a message sent before a delete, but then the
/// delete follows it: a deleted body never waits there alone.
async fn offline(
    f: &mut Findings,
    stack: &Stack,
    o: &Outcome,
    timelines: &HashMap<String, Timeline>,
) {
    use proto::history::v1::{ListOfflineRequest, history_service_client::HistoryServiceClient};
    let Ok(mut client) =
        HistoryServiceClient::connect(format!("http://{}", stack.history_addr())).await
    else {
        return f.add(format!(
            "{}: gRPC unreachable for the offline queue",
            o.user
        ));
    };
    let mut request = tonic::Request::new(ListOfflineRequest {
        username: o.user.clone(),
    });
    if let Ok(v) = format!("Bearer {}", o.token).parse() {
        request.metadata_mut().insert("authorization", v);
    }
    let queue = match client.list_offline(request).await {
        Ok(r) => r.into_inner().messages,
        Err(e) => return f.add(format!("{}: ListOffline failed: {e}", o.user)),
    };
    for (i, m) in queue.iter().enumerate() {
        let Some(shown) = timelines
            .get(&m.conversation_id)
            .and_then(|t| t.get(&m.seq))
        else {
            continue;
        };
        if shown.id != m.id {
            f.add(format!(
                "{}: offline queue holds {} at {} seq {}, history {}",
                o.user, m.id, m.conversation_id, m.seq, shown.id
            ));
        }
        if m.kind.is_empty() && !m.body.is_empty() && shown.deleted {
            let followed = queue[i + 1..].iter().any(|e| {
                e.kind == "delete"
                    && e.conversation_id == m.conversation_id
                    && e.target_seq == Some(m.seq)
            });
            if !followed {
                f.add(format!(
                    "{}: offline queue holds the body of deleted {} seq {} without its delete",
                    o.user, m.conversation_id, m.seq
                ));
            }
        }
    }
}
