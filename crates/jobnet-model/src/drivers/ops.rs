//! Typed per-device operations and their rendering into a dialect's command lines.
//!
//! Each [`Op`] names the profile operation ([`OpKind`]) that performs it and the one that undoes
//! it, and carries what the undo needs (the access VLAN a port had, whether a port was
//! restricted), so an undo restores rather than guesses. Rendering only substitutes typed,
//! validated values into a profile's templates.

use crate::base::types::{PKey, VlanId};
use crate::drivers::{OpKind, Profile, Vars};
use serde::Serialize;

/// One operation on one device. Undo is the profile's inverse template of the same operation.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Op {
    CreateVlan {
        vlan: VlanId,
        name: String,
    },
    /// The VLAN on an inter-switch link end (or a gateway's port).
    TrunkAdd {
        port: String,
        vlan: VlanId,
        peer: String,
    },
    /// The VLAN on a node port, tagged, for passthrough into VMs/containers. `restricts`: the
    /// port allowed every VLAN and jobnet makes its list explicit (`open_ports: restrict`); its
    /// last job gives it every VLAN back. Decided when the port is read at apply time.
    TaggedAdd {
        port: String,
        vlan: VlanId,
        node: String,
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        restricts: bool,
    },
    /// The VLAN as a node port's access VLAN. `replaces` is the VLAN it had, when known; a dry
    /// run does not read devices, so it is `None` and read at apply time.
    AccessSet {
        port: String,
        vlan: VlanId,
        node: String,
        replaces: Option<VlanId>,
    },
    /// The gateway's proxy-arp interface between the job's PKey and VLAN.
    ProxyArpCreate {
        vlan: VlanId,
        pkey: PKey,
    },
}

impl Op {
    /// The profile operation that performs this op.
    pub fn template(&self) -> OpKind {
        match self {
            Op::CreateVlan { .. } => OpKind::CreateVlan,
            Op::TrunkAdd { .. } => OpKind::TrunkAdd,
            Op::TaggedAdd {
                restricts: true, ..
            } => OpKind::RestrictPort,
            Op::TaggedAdd { .. } => OpKind::TaggedAdd,
            Op::AccessSet { .. } => OpKind::AccessSet,
            Op::ProxyArpCreate { .. } => OpKind::ProxyArpCreate,
        }
    }

    /// The profile operation that undoes it.
    pub fn inverse_template(&self) -> OpKind {
        match self {
            Op::CreateVlan { .. } => OpKind::DeleteVlan,
            Op::TrunkAdd { .. } => OpKind::TrunkRemove,
            Op::TaggedAdd { .. } => OpKind::TaggedRemove,
            Op::AccessSet {
                replaces: Some(_), ..
            } => OpKind::AccessRestore,
            Op::AccessSet { replaces: None, .. } => OpKind::AccessClear,
            Op::ProxyArpCreate { .. } => OpKind::ProxyArpDelete,
        }
    }

    /// The switch port it changes, if any.
    pub fn port(&self) -> Option<&str> {
        match self {
            Op::TrunkAdd { port, .. } | Op::TaggedAdd { port, .. } | Op::AccessSet { port, .. } => {
                Some(port)
            }
            Op::CreateVlan { .. } | Op::ProxyArpCreate { .. } => None,
        }
    }

    pub fn vars<'a>(&'a self, name: &'a str) -> Vars<'a> {
        let mut v = Vars {
            name: Some(name),
            ..Vars::default()
        };
        match self {
            Op::CreateVlan { vlan, .. } => v.vlan = Some(*vlan),
            Op::TrunkAdd { port, vlan, .. } | Op::TaggedAdd { port, vlan, .. } => {
                v.port = Some(port);
                v.vlan = Some(*vlan);
            }
            Op::AccessSet {
                port,
                vlan,
                replaces,
                ..
            } => {
                v.port = Some(port);
                v.vlan = Some(*vlan);
                v.previous = *replaces;
            }
            Op::ProxyArpCreate { vlan, pkey } => {
                v.vlan = Some(*vlan);
                v.pkey = Some(pkey.to_string());
                v.pkey_full = Some(format!("{:#06x}", pkey.full_member()));
            }
        }
        v
    }

