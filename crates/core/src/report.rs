//! How library stages tell the user what they are doing without printing.

/// Receives progress from kiln's stages. The CLI implements it with status
/// lines and progress bars on stderr; libraries never print themselves.
pub trait Reporter: Sync {
    /// A step started or finished, as a right-aligned verb and a message,
    /// e.g. `Componentizing` and the module's name.
    fn status(&self, verb: &str, message: &str);
    /// Something the user should know that does not stop the work.
    fn warn(&self, message: &str);
}

/// A reporter that drops everything, for callers that want no output.
#[derive(Debug, Default, Clone, Copy)]
pub struct SilentReporter;

impl Reporter for SilentReporter {
    fn status(&self, _verb: &str, _message: &str) {}
    fn warn(&self, _message: &str) {}
}
