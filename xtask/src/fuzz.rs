//! `cargo xtask fuzz` and `soak fuzz`: runs kiln's fuzz targets from generated seeds and keeps what they find.
//!
//! The targets are `fuzz-harness/`'s functions; `fuzz/fuzz_targets/` holds
//! cargo-fuzz's entry for each, and its file names are the list of targets.
//! Each run reads the seeds `fuzz_seeds` generates from what kiln itself
//! produces, the small seeds checked in under `fuzz/seeds/`, and every
//! earlier finding; it writes new inputs to `target/fuzz-corpus/TARGET/`.
//! A crash, timeout or out-of-memory input is minimized and copied to
//! `fuzz-harness/tests/fuzz_regressions/TARGET/`, which the test suite
//! replays. Figures are appended to `target/fuzz-report.md`.

use anyhow::{Context, Result, bail};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// The targets, from the entries in `fuzz/fuzz_targets/`.
pub fn targets() -> Result<Vec<String>> {
    let dir = crate::root().join("fuzz/fuzz_targets");
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .with_context(|| format!("failed to list `{}`", dir.display()))?
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            name.strip_suffix(".rs").map(str::to_string)
        })
        .collect();
    names.sort();
    Ok(names)
}

/// `cargo xtask fuzz [list | TARGET[,TARGET...] | all] [SECONDS]`.
pub fn run(args: &[String]) -> Result<()> {
    let all = targets()?;
    let (which, seconds) = match args {
        [] => (all.clone(), 120),
        [one] if one == "list" => {
            for t in &all {
                println!("{t}");
            }
            return Ok(());
        }
        [one] if one.parse::<u64>().is_ok() => (all.clone(), seconds_of(Some(one), 120)?),
        [one] => (pick(one, &all)?, 120),
        [one, seconds] => (pick(one, &all)?, seconds_of(Some(seconds), 120)?),
        [_, _, extra, ..] => bail!(
            "unexpected argument `{extra}`: cargo xtask fuzz [list | TARGET[,TARGET...] | all] [SECONDS]"
        ),
    };
    fuzz(&which, seconds)
}

/// `cargo xtask soak fuzz [SECONDS]`: every target for longer (default 600 s each).
pub fn soak(seconds: Option<&String>) -> Result<()> {
    fuzz(&targets()?, seconds_of(seconds, 600)?)
}

/// `all`, or targets by name, several separated by commas.
fn pick(names: &str, all: &[String]) -> Result<Vec<String>> {
    if names == "all" {
        return Ok(all.to_vec());
    }
    names
        .split(',')
        .map(|name| match all.iter().find(|t| *t == name) {
            Some(t) => Ok(t.clone()),
            None => bail!(
                "no fuzz target `{name}`; the targets are: {}",
                all.join(", ")
            ),
        })
        .collect()
}

fn seconds_of(arg: Option<&String>, default: u64) -> Result<u64> {
    match arg {
        Some(s) => s
            .parse()
            .with_context(|| format!("`{s}` is not a number of seconds")),
        None => Ok(default),
    }
}

/// The largest input libFuzzer makes for a target: wasm binaries and
/// audit inputs need room for a module with some code; the rest are
/// documents and headers.
fn max_len(target: &str) -> usize {
    match target {
        "wasm" | "audit" => 256 << 10,
        _ => 64 << 10,
    }
}

/// The dictionary of tokens libFuzzer splices into a target's inputs.
fn dict_of(target: &str) -> Option<&'static str> {
    match target {
        "oci" | "sigstore" | "credentials" | "aot" => Some("json.dict"),
        "http" => Some("http.dict"),
        "policy" | "kiln_toml" | "audit" => Some("toml.dict"),
        _ => None,
    }
}

/// Crates the fuzz build must not link: the network, crypto and engine
/// stacks the targets never call, which an instrumented build would spend
/// most of its time on.
const HEAVY: &[&str] = &[
    "aws-lc-sys",
    "ring",
    "reqwest",
    "sigstore",
    "wasmtime",
    "cranelift-codegen",
];

/// Fails when a default feature crept back into the fuzz build's graph.
fn check_light() -> Result<()> {
    let tree = crate::output_of(crate::cargo().current_dir(crate::root()).args([
        "tree",
        "--manifest-path",
        "fuzz/Cargo.toml",
        "-e",
        "normal",
        "--prefix",
        "none",
    ]))?;
    let tree = String::from_utf8_lossy(&tree);
    let heavy: Vec<&str> = HEAVY
        .iter()
        .copied()
        .filter(|h| {
            tree.lines()
                .any(|l| l.split_whitespace().next() == Some(*h))
        })
        .collect();
    if !heavy.is_empty() {
        bail!(
            "the fuzz build links {}: a kiln crate in fuzz-harness/Cargo.toml lost `default-features = false`, or a parser moved behind a default feature",
            heavy.join(", ")
        );
    }
    Ok(())
}

