//! The top-level section layout, custom sections, producers and wasm-metadata fields of a binary.

use anyhow::{Result, bail};
use kiln_core::PackageMetadata;
use serde::Serialize;
use wasmparser::{Chunk, KnownCustom, Parser, Payload};

/// One top-level section and its size.
#[derive(Debug, Clone, Serialize)]
pub struct Section {
    /// Its kind, e.g. `code`, `import`, `core-module`, `custom`.
    pub kind: String,
    /// The custom section's name, for custom sections.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Offset of the section's contents in the binary.
    pub offset: usize,
    /// Size of the section's contents in bytes.
    pub size: usize,
}

/// A custom section and its size.
#[derive(Debug, Clone, Serialize)]
pub struct CustomSection {
    /// Its name.
    pub name: String,
    /// Its size in bytes.
    pub size: usize,
}

/// One field of the producers section (`language`, `processed-by`, `sdk`).
#[derive(Debug, Clone, Serialize)]
pub struct ProducerField {
    /// The field name.
    pub field: String,
    /// The producers listed under it.
    pub values: Vec<Producer>,
}

/// A producer: a name and its version.
#[derive(Debug, Clone, Serialize)]
pub struct Producer {
    /// e.g. `rustc`.
    pub name: String,
    /// e.g. `1.95.0`.
    pub version: String,
}

pub(crate) struct Layout {
    pub sections: Vec<Section>,
    /// Top-level component import names.
    pub imports: Vec<String>,
    /// Top-level component export names.
    pub exports: Vec<String>,
    pub custom_sections: Vec<CustomSection>,
    pub producers: Vec<ProducerField>,
    pub metadata: PackageMetadata,
}

fn section_kind(payload: &Payload<'_>) -> &'static str {
    match payload {
        Payload::TypeSection(_) => "type",
        Payload::ImportSection(_) => "import",
        Payload::FunctionSection(_) => "function",
        Payload::TableSection(_) => "table",
        Payload::MemorySection(_) => "memory",
        Payload::TagSection(_) => "tag",
        Payload::GlobalSection(_) => "global",
        Payload::ExportSection(_) => "export",
        Payload::StartSection { .. } => "start",
        Payload::ElementSection(_) => "element",
        Payload::DataCountSection { .. } => "data-count",
        Payload::DataSection(_) => "data",
        Payload::CodeSectionStart { .. } => "code",
        Payload::ModuleSection { .. } => "core-module",
        Payload::InstanceSection(_) => "core-instance",
        Payload::CoreTypeSection(_) => "core-type",
        Payload::ComponentSection { .. } => "component",
        Payload::ComponentInstanceSection(_) => "instance",
        Payload::ComponentAliasSection(_) => "alias",
        Payload::ComponentTypeSection(_) => "component-type",
        Payload::ComponentCanonicalSection(_) => "canonical",
        Payload::ComponentStartSection { .. } => "component-start",
        Payload::ComponentImportSection(_) => "component-import",
        Payload::ComponentExportSection(_) => "component-export",
        Payload::CustomSection(_) => "custom",
        _ => "unknown",
    }
}

fn utf8(data: &[u8], section: &str) -> Result<String> {
    match std::str::from_utf8(data) {
        Ok(s) => Ok(s.to_string()),
        Err(_) => bail!("the `{section}` custom section is not UTF-8"),
    }
}

/// Walks the top level of the binary. Nested modules and components and the
/// code section are skipped over, never parsed.
pub(crate) fn read(bytes: &[u8]) -> Result<Layout> {
    let mut layout = Layout {
        sections: Vec::new(),
        imports: Vec::new(),
        exports: Vec::new(),
        custom_sections: Vec::new(),
        producers: Vec::new(),
        metadata: PackageMetadata::default(),
    };
    let mut parser = Parser::new(0);
    let mut offset = 0usize;
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
        let kind = section_kind(&payload);
        match &payload {
            Payload::Version { .. } => {}
            Payload::End(_) => break,
            Payload::ModuleSection {
                unchecked_range, ..
            }
            | Payload::ComponentSection {
                unchecked_range, ..
            } => {
                layout.sections.push(Section {
                    kind: kind.to_string(),
                    name: None,
                    offset: unchecked_range.start,
                    size: unchecked_range.len(),
                });
                // The outer parser already moved past the nested binary;
                // only the input position needs to follow it.
                offset += unchecked_range.len();
            }
            Payload::CodeSectionStart { range, size, .. } => {
                layout.sections.push(Section {
                    kind: kind.to_string(),
                    name: None,
                    offset: range.start,
                    size: range.len(),
                });
                parser.skip_section();
                offset += *size as usize;
            }
            Payload::CustomSection(c) => {
                let name = c.name().to_string();
                layout.sections.push(Section {
                    kind: kind.to_string(),
                    name: Some(name.clone()),
                    offset: c.data_offset(),
                    size: c.data().len(),
                });
                layout.custom_sections.push(CustomSection {
                    name: name.clone(),
                    size: c.data().len(),
                });
                // A malformed custom section does not make the binary
                // invalid; its fields are reported as absent.
                let _ = read_custom(&mut layout, c);
            }
            other => {
                match other {
                    Payload::ComponentImportSection(reader) => {
                        for import in reader.clone() {
                            layout.imports.push(import?.name.name.to_string());
                        }
                    }
                    Payload::ComponentExportSection(reader) => {
                        for export in reader.clone() {
                            layout.exports.push(export?.name.name.to_string());
                        }
                    }
                    _ => {}
                }
                if let Some((_, range)) = other.as_section() {
                    layout.sections.push(Section {
                        kind: kind.to_string(),
                        name: None,
                        offset: range.start,
                        size: range.len(),
                    });
                }
            }
        }
    }
    Ok(layout)
}

fn read_custom(layout: &mut Layout, c: &wasmparser::CustomSectionReader<'_>) -> Result<()> {
    let meta = &mut layout.metadata;
    match c.as_known() {
        KnownCustom::Producers(reader) => {
            for field in reader {
                let field = field?;
                let mut values = Vec::new();
                for v in field.values {
                    let v = v?;
                    values.push(Producer {
                        name: v.name.to_string(),
                        version: v.version.to_string(),
                    });
                }
                layout.producers.push(ProducerField {
                    field: field.name.to_string(),
                    values,
                });
            }
        }
        KnownCustom::Name(reader) => {
            for name in reader {
                if let wasmparser::Name::Module { name, .. } = name? {
                    meta.name = Some(name.to_string());
                }
            }
        }
        KnownCustom::ComponentName(reader) => {
            for name in reader {
                if let wasmparser::ComponentName::Component { name, .. } = name? {
                    meta.name = Some(name.to_string());
                }
            }
        }
        _ => {
            let slot = match c.name() {
                "version" => &mut meta.version,
                "authors" => &mut meta.authors,
                "description" => &mut meta.description,
                "licenses" => &mut meta.licenses,
                "source" => &mut meta.source,
                "homepage" => &mut meta.homepage,
                "revision" => &mut meta.revision,
                _ => return Ok(()),
            };
            *slot = Some(utf8(c.data(), c.name())?);
        }
    }
    Ok(())
}
