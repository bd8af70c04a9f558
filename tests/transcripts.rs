//! The shipped dialect profiles against device output copied from outside this project (vendor
//! documentation and public captures of real devices, tests/transcripts/, each file naming its
//! source): the read patterns must understand them, the error patterns must recognise the
//! vendors' refusals, and the test kit's simulator must answer in the same shape.
//!
//! A transcript's `checks:` header says what it exercises: `read.vlans`, `read.port`, `errors`, or
//! `-` with the reason it does not (another command's output kept for reference).

use jobnet::base::types::{RangeSet, VlanId};
use jobnet::drivers::read::{Allowed, Mode};
use jobnet::drivers::{DeviceKind, DriverSet, Profile};
use jobnet::testkit::sim::{port_answer, SimMode, SimPort};
use std::collections::BTreeMap;

struct Transcript {
    file: String,
    header: BTreeMap<String, String>,
    body: String,
}

fn transcripts() -> Vec<Transcript> {
    let mut out = Vec::new();
    let mut dirs: Vec<_> = std::fs::read_dir("tests/transcripts")
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_dir())
        .collect();
    dirs.sort();
    for dir in dirs {
        let mut files: Vec<_> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        files.sort();
        for f in files {
            let text = std::fs::read_to_string(&f).unwrap();
            let (head, body) = text
                .split_once("\n---\n")
                .unwrap_or_else(|| panic!("{}: no `---` line", f.display()));
            let mut header = BTreeMap::new();
            for line in head.lines() {
                let (k, v) = line
                    .split_once(": ")
                    .unwrap_or_else(|| panic!("{}: header line `{line}`", f.display()));
                if k != "note" {
                    header.insert(k.to_string(), v.to_string());
                }
            }
            for key in ["source", "command", "kind", "expect", "checks"] {
                assert!(header.contains_key(key), "{} lacks `{key}:`", f.display());
            }
            out.push(Transcript {
                file: f.display().to_string(),
                header,
                body: body.to_string(),
            });
        }
    }
    out
}

fn profile_of<'a>(set: &'a DriverSet, t: &Transcript) -> &'a Profile {
    let name = t.file.split('/').nth(2).unwrap();
    set.get(name)
        .unwrap_or_else(|| panic!("{}: no profile {name}", t.file))
}

