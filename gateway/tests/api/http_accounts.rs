use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::{assert_error, spawn_stack};

#[tokio::test]
async fn register_login_me() {
    let stack = spawn_stack().await;
    let (s, user) = stack
        .post(
            "/api/register",
            None,
            json!({"username": "alice", "password": "password123", "display_name": "Alice"}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED);
    assert_eq!(user["username"], "alice");
    assert_eq!(user["display_name"], "Alice");

    let (s, login) = stack
        .post(
            "/api/login",
            None,
            json!({"username": "alice", "password": "password123"}),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(login["username"], "alice");
    assert!(login["expires_at"].as_i64().unwrap() > chat_model::time::now_ms());
    let token = login["token"].as_str().unwrap();

    let (s, me) = stack.get("/api/me", Some(token)).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(me["username"], "alice");
}

#[tokio::test]
async fn account_errors_have_status_and_error_json() {
    let stack = spawn_stack().await;
    stack.user("alice").await;

    let refused = [
        (
            json!({"username": "alice", "password": "password123"}),
            StatusCode::CONFLICT,
            "conflict",
        ),
        (
            json!({"username": "x", "password": "password123"}),
            StatusCode::BAD_REQUEST,
            "bad_request",
        ),
        (
            json!({"username": "carol", "password": "short"}),
            StatusCode::BAD_REQUEST,
            "bad_request",
        ),
        (
            json!({"username": "carol"}),
            StatusCode::BAD_REQUEST,
            "bad_request",
        ),
    ];
    for (body, status, code) in refused {
        let (s, b) = stack.post("/api/register", None, body.clone()).await;
        assert_eq!(s, status, "{body}");
        assert_error(s, &b, status, code);
    }

    let (s, wrong) = stack
        .post(
            "/api/login",
            None,
            json!({"username": "alice", "password": "wrong password"}),
        )
        .await;
    assert_error(s, &wrong, StatusCode::UNAUTHORIZED, "unauthorized");
    let (s, unknown) = stack
        .post(
            "/api/login",
            None,
            json!({"username": "nobody", "password": "password123"}),
        )
        .await;
    assert_error(s, &unknown, StatusCode::UNAUTHORIZED, "unauthorized");
    assert_eq!(wrong, unknown, "no user enumeration");

    let (s, b) = stack.get("/api/me", None).await;
    assert_error(s, &b, StatusCode::UNAUTHORIZED, "unauthorized");
    let (s, b) = stack.get("/api/me", Some("not.a.token")).await;
    assert_error(s, &b, StatusCode::UNAUTHORIZED, "unauthorized");
    let (other, _) =
        service_kit::jwt::issue("another-secret-of-16+", "alice", testkit::TEST_SESSION, 60)
            .unwrap();
    let (s, b) = stack.get("/api/me", Some(&other)).await;
    assert_error(s, &b, StatusCode::UNAUTHORIZED, "unauthorized");
    let (expired, _) =
        service_kit::jwt::issue(testkit::JWT_SECRET, "alice", testkit::TEST_SESSION, -5).unwrap();
    let (s, b) = stack.get("/api/me", Some(&expired)).await;
    assert_error(s, &b, StatusCode::UNAUTHORIZED, "unauthorized");

    let (s, b) = stack.get("/api/nothing-here", None).await;
    assert_error(s, &b, StatusCode::NOT_FOUND, "not_found");
}

#[tokio::test]
async fn malformed_and_oversize_bodies() {
    let stack = spawn_stack().await;
    // Malformed JSON, and a body without a JSON content type.
    for (content_type, body) in [
        (Some("application/json"), "{not json"),
        (None, r#"{"username":"alice","password":"password123"}"#),
    ] {
        let mut request = stack.http.post(stack.url("/api/register")).body(body);
        if let Some(t) = content_type {
            request = request.header("content-type", t);
        }
        let r = request.send().await.unwrap();
        let s = r.status();
        let b = r.json().await.unwrap();
        assert_error(s, &b, StatusCode::BAD_REQUEST, "bad_request");
    }

    let big = json!({"username": "alice", "password": "x".repeat(20_000)});
    let (s, b) = stack.post("/api/register", None, big).await;
    assert_error(s, &b, StatusCode::PAYLOAD_TOO_LARGE, "too_large");

    // Nothing of the above created a user.
    let (s, _) = stack
        .post(
            "/api/login",
            None,
            json!({"username": "alice", "password": "password123"}),
        )
        .await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn web_client_and_ops_endpoints_are_served() {
    let stack = spawn_stack().await;
    let page = stack.http.get(stack.url("/")).send().await.unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    assert!(page.text().await.unwrap().contains("/ws"));
    let (s, b) = stack.get("/healthz", None).await;
    assert_eq!(s, StatusCode::OK, "{b}");
    // Readiness and metrics say what the system depends on and how busy it
    // is: only the ops port serves them, never the public one.
    let ops = format!("http://127.0.0.1:{}", stack.ops[0]);
    for path in ["/healthz", "/readyz", "/metrics"] {
        let r = stack.http.get(format!("{ops}{path}")).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::OK, "ops {path}");
    }
    for path in ["/readyz", "/metrics"] {
        let (s, b) = stack.get(path, None).await;
        assert_error(s, &b, StatusCode::NOT_FOUND, "not_found");
    }
}
