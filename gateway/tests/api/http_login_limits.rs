use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::{StackOptions, TestStack, assert_error, spawn_stack_with};

async fn login(
    stack: &TestStack,
    gateway: usize,
    user: &str,
    password: &str,
    ip: &str,
) -> reqwest::Response {
    stack
        .http
        .post(format!(
            "http://127.0.0.1:{}/api/login",
            stack.gateways[gateway]
        ))
        .header("x-forwarded-for", format!("203.0.113.99, {ip}"))
        .json(&json!({"username": user, "password": password}))
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn failed_logins_per_username_are_limited_across_gateways() {
    let stack = spawn_stack_with(StackOptions {
        gateways: 2,
        ..StackOptions::default()
    })
    .await;
    stack.user("alice").await;
    stack.user("bob").await;
    // Five failures, spread over both gateways and addresses.
    for i in 0..5 {
        let r = login(
            &stack,
            i % 2,
            "alice",
            "wrong password",
            &format!("198.51.100.{i}"),
        )
        .await;
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    }
    // Now even the right password is refused, on either gateway.
    for gw in 0..2 {
        let r = login(&stack, gw, "alice", "password123", "198.51.100.50").await;
        let retry: u64 = r.headers()["retry-after"]
            .to_str()
            .unwrap()
            .parse()
            .unwrap();
        assert!((1..=900).contains(&retry), "{retry}");
        let status = r.status();
        assert_error(
            status,
            &r.json().await.unwrap(),
            StatusCode::TOO_MANY_REQUESTS,
            "rate_limited",
        );
    }
    // Another user is unaffected.
    assert_eq!(
        login(&stack, 0, "bob", "password123", "198.51.100.1")
            .await
            .status(),
        StatusCode::OK
    );
}

#[tokio::test]
async fn failed_logins_per_address_are_limited() {
    let stack = spawn_stack_with(StackOptions {
        login_failures_per_ip: 3,
        ..StackOptions::default()
    })
    .await;
    stack.user("alice").await;
    for name in ["nobody", "someone", "anyone"] {
        let r = login(&stack, 0, name, "password123", "192.0.2.7").await;
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    }
    let r = login(&stack, 0, "alice", "password123", "192.0.2.7").await;
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
    let r = login(&stack, 0, "alice", "password123", "192.0.2.8").await;
    assert_eq!(r.status(), StatusCode::OK, "another address is unaffected");
}

#[tokio::test]
async fn a_successful_login_clears_the_username_count() {
    let stack = spawn_stack_with(StackOptions::default()).await;
    stack.user("alice").await;
    // Twice four failures (the limit is five): the success between them
    // starts the count again, so neither round is refused.
    for round in 0..2 {
        for _ in 0..4 {
            let r = login(&stack, 0, "alice", "nope nope", "192.0.2.1").await;
            assert_eq!(r.status(), StatusCode::UNAUTHORIZED, "round {round}");
        }
        let r = login(&stack, 0, "alice", "password123", "192.0.2.1").await;
        assert_eq!(r.status(), StatusCode::OK, "round {round}");
    }
}
