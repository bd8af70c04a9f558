//! A simulated switch that speaks any shipped dialect, with state and injectable faults.
//!
//! It reads the profile's own templates backwards: each operation's command lines become anchored
//! patterns, incoming lines are buffered until they complete an operation, and the operation's
//! effect is applied to the switch state (VLANs, ports with mode, access VLAN and allowed list,
//! proxy-arp bindings). Read commands are answered from the state in the vendor's layout (the
//! profile's `sim:` answers, written after the vendor's documented output). A line that neither
//! completes nor starts an operation is refused with the vendor's refusal text. A ranged context
//! line (`range:`, `interface Ethernet1/1-4`) makes the lines after it apply to every member,
//! member by member, as the vendors document it: a member that refuses stops the line there,
//! the members before it configured.
//!
//! Ports behave as the vendors document them: a port nobody configured is in its factory default
//! (Cisco IOS `dynamic auto`, Arista `static access`, both allowing ALL VLANs; OS10 and Junos
//! allowing none; an OVS port without tag is a trunk of every VLAN); `allowed vlan add` to an ALL
//! list changes nothing and `remove` from ALL leaves every other VLAN explicitly listed.
//!
//! It is the test kit's switch for speed and fault injection (latency at login and per command,
//! refused login, a refused shell, a rejected command, a dropped connection, a refused `end`); it
//! never replaces real Open vSwitch for proving data-plane behaviour.

use crate::base::types::RangeSet;
use crate::drivers::read::Allowed;
use crate::drivers::transport::{Connector, DeviceError, Session, Target};
use crate::drivers::{OpKind, Profile, OPERATIONS};
use regex::Regex;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// A port's configured mode in the simulator.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SimMode {
    Access,
    Trunk,
    /// The vendor's factory mode when it is neither (Cisco IOS `dynamic auto`).
    Factory,
}

/// One port of a simulated switch.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SimPort {
    pub mode: SimMode,
    /// The access VLAN (1 when nothing is configured).
    pub access: u16,
    pub allowed: Allowed,
}

impl SimPort {
    /// An access port in `vlan`.
    pub fn access(vlan: u16) -> Self {
        SimPort {
            mode: SimMode::Access,
            access: vlan,
            allowed: Allowed::All,
        }
    }

    /// A trunk allowing exactly `vlans`.
    pub fn trunk(vlans: &[u16]) -> Self {
        SimPort {
            mode: SimMode::Trunk,
            access: 1,
            allowed: Allowed::List(RangeSet::from_ranges(
                vlans
                    .iter()
                    .map(|&v| (u64::from(v), u64::from(v)))
                    .collect(),
            )),
        }
    }

    /// Whether traffic of `vlan` passes this port tagged.
    pub fn carries(&self, vlan: u16) -> bool {
        self.mode == SimMode::Trunk
            && match &self.allowed {
                Allowed::All => true,
                Allowed::List(l) => l.contains(vlan.into()),
            }
    }
}

/// What a simulated switch holds. Ports in their factory default are not listed, so a port
/// that went back to its default compares equal to one never touched.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SimState {
    pub vlans: BTreeMap<u16, String>,
    pub ports: BTreeMap<String, SimPort>,
    /// Gateway proxy-arp interfaces: VLAN → full-member PKey text.
    pub proxy_arp: BTreeMap<u16, String>,
    /// The ports the switch has (the topology's), which a read of all ports shows; configured
    /// ports are shown too.
    pub inventory: std::collections::BTreeSet<String>,
}

impl SimState {
    /// Whether `port` passes `vlan` tagged (factory-default ports as the profile says).
    pub fn carries(&self, profile: &Profile, port: &str, vlan: u16) -> bool {
        self.port(profile, port).carries(vlan)
    }

    /// The access VLAN of `port` when it is an access port.
    pub fn access_of(&self, profile: &Profile, port: &str) -> Option<u16> {
        let p = self.port(profile, port);
        (p.mode == SimMode::Access).then_some(p.access)
    }

    /// A port's state, its factory default when never configured.
    pub fn port(&self, profile: &Profile, port: &str) -> SimPort {
        self.ports
            .get(port)
            .cloned()
            .unwrap_or_else(|| factory(profile))
    }

    fn set_port(&mut self, profile: &Profile, port: &str, p: SimPort) {
        if p == factory(profile) {
            self.ports.remove(port);
        } else {
            self.ports.insert(port.to_string(), p);
        }
    }
}

