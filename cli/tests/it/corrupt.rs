//! Truncated, bit-flipped and empty inputs: inspect and validate give errors, never panics.

use crate::common::*;
use wasmparser::{Parser, Payload};

/// Offsets where each top-level section starts and ends.
fn section_boundaries(bytes: &[u8]) -> Vec<usize> {
    let mut cuts = vec![0, 4, 8];
    for payload in Parser::new(0).parse_all(bytes) {
        let Ok(payload) = payload else { break };
        match &payload {
            Payload::ModuleSection {
                unchecked_range, ..
            }
            | Payload::ComponentSection {
                unchecked_range, ..
            } => {
                cuts.push(unchecked_range.start);
                cuts.push(unchecked_range.end);
            }
            other => {
                if let Some((_, range)) = other.as_section() {
                    cuts.push(range.start);
                    cuts.push(range.end);
                }
            }
        }
    }
    cuts.retain(|&c| c <= bytes.len());
    cuts.sort_unstable();
    cuts.dedup();
    cuts
}

fn samples() -> Vec<(String, Vec<u8>)> {
    [
        "wat/core-module",
        "wat/component",
        "audit/net-tool",
        "audit/core-threads",
    ]
    .iter()
    .map(|n| {
        (
            n.to_string(),
            wat::parse_file(fixture(&format!("{n}.wat"))).unwrap(),
        )
    })
    .collect()
}

fn exercise(bytes: &[u8]) -> (bool, bool) {
    let valid = kiln_component::validate(bytes).is_ok();
    let inspected = kiln_inspect::inspect(bytes).is_ok();
    let _ = kiln_inspect::wit_text(bytes);
    let _ = kiln_inspect::audit::read_facts("corrupt", bytes);
    (valid, inspected)
}

#[test]
fn truncation_at_every_section_boundary_and_inside_is_handled() {
    for (name, bytes) in samples() {
        for cut in section_boundaries(&bytes) {
            for at in [cut, cut.saturating_sub(1), cut + 1] {
                if at >= bytes.len() {
                    continue;
                }
                let (valid, _) = exercise(&bytes[..at]);
                // A cut inside a section can never be valid wasm.
                if !section_boundaries(&bytes).contains(&at) {
                    assert!(!valid, "{name} truncated at {at} validated");
                }
            }
        }
        // Every single length, for small inputs.
        for at in 0..bytes.len() {
            exercise(&bytes[..at]);
        }
    }
}

#[test]
fn flipped_bytes_never_panic() {
    for (_, bytes) in samples() {
        for i in 0..bytes.len() {
            for mask in [0x01u8, 0x80, 0xff] {
                let mut copy = bytes.clone();
                copy[i] ^= mask;
                exercise(&copy);
            }
        }
    }
}

#[test]
fn empty_input_is_an_error_not_a_panic() {
    assert!(kiln_component::validate(b"").is_err());
    let err = kiln_inspect::inspect(b"").unwrap_err().to_string();
    assert!(err.contains("not a wasm binary"), "{err}");
    let dir = tempfile::tempdir().unwrap();
    let empty = dir.path().join("empty.wasm");
    std::fs::write(&empty, b"").unwrap();
    let out = run(kiln().arg("inspect").arg(&empty));
    assert_eq!(out.status.code(), Some(2));
    let out = run(kiln().arg("validate").arg(&empty));
    assert_eq!(out.status.code(), Some(1));
}

#[test]
fn truncated_real_component_fails_cleanly_through_the_binary() {
    let dir = tempfile::tempdir().unwrap();
    let built = hello(dir.path());
    let bytes = std::fs::read(&built).unwrap();
    let cuts = section_boundaries(&bytes);
    // Every top-level boundary in-process, a sample of them through the binary.
    for (i, cut) in cuts.iter().enumerate() {
        let at = (*cut + 3).min(bytes.len() - 1);
        if cuts.contains(&at) {
            continue;
        }
        let (valid, _) = exercise(&bytes[..at]);
        assert!(!valid, "truncated at {at} validated");
        if i % 3 == 0 {
            let file = dir.path().join("cut.wasm");
            std::fs::write(&file, &bytes[..at]).unwrap();
            let out = run(kiln().arg("validate").arg(&file));
            assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
            let out = run(kiln().arg("inspect").arg(&file));
            assert!(matches!(out.status.code(), Some(0 | 2)), "{}", stderr(&out));
            assert!(!stderr(&out).contains("panicked"), "{}", stderr(&out));
        }
    }
    // Flipped bytes spread over the whole component.
    let step = (bytes.len() / 500).max(1);
    for i in (0..bytes.len()).step_by(step) {
        let mut copy = bytes.clone();
        copy[i] ^= 0x5a;
        exercise(&copy);
    }
}
