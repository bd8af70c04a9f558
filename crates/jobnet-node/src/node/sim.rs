//! A simulated node (test kit): Open vSwitch bridges and ports, the node's links (veths, taps,
//! Linux bridges, VLAN interfaces) with their bridge VLANs, and network namespaces, kept as one
//! JSON file — the world — and changed by the very command lines jobnet runs (`ovs-vsctl`, `ip`,
//! `bridge`, `nsenter`). Each command loads, changes and saves the world under the world's own
//! lock, so several jobnet processes work on one simulated node the way they do on a real one:
//! each command on its own, their sequences interleaved.
//!
//! Faults are part of the world: a command line that contains one of [`World::fail`] is refused
//! (as a switch refuses), and [`World::delay_ms`] makes every command take that long (wider
//! windows for races). A test-kit `jobnet` uses the world named by `$JOBNET_NODE_SIM` instead of
//! the real node, and `$JOBNET_FAILPOINT_NODE=N` makes the process die (`abort`, no cleanup,
//! as `kill -9`) right after its N-th command on the node.

use super::{Host, NodeError};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// An Open vSwitch port.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Port {
    pub bridge: String,
    pub tag: Option<u16>,
    pub trunks: BTreeSet<u16>,
}

/// The other end of a veth: its namespace (`None`: the node's own) and name.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Peer {
    pub ns: Option<String>,
    pub name: String,
}

/// A link (an interface) in a namespace.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Link {
    /// `veth`, `tap`, `bridge`, `vlan`, ...
    pub kind: String,
    pub peer: Option<Peer>,
    pub master: Option<String>,
    /// The bridge VLANs of a port of a VLAN-aware Linux bridge.
    pub vlans: BTreeSet<u16>,
    /// Its PVID, one of `vlans` (untagged frames in join it).
    #[serde(default)]
    pub pvid: Option<u16>,
    /// Those of `vlans` that go out untagged.
    #[serde(default)]
    pub untagged: BTreeSet<u16>,
    pub mac: Option<String>,
    pub addrs: BTreeSet<String>,
    pub up: bool,
    /// A bridge's VLAN filtering (`vlan_filtering 1`).
    #[serde(default)]
    pub vlan_filtering: bool,
}

/// The simulated node.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct World {
    /// Open vSwitch bridges.
    pub bridges: BTreeSet<String>,
    /// Open vSwitch ports by name.
    pub ports: BTreeMap<String, Port>,
    /// The node's own links by name.
    pub links: BTreeMap<String, Link>,
    /// Network namespaces (their paths) and their links.
    pub netns: BTreeMap<String, BTreeMap<String, Link>>,
    /// A command line containing one of these is refused.
    #[serde(default)]
    pub fail: Vec<String>,
    /// Every command takes this long (outside the world's lock).
    #[serde(default)]
    pub delay_ms: u64,
    /// Commands run so far, by every process.
    #[serde(default)]
    pub commands: u64,
}

fn refused(command: &str, answer: impl Into<String>) -> NodeError {
    NodeError::Command {
        command: command.to_string(),
        answer: answer.into(),
    }
}

impl World {
    /// An Open vSwitch bridge with its own interface.
    pub fn ovs_bridge(&mut self, name: &str) -> &mut Self {
        self.bridges.insert(name.to_string());
        self.links.insert(name.to_string(), link("internal"));
        self
    }

    /// A port of an Open vSwitch bridge, with its link.
    pub fn ovs_port(
        &mut self,
        bridge: &str,
        name: &str,
        tag: Option<u16>,
        trunks: &[u16],
    ) -> &mut Self {
        self.ports.insert(
            name.to_string(),
            Port {
                bridge: bridge.to_string(),
                tag,
                trunks: trunks.iter().copied().collect(),
            },
        );
        self.links.entry(name.to_string()).or_insert(link("tap"));
        self
    }

    /// A link of the node.
    /// A link of `kind`; a bridge made here is VLAN-aware (`vlan_filtering 1`; a test clears
    /// it for a bridge that is not), one made by `ip link add ... type bridge` is not, as the
    /// kernel's default.
    pub fn link(&mut self, name: &str, kind: &str) -> &mut Self {
        let mut l = link(kind);
        l.vlan_filtering = kind == "bridge";
        self.links.insert(name.to_string(), l);
        self
    }

