//! A crate's module graph, read from its sources, for tests that keep its
//! floors apart: which module imports which (`use` trees and inline
//! `crate::`/`super::`/`self::` paths, with `pub use` re-exports followed to
//! where the item lives), its cycles, and what a module uses from outside.
//!
//! A module is a file (`a/b.rs` and `a/b/mod.rs` are `a::b`). Test modules
//! at the bottom of a file (from its first `#[cfg(test)]`) are not read:
//! their `use super::*` is the file itself.

use std::{
    collections::{BTreeMap, BTreeSet},
    path::Path,
};

/// One module's source and what it declares.
struct Module {
    /// The source without comments, strings and tests.
    code: String,
    /// Its declared submodules (`mod x;`).
    children: BTreeSet<String>,
}

pub struct Graph {
    modules: BTreeMap<String, Module>,
    /// `module -> modules it imports`.
    pub edges: BTreeMap<String, BTreeSet<String>>,
}

impl Graph {
    /// The graph of the crate whose `src/` is `src`.
    pub fn of(src: &Path) -> Self {
        let mut modules = BTreeMap::new();
        read_dir(src, src, &mut modules);
        let mut graph = Self {
            modules,
            edges: BTreeMap::new(),
        };
        let names: Vec<String> = graph.modules.keys().cloned().collect();
        for name in names {
            let mut to = BTreeSet::new();
            for path in graph.paths(&name) {
                if let Some(target) = graph.resolve(&path, 0)
                    && target != name
                    && !target.is_empty()
                {
                    to.insert(target);
                }
            }
            graph.edges.insert(name, to);
        }
        graph
    }

    /// Panics, naming them, if any modules or top-level modules form a
    /// cycle; and if fewer than `at_least` modules were read (a wrong path
    /// would pass every check).
    pub fn assert_acyclic(&self, at_least: usize) {
        assert!(
            self.edges.len() >= at_least,
            "the sources were not read: {:?}",
            self.edges.keys()
        );
        assert_eq!(self.cycles(), Vec::<Vec<String>>::new(), "module cycles");
        assert_eq!(
            self.top_level_cycles(),
            Vec::<Vec<String>>::new(),
            "cycles between top-level modules"
        );
    }

    /// Every cycle's modules, each cycle once (strongly connected parts
    /// of more than one module).
    pub fn cycles(&self) -> Vec<Vec<String>> {
        strongly_connected(&self.edges)
            .into_iter()
            .filter(|part| part.len() > 1)
            .collect()
    }

    /// The same graph between top-level modules (`a::b` counts as `a`).
    pub fn top_level(&self) -> BTreeMap<String, BTreeSet<String>> {
        let top = |m: &str| m.split("::").next().unwrap_or_default().to_owned();
        let mut out: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        for (from, to) in &self.edges {
            let entry = out.entry(top(from)).or_default();
            for t in to {
                if top(t) != top(from) {
                    entry.insert(top(t));
                }
            }
        }
        out
    }

    /// Cycles between top-level modules.
    pub fn top_level_cycles(&self) -> Vec<Vec<String>> {
        strongly_connected(&self.top_level())
            .into_iter()
            .filter(|part| part.len() > 1)
            .collect()
    }

