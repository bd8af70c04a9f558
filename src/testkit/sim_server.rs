//! The simulated switches served over real SSH (russh server), one listener per switch on
//! 127.0.0.1, so `jobnet up` processes talk to them exactly as to real switches: host keys,
//! password or key login, a PTY shell with echo, a prompt, privileged mode behind `enable` and a
//! `--More--` pager, or exec requests for `exec` dialects. Latency (login, per command) and
//! faults come from each switch's [`crate::testkit::sim::Faults`].
//!
//! Used by the integration tests (in-process, so they can inspect the switches' state) and by the
//! `jobnet-switch-sim` binary for benchmarks.

use crate::drivers::transport::{DeviceError, Session as _};
use crate::testkit::sim::{SimFabric, SimSession, SimSwitch};
use russh::keys::ssh_key::private::Ed25519Keypair;
use russh::keys::PrivateKey;
use russh::server::{self, Auth, Msg, Server as _, Session};
use russh::{Channel, ChannelId};
use std::borrow::Cow;
use std::collections::BTreeMap;
use std::io::Read;
use std::sync::Arc;

/// One switch to serve.
#[derive(Clone)]
pub struct Served {
    pub switch: SimSwitch,
    /// Offer only diffie-hellman-group14-sha1 and hmac-sha1, like an old switch.
    pub legacy_only: bool,
}

/// Who may log in, and the privileged-mode password the CLIs ask for.
#[derive(Clone, Debug, Default)]
pub struct Access {
    pub username: String,
    pub password: String,
    pub authorized_keys: Vec<russh::keys::PublicKey>,
    /// When set, dialects with an `enable` command start in user mode (`>` prompt) and ask for it.
    pub enable_password: Option<String>,
}

/// Running servers: the port and known_hosts line of every switch.
pub struct Running {
    pub ports: BTreeMap<String, u16>,
    pub known_hosts: String,
    /// Logins the switches accepted so far (tests and benchmarks count them).
    pub logins: Arc<std::sync::atomic::AtomicU64>,
}

impl Running {
    /// Logins the switches accepted so far.
    pub fn logins(&self) -> u64 {
        self.logins.load(std::sync::atomic::Ordering::Relaxed)
    }
}

/// A fresh Ed25519 key from the kernel's random source.
pub fn host_key() -> std::io::Result<PrivateKey> {
    let mut seed = [0u8; 32];
    std::fs::File::open("/dev/urandom")?.read_exact(&mut seed)?;
    Ok(PrivateKey::from(Ed25519Keypair::from_seed(&seed)))
}

/// Starts one SSH server per switch on 127.0.0.1 (any free port) on `runtime`.
pub fn start(
    runtime: &tokio::runtime::Handle,
    switches: Vec<Served>,
    access: &Access,
) -> std::io::Result<Running> {
    let mut ports = BTreeMap::new();
    let mut known_hosts = String::new();
    let access = Arc::new(access.clone());
    let logins = Arc::new(std::sync::atomic::AtomicU64::new(0));
    for served in switches {
        let key = host_key()?;
        let public = key
            .public_key()
            .to_openssh()
            .map_err(std::io::Error::other)?;
        let mut preferred = russh::Preferred::default();
        if served.legacy_only {
            preferred.kex = Cow::Owned(vec![russh::kex::DH_G14_SHA1]);
            preferred.mac = Cow::Owned(vec![russh::mac::HMAC_SHA1]);
        }
        let config = Arc::new(server::Config {
            keys: vec![key],
            preferred,
            auth_rejection_time: std::time::Duration::from_millis(10),
            auth_rejection_time_initial: Some(std::time::Duration::ZERO),
            inactivity_timeout: Some(std::time::Duration::from_secs(600)),
            nodelay: true,
            ..Default::default()
        });
        let listener = runtime.block_on(tokio::net::TcpListener::bind(("127.0.0.1", 0)))?;
        let port = listener.local_addr()?.port();
        known_hosts.push_str(&format!("[127.0.0.1]:{port} {public}\n"));
        ports.insert(served.switch.name.clone(), port);
        let mut server = SimServer {
            switch: served.switch,
            access: access.clone(),
            logins: Arc::clone(&logins),
        };
        runtime.spawn(async move {
            let _ = server.run_on_socket(config, &listener).await;
        });
    }
    Ok(Running {
        ports,
        known_hosts,
        logins,
    })
}

