//! There is no Docker engine on the development machines, so the deployment
//! files are checked here against the binaries they run: every service has a
//! health check, the env names are ones the binaries read, ports match
//! docs/protocol.md (Ports, health and configuration), the load balancer
//! upgrades /ws, and every setting is documented. The trust boundary too: no
//! secret has a default or a literal value (they are generated into the
//! `secrets` volume), only the load balancer and the loopback-bound public
//! history port are published, and nginx logs no query strings.

use std::{
    collections::{BTreeMap, BTreeSet},
    path::PathBuf,
    process::Command,
};

use e2e::bin_path;
use serde_yaml::Value;

pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

pub fn read(path: &str) -> String {
    std::fs::read_to_string(repo().join(path)).unwrap_or_else(|e| panic!("{path}: {e}"))
}

pub const BINARIES: [&str; 4] = ["gateway", "chat-service", "history-service", "user-service"];

/// The one-shot compose service that writes the secrets on first start.
const SECRETS_INIT: &str = "secrets-init";

/// Where the `secrets` volume is mounted; every `*_FILE` setting points here.
pub const SECRETS_DIR: &str = "/run/chat-secrets/";

/// Whether a setting holds a credential, by its name.
pub fn is_secret_name(name: &str) -> bool {
    ["SECRET", "TOKEN", "PASSWORD"]
        .iter()
        .any(|word| name.contains(word))
}

/// The environment variables a binary reads, from its `--help`.
pub fn env_vars(binary: &str) -> BTreeSet<String> {
    let out = Command::new(bin_path(binary))
        .arg("--help")
        .env_clear()
        .output()
        .unwrap();
    let help = String::from_utf8_lossy(&out.stdout);
    help.split("[env: ")
        .skip(1)
        .map(|s| {
            s.chars()
                .take_while(|c| c.is_ascii_uppercase() || *c == '_' || c.is_ascii_digit())
                .collect()
        })
        .collect()
}

fn compose() -> Value {
    serde_yaml::from_str(&read("docker-compose.yml")).expect("docker-compose.yml is YAML")
}

fn services(compose: &Value) -> BTreeMap<String, Value> {
    let mut merged = compose["services"].clone();
    merged.apply_merge().expect("merge keys");
    serde_yaml::from_value(merged).unwrap()
}

/// A service's environment, with merge keys (`<<: *anchor`) applied; values
/// as written (before compose substitutes `${...}`).
fn environment(service: &Value) -> BTreeMap<String, String> {
    let mut env = service["environment"].clone();
    env.apply_merge().expect("merge keys");
    serde_yaml::from_value::<BTreeMap<String, Value>>(env)
        .unwrap_or_default()
        .into_iter()
        .map(|(k, v)| {
            let v = match v.as_str() {
                Some(s) => s.to_owned(),
                None => serde_yaml::to_string(&v).unwrap().trim().to_owned(),
            };
            (k, v)
        })
        .collect()
}

/// A service's volume entries (short form, `source:target[:mode]`).
fn volumes(service: &Value) -> Vec<&str> {
    service["volumes"]
        .as_sequence()
        .into_iter()
        .flatten()
        .map(|v| v.as_str().expect("volumes in the short form"))
        .collect()
}

/// Every string in a YAML document, keys included: what compose interpolates.
fn strings(value: &Value, out: &mut Vec<String>) {
    match value {
        Value::String(s) => out.push(s.clone()),
        Value::Sequence(seq) => {
            for v in seq {
                strings(v, out);
            }
        }
        Value::Mapping(map) => {
            for (k, v) in map {
                strings(k, out);
                strings(v, out);
            }
        }
        Value::Tagged(tagged) => strings(&tagged.value, out),
        Value::Null | Value::Bool(_) | Value::Number(_) => {}
    }
}