    /// The modules under `prefix` (itself included).
    pub fn under<'a>(&'a self, prefix: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.modules
            .keys()
            .map(String::as_str)
            .filter(move |m| *m == prefix || m.starts_with(&format!("{prefix}::")))
    }

    /// The external crates `module` names (`axum::…`, `use tonic`).
    pub fn external_crates(&self, module: &str) -> BTreeSet<String> {
        let Some(m) = self.modules.get(module) else {
            return BTreeSet::new();
        };
        let mut out = BTreeSet::new();
        for path in use_paths(&m.code) {
            if let Some(first) = path.first()
                && !["crate", "super", "self"].contains(&first.as_str())
                && !m.children.contains(first)
            {
                out.insert(first.clone());
            }
        }
        for (i, _) in m.code.match_indices("::") {
            let before = &m.code[..i];
            let start = before
                .rfind(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .map_or(0, |p| p + 1);
            let word = &before[start..];
            let preceded_by_path = before[..start].ends_with("::");
            if !word.is_empty()
                && !preceded_by_path
                && word.chars().next().is_some_and(|c| c.is_ascii_lowercase())
                && !["crate", "super", "self"].contains(&word)
                && !m.children.contains(word)
            {
                out.insert(word.to_owned());
            }
        }
        out
    }

    /// The absolute paths `module` mentions, as segments from the crate root.
    fn paths(&self, module: &str) -> Vec<Vec<String>> {
        let m = &self.modules[module];
        let mut raw = use_paths(&m.code);
        raw.extend(inline_paths(&m.code, &m.children));
        raw.into_iter()
            .filter_map(|p| absolute(module, &m.children, p))
            .collect()
    }

    /// The module an absolute path lands in, following `pub use`.
    fn resolve(&self, path: &[String], depth: usize) -> Option<String> {
        let mut best = (0, String::new());
        for n in 1..=path.len() {
            let name = path[..n].join("::");
            if self.modules.contains_key(&name) {
                best = (n, name);
            }
        }
        let (n, module) = best;
        if n == 0 {
            return None;
        }
        if depth < 8
            && let Some(item) = path.get(n)
            && let Some(source) = self.reexport(&module, item)
        {
            let mut rest = source;
            rest.extend(path[n + 1..].iter().cloned());
            return self.resolve(&rest, depth + 1).or(Some(module));
        }
        Some(module)
    }

    /// Where `module`'s `pub use … item` comes from, as an absolute path.
    fn reexport(&self, module: &str, item: &str) -> Option<Vec<String>> {
        let m = &self.modules[module];
        let mut rest = m.code.as_str();
        while let Some(at) = rest.find("pub use ") {
            let tail = &rest[at + 8..];
            let end = tail.find(';')?;
            for path in expand(&tail[..end]) {
                if path.last().map(String::as_str) == Some(item) {
                    return absolute(module, &m.children, path);
                }
            }
            rest = &tail[end..];
        }
        None
    }
}

fn read_dir(root: &Path, dir: &Path, out: &mut BTreeMap<String, Module>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            read_dir(root, &path, out);
            continue;
        }
        if path.extension().and_then(|e| e.to_str()) != Some("rs") {
            continue;
        }
        let rel = path.strip_prefix(root).unwrap_or(&path);
        let mut parts: Vec<String> = rel
            .iter()
            .map(|p| p.to_string_lossy().trim_end_matches(".rs").to_owned())
            .collect();
        if matches!(
            parts.last().map(String::as_str),
            Some("mod" | "lib" | "main")
        ) {
            parts.pop();
        }
        let name = parts.join("::");
        let source = std::fs::read_to_string(&path).unwrap_or_default();
        let code = strip(&source);
        let children = declared_children(&code);
        out.entry(name).or_insert(Module { code, children });
    }
}

/// The source without comments, string literals, and from the first
/// `#[cfg(test)]` on.
fn strip(source: &str) -> String {
    let source = source.split("#[cfg(test)]").next().unwrap_or_default();
    let mut out = String::with_capacity(source.len());
    let mut chars = source.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '/' if chars.peek() == Some(&'/') => {
                for c in chars.by_ref() {
                    if c == '\n' {
                        out.push('\n');
                        break;
                    }
                }
            }
            '/' if chars.peek() == Some(&'*') => {
                chars.next();
                let mut last = ' ';
                for c in chars.by_ref() {
                    if last == '*' && c == '/' {
                        break;
                    }
                    last = c;
                }
            }
            '"' => {
                let mut escaped = false;
                for c in chars.by_ref() {
                    if escaped {
                        escaped = false;
                    } else if c == '\\' {
                        escaped = true;
                    } else if c == '"' {
                        break;
                    }
                }
                out.push_str("\"\"");
            }
            // A raw string: r"…" or r#"…"#.
            'r' if matches!(chars.peek(), Some('"' | '#'))
                && !out.ends_with(|c: char| c.is_ascii_alphanumeric() || c == '_') =>
            {
                let mut hashes = 0;
                while chars.peek() == Some(&'#') {
                    chars.next();
                    hashes += 1;
                }
                if chars.next() != Some('"') {
                    continue;
                }
                let closing: String = std::iter::once('"')
                    .chain(std::iter::repeat_n('#', hashes))
                    .collect();
                let mut seen = String::new();
                for c in chars.by_ref() {
                    seen.push(c);
                    if seen.ends_with(&closing) {
                        break;
                    }
                }
                out.push_str("\"\"");
            }
            other => out.push(other),
        }
    }
    out
}

