//! Package metadata embedded into components with wasm-metadata.
//!
//! The metadata is the name, version, authors, licenses, source and revision.

use anyhow::{Context, Result};
use kiln_core::PackageMetadata;
use wasm_metadata::{AddMetadata, AddMetadataField};

/// Adds `meta` to the outermost module or component and records kiln (and
/// `language`, the source language and its toolchain's version) in the
/// producers section, keeping the producers already there. Returns the new
/// binary and a warning for each field that could not be embedded (Cargo
/// accepts licenses such as `MIT/Apache-2.0` and URLs without a scheme that
/// wasm-metadata's SPDX and URL checks refuse); such fields are left out.
pub fn embed_metadata(
    wasm: &[u8],
    meta: &PackageMetadata,
    language: Option<&(String, String)>,
) -> Result<(Vec<u8>, Vec<String>)> {
    let mut warnings = Vec::new();
    let mut add = AddMetadata::default();
    if let Some(name) = &meta.name {
        add.name = AddMetadataField::Set(name.clone());
    }
    add.processed_by = vec![("kiln".to_string(), env!("CARGO_PKG_VERSION").to_string())];
    if let Some(lang) = language {
        add.language = vec![lang.clone()];
    }
    if let Some(v) = &meta.version {
        add.version = AddMetadataField::Set(wasm_metadata::Version::new(v.clone()));
    }
    if let Some(a) = &meta.authors {
        add.authors = AddMetadataField::Set(wasm_metadata::Authors::new(a.clone()));
    }
    if let Some(d) = &meta.description {
        add.description = AddMetadataField::Set(wasm_metadata::Description::new(d.clone()));
    }
    if let Some(l) = &meta.licenses {
        match wasm_metadata::Licenses::new(l) {
            Ok(v) => add.licenses = AddMetadataField::Set(v),
            Err(_) => warnings.push(format!(
                "license `{l}` is not an SPDX expression and was not embedded (write e.g. `MIT OR Apache-2.0`)"
            )),
        }
    }
    if let Some(s) = &meta.source {
        match wasm_metadata::Source::new(s) {
            Ok(v) => add.source = AddMetadataField::Set(v),
            Err(_) => warnings.push(format!(
                "repository `{s}` is not a URL and was not embedded"
            )),
        }
    }
    if let Some(h) = &meta.homepage {
        match wasm_metadata::Homepage::new(h) {
            Ok(v) => add.homepage = AddMetadataField::Set(v),
            Err(_) => warnings.push(format!("homepage `{h}` is not a URL and was not embedded")),
        }
    }
    if let Some(r) = &meta.revision {
        add.revision = AddMetadataField::Set(wasm_metadata::Revision::new(r.clone()));
    }
    let bytes = rewrite_top_level(&add, wasm).context("failed to embed package metadata")?;
    Ok((bytes, warnings))
}

/// The custom sections wasm-metadata rewrites or adds at the top level.
const METADATA_SECTIONS: &[&str] = &[
    "producers",
    "name",
    "component-name",
    "authors",
    "description",
    "licenses",
    "source",
    "homepage",
    "revision",
    "version",
];

/// Whether `add` sets or clears the field kept in the custom section `name`.
fn replaced(add: &AddMetadata, name: &str) -> bool {
    match name {
        "authors" => !add.authors.is_keep(),
        "description" => !add.description.is_keep(),
        "licenses" => !add.licenses.is_keep(),
        "source" => !add.source.is_keep(),
        "homepage" => !add.homepage.is_keep(),
        "revision" => !add.revision.is_keep(),
        "version" => !add.version.is_keep(),
        _ => false,
    }
}

