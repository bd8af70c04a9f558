//! A checker for OpenSM's partitions.conf grammar, modelled on opensm's own parser
//! (`osm_prtn_config.c`) and the traps found on this kind of machine (docs/field notes):
//!
//! - a statement is `Name[=PKey][,flag[=value]]* : member[,member]* ;`, may span lines after its
//!   header, and several may share a line; `#` starts a comment anywhere;
//! - the header, up to its `:`, must be on one line ("no partition definition found" otherwise);
//! - flags and member keywords match as prefixes (`m` is `mtu`, `A` is `ALL`); unknown flags are
//!   ignored by OpenSM with a warning at verbose level only;
//! - PKeys and GUIDs are read with C's base-0 conversion: `0x` hex, decimal, and a leading `0`
//!   means OCTAL; a PKey above 0xffff is silently truncated, the top bit is dropped;
//! - lines are read into a 4096-byte buffer: a longer line is split mid-token;
//! - a `;` as the first non-blank character of a line, or an empty statement (`;;`), makes the
//!   parser read stale bytes of the previous line.
//!
//! - white space is only space, TAB and newline: a CR (Windows line ends), form feed, vertical
//!   tab or a UTF-8 byte order mark is an ordinary character to OpenSM and becomes part of a
//!   token (`no partition definition found`, or `full\r` read as an unknown membership); a NUL
//!   ends the line silently;
//! - membership words (`full`, `limited`, `both`) and flag names are case-sensitive prefixes: an
//!   empty value means full, anything unknown (`FULL`, `Full`, `fullx`) makes the port a LIMITED
//!   member with a warning only at verbose level; an unknown flag (`IPOIB`) is ignored;
//! - a file without any statement (empty, blank, comments only) is an error too: OpenSM then
//!   uses its default configuration.
//!
//! All of this was checked against the real OpenSM 3.3.23 (tests/opensm-cases, .ci/labs/opensm.sh).
//! OpenSM answers any parse error by dropping EVERY custom partition and making every port a full
//! member of Default, so everything it would reject, and everything that silently means something
//! other than it says, is an error here; oddities it tolerates are warnings.

use crate::base::diag::{Diagnostics, Loc};

/// OpenSM reads lines with `fgets(line, 4096 - 1)`: at most 4094 characters plus the newline.
pub const MAX_LINE: usize = 4094;

/// Longest piece of partitions.conf text quoted in a message, in characters: a line may be 4094
/// bytes long, a message should stay readable.
pub const EXCERPT_CHARS: usize = 200;
/// Most lines (or findings) quoted in one message; the rest are counted.
pub const EXCERPT_LINES: usize = 5;

/// `text` as quoted in a message: cut after [`EXCERPT_CHARS`] characters, with how many more
/// there are.
pub fn excerpt(text: &str) -> String {
    match text.char_indices().nth(EXCERPT_CHARS) {
        None => text.to_string(),
        Some((cut, _)) => format!(
            "{}... ({} more characters)",
            &text[..cut],
            text[cut..].chars().count()
        ),
    }
}

/// A member of a partition as OpenSM reads it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MemberName {
    All,
    AllCas,
    AllSwitches,
    AllRouters,
    SelfPort,
    Guid(u64),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Member {
    pub loc: Loc,
    pub name: MemberName,
    /// `full`, `limited` or `both` when given.
    pub membership: Option<String>,
}

/// One partition statement.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Statement {
    pub loc: Loc,
    pub name: String,
    /// The PKey as OpenSM stores it (16 bits, membership bit cleared), when given.
    pub pkey: Option<u16>,
    pub flags: Vec<(String, Option<String>)>,
    pub members: Vec<Member>,
    /// Ended by `;` (an unterminated last statement still counts for OpenSM).
    pub terminated: bool,
}

/// The result of checking a file.
#[derive(Debug)]
pub struct Checked {
    pub statements: Vec<Statement>,
    pub diagnostics: Diagnostics,
    /// No statement at all and nothing else wrong (empty, blank or comments only): OpenSM takes
    /// such a file as an error and uses its default configuration. [`check`] leaves it to the
    /// caller whether that is an error (`jobnet ib check`) or a file to fill (`jobnet up`).
    pub empty: bool,
}

