//! Operations: the work behind the commands, on plain values; what two commands share lives here.
//!
//! Operations: the work behind the commands, taking plain values (never clap
//! `Args`) and reporting through a `Reporter` or the printer; what two commands
//! share lives here, never in one of them.

pub mod attest;
pub mod build;
pub mod publish;
pub mod pull;
pub mod push;
pub mod registry;
pub mod sign;

use anyhow::Result;
use std::path::{Path, PathBuf};
use std::time::Instant;

/// Reads a wasm input from a path (mapped when large), or from stdin when
/// the path is `-`.
pub fn read_input(path: &Path) -> Result<kiln_core::input::Input> {
    kiln_core::input::Input::read(path)
}

/// The `created` time kiln writes into manifests and predicates:
/// `SOURCE_DATE_EPOCH`, else the epoch, never the wall clock.
pub fn created() -> Result<String> {
    kiln_oci::artifact::created(std::env::var("SOURCE_DATE_EPOCH").ok().as_deref())
}

/// The directory a file is in (`.` for a bare file name), where outputs
/// beside it go.
pub fn dir_of(file: &Path) -> PathBuf {
    file.parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."))
        .to_path_buf()
}

/// Milliseconds since `since`, as timings are reported.
pub fn ms(since: Instant) -> f64 {
    since.elapsed().as_secs_f64() * 1e3
}

/// Writes a precompiled artifact for `target` as `DIR/STEM.TARGET.cwasm`
/// with its descriptor, reports it (`Cached` or `Compiled`, the target and
/// the path) and returns its files: what `kiln compile` and `kiln publish`
/// do with each artifact they make.
pub fn write_precompiled(
    dir: &Path,
    stem: &str,
    target: kiln_core::Target,
    artifact: &kiln_aot::Artifact,
    reporter: &dyn kiln_core::Reporter,
) -> Result<kiln_aot::ArtifactFiles> {
    let files = kiln_aot::ArtifactFiles::new(dir, stem, target);
    files.write(&artifact.bytes, &artifact.descriptor)?;
    reporter.status(
        if artifact.cached {
            "Cached"
        } else {
            "Compiled"
        },
        &format!("{target} `{}`", files.cwasm.display()),
    );
    Ok(files)
}
