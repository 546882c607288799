//! Finding which kind of project lives at a path.

use anyhow::{Context, Result};
use kiln_core::{Lang, hinted};
use std::path::{Path, PathBuf};

/// A project kiln knows how to build.
#[derive(Debug, Clone)]
pub struct Project {
    /// The project's language.
    pub lang: Lang,
    /// The directory holding its manifest.
    pub root: PathBuf,
    /// The manifest file (`Cargo.toml`, `kiln.toml`, `go.mod`, ...).
    pub manifest: PathBuf,
}

const MARKERS: &[(&str, Lang)] = &[("Cargo.toml", Lang::Rust)];

/// Finds the project at `path`: `path` itself when it is a manifest file,
/// else the nearest directory at or above `path` holding a manifest, as
/// cargo does.
pub fn discover(path: &Path) -> Result<Project> {
    let meta =
        std::fs::metadata(path).with_context(|| format!("failed to read `{}`", path.display()))?;
    if meta.is_file() {
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
        if let Some((_, lang)) = MARKERS.iter().find(|(m, _)| *m == name) {
            let root = path
                .parent()
                .filter(|p| !p.as_os_str().is_empty())
                .unwrap_or(Path::new("."));
            return Ok(Project {
                lang: *lang,
                root: root.to_path_buf(),
                manifest: path.to_path_buf(),
            });
        }
        return Err(hinted(
            format!("`{}` is not a project manifest", path.display()),
            "pass a project directory or its `Cargo.toml`",
        ));
    }
    let abs = std::path::absolute(path)
        .with_context(|| format!("failed to resolve `{}`", path.display()))?;
    for dir in abs.ancestors() {
        for (marker, lang) in MARKERS {
            let manifest = dir.join(marker);
            if manifest.is_file() {
                return Ok(Project {
                    lang: *lang,
                    root: dir.to_path_buf(),
                    manifest,
                });
            }
        }
    }
    Err(hinted(
        format!(
            "no project found in `{}` or any parent directory",
            path.display()
        ),
        "kiln builds Rust projects (a directory with `Cargo.toml`); run it in one or pass its path",
    ))
}