/// Compose interpolation of `text`: every `${NAME<modifier>}` as (NAME,
/// modifier), e.g. `("JWT_SECRET", ":-")`, and the text with each replaced by
/// `VALUE` (`$$`, a literal `$`, becomes `$`).
fn interpolate(text: &str) -> (Vec<(String, String)>, String) {
    let mut found = Vec::new();
    let mut out = String::new();
    let mut rest = text;
    while let Some(at) = rest.find('$') {
        out.push_str(&rest[..at]);
        let after = &rest[at + 1..];
        if let Some(escaped) = after.strip_prefix('$') {
            out.push('$');
            rest = escaped;
        } else if let Some(body) = after.strip_prefix('{') {
            let end = body.find('}').expect("unclosed ${ in docker-compose.yml");
            let expr = &body[..end];
            let name_len = expr
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .unwrap_or(expr.len());
            found.push((expr[..name_len].to_owned(), expr[name_len..].to_owned()));
            out.push_str("VALUE");
            rest = &body[end + 1..];
        } else {
            out.push('$');
            rest = after;
        }
    }
    out.push_str(rest);
    (found, out)
}

#[test]
fn compose_services_are_healthy_wired_and_scalable() {
    let compose = compose();
    let services = services(&compose);
    for name in [
        "redis",
        "mongo",
        "postgres",
        "user-service",
        "history-service",
        "chat-service",
        "gateway",
        "lb",
    ] {
        let s = services
            .get(name)
            .unwrap_or_else(|| panic!("service {name} missing"));
        assert!(
            !s["healthcheck"]["test"].is_null(),
            "{name} has no healthcheck"
        );
        if let Some(deps) = s["depends_on"].as_mapping() {
            for (dep, cond) in deps {
                // The one-shot secrets-init is never healthy: it completes.
                let expected = if dep.as_str() == Some(SECRETS_INIT) {
                    "service_completed_successfully"
                } else {
                    "service_healthy"
                };
                assert_eq!(cond["condition"], expected, "{name} -> {dep:?}");
            }
        }
    }
    assert!(
        services["gateway"]["ports"].is_null(),
        "gateway must not pin a host port"
    );
    assert_eq!(services["lb"]["ports"][0], "8080:8080");
    assert_eq!(
        services["history-service"]["ports"][0],
        "127.0.0.1:50051:50051"
    );
    assert_eq!(services["chat-service"]["deploy"]["replicas"], 2);
    let redis_cmd = serde_yaml::to_string(&services["redis"]["command"]).unwrap();
    assert!(
        redis_cmd.contains("--appendonly") && redis_cmd.contains("yes"),
        "AOF on"
    );
    for volume in ["redis", "mongo", "postgres"] {
        assert!(
            !services[volume]["volumes"].is_null(),
            "{volume} keeps its data in a volume"
        );
    }
}

