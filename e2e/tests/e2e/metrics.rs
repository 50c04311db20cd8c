//! What operators scrape: every service's `/metrics` lists every metric the
//! dashboard and the alert rules query (checked by the same script
//! `scripts/test` runs on the deployment files, but against live output),
//! and one DM fills the latency histograms of the path users feel.

use std::{process::Command, time::Duration};

use e2e::{Stack, StackOptions};
use testkit::WsClient;

use crate::helpers::{send, user};

async fn scrape(port: u16) -> String {
    reqwest::get(format!("http://127.0.0.1:{port}/metrics"))
        .await
        .expect("ops port answers")
        .text()
        .await
        .expect("metrics text")
}

/// The value of the unlabelled series `name` summed over `texts`.
fn total(texts: &[String], name: &str) -> f64 {
    texts
        .iter()
        .flat_map(|t| t.lines())
        .filter_map(|line| line.strip_prefix(name)?.strip_prefix(' '))
        .filter_map(|v| v.trim().parse::<f64>().ok())
        .sum()
}

#[tokio::test]
async fn live_metrics_cover_the_dashboard_and_one_dm_fills_the_latency_histograms() {
    let stack = Stack::start(StackOptions::default()).await;
    let alice = user(&stack, 0, "alice").await;
    let bob = user(&stack, 1, "bob").await;
    let (mut a, _) = WsClient::connect_ready(stack.gateway_ports[0], &alice).await;
    let (mut b, _) = WsClient::connect_ready(stack.gateway_ports[1], &bob).await;
    a.send_json(&send("m1", "user:bob", "measured")).await;
    a.recv_type("sent").await;
    b.recv_type("message").await;

    // The archiver and the histograms' upkeep run on their own time.
    let texts =
        testkit::wait::eventually("the DM in every histogram", Duration::from_secs(30), || {
            let ports: Vec<u16> = stack.ops_ports.iter().map(|(_, p)| *p).collect();
            async move {
                let mut texts = Vec::new();
                for port in ports {
                    texts.push(scrape(port).await);
                }
                let filled = [
                    "gateway_send_to_sent_seconds_count",
                    "gateway_send_to_delivered_seconds_count",
                    "chat_append_seconds_count",
                    "chat_batch_entries_count",
                    "history_archive_age_seconds_count",
                ]
                .iter()
                .all(|name| total(&texts, name) >= 1.0);
                filled.then_some(texts)
            }
        })
        .await;
    assert!(
        texts
            .iter()
            .any(|t| t.contains("chat_batch_seconds_bucket{le=")),
        "batch time is a histogram with buckets"
    );

    let dir = stack.log_dir.join("metrics");
    std::fs::create_dir_all(&dir).unwrap();
    let mut args = Vec::new();
    for ((service, _), text) in stack.ops_ports.iter().zip(&texts) {
        let file = dir.join(format!("{service}.txt"));
        std::fs::write(&file, text).unwrap();
        args.push("--metrics".to_owned());
        args.push(file.display().to_string());
    }
    let repo = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let out = Command::new("python3")
        .arg(repo.join("scripts/lib/check-dashboard-metrics"))
        .args(&args)
        .current_dir(&repo)
        .output()
        .expect("python3 runs the checker");
    assert!(
        out.status.success(),
        "the dashboard or an alert queries a metric no service exports:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