fn declared_children(code: &str) -> BTreeSet<String> {
    code.lines()
        .filter_map(|l| {
            let l = l.trim();
            let l = l.strip_prefix("pub ").unwrap_or(l);
            let l = l.strip_prefix("pub(crate) ").unwrap_or(l);
            l.strip_prefix("mod ")?
                .strip_suffix(';')
                .map(|n| n.trim().to_owned())
        })
        .collect()
}

/// The paths of every `use` statement, expanded (`a::{b, c::d}` is
/// `a::b` and `a::c::d`; `a::{self}` is `a`).
fn use_paths(code: &str) -> Vec<Vec<String>> {
    let mut out = Vec::new();
    let mut rest = code;
    while let Some(at) = find_use(rest) {
        let tail = &rest[at..];
        let Some(end) = tail.find(';') else { break };
        out.extend(expand(&tail[..end]));
        rest = &tail[end..];
    }
    out
}

/// Where the next `use` tree starts (after the keyword).
fn find_use(code: &str) -> Option<usize> {
    let mut from = 0;
    while let Some(i) = code[from..].find("use ") {
        let at = from + i;
        let before = code[..at].chars().last();
        if before.is_none_or(|c| !(c.is_ascii_alphanumeric() || c == '_')) {
            return Some(at + 4);
        }
        from = at + 4;
    }
    None
}

fn expand(tree: &str) -> Vec<Vec<String>> {
    // `a as b` keeps `a`, marked before the spaces go.
    let spaced = tree.split_whitespace().collect::<Vec<_>>().join(" ");
    let tree: String = spaced
        .replace(" as ", "@")
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect();
    let mut out = Vec::new();
    expand_into(&tree, &mut Vec::new(), &mut out);
    out
}

fn expand_into(tree: &str, prefix: &mut Vec<String>, out: &mut Vec<Vec<String>>) {
    let tree = tree.trim_start_matches("::");
    if let Some(open) = tree.find('{') {
        let head: Vec<String> = tree[..open]
            .split("::")
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect();
        let inner = &tree[open + 1..tree.rfind('}').unwrap_or(tree.len())];
        let len = prefix.len();
        prefix.extend(head);
        for part in split_top(inner) {
            if part == "self" {
                out.push(prefix.clone());
            } else if !part.is_empty() {
                expand_into(&part, prefix, out);
            }
        }
        prefix.truncate(len);
    } else {
        let name = tree.split('@').next().unwrap_or(tree);
        let mut path = prefix.clone();
        path.extend(
            name.split("::")
                .filter(|s| !s.is_empty() && *s != "*")
                .map(str::to_owned),
        );
        if !path.is_empty() {
            out.push(path);
        }
    }
}

/// `a, b::{c, d}, e` split at its top-level commas.
fn split_top(inner: &str) -> Vec<String> {
    let (mut parts, mut depth, mut current) = (Vec::new(), 0, String::new());
    for c in inner.chars() {
        match c {
            '{' => depth += 1,
            '}' => depth -= 1,
            ',' if depth == 0 => {
                parts.push(std::mem::take(&mut current));
                continue;
            }
            _ => {}
        }
        current.push(c);
    }
    parts.push(current);
    parts
}

/// Inline paths outside `use`: `crate::a::b`, `super::x`, `self::y`, and
/// a declared submodule's `child::item`.
fn inline_paths(code: &str, children: &BTreeSet<String>) -> Vec<Vec<String>> {
    let bytes = code.as_bytes();
    let is_ident = |b: u8| b.is_ascii_alphanumeric() || b == b'_';
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        if !is_ident(bytes[i]) || (i > 0 && (is_ident(bytes[i - 1]) || bytes[i - 1] == b':')) {
            i += 1;
            continue;
        }
        let start = i;
        let mut end = i;
        // An identifier, then any number of `::identifier`.
        loop {
            while end < bytes.len() && is_ident(bytes[end]) {
                end += 1;
            }
            if code[end..].starts_with("::") && bytes.get(end + 2).is_some_and(|b| is_ident(*b)) {
                end += 2;
            } else {
                break;
            }
        }
        let path: Vec<String> = code[start..end].split("::").map(str::to_owned).collect();
        if path.len() > 1
            && (["crate", "super", "self"].contains(&path[0].as_str())
                || children.contains(&path[0]))
        {
            out.push(path);
        }
        i = end.max(i + 1);
    }
    out
}

