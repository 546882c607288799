//! `kiln keygen`, `sign`, `verify`, `sign-blob`, `verify-blob`: cosign-compatible signatures with keys.
//!
//! `kiln keygen`, `sign`, `verify`, `sign-blob`, `verify-blob`:
//! cosign-compatible signatures with keys, offline, for artifacts in registries
//! and local layouts and for files.

use super::args::RegistryArgs;
use crate::ops::sign::{
    Judged, accepted, identity, judge, password, sign_digest, signer, verifier,
};
use crate::outcome::Outcome;
use crate::output::Printer;
use anyhow::{Context, Result, bail};
use kiln_core::{Digest, Reporter, SignatureFormat};
use kiln_oci::Reference;
use kiln_sign::bundle::Bundle;
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
    /// Annotations to sign with it (repeatable): in the statement's subject
    /// for a bundle, in the payload's `optional` section for `legacy`.
    #[arg(short = 'a', long = "annotation", value_name = "KEY=VALUE")]
    annotations: Vec<String>,
    /// `bundle`: a Sigstore bundle attached as a referrer, as cosign v3
    /// signs; `legacy`: the `sha256-<hex>.sig` tag, for verifiers older
    /// than cosign v3.
    #[arg(long, value_name = "FORMAT", default_value = "bundle")]
    format: SignatureFormat,
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
///
/// Reads both formats (Sigstore bundles attached as referrers, and the
/// legacy `.sig` tag) and judges every signature it finds on its own.
/// Offline, with a key: no transparency log or timestamp is checked.
#[derive(clap::Args, Debug)]
#[command(after_help = "Exit status: 0 verified, 1 no valid signature, 2 error.")]
pub struct VerifyArgs {
    /// REGISTRY/REPO[:TAG][@DIGEST], oci:DIR[:TAG], or NAME[:TAG].
    #[arg(value_name = "REF")]
    reference: String,
    /// The public key (PEM).
    #[arg(long, value_name = "FILE")]
    key: PathBuf,
    /// Annotations the signature must carry (repeatable).
    #[arg(short = 'a', long = "annotation", value_name = "KEY=VALUE")]
    annotations: Vec<String>,
    #[command(flatten)]
    registry: RegistryArgs,
    /// Print the verified signatures as JSON.
    #[arg(long)]
    json: bool,
}

/// Sign a file; prints the base64 signature, as `cosign sign-blob` does.
#[derive(clap::Args, Debug)]
pub struct SignBlobArgs {
    /// Also write a Sigstore bundle (a message signature) to this file, as
    /// `cosign sign-blob --bundle` does; conventionally FILE.sigstore.json.
    #[arg(long, value_name = "FILE")]
    bundle: Option<PathBuf>,
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

/// Verify a file's signature: a base64 signature, or a Sigstore bundle.
#[derive(clap::Args, Debug)]
#[command(after_help = "Exit status: 0 verified, 1 not verified, 2 error.")]
pub struct VerifyBlobArgs {
    /// The file.
    #[arg(value_name = "FILE")]
    file: PathBuf,
    /// The signature: a file holding it, or the base64 text itself.
    #[arg(
        long,
        value_name = "SIG",
        required_unless_present = "bundle",
        conflicts_with = "bundle"
    )]
    signature: Option<String>,
    /// A Sigstore bundle holding the signature (as `cosign sign-blob
    /// --bundle` writes it); verified with the key, offline.
    #[arg(long, value_name = "FILE")]
    bundle: Option<PathBuf>,
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
    format: SignatureFormat,
    signature_manifest: Digest,
    target: Option<String>,
}

