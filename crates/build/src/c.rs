//! The C driver: clang for WASI on the sources kiln.toml lists, or make / CMake.
//!
//! For libraries it generates WIT bindings with wit-bindgen-c.

use crate::manifest::{Emulation, KilnToml, ProjectKind};
use crate::project::{CBuild, Project};
use crate::toolchain::CToolchain;
use crate::{Built, WitWorld};
use anyhow::{Context, Result, bail};
use kiln_core::{Reporter, WasmKind, hinted};
use sha2::{Digest as _, Sha256};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant, SystemTime};

/// Options of a C build.
#[derive(Debug, Clone, Default)]
pub struct COptions {
    /// `--cc`: the clang to use.
    pub cc: Option<String>,
    /// Build with optimizations regardless of kiln.toml's `opt-level` (`--release`).
    pub release: bool,
    /// Extra arguments for make or CMake's build step.
    pub tool_args: Vec<String>,
    /// `--cmake-target`: the CMake executable target to build, over
    /// kiln.toml's `[build] cmake-target`.
    pub cmake_target: Option<String>,
}

/// Builds a C project into a core module.
pub fn build(project: &Project, opts: &COptions, reporter: &dyn Reporter) -> Result<Built> {
    // `git rev-parse` runs while clang works.
    let revision = {
        let root = project.root.clone();
        std::thread::spawn(move || crate::toolchain::git_revision(&root))
    };
    let tc = crate::toolchain::c_toolchain(opts.cc.as_deref())?;
    let manifest = project.kiln_toml.clone().unwrap_or_default();
    let name = package_name(project, &manifest)?;
    let target_dir = project.target_dir();
    let work = target_dir.join("kiln").join("c").join(&name);
    let world = crate::wit_world(&project.root, &manifest)?;
    let kind = manifest.build.kind.unwrap_or(if world.is_some() {
        ProjectKind::Library
    } else {
        ProjectKind::Command
    });
    reporter.status(
        "Building",
        &format!("{name} ({}, {})", tc.target, tc.version),
    );
    let build = project.c_build.unwrap_or(CBuild::Sources);
    let (wasm_path, compile_time) = match build {
        CBuild::Sources => compile_and_link(
            project,
            &manifest,
            &tc,
            &work,
            &name,
            kind,
            world.as_ref(),
            opts,
            reporter,
        )?,
        CBuild::Make | CBuild::CMake => {
            // A program gets kiln's `cabi_realloc` as the listed sources do
            // (a world's wit-bindgen glue brings its own).
            let own = match world {
                None => Some(cabi_realloc_object(project, &manifest, &tc, &work, opts)?),
                Some(_) => None,
            };
            let link = ToolLink {
                kind,
                cabi_realloc: own.as_deref(),
            };
            if build == CBuild::Make {
                run_make(project, &manifest, &tc, &link, opts, reporter)?
            } else {
                run_cmake(project, &manifest, &tc, &work, &link, opts, reporter)?
            }
        }
    };
    let wasm = kiln_core::input::Input::read(&wasm_path)?;
    // make and CMake were handed kiln's `cabi_realloc` object for a
    // program (above); check the link took it.
    if build != CBuild::Sources && world.is_none() && !exports_cabi_realloc(&wasm) {
        reporter.warn(&format!(
            "`{}` does not export kiln's `cabi_realloc`, so the preview1 adapter shares \
             memory with malloc and a program that allocates a lot can trap in it: \
             its link left out kiln's object (a Makefile link line without `$(LDFLAGS)`), \
             or make did not relink it since an older kiln (`make clean`)",
            wasm_path.display()
        ));
    }
    let wasm_kind = WasmKind::sniff(&wasm)
        .with_context(|| format!("`{}` is not a wasm binary", wasm_path.display()))?;
    Ok(Built {
        wasm,
        toolchain_output: wasm_path,
        kind: wasm_kind,
        is_program: kind == ProjectKind::Command,
        name: name.clone(),
        target_dir,
        metadata: manifest.metadata(&name, revision.join().ok().flatten()),
        language: Some(language(&tc)),
        // Sources kiln compiles carry their world in wit-bindgen-c's type
        // object; a Makefile or CMake build that exports a world links its
        // own bindings the same way.
        embed_world: None,
        compile_time,
        sbom: crate::sbom::SbomSource::C {
            root: project.root.clone(),
            sources: if build == CBuild::Sources {
                sources(&project.root, &manifest)?
            } else {
                Vec::new()
            },
            compiler: tc.version.clone(),
            sysroot: tc.sysroot.clone(),
        },
        // wasm-ld wraps a command's exports with its constructors and
        // destructors; the adapter's allocator must not be (see
        // `command_export.rs`).
        prepare: (kind == ProjectKind::Command)
            .then_some(crate::command_export::unwrap_cabi_realloc as crate::Prepare),
    })
}

fn package_name(project: &Project, manifest: &KilnToml) -> Result<String> {
    crate::manifest::package_name(manifest.package.as_ref(), || {
        project
            .root
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default()
    })
}

/// The producers section's language: C11 and clang's version.
fn language(tc: &CToolchain) -> (String, String) {
    let clang_version = tc
        .version
        .split("version ")
        .nth(1)
        .and_then(|v| v.split_whitespace().next())
        .unwrap_or("");
    ("C11".to_string(), clang_version.to_string())
}

