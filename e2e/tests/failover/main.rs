//! A Redis Cluster master dies under DM traffic: the real binaries keep
//! going on their own once its replica is promoted, and the test reports
//! what asynchronous replication lost (acknowledged messages missing from
//! history, seqs handed out twice). It needs a cluster with replicas
//! (`TEST_REDIS_CLUSTER=1`, `scripts/lib/redis-cluster`): `scripts/test` runs
//! it against one after the end-to-end suite; on a single node it does
//! nothing. Its own binary, because it takes a master away from everyone.

// Shared with the end-to-end suite, which uses more of it.
#[allow(dead_code)]
#[path = "../e2e/chat_client.rs"]
mod chat_client;

use std::{
    collections::HashMap,
    time::{Duration, Instant},
};

use chat_client::ChatClient;
use chat_model::ids::ConversationId;
use e2e::{Stack, StackOptions};
use serde_json::Value;

const PAIRS: usize = 8;
const SEND_EVERY: Duration = Duration::from_millis(100);
const TRAFFIC: Duration = Duration::from_secs(12);
const KILL_AT: Duration = Duration::from_secs(3);

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn killing_a_master_under_dm_traffic_recovers_by_itself_and_reports_the_loss() {
    if !testkit::redis_cluster() {
        eprintln!("skipped: needs a Redis Cluster with replicas (TEST_REDIS_CLUSTER=1)");
        return;
    }
    let stack = Stack::start(StackOptions {
        gateway_env: vec![
            ("RATE_PER_SEC", "1000".into()),
            ("ACCOUNT_MESSAGES_PER_SEC", "0".into()),
            ("RATE_BURST", "1000".into()),
        ],
        ..StackOptions::default()
    })
    .await;
    let mut alices = Vec::new();
    let mut bobs = Vec::new();
    for i in 0..PAIRS {
        let (a, b) = (format!("alice{i}"), format!("bob{i}"));
        let (ta, tb) = (stack.user(0, &a).await, stack.user(1, &b).await);
        alices.push(ChatClient::connect(&a, &ta, stack.gateway_ports[0]).await);
        bobs.push((
            ChatClient::connect(&b, &tb, stack.gateway_ports[1]).await,
            tb,
        ));
    }

    // The master of ingress partition 0's slot: every stream entry, seq and
    // dedup record it holds is in play.
    let victim = Victim::find(&stack.storage.key("{ingress:0}")).await;
    let victim = std::sync::Arc::new(victim);
    let started = Instant::now();
    let mut killed_at = None;
    let mut promotion = None;
    let mut k = 0;
    while started.elapsed() < TRAFFIC {
        for (i, alice) in alices.iter_mut().enumerate() {
            alice
                .send(
                    &format!("m{k}"),
                    &format!("user:bob{i}"),
                    &format!("message {k}"),
                )
                .await;
        }
        k += 1;
        for alice in &mut alices {
            alice.pump(Duration::from_millis(1)).await;
        }
        for (bob, _) in &mut bobs {
            bob.pump(Duration::from_millis(1)).await;
        }
        if killed_at.is_none() && started.elapsed() >= KILL_AT {
            victim.kill();
            let at = Instant::now();
            killed_at = Some(at);
            let victim = victim.clone();
            promotion = Some(tokio::spawn(
                async move { victim.wait_for_promotion(at).await },
            ));
        }
        tokio::time::sleep(SEND_EVERY).await;
    }
    let killed_at = killed_at.expect("the master was killed");
    let promoted_after = promotion.expect("watched").await.unwrap();

    // Recovery needs nobody: every message sent is acknowledged in the end.
    for alice in &mut alices {
        alice.settle(Duration::from_secs(60)).await;
    }
    let recovered_after = killed_at.elapsed();

    // After the failover, new messages go the whole way again.
    for (i, alice) in alices.iter_mut().enumerate() {
        for j in 0..5 {
            alice
                .send(
                    &format!("after{j}"),
                    &format!("user:bob{i}"),
                    &format!("after {j}"),
                )
                .await;
        }
        alice.settle(Duration::from_secs(30)).await;
    }
    let http = reqwest::Client::new();
    let mut report = Report::default();
    for (i, (alice, (bob, bob_token))) in alices.iter().zip(bobs.iter_mut()).enumerate() {
        let conversation = ConversationId::dm(&format!("alice{i}"), &format!("bob{i}"));
        let history = history(&http, &stack, conversation.as_str(), bob_token).await;
        let after: Vec<&(String, u64)> =
            (0..5).map(|j| &alice.acked[&format!("after{j}")]).collect();
        for (id, seq) in &after {
            assert_eq!(
                history.get(seq).map(String::as_str),
                Some(id.as_str()),
                "a message sent after the failover is not in history at its seq"
            );
        }
        let deadline = Instant::now() + Duration::from_secs(30);
        while !after.iter().all(|(id, _)| bob.received.contains_key(id)) {
            assert!(
                Instant::now() < deadline,
                "messages sent after the failover did not reach bob live"
            );
            bob.pump(Duration::from_millis(50)).await;
        }
        report.add(alice, &history);
    }
    println!(
        "failover: killed the master {} (slot {} of ingress partition 0) {:.1} s into {} pairs x {}/s of DMs; \
         replica promoted after {:.1} s, every send acknowledged {:.1} s after the kill\n  {}",
        victim.addr,
        victim.slot,
        KILL_AT.as_secs_f64(),
        PAIRS,
        1000 / SEND_EVERY.as_millis(),
        promoted_after.as_secs_f64(),
        recovered_after.as_secs_f64(),
        report.line()
    );
    victim.restart().await;
}

