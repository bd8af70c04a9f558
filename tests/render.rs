//! The pictures: DOT drawn top-down with every link once and its ports, costs and gateways; the
//! SVG with the core above the leaves, hover titles on switches, links and gateways, the job's
//! ports written on its links; a 2,000-node fat tree readable whole (a sane aspect ratio) and as
//! a small job view that keeps every switch of the plan; every SVG well-formed XML.

use jobnet::base::types::JobId;
use jobnet::drivers::DriverSet;
use jobnet::plan::render::{self, View};
use jobnet::plan::{self, Choice, Inputs, JobRequest, PKeyChoice, Plan};
use jobnet::topology::{self, FatTreeSpec, SwitchGraph, Topology};
use std::path::Path;

fn load(topo: &str) -> Topology {
    topology::load(Path::new(topo), &DriverSet::builtin())
        .unwrap()
        .topology
}

fn fat_tree(nodes: usize) -> Topology {
    let yaml = topology::fat_tree(&FatTreeSpec {
        nodes,
        ..FatTreeSpec::default()
    });
    topology::parse(&yaml, "fat-tree.yaml", &DriverSet::builtin())
        .unwrap()
        .topology
}

fn plan_on(t: &Topology, nodes: &str, gateway: Option<&str>) -> Plan {
    let set = DriverSet::builtin();
    let g = SwitchGraph::build(t);
    let req = JobRequest {
        job: JobId::parse("1234").unwrap(),
        nodes: jobnet::base::hostlist::expand(nodes).unwrap(),
        vlan: Choice::Auto,
        pkey: PKeyChoice::Default,
        gateway: gateway.map(str::to_string),
        origin: Default::default(),
    };
    plan::plan(
        Inputs {
            topology: t,
            graph: &g,
            drivers: &set,
            held: &[],
            partitions_conf: None,
            partitions_conf_path: None,
        },
        &req,
    )
    .unwrap()
}

/// The README's job on the demo fabric.
fn readme_job(gateway: Option<&str>) -> (Topology, Plan) {
    let t = load("topology/two-tier.yaml");
    let p = plan_on(&t, "cn[001-004],cn[030-031],cn041", gateway);
    (t, p)
}

/// Checks that `s` is well-formed XML as far as these pictures go: one root element, every
/// tag closed in order, attributes quoted, no raw `<` or stray `&` in text or values. Returns
/// the number of elements.
fn check_xml(s: &str) -> usize {
    fn check_text(text: &str) {
        let mut rest = text;
        while let Some(i) = rest.find('&') {
            let tail = &rest[i + 1..];
            let end = tail.find(';').expect("an entity ends with ;");
            let name = &tail[..end];
            assert!(
                matches!(name, "amp" | "lt" | "gt" | "quot" | "apos")
                    || name.starts_with('#') && name[1..].chars().all(|c| c.is_ascii_digit()),
                "unknown entity &{name};"
            );
            rest = &tail[end + 1..];
        }
        assert!(!text.contains('<'), "raw < in {text:?}");
    }
    fn check_attrs(attrs: &str) {
        let mut rest = attrs.trim();
        while !rest.is_empty() {
            let eq = rest
                .find('=')
                .unwrap_or_else(|| panic!("attribute without value: {rest}"));
            let name = rest[..eq].trim();
            assert!(
                !name.is_empty()
                    && name
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || "-_:".contains(c)),
                "bad attribute name {name:?}"
            );
            let after = &rest[eq + 1..];
            assert!(after.starts_with('"'), "unquoted value of {name}");
            let close = after[1..].find('"').expect("closing quote");
            check_text(&after[1..close + 1]);
            rest = after[close + 2..].trim_start();
        }
    }
    let mut stack: Vec<&str> = Vec::new();
    let (mut elements, mut roots) = (0, 0);
    let mut rest = s;
    while let Some(i) = rest.find('<') {
        if stack.is_empty() {
            assert!(rest[..i].trim().is_empty(), "text outside the root");
        } else {
            check_text(&rest[..i]);
        }
        let after = &rest[i + 1..];
        let end = after.find('>').expect("a tag ends with >");
        let tag = &after[..end];
        rest = &after[end + 1..];
        if let Some(name) = tag.strip_prefix('/') {
            assert_eq!(stack.pop(), Some(name.trim()), "closing tag out of order");
            continue;
        }
        let (body, empty) = match tag.strip_suffix('/') {
            Some(b) => (b, true),
            None => (tag, false),
        };
        let name_end = body.find(char::is_whitespace).unwrap_or(body.len());
        let name = &body[..name_end];
        assert!(
            !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric()),
            "bad tag name {name:?}"
        );
        check_attrs(&body[name_end..]);
        if stack.is_empty() {
            roots += 1;
        }
        elements += 1;
        if !empty {
            stack.push(name);
        }
    }
    assert!(stack.is_empty(), "unclosed tags: {stack:?}");
    assert!(rest.trim().is_empty(), "text after the root");
    assert_eq!(roots, 1, "one root element");
    elements
}