    /// A one-line human description.
    pub fn describe(&self) -> String {
        match self {
            Op::CreateVlan { vlan, name } => format!("create VLAN {vlan} \"{name}\""),
            Op::TrunkAdd { port, vlan, peer } => format!("add VLAN {vlan} to trunk {port} (to {peer})"),
            Op::TaggedAdd { port, vlan, node, restricts: false } => format!("add VLAN {vlan} tagged to {port} (node {node})"),
            Op::TaggedAdd { port, vlan, node, restricts: true } => format!("make {port} (node {node}) carry only VLAN {vlan}: it allowed every VLAN"),
            Op::AccessSet { port, vlan, node, replaces } => match replaces {
                Some(p) => format!("set access VLAN {vlan} on {port} (node {node}), replacing {p}"),
                None => format!("set access VLAN {vlan} on {port} (node {node}), previous VLAN read at apply time"),
            },
            Op::ProxyArpCreate { vlan, pkey } => format!("create proxy-arp interface binding PKey {pkey} to VLAN {vlan}"),
        }
    }
}

/// The exact apply and undo lines of one operation.
pub fn render_op(profile: &Profile, vlan_name: &str, op: &Op) -> (Vec<String>, Vec<String>) {
    let vars = op.vars(vlan_name);
    (
        profile.render(op.template(), &vars),
        profile.render(op.inverse_template(), &vars),
    )
}

/// Renders ops with a profile: session setup and begin, each op, session end.
pub fn render_commands(profile: &Profile, vlan_name: &str, ops: &[Op]) -> Vec<String> {
    let mut out: Vec<String> = profile.enable.iter().cloned().collect();
    out.extend(profile.setup.iter().cloned());
    out.extend(profile.begin.iter().cloned());
    // As the device receives them: blocks of operations (one transaction, one ranged block)
    // as one, the others line by line.
    let rendered: Vec<Vec<String>> = ops
        .iter()
        .map(|op| profile.render(op.template(), &op.vars(vlan_name)))
        .collect();
    let view: Vec<(Option<&str>, &[String])> = ops
        .iter()
        .zip(&rendered)
        .map(|(op, lines)| (op.port(), lines.as_slice()))
        .collect();
    let mut at = 0;
    for n in blocks(profile, &view) {
        let block = &view[at..at + n];
        match block_lines(profile, block) {
            Some(lines) => out.extend(lines),
            None => block
                .iter()
                .for_each(|(_, l)| out.extend(l.iter().cloned())),
        }
        at += n;
    }
    out.extend(profile.commit.iter().cloned());
    out.extend(profile.end.iter().cloned());
    out
}

/// How a device's consecutive operations (each its port, if any, and its lines) go out: the
/// sizes of consecutive blocks, in order. A block of several is one atomic command (`batch:`)
/// or one ranged block (`range:`); every other operation goes as its own lines.
pub fn blocks(profile: &Profile, ops: &[(Option<&str>, &[String])]) -> Vec<usize> {
    if let Some(b) = &profile.batch {
        return ops.chunks(b.max).map(<[_]>::len).collect();
    }
    match &profile.range {
        Some(r) => r.blocks(ops),
        None => vec![1; ops.len()],
    }
}

/// The lines one block of several operations goes as ([`blocks`]); `None` for a block of one
/// or one the dialect cannot send as one: its operations go as their own lines.
pub fn block_lines(profile: &Profile, ops: &[(Option<&str>, &[String])]) -> Option<Vec<String>> {
    if ops.len() < 2 {
        return None;
    }
    if let Some(b) = &profile.batch {
        let lines: Vec<String> = ops.iter().flat_map(|(_, l)| l.iter().cloned()).collect();
        return b.combine(&lines).map(|l| vec![l]);
    }
    profile.range.as_ref().and_then(|r| r.block(ops))
}

/// The commands that undo `ops`, newest first.
pub fn render_undo(profile: &Profile, vlan_name: &str, ops: &[Op]) -> Vec<String> {
    let mut out: Vec<String> = profile.enable.iter().cloned().collect();
    out.extend(profile.setup.iter().cloned());
    out.extend(profile.begin.iter().cloned());
    for op in ops.iter().rev() {
        out.extend(profile.render(op.inverse_template(), &op.vars(vlan_name)));
    }
    out.extend(profile.commit.iter().cloned());
    out.extend(profile.end.iter().cloned());
    out
}
