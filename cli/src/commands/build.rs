//! `kiln build`: builds a project into a validated component with its package metadata embedded.

use crate::outcome::Outcome;
use crate::output::{Printer, human_size};
use anyhow::{Context, Result};
use kiln_build::c::COptions;
use kiln_build::go::GoOptions;
use kiln_build::rust::{Profile, RustOptions, TargetChoice};
use kiln_component::Adapter;
use kiln_core::input::Input;
use kiln_core::{Digest, Lang, Reporter, WasmKind};
use serde::Serialize;
use std::path::PathBuf;
use std::time::Instant;

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

/// How to build: the flags `kiln build` and `kiln publish` share.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct BuildFlags {
    /// The package to build in a Cargo workspace.
    #[arg(short, long, value_name = "SPEC")]
    package: Option<String>,
    /// Build the binary with this name.
    #[arg(long, value_name = "NAME", conflicts_with = "lib")]
    bin: Option<String>,
    /// Build the package's library (a `cdylib`).
    #[arg(long)]
    lib: bool,
    /// Build with the release profile.
    #[arg(short, long, conflicts_with = "profile")]
    release: bool,
    /// Build with the named cargo profile.
    #[arg(long, value_name = "NAME")]
    profile: Option<String>,
    /// Features to enable (comma- or space-separated, repeatable).
    #[arg(short = 'F', long, value_name = "FEATURES")]
    features: Vec<String>,
    /// Enable all features.
    #[arg(long)]
    all_features: bool,
    /// Do not enable the default features.
    #[arg(long)]
    no_default_features: bool,
    /// Require Cargo.lock to be up to date.
    #[arg(long)]
    locked: bool,
    /// Build without accessing the network.
    #[arg(long)]
    offline: bool,
    /// The wasm target (`--target` of `kiln build`, `--wasm-target` of
    /// `kiln publish`), set by each command.
    #[arg(skip)]
    pub target: Option<String>,
    /// The clang to compile C with (default: `CC` when it is a clang, then
    /// `WASI_SDK_PATH`, then the newest system clang with a WASI libc).
    #[arg(long, value_name = "CC")]
    cc: Option<String>,
    /// Go build tags (repeatable).
    #[arg(long = "tags", value_name = "TAGS")]
    go_tags: Vec<String>,
    /// Go `-ldflags` (repeatable).
    #[arg(long = "ldflags", value_name = "FLAGS")]
    go_ldflags: Vec<String>,
    /// Keep absolute paths in Go binaries (`-trimpath` is on by default so
    /// builds are reproducible).
    #[arg(long)]
    no_trimpath: bool,
    /// Componentize, embed metadata and validate even when the toolchain's
    /// output is the one the current component was made from.
    #[arg(long)]
    force: bool,
    /// Extra arguments for the language's build tool (after `--`).
    #[arg(last = true, value_name = "ARGS")]
    tool_args: Vec<String>,
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

/// Milliseconds spent in each step. `compiler_ms` is the compiler and
/// linker runs themselves; everything else in `total_ms` is kiln's own work:
/// `setup_ms` finds the toolchain and reads the project (cargo metadata,
/// versions, git revision), then the steps after the compiler.
#[derive(Debug, Clone, Serialize)]
pub struct Timings {
    pub compiler_ms: f64,
    pub setup_ms: f64,
    pub componentize_ms: f64,
    pub metadata_ms: f64,
    pub validate_ms: f64,
    pub write_ms: f64,
    pub total_ms: f64,
}

pub fn ms(since: Instant) -> f64 {
    since.elapsed().as_secs_f64() * 1e3
}

/// A built, validated component, written to its output path.
pub struct BuildOutput {
    /// The project it was built from.
    pub project: kiln_build::Project,
    /// Where the component was written.
    pub path: PathBuf,
    /// The component's bytes.
    pub component: Input,
    /// Their digest.
    pub digest: Digest,
    /// Its top-level imports, exports and metadata.
    pub surface: kiln_inspect::Surface,
    /// The WASI adapter used, when the toolchain made a core module.
    pub adapter: Option<Adapter>,
    /// The driver's result; its `wasm` is the toolchain's core module for
    /// Go (whose SBOM is read from it) and empty otherwise.
    pub built: kiln_build::Built,
    /// Whether the component of an earlier build was kept (see
    /// `kiln_build::stamp`).
    pub reused: bool,
    /// Milliseconds spent in each step.
    pub timings: Timings,
}

/// Called with the component's final bytes and where it will be written,
/// before it is validated: work that reads the component (precompiling)
/// can start while it is checked. That work must not publish anything
/// until [`build_component`] has returned it valid.
pub type OnComponent<'a> = &'a (dyn Fn(&[u8], &std::path::Path) + Sync);

