//! Audits of core modules at the level of WIT interfaces: WASI preview1 imports judged as the WASI 0.2 interfaces the adapter imports for them (the table checked against the real adapter), host-specific imports from real Go `GOOS=js` and C wasip1 builds and from emscripten- and wasm-bindgen-shaped modules, imports no rule examined, and binaries an audit cannot check (invalid, or in encodings kiln cannot read) exiting 2.

use crate::common::*;
use kiln_inspect::audit::preview1;
use serde_json::Value;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Runs `kiln audit --json` and returns the exit code and the first report.
fn audit(file: &Path, policy: &str) -> (Option<i32>, Value) {
    let out = run(kiln()
        .arg("audit")
        .arg(file)
        .args(["--policy", policy, "--json"]));
    let results: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}\n{}", stdout(&out), stderr(&out)));
    (out.status.code(), results["reports"][0].clone())
}

/// The `(rule, item)` pairs of a report's findings.
fn findings(report: &Value) -> Vec<(String, String)> {
    report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["rule"].as_str().unwrap().to_string(),
                f["item"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect()
}

/// The items of a report's note with `rule`, if it has one.
fn note(report: &Value, rule: &str) -> Option<Vec<String>> {
    report["notes"].as_array()?.iter().find_map(|n| {
        (n["rule"] == rule).then(|| {
            n["items"]
                .as_array()
                .unwrap()
                .iter()
                .map(|i| i.as_str().unwrap().to_string())
                .collect()
        })
    })
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .map(|a| a.iter().map(|s| s.as_str().unwrap().to_string()).collect())
        .unwrap_or_default()
}

fn write_wat(dir: &Path, name: &str, wat: &str) -> PathBuf {
    let path = dir.join(format!("{name}.wasm"));
    std::fs::write(&path, wat::parse_str(wat).unwrap()).unwrap();
    path
}

fn versioned(interface: &str) -> String {
    format!("{interface}@{}", preview1::ADAPTER_WASI_VERSION)
}

/// A policy file in `dir`.
fn policy(dir: &Path, name: &str, text: &str) -> String {
    let path = dir.join(format!("{name}.toml"));
    std::fs::write(&path, text).unwrap();
    path.display().to_string()
}

#[test]
fn preview1_imports_are_judged_as_the_interfaces_the_adapter_imports() {
    let dir = tempfile::tempdir().unwrap();
    let file = write_wat(
        dir.path(),
        "net",
        r#"(module
            (import "wasi_snapshot_preview1" "fd_write" (func (param i32 i32 i32 i32) (result i32)))
            (import "wasi_snapshot_preview1" "random_get" (func (param i32 i32) (result i32)))
            (import "wasi_snapshot_preview1" "sock_accept" (func (param i32 i32 i32) (result i32)))
            (import "wasi_snapshot_preview1" "sched_yield" (func (result i32)))
            (memory (export "memory") 1))"#,
    );
    let (code, report) = audit(&file, "builtin:wasi-cli-pure");
    assert_eq!(code, Some(1), "{report:#}");
    // The socket is denied, and the message names the preview1 function it
    // came from; stdout, files and randomness are allowed.
    let denied: Vec<_> = findings(&report)
        .into_iter()
        .filter(|(rule, _)| rule == "imports.denied")
        .collect();
    assert_eq!(
        denied,
        [("imports.denied".to_string(), versioned("wasi:sockets/tcp"))],
        "{report:#}"
    );
    assert!(
        report["findings"][0]["message"]
            .as_str()
            .unwrap()
            .contains("wasi_snapshot_preview1::sock_accept"),
        "{report:#}"
    );
    let imports = strings(&report["facts"]["imports"]);
    for interface in ["wasi:random/random", "wasi:cli/stdout", "wasi:sockets/tcp"] {
        assert!(imports.contains(&versioned(interface)), "{imports:?}");
    }
    assert_eq!(
        strings(&report["facts"]["derived_from"][versioned("wasi:random/random")]),
        ["wasi_snapshot_preview1::random_get"]
    );
    // Without the socket the same module passes, with nothing unexamined.
    let file = write_wat(
        dir.path(),
        "cli",
        r#"(module
            (import "wasi_unstable" "fd_write" (func (param i32 i32 i32 i32) (result i32)))
            (import "wasi_snapshot_preview1" "clock_time_get" (func (param i32 i64 i32) (result i32)))
            (memory (export "memory") 1))"#,
    );
    let (code, report) = audit(&file, "builtin:wasi-cli-pure");
    assert_eq!(code, Some(0), "{report:#}");
    assert_eq!(report["notes"], Value::Null, "{report:#}");
    assert!(
        strings(&report["facts"]["imports"]).contains(&versioned("wasi:cli/stdout")),
        "wasi_unstable maps as preview1 does: {report:#}"
    );
}

