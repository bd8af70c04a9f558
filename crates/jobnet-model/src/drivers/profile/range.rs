//! Interface ranges (`range:`): several ports' operations sent as one ranged block. Operations of
//! one kind whose lines differ only in the port (the job's VLAN added to many node ports:
//! `interface X` / `switchport trunk allowed vlan add V` / `exit`) go as the ranged context line
//! (`interface Ethernet1/1-48`) and their common body once.
//!
//! Ranges are built only from names the profile's `members` pattern takes (a stem and a final
//! number, `Ethernet1/` and `7`): runs of consecutive numbers of one stem are written with the
//! profile's `run` form, other members as their names, at most `max_items` items, `max_ports`
//! ports and `max_line` characters per line. Nothing else reaches the line: the names are the
//! topology's validated port names, the rest is the profile's text.
//!
//! A ranged line is not atomic on an immediate-mode CLI (each member is configured as the line
//! is carried out, and a refusal may leave some members done): what the executor does about that
//! is in `apply/device.rs`; this module only writes and reads the lines.

use super::pattern::Regex;

/// How a dialect addresses several ports at once (the profile's `range:`).
#[derive(Clone, Debug)]
pub struct PortRange {
    /// The line of an operation that names its one port, as the operations write it
    /// (`interface {port}`); only operations whose first line it is are ranged.
    pub context: String,
    /// What stands for it for several ports (`interface range {ports}`).
    pub ranged: String,
    /// Names that may be members, matched against the whole name: group 1 the stem, group 2 the
    /// number (`(Ethernet\d+/)(\d+)`).
    pub members: Regex,
    /// How a run of consecutive ports is written: `{first}` and `{last}` are names,
    /// `{last_number}` the last one's number (`{first} - {last_number}`: `Gi1/0/1 - 24`).
    pub run: String,
    /// Between the items (runs, single ports) of one line; only with `max_items` above 1.
    pub join: Option<String>,
    pub max_items: usize,
    pub max_ports: usize,
    pub max_line: usize,
}

/// The longest line a profile may allow (`max_line`), and its default: long lines have been
/// seen to be cut or to stall CLIs (the research behind issue 15: keep them to about 200).
pub const MAX_LINE: std::ops::RangeInclusive<usize> = 40..=1000;
pub const DEFAULT_MAX_LINE: usize = 200;
/// Ports in one ranged line unless the profile says otherwise: a line card's worth, which also
/// bounds how much a refused block has to be sent again port by port.
pub const DEFAULT_MAX_PORTS: usize = 48;

/// One member: its stem and number.
struct Member<'a> {
    name: &'a str,
    stem: &'a str,
    number: u32,
}

