//! Reading and validating a topology file.
//!
//! Works in two passes over the span tree from [`crate::base::yaml`]: first every entry is read into
//! typed values (reporting unknown keys, malformed values, hostlist/port-range mismatches), then
//! cross-entry rules are checked (duplicate names, ports used twice, unknown switches, pools,
//! reachability). Every problem is collected; the caller gets all errors of a file at once.

use super::*;
use crate::base::diag::{suggestion, Diagnostic, Diagnostics, Loc};
use crate::base::hostlist::{self, Hostlist};
use crate::base::limits;
use crate::base::types::{check_word, PKey, PortGuid, PortRef, RangeSet, VlanId, NAME_PUNCT};
use crate::base::yaml::{self, Kind, Node as Y};
use crate::drivers::{DeviceKind, DriverSet};
use std::collections::{BTreeMap, HashMap};
use std::ops::ControlFlow;
use std::path::Path;

/// A loaded topology with the warnings found in it.
#[derive(Debug)]
pub struct Loaded {
    pub topology: Topology,
    /// The topology's switch graph, built once by the reachability check.
    pub graph: SwitchGraph,
    pub warnings: Vec<Diagnostic>,
}

#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("{}", file_message(.0))]
    File(#[from] crate::base::limits::FileError),
    /// Every diagnostic of the file, errors and warnings, sorted by position.
    #[error("{}", render(.0))]
    Invalid(Vec<Diagnostic>),
}

fn file_message(e: &crate::base::limits::FileError) -> String {
    match e {
        crate::base::limits::FileError::Io { path, source } => {
            format!("cannot read topology file {path}: {source}")
        }
        other => format!("topology file {other}"),
    }
}

fn render(d: &[Diagnostic]) -> String {
    crate::base::diag::lines(d)
}

/// Reads and validates the topology at `path`.
pub fn load(path: &Path, drivers: &DriverSet) -> Result<Loaded, LoadError> {
    let text = crate::base::limits::read_text(path, crate::base::limits::TOPOLOGY)?;
    parse(&text, &path.display().to_string(), drivers)
}

const TOP_KEYS: &[&str] = &[
    "name",
    "ethernet",
    "infiniband",
    "switches",
    "links",
    "nodes",
    "gateways",
];
const ETH_KEYS: &[&str] = &[
    "vlan_pool",
    "reserved_vlans",
    "node_port_mode",
    "open_ports",
];
const IB_KEYS: &[&str] = &[
    "pkey_pool",
    "partitions_conf",
    "reload",
    "reload_window_ms",
    "verify",
    "partition_flags",
    "standby_sms",
];
const SWITCH_KEYS: &[&str] = &["name", "driver", "address", "credentials", "ssh_legacy"];
const LINK_KEYS: &[&str] = &["a", "b", "cost", "state", "lag"];
const NODE_KEYS: &[&str] = &["name", "port", "ib_guids"];
const GATEWAY_KEYS: &[&str] = &[
    "name",
    "driver",
    "address",
    "credentials",
    "ssh_legacy",
    "ethernet_port",
    "ib_guid",
];
/// Keys that look like someone is about to put a secret into the topology.
const SECRET_KEYS: &[&str] = &[
    "password",
    "passwd",
    "secret",
    "community",
    "private_key",
    "token",
    "key",
    "enable_password",
];

/// Parses and validates topology text; `file` is used in messages.
pub fn parse(text: &str, file: &str, drivers: &DriverSet) -> Result<Loaded, LoadError> {
    let mut d = Diagnostics::new(file);
    let root = match yaml::parse_all_errors(text) {
        Ok(Some(root)) => root,
        Ok(None) => {
            d.error(
                Loc { line: 1, col: 1 },
                "the topology file is empty",
                "see topology/ for examples and docs/topology.md",
            );
            return Err(LoadError::Invalid(d.sorted()));
        }
        Err(errors) => {
            for e in errors {
                d.error(e.loc, e.message, "fix the YAML syntax at that position");
            }
            return Err(LoadError::Invalid(d.sorted()));
        }
    };
    let mut reader = Reader {
        d: &mut d,
        drivers,
        switches_incomplete: false,
        over_budget: false,
    };
    let read = reader.read(&root, file);
    // The checks across entries work on the model: the tree (a third of the memory of a large
    // file) goes first.
    drop(root);
    let checked = read.map(|(mut t, has_ib_section)| {
        let graph = reader.cross_checks(&mut t, has_ib_section);
        (t, graph)
    });
    match checked {
        Some((topology, Some(graph))) if !d.has_errors() => {
            let warnings = d.sorted();
            Ok(Loaded {
                topology,
                graph,
                warnings,
            })
        }
        _ => Err(LoadError::Invalid(d.sorted())),
    }
}

struct Reader<'a> {
    d: &'a mut Diagnostics,
    drivers: &'a DriverSet,
    /// The `switches` section or one of its entries could not be read (the error is recorded):
    /// then a reference to a switch that is not known is not reported again — one mistake, one
    /// error, not one per link and node.
    switches_incomplete: bool,
    /// The `nodes` entries name more than [`limits::NODES`] nodes in all (the error is
    /// recorded): no entry is expanded, each is still checked.
    over_budget: bool,
}

/// The key/value pairs of a mapping, after unknown keys were reported.
struct Fields<'n> {
    pairs: &'n [(Y, Y)],
    loc: Loc,
}

impl<'n> Fields<'n> {
    fn get(&self, key: &str) -> Option<&'n Y> {
        yaml::get(self.pairs, key)
    }
}

/// Who uses a port or a GUID, for messages; written out only when there is one to write.
#[derive(Clone, Copy)]
enum User<'t> {
    /// A link end, by its other end.
    Link(&'t PortRef),
    Node(&'t str),
    Gateway(&'t str),
}

impl std::fmt::Display for User<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            User::Link(other) => write!(f, "link to {other}"),
            User::Node(n) => write!(f, "node {n}"),
            User::Gateway(g) => write!(f, "gateway {g}"),
        }
    }
}

