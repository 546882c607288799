//! Ahead-of-time compilation with Wasmtime: precompiled artifacts (`.cwasm`) per target triple.
//!
//! Each artifact has a descriptor saying what it was made with; compiling goes
//! through a content-addressed cache, and a check tells where an artifact will
//! load.
//!
//! This is the only crate that depends on wasmtime.

mod check;
mod compile;
mod cpu;
mod files;
mod settings;

pub use check::{CheckItem, CheckReport, check};
pub use compile::{Artifact, Descriptor, WASMTIME_VERSION, compile, engine_config};
pub use cpu::Cpu;
pub use files::ArtifactFiles;
pub use settings::{OptLevel, Settings, WASM_FEATURES, default_on};
