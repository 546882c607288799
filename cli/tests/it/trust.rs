//! Attacks on what kiln trusts: forged referrers, chosen file names, concurrent writers.
//!
//! Attacks on what kiln trusts: forged referrer lists, registry-chosen file
//! names, a referrers index that does not parse, and many kiln processes
//! updating one layout or one registry at once.

use crate::common::*;
use crate::registry_harness::{Registry, Variant};
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const PASSWORD: &str = "trust-test-password";
const BUNDLE_TYPE: &str = "application/vnd.dev.sigstore.bundle.v0.3+json";
const CWASM_TYPE: &str = "application/vnd.kiln.wasmtime.cwasm.v1";

/// kiln in `dir`, with its own Docker config and cache.
fn k(dir: &Path) -> Command {
    let mut c = kiln_in(dir);
    c.env("KILN_PASSWORD", PASSWORD);
    c
}

fn json_of(out: &Output) -> Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", stdout(out)))
}

/// A small core module of its own, `NAME.wasm` in `dir`.
pub fn module(dir: &Path, name: &str) -> PathBuf {
    let path = dir.join(format!("{name}.wasm"));
    let wasm = wat::parse_str(format!(
        r#"(module (memory (export "memory") 1) (func (export "{name}") (result i32) i32.const 7))"#
    ))
    .unwrap();
    std::fs::write(&path, wasm).unwrap();
    path
}

/// `NAME.wasm` with its host precompiled artifact beside it.
pub fn module_with_aot(dir: &Path, name: &str) -> PathBuf {
    let wasm = module(dir, name);
    run_ok(
        k(dir)
            .arg("compile")
            .arg(&wasm)
            .args(["--target", kiln_core::Target::host().as_str()]),
    );
    wasm
}

fn push(dir: &Path, file: &Path, reference: &str) -> Value {
    json_of(&run_ok(
        k(dir).arg("push").arg(file).arg(reference).arg("--json"),
    ))
}

fn keygen(dir: &Path) -> (PathBuf, PathBuf) {
    run_ok(k(dir).args(["keygen", "--output-prefix", "k"]));
    (dir.join("k.key"), dir.join("k.pub"))
}

/// Reading and forging a local layout the way anyone with write access to
/// it (or push rights to a registry) can.
pub struct Forge {
    pub dir: PathBuf,
}

impl Forge {
    pub fn index(&self) -> Value {
        serde_json::from_slice(&std::fs::read(self.dir.join("index.json")).unwrap()).unwrap()
    }

    pub fn blob(&self, digest: &str) -> Vec<u8> {
        std::fs::read(
            self.dir
                .join("blobs/sha256")
                .join(digest.trim_start_matches("sha256:")),
        )
        .unwrap()
    }

    /// Stores bytes as a blob; its descriptor.
    pub fn put(&self, media_type: &str, bytes: &[u8]) -> Value {
        let digest = kiln_core::Digest::of(bytes).to_string();
        std::fs::write(
            self.dir
                .join("blobs/sha256")
                .join(digest.trim_start_matches("sha256:")),
            bytes,
        )
        .unwrap();
        json!({"mediaType": media_type, "digest": digest, "size": bytes.len()})
    }

    /// Points `tag` at `descriptor` in `index.json`.
    pub fn tag(&self, tag: &str, descriptor: &Value) {
        let mut index = self.index();
        let manifests = index["manifests"].as_array_mut().unwrap();
        manifests.retain(|m| m["annotations"]["org.opencontainers.image.ref.name"] != tag);
        let mut d = descriptor.clone();
        d["annotations"] = json!({"org.opencontainers.image.ref.name": tag});
        manifests.push(d);
        std::fs::write(
            self.dir.join("index.json"),
            serde_json::to_vec_pretty(&index).unwrap(),
        )
        .unwrap();
    }

    /// The descriptor a tag points at.
    pub fn resolve(&self, tag: &str) -> Option<Value> {
        self.index()["manifests"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["annotations"]["org.opencontainers.image.ref.name"] == tag)
            .cloned()
    }

    /// The entries of the referrers index of `digest`.
    pub fn referrers(&self, digest: &str) -> Vec<Value> {
        match self.resolve(&digest.replacen(':', "-", 1)) {
            Some(d) => {
                let index: Value =
                    serde_json::from_slice(&self.blob(d["digest"].as_str().unwrap())).unwrap();
                index["manifests"].as_array().unwrap().clone()
            }
            None => Vec::new(),
        }
    }

