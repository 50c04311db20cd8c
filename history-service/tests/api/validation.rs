use proto::history::{internal::v1 as internal_pb, v1 as history_pb};
use tonic::Code;

use crate::helpers::spawn_app;

#[tokio::test]
async fn bad_arguments_are_invalid_argument() {
    let app = spawn_app().await;
    let cases = [
        ("", None, None, Some(10), "conversation_id"),
        ("general", None, None, Some(10), "conversation_id"),
        ("dm:bob:alice", None, None, Some(10), "ascending"),
        ("room:Bad Name", None, None, Some(10), "room"),
        ("room:general", Some(5), Some(1), Some(10), "not both"),
        ("room:general", None, None, Some(0), "limit"),
        ("room:general", None, None, Some(201), "limit"),
    ];
    for (conv, before, after, limit, needle) in cases {
        let status = app
            .c()
            .get_history(history_pb::GetHistoryRequest {
                conversation_id: conv.into(),
                before_seq: before,
                after_seq: after,
                limit,
            })
            .await
            .unwrap_err();
        assert_eq!(status.code(), Code::InvalidArgument, "{conv}");
        assert!(
            status.message().contains(needle),
            "{conv}: {}",
            status.message()
        );
    }
    for username in ["", "B", "has space"] {
        let status = app
            .c()
            .list_offline(history_pb::ListOfflineRequest {
                username: username.into(),
            })
            .await
            .unwrap_err();
        assert_eq!(status.code(), Code::InvalidArgument, "{username:?}");
    }
    let status = app
        .w()
        .append(internal_pb::AppendRequest {
            items: vec![internal_pb::AppendItem {
                message: Some(history_pb::Message::default()),
                ..Default::default()
            }],
            presence_at: 0,
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
}

#[tokio::test]
async fn limit_defaults_to_50() {
    let app = spawn_app().await;
    let messages: Vec<_> = (1..=60)
        .map(|s| crate::helpers::message("room:general", s, "alice"))
        .collect();
    app.append(&messages, &[]).await;
    let page = app
        .c()
        .get_history(history_pb::GetHistoryRequest {
            conversation_id: "room:general".into(),
            before_seq: None,
            after_seq: None,
            limit: None,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(page.messages.len(), 50);
    assert!(page.has_more);
}

/// `before_seq`, `after_seq` and `limit` at 0, 1, the maximum, one past it
/// and the type's maximum: inside the range a page, past it
/// INVALID_ARGUMENT; never the conversation's oldest messages for an
/// `after` that wrapped.
#[tokio::test]
async fn numbers_out_of_range_are_invalid_argument() {
    use chat_model::limits::MAX_SEQ;
    let app = spawn_app().await;
    let conv = "room:numbers";
    let messages: Vec<_> = (1..=3)
        .map(|s| crate::helpers::message(conv, s, "alice"))
        .collect();
    app.append(&messages, &[]).await;
    let page = |before: Option<u64>, after: Option<u64>, limit: Option<u32>| {
        let mut c = app.c();
        async move {
            c.get_history(history_pb::GetHistoryRequest {
                conversation_id: conv.into(),
                before_seq: before,
                after_seq: after,
                limit,
            })
            .await
            .map(|r| crate::helpers::seqs(&r.into_inner().messages))
            .map_err(|s| s.code())
        }
    };
    for v in [0, 1, MAX_SEQ, MAX_SEQ + 1, u64::MAX] {
        let after = page(None, Some(v), None).await;
        let before = page(Some(v), None, None).await;
        match v {
            0 => {
                assert_eq!(after, Ok(vec![1, 2, 3]));
                assert_eq!(before, Err(Code::InvalidArgument));
            }
            1 => {
                assert_eq!(after, Ok(vec![2, 3]));
                assert_eq!(before, Ok(vec![]));
            }
            MAX_SEQ => {
                assert_eq!(after, Ok(vec![]), "never another page");
                assert_eq!(before, Ok(vec![1, 2, 3]));
            }
            _ => {
                assert_eq!(after, Err(Code::InvalidArgument), "after {v}");
                assert_eq!(before, Err(Code::InvalidArgument), "before {v}");
            }
        }
    }
    for (limit, fine) in [
        (0, false),
        (1, true),
        (200, true),
        (201, false),
        (u32::MAX, false),
    ] {
        let got = page(None, None, Some(limit)).await;
        assert_eq!(got.is_ok(), fine, "limit {limit}: {got:?}");
    }
}
