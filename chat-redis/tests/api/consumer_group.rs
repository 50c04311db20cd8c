//! The consumer-group runtime, tested once here for every stream that uses
//! it (the chat ingress, the archive backlog), against a real Redis.

use std::{
    sync::{Arc, Mutex},
    time::Duration,
};

use chat_redis::{
    connection,
    consumer::{self, Consumer, Group, Handler},
};

use redis::{AsyncCommands, streams::StreamId};
use service_kit::shutdown::Shutdown;
use testkit::{storage::Storage, wait::eventually};

const DEADLINE: Duration = Duration::from_secs(10);

/// Records what it was handed; fails while `failing` is set; acks on success.
#[derive(Clone, Default)]
struct Recorder {
    seen: Arc<Mutex<Vec<String>>>,
    failing: Arc<Mutex<bool>>,
    attempts: Arc<Mutex<usize>>,
    before_dead: Arc<Mutex<Vec<String>>>,
    /// Batches bigger than this fail (a downstream that times out on them).
    most: Arc<Mutex<Option<usize>>>,
    sizes: Arc<Mutex<Vec<usize>>>,
    /// Acknowledge in the consumer's finishing pipeline, sent with its next
    /// read, instead of at once.
    defer: bool,
    /// The first finish fails in Redis and acknowledges nothing (its
    /// acknowledgement lost on the way).
    lose_first_finish: Arc<Mutex<bool>>,
}

impl Recorder {
    fn payloads(&self) -> Vec<String> {
        self.seen.lock().unwrap().clone()
    }
}

impl Handler for Recorder {
    type Error = std::io::Error;

    async fn handle(
        &mut self,
        consumer: &mut Consumer,
        entries: &[StreamId],
    ) -> Result<(), std::io::Error> {
        *self.attempts.lock().unwrap() += 1;
        self.sizes.lock().unwrap().push(entries.len());
        if *self.failing.lock().unwrap() {
            return Err(std::io::Error::other("downstream unavailable"));
        }
        if self.most.lock().unwrap().is_some_and(|m| entries.len() > m) {
            return Err(std::io::Error::other("timed out"));
        }
        let ids: Vec<&str> = entries.iter().map(|e| e.id.as_str()).collect();
        if std::mem::take(&mut *self.lose_first_finish.lock().unwrap()) {
            // INCR of a stream: WRONGTYPE.
            let stream = consumer.group.stream.clone();
            consumer.finish().cmd("INCR").arg(stream).ignore();
        } else if self.defer {
            let (group, pipe) = consumer.finishing();
            group.ack(pipe, &ids);
        } else {
            let mut pipe = redis::pipe();
            consumer.group.ack(&mut pipe, &ids);
            pipe.query_async::<()>(&mut consumer.conn)
                .await
                .map_err(std::io::Error::other)?;
        }
        let mut seen = self.seen.lock().unwrap();
        seen.extend(entries.iter().map(|e| consumer.group.payload(e)));
        Ok(())
    }

    async fn before_dead_letter(&mut self, entry: &StreamId) -> Result<(), std::io::Error> {
        self.before_dead
            .lock()
            .unwrap()
            .push(entry.get::<String>("p").unwrap_or_default());
        Ok(())
    }
}

fn group(storage: &Storage, consumer: &str, max_deliveries: Option<usize>) -> Group {
    Group {
        stream: storage.key("stream"),
        group: "workers".into(),
        consumer: consumer.into(),
        batch: 10,
        claim_idle: Duration::from_millis(300),
        max_deliveries,
        dead_letter: storage.key("stream:dead"),
        field: "p",
    }
}

/// A consumer running in the background.
struct Running {
    stop: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<()>,
}

impl Running {
    /// Triggers shutdown and waits (bounded) for the loop to end.
    async fn stop(self) {
        self.stop.send(()).unwrap();
        testkit::wait::within("the consumer to stop", DEADLINE, self.task)
            .await
            .unwrap();
    }
}

