//! Test support shared by this crate's integration tests: a moto_server per test and a
//! fault-injecting HTTP proxy. Not every test binary uses every helper.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

pub mod fault_proxy;
pub mod moto;
