//! The checker: what the senders were told (`sent`), what history holds, and
//! what each recipient ended up with.

use std::{
    collections::{BTreeMap, HashMap, HashSet},
    fmt::Write,
    time::Duration,
};

use e2e::Stack;
use serde_json::Value;

use crate::{ROOM, Struck, client::Finished};

pub struct Report {
    pub acked: usize,
    pub unacked: usize,
    /// Acked messages missing from history.
    pub lost: usize,
    /// (recipient, acked message) pairs the recipient never got.
    pub missed: usize,
    /// A (sender, client_id) stored twice, or two messages at one seq.
    pub duplicates: usize,
    /// Conversations whose seqs are not 1..=n.
    pub gaps: usize,
    pub stored: usize,
    pub live: usize,
    pub recovered: usize,
    pub reconnects: usize,
    pub resyncs: usize,
    pub faults: Vec<(String, f64, Option<f64>)>,
    pub elapsed: Duration,
}

impl Report {
    pub fn clean(&self) -> bool {
        self.acked > 0
            && self.lost == 0
            && self.missed == 0
            && self.duplicates == 0
            && self.gaps == 0
    }

    pub fn markdown(&self, seed: u64, secs: u64) -> String {
        let mut s = String::new();
        let _ = writeln!(s, "# Chaos soak\n");
        let _ = writeln!(
            s,
            "- rerun: `CHAOS_SECS={secs} CHAOS_SEED={seed} scripts/chaos`\n- traffic {secs} s, whole run {:.0} s\n",
            self.elapsed.as_secs_f64()
        );
        let _ = writeln!(s, "| measure | value |\n|---|---|");
        for (name, value) in [
            ("messages acknowledged (`sent`)", self.acked),
            (
                "never acknowledged by the end (not lost: the sender still holds them)",
                self.unacked,
            ),
            ("messages in history", self.stored),
            ("acked messages missing from history", self.lost),
            ("acked messages an online recipient never got", self.missed),
            ("duplicates after de-duplicating by id", self.duplicates),
            ("conversations with a seq gap", self.gaps),
            ("deliveries first seen live (or offline)", self.live),
            ("deliveries first seen through recovery", self.recovered),
            ("reconnects", self.reconnects),
            ("`resync` frames", self.resyncs),
        ] {
            let _ = writeln!(s, "| {name} | {value} |");
        }
        let _ = writeln!(
            s,
            "\n| fault | at (s) | first ack of a message sent after it (s) |\n|---|---|---|"
        );
        for (fault, at, recovered) in &self.faults {
            let recovered = recovered.map_or("none".to_owned(), |r| format!("{r:.2}"));
            let _ = writeln!(s, "| {fault} | {at:.1} | {recovered} |");
        }
        s
    }
}

/// The whole conversation, through the REST API as `token`, trying the
/// gateways in turn; a conversation that cannot be read is a failure of the
/// soak, never an empty history.
async fn history(stack: &Stack, token: &str, conversation: &str) -> Vec<Value> {
    let http = reqwest::Client::builder()
        .timeout(std::time::Duration::from_secs(10))
        .build()
        .unwrap();
    let mut all = Vec::new();
    let mut after = 0;
    for gateway in (0..stack.gateway_ports.len()).cycle().take(40) {
        let url = stack.gateway_url(
            gateway,
            &format!("/api/conversations/{conversation}/messages?after={after}&limit=200"),
        );
        let Ok(r) = http.get(url).bearer_auth(token).send().await else {
            continue;
        };
        if !r.status().is_success() {
            println!(
                "history {conversation}: gateway {gateway} answered {}",
                r.status()
            );
            tokio::time::sleep(std::time::Duration::from_millis(250)).await;
            continue;
        }
        let Ok(v) = r.json::<Value>().await else {
            continue;
        };
        let page = v["messages"].as_array().cloned().unwrap_or_default();
        if let Some(last) = page.last() {
            after = last["seq"].as_u64().unwrap_or(after);
        }
        all.extend(page);
        if v["has_more"] != true {
            return all;
        }
    }
    panic!("the history of {conversation} could not be read");
}