/// OpenSM's white space: only space, TAB and newline.
fn is_ows(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\n')
}

fn ows_trim(s: &str) -> &str {
    s.trim_matches(is_ows)
}

fn ows_trim_start(s: &str) -> &str {
    s.trim_start_matches(is_ows)
}

/// C's `strtoul(s, &end, 0)` on the whole string: `0x` hex, leading-0 octal or decimal.
fn c_number(s: &str) -> Option<(u64, bool)> {
    let (digits, radix, octal) =
        if let Some(h) = s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
            (h, 16, false)
        } else if s.len() > 1 && s.starts_with('0') {
            (&s[1..], 8, true)
        } else {
            (s, 10, false)
        };
    if digits.is_empty() {
        return if s == "0" { Some((0, false)) } else { None };
    }
    u64::from_str_radix(digits, radix).ok().map(|v| (v, octal))
}

/// Does `word` select `keyword` under OpenSM's prefix matching (`strncmp(word, kw, strlen(word))`)?
fn prefix_of(word: &str, keyword: &str) -> bool {
    !word.is_empty() && keyword.starts_with(word)
}

/// The membership OpenSM reads from a `=value` (an empty value matches `full`, as strncmp with
/// length 0 does); `None` when it falls through to its "unrecognized, assume limited" branch.
fn membership_of(value: &str) -> Option<&'static str> {
    if value.is_empty() || prefix_of(value, "full") {
        Some("full")
    } else if prefix_of(value, "both") {
        Some("both")
    } else if prefix_of(value, "limited") {
        Some("limited")
    } else {
        None
    }
}

/// Bytes OpenSM does not read as they look: a byte order mark, CR, NUL and other control
/// characters (its tokenizer knows only space, TAB and newline as white space). The first of each
/// kind is reported, with how many lines have it.
fn encoding(text: &str, d: &mut Diagnostics) -> bool {
    let mut failed = false;
    if text.starts_with('\u{feff}') {
        d.error(Loc { line: 1, col: 1 }, "the file starts with a UTF-8 byte order mark (EF BB BF): OpenSM reads it as part of the first statement (a partition named `\u{feff}Default`, or `no partition definition found` before a comment)", "save the file without a BOM, e.g. `sed -i '1s/^\\xEF\\xBB\\xBF//' FILE`");
        failed = true;
    }
    type Kind = (&'static str, fn(char) -> bool, &'static str);
    let kinds: [Kind; 3] = [
        ("a CR (Windows line end)", |c| c == '\r', "OpenSM rejects the file (`no partition definition found`) or reads `full\\r` as LIMITED, and falls back to its default configuration, dropping every partition; convert it to Unix line ends: `sed -i 's/\\r$//' FILE` (or dos2unix)"),
        ("a NUL byte", |c| c == '\0', "OpenSM stops reading the line there and silently drops the rest of it; remove it"),
        ("a control character", |c| c.is_control() && !matches!(c, '\t' | '\n' | '\r' | '\0'), "OpenSM does not take form feeds, vertical tabs or other control characters as white space; replace it by a space"),
    ];
    for (what, is, help) in kinds {
        let mut hits = text.split_inclusive('\n').enumerate().filter_map(|(i, l)| {
            l.char_indices()
                .find(|(_, c)| is(*c))
                .map(|(b, c)| (i + 1, l[..b].chars().count() + 1, c))
        });
        if let Some((line, col, c)) = hits.next() {
            let more = hits.count();
            let also = if more > 0 {
                format!(" (and on {more} more line(s))")
            } else {
                String::new()
            };
            d.error(Loc { line, col }, format!("{what} {:?}{also}", c), help);
            failed = true;
        }
    }
    failed
}

struct Parser<'a> {
    d: &'a mut Diagnostics,
    out: Vec<Statement>,
    current: Option<Statement>,
}