    /// A network namespace at `path`, with its loopback up (as runtimes leave it).
    pub fn namespace(&mut self, path: &str) -> &mut Self {
        let mut links = BTreeMap::new();
        let mut lo = link("loopback");
        lo.up = true;
        links.insert("lo".to_string(), lo);
        self.netns.insert(path.to_string(), links);
        self
    }

    pub fn load(path: &Path) -> Result<World, NodeError> {
        let io = |source| NodeError::Io {
            path: path.display().to_string(),
            source,
        };
        let bytes = crate::base::fsutil::read_nofollow(path, 64 << 20)
            .map_err(io)?
            .ok_or_else(|| io(std::io::ErrorKind::NotFound.into()))?;
        serde_json::from_slice(&bytes).map_err(|e| {
            io(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                e.to_string(),
            ))
        })
    }

    pub fn save(&self, path: &Path) -> Result<(), NodeError> {
        let text = serde_json::to_string_pretty(self).expect("json");
        crate::base::fsutil::replace_file(path, text.as_bytes(), 0o600).map_err(|source| {
            NodeError::Io {
                path: path.display().to_string(),
                source,
            }
        })
    }

    /// The world as it would be compared before and after: without the command count and the
    /// test's fault settings.
    pub fn state(&self) -> World {
        World {
            fail: Vec::new(),
            delay_ms: 0,
            commands: 0,
            ..self.clone()
        }
    }

    /// Runs one command line on the world; a refused command changes nothing.
    pub fn run(&mut self, argv: &[&str]) -> Result<String, NodeError> {
        let line = argv.join(" ");
        self.commands += 1;
        if let Some(f) = self.fail.iter().find(|f| line.contains(f.as_str())) {
            return Err(refused(
                &line,
                format!("refused by the simulated node ({f})"),
            ));
        }
        let mut next = self.clone();
        let out = match argv.split_first() {
            Some((&"ovs-vsctl", args)) => next.vsctl(&line, args),
            Some((&"ip", args)) => next.ip(&line, None, args),
            Some((&"nsenter", [net, rest @ ..])) => {
                let ns = net.strip_prefix("--net=").unwrap_or_default();
                if !next.netns.contains_key(ns) {
                    return Err(refused(
                        &line,
                        format!("nsenter: cannot open {ns}: No such file or directory"),
                    ));
                }
                match rest.split_first() {
                    Some((&"ip", args)) => next.ip(&line, Some(ns), args),
                    _ => Err(refused(
                        &line,
                        "the simulated node runs only ip in a namespace",
                    )),
                }
            }
            Some((&"bridge", args)) => next.bridge(&line, args),
            _ => Err(refused(&line, "not a command of the simulated node")),
        }?;
        *self = next;
        Ok(out)
    }

    fn vsctl(&mut self, line: &str, args: &[&str]) -> Result<String, NodeError> {
        let args: Vec<&str> = args
            .iter()
            .copied()
            .filter(|a| !a.starts_with("--db=") && !a.starts_with("--timeout="))
            .collect();
        let mut out = String::new();
        for cmd in args.split(|a| *a == "--") {
            let may_exist = cmd.contains(&"--may-exist");
            let if_exists = cmd.contains(&"--if-exists");
            let words: Vec<&str> = cmd
                .iter()
                .copied()
                .filter(|a| !a.starts_with("--"))
                .collect();
            let no_port =
                |p: &str| refused(line, format!("ovs-vsctl: no row \"{p}\" in table Port"));
            match words.as_slice() {
                ["br-exists", b] => {
                    if !self.bridges.contains(*b) {
                        return Err(refused(line, "exit status 2"));
                    }
                }
                ["port-to-br", p] => match self.ports.get(*p) {
                    Some(port) => out += &format!("{}\n", port.bridge),
                    None => return Err(refused(line, format!("ovs-vsctl: no port named {p}"))),
                },
                ["get", "port", p, col] => {
                    let port = self.ports.get(*p).ok_or_else(|| no_port(p))?;
                    out += &match *col {
                        "tag" => port.tag.map_or("[]".into(), |t| t.to_string()),
                        "trunks" => format!(
                            "[{}]",
                            port.trunks
                                .iter()
                                .map(u16::to_string)
                                .collect::<Vec<_>>()
                                .join(", ")
                        ),
                        _ => return Err(refused(line, format!("unknown column {col}"))),
                    };
                    out += "\n";
                }
                ["add", "port", p, "trunks", vs @ ..]
                | ["remove", "port", p, "trunks", vs @ ..] => {
                    let add = words[0] == "add";
                    let Some(port) = self.ports.get_mut(*p) else {
                        if if_exists {
                            continue;
                        }
                        return Err(no_port(p));
                    };
                    for v in vs.iter() {
                        let v: u16 = v.parse().map_err(|_| refused(line, "bad VLAN"))?;
                        if add {
                            port.trunks.insert(v);
                        } else {
                            port.trunks.remove(&v);
                        }
                    }
                }
                ["add-port", b, p] => {
                    if !self.bridges.contains(*b) {
                        return Err(refused(line, format!("ovs-vsctl: no bridge named {b}")));
                    }
                    match self.ports.get(*p) {
                        Some(port) if may_exist && port.bridge == *b => {}
                        Some(port) => {
                            return Err(refused(
                                line,
                                format!("ovs-vsctl: cannot create a port named {p} because a port named {p} already exists on bridge {}", port.bridge),
                            ))
                        }
                        None => {
                            if !self.links.contains_key(*p) {
                                return Err(refused(line, format!("ovs-vsctl: Error detected while setting up '{p}': could not open network device {p} (No such device)")));
                            }
                            self.ports.insert(
                                p.to_string(),
                                Port {
                                    bridge: b.to_string(),
                                    ..Port::default()
                                },
                            );
                        }
                    }
                }
                ["del-port", _b, p] => {
                    if self.ports.remove(*p).is_none() && !if_exists {
                        return Err(refused(line, format!("ovs-vsctl: no port named {p}")));
                    }
                }
                ["set", "port", p, kv] => {
                    let port = self.ports.get_mut(*p).ok_or_else(|| no_port(p))?;
                    let t = kv
                        .strip_prefix("tag=")
                        .and_then(|t| t.parse().ok())
                        .ok_or_else(|| refused(line, format!("cannot set {kv}")))?;
                    port.tag = Some(t);
                }
                ["clear", "port", p, "tag"] => {
                    self.ports.get_mut(*p).ok_or_else(|| no_port(p))?.tag = None;
                }
                other => {
                    return Err(refused(
                        line,
                        format!(
                            "the simulated ovs-vsctl does not know `{}`",
                            other.join(" ")
                        ),
                    ))
                }
            }
        }
        Ok(out)
    }

    fn space(&mut self, ns: Option<&str>) -> &mut BTreeMap<String, Link> {
        match ns {
            Some(n) => self.netns.entry(n.to_string()).or_default(),
            None => &mut self.links,
        }
    }

    /// Removes a link and, for a veth, its peer; an OVS port of it goes too.
    fn delete(&mut self, ns: Option<&str>, name: &str) -> Option<Link> {
        let l = self.space(ns).remove(name)?;
        if let Some(p) = &l.peer {
            let peer_ns = p.ns.clone();
            self.space(peer_ns.as_deref()).remove(&p.name);
        }
        if ns.is_none() {
            // The kernel deletes the port's netdev; Open vSwitch keeps the row (as it does).
            for other in self.links.values_mut() {
                if other.master.as_deref() == Some(name) {
                    other.master = None;
                }
            }
        }
        Some(l)
    }

    fn ip(&mut self, line: &str, ns: Option<&str>, args: &[&str]) -> Result<String, NodeError> {
        let no_dev = |d: &str| refused(line, format!("Cannot find device \"{d}\""));
        match args {
            ["link", "del", name] => {
                self.delete(ns, name).ok_or_else(|| no_dev(name))?;
            }
            ["link", "add", name, "type", "veth", "peer", "name", peer] => {
                let space = self.space(ns);
                if space.contains_key(*name) || space.contains_key(*peer) {
                    return Err(refused(line, "RTNETLINK answers: File exists"));
                }
                for (a, b) in [(name, peer), (peer, name)] {
                    let mut l = link("veth");
                    l.peer = Some(Peer {
                        ns: ns.map(str::to_string),
                        name: b.to_string(),
                    });
                    space.insert(a.to_string(), l);
                }
            }
            ["link", "add", "link", lower, "name", name, "type", "vlan", "id", _] => {
                let space = self.space(ns);
                if !space.contains_key(*lower) {
                    return Err(no_dev(lower));
                }
                if space.contains_key(*name) {
                    return Err(refused(line, "RTNETLINK answers: File exists"));
                }
                space.insert(name.to_string(), link("vlan"));
            }
            ["link", "add", "name", name, "type", "bridge"] => {
                let space = self.space(ns);
                if space.contains_key(*name) {
                    return Err(refused(line, "RTNETLINK answers: File exists"));
                }
                space.insert(name.to_string(), link("bridge"));
            }
            ["link", "set", name, rest @ ..] => self.set(line, ns, name, rest)?,
            ["addr", "replace", addr, "dev", name] => {
                self.space(ns)
                    .get_mut(*name)
                    .ok_or_else(|| no_dev(name))?
                    .addrs
                    .insert(addr.to_string());
            }
            ["route", "replace", "default", "via", _] => {}
            ["-o", "link", "show", name] => {
                let l = self.space(ns).get(*name).ok_or_else(|| no_dev(name))?;
                return Ok(format!(
                    "2: {name}: <BROADCAST,MULTICAST{}> mtu 1500\\    link/ether {} brd ff:ff:ff:ff:ff:ff\n",
                    if l.up { ",UP" } else { "" },
                    l.mac.as_deref().unwrap_or("00:00:00:00:00:00")
                ));
            }
            other => {
                return Err(refused(
                    line,
                    format!("the simulated ip does not know `{}`", other.join(" ")),
                ))
            }
        }
        Ok(String::new())
    }

    fn set(
        &mut self,
        line: &str,
        ns: Option<&str>,
        name: &str,
        rest: &[&str],
    ) -> Result<(), NodeError> {
        let no_dev = |d: &str| refused(line, format!("Cannot find device \"{d}\""));
        if !self.space(ns).contains_key(name) {
            return Err(no_dev(name));
        }
        let mut rest = rest;
        while let Some((word, tail)) = rest.split_first() {
            rest = tail;
            match *word {
                "up" => self.space(ns).get_mut(name).expect("checked").up = true,
                "nomaster" => self.space(ns).get_mut(name).expect("checked").master = None,
                "master" | "netns" | "name" | "address" => {
                    let Some((value, tail)) = rest.split_first() else {
                        return Err(refused(line, format!("`{word}` needs a value")));
                    };
                    rest = tail;
                    match *word {
                        "master" => {
                            if !self.space(ns).contains_key(*value) {
                                return Err(no_dev(value));
                            }
                            self.space(ns).get_mut(name).expect("checked").master =
                                Some(value.to_string());
                        }
                        "address" => {
                            self.space(ns).get_mut(name).expect("checked").mac =
                                Some(value.to_string())
                        }
                        "netns" => return self.move_link(line, ns, name, value),
                        _ => return self.rename(line, ns, name, value),
                    }
                }
                other => {
                    return Err(refused(
                        line,
                        format!("the simulated ip link set does not know `{other}`"),
                    ))
                }
            }
        }
        Ok(())
    }

    /// Moves a link into the namespace at `to`; its peer learns where it went.
    fn move_link(
        &mut self,
        line: &str,
        ns: Option<&str>,
        name: &str,
        to: &str,
    ) -> Result<(), NodeError> {
        if !self.netns.contains_key(to) {
            return Err(refused(line, format!("Invalid \"netns\" value \"{to}\"")));
        }
        let l = self.space(ns).remove(name).expect("checked");
        if self.netns[to].contains_key(name) {
            return Err(refused(line, "RTNETLINK answers: File exists"));
        }
        self.repoint(&l, Some(to), name);
        self.space(Some(to)).insert(name.to_string(), l);
        Ok(())
    }

    fn rename(
        &mut self,
        line: &str,
        ns: Option<&str>,
        name: &str,
        to: &str,
    ) -> Result<(), NodeError> {
        if self.space(ns).contains_key(to) {
            return Err(refused(line, "RTNETLINK answers: File exists"));
        }
        let l = self.space(ns).remove(name).expect("checked");
        self.repoint(&l, ns, to);
        self.space(ns).insert(to.to_string(), l);
        Ok(())
    }

    /// The peer of `l` now points at (`ns`, `name`).
    fn repoint(&mut self, l: &Link, ns: Option<&str>, name: &str) {
        if let Some(p) = &l.peer {
            let peer_ns = p.ns.clone();
            if let Some(other) = self.space(peer_ns.as_deref()).get_mut(&p.name) {
                other.peer = Some(Peer {
                    ns: ns.map(str::to_string),
                    name: name.to_string(),
                });
            }
        }
    }

    fn bridge(&mut self, line: &str, args: &[&str]) -> Result<String, NodeError> {
        let no_dev = |d: &str| refused(line, format!("Cannot find device \"{d}\""));
        let vids = |v: &str| -> Result<Vec<u16>, NodeError> {
            let (a, b) = v.split_once('-').unwrap_or((v, v));
            match (a.parse::<u16>(), b.parse::<u16>()) {
                (Ok(a), Ok(b)) => Ok((a..=b).collect()),
                _ => Err(refused(line, format!("bad vid {v}"))),
            }
        };
        match args {
            // As iproute2 6.1 prints it: one entry per VLAN, `flags` only when there are some,
            // `[]` for a port without VLANs.
            ["-j", "vlan", "show", "dev", port] => {
                let l = self.links.get(*port).ok_or_else(|| no_dev(port))?;
                if l.vlans.is_empty() {
                    return Ok("[]\n".into());
                }
                let vlans: Vec<_> = l
                    .vlans
                    .iter()
                    .map(|v| {
                        let mut flags = Vec::new();
                        if l.pvid == Some(*v) {
                            flags.push("PVID");
                        }
                        if l.untagged.contains(v) {
                            flags.push("Egress Untagged");
                        }
                        if flags.is_empty() {
                            serde_json::json!({"vlan": v})
                        } else {
                            serde_json::json!({"vlan": v, "flags": flags})
                        }
                    })
                    .collect();
                Ok(serde_json::json!([{"ifname": port, "vlans": vlans}]).to_string() + "\n")
            }
            // As the kernel does it: adding a VLAN a port has sets its flags anew (no `pvid`
            // takes its PVID away), deleting one it does not have is no error.
            ["vlan", op @ ("add" | "del"), "dev", port, "vid", v, flags @ ..] => {
                let vs = vids(v)?;
                let (pvid, untagged) = (flags.contains(&"pvid"), flags.contains(&"untagged"));
                if let Some(f) = flags.iter().find(|f| !["pvid", "untagged"].contains(f)) {
                    return Err(refused(
                        line,
                        format!("the simulated bridge does not know `{f}`"),
                    ));
                }
                if pvid && vs.len() > 1 {
                    return Err(refused(line, "pvid cannot be configured for a vlan range"));
                }
                let l = self.links.get_mut(*port).ok_or_else(|| no_dev(port))?;
                // As the kernel: VLANs are a bridge's and its ports', nobody else's.
                if l.master.is_none() && l.kind != "bridge" {
                    return Err(refused(line, "RTNETLINK answers: Operation not supported"));
                }
                for v in vs {
                    if *op == "add" {
                        l.vlans.insert(v);
                        if pvid {
                            l.pvid = Some(v);
                        } else if l.pvid == Some(v) {
                            l.pvid = None;
                        }
                        if untagged {
                            l.untagged.insert(v);
                        } else {
                            l.untagged.remove(&v);
                        }
                    } else {
                        l.vlans.remove(&v);
                        l.untagged.remove(&v);
                        if l.pvid == Some(v) {
                            l.pvid = None;
                        }
                    }
                }
                Ok(String::new())
            }
            other => Err(refused(
                line,
                format!("the simulated bridge does not know `{}`", other.join(" ")),
            )),
        }
    }
}

