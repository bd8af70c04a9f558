//! Replacing partitions.conf safely. OpenSM re-reads the file on every heavy sweep (also on traps
//! and link flaps), and drops every custom partition if the text is bad, so:
//!
//! - every change happens under an exclusive lock (a file beside partitions.conf) shared by all
//!   jobnet processes, as read-modify-write: concurrent jobs never overwrite each other's blocks;
//! - a file that is already invalid is refused with the admin's errors, untouched;
//! - the complete new text is checked against OpenSM's grammar before it is written;
//! - the write is atomic: a temporary file in the same directory with the old file's owner and
//!   mode, fsync, rename over the file, fsync of the directory; OpenSM sees the old or the new
//!   file, never half of one;
//! - the previous version is kept as `partitions.conf.jobnet-prev`.

use super::{grammar, ConfFile, RegionError};
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    #[error("{path}: cannot {op}: {source}")]
    Io {
        path: String,
        op: &'static str,
        #[source]
        source: std::io::Error,
    },
    #[error("{path} is invalid, so jobnet will not touch it (OpenSM falls back to its default configuration on such a file); fix it first (`jobnet ib check {path}`):\n{errors}")]
    Invalid { path: String, errors: String },
    #[error("internal error: the new text of {path} fails the OpenSM grammar check, nothing was written:\n{errors}")]
    Generated { path: String, errors: String },
    #[error("partitions.conf: {0}")]
    Region(#[from] RegionError),
    #[error("{path}: another jobnet process held the partitions.conf lock for {secs} s")]
    Busy { path: String, secs: u64 },
}

/// What an update did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Updated {
    /// The text before (`None`: the file did not exist).
    pub old: Option<String>,
    pub new: String,
    /// False when the new text equals the old one (nothing was written).
    pub written: bool,
    /// The write's generation (see [`crate::opensm::reload_coalesced`]); the last one when
    /// nothing was written.
    pub generation: u64,
}

fn io<'a>(path: &'a Path, op: &'static str) -> impl FnOnce(std::io::Error) -> WriteError + 'a {
    move |source| WriteError::Io {
        path: path.display().to_string(),
        op,
        source,
    }
}

fn errors_of(text: &str, path: &str) -> Option<String> {
    let checked = grammar::check(text, path);
    checked
        .diagnostics
        .has_errors()
        .then(|| checked.diagnostics.errors_text())
}

/// The lock file beside `path`.
pub fn lock_path(path: &Path) -> PathBuf {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    path.with_file_name(format!(".{name}.jobnet-lock"))
}

/// The backup of the previous version.
pub fn backup_path(path: &Path) -> PathBuf {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    path.with_file_name(format!("{name}.jobnet-prev"))
}

/// Applies `change` to the current file under the lock and replaces it atomically. `change` gets
/// the parsed file (a new one with OpenSM's default partition written out if none exists) and
/// returns the complete new text.
pub fn update(
    path: &Path,
    wait: Duration,
    change: impl FnOnce(&ConfFile) -> String,
) -> Result<Updated, WriteError> {
    let p = path.display().to_string();
    let lock = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .mode(0o600)
        .open(lock_path(path))
        .map_err(io(path, "create its lock file"))?;
    let start = Instant::now();
    loop {
        match lock.try_lock() {
            Ok(()) => break,
            Err(std::fs::TryLockError::WouldBlock) if start.elapsed() < wait => {
                std::thread::sleep(Duration::from_millis(5))
            }
            Err(std::fs::TryLockError::WouldBlock) => {
                return Err(WriteError::Busy {
                    path: p,
                    secs: wait.as_secs(),
                })
            }
            Err(std::fs::TryLockError::Error(e)) => return Err(io(path, "lock it")(e)),
        }
    }
    let old =
        crate::limits::read_text_if_exists(path, crate::limits::PARTITIONS_CONF).map_err(|e| {
            WriteError::Io {
                path: p.clone(),
                op: "read it",
                source: e.into_io(),
            }
        })?;
    let conf = super::Current::read(old.as_deref(), &p)
        .map_err(|errors| WriteError::Invalid {
            path: p.clone(),
            errors,
        })?
        .conf();
    let new = change(&conf);
    if old.as_deref() == Some(new.as_str()) {
        let generation = crate::opensm::current_generation(path);
        return Ok(Updated {
            old,
            new,
            written: false,
            generation,
        });
    }
    if let Some(errors) = errors_of(&new, &p) {
        return Err(WriteError::Generated { path: p, errors });
    }
    let meta = std::fs::metadata(path).ok();
    let mode = meta
        .as_ref()
        .map_or(0o644, |m| m.permissions().mode() & 0o7777);
    if let Some(text) = &old {
        write_replace(&backup_path(path), text, mode, meta.as_ref())?;
    }
    write_replace(path, &new, mode, meta.as_ref())?;
    let generation = crate::opensm::note_write_locked(path)
        .map_err(|e| io(path, "record the write")(std::io::Error::other(e)))?;
    Ok(Updated {
        old,
        new,
        written: true,
        generation,
    })
}