#[test]
fn compose_env_names_are_read_by_the_binaries_and_ports_match() {
    let services = services(&compose());
    for binary in BINARIES {
        let accepted = env_vars(binary);
        let service = &services[binary];
        assert_eq!(service["command"][0], binary);
        for (name, _) in environment(service) {
            assert!(
                accepted.contains(&name) || name == "RUST_LOG",
                "{binary} does not read {name} (it reads {accepted:?})"
            );
        }
    }
    let env = |s: &str| environment(&services[s]);
    assert_eq!(env("gateway")["LISTEN_ADDR"], "0.0.0.0:8080");
    assert_eq!(env("history-service")["LISTEN_ADDR"], "0.0.0.0:50051");
    assert_eq!(env("user-service")["LISTEN_ADDR"], "0.0.0.0:50052");
    assert_eq!(
        env("gateway")["USER_SERVICE_URL"],
        "http://user-service:50052"
    );
    assert_eq!(env("history-service")["INTERNAL_ADDR"], "0.0.0.0:50061");
    assert_eq!(env("gateway")["OPS_ADDR"], "0.0.0.0:9090");
    // Append and AckOffline exist only on history's internal port.
    for client in ["gateway", "chat-service"] {
        assert_eq!(
            env(client)["HISTORY_SERVICE_URL"],
            "http://history-service:50061",
            "{client}"
        );
    }
    for client in ["gateway", "chat-service", "history-service"] {
        assert_eq!(
            env(client)["USER_SERVICE_URL"],
            "http://user-service:50052",
            "{client}"
        );
    }
    // 8080 no longer serves /readyz: the gateway is checked on its ops port.
    let gateway_check = serde_yaml::to_string(&services["gateway"]["healthcheck"]["test"]).unwrap();
    assert!(
        gateway_check.contains("http://127.0.0.1:9090/readyz"),
        "{gateway_check}"
    );
    // Each secret is one file of the volume, the same for all its readers.
    let secret = |file: &str| format!("{SECRETS_DIR}{file}");
    for binary in BINARIES {
        assert_eq!(
            env(binary)["SERVICE_TOKEN_FILE"],
            secret("service_token"),
            "{binary}"
        );
    }
    for binary in ["gateway", "user-service", "history-service"] {
        assert_eq!(
            env(binary)["JWT_SECRET_FILE"],
            secret("jwt_secret"),
            "{binary}"
        );
    }
    assert_eq!(
        env("user-service")["DATABASE_PASSWORD_FILE"],
        secret("postgres_password")
    );
    assert_eq!(
        env("postgres")["POSTGRES_PASSWORD_FILE"],
        secret("postgres_password")
    );
}

#[test]
fn compose_has_no_default_or_literal_secret() {
    let compose = compose();
    let mut texts = Vec::new();
    strings(&compose, &mut texts);
    for text in &texts {
        assert!(
            !text.contains("change-me-to-32-random-bytes"),
            "the old published JWT secret is back: {text}"
        );
        for (name, modifier) in interpolate(text).0 {
            if !is_secret_name(&name) {
                continue;
            }
            // `${X:-}` (empty when unset) is fine; `${X:-fallback}` is a
            // secret anyone can read in this repository.
            let fallback = modifier
                .strip_prefix(":-")
                .or_else(|| modifier.strip_prefix('-'));
            assert!(
                fallback.is_none_or(str::is_empty),
                "{name} has a default ({modifier}): secrets must have none"
            );
        }
    }
    let services = services(&compose);
    for (service, definition) in &services {
        for (name, value) in environment(definition) {
            if is_secret_name(&name) {
                if name.ends_with("_FILE") {
                    assert!(
                        value.starts_with(SECRETS_DIR),
                        "{service}: {name}={value} is outside the secrets volume"
                    );
                } else {
                    // Only the init container sees raw values, and only the
                    // ones a .env supplies.
                    assert_eq!(
                        service.as_str(),
                        SECRETS_INIT,
                        "{service}: pass {name} as {name}_FILE"
                    );
                    assert_eq!(value, format!("${{{name}:-}}"), "{service}: {name}");
                }
            }
            // No URL carries a password either (user:password@host).
            let (_, value) = interpolate(&value);
            if let Some((_, after_scheme)) = value.split_once("://") {
                let authority = after_scheme.split('/').next().unwrap_or_default();
                if let Some((userinfo, _)) = authority.rsplit_once('@') {
                    assert!(
                        !userinfo.contains(':'),
                        "{service}: {name} has a password in its URL"
                    );
                }
            }
        }
    }
}

#[test]
fn compose_publishes_only_the_load_balancer_and_the_loopback_history_port() {
    let services = services(&compose());
    let mut published = BTreeSet::new();
    for (name, service) in &services {
        assert!(
            service["network_mode"].is_null() || service["network_mode"] == "none",
            "{name}: host networking would publish every port"
        );
        for port in service["ports"].as_sequence().into_iter().flatten() {
            let port = port
                .as_str()
                .unwrap_or_else(|| panic!("{name}: write ports as \"host:container\" strings"));
            published.insert((name.as_str(), port));
        }
    }
    // 8080: the nginx load balancer (the gateways behind it have no host
    // port). 50051: history's public API, on the loopback interface only.
    // Internal gRPC (50061, 50052), ops (9090) and the data stores: none.
    assert_eq!(
        published,
        BTreeSet::from([
            ("grafana", "127.0.0.1:3000:3000"),
            ("history-service", "127.0.0.1:50051:50051"),
            ("lb", "8080:8080"),
            ("prometheus", "127.0.0.1:9090:9090"),
        ])
    );
}

