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
