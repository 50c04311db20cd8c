//! The workspace's shape, read from its sources: no crate has a module that
//! imports one that imports it back, and the generated protos go by one
//! alias each everywhere (`user_pb`, `history_pb`, `internal_pb`), so a
//! name means the same proto in every file.

use std::path::{Path, PathBuf};

use testkit::layers::Graph;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Every crate of the workspace with sources.
fn crates() -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = std::fs::read_dir(repo())
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.join("Cargo.toml").is_file() && p.join("src").is_dir())
        .collect();
    out.sort();
    out
}

#[test]
fn no_crate_has_a_module_cycle() {
    let crates = crates();
    assert!(crates.len() >= 10, "crates: {crates:?}");
    for krate in crates {
        let graph = Graph::of(&krate.join("src"));
        assert_eq!(
            graph.cycles(),
            Vec::<Vec<String>>::new(),
            "module cycles in {}",
            krate.display()
        );
    }
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        let name = path.file_name().unwrap_or_default().to_string_lossy();
        if path.is_dir() && name != "target" && !name.starts_with('.') {
            rust_files(&path, out);
        } else if name.ends_with(".rs") {
            out.push(path);
        }
    }
}

#[test]
fn each_proto_has_one_alias_everywhere() {
    let mut files = Vec::new();
    rust_files(&repo(), &mut files);
    let mut seen = 0;
    let mut wrong = Vec::new();
    for file in &files {
        let text = std::fs::read_to_string(file).unwrap_or_default();
        let words: Vec<&str> = text
            .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == ':'))
            .filter(|w| !w.is_empty())
            .collect();
        for (i, alias) in words.iter().enumerate().skip(2) {
            if words[i - 1] != "as" {
                continue;
            }
            // Aliased directly, or through `self` in a group.
            let path = match words[i - 2] {
                "self" if i >= 3 => words[i - 3],
                other => other,
            };
            let path = path.trim_end_matches("::");
            let expected = if path.ends_with("internal::v1") {
                "internal_pb"
            } else if path.ends_with("history::v1") || (path == "v1" && text.contains("history::{"))
            {
                "history_pb"
            } else if path.ends_with("user::v1") {
                "user_pb"
            } else {
                continue;
            };
            seen += 1;
            if *alias != expected {
                wrong.push(format!("{}: {path} as {alias}", file.display()));
            }
        }
    }
    assert!(seen >= 20, "only {seen} proto aliases found");
    assert!(wrong.is_empty(), "aliases other than the one: {wrong:#?}");
}