/// Writes `text` to a temporary file beside `path` (mode, owner as given), fsyncs it, renames it
/// over `path` and fsyncs the directory.
fn write_replace(
    path: &Path,
    text: &str,
    mode: u32,
    owner: Option<&std::fs::Metadata>,
) -> Result<(), WriteError> {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    static SEQ: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let seq = SEQ.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let tmp = path.with_file_name(format!(".{name}.jobnet-tmp-{}-{seq}", std::process::id()));
    let result = (|| {
        let mut f = OpenOptions::new()
            .create(true)
            .truncate(true)
            .write(true)
            .mode(mode)
            .open(&tmp)
            .map_err(io(path, "create a temporary file beside it"))?;
        f.set_permissions(std::fs::Permissions::from_mode(mode))
            .map_err(io(path, "set the temporary file's mode"))?;
        if let Some(m) = owner {
            std::os::unix::fs::fchown(&f, Some(m.uid()), Some(m.gid()))
                .map_err(io(path, "give the temporary file the old owner"))?;
        }
        f.write_all(text.as_bytes())
            .map_err(io(path, "write the temporary file"))?;
        f.sync_all().map_err(io(path, "fsync the temporary file"))?;
        std::fs::rename(&tmp, path).map_err(io(path, "rename the temporary file over it"))?;
        let dir = path
            .parent()
            .filter(|d| !d.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(io(path, "fsync its directory"))
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::partitions::Partition;
    use crate::types::{PKey, PortGuid};

    fn scratch(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("jobnet-pconf-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d.join("partitions.conf")
    }

    fn part(job: &str, pkey: u64) -> Partition {
        Partition {
            job: job.into(),
            name: format!("jobnet_{job}"),
            pkey: PKey::new(pkey).unwrap(),
            ipoib: true,
            flags: vec![],
            members: vec![PortGuid::new(0x100001)],
        }
    }

    #[test]
    fn replaces_atomically_keeping_mode_and_a_backup() {
        let path = scratch("mode");
        let admin = "Default=0x7fff, ipoib : ALL=full;\nstorage=0x10 : 0x100004=full;\n";
        std::fs::write(&path, admin).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o640)).unwrap();
        let u = update(&path, Duration::from_secs(5), |c| {
            c.with_partition(&part("7", 0x1000))
        })
        .unwrap();
        assert!(u.written);
        let now = std::fs::read_to_string(&path).unwrap();
        assert!(now.starts_with(admin) && now.contains("jobnet_7=0x1000"));
        assert_eq!(
            std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o640
        );
        assert_eq!(std::fs::read_to_string(backup_path(&path)).unwrap(), admin);
        let leftovers: Vec<_> = std::fs::read_dir(path.parent().unwrap())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.contains("tmp"))
            .collect();
        assert!(leftovers.is_empty(), "{leftovers:?}");
        // The same change again writes nothing.
        assert!(
            !update(&path, Duration::from_secs(5), |c| c
                .with_partition(&part("7", 0x1000)))
            .unwrap()
            .written
        );
        // Removing the job gives back the admin's bytes exactly.
        update(&path, Duration::from_secs(5), |c| c.without_job("7")).unwrap();
        let back = std::fs::read_to_string(&path).unwrap();
        assert!(back.starts_with(admin));
        assert!(!back.contains("jobnet_7"));
    }

    #[test]
    fn refuses_an_invalid_file_untouched() {
        let path = scratch("invalid");
        let broken = "Default=0x7fff : ALL=full;\nx=0x10 : 0x1\n ;\n";
        std::fs::write(&path, broken).unwrap();
        let e = update(&path, Duration::from_secs(5), |c| {
            c.with_partition(&part("1", 0x1000))
        })
        .unwrap_err();
        assert!(
            e.to_string()
                .contains(":3:2: error: `;` is the first character"),
            "{e}"
        );
        assert_eq!(std::fs::read_to_string(&path).unwrap(), broken);
        assert!(!backup_path(&path).exists());
    }

    #[test]
    fn a_missing_file_gets_the_default_partition_first() {
        let path = scratch("missing");
        let u = update(&path, Duration::from_secs(5), |c| {
            c.with_partition(&part("1", 0x1000))
        })
        .unwrap();
        assert!(u.old.is_none());
        assert!(std::fs::read_to_string(&path)
            .unwrap()
            .starts_with("Default=0x7fff, ipoib : ALL=full;\n# BEGIN jobnet managed"));
    }

    #[test]
    fn concurrent_updates_never_lose_a_job() {
        let path = scratch("concurrent");
        std::fs::write(&path, "Default=0x7fff, ipoib : ALL=full;\n").unwrap();
        std::thread::scope(|s| {
            for i in 0..16u64 {
                let path = &path;
                s.spawn(move || {
                    update(path, Duration::from_secs(30), |c| {
                        c.with_partition(&part(&i.to_string(), 0x1000 + i))
                    })
                    .unwrap()
                });
            }
        });
        let text = std::fs::read_to_string(&path).unwrap();
        let checked = grammar::check(&text, "p");
        assert!(!checked.diagnostics.has_errors());
        assert_eq!(checked.statements.len(), 17, "Default and 16 jobs:\n{text}");
    }
}
