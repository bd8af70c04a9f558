//! Files in directories another user can write, replaced safely and locked: one way to do each,
//! used everywhere.
//!
//! jobnet runs as the batch system's service user (Slurm's `slurm`) in its hooks and as root when
//! an administrator runs it, at boot (`recover`) and in PBS hooks. Root must never be tricked by
//! what the service user planted in the directories it shares with root (the state directory,
//! its `locks/`, the address files, the directory of partitions.conf): a symbolic link, a hard
//! link or a FIFO where jobnet expects its own regular file. So every file jobnet creates or
//! opens there is opened with `O_NOFOLLOW` (a link is refused and named, never followed), without
//! blocking (a FIFO is refused, never waited on), checked on the opened descriptor (a regular file
//! with one link, owned by root, the running user or the owner jobnet gives its files to), and
//! its owner and mode are changed on that descriptor, never by path. Directories are walked the
//! same way ([`Dir`]): each component jobnet creates below a configured directory is opened with
//! `O_NOFOLLOW | O_DIRECTORY` and everything inside is done relative to that descriptor, so
//! swapping a directory for a link in the middle of a write changes nothing outside.
//!
//! [`replace_file`] writes a temporary file in the same directory (created exclusively), fsyncs
//! it, renames it over the file and fsyncs the directory: a reader (OpenSM re-reading
//! partitions.conf on any heavy sweep) sees the old or the new file, never half of one, and a
//! crash keeps one of them. [`FileLock`] is an exclusive `flock`-style lock on a lock file,
//! waited for with a time limit; the kernel releases it when the process dies, so a killed jobnet
//! never leaves a lock behind.
//!
//! Files root creates in a directory that belongs to another user (the service user the batch
//! system's hooks run as) are given to that user ([`dir_owner`]): an administrator running jobnet
//! as root must never leave a lock or counter file the hooks cannot open.

use std::ffi::{CString, OsStr};
use std::fs::File;
use std::io::Write;
use std::os::fd::{AsRawFd, FromRawFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// An exclusive lock, held until dropped.
#[derive(Debug)]
pub struct FileLock {
    _file: File,
    pub path: PathBuf,
}

/// Why a lock was not obtained.
#[derive(Debug, thiserror::Error)]
pub enum LockError {
    #[error("{path}: held by another jobnet process{holder} for {secs} s")]
    Busy {
        path: String,
        secs: u64,
        /// " (pid N: command line)" where the holder could be found.
        holder: String,
    },
    #[error("all {slots} session slots of {device} stayed busy for {secs} s (other jobnet processes hold them; lock files in {dir}); raise the sessions allowed per device or the wait")]
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
    #[error("{path}: interrupted by a signal while waiting for the lock")]
    Interrupted { path: String },
}

impl crate::hint::Hinted for LockError {
    fn hints(&self) -> Vec<crate::hint::Hint> {
        use crate::hint::Hint;
        match self {
            LockError::SlotsBusy { .. } => vec![Hint::SessionsPerDevice, Hint::Wait],
            LockError::Busy { .. } | LockError::Io { .. } | LockError::Interrupted { .. } => {
                vec![]
            }
        }
    }
}

/// The effective user id (0: root).
pub fn euid() -> u32 {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() }
}

/// Whom a file root creates in `dir` must belong to: the directory's owner when that is not root
/// (`None` when not running as root, or the directory is root's).
pub fn dir_owner(dir: &Path) -> Option<(u32, u32)> {
    if euid() != 0 {
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

fn cstring(name: &OsStr) -> std::io::Result<CString> {
    CString::new(name.as_bytes()).map_err(|_| {
        std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            format!("{}: a NUL byte in a file name", name.to_string_lossy()),
        )
    })
}

fn refused(msg: String) -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::InvalidInput, msg)
}