pub fn sign(args: SignArgs, printer: &Printer) -> Result<Outcome> {
    let reference = Reference::parse(&args.reference)?;
    let annotations = kiln_sign::parse_annotations(&args.annotations)?;
    let signer = signer(&args.key)?;
    if args.format == SignatureFormat::Bundle {
        signer.hash_for_bundles()?;
    }
    let key = signer.verifier()?;
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
        let what = format!("{} {subject}", target.as_deref().unwrap_or(""));
        // This key's signature with exactly these annotations, in this
        // format, stored already: signing again would add an equal claim.
        let existing = judge(&store, &subject, &key, &annotations, "", printer)?
            .into_iter()
            .filter_map(|j| j.verdict.ok())
            .find(|a| a.format == args.format && a.annotated_exactly(&annotations));
        let manifest = match existing {
            Some(a) => {
                printer.status("Signed", &format!("{} (already, by this key)", what.trim()));
                a.manifest
            }
            None => {
                let manifest = sign_digest(
                    &store,
                    &reference,
                    &subject,
                    &signer,
                    &annotations,
                    args.format,
                    printer,
                )?;
                printer.status("Signed", what.trim());
                manifest
            }
        };
        signed.push(Signed {
            digest: subject,
            format: args.format,
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
    let judged = judge(
        &store,
        &digest,
        &key,
        &annotations,
        &identity(&reference),
        printer,
    )?;
    report_judged(&judged, printer);
    let good = accepted(&judged);
    if args.json {
        printer.json(&good)?;
    }
    let outcome = crate::render::verdict(printer, good.len(), "signature", &reference, &digest);
    if matches!(outcome, Outcome::Problems) {
        return Ok(outcome);
    }
    if good.iter().any(|a| a.format == SignatureFormat::Bundle) {
        printer.status(
            "Note",
            "no transparency log or timestamp was checked: kiln verifies bundles with the key, offline (as `cosign verify --insecure-ignore-tlog`)",
        );
    }
    if !args.json {
        printer.json_lines(good.iter().map(|a| &a.payload))?;
    }
    Ok(Outcome::Ok)
}

/// One line per signature found: each valid one with its format and
/// manifest, each other one with why it was not accepted.
fn report_judged(judged: &[Judged], printer: &Printer) {
    for j in judged {
        let name = match j.format {
            SignatureFormat::Bundle => "bundle",
            SignatureFormat::Legacy => "legacy .sig",
        };
        let at = j.manifest.map(|m| format!(" in {m}")).unwrap_or_default();
        match &j.verdict {
            Ok(a) => {
                let log = match a.log_entries {
                    Some(n) if n > 0 => format!(
                        "; it carries {n} transparency-log entr{}, not checked offline",
                        if n == 1 { "y" } else { "ies" }
                    ),
                    _ => String::new(),
                };
                printer.status("Valid", &format!("{name} signature{at}{log}"));
            }
            Err(why) => printer.warn(&format!("not accepted: {name} signature{at}: {why}")),
        }
    }
}

pub fn sign_blob(args: SignBlobArgs, printer: &Printer) -> Result<Outcome> {
    let signer = signer(&args.key)?;
    let bytes = std::fs::read(&args.file)
        .with_context(|| format!("failed to read `{}`", args.file.display()))?;
    // One signature, printed and (with --bundle) in the bundle.
    let signature = match &args.bundle {
        Some(out) => {
            let bundle = Bundle::sign_blob(&signer, &bytes)?;
            kiln_core::fs::write_atomic(out, &bundle.to_bytes()?)
                .with_context(|| format!("failed to write the bundle `{}`", out.display()))?;
            printer.status("Wrote", &format!("the bundle to `{}`", out.display()));
            bundle
                .message_signature
                .context("internal error: a blob bundle without its signature")?
                .signature
        }
        None => signer.sign(&bytes)?,
    };
    if let Some(out) = &args.output_signature {
        kiln_core::fs::write_atomic(out, signature.as_bytes())?;
        printer.status("Wrote", &format!("the signature to `{}`", out.display()));
    }
    printer.data(&format!("{signature}\n"))?;
    Ok(Outcome::Ok)
}

pub fn verify_blob(args: VerifyBlobArgs, printer: &Printer) -> Result<Outcome> {
    let key = verifier(&args.key)?;
    let file = &args.file;
    let bytes =
        std::fs::read(file).with_context(|| format!("failed to read `{}`", file.display()))?;
    if let Some(path) = &args.bundle {
        return verify_blob_bundle(file, &bytes, path, &key, printer);
    }
    let given = args.signature.as_deref().unwrap_or_default();
    let signature = match std::fs::read_to_string(given) {
        Ok(text) => text,
        Err(_) if !Path::new(given).exists() => given.to_string(),
        Err(e) => {
            return Err(e).with_context(|| format!("failed to read the signature `{given}`"));
        }
    };
    if key.verify(&bytes, &signature) {
        printer.status("Verified", &format!("`{}`", file.display()));
        printer.data("Verified OK\n")?;
        Ok(Outcome::Ok)
    } else {
        printer.status(
            "Not verified",
            &format!("the signature is not this key's over `{}`", file.display()),
        );
        Ok(Outcome::Problems)
    }
}

/// `verify-blob --bundle`: a bundle that cannot be read is an error (2);
/// one that is not this key's signature of this file is a finding (1).
fn verify_blob_bundle(
    file: &Path,
    bytes: &[u8],
    path: &Path,
    key: &kiln_sign::Verifier,
    printer: &Printer,
) -> Result<Outcome> {
    // Read one byte past the limit, so an oversized bundle is refused by
    // its size rather than read whole.
    let mut text = Vec::new();
    std::fs::File::open(path)
        .and_then(|f| {
            std::io::Read::read_to_end(
                &mut std::io::Read::take(f, kiln_sign::bundle::MAX_BUNDLE_BYTES as u64 + 1),
                &mut text,
            )
        })
        .with_context(|| format!("failed to read the bundle `{}`", path.display()))?;
    let bundle = Bundle::parse(&text)
        .with_context(|| format!("failed to read the bundle `{}`", path.display()))?;
    match bundle.verify_blob(key, bytes) {
        Ok(()) => {
            printer.status("Verified", &format!("`{}`", file.display()));
            if !bundle.verification_material.tlog_entries.is_empty()
                || bundle
                    .verification_material
                    .timestamp_verification_data
                    .is_some()
            {
                printer.status(
                    "Note",
                    "the bundle carries transparency-log entries or timestamps; kiln did not check them (offline, with the key)",
                );
            } else {
                printer.status(
                    "Note",
                    "no transparency log or timestamp was checked (offline, with the key)",
                );
            }
            printer.data("Verified OK\n")?;
            Ok(Outcome::Ok)
        }
        Err(e) => {
            printer.status("Not verified", &format!("`{}`: {e:#}", file.display()));
            Ok(Outcome::Problems)
        }
    }
}
