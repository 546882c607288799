//! Keys and signatures as publish, pull and the signing commands use them.
//!
//! Loading keys (asking for a password when needed), signing a digest in
//! either format, and judging every stored signature on its own.

use anyhow::{Context, Result, bail};
use kiln_core::{Digest, Reporter, SignatureFormat};
use kiln_oci::signature::StoredSignature;
use kiln_oci::{Reference, Store};
use kiln_sign::bundle::{Bundle, MAX_BUNDLE_BYTES, SIGN_PREDICATE_TYPE, Statement};
use kiln_sign::{Payload, SIMPLE_SIGNING_TYPE, Signer, Verifier};
use serde::Serialize;
use std::collections::BTreeMap;
use std::path::Path;
use zeroize::Zeroizing;

/// The password for a private key: `KILN_PASSWORD`, else `COSIGN_PASSWORD`,
/// else asked on the terminal.
pub fn password(confirm: bool) -> Result<Option<Zeroizing<String>>> {
    for var in ["KILN_PASSWORD", "COSIGN_PASSWORD"] {
        if let Ok(p) = std::env::var(var) {
            return Ok(Some(Zeroizing::new(p)));
        }
    }
    if !std::io::IsTerminal::is_terminal(&std::io::stdin()) {
        return Ok(None);
    }
    let first = Zeroizing::new(
        rpassword::prompt_password("Password for the private key: ")
            .context("failed to read the password")?,
    );
    if confirm {
        let again = Zeroizing::new(
            rpassword::prompt_password("Again: ").context("failed to read the password")?,
        );
        if *again != *first {
            bail!("the passwords differ");
        }
    }
    Ok(Some(first))
}

/// Reads a private key, asking for its password when it is encrypted.
pub fn signer(key: &Path) -> Result<kiln_sign::Signer> {
    let pem = Zeroizing::new(
        std::fs::read(key)
            .with_context(|| format!("failed to read the key `{}`", key.display()))?,
    );
    let encrypted = pem.windows(9).any(|w| w == b"ENCRYPTED");
    let pw = if encrypted { password(false)? } else { None };
    kiln_sign::load_private_key(&pem, pw.as_ref().map(|p| p.as_bytes()))
        .with_context(|| format!("failed to load the private key `{}`", key.display()))
}

/// Reads a public key file.
pub fn verifier(key: &Path) -> Result<Verifier> {
    let pem = std::fs::read(key)
        .with_context(|| format!("failed to read the key `{}`", key.display()))?;
    kiln_sign::load_public_key(&pem)
        .with_context(|| format!("failed to load the public key `{}`", key.display()))
}

/// The identity cosign puts in a payload: the repository, without tag or
/// digest.
pub fn identity(reference: &Reference) -> String {
    match reference {
        Reference::Registry {
            registry,
            repository,
            ..
        } => format!("{registry}/{repository}"),
        Reference::Layout { dir, .. } => format!("oci:{}", dir.display()),
    }
}

/// A signature of a digest found in a store, judged with a key on its own.
pub struct Judged {
    /// How it is stored.
    pub format: SignatureFormat,
    /// The manifest holding it: the bundle's referrer, or the `.sig`
    /// manifest (`None` when that could not be read).
    pub manifest: Option<Digest>,
    /// What it says when it verified, else why it was not accepted.
    pub verdict: std::result::Result<Accepted, String>,
}

/// A signature that verified, in the shape `cosign verify` prints (the
/// simple-signing payload; for a bundle, its predicate type as
/// `critical.type` and its subject's annotations as `optional`), with the
/// format and manifest it was found in.
#[derive(Debug, Clone, Serialize)]
pub struct Accepted {
    #[serde(flatten)]
    pub payload: Payload,
    pub format: SignatureFormat,
    pub manifest: Digest,
    /// For a bundle, how many transparency-log entries it carries; kiln
    /// checks none of them (it verifies offline, with the key).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub log_entries: Option<usize>,
}

impl Accepted {
    /// Whether its annotations are exactly `annotations`.
    pub fn annotated_exactly(&self, annotations: &BTreeMap<String, String>) -> bool {
        let given = self.payload.optional.clone().unwrap_or_default();
        given.len() == annotations.len()
            && annotations
                .iter()
                .all(|(k, v)| given.get(k).and_then(|x| x.as_str()) == Some(v.as_str()))
    }
}

