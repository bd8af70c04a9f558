//! Reading device state from a CLI answer: the VLANs a device has, one port's mode, access VLAN
//! and allowed VLAN list, and — where the dialect has one command for them all — many ports at
//! once ([`PortsRead`]: the answer split into one block per port, each read as [`PortRead`]
//! reads a port's own answer).
//!
//! A read never guesses. An answer that does not have the shape the profile expects (an empty
//! answer, an error text, another software version's layout) is a [`ReadError`] naming what was
//! expected, so the device fails before anything is changed; a value that is legitimately absent
//! (e.g. no `switchport mode` line in a running configuration means access mode) is only taken as
//! absent where the profile says so with `absent:`.

use super::pattern::Regex;
use crate::base::types::{RangeSet, VlanId};

/// Why an answer could not be read.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("expected {expected}")]
pub struct ReadError {
    /// What the answer lacked, e.g. "a line matching `Administrative Mode: (.+)` (the port's mode)".
    pub expected: String,
}

fn lacks(what: &str, re: &Regex) -> ReadError {
    ReadError {
        expected: format!("a line matching `{re}` ({what})"),
    }
}

/// How to read the VLANs that exist on a device.
#[derive(Clone, Debug)]
pub struct VlanRead {
    pub command: String,
    /// The first capture group of every match is a VLAN id.
    pub pattern: Regex,
    /// When set, the answer must match it to be understood (e.g. the table's header).
    pub expect: Option<Regex>,
}

impl VlanRead {
    /// Every VLAN id in `answer`, in order.
    pub fn values(&self, answer: &str) -> Result<Vec<u16>, ReadError> {
        if let Some(e) = &self.expect {
            if !e.is_match(answer) {
                return Err(lacks("the VLAN table", e));
            }
        }
        Ok(self
            .pattern
            .captures_iter(answer)
            .filter_map(|c| c.get(1).and_then(|m| m.as_str().parse().ok()))
            .collect())
    }
}

/// A port's switching mode as the device reports it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Mode {
    Access,
    Trunk,
    /// Anything else (`dynamic auto`, `tunnel`, routed ...), as the device said it.
    Other(String),
}

impl std::fmt::Display for Mode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Mode::Access => f.write_str("access"),
            Mode::Trunk => f.write_str("trunk"),
            Mode::Other(t) => f.write_str(t),
        }
    }
}

/// The VLANs a trunk port lets through.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Allowed {
    /// Every VLAN (the factory default of many platforms).
    All,
    /// Exactly these (empty: none).
    List(RangeSet),
}

impl std::fmt::Display for Allowed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Allowed::All => f.write_str("ALL"),
            Allowed::List(l) if l.is_empty() => f.write_str("none"),
            Allowed::List(l) => f.write_str(&l.display(false)),
        }
    }
}

/// One port as read from a device.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PortState {
    pub mode: Mode,
    /// The access VLAN, `None` when it is the platform default (nothing configured).
    pub access_vlan: Option<VlanId>,
    /// The trunk's allowed list; read only for trunks.
    pub allowed: Option<Allowed>,
}

/// The mode field of a port read.
#[derive(Clone, Debug)]
pub struct ModeField {
    pub pattern: Regex,
    /// A mode text matching this is a trunk.
    pub trunk: Regex,
    /// A mode text matching this is access mode.
    pub access: Regex,
    /// The mode text when the pattern does not match (running-config style answers omit defaults).
    pub absent: Option<String>,
}

/// The access VLAN field of a port read.
#[derive(Clone, Debug)]
pub struct VlanField {
    pub pattern: Regex,
    /// The platform's default (VLAN 1): reading it means nothing is configured.
    pub default: Option<u64>,
    /// The value when the pattern does not match (a running configuration omits the default).
    pub absent: Option<u64>,
}

/// The allowed-list field of a port read.
#[derive(Clone, Debug)]
pub struct AllowedField {
    pub pattern: Regex,
    /// A captured text matching this means every VLAN (`ALL`, NX-OS `1-4094`, OVS's empty set).
    pub all: Regex,
    /// A captured text matching this means no VLAN (`NONE`).
    pub none: Option<Regex>,
    /// The list when the pattern does not match.
    pub absent: Option<Allowed>,
}

