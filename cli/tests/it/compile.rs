//! `kiln compile`: artifacts load and run, are ELF files of their machine, and `--check` tells the truth.
//!
//! `kiln compile`: artifacts for the host load and run in Wasmtime; artifacts
//! for other architectures are ELF files of that machine with Wasmtime's engine
//! section; descriptors, the cache and `--check` tell the truth.

use crate::common::*;
use std::path::{Path, PathBuf};

fn compile(args: &[&str], cache: &Path) -> serde_json::Value {
    let out = run_ok(
        kiln()
            .arg("compile")
            .args(args)
            .arg("--json")
            .env("KILN_CACHE_DIR", cache),
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// Runs `kiln compile --check` on `artifact` (with `extra` flags), checks
/// its exit code and compares its stdout with `snapshots/compile/NAME.txt`.
fn assert_check(artifact: &Path, extra: &[&str], code: i32, name: &str, filters: &Filters) {
    let out = run(kiln()
        .args(["compile", "--check"])
        .arg(artifact)
        .args(extra));
    assert_eq!(
        out.status.code(),
        Some(code),
        "{name}: {}",
        transcript(&out)
    );
    assert_snapshot(
        snapshot(&format!("compile/{name}.txt")),
        &stdout(&out),
        filters,
    );
}

/// Checks that kiln failed with exit 2 and compares its stderr with
/// `snapshots/compile/errors/NAME.stderr`.
fn assert_error(out: &std::process::Output, name: &str, filters: &Filters) {
    assert_eq!(out.status.code(), Some(2), "{name}: {}", transcript(out));
    assert_snapshot(
        snapshot(&format!("compile/errors/{name}.stderr")),
        &stderr(out),
        filters,
    );
}

/// ELF machine type, read from the header.
fn elf_machine(bytes: &[u8]) -> u16 {
    assert_eq!(&bytes[..4], b"\x7fELF");
    let field = [bytes[18], bytes[19]];
    if bytes[5] == 2 {
        u16::from_be_bytes(field)
    } else {
        u16::from_le_bytes(field)
    }
}

#[test]
#[allow(unsafe_code)]
fn host_artifact_loads_and_runs_like_the_component() {
    let dir = tempfile::tempdir().unwrap();
    let wasm = hello(dir.path());
    let out = compile(&[wasm.to_str().unwrap()], &dir.path().join("cache"));
    let host = kiln_core::Target::host().as_str();
    assert_eq!(out[0]["target"], host);
    let path = PathBuf::from(out[0]["path"].as_str().unwrap());
    assert_eq!(path, dir.path().join(format!("hello.{host}.cwasm")));
    let bytes = std::fs::read(&path).unwrap();
    let engine = host_engine();
    // SAFETY: the artifact was made a moment ago by this test, with the same
    // Wasmtime release and configuration, on this host: the case Wasmtime
    // documents as safe to deserialize.
    let component =
        unsafe { wasmtime::component::Component::deserialize(&engine, &bytes) }.unwrap();
    assert_eq!(
        run_component(&engine, &component, &["aot"], &[]).unwrap(),
        run_command(&wasm, &["aot"], &[]).unwrap()
    );
    // The descriptor describes it.
    let d: serde_json::Value =
        serde_json::from_slice(&std::fs::read(format!("{}.json", path.display())).unwrap())
            .unwrap();
    assert_eq!(d["format"], "kiln-cwasm/1");
    assert_eq!(d["kind"], "component");
    assert_eq!(d["target"], host);
    assert_eq!(d["wasmtime_version"], "48.0.8");
    assert_eq!(d["cpu"], "baseline");
    assert!(d["cpu_features"].is_array());
    assert_eq!(
        d["source_digest"],
        kiln_core::Digest::of(&std::fs::read(&wasm).unwrap()).to_string()
    );
    assert_eq!(
        d["artifact_digest"],
        kiln_core::Digest::of(&bytes).to_string()
    );
    assert_eq!(d["compatibility_hash"].as_str().unwrap().len(), 64);
    // And --check says it loads here.
    let check = run(kiln().args(["compile", "--check"]).arg(&path));
    assert_eq!(check.status.code(), Some(0), "{}", stdout(&check));
}

#[test]
fn other_architectures_are_elf_files_of_their_machine_that_do_not_load_here() {
    let dir = tempfile::tempdir().unwrap();
    let wasm = hello(dir.path());
    let cache = dir.path().join("cache");
    let out = compile(
        &[
            wasm.to_str().unwrap(),
            "--target",
            "aarch64-unknown-linux-gnu",
            "--target",
            "riscv64gc-unknown-linux-gnu",
            "--target",
            "s390x-unknown-linux-gnu",
            "--target",
            "pulley64",
        ],
        &cache,
    );
    let filters = Filters::new().path(dir.path(), "TMP");
    let expect = [("aarch64", 183u16), ("riscv64", 243), ("s390x", 22)];
    for (entry, (arch, machine)) in out.as_array().unwrap().iter().zip(expect) {
        let path = PathBuf::from(entry["path"].as_str().unwrap());
        let bytes = std::fs::read(&path).unwrap();
        assert_eq!(elf_machine(&bytes), machine, "{arch}");
        assert!(
            bytes.windows(16).any(|w| w == b".wasmtime.engine"),
            "{arch}"
        );
        let d: serde_json::Value =
            serde_json::from_slice(&std::fs::read(format!("{}.json", path.display())).unwrap())
                .unwrap();
        assert!(d["target"].as_str().unwrap().starts_with(arch));
        assert_check(&path, &[], 1, &format!("check-{arch}"), &filters);
    }
    // `inspect` shows the same metadata.
    let aarch64 = PathBuf::from(out[0]["path"].as_str().unwrap());
    let shown = stdout(&run_ok(kiln().arg("inspect").arg(&aarch64)));
    assert_snapshot(snapshot("compile/inspect-aarch64.txt"), &shown, &filters);
    let pulley = PathBuf::from(out[3]["path"].as_str().unwrap());
    let text = stdout(&run(kiln()
        .args(["compile", "--check", "--json"])
        .arg(&pulley)));
    let report: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(report["artifact_architecture"], "pulley64");
    assert_eq!(report["loads"], false);
}

#[test]
fn all_targets_in_parallel_match_single_target_runs_and_the_cache() {
    let dir = tempfile::tempdir().unwrap();
    let wasm = hello(dir.path());
    let w = wasm.to_str().unwrap();
    let cache = dir.path().join("cache");
    let all = compile(
        &[
            w,
            "--target",
            "all",
            "-o",
            dir.path().join("all").to_str().unwrap(),
            "--no-cache",
        ],
        &cache,
    );
    assert_eq!(all.as_array().unwrap().len(), kiln_core::Target::ALL.len());
    let one = compile(
        &[
            w,
            "--target",
            "s390x-unknown-linux-gnu",
            "-o",
            dir.path().join("one").to_str().unwrap(),
        ],
        &cache,
    );
    assert_eq!(one[0]["cached"], false);
    assert_eq!(all[3]["digest"], one[0]["digest"]);
    // A repeat copies from the cache: the same bytes.
    let again = compile(
        &[
            w,
            "--target",
            "s390x-unknown-linux-gnu",
            "-o",
            dir.path().join("again").to_str().unwrap(),
        ],
        &cache,
    );
    assert_eq!(again[0]["cached"], true);
    assert_eq!(
        std::fs::read(again[0]["path"].as_str().unwrap()).unwrap(),
        std::fs::read(one[0]["path"].as_str().unwrap()).unwrap()
    );
    // A changed setting misses the cache and changes the artifact.
    let epoch = compile(
        &[
            w,
            "--target",
            "s390x-unknown-linux-gnu",
            "--epoch-interruption",
            "-o",
            dir.path().join("epoch").to_str().unwrap(),
        ],
        &cache,
    );
    assert_eq!(epoch[0]["cached"], false);
    assert_ne!(epoch[0]["digest"], one[0]["digest"]);
}

#[test]
fn settings_and_engine_versions_are_checked() {
    let dir = tempfile::tempdir().unwrap();
    let wasm = hello(dir.path());
    let out = compile(
        &[wasm.to_str().unwrap(), "--fuel"],
        &dir.path().join("cache"),
    );
    let path = Path::new(out[0]["path"].as_str().unwrap());
    let filters = Filters::new().path(dir.path(), "TMP");
    assert_check(path, &[], 1, "check-fuel", &filters);
    assert_check(
        path,
        &["--engine-version", "47.0.1"],
        1,
        "check-fuel-engine-47",
        &filters,
    );
}

#[test]
fn core_modules_compile_too() {
    let dir = tempfile::tempdir().unwrap();
    let module = dir.path().join("core.wasm");
    std::fs::write(
        &module,
        wat::parse_file(fixture("wat/core-module.wat")).unwrap(),
    )
    .unwrap();
    let out = compile(&[module.to_str().unwrap()], &dir.path().join("cache"));
    let d: serde_json::Value = serde_json::from_slice(
        &std::fs::read(format!("{}.json", out[0]["path"].as_str().unwrap())).unwrap(),
    )
    .unwrap();
    assert_eq!(d["kind"], "core-module");
}

#[test]
fn bad_inputs_are_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let wasm = hello(dir.path());
    let filters = Filters::new().path(dir.path(), "TMP");
    let out = run(kiln()
        .arg("compile")
        .arg(&wasm)
        .args(["--target", "mips-unknown-linux-gnu"]));
    assert_error(&out, "unknown-target", &filters);
    let text = dir.path().join("notes.txt");
    std::fs::write(&text, "hello").unwrap();
    let out = run(kiln().arg("compile").arg(&text));
    assert_error(&out, "not-wasm", &filters);
    let out = run(kiln().args(["compile", "--check"]).arg(&wasm));
    assert_error(&out, "check-of-a-component", &filters);
    let bad = dir.path().join("invalid.wasm");
    std::fs::write(
        &bad,
        wat::parse_file(fixture("wat/invalid-body.wat")).unwrap(),
    )
    .unwrap();
    let out = run(kiln().arg("compile").arg(&bad));
    assert_error(&out, "invalid-body", &filters);
}

fn descriptor(path: &str) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(format!("{path}.json")).unwrap()).unwrap()
}

