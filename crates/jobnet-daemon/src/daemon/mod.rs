//! jobnetd: the optional long-running process that keeps device sessions warm for the short
//! `jobnet` processes of a burst of jobs (commands and scheduler hooks).
//!
//! It serves the API of [`crate::drivers::transport::daemon`] (HTTP/1.1 and JSON over a Unix
//! socket, with hyper) and lends sessions from one [`SessionPool`] per login configuration
//! (credentials file, known hosts, timeouts, session bound). Jobs stay in their own processes:
//! jobnetd holds no job state, so a crash or restart of jobnetd loses no job — a borrowed
//! session that breaks is a broken session to the job (it unwinds as after any lost
//! connection), and a job that starts while jobnetd is away reaches its devices directly.
//!
//! A session is tied to the connection that borrowed it: when the connection closes without
//! handing it back (the job's process died), the session is closed, never lent again. On
//! SIGTERM jobnetd stops lending (503: callers go direct), waits for lent sessions to come
//! back (at most `drain`), closes every session and removes its socket. SIGHUP closes the idle
//! sessions and goes on: the next jobs log in again (rotated credentials, a re-keyed switch).
//!
//! Jobs may also hand over their decided operations on a device instead of borrowing a session
//! for them ([`merge`]): concurrent jobs' operations on one device then go as one session's
//! stream. At most `sessions_per_device` sessions of a device are in use at once, lent or
//! merging ([`SessionPool::connect_within`]), so jobs that use jobnetd need no session slots of
//! their own for such devices.

mod merge;

use crate::base::runtime;
use crate::drivers::profile::parse_profile;
use crate::drivers::transport::daemon::{
    ApplyRequest, ErrorReply, LoginOptions, OpenReply, OpenRequest, ReadRequest, ReleaseRequest,
    RunReply, RunRequest, SettleRequest,
};
use crate::drivers::transport::pool::SessionPool;
use crate::drivers::transport::{Connector, DeviceError, RealConnector, Session};
use crate::drivers::Profile;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::{Bytes, Incoming};
use hyper::{Request, Response, StatusCode};
use std::collections::HashMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How jobnetd runs (its command line).
#[derive(Clone, Debug)]
pub struct ServeOptions {
    pub socket: PathBuf,
    /// Owner of the socket (mode 0600) when jobnetd runs as root: the service user.
    pub socket_owner: Option<(u32, u32)>,
    /// Probe idle sessions this often (keep-alive against the devices' idle timeouts).
    pub keepalive: Duration,
    /// Probe a session idle this long before lending it (a new login when it does not answer).
    pub probe_after: Duration,
    /// Close sessions idle this long.
    pub idle_max: Duration,
    /// How long a stop waits for lent sessions to come back.
    pub drain: Duration,
}

/// Why jobnetd could not start.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("{path}: {source}")]
    Socket {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("another jobnetd answers on {0}; stop it first (systemctl stop jobnetd)")]
    Running(String),
    #[error(transparent)]
    Runtime(std::io::Error),
}

/// A borrowed session and the connection that borrowed it.
struct LentSession {
    session: Box<dyn Session>,
    connection: u64,
    device: String,
}

#[derive(Default)]
struct Counters {
    requests: AtomicU64,
    lines: AtomicU64,
    opened: AtomicU64,
    orphaned: AtomicU64,
    device_errors: Mutex<HashMap<String, u64>>,
    /// Merged sends: batches, the jobs in them, and workers sending right now.
    batches: AtomicU64,
    merged_jobs: AtomicU64,
    merge_workers: AtomicUsize,
    /// Reads sent to devices for the read queues, and the jobs' reads they answered.
    reads_sent: AtomicU64,
    reads_answered: AtomicU64,
}

/// How jobnetd reaches devices: SSH and local commands as configured by each caller, or one
/// given connector (tests, the test kit's simulated switches).
pub enum Devices {
    Configured,
    Given(Arc<dyn Connector + Send + Sync>),
}

/// A given connector, shared by the pools.
struct Shared(Arc<dyn Connector + Send + Sync>);