impl Parser<'_> {
    fn at(line: usize, col: usize) -> Loc {
        Loc { line, col }
    }

    /// A statement's header (`Name[=PKey][,flag[=value]]*`, up to its `:`); `None` when OpenSM
    /// rejects it.
    fn header(&mut self, text: &str, line: usize, col: usize) -> Option<Statement> {
        let mut parts = text.split(',');
        let first = parts.next().unwrap_or("");
        let (name, id) = match first.split_once('=') {
            Some((n, i)) => (ows_trim(n), Some(ows_trim(i))),
            None => (ows_trim(first), None),
        };
        let (name, id) = if id.is_none() && name.starts_with(|c: char| c.is_ascii_digit()) {
            ("", Some(name))
        } else {
            (name, id)
        };
        let loc = Self::at(line, col);
        let pkey = match id {
            Some(id) => Some(self.pkey(id, loc)?),
            None => None,
        };
        if name.is_empty() && pkey.is_none() {
            self.d.error(
                loc,
                "a partition without a name or PKey",
                "write `Name=0xPKEY : members ;`",
            );
            return None;
        }
        if name.contains(is_ows) {
            self.d.error(
                loc,
                format!("partition name `{}` contains white space", excerpt(name)),
                "use letters, digits and _ only",
            );
        }
        let mut flags = Vec::new();
        for f in parts {
            let (flag, val) = match f.split_once('=') {
                Some((a, b)) => (ows_trim(a), Some(ows_trim(b).to_string())),
                None => (ows_trim(f), None),
            };
            if flag.is_empty() {
                // OpenSM's tokenizer yields "", which prefix-matches `mtu` without a value: skipped
                // (checked against the real OpenSM in the lab).
                self.d.warning(
                    loc,
                    "an empty flag (two commas, or a comma before `:`): OpenSM skips it",
                    "remove the extra comma",
                );
                continue;
            }
            self.flag(flag, val.as_deref(), loc);
            flags.push((flag.to_string(), val));
        }
        Some(Statement {
            loc,
            name: name.to_string(),
            pkey,
            flags,
            members: Vec::new(),
            terminated: false,
        })
    }

    /// The PKey of a header as OpenSM stores it (16 bits, membership bit cleared); `None` when it
    /// is not a number at all.
    fn pkey(&mut self, id: &str, loc: Loc) -> Option<u16> {
        let Some((v, octal)) = c_number(id) else {
            self.d.error(
                loc,
                format!(
                    "bad partition definition: PKey `{}` is not a number",
                    excerpt(id)
                ),
                "write the PKey as 0x followed by hex digits, e.g. 0x0010",
            );
            return None;
        };
        let id = excerpt(id);
        if v > 0xffff {
            self.d.error(
                loc,
                format!(
                    "PKey `{id}` is larger than 16 bits: OpenSM silently truncates it to {:#06x}",
                    v & 0xffff
                ),
                "write the PKey in 0x0001..0x7ffe",
            );
        }
        if octal {
            self.d.error(
                loc,
                format!(
                    "PKey `{id}` starts with 0 and is read as OCTAL ({:#06x})",
                    v & 0xffff
                ),
                "write it as 0x hex",
            );
        }
        let key = (v as u16) & 0x7fff;
        if key == 0 {
            self.d.error(
                loc,
                format!("PKey `{id}` is 0 once its membership bit is dropped, which is invalid"),
                "use 0x0001..0x7ffe",
            );
        }
        Some(key)
    }

    /// Checks one header flag the way OpenSM matches it: a case-sensitive prefix of a known flag.
    fn flag(&mut self, raw: &str, val: Option<&str>, loc: Loc) {
        let known = [
            "ipoib",
            "defmember",
            "mtu",
            "rate",
            "sl",
            "scope",
            "Q_Key",
            "TClass",
            "FlowLabel",
        ];
        let lower = raw.to_ascii_lowercase();
        let flag = excerpt(raw);
        match known.iter().find(|k| prefix_of(raw, k)) {
            None => match known.iter().find(|k| prefix_of(&lower, &k.to_ascii_lowercase())) {
                Some(k) => self.d.error(
                    loc,
                    format!("flag `{flag}` is not `{k}`: OpenSM's flags are case-sensitive and it silently ignores `{flag}`"),
                    format!("write `{k}`"),
                ),
                None => self.d.warning(
                    loc,
                    format!("unknown partition flag `{flag}`: OpenSM ignores it"),
                    format!("known flags: {}", known.join(", ")),
                ),
            },
            Some(k) => {
                if *k != raw {
                    self.d.warning(
                        loc,
                        format!("flag `{flag}` is read as `{k}` (OpenSM matches prefixes)"),
                        format!("write `{k}`"),
                    );
                }
                if *k == "defmember" {
                    let v = val.unwrap_or("");
                    if membership_of(v).is_none() {
                        let v = excerpt(v);
                        self.d.error(
                            loc,
                            format!("defmember `{v}` is not full, limited or both (case-sensitive): OpenSM skips the flag and members without `=full` stay LIMITED"),
                            "write defmember=full (lower case)",
                        );
                    }
                }
                if matches!(*k, "mtu" | "rate" | "sl" | "scope")
                    && !val.and_then(c_number).is_some_and(|(v, _)| v > 0 || *k == "sl")
                {
                    self.d.warning(
                        loc,
                        format!(
                            "flag `{k}` needs a number, got `{}`: OpenSM skips it",
                            excerpt(val.unwrap_or(""))
                        ),
                        "give a value, e.g. mtu=4",
                    );
                }
            }
        }
    }

    /// Members in `text` (between the header's `:` or the line start and a `;` or the line end).
    fn members(&mut self, text: &str, line: usize, col0: usize) -> bool {
        let mut offset = 0;
        for item in text.split(',') {
            let col = col0 + offset + (item.len() - ows_trim_start(item).len());
            offset += item.len() + 1;
            let (name, flag) = match item.split_once('=') {
                Some((a, b)) => (ows_trim(a), Some(ows_trim(b))),
                None => (ows_trim(item), None),
            };
            let loc = Self::at(line, col);
            if name.is_empty() || prefix_of(name, "NONE") {
                continue;
            }
            if name == "mgid" {
                // An mgid entry consumes the rest of the statement.
                break;
            }
            let Some(member) = self.member_name(name, item, line, loc) else {
                return false;
            };
            if let Some(f) = flag {
                self.membership(f, name, loc);
            }
            if let Some(st) = self.current.as_mut() {
                st.members.push(Member {
                    loc,
                    name: member,
                    membership: flag.map(str::to_string),
                });
            }
        }
        true
    }

    /// What a member's name selects: a keyword (as a prefix) or a port GUID; `None` when OpenSM
    /// rejects it (`item` is the whole member text, for the hint).
    fn member_name(&mut self, name: &str, item: &str, line: usize, loc: Loc) -> Option<MemberName> {
        let keyword = [
            ("ALL", MemberName::All),
            ("ALL_CAS", MemberName::AllCas),
            ("ALL_SWITCHES", MemberName::AllSwitches),
            ("ALL_ROUTERS", MemberName::AllRouters),
            ("SELF", MemberName::SelfPort),
        ]
        .into_iter()
        .find(|(k, _)| prefix_of(name, k));
        if let Some((k, m)) = keyword {
            if k != name {
                self.d.warning(
                    loc,
                    format!("member `{name}` is read as `{k}` (OpenSM matches prefixes)"),
                    format!("write `{k}`"),
                );
            }
            return Some(m);
        }
        let shown = excerpt(name);
        match c_number(name) {
            Some((0, _)) | None => {
                let help = match self.current.as_ref() {
                    Some(st) if st.loc.line < line && (item.contains(':') || name.contains(char::is_alphabetic)) => format!(
                        "the partition `{}` that starts on line {} has no `;` before this line, so OpenSM reads this line as its members: end that statement with `;`",
                        excerpt(&st.name), st.loc.line
                    ),
                    _ => "write a port GUID as 0x followed by up to 16 hex digits, or ALL, ALL_CAS, ALL_SWITCHES, ALL_ROUTERS, SELF (keywords are case-sensitive)".to_string(),
                };
                self.d.error(loc, format!("bad PortGUID `{shown}`"), help);
                None
            }
            Some((g, octal)) => {
                if octal {
                    self.d.error(
                        loc,
                        format!("GUID `{shown}` starts with 0 and is read as OCTAL ({g:#x})"),
                        "write GUIDs with 0x",
                    );
                } else if !name.starts_with("0x") && !name.starts_with("0X") {
                    self.d.warning(
                        loc,
                        format!("GUID `{shown}` is decimal ({g:#x})"),
                        "write GUIDs with 0x",
                    );
                }
                Some(MemberName::Guid(g))
            }
        }
    }

    /// Checks a member's `=value`: OpenSM compares it case-sensitively as a prefix of `full`, then
    /// `both`, then `limited`; anything else makes the port a LIMITED member (warned about only at
    /// OpenSM's verbose level).
    fn membership(&mut self, raw: &str, name: &str, loc: Loc) {
        let (f, name) = (excerpt(raw), excerpt(name));
        match membership_of(raw) {
            Some("both") => self.d.warning(
                loc,
                format!("membership `{f}` of `{name}` is read as `both`, which OpenSM treats as full unless it runs with allow_both_pkeys"),
                "write =full or =limited",
            ),
            Some(_) => {}
            None if raw.eq_ignore_ascii_case("limited") => self.d.warning(
                loc,
                format!("membership `{f}` of `{name}` is not lower case: OpenSM warns and makes it limited, as written"),
                "write =limited",
            ),
            None => {
                let meant = ["full", "both"]
                    .iter()
                    .find(|m| prefix_of(&raw.to_ascii_lowercase(), m))
                    .map_or(String::new(), |m| format!(" (it does not read `{f}` as `{m}`: membership words are case-sensitive)"));
                self.d.error(
                    loc,
                    format!("membership `{f}` of `{name}` is unknown: OpenSM silently makes the port a LIMITED member{meant}"),
                    "write =full, =limited or =both in lower case",
                );
            }
        }
    }

    fn close(&mut self) {
        if let Some(mut st) = self.current.take() {
            st.terminated = true;
            self.out.push(st);
        }
    }

    /// Reads one line (without its newline); false when OpenSM stops reading the file there.
    fn line(&mut self, line: usize, body: &str) -> bool {
        if body.len() > MAX_LINE {
            self.d.error(Parser::at(line, MAX_LINE + 1), format!("line {line} is {} bytes long; OpenSM reads at most {MAX_LINE} and would split it mid-token", body.len()), "put one member per line");
            return false;
        }
        let code = body.split('#').next().unwrap_or("");
        if ows_trim_start(code).starts_with(';') {
            let col = code.len() - ows_trim_start(code).len() + 1;
            self.d.error(Parser::at(line, col), "`;` is the first character of the line: OpenSM's parser then reads stale bytes of the previous line", "put the `;` right after the last member");
            return false;
        }
        let mut pos = 0;
        while pos < code.len() {
            let rest = &code[pos..];
            let start = pos + (rest.len() - ows_trim_start(rest).len());
            if start >= code.len() {
                break;
            }
            let seg_end = code[start..].find(';').map(|k| start + k);
            let segment = &code[start..seg_end.unwrap_or(code.len())];
            if ows_trim(segment).is_empty() && seg_end.is_some() {
                self.d.error(
                    Parser::at(line, start + 1),
                    "an empty statement (`;;`): OpenSM's parser then reads stale bytes",
                    "remove the extra `;`",
                );
                return false;
            }
            if !self.segment(segment, line, start) {
                return false;
            }
            match seg_end {
                Some(e) => {
                    self.close();
                    pos = e + 1;
                }
                None => break,
            }
        }
        true
    }

    /// Reads the text of a line up to a `;` (or the line end), starting at byte `start`: a header
    /// when no statement is open, then members; false on an error.
    fn segment(&mut self, segment: &str, line: usize, start: usize) -> bool {
        let members_from = if self.current.is_none() {
            let Some(colon) = segment.find(':') else {
                self.d.error(
                    Parser::at(line, start + 1),
                    format!(
                        "no partition definition found in `{}`",
                        excerpt(ows_trim(segment))
                    ),
                    "a statement starts with `Name=PKey, flags :` on one line",
                );
                return false;
            };
            match self.header(&segment[..colon], line, start + 1) {
                Some(st) => self.current = Some(st),
                None => return false,
            }
            colon + 1
        } else {
            0
        };
        self.members(&segment[members_from..], line, start + members_from + 1)
    }

    /// The statements read; an open statement at the end counts (with a warning unless reading
    /// `failed`).
    fn finish(&mut self, failed: bool) -> Vec<Statement> {
        if let Some(st) = self.current.take() {
            if !failed {
                self.d.warning(
                    st.loc,
                    format!("partition `{}` is not ended by `;`", excerpt(&st.name)),
                    "end every statement with `;`",
                );
            }
            self.out.push(st);
        }
        std::mem::take(&mut self.out)
    }
}

