//! Human renderings more than one command shows: load checks of a precompiled artifact, the line for an invalid binary.

use std::path::Path;

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