/// The profile's simulator answers (its `sim:` section), or none at all.
fn answers(p: &Profile) -> crate::drivers::SimAnswers {
    p.sim.clone().unwrap_or_default()
}

/// A port as the vendor ships it.
pub fn factory(profile: &Profile) -> SimPort {
    SimPort {
        mode: if answers(profile).factory_trunk {
            SimMode::Trunk
        } else {
            SimMode::Factory
        },
        access: 1,
        allowed: if answers(profile).factory_allows_none {
            Allowed::List(RangeSet::default())
        } else {
            Allowed::All
        },
    }
}

/// Faults and latency of one simulated switch.
#[derive(Clone, Debug, Default)]
pub struct Faults {
    pub login_latency: Duration,
    pub command_latency: Duration,
    pub refuse_login: bool,
    /// Refuse the SSH shell (and exec) request, like a NETCONF-only device.
    pub refuse_shell: bool,
    /// Refuse the profile's mode-leaving `end` lines, like a CLI without `end`.
    pub refuse_end: bool,
    /// Reject the n-th operation line of a session (1-based) with this answer.
    pub reject_line: Option<(usize, String)>,
    /// Reject every line that contains this text.
    pub reject_matching: Option<String>,
    /// Answer every line that contains this text with this (unparseable) text instead.
    pub garble_matching: Option<(String, String)>,
    /// Drop the connection when the n-th line of a session arrives.
    pub drop_at_line: Option<usize>,
    /// Never answer the n-th line (the caller's timeout must fire).
    pub hang_at_line: Option<usize>,
    /// Split answers longer than this many lines with a `--More--` pager (SSH server only).
    pub page_lines: Option<usize>,
    /// Line-count faults (`reject_line`, `drop_at_line`, `hang_at_line`) hit only the next
    /// session opened, like a glitch; later sessions (the rollback's) work.
    pub next_session_only: bool,
    /// Ports a read of all ports (`read.ports`) leaves out, as a device leaves out a port that
    /// is not a switchport there.
    pub hide_in_bulk: Vec<String>,
    /// Ports that refuse changes: the first line after a context line naming one of them is
    /// refused; after a ranged one (`interface Ethernet1/1-8`) the members before the first
    /// of them are configured and the line is refused there (a ranged line is carried out
    /// member by member).
    pub refuse_ports: Vec<String>,
}

struct OpPattern {
    op: OpKind,
    lines: Vec<(Regex, Vec<String>)>,
    /// The templates, for the lines without placeholders.
    templates: Vec<String>,
}

/// `{vlan}` matches one VLAN, or a list joined by `list` where the profile takes one there.
fn pattern(template: &str, list: Option<&str>) -> (Regex, Vec<String>) {
    let mut re = String::from("^");
    let mut names = Vec::new();
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        re.push_str(&regex::escape(&rest[..open]));
        let close = rest[open..].find('}').expect("checked at load") + open;
        let key = &rest[open + 1..close];
        let vlans = list.map(|j| format!(r"(\d+(?:{}\d+)*)", regex::escape(j)));
        re.push_str(match key {
            "vlan" if vlans.is_some() => vlans.as_deref().expect("checked"),
            "vlan" | "previous" => r"(\d+)",
            "pkey" | "pkey_full" => r"(0x[0-9a-fA-F]+)",
            _ => r"(\S+)",
        });
        names.push(key.to_string());
        rest = &rest[close + 1..];
    }
    re.push_str(&regex::escape(rest));
    re.push('$');
    (Regex::new(&re).expect("escaped template"), names)
}

/// The dialect of one profile, compiled for the simulator.
pub struct Dialect {
    profile: Profile,
    ops: Vec<OpPattern>,
    read_port: Option<(Regex, Vec<String>)>,
    /// How often the switch was asked for one port and for all ports (benchmarks and tests).
    pub reads: Arc<Mutex<(usize, usize)>>,
}