#[test]
fn every_reader_of_a_secret_waits_for_secrets_init() {
    let services = services(&compose());
    let init = &services[SECRETS_INIT];
    assert_eq!(init["restart"], "no", "a one-shot must not be restarted");
    assert!(
        volumes(init).contains(&"secrets:/run/chat-secrets"),
        "secrets-init writes the volume"
    );
    let readers: Vec<&str> = BINARIES.iter().copied().chain(["postgres"]).collect();
    for name in &readers {
        let service = &services[*name];
        assert_eq!(
            service["depends_on"][SECRETS_INIT]["condition"], "service_completed_successfully",
            "{name} must not start before its secrets exist"
        );
        assert!(
            volumes(service).contains(&"secrets:/run/chat-secrets:ro"),
            "{name} mounts the secrets read-only"
        );
    }
    // Nothing else sees the secrets (redis, mongo, the load balancer).
    for (name, service) in &services {
        if volumes(service).iter().any(|v| v.starts_with("secrets:")) {
            assert!(
                name == SECRETS_INIT || readers.contains(&name.as_str()),
                "{name} mounts the secrets but reads none"
            );
        }
    }
}

#[test]
fn the_load_balancer_upgrades_websockets_and_follows_scaling() {
    let nginx = read("deploy/nginx.conf");
    let ws = nginx.split("location /ws").nth(1).expect("a /ws location");
    let ws = &ws[..ws.find('}').unwrap()];
    assert!(ws.contains("proxy_http_version 1.1"));
    assert!(ws.contains("proxy_set_header Upgrade $http_upgrade"));
    assert!(ws.contains("proxy_set_header Connection"));
    assert!(ws.contains("proxy_read_timeout 3600s"));
    assert!(
        nginx.contains("resolver 127.0.0.11"),
        "re-resolves scaled replicas"
    );
    assert!(nginx.contains("listen 8080"));
}

/// The directives of nginx.conf as (name, arguments), comments removed. Enough
/// for this file: no `#`, `;` or braces inside quoted strings.
fn nginx_directives(conf: &str) -> Vec<(String, String)> {
    let code = conf
        .lines()
        .map(|line| line.split('#').next().unwrap_or_default())
        .collect::<Vec<_>>()
        .join("\n");
    code.split(';')
        .filter_map(|statement| {
            let statement = statement
                .rsplit(['{', '}'])
                .next()
                .unwrap_or_default()
                .trim();
            let (name, args) = statement.split_once(char::is_whitespace)?;
            Some((name.to_owned(), args.trim().to_owned()))
        })
        .collect()
}

/// The `$variables` a log format uses.
fn log_variables(format: &str) -> BTreeSet<String> {
    format
        .split('$')
        .skip(1)
        .map(|s| {
            s.trim_start_matches('{')
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect()
        })
        .collect()
}