/// Flags every compile gets: the target, the WASI libc as the only system
/// include directory, and paths made relative for reproducible output.
fn base_cflags(tc: &CToolchain, root: &Path) -> Vec<String> {
    vec![
        format!("--target={}", tc.target),
        // Keep the host's /usr/include out: only clang's own headers and
        // the WASI libc are searched.
        "-nostdlibinc".to_string(),
        "-isystem".to_string(),
        tc.include_dir.display().to_string(),
        format!("-ffile-prefix-map={}=.", root.display()),
    ]
}

fn link_flags(tc: &CToolchain, kind: ProjectKind) -> Vec<String> {
    let mut flags = vec![
        format!("--target={}", tc.target),
        format!("--sysroot={}", tc.sysroot.display()),
        format!("-L{}", tc.lib_dir.display()),
    ];
    if kind == ProjectKind::Library {
        flags.push("-mexec-model=reactor".to_string());
    }
    flags
}

/// The defines of the wasi-libc emulations kiln.toml turns on.
fn emulation_defines(manifest: &KilnToml) -> Vec<String> {
    manifest
        .build
        .emulate
        .iter()
        .map(|e| format!("-D{}", e.define()))
        .collect()
}

/// The libraries of the wasi-libc emulations kiln.toml turns on.
fn emulation_libraries(manifest: &KilnToml) -> Vec<String> {
    manifest.build.emulate.iter().map(|e| e.library()).collect()
}

fn opt_flag(manifest: &KilnToml, opts: &COptions) -> Result<String> {
    match (&manifest.build.opt_level, opts.release) {
        (_, true) => Ok("-O2".to_string()),
        (Some(level), false) => level.flag(),
        (None, false) => Ok("-O2".to_string()),
    }
}

/// Expands the `sources` globs (default `src/**/*.c`), sorted, so the link
/// order and the output are stable.
fn sources(root: &Path, manifest: &KilnToml) -> Result<Vec<PathBuf>> {
    let patterns = if manifest.build.sources.is_empty() {
        vec!["src/**/*.c".to_string()]
    } else {
        manifest.build.sources.clone()
    };
    let mut out = Vec::new();
    for pattern in &patterns {
        // The project's own path may hold glob characters (`proj[1]`).
        let text = format!(
            "{}/{pattern}",
            glob::Pattern::escape(&root.to_string_lossy())
        );
        let mut matched = false;
        for entry in
            glob::glob(&text).with_context(|| format!("invalid source pattern `{pattern}`"))?
        {
            let path = entry.with_context(|| format!("failed to read a match of `{pattern}`"))?;
            if path.is_file() {
                out.push(path);
                matched = true;
            }
        }
        if !matched {
            bail!("source pattern `{pattern}` in kiln.toml matches no file");
        }
    }
    out.sort();
    out.dedup();
    Ok(out)
}

#[allow(clippy::too_many_arguments)]
fn compile_and_link(
    project: &Project,
    manifest: &KilnToml,
    tc: &CToolchain,
    work: &Path,
    name: &str,
    kind: ProjectKind,
    world: Option<&WitWorld>,
    opts: &COptions,
    reporter: &dyn Reporter,
) -> Result<(PathBuf, Duration)> {
    let root = &project.root;
    let mut compile_time = Duration::ZERO;
    let mut cflags = base_cflags(tc, root);
    cflags.push(opt_flag(manifest, opts)?);
    for dir in &manifest.build.include_dirs {
        cflags.push(format!("-I{}", root.join(dir).display()));
    }
    for define in &manifest.build.defines {
        cflags.push(format!("-D{define}"));
    }
    cflags.extend(emulation_defines(manifest));
    cflags.extend(manifest.build.cflags.iter().cloned());

    let mut units: Vec<PathBuf> = sources(root, manifest)?;
    let mut extra_objects = Vec::new();
    // kiln's own source, compiled and cached like the others but not
    // reported as the project's.
    let own = match world {
        None => Some(write_if_changed(
            &work.join("kiln_cabi_realloc.c"),
            CABI_REALLOC,
        )?),
        Some(_) => None,
    };
    if let Some(world) = world {
        let bindings = work.join("bindings");
        let generated = generate_bindings(world, &bindings)?;
        cflags.push(format!("-I{}", bindings.display()));
        units.extend(generated.sources);
        extra_objects.extend(generated.objects);
    }

    // C++ sources compile with the clang++ beside the clang, which also
    // links the program so that libc++ comes along.
    let cxx = if units.iter().any(|u| is_cxx(u)) {
        Some(cxx_compiler(tc)?)
    } else {
        None
    };
    let cxxflags = cxx_flags(tc, &cflags);

    let obj_dir = work.join("obj");
    std::fs::create_dir_all(&obj_dir)
        .with_context(|| format!("failed to create `{}`", obj_dir.display()))?;
    let mut objects = Vec::new();
    let mut fresh = 0usize;
    let all = units.iter().map(|u| (u, true));
    for (src, reported) in all.chain(own.iter().map(|u| (u, false))) {
        let (compiler, flags) = match &cxx {
            Some(cxx) if is_cxx(src) => (cxx, &cxxflags),
            _ => (&tc.cc, &cflags),
        };
        let obj = object_path(&obj_dir, root, src, compiler, flags);
        if up_to_date(&obj, src) {
            fresh += usize::from(reported);
        } else {
            let shown = src.strip_prefix(root).unwrap_or(src);
            if reported {
                reporter.status("Compiling", &shown.display().to_string());
            }
            let started = Instant::now();
            compile_one(tc, compiler, flags, root, src, &obj)?;
            compile_time += started.elapsed();
        }
        objects.push(obj);
    }
    if fresh > 0 {
        reporter.status(
            "Fresh",
            &format!("{fresh} unchanged source file(s) not recompiled"),
        );
    }
    objects.extend(extra_objects);

    let out = work.join(format!("{name}.core.wasm"));
    // wasm-ld records the output's file name in the name section, so link
    // under the final name inside a private directory, then move it.
    let tmp_dir = tempfile::Builder::new()
        .prefix(".kiln-link-")
        .tempdir_in(work)
        .with_context(|| {
            format!(
                "failed to create a temporary directory in `{}`",
                work.display()
            )
        })?;
    let tmp = tmp_dir.path().join(format!("{name}.core.wasm"));
    let mut cmd = Command::new(cxx.as_ref().unwrap_or(&tc.cc));
    cmd.current_dir(root)
        .args(link_flags(tc, kind))
        .arg(opt_flag(manifest, opts)?)
        .args(&objects)
        .args(emulation_libraries(manifest))
        .args(&manifest.build.ldflags)
        .arg("-o")
        .arg(&tmp);
    reporter.status(
        "Linking",
        &format!(
            "{name} ({})",
            match kind {
                ProjectKind::Command => "command",
                ProjectKind::Library => "library",
            }
        ),
    );
    let started = Instant::now();
    kiln_process::output(&mut cmd)
        .map_err(|e| explain_clang_error(e, tc))
        .context("linking failed")?;
    compile_time += started.elapsed();
    std::fs::rename(&tmp, &out).with_context(|| format!("failed to write `{}`", out.display()))?;
    Ok((out, compile_time))
}

