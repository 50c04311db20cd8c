use serde_json::json;
use tokio_tungstenite::tungstenite::Message;

use crate::helpers::{StackOptions, send, spawn_stack, spawn_stack_with};

#[tokio::test]
async fn every_bad_frame_gets_its_error_and_others_see_nothing() {
    let stack = spawn_stack().await;
    let alice = stack.user("alice").await;
    let bob = stack.user("bob").await;
    let (mut a, _) = stack.connect(0, &alice).await;
    let (mut b, _) = stack.connect(0, &bob).await;

    let cases: Vec<(String, &str, Option<&str>)> = vec![
        ("{not json".into(), "bad_request", None),
        ("[1,2]".into(), "bad_request", None),
        (r#"{"no":"type"}"#.into(), "bad_request", None),
        (
            r#"{"type":"dance","ref":"r1"}"#.into(),
            "bad_request",
            Some("r1"),
        ),
        (
            r#"{"type":"send","client_id":"c1","to":"user:bob"}"#.into(),
            "bad_request",
            Some("c1"),
        ),
        (
            r#"{"type":"send","client_id":"c2","to":"bob","body":"x"}"#.into(),
            "bad_request",
            Some("c2"),
        ),
        (
            r#"{"type":"send","client_id":"c3","to":"user:B!","body":"x"}"#.into(),
            "bad_request",
            Some("c3"),
        ),
        (
            r#"{"type":"send","client_id":"c4","to":"user:bob","body":""}"#.into(),
            "bad_request",
            Some("c4"),
        ),
        (
            r#"{"type":"send","client_id":"","to":"user:bob","body":"x"}"#.into(),
            "bad_request",
            None,
        ),
        (
            send("c5", "user:bob", &"x".repeat(4097)).to_string(),
            "too_large",
            Some("c5"),
        ),
        (
            format!(r#"{{"type":"ping","pad":"{}"}}"#, "x".repeat(17_000)),
            "too_large",
            None,
        ),
        (
            r#"{"type":"history","ref":"h1","conversation":"nope"}"#.into(),
            "bad_request",
            Some("h1"),
        ),
        (
            r#"{"type":"history","ref":"h2","conversation":"room:a","before":2,"after":1}"#.into(),
            "bad_request",
            Some("h2"),
        ),
        (
            r#"{"type":"history","ref":"h3","conversation":"room:a","limit":0}"#.into(),
            "bad_request",
            Some("h3"),
        ),
        (
            r#"{"type":"history","ref":"h4","conversation":"dm:bob:carol"}"#.into(),
            "forbidden",
            Some("h4"),
        ),
        (
            r#"{"type":"history","ref":"h5","conversation":"room:missing"}"#.into(),
            "not_found",
            Some("h5"),
        ),
        (
            r#"{"type":"typing","to":"nowhere"}"#.into(),
            "bad_request",
            None,
        ),
        (
            r#"{"type":"send","client_id":"c6","to":"user:alice","body":"me"}"#.into(),
            "bad_request",
            Some("c6"),
        ),
    ];
    for (frame, code, reference) in &cases {
        a.send_text(frame).await;
        let e = a.recv().await;
        assert_eq!(e["type"], "error", "{frame:.80}: {e}");
        assert_eq!(e["code"], *code, "{frame:.80}: {e}");
        assert_eq!(e["ref"].as_str(), *reference, "{frame:.80}: {e}");
        assert!(e["message"].as_str().is_some_and(|m| !m.is_empty()));
    }
    a.send_raw(Message::binary(vec![1, 2, 3])).await.unwrap();
    assert_eq!(a.recv().await["code"], "bad_request");

    // The connection is still open and works; bob saw none of it.
    a.send_json(&send("ok", "user:bob", "still here")).await;
    a.recv_type("sent").await;
    let m = b.recv().await;
    assert_eq!(
        (m["type"].as_str(), m["body"].as_str()),
        (Some("message"), Some("still here"))
    );
}

#[tokio::test]
async fn ping_history_and_rate_limit() {
    let stack = spawn_stack_with(StackOptions {
        gateway: vec![
            ("RATE_PER_SEC", 1.to_string()),
            ("RATE_BURST", 5.to_string()),
        ],
        ..StackOptions::default()
    })
    .await;
    let alice = stack.user("alice").await;
    stack.user("bob").await;
    let (mut a, _) = stack.connect(0, &alice).await;
    a.send_json(&json!({"type": "ping"})).await;
    assert_eq!(a.recv().await, json!({"type": "pong"}));

    for i in 0..3 {
        a.send_json(&send(&format!("c{i}"), "user:bob", &format!("m{i}")))
            .await;
        a.recv_type("sent").await;
    }
    a.send_json(
        &json!({"type": "history", "ref": "h", "conversation": "dm:alice:bob", "limit": 2}),
    )
    .await;
    let h = a.recv_type("history").await;
    assert_eq!(h["ref"], "h");
    assert_eq!(h["conversation"], "dm:alice:bob");
    assert_eq!(h["has_more"], true);
    let bodies: Vec<_> = h["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["body"].clone())
        .collect();
    assert_eq!(bodies, [json!("m1"), json!("m2")]);

    // Four of the burst of 5 are spent (plus at most a few refilled at
    // 1/s): among the next sends some are refused, each naming its ref.
    for i in 0..4 {
        a.send_json(&send(&format!("over{i}"), "user:bob", "too fast"))
            .await;
    }
    let mut limited = Vec::new();
    for _ in 0..4 {
        let answer = a.recv().await;
        match answer["type"].as_str() {
            Some("sent") => {}
            Some("error") => {
                assert_eq!(answer["code"], "rate_limited", "{answer}");
                limited.push(answer["ref"].as_str().unwrap().to_owned());
            }
            _ => panic!("unexpected {answer}"),
        }
    }
    assert!(!limited.is_empty(), "no send was rate limited");
    assert!(limited.iter().all(|r| r.starts_with("over")));
}

#[tokio::test]
async fn pings_do_not_clear_strikes_and_garbage_spends_the_rate_limit() {
    let stack = spawn_stack_with(StackOptions {
        gateway: vec![
            ("RATE_PER_SEC", 1.to_string()),
            ("RATE_BURST", 60.to_string()),
        ],
        ..StackOptions::default()
    })
    .await;
    let alice = stack.user("alice").await;
    stack.user("bob").await;
    let (mut a, _) = stack.connect(0, &alice).await;
    // 49 bad frames, a ping between each: the 50th still closes the socket.
    for i in 0..50 {
        a.send_text("{broken").await;
        assert_eq!(a.recv().await["code"], "bad_request", "frame {i}");
        a.send_json(&json!({"type": "ping"})).await;
        if i < 49 {
            assert_eq!(a.recv().await["type"], "pong");
        }
    }
    assert_eq!(
        a.closed_code(std::time::Duration::from_secs(5)).await,
        Some(1008)
    );
    // Unreadable frames take tokens: 59 of them and one history request
    // (which clears the strikes) spend the burst of 60, and a valid send is
    // refused.
    let (mut a, _) = stack.connect(0, &alice).await;
    for i in 0..60 {
        if i == 40 {
            a.send_json(&json!({"type": "history", "ref": "h", "conversation": "dm:alice:bob"}))
                .await;
            assert_eq!(a.recv().await["type"], "history");
            continue;
        }
        a.send_text("[]").await;
        a.recv().await;
    }
    a.send_json(&send("after-garbage", "user:bob", "hi")).await;
    let answer = a.recv().await;
    assert_eq!(
        (answer["code"].as_str(), answer["ref"].as_str()),
        (Some("rate_limited"), Some("after-garbage")),
        "{answer}"
    );
}