fn fuzz(which: &[String], seconds: u64) -> Result<()> {
    install_cargo_fuzz()?;
    check_light()?;
    let seeds = crate::fuzz_seeds::generate().context("failed to generate the seed corpus")?;
    let result = run_targets(which, seconds, &seeds);
    let _ = std::fs::remove_dir_all(&seeds);
    result
}

/// Runs each target in turn, reading the seeds in `seeds`.
fn run_targets(which: &[String], seconds: u64, seeds: &Path) -> Result<()> {
    let root = crate::root();
    let mut report = String::from(
        "| target | seconds | executions | exec/s | coverage (cov) | features (ft) | corpus | peak RSS MiB | result |\n\
         |---|---|---|---|---|---|---|---|---|\n",
    );
    let mut found = Vec::new();
    for target in which {
        let corpus = root.join("target/fuzz-corpus").join(target);
        let artifacts = root.join("target/fuzz-artifacts").join(target);
        std::fs::create_dir_all(&corpus)?;
        // Emptied, so what a failed run leaves there is this run's finding,
        // never an old one (a run that fails for another reason says so).
        let _ = std::fs::remove_dir_all(&artifacts);
        std::fs::create_dir_all(&artifacts)?;
        let log = root.join("target/fuzz-logs").join(format!("{target}.log"));
        std::fs::create_dir_all(log.parent().unwrap_or(&root))?;
        let mut cmd = cargo_fuzz();
        cmd.args(["run", "--fuzz-dir", "fuzz", "--target-dir", "target/fuzz"])
            // The targets are safe Rust: ASan would halve the speed and
            // find nothing a panic does not. Debug assertions and overflow
            // checks stay on.
            .args(["-s", "none", "-a", target])
            .arg(&corpus)
            .arg(seeds.join(target))
            .arg(
                root.join("fuzz-harness/tests/fuzz_regressions")
                    .join(target),
            )
            .arg(root.join("fuzz/seeds").join(target))
            .arg("--")
            .arg(format!("-max_total_time={seconds}"))
            .arg(format!("-max_len={}", max_len(target)))
            .args(["-timeout=10", "-rss_limit_mb=2048", "-print_final_stats=1"])
            .arg(format!("-artifact_prefix={}/", artifacts.display()));
        if let Some(dict) = dict_of(target) {
            cmd.arg(format!(
                "-dict={}",
                root.join("fuzz/dicts").join(dict).display()
            ));
        }
        // libFuzzer reads every corpus directory it is given; make the
        // read-only ones exist.
        for dir in [
            seeds.join(target),
            root.join("fuzz-harness/tests/fuzz_regressions")
                .join(target),
            root.join("fuzz/seeds").join(target),
        ] {
            std::fs::create_dir_all(&dir)?;
        }
        eprintln!("$ {}  (log: {})", crate::display(&cmd), log.display());
        let file = std::fs::File::create(&log)?;
        let status = cmd
            .current_dir(&root)
            .stdout(Stdio::null())
            .stderr(file)
            .status()
            .context("failed to start cargo fuzz")?;
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        let stats = Stats::read(&text);
        let result = if status.success() {
            "ok".to_string()
        } else {
            match keep_finding(target, &artifacts)? {
                Some(kept) => {
                    found.push(kept.clone());
                    format!("**found** `{}`", kept.display())
                }
                None => {
                    let tail: Vec<&str> = text.lines().rev().take(30).collect();
                    eprintln!("{}", tail.into_iter().rev().collect::<Vec<_>>().join("\n"));
                    bail!(
                        "`cargo fuzz run {target}` failed ({status}) without an input to keep; see {}",
                        log.display()
                    );
                }
            }
        };
        eprintln!(
            "{target}: {} executions, cov {}, ft {}, corpus {}: {result}",
            stats.executions, stats.cov, stats.ft, stats.corpus
        );
        report.push_str(&format!(
            "| {target} | {seconds} | {} | {} | {} | {} | {} | {} | {result} |\n",
            stats.executions, stats.per_second, stats.cov, stats.ft, stats.corpus, stats.rss
        ));
    }
    // Appended, so runs of different targets (one after another, or two
    // at once on two cores) end up in one report.
    let path = root.join("target/fuzz-report.md");
    {
        use std::io::Write;
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .with_context(|| format!("failed to open `{}`", path.display()))?;
        file.write_all(format!("\n{report}").as_bytes())?;
    }
    eprint!("{report}");
    eprintln!("report: {}", path.display());
    if !found.is_empty() {
        bail!(
            "{} finding(s) kept as regression inputs; replay with `cargo test -p kiln-fuzz-harness`, fix, and commit each input with its fix",
            found.len()
        );
    }
    Ok(())
}

