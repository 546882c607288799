//! `kiln pull`: a Wasm artifact from a registry or a local OCI layout, or with `--target` the precompiled artifact for that machine when one is attached; every byte checked against its digest before anything is written.

use super::args::RegistryArgs;
use crate::outcome::Outcome;
use crate::output::Printer;
use anyhow::{Context, Result, bail};
use kiln_core::Reporter;
use kiln_oci::{Content, Reference};
use serde::Serialize;
use std::path::{Path, PathBuf};

/// Pull a component (or its precompiled artifact) from a registry or a local OCI layout.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// What to pull: REGISTRY/REPO[:TAG][@DIGEST], oci:DIR[:TAG], or NAME[:TAG].
    #[arg(value_name = "REF")]
    reference: String,
    /// Output file, or an existing directory to write into (default: the
    /// current directory, named from the artifact's title).
    #[arg(short, long, value_name = "PATH")]
    output: Option<PathBuf>,
    /// Fetch the precompiled artifact for this triple (`host` for this
    /// machine) when one made by kiln's Wasmtime release is attached;
    /// otherwise the portable component.
    #[arg(long, value_name = "TRIPLE")]
    target: Option<String>,
    /// Verify a signature by this public key (and, for a precompiled
    /// artifact, its own signature from `kiln sign --recursive`) before
    /// writing anything.
    #[arg(long, value_name = "FILE")]
    verify_key: Option<PathBuf>,
    #[command(flatten)]
    registry: RegistryArgs,
    /// Print the result as JSON.
    #[arg(long)]
    json: bool,
}

#[derive(Serialize)]
struct Output {
    path: PathBuf,
    digest: String,
    size: u64,
    manifest_digest: String,
    kind: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    referrer: Option<String>,
}