    /// Replaces the referrers index of `digest` with one listing `entries`.
    pub fn set_referrers(&self, digest: &str, entries: Vec<Value>) {
        let index = json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.index.v1+json",
            "manifests": entries,
        });
        let d = self.put(
            "application/vnd.oci.image.index.v1+json",
            &serde_json::to_vec(&index).unwrap(),
        );
        self.tag(&digest.replacen(':', "-", 1), &d);
    }

    /// The manifest a descriptor names, parsed.
    pub fn manifest(&self, digest: &str) -> Value {
        serde_json::from_slice(&self.blob(digest)).unwrap()
    }
}

#[test]
fn sign_recursive_signs_only_referrers_that_refer_to_the_digest() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let layout = d.join("layout");
    let forge = Forge {
        dir: layout.clone(),
    };
    let (key, public) = keygen(d);
    let a = module_with_aot(d, "a");
    let b = module_with_aot(d, "b");
    let pa = push(d, &a, &format!("oci:{}:a", layout.display()));
    let pb = push(d, &b, &format!("oci:{}:b", layout.display()));
    let (a_digest, b_digest) = (
        pa["digest"].as_str().unwrap().to_string(),
        pb["digest"].as_str().unwrap().to_string(),
    );
    let a_own = forge.referrers(&a_digest);
    assert_eq!(a_own.len(), 1, "{a_own:?}");
    let b_cwasm = forge.referrers(&b_digest)[0].clone();
    // A signature bundle that does refer to A: real, but not something
    // `sign --recursive` may sign.
    let empty = forge.put("application/vnd.oci.empty.v1+json", b"{}");
    let bundle_manifest = json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "artifactType": BUNDLE_TYPE,
        "config": empty,
        "layers": [],
        "subject": {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": a_digest, "size": pa["size"]},
    });
    let mut bundle = forge.put(
        "application/vnd.oci.image.manifest.v1+json",
        &serde_json::to_vec(&bundle_manifest).unwrap(),
    );
    bundle["artifactType"] = json!(BUNDLE_TYPE);
    // B's manifest itself, listed as if it were a precompiled artifact of A.
    let mut b_listed = json!({"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": b_digest, "size": pb["size"]});
    b_listed["artifactType"] = json!(CWASM_TYPE);
    let missing = json!({"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": format!("sha256:{}", "0".repeat(64)), "size": 10, "artifactType": CWASM_TYPE});
    let mut forged = a_own.clone();
    forged.extend([b_cwasm.clone(), b_listed, missing, bundle.clone()]);
    forge.set_referrers(&a_digest, forged);

    let out = run_ok(
        k(d).arg("sign")
            .arg(format!("oci:{}:a", layout.display()))
            .arg("--key")
            .arg(&key)
            .args(["--recursive", "--json"]),
    );
    let signed_json = json_of(&out);
    let signed: Vec<String> = signed_json
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["digest"].as_str().unwrap().to_string())
        .collect();
    // A's own signature, a bundle attached to A.
    let a_signature = signed_json[0]["signature_manifest"].as_str().unwrap();
    let a_cwasm = a_own[0]["digest"].as_str().unwrap().to_string();
    assert_eq!(signed, vec![a_digest.clone(), a_cwasm.clone()]);
    let err = stderr(&out);
    for skipped in [
        b_cwasm["digest"].as_str().unwrap(),
        b_digest.as_str(),
        &format!("sha256:{}", "0".repeat(64)),
    ] {
        assert!(
            err.contains(&format!("skipped the referrer {skipped}")),
            "{skipped} not named in: {err}"
        );
    }
    // Nothing of B's was signed.
    for b_ref in [
        format!("oci:{}:b", layout.display()),
        format!(
            "oci:{}@{}",
            layout.display(),
            b_cwasm["digest"].as_str().unwrap()
        ),
        format!(
            "oci:{}@{}",
            layout.display(),
            bundle["digest"].as_str().unwrap()
        ),
    ] {
        let out = run(k(d).arg("verify").arg(&b_ref).arg("--key").arg(&public));
        assert_eq!(out.status.code(), Some(1), "{b_ref}: {}", stderr(&out));
    }
    assert_eq!(
        run(k(d)
            .arg("verify")
            .arg(format!("oci:{}@{a_cwasm}", layout.display()))
            .arg("--key")
            .arg(&public))
        .status
        .code(),
        Some(0)
    );
    // The same helper guards `pull --target` and `inspect REF`: B's
    // precompiled artifact is not pulled for A, nor shown as A's.
    let pulled = json_of(&run_ok(
        k(d).arg("pull")
            .arg(format!("oci:{}@{a_digest}", layout.display()))
            .args(["--target", "host", "--json", "-o"])
            .arg(d.join("a.pulled.cwasm")),
    ));
    assert_eq!(pulled["referrer"], a_cwasm.as_str());
    let shown = json_of(&run_ok(
        k(d).arg("inspect")
            .arg(format!("oci:{}:a", layout.display()))
            .arg("--json"),
    ));
    let shown: Vec<&str> = shown["referrers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["digest"].as_str().unwrap())
        .collect();
    assert_eq!(
        shown,
        vec![
            a_cwasm.as_str(),
            bundle["digest"].as_str().unwrap(),
            a_signature
        ]
    );
}

