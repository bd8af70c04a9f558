//! The state in one SQLite file shared by every jobnet process on the controller host.
//!
//! Many prolog processes start at once, so [`StateStore::begin`] runs in a `BEGIN IMMEDIATE`
//! transaction (one writer at a time, others wait up to the busy timeout) and `allocations` has a
//! primary key on (kind, value): two jobs can never hold the same VLAN or PKey. WAL mode lets
//! readers (`jobnet status`) run beside writers; `synchronous=NORMAL` keeps every committed row
//! across a killed process (only a power loss may drop the last transactions). The file is
//! created with mode 0600 in a 0700 directory; the schema carries a version number.
//!
//! Enumerations are stored as their text (`ToSql`/`FromSql`); every row is read back into typed
//! values, and one that does not parse is [`StateError::Corrupt`], naming the table and row.
//! Session slots and port locks are lock files in `locks/` beside the database.

use super::*;
use crate::base::fsutil::{Dir, FileLock};
use rusqlite::types::{FromSql, FromSqlError, FromSqlResult, ToSql, ToSqlOutput, ValueRef};
use rusqlite::{params, Connection, OpenFlags, OptionalExtension, TransactionBehavior};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

pub const SCHEMA_VERSION: i64 = 3;
const DEFAULT_BUSY: Duration = Duration::from_secs(60);

/// A text column holding one of the state's enums. The enums that `base` defines (the orphan rule
/// keeps rusqlite's traits off them there) are bound and read through this wrapper.
struct Text<T>(T);

macro_rules! sql_text {
    ($($t:ty),*) => {$(
        impl ToSql for Text<$t> {
            fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
                Ok(ToSqlOutput::from(self.0.as_str()))
            }
        }
        impl FromSql for Text<$t> {
            fn column_result(v: ValueRef<'_>) -> FromSqlResult<Self> {
                let text = v.as_str()?;
                <$t>::parse(text).map(Text).ok_or_else(|| {
                    let known: Vec<&str> = <$t>::ALL.iter().map(|v| v.as_str()).collect();
                    FromSqlError::Other(
                        format!(
                            "`{text}` is not a known {} (one of: {})",
                            stringify!($t),
                            known.join(", ")
                        )
                        .into(),
                    )
                })
            }
        }
    )*};
}
sql_text!(JobState, JournalStatus, AllocationKind);

/// A column that does not read as its type, in words: the column's name and why (not
/// rusqlite's "Conversion error from type Text at index: 1").
fn column_error(e: rusqlite::Error, columns: &str) -> String {
    let name = |i: usize| columns.split(", ").nth(i).unwrap_or("?").to_string();
    match e {
        rusqlite::Error::FromSqlConversionFailure(i, _, why) => {
            format!("column `{}`: {why}", name(i))
        }
        rusqlite::Error::InvalidColumnType(i, _, t) => {
            format!("column `{}` holds {t:?}, not what jobnet wrote", name(i))
        }
        rusqlite::Error::IntegralValueOutOfRange(i, v) => {
            format!("column `{}`: {v} is out of range", name(i))
        }
        other => other.to_string(),
    }
}

/// Start time of a process in clock ticks since boot, from /proc (field 22 of stat); `None`
/// for a process that is gone — a zombie (`Z`) or dying (`X`) one included: it has ended and
/// only waits for its parent to reap it, so what it owned is nobody's.
pub fn process_start(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) is in parentheses and may contain spaces.
    let after = &stat[stat.rfind(')')? + 2..];
    let mut fields = after.split_whitespace();
    if matches!(fields.next(), Some("Z" | "X" | "x")) {
        return None;
    }
    fields.nth(18)?.parse().ok()
}

fn now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

/// An SQLite error on `path`: a file that is not a database says which setting names it.
fn db_error(path: &str, source: rusqlite::Error) -> StateError {
    let code = source.sqlite_error_code();
    if matches!(
        code,
        Some(rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked)
    ) {
        let interrupted = crate::base::deadline::work_interrupted();
        return StateError::Locked {
            path: path.to_string(),
            holder: db_holder(Path::new(path)),
            secs: crate::base::deadline::wait()
                .unwrap_or(DEFAULT_BUSY)
                .as_secs(),
            signal: if interrupted {
                " (a signal arrived)"
            } else {
                ""
            },
        };
    }
    let full = matches!(code, Some(rusqlite::ErrorCode::DiskFull))
        || matches!(&source, rusqlite::Error::SqliteFailure(e, _)
            if e.code == rusqlite::ErrorCode::SystemIoFailure && e.extended_code & 0xff == 10
                && free_bytes(Path::new(path)).is_some_and(|f| f < 1 << 20));
    if full {
        return StateError::DiskFull {
            path: path.to_string(),
            free: free_bytes(Path::new(path)).unwrap_or(0),
        };
    }
    if code == Some(rusqlite::ErrorCode::NotADatabase) {
        StateError::NotState {
            path: path.to_string(),
            source,
        }
    } else {
        StateError::Db {
            path: path.to_string(),
            source,
        }
    }
}

/// Bytes free to this user on the file system of `path`'s directory.
pub fn free_bytes(path: &Path) -> Option<u64> {
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let c = std::ffi::CString::new(dir.as_os_str().as_encoded_bytes()).ok()?;
    // SAFETY: a zeroed statvfs filled by the call; c is NUL-terminated.
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    if unsafe { libc::statvfs(c.as_ptr(), &mut st) } != 0 {
        return None;
    }
    Some(st.f_bavail as u64 * st.f_frsize as u64)
}

/// " (pid N: command line)" for a process holding a lock on the state file or its
/// `-shm` (from /proc/locks); empty when it cannot be told.
fn db_holder(path: &Path) -> String {
    let mut shm = path.as_os_str().to_os_string();
    shm.push("-shm");
    for p in [PathBuf::from(shm), path.to_path_buf()] {
        let h = crate::base::fsutil::holder_of(&p);
        if !h.is_empty() {
            return h;
        }
    }
    String::new()
}

/// `path` for an SQLite `file:` URI (percent-encoding what a URI gives meaning to).
fn uri_path(path: &Path) -> String {
    let mut out = String::new();
    for b in path.as_os_str().as_encoded_bytes() {
        match b {
            b'%' | b'?' | b'#' | b' ' | 0x80.. => out.push_str(&format!("%{b:02X}")),
            _ => out.push(*b as char),
        }
    }
    out
}

/// The SQLite state store.
pub struct SqliteStore {
    conn: Mutex<Connection>,
    path: PathBuf,
    lock_dir: PathBuf,
    /// Whom root gives the files it creates (see [`SqliteStore::open_as`]).
    owner: Option<(u32, u32)>,
    /// (device, inode) of the file opened: a file deleted or replaced under a running command
    /// is noticed at the next write instead of journaling into a file nobody will read.
    identity: (u64, u64),
    /// What this process journaled, kept in memory too: when the file cannot be written any
    /// more (deleted, disk full), the rollback still knows what to undo.
    memory: Mutex<Vec<JournalRow>>,
}

use crate::base::fsutil::euid;

