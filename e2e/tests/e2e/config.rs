//! Missing or invalid configuration: one line naming the setting, exit code 2.

use std::process::Command;

use e2e::bin_path;

const SERVICE_TOKEN: &str = "config-test-service-token-0123456789";

fn run(binary: &str, env: &[(&str, &str)]) -> (Option<i32>, String) {
    let out = Command::new(bin_path(binary))
        .env_clear()
        .envs(env.iter().copied())
        .output()
        .expect("run binary");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// (binary, environment, the setting its error line must name)
type Case<'a> = (&'a str, Vec<(&'a str, &'a str)>, &'a str);

#[test]
fn every_binary_refuses_bad_configuration_with_exit_2_and_one_line() {
    let redis = ("REDIS_URL", "redis://127.0.0.1:6379");
    let secret = ("JWT_SECRET", "0123456789abcdef0123");
    let users = ("USER_SERVICE_URL", "http://127.0.0.1:50052");
    let history = ("HISTORY_SERVICE_URL", "http://127.0.0.1:50051");
    let seed = testkit::redis_url();
    let mut cases: Vec<Case<'_>> = vec![
        ("gateway", vec![], "REDIS_URL"),
        ("gateway", vec![redis, secret, users], "HISTORY_SERVICE_URL"),
        (
            "gateway",
            vec![
                ("REDIS_URL", "redis://127.0.0.1:7000,redis://127.0.0.1:7001"),
                secret,
                users,
                history,
            ],
            "REDIS_URL",
        ),
        (
            "gateway",
            vec![redis, ("REDIS_CLUSTER", "maybe"), secret, users, history],
            "REDIS_CLUSTER",
        ),
        (
            "gateway",
            vec![redis, secret, users, history, ("INGRESS_PARTITIONS", "0")],
            "INGRESS_PARTITIONS",
        ),
        (
            "chat-service",
            vec![redis, users, history, ("INGRESS_PARTITIONS", "100000")],
            "INGRESS_PARTITIONS",
        ),
        (
            "gateway",
            vec![("REDIS_URL", "nope://x"), secret, users, history],
            "REDIS_URL",
        ),
        (
            "gateway",
            vec![redis, ("JWT_SECRET", "short"), users, history],
            "JWT_SECRET",
        ),
        (
            "gateway",
            vec![
                redis,
                secret,
                users,
                history,
                ("LISTEN_ADDR", "not-an-addr"),
            ],
            "LISTEN_ADDR",
        ),
        (
            "gateway",
            vec![redis, secret, users, history, ("ALLOWED_ORIGINS", "evil")],
            "ALLOWED_ORIGINS",
        ),
        (
            "gateway",
            vec![redis, secret, users, history, ("LOG_FORMAT", "xml")],
            "LOG_FORMAT",
        ),
        ("chat-service", vec![redis, users], "HISTORY_SERVICE_URL"),
        (
            "chat-service",
            vec![redis, users, ("HISTORY_SERVICE_URL", "localhost:1")],
            "HISTORY_SERVICE_URL",
        ),
        (
            "chat-service",
            vec![redis, users, history, ("REDIS_PREFIX", "a b")],
            "REDIS_PREFIX",
        ),
        ("history-service", vec![redis], "MONGODB_URI"),
        (
            "history-service",
            vec![redis, ("MONGODB_URI", "http://x")],
            "MONGODB_URI",
        ),
        (
            "history-service",
            vec![
                redis,
                ("MONGODB_URI", "mongodb://x"),
                ("OFFLINE_LIMIT", "0"),
            ],
            "OFFLINE_LIMIT",
        ),
        (
            "history-service",
            vec![
                redis,
                ("MONGODB_URI", "mongodb://x"),
                ("OFFLINE_LIMIT", "many"),
            ],
            "OFFLINE_LIMIT",
        ),
        (
            "gateway",
            vec![redis, secret, users, history],
            "SERVICE_TOKEN",
        ),
        (
            "chat-service",
            vec![redis, users, history, ("SERVICE_TOKEN", "too-short")],
            "SERVICE_TOKEN",
        ),
        (
            "history-service",
            vec![
                redis,
                ("MONGODB_URI", "mongodb://x"),
                ("JWT_SECRET_FILE", "/nonexistent/jwt_secret"),
            ],
            "JWT_SECRET_FILE",
        ),
        (
            "history-service",
            vec![
                redis,
                ("MONGODB_URI", "mongodb://x"),
                ("OPERATOR_TOKEN", "short"),
            ],
            "OPERATOR_TOKEN",
        ),
        (
            "user-service",
            vec![
                secret,
                redis,
                ("DATABASE_URL", "postgres://x"),
                ("JWT_SECRET_FILE", "/etc/hostname"),
            ],
            "JWT_SECRET",
        ),
        ("user-service", vec![secret, redis], "DATABASE_URL"),
        (
            "user-service",
            vec![secret, ("DATABASE_URL", "postgres://x")],
            "REDIS_URL",
        ),
        (
            "user-service",
            vec![secret, redis, ("DATABASE_URL", "mysql://x")],
            "DATABASE_URL",
        ),
    ];
    if testkit::redis_cluster() {
        // A cluster node given as a single Redis: found when connecting.
        cases.push((
            "gateway",
            vec![("REDIS_URL", &seed), secret, users, history],
            "REDIS_URL",
        ));
    }
    for (binary, mut env, name) in cases {
        // What each binary needs besides, unless the case is about it.
        let mut needs = vec![("SERVICE_TOKEN", SERVICE_TOKEN)];
        if binary == "history-service" {
            needs.extend([secret, users]);
        }
        for need in needs {
            if !name.starts_with(need.0) && !env.iter().any(|(k, _)| k.starts_with(need.0)) {
                env.push(need);
            }
        }
        let (code, stderr) = run(binary, &env);
        assert_eq!(code, Some(2), "{binary} {env:?}: {stderr}");
        assert_eq!(
            stderr.trim_end().lines().count(),
            1,
            "{binary} {env:?}: one line, got {stderr:?}"
        );
        let flag = format!("--{}", name.to_lowercase().replace('_', "-"));
        assert!(
            stderr.contains(name) || stderr.contains(&flag),
            "{binary} {env:?}: the line names {name}: {stderr:?}"
        );
    }
}

#[test]
fn help_exits_zero() {
    for binary in ["gateway", "chat-service", "history-service", "user-service"] {
        let out = Command::new(bin_path(binary))
            .arg("--help")
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(0), "{binary}");
        assert!(
            String::from_utf8_lossy(&out.stdout).contains("REDIS_URL") || binary == "user-service"
        );
    }
}