/// Serves every switch of `fabric` that `names` lists, each with its own dialect.
pub fn start_fabric(
    runtime: &tokio::runtime::Handle,
    fabric: &SimFabric,
    names: &[String],
    legacy_only: &[String],
    access: &Access,
) -> std::io::Result<Running> {
    let served = names
        .iter()
        .filter_map(|n| fabric.get(n))
        .map(|sw| Served {
            legacy_only: legacy_only.contains(&sw.name),
            switch: sw,
        })
        .collect();
    start(runtime, served, access)
}

#[derive(Clone)]
struct SimServer {
    switch: SimSwitch,
    access: Arc<Access>,
    logins: Arc<std::sync::atomic::AtomicU64>,
}

impl server::Server for SimServer {
    type Handler = Connection;
    fn new_client(&mut self, _: Option<std::net::SocketAddr>) -> Connection {
        let privileged =
            self.switch.profile().enable.is_none() || self.access.enable_password.is_none();
        Connection {
            server: self.clone(),
            session: None,
            pending: String::new(),
            privileged,
            awaiting_password: false,
            pages: Vec::new(),
        }
    }
}

struct Connection {
    server: SimServer,
    session: Option<SimSession>,
    pending: String,
    /// In privileged mode (`#`), or user mode (`>`) until `enable` succeeds.
    privileged: bool,
    awaiting_password: bool,
    /// Pages of an answer not yet shown (`--More--`), last page first.
    pages: Vec<String>,
}

fn crlf(text: &str) -> String {
    text.replace('\n', "\r\n")
}

impl Connection {
    fn prompt(&self) -> String {
        format!(
            "{}{} ",
            self.server.switch.name,
            if self.privileged { '#' } else { '>' }
        )
    }

    /// Runs one line; `None` means the connection must be dropped.
    async fn line(&mut self, line: &str) -> Option<Result<String, String>> {
        tokio::time::sleep(self.latency(|f| f.command_latency)).await;
        let session = self
            .session
            .get_or_insert_with(|| self.server.switch.server_session());
        match session.run(line) {
            Ok(answer) => Some(Ok(answer)),
            Err(DeviceError::Rejected { answer, .. }) => Some(Err(answer)),
            Err(DeviceError::Timeout { .. }) => {
                // Hang: never answer; the client's command timeout must fire.
                std::future::pending::<()>().await;
                None
            }
            Err(_) => None,
        }
    }

    /// Answer text and prompt, split into pages when the switch paginates.
    fn paginate(&mut self, reply: &str) -> String {
        let lines: Vec<&str> = if reply.is_empty() {
            Vec::new()
        } else {
            reply.split('\n').collect()
        };
        let page_lines = self.server.switch.faults.lock().expect("faults").page_lines;
        match page_lines {
            Some(n) if n > 0 && lines.len() > n => {
                let mut chunks: Vec<String> =
                    lines.chunks(n).map(|c| c.join("\r\n") + "\r\n").collect();
                let first = chunks.remove(0);
                chunks.reverse();
                self.pages = chunks;
                first + " --More-- "
            }
            _ => {
                let mut out = crlf(reply);
                if !out.is_empty() {
                    out.push_str("\r\n");
                }
                out + &self.prompt()
            }
        }
    }

    /// A NETCONF-only device: no shell, no exec.
    fn refuses_shell(&self) -> bool {
        self.server
            .switch
            .faults
            .lock()
            .expect("faults")
            .refuse_shell
    }

    /// A latency of this switch's current faults.
    fn latency(
        &self,
        which: impl Fn(&crate::testkit::sim::Faults) -> std::time::Duration,
    ) -> std::time::Duration {
        which(&self.server.switch.faults.lock().expect("faults"))
    }

    /// Waits the login latency, then accepts `user` if the credential matched and logins are on.
    async fn login(&self, user: &str, credential_ok: bool) -> Auth {
        tokio::time::sleep(self.latency(|f| f.login_latency)).await;
        let refused = self
            .server
            .switch
            .faults
            .lock()
            .expect("faults")
            .refuse_login;
        if !refused && credential_ok && user == self.server.access.username {
            self.server
                .logins
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            Auth::Accept
        } else {
            Auth::reject()
        }
    }
}

impl server::Handler for Connection {
    type Error = russh::Error;

    async fn auth_password(&mut self, user: &str, password: &str) -> Result<Auth, Self::Error> {
        Ok(self
            .login(user, password == self.server.access.password)
            .await)
    }

