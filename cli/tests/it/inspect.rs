//! `kiln inspect` and `kiln validate` on hand-written .wat fixtures with expected outputs.
//!
//! `kiln inspect` and `kiln validate` on hand-written .wat fixtures, compared
//! with expected output kept beside them (`BLESS=1` rewrites it).

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
        let out = run(kiln().args(["validate", &name]).current_dir(dir.path()));
        assert_eq!(out.status.code() == Some(0), valid, "{stem}");
        assert_expected(&expected("validate.txt"), &transcript(&out));

        // Invalid bodies are a validation matter; inspect reads structure only.
        let out = run_ok(kiln().args(["inspect", &name]).current_dir(dir.path()));
        assert_expected(&expected("inspect.txt"), &stdout(&out));
        let out = run_ok(
            kiln()
                .args(["inspect", "--json", &name])
                .current_dir(dir.path()),
        );
        assert_expected(&expected("inspect.json"), &stdout(&out));
        for (flag, suffix) in [("--sections", "sections.txt"), ("--imports", "imports.txt")] {
            let out = run_ok(
                kiln()
                    .args(["inspect", flag, &name])
                    .current_dir(dir.path()),
            );
            assert_expected(&expected(suffix), &stdout(&out));
        }
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
    assert_snapshot(
        snapshot("inspect/validate-good-and-bad.txt"),
        &transcript(&out),
        &Filters::new().path(dir.path(), "TMP"),
    );
}

/// What the human output calls a section, as `--json` describes it.
fn section_label(section: &serde_json::Value) -> String {
    match section["name"].as_str() {
        Some(name) => format!("custom {name:?}"),
        None => section["kind"].as_str().unwrap().to_string(),
    }
}

/// The first line of `text` that `header` matches, and every line after it.
fn lines_after(text: &str, header: impl Fn(&str) -> bool) -> (&str, Vec<&str>) {
    let mut lines = text.lines().skip_while(|l| !header(l));
    let first = lines
        .next()
        .unwrap_or_else(|| panic!("no header in:\n{text}"));
    (first, lines.collect())
}

/// Checks `kiln inspect FILE` summarizes the sections `--json` lists (each
/// kind, custom sections by name, in the order each first appears, with
/// counts and bytes that add up), and that `--sections` lists every one
/// with its size and offset. Returns how many lines the summary took.
fn assert_sections_summarized(dir: &std::path::Path, name: &str) -> usize {
    let json = stdout(&run_ok(
        kiln().args(["inspect", "--json", name]).current_dir(dir),
    ));
    let report: serde_json::Value = serde_json::from_str(&json).unwrap();
    let sections = report["sections"].as_array().unwrap();

    let mut want: Vec<(String, usize, usize)> = Vec::new();
    for s in sections {
        let label = section_label(s);
        let size = s["size"].as_u64().unwrap() as usize;
        match want.iter_mut().find(|(l, ..)| *l == label) {
            Some(kind) => {
                kind.1 += 1;
                kind.2 += size;
            }
            None => want.push((label, 1, size)),
        }
    }
    let total: usize = sections
        .iter()
        .map(|s| s["size"].as_u64().unwrap() as usize)
        .sum();

    let human = stdout(&run_ok(kiln().args(["inspect", name]).current_dir(dir)));
    let (header, lines) = lines_after(&human, |l| l.starts_with("sections"));
    if sections.is_empty() {
        assert_eq!(header, "sections: none", "{name}:\n{human}");
        assert!(lines.is_empty(), "{name}:\n{human}");
    } else {
        assert_eq!(
            header,
            format!(
                "sections ({}, {total} bytes; --sections lists each):",
                sections.len()
            ),
            "{name}:\n{human}"
        );
    }
    let shown: Vec<(String, usize, usize)> = lines
        .iter()
        .map(|line| {
            let line = line.strip_prefix("  ").expect("an indented kind");
            let (rest, bytes) = line
                .strip_suffix(" bytes)")
                .and_then(|l| l.rsplit_once(" ("))
                .unwrap_or_else(|| panic!("{name}: not `KIND COUNT (N bytes)`: {line}"));
            let (label, count) = rest.trim_end().rsplit_once(' ').unwrap();
            (
                label.trim_end().to_string(),
                count.parse().unwrap(),
                bytes.parse().unwrap(),
            )
        })
        .collect();
    assert_eq!(shown, want, "{name}:\n{human}");
    assert_eq!(
        shown.iter().map(|k| k.1).sum::<usize>(),
        sections.len(),
        "{name}"
    );
    assert_eq!(shown.iter().map(|k| k.2).sum::<usize>(), total, "{name}");
    // Everything above the sections is as before.
    let full = stdout(&run_ok(
        kiln()
            .args(["inspect", "--sections", name])
            .current_dir(dir),
    ));
    assert_eq!(
        full.split("sections").next(),
        human.split("sections").next(),
        "{name}"
    );
    let (header, lines) = lines_after(&full, |l| l.starts_with("sections"));
    assert_eq!(header, "sections:", "{name}:\n{full}");
    let listed: Vec<(String, u64, String)> = lines
        .iter()
        .map(|line| {
            let (rest, offset) = line.rsplit_once("  @ ").unwrap();
            let rest = rest.strip_suffix(" bytes").unwrap();
            let (label, size) = rest.trim_end().rsplit_once(' ').unwrap();
            (
                label.trim().to_string(),
                size.parse().unwrap(),
                offset.to_string(),
            )
        })
        .collect();
    let want: Vec<(String, u64, String)> = sections
        .iter()
        .map(|s| {
            (
                section_label(s),
                s["size"].as_u64().unwrap(),
                format!("{:#x}", s["offset"].as_u64().unwrap()),
            )
        })
        .collect();
    assert_eq!(listed, want, "{name}:\n{full}");
    shown.len()
}