#[test]
#[allow(unsafe_code)]
fn cpu_presets_and_wasm_proposals_are_recorded_and_checked() {
    let dir = tempfile::tempdir().unwrap();
    let wasm = hello(dir.path());
    let w = wasm.to_str().unwrap();
    let cache = dir.path().join("cache");
    let o = |name: &str| dir.path().join(name).to_str().unwrap().to_string();
    let host = kiln_core::Target::host().as_str();
    let (preset, feature) = if host.starts_with("x86_64") {
        ("x86-64-v2", "has_sse42")
    } else {
        ("lse", "has_lse")
    };
    // The snapshots name the host's architecture and what is chosen for it
    // here: they are an x86_64 host's, as the other tests of this file
    // expect (an aarch64 artifact does not load here).
    let filters = Filters::new().path(dir.path(), "TMP");

    // A preset for the host: recorded expanded, loads, runs the same.
    let out = compile(&[w, "--cpu", preset, "-o", &o("preset")], &cache);
    let path = out[0]["path"].as_str().unwrap().to_string();
    let d = descriptor(&path);
    assert_eq!(d["cpu"], preset);
    let features: Vec<&str> = d["cpu_features"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f.as_str().unwrap())
        .collect();
    assert!(features.contains(&feature), "{features:?}");
    assert_check(Path::new(&path), &[], 0, "check-preset", &filters);
    let cpu: kiln_aot::Cpu = preset.parse().unwrap();
    let config = kiln_aot::engine_config(
        kiln_core::Target::host(),
        &cpu,
        &kiln_aot::Settings::default(),
    )
    .unwrap();
    let engine = wasmtime::Engine::new(&config).unwrap();
    // SAFETY: made a moment ago by this test's kiln, same Wasmtime release,
    // same configuration, this host, and --check above found the features.
    let component = unsafe {
        wasmtime::component::Component::deserialize(&engine, std::fs::read(&path).unwrap())
    }
    .unwrap();
    assert_eq!(
        run_component(&engine, &component, &["cpu"], &[]).unwrap(),
        run_command(&wasm, &["cpu"], &[]).unwrap()
    );
    assert_ne!(
        out[0]["digest"],
        compile(&[w, "-o", &o("baseline")], &cache)[0]["digest"],
        "a preset changes the code"
    );

    // A descriptor that names a feature this CPU lacks does not load.
    let mut tampered = d.clone();
    tampered["cpu_features"]
        .as_array_mut()
        .unwrap()
        .push("has_made_up".into());
    std::fs::write(format!("{path}.json"), tampered.to_string()).unwrap();
    assert_check(Path::new(&path), &[], 1, "check-made-up-feature", &filters);

    // `native` lists what this CPU has, and loads here.
    let out = compile(&[w, "--cpu", "native", "-o", &o("native")], &cache);
    let path = out[0]["path"].as_str().unwrap();
    assert!(
        !descriptor(path)["cpu_features"]
            .as_array()
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        run(kiln().args(["compile", "--check", path])).status.code(),
        Some(0)
    );

    // Features of another architecture are recorded, not checked here.
    let other = if host.starts_with("x86_64") {
        ("aarch64-unknown-linux-gnu", "lse", "has_lse")
    } else {
        ("x86_64-unknown-linux-gnu", "avx2", "has_avx2")
    };
    let out = compile(
        &[w, "--target", other.0, "--cpu", other.1, "-o", &o("other")],
        &cache,
    );
    let path = out[0]["path"].as_str().unwrap();
    assert!(
        descriptor(path)["cpu_features"]
            .as_array()
            .unwrap()
            .contains(&other.2.into())
    );
    assert_check(
        Path::new(path),
        &[],
        1,
        "check-other-architecture",
        &filters,
    );

    // Wasm proposals: switching one off loads in the default engine, on
    // where the default has it off does not.
    let off = compile(
        &[w, "--wasm", "simd=n,relaxed-simd=n", "-o", &o("nosimd")],
        &cache,
    );
    let path = off[0]["path"].as_str().unwrap();
    assert_eq!(descriptor(path)["settings"]["wasm_features"]["simd"], false);
    assert_eq!(
        run(kiln().args(["compile", "--check", path])).status.code(),
        Some(0)
    );
    let on = compile(&[w, "--wasm", "wide-arithmetic", "-o", &o("wide")], &cache);
    let path = on[0]["path"].as_str().unwrap();
    assert_check(Path::new(path), &[], 1, "check-wide-arithmetic", &filters);

    // Names the target does not know are errors that list what it has.
    let out = run(kiln().args([
        "compile",
        w,
        "--target",
        "aarch64-unknown-linux-gnu",
        "--cpu",
        "avx2",
    ]));
    assert_error(&out, "unknown-cpu-feature", &filters);
    let out = run(kiln().args(["compile", w, "--wasm", "nope"]));
    assert_error(&out, "unknown-wasm-proposal", &filters);
}
