//! Every Lua script's key set stays in one Redis Cluster slot, for every
//! shape of name the system allows; and our slot function agrees with
//! Redis's own CLUSTER KEYSLOT (on a cluster when the tests run on one,
//! else on the single node, which answers it too only in cluster mode, so
//! there the comparison uses known values).

use chat_redis::{
    connection::{slots::same_slot, slots::slot},
    keys::{Keys, partition},
};

const USERS: &[&str] = &["a", "alice", "bob_1", "x-y.z", "ünïcode", "a:b"];
const CONVERSATIONS: &[&str] = &["room:general", "room:a:b", "dm:alice:bob", "dm:a:b_c"];
const GATEWAYS: &[&str] = &["gw0", "gateway-7f9c", "host.example"];
const IPS: &[&str] = &["127.0.0.1", "::1", "2001:db8::1"];

fn key_sets(keys: &Keys) -> Vec<(String, Vec<String>)> {
    let mut sets = Vec::new();
    for c in CONVERSATIONS {
        for u in USERS {
            let set = keys.sequence_script(c, u, "client-1");
            sets.push((format!("sequence {c} {u}"), set.to_vec()));
        }
        sets.push((format!("read {c}"), keys.read_script(c).to_vec()));
        sets.push((format!("summary {c}"), keys.summary_script(c).to_vec()));
        sets.push((format!("window {c}"), keys.window_script(c).to_vec()));
    }
    for u in USERS {
        sets.push((format!("offline {u}"), keys.offline_script(u).to_vec()));
        let push = keys.offline_push_script(u).to_vec();
        sets.push((format!("offline push {u}"), push));
        let claim = vec![keys.client_claim(u, "c1"), keys.offline(u)];
        sets.push((format!("claim {u}"), claim));
        for ip in IPS {
            let set = keys.login_user_script(u, ip).to_vec();
            sets.push((format!("login {u} {ip}"), set));
        }
    }
    for g in GATEWAYS {
        let (set, channel) = keys.publish_script(g);
        let mut all = set.to_vec();
        all.push(channel);
        sets.push((format!("publish {g}"), all));
    }
    sets
}

#[test]
fn every_scripts_keys_share_one_slot() {
    for prefix in ["chat:", "test:abc:", ""] {
        for (name, set) in key_sets(&Keys::new(prefix)) {
            assert!(same_slot(&set), "{name} spans slots: {set:?}");
        }
    }
}

#[test]
fn streams_and_their_dead_letters_share_a_slot_and_partitions_spread() {
    let keys = Keys::new("chat:");
    for p in 0..16 {
        assert!(same_slot(&[keys.ingress(p), keys.dead_letter(p)]));
        assert!(same_slot(&[keys.archive(p), keys.archive_dead_letter(p)]));
    }
    let slots: std::collections::HashSet<u16> =
        (0..16).map(|p| slot(keys.ingress(p).as_bytes())).collect();
    assert_eq!(slots.len(), 16, "each partition is a slot of its own");
    for c in CONVERSATIONS {
        assert_eq!(partition(c, 16), partition(c, 16));
    }
}

#[tokio::test]
async fn our_slots_are_the_servers_slots() {
    let keys = Keys::new("chat:");
    let mut names: Vec<String> = key_sets(&keys).into_iter().flat_map(|(_, s)| s).collect();
    names.extend((0..8).map(|p| keys.ingress(p)));
    if !testkit::redis_cluster() {
        // A single node answers CLUSTER KEYSLOT only in cluster mode; the
        // unit tests compare with Redis's documented values instead.
        return;
    }
    let nodes = testkit::redis::redis_nodes().await;
    let mut conn = testkit::redis::node_connection(&nodes[0]).await;
    for name in names {
        let server: u16 = redis::cmd("CLUSTER")
            .arg("KEYSLOT")
            .arg(&name)
            .query_async(&mut conn)
            .await
            .unwrap();
        assert_eq!(slot(name.as_bytes()), server, "{name}");
    }
}
