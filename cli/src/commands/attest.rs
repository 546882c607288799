//! `kiln attest` and `kiln verify-attestation`: in-toto attestations in Sigstore bundles, as cosign attaches and reads them.

use super::args::RegistryArgs;
use crate::ops::attest::{accepted, attest_digest, judge, predicate_type};
use crate::ops::sign::{identity, signer, verifier};
use crate::outcome::Outcome;
use crate::output::Printer;
use anyhow::{Context, Result};
use kiln_core::{Digest, Reporter};
use kiln_oci::Reference;
use serde::Serialize;
use std::path::PathBuf;

/// Attach a signed attestation to the manifest digest a reference resolves
/// to, as `cosign attest --key` does: the predicate, in an in-toto
/// statement about that digest, in a Sigstore bundle attached as a referrer.
#[derive(clap::Args, Debug)]
pub struct AttestArgs {
    /// REGISTRY/REPO[:TAG][@DIGEST], oci:DIR[:TAG], or NAME[:TAG].
    #[arg(value_name = "REF")]
    reference: String,
    /// The predicate: a JSON file.
    #[arg(long, value_name = "FILE")]
    predicate: PathBuf,
    /// The predicate type: `slsaprovenance1`, `cyclonedx`, `spdxjson`,
    /// `custom` or another of cosign's short names, or a URI.
    #[arg(long = "type", value_name = "TYPE", default_value = "custom")]
    type_name: String,
    /// The private key.
    #[arg(long, value_name = "FILE")]
    key: PathBuf,
    #[command(flatten)]
    registry: RegistryArgs,
    /// Print the result as JSON.
    #[arg(long)]
    json: bool,
}

/// Verify the attestations attached to the manifest digest a reference
/// resolves to, with a key, offline (no transparency log is checked).
#[derive(clap::Args, Debug)]
#[command(after_help = "Exit status: 0 verified, 1 no valid attestation, 2 error.")]
pub struct VerifyAttestationArgs {
    /// REGISTRY/REPO[:TAG][@DIGEST], oci:DIR[:TAG], or NAME[:TAG].
    #[arg(value_name = "REF")]
    reference: String,
    /// The public key (PEM).
    #[arg(long, value_name = "FILE")]
    key: PathBuf,
    /// Accept only attestations of this predicate type (a short name as
    /// `kiln attest --type` takes, or a URI).
    #[arg(long = "type", value_name = "TYPE")]
    type_name: Option<String>,
    #[command(flatten)]
    registry: RegistryArgs,
    /// Print the verified statements as JSON.
    #[arg(long)]
    json: bool,
}

#[derive(Serialize)]
struct Attached {
    digest: Digest,
    predicate_type: String,
    referrer: Digest,
}

pub fn attest(args: AttestArgs, printer: &Printer) -> Result<Outcome> {
    let reference = Reference::parse(&args.reference)?;
    let predicate_type = predicate_type(&args.type_name)?;
    let text = std::fs::read(&args.predicate).with_context(|| {
        format!(
            "failed to read the predicate `{}`",
            args.predicate.display()
        )
    })?;
    let predicate = predicate_of(&text, &predicate_type)
        .with_context(|| format!("the predicate `{}`", args.predicate.display()))?;
    let signer = signer(&args.key)?;
    signer.hash_for_bundles()?;
    let store = args.registry.options().open(&reference, false, printer)?;
    let digest = store.resolve_digest(&reference)?;
    let referrer = attest_digest(
        &store,
        &digest,
        &identity(&reference),
        &signer,
        &predicate_type,
        predicate,
        printer,
    )?;
    printer.status("Attested", &format!("{digest} ({predicate_type})"));
    if args.json {
        printer.json(&Attached {
            digest,
            predicate_type,
            referrer,
        })?;
    } else {
        printer.data(&format!("{referrer}\n"))?;
    }
    Ok(Outcome::Ok)
}

/// The predicate as cosign embeds it: for `custom`, the file's text
/// wrapped as `{"Data": TEXT, "Timestamp": CREATED}` (`SOURCE_DATE_EPOCH`,
/// else the epoch, where cosign writes the time); for every other type the
/// file parsed, which must be a JSON object.
fn predicate_of(text: &[u8], predicate_type: &str) -> Result<serde_json::Value> {
    if predicate_type == crate::ops::attest::CUSTOM {
        let text = String::from_utf8(text.to_vec()).context("is not UTF-8 text")?;
        let created = crate::ops::created()?;
        return Ok(serde_json::json!({"Data": text, "Timestamp": created}));
    }
    let value: serde_json::Value = serde_json::from_slice(text).context("is not JSON")?;
    if !value.is_object() {
        anyhow::bail!("is not a JSON object, as a `{predicate_type}` predicate must be");
    }
    Ok(value)
}

pub fn verify_attestation(args: VerifyAttestationArgs, printer: &Printer) -> Result<Outcome> {
    let reference = Reference::parse(&args.reference)?;
    let wanted = args.type_name.as_deref().map(predicate_type).transpose()?;
    let key = verifier(&args.key)?;
    let store = args.registry.options().open(&reference, false, printer)?;
    let digest = store.resolve_digest(&reference)?;
    let judged = judge(&store, &digest, &key, wanted.as_deref(), printer)?;
    for j in &judged {
        match &j.verdict {
            Ok(a) => printer.status(
                "Valid",
                &format!("attestation `{}` in {}", a.predicate_type, j.manifest),
            ),
            Err(why) => printer.warn(&format!("not accepted: bundle in {}: {why}", j.manifest)),
        }
    }
    let good = accepted(&judged);
    if args.json {
        printer.json(&good)?;
    }
    let outcome = crate::render::verdict(printer, good.len(), "attestation", &reference, &digest);
    if matches!(outcome, Outcome::Problems) {
        return Ok(outcome);
    }
    printer.status(
        "Note",
        "no transparency log or timestamp was checked: kiln verifies with the key, offline (as `cosign verify-attestation --insecure-ignore-tlog`)",
    );
    if !args.json {
        printer.json_lines(good.iter().map(|a| &a.statement))?;
    }
    Ok(Outcome::Ok)
}
