//! Ahead-of-time compilation with Wasmtime: precompiled artifacts (`.cwasm`) per target triple, descriptors saying what each was made with, a content-addressed cache, and a check of where an artifact will load.
//!
//! This is the only crate that depends on wasmtime.

mod check;
mod compile;

pub use check::{CheckItem, CheckReport, check};
pub use compile::{
    Artifact, Cpu, Descriptor, OptLevel, Settings, TARGETS, WASMTIME_VERSION, compile,
    engine_config, host_triple,
};
