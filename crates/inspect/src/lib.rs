//! Reads what a wasm binary is, imports, exports and contains, without running or fully validating it: kiln's `inspect` report.
//!
//! The report walks the section structure only. Function bodies are skipped,
//! so the cost grows with the number of sections and imports, not with the
//! size of the code.

mod core_module;
mod sections;
mod world;

use anyhow::{Context, Result, bail};
use kiln_core::{Digest, WasmKind};
use serde::Serialize;

pub use core_module::{CoreExport, CoreImport, Memory, ModuleInfo, Table};
pub use sections::{CustomSection, Metadata, Producer, ProducerField, Section};
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
    pub metadata: Metadata,
}

/// Inspects a wasm binary.
pub fn inspect(bytes: &[u8]) -> Result<Report> {
    let Some(kind) = WasmKind::sniff(bytes) else {
        if bytes.len() >= 4 && &bytes[..4] == b"\0asm" {
            bail!("unsupported wasm binary version or layer");
        }
        bail!("not a wasm binary: it does not start with the `\\0asm` magic bytes");
    };
    let encoding_version = u16::from_le_bytes([bytes[4], bytes[5]]);
    let layout = sections::read(bytes).context("failed to parse the binary")?;
    let (world, world_error, module) = match kind {
        WasmKind::Component => match world::of_component(bytes) {
            Ok(w) => (Some(w), None, None),
            Err(e) => (None, Some(format!("{e:#}")), None),
        },
        WasmKind::CoreModule => {
            let module = core_module::read(bytes).context("failed to parse the core module")?;
            let world = if layout
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
            (world.0, world.1, Some(module))
        }
    };
    Ok(Report {
        kind,
        encoding_version,
        size: bytes.len() as u64,
        digest: Digest::of(bytes),
        world,
        world_error,
        module,
        sections: layout.sections,
        custom_sections: layout.custom_sections,
        producers: layout.producers,
        metadata: layout.metadata,
    })
}

/// The WIT text of a component's world and every package it uses, as
/// `wasm-tools component wit` prints it.
pub fn wit_text(bytes: &[u8]) -> Result<String> {
    world::wit_text(bytes)
}