/// Checks a whole partitions.conf text; `file` is used in messages.
pub fn check(text: &str, file: &str) -> Checked {
    let mut d = Diagnostics::new(file);
    let mut p = Parser {
        d: &mut d,
        out: Vec::new(),
        current: None,
    };
    let mut failed = encoding(text, p.d);
    if !failed {
        for (i, raw) in text.split_inclusive('\n').enumerate() {
            let body = raw.strip_suffix('\n').unwrap_or(raw);
            if !p.line(i + 1, body) {
                // OpenSM stops at the first error; so do we (later positions would be noise).
                failed = true;
                break;
            }
        }
    }
    let statements = p.finish(failed);
    let empty = !failed && statements.is_empty();
    if !failed {
        statement_warnings(&statements, &mut d);
    }
    Checked {
        statements,
        diagnostics: d,
        empty,
    }
}

/// What OpenSM accepts but drops: statements without members. (PKeys used twice, which OpenSM
/// merges, are judged by [`super::check`], which knows which statements are jobs'.)
fn statement_warnings(statements: &[Statement], d: &mut Diagnostics) {
    for st in statements.iter().filter(|st| st.members.is_empty()) {
        d.warning(
            st.loc,
            format!(
                "partition `{}` has no members: OpenSM drops it",
                excerpt(&st.name)
            ),
            "add members or remove it",
        );
    }
}

