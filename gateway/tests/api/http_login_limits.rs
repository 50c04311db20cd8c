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
async fn failed_logins_per_username_and_address_are_limited_across_gateways() {
    let stack = spawn_stack_with(StackOptions {
        gateways: 2,
        ..StackOptions::default()
    })
    .await;
    stack.user("alice").await;
    stack.user("bob").await;
    // Five failures from one address, spread over both gateways.
    for i in 0..5 {
        let r = login(&stack, i % 2, "alice", "wrong password", "198.51.100.7").await;
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    }
    // Now even the right password is refused from there, on either gateway.
    for gw in 0..2 {
        let r = login(&stack, gw, "alice", "password123", "198.51.100.7").await;
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
    // The stranger at that address cannot lock alice out: she logs in from
    // her own address. Another user is unaffected too.
    assert_eq!(
        login(&stack, 0, "alice", "password123", "198.51.100.50")
            .await
            .status(),
        StatusCode::OK
    );
    assert_eq!(
        login(&stack, 0, "bob", "password123", "198.51.100.7")
            .await
            .status(),
        StatusCode::OK
    );
}

#[tokio::test]
async fn a_username_has_a_higher_cap_across_all_addresses() {
    let stack = spawn_stack_with(StackOptions {
        gateway: vec![("LOGIN_FAILURES_PER_USER", 6.to_string())],
        ..StackOptions::default()
    })
    .await;
    stack.user("alice").await;
    // Three addresses, two failures each: under every per-address limit.
    for i in 0..6 {
        let ip = format!("198.51.100.{}", i / 2);
        let r = login(&stack, 0, "alice", "wrong password", &ip).await;
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED, "attempt {i}");
    }
    let r = login(&stack, 0, "alice", "password123", "198.51.100.200").await;
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
}

#[tokio::test]
async fn attempts_are_counted_before_the_password_check_so_a_burst_cannot_pass() {
    let stack = spawn_stack_with(StackOptions::default()).await;
    stack.user("alice").await;
    // Twenty guesses at once from one address: the limit is five.
    let burst: Vec<_> = (0..20)
        .map(|i| {
            let http = stack.http.clone();
            let url = stack.url("/api/login");
            tokio::spawn(async move {
                http.post(url)
                    .header("x-forwarded-for", "192.0.2.66")
                    .json(&json!({"username": "alice", "password": format!("guess {i}")}))
                    .send()
                    .await
                    .unwrap()
                    .status()
            })
        })
        .collect();
    let mut checked = 0;
    let mut limited = 0;
    for b in burst {
        match b.await.unwrap() {
            StatusCode::UNAUTHORIZED => checked += 1,
            StatusCode::TOO_MANY_REQUESTS => limited += 1,
            other => panic!("unexpected {other}"),
        }
    }
    assert_eq!(checked, 5, "exactly the limit reached the password check");
    assert_eq!(limited, 15);
}

#[tokio::test]
async fn registrations_are_limited_per_address() {
    let stack = spawn_stack_with(StackOptions {
        gateway: vec![("REGISTRATIONS_PER_IP", 3.to_string())],
        ..StackOptions::default()
    })
    .await;
    let register = |name: String, ip: &'static str| {
        let http = stack.http.clone();
        let url = stack.url("/api/register");
        async move {
            http.post(url)
                .header("x-forwarded-for", ip)
                .json(&json!({"username": name, "password": "password123"}))
                .send()
                .await
                .unwrap()
        }
    };
    for i in 0..3 {
        let r = register(format!("user{i}"), "203.0.113.5").await;
        assert_eq!(r.status(), StatusCode::CREATED);
    }
    let r = register("user3".into(), "203.0.113.5").await;
    assert!(r.headers().contains_key("retry-after"));
    let status = r.status();
    assert_error(
        status,
        &r.json().await.unwrap(),
        StatusCode::TOO_MANY_REQUESTS,
        "rate_limited",
    );
    // The refused registration created nothing; another address still can.
    let r = register("user3".into(), "203.0.113.6").await;
    assert_eq!(r.status(), StatusCode::CREATED);
}

#[tokio::test]
async fn room_creation_is_limited_per_user() {
    let stack = spawn_stack_with(StackOptions {
        gateway: vec![("ROOMS_PER_USER", 2.to_string())],
        ..StackOptions::default()
    })
    .await;
    let alice = stack.user("alice").await;
    let bob = stack.user("bob").await;
    stack.create_room(&alice, "one").await;
    stack.create_room(&alice, "two").await;
    let (s, body) = stack
        .post("/api/rooms", Some(&alice), json!({"name": "three"}))
        .await;
    assert_error(s, &body, StatusCode::TOO_MANY_REQUESTS, "rate_limited");
    let (s, _) = stack.get("/api/rooms", Some(&alice)).await;
    assert_eq!(s, StatusCode::OK);
    stack.create_room(&bob, "three").await;
}

#[tokio::test]
async fn failed_logins_per_address_are_limited() {
    let stack = spawn_stack_with(StackOptions {
        gateway: vec![("LOGIN_FAILURES_PER_IP", 3.to_string())],
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

/// A username's counters and the address's are two cluster slots, so two
/// calls: an attempt the username's counter refuses gives the address's
/// count back, and hammering one username leaves the address's budget for
/// others.
#[tokio::test]
async fn an_attempt_refused_for_the_username_costs_the_address_nothing() {
    let stack = spawn_stack_with(StackOptions {
        gateway: vec![
            ("LOGIN_FAILURES_PER_CLIENT", 2.to_string()),
            ("LOGIN_FAILURES_PER_IP", 4.to_string()),
        ],
        ..StackOptions::default()
    })
    .await;
    stack.user("alice").await;
    stack.user("bob").await;
    for _ in 0..2 {
        let r = login(&stack, 0, "alice", "wrong-password", "192.0.2.9").await;
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    }
    for _ in 0..5 {
        let r = login(&stack, 0, "alice", "wrong-password", "192.0.2.9").await;
        assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
    }
    // The address has counted 2 of its 4: bob gets two failures, then the
    // address's own limit holds.
    for _ in 0..2 {
        let r = login(&stack, 0, "bob", "wrong-password", "192.0.2.9").await;
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    }
    let r = login(&stack, 0, "bob", "password123", "192.0.2.9").await;
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
}
