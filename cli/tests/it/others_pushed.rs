//! Wasm that other tools pushed, pulled, inspected, audited and signed with kiln.
//!
//! Wasm that other tools pushed: the shapes `oras push` and older guides make
//! (the OCI 1.1 empty config with `artifactType`, a Wasm config with an empty
//! body, older Wasm layer types), pushed with raw HTTP to a real registry and
//! pulled, inspected, audited and signed with kiln.

use crate::common::*;
use crate::registry_harness::{Registry, Variant};
use serde_json::{Value, json};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::Command;

const EMPTY_CONFIG: &str = "application/vnd.oci.empty.v1+json";
const WASM_CONFIG: &str = "application/vnd.wasm.config.v0+json";
const WASM_LAYER: &str = "application/wasm";
const OLD_WASM_LAYER: &str = "application/vnd.wasm.content.layer.v1+wasm";
const MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";

/// kiln in `dir`, with its own Docker config, cache and key password.
fn k(dir: &Path) -> Command {
    let mut c = kiln_in(dir);
    c.env("KILN_PASSWORD", "others-pushed-test");
    c
}

/// An answer to one HTTP/1.1 request.
struct Answer {
    status: u16,
    headers: Vec<(String, String)>,
    body: String,
}

impl Answer {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// One blocking HTTP/1.1 request on its own connection: a client
/// independent of kiln's, as another tool would push.
fn request(host: &str, method: &str, path: &str, content_type: &str, body: &[u8]) -> Answer {
    let mut stream = TcpStream::connect(host).unwrap();
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).unwrap();
    stream.write_all(body).unwrap();
    let mut reader = BufReader::new(stream);
    let mut line = String::new();
    reader.read_line(&mut line).unwrap();
    let status: u16 = line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("not an HTTP status line: {line:?}"));
    let mut headers = Vec::new();
    loop {
        line.clear();
        reader.read_line(&mut line).unwrap();
        let l = line.trim_end();
        if l.is_empty() {
            break;
        }
        if let Some((n, v)) = l.split_once(':') {
            headers.push((n.trim().to_string(), v.trim().to_string()));
        }
    }
    let mut body = Vec::new();
    reader.read_to_end(&mut body).unwrap();
    Answer {
        status,
        headers,
        body: String::from_utf8_lossy(&body).into_owned(),
    }
}

/// A descriptor of `bytes` as `media_type`.
fn descriptor(media_type: &str, bytes: &[u8]) -> Value {
    json!({
        "mediaType": media_type,
        "digest": kiln_core::Digest::of(bytes).to_string(),
        "size": bytes.len(),
    })
}

/// Uploads a blob as the distribution spec's monolithic upload does:
/// `POST …/blobs/uploads/`, then `PUT` to its `Location` with the digest.
fn push_blob(host: &str, repo: &str, bytes: &[u8]) {
    let started = request(
        host,
        "POST",
        &format!("/v2/{repo}/blobs/uploads/"),
        "application/octet-stream",
        b"",
    );
    assert_eq!(started.status, 202, "upload not started: {}", started.body);
    let location = started.header("Location").expect("a Location").to_string();
    // The registry may answer with an absolute URL; only its path and
    // query are asked for on this connection.
    let path = match location.split_once("://") {
        Some((_, rest)) => rest[rest.find('/').unwrap_or(rest.len())..].to_string(),
        None => location,
    };
    let sep = if path.contains('?') { '&' } else { '?' };
    let digest = kiln_core::Digest::of(bytes).to_string();
    let put = request(
        host,
        "PUT",
        &format!("{path}{sep}digest={digest}"),
        "application/octet-stream",
        bytes,
    );
    assert_eq!(put.status, 201, "blob {digest} not stored: {}", put.body);
}