/// A layout in `d` holding `a.wasm` as `a`, with its host precompiled
/// artifact attached: the forge for it, the file and the manifest digest.
fn pushed_with_aot(d: &Path) -> (Forge, PathBuf, String) {
    let layout = d.join("layout");
    let a = module_with_aot(d, "a");
    let pa = push(d, &a, &format!("oci:{}:a", layout.display()));
    let digest = pa["digest"].as_str().unwrap().to_string();
    (Forge { dir: layout }, a, digest)
}

#[test]
fn pull_names_its_outputs_and_replaces_only_its_own() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (forge, _, a_digest) = pushed_with_aot(d);
    let (layout, a_digest) = (forge.dir.clone(), a_digest.as_str());
    // The precompiled artifact's layer is retitled `package.json` and its
    // referrer listed in place of the original.
    let listed = forge.referrers(a_digest)[0].clone();
    let mut m = forge.manifest(listed["digest"].as_str().unwrap());
    m["layers"][0]["annotations"]["org.opencontainers.image.title"] = json!("package.json");
    let mut retitled = forge.put(
        "application/vnd.oci.image.manifest.v1+json",
        &serde_json::to_vec(&m).unwrap(),
    );
    retitled["artifactType"] = listed["artifactType"].clone();
    retitled["annotations"] = listed["annotations"].clone();
    forge.set_referrers(a_digest, vec![retitled.clone()]);

    let out_dir = d.join("out");
    std::fs::create_dir(&out_dir).unwrap();
    std::fs::write(out_dir.join("package.json"), b"{\"name\":\"mine\"}").unwrap();
    let pull = |dir: &Path| {
        run(k(d)
            .arg("pull")
            .arg(format!("oci:{}:a", layout.display()))
            .args(["--target", "host", "--json", "-o"])
            .arg(dir))
    };
    let out = pull(&out_dir);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let host = kiln_core::Target::host().as_str();
    // A core module without metadata has no title: kiln's stem is
    // `component`, whatever the layer's title says.
    let expected = out_dir.join(format!("component.{host}.cwasm"));
    assert_eq!(json_of(&out)["path"], expected.to_str().unwrap());
    assert!(
        expected.is_file()
            && out_dir
                .join(format!("component.{host}.cwasm.json"))
                .is_file()
    );
    assert_eq!(
        std::fs::read(out_dir.join("package.json")).unwrap(),
        b"{\"name\":\"mine\"}"
    );
    assert!(!out_dir.join("package.json.json").exists());
    // The descriptor written is kiln's own reading of it, naming the source.
    let descriptor: Value = serde_json::from_slice(
        &std::fs::read(out_dir.join(format!("component.{host}.cwasm.json"))).unwrap(),
    )
    .unwrap();
    assert_eq!(descriptor["target"], host);
    // Pulling again replaces kiln's own output...
    assert_eq!(pull(&out_dir).status.code(), Some(0));
    // ...but not a file of the user's that has the same name.
    let other = d.join("other");
    std::fs::create_dir(&other).unwrap();
    std::fs::write(other.join(format!("component.{host}.cwasm")), b"mine").unwrap();
    let out = pull(&other);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("does not replace it"),
        "{}",
        stderr(&out)
    );
    assert_eq!(
        std::fs::read(other.join(format!("component.{host}.cwasm"))).unwrap(),
        b"mine"
    );
    // A component pull does not replace a file that is not wasm either.
    std::fs::write(other.join("component.wasm"), b"not wasm: the user's").unwrap();
    let out = run(k(d)
        .arg("pull")
        .arg(format!("oci:{}:a", layout.display()))
        .arg("-o")
        .arg(&other));
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert_eq!(
        std::fs::read(other.join("component.wasm")).unwrap(),
        b"not wasm: the user's"
    );
}

