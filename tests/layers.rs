//! The layer rules of docs/architecture.md, checked on the source: each folder of the library
//! may only reach the stages below it, the command line goes through the facade, and nothing
//! shipped reaches the test kit.
//!
//! A scanner cannot be what the compiler is (issue 14: layers as crates make this structural);
//! until then this one reads paths the way rustc resolves them, closely enough to be trusted:
//! comments and string literals are blanked first; `use` trees are parsed (nested groups, `self`,
//! globs, `as`); every path in code counts, not only `use` lines (`crate::apply::up(..)`,
//! `super::network::JobNetwork`, `apply::up(..)` after `use crate::apply`); `super::` and
//! `self::` are resolved against the module the text sits in (inline `mod tests { .. }`
//! included); and re-exports are followed, so `crate::Context` is a use of `context` and
//! `crate::drivers::Profile` one of `drivers::profile`: a `pub use` launders no dependency.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

// ---------------------------------------------------------------------------------------------
// Reading Rust text
// ---------------------------------------------------------------------------------------------

/// `text` with comments, string, byte-string, raw-string and char literals replaced by spaces
/// (line breaks kept, so line numbers stay right). Lifetimes (`'a`) are left alone.
fn code_only(text: &str) -> String {
    let c: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(text.len());
    let blank = |out: &mut String, s: &[char]| {
        for ch in s {
            out.push(if *ch == '\n' { '\n' } else { ' ' });
        }
    };
    let ident = |ch: char| ch.is_alphanumeric() || ch == '_';
    let mut i = 0;
    while i < c.len() {
        let prev_ident = i > 0 && ident(c[i - 1]);
        if c[i] == '/' && c.get(i + 1) == Some(&'/') {
            let end = (i..c.len()).find(|&j| c[j] == '\n').unwrap_or(c.len());
            blank(&mut out, &c[i..end]);
            i = end;
        } else if c[i] == '/' && c.get(i + 1) == Some(&'*') {
            // Block comments nest.
            let (mut j, mut depth) = (i + 2, 1);
            while j < c.len() && depth > 0 {
                if c[j] == '/' && c.get(j + 1) == Some(&'*') {
                    depth += 1;
                    j += 2;
                } else if c[j] == '*' && c.get(j + 1) == Some(&'/') {
                    depth -= 1;
                    j += 2;
                } else {
                    j += 1;
                }
            }
            blank(&mut out, &c[i..j.min(c.len())]);
            i = j;
        } else if !prev_ident && (c[i] == 'r' || (c[i] == 'b' && c.get(i + 1) == Some(&'r'))) && {
            let k = i + if c[i] == 'b' { 2 } else { 1 };
            let hashes = c[k..].iter().take_while(|&&h| h == '#').count();
            c.get(k + hashes) == Some(&'"')
        } {
            // Raw string: r"..", r#".."#, br"..".
            let k = i + if c[i] == 'b' { 2 } else { 1 };
            let hashes = c[k..].iter().take_while(|&&h| h == '#').count();
            let mut j = k + hashes + 1;
            loop {
                if j >= c.len() {
                    break;
                }
                if c[j] == '"'
                    && c[j + 1..]
                        .iter()
                        .take(hashes)
                        .filter(|&&h| h == '#')
                        .count()
                        == hashes
                {
                    j += 1 + hashes;
                    break;
                }
                j += 1;
            }
            blank(&mut out, &c[i..j.min(c.len())]);
            i = j;
        } else if c[i] == '"' {
            let mut j = i + 1;
            while j < c.len() && c[j] != '"' {
                j += if c[j] == '\\' { 2 } else { 1 };
            }
            blank(&mut out, &c[i..(j + 1).min(c.len())]);
            i = j + 1;
        } else if c[i] == '\'' {
            // A char literal ('x', '\n', '\u{1F600}'), or a lifetime / label ('a) left as is.
            let end = if c.get(i + 1) == Some(&'\\') {
                (i + 2..c.len()).find(|&j| c[j] == '\'')
            } else if c.get(i + 2) == Some(&'\'') {
                Some(i + 2)
            } else {
                None
            };
            match end {
                Some(e) => {
                    blank(&mut out, &c[i..=e]);
                    i = e + 1;
                }
                None => {
                    out.push('\'');
                    i += 1;
                }
            }
        } else {
            out.push(c[i]);
            i += 1;
        }
    }
    out
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Tok {
    Ident(String),
    /// `::`
    Sep,
    Open,
    Close,
    Comma,
    Semi,
    Star,
    Other(char),
}

/// Tokens of code (already without comments and literals), each with its line (1-based).
fn tokens(code: &str) -> Vec<(Tok, usize)> {
    let c: Vec<char> = code.chars().collect();
    let mut out = Vec::new();
    let (mut i, mut line) = (0, 1);
    while i < c.len() {
        let ch = c[i];
        if ch == '\n' {
            line += 1;
            i += 1;
        } else if ch.is_whitespace() {
            i += 1;
        } else if ch.is_alphabetic() || ch == '_' {
            let j = (i..c.len())
                .find(|&j| !(c[j].is_alphanumeric() || c[j] == '_'))
                .unwrap_or(c.len());
            let word: String = c[i..j].iter().collect();
            // A raw identifier `r#name` is the name.
            if word == "r"
                && c.get(j) == Some(&'#')
                && c.get(j + 1).is_some_and(|x| x.is_alphabetic() || *x == '_')
            {
                i = j + 1;
                continue;
            }
            out.push((Tok::Ident(word), line));
            i = j;
        } else if ch.is_ascii_digit() {
            // Numbers (and their suffixes) name nothing.
            let j = (i..c.len())
                .find(|&j| !(c[j].is_alphanumeric() || c[j] == '_' || c[j] == '.'))
                .unwrap_or(c.len());
            out.push((Tok::Other('0'), line));
            i = j;
        } else {
            let t = match ch {
                ':' if c.get(i + 1) == Some(&':') => {
                    i += 1;
                    Tok::Sep
                }
                '{' => Tok::Open,
                '}' => Tok::Close,
                ',' => Tok::Comma,
                ';' => Tok::Semi,
                '*' => Tok::Star,
                other => Tok::Other(other),
            };
            out.push((t, line));
            i += 1;
        }
    }
    out
}

fn is_ident(t: Option<&(Tok, usize)>, word: &str) -> bool {
    matches!(t, Some((Tok::Ident(w), _)) if w == word)
}

/// One leaf of a `use` tree: `a::b` (`a::{self}` gives `a`), with its `as` name, or `a::*`.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Leaf {
    path: Vec<String>,
    glob: bool,
    alias: Option<String>,
}