/// The history of `conversation` as seq → id.
async fn history(
    http: &reqwest::Client,
    stack: &Stack,
    conversation: &str,
    token: &str,
) -> HashMap<u64, String> {
    let mut out = HashMap::new();
    let mut after = 0;
    loop {
        let url = stack.gateway_url(
            1,
            &format!("/api/conversations/{conversation}/messages?after={after}&limit=200"),
        );
        let page = testkit::recovery::get(http, &url, token).await.unwrap();
        let messages = page["messages"].as_array().cloned().unwrap_or_default();
        for m in &messages {
            let seq = m["seq"].as_u64().unwrap();
            out.insert(seq, m["id"].as_str().unwrap().to_owned());
            after = seq;
        }
        if page["has_more"] != true || messages.is_empty() {
            return out;
        }
    }
}

/// What asynchronous replication lost, over every pair.
#[derive(Default)]
struct Report {
    acked: usize,
    in_history: usize,
    /// Acknowledged, and in history under no seq.
    missing: usize,
    /// Acknowledged with a seq that history holds for another message: the
    /// seq counter went back to what the replica had.
    seq_reused: usize,
}

impl Report {
    fn add(&mut self, alice: &ChatClient, history: &HashMap<u64, String>) {
        let ids: std::collections::HashSet<&String> = history.values().collect();
        for (id, seq) in alice.acked.values() {
            self.acked += 1;
            if history.get(seq) == Some(id) {
                self.in_history += 1;
            } else if ids.contains(id) {
                // Stored, under another seq than acknowledged.
                self.seq_reused += 1;
            } else {
                self.missing += 1;
                if history.contains_key(seq) {
                    self.seq_reused += 1;
                }
            }
        }
    }

    fn line(&self) -> String {
        format!(
            "acknowledged {}: in history at their seq {}, missing {}, seq given to another message {}",
            self.acked, self.in_history, self.missing, self.seq_reused
        )
    }
}

/// The master a test kills, and how to bring it back as a replica.
struct Victim {
    addr: String,
    slot: u16,
    pid: u32,
    /// The node's own command line, to start it again.
    config: Vec<(String, String)>,
}

impl Victim {
    async fn find(key: &str) -> Self {
        let (slot, addr) = owner_of(key).await;
        let mut node = testkit::redis::node_connection(&format!("redis://{addr}")).await;
        let info: String = redis::cmd("INFO")
            .arg("server")
            .query_async(&mut node)
            .await
            .unwrap();
        let pid = info
            .lines()
            .find_map(|l| l.strip_prefix("process_id:"))
            .and_then(|p| p.trim().parse().ok())
            .expect("process_id");
        let mut config = Vec::new();
        for name in [
            "port",
            "bind",
            "dir",
            "cluster-config-file",
            "cluster-node-timeout",
            "logfile",
            "pidfile",
        ] {
            let pair: Vec<String> = redis::cmd("CONFIG")
                .arg("GET")
                .arg(name)
                .query_async(&mut node)
                .await
                .unwrap();
            if let [k, v] = pair.as_slice() {
                config.push((k.clone(), v.clone()));
            }
        }
        Self {
            addr,
            slot,
            pid,
            config,
        }
    }

    fn kill(&self) {
        let status = std::process::Command::new("kill")
            .args(["-9", &self.pid.to_string()])
            .status()
            .unwrap();
        assert!(status.success(), "kill -9 {}", self.pid);
    }

