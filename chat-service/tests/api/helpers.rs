//! Spawns upstreams and chat-service workers on port 0 with fresh storage, and
//! plays the part of a gateway: XADD to the ingress stream, presence entries,
//! and a subscription to the gateway's delivery channel.

use std::time::Duration;

use chat_model::{
    ids::Target,
    message::{EntryKind, INGRESS_FIELD, IngressEntry},
};
use chat_redis::keys::Keys;
use chat_service::{config::Config, startup::Application};
use proto::{
    history::v1::{self as history_pb, history_service_client::HistoryServiceClient},
    user::v1::{self as user_pb, user_service_client::UserServiceClient},
};
use redis::AsyncCommands;
use serde_json::Value;
use service_kit::{auth::InternalChannel, grpc::internal_channel};
use testkit::{SERVICE_TOKEN, Storage};
use tokio::sync::mpsc;

pub const GATEWAY: &str = "gw-test";

pub struct TestEnv {
    pub storage: Storage,
    pub keys: Keys,
    pub users: UserServiceClient<InternalChannel>,
    pub history: HistoryServiceClient<InternalChannel>,
    user_url: String,
    history_url: String,
    max_message_bytes: usize,
}

pub async fn spawn_env() -> TestEnv {
    spawn_env_with(4 << 20).await
}

/// An environment whose history-service accepts gRPC messages of at most
/// `max_message_bytes` (workers get the same limit from `worker_config`).
pub async fn spawn_env_with(max_message_bytes: usize) -> TestEnv {
    let storage = Storage::with_postgres().await;
    // Membership events are user-service's: these tests write the ingress
    // entries they need themselves (`member_entry`), so a room's seqs are
    // its test's alone.
    let user_url = test_stack::user_service_with(
        &storage,
        &testkit::config::settings(&[("MEMBERSHIP_EVENTS", "false")]),
    )
    .await;
    let history_url = test_stack::history_service_with(
        &storage,
        &user_url,
        &testkit::config::settings(&[("GRPC_MAX_MESSAGE_BYTES", max_message_bytes)]),
    )
    .await;
    TestEnv {
        keys: Keys::new(storage.redis_prefix.clone()),
        users: UserServiceClient::new(internal_channel(&user_url, SERVICE_TOKEN).unwrap()),
        history: HistoryServiceClient::new(internal_channel(&history_url, SERVICE_TOKEN).unwrap()),
        storage,
        user_url,
        history_url,
        max_message_bytes,
    }
}

impl TestEnv {
    /// A worker's configuration as production parses it, on this test's
    /// storage and upstreams: the defaults, but for what the tests need.
    pub fn worker_config(&self, consumer: &str) -> Config {
        let mut s = testkit::config::base(&self.storage);
        s.extend(testkit::config::settings(&[
            ("USER_SERVICE_URL", self.user_url.clone()),
            ("HISTORY_SERVICE_URL", self.history_url.clone()),
            ("CONSUMER_NAME", consumer.to_owned()),
            ("BATCH_SIZE", "50".into()),
            // A test decides when a batch lingers.
            ("BATCH_LINGER_MS", "0".into()),
            ("MAX_DELIVERIES", "3".into()),
            ("DEDUP_TTL_SECS", "3600".into()),
            ("MEMBERSHIP_TTL_MS", "100".into()),
            ("GRPC_MAX_MESSAGE_BYTES", self.max_message_bytes.to_string()),
        ]));
        testkit::config::parse("chat-service", &s)
    }

    pub async fn spawn_worker(&self, config: Config) {
        self.spawn_worker_ops(config).await;
    }

    /// user-service's internal URL.
    pub fn user_url(&self) -> &str {
        &self.user_url
    }

    /// history-service's internal URL.
    pub fn history_url(&self) -> &str {
        &self.history_url
    }

    /// Starts a worker; returns its ops port.
    pub async fn spawn_worker_ops(&self, config: Config) -> u16 {
        let app = Application::build(config).await.expect("chat-service");
        let port = app.ops_port();
        tokio::spawn(app.run_until(std::future::pending()));
        port
    }

    pub async fn user(&self, name: &str) {
        self.users
            .clone()
            .register(user_pb::RegisterRequest {
                username: name.into(),
                password: "password123".into(),
                display_name: None,
            })
            .await
            .unwrap();
    }

