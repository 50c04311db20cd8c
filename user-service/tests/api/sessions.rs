//! Sessions: login, refresh rotation and reuse, revocation (and its
//! announcement in Redis), password change and reset, account deletion.

use proto::user::v1 as user_pb;
use redis::AsyncCommands;
use tonic::Code;

use crate::helpers::{TestApp, spawn_app, spawn_app_with};

const PASSWORD: &str = "password123";

async fn login(app: &TestApp, user: &str, device: &str) -> user_pb::AuthenticateResponse {
    app.c()
        .authenticate(user_pb::AuthenticateRequest {
            username: user.into(),
            password: PASSWORD.into(),
            device: device.into(),
            client_addr: "192.0.2.7".into(),
        })
        .await
        .expect("login")
        .into_inner()
}

async fn refresh(
    app: &TestApp,
    token: &str,
) -> Result<user_pb::AuthenticateResponse, tonic::Status> {
    app.c()
        .refresh(user_pb::RefreshRequest {
            refresh_token: token.into(),
            client_addr: "192.0.2.8".into(),
        })
        .await
        .map(|r| r.into_inner())
}

async fn sessions(app: &TestApp, user: &str) -> Vec<user_pb::Session> {
    app.c()
        .list_sessions(user_pb::ListSessionsRequest {
            username: user.into(),
        })
        .await
        .unwrap()
        .into_inner()
        .sessions
}

/// Whether gateways would refuse `session`'s tokens, and for how long.
async fn denied(app: &TestApp, session: &str) -> Option<i64> {
    let mut redis = app.storage.redis().await;
    let ttl: i64 = redis
        .ttl(app.storage.key(&format!("session:{session}:revoked")))
        .await
        .unwrap();
    (ttl > 0).then_some(ttl)
}

#[tokio::test]
async fn a_login_opens_a_session_that_names_itself_in_its_token() {
    let app = spawn_app().await;
    app.register("alice").await;
    let auth = login(&app, "alice", "Firefox on a laptop\u{7}").await;
    let claims = service_kit::jwt::verify(testkit::JWT_SECRET, &auth.token).unwrap();
    assert_eq!(claims.sid, auth.session_id);
    assert!(
        auth.refresh_token
            .starts_with(&format!("{}.", auth.session_id))
    );
    assert!(auth.refresh_expires_at > auth.expires_at);
    let listed = sessions(&app, "alice").await;
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].id, auth.session_id);
    assert_eq!(
        listed[0].device, "Firefox on a laptop",
        "control characters dropped"
    );
    assert_eq!(listed[0].client_addr, "192.0.2.7");
    // Only a hash of the refresh secret is stored.
    let pool = sqlx::PgPool::connect(&app.storage.database_url())
        .await
        .unwrap();
    let stored: Vec<u8> = sqlx::query_scalar("SELECT refresh_hash FROM sessions")
        .fetch_one(&pool)
        .await
        .unwrap();
    let secret = auth.refresh_token.split_once('.').unwrap().1;
    assert_eq!(stored.len(), 32);
    assert!(!String::from_utf8_lossy(&stored).contains(secret));
}

#[tokio::test]
async fn refresh_rotates_and_a_reused_token_revokes_the_session() {
    let app = spawn_app().await;
    app.register("alice").await;
    let first = login(&app, "alice", "phone").await;
    let second = refresh(&app, &first.refresh_token).await.expect("rotates");
    assert_eq!(second.session_id, first.session_id);
    assert_ne!(second.refresh_token, first.refresh_token);
    assert_eq!(sessions(&app, "alice").await[0].client_addr, "192.0.2.8");
    let third = refresh(&app, &second.refresh_token)
        .await
        .expect("rotates again");
    assert!(denied(&app, &first.session_id).await.is_none());

    // The first token again: theft. The whole session goes, with its
    // newest token, and gateways are told.
    let reused = refresh(&app, &first.refresh_token).await.unwrap_err();
    assert_eq!(reused.code(), Code::Unauthenticated);
    assert!(
        reused.message().contains("already used"),
        "{}",
        reused.message()
    );
    let ttl = denied(&app, &first.session_id)
        .await
        .expect("on the deny-list");
    assert!(ttl <= 3600 + 60, "as long as a token lives, got {ttl}");
    assert_eq!(
        refresh(&app, &third.refresh_token)
            .await
            .unwrap_err()
            .code(),
        Code::Unauthenticated
    );
    assert!(sessions(&app, "alice").await.is_empty());
}

