//! The facts an audit needs — import and export names, core imports, memories, size — read from the section structure only, never from code.

use anyhow::{Result, bail};
use kiln_core::WasmKind;
use serde::{Deserialize, Serialize};
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

/// Where an audit reads a binary from: memory, or a file read piece by
/// piece so that skipped sections (code, data) are never read at all.
pub trait Source {
    /// Total length in bytes.
    fn len(&self) -> u64;
    /// Whether there are no bytes at all.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// Reads exactly `buf.len()` bytes at `offset`.
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> std::io::Result<()>;
}

impl Source for [u8] {
    fn len(&self) -> u64 {
        <[u8]>::len(self) as u64
    }
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> std::io::Result<()> {
        let start = usize::try_from(offset).unwrap_or(usize::MAX);
        match start
            .checked_add(buf.len())
            .and_then(|end| self.get(start..end))
        {
            Some(src) => {
                buf.copy_from_slice(src);
                Ok(())
            }
            None => Err(std::io::ErrorKind::UnexpectedEof.into()),
        }
    }
}

/// A file, read with positioned reads.
pub struct FileSource {
    file: std::fs::File,
    len: u64,
}

impl FileSource {
    /// Opens a file.
    pub fn open(path: &std::path::Path) -> std::io::Result<FileSource> {
        let file = std::fs::File::open(path)?;
        let len = file.metadata()?.len();
        Ok(FileSource { file, len })
    }
}

impl Source for FileSource {
    fn len(&self) -> u64 {
        self.len
    }
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> std::io::Result<()> {
        #[cfg(unix)]
        {
            std::os::unix::fs::FileExt::read_exact_at(&self.file, buf, offset)
        }
        #[cfg(not(unix))]
        {
            use std::io::{Read, Seek, SeekFrom};
            let mut f = &self.file;
            f.seek(SeekFrom::Start(offset))?;
            f.read_exact(buf)
        }
    }
}

/// Reads the facts of a binary held in memory.
pub fn read_facts(name: &str, bytes: &[u8]) -> Result<AuditFacts> {
    read_facts_from(name, bytes)
}

/// Reads the facts of a binary from any source. Sections are located by
/// their headers and only the ones an audit needs (imports, exports,
/// memories, tags, nested modules' headers) are read; code, data and custom
/// sections are stepped over unread, so the cost follows the number of
/// sections, not the size of the binary.
pub fn read_facts_from<S: Source + ?Sized>(name: &str, source: &S) -> Result<AuditFacts> {
    let mut header = [0u8; 8];
    if source.len() < 8 || source.read_at(0, &mut header).is_err() {
        bail!("not a wasm binary: it is shorter than the 8-byte wasm header");
    }
    let Some(kind) = WasmKind::sniff(&header) else {
        bail!(
            "not a wasm binary: it does not start with the `\\0asm` magic bytes and a known version"
        );
    };
    let mut facts = AuditFacts {
        name: name.to_string(),
        kind: Some(kind),
        size: Some(source.len()),
        ..AuditFacts::default()
    };
    walk(source, 0, source.len(), true, 0, &mut facts)?;
    Ok(facts)
}

/// Reads a LEB128 u32 at `offset`, returning it and its length.
fn read_leb<S: Source + ?Sized>(source: &S, offset: u64, end: u64) -> Result<(u32, u64)> {
    let mut result: u64 = 0;
    for i in 0..5u64 {
        if offset + i >= end {
            bail!("unexpected end of the binary at offset {:#x}", offset + i);
        }
        let mut byte = [0u8; 1];
        source.read_at(offset + i, &mut byte)?;
        result |= u64::from(byte[0] & 0x7f) << (7 * i);
        if byte[0] & 0x80 == 0 {
            let value = u32::try_from(result)
                .map_err(|_| anyhow::anyhow!("integer too large at offset {offset:#x}"))?;
            return Ok((value, i + 1));
        }
    }
    bail!("invalid integer encoding at offset {offset:#x}")
}

/// Walks the module or component in `[start, end)` of `source`.
fn walk<S: Source + ?Sized>(
    source: &S,
    start: u64,
    end: u64,
    top: bool,
    depth: u32,
    facts: &mut AuditFacts,
) -> Result<()> {
    if depth > 64 {
        bail!("components are nested more than 64 levels deep");
    }
    if end < start + 8 {
        bail!("a nested binary at offset {start:#x} is shorter than its header");
    }
    let mut header = [0u8; 8];
    source.read_at(start, &mut header)?;
    let Some(kind) = WasmKind::sniff(&header) else {
        bail!("invalid wasm header at offset {start:#x}");
    };
    if kind == WasmKind::CoreModule {
        facts.core_modules += 1;
    }
    let mut offset = start + 8;
    let mut memories = 0usize;
    while offset < end {
        let mut id = [0u8; 1];
        source.read_at(offset, &mut id)?;
        let (size, leb_len) = read_leb(source, offset + 1, end)?;
        let body = offset + 1 + leb_len;
        let body_end = body + u64::from(size);
        if body_end > end {
            bail!(
                "section at offset {offset:#x} claims {size} bytes, past the end of its binary at {end:#x}"
            );
        }
        let wanted = match (kind, id[0]) {
            (WasmKind::CoreModule, 2 | 5 | 13) => true,
            (WasmKind::Component, 10 | 11) => top,
            _ => false,
        };
        if let (WasmKind::Component, 1 | 4) = (kind, id[0]) {
            // A nested core module (1) or component (4).
            walk(source, body, body_end, false, depth + 1, facts)?;
        } else if wanted {
            let mut data = vec![0u8; size as usize];
            source.read_at(body, &mut data)?;
            let reader = wasmparser::BinaryReader::new(&data, body as usize);
            match (kind, id[0]) {
                (WasmKind::CoreModule, 2) => {
                    for import in wasmparser::ImportSectionReader::new(reader)?.into_imports() {
                        let import = import?;
                        if top {
                            facts
                                .core_imports
                                .push(format!("{}::{}", import.module, import.name));
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

fn memory(m: &wasmparser::MemoryType) -> MemoryFacts {
    let page = m.page_size_log2.map_or(65536u64, |l| 1u64 << l.min(63));
    MemoryFacts {
        shared: m.shared,
        memory64: m.memory64,
        max_bytes: m.maximum.map(|max| max.saturating_mul(page)),
    }
}
