//! Spawns user-service on port 0 with a fresh PostgreSQL database.

use proto::user::v1::{self as pb, user_service_client::UserServiceClient};
use service_kit::{
    auth::InternalChannel,
    config::{JwtSecretArg, ServiceTokenArg},
    grpc::internal_channel,
};
use testkit::{JWT_SECRET, SERVICE_TOKEN, Storage};
use user_service::{config::Config, startup::Application};

pub struct TestApp {
    pub client: UserServiceClient<InternalChannel>,
    pub storage: Storage,
    pub ops_port: u16,
    pub port: u16,
}

pub fn config(storage: &Storage) -> Config {
    Config {
        database_url: storage.database_url(),
        redis: chat_redis::config::RedisArgs::new(testkit::redis_url(), testkit::redis_cluster()),
        redis_prefix: storage.redis_prefix.clone(),
        database_password_file: None,
        jwt: JwtSecretArg::inline(JWT_SECRET),
        service_token: ServiceTokenArg::inline(SERVICE_TOKEN),
        hash_concurrency: 2,
        hash_queue: 512,
        listen_addr: "127.0.0.1:0".parse().unwrap(),
        ops_addr: "127.0.0.1:0".parse().unwrap(),
        ready_file: None,
        token_ttl_secs: 3600,
        db_max_connections: 5,
        log_format: service_kit::telemetry::LogFormat::Pretty,
    }
}

pub async fn spawn_app() -> TestApp {
    let storage = Storage::with_postgres().await;
    let app = Application::build(config(&storage))
        .await
        .expect("user-service builds");
    let port = app.port();
    let ops_port = app.ops_port();
    tokio::spawn(app.run_until(std::future::pending()));
    let channel =
        internal_channel(&format!("http://127.0.0.1:{port}"), SERVICE_TOKEN).expect("channel");
    TestApp {
        client: UserServiceClient::new(channel),
        storage,
        ops_port,
        port,
    }
}

impl TestApp {
    pub fn c(&self) -> UserServiceClient<InternalChannel> {
        self.client.clone()
    }

    pub async fn register(&self, username: &str) -> pb::User {
        self.c()
            .register(pb::RegisterRequest {
                username: username.to_owned(),
                password: "password123".to_owned(),
                display_name: None,
            })
            .await
            .expect("register")
            .into_inner()
    }

    pub async fn create_room(&self, name: &str, creator: &str) -> Result<pb::Room, tonic::Status> {
        self.c()
            .create_room(pb::CreateRoomRequest {
                name: name.to_owned(),
                topic: None,
                creator: creator.to_owned(),
            })
            .await
            .map(|r| r.into_inner())
    }

    pub fn membership(room: &str, username: &str) -> pb::RoomMembershipRequest {
        pb::RoomMembershipRequest {
            room: room.to_owned(),
            username: username.to_owned(),
        }
    }
}
