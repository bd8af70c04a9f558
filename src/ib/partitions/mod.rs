//! The jobnet-managed region of OpenSM's partitions.conf.
//!
//! jobnet owns only the lines between [`BEGIN`] and [`END`]; every byte outside them is kept as
//! it is. Inside, each job is one block that starts with a `# jobnet job ID` comment, so a job's
//! partition can be added or removed without reading OpenSM's grammar. The statement layout
//! avoids OpenSM's parser traps (field notes): one member per line (lines stay far below the
//! 4096-byte buffer), `;` right after the last member (a `;` starting a line reads stale bytes),
//! and no partition with an empty member list is ever written.
//!
//! When there is no file yet, the new file starts with the statement equivalent to OpenSM's
//! built-in default (`Default=0x7fff, ipoib : ALL=full;`): a file without it would take the
//! Default partition away from every port but the SM's.

pub mod file;
pub mod grammar;

use crate::base::types::{PKey, PortGuid};

pub const BEGIN: &str =
    "# BEGIN jobnet managed: partitions of running jobs; edit outside this block only";
pub const END: &str = "# END jobnet managed";
const JOB_MARK: &str = "# jobnet job ";
/// What OpenSM does when it has no partitions.conf, written out.
pub const DEFAULT_STATEMENT: &str = "Default=0x7fff, ipoib : ALL=full;";

/// One job's partition.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Partition {
    pub job: String,
    pub name: String,
    pub pkey: PKey,
    pub ipoib: bool,
    /// Further header flags, validated `key=value` (mtu, rate, sl, defmember).
    pub flags: Vec<String>,
    /// Port GUIDs, all full members; never empty.
    pub members: Vec<PortGuid>,
}

impl Partition {
    /// The block for the managed region.
    pub fn render(&self) -> String {
        assert!(
            !self.members.is_empty(),
            "a partition without members must be dropped, not written"
        );
        let mut out = format!("{JOB_MARK}{}\n{}={}", self.job, self.name, self.pkey);
        if self.ipoib {
            out.push_str(", ipoib");
        }
        for f in &self.flags {
            out.push_str(", ");
            out.push_str(f);
        }
        out.push_str(" :\n");
        for (i, m) in self.members.iter().enumerate() {
            let sep = if i + 1 == self.members.len() {
                ";"
            } else {
                ","
            };
            out.push_str(&format!("    {m}=full{sep}\n"));
        }
        out
    }
}

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum RegionError {
    #[error(
        "{path}:{line}: `{BEGIN_SHORT}` appears twice; remove the duplicate managed block by hand"
    )]
    TwoBegins { path: String, line: usize },
    #[error("{path}:{line}: `{BEGIN_SHORT}` has no matching `{END}`; restore the END line or remove the block")]
    Unterminated { path: String, line: usize },
    #[error("{path}:{line}: `{END}` without a BEGIN line; remove it")]
    StrayEnd { path: String, line: usize },
}

const BEGIN_SHORT: &str = "# BEGIN jobnet managed";

/// A partitions.conf split around the managed region.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfFile {
    /// Text before the region (or the whole file when there is none).
    pub before: String,
    /// Job blocks: (job id, PKey if readable, block text).
    pub jobs: Vec<(String, Option<PKey>, String)>,
    /// Text after the region.
    pub after: String,
}

impl ConfFile {
    /// Splits `text`; `path` is used in messages.
    pub fn parse(text: &str, path: &str) -> Result<Self, RegionError> {
        let mut before = String::new();
        let mut after = String::new();
        let mut jobs: Vec<(String, Option<PKey>, String)> = Vec::new();
        let mut state = 0; // 0 before, 1 inside, 2 after
        let mut begin_line = 0;
        for (i, line) in text.split_inclusive('\n').enumerate() {
            let t = line.trim_end();
            if t.starts_with(BEGIN_SHORT) {
                if state != 0 {
                    return Err(RegionError::TwoBegins {
                        path: path.into(),
                        line: i + 1,
                    });
                }
                state = 1;
                begin_line = i + 1;
                continue;
            }
            if t == END {
                if state != 1 {
                    return Err(RegionError::StrayEnd {
                        path: path.into(),
                        line: i + 1,
                    });
                }
                state = 2;
                continue;
            }
            match state {
                0 => before.push_str(line),
                1 => {
                    if let Some(job) = t.strip_prefix(JOB_MARK) {
                        jobs.push((job.trim().to_string(), None, String::new()));
                    }
                    if let Some(last) = jobs.last_mut() {
                        if last.1.is_none() {
                            last.1 = header_pkey(t);
                        }
                        last.2.push_str(line);
                        if !line.ends_with('\n') {
                            last.2.push('\n');
                        }
                    }
                }
                _ => after.push_str(line),
            }
        }
        if state == 1 {
            return Err(RegionError::Unterminated {
                path: path.into(),
                line: begin_line,
            });
        }
        Ok(ConfFile {
            before,
            jobs,
            after,
        })
    }

