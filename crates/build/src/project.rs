//! Finding which kind of project lives at a path.

use crate::manifest::{self, KilnToml, Language};
use anyhow::{Context, Result};
use kiln_core::{Lang, hinted};
use std::path::{Path, PathBuf};

/// How a C project is built.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CBuild {
    /// kiln compiles the sources listed in kiln.toml itself.
    Sources,
    /// kiln runs `make` with the wasm toolchain in CC/CFLAGS/LDFLAGS.
    Make,
    /// kiln configures and builds with CMake for WASI.
    CMake,
}

/// A project kiln knows how to build.
#[derive(Debug, Clone)]
pub struct Project {
    /// The project's language.
    pub lang: Lang,
    /// The directory holding its manifest.
    pub root: PathBuf,
    /// The language's manifest (`Cargo.toml`, `go.mod`, `kiln.toml`,
    /// `Makefile`, `CMakeLists.txt`).
    pub manifest: PathBuf,
    /// The parsed `kiln.toml`, when there is one.
    pub kiln_toml: Option<KilnToml>,
    /// For C projects, how they are built.
    pub c_build: Option<CBuild>,
    /// The directory the project was found from, when it lies below
    /// `root`: for Go, the package to build (`go.mod` is further up).
    pub package_dir: Option<PathBuf>,
    /// Where `target/` goes instead of `<root>/target` (`--target-dir`,
    /// `KILN_TARGET_DIR`); absolute.
    pub target_dir_override: Option<PathBuf>,
}

impl Project {
    /// The directory kiln writes its outputs under (`kiln/` inside it):
    /// the override when there is one, else `target/` beside the manifest.
    /// (Rust takes cargo's own target directory unless overridden.)
    pub fn target_dir(&self) -> PathBuf {
        self.target_dir_override
            .clone()
            .unwrap_or_else(|| self.root.join("target"))
    }
}

const MAKEFILES: &[&str] = &["GNUmakefile", "makefile", "Makefile"];

/// What kind of project `dir` holds, if any.
fn detect(dir: &Path) -> Result<Option<Project>> {
    let kiln_toml_path = dir.join("kiln.toml");
    let kiln_toml = if kiln_toml_path.is_file() {
        Some(manifest::read(&kiln_toml_path)?)
    } else {
        None
    };
    let declared = kiln_toml.as_ref().and_then(|m| m.build.language);
    let cargo = dir.join("Cargo.toml");
    let go_mod = dir.join("go.mod");
    let cmake = dir.join("CMakeLists.txt");
    let makefile = MAKEFILES.iter().map(|m| dir.join(m)).find(|p| p.is_file());
    let project = |lang, manifest: PathBuf, c_build| Project {
        lang,
        root: dir.to_path_buf(),
        manifest,
        kiln_toml: kiln_toml.clone(),
        c_build,
        package_dir: None,
        target_dir_override: None,
    };
    let found = match declared {
        Some(Language::Rust) => Some(project(Lang::Rust, cargo, None)),
        Some(Language::Go) => Some(project(Lang::Go, go_mod, None)),
        None if cargo.is_file() => Some(project(Lang::Rust, cargo, None)),
        None if go_mod.is_file() => Some(project(Lang::Go, go_mod, None)),
        // A declared C project always has its kiln.toml.
        Some(Language::C) | None
            if kiln_toml.is_some() || cmake.is_file() || makefile.is_some() =>
        {
            let lists_sources = kiln_toml
                .as_ref()
                .is_some_and(|m| !m.build.sources.is_empty());
            Some(if !lists_sources && cmake.is_file() {
                project(Lang::C, cmake, Some(CBuild::CMake))
            } else if let (false, Some(makefile)) = (lists_sources, makefile) {
                project(Lang::C, makefile, Some(CBuild::Make))
            } else {
                project(Lang::C, kiln_toml_path, Some(CBuild::Sources))
            })
        }
        Some(Language::C) | None => None,
    };
    Ok(found)
}

/// Finds the project at `path`: the directory itself or, as cargo does, the
/// nearest parent directory holding a project manifest. A path to a
/// manifest file means the project in its directory.
pub fn discover(path: &Path) -> Result<Project> {
    let meta =
        std::fs::metadata(path).with_context(|| format!("failed to read `{}`", path.display()))?;
    let abs = std::path::absolute(path)
        .with_context(|| format!("failed to resolve `{}`", path.display()))?;
    if meta.is_file() {
        let dir = abs.parent().unwrap_or(Path::new("/"));
        return match detect(dir)? {
            Some(mut p) => {
                if abs.file_name().is_some_and(|n| n == "Cargo.toml") {
                    p.lang = Lang::Rust;
                    p.manifest = abs.clone();
                }
                Ok(p)
            }
            None => Err(hinted(
                format!("`{}` is not a project manifest", path.display()),
                "pass a project directory or its manifest",
            )),
        };
    }
    for dir in abs.ancestors() {
        if let Some(mut project) = detect(dir)? {
            // A Go module's packages live in its subdirectories; the one
            // named is the one to build.
            if project.lang == Lang::Go && dir != abs {
                project.package_dir = Some(abs.clone());
            }
            return Ok(project);
        }
    }
    Err(hinted(
        format!(
            "no project found in `{}` or any parent directory",
            path.display()
        ),
        "kiln builds Rust (Cargo.toml), Go (go.mod) and C (kiln.toml, Makefile or CMakeLists.txt) projects; run it in one or pass its path",
    ))
}