    pub async fn room(&self, name: &str, members: &[&str]) {
        self.users
            .clone()
            .create_room(user_pb::CreateRoomRequest {
                name: name.into(),
                topic: None,
                creator: members[0].into(),
                visibility: None,
            })
            .await
            .unwrap();
        for m in &members[1..] {
            self.users
                .clone()
                .join_room(user_pb::RoomMembershipRequest {
                    room: name.into(),
                    username: (*m).into(),
                })
                .await
                .unwrap();
        }
    }

    /// Plays a live gateway holding sockets of `users`.
    pub async fn gateway_online(&self, users: &[&str]) {
        let mut redis = self.storage.redis().await;
        let _: () = redis
            .zadd(self.keys.gateways(), GATEWAY, chat_model::time::now_ms())
            .await
            .unwrap();
        for u in users {
            let _: () = redis
                .hincr(self.keys.gateway_users(GATEWAY), *u, 1)
                .await
                .unwrap();
        }
    }

    /// Subscribes to the test gateway's channel; every frame arrives on the
    /// receiver with its routing fields alongside, numbered by pub/sub
    /// message (`payload`) and by delivery within it (`delivery`).
    pub async fn subscribe(&self) -> mpsc::UnboundedReceiver<Value> {
        let mut messages =
            testkit::redis::subscribe_sharded(&self.keys.gateway_channel(GATEWAY)).await;
        let (tx, rx) = mpsc::unbounded_channel();
        tokio::spawn(async move {
            let mut payload = 0_u64;
            while let Some(msg) = messages.recv().await {
                let (_, json) = chat_model::message::open_envelope(&msg);
                let deliveries: Vec<Value> = serde_json::from_slice(json).unwrap();
                // One item per frame, with the routing fields beside it, so
                // tests look at frames, whichever delivery grouped them.
                payload += 1;
                for (delivery, d) in deliveries.iter().enumerate() {
                    for f in d["frames"].as_array().cloned().unwrap_or_default() {
                        let item = serde_json::json!({
                            "payload": payload,
                            "delivery": delivery,
                            "users": d["users"],
                            "conn": f["conn"],
                            "skip_conn": f["skip_conn"],
                            "frame": f["frame"],
                        });
                        if tx.send(item).is_err() {
                            return;
                        }
                    }
                }
            }
        });
        rx
    }

    pub async fn xadd(&self, user: &str, conn: u64, client_id: &str, to: &str, body: &str) {
        let entry = IngressEntry {
            v: chat_model::message::FORMAT_VERSION,
            kind: EntryKind::Send,
            user: user.into(),
            gw: GATEWAY.into(),
            conn,
            client_id: client_id.into(),
            to: Target::parse(to).expect("a valid target"),
            body: body.into(),
            target_seq: None,
            at: None,
            trace: None,
            member: None,
        };
        self.xadd_raw(&serde_json::to_string(&entry).unwrap()).await;
    }

    /// An ingress entry as the gateway writes one: `kind` with `target_seq`
    /// for an edit or delete.
    pub fn entry(
        user: &str,
        client_id: &str,
        to: &str,
        kind: EntryKind,
        target_seq: Option<u64>,
        body: &str,
    ) -> String {
        let entry = IngressEntry {
            v: chat_model::message::FORMAT_VERSION,
            kind,
            user: user.into(),
            gw: GATEWAY.into(),
            conn: 3,
            client_id: client_id.into(),
            to: Target::parse(to).expect("a valid target"),
            body: body.into(),
            target_seq,
            at: None,
            trace: None,
            member: None,
        };
        serde_json::to_string(&entry).unwrap()
    }

    /// A membership event's ingress entry as user-service's relay writes
    /// one: `actor` did `action` to `user` in `room`, outbox row `row`.
    pub fn member_entry(row: u64, room: &str, actor: &str, action: &str, user: &str) -> String {
        let member = chat_model::message::MemberEvent {
            action: chat_model::message::MemberAction::parse(action).expect("an action"),
            user: user.into(),
            role: None,
        };
        let entry = IngressEntry {
            v: chat_model::message::FORMAT_VERSION,
            kind: EntryKind::Member,
            body: member.text(actor),
            user: actor.into(),
            gw: String::new(),
            conn: 0,
            client_id: format!("evt-{row}"),
            to: Target::Room(room.into()),
            target_seq: None,
            at: None,
            trace: None,
            member: Some(member),
        };
        serde_json::to_string(&entry).unwrap()
    }

