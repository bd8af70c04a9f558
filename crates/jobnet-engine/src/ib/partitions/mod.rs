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
//!
//! [`check`] is the one verdict on a partitions.conf, for `jobnet ib check`, `plan`, `up` and
//! `down` alike: OpenSM's grammar and traps ([`grammar`]), the block's markers, text inside the
//! block that jobnet did not write (a rewrite of the block would drop it), and PKeys that make
//! OpenSM merge a job's partition with another one (the job would no longer be isolated; PKeys
//! compare on their low 15 bits, so `0x8010` is `0x0010`). Quotes from the file in messages are
//! bounded ([`grammar::excerpt`]).

pub mod file;
pub mod grammar;

use crate::base::diag::{Diagnostics, Loc};
use crate::base::types::{PKey, PortGuid};
use grammar::{excerpt, MemberName, Statement, EXCERPT_LINES};
use std::collections::BTreeMap;

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
    /// Found in a text about to be written (see [`check_to_write`]): one diagnostic per line.
    #[error("{path}: jobnet writes no partitions.conf in which OpenSM would merge a job's partition with another one (the job would no longer be isolated); nothing was written:\n{errors}")]
    Merges { path: String, errors: String },
}

impl RegionError {
    /// A broken marker as a diagnostic: its line, what is wrong, how to fix it.
    fn diagnostic(&self) -> Option<(usize, String, &'static str)> {
        match self {
            RegionError::TwoBegins { line, .. } => Some((
                *line,
                format!("`{BEGIN_SHORT}` appears twice"),
                "remove the duplicate managed block by hand",
            )),
            RegionError::Unterminated { line, .. } => Some((
                *line,
                format!("`{BEGIN_SHORT}` has no matching `{END}`: jobnet cannot tell where its block ends"),
                "restore the END line after the last job's partition, or remove the block",
            )),
            RegionError::StrayEnd { line, .. } => {
                Some((*line, format!("`{END}` without a BEGIN line"), "remove it"))
            }
            RegionError::Merges { .. } => None,
        }
    }
}

const BEGIN_SHORT: &str = "# BEGIN jobnet managed";

/// Where a line of partitions.conf is, relative to jobnet's block.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Place {
    Before,
    Marker,
    /// Inside the block, before the first job's mark.
    Loose,
    /// Inside the block of the i-th job.
    Job(usize),
    After,
}

/// A partitions.conf split into lines, each with its [`Place`].
struct Layout<'a> {
    /// Each line (with its newline, if any) and where it is.
    lines: Vec<(&'a str, Place)>,
    /// The jobs' ids, in block order.
    jobs: Vec<String>,
}

impl Layout<'_> {
    /// The place of 1-based line `line`.
    fn place(&self, line: usize) -> Place {
        self.lines
            .get(line.wrapping_sub(1))
            .map_or(Place::After, |l| l.1)
    }

    /// A line, as quoted in a message.
    fn quote(&self, line: usize) -> String {
        let text = self.lines.get(line.wrapping_sub(1)).map_or("", |l| l.0);
        excerpt(text.trim_matches(|c: char| c == ' ' || c == '\t' || c == '\n'))
    }
}

