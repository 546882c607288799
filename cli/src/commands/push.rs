//! `kiln push`: a component as a CNCF Wasm OCI artifact, with its precompiled artifacts as referrers.
//!
//! `kiln push`: a component (or core module) as a CNCF Wasm OCI artifact, with
//! its precompiled artifacts attached as referrers, to a registry or a local
//! OCI layout.

use super::args::RegistryArgs;
use crate::ops::push;
use crate::outcome::Outcome;
use crate::output::{Printer, human_size};
use anyhow::Result;
use kiln_core::Reporter;
use kiln_oci::Reference;
use std::path::PathBuf;

/// Push a component to an OCI registry or a local OCI layout.
#[derive(clap::Args, Debug)]
#[command(after_help = "\
REF is REGISTRY/REPO[:TAG] (e.g. ghcr.io/acme/hello:1.0), oci:DIR[:TAG] for a local \
OCI image layout, or NAME[:TAG] for the layout target/kiln/oci/NAME ($KILN_TARGET_DIR/kiln/oci/NAME \
when KILN_TARGET_DIR is set). Without REF, kiln \
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
    let request = push::Request {
        reference: args
            .reference
            .as_deref()
            .map(Reference::parse)
            .transpose()?,
        file: args.file,
        aot: args.aot,
        no_aot: args.no_aot,
        registry: args.registry.options(),
    };
    let (reference, pushed) = push::push(&request, printer)?;
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
