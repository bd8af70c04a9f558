//! Hostlists as Slurm writes them: `cn[001-040]`, `node[1,3-4]`, `rack[1-2]-cn[01-16]`, and
//! comma-separated lists of those, expanded in the order written (the topology zips a node
//! hostlist 1:1 with a port range, so order matters) and folded back for display.
//!
//! Parsing is strict: an empty item (`node[1-2,]`), a backwards range or unbalanced brackets is
//! an error, never a silent guess. A parsed [`Hostlist`] knows how many names it stands for
//! before any is made, so a caller with a budget (the topology loader, for the nodes of a whole
//! file) refuses `n[1-1000000000]` without spending memory on it; [`expand`] refuses more than
//! [`MAX_EXPANSION`] names.

use std::collections::BTreeMap;
use std::ops::ControlFlow;

/// Upper bound on the names one expression may expand to (`--nodes`, `SLURM_JOB_NODELIST`): the
/// nodes one topology file may hold, since a job can only name nodes of its topology.
pub const MAX_EXPANSION: usize = crate::limits::NODES;

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("hostlist `{expr}`: {reason}")]
pub struct HostlistError {
    pub expr: String,
    pub reason: String,
}

fn fail<T>(expr: &str, reason: impl Into<String>) -> Result<T, HostlistError> {
    Err(HostlistError {
        expr: expr.to_string(),
        reason: reason.into(),
    })
}

/// `lo..=hi`, written with `width` digits (0: as they come).
#[derive(Clone, Copy, Debug)]
struct Range {
    lo: u64,
    hi: u64,
    width: usize,
}

/// One comma-separated item: literal text and bracket groups in turn, then a literal tail.
#[derive(Clone, Debug)]
struct Item<'a> {
    groups: Vec<(&'a str, Vec<Range>)>,
    tail: &'a str,
}

/// A parsed, checked hostlist expression that has not been expanded yet.
#[derive(Clone, Debug)]
pub struct Hostlist<'a> {
    expr: &'a str,
    items: Vec<Item<'a>>,
    /// Names it stands for (saturating: `u64::MAX` means "more than anyone can hold").
    len: u64,
}

impl<'a> Hostlist<'a> {
    /// Parses and checks `expr`; nothing is expanded.
    pub fn parse(expr: &'a str) -> Result<Self, HostlistError> {
        if expr.is_empty() {
            return fail(expr, "the list is empty; give at least one name");
        }
        let mut items = Vec::new();
        for item in split_top_level(expr)? {
            if item.is_empty() {
                return fail(expr, "empty item (two commas, or a comma at an end)");
            }
            items.push(parse_item(expr, item)?);
        }
        let len = items.iter().fold(0u64, |sum, item| {
            let n = item.groups.iter().fold(1u64, |p, (_, ranges)| {
                p.saturating_mul(ranges.iter().fold(0u64, |s, r| {
                    s.saturating_add((r.hi - r.lo).saturating_add(1))
                }))
            });
            sum.saturating_add(n)
        });
        Ok(Hostlist { expr, items, len })
    }

    /// How many names [`Hostlist::expand`] makes (duplicates count), without making them.
    pub fn len(&self) -> u64 {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The text it was parsed from.
    pub fn expr(&self) -> &'a str {
        self.expr
    }

    /// The names, in written order (leftmost group outermost, as Slurm does). The caller
    /// decides whether [`Hostlist::len`] names are affordable.
    pub fn expand(&self) -> Vec<String> {
        let mut out = Vec::with_capacity(usize::try_from(self.len).unwrap_or(0));
        let _all = self.each(|name| {
            out.push(name.to_string());
            ControlFlow::Continue(())
        });
        out
    }

    /// Gives `f` the names one by one, in the order of [`Hostlist::expand`], until it breaks;
    /// each name is made in one reused buffer, so a caller that parses them further (the
    /// topology's port ranges) pays for no `String` per name.
    pub fn each(&self, mut f: impl FnMut(&str) -> ControlFlow<()>) -> ControlFlow<()> {
        let mut name = String::new();
        for item in &self.items {
            item.each(0, &mut name, &mut f)?;
        }
        ControlFlow::Continue(())
    }
}

