//! cosign v3's signatures end to end: Sigstore bundles attached as referrers, checked without kiln, and forgeries refused.

use crate::common::*;
use crate::referrers_proxy::ReferrersProxy;
use crate::registry_harness::{Registry, Variant, files_under};
use crate::trust::{Forge, module, module_with_aot};
use base64::Engine as _;
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub(crate) const PASSWORD: &str = "bundle password";
pub(crate) const BUNDLE: &str = "application/vnd.dev.sigstore.bundle.v0.3+json";
pub(crate) const SIGN_PREDICATE: &str = "https://sigstore.dev/cosign/sign/v1";
const EMPTY_CONFIG: &str =
    "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a";

pub(crate) fn k(dir: &Path) -> Command {
    let mut c = kiln_in(dir);
    c.env("KILN_PASSWORD", PASSWORD);
    c
}

pub(crate) fn json_of(out: &Output) -> Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", stdout(out)))
}

pub(crate) fn keygen(dir: &Path, prefix: &str) -> (PathBuf, PathBuf) {
    run_ok(k(dir).args(["keygen", "--output-prefix", prefix]));
    (
        dir.join(format!("{prefix}.key")),
        dir.join(format!("{prefix}.pub")),
    )
}

pub(crate) fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

pub(crate) fn unb64(text: &str) -> Vec<u8> {
    base64::engine::general_purpose::STANDARD
        .decode(text)
        .unwrap()
}

/// The exit code of `kiln verify REF --key KEY [ARGS]`, and its output.
fn verify(dir: &Path, r: &str, key: &Path, args: &[&str]) -> (Option<i32>, Output) {
    let out = run(k(dir).arg("verify").arg(r).arg("--key").arg(key).args(args));
    (out.status.code(), out)
}

/// What kiln stored, read without kiln: a layout's files, or the files of
/// the registry's storage.
enum Stored<'a> {
    Layout(Forge),
    Registry(&'a Registry, String),
}

impl Stored<'_> {
    fn blob(&self, digest: &str) -> Vec<u8> {
        match self {
            Stored::Layout(f) => f.blob(digest),
            Stored::Registry(reg, repo) => reg
                .linked_blob(repo, digest)
                .unwrap_or_else(|| panic!("{digest} is not stored in `{repo}`")),
        }
    }

    fn json(&self, digest: &str) -> Value {
        serde_json::from_slice(&self.blob(digest)).unwrap()
    }

    /// The entries of the referrers tag schema's index of `digest`
    /// (`sha256-<hex>`), when that tag exists.
    fn fallback_index(&self, digest: &str) -> Option<Vec<Value>> {
        let tag = digest.replacen(':', "-", 1);
        let index = match self {
            Stored::Layout(f) => f.resolve(&tag)?["digest"].as_str()?.to_string(),
            Stored::Registry(reg, repo) => reg
                .tags(repo)
                .into_iter()
                .find(|(t, _)| *t == tag)?
                .1
                .trim()
                .to_string(),
        };
        Some(self.json(&index)["manifests"].as_array()?.clone())
    }
}

/// The directory of Sigstore's JavaScript packages (`cargo xtask setup`
/// installs them), when node and they are there; a failure under `CI`.
pub(crate) fn sigstore_js() -> Option<PathBuf> {
    if !requires(&["node"]) {
        return None;
    }
    let dir = root().join("target/tools/sigstore-js");
    if dir.join("node_modules/@sigstore/verify").is_dir() {
        return Some(dir);
    }
    let why = "requires Sigstore's JavaScript packages in target/tools/sigstore-js (`cargo xtask setup` installs them)";
    assert!(std::env::var_os("CI").is_none(), "{why}");
    eprintln!("skipped: {why}");
    None
}

/// Runs one of kiln-sign's JavaScript cross-check scripts with node.
pub(crate) fn node(js: &Path, script: &str, args: &[&std::ffi::OsStr]) -> Output {
    Command::new("node")
        .arg(root().join("crates/sign/tests/js").join(script))
        .args(args)
        .env("NODE_PATH", js.join("node_modules"))
        .output()
        .unwrap()
}

/// DSSE's pre-authentication encoding, written out from the specification
/// here so the check does not borrow kiln's.
pub(crate) fn pae(payload_type: &str, payload: &[u8]) -> Vec<u8> {
    let mut out = format!(
        "DSSEv1 {} {} {} ",
        payload_type.len(),
        payload_type,
        payload.len()
    )
    .into_bytes();
    out.extend_from_slice(payload);
    out
}

