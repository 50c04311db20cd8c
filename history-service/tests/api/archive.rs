use futures::TryStreamExt;
use mongodb::bson::doc;

use crate::helpers::{message, spawn_app};

#[tokio::test]
async fn every_message_lands_in_mongodb_once_with_its_indexes() {
    let app = spawn_app().await;
    let messages: Vec<_> = (1..=120)
        .map(|s| message("room:general", s, "alice"))
        .collect();
    app.append(&messages, &[]).await;
    // A replay of part of it must not duplicate anything.
    app.append(&messages[..30], &[]).await;
    app.wait_archived().await;

    let client = mongodb::Client::with_uri_str(testkit::mongodb_uri())
        .await
        .unwrap();
    let coll = client
        .database(&app.storage.mongodb_database)
        .collection::<mongodb::bson::Document>("messages");
    let docs = by_seq(&coll, doc! {"conversation_id": "room:general"}).await;
    assert_eq!(docs.len(), 120);
    assert_eq!(docs[0].get_str("_id").unwrap(), "room:general-1");
    assert!(docs[0].get_datetime("sent_at").is_ok());
    let indexes: Vec<_> = coll
        .list_indexes()
        .await
        .unwrap()
        .try_collect()
        .await
        .unwrap();
    assert!(
        indexes
            .iter()
            .any(|i| i.keys == doc! {"conversation_id": 1, "seq": 1}
                && i.options.as_ref().and_then(|o| o.unique) == Some(true)),
        "{indexes:?}"
    );
    // The index holds: another id with a taken (conversation, seq) is refused.
    let mut clash = docs[0].clone();
    clash.insert("_id", "another-id");
    let err = coll.insert_one(clash).await.unwrap_err();
    assert!(
        err.to_string().contains("11000") || err.to_string().contains("E11000"),
        "{err}"
    );
}

#[tokio::test]
async fn with_mongodb_stopped_chat_goes_on_and_the_archive_catches_up_without_duplicates() {
    use crate::helpers::{Options, seqs, spawn_with};

    let mut mongo = testkit::mongo_server::MongoServer::new();
    mongo.start().await;
    let app = spawn_with(Options {
        recent_limit: 10,
        mongodb_uri: mongo.uri(),
        ..Options::default()
    })
    .await;
    let conv = "room:general";
    let first: Vec<_> = (1..=100).map(|s| message(conv, s, "alice")).collect();
    app.append(&first, &[]).await;
    app.wait_archived().await;

    // MongoDB goes away; messages keep coming (and a batch is replayed).
    mongo.stop();
    let second: Vec<_> = (101..=200).map(|s| message(conv, s, "alice")).collect();
    app.append(&second, &["bob"]).await;
    app.append(&first[80..], &[]).await;
    let ready = app.wait_readyz("degraded").await;
    assert!(
        ready["reason"].as_str().unwrap().contains("archive"),
        "{ready}"
    );
    // Recent history and offline queues work meanwhile: the unarchived part
    // is all in Redis.
    let latest = app.history(conv, None, None, 100).await;
    assert_eq!(seqs(&latest.messages), (101..=200).collect::<Vec<_>>());
    assert!(latest.has_more);
    assert_eq!(app.offline("bob").await.messages.len(), 100);
    // A page reaching into the archive is shorter but gap-free...
    let longer = app.history(conv, None, None, 200).await;
    let s = seqs(&longer.messages);
    assert_eq!(*s.last().unwrap(), 200);
    assert!(s.windows(2).all(|w| w[1] == w[0] + 1) && longer.has_more);
    // ...and one wholly in the archive is UNAVAILABLE, not wrong.
    let status = app
        .c()
        .get_history(proto::history::v1::GetHistoryRequest {
            conversation_id: conv.into(),
            before_seq: Some(50),
            after_seq: None,
            limit: Some(20),
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), tonic::Code::Unavailable);

    // MongoDB returns: the backlog drains, every message lands once.
    mongo.start().await;
    app.wait_archived().await;
    let client = mongodb::Client::with_uri_str(mongo.uri()).await.unwrap();
    let coll = client
        .database(&app.storage.mongodb_database)
        .collection::<mongodb::bson::Document>("messages");
    let docs = by_seq(&coll, doc! {}).await;
    // The wire server may hand small integers back as int32.
    let archived: Vec<i64> = docs
        .iter()
        .map(|d| {
            let seq = d.get("seq").unwrap();
            seq.as_i64().or(seq.as_i32().map(i64::from)).unwrap()
        })
        .collect();
    assert_eq!(
        archived,
        (1..=200).collect::<Vec<i64>>(),
        "all 200, each once"
    );
    app.wait_readyz("ready").await;
    // And the window shrank back once the archive had everything.
    assert!(app.recent_len(conv).await <= 10);
    let page = app.history(conv, None, None, 200).await;
    assert_eq!(seqs(&page.messages), (1..=200).collect::<Vec<_>>());
}

