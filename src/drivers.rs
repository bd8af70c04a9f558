//! Vendor dialects as data. A profile in `switch-drivers/NAME.yaml` says how each planned
//! operation is written on that platform's CLI (and how it is undone), which VLANs the platform
//! reserves for itself, and where the commands come from in the vendor's manual.
//!
//! The shipped profiles are compiled into the binary; a site can add or override profiles with a
//! directory of its own (`--drivers-dir` / `JOBNET_DRIVERS_DIR`). Templates only substitute
//! values that were validated as typed values or strict words, so rendering cannot inject text.

use crate::diag::{Diagnostics, Loc};
use crate::types::{RangeSet, VlanId};
use crate::yaml::{self, Kind, Node};
use std::collections::BTreeMap;
use std::path::Path;

/// What kind of device a profile drives.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DeviceKind {
    Ethernet,
    Gateway,
}

/// The operations a profile must be able to write, with the placeholders each may use.
pub const OPERATIONS: &[(&str, DeviceKind, &[&str])] = &[
    ("create_vlan", DeviceKind::Ethernet, &["vlan", "name"]),
    ("delete_vlan", DeviceKind::Ethernet, &["vlan", "name"]),
    ("trunk_add", DeviceKind::Ethernet, &["port", "vlan", "name"]),
    (
        "trunk_remove",
        DeviceKind::Ethernet,
        &["port", "vlan", "name"],
    ),
    (
        "tagged_add",
        DeviceKind::Ethernet,
        &["port", "vlan", "name"],
    ),
    (
        "tagged_remove",
        DeviceKind::Ethernet,
        &["port", "vlan", "name"],
    ),
    (
        "access_set",
        DeviceKind::Ethernet,
        &["port", "vlan", "name"],
    ),
    (
        "access_restore",
        DeviceKind::Ethernet,
        &["port", "vlan", "previous"],
    ),
    ("access_clear", DeviceKind::Ethernet, &["port", "vlan"]),
    (
        "proxy_arp_create",
        DeviceKind::Gateway,
        &["vlan", "pkey", "pkey_full", "name"],
    ),
    (
        "proxy_arp_delete",
        DeviceKind::Gateway,
        &["vlan", "pkey", "pkey_full", "name"],
    ),
];

/// How to read one piece of device state: the show command, a regex whose first group is the
/// value in its output, and the text a simulator answers with (`{vlan}`, `{name}`).
#[derive(Clone, Debug)]
pub struct Read {
    pub command: String,
    pub pattern: regex::Regex,
    /// One line per item (VLAN list) or the single answer (access VLAN).
    pub answer: String,
    /// The answer when there is nothing (no access VLAN).
    pub none: String,
    /// The platform's default value (access VLAN 1 on Cisco/Arista): reading it means "nothing
    /// configured", so undo clears the setting instead of writing the default explicitly.
    pub default: Option<u64>,
}

impl Read {
    /// Every value of the first capture group in `output`, except the platform default.
    pub fn values(&self, output: &str) -> Vec<u64> {
        self.pattern
            .captures_iter(output)
            .filter_map(|c| c.get(1).and_then(|m| m.as_str().parse().ok()))
            .filter(|v| Some(*v) != self.default)
            .collect()
    }

    pub fn command_for(&self, port: Option<&str>) -> String {
        fill(
            &self.command,
            &Vars {
                port,
                ..Vars::default()
            },
        )
    }
}

/// How the SSH transport talks to the device.
#[derive(Clone, Debug)]
pub struct SshDialect {
    /// `shell`: one interactive session with a PTY, lines typed at the prompt; `exec`: one SSH
    /// exec request per line (Open vSwitch, Cumulus NVUE run from a Unix shell).
    pub exec: bool,
    /// The CLI prompt, matched against the end of the output.
    pub prompt: regex::Regex,
    /// A pager prompt (`--More--`) answered with a space.
    pub pager: regex::Regex,
}

