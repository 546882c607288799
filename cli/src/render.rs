//! Human renderings more than one command shows: load checks of a precompiled artifact, the line for an invalid binary, a verdict.

use crate::outcome::Outcome;
use crate::output::Printer;
use kiln_core::{Digest, Reporter};
use std::path::Path;

/// The last status line of `verify` and `verify-attestation`: how many
/// `what`s (`signature`, `attestation`) this key vouches for on `digest`,
/// and the outcome (problems when none).
pub fn verdict(
    printer: &Printer,
    accepted: usize,
    what: &str,
    reference: &impl std::fmt::Display,
    digest: &Digest,
) -> Outcome {
    if accepted == 0 {
        printer.status(
            "Not verified",
            &format!("no valid {what} by this key for `{reference}` ({digest})"),
        );
        return Outcome::Problems;
    }
    printer.status(
        "Verified",
        &format!("`{reference}` ({digest}): {accepted} {what}(s) by this key"),
    );
    Outcome::Ok
}

/// One `pass|FAIL name: reason` line per check.
pub fn render_checks(report: &kiln_aot::CheckReport) -> String {
    report
        .checks
        .iter()
        .map(|c| {
            format!(
                "{} {}: {}\n",
                if c.pass { "pass" } else { "FAIL" },
                c.name,
                c.reason
            )
        })
        .collect()
}

/// The line `kiln validate` prints for an invalid file.
pub fn invalid_message(file: &Path, invalid: &kiln_core::Invalid) -> String {
    format!(
        "`{}` is invalid at offset {:#x}: {}",
        file.display(),
        invalid.offset,
        invalid.message
    )
}
