//! Hostile binaries — small files that describe far more than they hold — are refused by inspect, audit and validate at once, in little memory, naming the offset and the reason.

use crate::common::*;
use std::io::Read;
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};
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

/// What one measured run of kiln did.
struct Measured {
    status: ExitStatus,
    stdout: Vec<u8>,
    stderr: String,
    elapsed: Duration,
    /// Peak resident memory of the kiln process alone, in KiB.
    max_rss_kib: u64,
}

/// Runs kiln, taking its wall time and its own peak resident memory from
/// `wait4` (`getrusage(RUSAGE_CHILDREN)` would mix in every other process
/// the tests start, and `/usr/bin/time` is not on a fresh Debian).
#[allow(unsafe_code)]
#[allow(
    clippy::zombie_processes,
    reason = "the child is reaped by `wait4`, which std does not know about"
)]
fn measure(cmd: &mut Command) -> Measured {
    let start = Instant::now();
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the kiln binary runs");
    // Both pipes are drained while kiln runs, so a large output cannot
    // block it.
    let drain = |mut pipe: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut bytes = Vec::new();
            pipe.read_to_end(&mut bytes).unwrap();
            bytes
        })
    };
    let stdout = drain(Box::new(child.stdout.take().unwrap()));
    let stderr = drain(Box::new(child.stderr.take().unwrap()));
    let pid = libc::pid_t::try_from(child.id()).unwrap();
    let mut status: libc::c_int = 0;
    // SAFETY: `rusage` is a plain C struct of integers, for which all zeroes
    // is a valid value.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    loop {
        // SAFETY: `pid` is a child of this process that nothing else waits
        // for (`child` is never waited on through std), and `status` and
        // `usage` are valid for writes for the duration of the call.
        let waited = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
        if waited == pid {
            break;
        }
        let err = std::io::Error::last_os_error();
        assert_eq!(err.kind(), std::io::ErrorKind::Interrupted, "wait4: {err}");
    }
    let elapsed = start.elapsed();
    Measured {
        status: ExitStatus::from_raw(status),
        stdout: stdout.join().unwrap(),
        stderr: String::from_utf8_lossy(&stderr.join().unwrap()).into_owned(),
        elapsed,
        // Linux reports `ru_maxrss` in KiB.
        max_rss_kib: u64::try_from(usage.ru_maxrss).unwrap(),
    }
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
        assert_eq!(run.status.code(), Some(1), "{what}");
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
            let results: serde_json::Value = serde_json::from_slice(&run.stdout).unwrap();
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
    let report: serde_json::Value = serde_json::from_slice(&run.stdout).unwrap();
    let imports = report["module"]["imports"].as_array().unwrap();
    assert_eq!(imports.len(), 900);
    let signature = imports[899]["signature"].as_str().unwrap();
    assert!(
        signature.starts_with("(i32, i32") && signature.ends_with("i32) -> ()"),
        "{signature}"
    );
    assert_eq!(signature.matches("i32").count(), 1000);
}
