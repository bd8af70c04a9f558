//! `jobnet-cni`: a CNI plugin (spec 1.0) that puts a container's interface on its job's VLAN
//! with the job's addresses, for Podman's CNI backend, Apptainer `--network` and any runtime
//! that drives CNI plugins (`CNI_COMMAND`, `CNI_CONTAINERID`, `CNI_NETNS`, `CNI_IFNAME`,
//! `CNI_ARGS`, `CNI_PATH` in the environment, the network configuration on stdin, the result or
//! an error as JSON on stdout).
//!
//! ```json
//! {"cniVersion": "1.0.0", "name": "job-1234", "type": "jobnet-cni", "job": "1234",
//!  "jobs_dir": "/shared/jobnet/jobs", "state_dir": "/var/lib/jobnet/node",
//!  "backend": "ovs", "bridge": "br-vm", "uplink": "eth1", "ovs_db": "unix:/run/openvswitch/db.sock",
//!  "node": "cn001", "ipam": {"type": "static", "addresses": [{"address": "10.1.0.5/24"}]}}
//! ```
//!
//! `backend` is the node's (`ovs`, the default, `bridge-vlan` or `bridge-classic`, as in
//! node.yaml); `node` is the node's name in network.json (default: the host's short name).
//! ADD makes a veth pair (`jnXXXXXXXX` on the node bridge with the job's VLAN, `CNI_IFNAME`
//! in the container with the MAC and address of the container's VM slot in the job's list — the
//! VM named by `CNI_ARGS` `JOBNET_VM=vs2`, else the next free one of this node), and the uplink
//! carries the VLAN. With `ipam`, the address comes from the delegated IPAM plugin (e.g. the
//! reference `static` or `host-local`) instead. DEL undoes it and is harmless when repeated or
//! when the namespace is gone; CHECK verifies the interface, its MAC and VLAN; VERSION answers.
//!
//! Runtimes call ADD and DEL in parallel: each holds the node's lock ([`Session`]) from reading
//! the job's record, through choosing the VM slot and recording the veth, to the last change, so
//! two containers never get one slot (one MAC, one address) and no record loses a veth.

use super::{config::NodeSettings, remove_veth, veth_name, Change, Host, NodeError, Session, Veth};
use crate::base::types::JobId;
use crate::jobs::addresses::Vm;
use crate::jobs::network::JobNetwork;
use serde_json::{json, Value};
use std::net::Ipv4Addr;
use std::path::PathBuf;

pub const SUPPORTED: &[&str] = &["0.3.0", "0.3.1", "0.4.0", "1.0.0"];

/// A CNI error (spec: code, msg, details), printed as JSON on stdout with a non-zero exit.
#[derive(Debug, PartialEq, Eq)]
pub struct CniError {
    pub code: u32,
    pub msg: String,
    pub details: String,
}

impl CniError {
    fn new(code: u32, msg: impl Into<String>, details: impl Into<String>) -> Self {
        CniError {
            code,
            msg: msg.into(),
            details: details.into(),
        }
    }

    pub fn json(&self, version: &str) -> Value {
        json!({"cniVersion": version, "code": self.code, "msg": self.msg, "details": self.details})
    }
}

/// What the runtime said.
pub struct Invocation {
    pub command: String,
    pub container: String,
    pub netns: String,
    pub ifname: String,
    pub args: String,
    pub path: String,
    pub config: Value,
}

impl Invocation {
    /// From the environment (`get`) and stdin.
    pub fn read(get: &dyn Fn(&str) -> Option<String>, stdin: &str) -> Result<Invocation, CniError> {
        let command = get("CNI_COMMAND").ok_or_else(|| {
            CniError::new(
                4,
                "CNI_COMMAND is not set",
                "run jobnet-cni as a CNI plugin",
            )
        })?;
        let config: Value = if command == "VERSION" && stdin.trim().is_empty() {
            json!({})
        } else {
            serde_json::from_str(stdin).map_err(|e| {
                CniError::new(6, "cannot decode the network configuration", e.to_string())
            })?
        };
        Ok(Invocation {
            command,
            container: get("CNI_CONTAINERID").unwrap_or_default(),
            netns: get("CNI_NETNS").unwrap_or_default(),
            ifname: get("CNI_IFNAME").unwrap_or_default(),
            args: get("CNI_ARGS").unwrap_or_default(),
            path: get("CNI_PATH").unwrap_or_default(),
            config,
        })
    }

