//! A small YAML document tree that remembers where every value came from.
//!
//! Built from saphyr-parser's event stream rather than a serde derive, because every semantic
//! error jobnet reports (a duplicate port, an unknown switch, a bad GUID) must name the exact
//! `LINE:COL` of the value, and because scalars must keep their raw text: YAML 1.2 would turn an
//! unquoted `0x1000` into the integer 4096 and `0002c9...` GUIDs into numbers. Duplicate mapping
//! keys, which many YAML libraries silently overwrite, are reported, every one of them (the
//! document's shape is still known past one). Anchors, aliases and tags are refused: topology
//! files are data written by people, not programs.

use crate::diag::{Diagnostics, Loc};
use saphyr_parser::{Event, Parser, ScalarStyle, Span};

/// A YAML node with its position.
#[derive(Clone, Debug, PartialEq)]
pub struct Node {
    pub loc: Loc,
    pub kind: Kind,
}

#[derive(Clone, Debug, PartialEq)]
pub enum Kind {
    /// A scalar with its raw text; `plain` is false when it was quoted or a block scalar.
    Scalar {
        text: String,
        plain: bool,
    },
    Seq(Vec<Node>),
    /// Key/value pairs in document order (keys are scalars).
    Map(Vec<(Node, Node)>),
}

/// A syntax error with its position.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{loc}: {message}")]
pub struct SyntaxError {
    pub loc: Loc,
    pub message: String,
}

fn loc_of(span: &Span) -> Loc {
    Loc {
        line: span.start.line(),
        col: span.start.col() + 1,
    }
}

impl Node {
    /// The text of a scalar node (`None` for sequences and mappings).
    pub fn as_str(&self) -> Option<&str> {
        match &self.kind {
            Kind::Scalar { text, .. } => Some(text),
            _ => None,
        }
    }

    /// A plain (unquoted) `~`, `null` or empty scalar.
    pub fn is_null(&self) -> bool {
        matches!(&self.kind, Kind::Scalar { text, plain: true } if matches!(text.as_str(), "" | "~" | "null" | "Null" | "NULL"))
    }

    /// The key/value pairs of a mapping (`None` for anything else).
    pub fn pairs(&self) -> Option<&[(Node, Node)]> {
        match &self.kind {
            Kind::Map(pairs) => Some(pairs),
            _ => None,
        }
    }

    /// A word describing the node's kind, for error messages.
    pub fn kind_name(&self) -> &'static str {
        match &self.kind {
            Kind::Scalar { .. } if self.is_null() => "an empty value",
            Kind::Scalar { .. } => "a scalar",
            Kind::Seq(_) => "a list",
            Kind::Map(_) => "a mapping",
        }
    }
}

/// The reading of mappings every YAML input of jobnet shares (topology, driver profiles,
/// credentials): `node`'s pairs, or the error `{what} must be a mapping, found {kind}` with
/// `help`.
pub fn mapping<'n>(
    d: &mut Diagnostics,
    node: &'n Node,
    what: &str,
    help: &str,
) -> Option<&'n [(Node, Node)]> {
    let pairs = node.pairs();
    if pairs.is_none() {
        d.error(
            node.loc,
            format!("{what} must be a mapping, found {}", node.kind_name()),
            help,
        );
    }
    pairs
}

/// The value of `key` in a mapping's pairs.
pub fn get<'n>(pairs: &'n [(Node, Node)], key: &str) -> Option<&'n Node> {
    pairs
        .iter()
        .find(|(k, _)| k.as_str() == Some(key))
        .map(|(_, v)| v)
}

