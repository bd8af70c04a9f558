//! Typed values that every later stage relies on: a `VlanId` is always 1..=4094, a `PKey` always
//! 0x0001..=0x7ffe, a `PortGuid` a non-zero 64-bit port GUID, a `JobId` and device names only use
//! characters that are safe on a switch CLI and in partitions.conf.
//!
//! Values are checked once, when input is read, and carried as these types afterwards, so a
//! renderer can never emit an out-of-range VLAN or a name with a `;` in it. Number parsing is
//! decimal or `0x` hex only: OpenSM reads a leading `0` as octal, which we never want to imitate.

use serde::Serialize;
use std::fmt;

/// Why a value was refused. The text names the value and the accepted form.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ValueError(pub String);

fn err<T>(msg: String) -> Result<T, ValueError> {
    Err(ValueError(msg))
}

/// Parses a non-negative integer written in decimal or `0x` hex. Leading zeros in decimal are
/// refused because other tools (OpenSM, C's strtoul base 0) would read them as octal.
pub fn parse_number(text: &str) -> Result<u64, ValueError> {
    let t = text.trim();
    let parsed = if let Some(hex) = t.strip_prefix("0x").or_else(|| t.strip_prefix("0X")) {
        if hex.is_empty() || hex.len() > 16 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            return err(format!("`{text}` is not a hex number"));
        }
        u64::from_str_radix(hex, 16).ok()
    } else {
        if t.len() > 1 && t.starts_with('0') {
            return err(format!(
                "`{text}` has a leading zero (octal in C tools); write it without the zero or as 0x hex"
            ));
        }
        if t.is_empty() || !t.bytes().all(|b| b.is_ascii_digit()) {
            return err(format!("`{text}` is not a number"));
        }
        t.parse::<u64>().ok()
    };
    parsed.ok_or_else(|| ValueError(format!("`{text}` is too large")))
}

/// An IEEE 802.1Q VLAN id, 1..=4094.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(transparent)]
pub struct VlanId(u16);

impl VlanId {
    pub const MIN: u64 = 1;
    pub const MAX: u64 = 4094;

    pub fn new(v: u64) -> Result<Self, ValueError> {
        if (Self::MIN..=Self::MAX).contains(&v) {
            Ok(VlanId(v as u16))
        } else {
            err(format!("VLAN {v} is out of range 1..4094"))
        }
    }

    pub fn parse(text: &str) -> Result<Self, ValueError> {
        Self::new(parse_number(text)?)
    }

    pub fn get(self) -> u16 {
        self.0
    }
}

impl<'de> serde::Deserialize<'de> for VlanId {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let v = u64::deserialize(d)?;
        VlanId::new(v).map_err(|e| serde::de::Error::custom(e.0))
    }
}

impl fmt::Display for VlanId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if f.width().is_some() {
            return f.pad(&self.0.to_string());
        }
        write!(f, "{}", self.0)
    }
}

/// An InfiniBand partition key as jobnet hands it out: 0x0001..=0x7ffe (the membership bit
/// cleared; 0x7fff is the default partition, 0x0000 is invalid).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PKey(u16);

impl PKey {
    pub const MIN: u64 = 0x0001;
    pub const MAX: u64 = 0x7ffe;

    pub fn new(v: u64) -> Result<Self, ValueError> {
        if (Self::MIN..=Self::MAX).contains(&v) {
            Ok(PKey(v as u16))
        } else {
            err(format!(
                "PKey {v:#06x} is out of range 0x0001..0x7ffe (0x7fff is the default partition, the top bit is the membership bit)"
            ))
        }
    }

    pub fn parse(text: &str) -> Result<Self, ValueError> {
        Self::new(parse_number(text)?)
    }

    pub fn get(self) -> u16 {
        self.0
    }

    /// The key with the full-membership bit set, as `smpquery pkeys` shows it (0x8xxx).
    pub fn full_member(self) -> u16 {
        self.0 | 0x8000
    }
}

impl fmt::Display for PKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if f.width().is_some() {
            return f.pad(&format!("{:#06x}", self.0));
        }
        write!(f, "{:#06x}", self.0)
    }
}

