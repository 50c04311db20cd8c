use proto::user::v1 as user_pb;
use tonic::Code;

use crate::helpers::spawn_app;

fn register_req(username: &str, password: &str) -> user_pb::RegisterRequest {
    user_pb::RegisterRequest {
        username: username.to_owned(),
        password: password.to_owned(),
        display_name: Some("Alice A.".to_owned()),
    }
}

#[tokio::test]
async fn register_authenticate_and_get_user_round_trip() {
    let app = spawn_app().await;
    let user = app
        .c()
        .register(register_req("alice", "correct horse"))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(user.username, "alice");
    assert_eq!(user.display_name, "Alice A.");

    let auth = app
        .c()
        .authenticate(user_pb::AuthenticateRequest {
            username: "alice".into(),
            password: "correct horse".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let claims = service_kit::jwt::verify(testkit::JWT_SECRET, &auth.token).unwrap();
    assert_eq!(claims.sub, "alice");
    assert_eq!(auth.expires_at, claims.exp * 1000);

    let got = app
        .c()
        .get_user(user_pb::GetUserRequest {
            username: "alice".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(got.display_name, "Alice A.");

    // The hash, not the password, is stored, and it is argon2id.
    let hash: String =
        sqlx::query_scalar("SELECT password_hash FROM users WHERE username = 'alice'")
            .fetch_one(
                &sqlx::PgPool::connect(&app.storage.database_url())
                    .await
                    .unwrap(),
            )
            .await
            .unwrap();
    assert!(hash.starts_with("$argon2id$"));
}

#[tokio::test]
async fn wrong_password_and_unknown_user_get_the_same_answer() {
    let app = spawn_app().await;
    app.register("alice").await;
    let mut answers = Vec::new();
    for (username, password) in [
        ("alice", "wrong password"),
        ("nobody", "password123"),
        ("NOT VALID", "x"),
    ] {
        let status = app
            .c()
            .authenticate(user_pb::AuthenticateRequest {
                username: username.into(),
                password: password.into(),
                ..Default::default()
            })
            .await
            .unwrap_err();
        answers.push((status.code(), status.message().to_owned()));
    }
    assert_eq!(answers[0].0, Code::Unauthenticated);
    assert!(answers.iter().all(|a| *a == answers[0]), "{answers:?}");
}

#[tokio::test]
async fn duplicate_username_is_already_exists() {
    let app = spawn_app().await;
    app.register("alice").await;
    let status = app
        .c()
        .register(register_req("alice", "another password"))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::AlreadyExists);
}

#[tokio::test]
async fn concurrent_registrations_of_one_name_yield_exactly_one_user() {
    let app = spawn_app().await;
    let attempts = (0..8).map(|_| {
        let mut c = app.c();
        async move { c.register(register_req("racer", "password123")).await }
    });
    let results = futures::future::join_all(attempts).await;
    let ok = results.iter().filter(|r| r.is_ok()).count();
    assert_eq!(ok, 1, "{results:?}");
    assert!(
        results
            .iter()
            .filter_map(|r| r.as_ref().err())
            .all(|s| s.code() == Code::AlreadyExists)
    );
}

#[tokio::test]
async fn bad_registrations_are_invalid_argument_and_change_nothing() {
    let app = spawn_app().await;
    for (username, password) in [
        ("al", "password123"),
        ("Alice", "password123"),
        ("alice!", "password123"),
        (&"a".repeat(33) as &str, "password123"),
        ("alice", "short"),
        ("alice", &"p".repeat(129) as &str),
    ] {
        let status = app
            .c()
            .register(register_req(username, password))
            .await
            .unwrap_err();
        assert_eq!(
            status.code(),
            Code::InvalidArgument,
            "{username} / {password}"
        );
    }
    let status = app
        .c()
        .register(user_pb::RegisterRequest {
            username: "alice".into(),
            password: "password123".into(),
            display_name: Some("bad\u{7}name".into()),
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    let count: i64 = sqlx::query_scalar("SELECT count(*) FROM users")
        .fetch_one(
            &sqlx::PgPool::connect(&app.storage.database_url())
                .await
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(count, 0);
}

#[tokio::test]
async fn ops_endpoints_answer() {
    let app = spawn_app().await;
    for path in ["healthz", "readyz", "metrics"] {
        let status = reqwest_status(app.ops_port, path).await;
        assert_eq!(status, 200, "/{path}");
    }
}

async fn reqwest_status(port: u16, path: &str) -> u16 {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .unwrap();
    s.write_all(format!("GET /{path} HTTP/1.0\r\nHost: x\r\n\r\n").as_bytes())
        .await
        .unwrap();
    let mut buf = String::new();
    s.read_to_string(&mut buf).await.unwrap();
    buf.split_whitespace().nth(1).unwrap().parse().unwrap()
}

#[tokio::test]
async fn get_users_answers_which_of_many_names_exist() {
    let app = spawn_app().await;
    app.register("alice").await;
    app.register("bob").await;
    let ask = |names: Vec<String>| {
        let mut c = app.c();
        async move {
            c.get_users(user_pb::GetUsersRequest { usernames: names })
                .await
                .map(|r| {
                    let mut found: Vec<String> = r
                        .into_inner()
                        .users
                        .into_iter()
                        .map(|u| u.username)
                        .collect();
                    found.sort();
                    found
                })
        }
    };

    let names = ["alice", "carol", "bob", "alice"]
        .map(String::from)
        .to_vec();
    assert_eq!(ask(names).await.unwrap(), ["alice", "bob"]);
    assert_eq!(ask(Vec::new()).await.unwrap(), Vec::<String>::new());

    // A name no user can have is the caller's mistake, not a miss.
    let bad = ask(vec!["alice".into(), "Not A Name".into()])
        .await
        .unwrap_err();
    assert_eq!(bad.code(), Code::InvalidArgument);
    assert!(bad.message().contains("username"), "{}", bad.message());

    // One call is bounded: a thousand names pass, one more is refused.
    let many = |n: usize| (0..n).map(|i| format!("user_{i}")).collect::<Vec<_>>();
    assert_eq!(ask(many(1000)).await.unwrap(), Vec::<String>::new());
    let refused = ask(many(1001)).await.unwrap_err();
    assert_eq!(refused.code(), Code::InvalidArgument);
    assert!(
        refused.message().contains("at most 1000"),
        "{}",
        refused.message()
    );
}