impl Dialect {
    pub fn new(profile: &Profile) -> Self {
        let ops = OPERATIONS
            .iter()
            .filter(|o| o.kind == profile.kind)
            .filter_map(|o| {
                let templates = profile.ops.get(&o.op)?.clone();
                let list = profile
                    .vlan_lists
                    .as_ref()
                    .filter(|l| l.ops.contains(&o.op))
                    .map(|l| l.join.as_str());
                let lines: Vec<_> = templates.iter().map(|t| pattern(t, list)).collect();
                (!lines.is_empty()).then_some(OpPattern {
                    op: o.op,
                    lines,
                    templates,
                })
            })
            .collect();
        let read_port = profile
            .read_port
            .as_ref()
            .map(|r| pattern(&r.command, None));
        Dialect {
            profile: profile.clone(),
            ops,
            read_port,
            reads: Arc::default(),
        }
    }
}

/// A simulated switch: shared state plus faults; sessions are opened with [`SimSwitch::session`].
#[derive(Clone)]
pub struct SimSwitch {
    pub name: String,
    pub state: Arc<Mutex<SimState>>,
    pub faults: Arc<Mutex<Faults>>,
    dialect: Arc<Dialect>,
    /// Every line received, for tests.
    pub log: Arc<Mutex<Vec<String>>>,
}

impl SimSwitch {
    pub fn new(name: &str, profile: &Profile) -> Self {
        SimSwitch {
            name: name.to_string(),
            state: Arc::default(),
            faults: Arc::default(),
            dialect: Arc::new(Dialect::new(profile)),
            log: Arc::default(),
        }
    }

    pub fn session(&self) -> Result<SimSession, DeviceError> {
        let faults = self.faults();
        std::thread::sleep(faults.login_latency);
        if faults.refuse_login {
            return Err(DeviceError::Connect {
                device: self.name.clone(),
                address: "sim".into(),
                reason: "authentication refused".into(),
            });
        }
        if faults.refuse_shell {
            return Err(DeviceError::Connect {
                device: self.name.clone(),
                address: "sim".into(),
                reason: "the device refused an interactive shell".into(),
            });
        }
        Ok(self.new_session(faults))
    }

    fn new_session(&self, faults: Faults) -> SimSession {
        SimSession {
            sw: self.clone(),
            faults,
            buffer: Vec::new(),
            members: None,
            lines: 0,
            op_lines: 0,
        }
    }

    /// A session for the SSH server, which applies latency itself (asynchronously) and checks
    /// logins itself.
    pub fn server_session(&self) -> SimSession {
        let mut faults = self.faults();
        faults.login_latency = Duration::ZERO;
        faults.command_latency = Duration::ZERO;
        self.new_session(faults)
    }

    /// The faults for a new session (consuming one-shot line faults).
    pub fn faults(&self) -> Faults {
        let mut shared = self.faults.lock().expect("faults");
        let f = shared.clone();
        if f.next_session_only {
            shared.reject_line = None;
            shared.drop_at_line = None;
            shared.hang_at_line = None;
            shared.next_session_only = false;
        }
        f
    }

    pub fn profile(&self) -> &Profile {
        &self.dialect.profile
    }

    /// How often the switch was asked for one port's state and for all ports' (`read.ports`).
    pub fn reads(&self) -> (usize, usize) {
        *self.dialect.reads.lock().expect("reads")
    }

    /// Configures a port as a site would (for tests).
    pub fn set_port(&self, port: &str, p: SimPort) {
        let profile = self.profile().clone();
        self.state
            .lock()
            .expect("state")
            .set_port(&profile, port, p);
    }
}

/// One session with a simulated switch.
pub struct SimSession {
    sw: SimSwitch,
    faults: Faults,
    buffer: Vec<String>,
    /// The members of the ranged context line that starts `buffer`.
    members: Option<Vec<String>>,
    lines: usize,
    op_lines: usize,
}

enum Match {
    Complete(OpKind, HashMap<String, String>),
    Prefix,
    None,
}

impl SimSession {
    fn refuse(&self, line: &str, answer: &str) -> DeviceError {
        DeviceError::Rejected {
            device: self.sw.name.clone(),
            command: line.to_string(),
            answer: answer.to_string(),
        }
    }

