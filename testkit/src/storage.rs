//! Fresh storage for one test: a unique Redis prefix, a new PostgreSQL
//! database and a unique MongoDB database name, so tests run in parallel and
//! reruns start clean.

use sqlx::{Connection, PgConnection};

use crate::redis::TestRedis;
pub use crate::redis::{redis_cluster, redis_url};

pub fn mongodb_uri() -> String {
    std::env::var("TEST_MONGODB_URI")
        .or_else(|_| std::env::var("MONGODB_URI"))
        .unwrap_or_else(|_| "mongodb://127.0.0.1:27018".into())
}

fn postgres_admin_url() -> String {
    std::env::var("TEST_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

pub struct Storage {
    /// Unique id of this test's storage.
    pub id: String,
    pub redis_prefix: String,
    pub mongodb_database: String,
    /// URL of this test's own PostgreSQL database (created on demand).
    pub database_url: Option<String>,
}

impl Storage {
    /// A unique Redis prefix and MongoDB database; no PostgreSQL database.
    pub fn new() -> Self {
        let id = uuid::Uuid::new_v4().simple().to_string()[..12].to_owned();
        Self {
            redis_prefix: format!("test:{id}:"),
            mongodb_database: format!("test_{id}"),
            database_url: None,
            id,
        }
    }

    /// Also creates a fresh PostgreSQL database `test_<id>`.
    pub async fn with_postgres() -> Self {
        let mut storage = Self::new();
        let admin = postgres_admin_url();
        let mut conn = PgConnection::connect(&admin)
            .await
            .unwrap_or_else(|e| panic!("cannot reach PostgreSQL at {admin}: {e}"));
        let name = format!("test_{}", storage.id);
        sqlx::query(&format!("CREATE DATABASE \"{name}\""))
            .execute(&mut conn)
            .await
            .expect("create test database");
        let base = admin.rsplit_once('/').map_or(admin.as_str(), |(b, _)| b);
        storage.database_url = Some(format!("{base}/{name}"));
        storage
    }

    pub fn database_url(&self) -> String {
        self.database_url
            .clone()
            .expect("storage made without PostgreSQL")
    }

    /// A Redis connection for looking at this test's keys (single node or
    /// cluster).
    pub async fn redis(&self) -> TestRedis {
        TestRedis::connect().await
    }

    /// A Redis key of this test, e.g. `key("ingress")`.
    pub fn key(&self, suffix: &str) -> String {
        format!("{}{suffix}", self.redis_prefix)
    }
}

impl Default for Storage {
    fn default() -> Self {
        Self::new()
    }
}
