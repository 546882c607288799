//! `kiln validate`: checks core modules and components against the wasm and component-model specifications.

use crate::ops::read_input;
use crate::outcome::Outcome;
use crate::output::Printer;
use anyhow::Result;
use kiln_component::WasmFeatures;
use kiln_core::{Reporter, WasmKind};
use serde::Serialize;
use std::path::PathBuf;

/// Validate wasm modules and components.
#[derive(clap::Args, Debug)]
#[command(
    after_help = "Exit status: 0 when every file is valid, 1 when any is invalid, 2 on error \
(e.g. a file that cannot be read)."
)]
pub struct Args {
    /// Files to validate (`-` reads stdin).
    #[arg(required = true, value_name = "FILE")]
    files: Vec<PathBuf>,
    /// Accept every wasm proposal wasmparser knows, not only the standard ones.
    #[arg(long)]
    all_features: bool,
    /// Print the results as JSON on stdout.
    #[arg(long)]
    json: bool,
}

/// One file's result in `--json` output.
#[derive(Serialize)]
struct FileResult {
    path: PathBuf,
    valid: bool,
    kind: Option<WasmKind>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<ErrorAt>,
}

#[derive(Serialize)]
struct ErrorAt {
    offset: usize,
    message: String,
}

#[derive(Serialize)]
struct Results {
    valid: bool,
    files: Vec<FileResult>,
}

pub fn run(args: Args, printer: &Printer) -> Result<Outcome> {
    let features = if args.all_features {
        WasmFeatures::all()
    } else {
        WasmFeatures::default()
    };
    let bar = printer.progress(args.files.len() as u64, "Validating");
    let mut results = Vec::with_capacity(args.files.len());
    for path in &args.files {
        bar.set_message(path.display().to_string());
        let bytes = read_input(path)?;
        let kind = WasmKind::sniff(&bytes);
        let outcome = kiln_component::validate_with(&bytes, features);
        bar.inc(1);
        match &outcome {
            Ok(()) => bar.suspend(|| {
                printer.status(
                    "Valid",
                    &format!(
                        "{} ({})",
                        path.display(),
                        kind.map_or("wasm".to_string(), |k| k.to_string())
                    ),
                )
            }),
            Err(e) => bar.suspend(|| printer.warn(&crate::render::invalid_message(path, e))),
        }
        results.push(FileResult {
            path: path.clone(),
            valid: outcome.is_ok(),
            kind,
            error: outcome.err().map(|e| ErrorAt {
                offset: e.offset,
                message: e.message,
            }),
        });
    }
    bar.finish_and_clear();
    let valid = results.iter().all(|r| r.valid);
    if args.json {
        printer.json(&Results {
            valid,
            files: results,
        })?;
    }
    Ok(if valid {
        Outcome::Ok
    } else {
        Outcome::Problems
    })
}
