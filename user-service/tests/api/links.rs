//! Invite links: made by those who may invite, shown once, joined with by
//! anyone holding the code; expiry, a use count that holds under concurrent
//! uses, revocation, bans, and the per-room bound.

use proto::user::v1::{self as user_pb, ModerationAction as A};
use tonic::Code;

use crate::helpers::{TestApp, spawn_app};

fn create(room: &str, actor: &str) -> user_pb::CreateInviteLinkRequest {
    user_pb::CreateInviteLinkRequest {
        room: room.into(),
        actor: actor.into(),
        expires_in_secs: None,
        max_uses: None,
    }
}

async fn use_link(app: &TestApp, code: &str, user: &str) -> Result<user_pb::Room, tonic::Status> {
    app.c()
        .use_invite_link(user_pb::UseInviteLinkRequest {
            code: code.into(),
            username: user.into(),
        })
        .await
        .map(|r| r.into_inner())
}

async fn links(app: &TestApp, room: &str, actor: &str) -> Vec<user_pb::InviteLink> {
    app.c()
        .list_invite_links(user_pb::RoomActorRequest {
            room: room.into(),
            actor: actor.into(),
            after: String::new(),
        })
        .await
        .unwrap()
        .into_inner()
        .links
}

async fn pool(app: &TestApp) -> sqlx::PgPool {
    sqlx::PgPool::connect(&app.storage.database_url())
        .await
        .unwrap()
}

#[tokio::test]
async fn a_link_lets_its_holder_into_a_private_room_and_is_shown_once() {
    let app = spawn_app().await;
    for u in ["owner", "member", "guest", "stranger"] {
        app.register(u).await;
    }
    app.create_room_with("den", "owner", Some("private"))
        .await
        .unwrap();
    let e = app
        .c()
        .create_invite_link(create("den", "stranger"))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::NotFound, "a stranger learns nothing: {e:?}");
    let link = app
        .c()
        .create_invite_link(create("den", "owner"))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(link.code.len(), 32);
    assert!(link.code.bytes().all(|b| b.is_ascii_hexdigit()));
    assert_eq!((link.uses, link.max_uses, link.expires_at), (0, None, None));

    let joined = use_link(&app, &link.code, "member").await.unwrap();
    assert_eq!(
        (joined.name.as_str(), joined.role.as_str()),
        ("den", "member")
    );
    // A plain member may not make links.
    let e = app
        .c()
        .create_invite_link(create("den", "member"))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::PermissionDenied, "{e:?}");
    // Using it again as a member uses nothing.
    use_link(&app, &link.code, "member").await.unwrap();
    let listed = links(&app, "den", "owner").await;
    assert_eq!(listed.len(), 1);
    assert_eq!((listed[0].id, listed[0].uses), (link.id, 1));
    assert!(listed[0].code.is_empty(), "the code is shown once");
    // Only its hash is stored.
    let stored: Vec<u8> = sqlx::query_scalar("SELECT code_hash FROM room_invite_links")
        .fetch_one(&pool(&app).await)
        .await
        .unwrap();
    assert_ne!(stored, link.code.as_bytes());
    assert_eq!(stored.len(), 32);

    for (code, want) in [
        ("0".repeat(32), Code::NotFound),
        ("not a code".into(), Code::InvalidArgument),
        (link.code.to_uppercase(), Code::InvalidArgument),
    ] {
        let e = use_link(&app, &code, "guest").await.unwrap_err();
        assert_eq!(e.code(), want, "{code}: {e:?}");
    }

    app.c()
        .revoke_invite_link(user_pb::RevokeInviteLinkRequest {
            room: "den".into(),
            actor: "owner".into(),
            id: link.id,
        })
        .await
        .unwrap();
    let e = use_link(&app, &link.code, "guest").await.unwrap_err();
    assert_eq!(e.code(), Code::NotFound, "revoked: {e:?}");
    let again = app
        .c()
        .revoke_invite_link(user_pb::RevokeInviteLinkRequest {
            room: "den".into(),
            actor: "owner".into(),
            id: link.id,
        })
        .await
        .unwrap_err();
    assert_eq!(again.code(), Code::NotFound);

    let log = app
        .c()
        .list_moderation_log(user_pb::ListModerationLogRequest {
            room: "den".into(),
            actor: "owner".into(),
            before: 0,
            limit: 10,
        })
        .await
        .unwrap()
        .into_inner()
        .entries;
    let actions: Vec<&str> = log.iter().map(|e| e.action.as_str()).collect();
    assert_eq!(actions, ["revoke_link", "join_by_link", "invite_link"]);
}