    /// The file with `p` in the region (replacing an earlier block of the same job).
    pub fn with_partition(&self, p: &Partition) -> String {
        let mut jobs = self.jobs.clone();
        let block = (p.job.clone(), Some(p.pkey), p.render());
        match jobs.iter_mut().find(|j| j.0 == p.job) {
            Some(j) => *j = block,
            None => jobs.push(block),
        }
        self.assemble(&jobs)
    }

    /// The file without `job`'s block (the region disappears with its last job).
    pub fn without_job(&self, job: &str) -> String {
        let jobs: Vec<_> = self.jobs.iter().filter(|j| j.0 != job).cloned().collect();
        if jobs.is_empty() {
            return format!("{}{}", self.before, self.after);
        }
        self.assemble(&jobs)
    }

    fn assemble(&self, jobs: &[(String, Option<PKey>, String)]) -> String {
        let mut out = self.before.clone();
        if !out.is_empty() && !out.ends_with('\n') {
            out.push('\n');
        }
        out.push_str(BEGIN);
        out.push('\n');
        for (_, _, block) in jobs {
            out.push_str(block);
        }
        out.push_str(END);
        out.push('\n');
        out.push_str(&self.after);
        out
    }

    /// PKeys held by other jobs' blocks.
    pub fn job_pkeys(&self, except_job: &str) -> Vec<(String, PKey)> {
        self.jobs
            .iter()
            .filter(|j| j.0 != except_job)
            .filter_map(|j| j.1.map(|k| (j.0.clone(), k)))
            .collect()
    }
}

fn header_pkey(line: &str) -> Option<PKey> {
    let (_, rest) = line.split_once('=')?;
    let end = rest.find([',', ':', ' ']).unwrap_or(rest.len());
    PKey::parse(rest[..end].trim()).ok()
}

/// The partitions in `outside` (the text around jobnet's block): (name, PKey without the
/// membership bit), as OpenSM's grammar reads them.
pub fn admin_statements(outside: &str) -> Vec<(String, Option<u16>)> {
    grammar::check(outside, "partitions.conf")
        .statements
        .into_iter()
        .map(|s| (s.name, s.pkey))
        .collect()
}

/// The current partitions.conf, as jobnet may change it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Current {
    /// No file: a new one starts with OpenSM's default partition written out.
    Missing,
    /// A file without any statement (empty, blank, comments only): OpenSM takes it as an error
    /// and uses its default configuration, so it is treated like a missing file; its bytes (the
    /// comments) are kept before the default partition.
    NoPartitions(String),
    Valid(ConfFile),
}

/// Why jobnet will not touch a partitions.conf.
#[derive(Debug, thiserror::Error)]
pub enum Unusable {
    /// OpenSM would reject or misread it: one diagnostic per line.
    #[error("{0}")]
    Rejected(String),
    #[error(transparent)]
    Region(#[from] RegionError),
}

impl Current {
    /// Checks the current text (`None`: no file); jobnet never touches an unusable file.
    pub fn read(text: Option<&str>, path: &str) -> Result<Self, Unusable> {
        let Some(text) = text else {
            return Ok(Current::Missing);
        };
        let checked = grammar::check(text, path);
        if checked.diagnostics.has_errors() {
            return Err(Unusable::Rejected(checked.diagnostics.errors_text()));
        }
        if checked.empty {
            return Ok(Current::NoPartitions(text.to_string()));
        }
        Ok(Current::Valid(ConfFile::parse(text, path)?))
    }

