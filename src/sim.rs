//! A simulated switch that speaks any shipped dialect, with state and injectable faults.
//!
//! It reads the profile's own templates backwards: each operation's command lines become anchored
//! patterns, incoming lines are buffered until they complete an operation, and the operation's
//! effect is applied to the switch state (VLANs, trunk lists, access VLANs, proxy-arp bindings).
//! Read commands are answered from the state in the profile's `answer` format. A line that
//! neither completes nor starts an operation is refused, as a real CLI would.
//!
//! It is the test kit's switch for speed and fault injection (latency at login and per command,
//! refused login, a rejected command, a dropped connection); it never replaces real Open vSwitch
//! for proving data-plane behaviour.

use crate::drivers::{DeviceKind, Profile, OPERATIONS};
use crate::transport::{Connector, DeviceError, Session, Target};
use regex::Regex;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// What a simulated switch holds.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SimState {
    pub vlans: BTreeMap<u16, String>,
    pub trunks: BTreeMap<String, BTreeSet<u16>>,
    pub access: BTreeMap<String, u16>,
    /// Gateway proxy-arp interfaces: VLAN → full-member PKey text.
    pub proxy_arp: BTreeMap<u16, String>,
}

/// Faults and latency of one simulated switch.
#[derive(Clone, Debug, Default)]
pub struct Faults {
    pub login_latency: Duration,
    pub command_latency: Duration,
    pub refuse_login: bool,
    /// Reject the n-th operation line of a session (1-based) with this answer.
    pub reject_line: Option<(usize, String)>,
    /// Reject every line that contains this text.
    pub reject_matching: Option<String>,
    /// Drop the connection when the n-th line of a session arrives.
    pub drop_at_line: Option<usize>,
    /// Never answer the n-th line (the caller's timeout must fire).
    pub hang_at_line: Option<usize>,
    /// Split answers longer than this many lines with a `--More--` pager (SSH server only).
    pub page_lines: Option<usize>,
    /// Line-count faults (`reject_line`, `drop_at_line`, `hang_at_line`) hit only the next
    /// session opened, like a glitch; later sessions (the rollback's) work.
    pub next_session_only: bool,
}

struct OpPattern {
    op: &'static str,
    lines: Vec<(Regex, Vec<String>)>,
}

