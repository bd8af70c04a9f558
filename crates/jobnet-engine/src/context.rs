//! The library's front door: a [`Context`] built once from [`Options`] (drivers, state file,
//! credentials, known hosts, timeouts), with `plan`, `up`, `down`, `status`, `recover` and
//! `prune` as methods returning typed reports or one typed [`Error`] with its exit code.
//!
//! The command line is a thin caller of it, and so are the scheduler hooks and any daemon: they
//! never wire SSH, credentials, the state store or the executor themselves. `plan` (and
//! `up --dry-run`) runs the same request handling, allocation view and planner as `up`
//! ([`apply::dry_run`]). Devices are reached through the real connector (SSH, local commands)
//! unless a caller hands in another one ([`Context::with_connector`], e.g. the test kit's
//! simulated switches).

use crate::apply::{
    self, ApplyError, DownReport, Env, Faults, Interrupt, Progress, Silent, UpInputs, UpReport,
};
use crate::base::diag::{Diagnostic, Severity};
use crate::base::hint::{Hint, Hinted};
use crate::base::limits::FileError;
use crate::base::types::JobId;
use crate::drivers::transport::credentials::CredentialsError;
use crate::drivers::transport::daemon::{DaemonConnector, LoginOptions};
use crate::drivers::transport::{Connector, RealConnector, SetupError};
use crate::drivers::{DriverError, DriverSet};
use crate::plan::{JobRequest, Plan};
use crate::state::{Abandoned, JobRow, JournalRow, SqliteStore, StateError, StateStore};
use crate::topology::{self, LoadError, SwitchGraph, Topology};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Where jobnetd listens unless told otherwise (`--daemon`, `$JOBNET_DAEMON`).
pub const DAEMON_SOCKET: &str = crate::drivers::transport::daemon::DEFAULT_SOCKET;

/// The jobnetd socket a `--daemon` / `$JOBNET_DAEMON` value names (`off`: none).
pub fn daemon_socket(value: Option<&str>) -> Option<PathBuf> {
    crate::drivers::transport::daemon::socket_setting(value)
}

/// How a [`Context`] reaches devices and keeps state; the command line's global options.
#[derive(Clone, Debug)]
pub struct Options {
    /// Site driver profiles added to the shipped ones.
    pub drivers_dir: Option<PathBuf>,
    /// The state file shared by every jobnet process on the host.
    pub state: PathBuf,
    /// Device logins (YAML, mode 0600).
    pub credentials: PathBuf,
    /// Known SSH host keys of the devices.
    pub known_hosts: PathBuf,
    /// Record unknown host keys instead of refusing (first contact only).
    pub trust_on_first_use: bool,
    pub connect_timeout: Duration,
    pub command_timeout: Duration,
    /// Sessions all jobnet processes together may open to one device.
    pub sessions_per_device: usize,
    /// How long to wait for a busy device or another process working on the same job.
    pub wait: Duration,
    /// Send each profile's save lines after changing a device.
    pub save_config: bool,
    /// The service user's (uid, gid): files root creates in the state directory go to it.
    pub service_user: Option<(u32, u32)>,
    /// The caller named the state path itself (the CLI's `--state`, a hook's site
    /// configuration): a missing file there is an error for `down`/`recover`, not "no jobs".
    pub state_explicit: bool,
    /// jobnetd's socket: devices are reached through the sessions it keeps warm when it
    /// answers there, directly when not (`None`: always directly).
    pub daemon: Option<PathBuf>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            drivers_dir: None,
            state: PathBuf::from("/var/lib/jobnet/state.db"),
            credentials: PathBuf::from("/etc/jobnet/credentials.yaml"),
            known_hosts: PathBuf::from("/etc/jobnet/known_hosts"),
            trust_on_first_use: false,
            connect_timeout: Duration::from_secs(10),
            command_timeout: Duration::from_secs(30),
            sessions_per_device: 4,
            wait: Duration::from_secs(60),
            save_config: false,
            service_user: None,
            state_explicit: false,
            daemon: daemon_socket(std::env::var("JOBNET_DAEMON").ok().as_deref()),
        }
    }
}