#[test]
fn a_referrers_index_that_does_not_parse_is_an_error_not_an_empty_list() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (forge, a, a_digest) = pushed_with_aot(d);
    let (layout, a_digest) = (forge.dir.clone(), a_digest.as_str());
    let garbage = forge.put("application/vnd.oci.image.index.v1+json", b"{not json");
    let tag = a_digest.replacen(':', "-", 1);
    forge.tag(&tag, &garbage);
    // Pushing again with the precompiled artifact must add it to that index.
    std::fs::remove_dir_all(d.join("cache")).ok();
    let out = run(k(d)
        .arg("push")
        .arg(&a)
        .arg(format!("oci:{}:a2", layout.display())));
    // The artifact is already listed nowhere kiln can read: it refuses to
    // replace the index rather than drop what it lists.
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("is not an OCI image index"),
        "{}",
        stderr(&out)
    );
    assert_eq!(forge.resolve(&tag).unwrap()["digest"], garbage["digest"]);
}

/// Runs `n` kiln commands at once; every one must succeed.
fn all_at_once(n: usize, command: impl Fn(usize) -> Command) {
    let children: Vec<_> = (1..=n)
        .map(|i| {
            command(i)
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for (i, c) in children.into_iter().enumerate() {
        let out = c.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "process {} failed: {}",
            i + 1,
            stderr(&out)
        );
    }
}

#[test]
fn twenty_parallel_pushes_to_one_layout_keep_every_tag() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let layout = d.join("layout");
    let a = module_with_aot(d, "a");
    // The layout does not exist yet: the processes also race to create it.
    all_at_once(20, |i| {
        let mut c = k(d);
        c.arg("push")
            .arg(&a)
            .arg(format!("oci:{}:t{i}", layout.display()));
        c
    });
    let tags = stdout(&run_ok(
        k(d).arg("tags").arg(format!("oci:{}", layout.display())),
    ));
    let mut tags: Vec<&str> = tags.lines().filter(|t| t.starts_with('t')).collect();
    tags.sort_by_key(|t| t[1..].parse::<u32>().unwrap());
    let expected: Vec<String> = (1..=20).map(|i| format!("t{i}")).collect();
    assert_eq!(tags, expected);
}

/// Ten processes sign one digest at once, each with its own annotation;
/// afterwards every one of the ten signatures verifies.
/// Ten signers at once, five writing bundle referrers and five the legacy
/// `.sig` manifest: every signature lands.
fn ten_signers(d: &Path, reference: &str) {
    let (key, public) = keygen(d);
    all_at_once(10, |i| {
        let mut c = k(d);
        c.arg("sign")
            .arg(reference)
            .arg("--key")
            .arg(&key)
            .args(["-a", &format!("signer={i}")])
            .args(["--format", if i % 2 == 0 { "bundle" } else { "legacy" }]);
        c
    });
    for i in 1..=10 {
        let out = run(k(d)
            .arg("verify")
            .arg(reference)
            .arg("--key")
            .arg(&public)
            .args(["-a", &format!("signer={i}")]));
        assert_eq!(
            out.status.code(),
            Some(0),
            "signer {i}'s signature was lost: {}",
            stderr(&out)
        );
    }
}

#[test]
fn ten_concurrent_signers_on_a_layout_all_land() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let a = module(d, "a");
    let r = format!("oci:{}:a", d.join("layout").display());
    push(d, &a, &r);
    ten_signers(d, &r);
}

#[test]
fn ten_concurrent_signers_on_a_registry_converge() {
    if !requires_registry(Variant::Plain) {
        return;
    }
    let reg = Registry::start(Variant::Plain);
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let a = module(d, "a");
    let r = format!("{}/trust/signers:1", reg.host);
    push(d, &a, &r);
    ten_signers(d, &r);
}