/// Parses the use tree at `t[*i]` (after `use`) below `prefix`, leaving `*i` after it.
fn use_tree(t: &[(Tok, usize)], i: &mut usize, prefix: Vec<String>, out: &mut Vec<Leaf>) {
    let mut p = prefix;
    if matches!(t.get(*i), Some((Tok::Sep, _))) {
        *i += 1; // `use ::std::..`
    }
    loop {
        match t.get(*i).map(|x| &x.0) {
            Some(Tok::Ident(s)) => {
                p.push(s.clone());
                *i += 1;
                if matches!(t.get(*i), Some((Tok::Sep, _))) {
                    *i += 1;
                    continue;
                }
                break;
            }
            Some(Tok::Open) => {
                *i += 1;
                while *i < t.len() {
                    match t[*i].0 {
                        Tok::Close => {
                            *i += 1;
                            break;
                        }
                        Tok::Comma => *i += 1,
                        Tok::Semi => return, // malformed; never run past the item
                        _ => use_tree(t, i, p.clone(), out),
                    }
                }
                return;
            }
            Some(Tok::Star) => {
                *i += 1;
                out.push(Leaf {
                    path: p,
                    glob: true,
                    alias: None,
                });
                return;
            }
            _ => {
                *i += 1; // malformed; skip a token so the caller moves on
                return;
            }
        }
    }
    if p.last().is_some_and(|s| s == "self") {
        p.pop();
    }
    let mut alias = None;
    if is_ident(t.get(*i), "as") {
        if let Some((Tok::Ident(a), _)) = t.get(*i + 1) {
            alias = Some(a.clone());
        }
        *i += 2;
    }
    out.push(Leaf {
        path: p,
        glob: false,
        alias,
    });
}

// ---------------------------------------------------------------------------------------------
// Files, modules and what each one names
// ---------------------------------------------------------------------------------------------

/// Which crate a file belongs to: the library, or a binary that reaches the library as `jobnet`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Lib,
    Bin,
}

/// Where a file sits: `src/lib.rs` → [], `src/a/mod.rs` → [a], `src/a/b.rs` → [a, b].
/// Binaries (`src/main.rs`, `src/cli/`, `src/bin/`) are their own crate.
fn module_of(file: &str) -> (Kind, Vec<String>) {
    let rel = file.trim_start_matches("./").trim_start_matches("src/");
    let kind = if rel == "main.rs" || rel.starts_with("cli/") || rel.starts_with("bin/") {
        Kind::Bin
    } else {
        Kind::Lib
    };
    let mut segs: Vec<String> = rel
        .trim_end_matches(".rs")
        .split('/')
        .map(String::from)
        .collect();
    if segs
        .last()
        .is_some_and(|s| s == "mod" || s == "lib" || s == "main")
    {
        segs.pop();
    }
    (kind, segs)
}

/// A path a file names, as written (`literal`, with `crate::` or `jobnet::` spelled out) and as
/// a path from the library's root (`abs`, empty for external crates and the binary's own
/// modules).
#[derive(Clone, Debug)]
struct Named {
    line: usize,
    literal: String,
    /// Inside the library, from its root (`["apply", "up"]`); `None`: not the library.
    abs: Option<Vec<String>>,
}

/// What one file says: its uses, its re-exports, its other paths, the items it defines.
#[derive(Default)]
struct FileFacts {
    named: Vec<Named>,
    /// Module → its `pub use` leaves, resolved (the target from the library's root).
    reexports: Vec<(Vec<String>, Leaf)>,
    /// Module → item names it defines (fn, struct, enum, trait, type, const, static, mod, macro).
    defines: Vec<(Vec<String>, String)>,
    /// Modules declared inline (`mod tests { .. }`) or by `mod x;`.
    modules: Vec<Vec<String>>,
}

/// `segs` (as written in `module`) from the library's root, or `None` when they name something
/// else (std, an external crate, the binary's own modules). `bound`: names this file's `use`s
/// bind; `modules`: the modules known to exist.
fn resolve(
    kind: Kind,
    module: &[String],
    segs: &[String],
    bound: &BTreeMap<String, Vec<String>>,
    modules: &BTreeSet<Vec<String>>,
) -> Option<Vec<String>> {
    let first = segs.first()?.as_str();
    match (kind, first) {
        (Kind::Bin, "jobnet") => Some(segs[1..].to_vec()),
        (Kind::Bin, _) => {
            // `apply::up(..)` after `use jobnet::apply;`
            let b = bound.get(first)?;
            Some(b.iter().cloned().chain(segs[1..].iter().cloned()).collect())
        }
        (Kind::Lib, "crate") => Some(segs[1..].to_vec()),
        (Kind::Lib, "self") => Some(module.iter().chain(&segs[1..]).cloned().collect()),
        (Kind::Lib, "super") => {
            let ups = segs.iter().take_while(|s| *s == "super").count();
            let base = &module[..module.len().checked_sub(ups)?];
            Some(base.iter().chain(&segs[ups..]).cloned().collect())
        }
        (Kind::Lib, _) => {
            let mut child = module.to_vec();
            child.push(first.to_string());
            if modules.contains(&child) {
                Some(module.iter().chain(segs).cloned().collect())
            } else {
                let b = bound.get(first)?;
                Some(b.iter().cloned().chain(segs[1..].iter().cloned()).collect())
            }
        }
    }
}