    /// Waits until another node is master of the slot; how long it took.
    async fn wait_for_promotion(&self, killed_at: Instant) -> Duration {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            assert!(
                Instant::now() < deadline,
                "no replica was promoted within 30 s"
            );
            for node in testkit::redis::redis_nodes().await {
                if node.ends_with(&self.addr) {
                    continue;
                }
                let Ok(client) = redis::Client::open(node.as_str()) else {
                    continue;
                };
                let Ok(mut conn) = client.get_multiplexed_async_connection().await else {
                    continue;
                };
                let slots: redis::RedisResult<redis::Value> = redis::cmd("CLUSTER")
                    .arg("SLOTS")
                    .query_async(&mut conn)
                    .await;
                if let Ok(v) = slots
                    && slots_json(&v).iter().any(|s| {
                        holds(s, self.slot) && s["master"].as_str() != Some(self.addr.as_str())
                    })
                {
                    return killed_at.elapsed();
                }
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Starts the node again with its own settings: it rejoins as a replica
    /// of the promoted node, and the cluster is whole for whatever runs next.
    async fn restart(&self) {
        let mut cmd = std::process::Command::new("redis-server");
        cmd.args([
            "--daemonize",
            "yes",
            "--cluster-enabled",
            "yes",
            "--save",
            "",
            "--appendonly",
            "no",
        ]);
        for (k, v) in &self.config {
            cmd.arg(format!("--{k}")).arg(v);
        }
        assert!(cmd.status().unwrap().success(), "restart {}", self.addr);
        testkit::eventually(
            "the old master back as a replica",
            Duration::from_secs(30),
            || async {
                let client = redis::Client::open(format!("redis://{}", self.addr)).ok()?;
                let mut node = client.get_multiplexed_async_connection().await.ok()?;
                let role: redis::RedisResult<Vec<redis::Value>> =
                    redis::cmd("ROLE").query_async(&mut node).await;
                matches!(role.ok()?.first(), Some(redis::Value::BulkString(r)) if r == b"slave")
                    .then_some(())
            },
        )
        .await;
    }
}

/// CLUSTER SLOTS as `[{from, to, master: "ip:port"}]`.
fn slots_json(v: &redis::Value) -> Vec<Value> {
    let redis::Value::Array(ranges) = v else {
        return Vec::new();
    };
    ranges
        .iter()
        .filter_map(|r| {
            let redis::Value::Array(r) = r else {
                return None;
            };
            let (
                Some(redis::Value::Int(from)),
                Some(redis::Value::Int(to)),
                Some(redis::Value::Array(m)),
            ) = (r.first(), r.get(1), r.get(2))
            else {
                return None;
            };
            let host = match m.first()? {
                redis::Value::BulkString(h) => String::from_utf8_lossy(h).into_owned(),
                _ => return None,
            };
            let redis::Value::Int(port) = m.get(1)? else {
                return None;
            };
            Some(serde_json::json!({"from": from, "to": to, "master": format!("{host}:{port}")}))
        })
        .collect()
}

/// A gateway's channel slot moves to another master (a resharding): the
/// node unsubscribes the gateway (`sunsubscribe`), the gateway subscribes
/// again where the slot now lives, its sockets get `resync`, and deliveries
/// go on.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn moving_a_gateways_channel_slot_resubscribes_it_and_its_sockets_resync() {
    if !testkit::redis_cluster() {
        eprintln!("skipped: needs a Redis Cluster (TEST_REDIS_CLUSTER=1)");
        return;
    }
    let stack = Stack::start(StackOptions::default()).await;
    let (ta, tb) = (stack.user(0, "alice").await, stack.user(1, "bob").await);
    let mut alice = ChatClient::connect("alice", &ta, stack.gateway_ports[0]).await;
    let mut bob = ChatClient::connect("bob", &tb, stack.gateway_ports[1]).await;
    exchange(&mut alice, &mut bob, "before").await;
    let before = bob.resyncs;

    // Bob's gateway is gw-1: move its channel's slot (with the delivery
    // counter, the only key in it) to another master.
    let channel = stack.storage.key("{gw:gw-1}:deliver");
    let moved = Migration::slot_of(&channel).await;
    moved.run().await;

    let deadline = Instant::now() + Duration::from_secs(20);
    while bob.resyncs == before {
        assert!(
            Instant::now() < deadline,
            "bob's socket got no resync after the slot moved"
        );
        bob.pump(Duration::from_millis(100)).await;
    }
    exchange(&mut alice, &mut bob, "after").await;
    println!(
        "slot {} of gw-1's channel moved from {} to {}: bob resynced, deliveries go on",
        moved.slot, moved.from.1, moved.to.1
    );
    // Back where it was, so the cluster stays as scripts/lib/redis-cluster made it.
    Migration {
        from: moved.to.clone(),
        to: moved.from.clone(),
        slot: moved.slot,
    }
    .run()
    .await;
}

/// Alice sends bob three DMs; each must be acknowledged and reach him live.
async fn exchange(alice: &mut ChatClient, bob: &mut ChatClient, tag: &str) {
    for j in 0..3 {
        alice
            .send(&format!("{tag}{j}"), "user:bob", &format!("{tag} {j}"))
            .await;
    }
    alice.settle(Duration::from_secs(30)).await;
    let ids: Vec<String> = (0..3)
        .map(|j| alice.acked[&format!("{tag}{j}")].0.clone())
        .collect();
    let deadline = Instant::now() + Duration::from_secs(30);
    while !ids.iter().all(|id| bob.received.contains_key(id)) {
        assert!(
            Instant::now() < deadline,
            "bob did not get the messages sent {tag} the move live"
        );
        bob.pump(Duration::from_millis(50)).await;
    }
}

/// One slot moving between masters, as `redis-cli --cluster reshard` moves
/// it: IMPORTING on the target, MIGRATING on the source, its keys migrated,
/// then the new owner announced to every master.
struct Migration {
    /// (node id, "ip:port")
    from: (String, String),
    to: (String, String),
    slot: u16,
}

impl Migration {
    async fn slot_of(key: &str) -> Self {
        let (slot, owner) = owner_of(key).await;
        let masters = masters().await;
        let from = masters
            .iter()
            .find(|m| m.1 == owner)
            .expect("owner is a master")
            .clone();
        let to = masters
            .iter()
            .find(|m| m.1 != owner)
            .expect("another master")
            .clone();
        Self { from, to, slot }
    }