/// The archived documents matching `filter`, in seq order.
async fn by_seq(
    coll: &mongodb::Collection<mongodb::bson::Document>,
    filter: mongodb::bson::Document,
) -> Vec<mongodb::bson::Document> {
    coll.find(filter)
        .sort(doc! {"seq": 1})
        .await
        .unwrap()
        .try_collect()
        .await
        .unwrap()
}

/// The recent window of a conversation loses only what MongoDB confirmed:
/// messages another instance has not archived yet stay, whatever this one
/// trims.
#[tokio::test]
async fn the_window_is_trimmed_only_below_what_mongodb_confirmed() {
    let app = crate::helpers::spawn_with(crate::helpers::Options {
        recent_limit: 5,
        ..crate::helpers::Options::default()
    })
    .await;
    let conv = "room:busy";
    // Seqs 1..=3 are in the window, not yet archived (another instance read
    // them from the backlog and has not written them).
    let mut redis = app.storage.redis().await;
    for m in (1..=3).map(|s| message(conv, s, "alice")) {
        let () = redis::cmd("ZADD")
            .arg(app.storage.key(&format!("{{{conv}}}:recent")))
            .arg(m.seq)
            .arg(serde_json::to_string(&m).unwrap())
            .query_async::<i64>(&mut redis)
            .await
            .map(|_| ())
            .unwrap();
    }
    let later: Vec<_> = (4..=20).map(|s| message(conv, s, "alice")).collect();
    app.append(&later, &[]).await;
    app.wait_archived().await;
    let page = app.history(conv, None, Some(0), 50).await;
    let seqs = crate::helpers::seqs(&page.messages);
    assert_eq!(
        seqs,
        (1..=20).collect::<Vec<_>>(),
        "nothing unarchived was trimmed away"
    );
}

/// A (conversation, seq) already held by another message is an alarm, not
/// "done": the newcomer goes to the archive's dead-letter stream.
#[tokio::test]
async fn a_seq_held_by_another_message_is_dead_lettered() {
    let app = spawn_app().await;
    let first = message("room:general", 1, "alice");
    app.append(std::slice::from_ref(&first), &[]).await;
    app.wait_archived().await;
    let mut impostor = message("room:general", 1, "mallory");
    impostor.id = "another-id".into();
    app.append(&[impostor], &[]).await;
    app.wait_archived().await;

    let mut redis = app.storage.redis().await;
    let dead: redis::streams::StreamRangeReply = redis::cmd("XRANGE")
        .arg(app.storage.key("{archive:0}:dead"))
        .arg("-")
        .arg("+")
        .query_async(&mut redis)
        .await
        .unwrap();
    let ids: Vec<String> = dead
        .ids
        .iter()
        .filter_map(|e| e.get::<String>("id"))
        .collect();
    assert_eq!(ids, ["another-id"]);
    // The archive keeps the first.
    let stored = app.history("room:general", None, Some(0), 10).await;
    assert!(stored.messages.iter().any(|m| m.id == first.id));
}
