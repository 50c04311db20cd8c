use e2e::Stack;
use serde_json::{Value, json};

/// Registers and logs in through gateway `index`; returns the token.
pub async fn user(stack: &Stack, index: usize, username: &str) -> String {
    stack.user(index, username).await
}

pub fn send(client_id: &str, to: &str, body: &str) -> Value {
    json!({"type": "send", "client_id": client_id, "to": to, "body": body})
}