fn pattern(template: &str) -> (Regex, Vec<String>) {
    let mut re = String::from("^");
    let mut names = Vec::new();
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        re.push_str(&regex::escape(&rest[..open]));
        let close = rest[open..].find('}').expect("checked at load") + open;
        let key = &rest[open + 1..close];
        re.push_str(match key {
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
    read_access: Option<(Regex, Vec<String>)>,
}

impl Dialect {
    pub fn new(profile: &Profile) -> Self {
        let ops = OPERATIONS
            .iter()
            .filter(|(_, kind, _)| *kind == profile.kind)
            .filter_map(|(op, _, _)| {
                let lines: Vec<_> = profile.ops.get(*op)?.iter().map(|t| pattern(t)).collect();
                (!lines.is_empty()).then_some(OpPattern { op, lines })
            })
            .collect();
        let read_access = profile
            .read_access_vlan
            .as_ref()
            .map(|r| pattern(&r.command));
        Dialect {
            profile: profile.clone(),
            ops,
            read_access,
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
        Ok(SimSession {
            sw: self.clone(),
            faults,
            buffer: Vec::new(),
            lines: 0,
            op_lines: 0,
        })
    }

    /// A session for the SSH server, which applies latency itself (asynchronously) and checks
    /// logins itself.
    pub fn server_session(&self) -> SimSession {
        let mut faults = self.faults();
        faults.login_latency = Duration::ZERO;
        faults.command_latency = Duration::ZERO;
        SimSession {
            sw: self.clone(),
            faults,
            buffer: Vec::new(),
            lines: 0,
            op_lines: 0,
        }
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
}

/// One session with a simulated switch.
pub struct SimSession {
    sw: SimSwitch,
    faults: Faults,
    buffer: Vec<String>,
    lines: usize,
    op_lines: usize,
}

enum Match {
    Complete(&'static str, HashMap<String, String>),
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

    fn match_buffer(&self) -> Match {
        let mut prefix = false;
        for op in &self.sw.dialect.ops {
            if self.buffer.len() > op.lines.len() {
                continue;
            }
            let mut vars: HashMap<String, String> = HashMap::new();
            let ok = self
                .buffer
                .iter()
                .zip(&op.lines)
                .all(|(line, (re, names))| {
                    let Some(c) = re.captures(line) else {
                        return false;
                    };
                    names.iter().enumerate().all(|(i, n)| {
                        let v = c.get(i + 1).map_or("", |m| m.as_str()).to_string();
                        vars.entry(n.clone()).or_insert_with(|| v.clone()) == &v
                    })
                });
            if ok {
                if self.buffer.len() == op.lines.len() {
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

    fn apply(&self, op: &str, v: &HashMap<String, String>) {
        let num = |k: &str| v.get(k).and_then(|s| s.parse::<u16>().ok()).unwrap_or(0);
        let port = || v.get("port").cloned().unwrap_or_default();
        let mut st = self.sw.state.lock().expect("state");
        match op {
            "create_vlan" => {
                st.vlans
                    .insert(num("vlan"), v.get("name").cloned().unwrap_or_default());
            }
            "delete_vlan" => {
                st.vlans.remove(&num("vlan"));
            }
            "trunk_add" | "tagged_add" => {
                st.trunks.entry(port()).or_default().insert(num("vlan"));
            }
            "trunk_remove" | "tagged_remove" => {
                let p = port();
                if let Some(set) = st.trunks.get_mut(&p) {
                    set.remove(&num("vlan"));
                    if set.is_empty() {
                        st.trunks.remove(&p);
                    }
                }
            }
            "access_set" => {
                st.access.insert(port(), num("vlan"));
            }
            "access_restore" => {
                st.access.insert(port(), num("previous"));
            }
            "access_clear" => {
                st.access.remove(&port());
            }
            "proxy_arp_create" => {
                st.proxy_arp
                    .insert(num("vlan"), v.get("pkey_full").cloned().unwrap_or_default());
            }
            "proxy_arp_delete" => {
                st.proxy_arp.remove(&num("vlan"));
            }
            _ => {}
        }
    }

    fn read(&self, line: &str) -> Option<String> {
        let p = &self.sw.dialect.profile;
        let st = self.sw.state.lock().expect("state");
        if let Some(r) = &p.read_vlans {
            if line == r.command_for(None) {
                let mut out: Vec<String> = Vec::new();
                for (vlan, name) in &st.vlans {
                    out.push(
                        r.answer
                            .replace("{vlan}", &vlan.to_string())
                            .replace("{name}", name),
                    );
                }
                // Platforms without a VLAN table (OVS) report the VLANs in use on ports.
                if p.ops.get("create_vlan").is_some_and(|t| t.is_empty()) {
                    let used: BTreeSet<u16> = st
                        .trunks
                        .values()
                        .flatten()
                        .chain(st.access.values())
                        .copied()
                        .collect();
                    out.extend(used.iter().map(|v| {
                        r.answer
                            .replace("{vlan}", &v.to_string())
                            .replace("{name}", "")
                    }));
                }
                return Some(out.join("\n"));
            }
        }
        if let (Some(r), Some((re, _))) = (&p.read_access_vlan, &self.sw.dialect.read_access) {
            if let Some(c) = re.captures(line) {
                let port = c.get(1).map_or("", |m| m.as_str());
                return Some(match st.access.get(port) {
                    Some(v) => r
                        .answer
                        .replace("{vlan}", &v.to_string())
                        .replace("{name}", st.vlans.get(v).map_or("", String::as_str)),
                    None => r.none.clone(),
                });
            }
        }
        None
    }
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
        let p = &self.sw.dialect.profile;
        if p.setup
            .iter()
            .chain(&p.begin)
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
        if let Some((n, answer)) = &self.faults.reject_line {
            if *n == self.op_lines {
                self.buffer.clear();
                return Err(self.refuse(line, answer));
            }
        }
        if let Some(text) = &self.faults.reject_matching {
            if line.contains(text.as_str()) {
                self.buffer.clear();
                return Err(self.refuse(line, "% Invalid input detected at '^' marker."));
            }
        }
        self.buffer.push(line.to_string());
        match self.match_buffer() {
            Match::Complete(op, vars) => {
                self.apply(op, &vars);
                self.buffer.clear();
                Ok(String::new())
            }
            Match::Prefix => Ok(String::new()),
            Match::None => {
                self.buffer.clear();
                Err(self.refuse(line, "% Invalid input detected at '^' marker."))
            }
        }
    }
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
        debug_assert!(profile.kind == DeviceKind::Ethernet || profile.kind == DeviceKind::Gateway);
        Ok(Box::new(self.switch(&target.name, profile).session()?))
    }
}
