//! Where the SVG puts every switch: layers top-down (core at the top), each layer ordered to
//! untangle its links, and a fabric too wide for one readable row folded into several.
//!
//! The top layer (the core) is one row across the picture. Below it the fabric falls apart into
//! blocks, the connected pieces left when the top layer is taken away: the pods of a fat tree,
//! single leaves under a spine pair, a leaf pair joined by a shortcut. Each block keeps its own
//! layers (aggregation over leaves), its bottom layer in natural name order (leaf9 before
//! leaf10), every upper layer ordered by the mean position of its lower neighbours. Blocks are
//! packed side by side into rows of at most `cols` columns; so a pod's links stay inside its
//! block and only the core's links cross the picture. When the fabric fits into
//! [`WRAP_ABOVE`] columns it is one row of blocks; otherwise `cols` is chosen so the picture
//! comes closest to a 3:2 landscape. A block (or the top layer) wider than `cols` wraps its
//! layers into balanced rows.

use super::scene::{natural_cmp, Drawn, Scene};

pub const BOX_W: f64 = 128.0;
pub const BOX_H: f64 = 38.0;
pub const GAP_X: f64 = 24.0;
pub const MARGIN: f64 = 40.0;
/// Height of one line of a node box, and its padding.
pub const LINE_H: f64 = 14.0;
pub const NODES_PAD: f64 = 8.0;
/// Gap between a switch box and its node box.
pub const NODES_GAP: f64 = 6.0;
/// Vertical room per gateway drawn under a switch.
pub const GW_PITCH: f64 = 40.0;
/// Vertical gaps: between the rows of one wrapped layer, between layers, between block rows.
const ROW_GAP: f64 = 26.0;
const LAYER_GAP: f64 = 80.0;
const BLOCK_GAP: f64 = 56.0;
/// Room between a block's panel and its boxes.
const PANEL_PAD: f64 = 12.0;
/// Fabrics up to this many columns wide are never folded.
pub const WRAP_ABOVE: usize = 16;
/// The aspect ratio (width / height) folding aims for.
const ASPECT: f64 = 1.5;

/// Coordinates of the picture.
pub struct Layout {
    /// Centre of each shown switch's box.
    pub xy: Vec<(f64, f64)>,
    /// Row of each shown switch, counted from the top.
    pub row: Vec<usize>,
    pub width: f64,
    pub height: f64,
    /// Backgrounds (x, y, width, height) grouping the switches of each block (a pod) when the
    /// fabric is folded into several rows of blocks.
    pub panels: Vec<(f64, f64, f64, f64)>,
}

/// Room below a switch box: its node box and its gateways.
pub fn below(scene: &Scene, s: usize) -> f64 {
    let mut h = 0.0;
    if !scene.by_switch[s].is_empty() {
        let lines = if scene.hostlists(s).1.is_some() {
            2.0
        } else {
            1.0
        };
        h += NODES_GAP + lines * LINE_H + NODES_PAD;
    }
    let gws = scene
        .gateways
        .iter()
        .filter(|&&g| scene.t.gateways[g].ethernet_port.switch == scene.t.switches[s].name)
        .count();
    h + gws as f64 * GW_PITCH
}

/// One connected piece of the fabric below the top layer: its switches per layer (index 0 =
/// bottom), each layer in drawing order.
struct Block {
    layers: Vec<Vec<usize>>,
}

impl Block {
    fn width(&self) -> usize {
        self.layers.iter().map(Vec::len).max().unwrap_or(1).max(1)
    }
}

/// What [`place`] arranges: the top layer and the blocks under it.
struct Parts {
    top: Vec<usize>,
    blocks: Vec<Block>,
    /// The neighbours whose positions decide a switch's place: over the job's links if it has
    /// any (so the job's path runs straight), over all its drawn links otherwise.
    pull: Vec<Vec<usize>>,
}