#[test]
fn host_specific_imports_fail_a_default_deny_and_are_reported_under_allow() {
    let dir = tempfile::tempdir().unwrap();
    // The shapes of emscripten (`env`, minified `a::b`) and wasm-bindgen
    // (`__wbindgen_placeholder__`) modules.
    let file = write_wat(
        dir.path(),
        "web",
        r#"(module
            (import "env" "emscripten_memcpy_js" (func (param i32 i32 i32)))
            (import "a" "b" (func (param i32) (result i32)))
            (import "__wbindgen_placeholder__" "__wbindgen_describe" (func (param i32)))
            (import "wasi_snapshot_preview1" "not_a_wasi_function" (func))
            (memory (export "memory") 1))"#,
    );
    let (code, report) = audit(&file, "builtin:wasi-cli-pure");
    assert_eq!(code, Some(1), "{report:#}");
    let host = [
        "env::emscripten_memcpy_js",
        "a::b",
        "__wbindgen_placeholder__::__wbindgen_describe",
        "wasi_snapshot_preview1::not_a_wasi_function",
    ];
    assert_eq!(
        findings(&report),
        host.iter()
            .map(|h| ("imports.host-specific".to_string(), h.to_string()))
            .collect::<Vec<_>>(),
        "{report:#}"
    );
    assert_eq!(strings(&report["facts"]["host_specific"]), host);

    // Under `default = "allow"` they pass, and the report says so.
    let allow = policy(dir.path(), "allow", "[imports]\ndefault = \"allow\"\n");
    let (code, report) = audit(&file, &allow);
    assert_eq!(code, Some(0), "{report:#}");
    assert_eq!(note(&report, "imports.host-specific").unwrap(), host);
    let out = run_ok(kiln().arg("audit").arg(&file).args(["--policy", &allow]));
    assert!(
        stdout(&out).contains("note: 4 host-specific imports passed only because unlisted imports are allowed; the module needs a host that provides `env`, `a`, `__wbindgen_placeholder__`, `wasi_snapshot_preview1`"),
        "{}",
        stdout(&out)
    );

    // A deny pattern in `[imports]` denies (deny wins); `[core]` rules
    // decide about the others they look at.
    let named = policy(
        dir.path(),
        "named",
        "[imports]\ndefault = \"allow\"\ndeny = [\"env::*\"]\n[core]\ndefault = \"allow\"\ndeny = [\"a::*\"]\nallow = [\"__wbindgen_placeholder__::*\"]\n",
    );
    let (code, report) = audit(&file, &named);
    assert_eq!(code, Some(1), "{report:#}");
    assert_eq!(
        findings(&report),
        [
            ("core.denied".to_string(), "a::b".to_string()),
            (
                "imports.denied".to_string(),
                "env::emscripten_memcpy_js".to_string()
            ),
        ],
        "{report:#}"
    );

    // A policy without `[imports]` keeps passing, and lists what no rule
    // looked at.
    let limits = policy(dir.path(), "limits", "[limits]\nmax-size = \"1 MiB\"\n");
    let (code, report) = audit(&file, &limits);
    assert_eq!(code, Some(0), "{report:#}");
    assert_eq!(note(&report, "imports.unexamined").unwrap(), host);

    // A target world provides WIT interfaces, never host-specific imports.
    std::fs::create_dir(dir.path().join("wit")).unwrap();
    std::fs::write(
        dir.path().join("wit/world.wit"),
        "package acme:host;\ninterface log {\n  log: func(msg: string);\n}\nworld host {\n  import log;\n}\n",
    )
    .unwrap();
    let world = policy(dir.path(), "world", "[world]\nwit = \"wit\"\n");
    let (code, report) = audit(&file, &world);
    assert_eq!(code, Some(1), "{report:#}");
    assert_eq!(
        findings(&report),
        host.iter()
            .map(|h| ("world.import-outside".to_string(), h.to_string()))
            .collect::<Vec<_>>(),
        "{report:#}"
    );
}

