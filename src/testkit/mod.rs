//! The test kit: a simulated switch that speaks every shipped dialect (in memory and over real
//! SSH), and failpoints that make jobnet fail, crash or stop at chosen places. Built only with the
//! `testkit` cargo feature (the tests and `jobnet-switch-sim` enable it); nothing shipped uses it.

pub mod failpoint;
pub mod sim;
pub mod sim_server;
