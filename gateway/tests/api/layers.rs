//! The gateway's floors, read from its sources: no module imports one that
//! imports it back, the two transports stand side by side, and the domain
//! floor knows nothing of axum, HTTP or WebSocket frames.

use std::path::Path;

use testkit::layers::Graph;

fn graph() -> Graph {
    Graph::of(&Path::new(env!("CARGO_MANIFEST_DIR")).join("src"))
}

#[test]
fn no_module_imports_one_that_imports_it_back() {
    graph().assert_acyclic(30);
}

#[test]
fn each_floor_imports_only_the_floors_below_it() {
    let top = graph().top_level();
    let allowed: &[(&str, &[&str])] = &[
        ("domain", &["config"]),
        ("ingress", &["config"]),
        ("delivery", &[]),
        ("http", &["domain"]),
        ("api", &["domain", "http"]),
        (
            "session",
            &["config", "delivery", "domain", "http", "ingress"],
        ),
        (
            "ws",
            &["config", "delivery", "domain", "http", "ingress", "session"],
        ),
        (
            "stream",
            &["config", "delivery", "domain", "http", "ingress", "session"],
        ),
    ];
    for (floor, may) in allowed {
        let uses = top.get(*floor).cloned().unwrap_or_default();
        let beyond: Vec<&String> = uses.iter().filter(|m| !may.contains(&m.as_str())).collect();
        assert!(beyond.is_empty(), "{floor} imports {beyond:?}");
    }
}

#[test]
fn the_domain_and_ingress_floors_know_no_transport() {
    let graph = graph();
    let mut checked = 0;
    for module in graph.under("domain").chain(graph.under("ingress")) {
        let crates = graph.external_crates(module);
        for transport in [
            "axum",
            "tungstenite",
            "tokio_tungstenite",
            "http",
            "utoipa_axum",
        ] {
            assert!(
                !crates.contains(transport),
                "{module} uses {transport}: {crates:?}"
            );
        }
        checked += 1;
    }
    assert!(checked >= 14, "only {checked} modules checked");
}
