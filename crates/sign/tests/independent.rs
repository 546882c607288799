//! kiln's Sigstore bundles checked by implementations nobody here wrote.
//!
//! kiln's Sigstore bundles checked by implementations nobody here wrote:
//! openssl over the DSSE encoding, Sigstore's JavaScript verifier and signer,
//! and a bundle from sigstore-rust's published test data.

// Tests fail loudly on unexpected errors; unwrapping is how they say so.
// A test that skips for a missing tool says so on stderr.
#![allow(clippy::unwrap_used, clippy::print_stderr)]

use kiln_core::Digest;
use kiln_sign::bundle::{Bundle, Statement, pae};
use kiln_sign::{load_private_key, load_public_key};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The directory `cargo xtask setup` installs Sigstore's JavaScript packages
/// in, or `None` (with a message) when they are missing outside CI. Under
/// `CI` a missing tool fails the test.
fn sigstore_js() -> Option<PathBuf> {
    let dir = root().join("target/tools/sigstore-js");
    let ready = dir.join("node_modules/@sigstore/verify").is_dir()
        && Command::new("node").arg("--version").output().is_ok();
    if ready {
        return Some(dir);
    }
    let why =
        "requires node and Sigstore's JavaScript packages (`cargo xtask setup` installs them)";
    assert!(std::env::var_os("CI").is_none(), "{why}");
    eprintln!("skipped: {why}");
    None
}