/// SQLite's busy handler: waits in short steps for at most one wait (`--wait`; 60 s when not
/// set) and never past the command's deadline (see [`crate::base::deadline`]), and gives up at
/// once on a signal.
fn busy(attempt: i32) -> bool {
    use crate::base::deadline;
    thread_local! {
        static STARTED: std::cell::Cell<Option<Instant>> = const { std::cell::Cell::new(None) };
    }
    if attempt == 0 {
        STARTED.with(|s| s.set(Some(Instant::now())));
    }
    if deadline::work_interrupted() {
        return false;
    }
    let budget = deadline::wait().unwrap_or(DEFAULT_BUSY);
    let waited = STARTED
        .with(|s| s.get())
        .map_or(Duration::ZERO, |t| t.elapsed());
    let mut left = budget.saturating_sub(waited);
    if let Some(c) = deadline::command_left() {
        left = left.min(c);
    }
    if left.is_zero() {
        return false;
    }
    std::thread::sleep(left.min(Duration::from_millis(10)));
    true
}

const JOB_COLS: &str =
    "job, state, vlan, pkey, nodes, gateway, topology, pid, pid_start, message, created, updated";
const JOURNAL_COLS: &str =
    "id, job, device, driver, address, credentials, legacy, seq, op, apply, undo, status, message";

/// Whom the files of a state directory belong to when root writes them: `service` (the site's
/// service user, e.g. Slurm's `slurm`), else the directory's owner if that is not root. So an
/// administrator running jobnet as root never leaves a file the hooks cannot open.
fn file_owner(dir: &Path, service: Option<(u32, u32)>) -> Option<(u32, u32)> {
    if euid() != 0 {
        return None;
    }
    service.or_else(|| crate::base::fsutil::dir_owner(dir))
}

/// Whom a state directory root creates belongs to: the service user, if one is configured.
fn file_owner_for_new(dir: &Path, service: Option<(u32, u32)>) -> Option<(u32, u32)> {
    if euid() != 0 {
        return None;
    }
    service.or_else(|| dir.parent().and_then(crate::base::fsutil::dir_owner))
}

impl SqliteStore {
    /// Opens (creating if needed) the state file at `path`.
    pub fn open(path: &Path) -> Result<Self, StateError> {
        Self::open_as(path, None)
    }

    /// Opens (creating if needed) the state file at `path`; when root creates or touches files
    /// there, they are given to `service` (uid, gid), or to the directory's owner. The state
    /// file and SQLite's `-wal`/`-shm` are opened without following links and checked to be
    /// regular files with one link, owned by root, this user or that owner (see
    /// [`crate::base::fsutil`]), before SQLite opens them.
    pub fn open_as(path: &Path, service: Option<(u32, u32)>) -> Result<Self, StateError> {
        let p = path.display().to_string();
        let io = |source| StateError::Io {
            path: p.clone(),
            source,
        };
        let dir_path = path
            .parent()
            .filter(|d| !d.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        let created_owner = file_owner_for_new(dir_path, service);
        let dir = Dir::ensure(dir_path, 0o700, created_owner).map_err(io)?;
        let owner = file_owner(dir_path, service);
        let identity = Self::check_files(&dir, path, owner)?;
        let db = |source| db_error(&p, source);
        let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_CREATE
            | OpenFlags::SQLITE_OPEN_NO_MUTEX
            | OpenFlags::SQLITE_OPEN_NOFOLLOW;
        let mut conn = Connection::open_with_flags(path, flags).map_err(db)?;
        conn.busy_handler(Some(busy)).map_err(db)?;
        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(db)?;
        conn.pragma_update(None, "synchronous", "NORMAL")
            .map_err(db)?;
        let store = SqliteStore {
            conn: Mutex::new(conn),
            path: path.to_path_buf(),
            lock_dir: dir_path.join("locks"),
            owner,
            identity,
            memory: Mutex::new(Vec::new()),
        };
        store.migrate()?;
        // No second look at the files here: closing any descriptor of the database or its
        // -shm would drop the POSIX locks SQLite holds on them for this process (and another
        // process could then truncate the -shm under our mapping).
        drop(dir);
        Ok(store)
    }

    /// Called only before SQLite opens the files (see [`SqliteStore::open_as`]).
    /// The state file (created, mode 0600, if missing) and SQLite's companions: regular files
    /// with one link, never followed links, owned by root, this user or `owner` (and given to
    /// `owner` on their descriptors). Returns the state file's (device, inode).
    fn check_files(
        dir: &Dir,
        path: &Path,
        owner: Option<(u32, u32)>,
    ) -> Result<(u64, u64), StateError> {
        let name = path.file_name().unwrap_or_default();
        let mut identity = (0, 0);
        for suffix in ["", "-wal", "-shm"] {
            let mut n = name.to_os_string();
            n.push(suffix);
            let full = path.with_file_name(&n);
            let io = |source| StateError::Io {
                path: full.display().to_string(),
                source,
            };
            // The companions are created here, not by SQLite, so that SQLite finds regular files
            // jobnet checked rather than creating them through a planted link.
            let f = dir.open_file(&n, true, 0o600, owner).map_err(io)?;
            let m = f.metadata().map_err(io)?;
            let me = euid();
            if me == 0 && m.uid() != 0 && owner.is_none_or(|(u, _)| u != m.uid()) {
                return Err(io(std::io::Error::new(
                    std::io::ErrorKind::PermissionDenied,
                    format!(
                        "owned by uid {}, neither root nor the service user: jobnet did not create it; check who did, remove it and run again",
                        m.uid()
                    ),
                )));
            }
            if suffix.is_empty() {
                identity = (m.dev(), m.ino());
            }
        }
        Ok(identity)
    }

    /// The connection. Reads go on from a file deleted under a running command (the open file
    /// still holds what was written); every write first checks [`SqliteStore::check_same`].
    fn conn(&self) -> Result<MutexGuard<'_, Connection>, StateError> {
        // A thread that panicked while holding the connection leaves it usable (an open
        // transaction is rolled back when dropped): poisoning must not stop every other thread.
        Ok(self.conn.lock().unwrap_or_else(|p| p.into_inner()))
    }

    /// Errs when the state file at the path is no longer the one this store opened.
    fn check_same(&self) -> Result<(), StateError> {
        if self.identity == (0, 0) {
            return Ok(());
        }
        let why = match std::fs::symlink_metadata(&self.path) {
            Ok(m) if (m.dev(), m.ino()) == self.identity => return Ok(()),
            Ok(_) => "was replaced by another file",
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => "was deleted",
            Err(_) => "can no longer be read",
        };
        Err(StateError::Vanished {
            path: self.path.display().to_string(),
            why,
        })
    }

    /// Opens an existing state file; `None` when there is none. Creates nothing (read-only
    /// commands such as `status` and `plan` must not leave a state file behind).
    pub fn open_existing(path: &Path) -> Result<Option<Self>, StateError> {
        match std::fs::symlink_metadata(path) {
            Ok(_) => Self::open(path).map(Some),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(source) => Err(StateError::Io {
                path: path.display().to_string(),
                source,
            }),
        }
    }