/// How to read one port.
#[derive(Clone, Debug)]
pub struct PortRead {
    /// The show command, with `{port}`.
    pub command: String,
    /// When set, the answer must match it to be understood.
    pub expect: Option<Regex>,
    pub mode: ModeField,
    pub access_vlan: VlanField,
    pub allowed: AllowedField,
    /// The device's VLAN table within the same answer: group 1 of every match is a VLAN name,
    /// group 2 its id. With it, a port's VLANs may be given by name.
    pub names: Option<Regex>,
}

/// How to read many ports with one command (`read.ports`): the answer is cut where `split`
/// matches (group 1: the port's name as the device prints it), and each block is read like one
/// port's own answer. A port the answer does not show is read on its own.
#[derive(Clone, Debug)]
pub struct PortsRead {
    pub command: String,
    pub split: Regex,
    /// How the device shortens interface names in this answer (`GigabitEthernet` → `Gi`),
    /// longest first: a topology's `GigabitEthernet1/0/1` is the answer's `Gi1/0/1`.
    pub short: Vec<(String, String)>,
    /// Whether the device ignores case in interface names (Cisco does; Linux, and so Open
    /// vSwitch, does not: `eth1` and `ETH1` are two ports there).
    pub ignore_case: bool,
}

impl PortsRead {
    /// The answer's blocks: each port's name as printed, and its text (from its `split` match to
    /// the next one).
    pub fn blocks<'a>(&self, answer: &'a str) -> Vec<(String, &'a str)> {
        let starts: Vec<(usize, String)> = self
            .split
            .captures_iter(answer)
            .filter_map(|c| Some((c.get(0)?.start(), c.get(1)?.as_str().to_string())))
            .collect();
        starts
            .iter()
            .enumerate()
            .map(|(i, (at, name))| {
                let end = starts.get(i + 1).map_or(answer.len(), |n| n.0);
                (name.clone(), &answer[*at..end])
            })
            .collect()
    }

    /// The block of `port` (a topology's name) among `blocks`: the same name, else the same
    /// name as the device shortens it (case ignored only where the device ignores it).
    pub fn find<'a>(&self, blocks: &[(String, &'a str)], port: &str) -> Option<&'a str> {
        let same = |a: &str, b: &str| {
            if self.ignore_case {
                a.eq_ignore_ascii_case(b)
            } else {
                a == b
            }
        };
        if let Some((_, b)) = blocks.iter().find(|(name, _)| name == port) {
            return Some(b);
        }
        let short = self.shorten(port);
        blocks
            .iter()
            .find(|(name, _)| same(name, port) || same(&self.shorten(name), &short))
            .map(|(_, b)| *b)
    }

    /// The long form of a name the device printed short (`Te1/8` → `TenGigabitEthernet1/8`):
    /// the long prefix whose short form `name` starts with, followed by a digit; `None` when it
    /// is not a short name.
    pub fn lengthen(&self, name: &str) -> Option<String> {
        self.short
            .iter()
            .filter(|(_, short)| {
                name.len() > short.len()
                    && name.is_char_boundary(short.len())
                    && name[..short.len()].eq_ignore_ascii_case(short)
                    && name[short.len()..].starts_with(|c: char| c.is_ascii_digit())
            })
            .max_by_key(|(_, short)| short.len())
            .map(|(long, short)| format!("{long}{}", &name[short.len()..]))
    }

    /// `name` with its first long prefix replaced by the short one.
    pub fn shorten(&self, name: &str) -> String {
        for (long, short) in &self.short {
            if name.len() >= long.len()
                && name.is_char_boundary(long.len())
                && (if self.ignore_case {
                    name[..long.len()].eq_ignore_ascii_case(long)
                } else {
                    &name[..long.len()] == long
                })
            {
                return format!("{short}{}", &name[long.len()..]);
            }
        }
        name.to_string()
    }
}

/// VLAN names and the ids the device's own table gives them.
type Names = std::collections::BTreeMap<String, u64>;

impl PortRead {
    pub fn command_for(&self, port: &str) -> String {
        self.command.replace("{port}", port)
    }