/// The `width` and `height` of the `<svg>` element.
fn size(svg: &str) -> (f64, f64) {
    let attr = |name: &str| -> f64 {
        let key = format!(" {name}=\"");
        let at = svg.find(&key).unwrap() + key.len();
        svg[at..at + svg[at..].find('"').unwrap()].parse().unwrap()
    };
    (attr("width"), attr("height"))
}

/// The top edge of the box of switch `name` in an SVG.
fn box_y(svg: &str, name: &str) -> f64 {
    let at = svg
        .find(&format!("data-switch=\"{name}\""))
        .unwrap_or_else(|| panic!("switch {name} is not drawn"));
    let rect = at + svg[at..].find("<rect ").unwrap();
    let y = rect + svg[rect..].find(" y=\"").unwrap() + 4;
    svg[y..y + svg[y..].find('"').unwrap()].parse().unwrap()
}

fn count(haystack: &str, needle: &str) -> usize {
    haystack.matches(needle).count()
}

#[test]
fn dot_is_top_down_with_every_link_once() {
    let (t, p) = readme_job(None);
    for dot in [render::dot(&t, None), render::dot(&t, Some(&p))] {
        assert!(dot.contains("rankdir=TB"), "{dot}");
        assert!(!dot.contains("rankdir=BT"));
        for l in &t.links {
            let tip = format!("tooltip=\"{} -- {} (cost {}", l.a, l.b, l.cost);
            assert_eq!(count(&dot, &tip), 1, "{tip} once in\n{dot}");
        }
        // One edge per link plus one per gateway, each from the port cell at one end to the
        // port cell at the other.
        let edges = dot.lines().filter(|l| l.contains(" -- ")).count();
        assert_eq!(edges, t.links.len() + t.gateways.len());
        // The spines' rank comes first (top), every spine-to-leaf edge starts at the spine.
        let spines = dot.find("{rank=same; \"spine1\"; \"spine2\";}").unwrap();
        let leaves = dot.find("{rank=same; \"leaf1\"").unwrap();
        assert!(spines < leaves);
        assert!(dot.contains("\"spine2\":p2:s -- \"leaf3\":p1:n [label=\"cost 1, lag\""));
        // Ports are cells of the switch's table, never edge labels that could overlap.
        assert!(dot.contains(">Port-Channel3</font></td>"));
        assert!(!dot.contains("taillabel") && !dot.contains("headlabel"));
        // Down links dashed, LAGs thick.
        assert!(dot.contains("(cost 1, down)\", style=dashed"));
    }
    let dot = render::dot(&t, Some(&p));
    assert!(dot.contains(
        "tooltip=\"spine2:Port-Channel3 -- leaf3:Port-Channel1 (cost 1, lag)\", penwidth=4.5, color=\"#d62728\""
    ));
    assert!(dot.contains("job: cn[001-004]"));
}

#[test]
fn dot_draws_gateways_on_their_port() {
    let (t, p) = readme_job(Some("gw1"));
    let dot = render::dot(&t, Some(&p));
    assert!(dot.contains("\"gw1\" [shape=hexagon"));
    let edge = dot
        .lines()
        .find(|l| l.contains("-- \"gw1\""))
        .expect("an edge to the gateway");
    assert!(edge.trim_start().starts_with("\"leaf4\":p"), "{edge}");
    assert!(
        edge.contains("color=\"#d62728\""),
        "the job's gateway in red: {edge}"
    );
    assert!(dot.contains(">ethernet1/1/47</font></td>"));
}

