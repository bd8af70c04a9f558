//! A profile's pattern: checked when the profile is read, compiled when first used. Compiling a
//! dialect's few dozen patterns took most of a short command's start-up (`jobnet up` on one
//! switch spent 60 % of its instructions there), and a run uses few of them: `plan` none of the
//! reads, `up` the reads and refusals of its own dialects. The syntax is checked eagerly with
//! the regex crate's own parser, so a broken pattern is still a diagnostic at its position when
//! the profile loads, with the words `Regex::new` would give.

use std::fmt;
use std::sync::OnceLock;

/// A regular expression of a profile; dereferences to the compiled [`regex::Regex`].
#[derive(Clone)]
pub struct Regex {
    pattern: String,
    /// Capture groups (the whole match included), from the parse.
    captures: usize,
    compiled: OnceLock<regex::Regex>,
}

impl Regex {
    /// Checks `pattern` (as `regex::Regex::new` would, without compiling it).
    pub fn new(pattern: &str) -> Result<Regex, regex::Error> {
        let hir = regex_syntax::ParserBuilder::new()
            .build()
            .parse(pattern)
            .map_err(|e| regex::Error::Syntax(e.to_string()))?;
        Ok(Regex {
            pattern: pattern.to_string(),
            captures: hir.properties().explicit_captures_len() + 1,
            compiled: OnceLock::new(),
        })
    }

    /// The number of capture groups, the implicit whole match included (as
    /// `regex::Regex::captures_len`).
    pub fn captures_len(&self) -> usize {
        self.captures
    }

    pub fn as_str(&self) -> &str {
        &self.pattern
    }
}

impl std::ops::Deref for Regex {
    type Target = regex::Regex;

    fn deref(&self) -> &regex::Regex {
        self.compiled.get_or_init(|| {
            // The syntax was checked; only the compiled size limit (10 MiB, far beyond any
            // device pattern) is left to refuse it.
            regex::Regex::new(&self.pattern).unwrap_or_else(|e| {
                panic!("profile pattern `{}` does not compile: {e}", self.pattern)
            })
        })
    }
}

impl fmt::Display for Regex {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.pattern)
    }
}

impl fmt::Debug for Regex {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Regex({:?})", self.pattern)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checked_now_compiled_later_and_alike() {
        for p in [
            r"(?m)^Name: (\S+)",
            r"(\d+/)(\d+)",
            "^ALL$",
            r"(?i)% ?invalid\s+input",
        ] {
            let lazy = Regex::new(p).unwrap();
            let eager = regex::Regex::new(p).unwrap();
            assert_eq!(lazy.captures_len(), eager.captures_len(), "{p}");
            assert!(lazy.compiled.get().is_none(), "compiled before use");
            for text in [
                "Name: Gi1/0/1",
                "Ethernet1/7",
                "ALL",
                "% Invalid input detected",
            ] {
                assert_eq!(lazy.is_match(text), eager.is_match(text), "{p} on {text}");
            }
            assert_eq!(lazy.to_string(), p);
        }
        for bad in ["(", "a{2,1}", r"\p{NoSuchClass}", "[z-a]"] {
            let ours = Regex::new(bad).unwrap_err().to_string();
            let theirs = regex::Regex::new(bad).unwrap_err().to_string();
            assert_eq!(ours, theirs, "{bad}");
        }
    }
}
