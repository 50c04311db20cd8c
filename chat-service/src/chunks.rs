//! Splitting a batch's writes to history-service so that no gRPC message is
//! over the configured size. Without it a backlog batch to a big, mostly
//! offline room made an `Append` over the limit, which failed the same way on
//! every retry and wedged the worker for good.
//!
//! Items are packed greedily by encoded size, at most MAX_APPEND_BATCH each.
//! An item that alone is too big (one message to a huge offline room) is cut
//! by recipients: its first part goes with `Append` (which stores the
//! message), the rest with `Enqueue` (offline queues only, so the message is
//! archived once).

use prost::Message;
use proto::history::internal::v1 as internal_pb;

/// Most items one call carries (history-service refuses more).
pub const MAX_ITEMS: usize = 1000;
/// Room left for the request's own framing and each item's tag and length.
const OVERHEAD: usize = 16;

/// The calls that carry `items` within `max_bytes` each: `Append`s, then
/// `Enqueue`s, each with `presence_at`.
pub fn split(
    items: Vec<internal_pb::AppendItem>,
    max_bytes: usize,
    presence_at: i64,
) -> (
    Vec<internal_pb::AppendRequest>,
    Vec<internal_pb::AppendRequest>,
) {
    let budget = max_bytes.saturating_sub(OVERHEAD * 4).max(1024);
    let mut appends = Vec::new();
    let mut enqueues = Vec::new();
    for item in items {
        let mut parts = cut(item, budget).into_iter();
        if let Some(first) = parts.next() {
            appends.push(first);
        }
        enqueues.extend(parts);
    }
    (
        pack(appends, budget, presence_at),
        pack(enqueues, budget, presence_at),
    )
}

/// `item` as one or more items of at most `budget` bytes each, by cutting its
/// offline recipients.
fn cut(item: internal_pb::AppendItem, budget: usize) -> Vec<internal_pb::AppendItem> {
    if item.encoded_len() + OVERHEAD <= budget {
        return vec![item];
    }
    let bare = internal_pb::AppendItem {
        offline_recipients: Vec::new(),
        ..item.clone()
    };
    let base = bare.encoded_len() + OVERHEAD;
    let mut parts = Vec::new();
    let mut current = bare.clone();
    let mut size = base;
    for user in item.offline_recipients {
        let cost = user.len() + 2;
        if size + cost > budget && !current.offline_recipients.is_empty() {
            parts.push(std::mem::replace(&mut current, bare.clone()));
            size = base;
        }
        size += cost;
        current.offline_recipients.push(user);
    }
    parts.push(current);
    parts
}

/// Greedy packing of items into requests of at most `budget` bytes and
/// MAX_ITEMS items.
fn pack(
    items: Vec<internal_pb::AppendItem>,
    budget: usize,
    presence_at: i64,
) -> Vec<internal_pb::AppendRequest> {
    let mut requests = Vec::new();
    let mut current = Vec::new();
    let mut size = 0;
    for item in items {
        let cost = item.encoded_len() + OVERHEAD;
        if !current.is_empty() && (size + cost > budget || current.len() == MAX_ITEMS) {
            requests.push(internal_pb::AppendRequest {
                items: std::mem::take(&mut current),
                presence_at,
            });
            size = 0;
        }
        size += cost;
        current.push(item);
    }
    if !current.is_empty() {
        requests.push(internal_pb::AppendRequest {
            items: current,
            presence_at,
        });
    }
    requests
}

#[cfg(test)]
mod tests {
    use proto::history::v1 as history_pb;

    use super::*;

    fn item(seq: u64, body: usize, recipients: usize) -> internal_pb::AppendItem {
        internal_pb::AppendItem {
            message: Some(history_pb::Message {
                id: format!("id-{seq}"),
                conversation_id: "room:big".into(),
                seq,
                sender: "alice".into(),
                body: "x".repeat(body),
                ..Default::default()
            }),
            offline_recipients: (0..recipients).map(|i| format!("user_{i:05}")).collect(),
            ..Default::default()
        }
    }

    #[test]
    fn every_call_fits_and_nothing_is_lost() {
        let max = 64 << 10;
        let items: Vec<_> = (1..=50).map(|s| item(s, 4000, 20)).collect();
        let (appends, enqueues) = split(items.clone(), max, 0);
        assert!(appends.len() >= 4, "{} calls", appends.len());
        assert!(enqueues.is_empty());
        assert!(appends.iter().all(|r| r.encoded_len() <= max));
        let seqs: Vec<u64> = appends
            .iter()
            .flat_map(|r| &r.items)
            .map(|i| i.message.as_ref().unwrap().seq)
            .collect();
        assert_eq!(seqs, (1..=50).collect::<Vec<_>>());
    }

    #[test]
    fn a_huge_room_is_cut_by_recipients_and_stored_once() {
        let max = 64 << 10;
        let (appends, enqueues) = split(vec![item(1, 100, 20_000)], max, 0);
        assert_eq!(appends.len(), 1, "stored by one Append");
        assert!(!enqueues.is_empty());
        let all = appends.iter().chain(&enqueues);
        assert!(all.clone().all(|r| r.encoded_len() <= max));
        let recipients: usize = all
            .flat_map(|r| &r.items)
            .map(|i| i.offline_recipients.len())
            .sum();
        assert_eq!(recipients, 20_000);
    }

    #[test]
    fn at_most_max_items_per_call() {
        let items: Vec<_> = (1..=2500).map(|s| item(s, 1, 0)).collect();
        let (appends, _) = split(items, 64 << 20, 0);
        assert_eq!(appends.len(), 3);
        assert!(appends.iter().all(|r| r.items.len() <= MAX_ITEMS));
    }
}