/// Pushes a manifest with `config` and `layers` (media type and bytes
/// each) under `repo:tag`, and returns its reference.
fn push(
    reg: &Registry,
    repo: &str,
    tag: &str,
    artifact_type: Option<&str>,
    config: (&str, &[u8]),
    layers: &[(&str, &[u8])],
) -> String {
    let host = &reg.host;
    push_blob(host, repo, config.1);
    for (_, bytes) in layers {
        push_blob(host, repo, bytes);
    }
    let mut manifest = json!({
        "schemaVersion": 2,
        "mediaType": MANIFEST,
        "config": descriptor(config.0, config.1),
        "layers": layers.iter().map(|(t, b)| {
            let mut d = descriptor(t, b);
            d["annotations"] = json!({"org.opencontainers.image.title": "app.wasm"});
            d
        }).collect::<Vec<_>>(),
        "annotations": {"org.opencontainers.image.created": "2025-01-01T00:00:00Z"},
    });
    if let Some(t) = artifact_type {
        manifest["artifactType"] = json!(t);
    }
    let put = request(
        host,
        "PUT",
        &format!("/v2/{repo}/manifests/{tag}"),
        MANIFEST,
        &serde_json::to_vec(&manifest).unwrap(),
    );
    assert_eq!(put.status, 201, "manifest not stored: {}", put.body);
    format!("{host}/{repo}:{tag}")
}

fn json_of(out: &std::process::Output) -> Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: not JSON: {}", stdout(out)))
}

/// What kiln does with `reference`, which holds `wasm`: it pulls the exact
/// bytes with a warning containing `warned`, and inspect and audit read
/// the layer, saying so. Returns what `inspect --json` showed.
fn read_by_kiln(dir: &Path, reference: &str, wasm: &[u8], warned: &str) -> Value {
    let file = dir.join("pulled.wasm");
    let out = run_ok(k(dir).arg("pull").arg(reference).arg("-o").arg(&file));
    assert_eq!(std::fs::read(&file).unwrap(), wasm, "{reference}");
    let err = stderr(&out);
    assert!(
        err.contains("warning:") && err.contains(warned),
        "{reference}: {err}"
    );

    let out = run_ok(k(dir).arg("inspect").arg(reference));
    let err = stderr(&out);
    assert!(
        err.contains("Reading") && err.contains("does not list imports and exports"),
        "{reference}: {err}"
    );
    let shown = stdout(&out);
    assert!(
        shown.contains("from the wasm layer") && shown.contains(reference),
        "{reference}: {shown}"
    );

    let out = run_ok(k(dir).args(["inspect", "--json", reference]));
    let shown = json_of(&out);
    assert_eq!(shown["kind"], "oci");
    assert_eq!(
        shown["wasm"]["digest"],
        kiln_core::Digest::of(wasm).to_string(),
        "{shown}"
    );

    let out = run(k(dir).args(["audit", "--policy", "builtin:wasi-cli-pure", reference]));
    let (err, report) = (stderr(&out), stdout(&out));
    assert!(
        matches!(out.status.code(), Some(0 | 1)),
        "{reference}: {err}{report}"
    );
    assert!(
        err.contains("the wasm layer") && err.contains("does not list imports and exports"),
        "{reference}: {err}"
    );
    assert!(
        report.contains("PASS") || report.contains("FAIL"),
        "{reference}: {report}"
    );
    shown
}