/// `path` as seen from `module`, from the crate root; None for another
/// crate's path.
fn absolute(module: &str, children: &BTreeSet<String>, path: Vec<String>) -> Option<Vec<String>> {
    let mut here: Vec<String> = if module.is_empty() {
        Vec::new()
    } else {
        module.split("::").map(str::to_owned).collect()
    };
    let mut segments = path.into_iter().peekable();
    match segments.peek().map(String::as_str) {
        Some("crate") => {
            segments.next();
            here.clear();
        }
        Some("self") => {
            segments.next();
        }
        Some("super") => {
            while segments.peek().map(String::as_str) == Some("super") {
                segments.next();
                here.pop();
            }
        }
        Some(first) if children.contains(first) => {}
        _ => return None,
    }
    here.extend(segments);
    Some(here)
}

/// Tarjan's strongly connected components.
fn strongly_connected(edges: &BTreeMap<String, BTreeSet<String>>) -> Vec<Vec<String>> {
    struct State<'a> {
        edges: &'a BTreeMap<String, BTreeSet<String>>,
        index: BTreeMap<&'a str, usize>,
        low: BTreeMap<&'a str, usize>,
        stack: Vec<&'a str>,
        on_stack: BTreeSet<&'a str>,
        next: usize,
        out: Vec<Vec<String>>,
    }
    fn visit<'a>(s: &mut State<'a>, v: &'a str) {
        s.index.insert(v, s.next);
        s.low.insert(v, s.next);
        s.next += 1;
        s.stack.push(v);
        s.on_stack.insert(v);
        if let Some(to) = s.edges.get(v) {
            for w in to {
                let w = w.as_str();
                if !s.index.contains_key(w) {
                    visit(s, w);
                    let low = s.low[v].min(s.low[w]);
                    s.low.insert(v, low);
                } else if s.on_stack.contains(w) {
                    let low = s.low[v].min(s.index[w]);
                    s.low.insert(v, low);
                }
            }
        }
        if s.low[v] == s.index[v] {
            let mut part = Vec::new();
            while let Some(w) = s.stack.pop() {
                s.on_stack.remove(w);
                part.push(w.to_owned());
                if w == v {
                    break;
                }
            }
            part.sort();
            s.out.push(part);
        }
    }
    let mut s = State {
        edges,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        on_stack: BTreeSet::new(),
        next: 0,
        out: Vec::new(),
    };
    for v in edges.keys() {
        if !s.index.contains_key(v.as_str()) {
            visit(&mut s, v);
        }
    }
    s.out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn use_trees_expand_to_paths() {
        let paths = expand("crate::{a::{self, b as c}, d::e::*, f}");
        let joined: Vec<String> = paths.iter().map(|p| p.join("::")).collect();
        assert_eq!(
            joined,
            ["crate::a", "crate::a::b", "crate::d::e", "crate::f"]
        );
    }

    #[test]
    fn a_loop_through_a_reexport_is_a_cycle() {
        let dir = std::env::temp_dir().join(format!("layers-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("a")).unwrap();
        std::fs::write(dir.join("lib.rs"), "pub mod a;\npub mod b;\n").unwrap();
        std::fs::write(dir.join("a/mod.rs"), "mod inner;\npub use inner::Thing;\n").unwrap();
        std::fs::write(dir.join("a/inner.rs"), "use crate::b::other; // crate::c\n").unwrap();
        std::fs::write(dir.join("b.rs"), "fn f() { let _ = crate::a::Thing; }\n").unwrap();
        let graph = Graph::of(&dir);
        assert_eq!(graph.edges["b"], BTreeSet::from(["a::inner".to_owned()]));
        assert_eq!(
            graph.cycles(),
            vec![vec!["a::inner".to_owned(), "b".to_owned()]]
        );
        assert_eq!(
            graph.top_level_cycles(),
            vec![vec!["a".to_owned(), "b".to_owned()]]
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