/// The keys of a mapping that are not in `allowed`, with their positions (to report them: the
/// caller words the message; a key's value is never shown, it may be a secret).
pub fn unknown_keys<'n>(
    pairs: &'n [(Node, Node)],
    allowed: &'n [&str],
) -> impl Iterator<Item = (&'n str, Loc)> + 'n {
    pairs.iter().filter_map(move |(k, _)| {
        let key = k.as_str().unwrap_or_default();
        (!allowed.contains(&key)).then_some((key, k.loc))
    })
}

/// Parses one configuration document: its root (`None` when empty) and the diagnostics of
/// `file`, a syntax error among them.
pub fn parse_document(text: &str, file: &str) -> (Diagnostics, Option<Node>) {
    let mut d = Diagnostics::new(file);
    let root = match parse_all_errors(text) {
        Ok(root) => root,
        Err(errors) => {
            for e in errors {
                d.error(e.loc, e.message, "fix the YAML");
            }
            None
        }
    };
    (d, root)
}

/// Reports every key of `pairs` outside `allowed` (and not `handled` by the caller, which
/// reported it its own way) as `unknown key `K` in WHAT`, with a "did you mean" when one is
/// close, else the allowed keys.
pub fn report_unknown(
    d: &mut Diagnostics,
    pairs: &[(Node, Node)],
    allowed: &[&str],
    what: &str,
    handled: &dyn Fn(&str, Loc) -> bool,
) {
    for (key, loc) in unknown_keys(pairs, allowed) {
        if handled(key, loc) {
            continue;
        }
        let hint = crate::diag::suggestion(key, allowed.iter().copied());
        d.error(
            loc,
            format!("unknown key `{key}` in {what}"),
            if hint.is_empty() {
                format!("allowed keys: {}", allowed.join(", "))
            } else {
                hint
            },
        );
    }
}

enum Frame {
    Seq(Loc, Vec<Node>),
    Map(Loc, Vec<(Node, Node)>, Option<Node>),
}

/// Parses one YAML document. An empty input gives `Ok(None)`. The error is the first of
/// [`parse_all_errors`].
pub fn parse(text: &str) -> Result<Option<Node>, SyntaxError> {
    parse_all_errors(text).map_err(|mut errors| errors.swap_remove(0))
}

/// Parses one YAML document. An empty input gives `Ok(None)`. The errors are in document order:
/// every duplicate key (parsing goes on past them), then the error that stopped the parse, if
/// one did.
pub fn parse_all_errors(text: &str) -> Result<Option<Node>, Vec<SyntaxError>> {
    let mut duplicates = Vec::new();
    match parse_tree(text, &mut duplicates) {
        Ok(root) if duplicates.is_empty() => Ok(root),
        Ok(_) => Err(duplicates),
        Err(stop) => {
            duplicates.push(stop);
            Err(duplicates)
        }
    }
}

/// The tree of `text`; duplicate keys go to `duplicates` (and their pairs into the tree, which
/// the caller then drops). A document in the plain layout of generated files is read by
/// [`lines::read`]; any other, and every document with a mistake, by saphyr-parser.
fn parse_tree(text: &str, duplicates: &mut Vec<SyntaxError>) -> Result<Option<Node>, SyntaxError> {
    if let Some(tree) = lines::read(text) {
        duplicates.extend(tree.duplicates);
        return Ok(tree.root);
    }
    saphyr_tree(text, duplicates)
}

/// [`parse_tree`] by saphyr-parser's events.
fn saphyr_tree(text: &str, duplicates: &mut Vec<SyntaxError>) -> Result<Option<Node>, SyntaxError> {
    let mut tree = Tree::default();
    let read = saphyr_events(text, &mut tree);
    duplicates.append(&mut tree.duplicates);
    read.map(|()| tree.root)
}

fn saphyr_events(text: &str, tree: &mut Tree) -> Result<(), SyntaxError> {
    let mut parser = Parser::new_from_str(text);
    let mut documents = 0;
    while let Some(next) = parser.next_event() {
        let (event, span) = next.map_err(|e| SyntaxError {
            loc: Loc {
                line: e.marker().line(),
                col: e.marker().col() + 1,
            },
            message: format!("YAML syntax: {}", e.info()),
        })?;
        let loc = loc_of(&span);
        match event {
            Event::DocumentStart(_) => {
                documents += 1;
                if documents > 1 {
                    return Err(SyntaxError {
                        loc,
                        message: "a second YAML document (`---`) in one file".into(),
                    });
                }
            }
            Event::Alias(_) => {
                return Err(SyntaxError {
                    loc,
                    message: "YAML aliases (`*name`) are not supported; write the value out".into(),
                })
            }
            Event::Scalar(value, style, anchor, tag) => {
                refuse_anchor_tag(loc, anchor, tag.is_some())?;
                tree.scalar(loc, value.into_owned(), style == ScalarStyle::Plain)?;
            }
            Event::SequenceStart(anchor, tag) => {
                refuse_anchor_tag(loc, anchor, tag.is_some())?;
                tree.open_seq(loc);
            }
            Event::MappingStart(anchor, tag) => {
                refuse_anchor_tag(loc, anchor, tag.is_some())?;
                tree.open_map(loc);
            }
            Event::SequenceEnd | Event::MappingEnd => tree.close()?,
            _ => {}
        }
    }
    Ok(())
}

/// A tree being built from the events of either reader: the open sequences and mappings, the
/// root once done, and the duplicate keys seen.
#[derive(Default)]
struct Tree {
    stack: Vec<Frame>,
    root: Option<Node>,
    duplicates: Vec<SyntaxError>,
}

impl Tree {
    fn open_seq(&mut self, loc: Loc) {
        self.stack.push(Frame::Seq(loc, Vec::new()));
    }

    fn open_map(&mut self, loc: Loc) {
        self.stack.push(Frame::Map(loc, Vec::new(), None));
    }

    fn scalar(&mut self, loc: Loc, text: String, plain: bool) -> Result<(), SyntaxError> {
        self.place(Node {
            loc,
            kind: Kind::Scalar { text, plain },
        })
    }

    /// Ends the innermost open sequence or mapping (the readers keep them balanced).
    fn close(&mut self) -> Result<(), SyntaxError> {
        let node = match self.stack.pop() {
            Some(Frame::Seq(loc, items)) => Node {
                loc,
                kind: Kind::Seq(items),
            },
            Some(Frame::Map(loc, pairs, _)) => Node {
                loc,
                kind: Kind::Map(pairs),
            },
            None => unreachable!("readers keep sequences and mappings balanced"),
        };
        self.place(node)
    }

    /// Puts a finished node where it belongs: the root, the next item of the open sequence, or
    /// the next key or value of the open mapping (keys must be scalars; a key seen before in
    /// the same mapping goes to `duplicates`).
    fn place(&mut self, node: Node) -> Result<(), SyntaxError> {
        match self.stack.last_mut() {
            None => self.root = Some(node),
            Some(Frame::Seq(_, items)) => items.push(node),
            Some(Frame::Map(_, pairs, pending)) => match pending.take() {
                None => {
                    if node.as_str().is_none() {
                        return Err(SyntaxError {
                            loc: node.loc,
                            message: "mapping keys must be plain words".into(),
                        });
                    }
                    if let Some((first, _)) =
                        pairs.iter().find(|(k, _)| k.as_str() == node.as_str())
                    {
                        self.duplicates.push(SyntaxError {
                            loc: node.loc,
                            message: format!(
                                "duplicate key `{}` (first at line {}); remove one of them",
                                node.as_str().unwrap_or_default(),
                                first.loc.line
                            ),
                        });
                    }
                    *pending = Some(node);
                }
                Some(key) => pairs.push((key, node)),
            },
        }
        Ok(())
    }
}

/// The quick reader of the layouts that `jobnet topology generate` and `topology import-ib`
/// write and that hand-written topologies mostly keep: a top-level mapping whose values are
/// one-line values or, indented by two spaces, a mapping of one-line values or a list of `- `
/// items, each a one-line value or a mapping of one-line values (its first pair on the `- `
/// line, the others indented by four spaces). A one-line value is a plain word (letters,
/// digits, `_./-`, and `:` inside; brackets and commas too when not inside brackets),
/// double-quoted printable text without escapes, or a `{…}` / `[…]` of those written on one
/// line with `: ` and `, `. Blank lines, whole-line comments and
/// comments after a value may be anywhere.
///
/// saphyr-parser goes character by character through a state machine with a token queue; on a
/// 3.7 MB topology of 100,000 nodes that was a third of a whole `jobnet plan`. This reader gives
/// up (`None`) at the first thing outside the layout — another indentation, a quote to
/// unescape, a tab, a carriage return, a value over two lines, a `---` — and then saphyr reads
/// the whole document: every document outside the layout, and with it every syntax error and
/// its message, is read exactly as before. Inside the layout it builds the tree saphyr's events
/// build, node for node and position for position (held to that by tests on generated, shipped
/// and random documents).
mod lines {
    use super::{Loc, Tree};
    use std::iter::Peekable;

    /// Deeper nesting is left to saphyr.
    const MAX_DEPTH: usize = 16;
    /// Longer keys are left to saphyr (YAML ends implicit keys at 1024 characters).
    const MAX_KEY: usize = 128;

    /// The tree of `text`, when all of it is in the layout.
    pub(super) fn read(text: &str) -> Option<Tree> {
        if text.contains('\r') {
            return None;
        }
        let mut lines = text
            .split('\n')
            .enumerate()
            .map(|(i, line)| (i + 1, line))
            .filter(|(_, line)| {
                let content = line.trim_start_matches(' ');
                !content.is_empty() && !content.starts_with('#')
            })
            .peekable();
        let mut tree = Tree::default();
        let mut opened = false;
        while let Some((n, line)) = lines.next() {
            let key = key_len(line)?;
            if !opened {
                tree.open_map(Loc { line: n, col: 1 });
                opened = true;
            }
            tree.scalar(Loc { line: n, col: 1 }, line[..key].to_string(), true)
                .ok()?;
            if !comment_or_end(line, key + 1) {
                value_to_end(&mut tree, n, line, key + 1)?;
                continue;
            }
            match lines.peek() {
                Some((_, next)) if next.starts_with(' ') => {
                    let list = next.starts_with("  - ");
                    block(&mut tree, &mut lines, list)?
                }
                // `key:` and nothing: an empty value where the colon is.
                _ => tree
                    .scalar(
                        Loc {
                            line: n,
                            col: key + 1,
                        },
                        String::new(),
                        true,
                    )
                    .ok()?,
            }
        }
        if !opened {
            return None;
        }
        tree.close().ok()?;
        Some(tree)
    }

    /// The length of the key that starts `line` (`[A-Za-z0-9_]`, then `:`).
    fn key_len(line: &str) -> Option<usize> {
        let len = line
            .bytes()
            .take_while(|b| b.is_ascii_alphanumeric() || *b == b'_')
            .count();
        ((1..=MAX_KEY).contains(&len) && line.as_bytes().get(len) == Some(&b':')).then_some(len)
    }

    /// Whether `line` from byte `pos` on has nothing but spaces and perhaps a comment (a `#`
    /// after a space).
    fn comment_or_end(line: &str, pos: usize) -> bool {
        let rest = &line[pos..];
        let after = rest.trim_start_matches(' ');
        after.is_empty() || (after.starts_with('#') && after.len() < rest.len())
    }

    /// A space at byte `space` of `line`, then one value, then the end of the line or a
    /// comment.
    fn value_to_end(tree: &mut Tree, n: usize, line: &str, space: usize) -> Option<()> {
        if line.as_bytes().get(space) != Some(&b' ') {
            return None;
        }
        let mut c = Cursor {
            tree,
            line: n,
            text: line,
            pos: space + 1,
        };
        c.value(0)?;
        comment_or_end(line, c.pos).then_some(())
    }

    /// One `  - ` item: a value on its line, or a mapping whose first `key: value` is on it
    /// and whose other pairs follow on lines indented by four spaces.
    fn item<'t>(
        tree: &mut Tree,
        lines: &mut Peekable<impl Iterator<Item = (usize, &'t str)>>,
        (n, line): (usize, &str),
    ) -> Option<()> {
        let first = &line[4..];
        let Some(key) = key_len(first).filter(|&k| first.as_bytes().get(k + 1) == Some(&b' '))
        else {
            return value_to_end(tree, n, line, 3);
        };
        tree.open_map(Loc { line: n, col: 5 });
        let (mut n, mut line, mut key) = (n, line, key);
        loop {
            let at = Loc { line: n, col: 5 };
            tree.scalar(at, line[4..4 + key].to_string(), true).ok()?;
            value_to_end(tree, n, line, 4 + key + 1)?;
            match lines.peek() {
                Some(&(next_n, next)) if next.starts_with("    ") => {
                    key = key_len(&next[4..])?;
                    (n, line) = (next_n, next);
                    lines.next();
                }
                _ => break,
            }
        }
        tree.close().ok()
    }

    /// The indented lines after a `key:` line, up to the next line that is not indented:
    /// `  - ` items of a list (`list`), else `  key: value` pairs of a mapping.
    fn block<'t>(
        tree: &mut Tree,
        lines: &mut Peekable<impl Iterator<Item = (usize, &'t str)>>,
        list: bool,
    ) -> Option<()> {
        let mut opened = false;
        while let Some(&(n, line)) = lines.peek() {
            if !line.starts_with(' ') {
                break;
            }
            let key = match list {
                true if line.starts_with("  - ") => None,
                true => return None,
                false => Some(key_len(line.strip_prefix("  ")?)?),
            };
            let at = Loc { line: n, col: 3 };
            if !opened {
                if list {
                    tree.open_seq(at);
                } else {
                    tree.open_map(at);
                }
                opened = true;
            }
            lines.next();
            match key {
                None => item(tree, lines, (n, line))?,
                Some(key) => {
                    tree.scalar(at, line[2..2 + key].to_string(), true).ok()?;
                    value_to_end(tree, n, line, 2 + key + 1)?;
                }
            }
        }
        if !opened {
            return None;
        }
        tree.close().ok()
    }

    /// A position in one line, and the tree its values go to.
    struct Cursor<'a, 't> {
        tree: &'a mut Tree,
        line: usize,
        text: &'t str,
        pos: usize,
    }

    /// Bytes of a plain word (`:` too, when one of these follows it).
    fn word_byte(b: u8) -> bool {
        b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'/' | b'-')
    }

    impl Cursor<'_, '_> {
        fn loc(&self) -> Loc {
            Loc {
                line: self.line,
                col: self.pos + 1,
            }
        }

        fn eat(&mut self, s: &str) -> bool {
            let found = self.text[self.pos..].starts_with(s);
            if found {
                self.pos += s.len();
            }
            found
        }

        /// The entries of a `{…}` or `[…]` after its opening bracket, each read by `entry`,
        /// with `, ` between them, through `close`.
        fn entries(
            &mut self,
            close: &str,
            mut entry: impl FnMut(&mut Self) -> Option<()>,
        ) -> Option<()> {
            if self.eat(close) {
                return Some(());
            }
            loop {
                entry(self)?;
                if self.eat(close) {
                    return Some(());
                }
                if !self.eat(", ") {
                    return None;
                }
            }
        }

        /// One value from `pos`: `{…}`, `[…]`, `"…"` or a plain word.
        fn value(&mut self, depth: usize) -> Option<()> {
            if depth > MAX_DEPTH {
                return None;
            }
            let bytes = self.text.as_bytes();
            match *bytes.get(self.pos)? {
                b'{' => {
                    self.tree.open_map(self.loc());
                    self.pos += 1;
                    self.entries("}", |c| {
                        let key = key_len(&c.text[c.pos..])?;
                        let text = c.text[c.pos..c.pos + key].to_string();
                        c.tree.scalar(c.loc(), text, true).ok()?;
                        c.pos += key;
                        if !c.eat(": ") {
                            return None;
                        }
                        c.value(depth + 1)
                    })?;
                    self.tree.close().ok()
                }
                b'[' => {
                    self.tree.open_seq(self.loc());
                    self.pos += 1;
                    self.entries("]", |c| c.value(depth + 1))?;
                    self.tree.close().ok()
                }
                b'"' => {
                    let body = &self.text[self.pos + 1..];
                    let len = body.find('"')?;
                    let text = &body[..len];
                    if !text
                        .bytes()
                        .all(|b| (b' '..=b'~').contains(&b) && b != b'\\')
                    {
                        return None;
                    }
                    self.tree.scalar(self.loc(), text.to_string(), false).ok()?;
                    self.pos += len + 2;
                    Some(())
                }
                first if word_byte(first) && first != b'-' => {
                    // Outside `{…}` and `[…]` (depth 0) brackets and commas are part of a
                    // word after its first byte: `name: cn[001-024]`.
                    let part = |b: u8| {
                        word_byte(b)
                            || (depth == 0 && matches!(b, b'[' | b']' | b'{' | b'}' | b','))
                    };
                    let mut end = self.pos + 1;
                    while let Some(&b) = bytes.get(end) {
                        let inside =
                            part(b) || (b == b':' && bytes.get(end + 1).is_some_and(|&n| part(n)));
                        if !inside {
                            break;
                        }
                        end += 1;
                    }
                    let text = self.text[self.pos..end].to_string();
                    self.tree.scalar(self.loc(), text, true).ok()?;
                    self.pos = end;
                    Some(())
                }
                _ => None,
            }
        }
    }
}