    fn match_lines(&self, lines: &[String]) -> Match {
        let mut prefix = false;
        for op in &self.sw.dialect.ops {
            if lines.len() > op.lines.len() {
                continue;
            }
            let mut vars: HashMap<String, String> = HashMap::new();
            let ok = lines.iter().zip(&op.lines).all(|(line, (re, names))| {
                let Some(c) = re.captures(line) else {
                    return false;
                };
                names.iter().enumerate().all(|(i, n)| {
                    let v = c.get(i + 1).map_or("", |m| m.as_str()).to_string();
                    vars.entry(n.clone()).or_insert_with(|| v.clone()) == &v
                })
            });
            if ok {
                if lines.len() == op.lines.len() {
                    return Match::Complete(op.op, vars);
                }
                prefix = true;
            }
        }
        if prefix {
            Match::Prefix
        } else {
            Match::None
        }
    }

    /// The buffer as one port's lines: a ranged context line stands for its first member's.
    fn view(&self) -> Vec<String> {
        let mut lines = self.buffer.clone();
        if let (Some(members), Some(r)) = (&self.members, &self.sw.profile().range) {
            lines[0] = r.context.replace("{port}", &members[0]);
        }
        lines
    }

    /// The members of `line` when it is a ranged context line (several ports, or a form the
    /// one-port context line does not have).
    fn ranged_members(&self, line: &str) -> Option<Vec<String>> {
        let r = self.sw.profile().range.as_ref()?;
        let members = r.expand(line)?;
        let plain = members.len() == 1 && r.context.replace("{port}", &members[0]) == line;
        (!plain).then_some(members)
    }

    /// The operation `lines` start, completed with its remaining lines where those are fixed
    /// text (`exit`): what a line already carried out belongs to.
    fn complete_fixed(&self, lines: &[String]) -> Option<(OpKind, HashMap<String, String>)> {
        self.sw.dialect.ops.iter().find_map(|op| {
            let rest = op.templates.get(lines.len()..)?;
            if rest.iter().any(|t| t.contains('{')) {
                return None;
            }
            let mut all = lines.to_vec();
            all.extend(rest.iter().cloned());
            match self.match_lines(&all) {
                Match::Complete(k, vars) if k == op.op => Some((k, vars)),
                _ => None,
            }
        })
    }

    fn clear(&mut self) {
        self.buffer.clear();
        self.members = None;
    }

    /// The first line after a context line whose port refuses changes (`refuse_ports`):
    /// the members before it configured, the line refused.
    fn refused_port(&mut self, line: &str) -> Option<DeviceError> {
        if self.buffer.len() != 2 || self.faults.refuse_ports.is_empty() {
            return None;
        }
        let view = self.view();
        let (op, vars) = self.complete_fixed(&view)?;
        let members = self
            .members
            .clone()
            .unwrap_or_else(|| vars.get("port").cloned().into_iter().collect());
        let stop = members
            .iter()
            .position(|m| self.faults.refuse_ports.contains(m))?;
        for m in &members[..stop] {
            let mut v = vars.clone();
            v.insert("port".into(), m.clone());
            self.apply(op, &v);
        }
        self.clear();
        Some(self.refuse(line, &answers(self.sw.profile()).invalid))
    }

    fn apply(&self, op: OpKind, v: &HashMap<String, String>) {
        let num = |k: &str| v.get(k).and_then(|s| s.parse::<u16>().ok()).unwrap_or(0);
        let profile = self.sw.profile();
        let mut st = self.sw.state.lock().expect("state");
        let port_name = v.get("port").cloned().unwrap_or_default();
        let mut port = st.port(profile, &port_name);
        let vlan = u64::from(num("vlan"));
        match op {
            OpKind::CreateVlan => {
                st.vlans
                    .insert(num("vlan"), v.get("name").cloned().unwrap_or_default());
                return;
            }
            OpKind::DeleteVlan => {
                st.vlans.remove(&num("vlan"));
                return;
            }
            OpKind::ProxyArpCreate => {
                st.proxy_arp
                    .insert(num("vlan"), v.get("pkey_full").cloned().unwrap_or_default());
                return;
            }
            OpKind::ProxyArpDelete => {
                st.proxy_arp.remove(&num("vlan"));
                return;
            }
            // Adding to ALL changes nothing: the vendors' documented behaviour.
            OpKind::TrunkAdd | OpKind::TaggedAdd => {
                if let Allowed::List(l) = &port.allowed {
                    let mut r = l.ranges().to_vec();
                    r.push((vlan, vlan));
                    port.allowed = Allowed::List(RangeSet::from_ranges(r));
                }
            }
            // Removing from ALL lists every other VLAN explicitly.
            OpKind::TrunkRemove | OpKind::TaggedRemove => {
                let all = RangeSet::from_ranges(vec![(1, 4094)]);
                let current = match &port.allowed {
                    Allowed::All => all,
                    Allowed::List(l) => l.clone(),
                };
                port.allowed =
                    Allowed::List(current.minus(&RangeSet::from_ranges(vec![(vlan, vlan)])));
            }
            OpKind::RestrictPort => {
                port.allowed = Allowed::List(RangeSet::from_ranges(vec![(vlan, vlan)]));
            }
            OpKind::UnrestrictPort => port.allowed = Allowed::All,
            OpKind::AccessSet => port.access = num("vlan"),
            OpKind::AccessRestore => port.access = num("previous"),
            OpKind::AccessClear => port.access = 1,
        }
        st.set_port(profile, &port_name, port);
    }