/// Builds the project at `path` into a validated component written to
/// `output` (default `<target dir>/kiln/<name>.wasm`).
pub fn build_component(
    path: &std::path::Path,
    output: Option<PathBuf>,
    flags: &BuildFlags,
    printer: &dyn Reporter,
    on_component: Option<OnComponent<'_>>,
) -> Result<BuildOutput> {
    let started = Instant::now();
    let project = kiln_build::discover(path)?;
    check_flags(flags, project.lang)?;
    let flags = flags.clone();
    let rust = RustOptions {
        package: flags.package,
        target: match (flags.bin, flags.lib) {
            (Some(bin), _) => TargetChoice::Bin(bin),
            (None, true) => TargetChoice::Lib,
            (None, false) => TargetChoice::Auto,
        },
        profile: match (flags.release, flags.profile) {
            (true, _) => Profile::Release,
            (false, Some(p)) => Profile::Named(p),
            (false, None) => Profile::Dev,
        },
        features: flags.features,
        all_features: flags.all_features,
        no_default_features: flags.no_default_features,
        locked: flags.locked,
        offline: flags.offline,
        triple: flags.target,
        cargo_args: flags.tool_args.clone(),
    };
    let toolchain_started = Instant::now();
    let mut built = match project.lang {
        Lang::Rust => kiln_build::rust::build(&project.manifest, &rust, printer)?,
        Lang::C => {
            let opts = COptions {
                cc: flags.cc,
                release: flags.release,
                tool_args: flags.tool_args,
            };
            kiln_build::c::build(&project, &opts, printer)?
        }
        Lang::Go => {
            let opts = GoOptions {
                tags: flags.go_tags,
                ldflags: flags.go_ldflags,
                no_trimpath: flags.no_trimpath,
                go_args: flags.tool_args,
            };
            kiln_build::go::build(&project, &opts, printer)?
        }
    };

    let driver_ms = ms(toolchain_started);
    let compiler_ms = built.compile_time.as_secs_f64() * 1e3;
    let path = output.unwrap_or_else(|| built.default_output());
    let adapter = (built.kind == WasmKind::CoreModule).then_some(if built.is_program {
        Adapter::Command
    } else {
        Adapter::Reactor
    });
    // Everything the component is made from besides the toolchain output.
    let settings = (
        built.kind,
        built.is_program,
        &built.metadata,
        built
            .embed_world
            .as_ref()
            .map(|w| (kiln_build::stamp::tree_digest(&w.path), &w.world)),
        built.prepare.is_some(),
    );
    let key = kiln_build::stamp::key(&built.wasm, &settings);
    // Go's SBOM is read from its core module, which is kept.
    let keep_core = matches!(built.sbom, kiln_build::sbom::SbomSource::Go { .. });
    if !flags.force
        && let Some(key) = &key
        && let Some((digest, warnings)) = kiln_build::stamp::fresh(&built.target_dir, &path, key)
        && let Ok(component) = Input::read(&path)
        && let Ok(surface) = kiln_inspect::surface(&component)
    {
        for warning in &warnings {
            printer.warn(warning);
        }
        if let Some(f) = on_component {
            f(&component, &path);
        }
        if !keep_core {
            built.wasm = Input::default();
        }
        printer.status(
            "Fresh",
            &format!("`{}` (the toolchain's output is unchanged)", path.display()),
        );
        return Ok(BuildOutput {
            project,
            path,
            component,
            digest,
            surface,
            adapter,
            built,
            reused: true,
            timings: Timings {
                compiler_ms,
                setup_ms: driver_ms - compiler_ms,
                componentize_ms: 0.0,
                metadata_ms: 0.0,
                validate_ms: 0.0,
                write_ms: 0.0,
                total_ms: ms(started),
            },
        });
    }
    let step = Instant::now();
    // A fix-up the toolchain's core module needs first (Go: an allocator
    // for the adapter).
    let prepared = match built.prepare {
        Some(prepare) => Some(prepare(&built.wasm).with_context(|| {
            format!(
                "failed to prepare `{}` for the WASI adapter",
                built.toolchain_output.display()
            )
        })?),
        None => None,
    };
    let component = match built.kind {
        WasmKind::Component => std::mem::take(&mut built.wasm),
        WasmKind::CoreModule => {
            let module = match (&built.embed_world, prepared) {
                (Some(world), prepared) => {
                    let (resolve, id) = world.resolve()?;
                    kiln_component::check_scalar_world(&resolve, id).with_context(|| {
                        format!(
                            "`{}` cannot be built from {} through a core module",
                            world.path.display(),
                            project.lang
                        )
                    })?;
                    let core = prepared.as_deref().unwrap_or(&built.wasm);
                    Input::Owned(kiln_component::embed_world(core, &resolve, id)?)
                }
                (None, Some(prepared)) => Input::Owned(prepared),
                (None, None) if keep_core => built.wasm.clone(),
                (None, None) => std::mem::take(&mut built.wasm),
            };
            let adapter = adapter.unwrap_or(Adapter::Command);
            printer.status(
                "Componentizing",
                &format!("{} with the {} adapter", built.name, adapter.name()),
            );
            let component = kiln_component::componentize(&module, adapter).with_context(|| {
                format!(
                    "failed to componentize `{}`",
                    built.toolchain_output.display()
                )
            })?;
            Input::Owned(component)
        }
    };
    if !keep_core {
        built.wasm = Input::default();
    }
    let componentize_ms = ms(step);
    let step = Instant::now();
    let (component, warnings) = kiln_component::embed_metadata(&component, &built.metadata)?;
    for warning in &warnings {
        printer.warn(warning);
    }
    let metadata_ms = ms(step);
    let step = Instant::now();
    // Validation, hashing, reading the top-level names and writing the file
    // (not yet in place) are independent: the validator uses every core for
    // function bodies meanwhile, and the file is moved into place only once
    // the component is known to be valid.
    if let Some(f) = on_component {
        f(&component, &path);
    }
    let (valid, digest, surface, staged) = std::thread::scope(|s| {
        let validation = s.spawn(|| kiln_component::validate(&component));
        // An output already holding these bytes is left as it is.
        let staged = s.spawn(|| {
            if kiln_core::fs::holds(&path, &component) {
                return Ok(None);
            }
            kiln_core::fs::Staged::write(&path, &component).map(Some)
        });
        let digest = Digest::of(&component);
        let surface = kiln_inspect::surface(&component);
        (validation.join(), digest, surface, staged.join())
    });
    valid
        .map_err(|_| anyhow::anyhow!("internal error: validation panicked"))?
        .with_context(|| {
            format!(
                "the component built from `{}` is not valid; this is a bug in kiln or the toolchain",
                built.toolchain_output.display()
            )
        })?;
    let surface = surface?;
    let staged = staged.map_err(|_| anyhow::anyhow!("internal error: writing panicked"))??;

    let validate_ms = ms(step);
    let step = Instant::now();
    if let Some(staged) = staged {
        kiln_build::stamp::forget(&built.target_dir, &path);
        staged.commit()?;
    }
    if let Some(key) = &key {
        kiln_build::stamp::record(&built.target_dir, &path, key, &digest, &warnings);
    }
    let write_ms = ms(step);
    printer.status("Created", &format!("`{}`", path.display()));
    Ok(BuildOutput {
        project,
        path,
        component: Input::Owned(component),
        digest,
        surface,
        adapter,
        built,
        reused: false,
        timings: Timings {
            compiler_ms,
            setup_ms: driver_ms - compiler_ms,
            componentize_ms,
            metadata_ms,
            validate_ms,
            write_ms,
            total_ms: ms(started),
        },
    })
}

