//! A self-contained SVG picture of a [`Scene`]: the fabric (or a job's part of it) drawn
//! top-down with the core at the top, the job's subgraph in red. No Graphviz needed.
//!
//! Every switch, link, node box and gateway carries a `<title>` (the hover text of browsers and
//! SVG viewers) with what the picture cannot print: addresses, both port names of a link, its
//! cost and state, every node. The job's links have their port names and cost written on them;
//! those labels are placed greedily where they overlap neither boxes nor each other.

use super::layout::{
    below, layout, Layout, BOX_H, BOX_W, GW_PITCH, LINE_H, MARGIN, NODES_GAP, NODES_PAD,
};
use super::scene::{Drawn, Scene};
use std::fmt::Write;

const RED: &str = "#d62728";
const GREY: &str = "#9aa3ad";
/// Above this many links, links outside the job are drawn faint so the structure shows.
const FAINT_ABOVE: usize = 150;
/// Characters of a hostlist that fit in a node box.
const HOSTLIST_CHARS: usize = 20;

pub fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// An axis-aligned rectangle: x, y (top left), width, height.
#[derive(Clone, Copy)]
struct Rect(f64, f64, f64, f64);

impl Rect {
    fn overlaps(&self, o: &Rect) -> bool {
        self.0 < o.0 + o.2 && o.0 < self.0 + self.2 && self.1 < o.1 + o.3 && o.1 < self.1 + self.3
    }
}

/// The path a link takes: a straight line, or an arc over the boxes of one row.
#[derive(Clone, Copy)]
enum Path {
    Line((f64, f64), (f64, f64)),
    Arc((f64, f64), (f64, f64), (f64, f64)),
}

impl Path {
    fn at(&self, t: f64) -> (f64, f64) {
        match *self {
            Path::Line(p, q) => (p.0 + (q.0 - p.0) * t, p.1 + (q.1 - p.1) * t),
            Path::Arc(p, c, q) => {
                let u = 1.0 - t;
                (
                    u * u * p.0 + 2.0 * u * t * c.0 + t * t * q.0,
                    u * u * p.1 + 2.0 * u * t * c.1 + t * t * q.1,
                )
            }
        }
    }

    /// The fraction of the path at which it leaves the box it starts in.
    fn edge(&self) -> f64 {
        match *self {
            Path::Line(p, q) => {
                let (dx, dy) = ((q.0 - p.0).abs(), (q.1 - p.1).abs());
                let tx = if dx > 0.0 { BOX_W / 2.0 / dx } else { 1.0 };
                let ty = if dy > 0.0 { BOX_H / 2.0 / dy } else { 1.0 };
                tx.min(ty).min(0.5)
            }
            Path::Arc(..) => 0.0,
        }
    }

    /// Where a label near the start may go first: just outside the box.
    fn leaves_box(&self) -> f64 {
        match *self {
            Path::Line(p, q) => {
                let len = (q.0 - p.0).hypot(q.1 - p.1).max(1.0);
                self.edge() + 12.0 / len
            }
            Path::Arc(..) => 0.1,
        }
    }
}

/// What one picture draws, and where its printed labels already are.
struct Canvas<'s, 'a> {
    scene: &'s Scene<'a>,
    lay: Layout,
    out: String,
    /// Words of boxes, written after the job's links.
    late: String,
    taken: Vec<Rect>,
    /// Per link of the topology: how far it is drawn beside its parallel links.
    offset: Vec<f64>,
}

