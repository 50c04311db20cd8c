//! The production load balancer, for real: Debian's nginx runs
//! deploy/nginx.conf in front of two gateways of a stack, changed only where
//! a test has to (addresses and file paths: see [`test_config`], which fails
//! if the copy differs from the file anywhere else).
//!
//! - 5,000 WebSockets upgrade through it and are held at once: every one
//!   gets its `hello`, both gateways get a share (round robin) and count them
//!   in their `gateway_connections` gauge, and every one then closes with a
//!   closing handshake that travels back through nginx.
//! - The client address nginx appends to X-Forwarded-For is the one the
//!   login limiter counts (TRUST_FORWARDED_FOR=true, as in compose): an
//!   address that reaches its limit is refused while another is not, and an
//!   X-Forwarded-For header a client sends itself neither gets it out of its
//!   limit nor pins its failures on another address.
//! - A stream (`streams.rs`) flows through it unbuffered, and takes POSTs
//!   on both gateways.
//!
//! nginx is TEST_NGINX (scripts/test installs nginx-light and sets it), else
//! `nginx` on PATH or in /usr/sbin. Missing, the tests fail and say how to
//! install it: a skipped test would prove nothing.

use std::{
    collections::BTreeMap,
    net::IpAddr,
    time::{Duration, Instant},
};

use e2e::{Stack, StackOptions};
use futures::{StreamExt, stream};
use serde_json::json;
use testkit::{JWT_SECRET, WsClient, ws::WsEnd};

use self::harness::Nginx;

mod harness;
mod streams;

/// Sockets held through nginx at once.
const SOCKETS: usize = 5_000;
/// Users they belong to (minted tokens; 50 sockets each).
const USERS: usize = 100;
/// Upgrades in flight at a time, and closing handshakes.
const CONNECT_CONCURRENCY: usize = 64;
const CLOSE_CONCURRENCY: usize = 256;
/// Open files nginx may need in one worker (both ends of every socket:
/// connections are not spread evenly across workers), plus slack for its
/// logs and listeners and this process's other tests.
const FILES_NEEDED: u64 = 2 * SOCKETS as u64 + 1_000;
/// LOGIN_FAILURES_PER_IP in the login test.
const LOGIN_LIMIT: u32 = 3;
/// This process's soft limit on open files, which nginx and the gateways
/// inherit (from /proc; None when unlimited or unreadable).
fn open_files_limit() -> Option<u64> {
    let limits = std::fs::read_to_string("/proc/self/limits").ok()?;
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    line.split_whitespace().nth(3)?.parse().ok()
}

fn assert_open_files() {
    if let Some(limit) = open_files_limit() {
        assert!(
            limit >= FILES_NEEDED,
            "the open-file limit is {limit}; this test holds {SOCKETS} sockets through nginx, \
             whose busiest worker may hold both ends of all of them: raise it to at least \
             {FILES_NEEDED} (ulimit -n {FILES_NEEDED})"
        );
    }
}

/// Gateway `index`'s ops port (where /metrics is).
fn ops_port(stack: &Stack, index: usize) -> u16 {
    let name = format!("gateway-{index}");
    stack
        .ops_ports
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, port)| *port)
        .unwrap_or_else(|| panic!("no ops port for {name}"))
}

/// The `gateway_connections` gauge on ops port `port` (updated every 5 s).
async fn connections_gauge(port: u16) -> Option<u64> {
    let text = reqwest::get(format!("http://127.0.0.1:{port}/metrics"))
        .await
        .ok()?
        .text()
        .await
        .ok()?;
    text.lines().find_map(|line| {
        let value: f64 = line
            .strip_prefix("gateway_connections ")?
            .trim()
            .parse()
            .ok()?;
        Some(value as u64)
    })
}

/// Opens one socket through nginx and reads its first frame, which must be
/// `hello`; returns the socket and the id of the gateway that sent it.
async fn open(port: u16, token: &str) -> Result<(WsClient, String), String> {
    let mut socket = WsClient::connect(port, token)
        .await
        .map_err(|e| format!("upgrade: {e:?}"))?;
    let hello = socket
        .next_frame(Duration::from_secs(30))
        .await
        .map_err(|e| format!("no first frame: {e:?}"))?;
    if hello["type"] != "hello" {
        return Err(format!("the first frame is not hello: {hello}"));
    }
    let gateway = hello["gateway"]
        .as_str()
        .ok_or_else(|| format!("hello names no gateway: {hello}"))?;
    Ok((socket, gateway.to_owned()))
}