    /// Reads a port from `answer`.
    pub fn parse(&self, answer: &str) -> Result<PortState, ReadError> {
        if let Some(e) = &self.expect {
            if !e.is_match(answer) {
                return Err(lacks("the port's switchport state", e));
            }
        }
        let mode_text = match self.mode.pattern.captures(answer) {
            Some(c) => c.get(1).map_or("", |m| m.as_str()).trim().to_string(),
            None => match &self.mode.absent {
                Some(a) => a.clone(),
                None => return Err(lacks("the port's mode", &self.mode.pattern)),
            },
        };
        let mode = if self.mode.trunk.is_match(&mode_text) {
            Mode::Trunk
        } else if self.mode.access.is_match(&mode_text) {
            Mode::Access
        } else {
            Mode::Other(mode_text)
        };
        let names = self.names(answer);
        // Only an access port's VLAN matters; trunks print `unassigned` or `0` there.
        let access_vlan = if mode == Mode::Access {
            self.access_vlan(answer, &names)?
        } else {
            None
        };
        let allowed = if mode == Mode::Trunk {
            Some(self.allowed(answer, &names)?)
        } else {
            None
        };
        Ok(PortState {
            mode,
            access_vlan,
            allowed,
        })
    }

    /// The name → id table of the answer (empty when the profile reads no names).
    fn names(&self, answer: &str) -> Names {
        let Some(re) = &self.names else {
            return Names::new();
        };
        re.captures_iter(answer)
            .filter_map(|c| {
                let id = c.get(2)?.as_str().parse().ok()?;
                Some((c.get(1)?.as_str().to_string(), id))
            })
            .collect()
    }

    fn access_vlan(&self, answer: &str, names: &Names) -> Result<Option<VlanId>, ReadError> {
        let f = &self.access_vlan;
        let value = match f.pattern.captures(answer) {
            Some(c) => {
                let text = c.get(1).map_or("", |m| m.as_str()).trim();
                match text.parse::<u64>() {
                    Ok(v) => v,
                    Err(_) => match names.get(text) {
                        Some(&v) => v,
                        // Junos names the default VLAN `default`, and ELS factory
                        // configurations leave it out of the VLAN table.
                        None if text == "default" => return Ok(None),
                        None => {
                            return Err(ReadError {
                                expected: format!(
                                    "a VLAN number{} as the access VLAN, not `{text}`",
                                    self.names_hint()
                                ),
                            })
                        }
                    },
                }
            }
            None => match f.absent {
                Some(v) => v,
                None => return Err(lacks("the port's access VLAN", &f.pattern)),
            },
        };
        if Some(value) == f.default {
            return Ok(None);
        }
        VlanId::new(value).map(Some).map_err(|e| ReadError {
            expected: format!("an access VLAN in 1..4094 ({})", e.0),
        })
    }

    /// " or a name of the answer's VLAN table" when the profile reads names.
    fn names_hint(&self) -> &'static str {
        if self.names.is_some() {
            " or a name of the answer's VLAN table"
        } else {
            ""
        }
    }

    /// The allowed list; a pattern that matches on several lines (Junos: one `vlan members` line
    /// per VLAN) contributes every match, and VLAN names become the ids of the answer's table.
    fn allowed(&self, answer: &str, names: &Names) -> Result<Allowed, ReadError> {
        let f = &self.allowed;
        let texts: Vec<&str> = f
            .pattern
            .captures_iter(answer)
            .filter_map(|c| c.get(1))
            .map(|m| m.as_str().trim())
            .collect();
        if texts.is_empty() {
            return f
                .absent
                .clone()
                .ok_or_else(|| lacks("the trunk's allowed VLANs", &f.pattern));
        }
        if texts.iter().any(|t| f.all.is_match(t)) {
            return Ok(Allowed::All);
        }
        let mut listed = Vec::new();
        for text in texts
            .into_iter()
            .filter(|t| !f.none.as_ref().is_some_and(|n| n.is_match(t)))
        {
            for item in items(text) {
                if item.chars().all(|c| c.is_ascii_digit() || c == '-') {
                    // A number or a range: parse_list checks it.
                    listed.push(item.to_string());
                } else if let Some(id) = names.get(item) {
                    listed.push(id.to_string());
                } else {
                    return Err(ReadError {
                        expected: format!(
                            "a VLAN list like `10,20-30`{}, not `{item}` in `{text}`",
                            self.names_hint()
                        ),
                    });
                }
            }
        }
        parse_list(&listed.join(",")).map(Allowed::List)
    }
}

/// The items of a VLAN list as devices print it (`10,20-30`, `10, 20`, `10 20`, wrapped).
fn items(text: &str) -> impl Iterator<Item = &str> {
    text.split(|c: char| c == ',' || c.is_whitespace())
        .filter(|s| !s.is_empty())
}