/// The SVG of a scene.
pub fn render(scene: &Scene) -> String {
    let title = scene.title();
    let legend = legend(scene);
    let caption = scene.caption();
    let text_w = [
        title.chars().count() as f64 * 10.5,
        legend.chars().count() as f64 * 6.3,
        caption
            .as_ref()
            .map_or(0.0, |c| c.chars().count() as f64 * 6.3),
    ]
    .into_iter()
    .fold(480.0, f64::max);
    // Room for the title lines, and for arcs over the top row if it has links within itself.
    let top = scene.layers - 1;
    let arcs = scene
        .links
        .iter()
        .any(|d| scene.layer[d.a] == top && scene.layer[d.b] == top);
    let header =
        MARGIN + 30.0 + if caption.is_some() { 18.0 } else { 0.0 } + if arcs { 56.0 } else { 30.0 };
    let lay = layout(scene, header, text_w + 2.0 * MARGIN);
    let mut c = Canvas {
        scene,
        lay,
        out: String::new(),
        late: String::new(),
        taken: Vec::new(),
        offset: offsets(scene),
    };
    c.header(&title, &legend, caption.as_deref());
    c.obstacles();
    for &(x, y, w, h) in &c.lay.panels {
        let _ = writeln!(
            c.out,
            r##"<rect x="{x:.1}" y="{y:.1}" width="{w:.1}" height="{h:.1}" rx="10" fill="#f6f8fb" stroke="#e1e6ee"/>"##
        );
    }
    let faint = scene.links.len() > FAINT_ABOVE;
    for &d in scene.links.iter().filter(|d| !scene.hot_link[d.i]) {
        c.link(d, faint);
    }
    for s in (0..scene.t.switches.len()).filter(|&s| scene.shown[s]) {
        c.switch(s);
        c.nodes(s);
    }
    c.gateways();
    // The job's links over the boxes, from edge to edge: one that passes a box is seen to
    // pass it, not to end there.
    for &d in scene.links.iter().filter(|d| scene.hot_link[d.i]) {
        c.link(d, false);
    }
    let late = std::mem::take(&mut c.late);
    c.out.push_str(&late);
    c.link_labels();
    c.out.push_str("</svg>\n");
    c.out
}

fn legend(scene: &Scene) -> String {
    let mut parts = Vec::new();
    if scene.plan.is_some() {
        parts.push("red: the job's switches, links, ports and nodes");
    }
    if scene.left_out.is_some() {
        parts.push("grey: neighbours");
    }
    if !scene.gateways.is_empty() {
        parts.push("⬡ gateway");
    }
    parts.extend(["dashed: link down", "thick: LAG"]);
    parts.push("hover for ports, costs, addresses, nodes");
    parts.join(" · ")
}

