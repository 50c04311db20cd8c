//! Edits and deletes as chat-service hands them: with their target's new
//! state, decided once. history-service stores that state in the window and
//! the archiver in MongoDB, unless what is there supersedes it (a delete
//! beats every edit, a later edit an earlier one), in whatever order the
//! writes arrive; and a retried append never brings a deleted body back.

use chat_model::message::{ChatMessage, EventKind};

use crate::helpers::{Item, message, spawn_app};

fn event(target: &ChatMessage, seq: u64, kind: EventKind, body: &str) -> ChatMessage {
    let mut e = message(target.conversation.as_str(), seq, &target.from);
    e.kind = Some(kind);
    e.target_seq = Some(target.seq);
    e.body = body.to_owned();
    e
}

#[tokio::test]
async fn handed_states_are_stored_and_a_delete_beats_any_edit_in_any_order() {
    let app = spawn_app().await;
    let conv = "room:states";
    let first = message(conv, 1, "alice");
    app.append_items(vec![Item::new(first.clone())], 0).await;
    app.append_items(
        vec![Item::event(
            event(&first, 2, EventKind::Edit, "edited"),
            &first,
        )],
        0,
    )
    .await;
    let page = app.history(conv, None, None, 50).await;
    assert_eq!(
        (page.messages[0].body.as_str(), page.messages[0].edit_seq),
        ("edited", Some(2))
    );
    // A delete, then an edit with a later seq handed late: the delete stays.
    app.append_items(
        vec![Item::event(event(&first, 3, EventKind::Delete, ""), &first)],
        0,
    )
    .await;
    app.append_items(
        vec![Item::event(
            event(&first, 4, EventKind::Edit, "back"),
            &first,
        )],
        0,
    )
    .await;
    app.wait_archived().await;
    let page = app.history(conv, None, None, 50).await;
    let target = &page.messages[0];
    assert!(target.deleted && target.body.is_empty(), "{target:?}");
    assert!(
        app.window(conv)
            .await
            .iter()
            .all(|m| !m.contains("edited") && !m.contains("back")),
        "no body of a deleted message stays in the window: {:?}",
        app.window(conv).await
    );
    let archived = app.archived(conv, 1).await.expect("archived");
    assert_eq!(archived.get_bool("deleted"), Ok(true), "{archived}");
    assert_eq!(archived.get_str("body"), Ok(""), "{archived}");
}

#[tokio::test]
async fn a_state_archived_before_its_message_is_kept_and_the_message_comes_as_a_replay() {
    let app = spawn_app().await;
    let conv = "room:early";
    let first = message(conv, 1, "alice");
    // The delete's state reaches the archiver first (its own entry comes
    // later, as after a retried append).
    app.append_items(
        vec![Item::event(event(&first, 2, EventKind::Delete, ""), &first)],
        0,
    )
    .await;
    app.wait_archived().await;
    app.append_items(vec![Item::new(first.clone()).replayed()], 0)
        .await;
    app.wait_archived().await;
    let archived = app.archived(conv, 1).await.expect("archived");
    assert_eq!(archived.get_bool("deleted"), Ok(true), "{archived}");
}

#[tokio::test]
async fn a_retried_append_never_brings_a_deleted_body_back() {
    let app = spawn_app().await;
    let conv = "dm:alice:bob";
    let first = message(conv, 1, "alice");
    app.append_items(vec![Item::new(first.clone()).to(&["bob"])], 0)
        .await;
    // bob collects and acknowledges his queue; then the message is deleted.
    let queued = app.offline("bob").await;
    assert_eq!(queued.messages.len(), 1);
    app.ack_offline("bob", &queued.messages[0].id, 0).await;
    app.append_items(
        vec![Item::event(event(&first, 2, EventKind::Delete, ""), &first)],
        0,
    )
    .await;
    // The message's first append is retried (its batch failed after it had
    // stored it): nothing comes back, in the window, the queue or the archive.
    app.append_items(vec![Item::new(first.clone()).to(&["bob"]).replayed()], 0)
        .await;
    assert!(
        app.window(conv)
            .await
            .iter()
            .all(|m| !m.contains("message 1")),
        "{:?}",
        app.window(conv).await
    );
    let queued = app.offline("bob").await;
    assert!(
        queued.messages.iter().all(|m| m.body.is_empty()),
        "{:?}",
        queued.messages
    );
    app.wait_archived().await;
    let archived = app.archived(conv, 1).await.expect("archived");
    assert_eq!(archived.get_bool("deleted"), Ok(true), "{archived}");
    // A replay of a message stored and not deleted is stored once.
    let second = message(conv, 3, "alice");
    app.append_items(vec![Item::new(second.clone())], 0).await;
    app.append_items(vec![Item::new(second.clone()).replayed()], 0)
        .await;
    let copies = app
        .window(conv)
        .await
        .into_iter()
        .filter(|m| m.contains("message 3"))
        .count();
    assert_eq!(copies, 1);
}

#[tokio::test]
async fn a_push_after_the_queue_was_read_reports_its_user_late() {
    let app = spawn_app().await;
    let conv = "dm:alice:carol";
    // The batch looked presence up; then carol's socket read her queue.
    let looked_up = chat_model::time::now_ms() - 5_000;
    let _ = app.offline("carol").await;
    let late = app
        .append_items(
            vec![Item::new(message(conv, 1, "alice")).to(&["carol"])],
            looked_up,
        )
        .await;
    assert_eq!(
        late.iter()
            .map(|l| (l.item, l.username.as_str()))
            .collect::<Vec<_>>(),
        [(0, "carol")]
    );
    // A batch that looked up after her read: not late. Nor one whose
    // lookup time is unknown.
    let late = app
        .append_items(
            vec![Item::new(message(conv, 2, "alice")).to(&["carol"])],
            chat_model::time::now_ms() + 60_000,
        )
        .await;
    assert!(late.is_empty(), "{late:?}");
    let late = app
        .append_items(vec![Item::new(message(conv, 3, "alice")).to(&["carol"])], 0)
        .await;
    assert!(late.is_empty(), "{late:?}");
}

#[tokio::test]
async fn an_edit_stored_late_after_its_target_was_deleted_keeps_its_seq_and_no_text() {
    let app = spawn_app().await;
    let conv = "dm:alice:dave";
    let first = message(conv, 1, "alice");
    app.append_items(vec![Item::new(first.clone())], 0).await;
    // The edit took seq 2; its first append failed before storing it; the
    // delete (seq 3) was stored meanwhile; then the edit's append is retried.
    let edit = event(&first, 2, EventKind::Edit, "secret edit");
    app.append_items(
        vec![Item::event(event(&first, 3, EventKind::Delete, ""), &first)],
        0,
    )
    .await;
    app.append_items(vec![Item::event(edit, &first).to(&["dave"]).replayed()], 0)
        .await;
    let page = app.history(conv, None, None, 50).await;
    assert_eq!(
        crate::helpers::seqs(&page.messages),
        [1, 2, 3],
        "no gap at the edit's seq"
    );
    assert!(page.messages[0].deleted, "{:?}", page.messages[0]);
    assert_eq!(page.messages[1].kind, "edit");
    assert!(
        app.window(conv)
            .await
            .iter()
            .all(|m| !m.contains("secret edit")),
        "{:?}",
        app.window(conv).await
    );
    assert!(
        app.offline("dave").await.messages.is_empty(),
        "its text queued nowhere"
    );
    app.wait_archived().await;
    let archived = app.archived(conv, 2).await.expect("the edit archived");
    assert_eq!(archived.get_str("body"), Ok(""), "{archived}");
}
