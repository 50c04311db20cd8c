//! Spawns history-service on port 0 with a fresh Redis prefix and MongoDB database.

use std::time::Duration;

use chat_model::message::ChatMessage;
use history_service::{config::Config, startup::Application};
use proto::history::{
    internal::v1::{self as internal_pb, history_internal_client::HistoryInternalClient},
    v1::{self as history_pb, history_service_client::HistoryServiceClient},
};
use redis::AsyncCommands;
use service_kit::{auth::InternalChannel, grpc::internal_channel};
use testkit::{SERVICE_TOKEN, Storage};

pub struct TestApp {
    /// The reads, as a service calls them on the internal port.
    pub client: HistoryServiceClient<InternalChannel>,
    /// The writes (internal port).
    pub internal: HistoryInternalClient<InternalChannel>,
    pub storage: Storage,
    pub ops_port: u16,
    /// The public port (a user's JWT required).
    pub public_port: u16,
}

pub struct Options {
    pub offline_limit: u32,
    pub recent_limit: u32,
    pub mongodb_uri: String,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            offline_limit: 100,
            recent_limit: 500,
            mongodb_uri: testkit::mongodb_uri(),
        }
    }
}

pub async fn spawn_app() -> TestApp {
    spawn_with(Options::default()).await
}

pub async fn spawn_with(options: Options) -> TestApp {
    let storage = Storage::new();
    let mut settings = testkit::config::base_with_jwt(&storage);
    settings.extend(testkit::config::settings(&[
        ("MONGODB_URI", options.mongodb_uri.clone()),
        ("MONGODB_DATABASE", storage.mongodb_database.clone()),
        ("INTERNAL_ADDR", "127.0.0.1:0".into()),
        // No user-service here: these tests read as a service, which needs
        // no membership check. The e2e tests cover users' reads.
        ("USER_SERVICE_URL", "http://127.0.0.1:9".into()),
        ("OFFLINE_LIMIT", options.offline_limit.to_string()),
        ("RECENT_LIMIT", options.recent_limit.to_string()),
        ("ARCHIVE_BATCH", "200".into()),
        ("INSTANCE_ID", format!("history-{}", storage.id)),
    ]));
    let config: Config = testkit::config::parse("history-service", &settings);
    let app = Application::build(config)
        .await
        .expect("history-service builds");
    let public_port = app.port();
    let internal = format!("http://127.0.0.1:{}", app.internal_port());
    let ops_port = app.ops_port();
    tokio::spawn(app.run_until(std::future::pending()));
    let channel = internal_channel(&internal, SERVICE_TOKEN).expect("channel");
    TestApp {
        client: HistoryServiceClient::new(channel.clone()),
        internal: HistoryInternalClient::new(channel),
        storage,
        ops_port,
        public_port,
    }
}

pub fn message(conversation: &str, seq: u64, from: &str) -> ChatMessage {
    let target = if conversation.starts_with("room:") {
        conversation.to_owned()
    } else {
        "user:bob".to_owned()
    };
    ChatMessage::new(
        format!("{conversation}-{seq}"),
        chat_model::ids::ConversationId::parse(conversation).expect("a valid id"),
        seq,
        from.to_owned(),
        chat_model::ids::Target::parse(&target).expect("a valid target"),
        format!("message {seq}"),
        1_700_000_000_000 + seq as i64,
        format!("c{seq}"),
    )
}

impl TestApp {
    pub fn c(&self) -> HistoryServiceClient<InternalChannel> {
        self.client.clone()
    }

    pub fn w(&self) -> HistoryInternalClient<InternalChannel> {
        self.internal.clone()
    }

    pub async fn append(&self, messages: &[ChatMessage], offline: &[&str]) {
        let items = messages
            .iter()
            .map(|m| internal_pb::AppendItem {
                message: Some(chat_model::convert::to_pb(m)),
                offline_recipients: offline.iter().map(|s| (*s).to_owned()).collect(),
                ..Default::default()
            })
            .collect();
        self.w()
            .append(internal_pb::AppendRequest {
                items,
                presence_at: 0,
            })
            .await
            .expect("append");
    }

    /// Appends items as chat-service sends them: an event with its target's
    /// new state, a replay marked so. Returns the call's `late` list.
    pub async fn append_items(&self, items: Vec<Item>, presence_at: i64) -> Vec<internal_pb::Late> {
        let items = items
            .into_iter()
            .map(|i| internal_pb::AppendItem {
                message: Some(chat_model::convert::to_pb(&i.message)),
                offline_recipients: i.offline.iter().map(|s| (*s).to_owned()).collect(),
                target: i.target.as_ref().map(chat_model::convert::to_pb),
                replay: i.replay,
            })
            .collect();
        self.w()
            .append(internal_pb::AppendRequest { items, presence_at })
            .await
            .expect("append")
            .into_inner()
            .late
    }