    async fn auth_publickey(
        &mut self,
        user: &str,
        key: server::VerifiedPublicKey<'_>,
    ) -> Result<Auth, Self::Error> {
        let known = self
            .server
            .access
            .authorized_keys
            .iter()
            .any(|k| k.key_data() == key.public_key.key_data());
        Ok(self.login(user, known).await)
    }

    async fn channel_open_session(
        &mut self,
        _channel: Channel<Msg>,
        reply: server::ChannelOpenHandle,
        _session: &mut Session,
    ) -> Result<(), Self::Error> {
        reply.accept().await;
        Ok(())
    }

    async fn pty_request(
        &mut self,
        channel: ChannelId,
        _term: &str,
        _col: u32,
        _row: u32,
        _pw: u32,
        _ph: u32,
        _modes: &[(russh::Pty, u32)],
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        session.channel_success(channel)?;
        Ok(())
    }

    async fn shell_request(
        &mut self,
        channel: ChannelId,
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        if self.refuses_shell() {
            session.channel_failure(channel)?;
            return Ok(());
        }
        session.channel_success(channel)?;
        let banner = format!(
            "{} (jobnet simulated {})\r\n{}",
            self.server.switch.name,
            self.server.switch.profile().name,
            self.prompt()
        );
        session.data(channel, banner.into_bytes())?;
        Ok(())
    }

    async fn data(
        &mut self,
        channel: ChannelId,
        data: &[u8],
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        self.pending.push_str(&String::from_utf8_lossy(data));
        // A key pressed at `--More--` shows the next page.
        while !self.pages.is_empty() && !self.pending.is_empty() {
            self.pending.remove(0);
            let page = self.pages.pop().expect("a page");
            let tail = if self.pages.is_empty() {
                self.prompt()
            } else {
                " --More-- ".to_string()
            };
            session.data(channel, format!("{page}{tail}").into_bytes())?;
        }
        while let Some(nl) = self.pending.find('\n') {
            let line = self.pending[..nl].trim_end_matches('\r').to_string();
            self.pending.drain(..=nl);
            if self.awaiting_password {
                // Passwords are not echoed.
                self.awaiting_password = false;
                let ok = self.server.access.enable_password.as_deref() == Some(line.as_str());
                self.privileged |= ok;
                let reply = if ok {
                    self.prompt()
                } else {
                    format!("% Access denied\r\n{}", self.prompt())
                };
                session.data(channel, reply.into_bytes())?;
                continue;
            }
            // Echo, as a PTY does.
            session.data(channel, format!("{line}\r\n").into_bytes())?;
            let profile = self.server.switch.profile().clone();
            if profile.enable.as_deref() == Some(line.as_str()) {
                if self.privileged {
                    session.data(channel, self.prompt().into_bytes())?;
                } else {
                    self.awaiting_password = true;
                    session.data(channel, b"Password: ".to_vec())?;
                }
                continue;
            }
            if !self.privileged && profile.begin.contains(&line) {
                let reply = format!(
                    "% Invalid input detected at '^' marker.\r\n{}",
                    self.prompt()
                );
                session.data(channel, reply.into_bytes())?;
                continue;
            }
            let reply = match self.line(&line).await {
                None => {
                    session.close(channel)?;
                    return Err(russh::Error::Disconnect);
                }
                Some(Ok(answer)) | Some(Err(answer)) => answer,
            };
            let out = self.paginate(&reply);
            session.data(channel, out.into_bytes())?;
        }
        Ok(())
    }

    async fn exec_request(
        &mut self,
        channel: ChannelId,
        data: &[u8],
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        if self.refuses_shell() {
            session.channel_failure(channel)?;
            session.close(channel)?;
            return Ok(());
        }
        session.channel_success(channel)?;
        let line = String::from_utf8_lossy(data).to_string();
        match self.line(&line).await {
            None => {
                session.close(channel)?;
                return Err(russh::Error::Disconnect);
            }
            Some(Ok(answer)) => {
                if !answer.is_empty() {
                    session.data(channel, format!("{answer}\n").into_bytes())?;
                }
                session.exit_status_request(channel, 0)?;
            }
            Some(Err(answer)) => {
                session.extended_data(channel, 1, format!("{answer}\n").into_bytes())?;
                session.exit_status_request(channel, 1)?;
            }
        }
        session.eof(channel)?;
        session.close(channel)?;
        Ok(())
    }
}

