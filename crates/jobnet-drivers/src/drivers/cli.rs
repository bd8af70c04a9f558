//! The CLI-dialect driver: a device driven through its command line, over a session (SSH, or a
//! local process for `address: local`). It renders typed operations into the profile's lines,
//! reads the device's VLANs and ports back into typed state, and follows the session rules every
//! CLI needs: configuration-mode lines before the operations; `commit` lines that must succeed;
//! `end` lines that only leave configuration mode (a refusal is noted, never a failure); a session
//! that timed out or lost its connection is never used again — an undo reopens one and sends the
//! operation's undo lines again.
//!
//! The executor only sees [`DeviceDriver`]: an SNMP or API driver implements the same trait with
//! typed operations and typed undo records, and no lines.

use super::profile::read::PortState;
use super::transport::{Connector, DeviceError, Session, Target};
use super::{OpKind, Profile, Vars};
use crate::drivers::ops::{render_op, Op};

/// The lines an operation sends and those that undo it, journaled before they are sent (empty
/// for drivers that speak no lines).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Rendered {
    pub apply: Vec<String>,
    pub undo: Vec<String>,
}

/// What undoing a journaled operation needs: the typed operation and, for line-speaking drivers,
/// the exact undo lines journaled when it was applied.
pub struct UndoRecord<'a> {
    pub op: &'a Op,
    pub lines: &'a [String],
}

/// One device, open for a job's reads and changes.
pub trait DeviceDriver: Send {
    /// The VLANs that exist on the device (`None` when the device keeps none, e.g. a gateway).
    fn read_vlans(&mut self) -> Result<Option<Vec<u16>>, DeviceError>;
    /// A port's mode, access VLAN and allowed list.
    fn read_port(&mut self, port: &str) -> Result<PortState, DeviceError>;
    /// Several ports' states, with one command where the dialect has one (`read.ports`); a port
    /// that answer does not show (or shows in another shape) is read on its own.
    fn read_ports(&mut self, ports: &[&str]) -> Result<Vec<PortState>, DeviceError>;
    /// What `op` will send, and what undoes it.
    fn render(&self, op: &Op) -> Rendered;
    /// Prepares for changes (enter configuration mode).
    fn begin(&mut self) -> Result<(), DeviceError>;
    /// Carries out `op` as rendered.
    fn apply(&mut self, op: &Op, rendered: &Rendered) -> Result<(), DeviceError>;
    /// How `ops` go to the device: the sizes of consecutive blocks, each carried out by one
    /// [`DeviceDriver::apply_batch`] (all 1: one by one).
    fn blocks(&self, ops: &[Op]) -> Vec<usize> {
        vec![1; ops.len()]
    }
    /// Whether a refused block applied none of its operations (one atomic transaction,
    /// `batch:`), or may have applied some of them (a ranged line, `range:`, is carried out
    /// port by port): then each operation can be sent again on its own, which is harmless for
    /// the one that did apply (every operation a job applies sets or adds its own value).
    fn blocks_atomic(&self) -> bool {
        true
    }
    /// Carries out a block of operations as rendered: as one atomic command (`batch:`), as
    /// one ranged block (`range:`), or one by one.
    fn apply_batch(&mut self, ops: &[(&Op, &Rendered)]) -> Result<(), DeviceError> {
        ops.iter().try_for_each(|(op, r)| self.apply(op, r))
    }
    /// Undoes a journaled operation.
    fn undo(&mut self, record: &UndoRecord) -> Result<(), DeviceError>;
    /// Whether the device can give a restricted port every VLAN back.
    fn can_unrestrict(&self) -> bool;
    /// Gives a restricted port every VLAN back.
    fn unrestrict(&mut self, port: &str) -> Result<(), DeviceError>;
    /// Ends the changes: commit (must succeed), leave configuration mode, save when asked.
    /// After an undo (`undoing`), an `end` whose answer never came is an error: the device's
    /// state cannot be confirmed. Returns notes for the user.
    fn finish(&mut self, save: bool, undoing: bool) -> Result<Vec<String>, DeviceError>;
    /// Hands the session back now (the next call opens another): a job that reads a device
    /// and leaves its changes to jobnetd holds no session while it waits.
    fn release(&mut self) {}
}

/// Opens the driver a profile asks for.
pub fn open<'a>(
    connector: &'a dyn Connector,
    target: Target,
    profile: &Profile,
    vlan_name: &str,
) -> Result<Box<dyn DeviceDriver + 'a>, DeviceError> {
    match profile.driver {
        super::DriverKind::Cli => Ok(Box::new(CliDriver::open(
            connector, target, profile, vlan_name,
        )?)),
    }
}

