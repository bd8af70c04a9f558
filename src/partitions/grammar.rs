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
//! OpenSM answers any parse error by dropping EVERY custom partition and making every port a full
//! member of Default, so everything it would reject, and everything that silently means something
//! other than it says, is an error here; oddities it tolerates are warnings.

use crate::diag::{Diagnostics, Loc};

/// OpenSM reads lines with `fgets(line, 4096 - 1)`: at most 4094 characters plus the newline.
pub const MAX_LINE: usize = 4094;

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

struct Parser<'a> {
    d: &'a mut Diagnostics,
    out: Vec<Statement>,
    current: Option<Statement>,
}

impl Parser<'_> {
    fn at(line: usize, col: usize) -> Loc {
        Loc { line, col }
    }

    fn header(&mut self, text: &str, line: usize, col: usize) -> Option<Statement> {
        let mut parts = text.split(',');
        let first = parts.next().unwrap_or("");
        let (name, id) = match first.split_once('=') {
            Some((n, i)) => (n.trim(), Some(i.trim())),
            None => (first.trim(), None),
        };
        let (name, id) = if id.is_none() && name.starts_with(|c: char| c.is_ascii_digit()) {
            ("", Some(name))
        } else {
            (name, id)
        };
        let loc = Self::at(line, col);
        let mut pkey = None;
        if let Some(id) = id {
            match c_number(id) {
                None => {
                    self.d.error(
                        loc,
                        format!("bad partition definition: PKey `{id}` is not a number"),
                        "write the PKey as 0x followed by hex digits, e.g. 0x0010",
                    );
                    return None;
                }
                Some((v, octal)) => {
                    if v > 0xffff {
                        self.d.error(loc, format!("PKey `{id}` is larger than 16 bits: OpenSM silently truncates it to {:#06x}", v & 0xffff), "write the PKey in 0x0001..0x7ffe");
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
                        self.d.error(loc, format!("PKey `{id}` is 0 once its membership bit is dropped, which is invalid"), "use 0x0001..0x7ffe");
                    }
                    pkey = Some(key);
                }
            }
        }
        if name.is_empty() && pkey.is_none() {
            self.d.error(
                loc,
                "a partition without a name or PKey",
                "write `Name=0xPKEY : members ;`",
            );
            return None;
        }
        if name.contains(char::is_whitespace) {
            self.d.error(
                loc,
                format!("partition name `{name}` contains white space"),
                "use letters, digits and _ only",
            );
        }
        let mut flags = Vec::new();
        for f in parts {
            let (flag, val) = match f.split_once('=') {
                Some((a, b)) => (a.trim(), Some(b.trim().to_string())),
                None => (f.trim(), None),
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
            match known.iter().find(|k| prefix_of(flag, k)) {
                None => self.d.warning(
                    loc,
                    format!("unknown partition flag `{flag}`: OpenSM ignores it"),
                    format!("known flags: {}", known.join(", ")),
                ),
                Some(k) => {
                    if *k != flag {
                        self.d.warning(
                            loc,
                            format!("flag `{flag}` is read as `{k}` (OpenSM matches prefixes)"),
                            format!("write `{k}`"),
                        );
                    }
                    if *k == "defmember"
                        && !val.as_deref().is_some_and(|v| {
                            ["full", "limited", "both"].iter().any(|m| prefix_of(v, m))
                        })
                    {
                        self.d.warning(
                            loc,
                            format!(
                                "defmember needs full, limited or both, got `{}`: OpenSM skips it",
                                val.as_deref().unwrap_or("")
                            ),
                            "write defmember=full",
                        );
                    }
                    if matches!(*k, "mtu" | "rate" | "sl" | "scope")
                        && !val
                            .as_deref()
                            .and_then(c_number)
                            .is_some_and(|(v, _)| v > 0 || *k == "sl")
                    {
                        self.d.warning(
                            loc,
                            format!(
                                "flag `{k}` needs a number, got `{}`: OpenSM skips it",
                                val.as_deref().unwrap_or("")
                            ),
                            "give a value, e.g. mtu=4",
                        );
                    }
                }
            }
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

    /// Members in `text` (between the header's `:` or the line start and a `;` or the line end).
    fn members(&mut self, text: &str, line: usize, col0: usize) -> bool {
        let mut offset = 0;
        for item in text.split(',') {
            let col = col0 + offset + (item.len() - item.trim_start().len());
            offset += item.len() + 1;
            let (name, flag) = match item.split_once('=') {
                Some((a, b)) => (a.trim(), Some(b.trim())),
                None => (item.trim(), None),
            };
            let loc = Self::at(line, col);
            if name.is_empty() || prefix_of(name, "NONE") {
                continue;
            }
            if name == "mgid" {
                // An mgid entry consumes the rest of the statement.
                break;
            }
            let keyword = [
                ("ALL", MemberName::All),
                ("ALL_CAS", MemberName::AllCas),
                ("ALL_SWITCHES", MemberName::AllSwitches),
                ("ALL_ROUTERS", MemberName::AllRouters),
                ("SELF", MemberName::SelfPort),
            ]
            .into_iter()
            .find(|(k, _)| prefix_of(name, k));
            let member = match keyword {
                Some((k, m)) => {
                    if k != name {
                        self.d.warning(
                            loc,
                            format!("member `{name}` is read as `{k}` (OpenSM matches prefixes)"),
                            format!("write `{k}`"),
                        );
                    }
                    m
                }
                None => match c_number(name) {
                    Some((0, _)) | None => {
                        self.d.error(loc, format!("bad PortGUID `{name}`"), "write a port GUID as 0x followed by up to 16 hex digits, or ALL, ALL_CAS, ALL_SWITCHES, ALL_ROUTERS, SELF");
                        return false;
                    }
                    Some((g, octal)) => {
                        if octal {
                            self.d.error(
                                loc,
                                format!(
                                    "GUID `{name}` starts with 0 and is read as OCTAL ({g:#x})"
                                ),
                                "write GUIDs with 0x",
                            );
                        } else if !name.starts_with("0x") && !name.starts_with("0X") {
                            self.d.warning(
                                loc,
                                format!("GUID `{name}` is decimal ({g:#x})"),
                                "write GUIDs with 0x",
                            );
                        }
                        MemberName::Guid(g)
                    }
                },
            };
            if let Some(f) = flag {
                if !["full", "limited", "both"].iter().any(|m| prefix_of(f, m)) {
                    self.d.warning(
                        loc,
                        format!("membership `{f}` of `{name}` is unknown: OpenSM makes it limited"),
                        "write =full, =limited or =both",
                    );
                }
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

    fn close(&mut self) {
        if let Some(mut st) = self.current.take() {
            st.terminated = true;
            self.out.push(st);
        }
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
    let mut failed = false;
    for (i, raw) in text.split_inclusive('\n').enumerate() {
        let line = i + 1;
        let body = raw.strip_suffix('\n').unwrap_or(raw);
        if body.len() > MAX_LINE {
            p.d.error(Parser::at(line, MAX_LINE + 1), format!("line {line} is {} bytes long; OpenSM reads at most {MAX_LINE} and would split it mid-token", body.len()), "put one member per line");
            failed = true;
            continue;
        }
        let code = body.split('#').next().unwrap_or("");
        if code.trim_start().starts_with(';') {
            let col = code.len() - code.trim_start().len() + 1;
            p.d.error(Parser::at(line, col), "`;` is the first character of the line: OpenSM's parser then reads stale bytes of the previous line", "put the `;` right after the last member");
            failed = true;
            continue;
        }
        let mut pos = 0;
        while pos < code.len() {
            let rest = &code[pos..];
            let start = pos + (rest.len() - rest.trim_start().len());
            if start >= code.len() {
                break;
            }
            let seg_end = code[start..].find(';').map(|k| start + k);
            let segment = &code[start..seg_end.unwrap_or(code.len())];
            if segment.trim().is_empty() && seg_end.is_some() {
                p.d.error(
                    Parser::at(line, start + 1),
                    "an empty statement (`;;`): OpenSM's parser then reads stale bytes",
                    "remove the extra `;`",
                );
                failed = true;
                break;
            }
            let members_from = if p.current.is_none() {
                let Some(colon) = segment.find(':') else {
                    p.d.error(
                        Parser::at(line, start + 1),
                        format!("no partition definition found in `{}`", segment.trim()),
                        "a statement starts with `Name=PKey, flags :` on one line",
                    );
                    failed = true;
                    break;
                };
                match p.header(&segment[..colon], line, start + 1) {
                    Some(st) => p.current = Some(st),
                    None => {
                        failed = true;
                        break;
                    }
                }
                colon + 1
            } else {
                0
            };
            if !p.members(&segment[members_from..], line, start + members_from + 1) {
                failed = true;
                break;
            }
            match seg_end {
                Some(e) => {
                    p.close();
                    pos = e + 1;
                }
                None => break,
            }
        }
        if failed {
            // OpenSM stops at the first error; so do we (later positions would be noise).
            break;
        }
    }
    if let Some(st) = p.current.take() {
        if !failed {
            p.d.warning(
                st.loc,
                format!("partition `{}` is not ended by `;`", st.name),
                "end every statement with `;`",
            );
        }
        p.out.push(st);
    }
    let statements = std::mem::take(&mut p.out);
    if !failed {
        if statements.is_empty() {
            d.warning(Loc { line: 1, col: 1 }, "no partitions: OpenSM treats an empty or comments-only file like a broken one and falls back to its default configuration", "write at least `Default=0x7fff, ipoib : ALL=full ;`");
        }
        let mut seen: std::collections::BTreeMap<u16, &Statement> =
            std::collections::BTreeMap::new();
        for st in &statements {
            if st.members.is_empty() {
                d.warning(
                    st.loc,
                    format!("partition `{}` has no members: OpenSM drops it", st.name),
                    "add members or remove it",
                );
            }
            if let Some(k) = st.pkey {
                if let Some(first) = seen.get(&k) {
                    d.warning(st.loc, format!("PKey {k:#06x} of `{}` is also used by `{}` (line {}): OpenSM merges them into one partition", st.name, first.name, first.loc.line), "give each partition its own PKey");
                } else {
                    seen.insert(k, st);
                }
            }
        }
    }
    Checked {
        statements,
        diagnostics: d,
    }
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
            "a=0x10, m=4, colour=red,, : A=full, 0x5=fullish ;\nb=0x8010 : 0x6;\nc=0x20 : ;\n",
            "p.conf",
        );
        assert!(!c.diagnostics.has_errors());
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
        assert!(w.iter().any(|m| m.contains("membership `fullish`")));
        assert!(w
            .iter()
            .any(|m| m.contains("PKey 0x0010 of `b` is also used by `a`")));
        assert!(w.iter().any(|m| m.contains("partition `c` has no members")));
        assert!(w.iter().any(|m| m.contains("an empty flag")));
        assert!(check("# nothing\n", "p").diagnostics.items[0]
            .message
            .contains("falls back to its default"));
    }
}