/// A `cabi_realloc` export on top of the C heap, for programs without
/// wit-bindgen's (which defines the same). Without one, wit-component gives
/// the preview1 adapter an allocator that grows memory a page at a time,
/// and the WASI libc's malloc — which on first use takes everything from
/// `__heap_base` to the end of memory as its heap — hands out the adapter's
/// stack and state pages: a program that allocates enough overwrites them,
/// and the adapter traps on its next call (zlib's minigzip, at `fclose`).
/// With this export the adapter allocates through malloc like the program.
const CABI_REALLOC: &str = r#"/* Written by kiln: the preview1 adapter allocates through the program's malloc. */
#include <stdlib.h>

__attribute__((__weak__, __export_name__("cabi_realloc")))
void *cabi_realloc(void *ptr, size_t old_size, size_t align, size_t new_size) {
    (void)old_size;
    if (new_size == 0) return (void *)align;
    void *ret = realloc(ptr, new_size);
    if (!ret) abort();
    return ret;
}
"#;

/// How a make or CMake build links the program.
struct ToolLink<'a> {
    kind: ProjectKind,
    /// kiln's `cabi_realloc` object, added to every executable's link.
    cabi_realloc: Option<&'a Path>,
}

/// Compiles [`CABI_REALLOC`] into `work` for a make or CMake build (kept
/// while fresh, like the listed sources' objects) and returns the object.
///
/// kiln links it in rather than adding an export to the finished module,
/// as it does for Go: the export must allocate through the program's own
/// malloc, and only the linker can reach that. A finished module names
/// `realloc` only in an optional name section (gone from stripped or LTO
/// builds), and an allocator of kiln's own beside malloc would share
/// memory with it, the very collision the export exists to prevent. The
/// object rides on flags every link line already carries (`LDFLAGS` for
/// make, the standard libraries for CMake); the build checks afterwards
/// that the export arrived.
fn cabi_realloc_object(
    project: &Project,
    manifest: &KilnToml,
    tc: &CToolchain,
    work: &Path,
    opts: &COptions,
) -> Result<PathBuf> {
    let src = write_if_changed(&work.join("kiln_cabi_realloc.c"), CABI_REALLOC)?;
    let mut cflags = base_cflags(tc, &project.root);
    cflags.push(opt_flag(manifest, opts)?);
    let obj_dir = work.join("obj");
    std::fs::create_dir_all(&obj_dir)
        .with_context(|| format!("failed to create `{}`", obj_dir.display()))?;
    let obj = object_path(&obj_dir, &project.root, &src, &tc.cc, &cflags);
    if !up_to_date(&obj, &src) {
        compile_one(tc, &tc.cc, &cflags, &project.root, &src, &obj)?;
    }
    Ok(obj)
}

/// Whether a linked module exports `cabi_realloc`; bytes that cannot be
/// parsed count as not (the componentizer reports them).
fn exports_cabi_realloc(bytes: &[u8]) -> bool {
    for payload in wasmparser::Parser::new(0).parse_all(bytes) {
        match payload {
            Ok(wasmparser::Payload::ExportSection(exports)) => {
                return exports
                    .into_iter()
                    .any(|e| e.is_ok_and(|e| e.name == "cabi_realloc"));
            }
            Ok(_) => {}
            Err(_) => return false,
        }
    }
    false
}

/// Writes `text` to `path` unless it already holds it (so its object stays
/// fresh), and returns the path.
fn write_if_changed(path: &Path, text: &str) -> Result<PathBuf> {
    if std::fs::read(path).ok().as_deref() != Some(text.as_bytes()) {
        kiln_core::fs::write_atomic(path, text.as_bytes())?;
    }
    Ok(path.to_path_buf())
}