#[tokio::test]
async fn bad_refresh_tokens_are_refused_and_change_nothing() {
    let app = spawn_app().await;
    app.register("alice").await;
    let auth = login(&app, "alice", "").await;
    let sid = &auth.session_id;
    for bad in [
        String::new(),
        "nonsense".into(),
        format!("{sid}.short"),
        format!("{sid}.{}", "0".repeat(64)),
        format!("{}.{}", "f".repeat(32), "0".repeat(64)),
        format!("NOTHEX{}", &auth.refresh_token[6..]),
    ] {
        let e = refresh(&app, &bad).await.unwrap_err();
        assert_eq!(e.code(), Code::Unauthenticated, "{bad}");
    }
    assert!(denied(&app, sid).await.is_none(), "a guess revokes nothing");
    refresh(&app, &auth.refresh_token)
        .await
        .expect("still valid");
}

#[tokio::test]
async fn revoking_one_session_leaves_the_others_and_is_repeatable() {
    let app = spawn_app().await;
    app.register("alice").await;
    app.register("mallory").await;
    let laptop = login(&app, "alice", "laptop").await;
    let phone = login(&app, "alice", "phone").await;
    let revoke = |user: &str, id: &str| user_pb::RevokeSessionRequest {
        username: user.into(),
        session_id: id.into(),
    };
    let e = app
        .c()
        .revoke_session(revoke("mallory", &laptop.session_id))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::NotFound, "another user's session");
    assert!(denied(&app, &laptop.session_id).await.is_none());
    for _ in 0..2 {
        let reply = app
            .c()
            .revoke_session(revoke("alice", &laptop.session_id))
            .await
            .expect("revoking again answers the same")
            .into_inner();
        assert_eq!(reply.revoked, [laptop.session_id.as_str()]);
    }
    assert!(denied(&app, &laptop.session_id).await.is_some());
    let left: Vec<String> = sessions(&app, "alice")
        .await
        .into_iter()
        .map(|s| s.id)
        .collect();
    assert_eq!(left, [phone.session_id.as_str()]);
    assert_eq!(
        refresh(&app, &laptop.refresh_token)
            .await
            .unwrap_err()
            .code(),
        Code::Unauthenticated
    );
    let e = app
        .c()
        .revoke_session(revoke("alice", "xyz"))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument);
}

