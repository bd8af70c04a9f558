//! Reading and checking a dialect profile file. Every problem is reported with its position, all
//! at once: an operation missing for the profile's kind, an unknown placeholder, unbalanced
//! braces, a regex that does not compile, an unknown key (with a suggestion).

use super::pattern::Regex;
use super::read::{Allowed, AllowedField, ModeField, PortRead, PortsRead, VlanField, VlanRead};
use super::{
    Advice, DeviceKind, DriverError, DriverKind, OpKind, PortNames, Profile, SimAnswers,
    SshDialect, OPERATIONS,
};
use crate::base::diag::{Diagnostics, Loc};
use crate::base::types::{RangeSet, VlanId};
use crate::base::yaml::{self, get, Kind, Node};
use std::collections::BTreeMap;

const PROFILE_KEYS: &[&str] = &[
    "name",
    "kind",
    "source",
    "verified",
    "reserved_vlans",
    "vlan_name_max",
    "port_names",
    "session",
    "ops",
    "read",
    "advice",
    "errors",
    "ssh",
    "sim",
    "driver",
    "batch",
    "range",
    "vlan_lists",
];

/// Parses and checks one profile: every required operation of its kind present, only known
/// placeholders, balanced braces, regexes that compile.
pub fn parse_profile(text: &str, file: &str) -> Result<Profile, DriverError> {
    let mut d = Diagnostics::new(file);
    let root = match yaml::parse_all_errors(text) {
        Ok(Some(r)) => r,
        Ok(None) => {
            d.error(
                Loc { line: 1, col: 1 },
                "empty profile",
                "see docs/drivers.md",
            );
            return Err(DriverError::Invalid(d.sorted()));
        }
        Err(errors) => {
            for e in errors {
                d.error(e.loc, e.message, "fix the YAML");
            }
            return Err(DriverError::Invalid(d.sorted()));
        }
    };
    let profile = read_profile(&mut d, &root);
    match profile {
        Some(mut p) if !d.has_errors() => {
            p.text = std::sync::Arc::from(text);
            Ok(p)
        }
        _ => Err(DriverError::Invalid(d.sorted())),
    }
}

fn map_pairs<'a>(
    d: &mut Diagnostics,
    node: &'a Node,
    what: &str,
    allowed: &[&str],
) -> Option<&'a [(Node, Node)]> {
    let pairs = yaml::mapping(d, node, what, "see docs/drivers.md")?;
    if !allowed.is_empty() {
        yaml::report_unknown(d, pairs, allowed, what, &|_, _| false);
    }
    Some(pairs)
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

