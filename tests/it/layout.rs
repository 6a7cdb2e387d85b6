//! The code's shape, read from its sources as a reviewer would: the `crate::app::…` and
//! `crate::domain::…` paths of `shared/src/app` and `shared/src/domain` (outside comments and
//! test modules) make no import circle between their modules, no chain of imports between app/
//! files runs longer than six files, and docs/architecture.md's Code-layout table names every
//! app module, port and domain module.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// The most files one chain of imports between app/ files may pass through.
const LONGEST_APP_CHAIN: usize = 6;

fn shared_src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("shared/src")
}

/// Every module file under `shared/src/{top}`, by module path (`app::pool::members`); test
/// files left out.
fn modules(top: &str) -> BTreeMap<String, String> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        for entry in std::fs::read_dir(dir).expect("a source dir") {
            let path = entry.expect("an entry").path();
            if path.is_dir() {
                walk(&path, out);
            } else if path.extension().is_some_and(|e| e == "rs") {
                out.push(path);
            }
        }
    }
    let root = shared_src();
    let mut files = Vec::new();
    walk(&root.join(top), &mut files);
    let mut out = BTreeMap::new();
    for file in files {
        let rel = file
            .strip_prefix(&root)
            .expect("under src")
            .with_extension("");
        let mut segs: Vec<String> = rel
            .iter()
            .map(|s| s.to_string_lossy().into_owned())
            .collect();
        if segs.last().is_some_and(|s| s == "mod") {
            segs.pop();
        }
        if segs
            .last()
            .is_some_and(|s| s == "tests" || s.ends_with("_tests"))
        {
            continue;
        }
        let code = code_of(&std::fs::read_to_string(&file).expect("a source file"));
        out.insert(segs.join("::"), code);
    }
    out
}