/// [`check`] for a file as OpenSM will read it on its own: one without any statement is an error.
pub fn check_file(text: &str, file: &str) -> Checked {
    let mut c = check(text, file);
    if c.empty {
        c.diagnostics.error(Loc { line: 1, col: 1 }, "no partition statements (the file is empty, blank or only comments): OpenSM treats such a file as an error and falls back to its default configuration (every port a full member of Default, nothing else)", "write at least `Default=0x7fff, ipoib : ALL=full;` (jobnet up does this itself when it adds a job)");
    }
    c
}

#[cfg(test)]
mod tests {
    use super::*;

    fn errors(text: &str) -> Vec<String> {
        check(text, "p.conf")
            .diagnostics
            .sorted()
            .into_iter()
            .map(|d| d.to_string())
            .collect()
    }

    #[test]
    fn reads_statements_across_lines() {
        let c = check("# site\nDefault=0x7fff, ipoib : ALL=full;\nstorage=0x8010,ipoib,mtu=5: 0x2c90300a1b001=full,\n  0x0002c90300a1b002 ; x=0x11:SELF;\n", "p.conf");
        assert!(!c.diagnostics.has_errors(), "{:?}", c.diagnostics.items);
        assert_eq!(c.statements.len(), 3);
        assert_eq!(c.statements[1].pkey, Some(0x10), "membership bit dropped");
        assert_eq!(c.statements[1].members.len(), 2);
        assert_eq!(
            c.statements[1].members[0].name,
            MemberName::Guid(0x2c90300a1b001)
        );
        assert_eq!(c.statements[2].members[0].name, MemberName::SelfPort);
    }