/// Object file path: named after the source and a hash of everything that
/// changes its contents except the source text (which the timestamps cover).
fn object_path(obj_dir: &Path, root: &Path, src: &Path, cc: &Path, cflags: &[String]) -> PathBuf {
    let mut h = Sha256::new();
    h.update(src.to_string_lossy().as_bytes());
    h.update([0]);
    h.update(cc.to_string_lossy().as_bytes());
    for f in cflags {
        h.update([0]);
        h.update(f.as_bytes());
    }
    let hash = hex::encode(&h.finalize()[..8]);
    let stem = src
        .strip_prefix(root)
        .unwrap_or(src)
        .to_string_lossy()
        .replace(['/', '\\'], "_");
    obj_dir.join(format!("{stem}-{hash}.o"))
}

fn mtime(p: &Path) -> Option<SystemTime> {
    std::fs::metadata(p).and_then(|m| m.modified()).ok()
}

/// An object is up to date when it and its dependency file exist and no
/// file it was built from (the source and every header clang listed) is
/// newer than it.
fn up_to_date(obj: &Path, src: &Path) -> bool {
    let Some(built) = mtime(obj) else {
        return false;
    };
    let Ok(depfile) = std::fs::read_to_string(obj.with_extension("d")) else {
        return false;
    };
    let mut inputs = parse_depfile(&depfile);
    inputs.push(src.to_path_buf());
    inputs
        .iter()
        .all(|dep| mtime(dep).is_some_and(|t| t <= built))
}

/// The prerequisites of a make-style dependency file written by `-MD`.
fn parse_depfile(text: &str) -> Vec<PathBuf> {
    let joined = text.replace("\\\n", " ");
    let Some((_, deps)) = joined.split_once(": ") else {
        return Vec::new();
    };
    let mut out = Vec::new();
    let mut current = String::new();
    let mut chars = deps.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' if chars.peek() == Some(&' ') => {
                current.push(' ');
                chars.next();
            }
            c if c.is_whitespace() => {
                if !current.is_empty() {
                    out.push(PathBuf::from(std::mem::take(&mut current)));
                }
            }
            c => current.push(c),
        }
    }
    if !current.is_empty() {
        out.push(PathBuf::from(current));
    }
    out
}

fn compile_one(
    tc: &CToolchain,
    compiler: &Path,
    cflags: &[String],
    root: &Path,
    src: &Path,
    obj: &Path,
) -> Result<()> {
    let dir = obj.parent().unwrap_or(Path::new("."));
    let tmp = temp_in(dir, ".o")?;
    let mut cmd = Command::new(compiler);
    // Relative paths in user flags (`-Iinclude`) mean the project's.
    cmd.current_dir(root)
        .args(cflags)
        .arg("-MD")
        .arg("-MF")
        .arg(obj.with_extension("d"))
        .arg("-MT")
        .arg(obj)
        .arg("-c")
        .arg(src)
        .arg("-o")
        .arg(tmp.path());
    kiln_process::output(&mut cmd)
        .map_err(|e| explain_clang_error(e, tc))
        .with_context(|| format!("failed to compile `{}`", src.display()))?;
    tmp.persist(obj)
        .map_err(|e| e.error)
        .with_context(|| format!("failed to write `{}`", obj.display()))?;
    Ok(())
}

/// A uniquely named temporary file in `dir`, removed unless persisted, so a
/// failed or concurrent build never leaves or clobbers a half-written file.
fn temp_in(dir: &Path, suffix: &str) -> Result<tempfile::NamedTempFile> {
    tempfile::Builder::new()
        .prefix(".kiln-")
        .suffix(suffix)
        .tempfile_in(dir)
        .with_context(|| format!("failed to create a temporary file in `{}`", dir.display()))
}

/// Adds a hint to clang failures kiln recognizes: a header the WASI libc
/// does not provide.
fn explain_clang_error(e: kiln_process::ProcessError, tc: &CToolchain) -> anyhow::Error {
    if let kiln_process::ProcessError::Failed { stderr, .. } = &e {
        let wanted = wanted_emulations(stderr);
        if !wanted.is_empty() {
            let names: Vec<String> = wanted.iter().map(|e| format!("\"{}\"", e.name())).collect();
            let what: Vec<&str> = wanted.iter().map(|e| e.name()).collect();
            return anyhow::Error::new(e).context(kiln_core::Hinted {
                message: format!(
                    "the program uses what WASI lacks and wasi-libc emulates: {}",
                    what.join(", ")
                ),
                hint: format!(
                    "turn the emulation on with `emulate = [{}]` under `[build]` in kiln.toml \
                     (see docs/kiln-toml.md for what each one does and does not do)",
                    names.join(", ")
                ),
            });
        }
    }
    if let kiln_process::ProcessError::Failed { stderr, .. } = &e
        && let Some(part) = libcxx_wanted(stderr)
        && !part.installed(tc)
    {
        let major = clang_major(tc).unwrap_or("NN");
        return anyhow::Error::new(e).context(kiln_core::Hinted {
            message: format!(
                "the WASI C++ standard library (libc++) is not installed: {} missing from `{}`",
                part.what(),
                part.dir(tc).display()
            ),
            hint: format!(
                "install it with `apt-get install -y libc++-{major}-dev-wasm32 libc++abi-{major}-dev-wasm32` \
                 (the versions of your clang), or use a wasi-sdk, which ships it"
            ),
        });
    }
    if let kiln_process::ProcessError::Failed { stderr, .. } = &e
        && let Some(header) = missing_header(stderr)
    {
        let hint = format!(
            "`{header}` is not part of the WASI libc at `{}` (WASI has no setjmp/longjmp, signals or processes); \
             guard its use with `#ifndef __wasi__`, or use a newer wasi-libc/wasi-sdk that provides it",
            tc.include_dir.display()
        );
        return anyhow::Error::new(e).context(kiln_core::Hinted {
            message: format!("`{header}` is missing from the WASI libc"),
            hint,
        });
    }
    anyhow::Error::new(e)
}