#[test]
fn svg_draws_the_core_above_the_leaves() {
    let t = load("topology/jscc.yaml");
    let svg = render::svg(&t, None);
    for core in ["core-a", "core-b"] {
        for rack in ["rack1", "rack2", "rack3"] {
            assert!(box_y(&svg, core) < box_y(&svg, rack), "{core} above {rack}");
        }
    }
    let (t, p) = readme_job(None);
    let svg = render::svg(&t, Some(&p));
    assert!(box_y(&svg, "spine1") < box_y(&svg, "leaf1"));
    assert!(box_y(&svg, "spine2") < box_y(&svg, "leaf4"));
    assert_eq!(box_y(&svg, "leaf1"), box_y(&svg, "leaf3"));
}

#[test]
fn svg_has_hover_titles_on_links_switches_and_nodes() {
    let (t, p) = readme_job(None);
    let svg = render::svg(&t, Some(&p));
    for l in &t.links {
        let title = format!("<title>{} -- {}\ncost {}", l.a, l.b, l.cost);
        assert!(svg.contains(&title), "no hover title {title:?}");
    }
    assert!(svg.contains("<title>spine2:Port-Channel3 -- leaf3:Port-Channel1\ncost 1, lag\n"));
    assert!(svg
        .contains("<title>spine1:Ethernet3 -- leaf3:GigabitEthernet1/0/49\ncost 1, down</title>"));
    assert!(svg.contains("<title>spine2:Ethernet1 -- leaf1:Ethernet50\ncost 10</title>"));
    assert!(svg.contains(
        "<title>switch leaf2\ndriver cisco-nxos\naddress 192.0.2.12\nnodes cn[025-040],login1 (17)\njob's nodes cn[030-031]\nin the job's subgraph</title>"
    ));
    assert!(svg.contains("<title>switch spine1\ndriver arista-eos\naddress 192.0.2.1</title>"));
}

#[test]
fn svg_writes_ports_and_cost_on_the_jobs_links() {
    let (t, p) = readme_job(None);
    let svg = render::svg(&t, Some(&p));
    // Both ends of every link of the subgraph, in red, over a white backing.
    for l in &p.ethernet.links {
        for port in [&l.a.port, &l.b.port] {
            assert!(
                svg.contains(&format!("fill=\"#d62728\">{port}</text>")),
                "port {port} not written"
            );
        }
    }
    assert!(svg.contains(">cost 1</text>"));
    // Ports of links outside the job are only in hover titles.
    assert!(!svg.contains(">Ethernet49</text>"));
    // The job's switches and nodes in red.
    assert!(svg.contains("job: cn[001-004]"));
    assert_eq!(count(&svg, "stroke=\"#d62728\" stroke-width=\"2.5\""), 4);
}

#[test]
fn svg_draws_gateways() {
    let (t, _) = readme_job(None);
    let svg = render::svg(&t, None);
    let at = svg.find("<g data-gateway=\"gw1\">").expect("gateway drawn");
    let g = &svg[at..at + svg[at..].find("</g>").unwrap()];
    assert!(g.contains("<polygon"));
    assert!(g.contains(">ethernet1/1/47</text>"));
    assert!(g.contains(
        "<title>gateway gw1\ndriver mellanox-gateway\naddress 192.0.2.50\nethernet leaf4:ethernet1/1/47\ninfiniband 0x0002c903000abcd1</title>"
    ));
    assert!(!g.contains("#d62728"));
    // Used by the job: red, and said so on hover.
    let (t, p) = readme_job(Some("gw1"));
    let svg = render::svg(&t, Some(&p));
    let at = svg.find("<g data-gateway=\"gw1\">").unwrap();
    let g = &svg[at..at + svg[at..].find("</g>").unwrap()];
    assert!(g.contains("stroke=\"#d62728\""));
    assert!(g.contains("bridges the job's PKey to its VLAN"));
}

