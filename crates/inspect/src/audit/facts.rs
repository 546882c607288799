//! The facts an audit needs, read from a binary's section structure, never from code.
//!
//! They are import and export names, core imports, memories and size, read only
//! from a binary the validator accepted.

use super::preview1;
use anyhow::{Result, bail};
use kiln_core::WasmKind;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use wasmparser::TypeRef;

/// A linear memory as an audit sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemoryFacts {
    /// Shared memory (the threads proposal).
    pub shared: bool,
    /// 64-bit addresses (the memory64 proposal).
    pub memory64: bool,
    /// The declared maximum in bytes; `None` when the memory may grow without bound.
    pub max_bytes: Option<u64>,
}

/// Everything a policy is checked against. A source that knows only the
/// import and export lists (an OCI config, say) fills those and leaves the
/// rest empty.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditFacts {
    /// What is audited: a path or a reference.
    pub name: String,
    /// Component or core module, when known.
    pub kind: Option<WasmKind>,
    /// Size in bytes, when known.
    pub size: Option<u64>,
    /// Component imports by name, e.g. `wasi:cli/environment@0.2.6`. For a
    /// core module: the WASI 0.2 interfaces its WASI imports stand for (a
    /// `wasi_snapshot_preview1` function maps to the interfaces the preview1
    /// adapter imports to implement it; see [`preview1`](super::preview1)).
    pub imports: Vec<String>,
    /// For a core module: the core imports (`module::name`) each name in
    /// `imports` was derived from.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub derived_from: BTreeMap<String, Vec<String>>,
    /// For a core module: imports (`module::name`) that no WASI interface
    /// provides, such as emscripten's `env`, wasm-bindgen's
    /// `__wbindgen_placeholder__` or Go's `gojs`; only a host that knows
    /// them can run the module.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub host_specific: Vec<String>,
    /// Component exports by name, e.g. `wasi:cli/run@0.2.6`.
    pub exports: Vec<String>,
    /// Core module imports as `module::name`.
    pub core_imports: Vec<String>,
    /// Every memory of the binary and its nested modules.
    pub memories: Vec<MemoryFacts>,
    /// Number of core modules in the binary (the binary itself for a module).
    pub core_modules: u32,
    /// Whether any module declares exception tags.
    pub uses_exceptions: bool,
    /// Whether any module has more than one memory.
    pub uses_multi_memory: bool,
}

/// The feature names a policy may forbid.
pub const FEATURES: &[&str] = &["threads", "memory64", "multi-memory", "exceptions"];

impl AuditFacts {
    /// The wasm features the binary uses, by the names in [`FEATURES`].
    pub fn features(&self) -> Vec<&'static str> {
        let mut out = Vec::new();
        if self.memories.iter().any(|m| m.shared) {
            out.push("threads");
        }
        if self.memories.iter().any(|m| m.memory64) {
            out.push("memory64");
        }
        if self.uses_multi_memory {
            out.push("multi-memory");
        }
        if self.uses_exceptions {
            out.push("exceptions");
        }
        out
    }
}

/// Reads the facts of a binary. The binary first passes wasmparser's
/// validator outside its function bodies, as for `kiln inspect` (a rejected
/// binary is an [`Invalid`](kiln_core::Invalid) error). Then only the sections an
/// audit needs (imports, exports, memories, tags, nested modules' headers)
/// are read; code, data and custom sections are stepped over, so the cost
/// follows the number of sections, not the size of the binary, and a mapped
/// file's code is never paged in.
pub fn read_facts(name: &str, bytes: &[u8]) -> Result<AuditFacts> {
    let Some(kind) = bytes.get(..8).and_then(WasmKind::sniff) else {
        return Err(crate::structure::unknown_header(bytes));
    };
    crate::structure::validate(bytes)?;
    let mut facts = AuditFacts {
        name: name.to_string(),
        kind: Some(kind),
        size: Some(bytes.len() as u64),
        ..AuditFacts::default()
    };
    walk(bytes, 0, bytes.len(), true, 0, &mut facts)?;
    Ok(facts)
}

/// Reads a LEB128 u32 at `offset`, returning it and its length.
fn read_leb(bytes: &[u8], offset: usize, end: usize) -> Result<(u32, usize)> {
    let mut result: u64 = 0;
    for i in 0..5usize {
        if offset + i >= end {
            bail!("unexpected end of the binary at offset {:#x}", offset + i);
        }
        let byte = bytes[offset + i];
        result |= u64::from(byte & 0x7f) << (7 * i);
        if byte & 0x80 == 0 {
            let value = u32::try_from(result)
                .map_err(|_| anyhow::anyhow!("integer too large at offset {offset:#x}"))?;
            return Ok((value, i + 1));
        }
    }
    bail!("invalid integer encoding at offset {offset:#x}")
}

