//! The daemon's layering, read from its sources: `http` → `app` → `db` / `hypervisor`, each
//! knowing only what is below it, with leaf modules that know nothing of the daemon, and no
//! circle between the app's modules. ARCHITECTURE.md states these rules; this test keeps them.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// What the modules that work on files and streams alone must not name.
const FILES_ONLY: &[&str] = &[
    "crate::app",
    "crate::http",
    "crate::db",
    "crate::hypervisor",
    "virt::",
    "rusqlite",
];

/// What a part of `daemon/src` must not name, and why.
const RULES: &[(&str, &[&str], &str)] = &[
    (
        "db/",
        &[
            "crate::app",
            "crate::http",
            "crate::config",
            "crate::hypervisor",
            "axum",
            "virt::",
        ],
        "the database knows SQL only",
    ),
    (
        "hypervisor/",
        &[
            "crate::app",
            "crate::http",
            "crate::config",
            "crate::db",
            "rusqlite",
            "axum",
        ],
        "libvirt's layer knows nothing of users, settings or HTTP",
    ),
    (
        "app/",
        &["rusqlite", "axum", "hyper::", "crate::http", "virt::"],
        "the app speaks to the database and libvirt only through db/ and hypervisor/",
    ),
    (
        "http/",
        &[
            "rusqlite",
            "virt::",
            "crate::hypervisor::libvirt",
            "crate::db::vms",
        ],
        "handlers extract, call the app and return",
    ),
    ("cidr.rs", &["crate::"], "a leaf module"),
    ("failpoints.rs", &["crate::"], "a leaf module"),
    ("storage.rs", FILES_ONLY, "files only"),
    ("archive.rs", FILES_ONLY, "files and streams only"),
];

/// Where `unsafe` may appear: the libvirt calls the `virt` crate does not wrap, and the
/// allocator's tuning before any thread starts.
const UNSAFE_ALLOWED: &[&str] = &[
    "hypervisor/raw.rs",
    "hypervisor/events.rs",
    "hypervisor/libvirt.rs",
    "main.rs",
];

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