impl Default for SshDialect {
    fn default() -> Self {
        SshDialect {
            exec: false,
            prompt: regex::Regex::new(r"[>#$%]\s*$").expect("static regex"),
            pager: regex::Regex::new(r"(--More--|<--- More --->|-- More --)\s*$")
                .expect("static regex"),
        }
    }
}

/// One parsed dialect profile.
#[derive(Clone, Debug)]
pub struct Profile {
    pub name: String,
    pub kind: DeviceKind,
    /// Vendor manual section the commands were taken from.
    pub source: String,
    /// False when the templates have not yet been checked against the manual; plans say so.
    pub verified: bool,
    /// VLANs the platform keeps for itself (e.g. 1002-1005 on Cisco IOS).
    pub reserved_vlans: RangeSet,
    /// Longest VLAN name the platform accepts.
    pub vlan_name_max: usize,
    /// The command that enters privileged mode (`enable`), sent first after login over SSH; a
    /// password prompt is answered with the credentials entry's `enable_password`.
    pub enable: Option<String>,
    /// Lines sent right after login (disable the pager); reads follow them.
    pub setup: Vec<String>,
    /// Lines that enter configuration mode, sent before the operations.
    pub begin: Vec<String>,
    /// Lines sent after the operations (leave configuration mode, commit).
    pub end: Vec<String>,
    /// Optional lines that persist the configuration; sites choose whether to send them.
    pub save: Vec<String>,
    pub ops: BTreeMap<String, Vec<String>>,
    /// Existing VLANs on the device (Ethernet profiles).
    pub read_vlans: Option<Read>,
    /// A port's access VLAN (Ethernet profiles).
    pub read_access_vlan: Option<Read>,
    /// Output that means the device refused a command (e.g. `% Invalid input`), as regexes.
    pub errors: Vec<regex::Regex>,
    pub ssh: SshDialect,
}

/// Values a template may refer to.
#[derive(Clone, Debug, Default)]
pub struct Vars<'a> {
    pub vlan: Option<VlanId>,
    pub name: Option<&'a str>,
    pub port: Option<&'a str>,
    pub previous: Option<VlanId>,
    pub pkey: Option<String>,
    pub pkey_full: Option<String>,
}

impl Profile {
    /// Renders operation `op` with `vars`. Panics if the profile lacks the operation or uses a
    /// placeholder that `vars` lacks: both are excluded when the profile is loaded and by the
    /// planner, so reaching them is a bug.
    pub fn render(&self, op: &str, vars: &Vars) -> Vec<String> {
        let templates = self
            .ops
            .get(op)
            .unwrap_or_else(|| panic!("profile {} has no operation {op}", self.name));
        templates.iter().map(|t| fill(t, vars)).collect()
    }
}

fn fill(template: &str, vars: &Vars) -> String {
    let mut out = String::with_capacity(template.len() + 16);
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        let close = rest[open..].find('}').expect("checked at load") + open;
        let key = &rest[open + 1..close];
        let value = match key {
            "vlan" => vars.vlan.map(|v| v.to_string()),
            "previous" => vars.previous.map(|v| v.to_string()),
            "name" => vars.name.map(str::to_string),
            "port" => vars.port.map(str::to_string),
            "pkey" => vars.pkey.clone(),
            "pkey_full" => vars.pkey_full.clone(),
            _ => None,
        };
        out.push_str(&value.unwrap_or_else(|| panic!("template `{template}` needs {{{key}}}")));
        rest = &rest[close + 1..];
    }
    out.push_str(rest);
    out
}

/// The profiles available to a run.
#[derive(Clone, Debug, Default)]
pub struct DriverSet {
    profiles: BTreeMap<String, Profile>,
}

macro_rules! builtin {
    ($($name:literal),* $(,)?) => {
        &[$(($name, include_str!(concat!("../switch-drivers/", $name, ".yaml")))),*]
    };
}

