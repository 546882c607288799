//! Package metadata (name, version, authors, licenses, source, revision) embedded into components with wasm-metadata.

use anyhow::{Context, Result};
use kiln_core::PackageMetadata;
use wasm_metadata::{AddMetadata, AddMetadataField};

/// Adds `meta` to the outermost module or component and records kiln in the
/// producers section, keeping the producers already there. Returns the new
/// binary and a warning for each field that could not be embedded (Cargo
/// accepts licenses such as `MIT/Apache-2.0` and URLs without a scheme that
/// wasm-metadata's SPDX and URL checks refuse); such fields are left out.
pub fn embed_metadata(wasm: &[u8], meta: &PackageMetadata) -> Result<(Vec<u8>, Vec<String>)> {
    let mut warnings = Vec::new();
    let mut add = AddMetadata::default();
    add.name = AddMetadataField::Set(meta.name.clone());
    add.processed_by = vec![("kiln".to_string(), env!("CARGO_PKG_VERSION").to_string())];
    if let Some(lang) = &meta.language {
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
    if let Some(l) = &meta.license {
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
    let bytes = add
        .to_wasm(wasm)
        .context("failed to embed package metadata")?;
    Ok((bytes, warnings))
}
