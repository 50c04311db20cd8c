//! The conversation summary script (`chat_redis::summary`) against a real Redis:
//! every field only moves forward, whatever order events are stored in.
//! (A message's preview is set by chat-service's sequencer, from
//! [`PreviewParts`]; here it is written the same way by hand.)

use chat_model::{
    ids::{ConversationId, Target},
    message::{ChatMessage, EventKind},
    preview::{PreviewParts, Summary},
};

use chat_redis::{
    connection::{self, query_scripted},
    keys::Keys,
    summary::Summaries,
};
use testkit::storage::Storage;

fn message(seq: u64, body: &str) -> ChatMessage {
    ChatMessage::new(
        format!("id{seq}"),
        ConversationId::room("r"),
        seq,
        "alice".into(),
        Target::Room("r".into()),
        body.into(),
        1_000 + seq as i64,
        format!("c{seq}"),
    )
}

fn event(seq: u64, kind: EventKind, target: u64, body: &str) -> ChatMessage {
    let mut e = message(seq, body);
    e.kind = Some(kind);
    e.target_seq = Some(target);
    e
}

#[tokio::test]
async fn previews_move_forward_and_events_change_only_the_previewed_message() {
    let storage = Storage::new();
    let conn = connection::connect(&chat_redis::connection::Endpoints::new(
        &testkit::redis_url(),
        testkit::redis_cluster(),
    ))
    .await
    .expect("redis");
    let summaries = Summaries::new(Keys::new(storage.redis_prefix.clone()));
    let key = Keys::new(storage.redis_prefix.clone()).last("room:r");
    // What the sequencer does for a new message.
    let sequenced = |m: ChatMessage| {
        let mut conn = conn.clone();
        let key = key.clone();
        async move {
            let parts = PreviewParts::new(&m.id, &m.from, &m.body, m.ts);
            let preview = format!("{}{}{}", parts.before_seq, m.seq, parts.after_seq);
            let () = redis::cmd("HSET")
                .arg(&key)
                .arg("seq")
                .arg(m.seq)
                .arg("m")
                .arg(preview)
                .arg("at")
                .arg(m.ts)
                .query_async(&mut conn)
                .await
                .unwrap();
        }
    };
    let store = |m: ChatMessage, target: Option<ChatMessage>| {
        let summaries = summaries.clone();
        let mut conn = conn.clone();
        async move {
            let mut pipe = redis::pipe();
            summaries.add_event(&mut pipe, &m, target.as_ref());
            query_scripted::<()>(&mut conn, &pipe, &[summaries.script()])
                .await
                .unwrap();
        }
    };
    let read = || {
        let summaries = summaries.clone();
        let mut conn = conn.clone();
        async move {
            let mut pipe = redis::pipe();
            summaries.read(&mut pipe, "room:r");
            let ((at, m),): ((Option<i64>, Option<String>),) =
                pipe.query_async(&mut conn).await.unwrap();
            Summary::from_fields(at, m)
        }
    };

    sequenced(message(2, "second")).await;
    let s = read().await;
    assert_eq!(s.last_message.as_ref().unwrap().body, "second");
    assert_eq!(s.last_message.as_ref().unwrap().seq, 2);
    assert_eq!(s.last_activity, Some(1_002));

    // An event whose target is unknown (let through on a retry) moves the
    // activity time only.
    store(event(3, EventKind::Edit, 2, "not applied"), None).await;
    let s = read().await;
    assert_eq!(s.last_message.as_ref().unwrap().body, "second");
    assert_eq!(s.last_activity, Some(1_003));

    // An edit of an older message leaves the preview; one of the previewed
    // message changes it, but not once a newer edit is applied (events
    // stored out of order); a delete is final.
    let mut older = message(1, "first");
    older.apply(&event(4, EventKind::Edit, 1, "x"));
    store(event(4, EventKind::Edit, 1, "x"), Some(older)).await;
    assert_eq!(read().await.last_message.unwrap().body, "second");
    let mut edited = message(2, "second");
    edited.apply(&event(6, EventKind::Edit, 2, "second, fixed"));
    store(event(6, EventKind::Edit, 2, "second, fixed"), Some(edited)).await;
    let mut stale = message(2, "second");
    stale.apply(&event(5, EventKind::Edit, 2, "stale"));
    store(event(5, EventKind::Edit, 2, "stale"), Some(stale)).await;
    let s = read().await.last_message.unwrap();
    assert_eq!(
        (s.body.as_str(), s.edited_at),
        ("second, fixed", Some(1_006))
    );
    let mut deleted = message(2, "second");
    deleted.apply(&event(7, EventKind::Delete, 2, ""));
    store(event(7, EventKind::Delete, 2, ""), Some(deleted)).await;
    let mut late = message(2, "second");
    late.apply(&event(8, EventKind::Edit, 2, "back"));
    store(event(8, EventKind::Edit, 2, "back"), Some(late)).await;
    let s = read().await.last_message.unwrap();
    assert!(s.deleted && s.body.is_empty(), "{s:?}");

    // A newer message replaces the preview; the tombstone of an older one
    // changes nothing, its own blanks it.
    sequenced(message(9, "ninth")).await;
    assert_eq!(read().await.last_message.unwrap().body, "ninth");
    let summaries2 = summaries.clone();
    let tombstone = |m: ChatMessage| {
        let summaries = summaries2.clone();
        let mut conn = conn.clone();
        async move {
            let mut pipe = redis::pipe();
            summaries.add_tombstone(&mut pipe, &m);
            query_scripted::<()>(&mut conn, &pipe, &[summaries.script()])
                .await
                .unwrap();
        }
    };
    tombstone(message(8, "")).await;
    assert_eq!(read().await.last_message.unwrap().body, "ninth");
    tombstone(message(9, "")).await;
    let s = read().await.last_message.unwrap();
    assert!(s.deleted && s.body.is_empty() && s.seq == 9, "{s:?}");
}