pub async fn check(
    stack: &Stack,
    peers: &[Finished],
    faults: &[Struck],
    elapsed: Duration,
) -> Report {
    let tokens: HashMap<&str, &str> = peers
        .iter()
        .map(|p| (p.user.as_str(), p.token.as_str()))
        .collect();
    // Every acked message: id → (conversation, sender).
    let mut acked: HashMap<String, (String, String)> = HashMap::new();
    for p in peers {
        for a in p.acked.values() {
            acked.insert(a.id.clone(), (a.conversation.clone(), p.user.clone()));
        }
    }
    let conversations: HashSet<&(String, String)> = acked.values().collect();
    let mut stored: HashMap<String, Value> = HashMap::new();
    let mut gaps = 0;
    let mut duplicates = 0;
    let mut seen_convs = HashSet::new();
    for (conversation, sender) in conversations {
        if !seen_convs.insert(conversation.clone()) {
            continue;
        }
        let messages = history(stack, tokens[sender.as_str()], conversation).await;
        let seqs: Vec<u64> = messages.iter().filter_map(|m| m["seq"].as_u64()).collect();
        if seqs != (1..=seqs.len() as u64).collect::<Vec<_>>() {
            gaps += 1;
        }
        let mut by_client: BTreeMap<(String, String), usize> = BTreeMap::new();
        for m in &messages {
            let key = (
                m["from"].as_str().unwrap_or_default().to_owned(),
                m["client_id"].as_str().unwrap_or_default().to_owned(),
            );
            *by_client.entry(key).or_default() += 1;
            stored.insert(m["id"].as_str().unwrap_or_default().to_owned(), m.clone());
        }
        duplicates += by_client.values().filter(|n| **n > 1).count();
    }
    let lost = acked.keys().filter(|id| !stored.contains_key(*id)).count();
    // Name a few, for whoever reads a failed report.
    for p in peers {
        for (client_id, a) in p
            .acked
            .iter()
            .filter(|(_, a)| !stored.contains_key(&a.id))
            .take(5)
        {
            let holder = stored
                .values()
                .find(|m| m["conversation"] == a.conversation.as_str() && m["seq"] == a.seq);
            println!(
                "lost: {} {client_id} id {} {} seq {}; history has at that seq: {}",
                p.user,
                a.id,
                a.conversation,
                a.seq,
                holder.map_or("nothing".to_owned(), |m| m.to_string())
            );
        }
    }
    let everyone: Vec<&str> = peers.iter().map(|p| p.user.as_str()).collect();
    let mut missed = 0;
    for (id, (conversation, sender)) in &acked {
        let recipients: Vec<&str> = if conversation == &format!("room:{ROOM}") {
            everyone.clone()
        } else {
            conversation.trim_start_matches("dm:").split(':').collect()
        };
        for r in recipients.into_iter().filter(|r| r != sender) {
            let got = peers
                .iter()
                .find(|p| p.user == r)
                .is_some_and(|p| p.inbox.ids.contains(id));
            if !got {
                missed += 1;
            }
        }
    }
    Report {
        acked: acked.len(),
        unacked: peers.iter().map(|p| p.unacked).sum(),
        lost,
        missed,
        duplicates,
        gaps,
        stored: stored.len(),
        live: peers.iter().map(|p| p.inbox.live).sum(),
        recovered: peers.iter().map(|p| p.inbox.recovered).sum(),
        reconnects: peers.iter().map(|p| p.reconnects).sum(),
        resyncs: peers.iter().map(|p| p.resyncs).sum(),
        faults: faults
            .iter()
            .map(|f| {
                (
                    format!("{:?}", f.fault),
                    f.at.as_secs_f64(),
                    f.recovered_in.lock().unwrap().map(|d| d.as_secs_f64()),
                )
            })
            .collect(),
        elapsed,
    }
}