/// Profiles shipped in switch-drivers/, compiled in.
pub const BUILTIN: &[(&str, &str)] = builtin!(
    "arista-eos",
    "cisco-ios",
    "cisco-nxos",
    "cumulus-nvue",
    "dell-os10",
    "junos",
    "mellanox-gateway",
    "mellanox-onyx",
    "openvswitch",
);

/// A profile file that could not be used, with every problem found in it.
#[derive(Debug, thiserror::Error)]
pub enum DriverError {
    #[error(
        "cannot read driver directory {path}: {source}; check --drivers-dir / JOBNET_DRIVERS_DIR"
    )]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("invalid driver profile(s):\n{}", .0.iter().map(|d| d.to_string()).collect::<Vec<_>>().join("\n"))]
    Invalid(Vec<crate::diag::Diagnostic>),
}

impl DriverSet {
    /// The shipped profiles.
    pub fn builtin() -> Self {
        let mut set = DriverSet::default();
        for (name, text) in BUILTIN {
            let file = format!("switch-drivers/{name}.yaml");
            let p = parse_profile(text, &file)
                .unwrap_or_else(|e| panic!("shipped profile broken: {e}"));
            set.profiles.insert(p.name.clone(), p);
        }
        set
    }

    /// The shipped profiles plus every `*.yaml` in `dir` (a file with a shipped name replaces it).
    pub fn with_dir(dir: &Path) -> Result<Self, DriverError> {
        let mut set = Self::builtin();
        let io = |source| DriverError::Io {
            path: dir.display().to_string(),
            source,
        };
        let mut paths: Vec<_> = std::fs::read_dir(dir)
            .map_err(io)?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "yaml"))
            .collect();
        paths.sort();
        let mut errors = Vec::new();
        for path in paths {
            let text = std::fs::read_to_string(&path).map_err(io)?;
            match parse_profile(&text, &path.display().to_string()) {
                Ok(p) => {
                    set.profiles.insert(p.name.clone(), p);
                }
                Err(DriverError::Invalid(mut d)) => errors.append(&mut d),
                Err(e) => return Err(e),
            }
        }
        if errors.is_empty() {
            Ok(set)
        } else {
            Err(DriverError::Invalid(errors))
        }
    }

    /// Adds a profile, replacing one of the same name.
    pub fn insert(&mut self, p: Profile) {
        self.profiles.insert(p.name.clone(), p);
    }

    pub fn get(&self, name: &str) -> Option<&Profile> {
        self.profiles.get(name)
    }

    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.profiles.keys().map(String::as_str)
    }
}

const PROFILE_KEYS: &[&str] = &[
    "name",
    "kind",
    "source",
    "verified",
    "reserved_vlans",
    "vlan_name_max",
    "session",
    "ops",
    "read",
    "errors",
    "ssh",
];

/// Parses and checks one profile: every operation of its kind present, only known placeholders,
/// balanced braces.
pub fn parse_profile(text: &str, file: &str) -> Result<Profile, DriverError> {
    let mut d = Diagnostics::new(file);
    let root = match yaml::parse(text) {
        Ok(Some(r)) => r,
        Ok(None) => {
            d.error(
                Loc { line: 1, col: 1 },
                "empty profile",
                "see docs/drivers.md",
            );
            return Err(DriverError::Invalid(d.sorted()));
        }
        Err(e) => {
            d.error(e.loc, e.message, "fix the YAML");
            return Err(DriverError::Invalid(d.sorted()));
        }
    };
    let profile = read_profile(&mut d, &root);
    match profile {
        Some(p) if !d.has_errors() => Ok(p),
        _ => Err(DriverError::Invalid(d.sorted())),
    }
}

