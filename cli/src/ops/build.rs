//! Building a project into a validated component: driver, reuse or componentize, metadata, validate, write.
//!
//! Building a project into a validated component: the language's driver, then
//! either the component an unchanged toolchain output was made from, or
//! componentizing (embedding a WIT world first when needed), metadata,
//! validation and writing.

use super::ms;
use anyhow::{Context, Result};
use kiln_build::c::COptions;
use kiln_build::go::GoOptions;
use kiln_build::rust::{Profile, RustOptions, TargetChoice};
use kiln_build::{Built, Project};
use kiln_component::Adapter;
use kiln_core::input::Input;
use kiln_core::{Digest, Lang, Reporter, WasmKind};
use serde::Serialize;
use std::path::{Path, PathBuf};
use std::time::Instant;

/// How to build: what `kiln build` and `kiln publish` were told, as plain
/// values. Options for another language than the project's are refused.
#[derive(Debug, Clone, Default)]
pub struct BuildOptions {
    /// The package to build in a Cargo workspace.
    pub package: Option<String>,
    /// The binary to build.
    pub bin: Option<String>,
    /// Build the package's library.
    pub lib: bool,
    /// Build with the release profile.
    pub release: bool,
    /// Build with the named cargo profile.
    pub profile: Option<String>,
    /// Cargo features to enable.
    pub features: Vec<String>,
    /// Enable all cargo features.
    pub all_features: bool,
    /// Do not enable the default features.
    pub no_default_features: bool,
    /// Require Cargo.lock to be up to date.
    pub locked: bool,
    /// Update locked Rust dependencies that fail on an unstable WASI
    /// feature (`cargo update -p NAME@VERSION`) and build again.
    pub update_incompatible: bool,
    /// Build without accessing the network.
    pub offline: bool,
    /// The wasm target triple (Rust only).
    pub target: Option<String>,
    /// The clang to compile C with.
    pub cc: Option<String>,
    /// The CMake executable target to build.
    pub cmake_target: Option<String>,
    /// Go build tags.
    pub go_tags: Vec<String>,
    /// Go `-ldflags`.
    pub go_ldflags: Vec<String>,
    /// Keep absolute paths in Go binaries.
    pub no_trimpath: bool,
    /// Make the component again even when the toolchain's output is unchanged.
    pub force: bool,
    /// Where `target/` goes instead of the project's (absolute).
    pub target_dir: Option<PathBuf>,
    /// Extra arguments for the language's build tool.
    pub tool_args: Vec<String>,
}

/// The build settings a provenance records as the build's parameters of
/// `project`: [`settings_json`], and the package directory below the
/// project's root kiln was pointed at (a Go package), when it was.
pub fn provenance_settings(o: &BuildOptions, project: &Project) -> serde_json::Value {
    let mut settings = settings_json(o);
    if let (Some(dir), serde_json::Value::Object(map)) = (&project.package_dir, &mut settings)
        && let Ok(rel) = dir.strip_prefix(&project.root)
    {
        let rel: Vec<String> = rel
            .components()
            .map(|c| c.as_os_str().to_string_lossy().into_owned())
            .collect();
        map.insert("package_dir".to_string(), rel.join("/").into());
    }
    settings
}