/// Checks a stored signature referrer against what cosign v3 writes, and
/// its bundle with openssl (the signature over the PAE, the key hint) and,
/// when present, Sigstore's JavaScript verifier. Returns the statement.
fn check_referrer(
    dir: &Path,
    stored: &Stored,
    referrer: &str,
    subject: &str,
    public: &Path,
    annotations: Value,
) -> Value {
    let manifest = stored.json(referrer);
    let layer = manifest["layers"][0].clone();
    let subject_bytes = stored.blob(subject);
    assert_eq!(
        manifest,
        json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "artifactType": BUNDLE,
            "config": {
                "mediaType": "application/vnd.oci.empty.v1+json",
                "digest": EMPTY_CONFIG,
                "size": 2,
                "artifactType": BUNDLE,
            },
            "layers": [{"mediaType": BUNDLE, "digest": layer["digest"], "size": layer["size"]}],
            "subject": {
                "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "digest": subject,
                "size": subject_bytes.len(),
            },
            "annotations": {
                "dev.sigstore.bundle.content": "dsse-envelope",
                "dev.sigstore.bundle.predicateType": SIGN_PREDICATE,
                "org.opencontainers.image.created": "1970-01-01T00:00:00Z",
            },
        })
    );
    let bundle_bytes = stored.blob(layer["digest"].as_str().unwrap());
    let bundle: Value = serde_json::from_slice(&bundle_bytes).unwrap();
    let hint = openssl_hint(dir, public);
    let envelope = &bundle["dsseEnvelope"];
    assert_eq!(bundle["mediaType"], BUNDLE);
    assert_eq!(
        bundle["verificationMaterial"],
        json!({"publicKey": {"hint": hint}})
    );
    assert_eq!(envelope["payloadType"], "application/vnd.in-toto+json");
    let signatures = envelope["signatures"].as_array().unwrap();
    assert_eq!(signatures.len(), 1);
    assert!(signatures[0].get("keyid").is_none(), "{bundle}");
    let payload = unb64(envelope["payload"].as_str().unwrap());
    let statement: Value = serde_json::from_slice(&payload).unwrap();
    assert_eq!(
        statement,
        json!({
            "_type": "https://in-toto.io/Statement/v1",
            "subject": [{
                "digest": {"sha256": subject.trim_start_matches("sha256:")},
                "annotations": annotations,
            }],
            "predicateType": SIGN_PREDICATE,
            "predicate": {},
        })
    );
    // openssl: the signature over the PAE bytes.
    std::fs::write(
        dir.join("pae.bin"),
        pae("application/vnd.in-toto+json", &payload),
    )
    .unwrap();
    std::fs::write(
        dir.join("pae.sig"),
        unb64(signatures[0]["sig"].as_str().unwrap()),
    )
    .unwrap();
    let v = Command::new("openssl")
        .args(["dgst", "-sha256", "-verify"])
        .arg(public)
        .args(["-signature", "pae.sig", "pae.bin"])
        .current_dir(dir)
        .output()
        .unwrap();
    assert!(v.status.success(), "openssl: {}{}", stdout(&v), stderr(&v));
    // Sigstore's JavaScript verifier, finding the key by its hint.
    if let Some(js) = sigstore_js() {
        let file = dir.join("referrer.sigstore.json");
        std::fs::write(&file, &bundle_bytes).unwrap();
        let out = node(
            &js,
            "verify.js",
            &[public.as_os_str(), file.as_os_str(), subject.as_ref()],
        );
        assert!(
            out.status.success() && stdout(&out).contains(SIGN_PREDICATE),
            "@sigstore/verify: {}{}",
            stdout(&out),
            stderr(&out)
        );
    }
    statement
}

/// The key hint as cosign computes it, by openssl: base64 of the SHA-256 of
/// the DER public key.
fn openssl_hint(dir: &Path, public: &Path) -> String {
    let out = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "openssl pkey -pubin -in '{}' -outform DER | openssl dgst -sha256 -binary | openssl base64 -A",
            public.display()
        ))
        .current_dir(dir)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    stdout(&out).trim().to_string()
}

/// The format of each signature `verify --json` accepted.
fn formats_of(out: &Output) -> Vec<Value> {
    json_of(out)
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["format"].clone())
        .collect()
}

