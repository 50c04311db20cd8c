//! The Kubernetes base (deploy/k8s) checked against the binaries: every
//! resource listed parses, each container runs a real binary with env names it
//! reads, probes hit the health endpoints, and the autoscalers and disruption
//! budgets point at real Deployments. And the trust boundary: secrets are
//! mounted files, never env values; the NetworkPolicies admit only each
//! internal port's callers; the example Ingress routes no ops endpoint.

use std::collections::{BTreeMap, BTreeSet};

use serde::Deserialize;
use serde_yaml::Value;

use crate::deploy::{BINARIES, SECRETS_DIR, env_vars, is_secret_name, read};

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

/// The key of Secret `chat-secrets` that file `path` is in a container of
/// `pod`: a read-only volumeMount at its directory, of a secret volume that
/// lists the file (or, without `items`, the key of that name).
fn secret_file_key(pod: &Value, container: &Value, path: &str) -> Option<String> {
    let (dir, file) = path.rsplit_once('/')?;
    let mount = container["volumeMounts"]
        .as_sequence()?
        .iter()
        .find(|m| m["mountPath"].as_str() == Some(dir) && m["readOnly"] == true)?;
    let volume = pod["volumes"]
        .as_sequence()?
        .iter()
        .find(|v| v["name"] == mount["name"])?;
    let secret = &volume["secret"];
    if secret["secretName"].as_str() != Some("chat-secrets") {
        return None;
    }
    match secret["items"].as_sequence() {
        Some(items) => items
            .iter()
            .find(|item| item["path"].as_str() == Some(file))
            .and_then(|item| item["key"].as_str())
            .map(str::to_owned),
        None => Some(file.to_owned()),
    }
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
        let pod = &d["spec"]["template"]["spec"];
        let container = &pod["containers"][0];
        assert_eq!(container["command"][0], binary);
        let accepted = env_vars(binary);
        for var in container["env"].as_sequence().unwrap() {
            let name = var["name"].as_str().unwrap();
            assert!(
                accepted.contains(name) || name == "RUST_LOG",
                "{binary} does not read {name}"
            );
            // Secrets are files: env values show in `kubectl describe`, in
            // /proc/<pid>/environ and in crash dumps.
            if is_secret_name(name) {
                assert!(
                    name.ends_with("_FILE"),
                    "{binary}: {name} as an env value; mount it and set {name}_FILE"
                );
                let path = var["value"].as_str().unwrap_or_else(|| {
                    panic!("{binary}: {name} is a path written in the manifest")
                });
                assert!(path.starts_with(SECRETS_DIR), "{binary}: {name}={path}");
                let key = secret_file_key(pod, container, path).unwrap_or_else(|| {
                    panic!("{binary}: {path} is no read-only mount of a chat-secrets key")
                });
                assert!(secret_keys.contains(&key), "{binary}: Secret lacks {key}");
            }
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
    // The gateway's /readyz is on its ops port only (8080 keeps /healthz).
    assert_eq!(
        probe("gateway", "readinessProbe")["httpGet"]["path"],
        "/readyz"
    );
    assert_eq!(probe("gateway", "readinessProbe")["httpGet"]["port"], "ops");
    assert_eq!(
        probe("gateway", "livenessProbe")["httpGet"]["path"],
        "/healthz"
    );
    let ports = |name: &str| -> BTreeMap<String, u64> {
        deployments[name]["spec"]["template"]["spec"]["containers"][0]["ports"]
            .as_sequence()
            .unwrap()
            .iter()
            .map(|p| {
                let port_name = p["name"].as_str().unwrap().to_owned();
                (port_name, p["containerPort"].as_u64().unwrap())
            })
            .collect()
    };
    assert_eq!(ports("gateway")["ops"], 9090);
    assert_eq!(ports("history-service")["grpc"], 50051);
    assert_eq!(ports("history-service")["grpc-internal"], 50061);
    assert_eq!(
        probe("chat-service", "readinessProbe")["httpGet"]["path"],
        "/readyz"
    );
    assert_eq!(
        probe("history-service", "readinessProbe")["grpc"]["port"],
        50051
    );
    // grpc.health.v1 answers without the service token, so the kubelet's
    // gRPC probe works on the internal port.
    assert_eq!(
        probe("user-service", "readinessProbe")["grpc"]["port"],
        50052
    );
    let config_maps = by_kind(&docs, "ConfigMap");
    let config = &config_maps["chat-config"]["data"];
    assert_eq!(
        config["HISTORY_SERVICE_URL"], "http://history-service:50061",
        "the callers of Append use history's internal port"
    );
    assert_eq!(config["USER_SERVICE_URL"], "http://user-service:50052");
    let database_url = config["DATABASE_URL"].as_str().unwrap();
    let userinfo = database_url
        .split_once("://")
        .and_then(|(_, rest)| rest.split_once('@'))
        .map_or("", |(userinfo, _)| userinfo);
    assert!(
        !userinfo.contains(':'),
        "DATABASE_URL carries no password: {database_url}"
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
    let all_ports = |name: &str| -> BTreeSet<u64> {
        services[name]["spec"]["ports"]
            .as_sequence()
            .unwrap()
            .iter()
            .map(|p| p["port"].as_u64().unwrap())
            .collect()
    };
    // Public reads and internal writes, one Service.
    assert_eq!(all_ports("history-service"), BTreeSet::from([50051, 50061]));
    // Nothing routed through the gateway's Service reaches its ops port.
    assert_eq!(all_ports("gateway"), BTreeSet::from([8080]));
}

/// The Secret's placeholders must not work: too short for the services.
#[test]
fn the_example_secret_holds_no_usable_value() {
    let docs = resources();
    let secrets = by_kind(&docs, "Secret");
    let secret = secrets["chat-secrets"]["stringData"].as_mapping().unwrap();
    for (key, value) in secret {
        let key = key.as_str().unwrap();
        let value = value.as_str().unwrap();
        assert!(value.contains("REPLACE_ME"), "{key} is not a placeholder");
    }
    for (key, min) in [("jwt_secret", 16), ("service_token", 32)] {
        let value = secret[key].as_str().unwrap();
        assert!(
            value.len() < min,
            "{key}: a placeholder the services accept"
        );
    }
}

/// A NetworkPolicy label selector (matchLabels only, all the base uses)
/// against a pod's labels.
fn selects(selector: &Value, labels: &Value) -> bool {
    assert!(
        selector["matchExpressions"].is_null(),
        "matchExpressions: extend this check"
    );
    selector["matchLabels"]
        .as_mapping()
        .is_none_or(|wanted| wanted.iter().all(|(k, v)| labels.get(k) == Some(v)))
}

/// Who may connect to `port` (a number, or the container port's name) on
/// the pods of Deployment `target`, by the base's NetworkPolicies: names of
/// Deployments of the namespace, `namespace:<selector>` for other
/// namespaces, `*` for any source. Pods no ingress policy selects take
/// anything (`*`).
fn sources(docs: &[Value], target: &str, port: u64, port_name: &str) -> BTreeSet<String> {
    let labels: BTreeMap<String, &Value> = by_kind(docs, "Deployment")
        .into_iter()
        .map(|(name, d)| (name, &d["spec"]["template"]["metadata"]["labels"]))
        .collect();
    let target_labels = labels[target];
    let mut found = BTreeSet::new();
    let mut isolated = false;
    for policy in by_kind(docs, "NetworkPolicy").values() {
        let spec = &policy["spec"];
        let for_ingress = spec["policyTypes"]
            .as_sequence()
            .is_none_or(|types| types.iter().any(|t| t.as_str() == Some("Ingress")));
        if !for_ingress || !selects(&spec["podSelector"], target_labels) {
            continue;
        }
        isolated = true;
        for rule in spec["ingress"].as_sequence().into_iter().flatten() {
            let covers = rule["ports"]
                .as_sequence()
                .filter(|ports| !ports.is_empty())
                .is_none_or(|ports| {
                    ports.iter().any(|p| {
                        if p["port"].is_null() || p["port"].as_str() == Some(port_name) {
                            return true;
                        }
                        let Some(first) = p["port"].as_u64() else {
                            return false;
                        };
                        let last = p["endPort"].as_u64().unwrap_or(first);
                        (first..=last).contains(&port)
                    })
                });
            if !covers {
                continue;
            }
            let Some(peers) = rule["from"].as_sequence().filter(|f| !f.is_empty()) else {
                found.insert("*".to_owned());
                continue;
            };
            for peer in peers {
                if !peer["ipBlock"].is_null() {
                    found.insert("*".to_owned());
                } else if !peer["namespaceSelector"].is_null() {
                    let selector = serde_yaml::to_string(&peer["namespaceSelector"]).unwrap();
                    found.insert(format!("namespace:{}", selector.trim()));
                } else {
                    for (name, pod) in &labels {
                        if selects(&peer["podSelector"], pod) {
                            found.insert(name.clone());
                        }
                    }
                }
            }
        }
    }
    if !isolated {
        found.insert("*".to_owned());
    }
    found
}

fn names(list: &[&str]) -> BTreeSet<String> {
    list.iter().map(|name| (*name).to_owned()).collect()
}

#[test]
fn network_policies_admit_only_the_callers_of_each_port() {
    let docs = resources();
    let policies = by_kind(&docs, "NetworkPolicy");
    // Pods added later are closed until a policy opens them.
    assert!(
        policies.values().any(|p| {
            let spec = &p["spec"];
            spec["podSelector"]
                .as_mapping()
                .is_some_and(|m| m.is_empty())
                && spec["ingress"]
                    .as_sequence()
                    .is_none_or(|rules| rules.is_empty())
                && spec["policyTypes"]
                    .as_sequence()
                    .is_some_and(|types| types.iter().any(|t| t.as_str() == Some("Ingress")))
        }),
        "a default-deny ingress policy"
    );
    // Append and AckOffline: only their callers.
    assert_eq!(
        sources(&docs, "history-service", 50061, "grpc-internal"),
        names(&["chat-service", "gateway"])
    );
    assert_eq!(
        sources(&docs, "user-service", 50052, "grpc"),
        names(&["chat-service", "gateway", "history-service"])
    );
    // The two public ports.
    assert!(sources(&docs, "gateway", 8080, "http").contains("*"));
    assert!(sources(&docs, "history-service", 50051, "grpc").contains("*"));
    for name in BINARIES {
        // Ops: the namespace and monitoring, never everyone.
        let ops = sources(&docs, name, 9090, "ops");
        assert!(!ops.contains("*"), "{name}: ops port open to {ops:?}");
        assert!(
            ops.contains("gateway"),
            "{name}: ops port from the namespace"
        );
        // Every other port stays shut.
        assert!(
            sources(&docs, name, 6379, "").is_empty(),
            "{name}: an unlisted port is open"
        );
    }
}

#[test]
fn the_example_ingress_routes_no_ops_endpoint() {
    let ingress: Value = serde_yaml::from_str(&read("deploy/k8s/ingress.example.yaml")).unwrap();
    let mut paths = Vec::new();
    for rule in ingress["spec"]["rules"].as_sequence().unwrap() {
        for path in rule["http"]["paths"].as_sequence().unwrap() {
            let backend = &path["backend"]["service"];
            assert_eq!(backend["name"], "gateway");
            assert_eq!(backend["port"]["name"], "http", "only the public port");
            paths.push((
                path["path"].as_str().unwrap().to_owned(),
                path["pathType"].as_str().unwrap().to_owned(),
            ));
        }
    }
    // Prefix matching is by path element; ImplementationSpecific is at least
    // as wide in ingress-nginx.
    let routed = |request: &str| {
        paths.iter().any(|(path, kind)| {
            if kind == "Exact" {
                path == request
            } else {
                let prefix = path.trim_end_matches('/');
                request == prefix || request.starts_with(&format!("{prefix}/"))
            }
        })
    };
    for hidden in ["/metrics", "/readyz"] {
        assert!(!routed(hidden), "the Ingress routes {hidden}");
    }
    for public in ["/", "/ws", "/api/login", "/api/rooms/general/join"] {
        assert!(routed(public), "the Ingress does not route {public}");
    }
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
