//! Which package of a Go module kiln builds, and what it is called.
//!
//! The directory kiln was pointed at is the package (`kiln build cmd/hello`
//! in a module whose `go.mod` is further up); from the module root,
//! `[build] main` in kiln.toml chooses one, else the root's own package is
//! built. `go build` always runs in the module root with the package's
//! path relative to it (`./cmd/hello`), which works for ordinary modules
//! and for Go's own `cmd` module alike.
//!
//! kiln.toml sits at the module root and describes the package it builds
//! by default: its `[package] name` and its `[build] kind`, `wit` and
//! `world` apply to that package only. Another package named on the command
//! line is named after its directory and is a library when it holds a
//! `wit/` directory; the module-wide settings (tags, ldflags, the rest of
//! `[package]`) apply to every package.

use crate::manifest::{self, KilnToml};
use crate::project::Project;
use crate::{WitWorld, wit_world};
use anyhow::Result;
use kiln_core::hinted;
use std::path::{Component, Path, PathBuf};

/// The package a Go build builds.
#[derive(Debug, Clone)]
pub struct Package {
    /// Its directory.
    pub dir: PathBuf,
    /// Its path as `go build` takes it in the module root: `.` or `./a/b`.
    pub arg: String,
    /// The component's name.
    pub name: String,
    /// kiln.toml's settings as they apply to this package.
    pub manifest: KilnToml,
    /// The WIT world it exports, when it is a library.
    pub world: Option<WitWorld>,
}

impl Package {
    /// The package `project` names (see the module docs).
    pub fn select(project: &Project, module_path: &str) -> Result<Package> {
        let root = normalize(&project.root);
        let mut manifest = project.kiln_toml.clone().unwrap_or_default();
        let default_dir = match &manifest.build.main {
            Some(main) => {
                let dir = normalize(&root.join(main));
                if !dir.is_dir() {
                    return Err(hinted(
                        format!(
                            "`[build] main = \"{}\"` in kiln.toml is not a directory",
                            main.display()
                        ),
                        "name the package's directory relative to the module root, e.g. `./cmd/hello`",
                    ));
                }
                dir
            }
            None => root.clone(),
        };
        let dir = project
            .package_dir
            .as_deref()
            .map(normalize)
            .unwrap_or_else(|| default_dir.clone());
        let described = dir == default_dir;
        let Ok(rel) = dir.strip_prefix(&root) else {
            return Err(hinted(
                format!(
                    "`{}` is outside the Go module in `{}`",
                    dir.display(),
                    root.display()
                ),
                "name a package directory inside the module",
            ));
        };
        let rel: Vec<String> = rel
            .components()
            .map(|c| c.as_os_str().to_string_lossy().into_owned())
            .collect();
        let arg = if rel.is_empty() {
            ".".to_string()
        } else {
            format!("./{}", rel.join("/"))
        };
        check_main_package(&root, &dir, &arg, module_path)?;
        let dir_name = rel.last().cloned().unwrap_or_else(|| {
            module_path
                .rsplit('/')
                .next()
                .unwrap_or(module_path)
                .to_string()
        });
        let name = if described {
            manifest::package_name(manifest.package.as_ref(), || dir_name)?
        } else {
            // kiln.toml describes another package: its per-package settings
            // are not this one's.
            manifest.build.kind = None;
            manifest.build.wit = None;
            manifest.build.world = None;
            manifest::package_name(None, || dir_name)?
        };
        // `[build] wit` is relative to kiln.toml; else a `wit/` beside the
        // package, or, for the package kiln.toml describes, at the root.
        let world = if described && manifest.build.wit.is_some() {
            wit_world(&root, &manifest)?
        } else {
            match wit_world(&dir, &manifest)? {
                None if described => wit_world(&root, &manifest)?,
                world => world,
            }
        };
        Ok(Package {
            dir,
            arg,
            name,
            manifest,
            world,
        })
    }
}

