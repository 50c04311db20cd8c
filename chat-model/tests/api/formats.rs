//! Recorded payloads of every internal format, in the current and the
//! previous version, read by this build: the condition for a rolling
//! upgrade in either order (docs/architecture.md, "Rolling upgrades").

use chat_model::{
    ids::{ConversationId, Target},
    message::{self, ArchiveEntry, Delivery, EntryKind, FORMAT_VERSION, IngressEntry},
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
            assert!(message::readable(e.v));
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
        assert_eq!(&ArchiveEntry::json(&entry.message, None).unwrap(), new);
    }
    // An event with its target's state: the optional field this release
    // added, without a version bump.
    for text in records("archive-v2-states.jsonl") {
        let entry: ArchiveEntry = serde_json::from_str(&text).unwrap();
        let again = ArchiveEntry::json(&entry.message, entry.target.as_ref()).unwrap();
        assert_eq!(again, text);
    }
}

#[test]
fn events_with_their_targets_state_are_read_by_both_releases() {
    let entries: Vec<ArchiveEntry> = records("archive-v2-states.jsonl")
        .iter()
        .map(|t| serde_json::from_str(t).unwrap())
        .collect();
    let edit = entries[0].target.as_ref().expect("the edit's target state");
    assert_eq!(
        (edit.seq, edit.body.as_str(), edit.edit_seq),
        (1, "hi bob!", Some(2))
    );
    let delete = entries[1]
        .target
        .as_ref()
        .expect("the delete's target state");
    assert!(delete.deleted && delete.body.is_empty());
    // The release before reads these entries as it reads its own: the
    // event, whole (it ignores fields it does not know).
    #[derive(serde::Deserialize)]
    struct Before {
        v: u32,
        #[serde(flatten)]
        message: chat_model::message::ChatMessage,
    }
    for text in records("archive-v2-states.jsonl") {
        let old: Before = serde_json::from_str(&text).unwrap();
        assert_eq!(old.v, 2);
        assert!(old.message.kind.is_some() && old.message.target_seq == Some(1));
    }
}

#[test]
fn membership_events_are_written_byte_for_byte_and_read_by_both_releases() {
    use chat_model::message::MemberAction;
    for text in records("ingress-v2-members.jsonl") {
        let e: IngressEntry = serde_json::from_str(&text).unwrap();
        assert_eq!((e.v, e.kind), (2, EntryKind::Member));
        let m = e.member.as_ref().expect("the event");
        assert_eq!(m.text(&e.user), e.body, "the body is the event's text");
        assert_eq!(serde_json::to_string(&e).unwrap(), text);
    }
    let entries: Vec<ArchiveEntry> = records("archive-v2-members.jsonl")
        .iter()
        .map(|t| serde_json::from_str(t).unwrap())
        .collect();
    let role = entries[0].message.member.as_ref().unwrap();
    assert_eq!(
        (role.action, role.user.as_str(), role.role.as_deref()),
        (MemberAction::Role, "bob", Some("admin"))
    );
    assert_eq!(entries[1].message.member.as_ref().unwrap().role, None);
    for (entry, text) in entries.iter().zip(records("archive-v2-members.jsonl")) {
        assert_eq!(ArchiveEntry::json(&entry.message, None).unwrap(), text);
    }
    // The release before has no `member`: it reads a message from the
    // actor whose body says what happened, and stores it as any other.
    #[derive(serde::Deserialize)]
    struct Before {
        v: u32,
        seq: u64,
        from: String,
        body: String,
        kind: Option<String>,
    }
    let old: Vec<Before> = records("archive-v2-members.jsonl")
        .iter()
        .map(|t| serde_json::from_str(t).unwrap())
        .collect();
    assert_eq!(
        old.iter()
            .map(|b| (
                b.v,
                b.seq,
                b.from.as_str(),
                b.body.as_str(),
                b.kind.is_none()
            ))
            .collect::<Vec<_>>(),
        [
            (2, 5, "alice", "alice made bob admin", true),
            (2, 6, "carol", "carol joined", true)
        ]
    );
}

#[test]
fn deliveries_with_marks_are_read_and_the_previous_reader_ignores_them() {
    let text = recorded("delivery-v2-marks.json");
    let deliveries: Vec<Delivery<'_>> = serde_json::from_str(&text).unwrap();
    let d = &deliveries[0];
    assert_eq!(d.conversation.as_deref(), Some("dm:alice:bob"));
    assert_eq!(
        d.frames.iter().map(|f| (f.seq, f.read)).collect::<Vec<_>>(),
        [(Some(1), None), (None, None), (None, Some(1))]
    );
    // What the release before reads of it: users and frames, the rest
    // ignored.
    let plain: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(plain[0]["frames"].as_array().map(Vec::len), Some(3));
}

#[test]
fn archive_entries_of_both_versions_are_read() {
    for (file, v) in [("archive-v1.jsonl", 1), ("archive-v2.jsonl", 2)] {
        let entries: Vec<ArchiveEntry> = records(file)
            .iter()
            .map(|t| serde_json::from_str(t).unwrap_or_else(|e| panic!("{file}: {e}: {t}")))
            .collect();
        assert!(entries.iter().all(|e| e.v == v && message::readable(e.v)));
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
        assert!(message::readable(d.v));
        assert_eq!(&*d.users[0], "bob");
        assert_eq!(d.frames[0].skip_conn, Some(7));
        assert_eq!(d.frames[1].conn, Some(7));
        let frame: Value = serde_json::from_str(d.frames[0].frame.get()).unwrap();
        assert_eq!(frame["type"], "message");
    }
}

#[test]
fn a_version_from_the_future_is_not_readable() {
    assert!(!message::readable(FORMAT_VERSION + 1));
    assert!(!message::readable(0));
}