/// Checks that every `{placeholder}` of `t` is among `placeholders` and braces balance.
fn check_placeholders(d: &mut Diagnostics, t: &str, loc: Loc, what: &str, placeholders: &[&str]) {
    let mut rest = t;
    while let Some(open) = rest.find(['{', '}']) {
        if &rest[open..open + 1] == "}" {
            d.error(
                loc,
                format!("{what}: `}}` without `{{` in `{t}`"),
                "balance the braces",
            );
            return;
        }
        let Some(close) = rest[open..].find('}') else {
            d.error(
                loc,
                format!("{what}: `{{` without `}}` in `{t}`"),
                "balance the braces",
            );
            return;
        };
        let key = &rest[open + 1..open + close];
        if !placeholders.contains(&key) {
            d.error(
                loc,
                format!("{what}: unknown placeholder `{{{key}}}`"),
                format!(
                    "this may use {}",
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
}

/// The `{placeholders}` of a line, in order; unbalanced braces count as an empty one.
fn placeholder_keys(t: &str) -> Vec<String> {
    let mut keys = Vec::new();
    let mut rest = t;
    while let Some(open) = rest.find('{') {
        let Some(close) = rest[open..].find('}') else {
            keys.push(String::new());
            break;
        };
        keys.push(rest[open + 1..open + close].to_string());
        rest = &rest[open + close + 1..];
    }
    if rest.contains('}') {
        keys.push(String::new());
    }
    keys
}

/// Command lines whose `{placeholders}` must be among `placeholders`.
fn lines(d: &mut Diagnostics, node: &Node, what: &str, placeholders: &[&str]) -> Vec<String> {
    let mut out = Vec::new();
    for (t, loc) in plain_lines(d, node, what) {
        check_placeholders(d, &t, loc, what, placeholders);
        out.push(t);
    }
    out
}

/// One line of text (a scalar).
fn one_line(d: &mut Diagnostics, node: &Node, what: &str, placeholders: &[&str]) -> Option<String> {
    lines(d, node, what, placeholders).pop()
}

/// A regex; `what` names it in messages.
fn regex_of(d: &mut Diagnostics, node: &Node, what: &str) -> Option<Regex> {
    let text = plain_lines(d, node, what).pop()?.0;
    match Regex::new(&text) {
        Ok(r) => Some(r),
        Err(e) => {
            d.error(
                node.loc,
                format!("{what}: `{text}` is not a regex: {e}"),
                "fix the pattern",
            );
            None
        }
    }
}

fn required<'a>(
    d: &mut Diagnostics,
    pairs: &'a [(Node, Node)],
    owner: &Node,
    what: &str,
    key: &str,
) -> Option<&'a Node> {
    let n = get(pairs, key);
    if n.is_none() {
        d.error(
            owner.loc,
            format!("{what} lacks `{key}`"),
            "see docs/drivers.md",
        );
    }
    n
}

fn number(d: &mut Diagnostics, node: &Node, what: &str) -> Option<u64> {
    match node.as_str().map(crate::base::types::parse_number) {
        Some(Ok(v)) => Some(v),
        _ => {
            d.error(
                node.loc,
                format!("{what} is not a number"),
                "write e.g. `1`",
            );
            None
        }
    }
}

/// The profile in `root`, read in full so that every problem is reported.
fn read_profile(d: &mut Diagnostics, root: &Node) -> Option<Profile> {
    let pairs = map_pairs(d, root, "profile", PROFILE_KEYS)?;
    let name = required_text(d, pairs, root, "name")?;
    let source = required_text(d, pairs, root, "source").unwrap_or_default();
    let kind = device_kind(d, pairs, root)?;
    let verified = verified(d, pairs, root);
    let reserved_vlans = reserved(d, get(pairs, "reserved_vlans"));
    let vlan_name_max = get(pairs, "vlan_name_max")
        .and_then(Node::as_str)
        .and_then(|s| s.parse().ok())
        .unwrap_or(32);
    let port_names = get(pairs, "port_names").and_then(|n| port_names(d, n, kind));
    let session = session(d, get(pairs, "session"));
    let ops = operations(d, root, get(pairs, "ops"), kind);
    let (read_vlans, read_port, read_ports) = reads(d, root, get(pairs, "read"), kind);
    let errors = get(pairs, "errors").map_or(Vec::new(), |e| error_patterns(d, e));
    let ssh = get(pairs, "ssh").map_or(SshDialect::default(), |n| ssh_dialect(d, n));
    let batch = get(pairs, "batch").and_then(|n| batch(d, n));
    let range = get(pairs, "range").and_then(|n| port_range(d, n, &ops));
    if let (Some(_), Some(n)) = (&batch, get(pairs, "range")) {
        d.error(
            n.loc,
            "a profile has `batch:` or `range:`, not both",
            "`batch:` is for a device whose one command is one transaction, `range:` for a CLI that configures a range of ports line by line",
        );
    }
    let vlan_lists = get(pairs, "vlan_lists").and_then(|n| vlan_lists(d, n, &ops));
    let advice = get(pairs, "advice").map_or(Advice::default(), |n| advice(d, n));
    let sim = get(pairs, "sim").map(|n| sim_answers(d, n));
    let driver = driver_kind(d, pairs, root);
    Some(Profile {
        name,
        text: std::sync::Arc::from(""),
        kind,
        driver,
        source,
        verified,
        reserved_vlans,
        vlan_name_max,
        port_names,
        enable: session.enable,
        setup: session.setup,
        begin: session.begin,
        commit: session.commit,
        end: session.end,
        save: session.save,
        ops,
        read_vlans,
        read_port,
        read_ports,
        advice,
        errors,
        ssh,
        sim,
        batch,
        range,
        vlan_lists,
    })
}

/// `vlan_lists: {ops: [trunk_add, ...], join: ",", max: 32}`: operations whose `{vlan}` may be
/// several VLANs (`super::VlanLists`). Each must be one of the allowed-list operations the
/// profile gives, with `{vlan}` in exactly one of its lines.
fn vlan_lists(
    d: &mut Diagnostics,
    n: &Node,
    ops: &BTreeMap<OpKind, Vec<String>>,
) -> Option<super::VlanLists> {
    let what = "vlan_lists";
    let pairs = map_pairs(d, n, what, &["ops", "join", "max"])?;
    let list = required(d, pairs, n, what, "ops")?;
    let mut kinds = Vec::new();
    for (name, loc) in plain_lines(d, list, "vlan_lists.ops") {
        let Some(kind) = super::LIST_OPS.iter().copied().find(|k| k.name() == name) else {
            let names: Vec<&str> = super::LIST_OPS.iter().map(|k| k.name()).collect();
            d.error(
                loc,
                format!("vlan_lists.ops: `{name}` cannot take a VLAN list"),
                format!("list some of {}", names.join(", ")),
            );
            continue;
        };
        let with_vlan = ops
            .get(&kind)
            .map_or(0, |l| l.iter().filter(|t| t.contains("{vlan}")).count());
        if with_vlan != 1 {
            d.error(
                loc,
                format!("vlan_lists.ops: {name} must have {{vlan}} in exactly one line (it has it in {with_vlan})"),
                "a list goes where one VLAN goes: `switchport trunk allowed vlan add {vlan}`",
            );
            continue;
        }
        kinds.push(kind);
    }
    let join = match get(pairs, "join") {
        Some(j) => match j.as_str() {
            Some(s) if !s.trim().is_empty() && !s.contains(['\n', '\r', '{', '}']) => s.to_string(),
            _ => {
                d.error(j.loc, "vlan_lists.join must be text, e.g. \",\"", "");
                return None;
            }
        },
        None => ",".to_string(),
    };
    let max = match get(pairs, "max") {
        Some(v) => number(d, v, "vlan_lists.max").and_then(|m| {
            if (2..=256).contains(&m) {
                usize::try_from(m).ok()
            } else {
                d.error(
                    v.loc,
                    format!("vlan_lists.max {m} is not 2..256"),
                    "VLANs per line, e.g. 32",
                );
                None
            }
        })?,
        None => 32,
    };
    (!kinds.is_empty()).then_some(super::VlanLists {
        ops: kinds,
        join,
        max,
    })
}

/// `range: {context, ranged, members, run, join, max_items, max_ports, max_line}`: several
/// ports' operations as one ranged block (`super::range`).
fn port_range(
    d: &mut Diagnostics,
    n: &Node,
    ops: &BTreeMap<OpKind, Vec<String>>,
) -> Option<super::range::PortRange> {
    use super::range::{DEFAULT_MAX_LINE, DEFAULT_MAX_PORTS, MAX_LINE};
    let what = "range";
    let pairs = map_pairs(
        d,
        n,
        what,
        &[
            "context",
            "ranged",
            "members",
            "run",
            "join",
            "max_items",
            "max_ports",
            "max_line",
        ],
    )?;
    // A line with exactly the placeholders `needs` and one of `any_of`, each once.
    let template = |d: &mut Diagnostics, key: &str, needs: &[&str], any_of: &[&str]| {
        let node = required(d, pairs, n, what, key)?;
        let (text, loc) = plain_lines(d, node, &format!("range.{key}")).pop()?;
        let mut want: Vec<String> = needs.iter().map(|p| format!("{{{p}}}")).collect();
        if !any_of.is_empty() {
            let one: Vec<String> = any_of.iter().map(|p| format!("{{{p}}}")).collect();
            want.push(one.join(" or "));
        }
        let keys = placeholder_keys(&text);
        let count = |p: &&str| keys.iter().filter(|k| k == p).count();
        let fits = keys
            .iter()
            .all(|k| needs.contains(&k.as_str()) || any_of.contains(&k.as_str()))
            && needs.iter().all(|p| count(p) == 1)
            && (any_of.is_empty() || any_of.iter().map(count).sum::<usize>() == 1);
        if !fits {
            d.error(
                loc,
                format!(
                    "range.{key}: `{text}` must have {} once, and no other placeholder",
                    want.join(" and ")
                ),
                "see docs/drivers.md (range)",
            );
            return None;
        }
        Some(text)
    };
    let context = template(d, "context", &["port"], &[]);
    let ranged = template(d, "ranged", &["ports"], &[]);
    let run = template(d, "run", &["first"], &["last", "last_number"]);
    let members = required(d, pairs, n, what, "members").and_then(|m| {
        let re = regex_with_groups(
            d,
            m,
            "range.members",
            2,
            "two groups, the stem and the number",
            "\"((?i:Ethernet)\\\\d+/)(\\\\d+)\"",
        )?;
        Regex::new(&format!("^(?:{re})$")).ok()
    });
    let limit =
        |d: &mut Diagnostics, key: &str, default: usize, range: std::ops::RangeInclusive<usize>| {
            let Some(v) = get(pairs, key) else {
                return Some(default);
            };
            let m = usize::try_from(number(d, v, &format!("range.{key}"))?).ok()?;
            if range.contains(&m) {
                Some(m)
            } else {
                d.error(
                    v.loc,
                    format!("range.{key} {m} is not {}..{}", range.start(), range.end()),
                    "see docs/drivers.md (range)",
                );
                None
            }
        };
    let max_items = limit(d, "max_items", 1, 1..=64);
    let max_ports = limit(d, "max_ports", DEFAULT_MAX_PORTS, 2..=1000);
    let max_line = limit(d, "max_line", DEFAULT_MAX_LINE, MAX_LINE);
    let join = match (get(pairs, "join"), max_items) {
        (Some(j), _) => match j.as_str() {
            Some(s) if !s.trim().is_empty() && !s.contains(['\n', '\r']) => Some(s.to_string()),
            _ => {
                d.error(j.loc, "range.join must be text, e.g. \",\"", "");
                return None;
            }
        },
        (None, Some(m)) if m > 1 => {
            d.error(
                n.loc,
                format!("range lacks `join`: with max_items {m}, items need a separator"),
                "write e.g. `join: \",\"`, or leave max_items out (one item a line)",
            );
            return None;
        }
        (None, _) => None,
    };
    let context = context?;
    // The context must be the first line of an operation that changes one port.
    let ranged_ops = [
        OpKind::TrunkAdd,
        OpKind::TaggedAdd,
        OpKind::AccessSet,
        OpKind::RestrictPort,
    ];
    if !ranged_ops
        .iter()
        .any(|k| ops.get(k).and_then(|l| l.first()) == Some(&context) && ops[k].len() >= 2)
    {
        d.error(
            get(pairs, "context").map_or(n.loc, |c| c.loc),
            format!("range.context `{context}` is the first line of no port operation (trunk_add, tagged_add, access_set, restrict_port) with lines after it"),
            "write it exactly as those operations' first line, e.g. \"interface {port}\"",
        );
        return None;
    }
    Some(super::range::PortRange {
        context,
        ranged: ranged?,
        members: members?,
        run: run?,
        join,
        max_items: max_items?,
        max_ports: max_ports?,
        max_line: max_line?,
    })
}

/// `batch: {prefix, join, max}`: operations in one atomic command.
fn batch(d: &mut Diagnostics, n: &Node) -> Option<super::Batch> {
    let what = "batch";
    let pairs = map_pairs(d, n, what, &["prefix", "join", "max"])?;
    let text = |d: &mut Diagnostics, key: &str| {
        required(d, pairs, n, what, key).and_then(|v| match v.as_str() {
            Some(s) if !s.trim().is_empty() => Some(s.to_string()),
            _ => {
                d.error(v.loc, format!("batch.{key} must be text"), "");
                None
            }
        })
    };
    let prefix = text(d, "prefix");
    let join = text(d, "join");
    let max = match get(pairs, "max") {
        Some(v) => number(d, v, "batch.max").and_then(|m| {
            if (1..=10_000).contains(&m) {
                Some(m)
            } else {
                d.error(
                    v.loc,
                    format!("batch.max {m} is not 1..10000"),
                    "operations per command, e.g. 200",
                );
                None
            }
        }),
        None => Some(100),
    };
    Some(super::Batch {
        prefix: prefix?,
        join: join?,
        max: usize::try_from(max?).ok()?,
    })
}

/// A top-level key of the profile that must be non-empty text.
fn required_text(
    d: &mut Diagnostics,
    pairs: &[(Node, Node)],
    root: &Node,
    key: &str,
) -> Option<String> {
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
}

/// `kind`: the profile drives an Ethernet switch or a gateway.
fn device_kind(d: &mut Diagnostics, pairs: &[(Node, Node)], root: &Node) -> Option<DeviceKind> {
    match required_text(d, pairs, root, "kind").as_deref() {
        Some("ethernet") => Some(DeviceKind::Ethernet),
        Some("gateway") => Some(DeviceKind::Gateway),
        other => {
            d.error(
                root.loc,
                format!("profile kind `{}` is unknown", other.unwrap_or("")),
                "write `kind: ethernet` or `kind: gateway`",
            );
            None
        }
    }
}

/// `verified`: true unless it says false.
fn verified(d: &mut Diagnostics, pairs: &[(Node, Node)], root: &Node) -> bool {
    match get(pairs, "verified").and_then(Node::as_str) {
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
    }
}

/// `port_names: {pattern, example}`: how an Ethernet platform names its ports. A gateway has no
/// ports of its own (its `ethernet_port` is a switch's, checked by that switch's profile).
fn port_names(d: &mut Diagnostics, node: &Node, kind: DeviceKind) -> Option<PortNames> {
    let what = "port_names";
    let pairs = map_pairs(d, node, what, &["pattern", "example"])?;
    if kind == DeviceKind::Gateway {
        d.error(
            node.loc,
            "port_names in a gateway profile: a gateway has no ports of its own",
            "leave it out; the gateway's ethernet_port is checked by its switch's profile",
        );
        return None;
    }
    let pattern = required(d, pairs, node, what, "pattern")
        .and_then(|n| plain_lines(d, n, "port_names.pattern").pop());
    let example = required(d, pairs, node, what, "example")
        .and_then(|n| plain_lines(d, n, "port_names.example").pop());
    let ((pattern, loc), (example, _)) = (pattern?, example?);
    match PortNames::new(&pattern, &example) {
        Ok(p) => Some(p),
        Err(e) => {
            d.error(
                loc,
                format!("port_names: {e}"),
                "write a regex that the whole of every port name fits, and an example that fits it",
            );
            None
        }
    }
}

/// `driver`: how the profile's lines are sent (only `cli` today).
fn driver_kind(d: &mut Diagnostics, pairs: &[(Node, Node)], root: &Node) -> DriverKind {
    match get(pairs, "driver").and_then(Node::as_str) {
        None | Some("cli") => DriverKind::Cli,
        Some(other) => {
            d.error(
                root.loc,
                format!("driver `{other}` is unknown"),
                "write `driver: cli` (the only driver today) or leave it out",
            );
            DriverKind::Cli
        }
    }
}

fn reserved(d: &mut Diagnostics, node: Option<&Node>) -> RangeSet {
    let Some(n) = node else {
        return RangeSet::default();
    };
    match n
        .as_str()
        .map(|s| RangeSet::parse(s, VlanId::MIN, VlanId::MAX, "VLAN"))
    {
        Some(Ok(r)) => r,
        Some(Err(e)) => {
            d.error(n.loc, e.0, "write ranges like \"1002-1005\"");
            RangeSet::default()
        }
        None => RangeSet::default(),
    }
}

#[derive(Default)]
struct Session {
    enable: Option<String>,
    setup: Vec<String>,
    begin: Vec<String>,
    commit: Vec<String>,
    end: Vec<String>,
    save: Vec<String>,
}

fn session(d: &mut Diagnostics, node: Option<&Node>) -> Session {
    let mut s = Session::default();
    let Some(n) = node else {
        return s;
    };
    let Some(sp) = map_pairs(
        d,
        n,
        "session",
        &["enable", "setup", "begin", "commit", "end", "save"],
    ) else {
        return s;
    };
    for (key, target) in [
        ("setup", &mut s.setup),
        ("begin", &mut s.begin),
        ("commit", &mut s.commit),
        ("end", &mut s.end),
        ("save", &mut s.save),
    ] {
        if let Some(n) = get(sp, key) {
            *target = lines(d, n, &format!("session.{key}"), &[]);
        }
    }
    s.enable = get(sp, "enable").and_then(|n| one_line(d, n, "session.enable", &[]));
    s
}

fn operations(
    d: &mut Diagnostics,
    root: &Node,
    node: Option<&Node>,
    kind: DeviceKind,
) -> BTreeMap<OpKind, Vec<String>> {
    let mut ops = BTreeMap::new();
    let Some(n) = node else {
        d.error(root.loc, "profile needs `ops`", "see docs/drivers.md");
        return ops;
    };
    let allowed: Vec<&str> = OPERATIONS
        .iter()
        .filter(|o| o.kind == kind)
        .map(|o| o.name)
        .collect();
    let Some(op_pairs) = map_pairs(d, n, "ops", &allowed) else {
        return ops;
    };
    for o in OPERATIONS.iter().filter(|o| o.kind == kind) {
        match get(op_pairs, o.name) {
            Some(v) => {
                ops.insert(o.op, lines(d, v, &format!("ops.{}", o.name), o.placeholders));
            }
            None if o.required => d.error(
                n.loc,
                format!("ops lacks `{}`", o.name),
                "every operation of the profile's kind must be given (an empty list `[]` is allowed)",
            ),
            None => {}
        }
    }
    if ops.contains_key(&OpKind::RestrictPort) != ops.contains_key(&OpKind::UnrestrictPort) {
        d.error(
            n.loc,
            "ops has only one of `restrict_port` and `unrestrict_port`",
            "give both (restricting a port must be undoable) or neither",
        );
    }
    ops
}

fn reads(
    d: &mut Diagnostics,
    root: &Node,
    node: Option<&Node>,
    kind: DeviceKind,
) -> (Option<VlanRead>, Option<PortRead>, Option<PortsRead>) {
    let (mut vlans, mut port, mut ports) = (None, None, None);
    if let Some(r) = node {
        if let Some(rp) = map_pairs(d, r, "read", &["vlans", "port", "ports"]) {
            vlans = get(rp, "vlans").and_then(|n| vlan_read(d, n));
            port = get(rp, "port").and_then(|n| port_read(d, n));
            ports = get(rp, "ports").and_then(|n| ports_read(d, n));
            if let Some(n) = get(rp, "ports") {
                if get(rp, "port").is_none() {
                    d.error(
                        n.loc,
                        "`read.ports` reads each port's block with `read.port`'s fields: it needs `read.port`",
                        "",
                    );
                }
                // A block cut short would read as a port with those defaults: never guess.
                if let Some(p) = &port {
                    if p.mode.absent.is_some()
                        || p.access_vlan.absent.is_some()
                        || p.allowed.absent.is_some()
                    {
                        d.error(
                            n.loc,
                            "`read.ports` needs `read.port` fields without `absent:` defaults: a block cut short in a long answer would read as a port in its default state",
                            "read such ports one by one (leave `read.ports` out)",
                        );
                    }
                }
            }
        }
    }
    if kind == DeviceKind::Ethernet && (vlans.is_none() || port.is_none()) {
        d.error(
            root.loc,
            "an Ethernet profile needs `read.vlans` and `read.port`",
            "see docs/drivers.md",
        );
    }
    (vlans, port, ports)
}

/// `read.ports`: one command for many ports, its answer cut into per-port blocks.
fn ports_read(d: &mut Diagnostics, node: &Node) -> Option<PortsRead> {
    let what = "read.ports";
    let pairs = map_pairs(d, node, what, &["command", "split", "short", "ignore_case"])?;
    let command = required(d, pairs, node, what, "command")
        .and_then(|n| one_line(d, n, "read.ports.command", &[]));
    let split = required(d, pairs, node, what, "split").and_then(|n| {
        regex_with_groups(
            d,
            n,
            "read.ports.split",
            1,
            "a group, the port's name",
            "\"(?m)^Name:\\s*(\\S+)\"",
        )
    });
    let ignore_case = get(pairs, "ignore_case").is_some_and(|n| n.as_str() == Some("true"));
    let mut short: Vec<(String, String)> = Vec::new();
    if let Some(n) = get(pairs, "short") {
        if let Some(sp) = map_pairs(d, n, "read.ports.short", &[]) {
            for (k, v) in sp {
                let (long, s) = (k.as_str().unwrap_or(""), v.as_str().unwrap_or(""));
                // Two names shortened alike would find each other's block.
                let clash = short
                    .iter()
                    .find(|(l, x)| l.eq_ignore_ascii_case(long) || x.eq_ignore_ascii_case(s));
                if long.is_empty() || s.is_empty() || v.is_null() {
                    d.error(
                        v.loc,
                        format!(
                            "read.ports.short: `{}: {}` is not `LongPrefix: Short`",
                            long.escape_debug(),
                            s.escape_debug()
                        ),
                        "write e.g. `GigabitEthernet: Gi`",
                    );
                } else if let Some((l, x)) = clash {
                    d.error(
                        k.loc,
                        format!("read.ports.short: `{long}: {s}` clashes with `{l}: {x}`: two ports could be taken for one"),
                        "every long and every short form once",
                    );
                } else {
                    short.push((long.to_string(), s.to_string()));
                }
            }
        }
    }
    // Longest first: `TenGigabitEthernet` before `GigabitEthernet`... before `Ethernet`.
    short.sort_by_key(|(long, _)| std::cmp::Reverse(long.len()));
    Some(PortsRead {
        command: command?,
        split: split?,
        short,
        ignore_case,
    })
}

fn vlan_read(d: &mut Diagnostics, node: &Node) -> Option<VlanRead> {
    let what = "read.vlans";
    let pairs = map_pairs(d, node, what, &["command", "pattern", "expect"])?;
    let command = required(d, pairs, node, what, "command")
        .and_then(|n| one_line(d, n, "read.vlans.command", &[]));
    let pattern = required(d, pairs, node, what, "pattern")
        .and_then(|n| regex_of(d, n, "read.vlans.pattern"));
    let expect = get(pairs, "expect").and_then(|n| regex_of(d, n, "read.vlans.expect"));
    Some(VlanRead {
        command: command?,
        pattern: pattern?,
        expect,
    })
}

fn port_read(d: &mut Diagnostics, node: &Node) -> Option<PortRead> {
    let what = "read.port";
    let pairs = map_pairs(
        d,
        node,
        what,
        &[
            "command",
            "expect",
            "mode",
            "access_vlan",
            "allowed",
            "names",
        ],
    )?;
    let command = required(d, pairs, node, what, "command")
        .and_then(|n| one_line(d, n, "read.port.command", &["port"]));
    let expect = get(pairs, "expect").and_then(|n| regex_of(d, n, "read.port.expect"));
    let mode = required(d, pairs, node, what, "mode").and_then(|n| mode_field(d, n));
    let access_vlan = required(d, pairs, node, what, "access_vlan").and_then(|n| vlan_field(d, n));
    let allowed = required(d, pairs, node, what, "allowed").and_then(|n| allowed_field(d, n));
    let names = get(pairs, "names").and_then(|n| names_table(d, n));
    Some(PortRead {
        command: command?,
        expect,
        mode: mode?,
        access_vlan: access_vlan?,
        allowed: allowed?,
        names,
    })
}

/// `read.port.names`: the VLAN table within the port's answer, group 1 a name, group 2 its id.
fn names_table(d: &mut Diagnostics, node: &Node) -> Option<Regex> {
    regex_with_groups(
        d,
        node,
        "read.port.names",
        2,
        "two groups, a VLAN name and its id",
        "\"set vlans (\\\\S+) vlan-id (\\\\d+)\"",
    )
}

/// A regex with at least `groups` capture groups, `meaning` what they hold (for the message).
fn regex_with_groups(
    d: &mut Diagnostics,
    node: &Node,
    what: &str,
    groups: usize,
    meaning: &str,
    example: &str,
) -> Option<Regex> {
    let re = regex_of(d, node, what)?;
    if re.captures_len() < groups + 1 {
        d.error(
            node.loc,
            format!("{what}: `{re}` needs {meaning}"),
            format!("write e.g. {example}"),
        );
        return None;
    }
    Some(re)
}

fn mode_field(d: &mut Diagnostics, node: &Node) -> Option<ModeField> {
    let what = "read.port.mode";
    let pairs = map_pairs(d, node, what, &["pattern", "trunk", "access", "absent"])?;
    let mut re = |key: &str| {
        required(d, pairs, node, what, key).and_then(|n| regex_of(d, n, &format!("{what}.{key}")))
    };
    let (pattern, trunk, access) = (re("pattern"), re("trunk"), re("access"));
    let absent = get(pairs, "absent")
        .and_then(Node::as_str)
        .map(str::to_string);
    Some(ModeField {
        pattern: pattern?,
        trunk: trunk?,
        access: access?,
        absent,
    })
}

fn vlan_field(d: &mut Diagnostics, node: &Node) -> Option<VlanField> {
    let what = "read.port.access_vlan";
    let pairs = map_pairs(d, node, what, &["pattern", "default", "absent"])?;
    let pattern = required(d, pairs, node, what, "pattern")
        .and_then(|n| regex_of(d, n, &format!("{what}.pattern")));
    let default = get(pairs, "default").and_then(|n| number(d, n, &format!("{what}.default")));
    let absent = get(pairs, "absent").and_then(|n| number(d, n, &format!("{what}.absent")));
    Some(VlanField {
        pattern: pattern?,
        default,
        absent,
    })
}

fn allowed_field(d: &mut Diagnostics, node: &Node) -> Option<AllowedField> {
    let what = "read.port.allowed";
    let pairs = map_pairs(d, node, what, &["pattern", "all", "none", "absent"])?;
    let pattern = required(d, pairs, node, what, "pattern")
        .and_then(|n| regex_of(d, n, &format!("{what}.pattern")));
    let all =
        required(d, pairs, node, what, "all").and_then(|n| regex_of(d, n, &format!("{what}.all")));
    let none = get(pairs, "none").and_then(|n| regex_of(d, n, &format!("{what}.none")));
    let absent = match get(pairs, "absent") {
        None => None,
        Some(n) => match n.as_str() {
            Some("all") => Some(Allowed::All),
            Some("none") => Some(Allowed::List(RangeSet::default())),
            _ => {
                d.error(
                    n.loc,
                    format!("{what}.absent must be `all` or `none`"),
                    "write `absent: none`",
                );
                None
            }
        },
    };
    Some(AllowedField {
        pattern: pattern?,
        all: all?,
        none,
        absent,
    })
}

fn error_patterns(d: &mut Diagnostics, node: &Node) -> Vec<Regex> {
    let mut errors = Vec::new();
    for (text, loc) in plain_lines(d, node, "errors") {
        match Regex::new(&text) {
            Ok(r) => errors.push(r),
            Err(err) => d.error(
                loc,
                format!("errors: `{text}` is not a regex: {err}"),
                "fix the pattern",
            ),
        }
    }
    errors
}

fn ssh_dialect(d: &mut Diagnostics, n: &Node) -> SshDialect {
    let mut ssh = SshDialect::default();
    let Some(sp) = map_pairs(d, n, "ssh", &["mode", "prompt", "pager"]) else {
        return ssh;
    };
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
            if let Some(r) = regex_of(d, v, &format!("ssh.{key}")) {
                *target = r;
            }
        }
    }
    ssh
}