/// Runs a tool, returning its stdout; a failure carries its stderr.
fn run(cmd: &mut Command) -> Result<String, String> {
    let out = cmd
        .output()
        .map_err(|e| format!("cannot run {cmd:?}: {e}"))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(format!(
            "{cmd:?} failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}

/// A P-256 key pair made by openssl (PKCS#8 private, SPKI public), which
/// kiln, openssl and Node all read.
fn openssl_keys(dir: &Path) -> (PathBuf, PathBuf) {
    let private = dir.join("key.pem");
    let public = dir.join("key.pub");
    run(Command::new("openssl")
        .args([
            "genpkey",
            "-algorithm",
            "EC",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-out",
        ])
        .arg(&private))
    .unwrap();
    run(Command::new("openssl")
        .args(["pkey", "-pubout", "-in"])
        .arg(&private)
        .arg("-out")
        .arg(&public))
    .unwrap();
    (private, public)
}

const DIGEST: &str = "sha256:6b7e0e4a4d2f8a1f7c6c9b2a8e3f1d0c5b4a39281706f5e4d3c2b1a098f7e6d5";

fn digest(text: &str) -> Digest {
    Digest::parse(text).unwrap()
}

#[test]
fn openssl_verifies_the_dsse_signature_over_the_pre_authentication_encoding() {
    let dir = tempfile::tempdir().unwrap();
    let (private, public) = openssl_keys(dir.path());
    let signer = load_private_key(&std::fs::read(&private).unwrap(), None).unwrap();
    let statement = Statement::signature(&digest(DIGEST), &BTreeMap::new());
    let bundle = Bundle::sign_statement(&signer, &statement).unwrap();
    let json: serde_json::Value = serde_json::from_slice(&bundle.to_bytes().unwrap()).unwrap();
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::STANDARD;
    let envelope = &json["dsseEnvelope"];
    let payload = b64.decode(envelope["payload"].as_str().unwrap()).unwrap();
    let sig = b64
        .decode(envelope["signatures"][0]["sig"].as_str().unwrap())
        .unwrap();
    std::fs::write(
        dir.path().join("pae"),
        pae(envelope["payloadType"].as_str().unwrap(), &payload),
    )
    .unwrap();
    std::fs::write(dir.path().join("sig"), &sig).unwrap();
    let out = run(Command::new("openssl")
        .args(["dgst", "-sha256", "-verify"])
        .arg(&public)
        .arg("-signature")
        .arg(dir.path().join("sig"))
        .arg(dir.path().join("pae")))
    .unwrap();
    assert!(out.contains("Verified OK"), "{out}");
    // The hint is what openssl computes from the key.
    let der = run(Command::new("sh").arg("-c").arg(format!(
        "openssl pkey -pubin -in {} -outform DER | openssl dgst -sha256 -binary | base64",
        public.display()
    )))
    .unwrap();
    assert_eq!(
        json["verificationMaterial"]["publicKey"]["hint"],
        der.trim()
    );
}

#[test]
fn sigstore_js_verifies_kiln_s_bundles_and_kiln_verifies_sigstore_js_s() {
    let Some(js) = sigstore_js() else { return };
    let script = |name: &str| root().join("crates/sign/tests/js").join(name);
    let node = |args: &[&std::ffi::OsStr]| {
        run(Command::new("node")
            .args(args)
            .env("NODE_PATH", js.join("node_modules")))
    };
    let dir = tempfile::tempdir().unwrap();
    let (private, public) = openssl_keys(dir.path());
    let signer = load_private_key(&std::fs::read(&private).unwrap(), None).unwrap();
    let verifier = load_public_key(&std::fs::read(&public).unwrap()).unwrap();
    let annotations = BTreeMap::from([("env".to_string(), "prod".to_string())]);

    // kiln signs; Sigstore's JavaScript verifier accepts, and refuses the
    // same bundle for another digest.
    let bundle = Bundle::sign_statement(
        &signer,
        &Statement::signature(&digest(DIGEST), &annotations),
    )
    .unwrap();
    let path = dir.path().join("kiln.sigstore.json");
    std::fs::write(&path, bundle.to_bytes().unwrap()).unwrap();
    let out = node(&[
        script("verify.js").as_os_str(),
        public.as_os_str(),
        path.as_os_str(),
        DIGEST.as_ref(),
    ])
    .unwrap();
    assert!(out.contains("https://sigstore.dev/cosign/sign/v1"), "{out}");
    let other = DIGEST.replace("d5", "d6");
    let err = node(&[
        script("verify.js").as_os_str(),
        public.as_os_str(),
        path.as_os_str(),
        other.as_ref(),
    ])
    .unwrap_err();
    assert!(err.contains("subject mismatch"), "{err}");

    // A blob bundle.
    let blob = dir.path().join("blob.txt");
    std::fs::write(&blob, b"a file kiln signed\n").unwrap();
    let bundle = Bundle::sign_blob(&signer, &std::fs::read(&blob).unwrap()).unwrap();
    let path = dir.path().join("blob.sigstore.json");
    std::fs::write(&path, bundle.to_bytes().unwrap()).unwrap();
    let out = node(&[
        script("verify.js").as_os_str(),
        public.as_os_str(),
        path.as_os_str(),
        "--blob".as_ref(),
        blob.as_os_str(),
    ])
    .unwrap();
    assert!(out.contains("verified blob signature"), "{out}");

    // Sigstore's JavaScript signer signs; kiln verifies, with the
    // annotation, and refuses another digest.
    let made = node(&[
        script("sign.js").as_os_str(),
        private.as_os_str(),
        DIGEST.as_ref(),
        "env=prod".as_ref(),
    ])
    .unwrap();
    let theirs = Bundle::parse(made.as_bytes()).unwrap();
    let verified = theirs
        .verify_signature(&verifier, &digest(DIGEST), &annotations)
        .unwrap();
    assert_eq!(verified.log_entries, 0);
    assert!(
        theirs
            .verify_signature(&verifier, &digest(&other), &BTreeMap::new())
            .is_err()
    );
}

#[test]
fn a_bundle_from_sigstore_rust_s_test_data_verifies_with_its_key() {
    let fixtures = root().join("fixtures/sigstore");
    let bundle =
        Bundle::parse(&std::fs::read(fixtures.join("bundle.sigstore.json")).unwrap()).unwrap();
    let key = load_public_key(&std::fs::read(fixtures.join("key.pub")).unwrap()).unwrap();
    let artifact = std::fs::read(fixtures.join("artifact.txt")).unwrap();
    bundle.verify_blob(&key, &artifact).unwrap();
    // It carries a log entry, which is not checked offline.
    assert_eq!(bundle.verification_material.tlog_entries.len(), 1);
    let mut changed = artifact.clone();
    changed.push(b'!');
    assert!(bundle.verify_blob(&key, &changed).is_err());
    // The hint is the key's.
    assert_eq!(
        bundle
            .verification_material
            .public_key
            .as_ref()
            .unwrap()
            .hint,
        kiln_sign::bundle::key_hint(&std::fs::read_to_string(fixtures.join("key.pub")).unwrap())
            .unwrap()
    );
}
