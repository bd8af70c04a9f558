//! Sessions borrowed from a running `jobnetd`: HTTP/1.1 with JSON bodies over its Unix socket
//! (hyper), one connection per borrowed session.
//!
//! A short `jobnet` process (a command, a scheduler hook) asks jobnetd for a session to a
//! device, sends its lines through it and hands it back; jobnetd keeps the session warm for the
//! next job ([`super::pool`]). Everything else stays in the calling process: plans, the state
//! store, the journal, locks, rollback and exit codes are the same with or without jobnetd.
//! When no jobnetd answers on the socket (not running, stopping, restarted), the device is
//! reached directly, as without it. The connection carries the session's life: a process that
//! dies closes it and jobnetd closes the device session (its state is not known).
//!
//! The API (docs/jobnetd.md):
//! - `POST /v1/sessions` [`OpenRequest`] → [`OpenReply`] (a session lent on this connection)
//! - `POST /v1/sessions/ID/run` [`RunRequest`] → [`RunReply`]
//! - `POST /v1/sessions/ID/release` [`ReleaseRequest`] → `{}`
//! - `POST /v1/devices/read` [`ReadRequest`] → [`RunReply`] (a read, answered once for every
//!   job that asked for the same read at that moment)
//! - `POST /v1/devices/settle` [`SettleRequest`] → `{"settled": bool}` (nothing of the job
//!   waits or is being sent on the device any more)
//! - `POST /v1/devices/apply` [`ApplyRequest`] → [`crate::drivers::merge::Merged`] (a job's
//!   decided operations on one device, sent with other jobs' on jobnetd's own session)
//! - `GET /v1/health`, `GET /metrics` (Prometheus text)
//!
//! Errors are `{"error": DeviceError}` (status 502) or `{"message": "…"}` (4xx, 503 while
//! stopping).

use super::ssh::bounded;
use super::{Connector, DeviceError, Merger, Session, Target, Unmerged};
use crate::drivers::merge::{Merged, Submission};
use crate::drivers::Profile;
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::client::conn::http1::SendRequest;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Where the daemon listens unless told otherwise.
pub const DEFAULT_SOCKET: &str = "/run/jobnet/jobnetd.sock";

/// The socket a `--daemon` / `$JOBNET_DAEMON` value names: unset is [`DEFAULT_SOCKET`], `off`
/// (or empty) is none (devices always reached directly).
pub fn socket_setting(value: Option<&str>) -> Option<PathBuf> {
    match value.map(str::trim) {
        None => Some(PathBuf::from(DEFAULT_SOCKET)),
        Some("" | "off" | "none") => None,
        Some(path) => Some(PathBuf::from(path)),
    }
}

/// How jobnetd logs in for this caller: the same files and bounds the caller would use itself.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct LoginOptions {
    pub credentials: PathBuf,
    pub known_hosts: PathBuf,
    pub trust_on_first_use: bool,
    pub connect_timeout_ms: u64,
    pub command_timeout_ms: u64,
    pub sessions_per_device: usize,
}

/// Lend me a session to `target`, speaking `profile` (the profile's YAML text).
#[derive(Debug, Serialize, Deserialize)]
pub struct OpenRequest {
    pub target: Target,
    pub profile: String,
    pub login: LoginOptions,
    /// How long to wait for one of the device's sessions (jobnetd keeps at most
    /// `sessions_per_device` of them in use).
    #[serde(default = "default_wait_ms")]
    pub wait_ms: u64,
}

fn default_wait_ms() -> u64 {
    60_000
}

/// Send this read (one of the profile's read commands) on `target`, with other jobs' identical
/// reads waiting at the same moment: one answer for all of them.
#[derive(Debug, Serialize, Deserialize)]
pub struct ReadRequest {
    pub target: Target,
    pub profile: String,
    pub login: LoginOptions,
    #[serde(default = "default_wait_ms")]
    pub wait_ms: u64,
    pub line: String,
}

