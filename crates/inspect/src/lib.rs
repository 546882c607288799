//! Reads what a wasm binary is, imports, exports and contains: kiln's `inspect` report.
//!
//! The binary is never run, nor fully validated.
//!
//! The report walks the section structure only. Function bodies are skipped,
//! so the cost grows with the number of sections and imports, not with the
//! size of the code. Before any report of a binary is built, wasmparser's
//! validator checks everything but the function bodies (`structure.rs`), so
//! a binary the validator rejects, and whatever it might claim to contain,
//! is refused with an [`Invalid`](kiln_core::Invalid) error.

pub mod audit;
mod core_module;
mod sections;
mod structure;
mod world;

use anyhow::{Context, Result};
use kiln_core::{Digest, PackageMetadata, WasmKind};
use serde::Serialize;

pub use core_module::{CoreExport, CoreImport, Memory, ModuleInfo, Table};
pub use sections::{CustomSection, Producer, ProducerField, Section};
pub use structure::{PARSER, unknown_encoding};
pub use world::{Function, World, WorldItem, WorldItemKind};

/// Everything `kiln inspect` reports about one binary. The JSON form of this
/// struct is documented in `docs/inspect-json.md`.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// Core module or component.
    pub kind: WasmKind,
    /// The binary encoding version from the preamble.
    pub encoding_version: u16,
    /// Size in bytes.
    pub size: u64,
    /// sha256 of the bytes.
    pub digest: Digest,
    /// The WIT world: for components, the one they implement; for core
    /// modules built by wit-bindgen, the one embedded in their
    /// `component-type` sections.
    pub world: Option<World>,
    /// Why the world could not be read, when it could not.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub world_error: Option<String>,
    /// Imports, exports, memories and tables of a core module.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub module: Option<ModuleInfo>,
    /// Each top-level section with its size.
    pub sections: Vec<Section>,
    /// Each top-level custom section with its size.
    pub custom_sections: Vec<CustomSection>,
    /// The producers section: languages, tools and SDKs.
    pub producers: Vec<ProducerField>,
    /// Package metadata embedded by wasm-metadata.
    pub metadata: PackageMetadata,
}

/// Inspects a wasm binary. A binary wasmparser's validator rejects outside
/// its function bodies is refused with an [`Invalid`](kiln_core::Invalid) error.
pub fn inspect(bytes: &[u8]) -> Result<Report> {
    let Some(kind) = WasmKind::sniff(bytes) else {
        return Err(structure::unknown_header(bytes));
    };
    let encoding_version = u16::from_le_bytes([bytes[4], bytes[5]]);
    // The digest, the world and the section layout are independent passes
    // over the bytes; on large binaries running them side by side halves the
    // wall time.
    let world_of = || match kind {
        WasmKind::Component => Some(world::of_component(bytes).map(Some)),
        WasmKind::CoreModule => None,
    };
    // Below a megabyte the three take less time than starting threads.
    let (digest, world, layout) = if bytes.len() < 1 << 20 {
        structure::validate(bytes)?;
        (Ok(Digest::of(bytes)), Ok(world_of()), sections::read(bytes))
    } else {
        std::thread::scope(|s| {
            let digest = s.spawn(|| Digest::of(bytes));
            // The digest needs no gate; the readers start only on a binary
            // the validator accepted.
            structure::validate(bytes)?;
            let world = s.spawn(world_of);
            let layout = sections::read(bytes);
            anyhow::Ok((digest.join(), world.join(), layout))
        })?
    };
    let panicked = |what: &str| anyhow::anyhow!("internal error: reading the {what} panicked");
    let digest = digest.map_err(|_| panicked("digest"))?;
    let world = world.map_err(|_| panicked("world"))?;
    let layout = layout.context("failed to parse the binary")?;
    let (world, world_error, module) = match (kind, world) {
        (WasmKind::Component, Some(Ok(w))) => (w, None, None),
        (WasmKind::Component, Some(Err(e))) => (None, Some(format!("{e:#}")), None),
        _ => {
            let module = core_module::read(bytes).context("failed to parse the core module")?;
            // Only after the layout pass succeeded: wit-component's reader
            // slices by the code section's declared size.
            let (world, error) = if layout
                .custom_sections
                .iter()
                .any(|c| c.name.starts_with("component-type"))
            {
                match world::of_core_module(bytes) {
                    Ok(w) => (w, None),
                    Err(e) => (None, Some(format!("{e:#}"))),
                }
            } else {
                (None, None)
            };
            (world, error, Some(module))
        }
    };
    Ok(Report {
        kind,
        encoding_version,
        size: bytes.len() as u64,
        digest,
        world,
        world_error,
        module,
        sections: layout.sections,
        custom_sections: layout.custom_sections,
        producers: layout.producers,
        metadata: layout.metadata,
    })
}

/// What a component imports and exports at its top level, by name (e.g.
/// `wasi:cli/run@0.2.6`).
#[derive(Debug, Clone, Default, Serialize)]
pub struct Surface {
    /// Imported names.
    pub imports: Vec<String>,
    /// Exported names.
    pub exports: Vec<String>,
    /// Package metadata embedded by wasm-metadata.
    pub metadata: PackageMetadata,
}

/// Reads a component's top-level import and export names from its section
/// structure alone, without decoding types or nested modules: cheap enough
/// for every `kiln build`.
pub fn surface(bytes: &[u8]) -> Result<Surface> {
    let layout = sections::read(bytes).context("failed to parse the binary")?;
    Ok(Surface {
        imports: layout.imports,
        exports: layout.exports,
        metadata: layout.metadata,
    })
}

/// The WIT text of a component's world and every package it uses, as
/// `wasm-tools component wit` prints it. A binary wasmparser's validator
/// rejects is refused with an [`Invalid`](kiln_core::Invalid) error.
pub fn wit_text(bytes: &[u8]) -> Result<String> {
    structure::validate(bytes)?;
    world::wit_text(bytes)
}