#[tokio::test]
async fn a_password_change_keeps_this_session_and_revokes_the_rest() {
    let app = spawn_app().await;
    app.register("alice").await;
    let here = login(&app, "alice", "here").await;
    let there = login(&app, "alice", "there").await;
    let change = |current: &str| user_pb::ChangePasswordRequest {
        username: "alice".into(),
        current_password: current.into(),
        new_password: "a new password".into(),
        keep: here.session_id.clone(),
    };
    let e = app
        .c()
        .change_password(change("wrong one"))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::Unauthenticated);
    assert!(
        denied(&app, &there.session_id).await.is_none(),
        "nothing changed"
    );
    let reply = app
        .c()
        .change_password(change(PASSWORD))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(reply.revoked, [there.session_id.as_str()]);
    assert!(denied(&app, &there.session_id).await.is_some());
    assert!(denied(&app, &here.session_id).await.is_none());
    refresh(&app, &here.refresh_token)
        .await
        .expect("this session lives on");
    let old = app
        .c()
        .authenticate(user_pb::AuthenticateRequest {
            username: "alice".into(),
            password: PASSWORD.into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(old.code(), Code::Unauthenticated);
    app.c()
        .authenticate(user_pb::AuthenticateRequest {
            username: "alice".into(),
            password: "a new password".into(),
            ..Default::default()
        })
        .await
        .expect("the new password works");

    // The operator's reset signs out everything.
    let reply = app
        .c()
        .reset_password(user_pb::ResetPasswordRequest {
            username: "alice".into(),
            new_password: "reset by ops".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert!(reply.revoked.contains(&here.session_id));
    assert!(sessions(&app, "alice").await.is_empty());
}

#[tokio::test]
async fn a_deleted_account_is_gone_and_its_name_retired() {
    let app = spawn_app().await;
    app.register("alice").await;
    app.register("bob").await;
    app.create_room("plans", "alice").await.unwrap();
    app.c()
        .join_room(TestApp::membership("plans", "bob"))
        .await
        .unwrap();
    let session = login(&app, "alice", "").await;
    let delete = |password: &str| user_pb::DeleteAccountRequest {
        username: "alice".into(),
        password: password.into(),
    };
    let e = app
        .c()
        .delete_account(delete("wrong password"))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::Unauthenticated);
    assert!(!sessions(&app, "alice").await.is_empty(), "nothing changed");

    let reply = app
        .c()
        .delete_account(delete(PASSWORD))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(reply.rooms, ["plans"]);
    assert_eq!(reply.revoked, [session.session_id.as_str()]);
    assert!(denied(&app, &session.session_id).await.is_some());
    let e = app
        .c()
        .get_user(user_pb::GetUserRequest {
            username: "alice".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::NotFound);
    // The room has an owner still: its longest-standing member.
    let members = app
        .c()
        .list_room_members(user_pb::ListRoomMembersRequest {
            room: "plans".into(),
        })
        .await
        .unwrap()
        .into_inner()
        .members;
    assert_eq!(members.len(), 1);
    assert_eq!(
        (members[0].username.as_str(), members[0].role.as_str()),
        ("bob", "owner")
    );
    // Nobody can take the name, nor log in with it.
    let e = app
        .c()
        .register(user_pb::RegisterRequest {
            username: "alice".into(),
            password: PASSWORD.into(),
            display_name: None,
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::AlreadyExists);
    let e = app
        .c()
        .authenticate(user_pb::AuthenticateRequest {
            username: "alice".into(),
            password: PASSWORD.into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::Unauthenticated);
    assert_eq!(
        refresh(&app, &session.refresh_token)
            .await
            .unwrap_err()
            .code(),
        Code::Unauthenticated
    );
    // The profile is erased, not kept.
    let pool = sqlx::PgPool::connect(&app.storage.database_url())
        .await
        .unwrap();
    let (name, hash): (String, String) =
        sqlx::query_as("SELECT display_name, password_hash FROM users WHERE username = 'alice'")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!((name.as_str(), hash.as_str()), ("", ""));
}

#[tokio::test]
async fn logins_beyond_the_cap_sign_out_the_least_recently_seen() {
    let app = spawn_app_with(&[("MAX_SESSIONS_PER_USER", "2")]).await;
    app.register("alice").await;
    let oldest = login(&app, "alice", "1").await;
    let middle = login(&app, "alice", "2").await;
    refresh(&app, &oldest.refresh_token).await.unwrap();
    // `middle` is now the least recently seen.
    login(&app, "alice", "3").await;
    let listed: Vec<String> = sessions(&app, "alice")
        .await
        .into_iter()
        .map(|s| s.device)
        .collect();
    assert_eq!(listed, ["3", "1"]);
    assert!(denied(&app, &middle.session_id).await.is_some());
}

#[tokio::test]
async fn profiles_change_within_their_bounds() {
    let app = spawn_app().await;
    app.register("alice").await;
    let update = |name: &str| user_pb::UpdateProfileRequest {
        username: "alice".into(),
        display_name: name.into(),
    };
    let user = app
        .c()
        .update_profile(update("  Alice Liddell "))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(user.display_name, "Alice Liddell");
    for bad in ["x".repeat(65), "tab\there".into()] {
        let e = app.c().update_profile(update(&bad)).await.unwrap_err();
        assert_eq!(e.code(), Code::InvalidArgument);
    }
    let user = app
        .c()
        .update_profile(update(""))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(user.display_name, "alice", "empty means the username");
}
