//! The public port: a user's JWT in `authorization: Bearer`, and a user reads
//! only their own DMs and offline queue. (Rooms ask user-service; the e2e
//! tests cover those with the real binaries.)

use proto::history::v1::{self as history_pb, history_service_client::HistoryServiceClient};
use tonic::{Code, Request, transport::Channel};

use crate::helpers::{TestApp, message, spawn_app};

async fn public(app: &TestApp) -> HistoryServiceClient<Channel> {
    HistoryServiceClient::connect(format!("http://127.0.0.1:{}", app.public_port))
        .await
        .expect("connect")
}

fn with_token<T>(body: T, token: &str) -> Request<T> {
    let mut request = Request::new(body);
    request.metadata_mut().insert(
        "authorization",
        format!("Bearer {token}").parse().expect("ascii"),
    );
    request
}

fn token(user: &str) -> String {
    service_kit::jwt::issue(testkit::JWT_SECRET, user, testkit::TEST_SESSION, 600)
        .unwrap()
        .0
}

fn page(conversation: &str) -> history_pb::GetHistoryRequest {
    history_pb::GetHistoryRequest {
        conversation_id: conversation.into(),
        before_seq: None,
        after_seq: None,
        limit: Some(10),
    }
}

#[tokio::test]
async fn users_read_their_own_dms_and_queues_only() {
    let app = spawn_app().await;
    app.append(&[message("dm:alice:bob", 1, "alice")], &["bob"])
        .await;
    let mut client = public(&app).await;

    let anonymous = client.get_history(page("dm:alice:bob")).await.unwrap_err();
    assert_eq!(anonymous.code(), Code::Unauthenticated);
    let expired = service_kit::jwt::issue(testkit::JWT_SECRET, "bob", testkit::TEST_SESSION, -5)
        .unwrap()
        .0;
    let refused = client
        .get_history(with_token(page("dm:alice:bob"), &expired))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::Unauthenticated);
    let service_token = client
        .get_history(with_token(page("dm:alice:bob"), testkit::SERVICE_TOKEN))
        .await
        .unwrap_err();
    assert_eq!(
        service_token.code(),
        Code::Unauthenticated,
        "the service token is no credential on the public port"
    );

    let bobs = client
        .get_history(with_token(page("dm:alice:bob"), &token("bob")))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(bobs.messages.len(), 1);
    let carols = client
        .get_history(with_token(page("dm:alice:bob"), &token("carol")))
        .await
        .unwrap_err();
    assert_eq!(carols.code(), Code::PermissionDenied);

    let own = client
        .list_offline(with_token(
            history_pb::ListOfflineRequest {
                username: "bob".into(),
            },
            &token("bob"),
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(own.messages.len(), 1);
    let foreign = client
        .list_offline(with_token(
            history_pb::ListOfflineRequest {
                username: "bob".into(),
            },
            &token("alice"),
        ))
        .await
        .unwrap_err();
    assert_eq!(foreign.code(), Code::PermissionDenied);

    // Bad input is still INVALID_ARGUMENT for an authenticated caller.
    let bad = client
        .get_history(with_token(page("general"), &token("bob")))
        .await
        .unwrap_err();
    assert_eq!(bad.code(), Code::InvalidArgument);
}

#[tokio::test]
async fn a_signed_out_sessions_token_is_refused_at_once() {
    let app = spawn_app().await;
    app.append(&[message("dm:alice:bob", 1, "alice")], &["bob"])
        .await;
    let mut client = public(&app).await;
    let session = "00000000000000000000000000000abc";
    let (bob, _) = service_kit::jwt::issue(testkit::JWT_SECRET, "bob", session, 600).unwrap();
    client
        .get_history(with_token(page("dm:alice:bob"), &bob))
        .await
        .expect("a live session reads");
    // What user-service does on a sign-out.
    let revocations = chat_redis::sessions::Revocations::new(
        chat_redis::connection::connect(&chat_redis::connection::Endpoints::new(
            &testkit::redis_url(),
            testkit::redis_cluster(),
        ))
        .await
        .unwrap(),
        chat_redis::keys::Keys::new(app.storage.redis_prefix.clone()),
    );
    revocations
        .revoke(&[session.to_owned()], 600)
        .await
        .unwrap();
    for call in [
        client
            .get_history(with_token(page("dm:alice:bob"), &bob))
            .await
            .map(drop),
        client
            .list_offline(with_token(
                history_pb::ListOfflineRequest {
                    username: "bob".into(),
                },
                &bob,
            ))
            .await
            .map(drop),
    ] {
        let refused = call.unwrap_err();
        assert_eq!(refused.code(), Code::Unauthenticated);
        assert_eq!(refused.message(), "session revoked");
    }
}
