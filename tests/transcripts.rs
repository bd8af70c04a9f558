//! The shipped dialect profiles against device output copied from outside this project (vendor
//! documentation and public captures of real devices, tests/transcripts/, each file naming its
//! source): the read patterns must understand them, the error patterns must recognise the
//! vendors' refusals, and the test kit's simulator must answer in the same shape.
//!
//! A transcript's `checks:` header says what it exercises: `read.vlans`, `read.port`, `read.ports`
//! (one answer for many ports: its `expect:` has a group per port, `NAME mode=… allowed=…
//! access=…`, `; ` between them, in the answer's order), `errors`, `range` (a ranged interface
//! line a device took: its `ports:` must be written as the `expect:` line, which is the
//! captured `command:` as typed, abbreviations aside), or `-` with the reason it does not
//! (another command's output kept for reference). An `errors`
//! transcript may name a `line:` (text it contains) that must read as a refusal on its own.
//!
//! Also here: the session rule of a dialect that a transcript cannot show (MLNX-OS saves only in
//! configuration mode), checked on the real CLI driver against a session that keeps that rule.

use jobnet::base::types::{RangeSet, VlanId};
use jobnet::drivers::cli::{CliDriver, DeviceDriver};
use jobnet::drivers::read::{Allowed, Mode};
use jobnet::drivers::transport::{check_answer, Connector, DeviceError, Session, Target};
use jobnet::drivers::{DeviceKind, DriverSet, OpKind, Profile};
use jobnet::testkit::sim::{port_answer, SimMode, SimPort};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

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
        let got = r
            .parse(&t.body)
            .unwrap_or_else(|err| panic!("{}: {err}", t.file));
        same_port(&t.file, r, &got, &expect(t));
    }
}

/// A port read as the transcript's `expect` says the device means it.
fn same_port(
    what: &str,
    r: &jobnet::drivers::read::PortRead,
    got: &jobnet::drivers::read::PortState,
    e: &BTreeMap<String, String>,
) {
    let mode = mode_of(&e["mode"]);
    assert_eq!(got.mode, mode, "{what}");
    if mode == Mode::Trunk {
        assert_eq!(got.allowed, Some(allowed_of(&e["allowed"])), "{what}");
    }
    if mode == Mode::Access {
        let want = e["access"]
            .parse::<u64>()
            .ok()
            .filter(|v| Some(*v) != r.access_vlan.default);
        assert_eq!(
            got.access_vlan,
            want.map(|v| VlanId::new(v).unwrap()),
            "{what}"
        );
    }
}

/// One answer for every port (`read.ports`): cut into exactly the ports the device printed, in
/// its order, each read as the device means it — and found under the name a topology gives it
/// (the long form where the device prints a short one).
#[test]
fn many_ports_are_read_from_one_answer() {
    let set = DriverSet::builtin();
    let mut n = 0;
    for t in transcripts()
        .iter()
        .filter(|t| t.header["checks"] == "read.ports")
    {
        let p = profile_of(&set, t);
        let bulk = p
            .read_ports
            .as_ref()
            .unwrap_or_else(|| panic!("{}: profile {} has no read.ports", t.file, p.name));
        assert_eq!(t.header["command"], bulk.command, "{}", t.file);
        let one = p.read_port.as_ref().unwrap();
        let groups: Vec<(&str, BTreeMap<String, String>)> = t.header["expect"]
            .split("; ")
            .map(|g| {
                let (name, rest) = g.split_once(' ').expect("NAME k=v ...");
                let e = rest
                    .split_whitespace()
                    .filter_map(|kv| kv.split_once('='))
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect();
                (name, e)
            })
            .collect();
        let blocks = bulk.blocks(&t.body);
        let names: Vec<&str> = blocks.iter().map(|(n, _)| n.as_str()).collect();
        let wanted: Vec<&str> = groups.iter().map(|(n, _)| *n).collect();
        assert_eq!(
            names, wanted,
            "{}: the ports the answer is cut into",
            t.file
        );
        for (name, e) in &groups {
            let block = bulk.find(&blocks, name).unwrap();
            let got = one
                .parse(block)
                .unwrap_or_else(|err| panic!("{} {name}: {err}\n{block}", t.file));
            same_port(&format!("{} {name}", t.file), one, &got, e);
            // The topology's long name (IOS prints `Te1/8`) and short one (NX-OS prints
            // `Ethernet1/2`, a topology may write `Eth1/2`) find the same block.
            if let Some(long) = bulk.lengthen(name) {
                assert_eq!(bulk.find(&blocks, &long), Some(block), "{} {long}", t.file);
            }
            let short = bulk.shorten(name);
            assert_eq!(
                bulk.find(&blocks, &short),
                Some(block),
                "{} {short}",
                t.file
            );
            n += 1;
        }
    }
    assert!(n >= 70, "{n} ports read from bulk transcripts");
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
        let r = check_answer(p, "sw", &t.header["command"], t.body.clone());
        assert!(
            r.is_err(),
            "{}: not recognised as a refusal:\n{}",
            t.file,
            t.body
        );
        if let Some(text) = t.header.get("line") {
            let lines: Vec<&str> = t
                .body
                .lines()
                .filter(|l| l.contains(text.as_str()))
                .collect();
            assert!(!lines.is_empty(), "{}: no line has `{text}`", t.file);
            for l in lines {
                assert!(
                    check_answer(p, "sw", &t.header["command"], l.to_string()).is_err(),
                    "{}: the line `{l}` alone is not recognised as a refusal",
                    t.file
                );
            }
        }
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
            check_answer(p, "sw", "show", t.body.clone()).is_ok(),
            "{}: an ordinary answer taken for a refusal",
            t.file
        );
    }
}