/// Finds the block's markers and job marks; the markers must pair up.
fn layout<'a>(text: &'a str, path: &str) -> Result<Layout<'a>, RegionError> {
    let mut lines = Vec::new();
    let mut jobs: Vec<String> = Vec::new();
    let mut state = Place::Before;
    let mut begin_line = 0;
    let inside = |p: Place| matches!(p, Place::Loose | Place::Job(_));
    for (i, line) in text.split_inclusive('\n').enumerate() {
        let t = line.trim_end();
        let place = if t.starts_with(BEGIN_SHORT) {
            if state != Place::Before {
                return Err(RegionError::TwoBegins {
                    path: path.into(),
                    line: i + 1,
                });
            }
            begin_line = i + 1;
            state = Place::Loose;
            Place::Marker
        } else if t == END {
            if !inside(state) {
                return Err(RegionError::StrayEnd {
                    path: path.into(),
                    line: i + 1,
                });
            }
            state = Place::After;
            Place::Marker
        } else {
            if let (true, Some(job)) = (inside(state), t.strip_prefix(JOB_MARK)) {
                jobs.push(job.trim().to_string());
                state = Place::Job(jobs.len() - 1);
            }
            state
        };
        lines.push((line, place));
    }
    if inside(state) {
        return Err(RegionError::Unterminated {
            path: path.into(),
            line: begin_line,
        });
    }
    Ok(Layout { lines, jobs })
}

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
    /// Splits `text`; `path` is used in messages. Lines inside the block that belong to no job
    /// are left out: [`check`] refuses a file that has any.
    pub fn parse(text: &str, path: &str) -> Result<Self, RegionError> {
        let l = layout(text, path)?;
        let mut before = String::new();
        let mut after = String::new();
        let mut jobs: Vec<(String, Option<PKey>, String)> = l
            .jobs
            .iter()
            .map(|j| (j.clone(), None, String::new()))
            .collect();
        for (line, place) in l.lines {
            match place {
                Place::Before => before.push_str(line),
                Place::After => after.push_str(line),
                Place::Job(i) => {
                    let job = &mut jobs[i];
                    if job.1.is_none() {
                        job.1 = header_pkey(line.trim_end());
                    }
                    job.2.push_str(line);
                    if !line.ends_with('\n') {
                        job.2.push('\n');
                    }
                }
                Place::Marker | Place::Loose => {}
            }
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

/// The verdict on a partitions.conf text.
#[derive(Debug)]
pub struct Verdict {
    /// OpenSM's reading (statements, `empty`) with every diagnostic, jobnet's own included.
    pub checked: grammar::Checked,
    /// How many of the errors are about OpenSM reading the file (it would reject or misread it);
    /// the others are about jobnet's block.
    pub opensm_errors: usize,
    /// A broken BEGIN/END pair (also among the diagnostics).
    pub region: Option<RegionError>,
    /// What kind of problem the errors are; `None` when there are none.
    pub refusal: Option<Refusal>,
}

/// Why jobnet refuses a partitions.conf. The kinds need different fixes and different words:
/// only a file OpenSM would reject makes it fall back to its default configuration.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// The file breaks OpenSM's grammar or runs into one of its parser traps: OpenSM would
    /// reject it (and fall back to its default configuration, dropping every custom partition)
    /// or may apply something else than it says (tests/opensm-cases: `reject`, `misread`, and
    /// the grammar cases of `stricter`).
    OpenSm,
    /// OpenSM reads the file as written, but jobnet's managed block is broken (BEGIN without
    /// END, two BEGINs, a stray END) or holds text jobnet did not write, which the next rewrite
    /// of the block would drop.
    Block,
    /// OpenSM reads the file as written and merges a job's partition with another partition of
    /// the same PKey: the job is not isolated.
    Merge,
}

impl Refusal {
    /// The refusal of the file at `path`, for `plan`, `up` and `down`, with its errors (one per
    /// line) below.
    pub fn message(self, path: &str, errors: &str) -> String {
        let what = match self {
            Refusal::OpenSm => format!("{path} is already invalid, so jobnet will not touch it: it breaks OpenSM's grammar or runs into one of its parser traps, so OpenSM would reject it (and fall back to its default configuration, dropping every custom partition) or may apply something else than it says"),
            Refusal::Block => format!("{path} is one OpenSM reads, but jobnet will not change it: jobnet's managed block in it is broken or holds text jobnet did not write, and jobnet rewrites that block on every `up` and `down`"),
            Refusal::Merge => format!("{path} is one OpenSM reads, but jobnet will not change it: OpenSM merges a job's partition in it with another partition of the same PKey, so that job is not isolated"),
        };
        format!("{what}; fix these first (`jobnet ib check {path}`):\n{errors}")
    }
}

/// The one check of a partitions.conf text before jobnet relies on it (`plan`, `up`, `down`):
/// OpenSM's grammar, the block's markers, text in the block that jobnet did not write, and
/// PKeys that merge a job's partition with another one. A file without statements is not an
/// error here (jobnet fills it, see [`Current`]).
pub fn check(text: &str, path: &str) -> Verdict {
    verdict(grammar::check(text, path), text, path, true)
}

/// [`check`] for a file as OpenSM will read it on its own (`jobnet ib check`): one without any
/// statement is an error too.
pub fn check_file(text: &str, path: &str) -> Verdict {
    verdict(grammar::check_file(text, path), text, path, true)
}

fn verdict(mut checked: grammar::Checked, text: &str, path: &str, merges: bool) -> Verdict {
    let opensm_errors = checked.diagnostics.error_count();
    // The first kind found wins: OpenSM's reading, then the block, then merges.
    let mut refusal = (opensm_errors > 0).then_some(Refusal::OpenSm);
    let mut note = |kind: Refusal, d: &Diagnostics, before: usize| {
        if d.error_count() > before && refusal.is_none() {
            refusal = Some(kind);
        }
    };
    let mut region = None;
    match layout(text, path) {
        Err(e) => {
            let before = checked.diagnostics.error_count();
            if let Some((line, what, help)) = e.diagnostic() {
                checked.diagnostics.error(Loc { line, col: 1 }, what, help);
            }
            note(Refusal::Block, &checked.diagnostics, before);
            region = Some(e);
        }
        // The statements of a file OpenSM stops reading are incomplete: judge only whole ones.
        Ok(l) if opensm_errors == 0 => {
            let owners = owners(&l, &checked.statements);
            let d = &mut checked.diagnostics;
            foreign(&l, &checked.statements, &owners, d);
            note(Refusal::Block, d, 0);
            if merges {
                merged(&l, &checked.statements, &owners, d);
                note(Refusal::Merge, d, 0);
            }
        }
        Ok(_) => {}
    }
    Verdict {
        checked,
        opensm_errors,
        region,
        refusal,
    }
}

/// The managed block of a text jobnet is about to write: well formed, and no job's partition
/// merged with another one by a shared PKey. A merge already in the current file is judged here,
/// on the text to write, so that `down` of the job that causes it (which ends it) stays possible.
pub fn check_to_write(text: &str, path: &str) -> Result<(), RegionError> {
    let l = layout(text, path)?;
    let c = grammar::check(text, path);
    let mut d = Diagnostics::new(path);
    merged(&l, &c.statements, &owners(&l, &c.statements), &mut d);
    if d.has_errors() {
        return Err(RegionError::Merges {
            path: path.into(),
            errors: d.errors_text(),
        });
    }
    Ok(())
}

/// Whose a statement is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Owner {
    /// Outside the block.
    Admin,
    /// The (first) statement in the block of the i-th job.
    Job(usize),
    /// Inside the block, but no job's statement.
    Stray,
}

