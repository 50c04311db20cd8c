//! The message model shared by the services, and the two internal wire formats
//! that cross Redis: ingress stream entries and gateway deliveries.

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

/// A stored chat message, as the protocol's `message` frame and the offline
/// queue carry it. Field order is fixed so a replay serializes byte-identically.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChatMessage {
    pub id: String,
    pub conversation: String,
    pub seq: u64,
    pub from: String,
    pub to: String,
    pub body: String,
    pub ts: i64,
    pub client_id: String,
}

/// What an ingress entry asks for.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EntryKind {
    /// A message to sequence, store and deliver.
    #[default]
    Send,
    /// A typing notice: delivered to online members, never stored.
    Typing,
}

/// A `send` or `typing` the gateway accepted and put on the ingress stream.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct IngressEntry {
    #[serde(default)]
    pub kind: EntryKind,
    /// The sender (from the verified JWT, never from the client).
    pub user: String,
    /// The gateway and connection the `sent` ack goes back to.
    pub gw: String,
    pub conn: u64,
    pub client_id: String,
    pub to: String,
    pub body: String,
}

/// Field name of the JSON entry inside an ingress stream entry.
pub const INGRESS_FIELD: &str = "e";

/// One frame for some sockets of one gateway. A gateway channel carries a JSON
/// array of these; the frame is serialized once by chat-service and handed to
/// every socket as is.
#[derive(Debug, Serialize, Deserialize)]
pub struct Delivery<'a> {
    /// Every socket of these users on the gateway gets the frame...
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub users: Vec<String>,
    /// ...except this connection (the sender's, which gets `sent` instead).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub skip_conn: Option<u64>,
    /// Or exactly this connection (acks and errors).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conn: Option<u64>,
    #[serde(borrow)]
    pub frame: &'a RawValue,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delivery_round_trips_with_frame_untouched() {
        let frame = RawValue::from_string(r#"{"type":"pong"}"#.to_owned()).unwrap();
        let d = Delivery {
            users: vec!["bob".into()],
            skip_conn: Some(7),
            conn: None,
            frame: &frame,
        };
        let s = serde_json::to_string(&[&d]).unwrap();
        let back: Vec<Delivery<'_>> = serde_json::from_str(&s).unwrap();
        assert_eq!(back[0].frame.get(), r#"{"type":"pong"}"#);
        assert_eq!(back[0].skip_conn, Some(7));
        assert_eq!(back[0].users, ["bob"]);
    }
}