/// The wasi-libc emulations a failed compile or link asks for: named by a
/// header's `#error` or deprecation (`compile with -D_WASI_EMULATED_SIGNAL`),
/// or a function only an emulation's library defines that wasm-ld reports
/// undefined (`undefined symbol: getpid`).
fn wanted_emulations(stderr: &str) -> Vec<Emulation> {
    let asked = |e: &Emulation, kind: &str| {
        let define = format!("-D{}", e.define());
        stderr
            .lines()
            .any(|line| line.contains(kind) && line.contains(&define))
    };
    let undefined = |e: &Emulation| {
        stderr.lines().any(|line| {
            line.split_once("undefined symbol: ")
                .is_some_and(|(_, sym)| e.symbols().contains(&sym.trim()))
        })
    };
    let failed_for: Vec<Emulation> = Emulation::ALL
        .into_iter()
        .filter(|e| asked(e, "error:") || undefined(e))
        .collect();
    if failed_for.is_empty() {
        return failed_for;
    }
    // What the same compile warned about would fail the link next: name
    // it now rather than one failure later.
    Emulation::ALL
        .into_iter()
        .filter(|e| failed_for.contains(e) || asked(e, "warning:"))
        .collect()
}

/// The part of the WASI libc++ a failed C++ compile or link looked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Libcxx {
    /// A C++ standard header (`<iostream>`): clang found none.
    Headers,
    /// `-lc++` or `-lc++abi`: wasm-ld found no library.
    Library,
}

impl Libcxx {
    fn dir(self, tc: &CToolchain) -> PathBuf {
        match self {
            Libcxx::Headers => tc.include_dir.join("c++").join("v1"),
            Libcxx::Library => tc.lib_dir.clone(),
        }
    }

    fn what(self) -> &'static str {
        match self {
            Libcxx::Headers => "its headers are",
            Libcxx::Library => "`libc++.a` and `libc++abi.a` are",
        }
    }

    /// Whether the toolchain has it, so that a missing header libc++ does
    /// not provide either is not blamed on the install.
    fn installed(self, tc: &CToolchain) -> bool {
        match self {
            Libcxx::Headers => self.dir(tc).is_dir(),
            Libcxx::Library => {
                tc.lib_dir.join("libc++.a").is_file() && tc.lib_dir.join("libc++abi.a").is_file()
            }
        }
    }
}

/// What of libc++ clang's or wasm-ld's output says is missing: a system
/// header with no extension (the C++ standard headers have none, the C
/// library's all end in `.h`), or the libraries clang++ links.
fn libcxx_wanted(stderr: &str) -> Option<Libcxx> {
    if stderr.lines().any(|line| {
        line.contains("unable to find library -lc++")
            || line.contains("unable to find library -lc++abi")
    }) {
        return Some(Libcxx::Library);
    }
    missing_header(stderr)
        .filter(|h| !h.contains('.'))
        .map(|_| Libcxx::Headers)
}

/// clang's major version, `19` of `Debian clang version 19.1.7`: Debian's
/// package names carry it.
fn clang_major(tc: &CToolchain) -> Option<&str> {
    let (_, rest) = tc.version.split_once("version ")?;
    let major = rest.split(['.', ' ']).next()?;
    (!major.is_empty() && major.bytes().all(|b| b.is_ascii_digit())).then_some(major)
}

/// A system header (`#include <...>`) clang could not find. A missing
/// `#include "..."` is the project's own file, not the libc's.
fn missing_header(stderr: &str) -> Option<String> {
    let mut lines = stderr.lines();
    while let Some(line) = lines.next() {
        if !line.contains("file not found") {
            continue;
        }
        let start = line.find('\'')? + 1;
        let end = start + line[start..].find('\'')?;
        let header = &line[start..end];
        // clang echoes the offending source line next.
        let system = lines
            .next()
            .is_some_and(|src| src.contains(&format!("<{header}>")));
        return system.then(|| header.to_string());
    }
    None
}

struct Generated {
    sources: Vec<PathBuf>,
    objects: Vec<PathBuf>,
}

/// Writes the C bindings of `world` (header, glue source and the object
/// carrying the component type) with wit-bindgen-c, so the user writes only
/// the functions the world declares.
fn generate_bindings(world: &WitWorld, dir: &Path) -> Result<Generated> {
    let (mut resolve, world_id) = world.resolve()?;
    let mut generator = wit_bindgen_c::Opts::default().build();
    let mut files = wit_bindgen_core::Files::default();
    generator
        .generate(&mut resolve, world_id, &mut files)
        .with_context(|| {
            format!(
                "failed to generate C bindings for `{}`",
                world.path.display()
            )
        })?;
    let mut generated = Generated {
        sources: Vec::new(),
        objects: Vec::new(),
    };
    for (name, contents) in files.iter() {
        let path = dir.join(name);
        // Rewriting identical bindings would bump their timestamps and force
        // every source including them to recompile.
        if std::fs::read(&path).ok().as_deref() != Some(contents) {
            kiln_core::fs::write_atomic(&path, contents)?;
        }
        if name.ends_with(".c") {
            generated.sources.push(path);
        } else if name.ends_with(".o") {
            generated.objects.push(path);
        }
    }
    Ok(generated)
}