/// A device driven through its CLI dialect.
pub struct CliDriver<'a> {
    connector: &'a dyn Connector,
    target: Target,
    profile: Profile,
    vlan_name: String,
    session: Option<Box<dyn Session>>,
    /// Configuration mode was entered on the current session.
    configuring: bool,
    /// Every line on the current session was answered as expected (it may be handed to the
    /// next job when a pool lent it).
    clean: bool,
}

impl<'a> CliDriver<'a> {
    /// Connects and sends the profile's setup lines.
    pub fn open(
        connector: &'a dyn Connector,
        target: Target,
        profile: &Profile,
        vlan_name: &str,
    ) -> Result<Self, DeviceError> {
        let mut d = CliDriver {
            connector,
            target,
            profile: profile.clone(),
            vlan_name: vlan_name.to_string(),
            session: None,
            configuring: false,
            clean: true,
        };
        d.session()?;
        Ok(d)
    }

    /// The open session, reopened (setup lines, and configuration mode if it was entered) after
    /// it broke.
    fn session(&mut self) -> Result<&mut Box<dyn Session>, DeviceError> {
        if self.session.is_none() {
            let mut s = self.connector.connect(&self.target, &self.profile)?;
            self.clean = true;
            if !s.warm() {
                for l in &self.profile.setup {
                    s.run(l)?;
                }
            }
            if self.configuring {
                for l in &self.profile.begin {
                    s.run(l)?;
                }
            }
            self.session = Some(s);
        }
        Ok(self.session.as_mut().expect("opened above"))
    }

    /// Sends one line as it is and returns the answer (jobnetd's read queue sends the reads
    /// of several jobs this way); a refusal is an error, a broken session is reopened next time.
    pub fn send(&mut self, line: &str) -> Result<String, DeviceError> {
        self.run(line)
    }

    fn run(&mut self, line: &str) -> Result<String, DeviceError> {
        let result = self.session().and_then(|s| s.run(line));
        if result.is_err() {
            self.clean = false;
        }
        if result.as_ref().is_err_and(DeviceError::session_broken) {
            // Answers and lines could get out of step on this session: never use it again.
            self.session = None;
        }
        result
    }

    /// Sends `lines`; after a timeout or a lost connection sends them all again over a fresh
    /// session, once: the lost line may or may not have been carried out, and context lines
    /// (`interface X`) belong to the session.
    fn run_again_once(&mut self, lines: &[String]) -> Result<(), DeviceError> {
        match lines.iter().try_for_each(|l| self.run(l).map(drop)) {
            Err(e) if e.session_broken() => lines.iter().try_for_each(|l| self.run(l).map(drop)),
            other => other,
        }
    }

    fn unreadable(&self, command: &str, expected: String, answer: &str) -> DeviceError {
        DeviceError::Unreadable {
            device: self.target.name.clone(),
            command: command.into(),
            expected,
            answer: answer.into(),
        }
    }
}

impl Drop for CliDriver<'_> {
    /// Hands the session back: reusable by a pool only when every line was answered as
    /// expected and configuration mode was left.
    fn drop(&mut self) {
        if let Some(s) = self.session.take() {
            s.release(self.clean && !self.configuring);
        }
    }
}