#[test]
fn the_load_balancer_logs_no_query_strings_and_hides_ops_endpoints() {
    let conf = read("deploy/nginx.conf");
    let directives = nginx_directives(&conf);
    let formats: BTreeMap<&str, &str> = directives
        .iter()
        .filter(|(name, _)| name == "log_format")
        .filter_map(|(_, args)| args.split_once(char::is_whitespace))
        .collect();
    let access_logs: Vec<&str> = directives
        .iter()
        .filter(|(name, _)| name == "access_log")
        .map(|(_, args)| args.as_str())
        .collect();
    // Without one, nginx's default `combined` format logs $request.
    assert!(
        !access_logs.is_empty(),
        "nginx.conf sets its own access_log"
    );
    // Query strings carry WebSocket credentials (?ticket=, ?token=); bodies
    // carry passwords; these headers carry tokens.
    let forbidden = [
        "request",
        "request_uri",
        "args",
        "query_string",
        "is_args",
        "request_body",
        "http_referer",
        "http_authorization",
        "http_cookie",
    ];
    for args in access_logs {
        let words: Vec<&str> = args.split_whitespace().collect();
        if words == ["off"] {
            continue;
        }
        let format = words
            .get(1)
            .unwrap_or_else(|| panic!("access_log {args}: name a log_format of this file"));
        let body = formats
            .get(format)
            .unwrap_or_else(|| panic!("log_format {format} is not defined in nginx.conf"));
        for var in log_variables(body) {
            assert!(
                !forbidden.contains(&var.as_str())
                    && !var.starts_with("arg_")
                    && !var.starts_with("cookie_"),
                "log_format {format} records ${var}"
            );
        }
    }
    // Error-log lines quote the whole request line, query string included.
    assert!(
        directives
            .iter()
            .any(|(name, args)| name == "error_log" && args.ends_with(" crit")),
        "error_log at crit"
    );
    // /metrics and /readyz are refused at the edge.
    let code: String = conf
        .lines()
        .map(|line| line.split('#').next().unwrap_or_default())
        .collect::<Vec<_>>()
        .join("\n");
    for path in ["/metrics", "/readyz"] {
        let header = format!("location = {path}");
        let at = code
            .find(&header)
            .unwrap_or_else(|| panic!("nginx.conf has no `{header}`"));
        let block = code[at + header.len()..]
            .trim_start()
            .strip_prefix('{')
            .and_then(|b| b.split('}').next())
            .unwrap_or_else(|| panic!("`{header}` has no block"));
        assert!(
            block.contains("return 404") || block.contains("deny all"),
            "{path} must not reach a gateway: {block}"
        );
    }
}

#[test]
fn the_image_has_every_binary_and_a_tool_free_healthcheck() {
    let dockerfile = read("deploy/Dockerfile");
    for binary in BINARIES.iter().chain(&["probe"]) {
        assert!(
            dockerfile.contains(&format!("target/release/{binary}")),
            "{binary}"
        );
    }
    assert!(dockerfile.contains("HEALTHCHECK"));
    assert!(dockerfile.contains("CMD [\"probe\"]"));
    assert!(dockerfile.contains("USER 10001:10001"));
    assert!(dockerfile.contains("debian:bookworm-slim"));
    assert!(dockerfile.contains("cargo chef cook --release"));
}

#[test]
fn dev_up_runs_the_same_topology_on_the_documented_ports() {
    let dev_up = read("scripts/dev-up");
    for needle in [
        "LISTEN_ADDR=0.0.0.0:8081",
        "LISTEN_ADDR=0.0.0.0:8082",
        "LISTEN_ADDR=127.0.0.1:50051",
        "INTERNAL_ADDR=127.0.0.1:50061",
        "LISTEN_ADDR=127.0.0.1:50052",
        "OPS_ADDR=127.0.0.1:9095",
        "SERVICE_TOKEN_FILE",
        "chat-service-1",
        "chat-service-2",
    ] {
        assert!(dev_up.contains(needle), "scripts/dev-up lacks {needle}");
    }
}

#[test]
fn every_setting_a_binary_reads_is_documented_in_the_readme() {
    let readme = read("README.md");
    for binary in BINARIES {
        for name in env_vars(binary) {
            assert!(
                readme.contains(&format!("`{name}`")),
                "README does not document {name} ({binary})"
            );
        }
    }
    assert!(readme.contains("docker compose up --build"));
    assert!(readme.contains("scripts/test"));
    assert!(
        read(".ci/run").contains("scripts/test"),
        ".ci/run runs the README's test command"
    );
}
