//! Toolchain discovery shared by the drivers: versions, installed targets, git revisions.

use std::path::Path;
use std::process::Command;

/// The version line of `rustc` as run in `dir` (which honours a
/// `rust-toolchain.toml` there), e.g. `rustc 1.95.0 (59807616e 2026-04-14)`.
pub fn rustc_version(dir: &Path) -> Option<String> {
    kiln_process::read_stdout(Command::new(rustc()).arg("--version").current_dir(dir)).ok()
}

pub(crate) fn rustc() -> String {
    std::env::var("RUSTC").unwrap_or_else(|_| "rustc".to_string())
}

pub(crate) fn cargo() -> String {
    std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_string())
}

/// The commit checked out in the git work tree holding `dir`, if it is one
/// and git is installed.
pub fn git_revision(dir: &Path) -> Option<String> {
    let rev = kiln_process::read_stdout(
        Command::new("git")
            .args(["rev-parse", "--verify", "--quiet", "HEAD"])
            .current_dir(dir),
    )
    .ok()?;
    (rev.len() >= 40 && rev.bytes().all(|b| b.is_ascii_hexdigit())).then_some(rev)
}