/// Wait until nothing of `job` waits or is being sent on `target` (before undoing it there).
#[derive(Debug, Serialize, Deserialize)]
pub struct SettleRequest {
    pub target: Target,
    pub profile: String,
    pub login: LoginOptions,
    pub job: String,
    #[serde(default = "default_wait_ms")]
    pub wait_ms: u64,
}

/// Send these operations of one job on `target`, with other jobs' where they coincide.
#[derive(Debug, Serialize, Deserialize)]
pub struct ApplyRequest {
    pub target: Target,
    pub profile: String,
    pub login: LoginOptions,
    #[serde(default = "default_wait_ms")]
    pub wait_ms: u64,
    pub submission: crate::drivers::merge::Submission,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct OpenReply {
    pub session: u64,
    /// Handed over warm (no login for it).
    pub warm: bool,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct RunRequest {
    pub line: String,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct RunReply {
    pub answer: String,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct ReleaseRequest {
    pub reusable: bool,
}

/// An error body.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct ErrorReply {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<DeviceError>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub message: String,
}

/// Why a call to jobnetd did not give an answer.
#[derive(Debug)]
pub enum CallError {
    /// No jobnetd on the socket (or it went away before answering).
    Unreachable(String),
    /// It answered with an error status.
    Status(u16, ErrorReply),
    /// No answer within the time.
    TimedOut,
}

/// One HTTP/1.1 connection to jobnetd.
pub struct Client {
    sender: SendRequest<Full<Bytes>>,
    rt: tokio::runtime::Handle,
}

impl Client {
    /// Connects within `limit`; `Unreachable` when nothing listens on `socket`.
    pub fn connect(socket: &Path, limit: Duration) -> Result<Client, CallError> {
        let rt =
            crate::base::runtime::handle().map_err(|e| CallError::Unreachable(e.to_string()))?;
        let socket = socket.to_path_buf();
        let sender = rt.block_on(async {
            let made = bounded(limit, async {
                let stream = tokio::net::UnixStream::connect(&socket)
                    .await
                    .map_err(|e| format!("{}: {e}", socket.display()))?;
                let (sender, conn) =
                    hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
                        .await
                        .map_err(|e| e.to_string())?;
                tokio::spawn(async move {
                    let _ = conn.await;
                });
                Ok::<_, String>(sender)
            })
            .await;
            match made {
                Ok(Ok(s)) => Ok(s),
                Ok(Err(e)) => Err(CallError::Unreachable(e)),
                Err(_) => Err(CallError::TimedOut),
            }
        })?;
        Ok(Client { sender, rt })
    }

    /// `GET` or `POST` (with a JSON body) `path`; the reply's JSON.
    pub fn call<T: for<'de> Deserialize<'de>>(
        &mut self,
        path: &str,
        body: Option<&impl Serialize>,
        limit: Duration,
    ) -> Result<T, CallError> {
        let bytes = self.call_raw(path, body, limit)?;
        serde_json::from_slice(&bytes)
            .map_err(|e| CallError::Unreachable(format!("jobnetd answered {path} with {e}")))
    }

    /// Like [`Client::call`], the reply's body as it came.
    pub fn call_raw(
        &mut self,
        path: &str,
        body: Option<&impl Serialize>,
        limit: Duration,
    ) -> Result<Vec<u8>, CallError> {
        let (method, payload) = match body {
            Some(b) => (
                hyper::Method::POST,
                serde_json::to_vec(b).expect("requests serialize"),
            ),
            None => (hyper::Method::GET, Vec::new()),
        };
        let request = hyper::Request::builder()
            .method(method)
            .uri(path)
            .header("host", "jobnetd")
            .header("content-type", "application/json")
            .body(Full::new(Bytes::from(payload)))
            .expect("a well-formed request");
        let sender = &mut self.sender;
        let got = self.rt.block_on(async {
            bounded(limit, async {
                sender.ready().await.map_err(|e| e.to_string())?;
                let reply = sender
                    .send_request(request)
                    .await
                    .map_err(|e| e.to_string())?;
                let status = reply.status().as_u16();
                let body = reply
                    .into_body()
                    .collect()
                    .await
                    .map_err(|e| e.to_string())?
                    .to_bytes();
                Ok::<_, String>((status, body))
            })
            .await
        });
        match got {
            Err(_) => Err(CallError::TimedOut),
            Ok(Err(e)) => Err(CallError::Unreachable(e)),
            Ok(Ok((200, body))) => Ok(body.to_vec()),
            Ok(Ok((status, body))) => Err(CallError::Status(
                status,
                serde_json::from_slice(&body).unwrap_or_else(|_| ErrorReply {
                    error: None,
                    message: String::from_utf8_lossy(&body).into_owned(),
                }),
            )),
        }
    }
}

/// Reaches devices through jobnetd when it answers on `socket`, directly (`direct`) when not.
pub struct DaemonConnector {
    pub socket: PathBuf,
    pub login: LoginOptions,
    pub direct: Box<dyn Connector + Send>,
    /// How long a job waits for one of a device's sessions (its `--wait`).
    pub wait: Duration,
    /// Whether jobnetd answered its health call (asked once per process).
    answers: std::sync::OnceLock<bool>,
    /// Read-only sessions through jobnetd's read queue.
    reads: Reads,
}

/// Read-only sessions whose lines go to jobnetd's read queue (`POST /v1/devices/read`).
pub struct Reads {
    socket: PathBuf,
    login: LoginOptions,
    wait: Duration,
}

impl Connector for Reads {
    fn connect(&self, target: &Target, profile: &Profile) -> Result<Box<dyn Session>, DeviceError> {
        let client = Client::connect(&self.socket, Duration::from_secs(2)).map_err(|_| {
            DaemonConnector::lost(target, "<read through jobnetd>", "jobnetd does not answer")
        })?;
        Ok(Box::new(QueuedReads {
            client,
            target: target.clone(),
            profile: profile.text.to_string(),
            login: self.login.clone(),
            wait: self.wait,
        }))
    }
}

/// The device's answer to `line` as jobnetd relayed it, or the device's error as it gave it,
/// or why jobnetd's answer was lost.
fn answer(
    reply: Result<RunReply, CallError>,
    target: &Target,
    line: &str,
    limit: Duration,
) -> Result<String, DeviceError> {
    match reply {
        Ok(r) => Ok(r.answer),
        Err(CallError::Status(_, ErrorReply { error: Some(e), .. })) => Err(e),
        Err(CallError::Status(status, e)) => Err(DaemonConnector::lost(
            target,
            line,
            &format!("status {status}: {}", e.message),
        )),
        Err(CallError::Unreachable(why)) => Err(DaemonConnector::lost(target, line, &why)),
        Err(CallError::TimedOut) => Err(DeviceError::ran_out(&target.name, line, limit.as_secs())),
    }
}

/// A session whose every line is a read answered by jobnetd's read queue.
struct QueuedReads {
    client: Client,
    target: Target,
    profile: String,
    login: LoginOptions,
    wait: Duration,
}

impl Session for QueuedReads {
    fn run(&mut self, line: &str) -> Result<String, DeviceError> {
        let request = ReadRequest {
            target: self.target.clone(),
            profile: self.profile.clone(),
            login: self.login.clone(),
            wait_ms: u64::try_from(self.wait.as_millis()).unwrap_or(u64::MAX),
            line: line.to_string(),
        };
        let limit = self.wait
            + Duration::from_millis(self.login.connect_timeout_ms)
            + Duration::from_millis(self.login.command_timeout_ms);
        let reply = self
            .client
            .call::<RunReply>("/v1/devices/read", Some(&request), limit);
        answer(reply, &self.target, line, limit)
    }

    /// jobnetd's session was set up (pager off) when it logged in.
    fn warm(&self) -> bool {
        true
    }
}

impl DaemonConnector {
    pub fn new(
        socket: PathBuf,
        login: LoginOptions,
        direct: Box<dyn Connector + Send>,
        wait: Duration,
    ) -> Self {
        DaemonConnector {
            reads: Reads {
                socket: socket.clone(),
                login: login.clone(),
                wait,
            },
            socket,
            login,
            direct,
            wait,
            answers: std::sync::OnceLock::new(),
        }
    }

    /// Whether a jobnetd that is not stopping answers on the socket (asked once).
    fn answers(&self) -> bool {
        *self.answers.get_or_init(|| {
            let Ok(mut c) = Client::connect(&self.socket, Duration::from_secs(2)) else {
                return false;
            };
            c.call::<serde_json::Value>("/v1/health", None::<&()>, Duration::from_secs(5))
                .is_ok_and(|h| h["status"] == "ok")
        })
    }

    fn lost(target: &Target, command: &str, reason: &str) -> DeviceError {
        DeviceError::Lost {
            device: target.name.clone(),
            command: command.to_string(),
            reason: format!("jobnetd: {reason}"),
        }
    }
}

impl Connector for DaemonConnector {
    fn connect(&self, target: &Target, profile: &Profile) -> Result<Box<dyn Session>, DeviceError> {
        // A command on this host needs no login to keep warm.
        if target.is_local() || !self.socket.exists() {
            return self.direct.connect(target, profile);
        }
        let limit = self.wait
            + Duration::from_millis(self.login.connect_timeout_ms)
            + Duration::from_millis(self.login.command_timeout_ms);
        let mut client = match Client::connect(&self.socket, Duration::from_secs(2)) {
            Ok(c) => c,
            // No jobnetd (a stale socket, a restart): as without it.
            Err(_) => return self.direct.connect(target, profile),
        };
        let open = OpenRequest {
            target: target.clone(),
            profile: profile.text.to_string(),
            login: self.login.clone(),
            wait_ms: u64::try_from(self.wait.as_millis()).unwrap_or(u64::MAX),
        };
        match client.call::<OpenReply>("/v1/sessions", Some(&open), limit) {
            Ok(reply) => Ok(Box::new(Borrowed {
                client,
                id: reply.session,
                warm: reply.warm,
                target: target.clone(),
                limit: Duration::from_millis(self.login.command_timeout_ms)
                    + Duration::from_secs(1),
            })),
            Err(CallError::Status(_, ErrorReply { error: Some(e), .. })) => Err(e),
            // Stopping (503), gone before answering, or a jobnetd that cannot serve this
            // request: as without it.
            Err(CallError::Status(..)) | Err(CallError::Unreachable(_)) => {
                self.direct.connect(target, profile)
            }
            Err(CallError::TimedOut) => Err(DeviceError::ran_out(
                &target.name,
                "<login through jobnetd>",
                limit.as_secs(),
            )),
        }
    }

    fn preflight(&self, target: &Target) -> Result<(), String> {
        self.direct.preflight(target)
    }

    fn install_file(&self, target: &Target, path: &str, text: &str) -> Result<(), DeviceError> {
        self.direct.install_file(target, path, text)
    }

    fn reads(&self) -> Option<&dyn Connector> {
        Some(&self.reads)
    }

    fn merger(&self, target: &Target, profile: &Profile) -> Option<&dyn Merger> {
        (!target.is_local() && crate::drivers::merge::mergeable(profile) && self.answers())
            .then_some(self as &dyn Merger)
    }
}

impl Merger for DaemonConnector {
    fn settle(
        &self,
        target: &Target,
        profile: &Profile,
        job: &str,
        wait: Duration,
    ) -> Result<bool, String> {
        let mut client = Client::connect(&self.socket, Duration::from_secs(2))
            .map_err(|_| format!("no jobnetd on {}", self.socket.display()))?;
        let request = SettleRequest {
            target: target.clone(),
            profile: profile.text.to_string(),
            login: self.login.clone(),
            job: job.to_string(),
            wait_ms: u64::try_from(wait.as_millis()).unwrap_or(u64::MAX),
        };
        match client.call::<serde_json::Value>(
            "/v1/devices/settle",
            Some(&request),
            wait + Duration::from_secs(5),
        ) {
            Ok(v) => Ok(v["settled"] == true),
            Err(CallError::Status(status, e)) => Err(format!("status {status}: {}", e.message)),
            Err(CallError::Unreachable(why)) => Err(why),
            Err(CallError::TimedOut) => Ok(false),
        }
    }

    fn apply_merged(
        &self,
        target: &Target,
        profile: &Profile,
        sub: Submission,
        wait: Duration,
    ) -> Result<Merged, Unmerged> {
        let lines: usize = sub.ops.len() * 3 + 4;
        let limit = wait
            + Duration::from_millis(self.login.connect_timeout_ms)
            + Duration::from_millis(self.login.command_timeout_ms)
                * u32::try_from(lines).unwrap_or(u32::MAX);
        let mut client = Client::connect(&self.socket, Duration::from_secs(2)).map_err(|_| {
            Unmerged::Unreachable(format!("no jobnetd on {}", self.socket.display()))
        })?;
        let request = ApplyRequest {
            target: target.clone(),
            profile: profile.text.to_string(),
            login: self.login.clone(),
            wait_ms: u64::try_from(wait.as_millis()).unwrap_or(u64::MAX),
            submission: sub,
        };
        match client.call::<Merged>("/v1/devices/apply", Some(&request), limit) {
            Ok(m) => Ok(m),
            // Refused before anything was sent (stopping, 4xx).
            Err(CallError::Status(status, e)) if e.error.is_none() && status != 500 => Err(
                Unmerged::Unreachable(format!("jobnetd answered {status}: {}", e.message)),
            ),
            Err(CallError::Status(_, ErrorReply { error: Some(e), .. })) => Err(Unmerged::Lost(e)),
            Err(CallError::Status(status, e)) => Err(Unmerged::Lost(DaemonConnector::lost(
                target,
                "<operations sent through jobnetd>",
                &format!("status {status}: {}", e.message),
            ))),
            Err(CallError::Unreachable(why)) => Err(Unmerged::Lost(DaemonConnector::lost(
                target,
                "<operations sent through jobnetd>",
                &why,
            ))),
            Err(CallError::TimedOut) => Err(Unmerged::Lost(DeviceError::ran_out(
                &target.name,
                "<operations sent through jobnetd>",
                limit.as_secs(),
            ))),
        }
    }
}

/// A session lent by jobnetd.
struct Borrowed {
    client: Client,
    id: u64,
    warm: bool,
    target: Target,
    limit: Duration,
}

impl Session for Borrowed {
    fn run(&mut self, line: &str) -> Result<String, DeviceError> {
        let path = format!("/v1/sessions/{}/run", self.id);
        let request = RunRequest {
            line: line.to_string(),
        };
        let reply = self
            .client
            .call::<RunReply>(&path, Some(&request), self.limit);
        answer(reply, &self.target, line, self.limit)
    }

    fn warm(&self) -> bool {
        self.warm
    }

    fn release(mut self: Box<Self>, reusable: bool) {
        let path = format!("/v1/sessions/{}/release", self.id);
        let _ = self.client.call_raw(
            &path,
            Some(&ReleaseRequest { reusable }),
            Duration::from_secs(2),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_socket_setting() {
        assert_eq!(socket_setting(None), Some(PathBuf::from(DEFAULT_SOCKET)));
        for off in ["off", "", " none "] {
            assert_eq!(socket_setting(Some(off)), None, "{off:?}");
        }
        assert_eq!(
            socket_setting(Some("/tmp/d.sock")),
            Some(PathBuf::from("/tmp/d.sock"))
        );
    }

    /// Errors cross the socket as they are: the job's message is the device's, word for word.
    #[test]
    fn device_errors_cross_the_socket_unchanged() {
        let e = DeviceError::Rejected {
            device: "leaf3".into(),
            command: "switchport trunk allowed vlan add 1000".into(),
            answer: "% Invalid input detected at '^' marker.".into(),
        };
        let body = serde_json::to_vec(&ErrorReply {
            error: Some(e.clone()),
            message: String::new(),
        })
        .unwrap();
        let back: ErrorReply = serde_json::from_slice(&body).unwrap();
        assert_eq!(back.error, Some(e));
    }
}
