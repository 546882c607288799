//! `kiln doctor`: the toolchains and adapters kiln can use, and what is missing.
//!
//! `kiln doctor`: lists the toolchains kiln can use, their versions and paths,
//! the adapters kiln embeds, and what is missing.

use crate::outcome::Outcome;
use crate::output::{Printer, human_size};
use anyhow::Result;
use kiln_build::doctor::ToolStatus;
use kiln_core::Digest;
use serde::Serialize;
use std::fmt::Write as _;

/// Show the toolchains kiln can use and what is missing.
#[derive(clap::Args, Debug)]
#[command(after_help = "Exit status: 0 when every toolchain is usable, 1 when any is missing.")]
pub struct Args {
    /// Print the report as JSON on stdout.
    #[arg(long)]
    json: bool,
}

#[derive(Serialize)]
struct AdapterInfo {
    name: &'static str,
    /// The Wasmtime release the adapter comes from.
    wasmtime_version: &'static str,
    size: usize,
    digest: Digest,
}

#[derive(Serialize)]
struct Report {
    kiln_version: &'static str,
    toolchains: Vec<ToolStatus>,
    adapters: Vec<AdapterInfo>,
    missing: Vec<String>,
}

pub fn run(args: Args, printer: &Printer) -> Result<Outcome> {
    let toolchains = kiln_build::doctor::check();
    let adapters = kiln_component::embedded_adapters()
        .into_iter()
        .map(|(adapter, bytes)| AdapterInfo {
            name: adapter.name(),
            wasmtime_version: kiln_component::ADAPTER_WASMTIME_VERSION,
            size: bytes.len(),
            digest: Digest::of(bytes),
        })
        .collect();
    let missing = toolchains
        .iter()
        .filter(|t| !t.ok)
        .map(|t| t.name.clone())
        .collect::<Vec<_>>();
    let report = Report {
        kiln_version: env!("CARGO_PKG_VERSION"),
        toolchains,
        adapters,
        missing,
    };
    if args.json {
        printer.json(&report)?;
    } else {
        let mut out = String::new();
        for t in &report.toolchains {
            let mark = if t.ok { "ok" } else { "missing" };
            let _ = writeln!(out, "{:<7} {}", mark, t.name);
            if let Some(v) = &t.version {
                let _ = writeln!(out, "        version: {v}");
            }
            if let Some(p) = &t.path {
                let _ = writeln!(out, "        path:    {}", p.display());
            }
            if let Some(d) = &t.detail {
                let _ = writeln!(out, "        {}", d);
            }
            if let Some(i) = &t.install {
                let _ = writeln!(out, "        install: {i}");
            }
        }
        for a in &report.adapters {
            let _ = writeln!(
                out,
                "adapter {} (wasmtime {}, {}, {})",
                a.name,
                a.wasmtime_version,
                human_size(a.size as u64),
                a.digest
            );
        }
        printer.data(&out)?;
    }
    Ok(if report.missing.is_empty() {
        Outcome::Ok
    } else {
        Outcome::Problems
    })
}