fn map_pairs<'a>(
    d: &mut Diagnostics,
    node: &'a Node,
    what: &str,
    allowed: &[&str],
) -> Option<&'a [(Node, Node)]> {
    let Kind::Map(pairs) = &node.kind else {
        d.error(
            node.loc,
            format!("{what} must be a mapping, found {}", node.kind_name()),
            "see docs/drivers.md",
        );
        return None;
    };
    for (k, _) in pairs {
        let key = k.as_str().unwrap_or_default();
        if !allowed.is_empty() && !allowed.contains(&key) {
            let hint = crate::diag::suggestion(key, allowed.iter().copied());
            d.error(
                k.loc,
                format!("unknown key `{key}` in {what}"),
                if hint.is_empty() {
                    format!("allowed: {}", allowed.join(", "))
                } else {
                    hint
                },
            );
        }
    }
    Some(pairs)
}

fn get<'a>(pairs: &'a [(Node, Node)], key: &str) -> Option<&'a Node> {
    pairs
        .iter()
        .find(|(k, _)| k.as_str() == Some(key))
        .map(|(_, v)| v)
}

/// A list of single-line strings, with no check of their content.
fn plain_lines(d: &mut Diagnostics, node: &Node, what: &str) -> Vec<(String, Loc)> {
    let items: Vec<&Node> = match &node.kind {
        Kind::Seq(items) => items.iter().collect(),
        Kind::Scalar { .. } if node.is_null() => Vec::new(),
        Kind::Scalar { .. } => vec![node],
        _ => {
            d.error(
                node.loc,
                format!("{what} must be a list of lines"),
                "write `- line` items",
            );
            return Vec::new();
        }
    };
    let mut out = Vec::new();
    for item in items {
        let Some(t) = item.as_str() else {
            d.error(item.loc, format!("{what}: a line must be text"), "quote it");
            continue;
        };
        if t.contains('\n') || t.contains('\r') {
            d.error(
                item.loc,
                format!("{what}: a line contains a line break"),
                "write one item per line",
            );
            continue;
        }
        out.push((t.to_string(), item.loc));
    }
    out
}