/// Reads one file. `modules`: every module of the library known so far (file modules and the
/// inline ones of earlier passes), needed to tell `config::X` (a child module) from `std::X`.
fn read_file(file: &str, text: &str, modules: &BTreeSet<Vec<String>>) -> FileFacts {
    let (kind, file_module) = module_of(file);
    let code = code_only(text);
    let t = tokens(&code);
    let mut facts = FileFacts::default();
    let root = |k: Kind| if k == Kind::Lib { "crate" } else { "jobnet" };

    // Pass 1: the module of every token (inline `mod x { .. }`), the uses and what they bind.
    let mut module_at = Vec::with_capacity(t.len());
    let mut stack: Vec<(String, usize)> = Vec::new();
    let mut depth = 0usize;
    let current = |stack: &[(String, usize)]| -> Vec<String> {
        file_module
            .iter()
            .cloned()
            .chain(stack.iter().map(|s| s.0.clone()))
            .collect()
    };
    /// One `use` item: its tokens `from..to`, the module it sits in, whether it is `pub`.
    struct Use {
        from: usize,
        to: usize,
        module: Vec<String>,
        public: bool,
        leaves: Vec<Leaf>,
    }
    let mut uses: Vec<Use> = Vec::new();
    let mut i = 0;
    while i < t.len() {
        module_at.push(current(&stack));
        match &t[i].0 {
            Tok::Open => depth += 1,
            Tok::Close => {
                depth = depth.saturating_sub(1);
                if stack.last().is_some_and(|s| s.1 == depth) {
                    stack.pop();
                }
            }
            Tok::Ident(w) if w == "mod" => {
                if let Some((Tok::Ident(name), _)) = t.get(i + 1) {
                    let mut m = current(&stack);
                    m.push(name.clone());
                    facts.modules.push(m);
                    facts.defines.push((current(&stack), name.clone()));
                    if matches!(t.get(i + 2), Some((Tok::Open, _))) {
                        module_at.push(current(&stack));
                        module_at.push(current(&stack));
                        stack.push((name.clone(), depth));
                        depth += 1;
                        i += 3;
                        continue;
                    }
                }
            }
            Tok::Ident(w)
                if matches!(
                    w.as_str(),
                    "fn" | "struct" | "enum" | "trait" | "type" | "const" | "static" | "union"
                ) =>
            {
                if let Some((Tok::Ident(name), _)) = t.get(i + 1) {
                    facts.defines.push((current(&stack), name.clone()));
                }
            }
            Tok::Ident(w) if w == "macro_rules" => {
                if let Some((Tok::Ident(name), _)) = t.get(i + 2) {
                    facts.defines.push((current(&stack), name.clone()));
                }
            }
            Tok::Ident(w) if w == "use" => {
                // `pub use`, `pub(crate) use`, `pub(in path) use` re-export.
                let public = is_ident(t.get(i.wrapping_sub(1)), "pub")
                    || (matches!(t.get(i.wrapping_sub(1)), Some((Tok::Other(')'), _)))
                        && (1..8).any(|k| {
                            is_ident(t.get(i.wrapping_sub(k + 1)), "pub")
                                && matches!(t.get(i.wrapping_sub(k)), Some((Tok::Other('('), _)))
                        }));
                let mut leaves = Vec::new();
                let from = i;
                let mut j = i + 1;
                use_tree(&t, &mut j, Vec::new(), &mut leaves);
                while j < t.len() && t[j].0 != Tok::Semi {
                    j += 1;
                }
                uses.push(Use {
                    from,
                    to: j,
                    module: current(&stack),
                    public,
                    leaves,
                });
                for _ in i + 1..j.min(t.len()) {
                    module_at.push(current(&stack));
                }
                i = j;
                continue;
            }
            _ => {}
        }
        i += 1;
    }
    module_at.resize(t.len(), file_module.clone());

    let mut known = modules.clone();
    known.extend(facts.modules.iter().cloned());

    // What the file's non-glob uses bind: `use crate::ib::partitions::{self, X}` binds
    // `partitions` and `X`, so `partitions::check(..)` later is `ib::partitions::check`.
    let mut bound: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for Use { module, leaves, .. } in &uses {
        for leaf in leaves.iter().filter(|l| !l.glob) {
            if let Some(abs) = resolve(kind, module, &leaf.path, &BTreeMap::new(), &known) {
                let name = leaf.alias.clone().or_else(|| leaf.path.last().cloned());
                if let Some(name) = name.filter(|n| n != "_") {
                    bound.insert(name, abs);
                }
            }
        }
    }

    // Pass 2: every use leaf and every other path.
    let mut in_use = vec![false; t.len()];
    for Use {
        from,
        to,
        module,
        public,
        leaves,
    } in &uses
    {
        in_use[*from..(*to).min(t.len())].fill(true);
        let line = t[*from].1;
        for leaf in leaves {
            let abs = resolve(kind, module, &leaf.path, &BTreeMap::new(), &known);
            let mut literal = leaf.path.join("::");
            if leaf.glob {
                literal.push_str("::*");
            }
            if *public && kind == Kind::Lib {
                if let Some(a) = &abs {
                    facts.reexports.push((
                        module.clone(),
                        Leaf {
                            path: a.clone(),
                            glob: leaf.glob,
                            alias: leaf.alias.clone(),
                        },
                    ));
                }
            }
            facts.named.push(Named { line, literal, abs });
        }
    }
    let mut i = 0;
    while i < t.len() {
        let starts_path = !in_use[i]
            && matches!(&t[i].0, Tok::Ident(_))
            && matches!(t.get(i + 1), Some((Tok::Sep, _)))
            && !matches!(t.get(i.wrapping_sub(1)), Some((Tok::Sep, _)));
        if !starts_path {
            i += 1;
            continue;
        }
        let mut segs = Vec::new();
        let mut j = i;
        while let Some((Tok::Ident(s), _)) = t.get(j) {
            segs.push(s.clone());
            if matches!(t.get(j + 1), Some((Tok::Sep, _)))
                && matches!(t.get(j + 2), Some((Tok::Ident(_), _)))
            {
                j += 2;
            } else {
                break;
            }
        }
        let abs = resolve(kind, &module_at[i], &segs, &bound, &known);
        if abs.is_some() || segs[0] == root(kind) {
            facts.named.push(Named {
                line: t[i].1,
                literal: segs.join("::"),
                abs,
            });
        }
        i = j + 1;
    }
    facts
}

