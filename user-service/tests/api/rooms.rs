use proto::user::v1 as user_pb;
use tonic::Code;

use crate::helpers::{TestApp, spawn_app, spawn_app_with};

#[tokio::test]
async fn create_join_members_leave() {
    let app = spawn_app().await;
    app.register("alice").await;
    app.register("bob").await;
    let room = app.create_room("general", "alice").await.unwrap();
    assert_eq!(
        (room.name.as_str(), room.role.as_str()),
        ("general", "owner")
    );

    let joined = app
        .c()
        .join_room(TestApp::membership("general", "bob"))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(joined.role, "member");
    // Joining twice is not an error and changes nothing.
    app.c()
        .join_room(TestApp::membership("general", "bob"))
        .await
        .unwrap();

    let members = app
        .c()
        .list_room_members(user_pb::ListRoomMembersRequest {
            room: "general".into(),
        })
        .await
        .unwrap()
        .into_inner()
        .members;
    let names: Vec<_> = members
        .iter()
        .map(|m| (m.username.as_str(), m.role.as_str()))
        .collect();
    assert_eq!(names, [("alice", "owner"), ("bob", "member")]);

    let rooms = app
        .c()
        .list_user_rooms(user_pb::ListUserRoomsRequest {
            username: "bob".into(),
        })
        .await
        .unwrap()
        .into_inner()
        .rooms;
    assert_eq!(rooms.len(), 1);
    assert_eq!(rooms[0].created_by, "alice");

    let check = app
        .c()
        .check_membership(TestApp::membership("general", "bob"))
        .await
        .unwrap()
        .into_inner();
    assert!(check.member && check.room_exists);

    app.c()
        .leave_room(TestApp::membership("general", "bob"))
        .await
        .unwrap();
    let check = app
        .c()
        .check_membership(TestApp::membership("general", "bob"))
        .await
        .unwrap()
        .into_inner();
    assert!(!check.member && check.room_exists);
}

#[tokio::test]
async fn room_errors() {
    let app = spawn_app().await;
    app.register("alice").await;
    app.register("bob").await;
    app.create_room("general", "alice").await.unwrap();

    let dup = app.create_room("general", "bob").await.unwrap_err();
    assert_eq!(dup.code(), Code::AlreadyExists);
    let bad = app.create_room("Bad Name", "alice").await.unwrap_err();
    assert_eq!(bad.code(), Code::InvalidArgument);
    let no_creator = app.create_room("other", "ghost").await.unwrap_err();
    assert_eq!(no_creator.code(), Code::NotFound);

    let missing = app
        .c()
        .join_room(TestApp::membership("nowhere", "bob"))
        .await
        .unwrap_err();
    assert_eq!(missing.code(), Code::NotFound);
    let not_member = app
        .c()
        .leave_room(TestApp::membership("general", "bob"))
        .await
        .unwrap_err();
    assert_eq!(not_member.code(), Code::FailedPrecondition);
    let missing = app
        .c()
        .leave_room(TestApp::membership("nowhere", "bob"))
        .await
        .unwrap_err();
    assert_eq!(missing.code(), Code::NotFound);
    let check = app
        .c()
        .check_membership(TestApp::membership("nowhere", "bob"))
        .await
        .unwrap()
        .into_inner();
    assert!(!check.room_exists && !check.member);
}

#[tokio::test]
async fn every_membership_change_bumps_the_room_version() {
    use redis::AsyncCommands;
    // Without membership events: the relay bumps versions too, when it
    // writes an event (member_events.rs).
    let app = spawn_app_with(&[("MEMBERSHIP_EVENTS", "false")]).await;
    app.register("alice").await;
    app.register("bob").await;
    let mut redis = app.storage.redis().await;
    let key = app.storage.key("{room:general}:members:v");
    let version = |mut r: testkit::redis::TestRedis, k: String| async move {
        r.get::<_, Option<i64>>(k).await.unwrap()
    };
    app.create_room("general", "alice").await.unwrap();
    assert_eq!(version(redis.clone(), key.clone()).await, Some(1));
    app.c()
        .join_room(TestApp::membership("general", "bob"))
        .await
        .unwrap();
    assert_eq!(version(redis.clone(), key.clone()).await, Some(2));
    app.c()
        .leave_room(TestApp::membership("general", "bob"))
        .await
        .unwrap();
    assert_eq!(version(redis.clone(), key.clone()).await, Some(3));
    // A refused change bumps nothing.
    let _ = app
        .c()
        .leave_room(TestApp::membership("general", "bob"))
        .await;
    let v: Option<i64> = redis.get(&key).await.unwrap();
    assert_eq!(v, Some(3));
}

#[tokio::test]
async fn a_member_s_history_starts_at_the_room_s_seq_when_they_joined() {
    use redis::AsyncCommands;
    let app = spawn_app().await;
    for u in ["alice", "bob", "carol"] {
        app.register(u).await;
    }
    app.create_room("general", "alice").await.unwrap();
    let mut redis = app.storage.redis().await;
    let _: () = redis
        .set(app.storage.key("{room:general}:seq"), 7)
        .await
        .unwrap();
    let joined = app
        .c()
        .join_room(TestApp::membership("general", "bob"))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        (joined.history_visibility.as_str(), joined.history_from_seq),
        ("full", 0),
        "a full-history room starts everyone at 0"
    );
    let from = |user: &'static str| {
        let mut c = app.c();
        async move {
            c.check_membership(TestApp::membership("general", user))
                .await
                .unwrap()
                .into_inner()
                .history_from_seq
        }
    };
    assert_eq!(from("bob").await, 0);
    let room = app
        .c()
        .update_room(user_pb::UpdateRoomRequest {
            room: "general".into(),
            actor: "alice".into(),
            history_visibility: Some("since_join".into()),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(room.history_visibility, "since_join");
    assert_eq!((from("alice").await, from("bob").await), (0, 7));
    assert_eq!(from("carol").await, 0, "a non-member has no floor");
    let e = app
        .c()
        .update_room(user_pb::UpdateRoomRequest {
            room: "general".into(),
            actor: "alice".into(),
            history_visibility: Some("members".into()),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), tonic::Code::InvalidArgument);
    let listed = app
        .c()
        .list_user_rooms(user_pb::ListUserRoomsRequest {
            username: "bob".into(),
        })
        .await
        .unwrap()
        .into_inner()
        .rooms;
    assert_eq!(listed[0].history_from_seq, 7);
}