/// Lays the scene out below a header of `header` pixels, at least `min_width` wide.
pub fn layout(scene: &Scene, header: f64, min_width: f64) -> Layout {
    let parts = parts(scene);
    let one_row = parts
        .top
        .len()
        .max(parts.blocks.iter().map(Block::width).sum())
        .max(1);
    if one_row <= WRAP_ABOVE {
        return place(scene, &parts, one_row, header, min_width);
    }
    // Whole blocks per row when blocks are narrow (pods side by side), any width otherwise.
    let widest = parts.blocks.iter().map(Block::width).max().unwrap_or(1);
    let lo = if widest > WRAP_ABOVE {
        WRAP_ABOVE / 2
    } else {
        widest.max(WRAP_ABOVE / 2).min(one_row)
    };
    let candidates: Vec<usize> = (lo..=one_row)
        .filter(|&c| widest > WRAP_ABOVE || c % widest == 0 || c == one_row)
        .collect();
    let off = |l: &Layout| (l.width / l.height / ASPECT).ln().abs();
    candidates
        .into_iter()
        .map(|cols| place(scene, &parts, cols, header, min_width))
        .min_by(|a, b| off(a).total_cmp(&off(b)))
        .expect("one_row is a candidate")
}

/// The top layer and the blocks, each block ordered.
fn parts(scene: &Scene) -> Parts {
    let t = scene.t;
    let n = t.switches.len();
    let mut adj = vec![Vec::new(); n];
    let mut hot_adj = vec![Vec::new(); n];
    for &Drawn { i, a, b } in &scene.links {
        adj[a].push(b);
        adj[b].push(a);
        if scene.hot_link[i] {
            hot_adj[a].push(b);
            hot_adj[b].push(a);
        }
    }
    let pull: Vec<Vec<usize>> = (0..n)
        .map(|s| {
            if hot_adj[s].is_empty() {
                adj[s].clone()
            } else {
                hot_adj[s].clone()
            }
        })
        .collect();
    let top_layer = scene.layers - 1;
    let shown: Vec<usize> = (0..n).filter(|&s| scene.shown[s]).collect();
    let top: Vec<usize> = shown
        .iter()
        .copied()
        .filter(|&s| scene.layer[s] == top_layer)
        .collect();
    let mut seen = vec![false; n];
    let mut blocks = Vec::new();
    for &s in shown.iter().filter(|&&s| scene.layer[s] < top_layer) {
        if seen[s] {
            continue;
        }
        let mut members = vec![s];
        seen[s] = true;
        let mut i = 0;
        while i < members.len() {
            for &o in &adj[members[i]] {
                if scene.layer[o] < top_layer && !seen[o] {
                    seen[o] = true;
                    members.push(o);
                }
            }
            i += 1;
        }
        blocks.push(block(scene, &pull, &members, top_layer));
    }
    // Blocks hanging from the top layer alone first (right under it), then by name.
    let first = |b: &Block| {
        b.layers
            .iter()
            .find(|l| !l.is_empty())
            .map(|l| t.switches[l[0]].name.clone())
            .unwrap_or_default()
    };
    blocks.sort_by(|a, b| {
        (!a.layers[0].is_empty())
            .cmp(&!b.layers[0].is_empty())
            .then_with(|| natural_cmp(&first(a), &first(b)))
    });
    Parts { top, blocks, pull }
}

/// Orders one block: the bottom by name, every layer above by the mean position of the lower
/// neighbours that pull it.
fn block(scene: &Scene, pull: &[Vec<usize>], members: &[usize], layers: usize) -> Block {
    let mut by_layer: Vec<Vec<usize>> = vec![Vec::new(); layers];
    for &s in members {
        by_layer[scene.layer[s]].push(s);
    }
    let mut pos = std::collections::HashMap::new();
    for layer in by_layer.iter_mut() {
        let key = |s: usize| {
            let lower: Vec<f64> = pull[s].iter().filter_map(|o| pos.get(o).copied()).collect();
            if lower.is_empty() {
                f64::MAX
            } else {
                lower.iter().sum::<f64>() / lower.len() as f64
            }
        };
        *layer = arrange(scene, layer.iter().map(|&s| (key(s), s)).collect());
        let len = layer.len() as f64;
        for (i, &s) in layer.iter().enumerate() {
            pos.insert(s, (i as f64 + 0.5) / len);
        }
    }
    Block { layers: by_layer }
}

