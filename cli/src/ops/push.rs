//! What pushing a component needs besides the store: its OCI annotations, the reference it goes to by default, and the precompiled artifacts beside it that may be attached.

use anyhow::{Context, Result, bail};
use kiln_core::Reporter;
use kiln_oci::{ImageMetadata, Reference};
use std::path::Path;

/// The OCI annotations' source: the component's embedded metadata.
pub fn image_metadata(surface: &kiln_inspect::Surface) -> ImageMetadata {
    let m = &surface.metadata;
    ImageMetadata {
        name: m.name.clone(),
        version: m.version.clone(),
        description: m.description.clone(),
        licenses: m.licenses.clone(),
        source: m.source.clone(),
        homepage: m.homepage.clone(),
        revision: m.revision.clone(),
        authors: m.authors.clone(),
    }
}

/// `NAME:VERSION` in the local layout, from the metadata or the file name.
pub fn default_reference(metadata: &ImageMetadata, stem: &str) -> Result<Reference> {
    let raw = metadata.name.as_deref().unwrap_or(stem);
    let name: String = raw
        .to_ascii_lowercase()
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' || c == '-' {
                c
            } else {
                '-'
            }
        })
        .collect::<String>()
        .trim_matches(|c: char| !c.is_ascii_alphanumeric())
        .to_string();
    if name.is_empty() {
        bail!("cannot derive a repository name from `{raw}`; give a REF");
    }
    let tag: String = metadata
        .version
        .as_deref()
        .unwrap_or("latest")
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "._-".contains(c) {
                c
            } else {
                '-'
            }
        })
        .collect();
    Reference::parse(&format!("{name}:{tag}"))
}

/// The precompiled artifacts for this wasm in `dir`: `STEM.TRIPLE.cwasm`
/// whose descriptor names this wasm as its source.
pub fn precompiled(
    dir: &Path,
    stem: &str,
    source_digest: &str,
    subject: &kiln_oci::artifact::Descriptor,
    created: &str,
    explicit: bool,
    reporter: &dyn Reporter,
) -> Result<Vec<kiln_oci::Package>> {
    let mut out = Vec::new();
    for target in kiln_aot::TARGETS {
        let files = kiln_aot::ArtifactFiles::new(dir, stem, target);
        let path = &files.cwasm;
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        if !path.is_file() {
            continue;
        }
        let Some(descriptor) = files.read_descriptor()? else {
            reporter.warn(&format!(
                "`{}` has no descriptor beside it; not attached",
                path.display()
            ));
            continue;
        };
        if descriptor.source_digest != source_digest {
            reporter.warn(&format!(
                "`{}` was compiled from another wasm ({}); not attached — run `kiln compile` again",
                path.display(),
                descriptor.source_digest
            ));
            continue;
        }
        let cwasm =
            std::fs::read(path).with_context(|| format!("failed to read `{}`", path.display()))?;
        if kiln_core::Digest::of(&cwasm).to_string() != descriptor.artifact_digest {
            reporter.warn(&format!(
                "`{}` does not match its descriptor; not attached",
                path.display()
            ));
            continue;
        }
        let json = std::fs::read(&files.descriptor)?;
        out.push(kiln_oci::cwasm_package(
            cwasm,
            json,
            target,
            &descriptor.wasmtime_version,
            &name,
            subject,
            created,
        )?);
    }
    if explicit && out.is_empty() {
        bail!(
            "no precompiled artifacts for `{stem}` in `{}` (expected {stem}.TRIPLE.cwasm from `kiln compile`)",
            dir.display()
        );
    }
    Ok(out)
}

/// A reference without tag or digest names `latest`.
pub fn with_default_tag(reference: Reference) -> Reference {
    if reference.tag().is_none() && reference.digest().is_none() {
        reference.with_tag("latest")
    } else {
        reference
    }
}
