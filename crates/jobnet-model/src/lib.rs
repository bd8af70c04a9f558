//! jobnet's model: what a site's fabric is and what may be done to its devices, with no I/O
//! beyond reading the topology file. [`topology`] loads and checks a topology file and builds the
//! switch graph; [`drivers::profile`] parses the vendor dialects (data in switch-drivers/);
//! [`drivers::ops`] defines the typed device operations that the planner produces, the journal
//! stores and the drivers carry out. It knows no transport, state store or planner (docs/architecture.md).

pub use jobnet_base as base;

pub mod topology;

/// The data half of the drivers: dialect profiles and typed operations. The transports and the
/// CLI driver that carry them out are in the `jobnet-drivers` crate, whose `drivers` module
/// re-exports this one's.
pub mod drivers {
    pub mod ops;
    pub mod profile;

    pub use profile::*;
}
