//! Edits and deletes in storage: each is an event with its own seq, kept
//! without its body, and applied to its target in the recent window and in
//! MongoDB, in seq order whatever order they arrive in.

use chat_model::message::{ChatMessage, EventKind};
use mongodb::bson::doc;
use proto::history::internal::v1 as internal_pb;

use crate::helpers::{Options, message, seqs, spawn_app, spawn_with};

fn event(target: &ChatMessage, seq: u64, kind: EventKind, body: &str) -> ChatMessage {
    let mut e = message(target.conversation.as_str(), seq, &target.from);
    e.kind = Some(kind);
    e.target_seq = Some(target.seq);
    e.body = body.to_owned();
    e
}

#[tokio::test]
async fn events_apply_in_the_window_in_seq_order_and_a_delete_is_final() {
    let app = spawn_app().await;
    let conv = "room:edits";
    let first = message(conv, 1, "alice");
    app.append(
        &(1..=3)
            .map(|s| message(conv, s, "alice"))
            .collect::<Vec<_>>(),
        &["bob"],
    )
    .await;
    // A later edit, then an earlier one arriving late: the later one stays.
    app.append(&[event(&first, 5, EventKind::Edit, "second")], &["bob"])
        .await;
    app.append(&[event(&first, 4, EventKind::Edit, "first")], &["bob"])
        .await;
    let page = app.history(conv, None, None, 50).await;
    assert_eq!(seqs(&page.messages), [1, 2, 3, 4, 5]);
    assert_eq!(page.messages[0].body, "second");
    assert_eq!(page.messages[0].edit_seq, Some(5));
    assert!(page.messages[0].edited_at.is_some());
    for e in &page.messages[3..] {
        assert_eq!(
            (e.kind.as_str(), e.body.as_str()),
            ("edit", ""),
            "events keep no body"
        );
    }
    // The offline queue gets the events whole: a client applies them.
    let offline = app.offline("bob").await;
    assert_eq!(offline.messages[3].body, "second");

    // Delete, then an edit that raced it: the message stays deleted.
    app.append(&[event(&first, 6, EventKind::Delete, "")], &[])
        .await;
    app.append(&[event(&first, 7, EventKind::Edit, "back")], &[])
        .await;
    let page = app.history(conv, None, None, 50).await;
    let target = &page.messages[0];
    assert!(
        target.deleted && target.tombstone && target.body.is_empty(),
        "{target:?}"
    );
    assert_eq!(app.recent_len(conv).await, 7, "one window entry per seq");
    // A replayed append of the original does not bring its old body back.
    app.append(std::slice::from_ref(&first), &[]).await;
    let page = app.history(conv, None, None, 50).await;
    assert_eq!(seqs(&page.messages), [1, 2, 3, 4, 5, 6, 7]);
    assert!(page.messages[0].deleted);

    // GetMessages answers with the current state.
    let found = app
        .w()
        .get_messages(internal_pb::GetMessagesRequest {
            conversation_id: conv.into(),
            seqs: vec![1, 2, 99],
        })
        .await
        .unwrap()
        .into_inner()
        .messages;
    let got: Vec<(u64, bool)> = found.iter().map(|m| (m.seq, m.deleted)).collect();
    assert_eq!(got, [(1, true), (2, false)]);
    let bad = app
        .w()
        .get_messages(internal_pb::GetMessagesRequest {
            conversation_id: conv.into(),
            seqs: vec![0],
        })
        .await
        .unwrap_err();
    assert_eq!(bad.code(), tonic::Code::InvalidArgument);
}

#[tokio::test]
async fn events_reach_archived_targets_in_mongodb_and_keep_no_copy_of_the_text() {
    let app = spawn_with(Options {
        recent_limit: 5,
        ..Options::default()
    })
    .await;
    let conv = "room:old";
    let messages: Vec<_> = (1..=20).map(|s| message(conv, s, "alice")).collect();
    app.append(&messages, &[]).await;
    app.wait_archived().await;
    assert!(app.recent_len(conv).await < 20, "the window was trimmed");

    app.append(
        &[
            event(&messages[2], 22, EventKind::Edit, "later"),
            event(&messages[2], 21, EventKind::Edit, "earlier"),
            event(&messages[0], 23, EventKind::Edit, "fixed"),
            event(&messages[1], 24, EventKind::Delete, ""),
        ],
        &[],
    )
    .await;
    app.wait_archived().await;
    let page = app.history(conv, None, Some(0), 50).await;
    assert_eq!(seqs(&page.messages), (1..=24).collect::<Vec<_>>());
    let m = &page.messages;
    assert_eq!((m[0].body.as_str(), m[0].edit_seq), ("fixed", Some(23)));
    assert!(m[0].edited_at.is_some());
    assert!(m[1].deleted && m[1].tombstone && m[1].body.is_empty());
    assert_eq!(m[2].body, "later", "the later edit wins whatever the order");

    let client = mongodb::Client::with_uri_str(testkit::mongodb_uri())
        .await
        .unwrap();
    let coll = client
        .database(&app.storage.mongodb_database)
        .collection::<mongodb::bson::Document>("messages");
    let deleted = coll
        .find_one(doc! {"conversation_id": conv, "seq": 2_i64})
        .await
        .unwrap()
        .unwrap();
    assert_eq!(deleted.get_str("body").unwrap(), "");
    let edit = coll
        .find_one(doc! {"conversation_id": conv, "seq": 23_i64})
        .await
        .unwrap()
        .unwrap();
    assert_eq!(edit.get_str("kind").unwrap(), "edit");
    assert_eq!(
        edit.get_str("body").unwrap(),
        "",
        "an archived event keeps no text"
    );
}