    #[test]
    fn traps_are_errors_with_positions() {
        assert_eq!(errors("a=0x10 : 0x1\n  ;\n")[0], "p.conf:2:3: error: `;` is the first character of the line: OpenSM's parser then reads stale bytes of the previous line, put the `;` right after the last member");
        assert!(errors("a=0x10 : 0x1;;\n")[0].contains("p.conf:1:14: error: an empty statement"));
        assert!(errors("a=0x10\n : 0x1;\n")[0]
            .contains("p.conf:1:1: error: no partition definition found in `a=0x10`"));
        assert!(
            errors("a=0x10 : 0x1, 0xzz;\n")[0].contains("p.conf:1:15: error: bad PortGUID `0xzz`")
        );
        assert!(errors("a=0x10 : 0123;\n")[0].contains("read as OCTAL (0x53)"));
        assert!(errors("a=0x18001 : ALL;\n")[0].contains("OpenSM silently truncates it to 0x8001"));
        assert!(errors("a=zz : ALL;\n")[0].contains("PKey `zz` is not a number"));
        let long = format!("a=0x10 : {};\n", vec!["0x1"; 2000].join(","));
        assert!(errors(&long)[0].contains("OpenSM reads at most 4094"));
    }

    #[test]
    fn oddities_are_warnings() {
        let c = check(
            "a=0x10, m=4, colour=red,, : A=full, 0x5=both, 0x7=, 0x8=LIMITED ;\nb=0x8010 : 0x6;\nc=0x20 : ;\n",
            "p.conf",
        );
        assert!(!c.diagnostics.has_errors(), "{:?}", c.diagnostics.items);
        let w: Vec<String> = c
            .diagnostics
            .items
            .iter()
            .map(|d| d.message.clone())
            .collect();
        assert!(
            w.iter().any(|m| m.contains("flag `m` is read as `mtu`")),
            "{w:?}"
        );
        assert!(w
            .iter()
            .any(|m| m.contains("unknown partition flag `colour`")));
        assert!(w.iter().any(|m| m.contains("member `A` is read as `ALL`")));
        assert!(w
            .iter()
            .any(|m| m.contains("`both`, which OpenSM treats as full")));
        assert!(w
            .iter()
            .any(|m| m.contains("`LIMITED` of `0x8` is not lower case")));
        assert!(
            !w.iter().any(|m| m.contains("`0x7`")),
            "an empty value is full, as OpenSM reads it: {w:?}"
        );
        assert!(w.iter().any(|m| m.contains("partition `c` has no members")));
        assert!(w.iter().any(|m| m.contains("an empty flag")));
        let e = check("# nothing\n", "p");
        assert!(e.empty && !e.diagnostics.has_errors());
        assert!(check_file("# nothing\n", "p").diagnostics.items[0]
            .message
            .contains("falls back to its default"));
        assert!(check_file("", "p").diagnostics.has_errors());
    }