#[test]
fn a_component_under_a_policy_without_import_rules_lists_its_imports_as_unexamined() {
    let dir = tempfile::tempdir().unwrap();
    let wasm = dir.path().join("hello.wasm");
    build(&fixture("rust-command"), &wasm, &[]);
    let limits = policy(dir.path(), "limits", "[limits]\nmax-size = \"100 MiB\"\n");
    let (code, report) = audit(&wasm, &limits);
    assert_eq!(code, Some(0), "{report:#}");
    let unexamined = note(&report, "imports.unexamined").expect("a note");
    assert_eq!(unexamined, strings(&report["facts"]["imports"]));
    assert!(!unexamined.is_empty());
    let out = run_ok(kiln().arg("audit").arg(&wasm).args(["--policy", &limits]));
    assert!(
        stdout(&out).contains("note: no rule of the policy examined"),
        "{}",
        stdout(&out)
    );
    // SARIF carries notes at level `note`.
    let out = run_ok(
        kiln()
            .arg("audit")
            .arg(&wasm)
            .args(["--policy", &limits, "--sarif"]),
    );
    let sarif: Value = serde_json::from_slice(&out.stdout).unwrap();
    let results = sarif["runs"][0]["results"].as_array().unwrap();
    assert_eq!(results.len(), 1, "{sarif:#}");
    assert_eq!(results[0]["level"], "note");
    assert_eq!(results[0]["ruleId"], "imports.unexamined");
}

/// The preview1 table, checked against the adapter kiln componentizes with:
/// for each function the adapter exports, a module importing just that
/// function becomes a component whose imports, beyond those of a module
/// importing no WASI at all, are the table's interfaces.
#[test]
fn the_preview1_table_is_what_the_adapter_imports() {
    use kiln_component::{Adapter, componentize};
    let adapter = Adapter::Reactor.bytes();
    let exports = adapter_functions(adapter);
    assert!(exports.len() >= 40, "{exports:?}");
    let imports_of = |module: &[u8]| -> BTreeSet<String> {
        let component = componentize(module, Adapter::Reactor).unwrap();
        kiln_inspect::audit::read_facts("c", &component)
            .unwrap()
            .imports
            .into_iter()
            .collect()
    };
    // A module whose only WASI function needs no interface: what the
    // adapter brings whatever the module calls.
    let baseline = imports_of(&importing(
        exports
            .iter()
            .find(|(n, _, _)| n == "sched_yield")
            .map(|(n, p, r)| (n, p, r)),
    ));
    let baseline: BTreeSet<String> = baseline
        .into_iter()
        .chain(preview1::ADAPTER_BASELINE.iter().map(|i| versioned(i)))
        .collect();
    let mut mismatches = Vec::new();
    for (name, params, results) in &exports {
        let Some(expected) = preview1::interfaces("wasi_snapshot_preview1", name) else {
            mismatches.push(format!("{name}: exported by the adapter, not in the table"));
            continue;
        };
        let got: BTreeSet<String> = imports_of(&importing(Some((name, params, results))))
            .difference(&baseline)
            .cloned()
            .collect();
        let want: BTreeSet<String> = expected
            .iter()
            .map(|i| versioned(i))
            .filter(|i| !baseline.contains(i))
            .collect();
        let missing: Vec<_> = got.difference(&want).collect();
        // Sockets are what a module asks for with `sock_*`, though this
        // adapter traps on them (docs/audit-policy.md).
        let extra: Vec<_> = want
            .difference(&got)
            .filter(|i| !(name.starts_with("sock_") && i.starts_with("wasi:sockets/")))
            .collect();
        if !missing.is_empty() || !extra.is_empty() {
            mismatches.push(format!(
                "{name}: the adapter imports {missing:?} the table omits; the table names {extra:?} the adapter does not import"
            ));
        }
    }
    for (name, _) in preview1::PREVIEW1 {
        if !exports.iter().any(|(n, _, _)| n == name) {
            mismatches.push(format!("{name}: in the table, not exported by the adapter"));
        }
    }
    assert!(mismatches.is_empty(), "{}", mismatches.join("\n"));
}

