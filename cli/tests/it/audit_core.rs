//! Audits of core modules at the level of WIT interfaces, and of binaries an audit cannot check.
//!
//! Audits of core modules at the level of WIT interfaces: WASI preview1 imports
//! judged as the WASI 0.2 interfaces the adapter imports for them (the table
//! checked against the real adapter), host-specific imports from real Go
//! `GOOS=js` and C wasip1 builds and from emscripten- and wasm-bindgen-shaped
//! modules, imports no rule examined, and binaries an audit cannot check
//! (invalid, or in encodings kiln cannot read) exiting 2.

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

/// A module importing preview1 functions: stdout, randomness and a socket.
const NET: &str = r#"(module
    (import "wasi_snapshot_preview1" "fd_write" (func (param i32 i32 i32 i32) (result i32)))
    (import "wasi_snapshot_preview1" "random_get" (func (param i32 i32) (result i32)))
    (import "wasi_snapshot_preview1" "sock_accept" (func (param i32 i32 i32) (result i32)))
    (import "wasi_snapshot_preview1" "sched_yield" (func (result i32)))
    (memory (export "memory") 1))"#;

/// The same without the socket, one import through `wasi_unstable`.
const CLI: &str = r#"(module
    (import "wasi_unstable" "fd_write" (func (param i32 i32 i32 i32) (result i32)))
    (import "wasi_snapshot_preview1" "clock_time_get" (func (param i32 i64 i32) (result i32)))
    (memory (export "memory") 1))"#;

/// The shapes of emscripten (`env`, minified `a::b`) and wasm-bindgen
/// (`__wbindgen_placeholder__`) modules, and a preview1 name WASI lacks.
const WEB: &str = r#"(module
    (import "env" "emscripten_memcpy_js" (func (param i32 i32 i32)))
    (import "a" "b" (func (param i32) (result i32)))
    (import "__wbindgen_placeholder__" "__wbindgen_describe" (func (param i32)))
    (import "wasi_snapshot_preview1" "not_a_wasi_function" (func))
    (memory (export "memory") 1))"#;

/// The policy files the cases name, written to `NAME.toml`.
const POLICIES: &[(&str, &str)] = &[
    ("allow", "[imports]\ndefault = \"allow\"\n"),
    (
        "named",
        "[imports]\ndefault = \"allow\"\ndeny = [\"env::*\"]\n[core]\ndefault = \"allow\"\ndeny = [\"a::*\"]\nallow = [\"__wbindgen_placeholder__::*\"]\n",
    ),
    ("limits", "[limits]\nmax-size = \"1 MiB\"\n"),
    ("component-limits", "[limits]\nmax-size = \"100 MiB\"\n"),
    ("world", "[world]\nwit = \"wit\"\n"),
];

/// One audit: the inputs (by name, see [`inputs`]), the policy (a built-in
/// or one of [`POLICIES`]), more flags, and the exit code. Its outputs are
/// `snapshots/audit/core/NAME.{txt,json,sarif}`.
struct Case {
    name: &'static str,
    inputs: &'static [&'static str],
    policy: &'static str,
    flags: &'static [&'static str],
    exit: i32,
}

