//! Spawns a whole stack in-process on port 0 with fresh storage: user-service,
//! history-service, a chat-service worker and N gateways.

use std::time::Duration;

use gateway::{config::Config, startup::Application};
use reqwest::StatusCode;
use serde_json::{Value, json};
use testkit::{
    Storage, WsClient,
    config::{Setting, settings},
};

pub struct TestStack {
    pub _storage: Storage,
    /// With [`StackOptions::history_link`]: the link from the worker to
    /// history-service, which a test can cut or hold.
    pub history_link: Option<testkit::proxy::TcpProxy>,
    /// With [`StackOptions::gateway_redis_link`]: gateway 0's link to Redis.
    pub redis_link: Option<testkit::proxy::TcpProxy>,
    /// With [`StackOptions::user_redis_link`]: user-service's link to Redis.
    pub user_redis_link: Option<testkit::proxy::TcpProxy>,
    pub gateways: Vec<u16>,
    /// Each gateway's ops port (/readyz, /metrics).
    pub ops: Vec<u16>,
    pub http: reqwest::Client,
}

/// What a test's stack is made of. Every service's configuration is parsed
/// as production parses it (`testkit::config`): the defaults, the test
/// defaults below (what many tests need: many registrations from one
/// address, no shedding on a loaded machine…), then the test's own
/// `gateway` and `worker` settings.
#[derive(Clone)]
pub struct StackOptions {
    pub gateways: usize,
    /// Settings of every gateway, by their README names (`RATE_PER_SEC`).
    pub gateway: Vec<Setting>,
    /// Settings of the chat-service worker.
    pub worker: Vec<Setting>,
    /// Settings of user-service (`TOKEN_TTL_SECS`).
    pub user: Vec<Setting>,
    /// Start a chat-service worker (false: sends stay on the stream).
    pub chat_worker: bool,
    /// The worker reaches history-service through a proxy
    /// ([`TestStack::history_link`]).
    pub history_link: bool,
    /// The gateways reach history-service through the same link.
    pub gateway_history_link: bool,
    /// Gateway 0 reaches Redis through a proxy ([`TestStack::redis_link`]).
    pub gateway_redis_link: bool,
    /// user-service reaches Redis through a proxy
    /// ([`TestStack::user_redis_link`]).
    pub user_redis_link: bool,
}

impl Default for StackOptions {
    fn default() -> Self {
        Self {
            gateways: 1,
            gateway: Vec::new(),
            worker: Vec::new(),
            user: Vec::new(),
            chat_worker: true,
            history_link: false,
            gateway_history_link: false,
            gateway_redis_link: false,
            user_redis_link: false,
        }
    }
}

/// Gateway settings every test stack has, before its own.
fn gateway_defaults() -> Vec<Setting> {
    settings(&[
        // Tests register and connect many users from one address.
        ("REGISTRATIONS_PER_IP", "10000"),
        ("ROOMS_PER_USER", "1000"),
        ("MEMBERSHIP_CHANGES_PER_USER", "10000"),
        ("MAX_CONNECTIONS_PER_IP", "10000"),
        ("INGRESS_BACKLOG_LIMIT", "1000000"),
        // A loaded test machine must never shed (its own test sets it).
        ("INGRESS_MAX_WAIT_MS", "0"),
        ("INGRESS_LINGER_MS", "2"),
        ("MAX_CONNECTIONS", "1000"),
        ("SHUTDOWN_GRACE_MS", "2000"),
        ("TRUST_FORWARDED_FOR", "true"),
    ])
}

/// Worker settings every test stack has, before its own.
fn worker_defaults() -> Vec<Setting> {
    settings(&[
        ("CONSUMER_NAME", "chat-test"),
        ("MEMBERSHIP_TTL_MS", "200"),
        ("DEDUP_TTL_SECS", "3600"),
    ])
}

/// The value of setting `name` in `settings` (the last one wins).
fn setting<'a>(settings: &'a [Setting], name: &str) -> Option<&'a str> {
    settings
        .iter()
        .rev()
        .find(|(n, _)| *n == name)
        .map(|(_, v)| v.as_str())
}

/// A cuttable link to the test Redis (a single node).
async fn redis_proxy() -> testkit::proxy::TcpProxy {
    assert!(
        !testkit::redis_cluster(),
        "a Redis link is for a single node"
    );
    let port: u16 = testkit::redis_url()
        .rsplit(':')
        .next()
        .and_then(|p| p.trim_end_matches('/').parse().ok())
        .unwrap_or(6379);
    testkit::proxy::TcpProxy::start(([127, 0, 0, 1], port).into()).await
}

pub async fn spawn_stack() -> TestStack {
    spawn_stack_with(StackOptions::default()).await
}