/// The functions the adapter exports, with their parameter and result types.
fn adapter_functions(
    adapter: &[u8],
) -> Vec<(String, Vec<wasmparser::ValType>, Vec<wasmparser::ValType>)> {
    use wasmparser::{ExternalKind, Parser, Payload, TypeRef};
    let mut types = Vec::new();
    let mut funcs = Vec::new();
    let mut out = Vec::new();
    for payload in Parser::new(0).parse_all(adapter) {
        match payload.unwrap() {
            Payload::TypeSection(r) => {
                for ty in r.into_iter_err_on_gc_types() {
                    types.push(ty.unwrap());
                }
            }
            Payload::ImportSection(r) => {
                for import in r.into_imports() {
                    if let TypeRef::Func(t) = import.unwrap().ty {
                        funcs.push(t);
                    }
                }
            }
            Payload::FunctionSection(r) => funcs.extend(r.into_iter().map(|f| f.unwrap())),
            Payload::ExportSection(r) => {
                for export in r {
                    let export = export.unwrap();
                    let ExternalKind::Func = export.kind else {
                        continue;
                    };
                    // The adapter's own entry points are not preview1.
                    if export.name.starts_with("cabi_")
                        || export.name.contains("adapter")
                        || export.name.contains(':')
                    {
                        continue;
                    }
                    let ty = &types[funcs[export.index as usize] as usize];
                    out.push((
                        export.name.to_string(),
                        ty.params().to_vec(),
                        ty.results().to_vec(),
                    ));
                }
            }
            _ => {}
        }
    }
    out
}

/// A module exporting its memory and importing one preview1 function (or
/// none).
fn importing(
    function: Option<(
        &String,
        &Vec<wasmparser::ValType>,
        &Vec<wasmparser::ValType>,
    )>,
) -> Vec<u8> {
    use wasm_encoder::{
        EntityType, ExportKind, ExportSection, ImportSection, MemorySection, MemoryType, Module,
        TypeSection, ValType,
    };
    let val = |t: &wasmparser::ValType| match t {
        wasmparser::ValType::I32 => ValType::I32,
        wasmparser::ValType::I64 => ValType::I64,
        wasmparser::ValType::F32 => ValType::F32,
        wasmparser::ValType::F64 => ValType::F64,
        other => panic!("the adapter exports a function with a {other:?} parameter"),
    };
    let mut module = Module::new();
    if let Some((name, params, results)) = function {
        let mut types = TypeSection::new();
        types
            .ty()
            .function(params.iter().map(val), results.iter().map(val));
        let mut imports = ImportSection::new();
        imports.import("wasi_snapshot_preview1", name, EntityType::Function(0));
        module.section(&types).section(&imports);
    }
    let mut memory = MemorySection::new();
    memory.memory(MemoryType {
        minimum: 1,
        maximum: None,
        memory64: false,
        shared: false,
        page_size_log2: None,
    });
    let mut exports = ExportSection::new();
    exports.export("memory", ExportKind::Memory, 0);
    module.section(&memory).section(&exports);
    module.finish()
}