    /// The archived document of `conversation` at `seq`, if any.
    pub async fn archived(&self, conversation: &str, seq: u64) -> Option<mongodb::bson::Document> {
        let client = mongodb::Client::with_uri_str(testkit::mongodb_uri())
            .await
            .unwrap();
        client
            .database(&self.storage.mongodb_database)
            .collection::<mongodb::bson::Document>("messages")
            .find_one(mongodb::bson::doc! {"conversation_id": conversation, "seq": seq as i64})
            .await
            .unwrap()
    }

    /// Every member of a conversation's recent window, as stored.
    pub async fn window(&self, conversation: &str) -> Vec<String> {
        let mut redis = self.storage.redis().await;
        redis
            .zrange(
                self.storage.key(&format!("{{{conversation}}}:recent")),
                0,
                -1,
            )
            .await
            .unwrap()
    }

    /// Acknowledges `user`'s offline batch ending at `last_id`.
    pub async fn ack_offline(&self, user: &str, last_id: &str, dropped: u64) {
        self.w()
            .ack_offline(internal_pb::AckOfflineRequest {
                username: user.to_owned(),
                last_id: last_id.to_owned(),
                dropped,
            })
            .await
            .expect("ack offline");
    }

    pub async fn offline(&self, user: &str) -> history_pb::ListOfflineResponse {
        self.c()
            .list_offline(history_pb::ListOfflineRequest {
                username: user.to_owned(),
            })
            .await
            .expect("list offline")
            .into_inner()
    }

    pub async fn history(
        &self,
        conversation: &str,
        before: Option<u64>,
        after: Option<u64>,
        limit: u32,
    ) -> history_pb::GetHistoryResponse {
        self.c()
            .get_history(history_pb::GetHistoryRequest {
                conversation_id: conversation.to_owned(),
                before_seq: before,
                after_seq: after,
                limit: Some(limit),
            })
            .await
            .expect("get history")
            .into_inner()
    }

    /// Waits until the archive backlog is empty: everything is in MongoDB.
    pub async fn wait_archived(&self) {
        let mut redis = self.storage.redis().await;
        let key = self.storage.key("{archive:0}");
        testkit::eventually(
            "the archive backlog to drain",
            Duration::from_secs(30),
            || {
                let mut redis = redis.clone();
                let key = key.clone();
                async move {
                    let len: u64 = redis.xlen(&key).await.ok()?;
                    (len == 0).then_some(())
                }
            },
        )
        .await;
        let _ = &mut redis;
    }

    pub async fn recent_len(&self, conversation: &str) -> u64 {
        let mut redis = self.storage.redis().await;
        redis
            .zcard(self.storage.key(&format!("{{{conversation}}}:recent")))
            .await
            .unwrap()
    }

    /// Waits until /readyz reports `status`; returns its body.
    pub async fn wait_readyz(&self, status: &str) -> serde_json::Value {
        testkit::eventually(
            &format!("readyz to say {status}"),
            Duration::from_secs(20),
            || async {
                let v = self.readyz().await;
                (v["status"] == status).then_some(v)
            },
        )
        .await
    }

    pub async fn readyz(&self) -> serde_json::Value {
        reqwest::get(format!("http://127.0.0.1:{}/readyz", self.ops_port))
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }
}

/// One item of [`TestApp::append_items`].
pub struct Item {
    pub message: ChatMessage,
    pub offline: Vec<&'static str>,
    pub target: Option<ChatMessage>,
    pub replay: bool,
}

impl Item {
    pub fn new(message: ChatMessage) -> Self {
        Self {
            message,
            offline: Vec::new(),
            target: None,
            replay: false,
        }
    }

    /// An event, with its target's state after it (as chat-service decides it).
    pub fn event(event: ChatMessage, target: &ChatMessage) -> Self {
        let mut state = target.clone();
        state.apply(&event);
        Self {
            target: Some(state),
            ..Self::new(event)
        }
    }

    pub fn to(mut self, offline: &[&'static str]) -> Self {
        self.offline = offline.to_vec();
        self
    }

    pub fn replayed(mut self) -> Self {
        self.replay = true;
        self
    }
}

pub fn seqs(messages: &[history_pb::Message]) -> Vec<u64> {
    messages.iter().map(|m| m.seq).collect()
}