fn advice(d: &mut Diagnostics, n: &Node) -> Advice {
    let mut a = Advice::default();
    let Some(ap) = map_pairs(d, n, "advice", &["not_trunk", "open_trunk", "not_access"]) else {
        return a;
    };
    for (key, target) in [
        ("not_trunk", &mut a.not_trunk),
        ("open_trunk", &mut a.open_trunk),
        ("not_access", &mut a.not_access),
    ] {
        if let Some(v) = get(ap, key).and_then(Node::as_str) {
            *target = v.to_string();
        }
    }
    a
}

/// Simulator answers: free text, multi-line allowed.
fn sim_answers(d: &mut Diagnostics, n: &Node) -> SimAnswers {
    const KEYS: &[&str] = &[
        "vlans_header",
        "vlan_line",
        "port",
        "mode_access",
        "mode_trunk",
        "mode_factory",
        "allowed_all",
        "allowed_none",
        "allowed_list",
        "factory_trunk",
        "factory_allows",
        "invalid",
    ];
    let mut s = SimAnswers {
        invalid: "% Invalid input detected at '^' marker.".into(),
        allowed_list: "{list}".into(),
        ..SimAnswers::default()
    };
    let Some(sp) = map_pairs(d, n, "sim", KEYS) else {
        return s;
    };
    let text = |key: &str| get(sp, key).and_then(Node::as_str).map(str::to_string);
    for (key, target) in [
        ("vlans_header", &mut s.vlans_header),
        ("vlan_line", &mut s.vlan_line),
        ("port", &mut s.port),
        ("mode_access", &mut s.mode_access),
        ("mode_trunk", &mut s.mode_trunk),
        ("mode_factory", &mut s.mode_factory),
        ("allowed_all", &mut s.allowed_all),
        ("allowed_none", &mut s.allowed_none),
        ("allowed_list", &mut s.allowed_list),
        ("invalid", &mut s.invalid),
    ] {
        if let Some(v) = text(key) {
            *target = v;
        }
    }
    s.factory_trunk = text("factory_trunk").as_deref() == Some("true");
    s.factory_allows_none = text("factory_allows").as_deref() == Some("none");
    s
}
