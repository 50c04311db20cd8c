use e2e::Stack;
use serde_json::{Value, json};

/// Registers and logs in through gateway `index`; returns the token.
pub async fn user(stack: &Stack, index: usize, username: &str) -> String {
    let http = reqwest::Client::new();
    let body = json!({"username": username, "password": "password123"});
    let r = http
        .post(stack.gateway_url(index, "/api/register"))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201, "{:?}", r.text().await);
    let r = http
        .post(stack.gateway_url(index, "/api/login"))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    v["token"].as_str().unwrap().to_owned()
}

pub fn send(client_id: &str, to: &str, body: &str) -> Value {
    json!({"type": "send", "client_id": client_id, "to": to, "body": body})
}
