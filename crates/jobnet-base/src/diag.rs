//! Diagnostics: what went wrong in an input file, where (`FILE:LINE:COL`) and how to fix it.
//!
//! Every check in jobnet that looks at user input reports through [`Diagnostic`], so errors and
//! warnings share one format: `FILE:LINE:COL: error: <what>, <how to fix>`. A loader collects all
//! diagnostics of a file instead of stopping at the first, so one run shows every problem.

use std::fmt;

/// A 1-based line and column in an input file.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Loc {
    pub line: usize,
    pub col: usize,
}

impl fmt::Display for Loc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.line, self.col)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Severity {
    Error,
    Warning,
}

/// One finding about an input file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Diagnostic {
    pub severity: Severity,
    pub file: String,
    pub loc: Loc,
    /// What is wrong, naming the offending value.
    pub message: String,
    /// What to do about it.
    pub help: String,
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sev = match self.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
        };
        write!(f, "{}:{}: {}: {}", self.file, self.loc, sev, self.message)?;
        if !self.help.is_empty() {
            write!(f, ", {}", self.help)?;
        }
        Ok(())
    }
}

/// How many diagnostics are printed for a person: the first hundred locate the problem, where
/// fifty thousand lines (a generated file gone wrong) would bury it and the summary under them.
/// JSON output keeps every one.
pub const PRINTED: usize = 100;

/// Diagnostics one per line, as every error message that carries them prints them: at most
/// [`PRINTED`], then a line counting the rest.
pub fn lines(d: &[Diagnostic]) -> String {
    printed(d).join("\n")
}

/// The lines of [`lines`]: the first [`PRINTED`] diagnostics, then `... and N more error(s)`.
pub fn printed(d: &[Diagnostic]) -> Vec<String> {
    let mut out: Vec<String> = d.iter().take(PRINTED).map(|d| d.to_string()).collect();
    let rest = d.get(PRINTED..).unwrap_or_default();
    if !rest.is_empty() {
        let errors = rest
            .iter()
            .filter(|d| d.severity == Severity::Error)
            .count();
        let more = match (errors, rest.len() - errors) {
            (e, 0) => format!("{e} more error(s)"),
            (0, w) => format!("{w} more warning(s)"),
            (e, w) => format!("{e} more error(s) and {w} more warning(s)"),
        };
        out.push(format!("... and {more}"));
    }
    out
}

/// Collects the diagnostics of one file.
#[derive(Debug, Default)]
pub struct Diagnostics {
    pub file: String,
    pub items: Vec<Diagnostic>,
}

impl Diagnostics {
    pub fn new(file: impl Into<String>) -> Self {
        Diagnostics {
            file: file.into(),
            items: Vec::new(),
        }
    }

    pub fn error(&mut self, loc: Loc, message: impl Into<String>, help: impl Into<String>) {
        self.push(Severity::Error, loc, message.into(), help.into());
    }

    pub fn warning(&mut self, loc: Loc, message: impl Into<String>, help: impl Into<String>) {
        self.push(Severity::Warning, loc, message.into(), help.into());
    }

    fn push(&mut self, severity: Severity, loc: Loc, message: String, help: String) {
        self.items.push(Diagnostic {
            severity,
            file: self.file.clone(),
            loc,
            message,
            help,
        });
    }

    pub fn has_errors(&self) -> bool {
        self.items.iter().any(|d| d.severity == Severity::Error)
    }

    /// The errors only, sorted, one per line.
    pub fn errors_text(self) -> String {
        let errors: Vec<Diagnostic> = self
            .sorted()
            .into_iter()
            .filter(|d| d.severity == Severity::Error)
            .collect();
        lines(&errors)
    }

    /// How many errors there are.
    pub fn error_count(&self) -> usize {
        self.items
            .iter()
            .filter(|d| d.severity == Severity::Error)
            .count()
    }

    /// Sorted by position, errors before warnings at the same place.
    pub fn sorted(mut self) -> Vec<Diagnostic> {
        self.items.sort_by_key(|d| (d.loc, d.severity));
        self.items
    }
}

/// The closest candidate to `word`, if it is close enough to be a likely typo.
pub fn did_you_mean<'a>(
    word: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Option<&'a str> {
    let limit = (word.chars().count() / 3).clamp(1, 3);
    candidates
        .into_iter()
        .map(|c| (strsim::levenshtein(word, c), c))
        .filter(|(d, _)| *d <= limit)
        .min()
        .map(|(_, c)| c)
}

/// ", did you mean `x`?" or nothing.
pub fn suggestion<'a>(word: &str, candidates: impl IntoIterator<Item = &'a str>) -> String {
    match did_you_mean(word, candidates) {
        Some(c) => format!("did you mean `{c}`?"),
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggests_close_words_only() {
        let keys = ["switches", "links", "nodes", "gateways"];
        assert_eq!(did_you_mean("swiches", keys), Some("switches"));
        assert_eq!(did_you_mean("node", keys), Some("nodes"));
        assert_eq!(did_you_mean("zebra", keys), None);
    }

    #[test]
    fn prints_at_most_a_hundred_and_counts_the_rest() {
        let mut d = Diagnostics::new("t.yaml");
        for line in 1..=50_000 {
            d.error(Loc { line, col: 1 }, "bad", "");
        }
        d.warning(
            Loc {
                line: 50_001,
                col: 1,
            },
            "odd",
            "",
        );
        let shown = printed(&d.items);
        assert_eq!(shown.len(), PRINTED + 1);
        assert_eq!(shown[0], "t.yaml:1:1: error: bad");
        assert_eq!(shown[PRINTED - 1], "t.yaml:100:1: error: bad");
        assert_eq!(
            shown[PRINTED],
            "... and 49900 more error(s) and 1 more warning(s)"
        );
        assert_eq!(lines(&d.items).lines().count(), PRINTED + 1);
        assert_eq!(printed(&d.items[..PRINTED]).len(), PRINTED, "no count line");
        assert_eq!(
            printed(&d.items[49_950..]).last().unwrap(),
            "t.yaml:50001:1: warning: odd"
        );
    }

    #[test]
    fn formats_file_line_col() {
        let mut d = Diagnostics::new("t.yaml");
        d.error(Loc { line: 3, col: 5 }, "bad thing `x`", "write `y`");
        assert_eq!(
            d.items[0].to_string(),
            "t.yaml:3:5: error: bad thing `x`, write `y`"
        );
    }
}
