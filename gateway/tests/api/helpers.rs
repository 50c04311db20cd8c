//! Spawns a whole stack in-process on port 0 with fresh storage: user-service,
//! history-service, a chat-service worker and N gateways.

use std::time::Duration;

use gateway::{config::Config, startup::Application};
use reqwest::StatusCode;
use serde_json::{Value, json};
use service_kit::config::{JwtSecretArg, ServiceTokenArg};
use service_kit::telemetry::LogFormat;
use testkit::{JWT_SECRET, SERVICE_TOKEN, Storage, WsClient};

pub struct TestStack {
    pub _storage: Storage,
    /// With [`StackOptions::history_link`]: the link from the worker to
    /// history-service, which a test can cut or hold.
    pub history_link: Option<testkit::proxy::TcpProxy>,
    /// With [`StackOptions::gateway_redis_link`]: gateway 0's link to Redis.
    pub redis_link: Option<testkit::proxy::TcpProxy>,
    pub gateways: Vec<u16>,
    /// Each gateway's ops port (/readyz, /metrics).
    pub ops: Vec<u16>,
    pub http: reqwest::Client,
}

#[derive(Clone)]
pub struct StackOptions {
    pub gateways: usize,
    pub allowed_origins: String,
    pub outbound_queue: usize,
    pub rate_per_sec: u32,
    pub rate_burst: u32,
    pub login_failures_per_client: u32,
    pub login_failures_per_user: u32,
    pub login_failures_per_ip: u32,
    pub registrations_per_ip: u32,
    pub rooms_per_user: u32,
    pub outbound_queue_bytes: usize,
    pub max_connections_per_user: u32,
    pub max_connections_per_ip: u32,
    pub ingress_backlog_limit: u64,
    /// INGRESS_MAX_WAIT_MS (0: off, so a loaded test machine never sheds).
    pub ingress_max_wait_ms: u64,
    pub ingress_linger_ms: u64,
    /// chat-service's member-list cache lifetime.
    pub membership_ttl_ms: u64,
    pub heartbeat_ms: u64,
    pub idle_timeout_ms: u64,
    pub max_connections: usize,
    /// Start a chat-service worker (false: sends stay on the stream).
    pub chat_worker: bool,
    /// chat-service's EDIT_WINDOW_SECS.
    pub edit_window_secs: u64,
    /// chat-service's DM_LIST_LIMIT.
    pub dm_list_limit: usize,
    /// INGRESS_PARTITIONS of the gateways and the worker.
    pub ingress_partitions: usize,
    /// The worker reaches history-service through a proxy
    /// ([`TestStack::history_link`]).
    pub history_link: bool,
    /// The gateways reach history-service through the same link.
    pub gateway_history_link: bool,
    /// Gateway 0 reaches Redis through a proxy ([`TestStack::redis_link`]).
    pub gateway_redis_link: bool,
    /// TICKETS_PER_USER of the gateways.
    pub tickets_per_user: u32,
}

impl Default for StackOptions {
    fn default() -> Self {
        Self {
            gateways: 1,
            allowed_origins: String::new(),
            outbound_queue: 1024,
            rate_per_sec: 20,
            rate_burst: 40,
            login_failures_per_client: 5,
            login_failures_per_user: 100,
            login_failures_per_ip: 50,
            // Tests register and connect many users from one address.
            registrations_per_ip: 10_000,
            rooms_per_user: 1_000,
            outbound_queue_bytes: 2 << 20,
            max_connections_per_user: 20,
            chat_worker: true,
            max_connections_per_ip: 10_000,
            ingress_backlog_limit: 1_000_000,
            ingress_max_wait_ms: 0,
            ingress_linger_ms: 2,
            membership_ttl_ms: 200,
            heartbeat_ms: 25_000,
            idle_timeout_ms: 60_000,
            max_connections: 1000,
            edit_window_secs: 86_400,
            dm_list_limit: 1000,
            ingress_partitions: 1,
            history_link: false,
            gateway_history_link: false,
            gateway_redis_link: false,
            tickets_per_user: 60,
        }
    }
}

pub async fn spawn_stack() -> TestStack {
    spawn_stack_with(StackOptions::default()).await
}

