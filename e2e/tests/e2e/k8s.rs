//! The Kubernetes base (deploy/k8s) checked against the binaries: every
//! resource listed parses, each container runs a real binary with env names it
//! reads, probes hit the health endpoints, and the autoscalers and disruption
//! budgets point at real Deployments.

use std::collections::{BTreeMap, BTreeSet};

use serde::Deserialize;
use serde_yaml::Value;

use crate::deploy::{BINARIES, env_vars, read};

fn resources() -> Vec<Value> {
    let kustomization: Value =
        serde_yaml::from_str(&read("deploy/k8s/kustomization.yaml")).unwrap();
    let mut docs = Vec::new();
    for file in kustomization["resources"].as_sequence().unwrap() {
        let text = read(&format!("deploy/k8s/{}", file.as_str().unwrap()));
        for doc in serde_yaml::Deserializer::from_str(&text) {
            let v = Value::deserialize(doc).expect("valid YAML");
            if !v.is_null() {
                docs.push(v);
            }
        }
    }
    docs
}

fn by_kind<'a>(docs: &'a [Value], kind: &str) -> BTreeMap<String, &'a Value> {
    docs.iter()
        .filter(|d| d["kind"] == kind)
        .map(|d| (d["metadata"]["name"].as_str().unwrap().to_owned(), d))
        .collect()
}

#[test]
fn deployments_run_the_binaries_with_env_they_read_and_probes_on_health_endpoints() {
    let docs = resources();
    let deployments = by_kind(&docs, "Deployment");
    let config_keys: BTreeSet<String> = by_kind(&docs, "ConfigMap")["chat-config"]["data"]
        .as_mapping()
        .unwrap()
        .keys()
        .map(|k| k.as_str().unwrap().to_owned())
        .collect();
    let secret_keys: BTreeSet<String> = by_kind(&docs, "Secret")["chat-secrets"]["stringData"]
        .as_mapping()
        .unwrap()
        .keys()
        .map(|k| k.as_str().unwrap().to_owned())
        .collect();
    for binary in BINARIES {
        let d = deployments
            .get(binary)
            .unwrap_or_else(|| panic!("no Deployment {binary}"));
        let container = &d["spec"]["template"]["spec"]["containers"][0];
        assert_eq!(container["command"][0], binary);
        let accepted = env_vars(binary);
        for var in container["env"].as_sequence().unwrap() {
            let name = var["name"].as_str().unwrap();
            assert!(
                accepted.contains(name) || name == "RUST_LOG",
                "{binary} does not read {name}"
            );
            if let Some(key) = var["valueFrom"]["configMapKeyRef"]["key"].as_str() {
                assert!(config_keys.contains(key), "{binary}: ConfigMap lacks {key}");
            }
            if let Some(key) = var["valueFrom"]["secretKeyRef"]["key"].as_str() {
                assert!(secret_keys.contains(key), "{binary}: Secret lacks {key}");
            }
        }
        for probe in ["readinessProbe", "livenessProbe"] {
            assert!(!container[probe].is_null(), "{binary} has no {probe}");
        }
        let security = &container["securityContext"];
        assert_eq!(security["runAsNonRoot"], true, "{binary}");
        assert_eq!(security["allowPrivilegeEscalation"], false, "{binary}");
    }
    let probe = |name: &str, kind: &str| {
        deployments[name]["spec"]["template"]["spec"]["containers"][0][kind].clone()
    };
    assert_eq!(
        probe("gateway", "readinessProbe")["httpGet"]["path"],
        "/readyz"
    );
    assert_eq!(
        probe("gateway", "livenessProbe")["httpGet"]["path"],
        "/healthz"
    );
    assert_eq!(
        probe("chat-service", "readinessProbe")["httpGet"]["path"],
        "/readyz"
    );
    assert_eq!(
        probe("history-service", "readinessProbe")["grpc"]["port"],
        50051
    );
    assert_eq!(
        probe("user-service", "readinessProbe")["grpc"]["port"],
        50052
    );
}

#[test]
fn services_expose_the_documented_ports() {
    let docs = resources();
    let services = by_kind(&docs, "Service");
    let port = |name: &str| services[name]["spec"]["ports"][0]["port"].as_u64().unwrap();
    assert_eq!(port("gateway"), 8080);
    assert_eq!(port("history-service"), 50051);
    assert_eq!(port("user-service"), 50052);
    assert!(!services.contains_key("chat-service") || port("chat-service") == 9090);
}

#[test]
fn gateway_and_workers_autoscale_and_have_disruption_budgets() {
    let docs = resources();
    let deployments = by_kind(&docs, "Deployment");
    let targets = |kind: &str| -> BTreeSet<String> {
        by_kind(&docs, kind)
            .values()
            .map(|d| {
                let target = if kind == "HorizontalPodAutoscaler" {
                    d["spec"]["scaleTargetRef"]["name"].as_str()
                } else {
                    d["spec"]["selector"]["matchLabels"]["app.kubernetes.io/name"].as_str()
                };
                target.unwrap().to_owned()
            })
            .collect()
    };
    for kind in ["HorizontalPodAutoscaler", "PodDisruptionBudget"] {
        let t = targets(kind);
        for name in ["gateway", "chat-service"] {
            assert!(t.contains(name), "{kind} for {name}");
        }
        for name in &t {
            assert!(
                deployments.contains_key(name),
                "{kind} targets unknown {name}"
            );
        }
    }
    // The gateway's grace period covers the drain after 1012.
    let grace = deployments["gateway"]["spec"]["template"]["spec"]["terminationGracePeriodSeconds"]
        .as_u64()
        .unwrap();
    assert!(grace >= 10, "{grace}");
}