/// The variables kiln hands make and CMake so that they build for WASI.
fn make_vars(
    tc: &CToolchain,
    manifest: &KilnToml,
    kind: ProjectKind,
    root: &Path,
    opts: &COptions,
) -> Result<(String, String)> {
    let mut cflags = base_cflags(tc, root);
    cflags.push(opt_flag(manifest, opts)?);
    cflags.extend(emulation_defines(manifest));
    cflags.extend(manifest.build.cflags.iter().cloned());
    let mut ldflags = link_flags(tc, kind);
    ldflags.extend(emulation_libraries(manifest));
    ldflags.extend(manifest.build.ldflags.iter().cloned());
    Ok((cflags.join(" "), ldflags.join(" ")))
}

fn run_make(
    project: &Project,
    manifest: &KilnToml,
    tc: &CToolchain,
    link: &ToolLink,
    opts: &COptions,
    reporter: &dyn Reporter,
) -> Result<(PathBuf, Duration)> {
    let (cflags, mut ldflags) = make_vars(tc, manifest, link.kind, &project.root, opts)?;
    // Makefiles pass `LDFLAGS` to the links of programs (make's own
    // implicit rule does), and an object among them is always linked.
    if let Some(obj) = link.cabi_realloc {
        ldflags = format!("{ldflags} {}", obj.display());
    }
    let started = SystemTime::now();
    let timer = Instant::now();
    let jobs = std::thread::available_parallelism().map_or(1, |n| n.get());
    let mut cmd = Command::new("make");
    cmd.current_dir(&project.root)
        .arg(format!("-j{jobs}"))
        .arg(format!("CC={}", tc.cc.display()))
        .arg(format!("CFLAGS={cflags}"))
        .arg(format!("LDFLAGS={ldflags}"));
    if let Some(ar) = &tc.ar {
        cmd.arg(format!("AR={}", ar.display()));
    }
    cmd.args(&opts.tool_args);
    reporter.status("Running", &kiln_process::command_line(&cmd));
    kiln_process::output(&mut cmd)
        .map_err(|e| match e {
            kiln_process::ProcessError::NotFound { .. } => hinted(
                "`make` was not found on PATH",
                "install it with `apt-get install -y make`",
            ),
            e => explain_clang_error(e, tc),
        })
        .context("the Makefile build failed")?;
    let compile_time = timer.elapsed();
    Ok((
        find_output(&project.root, manifest, started, &project.root)?,
        compile_time,
    ))
}

fn run_cmake(
    project: &Project,
    manifest: &KilnToml,
    tc: &CToolchain,
    work: &Path,
    link: &ToolLink,
    opts: &COptions,
    reporter: &dyn Reporter,
) -> Result<(PathBuf, Duration)> {
    let (cflags, ldflags) = make_vars(tc, manifest, link.kind, &project.root, opts)?;
    let build_dir = work.join("cmake");
    let toolchain = crate::cmake::write_toolchain(&work.join("cmake-wasi"))?;
    crate::cmake::query_codemodel(&build_dir)?;
    let timer = Instant::now();
    let mut configure = Command::new("cmake");
    configure
        .current_dir(&project.root)
        .arg("-S")
        .arg(&project.root)
        .arg("-B")
        .arg(&build_dir)
        .arg(format!("-DCMAKE_TOOLCHAIN_FILE={}", toolchain.display()))
        .arg(format!("-DCMAKE_C_COMPILER={}", tc.cc.display()))
        .arg(format!("-DCMAKE_C_COMPILER_TARGET={}", tc.target))
        .arg(format!("-DCMAKE_SYSROOT={}", tc.sysroot.display()))
        .arg(format!("-DCMAKE_C_FLAGS={cflags}"))
        .arg(format!("-DCMAKE_EXE_LINKER_FLAGS={ldflags}"))
        .arg("-DCMAKE_BUILD_TYPE=Release");
    // The standard libraries end every executable's link line, in C and
    // C++ alike, and projects seldom set them, where they often set
    // `CMAKE_EXE_LINKER_FLAGS` over kiln's. Always set, so a cache from a
    // build that had the object does not keep it.
    let standard = link
        .cabi_realloc
        .map(|obj| obj.display().to_string())
        .unwrap_or_default();
    for lang in ["C", "CXX"] {
        configure.arg(format!("-DCMAKE_{lang}_STANDARD_LIBRARIES={standard}"));
    }
    // Projects that declare C++ (CMake's default languages are C and C++)
    // configure with the clang++ beside the clang, against the WASI libc++
    // headers when the sysroot has them.
    if let Some(cxx) = sibling_cxx(&tc.cc) {
        let mut cflags = base_cflags(tc, &project.root);
        cflags.push(opt_flag(manifest, opts)?);
        cflags.extend(emulation_defines(manifest));
        cflags.extend(manifest.build.cflags.iter().cloned());
        let cxxflags = cxx_flags(tc, &cflags);
        configure
            .arg(format!("-DCMAKE_CXX_COMPILER={}", cxx.display()))
            .arg(format!("-DCMAKE_CXX_COMPILER_TARGET={}", tc.target))
            .arg(format!("-DCMAKE_CXX_FLAGS={}", cxxflags.join(" ")));
    }
    if let Some(ar) = &tc.ar {
        configure.arg(format!("-DCMAKE_AR={}", ar.display()));
    }
    reporter.status("Configuring", "CMake for WASI");
    kiln_process::output(&mut configure)
        .map_err(|e| match e {
            kiln_process::ProcessError::NotFound { .. } => hinted(
                "`cmake` was not found on PATH",
                "install it with `apt-get install -y cmake`",
            ),
            e => anyhow::Error::new(e),
        })
        .context("configuring with CMake failed")?;
    let targets = crate::cmake::targets(&build_dir)?;
    let named = opts
        .cmake_target
        .as_deref()
        .or(manifest.build.cmake_target.as_deref());
    let target = crate::cmake::choose(&targets, named)?;
    let mut build = Command::new("cmake");
    build
        .arg("--build")
        .arg(&build_dir)
        .arg("--target")
        .arg(&target.name)
        .arg("--parallel")
        .args(&opts.tool_args);
    reporter.status("Running", &kiln_process::command_line(&build));
    kiln_process::output(&mut build)
        .map_err(|e| explain_clang_error(e, tc))
        .with_context(|| format!("the CMake build of target `{}` failed", target.name))?;
    let compile_time = timer.elapsed();
    if manifest.build.output.is_some() {
        return Ok((
            find_output(&build_dir, manifest, SystemTime::UNIX_EPOCH, &project.root)?,
            compile_time,
        ));
    }
    let artifact = target.artifact.clone().with_context(|| {
        format!(
            "CMake reported no output file for target `{}`; set `[build] output` in kiln.toml",
            target.name
        )
    })?;
    if !artifact.is_file() {
        bail!(
            "the CMake build finished but `{}`, the output of target `{}`, does not exist",
            artifact.display(),
            target.name
        );
    }
    Ok((artifact, compile_time))
}