async fn connect() -> connection::Redis {
    connection::connect(&chat_redis::connection::Endpoints::new(
        &testkit::redis_url(),
        testkit::redis_cluster(),
    ))
    .await
    .expect("redis")
}

async fn start(group: Group, handler: Recorder) -> Running {
    start_consumer(Consumer::new(group, connect().await), handler)
}

fn start_consumer(consumer: Consumer, handler: Recorder) -> Running {
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let shutdown = Shutdown::new(async move {
        let _ = stopped.await;
    });
    let task = tokio::spawn(consumer::run(consumer, handler, shutdown));
    Running { stop, task }
}

async fn add(conn: &mut testkit::redis::TestRedis, stream: &str, payload: &str) -> String {
    conn.xadd(stream, "*", &[("p", payload)]).await.unwrap()
}

#[tokio::test]
async fn creates_the_group_handles_new_entries_and_removes_them() {
    let storage = Storage::new();
    let mut redis = storage.redis().await;
    let recorder = Recorder::default();
    let running = start(group(&storage, "c1", Some(3)), recorder.clone()).await;
    let stream = storage.key("stream");
    eventually("the group to exist", DEADLINE, || {
        let mut redis = redis.clone();
        let stream = stream.clone();
        async move {
            let groups: redis::RedisResult<redis::Value> = redis::cmd("XINFO")
                .arg("GROUPS")
                .arg(&stream)
                .query_async(&mut redis)
                .await;
            groups.ok()
        }
    })
    .await;
    for p in ["a", "b", "c"] {
        add(&mut redis, &stream, p).await;
    }
    eventually("all three handled", DEADLINE, || {
        let r = recorder.clone();
        async move { (r.payloads() == ["a", "b", "c"]).then_some(()) }
    })
    .await;
    let len: usize = redis.xlen(&stream).await.unwrap();
    assert_eq!(len, 0, "handled entries are deleted");
    running.stop().await;
}

#[tokio::test]
async fn a_failed_batch_is_retried_and_never_dead_lettered_in_process() {
    let storage = Storage::new();
    let mut redis = storage.redis().await;
    let recorder = Recorder::default();
    *recorder.failing.lock().unwrap() = true;
    // One delivery allowed: in-process retries must still not count.
    let stream = storage.key("stream");
    make_group(&mut redis, &stream).await;
    let running = start(group(&storage, "c1", Some(1)), recorder.clone()).await;
    add(&mut redis, &stream, "x").await;
    // Several failed attempts (backoff 100, 200, 400 ms...).
    eventually("the entry read and left pending", DEADLINE, || {
        let mut redis = redis.clone();
        let stream = stream.clone();
        async move {
            let pending: redis::streams::StreamPendingReply =
                redis.xpending(&stream, "workers").await.ok()?;
            (pending.count() == 1).then_some(())
        }
    })
    .await;
    eventually("three failed attempts", DEADLINE, || {
        let r = recorder.clone();
        async move { (*r.attempts.lock().unwrap() >= 3).then_some(()) }
    })
    .await;
    *recorder.failing.lock().unwrap() = false;
    eventually("the entry handled after the failures", DEADLINE, || {
        let r = recorder.clone();
        async move { (r.payloads() == ["x"]).then_some(()) }
    })
    .await;
    let dead: usize = redis.xlen(storage.key("stream:dead")).await.unwrap();
    assert_eq!(dead, 0);
    running.stop().await;
}

