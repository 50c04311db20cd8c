//! The whole topology as processes: user-service, history-service, M
//! chat-service workers and N gateways, on free ports, with fresh storage.

use std::{path::PathBuf, time::Duration};

use testkit::{JWT_SECRET, SERVICE_TOKEN, Storage};

use crate::process::Service;

pub struct StackOptions {
    pub gateways: usize,
    pub workers: usize,
    /// Extra settings for every gateway, e.g. a higher rate limit.
    pub gateway_env: Vec<(&'static str, String)>,
    /// Extra settings for every chat-service worker.
    pub worker_env: Vec<(&'static str, String)>,
    /// Extra settings for history-service.
    pub history_env: Vec<(&'static str, String)>,
    /// Extra settings for user-service, e.g. a short token lifetime.
    pub user_env: Vec<(&'static str, String)>,
    /// The archive's MongoDB (default: the test server of the environment).
    pub mongodb_uri: Option<String>,
    /// Per gateway, the Redis URL it uses (default: the test Redis), e.g. a
    /// proxy whose link a test cuts.
    pub gateway_redis: Vec<String>,
    /// The workers reach history-service through a proxy whose link a test
    /// can cut ([`Stack::history_link`]).
    pub history_link: bool,
}

impl Default for StackOptions {
    fn default() -> Self {
        Self {
            gateways: 2,
            workers: 2,
            gateway_env: Vec::new(),
            worker_env: Vec::new(),
            history_env: Vec::new(),
            user_env: Vec::new(),
            mongodb_uri: None,
            gateway_redis: Vec::new(),
            history_link: false,
        }
    }
}

pub struct Stack {
    pub storage: Storage,
    pub log_dir: PathBuf,
    pub user: Service,
    pub history: Service,
    pub workers: Vec<Service>,
    pub gateways: Vec<Service>,
    pub gateway_ports: Vec<u16>,
    /// history-service's public port (a user's JWT required).
    pub history_port: u16,
    /// history-service's internal port (the service token required).
    pub history_internal_port: u16,
    pub user_port: u16,
    pub ops_ports: Vec<(String, u16)>,
    /// With [`StackOptions::history_link`]: the link between the workers and
    /// history-service's internal port.
    pub history_link: Option<testkit::proxy::TcpProxy>,
}

/// INGRESS_PARTITIONS and ARCHIVE_PARTITIONS of every stack.
pub const PARTITIONS: usize = 3;

/// The operator credential the stack's history-service accepts.
pub const OPERATOR_TOKEN: &str = "e2e-operator-token-0123456789abcdef";

impl Stack {
    pub async fn start(options: StackOptions) -> Self {
        let storage = Storage::with_postgres().await;
        let log_dir = std::env::temp_dir().join(format!("chat-e2e-{}", storage.id));
        std::fs::create_dir_all(&log_dir).expect("log dir");
        let common = vec![
            ("REDIS_URL".to_owned(), testkit::redis_url()),
            (
                "REDIS_CLUSTER".to_owned(),
                testkit::redis_cluster().to_string(),
            ),
            ("REDIS_PREFIX".to_owned(), storage.redis_prefix.clone()),
            // Several partitions, so every end-to-end test also runs sends
            // and the archive through partitioned streams (harmless where
            // a service does not read one of the two).
            ("INGRESS_PARTITIONS".to_owned(), PARTITIONS.to_string()),
            ("ARCHIVE_PARTITIONS".to_owned(), PARTITIONS.to_string()),
            ("JWT_SECRET".to_owned(), JWT_SECRET.to_owned()),
            ("SERVICE_TOKEN".to_owned(), SERVICE_TOKEN.to_owned()),
            ("LOG_FORMAT".to_owned(), "json".to_owned()),
        ];
        let env = |extra: Vec<(&str, String)>| {
            let mut e = common.clone();
            e.extend(extra.into_iter().map(|(k, v)| (k.to_owned(), v)));
            e
        };
        // Every listener is on port 0 and its address is read back from the
        // service's log: ports picked in advance can be taken in between by
        // the outgoing connections of tests running in parallel.
        let any = "127.0.0.1:0".to_owned();
        let mut ops_ports = Vec::new();

        let mut user = Service::start(
            "user-service",
            "user-service",
            &env([
                ("DATABASE_URL", storage.database_url()),
                ("LISTEN_ADDR", any.clone()),
                ("OPS_ADDR", any.clone()),
            ]
            .into_iter()
            .chain(options.user_env.iter().cloned())
            .collect()),
            &log_dir,
        );
        let user_port = user.bound_port("grpc").await;
        let mut history = Service::start(
            "history-service",
            "history-service",
            &env(vec![
                (
                    "MONGODB_URI",
                    options
                        .mongodb_uri
                        .clone()
                        .unwrap_or_else(testkit::mongodb_uri),
                ),
                ("MONGODB_DATABASE", storage.mongodb_database.clone()),
                ("LISTEN_ADDR", any.clone()),
                ("INTERNAL_ADDR", any.clone()),
                ("OPS_ADDR", any.clone()),
                ("INSTANCE_ID", "history-1".into()),
                ("USER_SERVICE_URL", format!("http://127.0.0.1:{user_port}")),
                ("OPERATOR_TOKEN", OPERATOR_TOKEN.into()),
            ]
            .into_iter()
            .chain(options.history_env.iter().cloned())
            .collect()),
            &log_dir,
        );
        ops_ports.push((user.name.clone(), user.bound_port("ops").await));
        let history_port = history.bound_port("grpc").await;
        let history_internal_port = history.bound_port("internal").await;
        ops_ports.push((history.name.clone(), history.bound_port("ops").await));
        let upstreams = vec![
            ("USER_SERVICE_URL", format!("http://127.0.0.1:{user_port}")),
            (
                "HISTORY_SERVICE_URL",
                format!("http://127.0.0.1:{history_internal_port}"),
            ),
        ];
        let history_link = if options.history_link {
            let target = ([127, 0, 0, 1], history_internal_port).into();
            Some(testkit::proxy::TcpProxy::start(target).await)
        } else {
            None
        };
        let mut workers = Vec::new();
        for i in 0..options.workers {
            let name = format!("chat-service-{i}");
            let mut e = upstreams.clone();
            if let Some(link) = &history_link {
                e.retain(|(k, _)| *k != "HISTORY_SERVICE_URL");
                e.push(("HISTORY_SERVICE_URL", link.url()));
            }
            e.push(("OPS_ADDR", any.clone()));
            e.push(("CONSUMER_NAME", format!("chat-{i}")));
            e.push(("CLAIM_IDLE_MS", "3000".into()));
            e.extend(options.worker_env.iter().cloned());
            workers.push(Service::start(&name, "chat-service", &env(e), &log_dir));
        }
        let mut gateways = Vec::new();
        for i in 0..options.gateways {
            let name = format!("gateway-{i}");
            let mut e = upstreams.clone();
            e.push(("LISTEN_ADDR", any.clone()));
            e.push(("OPS_ADDR", any.clone()));
            e.push(("GATEWAY_ID", format!("gw-{i}")));
            // Tests register many users from one address; a test of the
            // limit itself overrides this.
            e.push(("REGISTRATIONS_PER_IP", "10000".into()));
            e.push(("MEMBERSHIP_CHANGES_PER_USER", "10000".into()));
            // Debug builds sharing two cores with parallel tests can queue
            // for a second; shedding then would fail unrelated tests (its
            // own test sets a short wait).
            e.push(("INGRESS_MAX_WAIT_MS", "30000".into()));
            if let Some(url) = options.gateway_redis.get(i) {
                e.push(("REDIS_URL", url.clone()));
            }
            e.extend(options.gateway_env.iter().cloned());
            gateways.push(Service::start(&name, "gateway", &env(e), &log_dir));
        }
        for worker in &mut workers {
            let port = worker.bound_port("ops").await;
            ops_ports.push((worker.name.clone(), port));
        }
        let mut gateway_ports = Vec::new();
        for gateway in &mut gateways {
            let port = gateway.bound_port("http").await;
            gateway_ports.push(port);
            let ops = gateway.bound_port("ops").await;
            ops_ports.push((gateway.name.clone(), ops));
        }
        let stack = Self {
            storage,
            log_dir,
            user,
            history,
            workers,
            gateways,
            gateway_ports,
            history_port,
            history_internal_port,
            user_port,
            ops_ports,
            history_link,
        };
        stack.wait_ready().await;
        stack
    }

    /// Every service's /readyz answers 200.
    pub async fn wait_ready(&self) {
        for (name, port) in &self.ops_ports {
            let url = format!("http://127.0.0.1:{port}/readyz");
            if !testkit::wait::answers_ok(&url, Duration::from_secs(60)).await {
                let tail = self
                    .services()
                    .into_iter()
                    .find(|s| &s.name == name)
                    .map(Service::log_tail)
                    .unwrap_or_default();
                panic!("{name} not ready within 60s; its log ends:\n{tail}");
            }
        }
    }

    /// Registers `username` (password "password123") and logs in through
    /// gateway `index`; returns the token.
    pub async fn user(&self, index: usize, username: &str) -> String {
        let http = reqwest::Client::new();
        let body = serde_json::json!({"username": username, "password": "password123"});
        let r = http
            .post(self.gateway_url(index, "/api/register"))
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 201, "{:?}", r.text().await);
        let r = http
            .post(self.gateway_url(index, "/api/login"))
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        let v: serde_json::Value = r.json().await.unwrap();
        v["token"].as_str().unwrap().to_owned()
    }

    pub fn gateway_url(&self, index: usize, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.gateway_ports[index])
    }

    pub fn history_addr(&self) -> String {
        format!("127.0.0.1:{}", self.history_port)
    }

    /// Every service process, for signalling them all.
    pub fn services(&self) -> Vec<&Service> {
        let mut all = vec![&self.user, &self.history];
        all.extend(&self.workers);
        all.extend(&self.gateways);
        all
    }

    /// The Redis client addresses (`ip:port`) of the connections of the
    /// processes `pids` to Redis node `node` (its URL).
    fn redis_addrs(pids: &[u32], node: &str) -> Vec<String> {
        let port = node
            .rsplit(':')
            .next()
            .unwrap_or("6379")
            .trim_end_matches('/');
        let out = std::process::Command::new("ss")
            .args([
                "-Htnp",
                "state",
                "established",
                &format!("( dport = :{port} )"),
            ])
            .output()
            .expect("ss (iproute2) is needed for this test");
        let pids: Vec<String> = pids.iter().map(|p| format!("pid={p},")).collect();
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter(|line| pids.iter().any(|p| line.contains(p.as_str())))
            .filter_map(|line| line.split_whitespace().nth(2).map(str::to_owned))
            .collect()
    }

    /// Kills only gateway `index`'s pub/sub connections (CLIENT KILL ID of
    /// each client of that process with a subscription, on whichever node
    /// holds it: its deliveries, revocations and forwarded frames), leaving
    /// its command connections be. Returns whether its delivery
    /// subscription could have been among them (at least one was killed).
    pub async fn kill_pubsub_connection(&self, index: usize) -> bool {
        let pid = self.gateways[index].pid();
        let mut killed_any = false;
        for node in testkit::redis::redis_nodes().await {
            let addrs = Self::redis_addrs(&[pid], &node);
            let mut redis = testkit::redis::node_connection(&node).await;
            let clients: String = redis::cmd("CLIENT")
                .arg("LIST")
                .query_async(&mut redis)
                .await
                .unwrap();
            let field = |line: &str, name: &str| {
                line.split(' ')
                    .find_map(|kv| kv.strip_prefix(name))
                    .map(str::to_owned)
            };
            for line in clients.lines() {
                let subscribed = ["sub=", "ssub="]
                    .iter()
                    .any(|f| field(line, f).is_some_and(|n| n != "0"));
                let ours = field(line, "addr=").is_some_and(|a| addrs.contains(&a));
                if subscribed && ours {
                    let id = field(line, "id=").unwrap_or_default();
                    let killed: redis::RedisResult<i64> = redis::cmd("CLIENT")
                        .arg("KILL")
                        .arg("ID")
                        .arg(&id)
                        .query_async(&mut redis)
                        .await;
                    killed_any |= killed.is_ok_and(|n| n == 1);
                }
            }
        }
        killed_any
    }

    /// Drops every Redis connection of this stack's processes (CLIENT KILL by
    /// address, on every node; the addresses come from `ss`), leaving other
    /// Redis clients be. Returns how many were killed.
    pub async fn kill_redis_connections(&self) -> usize {
        let pids: Vec<u32> = self.services().iter().map(|s| s.pid()).collect();
        let mut killed = 0;
        for node in testkit::redis::redis_nodes().await {
            let mut redis = testkit::redis::node_connection(&node).await;
            for addr in Self::redis_addrs(&pids, &node) {
                let r: redis::RedisResult<()> = redis::cmd("CLIENT")
                    .arg("KILL")
                    .arg(&addr)
                    .query_async(&mut redis)
                    .await;
                if r.is_ok() {
                    killed += 1;
                }
            }
        }
        killed
    }
}
