//! The facts an audit needs — import and export names, core imports, memories, size — read from the section structure only, never from code.

use anyhow::{Result, bail};
use kiln_core::WasmKind;
use serde::{Deserialize, Serialize};
use wasmparser::{Chunk, Parser, Payload, TypeRef};

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
    /// Component imports by name, e.g. `wasi:cli/environment@0.2.6`.
    pub imports: Vec<String>,
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

/// Reads the facts of a binary. Nested modules are visited for their
/// memories, but no code section and no type is ever decoded, so the cost
/// follows the number of sections and imports, not the size of the code.
pub fn read_facts(name: &str, bytes: &[u8]) -> Result<AuditFacts> {
    let Some(kind) = WasmKind::sniff(bytes) else {
        bail!(
            "not a wasm binary: it does not start with the `\\0asm` magic bytes and a known version"
        );
    };
    let mut facts = AuditFacts {
        name: name.to_string(),
        kind: Some(kind),
        size: Some(bytes.len() as u64),
        ..AuditFacts::default()
    };
    walk(bytes, 0, true, 0, &mut facts)?;
    Ok(facts)
}

/// Walks one module or component whose bytes are `bytes[start..]`.
fn walk(
    bytes: &[u8],
    start: usize,
    top: bool,
    depth: u32,
    facts: &mut AuditFacts,
) -> Result<usize> {
    if depth > 64 {
        bail!("components are nested more than 64 levels deep");
    }
    let mut parser = Parser::new(start as u64);
    let mut offset = start;
    let mut module_memories = 0usize;
    loop {
        let Some(rest) = bytes.get(offset..) else {
            bail!(
                "a section extends past the end of the binary ({} bytes)",
                bytes.len()
            );
        };
        let (payload, consumed) = match parser.parse(rest, true)? {
            Chunk::NeedMoreData(_) => bail!("unexpected end of the binary at offset {offset:#x}"),
            Chunk::Parsed { consumed, payload } => (payload, consumed),
        };
        offset += consumed;
        match payload {
            Payload::Version {
                encoding: wasmparser::Encoding::Module,
                ..
            } => facts.core_modules += 1,
            Payload::End(end) => {
                if module_memories > 1 {
                    facts.uses_multi_memory = true;
                }
                return Ok(end);
            }
            Payload::ModuleSection {
                unchecked_range, ..
            }
            | Payload::ComponentSection {
                unchecked_range, ..
            } => {
                // Nested binaries are parsed for their own sections, within
                // their own bounds; the outer parser resumes after them.
                let Some(nested) = bytes.get(..unchecked_range.end) else {
                    bail!("a nested module extends past the end of the binary");
                };
                walk(nested, unchecked_range.start, false, depth + 1, facts)?;
                offset = unchecked_range.end;
            }
            Payload::CodeSectionStart { size, .. } => {
                parser.skip_section();
                offset += size as usize;
            }
            Payload::ComponentImportSection(reader) if top => {
                for import in reader {
                    facts.imports.push(import?.name.name.to_string());
                }
            }
            Payload::ComponentExportSection(reader) if top => {
                for export in reader {
                    facts.exports.push(export?.name.name.to_string());
                }
            }
            Payload::ImportSection(reader) => {
                for import in reader.into_imports() {
                    let import = import?;
                    if top {
                        facts
                            .core_imports
                            .push(format!("{}::{}", import.module, import.name));
                    }
                    if let TypeRef::Memory(m) = import.ty {
                        facts.memories.push(memory(&m));
                        module_memories += 1;
                    }
                }
            }
            Payload::MemorySection(reader) => {
                for m in reader {
                    facts.memories.push(memory(&m?));
                    module_memories += 1;
                }
            }
            Payload::TagSection(reader) if reader.count() > 0 => facts.uses_exceptions = true,
            _ => {}
        }
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
