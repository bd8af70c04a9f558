//! Vendor dialects as data. A profile in `switch-drivers/NAME.yaml` says how each planned
//! operation is written on that platform's CLI (and how it is undone), how to read the device's
//! VLANs and a port's mode and allowed list, which answers are refusals, which VLANs the platform
//! reserves for itself, and where the commands come from in the vendor's manual.
//!
//! The shipped profiles are compiled into the binary; a site can add or override profiles with a
//! directory of its own (`--drivers-dir` / `JOBNET_DRIVERS_DIR`). Templates only substitute
//! values that were validated as typed values or strict words, so rendering cannot inject text.
//! [`parse`] reads and checks profile files; [`read`] turns device answers into typed state;
//! [`range`] writes several ports' operations as one ranged block where the dialect has that.

mod parse;
pub mod pattern;
pub mod range;
pub mod read;

pub use parse::parse_profile;

use crate::base::types::{RangeSet, VlanId};
use std::collections::BTreeMap;
use std::path::Path;

/// What kind of device a profile drives.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DeviceKind {
    Ethernet,
    Gateway,
}

/// The operations a profile writes: one table, used by the planner (what to render), the
/// profile parser (what a file must give), the CLI driver and the simulator (which matches on it
/// exhaustively, so a new operation that it does not simulate is a compile error).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum OpKind {
    CreateVlan,
    DeleteVlan,
    TrunkAdd,
    TrunkRemove,
    TaggedAdd,
    TaggedRemove,
    AccessSet,
    AccessRestore,
    AccessClear,
    /// A node port allowing every VLAN gets exactly the job's (`open_ports: restrict`).
    RestrictPort,
    /// Its last job gives it every VLAN back.
    UnrestrictPort,
    ProxyArpCreate,
    ProxyArpDelete,
}

/// What an operation kind needs: its name in profiles, the kind of device, the placeholders its
/// templates may use, and whether every profile of that kind must give it.
pub struct Operation {
    pub op: OpKind,
    pub name: &'static str,
    pub kind: DeviceKind,
    pub placeholders: &'static [&'static str],
    pub required: bool,
}

const fn op(
    op: OpKind,
    name: &'static str,
    kind: DeviceKind,
    placeholders: &'static [&'static str],
    required: bool,
) -> Operation {
    Operation {
        op,
        name,
        kind,
        placeholders,
        required,
    }
}

use DeviceKind::{Ethernet as E, Gateway as G};

/// The table. `restrict_port`/`unrestrict_port` are optional: a platform whose trunks never
/// allow every VLAN by default (Junos, OS10) needs neither.
pub const OPERATIONS: &[Operation] = &[
    op(
        OpKind::CreateVlan,
        "create_vlan",
        E,
        &["vlan", "name"],
        true,
    ),
    op(
        OpKind::DeleteVlan,
        "delete_vlan",
        E,
        &["vlan", "name"],
        true,
    ),
    op(
        OpKind::TrunkAdd,
        "trunk_add",
        E,
        &["port", "vlan", "name"],
        true,
    ),
    op(
        OpKind::TrunkRemove,
        "trunk_remove",
        E,
        &["port", "vlan", "name"],
        true,
    ),
    op(
        OpKind::TaggedAdd,
        "tagged_add",
        E,
        &["port", "vlan", "name"],
        true,
    ),
    op(
        OpKind::TaggedRemove,
        "tagged_remove",
        E,
        &["port", "vlan", "name"],
        true,
    ),
    op(
        OpKind::AccessSet,
        "access_set",
        E,
        &["port", "vlan", "name"],
        true,
    ),
    op(
        OpKind::AccessRestore,
        "access_restore",
        E,
        &["port", "vlan", "previous"],
        true,
    ),
    op(
        OpKind::AccessClear,
        "access_clear",
        E,
        &["port", "vlan"],
        true,
    ),
    op(
        OpKind::RestrictPort,
        "restrict_port",
        E,
        &["port", "vlan"],
        false,
    ),
    op(
        OpKind::UnrestrictPort,
        "unrestrict_port",
        E,
        &["port"],
        false,
    ),
    op(
        OpKind::ProxyArpCreate,
        "proxy_arp_create",
        G,
        &["vlan", "pkey", "pkey_full", "name"],
        true,
    ),
    op(
        OpKind::ProxyArpDelete,
        "proxy_arp_delete",
        G,
        &["vlan", "pkey", "pkey_full", "name"],
        true,
    ),
];

impl OpKind {
    /// The table entry.
    pub fn info(self) -> &'static Operation {
        OPERATIONS
            .iter()
            .find(|o| o.op == self)
            .expect("every kind is in the table")
    }

    /// The name profiles use (`create_vlan`).
    pub fn name(self) -> &'static str {
        self.info().name
    }
}

