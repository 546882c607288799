//! Signing and verifying with kiln, in cosign's formats, checked independently with openssl.
//!
//! `kiln keygen`/`sign`/`verify`/`sign-blob`/`verify-blob` and `pull
//! --verify-key`: cosign's formats on a real registry and a local layout,
//! checked independently with openssl.

use crate::common::*;
use crate::registry_harness::{Registry, Variant, files_under};
use std::path::{Path, PathBuf};
use std::process::Command;

const PASSWORD: &str = "correct horse battery staple";

fn k(dir: &Path) -> Command {
    let mut c = kiln_in(dir);
    c.env("KILN_PASSWORD", PASSWORD);
    c
}

fn keygen(dir: &Path, prefix: &str) -> (PathBuf, PathBuf) {
    run_ok(k(dir).args(["keygen", "--output-prefix", prefix]));
    (
        dir.join(format!("{prefix}.key")),
        dir.join(format!("{prefix}.pub")),
    )
}

fn openssl() -> Command {
    Command::new("openssl")
}

/// Legacy (`.sig` tag) sign and verify round trips on one store (a
/// registry or a layout); bundles.rs has the bundle format's.
fn round_trip(dir: &Path, wasm: &Path, r: &str, sig_tag_ref: impl Fn(&str) -> String) {
    let (key, public) = keygen(dir, "cosign");
    let (key2, public2) = keygen(dir, "other");
    let pushed: serde_json::Value =
        serde_json::from_slice(&run_ok(k(dir).arg("push").arg(wasm).arg(r).arg("--json")).stdout)
            .unwrap();
    let digest = pushed["digest"].as_str().unwrap().to_string();

    run_ok(
        k(dir)
            .args(["sign", r, "--format", "legacy", "--key"])
            .arg(&key)
            .args(["-a", "env=prod"]),
    );
    let out = run(k(dir).args(["verify", r, "--json", "--key"]).arg(&public));
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let payloads: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        payloads[0]["critical"]["image"]["docker-manifest-digest"],
        digest.as_str()
    );
    assert_eq!(
        run(k(dir)
            .args(["verify", r, "-a", "env=prod", "--key"])
            .arg(&public))
        .status
        .code(),
        Some(0)
    );
    assert_eq!(
        run(k(dir)
            .args(["verify", r, "-a", "env=dev", "--key"])
            .arg(&public))
        .status
        .code(),
        Some(1)
    );
    // Another key's public key does not verify it...
    assert_eq!(
        run(k(dir).args(["verify", r, "--key"]).arg(&public2))
            .status
            .code(),
        Some(1)
    );
    // ... until that key signs too; then both verify.
    run_ok(
        k(dir)
            .args(["sign", r, "--format", "legacy", "--key"])
            .arg(&key2),
    );
    assert_eq!(
        run(k(dir).args(["verify", r, "--key"]).arg(&public))
            .status
            .code(),
        Some(0)
    );
    assert_eq!(
        run(k(dir).args(["verify", r, "--key"]).arg(&public2))
            .status
            .code(),
        Some(0)
    );

    // Independent check: the payload and signature from the `.sig`
    // manifest, verified by openssl.
    openssl_verifies(dir, &public, &sig_tag_ref(&digest));

    // pull --verify-key: the right key pulls, another writes nothing.
    let out_dir = dir.join("pulled");
    std::fs::create_dir_all(&out_dir).unwrap();
    let bad = run(k(dir)
        .args(["pull", r, "--verify-key"])
        .arg(dir.join("stranger.pub"))
        .arg("-o")
        .arg(out_dir.join("x.wasm")));
    assert_eq!(bad.status.code(), Some(2));
    run_ok(k(dir).args(["keygen", "--output-prefix", "stranger2"]));
    let bad = run(k(dir)
        .args(["pull", r, "--verify-key"])
        .arg(dir.join("stranger2.pub"))
        .arg("-o")
        .arg(out_dir.join("x.wasm")));
    assert_eq!(bad.status.code(), Some(2));
    assert!(
        stderr(&bad).contains("has no valid signature"),
        "{}",
        stderr(&bad)
    );
    assert!(files_under(&out_dir).is_empty());
    run_ok(
        k(dir)
            .args(["pull", r, "--verify-key"])
            .arg(&public)
            .arg("-o")
            .arg(out_dir.join("ok.wasm")),
    );
    assert_eq!(
        std::fs::read(out_dir.join("ok.wasm")).unwrap(),
        std::fs::read(wasm).unwrap()
    );

    // The tag moves to another artifact: its signatures do not follow.
    let other = dir.join("other.wasm");
    let mut bytes = std::fs::read(wasm).unwrap();
    bytes.extend_from_slice(&[0, 2, 1, b'x']); // an extra custom section
    std::fs::write(&other, bytes).unwrap();
    run_ok(k(dir).arg("push").arg(&other).arg(r));
    let out = run(k(dir).args(["verify", r, "--key"]).arg(&public));
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    // The old digest still verifies.
    let pinned = match r.rsplit_once(':') {
        Some((repo, _)) => format!("{repo}@{digest}"),
        None => unreachable!(),
    };
    assert_eq!(
        run(k(dir).args(["verify", &pinned, "--key"]).arg(&public))
            .status
            .code(),
        Some(0)
    );
    // Keys and passwords never show.
    let key_text = std::fs::read_to_string(&key).unwrap();
    assert!(!stdout(&out).contains(PASSWORD) && !stderr(&out).contains(&key_text));
}

