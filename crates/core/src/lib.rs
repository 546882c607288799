//! Shared vocabulary of kiln's stages: digests, targets, package metadata, languages, errors, progress.
//!
//! Errors carry hints; progress goes through the [`Reporter`] trait.
//!
//! This crate does no network or process work. Its I/O is
//! [`fs::write_atomic`], the single place every stage writes an output file,
//! so that no stage can leave a half-written artifact behind, and
//! [`input::Input`], how large inputs are read.

pub mod digest;
pub mod error;
pub mod fs;
pub mod input;
pub mod kill;
pub mod lock;
pub mod report;
pub mod signature;
pub mod target;

pub use digest::Digest;
pub use error::{Hinted, Invalid, hinted};
pub use report::{NoProgress, Progress, Reporter, SilentReporter};
pub use signature::SignatureFormat;
pub use target::Target;

use serde::Serialize;
use std::path::PathBuf;

/// kiln's cache directory: `KILN_CACHE_DIR`, else `$XDG_CACHE_HOME/kiln`,
/// else `~/.cache/kiln`; `None` when none of them is set.
pub fn cache_dir() -> Option<PathBuf> {
    let var = |name: &str| {
        std::env::var_os(name)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    };
    var("KILN_CACHE_DIR")
        .or_else(|| var("XDG_CACHE_HOME").map(|d| d.join("kiln")))
        .or_else(|| var("HOME").map(|h| h.join(".cache").join("kiln")))
}

/// The source language of a project kiln builds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Lang {
    /// A Cargo project.
    Rust,
    /// A C project described by `kiln.toml`, a Makefile or CMake.
    C,
    /// A Go module.
    Go,
}

impl std::fmt::Display for Lang {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Lang::Rust => "rust",
            Lang::C => "c",
            Lang::Go => "go",
        })
    }
}

/// What a wasm binary is: a core module or a component.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum WasmKind {
    /// A core WebAssembly module.
    CoreModule,
    /// A component-model component.
    Component,
}

impl WasmKind {
    /// Reads the kind from the preamble of a wasm binary, or `None` when the
    /// bytes do not start with a wasm header.
    pub fn sniff(bytes: &[u8]) -> Option<WasmKind> {
        if bytes.len() < 8 || &bytes[..4] != b"\0asm" {
            return None;
        }
        // Bytes 6..8 are the layer field: 0 for core modules, 1 for components.
        match (bytes[6], bytes[7]) {
            (0, 0) => Some(WasmKind::CoreModule),
            (1, 0) => Some(WasmKind::Component),
            _ => None,
        }
    }
}

impl std::fmt::Display for WasmKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            WasmKind::CoreModule => "core module",
            WasmKind::Component => "component",
        })
    }
}

/// The package a binary was built from, in the fields wasm-metadata
/// embeds: what a build records, `kiln inspect` reads back (its JSON
/// `metadata`, with these names and every field present, `null` when
/// absent) and a push turns into `org.opencontainers.image.*` annotations.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct PackageMetadata {
    /// Package name (the `component-name` or `name` section).
    pub name: Option<String>,
    /// Package version.
    pub version: Option<String>,
    /// Authors, joined as one free-form string.
    pub authors: Option<String>,
    /// One-line description.
    pub description: Option<String>,
    /// SPDX license expression (the `licenses` section).
    pub licenses: Option<String>,
    /// Repository URL.
    pub source: Option<String>,
    /// Homepage URL.
    pub homepage: Option<String>,
    /// Source control revision (a git commit).
    pub revision: Option<String>,
}