impl std::fmt::Display for OpKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// A dialect whose one command carries many operations as one atomic transaction (`batch:`;
/// Open vSwitch: `ovs-vsctl -- add port … -- set port …`): every line of the operations starts
/// with `prefix`, which the combined command gives once, the rest joined by `join`; at most `max`
/// operations per command. The device applies all of them or none.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Batch {
    pub prefix: String,
    pub join: String,
    pub max: usize,
}

impl Batch {
    /// The one command for these lines; `None` when a line does not start with the prefix (it
    /// is then sent on its own, as without `batch:`).
    pub fn combine(&self, lines: &[String]) -> Option<String> {
        let rest: Option<Vec<&str>> = lines
            .iter()
            .map(|l| l.strip_prefix(self.prefix.as_str()))
            .collect();
        let rest = rest?;
        (!rest.is_empty()).then(|| {
            format!(
                "{}{}{}",
                self.prefix,
                self.join.trim_start(),
                rest.join(&self.join)
            )
        })
    }
}

/// A dialect that takes several VLANs in one line of a port operation (`vlan_lists:`; `switchport
/// trunk allowed vlan add 10,20,30`): for the operations in `ops`, `{vlan}` may be up to `max`
/// VLANs joined by `join`, in ascending order. jobnetd uses it to send the same operation of
/// several jobs on one port as one line ([`crate::drivers::merge`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VlanLists {
    pub ops: Vec<OpKind>,
    pub join: String,
    pub max: usize,
}

/// The operations whose `{vlan}` may be a list: a VLAN added to or removed from a port's
/// allowed list.
pub const LIST_OPS: &[OpKind] = &[
    OpKind::TrunkAdd,
    OpKind::TrunkRemove,
    OpKind::TaggedAdd,
    OpKind::TaggedRemove,
];

/// How the SSH transport talks to the device.
#[derive(Clone, Debug)]
pub struct SshDialect {
    /// `shell`: one interactive session with a PTY, lines typed at the prompt; `exec`: one SSH
    /// exec request per line (Open vSwitch, Cumulus NVUE run from a Unix shell).
    pub exec: bool,
    /// The CLI prompt, matched against the end of the output.
    pub prompt: pattern::Regex,
    /// A pager prompt (`--More--`) answered with a space.
    pub pager: pattern::Regex,
}

impl Default for SshDialect {
    fn default() -> Self {
        // Compiled once per process (a `Regex` clone shares the compiled program).
        static PROMPT: std::sync::LazyLock<pattern::Regex> =
            std::sync::LazyLock::new(|| pattern::Regex::new(r"[>#$%]\s*$").expect("static regex"));
        static PAGER: std::sync::LazyLock<pattern::Regex> = std::sync::LazyLock::new(|| {
            pattern::Regex::new(r"(--More--|<--- More --->|-- More --)\s*$").expect("static regex")
        });
        SshDialect {
            exec: false,
            prompt: PROMPT.clone(),
            pager: PAGER.clone(),
        }
    }
}

/// What to tell an administrator when a port is not usable as it is configured: the vendor's
/// commands that make it usable.
#[derive(Clone, Debug, Default)]
pub struct Advice {
    /// For a node or link port that must be a trunk but is not.
    pub not_trunk: String,
    /// For a trunk that allows every VLAN.
    pub open_trunk: String,
    /// For an access-mode node port that is not in access mode.
    pub not_access: String,
}

/// How the test kit's simulated switch answers in this dialect (optional; only the simulator
/// reads it). Templates use `{vlan}`, `{name}`, `{port}`, `{mode}`, `{access}`, `{allowed}`; a
/// line that renders empty is left out.
#[derive(Clone, Debug, Default)]
pub struct SimAnswers {
    /// Lines before the VLAN table.
    pub vlans_header: String,
    /// One line per VLAN.
    pub vlan_line: String,
    /// The whole answer of the port read.
    pub port: String,
    /// `{mode}` for access, trunk and a factory-default port.
    pub mode_access: String,
    pub mode_trunk: String,
    pub mode_factory: String,
    /// `{allowed}` for every VLAN, for none, and for a list (`{list}`: `10,20-30`; `{item}`: one
    /// line per VLAN or range).
    pub allowed_all: String,
    pub allowed_none: String,
    pub allowed_list: String,
    /// A factory-default port: a trunk (true) or in `mode_factory` (false).
    pub factory_trunk: bool,
    /// A factory-default port's allowed list is empty (OS10, Junos) rather than every VLAN.
    pub factory_allows_none: bool,
    /// The refusal of a line the simulated CLI does not know.
    pub invalid: String,
}