/// Every `.rs` file under `src/`, by its path relative to it, with comments removed.
fn sources() -> BTreeMap<String, String> {
    fn walk(dir: &Path, root: &Path, out: &mut BTreeMap<String, String>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                walk(&path, root, out);
            } else if path.extension().is_some_and(|e| e == "rs") {
                let text = std::fs::read_to_string(&path).unwrap();
                let code: String = text
                    .lines()
                    .map(|l| l.split("//").next().unwrap_or(""))
                    .collect::<Vec<_>>()
                    .join("\n");
                let rel = path
                    .strip_prefix(root)
                    .unwrap()
                    .to_string_lossy()
                    .into_owned();
                out.insert(rel, code);
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(&src(), &src(), &mut out);
    assert!(out.len() > 40, "only {} source files found", out.len());
    out
}

/// Whether `code` names `path` (not as the tail of a longer name: `libvirt::` is not `virt::`).
fn names(code: &str, path: &str) -> bool {
    code.match_indices(path).any(|(at, _)| {
        !code[..at]
            .chars()
            .next_back()
            .is_some_and(|c| c.is_alphanumeric() || c == '_')
    })
}

#[test]
fn no_layer_names_one_above_it() {
    let files = sources();
    let mut broken = Vec::new();
    for (part, banned, why) in RULES {
        let mut seen = 0;
        for (file, code) in files.iter().filter(|(f, _)| f.starts_with(part)) {
            seen += 1;
            for b in *banned {
                if names(code, b) {
                    broken.push(format!("{file} names `{b}`: {why}"));
                }
            }
        }
        assert!(seen > 0, "no file matches {part}");
    }
    for (file, code) in &files {
        let unsafe_code = ["unsafe {", "unsafe fn", "unsafe extern", "unsafe impl"]
            .iter()
            .any(|u| names(code, u));
        if unsafe_code && !UNSAFE_ALLOWED.contains(&file.as_str()) {
            broken.push(format!("{file} has unsafe code outside {UNSAFE_ALLOWED:?}"));
        }
    }
    assert!(broken.is_empty(), "layering broken:\n{}", broken.join("\n"));
}

/// The app module a file of `app/` belongs to (`app/vms/act.rs` → `vms`).
fn app_module(file: &str) -> Option<String> {
    let rest = file.strip_prefix("app/")?;
    let first = rest.split('/').next()?;
    Some(first.trim_end_matches(".rs").to_owned())
}

/// The app's modules and what each calls of the others: paths (`super::jobs::`,
/// `crate::app::paths::`) and methods of `App` defined in another module (`self.host_room()`).
fn app_graph() -> BTreeMap<String, BTreeMap<String, BTreeSet<String>>> {
    let files = sources();
    let app: Vec<(String, &String)> = files
        .iter()
        .filter_map(|(f, c)| app_module(f).map(|m| (m, c)))
        .collect();
    let modules: BTreeSet<String> = app.iter().map(|(m, _)| m.clone()).collect();
    // Which module defines each method of `App`.
    let mut defined: BTreeMap<String, String> = BTreeMap::new();
    for (module, code) in &app {
        let mut in_impl = false;
        for line in code.lines() {
            if line.starts_with("impl App {") {
                in_impl = true;
            } else if line == "}" {
                in_impl = false;
            } else if in_impl {
                if let Some(name) = method_name(line) {
                    let before = defined.insert(name.clone(), module.clone());
                    assert!(
                        before.is_none_or(|m| &m == module),
                        "App::{name} is defined in two modules"
                    );
                }
            }
        }
    }
    let ident = |s: &str| -> String {
        s.chars()
            .take_while(|c| c.is_alphanumeric() || *c == '_')
            .collect()
    };
    let mut graph: BTreeMap<String, BTreeMap<String, BTreeSet<String>>> = BTreeMap::new();
    for (module, code) in &app {
        let mut add = |to: &str, what: String| {
            if to != module && to != "mod" && modules.contains(to) {
                graph
                    .entry(module.clone())
                    .or_default()
                    .entry(to.to_owned())
                    .or_default()
                    .insert(what);
            }
        };
        for prefix in ["crate::app::", "super::"] {
            for piece in code.split(prefix).skip(1) {
                let name = ident(piece);
                if piece[name.len()..].starts_with("::") {
                    add(&name, format!("{prefix}{name}::"));
                }
            }
        }
        for receiver in ["self.", "app."] {
            for piece in code.split(receiver).skip(1) {
                let name = ident(piece);
                if piece[name.len()..].starts_with('(') {
                    if let Some(to) = defined.get(&name) {
                        add(to, format!("{name}()"));
                    }
                }
            }
        }
    }
    graph
}

fn method_name(line: &str) -> Option<String> {
    let rest = line.strip_prefix("    ")?;
    let rest = rest
        .trim_start_matches("pub ")
        .trim_start_matches("pub(super) ")
        .trim_start_matches("pub(crate) ")
        .trim_start_matches("pub(in crate::app) ")
        .trim_start_matches("async ");
    let rest = rest.strip_prefix("fn ")?;
    Some(
        rest.chars()
            .take_while(|c| c.is_alphanumeric() || *c == '_')
            .collect(),
    )
}

#[test]
fn the_app_modules_call_each_other_without_circles() {
    let graph = app_graph();
    assert!(
        graph.len() > 10,
        "the graph found only {} modules",
        graph.len()
    );
    // Depth-first search; a back edge is a circle.
    fn visit(
        m: &str,
        graph: &BTreeMap<String, BTreeMap<String, BTreeSet<String>>>,
        path: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) -> Option<Vec<String>> {
        if let Some(at) = path.iter().position(|p| p == m) {
            let mut circle = path[at..].to_vec();
            circle.push(m.to_owned());
            return Some(circle);
        }
        if done.contains(m) {
            return None;
        }
        path.push(m.to_owned());
        for next in graph.get(m).into_iter().flat_map(|e| e.keys()) {
            if let Some(c) = visit(next, graph, path, done) {
                return Some(c);
            }
        }
        path.pop();
        done.insert(m.to_owned());
        None
    }
    let mut done = BTreeSet::new();
    for m in graph.keys() {
        if let Some(circle) = visit(m, &graph, &mut Vec::new(), &mut done) {
            let why: Vec<String> = circle
                .windows(2)
                .map(|w| format!("{} → {}: {:?}", w[0], w[1], graph[&w[0]][&w[1]]))
                .collect();
            panic!(
                "the app's modules call each other in a circle:\n{}",
                why.join("\n")
            );
        }
    }
    // The graph sees what it should: the verbs call the record, the record calls resources.
    assert!(graph["vms"].contains_key("record"), "{graph:?}");
    assert!(graph["record"].contains_key("resources"), "{graph:?}");
}
