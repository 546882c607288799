//! One module per subcommand, each with its clap `Args` and a `run` function.

pub mod audit;
pub mod build;
pub mod compile;
pub mod doctor;
pub mod inspect;
pub mod login;
pub mod new;
pub mod publish;
pub mod pull;
pub mod push;
pub mod registry;
pub mod sign;
pub mod tags;
pub mod validate;

use anyhow::{Context, Result};
use std::io::Read;
use std::path::Path;

/// Reads a wasm input from a path, or from stdin when the path is `-`.
pub fn read_input(path: &Path) -> Result<Vec<u8>> {
    if path.as_os_str() == "-" {
        let mut bytes = Vec::new();
        std::io::stdin()
            .lock()
            .read_to_end(&mut bytes)
            .context("failed to read stdin")?;
        return Ok(bytes);
    }
    std::fs::read(path).with_context(|| format!("failed to read `{}`", path.display()))
}

/// The directory a file is in (`.` for a bare file name), where outputs
/// beside it go.
pub fn dir_of(file: &Path) -> std::path::PathBuf {
    file.parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."))
        .to_path_buf()
}