impl PortRange {
    fn member<'a>(&self, name: &'a str) -> Option<Member<'a>> {
        let c = self.members.captures(name)?;
        let whole = c.get(0)?;
        if whole.start() != 0 || whole.end() != name.len() {
            return None;
        }
        let stem = c.get(1)?;
        let number = c.get(2)?;
        if stem.end() != number.start() || number.end() != name.len() {
            return None;
        }
        Some(Member {
            name,
            stem: stem.as_str(),
            number: number.as_str().parse().ok()?,
        })
    }

    /// The ranged line for `ports` (in any order), or `None` when they cannot go together: a
    /// name that is not a member, a port twice, or over a limit.
    pub fn line(&self, ports: &[&str]) -> Option<String> {
        if ports.len() > self.max_ports {
            return None;
        }
        let mut members: Vec<Member> = ports
            .iter()
            .map(|p| self.member(p))
            .collect::<Option<_>>()?;
        members.sort_by(|a, b| (a.stem, a.number).cmp(&(b.stem, b.number)));
        if members
            .windows(2)
            .any(|w| (w[0].stem, w[0].number) == (w[1].stem, w[1].number))
        {
            return None;
        }
        let mut items: Vec<String> = Vec::new();
        let mut i = 0;
        while i < members.len() {
            let mut j = i;
            while j + 1 < members.len()
                && members[j + 1].stem == members[i].stem
                && members[j + 1].number == members[j].number + 1
            {
                j += 1;
            }
            items.push(if j == i {
                members[i].name.to_string()
            } else {
                self.run
                    .replace("{first}", members[i].name)
                    .replace("{last_number}", &members[j].number.to_string())
                    .replace("{last}", members[j].name)
            });
            i = j + 1;
        }
        if items.len() > self.max_items {
            return None;
        }
        let joined = items.join(self.join.as_deref().unwrap_or(""));
        let line = self.ranged.replace("{ports}", &joined);
        (line.len() <= self.max_line).then_some(line)
    }

    /// The port of an operation whose lines start with this profile's context line for it and
    /// have a body after it.
    fn context_port<'a>(&self, port: Option<&'a str>, lines: &[String]) -> Option<&'a str> {
        let port = port?;
        (lines.len() >= 2 && lines[0] == self.context.replace("{port}", port)).then_some(port)
    }

    /// How consecutive operations (each its port, if any, and its lines) go: the sizes of
    /// consecutive blocks, in order. A block of several is one ranged line and the body its
    /// operations share; a block of one goes as the operation's own lines.
    pub fn blocks(&self, ops: &[(Option<&str>, &[String])]) -> Vec<usize> {
        let mut sizes = Vec::new();
        let mut i = 0;
        while i < ops.len() {
            let mut n = 1;
            if let Some(first) = self.context_port(ops[i].0, ops[i].1) {
                let body = &ops[i].1[1..];
                let mut ports = vec![first];
                while let Some((port, lines)) = ops.get(i + n) {
                    let Some(p) = self.context_port(*port, lines) else {
                        break;
                    };
                    ports.push(p);
                    if &lines[1..] != body || self.line(&ports).is_none() {
                        break;
                    }
                    n += 1;
                }
            }
            sizes.push(n);
            i += n;
        }
        sizes
    }

    /// The lines of one block of several operations (each its port and lines), or `None` when
    /// they cannot go as one ([`PortRange::blocks`] would not have put them together).
    pub fn block(&self, ops: &[(Option<&str>, &[String])]) -> Option<Vec<String>> {
        let (_, first) = ops.first()?;
        let ports: Vec<&str> = ops
            .iter()
            .map(|(p, l)| self.context_port(*p, l))
            .collect::<Option<_>>()?;
        if ops.len() < 2 || ops.iter().any(|(_, l)| l[1..] != first[1..]) {
            return None;
        }
        let mut lines = vec![self.line(&ports)?];
        lines.extend(first[1..].iter().cloned());
        Some(lines)
    }

    /// The ports a ranged line names, in its order (the test kit's simulator reads lines
    /// back with this); `None` when `line` is not a ranged line of this form.
    pub fn expand(&self, line: &str) -> Option<Vec<String>> {
        let (before, after) = self.ranged.split_once("{ports}")?;
        let text = line.strip_prefix(before)?.strip_suffix(after)?;
        let items: Vec<&str> = match &self.join {
            Some(j) => text.split(j.as_str()).collect(),
            None => vec![text],
        };
        let run = run_pattern(&self.run);
        let mut ports = Vec::new();
        for item in items {
            let Some(c) = run.captures(item) else {
                let m = self.member(item)?;
                ports.push(m.name.to_string());
                continue;
            };
            let first = self.member(c.name("first")?.as_str())?;
            let last = match (c.name("last"), c.name("last_number")) {
                (Some(l), _) => {
                    let l = self.member(l.as_str())?;
                    (l.stem == first.stem).then_some(l.number)?
                }
                (None, Some(n)) => n.as_str().parse().ok()?,
                (None, None) => return None,
            };
            if last <= first.number || last - first.number >= 10_000 {
                return None;
            }
            ports.extend((first.number..=last).map(|n| format!("{}{n}", first.stem)));
        }
        Some(ports)
    }
}