impl Connector for Shared {
    fn connect(
        &self,
        target: &crate::drivers::transport::Target,
        profile: &Profile,
    ) -> Result<Box<dyn Session>, DeviceError> {
        self.0.connect(target, profile)
    }
}

struct State {
    opts: ServeOptions,
    devices: Devices,
    pools: Mutex<HashMap<LoginOptions, (FileStamp, Arc<SessionPool>)>>,
    /// Pools replaced by others (a changed credentials file): their counters stay in the
    /// metrics, which only ever grow.
    retired: Mutex<Vec<Arc<SessionPool>>>,
    profiles: Mutex<HashMap<String, Profile>>,
    lent: Mutex<HashMap<u64, Arc<Mutex<Option<LentSession>>>>>,
    /// Per-device queues of handed-over operations, by device, login and profile.
    queues: Mutex<HashMap<String, Arc<merge::DeviceQueue>>>,
    read_queues: Mutex<HashMap<String, Arc<merge::ReadQueue>>>,
    next_id: AtomicU64,
    draining: AtomicBool,
    counters: Counters,
    started: Instant,
}

type Reply = Response<Full<Bytes>>;

fn json(status: StatusCode, body: &impl serde::Serialize) -> Reply {
    Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(
            serde_json::to_vec(body).expect("replies serialize"),
        )))
        .expect("a well-formed reply")
}

fn message(status: StatusCode, text: impl Into<String>) -> Reply {
    json(
        status,
        &ErrorReply {
            error: None,
            message: text.into(),
        },
    )
}

fn device_error(e: DeviceError) -> Reply {
    json(
        StatusCode::BAD_GATEWAY,
        &ErrorReply {
            error: Some(e),
            message: String::new(),
        },
    )
}

/// A file's size and modification time, when it exists.
type FileStamp = Option<(u64, Duration)>;

/// The credentials file's identity: a changed file gets a new pool (new logins use it).
fn file_stamp(path: &Path) -> FileStamp {
    let m = std::fs::metadata(path).ok()?;
    let t = m
        .modified()
        .ok()?
        .duration_since(std::time::UNIX_EPOCH)
        .ok()?;
    Some((m.len(), t))
}

impl State {
    fn pool(&self, login: &LoginOptions) -> Result<Arc<SessionPool>, String> {
        let stamp = file_stamp(&login.credentials);
        let mut pools = self.pools.lock().expect("pools");
        if let Some((s, p)) = pools.get(login) {
            if *s == stamp {
                return Ok(Arc::clone(p));
            }
        }
        let connector: Box<dyn Connector + Send> = match &self.devices {
            Devices::Given(c) => Box::new(Shared(Arc::clone(c))),
            Devices::Configured => Box::new(self.ssh(login)?),
        };
        let pool = Arc::new(SessionPool::new(
            connector,
            login.sessions_per_device,
            self.opts.probe_after,
            self.opts.idle_max,
        ));
        if let Some((_, old)) = pools.insert(login.clone(), (stamp, Arc::clone(&pool))) {
            // A changed credentials file: sessions logged in with the old one close as they
            // come back.
            old.retire();
            self.retired.lock().expect("retired pools").push(old);
        }
        Ok(pool)
    }

    /// SSH (and local commands) with the caller's credentials and known hosts.
    fn ssh(&self, login: &LoginOptions) -> Result<RealConnector, String> {
        RealConnector::new(
            &login.credentials,
            &login.known_hosts,
            login.trust_on_first_use,
            Duration::from_millis(login.connect_timeout_ms),
            Duration::from_millis(login.command_timeout_ms),
        )
        .map_err(|e| e.to_string())
    }

    fn profile(&self, text: &str) -> Result<Profile, String> {
        if let Some(p) = self.profiles.lock().expect("profiles").get(text) {
            return Ok(p.clone());
        }
        let p = parse_profile(text, "<profile sent by jobnet>").map_err(|e| e.to_string())?;
        let mut cache = self.profiles.lock().expect("profiles");
        if cache.len() > 256 {
            cache.clear();
        }
        cache.insert(text.to_string(), p.clone());
        Ok(p)
    }

