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