/// Bundles signed, stored, found and verified on one store; `api` when the
/// registry answers the referrers API (then no fallback index is written).
fn round_trip(dir: &Path, stored: &Stored, r: &str, api: bool) {
    let (key, public) = keygen(dir, "k");
    let (other, other_public) = keygen(dir, "other");
    let a = module_with_aot(dir, "a");
    let pushed = json_of(&run_ok(k(dir).arg("push").arg(&a).arg(r).arg("--json")));
    let digest = pushed["digest"].as_str().unwrap().to_string();

    // Signed in the default format: a bundle referrer, as cosign v3 signs.
    let signed = json_of(&run_ok(
        k(dir)
            .args(["sign", r, "--json", "-a", "env=prod", "--key"])
            .arg(&key),
    ));
    assert_eq!(signed[0]["digest"], digest.as_str());
    assert_eq!(signed[0]["format"], "bundle");
    let referrer = signed[0]["signature_manifest"]
        .as_str()
        .unwrap()
        .to_string();
    check_referrer(
        dir,
        stored,
        &referrer,
        &digest,
        &public,
        json!({"env": "prod"}),
    );
    // Listed beside the precompiled artifact: by the registry's API, or in
    // the referrers tag schema's fallback index.
    match stored.fallback_index(&digest) {
        Some(entries) => {
            assert!(
                !api,
                "a fallback index was written beside the referrers API"
            );
            let types: Vec<&str> = entries
                .iter()
                .map(|e| e["artifactType"].as_str().unwrap())
                .collect();
            assert!(types.contains(&BUNDLE), "{entries:?}");
            assert!(
                types.contains(&"application/vnd.kiln.wasmtime.cwasm.v1"),
                "{entries:?}"
            );
            let bundle_entry = entries.iter().find(|e| e["digest"] == referrer.as_str());
            assert_eq!(bundle_entry.unwrap()["artifactType"], BUNDLE);
        }
        None => assert!(api, "no fallback index lists the bundle"),
    }
    // Signing the same digest again with the same key and annotations adds
    // nothing.
    let again = json_of(&run_ok(
        k(dir)
            .args(["sign", r, "--json", "-a", "env=prod", "--key"])
            .arg(&key),
    ));
    assert_eq!(again[0]["signature_manifest"], referrer.as_str());

    let (code, out) = verify(dir, r, &public, &["--json"]);
    assert_eq!(code, Some(0), "{}", stderr(&out));
    let verified = json_of(&out);
    assert_eq!(verified.as_array().unwrap().len(), 1, "{verified}");
    assert_eq!(verified[0]["format"], "bundle");
    assert_eq!(verified[0]["manifest"], referrer.as_str());
    assert_eq!(verified[0]["critical"]["type"], SIGN_PREDICATE);
    assert_eq!(
        verified[0]["critical"]["image"]["docker-manifest-digest"],
        digest.as_str()
    );
    assert_eq!(verified[0]["optional"], json!({"env": "prod"}));
    assert!(
        stderr(&out).contains("no transparency log or timestamp was checked"),
        "{}",
        stderr(&out)
    );
    assert_eq!(verify(dir, r, &public, &["-a", "env=prod"]).0, Some(0));
    assert_eq!(verify(dir, r, &public, &["-a", "env=dev"]).0, Some(1));
    assert_eq!(verify(dir, r, &other_public, &[]).0, Some(1));

    // pull --verify-key takes a bundle as the signature.
    let pulled = dir.join("pulled.wasm");
    run_ok(
        k(dir)
            .args(["pull", r, "--verify-key"])
            .arg(&public)
            .arg("-o")
            .arg(&pulled),
    );
    assert_eq!(std::fs::read(&pulled).unwrap(), std::fs::read(&a).unwrap());

    // The legacy format beside it: each key's signature judged on its own,
    // each named by its format.
    run_ok(
        k(dir)
            .args(["sign", r, "--format", "legacy", "--key"])
            .arg(&other),
    );
    let (code, out) = verify(dir, r, &other_public, &["--json"]);
    assert_eq!(code, Some(0), "{}", stderr(&out));
    let formats = formats_of(&out);
    assert_eq!(formats, [json!("legacy")]);
    run_ok(
        k(dir)
            .args(["sign", r, "--format", "legacy", "--key"])
            .arg(&key),
    );
    let (code, out) = verify(dir, r, &public, &["--json"]);
    assert_eq!(code, Some(0), "{}", stderr(&out));
    let formats = formats_of(&out);
    assert_eq!(formats, [json!("bundle"), json!("legacy")]);
    // The bundle made by the other key is reported, not accepted.
    assert!(
        stderr(&out).contains("not accepted: legacy .sig signature"),
        "{}",
        stderr(&out)
    );

    // The tag moves: the signatures stay with the old digest.
    let b = module(dir, "b");
    run_ok(k(dir).arg("push").arg(&b).arg(r));
    assert_eq!(verify(dir, r, &public, &[]).0, Some(1));
    let pinned = format!("{}@{digest}", r.rsplit_once(':').unwrap().0);
    assert_eq!(verify(dir, &pinned, &public, &[]).0, Some(0));
}

