//! The layers of `src/` point one way. Each top-level module may use only the modules its row
//! of [`ALLOWED`] names; a `use crate::…` (or a `crate::…` path) outside its row fails this
//! test, naming the file. Unit tests inside a module (`#[cfg(test)]` and below) and comments
//! are not counted.
//!
//! From the top: `cli` and `config` (the ways in and the settings they build), `server`
//! (wiring), `http`, `graphql` (transports), `recovery` → `users` and `apps` (the services),
//! `mail` (queued below the services that send, never calling them back), then the floor every
//! layer may stand on: `links`, `passwords`, `normalise`, `auth`, `db`, `telemetry`, `error`.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Which top-level module may use which.
#[rustfmt::skip]
const ALLOWED: &[(&str, &[&str])] = &[
    ("cli",       &["config", "server", "graphql", "apps", "users", "mail", "auth", "passwords", "db", "telemetry", "error"]),
    ("config",    &["server", "http", "graphql", "mail", "auth", "passwords", "db", "telemetry"]),
    ("server",    &["http", "graphql", "recovery", "users", "apps", "mail", "auth", "passwords", "db", "telemetry", "error"]),
    ("http",      &["graphql", "recovery", "users", "mail", "auth", "passwords", "db", "telemetry", "error"]),
    ("graphql",   &["recovery", "users", "apps", "mail", "auth", "passwords", "db", "telemetry", "error"]),
    ("recovery",  &["users", "mail", "links", "auth", "passwords", "normalise", "db", "telemetry", "error"]),
    ("users",     &["mail", "links", "auth", "passwords", "normalise", "db", "telemetry", "error"]),
    ("apps",      &["mail", "normalise", "db", "error"]),
    ("mail",      &["links", "passwords", "normalise", "db", "telemetry", "error"]),
    ("links",     &["passwords", "error"]),
    ("passwords", &["quota", "db", "error"]),
    ("normalise", &["error"]),
    ("auth",      &[]),
    ("db",        &["quota"]),
    ("quota",     &[]),
    ("telemetry", &[]),
    ("error",     &[]),
];

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The code of a file without its unit tests and comments.
fn code(text: &str) -> String {
    let text = text.split("#[cfg(test)]").next().unwrap_or("");
    text.lines()
        .map(|line| line.split("//").next().unwrap_or(""))
        .collect::<Vec<_>>()
        .join("\n")
}

fn is_ident(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

/// The top-level modules a piece of code names through `crate::`.
fn crate_modules(code: &str) -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    for (at, _) in code.match_indices("crate::") {
        if code[..at].chars().next_back().is_some_and(is_ident) {
            continue; // `usersvc_crate::…` and the like
        }
        let rest = &code[at + "crate::".len()..];
        if let Some(group) = rest.strip_prefix('{') {
            let group = &group[..group.find('}').unwrap_or(group.len())];
            for item in group.split(',') {
                let name: String = item.trim().chars().take_while(|c| is_ident(*c)).collect();
                if !name.is_empty() {
                    found.insert(name);
                }
            }
        } else {
            let name: String = rest.chars().take_while(|c| is_ident(*c)).collect();
            if !name.is_empty() {
                found.insert(name);
            }
        }
    }
    found
}

#[test]
fn every_module_uses_only_the_layers_below_it() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let allowed: BTreeMap<&str, &[&str]> = ALLOWED.iter().copied().collect();
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let mut violations = Vec::new();
    let mut seen = BTreeSet::new();
    for file in files {
        let rel = file.strip_prefix(&src).unwrap();
        let first = rel
            .components()
            .next()
            .unwrap()
            .as_os_str()
            .to_string_lossy();
        let module = first.trim_end_matches(".rs").to_owned();
        if module == "main" || module == "lib" {
            continue;
        }
        seen.insert(module.clone());
        let Some(may_use) = allowed.get(module.as_str()) else {
            violations.push(format!(
                "src/{}: module `{module}` has no row in ALLOWED",
                rel.display()
            ));
            continue;
        };
        let text = std::fs::read_to_string(&file).unwrap();
        for used in crate_modules(&code(&text)) {
            if used != module && !may_use.contains(&used.as_str()) {
                violations.push(format!("src/{} uses `{used}`", rel.display()));
            }
        }
    }
    assert!(
        violations.is_empty(),
        "imports against the layers (see ALLOWED in tests/it/layers.rs):\n{}",
        violations.join("\n")
    );
    for (module, _) in ALLOWED {
        assert!(
            seen.contains(*module),
            "ALLOWED names `{module}`, which src/ does not have"
        );
    }
}

#[test]
fn the_allow_list_has_no_cycle() {
    let allowed: BTreeMap<&str, &[&str]> = ALLOWED.iter().copied().collect();
    fn reaches(from: &str, to: &str, allowed: &BTreeMap<&str, &[&str]>, depth: usize) -> bool {
        depth < 32
            && allowed.get(from).is_some_and(|next| {
                next.iter()
                    .any(|n| *n == to || reaches(n, to, allowed, depth + 1))
            })
    }
    for (module, _) in ALLOWED {
        assert!(
            !reaches(module, module, &allowed, 0),
            "`{module}` can reach itself"
        );
    }
}

#[test]
fn the_scanner_sees_paths_and_groups_but_not_lookalikes() {
    let found = crate_modules(
        "use crate::db::{self, Db};\nuse crate::{error::AppError, links};\nlet x = crate::mail::f();\nmy_crate::users::x;",
    );
    let found: Vec<&str> = found.iter().map(String::as_str).collect();
    assert_eq!(found, ["db", "error", "links", "mail"]);
    assert_eq!(
        code("use crate::a; // crate::b\n#[cfg(test)]\nuse crate::c;"),
        "use crate::a; "
    );
}

/// Longest a source file may be, tests and benchmark scripts included: past it a file holds
/// more than one idea, and big test tables belong in their own files.
const MAX_LINES: usize = 600;

/// The harness's scripts (`run`, `instructions`, `*.py`, `*.sh`, `*.mjs`), in every folder but installed ones.
fn scripts(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            if !path.ends_with("node_modules") {
                scripts(&path, out);
            }
        } else if path
            .file_name()
            .is_some_and(|n| n == "run" || n == "instructions")
            || path
                .extension()
                .is_some_and(|e| ["py", "sh", "mjs", "rs"].iter().any(|x| e == *x))
        {
            out.push(path);
        }
    }
}

/// The source files of the project: Rust under `src/` and `tests/`, the benchmark harness.
fn source_files() -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = Vec::new();
    rust_files(&root.join("src"), &mut files);
    rust_files(&root.join("tests"), &mut files);
    scripts(&root.join("benches"), &mut files);
    files
}

#[test]
fn no_source_file_is_longer_than_the_limit() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let long: Vec<String> = source_files()
        .into_iter()
        .filter_map(|file| {
            let lines = std::fs::read_to_string(&file).ok()?.lines().count();
            (lines > MAX_LINES).then(|| {
                format!(
                    "{}: {lines} lines",
                    file.strip_prefix(root).unwrap().display()
                )
            })
        })
        .collect();
    assert!(
        long.is_empty(),
        "files over {MAX_LINES} lines (split them by idea):\n{}",
        long.join("\n")
    );
}