pub async fn spawn_stack_with(options: StackOptions) -> TestStack {
    let storage = Storage::with_postgres().await;
    let local = "127.0.0.1:0".parse().unwrap();

    let user_url = test_stack::user_service(&storage).await;
    let history_url = test_stack::history_service(&storage, &user_url).await;
    let history_link = if options.history_link || options.gateway_history_link {
        let port: u16 = history_url.rsplit(':').next().unwrap().parse().unwrap();
        Some(testkit::proxy::TcpProxy::start(([127, 0, 0, 1], port).into()).await)
    } else {
        None
    };
    let linked = history_link
        .as_ref()
        .map_or_else(|| history_url.clone(), testkit::proxy::TcpProxy::url);
    let worker_history_url = if options.history_link {
        linked.clone()
    } else {
        history_url.clone()
    };
    let gateway_history_url = if options.gateway_history_link {
        linked
    } else {
        history_url.clone()
    };
    let redis_link = if options.gateway_redis_link {
        assert!(
            !testkit::redis_cluster(),
            "a Redis link is for a single node"
        );
        let port: u16 = testkit::redis_url()
            .rsplit(':')
            .next()
            .and_then(|p| p.trim_end_matches('/').parse().ok())
            .unwrap_or(6379);
        Some(testkit::proxy::TcpProxy::start(([127, 0, 0, 1], port).into()).await)
    } else {
        None
    };

    if options.chat_worker {
        let chat = chat_service::startup::Application::build(chat_service::config::Config {
            redis: chat_redis::config::RedisArgs::new(
                testkit::redis_url(),
                testkit::redis_cluster(),
            ),
            redis_prefix: storage.redis_prefix.clone(),
            user_service_url: user_url.clone(),
            history_service_url: worker_history_url,
            service_token: ServiceTokenArg::inline(SERVICE_TOKEN),
            ops_addr: local,
            ready_file: None,
            consumer_name: "chat-test".into(),
            ingress_partitions: options.ingress_partitions,
            batch_size: 200,
            batch_linger_ms: 3,
            narrow_batch_linger_ms: 0,
            claim_idle_ms: 30_000,
            max_deliveries: 5,
            dedup_ttl_secs: 3600,
            edit_window_secs: options.edit_window_secs,
            dm_list_limit: options.dm_list_limit,
            membership_ttl_ms: options.membership_ttl_ms,
            gateway_ttl_ms: 15_000,
            stall_timeout_ms: 60_000,
            grpc_max_message_bytes: 4 << 20,
            log_format: LogFormat::Pretty,
        })
        .await
        .expect("chat-service");
        tokio::spawn(chat.run_until(std::future::pending()));
    }

    let mut gateways = Vec::new();
    let mut ops = Vec::new();
    for i in 0..options.gateways {
        let mut config = gateway_config(&storage, &options, i, &user_url, &gateway_history_url);
        if let (0, Some(link)) = (i, &redis_link) {
            config.redis =
                chat_redis::config::RedisArgs::new(format!("redis://{}", link.addr), false);
        }
        let app = Application::build(config).await.expect("gateway");
        gateways.push(app.port());
        ops.push(app.ops_port());
        tokio::spawn(app.run_until(std::future::pending()));
    }
    let stack = TestStack {
        _storage: storage,
        history_link,
        redis_link,
        gateways,
        ops,
        http: reqwest::Client::new(),
    };
    for port in stack.ops.clone() {
        stack.wait_ready(port).await;
    }
    stack
}