/// The build settings a provenance records as the build's parameters:
/// those given, leaving out the defaults, a clang's path and the target
/// directory (facts of the machine, not of the build) and `--force` (which
/// changes no output).
fn settings_json(o: &BuildOptions) -> serde_json::Value {
    let mut m = serde_json::Map::new();
    let mut put = |key: &str, value: serde_json::Value| {
        let empty = match &value {
            serde_json::Value::Null => true,
            serde_json::Value::Bool(b) => !b,
            serde_json::Value::Array(a) => a.is_empty(),
            _ => false,
        };
        if !empty {
            m.insert(key.to_string(), value);
        }
    };
    put("package", o.package.clone().into());
    put("bin", o.bin.clone().into());
    put("lib", o.lib.into());
    put("release", o.release.into());
    put("profile", o.profile.clone().into());
    put("features", o.features.clone().into());
    put("all_features", o.all_features.into());
    put("no_default_features", o.no_default_features.into());
    put("locked", o.locked.into());
    put("update_incompatible", o.update_incompatible.into());
    put("offline", o.offline.into());
    put("target", o.target.clone().into());
    put("cmake_target", o.cmake_target.clone().into());
    put("go_tags", o.go_tags.clone().into());
    put("go_ldflags", o.go_ldflags.clone().into());
    put("no_trimpath", o.no_trimpath.into());
    put("tool_args", o.tool_args.clone().into());
    serde_json::Value::Object(m)
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

/// A built, validated component, written to its output path.
pub struct BuildOutput {
    /// The project it was built from.
    pub project: Project,
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
    pub built: Built,
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
pub type OnComponent<'a> = &'a (dyn Fn(&[u8], &Path) + Sync);

/// Builds the project at `path` into a validated component written to
/// `output` (default `<target dir>/kiln/<name>.wasm`).
pub fn build_component(
    path: &Path,
    output: Option<PathBuf>,
    options: &BuildOptions,
    reporter: &dyn Reporter,
    on_component: Option<OnComponent<'_>>,
) -> Result<BuildOutput> {
    let started = Instant::now();
    let mut project = kiln_build::discover(path)?;
    project.target_dir_override = options.target_dir.clone();
    check_options(options, project.lang)?;
    if project.lang != Lang::Go
        && let Some(main) = project
            .kiln_toml
            .as_ref()
            .and_then(|t| t.build.main.as_ref())
    {
        return Err(kiln_core::hinted(
            format!(
                "`[build] main = \"{}\"` in kiln.toml does not apply to {} projects",
                main.display(),
                project.lang
            ),
            "`main` chooses the package of a Go module; leave it out",
        ));
    }
    let toolchain_started = Instant::now();
    let mut built = drive(&project, options, reporter)?;
    let driver_ms = ms(toolchain_started);
    let compiler_ms = built.compile_time.as_secs_f64() * 1e3;
    let setup_ms = driver_ms - compiler_ms;
    let path = output.unwrap_or_else(|| built.default_output());
    let adapter = (built.kind == WasmKind::CoreModule).then_some(if built.is_program {
        Adapter::Command
    } else {
        Adapter::Reactor
    });
    let key = stamp_key(&built);
    // Go's SBOM is read from its core module, which is kept.
    let keep_core = matches!(built.sbom, kiln_build::sbom::SbomSource::Go { .. });
    if !options.force
        && let Some(key) = &key
        && let Some((digest, component, surface)) = reuse(&built, &path, key, reporter)
    {
        if let Some(f) = on_component {
            f(&component, &path);
        }
        if !keep_core {
            built.wasm = Input::default();
        }
        reporter.status(
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
                setup_ms,
                componentize_ms: 0.0,
                metadata_ms: 0.0,
                validate_ms: 0.0,
                write_ms: 0.0,
                total_ms: ms(started),
            },
        });
    }
    let step = Instant::now();
    let component = componentize(&mut built, project.lang, adapter, keep_core, reporter)?;
    let componentize_ms = ms(step);
    let step = Instant::now();
    let (component, warnings) =
        kiln_component::embed_metadata(&component, &built.metadata, built.language.as_ref())?;
    for warning in &warnings {
        reporter.warn(warning);
    }
    let metadata_ms = ms(step);
    let step = Instant::now();
    if let Some(f) = on_component {
        f(&component, &path);
    }
    let (digest, surface, staged) = validate_and_stage(&component, &path, &built)?;
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
    reporter.status("Created", &format!("`{}`", path.display()));
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
            setup_ms,
            componentize_ms,
            metadata_ms,
            validate_ms,
            write_ms,
            total_ms: ms(started),
        },
    })
}

/// Runs the language's driver: the toolchain's output and what kiln knows
/// about it.
fn drive(project: &Project, options: &BuildOptions, reporter: &dyn Reporter) -> Result<Built> {
    let o = options.clone();
    match project.lang {
        Lang::Rust => {
            let rust = RustOptions {
                package: o.package,
                target: match (o.bin, o.lib) {
                    (Some(bin), _) => TargetChoice::Bin(bin),
                    (None, true) => TargetChoice::Lib,
                    (None, false) => TargetChoice::Auto,
                },
                profile: match (o.release, o.profile) {
                    (true, _) => Profile::Release,
                    (false, Some(p)) => Profile::Named(p),
                    (false, None) => Profile::Dev,
                },
                features: o.features,
                all_features: o.all_features,
                no_default_features: o.no_default_features,
                locked: o.locked,
                offline: o.offline,
                triple: o.target,
                target_dir: o.target_dir,
                cargo_args: o.tool_args,
                update_incompatible: o.update_incompatible,
            };
            kiln_build::rust::build(&project.manifest, &rust, reporter)
        }
        Lang::C => {
            let c = COptions {
                cc: o.cc,
                release: o.release,
                tool_args: o.tool_args,
                cmake_target: o.cmake_target,
            };
            kiln_build::c::build(project, &c, reporter)
        }
        Lang::Go => {
            let go = GoOptions {
                tags: o.go_tags,
                ldflags: o.go_ldflags,
                no_trimpath: o.no_trimpath,
                go_args: o.tool_args,
            };
            kiln_build::go::build(project, &go, reporter)
        }
    }
}