/// Starts the closing handshake and reads until the gateway's close frame
/// comes back through nginx. Frames queued before it (the `offline` frame
/// the test never read) are skipped; a reset, an error or a timeout is not a
/// clean close.
async fn close_cleanly(mut socket: WsClient) -> Result<(), String> {
    socket
        .inner()
        .close(None)
        .await
        .map_err(|e| format!("sending close: {e}"))?;
    loop {
        match socket.next_frame(Duration::from_secs(30)).await {
            Ok(_) => {}
            Err(WsEnd::Closed(_)) => return Ok(()),
            Err(end) => return Err(format!("{end:?}")),
        }
    }
}

#[tokio::test]
async fn five_thousand_websockets_upgrade_through_nginx_onto_both_gateways_and_close_cleanly() {
    assert_open_files();
    let stack = Stack::start(StackOptions {
        gateways: 2,
        workers: 1,
        gateway_env: vec![
            ("TRUST_FORWARDED_FOR", "true".into()),
            // Every socket comes from this test's address (nginx appends it),
            // USERS users with SOCKETS / USERS sockets each: the default caps
            // (1,000 per address, 20 per user, per gateway) are for real
            // clients.
            ("MAX_CONNECTIONS_PER_IP", SOCKETS.to_string()),
            ("MAX_CONNECTIONS_PER_USER", (SOCKETS / USERS).to_string()),
            // The clients read nothing after their hello, so they answer no
            // ping: none may be closed as idle before the test closes it.
            ("IDLE_TIMEOUT_MS", "600000".into()),
        ],
        ..StackOptions::default()
    })
    .await;
    let nginx = Nginx::start(&stack).await;
    let tokens: Vec<String> = (0..USERS)
        .map(|u| {
            service_kit::jwt::issue(
                JWT_SECRET,
                &format!("nginx_{u}"),
                testkit::TEST_SESSION,
                600,
            )
            .unwrap()
            .0
        })
        .collect();

    // Open them all, CONNECT_CONCURRENCY at a time, and keep them open.
    let started = Instant::now();
    let port = nginx.port;
    let opened: Vec<Result<(WsClient, String), String>> = stream::iter(0..SOCKETS)
        .map(|i| {
            let token = tokens[i % USERS].clone();
            async move { open(port, &token).await }
        })
        .buffer_unordered(CONNECT_CONCURRENCY)
        .collect()
        .await;
    let opening = started.elapsed();
    let mut sockets = Vec::with_capacity(SOCKETS);
    let mut failures = Vec::new();
    let mut per_gateway: BTreeMap<String, usize> = BTreeMap::new();
    for result in opened {
        match result {
            Ok((socket, gateway)) => {
                *per_gateway.entry(gateway).or_default() += 1;
                sockets.push(socket);
            }
            Err(e) => failures.push(e),
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {SOCKETS} sockets failed through nginx, e.g. {:?}\n{}",
        failures.len(),
        &failures[..failures.len().min(5)],
        nginx.logs()
    );

    // nginx spreads them round robin: each gateway has a good share (half,
    // give or take what two workers' separate rotations allow) and counts
    // exactly the sockets it said hello on.
    for (index, id) in ["gw-0", "gw-1"].into_iter().enumerate() {
        let n = per_gateway.get(id).copied().unwrap_or(0);
        assert!(
            n >= SOCKETS / 5,
            "gateway {id} got {n} of {SOCKETS} sockets: {per_gateway:?}"
        );
        let expected = n as u64;
        let ops = ops_port(&stack, index);
        testkit::eventually(
            &format!("gateway-{index}'s gateway_connections gauge to read {expected}"),
            Duration::from_secs(20),
            || async move { (connections_gauge(ops).await == Some(expected)).then_some(()) },
        )
        .await;
    }

    // Close them all: every closing handshake completes through nginx, and
    // the gateways are left with no socket.
    let started = Instant::now();
    let closed: Vec<Result<(), String>> = stream::iter(sockets)
        .map(close_cleanly)
        .buffer_unordered(CLOSE_CONCURRENCY)
        .collect()
        .await;
    let closing = started.elapsed();
    let unclean: Vec<&String> = closed.iter().filter_map(|r| r.as_ref().err()).collect();
    assert!(
        unclean.is_empty(),
        "{} of {SOCKETS} sockets did not close cleanly, e.g. {:?}\n{}",
        unclean.len(),
        &unclean[..unclean.len().min(5)],
        nginx.logs()
    );
    for index in 0..2 {
        let ops = ops_port(&stack, index);
        testkit::eventually(
            &format!("gateway-{index}'s gateway_connections gauge to read 0"),
            Duration::from_secs(20),
            || async move { (connections_gauge(ops).await == Some(0)).then_some(()) },
        )
        .await;
    }
    nginx.assert_no_errors();
    println!(
        "nginx: {SOCKETS} WebSockets opened in {:.1} s ({per_gateway:?}), closed in {:.1} s",
        opening.as_secs_f64(),
        closing.as_secs_f64()
    );
}

/// An HTTP client whose connections leave from `ip` (a loopback alias).
fn client_from(ip: [u8; 4]) -> reqwest::Client {
    reqwest::Client::builder()
        .local_address(IpAddr::from(ip))
        .build()
        .unwrap()
}

/// A login with a wrong password through nginx, with an X-Forwarded-For
/// header of the client's own if `forwarded_for`; returns the status and
/// the body.
async fn failed_login(
    nginx: &Nginx,
    client: &reqwest::Client,
    forwarded_for: Option<&str>,
) -> (u16, String) {
    let mut request = client
        .post(nginx.url("/api/login"))
        .json(&json!({"username": "ghost", "password": "not-the-password"}));
    if let Some(value) = forwarded_for {
        request = request.header("x-forwarded-for", value);
    }
    let response = request.send().await.expect("a login through nginx");
    let status = response.status().as_u16();
    (status, response.text().await.unwrap_or_default())
}

#[tokio::test]
async fn behind_nginx_the_login_limit_counts_each_client_address() {
    let stack = Stack::start(StackOptions {
        gateways: 2,
        workers: 1,
        gateway_env: vec![
            ("TRUST_FORWARDED_FOR", "true".into()),
            ("LOGIN_FAILURES_PER_IP", LOGIN_LIMIT.to_string()),
        ],
        ..StackOptions::default()
    })
    .await;
    let nginx = Nginx::start(&stack).await;
    // Two clients, two source addresses; nginx itself reaches the gateways
    // from 127.0.0.1 either way.
    let first = client_from([127, 0, 0, 2]);
    let second = client_from([127, 0, 0, 3]);
    // One username that does not exist. Its other counters stay under their
    // limits here (LOGIN_FAILURES_PER_CLIENT 5 per address, _PER_USER 100),
    // so any 429 is the per-address limit.

    // 127.0.0.2 fails LOGIN_LIMIT times, then is refused. nginx alternates
    // the gateways: the count is theirs together (Redis).
    for attempt in 1..=LOGIN_LIMIT {
        let (status, body) = failed_login(&nginx, &first, None).await;
        assert_eq!(status, 401, "attempt {attempt} from 127.0.0.2: {body}");
    }
    let (status, body) = failed_login(&nginx, &first, None).await;
    assert_eq!(status, 429, "127.0.0.2 over its limit: {body}");
    assert!(body.contains("failed logins"), "{body}");

    // A header of its own does not get it out: nginx appends the address it
    // sees ("10.9.8.7, 127.0.0.2"), and the gateway reads the last entry.
    let (status, body) = failed_login(&nginx, &first, Some("10.9.8.7")).await;
    assert_eq!(
        status, 429,
        "127.0.0.2 with a forged X-Forwarded-For: {body}"
    );

    // Another address is counted apart: the limiter sees the client, not
    // nginx's 127.0.0.1 (which would be refused by now).
    let (status, body) = failed_login(&nginx, &second, None).await;
    assert_eq!(status, 401, "127.0.0.3 is not limited: {body}");
    // And it cannot pin its failures on the address that is full: with the
    // forged entry believed, this would be 429.
    let (status, body) = failed_login(&nginx, &second, Some("127.0.0.2")).await;
    assert_eq!(status, 401, "127.0.0.3 claiming to be 127.0.0.2: {body}");

    // nginx's access log agrees: it saw both source addresses (5 logins from
    // 127.0.0.2, 2 from 127.0.0.3) and sent logins to both gateways.
    let access = nginx.dir.join("access.log");
    let upstreams: Vec<String> = stack
        .gateway_ports
        .iter()
        .map(|p| format!("upstream=127.0.0.1:{p} "))
        .collect();
    testkit::eventually(
        "nginx's access log to show every login",
        Duration::from_secs(10),
        || {
            let log = std::fs::read_to_string(&access).unwrap_or_default();
            let upstreams = &upstreams;
            async move {
                let logins: Vec<&str> = log
                    .lines()
                    .filter(|l| l.contains("\"POST /api/login "))
                    .collect();
                let from = |ip: &str| {
                    logins
                        .iter()
                        .filter(|l| l.starts_with(&format!("{ip} ")))
                        .count()
                };
                let both = upstreams
                    .iter()
                    .all(|u| logins.iter().any(|l| l.contains(u.as_str())));
                (from("127.0.0.2") == LOGIN_LIMIT as usize + 2 && from("127.0.0.3") == 2 && both)
                    .then_some(())
            }
        },
    )
    .await;
    nginx.assert_no_errors();
}
