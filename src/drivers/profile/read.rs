//! Reading device state from a CLI answer: the VLANs a device has, and one port's mode, access
//! VLAN and allowed VLAN list.
//!
//! A read never guesses. An answer that does not have the shape the profile expects (an empty
//! answer, an error text, another software version's layout) is a [`ReadError`] naming what was
//! expected, so the device fails before anything is changed; a value that is legitimately absent
//! (e.g. no `switchport mode` line in a running configuration means access mode) is only taken as
//! absent where the profile says so with `absent:`.

use crate::base::types::{RangeSet, VlanId};
use regex::Regex;

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
}

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
        // Only an access port's VLAN matters; trunks print `unassigned` or `0` there.
        let access_vlan = if mode == Mode::Access {
            self.access_vlan(answer)?
        } else {
            None
        };
        let allowed = if mode == Mode::Trunk {
            Some(self.allowed(answer)?)
        } else {
            None
        };
        Ok(PortState {
            mode,
            access_vlan,
            allowed,
        })
    }

    fn access_vlan(&self, answer: &str) -> Result<Option<VlanId>, ReadError> {
        let f = &self.access_vlan;
        let value = match f.pattern.captures(answer) {
            Some(c) => {
                let text = c.get(1).map_or("", |m| m.as_str()).trim();
                match text.parse::<u64>() {
                    Ok(v) => v,
                    // Junos names the default VLAN `default`.
                    Err(_) if text == "default" => return Ok(None),
                    Err(_) => {
                        return Err(ReadError {
                            expected: format!("a VLAN number as the access VLAN, not `{text}`"),
                        })
                    }
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

    /// The allowed list; a pattern that matches on several lines (Junos: one `vlan members` line
    /// per VLAN) contributes every match.
    fn allowed(&self, answer: &str) -> Result<Allowed, ReadError> {
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
        let listed: Vec<&str> = texts
            .into_iter()
            .filter(|t| !f.none.as_ref().is_some_and(|n| n.is_match(t)))
            .collect();
        parse_list(&listed.join(",")).map(Allowed::List)
    }
}

/// A VLAN list as devices print it: `10,20-30`, `10, 20`, `10 20`, wrapped over lines.
pub fn parse_list(text: &str) -> Result<RangeSet, ReadError> {
    let bad = |item: &str| ReadError {
        expected: format!("a VLAN list like `10,20-30`, not `{item}` in `{text}`"),
    };
    let mut ranges = Vec::new();
    for item in text
        .split(|c: char| c == ',' || c.is_whitespace())
        .filter(|s| !s.is_empty())
    {
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
        }
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