    /// Adds `fields` (ingress entries) to the stream in one MULTI: a worker
    /// blocked on it reads them all in one batch.
    pub async fn xadd_together(&self, fields: &[String]) {
        let mut redis = self.storage.redis().await;
        let mut pipe = redis::pipe();
        pipe.atomic();
        for f in fields {
            pipe.xadd(self.keys.ingress(0), "*", &[(INGRESS_FIELD, f.as_str())])
                .ignore();
        }
        let () = pipe.query_async(&mut redis).await.unwrap();
    }

    pub async fn xadd_raw(&self, field: &str) {
        let mut redis = self.storage.redis().await;
        let _: String = redis
            .xadd(self.keys.ingress(0), "*", &[(INGRESS_FIELD, field)])
            .await
            .unwrap();
    }

    /// Plays a worker that read an entry (a DM from `user` to bob, on
    /// connection 3) and died before acknowledging it:
    /// the entry stays pending on `consumer`. Returns its stream id.
    pub async fn orphan(&self, consumer: &str, user: &str, client_id: &str, body: &str) -> String {
        let mut redis = self.storage.redis().await;
        let created: redis::RedisResult<()> = redis
            .xgroup_create_mkstream(self.keys.ingress(0), "chat-service", "0")
            .await;
        if let Err(e) = created {
            assert_eq!(e.code(), Some("BUSYGROUP"), "{e}");
        }
        self.xadd(user, 3, client_id, "user:bob", body).await;
        let read: redis::streams::StreamReadReply = redis
            .xread_options(
                &[self.keys.ingress(0)],
                &[">"],
                &redis::streams::StreamReadOptions::default().group("chat-service", consumer),
            )
            .await
            .unwrap();
        assert_eq!(read.keys[0].ids.len(), 1);
        read.keys[0].ids[0].id.clone()
    }

    /// Waits for the dead-letter stream to hold something; returns its entries.
    pub async fn dead_letters(&self) -> Vec<redis::streams::StreamId> {
        let redis = self.storage.redis().await;
        let key = self.keys.dead_letter(0);
        testkit::eventually("a dead-letter entry", Duration::from_secs(15), || {
            let mut redis = redis.clone();
            let key = key.clone();
            async move {
                let r: redis::streams::StreamRangeReply = redis.xrange_all(key).await.ok()?;
                (!r.ids.is_empty()).then_some(r.ids)
            }
        })
        .await
    }

    /// Entries on the ingress stream (done ones are deleted).
    pub async fn stream_len(&self) -> usize {
        let mut redis = self.storage.redis().await;
        redis.xlen(self.keys.ingress(0)).await.unwrap()
    }

    /// Entries read but not acknowledged, across the group.
    pub async fn pending(&self) -> usize {
        let mut redis = self.storage.redis().await;
        let pending: redis::streams::StreamPendingReply = redis
            .xpending(self.keys.ingress(0), "chat-service")
            .await
            .unwrap();
        pending.count()
    }

    pub async fn history(&self, conversation: &str) -> Vec<history_pb::Message> {
        self.history
            .clone()
            .get_history(history_pb::GetHistoryRequest {
                conversation_id: conversation.into(),
                before_seq: None,
                after_seq: None,
                limit: Some(200),
            })
            .await
            .unwrap()
            .into_inner()
            .messages
    }

    pub async fn offline(&self, user: &str) -> Vec<history_pb::Message> {
        self.history
            .clone()
            .list_offline(history_pb::ListOfflineRequest {
                username: user.into(),
            })
            .await
            .unwrap()
            .into_inner()
            .messages
    }
}

/// The next delivery whose frame has type `kind`.
pub async fn next_of(rx: &mut mpsc::UnboundedReceiver<Value>, kind: &str) -> Value {
    testkit::within(
        &format!("a {kind} delivery"),
        Duration::from_secs(15),
        async {
            loop {
                let d = rx.recv().await.expect("subscription open");
                if d["frame"]["type"] == kind {
                    return d;
                }
            }
        },
    )
    .await
}