impl Canvas<'_, '_> {
    fn header(&mut self, title: &str, legend: &str, caption: Option<&str>) {
        let (w, h) = (self.lay.width, self.lay.height);
        let o = &mut self.out;
        let _ = writeln!(
            o,
            r#"<svg xmlns="http://www.w3.org/2000/svg" width="{w:.0}" height="{h:.0}" viewBox="0 0 {w:.0} {h:.0}" font-family="Helvetica, Arial, sans-serif">"#
        );
        let _ = writeln!(o, r##"<rect width="100%" height="100%" fill="#ffffff"/>"##);
        let _ = writeln!(
            o,
            r#"<text x="{MARGIN}" y="{MARGIN}" font-size="18" font-weight="bold">{}</text>"#,
            esc(title)
        );
        let _ = writeln!(
            o,
            r##"<text x="{MARGIN}" y="{:.0}" font-size="12" fill="#555">{}</text>"##,
            MARGIN + 20.0,
            esc(legend)
        );
        if let Some(c) = caption {
            let _ = writeln!(
                o,
                r##"<text x="{MARGIN}" y="{:.0}" font-size="12" fill="#333" font-style="italic">{}</text>"##,
                MARGIN + 38.0,
                esc(c)
            );
        }
    }

    /// Boxes that link labels must not cover.
    fn obstacles(&mut self) {
        let sc = self.scene;
        for s in (0..sc.t.switches.len()).filter(|&s| sc.shown[s]) {
            let (x, y) = self.lay.xy[s];
            let h = BOX_H + below(sc, s);
            self.taken
                .push(Rect(x - BOX_W / 2.0 - 4.0, y - BOX_H / 2.0, BOX_W + 8.0, h));
        }
    }

    /// The path of a drawn link; parallel links between the same two switches are drawn side by
    /// side (`offset` pixels apart), not on top of each other.
    fn path(&self, Drawn { i, a, b }: Drawn) -> Path {
        let ((x1, y1), (x2, y2)) = (self.lay.xy[a], self.lay.xy[b]);
        // The sideways direction is taken from the lower switch index, so parallel links written
        // in opposite directions still separate.
        let off = if a <= b {
            self.offset[i]
        } else {
            -self.offset[i]
        };
        if self.lay.row[a] == self.lay.row[b] {
            // Same row: an arc above the boxes, so it does not run behind the boxes between.
            let ya = y1 - BOX_H / 2.0;
            let lift = (28.0 + (x2 - x1).abs() * 0.08).min(44.0) + off;
            Path::Arc((x1, ya), ((x1 + x2) / 2.0, ya - lift), (x2, ya))
        } else {
            let len = (x2 - x1).hypot(y2 - y1).max(1.0);
            let (nx, ny) = (-(y2 - y1) / len * off, (x2 - x1) / len * off);
            Path::Line((x1 + nx, y1 + ny), (x2 + nx, y2 + ny))
        }
    }

    fn link(&mut self, d: Drawn, faint: bool) {
        let sc = self.scene;
        let Drawn { i, a, b } = d;
        let l = &sc.t.links[i];
        let hot = sc.hot_link[i];
        let (color, w) = if hot {
            (RED, if l.lag { 5.0 } else { 3.5 })
        } else if sc.context[a] || sc.context[b] {
            ("#c2c7cd", if l.lag { 3.0 } else { 1.2 })
        } else {
            (GREY, if l.lag { 3.0 } else { 1.2 })
        };
        let mut extra = String::new();
        if !l.up {
            extra.push_str(r#" stroke-dasharray="6 4""#);
        }
        if faint && !hot {
            extra.push_str(r#" stroke-opacity="0.45""#);
        }
        let d = match self.path(d) {
            Path::Line(p, q) if hot => {
                let (path, back) = (Path::Line(p, q), Path::Line(q, p));
                let (p, q) = (path.at(path.edge()), back.at(back.edge()));
                format!("M {:.1} {:.1} L {:.1} {:.1}", p.0, p.1, q.0, q.1)
            }
            Path::Line(p, q) => format!("M {:.1} {:.1} L {:.1} {:.1}", p.0, p.1, q.0, q.1),
            Path::Arc(p, c, q) => format!(
                "M {:.1} {:.1} Q {:.1} {:.1} {:.1} {:.1}",
                p.0, p.1, c.0, c.1, q.0, q.1
            ),
        };
        let _ = writeln!(
            self.out,
            r#"<g><title>{}</title><path d="{d}" fill="none" stroke="{color}" stroke-width="{w}"{extra}/></g>"#,
            esc(&link_title(sc, i))
        );
    }

    /// Port names at both ends of each of the job's links, its cost in the middle.
    fn link_labels(&mut self) {
        let sc = self.scene;
        for &d in sc.links.iter().filter(|d| sc.hot_link[d.i]) {
            let i = d.i;
            let l = &sc.t.links[i];
            let path = self.path(d);
            let back = match path {
                Path::Line(p, q) => Path::Line(q, p),
                Path::Arc(p, c, q) => Path::Arc(q, c, p),
            };
            let title = esc(&link_title(sc, i));
            for (p, port) in [(path, &l.a.port), (back, &l.b.port)] {
                // Just outside the box, then further along, up to the middle.
                let t0 = p.leaves_box();
                let mut cands: Vec<(f64, f64)> = (0..8)
                    .map(|k| t0 + k as f64 * 0.05)
                    .filter(|t| *t < 0.48)
                    .map(|t| p.at(t))
                    .collect();
                if cands.is_empty() {
                    cands.push(p.at(0.35));
                }
                self.label(&cands, port, 10.0, RED, &title);
            }
            let mid: Vec<(f64, f64)> = [0.5, 0.42, 0.58, 0.34, 0.66]
                .iter()
                .map(|&t| path.at(t))
                .collect();
            self.label(&mid, &format!("cost {}", l.cost), 9.0, "#8c1c1d", &title);
        }
    }

    /// Writes `text` at the first candidate point where it overlaps nothing printed yet (the
    /// first candidate if none is free).
    fn label(&mut self, cands: &[(f64, f64)], text: &str, size: f64, color: &str, title: &str) {
        let w = text.chars().count() as f64 * size * 0.56 + 4.0;
        let rect = |&(x, y): &(f64, f64)| Rect(x - w / 2.0, y - size * 0.6, w, size * 1.2);
        let Some(&(x, y)) = cands
            .iter()
            .find(|p| !self.taken.iter().any(|r| r.overlaps(&rect(p))))
            .or(cands.first())
        else {
            return;
        };
        let r = rect(&(x, y));
        self.taken.push(r);
        let _ = writeln!(
            self.out,
            r##"<g><title>{title}</title><rect x="{:.1}" y="{:.1}" width="{:.1}" height="{:.1}" rx="3" fill="#ffffff" fill-opacity="0.9"/><text x="{x:.1}" y="{:.1}" font-size="{size}" text-anchor="middle" fill="{color}">{}</text></g>"##,
            r.0,
            r.1,
            r.2,
            r.3,
            y + size * 0.35,
            esc(text)
        );
    }

    /// Text with a halo of the colour beneath, kept for after the job's links so a link that
    /// crosses a box never hides its words.
    fn text(&mut self, (x, y): (f64, f64), style: &str, halo: &str, words: &str) {
        let _ = write!(
            self.late,
            r#"<text x="{x:.1}" y="{y:.1}" text-anchor="middle" stroke="{halo}" stroke-width="3" stroke-linejoin="round" paint-order="stroke" {style}>{}</text>"#,
            esc(words)
        );
    }

    fn switch(&mut self, s: usize) {
        let sc = self.scene;
        let sw = &sc.t.switches[s];
        let (x, y) = self.lay.xy[s];
        let (fill, stroke, width, ink) = if sc.hot[s] {
            ("#ffd8d8", RED, 2.5, "#111")
        } else if sc.context[s] {
            ("#f4f5f7", "#b8bec6", 1.0, "#8a9099")
        } else {
            ("#eef2fb", "#5b6b7f", 1.0, "#111")
        };
        let (all, job) = sc.hostlists(s);
        let mut tip = format!(
            "switch {}\ndriver {}\naddress {}",
            sw.name, sw.driver, sw.address
        );
        if !sc.by_switch[s].is_empty() {
            let _ = write!(tip, "\nnodes {all} ({})", sc.by_switch[s].len());
        }
        if let Some(j) = job {
            let _ = write!(tip, "\njob's nodes {j}");
        }
        if sc.hot[s] {
            tip.push_str("\nin the job's subgraph");
        }
        let tip = esc(&tip);
        let _ = writeln!(
            self.out,
            r#"<g data-switch="{}"><title>{tip}</title><rect x="{:.1}" y="{:.1}" width="{BOX_W}" height="{BOX_H}" rx="6" fill="{fill}" stroke="{stroke}" stroke-width="{width}"/></g>"#,
            esc(&sw.name),
            x - BOX_W / 2.0,
            y - BOX_H / 2.0,
        );
        let _ = write!(self.late, "<g><title>{tip}</title>");
        let bold = format!(r#"font-size="13" font-weight="bold" fill="{ink}""#);
        self.text((x, y - 2.0), &bold, fill, &sw.name);
        self.text(
            (x, y + 12.0),
            r##"font-size="10" fill="#666""##,
            fill,
            &sw.driver,
        );
        self.late.push_str("</g>\n");
    }

    /// The switch's nodes folded into one box under it, the job's among them in red.
    fn nodes(&mut self, s: usize) {
        let sc = self.scene;
        if sc.by_switch[s].is_empty() {
            return;
        }
        let (x, y) = self.lay.xy[s];
        let (all, job) = sc.hostlists(s);
        let lines = if job.is_some() { 2.0 } else { 1.0 };
        let top = y + BOX_H / 2.0 + NODES_GAP;
        let ink = if sc.context[s] { "#8a9099" } else { "#333" };
        let mut tip = format!(
            "{} node(s) on {}: {all}",
            sc.by_switch[s].len(),
            sc.t.switches[s].name
        );
        if let Some(j) = &job {
            let _ = write!(tip, "\njob's nodes: {j}");
        }
        let tip = esc(&tip);
        let _ = writeln!(
            self.out,
            r##"<g><title>{tip}</title><rect x="{:.1}" y="{top:.1}" width="{BOX_W}" height="{:.1}" rx="4" fill="#fafafa" stroke="#c9ced6"/></g>"##,
            x - BOX_W / 2.0,
            lines * LINE_H + NODES_PAD,
        );
        let _ = write!(self.late, "<g><title>{tip}</title>");
        let base = top + NODES_PAD / 2.0 + 11.0;
        let plain = format!(r#"font-size="11" fill="{ink}""#);
        self.text((x, base), &plain, "#fafafa", &shorten(&all));
        if let Some(j) = job {
            let red = format!(r#"font-size="11" font-weight="bold" fill="{RED}""#);
            self.text(
                (x, base + LINE_H),
                &red,
                "#fafafa",
                &format!("job: {}", shorten(&j)),
            );
        }
        self.late.push_str("</g>\n");
    }

    /// Gateways as hexagons under their switch's node box, wired to the switch's side.
    fn gateways(&mut self) {
        let sc = self.scene;
        for s in (0..sc.t.switches.len()).filter(|&s| sc.shown[s]) {
            let name = &sc.t.switches[s].name;
            let mine: Vec<usize> = sc
                .gateways
                .iter()
                .copied()
                .filter(|&g| &sc.t.gateways[g].ethernet_port.switch == name)
                .collect();
            let gws = mine.len() as f64;
            let top = self.lay.xy[s].1 + BOX_H / 2.0 + below(sc, s) - gws * GW_PITCH;
            for (k, g) in mine.into_iter().enumerate() {
                self.gateway(s, g, top + (k as f64 + 0.5) * GW_PITCH);
            }
        }
    }

    fn gateway(&mut self, s: usize, g: usize, gy: f64) {
        let sc = self.scene;
        let gw = &sc.t.gateways[g];
        let (x, y) = self.lay.xy[s];
        let used = sc.gateway_used(g);
        let (stroke, fill, width) = if used {
            (RED, "#ffd8d8", 2.5)
        } else {
            ("#5b6b7f", "#f3eefb", 1.0)
        };
        let (hw, hh) = (BOX_W / 2.0 - 10.0, 15.0);
        let side = x + BOX_W / 2.0 + 9.0;
        let mut tip = format!(
            "gateway {}\ndriver {}\naddress {}\nethernet {}\ninfiniband {}",
            gw.name, gw.driver, gw.address, gw.ethernet_port, gw.ib_guid
        );
        if used {
            tip.push_str("\nbridges the job's PKey to its VLAN");
        }
        let pts: Vec<String> = [
            (x - hw, gy),
            (x - hw + 10.0, gy - hh),
            (x + hw - 10.0, gy - hh),
            (x + hw, gy),
            (x + hw - 10.0, gy + hh),
            (x - hw + 10.0, gy + hh),
        ]
        .iter()
        .map(|(px, py)| format!("{px:.1},{py:.1}"))
        .collect();
        let _ = writeln!(
            self.out,
            r##"<g data-gateway="{}"><title>{}</title><path d="M {:.1} {y:.1} H {side:.1} V {gy:.1} H {:.1}" fill="none" stroke="{stroke}" stroke-width="{width}"/><polygon points="{}" fill="{fill}" stroke="{stroke}" stroke-width="{width}"/><text x="{x:.1}" y="{:.1}" font-size="11" text-anchor="middle" font-weight="bold">{}</text><text x="{x:.1}" y="{:.1}" font-size="9" text-anchor="middle" fill="#555">{}</text></g>"##,
            esc(&gw.name),
            esc(&tip),
            x + BOX_W / 2.0,
            x + hw,
            pts.join(" "),
            gy - 2.0,
            esc(&gw.name),
            gy + 10.0,
            esc(&gw.ethernet_port.port)
        );
    }
}

/// Sideways offsets of parallel links: 0 for a link alone, ±3, ±6 ... px for several.
fn offsets(scene: &Scene) -> Vec<f64> {
    let mut pairs: std::collections::HashMap<(usize, usize), Vec<usize>> = Default::default();
    for &Drawn { i, a, b } in &scene.links {
        pairs.entry((a.min(b), a.max(b))).or_default().push(i);
    }
    let mut offset = vec![0.0; scene.t.links.len()];
    for links in pairs.values() {
        let mid = (links.len() - 1) as f64 / 2.0;
        for (k, &i) in links.iter().enumerate() {
            offset[i] = (k as f64 - mid) * 6.0;
        }
    }
    offset
}

/// The hover text of a link: both ends, cost, state.
fn link_title(sc: &Scene, i: usize) -> String {
    let l = &sc.t.links[i];
    let mut t = format!("{} -- {}\ncost {}", l.a, l.b, l.cost);
    if l.lag {
        t.push_str(", lag");
    }
    if !l.up {
        t.push_str(", down");
    }
    if sc.hot_link[i] {
        if let Some(v) = sc.plan.and_then(|p| p.vlan) {
            let _ = write!(t, "\ncarries the job's VLAN {v}");
        }
    }
    t
}

/// A hostlist cut to fit a node box (the whole list is in the hover text).
fn shorten(s: &str) -> String {
    if s.chars().count() <= HOSTLIST_CHARS {
        return s.to_string();
    }
    let head: String = s.chars().take(HOSTLIST_CHARS - 1).collect();
    format!("{head}…")
}