    async fn run(&self) {
        let mut src = testkit::redis::node_connection(&format!("redis://{}", self.from.1)).await;
        let mut dst = testkit::redis::node_connection(&format!("redis://{}", self.to.1)).await;
        let setslot = |state: &str, id: &str| {
            let mut c = redis::cmd("CLUSTER");
            c.arg("SETSLOT").arg(self.slot).arg(state).arg(id);
            c
        };
        let _: () = setslot("IMPORTING", &self.from.0)
            .query_async(&mut dst)
            .await
            .unwrap();
        let _: () = setslot("MIGRATING", &self.to.0)
            .query_async(&mut src)
            .await
            .unwrap();
        let (host, port) = self.to.1.split_once(':').unwrap();
        loop {
            let keys: Vec<String> = redis::cmd("CLUSTER")
                .arg("GETKEYSINSLOT")
                .arg(self.slot)
                .arg(100)
                .query_async(&mut src)
                .await
                .unwrap();
            if keys.is_empty() {
                break;
            }
            let _: redis::Value = redis::cmd("MIGRATE")
                .arg(host)
                .arg(port)
                .arg("")
                .arg(0)
                .arg(5000)
                .arg("KEYS")
                .arg(&keys)
                .query_async(&mut src)
                .await
                .unwrap();
        }
        for (_, addr) in masters().await {
            let mut node = testkit::redis::node_connection(&format!("redis://{addr}")).await;
            let _: () = setslot("NODE", &self.to.0)
                .query_async(&mut node)
                .await
                .unwrap();
        }
    }
}

/// `key`'s slot and the master ("ip:port") that holds it now.
async fn owner_of(key: &str) -> (u16, String) {
    let nodes = testkit::redis::redis_nodes().await;
    let mut any = testkit::redis::node_connection(&nodes[0]).await;
    let slot: u16 = redis::cmd("CLUSTER")
        .arg("KEYSLOT")
        .arg(key)
        .query_async(&mut any)
        .await
        .unwrap();
    let shards = redis::cmd("CLUSTER")
        .arg("SLOTS")
        .query_async::<redis::Value>(&mut any)
        .await
        .map(|v| slots_json(&v))
        .unwrap();
    let owner = shards
        .iter()
        .find(|s| holds(s, slot))
        .and_then(|s| s["master"].as_str())
        .expect("a master holds the slot")
        .to_owned();
    (slot, owner)
}

/// Whether a range of CLUSTER SLOTS (`slots_json`) holds `slot`.
fn holds(range: &Value, slot: u16) -> bool {
    let slot = Some(u64::from(slot));
    range["from"].as_u64() <= slot && slot <= range["to"].as_u64()
}

/// Every master as (node id, "ip:port").
async fn masters() -> Vec<(String, String)> {
    let nodes = testkit::redis::redis_nodes().await;
    let mut any = testkit::redis::node_connection(&nodes[0]).await;
    let listing: String = redis::cmd("CLUSTER")
        .arg("NODES")
        .query_async(&mut any)
        .await
        .unwrap();
    listing
        .lines()
        .filter(|l| l.contains("master") && !l.contains("fail"))
        .filter_map(|l| {
            let mut f = l.split_whitespace();
            let id = f.next()?.to_owned();
            let addr = f.next()?.split('@').next()?.to_owned();
            Some((id, addr))
        })
        .collect()
}
