//! Language drivers: finds the project at a path, runs its real toolchain for a wasm target, and returns the wasm it produced with the package's metadata.
//!
//! Drivers return a core module or a component; turning a core module into a
//! component is the component stage's job, which the CLI chains after this one.

mod project;
pub mod rust;
mod toolchain;

pub use project::{Project, discover};
pub use toolchain::{git_revision, rustc_version};

use kiln_core::{PackageMetadata, WasmKind};
use std::path::PathBuf;

/// What a driver built.
#[derive(Debug, Clone)]
pub struct Built {
    /// The wasm the toolchain produced.
    pub wasm: Vec<u8>,
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
    /// Package metadata to embed.
    pub metadata: PackageMetadata,
}

impl Built {
    /// The default output path, `<target dir>/kiln/<name>.wasm`.
    pub fn default_output(&self) -> PathBuf {
        self.target_dir
            .join("kiln")
            .join(format!("{}.wasm", self.name))
    }
}