/// `mode=trunk allowed=10,20-30 access=1` as a map.
fn expect(t: &Transcript) -> BTreeMap<String, String> {
    t.header["expect"]
        .split_whitespace()
        .filter_map(|kv| kv.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn allowed_of(text: &str) -> Allowed {
    match text {
        "ALL" => Allowed::All,
        "NONE" => Allowed::List(RangeSet::default()),
        list => Allowed::List(jobnet::drivers::read::parse_list(list).unwrap()),
    }
}

fn mode_of(text: &str) -> Mode {
    match text {
        "access" => Mode::Access,
        "trunk" => Mode::Trunk,
        other => Mode::Other(other.replace('-', " ")),
    }
}

#[test]
fn vlan_tables_are_read() {
    let set = DriverSet::builtin();
    for t in transcripts()
        .iter()
        .filter(|t| t.header["checks"] == "read.vlans")
    {
        let p = profile_of(&set, t);
        let want: Vec<u16> = t.header["expect"]
            .trim_start_matches("vlans=")
            .split(',')
            .map(|v| v.parse().unwrap())
            .collect();
        let got = p
            .read_vlans
            .as_ref()
            .unwrap()
            .values(&t.body)
            .unwrap_or_else(|e| panic!("{}: {e}", t.file));
        assert_eq!(got, want, "{}", t.file);
    }
}

#[test]
fn ports_are_read_as_the_device_means_them() {
    let set = DriverSet::builtin();
    for t in transcripts()
        .iter()
        .filter(|t| t.header["checks"] == "read.port")
    {
        let p = profile_of(&set, t);
        let r = p.read_port.as_ref().unwrap();
        let e = expect(t);
        let got = r
            .parse(&t.body)
            .unwrap_or_else(|err| panic!("{}: {err}", t.file));
        let mode = mode_of(&e["mode"]);
        assert_eq!(got.mode, mode, "{}", t.file);
        if mode == Mode::Trunk {
            assert_eq!(got.allowed, Some(allowed_of(&e["allowed"])), "{}", t.file);
        }
        if mode == Mode::Access {
            let want = e["access"]
                .parse::<u64>()
                .ok()
                .filter(|v| Some(*v) != r.access_vlan.default);
            assert_eq!(
                got.access_vlan,
                want.map(|v| VlanId::new(v).unwrap()),
                "{}",
                t.file
            );
        }
    }
}

#[test]
fn refusals_are_recognised() {
    let set = DriverSet::builtin();
    let mut n = 0;
    for t in transcripts()
        .iter()
        .filter(|t| t.header["checks"] == "errors")
    {
        let p = profile_of(&set, t);
        let r =
            jobnet::drivers::transport::check_answer(p, "sw", &t.header["command"], t.body.clone());
        assert!(
            r.is_err(),
            "{}: not recognised as a refusal:\n{}",
            t.file,
            t.body
        );
        n += 1;
    }
    assert!(n >= 15, "{n} error transcripts");
    // And ordinary answers are not refusals.
    for t in transcripts()
        .iter()
        .filter(|t| t.header["checks"].starts_with("read."))
    {
        let p = profile_of(&set, t);
        assert!(
            jobnet::drivers::transport::check_answer(p, "sw", "show", t.body.clone()).is_ok(),
            "{}: an ordinary answer taken for a refusal",
            t.file
        );
    }
}

/// A line's shape: its label (before `:`) or its first two words; words with digits (values,
/// port names) masked, case ignored.
fn key(line: &str) -> String {
    let masked: Vec<String> = line
        .split_whitespace()
        .map(|w| {
            if w.chars().any(|c| c.is_ascii_digit()) {
                "#".to_string()
            } else {
                w.to_ascii_lowercase()
            }
        })
        .collect();
    let masked = masked.join(" ");
    match masked.split_once(':') {
        Some((label, _)) => label.trim().to_string(),
        None => masked.split(' ').take(2).collect::<Vec<_>>().join(" "),
    }
}

/// The simulator answers a port read with lines the vendor prints, and reads back as the same
/// state: so tests that run on the simulator exercise the same patterns as real devices.
#[test]
fn the_simulator_answers_like_the_vendor() {
    let set = DriverSet::builtin();
    let mut checked = BTreeMap::new();
    for t in transcripts()
        .iter()
        .filter(|t| t.header["checks"] == "read.port")
    {
        let p = profile_of(&set, t);
        let e = expect(t);
        let mode = mode_of(&e["mode"]);
        let sp = SimPort {
            mode: match mode {
                Mode::Access => SimMode::Access,
                Mode::Trunk => SimMode::Trunk,
                Mode::Other(_) => SimMode::Factory,
            },
            access: e["access"].parse().unwrap_or(1),
            allowed: allowed_of(&e["allowed"]),
        };
        if let Mode::Other(m) = &mode {
            if *m
                != p.sim
                    .as_ref()
                    .expect("shipped profiles carry simulator answers")
                    .mode_factory
            {
                continue; // a mode the simulator does not model (e.g. dynamic desirable)
            }
        }
        let answer = port_answer(p, "Port1", &sp);
        let vendor: Vec<String> = t.body.lines().map(key).collect();
        for line in answer.lines() {
            assert!(
                vendor.contains(&key(line)),
                "{}: the simulator says `{line}`, a line this vendor output does not have",
                t.file
            );
        }
        let back = p
            .read_port
            .as_ref()
            .unwrap()
            .parse(&answer)
            .unwrap_or_else(|err| panic!("{}: {err}\n{answer}", t.file));
        assert_eq!(back.mode, mode, "{}: {answer}", t.file);
        *checked.entry(p.name.clone()).or_insert(0) += 1;
    }
    // Every shipped Ethernet profile is checked against at least one transcript of its port read.
    for name in set.names() {
        let p = set.get(name).unwrap();
        if p.kind == DeviceKind::Ethernet {
            assert!(
                checked.contains_key(name),
                "no port transcript checks {name}"
            );
        }
    }
}

#[test]
fn every_transcript_is_used_or_says_why_not() {
    for t in transcripts() {
        let c = &t.header["checks"];
        assert!(
            ["read.vlans", "read.port", "errors"].contains(&c.as_str()) || c.starts_with("- ("),
            "{}: checks `{c}`",
            t.file
        );
        assert!(!t.header["source"].is_empty(), "{}: no source", t.file);
    }
}
