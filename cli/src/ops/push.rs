//! What pushing a component needs besides the store: annotations, default reference, artifacts.
//!
//! What pushing a component needs besides the store: its OCI annotations, the
//! reference it goes to by default, and the precompiled artifacts beside it
//! that may be attached.

use super::{read_input, registry};
use anyhow::{Context, Result, bail};
use kiln_core::{Digest, PackageMetadata, Reporter, Target, WasmKind};
use kiln_oci::artifact::{Blob, BlobData, Descriptor};
use kiln_oci::{ComponentInfo, Pushed, Reference, Store};
use std::path::{Path, PathBuf};

/// What to push and where, as plain values.
#[derive(Debug, Clone)]
pub struct Request {
    /// The wasm file (`-` reads stdin).
    pub file: PathBuf,
    /// Where to push it (default: a layout named from its metadata).
    pub reference: Option<Reference>,
    /// Attach the precompiled artifacts in this directory (default: the
    /// file's), failing when there are none.
    pub aot: Option<PathBuf>,
    /// Attach no precompiled artifacts.
    pub no_aot: bool,
    /// How to reach the registry.
    pub registry: registry::Options,
}

/// Pushes a component (or core module) with the precompiled artifacts
/// beside it; returns the reference it went to and what was pushed.
pub fn push(request: &Request, reporter: &dyn Reporter) -> Result<(Reference, Pushed)> {
    let file = &request.file;
    let wasm = read_input(file)?;
    let kind = WasmKind::sniff(&wasm)
        .with_context(|| format!("`{}` is not a wasm module or component", file.display()))?;
    let (digest, surface, early_store) = describe_and_connect(request, &wasm, reporter)?;
    let descriptor = Descriptor::new(
        kiln_oci::artifact::WASM_LAYER_MEDIA_TYPE,
        &digest,
        wasm.len() as u64,
    );
    // The OCI annotations' source: the component's embedded metadata.
    let metadata = &surface.metadata;
    let stem = file
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "component".to_string());
    let (reference, store) = match early_store {
        Some(opened) => opened?,
        None => {
            let reference = with_default_tag(match &request.reference {
                Some(r) => r.clone(),
                None => default_reference(metadata, &stem)?,
            });
            let store = request.registry.open(&reference, true, reporter)?;
            (reference, store)
        }
    };
    let info = (kind == WasmKind::Component).then(|| ComponentInfo {
        imports: surface.imports.clone(),
        exports: surface.exports.clone(),
        target: None,
    });
    let created = crate::ops::created()?;
    // The layer streams from the file when pushed; stdin is held in memory.
    let layer = if file.as_os_str() == "-" {
        Blob {
            descriptor,
            data: BlobData::Bytes(wasm.into_vec()),
        }
    } else {
        // Described from the bytes already read; the file must not change
        // before it streams out: a registry checks the digest of what it
        // receives, a layout's copy is hashed again as it is written.
        drop(wasm);
        Blob {
            descriptor,
            data: BlobData::File(file.clone()),
        }
    };
    let package = kiln_oci::wasm_package(layer, info, metadata, &created)?;
    let attachments = if request.no_aot {
        Vec::new()
    } else {
        let dir = match &request.aot {
            Some(d) => d.clone(),
            None => super::dir_of(file),
        };
        precompiled(
            &dir,
            &stem,
            &digest,
            &package.descriptor,
            &created,
            request.aot.is_some(),
            reporter,
        )?
    };
    let pushed = store.push(&reference, &package, &attachments, reporter)?;
    Ok((reference, pushed))
}

/// A registry opened for a push, and the reference pushed to.
type Opened = Result<(Reference, Store)>;

/// Three things at once: the layer's digest (SHA-256 of the whole file),
/// the component's metadata and surface, and, when the destination is a
/// registry, opening and authenticating to it (a local layout is opened
/// after, so a bad input leaves no layout behind). The store's result is
/// left for the caller to look at last.
fn describe_and_connect(
    request: &Request,
    wasm: &[u8],
    reporter: &dyn Reporter,
) -> Result<(Digest, kiln_inspect::Surface, Option<Opened>)> {
    let early = request
        .reference
        .as_ref()
        .filter(|r| matches!(r, Reference::Registry { .. }));
    let (digest, surface, early_store) = std::thread::scope(|s| {
        let digest = s.spawn(|| Digest::of(wasm));
        let store = early.map(|r| {
            s.spawn(|| {
                let reference = with_default_tag(r.clone());
                let store = request.registry.open(&reference, true, reporter)?;
                store.prepare_push()?;
                anyhow::Ok((reference, store))
            })
        });
        let surface = kiln_inspect::surface(wasm)
            .with_context(|| format!("failed to read `{}`", request.file.display()));
        let joined = |e| anyhow::anyhow!("a worker thread of `kiln push` panicked: {e:?}");
        let digest = digest.join().map_err(joined);
        let store = store.map(|t| t.join().map_err(joined));
        (digest, surface, store)
    });
    let digest = digest?;
    let surface = surface?;
    Ok((digest, surface, early_store.transpose()?))
}

/// `NAME:VERSION` in the local layout, from the metadata or the file name.
pub fn default_reference(metadata: &PackageMetadata, stem: &str) -> Result<Reference> {
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
    source_digest: &Digest,
    subject: &kiln_oci::artifact::Descriptor,
    created: &str,
    explicit: bool,
    reporter: &dyn Reporter,
) -> Result<Vec<kiln_oci::Package>> {
    let mut out = Vec::new();
    for &target in Target::ALL {
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
        if descriptor.source_digest != *source_digest {
            reporter.warn(&format!(
                "`{}` was compiled from another wasm ({}); not attached — run `kiln compile` again",
                path.display(),
                descriptor.source_digest
            ));
            continue;
        }
        let cwasm =
            std::fs::read(path).with_context(|| format!("failed to read `{}`", path.display()))?;
        if Digest::of(&cwasm) != descriptor.artifact_digest {
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
