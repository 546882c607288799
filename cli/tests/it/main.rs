//! Integration tests of the `kiln` binary, one module per area.
//!
//! Integration tests of the `kiln` binary: real cargo builds of the fixtures,
//! run in a real Wasmtime, and inspect/validate on hand-made and corrupted
//! wasm.

// Tests fail loudly on unexpected errors; unwrapping is how they say so.
#![allow(clippy::unwrap_used)]
// Tests print what they skip and what a child wrote; the rule that only the
// printer writes to the terminal is the binary's.
#![allow(clippy::print_stdout, clippy::print_stderr, clippy::disallowed_methods)]

mod attest;
mod audit;
mod audit_core;
mod both_ways;
mod build;
mod build_c_go;
mod bundles;
mod common;
mod compile;
mod corrupt;
mod crash;
mod disk_full;
mod doctor;
mod env_credentials;
mod errors;
mod escaping;
mod fault_proxy;
mod faults;
mod go_packages;
mod golden;
mod hostile;
mod hostile_registry;
mod insecure_scope;
mod inspect;
mod new;
mod oci;
mod old_lock;
mod others_pushed;
mod podman_auth;
mod publish;
mod referrers_proxy;
mod registry_harness;
mod sign;
mod stale;
mod tls;
mod token_service;
mod trust;