#[test]
fn bundles_round_trip_on_a_layout() {
    if !requires(&["openssl"]) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let layout = dir.path().join("layout");
    let r = format!("oci:{}:1", layout.display());
    round_trip(
        dir.path(),
        &Stored::Layout(Forge { dir: layout }),
        &r,
        false,
    );
}

#[test]
fn bundles_round_trip_on_a_registry_through_the_fallback_index() {
    if !requires(&["openssl"]) || !requires_registry(Variant::Plain) {
        return;
    }
    let reg = Registry::start(Variant::Plain);
    let dir = tempfile::tempdir().unwrap();
    let r = format!("{}/bundles/hello:1", reg.host);
    let stored = Stored::Registry(&reg, "bundles/hello".to_string());
    round_trip(dir.path(), &stored, &r, false);
}

#[test]
fn bundles_round_trip_through_the_referrers_api() {
    if !requires(&["openssl"]) || !requires_registry(Variant::Plain) {
        return;
    }
    let reg = Registry::start(Variant::Plain);
    let api = ReferrersProxy::start(&reg.host);
    let dir = tempfile::tempdir().unwrap();
    let r = format!("{}/bundles/api:1", api.host);
    let stored = Stored::Registry(&reg, "bundles/api".to_string());
    round_trip(dir.path(), &stored, &r, true);
    let log = api.log.lock().unwrap();
    assert!(
        log.iter()
            .any(|l| l.starts_with("GET /v2/bundles/api/referrers/")),
        "{log:?}"
    );
}

/// A bundle of `statement` signed with `key` (kiln's encrypted key file).
pub(crate) fn signed_bundle(key: &Path, statement: &Value) -> Value {
    let signer =
        kiln_sign::load_private_key(&std::fs::read(key).unwrap(), Some(PASSWORD.as_bytes()))
            .unwrap();
    let statement: kiln_sign::bundle::Statement =
        serde_json::from_value(statement.clone()).unwrap();
    let bundle = kiln_sign::bundle::Bundle::sign_statement(&signer, &statement).unwrap();
    serde_json::from_slice(&bundle.to_bytes().unwrap()).unwrap()
}

pub(crate) fn statement(subject: &str, predicate_type: &str) -> Value {
    json!({
        "_type": "https://in-toto.io/Statement/v1",
        "subject": [{"digest": {"sha256": subject.trim_start_matches("sha256:")}}],
        "predicateType": predicate_type,
        "predicate": {},
    })
}

/// Attaches `layers` (media type, bytes) to `subject` as a bundle referrer
/// in cosign's shape, written straight into the layout as anyone with write
/// access can; returns the referrer's digest.
pub(crate) fn forge_referrer(forge: &Forge, subject: &str, layers: &[(&str, Vec<u8>)]) -> String {
    forge_referrer_of(forge, subject, layers, SIGN_PREDICATE)
}

/// [`forge_referrer`] with `predicate_type` in the referrer's annotation.
pub(crate) fn forge_referrer_of(
    forge: &Forge,
    subject: &str,
    layers: &[(&str, Vec<u8>)],
    predicate_type: &str,
) -> String {
    let config = forge.put("application/vnd.oci.empty.v1+json", b"{}");
    let layers: Vec<Value> = layers.iter().map(|(t, b)| forge.put(t, b)).collect();
    let subject_size = forge.blob(subject).len();
    let manifest = json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "artifactType": BUNDLE,
        "config": config,
        "layers": layers,
        "subject": {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": subject, "size": subject_size},
        "annotations": {"dev.sigstore.bundle.content": "dsse-envelope", "dev.sigstore.bundle.predicateType": predicate_type},
    });
    let mut d = forge.put(
        "application/vnd.oci.image.manifest.v1+json",
        &serde_json::to_vec(&manifest).unwrap(),
    );
    d["artifactType"] = json!(BUNDLE);
    let mut entries = forge.referrers(subject);
    entries.push(d.clone());
    forge.set_referrers(subject, entries);
    d["digest"].as_str().unwrap().to_string()
}

