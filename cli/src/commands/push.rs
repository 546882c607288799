//! `kiln push`: a component (or core module) as a CNCF Wasm OCI artifact, with its precompiled artifacts attached as referrers, to a registry or a local OCI layout.

use super::args::RegistryArgs;
use crate::ops::push::{default_reference, image_metadata, precompiled, with_default_tag};
use crate::ops::read_input;
use crate::outcome::Outcome;
use crate::output::{Printer, human_size};
use anyhow::{Context, Result};
use kiln_core::{Reporter, WasmKind};
use kiln_oci::{ComponentInfo, Reference};
use std::path::PathBuf;

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
