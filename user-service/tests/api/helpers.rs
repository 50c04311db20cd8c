//! Spawns user-service on port 0 with a fresh PostgreSQL database.

use proto::user::v1::{self as user_pb, user_service_client::UserServiceClient};
use service_kit::{auth::InternalChannel, grpc::internal_channel};
use testkit::{SERVICE_TOKEN, Storage};
use user_service::{config::Config, startup::Application};

pub struct TestApp {
    pub client: UserServiceClient<InternalChannel>,
    pub storage: Storage,
    pub ops_port: u16,
    pub port: u16,
}

/// The configuration production would parse, on this test's storage.
pub fn config(storage: &Storage) -> Config {
    config_with(storage, &[])
}

/// The same, with `more` settings by their README names.
pub fn config_with(storage: &Storage, more: &[(&'static str, &str)]) -> Config {
    let mut s = testkit::config::base_with_jwt(storage);
    s.extend(testkit::config::settings(&[
        ("DATABASE_URL", storage.database_url()),
        ("TOKEN_TTL_SECS", "3600".into()),
        ("DB_MAX_CONNECTIONS", "5".into()),
    ]));
    s.extend(more.iter().map(|(k, v)| (*k, (*v).to_owned())));
    testkit::config::parse("user-service", &s)
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(&[]).await
}

pub async fn spawn_app_with(more: &[(&'static str, &str)]) -> TestApp {
    let storage = Storage::with_postgres().await;
    spawn_on(storage, more).await
}

/// user-service on `storage`, whose database may hold data already.
pub async fn spawn_on(storage: Storage, more: &[(&'static str, &str)]) -> TestApp {
    let app = Application::build(config_with(&storage, more))
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

    pub async fn register(&self, username: &str) -> user_pb::User {
        self.c()
            .register(user_pb::RegisterRequest {
                username: username.to_owned(),
                password: "password123".to_owned(),
                display_name: None,
            })
            .await
            .expect("register")
            .into_inner()
    }

    pub async fn create_room(
        &self,
        name: &str,
        creator: &str,
    ) -> Result<user_pb::Room, tonic::Status> {
        self.create_room_with(name, creator, None).await
    }

    /// A room of `visibility` ("public", "private"; None: the default).
    pub async fn create_room_with(
        &self,
        name: &str,
        creator: &str,
        visibility: Option<&str>,
    ) -> Result<user_pb::Room, tonic::Status> {
        self.c()
            .create_room(user_pb::CreateRoomRequest {
                name: name.to_owned(),
                topic: None,
                creator: creator.to_owned(),
                visibility: visibility.map(str::to_owned),
            })
            .await
            .map(|r| r.into_inner())
    }

    /// `actor` takes `action` on `target` in `room`.
    pub async fn moderate(
        &self,
        room: &str,
        actor: &str,
        action: user_pb::ModerationAction,
        target: &str,
    ) -> Result<(), tonic::Status> {
        self.c()
            .moderate(user_pb::ModerateRequest {
                room: room.to_owned(),
                actor: actor.to_owned(),
                action: action.into(),
                target: target.to_owned(),
                reason: String::new(),
                until_ms: None,
                role: String::new(),
            })
            .await
            .map(|_| ())
    }

    pub fn membership(room: &str, username: &str) -> user_pb::RoomMembershipRequest {
        user_pb::RoomMembershipRequest {
            room: room.to_owned(),
            username: username.to_owned(),
        }
    }
}