/// A string as a YAML double-quoted scalar (JSON's escapes are YAML's too).
fn quoted(text: &str) -> String {
    serde_json::Value::from(text).to_string()
}

/// How `up` applies partitions: `reload`, `reload_window_ms`, `verify`, `partition_flags`.
fn infiniband_apply(y: &mut String, ib: &crate::topology::Infiniband) {
    use crate::topology::Reload;
    use std::fmt::Write;
    if let Some(r) = &ib.reload {
        let (key, value) = match r {
            Reload::Pidfile(p) => ("pidfile", p.display().to_string()),
            Reload::SystemdUnit(u) => ("systemd_unit", u.clone()),
            Reload::Command(c) => ("command", c.clone()),
        };
        let _ = writeln!(y, "  reload: {{{key}: {}}}", quoted(&value));
    }
    let _ = writeln!(y, "  reload_window_ms: {}", ib.reload_window_ms);
    if let Some(c) = &ib.verify_command {
        let _ = writeln!(
            y,
            "  verify: {{command: {}, timeout_ms: {}}}",
            quoted(c),
            ib.verify_timeout_ms
        );
    }
    if !ib.partition_flags.is_empty() {
        let flags: Vec<String> = ib
            .partition_flags
            .iter()
            .filter_map(|f| f.split_once('='))
            .map(|(k, v)| format!("{k}: {}", quoted(v)))
            .collect();
        let _ = writeln!(y, "  partition_flags: {{{}}}", flags.join(", "));
    }
}

/// The topology with every switch's and gateway's address pointing at its simulator
/// (`127.0.0.1:PORT`), its login at the credentials entry `credentials`, and `ssh_legacy` set for
/// the switches in `legacy`. The InfiniBand settings are kept as they are (standby SMs, which no
/// simulator serves, are left out).
pub fn rewrite_topology(
    t: &crate::topology::Topology,
    ports: &BTreeMap<String, u16>,
    credentials: &str,
    legacy: &[String],
) -> String {
    use std::fmt::Write;
    let mut y = String::new();
    let _ = writeln!(y, "name: {}", t.name);
    if let Some(e) = &t.ethernet {
        let _ = writeln!(
            y,
            "ethernet:\n  vlan_pool: \"{}\"",
            e.vlan_pool.display(false)
        );
        if !e.reserved_vlans.is_empty() {
            let _ = writeln!(
                y,
                "  reserved_vlans: \"{}\"",
                e.reserved_vlans.display(false)
            );
        }
        let mode = match e.node_port_mode {
            crate::topology::PortMode::Tagged => "tagged",
            crate::topology::PortMode::Access => "access",
        };
        let open = match e.open_ports {
            crate::topology::OpenPorts::Refuse => "refuse",
            crate::topology::OpenPorts::Restrict => "restrict",
        };
        let _ = writeln!(y, "  node_port_mode: {mode}\n  open_ports: {open}");
    }
    if let Some(ib) = &t.infiniband {
        let _ = writeln!(
            y,
            "infiniband:\n  pkey_pool: \"{}\"\n  partitions_conf: {}",
            ib.pkey_pool.display(true),
            ib.partitions_conf
        );
        infiniband_apply(&mut y, ib);
    }
    let addr = |name: &str, original: &str| {
        ports
            .get(name)
            .map_or(original.to_string(), |p| format!("127.0.0.1:{p}"))
    };
    if !t.switches.is_empty() {
        y.push_str("switches:\n");
    }
    for s in &t.switches {
        let _ = writeln!(
            y,
            "  - {{name: {}, driver: {}, address: \"{}\", credentials: {credentials}, ssh_legacy: {}}}",
            s.name,
            s.driver,
            addr(&s.name, &s.address),
            legacy.contains(&s.name)
        );
    }
    if !t.links.is_empty() {
        y.push_str("links:\n");
    }
    for l in &t.links {
        let _ = writeln!(
            y,
            "  - {{a: \"{}\", b: \"{}\", cost: {}, state: {}, lag: {}}}",
            l.a,
            l.b,
            l.cost,
            if l.up { "up" } else { "down" },
            l.lag
        );
    }
    y.push_str("nodes:\n");
    for n in &t.nodes {
        let guid = n
            .ib_guid
            .map(|g| format!(", ib_guids: [\"{g}\"]"))
            .unwrap_or_default();
        let port = n
            .port
            .as_ref()
            .map_or(String::new(), |p| format!(", port: \"{p}\""));
        let _ = writeln!(y, "  - {{name: {}{port}{guid}}}", n.name);
    }
    if !t.gateways.is_empty() {
        y.push_str("gateways:\n");
        for g in &t.gateways {
            let _ = writeln!(
                y,
                "  - {{name: {}, driver: {}, address: \"{}\", credentials: {credentials}, ethernet_port: \"{}\", ib_guid: \"{}\"}}",
                g.name,
                g.driver,
                addr(&g.name, &g.address),
                g.ethernet_port,
                g.ib_guid
            );
        }
    }
    y
}

