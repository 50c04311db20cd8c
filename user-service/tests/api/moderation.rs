//! Running a room: the permission table, ownership that cannot be dropped
//! by leaving, private rooms that look like no room to strangers, invites
//! and their bounds, bans with an expiry, mutes, and the moderation log.

use proto::user::v1::{self as user_pb, ModerationAction as A};
use tonic::Code;

use crate::helpers::{TestApp, spawn_app};

async fn role(app: &TestApp, room: &str, user: &str) -> Option<String> {
    app.c()
        .list_room_members(user_pb::ListRoomMembersRequest { room: room.into() })
        .await
        .unwrap()
        .into_inner()
        .members
        .into_iter()
        .find(|m| m.username == user)
        .map(|m| m.role)
}

async fn join(app: &TestApp, room: &str, user: &str) -> Result<user_pb::Room, tonic::Status> {
    app.c()
        .join_room(TestApp::membership(room, user))
        .await
        .map(|r| r.into_inner())
}

async fn set_role(
    app: &TestApp,
    room: &str,
    actor: &str,
    target: &str,
    role: &str,
) -> Result<(), tonic::Status> {
    app.c()
        .moderate(user_pb::ModerateRequest {
            room: room.into(),
            actor: actor.into(),
            action: A::SetRole.into(),
            target: target.into(),
            role: role.into(),
            ..Default::default()
        })
        .await
        .map(|_| ())
}

async fn invite(
    app: &TestApp,
    room: &str,
    actor: &str,
    user: &str,
) -> Result<user_pb::Invitation, tonic::Status> {
    app.c()
        .invite(user_pb::InviteRequest {
            room: room.into(),
            actor: actor.into(),
            username: user.into(),
        })
        .await
        .map(|r| r.into_inner())
}

#[tokio::test]
async fn roles_follow_the_permission_table_and_a_room_keeps_one_owner() {
    let app = spawn_app().await;
    for u in ["owner", "admin", "mem", "other"] {
        app.register(u).await;
    }
    app.create_room("ops", "owner").await.unwrap();
    for u in ["admin", "mem", "other"] {
        join(&app, "ops", u).await.unwrap();
    }
    // Only the owner makes admins.
    let refused = set_role(&app, "ops", "mem", "other", "admin")
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::PermissionDenied, "{refused:?}");
    set_role(&app, "ops", "owner", "admin", "admin")
        .await
        .unwrap();
    assert_eq!(role(&app, "ops", "admin").await.as_deref(), Some("admin"));
    let owner_role = set_role(&app, "ops", "owner", "mem", "owner")
        .await
        .unwrap_err();
    assert_eq!(
        owner_role.code(),
        Code::InvalidArgument,
        "ownership is transferred, not set"
    );

    // An admin kicks a member, but not the owner; a member kicks nobody.
    for (actor, target) in [("admin", "owner"), ("mem", "other")] {
        let e = app
            .moderate("ops", actor, A::Kick, target)
            .await
            .unwrap_err();
        assert_eq!(
            e.code(),
            Code::PermissionDenied,
            "{actor} kicks {target}: {e:?}"
        );
    }
    set_role(&app, "ops", "owner", "mem", "admin")
        .await
        .unwrap();
    let e = app
        .moderate("ops", "admin", A::Kick, "mem")
        .await
        .unwrap_err();
    assert_eq!(
        e.code(),
        Code::PermissionDenied,
        "an admin does not kick an admin"
    );
    set_role(&app, "ops", "owner", "mem", "member")
        .await
        .unwrap();
    app.moderate("ops", "admin", A::Kick, "other")
        .await
        .unwrap();
    assert_eq!(role(&app, "ops", "other").await, None, "kicked");
    let again = app
        .moderate("ops", "admin", A::Kick, "other")
        .await
        .unwrap_err();
    assert_eq!(
        again.code(),
        Code::FailedPrecondition,
        "not a member any more"
    );
    join(&app, "ops", "other")
        .await
        .expect("a kicked user may join a public room again");

    // The owner cannot leave until they hand the room on.
    let leave = app
        .c()
        .leave_room(TestApp::membership("ops", "owner"))
        .await
        .unwrap_err();
    assert_eq!(leave.code(), Code::FailedPrecondition, "{leave:?}");
    let e = app
        .moderate("ops", "admin", A::Transfer, "mem")
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::PermissionDenied, "only the owner transfers");
    app.moderate("ops", "owner", A::Transfer, "mem")
        .await
        .unwrap();
    assert_eq!(role(&app, "ops", "mem").await.as_deref(), Some("owner"));
    assert_eq!(role(&app, "ops", "owner").await.as_deref(), Some("admin"));
    app.c()
        .leave_room(TestApp::membership("ops", "owner"))
        .await
        .expect("the former owner leaves");
    let members = app
        .c()
        .list_room_members(user_pb::ListRoomMembersRequest { room: "ops".into() })
        .await
        .unwrap()
        .into_inner()
        .members;
    assert_eq!(members.iter().filter(|m| m.role == "owner").count(), 1);

    // Deleting: the owner only; the name is retired.
    let e = app
        .moderate("ops", "admin", A::DeleteRoom, "")
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::PermissionDenied);
    app.moderate("ops", "mem", A::DeleteRoom, "").await.unwrap();
    assert_eq!(
        join(&app, "ops", "other").await.unwrap_err().code(),
        Code::NotFound
    );
    let reuse = app.create_room("ops", "other").await.unwrap_err();
    assert_eq!(
        reuse.code(),
        Code::AlreadyExists,
        "a deleted room's name is retired"
    );
}