    fn count_error(&self, device: &str) {
        *self
            .counters
            .device_errors
            .lock()
            .expect("counters")
            .entry(device.to_string())
            .or_default() += 1;
    }

    fn metrics(&self) -> String {
        let mut out = String::new();
        let c = &self.counters;
        let lent = self.lent.lock().expect("lent").len();
        let _ = writeln!(out, "# HELP jobnetd_up_seconds Seconds since jobnetd started.\n# TYPE jobnetd_up_seconds gauge\njobnetd_up_seconds {:.0}", self.started.elapsed().as_secs_f64());
        let _ = writeln!(out, "# HELP jobnetd_requests_total API requests served.\n# TYPE jobnetd_requests_total counter\njobnetd_requests_total {}", c.requests.load(Ordering::Relaxed));
        let _ = writeln!(out, "# HELP jobnetd_lines_total Lines sent to devices for callers.\n# TYPE jobnetd_lines_total counter\njobnetd_lines_total {}", c.lines.load(Ordering::Relaxed));
        let _ = writeln!(out, "# HELP jobnetd_sessions_lent Sessions lent right now.\n# TYPE jobnetd_sessions_lent gauge\njobnetd_sessions_lent {lent}");
        let _ = writeln!(out, "# HELP jobnetd_sessions_lent_total Sessions lent since start.\n# TYPE jobnetd_sessions_lent_total counter\njobnetd_sessions_lent_total {}", c.opened.load(Ordering::Relaxed));
        let _ = writeln!(out, "# HELP jobnetd_merged_batches_total Batches of handed-over operations sent on one session.\n# TYPE jobnetd_merged_batches_total counter\njobnetd_merged_batches_total {}", c.batches.load(Ordering::Relaxed));
        let _ = writeln!(out, "# HELP jobnetd_merged_jobs_total Jobs' device operations sent in those batches (jobs per batch: this over batches).\n# TYPE jobnetd_merged_jobs_total counter\njobnetd_merged_jobs_total {}", c.merged_jobs.load(Ordering::Relaxed));
        let _ = writeln!(out, "# HELP jobnetd_reads_sent_total Reads sent to devices for the read queues.\n# TYPE jobnetd_reads_sent_total counter\njobnetd_reads_sent_total {}", c.reads_sent.load(Ordering::Relaxed));
        let _ = writeln!(out, "# HELP jobnetd_reads_answered_total Jobs' reads those answered (one read answers every job that asked for it at that moment).\n# TYPE jobnetd_reads_answered_total counter\njobnetd_reads_answered_total {}", c.reads_answered.load(Ordering::Relaxed));
        let _ = writeln!(out, "# HELP jobnetd_sessions_orphaned_total Lent sessions closed because the borrowing process went away.\n# TYPE jobnetd_sessions_orphaned_total counter\njobnetd_sessions_orphaned_total {}", c.orphaned.load(Ordering::Relaxed));
        let mut pools = self.all_pools();
        pools.extend(self.retired.lock().expect("retired pools").iter().cloned());
        let (mut logins, mut reused, mut dead, mut closed) = (0, 0, 0, 0);
        let mut by_device: HashMap<String, u64> = HashMap::new();
        let mut idle: HashMap<String, usize> = HashMap::new();
        for p in &pools {
            let s = p.stats();
            logins += s.logins.load(Ordering::Relaxed);
            reused += s.reused.load(Ordering::Relaxed);
            dead += s.dead.load(Ordering::Relaxed);
            closed += s.closed.load(Ordering::Relaxed);
            for (d, n) in p.logins_by_device() {
                *by_device.entry(d).or_default() += n;
            }
            for (d, n) in p.idle_by_device() {
                *idle.entry(d).or_default() += n;
            }
        }
        let _ = writeln!(out, "# HELP jobnetd_logins_total Device logins (sessions opened).\n# TYPE jobnetd_logins_total counter\njobnetd_logins_total {logins}");
        let _ = writeln!(out, "# HELP jobnetd_sessions_reused_total Sessions lent warm (no login).\n# TYPE jobnetd_sessions_reused_total counter\njobnetd_sessions_reused_total {reused}");
        let _ = writeln!(out, "# HELP jobnetd_sessions_dead_total Idle sessions that failed their keep-alive probe.\n# TYPE jobnetd_sessions_dead_total counter\njobnetd_sessions_dead_total {dead}");
        let _ = writeln!(out, "# HELP jobnetd_sessions_closed_total Sessions closed.\n# TYPE jobnetd_sessions_closed_total counter\njobnetd_sessions_closed_total {closed}");
        let mut sorted: Vec<_> = by_device.into_iter().collect();
        sorted.sort();
        let _ = writeln!(out, "# HELP jobnetd_device_logins_total Logins per device.\n# TYPE jobnetd_device_logins_total counter");
        for (d, n) in sorted {
            let _ = writeln!(
                out,
                "jobnetd_device_logins_total{{device=\"{}\"}} {n}",
                label(&d)
            );
        }
        let mut sorted: Vec<_> = idle.into_iter().collect();
        sorted.sort();
        let _ = writeln!(out, "# HELP jobnetd_sessions_idle Warm sessions waiting per device.\n# TYPE jobnetd_sessions_idle gauge");
        for (d, n) in sorted {
            let _ = writeln!(out, "jobnetd_sessions_idle{{device=\"{}\"}} {n}", label(&d));
        }
        let mut errors: Vec<_> = c
            .device_errors
            .lock()
            .expect("counters")
            .iter()
            .map(|(k, v)| (k.clone(), *v))
            .collect();
        errors.sort();
        let _ = writeln!(out, "# HELP jobnetd_device_errors_total Device errors per device.\n# TYPE jobnetd_device_errors_total counter");
        for (d, n) in errors {
            let _ = writeln!(
                out,
                "jobnetd_device_errors_total{{device=\"{}\"}} {n}",
                label(&d)
            );
        }
        out
    }
}

