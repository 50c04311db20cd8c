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
    let docs: Vec<_> = coll
        .find(doc! {"conversation_id": "room:general"})
        .sort(doc! {"seq": 1})
        .await
        .unwrap()
        .try_collect()
        .await
        .unwrap();
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
