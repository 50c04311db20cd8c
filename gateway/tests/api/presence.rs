//! Presence comes from the gateway's own sockets: a lost or wrong write in
//! Redis heals within a heartbeat (5 s), so nobody is a ghost "online" whose
//! messages go live to no socket, nor "offline" while connected.

use std::time::Duration;

use chat_redis::keys::Keys;

use crate::helpers::spawn_stack;

#[tokio::test]
async fn presence_in_redis_heals_from_the_hub() {
    let stack = spawn_stack().await;
    let alice = stack.user("alice").await;
    let (_a, _) = stack.connect(0, &alice).await;
    let key = Keys::new(stack._storage.redis_prefix.clone()).gateway_users("gw0");
    let mut redis = stack._storage.redis().await;
    let reader = redis.clone();
    let field = |user: &'static str| {
        let key = key.clone();
        let redis = reader.clone();
        async move {
            let mut redis = redis;
            redis::cmd("HGET")
                .arg(&key)
                .arg(user)
                .query_async::<Option<u64>>(&mut redis)
                .await
                .unwrap()
        }
    };
    assert_eq!(field("alice").await, Some(1), "written before hello");

    // A write that was lost: alice is connected but missing...
    let () = redis::cmd("HDEL")
        .arg(&key)
        .arg("alice")
        .query_async(&mut redis)
        .await
        .unwrap();
    // ...and a ghost that never had a socket here.
    let () = redis::cmd("HSET")
        .arg(&key)
        .arg("ghost")
        .arg(1)
        .query_async::<i64>(&mut redis)
        .await
        .map(|_| ())
        .unwrap();
    testkit::eventually("presence to heal", Duration::from_secs(15), || async {
        (field("alice").await == Some(1) && field("ghost").await.is_none()).then_some(())
    })
    .await;
}