/// Whether a source is C++, by the extensions clang takes as C++.
fn is_cxx(src: &Path) -> bool {
    matches!(
        src.extension().and_then(|e| e.to_str()),
        Some("cpp" | "cc" | "cxx" | "c++" | "C")
    )
}

/// The clang++ for C++ sources, or why there is none.
fn cxx_compiler(tc: &CToolchain) -> Result<PathBuf> {
    sibling_cxx(&tc.cc).ok_or_else(|| {
        hinted(
            format!(
                "the project has C++ sources but there is no clang++ beside `{}`",
                tc.cc.display()
            ),
            "install the clang package that provides both, or pass a clang with `--cc`",
        )
    })
}

/// The flags of a C++ compile: the C flags with the WASI libc++ headers
/// searched before the C library's (libc++'s `<cmath>` wraps the libc's
/// `<math.h>`, so the order matters), and without exceptions, which the
/// WASI libc++abi does not support (a `throw` would leave `__cxa_throw`
/// undefined at the link). The libc++ directory is passed even when it is
/// missing, so that clang's "file not found" leads to the install hint.
fn cxx_flags(tc: &CToolchain, cflags: &[String]) -> Vec<String> {
    let libcxx = tc.include_dir.join("c++").join("v1");
    let mut flags = cflags.to_vec();
    let at = flags
        .iter()
        .position(|f| f == "-isystem")
        .unwrap_or(flags.len());
    flags.splice(
        at..at,
        ["-isystem".to_string(), libcxx.display().to_string()],
    );
    flags.push("-fno-exceptions".to_string());
    flags
}

/// The C++ compiler beside a clang: `clang++-19` for `clang-19`.
fn sibling_cxx(cc: &Path) -> Option<PathBuf> {
    let name = cc.file_name()?.to_str()?;
    let cxx = cc.with_file_name(name.replacen("clang", "clang++", 1));
    (name.starts_with("clang") && cxx.is_file()).then_some(cxx)
}

/// The .wasm a make or CMake build produced: `[build] output` when set, else
/// the one .wasm file under `dir` written during the build.
fn find_output(
    dir: &Path,
    manifest: &KilnToml,
    started: SystemTime,
    root: &Path,
) -> Result<PathBuf> {
    if let Some(output) = &manifest.build.output {
        let path = root.join(output);
        if !path.is_file() {
            bail!(
                "the build finished but `{}` (`[build] output` in kiln.toml) does not exist",
                path.display()
            );
        }
        return Ok(path);
    }
    let mut all = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                // kiln's own outputs are not the build's.
                // kiln's own outputs and CMake's compiler probes are not
                // the build's.
                if path.ends_with("target/kiln")
                    || path
                        .file_name()
                        .is_some_and(|n| n == ".git" || n == "CMakeFiles")
                {
                    continue;
                }
                stack.push(path);
            } else if is_linked_wasm(&path) {
                all.push(path);
            }
        }
    }
    all.sort();
    // Prefer what this build wrote; a no-op rebuild wrote nothing, and then
    // the one .wasm already there is the output.
    let written: Vec<PathBuf> = all
        .iter()
        .filter(|p| mtime(p).is_some_and(|t| t >= started))
        .cloned()
        .collect();
    let mut found = if written.is_empty() { all } else { written };
    match found.len() {
        1 => Ok(found.remove(0)),
        0 => Err(hinted(
            format!("the build wrote no .wasm file under `{}`", dir.display()),
            "set `[build] output = \"path/to/app.wasm\"` in kiln.toml",
        )),
        _ => Err(hinted(
            format!(
                "the build wrote several .wasm files: {}",
                found
                    .iter()
                    .map(|p| format!("`{}`", p.display()))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            "name the one to componentize with `[build] output` in kiln.toml",
        )),
    }
}