/// What libFuzzer printed at the end of a run.
#[derive(Default)]
struct Stats {
    executions: String,
    per_second: String,
    rss: String,
    cov: String,
    ft: String,
    corpus: String,
}

impl Stats {
    fn read(log: &str) -> Stats {
        let mut s = Stats::default();
        for line in log.lines() {
            let value = |key: &str| line.strip_prefix(key).map(|v| v.trim().to_string());
            if let Some(v) = value("stat::number_of_executed_units:") {
                s.executions = v;
            } else if let Some(v) = value("stat::average_exec_per_sec:") {
                s.per_second = v;
            } else if let Some(v) = value("stat::peak_rss_mb:") {
                s.rss = v;
            } else if line.starts_with('#') && line.contains(" cov: ") {
                let field = |name: &str| {
                    line.split_whitespace()
                        .skip_while(|w| *w != name)
                        .nth(1)
                        .unwrap_or("")
                        .to_string()
                };
                s.cov = field("cov:");
                s.ft = field("ft:");
                s.corpus = field("corp:");
            }
        }
        s
    }
}

/// Minimizes the input libFuzzer left in `artifacts` and copies it to the
/// regression inputs, named by its kind and libFuzzer's hash.
fn keep_finding(target: &str, artifacts: &Path) -> Result<Option<PathBuf>> {
    let mut inputs: Vec<PathBuf> = std::fs::read_dir(artifacts)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.file_name().is_some_and(|n| {
                let n = n.to_string_lossy();
                ["crash-", "timeout-", "oom-", "slow-unit-", "leak-"]
                    .iter()
                    .any(|k| n.starts_with(k))
            })
        })
        .collect();
    inputs.sort_by_key(|p| std::fs::metadata(p).and_then(|m| m.modified()).ok());
    let Some(input) = inputs.pop() else {
        return Ok(None);
    };
    let name = input
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let root = crate::root();
    let minimized = artifacts.join(format!("minimized-{name}"));
    let mut tmin = cargo_fuzz();
    tmin.args(["tmin", "--fuzz-dir", "fuzz", "--target-dir", "target/fuzz"])
        .args(["-s", "none", "-a", target])
        .arg(&input)
        .args(["--runs", "2000", "--"])
        .arg(format!("-exact_artifact_path={}", minimized.display()))
        // The run's own limits, so a timeout or out-of-memory input
        // reproduces while it is minimized.
        .args(["-timeout=10", "-rss_limit_mb=2048"])
        .arg(format!("-max_len={}", max_len(target)))
        .current_dir(&root)
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let kept_from = match tmin.status() {
        Ok(_) if minimized.exists() => minimized,
        _ => input.clone(),
    };
    let dir = root
        .join("fuzz-harness/tests/fuzz_regressions")
        .join(target);
    std::fs::create_dir_all(&dir)?;
    let kept = dir.join(&name);
    std::fs::copy(&kept_from, &kept)
        .with_context(|| format!("failed to keep `{}`", kept_from.display()))?;
    eprintln!(
        "{target}: kept {} — replay: cargo test -p kiln-fuzz-harness --test fuzz_regressions",
        kept.display()
    );
    Ok(Some(kept))
}

/// cargo-fuzz passes nightly-only compiler flags (coverage
/// instrumentation); `RUSTC_BOOTSTRAP=1` lets the stable toolchain accept
/// them.
fn cargo_fuzz() -> Command {
    let mut cmd = crate::cargo();
    cmd.arg("fuzz").env("RUSTC_BOOTSTRAP", "1");
    cmd
}

fn install_cargo_fuzz() -> Result<()> {
    let installed = crate::cargo()
        .args(["fuzz", "--version"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !installed {
        crate::sh(crate::cargo().args(["install", "cargo-fuzz", "--locked"]))?;
    }
    Ok(())
}