    pub fn version(&self) -> String {
        self.config["cniVersion"]
            .as_str()
            .unwrap_or("1.0.0")
            .to_string()
    }
}

/// The plugin's settings from the network configuration.
struct Settings {
    job: JobId,
    node: NodeSettings,
}

fn text(c: &Value, key: &str) -> Option<String> {
    c[key].as_str().map(str::to_string)
}

fn settings(inv: &Invocation) -> Result<Settings, CniError> {
    let c = &inv.config;
    let bad = |m: String| CniError::new(7, m, "see docs/nodes.md (jobnet-cni)");
    let job_text =
        text(c, "job").ok_or_else(|| bad("the network configuration has no \"job\"".into()))?;
    let job = JobId::parse(&job_text).map_err(|e| bad(format!("\"job\": {e}")))?;
    let dir = |key: &str, default: &str| -> Result<PathBuf, CniError> {
        let p = text(c, key).unwrap_or_else(|| default.to_string());
        if p.starts_with('/') && crate::base::types::safe_path(&p) {
            Ok(PathBuf::from(p))
        } else {
            Err(bad(format!(
                "\"{key}\": `{}` is not an absolute path",
                p.escape_debug()
            )))
        }
    };
    let name = |key: &str| -> Result<String, CniError> {
        let v = text(c, key)
            .ok_or_else(|| bad(format!("the network configuration has no \"{key}\"")))?;
        super::check_ifname(key, &v).map_err(|e| bad(e.to_string()))?;
        Ok(v)
    };
    let ovs_db = text(c, "ovs_db");
    if let Some(db) = &ovs_db {
        if !(db.starts_with("unix:/") && crate::base::types::safe_path(&db["unix:".len()..])) {
            return Err(bad(format!(
                "\"ovs_db\": `{}` is not unix:/absolute/path",
                db.escape_debug()
            )));
        }
    }
    let node = text(c, "node").unwrap_or_else(hostname);
    let backend = match text(c, "backend").as_deref() {
        None | Some("ovs") => super::config::BackendKind::Ovs,
        Some("bridge-vlan") => super::config::BackendKind::BridgeVlan,
        Some("bridge-classic") => super::config::BackendKind::BridgeClassic,
        Some(other) => {
            return Err(bad(format!(
                "\"backend\": `{}` is unknown; use ovs, bridge-vlan or bridge-classic (as in node.yaml)",
                other.escape_debug()
            )))
        }
    };
    let (bridge, uplink) = (name("bridge")?, name("uplink")?);
    let mut reserved = std::collections::BTreeMap::new();
    reserved.insert(
        uplink.clone(),
        "the node's uplink (\"uplink\" in the network configuration)".to_string(),
    );
    reserved.insert(
        bridge.clone(),
        "the node bridge (\"bridge\" in the network configuration)".to_string(),
    );
    Ok(Settings {
        job,
        node: NodeSettings {
            node,
            jobs_dir: dir("jobs_dir", crate::jobs::network::DEFAULT_ADDRESSES_DIR)?,
            state_dir: dir("state_dir", "/var/lib/jobnet/node")?,
            backend,
            bridge,
            uplink,
            interface: String::new(),
            ovs_db,
            reserved,
        },
    })
}

/// This host's short name.
pub fn hostname() -> String {
    let mut buf = [0u8; 256];
    // SAFETY: gethostname writes at most `buf.len()` bytes into `buf`.
    let rc = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) };
    if rc != 0 {
        return String::new();
    }
    let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
    let name = String::from_utf8_lossy(&buf[..end]).into_owned();
    name.split('.').next().unwrap_or("").to_string()
}