fn owners(l: &Layout, statements: &[Statement]) -> Vec<Owner> {
    let mut seen = vec![false; l.jobs.len()];
    statements
        .iter()
        .map(|st| match l.place(st.loc.line) {
            Place::Job(i) if !seen[i] => {
                seen[i] = true;
                Owner::Job(i)
            }
            Place::Before | Place::After => Owner::Admin,
            Place::Job(_) | Place::Loose | Place::Marker => Owner::Stray,
        })
        .collect()
}

/// The partition jobnet would have written for `job` with `st` as its statement, if it could
/// have written it at all.
fn rebuild(job: &str, st: &Statement) -> Option<Partition> {
    let pkey = PKey::new(st.pkey?.into()).ok()?;
    let ipoib = st.flags.first() == Some(&("ipoib".to_string(), None));
    let flags = st
        .flags
        .iter()
        .skip(usize::from(ipoib))
        .map(|(f, v)| match v {
            Some(v) => format!("{f}={v}"),
            None => f.clone(),
        })
        .collect();
    let members = st
        .members
        .iter()
        .map(|m| match (&m.name, m.membership.as_deref()) {
            (MemberName::Guid(g), Some("full")) => Some(PortGuid::new(*g)),
            _ => None,
        })
        .collect::<Option<Vec<_>>>()?;
    (!members.is_empty()).then(|| Partition {
        job: job.into(),
        name: st.name.clone(),
        pkey,
        ipoib,
        flags,
        members,
    })
}