/// A Prometheus label value: backslash, quote and newline escaped.
fn label(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

async fn body<T: for<'de> serde::Deserialize<'de>>(req: Request<Incoming>) -> Result<T, Reply> {
    let bytes = Limited::new(req.into_body(), 4 << 20)
        .collect()
        .await
        .map_err(|e| {
            message(
                StatusCode::BAD_REQUEST,
                format!("cannot read the request: {e}"),
            )
        })?
        .to_bytes();
    serde_json::from_slice(&bytes)
        .map_err(|e| message(StatusCode::BAD_REQUEST, format!("bad request body: {e}")))
}

async fn handle(state: Arc<State>, connection: u64, req: Request<Incoming>) -> Reply {
    state.counters.requests.fetch_add(1, Ordering::Relaxed);
    let path = req.uri().path().to_string();
    let parts: Vec<&str> = path.trim_matches('/').split('/').collect();
    match (req.method().as_str(), parts.as_slice()) {
        ("GET", ["v1", "health"]) => json(
            StatusCode::OK,
            &serde_json::json!({
                "status": if state.draining.load(Ordering::SeqCst) { "stopping" } else { "ok" },
                "version": env!("CARGO_PKG_VERSION"),
                "sessions_lent": state.lent.lock().expect("lent").len(),
            }),
        ),
        ("GET", ["metrics"]) => Response::builder()
            .header("content-type", "text/plain; version=0.0.4")
            .body(Full::new(Bytes::from(state.metrics())))
            .expect("a well-formed reply"),
        ("POST", ["v1", "sessions"]) => {
            if state.draining.load(Ordering::SeqCst) {
                return message(StatusCode::SERVICE_UNAVAILABLE, "jobnetd is stopping");
            }
            let open: OpenRequest = match body(req).await {
                Ok(o) => o,
                Err(r) => return r,
            };
            let s = Arc::clone(&state);
            tokio::task::spawn_blocking(move || open_session(&s, connection, open))
                .await
                .unwrap_or_else(|e| message(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))
        }
        ("POST", ["v1", "devices", "apply"]) => {
            if state.draining.load(Ordering::SeqCst) {
                return message(StatusCode::SERVICE_UNAVAILABLE, "jobnetd is stopping");
            }
            let apply: ApplyRequest = match body(req).await {
                Ok(a) => a,
                Err(r) => return r,
            };
            apply_merged(state, apply).await
        }
        ("POST", ["v1", "devices", "read"]) => {
            if state.draining.load(Ordering::SeqCst) {
                return message(StatusCode::SERVICE_UNAVAILABLE, "jobnetd is stopping");
            }
            let read: ReadRequest = match body(req).await {
                Ok(a) => a,
                Err(r) => return r,
            };
            queued_read(state, read).await
        }
        // Served while stopping too: batches in flight still finish.
        ("POST", ["v1", "devices", "settle"]) => {
            let settle: SettleRequest = match body(req).await {
                Ok(a) => a,
                Err(r) => return r,
            };
            let key = queue_key(&settle.target, &settle.login, &settle.profile);
            let queue = state.queues.lock().expect("queues").get(&key).cloned();
            let Some(queue) = queue else {
                return json(StatusCode::OK, &serde_json::json!({"settled": true}));
            };
            let wait = Duration::from_millis(settle.wait_ms);
            let settled = tokio::task::spawn_blocking(move || queue.settle(&settle.job, wait))
                .await
                .unwrap_or(false);
            json(StatusCode::OK, &serde_json::json!({ "settled": settled }))
        }
        ("POST", ["v1", "sessions", id, verb]) => {
            let Ok(id) = id.parse::<u64>() else {
                return message(StatusCode::NOT_FOUND, format!("no session {id}"));
            };
            let slot = state.lent.lock().expect("lent").get(&id).cloned();
            let Some(slot) = slot else {
                return message(StatusCode::NOT_FOUND, format!("no session {id}"));
            };
            match *verb {
                "run" => {
                    let run: RunRequest = match body(req).await {
                        Ok(r) => r,
                        Err(r) => return r,
                    };
                    let s = Arc::clone(&state);
                    tokio::task::spawn_blocking(move || {
                        let mut guard = slot.lock().expect("session");
                        let Some(lent) = guard.as_mut().filter(|l| l.connection == connection)
                        else {
                            return message(StatusCode::NOT_FOUND, format!("no session {id}"));
                        };
                        s.counters.lines.fetch_add(1, Ordering::Relaxed);
                        match lent.session.run(&run.line) {
                            Ok(answer) => json(StatusCode::OK, &RunReply { answer }),
                            Err(e) => {
                                s.count_error(&lent.device);
                                device_error(e)
                            }
                        }
                    })
                    .await
                    .unwrap_or_else(|e| message(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))
                }
                "release" => {
                    let rel: ReleaseRequest = match body(req).await {
                        Ok(r) => r,
                        Err(r) => return r,
                    };
                    let s = Arc::clone(&state);
                    tokio::task::spawn_blocking(move || {
                        let taken = {
                            let mut guard = slot.lock().expect("session");
                            match guard.as_ref() {
                                Some(l) if l.connection == connection => guard.take(),
                                _ => None,
                            }
                        };
                        s.lent.lock().expect("lent").remove(&id);
                        if let Some(l) = taken {
                            l.session.release(rel.reusable);
                        }
                        json(StatusCode::OK, &serde_json::json!({}))
                    })
                    .await
                    .unwrap_or_else(|e| message(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))
                }
                _ => message(StatusCode::NOT_FOUND, format!("no such call {path}")),
            }
        }
        _ => message(StatusCode::NOT_FOUND, format!("no such call {path}")),
    }
}

/// The queue of a device as reached with a login and spoken in a profile.
fn queue_key(
    target: &crate::drivers::transport::Target,
    login: &LoginOptions,
    profile: &str,
) -> String {
    format!("{target:?}|{login:?}|{profile}")
}

/// Queues a read of a device and answers with the device's answer (shared with every job that
/// asked for the same read at that moment).
async fn queued_read(state: Arc<State>, read: ReadRequest) -> Reply {
    let pool = match state.pool(&read.login) {
        Ok(p) => p,
        Err(e) => return message(StatusCode::BAD_REQUEST, e),
    };
    let profile = match state.profile(&read.profile) {
        Ok(p) => p,
        Err(e) => return message(StatusCode::BAD_REQUEST, e),
    };
    if !profile.is_read(&read.line) {
        return message(
            StatusCode::BAD_REQUEST,
            format!(
                "`{}` is not one of profile {}'s reads",
                read.line, profile.name
            ),
        );
    }
    let key = queue_key(&read.target, &read.login, &read.profile);
    let queue = Arc::clone(
        state
            .read_queues
            .lock()
            .expect("queues")
            .entry(key)
            .or_default(),
    );
    let (tx, rx) = tokio::sync::oneshot::channel();
    let start = queue.push(
        merge::ReadWaiting {
            line: read.line,
            reply: tx,
        },
        read.login.sessions_per_device,
    );
    if start {
        let device = merge::Device {
            pool,
            target: read.target,
            profile,
            wait: Duration::from_millis(read.wait_ms),
        };
        let s = Arc::clone(&state);
        tokio::task::spawn_blocking(move || merge::read_work(&s, &queue, &device));
    }
    match rx.await {
        Ok(Ok(answer)) => json(StatusCode::OK, &RunReply { answer }),
        Ok(Err(e)) => device_error(e),
        Err(_) => message(StatusCode::INTERNAL_SERVER_ERROR, "jobnetd lost the read"),
    }
}

/// Queues a job's operations on a device and answers with what happened to each.
async fn apply_merged(state: Arc<State>, apply: ApplyRequest) -> Reply {
    let pool = match state.pool(&apply.login) {
        Ok(p) => p,
        Err(e) => return message(StatusCode::BAD_REQUEST, e),
    };
    let profile = match state.profile(&apply.profile) {
        Ok(p) => p,
        Err(e) => return message(StatusCode::BAD_REQUEST, e),
    };
    if !crate::drivers::merge::mergeable(&profile) {
        return message(
            StatusCode::BAD_REQUEST,
            format!("profile {} is not sent merged", profile.name),
        );
    }
    if let Err(why) = crate::drivers::merge::check(&profile, &apply.submission) {
        return message(StatusCode::BAD_REQUEST, why);
    }
    let key = queue_key(&apply.target, &apply.login, &apply.profile);
    let queue = Arc::clone(state.queues.lock().expect("queues").entry(key).or_default());
    let (tx, rx) = tokio::sync::oneshot::channel();
    let bound = apply.login.sessions_per_device;
    let start = queue.push(
        merge::Waiting {
            sub: apply.submission,
            reply: tx,
        },
        bound,
    );
    if start {
        let device = merge::Device {
            pool,
            target: apply.target,
            profile,
            wait: Duration::from_millis(apply.wait_ms),
        };
        let s = Arc::clone(&state);
        tokio::task::spawn_blocking(move || merge::work(&s, &queue, &device));
    }
    match rx.await {
        Ok(m) => json(StatusCode::OK, &m),
        Err(_) => message(
            StatusCode::INTERNAL_SERVER_ERROR,
            "jobnetd lost the batch these operations were in",
        ),
    }
}

fn open_session(state: &State, connection: u64, open: OpenRequest) -> Reply {
    let pool = match state.pool(&open.login) {
        Ok(p) => p,
        Err(e) => return message(StatusCode::BAD_REQUEST, e),
    };
    let profile = match state.profile(&open.profile) {
        Ok(p) => p,
        Err(e) => return message(StatusCode::BAD_REQUEST, e),
    };
    match pool.connect_within(&open.target, &profile, Duration::from_millis(open.wait_ms)) {
        Ok(session) => {
            let id = state.next_id.fetch_add(1, Ordering::Relaxed);
            let warm = session.warm();
            state.counters.opened.fetch_add(1, Ordering::Relaxed);
            state.lent.lock().expect("lent").insert(
                id,
                Arc::new(Mutex::new(Some(LentSession {
                    session,
                    connection,
                    device: open.target.name.clone(),
                }))),
            );
            json(StatusCode::OK, &OpenReply { session: id, warm })
        }
        Err(e) => {
            state.count_error(&open.target.name);
            device_error(e)
        }
    }
}

/// Closes (never lends again) the sessions a connection still held when it closed.
fn orphan(state: &State, connection: u64) {
    let slots: Vec<(u64, Arc<Mutex<Option<LentSession>>>)> = state
        .lent
        .lock()
        .expect("lent")
        .iter()
        .map(|(k, v)| (*k, Arc::clone(v)))
        .collect();
    for (id, slot) in slots {
        let mine = slot
            .lock()
            .expect("session")
            .as_ref()
            .is_some_and(|l| l.connection == connection);
        if mine {
            state.lent.lock().expect("lent").remove(&id);
            if let Some(l) = slot.lock().expect("session").take() {
                state.counters.orphaned.fetch_add(1, Ordering::Relaxed);
                l.session.release(false);
            }
        }
    }
}

/// Binds the socket: refuses when another jobnetd answers there, replaces a stale one.
fn bind(opts: &ServeOptions) -> Result<tokio::net::UnixListener, ServeError> {
    let path = &opts.socket;
    let err = |source| ServeError::Socket {
        path: path.display().to_string(),
        source,
    };
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        if !dir.exists() {
            std::fs::create_dir_all(dir).map_err(err)?;
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755)).map_err(err)?;
        }
        // The socket's directory is jobnetd's own or root's, and no link to somewhere else:
        // whoever owns it could put their own socket in jobnetd's place.
        use std::os::unix::fs::MetadataExt;
        let m = std::fs::symlink_metadata(dir).map_err(err)?;
        let euid = unsafe { libc::geteuid() };
        if !m.is_dir() || (m.uid() != 0 && m.uid() != euid) {
            return Err(err(std::io::Error::other(format!(
                "its directory {} is {}; use a directory of root's or jobnetd's own (the unit's RuntimeDirectory=jobnet makes /run/jobnet)",
                dir.display(),
                if m.is_dir() {
                    format!("owned by uid {}", m.uid())
                } else {
                    "a link or not a directory".to_string()
                }
            ))));
        }
    }
    if std::os::unix::net::UnixStream::connect(path).is_ok() {
        return Err(ServeError::Running(path.display().to_string()));
    }
    match std::fs::symlink_metadata(path) {
        Ok(m)
            if m.file_type().is_symlink()
                || !std::os::unix::fs::FileTypeExt::is_socket(&m.file_type()) =>
        {
            return Err(err(std::io::Error::other(
                "exists and is not a socket; remove it or choose another socket path",
            )))
        }
        Ok(_) => std::fs::remove_file(path).map_err(err)?,
        Err(_) => {}
    }
    // Created private: nobody can connect before the mode and owner are set.
    let old = unsafe { libc::umask(0o177) };
    let listener = std::os::unix::net::UnixListener::bind(path);
    unsafe { libc::umask(old) };
    let listener = listener.map_err(err)?;
    if let Some((uid, gid)) = opts.socket_owner {
        // Never through a symlink someone put in the socket's place meanwhile.
        std::os::unix::fs::lchown(path, Some(uid), Some(gid)).map_err(err)?;
    }
    listener.set_nonblocking(true).map_err(err)?;
    tokio::net::UnixListener::from_std(listener).map_err(err)
}