impl Serialize for PKey {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for PKey {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        PKey::parse(&text).map_err(|e| serde::de::Error::custom(e.0))
    }
}

/// An InfiniBand port GUID (not a node GUID: OpenSM partitions list port GUIDs).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PortGuid(u64);

impl PortGuid {
    /// Accepts `0x` followed by 1 to 16 hex digits, not zero.
    pub fn parse(text: &str) -> Result<Self, ValueError> {
        let hex = text.strip_prefix("0x").or_else(|| text.strip_prefix("0X"));
        match hex {
            Some(h) if !h.is_empty() && h.len() <= 16 && h.bytes().all(|b| b.is_ascii_hexdigit()) => {
                let v = u64::from_str_radix(h, 16).expect("checked hex");
                if v == 0 {
                    err(format!("GUID `{text}` is zero"))
                } else {
                    Ok(PortGuid(v))
                }
            }
            _ => err(format!(
                "`{text}` is not a port GUID; write 0x followed by up to 16 hex digits, e.g. 0x0002c90300a1b001"
            )),
        }
    }

    pub fn new(v: u64) -> Self {
        PortGuid(v)
    }

    pub fn get(self) -> u64 {
        self.0
    }
}

impl fmt::Display for PortGuid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if f.width().is_some() {
            return f.pad(&format!("{:#018x}", self.0));
        }
        write!(f, "{:#018x}", self.0)
    }
}

impl Serialize for PortGuid {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// Checks that `text` only uses `[A-Za-z0-9]` and the given punctuation, starts alphanumeric and
/// is at most `max` bytes. This is the gate before anything reaches a device CLI or a config file.
pub fn check_word(what: &str, text: &str, punct: &str, max: usize) -> Result<(), ValueError> {
    if text.is_empty() {
        return err(format!("{what} is empty"));
    }
    if text.len() > max {
        return err(format!(
            "{what} `{}` is longer than {max} characters",
            text.escape_debug()
        ));
    }
    if let Some(c) = text
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || punct.contains(*c)))
    {
        return err(format!(
            "{what} `{}` contains `{}`; allowed are ASCII letters, digits and `{punct}`",
            text.escape_debug(),
            c.escape_debug()
        ));
    }
    if !text.starts_with(|c: char| c.is_ascii_alphanumeric()) {
        return err(format!(
            "{what} `{}` must start with an ASCII letter or digit",
            text.escape_debug()
        ));
    }
    Ok(())
}

/// Characters allowed in switch, node and gateway names (hostnames plus `_`).
pub const NAME_PUNCT: &str = "-_.";
/// Characters allowed in port names: `Ethernet1/1`, `xe-0/0/1:2`, `Port-Channel1`, `swp1s0`.
pub const PORT_PUNCT: &str = "-_./:";

/// A batch-system job id: Slurm `1234`, array `1234_7`, het job `1234+0`, PBS `1234.server`.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(transparent)]
pub struct JobId(String);

impl JobId {
    pub fn parse(text: &str) -> Result<Self, ValueError> {
        check_word("job id", text, "-_.+", 64)?;
        Ok(JobId(text.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The job id with everything but `[A-Za-z0-9_-]` replaced by `_`, for VLAN and partition
    /// names (which some platforms restrict further).
    pub fn sanitized(&self) -> String {
        self.0
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                    c
                } else {
                    '_'
                }
            })
            .collect()
    }

    /// The job's file or directory name under a directory of jobs (`<jobs_dir>/<name>`, the
    /// node's `<node>/<name>.json`): the id itself, and an id that starts with `.` (`..`, a
    /// hidden name) behind a `%`, which no job id contains — so the name never climbs out of
    /// the directory and no two jobs share one.
    pub fn file_name(&self) -> String {
        if self.0.starts_with('.') {
            format!("%{}", self.0)
        } else {
            self.0.clone()
        }
    }
}

impl fmt::Display for JobId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(&self.0)
    }
}

/// A port on a switch, written `switch:port` in topology files.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PortRef {
    pub switch: String,
    pub port: String,
}

