//! SSH transport (russh): one session per device per apply, carrying all of that device's lines.
//!
//! - Host keys are checked against a known_hosts file: an unknown key or a changed key refuses the
//!   connection; trust-on-first-use (learning an unknown key) only when explicitly enabled.
//! - Logins come from the credentials file (password or key); secrets never reach a message.
//! - Old algorithms (diffie-hellman-group14-sha1/group1-sha1 key exchange, ssh-rsa host keys,
//!   hmac-sha1) are offered only to switches marked `ssh_legacy: true`; for those the MAC list is
//!   also restricted to hmac-sha2-256/hmac-sha1, because some old servers break with
//!   hmac-sha2-512 right after key exchange (field notes).
//! - `shell` dialects: a PTY and an interactive shell; each line is typed, the echo is stripped,
//!   `--More--` pagers are answered with a space, and the answer ends at the next prompt.
//!   `exec` dialects: one exec request per line; a non-zero exit status is a refusal.
//! - Connect and per-command timeouts; a closed connection is reported as lost.
//!
//! The executor is synchronous (a thread per device); sessions run on one shared tokio runtime.

use super::{check_answer, Connector, DeviceError, Session, Target};
use crate::base::hint::Hint;
use crate::drivers::transport::credentials::{Auth, Credentials};
use crate::drivers::Profile;
use russh::client;
use russh::keys::{check_known_hosts_path, PrivateKeyWithHashAlg, PublicKeyOrCertificate};
use russh::{ChannelMsg, Disconnect};
use std::borrow::Cow;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// SSH settings of a run.
#[derive(Clone, Debug)]
pub struct SshOptions {
    /// `None` when the file does not exist (an SSH device then cannot be reached).
    pub credentials: Option<Arc<Credentials>>,
    pub credentials_path: PathBuf,
    pub known_hosts: PathBuf,
    pub trust_on_first_use: bool,
    pub connect_timeout: Duration,
    pub command_timeout: Duration,
}

/// Splits `host`, `host:port` or `[v6]:port` (default port 22).
pub fn split_address(address: &str) -> Result<(String, u16), String> {
    let port = |p: &str| match p.parse::<u16>() {
        Ok(n) if n > 0 => Ok(n),
        _ => Err(format!(
            "address `{}`: port `{}` is not a number in 1..65535",
            address.escape_debug(),
            p.escape_debug()
        )),
    };
    if let Some(rest) = address.strip_prefix('[') {
        if let Some((h, p)) = rest.split_once("]:") {
            return Ok((h.to_string(), port(p)?));
        }
        return Ok((rest.trim_end_matches(']').to_string(), 22));
    }
    match address.rsplit_once(':') {
        Some((h, p)) if !h.contains(':') => Ok((h.to_string(), port(p)?)),
        _ => Ok((address.to_string(), 22)),
    }
}

struct Client {
    host: String,
    port: u16,
    /// The switch is marked `ssh_legacy`: ssh-keyscan cannot fetch its key.
    legacy: bool,
    known_hosts: PathBuf,
    tofu: bool,
    problem: Arc<Mutex<Option<Why>>>,
}

/// Why a connection was refused, and the caller's setting that would change that.
type Why = (String, Option<Hint>);

impl Client {
    /// How to record the device's key: OpenSSH 9's ssh-keyscan cannot offer the old algorithms
    /// an `ssh_legacy` switch speaks, but ssh itself can.
    fn record_hint(&self, kh: &str) -> String {
        if self.legacy {
            format!(
                "for this ssh_legacy switch: ssh -o KexAlgorithms=+diffie-hellman-group14-sha1 -o HostKeyAlgorithms=+ssh-rsa -o StrictHostKeyChecking=accept-new -o UserKnownHostsFile={kh} -o HashKnownHosts=no -p {} USER@{}",
                self.port, self.host
            )
        } else {
            format!("ssh-keyscan -p {} {} >> {kh}", self.port, self.host)
        }
    }

    fn refuse(&self, why: String, hint: Option<Hint>) -> Result<bool, russh::Error> {
        *self.problem.lock().expect("problem slot") = Some((why, hint));
        Ok(false)
    }
}

impl client::Handler for Client {
    type Error = russh::Error;