/// A VLAN list as devices print it: `10,20-30`, `10, 20`, `10 20`, wrapped over lines.
pub fn parse_list(text: &str) -> Result<RangeSet, ReadError> {
    let bad = |item: &str| ReadError {
        expected: format!("a VLAN list like `10,20-30`, not `{item}` in `{text}`"),
    };
    let mut ranges = Vec::new();
    for item in items(text) {
        let (a, b) = match item.split_once('-') {
            Some((a, b)) => (a, b),
            None => (item, item),
        };
        let (a, b): (u64, u64) = match (a.parse(), b.parse()) {
            (Ok(a), Ok(b)) if a <= b && (1..=4094).contains(&a) && b <= 4094 => (a, b),
            _ => return Err(bad(item)),
        };
        ranges.push((a, b));
    }
    Ok(RangeSet::from_ranges(ranges))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bulk(ignore_case: bool) -> PortsRead {
        PortsRead {
            command: "show interfaces switchport".into(),
            split: Regex::new(r"(?m)^Name: (\S+)").unwrap(),
            short: vec![
                ("TenGigabitEthernet".into(), "Te".into()),
                ("GigabitEthernet".into(), "Gi".into()),
            ],
            ignore_case,
        }
    }

    #[test]
    fn blocks_are_found_by_their_port_and_no_other() {
        let answer = "Name: Gi1/0/10\nA: 1\n\nName: Te1/1\nA: 2\nName: eth1\nA: 3\n";
        let b = bulk(true);
        let blocks = b.blocks(answer);
        assert_eq!(blocks.len(), 3);
        assert_eq!(
            b.find(&blocks, "TenGigabitEthernet1/1"),
            Some("Name: Te1/1\nA: 2\n")
        );
        assert_eq!(
            b.find(&blocks, "gigabitethernet1/0/10"),
            Some("Name: Gi1/0/10\nA: 1\n\n")
        );
        // A name that is the start of another is not it.
        assert_eq!(b.find(&blocks, "GigabitEthernet1/0/1"), None);
        assert_eq!(b.find(&blocks, "Te1/10"), None);
        // Case matters where the device says so (Linux names: eth1 and ETH1 are two ports).
        assert_eq!(bulk(false).find(&blocks, "ETH1"), None);
        assert_eq!(
            bulk(false).find(&blocks, "eth1"),
            Some("Name: eth1\nA: 3\n")
        );
        assert_eq!(
            b.lengthen("Te1/1").as_deref(),
            Some("TenGigabitEthernet1/1")
        );
        assert_eq!(b.lengthen("Tx1/1"), None);
    }

    fn ios() -> PortRead {
        PortRead {
            command: "show interfaces {port} switchport".into(),
            expect: Some(Regex::new("(?m)^Name: ").unwrap()),
            mode: ModeField {
                pattern: Regex::new(r"(?m)^Administrative Mode: (.+)$").unwrap(),
                trunk: Regex::new("^trunk$").unwrap(),
                access: Regex::new("^static access$").unwrap(),
                absent: None,
            },
            access_vlan: VlanField {
                pattern: Regex::new(r"(?m)^Access Mode VLAN: (\d+)").unwrap(),
                default: Some(1),
                absent: None,
            },
            allowed: AllowedField {
                pattern: Regex::new(r"(?m)^Trunking VLANs Enabled: ((?:.+)(?:\n[ \t]+[\d,-]+)*)")
                    .unwrap(),
                all: Regex::new("^ALL$").unwrap(),
                none: Some(Regex::new("^NONE$").unwrap()),
                absent: None,
            },
            names: None,
        }
    }

    /// A Junos-like read whose answer carries the VLAN table in set form.
    fn named() -> PortRead {
        let members = r"(?m)vlan members (\S+)\s*$";
        PortRead {
            command: "show {port}".into(),
            expect: None,
            mode: ModeField {
                pattern: Regex::new("mode (\\S+)").unwrap(),
                trunk: Regex::new("^trunk$").unwrap(),
                access: Regex::new("^access$").unwrap(),
                absent: Some("access".into()),
            },
            access_vlan: VlanField {
                pattern: Regex::new(members).unwrap(),
                default: Some(1),
                absent: Some(1),
            },
            allowed: AllowedField {
                pattern: Regex::new(members).unwrap(),
                all: Regex::new("^all$").unwrap(),
                none: None,
                absent: Some(Allowed::List(RangeSet::default())),
            },
            names: Some(Regex::new(r"(?m)^set vlans (\S+) vlan-id (\d+)").unwrap()),
        }
    }

    #[test]
    fn vlan_names_are_the_ids_of_the_answers_table() {
        let r = named();
        let table = "set vlans default vlan-id 1\nset vlans v100 vlan-id 100\nset vlans jobnet-7 vlan-id 7\n";
        let s = r
            .parse(&format!("mode trunk\nvlan members v100\nvlan members jobnet-7\nvlan members 200-201\n{table}"))
            .unwrap();
        assert_eq!(
            s.allowed,
            Some(Allowed::List(RangeSet::from_ranges(vec![
                (7, 7),
                (100, 100),
                (200, 201)
            ])))
        );
        let s = r.parse(&format!("vlan members v100\n{table}")).unwrap();
        assert_eq!(s.access_vlan, Some(VlanId::new(100).unwrap()));
        let s = r.parse(&format!("vlan members default\n{table}")).unwrap();
        assert_eq!(s.access_vlan, None, "VLAN 1 is the default");
        let s = r.parse("vlan members default\n").unwrap();
        assert_eq!(s.access_vlan, None, "ELS leaves `default` out of the table");
        let e = r
            .parse(&format!("mode trunk\nvlan members v300\n{table}"))
            .unwrap_err();
        assert!(e.expected.contains("not `v300`"), "{e}");
        let e = r.parse(&format!("vlan members v300\n{table}")).unwrap_err();
        assert!(
            e.expected.contains("name of the answer's VLAN table"),
            "{e}"
        );
        // Without a table (names: None) a name is refused as before.
        let mut r = named();
        r.names = None;
        assert!(r.parse("mode trunk\nvlan members v100\n").is_err());
    }

    #[test]
    fn reads_modes_and_lists() {
        let r = ios();
        let s = r.parse("Name: Gi1/0/1\nAdministrative Mode: trunk\nAccess Mode VLAN: 1 (default)\nTrunking VLANs Enabled: 10,20-22,\n     4000\n").unwrap();
        assert_eq!(s.mode, Mode::Trunk);
        assert_eq!(s.access_vlan, None, "VLAN 1 is the default");
        assert_eq!(
            s.allowed,
            Some(Allowed::List(RangeSet::from_ranges(vec![
                (10, 10),
                (20, 22),
                (4000, 4000)
            ])))
        );
        let s = r.parse("Name: Gi1/0/2\nAdministrative Mode: dynamic auto\nAccess Mode VLAN: 5 (x)\nTrunking VLANs Enabled: ALL\n").unwrap();
        assert_eq!(s.mode, Mode::Other("dynamic auto".into()));
        assert_eq!(s.access_vlan, None, "only an access port's VLAN is read");
        assert_eq!(s.allowed, None, "not read for a non-trunk");
        let s = r
            .parse("Name: Gi1/0/3\nAdministrative Mode: static access\nAccess Mode VLAN: 5 (x)\n")
            .unwrap();
        assert_eq!(
            (s.mode, s.access_vlan),
            (Mode::Access, Some(VlanId::new(5).unwrap()))
        );
        let s = r.parse("Name: Po1\nAdministrative Mode: trunk\nAccess Mode VLAN: unassigned\nTrunking VLANs Enabled: NONE\n").unwrap();
        assert_eq!(s.allowed, Some(Allowed::List(RangeSet::default())));
    }

    #[test]
    fn an_answer_of_another_shape_is_an_error() {
        let r = ios();
        assert!(r.parse("").unwrap_err().expected.contains("Name: "));
        assert!(r
            .parse("Name: x\nAccess Mode VLAN: 5\n")
            .unwrap_err()
            .expected
            .contains("the port's mode"));
        assert!(r
            .parse("Name: x\nAdministrative Mode: static access\n")
            .unwrap_err()
            .expected
            .contains("access VLAN"));
        assert!(r
            .parse("Name: x\nAdministrative Mode: trunk\nTrunking VLANs Enabled: 10,zz\n")
            .unwrap_err()
            .expected
            .contains("not `zz`"));
    }

    #[test]
    fn lists() {
        assert_eq!(parse_list("100, 4094").unwrap().display(false), "100,4094");
        assert_eq!(parse_list("").unwrap(), RangeSet::default());
        assert!(parse_list("5000").is_err());
        assert!(parse_list("20-10").is_err());
    }
}
