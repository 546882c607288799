//! Errors that carry a next step for the user.

use std::fmt;

/// An error with a hint saying what the user can do about it.
///
/// The CLI finds it anywhere in an error chain and prints the hint on its own
/// `hint:` line after the error and its causes.
#[derive(Debug)]
pub struct Hinted {
    /// What went wrong.
    pub message: String,
    /// What to do about it.
    pub hint: String,
}

impl fmt::Display for Hinted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Hinted {}

/// Builds an [`anyhow::Error`] with a hint.
pub fn hinted(message: impl Into<String>, hint: impl Into<String>) -> anyhow::Error {
    anyhow::Error::new(Hinted {
        message: message.into(),
        hint: hint.into(),
    })
}

/// A string that is not a `sha256:<64 lowercase hex digits>` digest.
#[derive(Debug, thiserror::Error)]
#[error("`{0}` is not a sha256 digest")]
pub struct ParseDigestError(pub String);

/// Why a binary is not valid wasm, and where: what wasmparser's validator
/// said about it. `kiln validate` reports it for a whole binary, function
/// bodies included; `inspect` and `audit` for everything but the bodies,
/// which every report of a binary passes first. Other failures (a binary cut
/// short, a malformed section header) are plain errors; this one is a
/// finding about a binary that could be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message} (at offset {offset:#x})")]
pub struct Invalid {
    /// Byte offset of the problem in the input.
    pub offset: usize,
    /// What is wrong there.
    pub message: String,
}