impl Reader<'_> {
    fn fields<'n>(&mut self, node: &'n Y, what: &str, allowed: &[&str]) -> Option<Fields<'n>> {
        let pairs = yaml::mapping(self.d, node, what, "write `key: value` lines")?;
        // A secret (`password:`) gets its own message, never "unknown key".
        let secrets: Vec<(String, Loc)> = yaml::unknown_keys(pairs, allowed)
            .filter(|(k, _)| SECRET_KEYS.contains(&k.to_ascii_lowercase().as_str()))
            .map(|(k, l)| (k.to_string(), l))
            .collect();
        for (key, kloc) in &secrets {
            self.d.error(
                *kloc,
                format!("`{key}` in {what}: secrets never go into topology files"),
                "put it in the credentials file and refer to it with `credentials: NAME` (docs/topology.md)",
            );
        }
        yaml::report_unknown(self.d, pairs, allowed, what, &|k, _| {
            secrets.iter().any(|(s, _)| s == k)
        });
        Some(Fields {
            pairs,
            loc: node.loc,
        })
    }

    /// A required, non-empty scalar.
    fn req_str<'n>(&mut self, f: &Fields<'n>, key: &str, what: &str) -> Option<(&'n str, Loc)> {
        match f.get(key) {
            None => {
                self.d.error(
                    f.loc,
                    format!("{what} lacks `{key}`"),
                    format!("add `{key}: ...`"),
                );
                None
            }
            // Worded only for a message: this runs for every entry of a large file.
            Some(v) => self.scalar(v, format_args!("`{key}` of {what}")),
        }
    }

    fn scalar<'n>(&mut self, v: &'n Y, what: impl std::fmt::Display) -> Option<(&'n str, Loc)> {
        match v.as_str() {
            Some(s) if !v.is_null() => Some((s, v.loc)),
            _ => {
                self.d.error(
                    v.loc,
                    format!("{what} must be a single value, found {}", v.kind_name()),
                    if v.is_null() {
                        "write its value after the colon"
                    } else {
                        "write one value, not a list or mapping (ranges and lists of numbers are text: \"1000-1999,2100\")"
                    },
                );
                None
            }
        }
    }

    fn seq<'n>(&mut self, v: &'n Y, what: &str) -> &'n [Y] {
        match &v.kind {
            Kind::Seq(items) => items,
            _ if v.is_null() => &[],
            _ => {
                self.d.error(
                    v.loc,
                    format!("{what} must be a list, found {}", v.kind_name()),
                    "write `- item` lines or `[a, b]`",
                );
                &[]
            }
        }
    }

    fn word(&mut self, what: &str, text: &str, loc: Loc) -> Option<String> {
        self.word_ok(what, text, loc).then(|| text.to_string())
    }

    /// Whether `text` is a name (the error is recorded when not).
    fn word_ok(&mut self, what: &str, text: &str, loc: Loc) -> bool {
        match check_word(what, text, NAME_PUNCT, 64) {
            Ok(()) => true,
            Err(e) => {
                self.d
                    .error(loc, e.0, "use letters, digits, `-`, `_` and `.`");
                false
            }
        }
    }

    fn port(&mut self, text: &str, loc: Loc) -> Option<PortRef> {
        match PortRef::parse(text) {
            Ok(p) => Some(p),
            Err(e) => {
                self.d.error(
                    loc,
                    e.0,
                    "write SWITCH:PORT with letters, digits and `-_./:`",
                );
                None
            }
        }
    }

    fn address(&mut self, text: &str, loc: Loc) -> Option<String> {
        let ok = if text.parse::<std::net::SocketAddr>().is_ok()
            || text.parse::<std::net::IpAddr>().is_ok()
        {
            true
        } else {
            let (host, port) = match text.rsplit_once(':') {
                Some((h, p)) => (h, Some(p)),
                None => (text, None),
            };
            let port_ok = port.is_none_or(|p| p.parse::<u16>().is_ok_and(|n| n > 0));
            port_ok && check_word("host", host, "-.", 253).is_ok()
        };
        if ok {
            Some(text.to_string())
        } else {
            self.d.error(
                loc,
                format!(
                    "address `{}` is not a host or host:port",
                    text.escape_debug()
                ),
                "write e.g. 192.0.2.1, leaf1.example.org or [2001:db8::1]:22",
            );
            None
        }
    }

    fn driver(&mut self, text: &str, loc: Loc, want: DeviceKind, owner: &str) -> Option<String> {
        match self.drivers.get(text) {
            Some(p) if p.kind == want => Some(text.to_string()),
            Some(_) => {
                let expected = if want == DeviceKind::Ethernet {
                    "an Ethernet switch"
                } else {
                    "a gateway"
                };
                self.d.error(
                    loc,
                    format!("driver `{text}` of {owner} is not a profile for {expected}"),
                    "pick a profile of the right kind from switch-drivers/",
                );
                None
            }
            None => {
                let hint = suggestion(text, self.drivers.names());
                let known: Vec<&str> = self.drivers.names().collect();
                let help = if hint.is_empty() {
                    format!("known profiles: {}", known.join(", "))
                } else {
                    hint
                };
                self.d.error(
                    loc,
                    format!("unknown driver profile `{text}` for {owner}"),
                    help,
                );
                None
            }
        }
    }

    /// The model of the file, read entry by entry, and whether it has an `infiniband` section
    /// (for the checks across entries).
    fn read(&mut self, root: &Y, file: &str) -> Option<(Topology, bool)> {
        let top = self.fields(root, "the topology", TOP_KEYS)?;
        let name = match top.get("name") {
            Some(v) => self
                .scalar(v, "`name`")
                .map(|(s, _)| s.to_string())
                .unwrap_or_default(),
            None => Path::new(file)
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_default(),
        };
        let ethernet = top.get("ethernet").and_then(|v| self.ethernet(v));
        let infiniband = top.get("infiniband").and_then(|v| self.infiniband(v));
        let written = top.get("switches").map(|v| match &v.kind {
            Kind::Seq(items) => items.len(),
            _ if v.is_null() => 0,
            _ => usize::MAX,
        });
        let switches = self.list(&top, "switches", |r, y| r.switch(y));
        self.switches_incomplete = written.is_some_and(|n| n != switches.len());
        let links = self.list(&top, "links", |r, y| r.link(y));
        let named = top.get("nodes").map_or(0, |n| self.count_nodes(n));
        let mut nodes: Vec<Node> = Vec::with_capacity(named);
        if let Some(v) = top.get("nodes") {
            for entry in self.seq(v, "`nodes`") {
                self.nodes(entry, &mut nodes);
            }
        }
        let gateways = self.list(&top, "gateways", |r, y| r.gateway(y));
        self.sections(&top, &nodes);
        let t = Topology {
            name,
            file: file.to_string(),
            ethernet,
            infiniband,
            switches,
            links,
            nodes,
            gateways,
            switch_index: PosIndex::default(),
            node_index: PosIndex::default(),
        };
        Some((t, top.get("infiniband").is_some()))
    }

    /// Which sections a fabric needs: `ethernet` with switches (and a port for every node), or
    /// an InfiniBand-only fabric with `infiniband` and nodes without ports.
    fn sections(&mut self, top: &Fields, nodes: &[Node]) {
        let eth = top.get("ethernet").is_some();
        if !eth && top.get("infiniband").is_none() {
            self.d.error(
                top.loc,
                "the topology has neither an `ethernet` nor an `infiniband` section",
                "add `ethernet: {vlan_pool: \"1000-1999\"}` (and switches), or `infiniband: {pkey_pool: \"0x1000-0x1fff\"}` for an InfiniBand-only fabric",
            );
        }
        if eth && top.get("switches").is_none() {
            self.d.error(
                top.loc,
                "the topology lacks `switches`",
                "list the fabric's switches",
            );
        }
        if !eth {
            for key in ["switches", "links", "gateways"] {
                if let Some(v) = top.get(key) {
                    self.d.error(
                        v.loc,
                        format!("`{key}` needs an `ethernet` section"),
                        "add `ethernet: {vlan_pool: \"1000-1999\"}`, or remove them for an InfiniBand-only fabric",
                    );
                }
            }
        }
        // One message per `nodes` entry, however many nodes it expands to.
        let mut entries: BTreeMap<(usize, usize), (Loc, bool, Vec<&str>)> = BTreeMap::new();
        for n in nodes.iter().filter(|n| n.port.is_some() != eth) {
            entries
                .entry((n.loc.line, n.loc.col))
                .or_insert((n.loc, n.port.is_some(), Vec::new()))
                .2
                .push(&n.name);
        }
        for (loc, has_port, names) in entries.into_values() {
            let names = hostlist::fold(&names);
            if has_port {
                self.d.error(
                    loc,
                    format!(
                        "node(s) {names} have a `port` but the topology has no `ethernet` section"
                    ),
                    "add the ethernet section and its switches, or remove the ports",
                );
            } else {
                self.d.error(
                    loc,
                    format!("node(s) {names} have no `port`"),
                    "give the switch ports facing them, e.g. `port: leaf1:Ethernet[1-4]` (only an InfiniBand-only topology, without `ethernet`, has nodes without ports)",
                );
            }
        }
    }

    fn list<T>(
        &mut self,
        top: &Fields,
        key: &str,
        mut each: impl FnMut(&mut Self, &Y) -> Option<T>,
    ) -> Vec<T> {
        let Some(v) = top.get(key) else {
            return Vec::new();
        };
        let items = self.seq(v, &format!("`{key}`"));
        items.iter().filter_map(|y| each(self, y)).collect()
    }

    fn ethernet(&mut self, v: &Y) -> Option<Ethernet> {
        let f = self.fields(v, "`ethernet`", ETH_KEYS)?;
        let (pool_text, loc) = self.req_str(&f, "vlan_pool", "`ethernet`")?;
        let vlan_pool = self.ranges(
            pool_text,
            loc,
            VlanId::MIN,
            VlanId::MAX,
            "VLAN",
            "vlan_pool",
        )?;
        let reserved_vlans = match f.get("reserved_vlans") {
            Some(r) => {
                let (text, rloc) = self.scalar(r, "`reserved_vlans`")?;
                self.ranges(
                    text,
                    rloc,
                    VlanId::MIN,
                    VlanId::MAX,
                    "VLAN",
                    "reserved_vlans",
                )?
            }
            None => RangeSet::default(),
        };
        let node_port_mode = match f.get("node_port_mode").map(|m| (m.as_str(), m.loc)) {
            None => PortMode::Tagged,
            Some((Some("tagged"), _)) => PortMode::Tagged,
            Some((Some("access"), _)) => PortMode::Access,
            Some((other, mloc)) => {
                self.d.error(
                    mloc,
                    format!("node_port_mode `{}` is unknown", other.unwrap_or("")),
                    "write `tagged` (VM/container passthrough) or `access`",
                );
                PortMode::Tagged
            }
        };
        let open_ports = match f.get("open_ports").map(|m| (m.as_str(), m.loc)) {
            None | Some((Some("refuse"), _)) => OpenPorts::Refuse,
            Some((Some("restrict"), _)) => OpenPorts::Restrict,
            Some((other, mloc)) => {
                self.d.error(
                    mloc,
                    format!("open_ports `{}` is unknown", other.unwrap_or("")),
                    "write `refuse` (default: a port allowing every VLAN fails the job) or `restrict` (docs/topology.md)",
                );
                OpenPorts::Refuse
            }
        };
        Some(Ethernet {
            vlan_pool,
            reserved_vlans,
            node_port_mode,
            open_ports,
            loc,
        })
    }

    fn ranges(
        &mut self,
        text: &str,
        loc: Loc,
        lo: u64,
        hi: u64,
        what: &str,
        key: &str,
    ) -> Option<RangeSet> {
        match RangeSet::parse(text, lo, hi, what) {
            Ok(r) => Some(r),
            Err(e) => {
                let example = if what == "PKey" {
                    "\"0x1000-0x1fff\""
                } else {
                    "\"1000-1999,2100\""
                };
                self.d.error(
                    loc,
                    format!("{key}: {}", e.0),
                    format!("write comma-separated values and ranges, e.g. {example}"),
                );
                None
            }
        }
    }

    /// The `infiniband` section.
    fn infiniband(&mut self, v: &Y) -> Option<Infiniband> {
        let f = self.fields(v, "`infiniband`", IB_KEYS)?;
        let (pool_text, loc) = self.req_str(&f, "pkey_pool", "`infiniband`")?;
        let pkey_pool = self.ranges(pool_text, loc, PKey::MIN, PKey::MAX, "PKey", "pkey_pool")?;
        let partitions_conf = self.partitions_conf(&f)?;
        let reload = f.get("reload").and_then(|r| self.reload(r));
        let reload_window_ms = self.reload_window(&f);
        let (verify_command, verify_timeout_ms) = self.verify(&f);
        let partition_flags = self.partition_flags(&f);
        let standbys = self.standby_sms(&f, &partitions_conf);
        Some(Infiniband {
            pkey_pool,
            partitions_conf,
            partition_flags,
            standbys,
            reload,
            reload_window_ms,
            verify_command,
            verify_timeout_ms,
            loc,
        })
    }

    /// `infiniband.partitions_conf`: an absolute path, /etc/opensm/partitions.conf when not given.
    fn partitions_conf(&mut self, f: &Fields) -> Option<String> {
        let Some(p) = f.get("partitions_conf") else {
            return Some("/etc/opensm/partitions.conf".to_string());
        };
        let (text, ploc) = self.scalar(p, "`partitions_conf`")?;
        if !text.starts_with('/') || text.chars().any(|c| c.is_control()) {
            self.d.error(
                ploc,
                format!(
                    "partitions_conf `{}` is not an absolute path",
                    text.escape_debug()
                ),
                "write e.g. /etc/opensm/partitions.conf",
            );
            return None;
        }
        Some(text.to_string())
    }

    /// `infiniband.reload_window_ms`: 0..60000, 200 when not given or invalid.
    fn reload_window(&mut self, f: &Fields) -> u64 {
        let Some(n) = f.get("reload_window_ms") else {
            return 200;
        };
        match n.as_str().map(crate::base::types::parse_number) {
            Some(Ok(v)) if v <= 60_000 => v,
            _ => {
                self.d.error(
                    n.loc,
                    "reload_window_ms must be a whole number 0..60000",
                    "e.g. `reload_window_ms: 200`",
                );
                200
            }
        }
    }

    /// `infiniband.verify`: the command (naming the port with `{guid}`) and its timeout in ms.
    fn verify(&mut self, f: &Fields) -> (Option<String>, u64) {
        let (mut verify_command, mut verify_timeout_ms) = (None, 5000);
        let Some(v) = f.get("verify") else {
            return (verify_command, verify_timeout_ms);
        };
        let Some(vf) = self.fields(v, "`infiniband.verify`", &["command", "timeout_ms"]) else {
            return (verify_command, verify_timeout_ms);
        };
        match vf
            .get("command")
            .and_then(|c| self.scalar(c, "`verify.command`"))
        {
            Some((c, _)) if c.contains("{guid}") && !c.chars().any(char::is_control) => {
                verify_command = Some(c.to_string())
            }
            Some((_, l)) => self.d.error(
                l,
                "verify.command must name the port with `{guid}`",
                "e.g. `smpquery -G pkeys {guid} 1`",
            ),
            None => {}
        }
        if let Some(t) = vf.get("timeout_ms") {
            match t.as_str().map(crate::base::types::parse_number) {
                Some(Ok(v)) if (1..=600_000).contains(&v) => verify_timeout_ms = v,
                _ => self.d.error(
                    t.loc,
                    "verify.timeout_ms must be 1..600000",
                    "e.g. `timeout_ms: 5000`",
                ),
            }
        }
        (verify_command, verify_timeout_ms)
    }

    /// `infiniband.partition_flags` as `key=value` header flags, each value checked.
    fn partition_flags(&mut self, f: &Fields) -> Vec<String> {
        let mut partition_flags = Vec::new();
        let Some(pf) = f.get("partition_flags") else {
            return partition_flags;
        };
        let Some(ff) = self.fields(
            pf,
            "`infiniband.partition_flags`",
            &["mtu", "rate", "sl", "defmember"],
        ) else {
            return partition_flags;
        };
        for (k, v) in ff.pairs {
            let key = k.as_str().unwrap_or_default();
            let Some((val, vl)) = self.scalar(v, format_args!("`partition_flags.{key}`")) else {
                continue;
            };
            let ok = match key {
                // IB MTU codes 1..5 (256..4096 bytes), rate codes 2..21, service levels 0..15.
                "mtu" => val.parse::<u8>().is_ok_and(|n| (1..=5).contains(&n)),
                "rate" => val.parse::<u8>().is_ok_and(|n| (2..=21).contains(&n)),
                "sl" => val.parse::<u8>().is_ok_and(|n| n <= 15),
                _ => ["full", "limited", "both"].contains(&val),
            };
            if ok {
                partition_flags.push(format!("{key}={val}"));
            } else {
                let want = match key {
                    "mtu" => "an IB MTU code 1..5 (4 = 2048 bytes)",
                    "rate" => "an IB rate code 2..21",
                    "sl" => "a service level 0..15",
                    _ => "full, limited or both",
                };
                self.d.error(
                    vl,
                    format!("partition_flags.{key} `{val}` is not valid"),
                    format!("give {want}"),
                );
            }
        }
        partition_flags
    }

    /// `infiniband.standby_sms`: the valid entries; `partitions_conf` is their default path.
    fn standby_sms(&mut self, f: &Fields, partitions_conf: &str) -> Vec<Standby> {
        let Some(list) = f.get("standby_sms") else {
            return Vec::new();
        };
        self.seq(list, "`infiniband.standby_sms`")
            .iter()
            .filter_map(|item| self.standby(item, partitions_conf))
            .collect()
    }

    /// One standby SM entry; `None` (with the error recorded) when it is unusable.
    fn standby(&mut self, item: &Y, partitions_conf: &str) -> Option<Standby> {
        let sf = self.fields(
            item,
            "a standby SM",
            &[
                "name",
                "address",
                "credentials",
                "ssh_legacy",
                "partitions_conf",
            ],
        )?;
        let (name, nl) = self.req_str(&sf, "name", "a standby SM")?;
        let name = self.word("standby SM name", name, nl)?;
        let address = self
            .req_str(&sf, "address", "a standby SM")
            .and_then(|(t, l)| self.address(t, l))?;
        let credentials = self.credentials(&sf);
        let ssh_legacy = self.legacy(&sf);
        let path = match sf
            .get("partitions_conf")
            .and_then(|n| self.scalar(n, "`partitions_conf`"))
        {
            None => partitions_conf.to_string(),
            Some((p, _)) if crate::base::types::safe_path(p) => p.to_string(),
            Some((p, pl)) => {
                self.d.error(pl, format!("standby partitions_conf `{}` is not an absolute path of letters, digits and /._-", p.escape_debug()), "e.g. /etc/opensm/partitions.conf");
                return None;
            }
        };
        Some(Standby {
            name,
            address,
            credentials,
            ssh_legacy,
            partitions_conf: path,
        })
    }

    fn reload(&mut self, node: &Y) -> Option<Reload> {
        let f = self.fields(
            node,
            "`infiniband.reload`",
            &["pidfile", "systemd_unit", "command"],
        )?;
        if f.pairs.len() != 1 {
            self.d.error(
                f.loc,
                "infiniband.reload needs exactly one of pidfile, systemd_unit, command",
                "e.g. `reload: {pidfile: /run/opensm.pid}`",
            );
            return None;
        }
        let (k, v) = &f.pairs[0];
        let (text, loc) = self.scalar(v, "the reload method")?;
        match k.as_str().unwrap_or_default() {
            "pidfile" if text.starts_with('/') && !text.chars().any(char::is_control) => {
                Some(Reload::Pidfile(text.into()))
            }
            "pidfile" => {
                self.d.error(
                    loc,
                    format!(
                        "reload pidfile `{}` is not an absolute path",
                        text.escape_debug()
                    ),
                    "e.g. /run/opensm.pid",
                );
                None
            }
            "systemd_unit" => match check_word("systemd unit", text, "-_.@:", 128) {
                Ok(()) => Some(Reload::SystemdUnit(text.into())),
                Err(e) => {
                    self.d.error(loc, e.0, "e.g. opensm@0x0002c903000abcd1");
                    None
                }
            },
            _ if text.chars().any(char::is_control) => {
                self.d.error(
                    loc,
                    "the reload command contains a control character",
                    "write it on one line",
                );
                None
            }
            _ => Some(Reload::Command(text.into())),
        }
    }

    fn credentials(&mut self, f: &Fields) -> Option<String> {
        let v = f.get("credentials")?;
        let (text, loc) = self.scalar(v, "`credentials`")?;
        self.word("credentials key", text, loc)
    }

    fn legacy(&mut self, f: &Fields) -> bool {
        match f.get("ssh_legacy").map(|n| (n.as_str(), n.loc)) {
            None | Some((Some("false"), _)) => false,
            Some((Some("true"), _)) => true,
            Some((other, l)) => {
                self.d.error(
                    l,
                    format!("`ssh_legacy: {}` is not true or false", other.unwrap_or("")),
                    "write `ssh_legacy: true` to allow old SSH algorithms for this device",
                );
                false
            }
        }
    }

    fn switch(&mut self, y: &Y) -> Option<Switch> {
        let f = self.fields(y, "a switch", SWITCH_KEYS)?;
        let (name, nloc) = self.req_str(&f, "name", "a switch")?;
        let name = self.word("switch name", name, nloc)?;
        let owner = format!("switch {name}");
        let driver = self
            .req_str(&f, "driver", &owner)
            .and_then(|(t, l)| self.driver(t, l, DeviceKind::Ethernet, &owner));
        let address = self
            .req_str(&f, "address", &owner)
            .and_then(|(t, l)| self.address(t, l));
        let credentials = self.credentials(&f);
        // Keep a switch with a bad driver or address (the error is recorded): dropping it would
        // make every link and node on it report an unknown switch as well.
        Some(Switch {
            name,
            driver: driver.unwrap_or_default(),
            address: address.unwrap_or_default(),
            credentials,
            ssh_legacy: self.legacy(&f),
            loc: nloc,
        })
    }

    fn link(&mut self, y: &Y) -> Option<Link> {
        let f = self.fields(y, "a link", LINK_KEYS)?;
        let a = self
            .req_str(&f, "a", "a link")
            .and_then(|(t, l)| self.port(t, l));
        let b = self
            .req_str(&f, "b", "a link")
            .and_then(|(t, l)| self.port(t, l));
        let cost = match f.get("cost") {
            None => 1,
            Some(c) => match c.as_str().map(crate::base::types::parse_number) {
                Some(Ok(n)) if (1..=1_000_000).contains(&n) => n,
                _ => {
                    self.d.error(
                        c.loc,
                        format!(
                            "link cost `{}` is not a whole number 1..1000000",
                            c.as_str().unwrap_or("")
                        ),
                        "write e.g. `cost: 10` (default 1)",
                    );
                    1
                }
            },
        };
        let up = match f.get("state").map(|s| (s.as_str(), s.loc)) {
            None | Some((Some("up"), _)) => true,
            Some((Some("down"), _)) => false,
            Some((other, l)) => {
                self.d.error(
                    l,
                    format!("link state `{}` is unknown", other.unwrap_or("")),
                    "write `up` or `down`",
                );
                true
            }
        };
        let lag = match f.get("lag").map(|s| (s.as_str(), s.loc)) {
            None | Some((Some("false"), _)) => false,
            Some((Some("true"), _)) => true,
            Some((other, l)) => {
                self.d.error(
                    l,
                    format!("`lag: {}` is not true or false", other.unwrap_or("")),
                    "write `lag: true` for a port-channel",
                );
                false
            }
        };
        let (a, b) = (a?, b?);
        if a.switch == b.switch {
            self.d.error(
                f.loc,
                format!("link {a} -- {b} joins switch {} to itself", a.switch),
                "a link must join two different switches",
            );
            return None;
        }
        Some(Link {
            a,
            b,
            cost,
            up,
            lag,
            loc: f.loc,
        })
    }

    /// One `nodes` entry, expanded onto the end of `out`: hostlist names zipped with the port
    /// range and GUIDs (`None`, and `out` as it was, when the entry cannot be read). Both
    /// hostlists are sized, paired and counted against the file's budget before either is
    /// expanded.
    fn nodes(&mut self, y: &Y, out: &mut Vec<Node>) -> Option<()> {
        let f = self.fields(y, "a nodes entry", NODE_KEYS)?;
        let (name_expr, nloc) = self.req_str(&f, "name", "a nodes entry")?;
        let port_field = match f.get("port") {
            Some(p) => Some(self.scalar(p, "`port`")?),
            None => None,
        };
        let names = match Hostlist::parse(name_expr) {
            Ok(n) => n,
            Err(e) => {
                self.d
                    .error(nloc, e.to_string(), "write a hostlist like cn[001-024]");
                return None;
            }
        };
        if names.len() > limits::NODES as u64 {
            return None; // more than a file may hold: `count_nodes` said so
        }
        let ports = match port_field {
            Some((text, ploc)) => Some((self.port_list(&names, text, ploc)?, ploc)),
            None => None,
        };
        if self.over_budget {
            return None;
        }
        let names = names.expand();
        let guids = self.node_guids(&f, name_expr, names.len())?;
        let (before, count) = (out.len(), names.len());
        out.reserve(count);
        let mut entry = names.into_iter().zip(guids);
        // Name by name, then its port: the first of either that is wrong is the entry's error.
        let mut add = |r: &mut Self, port: Option<&str>, ploc: Loc| {
            let (name, ib_guid) = entry.next().expect("names and ports are paired");
            if !r.word_ok("node name", &name, nloc) {
                return ControlFlow::Break(());
            }
            let port = match port.map(|p| r.port(p, ploc)) {
                Some(None) => return ControlFlow::Break(()),
                Some(p) => p,
                None => None,
            };
            out.push(Node {
                name,
                port,
                ib_guid,
                loc: nloc,
            });
            ControlFlow::Continue(())
        };
        let flow = match ports {
            // Ports are parsed as they are made: no `String` per port before its `PortRef`.
            Some((ports, ploc)) => ports.each(|p| add(self, Some(p), ploc)),
            None => (0..count).try_for_each(|_| add(self, None, nloc)),
        };
        if flow.is_break() {
            out.truncate(before);
            return None;
        }
        Some(())
    }

    /// The `port` hostlist of a nodes entry, parsed and paired with its `names` (not expanded).
    fn port_list<'t>(&mut self, names: &Hostlist, text: &'t str, loc: Loc) -> Option<Hostlist<'t>> {
        let ports = match Hostlist::parse(text) {
            Ok(p) => p,
            Err(e) => {
                self.d.error(
                    loc,
                    e.to_string(),
                    "write a port range like leaf1:Ethernet[1-24]",
                );
                return None;
            }
        };
        if ports.len() != names.len() {
            self.d.error(
                loc,
                format!(
                    "`{}` names {} nodes but `{text}` names {} ports",
                    names.expr(),
                    names.len(),
                    ports.len()
                ),
                "nodes and ports are paired one to one; make both ranges the same length",
            );
            return None;
        }
        Some(ports)
    }

    /// Counts the nodes of every `nodes` entry, before any is expanded: the entry that takes
    /// the total past [`limits::NODES`] is reported, and then none is expanded, so six
    /// `n[1-1000000]` hostlists in a 756-byte file cost a message, not seconds and gigabytes.
    /// Entries that cannot be read are left to [`Reader::nodes`] to report. Returns the
    /// nodes named, 0 past the bound.
    fn count_nodes(&mut self, entries: &Y) -> usize {
        let Kind::Seq(items) = &entries.kind else {
            return 0;
        };
        let mut total = 0u64;
        for item in items {
            let Some(name) = item.pairs().and_then(|p| yaml::get(p, "name")) else {
                continue;
            };
            let Some(list) = name.as_str().and_then(|t| Hostlist::parse(t).ok()) else {
                continue;
            };
            let before = total;
            total = total.saturating_add(list.len());
            if total > limits::NODES as u64 {
                self.too_many_nodes(&list, before, total, name.loc);
                return 0;
            }
        }
        total as usize
    }

    /// The entry `list` at `loc` takes the file from `before` nodes to `total`, past the bound.
    fn too_many_nodes(&mut self, list: &Hostlist, before: u64, total: u64, loc: Loc) {
        let count = |n: u64| match n {
            u64::MAX => format!("at least {n}"),
            n => n.to_string(),
        };
        let file = if before == 0 {
            String::new()
        } else {
            format!(" and brings this file to {}", count(total))
        };
        self.d.error(
            loc,
            format!(
                "`{}` names {} nodes{file}, more than the {} one topology may describe",
                list.expr(),
                count(list.len()),
                limits::NODES
            ),
            "check the range for a typo (a digit too many?); a larger fabric needs one topology file per part, each with its own switches (docs/topology.md)",
        );
        self.over_budget = true;
    }

    /// The `ib_guids` of a nodes entry, one per node (`None` where absent or malformed).
    fn node_guids(
        &mut self,
        f: &Fields,
        name_expr: &str,
        count: usize,
    ) -> Option<Vec<Option<PortGuid>>> {
        let mut guids: Vec<Option<PortGuid>> = vec![None; count];
        let Some(g) = f.get("ib_guids") else {
            return Some(guids);
        };
        if !matches!(g.kind, Kind::Seq(_)) && !g.is_null() {
            // Not a list: that is the one error (not also "has 0 entries").
            self.seq(g, "`ib_guids`");
            return None;
        }
        let items = self.seq(g, "`ib_guids`");
        if items.len() != count {
            self.d.error(
                g.loc,
                format!(
                    "`{name_expr}` names {} nodes but ib_guids has {} entries",
                    count,
                    items.len()
                ),
                "give one port GUID per node, in the same order",
            );
            return None;
        }
        for (slot, item) in guids.iter_mut().zip(items) {
            let Some((text, gloc)) = self.scalar(item, "a GUID") else {
                continue;
            };
            match PortGuid::parse(text) {
                Ok(guid) => *slot = Some(guid),
                Err(e) => self.d.error(
                    gloc,
                    format!("malformed GUID: {}", e.0),
                    "take port GUIDs from `ibstat -p` or `jobnet topology import-ib`",
                ),
            }
        }
        Some(guids)
    }

    fn gateway(&mut self, y: &Y) -> Option<Gateway> {
        let f = self.fields(y, "a gateway", GATEWAY_KEYS)?;
        let (name, nloc) = self.req_str(&f, "name", "a gateway")?;
        let name = self.word("gateway name", name, nloc)?;
        let owner = format!("gateway {name}");
        let driver = self
            .req_str(&f, "driver", &owner)
            .and_then(|(t, l)| self.driver(t, l, DeviceKind::Gateway, &owner));
        let address = self
            .req_str(&f, "address", &owner)
            .and_then(|(t, l)| self.address(t, l));
        let credentials = self.credentials(&f);
        let ethernet_port = self
            .req_str(&f, "ethernet_port", &owner)
            .and_then(|(t, l)| self.port(t, l));
        let ib_guid =
            self.req_str(&f, "ib_guid", &owner)
                .and_then(|(t, l)| match PortGuid::parse(t) {
                    Ok(g) => Some(g),
                    Err(e) => {
                        self.d.error(
                            l,
                            format!("malformed GUID: {}", e.0),
                            "write the gateway's IB port GUID as 0x...",
                        );
                        None
                    }
                });
        Some(Gateway {
            name,
            driver: driver.unwrap_or_default(),
            address: address.unwrap_or_default(),
            credentials,
            ssh_legacy: self.legacy(&f),
            ethernet_port: ethernet_port?,
            ib_guid: ib_guid?,
            loc: nloc,
        })
    }

    /// Rules across entries (the second pass); reachability only once everything else holds,
    /// with the switch graph it was checked on.
    fn cross_checks(&mut self, t: &mut Topology, has_ib_section: bool) -> Option<SwitchGraph> {
        self.check_names(t);
        self.check_ports(t);
        self.check_guids(t);
        self.check_pools(t, has_ib_section);
        self.check_parallel_links(t);
        (!self.d.has_errors()).then(|| self.check_reachability(t))
    }

    /// Names: one namespace for switches, nodes and gateways; fills the topology's indexes,
    /// which are also what duplicates are found with (one hash per name: a large file pays for
    /// no second map, nor a second copy, of its names).
    fn check_names(&mut self, t: &mut Topology) {
        let Topology {
            switches,
            nodes,
            gateways,
            switch_index,
            node_index,
            ..
        } = t;
        // Sized up front: a 10,000-node fabric would otherwise rehash (and page-fault) its way up.
        *switch_index = PosIndex::with_capacity(switches.len());
        *node_index = PosIndex::with_capacity(nodes.len());
        let switch_name = |i: usize| switches[i].name.as_str();
        let node_name = |i: usize| nodes[i].name.as_str();
        let d = &mut *self.d;
        let mut dup = |name: &str, what: &str, loc: Loc, first_what: &str, first: Loc| {
            d.error(
                loc,
                format!(
                    "duplicate name `{name}`: a {what} here and a {first_what} at line {}",
                    first.line
                ),
                "every switch, node and gateway needs its own name",
            )
        };
        for (i, s) in switches.iter().enumerate() {
            if let Err(first) = switch_index.insert(s.name.as_str(), i, switch_name) {
                dup(&s.name, "switch", s.loc, "switch", switches[first].loc)
            }
        }
        for (i, n) in nodes.iter().enumerate() {
            if let Err(first) = node_index.insert(n.name.as_str(), i, node_name) {
                dup(&n.name, "node", n.loc, "node", nodes[first].loc)
            }
        }
        // Switches are few: they look for their names among the nodes, not the other way round.
        for s in switches.iter() {
            if let Some(i) = node_index.get(s.name.as_str(), node_name) {
                dup(&s.name, "node", nodes[i].loc, "switch", s.loc);
            }
        }
        let mut seen: HashMap<&str, Loc> = HashMap::new();
        for g in gateways.iter() {
            let first = if let Some(i) = switch_index.get(g.name.as_str(), switch_name) {
                Some(("switch", switches[i].loc))
            } else if let Some(i) = node_index.get(g.name.as_str(), node_name) {
                Some(("node", nodes[i].loc))
            } else {
                seen.get(g.name.as_str()).map(|&l| ("gateway", l))
            };
            match first {
                Some((what, loc)) => dup(&g.name, "gateway", g.loc, what, loc),
                None => _ = seen.insert(&g.name, g.loc),
            }
        }
    }

    /// Ports: each used once, each on a known switch; then their names
    /// ([`Reader::check_port_names`]). Every use has its number ([`port_use`]); the index of
    /// ports holds those numbers under (switch, port name), so no port is copied or kept twice.
    fn check_ports(&mut self, t: &Topology) {
        let n = 2 * t.links.len() + t.nodes.len() + t.gateways.len();
        let mut switch_of = vec![NO_SWITCH; n];
        let mut known = 0;
        for (id, sw) in switch_of.iter_mut().enumerate() {
            let Some((port, user, loc)) = port_use(t, id) else {
                continue;
            };
            match t.switch_idx(&port.switch) {
                Some(i) => {
                    *sw = i as u32;
                    known += 1;
                }
                None if !self.switches_incomplete => self.unknown_switch(t, port, user, loc),
                None => {}
            }
        }
        let key_of = |id: usize| {
            let (port, _, _) = port_use(t, id).expect("a use with a port");
            (switch_of[id], port.port.as_str())
        };
        let mut ports = PosIndex::with_capacity(known);
        for id in (0..n).filter(|&id| switch_of[id] != NO_SWITCH) {
            let Err(first) = ports.insert(key_of(id), id, key_of) else {
                continue;
            };
            let (port, user, loc) = port_use(t, id).expect("a use with a port");
            let (_, first_user, first) = port_use(t, first).expect("a use with a port");
            self.d.error(
                loc,
                format!(
                    "port {port} is used twice: by {user} here and by {first_user} at line {}",
                    first.line
                ),
                "each switch port can carry one link, node or gateway",
            );
        }
        self.check_port_names(t, &switch_of);
    }

    fn unknown_switch(&mut self, t: &Topology, port: &PortRef, user: User, loc: Loc) {
        let hint = suggestion(&port.switch, t.switches.iter().map(|s| s.name.as_str()));
        let help = if hint.is_empty() {
            "add the switch to `switches` or fix the name".to_string()
        } else {
            hint
        };
        self.d.error(
            loc,
            format!(
                "{user} refers to unknown switch `{}` (in `{port}`)",
                port.switch
            ),
            help,
        );
    }

    /// Port names in the form of their switch's profile (its `port_names`), for the port uses
    /// on known switches. A warning, not an error: the patterns follow the vendors' manuals
    /// and cannot know every model's names, and the shipped topology/jscc.yaml writes an Onyx
    /// port-channel as `Po1` on purpose. One warning per link end, per gateway and per switch
    /// of a `nodes` entry.
    fn check_port_names(&mut self, t: &Topology, switch_of: &[u32]) {
        let forms: Vec<Option<(&str, &crate::drivers::PortNames)>> = t
            .switches
            .iter()
            .map(|s| {
                let p = self.drivers.get(&s.driver)?;
                Some((p.name.as_str(), p.port_names.as_ref()?))
            })
            .collect();
        // (line, col, switch) -> where, the nodes or the link end or gateway using the ports,
        // and the ports that do not fit
        type Misfit<'t> = (Loc, Vec<&'t str>, Option<User<'t>>, Vec<String>);
        let mut misfits: BTreeMap<(usize, usize, usize), Misfit> = BTreeMap::new();
        // The verdict per profile and port name: a large fabric names the same few dozen
        // ports on every leaf, and a lookup costs less than a match.
        let mut fits: hashbrown::HashMap<(&str, &str), bool> = hashbrown::HashMap::new();
        for (id, &sw) in switch_of.iter().enumerate() {
            if sw == NO_SWITCH {
                continue;
            }
            let sw = sw as usize;
            let (port, user, loc) = port_use(t, id).expect("a use with a port");
            let fit = forms[sw].is_none_or(|(profile, f)| {
                *fits
                    .entry((profile, port.port.as_str()))
                    .or_insert_with(|| f.fits(&port.port))
            });
            if fit {
                continue;
            }
            let e = misfits
                .entry((loc.line, loc.col, sw))
                .or_insert_with(|| (loc, Vec::new(), None, Vec::new()));
            match user {
                User::Node(n) => e.1.push(n),
                other => e.2 = Some(other),
            }
            e.3.push(port.to_string());
        }
        for ((_, _, sw), (loc, nodes, user, ports)) in misfits {
            let (profile, form) = forms[sw].expect("only switches with a form have misfits");
            let users = user.map_or_else(
                || format!("node(s) {}", hostlist::fold_short(&nodes, 4)),
                |u| u.to_string(),
            );
            let (what, verb, them) = if ports.len() == 1 {
                ("port", "does", "it")
            } else {
                ("ports", "do", "them")
            };
            self.d.warning(
                loc,
                format!(
                    "{what} {} ({users}) {verb} not fit how {profile}, the driver of switch {}, names ports: `{}`",
                    hostlist::fold_short(&ports, 4),
                    t.switches[sw].name,
                    form.pattern
                ),
                format!(
                    "write {them} as {profile} does, e.g. {}:{}; if the switch really names {them} so, widen port_names in a copy of the profile in the site's driver directory (drivers_dir, docs/drivers.md)",
                    t.switches[sw].name, form.example
                ),
            );
        }
    }

    /// GUIDs: unique across nodes and gateways (numbered as nodes, then gateways).
    fn check_guids(&mut self, t: &Topology) {
        let guid_of = |id: usize| match t.nodes.get(id) {
            Some(n) => n.ib_guid,
            None => Some(t.gateways[id - t.nodes.len()].ib_guid),
        };
        let owner = |id: usize| match t.nodes.get(id) {
            Some(n) => (User::Node(&n.name), n.loc),
            None => {
                let g = &t.gateways[id - t.nodes.len()];
                (User::Gateway(&g.name), g.loc)
            }
        };
        let mut guids = PosIndex::with_capacity(t.nodes.len() + t.gateways.len());
        for id in 0..t.nodes.len() + t.gateways.len() {
            let Some(g) = guid_of(id) else {
                continue;
            };
            if let Err(first) = guids.insert(g, id, |j| guid_of(j).expect("indexed with a GUID")) {
                let ((user, loc), (first_user, floc)) = (owner(id), owner(first));
                self.d.error(
                    loc,
                    format!(
                        "port GUID {g} of {user} is also given to {first_user} (line {})",
                        floc.line
                    ),
                    "every HCA port has its own GUID",
                );
            }
        }
    }

    fn check_pools(&mut self, t: &Topology, has_ib_section: bool) {
        if let Some(eth) = &t.ethernet {
            self.check_vlan_pool(t, eth);
        }
        if !t.gateways.is_empty() && !has_ib_section {
            let g = &t.gateways[0];
            self.d.error(g.loc, format!("gateway {} bridges a PKey to a VLAN, but the topology has no `infiniband` section", g.name), "add `infiniband: {pkey_pool: \"0x1000-0x1fff\"}`");
        }
        if let Some(ib) = &t.infiniband {
            let missing: Vec<&str> = t
                .nodes
                .iter()
                .filter(|n| n.ib_guid.is_none())
                .map(|n| n.name.as_str())
                .collect();
            if !missing.is_empty() {
                self.d.warning(
                    ib.loc,
                    format!("infiniband is configured but {} node(s) have no ib_guids: {}", missing.len(), hostlist::fold(&missing)),
                    "they will not join job partitions; add ib_guids (see `jobnet topology import-ib`)",
                );
            }
        }
    }

    fn check_vlan_pool(&mut self, t: &Topology, eth: &Ethernet) {
        // VLANs the platforms keep for themselves must not be handed out.
        let mut platform: Vec<(RangeSet, String)> = vec![(
            RangeSet::from_ranges(vec![(1, 1)]),
            "VLAN 1 is the default VLAN on every switch".into(),
        )];
        let mut seen = std::collections::BTreeSet::new();
        for s in &t.switches {
            if let Some(p) = self.drivers.get(&s.driver) {
                if !p.reserved_vlans.is_empty() && seen.insert(p.name.clone()) {
                    platform.push((
                        p.reserved_vlans.clone(),
                        format!(
                            "{} reserves VLANs {} (used by switch {})",
                            p.name,
                            p.reserved_vlans.display(false),
                            s.name
                        ),
                    ));
                }
            }
        }
        for (reserved, why) in platform {
            let clash = eth
                .vlan_pool
                .intersect(&reserved)
                .minus(&eth.reserved_vlans);
            if !clash.is_empty() {
                self.d.error(
                    eth.loc,
                    format!("vlan_pool includes VLAN(s) {}: {why}", clash.display(false)),
                    format!(
                        "remove them from vlan_pool or list them in reserved_vlans (\"{}\")",
                        clash.display(false)
                    ),
                );
            }
        }
        if eth.usable().is_empty() {
            self.d.error(
                eth.loc,
                format!(
                    "vlan_pool {} has no VLAN left after reserved_vlans {}",
                    eth.vlan_pool.display(false),
                    eth.reserved_vlans.display(false)
                ),
                "widen the pool",
            );
        }
    }

    /// Usable links joining the same two switches, not all of them LAGs: a warning per pair, in
    /// the order of the pairs' names. Links are sorted by pair (an allocation per pair would be
    /// one per link on a fabric without parallel links).
    fn check_parallel_links(&mut self, t: &Topology) {
        let mut by_pair: Vec<(&str, &str, usize)> = t
            .links
            .iter()
            .enumerate()
            .filter(|(_, l)| l.up)
            .map(|(i, l)| {
                let (a, b) = (l.a.switch.as_str(), l.b.switch.as_str());
                (a.min(b), a.max(b), i)
            })
            .collect();
        by_pair.sort_unstable();
        for pair in by_pair.chunk_by(|p, q| (p.0, p.1) == (q.0, q.1)) {
            let links: Vec<&Link> = pair.iter().map(|&(_, _, i)| &t.links[i]).collect();
            if links.len() < 2 || links.iter().all(|l| l.lag) {
                continue;
            }
            let (x, y) = (pair[0].0, pair[0].1);
            let lines: Vec<String> = links.iter().map(|l| l.loc.line.to_string()).collect();
            self.d.warning(
                links[1].loc,
                format!("{} links join {x} and {y} (lines {}) and are not all marked `lag: true`; they are treated as one edge and the VLAN goes on the cheapest one only", links.len(), lines.join(", ")),
                "describe a port-channel as one link with `lag: true`, or mark the spare links `state: down`",
            );
        }
    }

    /// Switches with nodes outside the component with the most nodes; gives the graph.
    fn check_reachability(&mut self, t: &Topology) -> SwitchGraph {
        let g = SwitchGraph::build(t);
        let comp = g.components();
        // Nodes per component (a component is named by one of its switches' indexes).
        let mut count = vec![0usize; t.switches.len()];
        let mut on_switch = vec![0usize; t.switches.len()];
        for p in t.nodes.iter().filter_map(|n| n.port.as_ref()) {
            let s = t.switch_idx(&p.switch).expect("checked: a known switch");
            on_switch[s] += 1;
            count[comp[s]] += 1;
        }
        // The main component is the one with the most nodes (the first of equals).
        let Some(main) = (0..count.len()).max_by_key(|&c| (count[c], std::cmp::Reverse(c))) else {
            return g;
        };
        if (0..t.switches.len()).all(|s| comp[s] == main || on_switch[s] == 0) {
            return g;
        }
        for (s, nodes) in t.nodes_by_switch().iter().enumerate() {
            if comp[s] != main && !nodes.is_empty() {
                let names: Vec<&str> = nodes.iter().map(|n| n.name.as_str()).collect();
                self.d.warning(
                    t.switches[s].loc,
                    format!("nodes {} on switch {} cannot reach the rest of the fabric (no usable link path)", hostlist::fold(&names), t.switches[s].name),
                    "jobs that include them will not plan; add a link or set its state to up",
                );
            }
        }
        g
    }
}

/// [`port_use`]'s "no known switch".
const NO_SWITCH: u32 = u32::MAX;

/// Use number `id` of a switch port, in the order the checks report them: the two ends of
/// every link (`2 * link`, `2 * link + 1`), then the nodes, then the gateways; `None` for a node
/// without a port.
fn port_use(t: &Topology, id: usize) -> Option<(&PortRef, User<'_>, Loc)> {
    let ends = 2 * t.links.len();
    if id < ends {
        let l = &t.links[id / 2];
        return Some(if id.is_multiple_of(2) {
            (&l.a, User::Link(&l.b), l.loc)
        } else {
            (&l.b, User::Link(&l.a), l.loc)
        });
    }
    match t.nodes.get(id - ends) {
        Some(n) => n.port.as_ref().map(|p| (p, User::Node(&n.name), n.loc)),
        None => {
            let g = &t.gateways[id - ends - t.nodes.len()];
            Some((&g.ethernet_port, User::Gateway(&g.name), g.loc))
        }
    }
}