#[tokio::test]
async fn a_batch_too_big_to_finish_is_split_until_it_fits_and_nothing_is_dead_lettered() {
    let storage = Storage::new();
    let mut redis = storage.redis().await;
    let recorder = Recorder::default();
    *recorder.most.lock().unwrap() = Some(2);
    let stream = storage.key("stream");
    make_group(&mut redis, &stream).await;
    let payloads: Vec<String> = (0..10).map(|i| format!("m{i}")).collect();
    for p in &payloads {
        add(&mut redis, &stream, p).await;
    }
    // Two deliveries allowed: the retries of its own failed batch never count.
    let running = start(group(&storage, "c1", Some(2)), recorder.clone()).await;
    // Once each (the order of retried entries may change: with this test's
    // short claim_idle, the consumer also claims its own waiting entries).
    eventually("every entry handled once", DEADLINE, || {
        let r = recorder.clone();
        let want = payloads.clone();
        async move {
            let mut seen = r.payloads();
            seen.sort();
            (seen == want).then_some(())
        }
    })
    .await;
    let sizes = recorder.sizes.lock().unwrap().clone();
    assert_eq!(
        sizes[0], 10,
        "the first read takes a whole batch: {sizes:?}"
    );
    assert!(
        sizes.windows(2).all(|w| w[0] <= 2 || w[1] <= w[0] / 2),
        "each failed batch is followed by one half its size or less: {sizes:?}"
    );
    let dead: usize = redis.xlen(storage.key("stream:dead")).await.unwrap();
    assert_eq!(dead, 0);
    running.stop().await;
}

/// Reads `stream` as consumer `name` without acknowledging: a worker that
/// then died.
async fn read_and_die(redis: &mut testkit::redis::TestRedis, stream: &str, name: &str) {
    let _: redis::Value = redis::cmd("XREADGROUP")
        .arg("GROUP")
        .arg("workers")
        .arg(name)
        .arg("STREAMS")
        .arg(stream)
        .arg(">")
        .query_async(redis)
        .await
        .unwrap();
}

async fn make_group(redis: &mut testkit::redis::TestRedis, stream: &str) {
    let _: () = redis::cmd("XGROUP")
        .arg("CREATE")
        .arg(stream)
        .arg("workers")
        .arg("0")
        .arg("MKSTREAM")
        .query_async(redis)
        .await
        .unwrap();
}

#[tokio::test]
async fn entries_a_dead_consumer_left_pending_are_claimed() {
    let storage = Storage::new();
    let mut redis = storage.redis().await;
    let stream = storage.key("stream");
    make_group(&mut redis, &stream).await;
    add(&mut redis, &stream, "orphan").await;
    read_and_die(&mut redis, &stream, "dead-worker").await;
    let recorder = Recorder::default();
    let running = start(group(&storage, "c2", Some(5)), recorder.clone()).await;
    eventually("the orphan claimed and handled", DEADLINE, || {
        let r = recorder.clone();
        async move { (r.payloads() == ["orphan"]).then_some(()) }
    })
    .await;
    running.stop().await;
}

#[tokio::test]
async fn an_entry_that_keeps_killing_consumers_is_dead_lettered_with_its_reason() {
    let storage = Storage::new();
    let mut redis = storage.redis().await;
    let stream = storage.key("stream");
    make_group(&mut redis, &stream).await;
    let poison = add(&mut redis, &stream, "poison").await;
    // Three consumers read it and die: delivered three times.
    read_and_die(&mut redis, &stream, "w1").await;
    for name in ["w2", "w3"] {
        let _: redis::Value = redis::cmd("XCLAIM")
            .arg(&stream)
            .arg("workers")
            .arg(name)
            .arg(0)
            .arg(&poison)
            .query_async(&mut redis)
            .await
            .unwrap();
    }
    add(&mut redis, &stream, "fine").await;

    let recorder = Recorder::default();
    let running = start(group(&storage, "c4", Some(2)), recorder.clone()).await;
    let dead_key = storage.key("stream:dead");
    let dead: redis::streams::StreamRangeReply = eventually("a dead letter", DEADLINE, || {
        let mut redis = redis.clone();
        let dead_key = dead_key.clone();
        async move {
            let r: redis::streams::StreamRangeReply = redis.xrange_all(&dead_key).await.ok()?;
            (!r.ids.is_empty()).then_some(r)
        }
    })
    .await;
    assert_eq!(dead.ids.len(), 1);
    let letter = &dead.ids[0];
    assert_eq!(letter.get::<String>("p").as_deref(), Some("poison"));
    assert_eq!(
        letter.get::<String>("reason").as_deref(),
        Some("too many deliveries")
    );
    assert_eq!(*recorder.before_dead.lock().unwrap(), ["poison"]);
    eventually("the healthy entry handled", DEADLINE, || {
        let r = recorder.clone();
        async move { r.payloads().contains(&"fine".to_owned()).then_some(()) }
    })
    .await;
    assert!(
        !recorder.payloads().contains(&"poison".to_owned()),
        "poison never reaches the handler"
    );
    let len: usize = redis.xlen(&stream).await.unwrap();
    assert_eq!(len, 0, "the poison entry left the stream");
    running.stop().await;
}

