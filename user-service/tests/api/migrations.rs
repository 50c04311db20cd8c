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
    tempdir_with_migrations(&["0001_users_rooms_memberships.sql"])
}

/// A directory holding the migrations `names`.
fn tempdir_with_migrations(names: &[&str]) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("user-migrations-{}", rand::random::<u64>()));
    std::fs::create_dir_all(&dir).unwrap();
    for name in names {
        let source = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("migrations")
            .join(name);
        std::fs::copy(source, dir.join(name)).unwrap();
    }
    dir
}

/// The roles migration on rooms as the old rules left them: a room whose
/// creator left had no owner; after it, every room with members has one
/// (the creator if still in, else the longest-standing member), rooms are
/// public, and the new rules hold from then on.
#[tokio::test]
async fn rooms_from_before_roles_get_back_an_owner() {
    let storage = testkit::Storage::with_postgres().await;
    let pool = sqlx::PgPool::connect(&storage.database_url())
        .await
        .unwrap();
    let before = tempdir_with_migrations(&[
        "0001_users_rooms_memberships.sql",
        "0002_sessions_and_deleted_accounts.sql",
    ]);
    sqlx::migrate::Migrator::new(before.as_path())
        .await
        .unwrap()
        .run(&pool)
        .await
        .unwrap();
    sqlx::raw_sql(
        "INSERT INTO users (username, display_name, password_hash)
             VALUES ('ann', 'Ann', 'x'), ('ben', 'Ben', 'x'), ('cat', 'Cat', 'x');
         INSERT INTO rooms (name, created_by) SELECT 'left', id FROM users WHERE username = 'ann';
         INSERT INTO rooms (name, created_by) SELECT 'kept', id FROM users WHERE username = 'ann';
         -- 'left': ann left; cat joined before ben.
         INSERT INTO memberships (room_id, user_id, role, joined_at)
             SELECT r.id, u.id, 'member', now() - interval '2 days'
             FROM rooms r, users u WHERE r.name = 'left' AND u.username = 'cat';
         INSERT INTO memberships (room_id, user_id, role, joined_at)
             SELECT r.id, u.id, 'member', now() - interval '1 day'
             FROM rooms r, users u WHERE r.name = 'left' AND u.username = 'ben';
         -- 'kept': ann is still its owner.
         INSERT INTO memberships (room_id, user_id, role)
             SELECT r.id, u.id, CASE WHEN u.username = 'ann' THEN 'owner' ELSE 'member' END
             FROM rooms r, users u WHERE r.name = 'kept' AND u.username IN ('ann', 'ben');",
    )
    .execute(&pool)
    .await
    .unwrap();

    let app = crate::helpers::spawn_on(storage, &[]).await;
    let owners = |room: &'static str| {
        let app = &app;
        async move {
            let reply = app
                .c()
                .list_room_members(proto::user::v1::ListRoomMembersRequest { room: room.into() })
                .await
                .unwrap()
                .into_inner();
            let owners: Vec<String> = reply
                .members
                .into_iter()
                .filter(|m| m.role == "owner")
                .map(|m| m.username)
                .collect();
            (owners, reply.visibility)
        }
    };
    assert_eq!(
        owners("left").await,
        (vec!["cat".to_owned()], "public".to_owned())
    );
    assert_eq!(
        owners("kept").await,
        (vec!["ann".to_owned()], "public".to_owned())
    );
    let leave = app
        .c()
        .leave_room(crate::helpers::TestApp::membership("left", "cat"))
        .await
        .unwrap_err();
    assert_eq!(
        leave.code(),
        tonic::Code::FailedPrecondition,
        "the heir is an owner now"
    );
    let _ = std::fs::remove_dir_all(&before);
}