#[tokio::test]
async fn a_links_uses_hold_under_concurrent_joins_and_expired_links_stop() {
    let app = spawn_app().await;
    app.register("owner").await;
    let guests: Vec<String> = (0..8).map(|i| format!("guest_{i}")).collect();
    for g in &guests {
        app.register(g).await;
    }
    app.create_room("hall", "owner").await.unwrap();
    let link = app
        .c()
        .create_invite_link(user_pb::CreateInviteLinkRequest {
            max_uses: Some(3),
            expires_in_secs: Some(3600),
            ..create("hall", "owner")
        })
        .await
        .unwrap()
        .into_inner();
    assert!(link.expires_at.is_some());
    let joins =
        futures::future::join_all(guests.iter().map(|g| use_link(&app, &link.code, g))).await;
    let ok = joins.iter().filter(|j| j.is_ok()).count();
    assert_eq!(ok, 3, "{joins:?}");
    assert!(
        joins
            .iter()
            .filter_map(|j| j.as_ref().err())
            .all(|e| e.code() == Code::NotFound),
        "{joins:?}"
    );
    assert!(
        links(&app, "hall", "owner").await.is_empty(),
        "a used-up link is not listed"
    );

    // An expired link lets nobody in.
    let timed = app
        .c()
        .create_invite_link(create("hall", "owner"))
        .await
        .unwrap()
        .into_inner();
    sqlx::query(
        "UPDATE room_invite_links SET expires_at = now() - interval '1 second' WHERE id = $1",
    )
    .bind(timed.id)
    .execute(&pool(&app).await)
    .await
    .unwrap();
    let (late, _) = guests.iter().zip(&joins).find(|(_, j)| j.is_err()).unwrap();
    let e = use_link(&app, &timed.code, late).await.unwrap_err();
    assert_eq!(e.code(), Code::NotFound, "{e:?}");

    for bad in [
        user_pb::CreateInviteLinkRequest {
            expires_in_secs: Some(59),
            ..create("hall", "owner")
        },
        user_pb::CreateInviteLinkRequest {
            expires_in_secs: Some(2_592_001),
            ..create("hall", "owner")
        },
        user_pb::CreateInviteLinkRequest {
            max_uses: Some(0),
            ..create("hall", "owner")
        },
        user_pb::CreateInviteLinkRequest {
            max_uses: Some(1001),
            ..create("hall", "owner")
        },
    ] {
        let e = app.c().create_invite_link(bad).await.unwrap_err();
        assert_eq!(e.code(), Code::InvalidArgument, "{e:?}");
    }
}

#[tokio::test]
async fn a_banned_user_cannot_use_a_link_and_a_room_holds_twenty_working_links() {
    let app = spawn_app().await;
    app.register("owner").await;
    app.register("eve").await;
    app.create_room("club", "owner").await.unwrap();
    let link = app
        .c()
        .create_invite_link(create("club", "owner"))
        .await
        .unwrap()
        .into_inner();
    app.moderate("club", "owner", A::Ban, "eve").await.unwrap();
    let e = use_link(&app, &link.code, "eve").await.unwrap_err();
    assert_eq!(e.code(), Code::PermissionDenied, "{e:?}");

    for _ in 1..20 {
        app.c()
            .create_invite_link(create("club", "owner"))
            .await
            .unwrap();
    }
    let e = app
        .c()
        .create_invite_link(create("club", "owner"))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::FailedPrecondition, "{e:?}");
    // Links that stopped working make room, and are dropped.
    let db = pool(&app).await;
    sqlx::query(
        "UPDATE room_invite_links SET expires_at = now() - interval '1 second' WHERE id = $1",
    )
    .bind(link.id)
    .execute(&db)
    .await
    .unwrap();
    app.c()
        .create_invite_link(create("club", "owner"))
        .await
        .unwrap();
    let rows: i64 = sqlx::query_scalar("SELECT count(*) FROM room_invite_links")
        .fetch_one(&db)
        .await
        .unwrap();
    assert_eq!(rows, 20);
}