/// Runs the invocation on the node `host`; `Ok(Some(json))` is printed on stdout.
pub fn run(inv: &Invocation, host: &mut dyn Host) -> Result<Option<Value>, CniError> {
    let version = inv.version();
    if inv.command == "VERSION" {
        return Ok(Some(
            json!({"cniVersion": "1.0.0", "supportedVersions": SUPPORTED}),
        ));
    }
    if !SUPPORTED.contains(&version.as_str()) {
        return Err(CniError::new(
            1,
            format!("CNI version {version} is not supported"),
            format!("supported: {}", SUPPORTED.join(", ")),
        ));
    }
    for (k, v) in [
        ("CNI_CONTAINERID", &inv.container),
        ("CNI_IFNAME", &inv.ifname),
    ] {
        if v.is_empty() {
            return Err(CniError::new(
                4,
                format!("{k} is not set"),
                "the runtime sets it",
            ));
        }
    }
    let s = settings(inv)?;
    let veth = veth_name(&format!("{}/{}", inv.container, inv.ifname));
    match inv.command.as_str() {
        "ADD" => add(inv, &s, &veth, host).map(Some),
        "DEL" => del(inv, &s, &veth, host).map(|()| None),
        "CHECK" => check(inv, &s, &veth, host).map(|()| None),
        other => Err(CniError::new(
            4,
            format!("CNI_COMMAND {other} is unknown"),
            "ADD, DEL, CHECK or VERSION",
        )),
    }
}

/// A node error as the spec's codes say: 11 (try again later) for a node busy past the wait, 7
/// for what the configuration must fix, 5 for a failed command or file.
fn io(e: NodeError) -> CniError {
    let code = match &e {
        NodeError::Lock(_) => 11,
        NodeError::Config(_)
        | NodeError::InterfaceName { .. }
        | NodeError::Refused(_)
        | NodeError::Network(_) => 7,
        NodeError::Command { .. }
        | NodeError::Io { .. }
        | NodeError::Unwind { .. }
        | NodeError::Teardown { .. } => 5,
    };
    CniError::new(code, e.to_string(), "")
}

/// The VM slot of the job on this node the container `veth` takes: the one it has already (a
/// repeated ADD), the one `CNI_ARGS` names, else the first no other container has. Read while
/// the node's lock is held, so the slot stays this container's until it is recorded.
fn slot<'a>(
    net: &'a JobNetwork,
    s: &Settings,
    inv: &Invocation,
    session: &Session,
    veth: &str,
) -> Result<&'a Vm, CniError> {
    let a = net.addresses.as_ref().ok_or_else(|| {
        CniError::new(7, format!("job {} has no address list (addresses: in the controller's jobnet.yaml), and no ipam is configured", s.job), "")
    })?;
    let mine: Vec<_> = a.vms.iter().filter(|v| v.node == s.node.node).collect();
    // Slot name → the container's veth that has it.
    let taken: Vec<(String, String)> = session
        .records()
        .load(&s.job)
        .map_err(io)?
        .map(|r| {
            r.changes
                .iter()
                .filter_map(|c| match c {
                    Change::Veth { host, ifname, .. } => ifname
                        .split_once('#')
                        .map(|(_, vm)| (vm.to_string(), host.clone())),
                    _ => None,
                })
                .collect()
        })
        .unwrap_or_default();
    if let Some((vm, _)) = taken.iter().find(|(_, h)| h == veth) {
        if let Some(v) = mine.iter().find(|v| &v.name == vm) {
            return Ok(v);
        }
    }
    let wanted = inv
        .args
        .split(';')
        .find_map(|kv| kv.strip_prefix("JOBNET_VM="))
        .map(str::to_string);
    if let Some(w) = wanted {
        let v = mine.into_iter().find(|v| v.name == w).ok_or_else(|| {
            CniError::new(
                7,
                format!("job {} has no VM {w} on node {}", s.job, s.node.node),
                "",
            )
        })?;
        if let Some((_, other)) = taken.iter().find(|(vm, _)| *vm == w) {
            return Err(CniError::new(
                11,
                format!(
                    "VM slot {w} of job {} on node {} is another container's (veth {other})",
                    s.job, s.node.node
                ),
                "try again after that container has gone",
            ));
        }
        return Ok(v);
    }
    mine.into_iter()
        .find(|v| !taken.iter().any(|(vm, _)| *vm == v.name))
        .ok_or_else(|| {
            CniError::new(
                11,
                format!(
                    "every VM slot of job {} on node {} is in use",
                    s.job, s.node.node
                ),
                "try again after a container of the job has gone",
            )
        })
}

