//! `kiln compile`: precompiled Wasmtime artifacts per target, and `--check` for where one loads.
//!
//! `kiln compile`: ahead-of-time precompiled Wasmtime artifacts per target,
//! with descriptors, a cache, and `--check` for where an artifact loads.

use crate::ops::read_input;
use crate::outcome::Outcome;
use crate::output::Printer;
use anyhow::{Context, Result, bail};
use kiln_aot::{Cpu, OptLevel, Settings};
use kiln_core::{Digest, Target};
use serde::Serialize;
use std::path::PathBuf;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

/// Precompile a component or module for one or more targets.
#[derive(clap::Args, Debug)]
#[command(
    after_help = "Exit status: 0 on success (with --check: the artifact loads here), \
1 with --check when it does not load here, 2 on error (with --check: not a Wasmtime artifact)."
)]
pub struct Args {
    /// The .wasm to compile, or with --check the .cwasm to check.
    #[arg(value_name = "FILE")]
    file: PathBuf,
    /// Target triples (repeatable), or `all`; default: this host's.
    #[arg(long = "target", value_name = "TRIPLE")]
    targets: Vec<String>,
    /// CPU features: `baseline` (portable, the default), `native` (this
    /// machine's CPU; host target only), or comma-separated Cranelift
    /// presets and features of the target, e.g. `x86-64-v3`, `haswell`,
    /// `avx2,bmi2`, `lse`.
    #[arg(long, value_name = "CPU", default_value = "baseline")]
    cpu: String,
    /// Switch wasm proposals against Wasmtime's defaults (repeatable,
    /// comma-separated): `NAME`, `NAME=y` or `NAME=n`, e.g. `simd=n`.
    #[arg(long = "wasm", value_name = "NAME[=y|n]")]
    wasm_features: Vec<String>,
    /// Output directory (default: the input's directory).
    #[arg(short, long, value_name = "DIR")]
    output: Option<PathBuf>,
    /// Cranelift optimization level: none, speed (default), speed-and-size.
    #[arg(long, value_name = "LEVEL", default_value = "speed")]
    opt_level: String,
    /// Virtual memory reserved per linear memory, in bytes (default: Wasmtime's).
    #[arg(long, value_name = "BYTES")]
    memory_reservation: Option<u64>,
    /// Guard region after each linear memory, in bytes (default: Wasmtime's).
    #[arg(long, value_name = "BYTES")]
    memory_guard_size: Option<u64>,
    /// Compile in epoch-based interruption.
    #[arg(long)]
    epoch_interruption: bool,
    /// Compile in fuel metering.
    #[arg(long)]
    fuel: bool,
    /// Neither read nor fill the artifact cache.
    #[arg(long)]
    no_cache: bool,
    /// Check where FILE (a .cwasm) loads instead of compiling.
    #[arg(long)]
    check: bool,
    /// With --check: the Wasmtime version of the engine that will load it.
    #[arg(long, value_name = "VERSION", requires = "check")]
    engine_version: Option<String>,
    /// Print the results as JSON.
    #[arg(long)]
    json: bool,
}

#[derive(Serialize)]
struct Output {
    target: Target,
    path: PathBuf,
    descriptor_path: PathBuf,
    digest: Digest,
    size: u64,
    cached: bool,
}

