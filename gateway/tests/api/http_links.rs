//! Invite links over HTTP: the code shown once, a join that lets the very
//! next send through, revocation, and the errors of every route.

use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::{StackOptions, assert_error, send, spawn_stack_with};

#[tokio::test]
async fn an_invite_link_lets_its_holder_in_until_it_is_revoked() {
    let stack = spawn_stack_with(StackOptions::default()).await;
    let owner = stack.user("owner").await;
    let bob = stack.user("bob").await;
    let carol = stack.user("carol").await;
    let (s, _) = stack
        .post(
            "/api/rooms",
            Some(&owner),
            json!({"name": "den", "visibility": "private"}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED);
    let (s, link) = stack
        .post(
            "/api/rooms/den/invite-links",
            Some(&owner),
            json!({"max_uses": 5, "expires_in_secs": 3600}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{link}");
    let code = link["code"]
        .as_str()
        .expect("the code, this once")
        .to_owned();
    assert_eq!(
        (link["max_uses"].as_u64(), link["uses"].as_u64()),
        (Some(5), Some(0))
    );
    assert!(link["expires_at"].as_i64().unwrap() > link["created_at"].as_i64().unwrap());

    let (s, room) = stack
        .post(
            &format!("/api/invite-links/{code}/join"),
            Some(&bob),
            json!({}),
        )
        .await;
    assert_eq!(
        (s, room["role"].as_str()),
        (StatusCode::OK, Some("member")),
        "{room}"
    );
    // The very next send is a member's.
    let (mut b, _) = stack.connect(0, &bob).await;
    b.send_json(&send("b1", "room:den", "thanks for the link"))
        .await;
    assert_eq!(b.recv_type("sent").await["client_id"], "b1");

    let (s, listed) = stack.get("/api/rooms/den/invite-links", Some(&owner)).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(listed["links"][0]["uses"], 1, "{listed}");
    assert!(listed["links"][0]["code"].is_null(), "{listed}");
    let (s, body) = stack.get("/api/rooms/den/invite-links", Some(&bob)).await;
    assert_error(s, &body, StatusCode::FORBIDDEN, "forbidden");
    let (s, body) = stack.get("/api/rooms/den/invite-links", Some(&carol)).await;
    assert_error(s, &body, StatusCode::NOT_FOUND, "not_found");

    let id = link["id"].as_i64().unwrap();
    let (s, body) = stack
        .delete(
            &format!("/api/rooms/den/invite-links/{id}"),
            &owner,
            json!({}),
        )
        .await;
    assert_eq!(
        (s, &body["revoked"]),
        (StatusCode::OK, &json!(true)),
        "{body}"
    );
    let (s, body) = stack
        .post(
            &format!("/api/invite-links/{code}/join"),
            Some(&carol),
            json!({}),
        )
        .await;
    assert_error(s, &body, StatusCode::NOT_FOUND, "not_found");

    for (path, want) in [
        ("/api/invite-links/NOTACODE/join", StatusCode::BAD_REQUEST),
        (
            "/api/invite-links/00000000000000000000000000000000/join",
            StatusCode::NOT_FOUND,
        ),
    ] {
        let (s, body) = stack.post(path, Some(&carol), json!({})).await;
        assert_eq!(s, want, "{path}: {body}");
    }
    let (s, body) = stack
        .delete("/api/rooms/den/invite-links/zero", &owner, json!({}))
        .await;
    assert_error(s, &body, StatusCode::BAD_REQUEST, "bad_request");
    let (s, body) = stack
        .post(
            "/api/rooms/den/invite-links",
            Some(&owner),
            json!({"expires_in_secs": 5}),
        )
        .await;
    assert_error(s, &body, StatusCode::BAD_REQUEST, "bad_request");
    let (s, _) = stack
        .post(&format!("/api/invite-links/{code}/join"), None, json!({}))
        .await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
}