/// The library and binaries as read: which modules exist, what each defines and re-exports.
struct Crate {
    files: BTreeMap<String, FileFacts>,
    modules: BTreeSet<Vec<String>>,
    defines: BTreeSet<(Vec<String>, String)>,
    reexports: BTreeMap<Vec<String>, Vec<Leaf>>,
}

impl Crate {
    fn read(sources: &[(String, String)]) -> Crate {
        let mut modules: BTreeSet<Vec<String>> = sources
            .iter()
            .map(|(f, _)| module_of(f))
            .filter(|(k, _)| *k == Kind::Lib)
            .map(|(_, m)| m)
            .collect();
        // Inline modules (`mod x { .. }`) become known after a first reading.
        let mut files = BTreeMap::new();
        for pass in 0..2 {
            files.clear();
            for (f, text) in sources {
                let facts = read_file(f, text, &modules);
                if pass == 0 && module_of(f).0 == Kind::Lib {
                    modules.extend(facts.modules.iter().cloned());
                }
                files.insert(f.clone(), facts);
            }
        }
        let mut defines = BTreeSet::new();
        let mut reexports: BTreeMap<Vec<String>, Vec<Leaf>> = BTreeMap::new();
        for (f, facts) in &files {
            if module_of(f).0 != Kind::Lib {
                continue;
            }
            defines.extend(facts.defines.iter().cloned());
            for (m, leaf) in &facts.reexports {
                reexports.entry(m.clone()).or_default().push(leaf.clone());
            }
        }
        Crate {
            files,
            modules,
            defines,
            reexports,
        }
    }

    /// Where `abs` really lives, following re-exports (`context::Context` for `Context`,
    /// `drivers::profile::Profile` for `drivers::Profile`); with a glob re-export that cannot
    /// be decided, every candidate. The bool says whether the path was found at all.
    fn canonical(&self, abs: &[String], hops: usize) -> (Vec<Vec<String>>, bool) {
        if hops > 16 {
            return (vec![abs.to_vec()], false);
        }
        let mut m: Vec<String> = Vec::new();
        for (k, seg) in abs.iter().enumerate() {
            let mut child = m.clone();
            child.push(seg.clone());
            if self.modules.contains(&child) {
                m = child;
                continue;
            }
            if self.defines.contains(&(m.clone(), seg.clone())) {
                return (vec![abs.to_vec()], true);
            }
            let rest = &abs[k + 1..];
            let leaves = self.reexports.get(&m).map(Vec::as_slice).unwrap_or(&[]);
            for leaf in leaves.iter().filter(|l| !l.glob) {
                let name = leaf.alias.as_ref().or(leaf.path.last());
                if name == Some(seg) {
                    let target: Vec<String> = leaf.path.iter().chain(rest).cloned().collect();
                    return self.canonical(&target, hops + 1);
                }
            }
            let mut found = Vec::new();
            let mut guesses = Vec::new();
            for leaf in leaves.iter().filter(|l| l.glob) {
                let target: Vec<String> = leaf.path.iter().chain(&abs[k..]).cloned().collect();
                let (paths, ok) = self.canonical(&target, hops + 1);
                if ok { &mut found } else { &mut guesses }.extend(paths);
            }
            return if !found.is_empty() {
                (found, true)
            } else {
                guesses.push(abs.to_vec());
                (guesses, false)
            };
        }
        (vec![abs.to_vec()], true)
    }

    /// Every library path `file` depends on, each as `(line, as written, what it reaches)`:
    /// the written path from the library's root first, then where its re-exports lead.
    fn deps(&self, file: &str) -> Vec<(usize, String, Vec<Vec<String>>)> {
        let Some(facts) = self.files.get(file) else {
            panic!("{file} was not read");
        };
        facts
            .named
            .iter()
            .filter_map(|n| {
                let abs = n.abs.as_ref()?;
                let mut reach = vec![abs.clone()];
                reach.extend(self.canonical(abs, 0).0);
                Some((n.line, n.literal.clone(), reach))
            })
            .collect()
    }
}