    /// Opens an existing state file for reading only (`status`, `plan`): `None` when there is
    /// none. Nothing is created, migrated or switched: a user who may only read the file can
    /// read it, and an old file stays as it is. If SQLite cannot share the file read-only (a
    /// WAL file whose `-shm` this user may not create), it is read as a snapshot instead.
    pub fn open_read_only(path: &Path) -> Result<Option<Self>, StateError> {
        match std::fs::metadata(path) {
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(source) => {
                return Err(StateError::Io {
                    path: path.display().to_string(),
                    source,
                })
            }
        }
        let p = path.display().to_string();
        let db = |source| db_error(&p, source);
        let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let shared = Connection::open_with_flags(path, flags).and_then(|mut c| {
            c.busy_handler(Some(busy))?;
            c.query_row("SELECT count(*) FROM sqlite_master", [], |r| {
                r.get::<_, i64>(0)
            })?;
            Ok(c)
        });
        let conn = match shared {
            Ok(c) => c,
            Err(_) => {
                let uri = format!("file:{}?immutable=1", uri_path(path));
                let c = Connection::open_with_flags(uri, flags | OpenFlags::SQLITE_OPEN_URI)
                    .map_err(db)?;
                c.query_row("SELECT count(*) FROM sqlite_master", [], |r| {
                    r.get::<_, i64>(0)
                })
                .map_err(db)?;
                c
            }
        };
        let store = SqliteStore {
            conn: Mutex::new(conn),
            path: path.to_path_buf(),
            lock_dir: path.parent().unwrap_or(Path::new(".")).join("locks"),
            owner: None,
            identity: (0, 0),
            memory: Mutex::new(Vec::new()),
        };
        store.check_version()?;
        Ok(Some(store))
    }

    /// Refuses a file written by a newer jobnet (read-only opens do not migrate).
    fn check_version(&self) -> Result<(), StateError> {
        let conn = self.conn()?;
        let found: Option<String> = conn
            .query_row(
                "SELECT value FROM meta WHERE key='schema_version'",
                [],
                |r| r.get(0),
            )
            .optional()
            .map_err(|e| self.err(e))?;
        match found.map(|v| v.parse::<i64>()) {
            Some(Ok(v)) if v > SCHEMA_VERSION => Err(StateError::NewerSchema {
                path: self.path.display().to_string(),
                found: v,
            }),
            Some(Err(_)) => Err(self.corrupt("meta schema_version".into(), "it is not a number")),
            _ => Ok(()),
        }
    }

