//! SIGTERM: a gateway closes its sockets with 1012 and exits within 10 s.

use std::time::{Duration, Instant};

use e2e::{Stack, StackOptions};
use testkit::WsClient;

use crate::helpers::user;

#[tokio::test]
async fn sigterm_closes_sockets_with_1012_and_exits_within_10s() {
    let mut stack = Stack::start(StackOptions {
        gateways: 1,
        workers: 1,
        ..StackOptions::default()
    })
    .await;
    let alice = user(&stack, 0, "alice").await;
    let (mut a, _) = WsClient::connect_ready(stack.gateway_ports[0], &alice).await;
    let started = Instant::now();
    stack.gateways[0].signal("TERM");
    assert_eq!(a.closed_code(Duration::from_secs(10)).await, Some(1012));
    let status = stack.gateways[0]
        .wait_exit(Duration::from_secs(10))
        .await
        .expect("gateway exits after SIGTERM");
    assert!(
        status.success(),
        "{status:?}: {}",
        stack.gateways[0].log_text()
    );
    assert!(started.elapsed() < Duration::from_secs(10));

    for worker in &mut stack.workers {
        worker.signal("TERM");
        let status = worker
            .wait_exit(Duration::from_secs(10))
            .await
            .expect("worker exits");
        assert!(status.success());
    }
    for service in [&mut stack.history, &mut stack.user] {
        service.signal("TERM");
        let status = service
            .wait_exit(Duration::from_secs(10))
            .await
            .expect("exits");
        assert!(status.success(), "{}", service.name);
    }
}