pub fn run(mut args: Args, printer: &Printer) -> Result<Outcome> {
    args.flags.target = args.target.take();
    let out = build_component(&args.path, args.output, &args.flags, printer, None)?;
    let summary = Summary {
        path: out.path,
        size: out.component.len() as u64,
        digest: out.digest,
        kind: WasmKind::Component,
        world: out.surface,
        language: out.project.lang,
        package: out.built.metadata.name.clone(),
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

/// Refuses flags that mean nothing for the project's language, rather than
/// silently ignoring them.
fn check_flags(args: &BuildFlags, lang: Lang) -> Result<()> {
    let given: [(&str, bool, &[Lang]); 14] = [
        ("--package", args.package.is_some(), &[Lang::Rust]),
        ("--bin", args.bin.is_some(), &[Lang::Rust]),
        ("--lib", args.lib, &[Lang::Rust]),
        ("--profile", args.profile.is_some(), &[Lang::Rust]),
        ("--features", !args.features.is_empty(), &[Lang::Rust]),
        ("--all-features", args.all_features, &[Lang::Rust]),
        (
            "--no-default-features",
            args.no_default_features,
            &[Lang::Rust],
        ),
        ("--locked", args.locked, &[Lang::Rust]),
        ("--offline", args.offline, &[Lang::Rust]),
        ("--target", args.target.is_some(), &[Lang::Rust]),
        ("--release", args.release, &[Lang::Rust, Lang::C]),
        ("--cc", args.cc.is_some(), &[Lang::C]),
        (
            "--tags/--ldflags",
            !args.go_tags.is_empty() || !args.go_ldflags.is_empty(),
            &[Lang::Go],
        ),
        ("--no-trimpath", args.no_trimpath, &[Lang::Go]),
    ];
    for (flag, set, langs) in given {
        if set && !langs.contains(&lang) {
            let names: Vec<String> = langs.iter().map(|l| l.to_string()).collect();
            return Err(kiln_core::hinted(
                format!("`{flag}` does not apply to {lang} projects"),
                format!("it is for {} projects; leave it out", names.join(" and ")),
            ));
        }
    }
    Ok(())
}