pub fn run(args: Args, printer: &Printer) -> Result<Outcome> {
    if args.check {
        return check(&args, printer);
    }
    let wasm = read_input(&args.file)?;
    kiln_core::WasmKind::sniff(&wasm).with_context(|| {
        format!(
            "`{}` is not a wasm module or component",
            args.file.display()
        )
    })?;
    let named: Vec<Result<Target>> = if args.targets.iter().any(|t| t == "all") {
        Target::ALL.iter().copied().map(Ok).collect()
    } else if args.targets.is_empty() {
        vec![Ok(Target::host())]
    } else {
        args.targets.iter().map(|t| Target::parse(t)).collect()
    };
    let cpu: Cpu = args.cpu.parse()?;
    let settings = settings(&args)?;
    // Check every target before compiling any; each is parsed where the
    // engine for it is checked, after the other flags, so the first
    // problem reported is the same.
    let targets = named
        .into_iter()
        .map(|t| {
            let t = t?;
            kiln_aot::engine_config(t, &cpu, &settings)?;
            Ok(t)
        })
        .collect::<Result<Vec<Target>>>()?;
    let cache = (!args.no_cache)
        .then(kiln_core::cache_dir)
        .flatten()
        .map(|d| d.join("aot"));
    let dir = match &args.output {
        Some(d) => d.clone(),
        None => crate::ops::dir_of(&args.file),
    };
    let stem = args
        .file
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "stdin".to_string());

    let results = compile_all(&wasm, &targets, &cpu, &settings, cache.as_deref())?;
    let mut outputs = Vec::new();
    for (&target, result) in targets.iter().zip(results) {
        let artifact = result?;
        let files = crate::ops::write_precompiled(&dir, &stem, target, &artifact, printer)?;
        outputs.push(Output {
            target,
            path: files.cwasm,
            descriptor_path: files.descriptor,
            digest: artifact.descriptor.artifact_digest,
            size: artifact.descriptor.artifact_size,
            cached: artifact.cached,
        });
    }
    if args.json {
        printer.json(&outputs)?;
    } else {
        let text: String = outputs
            .iter()
            .map(|o| format!("{}\t{}\t{}\n", o.target, o.path.display(), o.digest))
            .collect();
        printer.data(&text)?;
    }
    Ok(Outcome::Ok)
}

/// The engine settings the flags ask for.
fn settings(args: &Args) -> Result<Settings> {
    let mut settings = Settings {
        opt_level: match args.opt_level.as_str() {
            "none" => OptLevel::None,
            "speed" => OptLevel::Speed,
            "speed-and-size" => OptLevel::SpeedAndSize,
            other => bail!("`--opt-level {other}` is not one of none, speed, speed-and-size"),
        },
        memory_reservation: args.memory_reservation,
        memory_guard_size: args.memory_guard_size,
        epoch_interruption: args.epoch_interruption,
        fuel: args.fuel,
        wasm_features: Default::default(),
    };
    for spec in &args.wasm_features {
        settings.parse_wasm_features(spec)?;
    }
    Ok(settings)
}

/// Compiles `wasm` for every target, in parallel, at most one target per
/// core (each compile is itself parallel inside Wasmtime); the results are
/// in the order of `targets`.
fn compile_all(
    wasm: &[u8],
    targets: &[Target],
    cpu: &Cpu,
    settings: &Settings,
    cache: Option<&std::path::Path>,
) -> Result<Vec<Result<kiln_aot::Artifact>>> {
    let workers = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(targets.len());
    let next = AtomicUsize::new(0);
    let results: Mutex<Vec<(usize, Result<kiln_aot::Artifact>)>> = Mutex::new(Vec::new());
    std::thread::scope(|s| {
        for _ in 0..workers {
            s.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Ordering::SeqCst);
                    let Some(&target) = targets.get(i) else { break };
                    let result = kiln_aot::compile(wasm, target, cpu, settings, cache);
                    if let Ok(mut r) = results.lock() {
                        r.push((i, result));
                    }
                }
            });
        }
    });
    let mut results = results
        .into_inner()
        .map_err(|_| anyhow::anyhow!("internal error: a compile thread panicked"))?;
    results.sort_by_key(|(i, _)| *i);
    Ok(results.into_iter().map(|(_, r)| r).collect())
}

fn check(args: &Args, printer: &Printer) -> Result<Outcome> {
    let bytes = read_input(&args.file)?;
    let descriptor = kiln_aot::ArtifactFiles::at(args.file.clone()).read_descriptor()?;
    let report = kiln_aot::check(&bytes, descriptor.as_ref(), args.engine_version.as_deref())
        .with_context(|| format!("failed to check `{}`", args.file.display()))?;
    if args.json {
        printer.json(&report)?;
    } else {
        let mut text = crate::render::render_checks(&report);
        text.push_str(if report.loads {
            "loads on this host with the default engine\n"
        } else {
            "does not load on this host with the default engine\n"
        });
        printer.data(&text)?;
    }
    Ok(if report.loads {
        Outcome::Ok
    } else {
        Outcome::Problems
    })
}
