//! Scripted pipelines survive a Redis that lost its script cache.

use chat_redis::connection::{self, LuaScript, query_scripted};
use testkit::storage::Storage;

#[tokio::test]
async fn a_pipeline_reloads_its_script_after_a_flush_and_runs_once_more() {
    let storage = Storage::new();
    let mut conn = connection::connect(&chat_redis::connection::Endpoints::new(
        &testkit::redis_url(),
        testkit::redis_cluster(),
    ))
    .await
    .expect("redis");
    let script = LuaScript::new("return redis.call('INCR', KEYS[1])");
    let key = storage.key("counter");
    let mut pipe = redis::pipe();
    script.call(&mut pipe, &[&key], &[] as &[&str]);
    // As after a Redis restart: no script is cached.
    let () = redis::cmd("SCRIPT")
        .arg("FLUSH")
        .query_async(&mut conn)
        .await
        .unwrap();
    let (first,): (i64,) = query_scripted(&mut conn, &pipe, &[&script]).await.unwrap();
    assert_eq!(first, 1, "the script ran exactly once");
    // Cached now: the same pipeline runs without a reload.
    let (second,): (i64,) = query_scripted(&mut conn, &pipe, &[&script]).await.unwrap();
    assert_eq!(second, 2);
}