    /// What the real OpenSM 3.3.23 rejects or silently misreads (tests/opensm-cases).
    #[test]
    fn encodings_and_case_opensm_misreads_are_errors() {
        let e = errors("Default=0x7fff, ipoib : ALL=full;\r\nstorage=0x10 : 0x1=full;\r\n");
        assert!(
            e[0].starts_with(
                "p.conf:1:34: error: a CR (Windows line end) '\\r' (and on 1 more line(s))"
            ),
            "{e:?}"
        );
        assert!(errors("\u{feff}Default=0x7fff : ALL=full;\n")[0]
            .contains("p.conf:1:1: error: the file starts with a UTF-8 byte order mark"));
        assert!(errors("a=0x10 :\0 0x1=full;\n")[0].contains("p.conf:1:9: error: a NUL byte"));
        assert!(errors("a=0x10\x0c: 0x1=full;\n")[0]
            .contains("p.conf:1:7: error: a control character '\\u{c}'"));
        assert!(errors("a=0x10 : 0x1=FULL;\n")[0].contains("p.conf:1:10: error: membership `FULL` of `0x1` is unknown: OpenSM silently makes the port a LIMITED member (it does not read `FULL` as `full`"));
        assert!(errors("a=0x10 : 0x1=Both;\n")[0].contains("as `both`"));
        assert!(errors("a=0x10 : 0x1=fullx;\n")[0].contains("membership `fullx`"));
        assert!(errors("a=0x10, IPOIB : 0x1=full;\n")[0].contains("flag `IPOIB` is not `ipoib`"));
        assert!(errors("a=0x10, defmember=FULL : 0x1;\n")[0]
            .contains("defmember `FULL` is not full, limited or both"));
        assert!(errors("Default=0x7fff : all=full;\n")[0].contains("bad PortGUID `all`"));
        // Only space, TAB and newline are white space to OpenSM; TABs anywhere are fine.
        assert!(!check("a=\t0x10\t:\t0x1=\tfull ,\t0x2 = full\t;\n", "p")
            .diagnostics
            .has_errors());
        // A missing `;` makes the next statement members of the previous one: say so.
        let e = errors("Default=0x7fff : ALL=full\nstorage=0x10 : 0x1=full;\n");
        assert!(e[0].contains("p.conf:2:1: error: bad PortGUID `storage`, the partition `Default` that starts on line 1 has no `;`"), "{e:?}");
    }
}
