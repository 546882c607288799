//! `kiln pull`: a Wasm artifact, or the precompiled artifact for a target, checked before it is written.
//!
//! `kiln pull`: a Wasm artifact from a registry or a local OCI layout, or with
//! `--target` the precompiled artifact for that machine when one is attached;
//! every byte checked against its digest before anything is written.

use super::args::RegistryArgs;
use crate::outcome::Outcome;
use crate::output::Printer;
use anyhow::Result;
use kiln_core::{Digest, Reporter, Target};
use kiln_oci::{Content, Reference};
use serde::Serialize;
use std::path::PathBuf;

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
    digest: Digest,
    size: u64,
    manifest_digest: Digest,
    kind: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    referrer: Option<Digest>,
}

pub fn run(args: Args, printer: &Printer) -> Result<Outcome> {
    let reference = Reference::parse(&args.reference)?;
    let target = args
        .target
        .as_deref()
        .map(|t| {
            if t == "host" {
                Ok(Target::host())
            } else {
                Target::parse(t)
            }
        })
        .transpose()?;
    if let Some(t) = target {
        kiln_aot::engine_config(t, &kiln_aot::Cpu::Baseline, &kiln_aot::Settings::default())?;
    }
    let store = args.registry.options().open(&reference, false, printer)?;
    let key = args
        .verify_key
        .as_deref()
        .map(crate::ops::sign::verifier)
        .transpose()?;
    let check = |digest: &Digest, what: &str| -> Result<()> {
        if let Some(key) = &key {
            let judged =
                crate::ops::sign::judge(&store, digest, key, &Default::default(), "", printer)?;
            let good = crate::ops::sign::accepted(&judged);
            if good.is_empty() {
                anyhow::bail!(
                    "{what} {digest} has no valid signature by `{}`; nothing was written",
                    args.verify_key
                        .as_deref()
                        .unwrap_or(std::path::Path::new("?"))
                        .display()
                );
            }
            let formats: std::collections::BTreeSet<_> = good.iter().map(|a| a.format).collect();
            let formats: Vec<&str> = formats.iter().map(|f| f.name()).collect();
            printer.status(
                "Verified",
                &format!("{what} {digest} ({} signature)", formats.join(" and ")),
            );
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
    let path = crate::ops::pull::write(&pulled, args.output.as_deref())?;
    let referrer = match &pulled.content {
        Content::Cwasm { digest, .. } => Some(*digest),
        Content::Wasm => None,
    };
    printer.status("Pulled", &format!("{reference} to `{}`", path.display()));
    let out = Output {
        digest: pulled.digest,
        size: pulled.bytes.len() as u64,
        path,
        manifest_digest: pulled.manifest_digest,
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