impl DeviceDriver for CliDriver<'_> {
    fn read_vlans(&mut self) -> Result<Option<Vec<u16>>, DeviceError> {
        let Some(r) = self.profile.read_vlans.clone() else {
            return Ok(None);
        };
        let answer = self.run(&r.command)?;
        r.values(&answer)
            .map(Some)
            .map_err(|e| self.unreadable(&r.command, e.expected, &answer))
    }

    fn read_port(&mut self, port: &str) -> Result<PortState, DeviceError> {
        let Some(r) = self.profile.read_port.clone() else {
            return Err(DeviceError::Rejected {
                device: self.target.name.clone(),
                command: format!("(read port {port})"),
                answer: format!(
                    "driver profile {} cannot read ports (no read.port)",
                    self.profile.name
                ),
            });
        };
        let command = r.command_for(port);
        let answer = self.run(&command)?;
        r.parse(&answer)
            .map_err(|e| self.unreadable(&command, e.expected, &answer))
    }

    fn read_ports(&mut self, ports: &[&str]) -> Result<Vec<PortState>, DeviceError> {
        let (Some(bulk), Some(one), [_, _, ..]) = (
            self.profile.read_ports.clone(),
            self.profile.read_port.clone(),
            ports,
        ) else {
            return ports.iter().map(|p| self.read_port(p)).collect();
        };
        let answer = match self.run(&bulk.command) {
            Ok(a) => a,
            // Refused (command authorization may allow only the per-port form) or too slow on
            // a big chassis: read port by port, as without `read.ports` (a broken session is
            // opened again by the next read).
            Err(e)
                if !crate::base::deadline::work_interrupted()
                    && (matches!(e, DeviceError::Rejected { .. }) || e.session_broken()) =>
            {
                return ports.iter().map(|p| self.read_port(p)).collect();
            }
            Err(e) => return Err(e),
        };
        let blocks = bulk.blocks(&answer);
        ports
            .iter()
            .map(|p| match bulk.find(&blocks, p).map(|b| one.parse(b)) {
                Some(Ok(state)) => Ok(state),
                // Not in the answer (not a switchport there, a name the device prints
                // otherwise) or not in the shape of a port's own answer: its own read decides.
                Some(Err(_)) | None => self.read_port(p),
            })
            .collect()
    }

    fn render(&self, op: &Op) -> Rendered {
        let (apply, undo) = render_op(&self.profile, &self.vlan_name, op);
        Rendered { apply, undo }
    }

    fn begin(&mut self) -> Result<(), DeviceError> {
        let lines = self.profile.begin.clone();
        lines.iter().try_for_each(|l| self.run(l).map(drop))?;
        self.configuring = true;
        Ok(())
    }

    fn apply(&mut self, _op: &Op, rendered: &Rendered) -> Result<(), DeviceError> {
        rendered
            .apply
            .iter()
            .try_for_each(|l| self.run(l).map(drop))
    }

    fn undo(&mut self, record: &UndoRecord) -> Result<(), DeviceError> {
        self.run_again_once(record.lines)
    }

    fn blocks(&self, ops: &[Op]) -> Vec<usize> {
        let rendered: Vec<Rendered> = ops.iter().map(|op| self.render(op)).collect();
        let view: Vec<(Option<&str>, &[String])> = ops
            .iter()
            .zip(&rendered)
            .map(|(op, r)| (op.port(), r.apply.as_slice()))
            .collect();
        super::ops::blocks(&self.profile, &view)
    }

    fn blocks_atomic(&self) -> bool {
        self.profile.range.is_none()
    }

    fn apply_batch(&mut self, ops: &[(&Op, &Rendered)]) -> Result<(), DeviceError> {
        let view: Vec<(Option<&str>, &[String])> = ops
            .iter()
            .map(|(op, r)| (op.port(), r.apply.as_slice()))
            .collect();
        match super::ops::block_lines(&self.profile, &view) {
            // One transaction, or one ranged block: never sent again after a lost answer (it
            // may have applied, in part); the executor and the journal's undo decide.
            Some(lines) => lines.iter().try_for_each(|l| self.run(l).map(drop)),
            None => ops.iter().try_for_each(|(op, r)| self.apply(op, r)),
        }
    }

    fn can_unrestrict(&self) -> bool {
        self.profile.has(OpKind::UnrestrictPort)
    }

    fn unrestrict(&mut self, port: &str) -> Result<(), DeviceError> {
        let lines = self.profile.render(
            OpKind::UnrestrictPort,
            &Vars {
                port: Some(port),
                ..Vars::default()
            },
        );
        self.run_again_once(&lines)
    }

    fn finish(&mut self, save: bool, undoing: bool) -> Result<Vec<String>, DeviceError> {
        let p = self.profile.clone();
        if undoing {
            self.run_again_once(&p.commit)?;
        } else {
            p.commit.iter().try_for_each(|l| self.run(l).map(drop))?;
        }
        let mut notes = Vec::new();
        for l in &p.end {
            match self.run(l) {
                Ok(_) => {}
                // Leaving configuration mode changes nothing: a refusal is not a failure.
                Err(e @ DeviceError::Rejected { .. }) => notes.push(format!(
                    "{e} (leaving configuration mode; nothing was changed by it)"
                )),
                Err(e) if undoing => {
                    return Err(DeviceError::Lost {
                        device: self.target.name.clone(),
                        command: l.clone(),
                        reason: format!(
                            "{e}; the device's state after the undo could not be confirmed"
                        ),
                    })
                }
                Err(e) => notes.push(e.to_string()),
            }
        }
        self.configuring = false;
        if save {
            self.run_again_once(&p.save)?;
        }
        Ok(notes)
    }

    fn release(&mut self) {
        if let Some(s) = self.session.take() {
            s.release(self.clean && !self.configuring);
        }
        self.configuring = false;
    }
}