    async fn check_server_key(
        &mut self,
        server_key: &PublicKeyOrCertificate,
    ) -> Result<bool, Self::Error> {
        let PublicKeyOrCertificate::PublicKey { key, .. } = server_key else {
            return self.refuse("the server presented a host certificate; jobnet checks plain host keys in known_hosts".into(), None);
        };
        let fp = key.fingerprint(Default::default());
        let kh = self.known_hosts.display().to_string();
        let hostport = if self.port == 22 {
            self.host.clone()
        } else {
            format!("[{}]:{}", self.host, self.port)
        };
        match check_known_hosts_path(&self.host, self.port, key, &self.known_hosts) {
            Ok(true) => Ok(true),
            Err(russh::keys::Error::KeyChanged { line }) => self.refuse(format!(
                "host key of {hostport} CHANGED (now {fp}, known_hosts {kh} line {line} says otherwise): possible man-in-the-middle, refusing; if the device was really re-keyed, remove that line after checking the new fingerprint"
            ), None),
            Ok(false) | Err(russh::keys::Error::IO(_)) if self.tofu => match learn(&self.host, self.port, key, &self.known_hosts) {
                Ok(()) => Ok(true),
                Err(e) => self.refuse(format!("cannot record the host key of {hostport} in {kh}: {e}"), None),
            },
            Ok(false) => self.refuse(
                unknown_key(&hostport, &fp.to_string(), &kh, &self.record_hint(&kh)),
                Some(Hint::TrustOnFirstUse),
            ),
            Err(russh::keys::Error::IO(e)) if e.kind() == std::io::ErrorKind::NotFound => self.refuse(
                no_known_hosts(&hostport, &fp.to_string(), &kh, &self.record_hint(&kh)),
                Some(Hint::TrustOnFirstUse),
            ),
            Err(e) => self.refuse(format!("cannot check known_hosts {kh}: {e}"), None),
        }
    }
}

/// A device whose host key known_hosts does not list. The other fix, recording the key on first
/// contact, is the caller's setting ([`Hint::TrustOnFirstUse`]).
fn unknown_key(hostport: &str, fp: &str, kh: &str, record: &str) -> String {
    format!("host key of {hostport} ({fp}) is not in known_hosts {kh}; check the fingerprint on the device and add it ({record})")
}

/// No known_hosts file at all.
fn no_known_hosts(hostport: &str, fp: &str, kh: &str, record: &str) -> String {
    format!("known_hosts file {kh} does not exist, so the host key of {hostport} ({fp}) cannot be checked; create it ({record})")
}

/// Records a host key; one writer at a time in this process (the device workers run in parallel).
fn learn(
    host: &str,
    port: u16,
    key: &russh::keys::PublicKey,
    path: &std::path::Path,
) -> Result<(), russh::keys::Error> {
    static LEARNING: Mutex<()> = Mutex::new(());
    let _one = LEARNING.lock().unwrap_or_else(|e| e.into_inner());
    russh::keys::known_hosts::learn_known_hosts_path(host, port, key, path)
}

/// A wait that ran out (its limit, the command's deadline, or a signal during `up`).
#[derive(Debug)]
pub(super) struct Elapsed;

