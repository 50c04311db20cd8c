//! Recorded payloads of every internal format, in the current and the
//! previous version, read by this build: the condition for a rolling
//! upgrade in either order (docs/architecture.md, "Rolling upgrades").

use common::{
    ids::{ConversationId, Target},
    model::{self, ArchiveEntry, Delivery, EntryKind, FORMAT_VERSION, IngressEntry},
};
use serde_json::Value;

fn recorded(name: &str) -> String {
    let path = format!("{}/tests/formats/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// The records of a JSON Lines file, each exactly as recorded.
fn records(name: &str) -> Vec<String> {
    recorded(name).lines().map(str::to_owned).collect()
}

#[test]
fn ingress_entries_of_both_versions_are_read() {
    for (file, v) in [("ingress-v1.jsonl", 1), ("ingress-v2.jsonl", 2)] {
        for text in records(file) {
            let e: IngressEntry =
                serde_json::from_str(&text).unwrap_or_else(|err| panic!("{file}: {err}: {text}"));
            assert_eq!(e.v, v, "{file}");
            assert!(model::readable(e.v));
            assert!(matches!(e.to, Target::User(_) | Target::Room(_)));
        }
    }
    let first: IngressEntry = serde_json::from_str(&records("ingress-v1.jsonl")[0]).unwrap();
    assert_eq!(first.kind, EntryKind::Send);
    assert_eq!(first.to, Target::User("bob".into()));
    let no_kind: IngressEntry = serde_json::from_str(&records("ingress-v1.jsonl")[2]).unwrap();
    assert_eq!(
        no_kind.kind,
        EntryKind::Send,
        "a v1 entry without kind is a send"
    );
}

#[test]
fn this_build_writes_the_current_version_byte_for_byte() {
    let v2 = records("ingress-v2.jsonl");
    let mut e: IngressEntry = serde_json::from_str(&records("ingress-v1.jsonl")[0]).unwrap();
    e.v = FORMAT_VERSION;
    assert_eq!(serde_json::to_string(&e).unwrap(), v2[0]);

    let archived = records("archive-v2.jsonl");
    for (old, new) in records("archive-v1.jsonl").iter().zip(&archived) {
        let entry: ArchiveEntry = serde_json::from_str(old).unwrap();
        assert_eq!(entry.v, 1);
        assert_eq!(&ArchiveEntry::json(&entry.message).unwrap(), new);
    }
}

#[test]
fn archive_entries_of_both_versions_are_read() {
    for (file, v) in [("archive-v1.jsonl", 1), ("archive-v2.jsonl", 2)] {
        let entries: Vec<ArchiveEntry> = records(file)
            .iter()
            .map(|t| serde_json::from_str(t).unwrap_or_else(|e| panic!("{file}: {e}: {t}")))
            .collect();
        assert!(entries.iter().all(|e| e.v == v && model::readable(e.v)));
        assert_eq!(
            entries[0].message.conversation,
            ConversationId::dm("bob", "alice")
        );
        assert!(entries[1].message.tombstone);
        assert_eq!(entries[1].message.to, Target::Room("general".into()));
    }
}

#[test]
fn deliveries_of_both_versions_are_read_with_frames_untouched() {
    for (file, v) in [("delivery-v1.json", 1), ("delivery-v2.json", 2)] {
        let text = recorded(file);
        let deliveries: Vec<Delivery<'_>> =
            serde_json::from_str(&text).unwrap_or_else(|e| panic!("{file}: {e}"));
        assert_eq!(deliveries.len(), 1);
        let d = &deliveries[0];
        assert_eq!(d.v, v, "{file}");
        assert!(model::readable(d.v));
        assert_eq!(&*d.users[0], "bob");
        assert_eq!(d.frames[0].skip_conn, Some(7));
        assert_eq!(d.frames[1].conn, Some(7));
        let frame: Value = serde_json::from_str(d.frames[0].frame.get()).unwrap();
        assert_eq!(frame["type"], "message");
    }
}

#[test]
fn a_version_from_the_future_is_not_readable() {
    assert!(!model::readable(FORMAT_VERSION + 1));
    assert!(!model::readable(0));
}
