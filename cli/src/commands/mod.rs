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

use anyhow::Result;
use std::path::Path;

/// Reads a wasm input from a path (mapped when large), or from stdin when
/// the path is `-`.
pub fn read_input(path: &Path) -> Result<kiln_core::input::Input> {
    kiln_core::input::Input::read(path)
}

/// The directory a file is in (`.` for a bare file name), where outputs
/// beside it go.
pub fn dir_of(file: &Path) -> std::path::PathBuf {
    file.parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."))
        .to_path_buf()
}