impl Item<'_> {
    /// The names of this item from bracket group `group` on, after the text in `name`.
    fn each<F: FnMut(&str) -> ControlFlow<()>>(
        &self,
        group: usize,
        name: &mut String,
        f: &mut F,
    ) -> ControlFlow<()> {
        let before = name.len();
        let Some((literal, ranges)) = self.groups.get(group) else {
            name.push_str(self.tail);
            let flow = f(name);
            name.truncate(before);
            return flow;
        };
        name.push_str(literal);
        let prefix = name.len();
        for r in ranges {
            for v in r.lo..=r.hi {
                push_padded(name, v, r.width);
                let flow = self.each(group + 1, name, f);
                name.truncate(prefix);
                if flow.is_break() {
                    name.truncate(before);
                    return flow;
                }
            }
        }
        name.truncate(before);
        ControlFlow::Continue(())
    }
}

/// Appends `v` in decimal, zero-padded to `width` digits (`format!("{v:0width$}")` without the
/// formatting machinery: this runs once per name of a whole fabric).
fn push_padded(out: &mut String, v: u64, width: usize) {
    let mut digits = [0u8; 20];
    let mut start = digits.len();
    let mut rest = v;
    loop {
        start -= 1;
        digits[start] = b'0' + (rest % 10) as u8;
        rest /= 10;
        if rest == 0 {
            break;
        }
    }
    for _ in digits.len() - start..width {
        out.push('0');
    }
    out.push_str(std::str::from_utf8(&digits[start..]).expect("ASCII digits"));
}

/// Expands a hostlist expression into names, in written order; more than [`MAX_EXPANSION`]
/// names is an error (found before any name is made).
pub fn expand(expr: &str) -> Result<Vec<String>, HostlistError> {
    let list = Hostlist::parse(expr)?;
    if list.len() > MAX_EXPANSION as u64 {
        return fail(expr, too_many(list.len(), MAX_EXPANSION));
    }
    Ok(list.expand())
}

/// "expands to N names, more than MAX".
fn too_many(len: u64, max: usize) -> String {
    if len == u64::MAX {
        format!("expands to more than {max} names")
    } else {
        format!("expands to {len} names, more than {max}")
    }
}

/// Splits at commas that are outside brackets.
fn split_top_level(expr: &str) -> Result<Vec<&str>, HostlistError> {
    let mut items = Vec::new();
    let mut depth = 0usize;
    let mut start = 0;
    for (i, c) in expr.char_indices() {
        match c {
            '[' if depth == 0 => depth = 1,
            '[' => return fail(expr, "nested `[`"),
            ']' if depth == 1 => depth = 0,
            ']' => return fail(expr, "`]` without `[`"),
            ',' if depth == 0 => {
                items.push(&expr[start..i]);
                start = i + 1;
            }
            c if c.is_whitespace() => return fail(expr, "white space is not allowed"),
            _ => {}
        }
    }
    if depth != 0 {
        return fail(expr, "`[` without `]`");
    }
    items.push(&expr[start..]);
    Ok(items)
}

/// One bracket group's body: its ranges, zero-pad width from each range's first number.
fn parse_group(expr: &str, body: &str) -> Result<Vec<Range>, HostlistError> {
    let mut ranges = Vec::new();
    for part in body.split(',') {
        if part.is_empty() {
            return fail(expr, format!("empty item in `[{body}]`"));
        }
        let (a, b) = part.split_once('-').unwrap_or((part, part));
        let num = |s: &str| -> Result<u64, HostlistError> {
            if s.is_empty() || s.len() > 18 || !s.bytes().all(|c| c.is_ascii_digit()) {
                return fail(
                    expr,
                    format!("`{part}` in `[{body}]` is not a number or range"),
                );
            }
            Ok(s.parse().expect("checked digits"))
        };
        let (lo, hi) = (num(a)?, num(b)?);
        if lo > hi {
            return fail(expr, format!("range `{part}` runs backwards"));
        }
        let width = if a.len() > 1 && a.starts_with('0') {
            a.len()
        } else {
            0
        };
        ranges.push(Range { lo, hi, width });
    }
    Ok(ranges)
}

