//! The human side of a publish's end: the status line and what was pushed.
//!
//! The human side of a publish's end: the status line, and on stdout what was
//! pushed (the reference and each attached artifact) or, for a dry run, the
//! component.

use super::receipt::Receipt;
use crate::output::{Printer, human_size};
use anyhow::Result;
use kiln_core::Reporter;
use kiln_oci::Reference;
use std::path::Path;
use std::time::Instant;

/// `Stopped …`: the component failed its audit, so nothing was pushed.
pub fn stopped(printer: &Printer, component: &Path, findings: usize) {
    printer.status(
        "Stopped",
        &format!(
            "`{}` fails its audit policy ({findings} finding(s)); nothing was pushed",
            component.display(),
        ),
    );
}

/// `Published …` (or `Dry run …`) with the time taken and where the
/// receipt is.
pub fn finished(printer: &Printer, receipt: &Receipt, receipt_path: &Path, started: Instant) {
    printer.status(
        if receipt.dry_run {
            "Dry run"
        } else {
            "Published"
        },
        &format!(
            "{} in {:.2}s (receipt `{}`)",
            receipt.pushed.as_ref().map_or_else(
                || receipt.component.digest.to_string(),
                |p| p.reference.clone()
            ),
            started.elapsed().as_secs_f64(),
            receipt_path.display()
        ),
    );
}

/// On stdout, what was pushed, one reference a line (each attached
/// artifact after a tab-separated label), or the component's path and
/// digest when nothing was; then how much was uploaded.
pub fn summary(printer: &Printer, receipt: &Receipt, reference: &Reference) -> Result<()> {
    let mut text = String::new();
    match &receipt.pushed {
        Some(p) => {
            text.push_str(&format!("{}\n", p.reference));
            for r in &p.referrers {
                text.push_str(&format!(
                    "{}\t{}\n",
                    r.target.map(kiln_core::Target::as_str).unwrap_or(
                        if r.artifact_type == kiln_oci::artifact::SBOM_ARTIFACT_TYPE {
                            "sbom"
                        } else {
                            "referrer"
                        }
                    ),
                    reference.with_digest(&r.digest)
                ));
            }
        }
        None => text.push_str(&format!(
            "{}\t{}\n",
            receipt.component.path.display(),
            receipt.component.digest
        )),
    }
    printer.data(&text)?;
    if receipt.run.uploaded_bytes > 0 || !receipt.dry_run {
        printer.status(
            "Uploaded",
            &format!("{} of blobs", human_size(receipt.run.uploaded_bytes)),
        );
    }
    Ok(())
}