    /// The file to add a job to.
    pub fn conf(&self) -> ConfFile {
        match self {
            Current::Valid(c) => c.clone(),
            Current::Missing => ConfFile {
                before: format!("{DEFAULT_STATEMENT}\n"),
                jobs: vec![],
                after: String::new(),
            },
            Current::NoPartitions(text) => {
                let mut before = text.clone();
                if !before.is_empty() && !before.ends_with('\n') {
                    before.push('\n');
                }
                before.push_str(DEFAULT_STATEMENT);
                before.push('\n');
                ConfFile {
                    before,
                    jobs: vec![],
                    after: String::new(),
                }
            }
        }
    }

    /// What a plan should say about the file.
    pub fn warnings(&self, path: &str) -> Vec<String> {
        match self {
            Current::Missing => vec![format!("{path} does not exist: planned as a new file that writes out OpenSM's default partition first")],
            Current::NoPartitions(_) => vec![format!("{path} has no partition statements (empty, blank or comments only), which OpenSM treats as an error (default configuration): jobnet writes OpenSM's default partition (`{DEFAULT_STATEMENT}`) first, as for a missing file, and it stays")],
            Current::Valid(c) if !has_default(&admin_statements(&format!("{}{}", c.before, c.after))) => vec![format!(
                "{path} has no Default (0x7fff) partition outside jobnet's block: OpenSM then makes every port but the SM's a LIMITED member of Default; add `{DEFAULT_STATEMENT}` if that is not intended"
            )],
            Current::Valid(_) => vec![],
        }
    }
}

/// True when the statements include the Default partition (by name or by PKey 0x7fff).
pub fn has_default(statements: &[(String, Option<u16>)]) -> bool {
    statements
        .iter()
        .any(|(n, k)| n == "Default" || *k == Some(0x7fff))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn part(job: &str, pkey: u64, guids: &[u64]) -> Partition {
        Partition {
            job: job.into(),
            name: format!("jobnet_{job}"),
            pkey: PKey::new(pkey).unwrap(),
            ipoib: true,
            flags: vec![],
            members: guids.iter().map(|&g| PortGuid::new(g)).collect(),
        }
    }

    #[test]
    fn keeps_outside_bytes_and_replaces_blocks() {
        let admin = "# site partitions\nDefault=0x7fff, ipoib : ALL=full;\nstorage=0x0010 : 0x1=full ;  # keep   spacing\n";
        let f = ConfFile::parse(admin, "p").unwrap();
        let one = f.with_partition(&part("7", 0x1000, &[0x100001, 0x100004]));
        assert!(one.starts_with(admin), "outside bytes must be kept");
        let f2 = ConfFile::parse(&one, "p").unwrap();
        assert_eq!(f2.jobs.len(), 1);
        assert_eq!(f2.jobs[0].1, Some(PKey::new(0x1000).unwrap()));
        let two = f2.with_partition(&part("8", 0x1001, &[0x100007]));
        let three =
            ConfFile::parse(&two, "p")
                .unwrap()
                .with_partition(&part("7", 0x1000, &[0x10000a]));
        assert!(
            three.contains(
                "# jobnet job 7\njobnet_7=0x1000, ipoib :\n    0x000000000010000a=full;\n"
            ),
            "{three}"
        );
        assert!(!three.contains("0x0000000000100001"));
        assert_eq!(
            ConfFile::parse(&three, "p").unwrap().job_pkeys("7"),
            vec![("8".to_string(), PKey::new(0x1001).unwrap())]
        );
    }

    #[test]
    fn broken_regions_are_refused() {
        assert!(matches!(
            ConfFile::parse(&format!("{BEGIN}\n"), "p"),
            Err(RegionError::Unterminated { line: 1, .. })
        ));
        assert!(matches!(
            ConfFile::parse(&format!("x\n{END}\n"), "p"),
            Err(RegionError::StrayEnd { line: 2, .. })
        ));
        assert!(matches!(
            ConfFile::parse(&format!("{BEGIN}\n{END}\n{BEGIN}\n"), "p"),
            Err(RegionError::TwoBegins { line: 3, .. })
        ));
    }

    #[test]
    fn finds_default_and_admin_pkeys() {
        let s = admin_statements("a=0x8010,ipoib: ALL; # Default=0x7fff : ALL;\nb : SELF;\n");
        assert_eq!(
            s,
            vec![("a".to_string(), Some(0x10)), ("b".to_string(), None)]
        );
        assert!(!has_default(&s));
        assert!(has_default(&admin_statements("x=0xffff : ALL=full;")));
    }
}
