//! `cargo xtask`: kiln's project chores — setup, test, demo, bench, bless — in Rust.
//!
//! They are written here instead of in shell scripts.

// A developer tool that talks to its user directly: the rule that only the
// printer writes to the terminal is the kiln binary's.
#![allow(clippy::print_stdout, clippy::print_stderr, clippy::disallowed_methods)]

mod bench;
mod bench_aot;
mod bench_oci;
mod bench_publish;
mod bench_real;
mod fuzz;
mod fuzz_seeds;
mod setup;
mod soak;
mod synthetic;
mod timing;
mod tools;

use anyhow::{Context, Result, bail};
use std::path::{Path, PathBuf};
use std::process::Command;

const USAGE: &str = "\
usage: cargo xtask <command>

commands:
  setup   install what kiln's builds and tests need (idempotent)
  demo    set up, then build the Rust, C and Go command fixtures with kiln, validate them, inspect one,
          and publish the Rust one (build, audit, precompile, SBOM, push to its local OCI layout)
  test    set up, then run fmt, clippy and every test
  bless [FILTER...]
          rerun the integration tests with BLESS=1, rewriting the expected outputs they compare
          with (cli/tests/it/snapshots/, fixtures/wat/), then list the files that changed;
          FILTER narrows the run as cargo test's filters do (e.g. `golden::`)
  bench [PART...]
          compare kiln with the standalone tools (writes target/bench/report.md);
          PART is inspect, audit, build, compile, oci or publish (default: all)
  fuzz [list | TARGET[,TARGET...] | all] [SECONDS]
          run kiln's fuzz targets (cargo fuzz, installed when missing) for SECONDS each (default
          120), seeded from the fixtures and what kiln writes; a finding is minimized into
          fuzz-harness/tests/fuzz_regressions/, which `test` replays; figures in
          target/fuzz-report.md
  soak [kill | fuzz] [SECONDS]
          kill: kill kiln push and sign with SIGKILL at random moments, several at once, against
          one layout, checking it stays whole (default 60 s); fuzz: every fuzz target for SECONDS
          (default 600) each; no word: both, with their defaults or SECONDS
";

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("setup") => setup::run(),
        Some("demo") => demo(),
        Some("test") => test(&args[1..]),
        Some("bless") => bless(&args[1..]),
        Some("bench") => bench::run(&args[1..]),
        Some("fuzz") => fuzz::run(&args[1..]),
        Some("soak") => match args.get(1).map(String::as_str) {
            Some("kill") => soak::run(args.get(2)),
            Some("fuzz") => fuzz::soak(args.get(2)),
            _ => soak::run(args.get(1)).and_then(|()| fuzz::soak(args.get(1))),
        },
        Some("-h" | "--help" | "help") | None => {
            print!("{USAGE}");
            Ok(())
        }
        Some(other) => bail!("unknown xtask command `{other}`\n\n{USAGE}"),
    }
}

/// The workspace root.
pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask lives in the workspace")
        .to_path_buf()
}

/// Runs a command in the workspace root, echoing it, and fails unless it succeeds.
pub fn sh(cmd: &mut Command) -> Result<()> {
    cmd.current_dir(root());
    eprintln!("$ {}", display(cmd));
    let status = cmd
        .status()
        .with_context(|| format!("failed to start `{}`", display(cmd)))?;
    if !status.success() {
        bail!("`{}` failed ({status})", display(cmd));
    }
    Ok(())
}

/// A printable command line.
pub fn display(cmd: &Command) -> String {
    std::iter::once(cmd.get_program())
        .chain(cmd.get_args())
        .map(|a| a.to_string_lossy().into_owned())
        .collect::<Vec<_>>()
        .join(" ")
}