/// Text in the block that jobnet did not write: every non-blank line that is not, in order, a
/// line of what jobnet renders for the job whose block it is in (a line may be missing or
/// changed: the lines after it still count as jobnet's). jobnet rewrites the block on every
/// `up` and `down`, so such text would be dropped without a word.
fn foreign(l: &Layout, statements: &[Statement], owners: &[Owner], d: &mut Diagnostics) {
    let mut expected: Vec<Vec<String>> = l
        .jobs
        .iter()
        .map(|j| vec![format!("{JOB_MARK}{j}")])
        .collect();
    for (st, owner) in statements.iter().zip(owners) {
        if let Owner::Job(i) = *owner {
            if let Some(p) = rebuild(&l.jobs[i], st) {
                expected[i] = p.render().lines().map(str::to_string).collect();
            }
        }
    }
    let mut next = vec![0; l.jobs.len()];
    let mut found = Vec::new();
    for (n, (line, place)) in l.lines.iter().enumerate() {
        let body = line.strip_suffix('\n').unwrap_or(line);
        let ours = match *place {
            Place::Job(i) => match expected[i][next[i]..].iter().position(|e| e == body) {
                Some(k) => {
                    next[i] += k + 1;
                    true
                }
                None => false,
            },
            Place::Loose => false,
            Place::Before | Place::Marker | Place::After => true,
        };
        if !ours && !body.trim().is_empty() {
            found.push(n + 1);
        }
    }
    let Some(&first) = found.first() else {
        return;
    };
    let shown: Vec<String> = found
        .iter()
        .take(EXCERPT_LINES)
        .map(|&n| format!("line {n} `{}`", l.quote(n)))
        .collect();
    d.error(
        Loc { line: first, col: 1 },
        format!(
            "{} line(s) inside jobnet's managed block that jobnet did not write: {}{}; jobnet rewrites the block on every `up` and `down` and would drop them",
            found.len(),
            shown.join(", "),
            more(found.len())
        ),
        format!("move them outside the markers, above `{BEGIN_SHORT}` or below `{END}` (a change to a job's own partition is not kept either: undo it)"),
    );
}

/// ", and N more" for a list cut to [`EXCERPT_LINES`] items.
fn more(total: usize) -> String {
    match total.saturating_sub(EXCERPT_LINES) {
        0 => String::new(),
        n => format!(", and {n} more"),
    }
}

/// Statements that share a PKey (its low 15 bits, as OpenSM compares them): OpenSM merges them
/// into one partition. With a job's partition among them that is an error (the job is no longer
/// isolated), named at the other statement with both lines; among admins' own partitions it is
/// a warning. At most [`EXCERPT_LINES`] errors are spelled out; the rest are counted.
fn merged(l: &Layout, statements: &[Statement], owners: &[Owner], d: &mut Diagnostics) {
    let mut by_pkey: BTreeMap<u16, Vec<usize>> = BTreeMap::new();
    for (i, st) in statements.iter().enumerate() {
        if let Some(k) = st.pkey {
            by_pkey.entry(k).or_default().push(i);
        }
    }
    // (statement, the job statement it is merged with)
    let mut pairs = Vec::new();
    for (k, group) in by_pkey.into_iter().filter(|(_, g)| g.len() > 1) {
        match group.iter().find(|&&i| matches!(owners[i], Owner::Job(_))) {
            Some(&j) => pairs.extend(group.into_iter().filter(|&i| i != j).map(|i| (i, j))),
            None => {
                let first = &statements[group[0]];
                for st in group[1..].iter().map(|&i| &statements[i]) {
                    d.warning(
                        st.loc,
                        format!(
                            "PKey {k:#06x} of `{}` is also used by `{}` (line {}): OpenSM merges them into one partition",
                            excerpt(&st.name),
                            excerpt(&first.name),
                            first.loc.line
                        ),
                        "give each partition its own PKey",
                    );
                }
            }
        }
    }
    pairs.sort_by_key(|&(i, _)| statements[i].loc);
    for &(i, j) in pairs.iter().take(EXCERPT_LINES) {
        merge_error(l, statements, owners, (i, j), d);
    }
    if pairs.len() > EXCERPT_LINES {
        d.error(
            statements[pairs[EXCERPT_LINES].0].loc,
            format!(
                "{} more partition(s) share a PKey with a job's partition",
                pairs.len() - EXCERPT_LINES
            ),
            "fix the ones above, then run `jobnet ib check` again",
        );
    }
}