/// What `file` (one of `sources`) reaches, as `a::b` strings from the library's root.
fn reached(sources: &[(&str, &str)], file: &str) -> BTreeSet<String> {
    let owned: Vec<(String, String)> = sources
        .iter()
        .map(|(f, t)| (f.to_string(), t.to_string()))
        .collect();
    let c = Crate::read(&owned);
    c.deps(file)
        .into_iter()
        .flat_map(|d| d.2)
        .map(|p| p.join("::"))
        .collect()
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

/// The workspace's crates and where their files sit in the one logical tree the rules speak of.
/// Every crate keeps the module paths of that tree (`crate::base::…`, `crate::drivers::…`
/// through its `pub use jobnet_base as base` and the like), so its files are read as if they
/// were at `src/<module>/…`. A crate's `lib.rs` is glue (re-exports of the crates below and
/// its `mod` lines) and is not read, except base's, which is `src/base/mod.rs`.
const CRATES: &[(&str, &str)] = &[
    ("crates/jobnet-base/src", "src/base"),
    ("crates/jobnet-model/src", "src"),
    ("crates/jobnet-drivers/src", "src"),
    ("crates/jobnet-engine/src", "src"),
    ("crates/jobnet-contract/src", "src"),
    ("crates/jobnet-node/src", "src"),
    ("crates/jobnet-daemon/src", "src"),
];

/// Where a crate's path lands in the logical tree: `jobnet_base::x` is `jobnet::base::x`, the
/// node crate's command line `jobnet::node::cli`, every other crate's `jobnet_y::m` is
/// `jobnet::m`.
fn logical_paths(text: &str) -> String {
    let mut t = text
        .replace("jobnet_node::cli", "jobnet::node::cli")
        .replace("jobnet_base::", "jobnet::base::")
        .replace("jobnet_base as", "jobnet::base as");
    for c in ["model", "drivers", "engine", "contract", "node", "daemon"] {
        t = t.replace(&format!("jobnet_{c}::"), "jobnet::");
    }
    t
}

/// A glue line that re-exports a lower crate's module under its own name
/// (`pub use jobnet_base as base;`, `pub use jobnet_engine::{apply, plan};`,
/// `pub use jobnet_model::drivers::{ops, profile};`) is, in the logical tree, that module
/// itself: `pub mod base;`.
fn glue_as_modules(text: &str) -> String {
    let mut out = String::new();
    for line in text.lines() {
        let l = line.trim();
        let rest = l
            .strip_prefix("pub use jobnet_")
            .and_then(|r| r.strip_suffix(';'));
        let Some(rest) = rest else {
            out += line;
            out.push('\n');
            continue;
        };
        let names: Vec<String> = if let Some((_, alias)) = rest.split_once(" as ") {
            vec![alias.to_string()]
        } else if let Some(group) = rest.split_once('{').map(|(_, g)| g.trim_end_matches('}')) {
            group
                .split(',')
                .map(|n| n.trim().to_string())
                .filter(|n| !n.is_empty() && n.chars().all(|c| c.is_ascii_lowercase() || c == '_'))
                .collect()
        } else {
            rest.rsplit("::")
                .next()
                .map(String::from)
                .into_iter()
                .collect()
        };
        // `pub use jobnet_engine::{Context, …}` (types, not modules) stays a re-export.
        let kept: Vec<String> = names
            .into_iter()
            .filter(|n| n.chars().all(|c| c.is_ascii_lowercase() || c == '_'))
            .collect();
        if kept.is_empty() {
            out += line;
        } else {
            out += &kept
                .iter()
                .map(|n| format!("pub mod {n};"))
                .collect::<Vec<_>>()
                .join(" ");
        }
        out.push('\n');
    }
    out
}

/// Every source file of the workspace under its logical name, text as the rules read it.
fn all_sources() -> Vec<(String, String)> {
    let mut files = Vec::new();
    sources(Path::new("src"), &mut files);
    for (dir, logical) in CRATES {
        let mut own = Vec::new();
        sources(Path::new(dir), &mut own);
        for (file, text) in own {
            let rel = file.strip_prefix(&format!("{dir}/")).unwrap();
            let name = match (rel, *logical) {
                ("lib.rs", "src/base") => "src/base/mod.rs".to_string(),
                ("lib.rs", _) => continue,
                // The node crate's binary and command line.
                ("main.rs", _) => "src/bin/jobnet-node.rs".to_string(),
                ("cli.rs", _) => "src/node/cli.rs".to_string(),
                _ => format!("{logical}/{rel}"),
            };
            // Inside base, `crate::` is base itself.
            let text = if *logical == "src/base" {
                text.replace("crate::", "crate::base::")
            } else {
                text
            };
            files.push((name, text));
        }
    }
    for (_, text) in files.iter_mut() {
        *text = logical_paths(&glue_as_modules(text));
    }
    files.sort();
    files
}

#[test]
fn every_file_of_the_workspace_is_read_once() {
    let files = all_sources();
    let mut seen = BTreeSet::new();
    for (f, _) in &files {
        assert!(seen.insert(f.clone()), "{f} comes from two places");
    }
    for m in [
        "base", "topology", "drivers", "plan", "ib", "state", "apply", "daemon", "node",
    ] {
        assert!(
            files
                .iter()
                .any(|(f, _)| f.starts_with(&format!("src/{m}/"))),
            "no sources of {m}"
        );
    }
    let lib = &files.iter().find(|(f, _)| f == "src/lib.rs").unwrap().1;
    for m in [
        "base", "topology", "drivers", "plan", "state", "apply", "daemon", "node", "context",
    ] {
        assert!(
            lib.contains(&format!("pub mod {m};")),
            "{m} missing in {lib}"
        );
    }
    let drivers = &files
        .iter()
        .find(|(f, _)| f == "src/drivers/mod.rs")
        .unwrap()
        .1;
    assert!(
        drivers.contains("pub mod ops; pub mod profile;"),
        "{drivers}"
    );
}

// ---------------------------------------------------------------------------------------------
// The scanner on snippets (each of these failed with the old line-and-substring scanner)
// ---------------------------------------------------------------------------------------------

#[test]
fn nested_use_groups_are_expanded() {
    let lib = "pub mod a; pub mod d; pub mod x;";
    let x = "use crate::{a::{b, c as cc, self}, d::*};\nuse crate::{a::b::{self as e}};";
    let r = reached(&[("src/lib.rs", lib), ("src/x.rs", x)], "src/x.rs");
    for want in ["a::b", "a::c", "a", "d"] {
        assert!(r.contains(want), "{want} missing: {r:?}");
    }
    // The old scanner split the outer group at its first `}` and read `c` as `crate::c`.
    assert!(!r.contains("c") && !r.contains("b"), "{r:?}");
}

#[test]
fn re_exports_count_as_the_module_they_come_from() {
    let lib =
        "pub mod context; pub mod drivers; pub mod jobs;\npub use context::{Context, Error as E};";
    let drivers = "pub mod profile;\npub mod cli;\npub use profile::*;\npub fn open() {}";
    let profile = "pub struct Profile;\npub(crate) use crate::drivers::cli::Session;";
    let jobs = "use crate::Context;\nfn f(e: crate::E, p: crate::drivers::Profile) { crate::drivers::Session::new(); }";
    let files = [
        ("src/lib.rs", lib),
        ("src/context.rs", "pub struct Context; pub enum Error {}"),
        ("src/drivers/mod.rs", drivers),
        ("src/drivers/profile.rs", profile),
        ("src/drivers/cli.rs", "pub struct Session;"),
        ("src/jobs/mod.rs", jobs),
    ];
    let r = reached(&files, "src/jobs/mod.rs");
    for want in [
        "context::Context",
        "context::Error",
        "drivers::profile::Profile",
        "drivers::cli::Session::new",
    ] {
        assert!(r.contains(want), "{want} missing: {r:?}");
    }
}

#[test]
fn paths_in_code_count_wherever_they_are() {
    let lib = "pub mod apply; pub mod jobs;";
    let jobs_mod = "pub mod flow; pub mod network;";
    let flow = "use crate::apply;\n\
                fn f() { let n = super::network::JobNetwork {}; apply::up(&env); }\n\
                #[cfg(test)]\nmod tests {\n    use super::*;\n    fn g() { super::super::network::read(); self::h(); }\n}";
    let files = [
        ("src/lib.rs", lib),
        ("src/apply/mod.rs", "pub fn up() {}"),
        ("src/jobs/mod.rs", jobs_mod),
        ("src/jobs/flow.rs", flow),
        (
            "src/jobs/network.rs",
            "pub struct JobNetwork {} pub fn read() {}",
        ),
    ];
    let r = reached(&files, "src/jobs/flow.rs");
    for want in [
        "apply::up",
        "jobs::network::JobNetwork",
        "jobs::network::read",
        "jobs::flow::tests::h",
        "jobs::flow",
    ] {
        assert!(r.contains(want), "{want} missing: {r:?}");
    }
    // `super` inside `mod tests` is the file's module, not its parent.
    assert!(!r.contains("jobs"), "{r:?}");
    // The binary reaches the library as `jobnet::`, and through what it imported from it.
    let cli = "use jobnet::apply;\nuse crate::output::Fail;\nfn f() { apply::up(&env); jobnet::apply::dry_run(); }";
    let mut with_cli = files.to_vec();
    with_cli.push(("src/cli/job.rs", cli));
    let r = reached(&with_cli, "src/cli/job.rs");
    assert!(
        r.contains("apply::up") && r.contains("apply::dry_run"),
        "{r:?}"
    );
    assert!(!r.iter().any(|p| p.starts_with("output")), "{r:?}");
}

#[test]
fn comments_and_strings_are_not_code() {
    let lib = "pub mod state; pub mod plan;";
    let plan = "use crate::plan::x; // crate::state::Store is not reached\n\
                /* crate::state::a /* nested crate::state::b */ crate::state::c */\n\
                const S: &str = \"crate::state::d\"; const R: &str = r#\"crate::state::\"e\"#;\n\
                const C: char = '\"'; fn f<'a>(x: &'a str) -> &'a str { crate::plan::y(x) } // crate::state";
    let r = reached(
        &[("src/lib.rs", lib), ("src/plan/mod.rs", plan)],
        "src/plan/mod.rs",
    );
    assert!(!r.iter().any(|p| p.starts_with("state")), "{r:?}");
    assert!(r.contains("plan::x") && r.contains("plan::y"), "{r:?}");
}

// ---------------------------------------------------------------------------------------------
// The rules
// ---------------------------------------------------------------------------------------------

/// One rule of docs/architecture.md: files under `folder` may reach only paths under `only`
/// (when it is not empty, the folder's own paths always allowed) and nothing under `not`.
struct Rule {
    folder: &'static [&'static str],
    only: &'static [&'static str],
    not: &'static [&'static str],
}

