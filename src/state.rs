//! jobnet's state: jobs, their VLAN/PKey allocations, and a write-ahead journal of device
//! operations, in one SQLite file shared by every jobnet process on the host.
//!
//! Many prolog processes start at once, so allocation runs in a `BEGIN IMMEDIATE` transaction
//! (one writer at a time, others wait up to the busy timeout) and `allocations` has a primary key
//! on (kind, value): two jobs can never hold the same VLAN or PKey. WAL mode lets readers
//! (`jobnet status`) run beside writers; `synchronous=NORMAL` keeps every committed row across a
//! killed process (only a power loss may drop the last transactions). The file is created with
//! mode 0600 in a 0700 directory; the schema carries a version number.
//!
//! The journal is written before a device is touched (`intent`) and after (`done`, `failed`);
//! undo marks rows `undone` or `undo-failed`. Each row holds the exact apply and undo lines, so a
//! job can be reversed even if the topology file changed since.
//!
//! Two tables outlive single jobs: `port_restrictions` remembers node ports that allowed every
//! VLAN before jobnet made their list explicit (`open_ports: restrict`), so the last job leaving
//! such a port gives it back; `abandoned` keeps what `down --force` gave up on, for audits.

use rusqlite::{params, Connection, OptionalExtension, TransactionBehavior};
use serde::Serialize;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

pub const SCHEMA_VERSION: i64 = 2;
const BUSY_TIMEOUT: Duration = Duration::from_secs(60);

#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error("state file {path}: {source}; check --state / $JOBNET_STATE and that this user may write there")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("state file {path}: {source}")]
    Db {
        path: String,
        #[source]
        source: rusqlite::Error,
    },
    #[error("state file {path} has schema version {found}, newer than this jobnet ({SCHEMA_VERSION}); upgrade jobnet")]
    NewerSchema { path: String, found: i64 },
}

/// A job as recorded.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct JobRow {
    pub job: String,
    /// applying | up | rolling-back | tearing-down | failed-rollback | down
    pub state: String,
    pub vlan: Option<u16>,
    pub pkey: Option<u16>,
    pub nodes: Vec<String>,
    pub gateway: Option<String>,
    pub topology: String,
    pub pid: Option<u32>,
    #[serde(skip)]
    pub pid_start: Option<u64>,
    pub message: String,
    pub created: f64,
    pub updated: f64,
}

/// One journaled device operation.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct JournalRow {
    pub id: i64,
    pub job: String,
    pub device: String,
    pub driver: String,
    pub address: String,
    pub credentials: Option<String>,
    pub legacy: bool,
    pub seq: i64,
    pub op: String,
    pub apply: Vec<String>,
    pub undo: Vec<String>,
    /// intent | done | failed | undone | undo-failed
    pub status: String,
    pub message: String,
}

/// The owner of a running change: pid and its start time (so a reused pid is not mistaken).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Owner {
    pub pid: u32,
    pub start: u64,
}

impl Owner {
    pub fn current() -> Self {
        let pid = std::process::id();
        Owner {
            pid,
            start: process_start(pid).unwrap_or(0),
        }
    }
}

/// Start time of a process in clock ticks since boot, from /proc (field 22 of stat).
pub fn process_start(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) is in parentheses and may contain spaces.
    let after = &stat[stat.rfind(')')? + 2..];
    after.split_whitespace().nth(19)?.parse().ok()
}

/// Whether the recorded owner is still running.
pub fn alive(pid: Option<u32>, start: Option<u64>) -> bool {
    match (pid, start) {
        (Some(p), Some(s)) => process_start(p) == Some(s),
        (Some(p), None) => process_start(p).is_some(),
        _ => false,
    }
}

fn now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

/// The state store.
pub struct Store {
    conn: Mutex<Connection>,
    path: PathBuf,
}

