//! The ingress appender against a real Redis: sends that arrive together
//! share a round trip, a lone one never waits for company, and a Redis that
//! cannot be reached fails every waiting send (each may be retried).

use std::time::Duration;

use chat_redis::connection::{self, Endpoints, Redis};
use gateway::ingress::appender::Appender;
use testkit::{
    proxy::{Mode, TcpProxy},
    storage::Storage,
};

async fn connect(url: &str) -> Redis {
    connection::connect(&Endpoints::new(url, testkit::redis_cluster()))
        .await
        .expect("redis")
}

async fn len(redis: &mut testkit::redis::TestRedis, stream: &str) -> u64 {
    redis::cmd("XLEN")
        .arg(stream)
        .query_async(redis)
        .await
        .unwrap()
}

#[tokio::test]
async fn sends_that_arrive_together_share_a_round_trip() {
    let storage = Storage::new();
    let mut redis = storage.redis().await;
    let stream = storage.key("{ingress:0}");
    // A long linger: once the pace is steady, a pipeline's first entry
    // waits for the rest of the burst.
    let appender = Appender::start(
        connect(&testkit::redis_url()).await,
        Duration::from_millis(200),
    );
    let sends = 64;
    let appends = (0..sends).map(|i| {
        let (appender, stream) = (appender.clone(), stream.clone());
        async move { appender.append(i, stream, format!("{{\"n\":{i}}}")).await }
    });
    let written = futures::future::join_all(appends).await;
    assert!(written.iter().all(|ok| *ok), "every send written");
    assert_eq!(len(&mut redis, &stream).await, sends);
    assert!(
        appender.pipelines() < sends / 4,
        "{} round trips for {sends} sends that came together",
        appender.pipelines()
    );
}

#[tokio::test]
async fn a_lone_send_does_not_wait_for_company() {
    let storage = Storage::new();
    let mut redis = storage.redis().await;
    let stream = storage.key("{ingress:0}");
    let linger = Duration::from_secs(30);
    let appender = Appender::start(connect(&testkit::redis_url()).await, linger);
    // One socket's sends, one after another: nobody else is sending, so
    // none waits the 30 s linger for company.
    for i in 0..3 {
        let written = testkit::wait::within(
            "a lone send written",
            Duration::from_secs(10),
            appender.append(7, stream.clone(), format!("{{\"n\":{i}}}")),
        )
        .await;
        assert!(written);
    }
    assert_eq!(len(&mut redis, &stream).await, 3);
    assert_eq!(appender.pipelines(), 3);
}

#[tokio::test]
async fn without_a_linger_every_send_is_its_own_xadd() {
    let storage = Storage::new();
    let mut redis = storage.redis().await;
    let stream = storage.key("{ingress:0}");
    let appender = Appender::start(connect(&testkit::redis_url()).await, Duration::ZERO);
    let appends = (0..5).map(|i| appender.append(i, stream.clone(), "{}".into()));
    let written = futures::future::join_all(appends).await;
    assert!(written.iter().all(|ok| *ok));
    assert_eq!(len(&mut redis, &stream).await, 5);
    assert_eq!(appender.pipelines(), 5);
}

#[tokio::test]
async fn every_waiting_send_fails_when_redis_is_unreachable() {
    if testkit::redis_cluster() {
        // A proxy in front of one node would be bypassed by the cluster's
        // redirects; the single-node run covers this.
        return;
    }
    let storage = Storage::new();
    let mut redis = storage.redis().await;
    let stream = storage.key("{ingress:0}");
    let target = testkit::redis_url()
        .trim_start_matches("redis://")
        .trim_end_matches('/')
        .parse()
        .expect("a host:port Redis URL");
    let link = TcpProxy::start(target).await;
    let appender = Appender::start(
        connect(&format!("redis://{}", link.addr)).await,
        Duration::from_millis(5),
    );
    assert!(appender.append(1, stream.clone(), "{}".into()).await);
    link.set(Mode::Refuse);
    let appends = (0..8).map(|i| appender.append(i, stream.clone(), "{}".into()));
    let written = testkit::wait::within(
        "the sends to fail",
        Duration::from_secs(20),
        futures::future::join_all(appends),
    )
    .await;
    assert!(written.iter().all(|ok| !ok), "{written:?}");
    assert_eq!(len(&mut redis, &stream).await, 1, "nothing more was added");
    link.set(Mode::Pass);
    testkit::wait::eventually("sends written again", Duration::from_secs(20), || {
        let (appender, stream) = (appender.clone(), stream.clone());
        async move { appender.append(1, stream, "{}".into()).await.then_some(()) }
    })
    .await;
}