#[test]
fn forged_and_foreign_bundles_are_judged_each_on_its_own() {
    if !requires(&["openssl"]) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (key, public) = keygen(d, "k");
    let (other, _) = keygen(d, "other");
    let layout = d.join("layout");
    let forge = Forge {
        dir: layout.clone(),
    };
    let ra = format!("oci:{}:a", layout.display());
    let rb = format!("oci:{}:b", layout.display());
    let a = json_of(&run_ok(
        k(d).arg("push").arg(module(d, "a")).arg(&ra).arg("--json"),
    ))["digest"]
        .as_str()
        .unwrap()
        .to_string();
    let b = json_of(&run_ok(
        k(d).arg("push").arg(module(d, "b")).arg(&rb).arg("--json"),
    ))["digest"]
        .as_str()
        .unwrap()
        .to_string();
    let bytes = |v: &Value| serde_json::to_vec(v).unwrap();

    // Each forgery is attached to `a`, in the order the output lists them.
    let mut names: Vec<(String, &str)> = Vec::new();
    let mut attach = |name: &'static str, layers: &[(&str, Vec<u8>)]| {
        names.push((forge_referrer(&forge, &a, layers), name));
    };
    // A valid signature of `b`, by this key, moved to `a`.
    let of_b = signed_bundle(&key, &statement(&b, SIGN_PREDICATE));
    attach("OF-B", &[(BUNDLE, bytes(&of_b))]);
    // An attestation of `a` by this key: not a signature.
    let attestation = signed_bundle(&key, &statement(&a, "https://slsa.dev/provenance/v1"));
    attach("ATTESTATION", &[(BUNDLE, bytes(&attestation))]);
    // A signature of `a` whose statement was changed after signing.
    let mut tampered = signed_bundle(&key, &statement(&a, SIGN_PREDICATE));
    let mut changed = statement(&a, SIGN_PREDICATE);
    changed["subject"][0]["annotations"] = json!({"env": "prod"});
    tampered["dsseEnvelope"]["payload"] = json!(b64(&bytes(&changed)));
    attach("TAMPERED", &[(BUNDLE, bytes(&tampered))]);
    // A signature of `a` by this key, claiming a certificate instead.
    let mut certificate = signed_bundle(&key, &statement(&a, SIGN_PREDICATE));
    certificate["verificationMaterial"] =
        json!({"certificate": {"rawBytes": b64(b"not a certificate")}});
    attach("CERTIFICATE", &[(BUNDLE, bytes(&certificate))]);
    // A signature of `a` by another key.
    let by_other = signed_bundle(&other, &statement(&a, SIGN_PREDICATE));
    attach("OTHER-KEY", &[(BUNDLE, bytes(&by_other))]);
    // Not JSON; over the size limit; two layers.
    attach("GARBAGE", &[(BUNDLE, b"\x00not json".to_vec())]);
    let mut huge = b"{\"mediaType\":\"".to_vec();
    huge.resize(2 << 20, b' ');
    attach("HUGE", &[(BUNDLE, huge)]);
    let two = bytes(&signed_bundle(&key, &statement(&a, SIGN_PREDICATE)));
    attach("TWO-LAYERS", &[(BUNDLE, two.clone()), (BUNDLE, two)]);

    let mut filters = Filters::new()
        .path(&layout, "LAYOUT")
        .text(&a, "[A]")
        .text(&b, "[B]");
    for (digest, name) in &names {
        filters = filters.text(digest, &format!("[{name}]"));
    }
    let (code, out) = verify(d, &ra, &public, &[]);
    assert_eq!(code, Some(1), "{}", stderr(&out));
    assert_snapshot(
        snapshot("errors/verify-forged-bundles.stderr"),
        &stderr(&out),
        &filters,
    );
    // Nothing is written by a pull that insists on a signature.
    let out_dir = d.join("out");
    std::fs::create_dir_all(&out_dir).unwrap();
    let pulled = run(k(d)
        .args(["pull", &ra, "--verify-key"])
        .arg(&public)
        .arg("-o")
        .arg(out_dir.join("a.wasm")));
    assert_eq!(pulled.status.code(), Some(2), "{}", stderr(&pulled));
    assert!(files_under(&out_dir).is_empty());

    // A bundle made by Sigstore's JavaScript signer with an openssl key is
    // one kiln accepts, beside the forgeries.
    let Some(js) = sigstore_js() else { return };
    crate::registry_harness::openssl(
        d,
        &[
            "genpkey",
            "-algorithm",
            "EC",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-out",
            "js.pem",
        ],
    );
    crate::registry_harness::openssl(d, &["pkey", "-in", "js.pem", "-pubout", "-out", "js.pub"]);
    let made = node(
        &js,
        "sign.js",
        &[d.join("js.pem").as_os_str(), a.as_ref(), "env=js".as_ref()],
    );
    assert!(made.status.success(), "{}", stderr(&made));
    forge_referrer(&forge, &a, &[(BUNDLE, made.stdout)]);
    let (code, out) = verify(d, &ra, &d.join("js.pub"), &["-a", "env=js", "--json"]);
    assert_eq!(code, Some(0), "{}", stderr(&out));
    assert_eq!(json_of(&out)[0]["format"], "bundle");
}