impl PortRef {
    /// Splits at the first `:` (Junos channelized ports contain further colons).
    pub fn parse(text: &str) -> Result<Self, ValueError> {
        let Some((sw, port)) = text.split_once(':') else {
            return err(format!(
                "`{text}` is not a port (SWITCH:PORT, e.g. leaf1:Ethernet1)"
            ));
        };
        check_word("switch name", sw, NAME_PUNCT, 64)?;
        check_word("port name", port, PORT_PUNCT, 64)?;
        Ok(PortRef {
            switch: sw.to_string(),
            port: port.to_string(),
        })
    }
}

impl fmt::Display for PortRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if f.width().is_some() {
            return f.pad(&format!("{}:{}", self.switch, self.port));
        }
        write!(f, "{}:{}", self.switch, self.port)
    }
}

impl Serialize for PortRef {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// Checks a remote path before it reaches a shell command: absolute, `[A-Za-z0-9/._-]` only.
pub fn safe_path(path: &str) -> bool {
    path.starts_with('/')
        && !path.contains("..")
        && path
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "/._-".contains(c))
}

/// A set of integers kept as sorted, merged, inclusive ranges; used for VLAN and PKey pools.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RangeSet(Vec<(u64, u64)>);

impl RangeSet {
    /// Parses `"1000-1999,2100"` or `"0x1000-0x1fff"`; every value must lie in `lo..=hi`.
    pub fn parse(text: &str, lo: u64, hi: u64, what: &str) -> Result<Self, ValueError> {
        let mut ranges = Vec::new();
        for part in text.split(',') {
            let part = part.trim();
            if part.is_empty() {
                return err(format!(
                    "empty item in {what} list `{text}`; remove the extra comma"
                ));
            }
            let (a, b) = match part.split_once('-') {
                Some((a, b)) => (parse_number(a)?, parse_number(b)?),
                None => {
                    let v = parse_number(part)?;
                    (v, v)
                }
            };
            if a > b {
                return err(format!(
                    "{what} range `{part}` runs backwards; write the smaller value first"
                ));
            }
            for v in [a, b] {
                if v < lo || v > hi {
                    return err(format!("{what} {v} (0x{v:x}) in `{part}` is outside {lo}..{hi} (0x{lo:x}..0x{hi:x})"));
                }
            }
            ranges.push((a, b));
        }
        Ok(Self::from_ranges(ranges))
    }

    pub fn from_ranges(mut ranges: Vec<(u64, u64)>) -> Self {
        ranges.sort_unstable();
        let mut merged: Vec<(u64, u64)> = Vec::with_capacity(ranges.len());
        for (a, b) in ranges {
            match merged.last_mut() {
                Some(last) if a <= last.1.saturating_add(1) => last.1 = last.1.max(b),
                _ => merged.push((a, b)),
            }
        }
        RangeSet(merged)
    }

    pub fn contains(&self, v: u64) -> bool {
        self.0.iter().any(|&(a, b)| a <= v && v <= b)
    }

