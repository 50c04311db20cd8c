use std::time::Duration;

use e2e::{Stack, StackOptions, grpcurl::grpcurl};
use futures::TryStreamExt;
use mongodb::bson::{Document, doc};
use serde_json::{Value, json};
use testkit::WsClient;

use crate::helpers::{send, user};

#[tokio::test]
async fn a_dm_travels_across_gateways_into_history_and_grpcurl() {
    let stack = Stack::start(StackOptions::default()).await;
    let alice = user(&stack, 0, "alice").await;
    let bob = user(&stack, 1, "bob").await;

    // Alice on gateway A; bob is offline.
    let (mut a, _) = WsClient::connect_ready(stack.gateway_ports[0], &alice).await;
    a.send_json(&send("c1", "user:bob", "hi bob, while you were away"))
        .await;
    let first = a.recv_type("sent").await;
    assert_eq!(first["seq"], 1);

    // Bob connects to gateway B and finds it waiting.
    let (mut b, offline) = WsClient::connect_ready(stack.gateway_ports[1], &bob).await;
    assert_eq!(offline["messages"][0]["id"], first["id"], "{offline}");
    assert_eq!(offline["truncated"], false);
    b.send_json(&json!({"type": "offline_ack"})).await;

    // Live, gateway A to gateway B.
    a.send_json(&send("c2", "user:bob", "and now live")).await;
    let second = a.recv_type("sent").await;
    let got = b.recv_type("message").await;
    assert_eq!(got["id"], second["id"]);
    assert_eq!(got["from"], "alice");
    assert_eq!(got["conversation"], "dm:alice:bob");

    // Through reflection, with no .proto at hand, as the users themselves.
    let addr = stack.history_addr();
    let as_alice = format!("authorization: Bearer {alice}");
    let as_bob = format!("authorization: Bearer {bob}");
    grpcurl(&["-plaintext", &addr, "list"])
        .assert_mentions(&["chat.history.v1.HistoryService", "grpc.health.v1.Health"]);
    grpcurl(&[
        "-plaintext",
        &addr,
        "describe",
        "chat.history.v1.HistoryService",
    ])
    .assert_mentions(&["rpc GetHistory", "rpc ListOffline"]);

    let history = grpcurl(&[
        "-plaintext",
        "-H",
        &as_alice,
        "-d",
        r#"{"conversation_id":"dm:alice:bob","limit":20}"#,
        &addr,
        "chat.history.v1.HistoryService/GetHistory",
    ]);
    assert!(history.success, "{}", history.stderr);
    let v: Value = serde_json::from_str(&history.stdout).expect("grpcurl prints JSON");
    let bodies: Vec<&str> = v["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["body"].as_str().unwrap())
        .collect();
    assert_eq!(bodies, ["hi bob, while you were away", "and now live"]);
    assert_eq!(v["messages"][0]["sender"], "alice");
    assert!(v["messages"][0]["sentAt"].as_str().unwrap().ends_with('Z'));

    // The ack emptied bob's queue.
    let offline = grpcurl(&[
        "-plaintext",
        "-H",
        &as_bob,
        "-d",
        r#"{"username":"bob"}"#,
        &addr,
        "chat.history.v1.HistoryService/ListOffline",
    ]);
    assert!(offline.success, "{}", offline.stderr);
    let v: Value = serde_json::from_str(&offline.stdout).unwrap();
    assert!(
        v.get("messages")
            .is_none_or(|m| m.as_array().unwrap().is_empty()),
        "{v}"
    );

    grpcurl(&["-plaintext", &addr, "grpc.health.v1.Health/Check"]).assert_mentions(&["SERVING"]);

    for (request, message) in [
        (
            r#"{"conversation_id":"","limit":20}"#,
            "conversation_id is required",
        ),
        (
            r#"{"conversation_id":"general","limit":20}"#,
            "conversation_id",
        ),
        (
            r#"{"conversation_id":"dm:bob:alice","limit":20}"#,
            "ascending",
        ),
        (
            r#"{"conversation_id":"room:general","before_seq":5,"after_seq":1}"#,
            "not both",
        ),
        (r#"{"conversation_id":"room:general","limit":0}"#, "limit"),
        (r#"{"conversation_id":"room:general","limit":201}"#, "limit"),
    ] {
        let bad = grpcurl(&[
            "-plaintext",
            "-H",
            &as_alice,
            "-d",
            request,
            &addr,
            "chat.history.v1.HistoryService/GetHistory",
        ]);
        assert!(!bad.success, "{request}");
        assert!(
            bad.stderr.contains("Code: InvalidArgument"),
            "{request}: {}",
            bad.stderr
        );
        assert!(bad.stderr.contains(message), "{request}: {}", bad.stderr);
    }
    let bad = grpcurl(&[
        "-plaintext",
        "-H",
        &as_bob,
        "-d",
        r#"{"username":"NO"}"#,
        &addr,
        "chat.history.v1.HistoryService/ListOffline",
    ]);
    assert!(
        bad.stderr.contains("Code: InvalidArgument"),
        "{}",
        bad.stderr
    );

    // And both are archived in MongoDB.
    let client = mongodb::Client::with_uri_str(testkit::mongodb_uri())
        .await
        .unwrap();
    let coll = client
        .database(&stack.storage.mongodb_database)
        .collection::<Document>("messages");
    let docs: Vec<Document> = testkit::eventually(
        "the archive to have both messages",
        Duration::from_secs(30),
        || {
            let coll = coll.clone();
            async move {
                let docs: Vec<Document> = coll
                    .find(doc! {"conversation_id": "dm:alice:bob"})
                    .await
                    .ok()?
                    .try_collect()
                    .await
                    .ok()?;
                (docs.len() == 2).then_some(docs)
            }
        },
    )
    .await;
    assert!(
        docs.iter()
            .any(|d| d.get_str("_id").ok() == first["id"].as_str())
    );
}

#[tokio::test]
async fn bad_tokens_and_malformed_frames_get_the_documented_errors() {
    let stack = Stack::start(StackOptions {
        gateways: 1,
        workers: 1,
        ..StackOptions::default()
    })
    .await;
    let alice = user(&stack, 0, "alice").await;
    let port = stack.gateway_ports[0];
    assert!(matches!(
        WsClient::connect(port, "nope").await,
        Err(testkit::ws::WsEnd::Refused(401))
    ));
    let (mut a, _) = WsClient::connect_ready(port, &alice).await;
    a.send_text("{oops").await;
    let e = a.recv().await;
    assert_eq!(
        (e["type"].as_str(), e["code"].as_str()),
        (Some("error"), Some("bad_request"))
    );
    a.send_json(&json!({"type": "ping"})).await;
    assert_eq!(a.recv().await["type"], "pong");
}
