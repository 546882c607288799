//! `kiln push`: a component (or core module) as a CNCF Wasm OCI artifact, with its precompiled artifacts attached as referrers, to a registry or a local OCI layout.

use crate::ops::read_input;
use super::args::RegistryArgs;
use crate::outcome::Outcome;
use crate::output::{Printer, human_size};
use anyhow::{Context, Result, bail};
use kiln_core::{Reporter, WasmKind};
use kiln_oci::{ComponentInfo, ImageMetadata, Reference};
use std::path::{Path, PathBuf};

/// Push a component to an OCI registry or a local OCI layout.
#[derive(clap::Args, Debug)]
#[command(after_help = "\
REF is REGISTRY/REPO[:TAG] (e.g. ghcr.io/acme/hello:1.0), oci:DIR[:TAG] for a local \
OCI image layout, or NAME[:TAG] for the layout target/kiln/oci/NAME. Without REF, kiln \
uses the component's name and version from its metadata (else the file name and `latest`).

Precompiled artifacts from `kiln compile` beside FILE (FILE-stem.TRIPLE.cwasm with its \
.cwasm.json descriptor) are attached as referrers; --aot DIR looks in DIR instead.

`created` is SOURCE_DATE_EPOCH when set, else 1970-01-01: the same input always gives \
the same manifest digest.")]
pub struct Args {
    /// The .wasm to push.
    #[arg(value_name = "FILE")]
    file: PathBuf,
    /// Where to push it.
    #[arg(value_name = "REF")]
    reference: Option<String>,
    /// Attach the precompiled artifacts found in DIR.
    #[arg(long, value_name = "DIR", conflicts_with = "no_aot")]
    aot: Option<PathBuf>,
    /// Attach no precompiled artifacts.
    #[arg(long)]
    no_aot: bool,
    #[command(flatten)]
    registry: RegistryArgs,
    /// Print the result as JSON.
    #[arg(long)]
    json: bool,
}

pub fn run(args: Args, printer: &Printer) -> Result<Outcome> {
    let given = args
        .reference
        .as_deref()
        .map(Reference::parse)
        .transpose()?;
    let wasm = read_input(&args.file)?;
    let kind = WasmKind::sniff(&wasm).with_context(|| {
        format!(
            "`{}` is not a wasm module or component",
            args.file.display()
        )
    })?;
    // Three things at once: the layer's digest (SHA-256 of the whole
    // file), the component's metadata and surface, and, when the
    // destination is a registry, opening and authenticating to it (a local
    // layout is opened after, so a bad input leaves no layout behind).
    let early = given
        .as_ref()
        .filter(|r| matches!(r, Reference::Registry { .. }));
    let (digest, surface, early_store) = std::thread::scope(|s| {
        let digest = s.spawn(|| {
            kiln_oci::artifact::Descriptor::of(kiln_oci::artifact::WASM_LAYER_MEDIA_TYPE, &wasm)
        });
        let store = early.map(|r| {
            s.spawn(|| {
                let reference = with_default_tag(r.clone());
                let store = args.registry.options().open(&reference, true, printer)?;
                store.prepare_push()?;
                anyhow::Ok((reference, store))
            })
        });
        let surface = kiln_inspect::surface(&wasm)
            .with_context(|| format!("failed to read `{}`", args.file.display()));
        let joined = |e| anyhow::anyhow!("a worker thread of `kiln push` panicked: {e:?}");
        let digest = digest.join().map_err(joined);
        let store = store.map(|t| t.join().map_err(joined));
        (digest, surface, store)
    });
    let descriptor = digest?;
    let surface = surface?;
    let metadata = image_metadata(&surface);
    let stem = args
        .file
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "component".to_string());
    let (reference, store) = match early_store {
        Some(opened) => opened??,
        None => {
            let reference = with_default_tag(match given {
                Some(r) => r,
                None => default_reference(&metadata, &stem)?,
            });
            let store = args.registry.options().open(&reference, true, printer)?;
            (reference, store)
        }
    };
    let info = (kind == WasmKind::Component).then(|| ComponentInfo {
        imports: surface.imports.clone(),
        exports: surface.exports.clone(),
        target: None,
    });
    let created = kiln_oci::artifact::created(std::env::var("SOURCE_DATE_EPOCH").ok().as_deref())?;
    // The layer streams from the file when pushed; stdin is held in memory.
    let layer = if args.file.as_os_str() == "-" {
        kiln_oci::artifact::Blob {
            descriptor,
            data: kiln_oci::artifact::BlobData::Bytes(wasm.into_vec()),
        }
    } else {
        // Described from the bytes already read; the file must not change
        // before it streams out: a registry checks the digest of what it
        // receives, a layout's copy is hashed again as it is written.
        drop(wasm);
        kiln_oci::artifact::Blob {
            descriptor,
            data: kiln_oci::artifact::BlobData::File(args.file.clone()),
        }
    };
    let package = kiln_oci::wasm_package(layer, info, &metadata, &created)?;
    let attachments = if args.no_aot {
        Vec::new()
    } else {
        let dir = match &args.aot {
            Some(d) => d.clone(),
            None => crate::ops::dir_of(&args.file),
        };
        let layer_digest = package.blobs[1].descriptor.digest.clone();
        precompiled(
            &dir,
            &stem,
            &layer_digest,
            &package.descriptor,
            &created,
            args.aot.is_some(),
            printer,
        )?
    };
    let pushed = store.push(&reference, &package, &attachments, printer)?;
    printer.status(
        "Uploaded",
        &format!(
            "{} of blobs{}",
            human_size(pushed.uploaded_bytes),
            if pushed.uploaded_bytes == 0 {
                " (everything was there already)"
            } else {
                ""
            }
        ),
    );
    if args.json {
        printer.json(&pushed)?;
    } else {
        let mut text = format!("{}\n", pushed.reference);
        for r in &pushed.referrers {
            text.push_str(&format!(
                "{}\t{}\n",
                r.target.as_deref().unwrap_or("referrer"),
                reference.with_digest(&r.digest)
            ));
        }
        printer.data(&text)?;
    }
    Ok(Outcome::Ok)
}

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
fn precompiled(
    dir: &Path,
    stem: &str,
    source_digest: &str,
    subject: &kiln_oci::artifact::Descriptor,
    created: &str,
    explicit: bool,
    printer: &Printer,
) -> Result<Vec<kiln_oci::Package>> {
    let mut out = Vec::new();
    for target in kiln_aot::TARGETS {
        let path = kiln_aot::ArtifactFiles::new(dir, stem, target).cwasm;
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        if !path.is_file() {
            continue;
        }
        let Some(descriptor) = super::compile::descriptor_beside(&path)? else {
            printer.warn(&format!(
                "`{}` has no descriptor beside it; not attached",
                path.display()
            ));
            continue;
        };
        if descriptor.source_digest != source_digest {
            printer.warn(&format!(
                "`{}` was compiled from another wasm ({}); not attached — run `kiln compile` again",
                path.display(),
                descriptor.source_digest
            ));
            continue;
        }
        let cwasm =
            std::fs::read(&path).with_context(|| format!("failed to read `{}`", path.display()))?;
        if kiln_core::Digest::of(&cwasm).to_string() != descriptor.artifact_digest {
            printer.warn(&format!(
                "`{}` does not match its descriptor; not attached",
                path.display()
            ));
            continue;
        }
        let json = std::fs::read(format!("{}.json", path.display()))?;
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
fn with_default_tag(reference: Reference) -> Reference {
    if reference.tag().is_none() && reference.digest().is_none() {
        reference.with_tag("latest")
    } else {
        reference
    }
}