/// A symbolic link where jobnet expects its own file or directory: refused, with its target.
fn link_refused(path: &Path) -> std::io::Error {
    let to = std::fs::read_link(path)
        .map(|t| format!(" (to {})", t.display()))
        .unwrap_or_default();
    refused(format!(
        "{} is a symbolic link{to}; jobnet never follows a link where it keeps its own files (another user may have planted it): remove it and run again",
        path.display()
    ))
}

fn kind_of(m: &std::fs::Metadata) -> &'static str {
    use std::os::unix::fs::FileTypeExt;
    let t = m.file_type();
    if t.is_dir() {
        "a directory"
    } else if t.is_symlink() {
        "a symbolic link"
    } else if t.is_fifo() {
        "a FIFO"
    } else if t.is_socket() {
        "a socket"
    } else if t.is_block_device() || t.is_char_device() {
        "a device"
    } else {
        "not a regular file"
    }
}

/// Errs (naming what is there) unless `m`, the entry at `path` itself, is a regular file.
fn not_regular(path: &Path, m: &std::fs::Metadata) -> std::io::Result<()> {
    if m.file_type().is_file() {
        Ok(())
    } else if m.file_type().is_symlink() {
        Err(link_refused(path))
    } else {
        Err(refused(format!(
            "{} is {}, not a regular file: remove it and run again",
            path.display(),
            kind_of(m)
        )))
    }
}

/// Errs unless what is at `path` (the entry itself, never followed) is a regular file or
/// nothing: for a file jobnet is about to replace beside one it changes, checked before any
/// change so a planted link or FIFO stops the update with nothing written.
pub fn regular_or_missing(path: &Path) -> std::io::Result<()> {
    match std::fs::symlink_metadata(path) {
        Ok(m) => not_regular(path, &m),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
    }
}

/// Checks an opened file: a regular file with one link (never a FIFO, device, or a hard link to
/// a file elsewhere).
fn verify_regular(f: &File, path: &Path) -> std::io::Result<std::fs::Metadata> {
    let m = f.metadata()?;
    if !m.file_type().is_file() {
        return Err(refused(format!(
            "{} is {}, not a regular file jobnet wrote: remove it and run again",
            path.display(),
            kind_of(&m)
        )));
    }
    if m.nlink() > 1 {
        return Err(refused(format!(
            "{} has {} hard links; jobnet only uses files it created itself (one link): remove it and run again",
            path.display(),
            m.nlink()
        )));
    }
    Ok(m)
}

/// Gives `f` to `owner` (on the descriptor), when that is not already its owner.
fn give(f: &File, owner: Option<(u32, u32)>) -> std::io::Result<()> {
    if let Some((uid, gid)) = owner {
        let m = f.metadata()?;
        if m.uid() != uid || m.gid() != gid {
            std::os::unix::fs::fchown(f, Some(uid), Some(gid))?;
        }
    }
    Ok(())
}

/// A directory, opened once; everything jobnet does inside it is relative to the descriptor.
#[derive(Debug)]
pub struct Dir {
    file: File,
    pub path: PathBuf,
}

impl Dir {
    /// Opens the directory `path` as configured (links in it are the administrator's and are
    /// followed).
    pub fn open(path: &Path) -> std::io::Result<Dir> {
        let path = if path.as_os_str().is_empty() {
            Path::new(".")
        } else {
            path
        };
        let c = cstring(path.as_os_str())?;
        // SAFETY: c is a valid NUL-terminated string; the result is checked.
        let fd = unsafe {
            libc::open(
                c.as_ptr(),
                libc::O_RDONLY | libc::O_DIRECTORY | libc::O_CLOEXEC,
            )
        };
        if fd < 0 {
            return Err(std::io::Error::last_os_error());
        }
        // SAFETY: fd is a fresh descriptor we own.
        let file = unsafe { File::from_raw_fd(fd) };
        Ok(Dir {
            file,
            path: path.to_path_buf(),
        })
    }