pub async fn spawn_stack_with(options: StackOptions) -> TestStack {
    let storage = Storage::with_postgres().await;
    // user-service writes membership events to the partitions the
    // gateways write.
    let mut user = options.user.clone();
    if let Some(p) = setting(&options.gateway, "INGRESS_PARTITIONS") {
        user.push(("INGRESS_PARTITIONS", p.to_owned()));
    }
    let user_redis_link = if options.user_redis_link {
        let link = redis_proxy().await;
        user.push(("REDIS_URL", format!("redis://{}", link.addr)));
        user.push(("REDIS_CLUSTER", "false".into()));
        Some(link)
    } else {
        None
    };
    let user_url = test_stack::user_service_with(&storage, &user).await;
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
        Some(redis_proxy().await)
    } else {
        None
    };

    if options.chat_worker {
        let mut worker = testkit::config::base(&storage);
        worker.extend(settings(&[
            ("USER_SERVICE_URL", user_url.clone()),
            ("HISTORY_SERVICE_URL", worker_history_url),
        ]));
        worker.extend(worker_defaults());
        // The worker reads the partitions the gateways write.
        if let Some(p) = setting(&options.gateway, "INGRESS_PARTITIONS") {
            worker.push(("INGRESS_PARTITIONS", p.to_owned()));
        }
        worker.extend(options.worker.iter().cloned());
        let chat = chat_service::startup::Application::build(testkit::config::parse(
            "chat-service",
            &worker,
        ))
        .await
        .expect("chat-service");
        tokio::spawn(chat.run_until(std::future::pending()));
    }

    let mut gateways = Vec::new();
    let mut ops = Vec::new();
    for i in 0..options.gateways {
        let mut config = gateway_config(&storage, &options, i, &user_url, &gateway_history_url);
        if let (0, Some(link)) = (i, &redis_link) {
            config.redis.redis_url = format!("redis://{}", link.addr);
            config.redis.redis_cluster = false;
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
        user_redis_link,
        gateways,
        ops,
        http: reqwest::Client::new(),
    };
    for port in stack.ops.clone() {
        stack.wait_ready(port).await;
    }
    stack
}

/// Gateway `index`'s configuration as production parses it.
pub fn gateway_config(
    storage: &Storage,
    options: &StackOptions,
    index: usize,
    user_url: &str,
    history_url: &str,
) -> Config {
    let mut s = testkit::config::base_with_jwt(storage);
    s.extend(settings(&[
        ("USER_SERVICE_URL", user_url.to_owned()),
        ("HISTORY_SERVICE_URL", history_url.to_owned()),
        ("GATEWAY_ID", format!("gw{index}")),
    ]));
    s.extend(gateway_defaults());
    s.extend(options.gateway.iter().cloned());
    testkit::config::parse("gateway", &s)
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

    pub async fn delete(&self, path: &str, token: &str, body: Value) -> (StatusCode, Value) {
        self.send(self.http.delete(self.url(path)), token, body)
            .await
    }

    pub async fn patch(&self, path: &str, token: &str, body: Value) -> (StatusCode, Value) {
        self.send(self.http.patch(self.url(path)), token, body)
            .await
    }

    async fn send(
        &self,
        req: reqwest::RequestBuilder,
        token: &str,
        body: Value,
    ) -> (StatusCode, Value) {
        let r = req
            .json(&body)
            .bearer_auth(token)
            .send()
            .await
            .expect("request");
        let status = r.status();
        (status, r.json().await.unwrap_or(Value::Null))
    }

    /// Logs `username` (password "password123") in from `device`; the
    /// whole answer (token, refresh_token, session_id…).
    pub async fn login(&self, username: &str, device: &str) -> Value {
        let (s, body) = self
            .post(
                "/api/login",
                None,
                json!({"username": username, "password": "password123", "device": device}),
            )
            .await;
        assert_eq!(s, StatusCode::OK, "{body}");
        body
    }

    /// Registers `username` and logs in; the whole login answer.
    pub async fn login_registered(&self, username: &str) -> Value {
        let (s, body) = self
            .post(
                "/api/register",
                None,
                json!({"username": username, "password": "password123"}),
            )
            .await;
        assert_eq!(s, StatusCode::CREATED, "{body}");
        self.login(username, "").await
    }

    /// Registers `username` (password "password123") and logs in; returns the token.
    pub async fn user(&self, username: &str) -> String {
        self.login_registered(username).await["token"]
            .as_str()
            .unwrap()
            .to_owned()
    }

    pub async fn create_room(&self, token: &str, name: &str) {
        let (s, body) = self
            .post("/api/rooms", Some(token), json!({"name": name}))
            .await;
        assert_eq!(s, StatusCode::CREATED, "{body}");
    }

    /// Joins; returns once the join is in the room's timeline (its event
    /// is sequenced and stored), so what a test sends next comes after it.
    /// Joining again makes no event: then it returns at once.
    pub async fn join_room(&self, token: &str, name: &str) {
        let (_, me) = self.get("/api/me", Some(token)).await;
        let user = me["username"].as_str().expect("a username").to_owned();
        let (s, body) = self
            .post(&format!("/api/rooms/{name}/join"), Some(token), json!({}))
            .await;
        assert_eq!(s, StatusCode::OK, "{body}");
        let path = format!("/api/conversations/room:{name}/messages?limit=200");
        testkit::wait::eventually(
            "the join in the room's timeline",
            Duration::from_secs(10),
            || async {
                let (_, page) = self.get(&path, Some(token)).await;
                page["messages"]
                    .as_array()?
                    .iter()
                    .any(|m| m["member"]["user"] == user.as_str())
                    .then_some(())
            },
        )
        .await;
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
