//! A batch retried after its seqs were taken keeps the admission it had: a
//! sender who left the room in between neither leaves a gap nor gets
//! `forbidden` for a message that holds a seq.

use std::time::Duration;

use proto::user::v1 as user_pb;
use testkit::proxy::{Mode, TcpProxy};

use crate::helpers::spawn_env;

#[tokio::test]
async fn a_retried_batch_keeps_its_admission() {
    let env = spawn_env().await;
    env.user("alice").await;
    env.user("bob").await;
    // bob owns it: alice, a plain member, may leave.
    env.room("general", &["bob", "alice"]).await;

    // history-service behind a link we can cut.
    let history: std::net::SocketAddr = env
        .history_url()
        .trim_start_matches("http://")
        .parse()
        .unwrap();
    let proxy = TcpProxy::start(history).await;
    proxy.set(Mode::Refuse);
    let mut config = env.worker_config("w1");
    config.history_service_url = proxy.url();
    env.spawn_worker(config).await;

    env.xadd("alice", 1, "c1", "room:general", "before I left")
        .await;
    // Admitted and sequenced; storing it fails while the link is down.
    let mut redis = env.storage.redis().await;
    let dedup = env.keys.dedup("room:general", "alice", "c1");
    testkit::eventually(
        "the message to take its seq",
        Duration::from_secs(10),
        || {
            let mut redis = redis.clone();
            let dedup = dedup.clone();
            async move {
                let taken: bool = redis::cmd("EXISTS")
                    .arg(&dedup)
                    .query_async(&mut redis)
                    .await
                    .ok()?;
                taken.then_some(())
            }
        },
    )
    .await;
    env.users
        .clone()
        .leave_room(user_pb::RoomMembershipRequest {
            room: "general".into(),
            username: "alice".into(),
        })
        .await
        .unwrap();
    proxy.set(Mode::Pass);

    let stored = testkit::eventually("the retry to store it", Duration::from_secs(30), || async {
        let h = env.history("room:general").await;
        (!h.is_empty()).then_some(h)
    })
    .await;
    assert_eq!(stored.len(), 1);
    assert_eq!(
        (stored[0].seq, stored[0].body.as_str()),
        (1, "before I left")
    );
    // And a new send after leaving is refused, taking no seq.
    env.xadd("alice", 1, "c2", "room:general", "after").await;
    testkit::eventually(
        "the entry to be handled",
        Duration::from_secs(10),
        || async { (env.pending().await == 0).then_some(()) },
    )
    .await;
    assert_eq!(env.history("room:general").await.len(), 1);
    let _ = &mut redis;
}

/// A link to history-service that goes silent (nothing comes back, nothing
/// closes) and then works again: the worker's connection on it is dead for
/// good, and only its keepalive pings tell. The worker must make a new one
/// and store what waits, instead of timing out on the dead one forever.
#[tokio::test]
async fn a_worker_gets_over_a_link_to_history_that_went_silent() {
    let env = spawn_env().await;
    env.user("alice").await;
    env.user("bob").await;
    env.gateway_online(&["alice"]).await;
    let mut rx = env.subscribe().await;
    let history: std::net::SocketAddr = env
        .history_url()
        .trim_start_matches("http://")
        .parse()
        .unwrap();
    let proxy = TcpProxy::start(history).await;
    let mut config = env.worker_config("w1");
    config.history_service_url = proxy.url();
    env.spawn_worker(config).await;
    env.xadd("alice", 3, "c1", "user:bob", "before").await;
    assert_eq!(
        crate::helpers::next_of(&mut rx, "sent").await["frame"]["seq"],
        1
    );
    // The link goes silent while a message is on its way, then works again.
    proxy.set(Mode::Blackhole);
    env.xadd("alice", 3, "c2", "user:bob", "during").await;
    testkit::eventually(
        "the worker to be stuck on the link",
        Duration::from_secs(10),
        || async { (env.pending().await > 0).then_some(()) },
    )
    .await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    proxy.set(Mode::Pass);
    let sent = testkit::within(
        "the message stored after all",
        Duration::from_secs(30),
        async {
            loop {
                let d = crate::helpers::next_of(&mut rx, "sent").await;
                if d["frame"]["client_id"] == "c2" {
                    return d;
                }
            }
        },
    )
    .await;
    assert_eq!(sent["frame"]["seq"], 2);
}
