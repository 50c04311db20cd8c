//! There is no Docker engine on the development machines, so the deployment
//! files are checked here against the binaries they run: every service has a
//! health check, the env names are ones the binaries read, ports match
//! design.md, the load balancer upgrades /ws, and every setting is documented.

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

/// A service's environment, with merge keys (`<<: *anchor`) applied.
fn environment(service: &Value) -> BTreeMap<String, String> {
    let mut env = service["environment"].clone();
    env.apply_merge().expect("merge keys");
    serde_yaml::from_value::<BTreeMap<String, Value>>(env)
        .unwrap_or_default()
        .into_iter()
        .map(|(k, v)| (k, serde_yaml::to_string(&v).unwrap().trim().to_owned()))
        .collect()
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
                assert_eq!(cond["condition"], "service_healthy", "{name} -> {dep:?}");
            }
        }
    }
    assert!(
        services["gateway"]["ports"].is_null(),
        "gateway must not pin a host port"
    );
    assert_eq!(services["lb"]["ports"][0], "8080:8080");
    assert_eq!(services["history-service"]["ports"][0], "50051:50051");
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
    assert_eq!(
        env("chat-service")["HISTORY_SERVICE_URL"],
        "http://history-service:50051"
    );
    assert_eq!(
        env("gateway")["JWT_SECRET"],
        env("user-service")["JWT_SECRET"]
    );
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
    assert!(dockerfile.contains("USER chat"));
    assert!(dockerfile.contains("debian:bookworm-slim"));
    assert!(dockerfile.contains("cargo chef cook --release"));
}

#[test]
fn dev_up_runs_the_same_topology_on_the_documented_ports() {
    let dev_up = read("scripts/dev-up");
    for needle in [
        "LISTEN_ADDR=0.0.0.0:8081",
        "LISTEN_ADDR=0.0.0.0:8082",
        "LISTEN_ADDR=0.0.0.0:50051",
        "LISTEN_ADDR=127.0.0.1:50052",
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