/// A running jobnetd: its socket is bound and served on the process's runtime.
pub struct Daemon {
    state: Arc<State>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Daemon {
    /// Binds the socket and serves it (see the module documentation).
    pub fn start(opts: ServeOptions, devices: Devices) -> Result<Daemon, ServeError> {
        let rt = runtime::handle().map_err(ServeError::Runtime)?;
        let state = Arc::new(State {
            opts: opts.clone(),
            devices,
            pools: Mutex::new(HashMap::new()),
            retired: Mutex::new(Vec::new()),
            profiles: Mutex::new(HashMap::new()),
            lent: Mutex::new(HashMap::new()),
            queues: Mutex::new(HashMap::new()),
            read_queues: Mutex::new(HashMap::new()),
            next_id: AtomicU64::new(1),
            draining: AtomicBool::new(false),
            counters: Counters::default(),
            started: Instant::now(),
        });
        let listener = rt.block_on(async { bind(&opts) })?;
        let serving = Arc::clone(&state);
        let accept = rt.spawn(async move {
            let mut next_connection = 0u64;
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                };
                next_connection += 1;
                let connection = next_connection;
                let s = Arc::clone(&serving);
                tokio::spawn(async move {
                    let svc = {
                        let s = Arc::clone(&s);
                        hyper::service::service_fn(move |req| {
                            let s = Arc::clone(&s);
                            async move {
                                Ok::<_, std::convert::Infallible>(handle(s, connection, req).await)
                            }
                        })
                    };
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(hyper_util::rt::TokioIo::new(stream), svc)
                        .await;
                    let _ = tokio::task::spawn_blocking(move || orphan(&s, connection)).await;
                });
            }
        });
        let keeper = Arc::clone(&state);
        let keepalive = opts.keepalive.max(Duration::from_millis(100));
        let maintain = rt.spawn(async move {
            loop {
                tokio::time::sleep(keepalive).await;
                let k = Arc::clone(&keeper);
                let _ = tokio::task::spawn_blocking(move || {
                    for p in k.all_pools() {
                        p.maintain();
                    }
                })
                .await;
            }
        });
        Ok(Daemon {
            state,
            tasks: vec![accept, maintain],
        })
    }

    /// Closes every idle session (the next jobs log in again); how many.
    pub fn close_idle(&self) -> usize {
        let mut n = 0;
        for p in self.state.all_pools() {
            n += p.idle_by_device().iter().map(|(_, k)| k).sum::<usize>();
            p.close_all();
        }
        n
    }

    /// Sessions lent right now.
    pub fn lent(&self) -> usize {
        self.state.lent.lock().expect("lent").len()
    }

    /// The metrics text, as `GET /metrics` gives it.
    pub fn metrics(&self) -> String {
        self.state.metrics()
    }

    /// Stops: lends no more (callers go direct), waits up to `drain` for lent sessions to come
    /// back, closes every session and removes the socket.
    pub fn stop(self) {
        let state = &self.state;
        state.draining.store(true, Ordering::SeqCst);
        let until = Instant::now() + state.opts.drain;
        let busy = || self.lent() > 0 || state.counters.merge_workers.load(Ordering::SeqCst) > 0;
        while busy() && Instant::now() < until {
            std::thread::sleep(Duration::from_millis(20));
        }
        for t in &self.tasks {
            t.abort();
        }
        for p in state.all_pools() {
            p.retire();
        }
        let _ = std::fs::remove_file(&state.opts.socket);
    }
}