/// Fails clearly unless `dir` holds Go files of which one is in package
/// `main` (what `go build` makes commands and `//go:wasmexport` libraries
/// from), naming the module's main packages in the hint.
fn check_main_package(root: &Path, dir: &Path, arg: &str, module_path: &str) -> Result<()> {
    let packages: Vec<String> = go_files(dir)
        .iter()
        .filter_map(|f| std::fs::read_to_string(f).ok())
        .filter_map(|text| package_clause(&text).map(str::to_string))
        .collect();
    if packages.iter().any(|p| p == "main") {
        return Ok(());
    }
    let what = match packages.first() {
        None => format!("`{arg}` in Go module `{module_path}` holds no Go package (no .go files)"),
        Some(p) => {
            format!("`{arg}` in Go module `{module_path}` is package `{p}`, not a main package")
        }
    };
    let mains = main_packages(root);
    let hint = if mains.is_empty() {
        "point kiln at the directory of a `package main` (a command, or a library with `//go:wasmexport` functions)".to_string()
    } else {
        let shown: Vec<&str> = mains.iter().take(10).map(String::as_str).collect();
        format!(
            "the module's main packages are {}{}: build one with `kiln build {first}` from the module root, or choose it with `[build] main = \"{first}\"` in kiln.toml",
            shown.join(", "),
            if mains.len() > shown.len() {
                ", …"
            } else {
                ""
            },
            first = shown[0],
        )
    };
    Err(hinted(what, hint))
}

/// The `.go` files of the package in `dir`, tests left out.
fn go_files(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut files: Vec<PathBuf> = entries
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            p.is_file()
                && p.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| n.ends_with(".go") && !n.ends_with("_test.go"))
        })
        .collect();
    files.sort();
    files
}

/// The module's directories holding a `package main`, as `./a/b`, found as
/// `go` finds packages: skipping `testdata`, `vendor`, names starting with
/// `.` or `_`, nested modules and kiln's `target`; a few levels deep.
fn main_packages(root: &Path) -> Vec<String> {
    let mut found = Vec::new();
    let mut stack = vec![(root.to_path_buf(), 0)];
    while let Some((dir, depth)) = stack.pop() {
        let is_main = go_files(&dir)
            .iter()
            .any(|f| std::fs::read_to_string(f).is_ok_and(|t| package_clause(&t) == Some("main")));
        if is_main && let Ok(rel) = dir.strip_prefix(root) {
            let rel = rel.to_string_lossy().replace('\\', "/");
            found.push(if rel.is_empty() {
                ".".to_string()
            } else {
                format!("./{rel}")
            });
        }
        if depth >= 5 {
            continue;
        }
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            let name = entry.file_name().to_string_lossy().into_owned();
            let skipped = name.starts_with('.')
                || name.starts_with('_')
                || matches!(name.as_str(), "testdata" | "vendor" | "target");
            if !skipped && path.is_dir() && !path.join("go.mod").exists() {
                stack.push((path, depth + 1));
            }
        }
    }
    found.sort();
    found
}

/// The name in a Go file's `package` clause: the first line that is not a
/// comment (line or block) or blank.
fn package_clause(text: &str) -> Option<&str> {
    let mut in_block = false;
    for line in text.lines() {
        let mut rest = line.trim();
        loop {
            if in_block {
                match rest.find("*/") {
                    Some(end) => {
                        in_block = false;
                        rest = rest[end + 2..].trim_start();
                    }
                    None => {
                        rest = "";
                        break;
                    }
                }
            } else if let Some(after) = rest.strip_prefix("/*") {
                in_block = true;
                rest = after;
            } else {
                break;
            }
        }
        if rest.is_empty() || rest.starts_with("//") {
            continue;
        }
        let name = rest.strip_prefix("package")?;
        if !name.starts_with(char::is_whitespace) {
            return None;
        }
        return name
            .split(|c: char| c.is_whitespace() || c == ';' || c == '/')
            .find(|w| !w.is_empty());
    }
    None
}

/// `path` with `.` and `..` resolved lexically (the module root and the
/// package's directory are compared as written, symlinks and all).
fn normalize(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir => {
                if !out.pop() {
                    out.push("..");
                }
            }
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn package_clauses_are_read_past_comments() {
        assert_eq!(package_clause("package main\n"), Some("main"));
        assert_eq!(
            package_clause("// Copyright\n\n//go:build wasip1\n\n/* a\n b */ package foo // x\n"),
            Some("foo")
        );
        assert_eq!(package_clause("/* one */\npackage  bar;\n"), Some("bar"));
        assert_eq!(package_clause("packagemain\n"), None);
        assert_eq!(package_clause("// only a comment\n"), None);
    }

    #[test]
    fn paths_are_normalized_lexically() {
        assert_eq!(
            normalize(Path::new("/m/./cmd/../cmd/hello")),
            Path::new("/m/cmd/hello")
        );
        assert_eq!(normalize(Path::new("/m/.")), Path::new("/m"));
    }
}