/// How the platform names the ports its templates write as `{port}`: topology validation warns
/// about a port that does not fit (another vendor's style, `Ethernet1/1` on Onyx) and shows the
/// example.
#[derive(Clone, Debug)]
pub struct PortNames {
    /// The pattern as the profile writes it (matched against the whole name).
    pub pattern: String,
    /// A name in the platform's form, for messages (checked to fit).
    pub example: String,
    whole: pattern::Regex,
}

impl PortNames {
    /// `pattern` is matched against the whole name; the example must fit it.
    pub fn new(pattern: &str, example: &str) -> Result<Self, String> {
        let whole = pattern::Regex::new(&format!("^(?:{pattern})$"))
            .map_err(|e| format!("`{pattern}` is not a regex: {e}"))?;
        if !whole.is_match(example) {
            return Err(format!(
                "the example `{example}` does not fit the pattern `{pattern}`"
            ));
        }
        Ok(PortNames {
            pattern: pattern.to_string(),
            example: example.to_string(),
            whole,
        })
    }

    /// Whether `port` (without the switch name) is written in the platform's form.
    pub fn fits(&self, port: &str) -> bool {
        self.whole.is_match(port)
    }
}

/// Which driver speaks a profile (`driver:` in the file). Only CLI dialects exist today; an SNMP
/// or API driver becomes another variant with its own implementation of
/// [`crate::drivers::cli::DeviceDriver`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum DriverKind {
    #[default]
    Cli,
}

/// One parsed dialect profile: the dialect (session lines, operations, reads, refusals, advice),
/// how it looks over SSH, and — optional, for the test kit only — how the simulator answers.
#[derive(Clone, Debug)]
pub struct Profile {
    pub name: String,
    /// The profile's YAML as it was read (what a jobnetd is handed to speak the same dialect).
    pub text: std::sync::Arc<str>,
    pub kind: DeviceKind,
    pub driver: DriverKind,
    /// Vendor manual section the commands were taken from.
    pub source: String,
    /// False when the templates have not yet been checked against the manual; plans say so.
    pub verified: bool,
    /// VLANs the platform keeps for itself (e.g. 1002-1005 on Cisco IOS).
    pub reserved_vlans: RangeSet,
    /// Longest VLAN name the platform accepts.
    pub vlan_name_max: usize,
    /// How the platform names its ports; `None`: any name (not checked).
    pub port_names: Option<PortNames>,
    /// The command that enters privileged mode (`enable`), sent first after login over SSH; a
    /// password prompt is answered with the credentials entry's `enable_password`.
    pub enable: Option<String>,
    /// Lines sent right after login (disable the pager); reads follow them.
    pub setup: Vec<String>,
    /// Lines that enter configuration mode, sent before the operations.
    pub begin: Vec<String>,
    /// Lines that make the operations take effect (`commit`, `nv config apply`): must succeed.
    pub commit: Vec<String>,
    /// Lines that only leave configuration mode (`end`): a refusal is noted, never a failure.
    pub end: Vec<String>,
    /// Optional lines that persist the configuration; sites choose whether to send them.
    pub save: Vec<String>,
    pub ops: BTreeMap<OpKind, Vec<String>>,
    /// Existing VLANs on the device (Ethernet profiles).
    pub read_vlans: Option<read::VlanRead>,
    /// A port's mode, access VLAN and allowed list (Ethernet profiles).
    pub read_port: Option<read::PortRead>,
    /// Many ports with one command, where the dialect has one (read with `read_port`'s fields).
    pub read_ports: Option<read::PortsRead>,
    pub advice: Advice,
    /// Output that means the device refused a command (e.g. `% Invalid input`), as regexes
    /// matched against every line of an answer.
    pub errors: Vec<pattern::Regex>,
    pub ssh: SshDialect,
    /// Operations sent as one atomic command, where the dialect has that.
    pub batch: Option<Batch>,
    /// Several ports' operations sent as one ranged block, where the dialect has that.
    pub range: Option<range::PortRange>,
    /// Several VLANs in one line of a port operation, where the dialect has that.
    pub vlan_lists: Option<VlanLists>,
    /// How the test kit's simulator answers; `None` when the profile does not say.
    pub sim: Option<SimAnswers>,
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
    /// Several VLANs for `{vlan}` (a `vlan_lists:` operation), already joined.
    pub vlans: Option<String>,
}

impl Profile {
    /// Renders operation `op` with `vars`. Panics if the profile lacks the operation or uses a
    /// placeholder that `vars` lacks: both are excluded when the profile is loaded and by the
    /// planner, so reaching them is a bug.
    pub fn render(&self, op: OpKind, vars: &Vars) -> Vec<String> {
        let templates = self
            .ops
            .get(&op)
            .unwrap_or_else(|| panic!("profile {} has no operation {op}", self.name));
        templates.iter().map(|t| fill(t, vars)).collect()
    }