pub fn gateway_config(
    storage: &Storage,
    options: &StackOptions,
    index: usize,
    user_url: &str,
    history_url: &str,
) -> Config {
    Config {
        redis: chat_redis::config::RedisArgs::new(testkit::redis_url(), testkit::redis_cluster()),
        redis_prefix: storage.redis_prefix.clone(),
        jwt: JwtSecretArg::inline(JWT_SECRET),
        service_token: ServiceTokenArg::inline(SERVICE_TOKEN),
        user_service_url: user_url.into(),
        history_service_url: history_url.into(),
        listen_addr: "127.0.0.1:0".parse().unwrap(),
        ops_addr: "127.0.0.1:0".parse().unwrap(),
        ready_file: None,
        gateway_id: format!("gw{index}"),
        allowed_origins: options.allowed_origins.clone(),
        max_frame_bytes: 16 * 1024,
        rate_per_sec: options.rate_per_sec,
        rate_burst: options.rate_burst,
        outbound_queue: options.outbound_queue,
        outbound_queue_bytes: options.outbound_queue_bytes,
        heartbeat_ms: options.heartbeat_ms,
        gateway_ttl_ms: chat_redis::presence::DEFAULT_GATEWAY_TTL_MS,
        idle_timeout_ms: options.idle_timeout_ms,
        max_connections: options.max_connections,
        max_connections_per_user: options.max_connections_per_user,
        max_connections_per_ip: options.max_connections_per_ip,
        ingress_backlog_limit: options.ingress_backlog_limit,
        ingress_max_wait_ms: options.ingress_max_wait_ms,
        ingress_linger_ms: options.ingress_linger_ms,
        ingress_partitions: options.ingress_partitions,
        shutdown_grace_ms: 2000,
        login_failures_per_client: options.login_failures_per_client,
        login_failures_per_user: options.login_failures_per_user,
        login_failures_per_ip: options.login_failures_per_ip,
        login_failure_window_secs: 900,
        registrations_per_ip: options.registrations_per_ip,
        rooms_per_user: options.rooms_per_user,
        tickets_per_user: options.tickets_per_user,
        creation_window_secs: 3600,
        trust_forwarded_for: true,
        log_format: LogFormat::Pretty,
    }
}

impl TestStack {
    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.gateways[0])
    }

    async fn wait_ready(&self, port: u16) {
        let url = format!("http://127.0.0.1:{port}/readyz");
        testkit::wait::http_ok("gateway readiness", &url, Duration::from_secs(20)).await;
    }

    pub async fn post(&self, path: &str, token: Option<&str>, body: Value) -> (StatusCode, Value) {
        let mut req = self.http.post(self.url(path)).json(&body);
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        let r = req.send().await.expect("request");
        let status = r.status();
        (status, r.json().await.unwrap_or(Value::Null))
    }

    pub async fn put(&self, path: &str, token: &str, body: Value) -> (StatusCode, Value) {
        let r = self
            .http
            .put(self.url(path))
            .json(&body)
            .bearer_auth(token)
            .send()
            .await
            .expect("request");
        let status = r.status();
        (status, r.json().await.unwrap_or(Value::Null))
    }

    pub async fn get(&self, path: &str, token: Option<&str>) -> (StatusCode, Value) {
        let mut req = self.http.get(self.url(path));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        let r = req.send().await.expect("request");
        let status = r.status();
        (status, r.json().await.unwrap_or(Value::Null))
    }

    /// Registers `username` (password "password123") and logs in; returns the token.
    pub async fn user(&self, username: &str) -> String {
        let (s, body) = self
            .post(
                "/api/register",
                None,
                json!({"username": username, "password": "password123"}),
            )
            .await;
        assert_eq!(s, StatusCode::CREATED, "{body}");
        let (s, body) = self
            .post(
                "/api/login",
                None,
                json!({"username": username, "password": "password123"}),
            )
            .await;
        assert_eq!(s, StatusCode::OK, "{body}");
        body["token"].as_str().unwrap().to_owned()
    }

    pub async fn create_room(&self, token: &str, name: &str) {
        let (s, body) = self
            .post("/api/rooms", Some(token), json!({"name": name}))
            .await;
        assert_eq!(s, StatusCode::CREATED, "{body}");
    }

    pub async fn join_room(&self, token: &str, name: &str) {
        let (s, body) = self
            .post(&format!("/api/rooms/{name}/join"), Some(token), json!({}))
            .await;
        assert_eq!(s, StatusCode::OK, "{body}");
    }

    /// A socket on gateway `index`, past `hello` and `offline`.
    pub async fn connect(&self, index: usize, token: &str) -> (WsClient, Value) {
        WsClient::connect_ready(self.gateways[index], token).await
    }
}

/// The HTTP error JSON shape, `{"error": {"code", "message"}}`
/// (docs/protocol.md, HTTP API, Errors).
pub fn assert_error(status: StatusCode, body: &Value, want: StatusCode, code: &str) {
    assert_eq!(status, want, "{body}");
    assert_eq!(body["error"]["code"], code, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()),
        "{body}"
    );
}

pub fn send(client_id: &str, to: &str, body: &str) -> Value {
    json!({"type": "send", "client_id": client_id, "to": to, "body": body})
}