/// `tokio::time::timeout`, but never past the command's deadline, and over within 0.1 s once a
/// signal arrived during `up` (see [`crate::base::deadline`]): the caller reports a timeout and
/// the executor then sees the signal and unwinds.
pub(super) async fn bounded<F: std::future::Future>(
    limit: Duration,
    fut: F,
) -> Result<F::Output, Elapsed> {
    use crate::base::deadline;
    let limit = deadline::Deadline::within_command(limit).left();
    let signal = async {
        while !deadline::work_interrupted() {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    };
    tokio::select! {
        r = fut => Ok(r),
        _ = tokio::time::sleep(limit) => Err(Elapsed),
        _ = signal => Err(Elapsed),
    }
}

fn config(legacy: bool, timeout: Duration) -> client::Config {
    let mut preferred = russh::Preferred::default();
    if legacy {
        let mut kex: Vec<russh::kex::Name> = preferred.kex.to_vec();
        kex.extend([russh::kex::DH_G14_SHA1, russh::kex::DH_G1_SHA1]);
        preferred.kex = Cow::Owned(kex);
        let mut key: Vec<russh::keys::Algorithm> = preferred.key.to_vec();
        key.push(russh::keys::Algorithm::Rsa { hash: None });
        preferred.key = Cow::Owned(key);
        preferred.mac = Cow::Owned(vec![russh::mac::HMAC_SHA256, russh::mac::HMAC_SHA1]);
    }
    client::Config {
        preferred,
        inactivity_timeout: Some(timeout * 4),
        nodelay: true,
        ..Default::default()
    }
}

/// No credentials file where the options say; which file that is, is the caller's setting
/// ([`Hint::CredentialsPath`]).
fn no_credentials(path: &str) -> String {
    format!("credentials file {path} does not exist; create it (mode 0600) or name the file that holds the device logins")
}

/// Opens SSH sessions.
pub struct SshConnector {
    runtime: tokio::runtime::Handle,
    opts: SshOptions,
}

impl SshConnector {
    /// A connector on the process's runtime ([`crate::base::runtime`]).
    pub fn new(opts: SshOptions) -> std::io::Result<Self> {
        let runtime = crate::base::runtime::handle()?;
        Ok(SshConnector { runtime, opts })
    }
}

impl SshConnector {
    /// The login the credentials file gives `target`, or why there is none.
    fn login_of(
        &self,
        target: &Target,
    ) -> Result<crate::drivers::transport::credentials::Login, Why> {
        let creds = self.opts.credentials.as_ref().ok_or_else(|| {
            (
                no_credentials(&self.opts.credentials_path.display().to_string()),
                Some(Hint::CredentialsPath),
            )
        })?;
        let name = target.credentials.as_deref().ok_or_else(|| {
            (
                "the topology gives it no `credentials:` entry name".to_string(),
                None,
            )
        })?;
        creds
            .get(name, &target.name)
            .cloned()
            .map_err(|e| (e.to_string(), None))
    }

    /// Connects, checks the host key and logs in.
    fn login(
        &self,
        target: &Target,
    ) -> Result<
        (
            client::Handle<Client>,
            crate::drivers::transport::credentials::Login,
            String,
        ),
        DeviceError,
    > {
        let (host, port) =
            split_address(&target.address).map_err(|reason| DeviceError::Connect {
                device: target.name.clone(),
                address: target.address.clone(),
                reason,
            })?;
        let fail = |(reason, hint): Why| match hint {
            Some(hint) => DeviceError::Setup {
                device: target.name.clone(),
                address: target.address.clone(),
                reason,
                hint,
            },
            None => DeviceError::Connect {
                device: target.name.clone(),
                address: target.address.clone(),
                reason,
            },
        };
        let login = self.login_of(target).map_err(fail)?;
        let name = target.credentials.as_deref().unwrap_or_default();
        let problem = Arc::new(Mutex::new(None));
        let handler = Client {
            host: host.clone(),
            port,
            legacy: target.legacy,
            known_hosts: self.opts.known_hosts.clone(),
            tofu: self.opts.trust_on_first_use,
            problem: problem.clone(),
        };
        let cfg = Arc::new(config(target.legacy, self.opts.command_timeout));
        let timeout = self.opts.connect_timeout;
        let client = self
            .runtime
            .block_on(async {
                let mut client = bounded(
                    timeout,
                    client::connect(cfg, (host.as_str(), port), handler),
                )
                .await
                .map_err(|_| {
                    let why = if crate::base::deadline::work_interrupted() {
                        "abandoned: a signal asked jobnet to stop".to_string()
                    } else {
                        format!("no SSH connection within {} s", timeout.as_secs())
                    };
                    (why, None)
                })?
                .map_err(|e| {
                    problem
                        .lock()
                        .expect("problem slot")
                        .take()
                        .unwrap_or_else(|| (ssh_error(&e, target.legacy), None))
                })?;
                authenticate(&mut client, &login, name)
                    .await
                    .map_err(|e| (e.to_string(), None))?;
                Ok::<_, Why>(client)
            })
            .map_err(fail)?;
        Ok((client, login, name.to_string()))
    }
}

/// Why a login failed.
#[derive(Debug, thiserror::Error)]
enum LoginError {
    #[error("{0}")]
    Ssh(#[from] russh::Error),
    #[error("cannot load key file {path}: {source}")]
    Key {
        path: String,
        #[source]
        source: russh::keys::Error,
    },
    #[error("authentication refused for user {user} (credentials entry `{entry}`)")]
    Refused { user: String, entry: String },
}

/// Logs in with the password or key file of credentials entry `name`.
async fn authenticate(
    client: &mut client::Handle<Client>,
    login: &crate::drivers::transport::credentials::Login,
    name: &str,
) -> Result<(), LoginError> {
    let ok = match &login.auth {
        Auth::Password(p) => {
            client
                .authenticate_password(login.username.clone(), p.clone())
                .await?
        }
        Auth::KeyFile(path) => {
            let key =
                russh::keys::load_secret_key(path, None).map_err(|source| LoginError::Key {
                    path: path.display().to_string(),
                    source,
                })?;
            let hash = client.best_supported_rsa_hash().await?.flatten();
            client
                .authenticate_publickey(
                    login.username.clone(),
                    PrivateKeyWithHashAlg::new(Arc::new(key), hash),
                )
                .await?
        }
    };
    if !ok.success() {
        return Err(LoginError::Refused {
            user: login.username.clone(),
            entry: name.to_string(),
        });
    }
    Ok(())
}

impl Connector for SshConnector {
    fn preflight(&self, target: &Target) -> Result<(), String> {
        self.login_of(target).map(|_| ()).map_err(|(why, _)| why)
    }

    fn install_file(&self, target: &Target, path: &str, text: &str) -> Result<(), DeviceError> {
        // The remote half of base::fsutil::replace_file (this runs on another host, so it is a
        // command line): keep the old file's owner and mode (cp -p), write a temporary copy in
        // the same directory, fsync it, rename it into place, fsync the directory.
        let dir = std::path::Path::new(path)
            .parent()
            .map_or("/".to_string(), |d| d.display().to_string());
        let command = format!("umask 022; cp -p {path} {path}.jobnet-tmp 2>/dev/null; cat > {path}.jobnet-tmp && sync {path}.jobnet-tmp && mv -f {path}.jobnet-tmp {path} && sync {dir}");
        let refused = |answer: String| DeviceError::Rejected {
            device: target.name.clone(),
            command: format!("install {path}"),
            answer,
        };
        if !crate::base::types::safe_path(path) {
            return Err(refused(format!(
                "`{}` is not an absolute path of letters, digits and /._-",
                path.escape_debug()
            )));
        }
        let (client, _, _) = self.login(target)?;
        let timeout = self.opts.command_timeout;
        let result = self.runtime.block_on(async {
            bounded(timeout, async {
                let mut ch = client
                    .channel_open_session()
                    .await
                    .map_err(|e| e.to_string())?;
                ch.exec(true, command.as_str())
                    .await
                    .map_err(|e| e.to_string())?;
                ch.data(text.as_bytes()).await.map_err(|e| e.to_string())?;
                ch.eof().await.map_err(|e| e.to_string())?;
                let (mut err, mut status) = (String::new(), None);
                while let Some(msg) = ch.wait().await {
                    match msg {
                        ChannelMsg::ExtendedData { data, .. } => {
                            err.push_str(&String::from_utf8_lossy(&data))
                        }
                        ChannelMsg::ExitStatus { exit_status } => status = Some(exit_status),
                        _ => {}
                    }
                }
                Ok::<_, String>((err, status))
            })
            .await
        });
        let _ = self
            .runtime
            .block_on(client.disconnect(Disconnect::ByApplication, "", "en"));
        match result {
            Err(_) => Err(DeviceError::ran_out(
                &target.name,
                &format!("install {path}"),
                timeout.as_secs(),
            )),
            Ok(Err(reason)) => Err(DeviceError::Lost {
                device: target.name.clone(),
                command: format!("install {path}"),
                reason,
            }),
            Ok(Ok((_, Some(0)))) => Ok(()),
            Ok(Ok((err, status))) => Err(refused(format!(
                "exit status {}: {}",
                status.map_or("none".into(), |s| s.to_string()),
                err.trim()
            ))),
        }
    }

    fn connect(&self, target: &Target, profile: &Profile) -> Result<Box<dyn Session>, DeviceError> {
        let fail = |reason: String| DeviceError::Connect {
            device: target.name.clone(),
            address: target.address.clone(),
            reason,
        };
        let (client, login, name) = self.login(target)?;
        let name = name.as_str();
        let handle = self.runtime.clone();
        let connect_timeout = self.opts.connect_timeout;
        let channel = handle
            .block_on(async {
                if profile.ssh.exec {
                    return Ok(None);
                }
                let mut ch = client
                    .channel_open_session()
                    .await
                    .map_err(|e| e.to_string())?;
                ch.request_pty(false, "vt100", 511, 24, 0, 0, &[])
                    .await
                    .map_err(|e| e.to_string())?;
                ch.request_shell(true).await.map_err(|e| e.to_string())?;
                // A device that only speaks NETCONF or an API refuses the shell: say so at once
                // instead of waiting for a prompt that never comes.
                let mut early = String::new();
                let answered = bounded(connect_timeout, async {
                    loop {
                        match ch.wait().await {
                            Some(ChannelMsg::Success) => return Ok(()),
                            Some(ChannelMsg::Failure) => return Err("the device refused an interactive shell (a NETCONF- or API-only device? jobnet drives CLIs over SSH)".to_string()),
                            Some(ChannelMsg::Data { data }) => early.push_str(&String::from_utf8_lossy(&data)),
                            Some(ChannelMsg::Eof) | Some(ChannelMsg::Close) | None => return Err("the device closed the session instead of starting a shell".to_string()),
                            Some(_) => {}
                        }
                    }
                })
                .await
                .map_err(|_| format!("the device did not answer the shell request within {} s", connect_timeout.as_secs()))?;
                answered?;
                Ok::<_, String>(Some((ch, early)))
            })
            .map_err(fail)?;
        let (channel, early) = match channel {
            Some((ch, early)) => (Some(ch), early),
            None => (None, String::new()),
        };
        let mut session = SshSession {
            handle,
            client: Arc::new(client),
            channel,
            buffer: early,
            profile: profile.clone(),
            device: target.name.clone(),
            // The banner and first prompt belong to the connection: the connect timeout covers them.
            timeout: self.opts.connect_timeout,
        };
        if session.channel.is_some() {
            // Read the banner up to the first prompt, then enter privileged mode if the dialect has one.
            session
                .read_to_prompt("<login>")
                .map_err(|e| fail(e.to_string()))?;
        }
        session.timeout = self.opts.command_timeout;
        if session.channel.is_some() {
            if let Some(cmd) = profile.enable.clone() {
                session.enable(&cmd, login.enable_password.as_deref(), name, &fail)?;
            }
        }
        Ok(Box::new(session))
    }
}

fn ssh_error(e: &russh::Error, legacy: bool) -> String {
    let text = e.to_string();
    if matches!(e, russh::Error::NoCommonAlgo { .. }) && !legacy {
        return format!("{text}; if this is an old switch, allow old algorithms with `ssh_legacy: true` in the topology");
    }
    text
}

struct SshSession {
    handle: tokio::runtime::Handle,
    /// Shared with the task that says goodbye when the session is dropped.
    client: Arc<client::Handle<Client>>,
    channel: Option<russh::Channel<client::Msg>>,
    buffer: String,
    profile: Profile,
    device: String,
    timeout: Duration,
}

impl SshSession {
    fn lost(&self, command: &str, reason: &str) -> DeviceError {
        DeviceError::Lost {
            device: self.device.clone(),
            command: command.to_string(),
            reason: reason.to_string(),
        }
    }

    /// Reads until the prompt; answers pagers; returns the text before the prompt.
    fn read_to_prompt(&mut self, command: &str) -> Result<String, DeviceError> {
        self.read_until(command, None).map(|(text, _)| text)
    }

    /// Reads until the prompt or, if given, `other` (a password prompt); says which ended it.
    fn read_until(
        &mut self,
        command: &str,
        other: Option<&regex::Regex>,
    ) -> Result<(String, bool), DeviceError> {
        let ssh = &self.profile.ssh;
        let timeout = self.timeout;
        let Some(channel) = self.channel.as_mut() else {
            return Ok((String::new(), false));
        };
        let buffer = &mut self.buffer;
        let result = self.handle.block_on(async {
            bounded(timeout, async {
                let mut after_pager = false;
                loop {
                    if let Some(m) = ssh.pager.find(buffer) {
                        // Drop the whole pager line; the next page starts on a fresh line.
                        let cut = buffer[..m.start()].rfind('\n').map_or(0, |i| i + 1);
                        buffer.truncate(cut);
                        after_pager = true;
                        channel.data(&b" "[..]).await.map_err(|e| e.to_string())?;
                        continue;
                    }
                    if let Some(m) = other.and_then(|re| re.find(buffer)) {
                        let text = buffer[..m.start()].to_string();
                        buffer.clear();
                        return Ok((text, true));
                    }
                    if let Some(m) = ssh.prompt.find(buffer) {
                        let text = buffer[..m.start()].to_string();
                        buffer.clear();
                        return Ok((text, false));
                    }
                    if buffer.len() > crate::base::limits::ANSWER {
                        return Err(format!(
                            "the answer grew beyond {} MiB without a prompt",
                            crate::base::limits::ANSWER >> 20
                        ));
                    }
                    match channel.wait().await {
                        Some(ChannelMsg::Data { data })
                        | Some(ChannelMsg::ExtendedData { data, .. }) => {
                            let text = String::from_utf8_lossy(&data);
                            if after_pager {
                                // Switches erase the pager prompt with spaces, backspaces or ESC[K.
                                let rest = text
                                    .trim_start_matches([' ', '\x08', '\r'])
                                    .trim_start_matches("\x1b[K");
                                after_pager = rest.is_empty();
                                buffer.push_str(rest);
                            } else {
                                buffer.push_str(&text);
                            }
                        }
                        Some(ChannelMsg::Eof) | Some(ChannelMsg::Close) | None => {
                            return Err("connection closed by the device".to_string())
                        }
                        Some(_) => {}
                    }
                }
            })
            .await
        });
        match result {
            Ok(Ok(found)) => Ok(found),
            Ok(Err(reason)) => Err(self.lost(command, &reason)),
            Err(_) => Err(DeviceError::ran_out(
                &self.device,
                command,
                timeout.as_secs(),
            )),
        }
    }

    fn send(&mut self, text: &str, command: &str) -> Result<(), DeviceError> {
        let channel = self.channel.as_ref().expect("shell channel");
        let sent = self.handle.block_on(channel.data(text.as_bytes()));
        sent.map_err(|e| self.lost(command, &e.to_string()))
    }

    /// Enters privileged mode, answering a password prompt with `password`; failures are
    /// connection failures (`fail` names the device and address).
    fn enable(
        &mut self,
        command: &str,
        password: Option<&str>,
        entry: &str,
        fail: &dyn Fn(String) -> DeviceError,
    ) -> Result<(), DeviceError> {
        let password_prompt = regex::Regex::new(r"(?i)password:\s*$").expect("static regex");
        let wrap = |e: DeviceError| fail(e.to_string());
        self.send(&format!("{command}\n"), command).map_err(wrap)?;
        let (text, asked) = self
            .read_until(command, Some(&password_prompt))
            .map_err(wrap)?;
        let answer = if asked {
            let Some(pw) = password else {
                return Err(fail(format!("`{command}` asks for a password; add `enable_password` to credentials entry `{entry}`")));
            };
            self.send(&format!("{pw}\n"), command).map_err(wrap)?;
            self.read_to_prompt(command).map_err(wrap)?
        } else {
            text
        };
        match check_answer(&self.profile, &self.device, command, answer) {
            Ok(_) => Ok(()),
            Err(_) => Err(fail(format!(
                "`{command}` was refused (wrong enable_password in credentials entry `{entry}`?)"
            ))),
        }
    }

    fn exec(&mut self, line: &str) -> Result<String, DeviceError> {
        let timeout = self.timeout;
        let client = &self.client;
        let result = self.handle.block_on(async {
            bounded(timeout, async {
                let mut ch = client
                    .channel_open_session()
                    .await
                    .map_err(|e| e.to_string())?;
                ch.exec(true, line).await.map_err(|e| e.to_string())?;
                let (mut out, mut err, mut status) = (String::new(), String::new(), None);
                while let Some(msg) = ch.wait().await {
                    match msg {
                        ChannelMsg::Data { data } => out.push_str(&String::from_utf8_lossy(&data)),
                        ChannelMsg::ExtendedData { data, .. } => {
                            err.push_str(&String::from_utf8_lossy(&data))
                        }
                        ChannelMsg::ExitStatus { exit_status } => status = Some(exit_status),
                        ChannelMsg::Failure => {
                            return Err("the device refused the exec request (a NETCONF- or API-only device? jobnet drives CLIs over SSH)".to_string())
                        }
                        _ => {}
                    }
                    if out.len() + err.len() > crate::base::limits::ANSWER {
                        return Err(format!("the answer grew beyond {} MiB", crate::base::limits::ANSWER >> 20));
                    }
                }
                Ok::<_, String>((out, err, status))
            })
            .await
        });
        match result {
            Err(_) => Err(DeviceError::ran_out(&self.device, line, timeout.as_secs())),
            Ok(Err(reason)) => Err(self.lost(line, &reason)),
            Ok(Ok((_, err, Some(code)))) if code != 0 => Err(DeviceError::Rejected {
                device: self.device.clone(),
                command: line.to_string(),
                answer: if err.trim().is_empty() {
                    format!("exit status {code}")
                } else {
                    err.trim().to_string()
                },
            }),
            Ok(Ok((_, _, None))) => {
                Err(self.lost(line, "the command ended without an exit status"))
            }
            Ok(Ok((out, _, _))) => check_answer(&self.profile, &self.device, line, out),
        }
    }
}

impl Session for SshSession {
    fn probe(&mut self) -> Result<(), DeviceError> {
        if self.client.is_closed() {
            return Err(self.lost("<keep-alive>", "the device closed the connection"));
        }
        if self.channel.is_some() {
            self.send("\n", "<keep-alive>")?;
            self.read_to_prompt("<keep-alive>")?;
        }
        Ok(())
    }

    fn run(&mut self, line: &str) -> Result<String, DeviceError> {
        if self.channel.is_none() {
            return self.exec(line);
        }
        self.send(&format!("{line}\n"), line)?;
        let text = self.read_to_prompt(line)?;
        // Drop the echo of the line and the CR of the PTY.
        let mut lines: Vec<&str> = text.split('\n').map(|l| l.trim_end_matches('\r')).collect();
        if lines.first().is_some_and(|l| l.trim() == line.trim()) {
            lines.remove(0);
        }
        let answer = lines.join("\n").trim_end().to_string();
        check_answer(&self.profile, &self.device, line, answer)
    }
}

impl Drop for SshSession {
    /// Says goodbye on the runtime without waiting for it (no `block_on` in `Drop`): a
    /// connection the device has already closed costs nothing, and the TCP connection closes
    /// with the process in any case.
    fn drop(&mut self) {
        let client = Arc::clone(&self.client);
        self.handle.spawn(async move {
            let _ = client.disconnect(Disconnect::ByApplication, "", "en").await;
        });
    }
}

#[cfg(test)]
mod tests {
    use super::{no_credentials, no_known_hosts, split_address, unknown_key};

    /// What jobnet says about an unknown host key or a missing credentials file names no flag:
    /// the caller adds its own from the hint (`--trust-on-first-use`, `--credentials`).
    #[test]
    fn refusals_name_no_flag_of_any_caller() {
        let kh = "/etc/jobnet/known_hosts";
        let record = "ssh-keyscan -p 22 sw1 >> /etc/jobnet/known_hosts";
        for text in [
            unknown_key("sw1", "SHA256:abc", kh, record),
            no_known_hosts("sw1", "SHA256:abc", kh, record),
            no_credentials("/etc/jobnet/credentials.yaml"),
        ] {
            assert!(
                !text.contains(" --") && !text.contains("$JOBNET_"),
                "{text}"
            );
        }
    }

    #[test]
    fn addresses() {
        assert_eq!(split_address("192.0.2.1"), Ok(("192.0.2.1".into(), 22)));
        assert_eq!(
            split_address("127.0.0.1:2201"),
            Ok(("127.0.0.1".into(), 2201))
        );
        assert_eq!(
            split_address("sw.example:830"),
            Ok(("sw.example".into(), 830))
        );
        // A bad port is an error naming it, never port 22.
        let e = split_address("sw.example:22x").unwrap_err();
        assert!(e.contains("port `22x` is not a number"), "{e}");
        assert!(split_address("[2001:db8::1]:0").is_err());
        assert_eq!(
            split_address("[2001:db8::1]:2222"),
            Ok(("2001:db8::1".into(), 2222))
        );
        assert_eq!(split_address("2001:db8::1"), Ok(("2001:db8::1".into(), 22)));
    }
}