fn link(kind: &str) -> Link {
    Link {
        kind: kind.to_string(),
        ..Link::default()
    }
}

/// The node as a [`World`] file: every command under the world's lock.
pub struct SimHost {
    world: PathBuf,
    /// Die right after this many commands (`kill -9` at that very point).
    crash_after: Option<u64>,
    ran: u64,
}

impl SimHost {
    pub fn new(world: &Path) -> SimHost {
        SimHost {
            world: world.to_path_buf(),
            crash_after: None,
            ran: 0,
        }
    }

    /// The simulated node `$JOBNET_NODE_SIM` names, dying after `$JOBNET_FAILPOINT_NODE`
    /// commands when set; `None` when the real node is meant.
    pub fn from_env() -> Option<SimHost> {
        let world = std::env::var_os("JOBNET_NODE_SIM").filter(|w| !w.is_empty())?;
        let mut h = SimHost::new(Path::new(&world));
        h.crash_after = std::env::var("JOBNET_FAILPOINT_NODE")
            .ok()
            .and_then(|n| n.parse().ok());
        Some(h)
    }

    /// Runs `f` on the world under its lock, saving what it changed.
    fn with<T>(&self, f: impl FnOnce(&mut World) -> T) -> Result<(T, u64), NodeError> {
        let lock = self.world.with_extension("lock");
        let _held =
            crate::base::fsutil::FileLock::acquire(&lock, std::time::Duration::from_secs(60))?;
        let mut w = World::load(&self.world)?;
        let before = w.clone();
        let out = f(&mut w);
        if w != before {
            w.save(&self.world)?;
        }
        Ok((out, w.delay_ms))
    }
}

