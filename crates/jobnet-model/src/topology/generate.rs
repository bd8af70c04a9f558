//! Synthetic 3-tier fat trees (leaf → aggregation → core) for benchmarks and scale tests.
//!
//! Leaves carry `hosts_per_leaf` nodes each; leaves are grouped into pods, every leaf of a pod is
//! wired to every aggregation switch of that pod, and aggregation switch j of each pod is wired
//! to core switches `j*cores_per_agg ..`. Many equal-cost paths exist, so the Steiner choice and
//! its tie-breaking are exercised. The output is ordinary topology YAML.

use std::fmt::Write;

/// Shape of a generated fabric.
#[derive(Clone, Debug)]
pub struct FatTreeSpec {
    pub nodes: usize,
    pub hosts_per_leaf: usize,
    pub leaves_per_pod: usize,
    pub aggs_per_pod: usize,
    pub cores_per_agg: usize,
    /// Add an infiniband section and a port GUID per node.
    pub infiniband: bool,
}

impl Default for FatTreeSpec {
    fn default() -> Self {
        FatTreeSpec {
            nodes: 10_000,
            hosts_per_leaf: 32,
            leaves_per_pod: 8,
            aggs_per_pod: 4,
            cores_per_agg: 2,
            infiniband: true,
        }
    }
}

/// A fat-tree shape the generator refuses.
#[derive(Debug, thiserror::Error)]
pub enum ShapeError {
    #[error("{field} {value} is out of range 1..{max}")]
    OutOfRange {
        /// The [`FatTreeSpec`] field (`hosts_per_leaf`).
        field: &'static str,
        value: usize,
        max: usize,
    },
    #[error("this shape needs {links} links (more than 10000000); use fewer aggregation or core switches")]
    TooManyLinks { links: u128 },
}

impl FatTreeSpec {
    /// Refuses shapes the generator cannot honour, instead of bending them.
    pub fn check(&self) -> Result<(), ShapeError> {
        for (field, v, max) in [
            // The largest file a topology may be: what the benchmarks validate.
            ("nodes", self.nodes, crate::base::limits::NODES),
            ("hosts_per_leaf", self.hosts_per_leaf, 4096),
            ("leaves_per_pod", self.leaves_per_pod, 4096),
            ("aggs_per_pod", self.aggs_per_pod, 1024),
            ("cores_per_agg", self.cores_per_agg, 1024),
        ] {
            if v == 0 || v > max {
                return Err(ShapeError::OutOfRange {
                    field,
                    value: v,
                    max,
                });
            }
        }
        let leaves = self.nodes.div_ceil(self.hosts_per_leaf);
        let pods = leaves.div_ceil(self.leaves_per_pod);
        let links = leaves as u128 * self.aggs_per_pod as u128
            + (pods * self.aggs_per_pod) as u128 * self.cores_per_agg as u128;
        if links > 10_000_000 {
            return Err(ShapeError::TooManyLinks { links });
        }
        Ok(())
    }
}

/// Topology YAML for the spec (call [`FatTreeSpec::check`] first).
pub fn fat_tree(spec: &FatTreeSpec) -> String {
    let hpl = spec.hosts_per_leaf.max(1);
    let leaves = spec.nodes.div_ceil(hpl).max(1);
    let lpp = spec.leaves_per_pod.max(1);
    let pods = leaves.div_ceil(lpp);
    let app = spec.aggs_per_pod.max(1);
    let cores = app * spec.cores_per_agg.max(1);
    let w = spec.nodes.max(1).to_string().len().max(4);
    let mut y = String::with_capacity(spec.nodes * 40 + leaves * 400);
    let _ = writeln!(y, "# Generated: jobnet topology generate fat-tree --nodes {} ({leaves} leaves, {pods} pods, {} aggregation, {cores} core switches)", spec.nodes, pods * app);
    let _ = writeln!(
        y,
        "name: fat-tree-{}\nethernet:\n  vlan_pool: \"2-4000\"\n  node_port_mode: tagged",
        spec.nodes
    );
    if spec.infiniband {
        let _ = writeln!(y, "infiniband:\n  pkey_pool: \"0x1000-0x7ffe\"\n  partitions_conf: /etc/opensm/partitions.conf\n  reload: {{pidfile: /run/opensm.pid}}");
    }
    y.push_str("switches:\n");
    let sw = |y: &mut String, name: String| {
        let _ = writeln!(y, "  - {{name: {name}, driver: arista-eos, address: {name}.fabric.example, credentials: fabric}}");
    };
    for c in 0..cores {
        sw(&mut y, format!("core{:02}", c + 1));
    }
    for p in 0..pods {
        for a in 0..app {
            sw(&mut y, format!("agg{:03}-{}", p + 1, a + 1));
        }
    }
    for l in 0..leaves {
        sw(&mut y, format!("leaf{:04}", l + 1));
    }
    y.push_str("links:\n");
    for l in 0..leaves {
        let p = l / lpp;
        for a in 0..app {
            let _ = writeln!(
                y,
                "  - {{a: leaf{:04}:Ethernet{}, b: agg{:03}-{}:Ethernet{}}}",
                l + 1,
                hpl + 1 + a,
                p + 1,
                a + 1,
                l % lpp + 1
            );
        }
    }
    for p in 0..pods {
        for a in 0..app {
            for k in 0..spec.cores_per_agg.max(1) {
                let c = a * spec.cores_per_agg.max(1) + k;
                let _ = writeln!(
                    y,
                    "  - {{a: agg{:03}-{}:Ethernet{}, b: core{:02}:Ethernet{}}}",
                    p + 1,
                    a + 1,
                    lpp + 1 + k,
                    c + 1,
                    p + 1
                );
            }
        }
    }
    write_nodes(&mut y, spec, leaves, hpl, w);
    y
}

/// The `nodes:` section: one hostlist entry per leaf, numbers zero-padded to width `w`.
fn write_nodes(y: &mut String, spec: &FatTreeSpec, leaves: usize, hpl: usize, w: usize) {
    y.push_str("nodes:\n");
    for l in 0..leaves {
        let first = l * hpl + 1;
        let last = ((l + 1) * hpl).min(spec.nodes.max(1));
        let _ = write!(
            y,
            "  - {{name: \"cn[{first:0w$}-{last:0w$}]\", port: \"leaf{:04}:Ethernet[1-{}]\"",
            l + 1,
            last - first + 1
        );
        if spec.infiniband {
            y.push_str(", ib_guids: [");
            for n in first..=last {
                let sep = if n == last { "" } else { ", " };
                let _ = write!(y, "\"0x0002c903{n:08x}\"{sep}");
            }
            y.push(']');
        }
        y.push_str("}\n");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Large generated fabrics are read by the YAML reader's quick path, to the same tree as
    /// saphyr-parser reads them.
    #[test]
    fn generated_files_take_the_quick_yaml_path() {
        for infiniband in [true, false] {
            let text = fat_tree(&FatTreeSpec {
                nodes: 300,
                infiniband,
                ..FatTreeSpec::default()
            });
            assert!(crate::base::yaml::quick_reads_alike(&text), "{text}");
        }
    }
}
