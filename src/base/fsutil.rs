//! Replacing files safely and locking them: one way to do each, used everywhere.
//!
//! [`replace_file`] writes a temporary file in the same directory (with the old file's mode and
//! owner, or the given defaults), fsyncs it, renames it over the file and fsyncs the directory:
//! a reader (OpenSM re-reading partitions.conf on any heavy sweep) sees the old or the new file,
//! never half of one, and a crash keeps one of them. [`FileLock`] is an exclusive `flock`-style
//! lock on a lock file, waited for with a time limit; the kernel releases it when the process
//! dies, so a killed jobnet never leaves a lock behind.
//!
//! Files root creates in a directory that belongs to another user (the service user the batch
//! system's hooks run as) are given to that user ([`dir_owner`]): an administrator running jobnet
//! as root must never leave a lock or counter file the hooks cannot open.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// An exclusive lock, held until dropped.
#[derive(Debug)]
pub struct FileLock {
    _file: File,
    pub path: PathBuf,
}

/// Why a lock was not obtained.
#[derive(Debug, thiserror::Error)]
pub enum LockError {
    #[error("{path}: held by another jobnet process for {secs} s")]
    Busy { path: String, secs: u64 },
    #[error("all {slots} session slots of {device} stayed busy for {secs} s (other jobnet processes hold them; lock files in {dir}); raise --sessions-per-device or --wait")]
    SlotsBusy {
        device: String,
        slots: usize,
        secs: u64,
        dir: String,
    },
    #[error("{path}: cannot lock: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
}

/// Whom a file root creates in `dir` must belong to: the directory's owner when that is not root
/// (`None` when not running as root, or the directory is root's).
pub fn dir_owner(dir: &Path) -> Option<(u32, u32)> {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        return None;
    }
    let dir = if dir.as_os_str().is_empty() {
        Path::new(".")
    } else {
        dir
    };
    let m = std::fs::metadata(dir).ok()?;
    (m.uid() != 0).then_some((m.uid(), m.gid()))
}

/// Gives the file `f` at `path` to its directory's owner (see [`dir_owner`]).
fn give_to_dir_owner(f: &File, path: &Path) -> std::io::Result<()> {
    if let Some((uid, gid)) = path.parent().and_then(dir_owner) {
        if f.metadata()?.uid() != uid {
            std::os::unix::fs::fchown(f, Some(uid), Some(gid))?;
        }
    }
    Ok(())
}

impl FileLock {
    /// One attempt: `None` when another process holds it.
    pub fn try_acquire(path: &Path) -> Result<Option<Self>, LockError> {
        let io = |source| LockError::Io {
            path: path.display().to_string(),
            source,
        };
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .mode(0o600)
            .open(path)
            .map_err(io)?;
        give_to_dir_owner(&file, path).map_err(io)?;
        match file.try_lock() {
            Ok(()) => Ok(Some(FileLock {
                _file: file,
                path: path.to_path_buf(),
            })),
            Err(std::fs::TryLockError::WouldBlock) => Ok(None),
            Err(std::fs::TryLockError::Error(e)) => Err(io(e)),
        }
    }

    /// Waits up to `wait` for the lock on `path` (created, mode 0600, if missing).
    pub fn acquire(path: &Path, wait: Duration) -> Result<Self, LockError> {
        let start = Instant::now();
        loop {
            if let Some(l) = Self::try_acquire(path)? {
                return Ok(l);
            }
            if start.elapsed() >= wait {
                return Err(LockError::Busy {
                    path: path.display().to_string(),
                    secs: wait.as_secs(),
                });
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}

/// Atomically replaces `path` with `bytes`, keeping the current file's mode and owner (a new file
/// gets `default_mode` and, when root writes it, its directory's owner).
pub fn replace_file(path: &Path, bytes: &[u8], default_mode: u32) -> std::io::Result<()> {
    let meta = std::fs::metadata(path).ok();
    let mode = meta
        .as_ref()
        .map_or(default_mode, |m| m.permissions().mode() & 0o7777);
    let owner = match &meta {
        Some(m) => Some((m.uid(), m.gid())),
        None => path.parent().and_then(dir_owner),
    };
    replace_with(path, bytes, mode, owner)
}

/// Atomically replaces `path` with `bytes`, with the given mode and owner.
pub fn replace_with(
    path: &Path,
    bytes: &[u8],
    mode: u32,
    owner: Option<(u32, u32)>,
) -> std::io::Result<()> {
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
            .open(&tmp)?;
        f.set_permissions(std::fs::Permissions::from_mode(mode))?;
        if let Some((uid, gid)) = owner {
            std::os::unix::fs::fchown(&f, Some(uid), Some(gid))?;
        }
        f.write_all(bytes)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)?;
        let dir = path
            .parent()
            .filter(|d| !d.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        File::open(dir).and_then(|d| d.sync_all())
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replaces_keeping_mode_and_locks_with_a_limit() {
        let dir = std::env::temp_dir().join(format!("jobnet-fsutil-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let f = dir.join("f");
        replace_file(&f, b"one", 0o640).unwrap();
        assert_eq!(
            std::fs::metadata(&f).unwrap().permissions().mode() & 0o777,
            0o640
        );
        std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o600)).unwrap();
        replace_file(&f, b"two", 0o644).unwrap();
        assert_eq!(std::fs::read(&f).unwrap(), b"two");
        assert_eq!(
            std::fs::metadata(&f).unwrap().permissions().mode() & 0o777,
            0o600,
            "mode kept"
        );
        assert_eq!(
            std::fs::read_dir(&dir).unwrap().count(),
            1,
            "no temporary file left"
        );
        let l = FileLock::acquire(&dir.join("l"), Duration::from_millis(10)).unwrap();
        let e = FileLock::acquire(&dir.join("l"), Duration::from_millis(30)).unwrap_err();
        assert!(
            e.to_string().contains("held by another jobnet process"),
            "{e}"
        );
        drop(l);
        assert!(FileLock::try_acquire(&dir.join("l")).unwrap().is_some());
        let _ = std::fs::remove_dir_all(dir);
    }
}
