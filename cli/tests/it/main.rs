//! Integration tests of the `kiln` binary: real cargo builds of the fixtures, run in a real Wasmtime, and inspect/validate on hand-made and corrupted wasm.

mod build;
mod common;
mod corrupt;
mod errors;
mod inspect;