/// Runs a command with its output captured: what it printed on stdout, or
/// an error with its stderr unless it succeeds.
pub fn output_of(cmd: &mut Command) -> Result<Vec<u8>> {
    let out = cmd.output().with_context(|| display(cmd))?;
    if !out.status.success() {
        bail!(
            "`{}` failed ({}):\n{}",
            display(cmd),
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(out.stdout)
}

/// Runs a command with its output captured; fails with its stderr unless
/// it succeeds.
pub fn run_quiet(cmd: &mut Command) -> Result<()> {
    output_of(cmd).map(drop)
}

/// Runs a command and parses what it prints as JSON; fails unless it succeeds.
pub fn run_json(cmd: &mut Command) -> Result<serde_json::Value> {
    Ok(serde_json::from_slice(&output_of(cmd)?)?)
}

fn cargo() -> Command {
    let mut cmd = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    // Incremental artifacts only cost time and disk in one-shot builds.
    cmd.env("CARGO_INCREMENTAL", "0");
    cmd
}

fn kiln_bin() -> PathBuf {
    root().join("target/debug/kiln")
}

fn demo() -> Result<()> {
    setup::run()?;
    sh(cargo().args(["build", "-p", "kiln"]))?;
    let out_dir = root().join("target/kiln/demo");
    let mut outputs = Vec::new();
    for fixture in ["rust-command", "c-command", "go-command"] {
        let out = out_dir.join(format!("{fixture}.wasm"));
        sh(Command::new(kiln_bin())
            .arg("build")
            .arg(Path::new("fixtures").join(fixture))
            .arg("-o")
            .arg(&out))?;
        outputs.push(out);
    }
    sh(Command::new(kiln_bin()).arg("validate").args(&outputs))?;
    sh(Command::new(kiln_bin()).arg("inspect").arg(&outputs[0]))?;
    // The whole pipeline, to the layout under the fixture's target dir.
    sh(Command::new(kiln_bin())
        .args(["publish", "--policy", "builtin:wasi-cli-pure"])
        .arg(Path::new("fixtures").join("rust-command")))?;
    Ok(())
}

fn test(extra: &[String]) -> Result<()> {
    setup::run()?;
    sh(cargo().args(["fmt", "--all", "--check"]))?;
    // The parsing halves of kiln-oci, kiln-sign and kiln-aot build without
    // their network, crypto and engine stacks, as the fuzz build takes them.
    sh(cargo().args([
        "check",
        "-p",
        "kiln-oci",
        "-p",
        "kiln-sign",
        "-p",
        "kiln-aot",
        "--no-default-features",
    ]))?;
    // Lints and tests from one build: `cargo clippy` is `cargo check` with
    // clippy-driver as the workspace's rustc wrapper, and the same wrapper
    // on the test build lints every workspace target (libraries, binaries,
    // unit and integration tests; there are no benches or examples) while
    // compiling it. A separate `cargo clippy --all-targets` would check all
    // of wasmtime, cranelift and the rest a second time: 8 of CI's minutes.
    // Dependencies are built without the wrapper, as clippy builds them.
    // The wrapper is given as configuration, not as RUSTC_WORKSPACE_WRAPPER:
    // the tests inherit this environment, and the cargo runs they make on
    // fixtures must use the plain compiler (one of them swaps in a fake
    // rustc) without lints.
    let driver = clippy_driver()?;
    let mut cmd = cargo();
    cmd.args(["test", "--workspace", "--config"])
        .arg(format!(
            "build.rustc-workspace-wrapper={}",
            toml_string(&driver.to_string_lossy())
        ))
        .args(extra)
        // How cargo-clippy hands lint flags to clippy-driver; inert for
        // anything but clippy-driver.
        .env(
            "CLIPPY_ARGS",
            "-D__CLIPPY_HACKERY__warnings__CLIPPY_HACKERY__",
        );
    sh(&mut cmd)?;
    Ok(())
}

/// `s` as a TOML basic string.
fn toml_string(s: &str) -> String {
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
}

/// The toolchain's clippy-driver (installed with clippy by rustup).
fn clippy_driver() -> Result<PathBuf> {
    let out = Command::new("rustup")
        .args(["which", "clippy-driver"])
        .output();
    if let Ok(out) = out
        && out.status.success()
    {
        let path = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
        if path.is_file() {
            return Ok(path);
        }
    }
    // Without rustup: beside cargo.
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let beside = Path::new(&cargo).with_file_name("clippy-driver");
    if beside.is_file() {
        return Ok(beside);
    }
    bail!("clippy-driver not found; install clippy: `rustup component add clippy`")
}

/// Every test that compares an output with a file rewrites the file under
/// `BLESS=1`, so the whole integration-test binary runs: no list of such
/// tests to keep up to date.
fn bless(filters: &[String]) -> Result<()> {
    sh(cargo()
        .args(["test", "-p", "kiln", "--test", "it", "--"])
        .args(filters)
        .env("BLESS", "1"))?;
    sh(Command::new("git").args([
        "status",
        "--short",
        "--",
        "cli/tests/it/snapshots",
        "fixtures/wat",
    ]))
}

/// Writes a report file, creating its directory.
pub fn write_report(path: &Path, text: &str) -> Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    std::fs::write(path, text).with_context(|| format!("failed to write `{}`", path.display()))
}