const CASES: &[Case] = &[
    // The socket is denied, and the message names the preview1 function it
    // came from; stdout, files and randomness are allowed.
    Case {
        name: "preview1-socket",
        inputs: &["net"],
        policy: "builtin:wasi-cli-pure",
        flags: &[],
        exit: 1,
    },
    // Without the socket the same module passes, with nothing unexamined;
    // `wasi_unstable` maps as preview1 does.
    Case {
        name: "preview1-cli",
        inputs: &["cli"],
        policy: "builtin:wasi-cli-pure",
        flags: &[],
        exit: 0,
    },
    // Host-specific imports fail a default deny...
    Case {
        name: "host-specific-denied",
        inputs: &["web"],
        policy: "builtin:wasi-cli-pure",
        flags: &[],
        exit: 1,
    },
    // ...and pass under `default = "allow"`, with a note saying so.
    Case {
        name: "host-specific-allowed",
        inputs: &["web"],
        policy: "allow",
        flags: &[],
        exit: 0,
    },
    // A deny pattern in `[imports]` denies (deny wins); `[core]` rules
    // decide about the others they look at.
    Case {
        name: "host-specific-named",
        inputs: &["web"],
        policy: "named",
        flags: &[],
        exit: 1,
    },
    // A policy without `[imports]` passes, and lists what no rule looked at.
    Case {
        name: "host-specific-unexamined",
        inputs: &["web"],
        policy: "limits",
        flags: &[],
        exit: 0,
    },
    // A target world provides WIT interfaces, never host-specific imports.
    Case {
        name: "host-specific-outside-world",
        inputs: &["web"],
        policy: "world",
        flags: &[],
        exit: 1,
    },
    // A component's imports, when no rule looks at them, are a note (in
    // SARIF at level `note`).
    Case {
        name: "component-unexamined",
        inputs: &["hello"],
        policy: "component-limits",
        flags: &[],
        exit: 0,
    },
    // An audit never passes what it could not check: a function body the
    // validator rejects...
    Case {
        name: "invalid-body",
        inputs: &["invalid"],
        policy: "builtin:wasi-cli-pure",
        flags: &[],
        exit: 2,
    },
    // ...which --no-validate does not read, as callers that validated.
    Case {
        name: "invalid-body-not-validated",
        inputs: &["invalid"],
        policy: "builtin:wasi-cli-pure",
        flags: &["--no-validate"],
        exit: 0,
    },
    // Encodings kiln's parser does not know: a newer component layer, an
    // unknown section, an unknown type constructor.
    Case {
        name: "unreadable-layer",
        inputs: &["layer2", "invalid"],
        policy: "builtin:wasi-cli-pure",
        flags: &[],
        exit: 2,
    },
    Case {
        name: "unreadable-section",
        inputs: &["section", "invalid"],
        policy: "builtin:wasi-cli-pure",
        flags: &[],
        exit: 2,
    },
    Case {
        name: "unreadable-type",
        inputs: &["type", "invalid"],
        policy: "builtin:wasi-cli-pure",
        flags: &[],
        exit: 2,
    },
];

/// Writes every input the cases name to `dir/NAME.wasm`, the policies to
/// `dir/NAME.toml` and the world of `world.toml` to `dir/wit`.
fn inputs(dir: &Path) {
    for (name, wat) in [("net", NET), ("cli", CLI), ("web", WEB)] {
        write_wat(dir, name, wat);
    }
    hello(dir);
    // A function body the validator rejects (`wat` does not check types).
    let invalid = wat::parse_str(r#"(module (func (result i32) i64.const 1))"#).unwrap();
    let header = b"\0asm\x0d\x00\x01\x00";
    for (name, bytes) in [
        ("invalid", invalid),
        ("layer2", b"\0asm\x0d\x00\x02\x00".to_vec()),
        ("section", [&header[..], &[0x0e, 0x01, 0x00]].concat()),
        ("type", [&header[..], &[0x07, 0x02, 0x01, 0x50]].concat()),
    ] {
        std::fs::write(dir.join(format!("{name}.wasm")), bytes).unwrap();
    }
    for (name, text) in POLICIES {
        policy(dir, name, text);
    }
    std::fs::create_dir(dir.join("wit")).unwrap();
    std::fs::write(
        dir.join("wit/world.wit"),
        "package acme:host;\ninterface log {\n  log: func(msg: string);\n}\nworld host {\n  import log;\n}\n",
    )
    .unwrap();
}

#[test]
fn core_module_audits_match_their_snapshots() {
    let dir = tempfile::tempdir().unwrap();
    inputs(dir.path());
    let filters = Filters::new().path(dir.path(), "TMP");
    for case in CASES {
        let policy = if case.policy.starts_with("builtin:") {
            case.policy.to_string()
        } else {
            dir.path()
                .join(format!("{}.toml", case.policy))
                .display()
                .to_string()
        };
        for (format, flag) in [
            ("txt", None),
            ("json", Some("--json")),
            ("sarif", Some("--sarif")),
        ] {
            let out = run(kiln()
                .arg("audit")
                .args(
                    case.inputs
                        .iter()
                        .map(|i| dir.path().join(format!("{i}.wasm"))),
                )
                .args(["--policy", &policy])
                .args(case.flags)
                .args(flag));
            assert_eq!(
                out.status.code(),
                Some(case.exit),
                "{} {format}: {}",
                case.name,
                transcript(&out)
            );
            assert_snapshot(
                snapshot(&format!("audit/core/{}.{format}", case.name)),
                &transcript(&out),
                &filters,
            );
        }
    }
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