/// Everything that can go wrong behind the facade, each with its exit code (docs/cli.md).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A value given by the caller is not usable; the message names it and what to give.
    #[error("{0}")]
    Input(String),
    #[error(transparent)]
    Drivers(#[from] DriverError),
    #[error(transparent)]
    File(#[from] FileError),
    /// The topology file cannot be read.
    #[error(transparent)]
    TopologyFile(LoadError),
    /// The topology file has errors; every diagnostic (warnings too) is kept.
    #[error("{path} is invalid: {} error(s)", errors(.diagnostics))]
    Topology {
        path: String,
        diagnostics: Vec<Diagnostic>,
    },
    #[error(transparent)]
    Credentials(#[from] CredentialsError),
    #[error("cannot start the SSH runtime: {0}")]
    Runtime(std::io::Error),
    #[error(transparent)]
    State(#[from] StateError),
    #[error(transparent)]
    Apply(#[from] ApplyError),
    /// The state file is missing where it must exist ([`Context::missing_state_error`]):
    /// `trace` is what shows that jobnet ran with it; `None` when its path was named explicitly.
    #[error("{}", missing_state(path, trace.as_deref()))]
    StateMissing {
        path: PathBuf,
        trace: Option<PathBuf>,
    },
    /// `status` of one job that the state file does not have (or no state file at all).
    #[error("no such job {job}{}", if *.exists { format!(" in {}", .state.display()) } else { format!(": state file {} does not exist; check the state file's path", .state.display()) })]
    NoSuchJob {
        job: JobId,
        state: PathBuf,
        /// Whether the state file exists.
        exists: bool,
    },
}

fn missing_state(path: &Path, trace: Option<&Path>) -> String {
    let path = path.display();
    match trace {
        None => format!("state file {path} does not exist; it was named explicitly: check the path (a missing state file that was not named explicitly is only a warning, unless it was deleted)"),
        Some(t) => format!(
            "state file {path} is missing, but {} shows that jobnet ran with it: it was deleted, so jobs it recorded may still be configured on the devices; restore it from a backup, or clean the devices by hand (`jobnet status --abandoned` of a restored copy, docs/operations.md), then remove {} to start afresh",
            t.display(),
            t.display()
        ),
    }
}

fn errors(d: &[Diagnostic]) -> usize {
    d.iter().filter(|x| x.severity == Severity::Error).count()
}

impl Error {
    /// 0 ok, 1 environment/I/O, 2 invalid input, 3 pool exhausted, 4 failed and rolled back,
    /// 5 needs attention.
    pub fn exit_code(&self) -> u8 {
        match self {
            Error::Input(_) | Error::Topology { .. } => 2,
            Error::Drivers(DriverError::Io { .. }) => 1,
            Error::Drivers(_) => 2,
            Error::File(f) | Error::TopologyFile(LoadError::File(f)) => f.exit_code(),
            Error::TopologyFile(LoadError::Invalid(_)) => 2,
            Error::Credentials(CredentialsError::Io { .. }) => 1,
            Error::Credentials(_) => 2,
            Error::Runtime(_) | Error::State(_) | Error::StateMissing { .. } => 1,
            Error::NoSuchJob { .. } => 2,
            Error::Apply(e) => e.exit_code(),
        }
    }

    /// The file diagnostics behind the error (a topology or driver profile that is invalid).
    pub fn diagnostics(&self) -> &[Diagnostic] {
        match self {
            Error::Topology { diagnostics, .. } => diagnostics,
            Error::Drivers(DriverError::Invalid(d)) => d,
            _ => &[],
        }
    }
}

impl Hinted for Error {
    fn hints(&self) -> Vec<Hint> {
        match self {
            Error::Credentials(e) => e.hints(),
            Error::State(e) => e.hints(),
            Error::Apply(e) => e.hints(),
            Error::StateMissing { trace: None, .. } => vec![Hint::StatePath],
            Error::NoSuchJob { exists: false, .. } => vec![Hint::StatePath],
            Error::Drivers(DriverError::Io { .. }) => vec![Hint::DriversDir],
            Error::StateMissing { .. }
            | Error::NoSuchJob { .. }
            | Error::Input(_)
            | Error::Drivers(_)
            | Error::File(_)
            | Error::TopologyFile(_)
            | Error::Topology { .. }
            | Error::Runtime(_) => vec![],
        }
    }
}

/// A topology file, loaded and checked, with its switch graph: what `plan` and `up` start from.
pub struct Fabric {
    pub path: PathBuf,
    pub topology: Topology,
    pub graph: SwitchGraph,
    /// Findings that do not stop the file from being used.
    pub warnings: Vec<Diagnostic>,
}

impl Fabric {
    fn inputs<'a>(&'a self, partitions_conf: Option<&'a Path>, path: &'a str) -> UpInputs<'a> {
        UpInputs {
            topology: &self.topology,
            graph: &self.graph,
            topology_path: path,
            partitions_conf,
        }
    }
}

/// One job of `status`, with the devices its journal names.
#[derive(Clone, Debug)]
pub struct JobStatus {
    pub row: JobRow,
    pub devices: Vec<String>,
    pub journal: Vec<JournalRow>,
    /// The VMs' address list (JSON), when the site numbers them.
    pub addresses: Option<String>,
}

impl JobStatus {
    fn new(row: JobRow, journal: Vec<JournalRow>) -> Self {
        let devices: std::collections::BTreeSet<String> =
            journal.iter().map(|j| j.device.name.clone()).collect();
        JobStatus {
            row,
            devices: devices.into_iter().collect(),
            journal,
            addresses: None,
        }
    }
}

/// What `status` found.
#[derive(Debug, Default)]
pub struct StatusReport {
    /// Whether the state file exists (no job has ever run with it when not).
    pub exists: bool,
    pub jobs: Vec<JobStatus>,
    /// Rows that could not be read (a job, or a job's journal), each naming the row.
    pub damaged: Vec<StateError>,
}

/// How a command uses the state file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Access {
    /// Read an existing file only (`status`, `plan`).
    Read,
    /// Change an existing file, never create one (`down`, `recover`, `prune`).
    Write,
    /// Create the file if needed (`up`).
    Create,
}

/// Which jobs `status` shows.
#[derive(Clone, Debug, Default)]
pub struct StatusQuery {
    /// Only this job (with its journal).
    pub job: Option<JobId>,
    /// Jobs that are down too (history), not only live ones.
    pub all: bool,
}

/// The library facade; see the module documentation.
pub struct Context {
    options: Options,
    /// Read on first use: `status` and `prune` work even with a broken site profile.
    drivers: std::sync::OnceLock<DriverSet>,
    faults: Box<dyn Faults>,
    interrupt: &'static Interrupt,
    connector: Option<Box<dyn Connector>>,
}

impl Context {
    /// Touches neither the state nor any device (driver profiles are read on first use).
    pub fn new(options: Options) -> Result<Self, Error> {
        Ok(Context {
            options,
            drivers: std::sync::OnceLock::new(),
            faults: Box::new(apply::NoFaults),
            interrupt: &apply::interrupt::SIGNALS,
            connector: None,
        })
    }

    /// Fault injection for tests (the test kit's failpoints).
    pub fn with_faults(mut self, faults: Box<dyn Faults>) -> Self {
        self.faults = faults;
        self
    }

    /// Reach devices through `connector` instead of SSH and local commands.
    pub fn with_connector(mut self, connector: Box<dyn Connector>) -> Self {
        self.connector = Some(connector);
        self
    }

    pub fn options(&self) -> &Options {
        &self.options
    }

    /// The shipped driver profiles plus the site's (`drivers_dir`).
    pub fn drivers(&self) -> Result<&DriverSet, Error> {
        if let Some(d) = self.drivers.get() {
            return Ok(d);
        }
        let set = match &self.options.drivers_dir {
            None => DriverSet::builtin(),
            Some(d) => DriverSet::with_dir(d)?,
        };
        Ok(self.drivers.get_or_init(|| set))
    }

    /// Loads and checks a topology file.
    pub fn fabric(&self, path: &Path) -> Result<Fabric, Error> {
        let loaded = topology::load(path, self.drivers()?).map_err(|e| match e {
            e @ LoadError::File(_) => Error::TopologyFile(e),
            LoadError::Invalid(diagnostics) => Error::Topology {
                path: path.display().to_string(),
                diagnostics,
            },
        })?;
        Ok(Fabric {
            path: path.to_path_buf(),
            topology: loaded.topology,
            graph: loaded.graph,
            warnings: loaded.warnings,
        })
    }

    /// The plan `up` would carry out now, against the state's allocations (the state file is
    /// read when it exists, never created) and the current partitions.conf. Touches no device.
    pub fn plan(
        &self,
        fabric: &Fabric,
        req: &JobRequest,
        partitions_conf: Option<&Path>,
    ) -> Result<Plan, Error> {
        let store = self.store(Access::Read)?;
        let path = fabric.path.display().to_string();
        Ok(apply::dry_run(
            store.as_deref(),
            self.drivers()?,
            &fabric.inputs(partitions_conf, &path),
            req,
        )?)
    }

    /// Brings a job's network up on every device, all or nothing.
    pub fn up(
        &self,
        fabric: &Fabric,
        req: &JobRequest,
        partitions_conf: Option<&Path>,
        progress: &dyn Progress,
    ) -> Result<UpReport, Error> {
        let path = fabric.path.display().to_string();
        let inputs = fabric.inputs(partitions_conf, &path);
        let store = self.store(Access::Create)?.expect("created");
        self.with_env(store.as_ref(), None, progress, |env| {
            apply::up(env, &inputs, req)
        })
    }

    /// Finishes, from their journals, the half-done records of other jobs on `nodes` whose
    /// process is gone (what `up` does first): one line per record, said for a log.
    pub fn unwind_orphans(&self, job: &JobId, nodes: &[String]) -> Result<Vec<String>, Error> {
        let Some(store) = self.store(Access::Write)? else {
            return Ok(Vec::new());
        };
        self.with_env(store.as_ref(), None, &Silent, |env| {
            apply::unwind_orphans(env, job, nodes)
        })
    }

    /// Takes a job's network down. `fabric`: reach its devices where this topology says (a
    /// re-addressed or replaced switch of the same name). `force`: release the job even if some
    /// undo fails, recording what is left as abandoned. Without a state file the job is not
    /// known (and no file is created: see [`Context::state_exists`]).
    pub fn down(
        &self,
        job: &JobId,
        fabric: Option<&Fabric>,
        force: bool,
        progress: &dyn Progress,
    ) -> Result<DownReport, Error> {
        let Some(store) = self.store(Access::Write)? else {
            return Ok(DownReport {
                job: job.to_string(),
                result: apply::DownResult::NotFound,
                undone: 0,
                devices: vec![],
                abandoned: vec![],
            });
        };
        self.with_env(store.as_ref(), fabric, progress, |env| {
            apply::down(env, job, force)
        })
    }

    /// Finishes or undoes every job whose jobnet process died mid-change: one result per job
    /// (a job row that cannot be read is one failed result; the others are still recovered).
    pub fn recover(
        &self,
        progress: &dyn Progress,
    ) -> Result<Vec<Result<DownReport, ApplyError>>, Error> {
        let Some(store) = self.store(Access::Write)? else {
            return Ok(Vec::new());
        };
        self.with_env(store.as_ref(), None, progress, apply::recover)
    }

    /// Whether the state file exists: `down`, `recover`, `status` and `plan` never create it,
    /// so a caller can say that a mistyped state path found no jobs.
    pub fn state_exists(&self) -> bool {
        std::fs::symlink_metadata(&self.options.state).is_ok()
    }

    /// Why a missing state file is an error rather than "no job has run with it": the path was
    /// named explicitly (a typo must not pass an epilog over a leak), or its directory shows
    /// that jobnet ran there (the `locks/` directory, SQLite's `-wal`/`-shm`): the file was
    /// deleted. `None` when the file exists, or when nothing says it ever did.
    pub fn missing_state_error(&self) -> Option<Error> {
        if self.state_exists() {
            return None;
        }
        let path = &self.options.state;
        if self.options.state_explicit {
            return Some(Error::StateMissing {
                path: path.clone(),
                trace: None,
            });
        }
        let dir = path
            .parent()
            .filter(|d| !d.as_os_str().is_empty())
            .unwrap_or(std::path::Path::new("."));
        let mut traces = vec![dir.join("locks")];
        for suffix in ["-wal", "-shm"] {
            let mut p = path.as_os_str().to_os_string();
            p.push(suffix);
            traces.push(p.into());
        }
        let trace = traces
            .into_iter()
            .find(|t| std::fs::symlink_metadata(t).is_ok())?;
        Some(Error::StateMissing {
            path: path.clone(),
            trace: Some(trace),
        })
    }

    /// Jobs and their devices; reads the state file only (creates, migrates, writes nothing).
    /// Listing all jobs survives damaged rows: each becomes one entry of `damaged`.
    pub fn status(&self, query: &StatusQuery) -> Result<StatusReport, Error> {
        let Some(store) = self.store(Access::Read)? else {
            return match &query.job {
                Some(j) => Err(Error::NoSuchJob {
                    job: j.clone(),
                    state: self.options.state.clone(),
                    exists: false,
                }),
                None => Ok(StatusReport::default()),
            };
        };
        let mut report = StatusReport {
            exists: true,
            ..StatusReport::default()
        };
        // An owner is the process changing the job: none once the job is up or down, or once
        // that process is gone (its pid may be another program's by now).
        let working = |mut row: JobRow| {
            if !(row.state.in_progress() && row.owner.is_some_and(|o| store.alive(&o))) {
                row.owner = None;
            }
            row
        };
        if let Some(j) = &query.job {
            // One job: its journal must read, or the command fails naming the row.
            let Some(row) = store.job(j)? else {
                return Err(Error::NoSuchJob {
                    job: j.clone(),
                    state: self.options.state.clone(),
                    exists: true,
                });
            };
            let journal = store.journal(j)?;
            let mut status = JobStatus::new(working(row), journal);
            status.addresses = store.addresses(j)?;
            report.jobs.push(status);
            return Ok(report);
        }
        for row in store.jobs_each()? {
            let row = match row {
                Ok(r) if query.all || r.state != crate::state::JobState::Down => working(r),
                Ok(_) => continue,
                Err(e) => {
                    report.damaged.push(e);
                    continue;
                }
            };
            let addresses = store.addresses(&row.job).unwrap_or(None);
            match store.journal(&row.job) {
                Ok(journal) => {
                    let mut status = JobStatus::new(row, journal);
                    status.addresses = addresses;
                    report.jobs.push(status);
                }
                Err(e) => {
                    report.damaged.push(e);
                    report.jobs.push(JobStatus::new(row, Vec::new()));
                }
            }
        }
        Ok(report)
    }

    /// The job's record (`None`: not known, or no state file).
    pub fn job(&self, job: &JobId) -> Result<Option<JobRow>, Error> {
        Ok(match self.store(Access::Read)? {
            Some(s) => s.job(job)?,
            None => None,
        })
    }

    /// Allocates to `job` the first of `candidates` of `kind` no other job holds (or the one it
    /// holds already); released with the job.
    pub fn allocate(
        &self,
        job: &JobId,
        kind: crate::state::AllocationKind,
        candidates: &mut dyn Iterator<Item = u16>,
    ) -> Result<Option<u16>, Error> {
        let store = self.store(Access::Create)?.expect("created");
        Ok(store.allocate(job, kind, candidates)?)
    }

    /// Counts one more failed prolog of `job`; returns how many there were.
    pub fn note_failure(&self, job: &JobId, message: &str) -> Result<u32, Error> {
        let store = self.store(Access::Create)?.expect("created");
        Ok(store.note_failure(job, message)?)
    }

    pub fn clear_failures(&self, job: &JobId) -> Result<(), Error> {
        if let Some(store) = self.store(Access::Write)? {
            store.clear_failures(job)?;
        }
        Ok(())
    }

    /// Records (or with `None` forgets) the job's address list (JSON).
    pub fn set_addresses(&self, job: &JobId, json: Option<&str>) -> Result<(), Error> {
        if let Some(store) = self.store(Access::Write)? {
            store.set_addresses(job, json)?;
        }
        Ok(())
    }

    /// The job's address list (JSON), when it has one.
    pub fn addresses(&self, job: &JobId) -> Result<Option<String>, Error> {
        Ok(match self.store(Access::Read)? {
            Some(s) => s.addresses(job)?,
            None => None,
        })
    }

    /// What `down --force` abandoned, for an administrator to undo by hand.
    pub fn abandoned(&self) -> Result<Vec<Abandoned>, Error> {
        Ok(match self.store(Access::Read)? {
            Some(store) => store.abandoned()?,
            None => Vec::new(),
        })
    }

    /// Forgets jobs that went down more than `age` ago, with their journals. Returns how many.
    pub fn prune(&self, age: Duration) -> Result<usize, Error> {
        let Some(store) = self.store(Access::Write)? else {
            return Ok(0);
        };
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        Ok(store.prune(now.saturating_sub(age).as_secs_f64())?)
    }

    /// The state store, the one place that chooses the backend (today SQLite; an etcd store
    /// for HA controllers is chosen here from the options).
    fn store(&self, access: Access) -> Result<Option<Box<dyn StateStore>>, Error> {
        let path = &self.options.state;
        let boxed = |s: SqliteStore| Box::new(s) as Box<dyn StateStore>;
        Ok(match access {
            Access::Read => SqliteStore::open_read_only(path)?.map(boxed),
            Access::Write if !path.exists() => None,
            Access::Write | Access::Create => Some(boxed(SqliteStore::open_as(
                path,
                self.options.service_user,
            )?)),
        })
    }

    /// Wires the executor: the state store, the connector (SSH with the credentials and known
    /// hosts, or the caller's), the drivers and the faults.
    fn with_env<R>(
        &self,
        store: &dyn StateStore,
        retarget: Option<&Fabric>,
        progress: &dyn Progress,
        f: impl FnOnce(&Env) -> Result<R, ApplyError>,
    ) -> Result<R, Error> {
        let real;
        let connector: &dyn Connector = match &self.connector {
            Some(c) => c.as_ref(),
            None => {
                real = self.real_connector()?;
                real.as_ref()
            }
        };
        let env = Env {
            store,
            connector,
            drivers: self.drivers()?,
            faults: self.faults.as_ref(),
            sessions_per_device: self.options.sessions_per_device,
            wait: self.options.wait,
            save: self.options.save_config,
            interrupt: self.interrupt,
            retarget: retarget
                .map(|f| apply::targets(&f.topology))
                .unwrap_or_default(),
            progress,
        };
        Ok(f(&env)?)
    }

    /// SSH and local commands, through jobnetd's warm sessions when it answers on its socket.
    fn real_connector(&self) -> Result<Box<dyn Connector + Send>, Error> {
        let o = &self.options;
        let direct = Box::new(
            RealConnector::new(
                &o.credentials,
                &o.known_hosts,
                o.trust_on_first_use,
                o.connect_timeout,
                o.command_timeout,
            )
            .map_err(|e| match e {
                SetupError::Credentials(c) => Error::Credentials(c),
                SetupError::Runtime(r) => Error::Runtime(r),
            })?,
        );
        Ok(match &o.daemon {
            None => direct,
            Some(socket) => Box::new(DaemonConnector::new(
                socket.clone(),
                LoginOptions {
                    credentials: absolute(&o.credentials),
                    known_hosts: absolute(&o.known_hosts),
                    trust_on_first_use: o.trust_on_first_use,
                    connect_timeout_ms: o.connect_timeout.as_millis() as u64,
                    command_timeout_ms: o.command_timeout.as_millis() as u64,
                    sessions_per_device: o.sessions_per_device,
                },
                direct,
                o.wait,
            )),
        })
    }
}

/// `path` from this process's working directory (jobnetd has another one).
fn absolute(path: &Path) -> PathBuf {
    std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf())
}