/// Delegates to the IPAM plugin named in the configuration.
fn ipam(inv: &Invocation, command: &str) -> Result<Option<Value>, CniError> {
    let Some(kind) = inv.config["ipam"]["type"].as_str() else {
        return Ok(None);
    };
    crate::base::types::check_word("ipam type", kind, "-_.", 64)
        .map_err(|e| CniError::new(7, e.0, ""))?;
    let plugin = inv
        .path
        .split(':')
        .map(|d| PathBuf::from(d).join(kind))
        .find(|p| p.is_file())
        .ok_or_else(|| {
            CniError::new(
                7,
                format!("IPAM plugin {kind} is not in CNI_PATH ({})", inv.path),
                "",
            )
        })?;
    let mut conf = inv.config.clone();
    conf["type"] = json!(kind);
    let mut child = std::process::Command::new(&plugin)
        .env("CNI_COMMAND", command)
        .env("CNI_CONTAINERID", &inv.container)
        .env("CNI_NETNS", &inv.netns)
        .env("CNI_IFNAME", &inv.ifname)
        .env("CNI_ARGS", &inv.args)
        .env("CNI_PATH", &inv.path)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .map_err(|e| CniError::new(5, format!("cannot run {}", plugin.display()), e.to_string()))?;
    {
        use std::io::Write;
        let mut stdin = child.stdin.take().expect("piped");
        let _ = stdin.write_all(conf.to_string().as_bytes());
    }
    let out = child
        .wait_with_output()
        .map_err(|e| CniError::new(5, format!("{} failed", plugin.display()), e.to_string()))?;
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    if !out.status.success() {
        return Err(CniError::new(
            5,
            format!("IPAM plugin {kind} refused {command}"),
            text.trim().to_string(),
        ));
    }
    Ok(serde_json::from_str(&text).ok())
}

fn add(inv: &Invocation, s: &Settings, veth: &str, host: &mut dyn Host) -> Result<Value, CniError> {
    if inv.netns.is_empty() {
        return Err(CniError::new(
            4,
            "CNI_NETNS is not set",
            "ADD needs the container's network namespace",
        ));
    }
    let net = JobNetwork::read(&s.node.jobs_dir, &s.job)
        .map_err(|e| CniError::new(7, e.to_string(), ""))?;
    if net.vlan.is_none() {
        return Err(CniError::new(
            7,
            format!("job {} has no VLAN (InfiniBand only)", s.job),
            "",
        ));
    }
    let delegated = ipam(inv, "ADD")?;
    // From here to the last change, the node is this ADD's: the slot it reads as free is
    // recorded as its own before any other ADD or DEL reads the record.
    let mut session = Session::open(&s.node, host).map_err(io)?;
    let vm = slot(&net, s, inv, &session, veth)?;
    let (ip, prefix, gateway) = address(delegated.as_ref(), &net, vm)?;
    let spec = Veth {
        host: veth.to_string(),
        netns: inv.netns.clone(),
        ifname: inv.ifname.clone(),
        vm: vm.name.clone(),
        mac: vm.mac.clone(),
        ip: Some((ip, prefix)),
        gateway,
    };
    session.attach(&s.job, &net, &[], Some(&spec)).map_err(io)?;
    Ok(add_result(inv, veth, vm, (ip, prefix, gateway), &net))
}

/// The container's address, prefix and gateway: from the IPAM plugin's result if one was
/// delegated to, else from the VM slot in the job's address list.
fn address(
    delegated: Option<&Value>,
    net: &JobNetwork,
    vm: &Vm,
) -> Result<(Ipv4Addr, u8, Option<Ipv4Addr>), CniError> {
    match delegated {
        Some(r) => {
            let first = &r["ips"][0];
            let addr = first["address"].as_str().unwrap_or_default();
            let n: ipnetwork::Ipv4Network = addr.parse().map_err(|_| {
                CniError::new(5, "the IPAM plugin gave no IPv4 address", r.to_string())
            })?;
            Ok((
                n.ip(),
                n.prefix(),
                first["gateway"].as_str().and_then(|g| g.parse().ok()),
            ))
        }
        None => {
            let a = net.addresses.as_ref().expect("slot checked");
            Ok((vm.ip, a.subnet.prefix(), a.gateway))
        }
    }
}

