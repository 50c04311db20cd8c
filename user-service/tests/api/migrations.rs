use user_service::startup::{Application, MIGRATOR};

use crate::helpers::{config, spawn_app};

#[tokio::test]
async fn migrations_run_twice_and_from_replicas_at_once() {
    let app = spawn_app().await;
    app.register("alice").await;
    // A second and third instance on the same database start together.
    let url = app.storage.database_url();
    let (a, b) = tokio::join!(
        Application::build(config(&app.storage)),
        Application::build(config(&app.storage))
    );
    a.expect("second instance starts");
    b.expect("third instance starts");
    let pool = sqlx::PgPool::connect(&url).await.unwrap();
    MIGRATOR
        .run(&pool)
        .await
        .expect("migrations are idempotent");
    let users: i64 = sqlx::query_scalar("SELECT count(*) FROM users")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(users, 1, "migrating again keeps the data");
}

/// The sessions migration on a database that already holds users: they
/// keep their accounts and passwords, and log in into a session.
#[tokio::test]
async fn users_from_before_sessions_keep_their_accounts() {
    let storage = testkit::Storage::with_postgres().await;
    let pool = sqlx::PgPool::connect(&storage.database_url())
        .await
        .unwrap();
    // The schema as the first migration left it, with a user in it.
    let first = tempdir_with_first_migration();
    sqlx::migrate::Migrator::new(first.as_path())
        .await
        .unwrap()
        .run(&pool)
        .await
        .unwrap();
    let before: i64 = sqlx::query_scalar("SELECT count(*) FROM _sqlx_migrations")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(before, 1);
    let hash = user_service::password::Hasher::new(1, 1)
        .hash("password123".into())
        .await
        .unwrap();
    sqlx::query(
        "INSERT INTO users (username, display_name, password_hash) VALUES ('olduser', 'Old', $1)",
    )
    .bind(&hash)
    .execute(&pool)
    .await
    .unwrap();

    let app = crate::helpers::spawn_on(storage, &[]).await;
    let auth = app
        .c()
        .authenticate(proto::user::v1::AuthenticateRequest {
            username: "olduser".into(),
            password: "password123".into(),
            device: "upgraded".into(),
            client_addr: String::new(),
        })
        .await
        .expect("an old account logs in")
        .into_inner();
    assert_eq!(auth.username, "olduser");
    let deleted: Option<chrono::DateTime<chrono::Utc>> =
        sqlx::query_scalar("SELECT deleted_at FROM users WHERE username = 'olduser'")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert!(deleted.is_none());
    let _ = std::fs::remove_dir_all(&first);
}

/// A directory holding only the first migration.
fn tempdir_with_first_migration() -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("user-migrations-{}", rand::random::<u64>()));
    std::fs::create_dir_all(&dir).unwrap();
    let name = "0001_users_rooms_memberships.sql";
    let source = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("migrations")
        .join(name);
    std::fs::copy(source, dir.join(name)).unwrap();
    dir
}