/// A file's code: its test module and its comment lines left out.
fn code_of(src: &str) -> String {
    let src = src.split("#[cfg(test)]\nmod tests").next().unwrap_or(src);
    src.lines()
        .filter(|l| !l.trim_start().starts_with("//"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// The paths `code` names under `crate::{top}::`, each as its segments (a `{a, b::c}` group
/// gives one path per member).
fn paths_into(code: &str, top: &str) -> Vec<Vec<String>> {
    let prefix = format!("crate::{top}::");
    let ident = |c: char| c.is_ascii_alphanumeric() || c == '_' || c == ':';
    let mut out = Vec::new();
    for (at, _) in code.match_indices(&prefix) {
        let rest = &code[at + prefix.len()..];
        let members: Vec<&str> = match rest.strip_prefix('{') {
            Some(group) => group[..group.find('}').unwrap_or(group.len())]
                .split(',')
                .collect(),
            None => vec![&rest[..rest.find(|c: char| !ident(c)).unwrap_or(rest.len())]],
        };
        for m in members {
            let m = m.trim();
            let m = &m[..m.find(|c: char| !ident(c)).unwrap_or(m.len())];
            let segs: Vec<String> = std::iter::once(top.to_owned())
                .chain(m.split("::").filter(|s| !s.is_empty()).map(str::to_owned))
                .collect();
            out.push(segs);
        }
    }
    out
}

/// Import edges between the modules of `top`: each file to the module file each path names
/// (the longest prefix of it that is a module; the root `top` itself left out).
fn edges(top: &str) -> BTreeMap<String, BTreeSet<String>> {
    let modules = modules(top);
    let mut edges: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (module, code) in &modules {
        for segs in paths_into(code, top) {
            let target = (1..=segs.len())
                .rev()
                .map(|n| segs[..n].join("::"))
                .find(|m| modules.contains_key(m));
            if let Some(t) = target.filter(|t| t != module && t != top) {
                edges.entry(module.clone()).or_default().insert(t);
            }
        }
    }
    edges
}

/// A module's unit: its top-level module under `top` (`app::pool` for `app::pool::members`).
fn unit(module: &str) -> String {
    module.split("::").take(2).collect::<Vec<_>>().join("::")
}

/// A circle between units, if there is one (depth-first, the path that closes it).
fn circle(graph: &BTreeMap<String, BTreeSet<String>>) -> Option<Vec<String>> {
    fn visit(
        graph: &BTreeMap<String, BTreeSet<String>>,
        node: &str,
        path: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) -> Option<Vec<String>> {
        if let Some(i) = path.iter().position(|p| p == node) {
            let mut c = path[i..].to_vec();
            c.push(node.to_owned());
            return Some(c);
        }
        if !done.insert(node.to_owned()) {
            return None;
        }
        path.push(node.to_owned());
        for next in graph.get(node).into_iter().flatten() {
            if let Some(c) = visit(graph, next, path, done) {
                return Some(c);
            }
        }
        path.pop();
        None
    }
    let mut done = BTreeSet::new();
    graph
        .keys()
        .find_map(|n| visit(graph, n, &mut Vec::new(), &mut done))
}

/// The longest chain of imports from `node` (the graph has no circle).
fn longest(graph: &BTreeMap<String, BTreeSet<String>>, node: &str) -> Vec<String> {
    let mut best = vec![node.to_owned()];
    for next in graph.get(node).into_iter().flatten() {
        let mut chain = vec![node.to_owned()];
        chain.extend(longest(graph, next));
        if chain.len() > best.len() {
            best = chain;
        }
    }
    best
}

#[test]
fn when_the_modules_import_each_other_should_make_no_circle_and_no_chain_past_six_files() {
    for top in ["app", "domain"] {
        let mut units: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        for (from, tos) in edges(top) {
            for to in tos.iter().map(|t| unit(t)).filter(|t| *t != unit(&from)) {
                units.entry(unit(&from)).or_default().insert(to);
            }
        }
        assert!(!units.is_empty(), "{top}: no import read");
        assert_eq!(circle(&units), None, "{top}: an import circle");
    }
    let files = edges("app");
    assert_eq!(circle(&files), None, "app: an import circle between files");
    let chain = files
        .keys()
        .map(|m| longest(&files, m))
        .max_by_key(Vec::len)
        .expect("app files import each other");
    eprintln!(
        "the longest chain, {} files: {}",
        chain.len(),
        chain.join(" -> ")
    );
    assert!(
        chain.len() <= LONGEST_APP_CHAIN,
        "{} files: {}",
        chain.len(),
        chain.join(" -> ")
    );
}

#[test]
fn when_a_reader_opens_the_code_layout_should_find_every_app_module_port_and_domain_module() {
    let doc =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/architecture.md"))
            .expect("docs/architecture.md");
    let start = doc.find("### Code layout").expect("a Code layout section");
    let table = &doc[start..];
    let table = &table[..table[4..].find("\n## ").map_or(table.len(), |e| e + 4)];
    let mut missing = Vec::new();
    for top in ["app", "domain"] {
        let units: BTreeSet<String> = modules(top).keys().map(|m| unit(m)).collect();
        for u in units.iter().filter(|u| u.contains("::")) {
            let name = u.replace("::", "/");
            if !table.contains(&format!("`{name}.rs`")) && !table.contains(&format!("`{name}/`")) {
                missing.push(name);
            }
        }
    }
    let ports = std::fs::read_to_string(shared_src().join("ports.rs")).expect("ports.rs");
    for line in ports.lines() {
        if let Some(rest) = line.strip_prefix("pub trait ") {
            let name = &rest[..rest
                .find(|c: char| !c.is_alphanumeric())
                .unwrap_or(rest.len())];
            if !table.contains(&format!("`{name}`")) {
                missing.push(format!("port {name}"));
            }
        }
    }
    assert!(
        missing.is_empty(),
        "not in docs/architecture.md's Code layout: {missing:?}"
    );
}
