//! A login burst against the real user-service binary: 2,000 register and
//! login calls from 100 concurrent clients. Password hashing is bounded, so
//! the process's peak resident memory stays under a documented bound (128 MiB,
//! docs/security.md) and other calls keep being answered during the burst.

use std::{
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use e2e::Service;
use proto::user::v1::{self as user_pb, user_service_client::UserServiceClient};
use service_kit::{auth::InternalChannel, grpc::internal_channel};
use testkit::{JWT_SECRET, SERVICE_TOKEN, Storage};

const CLIENTS: usize = 100;
/// Each client registers this many users and logs each in once.
const USERS_PER_CLIENT: usize = 10;
const RSS_BOUND_KIB: u64 = 128 * 1024;

#[tokio::test]
async fn a_login_burst_stays_within_the_memory_bound_and_others_are_served() {
    let storage = Storage::with_postgres().await;
    let log_dir = std::env::temp_dir().join(format!("chat-flood-{}", storage.id));
    std::fs::create_dir_all(&log_dir).unwrap();
    let env: Vec<(String, String)> = [
        ("DATABASE_URL", storage.database_url()),
        ("REDIS_URL", testkit::redis_url()),
        ("REDIS_CLUSTER", testkit::redis_cluster().to_string()),
        ("REDIS_PREFIX", storage.redis_prefix.clone()),
        ("JWT_SECRET", JWT_SECRET.to_owned()),
        ("SERVICE_TOKEN", SERVICE_TOKEN.to_owned()),
        ("LISTEN_ADDR", "127.0.0.1:0".to_owned()),
        ("OPS_ADDR", "127.0.0.1:0".to_owned()),
        ("LOG_FORMAT", "json".to_owned()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    let mut service = Service::start("user-service", "user-service", &env, &log_dir);
    let port = service.bound_port("grpc").await;
    let channel = internal_channel(&format!("http://127.0.0.1:{port}"), SERVICE_TOKEN).unwrap();
    let client = UserServiceClient::new(channel);
    testkit::eventually("user-service answers", Duration::from_secs(30), || {
        let mut c = client.clone();
        async move { c.check_membership(membership()).await.ok().map(|_| ()) }
    })
    .await;
    let (before, _) = service.memory_kib();

    // Meanwhile a member asks a cheap question every 50 ms.
    let stop = Arc::new(AtomicBool::new(false));
    let probe = tokio::spawn(probe(client.clone(), stop.clone()));

    let started = Instant::now();
    let mut burst = Vec::new();
    for c in 0..CLIENTS {
        burst.push(tokio::spawn(one_client(client.clone(), c)));
    }
    let mut calls = 0;
    for b in burst {
        calls += b.await.unwrap();
    }
    let elapsed = started.elapsed();
    stop.store(true, Ordering::Relaxed);
    let (answered, slowest_ms) = probe.await.unwrap();
    let (after, peak) = service.memory_kib();
    println!(
        "login burst: {calls} calls from {CLIENTS} clients in {:.1} s; user-service RSS {before} KiB before, {after} KiB after, peak {peak} KiB (bound {RSS_BOUND_KIB} KiB); {answered} membership checks answered meanwhile, slowest {slowest_ms} ms",
        elapsed.as_secs_f64()
    );
    assert_eq!(calls, CLIENTS * USERS_PER_CLIENT * 2);
    assert!(
        peak < RSS_BOUND_KIB,
        "peak RSS {peak} KiB over {RSS_BOUND_KIB} KiB"
    );
    assert!(answered > 0, "other calls were served during the burst");
    drop(service);
}

fn membership() -> user_pb::RoomMembershipRequest {
    user_pb::RoomMembershipRequest {
        room: "general".into(),
        username: "someone".into(),
    }
}

/// Registers and logs in its users; returns how many calls succeeded.
async fn one_client(mut client: UserServiceClient<InternalChannel>, index: usize) -> usize {
    let mut ok = 0;
    for u in 0..USERS_PER_CLIENT {
        let username = format!("flood_{index}_{u}");
        let registered = client
            .register(user_pb::RegisterRequest {
                username: username.clone(),
                password: "password123".into(),
                display_name: None,
            })
            .await;
        assert!(registered.is_ok(), "register {username}: {registered:?}");
        ok += 1;
        let login = client
            .authenticate(user_pb::AuthenticateRequest {
                username: username.clone(),
                password: "password123".into(),
                ..Default::default()
            })
            .await;
        assert!(login.is_ok(), "login {username}: {login:?}");
        ok += 1;
    }
    ok
}

/// Asks CheckMembership every 50 ms until stopped; returns how many were
/// answered and the slowest answer in ms. Every one must be answered.
async fn probe(
    mut client: UserServiceClient<InternalChannel>,
    stop: Arc<AtomicBool>,
) -> (u64, u64) {
    let answered = AtomicU64::new(0);
    let mut slowest = 0;
    while !stop.load(Ordering::Relaxed) {
        let t = Instant::now();
        let reply = client.check_membership(membership()).await;
        assert!(reply.is_ok(), "membership check failed: {reply:?}");
        answered.fetch_add(1, Ordering::Relaxed);
        slowest = slowest.max(t.elapsed().as_millis() as u64);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    (answered.load(Ordering::Relaxed), slowest)
}