    fn read(&self, line: &str) -> Option<String> {
        let p = self.sw.profile();
        let st = self.sw.state.lock().expect("state");
        if let Some(r) = &p.read_vlans {
            if line == r.command {
                return Some(vlan_table(p, &st));
            }
        }
        if let Some(r) = &p.read_ports {
            if line == r.command {
                self.sw.dialect.reads.lock().expect("reads").1 += 1;
                let hidden = self.sw.faults.lock().expect("faults").hide_in_bulk.clone();
                let ports: std::collections::BTreeSet<&String> = st
                    .inventory
                    .iter()
                    .chain(st.ports.keys())
                    .filter(|p| !hidden.contains(p))
                    .collect();
                return Some(
                    ports
                        .into_iter()
                        .map(|port| port_answer(p, port, &st.port(p, port)))
                        .collect::<Vec<_>>()
                        .join("\n"),
                );
            }
        }
        let (re, _) = self.sw.dialect.read_port.as_ref()?;
        let port = re.captures(line)?.get(1)?.as_str().to_string();
        self.sw.dialect.reads.lock().expect("reads").0 += 1;
        Some(port_answer(p, &port, &st.port(p, &port)))
    }
}

fn vlan_table(p: &Profile, st: &SimState) -> String {
    let s = &answers(p);
    let mut out: Vec<String> = Vec::new();
    if !s.vlans_header.is_empty() {
        out.push(s.vlans_header.clone());
    }
    let line = |vlan: u16, name: &str| {
        s.vlan_line
            .replace("{vlan}", &vlan.to_string())
            .replace("{name}", name)
    };
    for (vlan, name) in &st.vlans {
        out.push(line(*vlan, name));
    }
    // Platforms without a VLAN table (OVS) report the VLANs in use on ports.
    if p.ops.get(&OpKind::CreateVlan).is_some_and(|t| t.is_empty()) {
        let mut used: BTreeSet<u16> = BTreeSet::new();
        for port in st.ports.values() {
            if port.mode == SimMode::Access {
                used.insert(port.access);
            } else if let Allowed::List(l) = &port.allowed {
                for &(a, b) in l.ranges() {
                    used.extend((a..=b).map(|v| v as u16));
                }
            }
        }
        out.extend(used.iter().map(|v| line(*v, "")));
    }
    out.join("\n")
}

/// A port read answered in the vendor's layout; lines that render empty are left out.
pub fn port_answer(p: &Profile, port: &str, sp: &SimPort) -> String {
    let s = &answers(p);
    let mode = match sp.mode {
        SimMode::Access => &s.mode_access,
        SimMode::Trunk => &s.mode_trunk,
        SimMode::Factory => &s.mode_factory,
    };
    let allowed = match &sp.allowed {
        Allowed::All => s.allowed_all.clone(),
        Allowed::List(l) if l.is_empty() => s.allowed_none.clone(),
        Allowed::List(l) if s.allowed_list.contains("{item}") => l
            .ranges()
            .iter()
            .map(|&(a, b)| {
                let item = if a == b {
                    a.to_string()
                } else {
                    format!("{a}-{b}")
                };
                s.allowed_list.replace("{item}", &item)
            })
            .collect::<Vec<_>>()
            .join("\n"),
        Allowed::List(l) => s.allowed_list.replace("{list}", &l.display(false)),
    };
    s.port
        .replace("{mode}", mode)
        .replace("{allowed}", &allowed)
        .replace("{access}", &sp.access.to_string())
        .replace("{port}", port)
        .lines()
        .filter(|l| !l.trim().is_empty())
        .collect::<Vec<_>>()
        .join("\n")
}