    /// Opens the configured directory `path`, creating it (and its parents) with `mode` and
    /// `owner` when missing.
    pub fn ensure(path: &Path, mode: u32, owner: Option<(u32, u32)>) -> std::io::Result<Dir> {
        match Dir::open(path) {
            Ok(d) => Ok(d),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let parent = path
                    .parent()
                    .filter(|p| !p.as_os_str().is_empty())
                    .unwrap_or(Path::new("."));
                std::fs::create_dir_all(parent)?;
                let name = path
                    .file_name()
                    .ok_or_else(|| refused(format!("{}: not a directory name", path.display())))?;
                let d = Dir::open(parent)?.sub(name, mode, owner, true)?;
                Ok(Dir {
                    file: d.file,
                    path: path.to_path_buf(),
                })
            }
            Err(e) => Err(e),
        }
    }

    fn at(&self, name: &OsStr) -> PathBuf {
        self.path.join(name)
    }

    fn openat(&self, name: &OsStr, flags: i32, mode: u32) -> std::io::Result<File> {
        let c = cstring(name)?;
        // SAFETY: valid descriptor and NUL-terminated name; the result is checked.
        let fd = unsafe {
            libc::openat(
                self.file.as_raw_fd(),
                c.as_ptr(),
                flags | libc::O_NOFOLLOW | libc::O_CLOEXEC,
                mode as libc::c_uint,
            )
        };
        if fd < 0 {
            let e = std::io::Error::last_os_error();
            return Err(if e.raw_os_error() == Some(libc::ELOOP) {
                link_refused(&self.at(name))
            } else {
                e
            });
        }
        // SAFETY: fd is a fresh descriptor we own.
        Ok(unsafe { File::from_raw_fd(fd) })
    }

    /// What is at `name`, the entry itself (a link is not followed); `None` when nothing is.
    pub fn entry(&self, name: &OsStr) -> std::io::Result<Option<std::fs::Metadata>> {
        match std::fs::symlink_metadata(self.fd_path().join(name)) {
            Ok(m) => Ok(Some(m)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// The descriptor's own path (/proc/self/fd/N): resolves to this very directory even if
    /// its name was swapped since it was opened.
    fn fd_path(&self) -> PathBuf {
        PathBuf::from(format!("/proc/self/fd/{}", self.file.as_raw_fd()))
    }

    /// The subdirectory `name`, created with `mode` and `owner` when missing (`always`: also set
    /// on an existing one). A link there is refused, never followed.
    pub fn sub(
        &self,
        name: &OsStr,
        mode: u32,
        owner: Option<(u32, u32)>,
        always: bool,
    ) -> std::io::Result<Dir> {
        let c = cstring(name)?;
        // SAFETY: valid descriptor and NUL-terminated name.
        let made = unsafe { libc::mkdirat(self.file.as_raw_fd(), c.as_ptr(), mode) } == 0;
        if !made {
            let e = std::io::Error::last_os_error();
            if e.raw_os_error() != Some(libc::EEXIST) {
                return Err(e);
            }
        }
        let file = self
            .openat(name, libc::O_RDONLY | libc::O_DIRECTORY, 0)
            .map_err(|e| self.not_dir(name, e))?;
        if made || always {
            file.set_permissions(std::fs::Permissions::from_mode(mode))?;
            give(&file, owner)?;
        }
        Ok(Dir {
            file,
            path: self.at(name),
        })
    }

    /// `O_NOFOLLOW | O_DIRECTORY` on a link fails with ENOTDIR: say what is there.
    fn not_dir(&self, name: &OsStr, e: std::io::Error) -> std::io::Error {
        if e.raw_os_error() != Some(libc::ENOTDIR) {
            return e;
        }
        match self.entry(name) {
            Ok(Some(m)) if m.file_type().is_symlink() => link_refused(&self.at(name)),
            Ok(Some(m)) => refused(format!(
                "{} is {}, not a directory: remove it and run again",
                self.at(name).display(),
                kind_of(&m)
            )),
            _ => e,
        }
    }

    /// The existing subdirectory `name` (`None` when missing); a link there is refused.
    pub fn child(&self, name: &OsStr) -> std::io::Result<Option<Dir>> {
        match self
            .openat(name, libc::O_RDONLY | libc::O_DIRECTORY, 0)
            .map_err(|e| self.not_dir(name, e))
        {
            Ok(file) => Ok(Some(Dir {
                file,
                path: self.at(name),
            })),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Opens (creating with `mode` and `owner` if missing, when `create`) the regular file
    /// `name` for reading and writing: a link, FIFO, device or hard link there is refused.
    pub fn open_file(
        &self,
        name: &OsStr,
        create: bool,
        mode: u32,
        owner: Option<(u32, u32)>,
    ) -> std::io::Result<File> {
        let flags = libc::O_RDWR | libc::O_NONBLOCK | if create { libc::O_CREAT } else { 0 };
        let f = self.openat(name, flags, mode)?;
        verify_regular(&f, &self.at(name))?;
        give(&f, owner)?;
        Ok(f)
    }

    /// Reads the regular file `name` (at most `limit` bytes); `None` when it does not exist.
    /// A link or anything but a regular file is refused, never read.
    pub fn read(&self, name: &OsStr, limit: u64) -> std::io::Result<Option<Vec<u8>>> {
        use std::io::Read;
        let f = match self.openat(name, libc::O_RDONLY | libc::O_NONBLOCK, 0) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e),
        };
        let m = f.metadata()?;
        if !m.file_type().is_file() {
            return Err(refused(format!(
                "{} is {}, not a regular file",
                self.at(name).display(),
                kind_of(&m)
            )));
        }
        let mut buf = Vec::new();
        f.take(limit + 1).read_to_end(&mut buf)?;
        if buf.len() as u64 > limit {
            return Err(refused(format!(
                "{} is larger than {limit} bytes",
                self.at(name).display()
            )));
        }
        Ok(Some(buf))
    }

    /// Removes the entry `name` (a link itself, never its target); missing is fine.
    pub fn remove(&self, name: &OsStr) -> std::io::Result<()> {
        let c = cstring(name)?;
        // SAFETY: valid descriptor and NUL-terminated name.
        if unsafe { libc::unlinkat(self.file.as_raw_fd(), c.as_ptr(), 0) } != 0 {
            let e = std::io::Error::last_os_error();
            if e.kind() != std::io::ErrorKind::NotFound {
                return Err(e);
            }
        }
        Ok(())
    }

    /// Atomically replaces the file `name` with `bytes`, with the given mode and owner: a
    /// temporary file created exclusively here, fsynced, renamed over `name`, and the directory
    /// fsynced. A link or anything but a regular file at `name` is refused.
    pub fn replace(
        &self,
        name: &OsStr,
        bytes: &[u8],
        mode: u32,
        owner: Option<(u32, u32)>,
    ) -> std::io::Result<()> {
        if let Some(m) = self.entry(name)? {
            not_regular(&self.at(name), &m)?;
        }
        static SEQ: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let seq = SEQ.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let mut tmp = std::ffi::OsString::from(".");
        tmp.push(name);
        tmp.push(format!(".jobnet-tmp-{}-{seq}", std::process::id()));
        // Whatever sits at our temporary name was planted: remove the entry (never its target).
        self.remove(&tmp)?;
        let result = (|| {
            let mut f = self.openat(&tmp, libc::O_WRONLY | libc::O_CREAT | libc::O_EXCL, mode)?;
            f.set_permissions(std::fs::Permissions::from_mode(mode))?;
            give(&f, owner)?;
            f.write_all(bytes)?;
            f.sync_all()?;
            let (a, b) = (cstring(&tmp)?, cstring(name)?);
            let fd = self.file.as_raw_fd();
            // SAFETY: valid descriptor and NUL-terminated names.
            if unsafe { libc::renameat(fd, a.as_ptr(), fd, b.as_ptr()) } != 0 {
                return Err(std::io::Error::last_os_error());
            }
            self.file.sync_all()
        })();
        if result.is_err() {
            let _ = self.remove(&tmp);
        }
        result
    }
}

/// The directory of `path` and its file name.
fn split(path: &Path) -> std::io::Result<(Dir, &OsStr)> {
    let name = path
        .file_name()
        .ok_or_else(|| refused(format!("{}: not a file name", path.display())))?;
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    Ok((Dir::open(dir)?, name))
}

impl FileLock {
    /// One attempt: `None` when another process holds it. The lock file is created (mode 0600)
    /// if missing, and given to `owner` on its descriptor.
    pub fn try_acquire_as(
        path: &Path,
        owner: Option<(u32, u32)>,
    ) -> Result<Option<Self>, LockError> {
        let io = |source| LockError::Io {
            path: path.display().to_string(),
            source,
        };
        let (dir, name) = split(path).map_err(io)?;
        let file = dir.open_file(name, true, 0o600, owner).map_err(io)?;
        match file.try_lock() {
            Ok(()) => Ok(Some(FileLock {
                _file: file,
                path: path.to_path_buf(),
            })),
            Err(std::fs::TryLockError::WouldBlock) => Ok(None),
            Err(std::fs::TryLockError::Error(e)) => Err(io(e)),
        }
    }

    /// One attempt, the file given to its directory's owner when root creates it.
    pub fn try_acquire(path: &Path) -> Result<Option<Self>, LockError> {
        Self::try_acquire_as(path, path.parent().and_then(dir_owner))
    }

    /// Waits until `deadline` for the lock on `path` (created, mode 0600, if missing), giving up
    /// early when `stop` says so (a signal).
    pub fn acquire_until(
        path: &Path,
        owner: Option<(u32, u32)>,
        deadline: crate::deadline::Deadline,
    ) -> Result<Self, LockError> {
        loop {
            if let Some(l) = Self::try_acquire_as(path, owner)? {
                return Ok(l);
            }
            if crate::deadline::work_interrupted() {
                return Err(LockError::Interrupted {
                    path: path.display().to_string(),
                });
            }
            if deadline.passed() {
                return Err(LockError::Busy {
                    path: path.display().to_string(),
                    secs: deadline.budget().as_secs(),
                    holder: holder_of(path),
                });
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// Waits up to `wait` for the lock on `path` (created, mode 0600, if missing).
    pub fn acquire(path: &Path, wait: Duration) -> Result<Self, LockError> {
        Self::acquire_until(
            path,
            path.parent().and_then(dir_owner),
            crate::deadline::Deadline::within_command(wait),
        )
    }
}

/// " (pid N: command line)" for the process holding a lock on `path`, from /proc/locks; empty
/// when it cannot be told.
pub fn holder_of(path: &Path) -> String {
    let Ok(m) = std::fs::symlink_metadata(path) else {
        return String::new();
    };
    let Ok(locks) = std::fs::read_to_string("/proc/locks") else {
        return String::new();
    };
    let want = format!(":{}", m.ino());
    for line in locks.lines() {
        // "1: FLOCK  ADVISORY  WRITE 1234 08:01:5678 0 EOF"
        let f: Vec<&str> = line.split_whitespace().collect();
        if f.len() >= 6 && (f[1] == "FLOCK" || f[1] == "POSIX") && f[5].ends_with(&want) {
            let pid = f[4];
            if pid == std::process::id().to_string() || pid == "-1" {
                continue;
            }
            let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
            let words: Vec<String> = cmdline
                .split(|b| *b == 0)
                .filter(|w| !w.is_empty())
                .take(12)
                .map(|w| String::from_utf8_lossy(w).into_owned())
                .collect();
            return format!(" (pid {pid}: {})", words.join(" "));
        }
    }
    String::new()
}

/// Reads the regular file `path` (at most `limit` bytes) without following a link at its last
/// component; `None` when it does not exist.
pub fn read_nofollow(path: &Path, limit: u64) -> std::io::Result<Option<Vec<u8>>> {
    let (dir, name) = match split(path) {
        Ok(x) => x,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    dir.read(name, limit)
}

/// Atomically replaces `path` with `bytes`, keeping the current file's mode and owner (a new file
/// gets `default_mode` and, when root writes it, its directory's owner). A link at `path` is
/// refused.
pub fn replace_file(path: &Path, bytes: &[u8], default_mode: u32) -> std::io::Result<()> {
    let (dir, name) = split(path)?;
    let meta = dir.entry(name)?.filter(|m| m.file_type().is_file());
    let mode = meta
        .as_ref()
        .map_or(default_mode, |m| m.permissions().mode() & 0o7777);
    let owner = match &meta {
        Some(m) => Some((m.uid(), m.gid())),
        None => path.parent().and_then(dir_owner),
    };
    dir.replace(name, bytes, mode, owner)
}

/// Atomically replaces `path` with `bytes`, with the given mode and owner. A link at `path` is
/// refused.
pub fn replace_with(
    path: &Path,
    bytes: &[u8],
    mode: u32,
    owner: Option<(u32, u32)>,
) -> std::io::Result<()> {
    let (dir, name) = split(path)?;
    dir.replace(name, bytes, mode, owner)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("jobnet-fsutil-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn replaces_keeping_mode_and_locks_with_a_limit() {
        let dir = scratch("basic");
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

    #[test]
    fn links_fifos_and_hard_links_are_refused_and_never_followed() {
        let dir = scratch("hostile");
        let outside = dir.join("outside");
        std::fs::write(&outside, "secret\n").unwrap();
        std::os::unix::fs::symlink(&outside, dir.join("link.lock")).unwrap();
        std::fs::hard_link(&outside, dir.join("hard.lock")).unwrap();
        let fifo = cstring(dir.join("fifo.lock").as_os_str()).unwrap();
        // SAFETY: a valid path.
        assert_eq!(unsafe { libc::mkfifo(fifo.as_ptr(), 0o600) }, 0);
        for name in ["link.lock", "hard.lock", "fifo.lock"] {
            let e = FileLock::try_acquire(&dir.join(name))
                .unwrap_err()
                .to_string();
            assert!(e.contains(name), "{e}");
            assert!(e.contains("remove it"), "{e}");
        }
        let e = replace_file(&dir.join("link.lock"), b"x", 0o600).unwrap_err();
        assert!(e.to_string().contains("symbolic link (to "), "{e}");
        // A planted temporary name is removed, not written through.
        std::os::unix::fs::symlink(
            &outside,
            dir.join(format!(".new.jobnet-tmp-{}-0", std::process::id())),
        )
        .unwrap();
        replace_with(&dir.join("new"), b"mine", 0o600, None).unwrap();
        assert_eq!(std::fs::read_to_string(&outside).unwrap(), "secret\n");
        assert_eq!(std::fs::read(dir.join("new")).unwrap(), b"mine");
        // A subdirectory that is a link is refused.
        std::os::unix::fs::symlink(&dir, dir.join("sub")).unwrap();
        let d = Dir::open(&dir).unwrap();
        let e = d.sub(OsStr::new("sub"), 0o700, None, true).unwrap_err();
        assert!(e.to_string().contains("symbolic link"), "{e}");
        assert!(d.read(OsStr::new("link.lock"), 100).is_err());
        assert_eq!(std::fs::read_to_string(&outside).unwrap(), "secret\n");
        let _ = std::fs::remove_dir_all(dir);
    }
}