impl Host for SimHost {
    fn run(&mut self, argv: &[&str]) -> Result<String, NodeError> {
        let (out, delay) = self.with(|w| w.run(argv))?;
        std::thread::sleep(std::time::Duration::from_millis(delay));
        self.ran += 1;
        if self.crash_after == Some(self.ran) {
            std::process::abort();
        }
        out
    }

    fn exists(&mut self, name: &str) -> bool {
        self.with(|w| w.links.contains_key(name))
            .is_ok_and(|(e, _)| e)
    }

    fn master_of(&mut self, port: &str) -> Option<String> {
        self.with(|w| w.links.get(port).and_then(|l| l.master.clone()))
            .ok()
            .and_then(|(m, _)| m)
    }

    fn kind(&mut self, name: &str) -> Option<super::host::LinkKind> {
        use super::host::LinkKind;
        self.with(|w| {
            w.links.get(name).map(|l| match l.kind.as_str() {
                "physical" => LinkKind::Physical,
                "bond" => LinkKind::Bond,
                "bridge" => LinkKind::Bridge,
                "vlan" => LinkKind::Vlan,
                _ => LinkKind::Virtual,
            })
        })
        .ok()
        .and_then(|(k, _)| k)
    }

    fn vlan_filtering(&mut self, bridge: &str) -> Option<bool> {
        self.with(|w| {
            w.links
                .get(bridge)
                .filter(|l| l.kind == "bridge")
                .map(|l| l.vlan_filtering)
        })
        .ok()
        .and_then(|(f, _)| f)
    }
}