/// A command's words, each cut where letters meet digits (`f1/0` is `f`, `1/0`), for comparing
/// a command as typed with its abbreviations (IOS `int r f1/0 - 1`) to the full form.
fn words(command: &str) -> Vec<String> {
    let mut out = Vec::new();
    for w in command.split_whitespace() {
        let alpha = w
            .find(|c: char| !c.is_ascii_alphabetic())
            .unwrap_or(w.len());
        out.extend(
            [&w[..alpha], &w[alpha..]]
                .into_iter()
                .filter(|p| !p.is_empty())
                .map(str::to_ascii_lowercase),
        );
    }
    out
}

/// Ranged interface lines as devices took them: the profile writes the transcript's ports
/// as the line the device was typed (abbreviations aside), reads that line back as the same
/// ports, and the device answered it with its range-mode prompt and no refusal.
#[test]
fn ranged_lines_are_written_as_the_devices_take_them() {
    let set = DriverSet::builtin();
    let mut n = 0;
    for t in transcripts()
        .iter()
        .filter(|t| t.header["checks"] == "range")
    {
        let p = profile_of(&set, t);
        let r = p
            .range
            .as_ref()
            .unwrap_or_else(|| panic!("{}: profile {} has no range", t.file, p.name));
        let ports: Vec<&str> = t.header["ports"].split(", ").collect();
        let want = &t.header["expect"];
        assert_eq!(r.line(&ports).as_ref(), Some(want), "{}", t.file);
        assert_eq!(r.expand(want).unwrap(), ports, "{}: read back", t.file);
        // As typed: every word of the capture the start of the profile's (case aside).
        let (typed, full) = (words(&t.header["command"]), words(want));
        assert_eq!(typed.len(), full.len(), "{}: {typed:?} {full:?}", t.file);
        for (a, b) in typed.iter().zip(&full) {
            let letters = a.chars().all(|c| c.is_ascii_alphabetic());
            assert!(
                if letters {
                    b.starts_with(a.as_str())
                } else {
                    a == b
                },
                "{}: `{a}` is not `{b}`",
                t.file
            );
        }
        let lines: Vec<&str> = t.body.lines().collect();
        let at = lines
            .iter()
            .position(|l| {
                l.trim_end().ends_with(&format!("#{}", t.header["command"]))
                    || l.trim_end()
                        .ends_with(&format!("# {}", t.header["command"]))
            })
            .unwrap_or_else(|| panic!("{}: the command is not in the session", t.file));
        assert!(
            lines
                .get(at + 1)
                .is_some_and(|l| l.contains("(config-if-range)#")),
            "{}: no range-mode prompt after the command",
            t.file
        );
        assert_no_refusal(p, want, t);
        n += 1;
    }
    assert!(n >= 4, "{n} range transcripts");
}

/// No line of a captured session reads as a refusal in the profile's patterns.
fn assert_no_refusal(p: &Profile, command: &str, t: &Transcript) {
    assert!(
        check_answer(p, "sw", command, t.body.clone()).is_ok(),
        "{}: a line reads as a refusal",
        t.file
    );
}

