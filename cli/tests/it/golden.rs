//! Golden recordings of `kiln publish` for the Rust, C and Go command fixtures.
//!
//! Golden recordings of `kiln publish`: the Rust, C and Go command fixtures
//! published, signed, with an SBOM and a pulley64 precompiled artifact, to a
//! local OCI layout and to a real registry; the receipt, the `--json` event
//! stream and the human output (stdout and stderr of a run without `--json`) of
//! each are kept under `snapshots/publish/` (`cargo xtask bless` rewrites
//! them), so a change to any of them shows as a diff.
//!
//! Each run starts from nothing: a fresh copy of the fixture, its own target
//! directory, `KILN_CACHE_DIR`, key and registry (or layout), so counters,
//! uploads and status lines are those of a first publish. Digests of what
//! the toolchains and kiln make stay as they are (Rust builds with
//! `--release`: a dev build's debug information holds the project's path).
//! The Rust and Go recordings sign in the default format (Sigstore bundles),
//! the C ones in the legacy format, chosen by `[sign] format` in kiln.toml.
//! Filtered: the run's directory (`[TMP]`), the registry's `HOST:PORT`
//! (`[REGISTRY]`), times, and the digests that cover a signature: cosign
//! signatures are randomized (ECDSA with a random nonce, and a new key each
//! run), so each signature manifest's digest is `[signature of WHAT]` and a
//! bundle's is `[bundle of WHAT]`; on a registry a legacy signed payload
//! names `HOST:PORT/REPO`, so it and the signature's config are
//! `[signed payload of WHAT]` and `[signature config of WHAT]` too.
//!
//! The precompile runs beside the rest of the pipeline, so where its lines
//! (the `compile` stage's events and its `Compiled` status) fall among the
//! others varies from run to run; the snapshots list them, in their own
//! order, after everything else.

use crate::common::*;
use crate::registry_harness::{Registry, Variant};
use std::path::Path;
use std::process::Command;

const PASSWORD: &str = "golden-test-password";

/// Where a run publishes to.
#[derive(Clone, Copy)]
enum Destination {
    /// `oci:layout:1`, relative to the run's directory.
    Layout,
    /// `HOST:PORT/golden/FIXTURE:1` on a registry of the run's own.
    Registry,
}

impl Destination {
    fn name(self) -> &'static str {
        match self {
            Destination::Layout => "layout",
            Destination::Registry => "registry",
        }
    }
}

/// What one `kiln publish` printed and wrote, and the filters that make it
/// comparable with another run's.
struct Recording {
    stdout: String,
    stderr: String,
    receipt: String,
    filters: Filters,
}

/// kiln in `dir`, with nothing from the machine's own setup or earlier runs.
fn k(dir: &Path) -> Command {
    let mut c = kiln_in(dir);
    c.env_remove("CARGO_TARGET_DIR")
        .env("SOURCE_DATE_EPOCH", "1700000000")
        .env("CI", "1")
        .env("KILN_PASSWORD", PASSWORD)
        // The provenance's builder is `local`, whatever CI runs the tests.
        .env_remove("GITHUB_ACTIONS")
        .env_remove("GITLAB_CI")
        // No repository above the run's directory: its commit would be
        // embedded as the component's revision.
        .env("GIT_CEILING_DIRECTORIES", dir);
    c
}

