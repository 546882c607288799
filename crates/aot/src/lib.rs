//! Ahead-of-time compilation with Wasmtime: precompiled artifacts (`.cwasm`) per target triple.
//!
//! Each artifact has a descriptor saying what it was made with; compiling goes
//! through a content-addressed cache, and a check tells where an artifact will
//! load.
//!
//! This is the only crate that depends on wasmtime. The default feature
//! `engine` brings Wasmtime and Cranelift (compiling, checking, CPU
//! features); without it the crate keeps what reads untrusted bytes:
//! descriptors, their CPU selections and settings, file naming, and the
//! engine section of a `.cwasm`.

#[cfg(feature = "engine")]
mod check;
#[cfg(feature = "engine")]
mod compile;
mod cpu;
mod descriptor;
mod engine;
mod files;
mod settings;

#[cfg(feature = "engine")]
pub use check::{CheckItem, CheckReport, check};
#[cfg(feature = "engine")]
pub use compile::{Artifact, compile, engine_config};
pub use cpu::Cpu;
pub use descriptor::{Descriptor, WASMTIME_VERSION};
pub use engine::{EngineSection, engine_section};
pub use files::ArtifactFiles;
#[cfg(feature = "engine")]
pub use settings::WASM_FEATURES;
pub use settings::{OptLevel, Settings, default_on};