impl Session for SimSession {
    fn run(&mut self, line: &str) -> Result<String, DeviceError> {
        self.lines += 1;
        self.sw.log.lock().expect("log").push(line.to_string());
        std::thread::sleep(self.faults.command_latency);
        if self.faults.drop_at_line == Some(self.lines) {
            return Err(DeviceError::Lost {
                device: self.sw.name.clone(),
                command: line.to_string(),
                reason: "connection closed by peer".into(),
            });
        }
        if self.faults.hang_at_line == Some(self.lines) {
            return Err(DeviceError::Timeout {
                device: self.sw.name.clone(),
                command: line.to_string(),
                secs: 0,
            });
        }
        // One command carrying many operations (`batch:`): all of them, or none.
        if let Some(parts) = self
            .sw
            .profile()
            .batch
            .clone()
            .and_then(|b| split_batch(&b, line))
        {
            let before = self.sw.state.lock().expect("state").clone();
            for part in parts {
                if let Err(mut e) = self.line(&part) {
                    *self.sw.state.lock().expect("state") = before;
                    self.clear();
                    // The device refuses the command it was sent, the whole transaction.
                    if let DeviceError::Rejected { command, .. } = &mut e {
                        *command = line.to_string();
                    }
                    return Err(e);
                }
            }
            return Ok(String::new());
        }
        self.line(line)
    }
}

/// The operations' lines of one `batch:` command; `None` for any other line.
fn split_batch(b: &crate::drivers::profile::Batch, line: &str) -> Option<Vec<String>> {
    let rest = line
        .strip_prefix(b.prefix.as_str())?
        .strip_prefix(b.join.trim_start())?;
    Some(
        rest.split(b.join.as_str())
            .map(|part| format!("{}{part}", b.prefix))
            .collect(),
    )
}

impl SimSession {
    /// One line, after the session's own faults (drop, hang) were checked.
    fn line(&mut self, line: &str) -> Result<String, DeviceError> {
        let p = self.sw.profile();
        let invalid = answers(p).invalid;
        if let Some((text, answer)) = &self.faults.garble_matching {
            if line.contains(text.as_str()) {
                return Ok(answer.clone());
            }
        }
        if self.faults.refuse_end && p.end.iter().any(|l| l == line) {
            return Err(self.refuse(line, &invalid));
        }
        if p.setup
            .iter()
            .chain(&p.begin)
            .chain(&p.commit)
            .chain(&p.end)
            .chain(&p.save)
            .any(|l| l == line)
            && self.buffer.is_empty()
        {
            return Ok(String::new());
        }
        if let Some(answer) = self.read(line) {
            return Ok(answer);
        }
        self.op_lines += 1;
        if let Some((n, answer)) = self.faults.reject_line.clone() {
            if n == self.op_lines {
                self.clear();
                return Err(self.refuse(line, &answer));
            }
        }
        if let Some(text) = &self.faults.reject_matching {
            if line.contains(text.as_str()) {
                self.clear();
                return Err(self.refuse(line, &invalid));
            }
        }
        if self.buffer.is_empty() {
            self.members = self.ranged_members(line);
        }
        self.buffer.push(line.to_string());
        if let Some(e) = self.refused_port(line) {
            return Err(e);
        }
        match self.match_lines(&self.view()) {
            Match::Complete(op, mut vars) => {
                // A VLAN list (`vlan_lists:`): each VLAN in turn.
                let join = self
                    .sw
                    .profile()
                    .vlan_lists
                    .as_ref()
                    .map_or(",".to_string(), |l| l.join.clone());
                let vlans: Vec<String> = vars.get("vlan").map_or_else(
                    || vec![String::new()],
                    |v| v.split(join.as_str()).map(str::to_string).collect(),
                );
                for vlan in vlans {
                    if vars.contains_key("vlan") {
                        vars.insert("vlan".into(), vlan);
                    }
                    for m in self.members.clone().unwrap_or_default() {
                        vars.insert("port".into(), m);
                        self.apply(op, &vars);
                    }
                    if self.members.is_none() {
                        self.apply(op, &vars);
                    }
                }
                self.clear();
                Ok(String::new())
            }
            Match::Prefix => Ok(String::new()),
            Match::None => {
                self.clear();
                Err(self.refuse(line, &invalid))
            }
        }
    }
}

