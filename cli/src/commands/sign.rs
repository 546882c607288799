//! `kiln keygen`, `sign`, `verify`, `sign-blob`, `verify-blob`: cosign-compatible signatures with keys.
//!
//! `kiln keygen`, `sign`, `verify`, `sign-blob`, `verify-blob`:
//! cosign-compatible signatures with keys, offline, for artifacts in registries
//! and local layouts and for files.

use super::args::RegistryArgs;
use crate::ops::sign::{identity, password, signer, verified_payloads, verifier};
use crate::outcome::Outcome;
use crate::output::Printer;
use anyhow::{Context, Result, bail};
use kiln_core::{Digest, Reporter};
use kiln_oci::Reference;
use kiln_sign::Payload;
use serde::Serialize;
use std::path::{Path, PathBuf};

/// Make a key pair in cosign's format: PREFIX.key (encrypted) and PREFIX.pub.
#[derive(clap::Args, Debug)]
pub struct KeygenArgs {
    /// File name prefix.
    #[arg(long, value_name = "PREFIX", default_value = "cosign")]
    output_prefix: PathBuf,
    /// Replace existing key files.
    #[arg(long)]
    force: bool,
}

/// Sign the manifest digest a reference resolves to, as cosign does.
#[derive(clap::Args, Debug)]
pub struct SignArgs {
    /// REGISTRY/REPO[:TAG][@DIGEST], oci:DIR[:TAG], or NAME[:TAG].
    #[arg(value_name = "REF")]
    reference: String,
    /// The private key: cosign's encrypted format, PKCS#8 or SEC1 PEM.
    #[arg(long, value_name = "FILE")]
    key: PathBuf,
    /// Annotations for the payload's `optional` section (repeatable).
    #[arg(short = 'a', long = "annotation", value_name = "KEY=VALUE")]
    annotations: Vec<String>,
    /// Also sign each precompiled artifact attached to it.
    #[arg(long)]
    recursive: bool,
    #[command(flatten)]
    registry: RegistryArgs,
    /// Print the result as JSON.
    #[arg(long)]
    json: bool,
}

/// Verify that a key signed exactly the manifest digest a reference resolves to.
#[derive(clap::Args, Debug)]
#[command(after_help = "Exit status: 0 verified, 1 no valid signature, 2 error.")]
pub struct VerifyArgs {
    /// REGISTRY/REPO[:TAG][@DIGEST], oci:DIR[:TAG], or NAME[:TAG].
    #[arg(value_name = "REF")]
    reference: String,
    /// The public key (PEM).
    #[arg(long, value_name = "FILE")]
    key: PathBuf,
    /// Annotations the signed payload must carry (repeatable).
    #[arg(short = 'a', long = "annotation", value_name = "KEY=VALUE")]
    annotations: Vec<String>,
    #[command(flatten)]
    registry: RegistryArgs,
    /// Print the verified payloads as JSON.
    #[arg(long)]
    json: bool,
}

/// Sign a file; prints the base64 signature, as `cosign sign-blob` does.
#[derive(clap::Args, Debug)]
pub struct SignBlobArgs {
    /// The file (a .wasm, .cwasm, or anything else).
    #[arg(value_name = "FILE")]
    file: PathBuf,
    /// The private key.
    #[arg(long, value_name = "FILE")]
    key: PathBuf,
    /// Also write the signature to this file.
    #[arg(long, value_name = "FILE")]
    output_signature: Option<PathBuf>,
}

/// Verify a file's signature.
#[derive(clap::Args, Debug)]
#[command(after_help = "Exit status: 0 verified, 1 not verified, 2 error.")]
pub struct VerifyBlobArgs {
    /// The file.
    #[arg(value_name = "FILE")]
    file: PathBuf,
    /// The signature: a file holding it, or the base64 text itself.
    #[arg(long, value_name = "SIG")]
    signature: String,
    /// The public key (PEM).
    #[arg(long, value_name = "FILE")]
    key: PathBuf,
}

pub fn keygen(args: KeygenArgs, printer: &Printer) -> Result<Outcome> {
    let private = PathBuf::from(format!("{}.key", args.output_prefix.display()));
    let public = PathBuf::from(format!("{}.pub", args.output_prefix.display()));
    for p in [&private, &public] {
        if p.exists() && !args.force {
            bail!("`{}` exists; pass --force to replace it", p.display());
        }
    }
    let pw = password(true)?.context(
        "no password: set KILN_PASSWORD (or COSIGN_PASSWORD; empty is allowed), or run on a terminal",
    )?;
    let (key, pem) = kiln_sign::generate(pw.as_bytes())?;
    kiln_core::fs::write_private(&private, key.as_bytes())?;
    kiln_core::fs::write_atomic(&public, pem.as_bytes())?;
    printer.status(
        "Generated",
        &format!("`{}` and `{}`", private.display(), public.display()),
    );
    printer.data(&format!("{}\n{}\n", private.display(), public.display()))?;
    Ok(Outcome::Ok)
}