fn refuse_anchor_tag(loc: Loc, anchor: usize, tagged: bool) -> Result<(), SyntaxError> {
    if anchor != 0 {
        return Err(SyntaxError {
            loc,
            message: "YAML anchors (`&name`) are not supported; write the value out".into(),
        });
    }
    if tagged {
        return Err(SyntaxError {
            loc,
            message: "YAML tags (`!tag`) are not supported; remove the tag".into(),
        });
    }
    Ok(())
}

/// For the tests of the crates above (the topology generator's): whether the quick reader takes
/// `text`; what it takes must read exactly as saphyr-parser reads it (panics otherwise, naming
/// the text).
#[doc(hidden)]
pub fn quick_reads_alike(text: &str) -> bool {
    let Some(read) = lines::read(text) else {
        return false;
    };
    let mut duplicates = Vec::new();
    let theirs = saphyr_tree(text, &mut duplicates).map(|root| (root, duplicates));
    assert_eq!(
        Ok((read.root, read.duplicates)),
        theirs,
        "read differently:\n{text}"
    );
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_raw_text_and_positions() {
        let doc = parse("a: 0x1000\nb:\n  - \"x\"\n  - {c: 010}\n")
            .unwrap()
            .unwrap();
        let Kind::Map(pairs) = &doc.kind else {
            panic!()
        };
        assert_eq!(pairs[0].1.as_str(), Some("0x1000"));
        assert_eq!(pairs[0].1.loc, Loc { line: 1, col: 4 });
        let Kind::Seq(items) = &pairs[1].1.kind else {
            panic!()
        };
        assert_eq!(
            items[0].kind,
            Kind::Scalar {
                text: "x".into(),
                plain: false
            }
        );
        assert_eq!(items[1].loc, Loc { line: 4, col: 5 });
        let Kind::Map(inner) = &items[1].kind else {
            panic!()
        };
        assert_eq!(inner[0].1.as_str(), Some("010"));
    }

    #[test]
    fn reports_duplicate_keys_and_syntax_errors() {
        let e = parse("a: 1\nb: 2\na: 3\n").unwrap_err();
        assert_eq!(e.loc, Loc { line: 3, col: 1 });
        assert!(e.message.contains("duplicate key `a`"), "{e}");
        let e = parse("a: [1, 2\n").unwrap_err();
        assert!(e.message.starts_with("YAML syntax"), "{e}");
        assert!(parse("a: &x 1\nb: *x\n").is_err());
        assert!(parse("").unwrap().is_none());
    }

    #[test]
    fn reports_every_duplicate_key() {
        let text = "a: 1\nb: 2\na: 3\nc:\n  x: 1\n  x: 2\n  x: 3\nb: [1, 2\n";
        let errors = parse_all_errors(text).unwrap_err();
        let found: Vec<String> = errors
            .iter()
            .map(|e| format!("{}: {}", e.loc, e.message))
            .collect();
        assert_eq!(found.len(), 5, "{found:#?}");
        assert_eq!(
            found[..4],
            [
                "3:1: duplicate key `a` (first at line 1); remove one of them",
                "6:3: duplicate key `x` (first at line 5); remove one of them",
                "7:3: duplicate key `x` (first at line 5); remove one of them",
                "8:1: duplicate key `b` (first at line 2); remove one of them",
            ]
        );
        assert!(found[4].contains("YAML syntax"), "{found:#?}");
        assert_eq!(parse(text).unwrap_err().loc, Loc { line: 3, col: 1 });
        let (d, root) = parse_document("a: 1\na: 2\na: 3\n", "f.yaml");
        assert!(root.is_none());
        assert_eq!(
            d.errors_text(),
            "f.yaml:2:1: error: duplicate key `a` (first at line 1); remove one of them, fix the YAML\n\
             f.yaml:3:1: error: duplicate key `a` (first at line 1); remove one of them, fix the YAML"
        );
    }

    /// The quick reader's tree and duplicate keys, when it takes the text.
    fn quick(text: &str) -> Option<(Option<Node>, Vec<SyntaxError>)> {
        lines::read(text).map(|tree| (tree.root, tree.duplicates))
    }

    /// Whether the quick reader takes `text`; what it takes, it must read as saphyr does.
    pub(crate) fn taken_alike(text: &str) -> bool {
        super::quick_reads_alike(text)
    }

    #[test]
    fn the_quick_reader_reads_its_layout_as_saphyr_does() {
        let documents = [
            "name: fat\nethernet:\n  vlan_pool: \"2-4000\"\n  node_port_mode: tagged\n",
            "# generated – by hand\n\nname: x\n\n  # an indented comment\nswitches:\n  - {name: a1, driver: arista-eos}\n\n  - {name: \"cn[1-2]\", g: [\"0x1\", \"0x2\"], e: [], m: {}}\n  - plain:word\nempty:\nlast: [a, b:c, /x/y.z, \"#not a comment\"]\nnested: {a: {b: [c, [d]]}, e: \"\"}\nno_newline_at_end:",
            "links:\n  - {a: leaf1:Ethernet1/1, b: spine1:Ethernet1, cost: 10, lag: true}\n",
            "a: 1\nb: {x: 1, y: [2], x: 3}\na: 4\n",
            "a:\n\n# between\nb:\n",
            "a: 1 # a comment after a value\nb: {c: d}   #e\nf: \"g\"  \nh:  # nothing\ni:   # a list\n  - j\n",
            "nodes:\n  - name: \"cn[01-02]\"  # two\n    port: \"leaf1:Ethernet[1-2]\"\n    # a comment\n    ib_guids: [\"0x1\", \"0x2\"]\n  - {name: cn03, port: leaf1:Ethernet3}\n  - name: cn04\nx: y\n",
        ];
        let deepest = format!("a: {}x{}\n", "[".repeat(16), "]".repeat(16));
        for text in documents.iter().copied().chain([deepest.as_str()]) {
            assert!(taken_alike(text), "not taken:\n{text}");
        }
        let (_, duplicates) = quick(documents[3]).unwrap();
        assert_eq!(duplicates.len(), 2);
        // The layout of `jobnet topology generate` (the generator's own test reads whole files).
        let generated = concat!(
            "# Generated: jobnet topology generate fat-tree --nodes 64 (2 leaves)\n",
            "name: fat-tree-64\n",
            "ethernet:\n  vlan_pool: \"2-4000\"\n  node_port_mode: tagged\n",
            "infiniband:\n  pkey_pool: \"0x1000-0x7ffe\"\n",
            "  partitions_conf: /etc/opensm/partitions.conf\n",
            "  reload: {pidfile: /run/opensm.pid}\n",
            "switches:\n",
            "  - {name: core01, driver: arista-eos, address: core01.fabric.example, credentials: fabric}\n",
            "  - {name: leaf0001, driver: arista-eos, address: leaf0001.fabric.example, credentials: fabric}\n",
            "links:\n  - {a: leaf0001:Ethernet33, b: agg001-1:Ethernet1}\n",
            "nodes:\n",
            "  - {name: \"cn[01-02]\", port: \"leaf0001:Ethernet[1-2]\", ib_guids: [\"0x0002c90300000001\", \"0x0002c90300000002\"]}\n",
        );
        assert!(taken_alike(generated));
        // Hand-written, with comments after values.
        for shipped in ["topology/two-tier.yaml", "topology/jscc.yaml"] {
            let text =
                std::fs::read_to_string(format!("{}/../../{shipped}", env!("CARGO_MANIFEST_DIR")))
                    .unwrap();
            assert!(taken_alike(&text), "{shipped} not taken");
        }
    }

    #[test]
    fn the_quick_reader_leaves_the_rest_to_saphyr() {
        let deep = format!("a: {}x{}\n", "[".repeat(20), "]".repeat(20));
        let others = [
            "",
            "# only a comment\n",
            "---\na: 1\n",
            "a: b#c\n",
            "a:#c\n",
            "a:\n  b: # c\n",
            "a:\n  - b:\n",
            "a:\n  - b: c\n     d: e\n",
            "a:\n  - b: c\n    - d\n",
            "a:\n  - b: c\n   d: e\n",
            "a: 1\r\nb: 2\r\n",
            "a:\tb\n",
            "a:\n    b: 1\n",
            "a:\n  b:\n    c: 1\n",
            "links:\n- {a: x}\n",
            "a: \"x\\\"y\"\n",
            "a: 'x'\n",
            "a: \"\u{fc}\"\n",
            "a: b\n  c\n",
            "a:\n  - b\n    c\n",
            "a: [1,2]\n",
            "a: {b: 1,c: 2}\n",
            "a: { b: 1 }\n",
            "a: &x 1\nb: *x\n",
            "a: !tag 1\n",
            "a: [cn[1-2]]\n",
            "a: {b: c,d}\n",
            "a: x: y\n",
            "a: b:\n",
            "a:b\n",
            "a: -1\n",
            "a:  b\n",
            "- a\n",
            "\"a\": 1\n",
            "a: [b\n",
            "a:\n  - b\n  c: d\n",
            "a:\n  b: c\n  - d\n",
            deep.as_str(),
        ];
        for text in others {
            assert!(quick(text).is_none(), "taken:\n{text}");
        }
        // saphyr still says what is wrong, in its words.
        let e = parse("a: [b\n").unwrap_err();
        assert!(e.message.starts_with("YAML syntax"), "{e}");
        assert!(parse("a: &x 1\n").unwrap_err().message.contains("anchors"));
    }

    /// Random documents near the layout: whatever the quick reader takes, saphyr reads alike
    /// (and it takes a good share of them, or the test would prove little).
    #[test]
    fn the_quick_reader_agrees_on_random_documents() {
        use proptest::prelude::*;
        use proptest::test_runner::{Config, TestRng, TestRunner};
        // Mostly what the layout has, sometimes what it must leave to saphyr.
        let pick = |good: Vec<&'static str>, odd: Vec<&'static str>| {
            prop_oneof![
                6 => prop::sample::select(good),
                1 => prop::sample::select(odd),
            ]
        };
        let word = pick(
            vec![
                "a",
                "x:E1",
                "0x1f",
                "cn01",
                "a.b/c",
                "a:b:c",
                "true",
                "a-b",
                "_x",
                ".5",
                "\"\"",
                "\"a b\"",
                "\"x#y, z: w\"",
                "http://h/p",
                "null",
            ],
            vec![
                "-1",
                ":a",
                "a:",
                "~",
                "\"a\\\"b\"",
                "'s'",
                "a b",
                "*x",
                "&y z",
                "#c",
                "a #c",
                "[",
                "{",
                "cn[1-2]",
            ],
        );
        let key = pick(
            vec!["a", "b", "name", "k_1"],
            vec!["a b", "-", "\"q\"", "? a"],
        );
        let sep = pick(vec![", "], vec![",", " , ", ",  "]);
        let flow_key = key.clone();
        let value = word
            .prop_map(String::from)
            .prop_recursive(3, 12, 3, move |inner| {
                let items = prop::collection::vec((inner.clone(), sep.clone()), 0..4);
                let pairs = prop::collection::vec((flow_key.clone(), inner, sep.clone()), 0..4);
                prop_oneof![
                    items.prop_map(|v| {
                        let body: Vec<String> = v.iter().map(|(x, s)| format!("{x}{s}")).collect();
                        format!("[{}]", body.concat().trim_end_matches([',', ' ']))
                    }),
                    pairs.prop_map(|v| {
                        let body: Vec<String> =
                            v.iter().map(|(k, x, s)| format!("{k}: {x}{s}")).collect();
                        format!("{{{}}}", body.concat().trim_end_matches([',', ' ']))
                    }),
                ]
            });
        let top = pick(vec!["name", "a", "b", "nodes"], vec!["x y", "--- a"]);
        let pair = (key.clone(), value.clone());
        let pairs = prop::collection::vec(pair.clone(), 0..3);
        // A list item: a value, or a mapping with its first pair on the `- ` line.
        let item = prop_oneof![
            2 => value.clone().prop_map(|v| format!("  - {v}")),
            1 => (pair.clone(), pairs.clone()).prop_map(|((k, v), more)| {
                let more: Vec<String> = more.iter().map(|(k, v)| format!("\n    {k}: {v}")).collect();
                format!("  - {k}: {v}{}", more.concat())
            }),
        ];
        // A top-level key with what may follow it, or a stray line.
        let section = prop_oneof![
            3 => (top.clone(), value.clone()).prop_map(|(k, v)| format!("{k}: {v}")),
            2 => (top.clone(), prop::collection::vec(item, 0..3))
                .prop_map(|(k, items)| format!("{k}:\n{}", items.join("\n"))),
            2 => (top, pairs).prop_map(|(k, pairs)| {
                let pairs: Vec<String> = pairs.iter().map(|(k, v)| format!("  {k}: {v}")).collect();
                format!("{k}:\n{}", pairs.join("\n"))
            }),
            1 => pair.prop_map(|(k, v)| format!("  {k}: {v}")),
            1 => value.clone().prop_map(|v| format!("    {v}")),
            1 => value.prop_map(|v| format!("- {v}")),
            1 => prop::sample::select(vec!["# comment", "  # comment", ""]).prop_map(String::from),
        ];
        // What ends each line: mostly nothing, sometimes a comment or spaces.
        let end = prop_oneof![
            12 => Just(""),
            2 => prop::sample::select(vec![" # c", "  #c", "   "]),
            1 => prop::sample::select(vec!["#c", " #", ":"]),
        ];
        let documents = (
            prop::collection::vec(section, 1..5),
            prop::collection::vec(end, 24),
        )
            .prop_map(|(sections, ends)| {
                let text = sections.join("\n");
                let lines: Vec<String> = text
                    .split('\n')
                    .zip(ends.iter().cycle())
                    .map(|(l, e)| format!("{l}{e}"))
                    .collect();
                lines.join("\n")
            });
        // Seeded: a failure repeats, and the share taken is the same on every run.
        let config = Config {
            cases: 3000,
            ..Config::default()
        };
        let rng = TestRng::deterministic_rng(config.rng_algorithm);
        let mut runner = TestRunner::new_with_rng(config, rng);
        let taken = std::cell::Cell::new(0);
        runner
            .run(&documents, |text| {
                taken.set(taken.get() + usize::from(taken_alike(&text)));
                Ok(())
            })
            .unwrap();
        assert!(taken.get() > 300, "only {} of 3000 taken", taken.get());
    }
}