/// How a test wants the ports of a topology configured before jobs run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SitePorts {
    /// As the vendors ship them (nothing configured).
    Factory,
    /// As jobnet's docs ask a site to configure them: link ends and (in tagged mode) node ports
    /// trunks allowing no VLAN, access-mode node ports in access mode (VLAN 1).
    Prepared,
    /// Link ends prepared, node ports as the vendors ship them.
    FactoryNodePorts,
}

/// A fabric of simulated switches, one per device name, created on first use.
#[derive(Clone, Default)]
pub struct SimFabric {
    switches: Arc<Mutex<BTreeMap<String, SimSwitch>>>,
    /// Files installed on simulated hosts: (device, path) → text.
    pub files: Arc<Mutex<BTreeMap<(String, String), String>>>,
    /// Devices that refuse file installs (a down standby SM).
    pub unreachable: Arc<Mutex<BTreeSet<String>>>,
}

impl SimFabric {
    pub fn switch(&self, name: &str, profile: &Profile) -> SimSwitch {
        self.switches
            .lock()
            .expect("fabric")
            .entry(name.to_string())
            .or_insert_with(|| SimSwitch::new(name, profile))
            .clone()
    }

    /// Creates every switch and gateway of `t` and configures its ports as `how` says.
    pub fn build(
        &self,
        t: &crate::topology::Topology,
        drivers: &crate::drivers::DriverSet,
        how: SitePorts,
    ) {
        for s in &t.switches {
            self.switch(&s.name, drivers.get(&s.driver).expect("validated driver"));
        }
        for g in &t.gateways {
            self.switch(&g.name, drivers.get(&g.driver).expect("validated driver"));
        }
        // Every port the topology names is one the switch has.
        let ports = t
            .links
            .iter()
            .flat_map(|l| [&l.a, &l.b])
            .chain(t.gateways.iter().map(|g| &g.ethernet_port))
            .chain(t.nodes.iter().filter_map(|n| n.port.as_ref()));
        for port in ports {
            if let Some(sw) = self.get(&port.switch) {
                sw.state
                    .lock()
                    .expect("state")
                    .inventory
                    .insert(port.port.clone());
            }
        }
        if how == SitePorts::Factory {
            return;
        }
        // A trunk allowing nothing yet; where the dialect cannot show an empty list (NVUE: no
        // list means every bridge VLAN), a placeholder VLAN stays listed, as the docs advise.
        let trunk = |sw: &SimSwitch| {
            let p = sw.profile();
            let empty = SimPort::trunk(&[]);
            let reads_all = p
                .read_port
                .as_ref()
                .and_then(|r| r.parse(&port_answer(p, "x", &empty)).ok())
                .is_some_and(|s| s.allowed == Some(Allowed::All));
            if reads_all {
                SimPort::trunk(&[4094])
            } else {
                empty
            }
        };
        let set = |port: &crate::base::types::PortRef, access: bool| {
            if let Some(sw) = self.get(&port.switch) {
                let p = if access {
                    SimPort::access(1)
                } else {
                    trunk(&sw)
                };
                sw.set_port(&port.port, p);
            }
        };
        for l in &t.links {
            set(&l.a, false);
            set(&l.b, false);
        }
        for g in &t.gateways {
            set(&g.ethernet_port, false);
        }
        if how == SitePorts::Prepared {
            let access = t.node_port_mode() == crate::topology::PortMode::Access;
            for port in t.nodes.iter().filter_map(|n| n.port.as_ref()) {
                set(port, access);
            }
        }
    }

    /// Changes the faults of switch `name` (for tests). Panics if there is no such switch.
    pub fn with_faults(&self, name: &str, change: impl FnOnce(&mut Faults)) {
        let sw = self
            .get(name)
            .unwrap_or_else(|| panic!("no simulated switch {name}"));
        change(&mut sw.faults.lock().expect("faults"));
    }

    pub fn get(&self, name: &str) -> Option<SimSwitch> {
        self.switches.lock().expect("fabric").get(name).cloned()
    }

    /// Every switch's state, by name.
    pub fn snapshot(&self) -> BTreeMap<String, SimState> {
        self.switches
            .lock()
            .expect("fabric")
            .iter()
            .map(|(n, s)| (n.clone(), s.state.lock().expect("state").clone()))
            .collect()
    }
}