/// A real Go `GOOS=js` module imports `gojs`; a real C wasip1 program
/// imports only WASI, which the CLI policy allows.
#[test]
fn real_go_js_and_c_wasip1_modules() {
    if !requires(&["go", "clang"]) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let go = kiln_build::toolchain::find_go().expect("go (cargo xtask setup installs it)");
    std::fs::write(
        dir.path().join("main.go"),
        "package main\n\nimport \"fmt\"\n\nfunc main() { fmt.Println(\"hello\") }\n",
    )
    .unwrap();
    std::fs::write(dir.path().join("go.mod"), "module hello\n\ngo 1.21\n").unwrap();
    let js = dir.path().join("js.wasm");
    let out = Command::new(&go.go)
        .args(["build", "-o"])
        .arg(&js)
        .arg(".")
        .current_dir(dir.path())
        .env("GOOS", "js")
        .env("GOARCH", "wasm")
        .env("GOCACHE", fixtures_target_dir().join("go-cache"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (code, report) = audit(&js, "builtin:wasi-cli-pure");
    assert_eq!(code, Some(1), "{report:#}");
    let found = findings(&report);
    assert!(!found.is_empty());
    for (rule, item) in &found {
        assert_eq!(rule, "imports.host-specific", "{report:#}");
        assert!(item.starts_with("gojs::"), "{report:#}");
    }

    let c = kiln_build::toolchain::find_c_toolchain(None)
        .expect("clang for WASI (cargo xtask setup installs it)");
    std::fs::write(
        dir.path().join("hello.c"),
        "#include <stdio.h>\n#include <time.h>\nint main(void) { printf(\"%ld\\n\", (long)time(0)); return 0; }\n",
    )
    .unwrap();
    let wasip1 = dir.path().join("hello.wasm");
    let out = Command::new(&c.cc)
        .arg(format!("--target={}", c.target))
        .arg(format!("--sysroot={}", c.sysroot.display()))
        .arg("-O2")
        .arg(dir.path().join("hello.c"))
        .arg("-o")
        .arg(&wasip1)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (code, report) = audit(&wasip1, "builtin:wasi-cli-pure");
    assert_eq!(code, Some(0), "{report:#}");
    let imports = strings(&report["facts"]["imports"]);
    assert!(
        imports.contains(&versioned("wasi:cli/stdout")),
        "{imports:?}"
    );
    assert!(
        imports.iter().any(|i| i.starts_with("wasi:clocks/")),
        "{imports:?}"
    );
}

/// A binary with a function body the validator rejects (`wat` does not
/// check types).
fn invalid_body() -> Vec<u8> {
    wat::parse_str(r#"(module (func (result i32) i64.const 1))"#).unwrap()
}

#[test]
fn an_audit_never_passes_what_it_could_not_check() {
    let dir = tempfile::tempdir().unwrap();
    let invalid = dir.path().join("invalid.wasm");
    std::fs::write(&invalid, invalid_body()).unwrap();
    let out = run(kiln()
        .arg("audit")
        .arg(&invalid)
        .args(["--policy", "builtin:wasi-cli-pure"]));
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stdout(&out).contains("ERROR"), "{}", stdout(&out));
    assert!(stderr(&out).contains("type mismatch"), "{}", stderr(&out));
    // --no-validate reads the facts only, as callers that validated do.
    let out = run(kiln().arg("audit").arg(&invalid).args([
        "--policy",
        "builtin:wasi-cli-pure",
        "--no-validate",
    ]));
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));

    // Encodings kiln's parser does not know: a newer component layer, an
    // unknown section, an unknown type constructor.
    let header = b"\0asm\x0d\x00\x01\x00";
    for (name, bytes) in [
        ("layer2", b"\0asm\x0d\x00\x02\x00".to_vec()),
        ("section", [&header[..], &[0x0e, 0x01, 0x00]].concat()),
        ("type", [&header[..], &[0x07, 0x02, 0x01, 0x50]].concat()),
    ] {
        let file = dir.path().join(format!("{name}.wasm"));
        std::fs::write(&file, &bytes).unwrap();
        let out = run(kiln().arg("audit").arg(&file).arg(&invalid).args([
            "--policy",
            "builtin:wasi-cli-pure",
            "--json",
        ]));
        assert_eq!(out.status.code(), Some(2), "{name}: {}", stderr(&out));
        let results: Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(results["passed"], false);
        assert_eq!(results["reports"], serde_json::json!([]));
        assert_eq!(results["invalid"][0]["name"], invalid.display().to_string());
        let message = results["unreadable"][0]["message"].as_str().unwrap();
        assert!(
            message.contains("cannot read") && message.contains(kiln_inspect::PARSER),
            "{name}: {message}"
        );
        assert!(
            stderr(&out).contains("2 of 2 inputs could not be audited"),
            "{}",
            stderr(&out)
        );
    }
}