/// Walks the module or component in `bytes[start..end]`.
fn walk(
    bytes: &[u8],
    start: usize,
    end: usize,
    top: bool,
    depth: u32,
    facts: &mut AuditFacts,
) -> Result<()> {
    if depth > 64 {
        bail!("components are nested more than 64 levels deep");
    }
    if end > bytes.len() || end < start + 8 {
        bail!("a nested binary at offset {start:#x} is shorter than its header");
    }
    let Some(kind) = WasmKind::sniff(&bytes[start..start + 8]) else {
        bail!("invalid wasm header at offset {start:#x}");
    };
    if kind == WasmKind::CoreModule {
        facts.core_modules += 1;
    }
    let mut offset = start + 8;
    let mut memories = 0usize;
    while offset < end {
        let id = bytes[offset];
        let (size, leb_len) = read_leb(bytes, offset + 1, end)?;
        let body = offset + 1 + leb_len;
        let body_end = body + size as usize;
        if body_end > end {
            bail!(
                "section at offset {offset:#x} claims {size} bytes, past the end of its binary at {end:#x}"
            );
        }
        let wanted = match (kind, id) {
            (WasmKind::CoreModule, 2 | 5 | 13) => true,
            (WasmKind::Component, 10 | 11) => top,
            _ => false,
        };
        if let (WasmKind::Component, 1 | 4) = (kind, id) {
            // A nested core module (1) or component (4).
            walk(bytes, body, body_end, false, depth + 1, facts)?;
        } else if wanted {
            let reader = wasmparser::BinaryReader::new(&bytes[body..body_end], body);
            match (kind, id) {
                (WasmKind::CoreModule, 2) => {
                    for import in wasmparser::ImportSectionReader::new(reader)?.into_imports() {
                        let import = import?;
                        if top {
                            facts.core_import(import.module, import.name);
                        }
                        if let TypeRef::Memory(m) = import.ty {
                            facts.memories.push(memory(&m));
                            memories += 1;
                        }
                    }
                }
                (WasmKind::CoreModule, 5) => {
                    for m in wasmparser::MemorySectionReader::new(reader)? {
                        facts.memories.push(memory(&m?));
                        memories += 1;
                    }
                }
                (WasmKind::CoreModule, 13) => {
                    facts.uses_exceptions |= wasmparser::TagSectionReader::new(reader)?.count() > 0;
                }
                (WasmKind::Component, 10) => {
                    for import in wasmparser::ComponentImportSectionReader::new(reader)? {
                        facts.imports.push(import?.name.name.to_string());
                    }
                }
                (WasmKind::Component, 11) => {
                    for export in wasmparser::ComponentExportSectionReader::new(reader)? {
                        facts.exports.push(export?.name.name.to_string());
                    }
                }
                _ => {}
            }
        }
        offset = body_end;
    }
    if memories > 1 {
        facts.uses_multi_memory = true;
    }
    Ok(())
}

impl AuditFacts {
    /// Records a top-level core module's import, and what it stands for at
    /// the level of WIT interfaces.
    fn core_import(&mut self, module: &str, name: &str) {
        let raw = format!("{module}::{name}");
        let interfaces: Vec<String> = match module {
            "wasi_snapshot_preview1" | "wasi_unstable" => {
                match preview1::interfaces(module, name) {
                    Some(list) => list
                        .iter()
                        .map(|i| format!("{i}@{}", preview1::ADAPTER_WASI_VERSION))
                        .collect(),
                    // Not a WASI function: no adapter provides it.
                    None => {
                        self.host_specific.push(raw.clone());
                        Vec::new()
                    }
                }
            }
            // A module built for components imports WIT interfaces by name
            // (`wasi:cli/environment@0.2.6`) and world-level functions from
            // `$root`; `[export]…` modules are the intrinsics of its own
            // exported resources, which import nothing from the host.
            m if m.starts_with("[export]") => Vec::new(),
            "$root" => vec![name.to_string()],
            m if m.contains(':') && m.contains('/') => vec![m.to_string()],
            _ => {
                self.host_specific.push(raw.clone());
                Vec::new()
            }
        };
        for interface in interfaces {
            let sources = self.derived_from.entry(interface.clone()).or_default();
            if sources.is_empty() {
                self.imports.push(interface);
            }
            sources.push(raw.clone());
        }
        self.core_imports.push(raw);
    }
}

fn memory(m: &wasmparser::MemoryType) -> MemoryFacts {
    let page = m.page_size_log2.map_or(65536u64, |l| 1u64 << l.min(63));
    MemoryFacts {
        shared: m.shared,
        memory64: m.memory64,
        max_bytes: m.maximum.map(|max| max.saturating_mul(page)),
    }
}
