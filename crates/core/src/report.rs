//! How library stages tell the user what they are doing without printing.

/// Receives progress from kiln's stages. The CLI implements it with status
/// lines and progress bars on stderr; libraries never print themselves.
pub trait Reporter: Sync {
    /// A step started or finished, as a right-aligned verb and a message,
    /// e.g. `Componentizing` and the module's name.
    fn status(&self, verb: &str, message: &str);
    /// Something the user should know that does not stop the work.
    fn warn(&self, message: &str);
    /// A transfer or other long step of `total` units (bytes) starts; the
    /// returned handle is told how far it got. By default nothing is shown.
    fn progress(&self, label: &str, total: u64) -> Box<dyn Progress> {
        let _ = (label, total);
        Box::new(NoProgress)
    }
}

/// How far a long step has got (see [`Reporter::progress`]).
pub trait Progress: Send + Sync {
    /// `n` more units are done.
    fn inc(&self, n: u64);
    /// The step is over.
    fn finish(&self);
}

/// Progress nobody watches.
#[derive(Debug, Default, Clone, Copy)]
pub struct NoProgress;

impl Progress for NoProgress {
    fn inc(&self, _n: u64) {}
    fn finish(&self) {}
}

/// A reporter that drops everything, for callers that want no output.
#[derive(Debug, Default, Clone, Copy)]
pub struct SilentReporter;

impl Reporter for SilentReporter {
    fn status(&self, _verb: &str, _message: &str) {}
    fn warn(&self, _message: &str) {}
}
