//! kiln's fuzz targets as plain functions over bytes, with the oracles each asserts.
//!
//! Each target is `fn(&[u8])` and panics only when kiln misbehaves: a
//! parser panics, or two readers of the same bytes disagree. cargo-fuzz
//! calls them from `fuzz/fuzz_targets/` (one three-line file each), and
//! `tests/fuzz_regressions.rs` replays every input a run ever found, and the
//! small seeds checked in, as plain tests, so the suite needs neither
//! cargo-fuzz nor a nightly compiler. Targets whose inputs come in several
//! kinds read a selector byte first (`data[0]`), so one corpus serves
//! related parsers.
#![allow(
    clippy::unwrap_used,
    reason = "a panic is how a fuzz target reports a broken oracle"
)]

mod aot;
mod audit;
mod credentials;
mod http;
mod manifest;
mod oci;
mod sigstore;
mod wasm;

pub use aot::aot;
pub use audit::{audit, audit_facts, policy};
pub use credentials::credentials;
pub use http::http;
pub use manifest::kiln_toml;
pub use oci::oci;
pub use sigstore::sigstore;
pub use wasm::{component, wasm, wasm_smith};

/// One fuzz target: its name (as `cargo xtask fuzz` and `fuzz/fuzz_targets/`
/// spell it) and the function it runs.
pub type Target = (&'static str, fn(&[u8]));

/// Every target (`cargo xtask fuzz` finds them by their files in
/// `fuzz/fuzz_targets/`, which a test holds to this list).
pub const TARGETS: &[Target] = &[
    ("wasm", wasm),
    ("wasm_smith", wasm_smith),
    ("component", component),
    ("audit", audit),
    ("audit_facts", audit_facts),
    ("policy", policy),
    ("kiln_toml", kiln_toml),
    ("oci", oci),
    ("http", http),
    ("credentials", credentials),
    ("sigstore", sigstore),
    ("aot", aot),
];

/// The selector byte of a multi-kind target and the input after it; an
/// empty input selects kind 0 with no bytes.
pub fn select(data: &[u8], kinds: u8) -> (u8, &[u8]) {
    match data.split_first() {
        Some((first, rest)) => (first % kinds, rest),
        None => (0, data),
    }
}
