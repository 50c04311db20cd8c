//! Every number a client sends is bounded: seqs, `after`, `before`,
//! `limit`, read markers and cursors, swept over 0, 1, the maximum, one
//! past it and 2^64-1, over WebSocket and HTTP. Past the range the answer
//! is `bad_request` or 400, never a panic, a wrap or another page.

use chat_model::limits::MAX_SEQ;
use reqwest::StatusCode;
use serde_json::{Value, json};
use testkit::WsClient;

use crate::helpers::{TestStack, send, spawn_stack};

const SWEEP: [u64; 5] = [0, 1, MAX_SEQ, MAX_SEQ + 1, u64::MAX];

async fn history(ws: &mut WsClient, reference: &str, field: &str, value: u64) -> Value {
    ws.send_json(&json!({"type": "history", "ref": reference,
        "conversation": "dm:alice:bob", field: value}))
        .await;
    loop {
        let f = ws.recv().await;
        if f["ref"] == reference {
            return f;
        }
    }
}

fn seqs(page: &Value) -> Vec<u64> {
    page["messages"]
        .as_array()
        .map(|m| m.iter().filter_map(|m| m["seq"].as_u64()).collect())
        .unwrap_or_default()
}

async fn two_messages(stack: &TestStack) -> (String, WsClient) {
    let alice = stack.user("alice").await;
    stack.user("bob").await;
    let (mut a, _) = stack.connect(0, &alice).await;
    for i in 1..=2 {
        a.send_json(&send(&format!("c{i}"), "user:bob", "hi")).await;
        a.recv_type("sent").await;
    }
    (alice, a)
}

#[tokio::test]
async fn websocket_numbers_out_of_range_are_bad_requests() {
    let stack = spawn_stack().await;
    let (_, mut a) = two_messages(&stack).await;
    for v in SWEEP {
        let after = history(&mut a, &format!("after-{v}"), "after", v).await;
        let before = history(&mut a, &format!("before-{v}"), "before", v).await;
        let limit = history(&mut a, &format!("limit-{v}"), "limit", v).await;
        match v {
            0 => {
                assert_eq!(seqs(&after), [1, 2], "{after}");
                assert_eq!(before["code"], "bad_request", "{before}");
                assert_eq!(limit["code"], "bad_request", "{limit}");
            }
            1 => {
                assert_eq!(seqs(&after), [2], "{after}");
                assert_eq!(seqs(&before), Vec::<u64>::new(), "{before}");
                assert_eq!(seqs(&limit), [2], "{limit}");
            }
            MAX_SEQ => {
                assert_eq!(
                    (after["type"].as_str(), seqs(&after)),
                    (Some("history"), vec![])
                );
                assert_eq!(seqs(&before), [1, 2], "{before}");
                assert_eq!(limit["code"], "bad_request", "{limit}");
            }
            _ => {
                for f in [&after, &before, &limit] {
                    assert_eq!(f["code"], "bad_request", "{v}: {f}");
                }
            }
        }
    }
    // Seqs of edits, deletes and read markers.
    for v in SWEEP {
        let id = format!("n{v}");
        a.send_json(&json!({"type": "delete", "client_id": id,
            "conversation": "dm:alice:bob", "seq": v}))
            .await;
        a.send_json(&json!({"type": "read", "ref": format!("r{v}"),
            "conversation": "dm:alice:bob", "seq": v}))
            .await;
        let want_delete = match v {
            1 => "sent",
            MAX_SEQ => "not_found",
            _ => "bad_request",
        };
        let mut got_delete = None;
        let mut got_read = if v == 1 {
            Some("none".to_owned())
        } else {
            None
        };
        while got_delete.is_none() || got_read.is_none() {
            let f = a.recv().await;
            if f["client_id"] == id.as_str() && f["type"] == "sent" {
                got_delete = Some("sent".to_owned());
            } else if f["ref"] == id.as_str() {
                got_delete = f["code"].as_str().map(str::to_owned);
            } else if f["ref"] == format!("r{v}").as_str() {
                got_read = f["code"].as_str().map(str::to_owned);
            }
        }
        assert_eq!(got_delete.as_deref(), Some(want_delete), "delete seq {v}");
        if v != 1 {
            assert_eq!(got_read.as_deref(), Some("bad_request"), "read seq {v}");
        }
    }
}

#[tokio::test]
async fn http_numbers_out_of_range_are_400() {
    let stack = spawn_stack().await;
    let (alice, _a) = two_messages(&stack).await;
    let path = "/api/conversations/dm:alice:bob/messages";
    for v in SWEEP {
        for field in ["after", "before", "limit"] {
            let (status, body) = stack
                .get(&format!("{path}?{field}={v}"), Some(&alice))
                .await;
            let fine = matches!(
                (field, v),
                ("after", 0 | 1 | MAX_SEQ) | ("before", 1 | MAX_SEQ) | ("limit", 1)
            );
            if fine {
                assert_eq!(status, StatusCode::OK, "{field}={v}: {body}");
            } else {
                assert_eq!(status, StatusCode::BAD_REQUEST, "{field}={v}: {body}");
            }
            if field == "after" && v == MAX_SEQ {
                assert_eq!(body["messages"], json!([]), "never another page");
            }
        }
        let (status, body) = stack
            .put(
                "/api/conversations/dm:alice:bob/read",
                &alice,
                json!({"seq": v}),
            )
            .await;
        let want = if v == 1 {
            StatusCode::OK
        } else {
            StatusCode::BAD_REQUEST
        };
        assert_eq!(status, want, "read {v}: {body}");
        let (status, _) = stack
            .get(&format!("/api/conversations?limit={v}"), Some(&alice))
            .await;
        let want = if v == 1 {
            StatusCode::OK
        } else {
            StatusCode::BAD_REQUEST
        };
        assert_eq!(status, want, "list limit {v}");
    }
    // Past u64, and cursors with times out of range.
    let (status, _) = stack
        .get(&format!("{path}?after=18446744073709551616"), Some(&alice))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    for cursor in ["18446744073709551615~room:a", "-9223372036854775809~room:a"] {
        let (status, body) = stack
            .get(&format!("/api/conversations?cursor={cursor}"), Some(&alice))
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{cursor}: {body}");
    }
}