    pub fn ranges(&self) -> &[(u64, u64)] {
        &self.0
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn len(&self) -> u64 {
        self.0.iter().map(|&(a, b)| b - a + 1).sum()
    }

    /// Values in `self` that are not in `other`.
    pub fn minus(&self, other: &RangeSet) -> RangeSet {
        let mut out = Vec::new();
        for &(a, b) in &self.0 {
            let mut start = a;
            for &(c, d) in &other.0 {
                if d < start || c > b {
                    continue;
                }
                if c > start {
                    out.push((start, c - 1));
                }
                start = d.saturating_add(1);
                if start > b {
                    break;
                }
            }
            if start <= b {
                out.push((start, b));
            }
        }
        RangeSet(out)
    }

    pub fn intersect(&self, other: &RangeSet) -> RangeSet {
        self.minus(&self.minus(other))
    }

    /// The lowest value for which `taken` is false.
    pub fn first_free(&self, taken: impl Fn(u64) -> bool) -> Option<u64> {
        self.0.iter().flat_map(|&(a, b)| a..=b).find(|v| !taken(*v))
    }

    /// Renders as `1000-1999,2100`, in hex when `hex` is set.
    pub fn display(&self, hex: bool) -> String {
        let f = |v: u64| {
            if hex {
                format!("{v:#06x}")
            } else {
                v.to_string()
            }
        };
        self.0
            .iter()
            .map(|&(a, b)| {
                if a == b {
                    f(a)
                } else {
                    format!("{}-{}", f(a), f(b))
                }
            })
            .collect::<Vec<_>>()
            .join(",")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn job_file_names_stay_in_their_directory_and_apart() {
        let name = |id: &str| JobId::parse(id).unwrap().file_name();
        assert_eq!(name("1234"), "1234");
        assert_eq!(name("77_3"), "77_3");
        assert_eq!(name("5+0"), "5+0");
        // What could climb out or hide is no job id at all.
        for id in ["..", ".", ".hidden", "a/b", "/x", ""] {
            assert!(JobId::parse(id).is_err(), "{id}");
        }
        // Belt and braces for an id made some other way: a leading dot goes behind `%`.
        let odd = JobId("..".into()).file_name();
        assert_eq!(odd, "%..");
        assert_ne!(JobId(".x".into()).file_name(), name("x"));
    }

    #[test]
    fn vlan_and_pkey_ranges() {
        assert!(VlanId::parse("0").is_err());
        assert!(VlanId::parse("4095").is_err());
        assert_eq!(VlanId::parse("4094").unwrap().get(), 4094);
        assert!(PKey::parse("0x7fff").is_err());
        assert!(
            PKey::parse("0x8101").is_err(),
            "OpenSM would silently store 0x0101"
        );
        assert!(PKey::parse("0x10000").is_err());
        assert_eq!(PKey::parse("0x1000").unwrap().to_string(), "0x1000");
        assert_eq!(PKey::parse("0x1000").unwrap().full_member(), 0x9000);
        assert!(parse_number("010").unwrap_err().0.contains("octal"));
    }

    #[test]
    fn guids() {
        assert_eq!(
            PortGuid::parse("0x100001").unwrap().to_string(),
            "0x0000000000100001"
        );
        assert!(PortGuid::parse("0002c90300a1b001").is_err());
        assert!(PortGuid::parse("0x0").is_err());
        assert!(PortGuid::parse("0x0002c90300a1b001ff").is_err());
        assert!(PortGuid::parse("0xzz").is_err());
    }

    #[test]
    fn words_refuse_injection() {
        for bad in ["a;b", "a\nb", "a'b", "a\"b", "$(x)", "a b", "-x", ""] {
            assert!(JobId::parse(bad).is_err(), "{bad:?} must be refused");
        }
        assert_eq!(JobId::parse("1234+0").unwrap().sanitized(), "1234_0");
        assert_eq!(PortRef::parse("sw:xe-0/0/1:2").unwrap().port, "xe-0/0/1:2");
        assert!(PortRef::parse("sw").is_err());
        assert!(PortRef::parse("sw:Eth 1").is_err());
    }

    #[test]
    fn range_sets() {
        let pool = RangeSet::parse("1000-1999,300", 1, 4094, "VLAN").unwrap();
        let reserved = RangeSet::parse("1,1002-1005", 1, 4094, "VLAN").unwrap();
        let usable = pool.minus(&reserved);
        assert_eq!(usable.display(false), "300,1000-1001,1006-1999");
        assert_eq!(usable.len(), 1 + 2 + 994);
        assert_eq!(pool.intersect(&reserved).display(false), "1002-1005");
        assert_eq!(usable.first_free(|v| v == 300 || v == 1000), Some(1001));
        assert!(RangeSet::parse("100-199,", 1, 4094, "VLAN").is_err());
        assert!(RangeSet::parse("200-100", 1, 4094, "VLAN").is_err());
        assert!(RangeSet::parse("0-10", 1, 4094, "VLAN").is_err());
        assert_eq!(
            RangeSet::parse("0x1000-0x1fff", 1, 0x7ffe, "PKey")
                .unwrap()
                .display(true),
            "0x1000-0x1fff"
        );
    }
}
