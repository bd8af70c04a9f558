//! What the controller tells the nodes about a job: `<jobs_dir>/<job id>/network.json`, written
//! by the prolog after the job's network is up (and removed by the epilog), on a directory the
//! nodes share with the controller (HPC sites have one; an etcd store would carry it later).
//! The node side (`jobnet node attach`, the CNI plugin) reads it: no guesswork and no second
//! allocation. Every value is checked again when read (a node trusts no file blindly).

use super::addresses::{is_mac, JobAddresses};
use crate::base::types::{JobId, VlanId};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// Where the jobs' files (address files, network.json) go unless `addresses.dir` or `jobs_dir`
/// say otherwise: beside the state directory, not in it (that one is private to the service
/// user; the job's user and the nodes read these).
pub const DEFAULT_ADDRESSES_DIR: &str = "/var/lib/jobnet-jobs";

/// A job's network as the nodes need it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobNetwork {
    pub job: String,
    /// `None`: the job has no Ethernet (a partition only).
    pub vlan: Option<u16>,
    /// Hex text, as everywhere in jobnet's JSON.
    pub pkey: Option<String>,
    pub nodes: Vec<String>,
    pub addresses: Option<JobAddresses>,
}

/// A network.json that is missing or wrong, naming the file and what to do.
#[derive(Debug, thiserror::Error)]
pub enum NetworkFileError {
    #[error("{path} does not exist: job {job} has no network from the controller (is the job's prolog done? is jobs_dir the directory the controller writes?)")]
    Missing { job: String, path: String },
    #[error("{path}: {why}")]
    Bad { path: String, why: String },
}

/// `<jobs_dir>/<job id>`, never a name that climbs out of the directory.
pub fn job_dir(jobs_dir: &Path, job: &JobId) -> PathBuf {
    jobs_dir.join(job.file_name())
}

/// Whether network.json and its job directory are the controller's alone: owned by root or by
/// the owner of `jobs_dir` (the controller's service user, who made it), writable by nobody
/// else. A job's user who could change the file would choose the VLAN root on the node puts
/// its VMs on. A directory or file that does not exist is for the reader to say.
fn trusted(jobs_dir: &Path, file: &Path) -> Result<(), String> {
    use std::os::unix::fs::MetadataExt;
    let Ok(top) = std::fs::metadata(jobs_dir) else {
        return Ok(());
    };
    let controller = top.uid();
    for p in [file.parent().unwrap_or(jobs_dir), file] {
        let Ok(m) = std::fs::symlink_metadata(p) else {
            continue;
        };
        if m.uid() != 0 && m.uid() != controller {
            return Err(format!(
                "{} belongs to uid {}, neither root nor {}'s owner (uid {controller}, the controller's user): a job's user could have written it; nothing is done from it",
                p.display(),
                m.uid(),
                jobs_dir.display()
            ));
        }
        if m.mode() & 0o022 != 0 {
            return Err(format!(
                "{} is writable by its group or by others (mode {:o}): anybody could have written it; nothing is done from it (the controller writes it 0755/0644)",
                p.display(),
                m.mode() & 0o7777
            ));
        }
    }
    Ok(())
}

impl JobNetwork {
    pub fn path(jobs_dir: &Path, job: &JobId) -> PathBuf {
        job_dir(jobs_dir, job).join("network.json")
    }

    /// Reads and checks the job's network.json.
    pub fn read(jobs_dir: &Path, job: &JobId) -> Result<JobNetwork, NetworkFileError> {
        let path = Self::path(jobs_dir, job);
        let p = path.display().to_string();
        // Root reads this file on the nodes: a link or FIFO there is refused, never read, and
        // so is one that anybody but the controller could have written.
        trusted(jobs_dir, &path).map_err(|why| NetworkFileError::Bad {
            path: p.clone(),
            why,
        })?;
        let text = match crate::base::fsutil::read_nofollow(&path, 16 << 20) {
            Ok(Some(b)) => String::from_utf8(b).map_err(|_| NetworkFileError::Bad {
                path: p.clone(),
                why: "not UTF-8 text".into(),
            })?,
            Ok(None) => {
                return Err(NetworkFileError::Missing {
                    job: job.to_string(),
                    path: p,
                })
            }
            Err(e) => {
                return Err(NetworkFileError::Bad {
                    path: p,
                    why: e.to_string(),
                })
            }
        };
        let bad = |why: String| NetworkFileError::Bad {
            path: p.clone(),
            why,
        };
        let n: JobNetwork = serde_json::from_str(&text).map_err(|e| bad(e.to_string()))?;
        if n.job != job.as_str() {
            return Err(bad(format!("it is job {}'s, not job {job}'s", n.job)));
        }
        if let Some(v) = n.vlan {
            VlanId::new(u64::from(v)).map_err(|e| bad(e.0))?;
        }
        for vm in n.addresses.iter().flat_map(|a| &a.vms) {
            crate::base::types::check_word("VM name", &vm.name, crate::base::types::NAME_PUNCT, 48)
                .map_err(|e| bad(e.0))?;
            if !is_mac(&vm.mac) {
                return Err(bad(format!(
                    "VM {}: `{}` is not a MAC address",
                    vm.name,
                    vm.mac.escape_debug()
                )));
            }
        }
        Ok(n)
    }

    /// Writes it (mode 0644: nodes read it as root or any user).
    pub fn write(&self, jobs_dir: &Path, job: &JobId) -> std::io::Result<PathBuf> {
        use crate::base::fsutil::Dir;
        let dir = job_dir(jobs_dir, job);
        // Below the configured directory nothing is followed (see base::fsutil).
        let base = Dir::ensure(jobs_dir, 0o755, None)?;
        let jd = base.sub(dir.file_name().unwrap_or_default(), 0o755, None, false)?;
        let text = serde_json::to_string_pretty(self).expect("json") + "\n";
        jd.replace(
            std::ffi::OsStr::new("network.json"),
            text.as_bytes(),
            0o644,
            None,
        )?;
        Ok(dir.join("network.json"))
    }
}