/// The names a core module exports, from `inspect --json`.
fn module_exports(shown: &Value) -> Vec<String> {
    shown["wasm"]["module"]["exports"]
        .as_array()
        .unwrap_or_else(|| panic!("no module exports in {shown}"))
        .iter()
        .map(|e| e["name"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn kiln_pulls_inspects_and_audits_the_shapes_other_tools_push() {
    if !requires_registry(Variant::Plain) {
        return;
    }
    let reg = Registry::start(Variant::Plain);
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();

    // (1) `oras push REF app.wasm:application/wasm` in OCI 1.1: the empty
    // config `{}` and an `artifactType`.
    let wasm = std::fs::read(crate::trust::module(d, "oras")).unwrap();
    let r = push(
        &reg,
        "others/oras",
        "1",
        Some(WASM_LAYER),
        (EMPTY_CONFIG, b"{}"),
        &[(WASM_LAYER, &wasm)],
    );
    let shown = read_by_kiln(d, &r, &wasm, "not a Wasm config");
    assert_eq!(module_exports(&shown), ["memory", "oras"]);
    assert_eq!(shown["manifest"]["artifactType"], WASM_LAYER);

    // (2) The Wasm config's media type with `{}` as its body.
    let wasm = std::fs::read(crate::trust::module(d, "braces")).unwrap();
    let r = push(
        &reg,
        "others/braces",
        "1",
        None,
        (WASM_CONFIG, b"{}"),
        &[(WASM_LAYER, &wasm)],
    );
    let shown = read_by_kiln(d, &r, &wasm, "lists nothing");
    assert_eq!(module_exports(&shown), ["memory", "braces"]);

    // (3) The Wasm config's media type with a zero-byte body.
    let wasm = std::fs::read(crate::trust::module(d, "zero")).unwrap();
    let r = push(
        &reg,
        "others/zero",
        "1",
        None,
        (WASM_CONFIG, b""),
        &[(WASM_LAYER, &wasm)],
    );
    let shown = read_by_kiln(d, &r, &wasm, "its body is empty, 0 bytes");
    assert_eq!(module_exports(&shown), ["memory", "zero"]);

    // (4) An older Wasm layer type with a complete Wasm config for a core
    // module (which lists no imports or exports).
    let wasm = std::fs::read(crate::trust::module(d, "old")).unwrap();
    let config = json!({
        "created": "2025-01-01T00:00:00Z",
        "architecture": "wasm",
        "os": "wasip1",
        "layerDigests": [kiln_core::Digest::of(&wasm).to_string()],
    });
    let config = serde_json::to_vec(&config).unwrap();
    let r = push(
        &reg,
        "others/old",
        "1",
        None,
        (WASM_CONFIG, &config),
        &[(OLD_WASM_LAYER, &wasm)],
    );
    let shown = read_by_kiln(d, &r, &wasm, OLD_WASM_LAYER);
    assert_eq!(module_exports(&shown), ["memory", "old"]);
    assert_eq!(shown["config"]["os"], "wasip1");
    let imports = run_ok(k(d).args(["inspect", "--imports", &r]));
    assert_eq!(stdout(&imports), "", "the module imports nothing");

    // (5) Two wasm layers: kiln does not guess which is meant.
    let a = std::fs::read(crate::trust::module(d, "one")).unwrap();
    let b = std::fs::read(crate::trust::module(d, "two")).unwrap();
    let r = push(
        &reg,
        "others/two",
        "1",
        Some(WASM_LAYER),
        (EMPTY_CONFIG, b"{}"),
        &[(WASM_LAYER, &a), (OLD_WASM_LAYER, &b)],
    );
    for args in [
        &["pull", "-o", "refused.wasm"][..],
        &["inspect"],
        &["audit", "--policy", "builtin:wasi-cli-pure"],
    ] {
        let out = run(k(d).args(args).arg(&r));
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(
            err.contains("has 2 wasm layers") && err.contains("exactly one"),
            "{args:?}: {err}"
        );
    }
    assert!(!d.join("refused.wasm").exists());
}

#[test]
fn a_component_pushed_as_oras_does_shows_its_world_from_the_layer() {
    if !requires_registry(Variant::Plain) {
        return;
    }
    let reg = Registry::start(Variant::Plain);
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let wat = fixture("wat/component.wat");
    assert!(wat.is_file(), "{} is missing", wat.display());
    let wasm = wat::parse_file(&wat).unwrap();
    let r = push(
        &reg,
        "others/component",
        "1",
        Some("application/vnd.unknown.artifact.v1"),
        (EMPTY_CONFIG, b"{}"),
        &[(WASM_LAYER, &wasm)],
    );
    let shown = read_by_kiln(d, &r, &wasm, "not a Wasm config");
    assert_eq!(shown["wasm"]["kind"], "component");
    let imports: Vec<&str> = shown["wasm"]["world"]["imports"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["name"].as_str().unwrap())
        .collect();
    assert_eq!(imports, ["wasi:cli/environment@0.2.0"]);

    let human = stdout(&run_ok(k(d).arg("inspect").arg(&r)));
    assert!(
        human.contains("kind:      component (read from the layer")
            && human.contains("interface wasi:cli/environment@0.2.0")
            && human.contains("interface kiln:calc/math@1.2.0"),
        "{human}"
    );
    // `--imports` lists the WIT-level imports, as for the file.
    let file = d.join("component.wasm");
    std::fs::write(&file, &wasm).unwrap();
    let local = stdout(&run_ok(k(d).arg("inspect").arg("--imports").arg(&file)));
    let remote = stdout(&run_ok(k(d).args(["inspect", "--imports", &r])));
    assert_eq!(remote, local);
    assert_eq!(remote, "wasi:cli/environment@0.2.0\n");
    // --deep reads the layer too, and has no listing to compare it with.
    let out = run(k(d).args(["audit", "--deep", "--policy", "builtin:wasi-cli-pure", &r]));
    assert!(
        matches!(out.status.code(), Some(0 | 1)),
        "{}{}",
        stderr(&out),
        stdout(&out)
    );

    // Signing works by digest, so such an artifact signs and verifies,
    // and `pull --verify-key` checks it before writing.
    run_ok(k(d).args(["keygen", "--output-prefix", "k"]));
    run_ok(k(d).arg("sign").arg(&r).arg("--key").arg(d.join("k.key")));
    run_ok(k(d).arg("verify").arg(&r).arg("--key").arg(d.join("k.pub")));
    let verified = d.join("verified.wasm");
    let out = run_ok(
        k(d).arg("pull")
            .arg(&r)
            .arg("--verify-key")
            .arg(d.join("k.pub"))
            .arg("-o")
            .arg(&verified),
    );
    assert!(stderr(&out).contains("Verified"), "{}", stderr(&out));
    assert_eq!(std::fs::read(&verified).unwrap(), wasm);
}

#[test]
fn a_layer_that_does_not_match_its_digest_is_refused_in_any_shape() {
    // A local layout in the OCI 1.1 shape, written by hand; then its layer
    // is replaced by other wasm.
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let layout = d.join("layout");
    let blobs = layout.join("blobs/sha256");
    std::fs::create_dir_all(&blobs).unwrap();
    let put = |bytes: &[u8]| {
        let digest = kiln_core::Digest::of(bytes);
        std::fs::write(blobs.join(digest.hex()), bytes).unwrap();
        digest
    };
    let wasm = std::fs::read(crate::trust::module(d, "layout")).unwrap();
    put(b"{}");
    let layer = put(&wasm);
    let manifest = serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": MANIFEST,
        "artifactType": WASM_LAYER,
        "config": descriptor(EMPTY_CONFIG, b"{}"),
        "layers": [descriptor(WASM_LAYER, &wasm)],
    }))
    .unwrap();
    let m = put(&manifest);
    std::fs::write(
        layout.join("oci-layout"),
        r#"{"imageLayoutVersion":"1.0.0"}"#,
    )
    .unwrap();
    std::fs::write(
        layout.join("index.json"),
        json!({"schemaVersion": 2, "manifests": [{
            "mediaType": MANIFEST, "digest": m.to_string(), "size": manifest.len(),
            "annotations": {"org.opencontainers.image.ref.name": "1"}}]})
        .to_string(),
    )
    .unwrap();
    let r = format!("oci:{}:1", layout.display());
    // As written, it pulls.
    let out = run_ok(k(d).arg("pull").arg(&r).arg("-o").arg(d.join("ok.wasm")));
    assert!(
        stderr(&out).contains("not a Wasm config"),
        "{}",
        stderr(&out)
    );
    assert_eq!(std::fs::read(d.join("ok.wasm")).unwrap(), wasm);

    let other = std::fs::read(crate::trust::module(d, "other")).unwrap();
    std::fs::write(blobs.join(layer.hex()), &other).unwrap();
    for args in [
        &["pull", "-o", "bad.wasm"][..],
        &["inspect"],
        &["audit", "--policy", "builtin:wasi-cli-pure"],
    ] {
        let out = run(k(d).args(args).arg(&r));
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", stderr(&out));
        assert!(
            stderr(&out).contains("does not match its digest")
                || stderr(&out).contains("but its descriptor says"),
            "{args:?}: {}",
            stderr(&out)
        );
    }
    assert!(!d.join("bad.wasm").exists());
}