/// What `sign --recursive` signs besides the artifact itself.
const RECURSIVE_TYPES: &[&str] = &[
    kiln_oci::artifact::CWASM_ARTIFACT_TYPE,
    kiln_oci::artifact::SBOM_ARTIFACT_TYPE,
];

#[derive(Serialize)]
struct Signed {
    digest: Digest,
    signature_manifest: Digest,
    target: Option<String>,
}

pub fn sign(args: SignArgs, printer: &Printer) -> Result<Outcome> {
    let reference = Reference::parse(&args.reference)?;
    let annotations = kiln_sign::parse_annotations(&args.annotations)?;
    let signer = signer(&args.key)?;
    let store = args.registry.options().open(&reference, false, printer)?;
    let digest = store.resolve_digest(&reference)?;
    let mut subjects = vec![(digest, None)];
    if args.recursive {
        // Only what really refers to this digest, fetched and checked by
        // the referrer helper, and only precompiled artifacts and SBOMs:
        // never signatures, or each run would sign the last run's.
        for r in
            store.verified_referrers(&digest, kiln_oci::Allowed::Types(RECURSIVE_TYPES), printer)?
        {
            let target = r
                .annotations()
                .get(kiln_oci::artifact::ANNOTATION_TARGET)
                .cloned();
            subjects.push((r.digest, target));
        }
    }
    let mut signed = Vec::new();
    for (subject, target) in subjects {
        let payload = Payload::new(&identity(&reference), &subject, &annotations).to_bytes()?;
        let signature = signer.sign(&payload)?;
        let manifest = store.add_signature(&subject, payload, &signature, printer)?;
        printer.status(
            "Signed",
            format!("{} {subject}", target.as_deref().unwrap_or("")).trim(),
        );
        signed.push(Signed {
            digest: subject,
            signature_manifest: manifest,
            target,
        });
    }
    if args.json {
        printer.json(&signed)?;
    } else {
        printer.data(
            &signed
                .iter()
                .map(|s| format!("{}\n", s.digest))
                .collect::<String>(),
        )?;
    }
    Ok(Outcome::Ok)
}

pub fn verify(args: VerifyArgs, printer: &Printer) -> Result<Outcome> {
    let reference = Reference::parse(&args.reference)?;
    let annotations = kiln_sign::parse_annotations(&args.annotations)?;
    let key = verifier(&args.key)?;
    let store = args.registry.options().open(&reference, false, printer)?;
    let digest = store.resolve_digest(&reference)?;
    let (good, rejected) = verified_payloads(&store, &digest, &key, &annotations, printer)?;
    if good.is_empty() {
        for why in &rejected {
            printer.warn(&format!("not accepted: {why}"));
        }
        printer.status(
            "Not verified",
            &format!("no valid signature by this key for `{reference}` ({digest})"),
        );
        if args.json {
            printer.json(&Vec::<Payload>::new())?;
        }
        return Ok(Outcome::Problems);
    }
    printer.status(
        "Verified",
        &format!(
            "`{reference}` ({digest}): {} signature(s) by this key",
            good.len()
        ),
    );
    if args.json {
        printer.json(&good)?;
    } else {
        let mut text = String::new();
        for p in &good {
            text.push_str(&serde_json::to_string(p)?);
            text.push('\n');
        }
        printer.data(&text)?;
    }
    Ok(Outcome::Ok)
}

pub fn sign_blob(args: SignBlobArgs, printer: &Printer) -> Result<Outcome> {
    let signer = signer(&args.key)?;
    let bytes = std::fs::read(&args.file)
        .with_context(|| format!("failed to read `{}`", args.file.display()))?;
    let signature = signer.sign(&bytes)?;
    if let Some(out) = &args.output_signature {
        kiln_core::fs::write_atomic(out, signature.as_bytes())?;
        printer.status("Wrote", &format!("the signature to `{}`", out.display()));
    }
    printer.data(&format!("{signature}\n"))?;
    Ok(Outcome::Ok)
}

pub fn verify_blob(args: VerifyBlobArgs, printer: &Printer) -> Result<Outcome> {
    let key = verifier(&args.key)?;
    let bytes = std::fs::read(&args.file)
        .with_context(|| format!("failed to read `{}`", args.file.display()))?;
    let signature = match std::fs::read_to_string(&args.signature) {
        Ok(text) => text,
        Err(_) if !Path::new(&args.signature).exists() => args.signature.clone(),
        Err(e) => {
            return Err(e)
                .with_context(|| format!("failed to read the signature `{}`", args.signature));
        }
    };
    if key.verify(&bytes, &signature) {
        printer.status("Verified", &format!("`{}`", args.file.display()));
        printer.data("Verified OK\n")?;
        Ok(Outcome::Ok)
    } else {
        printer.status(
            "Not verified",
            &format!(
                "the signature is not this key's over `{}`",
                args.file.display()
            ),
        );
        Ok(Outcome::Problems)
    }
}