#[test]
fn fat_tree_of_2000_nodes_is_readable_whole() {
    let t = fat_tree(2000);
    assert_eq!(t.switches.len(), 103);
    let svg = render::svg(&t, None);
    let (w, h) = size(&svg);
    let aspect = w / h;
    assert!(
        (1.0 / 3.0..=3.0).contains(&aspect),
        "{w} x {h} is not between 1:3 and 3:1"
    );
    assert_eq!(count(&svg, "data-switch=\""), 103);
    assert_eq!(count(&svg, "<title>switch "), 2 * 103);
    // Every link has its hover title.
    assert_eq!(
        count(&svg, "\ncost 1</title>"),
        t.links.len(),
        "one title per link"
    );
    check_xml(&svg);
    // The same in the whole-fabric view with a plan: everything drawn, the job in red.
    let p = plan_on(&t, "cn[0001-0040]", None);
    let full = render::svg_view(&t, Some(&p), View::Full);
    assert_eq!(count(&full, "data-switch=\""), 103);
    let (w, h) = size(&full);
    assert!((1.0 / 3.0..=3.0).contains(&(w / h)));
}

#[test]
fn job_view_of_a_small_job_on_a_big_fabric() {
    let t = fat_tree(2000);
    let p = plan_on(&t, "cn[0001-0040],cn[0300-0310]", None);
    assert_eq!(View::auto(&t, Some(&p)), View::Job);
    assert_eq!(View::auto(&t, None), View::Full);
    let job = render::svg(&t, Some(&p));
    assert_eq!(job, render::svg_view(&t, Some(&p), View::Job));
    let full = render::svg_view(&t, Some(&p), View::Full);
    let (job_n, full_n) = (check_xml(&job), check_xml(&full));
    assert!(
        job_n * 3 < full_n,
        "job view has {job_n} elements, the full view {full_n}"
    );
    for s in &p.ethernet.switches {
        assert!(
            job.contains(&format!("data-switch=\"{s}\"")),
            "{s} of the plan missing"
        );
    }
    let drawn = count(&job, "data-switch=\"");
    assert!(
        drawn > p.ethernet.switches.len(),
        "a ring of context is drawn"
    );
    assert!(drawn < 40, "{drawn} switches drawn");
    assert!(job.contains("job view: the job's switches and "));
    assert!(job.contains(&format!("not drawn: {} switches", t.switches.len() - drawn)));
    // Context is grey, the job red, every link of the plan drawn with its ports.
    assert_eq!(
        count(&job, "stroke=\"#d62728\" stroke-width=\"2.5\""),
        p.ethernet.switches.len()
    );
    for l in &p.ethernet.links {
        assert!(job.contains(&format!("<title>{} -- {}\ncost", l.a, l.b)));
    }
    // The DOT job view: the plan's switches, fewer than all, and the caption.
    let dot = render::dot(&t, Some(&p));
    assert!(dot.contains("rankdir=TB") && dot.contains("not drawn:"));
    for s in &p.ethernet.switches {
        assert!(dot.contains(&format!("  \"{s}\" [tooltip=")));
    }
    let nodes = dot
        .lines()
        .filter(|l| l.contains(" [tooltip=") && !l.contains(" -- "))
        .count();
    assert!(nodes < 40, "{nodes} switches in the DOT job view");
    let full_dot = render::dot_view(&t, Some(&p), View::Full);
    assert!(!full_dot.contains("not drawn:"));
    for l in &t.links {
        assert_eq!(
            count(&full_dot, &format!("tooltip=\"{} -- {} (", l.a, l.b)),
            1
        );
    }
}

