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
//! - the previous version is kept as `partitions.conf.jobnet-prev`;
//! - every write bumps a generation counter beside the file (`.partitions.conf.jobnet-gen`:
//!   written, covered by a reload, reloads sent), which [`crate::ib::opensm`] uses to coalesce
//!   reloads.

use super::{grammar, ConfFile, RegionError};
use crate::base::fsutil::{self, FileLock, LockError};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    #[error("{path}: cannot {op}: {source}")]
    Io {
        path: String,
        op: &'static str,
        #[source]
        source: std::io::Error,
    },
    /// The current file is refused. `errors` is the whole refusal ([`super::Unusable`]'s
    /// text): whether OpenSM would reject or misread the file, or jobnet's block in it is
    /// broken, and every error.
    #[error("{errors}")]
    Invalid { path: String, errors: String },
    #[error("internal error: the new text of {path} fails the OpenSM grammar check, nothing was written:\n{errors}")]
    Generated { path: String, errors: String },
    #[error("partitions.conf: {0}")]
    Region(#[from] RegionError),
    #[error("partitions.conf lock: {0}")]
    Lock(#[from] LockError),
    #[error("{path} is a symbolic link to {target} that another user could have made (the link or its directory is not root's alone): jobnet neither reads nor replaces it; set partitions_conf: to the file OpenSM reads ({target}), or make the link root's in a directory only root can write")]
    UntrustedLink { path: String, target: String },
}

/// What an update did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Updated {
    /// The text before (`None`: the file did not exist).
    pub old: Option<String>,
    pub new: String,
    /// False when the new text equals the old one (nothing was written).
    pub written: bool,
    /// The write's generation (see [`Generations`]); the last one when
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

/// The file jobnet edits for the configured partitions.conf `path`: `path` itself, or, when it
/// is a symbolic link an administrator made (owned by root or this user, in a directory only
/// they can write; a shared file for standby SMs, say), the link's target, edited in place with
/// the same atomic steps in the target's own directory (lock, backup and temporary file beside
/// the target). A link another user could have planted is refused, naming its target, and never
/// read: nothing of the file it points to reaches a message.
pub fn resolve(path: &Path) -> Result<PathBuf, WriteError> {
    let p = path.display().to_string();
    let m = match std::fs::symlink_metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(path.to_path_buf()),
        Err(source) => {
            return Err(WriteError::Io {
                path: p,
                op: "look at it",
                source,
            })
        }
    };
    if !m.file_type().is_symlink() {
        return Ok(path.to_path_buf());
    }
    let shown = std::fs::read_link(path)
        .map(|t| t.display().to_string())
        .unwrap_or_else(|_| "?".into());
    let me = fsutil::euid();
    let trusted = |uid: u32| uid == 0 || uid == me;
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let dir_ok = std::fs::metadata(dir)
        .map(|d| trusted(d.uid()) && d.mode() & 0o022 == 0)
        .unwrap_or(false);
    if !trusted(m.uid()) || !dir_ok {
        return Err(WriteError::UntrustedLink {
            path: p,
            target: shown,
        });
    }
    match std::fs::canonicalize(path) {
        Ok(t) => Ok(t),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(dir.join(&shown)),
        Err(source) => Err(WriteError::Io {
            path: format!("{p} (a link to {shown})"),
            op: "follow it",
            source,
        }),
    }
}

/// The lock file beside `path`.
pub fn lock_path(path: &Path) -> PathBuf {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    path.with_file_name(format!(".{name}.jobnet-lock"))
}

/// Takes the partitions.conf lock (shared by every jobnet process), waiting at most `wait`.
pub fn lock(path: &Path, wait: Duration) -> Result<FileLock, WriteError> {
    Ok(FileLock::acquire(&lock_path(path), wait)?)
}

/// The generation counter beside partitions.conf: how many writes, which write the last reload
/// covered, how many reloads were sent and when the last two were (milliseconds since the Unix
/// epoch; 0: never, or a file from before they were kept). Read and written under the
/// partitions.conf lock.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Generations {
    pub written: u64,
    pub reloaded: u64,
    pub reloads: u64,
    pub reloaded_at_ms: u64,
    pub reloaded_before_ms: u64,
}

impl Generations {
    fn path(conf: &Path) -> PathBuf {
        let name = conf
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        conf.with_file_name(format!(".{name}.jobnet-gen"))
    }

    /// The counters (zero when there is no file yet).
    pub fn read(conf: &Path) -> Self {
        let text = fsutil::read_nofollow(&Self::path(conf), 4096)
            .ok()
            .flatten()
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .unwrap_or_default();
        let v: Vec<u64> = text
            .split_whitespace()
            .filter_map(|x| x.parse().ok())
            .collect();
        let at = |i: usize| v.get(i).copied().unwrap_or(0);
        Generations {
            written: at(0),
            reloaded: at(1),
            reloads: at(2),
            reloaded_at_ms: at(3),
            reloaded_before_ms: at(4),
        }
    }

    pub fn write(self, conf: &Path) -> Result<(), WriteError> {
        let text = format!(
            "{} {} {} {} {}\n",
            self.written, self.reloaded, self.reloads, self.reloaded_at_ms, self.reloaded_before_ms
        );
        let path = Self::path(conf);
        fsutil::replace_file(&path, text.as_bytes(), 0o644).map_err(io(&path, "record the write"))
    }

    /// Counts a write; call while holding the lock. Returns the write's generation.
    pub fn note_write(conf: &Path) -> Result<u64, WriteError> {
        let g = Self::read(conf);
        let next = Generations {
            written: g.written + 1,
            ..g
        };
        next.write(conf)?;
        Ok(next.written)
    }
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
    let resolved = resolve(path)?;
    let path = resolved.as_path();
    let p = path.display().to_string();
    let _lock = lock(path, wait)?;
    let old = crate::base::limits::read_text_if_exists(path, crate::base::limits::PARTITIONS_CONF)
        .map_err(|e| WriteError::Io {
            path: p.clone(),
            op: "read it",
            source: e.into_io(),
        })?;
    let conf = super::Current::read_for_update(old.as_deref(), &p)
        .map_err(|e| WriteError::Invalid {
            path: p.clone(),
            errors: e.to_string(),
        })?
        .conf();
    let new = change(&conf);
    if old.as_deref() == Some(new.as_str()) {
        let generation = Generations::read(path).written;
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
    // No job's partition may share its PKey with another one in what OpenSM is made to reload.
    super::check_to_write(&new, &p)?;
    let meta = std::fs::symlink_metadata(path).ok();
    let mode = meta
        .as_ref()
        .map_or(0o644, |m| m.permissions().mode() & 0o7777);
    let owner = meta.as_ref().map(|m| (m.uid(), m.gid()));
    // The backup and the generation counter are checked before anything is written: a link or
    // FIFO planted there fails the update with nothing changed.
    for companion in [backup_path(path), Generations::path(path)] {
        fsutil::regular_or_missing(&companion).map_err(io(&companion, "use it"))?;
    }
    if let Some(text) = &old {
        let backup = backup_path(path);
        fsutil::replace_with(&backup, text.as_bytes(), mode, owner)
            .map_err(io(&backup, "write its backup"))?;
    }
    fsutil::replace_with(path, new.as_bytes(), mode, owner).map_err(io(path, "replace it"))?;
    let generation = Generations::note_write(path)?;
    Ok(Updated {
        old,
        new,
        written: true,
        generation,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::base::types::{PKey, PortGuid};
    use crate::ib::partitions::Partition;

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
