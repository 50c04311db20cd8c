//! The membership-event outbox and its relay: every committed change is
//! written, in order, to its room's ingress partition as a `member` entry,
//! and leaves the outbox; a change that changes nothing writes nothing;
//! with MEMBERSHIP_EVENTS off, nothing is written at all.

use std::time::Duration;

use chat_model::message::{EntryKind, INGRESS_FIELD, IngressEntry};
use proto::user::v1 as user_pb;
use redis::AsyncCommands;

use crate::helpers::{TestApp, spawn_app_with};

const PARTITIONS: usize = 3;

/// The member entries on `room`'s partition, oldest first.
async fn relayed(app: &TestApp, room: &str) -> Vec<IngressEntry> {
    let partition = chat_redis::keys::partition(&format!("room:{room}"), PARTITIONS);
    let key = app.storage.key(&format!("{{ingress:{partition}}}"));
    let mut redis = app.storage.redis().await;
    let r: redis::streams::StreamRangeReply = redis.xrange_all(key).await.unwrap();
    r.ids
        .iter()
        .map(|e| serde_json::from_str(&e.get::<String>(INGRESS_FIELD).unwrap()).unwrap())
        .collect()
}

async fn outbox_rows(app: &TestApp) -> i64 {
    let pool = sqlx::PgPool::connect(&app.storage.database_url())
        .await
        .unwrap();
    sqlx::query_scalar("SELECT count(*) FROM room_event_outbox")
        .fetch_one(&pool)
        .await
        .unwrap()
}

async fn changes(app: &TestApp) {
    for u in ["alice", "bob", "carol"] {
        app.register(u).await;
    }
    app.create_room("general", "alice").await.unwrap();
    for u in ["bob", "carol", "bob"] {
        app.c()
            .join_room(TestApp::membership("general", u))
            .await
            .unwrap();
    }
    app.c()
        .moderate(user_pb::ModerateRequest {
            room: "general".into(),
            actor: "alice".into(),
            action: user_pb::ModerationAction::SetRole.into(),
            target: "bob".into(),
            reason: String::new(),
            until_ms: None,
            role: "admin".into(),
        })
        .await
        .unwrap();
    use user_pb::ModerationAction as A;
    for (actor, action) in [
        ("bob", A::Mute),
        ("bob", A::Kick),
        ("bob", A::Ban),
        ("alice", A::Unban),
        ("alice", A::Transfer),
    ] {
        // A mute is no membership change: no event.
        let target = if action == A::Transfer {
            "bob"
        } else {
            "carol"
        };
        app.moderate("general", actor, action, target)
            .await
            .unwrap();
    }
    app.c()
        .leave_room(TestApp::membership("general", "alice"))
        .await
        .unwrap();
}

#[tokio::test]
async fn each_change_reaches_its_rooms_partition_in_order_and_leaves_the_outbox() {
    let app = spawn_app_with(&[("INGRESS_PARTITIONS", "3")]).await;
    changes(&app).await;
    let entries =
        testkit::wait::eventually("eight events relayed", Duration::from_secs(10), || async {
            let e = relayed(&app, "general").await;
            (e.len() >= 8).then_some(e)
        })
        .await;
    let seen: Vec<(String, String, String, Option<String>, String)> = entries
        .iter()
        .map(|e| {
            assert_eq!(
                (e.kind, e.gw.as_str(), e.to.to_string()),
                (EntryKind::Member, "", "room:general".to_owned())
            );
            let m = e.member.as_ref().expect("a member event");
            (
                e.user.clone(),
                m.action.as_str().to_owned(),
                m.user.clone(),
                m.role.clone(),
                e.body.clone(),
            )
        })
        .collect();
    let row = |actor: &str, action: &str, user: &str, role: Option<&str>, body: &str| {
        (
            actor.to_owned(),
            action.to_owned(),
            user.to_owned(),
            role.map(str::to_owned),
            body.to_owned(),
        )
    };
    assert_eq!(
        seen,
        [
            row("bob", "join", "bob", None, "bob joined"),
            row("carol", "join", "carol", None, "carol joined"),
            row(
                "alice",
                "role",
                "bob",
                Some("admin"),
                "alice made bob admin"
            ),
            row("bob", "kick", "carol", None, "bob removed carol"),
            row("bob", "ban", "carol", None, "bob banned carol"),
            row(
                "alice",
                "unban",
                "carol",
                None,
                "alice lifted the ban on carol"
            ),
            row(
                "alice",
                "role",
                "bob",
                Some("owner"),
                "alice handed the room to bob"
            ),
            row("alice", "leave", "alice", None, "alice left"),
        ],
        "a rejoin and a mute make none"
    );
    let ids: Vec<u64> = entries
        .iter()
        .map(|e| e.client_id.strip_prefix("evt-").unwrap().parse().unwrap())
        .collect();
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "{ids:?}");
    testkit::wait::eventually("an empty outbox", Duration::from_secs(10), || async {
        (outbox_rows(&app).await == 0).then_some(())
    })
    .await;
    // Nothing went to another partition.
    let mut redis = app.storage.redis().await;
    let mine = chat_redis::keys::partition("room:general", PARTITIONS);
    for p in (0..PARTITIONS).filter(|p| *p != mine) {
        let len: usize = redis
            .xlen(app.storage.key(&format!("{{ingress:{p}}}")))
            .await
            .unwrap();
        assert_eq!(len, 0, "partition {p}");
    }
}

#[tokio::test]
async fn with_membership_events_off_changes_write_no_event() {
    let app = spawn_app_with(&[("INGRESS_PARTITIONS", "3"), ("MEMBERSHIP_EVENTS", "false")]).await;
    changes(&app).await;
    assert_eq!(outbox_rows(&app).await, 0);
    assert!(relayed(&app, "general").await.is_empty());
}

#[tokio::test]
async fn two_replicas_relay_every_event_once() {
    let app = spawn_app_with(&[("INGRESS_PARTITIONS", "3")]).await;
    let other = user_service::startup::Application::build(crate::helpers::config_with(
        &app.storage,
        &[("INGRESS_PARTITIONS", "3")],
    ))
    .await
    .expect("a second replica");
    let channel = service_kit::grpc::internal_channel(
        &format!("http://127.0.0.1:{}", other.port()),
        testkit::SERVICE_TOKEN,
    )
    .unwrap();
    tokio::spawn(other.run_until(std::future::pending()));
    let replicas = [
        app.c(),
        proto::user::v1::user_service_client::UserServiceClient::new(channel),
    ];
    app.register("owner").await;
    app.create_room("general", "owner").await.unwrap();
    let names: Vec<String> = (0..10).map(|i| format!("user{i}")).collect();
    for (i, name) in names.iter().enumerate() {
        app.register(name).await;
        replicas[i % 2]
            .clone()
            .join_room(TestApp::membership("general", name))
            .await
            .unwrap();
    }
    let entries =
        testkit::wait::eventually("ten joins relayed", Duration::from_secs(10), || async {
            let e = relayed(&app, "general").await;
            (e.len() >= 10).then_some(e)
        })
        .await;
    let mut ids: Vec<&str> = entries.iter().map(|e| e.client_id.as_str()).collect();
    let joined: Vec<&str> = entries
        .iter()
        .map(|e| e.member.as_ref().unwrap().user.as_str())
        .collect();
    assert_eq!(joined, names, "in the order the joins committed");
    ids.dedup();
    assert_eq!(ids.len(), 10, "each once");
    assert_eq!(outbox_rows(&app).await, 0);
}