#[tokio::test]
async fn dead_letters_are_capped() {
    let storage = Storage::new();
    let mut redis = storage.redis().await;
    let g = group(&storage, "c1", None);
    let mut pipe = redis::pipe();
    let n = chat_model::limits::DEAD_LETTER_MAXLEN + 2_000;
    for i in 0..n {
        g.dead_letter(&mut pipe, &format!("{i}-0"), "x", "test");
    }
    pipe.query_async::<()>(&mut redis).await.unwrap();
    let len: u64 = redis.xlen(&g.dead_letter).await.unwrap();
    // MAXLEN ~ trims whole macro nodes: at most one node (100 entries) over.
    assert!(
        len <= chat_model::limits::DEAD_LETTER_MAXLEN + 100,
        "{len} dead letters kept"
    );
}

#[tokio::test]
async fn a_lingering_read_never_waits_for_more_entries() {
    let storage = Storage::new();
    let mut redis = storage.redis().await;
    let stream = storage.key("stream");
    let conn = connect().await;
    // Reads for a first entry would wait a minute: a lingering read that
    // blocked would hold the entry it already has until the connection's
    // response timeout cut it off, after the deadline below.
    let mut consumer =
        Consumer::new(group(&storage, "c1", None), conn).blocking_for(Duration::from_secs(60));
    consumer.ensure_group().await.unwrap();

    add(&mut redis, &stream, "only").await;
    let read = testkit::wait::within(
        "a lingering read with nothing more to take",
        connection::RESPONSE_TIMEOUT / 2,
        consumer.read(false, Duration::from_millis(20)),
    )
    .await
    .unwrap();
    let payloads: Vec<String> = read.iter().map(|e| consumer.group.payload(e)).collect();
    assert_eq!(payloads, ["only"]);
}

/// Waits until `recorder` has seen `payloads` and the stream holds nothing,
/// pending or not.
async fn until_done(
    what: &str,
    recorder: &Recorder,
    redis: &testkit::redis::TestRedis,
    stream: &str,
    payloads: &[&str],
) {
    eventually(what, DEADLINE, || {
        let (r, mut redis) = (recorder.clone(), redis.clone());
        async move {
            let pending: redis::streams::StreamPendingReply =
                redis.xpending(stream, "workers").await.ok()?;
            let len: usize = redis.xlen(stream).await.ok()?;
            (r.payloads() == payloads && pending.count() == 0 && len == 0).then_some(())
        }
    })
    .await;
}

#[tokio::test]
async fn a_batch_is_acknowledged_with_the_next_read_even_one_that_blocks() {
    let storage = Storage::new();
    let mut redis = storage.redis().await;
    let stream = storage.key("stream");
    make_group(&mut redis, &stream).await;
    let recorder = Recorder {
        defer: true,
        ..Recorder::default()
    };
    // The read after the batch waits a minute for an entry that never
    // comes: the acknowledgement must go out with it, not after it.
    let consumer = Consumer::new(group(&storage, "c1", None), connect().await)
        .blocking_for(Duration::from_secs(60));
    let running = start_consumer(consumer, recorder.clone());
    add(&mut redis, &stream, "x").await;
    let what = "the entry handled, acknowledged and deleted";
    until_done(what, &recorder, &redis, &stream, &["x"]).await;
    running.task.abort();
}