impl State {
    fn all_pools(&self) -> Vec<Arc<SessionPool>> {
        self.pools
            .lock()
            .expect("pools")
            .values()
            .map(|(_, p)| Arc::clone(p))
            .collect()
    }
}

/// Runs jobnetd until SIGTERM, SIGINT or SIGHUP (see the module documentation).
pub fn serve(opts: ServeOptions) -> Result<(), ServeError> {
    crate::base::interrupt::install().map_err(ServeError::Runtime)?;
    // A stop lets lent sessions finish their lines: jobs in flight end as they would have.
    crate::base::deadline::finish_work_after_signals();
    let daemon = Daemon::start(opts.clone(), Devices::Configured)?;
    eprintln!("jobnetd: listening on {}", opts.socket.display());
    loop {
        match crate::base::interrupt::SIGNALS.raised() {
            None => std::thread::sleep(Duration::from_millis(100)),
            // SIGHUP: new logins from now on (rotated credentials, a re-keyed switch); lent
            // sessions finish as they are.
            Some(libc::SIGHUP) => {
                crate::base::interrupt::SIGNALS.clear();
                let n = daemon.close_idle();
                eprintln!("jobnetd: SIGHUP: closed {n} idle session(s); new logins from now on");
            }
            Some(_) => break,
        }
    }
    eprintln!(
        "jobnetd: stopping: waiting up to {} s for {} lent session(s)",
        opts.drain.as_secs(),
        daemon.lent()
    );
    daemon.stop();
    eprintln!("jobnetd: stopped");
    Ok(())
}
