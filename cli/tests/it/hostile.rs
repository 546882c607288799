//! Hostile binaries are refused by inspect, audit and validate at once, in little memory.
//!
//! Hostile binaries — small files that describe far more than they hold — are
//! refused by inspect, audit and validate at once, in little memory, naming the
//! offset and the reason.

use crate::common::*;
use std::path::Path;
use std::process::Command;
use std::time::Duration;
use wasm_encoder::{
    Component, EntityType, ImportSection, Module, ModuleSection, TypeSection, ValType,
};

/// The limits every run must stay within: the defect took 2-5 s and 3 GB.
const MAX_TIME: Duration = Duration::from_secs(2);
const MAX_RSS_KIB: u64 = 256 * 1024;

/// One function type with `params` `i32` parameters, imported `imports`
/// times. With 1,000 and 300,000 it is about 1.2 MB that describes 300
/// million parameters; wasmparser's validator rejects it ("effective type
/// size exceeds the limit").
fn wide_imports(params: usize, imports: u32) -> Module {
    let mut types = TypeSection::new();
    types.ty().function(vec![ValType::I32; params], []);
    let mut section = ImportSection::new();
    for i in 0..imports {
        section.import("env", &format!("f{i}"), EntityType::Function(0));
    }
    let mut module = Module::new();
    module.section(&types).section(&section);
    module
}

/// Runs kiln and measures its wall time and its own peak memory, in a
/// small process of its own (see [`crate::hostile_registry::measure`]: a
/// child spawned from this test process would carry this process's peak).
fn measure(cmd: &Command) -> crate::hostile_registry::Measured {
    crate::hostile_registry::measure(cmd, MAX_TIME * 5)
}

/// Asserts that every command refuses `file` with exit 1, naming `offset`
/// and `reason` on stderr, within the time and memory limits.
fn assert_refused(file: &Path, offset: usize, reason: &str) {
    let at = format!("at offset {offset:#x}");
    for args in [
        &["inspect"][..],
        &["inspect", "--json"],
        &["inspect", "--imports"],
        &["inspect", "--wit"],
        &["audit", "--policy", "builtin:wasi-cli-pure"],
        &["audit", "--json", "--policy", "builtin:wasi-cli-pure"],
        &["validate"],
    ] {
        let run = measure(kiln().args(args).arg(file));
        let what = format!("kiln {}: {}", args.join(" "), run.stderr);
        // An audit never passes what it could not check: exit 2, where
        // inspect and validate report the finding (exit 1).
        let expected = if args[0] == "audit" { 2 } else { 1 };
        assert_eq!(run.status.code(), Some(expected), "{what}");
        assert!(
            run.stderr.contains(&at) && run.stderr.contains(reason),
            "{what}"
        );
        assert!(!run.stderr.contains("panicked"), "{what}");
        assert!(run.elapsed < MAX_TIME, "{what}took {:?}", run.elapsed);
        assert!(
            run.max_rss_kib < MAX_RSS_KIB,
            "{what}used {} KiB",
            run.max_rss_kib
        );
        if args == ["audit", "--json", "--policy", "builtin:wasi-cli-pure"] {
            let results: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
            assert_eq!(results["passed"], false, "{what}");
            assert_eq!(results["reports"], serde_json::json!([]), "{what}");
            assert_eq!(results["invalid"][0]["offset"], offset, "{what}");
        } else if args[0] == "inspect" {
            // No partial report.
            assert!(run.stdout.is_empty(), "{what}");
        }
    }
}

/// The offset and message wasmparser's own validator gives, which kiln must
/// repeat.
fn validator_error(bytes: &[u8]) -> (usize, String) {
    let err = wasmparser::Validator::new()
        .validate_all(bytes)
        .err()
        .expect("the validator rejects it");
    (err.offset(), err.message().to_string())
}

#[test]
fn a_wide_type_imported_300000_times_is_refused_quickly() {
    let dir = tempfile::tempdir().unwrap();
    let bytes = wide_imports(1000, 300_000).finish();
    assert!(bytes.len() > 1_000_000, "{} bytes", bytes.len());
    let (offset, message) = validator_error(&bytes);
    assert!(message.contains("effective type size"), "{message}");
    let file = dir.path().join("hostile.wasm");
    std::fs::write(&file, &bytes).unwrap();
    assert_refused(&file, offset, "effective type size exceeds the limit");
}

#[test]
fn a_hostile_module_nested_in_a_component_is_refused_too() {
    let dir = tempfile::tempdir().unwrap();
    let module = wide_imports(1000, 300_000);
    let mut component = Component::new();
    component.section(&ModuleSection(&module));
    let bytes = component.finish();
    let (offset, message) = validator_error(&bytes);
    assert!(message.contains("effective type size"), "{message}");
    let file = dir.path().join("nested.wasm");
    std::fs::write(&file, &bytes).unwrap();
    assert_refused(&file, offset, "effective type size exceeds the limit");
}

#[test]
fn a_wide_type_imported_just_under_the_limit_is_reported_in_little_memory() {
    // 900 imports of 1,001 units each stay under the validator's 1,000,000.
    let dir = tempfile::tempdir().unwrap();
    let bytes = wide_imports(1000, 900).finish();
    wasmparser::Validator::new().validate_all(&bytes).unwrap();
    let file = dir.path().join("wide.wasm");
    std::fs::write(&file, &bytes).unwrap();
    let run = measure(kiln().args(["inspect", "--json"]).arg(&file));
    assert!(run.status.success(), "{}", run.stderr);
    assert!(run.elapsed < MAX_TIME, "took {:?}", run.elapsed);
    assert!(
        run.max_rss_kib < MAX_RSS_KIB,
        "used {} KiB",
        run.max_rss_kib
    );
    let report: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    let imports = report["module"]["imports"].as_array().unwrap();
    assert_eq!(imports.len(), 900);
    let signature = imports[899]["signature"].as_str().unwrap();
    assert!(
        signature.starts_with("(i32, i32") && signature.ends_with("i32) -> ()"),
        "{signature}"
    );
    assert_eq!(signature.matches("i32").count(), 1000);
}
