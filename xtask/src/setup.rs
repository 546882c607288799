//! `cargo xtask setup`: installs the toolchain pieces kiln's builds and tests use, only when missing.

use crate::sh;
use anyhow::{Context, Result};
use std::process::Command;

/// Rust targets the fixtures are built for.
const RUST_TARGETS: &[&str] = &["wasm32-wasip2", "wasm32-wasip1"];
const RUST_COMPONENTS: &[&str] = &["rustfmt", "clippy"];

pub fn run() -> Result<()> {
    rust_targets()?;
    Ok(())
}

fn rust_targets() -> Result<()> {
    let sysroot = String::from_utf8(
        Command::new("rustc")
            .args(["--print", "sysroot"])
            .output()
            .context("failed to run rustc")?
            .stdout,
    )?;
    let sysroot = std::path::Path::new(sysroot.trim());
    let missing: Vec<&str> = RUST_TARGETS
        .iter()
        .copied()
        .filter(|t| !sysroot.join("lib/rustlib").join(t).is_dir())
        .collect();
    if !missing.is_empty() {
        sh(Command::new("rustup")
            .args(["target", "add"])
            .args(&missing))?;
    }
    let components = String::from_utf8(
        Command::new("rustup")
            .args(["component", "list", "--installed"])
            .output()
            .context("failed to run rustup")?
            .stdout,
    )?;
    let missing: Vec<&str> = RUST_COMPONENTS
        .iter()
        .copied()
        .filter(|c| !components.lines().any(|l| l.starts_with(c)))
        .collect();
    if !missing.is_empty() {
        sh(Command::new("rustup")
            .args(["component", "add"])
            .args(&missing))?;
    }
    eprintln!("setup: rust targets {} ready", RUST_TARGETS.join(", "));
    Ok(())
}