#[test]
fn blob_bundles_round_trip_and_cosign_s_verify_with_their_key() {
    if !requires(&["openssl"]) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (key, public) = keygen(d, "k");
    let (_, other_public) = keygen(d, "other");
    let file = d.join("file.txt");
    std::fs::write(&file, "what is signed\n").unwrap();
    let bundle = d.join("file.txt.sigstore.json");
    let out = run_ok(
        k(d).arg("sign-blob")
            .arg(&file)
            .arg("--key")
            .arg(&key)
            .arg("--bundle")
            .arg(&bundle),
    );
    // The signature printed is the one in the bundle, and openssl checks it
    // over the file's bytes.
    let json: Value = serde_json::from_slice(&std::fs::read(&bundle).unwrap()).unwrap();
    let signature = json["messageSignature"]["signature"].as_str().unwrap();
    assert_eq!(stdout(&out).trim(), signature);
    assert_eq!(
        json["messageSignature"]["messageDigest"],
        json!({"algorithm": "SHA2_256", "digest": b64(kiln_core::Digest::of(b"what is signed\n").as_bytes())})
    );
    assert_eq!(
        json["verificationMaterial"],
        json!({"publicKey": {"hint": openssl_hint(d, &public)}})
    );
    std::fs::write(d.join("blob.sig"), unb64(signature)).unwrap();
    crate::registry_harness::openssl(
        d,
        &[
            "dgst",
            "-sha256",
            "-verify",
            "k.pub",
            "-signature",
            "blob.sig",
            "file.txt",
        ],
    );
    if let Some(js) = sigstore_js() {
        let out = node(
            &js,
            "verify.js",
            &[
                public.as_os_str(),
                bundle.as_os_str(),
                "--blob".as_ref(),
                file.as_os_str(),
            ],
        );
        assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    }
    let verify_blob = |file: &Path, bundle: &Path, key: &Path| {
        run(k(d)
            .arg("verify-blob")
            .arg(file)
            .arg("--bundle")
            .arg(bundle)
            .arg("--key")
            .arg(key))
    };
    let ok = verify_blob(&file, &bundle, &public);
    assert_eq!(ok.status.code(), Some(0), "{}", stderr(&ok));
    assert_eq!(stdout(&ok), "Verified OK\n");
    assert_eq!(
        verify_blob(&file, &bundle, &other_public).status.code(),
        Some(1)
    );
    std::fs::write(d.join("changed.txt"), "what is signed!\n").unwrap();
    let changed = verify_blob(&d.join("changed.txt"), &bundle, &public);
    assert_eq!(changed.status.code(), Some(1));
    // The base64 form stays.
    let plain = run(k(d)
        .arg("verify-blob")
        .arg(&file)
        .args(["--signature", signature, "--key"])
        .arg(&public));
    assert_eq!(plain.status.code(), Some(0), "{}", stderr(&plain));

    // A bundle cosign wrote with a key (sigstore-rust's test data, with a
    // Rekor entry and a timestamp) verifies with that key; kiln says it
    // did not check the log.
    let fixtures = fixture("sigstore");
    let out = verify_blob(
        &fixtures.join("artifact.txt"),
        &fixtures.join("bundle.sigstore.json"),
        &fixtures.join("key.pub"),
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_snapshot(
        snapshot("errors/verify-blob-cosign-bundle.stderr"),
        &stderr(&out),
        &Filters::new().path(&fixtures, "FIXTURES"),
    );
    // Not a bundle at all: an error, naming the file.
    std::fs::write(d.join("junk.json"), "[]").unwrap();
    let junk = verify_blob(&file, &d.join("junk.json"), &public);
    assert_eq!(junk.status.code(), Some(2));
    assert_snapshot(
        snapshot("errors/verify-blob-not-a-bundle.stderr"),
        &stderr(&junk),
        &Filters::new().path(d, "DIR"),
    );
}

/// A registry's response body, fetched with Python's standard library (no
/// kiln code): plain HTTP, anonymous.
pub(crate) fn http_get(url: &str, accept: &str) -> Vec<u8> {
    let out = Command::new("python3")
        .arg("-c")
        .arg(
            "import sys, urllib.request\n\
             r = urllib.request.Request(sys.argv[1], headers={'Accept': sys.argv[2]})\n\
             sys.stdout.buffer.write(urllib.request.urlopen(r).read())\n",
        )
        .args([url, accept])
        .output()
        .unwrap();
    assert!(out.status.success(), "GET {url}: {}", stderr(&out));
    out.stdout
}

/// Checks with openssl alone that the Sigstore bundle in the referrer
/// `referrer` of `repository` on the plain-HTTP registry `host` is
/// `public`'s signature of `subject`, as cosign v3 signs.
pub(crate) fn openssl_verifies_bundle(
    dir: &Path,
    host: &str,
    repository: &str,
    referrer: &str,
    subject: &str,
    public: &Path,
) {
    openssl_verifies_bundle_of(
        dir,
        host,
        repository,
        referrer,
        subject,
        public,
        SIGN_PREDICATE,
    );
}

/// [`openssl_verifies_bundle`] for a statement of `predicate_type`.
pub(crate) fn openssl_verifies_bundle_of(
    dir: &Path,
    host: &str,
    repository: &str,
    referrer: &str,
    subject: &str,
    public: &Path,
    predicate_type: &str,
) {
    let manifest: Value = serde_json::from_slice(&http_get(
        &format!("http://{host}/v2/{repository}/manifests/{referrer}"),
        "application/vnd.oci.image.manifest.v1+json",
    ))
    .unwrap();
    assert_eq!(manifest["artifactType"], BUNDLE);
    assert_eq!(manifest["subject"]["digest"], subject);
    let layer = manifest["layers"][0]["digest"].as_str().unwrap();
    let bundle: Value = serde_json::from_slice(&http_get(
        &format!("http://{host}/v2/{repository}/blobs/{layer}"),
        "*/*",
    ))
    .unwrap();
    let envelope = &bundle["dsseEnvelope"];
    let payload = unb64(envelope["payload"].as_str().unwrap());
    let statement: Value = serde_json::from_slice(&payload).unwrap();
    assert_eq!(statement["predicateType"], predicate_type);
    assert_eq!(
        manifest["annotations"]["dev.sigstore.bundle.predicateType"],
        predicate_type
    );
    assert_eq!(
        statement["subject"][0]["digest"]["sha256"],
        subject.trim_start_matches("sha256:")
    );
    std::fs::write(
        dir.join("pae.bin"),
        pae("application/vnd.in-toto+json", &payload),
    )
    .unwrap();
    std::fs::write(
        dir.join("pae.sig"),
        unb64(envelope["signatures"][0]["sig"].as_str().unwrap()),
    )
    .unwrap();
    let v = Command::new("openssl")
        .args(["dgst", "-sha256", "-verify"])
        .arg(public)
        .args(["-signature", "pae.sig", "pae.bin"])
        .current_dir(dir)
        .output()
        .unwrap();
    assert!(v.status.success(), "openssl: {}{}", stdout(&v), stderr(&v));
}

/// Stores `bytes` in `repository` on the plain-HTTP registry `host` the
/// way any client with push rights can, with Python's standard library: a
/// blob (`reference` `None`) or a manifest under `reference`. Returns its
/// descriptor.
pub(crate) fn put_raw(
    host: &str,
    repository: &str,
    media_type: &str,
    bytes: &[u8],
    reference: Option<&str>,
) -> Value {
    let digest = kiln_core::Digest::of(bytes).to_string();
    let script = "import sys, urllib.request, urllib.parse\n\
        host, repo, media_type, digest, reference = sys.argv[1:6]\n\
        body = sys.stdin.buffer.read()\n\
        def call(method, url, data=None, headers={}):\n\
        \x20   return urllib.request.urlopen(urllib.request.Request(url, data=data, method=method, headers=headers))\n\
        if reference:\n\
        \x20   call('PUT', f'http://{host}/v2/{repo}/manifests/{reference}', body, {'Content-Type': media_type})\n\
        else:\n\
        \x20   loc = call('POST', f'http://{host}/v2/{repo}/blobs/uploads/').headers['Location']\n\
        \x20   loc = urllib.parse.urljoin(f'http://{host}/', loc)\n\
        \x20   sep = '&' if '?' in loc else '?'\n\
        \x20   call('PUT', f'{loc}{sep}digest={digest}', body, {'Content-Type': 'application/octet-stream'})\n";
    let mut child = Command::new("python3")
        .arg("-c")
        .arg(script)
        .args([
            host,
            repository,
            media_type,
            &digest,
            reference.unwrap_or(""),
        ])
        .stdin(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::io::Write::write_all(child.stdin.as_mut().unwrap(), bytes).unwrap();
    drop(child.stdin.take());
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "storing {digest}: {}", stderr(&out));
    json!({"mediaType": media_type, "digest": digest, "size": bytes.len()})
}

#[test]
fn a_hostile_registry_s_bundles_are_skipped_or_refused_each_named() {
    if !requires_registry(Variant::Plain) {
        return;
    }
    let reg = Registry::start(Variant::Plain);
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (_, public) = keygen(d, "k");
    let (other, _) = keygen(d, "other");
    let r = format!("{}/hostile/bundles:1", reg.host);
    let repo = "hostile/bundles";
    let pushed = json_of(&run_ok(
        k(d).arg("push").arg(module(d, "a")).arg(&r).arg("--json"),
    ));
    let a = pushed["digest"].as_str().unwrap().to_string();
    let a_size = reg.linked_blob(repo, &a).unwrap().len();

    // Bundle referrers of `a`, stored as anyone with push rights can store
    // them, listed in the referrers tag schema's index.
    let empty = put_raw(
        &reg.host,
        repo,
        "application/vnd.oci.empty.v1+json",
        b"{}",
        None,
    );
    let referrer = |layer: Value, subject: &str, subject_size: usize| {
        let manifest = json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "artifactType": BUNDLE,
            "config": empty,
            "layers": [layer],
            "subject": {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": subject, "size": subject_size},
        });
        let bytes = serde_json::to_vec(&manifest).unwrap();
        let digest = kiln_core::Digest::of(&bytes).to_string();
        let mut d = put_raw(
            &reg.host,
            repo,
            "application/vnd.oci.image.manifest.v1+json",
            &bytes,
            Some(&digest),
        );
        d["artifactType"] = json!(BUNDLE);
        d
    };
    let mut huge = b"{\"mediaType\":\"".to_vec();
    huge.resize(3 << 20, b'x');
    let huge = referrer(put_raw(&reg.host, repo, BUNDLE, &huge, None), &a, a_size);
    let garbage = referrer(
        put_raw(&reg.host, repo, BUNDLE, b"<html>not json</html>", None),
        &a,
        a_size,
    );
    let by_other = bytes_of(&signed_bundle(&other, &statement(&a, SIGN_PREDICATE)));
    let by_other_layer = put_raw(&reg.host, repo, BUNDLE, &by_other, None);
    let by_other = referrer(by_other_layer.clone(), &a, a_size);
    // A bundle of `b`'s, listed among `a`'s referrers.
    let b = json_of(&run_ok(
        k(d).arg("push")
            .arg(module(d, "b"))
            .arg(format!("{}/{repo}:b", reg.host))
            .arg("--json"),
    ))["digest"]
        .as_str()
        .unwrap()
        .to_string();
    let b_size = reg.linked_blob(repo, &b).unwrap().len();
    let of_b = bytes_of(&signed_bundle(&other, &statement(&b, SIGN_PREDICATE)));
    let of_b = referrer(put_raw(&reg.host, repo, BUNDLE, &of_b, None), &b, b_size);
    let entries = vec![
        huge.clone(),
        garbage.clone(),
        by_other.clone(),
        of_b.clone(),
    ];
    let index = json!({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": entries});
    put_raw(
        &reg.host,
        repo,
        "application/vnd.oci.image.index.v1+json",
        &serde_json::to_vec(&index).unwrap(),
        Some(&a.replacen(':', "-", 1)),
    );

    let (code, out) = verify(d, &r, &public, &[]);
    assert_eq!(code, Some(1), "{}", stderr(&out));
    let mut filters = Filters::new().text(&reg.host, "[REGISTRY]").text(&a, "[A]");
    for (name, entry) in [
        ("HUGE", &huge),
        ("GARBAGE", &garbage),
        ("OTHER-KEY", &by_other),
        ("OF-B", &of_b),
    ] {
        filters = filters.text(entry["digest"].as_str().unwrap(), &format!("[{name}]"));
    }
    // The other key's bundle holds a random signature: its digest and size
    // vary, as the download line shows them.
    let layer = by_other_layer["digest"].as_str().unwrap();
    filters = filters.text(
        &format!("{} ({} B)", &layer[..19], by_other_layer["size"]),
        "[OTHER-KEY's bundle]",
    );
    assert_snapshot(
        snapshot("errors/verify-hostile-registry-bundles.stderr"),
        &stderr(&out),
        &filters,
    );
}

pub(crate) fn bytes_of(v: &Value) -> Vec<u8> {
    serde_json::to_vec(v).unwrap()
}
