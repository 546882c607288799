//! `cargo xtask bench publish`: `kiln publish` against the same pipeline of standalone tools.
//!
//! The script runs cargo build, wasm-tools validate and component wit, wasmtime
//! compile for two targets and an oras push on a Rust project, cold and with
//! nothing changed.

use crate::timing::median;
use crate::tools::{
    ORAS_CONFIG, ensure_wasmtime_cli, oras_push_command, start_registry, wasm_tools_binary,
};
use crate::{root, run_quiet};
use anyhow::{Context, Result, bail};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

const RUNS: usize = 3;
const TARGETS: [&str; 2] = ["x86_64-unknown-linux-gnu", "aarch64-unknown-linux-gnu"];

/// How long `cmd` took; fails with its stderr unless it succeeds.
fn ok(cmd: &mut Command) -> Result<Duration> {
    let start = Instant::now();
    run_quiet(cmd)?;
    Ok(start.elapsed())
}

/// The script: what a CI job chains today. Returns (compiler, the rest).
fn script(
    project: &Path,
    target_dir: &Path,
    work: &Path,
    wasm_tools: &Path,
    wasmtime: &Path,
    host: &str,
    repo: &str,
) -> Result<(Duration, Duration)> {
    let compiler = ok(Command::new("cargo")
        .args(["build", "--target", "wasm32-wasip2", "--manifest-path"])
        .arg(project.join("Cargo.toml"))
        .env("CARGO_TARGET_DIR", target_dir))?;
    let start = Instant::now();
    let wasm = target_dir.join("wasm32-wasip2/debug/hello-command.wasm");
    ok(Command::new(wasm_tools).arg("validate").arg(&wasm))?;
    ok(Command::new(wasm_tools)
        .args(["component", "wit"])
        .arg(&wasm))?;
    for t in TARGETS {
        ok(Command::new(wasmtime)
            .args(["compile", "--target", t])
            .arg(&wasm)
            .arg("-o")
            .arg(work.join(format!("hello.{t}.cwasm"))))?;
    }
    std::fs::copy(&wasm, work.join("hello.wasm"))?;
    std::fs::write(work.join("config.json"), ORAS_CONFIG)?;
    let target = format!("{host}/{repo}:1");
    ok(&mut oras_push_command(host, &target, "hello.wasm", work))?;
    Ok((compiler, start.elapsed()))
}