impl Connector for SimFabric {
    fn install_file(&self, target: &Target, path: &str, text: &str) -> Result<(), DeviceError> {
        if self
            .unreachable
            .lock()
            .expect("unreachable")
            .contains(&target.name)
        {
            return Err(DeviceError::Connect {
                device: target.name.clone(),
                address: target.address.clone(),
                reason: "no route to host".into(),
            });
        }
        self.files
            .lock()
            .expect("files")
            .insert((target.name.clone(), path.to_string()), text.to_string());
        Ok(())
    }

    fn connect(&self, target: &Target, profile: &Profile) -> Result<Box<dyn Session>, DeviceError> {
        Ok(Box::new(self.switch(&target.name, profile).session()?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::drivers::DriverSet;

    #[test]
    fn factory_ports_behave_as_documented() {
        let set = DriverSet::builtin();
        let p = set.get("cisco-ios").unwrap();
        let sw = SimSwitch::new("s", p);
        let mut s = sw.session().unwrap();
        let port = |sw: &SimSwitch| sw.state.lock().unwrap().port(p, "Gi1/0/1");
        assert_eq!(port(&sw), factory(p));
        for l in [
            "interface Gi1/0/1",
            "switchport trunk allowed vlan add 100",
            "exit",
        ] {
            s.run(l).unwrap();
        }
        assert_eq!(
            port(&sw).allowed,
            Allowed::All,
            "add to ALL changes nothing"
        );
        for l in [
            "interface Gi1/0/1",
            "switchport trunk allowed vlan remove 100",
            "exit",
        ] {
            s.run(l).unwrap();
        }
        let answer = s.run("show interfaces Gi1/0/1 switchport").unwrap();
        assert!(
            answer.contains("Trunking VLANs Enabled: 1-99,101-4094"),
            "remove from ALL lists the rest: {answer}"
        );
        assert!(
            answer.contains("Administrative Mode: dynamic auto"),
            "{answer}"
        );
        let read = p.read_port.as_ref().unwrap().parse(&answer).unwrap();
        assert_eq!(
            read.mode,
            crate::drivers::read::Mode::Other("dynamic auto".into())
        );
        let e = s.run("switchport nonsense").unwrap_err();
        assert!(e.to_string().contains("% Invalid input"), "{e}");
    }

    /// A ranged context line applies the lines after it to every member; a member that
    /// refuses stops the line there, the members before it configured.
    #[test]
    fn ranged_lines_apply_member_by_member() {
        let set = DriverSet::builtin();
        let p = set.get("cisco-nxos").unwrap();
        let sw = SimSwitch::new("s", p);
        let ports: Vec<String> = (1..=6).map(|n| format!("Ethernet1/{n}")).collect();
        for port in &ports {
            sw.set_port(port, SimPort::trunk(&[]));
        }
        let carries = |port: &str, vlan| sw.state.lock().unwrap().carries(p, port, vlan);
        let mut s = sw.session().unwrap();
        for l in [
            "interface Ethernet1/1-4",
            "switchport trunk allowed vlan add 10",
            "exit",
        ] {
            s.run(l).unwrap();
        }
        for port in &ports {
            assert_eq!(carries(port, 10), port.as_str() <= "Ethernet1/4", "{port}");
        }
        sw.faults.lock().unwrap().refuse_ports = vec!["Ethernet1/3".into()];
        let mut s = sw.session().unwrap();
        s.run("interface Ethernet1/1-4").unwrap();
        let e = s.run("switchport trunk allowed vlan add 20").unwrap_err();
        assert!(
            e.to_string()
                .contains("refused `switchport trunk allowed vlan add 20`"),
            "{e}"
        );
        let got: Vec<bool> = ports[..4].iter().map(|port| carries(port, 20)).collect();
        assert_eq!(got, [true, true, false, false], "stopped at Ethernet1/3");
        // On its own: refused at the same line; another port is not.
        s.run("interface Ethernet1/3").unwrap();
        assert!(s.run("switchport trunk allowed vlan add 20").is_err());
        for l in [
            "interface Ethernet1/5",
            "switchport trunk allowed vlan add 20",
            "exit",
        ] {
            s.run(l).unwrap();
        }
        assert!(carries("Ethernet1/5", 20) && !carries("Ethernet1/3", 20));
    }
}