/// Writes a lab directory for a running simulator: `topology.yaml` (rewritten), `credentials.yaml`
/// (mode 0600) and `known_hosts`.
pub fn write_lab(
    dir: &std::path::Path,
    t: &crate::topology::Topology,
    running: &Running,
    access: &Access,
    legacy: &[String],
) -> std::io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::create_dir_all(dir)?;
    std::fs::write(
        dir.join("topology.yaml"),
        rewrite_topology(t, &running.ports, "sim", legacy),
    )?;
    std::fs::write(dir.join("known_hosts"), &running.known_hosts)?;
    let path = dir.join("credentials.yaml");
    let _ = std::fs::remove_file(&path);
    let mut f = std::fs::OpenOptions::new()
        .create_new(true)
        .write(true)
        .mode(0o600)
        .open(&path)?;
    let enable = access
        .enable_password
        .as_ref()
        .map(|p| format!(", enable_password: \"{p}\""))
        .unwrap_or_default();
    std::io::Write::write_all(
        &mut f,
        format!(
            "sim: {{username: {}, password: \"{}\"{enable}}}\n",
            access.username, access.password
        )
        .as_bytes(),
    )
}

/// A random password for a lab.
pub fn random_password() -> std::io::Result<String> {
    let mut b = [0u8; 12];
    std::fs::File::open("/dev/urandom")?.read_exact(&mut b)?;
    Ok(b.iter().map(|x| format!("{x:02x}")).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_lab_topology_keeps_how_partitions_are_applied() {
        let drivers = crate::drivers::DriverSet::builtin();
        let original = "name: ib\ninfiniband:\n  pkey_pool: \"0x10-0x12\"\n  partitions_conf: /etc/opensm/partitions.conf\n  reload: {systemd_unit: opensm.service}\n  reload_window_ms: 50\n  verify: {command: \"smpquery -G pkeys {guid} 1\", timeout_ms: 700}\n  partition_flags: {mtu: 4, rate: 7, sl: 1, defmember: full}\nnodes:\n  - {name: \"n[1-2]\", ib_guids: [\"0x100001\", \"0x100004\"]}\n";
        let before = crate::topology::parse(original, "ib.yaml", &drivers)
            .unwrap()
            .topology;
        let text = rewrite_topology(&before, &BTreeMap::new(), "sim", &[]);
        let after = crate::topology::parse(&text, "lab.yaml", &drivers)
            .unwrap_or_else(|e| panic!("{e:?}\n{text}"))
            .topology;
        let (b, a) = (
            before.infiniband.as_ref().unwrap(),
            after.infiniband.as_ref().unwrap(),
        );
        assert_eq!(a.apply_settings(), b.apply_settings(), "{text}");
        assert!(a.apply_settings().is_some(), "{text}");
        assert_eq!(a.reload_window_ms, 50, "{text}");
        assert_eq!(a.verify_command, b.verify_command, "{text}");
        assert_eq!(a.verify_timeout_ms, 700, "{text}");
        assert_eq!(
            a.partition_flags,
            ["mtu=4", "rate=7", "sl=1", "defmember=full"],
            "{text}"
        );
        for (reload, key) in [
            ("{pidfile: /run/opensm.pid}", "pidfile"),
            ("{command: \"/usr/sbin/opensm-reload --now\"}", "command"),
        ] {
            let other = original.replace("{systemd_unit: opensm.service}", reload);
            let t = crate::topology::parse(&other, "ib.yaml", &drivers)
                .unwrap()
                .topology;
            let text = rewrite_topology(&t, &BTreeMap::new(), "sim", &[]);
            assert!(text.contains(&format!("reload: {{{key}: ")), "{text}");
            let again = crate::topology::parse(&text, "lab.yaml", &drivers)
                .unwrap()
                .topology;
            assert_eq!(
                again.infiniband.unwrap().reload,
                t.infiniband.unwrap().reload
            );
        }
    }
}