/// The real node (or any [`Host`]) dying — `abort`, as `kill -9` — right after its `n`-th
/// command, for the labs' kill-at-every-command cases on real Open vSwitch
/// (`$JOBNET_FAILPOINT_NODE` without `$JOBNET_NODE_SIM`).
pub struct CrashAfter<H: Host> {
    pub inner: H,
    pub n: usize,
    ran: usize,
}

impl<H: Host> CrashAfter<H> {
    /// `inner` dying after `$JOBNET_FAILPOINT_NODE` commands; `None` when it is not set.
    pub fn from_env(inner: H) -> Option<CrashAfter<H>> {
        let n = std::env::var("JOBNET_FAILPOINT_NODE").ok()?.parse().ok()?;
        Some(CrashAfter { inner, n, ran: 0 })
    }
}

impl<H: Host> Host for CrashAfter<H> {
    fn run(&mut self, argv: &[&str]) -> Result<String, NodeError> {
        let out = self.inner.run(argv);
        self.ran += 1;
        if self.ran == self.n {
            std::process::abort();
        }
        out
    }

    fn exists(&mut self, name: &str) -> bool {
        self.inner.exists(name)
    }

    fn master_of(&mut self, port: &str) -> Option<String> {
        self.inner.master_of(port)
    }

    fn vlan_filtering(&mut self, bridge: &str) -> Option<bool> {
        self.inner.vlan_filtering(bridge)
    }

    fn kind(&mut self, name: &str) -> Option<super::host::LinkKind> {
        self.inner.kind(name)
    }
}