/// Command lines whose `{placeholders}` must be among `placeholders`.
fn lines(d: &mut Diagnostics, node: &Node, what: &str, placeholders: &[&str]) -> Vec<String> {
    let mut out = Vec::new();
    for (t, loc) in plain_lines(d, node, what) {
        let t = t.as_str();
        let mut rest = t;
        while let Some(open) = rest.find(['{', '}']) {
            if &rest[open..open + 1] == "}" {
                d.error(
                    loc,
                    format!("{what}: `}}` without `{{` in `{t}`"),
                    "balance the braces",
                );
                break;
            }
            let Some(close) = rest[open..].find('}') else {
                d.error(
                    loc,
                    format!("{what}: `{{` without `}}` in `{t}`"),
                    "balance the braces",
                );
                break;
            };
            let key = &rest[open + 1..open + close];
            if !placeholders.contains(&key) {
                d.error(
                    loc,
                    format!("{what}: unknown placeholder `{{{key}}}`"),
                    format!(
                        "this operation may use {}",
                        placeholders
                            .iter()
                            .map(|p| format!("{{{p}}}"))
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                );
            }
            rest = &rest[open + close + 1..];
        }
        out.push(t.to_string());
    }
    out
}

fn read_profile(d: &mut Diagnostics, root: &Node) -> Option<Profile> {
    let pairs = map_pairs(d, root, "profile", PROFILE_KEYS)?;
    let text = |d: &mut Diagnostics, key: &str| -> Option<String> {
        match get(pairs, key).and_then(Node::as_str) {
            Some(s) if !s.is_empty() => Some(s.to_string()),
            _ => {
                d.error(
                    root.loc,
                    format!("profile needs `{key}`"),
                    "see docs/drivers.md",
                );
                None
            }
        }
    };
    let name = text(d, "name")?;
    let source = text(d, "source").unwrap_or_default();
    let kind = match text(d, "kind").as_deref() {
        Some("ethernet") => DeviceKind::Ethernet,
        Some("gateway") => DeviceKind::Gateway,
        other => {
            d.error(
                root.loc,
                format!("profile kind `{}` is unknown", other.unwrap_or("")),
                "write `kind: ethernet` or `kind: gateway`",
            );
            return None;
        }
    };
    let verified = match get(pairs, "verified").and_then(Node::as_str) {
        None | Some("true") => true,
        Some("false") => false,
        Some(o) => {
            d.error(
                root.loc,
                format!("`verified: {o}` is not true or false"),
                "write true or false",
            );
            true
        }
    };
    let reserved_vlans = match get(pairs, "reserved_vlans") {
        Some(n) => match n
            .as_str()
            .map(|s| RangeSet::parse(s, VlanId::MIN, VlanId::MAX, "VLAN"))
        {
            Some(Ok(r)) => r,
            Some(Err(e)) => {
                d.error(n.loc, e.0, "write ranges like \"1002-1005\"");
                RangeSet::default()
            }
            None => RangeSet::default(),
        },
        None => RangeSet::default(),
    };
    let vlan_name_max = get(pairs, "vlan_name_max")
        .and_then(Node::as_str)
        .and_then(|s| s.parse().ok())
        .unwrap_or(32);
    let (mut setup, mut begin, mut end, mut save) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    if let Some(s) = get(pairs, "session") {
        if let Some(sp) = map_pairs(
            d,
            s,
            "session",
            &["enable", "setup", "begin", "end", "save"],
        ) {
            for (key, target) in [
                ("setup", &mut setup),
                ("begin", &mut begin),
                ("end", &mut end),
                ("save", &mut save),
            ] {
                if let Some(n) = get(sp, key) {
                    *target = lines(d, n, &format!("session.{key}"), &[]);
                }
            }
        }
    }
    let mut ops = BTreeMap::new();
    let allowed: Vec<&str> = OPERATIONS
        .iter()
        .filter(|o| o.1 == kind)
        .map(|o| o.0)
        .collect();
    match get(pairs, "ops") {
        Some(n) => {
            if let Some(op_pairs) = map_pairs(d, n, "ops", &allowed) {
                for (op, _, placeholders) in OPERATIONS.iter().filter(|o| o.1 == kind) {
                    match get(op_pairs, op) {
                        Some(v) => {
                            ops.insert(op.to_string(), lines(d, v, &format!("ops.{op}"), placeholders));
                        }
                        None => d.error(n.loc, format!("ops lacks `{op}`"), "every operation of the profile's kind must be given (an empty list `[]` is allowed)"),
                    }
                }
            }
        }
        None => d.error(root.loc, "profile needs `ops`", "see docs/drivers.md"),
    }
    let (mut read_vlans, mut read_access_vlan) = (None, None);
    if let Some(r) = get(pairs, "read") {
        if let Some(rp) = map_pairs(d, r, "read", &["vlans", "access_vlan"]) {
            read_vlans = get(rp, "vlans").and_then(|n| read_spec(d, n, "read.vlans", &[]));
            read_access_vlan =
                get(rp, "access_vlan").and_then(|n| read_spec(d, n, "read.access_vlan", &["port"]));
        }
    }
    if kind == DeviceKind::Ethernet && (read_vlans.is_none() || read_access_vlan.is_none()) {
        d.error(
            root.loc,
            "an Ethernet profile needs `read.vlans` and `read.access_vlan`",
            "see docs/drivers.md",
        );
    }
    let mut errors = Vec::new();
    if let Some(e) = get(pairs, "errors") {
        for (text, loc) in plain_lines(d, e, "errors") {
            match regex::Regex::new(&text) {
                Ok(r) => errors.push(r),
                Err(err) => d.error(
                    loc,
                    format!("errors: `{text}` is not a regex: {err}"),
                    "fix the pattern",
                ),
            }
        }
    }
    let enable = get(pairs, "session")
        .and_then(|s| match &s.kind {
            Kind::Map(sp) => get(sp, "enable"),
            _ => None,
        })
        .and_then(|n| lines(d, n, "session.enable", &[]).pop());
    let mut ssh = SshDialect::default();
    if let Some(n) = get(pairs, "ssh") {
        if let Some(sp) = map_pairs(d, n, "ssh", &["mode", "prompt", "pager"]) {
            match get(sp, "mode").and_then(Node::as_str) {
                None | Some("shell") => {}
                Some("exec") => ssh.exec = true,
                Some(other) => d.error(
                    n.loc,
                    format!("ssh.mode `{other}` is unknown"),
                    "write `shell` or `exec`",
                ),
            }
            for (key, target) in [("prompt", &mut ssh.prompt), ("pager", &mut ssh.pager)] {
                if let Some(v) = get(sp, key) {
                    match v.as_str().map(regex::Regex::new) {
                        Some(Ok(r)) => *target = r,
                        _ => d.error(
                            v.loc,
                            format!("ssh.{key} is not a regex"),
                            "fix the pattern",
                        ),
                    }
                }
            }
        }
    }
    Some(Profile {
        name,
        kind,
        source,
        verified,
        reserved_vlans,
        vlan_name_max,
        enable,
        setup,
        begin,
        end,
        save,
        ops,
        read_vlans,
        read_access_vlan,
        errors,
        ssh,
    })
}

fn read_spec(d: &mut Diagnostics, node: &Node, what: &str, placeholders: &[&str]) -> Option<Read> {
    let pairs = map_pairs(
        d,
        node,
        what,
        &["command", "pattern", "answer", "none", "default"],
    )?;
    let text = |d: &mut Diagnostics, key: &str, holders: &[&str]| -> Option<String> {
        match get(pairs, key) {
            Some(n) => lines(d, n, &format!("{what}.{key}"), holders).pop(),
            None => {
                d.error(
                    node.loc,
                    format!("{what} lacks `{key}`"),
                    "see docs/drivers.md",
                );
                None
            }
        }
    };
    let command = text(d, "command", placeholders)?;
    let pattern_text = get(pairs, "pattern")
        .and_then(|n| plain_lines(d, n, &format!("{what}.pattern")).pop())
        .map(|(t, _)| t);
    if pattern_text.is_none() {
        d.error(
            node.loc,
            format!("{what} lacks `pattern`"),
            "see docs/drivers.md",
        );
    }
    let answer = text(d, "answer", &["vlan", "name"])?;
    let none = get(pairs, "none")
        .and_then(Node::as_str)
        .unwrap_or("")
        .to_string();
    let default = match get(pairs, "default") {
        None => None,
        Some(n) => match n.as_str().map(crate::types::parse_number) {
            Some(Ok(v)) => Some(v),
            _ => {
                d.error(
                    n.loc,
                    format!("{what}.default is not a number"),
                    "write e.g. `default: 1`",
                );
                None
            }
        },
    };
    let pattern = match regex::Regex::new(&pattern_text?) {
        Ok(r) => r,
        Err(e) => {
            d.error(
                node.loc,
                format!("{what}.pattern is not a regex: {e}"),
                "fix the pattern",
            );
            return None;
        }
    };
    Some(Read {
        command,
        pattern,
        answer,
        none,
        default,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shipped_profiles_load() {
        let set = DriverSet::builtin();
        assert_eq!(set.names().count(), BUILTIN.len());
        assert!(set.get("cisco-ios").unwrap().reserved_vlans.contains(1003));
        assert_eq!(
            set.get("mellanox-gateway").unwrap().kind,
            DeviceKind::Gateway
        );
    }

    #[test]
    fn bad_profiles_are_refused_with_positions() {
        let text = "name: x\nkind: ethernet\nsource: s\nops:\n  create_vlan: [\"vlan {vlna}\"]\n";
        let err = parse_profile(text, "x.yaml").unwrap_err().to_string();
        assert!(
            err.contains("x.yaml:5:17: error: ops.create_vlan: unknown placeholder `{vlna}`"),
            "{err}"
        );
        assert!(err.contains("ops lacks `delete_vlan`"), "{err}");
    }
}
