use testkit::{WsClient, ws::WsEnd};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

use crate::helpers::{StackOptions, spawn_stack, spawn_stack_with};

#[tokio::test]
async fn no_or_bad_token_is_401_before_the_upgrade() {
    let stack = spawn_stack().await;
    let port = stack.gateways[0];
    let request = format!("ws://127.0.0.1:{port}/ws")
        .into_client_request()
        .unwrap();
    assert!(matches!(
        WsClient::open(request).await,
        Err(WsEnd::Refused(401))
    ));
    assert!(matches!(
        WsClient::connect(port, "garbage").await,
        Err(WsEnd::Refused(401))
    ));
    let (expired, _) =
        service_kit::jwt::issue(testkit::JWT_SECRET, "alice", testkit::TEST_SESSION, -5).unwrap();
    assert!(matches!(
        WsClient::connect_query(port, &expired).await,
        Err(WsEnd::Refused(401))
    ));
    let (forged, _) = service_kit::jwt::issue(
        "some-other-secret-value",
        "alice",
        testkit::TEST_SESSION,
        60,
    )
    .unwrap();
    assert!(matches!(
        WsClient::connect(port, &forged).await,
        Err(WsEnd::Refused(401))
    ));
}

#[tokio::test]
async fn token_in_query_string_works_and_hello_names_user_and_gateway() {
    let stack = spawn_stack().await;
    let token = stack.user("alice").await;
    let mut ws = WsClient::connect_query(stack.gateways[0], &token)
        .await
        .unwrap();
    let hello = ws.recv().await;
    assert_eq!(hello["type"], "hello");
    assert_eq!(hello["user"], "alice");
    assert_eq!(hello["gateway"], "gw0");
    assert_eq!(hello["heartbeat_ms"], 25_000);
    let offline = ws.recv().await;
    assert_eq!(offline["type"], "offline");
    assert_eq!(offline["messages"].as_array().unwrap().len(), 0);
    assert_eq!(offline["truncated"], false);
}

#[tokio::test]
async fn origins_outside_the_allowed_list_are_403() {
    let stack = spawn_stack_with(StackOptions {
        gateway: vec![(
            "ALLOWED_ORIGINS",
            "https://chat.example.com, http://localhost:8080".to_string(),
        )],
        ..StackOptions::default()
    })
    .await;
    let token = stack.user("alice").await;
    let port = stack.gateways[0];
    let with_origin = |origin: &str| {
        let mut r = format!("ws://127.0.0.1:{port}/ws?token={token}")
            .into_client_request()
            .unwrap();
        r.headers_mut().insert("origin", origin.parse().unwrap());
        r
    };
    assert!(matches!(
        WsClient::open(with_origin("https://evil.example.net")).await,
        Err(WsEnd::Refused(403))
    ));
    assert!(
        WsClient::open(with_origin("https://chat.example.com"))
            .await
            .is_ok()
    );
    assert!(
        WsClient::open(with_origin("http://localhost:8080"))
            .await
            .is_ok()
    );
}
