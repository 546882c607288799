//! `cargo xtask bench`, precompilation part: `kiln compile` against `wasmtime compile`.
//!
//! Both (wasmtime-cli 48.0.8 with every architecture) compile the same
//! component; the rows give time, peak memory, and whether the artifacts are
//! the same bytes.

use crate::root;
use crate::timing::median;
use crate::tools::{WASMTIME_VERSION, ensure_gnu_time, ensure_wasmtime_cli};
use anyhow::{Context, Result, bail};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const RUNS: usize = 5;
const FOUR: [&str; 4] = [
    "x86_64-unknown-linux-gnu",
    "aarch64-unknown-linux-gnu",
    "riscv64gc-unknown-linux-gnu",
    "s390x-unknown-linux-gnu",
];

/// One run: wall time and peak resident memory in KiB.
fn once(cmd: &[&std::ffi::OsStr]) -> Result<(Duration, u64)> {
    let mem = root().join("target/bench/aot/peak-memory.txt");
    let start = Instant::now();
    let status = Command::new("/usr/bin/time")
        .args(["-f", "%M", "-o"])
        .arg(&mem)
        .args(cmd)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()?;
    let took = start.elapsed();
    if !status.success() {
        bail!(
            "`{}` failed ({status})",
            cmd.iter()
                .map(|a| a.to_string_lossy())
                .collect::<Vec<_>>()
                .join(" ")
        );
    }
    let kib = std::fs::read_to_string(&mem)?
        .lines()
        .last()
        .and_then(|l| l.trim().parse().ok())
        .context("GNU time printed no peak memory")?;
    Ok((took, kib))
}

/// Median wall time and the largest peak memory of `RUNS` runs of a
/// sequence of commands run one after another, after one warm-up.
fn measure(cmds: &[Vec<std::ffi::OsString>]) -> Result<(Duration, u64)> {
    let run_all = || -> Result<(Duration, u64)> {
        let mut total = Duration::ZERO;
        let mut peak = 0;
        for c in cmds {
            let args: Vec<&std::ffi::OsStr> = c.iter().map(|a| a.as_os_str()).collect();
            let (t, m) = once(&args)?;
            total += t;
            peak = peak.max(m);
        }
        Ok((total, peak))
    };
    run_all()?;
    let mut times = Vec::new();
    let mut peak = 0;
    for _ in 0..RUNS {
        let (t, m) = run_all()?;
        times.push(t);
        peak = peak.max(m);
    }
    Ok((median(times), peak))
}

fn args<I: IntoIterator<Item = S>, S: Into<std::ffi::OsString>>(
    items: I,
) -> Vec<std::ffi::OsString> {
    items.into_iter().map(Into::into).collect()
}

/// Times `kiln compile` and `wasmtime compile` on `input`; returns the
/// report section.
pub fn rows(kiln: &Path, input: &Path, name: &str) -> Result<String> {
    ensure_gnu_time()?;
    let wasmtime = ensure_wasmtime_cli()?;
    let dir = root().join("target/bench/aot");
    if dir.exists() {
        std::fs::remove_dir_all(&dir)?;
    }
    std::fs::create_dir_all(&dir)?;
    let host = FOUR[0];
    let kiln_compile = |targets: &[&str], cache: bool| {
        let mut a = args([
            kiln.as_os_str(),
            "compile".as_ref(),
            "-q".as_ref(),
            input.as_os_str(),
        ]);
        for t in targets {
            a.extend(args(["--target", t]));
        }
        a.extend(args(["-o".as_ref(), dir.join("kiln").as_os_str()]));
        if !cache {
            a.push("--no-cache".into());
        }
        a
    };
    let wasmtime_compile = |target: &str| {
        args([
            wasmtime.as_os_str(),
            "compile".as_ref(),
            "--target".as_ref(),
            target.as_ref(),
            input.as_os_str(),
            "-o".as_ref(),
            dir.join(format!("wasmtime.{target}.cwasm")).as_os_str(),
        ])
    };
    // Both sides compile for an explicit target, so neither uses this
    // machine's CPU features, and their outputs can be compared.
    let k1 = measure(&[kiln_compile(&[host], false)])?;
    let w1 = measure(&[wasmtime_compile(host)])?;
    let k4 = measure(&[kiln_compile(&FOUR, false)])?;
    let w4 = measure(&FOUR.map(wasmtime_compile))?;
    // Warm cache: its own cache directory, filled by the warm-up run.
    let cache = dir.join("cache");
    let warm = {
        let mut c = kiln_compile(&[host], true);
        c.splice(
            0..0,
            args([
                "env".to_string(),
                format!("KILN_CACHE_DIR={}", cache.display()),
            ]),
        );
        measure(&[c])?
    };
    let stem = input
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    let mut same = Vec::new();
    for t in FOUR {
        let k = std::fs::read(dir.join("kiln").join(format!("{stem}.{t}.cwasm")))?;
        let w = std::fs::read(dir.join(format!("wasmtime.{t}.cwasm")))?;
        same.push(format!(
            "{t}: {}",
            if k == w { "identical" } else { "differ" }
        ));
    }
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    let mib = |k: u64| k as f64 / 1024.0;
    let size = std::fs::metadata(input)?.len() as f64 / (1024.0 * 1024.0);
    Ok(format!(
        "\n`kiln compile` against `wasmtime compile` (wasmtime-cli {WASMTIME_VERSION}, all-arch) on {name} ({size:.1} MiB), {RUNS} runs, median wall time, peak memory:\n\n\
         | case | kiln | wasmtime | kiln / wasmtime | target |\n|---|---|---|---|---|\n\
         | 1 target ({host}) | {:.0} ms, {:.0} MiB | {:.0} ms, {:.0} MiB | {:.2}x | ≤ 1.0x |\n\
         | 4 targets (kiln in one run; wasmtime 4 runs in sequence) | {:.0} ms, {:.0} MiB | {:.0} ms, {:.0} MiB | {:.2}x | ≤ 0.6x |\n\
         | warm cache, 1 target (against kiln's cold compile) | {:.1} ms | | {:.1}% | ≤ 5% |\n\n\
         Artifacts, kiln against wasmtime, same target: {}\n",
        ms(k1.0),
        mib(k1.1),
        ms(w1.0),
        mib(w1.1),
        ms(k1.0) / ms(w1.0),
        ms(k4.0),
        mib(k4.1),
        ms(w4.0),
        mib(w4.1),
        ms(k4.0) / ms(w4.0),
        ms(warm.0),
        100.0 * ms(warm.0) / ms(k1.0),
        same.join(", ")
    ))
}
