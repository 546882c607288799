//! `kiln build`: builds a project into a validated component with its package metadata embedded.

use super::args::BuildFlags;
use crate::ops::build::{Timings, build_component};
use crate::outcome::Outcome;
use crate::output::{Printer, human_size};
use anyhow::Result;
use kiln_component::Adapter;
use kiln_core::{Digest, Lang, WasmKind};
use serde::Serialize;
use std::path::PathBuf;

/// Build a Rust, C or Go project into a wasm32-wasip2 component.
#[derive(clap::Args, Debug)]
#[command(after_help = "Exit status: 0 when the component was built, 2 on any error.")]
pub struct Args {
    /// The project directory or manifest (default: the current directory).
    #[arg(default_value = ".")]
    path: PathBuf,
    /// Where to write the component (default: `<target dir>/kiln/<name>.wasm`).
    #[arg(short, long, value_name = "FILE")]
    output: Option<PathBuf>,
    /// The wasm target: wasm32-wasip2 (a component directly) or wasm32-wasip1
    /// (a core module that kiln componentizes with the WASI adapter). Rust only.
    #[arg(long, value_name = "TRIPLE")]
    target: Option<String>,
    #[command(flatten)]
    flags: BuildFlags,
    /// Print the summary as JSON on stdout.
    #[arg(long)]
    json: bool,
}

/// The `--json` summary of a build; documented in docs/cli.md.
#[derive(Serialize)]
struct Summary {
    path: PathBuf,
    size: u64,
    digest: Digest,
    kind: WasmKind,
    world: kiln_inspect::Surface,
    language: Lang,
    package: String,
    version: Option<String>,
    adapter: Option<Adapter>,
    toolchain_output: PathBuf,
    /// The component from an earlier build was kept: the toolchain's output
    /// and everything else it was made from are unchanged.
    reused: bool,
    timings: Timings,
}

pub fn run(args: Args, printer: &Printer) -> Result<Outcome> {
    let options = args.flags.options(args.target)?;
    let out = build_component(&args.path, args.output, &options, printer, None)?;
    let summary = Summary {
        path: out.path,
        size: out.component.len() as u64,
        digest: out.digest,
        kind: WasmKind::Component,
        world: out.surface,
        language: out.project.lang,
        package: out.built.package_name().to_string(),
        version: out.built.metadata.version.clone(),
        adapter: out.adapter,
        toolchain_output: out.built.toolchain_output,
        reused: out.reused,
        timings: out.timings,
    };
    if args.json {
        printer.json(&summary)?;
    } else {
        let names = |v: &[String]| match v.len() {
            0 => "nothing".to_string(),
            1..=3 => v.join(", "),
            n => format!("{}, … ({n} in all)", v[..3].join(", ")),
        };
        printer.data(&format!(
            "path:    {}\nkind:    {}\nsize:    {} ({} bytes)\ndigest:  {}\nexports: {}\nimports: {}\n",
            summary.path.display(),
            summary.kind,
            human_size(summary.size),
            summary.size,
            summary.digest,
            names(&summary.world.exports),
            names(&summary.world.imports),
        ))?;
    }
    Ok(Outcome::Ok)
}