/// The CNI result of ADD: both ends of the veth, the address and gateway, and the job's DNS.
fn add_result(
    inv: &Invocation,
    host: &str,
    vm: &Vm,
    (ip, prefix, gateway): (Ipv4Addr, u8, Option<Ipv4Addr>),
    net: &JobNetwork,
) -> Value {
    let mut result = json!({
        "cniVersion": inv.version(),
        "interfaces": [
            {"name": host},
            {"name": inv.ifname, "mac": vm.mac, "sandbox": inv.netns},
        ],
        "ips": [{"address": format!("{ip}/{prefix}"), "interface": 1}],
    });
    if let Some(g) = gateway {
        result["ips"][0]["gateway"] = json!(g.to_string());
    }
    if let Some(dns) = net.addresses.as_ref().filter(|a| !a.dns.is_empty()) {
        result["dns"] =
            json!({"nameservers": dns.dns.iter().map(|d| d.to_string()).collect::<Vec<_>>()});
    }
    result
}

fn del(inv: &Invocation, s: &Settings, veth: &str, host: &mut dyn Host) -> Result<(), CniError> {
    let _ = ipam(inv, "DEL");
    let mut session = Session::open(&s.node, host).map_err(io)?;
    let records = super::Records::for_node(&s.node);
    if let Some(record) = records.load(&s.job).map_err(io)? {
        // This container's port and veth, newest first, going on past a failure.
        session
            .undo_where(&s.job, record, |c| super::change_port(c) == Some(veth))
            .map_err(io)?;
        // The last container of the job on this node: the uplink stops carrying its VLAN.
        if let Some(rest) = records.load(&s.job).map_err(io)? {
            if !rest.changes.iter().any(|c| super::change_port(c).is_some()) {
                session.detach(&s.job).map_err(io)?;
            }
        }
    }
    // Never added, deleted already, or made by an ADD that died before recording it: a veth of
    // this container's name that no job records is removed (DEL is harmless either way).
    if records.owner_of(veth, &s.job).is_none() {
        remove_veth(session.host(), veth).map_err(io)?;
    }
    Ok(())
}

fn check(inv: &Invocation, s: &Settings, veth: &str, h: &mut dyn Host) -> Result<(), CniError> {
    let net = JobNetwork::read(&s.node.jobs_dir, &s.job)
        .map_err(|e| CniError::new(7, e.to_string(), ""))?;
    let vlan = net.vlan.unwrap_or(0);
    if !h.exists(veth) {
        return Err(CniError::new(
            100,
            format!("interface {veth} of container {} is gone", inv.container),
            "",
        ));
    }
    let tag = super::backend(&s.node).port_vlan(h, veth).map_err(io)?;
    if tag != Some(vlan) {
        return Err(CniError::new(
            101,
            format!(
                "interface {veth} is on VLAN {}, not on job {}'s VLAN {vlan}",
                tag.map_or("none".to_string(), |t| t.to_string()),
                s.job
            ),
            "",
        ));
    }
    if !inv.netns.is_empty() {
        let net_arg = format!("--net={}", inv.netns);
        let link = h
            .run(&["nsenter", &net_arg, "ip", "-o", "link", "show", &inv.ifname])
            .map_err(io)?;
        let records = super::Records::for_node(&s.node);
        let vm_name = records.load(&s.job).map_err(io)?.and_then(|r| {
            r.changes.iter().find_map(|c| match c {
                Change::Veth { host, ifname, .. } if host == veth => {
                    ifname.split('#').nth(1).map(str::to_string)
                }
                _ => None,
            })
        });
        if let Some(vm) = vm_name.and_then(|n| {
            net.addresses
                .as_ref()?
                .vms
                .iter()
                .find(|v| v.name == n)
                .cloned()
        }) {
            if !link.contains(&vm.mac) {
                return Err(CniError::new(
                    102,
                    format!(
                        "{} in the container does not have MAC {}",
                        inv.ifname, vm.mac
                    ),
                    link.trim().to_string(),
                ));
            }
        }
    }
    Ok(())
}