impl Store {
    /// Opens (creating if needed) the state file at `path`.
    pub fn open(path: &Path) -> Result<Self, StateError> {
        let p = path.display().to_string();
        let io = |source| StateError::Io {
            path: p.clone(),
            source,
        };
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            if !dir.exists() {
                std::fs::create_dir_all(dir).map_err(io)?;
                std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
                    .map_err(io)?;
            }
        }
        // Create the file ourselves so it never exists with a wider mode.
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .mode(0o600)
            .open(path)
            .map_err(io)?;
        let db = |source| StateError::Db {
            path: p.clone(),
            source,
        };
        let conn = Connection::open(path).map_err(db)?;
        conn.busy_timeout(BUSY_TIMEOUT).map_err(db)?;
        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(db)?;
        conn.pragma_update(None, "synchronous", "NORMAL")
            .map_err(db)?;
        let store = Store {
            conn: Mutex::new(conn),
            path: path.to_path_buf(),
        };
        store.migrate()?;
        Ok(store)
    }

    /// Opens an existing state file for reading; `None` when there is none. Creates nothing
    /// (read-only commands such as `status` and `plan` must not leave a state file behind).
    pub fn open_existing(path: &Path) -> Result<Option<Self>, StateError> {
        match std::fs::metadata(path) {
            Ok(_) => Self::open(path).map(Some),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(source) => Err(StateError::Io {
                path: path.display().to_string(),
                source,
            }),
        }
    }

    fn err(&self, source: rusqlite::Error) -> StateError {
        StateError::Db {
            path: self.path.display().to_string(),
            source,
        }
    }

    fn migrate(&self) -> Result<(), StateError> {
        let mut conn = self.conn.lock().expect("state lock");
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
               reason TEXT NOT NULL, ts REAL NOT NULL);",
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
        match found.and_then(|v| v.parse::<i64>().ok()) {
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
            // Version 1 lacked the two tables created above; nothing else changed.
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

    /// Runs `f` in one `BEGIN IMMEDIATE` transaction: the only writer while it runs.
    pub fn immediate<T, E: From<StateError>>(
        &self,
        f: impl FnOnce(&Tx) -> Result<T, E>,
    ) -> Result<T, E> {
        let mut conn = self.conn.lock().expect("state lock");
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(|e| E::from(self.err(e)))?;
        let out = f(&Tx {
            tx: &tx,
            store: self,
        })?;
        tx.commit().map_err(|e| E::from(self.err(e)))?;
        Ok(out)
    }

    pub fn jobs(&self) -> Result<Vec<JobRow>, StateError> {
        let conn = self.conn.lock().expect("state lock");
        let mut stmt = conn
            .prepare(&format!(
                "SELECT {JOB_COLS} FROM jobs ORDER BY created, job"
            ))
            .map_err(|e| self.err(e))?;
        let rows = stmt.query_map([], job_row).map_err(|e| self.err(e))?;
        rows.collect::<Result<_, _>>().map_err(|e| self.err(e))
    }

    pub fn job(&self, job: &str) -> Result<Option<JobRow>, StateError> {
        let conn = self.conn.lock().expect("state lock");
        conn.query_row(
            &format!("SELECT {JOB_COLS} FROM jobs WHERE job=?1"),
            [job],
            job_row,
        )
        .optional()
        .map_err(|e| self.err(e))
    }

    /// All allocations: (kind, value, job).
    pub fn allocations(&self) -> Result<Vec<(String, u16, String)>, StateError> {
        let conn = self.conn.lock().expect("state lock");
        let mut stmt = conn
            .prepare("SELECT kind, value, job FROM allocations ORDER BY kind, value")
            .map_err(|e| self.err(e))?;
        let rows = stmt
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .map_err(|e| self.err(e))?;
        rows.collect::<Result<_, _>>().map_err(|e| self.err(e))
    }

    pub fn journal(&self, job: &str) -> Result<Vec<JournalRow>, StateError> {
        let conn = self.conn.lock().expect("state lock");
        let mut stmt = conn
            .prepare("SELECT id, job, device, driver, address, credentials, legacy, seq, op, apply, undo, status, message FROM journal WHERE job=?1 ORDER BY id")
            .map_err(|e| self.err(e))?;
        let rows = stmt
            .query_map([job], |r| {
                let list = |i: usize| -> rusqlite::Result<Vec<String>> {
                    let text: String = r.get(i)?;
                    Ok(serde_json::from_str(&text).unwrap_or_default())
                };
                Ok(JournalRow {
                    id: r.get(0)?,
                    job: r.get(1)?,
                    device: r.get(2)?,
                    driver: r.get(3)?,
                    address: r.get(4)?,
                    credentials: r.get(5)?,
                    legacy: r.get(6)?,
                    seq: r.get(7)?,
                    op: r.get(8)?,
                    apply: list(9)?,
                    undo: list(10)?,
                    status: r.get(11)?,
                    message: r.get(12)?,
                })
            })
            .map_err(|e| self.err(e))?;
        rows.collect::<Result<_, _>>().map_err(|e| self.err(e))
    }

    /// Writes the intent to run an operation; returns the row id.
    pub fn journal_intent(
        &self,
        job: &str,
        target: &crate::transport::Target,
        seq: usize,
        op: &str,
        apply: &[String],
        undo: &[String],
    ) -> Result<i64, StateError> {
        let conn = self.conn.lock().expect("state lock");
        conn.execute(
            "INSERT INTO journal(job, device, driver, address, credentials, legacy, seq, op, apply, undo, status, ts) VALUES(?1,?2,?3,?4,?5,?6,?7,?8,?9,?10,'intent',?11)",
            params![job, target.name, target.driver, target.address, target.credentials, target.legacy, seq as i64, op, serde_json::to_string(apply).expect("json"), serde_json::to_string(undo).expect("json"), now()],
        )
        .map_err(|e| self.err(e))?;
        Ok(conn.last_insert_rowid())
    }

    pub fn journal_set(&self, id: i64, status: &str, message: &str) -> Result<(), StateError> {
        let conn = self.conn.lock().expect("state lock");
        conn.execute(
            "UPDATE journal SET status=?2, message=?3, ts=?4 WHERE id=?1",
            params![id, status, message, now()],
        )
        .map_err(|e| self.err(e))?;
        Ok(())
    }

    pub fn set_state(&self, job: &str, state: &str, message: &str) -> Result<(), StateError> {
        let conn = self.conn.lock().expect("state lock");
        conn.execute(
            "UPDATE jobs SET state=?2, message=?3, updated=?4 WHERE job=?1",
            params![job, state, message, now()],
        )
        .map_err(|e| self.err(e))?;
        Ok(())
    }

    /// Marks the job down and frees its VLAN/PKey, in one transaction.
    pub fn release(&self, job: &str, message: &str) -> Result<(), StateError> {
        self.immediate(|tx| {
            tx.exec("DELETE FROM allocations WHERE job=?1", params![job])?;
            tx.exec("UPDATE jobs SET state='down', message=?2, pid=NULL, pid_start=NULL, updated=?3 WHERE job=?1", params![job, message, now()])?;
            Ok::<_, StateError>(())
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// What a node port allowed before jobnet restricted it, if jobnet did.
    pub fn restriction(&self, device: &str, port: &str) -> Result<Option<String>, StateError> {
        let conn = self.conn.lock().expect("state lock");
        conn.query_row(
            "SELECT previous FROM port_restrictions WHERE device=?1 AND port=?2",
            [device, port],
            |r| r.get(0),
        )
        .optional()
        .map_err(|e| self.err(e))
    }

    /// Records that jobnet restricted a port that allowed `previous` (kept if already recorded).
    pub fn restrict(&self, device: &str, port: &str, previous: &str) -> Result<(), StateError> {
        let conn = self.conn.lock().expect("state lock");
        conn.execute(
            "INSERT INTO port_restrictions(device, port, previous, since) VALUES(?1,?2,?3,?4) ON CONFLICT(device, port) DO NOTHING",
            params![device, port, previous, now()],
        )
        .map_err(|e| self.err(e))?;
        Ok(())
    }

    /// Forgets a restriction: the port got its previous list back.
    pub fn unrestrict(&self, device: &str, port: &str) -> Result<(), StateError> {
        let conn = self.conn.lock().expect("state lock");
        conn.execute(
            "DELETE FROM port_restrictions WHERE device=?1 AND port=?2",
            [device, port],
        )
        .map_err(|e| self.err(e))?;
        Ok(())
    }

    /// Records journal rows given up by `down --force`, and marks them `abandoned`.
    pub fn abandon(&self, rows: &[JournalRow], reason: &str) -> Result<(), StateError> {
        self.immediate(|tx| {
            for r in rows {
                tx.exec(
                    "INSERT INTO abandoned(job, device, address, apply, undo, reason, ts) VALUES(?1,?2,?3,?4,?5,?6,?7)",
                    params![r.job, r.device, r.address, serde_json::to_string(&r.apply).expect("json"), serde_json::to_string(&r.undo).expect("json"), reason, now()],
                )?;
                tx.exec(
                    "UPDATE journal SET status='abandoned', message=?2, ts=?3 WHERE id=?1",
                    params![r.id, reason, now()],
                )?;
            }
            Ok::<_, StateError>(())
        })
    }

    /// Everything ever abandoned: (job, device, address, undo lines, reason, time).
    pub fn abandoned(&self) -> Result<Vec<Abandoned>, StateError> {
        let conn = self.conn.lock().expect("state lock");
        let mut stmt = conn
            .prepare("SELECT job, device, address, undo, reason, ts FROM abandoned ORDER BY id")
            .map_err(|e| self.err(e))?;
        let rows = stmt
            .query_map([], |r| {
                let undo: String = r.get(3)?;
                Ok(Abandoned {
                    job: r.get(0)?,
                    device: r.get(1)?,
                    address: r.get(2)?,
                    undo: serde_json::from_str(&undo).unwrap_or_else(|_| vec![undo]),
                    reason: r.get(4)?,
                    time: r.get(5)?,
                })
            })
            .map_err(|e| self.err(e))?;
        rows.collect::<Result<_, _>>().map_err(|e| self.err(e))
    }
}

/// An operation `down --force` gave up on: still configured on the device, as far as jobnet knows.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Abandoned {
    pub job: String,
    pub device: String,
    pub address: String,
    /// The lines that would undo it, to run by hand.
    pub undo: Vec<String>,
    pub reason: String,
    pub time: f64,
}

const JOB_COLS: &str =
    "job, state, vlan, pkey, nodes, gateway, topology, pid, pid_start, message, created, updated";

fn job_row(r: &rusqlite::Row) -> rusqlite::Result<JobRow> {
    let nodes: String = r.get(4)?;
    Ok(JobRow {
        job: r.get(0)?,
        state: r.get(1)?,
        vlan: r.get(2)?,
        pkey: r.get(3)?,
        nodes: serde_json::from_str(&nodes).unwrap_or_default(),
        gateway: r.get(5)?,
        topology: r.get(6)?,
        pid: r.get(7)?,
        pid_start: r.get::<_, Option<i64>>(8)?.map(|v| v as u64),
        message: r.get(9)?,
        created: r.get(10)?,
        updated: r.get(11)?,
    })
}

/// The open transaction of [`Store::immediate`].
pub struct Tx<'a> {
    tx: &'a rusqlite::Transaction<'a>,
    store: &'a Store,
}

impl Tx<'_> {
    fn exec(&self, sql: &str, p: impl rusqlite::Params) -> Result<usize, StateError> {
        self.tx.execute(sql, p).map_err(|e| self.store.err(e))
    }

    pub fn job(&self, job: &str) -> Result<Option<JobRow>, StateError> {
        self.tx
            .query_row(
                &format!("SELECT {JOB_COLS} FROM jobs WHERE job=?1"),
                [job],
                job_row,
            )
            .optional()
            .map_err(|e| self.store.err(e))
    }

    /// Jobs that are not down.
    pub fn active_jobs(&self) -> Result<Vec<JobRow>, StateError> {
        let mut stmt = self
            .tx
            .prepare(&format!(
                "SELECT {JOB_COLS} FROM jobs WHERE state != 'down'"
            ))
            .map_err(|e| self.store.err(e))?;
        let rows = stmt.query_map([], job_row).map_err(|e| self.store.err(e))?;
        rows.collect::<Result<_, _>>()
            .map_err(|e| self.store.err(e))
    }

    /// Records a job as `state` owned by `owner`, replacing an earlier row of the same id.
    #[allow(clippy::too_many_arguments)]
    pub fn put_job(
        &self,
        job: &str,
        state: &str,
        vlan: Option<u16>,
        pkey: Option<u16>,
        nodes: &[String],
        gateway: Option<&str>,
        topology: &str,
        owner: Owner,
    ) -> Result<(), StateError> {
        let t = now();
        self.exec(
            "INSERT INTO jobs(job, state, vlan, pkey, nodes, gateway, topology, pid, pid_start, message, created, updated)
             VALUES(?1,?2,?3,?4,?5,?6,?7,?8,?9,'',?10,?10)
             ON CONFLICT(job) DO UPDATE SET state=?2, vlan=?3, pkey=?4, nodes=?5, gateway=?6, topology=?7, pid=?8, pid_start=?9, message='', updated=?10",
            params![job, state, vlan, pkey, serde_json::to_string(nodes).expect("json"), gateway, topology, owner.pid, owner.start as i64, t],
        )?;
        Ok(())
    }

    /// Takes over a job: new state and owner.
    pub fn claim(&self, job: &str, state: &str, owner: Owner) -> Result<(), StateError> {
        self.exec(
            "UPDATE jobs SET state=?2, pid=?3, pid_start=?4, updated=?5 WHERE job=?1",
            params![job, state, owner.pid, owner.start as i64, now()],
        )?;
        Ok(())
    }

    /// Allocates `value` of `kind` to `job`; false if another job holds it.
    pub fn allocate(&self, kind: &str, value: u16, job: &str) -> Result<bool, StateError> {
        let n = self.exec("INSERT INTO allocations(kind, value, job) VALUES(?1,?2,?3) ON CONFLICT(kind, value) DO NOTHING", params![kind, value, job])?;
        if n == 1 {
            return Ok(true);
        }
        let holder: String = self
            .tx
            .query_row(
                "SELECT job FROM allocations WHERE kind=?1 AND value=?2",
                params![kind, value],
                |r| r.get(0),
            )
            .map_err(|e| self.store.err(e))?;
        Ok(holder == job)
    }

    /// Every allocation: (kind, value, job).
    pub fn allocations(&self) -> Result<Vec<(String, u16, String)>, StateError> {
        let mut stmt = self
            .tx
            .prepare("SELECT kind, value, job FROM allocations")
            .map_err(|e| self.store.err(e))?;
        let rows = stmt
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .map_err(|e| self.store.err(e))?;
        rows.collect::<Result<_, _>>()
            .map_err(|e| self.store.err(e))
    }

    /// Forgets a job's earlier journal (rows of `abandoned` keep what `down --force` gave up).
    pub fn clear_journal(&self, job: &str) -> Result<(), StateError> {
        self.exec("DELETE FROM journal WHERE job=?1", params![job])?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch(name: &str) -> PathBuf {
        let p = std::env::temp_dir().join(format!("jobnet-state-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        p.join("state.db")
    }

    #[test]
    fn creates_private_versioned_file() {
        let path = scratch("mode");
        let s = Store::open(&path).unwrap();
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
            Store::open(&path),
            Err(StateError::NewerSchema { found: 99, .. })
        ));
    }

    #[test]
    fn an_allocation_has_one_holder() {
        let s = Store::open(&scratch("alloc")).unwrap();
        let me = Owner::current();
        s.immediate(|tx| {
            tx.put_job("a", "applying", Some(10), None, &[], None, "t", me)?;
            assert!(tx.allocate("vlan", 10, "a")?);
            assert!(
                tx.allocate("vlan", 10, "a")?,
                "re-allocating one's own value is fine"
            );
            assert!(!tx.allocate("vlan", 10, "b")?);
            Ok::<_, StateError>(())
        })
        .unwrap();
        s.release("a", "done").unwrap();
        assert!(s.allocations().unwrap().is_empty());
        assert_eq!(s.job("a").unwrap().unwrap().state, "down");
    }

    #[test]
    fn knows_whether_an_owner_runs() {
        let me = Owner::current();
        assert!(alive(Some(me.pid), Some(me.start)));
        assert!(
            !alive(Some(me.pid), Some(me.start + 1)),
            "a reused pid is not the owner"
        );
        assert!(!alive(None, None));
    }
}
