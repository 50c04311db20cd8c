//! Sessions over the gateway: refresh, sign-out (one, this, all), and what
//! each does to live sockets on every gateway; the token refresh on a live
//! socket; the per-account message limits across gateways.

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{Value, json};
use testkit::{WsClient, ws::WsEnd};

use crate::helpers::{StackOptions, TestStack, assert_error, send, spawn_stack_with};

fn two_gateways() -> StackOptions {
    StackOptions {
        gateways: 2,
        ..StackOptions::default()
    }
}

fn token(login: &Value) -> &str {
    login["token"].as_str().unwrap()
}

async fn register(stack: &TestStack, user: &str) {
    let (s, b) = stack
        .post(
            "/api/register",
            None,
            json!({"username": user, "password": "password123"}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{b}");
}

/// Waits for `ws` to close; its code and how long it took.
async fn closed(ws: &mut WsClient, since: Instant) -> (Option<u16>, Duration) {
    let code = ws.closed_code(Duration::from_secs(10)).await;
    (code, since.elapsed())
}

#[tokio::test]
async fn signing_a_device_out_closes_its_sockets_on_every_gateway_within_a_second() {
    let stack = spawn_stack_with(two_gateways()).await;
    register(&stack, "alice").await;
    let laptop = stack.login("alice", "laptop").await;
    let phone = stack.login("alice", "phone").await;
    // The phone has a socket on each gateway; the laptop one on gateway 0.
    let (mut phone0, _) = stack.connect(0, token(&phone)).await;
    let (mut phone1, _) = stack.connect(1, token(&phone)).await;
    let (mut laptop0, _) = stack.connect(0, token(&laptop)).await;
    // A ticket the phone minted before it was signed out.
    let (s, ticket) = stack
        .post("/api/ws-ticket", Some(token(&phone)), json!({}))
        .await;
    assert_eq!(s, StatusCode::OK, "{ticket}");

    let (s, list) = stack.get("/api/sessions", Some(token(&laptop))).await;
    assert_eq!(s, StatusCode::OK, "{list}");
    let sessions = list["sessions"].as_array().unwrap();
    assert_eq!(sessions.len(), 2);
    let current: Vec<&Value> = sessions.iter().filter(|s| s["current"] == true).collect();
    assert_eq!(current.len(), 1);
    assert_eq!(current[0]["device"], "laptop");

    let phone_id = phone["session_id"].as_str().unwrap();
    let started = Instant::now();
    let (s, b) = stack
        .delete(
            &format!("/api/sessions/{phone_id}"),
            token(&laptop),
            json!({}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    let ((code0, took0), (code1, took1)) =
        tokio::join!(closed(&mut phone0, started), closed(&mut phone1, started));
    assert_eq!((code0, code1), (Some(4001), Some(4001)));
    println!("revocation closed the sockets in {took0:?} (gateway 0) and {took1:?} (gateway 1)");
    assert!(
        took0 < Duration::from_secs(1) && took1 < Duration::from_secs(1),
        "revocation took {took0:?} / {took1:?}"
    );

    // The laptop is untouched.
    laptop0.send_json(&json!({"type": "ping"})).await;
    assert_eq!(laptop0.recv_type("pong").await["type"], "pong");
    // The phone's token, refresh token and ticket are all refused now.
    let (s, b) = stack.get("/api/me", Some(token(&phone))).await;
    assert_error(s, &b, StatusCode::UNAUTHORIZED, "unauthorized");
    assert!(matches!(
        WsClient::connect(stack.gateways[1], token(&phone)).await,
        Err(WsEnd::Refused(401))
    ));
    let url = format!(
        "ws://127.0.0.1:{}/ws?ticket={}",
        stack.gateways[0],
        ticket["ticket"].as_str().unwrap()
    );
    assert!(matches!(
        WsClient::open(
            tokio_tungstenite::tungstenite::client::IntoClientRequest::into_client_request(url)
                .unwrap()
        )
        .await,
        Err(WsEnd::Refused(401))
    ));
    let (s, b) = stack
        .post(
            "/api/refresh",
            None,
            json!({"refresh_token": phone["refresh_token"]}),
        )
        .await;
    assert_error(s, &b, StatusCode::UNAUTHORIZED, "unauthorized");
    let (s, b) = stack
        .delete(
            &format!("/api/sessions/{}", "0".repeat(32)),
            token(&laptop),
            json!({}),
        )
        .await;
    assert_error(s, &b, StatusCode::NOT_FOUND, "not_found");

    // Signing out everywhere closes the laptop too.
    let started = Instant::now();
    let (s, b) = stack
        .post("/api/logout-all", Some(token(&laptop)), json!({}))
        .await;
    assert_eq!((s, b["revoked"].as_u64()), (StatusCode::OK, Some(1)), "{b}");
    let (code, took) = closed(&mut laptop0, started).await;
    assert_eq!(code, Some(4001));
    assert!(took < Duration::from_secs(1), "{took:?}");
}

#[tokio::test]
async fn refresh_rotates_and_logout_and_password_change_end_sessions() {
    let stack = spawn_stack_with(StackOptions::default()).await;
    register(&stack, "alice").await;
    let first = stack.login("alice", "laptop").await;
    assert!(first["expires_at"].as_i64().unwrap() > chrono_now_ms());
    let (s, second) = stack
        .post(
            "/api/refresh",
            None,
            json!({"refresh_token": first["refresh_token"]}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{second}");
    assert_eq!(second["session_id"], first["session_id"]);
    assert_ne!(second["refresh_token"], first["refresh_token"]);
    // The old access token still works (until it expires); the old refresh
    // token is spent, and presenting it signs the session out.
    let (s, _) = stack.get("/api/me", Some(token(&first))).await;
    assert_eq!(s, StatusCode::OK);
    let (s, b) = stack
        .post(
            "/api/refresh",
            None,
            json!({"refresh_token": first["refresh_token"]}),
        )
        .await;
    assert_error(s, &b, StatusCode::UNAUTHORIZED, "unauthorized");
    let (s, _) = stack.get("/api/me", Some(token(&second))).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED, "the whole session is gone");
    for bad in [json!({}), json!({"refresh_token": 5})] {
        let (s, b) = stack.post("/api/refresh", None, bad).await;
        assert_error(s, &b, StatusCode::BAD_REQUEST, "bad_request");
    }

    // Logout ends this session only.
    let a = stack.login("alice", "a").await;
    let b = stack.login("alice", "b").await;
    let (s, _) = stack.post("/api/logout", Some(token(&a)), json!({})).await;
    assert_eq!(s, StatusCode::OK);
    let (s, _) = stack.get("/api/me", Some(token(&a))).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    let (s, _) = stack.get("/api/me", Some(token(&b))).await;
    assert_eq!(s, StatusCode::OK);

    // A password change keeps the caller's session and ends the others.
    let c = stack.login("alice", "c").await;
    let (s, body) = stack
        .post(
            "/api/password",
            Some(token(&b)),
            json!({"current_password": "wrong password", "new_password": "another one"}),
        )
        .await;
    assert_error(s, &body, StatusCode::UNAUTHORIZED, "unauthorized");
    let (s, _) = stack.get("/api/me", Some(token(&c))).await;
    assert_eq!(s, StatusCode::OK, "a wrong password changes nothing");
    let (s, body) = stack
        .post(
            "/api/password",
            Some(token(&b)),
            json!({"current_password": "password123", "new_password": "short"}),
        )
        .await;
    assert_error(s, &body, StatusCode::BAD_REQUEST, "bad_request");
    let (s, body) = stack
        .post(
            "/api/password",
            Some(token(&b)),
            json!({"current_password": "password123", "new_password": "another one"}),
        )
        .await;
    assert_eq!(
        (s, body["revoked"].as_u64()),
        (StatusCode::OK, Some(1)),
        "{body}"
    );
    let (s, _) = stack.get("/api/me", Some(token(&c))).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    let (s, _) = stack.get("/api/me", Some(token(&b))).await;
    assert_eq!(s, StatusCode::OK);
    let (s, _) = stack
        .post(
            "/api/login",
            None,
            json!({"username": "alice", "password": "another one"}),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
}

fn chrono_now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

#[tokio::test]
async fn a_socket_is_asked_for_a_fresh_token_and_closed_at_expiry_without_one() {
    let stack = spawn_stack_with(StackOptions {
        user: vec![("TOKEN_TTL_SECS", "6".into())],
        ..StackOptions::default()
    })
    .await;
    register(&stack, "alice").await;
    register(&stack, "bob").await;
    let login = stack.login("alice", "").await;
    let bob = stack.login("bob", "").await;
    let (mut ws, _) = stack.connect(0, token(&login)).await;
    let asked = ws.recv_type("refresh").await;
    assert_eq!(asked["expires_at"], login["expires_at"]);
    assert!(
        chrono_now_ms() < login["expires_at"].as_i64().unwrap(),
        "asked before expiry"
    );

    // Bad answers are refused, and the socket stays.
    ws.send_json(&json!({"type": "auth", "token": "garbage", "ref": "a1"}))
        .await;
    let e = ws.recv_type("error").await;
    assert_eq!(
        (e["code"].as_str(), e["ref"].as_str()),
        (Some("unauthorized"), Some("a1"))
    );
    ws.send_json(&json!({"type": "auth", "token": token(&bob), "ref": "a2"}))
        .await;
    let e = ws.recv_type("error").await;
    assert_eq!(
        (e["code"].as_str(), e["ref"].as_str()),
        (Some("forbidden"), Some("a2"))
    );

    // A fresh token from the refresh route keeps it alive past the first.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let (s, fresh) = stack
        .post(
            "/api/refresh",
            None,
            json!({"refresh_token": login["refresh_token"]}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{fresh}");
    ws.send_json(&json!({"type": "auth", "token": token(&fresh), "ref": "a3"}))
        .await;
    let authed = ws.recv_type("authed").await;
    assert_eq!(authed["expires_at"], fresh["expires_at"]);
    assert_eq!(authed["ref"], "a3");
    let first_expiry = login["expires_at"].as_i64().unwrap();
    while chrono_now_ms() < first_expiry + 500 {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    ws.send_json(&json!({"type": "ping"})).await;
    assert_eq!(
        ws.recv_type("pong").await["type"],
        "pong",
        "alive past the first expiry"
    );

    // Without an answer this time, it closes at the fresh token's expiry.
    let asked = ws.recv_type("refresh").await;
    assert_eq!(asked["expires_at"], fresh["expires_at"]);
    let code = ws.closed_code(Duration::from_secs(10)).await;
    assert_eq!(code, Some(4002));
    assert!(chrono_now_ms() >= fresh["expires_at"].as_i64().unwrap() - 50);
}

#[tokio::test]
async fn one_account_is_limited_across_its_sockets_on_two_gateways() {
    let stack = spawn_stack_with(StackOptions {
        gateways: 2,
        gateway: vec![
            ("ACCOUNT_MESSAGES_PER_SEC", "0".into()),
            ("ACCOUNT_MESSAGES_PER_DAY", "7".into()),
        ],
        ..StackOptions::default()
    })
    .await;
    let alice = stack.user("alice").await;
    let _bob = stack.user("bob").await;
    let (mut a0, _) = stack.connect(0, &alice).await;
    let (mut a1, _) = stack.connect(1, &alice).await;
    for i in 0..5 {
        a0.send_json(&send(&format!("g0-{i}"), "user:bob", "hi"))
            .await;
        a1.send_json(&send(&format!("g1-{i}"), "user:bob", "hi"))
            .await;
    }
    let (mut sent, mut limited) = (0, Vec::new());
    for ws in [&mut a0, &mut a1] {
        let mut answered = 0;
        while answered < 5 {
            let f = ws.recv().await;
            match f["type"].as_str() {
                Some("sent") => sent += 1,
                Some("error") => {
                    assert_eq!(f["code"], "rate_limited", "{f}");
                    assert!(f["retry_after_ms"].as_u64().unwrap() > 1000, "{f}");
                    limited.push(f["ref"].as_str().unwrap().to_owned());
                }
                _ => continue,
            }
            answered += 1;
        }
    }
    assert_eq!((sent, limited.len()), (7, 3), "refused: {limited:?}");
}

#[tokio::test]
async fn the_per_second_limit_counts_every_socket_of_the_account() {
    let stack = spawn_stack_with(StackOptions {
        gateways: 2,
        gateway: vec![("ACCOUNT_MESSAGES_PER_SEC", "4".into())],
        ..StackOptions::default()
    })
    .await;
    let alice = stack.user("alice").await;
    let _bob = stack.user("bob").await;
    let (mut a0, _) = stack.connect(0, &alice).await;
    let (mut a1, _) = stack.connect(1, &alice).await;
    let started = Instant::now();
    for i in 0..10 {
        a0.send_json(&send(&format!("g0-{i}"), "user:bob", "hi"))
            .await;
        a1.send_json(&send(&format!("g1-{i}"), "user:bob", "hi"))
            .await;
    }
    let mut sent = 0;
    let mut limited = 0;
    for ws in [&mut a0, &mut a1] {
        let mut answered = 0;
        while answered < 10 {
            let f = ws.recv().await;
            match f["type"].as_str() {
                Some("sent") => sent += 1,
                Some("error") => {
                    assert_eq!(f["code"], "rate_limited", "{f}");
                    let wait = f["retry_after_ms"].as_u64().unwrap();
                    assert!((1..=1000).contains(&wait), "{f}");
                    assert!(f["ref"].as_str().unwrap().starts_with('g'));
                    limited += 1;
                }
                _ => continue,
            }
            answered += 1;
        }
    }
    // Each second window takes 4, however many sockets send.
    let windows = started.elapsed().as_secs() + 1;
    assert!(sent <= 4 * windows, "{sent} sent in {windows} windows");
    assert!(limited >= 20 - 4 * windows, "{limited} refused");
}