    fn has_table(&self, conn: &Connection, name: &str) -> Result<bool, StateError> {
        conn.query_row(
            "SELECT count(*) FROM sqlite_master WHERE type='table' AND name=?1",
            [name],
            |r| r.get::<_, i64>(0),
        )
        .map(|n| n > 0)
        .map_err(|e| self.err(e))
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The directory of the lock files.
    pub fn lock_dir(&self) -> &Path {
        &self.lock_dir
    }

    fn err(&self, source: rusqlite::Error) -> StateError {
        db_error(&self.path.display().to_string(), source)
    }

    fn corrupt(&self, what: String, why: impl fmt::Display) -> StateError {
        StateError::Corrupt {
            path: self.path.display().to_string(),
            what,
            why: why.to_string(),
        }
    }

    fn migrate(&self) -> Result<(), StateError> {
        let mut conn = self.conn()?;
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(|e| self.err(e))?;
        tx.execute_batch(
            "CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);
             CREATE TABLE IF NOT EXISTS jobs(
               job TEXT PRIMARY KEY, state TEXT NOT NULL, vlan INTEGER, pkey INTEGER,
               nodes TEXT NOT NULL, gateway TEXT, topology TEXT NOT NULL,
               pid INTEGER, pid_start INTEGER, message TEXT NOT NULL DEFAULT '',
               created REAL NOT NULL, updated REAL NOT NULL);
             CREATE TABLE IF NOT EXISTS allocations(
               kind TEXT NOT NULL, value INTEGER NOT NULL, job TEXT NOT NULL,
               PRIMARY KEY(kind, value));
             CREATE TABLE IF NOT EXISTS journal(
               id INTEGER PRIMARY KEY AUTOINCREMENT, job TEXT NOT NULL, device TEXT NOT NULL,
               driver TEXT NOT NULL, address TEXT NOT NULL, credentials TEXT,
               legacy INTEGER NOT NULL DEFAULT 0, seq INTEGER NOT NULL,
               op TEXT NOT NULL, apply TEXT NOT NULL, undo TEXT NOT NULL, status TEXT NOT NULL,
               message TEXT NOT NULL DEFAULT '', ts REAL NOT NULL);
             CREATE INDEX IF NOT EXISTS journal_job ON journal(job);
             CREATE TABLE IF NOT EXISTS port_restrictions(
               device TEXT NOT NULL, port TEXT NOT NULL, previous TEXT NOT NULL, since REAL NOT NULL,
               PRIMARY KEY(device, port));
             CREATE TABLE IF NOT EXISTS abandoned(
               id INTEGER PRIMARY KEY AUTOINCREMENT, job TEXT NOT NULL, device TEXT NOT NULL,
               address TEXT NOT NULL, apply TEXT NOT NULL, undo TEXT NOT NULL,
               reason TEXT NOT NULL, ts REAL NOT NULL);
             CREATE TABLE IF NOT EXISTS hook_failures(
               job TEXT PRIMARY KEY, count INTEGER NOT NULL, last TEXT NOT NULL, ts REAL NOT NULL);
             CREATE TABLE IF NOT EXISTS addresses(job TEXT PRIMARY KEY, json TEXT NOT NULL);",
        )
        .map_err(|e| self.err(e))?;
        let found: Option<String> = tx
            .query_row(
                "SELECT value FROM meta WHERE key='schema_version'",
                [],
                |r| r.get(0),
            )
            .optional()
            .map_err(|e| self.err(e))?;
        let version = match found {
            None => None,
            Some(v) => Some(v.parse::<i64>().map_err(|_| {
                self.corrupt(
                    "meta schema_version".into(),
                    format!("`{v}` is not a number"),
                )
            })?),
        };
        match version {
            None => {
                tx.execute(
                    "INSERT INTO meta(key, value) VALUES('schema_version', ?1)",
                    [SCHEMA_VERSION.to_string()],
                )
                .map_err(|e| self.err(e))?;
            }
            Some(v) if v > SCHEMA_VERSION => {
                return Err(StateError::NewerSchema {
                    path: self.path.display().to_string(),
                    found: v,
                })
            }
            // Version 1 lacked port_restrictions and abandoned, version 2 hook_failures and
            // addresses (all created above); nothing else changed.
            Some(v) if v < SCHEMA_VERSION => {
                tx.execute(
                    "UPDATE meta SET value=?1 WHERE key='schema_version'",
                    [SCHEMA_VERSION.to_string()],
                )
                .map_err(|e| self.err(e))?;
            }
            Some(_) => {}
        }
        tx.commit().map_err(|e| self.err(e))
    }

    /// Reads a job row into typed values, naming it when it does not parse.
    fn job_row(&self, r: &rusqlite::Row) -> Result<JobRow, StateError> {
        let id: String = r.get(0).map_err(|e| self.err(e))?;
        let what = || format!("job {id:?}");
        let col = |e: rusqlite::Error| self.corrupt(what(), column_error(e, JOB_COLS));
        let job = JobId::parse(&id).map_err(|e| self.corrupt(what(), e.0))?;
        let state = r.get::<_, Text<JobState>>(1).map_err(col)?.0;
        let vlan = r
            .get::<_, Option<i64>>(2)
            .map_err(col)?
            .map(|v| VlanId::new(v as u64).map_err(|e| self.corrupt(what(), e.0)))
            .transpose()?;
        let pkey = r
            .get::<_, Option<i64>>(3)
            .map_err(col)?
            .map(|k| PKey::new(k as u64).map_err(|e| self.corrupt(what(), e.0)))
            .transpose()?;
        let nodes: String = r.get(4).map_err(col)?;
        let nodes: Vec<String> = serde_json::from_str(&nodes)
            .map_err(|e| self.corrupt(what(), format!("its node list: {e}")))?;
        let pid: Option<i64> = r.get(7).map_err(col)?;
        let start: Option<i64> = r.get(8).map_err(col)?;
        Ok(JobRow {
            job,
            state,
            vlan,
            pkey,
            nodes,
            gateway: r.get(5).map_err(col)?,
            topology: r.get(6).map_err(col)?,
            owner: pid.map(|p| Owner {
                pid: p as u32,
                start: start.unwrap_or(0) as u64,
            }),
            message: r.get(9).map_err(col)?,
            created: r.get(10).map_err(col)?,
            updated: r.get(11).map_err(col)?,
        })
    }

    fn journal_row(&self, r: &rusqlite::Row) -> Result<JournalRow, StateError> {
        let id: i64 = r.get(0).map_err(|e| self.err(e))?;
        let job_text: String = r.get(1).map_err(|e| self.err(e))?;
        let what = || format!("journal row {id} of job {job_text}");
        let col = |e: rusqlite::Error| self.corrupt(what(), column_error(e, JOURNAL_COLS));
        let list = |i: usize, name: &str| -> Result<Vec<String>, StateError> {
            let text: String = r.get(i).map_err(col)?;
            serde_json::from_str(&text)
                .map_err(|e| self.corrupt(what(), format!("its {name} lines `{text}`: {e}")))
        };
        let op_text: String = r.get(8).map_err(col)?;
        let op = JournalOp::from_json(&op_text)
            .map_err(|e| self.corrupt(what(), format!("its operation `{op_text}`: {e}")))?;
        Ok(JournalRow {
            id,
            job: JobId::parse(&job_text).map_err(|e| self.corrupt(what(), e.0))?,
            device: DeviceRecord {
                name: r.get(2).map_err(col)?,
                driver: r.get(3).map_err(col)?,
                address: r.get(4).map_err(col)?,
                credentials: r.get(5).map_err(col)?,
                legacy: r.get(6).map_err(col)?,
            },
            seq: r.get(7).map_err(col)?,
            op,
            apply: list(9, "apply")?,
            undo: list(10, "undo")?,
            status: r.get::<_, Text<JournalStatus>>(11).map_err(col)?.0,
            message: r.get(12).map_err(col)?,
        })
    }

    /// Runs `f` in one `BEGIN IMMEDIATE` transaction: the only writer while it runs.
    fn immediate<T>(
        &self,
        f: impl FnOnce(&rusqlite::Transaction) -> Result<T, BeginError>,
    ) -> Result<T, BeginError> {
        self.check_same()?;
        let mut conn = self.conn()?;
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(|e| self.err(e))?;
        let out = f(&tx)?;
        tx.commit().map_err(|e| self.err(e))?;
        Ok(out)
    }

    fn query_jobs(
        &self,
        conn: &Connection,
        filter: &str,
        arg: Option<&str>,
    ) -> Result<Vec<JobRow>, StateError> {
        self.query_jobs_each(conn, filter, arg)?
            .into_iter()
            .collect()
    }

    /// Every matching job row, each typed or the error naming it.
    #[allow(clippy::type_complexity)]
    fn query_jobs_each(
        &self,
        conn: &Connection,
        filter: &str,
        arg: Option<&str>,
    ) -> Result<Vec<Result<JobRow, StateError>>, StateError> {
        let mut stmt = conn
            .prepare(&format!(
                "SELECT {JOB_COLS} FROM jobs {filter} ORDER BY created, job"
            ))
            .map_err(|e| self.err(e))?;
        let mut rows = match arg {
            Some(a) => stmt.query([a]),
            None => stmt.query([]),
        }
        .map_err(|e| self.err(e))?;
        let mut out = Vec::new();
        while let Some(r) = rows.next().map_err(|e| self.err(e))? {
            out.push(self.job_row(r));
        }
        Ok(out)
    }

    fn lock_file(&self, name: &str) -> PathBuf {
        self.lock_dir.join(name)
    }

    /// The lock directory, opened without following a link.
    fn make_lock_dir(&self) -> Result<(), LockError> {
        let io = |source| LockError::Io {
            path: self.lock_dir.display().to_string(),
            source,
        };
        let parent = self.lock_dir.parent().unwrap_or(Path::new("."));
        Dir::open(parent)
            .and_then(|d| d.sub(std::ffi::OsStr::new("locks"), 0o700, self.owner, false))
            .map_err(io)?;
        Ok(())
    }
}

/// Port names hold `/` and `:`: every byte outside [A-Za-z0-9._-] is encoded.
fn encode(port: &str) -> String {
    port.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"._-".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

impl StateStore for SqliteStore {
    fn location(&self) -> String {
        format!("state file {}", self.path.display())
    }

    fn owner(&self) -> Owner {
        let pid = std::process::id();
        Owner {
            pid,
            start: process_start(pid).unwrap_or(0),
        }
    }

    fn alive(&self, owner: &Owner) -> bool {
        process_start(owner.pid) == Some(owner.start)
    }

    fn jobs(&self) -> Result<Vec<JobRow>, StateError> {
        let conn = self.conn()?;
        self.query_jobs(&conn, "", None)
    }

    fn jobs_each(&self) -> Result<Vec<Result<JobRow, StateError>>, StateError> {
        let conn = self.conn()?;
        self.query_jobs_each(&conn, "", None)
    }

    fn job(&self, job: &JobId) -> Result<Option<JobRow>, StateError> {
        let conn = self.conn()?;
        Ok(self
            .query_jobs(&conn, "WHERE job=?1", Some(job.as_str()))?
            .pop())
    }

    fn allocations(&self) -> Result<Vec<(AllocationKind, u16, String)>, StateError> {
        let conn = self.conn()?;
        let mut stmt = conn
            .prepare("SELECT kind, value, job FROM allocations ORDER BY kind, value")
            .map_err(|e| self.err(e))?;
        let rows = stmt
            .query_map([], |r| {
                Ok((r.get::<_, Text<AllocationKind>>(0)?.0, r.get(1)?, r.get(2)?))
            })
            .map_err(|e| self.err(e))?;
        rows.collect::<Result<_, _>>()
            .map_err(|e| self.corrupt("the allocations table".into(), e))
    }

    fn begin(
        &self,
        job: &JobId,
        decide: &mut dyn FnMut(&Snapshot) -> Result<Decision, Refusal>,
    ) -> Result<Decision, BeginError> {
        self.check_same()?;
        let owner = self.owner();
        self.immediate(|tx| {
            let snapshot = Snapshot {
                job: self.query_jobs(tx, "WHERE job=?1", Some(job.as_str()))?.pop(),
                active: self.query_jobs(tx, "WHERE state != ?1", Some(JobState::Down.as_str()))?,
            };
            let decision = decide(&snapshot).map_err(BeginError::Refused)?;
            let Decision::Start(new) = &decision else {
                return Ok(decision);
            };
            let t = now();
            tx.execute(
                "INSERT INTO jobs(job, state, vlan, pkey, nodes, gateway, topology, pid, pid_start, message, created, updated)
                 VALUES(?1,?10,?2,?3,?4,?5,?6,?7,?8,'',?9,?9)
                 ON CONFLICT(job) DO UPDATE SET state=?10, vlan=?2, pkey=?3, nodes=?4, gateway=?5, topology=?6, pid=?7, pid_start=?8, message='', updated=?9",
                params![job.as_str(), new.vlan.map(VlanId::get), new.pkey.map(PKey::get), serde_json::to_string(&new.nodes).expect("json"), new.gateway, new.topology, owner.pid, owner.start as i64, t, Text(JobState::Applying)],
            )
            .map_err(|e| self.err(e))?;
            tx.execute("DELETE FROM journal WHERE job=?1", [job.as_str()])
                .map_err(|e| self.err(e))?;
            let wanted = [
                (AllocationKind::Vlan, new.vlan.map(VlanId::get)),
                (AllocationKind::PKey, new.pkey.map(PKey::get)),
            ];
            for (kind, value) in wanted {
                let Some(value) = value else { continue };
                let n = tx
                    .execute(
                        "INSERT INTO allocations(kind, value, job) VALUES(?1,?2,?3) ON CONFLICT(kind, value) DO NOTHING",
                        params![Text(kind), value, job.as_str()],
                    )
                    .map_err(|e| self.err(e))?;
                if n == 0 {
                    let holder: String = tx
                        .query_row(
                            "SELECT job FROM allocations WHERE kind=?1 AND value=?2",
                            params![Text(kind), value],
                            |r| r.get(0),
                        )
                        .map_err(|e| self.err(e))?;
                    if holder != job.as_str() {
                        return Err(StateError::Taken {
                            path: self.path.display().to_string(),
                            kind,
                            value,
                            holder,
                        }
                        .into());
                    }
                }
            }
            Ok(decision)
        })
    }

    fn claim(&self, job: &JobId, purpose: ClaimFor) -> Result<Claim, StateError> {
        self.check_same()?;
        let owner = self.owner();
        let r = self.immediate(|tx| {
            let Some(row) = self
                .query_jobs(tx, "WHERE job=?1", Some(job.as_str()))?
                .pop()
            else {
                return Ok(Claim::NotFound);
            };
            if row.state == JobState::Down {
                return Ok(Claim::AlreadyDown);
            }
            let running = row.state.in_progress() && row.owner.is_some_and(|o| self.alive(&o));
            let allowed = match purpose {
                ClaimFor::Down => !running,
                ClaimFor::Recover => row.state.in_progress() && !running,
            };
            if !allowed {
                return Ok(Claim::Busy(row));
            }
            tx.execute(
                "UPDATE jobs SET state=?5, pid=?2, pid_start=?3, updated=?4 WHERE job=?1",
                params![
                    job.as_str(),
                    owner.pid,
                    owner.start as i64,
                    now(),
                    Text(JobState::TearingDown)
                ],
            )
            .map_err(|e| self.err(e))?;
            Ok(Claim::Claimed(JobRow {
                state: JobState::TearingDown,
                owner: Some(owner),
                ..row
            }))
        });
        r.map_err(|e| match e {
            BeginError::State(s) => s,
            BeginError::Refused(r) => self.corrupt(format!("job {job}"), r),
        })
    }

    fn reserve(&self, ops: usize) -> Result<(), StateError> {
        self.check_same()?;
        // Each operation is an intent row and two updates, in the WAL and then the database:
        // a few KiB each; SQLite also needs room to checkpoint.
        let need = 256 * 1024 + ops as u64 * 8 * 1024;
        match free_bytes(&self.path) {
            Some(free) if free < need => Err(StateError::DiskFull {
                path: self.path.display().to_string(),
                free,
            }),
            _ => Ok(()),
        }
    }

    fn set_state(&self, job: &JobId, state: JobState, message: &str) -> Result<(), StateError> {
        self.check_same()?;
        let conn = self.conn()?;
        conn.execute(
            "UPDATE jobs SET state=?2, message=?3, updated=?4 WHERE job=?1",
            params![job.as_str(), Text(state), message, now()],
        )
        .map_err(|e| self.err(e))?;
        Ok(())
    }

    fn release(&self, job: &JobId, message: &str) -> Result<(), StateError> {
        self.check_same()?;
        let r = self.immediate(|tx| {
            tx.execute("DELETE FROM allocations WHERE job=?1", [job.as_str()])
                .map_err(|e| self.err(e))?;
            tx.execute(
                "UPDATE jobs SET state=?4, message=?2, pid=NULL, pid_start=NULL, updated=?3 WHERE job=?1",
                params![job.as_str(), message, now(), Text(JobState::Down)],
            )
            .map_err(|e| self.err(e))?;
            Ok(())
        });
        r.map_err(|e| match e {
            BeginError::State(s) => s,
            BeginError::Refused(r) => self.corrupt(format!("job {job}"), r),
        })
    }

    fn prune(&self, before: f64) -> Result<usize, StateError> {
        self.check_same()?;
        let conn = self.conn()?;
        conn.execute(
            "DELETE FROM journal WHERE job IN (SELECT job FROM jobs WHERE state=?2 AND updated < ?1)",
            params![before, Text(JobState::Down)],
        )
        .map_err(|e| self.err(e))?;
        for table in ["addresses", "hook_failures"] {
            conn.execute(
                &format!("DELETE FROM {table} WHERE job IN (SELECT job FROM jobs WHERE state=?2 AND updated < ?1)"),
                params![before, Text(JobState::Down)],
            )
            .map_err(|e| self.err(e))?;
        }
        conn.execute(
            "DELETE FROM jobs WHERE state=?2 AND updated < ?1",
            params![before, Text(JobState::Down)],
        )
        .map_err(|e| self.err(e))
    }

    fn journal(&self, job: &JobId) -> Result<Vec<JournalRow>, StateError> {
        let from_file = self.conn().and_then(|conn| {
            let mut stmt = conn
                .prepare(&format!(
                    "SELECT {JOURNAL_COLS} FROM journal WHERE job=?1 ORDER BY id"
                ))
                .map_err(|e| self.err(e))?;
            let mut rows = stmt.query([job.as_str()]).map_err(|e| self.err(e))?;
            let mut out = Vec::new();
            while let Some(r) = rows.next().map_err(|e| self.err(e))? {
                out.push(self.journal_row(r)?);
            }
            Ok(out)
        });
        match from_file {
            // What this process wrote is newer than the file when a write failed.
            Ok(mut rows) => {
                let memory = self.memory.lock().unwrap_or_else(|p| p.into_inner());
                for r in rows.iter_mut() {
                    if let Some(m) = memory.iter().find(|m| m.id == r.id) {
                        r.status = m.status;
                    }
                }
                Ok(rows)
            }
            Err(e @ StateError::Corrupt { .. }) => Err(e),
            Err(e) => {
                let memory = self.memory.lock().unwrap_or_else(|p| p.into_inner());
                let mine: Vec<JournalRow> =
                    memory.iter().filter(|r| &r.job == job).cloned().collect();
                if mine.is_empty() {
                    Err(e)
                } else {
                    Ok(mine)
                }
            }
        }
    }

    fn journal_intent(
        &self,
        job: &JobId,
        d: &DeviceRecord,
        seq: usize,
        op: &JournalOp,
        apply: &[String],
        undo: &[String],
    ) -> Result<i64, StateError> {
        self.check_same()?;
        let conn = self.conn()?;
        conn.execute(
            "INSERT INTO journal(job, device, driver, address, credentials, legacy, seq, op, apply, undo, status, ts) VALUES(?1,?2,?3,?4,?5,?6,?7,?8,?9,?10,?12,?11)",
            params![job.as_str(), d.name, d.driver, d.address, d.credentials, d.legacy, seq as i64, op.to_json(), serde_json::to_string(apply).expect("json"), serde_json::to_string(undo).expect("json"), now(), Text(JournalStatus::Intent)],
        )
        .map_err(|e| self.err(e))?;
        let id = conn.last_insert_rowid();
        drop(conn);
        // The file may have gone while the row was written: only a row in the file counts.
        self.check_same()?;
        self.memory
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(JournalRow {
                id,
                job: job.clone(),
                device: d.clone(),
                seq: seq as i64,
                op: op.clone(),
                apply: apply.to_vec(),
                undo: undo.to_vec(),
                status: JournalStatus::Intent,
                message: String::new(),
            });
        Ok(id)
    }

    fn journal_set(&self, id: i64, status: JournalStatus, message: &str) -> Result<(), StateError> {
        self.check_same()?;
        if let Some(r) = self
            .memory
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter_mut()
            .find(|r| r.id == id)
        {
            r.status = status;
            r.message = message.to_string();
        }
        let conn = self.conn()?;
        conn.execute(
            "UPDATE journal SET status=?2, message=?3, ts=?4 WHERE id=?1",
            params![id, Text(status), message, now()],
        )
        .map_err(|e| self.err(e))?;
        Ok(())
    }

    fn journal_intents(
        &self,
        job: &JobId,
        d: &DeviceRecord,
        first_seq: usize,
        items: &[(JournalOp, Vec<String>, Vec<String>)],
    ) -> Result<Vec<i64>, StateError> {
        if items.is_empty() {
            return Ok(Vec::new());
        }
        let r = self.immediate(|tx| {
            let mut stmt = tx
                .prepare(
                    "INSERT INTO journal(job, device, driver, address, credentials, legacy, seq, op, apply, undo, status, ts) VALUES(?1,?2,?3,?4,?5,?6,?7,?8,?9,?10,?12,?11)",
                )
                .map_err(|e| self.err(e))?;
            let mut ids = Vec::with_capacity(items.len());
            for (i, (op, apply, undo)) in items.iter().enumerate() {
                stmt.execute(params![job.as_str(), d.name, d.driver, d.address, d.credentials, d.legacy, (first_seq + i) as i64, op.to_json(), serde_json::to_string(apply).expect("json"), serde_json::to_string(undo).expect("json"), now(), Text(JournalStatus::Intent)])
                    .map_err(|e| self.err(e))?;
                ids.push(tx.last_insert_rowid());
            }
            Ok(ids)
        });
        let ids = r.map_err(|e| match e {
            BeginError::State(s) => s,
            BeginError::Refused(r) => self.corrupt(format!("job {job}"), r),
        })?;
        // The file may have gone while the rows were written: only rows in the file count.
        self.check_same()?;
        let mut memory = self.memory.lock().unwrap_or_else(|p| p.into_inner());
        for (k, (id, (op, apply, undo))) in ids.iter().zip(items).enumerate() {
            memory.push(JournalRow {
                id: *id,
                job: job.clone(),
                device: d.clone(),
                seq: (first_seq + k) as i64,
                op: op.clone(),
                apply: apply.clone(),
                undo: undo.clone(),
                status: JournalStatus::Intent,
                message: String::new(),
            });
        }
        Ok(ids)
    }

    fn journal_set_many(&self, rows: &[(i64, JournalStatus, String)]) -> Result<(), StateError> {
        if rows.is_empty() {
            return Ok(());
        }
        self.check_same()?;
        {
            let mut memory = self.memory.lock().unwrap_or_else(|p| p.into_inner());
            for (id, status, message) in rows {
                if let Some(r) = memory.iter_mut().find(|r| r.id == *id) {
                    r.status = *status;
                    r.message = message.clone();
                }
            }
        }
        let r = self.immediate(|tx| {
            let mut stmt = tx
                .prepare("UPDATE journal SET status=?2, message=?3, ts=?4 WHERE id=?1")
                .map_err(|e| self.err(e))?;
            for (id, status, message) in rows {
                stmt.execute(params![id, Text(*status), message, now()])
                    .map_err(|e| self.err(e))?;
            }
            Ok(())
        });
        r.map_err(|e| match e {
            BeginError::State(s) => s,
            BeginError::Refused(r) => self.corrupt("the journal".into(), r),
        })
    }

    fn restriction(&self, device: &str, port: &str) -> Result<Option<String>, StateError> {
        let conn = self.conn()?;
        conn.query_row(
            "SELECT previous FROM port_restrictions WHERE device=?1 AND port=?2",
            [device, port],
            |r| r.get(0),
        )
        .optional()
        .map_err(|e| self.err(e))
    }

    fn restrict(&self, device: &str, port: &str, previous: &str) -> Result<(), StateError> {
        self.check_same()?;
        let conn = self.conn()?;
        conn.execute(
            "INSERT INTO port_restrictions(device, port, previous, since) VALUES(?1,?2,?3,?4) ON CONFLICT(device, port) DO NOTHING",
            params![device, port, previous, now()],
        )
        .map_err(|e| self.err(e))?;
        Ok(())
    }

    fn unrestrict(&self, device: &str, port: &str) -> Result<(), StateError> {
        self.check_same()?;
        let conn = self.conn()?;
        conn.execute(
            "DELETE FROM port_restrictions WHERE device=?1 AND port=?2",
            [device, port],
        )
        .map_err(|e| self.err(e))?;
        Ok(())
    }

    fn abandon(&self, rows: &[JournalRow], reason: &str) -> Result<(), StateError> {
        self.check_same()?;
        let r = self.immediate(|tx| {
            for r in rows {
                tx.execute(
                    "INSERT INTO abandoned(job, device, address, apply, undo, reason, ts) VALUES(?1,?2,?3,?4,?5,?6,?7)",
                    params![r.job.as_str(), r.device.name, r.device.address, serde_json::to_string(&r.apply).expect("json"), serde_json::to_string(&r.undo).expect("json"), reason, now()],
                )
                .map_err(|e| self.err(e))?;
                tx.execute(
                    "UPDATE journal SET status=?4, message=?2, ts=?3 WHERE id=?1",
                    params![r.id, reason, now(), Text(JournalStatus::Abandoned)],
                )
                .map_err(|e| self.err(e))?;
            }
            Ok(())
        });
        r.map_err(|e| match e {
            BeginError::State(s) => s,
            BeginError::Refused(r) => self.corrupt("the abandoned table".into(), r),
        })
    }

    fn abandoned(&self) -> Result<Vec<Abandoned>, StateError> {
        let conn = self.conn()?;
        // A version-1 file opened read-only has no such table: nothing was abandoned.
        if !self.has_table(&conn, "abandoned")? {
            return Ok(Vec::new());
        }
        let mut stmt = conn
            .prepare("SELECT id, job, device, address, undo, reason, ts FROM abandoned ORDER BY id")
            .map_err(|e| self.err(e))?;
        let mut rows = stmt.query([]).map_err(|e| self.err(e))?;
        let mut out = Vec::new();
        while let Some(r) = rows.next().map_err(|e| self.err(e))? {
            let id: i64 = r.get(0).map_err(|e| self.err(e))?;
            let undo: String = r.get(4).map_err(|e| self.err(e))?;
            let undo = serde_json::from_str(&undo)
                .map_err(|e| self.corrupt(format!("abandoned row {id}"), e))?;
            out.push(Abandoned {
                job: r.get(1).map_err(|e| self.err(e))?,
                device: r.get(2).map_err(|e| self.err(e))?,
                address: r.get(3).map_err(|e| self.err(e))?,
                undo,
                reason: r.get(5).map_err(|e| self.err(e))?,
                time: r.get(6).map_err(|e| self.err(e))?,
            });
        }
        Ok(out)
    }

    fn allocate(
        &self,
        job: &JobId,
        kind: AllocationKind,
        candidates: &mut dyn Iterator<Item = u16>,
    ) -> Result<Option<u16>, StateError> {
        self.check_same()?;
        let r = self.immediate(|tx| {
            let held: Option<i64> = tx
                .query_row(
                    "SELECT value FROM allocations WHERE job=?1 AND kind=?2",
                    params![job.as_str(), Text(kind)],
                    |r| r.get(0),
                )
                .optional()
                .map_err(|e| self.err(e))?;
            if let Some(v) = held {
                return Ok(u16::try_from(v).ok());
            }
            for value in &mut *candidates {
                let n = tx
                    .execute(
                        "INSERT OR IGNORE INTO allocations(kind, value, job) VALUES(?1, ?2, ?3)",
                        params![Text(kind), value, job.as_str()],
                    )
                    .map_err(|e| self.err(e))?;
                if n == 1 {
                    return Ok(Some(value));
                }
            }
            Ok(None)
        });
        r.map_err(|e| match e {
            BeginError::State(s) => s,
            BeginError::Refused(r) => self.corrupt(format!("job {job}"), r),
        })
    }

    fn note_failure(&self, job: &JobId, message: &str) -> Result<u32, StateError> {
        self.check_same()?;
        let conn = self.conn()?;
        conn.execute(
            "INSERT INTO hook_failures(job, count, last, ts) VALUES(?1, 1, ?2, ?3)
             ON CONFLICT(job) DO UPDATE SET count=count+1, last=?2, ts=?3",
            params![job.as_str(), message, now()],
        )
        .map_err(|e| self.err(e))?;
        let n: i64 = conn
            .query_row(
                "SELECT count FROM hook_failures WHERE job=?1",
                [job.as_str()],
                |r| r.get(0),
            )
            .map_err(|e| self.err(e))?;
        Ok(n.max(0) as u32)
    }

    fn failures(&self, job: &JobId) -> Result<u32, StateError> {
        let conn = self.conn()?;
        if !self.has_table(&conn, "hook_failures")? {
            return Ok(0);
        }
        let n: Option<i64> = conn
            .query_row(
                "SELECT count FROM hook_failures WHERE job=?1",
                [job.as_str()],
                |r| r.get(0),
            )
            .optional()
            .map_err(|e| self.err(e))?;
        Ok(n.unwrap_or(0).max(0) as u32)
    }

    fn clear_failures(&self, job: &JobId) -> Result<(), StateError> {
        self.check_same()?;
        let conn = self.conn()?;
        conn.execute("DELETE FROM hook_failures WHERE job=?1", [job.as_str()])
            .map_err(|e| self.err(e))?;
        Ok(())
    }

    fn set_addresses(&self, job: &JobId, json: Option<&str>) -> Result<(), StateError> {
        self.check_same()?;
        let conn = self.conn()?;
        match json {
            Some(j) => conn.execute(
                "INSERT INTO addresses(job, json) VALUES(?1, ?2) ON CONFLICT(job) DO UPDATE SET json=?2",
                params![job.as_str(), j],
            ),
            None => conn.execute("DELETE FROM addresses WHERE job=?1", [job.as_str()]),
        }
        .map_err(|e| self.err(e))?;
        Ok(())
    }

    fn addresses(&self, job: &JobId) -> Result<Option<String>, StateError> {
        let conn = self.conn()?;
        if !self.has_table(&conn, "addresses")? {
            return Ok(None);
        }
        conn.query_row(
            "SELECT json FROM addresses WHERE job=?1",
            [job.as_str()],
            |r| r.get(0),
        )
        .optional()
        .map_err(|e| self.err(e))
    }

    fn device_slot(&self, device: &str, slots: usize, wait: Duration) -> Result<Held, LockError> {
        self.make_lock_dir()?;
        let start = Instant::now();
        loop {
            for slot in 0..slots.max(1) {
                let path = self.lock_file(&format!("{device}.{slot}.lock"));
                if let Some(l) = FileLock::try_acquire_as(&path, self.owner)? {
                    return Ok(Held::new(l));
                }
            }
            if start.elapsed() >= wait {
                return Err(LockError::SlotsBusy {
                    device: device.to_string(),
                    slots,
                    secs: wait.as_secs(),
                    dir: self.lock_dir.display().to_string(),
                });
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    fn port_lock(&self, device: &str, port: &str, wait: Duration) -> Result<Held, LockError> {
        self.make_lock_dir()?;
        let path = self.lock_file(&format!("{device}.port.{}.lock", encode(port)));
        let deadline = crate::base::deadline::Deadline::within_command(wait);
        let lock = FileLock::acquire_until(&path, self.owner, deadline)?;
        Ok(Held::new(lock))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    /// A live process has a start time; one that has ended is gone, even while it is a zombie
    /// its parent has not reaped yet.
    #[test]
    fn a_zombie_owns_nothing() {
        assert!(process_start(std::process::id()).is_some());
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let pid = child.id();
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        // Not reaped: it stays a zombie until `wait`.
        while std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .map(|s| !s.contains(") Z "))
            .unwrap_or(false)
        {
            assert!(std::time::Instant::now() < deadline, "`true` did not end");
            std::thread::sleep(Duration::from_millis(10));
        }
        assert_eq!(process_start(pid), None, "a zombie counted as alive");
        child.wait().unwrap();
        assert_eq!(process_start(pid), None);
    }

    fn scratch(name: &str) -> PathBuf {
        let p = std::env::temp_dir().join(format!("jobnet-state-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        p.join("state.db")
    }

    fn start(s: &SqliteStore, job: &str, vlan: u64) -> Result<Decision, BeginError> {
        let id = JobId::parse(job).unwrap();
        s.begin(&id, &mut |_| {
            Ok(Decision::Start(NewJob {
                job: JobId::parse(job).unwrap(),
                vlan: Some(VlanId::new(vlan).unwrap()),
                pkey: None,
                nodes: vec!["n1".into()],
                gateway: None,
                topology: "t".into(),
            }))
        })
    }

    #[test]
    fn device_slots_are_bounded() {
        let path = scratch("slots");
        let s = SqliteStore::open(&path).unwrap();
        let wait = Duration::from_millis(50);
        let a = s.device_slot("sw1", 2, wait).unwrap();
        let _b = s.device_slot("sw1", 2, wait).unwrap();
        let e = s.device_slot("sw1", 2, wait).unwrap_err();
        assert!(
            e.to_string()
                .contains("all 2 session slots of sw1 stayed busy"),
            "{e}"
        );
        assert!(
            s.device_slot("sw2", 2, wait).is_ok(),
            "other devices are independent"
        );
        drop(a);
        assert!(
            s.device_slot("sw1", 2, wait).is_ok(),
            "a freed slot is reused"
        );
        let _ = std::fs::remove_dir_all(path.parent().unwrap());
    }

    #[test]
    fn creates_private_versioned_file() {
        let path = scratch("mode");
        let s = SqliteStore::open(&path).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        assert_eq!(
            std::fs::metadata(path.parent().unwrap())
                .unwrap()
                .permissions()
                .mode()
                & 0o777,
            0o700
        );
        drop(s);
        let conn = Connection::open(&path).unwrap();
        conn.execute("UPDATE meta SET value='99' WHERE key='schema_version'", [])
            .unwrap();
        drop(conn);
        assert!(matches!(
            SqliteStore::open(&path),
            Err(StateError::NewerSchema { found: 99, .. })
        ));
    }

    #[test]
    fn an_allocation_has_one_holder() {
        let s = SqliteStore::open(&scratch("alloc")).unwrap();
        start(&s, "a", 10).unwrap();
        start(&s, "a", 10).expect("re-allocating one's own value is fine");
        let e = start(&s, "b", 10).unwrap_err();
        assert!(
            e.to_string()
                .contains("vlan 10 is already allocated to job a"),
            "{e}"
        );
        s.release(&JobId::parse("a").unwrap(), "done").unwrap();
        assert!(s.allocations().unwrap().iter().all(|a| a.2 != "a"));
        assert_eq!(
            s.job(&JobId::parse("a").unwrap()).unwrap().unwrap().state,
            JobState::Down
        );
    }

    #[test]
    fn knows_whether_an_owner_runs() {
        let s = SqliteStore::open(&scratch("owner")).unwrap();
        let me = s.owner();
        assert!(s.alive(&me));
        assert!(
            !s.alive(&Owner {
                start: me.start + 1,
                ..me
            }),
            "a reused pid is not the owner"
        );
    }

    /// A device's intents in one write, in order, with their sequence numbers; their outcomes
    /// in one write; both as a fresh reader of the file sees them.
    #[test]
    fn intents_and_outcomes_are_written_together() {
        let path = scratch("many");
        let s = SqliteStore::open(&path).unwrap();
        start(&s, "7", 10).unwrap();
        let id = JobId::parse("7").unwrap();
        let dev = DeviceRecord {
            name: "sw1".into(),
            driver: "cisco-ios".into(),
            address: "192.0.2.1".into(),
            credentials: None,
            legacy: false,
        };
        let items: Vec<(JournalOp, Vec<String>, Vec<String>)> = (10..13)
            .map(|v| {
                let op = JournalOp::Device(Op::CreateVlan {
                    vlan: VlanId::new(v).unwrap(),
                    name: format!("x{v}"),
                });
                (op, vec![format!("vlan {v}")], vec![format!("no vlan {v}")])
            })
            .collect();
        s.journal_intent(&id, &dev, 0, &items[0].0, &[], &[])
            .unwrap();
        let ids = s.journal_intents(&id, &dev, 1, &items).unwrap();
        assert_eq!(ids.len(), 3);
        assert!(ids.windows(2).all(|w| w[0] < w[1]), "{ids:?}");
        s.journal_set_many(&[
            (ids[0], JournalStatus::Done, "ok".into()),
            (ids[2], JournalStatus::Failed, "% Invalid input".into()),
        ])
        .unwrap();
        let again = SqliteStore::open(&path).unwrap();
        let rows = again.journal(&id).unwrap();
        let got: Vec<(i64, String, JournalStatus, String)> = rows
            .iter()
            .map(|r| (r.seq, r.apply.join(";"), r.status, r.message.clone()))
            .collect();
        assert_eq!(
            got,
            [
                (0, String::new(), JournalStatus::Intent, String::new()),
                (1, "vlan 10".into(), JournalStatus::Done, "ok".into()),
                (2, "vlan 11".into(), JournalStatus::Intent, String::new()),
                (
                    3,
                    "vlan 12".into(),
                    JournalStatus::Failed,
                    "% Invalid input".into()
                ),
            ]
        );
        assert_eq!(rows[3].undo, ["no vlan 12"]);
    }

    /// A damaged row is an error that names it, never a quiet default.
    #[test]
    fn corrupt_rows_are_errors_naming_the_row() {
        let path = scratch("corrupt");
        let s = SqliteStore::open(&path).unwrap();
        start(&s, "7", 10).unwrap();
        let id = JobId::parse("7").unwrap();
        let dev = DeviceRecord {
            name: "sw1".into(),
            driver: "arista-eos".into(),
            address: "192.0.2.1".into(),
            credentials: None,
            legacy: false,
        };
        let op = JournalOp::Device(Op::CreateVlan {
            vlan: VlanId::new(10).unwrap(),
            name: "x".into(),
        });
        let row = s
            .journal_intent(
                &id,
                &dev,
                0,
                &op,
                &["vlan 10".into()],
                &["no vlan 10".into()],
            )
            .unwrap();
        assert_eq!(s.journal(&id).unwrap()[0].undo, ["no vlan 10"]);
        let conn = Connection::open(&path).unwrap();
        conn.execute(
            "UPDATE journal SET undo='[\"no vlan 10\"' WHERE id=?1",
            [row],
        )
        .unwrap();
        let e = s.journal(&id).unwrap_err().to_string();
        assert!(
            e.contains(&format!(
                "journal row {row} of job 7 is corrupt: its undo lines"
            )),
            "{e}"
        );
        conn.execute("UPDATE jobs SET state='upp' WHERE job='7'", [])
            .unwrap();
        let e = s.jobs().unwrap_err().to_string();
        assert!(
            e.contains("job \"7\" is corrupt") && e.contains("`upp` is not a known JobState"),
            "{e}"
        );
        conn.execute(
            "UPDATE jobs SET state='up', vlan=NULL, nodes='oops' WHERE job='7'",
            [],
        )
        .unwrap();
        let e = s.jobs().unwrap_err().to_string();
        assert!(e.contains("its node list"), "{e}");
    }
}
