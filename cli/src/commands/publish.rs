//! `kiln publish`: build, check, precompile, push and sign in one command, with one receipt.
//!
//! `kiln publish`: build, validate, audit, precompile, push (component,
//! precompiled artifacts, SBOM) and sign in one command, with one receipt.

use super::args::{BuildFlags, RegistryArgs};
use crate::ops::publish;
use crate::outcome::Outcome;
use crate::output::Printer;
use anyhow::Result;
use std::path::PathBuf;

/// Build, audit, precompile, push and sign a project in one step.
#[derive(clap::Args, Debug)]
#[command(after_help = "\
Stages: build → validate → audit → compile → push (component, precompiled artifacts, \
SBOM) → sign. Nothing is pushed when build, validation or audit fails. Defaults come from \
kiln.toml ([publish] to, [audit], [compile] targets/cpu, [sign] key/format) or, for Rust, from \
[package.metadata.kiln] in Cargo.toml; flags override them.

Without --to (or [publish] to) the component goes to the local OCI layout \
target/kiln/oci/NAME under the project, tagged with its version. The receipt is written \
to target/kiln/receipt.json (docs/receipt.md). --target-dir (or KILN_TARGET_DIR) moves \
target/ elsewhere.

Exit status: 0 published, 1 the audit found problems (nothing was pushed), 2 on error.")]
pub struct Args {
    /// The project directory or manifest.
    #[arg(default_value = ".")]
    path: PathBuf,
    /// Where to publish: REGISTRY/REPO[:TAG], oci:DIR[:TAG] or NAME[:TAG].
    #[arg(long, value_name = "REF")]
    to: Option<String>,
    /// The audit policy: a file or `builtin:NAME` (default: kiln.toml's `[audit]`).
    #[arg(long, value_name = "POLICY")]
    policy: Option<String>,
    /// Targets to precompile for (repeatable), `all`, or `none` (default:
    /// `[compile] targets`, else this host's).
    #[arg(long = "target", value_name = "TRIPLE")]
    targets: Vec<String>,
    /// CPU features of the precompiled artifacts (default `[compile] cpu`, else `baseline`).
    #[arg(long, value_name = "CPU")]
    cpu: Option<String>,
    /// The private key to sign with (default: `[sign] key`).
    #[arg(long, value_name = "FILE", conflicts_with = "no_sign")]
    key: Option<PathBuf>,
    /// The signature format (default: `[sign] format`, else `bundle`):
    /// `bundle` as cosign v3 signs, `legacy` for the `.sig` tag.
    #[arg(long, value_name = "FORMAT", conflicts_with = "no_sign")]
    sign_format: Option<kiln_core::SignatureFormat>,
    /// Do not sign, even when a key is configured.
    #[arg(long)]
    no_sign: bool,
    /// Make no SBOM.
    #[arg(long)]
    no_sbom: bool,
    /// Do everything but push and sign.
    #[arg(long)]
    dry_run: bool,
    /// Record when the build started and finished in its provenance
    /// (left out by default, so the same inputs give the same provenance).
    #[arg(long)]
    provenance_times: bool,
    /// Where to write the receipt (default: `<target dir>/kiln/receipt.json`).
    #[arg(long, value_name = "FILE")]
    receipt: Option<PathBuf>,
    /// The wasm target of Rust builds (wasm32-wasip2 or wasm32-wasip1).
    #[arg(long, value_name = "TRIPLE")]
    wasm_target: Option<String>,
    #[command(flatten)]
    flags: BuildFlags,
    #[command(flatten)]
    registry: RegistryArgs,
    /// Print one JSON event per line while running, and the receipt last.
    #[arg(long)]
    json: bool,
}

pub fn run(args: Args, printer: &Printer) -> Result<Outcome> {
    let request = publish::Request {
        build: args.flags.options(args.wasm_target)?,
        registry: args.registry.options(),
        path: args.path,
        to: args.to,
        policy: args.policy,
        targets: args.targets,
        cpu: args.cpu,
        key: args.key,
        no_sign: args.no_sign,
        provenance_times: args.provenance_times,
        sign_format: args.sign_format,
        no_sbom: args.no_sbom,
        dry_run: args.dry_run,
        receipt: args.receipt,
        json: args.json,
    };
    Ok(match publish::run(&request, printer)? {
        publish::Ended::Published => Outcome::Ok,
        publish::Ended::FailedAudit => Outcome::Problems,
    })
}
