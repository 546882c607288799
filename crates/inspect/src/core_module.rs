//! Imports, exports, memories and tables of a core module.

use anyhow::Result;
use serde::{Serialize, Serializer};
use std::sync::Arc;
use wasmparser::{ExternalKind, Parser, Payload, TypeRef};

/// The interface of a core module.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ModuleInfo {
    /// Every import, in order.
    pub imports: Vec<CoreImport>,
    /// Every export, in order.
    pub exports: Vec<CoreExport>,
    /// Memories, imported ones first.
    pub memories: Vec<Memory>,
    /// Tables, imported ones first.
    pub tables: Vec<Table>,
    /// Number of functions defined (not imported) by the module.
    pub defined_functions: u32,
}

/// A core import such as `wasi_snapshot_preview1::fd_write`.
#[derive(Debug, Clone, Serialize)]
pub struct CoreImport {
    /// The module name.
    pub module: String,
    /// The field name.
    pub name: String,
    /// `func`, `table`, `memory`, `global` or `tag`.
    pub kind: &'static str,
    /// For functions, the signature such as `(i32, i32) -> (i32)`, shared
    /// by every import and export of the same type.
    #[serde(
        skip_serializing_if = "Option::is_none",
        serialize_with = "shared_text"
    )]
    pub signature: Option<Arc<str>>,
}

/// A core export.
#[derive(Debug, Clone, Serialize)]
pub struct CoreExport {
    /// The export name.
    pub name: String,
    /// `func`, `table`, `memory`, `global` or `tag`.
    pub kind: &'static str,
    /// For functions, the signature, shared like an import's.
    #[serde(
        skip_serializing_if = "Option::is_none",
        serialize_with = "shared_text"
    )]
    pub signature: Option<Arc<str>>,
}

/// A shared signature serializes as the string it holds (serde's `rc`
/// feature would do the same for the whole workspace).
fn shared_text<S: Serializer>(text: &Option<Arc<str>>, s: S) -> Result<S::Ok, S::Error> {
    match text {
        Some(t) => s.serialize_some(&**t),
        None => s.serialize_none(),
    }
}

/// A linear memory.
#[derive(Debug, Clone, Serialize)]
pub struct Memory {
    /// Whether it is imported.
    pub imported: bool,
    /// Initial size in pages.
    pub initial_pages: u64,
    /// Maximum size in pages, if declared.
    pub maximum_pages: Option<u64>,
    /// Page size in bytes.
    pub page_size: u64,
    /// Whether it is shared (threads).
    pub shared: bool,
    /// Whether it uses 64-bit addresses.
    pub memory64: bool,
}

/// A table.
#[derive(Debug, Clone, Serialize)]
pub struct Table {
    /// Whether it is imported.
    pub imported: bool,
    /// The element type, e.g. `funcref`.
    pub element_type: String,
    /// Initial number of elements.
    pub initial: u64,
    /// Maximum number of elements, if declared.
    pub maximum: Option<u64>,
}

fn kind_name(kind: ExternalKind) -> &'static str {
    match kind {
        ExternalKind::Func | ExternalKind::FuncExact => "func",
        ExternalKind::Table => "table",
        ExternalKind::Memory => "memory",
        ExternalKind::Global => "global",
        ExternalKind::Tag => "tag",
    }
}

fn memory(ty: &wasmparser::MemoryType, imported: bool) -> Memory {
    Memory {
        imported,
        initial_pages: ty.initial,
        maximum_pages: ty.maximum,
        page_size: ty.page_size_log2.map_or(65536, |l| 1u64 << l.min(63)),
        shared: ty.shared,
        memory64: ty.memory64,
    }
}

fn table(ty: &wasmparser::TableType, imported: bool) -> Table {
    Table {
        imported,
        element_type: ty.element_type.to_string(),
        initial: ty.initial,
        maximum: ty.maximum,
    }
}

fn signature(types: &[Option<Arc<str>>], idx: u32) -> Option<Arc<str>> {
    types.get(idx as usize).cloned().flatten()
}

fn func_type_text(f: &wasmparser::FuncType) -> Arc<str> {
    let list = |tys: &[wasmparser::ValType]| {
        tys.iter()
            .map(|t| t.to_string())
            .collect::<Vec<_>>()
            .join(", ")
    };
    format!("({}) -> ({})", list(f.params()), list(f.results())).into()
}

/// Reads a core module's interface. Only the top-level sections are parsed;
/// the code section is skipped. The module has passed the validator's limits,
/// and each signature is written once per type, not once per import.
pub(crate) fn read(bytes: &[u8]) -> Result<ModuleInfo> {
    let mut info = ModuleInfo::default();
    // Signature text of each type index; `None` for non-function types.
    let mut types: Vec<Option<Arc<str>>> = Vec::new();
    // Type index of each function, imported ones first.
    let mut funcs: Vec<u32> = Vec::new();
    for payload in Parser::new(0).parse_all(bytes) {
        match payload? {
            Payload::TypeSection(reader) => {
                for group in reader {
                    for sub in group?.into_types() {
                        types.push(match &sub.composite_type.inner {
                            wasmparser::CompositeInnerType::Func(f) => Some(func_type_text(f)),
                            _ => None,
                        });
                    }
                }
            }
            Payload::ImportSection(reader) => {
                for import in reader.into_imports() {
                    let import = import?;
                    let (kind, sig) = match import.ty {
                        TypeRef::Func(t) | TypeRef::FuncExact(t) => {
                            funcs.push(t);
                            ("func", signature(&types, t))
                        }
                        TypeRef::Table(t) => {
                            info.tables.push(table(&t, true));
                            ("table", None)
                        }
                        TypeRef::Memory(m) => {
                            info.memories.push(memory(&m, true));
                            ("memory", None)
                        }
                        TypeRef::Global(_) => ("global", None),
                        TypeRef::Tag(_) => ("tag", None),
                    };
                    info.imports.push(CoreImport {
                        module: import.module.to_string(),
                        name: import.name.to_string(),
                        kind,
                        signature: sig,
                    });
                }
            }
            Payload::FunctionSection(reader) => {
                info.defined_functions = reader.count();
                for ty in reader {
                    funcs.push(ty?);
                }
            }
            Payload::TableSection(reader) => {
                for t in reader {
                    info.tables.push(table(&t?.ty, false));
                }
            }
            Payload::MemorySection(reader) => {
                for m in reader {
                    info.memories.push(memory(&m?, false));
                }
            }
            Payload::ExportSection(reader) => {
                for export in reader {
                    let export = export?;
                    let signature = match export.kind {
                        ExternalKind::Func | ExternalKind::FuncExact => funcs
                            .get(export.index as usize)
                            .and_then(|t| signature(&types, *t)),
                        _ => None,
                    };
                    info.exports.push(CoreExport {
                        name: export.name.to_string(),
                        kind: kind_name(export.kind),
                        signature,
                    });
                }
            }
            // The code section holds most of the bytes and nothing this
            // report needs; everything after it is only data and custom
            // sections, which the layout pass already read.
            Payload::CodeSectionStart { .. } => break,
            _ => {}
        }
    }
    Ok(info)
}