/// VLAN lists as devices took them in one line (`vlan_lists:`): the profile writes the
/// transcript's VLANs as the line the device was typed, and the device answered it with the
/// next prompt and no refusal.
#[test]
fn vlan_list_lines_are_written_as_the_devices_take_them() {
    let set = DriverSet::builtin();
    let mut n = 0;
    for t in transcripts()
        .iter()
        .filter(|t| t.header["checks"] == "list")
    {
        let p = profile_of(&set, t);
        let want = &t.header["expect"];
        let list = want.rsplit(' ').next().unwrap();
        let vlans: Vec<VlanId> = list.split(',').map(|v| VlanId::parse(v).unwrap()).collect();
        for op in [OpKind::TrunkAdd, OpKind::TaggedAdd] {
            let lines = p
                .render_list(op, "Ethernet1", "jobnet-x", &vlans)
                .unwrap_or_else(|| panic!("{}: {} takes no list for {op}", t.file, p.name));
            assert!(lines.contains(want), "{}: {lines:?}", t.file);
        }
        assert_eq!(&t.header["command"], want, "{}", t.file);
        let lines: Vec<&str> = t.body.lines().collect();
        let at = lines
            .iter()
            .position(|l| l.trim_end().ends_with(want.as_str()) && l.contains('#'))
            .unwrap_or_else(|| panic!("{}: the command is not in the session", t.file));
        let prompt = lines[at].split('#').next().unwrap().trim_end();
        assert!(
            lines.get(at + 1).is_some_and(|l| l.starts_with(prompt)),
            "{}: the line after the command is not the next prompt",
            t.file
        );
        assert_no_refusal(p, want, t);
        n += 1;
    }
    assert!(n >= 3, "{n} list transcripts");
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
            [
                "read.vlans",
                "read.port",
                "read.ports",
                "errors",
                "range",
                "list"
            ]
            .contains(&c.as_str())
                || c.starts_with("- ("),
            "{}: checks `{c}`",
            t.file
        );
        assert!(!t.header["source"].is_empty(), "{}: no source", t.file);
    }
}

/// An MLNX-OS session as far as saving goes: `configure terminal` enters configuration mode,
/// `interface ...`/`vlan ...` a context within it, `exit` leaves the innermost one, and
/// `configuration write` is refused outside configuration mode (netmiko's MellanoxMlnxosSSH
/// save_config enters `config term` before sending it and leaves afterwards).
#[derive(Default)]
struct MlnxModes {
    /// 0: enable mode, 1: configuration mode, 2: a context (interface, vlan) within it.
    depth: usize,
    saved: bool,
}

struct MlnxSession(Arc<Mutex<MlnxModes>>);

impl Session for MlnxSession {
    fn run(&mut self, line: &str) -> Result<String, DeviceError> {
        let mut m = self.0.lock().unwrap();
        match line {
            "configure terminal" if m.depth == 0 => m.depth = 1,
            "exit" => m.depth = m.depth.saturating_sub(1),
            "configuration write" if m.depth == 1 => m.saved = true,
            "configuration write" => {
                return Err(DeviceError::Rejected {
                    device: "sw".into(),
                    command: line.into(),
                    answer: "(refused outside configuration mode)".into(),
                })
            }
            l if m.depth == 1 && (l.starts_with("interface ") || l.starts_with("vlan ")) => {
                m.depth = 2
            }
            _ => {}
        }
        Ok(String::new())
    }
}

struct MlnxConnector(Arc<Mutex<MlnxModes>>);

impl Connector for MlnxConnector {
    fn connect(&self, _: &Target, _: &Profile) -> Result<Box<dyn Session>, DeviceError> {
        Ok(Box::new(MlnxSession(self.0.clone())))
    }
}

/// `--save-config` on an MLNX-OS device: the driver's finish (commit, end, then save) saves in
/// configuration mode and leaves it again, after changes and after an undo alike.
#[test]
fn mlnx_os_saves_in_configuration_mode() {
    let set = DriverSet::builtin();
    for name in ["mellanox-onyx", "mellanox-gateway"] {
        let p = set.get(name).unwrap();
        for undoing in [false, true] {
            let modes = Arc::new(Mutex::new(MlnxModes::default()));
            let connector = MlnxConnector(modes.clone());
            let target = Target::new("sw", name, "192.0.2.1", None, false);
            let mut d = CliDriver::open(&connector, target, p, "jobnet-7").unwrap();
            d.begin().unwrap();
            if let Err(e) = d.finish(true, undoing) {
                panic!("{name}: saving failed: {e}");
            }
            let m = modes.lock().unwrap();
            assert!(m.saved, "{name}: nothing saved");
            assert_eq!(m.depth, 0, "{name}: left in configuration mode");
        }
    }
}
