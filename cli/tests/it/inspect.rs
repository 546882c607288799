//! `kiln inspect` and `kiln validate` on hand-written .wat fixtures, compared with expected output kept beside them (`BLESS=1` rewrites it).

use crate::common::*;
use std::io::Write;
use std::path::PathBuf;
use std::process::Stdio;

fn wat_fixtures() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(fixture("wat"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "wat"))
        .collect();
    files.sort();
    assert!(!files.is_empty());
    files
}

#[test]
fn wat_fixtures_match_expected_output() {
    let dir = tempfile::tempdir().unwrap();
    for wat in wat_fixtures() {
        let stem = wat.file_stem().unwrap().to_str().unwrap().to_string();
        let bytes = wat::parse_file(&wat).unwrap();
        let name = format!("{stem}.wasm");
        std::fs::write(dir.path().join(&name), &bytes).unwrap();
        let expected = |suffix: &str| fixture("wat").join(format!("{stem}.{suffix}"));

        let out = run(kiln()
            .args(["validate", "--json", &name])
            .current_dir(dir.path()));
        let valid = out.status.code() == Some(0);
        assert!(
            matches!(out.status.code(), Some(0 | 1)),
            "{stem}: {}",
            stderr(&out)
        );
        assert_expected(&expected("validate.json"), &stdout(&out));
        let parsed: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(parsed["valid"], valid);

        // Invalid bodies are a validation matter; inspect reads structure only.
        let out = run_ok(kiln().args(["inspect", &name]).current_dir(dir.path()));
        assert_expected(&expected("inspect.txt"), &stdout(&out));
        let out = run_ok(
            kiln()
                .args(["inspect", "--json", &name])
                .current_dir(dir.path()),
        );
        assert_expected(&expected("inspect.json"), &stdout(&out));
        let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(report["size"], bytes.len());
        assert_eq!(report["digest"], kiln_core::Digest::of(&bytes).to_string());

        if stem.starts_with("component") {
            let out = run_ok(
                kiln()
                    .args(["inspect", "--wit", &name])
                    .current_dir(dir.path()),
            );
            assert_expected(&expected("wit"), &stdout(&out));
        }
    }
}

#[test]
fn component_world_lists_interfaces_with_versions() {
    let bytes = wat::parse_file(fixture("wat/component.wat")).unwrap();
    let report = kiln_inspect::inspect(&bytes).unwrap();
    let world = report.world.expect("a component has a world");
    let imports: Vec<_> = world.imports.iter().map(|i| i.name.as_str()).collect();
    assert_eq!(imports, ["wasi:cli/environment@0.2.0"]);
    assert_eq!(world.imports[0].version.as_deref(), Some("0.2.0"));
    assert_eq!(world.imports[0].package.as_deref(), Some("wasi:cli"));
    assert_eq!(
        world.imports[0].functions[0].signature,
        "func() -> list<string>"
    );
    let exports: Vec<_> = world.exports.iter().map(|i| i.name.as_str()).collect();
    assert_eq!(exports, ["kiln:calc/math@1.2.0", "add"]);
    assert_eq!(
        world.exports[1].functions[0].signature,
        "func(a: u32, b: u32) -> u32"
    );
}

#[test]
fn core_module_report_lists_imports_memories_and_sections() {
    let bytes = wat::parse_file(fixture("wat/core-module.wat")).unwrap();
    let report = kiln_inspect::inspect(&bytes).unwrap();
    let module = report.module.expect("a core module report");
    let imports: Vec<String> = module
        .imports
        .iter()
        .map(|i| format!("{}::{}", i.module, i.name))
        .collect();
    assert_eq!(
        imports,
        [
            "wasi_snapshot_preview1::fd_write",
            "wasi_snapshot_preview1::proc_exit",
            "env::counter"
        ]
    );
    assert_eq!(
        module.imports[0].signature.as_deref(),
        Some("(i32, i32, i32, i32) -> (i32)")
    );
    assert_eq!(module.memories[0].initial_pages, 2);
    assert_eq!(module.memories[0].maximum_pages, Some(16));
    assert_eq!(module.tables[0].initial, 4);
    assert_eq!(module.defined_functions, 2);
    assert!(report.custom_sections.iter().any(|c| c.name == "kiln-note"));
    let kinds: Vec<_> = report.sections.iter().map(|s| s.kind.as_str()).collect();
    assert!(
        kinds.contains(&"code") && kinds.contains(&"data"),
        "{kinds:?}"
    );
    assert_eq!(report.producers[0].field, "language");
}

#[test]
fn inspect_reads_stdin() {
    let bytes = wat::parse_file(fixture("wat/component.wat")).unwrap();
    let mut child = kiln()
        .args(["inspect", "--json", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(&bytes).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["kind"], "component");
}

#[test]
fn validate_checks_several_files_and_fails_on_any_invalid() {
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("good.wasm");
    let bad = dir.path().join("bad.wasm");
    std::fs::write(
        &good,
        wat::parse_file(fixture("wat/component.wat")).unwrap(),
    )
    .unwrap();
    std::fs::write(
        &bad,
        wat::parse_file(fixture("wat/invalid-body.wat")).unwrap(),
    )
    .unwrap();
    run_ok(kiln().arg("validate").arg(&good));
    let out = run(kiln().arg("validate").arg(&good).arg(&bad));
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(err.contains("bad.wasm` is invalid at offset"), "{err}");
}
