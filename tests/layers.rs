//! The layer rules of docs/architecture.md, checked on the source: each folder of the library
//! may only reach the stages below it (read from its `crate::` paths, grouped imports included),
//! and nothing shipped reaches the test kit.

use std::collections::BTreeSet;
use std::path::Path;

/// Every `crate::a::b` path named in `text` (comments skipped; `crate::{a, b::c}` expanded).
fn paths(text: &str, root: &str) -> BTreeSet<String> {
    let code: String = text
        .lines()
        .filter(|l| !l.trim_start().starts_with("//"))
        .collect::<Vec<_>>()
        .join("\n");
    let mut out = BTreeSet::new();
    let needle = format!("{root}::");
    let mut rest = code.as_str();
    while let Some(i) = rest.find(&needle) {
        // Not part of a longer name (e.g. `jobnet_crate::`).
        let before = rest[..i].chars().last();
        rest = &rest[i + needle.len()..];
        if before.is_some_and(|c| c.is_alphanumeric() || c == '_') {
            continue;
        }
        if let Some(group) = rest.strip_prefix('{') {
            let end = group.find('}').unwrap_or(group.len());
            for item in group[..end].split(',') {
                let p: String = item
                    .trim()
                    .chars()
                    .take_while(|c| c.is_alphanumeric() || *c == '_' || *c == ':')
                    .collect();
                if !p.is_empty() {
                    out.insert(format!("{root}::{}", p.trim_end_matches(':')));
                }
            }
        } else {
            let p: String = rest
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_' || *c == ':')
                .collect();
            out.insert(format!("{root}::{}", p.trim_end_matches(':')));
        }
    }
    out
}

fn sources(dir: &Path, into: &mut Vec<(String, String)>) {
    let meta = std::fs::metadata(dir).unwrap();
    if meta.is_file() {
        into.push((
            dir.display().to_string(),
            std::fs::read_to_string(dir).unwrap(),
        ));
        return;
    }
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() || p.extension().is_some_and(|x| x == "rs") {
            sources(&p, into);
        }
    }
}

/// Paths of `folder` that start with one of `forbidden`.
fn violations(folder: &str, root: &str, forbidden: &[&str]) -> Vec<String> {
    let mut files = Vec::new();
    sources(Path::new(folder), &mut files);
    assert!(!files.is_empty(), "{folder} has no sources");
    let mut bad = Vec::new();
    for (file, text) in files {
        for p in paths(&text, root) {
            if forbidden
                .iter()
                .any(|f| p == *f || p.starts_with(&format!("{f}::")))
            {
                bad.push(format!("{file}: {p}"));
            }
        }
    }
    bad
}

#[test]
fn the_scanner_sees_grouped_and_nested_paths() {
    let text = "use crate::{base::types::VlanId, drivers::transport::Target};\n// crate::state in a comment\nfn f() { crate::apply::up(); }\n";
    let p = paths(text, "crate");
    assert!(p.contains("crate::drivers::transport::Target"), "{p:?}");
    assert!(p.contains("crate::apply::up"), "{p:?}");
    assert!(!p.iter().any(|x| x.starts_with("crate::state")), "{p:?}");
}

#[test]
fn every_stage_reaches_only_the_stages_below_it() {
    const TOP: &[&str] = &["crate::context", "crate::testkit"];
    let rules: &[(&str, &[&str])] = &[
        (
            "src/base",
            &[
                "crate::topology",
                "crate::plan",
                "crate::drivers",
                "crate::ib",
                "crate::state",
                "crate::apply",
            ],
        ),
        // The topology model knows no transport, no OpenSM reload mechanics, no plan.
        (
            "src/topology",
            &[
                "crate::plan",
                "crate::drivers::transport",
                "crate::drivers::cli",
                "crate::ib",
                "crate::state",
                "crate::apply",
            ],
        ),
        // The planner is pure: no transport, state or executor.
        (
            "src/plan",
            &[
                "crate::drivers::transport",
                "crate::drivers::cli",
                "crate::ib::opensm",
                "crate::state",
                "crate::apply",
            ],
        ),
        // The state keeps data (typed operations), not transport targets or dialects.
        (
            "src/state",
            &[
                "crate::drivers::transport",
                "crate::drivers::cli",
                "crate::drivers::profile",
                "crate::plan",
                "crate::ib",
                "crate::apply",
            ],
        ),
        // Drivers carry out typed operations; they do not plan.
        (
            "src/drivers",
            &["crate::plan", "crate::state", "crate::apply", "crate::ib"],
        ),
        ("src/ib", &["crate::state", "crate::apply", "crate::plan"]),
        // The node side reads the controller's files; it reaches no state, executor or facade.
        (
            "src/node",
            &[
                "crate::state",
                "crate::apply",
                "crate::plan",
                "crate::drivers",
                "crate::ib",
            ],
        ),
        ("src/apply", &[]),
        ("src/context.rs", &[]),
    ];
    let mut bad = Vec::new();
    for (folder, forbidden) in rules {
        let mut all: Vec<&str> = forbidden.to_vec();
        if *folder != "src/context.rs" && *folder != "src/apply" {
            all.push("crate::context");
        }
        all.push(TOP[1]);
        bad.extend(violations(folder, "crate", &all));
    }
    assert!(bad.is_empty(), "layer rules broken:\n{}", bad.join("\n"));
}

#[test]
fn the_command_line_goes_through_the_facade() {
    // The binary wires no SSH, state store or executor itself.
    let bad = violations(
        "src/cli",
        "jobnet",
        &[
            "jobnet::drivers::transport",
            "jobnet::drivers::cli",
            "jobnet::state",
        ],
    );
    assert!(bad.is_empty(), "{}", bad.join("\n"));
    let mut files = Vec::new();
    sources(Path::new("src/cli"), &mut files);
    for (file, text) in files {
        for call in [
            "apply::up(",
            "apply::down(",
            "apply::recover(",
            "apply::dry_run(",
            "Env {",
            "SqliteStore",
        ] {
            assert!(
                !text.contains(call),
                "{file} calls `{call}` instead of jobnet::Context"
            );
        }
    }
}

#[test]
fn nothing_shipped_reaches_the_test_kit() {
    let mut files = Vec::new();
    sources(Path::new("src"), &mut files);
    for (file, text) in files {
        if file.starts_with("src/testkit") || file.starts_with("src/bin/jobnet-switch-sim") {
            continue;
        }
        let lines: Vec<&str> = text.lines().collect();
        for (i, l) in lines.iter().enumerate() {
            if l.trim_start().starts_with("//") {
                continue;
            }
            if l.contains("crate::testkit") || l.contains("jobnet::testkit") {
                // Only inside an item compiled for the test-kit feature alone.
                let gated = lines[..i]
                    .iter()
                    .rev()
                    .take(4)
                    .any(|p| p.trim() == "#[cfg(feature = \"testkit\")]");
                assert!(
                    gated,
                    "{file}:{}: reaches the test kit: {}",
                    i + 1,
                    l.trim()
                );
            }
        }
    }
    let lib = std::fs::read_to_string("src/lib.rs").unwrap();
    assert!(lib.contains("#[cfg(feature = \"testkit\")]\npub mod testkit;"));
    let cargo = std::fs::read_to_string("Cargo.toml").unwrap();
    assert!(cargo.contains("required-features = [\"testkit\"]"));
}