#[test]
fn job_view_without_a_plan_is_the_whole_fabric() {
    let t = load("topology/jscc.yaml");
    assert_eq!(
        render::svg_view(&t, None, View::Job),
        render::svg_view(&t, None, View::Full)
    );
    assert_eq!(
        render::dot(&t, None),
        render::dot_view(&t, None, View::Full)
    );
    // A small fabric with a plan is drawn whole by default.
    let (t, p) = readme_job(None);
    assert_eq!(View::auto(&t, Some(&p)), View::Full);
    let job = render::svg_view(&t, Some(&p), View::Job);
    // All six switches are the job's or next to it; only spine1 -- leaf4 joins two neighbours.
    assert!(job.contains("not drawn: 0 switches, 1 link, 0 nodes of demo-fabric"));
    assert!(job.contains("job view: the job's switches and 2 neighbouring switches (grey)"));
    assert!(!job.contains("<title>spine1:Ethernet4 -- leaf4:ethernet1/1/49"));
    assert_eq!("job".parse::<View>(), Ok(View::Job));
    assert_eq!("full".parse::<View>(), Ok(View::Full));
    assert!("all".parse::<View>().is_err());
}

#[test]
fn every_picture_is_well_formed() {
    let (t, p) = readme_job(None);
    let (tg, pg) = readme_job(Some("gw1"));
    let jscc = load("topology/jscc.yaml");
    let pictures = [
        render::svg(&t, None),
        render::svg(&t, Some(&p)),
        render::svg(&tg, Some(&pg)),
        render::svg_view(&tg, Some(&pg), View::Job),
        render::svg(&jscc, None),
    ];
    for svg in &pictures {
        check_xml(svg);
        assert!(svg.starts_with("<svg xmlns=\"http://www.w3.org/2000/svg\""));
        let (w, h) = size(svg);
        assert!(w > 0.0 && h > 0.0 && w / h <= 3.0, "{w} x {h}");
    }
    // Names are escaped.
    let odd = topology::parse(
        "name: \"a<b & c>\"\nethernet:\n  vlan_pool: \"10-20\"\nswitches:\n  - {name: s1, driver: arista-eos, address: 10.0.0.1}\nlinks: []\nnodes:\n  - {name: n1, port: s1:Ethernet1}\n",
        "odd.yaml",
        &DriverSet::builtin(),
    )
    .unwrap()
    .topology;
    let svg = render::svg(&odd, None);
    check_xml(&svg);
    assert!(svg.contains("a&lt;b &amp; c&gt;"));
    assert!(render::dot(&odd, None).contains("graph \"a<b & c>\""));
}

#[test]
fn the_readme_picture_is_the_readme_command() {
    // docs/img/two-tier-job-1234.svg is what README's first command prints with --format svg.
    let (t, p) = readme_job(None);
    let have = std::fs::read_to_string("docs/img/two-tier-job-1234.svg").unwrap();
    assert!(
        have == render::svg(&t, Some(&p)),
        "docs/img/two-tier-job-1234.svg is not what the README's command prints; regenerate it: \
         cargo run -q -- plan --topology topology/two-tier.yaml --job 1234 \
         --nodes 'cn[001-004],cn[030-031],cn041' --format svg > docs/img/two-tier-job-1234.svg"
    );
    let jscc = load("topology/jscc.yaml");
    let have = std::fs::read_to_string("docs/img/jscc-fabric.svg").unwrap();
    assert!(
        have == render::svg(&jscc, None),
        "docs/img/jscc-fabric.svg is stale; regenerate it: \
         cargo run -q -- topology show topology/jscc.yaml --format svg > docs/img/jscc-fabric.svg"
    );
}

#[test]
fn infiniband_only_fabrics_have_pictures_too() {
    let t = topology::parse(
        "name: ib-cluster\ninfiniband: {pkey_pool: \"0x1000-0x1fff\", reload: {pidfile: /run/opensm.pid}}\nnodes:\n  - {name: \"cn[001-002]\", ib_guids: [\"0x0002c90300a1b001\", \"0x0002c90300a1b002\"]}\n",
        "ib.yaml",
        &DriverSet::builtin(),
    )
    .unwrap()
    .topology;
    let p = plan_on(&t, "cn[001-002]", None);
    for view in [View::Full, View::Job] {
        for plan in [None, Some(&p)] {
            let svg = render::svg_view(&t, plan, view);
            check_xml(&svg);
            assert!(svg.contains("ib-cluster: "));
            let dot = render::dot_view(&t, plan, view);
            assert!(dot.starts_with("graph \"ib-cluster\" {") && dot.ends_with("}\n"));
        }
    }
}