/// Checks, with openssl alone, that the first signature in the cosign
/// signature manifest `sig_ref` verifies its payload with `public`.
pub(crate) fn openssl_verifies(dir: &Path, public: &Path, sig_ref: &str) {
    let (manifest, payload) = fetch_signature(dir, sig_ref);
    let layer = &manifest["layers"][0];
    assert_eq!(
        layer["mediaType"],
        "application/vnd.dev.cosign.simplesigning.v1+json"
    );
    let sig_b64 = layer["annotations"]["dev.cosignproject.cosign/signature"]
        .as_str()
        .unwrap();
    std::fs::write(dir.join("payload.json"), &payload).unwrap();
    std::fs::write(dir.join("sig.b64"), sig_b64).unwrap();
    let der = openssl()
        .args(["base64", "-d", "-A", "-in", "sig.b64", "-out", "sig.der"])
        .current_dir(dir)
        .output()
        .unwrap();
    assert!(der.status.success());
    let v = openssl()
        .args(["dgst", "-sha256", "-verify"])
        .arg(public)
        .args(["-signature", "sig.der", "payload.json"])
        .current_dir(dir)
        .output()
        .unwrap();
    assert!(v.status.success(), "openssl: {}{}", stdout(&v), stderr(&v));
}

/// The signature manifest and its first payload, read without kiln.
fn fetch_signature(dir: &Path, sig_ref: &str) -> (serde_json::Value, Vec<u8>) {
    if let Some(layout) = sig_ref.strip_prefix("layout:") {
        let (path, tag) = layout.rsplit_once('#').unwrap();
        let index: serde_json::Value =
            serde_json::from_slice(&std::fs::read(Path::new(path).join("index.json")).unwrap())
                .unwrap();
        let entry = index["manifests"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["annotations"]["org.opencontainers.image.ref.name"] == tag)
            .unwrap();
        let blob = |d: &str| {
            std::fs::read(
                Path::new(path)
                    .join("blobs/sha256")
                    .join(d.trim_start_matches("sha256:")),
            )
            .unwrap()
        };
        let manifest: serde_json::Value =
            serde_json::from_slice(&blob(entry["digest"].as_str().unwrap())).unwrap();
        let payload = blob(manifest["layers"][0]["digest"].as_str().unwrap());
        return (manifest, payload);
    }
    let raw = crate::registry_harness::skopeo()
        .args(["inspect", "--tls-verify=false", "--raw"])
        .arg(format!("docker://{sig_ref}"))
        .output()
        .unwrap();
    assert!(raw.status.success(), "{}", stderr(&raw));
    let manifest: serde_json::Value = serde_json::from_slice(&raw.stdout).unwrap();
    // The payload, fetched from the registry's blob endpoint by skopeo's copy.
    let copy = dir.join("sig-layout");
    let out = crate::registry_harness::skopeo()
        .args(["copy", "--src-tls-verify=false"])
        .arg(format!("docker://{sig_ref}"))
        .arg(format!("oci:{}:sig", copy.display()))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let d = manifest["layers"][0]["digest"]
        .as_str()
        .unwrap()
        .trim_start_matches("sha256:")
        .to_string();
    let payload = std::fs::read(copy.join("blobs/sha256").join(d)).unwrap();
    (manifest, payload)
}