/// `kiln publish`; returns (wall time, compiler ms, kiln's setup before the
/// compiler in ms, receipt).
fn publish(
    kiln: &Path,
    project: &Path,
    target_dir: &Path,
    cache: &Path,
    to: &str,
) -> Result<(Duration, f64, f64, serde_json::Value)> {
    let start = Instant::now();
    let out = Command::new(kiln)
        .args(["publish", "-q", "--json", "--no-sbom", "--to", to])
        .args(TARGETS.iter().flat_map(|t| ["--target", t]))
        .arg(project)
        .env("CARGO_TARGET_DIR", target_dir)
        .env("KILN_CACHE_DIR", cache)
        .env("CI", "1")
        .output()?;
    let wall = start.elapsed();
    if !out.status.success() {
        bail!(
            "kiln publish failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let last = String::from_utf8_lossy(&out.stdout)
        .lines()
        .last()
        .map(str::to_string)
        .context("kiln publish printed nothing")?;
    let event: serde_json::Value = serde_json::from_str(&last)?;
    let receipt = event["receipt"].clone();
    let compiler = receipt["run"]["timings_ms"]["build.compiler"]
        .as_f64()
        .context("no compiler time in the receipt")?;
    let setup = receipt["run"]["timings_ms"]["build.setup"]
        .as_f64()
        .unwrap_or(0.0);
    Ok((wall, compiler, setup, receipt))
}

pub fn rows(kiln: &Path) -> Result<String> {
    let dir = root().join("target/bench/publish");
    if dir.exists() {
        std::fs::remove_dir_all(&dir)?;
    }
    std::fs::create_dir_all(&dir)?;
    let wasm_tools = wasm_tools_binary();
    let wasmtime = ensure_wasmtime_cli()?;
    let reg = start_registry(&dir)?;
    let project = dir.join("hello");
    copy_tree(&root().join("fixtures/rust-command"), &project)?;
    // Warm cargo's registry and the crates' sources, not the target dirs.
    ok(Command::new("cargo")
        .args(["fetch", "--manifest-path"])
        .arg(project.join("Cargo.toml")))?;

    let (mut k_cold, mut k_cold_rest, mut k_noop) = (vec![], vec![], vec![]);
    let mut k_after = vec![];
    let (mut s_cold, mut s_cold_rest, mut s_noop) = (vec![], vec![], vec![]);
    let mut size = 0;
    let mut noop_upload = 0;
    let mut identical = true;
    for i in 0..RUNS {
        // kiln: fresh target dir and cache, a repository of its own.
        let t = dir.join(format!("kiln-target{i}"));
        let c = dir.join(format!("kiln-cache{i}"));
        let to = format!("{}/kiln{i}/hello:1", reg.host);
        let (wall, compiler, setup, first) = publish(kiln, &project, &t, &c, &to)?;
        k_cold.push(wall.as_secs_f64() * 1e3);
        k_cold_rest.push(wall.as_secs_f64() * 1e3 - compiler);
        k_after.push(wall.as_secs_f64() * 1e3 - compiler - setup);
        size = first["component"]["size"].as_u64().unwrap_or(0);
        let (wall, _, _, second) = publish(kiln, &project, &t, &c, &to)?;
        k_noop.push(wall.as_secs_f64() * 1e3);
        noop_upload += second["run"]["uploaded_bytes"].as_u64().unwrap_or(0);
        let mut a = first.clone();
        let mut b = second.clone();
        a.as_object_mut().map(|o| o.remove("run"));
        b.as_object_mut().map(|o| o.remove("run"));
        identical &= a == b;

        // The script: fresh target dir, its own repository.
        let t = dir.join(format!("script-target{i}"));
        let work = dir.join(format!("script{i}"));
        std::fs::create_dir_all(&work)?;
        let repo = format!("script{i}/hello");
        let run_script = || {
            script(
                &project,
                &t,
                &work,
                &wasm_tools,
                &wasmtime,
                &reg.host,
                &repo,
            )
        };
        let (compiler, rest) = run_script()?;
        s_cold.push((compiler + rest).as_secs_f64() * 1e3);
        s_cold_rest.push(rest.as_secs_f64() * 1e3);
        let (compiler, rest) = run_script()?;
        s_noop.push((compiler + rest).as_secs_f64() * 1e3);
    }
    let (kc, kr, kn) = (median(k_cold), median(k_cold_rest), median(k_noop));
    let ka = median(k_after);
    let (sc, sr, sn) = (median(s_cold), median(s_cold_rest), median(s_noop));
    Ok(format!(
        "\n`kiln publish` of fixtures/rust-command (dev profile, a {:.1} MiB component; two precompile targets; push to a loopback registry; no signing, no SBOM) against the script `cargo build` → `wasm-tools validate` → `wasm-tools component wit` → `wasmtime compile` ×2 → oras push (PyPI), {RUNS} runs, median:\n\n\
         | case | kiln publish | script | kiln / script |\n|---|---|---|---|\n\
         | cold: whole run (fresh target dir, empty cache, new repository) | {kc:.0} ms | {sc:.0} ms | {:.2}x |\n\
         | cold: everything after the compiler finishes | {ka:.0} ms | {sr:.0} ms | {:.2}x |\n\
         | cold: everything but the compiler (kiln's setup before it too) | {kr:.0} ms | {sr:.0} ms | {:.2}x |\n\
         | nothing changed: whole run | {kn:.0} ms | {sn:.0} ms | {:.2}x |\n\n\
         Nothing changed: kiln uploaded {noop_upload} blob bytes; receipts identical apart from `run`: {identical}.\n",
        size as f64 / (1024.0 * 1024.0),
        kc / sc,
        ka / sr,
        kr / sr,
        kn / sn,
    ))
}

fn copy_tree(from: &Path, to: &Path) -> Result<()> {
    std::fs::create_dir_all(to)?;
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        if entry.file_name() == "target" {
            continue;
        }
        let dest: PathBuf = to.join(entry.file_name());
        if entry.file_type()?.is_dir() {
            copy_tree(&entry.path(), &dest)?;
        } else {
            std::fs::copy(entry.path(), dest)?;
        }
    }
    Ok(())
}