/// A linked wasm binary: named `.wasm`, or an extensionless executable (as
/// CMake names them) that starts with the wasm magic. Object files and
/// archives are wasm too, but never the output.
fn is_linked_wasm(path: &Path) -> bool {
    match path.extension().and_then(|e| e.to_str()) {
        Some("wasm") => true,
        Some(_) => false,
        None => {
            let mut magic = [0u8; 4];
            std::fs::File::open(path)
                .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut magic))
                .is_ok_and(|()| &magic == b"\0asm")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn depfiles_parse_with_continuations_and_escaped_spaces() {
        let deps = parse_depfile(
            "obj.o: src/a.c include/a.h \\\n  /usr/include/wasm32-wasi/stdio.h my\\ dir/b.h\n",
        );
        assert_eq!(
            deps,
            [
                "src/a.c",
                "include/a.h",
                "/usr/include/wasm32-wasi/stdio.h",
                "my dir/b.h"
            ]
            .map(PathBuf::from)
        );
    }

    #[test]
    fn emulations_are_named_from_header_errors_and_undefined_symbols() {
        let compile = "/usr/include/wasm32-wasi/signal.h:2:2: error: \"wasm lacks signal support; to enable minimal signal emulation, compile with -D_WASI_EMULATED_SIGNAL and link with -lwasi-emulated-signal\"\n";
        assert_eq!(wanted_emulations(compile), [Emulation::Signal]);
        let both = format!(
            "{compile}m.c:3:25: warning: 'getpid' is deprecated: … compile with -D_WASI_EMULATED_GETPID and link with -lwasi-emulated-getpid\n"
        );
        assert_eq!(
            wanted_emulations(&both),
            [Emulation::Signal, Emulation::Getpid]
        );
        let link = "wasm-ld: error: m.o: undefined symbol: getpid\nwasm-ld: error: m.o: undefined symbol: clock\nwasm-ld: error: m.o: undefined symbol: other\n";
        assert_eq!(
            wanted_emulations(link),
            [Emulation::ProcessClocks, Emulation::Getpid]
        );
        // A deprecation warning of a compile that failed for another reason
        // is not the cause.
        let warning = "m.c:3:25: warning: 'getpid' is deprecated: … compile with -D_WASI_EMULATED_GETPID and link with -lwasi-emulated-getpid\nm.c:4:1: error: expected ';'\n";
        assert!(wanted_emulations(warning).is_empty());
    }

    #[test]
    fn a_missing_libcxx_is_told_from_clang_and_wasm_ld_output() {
        // Debian clang 19.1.7 and wasm-ld-19 with a WASI sysroot lacking
        // libc++-19-dev-wasm32 and libc++abi-19-dev-wasm32.
        let header = "/tmp/cxx/src/main.cpp:1:10: fatal error: 'iostream' file not found\n    1 | #include <iostream>\n      |          ^~~~~~~~~~\n1 error generated.\n";
        assert_eq!(libcxx_wanted(header), Some(Libcxx::Headers));
        let link = "wasm-ld-19: error: unable to find library -lc++\nwasm-ld-19: error: unable to find library -lc++abi\nclang++-19: error: linker command failed with exit code 1 (use -v to see invocation)\n";
        assert_eq!(libcxx_wanted(link), Some(Libcxx::Library));
        // A C header the WASI libc lacks, and a project's own header, are
        // not libc++'s.
        let c = "src/main.c:2:10: fatal error: 'setjmp.h' file not found\n    2 | #include <setjmp.h>\n";
        assert_eq!(libcxx_wanted(c), None);
        let own =
            "src/a.cpp:2:10: fatal error: 'config' file not found\n    2 | #include \"config\"\n";
        assert_eq!(libcxx_wanted(own), None);
    }

    #[test]
    fn cxx_flags_search_libcxx_first_and_drop_exceptions() {
        let tc = CToolchain {
            cc: PathBuf::from("/usr/bin/clang-19"),
            version: "Debian clang version 19.1.7 (3~deb12u1)".to_string(),
            source: crate::toolchain::CSource::System,
            target: "wasm32-wasi".to_string(),
            sysroot: PathBuf::from("/usr"),
            include_dir: PathBuf::from("/usr/include/wasm32-wasi"),
            lib_dir: PathBuf::from("/usr/lib/wasm32-wasi"),
            ar: None,
        };
        assert_eq!(clang_major(&tc), Some("19"));
        let flags = cxx_flags(&tc, &base_cflags(&tc, Path::new("/p")));
        let at = |f: &str| flags.iter().position(|x| x == f).unwrap();
        assert!(at("/usr/include/wasm32-wasi/c++/v1") < at("/usr/include/wasm32-wasi"));
        assert_eq!(flags.last().map(String::as_str), Some("-fno-exceptions"));
        assert!(is_cxx(Path::new("src/a.cc")) && !is_cxx(Path::new("src/a.c")));
    }

    #[test]
    fn missing_header_is_found_in_clang_output() {
        let err = "src/main.c:2:10: fatal error: 'setjmp.h' file not found\n    2 | #include <setjmp.h>\n";
        assert_eq!(missing_header(err).as_deref(), Some("setjmp.h"));
        let own =
            "src/main.c:2:10: fatal error: 'util.h' file not found\n    2 | #include \"util.h\"\n";
        assert_eq!(missing_header(own), None);
        assert_eq!(missing_header("error: something else"), None);
    }
}