/// Every signature stored for `digest`, in both formats, each judged with
/// `key`: its signature, that it is about exactly `digest`, that it is a
/// signature (not an attestation or another payload type) and that it
/// carries `required`. `identity` is the repository as the output names it.
pub fn judge(
    store: &Store,
    digest: &Digest,
    key: &Verifier,
    required: &BTreeMap<String, String>,
    identity: &str,
    reporter: &dyn Reporter,
) -> Result<Vec<Judged>> {
    let mut judged = Vec::new();
    // Attestations (their referrers say so) are not signatures: neither
    // fetched nor reported as rejected ones. A referrer that says nothing,
    // or claims a signature, is judged.
    let signatures = |t: Option<&str>| t.is_none_or(|t| t == SIGN_PREDICATE_TYPE);
    for found in store.bundles(digest, MAX_BUNDLE_BYTES as u64, &signatures, reporter)? {
        let manifest = found.manifest;
        let verdict = Bundle::parse(&found.bytes)
            .and_then(|b| b.verify_signature(key, digest, required))
            .map(|v| Accepted {
                payload: bundle_payload(&v.statement, identity, digest),
                format: SignatureFormat::Bundle,
                manifest,
                log_entries: Some(v.log_entries),
            })
            .map_err(|e| format!("{e:#}"));
        judged.push(Judged {
            format: SignatureFormat::Bundle,
            manifest: Some(manifest),
            verdict,
        });
    }
    for stored in store.signatures(digest, reporter)? {
        judged.push(match stored {
            Ok(s) => Judged {
                format: SignatureFormat::Legacy,
                manifest: Some(s.manifest),
                verdict: judge_legacy(&s, key, digest, required),
            },
            Err(why) => Judged {
                format: SignatureFormat::Legacy,
                manifest: None,
                verdict: Err(why),
            },
        });
    }
    Ok(judged)
}

/// A legacy signature judged: over its payload by `key`, a simple-signing
/// payload about `digest` carrying `required`.
fn judge_legacy(
    s: &StoredSignature,
    key: &Verifier,
    digest: &Digest,
    required: &BTreeMap<String, String>,
) -> std::result::Result<Accepted, String> {
    if !key.verify(&s.payload, &s.signature) {
        return Err("a signature by another key, or not over its payload".to_string());
    }
    let payload = Payload::parse(&s.payload)
        .map_err(|_| "a signed payload that is not a simple-signing payload".to_string())?;
    if payload.critical.image.docker_manifest_digest != digest.to_string() {
        Err(format!(
            "a signature over another digest ({})",
            payload.critical.image.docker_manifest_digest
        ))
    } else if payload.critical.type_name != SIMPLE_SIGNING_TYPE {
        Err(format!(
            "a payload of type `{}`",
            payload.critical.type_name
        ))
    } else if !payload.has_annotations(required) {
        Err("a signature without the required annotations".to_string())
    } else {
        Ok(Accepted {
            payload,
            format: SignatureFormat::Legacy,
            manifest: s.manifest,
            log_entries: None,
        })
    }
}

/// What a verified bundle says, as `cosign verify` prints it.
fn bundle_payload(statement: &Statement, identity: &str, digest: &Digest) -> Payload {
    let hex = digest.hex();
    let annotations = statement
        .subject
        .iter()
        .find(|s| s.digest.get("sha256") == Some(&hex))
        .and_then(|s| s.annotations.clone())
        .filter(|a| !a.is_empty());
    let mut payload = Payload::new(identity, digest, &BTreeMap::new());
    payload.critical.type_name = statement.predicate_type.clone();
    payload.optional = annotations.map(|a| a.into_iter().collect());
    payload
}

/// The accepted signatures among `judged`.
pub fn accepted(judged: &[Judged]) -> Vec<&Accepted> {
    judged
        .iter()
        .filter_map(|j| j.verdict.as_ref().ok())
        .collect()
}

/// Signs `subject` with `signer` in `format` and stores the signature
/// beside it: a Sigstore bundle attached as a referrer, or a layer of the
/// `.sig` manifest. Returns the manifest holding it.
pub fn sign_digest(
    store: &Store,
    reference: &Reference,
    subject: &Digest,
    signer: &Signer,
    annotations: &BTreeMap<String, String>,
    format: SignatureFormat,
    reporter: &dyn Reporter,
) -> Result<Digest> {
    match format {
        SignatureFormat::Bundle => {
            let statement = Statement::signature(subject, annotations);
            attach_statement(store, subject, signer, &statement, reporter)
        }
        SignatureFormat::Legacy => {
            let payload = Payload::new(&identity(reference), subject, annotations).to_bytes()?;
            let signature = signer.sign(&payload)?;
            store.add_signature(subject, payload, &signature, reporter)
        }
    }
}

/// Signs `statement` (about `subject`) into a DSSE bundle and attaches it
/// to `subject` as a referrer, as cosign v3 attaches signatures and
/// attestations alike. Returns the referrer's digest.
pub fn attach_statement(
    store: &Store,
    subject: &Digest,
    signer: &Signer,
    statement: &Statement,
    reporter: &dyn Reporter,
) -> Result<Digest> {
    let descriptor = store.descriptor(subject)?;
    let bundle = Bundle::sign_statement(signer, statement)?.to_bytes()?;
    let created = crate::ops::created()?;
    store.add_bundle(
        &descriptor,
        bundle,
        &statement.predicate_type,
        &created,
        reporter,
    )
}

/// Where a signature is, as a reference: the `.sig` tag, or the bundle's
/// referrer by digest.
pub fn signature_reference(
    reference: &Reference,
    subject: &Digest,
    format: SignatureFormat,
    manifest: &Digest,
) -> String {
    match format {
        SignatureFormat::Bundle => reference.with_digest(manifest).to_string(),
        SignatureFormat::Legacy => reference
            .with_tag(&kiln_oci::signature::signature_tag(subject))
            .to_string(),
    }
}
