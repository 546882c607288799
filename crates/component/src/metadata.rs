//! Package metadata (name, version, authors, licenses, source, revision) embedded into components with wasm-metadata.

use anyhow::{Context, Result};
use kiln_core::PackageMetadata;
use wasm_metadata::{AddMetadata, AddMetadataField};

/// Adds `meta` to the outermost module or component and records kiln in the
/// producers section, keeping the producers already there.
pub fn embed_metadata(wasm: &[u8], meta: &PackageMetadata) -> Result<Vec<u8>> {
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
        add.licenses = AddMetadataField::Set(
            wasm_metadata::Licenses::new(l)
                .with_context(|| format!("license `{l}` is not a valid SPDX expression"))?,
        );
    }
    if let Some(s) = &meta.source {
        add.source = AddMetadataField::Set(
            wasm_metadata::Source::new(s)
                .with_context(|| format!("repository `{s}` is not a valid URL"))?,
        );
    }
    if let Some(h) = &meta.homepage {
        add.homepage = AddMetadataField::Set(
            wasm_metadata::Homepage::new(h)
                .with_context(|| format!("homepage `{h}` is not a valid URL"))?,
        );
    }
    if let Some(r) = &meta.revision {
        add.revision = AddMetadataField::Set(wasm_metadata::Revision::new(r.clone()));
    }
    add.to_wasm(wasm)
        .context("failed to embed package metadata")
}
