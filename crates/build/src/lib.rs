//! Language drivers: run a project's real toolchain for a wasm target and return the wasm.
//!
//! A driver finds the project at a path and returns the wasm it produced with
//! the package's metadata.
//!
//! Drivers return a core module or a component; turning a core module into a
//! component is the component stage's job, which the CLI chains after this one.

pub mod c;
pub mod cache;
mod cmake;
mod command_export;
pub mod doctor;
pub mod go;
mod leb;
pub mod manifest;
mod project;
pub mod provenance;
pub mod rust;
pub mod rust_update;
pub mod sbom;
pub mod stamp;
pub mod toolchain;

pub use project::{CBuild, Project, discover};
pub use toolchain::{git_revision, rustc_version};

use anyhow::{Context, Result};
use kiln_core::{PackageMetadata, WasmKind};
use std::path::{Path, PathBuf};

/// A fix-up of a toolchain's core module, returning the new module.
pub type Prepare = fn(&[u8]) -> anyhow::Result<Vec<u8>>;

/// What a driver built.
#[derive(Debug, Clone)]
pub struct Built {
    /// The wasm the toolchain produced (mapped from its file when large).
    pub wasm: kiln_core::input::Input,
    /// Where the toolchain wrote it.
    pub toolchain_output: PathBuf,
    /// Core module or component.
    pub kind: WasmKind,
    /// Whether it is a program with an entry point (as opposed to a library).
    pub is_program: bool,
    /// The artifact's name, used for the default output file name.
    pub name: String,
    /// The project's target directory, under which `kiln/` holds outputs.
    pub target_dir: PathBuf,
    /// Package metadata to embed; its name is always set.
    pub metadata: PackageMetadata,
    /// The source language and its toolchain's version, for the producers
    /// section (e.g. `("Rust", "1.95.0")`), when known.
    pub language: Option<(String, String)>,
    /// A WIT world the component stage must embed into the core module
    /// before componentizing, for toolchains that cannot embed it themselves.
    pub embed_world: Option<WitWorld>,
    /// Time spent in the compiler and linker runs themselves, as opposed to
    /// kiln's own discovery and checks around them.
    pub compile_time: std::time::Duration,
    /// What the SBOM of the result is made from.
    pub sbom: sbom::SbomSource,
    /// A fix-up `wasm` needs before it is componentized (Go: an allocator
    /// for the WASI adapter), left to the component stage so it is skipped
    /// when the component of an earlier build is reused.
    pub prepare: Option<Prepare>,
}

impl Built {
    /// The package's name: its metadata's, which every driver sets (the
    /// artifact's name otherwise).
    pub fn package_name(&self) -> &str {
        self.metadata.name.as_deref().unwrap_or(&self.name)
    }

    /// The default output path, `<target dir>/kiln/<name>.wasm`.
    pub fn default_output(&self) -> PathBuf {
        self.target_dir
            .join("kiln")
            .join(format!("{}.wasm", self.name))
    }
}

/// A WIT package on disk and the world in it a project implements.
#[derive(Debug, Clone)]
pub struct WitWorld {
    /// A WIT file or directory (with an optional `deps/`).
    pub path: PathBuf,
    /// The world's name; `None` when the package has exactly one.
    pub world: Option<String>,
}

impl WitWorld {
    /// Parses the package and selects the world.
    pub fn resolve(&self) -> Result<(wit_parser::Resolve, wit_parser::WorldId)> {
        let mut resolve = wit_parser::Resolve::default();
        let (pkg, _) = resolve
            .push_path(&self.path)
            .with_context(|| format!("failed to parse the WIT at `{}`", self.path.display()))?;
        let world = resolve
            .select_world(&[pkg], self.world.as_deref())
            .with_context(|| format!("failed to select a world in `{}`", self.path.display()))?;
        Ok((resolve, world))
    }
}

/// The WIT world of a C or Go project: `[build] wit`/`world` from kiln.toml,
/// else a `wit/` directory beside the manifest.
pub fn wit_world(root: &Path, manifest: &manifest::KilnToml) -> Result<Option<WitWorld>> {
    let path = match &manifest.build.wit {
        Some(p) => {
            let p = root.join(p);
            if !p.exists() {
                anyhow::bail!(
                    "`[build] wit = \"{}\"` in kiln.toml does not exist",
                    p.display()
                );
            }
            p
        }
        None => {
            let p = root.join("wit");
            if !p.is_dir() {
                return Ok(None);
            }
            p
        }
    };
    Ok(Some(WitWorld {
        path,
        world: manifest.build.world.clone(),
    }))
}
