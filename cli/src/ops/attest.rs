//! In-toto attestations in Sigstore bundles, as `cosign attest --key` attaches them: made, stored and judged.

use anyhow::{Result, bail};
use kiln_core::{Digest, Reporter};
use kiln_oci::Store;
use kiln_sign::bundle::{Bundle, MAX_BUNDLE_BYTES, SIGN_PREDICATE_TYPE, Statement};
use kiln_sign::{Signer, Verifier};
use serde::Serialize;

/// cosign's short names for predicate types (`cosign attest --type`), and
/// the URIs they stand for.
pub const PREDICATE_TYPES: &[(&str, &str)] = &[
    ("slsaprovenance", "https://slsa.dev/provenance/v0.2"),
    ("slsaprovenance02", "https://slsa.dev/provenance/v0.2"),
    ("slsaprovenance1", "https://slsa.dev/provenance/v1"),
    ("link", "https://in-toto.io/Link/v1"),
    ("spdx", "https://spdx.dev/Document"),
    ("spdxjson", "https://spdx.dev/Document"),
    ("cyclonedx", "https://cyclonedx.org/bom"),
    ("vuln", "https://cosign.sigstore.dev/attestation/vuln/v1"),
    ("openvex", "https://openvex.dev/ns"),
    ("custom", "https://cosign.sigstore.dev/attestation/v1"),
];

/// The predicate type of the SLSA v1 build provenance.
pub const SLSA_PROVENANCE_V1: &str = "https://slsa.dev/provenance/v1";
/// The predicate type of cosign's `custom` attestations.
pub const CUSTOM: &str = "https://cosign.sigstore.dev/attestation/v1";
/// The predicate type of a CycloneDX SBOM.
pub const CYCLONEDX: &str = "https://cyclonedx.org/bom";

/// The predicate type a `--type` names: one of cosign's short names, or a
/// URI as it is.
pub fn predicate_type(name: &str) -> Result<String> {
    if let Some((_, uri)) = PREDICATE_TYPES.iter().find(|(short, _)| *short == name) {
        return Ok(uri.to_string());
    }
    if name.contains("://") {
        return Ok(name.to_string());
    }
    let names: Vec<&str> = PREDICATE_TYPES.iter().map(|(s, _)| *s).collect();
    bail!(
        "unknown predicate type `{name}`: use one of {} or a URI",
        names.join(", ")
    )
}

/// Signs `predicate` of `predicate_type` about `subject` (named `name`, the
/// repository) into a DSSE bundle and attaches it to `subject` as a
/// referrer. Returns the referrer's digest.
pub fn attest_digest(
    store: &Store,
    subject: &Digest,
    name: &str,
    signer: &Signer,
    predicate_type: &str,
    predicate: serde_json::Value,
    reporter: &dyn Reporter,
) -> Result<Digest> {
    let statement = Statement::attestation(name, subject, predicate_type, predicate);
    crate::ops::sign::attach_statement(store, subject, signer, &statement, reporter)
}

/// An attestation stored beside a digest, judged with a key.
pub struct Judged {
    /// The referrer holding it.
    pub manifest: Digest,
    /// The verified statement, else why it was not accepted.
    pub verdict: std::result::Result<Attested, String>,
}

/// An attestation that verified.
#[derive(Debug, Clone, Serialize)]
pub struct Attested {
    /// The referrer holding it.
    pub manifest: Digest,
    /// The statement's predicate type.
    pub predicate_type: String,
    /// The signed statement.
    pub statement: Statement,
    /// How many transparency-log entries its bundle carries; none is
    /// checked offline.
    pub log_entries: usize,
}

/// Every attestation bundle attached to `digest`, each judged with `key`:
/// its signature, that it is an attestation (a signature's statement is
/// not), that its statement is about `digest`, and, when `wanted` is given,
/// that it is of that predicate type.
pub fn judge(
    store: &Store,
    digest: &Digest,
    key: &Verifier,
    wanted: Option<&str>,
    reporter: &dyn Reporter,
) -> Result<Vec<Judged>> {
    let mut judged = Vec::new();
    // Signatures, and with `wanted` attestations of other types (their
    // referrers say so), are neither fetched nor reported as rejected, as
    // `cosign verify-attestation --type` passes them over. A referrer that
    // says nothing, or claims what is wanted, is judged.
    let of_interest = |t: Option<&str>| match (t, wanted) {
        (Some(t), _) if t == SIGN_PREDICATE_TYPE => false,
        (Some(t), Some(w)) => t == w,
        _ => true,
    };
    for found in store.bundles(digest, MAX_BUNDLE_BYTES as u64, &of_interest, reporter)? {
        let manifest = found.manifest;
        let verdict = judge_one(&found.bytes, digest, key, wanted)
            .map(|(statement, log_entries)| Attested {
                manifest,
                predicate_type: statement.predicate_type.clone(),
                statement,
                log_entries,
            })
            .map_err(|e| format!("{e:#}"));
        judged.push(Judged { manifest, verdict });
    }
    Ok(judged)
}

fn judge_one(
    bytes: &[u8],
    digest: &Digest,
    key: &Verifier,
    wanted: Option<&str>,
) -> Result<(Statement, usize)> {
    let bundle = Bundle::parse(bytes)?;
    let statement = bundle.verified_statement(key)?;
    if statement.predicate_type == SIGN_PREDICATE_TYPE {
        bail!("a signature (`{SIGN_PREDICATE_TYPE}`), not an attestation");
    }
    if !statement.covers(digest, &Default::default()) {
        bail!("the statement is about another digest than `{digest}`");
    }
    if let Some(wanted) = wanted
        && statement.predicate_type != wanted
    {
        bail!(
            "an attestation of type `{}`, not `{wanted}`",
            statement.predicate_type
        );
    }
    Ok((statement, bundle.verification_material.tlog_entries.len()))
}

/// The accepted attestations among `judged`.
pub fn accepted(judged: &[Judged]) -> Vec<&Attested> {
    judged
        .iter()
        .filter_map(|j| j.verdict.as_ref().ok())
        .collect()
}