/// The executor's entry points: callers go through the facade (`Context`) instead.
const EXECUTOR: &[&str] = &[
    "apply::up",
    "apply::down",
    "apply::recover",
    "apply::dry_run",
    "apply::Env",
];

const RULES: &[Rule] = &[
    Rule {
        folder: &["src/base"],
        only: &["base"],
        not: &[],
    },
    // The topology model knows no transport, no OpenSM reload mechanics, no plan.
    Rule {
        folder: &["src/topology"],
        only: &[],
        not: &[
            "plan",
            "drivers::transport",
            "drivers::cli",
            "ib",
            "state",
            "apply",
            "context",
            "jobs",
            "node",
        ],
    },
    // The planner is pure: no transport, state or executor.
    Rule {
        folder: &["src/plan"],
        only: &[],
        not: &[
            "drivers::transport",
            "drivers::cli",
            "ib::opensm",
            "state",
            "apply",
            "context",
            "jobs",
            "node",
        ],
    },
    // The state keeps data (typed operations), not transport targets or dialects.
    Rule {
        folder: &["src/state"],
        only: &[],
        not: &[
            "drivers::transport",
            "drivers::cli",
            "drivers::profile",
            "plan",
            "ib",
            "apply",
            "context",
            "jobs",
            "node",
        ],
    },
    // Drivers carry out typed operations; they do not plan.
    Rule {
        folder: &["src/drivers"],
        only: &[],
        not: &["plan", "state", "apply", "ib", "context", "jobs", "node"],
    },
    Rule {
        folder: &["src/ib"],
        only: &[],
        not: &["state", "apply", "plan", "context", "jobs", "node"],
    },
    // The executor is below the facade and its callers.
    Rule {
        folder: &["src/apply"],
        only: &[],
        not: &["context", "jobs", "node"],
    },
    Rule {
        folder: &["src/context.rs"],
        only: &[],
        not: &["jobs", "node"],
    },
    // The first caller above the facade: batch-system jobs and their flows use `Context`, the
    // request types it takes (plan's `Choice`, `JobRequest`) and the reports it gives (apply's),
    // never the executor's entry points, the state store, drivers, ib or the node side.
    Rule {
        folder: &["src/jobs"],
        only: &["base", "context", "plan", "apply"],
        not: EXECUTOR,
    },
    // The node side reads the controller's network.json (jobs/network.rs, and the addresses in
    // it); it reaches no state store, executor, planner, driver, facade or site policy.
    Rule {
        folder: &["src/node"],
        only: &["base", "jobs::network", "jobs::addresses"],
        not: &[],
    },
    // The binary wires no SSH, state store or executor itself: it uses the facade. The offline
    // file tools call their module's pure functions (`ib check`: ib::partitions, `topology
    // import-ib`: ib::import, `topology generate`/`validate`: topology); the hooks and the node
    // commands are jobs/ and node/.
    Rule {
        folder: &["src/cli", "src/main.rs"],
        only: &[
            "context",
            "base",
            "apply",
            "plan",
            "topology",
            "ib::partitions",
            "ib::import",
            "jobs",
            "node",
        ],
        not: EXECUTOR,
    },
    // The nodes' own binary is the node side and nothing else.
    Rule {
        folder: &["src/bin/jobnet-node.rs"],
        only: &["base", "node", "jobs::network", "jobs::addresses"],
        not: &[],
    },
    // jobnetd lends device sessions: it reaches the transports, profiles and the signal flag,
    // never the state, the planner, the executor, the facade or the callers above it (jobs stay
    // in their own processes).
    Rule {
        folder: &["src/daemon", "src/bin/jobnetd.rs"],
        only: &["base", "drivers", "daemon"],
        not: &["state", "plan", "context", "jobs", "node", "ib"],
    },
];