/// Rows of blocks, each at most `cols` columns wide (a wider block gets a row of its own).
fn pack(blocks: &[Block], cols: usize) -> Vec<Vec<usize>> {
    let mut rows: Vec<Vec<usize>> = Vec::new();
    let mut used = cols;
    for (i, b) in blocks.iter().enumerate() {
        let w = b.width().min(cols);
        if used + w > cols {
            rows.push(Vec::new());
            used = 0;
        }
        rows.last_mut().expect("pushed").push(i);
        used += w;
    }
    rows
}

/// Places layers into rows, counting the rows from the top.
struct Rows<'l> {
    lay: &'l mut Layout,
    cols: usize,
    /// The index of the next row.
    row: usize,
}

impl Rows<'_> {
    /// Places one layer's switches in balanced rows of at most `cols`, spread over
    /// `x0..x0+span`, the first row's top at `y`; returns how many rows it took.
    fn layer(&mut self, members: &[usize], x0: f64, span: f64, y: f64, pitch: f64) -> usize {
        if members.is_empty() {
            return 0;
        }
        let rows = members.len().div_ceil(self.cols);
        let per_row = members.len().div_ceil(rows);
        let mut used = 0;
        for (k, chunk) in members.chunks(per_row).enumerate() {
            let step = span / chunk.len() as f64;
            let cy = y + k as f64 * (pitch + ROW_GAP) + BOX_H / 2.0;
            for (i, &s) in chunk.iter().enumerate() {
                self.lay.xy[s] = (x0 + step * (i as f64 + 0.5), cy);
                self.lay.row[s] = self.row + k;
            }
            used = k + 1;
        }
        used
    }
}

/// Height of a row of these switches: the box and the tallest content under one.
fn pitch(scene: &Scene, members: &[usize]) -> f64 {
    BOX_H + members.iter().map(|&s| below(scene, s)).fold(0.0, f64::max)
}

/// The height of `rows` rows of pitch `pitch`.
fn rows_height(rows: usize, pitch: f64) -> f64 {
    rows as f64 * (pitch + ROW_GAP) - ROW_GAP
}

/// The whole layout for `cols` columns.
fn place(scene: &Scene, parts: &Parts, cols: usize, header: f64, min_width: f64) -> Layout {
    let n = scene.t.switches.len();
    let width = (cols as f64 * (BOX_W + GAP_X) + 2.0 * MARGIN).max(min_width);
    let mut lay = Layout {
        xy: vec![(0.0, 0.0); n],
        row: vec![0; n],
        width,
        height: 0.0,
        panels: Vec::new(),
    };
    let top_rows = parts.top.len().div_ceil(cols);
    let top_pitch = pitch(scene, &parts.top);
    let mut rows = Rows {
        lay: &mut lay,
        cols,
        row: top_rows,
    };
    let blocks_top = header + rows_height(top_rows, top_pitch) + LAYER_GAP;
    let bottom = place_blocks(scene, parts, &mut rows, blocks_top);
    let top = order_top(scene, parts, rows.lay);
    rows.row = 0;
    let usable = width - 2.0 * MARGIN;
    rows.layer(&top, MARGIN, usable, header, top_pitch);
    lay.height = match bottom {
        Some(y) => y + MARGIN,
        None => header + rows_height(top_rows, top_pitch) + MARGIN,
    };
    lay
}