    /// The lines of operation `op` on `port` for several VLANs at once, in ascending order:
    /// `None` when the profile does not take a list there, or `vlans` has fewer than two or
    /// more than its `max`.
    pub fn render_list(
        &self,
        op: OpKind,
        port: &str,
        name: &str,
        vlans: &[VlanId],
    ) -> Option<Vec<String>> {
        let lists = self.vlan_lists.as_ref()?;
        if !lists.ops.contains(&op) || vlans.len() < 2 || vlans.len() > lists.max {
            return None;
        }
        let mut sorted = vlans.to_vec();
        sorted.sort_unstable();
        let joined: Vec<String> = sorted.iter().map(ToString::to_string).collect();
        Some(self.render(
            op,
            &Vars {
                port: Some(port),
                name: Some(name),
                vlans: Some(joined.join(&lists.join)),
                ..Vars::default()
            },
        ))
    }

    /// Whether `line` is one of the profile's reads (its VLAN table, one port with a port name in
    /// `{port}`, or all ports): a read-only channel (jobnetd's read queue) sends nothing else.
    pub fn is_read(&self, line: &str) -> bool {
        if self.read_vlans.as_ref().is_some_and(|r| r.command == line)
            || self.read_ports.as_ref().is_some_and(|r| r.command == line)
        {
            return true;
        }
        let Some(r) = &self.read_port else {
            return false;
        };
        let Some((head, tail)) = r.command.split_once("{port}") else {
            return r.command == line;
        };
        line.strip_prefix(head)
            .and_then(|rest| rest.strip_suffix(tail))
            .is_some_and(|port| {
                !port.is_empty()
                    && port
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || "/._:-".contains(c))
            })
    }

    /// Whether the profile gives operation `op` (optional operations may be missing).
    pub fn has(&self, op: OpKind) -> bool {
        self.ops.get(&op).is_some_and(|t| !t.is_empty())
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
            "vlan" => vars.vlans.clone().or(vars.vlan.map(|v| v.to_string())),
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

/// The profiles available to a run. A shipped profile is parsed the first time it is asked for:
/// its dialect's patterns take most of a short command's start-up to compile, and a run uses the
/// few dialects its topology names (`jobnet plan` on one switch started 6 × faster). The shipped
/// profiles are all parsed by this module's tests, so none can be broken in a release.
#[derive(Clone, Debug, Default)]
pub struct DriverSet {
    /// Profiles from a site directory or `insert`, parsed when added (their errors are the
    /// caller's to report); they replace a shipped one of the same name.
    profiles: BTreeMap<String, Profile>,
    /// The shipped profiles (compiled-in text), each parsed on first use.
    shipped: BTreeMap<&'static str, (&'static str, std::sync::OnceLock<Profile>)>,
}