/// Breaks of the rules above that the code has today, each with its fix (see the report of
/// issue 14). The test fails on any other break, and on an entry here that no longer happens,
/// so this list only shrinks.
const KNOWN: &[(&str, &str)] = &[];

fn under(path: &[String], prefix: &str) -> bool {
    let p: Vec<&str> = prefix.split("::").collect();
    path.len() >= p.len() && path.iter().zip(&p).all(|(a, b)| a == b)
}

/// Every break of `rules` in `files`, as `(file, line, path as written, what it reaches)`.
fn breaks(c: &Crate, rules: &[Rule]) -> Vec<(String, usize, String, String)> {
    let mut bad = Vec::new();
    for rule in rules {
        let files: Vec<&String> = c
            .files
            .keys()
            .filter(|f| {
                rule.folder
                    .iter()
                    .any(|d| f.as_str() == *d || f.starts_with(&format!("{d}/")))
            })
            .collect();
        for file in files {
            let (kind, own) = module_of(file);
            for (line, literal, reach) in c.deps(file) {
                let literal = if kind == Kind::Lib && !literal.starts_with("crate::") {
                    format!("crate::{}", reach[0].join("::"))
                } else {
                    literal
                };
                // reach[0] is the path as written (from the root), the rest where it leads: `not`
                // holds for both (a re-export hides nothing), `only` for where it leads.
                for (k, r) in reach.iter().enumerate() {
                    // The test kit has its own rule below; a file's own folder is always fine.
                    if r.is_empty()
                        || under(r, "testkit")
                        || (kind == Kind::Lib && !own.is_empty() && r[0] == own[0])
                    {
                        continue;
                    }
                    let outside =
                        k > 0 && !rule.only.is_empty() && !rule.only.iter().any(|o| under(r, o));
                    let denied = rule.not.iter().any(|n| under(r, n));
                    if outside || denied {
                        bad.push((file.clone(), line, literal.clone(), r.join("::")));
                        break;
                    }
                }
            }
        }
    }
    bad
}

#[test]
fn every_stage_reaches_only_what_its_rule_allows() {
    let c = Crate::read(&all_sources());
    for rule in RULES {
        let present = rule.folder.iter().all(|d| {
            c.files
                .keys()
                .any(|f| f == d || f.starts_with(&format!("{d}/")))
        });
        assert!(present, "{:?} has no sources", rule.folder);
    }
    let found = breaks(&c, RULES);
    let known = |(kf, kr): &(&str, &str), (f, _, _, r): &(String, usize, String, String)| {
        kf == f && under(&r.split("::").map(String::from).collect::<Vec<_>>(), kr)
    };
    let new: Vec<String> = found
        .iter()
        .filter(|b| !KNOWN.iter().any(|k| known(k, b)))
        .map(|(f, l, lit, r)| format!("{f}:{l}: {lit} (reaches {r})"))
        .collect();
    assert!(new.is_empty(), "layer rules broken:\n{}", new.join("\n"));
    let stale: Vec<_> = KNOWN
        .iter()
        .filter(|k| !found.iter().any(|b| known(k, b)))
        .collect();
    assert!(stale.is_empty(), "fixed, remove from KNOWN: {stale:?}");
}

#[test]
fn the_rules_catch_what_they_are_for() {
    // The rules themselves, on snippets: the facade's re-export does not hide the executor,
    // and the node side may not reach the site policy.
    let lib = "pub mod apply; pub mod context; pub mod jobs; pub mod node; pub mod state; pub mod base;\npub use context::Context;\npub use apply::*;";
    let files: Vec<(String, String)> = [
        ("src/lib.rs", lib),
        ("src/apply/mod.rs", "pub fn up() {} pub struct Silent;"),
        ("src/context.rs", "pub struct Context;"),
        ("src/base/mod.rs", ""),
        ("src/state/mod.rs", "pub enum JobState {}"),
        ("src/jobs/mod.rs", "pub mod site; pub mod network;"),
        ("src/jobs/site.rs", "pub const DIR: &str = \"\";"),
        ("src/jobs/network.rs", "pub struct JobNetwork;"),
        ("src/node/mod.rs", "use crate::jobs::{network::JobNetwork, site::DIR};"),
        ("src/cli/mod.rs", "use jobnet::{Context, apply as a, up as go};\nfn f() { a::up(); go(); jobnet::Silent; }"),
        ("src/main.rs", "mod cli;"),
    ]
    .iter()
    .map(|(f, t)| (f.to_string(), t.to_string()))
    .collect();
    let c = Crate::read(&files);
    let got: Vec<String> = breaks(&c, RULES)
        .into_iter()
        .map(|b| format!("{}: {}", b.0, b.3))
        .collect();
    // `up` imported under another name, and called through a renamed module.
    let want = [
        "src/node/mod.rs: jobs::site::DIR",
        "src/cli/mod.rs: apply::up",
        "src/cli/mod.rs: apply::up",
    ];
    assert_eq!(got, want.map(String::from).to_vec());
}