#[test]
fn sign_and_verify_on_a_registry() {
    if !requires(&["openssl"]) || !requires_registry(Variant::Plain) {
        return;
    }
    let reg = Registry::start(Variant::Plain);
    let dir = tempfile::tempdir().unwrap();
    let wasm = hello(dir.path());
    let host = reg.host.clone();
    round_trip(dir.path(), &wasm, &format!("{host}/signed/hello:1"), |d| {
        format!("{host}/signed/hello:{}.sig", d.replace(':', "-"))
    });
}

#[test]
fn sign_and_verify_on_a_local_layout() {
    if !requires(&["openssl"]) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let wasm = hello(dir.path());
    let layout = dir.path().join("layout");
    let l = layout.display().to_string();
    round_trip(dir.path(), &wasm, &format!("oci:{l}:1"), |d| {
        format!("layout:{l}#{}.sig", d.replace(':', "-"))
    });
}

#[test]
fn blobs_and_keys_made_by_openssl() {
    if !requires(&["openssl"]) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let file = d.join("thing.cwasm");
    std::fs::write(&file, b"\x7fELF pretend precompiled code").unwrap();
    // SEC1 and PKCS#8 keys from openssl, with their public keys.
    assert!(
        openssl()
            .args([
                "ecparam",
                "-genkey",
                "-name",
                "prime256v1",
                "-out",
                "sec1.pem"
            ])
            .current_dir(d)
            .status()
            .unwrap()
            .success()
    );
    assert!(
        openssl()
            .args([
                "pkcs8",
                "-topk8",
                "-nocrypt",
                "-in",
                "sec1.pem",
                "-out",
                "pkcs8.pem"
            ])
            .current_dir(d)
            .status()
            .unwrap()
            .success()
    );
    assert!(
        openssl()
            .args(["ec", "-in", "sec1.pem", "-pubout", "-out", "openssl.pub"])
            .current_dir(d)
            .status()
            .unwrap()
            .success()
    );
    assert!(
        std::fs::read_to_string(d.join("sec1.pem"))
            .unwrap()
            .contains("EC PRIVATE KEY")
    );
    for key in ["sec1.pem", "pkcs8.pem"] {
        let out = run_ok(k(d).args([
            "sign-blob",
            "thing.cwasm",
            "--key",
            key,
            "--output-signature",
            "thing.sig",
        ]));
        let sig = stdout(&out);
        assert_eq!(
            sig.trim(),
            std::fs::read_to_string(d.join("thing.sig")).unwrap().trim()
        );
        let ok = run(k(d).args([
            "verify-blob",
            "thing.cwasm",
            "--signature",
            "thing.sig",
            "--key",
            "openssl.pub",
        ]));
        assert_eq!(ok.status.code(), Some(0), "{key}: {}", stderr(&ok));
        // openssl agrees.
        assert!(
            openssl()
                .args([
                    "base64",
                    "-d",
                    "-A",
                    "-in",
                    "thing.sig",
                    "-out",
                    "thing.der"
                ])
                .current_dir(d)
                .status()
                .unwrap()
                .success()
        );
        let v = openssl()
            .args([
                "dgst",
                "-sha256",
                "-verify",
                "openssl.pub",
                "-signature",
                "thing.der",
                "thing.cwasm",
            ])
            .current_dir(d)
            .output()
            .unwrap();
        assert!(v.status.success(), "{key}: {}", stderr(&v));
    }
    // A changed file, or a signature given inline, checked as expected.
    std::fs::write(d.join("changed.cwasm"), b"\x7fELF other code").unwrap();
    let sig = std::fs::read_to_string(d.join("thing.sig")).unwrap();
    assert_eq!(
        run(k(d).args([
            "verify-blob",
            "changed.cwasm",
            "--signature",
            sig.trim(),
            "--key",
            "openssl.pub"
        ]))
        .status
        .code(),
        Some(1)
    );
    assert_eq!(
        run(k(d).args([
            "verify-blob",
            "thing.cwasm",
            "--signature",
            "bm90IGEgc2lnbmF0dXJl",
            "--key",
            "openssl.pub"
        ]))
        .status
        .code(),
        Some(1)
    );

    // kiln's encrypted keys: the right password signs, a wrong one is refused.
    let (key, public) = keygen(d, "cosign");
    let text = std::fs::read_to_string(&key).unwrap();
    assert!(text.contains("ENCRYPTED SIGSTORE PRIVATE KEY"));
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(&key).unwrap().permissions().mode() & 0o077,
            0
        );
    }
    let out = run_ok(k(d).arg("sign-blob").arg(&file).arg("--key").arg(&key));
    let sig = stdout(&out);
    assert_eq!(
        run(k(d)
            .arg("verify-blob")
            .arg(&file)
            .args(["--signature", sig.trim(), "--key"])
            .arg(&public))
        .status
        .code(),
        Some(0)
    );
    let out = run(k(d)
        .env("KILN_PASSWORD", "wrong")
        .arg("sign-blob")
        .arg(&file)
        .arg("--key")
        .arg(&key));
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("wrong password"), "{}", stderr(&out));
    assert!(!stderr(&out).contains(&text));
    // Corrupt keys and public keys of the wrong kind are errors, not panics.
    std::fs::write(d.join("corrupt.key"), text.replace('A', "B")).unwrap();
    assert_eq!(
        run(k(d).args(["sign-blob", "thing.cwasm", "--key", "corrupt.key"]))
            .status
            .code(),
        Some(2)
    );
    let out = run(k(d)
        .args([
            "verify-blob",
            "thing.cwasm",
            "--signature",
            "thing.sig",
            "--key",
        ])
        .arg(&key));
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("PUBLIC KEY"), "{}", stderr(&out));
    // keygen never overwrites by accident.
    assert_eq!(run(k(d).args(["keygen"])).status.code(), Some(2));
}

