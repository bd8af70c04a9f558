//! Bounds on what jobnet reads. Every file and every device answer has a size far above anything
//! real, so a mistaken path (`/dev/zero`, a disk image, a log) or a runaway device gives a clear
//! error instead of eating the machine's memory.

use std::io::Read;
use std::path::Path;

/// Topology files (a 10,000-node fat tree is about 1 MB).
pub const TOPOLOGY: u64 = 64 << 20;
/// Nodes one topology file may describe, counted over all its `nodes` entries before any
/// hostlist is expanded (each node's port list is as long). It is also the most names one
/// hostlist (`--nodes`, `SLURM_JOB_NODELIST`) may expand to: a job only names nodes of its
/// topology. Loading the largest such file (`jobnet topology generate fat-tree --nodes NODES`)
/// takes under a second in a release build (docs/benchmarks.md).
pub const NODES: usize = 200_000;
/// Driver profiles.
pub const PROFILE: u64 = 1 << 20;
/// The credentials file.
pub const CREDENTIALS: u64 = 1 << 20;
/// partitions.conf (3,000 members, one per line, is about 100 KB).
pub const PARTITIONS_CONF: u64 = 64 << 20;
/// Saved `ibnetdiscover` output.
pub const IBNETDISCOVER: u64 = 256 << 20;
/// One device's answer to one command.
pub const ANSWER: usize = 16 << 20;
/// An OpenSM pidfile.
pub const PIDFILE: u64 = 4096;

/// A file that could not be read within its bound.
#[derive(Debug, thiserror::Error)]
pub enum FileError {
    #[error("cannot read {path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{path} is larger than {} MiB, far more than any real {what}: is it the right file?", limit >> 20)]
    TooLarge {
        path: String,
        what: &'static str,
        limit: u64,
    },
    #[error("{path} is not UTF-8 text (invalid byte at offset {offset}): is it the right file? Save it as UTF-8")]
    NotText { path: String, offset: usize },
}

impl FileError {
    /// docs/cli.md: a missing or unusable input file is bad input (2); a file that exists but
    /// cannot be read (permissions, I/O) is an environment problem (1).
    pub fn exit_code(&self) -> u8 {
        match self {
            FileError::Io { source, .. } if source.kind() != std::io::ErrorKind::NotFound => 1,
            _ => 2,
        }
    }

    pub fn is_not_found(&self) -> bool {
        matches!(self, FileError::Io { source, .. } if source.kind() == std::io::ErrorKind::NotFound)
    }

    /// As an I/O error (for callers whose error type carries one).
    pub fn into_io(self) -> std::io::Error {
        match self {
            FileError::Io { source, .. } => source,
            other => std::io::Error::new(std::io::ErrorKind::InvalidData, other.to_string()),
        }
    }
}

fn what(limit: u64) -> &'static str {
    match limit {
        TOPOLOGY => "topology or partitions.conf",
        IBNETDISCOVER => "ibnetdiscover output",
        PIDFILE => "pidfile",
        _ => "file of this kind",
    }
}

/// Reads at most `limit` bytes of `path`; more is an error.
pub fn read_bytes(path: &Path, limit: u64) -> Result<Vec<u8>, FileError> {
    let p = path.display().to_string();
    let io = |source| FileError::Io {
        path: p.clone(),
        source,
    };
    let file = std::fs::File::open(path).map_err(io)?;
    let mut buf = Vec::new();
    file.take(limit + 1).read_to_end(&mut buf).map_err(io)?;
    if buf.len() as u64 > limit {
        return Err(FileError::TooLarge {
            path: p,
            what: what(limit),
            limit,
        });
    }
    Ok(buf)
}

/// Reads a UTF-8 text file of at most `limit` bytes.
pub fn read_text(path: &Path, limit: u64) -> Result<String, FileError> {
    let bytes = read_bytes(path, limit)?;
    String::from_utf8(bytes).map_err(|e| FileError::NotText {
        path: path.display().to_string(),
        offset: e.utf8_error().valid_up_to(),
    })
}

/// Reads a text file, `None` when it does not exist.
pub fn read_text_if_exists(path: &Path, limit: u64) -> Result<Option<String>, FileError> {
    match read_text(path, limit) {
        Ok(t) => Ok(Some(t)),
        Err(e) if e.is_not_found() => Ok(None),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endless_and_binary_inputs_are_refused() {
        let e = read_bytes(Path::new("/dev/zero"), 1 << 20).unwrap_err();
        assert!(
            e.to_string().contains("/dev/zero is larger than 1 MiB"),
            "{e}"
        );
        assert_eq!(e.exit_code(), 2);
        let e = read_text(Path::new("/nonexistent/x"), 10).unwrap_err();
        assert!(e.is_not_found() && e.exit_code() == 2);
        assert_eq!(
            read_text_if_exists(Path::new("/nonexistent/x"), 10).unwrap(),
            None
        );
    }
}
