//! Keys and signatures as publish, pull and the signing commands use them.
//!
//! Keys and signatures as publish, pull and the signing commands use them:
//! loading keys (asking for a password when needed), cosign's identity for a
//! reference, and the stored signatures of a digest that a key verifies.

use anyhow::{Context, Result, bail};
use kiln_core::{Digest, Reporter};
use kiln_oci::{Reference, Store};
use kiln_sign::{Payload, SIMPLE_SIGNING_TYPE, Verifier};
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

/// The payloads of `digest` signed by `key` that carry `annotations`, and
/// why every other stored signature was not accepted.
pub fn verified_payloads(
    store: &Store,
    digest: &Digest,
    key: &Verifier,
    annotations: &BTreeMap<String, String>,
    reporter: &dyn Reporter,
) -> Result<(Vec<Payload>, Vec<String>)> {
    let mut good = Vec::new();
    let mut rejected = Vec::new();
    for stored in store.signatures(digest, reporter)? {
        let s = match stored {
            Ok(s) => s,
            Err(why) => {
                rejected.push(why);
                continue;
            }
        };
        if !key.verify(&s.payload, &s.signature) {
            rejected.push("a signature by another key, or not over its payload".to_string());
            continue;
        }
        let payload = match Payload::parse(&s.payload) {
            Ok(p) => p,
            Err(_) => {
                rejected.push("a signed payload that is not a simple-signing payload".to_string());
                continue;
            }
        };
        if payload.critical.image.docker_manifest_digest != digest.to_string() {
            rejected.push(format!(
                "a signature over another digest ({})",
                payload.critical.image.docker_manifest_digest
            ));
        } else if payload.critical.type_name != SIMPLE_SIGNING_TYPE {
            rejected.push(format!(
                "a payload of type `{}`",
                payload.critical.type_name
            ));
        } else if !payload.has_annotations(annotations) {
            rejected.push("a signature without the required annotations".to_string());
        } else {
            good.push(payload);
        }
    }
    Ok((good, rejected))
}