/// Publishes a fresh copy of `name` with a new key, with `--json` or not.
fn publish(name: &str, destination: Destination, json: bool) -> Recording {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    copy_dir(&fixture(name), &dir.join(name));
    if name.starts_with("c-") {
        // The C recordings sign in the legacy format, chosen in kiln.toml;
        // the others in the default, Sigstore bundles.
        let manifest = dir.join(name).join("kiln.toml");
        let mut text = std::fs::read_to_string(&manifest).unwrap();
        text.push_str("\n[sign]\nformat = \"legacy\"\n");
        std::fs::write(&manifest, text).unwrap();
    }
    run_ok(k(dir).args(["keygen", "--output-prefix", "cosign"]));
    let registry = match destination {
        Destination::Layout => None,
        Destination::Registry => Some(Registry::start(Variant::Plain)),
    };
    let to = match &registry {
        None => "oci:layout:1".to_string(),
        Some(r) => format!("{}/golden/{name}:1", r.host),
    };
    let mut cmd = k(dir);
    cmd.args(["publish", name, "--to", &to, "--key", "cosign.key"])
        .args(["--target", "pulley64"]);
    if name.starts_with("rust") {
        cmd.arg("--release");
    }
    if json {
        cmd.arg("--json");
    }
    let out = run_ok(&mut cmd);
    let receipt = std::fs::read_to_string(dir.join(name).join("target/kiln/receipt.json")).unwrap();

    let mut filters = Filters::new().path(dir, "TMP");
    if let Some(r) = &registry {
        filters = filters.text(&r.host, "[REGISTRY]");
    }
    let parsed: serde_json::Value = serde_json::from_str(&receipt).unwrap();
    let mut bundle_bytes = 0;
    for signature in parsed["signatures"].as_array().unwrap() {
        let what = signature["what"].as_str().unwrap();
        let manifest = signature["signature_manifest"].as_str().unwrap();
        filters = digest_filter(filters, manifest, &format!("[signature of {what}]"));
        let manifest = stored_manifest(dir, registry.as_ref(), manifest);
        let layer = manifest["layers"][0]["digest"].as_str().unwrap();
        let config = manifest["config"]["digest"].as_str().unwrap();
        match signature["format"].as_str().unwrap() {
            // The bundle covers a random signature; its config is the
            // empty one, the same in every run.
            // Its size varies too (a DER signature is 70 to 72 bytes,
            // rarely fewer), and with it the bytes uploaded.
            "bundle" => {
                let size = manifest["layers"][0]["size"].as_u64().unwrap();
                bundle_bytes += size;
                filters = bundle_filter(filters, layer, size, &format!("[bundle of {what}]"));
            }
            // The payload names `HOST:PORT/REPO` on a registry, and the
            // config lists the payloads.
            _ if registry.is_some() => {
                filters = digest_filter(filters, layer, &format!("[signed payload of {what}]"));
                filters = digest_filter(filters, config, &format!("[signature config of {what}]"));
            }
            _ => {}
        }
    }
    // Attestations are bundles too: their referrers and bundles hold a
    // random signature.
    for attestation in parsed["attestations"].as_array().unwrap() {
        let what = attestation["what"].as_str().unwrap();
        let manifest = attestation["referrer_manifest"].as_str().unwrap();
        let name = format!(
            "[attestation {what} of {}]",
            &attestation["subject"].as_str().unwrap()[7..19]
        );
        filters = digest_filter(filters, manifest, &name);
        let manifest = stored_manifest(dir, registry.as_ref(), manifest);
        let layer = manifest["layers"][0]["digest"].as_str().unwrap();
        let size = manifest["layers"][0]["size"].as_u64().unwrap();
        bundle_bytes += size;
        let bundle = format!("[bundle of {}]", &name[1..name.len() - 1]);
        filters = bundle_filter(filters, layer, size, &bundle);
    }
    if bundle_bytes > 0 {
        let uploaded = parsed["run"]["uploaded_bytes"].as_u64().unwrap();
        // A string, so the receipt stays JSON (and its times filtered).
        let rest = format!("\"{} + [bundles]\"", uploaded - bundle_bytes);
        filters = filters
            .text(
                &format!("\"uploaded_bytes\": {uploaded}"),
                &format!("\"uploaded_bytes\": {rest}"),
            )
            .text(
                &format!("\"uploaded_bytes\":{uploaded}"),
                &format!("\"uploaded_bytes\":{rest}"),
            )
            .text(
                &format!("Uploaded {} of blobs", human_size(uploaded)),
                "Uploaded [size] of blobs",
            );
    }
    Recording {
        stdout: stdout(&out),
        stderr: stderr(&out),
        receipt,
        filters,
    }
}

/// A manifest the run stored, read from the layout's or the registry's
/// files.
fn stored_manifest(dir: &Path, registry: Option<&Registry>, digest: &str) -> serde_json::Value {
    let file = match registry {
        Some(r) => r.blob_file(digest),
        None => dir
            .join("layout/blobs/sha256")
            .join(digest.trim_start_matches("sha256:")),
    };
    serde_json::from_slice(&std::fs::read(file).unwrap()).unwrap()
}