pub fn run(args: Args, printer: &Printer) -> Result<Outcome> {
    let reference = Reference::parse(&args.reference)?;
    let target = args.target.as_deref().map(|t| {
        if t == "host" {
            kiln_aot::host_triple()
        } else {
            t
        }
    });
    if let Some(t) = target {
        kiln_aot::engine_config(t, &kiln_aot::Cpu::Baseline, &kiln_aot::Settings::default())?;
    }
    let store = args.registry.options().open(&reference, false, printer)?;
    let key = args
        .verify_key
        .as_deref()
        .map(crate::ops::sign::verifier)
        .transpose()?;
    let check = |digest: &str, what: &str| -> Result<()> {
        if let Some(key) = &key {
            let (good, _) = crate::ops::sign::verified_payloads(
                &store,
                digest,
                key,
                &Default::default(),
                printer,
            )?;
            if good.is_empty() {
                anyhow::bail!(
                    "{what} {digest} has no valid signature by `{}`; nothing was written",
                    args.verify_key
                        .as_deref()
                        .unwrap_or(std::path::Path::new("?"))
                        .display()
                );
            }
            printer.status("Verified", &format!("{what} {digest}"));
        }
        Ok(())
    };
    // Verified by digest, then pulled by that digest: a tag that moves in
    // between cannot slip in something unverified.
    let reference = if key.is_some() {
        let digest = store.resolve_digest(&reference)?;
        check(&digest, "the artifact")?;
        reference.with_digest(&digest)
    } else {
        reference
    };
    let major = kiln_aot::WASMTIME_VERSION
        .split('.')
        .next()
        .unwrap_or(kiln_aot::WASMTIME_VERSION);
    let pulled = store.pull(&reference, target, major, printer)?;
    if let Content::Cwasm { digest, .. } = &pulled.content {
        check(digest, "the precompiled artifact")?;
        if key.is_none() {
            printer.warn(&format!(
                "the precompiled artifact {digest} is native code and its signature was not checked; pass `--verify-key` to check it before anything is written"
            ));
        }
    }
    // Output names are kiln's, never the registry's: the stem comes from
    // the artifact's title made safe, the rest is fixed (`STEM.wasm`, or
    // `STEM.TRIPLE.cwasm` with its descriptor).
    let stem = pulled
        .manifest
        .annotations
        .get("org.opencontainers.image.title")
        .and_then(|t| kiln_oci::artifact::safe_file_name(t))
        .map(|t| t.trim_end_matches(".wasm").to_string())
        .filter(|t| !t.is_empty())
        .unwrap_or_else(|| "component".to_string());
    let explicit_file = args.output.as_ref().filter(|p| !p.is_dir());
    let dir = match &args.output {
        Some(p) if p.is_dir() => p.clone(),
        _ => PathBuf::from("."),
    };
    let path = match &pulled.content {
        Content::Wasm => {
            let path = match explicit_file {
                Some(p) => p.clone(),
                None => dir.join(format!("{stem}.wasm")),
            };
            if explicit_file.is_none() && !replaceable_wasm(&path) {
                bail!(
                    "`{}` exists and is not a wasm file; kiln does not replace it — name the output with `-o FILE`, or move it away",
                    path.display()
                );
            }
            kiln_core::fs::write_atomic(&path, &pulled.bytes)
                .with_context(|| format!("failed to write `{}`", path.display()))?;
            path
        }
        Content::Cwasm {
            digest,
            target,
            descriptor_json,
        } => {
            let descriptor = checked_descriptor(descriptor_json, &pulled, target)
                .with_context(|| format!("the precompiled artifact {digest} was not written"))?;
            let files = match explicit_file {
                Some(p) => kiln_aot::ArtifactFiles::at(p.clone()),
                None => kiln_aot::ArtifactFiles::new(&dir, &stem, target),
            };
            if explicit_file.is_none() && !files.replaceable_by(&descriptor) {
                bail!(
                    "`{}` (or its descriptor) exists and is not kiln's precompiled artifact of this component for {target}; kiln does not replace it — name the output with `-o FILE`, or move it away",
                    files.cwasm.display()
                );
            }
            files.write(&pulled.bytes, &descriptor)?;
            files.cwasm
        }
    };
    let referrer = match &pulled.content {
        Content::Cwasm { digest, .. } => Some(digest.clone()),
        Content::Wasm => None,
    };
    printer.status("Pulled", &format!("{reference} to `{}`", path.display()));
    let out = Output {
        digest: pulled.digest.clone(),
        size: pulled.bytes.len() as u64,
        path,
        manifest_digest: pulled.manifest_digest.clone(),
        kind: if referrer.is_some() { "cwasm" } else { "wasm" },
        referrer,
    };
    if args.json {
        printer.json(&out)?;
    } else {
        printer.data(&format!("{}\t{}\n", out.path.display(), out.digest))?;
    }
    Ok(Outcome::Ok)
}

/// Whether a pulled component may replace what is at `path`: nothing, or
/// a wasm binary (an earlier pull or build).
fn replaceable_wasm(path: &Path) -> bool {
    match std::fs::symlink_metadata(path) {
        Err(_) => true,
        Ok(m) if !m.is_file() => false,
        Ok(_) => {
            let mut magic = [0u8; 4];
            std::fs::File::open(path)
                .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut magic))
                .is_ok()
                && &magic == b"\0asm"
        }
    }
}

/// The descriptor a registry sent with a precompiled artifact, parsed and
/// checked against what was pulled: the same target, the artifact's digest
/// and size, and the component it was attached to as its source. Only a
/// descriptor that checks out is written, and kiln writes it itself.
fn checked_descriptor(
    json: &[u8],
    pulled: &kiln_oci::Pulled,
    target: &str,
) -> Result<kiln_aot::Descriptor> {
    let d: kiln_aot::Descriptor = serde_json::from_slice(json)
        .context("its config is not a kiln precompiled-artifact descriptor")?;
    if d.target != target {
        bail!("its descriptor is for `{}`, not `{target}`", d.target);
    }
    if d.artifact_digest != pulled.digest || d.artifact_size != pulled.bytes.len() as u64 {
        bail!(
            "its descriptor describes another artifact ({}, {} bytes)",
            d.artifact_digest,
            d.artifact_size
        );
    }
    if pulled.layer.digest != d.source_digest {
        bail!(
            "its descriptor says it was compiled from {}, not from this component",
            d.source_digest
        );
    }
    Ok(d)
}