/// The `run` form as an anchored pattern with named groups.
fn run_pattern(run: &str) -> Regex {
    let mut re = String::from("^");
    let mut rest = run;
    while let Some(open) = rest.find('{') {
        re.push_str(&regex::escape(&rest[..open]));
        let Some(close) = rest[open..].find('}').map(|c| c + open) else {
            break;
        };
        re.push_str(match &rest[open + 1..close] {
            "last_number" => r"(?P<last_number>\d+)",
            "last" => r"(?P<last>\S+)",
            _ => r"(?P<first>\S+)",
        });
        rest = &rest[close + 1..];
    }
    re.push_str(&regex::escape(rest));
    re.push('$');
    Regex::new(&re).expect("escaped text and fixed groups")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nxos() -> PortRange {
        PortRange {
            context: "interface {port}".into(),
            ranged: "interface {ports}".into(),
            members: Regex::new(r"((?i:Ethernet|Eth)\d+/)(\d+)").unwrap(),
            run: "{first}-{last_number}".into(),
            join: None,
            max_items: 1,
            max_ports: 48,
            max_line: 200,
        }
    }

    fn lines(port: &str, body: &str) -> Vec<String> {
        vec![format!("interface {port}"), body.to_string(), "exit".into()]
    }

    #[test]
    fn runs_are_written_in_the_profiles_form() {
        let r = nxos();
        assert_eq!(
            r.line(&["Ethernet1/3", "Ethernet1/1", "Ethernet1/2"])
                .unwrap(),
            "interface Ethernet1/1-3"
        );
        assert_eq!(r.line(&["Ethernet1/7"]).unwrap(), "interface Ethernet1/7");
        // Two runs, one item per line: not one line.
        assert_eq!(r.line(&["Ethernet1/1", "Ethernet1/3"]), None);
        // Not members, or twice.
        assert_eq!(r.line(&["port-channel1", "port-channel2"]), None);
        assert_eq!(r.line(&["Ethernet1/1", "Ethernet1/1"]), None);
        assert_eq!(r.line(&["Ethernet1/1x", "Ethernet1/2"]), None);
        let ios = PortRange {
            ranged: "interface range {ports}".into(),
            members: Regex::new(r"((?i:GigabitEthernet|Gi)\d+/(?:\d+/)?)(\d+)").unwrap(),
            run: "{first} - {last_number}".into(),
            join: Some(" , ".into()),
            max_items: 5,
            ..nxos()
        };
        let ports = [
            "Gi1/0/1", "Gi1/0/2", "Gi1/0/3", "Gi1/0/5", "Gi2/0/1", "Gi2/0/2",
        ];
        let line = ios.line(&ports).unwrap();
        assert_eq!(line, "interface range Gi1/0/1 - 3 , Gi1/0/5 , Gi2/0/1 - 2");
        assert_eq!(ios.expand(&line).unwrap(), ports);
        let six = [
            "Gi1/0/1", "Gi1/0/3", "Gi1/0/5", "Gi1/0/7", "Gi1/0/9", "Gi1/0/11",
        ];
        assert_eq!(ios.line(&six), None, "six items, at most five");
        let short = PortRange {
            max_line: 40,
            ..ios.clone()
        };
        assert_eq!(short.line(&six[..5]), None, "longer than max_line");
        let few = PortRange {
            max_ports: 3,
            ..ios
        };
        assert_eq!(few.line(&ports[..4]), None, "more than max_ports");
    }

    #[test]
    fn blocks_keep_the_operations_order_and_group_only_equal_bodies() {
        let r = nxos();
        let add = |p: &str| lines(p, "switchport trunk allowed vlan add 10");
        let ops: Vec<(Option<String>, Vec<String>)> = vec![
            (None, vec!["vlan 10".into(), "name j".into(), "exit".into()]),
            (Some("Ethernet1/49".into()), add("Ethernet1/49")),
            (Some("Ethernet1/1".into()), add("Ethernet1/1")),
            (Some("Ethernet1/2".into()), add("Ethernet1/2")),
            (Some("Ethernet1/3".into()), add("Ethernet1/3")),
            (Some("Ethernet1/5".into()), add("Ethernet1/5")),
            (
                Some("Ethernet1/6".into()),
                lines("Ethernet1/6", "switchport access vlan 10"),
            ),
            (
                Some("Ethernet1/7".into()),
                lines("Ethernet1/7", "switchport access vlan 10"),
            ),
        ];
        let view: Vec<(Option<&str>, &[String])> = ops
            .iter()
            .map(|(p, l)| (p.as_deref(), l.as_slice()))
            .collect();
        // 1/49 and 1/1 are no run (one item a line); 1/1-3 is; 1/5 stands alone; the access
        // VLAN of 1/6-7 is another body.
        assert_eq!(r.blocks(&view), [1, 1, 3, 1, 2]);
        assert_eq!(
            r.block(&view[2..5]).unwrap(),
            [
                "interface Ethernet1/1-3",
                "switchport trunk allowed vlan add 10",
                "exit"
            ]
        );
        assert_eq!(r.block(&view[4..7]), None, "different bodies");
        assert_eq!(r.block(&view[..2]), None, "not port operations");
        // 60 consecutive ports: 48 and 12.
        let many: Vec<(Option<String>, Vec<String>)> = (1..=60)
            .map(|n| {
                let p = format!("Ethernet2/{n}");
                (Some(p.clone()), add(&p))
            })
            .collect();
        let view: Vec<(Option<&str>, &[String])> = many
            .iter()
            .map(|(p, l)| (p.as_deref(), l.as_slice()))
            .collect();
        assert_eq!(r.blocks(&view), [48, 12]);
        assert_eq!(
            r.block(&view[48..]).unwrap()[0],
            "interface Ethernet2/49-60"
        );
    }

    #[test]
    fn ranged_lines_are_read_back() {
        let r = nxos();
        assert_eq!(
            r.expand("interface Ethernet1/1-4").unwrap(),
            ["Ethernet1/1", "Ethernet1/2", "Ethernet1/3", "Ethernet1/4"]
        );
        assert_eq!(r.expand("interface Ethernet1/7").unwrap(), ["Ethernet1/7"]);
        for bad in [
            "interface Ethernet1/4-1",
            "interface Ethernet1/4-4",
            "interface port-channel1-2",
            "vlan 10",
            "interface Ethernet1/1-99999",
        ] {
            assert_eq!(r.expand(bad), None, "{bad}");
        }
        let onyx = PortRange {
            context: "interface ethernet {port}".into(),
            ranged: "interface ethernet {ports}".into(),
            members: Regex::new(r"(\d+/)(\d+)").unwrap(),
            run: "{first}-{last}".into(),
            ..nxos()
        };
        assert_eq!(
            onyx.line(&["1/1", "1/2", "1/3"]).unwrap(),
            "interface ethernet 1/1-1/3"
        );
        assert_eq!(
            onyx.expand("interface ethernet 1/1-1/3").unwrap(),
            ["1/1", "1/2", "1/3"]
        );
        assert_eq!(onyx.expand("interface ethernet 1/1-2/3"), None);
    }
}
