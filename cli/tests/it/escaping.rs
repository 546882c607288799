//! Strings from a registry or layout reach the terminal with their control characters escaped.
//!
//! Strings from a registry or layout (media types, tags, error text) reach the
//! terminal with their control characters escaped, so a crafted one cannot
//! print a fake `Verified` line.

use crate::common::*;
use std::path::Path;

/// What an attacker would put in a media type or tag: return to the start
/// of the line, erase it, and print a status line kiln never wrote.
const EVIL: &str = "x\r\x1b[2K    Verified fake\u{9b}2K";

/// A hand-made OCI layout whose manifest, tagged `1`, has a config with
/// the crafted media type, and which has a crafted tag too.
fn crafted_layout(dir: &Path) {
    let blobs = dir.join("blobs/sha256");
    std::fs::create_dir_all(&blobs).unwrap();
    std::fs::write(dir.join("oci-layout"), r#"{"imageLayoutVersion":"1.0.0"}"#).unwrap();
    let manifest = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {
            "mediaType": format!("application/vnd.evil{EVIL}"),
            "digest": format!("sha256:{}", "0".repeat(64)),
            "size": 2,
        },
        "layers": [],
    }))
    .unwrap();
    let digest = kiln_core::Digest::of(&manifest);
    std::fs::write(blobs.join(digest.hex()), &manifest).unwrap();
    let entry = |tag: &str| {
        serde_json::json!({
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "digest": digest.to_string(),
            "size": manifest.len(),
            "annotations": {"org.opencontainers.image.ref.name": tag},
        })
    };
    let index = serde_json::json!({
        "schemaVersion": 2,
        "manifests": [entry("1"), entry(&format!("evil{EVIL}"))],
    });
    std::fs::write(dir.join("index.json"), index.to_string()).unwrap();
}

fn assert_no_raw_controls(stream: &str, text: &str) {
    for c in text.chars() {
        assert!(
            !c.is_control() || c == '\n' || c == '\t',
            "raw {c:?} on {stream}:\n{text:?}"
        );
    }
}

#[test]
fn registry_strings_are_escaped_on_stderr_and_stdout() {
    let dir = tempfile::tempdir().unwrap();
    let layout = dir.path().join("layout");
    crafted_layout(&layout);

    // The crafted media type is quoted in the error.
    let out = run(kiln()
        .current_dir(dir.path())
        .arg("pull")
        .arg(format!("oci:{}:1", layout.display())));
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("is not a Wasm artifact"), "{err}");
    assert_no_raw_controls("stderr", &err);
    assert!(
        err.contains(r"application/vnd.evilx\r\u{1b}[2K    Verified fake\u{9b}2K"),
        "the media type is shown, escaped:\n{err}"
    );
    // Only the error line: nothing that looks like a status line of its own.
    assert_eq!(err.lines().count(), 1, "{err}");

    // The crafted tag is data on stdout.
    let out = run_ok(kiln().arg("tags").arg(format!("oci:{}", layout.display())));
    let tags = stdout(&out);
    assert_no_raw_controls("stdout", &tags);
    assert_eq!(tags.lines().count(), 2, "{tags}");
    // Data may be JSON, so its escapes are JSON's.
    assert!(
        tags.contains(r"evilx\u000d\u001b[2K    Verified fake\u009b2K"),
        "{tags}"
    );
    // JSON is escaped by its own rules and still says exactly what is there.
    let out = run_ok(
        kiln()
            .args(["tags", "--json"])
            .arg(format!("oci:{}", layout.display())),
    );
    let tags: Vec<String> = serde_json::from_slice(&out.stdout).unwrap();
    assert!(tags.contains(&format!("evil{EVIL}")), "{tags:?}");
}
