//! The import directions, checked on the source: every `crate::…` (and, inside `routes/` and
//! `web/`, `super::…`) path outside comments and `#[cfg(test)] mod tests`, per module.
//!
//! - `store` reads only the leaves below it (`config`, `host`, `clock`, `when`, `metrics`);
//! - `config` reads only `host`; the leaves (`host`, `clock`, `when`, `metrics`, `seal`,
//!   `templates`) read nothing;
//! - `auth` reads no `web`, `routes` or `cli`; `mail` reads no `auth`, `web`, `routes` or `cli`;
//! - no two modules read each other: not two top-level modules, and not two files of
//!   `routes/` or of `web/`.
//!
//! Grown on purpose: a new module or file is a node without being listed, and the rules are
//! about directions, so a move that breaks one fails here with the paths that do it.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Modules that import nothing of the portal.
const LEAVES: [&str; 6] = ["host", "clock", "when", "metrics", "seal", "templates"];

/// What each layer may read, when it is listed: nothing else of the portal.
const ALLOWED: [(&str, &[&str]); 2] =
    [("store", &["config", "host", "clock", "when", "metrics"]), ("config", &["host"])];

/// What each layer must not read.
const FORBIDDEN: [(&str, &[&str]); 2] =
    [("auth", &["web", "routes", "cli"]), ("mail", &["auth", "web", "routes", "cli"])];

/// Directories whose files are nodes of their own (the rest count as their top module).
const SPLIT: [&str; 2] = ["routes", "web"];

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let mut entries: Vec<_> =
        std::fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())).flatten().collect();
    entries.sort_by_key(|e| e.path());
    for entry in entries {
        let path = entry.path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|x| x == "rs") {
            out.push(path);
        }
    }
}

/// The node a file is: `store`, `auth`, … or, in `routes/` and `web/`, `routes::login`
/// (`routes` for `routes/mod.rs`). `None` for the crate root and the binary.
fn node_of_file(relative: &Path) -> Option<String> {
    let parts: Vec<String> =
        relative.iter().map(|p| p.to_string_lossy().trim_end_matches(".rs").to_owned()).collect();
    match parts.as_slice() {
        [only] if only == "lib" || only == "main" => None,
        [only] => Some(only.clone()),
        [dir, file] if SPLIT.contains(&dir.as_str()) && file != "mod" => Some(format!("{dir}::{file}")),
        [dir, ..] => Some(dir.clone()),
        [] => None,
    }
}

/// The node a path names, from its segments after `crate::`.
fn node_of_path(segments: &[&str]) -> Option<String> {
    let top = *segments.first()?;
    if SPLIT.contains(&top) {
        if let Some(next) = segments.get(1) {
            let dir = src().join(top);
            if dir.join(format!("{next}.rs")).exists() || dir.join(next).is_dir() {
                return Some(format!("{top}::{next}"));
            }
        }
    }
    Some(top.to_owned())
}