/// What [`AddMetadata::to_wasm`] does, at the cost of one copy of the
/// binary. wasm-metadata parses every nested module down to its function
/// bodies and rebuilds each one in a buffer of its own, which for a 2.7 MiB
/// component is most of what `kiln build` adds to cargo's time. Here only
/// the top level is read: every section other than the metadata ones is
/// copied as it is (nested modules and code unparsed), and the metadata
/// sections are handed to wasm-metadata on their own, in a binary holding
/// nothing else, so what they say is exactly what wasm-metadata writes.
/// They end up after the other sections, where wasm-metadata appends the
/// ones it adds.
fn rewrite_top_level(add: &AddMetadata, wasm: &[u8]) -> Result<Vec<u8>> {
    use wasmparser::{Chunk, Parser, Payload};
    let mut out = Vec::with_capacity(wasm.len() + 1024);
    let mut skeleton = Vec::new();
    let mut parser = Parser::new(0);
    let mut pos = 0;
    loop {
        let start = pos;
        let rest = wasm.get(pos..).unwrap_or_default();
        let (payload, consumed) = match parser.parse(rest, true)? {
            Chunk::Parsed { payload, consumed } => (payload, consumed),
            Chunk::NeedMoreData(_) => anyhow::bail!("the binary ends in the middle of a section"),
        };
        pos += consumed;
        match &payload {
            Payload::Version { .. } => {
                out.extend_from_slice(&wasm[start..pos]);
                skeleton.extend_from_slice(&wasm[start..pos]);
                continue;
            }
            Payload::ModuleSection {
                unchecked_range, ..
            }
            | Payload::ComponentSection {
                unchecked_range, ..
            } => pos = unchecked_range.end,
            Payload::CodeSectionStart { range, .. } => {
                parser.skip_section();
                pos = range.end;
            }
            Payload::End(_) => break,
            _ => {}
        }
        let raw = wasm
            .get(start..pos)
            .context("a nested module or component runs past the end of the binary")?;
        match &payload {
            // A field being set replaces the section that held it (where
            // wasm-metadata would keep both, the old one first).
            Payload::CustomSection(c) if replaced(add, c.name()) => {}
            Payload::CustomSection(c) if METADATA_SECTIONS.contains(&c.name()) => {
                skeleton.extend_from_slice(raw)
            }
            _ => out.extend_from_slice(raw),
        }
    }
    let rewritten = add.to_wasm(&skeleton)?;
    out.extend_from_slice(rewritten.get(8..).unwrap_or_default());
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use wasm_encoder::{
        CodeSection, Component, CustomSection, ExportKind, ExportSection, Function,
        FunctionSection, Instruction, Module, ModuleSection, TypeSection,
    };

    fn custom(name: &'static str, data: &'static [u8]) -> CustomSection<'static> {
        CustomSection {
            name: name.into(),
            data: data.into(),
        }
    }

    fn core_module() -> Module {
        let mut m = Module::new();
        let mut types = TypeSection::new();
        types.ty().function([], []);
        m.section(&types);
        let mut funcs = FunctionSection::new();
        funcs.function(0);
        funcs.function(0);
        m.section(&funcs);
        let mut exports = ExportSection::new();
        exports.export("_start", ExportKind::Func, 0);
        m.section(&exports);
        let mut code = CodeSection::new();
        for _ in 0..2 {
            let mut f = Function::new([]);
            f.instruction(&Instruction::Nop);
            f.instruction(&Instruction::End);
            code.function(&f);
        }
        m.section(&code);
        m
    }

    fn producers(tool: &str) -> wasm_encoder::ProducersSection {
        let mut p = wasm_encoder::ProducersSection::new();
        let mut f = wasm_encoder::ProducersField::new();
        f.value(tool, "1.0");
        p.field("processed-by", &f);
        p
    }

    fn meta() -> PackageMetadata {
        PackageMetadata {
            name: Some("demo".to_string()),
            version: Some("1.2.3".to_string()),
            authors: Some("A <a@example.com>".to_string()),
            description: Some("a demo".to_string()),
            licenses: Some("MIT".to_string()),
            source: Some("https://example.com/demo".to_string()),
            homepage: None,
            revision: Some("abc".to_string()),
        }
    }

    fn language() -> Option<&'static (String, String)> {
        static LANGUAGE: std::sync::LazyLock<(String, String)> =
            std::sync::LazyLock::new(|| ("Rust".to_string(), "1.95.0".to_string()));
        Some(&LANGUAGE)
    }

    /// What the whole-binary rewrite of wasm-metadata gives.
    fn reference(wasm: &[u8]) -> Vec<u8> {
        let mut add = AddMetadata::default();
        add.name = AddMetadataField::Set("demo".to_string());
        add.processed_by = vec![("kiln".to_string(), env!("CARGO_PKG_VERSION").to_string())];
        add.language = vec![("Rust".to_string(), "1.95.0".to_string())];
        add.version = AddMetadataField::Set(wasm_metadata::Version::new("1.2.3".to_string()));
        add.authors =
            AddMetadataField::Set(wasm_metadata::Authors::new("A <a@example.com>".to_string()));
        add.description =
            AddMetadataField::Set(wasm_metadata::Description::new("a demo".to_string()));
        add.licenses = AddMetadataField::Set(wasm_metadata::Licenses::new("MIT").unwrap());
        add.source =
            AddMetadataField::Set(wasm_metadata::Source::new("https://example.com/demo").unwrap());
        add.revision = AddMetadataField::Set(wasm_metadata::Revision::new("abc".to_string()));
        add.to_wasm(wasm).unwrap()
    }

    /// The metadata wasm-metadata reads back, as text to compare.
    fn read_back(wasm: &[u8]) -> String {
        format!("{:?}", wasm_metadata::Payload::from_binary(wasm).unwrap())
    }

    #[test]
    fn components_get_what_wasm_metadata_writes_and_nested_modules_stay_as_they_were() {
        let mut inner = core_module();
        inner.section(&custom("producers", &[0]));
        inner.section(&custom("keep-me", b"inner"));
        let inner_bytes = inner.clone().finish();
        let mut c = Component::new();
        c.section(&custom("early", b"first"));
        c.section(&ModuleSection(&inner));
        c.section(&producers("wit-component"));
        c.section(&custom("late", b"last"));
        let wasm = c.finish();

        let (ours, warnings) = embed_metadata(&wasm, &meta(), language()).unwrap();
        assert!(warnings.is_empty());
        wasmparser::Validator::new().validate_all(&ours).unwrap();
        assert_eq!(read_back(&ours), read_back(&reference(&wasm)));
        let text = read_back(&ours);
        assert!(
            text.contains("wit-component") && text.contains("kiln"),
            "{text}"
        );
        // The nested module is byte for byte the one given, and the other
        // custom sections keep their order.
        let find = |hay: &[u8], needle: &[u8]| hay.windows(needle.len()).position(|w| w == needle);
        assert!(find(&ours, &inner_bytes).is_some());
        let (early, late) = (
            find(&ours, b"first").unwrap(),
            find(&ours, b"last").unwrap(),
        );
        assert!(early < find(&ours, &inner_bytes).unwrap() && late > early);
        // Embedding again gives the same binary: fields set replace their
        // sections instead of adding second copies.
        let (again, _) = embed_metadata(&ours, &meta(), language()).unwrap();
        assert_eq!(again, ours);
        let mut other = meta();
        other.version = Some("2.0.0".to_string());
        let (changed, _) = embed_metadata(&ours, &other, language()).unwrap();
        assert_eq!(changed.len(), ours.len());
        assert!(read_back(&changed).contains("50, 46, 48, 46, 48"));
    }

    #[test]
    fn core_modules_with_code_and_names_are_rewritten_the_same_way() {
        let mut m = core_module();
        let mut names = wasm_encoder::NameSection::new();
        names.module("old-name");
        m.section(&names);
        let wasm = m.finish();
        let (ours, _) = embed_metadata(&wasm, &meta(), language()).unwrap();
        wasmparser::Validator::new().validate_all(&ours).unwrap();
        assert_eq!(read_back(&ours), read_back(&reference(&wasm)));
        assert!(read_back(&ours).contains("demo"));
    }

    #[test]
    fn truncated_binaries_are_errors_not_panics() {
        let mut c = Component::new();
        c.section(&ModuleSection(&core_module()));
        let wasm = c.finish();
        for cut in [9, wasm.len() / 2, wasm.len() - 1] {
            assert!(
                embed_metadata(&wasm[..cut], &meta(), language()).is_err(),
                "cut at {cut}"
            );
        }
    }
}