#[test]
fn nothing_shipped_reaches_the_test_kit() {
    let files = all_sources();
    let c = Crate::read(&files);
    for (file, text) in &files {
        if file.starts_with("src/testkit") || file.starts_with("src/bin/jobnet-switch-sim") {
            continue;
        }
        let lines: Vec<&str> = text.lines().collect();
        for (line, literal, reach) in c.deps(file) {
            if !reach.iter().any(|r| under(r, "testkit")) {
                continue;
            }
            // Only inside an item compiled for the test-kit feature alone.
            let gated = lines[..line - 1]
                .iter()
                .rev()
                .take(4)
                .any(|p| p.trim() == "#[cfg(feature = \"testkit\")]");
            assert!(gated, "{file}:{line}: reaches the test kit: {literal}");
        }
    }
    let lib = std::fs::read_to_string("src/lib.rs").unwrap();
    assert!(lib.contains("#[cfg(feature = \"testkit\")]\npub mod testkit;"));
    let cargo = std::fs::read_to_string("Cargo.toml").unwrap();
    assert!(cargo.contains("required-features = [\"testkit\"]"));
}

// ---------------------------------------------------------------------------------------------
// The crates (the compiler holds these; this test holds the manifests to the drawing)
// ---------------------------------------------------------------------------------------------

/// Each package of Cargo.lock and the packages it depends on (names only; the lock also lists
/// dev-dependencies, so a crate whose tests use it appears under its own name).
fn lock_graph() -> BTreeMap<String, Vec<String>> {
    let lock = std::fs::read_to_string("Cargo.lock").unwrap();
    let mut graph = BTreeMap::new();
    for pkg in lock.split("[[package]]").skip(1) {
        let name = pkg
            .lines()
            .find_map(|l| l.strip_prefix("name = "))
            .unwrap()
            .trim_matches('"')
            .to_string();
        let deps = pkg
            .split_once("dependencies = [")
            .map(|(_, d)| d.split_once(']').unwrap().0)
            .unwrap_or("")
            .split(',')
            .filter_map(|d| d.trim().trim_matches('"').split(' ').next())
            .filter(|d| !d.is_empty())
            .map(String::from)
            .collect();
        graph.insert(name, deps);
    }
    graph
}

/// Every package `name` builds on (itself excluded).
fn closure(graph: &BTreeMap<String, Vec<String>>, name: &str) -> BTreeSet<String> {
    let mut seen = BTreeSet::new();
    let mut todo = graph[name].clone();
    while let Some(d) = todo.pop() {
        if seen.insert(d.clone()) {
            todo.extend(graph.get(&d).cloned().unwrap_or_default());
        }
    }
    seen
}

#[test]
fn the_crates_depend_as_docs_architecture_draws() {
    let g = lock_graph();
    // Which of the workspace's crates each may use (docs/architecture.md, "The crates").
    let allowed: &[(&str, &[&str])] = &[
        ("jobnet-base", &[]),
        ("jobnet-model", &["jobnet-base"]),
        ("jobnet-drivers", &["jobnet-base", "jobnet-model"]),
        (
            "jobnet-engine",
            &["jobnet-base", "jobnet-model", "jobnet-drivers"],
        ),
        ("jobnet-contract", &["jobnet-base"]),
        ("jobnet-node", &["jobnet-base", "jobnet-contract"]),
        (
            "jobnet-daemon",
            &["jobnet-base", "jobnet-model", "jobnet-drivers"],
        ),
    ];
    for (krate, may) in allowed {
        let ours: BTreeSet<String> = closure(&g, krate)
            .into_iter()
            .filter(|d| d.starts_with("jobnet") && d != krate)
            .collect();
        let may: BTreeSet<String> = may.iter().map(|s| s.to_string()).collect();
        assert_eq!(
            ours, may,
            "{krate} builds on other jobnet crates than drawn"
        );
    }
    // What each must not carry, however deep.
    let never: &[(&str, &[&str])] = &[
        // A node needs neither SSH nor SQLite nor the planner's graph.
        (
            "jobnet-node",
            &["russh", "rusqlite", "libsqlite3-sys", "petgraph", "hyper"],
        ),
        // jobnetd holds no job state.
        ("jobnet-daemon", &["rusqlite", "libsqlite3-sys"]),
        // The model reads files; it opens no session and no database.
        (
            "jobnet-model",
            &["russh", "rusqlite", "libsqlite3-sys", "hyper"],
        ),
        (
            "jobnet-contract",
            &["russh", "rusqlite", "libsqlite3-sys", "hyper", "petgraph"],
        ),
        (
            "jobnet-base",
            &[
                "russh",
                "rusqlite",
                "libsqlite3-sys",
                "hyper",
                "petgraph",
                "regex",
            ],
        ),
    ];
    for (krate, banned) in never {
        let all = closure(&g, krate);
        for b in *banned {
            assert!(!all.contains(*b), "{krate} carries {b}");
        }
    }
    // And the lock really is the graph (a crate that drops every dependency would pass above).
    assert!(closure(&g, "jobnet-engine").contains("rusqlite"));
    assert!(closure(&g, "jobnet-drivers").contains("russh"));
}