macro_rules! builtin {
    ($($name:literal),* $(,)?) => {
        &[$(($name, include_str!(concat!("../../../../../switch-drivers/", $name, ".yaml")))),*]
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
    #[error("cannot read driver directory {path}: {source}; check the driver directory's path")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("invalid driver profile(s):\n{}", crate::base::diag::lines(.0))]
    Invalid(Vec<crate::base::diag::Diagnostic>),
}

impl DriverSet {
    /// The shipped profiles (each parsed when first asked for).
    pub fn builtin() -> Self {
        let mut set = DriverSet::default();
        for (name, text) in BUILTIN {
            set.shipped.insert(name, (text, std::sync::OnceLock::new()));
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
            let text = crate::base::limits::read_text(&path, crate::base::limits::PROFILE)
                .map_err(|e| DriverError::Io {
                    path: path.display().to_string(),
                    source: e.into_io(),
                })?;
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
        if let Some(p) = self.profiles.get(name) {
            return Some(p);
        }
        let (text, parsed) = self.shipped.get(name)?;
        Some(parsed.get_or_init(|| {
            parse_profile(text, &format!("switch-drivers/{name}.yaml"))
                .unwrap_or_else(|e| panic!("shipped profile broken: {e}"))
        }))
    }

    /// Every profile's name, in order (shipped and site ones once each).
    pub fn names(&self) -> impl Iterator<Item = &str> {
        let mut names: Vec<&str> = self
            .profiles
            .keys()
            .map(String::as_str)
            .chain(self.shipped.keys().copied())
            .collect();
        names.sort_unstable();
        names.dedup();
        names.into_iter()
    }
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
        // Every shipped profile parses, under its file's name.
        for (name, _) in BUILTIN {
            let p = set.get(name).unwrap_or_else(|| panic!("{name} missing"));
            assert_eq!(
                p.name, *name,
                "the profile in switch-drivers/{name}.yaml names itself"
            );
        }
        for p in set
            .names()
            .filter_map(|n| set.get(n))
            .filter(|p| p.kind == DeviceKind::Ethernet)
        {
            assert!(p.read_port.is_some(), "{} reads ports", p.name);
            assert!(
                !p.errors.is_empty() || p.ssh.exec,
                "{} knows refusals",
                p.name
            );
        }
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

    /// Onyx shows an `allowed-vlan all` trunk as the list of the VLANs that exist, which always
    /// holds VLAN 1; a trunk restricted as the advice says lists only its own VLANs. The second
    /// answer is the JSON-API form of tests/transcripts/mellanox-onyx/
    /// switchport-json-api-trunk-explicit.txt.
    #[test]
    fn onyx_reads_a_trunk_holding_vlan_1_as_open() {
        use read::Allowed;
        let set = DriverSet::builtin();
        let r = set.get("mellanox-onyx").unwrap().read_port.clone().unwrap();
        let trunk = |allowed: &str| {
            let answer = format!(
                "{{\n    \"Eth1/54\": {{\n        \"Access vlan\": \"N/A\",\n        \"Allowed vlans\": \"{allowed}\",\n        \"Mode\": \"trunk\"\n    }}\n}}"
            );
            r.parse(&answer).unwrap().allowed.unwrap()
        };
        for open in ["1", "1, 6, 100, 101", "6, 1", "1-4094", "1-10, 20", "all"] {
            assert_eq!(trunk(open), Allowed::All, "{open}");
        }
        let list = |l: &[(u64, u64)]| Allowed::List(RangeSet::from_ranges(l.to_vec()));
        assert_eq!(trunk("101"), list(&[(101, 101)]));
        assert_eq!(trunk("10, 11-20, 100"), list(&[(10, 20), (100, 100)]));
        assert_eq!(trunk(""), list(&[]));
        let api = "    \"Eth1/54\": [\n    {\n    \"Access vlan\": \"N/A\",\n    \"Allowed vlans\": \"101\",\n    \"Mode\": \"trunk\"\n    }\n],\n";
        assert_eq!(r.parse(api).unwrap().allowed, Some(list(&[(101, 101)])));
    }

    #[test]
    fn a_names_table_needs_a_name_and_an_id() {
        let base = include_str!("../../../../../switch-drivers/junos.yaml");
        let one_group = base.replace(
            "names: \"(?m)^set vlans (\\\\S+) vlan-id (\\\\d+)\\\\s*$\"",
            "names: \"set vlans (\\\\S+)\"",
        );
        assert!(one_group != base, "the shipped junos profile reads names");
        let err = parse_profile(&one_group, "junos.yaml")
            .unwrap_err()
            .to_string();
        assert!(err.contains("read.port.names"), "{err}");
        assert!(err.contains("needs two groups"), "{err}");
    }

    /// Each shipped Ethernet profile's `port_names` takes the platform's own names and refuses
    /// the other vendors' forms (the issue's cases: `Ethernet1/1` on Onyx, `GigabitEthernet0/1`
    /// on Junos).
    #[test]
    fn shipped_port_names_take_their_vendors_form_only() {
        let set = DriverSet::builtin();
        let cases: &[(&str, &[&str], &[&str])] = &[
            (
                "arista-eos",
                &[
                    "Ethernet1",
                    "Ethernet49/1",
                    "Ethernet3/1/1",
                    "Et12",
                    "Port-Channel1",
                    "Po10",
                    "ethernet7",
                ],
                &[
                    "GigabitEthernet1/0/1",
                    "ge-0/0/1",
                    "swp1",
                    "1/1",
                    "Management1",
                    "Ethernet1.100",
                ],
            ),
            (
                "cisco-ios",
                &[
                    "GigabitEthernet1/0/1",
                    "TenGigabitEthernet1/1/1",
                    "FastEthernet0/1",
                    "TwentyFiveGigE1/0/1",
                    "HundredGigE1/0/49",
                    "Gi1/0/24",
                    "Te1/1/4",
                    "Port-channel1",
                    "Po2",
                    "Ethernet0",
                ],
                &[
                    "ge-0/0/1",
                    "swp1",
                    "1/1",
                    "ethernet 1/1",
                    "Vlan10",
                    "GigabitEthernet1/0/1.10",
                ],
            ),
            (
                "cisco-nxos",
                &[
                    "Ethernet1/1",
                    "Ethernet1/49/2",
                    "Ethernet101/1/1",
                    "Eth1/1",
                    "port-channel10",
                    "Po1",
                ],
                &[
                    "Ethernet1",
                    "GigabitEthernet1/0/1",
                    "ge-0/0/1",
                    "swp1",
                    "1/1",
                    "mgmt0",
                ],
            ),
            (
                "dell-os10",
                &["ethernet1/1/1", "ethernet1/1/49:2", "port-channel1"],
                &[
                    "Ethernet1/1",
                    "ethernet1/1",
                    "GigabitEthernet1/0/1",
                    "swp1",
                    "1/1/1",
                    "mgmt1/1/1",
                ],
            ),
            (
                "junos",
                &[
                    "ge-0/0/1",
                    "xe-0/0/48",
                    "et-0/0/0",
                    "xe-0/0/1:2",
                    "mge-0/0/3",
                    "ae0",
                ],
                &[
                    "GigabitEthernet0/1",
                    "Ethernet1",
                    "ge-0/0/1.0",
                    "swp1",
                    "1/1",
                    "ethernet1/1/1",
                ],
            ),
            (
                "mellanox-onyx",
                &["1/1", "1/49", "1/1/2"],
                &[
                    "Ethernet1/1",
                    "Eth1/1",
                    "ethernet 1/1",
                    "Po1",
                    "swp1",
                    "ge-0/0/1",
                ],
            ),
            (
                "cumulus-nvue",
                &["swp1", "swp49s0", "bond0", "peerlink"],
                &[
                    "Ethernet1/1",
                    "Ethernet1",
                    "GigabitEthernet0/1",
                    "ge-0/0/1",
                    "1/1",
                    "ethernet1/1/1",
                    "swp1.100",
                    "averyveryverylongbond",
                ],
            ),
            (
                "openvswitch",
                &["eth1", "h1p", "leaf1-up1", "Ethernet1/1"],
                &[],
            ),
        ];
        let ethernet = set
            .names()
            .filter_map(|n| set.get(n))
            .filter(|p| p.kind == DeviceKind::Ethernet);
        assert_eq!(
            ethernet.count(),
            cases.len(),
            "every Ethernet profile has cases"
        );
        for (name, fit, misfit) in cases {
            let names = set.get(name).unwrap().port_names.as_ref().unwrap();
            assert!(names.fits(&names.example), "{name}: its example");
            for port in *fit {
                assert!(names.fits(port), "{name} must take {port}");
            }
            for port in *misfit {
                assert!(!names.fits(port), "{name} must not take {port}");
            }
        }
        assert!(set.get("mellanox-gateway").unwrap().port_names.is_none());
    }

    #[test]
    fn bad_port_names_are_refused_with_positions() {
        let base = include_str!("../../../../../switch-drivers/mellanox-onyx.yaml");
        let line = r#"port_names: {pattern: "\\d+/\\d+(/\\d+)?", example: "1/1"}"#;
        assert!(
            base.contains(line),
            "the shipped onyx profile names its ports"
        );
        for (bad, want) in [
            (
                r#"port_names: {pattern: "\\d+/\\d+", example: "Eth1/1"}"#,
                r"port_names: the example `Eth1/1` does not fit the pattern `\d+/\d+`",
            ),
            (
                r#"port_names: {pattern: "(\\d+", example: "1"}"#,
                r"port_names: `(\d+` is not a regex",
            ),
            (
                r#"port_names: {pattern: "\\d+"}"#,
                "port_names lacks `example`",
            ),
            (
                r#"port_names: {pattern: ".+", example: "x", form: y}"#,
                "unknown key `form` in port_names",
            ),
        ] {
            let err = parse_profile(&base.replace(line, bad), "onyx.yaml")
                .unwrap_err()
                .to_string();
            assert!(err.contains(want), "{bad}: {err}");
            assert!(err.contains("onyx.yaml:29:"), "{bad}: {err}");
        }
        let gw = include_str!("../../../../../switch-drivers/mellanox-gateway.yaml").replace(
            "verified: false\n",
            "verified: false\nport_names: {pattern: \".+\", example: \"x\"}\n",
        );
        let err = parse_profile(&gw, "gw.yaml").unwrap_err().to_string();
        assert!(err.contains("port_names in a gateway profile"), "{err}");
    }

    /// `read.ports` refuses what could take one port's block for another's: short forms that
    /// clash, and `read.port` fields with `absent:` defaults (a block cut short would read as a
    /// default port).
    #[test]
    fn read_ports_refuses_what_could_mix_up_ports() {
        let ios = include_str!("../../../../../switch-drivers/cisco-ios.yaml");
        assert!(parse_profile(ios, "ios.yaml").unwrap().read_ports.is_some());
        let clash = ios.replace("TenGigabitEthernet: Te,", "TenGigabitEthernet: Gi,");
        let err = parse_profile(&clash, "ios.yaml").unwrap_err().to_string();
        assert!(
            err.contains(
                "read.ports.short: `TenGigabitEthernet: Gi` clashes with `GigabitEthernet: Gi`"
            ) || err.contains(
                "read.ports.short: `GigabitEthernet: Gi` clashes with `TenGigabitEthernet: Gi`"
            ),
            "{err}"
        );
        let absent = ios.replace(
            "access_vlan: {pattern: \"(?m)^Access Mode VLAN: (\\\\d+)\", default: 1}",
            "access_vlan: {pattern: \"(?m)^Access Mode VLAN: (\\\\d+)\", default: 1, absent: 1}",
        );
        assert_ne!(absent, ios, "the access_vlan line was found");
        let err = parse_profile(&absent, "ios.yaml").unwrap_err().to_string();
        assert!(
            err.contains("`read.ports` needs `read.port` fields without `absent:` defaults"),
            "{err}"
        );
    }

    /// `batch:` mistakes are named, never dropped (a profile read without its batch would send
    /// an operation per command and say nothing).
    #[test]
    fn batch_mistakes_are_named() {
        let ovs = include_str!("../../../../../switch-drivers/openvswitch.yaml");
        let b = parse_profile(ovs, "ovs.yaml").unwrap().batch.unwrap();
        assert_eq!(
            b.combine(&["ovs-vsctl a".into(), "ovs-vsctl b".into()])
                .as_deref(),
            Some("ovs-vsctl -- a -- b")
        );
        assert_eq!(b.combine(&["ovs-vsctl a".into(), "ip link".into()]), None);
        for (bad, want) in [
            ("max: 0", "batch.max 0 is not 1..10000"),
            ("max: 20000", "batch.max 20000 is not 1..10000"),
            ("max: many", "batch.max is not a number"),
        ] {
            let text = ovs.replace("max: 200", bad);
            let err = parse_profile(&text, "ovs.yaml").unwrap_err().to_string();
            assert!(err.contains(want), "{bad}: {err}");
        }
        let err = parse_profile(&ovs.replace("join: \" -- \", ", ""), "ovs.yaml")
            .unwrap_err()
            .to_string();
        assert!(err.contains("join"), "{err}");
    }

    /// `range:` mistakes are named, never dropped; the shipped Cisco profiles write their
    /// vendors' forms.
    #[test]
    fn range_mistakes_are_named() {
        let set = DriverSet::builtin();
        let nx = set.get("cisco-nxos").unwrap().range.clone().unwrap();
        assert_eq!(
            nx.line(&["Ethernet1/2", "Ethernet1/1", "Ethernet1/3"])
                .unwrap(),
            "interface Ethernet1/1-3"
        );
        assert_eq!(nx.line(&["Ethernet1/1", "Ethernet1/7"]), None);
        assert_eq!(nx.line(&["Ethernet1/49/1", "Ethernet1/49/2"]), None);
        let ios = set.get("cisco-ios").unwrap().range.clone().unwrap();
        assert_eq!(
            ios.line(&["GigabitEthernet1/0/1", "GigabitEthernet1/0/2"])
                .unwrap(),
            "interface range GigabitEthernet1/0/1 - 2"
        );
        assert_eq!(ios.line(&["Po1", "Po2"]), None);
        let text = include_str!("../../../../../switch-drivers/cisco-nxos.yaml");
        let line = "  run: \"{first}-{last_number}\"\n";
        assert!(text.contains(line));
        for (from, to, want) in [
            (line, "  run: \"{first}-{last}-{last_number}\"\n", "range.run: `{first}-{last}-{last_number}` must have {first} and {last} or {last_number} once"),
            (line, "  run: \"{first}-{port}\"\n", "range.run: `{first}-{port}` must have"),
            ("  ranged: \"interface {ports}\"", "  ranged: \"interface {port}\"", "range.ranged: `interface {port}` must have {ports} once"),
            ("  context: \"interface {port}\"", "  context: \"int {port}\"", "range.context `int {port}` is the first line of no port operation"),
            ("  max_ports: 48", "  max_ports: 1", "range.max_ports 1 is not 2..1000"),
            ("  max_ports: 48", "  max_ports: 48\n  max_line: 20000", "range.max_line 20000 is not 40..1000"),
            ("  max_ports: 48", "  max_ports: 48\n  max_items: 5", "range lacks `join`"),
            ("  max_ports: 48", "  max_ports: 48\n  joint: \",\"", "unknown key `joint` in range"),
            ("  members: \"((?i:Ethernet|Eth)\\\\d+/)(\\\\d+)\"", "  members: \"(?i:Ethernet|Eth)\\\\d+/\\\\d+\"", "range.members: `(?i:Ethernet|Eth)\\d+/\\d+` needs two groups"),
            ("  members: \"((?i:Ethernet|Eth)\\\\d+/)(\\\\d+)\"", "  members: \"((\"", "range.members: `((` is not a regex"),
            ("\nrange:", "\nbatch: {prefix: \"x \", join: \" -- \"}\nrange:", "a profile has `batch:` or `range:`, not both"),
        ] {
            assert!(text.contains(from), "{from}");
            let err = parse_profile(&text.replacen(from, to, 1), "nx.yaml")
                .unwrap_err()
                .to_string();
            assert!(err.contains(want), "{to}: {err}");
            assert!(err.contains("nx.yaml:"), "{to}: {err}");
        }
    }

    /// `vlan_lists:` writes several VLANs in one line, sorted, only for the operations it names
    /// and up to its `max`; its mistakes are named.
    #[test]
    fn vlan_lists_are_written_and_their_mistakes_named() {
        let text = include_str!("../../../../../switch-drivers/cisco-ios.yaml");
        let p = parse_profile(text, "ios.yaml").unwrap();
        let v = |n: u64| VlanId::new(n).unwrap();
        assert_eq!(
            p.render_list(OpKind::TrunkRemove, "Gi1/0/1", "x", &[v(30), v(10), v(20)]),
            Some(vec![
                "interface Gi1/0/1".to_string(),
                "switchport trunk allowed vlan remove 10,20,30".to_string(),
                "exit".to_string()
            ])
        );
        assert_eq!(
            p.render_list(OpKind::TrunkAdd, "Gi1/0/1", "x", &[v(10)]),
            None
        );
        assert_eq!(
            p.render_list(OpKind::AccessSet, "Gi1/0/1", "x", &[v(10), v(11)]),
            None
        );
        let many: Vec<VlanId> = (100..133).map(v).collect();
        assert_eq!(p.render_list(OpKind::TrunkAdd, "Gi1/0/1", "x", &many), None);
        assert!(p
            .render_list(OpKind::TrunkAdd, "Gi1/0/1", "x", &many[..32])
            .is_some());
        let line = "vlan_lists: {ops: [trunk_add, trunk_remove, tagged_add, tagged_remove], join: \",\", max: 32}";
        assert!(text.contains(line));
        for (to, want) in [
            (
                "vlan_lists: {ops: [access_set]}",
                "vlan_lists.ops: `access_set` cannot take a VLAN list",
            ),
            (
                "vlan_lists: {ops: [trunk_add], max: 1}",
                "vlan_lists.max 1 is not 2..256",
            ),
            (
                "vlan_lists: {ops: [trunk_add], join: \"{\"}",
                "vlan_lists.join must be text",
            ),
            (
                "vlan_lists: {ops: [trunk_add], joint: \",\"}",
                "unknown key `joint` in vlan_lists",
            ),
        ] {
            let err = parse_profile(&text.replacen(line, to, 1), "ios.yaml")
                .unwrap_err()
                .to_string();
            assert!(err.contains(want), "{to}: {err}");
        }
        let twice = text.replacen(
            "trunk_add: [\"interface {port}\", \"switchport trunk allowed vlan add {vlan}\", \"exit\"]",
            "trunk_add: [\"interface {port}\", \"switchport trunk allowed vlan add {vlan}\", \"description {vlan}\"]",
            1,
        );
        let err = parse_profile(&twice, "ios.yaml").unwrap_err().to_string();
        assert!(
            err.contains("trunk_add must have {vlan} in exactly one line (it has it in 2)"),
            "{err}"
        );
    }

    /// jobnetd's read queue sends only a profile's reads: its VLAN table, one port with a port
    /// name where `{port}` is, all ports.
    #[test]
    fn only_reads_are_reads() {
        let set = DriverSet::builtin();
        let eos = set.get("arista-eos").unwrap();
        assert!(eos.is_read("show vlan"));
        assert!(eos.is_read("show interfaces Ethernet5 switchport"));
        assert!(eos.is_read("show interfaces Port-Channel3 switchport"));
        for not in [
            "configure terminal",
            "show interfaces  switchport",
            "show interfaces Ethernet1;reload switchport",
            "show interfaces Ethernet1 switchport | json",
            "show interfaces Ethernet1 Ethernet2 switchport",
            "vlan 101",
        ] {
            assert!(!eos.is_read(not), "{not}");
        }
        let ios = set.get("cisco-ios").unwrap();
        assert!(ios.is_read("show interfaces switchport"));
        assert!(ios.is_read("show vlan brief"));
    }

    /// The gateway's proxy-arp syntax is not yet found in a vendor source: plans say so.
    #[test]
    fn the_gateway_profile_stays_unverified() {
        assert!(
            !DriverSet::builtin()
                .get("mellanox-gateway")
                .unwrap()
                .verified
        );
    }
}