/// Replaces a Sigstore bundle's digest (see [`digest_filter`]) and its
/// size, which varies with the random signature it holds, where progress
/// lines and events show them.
fn bundle_filter(filters: Filters, digest: &str, size: u64, name: &str) -> Filters {
    // Progress lines and events name a blob by its short digest; these go
    // before the digest's own filters (longer replacements first).
    let short = &digest[..digest.find(':').unwrap() + 13];
    digest_filter(filters, digest, name)
        .text(
            &format!("{short} ({})", human_size(size)),
            &format!("{name} ([size])"),
        )
        .text(
            &format!("{short}\",\"total\":{size},\"done\":0"),
            &format!("{name}\",\"total\":[size],\"done\":0"),
        )
        .text(
            &format!("{short}\",\"total\":{size},\"done\":{size}"),
            &format!("{name}\",\"total\":[size],\"done\":[size]"),
        )
}

/// A size as kiln's status lines show it (`output::human_size`).
fn human_size(bytes: u64) -> String {
    match bytes {
        0..1024 => format!("{bytes} B"),
        1024..1_048_576 => format!("{:.1} KiB", bytes as f64 / 1024.0),
        _ => format!("{:.1} MiB", bytes as f64 / 1_048_576.0),
    }
}

/// Replaces a digest, in full and as the 12 digits progress lines show.
fn digest_filter(filters: Filters, digest: &str, placeholder: &str) -> Filters {
    let short = &digest[..digest.find(':').unwrap() + 13];
    filters.text(digest, placeholder).text(short, placeholder)
}

/// `text` with the lines of the precompile (which runs beside the rest of
/// the pipeline) moved, in their order, after all the others.
fn compile_lane_last(text: &str, in_lane: impl Fn(&str) -> bool) -> String {
    let (lane, rest): (Vec<&str>, Vec<&str>) = text.lines().partition(|l| in_lane(l));
    let mut out = String::new();
    for line in rest.into_iter().chain(lane) {
        out.push_str(line);
        out.push('\n');
    }
    out
}

fn compile_event(line: &str) -> bool {
    let event: serde_json::Value =
        serde_json::from_str(line).unwrap_or_else(|e| panic!("not a JSON line ({e}): {line}"));
    event["stage"] == "compile" || (event["type"] == "status" && event["verb"] == "Compiled")
}

fn compile_status(line: &str) -> bool {
    line.trim_start().starts_with("Compiled ")
}

/// Publishes `name` to `destination` twice, with and without `--json`, and
/// compares everything both runs printed and wrote with the snapshots.
fn golden(name: &str, destination: Destination) {
    let toolchain: &[&str] = match name.split('-').next() {
        Some("c") => &["clang"],
        Some("go") => &["go"],
        _ => &[],
    };
    if !requires(toolchain) {
        return;
    }
    if matches!(destination, Destination::Registry) && !requires_registry(Variant::Plain) {
        return;
    }
    let json = publish(name, destination, true);
    let human = publish(name, destination, false);
    let base = format!("publish/{name}-{}", destination.name());
    let file = |suffix: &str| snapshot(&format!("{base}.{suffix}"));

    // The receipt printed last is the one written.
    let last = json.stdout.lines().last().unwrap();
    let event: serde_json::Value = serde_json::from_str(last).unwrap();
    assert_eq!(event["type"], "receipt");
    let written: serde_json::Value = serde_json::from_str(&json.receipt).unwrap();
    assert_eq!(event["receipt"], written);

    assert_snapshot(file("receipt.json"), &json.receipt, &json.filters);
    assert_snapshot(
        file("events.jsonl"),
        &compile_lane_last(&json.stdout, compile_event),
        &json.filters,
    );
    assert_snapshot(file("stdout"), &human.stdout, &human.filters);
    assert_snapshot(
        file("stderr"),
        &compile_lane_last(&human.stderr, compile_status),
        &human.filters,
    );
    // Both runs published the same thing.
    assert_snapshot(file("receipt.json"), &human.receipt, &human.filters);
}

#[test]
fn rust_command_to_a_layout() {
    golden("rust-command", Destination::Layout);
}

#[test]
fn rust_command_to_a_registry() {
    golden("rust-command", Destination::Registry);
}

#[test]
fn c_command_to_a_layout() {
    golden("c-command", Destination::Layout);
}

#[test]
fn c_command_to_a_registry() {
    golden("c-command", Destination::Registry);
}

#[test]
fn go_command_to_a_layout() {
    golden("go-command", Destination::Layout);
}

#[test]
fn go_command_to_a_registry() {
    golden("go-command", Destination::Registry);
}