/// The error for statement `i` merged with job statement `j`, at `i`, quoting both lines.
fn merge_error(
    l: &Layout,
    statements: &[Statement],
    owners: &[Owner],
    (i, j): (usize, usize),
    d: &mut Diagnostics,
) {
    let (st, job_st) = (&statements[i], &statements[j]);
    let (Owner::Job(ji), Some(k)) = (owners[j], job_st.pkey) else {
        return;
    };
    let job = excerpt(&l.jobs[ji]);
    let (what, help) = match owners[i] {
        Owner::Job(other) => {
            let other = excerpt(&l.jobs[other]);
            (
                format!("job {other}'s partition"),
                format!("end one of the jobs (`jobnet down --job {other}`)"),
            )
        }
        Owner::Admin | Owner::Stray => (
            "the partition".to_string(),
            format!(
                "give `{}` a PKey no job uses (one outside the topology's pkey_pool), or end job {job} first (`jobnet down --job {job}`)",
                excerpt(&st.name)
            ),
        ),
    };
    d.error(
        st.loc,
        format!(
            "{what} `{}` (`{}`) has PKey {k:#06x}, as job {job}'s partition `{}` at {}:{} (`{}`): OpenSM merges them into one partition, so job {job} is no longer isolated (PKeys compare without the membership bit: {:#06x} is {k:#06x})",
            excerpt(&st.name),
            l.quote(st.loc.line),
            excerpt(&job_st.name),
            d.file,
            job_st.loc.line,
            l.quote(job_st.loc.line),
            k | 0x8000
        ),
        help,
    );
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

/// Why jobnet will not touch a partitions.conf: the kind of problem and every error. Its text
/// says which kind it is ([`Refusal::message`]).
#[derive(Debug, thiserror::Error)]
#[error("{}", kind.message(path, errors))]
pub struct Unusable {
    pub kind: Refusal,
    pub path: String,
    /// The errors, one per line (at most [`MAX_ERRORS`], with a count of the rest).
    pub errors: String,
    /// A broken BEGIN/END pair, when that is one of the problems.
    pub region: Option<RegionError>,
}

impl Current {
    /// Checks the current text (`None`: no file) with [`check`]; jobnet never touches a file it
    /// refuses.
    pub fn read(text: Option<&str>, path: &str) -> Result<Self, Unusable> {
        Self::checked(text, path, true)
    }

    /// [`Current::read`] for changing the file under its lock: a PKey merge already in the file
    /// is left to [`check_to_write`] on the new text, so that removing the job that causes it
    /// is not refused.
    pub fn read_for_update(text: Option<&str>, path: &str) -> Result<Self, Unusable> {
        Self::checked(text, path, false)
    }

    fn checked(text: Option<&str>, path: &str, merges: bool) -> Result<Self, Unusable> {
        let Some(text) = text else {
            return Ok(Current::Missing);
        };
        let v = verdict(grammar::check(text, path), text, path, merges);
        if let Some(kind) = v.refusal {
            // A broken marker is the only error jobnet's block checks find then: said as itself.
            let errors = match (&v.region, kind) {
                (Some(e), Refusal::Block) => e.to_string(),
                _ => bounded_errors(v.checked.diagnostics, path),
            };
            return Err(Unusable {
                kind,
                path: path.to_string(),
                errors,
                region: v.region,
            });
        }
        if v.checked.empty {
            return Ok(Current::NoPartitions(text.to_string()));
        }
        ConfFile::parse(text, path)
            .map(Current::Valid)
            .map_err(|e| Unusable {
                kind: Refusal::Block,
                path: path.to_string(),
                errors: e.to_string(),
                region: Some(e),
            })
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
                // Comments only, but maybe an empty block: the new job goes into that one.
                let (mut before, after) = match ConfFile::parse(text, "") {
                    Ok(c) => (c.before, c.after),
                    Err(_) => (text.clone(), String::new()),
                };
                if !before.is_empty() && !before.ends_with('\n') {
                    before.push('\n');
                }
                before.push_str(DEFAULT_STATEMENT);
                before.push('\n');
                ConfFile {
                    before,
                    jobs: vec![],
                    after,
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

/// Most errors a refusal lists; `jobnet ib check` lists them all.
const MAX_ERRORS: usize = 20;

/// The errors, one per line, at most [`MAX_ERRORS`] of them with a count of the rest.
fn bounded_errors(d: Diagnostics, path: &str) -> String {
    let errors: Vec<_> = d
        .sorted()
        .into_iter()
        .filter(|d| d.severity == crate::base::diag::Severity::Error)
        .collect();
    let mut text = crate::base::diag::lines(&errors[..errors.len().min(MAX_ERRORS)]);
    if errors.len() > MAX_ERRORS {
        text.push_str(&format!(
            "\n... and {} more error(s) (`jobnet ib check {path}` lists them all)",
            errors.len() - MAX_ERRORS
        ));
    }
    text
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

    fn errors(text: &str) -> String {
        check(text, "p").checked.diagnostics.errors_text()
    }

    const ADMIN: &str = "Default=0x7fff, ipoib : ALL=full;\n";

    /// Issue 13: an admin partition with a running job's PKey (0x8010 is 0x0010 to OpenSM) was
    /// written and reloaded by the next `up` without a word.
    #[test]
    fn a_job_merged_with_another_partition_is_refused_naming_both_lines() {
        let with_job =
            ConfFile::parse(ADMIN, "p")
                .unwrap()
                .with_partition(&part("7", 0x10, &[0x100001]));
        let text = with_job.replacen(
            BEGIN,
            &format!("storage=0x8010 : 0x100007=full;\n{BEGIN}"),
            1,
        );
        let e = errors(&text);
        assert!(e.contains("p:2:1: error: the partition `storage` (`storage=0x8010 : 0x100007=full;`) has PKey 0x0010, as job 7's partition `jobnet_7` at p:5 (`jobnet_7=0x0010, ipoib :`): OpenSM merges them into one partition, so job 7 is no longer isolated (PKeys compare without the membership bit: 0x8010 is 0x0010), give `storage` a PKey no job uses"), "{e}");
        assert!(matches!(
            Current::read(Some(&text), "p"),
            Err(Unusable { kind: Refusal::Merge, errors, .. }) if errors == e
        ));
        // Writing: a file that still merges job 7 is refused, the one without job 7 is not.
        let conf = match Current::read_for_update(Some(&text), "p").unwrap() {
            Current::Valid(c) => c,
            other => panic!("{other:?}"),
        };
        let more = conf.with_partition(&part("8", 0x11, &[0x100004]));
        let refused = check_to_write(&more, "p").unwrap_err().to_string();
        assert!(
            refused.contains("nothing was written")
                && refused.contains("p:2:1: error: the partition `storage`"),
            "{refused}"
        );
        check_to_write(&conf.without_job("7"), "p").unwrap();
        // Two jobs' blocks with one PKey (a hand edit): merged as well.
        let two =
            ConfFile::parse(&more, "p")
                .unwrap()
                .with_partition(&part("9", 0x11, &[0x100007]));
        assert!(errors(&two).contains("job 9's partition `jobnet_9` (`jobnet_9=0x0011, ipoib :`) has PKey 0x0011, as job 8's partition `jobnet_8` at p:8"), "{}", errors(&two));
        // Admins' own partitions sharing a PKey: their business, a warning.
        let admins = check("a=0x10 : 0x1;\nb=0x8010 : 0x2;\n", "p")
            .checked
            .diagnostics;
        assert!(!admins.has_errors());
        assert!(admins.items[0]
            .message
            .contains("PKey 0x0010 of `b` is also used by `a` (line 1)"));
    }

    /// Issue 13: an admin partition written inside the block was dropped at the next `up`.
    #[test]
    fn text_jobnet_did_not_write_inside_the_block_is_refused() {
        let mut p7 = part("7", 0x10, &[0x100001, 0x100004]);
        p7.flags = vec!["mtu=4".into()];
        let ours = ConfFile::parse(ADMIN, "p")
            .unwrap()
            .with_partition(&p7)
            .replace(END, &format!("\n{END}"));
        assert_eq!(
            errors(&ours),
            "",
            "what jobnet writes (blank lines aside) is its own"
        );
        let cases = [
            (BEGIN.to_string(), format!("{BEGIN}\nstorage=0x20 : 0x100007=full;"), "p:3:1: error: 1 line(s) inside jobnet's managed block that jobnet did not write: line 3 `storage=0x20 : 0x100007=full;`; jobnet rewrites the block on every `up` and `down` and would drop them, move them outside the markers, above `# BEGIN jobnet managed` or below `# END jobnet managed`"),
            ("0x0000000000100004=full;\n".to_string(), "0x0000000000100004=full;\n# keep: storage\nstorage=0x20 :\n  0x100007=full;\n".to_string(), "p:7:1: error: 3 line(s) inside jobnet's managed block that jobnet did not write: line 7 `# keep: storage`, line 8 `storage=0x20 :`, line 9 `0x100007=full;`;"),
            ("    0x0000000000100001=full,".to_string(), "    0x0000000000100001=full, # cn001".to_string(), "p:5:1: error: 1 line(s) inside jobnet's managed block that jobnet did not write: line 5 `0x0000000000100001=full, # cn001`"),
        ];
        for (from, to, want) in cases {
            let text = ours.replacen(&from, &to, 1);
            let e = errors(&text);
            assert!(e.contains(want), "{text}\n{e}");
            assert!(
                matches!(Current::read(Some(&text), "p"), Err(Unusable { kind: Refusal::Block, errors, .. }) if errors == e)
            );
            assert!(
                Current::read_for_update(Some(&text), "p").is_err(),
                "down refuses too"
            );
        }
        // Many lines: five are quoted, the rest counted.
        let junk: String = (0..12).map(|i| format!("# note {i}\n")).collect();
        let e = errors(&ours.replacen(&format!("{BEGIN}\n"), &format!("{BEGIN}\n{junk}"), 1));
        assert!(
            e.contains("12 line(s) inside") && e.contains("line 7 `# note 4`, and 7 more;"),
            "{e}"
        );
        assert!(!e.contains("# note 5"), "{e}");
    }

    /// Issue 13: a BEGIN without END made `up` and `down` refuse while `ib check` said valid.
    #[test]
    fn a_broken_block_is_one_verdict_for_check_and_for_changes() {
        let text = format!("{ADMIN}{BEGIN}\n# jobnet job 1\njobnet_1=0x1000 : 0x1=full;\n");
        for v in [check(&text, "p"), check_file(&text, "p")] {
            assert_eq!(v.opensm_errors, 0);
            assert!(matches!(
                v.region,
                Some(RegionError::Unterminated { line: 2, .. })
            ));
            assert_eq!(v.checked.diagnostics.errors_text(), "p:2:1: error: `# BEGIN jobnet managed` has no matching `# END jobnet managed`: jobnet cannot tell where its block ends, restore the END line after the last job's partition, or remove the block");
        }
        for read in [Current::read, Current::read_for_update] {
            assert!(matches!(
                read(Some(&text), "p"),
                Err(Unusable {
                    kind: Refusal::Block,
                    region: Some(RegionError::Unterminated { line: 2, .. }),
                    ..
                })
            ));
        }
        assert!(errors(&format!("{ADMIN}{END}\n"))
            .contains("p:2:1: error: `# END jobnet managed` without a BEGIN line"));
    }

    #[test]
    fn quotes_from_the_file_are_bounded() {
        let long = "x".repeat(3000);
        let e = errors(&format!("{long}\n"));
        assert!(e.len() < 500, "{} bytes: {e}", e.len());
        assert!(
            e.contains(&format!("`{}... (2800 more characters)`", "x".repeat(200))),
            "{e}"
        );
        // A long admin line and name in a merge.
        let name = "s".repeat(1000);
        let text = ConfFile::parse(&format!("{name}=0x10 : 0x1;\n"), "p")
            .unwrap()
            .with_partition(&part("7", 0x10, &[0x100001]));
        let e = errors(&text);
        assert!(e.len() < 1500, "{} bytes: {e}", e.len());
        assert!(e.contains("(812 more characters)`)"), "{e}");
        assert_eq!(grammar::excerpt("kurz"), "kurz");
        // Many merges: five are spelled out, the rest counted.
        let admins: String = (0..7).map(|i| format!("a{i}=0x10 : 0x1;\n")).collect();
        let text =
            ConfFile::parse(&admins, "p")
                .unwrap()
                .with_partition(&part("7", 0x10, &[0x100001]));
        let e = errors(&text);
        assert_eq!(e.lines().count(), 6, "{e}");
        assert!(
            e.contains("p:6:1: error: 2 more partition(s) share a PKey with a job's partition"),
            "{e}"
        );
        // Many errors: a refusal lists 20 and counts the rest.
        let caps: String = (1..=30).map(|g| format!("    {g:#x}=FULL,\n")).collect();
        let text = format!("{ADMIN}a=0x10 :\n{caps}    0x99=full;\n");
        let Err(Unusable {
            kind: Refusal::OpenSm,
            errors: m,
            ..
        }) = Current::read(Some(&text), "p")
        else {
            panic!("accepted")
        };
        assert_eq!(m.lines().count(), 21, "{m}");
        assert!(
            m.ends_with("\n... and 10 more error(s) (`jobnet ib check p` lists them all)"),
            "{m}"
        );
        assert_eq!(
            grammar::excerpt(&"ü".repeat(201)),
            format!("{}... (1 more characters)", "ü".repeat(200))
        );
    }

    #[test]
    fn a_comments_only_file_with_an_empty_block_keeps_one_block() {
        let text = format!("# site\n{BEGIN}\n{END}\n# tail\n");
        let cur = Current::read(Some(&text), "p").unwrap();
        assert!(matches!(cur, Current::NoPartitions(_)));
        let new = cur.conf().with_partition(&part("1", 0x1000, &[0x100001]));
        assert_eq!(new.matches(BEGIN_SHORT).count(), 1, "{new}");
        assert!(new.starts_with(&format!("# site\n{DEFAULT_STATEMENT}\n{BEGIN}\n")));
        assert!(new.ends_with(&format!("{END}\n# tail\n")));
        assert_eq!(errors(&new), "");
    }

    /// Issue 13: every refusal began "is invalid ... OpenSM falls back to its default
    /// configuration", also for a file OpenSM reads as written and jobnet refuses for its block
    /// or for a PKey merge.
    #[test]
    fn a_refusal_says_what_kind_it_is() {
        let job7 =
            ConfFile::parse(ADMIN, "p")
                .unwrap()
                .with_partition(&part("7", 0x10, &[0x100001]));
        let merged = job7.replacen(
            BEGIN,
            &format!("storage=0x8010 : 0x100007=full;\n{BEGIN}"),
            1,
        );
        let inside = job7.replacen(BEGIN, &format!("{BEGIN}\nstorage=0x20 : 0x100007=full;"), 1);
        let open = job7.replacen(&format!("{END}\n"), "", 1);
        let grammar = format!("{ADMIN}x=0x10 : 0x1\n ;\n");
        let opensm_reads = "is one OpenSM reads, but jobnet will not change it";
        for (text, kind, lead) in [
            (&grammar, Refusal::OpenSm, "p is already invalid, so jobnet will not touch it: it breaks OpenSM's grammar or runs into one of its parser traps, so OpenSM would reject it (and fall back to its default configuration, dropping every custom partition) or may apply something else than it says; fix these first (`jobnet ib check p`):\np:3:2: error: `;` is the first character"),
            (&merged, Refusal::Merge, "p is one OpenSM reads, but jobnet will not change it: OpenSM merges a job's partition in it with another partition of the same PKey, so that job is not isolated; fix these first (`jobnet ib check p`):\np:2:1: error: the partition `storage`"),
            (&inside, Refusal::Block, "p is one OpenSM reads, but jobnet will not change it: jobnet's managed block in it is broken or holds text jobnet did not write, and jobnet rewrites that block on every `up` and `down`; fix these first (`jobnet ib check p`):\np:3:1: error: 1 line(s) inside jobnet's managed block"),
            (&open, Refusal::Block, "p is one OpenSM reads, but jobnet will not change it: jobnet's managed block in it is broken or holds text jobnet did not write, and jobnet rewrites that block on every `up` and `down`; fix these first (`jobnet ib check p`):\np:2: `# BEGIN jobnet managed` has no matching `# END jobnet managed`; restore the END line or remove the block"),
        ] {
            assert_eq!(check(text, "p").refusal, Some(kind), "{text}");
            assert_eq!(check_file(text, "p").refusal, Some(kind), "{text}");
            let e = Current::read(Some(text), "p").unwrap_err();
            assert_eq!(e.kind, kind);
            let m = e.to_string();
            assert!(m.starts_with(lead), "{m}");
            assert_eq!(m.contains("falls back") || m.contains("fall back"), kind == Refusal::OpenSm, "{m}");
            assert_eq!(m.contains(opensm_reads), kind != Refusal::OpenSm, "{m}");
        }
        assert_eq!(check(&job7, "p").refusal, None);
        // `down` reads without the merge check (it may be the job that ends the merge); the
        // others are refused by `down` with the same words, through the writer.
        assert!(Current::read_for_update(Some(&merged), "p").is_ok());
        let dir = std::env::temp_dir().join(format!("jobnet-refusal-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("partitions.conf");
        let shown = path.display().to_string();
        for (text, lead) in [
            (&grammar, format!("{shown} is already invalid, so jobnet will not touch it: it breaks OpenSM's grammar")),
            (&inside, format!("{shown} {opensm_reads}: jobnet's managed block in it is broken")),
            (&open, format!("{shown} {opensm_reads}: jobnet's managed block in it is broken")),
        ] {
            std::fs::write(&path, text).unwrap();
            let e = file::update(&path, std::time::Duration::from_secs(5), |c| c.without_job("7"))
                .unwrap_err();
            assert!(matches!(e, file::WriteError::Invalid { .. }), "{e:?}");
            assert!(e.to_string().starts_with(&lead), "{e}");
            assert_eq!(&std::fs::read_to_string(&path).unwrap(), text, "untouched");
        }
        let _ = std::fs::remove_dir_all(&dir);
    }
}