#[tokio::test]
async fn entries_whose_finish_failed_are_read_again_at_once() {
    let storage = Storage::new();
    let mut redis = storage.redis().await;
    let stream = storage.key("stream");
    make_group(&mut redis, &stream).await;
    let recorder = Recorder {
        defer: true,
        ..Recorder::default()
    };
    *recorder.lose_first_finish.lock().unwrap() = true;
    // No claim within the test: only this consumer's own re-read of its
    // pending entries can finish the entry in time.
    let group = Group {
        claim_idle: Duration::from_secs(120),
        ..group(&storage, "c1", None)
    };
    let running = start(group, recorder.clone()).await;
    add(&mut redis, &stream, "x").await;
    let what = "the entry handled again and acknowledged";
    until_done(what, &recorder, &redis, &stream, &["x", "x"]).await;
    running.stop().await;
}

#[tokio::test]
async fn a_measuring_consumer_knows_the_length_after_each_read_and_finishes_first() {
    let storage = Storage::new();
    let mut redis = storage.redis().await;
    let stream = storage.key("stream");
    let mut consumer =
        Consumer::new(group(&storage, "c1", None), connect().await).measuring_length();
    consumer.ensure_group().await.unwrap();
    assert_eq!(consumer.length(), None);
    for p in ["a", "b", "c"] {
        add(&mut redis, &stream, p).await;
    }
    let read = consumer.read(false, Duration::ZERO).await.unwrap();
    assert_eq!(read.len(), 3);
    assert_eq!(
        consumer.length(),
        Some(3),
        "read, not acknowledged: still there"
    );
    let ids: Vec<&str> = read.iter().map(|e| e.id.as_str()).collect();
    let (group, pipe) = consumer.finishing();
    group.ack(pipe, &ids);
    let left: usize = redis.xlen(&stream).await.unwrap();
    assert_eq!(left, 3, "nothing is sent before the next read");
    add(&mut redis, &stream, "d").await;
    let read = consumer.read(false, Duration::ZERO).await.unwrap();
    assert_eq!(read.len(), 1);
    assert_eq!(consumer.length(), Some(1), "the acknowledgement went first");
}

#[tokio::test]
async fn gone_consumers_are_removed_but_not_one_with_pending_entries() {
    let storage = Storage::new();
    let mut redis = storage.redis().await;
    let stream = storage.key("stream");
    let mut me = Consumer::new(group(&storage, "me", None), connect().await);
    me.ensure_group().await.unwrap();
    // Two consumers of processes gone: "idle" read and acknowledged its
    // entry, "busy" read one and died holding it.
    for (name, payload) in [("idle", "a"), ("busy", "b")] {
        let id = add(&mut redis, &stream, payload).await;
        let _: redis::Value = redis::cmd("XREADGROUP")
            .arg("GROUP")
            .arg("workers")
            .arg(name)
            .arg("COUNT")
            .arg(1)
            .arg("STREAMS")
            .arg(&stream)
            .arg(">")
            .query_async(&mut redis)
            .await
            .unwrap();
        if name == "idle" {
            let _: i64 = redis.xack(&stream, "workers", &[&id]).await.unwrap();
        }
    }
    let consumers = |redis: testkit::redis::TestRedis| {
        let stream = stream.clone();
        async move {
            let mut redis = redis;
            let info: redis::streams::StreamInfoConsumersReply =
                redis.xinfo_consumers(&stream, "workers").await.unwrap();
            let mut names: Vec<String> = info.consumers.into_iter().map(|c| c.name).collect();
            names.sort();
            names
        }
    };
    assert_eq!(consumers(redis.clone()).await, ["busy", "idle"]);
    // Not idle long enough: nothing goes.
    assert!(
        me.sweep_gone(Duration::from_secs(3600))
            .await
            .unwrap()
            .is_empty()
    );
    // Idle longer than the threshold: only the one with nothing pending.
    let end = tokio::time::Instant::now() + DEADLINE;
    let gone = loop {
        let gone = me.sweep_gone(Duration::from_millis(50)).await.unwrap();
        if !gone.is_empty() || tokio::time::Instant::now() > end {
            break gone;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(gone, ["idle"]);
    assert_eq!(consumers(redis.clone()).await, ["busy"]);
}
