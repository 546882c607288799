//! What a command's run ended in, mapped to kiln's exit codes.

/// What a command's run ended in, mapped to kiln's exit codes.
pub enum Outcome {
    /// Exit 0: all good.
    Ok,
    /// Exit 1: a check ran and found problems.
    Problems,
}
