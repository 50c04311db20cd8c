//! The OpenAPI document at /api/openapi.json: generated from the handlers,
//! it describes every route, and every route comes from it.

use reqwest::StatusCode;
use serde_json::Value;

use crate::helpers::spawn_stack;

/// The served document's operations: (method, path, operation).
fn operations(doc: &Value) -> Vec<(String, String, Value)> {
    doc["paths"]
        .as_object()
        .expect("paths")
        .iter()
        .flat_map(|(path, item)| {
            item.as_object()
                .expect("path item")
                .iter()
                .map(move |(method, op)| (method.clone(), path.clone(), op.clone()))
        })
        .collect()
}

#[tokio::test]
async fn every_route_is_described_with_its_responses() {
    let stack = spawn_stack().await;
    let (status, doc) = stack.get("/api/openapi.json", None).await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        doc["openapi"].as_str().unwrap().starts_with("3.1"),
        "{}",
        doc["openapi"]
    );
    let ops = operations(&doc);
    let mut routes: Vec<String> = ops.iter().map(|(m, p, _)| format!("{m} {p}")).collect();
    routes.sort();
    assert_eq!(
        routes,
        [
            "delete /api/blocks/{username}",
            "delete /api/me",
            "delete /api/rooms/{name}",
            "delete /api/rooms/{name}/bans/{user}",
            "delete /api/rooms/{name}/invite-links/{id}",
            "delete /api/rooms/{name}/mutes/{user}",
            "delete /api/sessions/{id}",
            "get /",
            "get /api/blocks",
            "get /api/conversations",
            "get /api/conversations/{id}",
            "get /api/conversations/{id}/messages",
            "get /api/invites",
            "get /api/me",
            "get /api/me/export",
            "get /api/openapi.json",
            "get /api/poll/{conn}",
            "get /api/rooms",
            "get /api/rooms/directory",
            "get /api/rooms/{name}/bans",
            "get /api/rooms/{name}/invite-links",
            "get /api/rooms/{name}/members",
            "get /api/rooms/{name}/moderation",
            "get /api/sessions",
            "get /api/stream",
            "get /healthz",
            "get /ws",
            "patch /api/me",
            "patch /api/rooms/{name}",
            "post /api/invite-links/{code}/join",
            "post /api/invites/{room}/accept",
            "post /api/invites/{room}/decline",
            "post /api/login",
            "post /api/logout",
            "post /api/logout-all",
            "post /api/password",
            "post /api/poll",
            "post /api/refresh",
            "post /api/register",
            "post /api/rooms",
            "post /api/rooms/{name}/bans",
            "post /api/rooms/{name}/invite-links",
            "post /api/rooms/{name}/invites",
            "post /api/rooms/{name}/join",
            "post /api/rooms/{name}/kick",
            "post /api/rooms/{name}/leave",
            "post /api/rooms/{name}/mutes",
            "post /api/rooms/{name}/transfer",
            "post /api/stream/{conn}",
            "post /api/ws-ticket",
            "put /api/blocks/{username}",
            "put /api/conversations/{id}/read",
            "put /api/rooms/{name}/members/{user}/role",
        ]
    );
    for (method, path, op) in &ops {
        let summary = op["summary"].as_str().unwrap_or_default();
        assert!(!summary.is_empty(), "{method} {path} has no description");
        let responses = op["responses"].as_object().expect("responses");
        for (code, response) in responses {
            let text = response["description"].as_str().unwrap_or_default();
            assert!(!text.is_empty(), "{method} {path} {code} is not described");
        }
        if op
            .get("security")
            .is_some_and(|s| s.to_string().contains("bearer"))
        {
            assert!(
                responses.contains_key("401"),
                "{method} {path}: no 401 for its token"
            );
        }
    }
    assert!(doc["components"]["securitySchemes"]["bearer"].is_object());
}

#[test]
fn no_route_is_added_past_the_document() {
    // Routes registered with `.route(…)` would serve without being in the
    // document; every one goes through `routes!` from its #[utoipa::path].
    for (file, text) in [
        ("api/mod.rs", include_str!("../../src/api/mod.rs")),
        ("startup.rs", include_str!("../../src/startup.rs")),
    ] {
        assert!(
            !text.contains(".route("),
            "{file} adds a route outside the OpenAPI document"
        );
    }
}