/// Splits an item into literal text and bracket groups (brackets are balanced and not nested:
/// [`split_top_level`] checked).
fn parse_item<'a>(expr: &str, item: &'a str) -> Result<Item<'a>, HostlistError> {
    let mut groups = Vec::new();
    let mut rest = item;
    while let Some(open) = rest.find('[') {
        let close = rest[open..].find(']').expect("balanced") + open;
        groups.push((&rest[..open], parse_group(expr, &rest[open + 1..close])?));
        rest = &rest[close + 1..];
    }
    Ok(Item { groups, tail: rest })
}

/// [`fold`], cut after `max` top-level items: `cn[1-4],gpu[1-2],... and 998 more groups (5000
/// names)`, so a message about a huge list stays readable.
pub fn fold_short<S: AsRef<str>>(names: &[S], max: usize) -> String {
    let folded = fold(names);
    let mut items = Vec::new();
    let (mut depth, mut start) = (0usize, 0usize);
    for (i, c) in folded.char_indices() {
        match c {
            '[' => depth += 1,
            ']' => depth = depth.saturating_sub(1),
            ',' if depth == 0 => {
                items.push(&folded[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    items.push(&folded[start..]);
    if items.len() <= max {
        return folded;
    }
    format!(
        "{},... and {} more groups ({} names in all)",
        items[..max].join(","),
        items.len() - max,
        names.len()
    )
}

/// Folds names into a compact hostlist: `cn001,cn002,cn003,login1` → `cn[001-003],login1`.
/// Names are grouped by their text before the last run of digits and sorted numerically.
pub fn fold<S: AsRef<str>>(names: &[S]) -> String {
    let (split, mut plain) = split_numbers(names);
    let mut parts: Vec<String> = number_groups(&split)
        .into_iter()
        .map(|((prefix, suffix, width), nums)| group_text(&prefix, &suffix, width, nums))
        .collect();
    plain.sort();
    plain.dedup();
    parts.extend(plain);
    parts.join(",")
}

/// Splits each name around its last run of digits into (prefix, suffix, digits); names without
/// digits, or with a run too long for a number, are returned apart as they are.
fn split_numbers<S: AsRef<str>>(names: &[S]) -> (Vec<(String, String, &str)>, Vec<String>) {
    let mut split: Vec<(String, String, &str)> = Vec::new();
    let mut plain: Vec<String> = Vec::new();
    for name in names {
        let name = name.as_ref();
        let bytes = name.as_bytes();
        let Some(end) = bytes
            .iter()
            .rposition(|b| b.is_ascii_digit())
            .map(|i| i + 1)
        else {
            plain.push(name.to_string());
            continue;
        };
        let start = bytes[..end]
            .iter()
            .rposition(|b| !b.is_ascii_digit())
            .map_or(0, |i| i + 1);
        if end - start > 18 {
            plain.push(name.to_string());
            continue;
        }
        split.push((
            name[..start].to_string(),
            name[end..].to_string(),
            &name[start..end],
        ));
    }
    (split, plain)
}

/// The numbers of split names grouped by (prefix, suffix, zero-padded width; 0 for unpadded).
fn number_groups(split: &[(String, String, &str)]) -> BTreeMap<(String, String, usize), Vec<u64>> {
    // Zero-padded widths per (prefix, suffix): an unpadded number of the same length belongs to
    // the padded group (vs01..vs09 and vs10..vs16 fold to vs[01-16]).
    let mut padded: BTreeMap<(&str, &str), Vec<usize>> = BTreeMap::new();
    for (p, s, d) in split {
        if d.len() > 1 && d.starts_with('0') {
            padded.entry((p, s)).or_default().push(d.len());
        }
    }
    let mut groups: BTreeMap<(String, String, usize), Vec<u64>> = BTreeMap::new();
    for (p, s, d) in split {
        let widths = padded.get(&(p.as_str(), s.as_str()));
        let width = if widths.is_some_and(|w| w.contains(&d.len())) {
            d.len()
        } else {
            0
        };
        groups
            .entry((p.clone(), s.clone(), width))
            .or_default()
            .push(d.parse().expect("digits"));
    }
    groups
}

/// One group as hostlist text: `cn[001-003,007]`, or `cn001` for a single name.
fn group_text(prefix: &str, suffix: &str, width: usize, mut nums: Vec<u64>) -> String {
    nums.sort_unstable();
    nums.dedup();
    let mut ranges: Vec<(u64, u64)> = Vec::new();
    for n in nums {
        match ranges.last_mut() {
            Some(r) if r.1 + 1 == n => r.1 = n,
            _ => ranges.push((n, n)),
        }
    }
    let f = |v: u64| format!("{v:0width$}");
    if ranges.len() == 1 && ranges[0].0 == ranges[0].1 {
        return format!("{prefix}{}{suffix}", f(ranges[0].0));
    }
    let body: Vec<String> = ranges
        .iter()
        .map(|&(a, b)| {
            if a == b {
                f(a)
            } else {
                format!("{}-{}", f(a), f(b))
            }
        })
        .collect();
    format!("{prefix}[{}]{suffix}", body.join(","))
}

/// Compares names the way people sort hosts: digit runs by value (`n2` < `n10`).
pub fn natural_cmp(a: &str, b: &str) -> std::cmp::Ordering {
    let (mut x, mut y) = (a.as_bytes(), b.as_bytes());
    loop {
        match (x.first(), y.first()) {
            (None, None) => return a.cmp(b),
            (None, _) => return std::cmp::Ordering::Less,
            (_, None) => return std::cmp::Ordering::Greater,
            (Some(c), Some(d)) if c.is_ascii_digit() && d.is_ascii_digit() => {
                let i = x
                    .iter()
                    .position(|b| !b.is_ascii_digit())
                    .unwrap_or(x.len());
                let j = y
                    .iter()
                    .position(|b| !b.is_ascii_digit())
                    .unwrap_or(y.len());
                let (da, db) = (trim_zeros(&x[..i]), trim_zeros(&y[..j]));
                let ord = da.len().cmp(&db.len()).then_with(|| da.cmp(db));
                if ord.is_ne() {
                    return ord;
                }
                (x, y) = (&x[i..], &y[j..]);
            }
            (Some(c), Some(d)) => {
                if c != d {
                    return c.cmp(d);
                }
                (x, y) = (&x[1..], &y[1..]);
            }
        }
    }
}

fn trim_zeros(d: &[u8]) -> &[u8] {
    let k = d.iter().position(|&b| b != b'0').unwrap_or(d.len());
    &d[k..]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expands_in_written_order() {
        assert_eq!(expand("cn[001-003]").unwrap(), ["cn001", "cn002", "cn003"]);
        assert_eq!(expand("n[3,1-2]").unwrap(), ["n3", "n1", "n2"]);
        assert_eq!(
            expand("r[1-2]-c[1-2]").unwrap(),
            ["r1-c1", "r1-c2", "r2-c1", "r2-c2"]
        );
        assert_eq!(expand("a,b[9-10]x").unwrap(), ["a", "b9x", "b10x"]);
        assert_eq!(
            expand("leaf1:Ethernet1/[1-2]").unwrap(),
            ["leaf1:Ethernet1/1", "leaf1:Ethernet1/2"]
        );
    }

    #[test]
    fn gives_names_one_by_one_until_told_to_stop() {
        let list = Hostlist::parse("r[1-2]-c[08-10]x,y,z[7]").unwrap();
        let mut seen = Vec::new();
        let flow = list.each(|n| {
            seen.push(n.to_string());
            ControlFlow::Continue(())
        });
        assert_eq!(flow, ControlFlow::Continue(()));
        assert_eq!(seen, list.expand());
        assert_eq!(
            seen,
            ["r1-c08x", "r1-c09x", "r1-c10x", "r2-c08x", "r2-c09x", "r2-c10x", "y", "z7"]
        );
        let mut first = Vec::new();
        let flow = list.each(|n| {
            first.push(n.to_string());
            if first.len() == 4 {
                ControlFlow::Break(())
            } else {
                ControlFlow::Continue(())
            }
        });
        assert_eq!(flow, ControlFlow::Break(()));
        assert_eq!(first, seen[..4]);
        let mut padded = String::new();
        for (v, w) in [
            (0, 0),
            (7, 3),
            (123, 2),
            (u64::MAX, 22),
            (999_999_999_999_999_999, 0),
        ] {
            padded.clear();
            push_padded(&mut padded, v, w);
            assert_eq!(padded, format!("{v:0w$}"));
        }
    }

    #[test]
    fn refuses_what_others_guess() {
        for bad in [
            "node[1-2,]",
            "node[]",
            "node[2-1]",
            "n[1",
            "n]1",
            "n[[1]]",
            "a,,b",
            "a,",
            "n[x]",
            "a b",
        ] {
            assert!(expand(bad).is_err(), "{bad} must be refused");
        }
        assert!(expand("n[0-99999999]").is_err());
    }

    /// The size is known before a name is made, so a budget is kept without paying for it.
    #[test]
    fn sizes_without_expanding() {
        let huge = Hostlist::parse("n[1-1000000000000]").unwrap();
        assert_eq!(huge.len(), 1_000_000_000_000);
        assert_eq!(huge.expr(), "n[1-1000000000000]");
        let l = Hostlist::parse("r[1-2]-c[01-03],x,y[7,9-10]").unwrap();
        assert_eq!(l.len(), 10);
        assert_eq!(l.expand().len(), 10);
        let beyond = "a[0-999999999999999999][0-999999999999999999][0-9]";
        assert_eq!(Hostlist::parse(beyond).unwrap().len(), u64::MAX);
        let over = format!("n[1-{}]", MAX_EXPANSION + 1);
        assert_eq!(
            expand(&over).unwrap_err().reason,
            format!(
                "expands to {} names, more than {MAX_EXPANSION}",
                MAX_EXPANSION + 1
            )
        );
        assert_eq!(
            expand(beyond).unwrap_err().reason,
            format!("expands to more than {MAX_EXPANSION} names")
        );
        // Syntax is checked before the size: the same errors as before.
        assert!(Hostlist::parse("n[2-1]").is_err());
        assert!(Hostlist::parse("n[1-2,]").is_err());
    }

    #[test]
    fn natural_order() {
        let mut v = vec!["n10", "n2", "m1", "n1a", "n01"];
        v.sort_by(|a, b| natural_cmp(a, b));
        assert_eq!(v, ["m1", "n01", "n1a", "n2", "n10"]);
    }

    #[test]
    fn folds() {
        let names = expand("cn[001-040],cn042,login1,cn[9-10]").unwrap();
        assert_eq!(fold(&names), "cn[9-10],cn[001-040,042],login1");
        assert_eq!(fold(&["x"]), "x");
        assert_eq!(fold(&expand("vs[01-16]").unwrap()), "vs[01-16]");
        assert_eq!(fold(&["cn100", "cn001", "cn002"]), "cn[001-002,100]");
        assert_eq!(fold(&["cn5"]), "cn5");
        let many = expand("a[1-30]b[1-3]").unwrap();
        let short = fold_short(&many, 4);
        assert!(
            short.ends_with(",... and 26 more groups (90 names in all)"),
            "{short}"
        );
        assert_eq!(fold_short(&["x", "y"], 4), "x,y");
    }
}