#[tokio::test]
async fn a_private_room_looks_like_no_room_to_strangers_and_takes_the_invited() {
    let app = spawn_app().await;
    for u in ["alice", "bob", "eve"] {
        app.register(u).await;
    }
    app.create_room_with("secret", "alice", Some("private"))
        .await
        .unwrap();
    let private = join(&app, "secret", "eve").await.unwrap_err();
    let missing = join(&app, "nowhere", "eve").await.unwrap_err();
    assert_eq!(
        (private.code(), private.message().replace("secret", "X")),
        (missing.code(), missing.message().replace("nowhere", "X")),
        "a stranger cannot tell a private room from none"
    );
    let check = |room: &'static str| {
        let app = &app;
        async move {
            app.c()
                .check_membership(TestApp::membership(room, "eve"))
                .await
                .unwrap()
                .into_inner()
        }
    };
    assert_eq!(check("secret").await, check("nowhere").await);
    for action in [A::Kick, A::Ban] {
        let e = app
            .moderate("secret", "eve", action, "alice")
            .await
            .unwrap_err();
        assert_eq!(e.code(), Code::NotFound, "{action:?} by a stranger");
    }

    // Invited, bob finds it, joins, and the invite is used up.
    let refused = invite(&app, "secret", "bob", "eve").await.unwrap_err();
    assert_eq!(refused.code(), Code::NotFound, "bob is a stranger too");
    let sent = invite(&app, "secret", "alice", "bob").await.unwrap();
    assert_eq!(
        (sent.room.as_str(), sent.invited_by.as_str()),
        ("secret", "alice")
    );
    invite(&app, "secret", "alice", "bob")
        .await
        .expect("inviting twice is one invite");
    let pending = app
        .c()
        .list_invites(user_pb::ListInvitesRequest {
            username: "bob".into(),
        })
        .await
        .unwrap()
        .into_inner()
        .invites;
    assert_eq!(pending.len(), 1);
    let answer = app
        .c()
        .answer_invite(user_pb::AnswerInviteRequest {
            room: "secret".into(),
            username: "bob".into(),
            accept: true,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(answer.room.unwrap().visibility, "private");
    assert!(
        !check("secret").await.room_exists,
        "eve is still a stranger"
    );
    let listed = app
        .c()
        .list_public_rooms(user_pb::ListPublicRoomsRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert!(listed.rooms.iter().all(|r| r.name != "secret"), "unlisted");
    let already = invite(&app, "secret", "alice", "bob").await.unwrap_err();
    assert_eq!(already.code(), Code::AlreadyExists);
}

#[tokio::test]
async fn pending_invites_are_bounded_per_user_and_declining_changes_nothing_else() {
    let app = spawn_app().await;
    app.register("host").await;
    app.register("guest").await;
    let max = user_service::invite_store::MAX_INVITES_PER_USER;
    for i in 0..=max {
        app.create_room_with(&format!("r{i}"), "host", Some("private"))
            .await
            .unwrap();
    }
    for i in 0..max {
        invite(&app, &format!("r{i}"), "host", "guest")
            .await
            .unwrap();
    }
    let over = invite(&app, &format!("r{max}"), "host", "guest")
        .await
        .unwrap_err();
    assert_eq!(over.code(), Code::FailedPrecondition, "{over:?}");
    let decline = user_pb::AnswerInviteRequest {
        room: "r0".into(),
        username: "guest".into(),
        accept: false,
    };
    app.c().answer_invite(decline.clone()).await.unwrap();
    let twice = app.c().answer_invite(decline).await.unwrap_err();
    assert_eq!(twice.code(), Code::NotFound);
    invite(&app, &format!("r{max}"), "host", "guest")
        .await
        .expect("room again below the bound");
    assert_eq!(
        join(&app, "r0", "guest").await.unwrap_err().code(),
        Code::NotFound
    );
}

#[tokio::test]
async fn a_ban_keeps_a_user_out_until_it_ends_or_is_lifted() {
    let app = spawn_app().await;
    for u in ["mod", "troll", "fan"] {
        app.register(u).await;
    }
    app.create_room("lobby", "mod").await.unwrap();
    join(&app, "lobby", "troll").await.unwrap();
    app.moderate("lobby", "mod", A::Ban, "troll").await.unwrap();
    assert_eq!(role(&app, "lobby", "troll").await, None, "a ban removes");
    let rejoin = join(&app, "lobby", "troll").await.unwrap_err();
    assert_eq!(rejoin.code(), Code::PermissionDenied, "{rejoin:?}");
    let invited = invite(&app, "lobby", "mod", "troll").await.unwrap_err();
    assert_eq!(
        invited.code(),
        Code::FailedPrecondition,
        "the banned are not invited"
    );
    app.moderate("lobby", "mod", A::Unban, "troll")
        .await
        .unwrap();
    join(&app, "lobby", "troll").await.expect("lifted");
    let none = app
        .moderate("lobby", "mod", A::Unban, "fan")
        .await
        .unwrap_err();
    assert_eq!(none.code(), Code::NotFound);

    // A ban that ends by itself.
    let until = chrono::Utc::now().timestamp_millis() + 1500;
    app.c()
        .moderate(user_pb::ModerateRequest {
            room: "lobby".into(),
            actor: "mod".into(),
            action: A::Ban.into(),
            target: "troll".into(),
            reason: "cool off".into(),
            until_ms: Some(until),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(
        join(&app, "lobby", "troll").await.unwrap_err().code(),
        Code::PermissionDenied
    );
    testkit::eventually(
        "the ban to end",
        std::time::Duration::from_secs(10),
        || async { join(&app, "lobby", "troll").await.ok() },
    )
    .await;
    assert!(chrono::Utc::now().timestamp_millis() >= until);

    // Bad input changes nothing.
    for (until_ms, reason) in [(Some(1), ""), (None, "x\u{0}y")] {
        let e = app
            .c()
            .moderate(user_pb::ModerateRequest {
                room: "lobby".into(),
                actor: "mod".into(),
                action: A::Ban.into(),
                target: "fan".into(),
                reason: reason.into(),
                until_ms,
                ..Default::default()
            })
            .await
            .unwrap_err();
        assert_eq!(e.code(), Code::InvalidArgument, "{e:?}");
    }
    let e = app
        .moderate("lobby", "mod", A::Ban, "mod")
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument, "nobody bans themself");

    // A mute shows on the member list, with its end.
    app.moderate("lobby", "mod", A::Mute, "troll")
        .await
        .unwrap();
    let muted = app
        .c()
        .list_room_members(user_pb::ListRoomMembersRequest {
            room: "lobby".into(),
        })
        .await
        .unwrap()
        .into_inner()
        .members
        .into_iter()
        .find(|m| m.username == "troll")
        .unwrap()
        .muted_until_ms;
    assert!(
        muted > chrono::Utc::now().timestamp_millis() + 86_400_000,
        "until lifted"
    );
    app.moderate("lobby", "mod", A::Unmute, "troll")
        .await
        .unwrap();

    // Every action is in the log, newest first, for moderators only.
    let log = |actor: &'static str| {
        let app = &app;
        async move {
            app.c()
                .list_moderation_log(user_pb::ListModerationLogRequest {
                    room: "lobby".into(),
                    actor: actor.into(),
                    before: 0,
                    limit: 2,
                })
                .await
        }
    };
    let page = log("mod").await.unwrap().into_inner();
    let actions: Vec<&str> = page.entries.iter().map(|e| e.action.as_str()).collect();
    assert_eq!(actions, ["unmute", "mute"]);
    assert!(page.has_more);
    assert_eq!(log("fan").await.unwrap_err().code(), Code::PermissionDenied);
    let all = app
        .c()
        .list_moderation_log(user_pb::ListModerationLogRequest {
            room: "lobby".into(),
            actor: "mod".into(),
            before: page.entries[1].id,
            limit: 100,
        })
        .await
        .unwrap()
        .into_inner();
    let rest: Vec<(&str, &str)> = all
        .entries
        .iter()
        .map(|e| (e.action.as_str(), e.reason.as_str()))
        .collect();
    assert_eq!(rest, [("ban", "cool off"), ("unban", ""), ("ban", "")]);
}
