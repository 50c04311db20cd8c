use proto::history::{internal::v1 as ipb, v1 as pb};
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
            .get_history(pb::GetHistoryRequest {
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
            .list_offline(pb::ListOfflineRequest {
                username: username.into(),
            })
            .await
            .unwrap_err();
        assert_eq!(status.code(), Code::InvalidArgument, "{username:?}");
    }
    let status = app
        .w()
        .append(ipb::AppendRequest {
            items: vec![ipb::AppendItem {
                message: Some(pb::Message::default()),
                offline_recipients: vec![],
            }],
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
        .get_history(pb::GetHistoryRequest {
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