/// The stamp key of everything the component is made from: the toolchain
/// output and the settings besides it.
fn stamp_key(built: &Built) -> Option<String> {
    let settings = (
        built.kind,
        built.is_program,
        &built.metadata,
        &built.language,
        built
            .embed_world
            .as_ref()
            .map(|w| (kiln_build::stamp::tree_digest(&w.path), &w.world)),
        built.prepare.is_some(),
    );
    kiln_build::stamp::key(&built.wasm, &settings)
}

/// The component an earlier build made from the same toolchain output and
/// settings, when it is still at `path` and readable; its warnings are
/// reported again.
fn reuse(
    built: &Built,
    path: &Path,
    key: &str,
    reporter: &dyn Reporter,
) -> Option<(Digest, Input, kiln_inspect::Surface)> {
    let (digest, warnings) = kiln_build::stamp::fresh(&built.target_dir, path, key)?;
    let component = Input::read(path).ok()?;
    let surface = kiln_inspect::surface(&component).ok()?;
    for warning in &warnings {
        reporter.warn(warning);
    }
    Some((digest, component, surface))
}

/// The component before metadata: the toolchain's own, or its core module
/// (fixed up and given its WIT world first when needed) with the WASI
/// adapter. The core module stays in `built.wasm` only when `keep_core`.
fn componentize(
    built: &mut Built,
    lang: Lang,
    adapter: Option<Adapter>,
    keep_core: bool,
    reporter: &dyn Reporter,
) -> Result<Input> {
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
                            "`{}` cannot be built from {lang} through a core module",
                            world.path.display(),
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
            reporter.status(
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
    Ok(component)
}

/// Validates the component while hashing it, reading its top-level names
/// and writing it beside `path` (not yet in place; `None` when `path`
/// already holds these bytes). The validator uses every core for function
/// bodies meanwhile; the file is moved into place only once the component
/// is known to be valid.
fn validate_and_stage(
    component: &[u8],
    path: &Path,
    built: &Built,
) -> Result<(Digest, kiln_inspect::Surface, Option<kiln_core::fs::Staged>)> {
    let (valid, digest, surface, staged) = std::thread::scope(|s| {
        let validation = s.spawn(|| kiln_component::validate(component));
        // An output already holding these bytes is left as it is.
        let staged = s.spawn(|| {
            if kiln_core::fs::holds(path, component) {
                return Ok(None);
            }
            kiln_core::fs::Staged::write(path, component).map(Some)
        });
        let digest = Digest::of(component);
        let surface = kiln_inspect::surface(component);
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
    Ok((digest, surface, staged))
}

/// Refuses options that mean nothing for the project's language, rather
/// than silently ignoring them.
fn check_options(o: &BuildOptions, lang: Lang) -> Result<()> {
    let given: [(&str, bool, &[Lang]); 15] = [
        ("--package", o.package.is_some(), &[Lang::Rust]),
        ("--bin", o.bin.is_some(), &[Lang::Rust]),
        ("--lib", o.lib, &[Lang::Rust]),
        ("--profile", o.profile.is_some(), &[Lang::Rust]),
        ("--features", !o.features.is_empty(), &[Lang::Rust]),
        ("--all-features", o.all_features, &[Lang::Rust]),
        (
            "--no-default-features",
            o.no_default_features,
            &[Lang::Rust],
        ),
        ("--locked", o.locked, &[Lang::Rust]),
        (
            "--update-incompatible",
            o.update_incompatible,
            &[Lang::Rust],
        ),
        ("--offline", o.offline, &[Lang::Rust]),
        ("--target", o.target.is_some(), &[Lang::Rust]),
        ("--release", o.release, &[Lang::Rust, Lang::C]),
        ("--cc", o.cc.is_some(), &[Lang::C]),
        (
            "--tags/--ldflags",
            !o.go_tags.is_empty() || !o.go_ldflags.is_empty(),
            &[Lang::Go],
        ),
        ("--no-trimpath", o.no_trimpath, &[Lang::Go]),
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
