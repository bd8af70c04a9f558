//! A small YAML document tree that remembers where every value came from.
//!
//! Built from saphyr-parser's event stream rather than a serde derive, because every semantic
//! error jobnet reports (a duplicate port, an unknown switch, a bad GUID) must name the exact
//! `LINE:COL` of the value, and because scalars must keep their raw text: YAML 1.2 would turn an
//! unquoted `0x1000` into the integer 4096 and `0002c9...` GUIDs into numbers. Duplicate mapping
//! keys, which many YAML libraries silently overwrite, are reported, every one of them (the
//! document's shape is still known past one). Anchors, aliases and tags are refused: topology
//! files are data written by people, not programs.

use crate::base::diag::{Diagnostics, Loc};
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
        let hint = crate::base::diag::suggestion(key, allowed.iter().copied());
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
/// the caller then drops).
fn parse_tree(text: &str, duplicates: &mut Vec<SyntaxError>) -> Result<Option<Node>, SyntaxError> {
    let mut parser = Parser::new_from_str(text);
    let mut stack: Vec<Frame> = Vec::new();
    let mut root: Option<Node> = None;
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
        let finished = match event {
            Event::DocumentStart(_) => {
                documents += 1;
                if documents > 1 {
                    return Err(SyntaxError {
                        loc,
                        message: "a second YAML document (`---`) in one file".into(),
                    });
                }
                None
            }
            Event::Alias(_) => {
                return Err(SyntaxError {
                    loc,
                    message: "YAML aliases (`*name`) are not supported; write the value out".into(),
                })
            }
            Event::Scalar(value, style, anchor, tag) => {
                refuse_anchor_tag(loc, anchor, tag.is_some())?;
                Some(Node {
                    loc,
                    kind: Kind::Scalar {
                        text: value.into_owned(),
                        plain: style == ScalarStyle::Plain,
                    },
                })
            }
            Event::SequenceStart(anchor, tag) => {
                refuse_anchor_tag(loc, anchor, tag.is_some())?;
                stack.push(Frame::Seq(loc, Vec::new()));
                None
            }
            Event::MappingStart(anchor, tag) => {
                refuse_anchor_tag(loc, anchor, tag.is_some())?;
                stack.push(Frame::Map(loc, Vec::new(), None));
                None
            }
            Event::SequenceEnd => match stack.pop() {
                Some(Frame::Seq(l, items)) => Some(Node {
                    loc: l,
                    kind: Kind::Seq(items),
                }),
                _ => unreachable!("parser guarantees balanced sequences"),
            },
            Event::MappingEnd => match stack.pop() {
                Some(Frame::Map(l, pairs, _)) => Some(Node {
                    loc: l,
                    kind: Kind::Map(pairs),
                }),
                _ => unreachable!("parser guarantees balanced mappings"),
            },
            _ => None,
        };
        if let Some(node) = finished {
            place(node, &mut stack, &mut root, duplicates)?;
        }
    }
    Ok(root)
}

/// Puts a finished node where it belongs: the root, the next item of the open sequence, or the
/// next key or value of the open mapping (keys must be scalars; a key seen before in the same
/// mapping goes to `duplicates`).
fn place(
    node: Node,
    stack: &mut [Frame],
    root: &mut Option<Node>,
    duplicates: &mut Vec<SyntaxError>,
) -> Result<(), SyntaxError> {
    match stack.last_mut() {
        None => *root = Some(node),
        Some(Frame::Seq(_, items)) => items.push(node),
        Some(Frame::Map(_, pairs, pending)) => match pending.take() {
            None => {
                if node.as_str().is_none() {
                    return Err(SyntaxError {
                        loc: node.loc,
                        message: "mapping keys must be plain words".into(),
                    });
                }
                if let Some((first, _)) = pairs.iter().find(|(k, _)| k.as_str() == node.as_str()) {
                    duplicates.push(SyntaxError {
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
}
