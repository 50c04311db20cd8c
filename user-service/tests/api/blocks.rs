//! Blocks: idempotent, bounded per blocker, bumping the blocker's version,
//! refusing the blocked user's invites and dropping their pending ones, and
//! hiding the blocker's presence in a room's member list.

use proto::user::v1 as user_pb;
use redis::AsyncCommands;
use tonic::Code;

use crate::helpers::{TestApp, spawn_app};

fn req(user: &str, target: &str) -> user_pb::BlockRequest {
    user_pb::BlockRequest {
        user: user.into(),
        target: target.into(),
    }
}

async fn blocked(app: &TestApp, user: &str) -> Vec<String> {
    app.c()
        .get_blocks(user_pb::GetBlocksRequest {
            usernames: vec![user.into()],
        })
        .await
        .unwrap()
        .into_inner()
        .users
        .remove(0)
        .blocked
        .into_iter()
        .map(|b| b.username)
        .collect()
}

#[tokio::test]
async fn blocking_is_idempotent_versioned_and_checked() {
    let app = spawn_app().await;
    app.register("alice").await;
    app.register("bob").await;
    let mut redis = app.storage.redis().await;
    let key = app.storage.key("{user:alice}:blocks:v");

    let first = app
        .c()
        .block(req("alice", "bob"))
        .await
        .unwrap()
        .into_inner();
    let again = app
        .c()
        .block(req("alice", "bob"))
        .await
        .unwrap()
        .into_inner();
    assert!(first.changed && !again.changed);
    assert_eq!(blocked(&app, "alice").await, ["bob"]);
    assert!(blocked(&app, "bob").await.is_empty(), "a block is one-way");
    let v: Option<i64> = redis.get(&key).await.unwrap();
    assert_eq!(v, Some(1), "only a change bumps the version");
    let ttl: i64 = redis.ttl(&key).await.unwrap();
    assert!(ttl > 0, "the version key expires (ttl {ttl})");

    for (r, code) in [
        (req("alice", "alice"), Code::InvalidArgument),
        (req("alice", "nobody"), Code::NotFound),
        (req("alice", "Bad Name"), Code::InvalidArgument),
    ] {
        let e = app.c().block(r).await.unwrap_err();
        assert_eq!(e.code(), code, "{e:?}");
    }
    let v: Option<i64> = redis.get(&key).await.unwrap();
    assert_eq!(v, Some(1), "a refused block bumps nothing");

    let off = app
        .c()
        .unblock(req("alice", "bob"))
        .await
        .unwrap()
        .into_inner();
    let off_again = app
        .c()
        .unblock(req("alice", "bob"))
        .await
        .unwrap()
        .into_inner();
    assert!(off.changed && !off_again.changed);
    assert!(blocked(&app, "alice").await.is_empty());
    let v: Option<i64> = redis.get(&key).await.unwrap();
    assert_eq!(v, Some(2));

    let too_many = user_pb::GetBlocksRequest {
        usernames: (0..101).map(|i| format!("user_{i}")).collect(),
    };
    let e = app.c().get_blocks(too_many).await.unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument);
}

#[tokio::test]
async fn a_user_blocks_at_most_a_thousand_users() {
    let app = spawn_app().await;
    app.register("alice").await;
    // Accounts made in SQL: a thousand password hashes would take minutes.
    let pool = sqlx::PgPool::connect(&app.storage.database_url())
        .await
        .unwrap();
    sqlx::query(
        "INSERT INTO users (username, display_name, password_hash)
         SELECT 'user_' || i, 'u', 'x' FROM generate_series(0, 1000) i",
    )
    .execute(&pool)
    .await
    .unwrap();
    for i in 0..1000 {
        app.c()
            .block(req("alice", &format!("user_{i}")))
            .await
            .unwrap_or_else(|e| panic!("block {i}: {e:?}"));
    }
    let e = app.c().block(req("alice", "user_1000")).await.unwrap_err();
    assert_eq!(e.code(), Code::FailedPrecondition, "{e:?}");
    // Re-blocking one already blocked is still fine at the bound.
    let again = app
        .c()
        .block(req("alice", "user_5"))
        .await
        .unwrap()
        .into_inner();
    assert!(!again.changed);
    let count: i64 = sqlx::query_scalar("SELECT count(*) FROM user_blocks")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(count, 1000);
    assert_eq!(blocked(&app, "alice").await.len(), 1000);
    // Unblocking one makes room for another.
    app.c().unblock(req("alice", "user_0")).await.unwrap();
    app.c().block(req("alice", "user_1000")).await.unwrap();
}

#[tokio::test]
async fn a_blocked_user_cannot_invite_and_their_invites_go() {
    let app = spawn_app().await;
    for u in ["alice", "bob", "carol"] {
        app.register(u).await;
    }
    for room in ["one", "two"] {
        app.create_room(room, "bob").await.unwrap();
    }
    let invite = |room: &'static str, actor: &'static str, user: &'static str| {
        let mut c = app.c();
        async move {
            c.invite(user_pb::InviteRequest {
                room: room.into(),
                actor: actor.into(),
                username: user.into(),
            })
            .await
        }
    };
    invite("one", "bob", "alice").await.unwrap();
    app.c().block(req("alice", "bob")).await.unwrap();
    let pending = app
        .c()
        .list_invites(user_pb::ListInvitesRequest {
            username: "alice".into(),
        })
        .await
        .unwrap()
        .into_inner()
        .invites;
    assert!(pending.is_empty(), "{pending:?}");
    let e = invite("two", "bob", "alice").await.unwrap_err();
    assert_eq!(e.code(), Code::PermissionDenied, "{e:?}");
    assert!(!e.message().contains("block"), "{}", e.message());
    // Others still may invite her.
    app.c()
        .join_room(TestApp::membership("two", "carol"))
        .await
        .unwrap();
    app.c()
        .moderate(user_pb::ModerateRequest {
            room: "two".into(),
            actor: "bob".into(),
            action: user_pb::ModerationAction::SetRole.into(),
            target: "carol".into(),
            role: "admin".into(),
            ..Default::default()
        })
        .await
        .unwrap();
    invite("two", "carol", "alice").await.unwrap();
}

#[tokio::test]
async fn blocked_by_names_the_rooms_members_who_blocked_the_user() {
    let app = spawn_app().await;
    for u in ["alice", "bob", "carol", "dave"] {
        app.register(u).await;
    }
    app.create_room("lounge", "alice").await.unwrap();
    app.c()
        .join_room(TestApp::membership("lounge", "bob"))
        .await
        .unwrap();
    app.c().block(req("alice", "bob")).await.unwrap();
    // dave blocks bob too, but is not in the room.
    app.c().block(req("dave", "bob")).await.unwrap();
    let by = |user: &'static str| {
        let mut c = app.c();
        async move {
            c.blocked_by(user_pb::BlockedByRequest {
                username: user.into(),
                room: "lounge".into(),
            })
            .await
            .unwrap()
            .into_inner()
            .usernames
        }
    };
    assert_eq!(by("bob").await, ["alice"]);
    assert!(by("carol").await.is_empty());
}