/// Places the blocks, packed into rows of blocks, from `y` down; returns the bottom of the
/// last row (`None` without blocks).
fn place_blocks(scene: &Scene, parts: &Parts, rows: &mut Rows, mut y: f64) -> Option<f64> {
    let cols = rows.cols;
    let usable = rows.lay.width - 2.0 * MARGIN;
    let mut bottom = None;
    let packs = pack(&parts.blocks, cols);
    let panels = packs.len() > 1;
    for packed in packs {
        let total: usize = packed
            .iter()
            .map(|&b| parts.blocks[b].width().min(cols))
            .sum();
        let col_w = usable / total.max(cols) as f64;
        let layers = parts.blocks[packed[0]].layers.len();
        let mut bounds: Vec<Option<(f64, f64, f64, f64)>> = vec![None; packed.len()];
        for l in (0..layers).rev() {
            let all: Vec<usize> = packed
                .iter()
                .flat_map(|&b| parts.blocks[b].layers[l].iter().copied())
                .collect();
            if all.is_empty() {
                continue;
            }
            let p = pitch(scene, &all);
            let mut x0 = MARGIN + (usable - total as f64 * col_w) / 2.0;
            let mut used = 0;
            for (k, &b) in packed.iter().enumerate() {
                let blk = &parts.blocks[b];
                let span = blk.width().min(cols) as f64 * col_w;
                let here = rows.layer(&blk.layers[l], x0, span, y, p);
                used = used.max(here);
                if panels && here > 0 && blk.layers.iter().flatten().count() > 1 {
                    bounds[k] = Some(match bounds[k] {
                        None => (x0, y, span, rows_height(here, p)),
                        Some((bx, by, bw, _)) => (bx, by, bw, y + rows_height(here, p) - by),
                    });
                }
                x0 += span;
            }
            rows.row += used;
            bottom = Some(y + rows_height(used, p));
            y += rows_height(used, p) + LAYER_GAP;
        }
        y += BLOCK_GAP - LAYER_GAP;
        rows.lay
            .panels
            .extend(bounds.into_iter().flatten().map(|(x, y, w, h)| {
                let pad = PANEL_PAD;
                (x + GAP_X / 4.0, y - pad, w - GAP_X / 2.0, h + 2.0 * pad)
            }));
    }
    bottom
}

/// The top layer, ordered by the mean x of its neighbours below (already placed).
fn order_top(scene: &Scene, parts: &Parts, lay: &Layout) -> Vec<usize> {
    let key = |s: usize| {
        let xs: Vec<f64> = parts.pull[s]
            .iter()
            .filter(|&&o| scene.layer[o] < scene.layer[s])
            .map(|&o| lay.xy[o].0)
            .collect();
        if xs.is_empty() {
            f64::MAX
        } else {
            xs.iter().sum::<f64>() / xs.len() as f64
        }
    };
    arrange(scene, parts.top.iter().map(|&s| (key(s), s)).collect())
}

/// Switches in the order of their keys (then names). Among three or more switches pulled to the
/// same place the job's go in the middle, nearest to where they are pulled; switches without a
/// key (`f64::MAX`: nothing below, e.g. the bottom layer) keep name order.
fn arrange(scene: &Scene, mut keyed: Vec<(f64, usize)>) -> Vec<usize> {
    let names = |s: usize| scene.t.switches[s].name.as_str();
    keyed.sort_by(|a, b| {
        a.0.total_cmp(&b.0)
            .then_with(|| natural_cmp(names(a.1), names(b.1)))
    });
    let mut out = Vec::with_capacity(keyed.len());
    for run in keyed.chunk_by(|a, b| a.0 == b.0 && a.0 != f64::MAX) {
        let (hot, cold): (Vec<usize>, Vec<usize>) =
            run.iter().map(|k| k.1).partition(|&s| scene.hot[s]);
        // Two have no middle: name order.
        let half = if run.len() < 3 { 0 } else { cold.len() / 2 };
        if half == 0 {
            out.extend(run.iter().map(|k| k.1));
            continue;
        }
        out.extend(&cold[..half]);
        out.extend(hot);
        out.extend(&cold[half..]);
    }
    out
}
