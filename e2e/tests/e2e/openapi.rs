//! The REST API fuzzed from its own OpenAPI document: schemathesis (a
//! property-based API tester) sends generated requests, valid and invalid,
//! to every operation of a live gateway as a registered user, and must find
//! no 5xx and no response the document does not describe (status, content
//! type, headers, body schema).

use std::process::Command;

use e2e::{Stack, StackOptions};

use crate::helpers::user;

fn schemathesis() -> String {
    std::env::var("TEST_SCHEMATHESIS").unwrap_or_else(|_| {
        panic!(
            "TEST_SCHEMATHESIS is not set: run scripts/test, or `source scripts/lib/servers.sh; \
             ensure_schemathesis` and export TEST_SCHEMATHESIS"
        )
    })
}

#[tokio::test]
async fn schemathesis_finds_no_server_error_and_no_undocumented_response() {
    let stack = Stack::start(StackOptions {
        gateways: 1,
        workers: 1,
        // Generated requests come fast from one address: the abuse limits
        // would answer most of them 429 (documented, but it would starve
        // the fuzzing of everything else).
        gateway_env: vec![
            ("ROOMS_PER_USER", "100000".into()),
            ("LOGIN_FAILURES_PER_CLIENT", "100000".into()),
            ("LOGIN_FAILURES_PER_USER", "100000".into()),
            ("LOGIN_FAILURES_PER_IP", "100000".into()),
            ("RATE_PER_SEC", "100000".into()),
            ("ACCOUNT_MESSAGES_PER_SEC", "0".into()),
        ],
        ..StackOptions::default()
    })
    .await;
    let token = user(&stack, 0, "fuzzer").await;
    let base = stack.gateway_url(0, "");
    // It keeps a cache and reports where it runs: in this test's own
    // directory, never in the checkout.
    let workdir = stack.log_dir.join("schemathesis");
    std::fs::create_dir_all(&workdir).unwrap();
    let binary = schemathesis();
    let output = tokio::task::spawn_blocking(move || {
        Command::new(binary)
            .arg("run")
            .arg(format!("{base}/api/openapi.json"))
            .args(["--url", &base])
            .args([
                "--checks",
                "not_a_server_error,status_code_conformance,content_type_conformance,\
                 response_headers_conformance,response_schema_conformance",
            ])
            .args(["--header", &format!("Authorization: Bearer {token}")])
            .args(["--max-examples", "40", "--seed", "1", "--workers", "1"])
            .current_dir(&workdir)
            .env("SCHEMATHESIS_TELEMETRY", "false")
            .env("NO_COLOR", "1")
            .output()
            .expect("schemathesis runs")
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    // The summary (operations and cases tested) goes to the test's output.
    println!("{stdout}");
    assert!(
        output.status.success(),
        "schemathesis found problems ({}):\n{stdout}\n{stderr}",
        output.status
    );
}