/// A custom section, appended as bytes: the wat text format has no way to
/// put one in a component.
fn custom_section(name: &str, data: &[u8]) -> Vec<u8> {
    let mut body = Vec::new();
    leb128(&mut body, name.len());
    body.extend_from_slice(name.as_bytes());
    body.extend_from_slice(data);
    let mut section = vec![0];
    leb128(&mut section, body.len());
    section.extend(body);
    section
}

fn leb128(out: &mut Vec<u8>, mut n: usize) {
    loop {
        let byte = (n & 0x7f) as u8;
        n >>= 7;
        if n == 0 {
            out.push(byte);
            return;
        }
        out.push(byte | 0x80);
    }
}

#[test]
fn sections_are_summarized_by_kind_and_listed_with_sections() {
    let dir = tempfile::tempdir().unwrap();
    for wat in wat_fixtures() {
        let name = format!("{}.wasm", wat.file_stem().unwrap().to_str().unwrap());
        std::fs::write(dir.path().join(&name), wat::parse_file(&wat).unwrap()).unwrap();
        assert_sections_summarized(dir.path(), &name);
    }

    // A component shaped like a componentized C program: alias and
    // canonical sections taking turns, one pair per function, so listing
    // each section would run to hundreds of lines.
    const FUNCS: usize = 80;
    let mut wat = String::from("(component\n  (core module $m\n");
    for i in 0..FUNCS {
        wat.push_str(&format!("    (func (export \"f{i}\"))\n"));
    }
    wat.push_str("  )\n  (core instance $i (instantiate $m))\n  (type $t (func))\n");
    for i in 0..FUNCS {
        wat.push_str(&format!(
            "  (alias core export $i \"f{i}\" (core func $c{i}))\n  (func $g{i} (type $t) (canon lift (core func $c{i})))\n"
        ));
    }
    wat.push(')');
    let mut bytes = wat::parse_str(&wat).unwrap();
    bytes.extend(custom_section("kiln-note", b"one"));
    bytes.extend(custom_section("producers", b"\0"));
    bytes.extend(custom_section("kiln-note", b"three"));
    std::fs::write(dir.path().join("many.wasm"), &bytes).unwrap();
    let kinds = assert_sections_summarized(dir.path(), "many.wasm");
    let out = run_ok(
        kiln()
            .args(["inspect", "many.wasm"])
            .current_dir(dir.path()),
    );
    assert_snapshot(
        snapshot("inspect/many.inspect.txt"),
        &stdout(&out),
        &Filters::new(),
    );
    // core-module, core-instance, component-type, alias, canonical, and
    // three custom names: wat's `component-name`, `kiln-note` (twice) and
    // `producers`.
    assert_eq!(kinds, 8);

    // `--sections` is for the human output; `--json` has every section.
    let out = run(kiln()
        .args(["inspect", "--sections", "--json", "many.wasm"])
        .current_dir(dir.path()));
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
}
