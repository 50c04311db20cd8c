//! Reaching user-service's port is not enough: every call needs the service
//! token. Health stays open for probes.

use proto::user::v1::{self as user_pb, user_service_client::UserServiceClient};
use tonic::Code;

use crate::helpers::spawn_app;

#[tokio::test]
async fn calls_without_the_service_token_are_refused() {
    let app = spawn_app().await;
    let url = format!("http://127.0.0.1:{}", app.port);
    let anonymous = service_kit::grpc::lazy_channel(&url).unwrap();
    let forged =
        service_kit::grpc::internal_channel(&url, "not-the-token-0123456789-0123456789").unwrap();

    let register = user_pb::RegisterRequest {
        username: "mallory".into(),
        password: "password123".into(),
        display_name: None,
    };
    let refused = UserServiceClient::new(anonymous.clone())
        .register(register.clone())
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::Unauthenticated);
    let refused = UserServiceClient::new(forged)
        .register(register)
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::Unauthenticated);
    let refused = UserServiceClient::new(anonymous.clone())
        .check_membership(user_pb::RoomMembershipRequest {
            room: "general".into(),
            username: "alice".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::Unauthenticated);

    // Nothing was created by the refused calls.
    let missing = app
        .c()
        .get_user(user_pb::GetUserRequest {
            username: "mallory".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(missing.code(), Code::NotFound);

    // Probes need no credentials.
    let health = tonic_health::pb::health_client::HealthClient::new(anonymous)
        .check(tonic_health::pb::HealthCheckRequest {
            service: String::new(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(health.status, 1, "SERVING");
}
