//! What every stage uses and that knows nothing of networks: typed values (VLAN ids, PKeys, port
//! GUIDs, job ids), diagnostics with positions, the position-keeping YAML reader, Slurm hostlists,
//! bounds on what is read, running a local program, replacing files safely, the process's one
//! async runtime, and the hints that let each caller word an error's fix its own way.

pub mod deadline;
pub mod diag;
pub mod fsutil;
pub mod hint;
pub mod hostlist;
pub mod interrupt;
pub mod jobstate;
pub mod limits;
pub mod process;
pub mod runtime;
pub mod time;
pub mod types;
pub mod users;
pub mod yaml;