/// The code of a file without comments and without its `#[cfg(test)] mod tests`.
fn code(text: &str) -> String {
    let text = match text.find("#[cfg(test)]\nmod tests") {
        Some(at) => &text[..at],
        None => text,
    };
    text.lines()
        .map(|line| match line.find("//") {
            Some(at) => &line[..at],
            None => line,
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// The `crate::a::b` paths in `code`, as segments; `super::x` in a file of `routes/` or
/// `web/` is `crate::<dir>::x`; `crate::{a, b::c}` gives each.
fn paths(code: &str, dir: Option<&str>) -> Vec<Vec<String>> {
    let mut out = Vec::new();
    let ident = |c: char| c.is_alphanumeric() || c == '_';
    let mut push_from = |prefix: &[String], rest: &str| {
        let mut segments = prefix.to_vec();
        let mut rest = rest;
        loop {
            let end = rest.find(|c: char| !ident(c)).unwrap_or(rest.len());
            if end == 0 {
                break;
            }
            segments.push(rest[..end].to_owned());
            match rest[end..].strip_prefix("::") {
                Some(next) => rest = next,
                None => break,
            }
        }
        if segments.len() > prefix.len() {
            out.push(segments);
        }
    };
    for (at, _) in code.match_indices("crate::") {
        let before = code[..at].chars().next_back();
        if before.is_some_and(|c| ident(c) && c != '$') {
            continue;
        }
        let rest = &code[at + "crate::".len()..];
        if let Some(group) = rest.strip_prefix('{') {
            let inner = &group[..group.find('}').unwrap_or(group.len())];
            for item in inner.split(',') {
                push_from(&[], item.trim());
            }
        } else {
            push_from(&[], rest);
        }
    }
    if let Some(dir) = dir {
        for (at, _) in code.match_indices("super::") {
            if code[..at].chars().next_back().is_some_and(|c| ident(c) || c == ':') {
                continue;
            }
            push_from(&[dir.to_owned()], &code[at + "super::".len()..]);
        }
    }
    out
}

/// Every edge `from → to` between nodes, with a path that makes it.
fn edges() -> BTreeMap<(String, String), String> {
    let root = src();
    let mut files = Vec::new();
    rust_files(&root, &mut files);
    let mut edges = BTreeMap::new();
    for file in files {
        let relative = file.strip_prefix(&root).unwrap_or(&file).to_owned();
        let Some(from) = node_of_file(&relative) else { continue };
        let text = std::fs::read_to_string(&file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        let dir = from.split_once("::").map(|(dir, _)| dir.to_owned());
        for segments in paths(&code(&text), dir.as_deref()) {
            let segments: Vec<&str> = segments.iter().map(String::as_str).collect();
            let Some(to) = node_of_path(&segments) else { continue };
            if to != from {
                let example = format!("{}: crate::{}", relative.display(), segments.join("::"));
                edges.entry((from.clone(), to)).or_insert(example);
            }
        }
    }
    edges
}

fn top(node: &str) -> &str {
    node.split("::").next().unwrap_or(node)
}

/// The broken rules, one line each (empty: none).
fn violations(edges: &BTreeMap<(String, String), String>) -> Vec<String> {
    // One line per broken rule and pair of nodes, with the first paths that break it.
    let mut found = BTreeMap::new();
    for ((from, to), example) in edges {
        let (from_top, to_top) = (top(from), top(to));
        if from_top == to_top && !SPLIT.contains(&from_top) {
            continue;
        }
        if LEAVES.contains(&from_top) && from_top != to_top {
            found.entry(format!("{from} is a leaf but imports {to}")).or_insert(example.clone());
        }
        if let Some((_, allowed)) = ALLOWED.iter().find(|(layer, _)| *layer == from_top) {
            if from_top != to_top && !allowed.contains(&to_top) {
                found.entry(format!("{from} imports {to}, above it")).or_insert(example.clone());
            }
        }
        if let Some((_, forbidden)) = FORBIDDEN.iter().find(|(layer, _)| *layer == from_top) {
            if forbidden.contains(&to_top) {
                found.entry(format!("{from} imports {to}")).or_insert(example.clone());
            }
        }
        // A pair of files of routes/ or web/, or a pair of top-level modules.
        let pairs = [(from.clone(), to.clone()), (from_top.to_owned(), to_top.to_owned())];
        for (a, b) in pairs {
            if a == b {
                continue;
            }
            let back = edges.iter().find(|((f, t), _)| {
                let (f, t) =
                    if a.contains("::") { (f.clone(), t.clone()) } else { (top(f).into(), top(t).into()) };
                f == b && t == a
            });
            if let Some((_, back)) = back {
                let (first, second) = if a < b { (&a, &b) } else { (&b, &a) };
                found
                    .entry(format!("{first} and {second} import each other"))
                    .or_insert(format!("{example}; {back}"));
            }
        }
    }
    found.into_iter().map(|(rule, example)| format!("{rule} ({example})")).collect()
}

#[test]
fn every_import_points_down_and_no_two_modules_import_each_other() {
    let edges = edges();
    assert!(edges.keys().any(|(f, t)| f == "routes::login" && t == "web::pages"), "the parser reads paths");
    let broken = violations(&edges);
    assert!(broken.is_empty(), "import directions broken:\n{}", broken.join("\n"));
}

#[test]
fn the_check_fails_on_an_import_back_up_or_a_circle() {
    let mut edges = edges();
    let mut add = |from: &str, to: &str| {
        edges.insert((from.into(), to.into()), format!("added {from} → {to}"));
    };
    add("store", "auth");
    add("auth", "web::guard");
    add("web::pages", "web::admin_pages");
    add("config", "store");
    let broken = violations(&edges).join("\n");
    for expected in [
        "store imports auth",
        "auth imports web::guard",
        "web::admin_pages and web::pages import each other",
        "config imports store",
        "auth and store import each other",
    ] {
        assert!(broken.contains(expected), "{expected:?} not found in:\n{broken}");
    }
}

#[test]
fn paths_are_read_from_uses_groups_super_and_macros_but_not_comments() {
    let text = "use crate::{auth::Auth, store};\n// crate::cli::x\nlet _ = $crate::store::pool::Pool;\nuse super::pages::Reply;\n#[cfg(test)]\nmod tests { use crate::cli; }";
    let found = paths(&code(text), Some("web"));
    let found: Vec<String> = found.iter().map(|s| s.join("::")).collect();
    assert_eq!(found, ["auth::Auth", "store", "store::pool::Pool", "web::pages::Reply"]);
}