#[test]
fn recursive_signatures_garbage_and_other_algorithms() {
    if !requires(&["openssl"]) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let wasm = hello(d);
    run_ok(kiln().arg("compile").arg(&wasm));
    let layout = d.join("layout");
    let r = format!("oci:{}:1", layout.display());
    run_ok(k(d).arg("push").arg(&wasm).arg(&r));
    let (key, public) = keygen(d, "cosign");
    let signed: serde_json::Value = serde_json::from_slice(
        &run_ok(
            k(d).args(["sign", &r, "--recursive", "--json", "--key"])
                .arg(&key),
        )
        .stdout,
    )
    .unwrap();
    assert_eq!(signed.as_array().unwrap().len(), 2, "{signed}");
    assert_eq!(signed[1]["target"], kiln_core::Target::host().as_str());
    // The precompiled artifact verifies on its own digest, and pulls verified.
    let cw = d.join("pulled.cwasm");
    run_ok(
        k(d).args(["pull", &r, "--target", "host", "--verify-key"])
            .arg(&public)
            .arg("-o")
            .arg(&cw),
    );
    assert!(cw.is_file());

    // A stored signature that is garbage is "not accepted", never a panic
    // and never "verified".
    let lr = kiln_oci::Reference::parse(&r).unwrap();
    let store =
        kiln_oci::Store::open(&lr, &Default::default(), false, &kiln_core::SilentReporter).unwrap();
    let digest = store.resolve_digest(&lr).unwrap();
    store
        .add_signature(
            &digest,
            b"{not a payload".to_vec(),
            "%%% not base64 %%%",
            &kiln_core::SilentReporter,
        )
        .unwrap();
    let (_, stranger) = keygen(d, "stranger");
    let out = run(k(d).args(["verify", &r, "--key"]).arg(&stranger));
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(stderr(&out).contains("not accepted"), "{}", stderr(&out));
    // The real signature still verifies next to the garbage.
    assert_eq!(
        run(k(d).args(["verify", &r, "--key"]).arg(&public))
            .status
            .code(),
        Some(0)
    );

    // Public keys of other algorithms: not verified, not an error.
    for (name, args) in [
        (
            "ed25519",
            &["genpkey", "-algorithm", "ed25519", "-out", "ed.key"][..],
        ),
        (
            "rsa",
            &[
                "genpkey",
                "-algorithm",
                "rsa",
                "-pkeyopt",
                "rsa_keygen_bits:2048",
                "-out",
                "rsa.key",
            ][..],
        ),
    ] {
        assert!(
            openssl()
                .args(args)
                .current_dir(d)
                .status()
                .unwrap()
                .success(),
            "{name}"
        );
        let private = if name == "rsa" { "rsa.key" } else { "ed.key" };
        assert!(
            openssl()
                .args(["pkey", "-in", private, "-pubout", "-out", "other.pub"])
                .current_dir(d)
                .status()
                .unwrap()
                .success()
        );
        let out = run(k(d).args(["verify", &r, "--key", "other.pub"]));
        assert_eq!(out.status.code(), Some(1), "{name}: {}", stderr(&out));
    }
}
